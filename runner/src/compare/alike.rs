//! The like-with-like rules: when two runs or reports may be compared at all, the
//! `--allow-…` flag that accepts each case, and the caveats that are only notes.

use super::{Delta, Metric, Verdict};
use crate::results::RunResults;

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

/// Where OLD and NEW are not like with like, one finding per rule broken.
pub(super) fn common_findings(
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
pub(super) fn run_findings(old: &RunResults, new: &RunResults) -> Vec<(Rule, String, String)> {
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
pub(super) fn judged(found: Vec<(Rule, String, String)>, allow: Allow) -> Vec<Finding> {
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
pub(super) fn run_notes(old: &RunResults, new: &RunResults) -> Vec<String> {
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::fixtures::{args, base, row, stat, temp_json};
    use super::super::*;
    use crate::results::{RowKind, RunResults, Stat};

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
        new.rows
            .push(row("brand-new", RowKind::Requests, 10.0, 10.0));
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
        new.rows[2].kind = RowKind::Throughput;
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
}
