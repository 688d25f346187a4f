//! `tlsbench merge`: the `--json` documents of several parts of one load (segments, or the
//! same load from several machines) made into one load document, losslessly: counts summed,
//! histograms added from their encoded form (percentiles are never averaged), rates over the
//! union of the measured windows, CPU per operation from the summed CPU and operations.
//! Parts of different configurations, or histograms recorded differently, are refused by name.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use clap::Args;
use serde_json::Value;

use crate::exit::Exit;
use crate::report::{self, Cpu, HandshakeBytes, HistogramSettings, Latency, OpenLoop, Window};
use crate::segment::Segment;
use crate::stats::{FailureKind, Hist, LoadCounters};

/// Below this share of the union window covered by every part at once, the parts did not
/// run together and the merged rates understate what they offered together.
pub const MIN_OVERLAP: f64 = 0.9;

/// Configuration fields that differ between parts by design: each part's share, summed in
/// the merged document (`address` may differ by host).
const SPLIT: [&str; 6] = [
    "threads",
    "connections",
    "rate",
    "requests",
    "segment",
    "address",
];

/// The latency histograms of a document.
const LATENCIES: [&str; 6] = [
    "connect",
    "handshake",
    "ttfb",
    "ttfb_0rtt",
    "request",
    "request_uncorrected",
];

/// Flags of `tlsbench merge`.
#[derive(Args, Debug, Clone)]
pub struct MergeArgs {
    /// `tlsbench load --json` documents, one per part (at least two).
    #[arg(required = true, num_args = 2..)]
    pub files: Vec<PathBuf>,

    /// Write the merged document here [default: stdout].
    #[arg(short, long)]
    pub out: Option<PathBuf>,
}

/// Why documents could not be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// A document could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A document is not a load document this version reads.
    #[error("{path}: not a tlsbench load document: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Two parts were run differently.
    #[error(
        "{field} differs: {a_path} has {a}, {b_path} has {b}; only parts of one configuration merge"
    )]
    Mismatch {
        /// The field, as its JSON path (`config.url`, `results.histograms.latency.highest`).
        field: String,
        /// The first part.
        a_path: String,
        /// Its value.
        a: String,
        /// The part that differs.
        b_path: String,
        /// Its value.
        b: String,
    },
    /// The parts' segments do not fit together.
    #[error("segments: {0}")]
    Segments(String),
    /// Fewer than two documents.
    #[error("nothing to merge: give at least two documents")]
    TooFew,
    /// The merged document could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// The part of a results document the merge computes with, read once.
#[derive(serde::Deserialize)]
struct PartResults {
    complete: bool,
    incomplete_reason: Option<String>,
    window: Window,
    histograms: HistogramSettings,
    counts: LoadCounters,
    errors: BTreeMap<String, u64>,
    open_loop: Option<OpenLoop>,
    latency: BTreeMap<String, Latency>,
    handshake_bytes: BTreeMap<String, HandshakeBytes>,
    cpu: Cpu,
    verify_cache_hits: u64,
    verify_cache_misses: u64,
    warnings: Vec<String>,
}

/// One input document: its name, the whole of it (carried into the output), and what the
/// merge reads.
struct Part {
    name: String,
    raw: Value,
    config: serde_json::Map<String, Value>,
    hostname: String,
    segment: Option<Segment>,
    results: PartResults,
}

impl Part {
    fn read(name: String, raw: Value) -> Result<Part, MergeError> {
        let invalid = |reason: String| MergeError::Invalid {
            path: name.clone(),
            reason,
        };
        if raw["tool"] != "tlsbench load" {
            return Err(invalid(format!("tool is {}", raw["tool"])));
        }
        if raw["schema_version"] != report::SCHEMA_VERSION {
            return Err(invalid(format!(
                "schema_version {} (this tlsbench reads {})",
                raw["schema_version"],
                report::SCHEMA_VERSION
            )));
        }
        let config = raw["config"]
            .as_object()
            .cloned()
            .ok_or_else(|| invalid("no config object".into()))?;
        let segment = serde_json::from_value(config.get("segment").cloned().unwrap_or_default())
            .map_err(|e| invalid(format!("config.segment: {e}")))?;
        let hostname = raw["machine"]["hostname"]
            .as_str()
            .ok_or_else(|| invalid("no machine.hostname".into()))?
            .to_owned();
        let results = serde_json::from_value(raw["results"].clone())
            .map_err(|e| invalid(format!("results: {e}")))?;
        Ok(Part {
            name,
            raw,
            config,
            hostname,
            segment,
            results,
        })
    }
}

/// The merged document and what its reader must not miss.
#[derive(Debug)]
pub struct Merged {
    /// A load document (loadgen/schema.json) with `merged_from` naming its parts.
    pub document: Value,
    /// Also in `results.warnings`.
    pub warnings: Vec<String>,
    /// Every part was complete and every segment present.
    pub complete: bool,
}

/// Refuses a field (its JSON path) whose value differs between `a` and `b`.
fn same(
    field: &str,
    a: &Part,
    av: Option<&Value>,
    b: &Part,
    bv: Option<&Value>,
) -> Result<(), MergeError> {
    if av == bv {
        return Ok(());
    }
    let show = |v: Option<&Value>| v.map_or_else(|| "no such field".to_owned(), Value::to_string);
    Err(MergeError::Mismatch {
        field: field.into(),
        a_path: a.name.clone(),
        a: show(av),
        b_path: b.name.clone(),
        b: show(bv),
    })
}

/// Every configuration field but the [`SPLIT`] ones, and every histogram setting, must agree
/// with the first part's. Fields are compared by name, so a field a later version adds is
/// checked too.
fn check_alike(first: &Part, other: &Part) -> Result<(), MergeError> {
    let keys: BTreeSet<&String> = first.config.keys().chain(other.config.keys()).collect();
    for k in keys.into_iter().filter(|k| !SPLIT.contains(&k.as_str())) {
        same(
            &format!("config.{k}"),
            first,
            first.config.get(k),
            other,
            other.config.get(k),
        )?;
    }
    // Open and closed loop do not merge, whatever each part's share of the rate.
    let is_open = |p: &Part| Value::Bool(!p.config.get("rate").is_none_or(Value::is_null));
    same(
        "config.rate (open loop or closed)",
        first,
        Some(&is_open(first)),
        other,
        Some(&is_open(other)),
    )?;
    let settings = |p: &Part| serde_json::to_value(&p.results.histograms).unwrap_or_default();
    let (a, b) = (settings(first), settings(other));
    for family in ["latency", "handshake_bytes"] {
        for field in ["unit", "lowest", "highest", "significant_figures"] {
            same(
                &format!("results.histograms.{family}.{field}"),
                first,
                a[family].get(field),
                other,
                b[family].get(field),
            )?;
        }
    }
    Ok(())
}

/// The segments must all be given or all absent, of one count, each at most once; returns
/// the missing ones' description.
fn check_segments(parts: &[Part]) -> Result<Option<String>, MergeError> {
    let segs: Vec<Option<Segment>> = parts.iter().map(|p| p.segment).collect();
    if segs.iter().all(Option::is_none) {
        return Ok(None);
    }
    let mut seen = BTreeMap::new();
    let mut count = None;
    for (p, s) in parts.iter().zip(segs) {
        let Some(s) = s else {
            return Err(MergeError::Segments(format!(
                "{} is not a segment (config.segment is null) but other parts are",
                p.name
            )));
        };
        match count {
            None => count = Some((s.count, &p.name)),
            Some((n, first)) if n != s.count => {
                return Err(MergeError::Segments(format!(
                    "{first} is one of {n} segments, {} one of {}",
                    p.name, s.count
                )));
            }
            Some(_) => {}
        }
        if let Some(other) = seen.insert(s.index, &p.name) {
            return Err(MergeError::Segments(format!(
                "segment {s} appears twice: {other} and {}",
                p.name
            )));
        }
    }
    let n = count.map_or(0, |(n, _)| n);
    let missing: Vec<String> = (0..n)
        .filter(|i| !seen.contains_key(i))
        .map(|i| format!("{i}/{n}"))
        .collect();
    Ok((!missing.is_empty()).then(|| format!("segments {} not merged", missing.join(", "))))
}

/// Adds the parts' encoded histograms `pick` selects into one recorded as `settings` says.
fn add_histograms<'p>(
    parts: &'p [Part],
    settings: &report::Recording,
    field: &str,
    pick: impl Fn(&'p Part) -> Option<(&'p str, u64)>,
) -> Result<Hist, MergeError> {
    let mut sum = Hist::new_with_bounds(
        settings.lowest,
        settings.highest,
        settings.significant_figures,
    )
    .map_err(|e| MergeError::Invalid {
        path: parts[0].name.clone(),
        reason: format!("results.histograms: {e:?}"),
    })?;
    for p in parts {
        let invalid = |reason: String| MergeError::Invalid {
            path: p.name.clone(),
            reason: format!("{field}: {reason}"),
        };
        let (encoded, count) = pick(p).ok_or_else(|| invalid("missing".into()))?;
        let h = report::decode_hist(encoded).map_err(invalid)?;
        // The summary and the histogram must describe the same samples, or the merged
        // percentiles would not be the parts' percentiles.
        if h.len() != count {
            return Err(invalid(format!(
                "the histogram holds {} samples, the count says {count}",
                h.len()
            )));
        }
        sum.add(&h)
            .map_err(|e| invalid(format!("does not fit results.histograms: {e:?}")))?;
    }
    Ok(sum)
}

fn per_s(n: u64, secs: f64) -> f64 {
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

/// Merges the documents `inputs` (each with the name its messages use).
pub fn merge(
    inputs: Vec<(String, Value)>,
    command_line: Vec<String>,
) -> Result<Merged, MergeError> {
    if inputs.len() < 2 {
        return Err(MergeError::TooFew);
    }
    let parts = inputs
        .into_iter()
        .map(|(name, raw)| Part::read(name, raw))
        .collect::<Result<Vec<_>, _>>()?;
    let first = &parts[0];
    for p in &parts[1..] {
        check_alike(first, p)?;
    }
    let missing = check_segments(&parts)?;

    let mut counts = LoadCounters::default();
    for p in &parts {
        let mut c = p.results.counts.clone();
        for name in p.results.errors.keys() {
            if !FailureKind::ALL.iter().any(|k| k.as_str() == name) {
                return Err(MergeError::Invalid {
                    path: p.name.clone(),
                    reason: format!("results.errors: unknown kind {name:?}"),
                });
            }
        }
        for k in FailureKind::ALL {
            c.errors[k as usize] =
                *p.results
                    .errors
                    .get(k.as_str())
                    .ok_or_else(|| MergeError::Invalid {
                        path: p.name.clone(),
                        reason: format!("results.errors.{} missing", k.as_str()),
                    })?;
        }
        counts.merge(&c);
    }

    let window = Window {
        start_unix_ns: parts
            .iter()
            .map(|p| p.results.window.start_unix_ns)
            .min()
            .unwrap_or(0),
        end_unix_ns: parts
            .iter()
            .map(|p| p.results.window.end_unix_ns)
            .max()
            .unwrap_or(0),
    };
    let common_start = parts
        .iter()
        .map(|p| p.results.window.start_unix_ns)
        .max()
        .unwrap_or(0);
    let common_end = parts
        .iter()
        .map(|p| p.results.window.end_unix_ns)
        .min()
        .unwrap_or(0);
    let union_ns = window.end_unix_ns - window.start_unix_ns;
    let overlap = if union_ns == 0 {
        0.0
    } else {
        common_end.saturating_sub(common_start) as f64 / union_ns as f64
    };
    let secs = window.secs();

    let settings = &first.results.histograms;
    let mut latency = BTreeMap::new();
    for name in LATENCIES {
        let h = add_histograms(
            &parts,
            &settings.latency,
            &format!("results.latency.{name}"),
            |p| {
                p.results
                    .latency
                    .get(name)
                    .map(|l| (l.hdr.as_str(), l.count))
            },
        )?;
        latency.insert(name, report::latency(&h));
    }
    let mut handshake_bytes = BTreeMap::new();
    for (name, total) in [
        ("in", counts.handshake_bytes_in),
        ("out", counts.handshake_bytes_out),
    ] {
        let h = add_histograms(
            &parts,
            &settings.handshake_bytes,
            &format!("results.handshake_bytes.{name}"),
            |p| {
                p.results
                    .handshake_bytes
                    .get(name)
                    .map(|b| (b.hdr.as_str(), b.count))
            },
        )?;
        handshake_bytes.insert(name, report::handshake_bytes(&h, total));
    }

    let user_s: f64 = parts.iter().map(|p| p.results.cpu.user_s).sum();
    let sys_s: f64 = parts.iter().map(|p| p.results.cpu.sys_s).sum();
    let cpu_us = (user_s + sys_s) * 1e6;
    let per = |n: u64| (n > 0).then(|| cpu_us / n as f64);
    let mb = (counts.body_bytes_in + counts.body_bytes_out) as f64 / 1e6;
    let hs = counts.handshakes();
    let bound: Vec<&Part> = parts
        .iter()
        .filter(|p| p.results.cpu.generator_bound)
        .collect();
    let cpu = Cpu {
        user_s,
        sys_s,
        us_per_handshake: per(hs),
        us_per_request: per(counts.requests),
        us_per_mb: (mb > 0.0).then(|| cpu_us / mb),
        max_worker_core_share: parts
            .iter()
            .map(|p| p.results.cpu.max_worker_core_share)
            .fold(0.0, f64::max),
        generator_bound: !bound.is_empty(),
    };
    let open_loop = parts
        .iter()
        .map(|p| p.results.open_loop.as_ref().map(|o| o.requested_per_s))
        .sum::<Option<f64>>()
        .map(|requested| OpenLoop {
            requested_per_s: requested,
            achieved_per_s: per_s(counts.started, secs),
            not_started: counts.not_started,
        });

    let mut reasons: Vec<String> = parts
        .iter()
        .filter(|p| !p.results.complete)
        .map(|p| {
            format!(
                "{}: {}",
                p.name,
                p.results
                    .incomplete_reason
                    .as_deref()
                    .unwrap_or("incomplete")
            )
        })
        .collect();
    reasons.extend(missing);
    let incomplete_reason = (!reasons.is_empty()).then(|| reasons.join("; "));

    let mut warnings = Vec::new();
    if !bound.is_empty() {
        let names: Vec<String> = bound
            .iter()
            .map(|p| {
                format!(
                    "{} ({:.0}% of a core)",
                    p.name,
                    p.results.cpu.max_worker_core_share * 100.0
                )
            })
            .collect();
        warnings.push(format!(
            "the load generator was the bottleneck in {} of {} parts: {}; add threads or machines before reading these rates as the server's limit",
            bound.len(),
            parts.len(),
            names.join(", ")
        ));
    }
    if overlap < MIN_OVERLAP {
        warnings.push(format!(
            "THE PARTS DID NOT RUN TOGETHER: they all ran during {:.1}% of the union of their windows (below {:.0}%); rates are over the union and understate the combined load (start them with one --start-at)",
            overlap * 100.0,
            MIN_OVERLAP * 100.0
        ));
    }
    if let Some(w) = open_loop.as_ref().and_then(OpenLoop::shortfall) {
        warnings.push(w);
    }
    if let Some(why) = &incomplete_reason {
        warnings.push(format!("INCOMPLETE RESULTS: {why}"));
    }
    for p in &parts {
        warnings.extend(
            p.results
                .warnings
                .iter()
                .map(|w| format!("{}: {w}", p.name)),
        );
    }

    let mut errors = BTreeMap::new();
    for k in FailureKind::ALL {
        errors.insert(k.as_str(), counts.errors_of(k));
    }
    let results = report::Results {
        complete: incomplete_reason.is_none(),
        incomplete_reason,
        duration_s: secs,
        window,
        histograms: settings.clone(),
        errors,
        handshakes_per_s: per_s(hs, secs),
        requests_per_s: per_s(counts.requests, secs),
        open_loop,
        resumption_hit_rate: (counts.offered > 0)
            .then(|| counts.offered_resumed as f64 / counts.offered as f64),
        resumed_share: (hs > 0).then(|| counts.resumed_any() as f64 / hs as f64),
        download_mb_per_s: per_s(counts.body_bytes_in, secs) / 1e6,
        upload_mb_per_s: per_s(counts.body_bytes_out, secs) / 1e6,
        latency,
        handshake_bytes,
        cpu,
        verify_cache_hits: parts.iter().map(|p| p.results.verify_cache_hits).sum(),
        verify_cache_misses: parts.iter().map(|p| p.results.verify_cache_misses).sum(),
        warnings: warnings.clone(),
        counts,
    };
    let complete = results.complete;

    let mut document = first.raw.clone();
    let mut config = first.config.clone();
    let sum_u64 = |k: &str| -> Option<u64> {
        parts
            .iter()
            .map(|p| p.config.get(k).and_then(Value::as_u64))
            .sum()
    };
    let sum_f64 = |k: &str| -> Option<f64> {
        parts
            .iter()
            .map(|p| p.config.get(k).and_then(Value::as_f64))
            .sum()
    };
    for k in ["threads", "connections", "requests"] {
        config.insert(k.into(), sum_u64(k).map_or(Value::Null, Value::from));
    }
    config.insert(
        "rate".into(),
        sum_f64("rate").map_or(Value::Null, Value::from),
    );
    config.insert("segment".into(), Value::Null);
    document["config"] = Value::Object(config);
    document["command_line"] = Value::from(command_line);
    document["results"] = serde_json::to_value(&results).map_err(|e| MergeError::Invalid {
        path: first.name.clone(),
        reason: format!("encoding the merged results: {e}"),
    })?;
    document["merged_from"] = parts
        .iter()
        .map(|p| {
            serde_json::json!({
                "file": p.name,
                "hostname": p.hostname,
                "segment": p.segment,
                "window": p.results.window,
                "complete": p.results.complete,
                "generator_bound": p.results.cpu.generator_bound,
            })
        })
        .collect();
    Ok(Merged {
        document,
        warnings,
        complete,
    })
}

/// Runs `tlsbench merge`: reads the files, writes the merged document (to `-o` or stdout),
/// prints its warnings on stderr; exit 3 when a part was incomplete or a segment is missing.
pub fn run(args: &MergeArgs, command_line: Vec<String>) -> Result<Exit, MergeError> {
    let mut inputs = Vec::with_capacity(args.files.len());
    for f in &args.files {
        let name = f.display().to_string();
        let text = std::fs::read_to_string(f).map_err(|source| MergeError::Read {
            path: name.clone(),
            source,
        })?;
        let raw = serde_json::from_str(&text).map_err(|e| MergeError::Invalid {
            path: name.clone(),
            reason: e.to_string(),
        })?;
        inputs.push((name, raw));
    }
    let merged = merge(inputs, command_line)?;
    let text = serde_json::to_string_pretty(&merged.document).map_err(|e| MergeError::Write {
        path: "the merged document".into(),
        source: std::io::Error::other(e),
    })? + "\n";
    match &args.out {
        Some(p) => std::fs::write(p, text).map_err(|source| MergeError::Write {
            path: p.display().to_string(),
            source,
        })?,
        None => print!("{text}"),
    }
    for w in &merged.warnings {
        eprintln!("WARNING: {w}");
    }
    Ok(if merged.complete {
        Exit::Ok
    } else {
        Exit::Incomplete
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::stats::{Measured, new_hist, record};
    use crate::{LoadOptions, RunResult, Target, verify::Trust};

    /// A document as `tlsbench load --json` writes it, for segment `seg` of a run measured
    /// from `start` for `secs`, with request latencies `us`.
    fn part(seg: Option<Segment>, start: SystemTime, secs: u64, us: &[u64]) -> Value {
        let target = Target::new("https://127.0.0.1:4433/", None, None).unwrap();
        let mut opts = LoadOptions::new(target, Trust::Platform);
        opts.requests = Some(us.len() as u64);
        opts.segment = seg;
        let mut measured = Measured::default();
        for &v in us {
            record(&mut measured.request, Duration::from_micros(v));
            record(&mut measured.request_uncorrected, Duration::from_micros(v));
        }
        measured.counters.requests = us.len() as u64;
        measured.counters.started = us.len() as u64;
        measured.counters.full = 1;
        measured.cpu.user = Duration::from_millis(30);
        let r = RunResult {
            measured,
            elapsed: Duration::from_secs(secs),
            window: (start, start + Duration::from_secs(secs)),
            incomplete: None,
            verification_failed: false,
            verify_cache: (0, 1),
        };
        let doc = report::document(&opts, &r, vec!["tlsbench".into(), "load".into()]);
        serde_json::from_str(&serde_json::to_string(&doc).unwrap()).unwrap()
    }

    fn seg(index: u32, count: u32) -> Option<Segment> {
        Some(Segment { index, count })
    }

    fn t0() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    /// Two parts whose tails differ: one fast, one with a slow tail.
    fn fast_and_slow() -> (Vec<u64>, Vec<u64>) {
        let fast: Vec<u64> = (0..990).map(|i| 100 + i % 50).collect();
        let slow: Vec<u64> = (0..60).map(|i| 20_000 + i * 100).collect();
        (fast, slow)
    }

    fn named(docs: Vec<Value>) -> Vec<(String, Value)> {
        docs.into_iter()
            .enumerate()
            .map(|(i, d)| (format!("part{i}.json"), d))
            .collect()
    }

    #[test]
    fn the_merged_p99_is_the_p99_of_all_samples_and_counts_add_up() {
        let (fast, slow) = fast_and_slow();
        let a = part(seg(0, 2), t0(), 10, &fast);
        let b = part(seg(1, 2), t0() + Duration::from_millis(100), 10, &slow);
        let m = merge(named(vec![a.clone(), b.clone()]), vec!["merge".into()]).unwrap();
        let r = &m.document["results"];
        let mut all = new_hist();
        for v in fast.iter().chain(&slow) {
            record(&mut all, Duration::from_micros(*v));
        }
        assert_eq!(
            r["latency"]["request"]["percentiles_us"]["p99"],
            all.value_at_percentile(99.0)
        );
        // Averaging the parts' p99s would give something else entirely.
        let mean_p99 = (a["results"]["latency"]["request"]["percentiles_us"]["p99"]
            .as_u64()
            .unwrap()
            + b["results"]["latency"]["request"]["percentiles_us"]["p99"]
                .as_u64()
                .unwrap())
            / 2;
        assert_ne!(mean_p99, all.value_at_percentile(99.0));
        assert_eq!(r["counts"]["requests"], 1050);
        assert_eq!(r["latency"]["request"]["count"], 1050);
        assert_eq!(r["counts"]["full"], 2);
        assert_eq!(r["verify_cache_misses"], 2);
        assert_eq!(m.document["config"]["requests"], 1050);
        assert!(m.document["config"]["segment"].is_null());
        assert_eq!(m.document["merged_from"][1]["file"], "part1.json");
        // CPU per request: Σ CPU ÷ Σ requests.
        let per = r["cpu"]["us_per_request"].as_f64().unwrap();
        assert!((per - 60_000.0 / 1050.0).abs() < 1e-6, "{per}");
        assert!(m.complete, "{:?}", m.warnings);
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);

        // The merged document is a load result the schema accepts.
        let schema: Value = serde_json::from_str(include_str!("../schema.json")).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&m.document)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
        assert!(validator.is_valid(&a), "a part validates too");
    }

    #[test]
    fn rates_are_over_the_union_of_the_windows_and_a_poor_overlap_is_named() {
        let (fast, slow) = fast_and_slow();
        // 10 s each, the second starting 5 s later: union 15 s, overlap 5 s (33%).
        let a = part(seg(0, 2), t0(), 10, &fast);
        let b = part(seg(1, 2), t0() + Duration::from_secs(5), 10, &slow);
        let m = merge(named(vec![a, b]), vec![]).unwrap();
        let r = &m.document["results"];
        assert_eq!(r["duration_s"], 15.0);
        assert_eq!(r["requests_per_s"], 1050.0 / 15.0);
        let start = t0()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        assert_eq!(r["window"]["start_unix_ns"], start);
        assert_eq!(r["window"]["end_unix_ns"], start + 15_000_000_000);
        assert!(
            m.warnings
                .iter()
                .any(|w| w.contains("DID NOT RUN TOGETHER") && w.contains("33.3%")),
            "{:?}",
            m.warnings
        );
    }

    #[test]
    fn a_mismatched_configuration_or_histogram_is_refused_naming_the_field() {
        let (fast, slow) = fast_and_slow();
        let a = part(seg(0, 2), t0(), 10, &fast);
        let b = part(seg(1, 2), t0(), 10, &slow);
        for (field, value) in [
            ("/config/url", Value::from("https://other:4433/")),
            ("/config/mode", Value::from("new-conn")),
            ("/config/resume", Value::from("ticket")),
            ("/config/tls_versions", serde_json::json!(["1.3"])),
            ("/config/rate", Value::from(50.0)),
            (
                "/results/histograms/latency/significant_figures",
                Value::from(2),
            ),
        ] {
            let mut other = b.clone();
            *other.pointer_mut(field).unwrap() = value;
            let err = merge(named(vec![a.clone(), other]), vec![])
                .unwrap_err()
                .to_string();
            let name = field.trim_start_matches('/').replace('/', ".");
            assert!(err.starts_with(&name), "{field}: {err}");
            assert!(
                err.contains("part0.json") && err.contains("part1.json"),
                "{err}"
            );
        }
        // A field one part has and the other lacks is a difference too.
        let mut other = b.clone();
        other["config"].as_object_mut().unwrap().remove("method");
        let err = merge(named(vec![a.clone(), other]), vec![])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config.method") && err.contains("no such field"),
            "{err}"
        );
        // A histogram whose samples disagree with its count is refused.
        let mut other = b.clone();
        other["results"]["latency"]["request"]["count"] = Value::from(7);
        let err = merge(named(vec![a.clone(), other]), vec![])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("results.latency.request") && err.contains("count says 7"),
            "{err}"
        );
        // Segments that do not fit together.
        let c = part(seg(0, 2), t0(), 10, &slow);
        let err = merge(named(vec![a.clone(), c]), vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("segment 0/2 appears twice"), "{err}");
        let d = part(seg(1, 3), t0(), 10, &slow);
        let err = merge(named(vec![a.clone(), d]), vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("one of 3"), "{err}");
        assert!(matches!(
            merge(named(vec![a]), vec![]),
            Err(MergeError::TooFew)
        ));
    }

    #[test]
    fn a_generator_bound_or_incomplete_part_or_a_missing_segment_carries_into_the_merge() {
        let (fast, slow) = fast_and_slow();
        let a = part(seg(0, 3), t0(), 10, &fast);
        let mut b = part(seg(1, 3), t0(), 10, &slow);
        b["results"]["cpu"]["generator_bound"] = Value::Bool(true);
        b["results"]["cpu"]["max_worker_core_share"] = Value::from(0.97);
        b["results"]["complete"] = Value::Bool(false);
        b["results"]["incomplete_reason"] = Value::from("interrupted");
        let m = merge(named(vec![a, b]), vec![]).unwrap();
        let r = &m.document["results"];
        assert_eq!(r["cpu"]["generator_bound"], true);
        assert_eq!(r["cpu"]["max_worker_core_share"], 0.97);
        assert_eq!(r["complete"], false);
        let why = r["incomplete_reason"].as_str().unwrap();
        assert!(why.contains("part1.json: interrupted"), "{why}");
        assert!(why.contains("segments 2/3 not merged"), "{why}");
        assert!(!m.complete);
        assert!(
            m.warnings
                .iter()
                .any(|w| w.contains("bottleneck in 1 of 2 parts: part1.json (97%")),
            "{:?}",
            m.warnings
        );
        assert_eq!(m.document["merged_from"][1]["generator_bound"], true);
    }

    #[test]
    fn hit_rates_are_recomputed_from_the_summed_counts() {
        let (fast, slow) = fast_and_slow();
        let mut a = part(None, t0(), 10, &fast);
        let mut b = part(None, t0(), 10, &slow);
        for (doc, offered, resumed) in [(&mut a, 10, 9), (&mut b, 30, 11)] {
            doc["results"]["counts"]["offered"] = Value::from(offered);
            doc["results"]["counts"]["offered_resumed"] = Value::from(resumed);
            doc["results"]["counts"]["resumed"] = Value::from(resumed);
        }
        let m = merge(named(vec![a, b]), vec![]).unwrap();
        let r = &m.document["results"];
        // (9 + 11) / (10 + 30), not the mean of 90% and 37%.
        assert_eq!(r["resumption_hit_rate"], 0.5);
        // 20 resumed of 22 handshakes (one full in each part).
        assert_eq!(r["resumed_share"], 20.0 / 22.0);
    }

    #[test]
    fn a_document_that_is_not_a_load_result_is_refused_naming_what_is_wrong() {
        let (fast, slow) = fast_and_slow();
        let a = part(seg(0, 2), t0(), 10, &fast);
        let b = part(seg(1, 2), t0(), 10, &slow);
        let refused = |edit: &dyn Fn(&mut Value)| {
            let mut other = b.clone();
            edit(&mut other);
            merge(named(vec![a.clone(), other]), vec![])
                .unwrap_err()
                .to_string()
        };
        let err = refused(&|d| d["tool"] = Value::from("tlsbench run"));
        assert!(
            err.contains("part1.json") && err.contains("tool is"),
            "{err}"
        );
        let err = refused(&|d| d["schema_version"] = Value::from(99));
        assert!(err.contains("schema_version 99"), "{err}");
        let err = refused(&|d| d["results"]["errors"]["gremlins"] = Value::from(1));
        assert!(err.contains("unknown kind \"gremlins\""), "{err}");
        let err = refused(&|d| {
            d["results"]["errors"]
                .as_object_mut()
                .unwrap()
                .remove("reset");
        });
        assert!(err.contains("results.errors.reset missing"), "{err}");
        let err = refused(&|d| {
            d["results"]["latency"]
                .as_object_mut()
                .unwrap()
                .remove("ttfb");
        });
        assert!(err.contains("results.latency.ttfb: missing"), "{err}");
        let err = refused(&|d| d["results"]["latency"]["ttfb"]["hdr"] = Value::from("!!"));
        assert!(err.contains("results.latency.ttfb: base64"), "{err}");
        let err = refused(&|d| d["config"]["segment"] = Value::Null);
        assert!(err.contains("part1.json is not a segment"), "{err}");
        let err = refused(&|d| {
            d["machine"].as_object_mut().unwrap().remove("hostname");
        });
        assert!(err.contains("machine.hostname"), "{err}");
        let err = refused(&|d| d["config"] = Value::from("?"));
        assert!(err.contains("no config object"), "{err}");
        let err = refused(&|d| {
            d["results"].as_object_mut().unwrap().remove("counts");
        });
        assert!(err.contains("results: missing field `counts`"), "{err}");
        // Settings that agree but that no histogram can have, or that the encoded
        // histograms do not fit.
        let both = |edit: &dyn Fn(&mut Value)| {
            let (mut a, mut b) = (a.clone(), b.clone());
            edit(&mut a);
            edit(&mut b);
            merge(named(vec![a, b]), vec![]).unwrap_err().to_string()
        };
        let err = both(&|d| d["results"]["histograms"]["latency"]["lowest"] = Value::from(0));
        assert!(err.contains("results.histograms"), "{err}");
        let err = both(&|d| d["results"]["histograms"]["latency"]["highest"] = Value::from(1000));
        assert!(err.contains("does not fit results.histograms"), "{err}");
    }
}
