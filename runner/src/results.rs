//! The results of a `tlsbench run`: one [`Row`] per scenario (rates and CPU as the median
//! over repeats with the range, latency over all repeats' samples, and each repeat's own
//! record), the environment, and the scenario file. Written as `results.json`; read back by
//! `tlsbench compare` and the chart writer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version of the results document; bump on incompatible changes. Fields added since 1
/// (`Row::per_repeat`, `Row::latency_merged_us`, `Row::cert`, `Row::presented_cert`,
/// `RunResults::skipped`, `RunResults::server_software`) are optional on reading, so files of
/// either age read the same way.
pub const SCHEMA_VERSION: u32 = 1;

/// What a row measures, which decides its rate unit and what "per operation" means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RowKind {
    /// New connection per request: the rate is handshakes/s, CPU is per handshake.
    Handshake,
    /// Keep-alive requests: the rate is requests/s, CPU is per request.
    Requests,
    /// Bulk bodies: the rate is MB/s (10^6 bytes), CPU is per MB.
    Throughput,
}

impl RowKind {
    /// The unit of the rate column.
    pub fn rate_unit(self) -> &'static str {
        match self {
            RowKind::Handshake => "handshakes/s",
            RowKind::Requests => "req/s",
            RowKind::Throughput => "MB/s",
        }
    }

    /// The unit an "operation" is for CPU per operation.
    pub fn op_unit(self) -> &'static str {
        match self {
            RowKind::Handshake => "handshake",
            RowKind::Requests => "request",
            RowKind::Throughput => "MB",
        }
    }
}

/// Median and range of one metric over the repeats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    /// Median over repeats.
    pub median: f64,
    /// Smallest value seen.
    pub min: f64,
    /// Largest value seen.
    pub max: f64,
}

impl Stat {
    /// Median and range of `values` (empty → all zero).
    pub fn of(values: &[f64]) -> Stat {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Stat::default();
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Stat {
            median,
            min: v[0],
            max: v[n - 1],
        }
    }
}

/// One scenario's results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Scenario name from the matrix (the key rows are matched by).
    pub name: String,
    /// What it measures.
    pub kind: RowKind,
    /// Handshakes/s, req/s or MB/s (see [`RowKind::rate_unit`]).
    pub rate: Stat,
    /// Each repeat's own latency percentiles of the whole operation, µs (p50, p99, p99.9):
    /// median and range over the repeats. The table shows [`Row::latency_merged_us`].
    pub latency_us: BTreeMap<String, Stat>,
    /// Latency percentiles of the whole operation over every repeat's samples (the repeats'
    /// histograms merged), µs: p50, p99, p99.9; what the table shows. Empty when no request
    /// completed. Absent from files written before it existed.
    #[serde(default)]
    pub latency_merged_us: BTreeMap<String, f64>,
    /// Server CPU µs per operation (None when the server was not ours: `--target`).
    pub server_cpu_us: Option<Stat>,
    /// Client (generator) CPU µs per operation.
    pub client_cpu_us: Stat,
    /// Handshakes by kind over all repeats: full, resumed, full_hrr, resumed_hrr (a
    /// resumption after a HelloRetryRequest).
    pub handshakes: BTreeMap<String, u64>,
    /// Resumed (with or without a HelloRetryRequest) ÷ handshakes (None when no handshakes).
    pub resumed_share: Option<f64>,
    /// Errors over all repeats.
    pub errors: u64,
    /// "server", "client", "both" or "neither": which side ran at ≥ 90% of its cores.
    pub saturated: String,
    /// Request-latency histogram of all repeats merged (V2 deflate, base64), for percentile
    /// curves; each repeat's own is in [`RepeatRecord::latency_hdr`]. (Files written before
    /// `latency_merged_us` existed hold the last repeat's here.)
    pub latency_hdr: String,
    /// Repeats this row aggregates.
    pub repeats: usize,
    /// Each repeat's own counts and CPU, in order: what the sanity checks read. Absent from
    /// files written before it existed.
    #[serde(default)]
    pub per_repeat: Vec<RepeatRecord>,
    /// A TLS row's server CPU per operation above its plain floor (see `floor`); None on
    /// floor rows and in files written before it existed.
    #[serde(default)]
    pub tls_cost: Option<TlsCost>,
    /// The scenario's certificate key type (`cert`, e.g. "rsa2048"); None on plain rows and
    /// in files written before it was recorded.
    #[serde(default)]
    pub cert: Option<String>,
    /// The key type and size of the leaf certificate the server presented to the probe
    /// handshake before the row (e.g. "ecdsa-p256"): a foreign server may present another
    /// than the scenario names. None on plain rows and in older files.
    #[serde(default)]
    pub presented_cert: Option<String>,
    /// Whose count of operations [`Row::server_cpu_us`] divides by: the server's own (ours,
    /// from its admin counters) or the generator's (a foreign server, which has no counters).
    /// Files written before it existed hold the server's.
    #[serde(default)]
    pub server_ops_from: OpsFrom,
    /// The crypto provider tlsbench's sides ran on (`aws-lc-rs`, `ring`): the server child's
    /// and the generator's, or only the generator's against `--target`; files written before
    /// it existed ran on aws-lc-rs, the only provider then.
    #[serde(default = "provider_before_the_field")]
    pub provider: String,
    /// TLS bytes per handshake each way, as the generator counted them over every repeat;
    /// None when no handshake completed (and in files written before it existed).
    #[serde(default)]
    pub handshake_bytes: Option<HandshakeBytes>,
}

impl Row {
    /// The row's certificate as the table shows it: the scenario's, and what the server
    /// presented when that differs (`rsa2048 (server presented ecdsa-p256)`).
    pub fn cert_label(&self) -> Option<String> {
        match (&self.cert, &self.presented_cert) {
            (Some(c), Some(p)) if c != p => Some(format!("{c} (server presented {p})")),
            (Some(c), _) => Some(c.clone()),
            (None, Some(p)) => Some(format!("(server presented {p})")),
            (None, None) => None,
        }
    }
}

/// A scenario the server could not honour, found by the probe before the row and not run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SkippedRow {
    /// Scenario name.
    pub name: String,
    /// What it would have measured.
    pub kind: RowKind,
    /// What the server lacked (e.g. "the server offers none of the groups X25519MLKEM768").
    pub reason: String,
}

/// Whose count of a row's operations its server CPU per operation divides by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpsFrom {
    /// The server's own counters.
    #[default]
    Server,
    /// The generator's: a foreign server (`--server-pid`, `--server-cgroup`, `--peer`).
    Client,
}

fn provider_before_the_field() -> String {
    "aws-lc-rs".to_owned()
}

/// TLS bytes per completed handshake, each way (the generator's count, exact at its socket).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HandshakeBytes {
    /// Client to server.
    pub client_to_server: BytesPerHandshake,
    /// Server to client.
    pub server_to_client: BytesPerHandshake,
}

/// One direction's bytes per handshake.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BytesPerHandshake {
    /// Mean.
    pub mean: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// A TLS row's cost over the TCP floor: its server CPU per operation minus the plain row's
/// doing the same operation (medians), in the row's own unit (µs per handshake, request or MB).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TlsCost {
    /// The floor row it is measured against (None when the matrix has none).
    pub floor: Option<String>,
    /// Server CPU µs per operation − the floor's (None: see `missing`).
    pub us: Option<f64>,
    /// The figure is within the noise: the row's and the floor's [min–max] server CPU overlap
    /// over the repeats, or it is below zero (TLS does the floor's work and more, so a
    /// negative cost is never real). Shown with `~` in the table.
    #[serde(default)]
    pub within_noise: bool,
    /// Why there is no figure.
    pub missing: Option<String>,
}

/// What one repeat measured, kept so a reader can see both sides' counts of the same
/// operation and check them against each other.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RepeatRecord {
    /// The generator's rate over its measured window (its count ÷ the window).
    pub rate: f64,
    /// The generator's count of the row's operation in the window (handshakes, requests, MB).
    pub client_ops: f64,
    /// The server's count of the same operation between its scrapes at the window's edges
    /// (None when the server was not ours: `--target`).
    pub server_ops: Option<f64>,
    /// Operations that may be under way at a window edge, so counted by one side and not
    /// the other: the connections (for throughput, × the body in MB).
    pub in_flight_ops: f64,
    /// Generator CPU µs per operation (its CPU ÷ its count; None when it counted none).
    pub client_cpu_us: Option<f64>,
    /// Server CPU µs per operation (its CPU ÷ its own count; None when not ours).
    pub server_cpu_us: Option<f64>,
    /// This repeat's request-latency histogram (V2 deflate, base64).
    #[serde(default)]
    pub latency_hdr: String,
    /// The server's stateful session cache over the window (None: no cache, or not ours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_cache: Option<SessionCacheRecord>,
    /// The server's client-certificate counts over the window, for mutual-TLS rows against
    /// our server (None otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certs: Option<ClientCertsRecord>,
    /// Both sides' handshake bytes in the window (None in files written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handshake_bytes: Option<HandshakeBytesRecord>,
    /// Both sides' 0-RTT counts in the window, for rows with `early_data` (None otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_data: Option<EarlyDataRecord>,
}

/// What became of TLS 1.3 early data in one measured window, as each side counted it per
/// connection: sent early (offered), then accepted or rejected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EarlyDataRecord {
    /// The generator's (offered, accepted, rejected).
    pub client: [u64; 3],
    /// The server's (offered, accepted, rejected); None when the server was not ours.
    pub server: Option<[u64; 3]>,
}

/// What the server counted of client certificates in one measured window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCertsRecord {
    /// Handshakes that completed with a client certificate (verified, or resumed with one).
    pub accepted: u64,
    /// Handshakes that completed without one.
    pub none: u64,
    /// Handshakes refused for the client certificate (any cause).
    pub refused: u64,
}

/// The TLS bytes of the handshakes of one measured window, as each side counted them: the
/// server's bytes in are the generator's bytes out, and the other way round, but for the
/// handshakes under way at the window's edges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandshakeBytesRecord {
    /// The generator's, client to server.
    pub client_out: u64,
    /// The generator's, server to client.
    pub client_in: u64,
    /// The server's, client to server (None when the server was not ours).
    pub server_in: Option<u64>,
    /// The server's, server to client (None when the server was not ours).
    pub server_out: Option<u64>,
    /// The generator's largest handshake each way, (out, in): a handshake under way at an
    /// edge is at most that.
    pub largest: (u64, u64),
    /// Handshakes that may be under way at an edge: one per connection.
    pub in_flight: u64,
    /// Handshakes whose certificate chain came compressed (any algorithm), as the generator
    /// counted them (see `common::cert_compression`).
    #[serde(default)]
    pub client_compressed: u64,
    /// The same, as the server counted them (None when the server was not ours).
    #[serde(default)]
    pub server_compressed: Option<u64>,
}

/// What the server's session cache did in one measured window: the occupancy at its end
/// beside the capacity shows a cache that fills with unused TLS 1.3 tickets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionCacheRecord {
    /// The most entries it keeps.
    pub capacity: u64,
    /// Entries held at the window's end.
    pub entries_at_end: u64,
    /// Sessions stored in the window.
    pub stored: u64,
    /// Entries evicted unused in the window.
    pub evicted: u64,
    /// Lookups that found their session, in the window.
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
}

/// The whole document.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunResults {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// "tlsbench run".
    pub tool: String,
    /// The command line that made this file, as given (program name first), so a reference
    /// run can be remade exactly; empty in files written before it was recorded.
    #[serde(default)]
    pub command: Vec<String>,
    /// When the run started, UTC, RFC 3339.
    pub started_utc: String,
    /// How long it took, seconds.
    pub duration_s: f64,
    /// Quick or full mode.
    pub quick: bool,
    /// `--target` URL when the server was external (server columns are then empty, unless
    /// `--server-pid` or `--server-cgroup` read its CPU: see `server_cpu_source`).
    pub target: Option<String>,
    /// CPUs the server and the client were pinned to.
    pub server_cpus: Vec<usize>,
    /// CPUs of the load generator.
    pub client_cpus: Vec<usize>,
    /// The scenario file's text, as used.
    pub scenarios_toml: String,
    /// The server's software and version: `tlsbench-server <v> (rustls <v>, aws-lc-rs <v>)`
    /// for ours, the program's own words for a peer (`nginx/1.22.1`); None for a `--target`
    /// and in files written before it existed.
    #[serde(default)]
    pub server_software: Option<String>,
    /// Where a foreign server's CPU was read from (`--server-pid`, `--server-cgroup`, a
    /// peer's process tree); None for ours (its admin counters) and an unmeasured `--target`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cpu_source: Option<String>,
    /// Where it ran.
    pub environment: common::env::Environment,
    /// Set when the run was cut short (Ctrl-C, error): rows so far are kept.
    pub incomplete: Option<String>,
    /// One per scenario, in matrix order.
    pub rows: Vec<Row>,
    /// `--profile`: each profiled row's component breakdowns, by scenario name. Absent when
    /// the run was not profiled.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub profiles: BTreeMap<String, crate::profile::breakdown::RowProfile>,
    /// Scenarios skipped because the server could not honour them (a foreign server only),
    /// with why; not a failure of the run, and absent from `rows`. Empty in older files.
    #[serde(default)]
    pub skipped: Vec<SkippedRow>,
}

/// Our server's software line for results: its version and the TLS crates' from the
/// environment's Cargo.lock versions.
pub fn our_server_software(env: &common::env::Environment) -> String {
    let v = |name: &str| env.crates.get(name).map_or("unknown", String::as_str);
    format!(
        "tlsbench-server {} (rustls {}, aws-lc-rs {})",
        env.tlsbench_version,
        v("rustls"),
        v("aws-lc-rs")
    )
}

#[cfg(test)]
impl RunResults {
    /// A document around `rows`, for the tests of the modules that read results.
    pub(crate) fn fixture(rows: Vec<Row>) -> RunResults {
        RunResults {
            schema_version: SCHEMA_VERSION,
            tool: "tlsbench run".to_owned(),
            command: vec!["tlsbench".to_owned(), "run".to_owned()],
            started_utc: "2025-01-01T00:00:00Z".to_owned(),
            duration_s: 1.0,
            quick: true,
            target: None,
            server_cpus: vec![0],
            client_cpus: vec![1],
            scenarios_toml: String::new(),
            server_software: None,
            server_cpu_source: None,
            environment: common::env::Environment::collect(),
            incomplete: None,
            rows,
            profiles: BTreeMap::new(),
            skipped: Vec::new(),
        }
    }
}

/// Rows for the tests of the modules that read results.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// A local row of `kind` with one repeat's worth of plausible numbers and no TLS cost.
    pub(crate) fn row(name: &str, kind: RowKind) -> Row {
        Row {
            name: name.to_owned(),
            kind,
            rate: Stat::of(&[1000.0]),
            latency_us: BTreeMap::new(),
            latency_merged_us: BTreeMap::new(),
            server_cpu_us: Some(Stat::of(&[100.0])),
            client_cpu_us: Stat::of(&[80.0]),
            handshakes: BTreeMap::new(),
            resumed_share: None,
            errors: 0,
            saturated: "neither".to_owned(),
            latency_hdr: String::new(),
            repeats: 1,
            per_repeat: Vec::new(),
            tls_cost: None,
            cert: None,
            presented_cert: None,
            server_ops_from: OpsFrom::Server,
            provider: "aws-lc-rs".into(),
            handshake_bytes: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_range() {
        assert_eq!(
            Stat::of(&[3.0, 1.0, 2.0]),
            Stat {
                median: 2.0,
                min: 1.0,
                max: 3.0
            }
        );
        assert_eq!(
            Stat::of(&[4.0, 1.0]),
            Stat {
                median: 2.5,
                min: 1.0,
                max: 4.0
            }
        );
        assert_eq!(Stat::of(&[]), Stat::default());
    }

    #[test]
    fn our_server_is_named_with_its_tls_crates() {
        let env = common::env::Environment::collect();
        let s = our_server_software(&env);
        assert!(s.starts_with("tlsbench-server "), "{s}");
        assert!(
            s.contains(&format!("rustls {}", env.crates["rustls"])),
            "{s}"
        );
        assert!(
            s.contains(&format!("aws-lc-rs {}", env.crates["aws-lc-rs"])),
            "{s}"
        );
        assert!(!s.contains("unknown"), "{s}");
    }
}
