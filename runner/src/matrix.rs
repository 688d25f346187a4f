//! The matrix of `tlsbench run`: for each scenario, a server child (ours, or a `--peer`;
//! none with `--target`), the repeats (each one measured window of the load generator,
//! bracketed by the server's counters, or a foreign server's CPU), and their aggregation into
//! one [`Row`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::certs::KeyType;
use loadgen::verify::Trust;
use loadgen::{Hist, LoadOptions, Target};
use rustls::NamedGroup;
use rustls::crypto::SupportedKxGroup;

use crate::child::{ServerChild, ServerCounters};
use crate::foreign_cpu::CpuSource;
use crate::peer::{Peer, PeerProgram, Site};
use crate::probe::{self, RowProbe};
use crate::profile::{self, Profiler, RowStacks};
use crate::results::{
    BytesPerHandshake, EarlyDataRecord, HandshakeBytes, HandshakeBytesRecord, OpsFrom,
    RepeatRecord, Row, RowKind, RunResults, SessionCacheRecord, Stat,
};
use crate::scenario::{Body, Matrix, Scenario};
use crate::{RunArgs, RunError, harness, report};

/// One scrape of the server's counters and when it returned, or why it failed.
type Scrape = Result<(ServerCounters, Instant), String>;

fn scrape(server: &ServerChild) -> Scrape {
    server
        .counters()
        .map(|c| (c, Instant::now()))
        .map_err(|e| e.to_string())
}

/// One read of a foreign server's CPU and when it returned, or why it failed.
type ForeignScrape = Result<(Duration, Instant), String>;

fn read_foreign(source: &CpuSource) -> ForeignScrape {
    source
        .read()
        .map(|cpu| (cpu, Instant::now()))
        .map_err(|e| e.to_string())
}

/// A server that is not ours: the peer started for each row, and where a `--target`'s CPU
/// is read from.
#[derive(Clone, Copy, Default)]
pub(crate) struct Foreign<'a> {
    /// `--peer`: started for each row in place of ours.
    pub peer: Option<&'a PeerProgram>,
    /// `--server-pid` / `--server-cgroup` with `--target`.
    pub cpu: Option<&'a CpuSource>,
}

/// A foreign server's CPU during one repeat: where it is read from, and its CPUs when known
/// (a peer's; a `--target`'s are not ours to know), for its utilisation.
#[derive(Clone, Copy)]
struct ForeignCpu<'a> {
    source: &'a CpuSource,
    cores: Option<usize>,
}

/// The server's counters (or a foreign server's CPU) at the start of the measured window,
/// read when warm-up ends (and with `--profile`, perf started then).
struct Window<'a> {
    server: Option<&'a ServerChild>,
    before: Option<Scrape>,
    foreign: Option<ForeignCpu<'a>>,
    foreign_before: Option<ForeignScrape>,
    profiler: Option<&'a Profiler>,
    profile: Option<profile::Window>,
}

impl loadgen::Observer for Window<'_> {
    fn measuring(&mut self) {
        if let Some(s) = self.server {
            self.before = Some(scrape(s));
        }
        if let Some(f) = self.foreign {
            self.foreign_before = Some(read_foreign(f.source));
        }
        if let Some(p) = self.profiler {
            self.profile = Some(p.start(self.server.map(|s| s.pid)));
        }
    }
}

/// The server's side of one measured window: its counters' change between the scrapes at
/// the window's edges and the seconds between them. A failed or missing scrape is an error:
/// a local row without the server's numbers is no measurement.
fn server_window(before: Option<Scrape>, after: Scrape) -> Result<(ServerCounters, f64), String> {
    let (b, tb) = before
        .ok_or("the measured window never started, so the server was not read at its start")?
        .map_err(|e| format!("reading the server's counters at the window's start: {e}"))?;
    let (a, ta) =
        after.map_err(|e| format!("reading the server's counters at the window's end: {e}"))?;
    Ok((a.since(&b), ta.saturating_duration_since(tb).as_secs_f64()))
}

/// A foreign server's side of one measured window: its CPU between the reads at the window's
/// edges and the seconds between them. As for ours, a failed or missing read is an error.
fn foreign_window(
    source: &CpuSource,
    before: Option<ForeignScrape>,
    after: ForeignScrape,
) -> Result<(Duration, f64), String> {
    let (b, tb) = before
        .ok_or("the measured window never started, so the server's CPU was not read at its start")?
        .map_err(|e| format!("reading the server's CPU at the window's start: {e}"))?;
    let (a, ta) =
        after.map_err(|e| format!("reading the server's CPU at the window's end: {e}"))?;
    let cpu = source.since(b, a).map_err(|e| e.to_string())?;
    Ok((cpu, ta.saturating_duration_since(tb).as_secs_f64()))
}

/// What one repeat measured.
struct Repeat {
    record: RepeatRecord,
    /// Whole-operation latency, µs: merged with the other repeats' for the row.
    hist: Hist,
    /// TLS bytes per handshake, (client to server, server to client): merged likewise.
    handshake_bytes: (Hist, Hist),
    server_util: Option<f64>,
    client_share: f64,
    full: u64,
    resumed: u64,
    full_hrr: u64,
    resumed_hrr: u64,
    errors: u64,
}

pub(crate) fn load_options(
    s: &Scenario,
    m: &Matrix,
    args: &RunArgs,
    quick: bool,
    target: &Target,
    trust: Trust,
) -> LoadOptions {
    let (duration, warmup) = m.timing(quick);
    let mut opts = client_options(s, target, trust);
    opts.threads = args.client_cpus.0.len().max(1);
    opts.duration = Some(duration);
    opts.warmup = warmup;
    opts.pin_cpus = args.client_cpus.0.clone();
    opts
}

/// What scenario `s` asks of the generator against `target`: its route, method and body,
/// connections, versions, suites, groups (`client_groups`) and resumption; the run adds
/// durations and CPUs. The probe asks the server with these same options.
pub fn client_options(s: &Scenario, target: &Target, trust: Trust) -> LoadOptions {
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
    opts.connections = s.connections;
    opts.new_conn = s.kind == RowKind::Handshake;
    opts.method = method.into();
    opts.upload = upload;
    if !s.plain {
        opts.tls.versions = s.tls.clone();
    }
    opts.tls.provider = s.provider;
    opts.tls.suites = s.cipher_suites.clone();
    opts.tls.groups = client_groups(s);
    opts.tls.resume = s.resume;
    opts.tls.cert_compression = s.cert_compression.clone();
    opts.tls.early_data = s.early_data;
    opts
}

/// The generated client identity a mutual-TLS row sends (its `client_cert`, from the certs
/// directory), if it sends one.
pub fn client_identity(
    s: &Scenario,
    certs: &Path,
) -> Result<Option<loadgen::client_cert::ClientIdentity>, RunError> {
    let Some(kt) = s.mutual.and_then(|m| m.cert) else {
        return Ok(None);
    };
    let p = common::certs::client_paths(certs, kt);
    let provider = common::tls::provider(&[], &[]);
    loadgen::client_cert::ClientIdentity::load(&p.cert, &p.key, &provider)
        .map(Some)
        .map_err(|e| RunError::Scenarios(format!("scenario '{}': {e}", s.name)))
}

/// The groups the generator offers for `s`: the row's, and on a TLS 1.2 row with an ECDSA
/// certificate also that certificate's curve, last. TLS 1.2 has no list of signature curves
/// of its own: a server may use an ECDSA certificate only on a curve the client offered as a
/// group (RFC 8422 §5.1), and OpenSSL, so nginx, fails the handshake (handshake_failure) when
/// a P-256 certificate meets an offer of X25519 alone. Last, so the row's group stays the
/// client's first choice (the probe skips the row if the server picks the curve instead);
/// our server, configured with the row's groups only, never picks it.
fn client_groups(s: &Scenario) -> Vec<&'static dyn SupportedKxGroup> {
    let mut groups = s.kx_groups.clone();
    let curve = match s.cert {
        KeyType::EcdsaP256 => NamedGroup::secp256r1,
        KeyType::EcdsaP384 => NamedGroup::secp384r1,
        _ => return groups,
    };
    if groups.is_empty()
        || !s.tls.contains(&common::tls::Version::Tls12)
        || groups.iter().any(|g| g.name() == curve)
    {
        return groups;
    }
    // Every provider tlsbench builds has both NIST curves; were one missing, the row's own
    // groups are offered and the probe names the failure.
    if let Some(g) = common::tls::all_groups().iter().find(|g| g.name() == curve) {
        groups.push(*g);
    }
    groups
}

/// The operations of scenario `s` in one side's counts: handshakes, requests or MB (10^6
/// bytes) by the row's kind. A plain row's "handshake" is its new connection, counted by its
/// one request.
fn operations(s: &Scenario, handshakes: u64, requests: u64, bytes: u64) -> f64 {
    match s.kind {
        RowKind::Handshake if s.plain => requests as f64,
        RowKind::Handshake => handshakes as f64,
        RowKind::Requests => requests as f64,
        RowKind::Throughput => bytes as f64 / 1e6,
    }
}

/// Operations of scenario `s` that may be under way at a window's edge: one per connection
/// (for throughput, a whole body per connection).
fn in_flight_ops(s: &Scenario) -> f64 {
    let conns = s.connections as f64;
    match (s.kind, s.body) {
        (RowKind::Throughput, Some(Body::Download(n) | Body::Upload(n))) => conns * n as f64 / 1e6,
        _ => conns,
    }
}

fn one_repeat(
    s: &Scenario,
    opts: &LoadOptions,
    server: Option<&ServerChild>,
    foreign: Option<ForeignCpu<'_>>,
    server_cpus: usize,
    stop: &AtomicBool,
    profiler: Option<(&Profiler, &mut RowStacks)>,
) -> Result<(Repeat, Option<String>), RunError> {
    let mut window = Window {
        server,
        before: None,
        foreign,
        foreign_before: None,
        profiler: profiler.as_ref().map(|(p, _)| *p),
        profile: None,
    };
    let r = loadgen::run(opts, &mut window, stop)?;
    // Interrupted: no profile (dropping the window's recordings stops perf).
    if let Some((p, stacks)) = profiler
        && !stop.load(Ordering::Acquire)
    {
        let w = window.profile.take().unwrap_or_default();
        p.stop(w, stacks)?;
    }
    let c = &r.measured.counters;
    let secs = r.elapsed.as_secs_f64().max(1e-9);
    let ops = operations(
        s,
        c.handshakes(),
        c.requests,
        c.body_bytes_in + c.body_bytes_out,
    );
    let cpu_us = r.measured.cpu.total().as_secs_f64() * 1e6;
    let (hs_out, hs_in) = (
        &r.measured.handshake_bytes_out,
        &r.measured.handshake_bytes_in,
    );
    let mut handshake_bytes = HandshakeBytesRecord {
        client_out: c.handshake_bytes_out,
        client_in: c.handshake_bytes_in,
        server_in: None,
        server_out: None,
        largest: (largest(hs_out), largest(hs_in)),
        in_flight: s.connections as u64,
        client_compressed: c.cert_compressed.total(),
        server_compressed: None,
    };
    let mut client_certs = None;
    let e = c.early_data;
    let mut early_data = s.early_data.then_some(EarlyDataRecord {
        client: [e.offered, e.accepted, e.rejected],
        server: None,
    });
    let (server_ops, server_cpu_us, server_util, session_cache) = match (server, foreign) {
        (Some(child), _) => {
            let (d, wall) = server_window(window.before, scrape(child))
                .map_err(|why| RunError::Server(format!("scenario '{}': {why}", s.name)))?;
            let sops = operations(s, d.handshakes, d.requests, d.bytes);
            client_certs = s.mutual.map(|_| d.client_certs);
            handshake_bytes.server_in = Some(d.handshake_bytes.0);
            handshake_bytes.server_out = Some(d.handshake_bytes.1);
            handshake_bytes.server_compressed = Some(d.cert_compressed);
            if let Some(r) = early_data.as_mut() {
                r.server = Some(d.early_data);
            }
            (
                Some(sops),
                (sops > 0.0).then(|| d.cpu_s * 1e6 / sops),
                Some(d.cpu_s / (wall.max(1e-9) * server_cpus.max(1) as f64)),
                d.session_cache.map(|c| SessionCacheRecord {
                    capacity: c.capacity,
                    entries_at_end: c.entries,
                    stored: c.stored,
                    evicted: c.evicted,
                    hits: c.hits,
                    misses: c.misses,
                }),
            )
        }
        // A foreign server counts nothing we can read: its CPU divides by the generator's
        // count of the same operations.
        (None, Some(f)) => {
            let after = read_foreign(f.source);
            let (cpu, wall) = foreign_window(f.source, window.foreign_before.take(), after)
                .map_err(|why| RunError::Server(format!("scenario '{}': {why}", s.name)))?;
            let cpu_s = cpu.as_secs_f64();
            (
                None,
                (ops > 0.0).then(|| cpu_s * 1e6 / ops),
                f.cores.map(|c| cpu_s / (wall.max(1e-9) * c.max(1) as f64)),
                None,
            )
        }
        (None, None) => (None, None, None, None),
    };
    Ok((
        Repeat {
            hist: r.measured.request.clone(),
            handshake_bytes: (hs_out.clone(), hs_in.clone()),
            record: RepeatRecord {
                rate: ops / secs,
                client_ops: ops,
                server_ops,
                in_flight_ops: in_flight_ops(s),
                client_cpu_us: (ops > 0.0).then(|| cpu_us / ops),
                server_cpu_us,
                latency_hdr: loadgen::report::encode_hist(&r.measured.request),
                session_cache,
                client_certs,
                handshake_bytes: Some(handshake_bytes),
                early_data,
            },
            server_util,
            client_share: r.measured.max_worker_cpu_share,
            full: c.full,
            resumed: c.resumed,
            full_hrr: c.full_hrr,
            resumed_hrr: c.resumed_hrr,
            errors: c.errors_total(),
        },
        r.incomplete,
    ))
}

/// The largest value of `h`, 0 when empty (no handshake: nothing under way either).
fn largest(h: &Hist) -> u64 {
    if h.is_empty() { 0 } else { h.max() }
}

/// Mean and p99 of one direction's bytes per handshake over every repeat: the histograms
/// merged, the mean from the exact totals.
fn bytes_per_handshake<'a>(
    hists: impl IntoIterator<Item = &'a Hist>,
    total: u64,
) -> Result<Option<BytesPerHandshake>, RunError> {
    let mut all = loadgen::stats::new_bytes_hist();
    for h in hists {
        all.add(h)
            .map_err(|e| RunError::Results(format!("merging handshake byte histograms: {e:?}")))?;
    }
    Ok((!all.is_empty()).then(|| BytesPerHandshake {
        mean: total as f64 / all.len() as f64,
        p99: all.value_at_percentile(99.0) as f64,
    }))
}

/// The percentiles the table shows, by name.
const PERCENTILES: [(&str, f64); 3] = [("p50", 50.0), ("p99", 99.0), ("p99.9", 99.9)];

/// [`PERCENTILES`] of `h`, µs; none for an empty histogram (no request completed: no
/// latency, rather than a latency of 0).
fn percentiles(h: &Hist) -> BTreeMap<String, f64> {
    if h.is_empty() {
        return BTreeMap::new();
    }
    PERCENTILES
        .iter()
        .map(|(name, p)| ((*name).to_owned(), h.value_at_percentile(*p) as f64))
        .collect()
}

/// All repeats' latency histograms in one, so a percentile is over every sample of the row
/// (the median of the repeats' p99s is not a p99 of anything).
fn merge<'a>(hists: impl IntoIterator<Item = &'a Hist>) -> Result<Hist, RunError> {
    let mut all = loadgen::stats::new_hist();
    for h in hists {
        all.add(h)
            .map_err(|e| RunError::Results(format!("merging latency histograms: {e:?}")))?;
    }
    Ok(all)
}

fn aggregate(s: &Scenario, reps: &[Repeat], ops_from: OpsFrom) -> Result<Row, RunError> {
    let stat = |f: &dyn Fn(&Repeat) -> f64| Stat::of(&reps.iter().map(f).collect::<Vec<_>>());
    let each: Vec<BTreeMap<String, f64>> = reps.iter().map(|r| percentiles(&r.hist)).collect();
    let latency_us = PERCENTILES
        .iter()
        .filter_map(|(name, _)| {
            let v: Vec<f64> = each.iter().filter_map(|m| m.get(*name).copied()).collect();
            (!v.is_empty()).then(|| ((*name).to_owned(), Stat::of(&v)))
        })
        .collect();
    let merged = merge(reps.iter().map(|r| &r.hist))?;
    let server_vals: Vec<f64> = reps.iter().filter_map(|r| r.record.server_cpu_us).collect();
    let mut handshakes = BTreeMap::new();
    let sum = |f: fn(&Repeat) -> u64| reps.iter().map(f).sum::<u64>();
    let (full, resumed) = (sum(|r| r.full), sum(|r| r.resumed));
    let (full_hrr, resumed_hrr) = (sum(|r| r.full_hrr), sum(|r| r.resumed_hrr));
    handshakes.insert("full".to_string(), full);
    handshakes.insert("resumed".to_string(), resumed);
    handshakes.insert("full_hrr".to_string(), full_hrr);
    handshakes.insert("resumed_hrr".to_string(), resumed_hrr);
    let total = full + resumed + full_hrr + resumed_hrr;
    let server_sat = reps
        .iter()
        .filter_map(|r| r.server_util)
        .fold(0.0f64, f64::max)
        >= 0.9;
    let client_sat = reps.iter().map(|r| r.client_share).fold(0.0f64, f64::max) >= 0.9;
    let generator = |f: fn(&HandshakeBytesRecord) -> u64| {
        reps.iter()
            .filter_map(|r| r.record.handshake_bytes.as_ref())
            .map(f)
            .sum::<u64>()
    };
    let out = bytes_per_handshake(
        reps.iter().map(|r| &r.handshake_bytes.0),
        generator(|h| h.client_out),
    )?;
    let inn = bytes_per_handshake(
        reps.iter().map(|r| &r.handshake_bytes.1),
        generator(|h| h.client_in),
    )?;
    Ok(Row {
        name: s.name.clone(),
        kind: s.kind,
        rate: stat(&|r| r.record.rate),
        latency_us,
        latency_merged_us: percentiles(&merged),
        server_cpu_us: (!server_vals.is_empty()).then(|| Stat::of(&server_vals)),
        client_cpu_us: Stat::of(
            &reps
                .iter()
                .filter_map(|r| r.record.client_cpu_us)
                .collect::<Vec<_>>(),
        ),
        handshakes,
        resumed_share: (total > 0).then(|| (resumed + resumed_hrr) as f64 / total as f64),
        errors: reps.iter().map(|r| r.errors).sum(),
        saturated: match (server_sat, client_sat) {
            (true, true) => "both",
            (true, false) => "server",
            (false, true) => "client",
            (false, false) => "neither",
        }
        .into(),
        latency_hdr: loadgen::report::encode_hist(&merged),
        repeats: reps.len(),
        per_repeat: reps.iter().map(|r| r.record.clone()).collect(),
        tls_cost: None,
        cert: (!s.plain).then(|| s.cert.name().to_owned()),
        presented_cert: None,
        server_ops_from: ops_from,
        provider: s.provider.name().to_owned(),
        handshake_bytes: match (out, inn) {
            (Some(client_to_server), Some(server_to_client)) => Some(HandshakeBytes {
                client_to_server,
                server_to_client,
            }),
            _ => None,
        },
    })
}

/// Runs every scenario's repeats and pushes its row to `results`; stops at the first error
/// (a server that does not start, a failed admin scrape) or when `stop` is raised, keeping
/// the rows before it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_matrix(
    matrix: &Matrix,
    args: &RunArgs,
    exe: &Path,
    foreign: Foreign<'_>,
    quick: bool,
    repeats: usize,
    stop: &AtomicBool,
    results: &mut RunResults,
    profiler: Option<&Profiler>,
) -> Result<(), RunError> {
    for s in &matrix.scenarios {
        if stop.load(Ordering::Acquire) {
            break;
        }
        let mut peer = None;
        let (server, target, trust) = match (&args.target, foreign.peer) {
            (Some(_), _) | (None, Some(_)) if s.plain => {
                return Err(RunError::Args(format!(
                    "scenario '{}': a plain floor row (tls = \"none\") needs the local server, not --target or --peer",
                    s.name
                )));
            }
            (Some(url), _) => {
                let t = Target::new(url, None, args.connect_to.as_deref())?;
                let trust = args.cacert.clone().map_or(Trust::Platform, Trust::CaFile);
                (None, t, trust)
            }
            (None, Some(program)) => {
                let site = Site::of(s, matrix, &args.certs_dir, &args.server_cpus.0);
                let p = Peer::start(program, &site, &args.server_cpus.0)
                    .map_err(|e| RunError::Server(format!("scenario '{}': {e}", s.name)))?;
                let t = harness::local_target(p.addr, p.hello_path)?;
                let ca = common::certs::paths(&args.certs_dir, s.cert).ca;
                peer = Some(p);
                (None, t, Trust::CaFile(ca))
            }
            (None, None) => {
                let child = ServerChild::start(exe, &args.certs_dir, s, &args.server_cpus.0)?;
                let t = if s.plain {
                    harness::child_plain_target(&child)?
                } else {
                    harness::child_target(&child)?
                };
                let ca = common::certs::paths(&args.certs_dir, s.cert).ca;
                (Some(child), t, Trust::CaFile(ca))
            }
        };
        let mut opts = load_options(s, matrix, args, quick, &target, trust);
        opts.tls.client_cert = client_identity(s, &args.certs_dir)?;
        // The server is not ours when it is a --target or a peer: what it supports is asked,
        // not known.
        let presented = match probe::probe_row(s, &opts, server.is_none())? {
            RowProbe::Run(presented) => presented,
            RowProbe::Skip(row) => {
                println!("  {:<42} skipped: {}", row.name, row.reason);
                results.skipped.push(row);
                if let Some(p) = peer {
                    p.stop()?;
                }
                continue;
            }
        };
        // A peer's CPU is its process tree's; a --target's is whatever the flags name.
        let peer_cpu = peer.as_ref().map(|p| CpuSource::Pids(vec![p.pid]));
        let foreign_cpu = match (&peer_cpu, foreign.cpu) {
            (Some(source), _) => Some(ForeignCpu {
                source,
                cores: Some(args.server_cpus.0.len()),
            }),
            (None, Some(source)) => Some(ForeignCpu {
                source,
                cores: None,
            }),
            (None, None) => None,
        };
        let mut reps = Vec::with_capacity(repeats);
        let mut stacks = RowStacks::default();
        for _ in 0..repeats {
            if stop.load(Ordering::Acquire) {
                break;
            }
            let (rep, incomplete) = one_repeat(
                s,
                &opts,
                server.as_ref(),
                foreign_cpu,
                args.server_cpus.0.len(),
                stop,
                profiler.map(|p| (p, &mut stacks)),
            )?;
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
        if let Some(p) = peer {
            p.stop()?;
        }
        if reps.is_empty() || stop.load(Ordering::Acquire) {
            break;
        }
        let ops_from = if foreign_cpu.is_some() {
            OpsFrom::Client
        } else {
            OpsFrom::Server
        };
        let mut row = aggregate(s, &reps, ops_from)?;
        row.presented_cert = presented;
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
        if let Some(p) = profiler {
            results
                .profiles
                .insert(row.name.clone(), p.finish_row(&row, &stacks)?);
        }
        results.rows.push(row);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
