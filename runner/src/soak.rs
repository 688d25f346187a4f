//! `tlsbench soak`: minutes of mixed load on one server process, watching for what grows.
//!
//! The server runs as a child process (as under `tlsbench run`, with short handshake and
//! header timeouts so the broken clients' timeouts fire within the run). In this process, one
//! thread per mix member runs the load generator open loop at a modest rate for the whole
//! duration — full handshakes, resumed handshakes (TLS 1.3 tickets, TLS 1.2 session IDs),
//! keep-alive requests, 1 MiB downloads and uploads — next to a thread of broken clients
//! (garbage, plain HTTP, mid-handshake closes, TCP stalls, half request heads). The main
//! thread samples the server's resident set, descriptors and threads from `/proc` once a
//! second, with its admin counters and the generator's own resident set, into
//! `results/soak-<UTC>/samples.csv`. At the end [`bounds::evaluate`] judges the post-warm-up
//! samples against stated bounds; good clients must have seen no error, and the server must
//! have counted the broken ones. `summary.json` holds all of it; exit 0 on pass, 1 on fail.
//!
//! # Layout
//! - [`bounds`]: samples and the bound evaluation (pure, unit-tested).
//! - `broken`: the broken-client thread.
//! - the server child and its metrics: [`crate::child::ServerChild`]; `/proc`: [`common::procfs`].

pub mod bounds;
mod broken;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use clap::Args;
use common::certs::KeyType;
use common::procfs;
use loadgen::verify::Trust;
use loadgen::{ClientTlsOptions, LoadOptions, ResumeMode, Target};
use serde::Serialize;
use server::cli::ServerArgs;

use crate::RunError;
use crate::child::{ServerChild, metric_sum};
use bounds::{Bounds, ResourceVerdict, Sample};
use broken::{BrokenCounts, BrokenOptions};

/// Version of `summary.json`; bump on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;

fn parse_bytes(s: &str) -> Result<u64, String> {
    loadgen::cli::parse_size(s)
}

/// Flags of `tlsbench soak`.
#[derive(Args, Debug, Clone)]
#[command(after_help = "\
Pass/fail (exit 0/1), judged on the samples after warm-up against those at its end:
  server RSS max  <= RSS at warm-up end × --rss-factor + --rss-slack   (1.25 × + 16 MiB)
  server RSS mean of the last third <= mean of the middle third + --rss-drift   (4 MiB)
  server fds max  <= fds at warm-up end + mix connections (28) + --max-stalls + --fd-slack
  server threads  == threads at warm-up end, in every sample
  no error on any good client; the server counted the broken clients (handshake failures,
  handshake and header timeouts) and closed every stall within 3 × its timeout.")]
pub struct SoakArgs {
    /// How long the mixed load runs (warm-up included).
    #[arg(short, long, default_value = "10m", value_parser = common::duration::parse)]
    pub duration: Duration,
    /// The first part of the run the bounds are not applied to; its last sample is the
    /// baseline.
    #[arg(long, default_value = "60s", value_parser = common::duration::parse)]
    pub warmup: Duration,
    /// Where the results directory soak-<UTC>/ is created.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Server worker threads [default: all cores].
    #[arg(short, long)]
    pub threads: Option<usize>,
    /// Multiplies every mix rate (see the mix in summary.json) and the broken-client rate.
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Broken clients started per second (garbage, plain HTTP, mid-handshake close, TCP
    /// stall, half request head, in turn); 0 disables them.
    #[arg(long, default_value_t = 20.0)]
    pub broken_rate: f64,
    /// Most stalled broken connections held at once (the oldest is dropped for a new one).
    #[arg(long, default_value_t = 64)]
    pub max_stalls: usize,
    /// The server's --handshake-timeout (short, so TCP stalls are timed out during the run).
    #[arg(long, default_value = "5s", value_parser = common::duration::parse)]
    pub handshake_timeout: Duration,
    /// The server's --header-timeout (short, so half request heads are timed out).
    #[arg(long, default_value = "5s", value_parser = common::duration::parse)]
    pub header_timeout: Duration,
    /// Bound: server RSS after warm-up ≤ RSS at its end × this + --rss-slack.
    #[arg(long, default_value_t = 1.25)]
    pub rss_factor: f64,
    /// Bound: see --rss-factor (bytes: 16MiB, 4096KiB, ...).
    #[arg(long, default_value = "16MiB", value_parser = parse_bytes)]
    pub rss_slack: u64,
    /// Bound: mean RSS of the last third of the post-warm-up samples ≤ the middle third's +
    /// this (growth detection).
    #[arg(long, default_value = "4MiB", value_parser = parse_bytes)]
    pub rss_drift: u64,
    /// Bound: server descriptors after warm-up ≤ those at its end + the mix's connections +
    /// --max-stalls + this (broken clients between connect and close, the admin scrape).
    #[arg(long, default_value_t = 32)]
    pub fd_slack: u64,
    /// Certificates directory (the ecdsa-p256 chain is generated when missing).
    #[arg(long, default_value = "certs")]
    pub certs_dir: PathBuf,
    /// The tlsbench binary to start the server from [default: this executable].
    #[arg(long, hide = true)]
    pub server_exe: Option<PathBuf>,
}

/// One member of the good-client mix.
struct MixSpec {
    name: &'static str,
    what: &'static str,
    tls: &'static str,
    resume: ResumeMode,
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
const MIX: [MixSpec; 6] = [
    MixSpec {
        name: "full",
        what: "new connection per request, TLS 1.3, no resumption offered",
        tls: "1.3",
        resume: ResumeMode::Off,
        new_conn: true,
        method: "GET",
        path: "/",
        upload: 0,
        rate: 50.0,
        connections: 4,
    },
    MixSpec {
        name: "resumed-tls13",
        what: "new connection per request, TLS 1.3 ticket resumption",
        tls: "1.3",
        resume: ResumeMode::Ticket,
        new_conn: true,
        method: "GET",
        path: "/",
        upload: 0,
        rate: 50.0,
        connections: 4,
    },
    MixSpec {
        name: "resumed-tls12",
        what: "new connection per request, TLS 1.2 session-ID resumption",
        tls: "1.2",
        resume: ResumeMode::SessionId,
        new_conn: true,
        method: "GET",
        path: "/",
        upload: 0,
        rate: 50.0,
        connections: 4,
    },
    MixSpec {
        name: "keep-alive",
        what: "GET / on kept-alive TLS 1.3 connections",
        tls: "1.3",
        resume: ResumeMode::Off,
        new_conn: false,
        method: "GET",
        path: "/",
        upload: 0,
        rate: 500.0,
        connections: 8,
    },
    MixSpec {
        name: "download",
        what: "GET /bytes/1MiB on kept-alive TLS 1.3 connections",
        tls: "1.3",
        resume: ResumeMode::Off,
        new_conn: false,
        method: "GET",
        path: "/bytes/1048576",
        upload: 0,
        rate: 10.0,
        connections: 4,
    },
    MixSpec {
        name: "upload",
        what: "POST /sink with a 1 MiB body on kept-alive TLS 1.3 connections",
        tls: "1.3",
        resume: ResumeMode::Off,
        new_conn: false,
        method: "POST",
        path: "/sink",
        upload: MIB,
        rate: 10.0,
        connections: 4,
    },
];

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

/// The bounds as stated in `summary.json`.
#[derive(Clone, Debug, Serialize)]
pub struct BoundsDoc {
    /// The numbers [`bounds::evaluate`] used.
    #[serde(flatten)]
    pub bounds: Bounds,
    /// Parts of `fd_headroom`: connections the mix can hold.
    pub mix_connections: u64,
    /// Parts of `fd_headroom`: the broken-client stall cap.
    pub max_stalls: u64,
    /// Parts of `fd_headroom`: broken clients between connect and close, the admin scrape.
    pub fd_slack: u64,
    /// The bounds in words.
    pub statement: Vec<String>,
}

/// The broken clients in `summary.json`.
#[derive(Clone, Debug, Serialize)]
pub struct BrokenDoc {
    /// Started per second.
    pub rate_per_s: f64,
    /// Stall cap.
    pub max_stalls: usize,
    /// Stalls the server had not closed after this long counted as outlived, s.
    pub stall_limit_s: f64,
    /// What they did and saw.
    pub counts: BrokenCounts,
}

/// The server in `summary.json`.
#[derive(Clone, Debug, Serialize)]
pub struct ServerDoc {
    /// The flags it ran with, as [`ServerArgs::to_args`] wrote them (listen and admin before
    /// [`ServerChild::spawn`] set both to 127.0.0.1:0).
    pub args: Vec<String>,
    /// Its counters at the end (every Prometheus series).
    pub counters: BTreeMap<String, f64>,
}

/// `summary.json`.
#[derive(Clone, Debug, Serialize)]
pub struct SoakSummary {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// "tlsbench soak".
    pub tool: String,
    /// When the load started, UTC, RFC 3339.
    pub started_utc: String,
    /// The duration asked for, s.
    pub duration_s: f64,
    /// How long the load actually ran, s.
    pub elapsed_s: f64,
    /// Warm-up, s.
    pub warmup_s: f64,
    /// Every bound held, no good client failed, the broken clients were counted.
    pub pass: bool,
    /// Why not, one line per reason.
    pub reasons: Vec<String>,
    /// The bounds.
    pub bounds: BoundsDoc,
    /// Start, end of warm-up, end and max after warm-up of each sampled resource.
    pub resources: ResourceVerdict,
    /// Samples in samples.csv.
    pub samples: usize,
    /// The good clients.
    pub mix: Vec<MixResult>,
    /// The broken clients.
    pub broken: BrokenDoc,
    /// The server.
    pub server: ServerDoc,
    /// Where it ran.
    pub environment: common::env::Environment,
}

fn load_options(
    m: &MixSpec,
    target: &Target,
    trust: &Trust,
    duration: Duration,
    scale: f64,
) -> Result<LoadOptions, RunError> {
    let mut target = target.clone();
    target.path = m.path.to_owned();
    let mut opts = LoadOptions::new(target, trust.clone());
    opts.connections = m.connections;
    opts.new_conn = m.new_conn;
    opts.method = m.method.to_owned();
    opts.upload = m.upload;
    opts.tls.versions = common::tls::parse_versions(m.tls)
        .map_err(|e| RunError::Args(format!("mix '{}': {e}", m.name)))?;
    opts.tls.resume = m.resume;
    opts.rate = Some(m.rate * scale);
    // Everything counts (no warm-up): an error in the first second is as much a failure as
    // one later.
    opts.duration = Some(duration);
    Ok(opts)
}

fn mix_result(m: &MixSpec, scale: f64, r: &loadgen::RunResult) -> MixResult {
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
        errors_by_kind: loadgen::ErrorKind::ALL
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

fn io_err(what: String) -> impl FnOnce(std::io::Error) -> RunError {
    move |source| RunError::Io { what, source }
}

/// One sample; `last` supplies the admin counters when a scrape fails (it is best effort).
fn take_sample(server: &ServerChild, t_s: f64, last: &Sample) -> std::io::Result<Sample> {
    let m = server.metrics().ok();
    let pid = server.pid.to_string();
    let status = procfs::status(&pid)?;
    let field = |name| procfs::status_field(&status, name).unwrap_or(0);
    let (rss_kib, threads) = (field("VmRSS"), field("Threads"));
    let fds = procfs::fd_count(&pid)?;
    let client_rss_kib = procfs::status("self")
        .ok()
        .and_then(|me| procfs::status_field(&me, "VmRSS"))
        .unwrap_or(0);
    let count = |name: &str, old: u64| m.as_ref().map_or(old, |m| metric_sum(m, name));
    Ok(Sample {
        t_s,
        rss_kib,
        fds,
        threads,
        client_rss_kib,
        connections_active: count("tlsbench_connections_active", last.connections_active),
        handshakes: count("tlsbench_handshakes_total", last.handshakes),
        requests: count("tlsbench_requests_total", last.requests),
    })
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Sleeps until `t` unless `stop` is raised first.
fn sleep_until(t: Instant, stop: &AtomicBool) {
    loop {
        let now = Instant::now();
        if now >= t || stop.load(Ordering::Acquire) {
            return;
        }
        std::thread::sleep(t.duration_since(now).min(Duration::from_millis(100)));
    }
}

/// Checks of the good and broken clients and of the server's counters of the latter.
fn client_reasons(
    mix: &[MixResult],
    broken: &BrokenCounts,
    counters: &BTreeMap<String, f64>,
    args: &SoakArgs,
    elapsed: Duration,
) -> Vec<String> {
    let mut reasons = Vec::new();
    for m in mix {
        if m.errors > 0 {
            let kinds: Vec<String> = m
                .errors_by_kind
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            reasons.push(format!(
                "mix '{}': {} errors ({})",
                m.name,
                m.errors,
                kinds.join(", ")
            ));
        } else if m.requests == 0 {
            reasons.push(format!("mix '{}': no requests completed", m.name));
        }
    }
    if args.broken_rate > 0.0 {
        if broken.total() == 0 {
            reasons.push("no broken client ran".into());
        }
        if broken.connect_failed > 0 {
            reasons.push(format!(
                "{} broken clients could not connect",
                broken.connect_failed
            ));
        }
        if broken.outlived > 0 {
            reasons.push(format!(
                "{} broken connections were still open after {:.0} s: the server did not close them",
                broken.outlived,
                stall_limit(args).as_secs_f64()
            ));
        }
        let failures = metric_sum(counters, "tlsbench_handshake_failures_total");
        if failures < broken.rejected_closed_by_server {
            reasons.push(format!(
                "the server counted {failures} failed handshakes, fewer than the {} garbage and plain-HTTP connections it closed",
                broken.rejected_closed_by_server
            ));
        }
        let timeouts = |phase: &str| {
            counters
                .get(&format!("tlsbench_timeouts_total{{phase=\"{phase}\"}}"))
                .map_or(0, |v| *v as u64)
        };
        // A stall opened in the first second is timed out before the end only when the run
        // outlasts the timeout with room to spare.
        let room = Duration::from_secs(1);
        if broken.tcp_stall > 0 && elapsed > args.handshake_timeout + room {
            if timeouts("handshake") == 0 {
                reasons.push("the server timed out no stalled handshake".into());
            }
            if broken.tcp_stalls_closed_by_server == 0 {
                reasons.push("the server closed no TCP stall".into());
            }
        }
        if broken.half_head > 0 && elapsed > args.header_timeout + room {
            if timeouts("header") == 0 {
                reasons.push("the server timed out no half request head".into());
            }
            if broken.half_heads_closed_by_server == 0 {
                reasons.push("the server closed no half request head".into());
            }
        }
    }
    reasons
}

/// How long a broken connection may stay open before the server is blamed for it.
fn stall_limit(args: &SoakArgs) -> Duration {
    args.handshake_timeout.max(args.header_timeout) * 3
}

/// Runs `tlsbench soak`; returns the exit code (0 pass, 1 fail).
pub fn run(args: &SoakArgs) -> Result<i32, RunError> {
    if args.warmup >= args.duration {
        return Err(RunError::Args(format!(
            "--warmup {} must be shorter than --duration {}",
            humantime::format_duration(args.warmup),
            humantime::format_duration(args.duration)
        )));
    }
    if !(args.scale > 0.0 && args.scale.is_finite()) {
        return Err(RunError::Args("--scale must be a positive number".into()));
    }
    if !(args.broken_rate >= 0.0 && args.broken_rate.is_finite()) {
        return Err(RunError::Args("--broken-rate must be 0 or more".into()));
    }
    if !(args.rss_factor >= 1.0 && args.rss_factor.is_finite()) {
        return Err(RunError::Args("--rss-factor must be at least 1".into()));
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(io_err("installing signal handlers".into()))?;
    }
    let exe = match &args.server_exe {
        Some(p) => p.clone(),
        None => std::env::current_exe().map_err(io_err("finding this executable".into()))?,
    };
    common::certs::ensure(&args.certs_dir, &[KeyType::EcdsaP256])
        .map_err(|e| RunError::Server(format!("certificates: {e}")))?;

    let server_args = ServerArgs {
        certs_dir: args.certs_dir.clone(),
        cert_type: KeyType::EcdsaP256,
        handshake_timeout: args.handshake_timeout,
        header_timeout: args.header_timeout,
        threads: args.threads.map(|n| n.max(1)),
        ..ServerArgs::default()
    };
    let mut server = ServerChild::spawn(&exe, &server_args)?;
    let target = Target::new(
        &format!("https://bank32.com:{}/", server.addr.port()),
        None,
        Some(&server.addr.to_string()),
    )?;
    let trust = Trust::CaFile(common::certs::paths(&args.certs_dir, KeyType::EcdsaP256).ca);
    let opts = MIX
        .iter()
        .map(|m| load_options(m, &target, &trust, args.duration, args.scale))
        .collect::<Result<Vec<_>, _>>()?;
    let broken_tls = ClientTlsOptions {
        resume: ResumeMode::Off,
        ..opts[0].tls.clone()
    };
    let roots = loadgen::verify::root_store(&trust).map_err(loadgen::LoadError::from)?;
    let broken_config = loadgen::tlsconf::worker_tls(&broken_tls, Some(&roots))
        .map_err(loadgen::LoadError::from)?
        .config;
    let bounds = Bounds {
        rss_factor: args.rss_factor,
        rss_slack_kib: args.rss_slack / KIB,
        rss_drift_kib: args.rss_drift / KIB,
        fd_headroom: mix_connections() + args.max_stalls as u64 + args.fd_slack,
    };

    let started = SystemTime::now();
    let dir = args
        .out
        .join(format!("soak-{}", common::env::utc_stamp(started)));
    std::fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
    let csv_path = dir.join("samples.csv");
    let mut csv = BufWriter::new(
        File::create(&csv_path).map_err(io_err(format!("creating {}", csv_path.display())))?,
    );
    writeln!(csv, "{}", Sample::CSV_HEADER)
        .map_err(io_err(format!("writing {}", csv_path.display())))?;
    println!(
        "tlsbench soak: {} of mixed load (warm-up {}) on server pid {} at {}; results in {}",
        humantime::format_duration(args.duration),
        humantime::format_duration(args.warmup),
        server.pid,
        server.addr,
        dir.display()
    );

    let t0 = Instant::now();
    let deadline = t0 + args.duration;
    let broken_opts = BrokenOptions {
        addr: server.addr,
        server_name: target.server_name.clone(),
        config: broken_config,
        rate: args.broken_rate * args.scale,
        max_stalls: args.max_stalls,
        stall_limit: stall_limit(args),
        deadline,
    };
    let progress_every = (args.duration.as_secs() / 20).clamp(1, 30);
    let mut samples: Vec<Sample> = Vec::new();
    let mut sampling_failure: Option<String> = None;
    let (loads, broken_counts) = std::thread::scope(|scope| {
        let loads: Vec<_> = opts
            .iter()
            .zip(MIX.iter())
            .map(|(o, m)| {
                let stop = &*stop;
                std::thread::Builder::new()
                    .name(format!("soak-{}", m.name))
                    .spawn_scoped(scope, move || loadgen::run(o, &mut loadgen::Quiet, stop))
            })
            .collect();
        let broken = std::thread::Builder::new()
            .name("soak-broken".into())
            .spawn_scoped(scope, || broken::run(&broken_opts, &stop));

        // One sample a second, at whole seconds from the start, the last one a second before
        // the deadline (the load is winding down at the deadline itself).
        let mut last = Sample::default();
        for k in 0..args.duration.as_secs_f64().ceil() as u64 {
            sleep_until(t0 + Duration::from_secs(k), &stop);
            if stop.load(Ordering::Acquire) {
                break;
            }
            if !server.alive() {
                sampling_failure = Some(format!("the server exited at t={k} s"));
                stop.store(true, Ordering::Release);
                break;
            }
            match take_sample(&server, t0.elapsed().as_secs_f64(), &last) {
                Ok(s) => {
                    let _ = writeln!(csv, "{}", s.csv_row());
                    let _ = csv.flush();
                    if k % progress_every == 0 || k == args.warmup.as_secs() {
                        println!(
                            "  t={:>4} s  server RSS {:>9}  fds {:>4}  threads {:>2}  connections {:>4}  handshakes {:>8}  requests {:>9}  generator RSS {}",
                            k,
                            mib(s.rss_kib),
                            s.fds,
                            s.threads,
                            s.connections_active,
                            s.handshakes,
                            s.requests,
                            mib(s.client_rss_kib)
                        );
                    }
                    last = s;
                    samples.push(s);
                }
                Err(e) => {
                    sampling_failure = Some(format!("sampling the server failed at t={k} s: {e}"));
                    stop.store(true, Ordering::Release);
                    break;
                }
            }
        }
        let loads: Vec<_> = loads
            .into_iter()
            .map(|h| match h {
                Ok(h) => h
                    .join()
                    .unwrap_or_else(|_| Err(loadgen::LoadError::Options("panicked".into()))),
                Err(e) => Err(loadgen::LoadError::Io {
                    what: "spawning a mix thread".into(),
                    source: e,
                }),
            })
            .collect();
        let broken = match broken {
            Ok(h) => h.join().unwrap_or_default(),
            Err(_) => BrokenCounts::default(),
        };
        (loads, broken)
    });
    let elapsed = t0.elapsed();
    let interrupted = stop.load(Ordering::Acquire) && sampling_failure.is_none();
    let counters = server.metrics().unwrap_or_default();
    server.stop();
    csv.flush()
        .map_err(io_err(format!("writing {}", csv_path.display())))?;

    let mut mix = Vec::with_capacity(MIX.len());
    for (m, r) in MIX.iter().zip(loads) {
        mix.push(mix_result(m, args.scale, &r?));
    }
    let resources = bounds::evaluate(&samples, args.warmup.as_secs_f64(), &bounds);
    let mut reasons = Vec::new();
    if interrupted {
        reasons.push(format!("interrupted after {:.0} s", elapsed.as_secs_f64()));
    }
    reasons.extend(sampling_failure);
    reasons.extend(resources.reasons.iter().cloned());
    reasons.extend(client_reasons(
        &mix,
        &broken_counts,
        &counters,
        args,
        elapsed,
    ));
    let summary = SoakSummary {
        schema_version: SCHEMA_VERSION,
        tool: "tlsbench soak".into(),
        started_utc: common::env::utc_rfc3339(started),
        duration_s: args.duration.as_secs_f64(),
        elapsed_s: elapsed.as_secs_f64(),
        warmup_s: args.warmup.as_secs_f64(),
        pass: reasons.is_empty(),
        reasons,
        bounds: BoundsDoc {
            bounds,
            mix_connections: mix_connections(),
            max_stalls: args.max_stalls as u64,
            fd_slack: args.fd_slack,
            statement: vec![
                format!(
                    "server RSS after warm-up <= RSS at warm-up end x {} + {}",
                    bounds.rss_factor,
                    mib(bounds.rss_slack_kib)
                ),
                format!(
                    "mean server RSS of the last third after warm-up <= the middle third's + {}",
                    mib(bounds.rss_drift_kib)
                ),
                format!(
                    "server fds after warm-up <= fds at warm-up end + {} (mix connections {} + max stalls {} + slack {})",
                    bounds.fd_headroom,
                    mix_connections(),
                    args.max_stalls,
                    args.fd_slack
                ),
                "server threads after warm-up == threads at warm-up end".into(),
                "no error on any good client; broken clients counted and timed out by the server"
                    .into(),
            ],
        },
        resources,
        samples: samples.len(),
        mix,
        broken: BrokenDoc {
            rate_per_s: args.broken_rate * args.scale,
            max_stalls: args.max_stalls,
            stall_limit_s: stall_limit(args).as_secs_f64(),
            counts: broken_counts,
        },
        server: ServerDoc {
            args: server_args
                .to_args()
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            counters,
        },
        environment: common::env::Environment::collect(),
    };
    write_summary(&summary, &dir)?;
    print!("{}", human(&summary, &dir));
    Ok(if summary.pass { 0 } else { 1 })
}

fn write_summary(s: &SoakSummary, dir: &Path) -> Result<(), RunError> {
    let json = serde_json::to_string_pretty(s).map_err(|e| RunError::Io {
        what: "encoding summary.json".into(),
        source: std::io::Error::other(e),
    })?;
    let path = dir.join("summary.json");
    std::fs::write(&path, json + "\n").map_err(io_err(format!("writing {}", path.display())))
}

/// The summary printed at the end.
pub fn human(s: &SoakSummary, dir: &Path) -> String {
    let mut o = String::new();
    let r = &s.resources;
    let _ = writeln!(
        o,
        "\ntlsbench soak: {} — {:.0} s of mixed load (warm-up {:.0} s), {} samples; {}",
        if s.pass { "PASS" } else { "FAIL" },
        s.elapsed_s,
        s.warmup_s,
        s.samples,
        dir.display()
    );
    let _ = writeln!(
        o,
        "  {:<16} {:>10} {:>12} {:>10} {:>12} {:>10}",
        "", "start", "warm-up end", "end", "max after", "bound"
    );
    let row = |o: &mut String, name: &str, x: &bounds::Series, f: &dyn Fn(u64) -> String| {
        let _ = writeln!(
            o,
            "  {:<16} {:>10} {:>12} {:>10} {:>12} {:>10}",
            name,
            f(x.start),
            f(x.warmup_end),
            f(x.end),
            f(x.max_after_warmup),
            x.limit.map_or("-".into(), f)
        );
    };
    row(&mut o, "server RSS", &r.rss_kib, &mib);
    row(&mut o, "server fds", &r.fds, &|v| v.to_string());
    row(&mut o, "server threads", &r.threads, &|v| v.to_string());
    row(&mut o, "generator RSS", &r.client_rss_kib, &mib);
    if let (Some(t), Some(d)) = (r.rss_thirds_mean_kib, r.rss_drift_kib) {
        let _ = writeln!(
            o,
            "  server RSS mean by third after warm-up: {} / {} / {}; last − middle {:+.1} MiB (bound +{})",
            mib(t[0] as u64),
            mib(t[1] as u64),
            mib(t[2] as u64),
            d / 1024.0,
            mib(s.bounds.bounds.rss_drift_kib)
        );
    }
    let _ = writeln!(
        o,
        "  {:<14} {:>7} {:>6} {:>10} {:>9} {:>9} {:>8} {:>8}",
        "mix", "rate/s", "conns", "requests", "full", "resumed", "p99 ms", "errors"
    );
    for m in &s.mix {
        let _ = writeln!(
            o,
            "  {:<14} {:>7.0} {:>6} {:>10} {:>9} {:>9} {:>8.1} {:>8}",
            m.name,
            m.rate_per_s,
            m.connections,
            m.requests,
            m.handshakes_full,
            m.handshakes_resumed,
            m.p99_ms,
            m.errors
        );
    }
    let b = &s.broken.counts;
    let _ = writeln!(
        o,
        "  broken clients: {} (garbage {}, plain HTTP {}, mid-handshake {}, TCP stall {}, half head {}); closed by the server: {} rejected, {} TCP stalls, {} half heads; dropped at cap {}, outlived {}",
        b.total(),
        b.garbage,
        b.plain_http,
        b.mid_handshake,
        b.tcp_stall,
        b.half_head,
        b.rejected_closed_by_server,
        b.tcp_stalls_closed_by_server,
        b.half_heads_closed_by_server,
        b.stalls_dropped_at_cap,
        b.outlived
    );
    let by_label = |prefix: &str| -> String {
        s.server
            .counters
            .iter()
            .filter_map(|(k, v)| {
                let label = k.strip_prefix(prefix)?.split('"').nth(1)?;
                (*v > 0.0).then(|| format!("{label} {v:.0}"))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(
        o,
        "  server: handshake failures [{}]; timeouts [{}]",
        by_label("tlsbench_handshake_failures_total{"),
        by_label("tlsbench_timeouts_total{")
    );
    for reason in &s.reasons {
        let _ = writeln!(o, "  FAIL: {reason}");
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_help_text_states_the_mix_connections_and_the_defaults() {
        // `--help` quotes these numbers: keep them true.
        assert_eq!(mix_connections(), 28);
        let help = SoakArgs::augment_args(clap::Command::new("soak"))
            .render_long_help()
            .to_string();
        for want in [
            "mix connections (28)",
            "1.25 × + 16 MiB",
            "(4 MiB)",
            "[default: 10m]",
            "[default: 60s]",
        ] {
            assert!(help.contains(want), "{want} not in:\n{help}");
        }
        let b = ["1.3", "1.2"];
        assert!(MIX.iter().all(|m| b.contains(&m.tls)));
        assert!(
            MIX.iter()
                .filter(|m| m.resume == ResumeMode::SessionId)
                .all(|m| m.tls == "1.2"),
            "session-ID resumption needs TLS 1.2 alone"
        );
    }
}
