//! Linux `perf` as a child process: the check that it can run here, one recording of a
//! process's threads on the software `cpu-clock` event for a measured window, and its
//! samples folded into stacks (`perf script` → inferno's perf folder).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use inferno::collapse::Collapse;
use inferno::collapse::perf::{Folder, Options};

use super::breakdown::Folded;

/// The Debian package that has `perf`.
pub const PACKAGE: &str = "linux-perf";

/// Sampling frequency, Hz: not a multiple of the kernel's tick, so samples do not beat
/// against periodic work.
const FREQUENCY: &str = "999";

/// How long perf may take to write its file and exit after SIGINT.
const STOP_TIMEOUT: Duration = Duration::from_secs(120);

/// Why profiling failed.
#[derive(Debug, thiserror::Error)]
pub enum PerfError {
    /// perf is not installed.
    #[error(
        "perf not found ({perf}): install it (Debian: apt-get install {PACKAGE}; Ubuntu: linux-tools-generic)"
    )]
    Missing {
        /// The command looked for.
        perf: String,
    },
    /// The kernel refuses perf events to this user.
    #[error(
        "perf is not permitted: kernel.perf_event_paranoid is {0}; sampling another process with kernel frames needs ≤ 1 (sudo sysctl kernel.perf_event_paranoid=1) or root"
    )]
    NotPermitted(i64),
    /// perf ran and failed.
    #[error("perf {what}: {why}")]
    Failed {
        /// Which step.
        what: &'static str,
        /// Its exit status and stderr, or the I/O error.
        why: String,
    },
}

/// How perf walks call stacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CallGraph {
    /// Frame pointers: cheap; stacks stop at code built without them.
    Fp,
    /// A copy of 16 KiB of stack per sample unwound with DWARF: complete stacks, heavier.
    Dwarf,
}

impl CallGraph {
    /// Its name in perf's `--call-graph`.
    pub fn name(self) -> &'static str {
        match self {
            CallGraph::Fp => "fp",
            CallGraph::Dwarf => "dwarf",
        }
    }

    fn arg(self) -> &'static str {
        match self {
            CallGraph::Fp => "fp",
            CallGraph::Dwarf => "dwarf,16384",
        }
    }
}

fn failed(what: &'static str) -> impl Fn(std::io::Error) -> PerfError {
    move |e| PerfError::Failed {
        what,
        why: e.to_string(),
    }
}

/// Whether a user may sample another of its processes with kernel frames, given
/// `kernel.perf_event_paranoid` (root always may).
pub fn permitted(paranoid: i64, root: bool) -> Result<(), PerfError> {
    if root || paranoid <= 1 {
        Ok(())
    } else {
        Err(PerfError::NotPermitted(paranoid))
    }
}

/// Checks that `perf` runs and that the kernel lets us sample: before the run starts, so a
/// run that cannot profile does nothing.
pub fn preflight(perf: &Path) -> Result<(), PerfError> {
    let out = Command::new(perf)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => PerfError::Missing {
                perf: perf.display().to_string(),
            },
            _ => PerfError::Failed {
                what: "--version",
                why: e.to_string(),
            },
        })?;
    if !out.status.success() {
        // Debian's /usr/bin/perf is a wrapper that fails when no perf matches the kernel.
        return Err(PerfError::Failed {
            what: "--version",
            why: format!(
                "{}: {} (install {PACKAGE} for this kernel)",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    let text = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .map_err(failed("reading /proc/sys/kernel/perf_event_paranoid"))?;
    let paranoid = text.trim().parse::<i64>().map_err(|e| PerfError::Failed {
        what: "reading /proc/sys/kernel/perf_event_paranoid",
        why: format!("{text:?}: {e}"),
    })?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    permitted(paranoid, root)
}

/// A running `perf record` of one process.
pub struct Recording {
    child: Child,
    data: PathBuf,
    stderr: PathBuf,
}

impl Recording {
    /// Starts sampling every thread of `pid` into `data`.
    pub fn start(
        perf: &Path,
        pid: u32,
        call_graph: CallGraph,
        data: PathBuf,
    ) -> Result<Recording, PerfError> {
        let stderr = data.with_extension("stderr");
        let err_file = File::create(&stderr).map_err(failed("creating its stderr file"))?;
        let child = Command::new(perf)
            .args(["record", "-e", "cpu-clock", "-F", FREQUENCY, "--call-graph"])
            .arg(call_graph.arg())
            .arg("-p")
            .arg(pid.to_string())
            .arg("-o")
            .arg(&data)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err_file)
            .spawn()
            .map_err(failed("record"))?;
        Ok(Recording {
            child,
            data,
            stderr,
        })
    }

    /// Stops the recording (SIGINT, as perf expects) and returns its data file.
    pub fn stop(mut self) -> Result<PathBuf, PerfError> {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill on our own child's pid, which we have not yet waited for.
        unsafe { libc::kill(pid, libc::SIGINT) };
        let deadline = Instant::now() + STOP_TIMEOUT;
        let status = loop {
            if let Some(s) = self.child.try_wait().map_err(failed("record"))? {
                break s;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(PerfError::Failed {
                    what: "record",
                    why: format!("did not exit within {STOP_TIMEOUT:?} of SIGINT"),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let err = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let _ = std::fs::remove_file(&self.stderr);
        // After writing its file perf exits 0 or re-raises the SIGINT; anything else, or no
        // file, is a failure to record.
        let interrupted = status.success() || status.signal() == Some(libc::SIGINT);
        if !interrupted || !self.data.exists() {
            return Err(PerfError::Failed {
                what: "record",
                why: format!("{status}: {}", err.trim()),
            });
        }
        Ok(std::mem::take(&mut self.data))
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        // Stopped without `stop` (an error elsewhere): do not leave perf running.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The samples in `data` folded into stacks, keeping the threads whose name starts with
/// `thread_prefix` (all with ""), adding to `into`; the data file is removed.
pub fn fold(
    perf: &Path,
    data: &Path,
    thread_prefix: &str,
    into: &mut Folded,
) -> Result<(), PerfError> {
    let mut child = Command::new(perf)
        .arg("script")
        .arg("-i")
        .arg(data)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(failed("script"))?;
    let Some(stdout) = child.stdout.take() else {
        return Err(PerfError::Failed {
            what: "script",
            why: "no stdout".into(),
        });
    };
    let mut opts = Options::default();
    opts.annotate_kernel = true;
    opts.event_filter = Some("cpu-clock".into());
    opts.nthreads = 1;
    let mut out = Vec::new();
    let folded = Folder::from(opts).collapse(BufReader::new(stdout), &mut out);
    let status = child.wait().map_err(failed("script"))?;
    folded.map_err(failed("script (folding)"))?;
    if !status.success() {
        return Err(PerfError::Failed {
            what: "script",
            why: status.to_string(),
        });
    }
    let _ = std::fs::remove_file(data);
    for line in out.lines() {
        let line = line.map_err(failed("script (folded output)"))?;
        add_folded_line(&line, thread_prefix, into)?;
    }
    Ok(())
}

/// Adds one folded line (`thread;frame;...;leaf COUNT`) to `into` when its thread's name
/// starts with `thread_prefix`, without the thread's name.
fn add_folded_line(line: &str, thread_prefix: &str, into: &mut Folded) -> Result<(), PerfError> {
    let bad = || PerfError::Failed {
        what: "script (folding)",
        why: format!("not a folded stack: {line:?}"),
    };
    let (stack, count) = line.rsplit_once(' ').ok_or_else(bad)?;
    let count = count.parse::<u64>().map_err(|_| bad())?;
    let (thread, frames) = stack.split_once(';').unwrap_or((stack, ""));
    if thread.starts_with(thread_prefix) {
        *into.entry(frames.to_owned()).or_default() += count;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn folded_lines_are_filtered_by_thread_and_a_malformed_line_is_refused() {
        let mut f = Folded::new();
        add_folded_line("tlsbench-load-0;a;b 3", "tlsbench-load-", &mut f).unwrap();
        add_folded_line("tlsbench-load-1;a;b 2", "tlsbench-load-", &mut f).unwrap();
        add_folded_line("tlsbench;main;c 7", "tlsbench-load-", &mut f).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f["a;b"], 5);
        add_folded_line("tlsbench;main;c 7", "", &mut f).unwrap();
        assert_eq!(f["main;c"], 7);
        for bad in ["no-count", "a;b x", "a;b -1"] {
            let e = add_folded_line(bad, "", &mut f).unwrap_err().to_string();
            assert!(e.contains("not a folded stack"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_missing_perf_names_the_package() {
        let e = preflight(Path::new("/nonexistent/perf")).unwrap_err();
        assert!(matches!(e, PerfError::Missing { .. }), "{e:?}");
        assert!(e.to_string().contains("linux-perf"), "{e}");
    }

    #[test]
    fn paranoid_above_one_refuses_a_non_root_user_with_the_setting() {
        assert!(permitted(1, false).is_ok());
        assert!(permitted(-1, false).is_ok());
        assert!(permitted(2, true).is_ok());
        let e = permitted(2, false).unwrap_err().to_string();
        assert!(e.contains("perf_event_paranoid") && e.contains("2"), "{e}");
    }
}
