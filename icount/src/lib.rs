//! `tlsbench icount`: instructions per handshake side and per 16 KiB record, counted under
//! valgrind's callgrind — the deterministic cost CI gates on, where CPU time is too noisy on a
//! shared machine.
//!
//! The command re-runs its own executable under callgrind in child mode, one process per row.
//! The child sets up the row's pair (uncounted), runs one uncounted warm-up iteration, then `--iterations`
//! counted ones; callgrind counts only inside the counted region and writes one dump per
//! iteration. The parent reads the dumps, takes each row's interquartile mean and writes
//! `<out>/instructions.json`, which `tlsbench compare --metric instructions` reads.
//!
//! Randomness (client/server randoms, key shares, ECDSA nonces, RSA blinding, ML-KEM rejection
//! sampling) is drawn inside aws-lc (ECDSA nonces and RSA blinding from aws-lc's own RNG, not
//! rustls's `SecureRandom`), so a deterministic provider would not fix it; counts vary a
//! little per iteration, and the mean of the middle half of several iterations is what is
//! reproducible (see [`report`]).
//!
//! # Layout
//!
//! - [`cases`]: the rows and the code counted for each.
//! - [`chains`]: the certificate chains of a run, generated with canonical lengths.
//! - [`callgrind`]: the valgrind command line and the parser of its output files.
//! - [`report`]: `instructions.json` and the conditions counts depend on (CPU features).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub mod callgrind;
pub mod cases;
pub mod chains;
pub mod report;

use callgrind::CallgrindError;
use report::{Report, Row};

/// The subcommand name the parent re-runs itself with.
pub const SUBCOMMAND: &str = "icount";

/// Flags of `tlsbench icount`.
#[derive(clap::Args, Debug, Clone)]
pub struct IcountArgs {
    /// Output directory: the counts are written to instructions.json in it.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Counted iterations per row (after one uncounted warm-up); a row's count is the mean of
    /// their middle half (over all processes of a pooled row).
    #[arg(long, default_value_t = 11, value_parser = clap::value_parser!(u32).range(1..=101))]
    pub iterations: u32,
    /// Count only this row (exact name as in instructions.json; repeat for more)
    /// [default: every row].
    #[arg(long = "row")]
    pub rows: Vec<String>,
    /// Internal: be the process callgrind runs, and write the order of its dumps and the CPU
    /// features it sees to this file.
    #[arg(long, hide = true)]
    pub child: Option<PathBuf>,
    /// Internal: the directory of the run's chains, which the child uses.
    #[arg(long, hide = true)]
    pub chains: Option<PathBuf>,
}

/// Why an instruction count failed.
#[derive(Debug, thiserror::Error)]
pub enum IcountError {
    /// A `--row` names no row.
    #[error(
        "unknown row {0:?} (rows are named as in instructions.json, e.g. \"full tls1.3 x25519 rsa2048 / server\")"
    )]
    UnknownRow(String),
    /// Setting up or running a row failed.
    #[error("{row}: {source}")]
    Case {
        /// The row.
        row: String,
        /// What failed (boxed: rustls's error is large and this one is rare).
        source: Box<pairs::PairError>,
    },
    /// The run's certificate chains could not be made or loaded.
    #[error("certificate chains: {0}")]
    Chains(#[from] chains::ChainsError),
    /// Valgrind is missing or its output unreadable.
    #[error(transparent)]
    Callgrind(#[from] CallgrindError),
    /// The child under valgrind did not finish.
    #[error("the counted process under valgrind failed: {0}")]
    Child(String),
    /// The dumps do not match the iterations the child ran.
    #[error("callgrind wrote {dumps} iteration dumps for {iterations} iterations")]
    DumpCount {
        /// Dumps written by the dump point.
        dumps: usize,
        /// Iterations the child announced.
        iterations: usize,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The child's manifest could not be read or a report not written.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> IcountError {
    let path = path.to_owned();
    move |source| IcountError::Io { path, source }
}

/// What the child tells the parent: the CPU features it saw and the row of each dump.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Manifest {
    cpu_features: Vec<String>,
    dumps: Vec<String>,
}

/// Runs the command: the parent (count under valgrind, write the report; returns its path) or,
/// with `--child`, the counted process.
pub fn run(args: &IcountArgs) -> Result<Option<PathBuf>, IcountError> {
    let selected = select(&args.rows)?;
    match (&args.child, &args.chains) {
        (Some(manifest), Some(chain_dir)) => {
            child(&selected, args.iterations, manifest, chain_dir)?;
            Ok(None)
        }
        (Some(_), None) => Err(IcountError::Child(
            "--child needs --chains (the parent passes both)".to_owned(),
        )),
        (None, _) => parent(args, &selected).map(Some),
    }
}

/// The rows named by `--row` (all when none), in report order; an unknown name is refused.
fn select(names: &[String]) -> Result<Vec<cases::Case>, IcountError> {
    let all = cases::all();
    if let Some(unknown) = names.iter().find(|n| !all.iter().any(|c| &c.name == *n)) {
        return Err(IcountError::UnknownRow(unknown.clone()));
    }
    Ok(all
        .into_iter()
        .filter(|c| names.is_empty() || names.contains(&c.name))
        .collect())
}

/// The counted process: every row set up, warmed up once, then counted `iterations` times,
/// each iteration followed by a dump.
fn child(
    selected: &[cases::Case],
    iterations: u32,
    manifest: &Path,
    chain_dir: &Path,
) -> Result<(), IcountError> {
    chains::install(chain_dir)?;
    let mut dumps = Vec::new();
    for case in selected {
        let fail = |source| IcountError::Case {
            row: case.name.clone(),
            source: Box::new(source),
        };
        let mut prepared = case.prepare().map_err(fail)?;
        for _ in 0..iterations {
            prepared.iterate(true).map_err(fail)?;
            cases::icount_dump_point(prepared.name());
            dumps.push(case.name.clone());
        }
    }
    let m = Manifest {
        cpu_features: report::cpu_features(),
        dumps,
    };
    let text = serde_json::to_string(&m).map_err(|source| IcountError::Json {
        path: manifest.to_owned(),
        source,
    })?;
    std::fs::write(manifest, text).map_err(io_err(manifest))
}

/// Runs the child under callgrind, reads its dumps and writes the report.
fn parent(args: &IcountArgs, selected: &[cases::Case]) -> Result<PathBuf, IcountError> {
    let started = SystemTime::now();
    let valgrind = callgrind::version()?;
    let work = std::env::temp_dir().join(format!("tlsbench-icount-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(io_err(&work))?;
    let result = count(args, selected, &work, &valgrind, started);
    // Best effort: the dumps are intermediate files, and the chains' keys are of this run
    // only (written 0600).
    let _ = std::fs::remove_dir_all(&work);
    let report = result?;
    std::fs::create_dir_all(&args.out).map_err(io_err(&args.out))?;
    let path = args.out.join(report::FILE_NAME);
    let text = serde_json::to_string_pretty(&report).map_err(|source| IcountError::Json {
        path: path.clone(),
        source,
    })?;
    std::fs::write(&path, text + "\n").map_err(io_err(&path))?;
    print!("{}", render(&report));
    Ok(path)
}

fn count(
    args: &IcountArgs,
    selected: &[cases::Case],
    work: &Path,
    valgrind: &str,
    started: SystemTime,
) -> Result<Report, IcountError> {
    let exe = std::env::current_exe().map_err(io_err(Path::new("current executable")))?;
    // One set of chains for every process of the run, generated outside valgrind (RSA key
    // generation under it would take seconds) and with canonical lengths, so runs agree.
    let chain_dir = work.join("chains");
    chains::write_canonical(&chain_dir)?;
    let (mut labels, mut counts, mut features) = (Vec::new(), Vec::new(), None);
    // One process per row: a row's count then does not depend on the heap the rows before it
    // left behind (in one process for all rows, the TLS 1.2 session-ID client row moved by
    // 0.5% between runs; alone, by 0.2%), and adding a row moves no other.
    for (i, case) in selected.iter().enumerate() {
        let mut row_counts = Vec::new();
        for process in 0..POOLED_PROCESSES {
            if process == 1 && !needs_pooling(&row_counts) {
                break;
            }
            let dir = work.join(format!("row-{i}-{process}"));
            std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
            let (manifest, mut these) =
                count_in_child(&exe, &dir, &chain_dir, args.iterations, case)?;
            if features.get_or_insert_with(|| manifest.cpu_features.clone())
                != &manifest.cpu_features
            {
                return Err(IcountError::Child(format!(
                    "{}: the counted processes saw different CPU features",
                    case.name
                )));
            }
            labels.extend(manifest.dumps);
            row_counts.append(&mut these);
        }
        counts.append(&mut row_counts);
    }
    let rows = rows(selected, &labels, &counts)?;
    Ok(Report {
        schema_version: report::SCHEMA_VERSION,
        tool: "tlsbench icount".to_owned(),
        started_utc: common::env::utc_rfc3339(started),
        iterations: args.iterations,
        profile: report::profile().to_owned(),
        valgrind: valgrind.to_owned(),
        cpu_features: features.unwrap_or_default(),
        environment: common::env::Environment::collect(),
        rows,
    })
}

/// Processes a noisy cheap row's iterations are pooled over (see [`needs_pooling`]).
const POOLED_PROCESSES: usize = 4;

/// Whether a row's first process leaves it too noisy to stand alone: glibc malloc's cost
/// depends on the heap's state, which drifts from iteration to iteration and settles at a
/// different level in each process (measured: ±1 000–2 000 instructions in `_int_malloc` and
/// `malloc_consolidate`). That is noise of a fixed size, so it matters only for cheap rows —
/// the TLS 1.2 resumed client rows (~150 000 instructions) moved by 0.5% between processes.
/// Such a row (under 500 000 instructions, iterations spread over more than 0.25%) is counted
/// in [`POOLED_PROCESSES`] processes and its iterations pooled; records (no spread) and full
/// handshakes are not.
fn needs_pooling(counts: &[u64]) -> bool {
    let Some(row) = Row::of("", counts) else {
        return false;
    };
    let spread = (row.max - row.min) as f64 / row.instructions;
    row.instructions < 500_000.0 && spread > 0.0025
}

/// Runs `exe` under callgrind in child mode for one row; returns its manifest and the count
/// of each iteration, checked to be one per announced dump.
fn count_in_child(
    exe: &Path,
    dir: &Path,
    chain_dir: &Path,
    iterations: u32,
    case: &cases::Case,
) -> Result<(Manifest, Vec<u64>), IcountError> {
    let manifest_path = dir.join("manifest.json");
    let child_args: Vec<OsString> = vec![
        SUBCOMMAND.into(),
        "--iterations".into(),
        iterations.to_string().into(),
        "--child".into(),
        manifest_path.clone().into(),
        "--chains".into(),
        chain_dir.into(),
        "--row".into(),
        case.name.clone().into(),
    ];
    let status = callgrind::command(dir, exe, &child_args)
        .status()
        .map_err(|e| CallgrindError::Missing(e.to_string()))?;
    if !status.success() {
        return Err(IcountError::Child(format!(
            "{}: {} exited with {status}",
            case.name,
            exe.display()
        )));
    }
    let text = std::fs::read_to_string(&manifest_path).map_err(io_err(&manifest_path))?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|source| IcountError::Json {
        path: manifest_path.clone(),
        source,
    })?;
    let counts: Vec<u64> = callgrind::read_dumps(dir)?
        .into_iter()
        .filter(callgrind::Dump::is_iteration)
        .map(|d| d.instructions)
        .collect();
    if counts.len() != manifest.dumps.len() {
        return Err(IcountError::DumpCount {
            dumps: counts.len(),
            iterations: manifest.dumps.len(),
        });
    }
    Ok((manifest, counts))
}

/// Groups the dumps' counts by row; a selected row without a count is an error, never 0.
fn rows(
    selected: &[cases::Case],
    labels: &[String],
    counts: &[u64],
) -> Result<Vec<Row>, IcountError> {
    selected
        .iter()
        .map(|c| {
            let mine: Vec<u64> = labels
                .iter()
                .zip(counts)
                .filter(|(l, _)| **l == c.name)
                .map(|(_, n)| *n)
                .collect();
            Row::of(&c.name, &mine).ok_or(IcountError::DumpCount {
                dumps: 0,
                iterations: labels.len(),
            })
        })
        .collect()
}

/// The table printed after a count.
pub fn render(r: &Report) -> String {
    let width = r.rows.iter().map(|row| row.name.len()).max().unwrap_or(0);
    let mut out = format!(
        "instructions ({} iterations per row, {} build, {}; CPU features: {})\n",
        r.iterations,
        r.profile,
        r.valgrind,
        r.cpu_features.join(" ")
    );
    for row in &r.rows {
        let spread = if row.instructions > 0.0 {
            (row.max - row.min) as f64 / row.instructions * 100.0
        } else {
            0.0
        };
        out.push_str(&format!(
            "{:<width$}  {:>14.0}  (spread {spread:.2}%)\n",
            row.name, row.instructions
        ));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn unknown_rows_are_refused_by_name() {
        let err = select(&["full tls1.4 / server".to_owned()]).unwrap_err();
        assert!(
            err.to_string().contains("\"full tls1.4 / server\""),
            "{err}"
        );
        let one = select(&["record seal tls1.3 aes-128-gcm 16KiB".to_owned()]).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(select(&[]).unwrap().len(), cases::all().len());
    }

    #[test]
    fn a_child_without_the_runs_chains_is_refused() {
        let args = IcountArgs {
            out: PathBuf::from("unused"),
            iterations: 1,
            rows: vec!["record seal tls1.3 aes-128-gcm 16KiB".to_owned()],
            child: Some(PathBuf::from("manifest.json")),
            chains: None,
        };
        let err = run(&args).unwrap_err();
        assert!(err.to_string().contains("--chains"), "{err}");
    }

    #[test]
    fn only_cheap_noisy_rows_are_pooled_over_processes() {
        // A TLS 1.2 resumed client row: 150k instructions spread over 1%.
        assert!(needs_pooling(&[150_000, 151_500, 150_700]));
        // A record: cheap but steady.
        assert!(!needs_pooling(&[72_000, 72_010, 72_003]));
        // A full handshake: spread 0.5%, but the malloc noise is small against 1.1M.
        assert!(!needs_pooling(&[1_141_000, 1_147_000, 1_145_000]));
        assert!(!needs_pooling(&[]));
    }

    #[test]
    fn dumps_are_grouped_by_row_and_a_row_without_dumps_fails() {
        let selected = select(&[
            "full tls1.3 x25519 rsa2048 / server".to_owned(),
            "full tls1.3 x25519 ecdsa-p256 / server".to_owned(),
        ])
        .unwrap();
        let labels: Vec<String> = [&selected[0].name, &selected[0].name, &selected[1].name]
            .map(String::clone)
            .to_vec();
        let rows = rows(&selected, &labels, &[10, 30, 7]).unwrap();
        assert_eq!(rows[0].instructions, 20.0);
        assert_eq!(rows[1].iterations, [7]);
        assert!(matches!(
            super::rows(&selected, &labels[..2], &[10, 30]),
            Err(IcountError::DumpCount { .. })
        ));
    }
}
