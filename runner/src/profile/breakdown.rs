//! A side's component breakdown of one row: folded stacks counted per
//! [`Component`], as shares of that side's samples and µs per
//! operation (share × the row's measured CPU per operation), and the summary table of them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::components::{Component, classify};
use crate::results::RunResults;

/// Folded stacks: `frame;frame;...;leaf` (root first, thread name dropped) → samples.
pub type Folded = BTreeMap<String, u64>;

/// One component's part of a side's samples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// Which component.
    pub component: Component,
    /// Sampled CPU it got, ns (perf's cpu-clock period summed over its samples).
    pub sampled_ns: u64,
    /// Its share of the side's samples, percent.
    pub share_pct: f64,
    /// share × the side's CPU µs per operation (None when that CPU was not measured).
    pub us_per_op: Option<f64>,
}

/// Where one side's CPU went during a row's measured windows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Breakdown {
    /// Sampled CPU over all repeats' windows, ns: perf's `cpu-clock` samples weighted by
    /// their period (about 1 ms each at 999 Hz).
    pub sampled_ns: u64,
    /// Percent of samples in a component other than "other".
    pub named_pct: f64,
    /// Percent of samples whose stack was walked back to its thread's root ([`ROOTS`]):
    /// how complete perf's call graphs were (stacks cut short can still be classified by
    /// their leaf frames, but lose their callers in the flame graph).
    pub complete_pct: f64,
    /// Every component with at least one sample, in [`Component::ALL`] order.
    pub parts: Vec<Part>,
    /// The folded stacks, relative to the results directory.
    pub folded: String,
    /// The flame graph SVG, relative to the results directory.
    pub flamegraph: String,
}

/// The breakdowns of one row (results.json `profile`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RowProfile {
    /// perf's call-graph mode: "fp" or "dwarf".
    pub call_graph: String,
    /// The server child's breakdown, when profiled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<Breakdown>,
    /// The load generator's threads' breakdown, when profiled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<Breakdown>,
}

/// The outermost frames of a thread's stack on Linux: a stack that starts with one was
/// walked completely.
pub const ROOTS: &[&str] = &[
    "clone3",
    "__clone3",
    "clone",
    "__clone",
    "start_thread",
    "_start",
    "__libc_start_main",
    "__libc_start_call_main",
];

/// Why a breakdown could not be made.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("no samples: perf recorded nothing of this side in the measured window")]
pub struct NoSamples;

/// The breakdown of `folded`, with `cpu_us_per_op` the side's measured CPU per operation.
/// No samples is an error: an empty profile is never written.
pub fn breakdown(
    folded: &Folded,
    cpu_us_per_op: Option<f64>,
    files: (String, String),
) -> Result<Breakdown, NoSamples> {
    let mut counts: BTreeMap<Component, u64> = BTreeMap::new();
    let mut complete = 0;
    for (stack, n) in folded {
        let frames: Vec<&str> = stack.split(';').collect();
        *counts.entry(classify(&frames)).or_default() += n;
        if frames.first().is_some_and(|f| ROOTS.contains(f)) {
            complete += n;
        }
    }
    let samples: u64 = counts.values().sum();
    if samples == 0 {
        return Err(NoSamples);
    }
    let parts: Vec<Part> = Component::ALL
        .iter()
        .filter_map(|c| counts.get(c).map(|n| (*c, *n)))
        .map(|(component, n)| {
            let share = n as f64 / samples as f64;
            Part {
                component,
                sampled_ns: n,
                share_pct: share * 100.0,
                us_per_op: cpu_us_per_op.map(|cpu| share * cpu),
            }
        })
        .collect();
    let other = counts.get(&Component::Other).copied().unwrap_or(0);
    Ok(Breakdown {
        sampled_ns: samples,
        named_pct: (samples - other) as f64 * 100.0 / samples as f64,
        complete_pct: complete as f64 * 100.0 / samples as f64,
        parts,
        folded: files.0,
        flamegraph: files.1,
    })
}

/// The breakdown table of every profiled row, in matrix order (markdown, for summary.md);
/// empty when no row was profiled.
pub fn table(r: &RunResults) -> String {
    let mut o = String::new();
    let profiled: Vec<(&str, &str, &Breakdown)> = r
        .rows
        .iter()
        .filter_map(|row| r.profiles.get(&row.name).map(|p| (row.name.as_str(), p)))
        .flat_map(|(r, p)| {
            [("server", &p.server), ("client", &p.client)]
                .into_iter()
                .filter_map(move |(side, b)| b.as_ref().map(|b| (r, side, b)))
        })
        .collect();
    if profiled.is_empty() {
        return o;
    }
    let _ = writeln!(
        o,
        "\n## Where the CPU goes (perf cpu-clock samples of the measured windows)\n"
    );
    let _ = write!(o, "| scenario | side | sampled ms | named | whole stacks |");
    for c in Component::ALL {
        let _ = write!(o, " {} |", c.label());
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "|---|---|---:|---:|---:|{}",
        "---:|".repeat(Component::ALL.len())
    );
    for (name, side, b) in profiled {
        let _ = write!(
            o,
            "| {name} | {side} | {:.0} | {:.1}% | {:.1}% |",
            b.sampled_ns as f64 / 1e6,
            b.named_pct,
            b.complete_pct
        );
        for c in Component::ALL {
            let cell = match b.parts.iter().find(|p| p.component == c) {
                None => "-".to_owned(),
                Some(p) => match p.us_per_op {
                    Some(us) => format!("{us:.1} ({:.1}%)", p.share_pct),
                    None => format!("{:.1}%", p.share_pct),
                },
            };
            let _ = write!(o, " {cell} |");
        }
        let _ = writeln!(o);
    }
    let _ = writeln!(
        o,
        "\nCells: µs per operation of the row (share of that side's samples); µs = share × the side's CPU µs/op. Components and their rules: runner/src/profile/components.rs."
    );
    o
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn folded(lines: &[(&str, u64)]) -> Folded {
        lines.iter().map(|(s, n)| ((*s).to_owned(), *n)).collect()
    }

    #[test]
    fn shares_sum_to_100_and_microseconds_to_the_cpu_per_op() {
        let f = folded(&[
            (
                "clone3;start_thread;server::run;aws_lc_0_47_0_ECDSA_sign",
                30,
            ),
            ("server::run;rustls::x;aws_lc_0_47_0_HKDF", 20),
            ("server::run;rustls::x", 10),
            ("std::x", 3),
            ("server::run;tcp_sendmsg_[k]", 37),
        ]);
        let b = breakdown(&f, Some(200.0), ("a".into(), "b".into())).unwrap();
        assert_eq!(b.sampled_ns, 100);
        let share: f64 = b.parts.iter().map(|p| p.share_pct).sum();
        assert!((share - 100.0).abs() < 1e-9, "{share}");
        let us: f64 = b.parts.iter().filter_map(|p| p.us_per_op).sum();
        assert!((us - 200.0).abs() < 1e-9, "{us}");
        assert!((b.named_pct - 97.0).abs() < 1e-9, "{}", b.named_pct);
        assert!((b.complete_pct - 30.0).abs() < 1e-9, "{}", b.complete_pct);
        let sig = &b.parts[0];
        assert_eq!(sig.component, Component::Signatures);
        assert_eq!(sig.us_per_op, Some(60.0));
    }

    #[test]
    fn no_samples_is_an_error_and_unmeasured_cpu_gives_no_microseconds() {
        assert_eq!(
            breakdown(&Folded::new(), Some(1.0), Default::default()),
            Err(NoSamples)
        );
        assert_eq!(
            breakdown(&folded(&[("x", 0)]), Some(1.0), Default::default()),
            Err(NoSamples)
        );
        let b = breakdown(&folded(&[("rustls::x", 4)]), None, Default::default()).unwrap();
        assert_eq!(b.parts[0].us_per_op, None);
    }

    #[test]
    fn the_table_has_a_line_per_profiled_row_in_matrix_order() {
        use crate::profile::chart::tests::profiled;
        let r = profiled(&[
            (
                "b",
                &[(Component::Signatures, 30.0), (Component::Rustls, 10.0)],
            ),
            ("skipped", &[]),
            ("a", &[(Component::Aead, 5.0)]),
        ]);
        let t = table(&r);
        let lines: Vec<&str> = t.lines().filter(|l| l.starts_with("| ")).collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(
            lines[1].starts_with("| b | server | 1 | 100.0% | 100.0% | 30.0 (75.0%) | - |"),
            "{t}"
        );
        assert!(lines[2].starts_with("| a | server |"), "{t}");
        assert!(!t.contains("skipped"));
        assert_eq!(table(&profiled(&[("x", &[])])), "");
    }
}
