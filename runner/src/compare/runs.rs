//! Two `tlsbench run` results compared on a run's metrics: server CPU, client CPU or rate.

use std::path::PathBuf;

use super::alike::{common_findings, judged, run_findings, run_notes};
use super::{Allow, CompareError, Comparison, Delta, Document, Metric, Verdict, judge, match_rows};
use crate::results::{Row, RowKind, RunResults, SCHEMA_VERSION, Stat};

impl Metric {
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

/// Compares `metric` row by row between `old` and `new`; `threshold` is a fraction (0.1 = 10%).
/// Cases that are not like with like become [`Finding`](super::Finding)s, accepted where `allow` says so.
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

fn kind_name(k: RowKind) -> &'static str {
    match k {
        RowKind::Handshake => "handshake",
        RowKind::Requests => "requests",
        RowKind::Throughput => "throughput",
    }
}

impl Document for RunResults {
    const SCHEMA_VERSION: u32 = SCHEMA_VERSION;

    fn not_this(path: PathBuf, source: serde_json::Error) -> CompareError {
        CompareError::Parse { path, source }
    }

    fn schema_version(&self) -> u32 {
        self.schema_version
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::fixtures::{args, base, row, stat, temp_json};
    use super::super::{EXIT_NOT_COMPARABLE, render_text, run};
    use super::*;

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
        new.rows
            .push(row("brand-new", RowKind::Requests, 10.0, 10.0));
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
        new.rows[2].kind = RowKind::Throughput;
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
}
