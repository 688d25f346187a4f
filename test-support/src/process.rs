//! Test support: a child process (curl, openssl, the `tlsbench` binary) killed and reaped on
//! drop, its stdout and stderr read to the end on threads, its exit waited for with a bound
//! (past it the child is killed and the test fails), never slept on for readiness. Written
//! once for the loadgen tests ([`crate::refusals`], `nginx_harness.rs`) and the root package's
//! tests ([`crate::binary`]).

use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// A child process killed and reaped on drop unless it has been reaped already.
pub struct ChildGuard(pub Option<Child>);

impl ChildGuard {
    /// The child, not yet reaped.
    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().unwrap()
    }

    /// The child's process ID.
    pub fn pid(&self) -> libc::pid_t {
        libc::pid_t::try_from(self.0.as_ref().unwrap().id()).unwrap()
    }

    /// Sends `sig` to the child.
    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet (the
        // guard still holds it), so the pid cannot have been reused.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill({}, {sig}) failed", self.pid());
    }

    /// Waits (bounded) for the process to exit; None if it is still running at `deadline`.
    pub fn wait_until(&mut self, deadline: Instant) -> Option<ExitStatus> {
        loop {
            if let Some(status) = self.child().try_wait().unwrap() {
                self.0 = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Spawns `cmd` with `stdin` and its stdout and stderr piped, for the caller to read.
pub fn spawn_guarded(cmd: &mut Command, stdin: Stdio) -> ChildGuard {
    let child = cmd
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    ChildGuard(Some(child))
}

/// What a finished child did.
#[derive(Debug)]
pub struct Ran {
    /// How it exited.
    pub status: ExitStatus,
    /// All it wrote to stdout.
    pub stdout: String,
    /// All it wrote to stderr.
    pub stderr: String,
    /// From spawn to exit.
    pub wall: Duration,
}

impl Ran {
    /// Status, wall time, stdout and stderr, for a failed assertion's message.
    pub fn describe(&self) -> String {
        format!(
            "status {:?} after {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.wall, self.stdout, self.stderr
        )
    }
}

/// A running child whose stdout and stderr are read to the end on threads: start it, act
/// while it runs, then [`Captured::wait`]. Killed and reaped on drop unless it has exited.
pub struct Captured {
    guard: ChildGuard,
    /// Each pipe's whole text once it closed: `(true, stdout)` and `(false, stderr)`.
    output: Receiver<(bool, String)>,
    started: Instant,
    /// The command, for failure messages.
    what: String,
}

impl Captured {
    /// Starts `cmd` with stdin from /dev/null.
    pub fn start(cmd: Command) -> Captured {
        Captured::spawn(cmd, None)
    }

    /// Starts `cmd` with `input` written to its stdin (on a thread), which is then closed.
    pub fn start_with_stdin(cmd: Command, input: &[u8]) -> Captured {
        Captured::spawn(cmd, Some(input.to_vec()))
    }

    fn spawn(mut cmd: Command, input: Option<Vec<u8>>) -> Captured {
        let what = format!("{cmd:?}");
        let started = Instant::now();
        let stdin = if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        };
        let mut guard = spawn_guarded(&mut cmd, stdin);
        if let Some(data) = input {
            let mut pipe = guard.child().stdin.take().unwrap();
            // Errors are the child's business (it may exit without reading); dropping the
            // pipe closes its stdin.
            std::thread::spawn(move || {
                let _ = pipe.write_all(&data);
            });
        }
        let (tx, output) = mpsc::channel();
        for (is_out, mut pipe) in [
            (
                true,
                Box::new(guard.child().stdout.take().unwrap()) as Box<dyn Read + Send>,
            ),
            (false, Box::new(guard.child().stderr.take().unwrap())),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut b = Vec::new();
                let _ = pipe.read_to_end(&mut b);
                let _ = tx.send((is_out, String::from_utf8_lossy(&b).into_owned()));
            });
        }
        Captured {
            guard,
            output,
            started,
            what,
        }
    }

    /// Waits for both pipes to close and the child to exit, within `limit` of its start; past
    /// it the child is killed and the test fails.
    pub fn wait(mut self, limit: Duration) -> Ran {
        let deadline = self.started + limit;
        let (mut stdout, mut stderr) = (None, None);
        for _ in 0..2 {
            match self
                .output
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok((true, s)) => stdout = Some(s),
                Ok((false, s)) => stderr = Some(s),
                Err(_) => panic!("{} still running after {limit:?}; killed", self.what),
            }
        }
        // Both pipes are closed, so the child has exited or is about to.
        let status = self.guard.wait_until(deadline).unwrap_or_else(|| {
            panic!(
                "{} closed its output but did not exit within {limit:?}; killed",
                self.what
            )
        });
        Ran {
            status,
            stdout: stdout.unwrap(),
            stderr: stderr.unwrap(),
            wall: self.started.elapsed(),
        }
    }
}

/// Runs `cmd` (stdin from /dev/null) to the end within `limit`; past it the child is killed
/// and the test fails.
pub fn run_bounded(cmd: Command, limit: Duration) -> Ran {
    Captured::start(cmd).wait(limit)
}
