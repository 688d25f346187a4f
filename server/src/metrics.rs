//! The metrics contract between the server and whoever reads its counters: every series name
//! defined once here, the two expositions of one [`Snapshot`] (Prometheus text at `/metrics`
//! for scrapers, JSON at `/metrics.json` for tlsbench itself), and the one reader of them,
//! [`scrape`]. The runner, the soak and the tests read typed fields through it; a series or a
//! field missing from an answer is an error naming it, never a zero.
//!
//! The JSON keys labelled families by their Prometheus label values, so both expositions name
//! a series the same way. Every family lists every label value except the alerts received,
//! which are sparse (256 codes): an absent alert is one never received.

use std::collections::BTreeMap;
use std::fmt::{Display, Write as _};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::cpu::CpuTime;
use rustls::AlertDescription;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::client_auth::{ClientCert, RefusalCause};
use crate::http::Status;
use crate::session_cache::CacheCounts;
use common::cert_compression::Algorithm;

use crate::stats::{
    DIRECTIONS, EarlyData, FailureCause, HandshakeClass, Snapshot, TimeoutKind, VERSIONS,
};

/// TCP connections accepted (refused ones included).
pub const CONNECTIONS_ACCEPTED: &str = "tlsbench_connections_accepted_total";
/// Connections closed.
pub const CONNECTIONS_CLOSED: &str = "tlsbench_connections_closed_total";
/// Connections refused by `--max-connections`.
pub const CONNECTIONS_REFUSED: &str = "tlsbench_connections_refused_total";
/// `accept` failures other than WouldBlock.
pub const ACCEPT_ERRORS: &str = "tlsbench_accept_errors_total";
/// Connections open now (a gauge, derived from accepted and closed).
pub const CONNECTIONS_ACTIVE: &str = "tlsbench_connections_active";
/// Completed handshakes, labelled `version` and `kind` ([`HandshakeClass::as_str`]).
pub const HANDSHAKES: &str = "tlsbench_handshakes_total";
/// Failed handshakes, labelled `cause` ([`FailureCause::as_str`]).
pub const HANDSHAKE_FAILURES: &str = "tlsbench_handshake_failures_total";
/// Established connections ended by a rustls error, labelled `cause`.
pub const TLS_ERRORS: &str = "tlsbench_tls_errors_total";
/// Completed TLS handshakes, labelled `result` ([`ClientCert::as_str`]: a client certificate
/// accepted, or none).
pub const CLIENT_CERTS: &str = "tlsbench_client_certs_total";
/// Client certificates refused, labelled `cause` ([`RefusalCause::as_str`]).
pub const CLIENT_AUTH_REFUSALS: &str = "tlsbench_client_auth_refusals_total";
/// Fatal alerts received during handshakes, labelled `alert` (only those received).
pub const ALERTS_RECEIVED: &str = "tlsbench_handshake_alerts_received_total";
/// Connections closed by a timeout, labelled `phase` ([`TimeoutKind::as_str`]).
pub const TIMEOUTS: &str = "tlsbench_timeouts_total";
/// Responses, labelled `status` (the code).
pub const REQUESTS: &str = "tlsbench_requests_total";
/// Plaintext bytes, labelled `direction` (`in`, `out`).
pub const PLAINTEXT_BYTES: &str = "tlsbench_plaintext_bytes_total";
/// TLS bytes through the sockets, labelled `direction` (`in`, `out`).
pub const TLS_BYTES: &str = "tlsbench_tls_bytes_total";
/// The TLS bytes of completed handshakes, labelled `direction` (`in`, `out`).
pub const HANDSHAKE_BYTES: &str = "tlsbench_handshake_bytes_total";
/// Completed handshakes that sent the certificate chain compressed (RFC 8879), labelled
/// `algorithm` (`brotli`, `zlib`).
pub const CERT_COMPRESSED: &str = "tlsbench_cert_compressed_total";
/// Completed handshakes by what became of 0-RTT early data, labelled `result` (`offered`,
/// `accepted`, `rejected`).
pub const EARLY_DATA: &str = "tlsbench_early_data_total";
/// Process CPU seconds, labelled `mode` (`user`, `system`).
pub const CPU_SECONDS: &str = "tlsbench_cpu_seconds_total";
/// Process CPU seconds, user plus system (the name Prometheus client libraries use).
pub const PROCESS_CPU_SECONDS: &str = "process_cpu_seconds_total";
/// Seconds since the server started.
pub const UPTIME: &str = "tlsbench_uptime_seconds";
/// Worker threads.
pub const WORKERS: &str = "tlsbench_workers";
/// Entries in the stateful session cache now (a gauge; only with a session cache).
pub const SESSION_CACHE_ENTRIES: &str = "tlsbench_session_cache_entries";
/// The most entries the session cache keeps (`--session-cache`).
pub const SESSION_CACHE_CAPACITY: &str = "tlsbench_session_cache_capacity";
/// Sessions stored in the session cache.
pub const SESSION_CACHE_STORED: &str = "tlsbench_session_cache_stored_total";
/// Session-cache entries evicted unused to make room.
pub const SESSION_CACHE_EVICTED: &str = "tlsbench_session_cache_evicted_total";
/// Session-cache lookups, labelled `result` (`hit`, `miss`).
pub const SESSION_CACHE_LOOKUPS: &str = "tlsbench_session_cache_lookups_total";

/// The admin endpoint's path of the JSON snapshot.
pub const JSON_PATH: &str = "/metrics.json";

/// The most an admin answer may hold; a snapshot is a few kilobytes.
const MAX_ANSWER: u64 = 1024 * 1024;
/// How long a scrape may take to connect, and each read or write after that.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the counters could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// Connecting to the admin endpoint, or the exchange with it, failed.
    #[error("{what} {addr}: {source}")]
    Io {
        /// What we were doing.
        what: &'static str,
        /// The admin endpoint.
        addr: SocketAddr,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The admin endpoint answered something other than a 200 with a body.
    #[error("the admin endpoint {addr} answered {answer:?}, not a 200 with the snapshot")]
    Answer {
        /// The admin endpoint.
        addr: SocketAddr,
        /// The status line (or the start of what came back).
        answer: String,
    },
    /// The snapshot does not follow the contract: a missing or unknown field or series, a
    /// value that is not a count. The message names it.
    #[error("the counters snapshot: {0}")]
    Snapshot(#[from] serde_json::Error),
}

impl Snapshot {
    /// The JSON exposition (`/metrics.json`).
    pub fn to_json(&self) -> Result<String, MetricsError> {
        Ok(serde_json::to_string(self)?)
    }

    /// Reads the JSON exposition; every field and series must be there.
    pub fn from_json(text: &str) -> Result<Snapshot, MetricsError> {
        Ok(serde_json::from_str(text)?)
    }

    /// The Prometheus text exposition format (version 0.0.4) at `/metrics`.
    pub fn prometheus(&self) -> String {
        let mut out = String::with_capacity(4096);
        let o = &mut out;
        single(
            o,
            CONNECTIONS_ACCEPTED,
            COUNTER,
            "TCP connections accepted.",
            self.accepted,
        );
        single(
            o,
            CONNECTIONS_CLOSED,
            COUNTER,
            "Connections closed.",
            self.closed,
        );
        single(
            o,
            CONNECTIONS_REFUSED,
            COUNTER,
            "Connections closed at once because --max-connections was reached.",
            self.refused,
        );
        single(
            o,
            ACCEPT_ERRORS,
            COUNTER,
            "accept() failures (EMFILE, ENFILE, ...).",
            self.accept_errors,
        );
        single(
            o,
            CONNECTIONS_ACTIVE,
            GAUGE,
            "Connections open now.",
            self.active(),
        );

        head(
            o,
            HANDSHAKES,
            COUNTER,
            "Completed TLS handshakes by protocol version and kind (handshake_kind(), and resumed_hrr for a resumption after a HelloRetryRequest).",
        );
        for (version, counts) in VERSIONS.iter().zip(&self.handshakes) {
            for (class, n) in HandshakeClass::ALL.iter().zip(counts) {
                let kind = class.as_str();
                let _ = writeln!(
                    o,
                    "{HANDSHAKES}{{version=\"{version}\",kind=\"{kind}\"}} {n}"
                );
            }
        }
        family(
            o,
            HANDSHAKE_FAILURES,
            "Handshakes that did not complete, by cause.",
            "cause",
            FailureCause::ALL.map(|c| (c.as_str(), self.failures_of(c))),
        );
        family(
            o,
            TLS_ERRORS,
            "Connections ended by a TLS error after their handshake, by cause.",
            "cause",
            FailureCause::ALL
                .into_iter()
                .filter(|c| c.is_tls())
                .map(|c| (c.as_str(), self.tls_errors_of(c))),
        );
        family(
            o,
            CLIENT_CERTS,
            "Completed TLS handshakes by client certificate: accepted (verified, or carried by the resumed session) or none.",
            "result",
            ClientCert::ALL.map(|r| (r.as_str(), self.client_certs_of(r))),
        );
        family(
            o,
            CLIENT_AUTH_REFUSALS,
            "Handshakes refused for the client certificate, by cause.",
            "cause",
            RefusalCause::ALL.map(|c| (c.as_str(), self.client_auth_refusals_of(c))),
        );
        family(
            o,
            ALERTS_RECEIVED,
            "Fatal alerts received from clients during handshakes, by alert name.",
            "alert",
            alerts(self),
        );
        family(
            o,
            TIMEOUTS,
            "Connections closed by a timeout, by phase.",
            "phase",
            TimeoutKind::ALL.map(|k| (k.as_str(), self.timeouts_of(k))),
        );
        family(
            o,
            REQUESTS,
            "HTTP responses by status code.",
            "status",
            Status::ALL.map(|s| (s.code(), self.requests_of(s))),
        );
        family(
            o,
            PLAINTEXT_BYTES,
            "Application bytes through TLS, by direction.",
            "direction",
            [("in", self.bytes_in), ("out", self.bytes_out)],
        );
        family(
            o,
            TLS_BYTES,
            "TLS bytes read from and written to client sockets, by direction.",
            "direction",
            DIRECTIONS.iter().zip(self.tls_bytes),
        );
        family(
            o,
            HANDSHAKE_BYTES,
            "TLS bytes of completed handshakes, by direction.",
            "direction",
            DIRECTIONS.iter().zip(self.handshake_bytes),
        );
        family(
            o,
            CERT_COMPRESSED,
            "Completed handshakes that sent the certificate chain compressed, by algorithm.",
            "algorithm",
            Algorithm::ALL.iter().zip(self.cert_compressed),
        );
        family(
            o,
            EARLY_DATA,
            "Completed handshakes by what became of TLS 1.3 early data (0-RTT).",
            "result",
            EarlyData::ALL.map(|r| (r.as_str(), self.early_data[r.index()])),
        );
        let (user, sys) = (self.cpu.user.as_secs_f64(), self.cpu.sys.as_secs_f64());
        family(
            o,
            CPU_SECONDS,
            "Process CPU time by mode.",
            "mode",
            [("user", Seconds(user)), ("system", Seconds(sys))],
        );
        single(
            o,
            PROCESS_CPU_SECONDS,
            COUNTER,
            "Total user and system CPU time spent in seconds.",
            Seconds(self.cpu.total().as_secs_f64()),
        );
        head(o, UPTIME, GAUGE, "Time since the server started.");
        let _ = writeln!(o, "{UPTIME} {:.3}", self.uptime.as_secs_f64());
        single(o, WORKERS, GAUGE, "Worker threads.", self.workers);
        if let Some(c) = &self.session_cache {
            single(
                o,
                SESSION_CACHE_ENTRIES,
                GAUGE,
                "Entries in the stateful session cache now.",
                c.entries,
            );
            single(
                o,
                SESSION_CACHE_CAPACITY,
                GAUGE,
                "The most entries the session cache keeps.",
                c.capacity,
            );
            single(
                o,
                SESSION_CACHE_STORED,
                COUNTER,
                "Sessions stored (TLS 1.2 session ids, TLS 1.3 stateful tickets).",
                c.stored,
            );
            single(
                o,
                SESSION_CACHE_EVICTED,
                COUNTER,
                "Entries evicted unused to make room for new ones.",
                c.evicted,
            );
            family(
                o,
                SESSION_CACHE_LOOKUPS,
                "Session-cache lookups by result.",
                "result",
                [("hit", c.hits), ("miss", c.misses)],
            );
        }
        out
    }
}

/// Prometheus metric types, as `# TYPE` names them.
const COUNTER: &str = "counter";
const GAUGE: &str = "gauge";

/// A family's `# HELP` and `# TYPE` lines.
fn head(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// An unlabelled series: its head and its one value.
fn single(o: &mut String, name: &str, kind: &str, help: &str, value: impl Display) {
    head(o, name, kind, help);
    let _ = writeln!(o, "{name} {value}");
}

/// A counter family with one label: its head and a series per (label value, count).
fn family<L: Display, V: Display>(
    o: &mut String,
    name: &str,
    help: &str,
    label: &str,
    series: impl IntoIterator<Item = (L, V)>,
) {
    head(o, name, COUNTER, help);
    for (value_of_label, n) in series {
        let _ = writeln!(o, "{name}{{{label}=\"{value_of_label}\"}} {n}");
    }
}

/// CPU seconds as the exposition writes them: to the microsecond the clock reads.
struct Seconds(f64);

impl Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.6}", self.0)
    }
}

/// Reads the counters from the admin endpoint at `admin` (`GET /metrics.json`).
pub fn scrape(admin: SocketAddr) -> Result<Snapshot, MetricsError> {
    let io = |what| {
        move |source| MetricsError::Io {
            what,
            addr: admin,
            source,
        }
    };
    let mut s = TcpStream::connect_timeout(&admin, SCRAPE_TIMEOUT).map_err(io("connecting to"))?;
    s.set_read_timeout(Some(SCRAPE_TIMEOUT))
        .map_err(io("setting a timeout on"))?;
    s.set_write_timeout(Some(SCRAPE_TIMEOUT))
        .map_err(io("setting a timeout on"))?;
    write!(
        s,
        "GET {JSON_PATH} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"
    )
    .map_err(io("asking"))?;
    let mut answer = String::new();
    s.take(MAX_ANSWER)
        .read_to_string(&mut answer)
        .map_err(io("reading the answer of"))?;
    match answer.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200 ") => Snapshot::from_json(body),
        _ => Err(MetricsError::Answer {
            addr: admin,
            answer: answer
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(200)
                .collect(),
        }),
    }
}

/// The alerts received, by name, only those received at least once.
fn alerts(s: &Snapshot) -> impl Iterator<Item = (String, u64)> + '_ {
    (0..=u8::MAX)
        .zip(&s.alerts_received)
        .filter(|(_, n)| **n > 0)
        .map(|(code, n)| (common::tls::alert_name(AlertDescription::from(code)), *n))
}

/// The JSON form of a [`Snapshot`]: labelled families as maps keyed by label value, so a
/// reader never depends on an array order.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    workers: usize,
    uptime: Duration,
    cpu: WireCpu,
    cpu_at_start: WireCpu,
    accepted: u64,
    closed: u64,
    refused: u64,
    accept_errors: u64,
    /// version → kind → count.
    handshakes: BTreeMap<String, BTreeMap<String, u64>>,
    failures: BTreeMap<String, u64>,
    /// Every cause, the non-TLS ones included (always 0), so the snapshot round-trips.
    tls_errors: BTreeMap<String, u64>,
    alerts_received: BTreeMap<String, u64>,
    timeouts: BTreeMap<String, u64>,
    requests: BTreeMap<String, u64>,
    bytes_in: u64,
    bytes_out: u64,
    /// result → count.
    client_certs: BTreeMap<String, u64>,
    /// cause → count.
    client_auth_refusals: BTreeMap<String, u64>,
    /// direction → count.
    tls_bytes: BTreeMap<String, u64>,
    /// direction → count.
    handshake_bytes: BTreeMap<String, u64>,
    /// algorithm → count.
    cert_compressed: BTreeMap<String, u64>,
    /// result → count.
    early_data: BTreeMap<String, u64>,
    /// `null` without a session cache; required either way, so a reader never takes a
    /// missing field for "no cache".
    #[serde(deserialize_with = "Option::deserialize")]
    session_cache: Option<CacheCounts>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireCpu {
    user: Duration,
    sys: Duration,
}

impl From<CpuTime> for WireCpu {
    fn from(c: CpuTime) -> Self {
        WireCpu {
            user: c.user,
            sys: c.sys,
        }
    }
}

impl From<WireCpu> for CpuTime {
    fn from(c: WireCpu) -> Self {
        CpuTime {
            user: c.user,
            sys: c.sys,
        }
    }
}

fn labelled<L: Copy, K: ToString>(
    labels: &[L],
    key: impl Fn(L) -> K,
    values: &[u64],
) -> BTreeMap<String, u64> {
    labels
        .iter()
        .zip(values)
        .map(|(l, n)| (key(*l).to_string(), *n))
        .collect()
}

/// Takes every label of `labels` out of `series` in order; a missing or an unknown label is
/// an error naming the series as Prometheus does. `open` is the series name up to its label:
/// `name{` or `name{other="x",`.
fn unlabelled<const N: usize, L: Copy, K: ToString>(
    open: &str,
    label: &str,
    labels: &[L; N],
    key: impl Fn(L) -> K,
    mut series: BTreeMap<String, u64>,
) -> Result<[u64; N], String> {
    let mut out = [0; N];
    for (dst, l) in out.iter_mut().zip(labels) {
        let k = key(*l).to_string();
        *dst = series
            .remove(&k)
            .ok_or_else(|| format!("missing series {open}{label}=\"{k}\"}}"))?;
    }
    match series.into_keys().next() {
        Some(k) => Err(format!("unknown series {open}{label}=\"{k}\"}}")),
        None => Ok(out),
    }
}

impl From<&Snapshot> for Wire {
    fn from(s: &Snapshot) -> Self {
        Wire {
            workers: s.workers,
            uptime: s.uptime,
            cpu: s.cpu.into(),
            cpu_at_start: s.cpu_at_start.into(),
            accepted: s.accepted,
            closed: s.closed,
            refused: s.refused,
            accept_errors: s.accept_errors,
            handshakes: VERSIONS
                .iter()
                .zip(&s.handshakes)
                .map(|(v, counts)| {
                    let kinds = labelled(&HandshakeClass::ALL, HandshakeClass::as_str, counts);
                    ((*v).to_owned(), kinds)
                })
                .collect(),
            failures: labelled(&FailureCause::ALL, FailureCause::as_str, &s.failures),
            tls_errors: labelled(&FailureCause::ALL, FailureCause::as_str, &s.tls_errors),
            alerts_received: alerts(s).collect(),
            timeouts: labelled(&TimeoutKind::ALL, TimeoutKind::as_str, &s.timeouts),
            requests: labelled(&Status::ALL, Status::code, &s.requests),
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            client_certs: labelled(&ClientCert::ALL, ClientCert::as_str, &s.client_certs),
            client_auth_refusals: labelled(
                &RefusalCause::ALL,
                RefusalCause::as_str,
                &s.client_auth_refusals,
            ),
            tls_bytes: labelled(&DIRECTIONS, |d| d, &s.tls_bytes),
            handshake_bytes: labelled(&DIRECTIONS, |d| d, &s.handshake_bytes),
            cert_compressed: labelled(&Algorithm::ALL, Algorithm::as_str, &s.cert_compressed),
            early_data: labelled(&EarlyData::ALL, EarlyData::as_str, &s.early_data),
            session_cache: s.session_cache,
        }
    }
}

impl TryFrom<Wire> for Snapshot {
    type Error = String;

    fn try_from(w: Wire) -> Result<Snapshot, String> {
        let mut by_version = w.handshakes;
        let mut handshakes = [[0; HandshakeClass::ALL.len()]; VERSIONS.len()];
        for (dst, version) in handshakes.iter_mut().zip(VERSIONS) {
            let kinds = by_version
                .remove(version)
                .ok_or_else(|| format!("missing series {HANDSHAKES}{{version=\"{version}\"}}"))?;
            *dst = unlabelled(
                &format!("{HANDSHAKES}{{version=\"{version}\","),
                "kind",
                &HandshakeClass::ALL,
                HandshakeClass::as_str,
                kinds,
            )?;
        }
        if let Some(v) = by_version.into_keys().next() {
            return Err(format!("unknown series {HANDSHAKES}{{version=\"{v}\"}}"));
        }
        let mut alerts_received = [0; 256];
        for (name, n) in w.alerts_received {
            let code = (0..=u8::MAX)
                .find(|c| common::tls::alert_name(AlertDescription::from(*c)) == name)
                .ok_or_else(|| format!("unknown series {ALERTS_RECEIVED}{{alert=\"{name}\"}}"))?;
            alerts_received[usize::from(code)] = n;
        }
        let causes = &FailureCause::ALL;
        Ok(Snapshot {
            workers: w.workers,
            uptime: w.uptime,
            cpu: w.cpu.into(),
            cpu_at_start: w.cpu_at_start.into(),
            accepted: w.accepted,
            closed: w.closed,
            refused: w.refused,
            accept_errors: w.accept_errors,
            handshakes,
            failures: unlabelled(
                &format!("{HANDSHAKE_FAILURES}{{"),
                "cause",
                causes,
                FailureCause::as_str,
                w.failures,
            )?,
            tls_errors: unlabelled(
                &format!("{TLS_ERRORS}{{"),
                "cause",
                causes,
                FailureCause::as_str,
                w.tls_errors,
            )?,
            alerts_received,
            timeouts: unlabelled(
                &format!("{TIMEOUTS}{{"),
                "phase",
                &TimeoutKind::ALL,
                TimeoutKind::as_str,
                w.timeouts,
            )?,
            requests: unlabelled(
                &format!("{REQUESTS}{{"),
                "status",
                &Status::ALL,
                Status::code,
                w.requests,
            )?,
            bytes_in: w.bytes_in,
            bytes_out: w.bytes_out,
            client_certs: unlabelled(
                &format!("{CLIENT_CERTS}{{"),
                "result",
                &ClientCert::ALL,
                ClientCert::as_str,
                w.client_certs,
            )?,
            client_auth_refusals: unlabelled(
                &format!("{CLIENT_AUTH_REFUSALS}{{"),
                "cause",
                &RefusalCause::ALL,
                RefusalCause::as_str,
                w.client_auth_refusals,
            )?,
            tls_bytes: unlabelled(
                &format!("{TLS_BYTES}{{"),
                "direction",
                &DIRECTIONS,
                |d| d,
                w.tls_bytes,
            )?,
            handshake_bytes: unlabelled(
                &format!("{HANDSHAKE_BYTES}{{"),
                "direction",
                &DIRECTIONS,
                |d| d,
                w.handshake_bytes,
            )?,
            cert_compressed: unlabelled(
                &format!("{CERT_COMPRESSED}{{"),
                "algorithm",
                &Algorithm::ALL,
                Algorithm::as_str,
                w.cert_compressed,
            )?,
            early_data: unlabelled(
                &format!("{EARLY_DATA}{{"),
                "result",
                &EarlyData::ALL,
                EarlyData::as_str,
                w.early_data,
            )?,
            session_cache: w.session_cache,
        })
    }
}

impl Serialize for Snapshot {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Wire::from(self).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Snapshot {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Snapshot, D::Error> {
        Snapshot::try_from(Wire::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
