//! What every worker of a run does, read once from [`crate::LoadOptions`] and shared
//! read-only: the target, the request bytes, keep-alive and resumption policy, the timeouts and
//! the run's length.

use std::net::SocketAddr;
use std::time::Duration;

use rustls::pki_types::ServerName;

/// What every worker does, shared read-only.
pub struct Plan {
    /// The address dialled.
    pub addr: SocketAddr,
    /// Plain HTTP (an `http://` target): no TLS, no handshake.
    pub plain: bool,
    /// The name sent as SNI and verified in the certificate.
    pub server_name: ServerName<'static>,
    /// The request head for a request that keeps the connection open.
    pub request: Vec<u8>,
    /// The same with `Connection: close`, for the last request on a connection.
    pub request_close: Vec<u8>,
    /// The method is HEAD: responses carry no body whatever their framing says.
    pub head_request: bool,
    /// Send the request head as TLS 1.3 early data when resuming (`--early-data`); never
    /// with an upload body, which would not fit the server's early data limit.
    pub early_data: bool,
    /// Request body bytes (`--upload`).
    pub upload: u64,
    /// A new connection per request (`--new-conn`): the handshake is the operation.
    pub new_conn: bool,
    /// Requests before a keep-alive connection is closed and replaced (None: never).
    pub requests_per_conn: Option<u64>,
    /// The share of new connections that offer a saved session.
    pub resume_ratio: f64,
    /// Deadline of each operation (connect, handshake, response).
    pub timeout: Duration,
    /// Time before the measured window opens.
    pub warmup: Duration,
    /// Length of the measured window (None: until the request count `-n` is reached).
    pub duration: Option<Duration>,
    /// Verification is off (`--insecure`).
    pub insecure: bool,
    /// Where trusted roots came from, for error messages.
    pub trust: crate::verify::Trust,
    /// How often progress is reported.
    pub report_interval: Duration,
}

impl Plan {
    /// What `opts` asks every worker to do; without `-d` or `-n` a run lasts 10 s.
    pub fn new(opts: &crate::LoadOptions) -> Plan {
        Plan {
            addr: opts.target.addr,
            plain: opts.target.plain,
            server_name: opts.target.server_name.clone(),
            request: crate::request_head(opts, false),
            request_close: crate::request_head(opts, true),
            head_request: opts.method.eq_ignore_ascii_case("HEAD"),
            early_data: opts.tls.early_data && opts.upload == 0,
            upload: opts.upload,
            new_conn: opts.new_conn,
            requests_per_conn: opts.requests_per_conn,
            resume_ratio: if opts.tls.resume == crate::ResumeMode::Off || opts.target.plain {
                0.0
            } else {
                opts.resume_ratio
            },
            timeout: opts.timeout,
            warmup: opts.warmup,
            duration: match (opts.duration, opts.requests) {
                (None, None) => Some(Duration::from_secs(10)),
                (d, _) => d,
            },
            insecure: opts.tls.insecure,
            trust: opts.tls.trust.clone(),
            report_interval: opts.report_interval.max(Duration::from_millis(100)),
        }
    }
}
