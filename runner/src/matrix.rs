//! The matrix of `tlsbench run`: for each scenario, a server child (unless `--target`), the
//! repeats (each one measured window of the load generator, bracketed by the server's
//! counters), and their aggregation into one [`Row`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use loadgen::verify::Trust;
use loadgen::{LoadOptions, Target};

use crate::child::{Counters, ServerChild};
use crate::results::{Kind, RepeatRecord, Row, RunResults, Stat};
use crate::scenario::{Body, Matrix, Scenario};
use crate::{RunArgs, RunError, harness, report};

/// One scrape of the server's counters and when it returned, or why it failed.
type Scrape = Result<(Counters, Instant), String>;

fn scrape(server: &ServerChild) -> Scrape {
    server
        .counters()
        .map(|c| (c, Instant::now()))
        .map_err(|e| e.to_string())
}

/// The server's counters at the start of the measured window, read when warm-up ends.
struct Window<'a> {
    server: Option<&'a ServerChild>,
    before: Option<Scrape>,
}

impl loadgen::Observer for Window<'_> {
    fn measuring(&mut self) {
        if let Some(s) = self.server {
            self.before = Some(scrape(s));
        }
    }
}

/// The server's side of one measured window: its counters' change between the scrapes at
/// the window's edges and the seconds between them. A failed or missing scrape is an error:
/// a local row without the server's numbers is no measurement.
fn server_window(before: Option<Scrape>, after: Scrape) -> Result<(Counters, f64), String> {
    let (b, tb) = before
        .ok_or("the measured window never started, so the server was not read at its start")?
        .map_err(|e| format!("reading the server's counters at the window's start: {e}"))?;
    let (a, ta) =
        after.map_err(|e| format!("reading the server's counters at the window's end: {e}"))?;
    Ok((a.since(&b), ta.saturating_duration_since(tb).as_secs_f64()))
}

/// What one repeat measured.
struct Repeat {
    record: RepeatRecord,
    p50: f64,
    p99: f64,
    p999: f64,
    server_util: Option<f64>,
    client_share: f64,
    full: u64,
    resumed: u64,
    full_hrr: u64,
    errors: u64,
    hdr: String,
}

fn load_options(
    s: &Scenario,
    m: &Matrix,
    args: &RunArgs,
    quick: bool,
    target: &Target,
    trust: Trust,
) -> LoadOptions {
    let (duration, warmup) = m.timing(quick);
    let mut target = target.clone();
    let (method, upload) = match s.body {
        Some(Body::Download(n)) => {
            target.path = format!("/bytes/{n}");
            ("GET", 0)
        }
        Some(Body::Upload(n)) => {
            target.path = "/sink".into();
            ("POST", n)
        }
        None => ("GET", 0),
    };
    let mut opts = LoadOptions::new(target, trust);
    opts.threads = args.client_cpus.0.len().max(1);
    opts.connections = s.connections;
    opts.new_conn = s.kind == Kind::Handshake;
    opts.method = method.into();
    opts.upload = upload;
    opts.tls.versions = s.tls.clone();
    opts.tls.suites = s.cipher_suites.clone();
    opts.tls.groups = s.kx_groups.clone();
    opts.tls.resume = s.resume;
    opts.duration = Some(duration);
    opts.warmup = warmup;
    opts.pin_cpus = args.client_cpus.0.clone();
    opts
}

fn ops_of(kind: Kind, c: &loadgen::stats::Counters) -> f64 {
    match kind {
        Kind::Handshake => c.handshakes() as f64,
        Kind::Requests => c.requests as f64,
        Kind::Throughput => (c.body_bytes_in + c.body_bytes_out) as f64 / 1e6,
    }
}

fn server_ops(kind: Kind, d: &Counters) -> f64 {
    match kind {
        Kind::Handshake => d.handshakes as f64,
        Kind::Requests => d.requests as f64,
        Kind::Throughput => d.bytes as f64 / 1e6,
    }
}

/// Operations of scenario `s` that may be under way at a window's edge: one per connection
/// (for throughput, a whole body per connection).
fn in_flight_ops(s: &Scenario) -> f64 {
    let conns = s.connections as f64;
    match (s.kind, s.body) {
        (Kind::Throughput, Some(Body::Download(n) | Body::Upload(n))) => conns * n as f64 / 1e6,
        _ => conns,
    }
}

fn one_repeat(
    s: &Scenario,
    opts: &LoadOptions,
    server: Option<&ServerChild>,
    server_cpus: usize,
    stop: &AtomicBool,
) -> Result<(Repeat, Option<String>), RunError> {
    let mut window = Window {
        server,
        before: None,
    };
    let r = loadgen::run(opts, &mut window, stop)?;
    let c = &r.measured.counters;
    let secs = r.elapsed.as_secs_f64().max(1e-9);
    let ops = ops_of(s.kind, c);
    let cpu_us = r.measured.cpu.total().as_secs_f64() * 1e6;
    let (server_ops, server_cpu_us, server_util) = match server {
        Some(child) => {
            let (d, wall) = server_window(window.before, scrape(child))
                .map_err(|why| RunError::Server(format!("scenario '{}': {why}", s.name)))?;
            let sops = server_ops(s.kind, &d);
            (
                Some(sops),
                (sops > 0.0).then(|| d.cpu_s * 1e6 / sops),
                Some(d.cpu_s / (wall.max(1e-9) * server_cpus.max(1) as f64)),
            )
        }
        None => (None, None, None),
    };
    let q = |p: f64| {
        if r.measured.request.is_empty() {
            0.0
        } else {
            r.measured.request.value_at_percentile(p) as f64
        }
    };
    Ok((
        Repeat {
            record: RepeatRecord {
                rate: ops / secs,
                client_ops: ops,
                server_ops,
                in_flight_ops: in_flight_ops(s),
                client_cpu_us: if ops > 0.0 { cpu_us / ops } else { 0.0 },
                server_cpu_us,
            },
            p50: q(50.0),
            p99: q(99.0),
            p999: q(99.9),
            server_util,
            client_share: r.measured.max_worker_cpu_share,
            full: c.full,
            resumed: c.resumed,
            full_hrr: c.full_hrr,
            errors: c.errors_total(),
            hdr: loadgen::report::encode_hist(&r.measured.request),
        },
        r.incomplete,
    ))
}

fn aggregate(s: &Scenario, reps: &[Repeat], external: bool) -> Row {
    let stat = |f: &dyn Fn(&Repeat) -> f64| Stat::of(&reps.iter().map(f).collect::<Vec<_>>());
    let mut latency_us = BTreeMap::new();
    latency_us.insert("p50".to_string(), stat(&|r| r.p50));
    latency_us.insert("p99".to_string(), stat(&|r| r.p99));
    latency_us.insert("p99.9".to_string(), stat(&|r| r.p999));
    let server_vals: Vec<f64> = reps.iter().filter_map(|r| r.record.server_cpu_us).collect();
    let mut handshakes = BTreeMap::new();
    let (full, resumed, hrr) = reps.iter().fold((0, 0, 0), |(f, r, h), x| {
        (f + x.full, r + x.resumed, h + x.full_hrr)
    });
    handshakes.insert("full".to_string(), full);
    handshakes.insert("resumed".to_string(), resumed);
    handshakes.insert("full_hrr".to_string(), hrr);
    let total = full + resumed + hrr;
    let server_sat = reps
        .iter()
        .filter_map(|r| r.server_util)
        .fold(0.0f64, f64::max)
        >= 0.9;
    let client_sat = reps.iter().map(|r| r.client_share).fold(0.0f64, f64::max) >= 0.9;
    Row {
        name: s.name.clone(),
        kind: s.kind,
        rate: stat(&|r| r.record.rate),
        latency_us,
        server_cpu_us: (!external && !server_vals.is_empty()).then(|| Stat::of(&server_vals)),
        client_cpu_us: stat(&|r| r.record.client_cpu_us),
        handshakes,
        resumed_share: (total > 0).then(|| resumed as f64 / total as f64),
        errors: reps.iter().map(|r| r.errors).sum(),
        saturated: match (server_sat, client_sat) {
            (true, true) => "both",
            (true, false) => "server",
            (false, true) => "client",
            (false, false) => "neither",
        }
        .into(),
        latency_hdr: reps.last().map(|r| r.hdr.clone()).unwrap_or_default(),
        repeats: reps.len(),
        per_repeat: reps.iter().map(|r| r.record.clone()).collect(),
    }
}

pub(crate) fn run_matrix(
    matrix: &Matrix,
    args: &RunArgs,
    exe: &Path,
    quick: bool,
    repeats: usize,
    stop: &AtomicBool,
    results: &mut RunResults,
) -> Result<(), RunError> {
    for s in &matrix.scenarios {
        if stop.load(Ordering::Acquire) {
            break;
        }
        let (server, target, trust) = match &args.target {
            Some(url) => {
                let t = Target::new(url, None, args.connect_to.as_deref())?;
                let trust = args.cacert.clone().map_or(Trust::Platform, Trust::CaFile);
                (None, t, trust)
            }
            None => {
                let child = ServerChild::start(exe, &args.certs_dir, s, &args.server_cpus.0)?;
                let t = harness::child_target(&child)?;
                let ca = common::certs::paths(&args.certs_dir, s.cert).ca;
                (Some(child), t, Trust::CaFile(ca))
            }
        };
        let opts = load_options(s, matrix, args, quick, &target, trust);
        let mut reps = Vec::with_capacity(repeats);
        for _ in 0..repeats {
            if stop.load(Ordering::Acquire) {
                break;
            }
            let (rep, incomplete) =
                one_repeat(s, &opts, server.as_ref(), args.server_cpus.0.len(), stop)?;
            if stop.load(Ordering::Acquire) {
                // Cut short by Ctrl-C: not a measurement of the scenario; rows before it stay.
                break;
            }
            if let Some(why) = incomplete
                && why != "interrupted"
            {
                eprintln!("tlsbench run: scenario '{}': {why}", s.name);
            }
            reps.push(rep);
        }
        if let Some(child) = server {
            child.stop();
        }
        if reps.is_empty() || stop.load(Ordering::Acquire) {
            break;
        }
        let row = aggregate(s, &reps, args.target.is_some());
        println!(
            "  {:<42} {:>12} {}  server {} client {} µs/{}",
            row.name,
            report::fmt_stat(&row.rate, 1),
            row.kind.rate_unit(),
            row.server_cpu_us
                .as_ref()
                .map_or("-".into(), |s| format!("{:.1}", s.median)),
            format_args!("{:.1}", row.client_cpu_us.median),
            row.kind.op_unit()
        );
        results.rows.push(row);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn counters(cpu_s: f64, handshakes: u64) -> Counters {
        Counters {
            cpu_s,
            handshakes,
            ..Counters::default()
        }
    }

    #[test]
    fn a_failed_or_missing_admin_scrape_fails_the_window() {
        let t = Instant::now();
        let good = || -> Scrape { Ok((counters(1.0, 10), t)) };
        let (d, _) = server_window(Some(good()), Ok((counters(3.0, 30), t))).unwrap();
        assert_eq!((d.cpu_s, d.handshakes), (2.0, 20));

        let refused = || -> Scrape { Err("connection refused".into()) };
        let e = server_window(Some(refused()), good()).unwrap_err();
        assert!(
            e.contains("start") && e.contains("connection refused"),
            "{e}"
        );
        let e = server_window(Some(good()), refused()).unwrap_err();
        assert!(e.contains("end") && e.contains("connection refused"), "{e}");
        let e = server_window(None, good()).unwrap_err();
        assert!(e.contains("never started"), "{e}");
    }

    #[test]
    fn connections_in_flight_are_counted_in_the_rows_operation() {
        let m = Matrix::parse(
            "[[scenario]]\nname = \"h\"\nkind = \"handshake\"\ntls = \"1.3\"\nconnections = 8\n\
             [[scenario]]\nname = \"d\"\nkind = \"throughput\"\ntls = \"1.3\"\nconnections = 4\ndownload = 500000\n",
        )
        .unwrap();
        assert_eq!(in_flight_ops(&m.scenarios[0]), 8.0);
        assert_eq!(in_flight_ops(&m.scenarios[1]), 2.0);
    }
}
