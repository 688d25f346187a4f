//! The two files of a report: the Markdown tables and the CSV rows, from the measurements and
//! ratios computed once.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::LeftOut;
use crate::marker::RunMarker;
use crate::ratios::{
    HANDSHAKE_TARGET, HandshakeId, Ratio, SEAL_TARGET, handshake_ratios, seal_ratios, side_rank,
    sum_of,
};
use crate::results::Measurement;

/// Bytes in a MiB, for the binary throughput column.
pub(crate) const MIB: f64 = 1024.0 * 1024.0;

/// Everything the two output files show, computed once.
pub(crate) struct Report<'a> {
    pub(crate) handshakes: Vec<&'a Measurement>,
    pub(crate) records: Vec<&'a Measurement>,
    pub(crate) floor: Vec<&'a Measurement>,
    pub(crate) http: Vec<&'a Measurement>,
    pub(crate) other: Vec<&'a Measurement>,
    pub(crate) ratios: Vec<Ratio>,
    /// `parse/hello + encode/hello` in ns, or the missing IDs.
    pub(crate) http_overhead: Result<f64, Vec<String>>,
    /// The run every figure comes from.
    pub(crate) run: &'a RunMarker,
    /// Results in no figure because another run or profile wrote them.
    pub(crate) left_out: &'a [LeftOut],
}

impl<'a> Report<'a> {
    pub(crate) fn new(
        measurements: &'a [Measurement],
        run: &'a RunMarker,
        left_out: &'a [LeftOut],
    ) -> Self {
        let by_group = |group: &str| -> Vec<&'a Measurement> {
            measurements.iter().filter(|m| m.group == group).collect()
        };
        let mut handshakes = by_group("handshake");
        handshakes.sort_by(|a, b| {
            let rank = |m: &Measurement| {
                HandshakeId::parse(&m.id).map_or(side_rank(""), |h| side_rank(h.side))
            };
            rank(a).cmp(&rank(b)).then_with(|| a.id.cmp(&b.id))
        });
        let mut records = by_group("record");
        // By op and suite, then by size as a number (criterion's IDs sort 16384 before 64).
        records.sort_by_cached_key(|m| {
            let (head, size) = m.id.rsplit_once('/').unwrap_or((m.id.as_str(), ""));
            (
                head.to_owned(),
                size.parse::<u64>().unwrap_or(u64::MAX),
                m.id.clone(),
            )
        });
        let floor = by_group("floor");
        let http = by_group("http");
        let other = measurements
            .iter()
            .filter(|m| !["handshake", "record", "floor", "http"].contains(&m.group.as_str()))
            .collect();

        let floor_map: BTreeMap<&str, &Measurement> =
            floor.iter().map(|m| (m.id.as_str(), *m)).collect();
        let mut ratios = handshake_ratios(&handshakes, &floor_map);
        ratios.extend(seal_ratios(&records, &floor_map));

        let http_map: BTreeMap<&str, &Measurement> =
            http.iter().map(|m| (m.id.as_str(), *m)).collect();
        let http_overhead = sum_of(&http_map, "http", &["parse/hello", "encode/hello"]);

        Report {
            handshakes,
            records,
            floor,
            http,
            other,
            ratios,
            http_overhead,
            run,
            left_out,
        }
    }

    pub(crate) fn markdown(&self, stamp: &str, criterion_dir: &Path) -> String {
        let mut md = String::new();
        // Writing to a String cannot fail; the results are ignored for that reason.
        let _ = writeln!(md, "# tlsbench bench report {stamp}\n");
        let _ = writeln!(
            md,
            "Source: `{}`. Every figure is a criterion median; \"not measured\" means the \
             bench (or a floor component) has no result there.\n",
            criterion_dir.display()
        );
        let _ = writeln!(
            md,
            "Run: {} profile, started {} ({}); every figure is from this run.\n",
            self.run.profile.name(),
            common::env::utc_rfc3339(self.run.started()),
            self.run.invocation
        );
        if !self.left_out.is_empty() {
            let _ = writeln!(
                md,
                "> **Left out: {} result(s) from another run or profile.** They are in no \
                 figure below; rerun their benches to report them.\n>",
                self.left_out.len()
            );
            for l in self.left_out {
                let _ = writeln!(md, "> - `{}`: {}", l.id, l.reason);
            }
            md.push('\n');
        }

        md.push_str("## Handshakes\n\n");
        if self.handshakes.is_empty() {
            md.push_str("Handshakes: not measured.\n\n");
        } else {
            md.push_str("| side | protocol | kx | cert | kind | µs/handshake | handshakes/s |\n");
            md.push_str("|---|---|---|---|---|---:|---:|\n");
            for m in &self.handshakes {
                let per_op = m.per_op_ns();
                let cols = match HandshakeId::parse(&m.id) {
                    Some(h) => [h.side, h.proto, h.kx, h.cert, h.kind].join(" | "),
                    None => format!("{} | | | | ", m.id),
                };
                let _ = writeln!(
                    md,
                    "| {cols} | {} | {} |",
                    fmt_us(per_op),
                    fmt_rate(1e9 / per_op)
                );
            }
            md.push('\n');
        }

        md.push_str("## Records\n\n");
        if self.records.is_empty() {
            md.push_str("Records: not measured.\n\n");
        } else {
            md.push_str("| op | suite | size | µs/record | GB/s | MiB/s |\n");
            md.push_str("|---|---|---:|---:|---:|---:|\n");
            for m in &self.records {
                let parts: Vec<&str> = m.id.splitn(3, '/').collect();
                let (op, suite, size) = match parts.as_slice() {
                    [op, suite, size] => (*op, *suite, *size),
                    _ => (m.id.as_str(), "", ""),
                };
                let bps = m.bytes_per_s(size.parse::<f64>().ok());
                let _ = writeln!(
                    md,
                    "| {op} | {suite} | {size} | {} | {} | {} |",
                    fmt_us(m.median_ns),
                    bps.map_or_else(not_measured, fmt_gbps),
                    bps.map_or_else(not_measured, fmt_mibps),
                );
            }
            md.push('\n');
        }

        md.push_str("## Floor ratios\n\n");
        let _ = writeln!(
            md,
            "Server full TLS 1.3 handshake ÷ (`floor/sign/{{cert}}` + server-side \
             `floor/kx/..` + `floor/hkdf/tls13-schedule`), target <= {HANDSHAKE_TARGET}. \
             Client: ÷ (`floor/verify/{{cert}}` + client-side kx + hkdf); the client's floor \
             counts one CertificateVerify only, since chain verification is cached by the \
             product. Pair: ÷ (sign + verify + both sides' kx + 2 × hkdf). Record sealing \
             at 16 KiB: record throughput ÷ `floor/aead/seal/{{alg}}/16384` throughput, \
             target >= {SEAL_TARGET}.\n"
        );
        md.push_str("| measured | ratio | target | status | floor |\n");
        md.push_str("|---|---:|---|---|---|\n");
        for r in &self.ratios {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} |",
                r.subject,
                r.value.map_or_else(not_measured, |v| format!("{v:.2}")),
                r.target.text(),
                r.status(),
                r.detail
            );
        }
        md.push('\n');

        md.push_str("## Crypto floor\n\n");
        if self.floor.is_empty() {
            md.push_str("Crypto floor: not measured.\n\n");
        } else {
            md.push_str("| primitive | µs/op | ops/s | GB/s |\n");
            md.push_str("|---|---:|---:|---:|\n");
            for m in &self.floor {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} |",
                    m.id,
                    fmt_us(m.per_op_ns()),
                    fmt_rate(1e9 / m.per_op_ns()),
                    m.bytes_per_s(None).map_or_else(String::new, fmt_gbps),
                );
            }
            md.push('\n');
        }

        md.push_str("## HTTP per-request overhead\n\n");
        let overhead = match &self.http_overhead {
            Ok(ns) => format!("{ns:.1} ns (parse/hello + encode/hello)"),
            Err(missing) => format!("not measured (missing {})", missing.join(", ")),
        };
        let _ = writeln!(md, "Per request outside TLS: {overhead}.\n");
        if !self.http.is_empty() {
            md.push_str("| bench | ns/op | ops/s | MiB/s |\n");
            md.push_str("|---|---:|---:|---:|\n");
            for m in &self.http {
                let _ = writeln!(
                    md,
                    "| {} | {:.1} | {} | {} |",
                    m.id,
                    m.per_op_ns(),
                    fmt_rate(1e9 / m.per_op_ns()),
                    m.bytes_per_s(None).map_or_else(String::new, fmt_mibps),
                );
            }
            md.push('\n');
        }

        if !self.other.is_empty() {
            md.push_str("## Other benches\n\n| bench | µs/op |\n|---|---:|\n");
            for m in &self.other {
                let _ = writeln!(md, "| {}/{} | {} |", m.group, m.id, fmt_us(m.per_op_ns()));
            }
            md.push('\n');
        }
        md
    }

    /// One row per figure: `section,id,metric,value,unit,target,status`. A figure that was not
    /// measured has an empty value and the status "not measured".
    pub(crate) fn csv(&self) -> String {
        let mut csv = Csv(String::from("section,id,metric,value,unit,target,status\n"));
        let profile = Some(self.run.profile.name().to_owned());
        csv.value("run", "", "profile", profile, "");
        let started = Some(common::env::utc_rfc3339(self.run.started()));
        csv.value("run", "", "started_utc", started, "");
        for l in self.left_out {
            csv.line(["left_out", &l.id, ""], None, "", "", &l.reason);
        }
        if self.handshakes.is_empty() {
            csv.value("handshake", "", "", None, "");
        }
        for m in &self.handshakes {
            let per_op = m.per_op_ns();
            csv.value("handshake", &m.id, "us_per_op", micros(per_op), "us");
            let rate = Some(format!("{:.1}", 1e9 / per_op));
            csv.value("handshake", &m.id, "ops_per_s", rate, "1/s");
        }
        if self.records.is_empty() {
            csv.value("record", "", "", None, "");
        }
        for m in &self.records {
            let size = m.id.rsplit('/').next().and_then(|s| s.parse::<f64>().ok());
            csv.value("record", &m.id, "us_per_op", micros(m.median_ns), "us");
            let bps = m.bytes_per_s(size).map(|b| format!("{b:.0}"));
            csv.value("record", &m.id, "bytes_per_s", bps, "B/s");
        }
        for r in &self.ratios {
            let value = r.value.map(|v| format!("{v:.4}"));
            let target = r.target.text();
            csv.line(
                ["floor_ratio", &r.subject, "ratio"],
                value,
                "x",
                &target,
                r.status(),
            );
        }
        for m in &self.floor {
            csv.value("floor", &m.id, "us_per_op", micros(m.per_op_ns()), "us");
            if let Some(bps) = m.bytes_per_s(None) {
                csv.value(
                    "floor",
                    &m.id,
                    "bytes_per_s",
                    Some(format!("{bps:.0}")),
                    "B/s",
                );
            }
        }
        let overhead = self
            .http_overhead
            .as_ref()
            .ok()
            .map(|ns| format!("{ns:.1}"));
        csv.value("http", "per-request", "ns_per_op", overhead, "ns");
        for m in &self.http {
            let ns = Some(format!("{:.1}", m.per_op_ns()));
            csv.value("http", &m.id, "ns_per_op", ns, "ns");
        }
        for m in &self.other {
            let id = format!("{}/{}", m.group, m.id);
            csv.value("other", &id, "us_per_op", micros(m.per_op_ns()), "us");
        }
        csv.0
    }
}

/// Microseconds with 3 decimals, from nanoseconds.
pub(crate) fn micros(ns: f64) -> Option<String> {
    Some(format!("{:.3}", ns / 1e3))
}

/// The CSV text being built.
pub(crate) struct Csv(String);

impl Csv {
    /// A row without a target; `None` is reported as "not measured".
    pub(crate) fn value(
        &mut self,
        section: &str,
        id: &str,
        metric: &str,
        value: Option<String>,
        unit: &str,
    ) {
        let status = if value.is_some() { "" } else { "not measured" };
        self.line([section, id, metric], value, unit, "", status);
    }

    pub(crate) fn line(
        &mut self,
        key: [&str; 3],
        value: Option<String>,
        unit: &str,
        target: &str,
        status: &str,
    ) {
        let value = value.unwrap_or_default();
        let fields = [key[0], key[1], key[2], &value, unit, target, status];
        let fields: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        self.0.push_str(&fields.join(","));
        self.0.push('\n');
    }
}

pub(crate) fn not_measured() -> String {
    "not measured".to_owned()
}

pub(crate) fn fmt_us(ns: f64) -> String {
    format!("{:.2}", ns / 1e3)
}

pub(crate) fn fmt_rate(per_s: f64) -> String {
    format!("{per_s:.0}")
}

/// Decimal gigabytes per second, 3 decimals.
pub(crate) fn fmt_gbps(bytes_per_s: f64) -> String {
    format!("{:.3}", bytes_per_s / 1e9)
}

/// Binary mebibytes per second, 1 decimal.
pub(crate) fn fmt_mibps(bytes_per_s: f64) -> String {
    format!("{:.1}", bytes_per_s / MIB)
}

/// A CSV field, quoted when it holds a comma, quote or line break (RFC 4180).
pub(crate) fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}
