//! The summary of a bench run (`tlsbench bench-report`): reads criterion's output directory and
//! writes one Markdown and one CSV file with handshake rates, record throughput, the ratios of
//! handshakes and records to the crypto floor, and the HTTP per-request overhead.
//!
//! Every figure comes from a criterion `new/estimates.json` median; a figure whose inputs are
//! missing is reported as "not measured", never estimated.
//!
//! A report is one bench run. Criterion keeps every benchmark's last result, whichever run made
//! it, so the report reads the run marker the benches leave ([`crate::marker`]) and keeps only
//! measurements written after that run started with its profile's sample count. The rest
//! (older runs, a filtered run's untouched benches, another profile) are left out of every
//! figure and listed first in both files.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Deserialize;

use crate::marker::{self, MarkerError, RunMarker};

/// Bytes in a MiB, for the binary throughput column.
const MIB: f64 = 1024.0 * 1024.0;

/// The record size at which sealing is compared with the floor: a full TLS record.
const FULL_RECORD: &str = "16384";

/// The highest acceptable handshake time as a multiple of its crypto floor.
pub const HANDSHAKE_TARGET: f64 = 1.3;

/// The lowest acceptable record sealing throughput as a fraction of the raw AEAD's.
pub const SEAL_TARGET: f64 = 0.9;

/// The AEAD algorithms of the floor (`floor/aead/seal/{alg}/16384`), in report order.
const AEAD_ALGS: [&str; 3] = ["aes-128-gcm", "aes-256-gcm", "chacha20-poly1305"];

/// Errors of reading criterion's output and writing the report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The criterion directory does not exist (no bench has been run yet).
    #[error("{} does not exist; run `cargo bench -p benches` first", dir.display())]
    MissingDir {
        /// The directory looked for.
        dir: PathBuf,
    },
    /// The criterion directory holds no `new/benchmark.json` + `new/estimates.json` pair.
    #[error("no criterion results under {}; run `cargo bench -p benches` first", dir.display())]
    NoResults {
        /// The directory searched.
        dir: PathBuf,
    },
    /// Reading a file or directory, or writing a report file, failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A criterion JSON file did not parse.
    #[error("{}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: serde_json::Error,
    },
    /// The run marker could not be read.
    #[error(transparent)]
    Marker(#[from] MarkerError),
    /// No run marker: the results cannot be told apart by run.
    #[error(
        "{} has no {} run marker, so its results cannot be told apart by run; \
         run `cargo bench -p benches` (this version writes it)",
        dir.display(), marker::FILE_NAME
    )]
    NoRunMarker {
        /// The criterion directory.
        dir: PathBuf,
    },
    /// Every result predates the marked run or has another profile.
    #[error(
        "none of the {left_out} results under {} is from the {profile} run started {started}; \
         did that run measure anything?",
        dir.display()
    )]
    NothingFromRun {
        /// The criterion directory.
        dir: PathBuf,
        /// The marked run's profile, "quick" or "full".
        profile: &'static str,
        /// When it started, RFC 3339.
        started: String,
        /// How many results were left out.
        left_out: usize,
    },
}

/// A criterion result that is not from the reported run, with the reason.
#[derive(Clone, Debug, PartialEq)]
pub struct LeftOut {
    /// `group/id`, e.g. `floor/kx/x25519`.
    pub id: String,
    /// Why it is not from the run.
    pub reason: String,
}

/// What one report run produced.
#[derive(Clone, Debug)]
pub struct Summary {
    /// How many criterion benchmarks of the run were read.
    pub measurements: usize,
    /// The run the report covers.
    pub run: RunMarker,
    /// Results under the criterion directory that are from another run or profile: in no
    /// figure, listed first in both files.
    pub left_out: Vec<LeftOut>,
    /// The timestamped Markdown file (`bench-YYYYMMDDTHHMMSSZ.md`).
    pub markdown: PathBuf,
    /// The timestamped CSV file (`bench-YYYYMMDDTHHMMSSZ.csv`).
    pub csv: PathBuf,
    /// `bench-latest.md`, a copy of [`Summary::markdown`].
    pub latest_markdown: PathBuf,
    /// `bench-latest.csv`, a copy of [`Summary::csv`].
    pub latest_csv: PathBuf,
    /// The floor ratios, in report order (also in both files).
    pub ratios: Vec<Ratio>,
}

/// Which way a ratio must lie to meet its target.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// The value must be at most this (handshake time ÷ floor time).
    AtMost(f64),
    /// The value must be at least this (record throughput ÷ AEAD throughput).
    AtLeast(f64),
}

impl Target {
    fn met(self, value: f64) -> bool {
        match self {
            Target::AtMost(limit) => value <= limit,
            Target::AtLeast(limit) => value >= limit,
        }
    }

    fn text(self) -> String {
        match self {
            Target::AtMost(limit) => format!("<= {limit}"),
            Target::AtLeast(limit) => format!(">= {limit}"),
        }
    }
}

/// One measured thing compared with its crypto floor.
#[derive(Clone, Debug, PartialEq)]
pub struct Ratio {
    /// The measured benchmark, e.g. `handshake/server/tls13/x25519/rsa2048/full`.
    pub subject: String,
    /// The ratio, or `None` when the subject or a floor component was not measured.
    pub value: Option<f64>,
    /// The target the ratio is held to.
    pub target: Target,
    /// How the floor was composed, or which inputs were missing.
    pub detail: String,
}

impl Ratio {
    /// "ok", "misses target" or "not measured".
    pub fn status(&self) -> &'static str {
        match self.value {
            None => "not measured",
            Some(v) if self.target.met(v) => "ok",
            Some(_) => "misses target",
        }
    }
}

/// Criterion's throughput setting, as far as the report needs it.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Throughput {
    /// Bytes processed per iteration.
    bytes: Option<f64>,
    /// Elements (e.g. handshakes) per iteration.
    elements: Option<f64>,
}

/// One criterion benchmark's result.
#[derive(Clone, Debug, PartialEq)]
struct Measurement {
    /// The group, e.g. `floor`.
    group: String,
    /// The ID within the group: the function ID and the value string, `/`-joined.
    id: String,
    /// Median time per iteration in nanoseconds.
    median_ns: f64,
    throughput: Throughput,
    /// When criterion wrote `estimates.json`: this run's results are written after it started.
    written: SystemTime,
    /// Samples in `sample.json` (`None` when absent): the profile's sample size when this
    /// run made it.
    samples: Option<usize>,
}

impl Measurement {
    /// Nanoseconds per operation: per iteration, divided by the elements per iteration when
    /// a bench batches several operations (e.g. handshakes) into one.
    fn per_op_ns(&self) -> f64 {
        match self.throughput.elements {
            Some(n) if n > 0.0 => self.median_ns / n,
            _ => self.median_ns,
        }
    }

    /// Bytes per second, from the throughput setting or else `fallback_bytes` per iteration.
    fn bytes_per_s(&self, fallback_bytes: Option<f64>) -> Option<f64> {
        let bytes = self.throughput.bytes.or(fallback_bytes)?;
        Some(bytes * 1e9 / self.median_ns)
    }
}

#[derive(Deserialize)]
struct BenchmarkJson {
    group_id: String,
    function_id: Option<String>,
    value_str: Option<String>,
    throughput: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct EstimatesJson {
    median: PointEstimate,
}

#[derive(Deserialize)]
struct PointEstimate {
    point_estimate: f64,
}

/// Criterion's `sample.json`: iteration counts and times, one per sample.
#[derive(Deserialize)]
struct SampleJson {
    iters: Vec<f64>,
}

/// Reads criterion's output under `criterion_dir` and writes the report under `out_dir`
/// (created if needed) as `bench-<UTC time>.md`/`.csv` and `bench-latest.md`/`.csv`.
///
/// # Errors
///
/// [`ReportError`] when `criterion_dir` is missing or holds no results, when a criterion file
/// cannot be read or parsed, or when a report file cannot be written.
pub fn run(criterion_dir: &Path, out_dir: &Path) -> Result<Summary, ReportError> {
    run_at(criterion_dir, out_dir, SystemTime::now())
}

/// [`run`] with the report time given, so tests get fixed file names.
fn run_at(criterion_dir: &Path, out_dir: &Path, now: SystemTime) -> Result<Summary, ReportError> {
    let all = collect(criterion_dir)?;
    let run = marker::read(criterion_dir)?.ok_or_else(|| ReportError::NoRunMarker {
        dir: criterion_dir.to_owned(),
    })?;
    let (measurements, left_out) = of_run(all, &run);
    if measurements.is_empty() {
        return Err(ReportError::NothingFromRun {
            dir: criterion_dir.to_owned(),
            profile: run.profile.name(),
            started: common::env::utc_rfc3339(run.started()),
            left_out: left_out.len(),
        });
    }
    let stamp = common::env::utc_stamp(now);
    let report = Report::new(&measurements, &run, &left_out);
    let markdown = report.markdown(&stamp, criterion_dir);
    let csv = report.csv();

    fs::create_dir_all(out_dir).map_err(|source| ReportError::Io {
        path: out_dir.to_owned(),
        source,
    })?;
    let paths = [
        (out_dir.join(format!("bench-{stamp}.md")), &markdown),
        (out_dir.join(format!("bench-{stamp}.csv")), &csv),
        (out_dir.join("bench-latest.md"), &markdown),
        (out_dir.join("bench-latest.csv"), &csv),
    ];
    for (path, text) in &paths {
        fs::write(path, text).map_err(|source| ReportError::Io {
            path: path.clone(),
            source,
        })?;
    }
    let [
        (markdown, _),
        (csv, _),
        (latest_markdown, _),
        (latest_csv, _),
    ] = paths;
    let ratios = report.ratios;
    Ok(Summary {
        measurements: measurements.len(),
        run,
        left_out,
        markdown,
        csv,
        latest_markdown,
        latest_csv,
        ratios,
    })
}

/// Every benchmark under `dir` with a `new/benchmark.json` and `new/estimates.json`, sorted by
/// group and ID. `base/` and `change/` (the previous run and the comparison) are ignored.
fn collect(dir: &Path) -> Result<Vec<Measurement>, ReportError> {
    if !dir.is_dir() {
        return Err(ReportError::MissingDir {
            dir: dir.to_owned(),
        });
    }
    let mut found = Vec::new();
    find_new_dirs(dir, &mut found)?;
    let mut measurements = Vec::new();
    for new_dir in found {
        if let Some(m) = read_measurement(&new_dir)? {
            measurements.push(m);
        }
    }
    if measurements.is_empty() {
        return Err(ReportError::NoResults {
            dir: dir.to_owned(),
        });
    }
    measurements.sort_by(|a, b| (&a.group, &a.id).cmp(&(&b.group, &b.id)));
    // Two directories can only claim the same ID if criterion's file name sanitising mapped
    // them together; keep the first rather than reporting one ID twice.
    measurements.dedup_by(|b, a| a.group == b.group && a.id == b.id);
    Ok(measurements)
}

/// Splits `all` into the measurements of `run` and the rest, each with its reason.
fn of_run(all: Vec<Measurement>, run: &RunMarker) -> (Vec<Measurement>, Vec<LeftOut>) {
    let started = run.started();
    let samples = run.profile.sample_size();
    let mut kept = Vec::new();
    let mut left_out = Vec::new();
    for m in all {
        let reason = if m.written < started {
            Some(format!(
                "written {}, before this run started",
                common::env::utc_rfc3339(m.written)
            ))
        } else if m.samples != Some(samples) {
            // Written during the run but not by its profile: the two cannot be averaged into
            // one figure, and a ratio of a quick handshake to a full floor means nothing.
            Some(match m.samples {
                Some(n) => format!(
                    "{n} samples; the run's {} profile takes {samples}",
                    run.profile.name()
                ),
                None => "no sample.json, so its profile is unknown".to_owned(),
            })
        } else {
            None
        };
        match reason {
            Some(reason) => left_out.push(LeftOut {
                id: format!("{}/{}", m.group, m.id),
                reason,
            }),
            None => kept.push(m),
        }
    }
    (kept, left_out)
}

/// Collects every directory named `new` that holds a `benchmark.json`. Symlinks are not
/// followed, so a link cycle cannot make this loop.
fn find_new_dirs(dir: &Path, found: &mut Vec<PathBuf>) -> Result<(), ReportError> {
    let io_err = |source| ReportError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut entries = fs::read_dir(dir)
        .map_err(io_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(io_err)?;
    entries.sort_by_key(fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        let file_type = entry.file_type().map_err(|source| ReportError::Io {
            path: path.clone(),
            source,
        })?;
        if !file_type.is_dir() {
            continue;
        }
        if entry.file_name() == "new" {
            if path.join("benchmark.json").is_file() {
                found.push(path);
            }
        } else if entry.file_name() != "report" {
            find_new_dirs(&path, found)?;
        }
    }
    Ok(())
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ReportError> {
    let text = fs::read(path).map_err(|source| ReportError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_slice(&text).map_err(|source| ReportError::Json {
        path: path.to_owned(),
        source,
    })
}

/// One benchmark from its `new` directory; `None` when estimates.json is absent (criterion was
/// interrupted before analysing it) or the median is not a positive time.
fn read_measurement(new_dir: &Path) -> Result<Option<Measurement>, ReportError> {
    let estimates_path = new_dir.join("estimates.json");
    if !estimates_path.is_file() {
        return Ok(None);
    }
    let bench: BenchmarkJson = read_json(&new_dir.join("benchmark.json"))?;
    let estimates: EstimatesJson = read_json(&estimates_path)?;
    let written = fs::metadata(&estimates_path)
        .and_then(|m| m.modified())
        .map_err(|source| ReportError::Io {
            path: estimates_path.clone(),
            source,
        })?;
    let sample_path = new_dir.join("sample.json");
    let samples = if sample_path.is_file() {
        Some(read_json::<SampleJson>(&sample_path)?.iters.len())
    } else {
        None
    };
    let median_ns = estimates.median.point_estimate;
    if !median_ns.is_finite() || median_ns <= 0.0 {
        return Ok(None);
    }
    let id = match (bench.function_id, bench.value_str) {
        (Some(f), Some(v)) => format!("{f}/{v}"),
        (Some(f), None) => f,
        (None, Some(v)) => v,
        (None, None) => String::new(),
    };
    Ok(Some(Measurement {
        group: bench.group_id,
        id,
        median_ns,
        throughput: parse_throughput(bench.throughput.as_ref()),
        written,
        samples,
    }))
}

/// Criterion serialises its `Throughput` enum externally tagged: `{"Bytes": 16384}`,
/// `{"Elements": 10}`, `{"ElementsAndBytes": {"elements": 1, "bytes": 2}}`. Unknown shapes
/// count as no throughput rather than failing the report.
fn parse_throughput(value: Option<&serde_json::Value>) -> Throughput {
    let mut t = Throughput {
        bytes: None,
        elements: None,
    };
    let Some(obj) = value.and_then(serde_json::Value::as_object) else {
        return t;
    };
    let num = |v: &serde_json::Value| v.as_u64().map(|n| n as f64);
    for (kind, v) in obj {
        match kind.as_str() {
            "Bytes" | "BytesDecimal" => t.bytes = num(v),
            "Bits" => t.bytes = num(v).map(|bits| bits / 8.0),
            "Elements" => t.elements = num(v),
            "ElementsAndBytes" => {
                t.elements = v.get("elements").and_then(num);
                t.bytes = v.get("bytes").and_then(num);
            }
            _ => {}
        }
    }
    t
}

/// The key-exchange group as the floor names it: lower case, common aliases resolved.
fn kx_name(kx: &str) -> String {
    let lower = kx.to_ascii_lowercase();
    match lower.as_str() {
        "p-256" | "p256" | "prime256v1" => "secp256r1".to_owned(),
        "p-384" | "p384" => "secp384r1".to_owned(),
        _ => lower,
    }
}

/// The floor's key-exchange ID for one side of a handshake: the hybrid group's two sides do
/// different work (encapsulate vs key generation + decapsulate), ECDHE sides the same.
fn kx_floor_id(kx: &str, side: &str) -> String {
    let kx = kx_name(kx);
    if kx.contains("mlkem") {
        format!("kx/{kx}-{side}")
    } else {
        format!("kx/{kx}")
    }
}

/// The floor AEAD of a cipher suite name (IANA, rustls or short), if it is one of the three.
fn aead_of_suite(suite: &str) -> Option<&'static str> {
    let flat: String = suite
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if flat.contains("aes128gcm") {
        Some("aes-128-gcm")
    } else if flat.contains("aes256gcm") {
        Some("aes-256-gcm")
    } else if flat.contains("chacha20") {
        Some("chacha20-poly1305")
    } else {
        None
    }
}

/// A handshake ID split into its parts: `{side}/{proto}/{kx}/{cert}/{kind}`.
struct HandshakeId<'a> {
    side: &'a str,
    proto: &'a str,
    kx: &'a str,
    cert: &'a str,
    kind: &'a str,
}

impl<'a> HandshakeId<'a> {
    fn parse(id: &'a str) -> Option<Self> {
        let mut parts = id.split('/');
        let hs = HandshakeId {
            side: parts.next()?,
            proto: parts.next()?,
            kx: parts.next()?,
            cert: parts.next()?,
            kind: parts.next()?,
        };
        parts.next().is_none().then_some(hs)
    }
}

/// Sort rank of a handshake side in the tables.
fn side_rank(side: &str) -> u8 {
    match side {
        "server" => 0,
        "client" => 1,
        "pair" => 2,
        _ => 3,
    }
}

/// Everything the two output files show, computed once.
struct Report<'a> {
    handshakes: Vec<&'a Measurement>,
    records: Vec<&'a Measurement>,
    floor: Vec<&'a Measurement>,
    http: Vec<&'a Measurement>,
    other: Vec<&'a Measurement>,
    ratios: Vec<Ratio>,
    /// `parse/hello + encode/hello` in ns, or the missing IDs.
    http_overhead: Result<f64, Vec<String>>,
    /// The run every figure comes from.
    run: &'a RunMarker,
    /// Results in no figure because another run or profile wrote them.
    left_out: &'a [LeftOut],
}

impl<'a> Report<'a> {
    fn new(measurements: &'a [Measurement], run: &'a RunMarker, left_out: &'a [LeftOut]) -> Self {
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

    fn markdown(&self, stamp: &str, criterion_dir: &Path) -> String {
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
    fn csv(&self) -> String {
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
fn micros(ns: f64) -> Option<String> {
    Some(format!("{:.3}", ns / 1e3))
}

/// The CSV text being built.
struct Csv(String);

impl Csv {
    /// A row without a target; `None` is reported as "not measured".
    fn value(&mut self, section: &str, id: &str, metric: &str, value: Option<String>, unit: &str) {
        let status = if value.is_some() { "" } else { "not measured" };
        self.line([section, id, metric], value, unit, "", status);
    }

    fn line(
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

/// Sum of per-op times of `ids` in `group`, or the full IDs of those missing.
fn sum_of(
    map: &BTreeMap<&str, &Measurement>,
    group: &str,
    ids: &[&str],
) -> Result<f64, Vec<String>> {
    let missing: Vec<String> = ids
        .iter()
        .filter(|id| !map.contains_key(*id))
        .map(|id| format!("{group}/{id}"))
        .collect();
    if !missing.is_empty() {
        return Err(missing);
    }
    Ok(ids
        .iter()
        .filter_map(|id| map.get(id))
        .map(|m| m.per_op_ns())
        .sum())
}

/// Floor ratios of every full TLS 1.3 handshake, by side.
fn handshake_ratios(
    handshakes: &[&Measurement],
    floor: &BTreeMap<&str, &Measurement>,
) -> Vec<Ratio> {
    let mut ratios = Vec::new();
    for m in handshakes {
        let Some(h) = HandshakeId::parse(&m.id) else {
            continue;
        };
        if h.proto != "tls13" || h.kind != "full" {
            continue;
        }
        let cert = h.cert.to_ascii_lowercase();
        let hkdf = "hkdf/tls13-schedule".to_owned();
        let components: Vec<(&str, String)> = match h.side {
            "server" => vec![
                ("sign", format!("sign/{cert}")),
                ("kx", kx_floor_id(h.kx, "server")),
                ("hkdf", hkdf),
            ],
            "client" => vec![
                ("verify", format!("verify/{cert}")),
                ("kx", kx_floor_id(h.kx, "client")),
                ("hkdf", hkdf),
            ],
            "pair" => vec![
                ("sign", format!("sign/{cert}")),
                ("verify", format!("verify/{cert}")),
                ("server kx", kx_floor_id(h.kx, "server")),
                ("client kx", kx_floor_id(h.kx, "client")),
                ("hkdf", hkdf.clone()),
                ("hkdf", hkdf),
            ],
            _ => continue,
        };
        let ids: Vec<&str> = components.iter().map(|(_, id)| id.as_str()).collect();
        let subject = format!("handshake/{}", m.id);
        let target = Target::AtMost(HANDSHAKE_TARGET);
        ratios.push(match sum_of(floor, "floor", &ids) {
            Ok(floor_ns) => {
                let parts: Vec<String> = components
                    .iter()
                    .filter_map(|(name, id)| {
                        floor
                            .get(id.as_str())
                            .map(|f| format!("{name} {}", fmt_us(f.per_op_ns())))
                    })
                    .collect();
                Ratio {
                    subject,
                    value: Some(m.per_op_ns() / floor_ns),
                    target,
                    detail: format!(
                        "{} µs = {} (handshake {} µs)",
                        fmt_us(floor_ns),
                        parts.join(" + "),
                        fmt_us(m.per_op_ns())
                    ),
                }
            }
            Err(missing) => Ratio {
                subject,
                value: None,
                target,
                detail: format!("missing {}", missing.join(", ")),
            },
        });
    }
    ratios
}

/// Record sealing at 16 KiB against the raw AEAD, for every sealing suite measured; an AEAD
/// with no sealing suite measured gets a "not measured" row so the gap shows.
fn seal_ratios(records: &[&Measurement], floor: &BTreeMap<&str, &Measurement>) -> Vec<Ratio> {
    let full_size: f64 = 16384.0;
    let mut ratios = Vec::new();
    let mut covered = Vec::new();
    for m in records {
        let parts: Vec<&str> = m.id.splitn(3, '/').collect();
        let [op, suite, size] = parts.as_slice() else {
            continue;
        };
        if *op != "seal" || *size != FULL_RECORD {
            continue;
        }
        let Some(alg) = aead_of_suite(suite) else {
            continue;
        };
        covered.push(alg);
        let floor_id = format!("aead/seal/{alg}/{FULL_RECORD}");
        let subject = format!("record/{}", m.id);
        let target = Target::AtLeast(SEAL_TARGET);
        let record_bps = m.bytes_per_s(Some(full_size));
        let floor_bps = floor
            .get(floor_id.as_str())
            .and_then(|f| f.bytes_per_s(Some(full_size)));
        ratios.push(match (record_bps, floor_bps) {
            (Some(r), Some(f)) => Ratio {
                subject,
                value: Some(r / f),
                target,
                detail: format!(
                    "{} GB/s ÷ floor/{floor_id} {} GB/s",
                    fmt_gbps(r),
                    fmt_gbps(f)
                ),
            },
            _ => Ratio {
                subject,
                value: None,
                target,
                detail: format!("missing floor/{floor_id}"),
            },
        });
    }
    for alg in AEAD_ALGS {
        if !covered.contains(&alg) {
            ratios.push(Ratio {
                subject: format!("record/seal/{alg}/{FULL_RECORD}"),
                value: None,
                target: Target::AtLeast(SEAL_TARGET),
                detail: format!("missing record/seal/<{alg} suite>/{FULL_RECORD}"),
            });
        }
    }
    ratios.sort_by(|a, b| a.subject.cmp(&b.subject));
    ratios
}

fn not_measured() -> String {
    "not measured".to_owned()
}

fn fmt_us(ns: f64) -> String {
    format!("{:.2}", ns / 1e3)
}

fn fmt_rate(per_s: f64) -> String {
    format!("{per_s:.0}")
}

/// Decimal gigabytes per second, 3 decimals.
fn fmt_gbps(bytes_per_s: f64) -> String {
    format!("{:.3}", bytes_per_s / 1e9)
}

/// Binary mebibytes per second, 1 decimal.
fn fmt_mibps(bytes_per_s: f64) -> String {
    format!("{:.1}", bytes_per_s / MIB)
}

/// A CSV field, quoted when it holds a comma, quote or line break (RFC 4180).
fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::marker::Profile;

    /// A scratch directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "tlsbench-report-{name}-{}-{}",
                std::process::id(),
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_nanos()
            ));
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// Writes one benchmark as criterion lays it out: `<group>/<dir>/<sub>/benchmark.json`
    /// and `estimates.json`, with the mean deliberately different from the median so a test
    /// fails if the mean is read.
    fn write_bench(
        root: &Path,
        sub: &str,
        group: &str,
        function: &str,
        value: Option<&str>,
        throughput: &str,
        median_ns: f64,
    ) {
        let mut dir = root.join(group).join(function.replace('/', "_"));
        if let Some(v) = value {
            dir = dir.join(v);
        }
        let dir = dir.join(sub);
        fs::create_dir_all(&dir).unwrap();
        let value_json = value.map_or("null".to_owned(), |v| format!("\"{v}\""));
        let full_id = match value {
            Some(v) => format!("{group}/{function}/{v}"),
            None => format!("{group}/{function}"),
        };
        fs::write(
            dir.join("benchmark.json"),
            format!(
                r#"{{"group_id":"{group}","function_id":"{function}","value_str":{value_json},"throughput":{throughput},"full_id":"{full_id}","directory_name":"x","title":"{full_id}"}}"#
            ),
        )
        .unwrap();
        let est = |v: f64| {
            format!(
                r#"{{"confidence_interval":{{"confidence_level":0.95,"lower_bound":{v},"upper_bound":{v}}},"point_estimate":{v},"standard_error":1.0}}"#
            )
        };
        fs::write(
            dir.join("estimates.json"),
            format!(
                r#"{{"mean":{},"median":{},"median_abs_dev":{},"slope":null,"std_dev":{}}}"#,
                est(median_ns * 3.0),
                est(median_ns),
                est(1.0),
                est(1.0)
            ),
        )
        .unwrap();
        write_samples(&dir, Profile::Quick.sample_size());
    }

    /// Criterion's `sample.json` with `n` samples.
    fn write_samples(new_dir: &Path, n: usize) {
        let iters: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
        let iters = iters.join(",");
        fs::write(
            new_dir.join("sample.json"),
            format!(r#"{{"sampling_mode":"Linear","iters":[{iters}],"times":[{iters}]}}"#),
        )
        .unwrap();
    }

    /// The marker of a quick run that started an hour ago: the fixture's files are newer.
    fn mark_run(root: &Path) -> RunMarker {
        let run = RunMarker::next(
            None,
            "100@5",
            Profile::Quick,
            SystemTime::now() - Duration::from_secs(3600),
        );
        marker::write(root, &run).unwrap();
        run
    }

    /// Makes a result look written `age` ago (criterion wrote it in an earlier run).
    fn age(new_dir: &Path, age: Duration) {
        let file = fs::File::options()
            .write(true)
            .open(new_dir.join("estimates.json"))
            .unwrap();
        file.set_modified(SystemTime::now() - age).unwrap();
    }

    fn bench(root: &Path, group: &str, function: &str, median_ns: f64) {
        write_bench(root, "new", group, function, None, "null", median_ns);
    }

    /// A criterion tree of one quick run with a known answer for every figure the report
    /// computes.
    fn fixture(root: &Path) {
        mark_run(root);
        bench(root, "floor", "sign/rsa2048", 300_000.0);
        bench(root, "floor", "verify/rsa2048", 20_000.0);
        bench(root, "floor", "kx/x25519", 40_000.0);
        bench(root, "floor", "hkdf/tls13-schedule", 10_000.0);
        write_bench(
            root,
            "new",
            "floor",
            "aead/seal/aes-128-gcm/16384",
            None,
            r#"{"Bytes":16384}"#,
            1638.4,
        );
        // 10 handshakes per iteration: 420 µs each; floor 350 µs → 1.2.
        write_bench(
            root,
            "new",
            "handshake",
            "server/tls13/x25519/rsa2048/full",
            None,
            r#"{"Elements":10}"#,
            4_200_000.0,
        );
        // Floor 20 + 40 + 10 = 70 µs; 100 µs → 1.4285…
        bench(
            root,
            "handshake",
            "client/tls13/X25519/rsa2048/full",
            100_000.0,
        );
        // No floor/sign/ed25519 and no hybrid server kx: not measured.
        bench(
            root,
            "handshake",
            "server/tls13/x25519mlkem768/ed25519/full",
            200_000.0,
        );
        // Resumed handshakes have no floor ratio.
        bench(
            root,
            "handshake",
            "server/tls13/x25519/rsa2048/resumed",
            50_000.0,
        );
        // 16384 B in 2048 ns = 8 GB/s; floor 10 GB/s → 0.8.
        write_bench(
            root,
            "new",
            "record",
            "seal/TLS13_AES_128_GCM_SHA256",
            Some("16384"),
            r#"{"Bytes":16384}"#,
            2048.0,
        );
        write_bench(
            root,
            "new",
            "record",
            "seal/TLS13_AES_128_GCM_SHA256",
            Some("64"),
            r#"{"Bytes":64}"#,
            64.0,
        );
        bench(root, "http", "parse/hello", 700.0);
        bench(root, "http", "encode/hello", 30.0);
        // The previous run and an unanalysed bench must both be ignored.
        write_bench(root, "base", "http", "parse/hello", None, "null", 1.0);
        let unanalysed = root.join("http").join("chunked_decode").join("new");
        fs::create_dir_all(&unanalysed).unwrap();
        fs::write(
            unanalysed.join("benchmark.json"),
            r#"{"group_id":"http","function_id":"chunked/decode","value_str":null,"throughput":null}"#,
        )
        .unwrap();
    }

    #[test]
    fn reads_medians_and_ids() {
        let tmp = TempDir::new("collect");
        fixture(&tmp.0);
        let ms = collect(&tmp.0).unwrap();
        let ids: Vec<String> = ms.iter().map(|m| format!("{}/{}", m.group, m.id)).collect();
        assert_eq!(
            ids,
            [
                "floor/aead/seal/aes-128-gcm/16384",
                "floor/hkdf/tls13-schedule",
                "floor/kx/x25519",
                "floor/sign/rsa2048",
                "floor/verify/rsa2048",
                "handshake/client/tls13/X25519/rsa2048/full",
                "handshake/server/tls13/x25519/rsa2048/full",
                "handshake/server/tls13/x25519/rsa2048/resumed",
                "handshake/server/tls13/x25519mlkem768/ed25519/full",
                "http/encode/hello",
                "http/parse/hello",
                "record/seal/TLS13_AES_128_GCM_SHA256/16384",
                "record/seal/TLS13_AES_128_GCM_SHA256/64",
            ]
        );
        let parse = ms.iter().find(|m| m.id == "parse/hello").unwrap();
        assert_eq!(parse.median_ns, 700.0);
        let server = ms
            .iter()
            .find(|m| m.id == "server/tls13/x25519/rsa2048/full")
            .unwrap();
        assert_eq!(server.per_op_ns(), 420_000.0);
        let aead = ms
            .iter()
            .find(|m| m.group == "floor" && m.id.starts_with("aead"))
            .unwrap();
        let bps = aead.bytes_per_s(None).unwrap();
        assert!((bps - 1e10).abs() < 1.0, "{bps}");
    }

    #[test]
    fn throughput_shapes() {
        let parse = |s: &str| parse_throughput(Some(&serde_json::from_str(s).unwrap()));
        assert_eq!(parse(r#"{"Bytes":8}"#).bytes, Some(8.0));
        assert_eq!(parse(r#"{"BytesDecimal":8}"#).bytes, Some(8.0));
        assert_eq!(parse(r#"{"Bits":64}"#).bytes, Some(8.0));
        assert_eq!(parse(r#"{"Elements":3}"#).elements, Some(3.0));
        let both = parse(r#"{"ElementsAndBytes":{"elements":2,"bytes":5}}"#);
        assert_eq!((both.elements, both.bytes), (Some(2.0), Some(5.0)));
        assert_eq!(parse(r#"{"Future":1}"#), parse_throughput(None));
    }

    #[test]
    fn ratios_are_exact_and_gaps_say_not_measured() {
        let tmp = TempDir::new("ratios");
        fixture(&tmp.0);
        let ms = collect(&tmp.0).unwrap();
        let run = mark_run(&tmp.0);
        let report = Report::new(&ms, &run, &[]);
        let got: Vec<(&str, Option<String>, &str)> = report
            .ratios
            .iter()
            .map(|r| {
                (
                    r.subject.as_str(),
                    r.value.map(|v| format!("{v:.6}")),
                    r.status(),
                )
            })
            .collect();
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(
            got,
            [
                (
                    "handshake/server/tls13/x25519/rsa2048/full",
                    s("1.200000"),
                    "ok"
                ),
                (
                    "handshake/server/tls13/x25519mlkem768/ed25519/full",
                    None,
                    "not measured"
                ),
                (
                    "handshake/client/tls13/X25519/rsa2048/full",
                    s("1.428571"),
                    "misses target"
                ),
                (
                    "record/seal/TLS13_AES_128_GCM_SHA256/16384",
                    s("0.800000"),
                    "misses target"
                ),
                ("record/seal/aes-256-gcm/16384", None, "not measured"),
                ("record/seal/chacha20-poly1305/16384", None, "not measured"),
            ]
        );
        assert_eq!(
            report.ratios[0].detail,
            "350.00 µs = sign 300.00 + kx 40.00 + hkdf 10.00 (handshake 420.00 µs)"
        );
        assert_eq!(
            report.ratios[1].detail,
            "missing floor/sign/ed25519, floor/kx/x25519mlkem768-server"
        );
        assert_eq!(
            report.ratios[3].detail,
            "8.000 GB/s ÷ floor/aead/seal/aes-128-gcm/16384 10.000 GB/s"
        );
        assert_eq!(report.http_overhead, Ok(730.0));
    }

    #[test]
    fn writes_markdown_and_csv() {
        let tmp = TempDir::new("files");
        let criterion = tmp.0.join("criterion");
        fixture(&criterion);
        let out = tmp.0.join("results");
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let summary = run_at(&criterion, &out, now).unwrap();
        assert_eq!(summary.measurements, 13);
        assert_eq!(summary.markdown, out.join("bench-20231114T221320Z.md"));
        assert_eq!(summary.csv, out.join("bench-20231114T221320Z.csv"));
        assert_eq!(summary.latest_markdown, out.join("bench-latest.md"));
        assert_eq!(summary.latest_csv, out.join("bench-latest.csv"));
        assert_eq!(summary.ratios.len(), 6);

        let csv = fs::read_to_string(&summary.csv).unwrap();
        assert_eq!(fs::read_to_string(&summary.latest_csv).unwrap(), csv);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "section,id,metric,value,unit,target,status");
        for expected in [
            "handshake,server/tls13/x25519/rsa2048/full,us_per_op,420.000,us,,",
            "handshake,server/tls13/x25519/rsa2048/full,ops_per_s,2381.0,1/s,,",
            "handshake,client/tls13/X25519/rsa2048/full,ops_per_s,10000.0,1/s,,",
            "record,seal/TLS13_AES_128_GCM_SHA256/16384,us_per_op,2.048,us,,",
            "record,seal/TLS13_AES_128_GCM_SHA256/16384,bytes_per_s,8000000000,B/s,,",
            "floor_ratio,handshake/server/tls13/x25519/rsa2048/full,ratio,1.2000,x,<= 1.3,ok",
            "floor_ratio,handshake/client/tls13/X25519/rsa2048/full,ratio,1.4286,x,<= 1.3,misses target",
            "floor_ratio,handshake/server/tls13/x25519mlkem768/ed25519/full,ratio,,x,<= 1.3,not measured",
            "floor_ratio,record/seal/TLS13_AES_128_GCM_SHA256/16384,ratio,0.8000,x,>= 0.9,misses target",
            "floor_ratio,record/seal/aes-256-gcm/16384,ratio,,x,>= 0.9,not measured",
            "floor,aead/seal/aes-128-gcm/16384,bytes_per_s,10000000000,B/s,,",
            "floor,sign/rsa2048,us_per_op,300.000,us,,",
            "http,per-request,ns_per_op,730.0,ns,,",
            "http,parse/hello,ns_per_op,700.0,ns,,",
        ] {
            assert!(
                lines.contains(&expected),
                "missing CSV line {expected:?} in\n{csv}"
            );
        }
        // Resumed handshakes are reported but have no ratio; nothing from base/ leaks in.
        assert!(csv.contains("handshake,server/tls13/x25519/rsa2048/resumed,us_per_op,50.000"));
        assert!(!csv.contains("ns_per_op,1.0,"));
        assert!(!csv.contains("chunked"));

        let md = fs::read_to_string(&summary.markdown).unwrap();
        assert_eq!(fs::read_to_string(&summary.latest_markdown).unwrap(), md);
        assert!(md.starts_with("# tlsbench bench report 20231114T221320Z\n"));
        for expected in [
            "| server | tls13 | x25519 | rsa2048 | full | 420.00 | 2381 |",
            "| client | tls13 | X25519 | rsa2048 | full | 100.00 | 10000 |",
            "| seal | TLS13_AES_128_GCM_SHA256 | 16384 | 2.05 | 8.000 | 7629.4 |",
            "| handshake/server/tls13/x25519/rsa2048/full | 1.20 | <= 1.3 | ok | 350.00 µs = sign 300.00 + kx 40.00 + hkdf 10.00 (handshake 420.00 µs) |",
            "| handshake/server/tls13/x25519mlkem768/ed25519/full | not measured | <= 1.3 | not measured | missing floor/sign/ed25519, floor/kx/x25519mlkem768-server |",
            "| record/seal/chacha20-poly1305/16384 | not measured | >= 0.9 | not measured | missing record/seal/<chacha20-poly1305 suite>/16384 |",
            "| aead/seal/aes-128-gcm/16384 | 1.64 | 610352 | 10.000 |",
            "Per request outside TLS: 730.0 ns (parse/hello + encode/hello).",
            "| parse/hello | 700.0 | 1428571 |  |",
        ] {
            assert!(md.contains(expected), "missing {expected:?} in\n{md}");
        }
        // 64-byte records (1 GB/s) sort before 16 KiB ones; server rows before client rows.
        let small = md
            .find("| seal | TLS13_AES_128_GCM_SHA256 | 64 | 0.06 | 1.000 | 953.7 |")
            .unwrap();
        let full = md
            .find("| seal | TLS13_AES_128_GCM_SHA256 | 16384 |")
            .unwrap();
        assert!(small < full);
        let server = md
            .find("| server | tls13 | x25519 | rsa2048 | full")
            .unwrap();
        let client = md.find("| client | tls13").unwrap();
        assert!(server < client);
    }

    #[test]
    fn missing_parts_are_not_measured() {
        let tmp = TempDir::new("sparse");
        let criterion = tmp.0.join("criterion");
        bench(&criterion, "http", "parse/hello", 700.0);
        mark_run(&criterion);
        let summary = run_at(&criterion, &tmp.0.join("out"), UNIX_EPOCH).unwrap();
        let csv = fs::read_to_string(&summary.csv).unwrap();
        assert!(csv.contains("handshake,,,,,,not measured\n"));
        assert!(csv.contains("record,,,,,,not measured\n"));
        assert!(csv.contains("http,per-request,ns_per_op,,ns,,not measured\n"));
        let md = fs::read_to_string(&summary.markdown).unwrap();
        assert!(md.contains("Handshakes: not measured."));
        assert!(md.contains("Crypto floor: not measured."));
        assert!(md.contains("Per request outside TLS: not measured (missing http/encode/hello)."));
        assert_eq!(
            summary.markdown,
            tmp.0.join("out").join("bench-19700101T000000Z.md")
        );
    }

    #[test]
    fn errors_name_the_directory() {
        let tmp = TempDir::new("errors");
        let missing = tmp.0.join("nope");
        let err = run(&missing, &tmp.0).unwrap_err();
        assert!(matches!(err, ReportError::MissingDir { .. }));
        assert!(err.to_string().contains("nope"));

        let empty = tmp.0.join("empty");
        fs::create_dir_all(empty.join("report")).unwrap();
        assert!(matches!(
            run(&empty, &tmp.0),
            Err(ReportError::NoResults { .. })
        ));

        let bad = tmp.0.join("bad");
        bench(&bad, "floor", "kx/x25519", 1.0);
        fs::write(bad.join("floor/kx_x25519/new/estimates.json"), "{").unwrap();
        let err = run(&bad, &tmp.0).unwrap_err();
        assert!(matches!(err, ReportError::Json { .. }));
        assert!(err.to_string().contains("estimates.json"));
    }

    #[test]
    fn names_map_to_floor_ids() {
        assert_eq!(kx_floor_id("X25519", "server"), "kx/x25519");
        assert_eq!(kx_floor_id("P-256", "client"), "kx/secp256r1");
        assert_eq!(
            kx_floor_id("X25519MLKEM768", "client"),
            "kx/x25519mlkem768-client"
        );
        assert_eq!(
            aead_of_suite("TLS13_AES_256_GCM_SHA384"),
            Some("aes-256-gcm")
        );
        assert_eq!(
            aead_of_suite("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
            Some("chacha20-poly1305")
        );
        assert_eq!(aead_of_suite("aes-128-gcm"), Some("aes-128-gcm"));
        assert_eq!(aead_of_suite("null"), None);
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
    }

    #[test]
    fn one_clean_run_is_reported_whole() {
        let tmp = TempDir::new("clean");
        let criterion = tmp.0.join("criterion");
        fixture(&criterion);
        let summary = run_at(&criterion, &tmp.0.join("out"), UNIX_EPOCH).unwrap();
        assert_eq!(summary.measurements, 13);
        assert!(summary.left_out.is_empty(), "{:?}", summary.left_out);
        assert_eq!(summary.run.profile, Profile::Quick);
        let md = fs::read_to_string(&summary.markdown).unwrap();
        assert!(md.contains("Run: quick profile, started "), "{md}");
        assert!(!md.contains("Left out"), "{md}");
        let csv = fs::read_to_string(&summary.csv).unwrap();
        assert!(csv.contains("run,,profile,quick,,,\n"), "{csv}");
        assert!(!csv.contains("left_out"), "{csv}");
    }

    #[test]
    fn results_of_an_earlier_run_are_left_out_and_listed_first() {
        let tmp = TempDir::new("stale");
        let criterion = tmp.0.join("criterion");
        fixture(&criterion);
        // A filtered rerun: the floor's key exchange and the HTTP encoder are from a run of
        // yesterday, so neither may feed a ratio or the per-request overhead.
        age(
            &criterion.join("floor/kx_x25519/new"),
            Duration::from_secs(86_400),
        );
        age(
            &criterion.join("http/encode_hello/new"),
            Duration::from_secs(86_400),
        );
        let summary = run_at(&criterion, &tmp.0.join("out"), UNIX_EPOCH).unwrap();
        assert_eq!(summary.measurements, 11);
        let ids: Vec<&str> = summary.left_out.iter().map(|l| l.id.as_str()).collect();
        assert_eq!(ids, ["floor/kx/x25519", "http/encode/hello"]);
        assert!(
            summary.left_out[0]
                .reason
                .ends_with("before this run started"),
            "{:?}",
            summary.left_out
        );
        let md = fs::read_to_string(&summary.markdown).unwrap();
        let warning = md
            .find("> **Left out: 2 result(s) from another run or profile.**")
            .unwrap_or_else(|| panic!("no warning in\n{md}"));
        assert!(warning < md.find("## Handshakes").unwrap(), "{md}");
        assert!(md.contains("> - `floor/kx/x25519`: written "), "{md}");
        assert!(md.contains("Per request outside TLS: not measured (missing http/encode/hello)."));
        assert!(md.contains("missing floor/kx/x25519"), "{md}");
        assert!(!md.contains("| kx/x25519 |"), "{md}");
        let csv = fs::read_to_string(&summary.csv).unwrap();
        assert!(
            csv.contains("\nleft_out,floor/kx/x25519,,,,,\"written "),
            "{csv}"
        );
        assert!(!csv.contains("floor,kx/x25519,"), "{csv}");
    }

    #[test]
    fn results_of_another_profile_are_left_out() {
        let tmp = TempDir::new("profile");
        let criterion = tmp.0.join("criterion");
        fixture(&criterion);
        // Written during the quick run, but with the full profile's sample count.
        write_samples(
            &criterion.join("floor/sign_rsa2048/new"),
            Profile::Full.sample_size(),
        );
        fs::remove_file(criterion.join("http/parse_hello/new/sample.json")).unwrap();
        let summary = run_at(&criterion, &tmp.0.join("out"), UNIX_EPOCH).unwrap();
        assert_eq!(
            summary.left_out,
            [
                LeftOut {
                    id: "floor/sign/rsa2048".to_owned(),
                    reason: "30 samples; the run's quick profile takes 10".to_owned(),
                },
                LeftOut {
                    id: "http/parse/hello".to_owned(),
                    reason: "no sample.json, so its profile is unknown".to_owned(),
                },
            ]
        );
        let md = fs::read_to_string(&summary.markdown).unwrap();
        assert!(
            md.contains("> - `floor/sign/rsa2048`: 30 samples; the run's quick profile takes 10"),
            "{md}"
        );
        assert!(md.contains("missing floor/sign/rsa2048"), "{md}");
    }

    #[test]
    fn no_marker_or_nothing_from_the_run_is_refused() {
        let tmp = TempDir::new("unmarked");
        let criterion = tmp.0.join("criterion");
        bench(&criterion, "http", "parse/hello", 700.0);
        let err = run_at(&criterion, &tmp.0.join("out"), UNIX_EPOCH).unwrap_err();
        assert!(matches!(err, ReportError::NoRunMarker { .. }), "{err}");
        assert!(err.to_string().contains(marker::FILE_NAME), "{err}");

        mark_run(&criterion);
        age(
            &criterion.join("http/parse_hello/new"),
            Duration::from_secs(7200),
        );
        let err = run_at(&criterion, &tmp.0.join("out"), UNIX_EPOCH).unwrap_err();
        assert!(
            matches!(err, ReportError::NothingFromRun { left_out: 1, .. }),
            "{err}"
        );
        assert!(!tmp.0.join("out").exists());
    }
}
