//! Results: the JSON document (schema in `loadgen/schema.json`), the human summary, and the
//! histogram encoding (HdrHistogram V2, deflated, base64) that lets runs from several
//! machines be merged exactly.
//!
//! The human summary is in `human` (re-exported as [`human()`]); the tests in `tests`.

use std::collections::BTreeMap;

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};
use serde::Serialize;

use crate::stats::{FailureKind, Hist, Measured};
use crate::{LoadOptions, ResumeMode, RunResult};

/// The latency histograms of a load document (`results.latency_us`), in the order the
/// summary prints them and `merge` adds them.
pub(crate) const LATENCIES: [&str; 6] = [
    "connect",
    "handshake",
    "ttfb",
    "ttfb_0rtt",
    "request",
    "request_uncorrected",
];

/// The results document version; bump on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// Percentiles every latency summary reports.
pub const PERCENTILES: [f64; 6] = [50.0, 90.0, 99.0, 99.9, 99.99, 100.0];

/// One latency distribution, in µs.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Smallest sample.
    pub min_us: u64,
    /// Mean.
    pub mean_us: f64,
    /// p50, p90, p99, p99.9, p99.99 and max, keyed "p50" ... "max".
    pub percentiles_us: BTreeMap<String, u64>,
    /// The whole histogram: HdrHistogram V2 deflate encoding, base64 (as HdrHistogram's log
    /// format stores it), for exact merging.
    pub hdr: String,
}

/// Summarises and encodes a histogram.
pub fn latency(h: &Hist) -> Latency {
    let mut percentiles_us = BTreeMap::new();
    for p in PERCENTILES {
        let key = if p >= 100.0 {
            "max".to_string()
        } else {
            format!("p{p}")
        };
        let v = if h.is_empty() {
            0
        } else if p >= 100.0 {
            h.max()
        } else {
            h.value_at_percentile(p)
        };
        percentiles_us.insert(key, v);
    }
    Latency {
        count: h.len(),
        min_us: if h.is_empty() { 0 } else { h.min() },
        mean_us: if h.is_empty() { 0.0 } else { h.mean() },
        percentiles_us,
        hdr: encode_hist(h),
    }
}

/// HdrHistogram V2 deflate, base64.
pub fn encode_hist(h: &Hist) -> String {
    let mut buf = Vec::new();
    match V2DeflateSerializer::new().serialize(h, &mut buf) {
        Ok(_) => base64::engine::general_purpose::STANDARD.encode(&buf),
        Err(_) => String::new(),
    }
}

/// Decodes [`encode_hist`]'s output.
pub fn decode_hist(s: &str) -> Result<Hist, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| format!("base64: {e}"))?;
    Deserializer::new()
        .deserialize(&mut std::io::Cursor::new(bytes))
        .map_err(|e| format!("histogram: {e:?}"))
}

/// How a family of histograms records: `tlsbench merge` adds histograms only when these
/// agree.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Recording {
    /// What a recorded value counts: "us" or "bytes".
    pub unit: String,
    /// Lowest discernible value.
    pub lowest: u64,
    /// Highest trackable value (larger ones saturate to it).
    pub highest: u64,
    /// Significant decimal figures kept.
    pub significant_figures: u8,
}

impl Recording {
    /// The settings `h` records with, in `unit`.
    pub fn of(h: &Hist, unit: &str) -> Recording {
        Recording {
            unit: unit.into(),
            lowest: h.low(),
            highest: h.high(),
            significant_figures: h.sigfig(),
        }
    }
}

/// The recording settings of the document's histograms.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct HistogramSettings {
    /// Every `latency` histogram.
    pub latency: Recording,
    /// Both `handshake_bytes` histograms.
    pub handshake_bytes: Recording,
}

/// The measured window on the wall clock, nanoseconds since the Unix epoch (UTC), so windows
/// of processes on several machines can be laid side by side.
#[derive(Clone, Copy, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Window {
    /// When measuring started.
    pub start_unix_ns: u64,
    /// When it ended.
    pub end_unix_ns: u64,
}

impl Window {
    /// The window between two wall-clock times (a time before the epoch reads as the epoch).
    pub fn new(start: std::time::SystemTime, end: std::time::SystemTime) -> Window {
        let ns = |t: std::time::SystemTime| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        };
        Window {
            start_unix_ns: ns(start),
            end_unix_ns: ns(end).max(ns(start)),
        }
    }

    /// Its length in seconds.
    pub fn secs(&self) -> f64 {
        (self.end_unix_ns - self.start_unix_ns) as f64 / 1e9
    }
}

/// Client CPU per unit of work over the measured window.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct Cpu {
    /// User time, seconds.
    pub user_s: f64,
    /// System time, seconds.
    pub sys_s: f64,
    /// Client CPU µs per completed handshake (null without handshakes).
    pub us_per_handshake: Option<f64>,
    /// Client CPU µs per successful request.
    pub us_per_request: Option<f64>,
    /// Client CPU µs per MB (10^6 bytes) of body moved.
    pub us_per_mb: Option<f64>,
    /// The busiest worker's share of one core over the window.
    pub max_worker_core_share: f64,
    /// The generator itself was saturated (a worker above 90% of a core): the server's limit
    /// was not measured.
    pub generator_bound: bool,
}

/// Below this share of the requested rate, an open-loop run says it fell behind.
pub const RATE_SHORTFALL: f64 = 0.95;

/// How an open-loop run kept to its schedule.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct OpenLoop {
    /// Operations per second asked for (`--rate`).
    pub requested_per_s: f64,
    /// Measured operations started per second over the measured window.
    pub achieved_per_s: f64,
    /// Operations due before the end that never started (every connection was busy).
    pub not_started: u64,
}

impl OpenLoop {
    /// The warning when fewer than [`RATE_SHORTFALL`] of the requested operations started:
    /// the server was then offered less load than the report's rate says.
    pub fn shortfall(&self) -> Option<String> {
        (self.achieved_per_s < RATE_SHORTFALL * self.requested_per_s).then(|| {
            format!(
                "OPEN LOOP FELL BEHIND: asked for {:.1} operations/s, started {:.1}/s ({:.1}%); {} due operations never started: add connections (-c) or lower --rate",
                self.requested_per_s,
                self.achieved_per_s,
                100.0 * self.achieved_per_s / self.requested_per_s,
                self.not_started
            )
        })
    }
}

/// The TLS bytes of completed handshakes one way, per handshake.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct HandshakeBytes {
    /// Handshakes.
    pub count: u64,
    /// Mean bytes per handshake (exact: the counted total over the count).
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest.
    pub max: u64,
    /// The whole histogram, encoded as the latencies' are.
    pub hdr: String,
}

/// Summarises one direction's handshake bytes: `h` per handshake, `total` their exact sum.
pub fn handshake_bytes(h: &Hist, total: u64) -> HandshakeBytes {
    let at = |p: f64| {
        if h.is_empty() {
            0
        } else {
            h.value_at_percentile(p)
        }
    };
    HandshakeBytes {
        count: h.len(),
        mean: if h.is_empty() {
            0.0
        } else {
            total as f64 / h.len() as f64
        },
        p50: at(50.0),
        p99: at(99.0),
        max: if h.is_empty() { 0 } else { h.max() },
        hdr: encode_hist(h),
    }
}

/// The `results` part of the document.
#[derive(Clone, Debug, Serialize)]
pub struct Results {
    /// False when the run stopped early or operations failed.
    pub complete: bool,
    /// Why it is incomplete.
    pub incomplete_reason: Option<String>,
    /// Measured window, seconds.
    pub duration_s: f64,
    /// The measured window on the wall clock.
    pub window: Window,
    /// How the histograms record (for merging).
    pub histograms: HistogramSettings,
    /// Operations, handshakes, errors and bytes.
    pub counts: crate::stats::LoadCounters,
    /// Errors by kind name.
    pub errors: BTreeMap<&'static str, u64>,
    /// Completed handshakes per second.
    pub handshakes_per_s: f64,
    /// Successful requests per second.
    pub requests_per_s: f64,
    /// Open loop (`--rate`): requested and achieved rates, operations never started; null in
    /// closed loop.
    pub open_loop: Option<OpenLoop>,
    /// Of the connections that offered a saved session, the share that resumed (null when
    /// none offered).
    pub resumption_hit_rate: Option<f64>,
    /// Resumed handshakes (with or without a HelloRetryRequest) among all completed handshakes.
    pub resumed_share: Option<f64>,
    /// Response body throughput, MB/s (10^6 bytes).
    pub download_mb_per_s: f64,
    /// Request body throughput, MB/s (10^6 bytes).
    pub upload_mb_per_s: f64,
    /// Latencies.
    pub latency: BTreeMap<&'static str, Latency>,
    /// TLS bytes per completed handshake: `in` server to client, `out` client to server.
    pub handshake_bytes: BTreeMap<&'static str, HandshakeBytes>,
    /// Client CPU.
    pub cpu: Cpu,
    /// Full chain+name validations avoided by the verification cache, and done.
    pub verify_cache_hits: u64,
    /// Full chain+name validations done.
    pub verify_cache_misses: u64,
    /// What a reader must not miss (also printed with the summary).
    pub warnings: Vec<String>,
}

/// The configuration part of the document.
#[derive(Clone, Debug, Serialize)]
pub struct Config {
    /// Target URL.
    pub url: String,
    /// Dialled address.
    pub address: String,
    /// Verified name.
    pub server_name: String,
    /// Threads.
    pub threads: usize,
    /// Connections.
    pub connections: usize,
    /// "new-conn" or "keep-alive".
    pub mode: &'static str,
    /// Keep-alive reconnect interval.
    pub requests_per_conn: Option<u64>,
    /// Request method.
    pub method: String,
    /// Request body bytes.
    pub upload_bytes: u64,
    /// Resumption mode.
    pub resume: &'static str,
    /// The crypto provider (`aws-lc-rs`, `ring`).
    pub provider: common::tls::Provider,
    /// Fraction offering a session.
    pub resume_ratio: f64,
    /// TLS versions offered.
    pub tls_versions: Vec<String>,
    /// Suites offered (empty: defaults).
    pub cipher_suites: Vec<String>,
    /// Groups offered (empty: defaults).
    pub kx_groups: Vec<String>,
    /// Open-loop rate.
    pub rate: Option<f64>,
    /// Measured duration, seconds.
    pub duration_s: Option<f64>,
    /// Measured operation count.
    pub requests: Option<u64>,
    /// Warm-up, seconds.
    pub warmup_s: f64,
    /// Per-operation timeout, seconds.
    pub timeout_s: f64,
    /// "verified (chain and hostname)" or the loud insecure notice.
    pub verification: String,
    /// True when `--insecure` was given.
    pub insecure: bool,
    /// The part of a larger load this run is (`--segment`), null for a whole load.
    pub segment: Option<crate::segment::Segment>,
}

/// The whole results document.
#[derive(Clone, Debug, Serialize)]
pub struct Document {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// "tlsbench load".
    pub tool: String,
    /// Version of tlsbench.
    pub version: String,
    /// The full command line.
    pub command_line: Vec<String>,
    /// Where it ran.
    pub machine: common::env::Environment,
    /// What was asked.
    pub config: Config,
    /// What was measured.
    pub results: Results,
}

/// Verification wording shared by the summary and the JSON.
pub fn verification_text(insecure: bool, plain: bool) -> String {
    if plain {
        "none: plain HTTP, no TLS (the TCP floor)".into()
    } else if insecure {
        "INSECURE: certificate chain and hostname were NOT verified (--insecure)".into()
    } else {
        "verified (chain and hostname)".into()
    }
}

fn per_s(n: u64, secs: f64) -> f64 {
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

/// Builds the document.
pub fn document(opts: &LoadOptions, r: &RunResult, command_line: Vec<String>) -> Document {
    let m: &Measured = &r.measured;
    let c = &m.counters;
    let secs = r.elapsed.as_secs_f64();
    let mut errors = BTreeMap::new();
    for k in FailureKind::ALL {
        errors.insert(k.as_str(), c.errors_of(k));
    }
    let mut latency = BTreeMap::new();
    latency.insert("connect", self::latency(&m.connect));
    latency.insert("handshake", self::latency(&m.handshake));
    latency.insert("ttfb", self::latency(&m.ttfb));
    latency.insert("ttfb_0rtt", self::latency(&m.ttfb_0rtt));
    latency.insert("request", self::latency(&m.request));
    latency.insert("request_uncorrected", self::latency(&m.request_uncorrected));
    let cpu_us = m.cpu.total().as_secs_f64() * 1e6;
    let per = |n: u64| (n > 0).then(|| cpu_us / n as f64);
    let mb = (c.body_bytes_in + c.body_bytes_out) as f64 / 1e6;
    let hs = c.handshakes();
    let mut doc = Document {
        schema_version: SCHEMA_VERSION,
        tool: "tlsbench load".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        command_line,
        machine: common::env::Environment::collect(),
        config: Config {
            url: opts.target.url.clone(),
            address: opts.target.addr.to_string(),
            server_name: opts.target.server_name.to_str().into_owned(),
            threads: opts.threads.min(opts.connections),
            connections: opts.connections,
            mode: if opts.new_conn {
                "new-conn"
            } else {
                "keep-alive"
            },
            requests_per_conn: opts.requests_per_conn,
            method: opts.method.clone(),
            upload_bytes: opts.upload,
            resume: match opts.tls.resume {
                ResumeMode::Off => "off",
                ResumeMode::Ticket => "ticket",
                ResumeMode::SessionId => "session-id",
            },
            provider: opts.tls.provider,
            resume_ratio: if opts.tls.resume == ResumeMode::Off {
                0.0
            } else {
                opts.resume_ratio
            },
            tls_versions: opts.tls.versions.iter().map(|v| v.to_string()).collect(),
            cipher_suites: opts
                .tls
                .suites
                .iter()
                .map(|s| common::tls::suite_name(*s))
                .collect(),
            kx_groups: opts
                .tls
                .groups
                .iter()
                .map(|g| common::tls::group_name(*g))
                .collect(),
            rate: opts.rate,
            duration_s: opts.duration.map(|d| d.as_secs_f64()),
            requests: opts.requests,
            warmup_s: opts.warmup.as_secs_f64(),
            timeout_s: opts.timeout.as_secs_f64(),
            verification: verification_text(opts.tls.insecure, opts.target.plain),
            insecure: opts.tls.insecure,
            segment: opts.segment,
        },
        results: Results {
            complete: r.incomplete.is_none(),
            incomplete_reason: r.incomplete.clone(),
            duration_s: secs,
            window: Window::new(r.window.0, r.window.1),
            histograms: HistogramSettings {
                latency: Recording::of(&m.request, "us"),
                handshake_bytes: Recording::of(&m.handshake_bytes_in, "bytes"),
            },
            counts: c.clone(),
            errors,
            handshakes_per_s: per_s(hs, secs),
            requests_per_s: per_s(c.requests, secs),
            open_loop: opts.rate.map(|requested| OpenLoop {
                requested_per_s: requested,
                achieved_per_s: per_s(c.started, secs),
                not_started: c.not_started,
            }),
            resumption_hit_rate: (c.offered > 0)
                .then(|| c.offered_resumed as f64 / c.offered as f64),
            resumed_share: (hs > 0).then(|| c.resumed_any() as f64 / hs as f64),
            download_mb_per_s: if secs > 0.0 {
                c.body_bytes_in as f64 / 1e6 / secs
            } else {
                0.0
            },
            upload_mb_per_s: if secs > 0.0 {
                c.body_bytes_out as f64 / 1e6 / secs
            } else {
                0.0
            },
            latency,
            handshake_bytes: BTreeMap::from([
                (
                    "in",
                    handshake_bytes(&m.handshake_bytes_in, c.handshake_bytes_in),
                ),
                (
                    "out",
                    handshake_bytes(&m.handshake_bytes_out, c.handshake_bytes_out),
                ),
            ]),
            cpu: Cpu {
                user_s: m.cpu.user.as_secs_f64(),
                sys_s: m.cpu.sys.as_secs_f64(),
                us_per_handshake: per(hs),
                us_per_request: per(c.requests),
                us_per_mb: (mb > 0.0).then(|| cpu_us / mb),
                max_worker_core_share: m.max_worker_cpu_share,
                // A window too short to say anything (a run stopped at once) is never "bound".
                generator_bound: m.max_worker_cpu_share > 0.9 && secs >= 0.5,
            },
            verify_cache_hits: r.verify_cache.0,
            verify_cache_misses: r.verify_cache.1,
            warnings: Vec::new(),
        },
    };
    doc.results.warnings = warnings(opts, &doc);
    doc
}

/// Warnings a reader must not miss.
pub fn warnings(opts: &LoadOptions, d: &Document) -> Vec<String> {
    let mut w = Vec::new();
    let res = &d.results;
    if opts.tls.insecure {
        w.push(verification_text(true, false));
    }
    if opts.tls.resume != ResumeMode::Off && opts.resume_ratio > 0.0 {
        let c = &res.counts;
        let share = res.resumed_share.unwrap_or(0.0);
        // Asked for a share R of resumed handshakes; anything well below R is a failed
        // experiment, whatever the reason.
        if c.handshakes() > 0 && share < 0.9 * opts.resume_ratio {
            w.push(format!(
                "RESUMPTION MOSTLY FAILED: asked for {:.0}% resumed handshakes, got {:.1}% ({} of {}): {} connections had no saved session to offer, {} offered one and the server did a full handshake anyway",
                opts.resume_ratio * 100.0,
                share * 100.0,
                c.resumed_any(),
                c.handshakes(),
                c.offer_missed,
                c.offered - c.offered_resumed
            ));
        }
    }
    if let Some(shortfall) = res.open_loop.as_ref().and_then(OpenLoop::shortfall) {
        w.push(shortfall);
    }
    if res.cpu.generator_bound {
        w.push(format!(
            "the load generator was the bottleneck: its busiest worker used {:.0}% of a core; add threads (-t) or cores before reading these rates as the server's limit",
            res.cpu.max_worker_core_share * 100.0
        ));
    }
    if let Some(why) = &res.incomplete_reason {
        w.push(format!("INCOMPLETE RESULTS: {why}"));
    }
    w
}

mod human;
pub use human::human;

#[cfg(test)]
mod tests;
