//! Criterion's output directory read into measurements: every `new/` result with its median,
//! throughput, write time and sample count, and the split into what the marked run wrote and
//! what it did not.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Deserialize;

use crate::marker::RunMarker;
use crate::{LeftOut, ReportError};

/// Criterion's throughput setting, as far as the report needs it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Throughput {
    /// Bytes processed per iteration.
    pub(crate) bytes: Option<f64>,
    /// Elements (e.g. handshakes) per iteration.
    pub(crate) elements: Option<f64>,
}

/// One criterion benchmark's result.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Measurement {
    /// The group, e.g. `floor`.
    pub(crate) group: String,
    /// The ID within the group: the function ID and the value string, `/`-joined.
    pub(crate) id: String,
    /// Median time per iteration in nanoseconds.
    pub(crate) median_ns: f64,
    pub(crate) throughput: Throughput,
    /// When criterion wrote `estimates.json`: this run's results are written after it started.
    pub(crate) written: SystemTime,
    /// Samples in `sample.json` (`None` when absent): the profile's sample size when this
    /// run made it.
    pub(crate) samples: Option<usize>,
}

impl Measurement {
    /// Nanoseconds per operation: per iteration, divided by the elements per iteration when
    /// a bench batches several operations (e.g. handshakes) into one.
    pub(crate) fn per_op_ns(&self) -> f64 {
        match self.throughput.elements {
            Some(n) if n > 0.0 => self.median_ns / n,
            _ => self.median_ns,
        }
    }

    /// Bytes per second, from the throughput setting or else `fallback_bytes` per iteration.
    pub(crate) fn bytes_per_s(&self, fallback_bytes: Option<f64>) -> Option<f64> {
        let bytes = self.throughput.bytes.or(fallback_bytes)?;
        Some(bytes * 1e9 / self.median_ns)
    }
}

#[derive(Deserialize)]
pub(crate) struct BenchmarkJson {
    group_id: String,
    function_id: Option<String>,
    value_str: Option<String>,
    throughput: Option<serde_json::Value>,
}

#[derive(Deserialize)]
pub(crate) struct EstimatesJson {
    median: PointEstimate,
}

#[derive(Deserialize)]
pub(crate) struct PointEstimate {
    point_estimate: f64,
}

/// Criterion's `sample.json`: iteration counts and times, one per sample.
#[derive(Deserialize)]
pub(crate) struct SampleJson {
    iters: Vec<f64>,
}

/// Every benchmark under `dir` with a `new/benchmark.json` and `new/estimates.json`, sorted by
/// group and ID. `base/` and `change/` (the previous run and the comparison) are ignored.
pub(crate) fn collect(dir: &Path) -> Result<Vec<Measurement>, ReportError> {
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
pub(crate) fn of_run(all: Vec<Measurement>, run: &RunMarker) -> (Vec<Measurement>, Vec<LeftOut>) {
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
pub(crate) fn find_new_dirs(dir: &Path, found: &mut Vec<PathBuf>) -> Result<(), ReportError> {
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

pub(crate) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ReportError> {
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
pub(crate) fn read_measurement(new_dir: &Path) -> Result<Option<Measurement>, ReportError> {
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
pub(crate) fn parse_throughput(value: Option<&serde_json::Value>) -> Throughput {
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
