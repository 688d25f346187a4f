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
//! - `mix`: the good clients (the mix, their options, what each did).
//! - `broken`: the broken-client thread.
//! - `sampling`: the once-a-second samples of the server into samples.csv.
//! - [`bounds`]: samples and the bound evaluation (pure, unit-tested).
//! - `verdict`: the client and broken-client checks, and the printed summary.
//! - the server child and its metrics: `crate::child::ServerChild`; `/proc`:
//!   [`common::procfs`]; signals, certificates, JSON: `crate::harness`.

pub mod bounds;
mod broken;
mod mix;
mod sampling;
mod verdict;

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use clap::Args;
use common::certs::KeyType;
use loadgen::verify::Trust;
use loadgen::{ClientTlsOptions, ResumeMode};
use serde::Serialize;
use server::Snapshot;
use server::cli::ServerArgs;

use crate::child::ServerChild;
use crate::{RunError, harness};
use bounds::{Bounds, ResourceVerdict, Sample};
use broken::{BrokenCounts, BrokenOptions};

/// Version of `summary.json`; bump on incompatible changes.
pub const SCHEMA_VERSION: u32 = 2;

const KIB: u64 = 1024;

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
    /// Where the results directory soak-TIME/ (TIME in UTC) is created.
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
    /// The flags it ran with, as [`ServerArgs::to_args`] writes them, with the addresses it
    /// listened on (it was started on port 0).
    pub args: Vec<String>,
    /// Its counters at the end (the `/metrics.json` snapshot); absent when they could not be
    /// read, which is a reason the soak failed.
    pub counters: Option<Snapshot>,
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
    pub mix: Vec<mix::MixResult>,
    /// The broken clients.
    pub broken: BrokenDoc,
    /// The server.
    pub server: ServerDoc,
    /// Where it ran.
    pub environment: common::env::Environment,
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
    let stop = harness::stop_on_signals()?;
    let exe = harness::server_exe(args.server_exe.as_deref())?;
    harness::ensure_certs(&args.certs_dir, &[KeyType::EcdsaP256])?;

    let server_args = ServerArgs {
        certs_dir: args.certs_dir.clone(),
        cert_type: KeyType::EcdsaP256,
        handshake_timeout: args.handshake_timeout,
        header_timeout: args.header_timeout,
        threads: args.threads.map(|n| n.max(1)),
        ..ServerArgs::default()
    };
    let mut server = ServerChild::spawn(&exe, &server_args)?;
    let target = harness::child_target(&server)?;
    let trust = Trust::CaFile(common::certs::paths(&args.certs_dir, KeyType::EcdsaP256).ca);
    let opts = mix::MIX
        .iter()
        .map(|m| mix::load_options(m, &target, &trust, args.duration, args.scale))
        .collect::<Vec<_>>();
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
        fd_headroom: mix::mix_connections() + args.max_stalls as u64 + args.fd_slack,
    };

    let started = SystemTime::now();
    let dir = args
        .out
        .join(format!("soak-{}", harness::utc_stamp(started)));
    std::fs::create_dir_all(&dir)
        .map_err(harness::io_err(format!("creating {}", dir.display())))?;
    let csv_path = dir.join("samples.csv");
    let mut csv = BufWriter::new(
        File::create(&csv_path)
            .map_err(harness::io_err(format!("creating {}", csv_path.display())))?,
    );
    writeln!(csv, "{}", Sample::CSV_HEADER)
        .map_err(harness::io_err(format!("writing {}", csv_path.display())))?;
    println!(
        "tlsbench soak: {} of mixed load (warm-up {}) on server pid {} at {}; results in {}",
        humantime::format_duration(args.duration),
        humantime::format_duration(args.warmup),
        server.pid,
        server.addr,
        dir.display()
    );

    let (server_addr, server_admin) = (server.addr, server.admin);
    let t0 = Instant::now();
    let deadline = t0 + args.duration;
    let broken_opts = BrokenOptions {
        addr: server.addr,
        server_name: target.server_name.clone(),
        config: broken_config,
        rate: args.broken_rate * args.scale,
        max_stalls: args.max_stalls,
        stall_limit: verdict::stall_limit(args),
        deadline,
    };
    let (loads, broken_counts, samples, sampling_failure) = std::thread::scope(|scope| {
        let loads: Vec<_> = opts
            .iter()
            .zip(mix::MIX.iter())
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

        let (samples, failure) = sampling::sample_every_second(
            &mut server,
            t0,
            args.duration,
            args.warmup,
            &stop,
            &mut csv,
        );
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
        (loads, broken, samples, failure)
    });
    let elapsed = t0.elapsed();
    let interrupted = stop.load(Ordering::Acquire) && sampling_failure.is_none();
    let counters = server.metrics();
    server.stop();
    csv.flush()
        .map_err(harness::io_err(format!("writing {}", csv_path.display())))?;

    let mut mix = Vec::with_capacity(mix::MIX.len());
    for (m, r) in mix::MIX.iter().zip(loads) {
        mix.push(mix::mix_result(m, args.scale, &r?));
    }
    let resources = bounds::evaluate(&samples, args.warmup.as_secs_f64(), &bounds);
    let mut reasons = Vec::new();
    if interrupted {
        reasons.push(format!("interrupted after {:.0} s", elapsed.as_secs_f64()));
    }
    reasons.extend(sampling_failure);
    reasons.extend(resources.reasons.iter().cloned());
    match &counters {
        Ok(c) => reasons.extend(verdict::client_reasons(
            &mix,
            &broken_counts,
            c,
            args,
            elapsed,
        )),
        Err(e) => reasons.push(format!("the server's counters at the end: {e}")),
    }
    let summary = SoakSummary {
        schema_version: SCHEMA_VERSION,
        tool: "tlsbench soak".into(),
        started_utc: harness::utc_rfc3339(started),
        duration_s: args.duration.as_secs_f64(),
        elapsed_s: elapsed.as_secs_f64(),
        warmup_s: args.warmup.as_secs_f64(),
        pass: reasons.is_empty(),
        reasons,
        bounds: BoundsDoc {
            bounds,
            mix_connections: mix::mix_connections(),
            max_stalls: args.max_stalls as u64,
            fd_slack: args.fd_slack,
            statement: vec![
                format!(
                    "server RSS after warm-up <= RSS at warm-up end x {} + {}",
                    bounds.rss_factor,
                    sampling::mib(bounds.rss_slack_kib)
                ),
                format!(
                    "mean server RSS of the last third after warm-up <= the middle third's + {}",
                    sampling::mib(bounds.rss_drift_kib)
                ),
                format!(
                    "server fds after warm-up <= fds at warm-up end + {} (mix connections {} + max stalls {} + slack {})",
                    bounds.fd_headroom,
                    mix::mix_connections(),
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
            stall_limit_s: verdict::stall_limit(args).as_secs_f64(),
            counts: broken_counts,
        },
        server: ServerDoc {
            args: ServerArgs {
                listen: server_addr,
                admin: Some(server_admin),
                ..server_args
            }
            .to_args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
            counters: counters.ok(),
        },
        environment: common::env::Environment::collect(),
    };
    write_summary(&summary, &dir)?;
    print!("{}", verdict::human(&summary, &dir));
    Ok(if summary.pass { 0 } else { 1 })
}

fn write_summary(s: &SoakSummary, dir: &Path) -> Result<(), RunError> {
    harness::write_json(s, &dir.join("summary.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_help_text_states_the_mix_connections_and_the_defaults() {
        // `--help` quotes these numbers: keep them true.
        assert_eq!(mix::mix_connections(), 28);
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
        assert!(
            mix::MIX
                .iter()
                .filter(|m| m.resume == ResumeMode::SessionId)
                .all(|m| m.tls == common::tls::Version::Tls12),
            "session-ID resumption needs TLS 1.2 alone"
        );
    }
}
