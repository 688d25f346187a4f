//! What a worker measures: HdrHistograms (µs, 3 significant digits) and counters, merged
//! once at the end (and per report interval for the live view). Memory does not grow with
//! the number of requests: nothing is kept per request.

use std::time::Duration;

use common::cert_compression::Algorithm;
use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency recorded exactly: one hour, in µs; longer values saturate.
const MAX_US: u64 = 3_600_000_000;

/// A latency histogram in µs.
pub type Hist = Histogram<u64>;

/// A fresh µs histogram with 3 significant digits.
#[allow(clippy::expect_used)] // Constant bounds, valid for hdrhistogram; nothing external.
pub fn new_hist() -> Hist {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("1 µs .. 1 h at 3 digits is a valid range")
}

/// Records `d` in µs.
pub fn record(h: &mut Hist, d: Duration) {
    h.saturating_record(d.as_micros().min(u128::from(MAX_US)) as u64);
}

/// Highest byte count recorded exactly (a handshake's bytes one way): 16 MiB, far beyond any
/// certificate chain a server sends.
const MAX_BYTES: u64 = 16 << 20;

/// A fresh histogram of byte counts with 3 significant digits.
#[allow(clippy::expect_used)] // Constant bounds, valid for hdrhistogram; nothing external.
pub fn new_bytes_hist() -> Hist {
    Histogram::new_with_bounds(1, MAX_BYTES, 3).expect("1 B .. 16 MiB at 3 digits is a valid range")
}

/// Records a byte count.
pub fn record_bytes(h: &mut Hist, n: u64) {
    h.saturating_record(n.min(MAX_BYTES));
}

/// Why an operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The TCP connection was refused.
    Refused,
    /// The connection was reset (or broke) by the peer.
    Reset,
    /// The operation exceeded `--timeout`.
    Timeout,
    /// The server sent a TLS alert (the name is counted in `alerts`).
    TlsAlert,
    /// The server's certificate failed verification.
    CertVerify,
    /// Any other TLS error (decode errors, protocol violations).
    Tls,
    /// The response status was not 2xx (the code is counted in `statuses`).
    HttpStatus,
    /// The connection ended before the response did (also a Content-Length shortfall).
    ShortBody,
    /// The response could not be parsed.
    BadResponse,
    /// Another socket error (e.g. no route, out of descriptors).
    Io,
}

impl FailureKind {
    /// Every kind, in report order.
    pub const ALL: [FailureKind; 10] = [
        FailureKind::Refused,
        FailureKind::Reset,
        FailureKind::Timeout,
        FailureKind::TlsAlert,
        FailureKind::CertVerify,
        FailureKind::Tls,
        FailureKind::HttpStatus,
        FailureKind::ShortBody,
        FailureKind::BadResponse,
        FailureKind::Io,
    ];

    /// The name used in reports and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Refused => "refused",
            FailureKind::Reset => "reset",
            FailureKind::Timeout => "timeout",
            FailureKind::TlsAlert => "tls_alert",
            FailureKind::CertVerify => "cert_verify",
            FailureKind::Tls => "tls",
            FailureKind::HttpStatus => "http_status",
            FailureKind::ShortBody => "short_body",
            FailureKind::BadResponse => "bad_response",
            FailureKind::Io => "io",
        }
    }

    /// Classifies a socket error.
    pub fn of_io(e: &std::io::Error) -> FailureKind {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::ConnectionRefused => FailureKind::Refused,
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => FailureKind::Reset,
            K::UnexpectedEof => FailureKind::ShortBody,
            K::TimedOut => FailureKind::Timeout,
            _ => FailureKind::Io,
        }
    }
}

/// How a handshake went, as the generator counts it.
///
/// rustls's `handshake_kind()` says `Resumed` for a resumption that followed a
/// HelloRetryRequest (it overwrites `FullWithHelloRetryRequest` when the PSK is accepted), so
/// the HRR is noted while the handshake runs (after each `process_new_packets`, the kind is
/// `FullWithHelloRetryRequest` from the HRR until the server's second hello) and combined here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeClass {
    /// A full handshake, first ClientHello accepted.
    Full,
    /// A full handshake after a HelloRetryRequest.
    FullHrr,
    /// A resumed handshake, first ClientHello accepted.
    Resumed,
    /// A resumed handshake after a HelloRetryRequest.
    ResumedHrr,
}

impl HandshakeClass {
    /// Classifies a finished handshake: rustls's final kind, and whether a HelloRetryRequest
    /// was seen on the way.
    pub fn of(kind: rustls::HandshakeKind, saw_hrr: bool) -> HandshakeClass {
        use rustls::HandshakeKind as K;
        match (kind, saw_hrr) {
            (K::Full, false) => HandshakeClass::Full,
            // rustls keeps FullWithHelloRetryRequest once set; an HRR seen is an HRR had.
            (K::Full, true) | (K::FullWithHelloRetryRequest, _) => HandshakeClass::FullHrr,
            (K::Resumed, false) => HandshakeClass::Resumed,
            (K::Resumed, true) => HandshakeClass::ResumedHrr,
        }
    }

    /// The name in reports, JSON and the server's counters.
    pub fn as_str(self) -> &'static str {
        match self {
            HandshakeClass::Full => "full",
            HandshakeClass::FullHrr => "full_hrr",
            HandshakeClass::Resumed => "resumed",
            HandshakeClass::ResumedHrr => "resumed_hrr",
        }
    }
}

/// Certificates received compressed, by algorithm (every algorithm named, 0 included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CertCompressed {
    /// Decompressed with brotli.
    pub brotli: u64,
    /// Decompressed with zlib.
    pub zlib: u64,
}

impl CertCompressed {
    /// Adds what [`common::cert_compression::take_decompressed`] returned.
    pub fn add(&mut self, decompressed: [u64; Algorithm::ALL.len()]) {
        for (a, n) in Algorithm::ALL.into_iter().zip(decompressed) {
            match a {
                Algorithm::Brotli => self.brotli += n,
                Algorithm::Zlib => self.zlib += n,
            }
        }
    }

    /// All of them.
    pub fn total(&self) -> u64 {
        self.brotli + self.zlib
    }
}

/// What became of the requests sent as TLS 1.3 early data, one per connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct EarlyDataCounts {
    /// Connections that sent their first request as early data.
    pub offered: u64,
    /// Of those, how many the server accepted (rustls's `is_early_data_accepted`).
    pub accepted: u64,
    /// Of those, how many it rejected: the request went again after the handshake.
    pub rejected: u64,
}

/// The load generator's counters of one worker (or of all, merged): operations, handshakes by
/// kind, errors by [`FailureKind`], bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct LoadCounters {
    /// TCP connections attempted.
    pub connections: u64,
    /// Full handshakes without a HelloRetryRequest.
    pub full: u64,
    /// Resumed handshakes without a HelloRetryRequest.
    pub resumed: u64,
    /// Full handshakes that needed a HelloRetryRequest.
    pub full_hrr: u64,
    /// Resumed handshakes that needed a HelloRetryRequest (an extra round trip and a second
    /// key share: not the cheap resumption `resumed` measures).
    pub resumed_hrr: u64,
    /// Handshakes by negotiated version: TLS 1.2.
    pub tls12: u64,
    /// Handshakes by negotiated version: TLS 1.3.
    pub tls13: u64,
    /// Connections that offered a saved session.
    pub offered: u64,
    /// Of those, how many resumed.
    pub offered_resumed: u64,
    /// Handshakes where the server asked for a client certificate (a CertificateRequest).
    pub cert_requested: u64,
    /// Of those, how many we answered with a certificate (`--cert`).
    pub cert_sent: u64,
    /// Connections that were to offer a session but found none saved (the server issued too
    /// few tickets or sessions for the concurrency, or none at all).
    pub offer_missed: u64,
    /// Measured operations started (each ends as a request or an error, or is abandoned in
    /// flight at the deadline).
    pub started: u64,
    /// Open loop: measured operations that were due before the run ended and never started
    /// (every connection was busy); always 0 in closed loop, where nothing is due.
    pub not_started: u64,
    /// Requests answered with 2xx and a complete body.
    pub requests: u64,
    /// Response body bytes received (download).
    pub body_bytes_in: u64,
    /// Request body bytes sent (upload).
    pub body_bytes_out: u64,
    /// TLS bytes read from the sockets (everything: handshakes, records, alerts).
    pub tls_bytes_in: u64,
    /// TLS bytes written to the sockets.
    pub tls_bytes_out: u64,
    /// TLS bytes of completed handshakes, server to client (the server's flights up to its
    /// Finished; TLS 1.3 session tickets come after).
    pub handshake_bytes_in: u64,
    /// TLS bytes of completed handshakes, client to server (up to the client's Finished).
    pub handshake_bytes_out: u64,
    /// Completed handshakes whose certificate chain came compressed (RFC 8879), by algorithm.
    pub cert_compressed: CertCompressed,
    /// Requests sent as 0-RTT early data (`--early-data`), per connection.
    pub early_data: EarlyDataCounts,
    /// Errors by kind (index: [`FailureKind::ALL`] order); reported by name in `results.errors`.
    #[serde(skip)]
    pub errors: [u64; FailureKind::ALL.len()],
    /// TLS alerts received, by alert name.
    pub alerts: std::collections::BTreeMap<String, u64>,
    /// Non-2xx statuses, by code.
    pub statuses: std::collections::BTreeMap<u16, u64>,
}

impl LoadCounters {
    /// Adds `o` into `self`.
    pub fn merge(&mut self, o: &LoadCounters) {
        self.connections += o.connections;
        self.full += o.full;
        self.resumed += o.resumed;
        self.full_hrr += o.full_hrr;
        self.resumed_hrr += o.resumed_hrr;
        self.tls12 += o.tls12;
        self.tls13 += o.tls13;
        self.offered += o.offered;
        self.offered_resumed += o.offered_resumed;
        self.offer_missed += o.offer_missed;
        self.cert_requested += o.cert_requested;
        self.cert_sent += o.cert_sent;
        self.started += o.started;
        self.not_started += o.not_started;
        self.requests += o.requests;
        self.body_bytes_in += o.body_bytes_in;
        self.body_bytes_out += o.body_bytes_out;
        self.tls_bytes_in += o.tls_bytes_in;
        self.tls_bytes_out += o.tls_bytes_out;
        self.handshake_bytes_in += o.handshake_bytes_in;
        self.handshake_bytes_out += o.handshake_bytes_out;
        self.cert_compressed.brotli += o.cert_compressed.brotli;
        self.cert_compressed.zlib += o.cert_compressed.zlib;
        self.early_data.offered += o.early_data.offered;
        self.early_data.accepted += o.early_data.accepted;
        self.early_data.rejected += o.early_data.rejected;
        for (a, b) in self.errors.iter_mut().zip(o.errors) {
            *a += b;
        }
        for (k, v) in &o.alerts {
            *self.alerts.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.statuses {
            *self.statuses.entry(*k).or_default() += v;
        }
    }

    /// Completed handshakes of every kind.
    pub fn handshakes(&self) -> u64 {
        self.full + self.resumed + self.full_hrr + self.resumed_hrr
    }

    /// Counts one completed handshake of kind `kind`.
    pub fn handshake(&mut self, kind: HandshakeClass) {
        match kind {
            HandshakeClass::Full => self.full += 1,
            HandshakeClass::FullHrr => self.full_hrr += 1,
            HandshakeClass::Resumed => self.resumed += 1,
            HandshakeClass::ResumedHrr => self.resumed_hrr += 1,
        }
    }

    /// Resumed handshakes of both kinds (with and without a HelloRetryRequest).
    pub fn resumed_any(&self) -> u64 {
        self.resumed + self.resumed_hrr
    }

    /// All errors.
    pub fn errors_total(&self) -> u64 {
        self.errors.iter().sum()
    }

    /// Errors of one kind.
    pub fn errors_of(&self, k: FailureKind) -> u64 {
        self.errors[k as usize]
    }

    /// Counts one error.
    pub fn error(&mut self, k: FailureKind) {
        self.errors[k as usize] += 1;
    }
}

/// Everything one worker (or the whole run) measured.
#[derive(Clone, Debug)]
pub struct Measured {
    /// Operations, handshakes, errors and bytes.
    pub counters: LoadCounters,
    /// TCP connect time.
    pub connect: Hist,
    /// TLS handshake time (from TCP connected to handshake complete).
    pub handshake: Hist,
    /// Time to first byte: request written to first response byte, for requests sent after
    /// the handshake (1-RTT).
    pub ttfb: Hist,
    /// The same for requests the server accepted as 0-RTT early data, from the connect's
    /// completion (the request leaves with the ClientHello) to the first response byte.
    pub ttfb_0rtt: Hist,
    /// Whole operation, from its intended start (corrected for coordinated omission under
    /// `--rate`; with `--new-conn` it includes connect and handshake).
    pub request: Hist,
    /// Whole operation from its actual start (what an uncorrected tool reports).
    pub request_uncorrected: Hist,
    /// TLS bytes of each completed handshake, server to client.
    pub handshake_bytes_in: Hist,
    /// TLS bytes of each completed handshake, client to server.
    pub handshake_bytes_out: Hist,
    /// CPU time of the worker threads over the measured window.
    pub cpu: common::cpu::CpuTime,
    /// The highest share of one core any worker used over the window (0..1).
    pub max_worker_cpu_share: f64,
}

impl Default for Measured {
    fn default() -> Self {
        Measured {
            counters: LoadCounters::default(),
            connect: new_hist(),
            handshake: new_hist(),
            ttfb: new_hist(),
            ttfb_0rtt: new_hist(),
            request: new_hist(),
            request_uncorrected: new_hist(),
            handshake_bytes_in: new_bytes_hist(),
            handshake_bytes_out: new_bytes_hist(),
            cpu: common::cpu::CpuTime::default(),
            max_worker_cpu_share: 0.0,
        }
    }
}

impl Measured {
    /// Adds `o` into `self`.
    pub fn merge(&mut self, o: &Measured) {
        self.counters.merge(&o.counters);
        for (a, b) in [
            (&mut self.connect, &o.connect),
            (&mut self.handshake, &o.handshake),
            (&mut self.ttfb, &o.ttfb),
            (&mut self.ttfb_0rtt, &o.ttfb_0rtt),
            (&mut self.request, &o.request),
            (&mut self.request_uncorrected, &o.request_uncorrected),
            (&mut self.handshake_bytes_in, &o.handshake_bytes_in),
            (&mut self.handshake_bytes_out, &o.handshake_bytes_out),
        ] {
            // Same bounds on both sides, so addition cannot fail; saturate rather than lose
            // a worker's results if it somehow did.
            if a.add(b).is_err() {
                for v in b.iter_recorded() {
                    a.saturating_record_n(v.value_iterated_to(), v.count_at_value());
                }
            }
        }
        self.cpu = common::cpu::CpuTime {
            user: self.cpu.user + o.cpu.user,
            sys: self.cpu.sys + o.cpu.sys,
        };
        self.max_worker_cpu_share = self.max_worker_cpu_share.max(o.max_worker_cpu_share);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_resumption_after_an_hrr_is_its_own_kind() {
        use rustls::HandshakeKind as K;
        let mut c = LoadCounters::default();
        for (kind, hrr, class) in [
            (K::Full, false, HandshakeClass::Full),
            (K::FullWithHelloRetryRequest, true, HandshakeClass::FullHrr),
            (K::Resumed, false, HandshakeClass::Resumed),
            (K::Resumed, true, HandshakeClass::ResumedHrr),
        ] {
            assert_eq!(HandshakeClass::of(kind, hrr), class);
            c.handshake(class);
        }
        assert_eq!((c.full, c.full_hrr, c.resumed, c.resumed_hrr), (1, 1, 1, 1));
        assert_eq!(c.handshakes(), 4);
        let mut merged = c.clone();
        merged.merge(&c);
        assert_eq!(merged.resumed_hrr, 2);
    }

    #[test]
    fn merge_adds_counts_and_histograms() {
        let mut a = Measured::default();
        let mut b = Measured::default();
        a.counters.requests = 3;
        b.counters.requests = 4;
        a.counters.handshake_bytes_out = 10;
        a.counters.cert_compressed.add([1, 0]);
        b.counters.cert_compressed.add([2, 5]);
        b.counters.handshake_bytes_out = 20;
        record_bytes(&mut a.handshake_bytes_in, 3000);
        record_bytes(&mut b.handshake_bytes_in, 5000);
        a.counters.error(FailureKind::Reset);
        *b.counters
            .alerts
            .entry("handshake_failure".into())
            .or_default() += 2;
        record(&mut a.request, Duration::from_micros(100));
        record(&mut b.request, Duration::from_micros(300));
        record(&mut b.request, Duration::from_secs(7200));
        a.merge(&b);
        assert_eq!(a.counters.requests, 7);
        assert_eq!(a.counters.handshake_bytes_out, 30);
        assert_eq!(
            a.counters.cert_compressed,
            CertCompressed { brotli: 3, zlib: 5 }
        );
        assert_eq!(a.counters.cert_compressed.total(), 8);
        assert_eq!(a.handshake_bytes_in.len(), 2);
        assert!(
            a.handshake_bytes_in
                .equivalent(a.handshake_bytes_in.max(), 5000)
        );
        assert_eq!(a.counters.errors_of(FailureKind::Reset), 1);
        assert_eq!(a.counters.alerts["handshake_failure"], 2);
        assert_eq!(a.request.len(), 3);
        assert_eq!(a.request.min(), 100);
        assert!(
            a.request.max() >= MAX_US - MAX_US / 1000,
            "saturated at the bound"
        );
    }
}
