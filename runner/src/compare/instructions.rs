//! Two `tlsbench icount` reports compared on instructions, refusing counts taken under
//! different conditions.

use std::path::PathBuf;

use icount::report::{Report as InstructionReport, Row as InstructionRow};

use super::alike::{common_findings, judged};
use super::{
    Allow, CompareError, Comparison, Delta, Document, Metric, Rule, Verdict, judge, match_rows,
};
use crate::results::Stat;

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

impl Document for InstructionReport {
    const SCHEMA_VERSION: u32 = icount::report::SCHEMA_VERSION;

    fn not_this(path: PathBuf, source: serde_json::Error) -> CompareError {
        CompareError::ParseInstructions { path, source }
    }

    fn schema_version(&self) -> u32 {
        self.schema_version
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::super::fixtures::args;
    use super::super::{EXIT_NOT_COMPARABLE, EXIT_PASS, EXIT_REGRESSION, render_text, run};
    use super::*;

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
}
