//! The soak's good clients: the mix of open-loop load-generator runs (what each does, at what
//! rate, on how many connections), their options, and what each did.

use std::collections::BTreeMap;
use std::time::Duration;

use common::tls::Version;
use loadgen::verify::Trust;
use loadgen::{LoadOptions, ResumeMode, Target};
use serde::Serialize;

const MIB: u64 = 1024 * 1024;

/// One member of the good-client mix.
pub(crate) struct MixSpec {
    pub(crate) name: &'static str,
    what: &'static str,
    pub(crate) tls: Version,
    pub(crate) resume: ResumeMode,
    new_conn: bool,
    method: &'static str,
    path: &'static str,
    upload: u64,
    /// Operations per second at `--scale 1`.
    rate: f64,
    connections: usize,
}

/// The mix: rates modest enough that two cores shared with the sampler (and whatever else
/// runs) keep up, so the load is the same in the first minute and the tenth.
pub(crate) const MIX: [MixSpec; 6] = [
    MixSpec::handshakes(
        "full",
        "new connection per request, TLS 1.3, no resumption offered",
        Version::Tls13,
        ResumeMode::Off,
    ),
    MixSpec::handshakes(
        "resumed-tls13",
        "new connection per request, TLS 1.3 ticket resumption",
        Version::Tls13,
        ResumeMode::Ticket,
    ),
    MixSpec::handshakes(
        "resumed-tls12",
        "new connection per request, TLS 1.2 session-ID resumption",
        Version::Tls12,
        ResumeMode::SessionId,
    ),
    MixSpec::kept_alive(
        "keep-alive",
        "GET / on kept-alive TLS 1.3 connections",
        ("GET", "/", 0),
        500.0,
        8,
    ),
    MixSpec::kept_alive(
        "download",
        "GET /bytes/1MiB on kept-alive TLS 1.3 connections",
        ("GET", "/bytes/1048576", 0),
        10.0,
        4,
    ),
    MixSpec::kept_alive(
        "upload",
        "POST /sink with a 1 MiB body on kept-alive TLS 1.3 connections",
        ("POST", "/sink", MIB),
        10.0,
        4,
    ),
];

impl MixSpec {
    /// A new connection per `GET /`, 50 a second on four connections: a handshake each.
    const fn handshakes(
        name: &'static str,
        what: &'static str,
        tls: Version,
        resume: ResumeMode,
    ) -> MixSpec {
        MixSpec {
            name,
            what,
            tls,
            resume,
            new_conn: true,
            method: "GET",
            path: "/",
            upload: 0,
            rate: 50.0,
            connections: 4,
        }
    }

    /// `(method, path, upload bytes)` at `rate` on `connections` kept-alive TLS 1.3
    /// connections.
    const fn kept_alive(
        name: &'static str,
        what: &'static str,
        (method, path, upload): (&'static str, &'static str, u64),
        rate: f64,
        connections: usize,
    ) -> MixSpec {
        MixSpec {
            name,
            what,
            tls: Version::Tls13,
            resume: ResumeMode::Off,
            new_conn: false,
            method,
            path,
            upload,
            rate,
            connections,
        }
    }
}

/// Connections the mix can hold open at once.
pub fn mix_connections() -> u64 {
    MIX.iter().map(|m| m.connections as u64).sum()
}

/// What one mix member did.
#[derive(Clone, Debug, Serialize)]
pub struct MixResult {
    /// Its name.
    pub name: String,
    /// What it does.
    pub what: String,
    /// Operations per second asked for (open loop).
    pub rate_per_s: f64,
    /// Its connections.
    pub connections: usize,
    /// Requests answered with 2xx and a complete body.
    pub requests: u64,
    /// Full handshakes (including with HelloRetryRequest).
    pub handshakes_full: u64,
    /// Resumed handshakes.
    pub handshakes_resumed: u64,
    /// Resumed ÷ handshakes (None without handshakes).
    pub resumed_share: Option<f64>,
    /// Response body bytes received.
    pub body_bytes_in: u64,
    /// Request body bytes sent.
    pub body_bytes_out: u64,
    /// Errors, all kinds (must be 0).
    pub errors: u64,
    /// Errors by kind (only kinds that occurred).
    pub errors_by_kind: BTreeMap<String, u64>,
    /// 99th percentile of the whole operation from its intended start, ms.
    pub p99_ms: f64,
    /// Why the generator stopped early, if it did.
    pub incomplete: Option<String>,
}

pub(crate) fn load_options(
    m: &MixSpec,
    target: &Target,
    trust: &Trust,
    duration: Duration,
    scale: f64,
) -> LoadOptions {
    let mut target = target.clone();
    target.path = m.path.to_owned();
    let mut opts = LoadOptions::new(target, trust.clone());
    opts.connections = m.connections;
    opts.new_conn = m.new_conn;
    opts.method = m.method.to_owned();
    opts.upload = m.upload;
    opts.tls.versions = vec![m.tls];
    opts.tls.resume = m.resume;
    opts.rate = Some(m.rate * scale);
    // Everything counts (no warm-up): an error in the first second is as much a failure as
    // one later.
    opts.duration = Some(duration);
    opts
}

pub(crate) fn mix_result(m: &MixSpec, scale: f64, r: &loadgen::RunResult) -> MixResult {
    let c = &r.measured.counters;
    let handshakes = c.handshakes();
    MixResult {
        name: m.name.to_owned(),
        what: m.what.to_owned(),
        rate_per_s: m.rate * scale,
        connections: m.connections,
        requests: c.requests,
        handshakes_full: c.full + c.full_hrr,
        handshakes_resumed: c.resumed,
        resumed_share: (handshakes > 0).then(|| c.resumed as f64 / handshakes as f64),
        body_bytes_in: c.body_bytes_in,
        body_bytes_out: c.body_bytes_out,
        errors: c.errors_total(),
        errors_by_kind: loadgen::FailureKind::ALL
            .iter()
            .filter(|k| c.errors_of(**k) > 0)
            .map(|k| (k.as_str().to_owned(), c.errors_of(*k)))
            .collect(),
        p99_ms: if r.measured.request.is_empty() {
            0.0
        } else {
            r.measured.request.value_at_percentile(99.0) as f64 / 1000.0
        },
        incomplete: r.incomplete.clone(),
    }
}
