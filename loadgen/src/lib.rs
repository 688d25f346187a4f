//! The tlsbench load generator: measures what TLS costs from the client's side — full versus
//! resumed handshakes (every connection classified with `handshake_kind()`), keep-alive
//! requests, and record-encryption throughput — with HdrHistogram latencies, closed- or
//! open-loop load, and JSON results.
//!
//! # Layout
//! - [`cli`]: `tlsbench load` flags; prints and writes the results.
//! - [`exit`]: the exit codes of `tlsbench load`.
//! - [`oneshot`]: `-n 1 -v`, one connection shown step by step (chain, verdict, handshake).
//! - [`target`]: URL, verified name (`--sni`), dialled address (`--connect-to`).
//! - [`client_cert`]: mutual TLS: the `--cert`/`--key` identity and the resolver noting, per
//!   connection, whether the server asked for a certificate and whether one was sent.
//! - [`tlsconf`]: one rustls `ClientConfig` per worker; the per-worker session store that
//!   offers a saved session on exactly `--resume-ratio` of new connections.
//! - [`verify`]: chain and hostname verification, cached per exact chain and name;
//!   `--insecure`; failure messages that name what was expected and what was presented.
//! - [`response`]: sans-I/O HTTP/1.1 response reading.
//! - [`plan`]: what every worker does, read once from the options.
//! - [`conn`]: one client connection's sans-I/O state machine over a byte transport (public,
//!   as the server's `Conn` is, so the `fuzzing` crate's client harness drives it).
//! - `worker`: one thread's event loop driving its connections: slots in a free list,
//!   deadlines and retry backoffs in a timer heap, operations started back to back or when
//!   `schedule` says.
//! - [`schedule`]: one worker's open-loop arrivals, staggered across workers; due operations
//!   that never started.
//! - [`stats`]: histograms and counters, merged once at the end.
//! - [`report`]: the human summary, the JSON document, histogram encoding.
//! - [`segment`]: `--segment i/N` (this process's part of a larger load) and `--start-at`.
//! - [`merge`]: `tlsbench merge`, several parts' documents into one, losslessly.
//!
//! Tests call [`run`] directly with a [`LoadOptions`] aimed at a server they started on port 0.

pub mod cli;
pub mod client_cert;
pub mod conn;
pub mod exit;
pub mod merge;
pub mod oneshot;
pub mod plan;
pub mod report;
pub mod response;
pub mod schedule;
pub mod segment;
pub mod stats;
pub mod target;
pub mod tlsconf;
pub mod verify;
mod worker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

pub use stats::{FailureKind, HandshakeClass, Hist, LoadCounters, Measured};
pub use target::Target;
pub use tlsconf::{ClientTlsOptions, ResumeMode};

/// Why a load run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The URL or address is unusable.
    #[error("target {0}")]
    Target(String),
    /// The options contradict each other.
    #[error("{0}")]
    Options(String),
    /// TLS configuration failed.
    #[error(transparent)]
    TlsConf(#[from] tlsconf::TlsConfError),
    /// Trust anchors could not be loaded.
    #[error(transparent)]
    Verify(#[from] verify::VerifyError),
    /// `--segment`, its environment defaults or `--start-at` are refused.
    #[error(transparent)]
    Segment(#[from] segment::SegmentError),
    /// The generator could not be pinned to `pin_cpus`.
    #[error(transparent)]
    Cpu(#[from] common::cpu::CpuError),
    /// A system call failed.
    #[error("{what}: {source}")]
    Io {
        /// What we were doing.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Everything a load run needs.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Where to send load.
    pub target: Target,
    /// Worker threads.
    pub threads: usize,
    /// Concurrent connections in total.
    pub connections: usize,
    /// Every operation on a fresh TCP + TLS connection (the handshake benchmark).
    pub new_conn: bool,
    /// Keep-alive: reconnect after this many requests.
    pub requests_per_conn: Option<u64>,
    /// Request method (GET, or POST for uploads).
    pub method: String,
    /// Extra request headers, `Name: value`.
    pub headers: Vec<String>,
    /// Request body bytes (POST).
    pub upload: u64,
    /// The TLS side.
    pub tls: ClientTlsOptions,
    /// Fraction of new connections that offer a saved session.
    pub resume_ratio: f64,
    /// Open loop: operations per second in total (connections/s with `new_conn`).
    pub rate: Option<f64>,
    /// Measured duration (after warm-up).
    pub duration: Option<Duration>,
    /// Measured operations (after warm-up).
    pub requests: Option<u64>,
    /// Excluded from results.
    pub warmup: Duration,
    /// Per operation.
    pub timeout: Duration,
    /// Stop once this many errors happened.
    pub max_errors: Option<u64>,
    /// Interval of the live view and of `--hdr-log`.
    pub report_interval: Duration,
    /// CPUs the generator runs on: worker i on the i-th (round robin), the calling thread (it
    /// merges intervals and reports progress) on all of them, and it stays there after the
    /// run; empty: not pinned.
    pub pin_cpus: Vec<usize>,
    /// The part of a larger load this run is (`--segment`); `connections`, `rate` and
    /// `requests` above are already this part's. Recorded so `tlsbench merge` can check the
    /// parts.
    pub segment: Option<segment::Segment>,
}

impl LoadOptions {
    /// Options for a program driving the generator (the matrix, the soak, tests): one thread
    /// and one keep-alive connection, closed loop, `GET`, TLS 1.2 and 1.3 with the provider's
    /// suites and groups, ALPN http/1.1, no resumption, verification against `trust`, 10 s per
    /// operation, 1 s report interval, no warm-up, not pinned. Set `duration` or `requests`.
    pub fn new(target: Target, trust: verify::Trust) -> LoadOptions {
        LoadOptions {
            target,
            threads: 1,
            connections: 1,
            new_conn: false,
            requests_per_conn: None,
            method: "GET".into(),
            headers: Vec::new(),
            upload: 0,
            tls: ClientTlsOptions {
                provider: common::tls::Provider::default(),
                versions: vec![common::tls::Version::Tls12, common::tls::Version::Tls13],
                suites: Vec::new(),
                groups: Vec::new(),
                alpn: vec![b"http/1.1".to_vec()],
                keylog: None,
                resume: ResumeMode::Off,
                trust,
                insecure: false,
                client_cert: None,
                cert_compression: common::cert_compression::CertCompression::off(),
                early_data: false,
            },
            resume_ratio: 1.0,
            rate: None,
            duration: None,
            requests: None,
            warmup: Duration::ZERO,
            timeout: Duration::from_secs(10),
            max_errors: None,
            report_interval: Duration::from_secs(1),
            pin_cpus: Vec::new(),
            segment: None,
        }
    }
}

/// Sees the run while it happens.
pub trait Observer {
    /// Once, when warm-up ends and measuring starts (e.g. to read a server's counters).
    fn measuring(&mut self) {}
    /// Once per report interval: the request-latency histogram of that interval, merged
    /// over workers, and the interval's start relative to the end of warm-up.
    fn interval(&mut self, _start: Duration, _length: Duration, _hist: &Hist) {}
    /// A few times per second: measured operations finished so far.
    fn progress(&mut self, _elapsed: Duration, _done: u64) {}
}

/// An observer that ignores everything.
pub struct Quiet;
impl Observer for Quiet {}

/// What a run measured.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// Merged over workers.
    pub measured: Measured,
    /// Length of the measured window (after warm-up).
    pub elapsed: Duration,
    /// The measured window on the wall clock (start, end), so windows of processes on other
    /// machines can be laid side by side.
    pub window: (SystemTime, SystemTime),
    /// Set when the run was cut short or saw errors: why.
    pub incomplete: Option<String>,
    /// The run stopped because a certificate was refused (not under `--insecure`).
    pub verification_failed: bool,
    /// Verification cache hits and misses (full chain+name validations), all workers.
    pub verify_cache: (u64, u64),
}

/// Runs the load described by `opts` until its duration, its request count, a fatal error
/// or `stop`.
pub fn run(
    opts: &LoadOptions,
    observer: &mut dyn Observer,
    stop: &AtomicBool,
) -> Result<RunResult, LoadError> {
    if opts.connections == 0 || opts.threads == 0 {
        return Err(LoadError::Options(
            "--connections and --threads must be at least 1".into(),
        ));
    }
    if !(0.0..=1.0).contains(&opts.resume_ratio) {
        return Err(LoadError::Options(
            "--resume-ratio must be between 0 and 1".into(),
        ));
    }
    if opts.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
        return Err(LoadError::Options(
            "--rate must be a positive number".into(),
        ));
    }
    let threads = opts.threads.min(opts.connections);
    if !opts.pin_cpus.is_empty() {
        // Before the workers start: they inherit the set, then each narrows it to its CPU.
        common::cpu::pin_current_thread_to(&common::cpu::CpuList(opts.pin_cpus.clone()))?;
    }
    let roots = if opts.tls.insecure {
        None
    } else {
        Some(verify::root_store(&opts.tls.trust)?)
    };
    let plan = plan::Plan::new(opts);
    let shared = worker::Shared {
        max_errors: opts.max_errors,
        ..worker::Shared::default()
    };
    // aws-lc seeds its random generator from CPU jitter entropy the first time a process asks
    // it for bytes: about 40 ms of CPU on this machine (docs/rustls-findings.md, finding 7).
    // Asked here, before the run starts, so the first worker's first handshake is not charged
    // with it.
    let provider = opts
        .tls
        .provider
        .crypto(&opts.tls.suites, &opts.tls.groups)
        .map_err(tlsconf::TlsConfError::from)?;
    provider
        .secure_random
        .fill(&mut [0u8; 1])
        .map_err(|_| LoadError::Io {
            what: "seeding the crypto provider's random generator".into(),
            source: std::io::Error::other("the provider could not get random bytes"),
        })?;
    let mut specs = Vec::with_capacity(threads);
    let (tx, rx) = mpsc::channel();
    let start = Instant::now();
    let wall_start = SystemTime::now();
    let mut verifiers = Vec::with_capacity(threads);
    for i in 0..threads {
        let share =
            |total: u64| total / threads as u64 + u64::from((i as u64) < total % threads as u64);
        let tls = tlsconf::worker_tls(&opts.tls, roots.as_ref())?;
        verifiers.push(tls.verifier.clone());
        specs.push(worker::WorkerSpec {
            connections: share(opts.connections as u64) as usize,
            quota: opts.requests.map(share),
            rate: opts.rate.map(|r| r / threads as f64),
            pin_cpu: (!opts.pin_cpus.is_empty()).then(|| opts.pin_cpus[i % opts.pin_cpus.len()]),
            tls,
            start,
            intervals: tx.clone(),
            place: (i, threads),
        });
    }
    drop(tx);

    let results: Vec<Measured> = std::thread::scope(|scope| {
        let handles: Vec<_> = specs
            .into_iter()
            .enumerate()
            .map(|(i, spec)| {
                let plan = &plan;
                let shared = &shared;
                std::thread::Builder::new()
                    .name(format!("tlsbench-load-{i}"))
                    .spawn_scoped(scope, move || worker::run(plan, shared, spec))
            })
            .collect();
        let mut pending: std::collections::BTreeMap<u64, (usize, Hist)> = Default::default();
        let warmup_end = start + opts.warmup;
        let mut measuring = false;
        loop {
            if !measuring && Instant::now() >= warmup_end {
                measuring = true;
                observer.measuring();
            }
            if stop.load(Ordering::Acquire) {
                shared.stop.store(true, Ordering::Release);
                if let Ok(mut a) = shared.abort.lock()
                    && a.is_none()
                {
                    *a = Some("interrupted".into());
                }
            }
            // Wake exactly at the end of warm-up so `measuring` brackets the window closely.
            let wait = if measuring {
                Duration::from_millis(200)
            } else {
                warmup_end
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(200))
            };
            match rx.recv_timeout(wait) {
                Ok((index, hist)) => {
                    let entry = pending
                        .entry(index)
                        .or_insert_with(|| (0, stats::new_hist()));
                    entry.0 += 1;
                    let _ = entry.1.add(&hist);
                    while let Some((&first, (n, _))) = pending.iter().next() {
                        if *n < threads {
                            break;
                        }
                        if let Some((_, h)) = pending.remove(&first) {
                            observer.interval(
                                plan.report_interval * first as u32,
                                plan.report_interval,
                                &h,
                            );
                        }
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            observer.progress(
                Instant::now().saturating_duration_since(warmup_end),
                shared.done.load(Ordering::Relaxed),
            );
        }
        // Intervals some worker never closed (it stopped early) still count.
        for (first, (_, h)) in pending {
            observer.interval(
                plan.report_interval * first as u32,
                plan.report_interval,
                &h,
            );
        }
        handles
            .into_iter()
            .map(|h| match h {
                Ok(h) => h.join().unwrap_or_default(),
                Err(_) => Measured::default(),
            })
            .collect()
    });
    let end = Instant::now();
    let mut measured = Measured::default();
    for m in &results {
        measured.merge(m);
    }
    let abort = shared.abort.lock().ok().and_then(|a| a.clone());
    let verification_failed =
        measured.counters.errors_of(FailureKind::CertVerify) > 0 && !opts.tls.insecure;
    let errors = measured.counters.errors_total();
    let incomplete = match abort {
        Some(why) => Some(why),
        None if errors > 0 => Some(format!("{errors} operations failed")),
        // Operations in flight at the deadline are abandoned uncounted; when that is all there
        // was (a server that accepts and never answers, a timeout longer than the run), the
        // run measured nothing and must not pass for a clean one.
        None if measured.counters.requests == 0 => Some(format!(
            "no request completed before the run ended; {} connections were abandoned in \
             flight",
            measured.counters.connections
        )),
        None => None,
    };
    let verify_cache = verifiers
        .iter()
        .flatten()
        .fold((0, 0), |(h, m), v| (h + v.hits(), m + v.misses()));
    Ok(RunResult {
        measured,
        elapsed: end.saturating_duration_since(start + opts.warmup),
        // One wall-clock reading, offsets from the monotonic clock: both ends move together.
        window: (
            wall_start + opts.warmup,
            wall_start + end.saturating_duration_since(start),
        ),
        incomplete,
        verification_failed,
        verify_cache,
    })
}

/// The request head, built once: method, path, Host, any `-H` headers, Content-Length for
/// uploads, and `Connection: close` for the last request on a connection.
pub(crate) fn request_head(opts: &LoadOptions, close: bool) -> Vec<u8> {
    let mut h = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: tlsbench/{}\r\n",
        opts.method,
        opts.target.path,
        opts.target.host_header,
        env!("CARGO_PKG_VERSION")
    );
    for extra in &opts.headers {
        h.push_str(extra.trim());
        h.push_str("\r\n");
    }
    if opts.upload > 0 || opts.method.eq_ignore_ascii_case("POST") {
        h.push_str(&format!("Content-Length: {}\r\n", opts.upload));
    }
    if close {
        h.push_str("Connection: close\r\n");
    }
    h.push_str("\r\n");
    h.into_bytes()
}
