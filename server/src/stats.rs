//! The server's counters: one block per worker, written only by that worker (so increments
//! are plain loads and stores, no locked instructions, no shared cache lines), merged into a
//! [`Snapshot`] whenever someone reads them. Counts are exact: the `run` matrix divides server
//! CPU time by them.
//!
//! # Layout
//!
//! - this root: one worker's block ([`WorkerStats`]), all of them ([`Stats`]), and their
//!   merge ([`Snapshot`]) with the summary the server prints.
//! - `labels`: what the counters are counted by (handshake class, failure cause, timeout,
//!   early-data result, version, direction): dense indexes and label values.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::cert_compression::Algorithm;
use common::cpu::{self, CpuTime};
use rustls::AlertDescription;

use crate::client_auth::{ClientCert, RefusalCause};
use crate::http::Status;
use crate::session_cache::{CacheCounts, Gauge};

mod labels;
pub use labels::{DIRECTIONS, EarlyData, FailureCause, HandshakeClass, TimeoutKind, VERSIONS};

/// One worker's counters. Only the owning worker writes them.
pub struct WorkerStats {
    accepted: AtomicU64,
    closed: AtomicU64,
    refused: AtomicU64,
    accept_errors: AtomicU64,
    handshakes: [[AtomicU64; HandshakeClass::ALL.len()]; 2],
    failures: [AtomicU64; FailureCause::ALL.len()],
    tls_errors: [AtomicU64; FailureCause::ALL.len()],
    alerts_received: [AtomicU64; 256],
    timeouts: [AtomicU64; TimeoutKind::ALL.len()],
    requests: [AtomicU64; Status::ALL.len()],
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    client_certs: [AtomicU64; ClientCert::ALL.len()],
    client_auth_refusals: [AtomicU64; RefusalCause::ALL.len()],
    tls_bytes: [AtomicU64; 2],
    handshake_bytes: [AtomicU64; 2],
    cert_compressed: [AtomicU64; Algorithm::ALL.len()],
    early_data: [AtomicU64; EarlyData::ALL.len()],
}

impl Default for WorkerStats {
    fn default() -> Self {
        WorkerStats {
            accepted: AtomicU64::new(0),
            closed: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            accept_errors: AtomicU64::new(0),
            handshakes: Default::default(),
            failures: Default::default(),
            tls_errors: Default::default(),
            alerts_received: [const { AtomicU64::new(0) }; 256],
            timeouts: Default::default(),
            requests: Default::default(),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            client_certs: Default::default(),
            client_auth_refusals: Default::default(),
            tls_bytes: Default::default(),
            handshake_bytes: Default::default(),
            cert_compressed: Default::default(),
            early_data: Default::default(),
        }
    }
}

/// Single-writer increment: a load and a store, no read-modify-write bus lock.
#[inline]
fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

impl WorkerStats {
    /// A connection was accepted.
    pub fn accepted(&self) {
        bump(&self.accepted, 1);
    }
    /// A connection was closed (for any reason, counted once).
    pub fn closed(&self) {
        bump(&self.closed, 1);
    }
    /// A connection was accepted and closed at once because of `--max-connections`.
    pub fn refused(&self) {
        bump(&self.refused, 1);
    }
    /// `accept` failed with something other than WouldBlock (EMFILE, ENFILE, ...).
    pub fn accept_error(&self) {
        bump(&self.accept_errors, 1);
    }
    /// A handshake completed.
    pub fn handshake(&self, version: Option<rustls::ProtocolVersion>, class: HandshakeClass) {
        let v = match version {
            Some(rustls::ProtocolVersion::TLSv1_2) => 0,
            _ => 1,
        };
        bump(&self.handshakes[v][class.index()], 1);
    }
    /// A TLS handshake completed carrying (or not) a client certificate.
    pub fn client_cert(&self, result: ClientCert) {
        bump(&self.client_certs[result.index()], 1);
    }
    /// A client's certificate was refused (the handshake failure is counted apart, by its
    /// [`FailureCause`], as before client auth existed).
    pub fn client_auth_refused(&self, cause: RefusalCause) {
        bump(&self.client_auth_refusals[cause.index()], 1);
    }
    /// A handshake failed.
    pub fn handshake_failed(&self, cause: FailureCause, alert: Option<AlertDescription>) {
        bump(&self.failures[cause.index()], 1);
        if let Some(a) = alert {
            bump(&self.alerts_received[usize::from(u8::from(a))], 1);
        }
    }
    /// A rustls error (the peer broke the protocol, e.g. a KeyUpdate flood, or sent a fatal
    /// alert) ended a connection whose handshake had completed. Not a handshake failure, but
    /// without this count such a close would show nowhere.
    pub fn tls_error(&self, cause: FailureCause) {
        bump(&self.tls_errors[cause.index()], 1);
    }
    /// A timeout closed a connection.
    pub fn timeout(&self, kind: TimeoutKind) {
        bump(&self.timeouts[kind as usize], 1);
    }
    /// A response with `status` was started.
    pub fn request(&self, status: Status) {
        bump(&self.requests[status.index()], 1);
    }
    /// Plaintext bytes received from clients.
    pub fn bytes_in(&self, n: u64) {
        bump(&self.bytes_in, n);
    }
    /// Plaintext bytes handed to TLS for clients.
    pub fn bytes_out(&self, n: u64) {
        bump(&self.bytes_out, n);
    }
    /// A completed handshake sent our chain compressed with `algorithm`.
    pub fn cert_compressed(&self, algorithm: Algorithm) {
        bump(&self.cert_compressed[algorithm.index()], 1);
    }
    /// A completed handshake's early data (0-RTT): offered by the client, then accepted or
    /// rejected by us.
    pub fn early_data(&self, result: EarlyData) {
        bump(&self.early_data[result.index()], 1);
    }
    /// TLS bytes read from a client's socket.
    pub fn tls_in(&self, n: u64) {
        bump(&self.tls_bytes[0], n);
    }
    /// TLS bytes written to a client's socket.
    pub fn tls_out(&self, n: u64) {
        bump(&self.tls_bytes[1], n);
    }
    /// The TLS bytes a completed handshake took each way (see `conn::wire` for where its
    /// share of the stream ends).
    pub fn handshake_bytes(&self, bytes_in: u64, bytes_out: u64) {
        bump(&self.handshake_bytes[0], bytes_in);
        bump(&self.handshake_bytes[1], bytes_out);
    }
}

/// The counters of every worker, readable from any thread.
pub struct Stats {
    workers: Vec<Arc<WorkerStats>>,
    started: Instant,
    /// Process CPU time when the server started, so the summary excludes start-up work
    /// (certificate generation, config building).
    cpu_at_start: CpuTime,
    /// The stateful session cache's gauge, once attached (servers without a cache have none).
    session_cache: OnceLock<Arc<Gauge>>,
}

impl Stats {
    /// Counters for `n` workers.
    pub fn new(n: usize) -> Self {
        Stats {
            workers: (0..n).map(|_| Arc::new(WorkerStats::default())).collect(),
            started: Instant::now(),
            cpu_at_start: cpu::process(),
            session_cache: OnceLock::new(),
        }
    }

    /// Reports the session cache's occupancy and counts from now on
    /// ([`crate::config::ServerTls::session_cache`]). A second gauge is refused: one server
    /// serves one config.
    pub(crate) fn attach_session_cache(&self, gauge: Arc<Gauge>) -> Result<(), crate::ServerError> {
        self.session_cache.set(gauge).map_err(|_| {
            crate::ServerError::Config("a session cache gauge is already attached".into())
        })
    }

    /// Worker `i`'s block.
    pub fn worker(&self, i: usize) -> Option<Arc<WorkerStats>> {
        self.workers.get(i).cloned()
    }

    /// Merges every worker's counters and reads the process CPU time.
    pub fn snapshot(&self) -> Snapshot {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut s = Snapshot {
            workers: self.workers.len(),
            uptime: self.started.elapsed(),
            cpu: cpu::process(),
            cpu_at_start: self.cpu_at_start,
            session_cache: self.session_cache.get().map(|g| g.counts()),
            ..Snapshot::default()
        };
        for w in &self.workers {
            s.accepted += load(&w.accepted);
            s.closed += load(&w.closed);
            s.refused += load(&w.refused);
            s.accept_errors += load(&w.accept_errors);
            for (dst, src) in s.handshakes.iter_mut().zip(&w.handshakes) {
                for (dst, src) in dst.iter_mut().zip(src) {
                    *dst += load(src);
                }
            }
            for (dst, src) in s.failures.iter_mut().zip(&w.failures) {
                *dst += load(src);
            }
            for (dst, src) in s.tls_errors.iter_mut().zip(&w.tls_errors) {
                *dst += load(src);
            }
            for (dst, src) in s.alerts_received.iter_mut().zip(&w.alerts_received) {
                *dst += load(src);
            }
            for (dst, src) in s.timeouts.iter_mut().zip(&w.timeouts) {
                *dst += load(src);
            }
            for (dst, src) in s.requests.iter_mut().zip(&w.requests) {
                *dst += load(src);
            }
            s.bytes_in += load(&w.bytes_in);
            s.bytes_out += load(&w.bytes_out);
            for (dst, src) in s.client_certs.iter_mut().zip(&w.client_certs) {
                *dst += load(src);
            }
            for (dst, src) in s
                .client_auth_refusals
                .iter_mut()
                .zip(&w.client_auth_refusals)
            {
                *dst += load(src);
            }
            for (dst, src) in s.tls_bytes.iter_mut().zip(&w.tls_bytes) {
                *dst += load(src);
            }
            for (dst, src) in s.handshake_bytes.iter_mut().zip(&w.handshake_bytes) {
                *dst += load(src);
            }
            for (dst, src) in s.cert_compressed.iter_mut().zip(&w.cert_compressed) {
                *dst += load(src);
            }
            for (dst, src) in s.early_data.iter_mut().zip(&w.early_data) {
                *dst += load(src);
            }
        }
        s
    }
}

/// Merged counters at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Worker threads.
    pub workers: usize,
    /// Time since the server started.
    pub uptime: Duration,
    /// Process CPU time (all threads) when the snapshot was taken.
    pub cpu: CpuTime,
    /// Process CPU time when the server started.
    pub cpu_at_start: CpuTime,
    /// Connections accepted (refused ones included).
    pub accepted: u64,
    /// Connections closed (refused ones included).
    pub closed: u64,
    /// Connections refused by `--max-connections`.
    pub refused: u64,
    /// `accept` errors other than WouldBlock (EMFILE, ENFILE, ...).
    pub accept_errors: u64,
    /// Completed handshakes by version ([`VERSIONS`]) × [`HandshakeClass`] order.
    pub handshakes: [[u64; HandshakeClass::ALL.len()]; 2],
    /// Failed handshakes by [`FailureCause`] order.
    pub failures: [u64; FailureCause::ALL.len()],
    /// Established connections ended by a rustls error, by [`FailureCause`] order (only
    /// the causes where [`FailureCause::is_tls`] holds occur).
    pub tls_errors: [u64; FailureCause::ALL.len()],
    /// Fatal alerts received during handshakes, by alert code.
    pub alerts_received: [u64; 256],
    /// Connections closed by a timeout, by [`TimeoutKind`] order.
    pub timeouts: [u64; TimeoutKind::ALL.len()],
    /// Responses by [`Status::ALL`] order.
    pub requests: [u64; Status::ALL.len()],
    /// Plaintext bytes received.
    pub bytes_in: u64,
    /// Plaintext bytes sent.
    pub bytes_out: u64,
    /// Completed TLS handshakes by [`ClientCert`] order (accepted, none).
    pub client_certs: [u64; ClientCert::ALL.len()],
    /// Client certificates refused, by [`RefusalCause`] order.
    pub client_auth_refusals: [u64; RefusalCause::ALL.len()],
    /// TLS bytes through the sockets, by [`DIRECTIONS`] order (every byte read or written,
    /// handshakes, records and alerts alike).
    pub tls_bytes: [u64; 2],
    /// The TLS bytes of completed handshakes, by [`DIRECTIONS`] order (failed ones are in
    /// [`Snapshot::tls_bytes`] only).
    pub handshake_bytes: [u64; 2],
    /// Completed handshakes that sent the chain compressed, by
    /// [`Algorithm::ALL`] order.
    pub cert_compressed: [u64; Algorithm::ALL.len()],
    /// Completed handshakes by what became of 0-RTT early data, by [`EarlyData::ALL`] order.
    pub early_data: [u64; EarlyData::ALL.len()],
    /// The stateful session cache (`None`: the server has none, or did not attach it).
    pub session_cache: Option<CacheCounts>,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot {
            workers: 0,
            uptime: Duration::ZERO,
            cpu: CpuTime::default(),
            cpu_at_start: CpuTime::default(),
            accepted: 0,
            closed: 0,
            refused: 0,
            accept_errors: 0,
            handshakes: [[0; HandshakeClass::ALL.len()]; 2],
            failures: [0; FailureCause::ALL.len()],
            tls_errors: [0; FailureCause::ALL.len()],
            alerts_received: [0; 256],
            timeouts: [0; TimeoutKind::ALL.len()],
            requests: [0; Status::ALL.len()],
            bytes_in: 0,
            bytes_out: 0,
            client_certs: [0; ClientCert::ALL.len()],
            client_auth_refusals: [0; RefusalCause::ALL.len()],
            tls_bytes: [0; 2],
            handshake_bytes: [0; 2],
            cert_compressed: [0; Algorithm::ALL.len()],
            early_data: [0; EarlyData::ALL.len()],
            session_cache: None,
        }
    }
}

impl Snapshot {
    /// Connections open now.
    pub fn active(&self) -> u64 {
        self.accepted.saturating_sub(self.closed)
    }

    /// Completed handshakes of one version ("1.2"/"1.3") and kind (a
    /// [`HandshakeClass::as_str`]: "full", "resumed", "full_hrr", "resumed_hrr").
    ///
    /// # Panics
    /// On a version or kind that is not one of those, naming it: tests spell these labels,
    /// and a misspelt one must not read as zero handshakes.
    pub fn handshakes_of(&self, version: &str, kind: &str) -> u64 {
        let v = VERSIONS.iter().position(|x| *x == version);
        let k = HandshakeClass::ALL.iter().position(|c| c.as_str() == kind);
        match (v, k) {
            (Some(v), Some(k)) => self.handshakes[v][k],
            (None, _) => panic!("no TLS version {version:?} is counted (one of {VERSIONS:?})"),
            (_, None) => panic!("no handshake kind {kind:?} is counted"),
        }
    }

    /// All completed handshakes.
    pub fn handshakes_total(&self) -> u64 {
        self.handshakes.iter().flatten().sum()
    }

    /// Failed handshakes with this cause.
    pub fn failures_of(&self, cause: FailureCause) -> u64 {
        self.failures[cause.index()]
    }

    /// All failed handshakes.
    pub fn failures_total(&self) -> u64 {
        self.failures.iter().sum()
    }

    /// Established connections ended by a rustls error with this cause.
    pub fn tls_errors_of(&self, cause: FailureCause) -> u64 {
        self.tls_errors[cause.index()]
    }

    /// All established connections ended by a rustls error.
    pub fn tls_errors_total(&self) -> u64 {
        self.tls_errors.iter().sum()
    }

    /// Completed TLS handshakes with this client-certificate result.
    pub fn client_certs_of(&self, result: ClientCert) -> u64 {
        self.client_certs[result.index()]
    }

    /// Client certificates refused for this cause.
    pub fn client_auth_refusals_of(&self, cause: RefusalCause) -> u64 {
        self.client_auth_refusals[cause.index()]
    }

    /// Completed handshakes whose early data had this result.
    pub fn early_data_of(&self, result: EarlyData) -> u64 {
        self.early_data[result.index()]
    }

    /// Responses with this status.
    pub fn requests_of(&self, status: Status) -> u64 {
        self.requests[status.index()]
    }

    /// All responses.
    pub fn requests_total(&self) -> u64 {
        self.requests.iter().sum()
    }

    /// Connections closed by this timeout.
    pub fn timeouts_of(&self, kind: TimeoutKind) -> u64 {
        self.timeouts[kind as usize]
    }

    /// The human summary printed on shutdown.
    pub fn summary(&self) -> String {
        let mut o = String::new();
        let secs = self.uptime.as_secs_f64();
        let _ = writeln!(
            o,
            "tlsbench server summary ({} workers, up {secs:.1} s)",
            self.workers
        );
        let _ = writeln!(
            o,
            "  connections: {} accepted, {} closed, {} refused, {} accept errors",
            self.accepted, self.closed, self.refused, self.accept_errors
        );
        for (version, h) in VERSIONS.iter().zip(&self.handshakes) {
            let parts: Vec<String> = HandshakeClass::ALL
                .iter()
                .map(|c| format!("{} {}", h[c.index()], c.describe()))
                .collect();
            let _ = writeln!(o, "  TLS {version} handshakes: {}", parts.join(", "));
        }
        let failures = with_parts(
            self.failures_total(),
            FailureCause::ALL
                .iter()
                .map(|c| (self.failures_of(*c), c.as_str())),
        );
        let _ = writeln!(o, "  handshake failures: {failures}");
        let tls_errors = with_parts(
            self.tls_errors_total(),
            FailureCause::ALL
                .iter()
                .map(|c| (self.tls_errors_of(*c), c.as_str())),
        );
        let _ = writeln!(o, "  TLS errors after the handshake: {tls_errors}");
        let refusals: u64 = self.client_auth_refusals.iter().sum();
        let refusals = with_parts(
            refusals,
            RefusalCause::ALL
                .iter()
                .map(|c| (self.client_auth_refusals_of(*c), c.as_str())),
        );
        let _ = writeln!(
            o,
            "  client certificates: {} accepted, {} none; refused {refusals}",
            self.client_certs_of(ClientCert::Accepted),
            self.client_certs_of(ClientCert::None)
        );
        let requests = with_parts(
            self.requests_total(),
            Status::ALL
                .iter()
                .map(|s| (self.requests_of(*s), format!("× {}", s.code()))),
        );
        let _ = writeln!(o, "  requests: {requests}");
        let _ = writeln!(
            o,
            "  plaintext: {} bytes in, {} bytes out",
            self.bytes_in, self.bytes_out
        );
        if self.cert_compressed.iter().any(|n| *n > 0) {
            let parts: Vec<String> = Algorithm::ALL
                .iter()
                .zip(self.cert_compressed)
                .map(|(a, n)| format!("{n} {a}"))
                .collect();
            let _ = writeln!(o, "  certificates sent compressed: {}", parts.join(", "));
        }
        if self.early_data[EarlyData::Offered.index()] > 0 {
            let parts: Vec<String> = EarlyData::ALL
                .iter()
                .zip(self.early_data)
                .map(|(r, n)| format!("{n} {}", r.as_str()))
                .collect();
            let _ = writeln!(o, "  early data (0-RTT): {}", parts.join(", "));
        }
        let [tls_in, tls_out] = self.tls_bytes;
        let [hs_in, hs_out] = self.handshake_bytes;
        let _ = writeln!(
            o,
            "  TLS on the wire: {tls_in} bytes in, {tls_out} bytes out; of which handshakes {hs_in} in, {hs_out} out"
        );
        if let Some(c) = &self.session_cache {
            let _ = writeln!(
                o,
                "  session cache: {} of {} entries; {} stored, {} evicted unused; lookups {} hit, {} missed",
                c.entries, c.capacity, c.stored, c.evicted, c.hits, c.misses
            );
        }
        let hs = self.handshakes_total();
        let cpu = self.cpu.since(&self.cpu_at_start);
        let cpu_us = cpu.total().as_secs_f64() * 1e6;
        let _ = write!(
            o,
            "  CPU since start: {:.3} s user, {:.3} s system",
            cpu.user.as_secs_f64(),
            cpu.sys.as_secs_f64()
        );
        if hs > 0 {
            // Whole-run CPU includes requests and idle polling; `tlsbench run` measures deltas.
            let _ = write!(
                o,
                " ({:.1} µs per handshake, whole run)",
                cpu_us / hs as f64
            );
        }
        o.push('\n');
        o
    }
}

/// `"N"`, or `"N (n1 label1, n2 label2)"` listing the parts that are not zero.
fn with_parts<L: std::fmt::Display>(total: u64, parts: impl Iterator<Item = (u64, L)>) -> String {
    let parts: Vec<String> = parts
        .filter(|(n, _)| *n > 0)
        .map(|(n, label)| format!("{n} {label}"))
        .collect();
    if parts.is_empty() {
        total.to_string()
    } else {
        format!("{total} ({})", parts.join(", "))
    }
}

#[cfg(test)]
mod tests;
