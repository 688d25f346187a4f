//! `tlsbench bench-report`: the summary of one criterion bench run, and the run marker format
//! the benches and the report share. No criterion here: the `tlsbench` binary links this crate,
//! and `benches` (which owns the criterion profile) depends on it for the marker.
//!
//! The report reads criterion's output directory and writes one Markdown and one CSV file with
//! handshake rates, record throughput, the ratios of handshakes and records to the crypto
//! floor, and the HTTP per-request overhead.
//!
//! Every figure comes from a criterion `new/estimates.json` median; a figure whose inputs are
//! missing is reported as "not measured", never estimated.
//!
//! A report is one bench run. Criterion keeps every benchmark's last result, whichever run made
//! it, so the report reads the run marker the benches leave ([`marker`]) and keeps only
//! measurements written after that run started with its profile's sample count. The rest
//! (older runs, a filtered run's untouched benches, another profile) are left out of every
//! figure and listed first in both files.
//!
//! # Layout
//!
//! - [`marker`]: the run marker (`tlsbench-run.json`) and the bench [`Profile`]: the format
//!   `benches` writes and the report reads.
//! - `results`: criterion's output directory read into measurements, and which of them the
//!   marked run wrote.
//! - `ratios`: handshakes and records held to their crypto floor ([`Ratio`], [`Target`]).
//! - `tables`: the Markdown and CSV files.
//! - this root: [`run`], its [`Summary`] and [`ReportError`], and where criterion writes
//!   ([`criterion_dir_from_env`]).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub mod marker;
mod ratios;
mod results;
mod tables;
#[cfg(test)]
mod tests;

pub use marker::{MarkerError, Profile, QUICK_ENV, RunMarker};
pub use ratios::{HANDSHAKE_TARGET, Ratio, SEAL_TARGET, Target};

use results::{collect, of_run};

/// Where criterion writes its output when the environment says: `$CRITERION_HOME`, else
/// `$CARGO_TARGET_DIR/criterion` (criterion's own order); `None` when neither is set. The
/// benches write there and `tlsbench bench-report` reads there, so a run with
/// `CARGO_TARGET_DIR` set is found without `--criterion-dir`.
pub fn criterion_dir_from_env() -> Option<PathBuf> {
    criterion_dir_from(
        std::env::var_os("CRITERION_HOME"),
        std::env::var_os("CARGO_TARGET_DIR"),
    )
}

fn criterion_dir_from(
    criterion_home: Option<std::ffi::OsString>,
    cargo_target_dir: Option<std::ffi::OsString>,
) -> Option<PathBuf> {
    criterion_home
        .map(PathBuf::from)
        .or_else(|| cargo_target_dir.map(|t| PathBuf::from(t).join("criterion")))
}
use tables::Report;

/// Errors of reading criterion's output and writing the report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The criterion directory does not exist (no bench has been run yet).
    #[error("{} does not exist; run `cargo bench -p benches` first", dir.display())]
    MissingDir {
        /// The directory looked for.
        dir: PathBuf,
    },
    /// The criterion directory holds no `new/benchmark.json` + `new/estimates.json` pair.
    #[error("no criterion results under {}; run `cargo bench -p benches` first", dir.display())]
    NoResults {
        /// The directory searched.
        dir: PathBuf,
    },
    /// Reading a file or directory, or writing a report file, failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A criterion JSON file did not parse.
    #[error("{}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: serde_json::Error,
    },
    /// The run marker could not be read.
    #[error(transparent)]
    Marker(#[from] MarkerError),
    /// No run marker: the results cannot be told apart by run.
    #[error(
        "{} has no {} run marker, so its results cannot be told apart by run; \
         run `cargo bench -p benches` (this version writes it)",
        dir.display(), marker::FILE_NAME
    )]
    NoRunMarker {
        /// The criterion directory.
        dir: PathBuf,
    },
    /// Every result predates the marked run or has another profile.
    #[error(
        "none of the {left_out} results under {} is from the {profile} run started {started}; \
         did that run measure anything?",
        dir.display()
    )]
    NothingFromRun {
        /// The criterion directory.
        dir: PathBuf,
        /// The marked run's profile, "quick" or "full".
        profile: &'static str,
        /// When it started, RFC 3339.
        started: String,
        /// How many results were left out.
        left_out: usize,
    },
}

/// A criterion result that is not from the reported run, with the reason.
#[derive(Clone, Debug, PartialEq)]
pub struct LeftOut {
    /// `group/id`, e.g. `floor/kx/x25519`.
    pub id: String,
    /// Why it is not from the run.
    pub reason: String,
}

/// What one report run produced.
#[derive(Clone, Debug)]
pub struct Summary {
    /// How many criterion benchmarks of the run were read.
    pub measurements: usize,
    /// The run the report covers.
    pub run: RunMarker,
    /// Results under the criterion directory that are from another run or profile: in no
    /// figure, listed first in both files.
    pub left_out: Vec<LeftOut>,
    /// The timestamped Markdown file (`bench-YYYYMMDDTHHMMSSZ.md`).
    pub markdown: PathBuf,
    /// The timestamped CSV file (`bench-YYYYMMDDTHHMMSSZ.csv`).
    pub csv: PathBuf,
    /// `bench-latest.md`, a copy of [`Summary::markdown`].
    pub latest_markdown: PathBuf,
    /// `bench-latest.csv`, a copy of [`Summary::csv`].
    pub latest_csv: PathBuf,
    /// The floor ratios, in report order (also in both files).
    pub ratios: Vec<Ratio>,
}

/// Reads criterion's output under `criterion_dir` and writes the report under `out_dir`
/// (created if needed) as `bench-<UTC time>.md`/`.csv` and `bench-latest.md`/`.csv`.
///
/// # Errors
///
/// [`ReportError`] when `criterion_dir` is missing or holds no results, when a criterion file
/// cannot be read or parsed, or when a report file cannot be written.
pub fn run(criterion_dir: &Path, out_dir: &Path) -> Result<Summary, ReportError> {
    run_at(criterion_dir, out_dir, SystemTime::now())
}

/// [`run`] with the report time given, so tests get fixed file names.
fn run_at(criterion_dir: &Path, out_dir: &Path, now: SystemTime) -> Result<Summary, ReportError> {
    let all = collect(criterion_dir)?;
    let run = marker::read(criterion_dir)?.ok_or_else(|| ReportError::NoRunMarker {
        dir: criterion_dir.to_owned(),
    })?;
    let (measurements, left_out) = of_run(all, &run);
    if measurements.is_empty() {
        return Err(ReportError::NothingFromRun {
            dir: criterion_dir.to_owned(),
            profile: run.profile.name(),
            started: common::env::utc_rfc3339(run.started()),
            left_out: left_out.len(),
        });
    }
    let stamp = common::env::utc_stamp(now);
    let report = Report::new(&measurements, &run, &left_out);
    let markdown = report.markdown(&stamp, criterion_dir);
    let csv = report.csv();

    fs::create_dir_all(out_dir).map_err(|source| ReportError::Io {
        path: out_dir.to_owned(),
        source,
    })?;
    let paths = [
        (out_dir.join(format!("bench-{stamp}.md")), &markdown),
        (out_dir.join(format!("bench-{stamp}.csv")), &csv),
        (out_dir.join("bench-latest.md"), &markdown),
        (out_dir.join("bench-latest.csv"), &csv),
    ];
    for (path, text) in &paths {
        fs::write(path, text).map_err(|source| ReportError::Io {
            path: path.clone(),
            source,
        })?;
    }
    let [
        (markdown, _),
        (csv, _),
        (latest_markdown, _),
        (latest_csv, _),
    ] = paths;
    let ratios = report.ratios;
    Ok(Summary {
        measurements: measurements.len(),
        run,
        left_out,
        markdown,
        csv,
        latest_markdown,
        latest_csv,
        ratios,
    })
}
