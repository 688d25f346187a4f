//! `tlsbench compare A B --side-by-side`: two runs' rows next to each other with the ratio B/A
//! for each chosen metric, each run labelled by its server software; as plain text, Markdown
//! or an SVG chart (`side_chart`). A report, never a gate.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::results::{Row, RunResults};

/// A metric shown side by side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Column {
    /// Handshakes/s, req/s or MB/s (median over repeats).
    Rate,
    /// Server CPU µs per operation (median); absent for a `--target` run without server CPU.
    ServerCpu,
    /// Load-generator CPU µs per operation (median).
    ClientCpu,
    /// The 99th percentile of the whole operation's latency over all repeats, µs.
    P99,
}

impl Column {
    /// Every column, in the order they are shown by default.
    pub const ALL: [Column; 4] = [
        Column::Rate,
        Column::ServerCpu,
        Column::ClientCpu,
        Column::P99,
    ];

    /// The column's name in headers.
    pub fn label(self) -> &'static str {
        match self {
            Column::Rate => "rate",
            Column::ServerCpu => "server CPU/op",
            Column::ClientCpu => "client CPU/op",
            Column::P99 => "p99",
        }
    }

    /// The row's value, None when the row does not have it.
    fn value(self, row: &Row) -> Option<f64> {
        match self {
            Column::Rate => Some(row.rate.median),
            Column::ServerCpu => row.server_cpu_us.map(|s| s.median),
            Column::ClientCpu => Some(row.client_cpu_us.median),
            Column::P99 => row.latency_merged_us.get("p99").copied(),
        }
    }

    /// The value with its unit, in the row's terms.
    fn format(self, row: &Row, v: f64) -> String {
        match self {
            Column::Rate if row.kind == crate::results::RowKind::Throughput => {
                format!("{v:.1} {}", row.kind.rate_unit())
            }
            Column::Rate => format!("{v:.0} {}", row.kind.rate_unit()),
            Column::ServerCpu | Column::ClientCpu => {
                format!("{v:.1} µs/{}", row.kind.op_unit())
            }
            Column::P99 => format!("{v:.0} µs"),
        }
    }
}

/// One metric of one row in both runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    /// A's value, formatted with its unit; None when A's row lacks the metric.
    pub a: Option<String>,
    /// B's value, likewise.
    pub b: Option<String>,
    /// B ÷ A; None when either is missing, A is zero, or the rows' kinds differ.
    pub ratio: Option<f64>,
}

/// A row present in both runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    /// Scenario name.
    pub name: String,
    /// One cell per chosen column, in order.
    pub cells: Vec<Cell>,
    /// Why the ratios are missing for the whole row (kinds differ); empty otherwise.
    pub note: String,
    /// What differs between the two rows without stopping the ratios: the certificates the
    /// servers presented; empty otherwise.
    pub caveat: String,
}

/// Two runs side by side.
#[derive(Clone, Debug, PartialEq)]
pub struct SideBySide {
    /// Run A's label (its server software).
    pub a: String,
    /// Run B's label.
    pub b: String,
    /// The metrics shown.
    pub columns: Vec<Column>,
    /// Rows in both, in A's order.
    pub lines: Vec<Line>,
    /// Rows in one run only: the name, which run has it, and why the other has not (its
    /// skip reason, or that it was not in its matrix).
    pub only: Vec<(String, char, String)>,
}

/// How a run is labelled: its server software, else what it can be inferred from, said so.
pub fn server_label(r: &RunResults) -> String {
    match (&r.server_software, &r.target) {
        (Some(s), _) => s.clone(),
        (None, Some(url)) => format!("{url} (server software not recorded; the --target)"),
        (None, None) => "tlsbench-server (server software not recorded; inferred)".to_owned(),
    }
}

/// The side-by-side view of `a` and `b` on `columns`.
pub fn side_by_side(a: &RunResults, b: &RunResults, columns: &[Column]) -> SideBySide {
    // First row of a name wins on both sides, as in the gate.
    let mut b_rows: BTreeMap<&str, &Row> = BTreeMap::new();
    for row in &b.rows {
        b_rows.entry(row.name.as_str()).or_insert(row);
    }
    let a_names: BTreeMap<&str, &Row> = a.rows.iter().map(|r| (r.name.as_str(), r)).collect();
    let why_absent = |run: &RunResults, name: &str| {
        run.skipped
            .iter()
            .find(|k| k.name == name)
            .map_or("not in its matrix".to_owned(), |k| {
                format!("skipped there: {}", k.reason)
            })
    };
    let mut lines = Vec::new();
    let mut only = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for ra in &a.rows {
        if !seen.insert(ra.name.as_str()) {
            continue;
        }
        let Some(rb) = b_rows.get(ra.name.as_str()) else {
            only.push((ra.name.clone(), 'A', why_absent(b, &ra.name)));
            continue;
        };
        let same_kind = ra.kind == rb.kind;
        let cells = columns
            .iter()
            .map(|c| {
                let (va, vb) = (c.value(ra), c.value(rb));
                Cell {
                    a: va.map(|v| c.format(ra, v)),
                    b: vb.map(|v| c.format(rb, v)),
                    ratio: match (va, vb) {
                        (Some(x), Some(y)) if same_kind && x > 0.0 && y.is_finite() => Some(y / x),
                        _ => None,
                    },
                }
            })
            .collect();
        let caveat = match (&ra.presented_cert, &rb.presented_cert) {
            (Some(x), Some(y)) if x != y => {
                format!("the servers presented other certificates: A {x}, B {y}")
            }
            _ => String::new(),
        };
        lines.push(Line {
            name: ra.name.clone(),
            cells,
            caveat,
            note: if same_kind {
                String::new()
            } else {
                format!(
                    "kinds differ ({} in A, {} in B)",
                    ra.kind.op_unit(),
                    rb.kind.op_unit()
                )
            },
        });
    }
    let mut seen_b = std::collections::BTreeSet::new();
    for rb in &b.rows {
        if !a_names.contains_key(rb.name.as_str()) && seen_b.insert(rb.name.as_str()) {
            only.push((rb.name.clone(), 'B', why_absent(a, &rb.name)));
        }
    }
    SideBySide {
        a: server_label(a),
        b: server_label(b),
        columns: columns.to_vec(),
        lines,
        only,
    }
}

fn ratio_text(c: &Cell) -> String {
    c.ratio.map_or("-".to_owned(), |r| format!("{r:.2}×"))
}

fn value_text(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "missing".to_owned())
}

/// The header cells and each line's cells, as both renderings lay them out.
fn grid(s: &SideBySide) -> (Vec<String>, Vec<Vec<String>>) {
    let mut header = vec!["scenario".to_owned()];
    for c in &s.columns {
        header.push(format!("{} A", c.label()));
        header.push(format!("{} B", c.label()));
        header.push(format!("{} B/A", c.label()));
    }
    let rows = s
        .lines
        .iter()
        .map(|l| {
            let notes: Vec<&str> = [l.note.as_str(), l.caveat.as_str()]
                .into_iter()
                .filter(|n| !n.is_empty())
                .collect();
            let mut cells = vec![if notes.is_empty() {
                l.name.clone()
            } else {
                format!("{} ({})", l.name, notes.join("; "))
            }];
            for c in &l.cells {
                cells.extend([value_text(&c.a), value_text(&c.b), ratio_text(c)]);
            }
            cells
        })
        .collect();
    (header, rows)
}

fn only_lines(s: &SideBySide, o: &mut String, bullet: &str) {
    if s.only.is_empty() {
        return;
    }
    let _ = writeln!(o, "\nRows in one run only (not compared):");
    for (name, run, why) in &s.only {
        let other = if *run == 'A' { 'B' } else { 'A' };
        let _ = writeln!(o, "{bullet}{name}: in {run} only ({other}: {why})");
    }
}

/// The plain-text table, columns aligned.
pub fn render_text(s: &SideBySide) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "A: {}\nB: {}\n", s.a, s.b);
    let (header, rows) = grid(s);
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            std::iter::once(&header)
                .chain(&rows)
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                let pad = w.saturating_sub(c.chars().count());
                if i == 0 {
                    format!("{c}{}", " ".repeat(pad))
                } else {
                    format!("{}{c}", " ".repeat(pad))
                }
            })
            .collect();
        let _ = writeln!(o, "{}", cells.join("  ").trim_end());
    }
    only_lines(s, &mut o, "  ");
    o
}

/// The Markdown table.
pub fn render_markdown(s: &SideBySide) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "A: **{}** · B: **{}**\n", s.a, s.b);
    let (header, rows) = grid(s);
    let _ = writeln!(o, "| {} |", header.join(" | "));
    let align: Vec<&str> = (0..header.len())
        .map(|i| if i == 0 { "---" } else { "---:" })
        .collect();
    let _ = writeln!(o, "|{}|", align.join("|"));
    for r in rows {
        let _ = writeln!(o, "| {} |", r.join(" | "));
    }
    only_lines(s, &mut o, "- ");
    o
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::fixtures::base;
    use super::*;
    use crate::results::{RowKind, SkippedRow};

    fn pair() -> (RunResults, RunResults) {
        let a = base();
        let mut b = base();
        b.server_software = Some("nginx/1.22.1".into());
        b.target = Some("https://localhost:8443/".into());
        for r in &mut b.rows {
            r.rate.median *= 2.0;
        }
        b.rows.retain(|r| r.name != "bulk-64k");
        b.skipped.push(SkippedRow {
            name: "bulk-64k".into(),
            kind: RowKind::Throughput,
            reason: "GET /bytes/65536: 404".into(),
        });
        b.rows[0].server_cpu_us = None;
        b.rows.push(crate::compare::fixtures::row(
            "b-only",
            RowKind::Requests,
            1.0,
            1.0,
        ));
        (a, b)
    }

    #[test]
    fn rows_of_both_get_both_values_and_the_ratio_rows_of_one_are_listed() {
        let (a, b) = pair();
        let s = side_by_side(&a, &b, &[Column::Rate, Column::ServerCpu]);
        assert_eq!(s.b, "nginx/1.22.1");
        assert_eq!(
            s.a,
            "tlsbench-server (server software not recorded; inferred)"
        );
        let names: Vec<&str> = s.lines.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["full-p256", "resumed", "keepalive"]);
        for l in &s.lines {
            let r = l.cells[0].ratio.unwrap();
            assert!((r - 2.0).abs() < 1e-9, "{l:?}");
        }
        // B's first row has no server CPU: both values shown as they are, no ratio.
        assert_eq!(s.lines[0].cells[1].b, None);
        assert_eq!(s.lines[0].cells[1].ratio, None);
        assert!((s.lines[1].cells[1].ratio.unwrap() - 1.0).abs() < 1e-9);
        assert_eq!(
            s.only,
            [
                (
                    "bulk-64k".to_owned(),
                    'A',
                    "skipped there: GET /bytes/65536: 404".to_owned()
                ),
                ("b-only".to_owned(), 'B', "not in its matrix".to_owned()),
            ]
        );
        let text = render_text(&s);
        assert!(text.contains("A: tlsbench-server"), "{text}");
        assert!(text.contains("B: nginx/1.22.1"), "{text}");
        assert!(text.contains("2.00×"), "{text}");
        assert!(
            text.contains("bulk-64k: in A only (B: skipped there: GET /bytes/65536: 404)"),
            "{text}"
        );
        let md = render_markdown(&s);
        let table: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
        assert_eq!(table.len(), 2 + 3, "{md}");
        assert!(
            table
                .iter()
                .all(|l| l.matches('|').count() == 1 + 1 + 2 * 3),
            "{md}"
        );
        assert!(table[2].contains("| missing | - |"), "{md}");
    }

    #[test]
    fn a_run_without_software_is_labelled_by_its_target_and_said_to_be_inferred() {
        let mut r = base();
        r.target = Some("https://nginx.test/".into());
        assert_eq!(
            server_label(&r),
            "https://nginx.test/ (server software not recorded; the --target)"
        );
    }

    #[test]
    fn rows_of_different_kinds_get_no_ratio_and_other_certificates_a_caveat() {
        let (a, mut b) = pair();
        b.rows[1].kind = RowKind::Requests;
        b.rows[0].presented_cert = Some("ecdsa-p256".into());
        let mut a = a;
        a.rows[0].presented_cert = Some("rsa2048".into());
        let s = side_by_side(&a, &b, &[Column::Rate]);
        assert_eq!(
            s.lines[0].caveat,
            "the servers presented other certificates: A rsa2048, B ecdsa-p256"
        );
        assert!(
            s.lines[0].cells[0].ratio.is_some(),
            "a caveat keeps the ratio"
        );
        assert!(
            render_text(&s).contains("full-p256 (the servers presented other certificates"),
            "{}",
            render_text(&s)
        );
        assert_eq!(s.lines[1].caveat, "");
        assert_eq!(s.lines[1].cells[0].ratio, None);
        assert_eq!(
            s.lines[1].note,
            "kinds differ (handshake in A, request in B)"
        );
    }
}
