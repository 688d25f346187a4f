//! Unit tests of certificates: every key type's chain verifies with rustls, validity windows
//! are enforced and refused when unusable, files are written with their modes, and loading
//! refuses what is not a certificate or a private key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::generate::LATEST_CERT_TIME;
use super::*;

use std::fs::Permissions;
use std::process;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{ServerName, UnixTime};
use rustls::{CertificateError, RootCertStore, SignatureScheme};

/// A directory under the system temp dir, removed with its contents on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "tlsbench-certs-{tag}-{}-{}",
            process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn der(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

fn verify(
    chain: &GeneratedChain,
    with_intermediate: bool,
    name: &str,
) -> Result<(), rustls::Error> {
    let mut roots = RootCertStore::empty();
    roots.add(der(&chain.root_pem)).unwrap();
    let verifier = WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
    )
    .build()
    .unwrap();
    let intermediates = if with_intermediate {
        vec![der(&chain.intermediate_pem)]
    } else {
        Vec::new()
    };
    verifier
        .verify_server_cert(
            &der(&chain.leaf_pem),
            &intermediates,
            &ServerName::try_from(name).unwrap(),
            &[],
            UnixTime::now(),
        )
        .map(|_| ())
}

fn certificate_error(result: Result<(), rustls::Error>) -> CertificateError {
    match result {
        Err(rustls::Error::InvalidCertificate(e)) => e,
        other => panic!("expected an invalid-certificate error, got {other:?}"),
    }
}

/// Generates a standard chain and checks it end to end as a rustls client would.
fn check_chain(key_type: KeyType) {
    let chain = generate(key_type, &ChainOptions::default()).unwrap();
    assert_eq!(chain.key_type, key_type);

    for name in ["bank32.com", "localhost", "127.0.0.1", "::1"] {
        verify(&chain, true, name)
            .unwrap_or_else(|e| panic!("{key_type} chain rejected for {name}: {e}"));
    }
    for name in ["example.com", "10.0.0.1"] {
        let err = certificate_error(verify(&chain, true, name));
        assert!(
            matches!(
                err,
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            ),
            "{key_type} for {name}: {err:?}"
        );
    }
    assert_eq!(
        certificate_error(verify(&chain, false, "bank32.com")),
        CertificateError::UnknownIssuer,
        "{key_type} without the intermediate"
    );

    // The key file is PKCS#8, of the right type, and belongs to the leaf certificate.
    let key = PrivateKeyDer::from_pem_slice(chain.leaf_key_pem.as_bytes()).unwrap();
    assert!(matches!(key, PrivateKeyDer::Pkcs8(_)), "{key_type}");
    let signing_key = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key).unwrap();
    let (algorithm, scheme, wrong_scheme) = match key_type {
        KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => (
            rustls::SignatureAlgorithm::RSA,
            SignatureScheme::RSA_PSS_SHA256,
            SignatureScheme::ECDSA_NISTP256_SHA256,
        ),
        KeyType::EcdsaP256 => (
            rustls::SignatureAlgorithm::ECDSA,
            SignatureScheme::ECDSA_NISTP256_SHA256,
            SignatureScheme::ECDSA_NISTP384_SHA384,
        ),
        KeyType::EcdsaP384 => (
            rustls::SignatureAlgorithm::ECDSA,
            SignatureScheme::ECDSA_NISTP384_SHA384,
            SignatureScheme::ECDSA_NISTP256_SHA256,
        ),
        KeyType::Ed25519 => (
            rustls::SignatureAlgorithm::ED25519,
            SignatureScheme::ED25519,
            SignatureScheme::ECDSA_NISTP256_SHA256,
        ),
    };
    assert_eq!(signing_key.algorithm(), algorithm, "{key_type}");
    assert!(
        signing_key.choose_scheme(&[wrong_scheme]).is_none(),
        "{key_type}"
    );
    let signer = signing_key.choose_scheme(&[scheme]).unwrap();
    let signature = signer.sign(b"tlsbench").unwrap();
    let rsa_bytes = match key_type {
        KeyType::Rsa2048 => Some(256),
        KeyType::Rsa3072 => Some(384),
        KeyType::Rsa4096 => Some(512),
        _ => None,
    };
    if let Some(bytes) = rsa_bytes {
        assert_eq!(signature.len(), bytes, "{key_type} modulus size");
    }
    let certified = rustls::sign::CertifiedKey::new(vec![der(&chain.leaf_pem)], signing_key);
    certified.keys_match().unwrap();
}

#[test]
fn rsa2048_chain_verifies() {
    check_chain(KeyType::Rsa2048);
}

#[test]
fn rsa3072_chain_verifies() {
    check_chain(KeyType::Rsa3072);
}

#[test]
fn rsa4096_chain_verifies() {
    check_chain(KeyType::Rsa4096);
}

#[test]
fn ecdsa_p256_chain_verifies() {
    check_chain(KeyType::EcdsaP256);
}

#[test]
fn ecdsa_p384_chain_verifies() {
    check_chain(KeyType::EcdsaP384);
}

#[test]
fn ed25519_chain_verifies() {
    check_chain(KeyType::Ed25519);
}

#[test]
fn chains_outside_their_validity_are_rejected() {
    let day = Duration::from_secs(24 * 3600);
    let now = SystemTime::now();
    let window = |not_before, not_after| ChainOptions {
        not_before,
        not_after,
        ..ChainOptions::default()
    };

    let expired = generate(KeyType::EcdsaP256, &window(now - 10 * day, now - day)).unwrap();
    let err = certificate_error(verify(&expired, true, "bank32.com"));
    assert!(
        matches!(
            err,
            CertificateError::Expired | CertificateError::ExpiredContext { .. }
        ),
        "{err:?}"
    );

    let future = generate(KeyType::EcdsaP256, &window(now + day, now + 10 * day)).unwrap();
    let err = certificate_error(verify(&future, true, "bank32.com"));
    assert!(
        matches!(
            err,
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn unusable_validity_windows_are_refused() {
    let now = SystemTime::now();
    let backwards = ChainOptions {
        not_before: now,
        not_after: now - Duration::from_secs(1),
        ..ChainOptions::default()
    };
    assert!(matches!(
        generate(KeyType::Ed25519, &backwards),
        Err(CertError::InvalidValidity { .. })
    ));
    let too_late = ChainOptions {
        not_after: UNIX_EPOCH + Duration::from_secs(LATEST_CERT_TIME as u64 + 1),
        ..ChainOptions::default()
    };
    assert!(matches!(
        generate(KeyType::Ed25519, &too_late),
        Err(CertError::InvalidValidity { .. })
    ));
}

#[test]
fn write_produces_the_three_files_with_their_modes() {
    let out = TempDir::new("write");
    let chain = generate(KeyType::EcdsaP256, &ChainOptions::default()).unwrap();
    let written = write(&out.0, &chain).unwrap();
    assert_eq!(written, paths(&out.0, KeyType::EcdsaP256));
    assert_eq!(written.dir, out.0.join("ecdsa-p256"));

    let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&written.key), 0o600);
    assert_eq!(mode(&written.chain), 0o644);
    assert_eq!(mode(&written.ca), 0o644);

    // No temporary file is left behind.
    let mut names: Vec<_> = fs::read_dir(&written.dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["ca.pem", "chain.pem", "key.pem"]);

    assert_eq!(
        load_certs(&written.chain).unwrap(),
        [der(&chain.leaf_pem), der(&chain.intermediate_pem)]
    );
    assert_eq!(load_certs(&written.ca).unwrap(), [der(&chain.root_pem)]);

    let key = load_private_key(&written.key).unwrap();
    let expected = PrivateKeyDer::from_pem_slice(chain.leaf_key_pem.as_bytes()).unwrap();
    assert_eq!(key.secret_der(), expected.secret_der());

    fs::set_permissions(&written.key, Permissions::from_mode(0o644)).unwrap();
    let message = load_private_key(&written.key).unwrap_err().to_string();
    assert!(message.contains("chmod 600"), "{message}");
    assert!(message.contains("0644"), "{message}");
    assert!(
        message.contains(&written.key.display().to_string()),
        "{message}"
    );

    fs::set_permissions(&written.key, Permissions::from_mode(0o600)).unwrap();
    load_private_key(&written.key).unwrap();

    // Rewriting replaces every file and keeps the key private.
    let second = generate(KeyType::EcdsaP256, &ChainOptions::default()).unwrap();
    write(&out.0, &second).unwrap();
    assert_eq!(mode(&written.key), 0o600);
    assert_eq!(load_certs(&written.ca).unwrap(), [der(&second.root_pem)]);
    assert_eq!(
        fs::read_to_string(&written.key).unwrap(),
        second.leaf_key_pem
    );
}

#[test]
fn ensure_generates_only_missing_sets() {
    let out = TempDir::new("ensure");
    let types = [KeyType::EcdsaP256, KeyType::Ed25519];
    let first = ensure(&out.0, &types).unwrap();
    assert_eq!(
        first,
        types.map(|kt| paths(&out.0, kt)).to_vec(),
        "paths in the order asked"
    );
    let contents = |p: &CertPaths| [&p.chain, &p.key, &p.ca].map(|path| fs::read(path).unwrap());
    let before: Vec<_> = first.iter().map(contents).collect();
    for p in &first {
        assert_eq!(load_certs(&p.chain).unwrap().len(), 2);
        load_private_key(&p.key).unwrap();
    }

    // Fresh keys are random, so unchanged bytes mean nothing was regenerated.
    let second = ensure(&out.0, &types).unwrap();
    assert_eq!(second, first);
    let after: Vec<_> = second.iter().map(contents).collect();
    assert_eq!(after, before);

    // An incomplete set is regenerated whole; the complete one is left alone.
    fs::remove_file(&first[1].ca).unwrap();
    let third = ensure(&out.0, &types).unwrap();
    assert_eq!(contents(&third[0]), before[0]);
    let regenerated = contents(&third[1]);
    assert_ne!(regenerated[0], before[1][0]);
    assert_ne!(regenerated[1], before[1][1]);
    assert!(!out.0.join(KeyType::Rsa2048.name()).exists());
}

#[test]
fn load_certs_refuses_a_file_without_certificates() {
    let out = TempDir::new("nocert");
    let path = out.0.join("empty.pem");
    fs::write(&path, "no pem here\n").unwrap();
    let err = load_certs(&path).unwrap_err();
    assert!(matches!(err, CertError::NoCertificates { .. }), "{err:?}");
    assert!(err.to_string().contains("empty.pem"), "{err}");
}

#[test]
fn key_type_names_round_trip() {
    for key_type in KeyType::ALL {
        assert_eq!(key_type.name().parse::<KeyType>().unwrap(), key_type);
        assert_eq!(key_type.to_string(), key_type.name());
        assert_eq!(
            format!("{key_type:>12}|"),
            format!("{:>12}|", key_type.name())
        );
    }
    let names: Vec<_> = KeyType::ALL.iter().map(|kt| kt.name()).collect();
    assert_eq!(KeyType::VALID_NAMES, names.join(", "));

    let err = "rsa1024".parse::<KeyType>().unwrap_err();
    assert!(
        matches!(&err, CertError::UnknownKeyType { given, .. } if given == "rsa1024"),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("rsa1024"), "{message}");
    for name in names {
        assert!(message.contains(name), "{message} lacks {name}");
    }
}

/// Verifies `client`'s certificate as a server requiring client certificates does.
fn verify_client(client: &GeneratedClient, at: UnixTime) -> Result<(), rustls::Error> {
    use rustls::server::WebPkiClientVerifier;
    let mut roots = RootCertStore::empty();
    roots.add(der(&client.ca_pem)).unwrap();
    let verifier = WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
    )
    .build()
    .unwrap();
    verifier
        .verify_client_cert(&der(&client.cert_pem), &[], at)
        .map(|_| ())
}

#[test]
fn client_identities_verify_as_client_certificates_for_every_key_type() {
    for kt in [KeyType::EcdsaP256, KeyType::Rsa2048, KeyType::Ed25519] {
        let client = generate_client(kt, &ChainOptions::default()).unwrap();
        verify_client(&client, UnixTime::now()).unwrap_or_else(|e| panic!("{kt}: {e}"));
        // Each key type's client CA carries its name, so a server trusting them all names
        // each apart in its CertificateRequest.
        let mut roots = RootCertStore::empty();
        roots.add(der(&client.ca_pem)).unwrap();
        let subject = roots.roots[0].subject.as_ref().to_vec();
        let name = kt.name().as_bytes();
        assert!(
            subject.windows(name.len()).any(|w| w == name),
            "{kt}: the client CA's subject does not name its key type"
        );
        PrivateKeyDer::from_pem_slice(client.key_pem.as_bytes()).unwrap();
        assert!(!format!("{client:?}").contains(&client.key_pem));
    }
    let expired = generate_client(
        KeyType::EcdsaP256,
        &ChainOptions {
            not_before: SystemTime::now() - Duration::from_secs(7200),
            not_after: SystemTime::now() - Duration::from_secs(3600),
            ..ChainOptions::default()
        },
    )
    .unwrap();
    assert!(matches!(
        certificate_error(verify_client(&expired, UnixTime::now())),
        CertificateError::Expired | CertificateError::ExpiredContext { .. }
    ));
}

#[test]
fn client_files_are_written_beside_the_chain_with_a_private_key() {
    let out = TempDir::new("client");
    let types = [KeyType::EcdsaP256];
    ensure(&out.0, &types).unwrap();
    let p = client_paths(&out.0, KeyType::EcdsaP256);
    let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&p.key), 0o600);
    assert_eq!(mode(&p.cert), 0o644);
    assert_eq!(mode(&p.ca), 0o644);
    load_private_key(&p.key).unwrap();
    assert_eq!(load_certs(&p.cert).unwrap().len(), 1);
    let chain_files = |p: &CertPaths| [&p.chain, &p.key, &p.ca].map(|f| fs::read(f).unwrap());
    let chain_before = chain_files(&paths(&out.0, KeyType::EcdsaP256));
    let client_before = fs::read(&p.cert).unwrap();

    // A missing client file regenerates the client set only; the chain is kept.
    fs::remove_file(&p.key).unwrap();
    ensure(&out.0, &types).unwrap();
    assert_ne!(fs::read(&p.cert).unwrap(), client_before);
    assert_eq!(
        chain_files(&paths(&out.0, KeyType::EcdsaP256)),
        chain_before
    );
    assert_eq!(mode(&p.key), 0o600);
}
