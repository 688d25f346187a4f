//! Valgrind's side: finding `valgrind`, the callgrind command line that counts only inside
//! the counted region and dumps once per iteration, and the parser of its output files.
//!
//! A callgrind output file starts with a header (`version:`, `creator:`, `part:`,
//! `desc: Trigger: …`, `events: Ir …`, `summary: …`) and ends with `totals: …`; only the header
//! and the totals are read, the per-function costs are not needed.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cases::{COUNTED_SYMBOL, DUMP_SYMBOL};

/// The Debian (and Ubuntu) package that provides `valgrind`.
pub const PACKAGE: &str = "valgrind";

/// Why valgrind could not be run or its output not read.
#[derive(Debug, thiserror::Error)]
pub enum CallgrindError {
    /// `valgrind` is not on PATH or does not run.
    #[error(
        "valgrind is not installed or does not run ({0}); install the `{PACKAGE}` package (apt-get install {PACKAGE})"
    )]
    Missing(String),
    /// An output file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An output file is not what callgrind writes.
    #[error("{path}: {what}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
}

/// `valgrind --version`, e.g. "valgrind-3.19.0".
pub fn version() -> Result<String, CallgrindError> {
    let out = Command::new("valgrind")
        .arg("--version")
        .output()
        .map_err(|e| CallgrindError::Missing(e.to_string()))?;
    if !out.status.success() {
        return Err(CallgrindError::Missing(format!(
            "`valgrind --version` exited with {}",
            out.status
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The prefix of every dump file in `dir`.
pub const OUT_PREFIX: &str = "callgrind.out";

/// `valgrind --tool=callgrind` running `program args`: nothing is collected except inside
/// [`COUNTED_SYMBOL`], and each return from [`DUMP_SYMBOL`] writes a dump (and zeroes the
/// counters) into `dir`.
pub fn command(dir: &Path, program: &Path, args: &[OsString]) -> Command {
    let mut out_file = OsString::from("--callgrind-out-file=");
    out_file.push(dir.join(OUT_PREFIX));
    let mut cmd = Command::new("valgrind");
    cmd.arg("--tool=callgrind")
        .arg("--quiet")
        .arg("--collect-atstart=no")
        .arg(format!("--toggle-collect={COUNTED_SYMBOL}"))
        .arg(format!("--dump-after={DUMP_SYMBOL}"))
        // Only the totals are read: no per-instruction detail to write.
        .arg("--dump-instr=no")
        .arg(out_file)
        .arg(program)
        .args(args);
    cmd
}

/// One callgrind dump: which part of the run it is, what triggered it, and its instructions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dump {
    /// `part:` (1 for the first dump of the process).
    pub part: u64,
    /// The `desc: Trigger:` text, e.g. "--dump-after=icount_dump_point".
    pub trigger: String,
    /// Instructions executed (`Ir`) while collection was on since the previous dump.
    pub instructions: u64,
}

impl Dump {
    /// Whether the dump was written by the per-iteration dump point (not program termination).
    pub fn is_iteration(&self) -> bool {
        self.trigger.contains(DUMP_SYMBOL)
    }
}

/// Parses a callgrind output file's text (`path` only names it in errors).
pub fn parse(path: &Path, text: &str) -> Result<Dump, CallgrindError> {
    let format = |what: String| CallgrindError::Format {
        path: path.to_owned(),
        what,
    };
    let (mut part, mut trigger, mut events, mut summary, mut totals) =
        (None, None, None, None, None);
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("part:") {
            let v = v.trim();
            part = Some(
                v.parse::<u64>()
                    .map_err(|_| format(format!("part {v:?} is not a number")))?,
            );
        } else if let Some(v) = line.strip_prefix("desc: Trigger:") {
            trigger = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("events:") {
            events = Some(v.split_whitespace().map(str::to_owned).collect::<Vec<_>>());
        } else if let Some(v) = line.strip_prefix("summary:") {
            summary = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("totals:") {
            totals = Some(v.trim().to_owned());
        }
    }
    let events = events.ok_or_else(|| format("no `events:` line".to_owned()))?;
    if events.first().map(String::as_str) != Some("Ir") {
        return Err(format(format!("events {events:?} do not start with Ir")));
    }
    // `totals:` is the file's own sum; `summary:` says the same in older headers.
    let counts = totals
        .or(summary)
        .ok_or_else(|| format("neither `totals:` nor `summary:`".to_owned()))?;
    let first = counts
        .split_whitespace()
        .next()
        .ok_or_else(|| format("empty totals".to_owned()))?;
    let instructions = first
        .parse()
        .map_err(|_| format(format!("instruction total {first:?} is not a number")))?;
    Ok(Dump {
        part: part.ok_or_else(|| format("no `part:` line".to_owned()))?,
        trigger: trigger.ok_or_else(|| format("no `desc: Trigger:` line".to_owned()))?,
        instructions,
    })
}

/// Reads every dump callgrind left in `dir`, in part order.
pub fn read_dumps(dir: &Path) -> Result<Vec<Dump>, CallgrindError> {
    let read_err = |path: &Path| {
        let path = path.to_owned();
        move |source| CallgrindError::Read { path, source }
    };
    let mut dumps = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err(dir))? {
        let path = entry.map_err(read_err(dir))?.path();
        let is_dump = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(OUT_PREFIX));
        if is_dump {
            let text = std::fs::read_to_string(&path).map_err(read_err(&path))?;
            dumps.push(parse(&path, &text)?);
        }
    }
    dumps.sort_by_key(|d| d.part);
    Ok(dumps)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The shape callgrind 3.19 writes with --dump-instr=no (most functions cut).
    const SAMPLE: &str = "\
# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 4242
cmd:  target/release/tlsbench icount --child m.json
part: 3


desc: I1 cache: 
desc: D1 cache: 
desc: LL cache: 

desc: Timerange: Basic block 1000 - 2000
desc: Trigger: --dump-after=icount_dump_point

positions: 
events: Ir
summary: 1234567


ob=(1) /work/target/release/tlsbench
fl=(1) ???
fn=(1) icount_counted_region
0 12

totals: 1234567
";

    #[test]
    fn reads_part_trigger_and_totals() {
        let d = parse(Path::new("x"), SAMPLE).unwrap();
        assert_eq!(
            d,
            Dump {
                part: 3,
                trigger: "--dump-after=icount_dump_point".to_owned(),
                instructions: 1_234_567,
            }
        );
        assert!(d.is_iteration());
    }

    #[test]
    fn program_termination_is_not_an_iteration() {
        let text = SAMPLE.replace("--dump-after=icount_dump_point", "Program termination");
        assert!(!parse(Path::new("x"), &text).unwrap().is_iteration());
    }

    #[test]
    fn totals_win_over_summary_and_summary_alone_is_read() {
        let text = SAMPLE.replace("totals: 1234567", "totals: 7");
        assert_eq!(parse(Path::new("x"), &text).unwrap().instructions, 7);
        let text = SAMPLE.replace("totals: 1234567\n", "");
        assert_eq!(
            parse(Path::new("x"), &text).unwrap().instructions,
            1_234_567
        );
    }

    #[test]
    fn malformed_files_are_refused_with_their_name() {
        for (from, to) in [
            ("events: Ir", "events: Dr Ir"),
            ("events: Ir", ""),
            ("part: 3", ""),
            ("part: 3", "part: three"),
            ("desc: Trigger: --dump-after=icount_dump_point", ""),
            ("summary: 1234567", "summary: lots"),
        ] {
            let text = SAMPLE.replace("totals: 1234567\n", "").replace(from, to);
            let err = parse(Path::new("dump.7"), &text).unwrap_err();
            assert!(
                err.to_string().starts_with("dump.7: "),
                "{from} → {to}: {err}"
            );
        }
    }

    #[test]
    fn counts_only_the_region_and_dumps_per_iteration() {
        let cmd = command(Path::new("/d"), Path::new("/bin/x"), &["a".into()]);
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        for want in [
            "--tool=callgrind",
            "--collect-atstart=no",
            "--toggle-collect=icount_counted_region",
            "--dump-after=icount_dump_point",
            "--callgrind-out-file=/d/callgrind.out",
        ] {
            assert!(
                args.iter().any(|a| a == want),
                "{want} missing from {args:?}"
            );
        }
        assert_eq!(args[args.len() - 2..], ["/bin/x", "a"]);
    }
}
