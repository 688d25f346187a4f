//! The catalogue against the parsers: every name it prints is accepted for the providers it
//! names and refused by the others, and every name the parsers' tables hold is in it.

use std::str::FromStr as _;

use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject as _;

use super::*;
use crate::tls::TlsError;

/// The line of `text` listing `name` in its first column.
fn line_of<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("{name} not printed:\n{text}"))
}

/// The printed line says "yes" in exactly the columns of the providers the entry names.
fn printed_as_listed(text: &str, e: &Entry) {
    let line = line_of(text, &e.name);
    let marks: Vec<&str> = line
        .split_whitespace()
        .skip(1 + usize::from(e.tls.is_some()))
        .collect();
    let expected: Vec<&str> = Provider::BUILT
        .iter()
        .map(|p| if e.supported_by(*p) { "yes" } else { "-" })
        .collect();
    assert_eq!(marks, expected, "{line}");
    if let Some(tls) = e.tls {
        assert_eq!(line.split_whitespace().nth(1), Some(tls), "{line}");
    }
}

#[test]
fn every_listed_suite_and_group_is_accepted_exactly_by_the_providers_it_names() {
    let c = Catalogue::build();
    let text = c.text();
    assert!(!c.cipher_suites.is_empty() && !c.kx_groups.is_empty());
    for e in &c.cipher_suites {
        printed_as_listed(&text, e);
        for &p in Provider::BUILT {
            match p.find_suite(&e.name) {
                Ok(s) if e.supported_by(p) => {
                    assert_eq!(suite_name(s), e.name);
                    let v = Version::from_rustls(s.version().version).map(Version::as_str);
                    assert_eq!(v, e.tls, "{}", e.name);
                }
                Err(TlsError::ProviderLacksSuite { provider, suite })
                    if !e.supported_by(p) && provider == p && suite == e.name => {}
                other => panic!("{p} and {}: {other:?}", e.name),
            }
        }
    }
    for e in &c.kx_groups {
        printed_as_listed(&text, e);
        for &p in Provider::BUILT {
            match p.find_group(&e.name) {
                Ok(g) if e.supported_by(p) => assert_eq!(group_name(g), e.name),
                Err(TlsError::ProviderLacksGroup { provider, group })
                    if !e.supported_by(p) && provider == p && group == e.name => {}
                other => panic!("{p} and {}: {:?}", e.name, other.map(group_name)),
            }
        }
    }
}

#[test]
fn nothing_the_parsers_accept_is_missing_from_the_list() {
    let c = Catalogue::build();
    let text = c.text();
    let listed = |entries: &[Entry], name: &str, p: Provider| {
        entries.iter().any(|e| e.name == name && e.supported_by(p))
    };
    for &p in Provider::BUILT {
        for s in p.suites() {
            assert!(
                listed(&c.cipher_suites, &suite_name(*s), p),
                "{p}: {}",
                suite_name(*s)
            );
        }
        for g in p.groups() {
            assert!(
                listed(&c.kx_groups, &group_name(*g), p),
                "{p}: {}",
                group_name(*g)
            );
        }
        for s in p.signature_schemes() {
            assert!(
                listed(&c.signature_schemes, &scheme_name(s), p),
                "{p}: {s:?}"
            );
        }
    }
    for k in KeyType::ALL {
        let e = c.cert_types.iter().find(|e| e.name == k.name()).unwrap();
        assert_eq!(KeyType::from_str(&e.name).unwrap(), k);
        printed_as_listed(&text, e);
    }
    assert_eq!(c.cert_types.len(), KeyType::ALL.len());
    for (name, _) in Provider::KNOWN {
        assert!(text.contains(name), "{name}:\n{text}");
    }
    for (alias, iana) in GROUP_ALIASES {
        assert!(
            text.contains(&format!("{alias} = {iana}")),
            "{alias}:\n{text}"
        );
        for &p in Provider::BUILT {
            assert_eq!(
                group_name(p.find_group(alias).unwrap()),
                *iana,
                "{p}: {alias}"
            );
        }
    }
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(
        json["group_aliases"][0],
        serde_json::json!(["P-256", "secp256r1"])
    );
    assert_eq!(
        json["kx_groups"][0]["providers"][0],
        serde_json::json!(Provider::default().name())
    );
}

/// A key of this type as rcgen writes it, read back as the server reads key files.
fn key_der(k: KeyType) -> PrivateKeyDer<'static> {
    let rsa = |size| rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, size);
    let pair = match k {
        KeyType::Rsa2048 => rsa(rcgen::RsaKeySize::_2048),
        KeyType::Rsa3072 => rsa(rcgen::RsaKeySize::_3072),
        KeyType::Rsa4096 => rsa(rcgen::RsaKeySize::_4096),
        KeyType::EcdsaP256 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        KeyType::EcdsaP384 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        KeyType::Ed25519 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519),
    }
    .unwrap();
    PrivateKeyDer::from_pem_slice(pair.serialize_pem().as_bytes()).unwrap()
}

#[test]
fn every_provider_listed_for_a_key_type_signs_with_a_key_of_it() {
    let c = Catalogue::build();
    for k in KeyType::ALL {
        let der = key_der(k);
        let e = c.cert_types.iter().find(|e| e.name == k.name()).unwrap();
        for &p in Provider::BUILT {
            let loaded = p.base().key_provider.load_private_key(der.clone_key());
            let signs = loaded
                .as_ref()
                .is_ok_and(|key| key.choose_scheme(&[tls13_scheme(k)]).is_some());
            assert_eq!(signs, e.supported_by(p), "{p} and {k}: {loaded:?}");
        }
    }
}

#[cfg(feature = "ring")]
#[test]
fn ring_is_listed_without_the_post_quantum_groups_and_refuses_them() {
    let c = Catalogue::build();
    let pq = c
        .kx_groups
        .iter()
        .find(|e| e.name == "X25519MLKEM768")
        .unwrap();
    assert_eq!(pq.providers, [Provider::AwsLcRs]);
    let x25519 = c.kx_groups.iter().find(|e| e.name == "X25519").unwrap();
    assert_eq!(x25519.providers, [Provider::AwsLcRs, Provider::Ring]);
    let text = c.text();
    let line = line_of(&text, "X25519MLKEM768");
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>(),
        ["X25519MLKEM768", "yes", "-"]
    );
    assert_eq!(
        Provider::Ring
            .find_group("X25519MLKEM768")
            .err()
            .unwrap()
            .to_string(),
        "the ring provider has no key-exchange group X25519MLKEM768"
    );
    assert!(c.providers.iter().all(|p| p.built));
}

#[cfg(not(feature = "ring"))]
#[test]
fn without_the_feature_ring_is_listed_as_not_built_naming_the_feature() {
    let c = Catalogue::build();
    let ring = c.providers.iter().find(|p| p.name == "ring").unwrap();
    assert!(!ring.built);
    assert!(
        c.text()
            .contains("ring         not in this build (cargo feature `ring`)"),
        "{}",
        c.text()
    );
}
