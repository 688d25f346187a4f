//! The scenario matrix: a TOML file (the standard one is `scenarios/standard.toml`, built in),
//! read once into typed [`Scenario`]s — TLS versions, key type, suites, groups, both sides'
//! resumption modes, bodies, durations, the crypto provider of both sides (`provider = "ring"`),
//! or `tls = "none"` for a plain-HTTP floor row — so a
//! typo fails in a second, naming the scenario and the field, rather than ten minutes into a
//! run, and nothing downstream parses a string again.

use std::collections::HashSet;
use std::fmt::Display;
use std::path::Path;
use std::time::Duration;

use clap::ValueEnum;
use common::cert_compression::CertCompression;
use common::certs::KeyType;
use common::tls::{self, Provider, Version};
use loadgen::ResumeMode;
use rustls::SupportedCipherSuite;
use rustls::crypto::SupportedKxGroup;
use serde::de::DeserializeOwned;
use server::cli::ServerArgs;
use server::client_auth::ClientAuth;
use server::config::Resumption;

use crate::RunError;
use crate::results::RowKind;

/// The standard matrix, as shipped.
pub const STANDARD: &str = include_str!("../../scenarios/standard.toml");

/// The `[defaults]` table: what every scenario starts from.
#[derive(Clone, Debug, PartialEq)]
pub struct Defaults {
    /// Concurrent connections.
    pub connections: usize,
    /// Measured duration per repeat, full mode.
    pub duration: Duration,
    /// Warm-up per repeat, full mode.
    pub warmup: Duration,
    /// Measured duration per repeat, `--quick`.
    pub quick_duration: Duration,
    /// Warm-up per repeat, `--quick`.
    pub quick_warmup: Duration,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            connections: 32,
            duration: Duration::from_secs(8),
            warmup: Duration::from_secs(2),
            quick_duration: Duration::from_secs(2),
            quick_warmup: Duration::from_millis(500),
        }
    }
}

/// The request body a scenario moves, which decides the route it hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// `GET /bytes/N`: N bytes downloaded per request.
    Download(u64),
    /// `POST /sink` with N bytes uploaded per request.
    Upload(u64),
}

/// Mutual TLS of a row: the server asks for client certificates (`client_auth`), and the
/// generator answers with the generated client identity of `cert` (`client_cert`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MutualTls {
    /// `optional` or `required` (never off: a row without client auth has no `MutualTls`).
    pub mode: ClientAuth,
    /// Key type of the client certificate sent; `None` (only with `optional`): none is sent.
    pub cert: Option<KeyType>,
}

/// One row of the matrix, typed.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Unique name; rows are matched by it.
    pub name: String,
    /// What it measures.
    pub kind: RowKind,
    /// TLS versions of both sides (`tls = "1.3"`, or `"1.2,1.3"`); empty for a plain row.
    pub tls: Vec<Version>,
    /// `tls = "none"`: plain HTTP to the server's `--plain-listen` on the same workers, the
    /// TCP floor a TLS row's cost is measured against (see [`crate::floor`]).
    pub plain: bool,
    /// Certificate key type.
    pub cert: KeyType,
    /// The crypto provider of both sides (server child and generator).
    pub provider: Provider,
    /// Key-exchange groups of both sides, in preference order (empty: the provider's).
    pub kx_groups: Vec<&'static dyn SupportedKxGroup>,
    /// Cipher suites of both sides, in preference order (empty: all).
    pub cipher_suites: Vec<SupportedCipherSuite>,
    /// The server's resumption.
    pub server_resumption: Resumption,
    /// The generator's resumption.
    pub resume: ResumeMode,
    /// TLS 1.3 tickets the server sends per handshake (`tls13_tickets`); None: the server's
    /// default (2, as rustls).
    pub tls13_tickets: Option<usize>,
    /// The body moved per request (`download` / `upload`); None: `GET /` with no body.
    pub body: Option<Body>,
    /// Concurrent connections (the scenario's, else `[defaults]`).
    pub connections: usize,
    /// Client certificates asked for and sent (`client_auth`, `client_cert`); `None`: none.
    pub mutual: Option<MutualTls>,
    /// Certificate compression of both sides (`cert_compression = "brotli"`; off unless set).
    pub cert_compression: CertCompression,
    /// TLS 1.3 0-RTT (`early_data = true`): the server accepts [`EARLY_DATA_BYTES`] of early
    /// data, the generator sends each resumed connection's request early.
    pub early_data: bool,
}

/// The server's `--early-data` on a row with `early_data`: a TLS record's worth, far more
/// than any request head the generator sends.
pub const EARLY_DATA_BYTES: u32 = 16384;

impl Scenario {
    /// The server child's flags for this scenario, pinned to `cpus` (one worker per CPU):
    /// the typed scenario straight into the server's own typed options.
    pub fn server_args(&self, certs: &Path, cpus: &[usize]) -> ServerArgs {
        if self.plain {
            // The TLS listener keeps its defaults; only the plain one is measured.
            return ServerArgs {
                threads: Some(cpus.len().max(1)),
                pin_cpus: Some(common::cpu::CpuList(cpus.to_vec())),
                certs_dir: certs.to_path_buf(),
                cert_type: self.cert,
                plain_listen: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
                ..ServerArgs::default()
            };
        }
        ServerArgs {
            threads: Some(cpus.len().max(1)),
            pin_cpus: Some(common::cpu::CpuList(cpus.to_vec())),
            certs_dir: certs.to_path_buf(),
            cert_type: self.cert,
            provider: self.provider,
            resumption: self.server_resumption,
            tls13_tickets: self
                .tls13_tickets
                .unwrap_or(ServerArgs::default().tls13_tickets),
            tls_versions: self
                .tls
                .iter()
                .map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(","),
            kx_groups: self.kx_groups.iter().map(|g| tls::group_name(*g)).collect(),
            cipher_suites: self
                .cipher_suites
                .iter()
                .map(|c| tls::suite_name(*c))
                .collect(),
            client_auth: self.mutual.map_or(ClientAuth::Off, |m| m.mode),
            // The one CA of the client certificate sent, so the CertificateRequest names one
            // CA as a deployment's would; with none sent, the server's default (every one).
            client_ca: self
                .mutual
                .and_then(|m| m.cert)
                .map(|kt| common::certs::client_paths(certs, kt).ca),
            cert_compression: self.cert_compression.clone(),
            early_data: if self.early_data { EARLY_DATA_BYTES } else { 0 },
            ..ServerArgs::default()
        }
    }

    /// Whether both sides were asked to resume (so ≥ 99% of handshakes must be resumed).
    pub fn resumes(&self) -> bool {
        !self.plain && self.resume != ResumeMode::Off && self.server_resumption != Resumption::Off
    }
}

/// A parsed, checked matrix.
#[derive(Clone, Debug)]
pub struct Matrix {
    /// Defaults.
    pub defaults: Defaults,
    /// Rows, in order.
    pub scenarios: Vec<Scenario>,
}

/// The keys of one TOML table, taken one at a time so every error names its table and field,
/// and whatever is left over is refused as unknown.
struct Fields {
    /// "scenario 'NAME'" or "[defaults]".
    context: String,
    table: toml::Table,
}

impl Fields {
    fn bad(&self, why: impl Display) -> RunError {
        RunError::Scenarios(format!("{}: {why}", self.context))
    }

    fn bad_field(&self, key: &str, why: impl Display) -> RunError {
        self.bad(format_args!("field `{key}`: {why}"))
    }

    /// The value of `key` as plain TOML data (string, integer, list...).
    fn take<T: DeserializeOwned>(&mut self, key: &str) -> Result<Option<T>, RunError> {
        let Some(v) = self.table.remove(key) else {
            return Ok(None);
        };
        v.try_into::<T>()
            .map(Some)
            .map_err(|e| self.bad_field(key, e.to_string().trim()))
    }

    /// The value of `key` read as `R` and turned into its typed form by `parse`.
    fn parsed<R: DeserializeOwned, T, E: Display>(
        &mut self,
        key: &str,
        parse: impl FnOnce(R) -> Result<T, E>,
    ) -> Result<Option<T>, RunError> {
        match self.take::<R>(key)? {
            Some(raw) => parse(raw).map(Some).map_err(|e| self.bad_field(key, e)),
            None => Ok(None),
        }
    }

    fn required<T>(&self, key: &str, v: Option<T>) -> Result<T, RunError> {
        v.ok_or_else(|| self.bad_field(key, "missing"))
    }

    fn duration(&mut self, key: &str) -> Result<Option<Duration>, RunError> {
        let Some(v) = self.table.remove(key) else {
            return Ok(None);
        };
        common::duration::deserialize(v)
            .map(Some)
            .map_err(|e| self.bad_field(key, e.to_string().trim()))
    }

    /// Refuses keys nobody took (a misspelt field must not be ignored).
    fn finish(self) -> Result<(), RunError> {
        match self.table.keys().next() {
            Some(k) => Err(self.bad(format_args!("unknown field `{k}`"))),
            None => Ok(()),
        }
    }
}

/// A clap value enum read from its command-line name, refusing others with the valid names.
fn value_enum<T: ValueEnum>(given: String) -> Result<T, String> {
    let names: Vec<String> = T::value_variants()
        .iter()
        .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_owned()))
        .collect();
    T::from_str(&given, false)
        .map_err(|_| format!("unknown value '{given}' (valid: {})", names.join(", ")))
}

fn read_defaults(table: toml::Table) -> Result<Defaults, RunError> {
    let mut f = Fields {
        context: "[defaults]".into(),
        table,
    };
    let base = Defaults::default();
    let d = Defaults {
        connections: f.take("connections")?.unwrap_or(base.connections),
        duration: f.duration("duration")?.unwrap_or(base.duration),
        warmup: f.duration("warmup")?.unwrap_or(base.warmup),
        quick_duration: f.duration("quick_duration")?.unwrap_or(base.quick_duration),
        quick_warmup: f.duration("quick_warmup")?.unwrap_or(base.quick_warmup),
    };
    f.finish()?;
    if d.connections == 0 {
        return Err(RunError::Scenarios(
            "[defaults]: field `connections`: must be at least 1".into(),
        ));
    }
    for (key, v) in [
        ("duration", d.duration),
        ("quick_duration", d.quick_duration),
    ] {
        if v.is_zero() {
            return Err(RunError::Scenarios(format!(
                "[defaults]: field `{key}`: must be longer than 0"
            )));
        }
    }
    Ok(d)
}

fn scenario(index: usize, table: toml::Table, d: &Defaults) -> Result<Scenario, RunError> {
    let name = match table.get("name") {
        Some(toml::Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => {
            return Err(RunError::Scenarios(format!(
                "[[scenario]] number {}: field `name`: missing or not a non-empty string",
                index + 1
            )));
        }
    };
    let mut f = Fields {
        context: format!("scenario '{name}'"),
        table,
    };
    f.table.remove("name");
    let kind = f.take::<RowKind>("kind")?;
    let kind = f.required("kind", kind)?;
    let tls = f.parsed("tls", |s: String| match s.as_str() {
        "none" => Ok(None),
        _ => tls::parse_versions(&s).map(Some),
    })?;
    let tls = f.required("tls", tls)?;
    let plain = tls.is_none();
    let tls = tls.unwrap_or_default();
    let cert = f
        .parsed("cert", |s: String| s.parse::<KeyType>())?
        .unwrap_or(KeyType::EcdsaP256);
    // Before the suites and groups: they are parsed for this provider, which refuses what it lacks.
    let provider = f
        .parsed("provider", |s: String| s.parse::<Provider>())?
        .unwrap_or_default();
    let kx_groups = f
        .parsed("kx_groups", |v: Vec<String>| provider.parse_groups(&v))?
        .unwrap_or_default();
    let cipher_suites = f
        .parsed("cipher_suites", |v: Vec<String>| provider.parse_suites(&v))?
        .unwrap_or_default();
    let server_resumption = f
        .parsed("server_resumption", value_enum::<Resumption>)?
        .unwrap_or(Resumption::Both);
    let resume = f
        .parsed("resume", value_enum::<ResumeMode>)?
        .unwrap_or(ResumeMode::Off);
    let tls13_tickets = f.take::<usize>("tls13_tickets")?;
    let client_auth = f.parsed("client_auth", value_enum::<ClientAuth>)?;
    let client_cert = f.parsed("client_cert", |s: String| s.parse::<KeyType>())?;
    let cert_compression = f
        .parsed("cert_compression", |s: String| s.parse::<CertCompression>())?
        .unwrap_or_default();
    let early_data = f.take::<bool>("early_data")?.unwrap_or(false);
    let download = f.take::<u64>("download")?;
    let upload = f.take::<u64>("upload")?;
    let connections = f
        .parsed("connections", |n: usize| {
            if n == 0 {
                Err("must be at least 1")
            } else {
                Ok(n)
            }
        })?
        .unwrap_or(d.connections);
    let body = match (download, upload) {
        (Some(_), Some(_)) => return Err(f.bad("download and upload are separate scenarios")),
        (Some(n), None) => Some(Body::Download(n)),
        (None, Some(n)) => Some(Body::Upload(n)),
        (None, None) => None,
    };
    if kind == RowKind::Throughput && body.is_none() {
        return Err(f.bad("a throughput scenario needs download or upload"));
    }
    if plain {
        // Nothing TLS-specific may be asked of a plain row: it would be silently ignored.
        let tls_only = [
            ("kx_groups", !kx_groups.is_empty()),
            ("cipher_suites", !cipher_suites.is_empty()),
            ("provider", provider != Provider::default()),
            ("resume", resume != ResumeMode::Off),
            ("tls13_tickets", tls13_tickets.is_some()),
            ("client_auth", client_auth.is_some()),
            ("client_cert", client_cert.is_some()),
            ("cert_compression", !cert_compression.is_off()),
            ("early_data", early_data),
        ];
        if let Some((key, _)) = tls_only.iter().find(|(_, set)| *set) {
            return Err(f.bad_field(key, "a plain row (tls = \"none\") has no TLS to configure"));
        }
    }
    if tls13_tickets.is_some() && server_resumption == Resumption::Off {
        return Err(f.bad_field(
            "tls13_tickets",
            "the server sends no tickets when server_resumption is off",
        ));
    }
    if tls13_tickets.is_some() && !tls.contains(&Version::Tls13) {
        return Err(f.bad_field("tls13_tickets", "the row does not offer TLS 1.3"));
    }
    let mutual = match (client_auth, client_cert) {
        (None | Some(ClientAuth::Off), None) => None,
        (None | Some(ClientAuth::Off), Some(_)) => {
            return Err(f.bad_field(
                "client_cert",
                "needs client_auth = \"required\" or \"optional\"",
            ));
        }
        (Some(ClientAuth::Required), None) => {
            return Err(f.bad_field(
                "client_cert",
                "missing: client_auth = \"required\" refuses every client without one",
            ));
        }
        (Some(mode), cert) => Some(MutualTls { mode, cert }),
    };
    if !plain && !cert_compression.is_off() && !tls.contains(&Version::Tls13) {
        return Err(f.bad_field(
            "cert_compression",
            "certificate compression exists only in TLS 1.3 and the row does not offer it",
        ));
    }
    if early_data
        && !plain
        && (tls != [Version::Tls13]
            || server_resumption != Resumption::Stateful
            || resume != ResumeMode::Ticket)
    {
        // rustls sends and accepts early data only on TLS 1.3 resumption from its session
        // cache; anything else would run the row without 0-RTT under its name.
        return Err(f.bad_field(
            "early_data",
            "needs tls = \"1.3\", server_resumption = \"stateful\" and resume = \"ticket\"",
        ));
    }
    f.finish()?;
    Ok(Scenario {
        name,
        kind,
        tls,
        plain,
        cert,
        provider,
        kx_groups,
        cipher_suites,
        server_resumption,
        resume,
        tls13_tickets,
        body,
        connections,
        mutual,
        cert_compression,
        early_data,
    })
}

impl Matrix {
    /// Parses and checks a matrix.
    pub fn parse(text: &str) -> Result<Matrix, RunError> {
        let mut doc: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| RunError::Scenarios(e.to_string()))?;
        let defaults = match doc.remove("defaults") {
            Some(toml::Value::Table(t)) => read_defaults(t)?,
            Some(_) => return Err(RunError::Scenarios("[defaults] must be a table".into())),
            None => Defaults::default(),
        };
        let tables = match doc.remove("scenario") {
            Some(toml::Value::Array(a)) => a,
            Some(_) => {
                return Err(RunError::Scenarios(
                    "`scenario` must be an array of tables ([[scenario]])".into(),
                ));
            }
            None => Vec::new(),
        };
        if let Some(k) = doc.keys().next() {
            return Err(RunError::Scenarios(format!(
                "unknown top-level key `{k}` (expected [defaults] and [[scenario]])"
            )));
        }
        if tables.is_empty() {
            return Err(RunError::Scenarios("no [[scenario]] in the file".into()));
        }
        let mut seen = HashSet::new();
        let mut scenarios = Vec::with_capacity(tables.len());
        for (i, t) in tables.into_iter().enumerate() {
            let toml::Value::Table(t) = t else {
                return Err(RunError::Scenarios(format!(
                    "[[scenario]] number {}: not a table",
                    i + 1
                )));
            };
            let s = scenario(i, t, &defaults)?;
            if !seen.insert(s.name.clone()) {
                return Err(RunError::Scenarios(format!(
                    "scenario '{}': name used twice",
                    s.name
                )));
            }
            scenarios.push(s);
        }
        Ok(Matrix {
            defaults,
            scenarios,
        })
    }

    /// Measured duration and warm-up per repeat for the mode.
    pub fn timing(&self, quick: bool) -> (Duration, Duration) {
        let d = &self.defaults;
        if quick {
            (d.quick_duration, d.quick_warmup)
        } else {
            (d.duration, d.warmup)
        }
    }
}

#[cfg(test)]
mod tests;
