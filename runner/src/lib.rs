//! `tlsbench run`: the one-command benchmark matrix. For each scenario of a TOML matrix it
//! starts the server as a child process pinned to its CPUs (admin endpoint on loopback), runs
//! the load generator in this process pinned to the other CPUs, reads the server's CPU time
//! and counters at the start and end of the measured window, and turns them into CPU per
//! operation on both sides. Results go to `results/<UTC>-<host>/` as JSON, a markdown table
//! and SVG charts; `tlsbench compare` gates regressions between two such files.
//!
//! # Layout
//! - [`scenario`]: the matrix file, parsed and checked up front.
//! - [`results`]: the results document (rows = median over repeats, with ranges).
//! - `child`: the server child process and its admin counters.
//! - [`compare`]: `tlsbench compare OLD NEW`.
//! - [`charts`]: SVG charts with plotters.

pub mod charts;
mod child;
pub mod compare;
pub mod results;
pub mod scenario;
pub mod soak;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime};

use clap::Args;
use loadgen::verify::Trust;
use loadgen::{LoadOptions, Target};

use child::{Counters, ServerChild};
use results::{Kind, Row, RunResults, Stat};
use scenario::{Body, Matrix, Scenario};

/// Why a run could not be done.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The flags contradict each other.
    #[error("{0}")]
    Args(String),
    /// The scenario file is wrong.
    #[error("scenarios: {0}")]
    Scenarios(String),
    /// The server child failed.
    #[error("server: {0}")]
    Server(String),
    /// The load generator refused its options.
    #[error("load: {0}")]
    Load(#[from] loadgen::LoadError),
    /// A file or system call failed.
    #[error("{what}: {source}")]
    Io {
        /// What we were doing.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Flags of `tlsbench run`.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Short durations and one repeat: a smoke run for CI (under 90 s here).
    #[arg(long)]
    pub quick: bool,
    /// The scenario matrix (TOML) [default: the built-in scenarios/standard.toml].
    #[arg(long)]
    pub scenarios: Option<PathBuf>,
    /// Where the results directory is created.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// CPUs of the server (one worker per CPU).
    #[arg(long, default_value = "0")]
    pub server_cpus: common::cpu::CpuList,
    /// CPUs of the load generator (one worker per CPU).
    #[arg(long, default_value = "1")]
    pub client_cpus: common::cpu::CpuList,
    /// Repeats per scenario, reported as median and range [default: 3, 1 with --quick].
    #[arg(long)]
    pub repeat: Option<usize>,
    /// Run only the client side against this server (e.g. nginx): rows have no server CPU.
    #[arg(long)]
    pub target: Option<String>,
    /// With --target: trust this CA (PEM) instead of the platform's roots.
    #[arg(long, requires = "target")]
    pub cacert: Option<PathBuf>,
    /// With --target: dial this HOST:PORT instead of the URL's host.
    #[arg(long, requires = "target")]
    pub connect_to: Option<String>,
    /// Certificates directory (generated when missing).
    #[arg(long, default_value = "certs")]
    pub certs_dir: PathBuf,
    /// The tlsbench binary to start the server from [default: this executable].
    #[arg(long, hide = true)]
    pub server_exe: Option<PathBuf>,
}

/// Counters at the start of the measured window, read when warm-up ends.
struct Window<'a> {
    server: Option<&'a ServerChild>,
    before: Option<(Counters, Instant)>,
}

impl loadgen::Observer for Window<'_> {
    fn measuring(&mut self) {
        if let Some(s) = self.server {
            self.before = s.counters().ok().map(|c| (c, Instant::now()));
        }
    }
}

/// What one repeat measured.
struct Repeat {
    rate: f64,
    p50: f64,
    p99: f64,
    p999: f64,
    server_cpu_us: Option<f64>,
    server_util: Option<f64>,
    client_cpu_us: f64,
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
    let after = server
        .and_then(|s| s.counters().ok())
        .map(|c| (c, Instant::now()));
    let c = &r.measured.counters;
    let secs = r.elapsed.as_secs_f64().max(1e-9);
    let ops = ops_of(s.kind, c);
    let cpu_us = r.measured.cpu.total().as_secs_f64() * 1e6;
    let (server_cpu_us, server_util) = match (window.before, after) {
        (Some((b, tb)), Some((a, ta))) => {
            let d = a.since(&b);
            let sops = server_ops(s.kind, &d);
            let wall = ta.saturating_duration_since(tb).as_secs_f64().max(1e-9);
            (
                (sops > 0.0).then(|| d.cpu_s * 1e6 / sops),
                Some(d.cpu_s / (wall * server_cpus.max(1) as f64)),
            )
        }
        _ => (None, None),
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
            rate: ops / secs,
            p50: q(50.0),
            p99: q(99.0),
            p999: q(99.9),
            server_cpu_us,
            server_util,
            client_cpu_us: if ops > 0.0 { cpu_us / ops } else { 0.0 },
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
    let server_vals: Vec<f64> = reps.iter().filter_map(|r| r.server_cpu_us).collect();
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
        rate: stat(&|r| r.rate),
        latency_us,
        server_cpu_us: (!external && !server_vals.is_empty()).then(|| Stat::of(&server_vals)),
        client_cpu_us: stat(&|r| r.client_cpu_us),
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
    }
}

fn fmt_stat(s: &Stat, digits: usize) -> String {
    if (s.max - s.min).abs() < f64::EPSILON {
        format!("{:.*}", digits, s.median)
    } else {
        format!(
            "{:.*} [{:.*}–{:.*}]",
            digits, s.median, digits, s.min, digits, s.max
        )
    }
}

/// The results table (markdown), as printed and as summary.md holds it.
pub fn table(r: &RunResults) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "| scenario | rate | p50 µs | p99 µs | p99.9 µs | server CPU µs/op | client CPU µs/op | full / resumed / HRR | resumed | errors | saturated |"
    );
    let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|");
    for row in &r.rows {
        let lat = |k: &str| {
            row.latency_us
                .get(k)
                .map_or("-".into(), |s| format!("{:.0}", s.median))
        };
        let h = |k: &str| row.handshakes.get(k).copied().unwrap_or(0);
        let _ = writeln!(
            o,
            "| {} | {} {} | {} | {} | {} | {} | {} /{} | {} / {} / {} | {} | {} | {} |",
            row.name,
            fmt_stat(&row.rate, if row.kind == Kind::Throughput { 1 } else { 0 }),
            row.kind.rate_unit(),
            lat("p50"),
            lat("p99"),
            lat("p99.9"),
            row.server_cpu_us
                .as_ref()
                .map_or("- (not ours)".into(), |s| format!(
                    "{} /{}",
                    fmt_stat(s, 1),
                    row.kind.op_unit()
                )),
            fmt_stat(&row.client_cpu_us, 1),
            row.kind.op_unit(),
            h("full"),
            h("resumed"),
            h("full_hrr"),
            row.resumed_share
                .map_or("-".into(), |s| format!("{:.1}%", s * 100.0)),
            row.errors,
            row.saturated
        );
    }
    o
}

/// Runs `tlsbench run`; returns the exit code (0 complete, 3 incomplete).
pub fn run(args: &RunArgs) -> Result<i32, RunError> {
    let started = SystemTime::now();
    let t0 = Instant::now();
    let text = match &args.scenarios {
        Some(p) => std::fs::read_to_string(p).map_err(|source| RunError::Io {
            what: format!("reading {}", p.display()),
            source,
        })?,
        None => scenario::STANDARD.to_string(),
    };
    let matrix = Matrix::parse(&text)?;
    let quick = args.quick;
    let repeats = args.repeat.unwrap_or(if quick { 1 } else { 3 }).max(1);
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(|source| RunError::Io {
            what: "installing signal handlers".into(),
            source,
        })?;
    }
    let exe = match &args.server_exe {
        Some(p) => p.clone(),
        None => std::env::current_exe().map_err(|source| RunError::Io {
            what: "finding this executable".into(),
            source,
        })?,
    };
    if args.target.is_none() {
        common::certs::ensure(&args.certs_dir, &common::certs::KeyType::ALL)
            .map_err(|e| RunError::Server(format!("certificates: {e}")))?;
    }

    let env = common::env::Environment::collect();
    let mut results = RunResults {
        schema_version: results::SCHEMA_VERSION,
        tool: "tlsbench run".into(),
        started_utc: common::env::utc_rfc3339(started),
        duration_s: 0.0,
        quick,
        target: args.target.clone(),
        server_cpus: if args.target.is_some() {
            Vec::new()
        } else {
            args.server_cpus.0.clone()
        },
        client_cpus: args.client_cpus.0.clone(),
        scenarios_toml: text,
        environment: env.clone(),
        incomplete: None,
        rows: Vec::new(),
    };
    let dir = args.out.join(format!(
        "{}-{}",
        common::env::utc_stamp(started),
        sanitize(&env.hostname)
    ));
    std::fs::create_dir_all(&dir).map_err(|source| RunError::Io {
        what: format!("creating {}", dir.display()),
        source,
    })?;
    println!(
        "tlsbench run: {} scenarios × {repeats} repeat(s){}, server on CPUs {:?}, generator on CPUs {:?}; results in {}",
        matrix.scenarios.len(),
        if quick { " (quick)" } else { "" },
        args.server_cpus.0,
        args.client_cpus.0,
        dir.display()
    );

    let outcome = run_matrix(&matrix, args, &exe, quick, repeats, &stop, &mut results);
    if let Err(e) = &outcome {
        results.incomplete = Some(e.to_string());
    } else if stop.load(Ordering::Acquire) {
        results.incomplete = Some("interrupted".into());
    } else {
        let problems = sanity(&matrix, &results);
        if !problems.is_empty() {
            results.incomplete = Some(format!("sanity checks failed: {}", problems.join("; ")));
        }
    }
    results.duration_s = t0.elapsed().as_secs_f64();
    write_results(&results, &dir)?;
    print!("{}", table(&results));
    println!(
        "{} rows in {:.0} s; results: {}",
        results.rows.len(),
        results.duration_s,
        dir.display()
    );
    if let Some(why) = &results.incomplete {
        eprintln!("tlsbench run: INCOMPLETE: {why}");
        return Ok(3);
    }
    Ok(0)
}

/// Shape and sanity, never speed: every scenario has a row with operations and no errors,
/// and every scenario that asked for resumption resumed at least 99% of its handshakes.
pub fn sanity(matrix: &Matrix, r: &RunResults) -> Vec<String> {
    let mut problems = Vec::new();
    for s in &matrix.scenarios {
        let Some(row) = r.rows.iter().find(|row| row.name == s.name) else {
            problems.push(format!("'{}': no row", s.name));
            continue;
        };
        if row.rate.median <= 0.0 {
            problems.push(format!("'{}': no operations measured", s.name));
        }
        if row.errors > 0 {
            problems.push(format!("'{}': {} errors", s.name, row.errors));
        }
        let asked = s.resumes();
        match (asked, row.resumed_share) {
            (true, Some(share)) if share < 0.99 => {
                problems.push(format!("'{}': only {:.2}% resumed", s.name, share * 100.0));
            }
            (true, None) => problems.push(format!("'{}': no handshakes", s.name)),
            (false, Some(share)) if s.kind == Kind::Handshake && share > 0.0 => {
                problems.push(format!(
                    "'{}': {:.2}% resumed without resumption",
                    s.name,
                    share * 100.0
                ));
            }
            _ => {}
        }
    }
    problems
}

fn sanitize(host: &str) -> String {
    host.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn run_matrix(
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
                let port = child.addr.port();
                let t = Target::new(
                    &format!("https://bank32.com:{port}/"),
                    None,
                    Some(&child.addr.to_string()),
                )?;
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
            fmt_stat(&row.rate, 1),
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

fn write_results(r: &RunResults, dir: &Path) -> Result<(), RunError> {
    let io = |what: String| move |source| RunError::Io { what, source };
    let json = serde_json::to_string_pretty(r).map_err(|e| RunError::Io {
        what: "encoding results".into(),
        source: std::io::Error::other(e),
    })?;
    std::fs::write(dir.join("results.json"), json + "\n")
        .map_err(io("writing results.json".into()))?;
    let mut md = String::new();
    let _ = writeln!(md, "# tlsbench run — {}\n", r.started_utc);
    let e = &r.environment;
    let _ = writeln!(
        md,
        "{} ({} cores), {}, kernel {}, {}; tlsbench {} at {}; {}; server CPUs {:?}, generator CPUs {:?}; {:.0} s{}\n",
        e.cpu_model,
        e.cores,
        e.os,
        e.kernel,
        e.rustc,
        e.tlsbench_version,
        e.git_revision,
        if r.quick { "quick mode" } else { "full mode" },
        r.server_cpus,
        r.client_cpus,
        r.duration_s,
        r.incomplete
            .as_ref()
            .map_or(String::new(), |w| format!("; INCOMPLETE: {w}"))
    );
    md.push_str(&table(r));
    md.push_str("\nRates and CPU are medians over repeats, [min–max] when they differ. CPU µs/op: the side's CPU time over the measured window ÷ its own count of operations (server: from its admin counters). MB = 10^6 bytes.\n");
    std::fs::write(dir.join("summary.md"), md).map_err(io("writing summary.md".into()))?;
    charts::write_charts(r, dir).map_err(|e| RunError::Io {
        what: "writing charts".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(())
}
