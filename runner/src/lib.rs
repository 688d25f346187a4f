//! The benchmark runner: four subcommands over the server and the load generator.
//!
//! - `tlsbench run` ([`run`]): the one-command benchmark matrix. For each scenario of a TOML
//!   matrix it starts the server as a child process pinned to its CPUs (admin endpoint on
//!   loopback), runs the load generator in this process pinned to the other CPUs, reads the
//!   server's CPU time and counters at the start and end of the measured window, and turns
//!   them into CPU per operation on both sides. Results go to `results/<UTC>-<host>/` as
//!   JSON, a markdown table and SVG charts. `--peer` starts nginx or `openssl s_server` in
//!   place of our server; `--target` with `--server-pid`/`--server-cgroup` costs a server
//!   started elsewhere.
//! - `tlsbench run --profile` ([`profile`]): perf samples of each row's measured window,
//!   flame graphs and a component breakdown.
//! - `tlsbench compare` ([`compare`]): the regression gate between two such results files, or
//!   two `tlsbench icount` reports.
//! - `tlsbench soak` ([`soak`]): minutes of mixed and broken clients against one server,
//!   watching its resources for growth.
//! - `tlsbench run --scale 1,2,4` ([`scale`]): the chosen rows once per server core count,
//!   against the linear reference.
//!
//! # Layout
//! - [`scenario`]: the matrix file, read once into typed scenarios.
//! - `matrix`: the repeats of each scenario (measured windows) and their aggregation.
//! - [`probe`]: what a server can honour, asked before each row; rows it cannot are skipped
//!   with the reason, and the certificate it presented labels the row.
//! - [`sanity`]: the checks a run must pass to be complete.
//! - [`floor`]: each TLS row's cost over its plain-HTTP floor row.
//! - `report`: the table, results.json, summary.md and the charts.
//! - [`results`]: the results document (rows = median over repeats, with ranges).
//! - `harness`: what `run` and `soak` share (signals, the executable, certificates, the
//!   child's URL, JSON files, UTC timestamps, file names).
//! - `child`: the server child process and its admin counters.
//! - [`peer`]: `--peer`: nginx or `openssl s_server` started for each row in place of ours.
//! - [`foreign_cpu`]: the CPU of a server that is not ours (`--server-pid`, `--server-cgroup`,
//!   a peer's process tree).
//! - [`compare`]: `tlsbench compare OLD NEW` (run results or instruction counts).
//! - [`charts`]: SVG charts with plotters, and the palette every chart draws from.
//! - [`soak`]: `tlsbench soak`: its good and broken clients, sampling, bounds and verdict.
//! - [`profile`]: `--profile`: perf samples of the measured windows, flame graphs and the
//!   component breakdown.
//! - [`scale`]: `--scale`: the core-scaling sweep, its scale.json and scale.svg.

pub mod charts;
mod child;
pub mod compare;
pub mod floor;
pub mod foreign_cpu;
mod harness;
mod matrix;
pub mod peer;
pub mod probe;
pub mod profile;
mod report;
pub mod results;
pub mod sanity;
pub mod scale;
pub mod scenario;
pub mod soak;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use clap::Args;

use results::RunResults;
use scenario::Matrix;

pub use matrix::client_options;
pub use report::table;

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
    /// The measurements could not be put together.
    #[error("results: {0}")]
    Results(String),
    /// `--profile` could not profile.
    #[error("profile: {0}")]
    Profile(#[from] profile::ProfileError),
    /// A peer could not be found, configured or started.
    #[error(transparent)]
    Peer(#[from] peer::PeerError),
    /// A foreign server's CPU could not be read.
    #[error("server CPU: {0}")]
    ForeignCpu(#[from] foreign_cpu::ForeignCpuError),
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
    /// With --target: the server's CPU is that of these processes, all their threads and
    /// all their descendants (/proc), read at the measured window's edges; CPU per operation
    /// divides by the generator's count.
    #[arg(
        long,
        requires = "target",
        value_delimiter = ',',
        conflicts_with = "server_cgroup"
    )]
    pub server_pid: Vec<u32>,
    /// With --target: the server's CPU is this cgroup v2 directory's cpu.stat usage_usec
    /// (a relative path is under /sys/fs/cgroup).
    #[arg(long, requires = "target")]
    pub server_cgroup: Option<PathBuf>,
    /// Start this TLS server for each row instead of ours, pinned to --server-cpus, from a
    /// generated configuration (the row's certificate, TLS and resumption; /, /bytes/N,
    /// /sink). Its program is looked for in PATH and /usr/sbin (or only in
    /// TLSBENCH_PEER_PATH when set).
    #[arg(long, value_enum, conflicts_with = "target")]
    pub peer: Option<peer::PeerKind>,
    /// Certificates directory (generated when missing).
    #[arg(long, default_value = "certs")]
    pub certs_dir: PathBuf,
    /// Sample this side with Linux perf (cpu-clock) during each measured window: per row,
    /// folded stacks, a flame graph and a component breakdown in results.json and summary.md.
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "server")]
    pub profile: Option<profile::Side>,
    /// With --profile: how perf walks stacks (fp: frame pointers; dwarf: copied stack).
    #[arg(long, value_enum, default_value = "dwarf", requires = "profile")]
    pub call_graph: profile::perf::CallGraph,
    /// The perf executable --profile runs.
    #[arg(long, default_value = "perf", hide = true)]
    pub perf: PathBuf,
    /// Core-scaling sweep: run the rows once per server core count K (the first K CPUs of
    /// --server-cpus; the generator keeps --client-cpus), then write scale.json and scale.svg
    /// (rate and server CPU per operation against K, with the linear reference).
    #[arg(
        long,
        value_delimiter = ',',
        num_args = 1..,
        conflicts_with_all = ["target", "profile"]
    )]
    pub scale: Vec<usize>,
    /// The tlsbench binary to start the server from [default: this executable].
    #[arg(long, hide = true)]
    pub server_exe: Option<PathBuf>,
}

/// Runs `tlsbench run`; returns the exit code (0 complete, 3 incomplete).
pub fn run(args: &RunArgs) -> Result<i32, RunError> {
    // Read before this process confines itself to the client CPUs: `cores` is the machine's
    // usable CPUs, not the generator's share of them.
    let env = common::env::Environment::collect();
    if !args.scale.is_empty() {
        return scale::run(args, &env);
    }
    let (results, _) = run_once(args, &env)?;
    Ok(if results.incomplete.is_some() { 3 } else { 0 })
}

/// One run of the matrix with `args`: its results, written (and its table printed) in the
/// directory returned.
pub(crate) fn run_once(
    args: &RunArgs,
    env: &common::env::Environment,
) -> Result<(RunResults, PathBuf), RunError> {
    let env = env.clone();
    // Found (and its version read) before anything is written: a missing program is refused
    // naming its package.
    let peer = args.peer.map(peer::PeerProgram::find).transpose()?;
    // Read once now so a PID that does not exist or a cgroup without cpu.stat is refused at
    // start, with its name.
    let foreign_cpu =
        foreign_cpu::CpuSource::from_flags(&args.server_pid, args.server_cgroup.as_deref())?;
    let server_cpus = args.target.is_none().then_some(&args.server_cpus);
    let placement = common::cpu::place_generator(server_cpus, &args.client_cpus);
    for warning in placement.map_err(|e| RunError::Args(e.to_string()))? {
        eprintln!("tlsbench run: WARNING: {warning}");
    }
    let started = SystemTime::now();
    let t0 = Instant::now();
    let text = match &args.scenarios {
        Some(p) => std::fs::read_to_string(p)
            .map_err(harness::io_err(format!("reading {}", p.display())))?,
        None => scenario::STANDARD.to_string(),
    };
    let matrix = Matrix::parse(&text)?;
    let quick = args.quick;
    let repeats = args.repeat.unwrap_or(if quick { 1 } else { 3 }).max(1);
    let stop = harness::stop_on_signals()?;
    let exe = harness::server_exe(args.server_exe.as_deref())?;
    if args.target.is_none() {
        harness::ensure_certs(&args.certs_dir, &common::certs::KeyType::ALL)?;
    }

    let mut results = RunResults {
        schema_version: results::SCHEMA_VERSION,
        tool: "tlsbench run".into(),
        command: std::env::args().collect(),
        started_utc: harness::utc_rfc3339(started),
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
        server_software: match (&peer, &args.target) {
            (Some(p), _) => Some(p.version.clone()),
            (None, Some(_)) => None,
            (None, None) => Some(results::our_server_software(&env)),
        },
        server_cpu_source: match (&peer, &foreign_cpu) {
            (Some(p), _) => Some(format!(
                "/proc: the {} peer's process tree",
                p.kind.program()
            )),
            (None, Some(source)) => Some(source.to_string()),
            (None, None) => None,
        },
        environment: env.clone(),
        incomplete: None,
        rows: Vec::new(),
        profiles: Default::default(),
        skipped: Vec::new(),
    };
    let dir = args.out.join(format!(
        "{}-{}",
        harness::utc_stamp(started),
        harness::file_name(&env.hostname, '-', '_')
    ));
    // Checked before the results directory exists: a run that cannot profile writes nothing.
    let profiler = args
        .profile
        .map(|side| {
            // A peer is not ours either: server-side sampling follows our server child only.
            let external = args.target.is_some() || args.peer.is_some();
            profile::Profiler::new(args.perf.clone(), side, args.call_graph, external, &dir)
        })
        .transpose()?;
    std::fs::create_dir_all(&dir)
        .map_err(harness::io_err(format!("creating {}", dir.display())))?;
    println!(
        "tlsbench run: {} scenarios × {repeats} repeat(s){}, server on CPUs {:?}, generator on CPUs {:?}; results in {}",
        matrix.scenarios.len(),
        if quick { " (quick)" } else { "" },
        args.server_cpus.0,
        args.client_cpus.0,
        dir.display()
    );

    let outcome = matrix::run_matrix(
        &matrix,
        args,
        &exe,
        matrix::Foreign {
            peer: peer.as_ref(),
            cpu: foreign_cpu.as_ref(),
        },
        quick,
        repeats,
        &stop,
        &mut results,
        profiler.as_ref(),
    );
    floor::apply(&matrix, &mut results.rows);
    if let Err(e) = &outcome {
        results.incomplete = Some(e.to_string());
    } else if stop.load(Ordering::Acquire) {
        results.incomplete = Some("interrupted".into());
    } else {
        let problems = sanity::check(&matrix, &results);
        if !problems.is_empty() {
            results.incomplete = Some(format!("sanity checks failed: {}", problems.join("; ")));
        }
    }
    results.duration_s = t0.elapsed().as_secs_f64();
    report::write_results(&results, &dir)?;
    print!("{}", table(&results));
    println!(
        "{} rows{} in {:.0} s; results: {}",
        results.rows.len(),
        match results.skipped.len() {
            0 => String::new(),
            n => format!(" ({n} skipped: the server cannot honour them; listed above)"),
        },
        results.duration_s,
        dir.display()
    );
    if let Some(why) = &results.incomplete {
        eprintln!("tlsbench run: INCOMPLETE: {why}");
    }
    Ok((results, dir))
}
