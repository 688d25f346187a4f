//! The scenario matrix: a TOML file (the standard one is `scenarios/standard.toml`, built in),
//! parsed into [`Matrix`] and checked before anything runs, so a typo fails in a second rather
//! than ten minutes into a run.

use std::time::Duration;

use serde::Deserialize;

use crate::RunError;
use crate::results::Kind;

/// The standard matrix, as shipped.
pub const STANDARD: &str = include_str!("../../scenarios/standard.toml");

/// Defaults for every scenario.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Concurrent connections.
    #[serde(default = "default_connections")]
    pub connections: usize,
    /// Measured duration per repeat, full mode.
    #[serde(default = "default_duration")]
    pub duration: String,
    /// Warm-up per repeat, full mode.
    #[serde(default = "default_warmup")]
    pub warmup: String,
    /// Measured duration per repeat, `--quick`.
    #[serde(default = "default_quick_duration")]
    pub quick_duration: String,
    /// Warm-up per repeat, `--quick`.
    #[serde(default = "default_quick_warmup")]
    pub quick_warmup: String,
}

fn default_connections() -> usize {
    32
}
fn default_duration() -> String {
    "8s".into()
}
fn default_warmup() -> String {
    "2s".into()
}
fn default_quick_duration() -> String {
    "2s".into()
}
fn default_quick_warmup() -> String {
    "500ms".into()
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            connections: default_connections(),
            duration: default_duration(),
            warmup: default_warmup(),
            quick_duration: default_quick_duration(),
            quick_warmup: default_quick_warmup(),
        }
    }
}

/// One row of the matrix.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Unique name; rows are matched by it.
    pub name: String,
    /// What it measures.
    pub kind: Kind,
    /// "1.2" or "1.3".
    pub tls: String,
    /// Certificate key type.
    #[serde(default = "default_cert")]
    pub cert: String,
    /// Key-exchange groups of both sides.
    #[serde(default)]
    pub kx_groups: Vec<String>,
    /// Cipher suites of both sides.
    #[serde(default)]
    pub cipher_suites: Vec<String>,
    /// The server's resumption: off, stateful, tickets, both.
    #[serde(default = "default_server_resumption")]
    pub server_resumption: String,
    /// The generator's resumption: off, ticket, session-id.
    #[serde(default = "default_resume")]
    pub resume: String,
    /// Body bytes downloaded per request.
    #[serde(default)]
    pub download: Option<u64>,
    /// Body bytes uploaded per request.
    #[serde(default)]
    pub upload: Option<u64>,
    /// Concurrent connections (overrides the default).
    #[serde(default)]
    pub connections: Option<usize>,
}

fn default_cert() -> String {
    "ecdsa-p256".into()
}
fn default_server_resumption() -> String {
    "both".into()
}
fn default_resume() -> String {
    "off".into()
}

/// A parsed, checked matrix.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matrix {
    /// Defaults.
    #[serde(default)]
    pub defaults: Defaults,
    /// Rows, in order.
    #[serde(rename = "scenario", default)]
    pub scenarios: Vec<Scenario>,
}

impl Matrix {
    /// Parses and checks a matrix.
    pub fn parse(text: &str) -> Result<Matrix, RunError> {
        let m: Matrix = toml::from_str(text).map_err(|e| RunError::Scenarios(e.to_string()))?;
        m.check()?;
        Ok(m)
    }

    fn check(&self) -> Result<(), RunError> {
        let bad =
            |name: &str, why: String| RunError::Scenarios(format!("scenario '{name}': {why}"));
        if self.scenarios.is_empty() {
            return Err(RunError::Scenarios("no [[scenario]] in the file".into()));
        }
        let mut seen = std::collections::HashSet::new();
        for s in &self.scenarios {
            if !seen.insert(s.name.as_str()) {
                return Err(bad(&s.name, "name used twice".into()));
            }
            common::tls::parse_versions(&s.tls).map_err(|e| bad(&s.name, e.to_string()))?;
            s.cert
                .parse::<common::certs::KeyType>()
                .map_err(|e| bad(&s.name, e.to_string()))?;
            common::tls::parse_groups(&s.kx_groups).map_err(|e| bad(&s.name, e.to_string()))?;
            common::tls::parse_suites(&s.cipher_suites).map_err(|e| bad(&s.name, e.to_string()))?;
            if !["off", "stateful", "tickets", "both"].contains(&s.server_resumption.as_str()) {
                return Err(bad(
                    &s.name,
                    format!(
                        "server_resumption '{}': off, stateful, tickets or both",
                        s.server_resumption
                    ),
                ));
            }
            if !["off", "ticket", "session-id"].contains(&s.resume.as_str()) {
                return Err(bad(
                    &s.name,
                    format!("resume '{}': off, ticket or session-id", s.resume),
                ));
            }
            if s.kind == Kind::Throughput && s.download.is_none() && s.upload.is_none() {
                return Err(bad(
                    &s.name,
                    "a throughput scenario needs download or upload".into(),
                ));
            }
            if s.download.is_some() && s.upload.is_some() {
                return Err(bad(
                    &s.name,
                    "download and upload are separate scenarios".into(),
                ));
            }
        }
        for d in [
            &self.defaults.duration,
            &self.defaults.warmup,
            &self.defaults.quick_duration,
            &self.defaults.quick_warmup,
        ] {
            humantime::parse_duration(d)
                .map_err(|e| RunError::Scenarios(format!("duration '{d}': {e}")))?;
        }
        Ok(())
    }

    /// Measured duration and warm-up per repeat for the mode.
    pub fn timing(&self, quick: bool) -> (Duration, Duration) {
        let d = &self.defaults;
        let (dur, warm) = if quick {
            (&d.quick_duration, &d.quick_warmup)
        } else {
            (&d.duration, &d.warmup)
        };
        (
            humantime::parse_duration(dur).unwrap_or(Duration::from_secs(2)),
            humantime::parse_duration(warm).unwrap_or(Duration::ZERO),
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_matrix_parses_and_covers_the_issue() {
        let m = Matrix::parse(STANDARD).unwrap();
        let count = |k: Kind| m.scenarios.iter().filter(|s| s.kind == k).count();
        assert_eq!(count(Kind::Handshake), 10);
        assert_eq!(count(Kind::Requests), 1);
        assert_eq!(count(Kind::Throughput), 8);
        assert_eq!(
            m.timing(true),
            (Duration::from_secs(2), Duration::from_millis(500))
        );
    }

    #[test]
    fn mistakes_are_refused_with_the_scenario_name() {
        let base = "[[scenario]]\nname = \"a\"\nkind = \"handshake\"\ntls = \"1.3\"\n";
        assert!(Matrix::parse(base).is_ok());
        let e = Matrix::parse(&format!("{base}cert = \"dsa1024\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("scenario 'a'") && e.contains("dsa1024"), "{e}");
        let e = Matrix::parse(&format!("{base}kx_groups = [\"ffdhe2048\"]\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("ffdhe2048"), "{e}");
        let e = Matrix::parse(&format!("{base}colour = \"red\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("colour"), "{e}");
        assert!(
            Matrix::parse(&format!("{base}{base}")).is_err(),
            "duplicate names"
        );
        assert!(Matrix::parse("").is_err());
    }
}
