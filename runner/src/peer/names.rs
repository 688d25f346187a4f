//! rustls's cipher suites and key-exchange groups as OpenSSL spells them, for the peers'
//! configurations (nginx's `ssl_ciphers`/`ssl_ecdh_curve`, s_server's `-cipher`/`-groups`).
//! A name without an OpenSSL spelling is refused with its name, never dropped.

use common::tls;
use rustls::SupportedCipherSuite;
use rustls::crypto::SupportedKxGroup;

/// The suites of one row in OpenSSL's two lists: TLS 1.2 (`-cipher`, `ssl_ciphers`) and
/// TLS 1.3 (`-ciphersuites`, `Ciphersuites`), each `:`-joined; empty when none of that version.
pub(crate) fn suites(list: &[SupportedCipherSuite]) -> Result<(String, String), String> {
    let (mut tls12, mut tls13) = (Vec::new(), Vec::new());
    for &s in list {
        let iana = tls::suite_name(s);
        match s {
            // TLS 1.3 suites have one name everywhere.
            SupportedCipherSuite::Tls13(_) => tls13.push(iana),
            SupportedCipherSuite::Tls12(_) => tls12.push(tls12_suite(&iana)?.to_owned()),
        }
    }
    Ok((tls12.join(":"), tls13.join(":")))
}

fn tls12_suite(iana: &str) -> Result<&'static str, String> {
    Ok(match iana {
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => "ECDHE-RSA-CHACHA20-POLY1305",
        other => return Err(format!("no OpenSSL name known for cipher suite {other}")),
    })
}

/// The groups, `:`-joined as OpenSSL's groups list takes them.
pub(crate) fn groups(list: &[&'static dyn SupportedKxGroup]) -> Result<String, String> {
    let names = list
        .iter()
        .map(|g| {
            let iana = tls::group_name(*g);
            group(&iana).map(str::to_owned)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(names.join(":"))
}

fn group(iana: &str) -> Result<&'static str, String> {
    Ok(match iana {
        "X25519" => "X25519",
        "secp256r1" => "P-256",
        "secp384r1" => "P-384",
        "secp521r1" => "P-521",
        // OpenSSL 3.5 took the IANA names of the ML-KEM groups.
        "X25519MLKEM768" => "X25519MLKEM768",
        "secp256r1MLKEM768" | "SecP256r1MLKEM768" => "SecP256r1MLKEM768",
        "MLKEM768" => "MLKEM768",
        "MLKEM1024" => "MLKEM1024",
        other => return Err(format!("no OpenSSL name known for group {other}")),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_suite_and_group_of_the_provider_has_an_openssl_name() {
        let (t12, t13) = suites(tls::all_suites()).unwrap();
        assert!(t12.contains("ECDHE-ECDSA-AES128-GCM-SHA256"), "{t12}");
        assert!(t12.contains("ECDHE-RSA-CHACHA20-POLY1305"), "{t12}");
        assert!(t13.contains("TLS_AES_256_GCM_SHA384"), "{t13}");
        assert!(!t12.contains("TLS_AES"), "{t12}");
        groups(tls::all_groups()).unwrap();
        let g = tls::parse_groups(&["secp256r1".into(), "X25519".into()]).unwrap();
        assert_eq!(groups(&g).unwrap(), "P-256:X25519");
        assert_eq!(suites(&[]).unwrap(), (String::new(), String::new()));
    }

    #[test]
    fn a_name_without_an_openssl_spelling_is_refused_by_name() {
        assert_eq!(
            group("ffdhe2048").unwrap_err(),
            "no OpenSSL name known for group ffdhe2048"
        );
        assert!(
            tls12_suite("TLS_RSA_WITH_NULL_SHA")
                .unwrap_err()
                .contains("TLS_RSA_WITH_NULL_SHA")
        );
    }
}
