//! TLS configuration from names: protocol versions, cipher suites and key-exchange groups as
//! users type them on the command line, turned into the aws-lc-rs [`CryptoProvider`] that the
//! server, the load generator and the benches all build their rustls configs from.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use rustls::crypto::{CryptoProvider, SupportedKxGroup, aws_lc_rs};
use rustls::{SupportedCipherSuite, SupportedProtocolVersion};

/// Why a TLS name or configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A protocol version other than 1.2 or 1.3.
    #[error("unknown TLS version '{given}'; valid: 1.2, 1.3")]
    UnknownVersion {
        /// What the user wrote.
        given: String,
    },
    /// A cipher-suite name neither IANA nor rustls knows.
    #[error("unknown cipher suite '{given}'; valid: {valid}")]
    UnknownSuite {
        /// What the user wrote.
        given: String,
        /// Every name accepted, comma-separated.
        valid: String,
    },
    /// A key-exchange group name the aws-lc-rs provider lacks.
    #[error("unknown key-exchange group '{given}'; valid: {valid}")]
    UnknownGroup {
        /// What the user wrote.
        given: String,
        /// Every name accepted, comma-separated.
        valid: String,
    },
    /// rustls refused the combination (e.g. TLS 1.2 only with TLS 1.3 suites only).
    #[error("TLS configuration refused by rustls: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A TLS protocol version tlsbench can speak. SSL 3, TLS 1.0 and 1.1 are not offered at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// TLS 1.2 (RFC 5246), with ECDHE AEAD suites only.
    Tls12,
    /// TLS 1.3 (RFC 8446).
    Tls13,
}

impl Version {
    /// The rustls version object.
    pub fn rustls(self) -> &'static SupportedProtocolVersion {
        match self {
            Version::Tls12 => &rustls::version::TLS12,
            Version::Tls13 => &rustls::version::TLS13,
        }
    }

    /// Maps a negotiated rustls version back to ours (`None` for versions we never enable).
    pub fn from_rustls(v: rustls::ProtocolVersion) -> Option<Version> {
        match v {
            rustls::ProtocolVersion::TLSv1_2 => Some(Version::Tls12),
            rustls::ProtocolVersion::TLSv1_3 => Some(Version::Tls13),
            _ => None,
        }
    }

    /// "1.2" or "1.3", as used in flags, labels and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Tls12 => "1.2",
            Version::Tls13 => "1.3",
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Version {
    type Err = TlsError;

    fn from_str(s: &str) -> Result<Self, TlsError> {
        let t = s.trim().to_ascii_lowercase();
        let t = t
            .strip_prefix("tlsv")
            .or_else(|| t.strip_prefix("tls"))
            .unwrap_or(&t);
        match t {
            "1.2" | "12" => Ok(Version::Tls12),
            "1.3" | "13" => Ok(Version::Tls13),
            _ => Err(TlsError::UnknownVersion { given: s.into() }),
        }
    }
}

/// Parses a comma-separated version list ("1.2,1.3"); duplicates are dropped, order kept.
pub fn parse_versions(list: &str) -> Result<Vec<Version>, TlsError> {
    let mut out = Vec::new();
    for part in list.split(',').filter(|p| !p.trim().is_empty()) {
        let v: Version = part.parse()?;
        if !out.contains(&v) {
            out.push(v);
        }
    }
    if out.is_empty() {
        return Err(TlsError::UnknownVersion { given: list.into() });
    }
    Ok(out)
}

/// rustls version objects for `versions`, in the order rustls wants (newest first).
pub fn rustls_versions(versions: &[Version]) -> Vec<&'static SupportedProtocolVersion> {
    let mut v: Vec<Version> = versions.to_vec();
    v.sort_unstable_by(|a, b| b.cmp(a));
    v.dedup();
    v.into_iter().map(Version::rustls).collect()
}

/// Every cipher suite the aws-lc-rs provider implements (all AEAD; TLS 1.2 ones are ECDHE).
pub fn all_suites() -> &'static [SupportedCipherSuite] {
    aws_lc_rs::ALL_CIPHER_SUITES
}

/// Every key-exchange group the aws-lc-rs provider implements, incl. the ML-KEM hybrids.
pub fn all_groups() -> &'static [&'static dyn SupportedKxGroup] {
    aws_lc_rs::ALL_KX_GROUPS
}

/// The IANA name of a suite (`TLS_AES_128_GCM_SHA256`, `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`).
pub fn suite_name(suite: SupportedCipherSuite) -> String {
    let rustls_name = suite.suite().as_str().unwrap_or("unknown");
    match rustls_name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => rustls_name.to_string(),
    }
}

/// The IANA name of a group (`X25519`, `secp256r1`, `X25519MLKEM768`, ...).
pub fn group_name(group: &dyn SupportedKxGroup) -> String {
    group.name().as_str().unwrap_or("unknown").to_string()
}

/// Finds a suite by IANA name or rustls name (`TLS13_...`), case-insensitively.
pub fn find_suite(name: &str) -> Result<SupportedCipherSuite, TlsError> {
    let wanted = name.trim();
    all_suites()
        .iter()
        .copied()
        .find(|s| {
            suite_name(*s).eq_ignore_ascii_case(wanted)
                || s.suite()
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(wanted))
        })
        .ok_or_else(|| TlsError::UnknownSuite {
            given: wanted.into(),
            valid: all_suites()
                .iter()
                .map(|s| suite_name(*s))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Finds a key-exchange group by IANA name, case-insensitively (also `P-256`, `P-384`).
pub fn find_group(name: &str) -> Result<&'static dyn SupportedKxGroup, TlsError> {
    let wanted = match name.trim() {
        n if n.eq_ignore_ascii_case("P-256") || n.eq_ignore_ascii_case("prime256v1") => "secp256r1",
        n if n.eq_ignore_ascii_case("P-384") => "secp384r1",
        n => n,
    };
    all_groups()
        .iter()
        .copied()
        .find(|g| group_name(*g).eq_ignore_ascii_case(wanted))
        .ok_or_else(|| TlsError::UnknownGroup {
            given: name.trim().into(),
            valid: all_groups()
                .iter()
                .map(|g| group_name(*g))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Parses a list of suite names (each element may itself be comma-separated).
pub fn parse_suites(names: &[String]) -> Result<Vec<SupportedCipherSuite>, TlsError> {
    split_names(names).map(find_suite).collect()
}

/// Parses a list of group names (each element may itself be comma-separated).
pub fn parse_groups(names: &[String]) -> Result<Vec<&'static dyn SupportedKxGroup>, TlsError> {
    split_names(names).map(find_group).collect()
}

fn split_names(names: &[String]) -> impl Iterator<Item = &str> {
    names
        .iter()
        .flat_map(|n| n.split(','))
        .map(str::trim)
        .filter(|n| !n.is_empty())
}

/// The aws-lc-rs provider restricted to `suites` and `groups`, each in the given preference
/// order; an empty list keeps the provider's defaults (which prefer X25519MLKEM768).
pub fn provider(
    suites: &[SupportedCipherSuite],
    groups: &[&'static dyn SupportedKxGroup],
) -> Arc<CryptoProvider> {
    let mut p = aws_lc_rs::default_provider();
    if !suites.is_empty() {
        p.cipher_suites = suites.to_vec();
    }
    if !groups.is_empty() {
        p.kx_groups = groups.to_vec();
    }
    Arc::new(p)
}

/// `bad_certificate`-style name of an alert, as in RFC 8446 and Wireshark.
pub fn alert_name(a: rustls::AlertDescription) -> String {
    let debug = format!("{a:?}");
    let mut out = String::with_capacity(debug.len() + 4);
    let mut prev_lower = false;
    for ch in debug.chars() {
        if ch.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            prev_lower = false;
            out.push(ch.to_ascii_lowercase());
            continue;
        }
        prev_lower = ch.is_ascii_lowercase() || ch.is_ascii_digit();
        if ch.is_ascii_alphanumeric() {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_in_user_spellings() {
        assert_eq!(
            parse_versions("1.2,1.3").unwrap(),
            vec![Version::Tls12, Version::Tls13]
        );
        assert_eq!(parse_versions("TLSv1.3").unwrap(), vec![Version::Tls13]);
        assert_eq!(parse_versions("1.3,1.3").unwrap(), vec![Version::Tls13]);
        let err = parse_versions("1.1").unwrap_err().to_string();
        assert_eq!(err, "unknown TLS version '1.1'; valid: 1.2, 1.3");
        assert!(parse_versions("").is_err());
        let v = rustls_versions(&[Version::Tls12, Version::Tls13]);
        assert_eq!(v[0].version, rustls::ProtocolVersion::TLSv1_3);
    }

    #[test]
    fn suites_by_iana_and_rustls_names() {
        let by_iana = find_suite("TLS_AES_128_GCM_SHA256").unwrap();
        let by_rustls = find_suite("tls13_aes_128_gcm_sha256").unwrap();
        assert_eq!(by_iana.suite(), by_rustls.suite());
        assert_eq!(suite_name(by_iana), "TLS_AES_128_GCM_SHA256");
        let tls12 = find_suite("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256").unwrap();
        assert_eq!(tls12.version().version, rustls::ProtocolVersion::TLSv1_2);
        let list =
            parse_suites(&["TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256".into()]).unwrap();
        assert_eq!(list.len(), 2);
    }

    #[test]
    fn unknown_suite_lists_every_valid_name() {
        let err = find_suite("TLS_RSA_WITH_RC4_128_MD5")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("unknown cipher suite 'TLS_RSA_WITH_RC4_128_MD5'; valid: "));
        for s in all_suites() {
            assert!(
                err.contains(&suite_name(*s)),
                "{err} lacks {}",
                suite_name(*s)
            );
        }
        assert_eq!(all_suites().len(), 9);
    }

    #[test]
    fn groups_by_name_and_unknown_listed() {
        for name in [
            "X25519MLKEM768",
            "X25519",
            "secp256r1",
            "secp384r1",
            "P-256",
        ] {
            find_group(name).unwrap();
        }
        assert_eq!(
            group_name(find_group("x25519mlkem768").unwrap()),
            "X25519MLKEM768"
        );
        let err = find_group("ffdhe2048").unwrap_err().to_string();
        assert!(err.contains("valid: "));
        for name in ["X25519MLKEM768", "X25519", "secp256r1", "secp384r1"] {
            assert!(err.contains(name), "{err}");
        }
    }

    #[test]
    fn alert_names_are_snake_case() {
        use rustls::AlertDescription;
        assert_eq!(
            alert_name(AlertDescription::HandshakeFailure),
            "handshake_failure"
        );
        assert_eq!(alert_name(AlertDescription::UnknownCA), "unknown_ca");
        assert_eq!(
            alert_name(AlertDescription::BadCertificate),
            "bad_certificate"
        );
    }

    #[test]
    fn provider_keeps_order_and_defaults() {
        let groups = parse_groups(&["secp256r1,X25519".into()]).unwrap();
        let p = provider(&[], &groups);
        assert_eq!(group_name(p.kx_groups[0]), "secp256r1");
        assert_eq!(p.kx_groups.len(), 2);
        let d = provider(&[], &[]);
        assert_eq!(group_name(d.kx_groups[0]), "X25519MLKEM768");
        assert_eq!(d.cipher_suites.len(), 9);
    }
}
