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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use icount::report::{Report as InstructionReport, Row as InstructionRow};

use crate::results::{Kind, Row, RunResults, SCHEMA_VERSION, Stat};

/// Changes smaller than this (relative) are "the same": medians read back from JSON can differ
/// in the last bits without anything having changed.
const SAME_EPSILON: f64 = 1e-9;

/// The marker after a change whose OLD and NEW ranges (min..max over repeats) overlap.
const OVERLAP_MARK: &str = "~";

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
}

/// The flags that accept runs which are not like with like. Without them each case exits 2.
#[derive(clap::Args, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Allow {
    /// Accept baseline rows that NEW lacks (they are listed, not compared).
    #[arg(long = "allow-missing-rows")]
    pub missing_rows: bool,
    /// Accept rows where the metric is missing on either side (server CPU of a --target run),
    /// unusable (a zero baseline) or of another kind (µs/handshake against µs/request).
    #[arg(long = "allow-missing-metric")]
    pub missing_metric: bool,
    /// Accept an OLD or NEW run that was cut short (its results.json says "incomplete").
    #[arg(long = "allow-incomplete")]
    pub incomplete: bool,
    /// Accept a --quick run against a full one (1 repeat and short runs against 3 long ones).
    #[arg(long = "allow-mode-mismatch")]
    pub mode_mismatch: bool,
    /// Accept instruction counts taken under different conditions: other CPU features seen
    /// by the counted process, another valgrind version or build profile.
    #[arg(long = "allow-counting-mismatch")]
    pub counting_mismatch: bool,
}

/// One way two runs can fail to be like with like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// A baseline row is not in NEW: its regression would go unseen.
    MissingRows,
    /// A matched row cannot be compared on the metric.
    MissingMetric,
    /// OLD or NEW was cut short.
    Incomplete,
    /// One run is --quick, the other full.
    ModeMismatch,
    /// Instruction counts taken with other CPU features, valgrind or profile.
    CountingMismatch,
}

impl Rule {
    /// The flag that accepts the rule's cases.
    pub fn flag(self) -> &'static str {
        match self {
            Rule::MissingRows => "--allow-missing-rows",
            Rule::MissingMetric => "--allow-missing-metric",
            Rule::Incomplete => "--allow-incomplete",
            Rule::ModeMismatch => "--allow-mode-mismatch",
            Rule::CountingMismatch => "--allow-counting-mismatch",
        }
    }

    fn allowed_by(self, allow: Allow) -> bool {
        match self {
            Rule::MissingRows => allow.missing_rows,
            Rule::MissingMetric => allow.missing_metric,
            Rule::Incomplete => allow.incomplete,
            Rule::ModeMismatch => allow.mode_mismatch,
            Rule::CountingMismatch => allow.counting_mismatch,
        }
    }
}

/// A case where the runs are not like with like, refused or accepted by its flag.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// The rule it breaks.
    pub rule: Rule,
    /// What is wrong, e.g. "rows missing from NEW".
    pub subject: String,
    /// Which rows or runs, e.g. "resumed, keepalive".
    pub detail: String,
    /// Whether its flag was given.
    pub allowed: bool,
}

impl Finding {
    /// The line printed for it: accepted findings name the flag that accepted them.
    pub fn text(&self) -> String {
        if self.allowed {
            format!(
                "{} allowed by {}: {}",
                self.subject,
                self.rule.flag(),
                self.detail
            )
        } else {
            format!(
                "REFUSED: {}: {} (exit 2; {} accepts this)",
                self.subject,
                self.detail,
                self.rule.flag()
            )
        }
    }
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

    /// The metric's value in `row` (None when that run did not measure it) and its unit.
    fn of(self, row: &Row) -> (Option<Stat>, String) {
        match self {
            Metric::ServerCpu => (row.server_cpu_us, format!("µs/{}", row.kind.op_unit())),
            Metric::ClientCpu => (
                Some(row.client_cpu_us),
                format!("µs/{}", row.kind.op_unit()),
            ),
            Metric::Rate => (Some(row.rate), row.kind.rate_unit().to_owned()),
            // Counted by `tlsbench icount`, never by a run.
            Metric::Instructions => (None, "instructions".to_owned()),
        }
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
    /// A results file has a schema version this build does not understand.
    #[error("{path} has schema version {found}; this tlsbench reads version {expected}")]
    Schema {
        /// The file.
        path: PathBuf,
        /// Its schema version.
        found: u32,
        /// [`SCHEMA_VERSION`].
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

/// Compares `metric` row by row between `old` and `new`; `threshold` is a fraction (0.1 = 10%).
/// Cases that are not like with like become [`Finding`]s, accepted where `allow` says so.
pub fn compare(
    old: &RunResults,
    new: &RunResults,
    metric: Metric,
    threshold: f64,
    allow: Allow,
) -> Comparison {
    let (lines, missing, only_in_old) = match_rows(
        &old.rows,
        &new.rows,
        |r| &r.name,
        |o, n| delta(o, n, metric, threshold),
    );
    let mut found = common_findings(metric, &lines, &missing[..only_in_old]);
    found.extend(run_findings(old, new));
    let notes = run_notes(old, new);
    Comparison::of(
        lines,
        missing,
        only_in_old,
        threshold,
        judged(found, allow),
        notes,
    )
}

/// Compares instructions row by row between two `tlsbench icount` reports, refusing counts
/// taken under different conditions ([`Rule::CountingMismatch`]) unless `allow` accepts them.
pub fn compare_instructions(
    old: &InstructionReport,
    new: &InstructionReport,
    threshold: f64,
    allow: Allow,
) -> Comparison {
    let (lines, missing, only_in_old) = match_rows(
        &old.rows,
        &new.rows,
        |r| &r.name,
        |o, n| {
            let stat = |r: &InstructionRow| Stat {
                median: r.instructions,
                min: r.min as f64,
                max: r.max as f64,
            };
            let d = Delta {
                name: o.name.clone(),
                unit: "instructions".to_owned(),
                old: o.instructions,
                new: n.instructions,
                change: f64::NAN,
                verdict: Verdict::NotComparable,
                overlap: false,
                note: String::new(),
            };
            judge(d, Some(stat(o)), Some(stat(n)), true, threshold)
        },
    );
    let mut found = common_findings(Metric::Instructions, &lines, &missing[..only_in_old]);
    let differing: Vec<String> = old
        .conditions()
        .into_iter()
        .zip(new.conditions())
        .filter(|((_, o), (_, n))| o != n)
        .map(|((what, o), (_, n))| format!("{what}: OLD {o:?}, NEW {n:?}"))
        .collect();
    if !differing.is_empty() {
        found.push((
            Rule::CountingMismatch,
            "instructions counted under different conditions".to_owned(),
            differing.join("; "),
        ));
    }
    let mut notes = Vec::new();
    if old.environment.rustc != new.environment.rustc {
        // Another compiler is a code change like any other: the gate judges its effect.
        notes.push(format!(
            "different compilers: OLD {:?}, NEW {:?}",
            old.environment.rustc, new.environment.rustc
        ));
    }
    Comparison::of(
        lines,
        missing,
        only_in_old,
        threshold,
        judged(found, allow),
        notes,
    )
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

/// One matched row's delta.
fn delta(o: &Row, n: &Row, metric: Metric, threshold: f64) -> Delta {
    let (old_stat, unit) = metric.of(o);
    let (new_stat, _) = metric.of(n);
    let mut d = Delta {
        name: o.name.clone(),
        unit,
        old: old_stat.map_or(f64::NAN, |s| s.median),
        new: new_stat.map_or(f64::NAN, |s| s.median),
        change: f64::NAN,
        verdict: Verdict::NotComparable,
        overlap: false,
        note: String::new(),
    };
    if o.kind != n.kind {
        // Same name, different measurement (handshakes/s vs req/s): numbers mean different things.
        d.note = format!("kind {} → {}", kind_name(o.kind), kind_name(n.kind));
        return d;
    }
    if old_stat.is_none() || new_stat.is_none() {
        let side = match (old_stat, new_stat) {
            (None, None) => "both",
            (None, Some(_)) => "OLD",
            _ => "NEW",
        };
        d.note = match metric {
            Metric::Instructions => format!("no instructions in {side}: a run's results.json"),
            _ => format!("no {} in {side} (--target run?)", metric.label()),
        };
        return d;
    }
    judge(d, old_stat, new_stat, metric.higher_is_worse(), threshold)
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

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Handshake => "handshake",
        Kind::Requests => "requests",
        Kind::Throughput => "throughput",
    }
}

/// Where OLD and NEW are not like with like, one finding per rule broken.
fn common_findings(
    metric: Metric,
    lines: &[Delta],
    missing_in_new: &[String],
) -> Vec<(Rule, String, String)> {
    let mut found: Vec<(Rule, String, String)> = Vec::new();
    if !missing_in_new.is_empty() {
        found.push((
            Rule::MissingRows,
            "rows missing from NEW".to_owned(),
            missing_in_new.join(", "),
        ));
    }
    let without: Vec<String> = lines
        .iter()
        .filter(|d| d.verdict == Verdict::NotComparable)
        .map(|d| format!("{} ({})", d.name, d.note))
        .collect();
    if !without.is_empty() {
        found.push((
            Rule::MissingMetric,
            format!("rows without a comparable {}", metric.label()),
            without.join(", "),
        ));
    }
    found
}

/// Where two runs of `tlsbench run` differ in how they were run.
fn run_findings(old: &RunResults, new: &RunResults) -> Vec<(Rule, String, String)> {
    let mut found = Vec::new();
    let incomplete: Vec<String> = [("OLD", old), ("NEW", new)]
        .into_iter()
        .filter_map(|(side, r)| r.incomplete.as_ref().map(|why| format!("{side} ({why})")))
        .collect();
    if !incomplete.is_empty() {
        found.push((
            Rule::Incomplete,
            "incomplete runs".to_owned(),
            incomplete.join(", "),
        ));
    }
    if old.quick != new.quick {
        found.push((
            Rule::ModeMismatch,
            "runs in different modes".to_owned(),
            format!("OLD {}, NEW {}", mode(old), mode(new)),
        ));
    }
    found
}

/// The findings, each accepted or refused by its flag in `allow`.
fn judged(found: Vec<(Rule, String, String)>, allow: Allow) -> Vec<Finding> {
    found
        .into_iter()
        .map(|(rule, subject, detail)| Finding {
            rule,
            subject,
            detail,
            allowed: rule.allowed_by(allow),
        })
        .collect()
}

fn mode(r: &RunResults) -> &'static str {
    if r.quick { "--quick" } else { "full" }
}

/// Caveats that do not fail the gate.
fn run_notes(old: &RunResults, new: &RunResults) -> Vec<String> {
    let mut notes = Vec::new();
    // CPU per operation from different processors says little about the code; a CI runner's
    // CPU model is not the author's to choose, so this stays a note.
    if old.environment.cpu_model != new.environment.cpu_model {
        notes.push(format!(
            "different CPUs: OLD {:?}, NEW {:?}",
            old.environment.cpu_model, new.environment.cpu_model
        ));
    }
    notes
}

/// A value with precision that suits its size.
fn num(v: f64) -> String {
    if !v.is_finite() {
        "—".to_owned()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The change as a signed percentage, with the overlap marker.
fn change_text(d: &Delta) -> String {
    if !d.change.is_finite() {
        return "—".to_owned();
    }
    let mark = if d.overlap && d.verdict != Verdict::Same {
        OVERLAP_MARK
    } else {
        ""
    };
    format!("{:+.1}%{mark}", d.change * 100.0)
}

fn verdict_text(d: &Delta) -> String {
    if d.note.is_empty() {
        d.verdict.label().to_owned()
    } else {
        format!("{} ({})", d.verdict.label(), d.note)
    }
}

/// The one-line summary both renderings start with.
fn summary(c: &Comparison, metric: Metric) -> String {
    let direction = if metric.higher_is_worse() {
        "higher is worse"
    } else {
        "lower is worse"
    };
    let mut outcome = match c.regressions {
        0 => "no regressions".to_owned(),
        1 => "1 regression".to_owned(),
        n => format!("{n} regressions"),
    };
    if !c.like_with_like() {
        outcome.push_str("; NOT LIKE WITH LIKE (exit 2, see REFUSED)");
    }
    format!(
        "{} {} ({direction}), threshold {:.1}%: {outcome}",
        metric.label(),
        match metric {
            Metric::Instructions => "per iteration",
            _ => "medians",
        },
        c.threshold * 100.0
    )
}

/// The gate's lines after the table: each finding (refused, or accepted with its flag), the
/// refusal of a comparison that compared nothing, rows only in NEW, then the notes.
fn trailer(c: &Comparison, metric: Metric) -> Vec<String> {
    let mut out: Vec<String> = c.findings.iter().map(Finding::text).collect();
    if c.compared() == 0 {
        out.push(format!(
            "REFUSED: no row was compared on {} (exit 2; no flag accepts a gate that checks \
             nothing)",
            metric.label()
        ));
    }
    let new_only = c.missing_in_old();
    if !new_only.is_empty() {
        out.push(format!(
            "rows only in NEW (not compared): {}",
            new_only.join(", ")
        ));
    }
    out.extend(c.notes.iter().map(|n| format!("note: {n}")));
    out
}

/// Whether any line carries the overlap marker (to print its legend only when used).
fn any_marked(c: &Comparison) -> bool {
    c.lines
        .iter()
        .any(|d| change_text(d).ends_with(OVERLAP_MARK))
}

/// Plain-text table for a terminal.
pub fn render_text(c: &Comparison, metric: Metric) -> String {
    let header = ["scenario", "old", "new", "unit", "change", "verdict"];
    let rows: Vec<[String; 6]> = c
        .lines
        .iter()
        .map(|d| {
            [
                d.name.clone(),
                num(d.old),
                num(d.new),
                d.unit.clone(),
                change_text(d),
                verdict_text(d),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    // Names and units read left-aligned, numbers right-aligned.
    let right = [false, true, true, false, true, false];
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            if i > 0 {
                s.push_str("  ");
            }
            if right[i] {
                s.push_str(&" ".repeat(pad));
                s.push_str(cell);
            } else {
                s.push_str(cell);
                if i + 1 < cells.len() {
                    s.push_str(&" ".repeat(pad));
                }
            }
        }
        s.push('\n');
        s
    };

    let mut out = summary(c, metric);
    out.push('\n');
    out.push_str(&line(&header.map(str::to_owned)));
    for r in &rows {
        out.push_str(&line(r));
    }
    if any_marked(c) {
        out.push_str("~ ranges (min..max over repeats) overlap: the change may be noise\n");
    }
    for line in trailer(c, metric) {
        let _ = writeln!(out, "{line}");
    }
    out
}

/// Markdown for CI job summaries: a summary line, a table with one line per row, then caveats.
pub fn render_markdown(c: &Comparison, metric: Metric) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "**{}**\n", summary(c, metric));
    out.push_str("| Scenario | Old | New | Unit | Change | Verdict |\n");
    out.push_str("|---|---:|---:|---|---:|---|\n");
    for d in &c.lines {
        let verdict = match d.verdict {
            Verdict::Regression => format!("**{}**", verdict_text(d)),
            _ => verdict_text(d),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            md_escape(&d.name),
            num(d.old),
            num(d.new),
            d.unit,
            md_escape(&change_text(d)),
            md_escape(&verdict)
        );
    }
    if any_marked(c) {
        out.push_str("\n\\~ ranges (min..max over repeats) overlap: the change may be noise\n");
    }
    let trailer = trailer(c, metric);
    if !trailer.is_empty() {
        out.push('\n');
    }
    for line in trailer {
        let line = md_escape(&line);
        // A refusal is the reason for the job's failure: it must not read like a footnote.
        match line.strip_prefix("REFUSED:") {
            Some(rest) => {
                let _ = writeln!(out, "- **REFUSED:**{rest}");
            }
            None => {
                let _ = writeln!(out, "- {line}");
            }
        }
    }
    out
}

/// Keeps a cell's text from breaking the table, and the overlap marker from reading as
/// GitHub's single-tilde strikethrough.
fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('~', "\\~")
}

fn load(path: &Path) -> Result<RunResults, CompareError> {
    let text = std::fs::read_to_string(path).map_err(|source| CompareError::Read {
        path: path.to_owned(),
        source,
    })?;
    let results: RunResults =
        serde_json::from_str(&text).map_err(|source| CompareError::Parse {
            path: path.to_owned(),
            source,
        })?;
    if results.schema_version != SCHEMA_VERSION {
        return Err(CompareError::Schema {
            path: path.to_owned(),
            found: results.schema_version,
            expected: SCHEMA_VERSION,
        });
    }
    Ok(results)
}

fn load_instructions(path: &Path) -> Result<InstructionReport, CompareError> {
    let text = std::fs::read_to_string(path).map_err(|source| CompareError::Read {
        path: path.to_owned(),
        source,
    })?;
    let report: InstructionReport =
        serde_json::from_str(&text).map_err(|source| CompareError::ParseInstructions {
            path: path.to_owned(),
            source,
        })?;
    if report.schema_version != icount::report::SCHEMA_VERSION {
        return Err(CompareError::Schema {
            path: path.to_owned(),
            found: report.schema_version,
            expected: icount::report::SCHEMA_VERSION,
        });
    }
    Ok(report)
}

/// Loads both files, prints the comparison, returns the exit code ([`EXIT_PASS`],
/// [`EXIT_REGRESSION`] or [`EXIT_NOT_COMPARABLE`]); an unreadable input is an error, for which
/// the caller exits [`EXIT_NOT_COMPARABLE`].
pub fn run(args: &CompareArgs) -> Result<i32, CompareError> {
    let c = if args.metric == Metric::Instructions {
        let old = load_instructions(&args.old)?;
        let new = load_instructions(&args.new)?;
        compare_instructions(&old, &new, args.threshold, args.allow)
    } else {
        let old = load(&args.old)?;
        let new = load(&args.new)?;
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
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn stat(v: f64) -> Stat {
        Stat {
            median: v,
            min: v * 0.98,
            max: v * 1.02,
        }
    }

    fn row(name: &str, kind: Kind, server_cpu: f64, rate: f64) -> Row {
        Row {
            name: name.to_owned(),
            kind,
            rate: stat(rate),
            latency_us: BTreeMap::new(),
            latency_merged_us: BTreeMap::new(),
            server_cpu_us: Some(stat(server_cpu)),
            client_cpu_us: stat(server_cpu * 1.5),
            handshakes: BTreeMap::new(),
            resumed_share: None,
            errors: 0,
            saturated: "neither".to_owned(),
            latency_hdr: String::new(),
            repeats: 3,
            per_repeat: Vec::new(),
            tls_cost: None,
        }
    }

    fn base() -> RunResults {
        RunResults::fixture(vec![
            row("full-p256", Kind::Handshake, 800.0, 1200.0),
            row("resumed", Kind::Handshake, 120.0, 9000.0),
            row("keepalive", Kind::Requests, 15.0, 50000.0),
            row("bulk-64k", Kind::Throughput, 900.0, 1100.0),
        ])
    }

    /// Writes `r` to a fresh temporary file.
    fn temp_json(r: &RunResults) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "tlsbench-compare-{}-{}.json",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, serde_json::to_string(r).unwrap()).unwrap();
        path
    }

    fn args(old: PathBuf, new: PathBuf, metric: Metric) -> CompareArgs {
        CompareArgs {
            old,
            new,
            threshold: 0.10,
            metric,
            markdown: false,
            allow: Allow::default(),
        }
    }

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
    }

    #[test]
    fn identical_runs_are_all_same() {
        let r = base();
        for metric in [Metric::ServerCpu, Metric::ClientCpu, Metric::Rate] {
            let c = compare(&r, &r, metric, 0.1, Allow::default());
            assert_eq!(c.regressions, 0);
            assert_eq!(c.lines.len(), 4);
            assert!(c.lines.iter().all(|d| d.verdict == Verdict::Same), "{c:?}");
            assert!(c.missing.is_empty());
        }
        let (o, n) = (temp_json(&r), temp_json(&r));
        assert_eq!(
            run(&args(o.clone(), n.clone(), Metric::ServerCpu)).unwrap(),
            0
        );
        let _ = (std::fs::remove_file(o), std::fs::remove_file(n));
    }

    #[test]
    fn server_cpu_increase_of_25_percent_is_a_regression() {
        let old = base();
        let mut new = base();
        new.rows[0].server_cpu_us = Some(stat(1000.0));
        let c = compare(&old, &new, Metric::ServerCpu, 0.1, Allow::default());
        assert_eq!(c.regressions, 1);
        assert_eq!(c.lines[0].verdict, Verdict::Regression);
        assert!((c.lines[0].change - 0.25).abs() < 1e-12);
        assert!(!c.lines[0].overlap);
        assert!(c.lines[1..].iter().all(|d| d.verdict == Verdict::Same));
        let text = render_text(&c, Metric::ServerCpu);
        assert!(
            text.contains("+25.0%") && text.contains("REGRESSION"),
            "{text}"
        );

        let (o, n) = (temp_json(&old), temp_json(&new));
        assert_eq!(
            run(&args(o.clone(), n.clone(), Metric::ServerCpu)).unwrap(),
            1
        );
        let _ = (std::fs::remove_file(o), std::fs::remove_file(n));
    }

    #[test]
    fn small_increase_is_worse_not_a_regression() {
        let old = base();
        let mut new = base();
        new.rows[2].server_cpu_us = Some(Stat {
            median: 15.75,
            min: 15.2,
            max: 16.1,
        });
        let c = compare(&old, &new, Metric::ServerCpu, 0.1, Allow::default());
        assert_eq!(c.regressions, 0);
        assert_eq!(c.lines[2].verdict, Verdict::Worse);
        // OLD's range is 14.7..15.3, NEW's 15.2..16.1: they overlap, so possibly noise.
        assert!(c.lines[2].overlap);
        assert!(render_text(&c, Metric::ServerCpu).contains("+5.0%~"));

        let (o, n) = (temp_json(&old), temp_json(&new));
        assert_eq!(
            run(&args(o.clone(), n.clone(), Metric::ServerCpu)).unwrap(),
            0
        );
        let _ = (std::fs::remove_file(o), std::fs::remove_file(n));
    }

    #[test]
    fn exactly_at_threshold_is_not_a_regression() {
        let old = base();
        let mut new = base();
        new.rows[0].server_cpu_us = Some(stat(880.0));
        let c = compare(&old, &new, Metric::ServerCpu, 0.1, Allow::default());
        assert_eq!(c.lines[0].verdict, Verdict::Worse);
    }

    #[test]
    fn rate_drop_is_a_regression_and_cpu_drop_is_better() {
        let old = base();
        let mut new = base();
        new.rows[1].rate = stat(7200.0);
        new.rows[3].rate = stat(1300.0);
        let c = compare(&old, &new, Metric::Rate, 0.1, Allow::default());
        assert_eq!(c.regressions, 1);
        assert_eq!(c.lines[1].verdict, Verdict::Regression);
        assert!((c.lines[1].change + 0.2).abs() < 1e-12);
        assert_eq!(c.lines[3].verdict, Verdict::Better);
        assert_eq!(c.lines[1].unit, "handshakes/s");

        new.rows[0].server_cpu_us = Some(stat(400.0));
        let c = compare(&old, &new, Metric::ServerCpu, 0.1, Allow::default());
        assert_eq!(c.lines[0].verdict, Verdict::Better);
        assert_eq!(c.regressions, 0);
    }

    #[test]
    fn missing_rows_are_listed_by_side() {
        let old = base();
        let mut new = base();
        new.rows.remove(1);
        new.rows.push(row("brand-new", Kind::Requests, 10.0, 10.0));
        let c = compare(&old, &new, Metric::ServerCpu, 0.1, Allow::default());
        assert_eq!(c.lines.len(), 3);
        assert_eq!(
            c.missing,
            vec!["resumed".to_owned(), "brand-new".to_owned()]
        );
        assert_eq!(c.missing_in_new(), ["resumed".to_owned()]);
        assert_eq!(c.missing_in_old(), ["brand-new".to_owned()]);
        let text = render_text(&c, Metric::ServerCpu);
        assert!(text.contains("rows missing from NEW: resumed"), "{text}");
        assert!(
            text.contains("rows only in NEW (not compared): brand-new"),
            "{text}"
        );
    }

    #[test]
    fn missing_metric_or_other_kind_is_not_comparable() {
        let old = base();
        let mut new = base();
        for r in &mut new.rows {
            r.server_cpu_us = None;
        }
        new.rows[2].kind = Kind::Throughput;
        let c = compare(&old, &new, Metric::ServerCpu, 0.1, Allow::default());
        assert_eq!(c.regressions, 0);
        assert!(c.lines.iter().all(|d| d.verdict == Verdict::NotComparable));
        assert!(c.lines[2].note.contains("kind"));
        assert_eq!(c.compared(), 0);
        assert_eq!(c.exit_code(), EXIT_NOT_COMPARABLE);
        // Rate is still comparable for the rows whose kind did not change.
        let c = compare(&old, &new, Metric::Rate, 0.1, Allow::default());
        assert_eq!(c.lines[0].verdict, Verdict::Same);
        assert_eq!(c.lines[2].verdict, Verdict::NotComparable);
    }

    #[test]
    fn markdown_has_a_header_and_one_line_per_row() {
        let old = base();
        let mut new = base();
        new.rows[0].server_cpu_us = Some(stat(1000.0));
        let c = compare(&old, &new, Metric::ServerCpu, 0.1, Allow::default());
        let md = render_markdown(&c, Metric::ServerCpu);
        let table: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
        assert_eq!(table.len(), 2 + old.rows.len(), "{md}");
        assert!(table[0].contains("Scenario") && table[0].contains("Change"));
        assert!(table[1].starts_with("|---"));
        for r in &old.rows {
            assert_eq!(
                table
                    .iter()
                    .filter(|l| l.contains(&format!("| {} |", r.name)))
                    .count(),
                1
            );
        }
        assert!(md.contains("**REGRESSION**"));
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

    /// One rule end to end: without `allow` the gate exits 2 and names the flag that would
    /// accept the case; with it the gate passes and says the flag accepted it.
    fn refused_unless_allowed(
        old: &RunResults,
        new: &RunResults,
        metric: Metric,
        rule: Rule,
        allow: Allow,
        detail: &str,
    ) {
        let strict = compare(old, new, metric, 0.1, Allow::default());
        assert_eq!(strict.exit_code(), EXIT_NOT_COMPARABLE, "{strict:?}");
        let refused: Vec<&Finding> = strict.refused().collect();
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].rule, rule);
        let text = render_text(&strict, metric);
        assert!(text.contains("NOT LIKE WITH LIKE"), "{text}");
        let line = format!("REFUSED: {}: {detail}", refused[0].subject);
        assert!(text.contains(&line), "no {line:?} in\n{text}");
        assert!(text.contains(rule.flag()), "{text}");
        let md = render_markdown(&strict, metric);
        assert!(md.contains("- **REFUSED:**"), "{md}");

        let allowed = compare(old, new, metric, 0.1, allow);
        assert_eq!(allowed.exit_code(), EXIT_PASS, "{allowed:?}");
        let text = render_text(&allowed, metric);
        assert!(!text.contains("REFUSED"), "{text}");
        let line = format!(
            "{} allowed by {}: {detail}",
            allowed.findings[0].subject,
            rule.flag()
        );
        assert!(text.contains(&line), "no {line:?} in\n{text}");
        assert!(render_markdown(&allowed, metric).contains(rule.flag()));
    }

    #[test]
    fn baseline_row_missing_from_new_is_refused_unless_allowed() {
        let old = base();
        let mut new = base();
        new.rows
            .retain(|r| r.name != "resumed" && r.name != "bulk-64k");
        let allow = Allow {
            missing_rows: true,
            ..Allow::default()
        };
        refused_unless_allowed(
            &old,
            &new,
            Metric::ServerCpu,
            Rule::MissingRows,
            allow,
            "resumed, bulk-64k",
        );
    }

    #[test]
    fn rows_only_in_new_are_listed_not_refused() {
        let old = base();
        let mut new = base();
        new.rows.push(row("brand-new", Kind::Requests, 10.0, 10.0));
        let c = compare(&old, &new, Metric::ServerCpu, 0.1, Allow::default());
        assert_eq!(c.exit_code(), EXIT_PASS);
        assert!(c.findings.is_empty());
        assert!(
            render_text(&c, Metric::ServerCpu)
                .contains("rows only in NEW (not compared): brand-new")
        );
    }

    #[test]
    fn missing_metric_is_refused_unless_allowed() {
        let old = base();
        let mut new = base();
        new.rows[1].server_cpu_us = None;
        let allow = Allow {
            missing_metric: true,
            ..Allow::default()
        };
        refused_unless_allowed(
            &old,
            &new,
            Metric::ServerCpu,
            Rule::MissingMetric,
            allow,
            "resumed (no server CPU in NEW (--target run?))",
        );
        // Another kind under the same name is no comparable metric either.
        let mut new = base();
        new.rows[2].kind = Kind::Throughput;
        refused_unless_allowed(
            &old,
            &new,
            Metric::Rate,
            Rule::MissingMetric,
            allow,
            "keepalive (kind requests → throughput)",
        );
        // A zero baseline measured nothing.
        let mut old = base();
        old.rows[3].server_cpu_us = Some(Stat::default());
        let mut new = base();
        new.rows[3].server_cpu_us = Some(stat(5.0));
        refused_unless_allowed(
            &old,
            &new,
            Metric::ServerCpu,
            Rule::MissingMetric,
            allow,
            "bulk-64k (OLD is zero)",
        );
    }

    #[test]
    fn incomplete_run_is_refused_unless_allowed() {
        let old = base();
        let mut new = base();
        new.incomplete = Some("interrupted".to_owned());
        let allow = Allow {
            incomplete: true,
            ..Allow::default()
        };
        refused_unless_allowed(
            &old,
            &new,
            Metric::ServerCpu,
            Rule::Incomplete,
            allow,
            "NEW (interrupted)",
        );
        // An incomplete baseline is no better.
        refused_unless_allowed(
            &new,
            &old,
            Metric::ServerCpu,
            Rule::Incomplete,
            allow,
            "OLD (interrupted)",
        );
    }

    #[test]
    fn quick_against_full_is_refused_unless_allowed() {
        let old = base();
        let mut new = base();
        new.quick = false;
        let allow = Allow {
            mode_mismatch: true,
            ..Allow::default()
        };
        refused_unless_allowed(
            &old,
            &new,
            Metric::Rate,
            Rule::ModeMismatch,
            allow,
            "OLD --quick, NEW full",
        );
    }

    #[test]
    fn a_gate_that_compared_nothing_is_refused_whatever_the_flags() {
        let all = Allow {
            missing_rows: true,
            missing_metric: true,
            incomplete: true,
            mode_mismatch: true,
            counting_mismatch: true,
        };
        let old = base();
        let mut target_run = base();
        for r in &mut target_run.rows {
            r.server_cpu_us = None;
        }
        let c = compare(&old, &target_run, Metric::ServerCpu, 0.1, all);
        assert!(c.refused().next().is_none());
        assert_eq!(c.exit_code(), EXIT_NOT_COMPARABLE);
        let text = render_text(&c, Metric::ServerCpu);
        assert!(
            text.contains("REFUSED: no row was compared on server CPU"),
            "{text}"
        );
        // No row in common at all.
        let mut renamed = base();
        for r in &mut renamed.rows {
            r.name.push_str("-v2");
        }
        let c = compare(&old, &renamed, Metric::Rate, 0.1, all);
        assert_eq!(c.exit_code(), EXIT_NOT_COMPARABLE);
    }

    #[test]
    fn not_like_with_like_wins_over_a_regression() {
        let old = base();
        let mut new = base();
        new.rows[0].server_cpu_us = Some(stat(1000.0));
        new.quick = false;
        let c = compare(&old, &new, Metric::ServerCpu, 0.1, Allow::default());
        assert_eq!(c.regressions, 1);
        assert_eq!(c.exit_code(), EXIT_NOT_COMPARABLE);
        let allow = Allow {
            mode_mismatch: true,
            ..Allow::default()
        };
        let c = compare(&old, &new, Metric::ServerCpu, 0.1, allow);
        assert_eq!(c.exit_code(), EXIT_REGRESSION);
    }

    #[test]
    fn other_cpu_model_is_a_note_not_a_refusal() {
        let old = base();
        let mut new = base();
        new.environment.cpu_model = format!("not {}", old.environment.cpu_model);
        let c = compare(&old, &new, Metric::ServerCpu, 0.1, Allow::default());
        assert_eq!(c.exit_code(), EXIT_PASS);
        assert!(render_text(&c, Metric::ServerCpu).contains("note: different CPUs"));
    }

    #[test]
    fn run_exits_2_on_files_not_alike_and_0_with_the_flag() {
        let old = base();
        let mut new = base();
        new.incomplete = Some("Ctrl-C".to_owned());
        let (o, n) = (temp_json(&old), temp_json(&new));
        let mut a = args(o.clone(), n.clone(), Metric::ServerCpu);
        assert_eq!(run(&a).unwrap(), EXIT_NOT_COMPARABLE);
        a.allow.incomplete = true;
        assert_eq!(run(&a).unwrap(), EXIT_PASS);
        let _ = (std::fs::remove_file(o), std::fs::remove_file(n));
    }

    fn instructions(rows: &[(&str, f64)]) -> InstructionReport {
        InstructionReport {
            schema_version: icount::report::SCHEMA_VERSION,
            tool: "tlsbench icount".to_owned(),
            started_utc: "2025-01-01T00:00:00Z".to_owned(),
            iterations: 3,
            profile: "release".to_owned(),
            valgrind: "valgrind-3.19.0".to_owned(),
            cpu_features: vec!["aes".to_owned(), "avx2".to_owned(), "pclmulqdq".to_owned()],
            environment: common::env::Environment::collect(),
            rows: rows
                .iter()
                .map(|&(name, n)| InstructionRow {
                    name: name.to_owned(),
                    instructions: n,
                    min: n as u64,
                    max: n as u64,
                    iterations: vec![n as u64; 3],
                })
                .collect(),
        }
    }

    fn instructions_base() -> InstructionReport {
        instructions(&[
            ("full tls1.3 x25519 rsa2048 / server", 7_230_803.0),
            ("full tls1.3 x25519 ecdsa-p256 / server", 1_171_222.0),
            ("record seal tls1.3 aes-128-gcm 16KiB", 73_238.0),
        ])
    }

    /// Runs `tlsbench compare --metric instructions --threshold 2%` on two written reports.
    fn run_instructions(old: &InstructionReport, new: &InstructionReport, allow: Allow) -> i32 {
        let write = |r: &InstructionReport| {
            static N: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "tlsbench-compare-icount-{}-{}.json",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::write(&path, serde_json::to_string(r).unwrap()).unwrap();
            path
        };
        let (o, n) = (write(old), write(new));
        let mut a = args(o.clone(), n.clone(), Metric::Instructions);
        a.threshold = 0.02;
        a.allow = allow;
        let code = run(&a).unwrap();
        let _ = std::fs::remove_file(o);
        let _ = std::fs::remove_file(n);
        code
    }

    #[test]
    fn instructions_plus_5_percent_exits_1_and_the_same_file_exits_0() {
        let old = instructions_base();
        assert_eq!(run_instructions(&old, &old, Allow::default()), EXIT_PASS);
        let mut new = old.clone();
        new.rows[1].instructions *= 1.05;
        assert_eq!(
            run_instructions(&old, &new, Allow::default()),
            EXIT_REGRESSION
        );
        let c = compare_instructions(&old, &new, 0.02, Allow::default());
        assert_eq!(c.lines[1].verdict, Verdict::Regression);
        assert_eq!(c.lines[0].verdict, Verdict::Same);
        assert!(render_text(&c, Metric::Instructions).contains("instructions per iteration"));
        // Within the threshold is worse, not a regression; fewer is better.
        let mut new = old.clone();
        new.rows[0].instructions *= 1.015;
        new.rows[2].instructions *= 0.9;
        let c = compare_instructions(&old, &new, 0.02, Allow::default());
        assert_eq!(
            c.lines.iter().map(|d| d.verdict).collect::<Vec<_>>(),
            [Verdict::Worse, Verdict::Same, Verdict::Better]
        );
        assert_eq!(c.exit_code(), EXIT_PASS);
    }

    #[test]
    fn instructions_under_other_cpu_features_are_refused_unless_allowed() {
        let old = instructions_base();
        let mut new = old.clone();
        new.cpu_features.push("avx512f".to_owned());
        assert_eq!(
            run_instructions(&old, &new, Allow::default()),
            EXIT_NOT_COMPARABLE
        );
        let c = compare_instructions(&old, &new, 0.02, Allow::default());
        let text = render_text(&c, Metric::Instructions);
        assert!(text.contains("REFUSED: instructions counted under different conditions"));
        assert!(text.contains("CPU features"), "{text}");
        assert!(text.contains("--allow-counting-mismatch"), "{text}");
        let allow = Allow {
            counting_mismatch: true,
            ..Allow::default()
        };
        assert_eq!(run_instructions(&old, &new, allow), EXIT_PASS);
        let text = render_text(
            &compare_instructions(&old, &new, 0.02, allow),
            Metric::Instructions,
        );
        assert!(
            text.contains("allowed by --allow-counting-mismatch"),
            "{text}"
        );
        // Valgrind's version and the build profile are conditions too.
        for change in [
            |r: &mut InstructionReport| r.valgrind = "valgrind-3.22.0".to_owned(),
            |r: &mut InstructionReport| r.profile = "debug".to_owned(),
        ] {
            let mut new = old.clone();
            change(&mut new);
            assert_eq!(
                run_instructions(&old, &new, Allow::default()),
                EXIT_NOT_COMPARABLE
            );
        }
    }

    #[test]
    fn instructions_keep_the_strictness_rules() {
        let old = instructions_base();
        let mut new = old.clone();
        new.rows.pop();
        assert_eq!(
            run_instructions(&old, &new, Allow::default()),
            EXIT_NOT_COMPARABLE
        );
        let allow = Allow {
            missing_rows: true,
            ..Allow::default()
        };
        assert_eq!(run_instructions(&old, &new, allow), EXIT_PASS);
        let mut new = old.clone();
        new.rows[0].instructions = f64::NAN;
        let c = compare_instructions(&old, &new, 0.02, Allow::default());
        assert_eq!(c.exit_code(), EXIT_NOT_COMPARABLE);
        assert_eq!(c.findings[0].rule, Rule::MissingMetric);
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
