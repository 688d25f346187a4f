//! Tests of `merge`.

#![allow(clippy::unwrap_used)]

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
    let schema: Value = serde_json::from_str(include_str!("../../schema.json")).unwrap();
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
