//! `tlsbench compare OLD NEW`: the CI regression gate over two `results.json` files. Matches
//! rows by name, prints the change of one metric's median with its direction, and exits 1
//! when a cost got worse (or the rate dropped) by more than the threshold.
//!
//! The gate is strict: two runs that are not like with like (a baseline row missing from NEW,
//! a row without the metric, an incomplete run, quick against full) make it exit 2 rather
//! than pass on what it could not check. Each rule has an `--allow-…` flag, and the output
//! names the flag whenever it let something through.
//!
//! `--metric instructions` reads two `instructions.json` files of `tlsbench icount` instead
//! (the deterministic CI gate): the same matching, thresholds and strictness, plus one more
//! rule — counts taken under different conditions (CPU features the counted process saw,
//! valgrind version, build profile) are refused, since aws-lc's code paths depend on them.
//!
//! # Layout
//! - `runs`: two `results.json` files on server CPU, client CPU or rate.
//! - `instructions`: two `tlsbench icount` reports on instructions.
//! - `alike`: the like-with-like rules, their `--allow-…` flags and findings.
//! - `render`: the plain-text and Markdown output.
//! - `side`: `--side-by-side`, two runs' rows next to each other with ratios (a report, not
//!   a gate); `side_chart`: its SVG chart.
//! - `fixtures` (tests only): a four-row run, its file, the flags.
//!
//! `--side-by-side` shows two runs (A = OLD, B = NEW) next to each other instead, each
//! labelled by its server software, with the ratio B/A per metric; it never gates.
//!
//! This module holds the gate itself: flags, exit codes, verdicts, matching rows by name.

mod alike;
#[cfg(test)]
mod fixtures;
mod instructions;
mod render;
mod runs;
mod side;
mod side_chart;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use icount::report::Report as InstructionReport;
use serde::de::DeserializeOwned;

use crate::results::{RunResults, Stat};

pub use alike::{Allow, Finding, Rule};
pub use instructions::compare_instructions;
pub use render::{render_markdown, render_text};
pub use runs::compare;
pub use side::{Column, SideBySide, server_label, side_by_side};

/// Changes smaller than this (relative) are "the same": medians read back from JSON can differ
/// in the last bits without anything having changed.
const SAME_EPSILON: f64 = 1e-9;

/// Exit code: compared like with like, nothing regressed.
pub const EXIT_PASS: i32 = 0;
/// Exit code: a row regressed beyond the threshold.
pub const EXIT_REGRESSION: i32 = 1;
/// Exit code: the runs cannot be compared like with like (a rule below refused them, nothing
/// was compared, or an input is unreadable); also clap's code for a usage error.
pub const EXIT_NOT_COMPARABLE: i32 = 2;

/// Flags of `tlsbench compare`.
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "\
Exit codes:
  0  compared like with like, no regression beyond the threshold
  1  a row regressed beyond the threshold
  2  not like with like: a baseline row missing from NEW, a row without the metric, an
     incomplete run, quick against full, instruction counts under other CPU features,
     valgrind or profile (each accepted by its --allow-... flag, which the output then
     names), no row compared at all, an unreadable input, or a usage error.
     2 wins over 1: a regression between runs that are not alike is not a verdict.")]
pub struct CompareArgs {
    /// The baseline `results.json` (`instructions.json` with --metric instructions).
    pub old: PathBuf,
    /// The file to check against the baseline, of the same kind as OLD.
    pub new: PathBuf,
    /// How much worse a row may get before it counts as a regression: "10%" or "10" (percent).
    #[arg(long, default_value = "10%", value_parser = parse_threshold)]
    pub threshold: f64,
    /// The metric to compare (medians over repeats; for instructions, the interquartile mean
    /// over iterations that `tlsbench icount` wrote).
    #[arg(long, value_enum, default_value_t = Metric::ServerCpu)]
    pub metric: Metric,
    /// Print a Markdown table (for CI job summaries) instead of plain text.
    #[arg(long)]
    pub markdown: bool,
    /// What to accept although it is not like with like.
    #[command(flatten)]
    pub allow: Allow,
    /// Instead of gating, show both runs' rows next to each other (A = OLD, B = NEW) with
    /// the ratio B/A per metric, each run labelled by its server software. Never gates:
    /// exit 0 unless an input is unreadable (2).
    #[arg(long, conflicts_with_all = [
        "threshold", "metric", "missing_rows", "missing_metric", "incomplete",
        "mode_mismatch", "counting_mismatch",
    ])]
    pub side_by_side: bool,
    /// With --side-by-side: the metrics shown, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_values_t = Column::ALL,
        requires = "side_by_side"
    )]
    pub show: Vec<Column>,
    /// With --side-by-side: also draw the ratios as an SVG chart into FILE.
    #[arg(long, value_name = "FILE", requires = "side_by_side")]
    pub chart: Option<PathBuf>,
}

/// The metric `tlsbench compare` gates on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Metric {
    /// Server CPU µs per operation (a cost: higher is worse). Absent under `--target`.
    ServerCpu,
    /// Load-generator CPU µs per operation (a cost: higher is worse).
    ClientCpu,
    /// Handshakes/s, req/s or MB/s (lower is worse).
    Rate,
    /// Instructions per handshake side or record under callgrind, from two `tlsbench icount`
    /// instructions.json files (a cost: higher is worse).
    Instructions,
}

impl Metric {
    /// How the metric is named in output.
    pub fn label(self) -> &'static str {
        match self {
            Metric::ServerCpu => "server CPU",
            Metric::ClientCpu => "client CPU",
            Metric::Rate => "rate",
            Metric::Instructions => "instructions",
        }
    }

    /// Whether a higher value is worse (CPU per operation) rather than better (rate).
    pub fn higher_is_worse(self) -> bool {
        !matches!(self, Metric::Rate)
    }
}

/// Parses a threshold: "10%" and "10" both mean 10 percent; returns the fraction (0.1).
pub fn parse_threshold(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let number = t.strip_suffix('%').unwrap_or(t).trim();
    let percent: f64 = number
        .parse()
        .map_err(|_| format!("threshold {s:?} is not a percentage (e.g. \"10%\")"))?;
    if !percent.is_finite() || percent < 0.0 {
        return Err(format!("threshold {s:?} must be a finite percentage ≥ 0"));
    }
    Ok(percent / 100.0)
}

/// What a row's change means for the gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Moved in the good direction.
    Better,
    /// Moved in the bad direction, but within the threshold.
    Worse,
    /// Moved in the bad direction by more than the threshold: fails the gate.
    Regression,
    /// No change.
    Same,
    /// Cannot be compared: the metric is missing on one side (server CPU under `--target`),
    /// the kinds differ, or the baseline is zero.
    NotComparable,
}

impl Verdict {
    /// The word printed for the verdict.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Better => "better",
            Verdict::Worse => "worse",
            Verdict::Regression => "REGRESSION",
            Verdict::Same => "same",
            Verdict::NotComparable => "n/a",
        }
    }
}

/// One row's comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct Delta {
    /// Scenario name.
    pub name: String,
    /// Unit of `old` and `new` (e.g. "µs/handshake", "req/s").
    pub unit: String,
    /// Median in OLD (NaN when OLD has no value).
    pub old: f64,
    /// Median in NEW (NaN when NEW has no value).
    pub new: f64,
    /// (new − old) ÷ old; NaN when not comparable.
    pub change: f64,
    /// What the change means.
    pub verdict: Verdict,
    /// OLD's and NEW's ranges (min..max over repeats) overlap: the change may be noise.
    pub overlap: bool,
    /// Why the row is [`Verdict::NotComparable`] (empty otherwise).
    pub note: String,
}

/// The comparison of two runs on one metric.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// Rows present in both, in OLD's order.
    pub lines: Vec<Delta>,
    /// Rows with [`Verdict::Regression`].
    pub regressions: usize,
    /// Names of rows present on one side only: first those only in OLD, then those only in NEW.
    pub missing: Vec<String>,
    /// How many of `missing` (the first ones) are in OLD only.
    pub only_in_old: usize,
    /// The threshold used (fraction).
    pub threshold: f64,
    /// Where the runs are not like with like: each refused (exit 2) unless its flag was given.
    pub findings: Vec<Finding>,
    /// Caveats that do not fail the gate (different CPU models).
    pub notes: Vec<String>,
}

impl Comparison {
    /// Names of rows in OLD but not in NEW.
    pub fn missing_in_new(&self) -> &[String] {
        &self.missing[..self.only_in_old.min(self.missing.len())]
    }

    /// Names of rows in NEW but not in OLD.
    pub fn missing_in_old(&self) -> &[String] {
        &self.missing[self.only_in_old.min(self.missing.len())..]
    }

    /// Rows actually compared on the metric (not [`Verdict::NotComparable`]).
    pub fn compared(&self) -> usize {
        self.lines
            .iter()
            .filter(|d| d.verdict != Verdict::NotComparable)
            .count()
    }

    /// Findings no flag accepted.
    pub fn refused(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| !f.allowed)
    }

    /// Whether the gate may judge at all: nothing refused and at least one row compared
    /// (a gate that compared nothing would otherwise pass while checking nothing).
    pub fn like_with_like(&self) -> bool {
        self.refused().next().is_none() && self.compared() > 0
    }

    /// The exit code of the gate: [`EXIT_NOT_COMPARABLE`] when not like with like, else
    /// [`EXIT_REGRESSION`] when anything regressed, else [`EXIT_PASS`].
    pub fn exit_code(&self) -> i32 {
        if !self.like_with_like() {
            EXIT_NOT_COMPARABLE
        } else if self.regressions > 0 {
            EXIT_REGRESSION
        } else {
            EXIT_PASS
        }
    }
}

/// Why `tlsbench compare` could not compare (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// A results file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A results file is not a `results.json` document.
    #[error("{path} is not a tlsbench results.json: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// A file is not a `tlsbench icount` instructions.json document.
    #[error("{path} is not a tlsbench icount instructions.json: {source}")]
    ParseInstructions {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// The side-by-side chart could not be written.
    #[error(transparent)]
    Chart(#[from] side_chart::ChartError),
    /// A results file has a schema version this build does not understand.
    #[error("{path} has schema version {found}; this tlsbench reads version {expected}")]
    Schema {
        /// The file.
        path: PathBuf,
        /// Its schema version.
        found: u32,
        /// [`SCHEMA_VERSION`](crate::results::SCHEMA_VERSION).
        expected: u32,
    },
}

impl Comparison {
    /// The comparison of matched `lines` (regressions counted from their verdicts).
    fn of(
        lines: Vec<Delta>,
        missing: Vec<String>,
        only_in_old: usize,
        threshold: f64,
        findings: Vec<Finding>,
        notes: Vec<String>,
    ) -> Comparison {
        let regressions = lines
            .iter()
            .filter(|d| d.verdict == Verdict::Regression)
            .count();
        Comparison {
            lines,
            regressions,
            missing,
            only_in_old,
            threshold,
            findings,
            notes,
        }
    }
}

/// Pairs rows by name: the deltas of rows in both (OLD's order), then the names present on
/// one side only (OLD-only first) and how many of those are OLD-only.
fn match_rows<R>(
    old: &[R],
    new: &[R],
    name: impl Fn(&R) -> &String,
    delta: impl Fn(&R, &R) -> Delta,
) -> (Vec<Delta>, Vec<String>, usize) {
    // First row of a name wins on both sides, so duplicated names cannot pair crosswise.
    let mut new_by_name: BTreeMap<&str, &R> = BTreeMap::new();
    for row in new {
        new_by_name.entry(name(row).as_str()).or_insert(row);
    }
    let old_names: BTreeSet<&str> = old.iter().map(|r| name(r).as_str()).collect();

    let mut lines = Vec::new();
    let mut missing = Vec::new();
    let mut seen = BTreeSet::new();
    for o in old {
        if !seen.insert(name(o).as_str()) {
            continue;
        }
        match new_by_name.get(name(o).as_str()) {
            Some(n) => lines.push(delta(o, n)),
            None => missing.push(name(o).clone()),
        }
    }
    let only_in_old = missing.len();
    let mut seen_new = BTreeSet::new();
    for n in new {
        if !old_names.contains(name(n).as_str()) && seen_new.insert(name(n).as_str()) {
            missing.push(name(n).clone());
        }
    }
    (lines, missing, only_in_old)
}

/// Fills in `d`'s change and verdict from the two values (a missing one is not comparable).
fn judge(
    mut d: Delta,
    old_stat: Option<Stat>,
    new_stat: Option<Stat>,
    higher_is_worse: bool,
    threshold: f64,
) -> Delta {
    let (Some(os), Some(ns)) = (old_stat, new_stat) else {
        d.note = "missing".to_owned();
        return d;
    };
    if !(os.median.is_finite() && ns.median.is_finite()) {
        d.note = "not a number".to_owned();
        return d;
    }
    if os.median == ns.median {
        d.change = 0.0;
        d.verdict = Verdict::Same;
        d.overlap = true;
        return d;
    }
    if os.median <= 0.0 {
        // A zero baseline has no relative change; such a row measured nothing.
        d.note = "OLD is zero".to_owned();
        return d;
    }
    d.change = (ns.median - os.median) / os.median;
    d.overlap = os.min <= ns.max && ns.min <= os.max;
    // How much worse, as a positive fraction (negative when better).
    let worse_by = if higher_is_worse { d.change } else { -d.change };
    d.verdict = if worse_by.abs() < SAME_EPSILON {
        Verdict::Same
    } else if worse_by < 0.0 {
        Verdict::Better
    } else if worse_by > threshold + SAME_EPSILON {
        // The epsilon keeps exactly-at-threshold changes (1.1 ÷ 1.0 − 1 = 0.10000000000000009)
        // on the allowed side.
        Verdict::Regression
    } else {
        Verdict::Worse
    };
    d
}

/// A JSON document `tlsbench compare` reads: a run's results.json or an icount report.
trait Document: DeserializeOwned {
    /// The schema version this build reads.
    const SCHEMA_VERSION: u32;
    /// The error for a file that does not parse as this kind of document.
    fn not_this(path: PathBuf, source: serde_json::Error) -> CompareError;
    /// The schema version the file says it has.
    fn schema_version(&self) -> u32;
}

/// Reads `path` as a `D` of the schema version this build reads.
fn load<D: Document>(path: &Path) -> Result<D, CompareError> {
    let text = std::fs::read_to_string(path).map_err(|source| CompareError::Read {
        path: path.to_owned(),
        source,
    })?;
    let doc: D =
        serde_json::from_str(&text).map_err(|source| D::not_this(path.to_owned(), source))?;
    if doc.schema_version() != D::SCHEMA_VERSION {
        return Err(CompareError::Schema {
            path: path.to_owned(),
            found: doc.schema_version(),
            expected: D::SCHEMA_VERSION,
        });
    }
    Ok(doc)
}

/// Loads both files, prints the comparison, returns the exit code ([`EXIT_PASS`],
/// [`EXIT_REGRESSION`] or [`EXIT_NOT_COMPARABLE`]); an unreadable input is an error, for which
/// the caller exits [`EXIT_NOT_COMPARABLE`].
pub fn run(args: &CompareArgs) -> Result<i32, CompareError> {
    if args.side_by_side {
        let a: RunResults = load(&args.old)?;
        let b: RunResults = load(&args.new)?;
        let s = side_by_side(&a, &b, &args.show);
        print!(
            "{}",
            if args.markdown {
                side::render_markdown(&s)
            } else {
                side::render_text(&s)
            }
        );
        if let Some(path) = &args.chart {
            side_chart::write(&s, path)?;
        }
        return Ok(EXIT_PASS);
    }
    let c = if args.metric == Metric::Instructions {
        let old: InstructionReport = load(&args.old)?;
        let new: InstructionReport = load(&args.new)?;
        compare_instructions(&old, &new, args.threshold, args.allow)
    } else {
        let old: RunResults = load(&args.old)?;
        let new: RunResults = load(&args.new)?;
        compare(&old, &new, args.metric, args.threshold, args.allow)
    };
    let text = if args.markdown {
        render_markdown(&c, args.metric)
    } else {
        render_text(&c, args.metric)
    };
    print!("{text}");
    Ok(c.exit_code())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::fixtures::{args, base, temp_json};
    use super::*;
    use crate::results::SCHEMA_VERSION;

    #[test]
    fn thresholds() {
        assert_eq!(parse_threshold("10%"), Ok(0.1));
        assert_eq!(parse_threshold("10"), Ok(0.1));
        assert_eq!(parse_threshold(" 2.5 % "), Ok(0.025));
        assert_eq!(parse_threshold("0"), Ok(0.0));
        assert!(parse_threshold("-5%").is_err());
        assert!(parse_threshold("NaN").is_err());
        assert!(parse_threshold("inf").is_err());
        assert!(parse_threshold("ten").is_err());
        assert!(parse_threshold("").is_err());
    }

    #[test]
    fn command_line() {
        use clap::Parser as _;
        /// Wraps the flags the way the binary does.
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: CompareArgs,
        }
        let a = Cli::try_parse_from(["compare", "a.json", "b.json"])
            .unwrap()
            .args;
        assert_eq!(
            (a.threshold, a.metric, a.markdown),
            (0.1, Metric::ServerCpu, false)
        );
        let a = Cli::try_parse_from([
            "compare",
            "a.json",
            "b.json",
            "--threshold",
            "5%",
            "--metric",
            "rate",
            "--markdown",
        ])
        .unwrap()
        .args;
        assert_eq!(
            (a.threshold, a.metric, a.markdown),
            (0.05, Metric::Rate, true)
        );
        assert!(Cli::try_parse_from(["compare", "a", "b", "--threshold", "-1%"]).is_err());
        assert!(Cli::try_parse_from(["compare", "a", "b", "--metric", "client-cpu"]).is_ok());
        assert_eq!(a.allow, Allow::default());
        let a = Cli::try_parse_from([
            "compare",
            "a",
            "b",
            "--allow-missing-rows",
            "--allow-missing-metric",
            "--allow-incomplete",
            "--allow-mode-mismatch",
            "--allow-counting-mismatch",
        ])
        .unwrap()
        .args;
        assert_eq!(
            a.allow,
            Allow {
                missing_rows: true,
                missing_metric: true,
                incomplete: true,
                mode_mismatch: true,
                counting_mismatch: true,
            }
        );
        let a = Cli::try_parse_from(["compare", "a", "b", "--metric", "instructions"])
            .unwrap()
            .args;
        assert_eq!(a.metric, Metric::Instructions);
        assert!(!a.side_by_side);
        let a = Cli::try_parse_from([
            "compare",
            "a",
            "b",
            "--side-by-side",
            "--show",
            "rate,p99",
            "--chart",
            "x.svg",
        ])
        .unwrap()
        .args;
        assert!(a.side_by_side);
        assert_eq!(a.show, [Column::Rate, Column::P99]);
        assert_eq!(a.chart, Some(PathBuf::from("x.svg")));
        let a = Cli::try_parse_from(["compare", "a", "b", "--side-by-side"])
            .unwrap()
            .args;
        assert_eq!(a.show, Column::ALL);
        // A gate's flags mean nothing beside the side-by-side view: refused, not ignored.
        for gate_flag in [
            &["--metric", "rate"][..],
            &["--threshold", "5%"],
            &["--allow-missing-rows"],
        ] {
            let mut argv = vec!["compare", "a", "b", "--side-by-side"];
            argv.extend_from_slice(gate_flag);
            assert!(Cli::try_parse_from(&argv).is_err(), "{argv:?}");
        }
        assert!(Cli::try_parse_from(["compare", "a", "b", "--show", "rate"]).is_err());
        assert!(Cli::try_parse_from(["compare", "a", "b", "--chart", "x.svg"]).is_err());
    }

    #[test]
    fn unreadable_inputs_are_errors() {
        let good = temp_json(&base());
        let missing = std::env::temp_dir().join("tlsbench-compare-does-not-exist.json");
        let err = run(&args(missing, good.clone(), Metric::Rate)).unwrap_err();
        assert!(matches!(err, CompareError::Read { .. }));
        let junk =
            std::env::temp_dir().join(format!("tlsbench-compare-{}-junk.json", std::process::id()));
        std::fs::write(&junk, "{not json").unwrap();
        let err = run(&args(good.clone(), junk.clone(), Metric::Rate)).unwrap_err();
        assert!(matches!(err, CompareError::Parse { .. }));
        let mut future = base();
        future.schema_version = SCHEMA_VERSION + 1;
        let future_path = temp_json(&future);
        let err = run(&args(good.clone(), future_path.clone(), Metric::Rate)).unwrap_err();
        assert!(matches!(err, CompareError::Schema { .. }), "{err}");
        for p in [good, junk, future_path] {
            let _ = std::fs::remove_file(p);
        }
    }

    #[test]
    fn instructions_and_run_results_are_not_mixed_up() {
        let run_file = temp_json(&base());
        let mut a = args(run_file.clone(), run_file.clone(), Metric::Instructions);
        let err = run(&a).unwrap_err();
        assert!(
            matches!(err, CompareError::ParseInstructions { .. }),
            "{err}"
        );
        // A run's rows have no instruction counts: not comparable, never a pass.
        let c = compare(
            &base(),
            &base(),
            Metric::Instructions,
            0.02,
            Allow::default(),
        );
        assert_eq!(c.exit_code(), EXIT_NOT_COMPARABLE);
        a.metric = Metric::ServerCpu;
        assert_eq!(run(&a).unwrap(), EXIT_PASS);
        let _ = std::fs::remove_file(run_file);
    }
}
