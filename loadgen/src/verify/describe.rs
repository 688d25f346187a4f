//! Human messages for certificate verification: a one-line reason for each refusal that names
//! what was expected and what was presented, and a certificate's summary as the one-shot
//! client (`-n 1 -v`) prints it.

use std::net::IpAddr;

use rustls::CertificateError;
use rustls_pki_types::{CertificateDer, ServerName};
use x509_parser::extensions::GeneralName;

use super::{Trust, secs};

/// A one-line, human message for a verification failure that names the expected name and,
/// for a name mismatch, the names the certificate holds; for an unknown issuer, says the
/// chain is not trusted by the given roots and that the server may be missing its
/// intermediate; for expiry, the notAfter and now; not yet valid, the notBefore; and
/// otherwise the rustls error text.
pub fn describe_error(err: &rustls::Error, expected: &ServerName<'_>, trust: &Trust) -> String {
    let name = expected.to_str();
    let rustls::Error::InvalidCertificate(cert_err) = err else {
        return format!("TLS handshake with {name} failed: {err}");
    };
    let untrusted =
        |why: &str| format!("certificate chain of {name} is not trusted by {trust} ({why})");
    #[allow(deprecated)] // `UnsupportedSignatureAlgorithm` may still come from other verifiers.
    match cert_err {
        CertificateError::NotValidForNameContext { presented, .. } if presented.is_empty() => {
            format!("certificate is not valid for the name {name}: it holds no DNS or IP names")
        }
        CertificateError::NotValidForNameContext { presented, .. } => {
            let held: Vec<String> = presented.iter().map(|p| presented_name(p)).collect();
            format!(
                "certificate is not valid for the name {name}: it holds {}",
                held.join(", ")
            )
        }
        CertificateError::NotValidForName => {
            format!("certificate is not valid for the name {name}")
        }
        // webpki cannot tell an issuer it was never shown from one nobody trusts, and a
        // server that sends its leaf without the intermediate (browsers hide that mistake by
        // caching or fetching intermediates) fails exactly like a chain from an unknown CA:
        // name both.
        CertificateError::UnknownIssuer => untrusted(
            "unknown issuer: neither the certificates presented nor these roots hold its \
             issuer; the server may be missing its intermediate certificate",
        ),
        // Path building follows issuer *names*; a trusted CA of the same name but another key
        // (e.g. a CA file from an earlier `certs generate`) ends in these rather than in
        // UnknownIssuer. rustls reports a bad handshake signature the same way, but with a
        // chain that verified that is an attack or a broken server: untrusted either way.
        CertificateError::BadSignature => untrusted("a signature does not verify"),
        CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => untrusted(
            "a signature does not match its issuer's key type: a CA of the same name with another key?",
        ),
        CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithm => {
            untrusted("unsupported signature algorithm")
        }
        CertificateError::ExpiredContext { time, not_after } => format!(
            "certificate chain of {name} has expired: notAfter {}, now {}",
            format_time(secs(*not_after)),
            format_time(secs(*time))
        ),
        CertificateError::Expired => format!("certificate chain of {name} has expired"),
        CertificateError::NotValidYetContext { time, not_before } => format!(
            "certificate chain of {name} is not valid yet: notBefore {}, now {}",
            format_time(secs(*not_before)),
            format_time(secs(*time))
        ),
        CertificateError::NotValidYet => {
            format!("certificate chain of {name} is not valid yet")
        }
        _ => format!("certificate chain of {name} was rejected: {err}"),
    }
}

/// A name from webpki's list of presented names, which are debug renderings
/// (`DnsName("bank32.com")`, `IpAddress(0::1)`), as a user writes it (`bank32.com`, `::1`).
/// Anything else is passed through as webpki wrote it.
fn presented_name(presented: &str) -> String {
    if let Some(dns) = presented
        .strip_prefix("DnsName(\"")
        .and_then(|rest| rest.strip_suffix("\")"))
    {
        return dns.to_owned();
    }
    if let Some(ip) = presented
        .strip_prefix("IpAddress(")
        .and_then(|rest| rest.strip_suffix(')'))
    {
        return ip
            .parse::<IpAddr>()
            .map_or_else(|_| ip.to_owned(), |ip| ip.to_string());
    }
    presented.to_owned()
}

/// Subject, issuer, validity and names of one certificate, as the one-shot client (`-n 1 -v`)
/// prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertSummary {
    /// Subject name, attributes in certificate order ("O=Bank32 Inc., CN=bank32.com").
    pub subject: String,
    /// Issuer name, in the same form.
    pub issuer: String,
    /// Start of validity ("2026-11-28 06:46:52 UTC").
    pub not_before: String,
    /// End of validity, in the same form.
    pub not_after: String,
    /// DNS and IP subject alternative names, in certificate order.
    pub names: Vec<String>,
}

/// Summarises one certificate; `None` if it does not parse as X.509.
pub fn describe_cert(der: &CertificateDer<'_>) -> Option<CertSummary> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let validity = cert.validity();
    // A malformed SAN extension only costs the names, not the rest of the summary.
    let names = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(dns) => Some((*dns).to_owned()),
                GeneralName::IPAddress(bytes) => ip_from_bytes(bytes).map(|ip| ip.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Some(CertSummary {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_before: format_time(validity.not_before.timestamp()),
        not_after: format_time(validity.not_after.timestamp()),
        names,
    })
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        Some(IpAddr::from(v4))
    } else if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
        Some(IpAddr::from(v6))
    } else {
        None
    }
}

/// "2026-11-28 06:46:52 UTC" for seconds since the Unix epoch, the calendar done by the
/// `time` crate (x509-parser's own date type), which also covers the years before 1970 a
/// certificate may hold; a time outside its range (±9999 years) is given as the raw count.
fn format_time(secs: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => format!("{secs} s from the Unix epoch"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use common::certs::KeyType;
    use rustls::client::danger::ServerCertVerifier;
    use rustls_pki_types::UnixTime;
    use server::TlsOptions;

    use super::super::testutil::{
        ca_file, caching, chain, client, handshake, name, pem_certs, start, unix,
    };
    use super::super::{Trust, root_store};
    use super::*;

    #[test]
    fn wrong_name_is_rejected_and_described_with_the_names_held() {
        let a = chain(KeyType::EcdsaP256);
        let trust = Trust::CaFile(ca_file(&[&a]));
        let verifier = caching(root_store(&trust).unwrap());
        let cfg = client(verifier.clone());
        let (server, addr) = start(&a, &TlsOptions::default());
        let err = handshake(addr, &cfg, "evil.example").unwrap_err();
        let text = describe_error(&err, &name("evil.example"), &trust);
        assert_eq!(
            text,
            "certificate is not valid for the name evil.example: it holds bank32.com, \
             localhost, 127.0.0.1, ::1"
        );
        assert_eq!(verifier.hits(), 0);
        server.stop().unwrap();
    }

    #[test]
    fn untrusted_chain_is_rejected_and_names_the_trust_source() {
        let a = chain(KeyType::EcdsaP256);
        let (server, addr) = start(&a, &TlsOptions::default());
        let bank = name("bank32.com");
        // Generated CAs all share one name, so a CA file from another generation names the
        // right issuer with the wrong key: path building fails on the signature, not on the
        // issuer name.
        for (other, why) in [
            (
                chain(KeyType::Ed25519),
                "a signature does not match its issuer's key type: a CA of the same name with \
                 another key?",
            ),
            (chain(KeyType::EcdsaP256), "a signature does not verify"),
        ] {
            let path = ca_file(&[&other]);
            let trust = Trust::CaFile(path.clone());
            let verifier = caching(root_store(&trust).unwrap());
            let err = handshake(addr, &client(verifier.clone()), "bank32.com").unwrap_err();
            let text = describe_error(&err, &bank, &trust);
            assert_eq!(
                text,
                format!(
                    "certificate chain of bank32.com is not trusted by CA file {} ({why})",
                    path.display()
                )
            );
            assert!(text.contains("not trusted"), "{text}");
            assert_eq!((verifier.misses(), verifier.hits()), (1, 0));
        }

        // Without the intermediate, no issuer of the leaf is known at all.
        let trust = Trust::CaFile(ca_file(&[&a]));
        let verifier = caching(root_store(&trust).unwrap());
        let leaf = &pem_certs(&a.leaf_pem)[0];
        let err = verifier
            .verify_server_cert(leaf, &[], &bank, &[], UnixTime::now())
            .unwrap_err();
        assert_eq!(
            describe_error(&err, &bank, &Trust::Platform),
            "certificate chain of bank32.com is not trusted by the platform's roots \
             (unknown issuer: neither the certificates presented nor these roots hold its \
             issuer; the server may be missing its intermediate certificate)"
        );
        server.stop().unwrap();
    }

    #[test]
    fn not_yet_valid_and_other_errors_are_described() {
        let b = name("bank32.com");
        let trust = Trust::Platform;
        let err = rustls::Error::InvalidCertificate(CertificateError::NotValidYetContext {
            time: unix(0),
            not_before: unix(1_795_848_412),
        });
        assert_eq!(
            describe_error(&err, &b, &trust),
            "certificate chain of bank32.com is not valid yet: notBefore 2026-11-28 \
             06:46:52 UTC, now 1970-01-01 00:00:00 UTC"
        );
        let err = rustls::Error::InvalidCertificate(CertificateError::Revoked);
        let text = describe_error(&err, &b, &trust);
        assert!(
            text.starts_with("certificate chain of bank32.com was rejected: "),
            "{text}"
        );
        assert_eq!(presented_name("DnsName(\"a.example\")"), "a.example");
        assert_eq!(presented_name("IpAddress(0::1)"), "::1");
        assert_eq!(presented_name("IpAddress(10.0.0.1)"), "10.0.0.1");
        assert_eq!(presented_name("plain.example"), "plain.example");
        let err = rustls::Error::General("boom".into());
        assert_eq!(
            describe_error(&err, &b, &trust),
            "TLS handshake with bank32.com failed: unexpected error: boom"
        );
    }

    #[test]
    fn dates_format_as_utc() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_time(1_795_848_412), "2026-11-28 06:46:52 UTC");
        assert_eq!(format_time(-631_152_000), "1950-01-01 00:00:00 UTC");
        assert_eq!(
            format_time(i64::MAX),
            format!("{} s from the Unix epoch", i64::MAX)
        );
        assert_eq!(format_time(-1), "1969-12-31 23:59:59 UTC");
        assert_eq!(format_time(253_402_300_799), "9999-12-31 23:59:59 UTC");
    }

    #[test]
    fn describe_cert_summarises_the_leaf() {
        let a = chain(KeyType::EcdsaP256);
        let leaf = &pem_certs(&a.leaf_pem)[0];
        let summary = describe_cert(leaf).unwrap();
        assert!(summary.subject.contains("CN=bank32.com"), "{summary:?}");
        assert_eq!(summary.subject, "O=Bank32 Inc., CN=bank32.com");
        assert!(
            summary.issuer.contains("Model CA Intermediate"),
            "{summary:?}"
        );
        assert_eq!(
            summary.names,
            ["bank32.com", "localhost", "127.0.0.1", "::1"]
        );
        assert!(summary.not_before.ends_with(" UTC"), "{summary:?}");
        assert!(summary.not_before < summary.not_after, "{summary:?}");
        assert!(describe_cert(&CertificateDer::from(vec![1, 2, 3])).is_none());
    }
}
