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
use crate::report::{
    self, Cpu, HandshakeBytes, HistogramSettings, LATENCIES, Latency, OpenLoop, Window,
};
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
mod tests;
