//! TLS configuration from names: protocol versions, cipher suites, key-exchange groups and the
//! crypto [`Provider`] as users type them on the command line, turned into the rustls
//! [`CryptoProvider`] that the server, the load generator and the benches all build their
//! rustls configs from. A name the chosen provider lacks is refused here, at parse time, with
//! the provider's name; [`catalogue`] lists what each provider supports (`tlsbench list`).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use rustls::crypto::{CryptoProvider, SupportedKxGroup, aws_lc_rs};
use rustls::server::ProducesTickets;
use rustls::{SignatureScheme, SupportedCipherSuite, SupportedProtocolVersion};

pub mod catalogue;

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
    /// A key-exchange group name no provider of this build knows.
    #[error("unknown key-exchange group '{given}'; valid: {valid}")]
    UnknownGroup {
        /// What the user wrote.
        given: String,
        /// Every name accepted, comma-separated.
        valid: String,
    },
    /// A provider name other than those [`Provider::KNOWN`] lists.
    #[error("unknown crypto provider '{given}'; valid: {valid}")]
    UnknownProvider {
        /// What the user wrote.
        given: String,
        /// Every provider name of this build, comma-separated.
        valid: String,
    },
    /// A provider tlsbench knows but this build left out.
    #[error(
        "the {name} crypto provider is not in this build: rebuild with the cargo feature `{feature}` (cargo build --features {feature})"
    )]
    ProviderNotBuilt {
        /// The provider asked for.
        name: &'static str,
        /// The cargo feature that builds it in.
        feature: &'static str,
    },
    /// A cipher suite another provider has but the chosen one lacks.
    #[error("the {provider} provider has no cipher suite {suite}")]
    ProviderLacksSuite {
        /// The chosen provider.
        provider: Provider,
        /// The suite's IANA name.
        suite: String,
    },
    /// A key-exchange group another provider has but the chosen one lacks.
    #[error("the {provider} provider has no key-exchange group {group}")]
    ProviderLacksGroup {
        /// The chosen provider.
        provider: Provider,
        /// The group's IANA name.
        group: String,
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

/// Other names `--kx-groups` takes for a group, with the IANA name each stands for (the
/// curve names OpenSSL and NIST use).
pub const GROUP_ALIASES: &[(&str, &str)] = &[
    ("P-256", "secp256r1"),
    ("prime256v1", "secp256r1"),
    ("P-384", "secp384r1"),
];

/// A rustls crypto provider: the library doing a connection's cryptography, chosen per side
/// (`--provider`) so providers can be compared row by row. aws-lc-rs is the default; ring
/// exists only in builds with the cargo feature `ring`, so a value of this type is always one
/// this build can run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Provider {
    /// AWS-LC through aws-lc-rs: the only one with the ML-KEM hybrids and P-521 signatures.
    #[default]
    AwsLcRs,
    /// *ring*: no post-quantum key exchange, no P-521.
    #[cfg(feature = "ring")]
    Ring,
}

impl Provider {
    /// Every provider of this build, the default first.
    pub const BUILT: &'static [Provider] = &[
        Provider::AwsLcRs,
        #[cfg(feature = "ring")]
        Provider::Ring,
    ];

    /// Every provider tlsbench knows, by name, with the cargo feature that builds it in
    /// (`None`: always built).
    pub const KNOWN: &'static [(&'static str, Option<&'static str>)] =
        &[("aws-lc-rs", None), ("ring", Some("ring"))];

    /// The name the flags and scenario files use (`aws-lc-rs`, `ring`).
    pub fn name(self) -> &'static str {
        match self {
            Provider::AwsLcRs => "aws-lc-rs",
            #[cfg(feature = "ring")]
            Provider::Ring => "ring",
        }
    }

    /// The provider with rustls's defaults (its default suites and groups, in its order).
    fn base(self) -> CryptoProvider {
        match self {
            Provider::AwsLcRs => aws_lc_rs::default_provider(),
            #[cfg(feature = "ring")]
            Provider::Ring => rustls::crypto::ring::default_provider(),
        }
    }

    /// Every cipher suite the provider implements (all AEAD; TLS 1.2 ones are ECDHE).
    pub fn suites(self) -> &'static [SupportedCipherSuite] {
        match self {
            Provider::AwsLcRs => aws_lc_rs::ALL_CIPHER_SUITES,
            #[cfg(feature = "ring")]
            Provider::Ring => rustls::crypto::ring::ALL_CIPHER_SUITES,
        }
    }

    /// Every key-exchange group the provider implements (aws-lc-rs: incl. the ML-KEM hybrids).
    pub fn groups(self) -> &'static [&'static dyn SupportedKxGroup] {
        match self {
            Provider::AwsLcRs => aws_lc_rs::ALL_KX_GROUPS,
            #[cfg(feature = "ring")]
            Provider::Ring => rustls::crypto::ring::ALL_KX_GROUPS,
        }
    }

    /// The signature schemes the provider verifies in handshakes, in its preference order.
    pub fn signature_schemes(self) -> Vec<SignatureScheme> {
        self.base()
            .signature_verification_algorithms
            .mapping
            .iter()
            .map(|(scheme, _)| *scheme)
            .collect()
    }

    /// A ticket encrypter of this provider whose keys rotate every 6 hours, in memory only.
    pub fn ticketer(self) -> Result<Arc<dyn ProducesTickets>, TlsError> {
        let t = match self {
            Provider::AwsLcRs => aws_lc_rs::Ticketer::new()?,
            #[cfg(feature = "ring")]
            Provider::Ring => rustls::crypto::ring::Ticketer::new()?,
        };
        Ok(t)
    }

    /// Finds one of the provider's suites by IANA name or rustls name (`TLS13_...`),
    /// case-insensitively; a suite only another provider has is refused naming this one.
    pub fn find_suite(self, name: &str) -> Result<SupportedCipherSuite, TlsError> {
        let wanted = name.trim();
        let matches = |s: &SupportedCipherSuite| {
            suite_name(*s).eq_ignore_ascii_case(wanted)
                || s.suite()
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(wanted))
        };
        if let Some(s) = self.suites().iter().find(|s| matches(s)) {
            return Ok(*s);
        }
        if let Some(s) = Provider::BUILT
            .iter()
            .flat_map(|p| p.suites())
            .find(|s| matches(s))
        {
            return Err(TlsError::ProviderLacksSuite {
                provider: self,
                suite: suite_name(*s),
            });
        }
        Err(TlsError::UnknownSuite {
            given: wanted.into(),
            valid: self
                .suites()
                .iter()
                .map(|s| suite_name(*s))
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// Finds one of the provider's key-exchange groups by IANA name, case-insensitively (also
    /// `P-256`, `prime256v1`, `P-384`); a group only another provider has is refused naming
    /// this one.
    pub fn find_group(self, name: &str) -> Result<&'static dyn SupportedKxGroup, TlsError> {
        let given = name.trim();
        let wanted = GROUP_ALIASES
            .iter()
            .find(|(alias, _)| alias.eq_ignore_ascii_case(given))
            .map_or(given, |(_, iana)| *iana);
        let matches = |g: &dyn SupportedKxGroup| group_name(g).eq_ignore_ascii_case(wanted);
        if let Some(g) = self.groups().iter().find(|g| matches(**g)) {
            return Ok(*g);
        }
        if let Some(g) = Provider::BUILT
            .iter()
            .flat_map(|p| p.groups())
            .find(|g| matches(**g))
        {
            return Err(TlsError::ProviderLacksGroup {
                provider: self,
                group: group_name(*g),
            });
        }
        Err(TlsError::UnknownGroup {
            given: name.trim().into(),
            valid: self
                .groups()
                .iter()
                .map(|g| group_name(*g))
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// Parses a list of suite names (each element may itself be comma-separated).
    pub fn parse_suites(self, names: &[String]) -> Result<Vec<SupportedCipherSuite>, TlsError> {
        split_names(names).map(|n| self.find_suite(n)).collect()
    }

    /// Parses a list of group names (each element may itself be comma-separated).
    pub fn parse_groups(
        self,
        names: &[String],
    ) -> Result<Vec<&'static dyn SupportedKxGroup>, TlsError> {
        split_names(names).map(|n| self.find_group(n)).collect()
    }

    /// This provider restricted to `suites` and `groups`, each in the given preference order;
    /// an empty list keeps the provider's defaults. Suites and groups are taken by their IANA
    /// identity and resolved again in this provider, so one parsed for another provider
    /// never slips its crypto into this one: a suite or group the provider lacks is refused.
    pub fn crypto(
        self,
        suites: &[SupportedCipherSuite],
        groups: &[&'static dyn SupportedKxGroup],
    ) -> Result<Arc<CryptoProvider>, TlsError> {
        let mut p = self.base();
        if !suites.is_empty() {
            p.cipher_suites = suites
                .iter()
                .map(|wanted| {
                    self.suites()
                        .iter()
                        .find(|s| s.suite() == wanted.suite())
                        .copied()
                        .ok_or_else(|| TlsError::ProviderLacksSuite {
                            provider: self,
                            suite: suite_name(*wanted),
                        })
                })
                .collect::<Result<_, _>>()?;
        }
        if !groups.is_empty() {
            p.kx_groups = groups
                .iter()
                .map(|wanted| {
                    self.groups()
                        .iter()
                        .find(|g| g.name() == wanted.name())
                        .copied()
                        .ok_or_else(|| TlsError::ProviderLacksGroup {
                            provider: self,
                            group: group_name(*wanted),
                        })
                })
                .collect::<Result<_, _>>()?;
        }
        Ok(Arc::new(p))
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for Provider {
    type Err = TlsError;

    fn from_str(s: &str) -> Result<Self, TlsError> {
        let given = s.trim();
        if let Some(p) = Provider::BUILT
            .iter()
            .find(|p| p.name().eq_ignore_ascii_case(given))
        {
            return Ok(*p);
        }
        if let Some((name, Some(feature))) = Provider::KNOWN
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(given))
        {
            return Err(TlsError::ProviderNotBuilt { name, feature });
        }
        Err(TlsError::UnknownProvider {
            given: given.into(),
            valid: Provider::BUILT
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }
}

impl serde::Serialize for Provider {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Every cipher suite the default provider (aws-lc-rs) implements.
pub fn all_suites() -> &'static [SupportedCipherSuite] {
    Provider::AwsLcRs.suites()
}

/// Every key-exchange group the default provider (aws-lc-rs) implements.
pub fn all_groups() -> &'static [&'static dyn SupportedKxGroup] {
    Provider::AwsLcRs.groups()
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

/// [`Provider::find_suite`] of the default provider (aws-lc-rs).
pub fn find_suite(name: &str) -> Result<SupportedCipherSuite, TlsError> {
    Provider::AwsLcRs.find_suite(name)
}

/// [`Provider::find_group`] of the default provider (aws-lc-rs).
pub fn find_group(name: &str) -> Result<&'static dyn SupportedKxGroup, TlsError> {
    Provider::AwsLcRs.find_group(name)
}

/// [`Provider::parse_suites`] of the default provider (aws-lc-rs).
pub fn parse_suites(names: &[String]) -> Result<Vec<SupportedCipherSuite>, TlsError> {
    Provider::AwsLcRs.parse_suites(names)
}

/// [`Provider::parse_groups`] of the default provider (aws-lc-rs).
pub fn parse_groups(names: &[String]) -> Result<Vec<&'static dyn SupportedKxGroup>, TlsError> {
    Provider::AwsLcRs.parse_groups(names)
}

fn split_names(names: &[String]) -> impl Iterator<Item = &str> {
    names
        .iter()
        .flat_map(|n| n.split(','))
        .map(str::trim)
        .filter(|n| !n.is_empty())
}

/// The default provider (aws-lc-rs) restricted to `suites` and `groups`, each in the given
/// preference order; an empty list keeps the provider's defaults (which prefer
/// X25519MLKEM768). The objects are used as given: configs that choose a provider use
/// [`Provider::crypto`].
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
    fn providers_by_name_and_unknown_ones_listed() {
        assert_eq!("aws-lc-rs".parse::<Provider>().unwrap(), Provider::AwsLcRs);
        assert_eq!(
            " AWS-LC-RS ".parse::<Provider>().unwrap(),
            Provider::AwsLcRs
        );
        assert_eq!(Provider::default(), Provider::AwsLcRs);
        let err = "openssl".parse::<Provider>().unwrap_err().to_string();
        assert!(
            err.starts_with("unknown crypto provider 'openssl'; valid: aws-lc-rs"),
            "{err}"
        );
        for p in Provider::BUILT {
            assert_eq!(p.name().parse::<Provider>().unwrap(), *p);
            assert_eq!(serde_json::to_value(p).unwrap(), p.name());
        }
    }

    #[cfg(not(feature = "ring"))]
    #[test]
    fn ring_without_its_feature_is_refused_naming_the_feature() {
        let err = "ring".parse::<Provider>().unwrap_err().to_string();
        assert_eq!(
            err,
            "the ring crypto provider is not in this build: rebuild with the cargo feature `ring` (cargo build --features ring)"
        );
    }

    #[cfg(feature = "ring")]
    #[test]
    fn ring_lacks_the_post_quantum_groups_and_says_so() {
        let ring: Provider = "ring".parse().unwrap();
        assert_eq!(ring, Provider::Ring);
        let err = ring
            .parse_groups(&["X25519,X25519MLKEM768".into()])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "the ring provider has no key-exchange group X25519MLKEM768"
        );
        // A name neither provider has is unknown, with ring's own names as the valid ones.
        let err = ring.find_group("ffdhe2048").unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown key-exchange group 'ffdhe2048'; valid: X25519, secp256r1, secp384r1"
        );
        let groups = ring.parse_groups(&["P-256,x25519".into()]).unwrap();
        let p = ring.crypto(&[], &groups).unwrap();
        assert_eq!(group_name(p.kx_groups[0]), "secp256r1");
        // The provider's own randomness: proof the config runs on ring, not on aws-lc-rs.
        assert_eq!(format!("{:?}", p.secure_random), "Ring");
        assert_eq!(ring.crypto(&[], &[]).unwrap().cipher_suites.len(), 9);
        assert!(ring.ticketer().unwrap().enabled());
    }

    #[cfg(feature = "ring")]
    #[test]
    fn a_group_or_suite_parsed_for_another_provider_is_resolved_again_or_refused() {
        let aws = parse_groups(&["X25519".into()]).unwrap();
        let suites = parse_suites(&["TLS_AES_128_GCM_SHA256".into()]).unwrap();
        let p = Provider::Ring.crypto(&suites, &aws).unwrap();
        assert!(std::ptr::addr_eq(
            p.kx_groups[0],
            rustls::crypto::ring::kx_group::X25519
        ));
        assert_eq!(
            p.cipher_suites[0],
            rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256
        );
        let pq = parse_groups(&["X25519MLKEM768".into()]).unwrap();
        let err = Provider::Ring.crypto(&[], &pq).unwrap_err().to_string();
        assert_eq!(
            err,
            "the ring provider has no key-exchange group X25519MLKEM768"
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
        let chosen = Provider::AwsLcRs.crypto(&[], &groups).unwrap();
        assert_eq!(group_name(chosen.kx_groups[0]), "secp256r1");
        assert_eq!(format!("{:?}", chosen.secure_random), "AwsLcRs");
        let d = Provider::AwsLcRs.crypto(&[], &[]).unwrap();
        assert_eq!(group_name(d.kx_groups[0]), "X25519MLKEM768");
    }
}
