//! The report of `tlsbench run`: the markdown table (printed and in `summary.md`),
//! `results.json`, and the charts.

use std::fmt::Write as _;
use std::path::Path;

use crate::results::{OpsFrom, Row, RowKind, RunResults, Stat};
use crate::{RunError, charts, harness, profile};

pub(crate) fn fmt_stat(s: &Stat, digits: usize) -> String {
    if (s.max - s.min).abs() < f64::EPSILON {
        format!("{:.*}", digits, s.median)
    } else {
        format!(
            "{:.*} [{:.*}–{:.*}]",
            digits, s.median, digits, s.min, digits, s.max
        )
    }
}

/// The results table (markdown), as printed and as summary.md holds it.
pub fn table(r: &RunResults) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "| scenario | rate | p50 µs | p99 µs | p99.9 µs | server CPU µs/op | TLS cost µs/op | client CPU µs/op | full / resumed / full after HRR / resumed after HRR | resumed | handshake B c→s / s→c: mean (p99) | errors | saturated |"
    );
    let _ = writeln!(
        o,
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|"
    );
    for row in &r.rows {
        let lat = |k: &str| {
            row.latency_merged_us
                .get(k)
                .map_or("-".into(), |v| format!("{v:.0}"))
        };
        let h = |k: &str| row.handshakes.get(k).copied().unwrap_or(0);
        let _ = writeln!(
            o,
            "| {} | {} {} | {} | {} | {} | {} | {} | {} /{} | {} / {} / {} / {} | {} | {} | {} | {} |",
            name_cell(row),
            fmt_stat(
                &row.rate,
                if row.kind == RowKind::Throughput {
                    1
                } else {
                    0
                }
            ),
            row.kind.rate_unit(),
            lat("p50"),
            lat("p99"),
            lat("p99.9"),
            match (&row.server_cpu_us, &r.target) {
                (Some(s), _) => format!(
                    "{} /{}{}",
                    fmt_stat(s, 1),
                    row.kind.op_unit(),
                    client_count_mark(row)
                ),
                (None, Some(_)) => "- (not ours)".into(),
                // A local server not measured fails the row's sanity check; say so here too.
                (None, None) => "MISSING".into(),
            },
            tls_cost_cell(row),
            fmt_stat(&row.client_cpu_us, 1),
            row.kind.op_unit(),
            h("full"),
            h("resumed"),
            h("full_hrr"),
            h("resumed_hrr"),
            row.resumed_share
                .map_or("-".into(), |s| format!("{:.1}%", s * 100.0)),
            handshake_bytes_cell(row),
            row.errors,
            row.saturated
        );
    }
    if r.rows.iter().any(|row| !client_count_mark(row).is_empty()) {
        let _ = writeln!(o, "\n{CLIENT_COUNT_NOTE}");
    }
    o.push_str(&skipped(r));
    o
}

/// The scenario cell: the name, and the certificate when the server presented another than
/// the scenario names.
fn name_cell(row: &Row) -> String {
    match (&row.cert, &row.presented_cert, row.cert_label()) {
        (Some(c), Some(p), Some(label)) if c != p => format!("{} — cert {label}", row.name),
        _ => row.name.clone(),
    }
}

/// The rows the server could not honour, with why, under the table; empty when none.
pub(crate) fn skipped(r: &RunResults) -> String {
    let mut o = String::new();
    if r.skipped.is_empty() {
        return o;
    }
    let _ = writeln!(
        o,
        "\nSkipped {} row(s) the server cannot honour (not run; not a failure):",
        r.skipped.len()
    );
    for k in &r.skipped {
        let _ = writeln!(o, "- {} ({}): {}", k.name, k.kind.op_unit(), k.reason);
    }
    o
}

/// The note under a table whose server CPU divides by the generator's count.
const CLIENT_COUNT_NOTE: &str =
    "ᶜ server CPU ÷ the generator's count of operations: the server's own counts are not read";

/// The mark of a server CPU cell whose operations are the client's count.
fn client_count_mark(row: &Row) -> &'static str {
    match (row.server_ops_from, &row.server_cpu_us) {
        (OpsFrom::Client, Some(_)) => " ᶜ",
        _ => "",
    }
}

/// Bytes per handshake each way; "-" where no handshake completed.
fn handshake_bytes_cell(row: &Row) -> String {
    match &row.handshake_bytes {
        Some(h) => {
            let (o, i) = (&h.client_to_server, &h.server_to_client);
            format!(
                "{:.0} ({:.0}) / {:.0} ({:.0})",
                o.mean, o.p99, i.mean, i.p99
            )
        }
        None => "-".into(),
    }
}

/// A TLS row's cost over its floor; "-" on floor rows and where there is none (the reason is
/// in results.json: `tls_cost.missing`).
fn tls_cost_cell(row: &Row) -> String {
    match row.tls_cost.as_ref() {
        Some(c) => match c.us {
            Some(us) if c.within_noise => format!("{us:.1}~"),
            Some(us) => format!("{us:.1}"),
            None => "-".into(),
        },
        None => "-".into(),
    }
}

pub(crate) fn write_results(r: &RunResults, dir: &Path) -> Result<(), RunError> {
    harness::write_json(r, &dir.join("results.json"))?;
    let mut md = String::new();
    let _ = writeln!(md, "# tlsbench run — {}\n", r.started_utc);
    let e = &r.environment;
    let _ = writeln!(
        md,
        "{} ({} cores), {}, kernel {}, {}; tlsbench {} at {}; {}; server CPUs {:?}, generator CPUs {:?}; {:.0} s{}\n",
        e.cpu_model,
        e.cores,
        e.os,
        e.kernel,
        e.rustc,
        e.tlsbench_version,
        e.git_revision,
        if r.quick { "quick mode" } else { "full mode" },
        r.server_cpus,
        r.client_cpus,
        r.duration_s,
        r.incomplete
            .as_ref()
            .map_or(String::new(), |w| format!("; INCOMPLETE: {w}"))
    );
    if !r.command.is_empty() {
        // Program name as `tlsbench`, whatever path it was started from: the line is meant
        // to be run again.
        let args = r.command.iter().skip(1).map(|a| shell_word(a));
        let line = std::iter::once("tlsbench".to_owned()).chain(args);
        let _ = writeln!(md, "Made with: `{}`\n", line.collect::<Vec<_>>().join(" "));
    }
    md.push_str(&table(r));
    md.push_str("\nRates and CPU are medians over repeats, [min–max] when they differ. p50 / p99 / p99.9 µs: percentiles of the whole operation (with a new connection per request: connect, handshake and request) over every request of every repeat's measured window — the repeats' histograms merged, not a median of per-repeat percentiles (those are in results.json as latency_us, each repeat's histogram as per_repeat[].latency_hdr). CPU µs/op: the side's CPU time over the measured window ÷ its own count of operations (server: from its admin counters). TLS cost µs/op: the row's server CPU per operation minus that of the plain-HTTP floor row (tls = \"none\") doing the same operation (a new connection, a keep-alive request, the same body size and direction); \"-\" on floor rows and where the matrix has no floor (results.json says why: rows[].tls_cost.missing); a figure marked ~ is within the noise — the row's and its floor's server CPU ranges overlap over the repeats, or it is below zero, which TLS cannot really cost (rows[].tls_cost.within_noise). MB = 10^6 bytes.\n");
    md.push_str(&profile::breakdown::table(r));
    std::fs::write(dir.join("summary.md"), md).map_err(harness::io_err("writing summary.md"))?;
    charts::write_charts(r, dir).map_err(|e| RunError::Io {
        what: "writing charts".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    profile::chart::write(r, &dir.join("profile.svg")).map_err(|e| RunError::Io {
        what: "writing profile.svg".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(())
}

/// `a` as one word of a POSIX shell command line: bare when it holds only safe characters,
/// single-quoted otherwise.
fn shell_word(a: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c);
    if !a.is_empty() && a.chars().all(safe) {
        a.to_owned()
    } else {
        format!("'{}'", a.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::results::TlsCost;

    #[test]
    fn the_table_has_a_tls_cost_column_with_a_dash_where_there_is_no_floor() {
        let base = crate::results::tests_support::row("tls", RowKind::Requests);
        let with = Row {
            tls_cost: Some(TlsCost {
                floor: Some("floor".into()),
                us: Some(12.34),
                within_noise: false,
                missing: None,
            }),
            ..base.clone()
        };
        let without = Row {
            name: "unmatched".into(),
            tls_cost: Some(TlsCost {
                floor: None,
                us: None,
                within_noise: false,
                missing: Some("no plain row".into()),
            }),
            ..base.clone()
        };
        let noisy = Row {
            name: "noisy".into(),
            tls_cost: Some(TlsCost {
                floor: Some("floor".into()),
                us: Some(-1.26),
                within_noise: true,
                missing: None,
            }),
            ..base.clone()
        };
        let t = table(&RunResults::fixture(vec![with, without, noisy]));
        let lines: Vec<&str> = t.lines().collect();
        let header: Vec<&str> = lines[0].split('|').map(str::trim).collect();
        let col = header.iter().position(|h| *h == "TLS cost µs/op").unwrap();
        let cell = |line: &str| line.split('|').map(str::trim).nth(col).unwrap().to_owned();
        assert_eq!(cell(lines[2]), "12.3");
        assert_eq!(cell(lines[3]), "-");
        assert_eq!(cell(lines[4]), "-1.3~");
        assert_eq!(
            lines[1].split('|').count(),
            lines[0].split('|').count(),
            "the separator row has a cell per column"
        );
    }

    #[test]
    fn the_table_names_the_presented_certificate_when_it_differs_and_lists_skipped_rows() {
        let base = crate::results::tests_support::row("full rsa2048", RowKind::Handshake);
        let other = Row {
            cert: Some("rsa2048".into()),
            presented_cert: Some("ecdsa-p256".into()),
            ..base.clone()
        };
        let same = Row {
            name: "full ecdsa".into(),
            cert: Some("ecdsa-p256".into()),
            presented_cert: Some("ecdsa-p256".into()),
            ..base
        };
        let mut r = RunResults::fixture(vec![other, same]);
        let t = table(&r);
        assert!(
            t.contains("| full rsa2048 — cert rsa2048 (server presented ecdsa-p256) |"),
            "{t}"
        );
        assert!(t.contains("| full ecdsa |"), "{t}");
        assert!(!t.contains("Skipped"), "{t}");
        r.skipped.push(crate::results::SkippedRow {
            name: "full mlkem".into(),
            kind: RowKind::Handshake,
            reason: "the server offers none of the groups X25519MLKEM768".into(),
        });
        let t = table(&r);
        assert!(
            t.contains(
                "- full mlkem (handshake): the server offers none of the groups X25519MLKEM768"
            ),
            "{t}"
        );
    }

    #[test]
    fn server_cpu_over_the_clients_count_is_marked_and_explained() {
        let ours = crate::results::tests_support::row("ours", RowKind::Handshake);
        let t = table(&RunResults::fixture(vec![ours.clone()]));
        assert!(!t.contains('ᶜ'), "{t}");
        let foreign = Row {
            server_ops_from: OpsFrom::Client,
            ..ours
        };
        let t = table(&RunResults::fixture(vec![foreign]));
        assert!(t.contains("100.0 /handshake ᶜ |"), "{t}");
        assert!(t.ends_with(&format!("{CLIENT_COUNT_NOTE}\n")), "{t}");
    }

    #[test]
    fn the_table_shows_handshake_bytes_each_way_and_a_dash_without_handshakes() {
        use crate::results::{BytesPerHandshake, HandshakeBytes};
        let base = crate::results::tests_support::row("none", RowKind::Requests);
        let with = Row {
            name: "hs".into(),
            handshake_bytes: Some(HandshakeBytes {
                client_to_server: BytesPerHandshake {
                    mean: 1601.4,
                    p99: 1603.0,
                },
                server_to_client: BytesPerHandshake {
                    mean: 2810.0,
                    p99: 2811.0,
                },
            }),
            ..base.clone()
        };
        let t = table(&RunResults::fixture(vec![with, base]));
        let lines: Vec<&str> = t.lines().collect();
        let header: Vec<&str> = lines[0].split('|').map(str::trim).collect();
        let col = header
            .iter()
            .position(|h| h.starts_with("handshake B"))
            .unwrap();
        let cell = |line: &str| line.split('|').map(str::trim).nth(col).unwrap().to_owned();
        assert_eq!(cell(lines[2]), "1601 (1603) / 2810 (2811)");
        assert_eq!(cell(lines[3]), "-");
        assert_eq!(lines[2].split('|').count(), lines[0].split('|').count());
    }

    #[test]
    fn command_words_are_quoted_only_when_a_shell_would_split_or_expand_them() {
        assert_eq!(shell_word("--quick"), "--quick");
        assert_eq!(shell_word("results/reference"), "results/reference");
        assert_eq!(shell_word("my file.toml"), "'my file.toml'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word("$HOME"), "'$HOME'");
        assert_eq!(shell_word(""), "''");
    }
}
