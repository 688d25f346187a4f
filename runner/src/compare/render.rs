//! The comparison as text: a plain table for a terminal and Markdown for CI job summaries.

use std::fmt::Write as _;

use super::{Comparison, Delta, Finding, Metric, Verdict};

/// The marker after a change whose OLD and NEW ranges (min..max over repeats) overlap.
const OVERLAP_MARK: &str = "~";

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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::fixtures::{base, stat};
    use super::super::{Allow, compare};
    use super::*;

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
}
