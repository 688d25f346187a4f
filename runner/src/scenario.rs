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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_matrix_parses_and_covers_the_issue() {
        let m = Matrix::parse(STANDARD).unwrap();
        let count = |k: RowKind| m.scenarios.iter().filter(|s| s.kind == k).count();
        assert_eq!(count(RowKind::Handshake), 16);
        let early: Vec<&str> = m
            .scenarios
            .iter()
            .filter(|s| s.early_data)
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(early, ["resumed tls1.3 0-rtt"]);
        let mutual = |name: &str| {
            m.scenarios
                .iter()
                .find(|s| s.name == name)
                .and_then(|s| s.mutual)
                .map(|m| (m.mode, m.cert))
        };
        for (name, kt) in [
            (
                "full tls1.3 x25519 ecdsa-p256 mtls ecdsa-p256",
                KeyType::EcdsaP256,
            ),
            (
                "full tls1.3 x25519 ecdsa-p256 mtls rsa2048",
                KeyType::Rsa2048,
            ),
            ("resumed tls1.3 ticket mtls ecdsa-p256", KeyType::EcdsaP256),
        ] {
            assert_eq!(
                mutual(name),
                Some((ClientAuth::Required, Some(kt))),
                "{name}"
            );
        }
        // Stateful TLS 1.3 resumption both with rustls's two tickets and with one.
        let tickets = |name: &str| {
            m.scenarios
                .iter()
                .find(|s| s.name == name)
                .map(|s| (s.server_resumption, s.tls13_tickets))
        };
        assert_eq!(
            tickets("resumed tls1.3 stateful"),
            Some((Resumption::Stateful, None))
        );
        assert_eq!(
            tickets("resumed tls1.3 stateful, 1 ticket"),
            Some((Resumption::Stateful, Some(1)))
        );
        assert_eq!(count(RowKind::Requests), 2);
        assert_eq!(count(RowKind::Throughput), 10);
        let floors: Vec<&str> = m
            .scenarios
            .iter()
            .filter(|s| s.plain)
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(
            floors,
            [
                "floor: new connection, plain HTTP",
                "floor: keep-alive plain",
                "floor: download plain",
                "floor: upload plain"
            ]
        );
        // Every TLS row of the standard matrix has its floor.
        let rows: Vec<crate::results::Row> = m
            .scenarios
            .iter()
            .map(|s| crate::results::tests_support::row(&s.name, s.kind))
            .collect();
        let mut with_cost = rows.clone();
        crate::floor::apply(&m, &mut with_cost);
        for (s, row) in m.scenarios.iter().zip(&with_cost) {
            match &row.tls_cost {
                None => assert!(s.plain, "{}: no TLS cost", s.name),
                Some(c) => assert!(c.us.is_some(), "{}: {:?}", s.name, c.missing),
            }
        }
        assert_eq!(
            m.timing(true),
            (Duration::from_secs(2), Duration::from_millis(500))
        );
        assert_eq!(
            m.timing(false),
            (Duration::from_secs(8), Duration::from_secs(2))
        );
        let s = m
            .scenarios
            .iter()
            .find(|s| s.name == "resumed tls1.2 session-id")
            .unwrap();
        assert_eq!(s.tls, vec![Version::Tls12]);
        assert_eq!(s.resume, ResumeMode::SessionId);
        assert_eq!(s.server_resumption, Resumption::Stateful);
        assert!(s.resumes());
        let up = m
            .scenarios
            .iter()
            .find(|s| s.name == "upload tls1.3 aes-128-gcm")
            .unwrap();
        assert_eq!(up.body, Some(Body::Upload(1 << 20)));
        assert_eq!(up.connections, 4);
        assert_eq!(
            tls::suite_name(up.cipher_suites[0]),
            "TLS_AES_128_GCM_SHA256"
        );
    }

    #[test]
    fn a_scenario_becomes_the_servers_typed_flags() {
        let m = Matrix::parse(
            "[[scenario]]\nname = \"a\"\nkind = \"handshake\"\ntls = \"1.2\"\ncert = \"rsa2048\"\n\
             kx_groups = [\"X25519\"]\ncipher_suites = [\"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\"]\n\
             server_resumption = \"tickets\"\n",
        )
        .unwrap();
        let a = m.scenarios[0].server_args(Path::new("/c"), &[2, 3]);
        let mut line: Vec<std::ffi::OsString> = vec!["server".into()];
        line.extend(a.to_args());
        let back = ServerArgs::try_parse_from(line).unwrap();
        assert_eq!(back, a);
        assert_eq!(back.threads, Some(2));
        assert_eq!(back.pin_cpus, Some(common::cpu::CpuList(vec![2, 3])));
        assert_eq!(back.cert_type, KeyType::Rsa2048);
        assert_eq!(back.resumption, Resumption::Tickets);
        assert_eq!(back.tls_options().unwrap().versions, vec![Version::Tls12]);
        assert_eq!(back.kx_groups, vec!["X25519".to_owned()]);
        assert_eq!(
            back.cipher_suites,
            vec!["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".to_owned()]
        );
    }

    #[test]
    fn the_provider_defaults_to_aws_lc_rs_and_an_unknown_one_is_refused() {
        let m = Matrix::parse(BASE).unwrap();
        assert_eq!(m.scenarios[0].provider, Provider::AwsLcRs);
        let e = refused("provider = \"openssl\"");
        assert!(
            e.contains("scenario 'a'") && e.contains("field `provider`") && e.contains("openssl"),
            "{e}"
        );
        // The plain floor row has no TLS, hence no provider to choose.
        #[cfg(feature = "ring")]
        {
            let e = Matrix::parse(&format!("{}provider = \"ring\"\n", with("tls", "\"none\"")))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("field `provider`") && e.contains("plain row"),
                "{e}"
            );
        }
    }

    #[cfg(not(feature = "ring"))]
    #[test]
    fn ring_without_its_feature_is_refused_naming_the_feature() {
        let e = refused("provider = \"ring\"");
        assert!(
            e.contains("field `provider`") && e.contains("cargo feature `ring`"),
            "{e}"
        );
    }

    #[cfg(feature = "ring")]
    #[test]
    fn a_ring_row_reaches_both_sides_and_refuses_what_ring_lacks() {
        let m = Matrix::parse(&format!(
            "{BASE}provider = \"ring\"\nkx_groups = [\"X25519\"]\n"
        ))
        .unwrap();
        let s = &m.scenarios[0];
        assert_eq!(s.provider, Provider::Ring);
        // The server child's command line, through the server's own parser.
        let a = s.server_args(Path::new("/c"), &[1]);
        let mut line: Vec<std::ffi::OsString> = vec!["server".into()];
        line.extend(a.to_args());
        assert!(line.iter().any(|f| f == "--provider=ring"), "{line:?}");
        let back = ServerArgs::try_parse_from(line).unwrap();
        assert_eq!(back, a);
        let tls = back.tls_options().unwrap();
        assert_eq!(tls.provider, Provider::Ring);
        assert_eq!(tls::group_name(tls.groups[0]), "X25519");
        // The generator side: the options the runner hands to loadgen.
        #[derive(clap::Parser)]
        struct Run {
            #[command(flatten)]
            args: crate::RunArgs,
        }
        let args = <Run as clap::Parser>::try_parse_from(["run"]).unwrap().args;
        let target = loadgen::Target::new("https://127.0.0.1:1/", None, None).unwrap();
        let opts = crate::matrix::load_options(
            s,
            &m,
            &args,
            true,
            &target,
            loadgen::verify::Trust::Platform,
        );
        assert_eq!(opts.tls.provider, Provider::Ring);

        let e = refused("provider = \"ring\"\nkx_groups = [\"X25519MLKEM768\"]");
        assert!(
            e.contains("scenario 'a'")
                && e.contains("field `kx_groups`")
                && e.contains("the ring provider has no key-exchange group X25519MLKEM768"),
            "{e}"
        );
    }

    /// The shipped comparison file: rows in pairs that differ only in provider and name.
    #[cfg(feature = "ring")]
    #[test]
    fn the_providers_file_pairs_each_row_with_its_ring_twin() {
        let m = Matrix::parse(include_str!("../../scenarios/providers.toml")).unwrap();
        assert!(!m.scenarios.is_empty() && m.scenarios.len() % 2 == 0);
        for pair in m.scenarios.chunks(2) {
            let (aws, ring) = (&pair[0], &pair[1]);
            assert_eq!(
                (aws.provider, ring.provider),
                (Provider::AwsLcRs, Provider::Ring)
            );
            // Everything but name and provider is the same: the server's flags and the
            // generator's options.
            let server = |s: &Scenario| ServerArgs {
                provider: Provider::default(),
                ..s.server_args(Path::new("/c"), &[0])
            };
            assert_eq!(server(aws), server(ring), "{}", ring.name);
            let same = |s: &Scenario| {
                (
                    s.kind,
                    s.tls.clone(),
                    s.cert,
                    s.resume,
                    s.body,
                    s.connections,
                    s.kx_groups
                        .iter()
                        .map(|g| tls::group_name(*g))
                        .collect::<Vec<_>>(),
                    s.cipher_suites
                        .iter()
                        .map(|c| tls::suite_name(*c))
                        .collect::<Vec<_>>(),
                )
            };
            assert_eq!(same(aws), same(ring), "{}", ring.name);
        }
    }

    #[test]
    fn cert_compression_reaches_both_sides_and_is_refused_where_it_cannot_apply() {
        let m = Matrix::parse(&with("cert_compression", "\"zlib,brotli\"")).unwrap();
        let s = &m.scenarios[0];
        let want: CertCompression = "zlib,brotli".parse().unwrap();
        assert_eq!(s.cert_compression, want);
        let a = s.server_args(Path::new("/c"), &[1]);
        let mut line: Vec<std::ffi::OsString> = vec!["server".into()];
        line.extend(a.to_args());
        let back = ServerArgs::try_parse_from(line).unwrap();
        assert_eq!(back.tls_options().unwrap().cert_compression, want);
        assert!(
            Matrix::parse(BASE).unwrap().scenarios[0]
                .cert_compression
                .is_off()
        );
        let err = |text: &str| Matrix::parse(text).unwrap_err().to_string();
        let e = err(&with("cert_compression", "\"zstd\""));
        assert!(
            e.contains("field `cert_compression`") && e.contains("'zstd'"),
            "{e}"
        );
        let e = err(&format!(
            "{}cert_compression = \"brotli\"\n",
            with("tls", "\"1.2\"")
        ));
        assert!(e.contains("only in TLS 1.3"), "{e}");
        let e = err(&format!(
            "{}cert_compression = \"brotli\"\n",
            with("tls", "\"none\"")
        ));
        assert!(e.contains("plain row"), "{e}");
    }

    #[test]
    fn early_data_reaches_both_sides_and_is_refused_where_rustls_would_not_send_it() {
        let row = format!(
            "{}server_resumption = \"stateful\"\nresume = \"ticket\"\n",
            BASE
        );
        let m = Matrix::parse(&format!("{row}early_data = true\n")).unwrap();
        let s = &m.scenarios[0];
        assert!(s.early_data);
        let a = s.server_args(Path::new("/c"), &[1]);
        let mut line: Vec<std::ffi::OsString> = vec!["server".into()];
        line.extend(a.to_args());
        let back = ServerArgs::try_parse_from(line).unwrap();
        assert_eq!(back.tls_options().unwrap().early_data, EARLY_DATA_BYTES);
        let target =
            loadgen::Target::new("https://bank32.com/", None, Some("127.0.0.1:1")).unwrap();
        let trust = || loadgen::verify::Trust::Platform;
        assert!(
            crate::matrix::client_options(s, &target, trust())
                .tls
                .early_data
        );
        let off = &Matrix::parse(&row).unwrap().scenarios[0];
        assert!(!off.early_data);
        assert_eq!(off.server_args(Path::new("/c"), &[1]).early_data, 0);
        assert!(
            !crate::matrix::client_options(off, &target, trust())
                .tls
                .early_data
        );

        let err = |text: &str| Matrix::parse(text).unwrap_err().to_string();
        for bad in [
            row.replace("stateful", "tickets"),
            row.replace("resume = \"ticket\"", "resume = \"off\""),
            row.replace("tls = \"1.3\"", "tls = \"1.2,1.3\""),
        ] {
            let e = err(&format!("{bad}early_data = true\n"));
            assert!(
                e.contains("field `early_data`") && e.contains("server_resumption = \"stateful\""),
                "{e}"
            );
        }
        let e = err(&format!("{}early_data = true\n", with("tls", "\"none\"")));
        assert!(e.contains("plain row"), "{e}");
        let e = err(&with("early_data", "\"yes\""));
        assert!(e.contains("field `early_data`"), "{e}");
    }

    #[test]
    fn the_cert_compression_matrix_pairs_each_compressed_row_with_an_uncompressed_one() {
        let m = Matrix::parse(include_str!("../../scenarios/cert-compression.toml")).unwrap();
        let compressed: Vec<&Scenario> = m
            .scenarios
            .iter()
            .filter(|s| !s.cert_compression.is_off())
            .collect();
        assert_eq!(compressed.len(), 4);
        for s in compressed {
            let twin = m
                .scenarios
                .iter()
                .find(|o| o.cert_compression.is_off() && o.cert == s.cert)
                .unwrap_or_else(|| panic!("no uncompressed row for '{}'", s.name));
            assert_eq!(
                (twin.kind, &twin.tls, twin.server_resumption, twin.resume),
                (s.kind, &s.tls, s.server_resumption, s.resume),
                "{}",
                s.name
            );
        }
    }

    #[test]
    fn a_floor_row_is_plain_and_refuses_tls_settings() {
        let m = Matrix::parse(&with("tls", "\"none\"")).unwrap();
        let s = &m.scenarios[0];
        assert!(s.plain && s.tls.is_empty() && !s.resumes());
        let a = s.server_args(Path::new("/c"), &[1]);
        assert_eq!(a.plain_listen, Some("127.0.0.1:0".parse().unwrap()));
        assert_eq!(a.tls_versions, ServerArgs::default().tls_versions);
        assert!(!Matrix::parse(BASE).unwrap().scenarios[0].plain);
        assert_eq!(
            Matrix::parse(BASE).unwrap().scenarios[0]
                .server_args(Path::new("/c"), &[1])
                .plain_listen,
            None
        );
        for (field, value) in [
            ("kx_groups", "[\"X25519\"]"),
            ("cipher_suites", "[\"TLS_AES_128_GCM_SHA256\"]"),
            ("resume", "\"ticket\""),
            ("tls13_tickets", "1"),
        ] {
            let e = Matrix::parse(&format!("{}{field} = {value}\n", with("tls", "\"none\"")))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!("field `{field}`")) && e.contains("plain row"),
                "{e}"
            );
        }
        let e = Matrix::parse(&with("tls", "\"nope\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("field `tls`") && e.contains("nope"), "{e}");
    }

    const BASE: &str = "[[scenario]]\nname = \"a\"\nkind = \"handshake\"\ntls = \"1.3\"\n";

    /// The base scenario with `field` set to `value` (replaced when the base has it).
    fn with(field: &str, value: &str) -> String {
        let mut lines: Vec<String> = BASE
            .lines()
            .filter(|l| !l.starts_with(&format!("{field} = ")))
            .map(str::to_owned)
            .collect();
        lines.push(format!("{field} = {value}"));
        lines.join("\n") + "\n"
    }

    fn refused(extra: &str) -> String {
        Matrix::parse(&format!("{BASE}{extra}\n"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn every_fields_bad_value_is_refused_naming_the_scenario_and_the_field() {
        let m = Matrix::parse(BASE).unwrap();
        let s = &m.scenarios[0];
        assert_eq!(s.cert, KeyType::EcdsaP256);
        assert_eq!(s.server_resumption, Resumption::Both);
        assert_eq!(s.resume, ResumeMode::Off);
        assert_eq!(s.connections, 32);
        for (field, value, shown) in [
            ("kind", "\"latency\"", "latency"),
            ("tls", "\"1.1\"", "1.1"),
            ("cert", "\"dsa1024\"", "dsa1024"),
            ("kx_groups", "[\"ffdhe2048\"]", "ffdhe2048"),
            ("cipher_suites", "[\"TLS_NULL\"]", "TLS_NULL"),
            ("server_resumption", "\"ticket\"", "'ticket'"),
            ("resume", "\"tickets\"", "'tickets'"),
            ("download", "-1", "-1"),
            ("upload", "\"1MiB\"", "1MiB"),
            ("connections", "0", "at least 1"),
            ("connections", "\"many\"", "many"),
            ("tls13_tickets", "-1", "-1"),
        ] {
            let e = Matrix::parse(&with(field, value)).unwrap_err().to_string();
            assert!(
                e.contains("scenario 'a'")
                    && e.contains(&format!("field `{field}`"))
                    && e.contains(shown),
                "{field}: {e}"
            );
        }
        let e = refused("server_resumption = \"sometimes\"");
        assert!(e.contains("off, stateful, tickets, both"), "{e}");
        let e = refused("colour = \"red\"");
        assert!(
            e.contains("scenario 'a'") && e.contains("unknown field `colour`"),
            "{e}"
        );
        let e = refused("download = 1\nupload = 1");
        assert!(e.contains("separate"), "{e}");
        let e = Matrix::parse(&BASE.replace("handshake", "throughput"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs download or upload"), "{e}");
        let e = Matrix::parse(&BASE.replace("tls = \"1.3\"\n", ""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("field `tls`: missing"), "{e}");
        let e = Matrix::parse(&BASE.replace("name = \"a\"\n", ""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("number 1") && e.contains("field `name`"), "{e}");
        let e = Matrix::parse(&format!("{BASE}{BASE}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("scenario 'a': name used twice"), "{e}");
        assert!(Matrix::parse("").is_err());
        let e = Matrix::parse(&format!("colour = 1\n{BASE}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn durations_use_the_one_parser_and_bad_ones_name_the_field() {
        let m = Matrix::parse(&format!(
            "[defaults]\nduration = 3\nwarmup = 1.5\nquick_duration = \"750ms\"\nquick_warmup = \"0\"\n{BASE}"
        ))
        .unwrap();
        assert_eq!(
            m.timing(false),
            (Duration::from_secs(3), Duration::from_millis(1500))
        );
        assert_eq!(m.timing(true), (Duration::from_millis(750), Duration::ZERO));
        for (field, line) in [
            ("duration", "duration = \"soon\""),
            ("warmup", "warmup = -2"),
            ("quick_duration", "quick_duration = \"2 parsecs\""),
            ("quick_warmup", "quick_warmup = true"),
            ("duration", "duration = 0"),
            ("connections", "connections = 0"),
        ] {
            let e = Matrix::parse(&format!("[defaults]\n{line}\n{BASE}"))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!("[defaults]: field `{field}`")),
                "{field}: {e}"
            );
        }
        let e = Matrix::parse(&format!("[defaults]\nrepeats = 3\n{BASE}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `repeats`"), "{e}");
    }

    #[test]
    fn client_auth_reaches_the_server_with_the_client_certs_ca_and_bad_pairs_are_refused() {
        let m = Matrix::parse(&format!(
            "{BASE}client_auth = \"required\"\nclient_cert = \"rsa2048\"\n"
        ))
        .unwrap();
        let s = &m.scenarios[0];
        assert_eq!(
            s.mutual,
            Some(MutualTls {
                mode: ClientAuth::Required,
                cert: Some(KeyType::Rsa2048)
            })
        );
        let a = s.server_args(Path::new("/c"), &[1]);
        assert_eq!(a.client_auth, ClientAuth::Required);
        assert_eq!(
            a.client_ca.as_deref(),
            Some(Path::new("/c/rsa2048/client-ca.pem"))
        );
        let mut line: Vec<std::ffi::OsString> = vec!["server".into()];
        line.extend(a.to_args());
        let back = ServerArgs::try_parse_from(line).unwrap();
        assert_eq!(
            (back.client_auth, back.client_ca),
            (a.client_auth, a.client_ca)
        );
        // Optional without a certificate: the server's default CAs, nothing sent.
        let m = Matrix::parse(&format!("{BASE}client_auth = \"optional\"\n")).unwrap();
        let s = &m.scenarios[0];
        assert_eq!(
            s.mutual,
            Some(MutualTls {
                mode: ClientAuth::Optional,
                cert: None
            })
        );
        assert_eq!(s.server_args(Path::new("/c"), &[1]).client_ca, None);
        assert_eq!(Matrix::parse(BASE).unwrap().scenarios[0].mutual, None);
        assert_eq!(
            Matrix::parse(BASE).unwrap().scenarios[0]
                .server_args(Path::new("/c"), &[1])
                .client_auth,
            ClientAuth::Off
        );

        let e = refused("client_auth = \"required\"");
        assert!(e.contains("field `client_cert`: missing"), "{e}");
        let e = refused("client_cert = \"ecdsa-p256\"");
        assert!(
            e.contains("field `client_cert`") && e.contains("needs client_auth"),
            "{e}"
        );
        let e = refused("client_auth = \"sometimes\"\nclient_cert = \"ecdsa-p256\"");
        assert!(
            e.contains("field `client_auth`") && e.contains("off, optional, required"),
            "{e}"
        );
        let e = refused("client_auth = \"required\"\nclient_cert = \"dsa\"");
        assert!(
            e.contains("field `client_cert`") && e.contains("dsa"),
            "{e}"
        );
        let e = Matrix::parse(&format!(
            "{}client_auth = \"optional\"\n",
            with("tls", "\"none\"")
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("field `client_auth`") && e.contains("plain row"),
            "{e}"
        );
    }

    #[test]
    fn tls13_tickets_reach_the_server_and_are_refused_where_no_ticket_is_sent() {
        let m = Matrix::parse(&format!(
            "{BASE}server_resumption = \"stateful\"\ntls13_tickets = 1\n"
        ))
        .unwrap();
        let a = m.scenarios[0].server_args(Path::new("/c"), &[1]);
        assert_eq!(a.tls13_tickets, 1);
        let mut line: Vec<std::ffi::OsString> = vec!["server".into()];
        line.extend(a.to_args());
        assert_eq!(ServerArgs::try_parse_from(line).unwrap().tls13_tickets, 1);
        // Unset: the server's default, whatever it is.
        let a = Matrix::parse(BASE).unwrap().scenarios[0].server_args(Path::new("/c"), &[1]);
        assert_eq!(a.tls13_tickets, ServerArgs::default().tls13_tickets);
        let e = refused("server_resumption = \"off\"\ntls13_tickets = 1");
        assert!(
            e.contains("field `tls13_tickets`") && e.contains("off"),
            "{e}"
        );
        let e = Matrix::parse(&format!(
            "{}tls13_tickets = 1\n",
            BASE.replace("tls = \"1.3\"", "tls = \"1.2\"")
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("field `tls13_tickets`") && e.contains("TLS 1.3"),
            "{e}"
        );
    }
}
