//! The crypto floor (criterion group `floor`): the aws-lc-rs primitives a TLS handshake or record
//! cannot avoid, measured directly so `tlsbench bench-report` can say how close rustls gets.
//!
//! IDs: `sign/{rsa2048,rsa2048-pkcs1,ecdsa-p256,ed25519}`, `verify/{same}`,
//! `kx/{x25519,secp256r1,secp384r1}`, `kx/x25519mlkem768-{server,client}`,
//! `hkdf/tls13-schedule`, `hkdf/expand-label`, `aead/seal/{aes-128-gcm,aes-256-gcm,
//! chacha20-poly1305}/16384`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use aws_lc_rs::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use aws_lc_rs::{aead, digest, hkdf, hmac, kem};
use common::certs::{self, ChainOptions, KeyType};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject as _;

/// What a TLS 1.3 CertificateVerify signs: 64 spaces, the 33-byte context string, a zero byte
/// and a SHA-256 transcript hash (RFC 8446 section 4.4.3).
const SIGNED_LEN: usize = 64 + 33 + 1 + 32;

/// A full-size TLS record's plaintext.
const RECORD: usize = 16384;

/// The PKCS#8 DER of a freshly generated leaf key: the same generator, type and size the
/// handshake benches' certificates use.
fn leaf_pkcs8(key_type: KeyType) -> Vec<u8> {
    let chain = certs::generate(key_type, &ChainOptions::default()).unwrap();
    match PrivateKeyDer::from_pem_slice(chain.leaf_key_pem.as_bytes()).unwrap() {
        PrivateKeyDer::Pkcs8(der) => der.secret_pkcs8_der().to_vec(),
        other => panic!("{key_type}: leaf key is not PKCS#8: {other:?}"),
    }
}

/// Signs a message with a fixed key, returning the signature.
type Signer = Box<dyn Fn(&[u8]) -> Vec<u8>>;

/// A signer and the matching verification of one signature scheme.
struct Scheme {
    /// The ID suffix (`sign/{id}`, `verify/{id}`), the certificate's key type name.
    id: &'static str,
    sign: Signer,
    public_key: Vec<u8>,
    verify_alg: &'static dyn signature::VerificationAlgorithm,
}

fn schemes() -> Vec<Scheme> {
    let rng = SystemRandom::new();
    let mut out = Vec::new();

    let rsa = Arc::new(RsaKeyPair::from_pkcs8(&leaf_pkcs8(KeyType::Rsa2048)).unwrap());
    let rsa_public = rsa.public_key().as_ref().to_vec();
    // TLS 1.3 allows only RSA-PSS in CertificateVerify; TLS 1.2 ServerKeyExchange usually
    // carries PKCS#1 v1.5. Same key, so the two IDs differ only in the padding.
    for (id, encoding, verify_alg) in [
        (
            "rsa2048",
            &signature::RSA_PSS_SHA256 as &'static dyn signature::RsaEncoding,
            &signature::RSA_PSS_2048_8192_SHA256 as &'static dyn signature::VerificationAlgorithm,
        ),
        (
            "rsa2048-pkcs1",
            &signature::RSA_PKCS1_SHA256,
            &signature::RSA_PKCS1_2048_8192_SHA256,
        ),
    ] {
        let key = Arc::clone(&rsa);
        let rng = rng.clone();
        out.push(Scheme {
            id,
            sign: Box::new(move |msg| {
                let mut sig = vec![0u8; key.public_modulus_len()];
                key.sign(encoding, &rng, msg, &mut sig).unwrap();
                sig
            }),
            public_key: rsa_public.clone(),
            verify_alg,
        });
    }

    let ecdsa = EcdsaKeyPair::from_pkcs8(
        &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &leaf_pkcs8(KeyType::EcdsaP256),
    )
    .unwrap();
    let ecdsa_public = ecdsa.public_key().as_ref().to_vec();
    let ecdsa_rng = rng.clone();
    out.push(Scheme {
        id: "ecdsa-p256",
        sign: Box::new(move |msg| ecdsa.sign(&ecdsa_rng, msg).unwrap().as_ref().to_vec()),
        public_key: ecdsa_public,
        verify_alg: &signature::ECDSA_P256_SHA256_ASN1,
    });

    // `maybe_unchecked` as rustls loads Ed25519 keys: rcgen writes PKCS#8 v1 or v2.
    let ed = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&leaf_pkcs8(KeyType::Ed25519)).unwrap();
    let ed_public = ed.public_key().as_ref().to_vec();
    out.push(Scheme {
        id: "ed25519",
        sign: Box::new(move |msg| ed.sign(msg).as_ref().to_vec()),
        public_key: ed_public,
        verify_alg: &signature::ED25519,
    });
    out
}

fn bench_signatures(c: &mut Criterion) {
    let msg = [0x20u8; SIGNED_LEN];
    let schemes = schemes();
    let mut group = c.benchmark_group("floor");
    for scheme in &schemes {
        // The returned Vec is part of the cost, as rustls also returns an owned signature.
        group.bench_function(format!("sign/{}", scheme.id), |b| {
            b.iter(|| (scheme.sign)(black_box(&msg)));
        });
    }
    for scheme in &schemes {
        let sig = (scheme.sign)(&msg);
        // The public key is re-parsed on every verification, as the client does per
        // connection: it takes the key from a certificate it has just received.
        group.bench_function(format!("verify/{}", scheme.id), |b| {
            b.iter(|| {
                signature::UnparsedPublicKey::new(scheme.verify_alg, black_box(&scheme.public_key))
                    .verify(black_box(&msg), black_box(&sig))
                    .unwrap();
            });
        });
    }
    group.finish();
}

/// One side of an ECDHE exchange, as rustls's provider does it: generate an ephemeral key,
/// compute its public key (sent in the key share), agree with the peer's public key.
fn ecdhe(alg: &'static agreement::Algorithm, rng: &SystemRandom, peer: &[u8]) -> [u8; 32] {
    let private = EphemeralPrivateKey::generate(alg, rng).unwrap();
    let public = private.compute_public_key().unwrap();
    black_box(public.as_ref());
    agreement::agree_ephemeral(
        private,
        UnparsedPublicKey::new(alg, peer),
        (),
        |secret: &[u8]| {
            // Only the first 32 bytes are kept: the secret feeds HKDF and is not the point here.
            let mut out = [0u8; 32];
            let n = secret.len().min(32);
            out[..n].copy_from_slice(&secret[..n]);
            Ok(out)
        },
    )
    .unwrap()
}

fn peer_public(alg: &'static agreement::Algorithm, rng: &SystemRandom) -> Vec<u8> {
    let peer = EphemeralPrivateKey::generate(alg, rng).unwrap();
    peer.compute_public_key().unwrap().as_ref().to_vec()
}

fn bench_kx(c: &mut Criterion) {
    let rng = SystemRandom::new();
    let mut group = c.benchmark_group("floor");
    for (id, alg) in [
        ("x25519", &agreement::X25519),
        ("secp256r1", &agreement::ECDH_P256),
        ("secp384r1", &agreement::ECDH_P384),
    ] {
        let peer = peer_public(alg, &rng);
        group.bench_function(format!("kx/{id}"), |b| {
            b.iter(|| ecdhe(alg, &rng, black_box(&peer)));
        });
    }

    // X25519MLKEM768 (draft-ietf-tls-ecdhe-mlkem): the client sends an ML-KEM-768 encapsulation
    // key and an X25519 share; the server encapsulates to the key and does X25519; the client
    // decapsulates the ciphertext and does X25519.
    let x25519_peer = peer_public(&agreement::X25519, &rng);
    let client_decaps = kem::DecapsulationKey::generate(&kem::ML_KEM_768).unwrap();
    let client_encaps_bytes = client_decaps
        .encapsulation_key()
        .unwrap()
        .key_bytes()
        .unwrap()
        .as_ref()
        .to_vec();
    group.bench_function("kx/x25519mlkem768-server", |b| {
        b.iter(|| {
            // Parsing the received key is part of the server's work, as in rustls.
            let encaps =
                kem::EncapsulationKey::new(&kem::ML_KEM_768, black_box(&client_encaps_bytes))
                    .unwrap();
            let (ciphertext, secret) = encaps.encapsulate().unwrap();
            black_box((ciphertext.as_ref(), secret.as_ref()));
            ecdhe(&agreement::X25519, &rng, black_box(&x25519_peer))
        });
    });

    let server_ciphertext = {
        let encaps = kem::EncapsulationKey::new(&kem::ML_KEM_768, &client_encaps_bytes).unwrap();
        encaps.encapsulate().unwrap().0.as_ref().to_vec()
    };
    group.bench_function("kx/x25519mlkem768-client", |b| {
        b.iter(|| {
            // A fresh key pair per connection, its encapsulation key serialised for the key
            // share. Decapsulating a ciphertext made for another key costs the same (ML-KEM's
            // implicit rejection is constant time) and keeps the setup outside the loop.
            let decaps = kem::DecapsulationKey::generate(&kem::ML_KEM_768).unwrap();
            let encaps_bytes = decaps.encapsulation_key().unwrap().key_bytes().unwrap();
            black_box(encaps_bytes.as_ref());
            let secret = decaps
                .decapsulate(black_box(server_ciphertext.as_slice()).into())
                .unwrap();
            black_box(secret.as_ref());
            ecdhe(&agreement::X25519, &rng, black_box(&x25519_peer))
        });
    });
    group.finish();
}

/// An HKDF output length, as rustls's provider passes it.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand-Label (RFC 8446 section 7.1) into `out`, with the info built from slices the way
/// rustls does (no allocation).
fn expand_label(prk: &hkdf::Prk, label: &[u8], context: &[u8], out: &mut [u8]) {
    let length = u16::try_from(out.len()).unwrap().to_be_bytes();
    let label_len = [u8::try_from(6 + label.len()).unwrap()];
    let context_len = [u8::try_from(context.len()).unwrap()];
    let info: [&[u8]; 6] = [&length, &label_len, b"tls13 ", label, &context_len, context];
    prk.expand(&info, Len(out.len()))
        .unwrap()
        .fill(out)
        .unwrap();
}

/// A 32-byte secret, then expanded from with a `new_less_safe` PRK as rustls's
/// `expander_for_okm` does.
fn derive(prk: &hkdf::Prk, label: &[u8], context: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    expand_label(prk, label, context, &mut out);
    out
}

fn prk(secret: &[u8; 32]) -> hkdf::Prk {
    hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, secret)
}

/// Traffic key and IV of one direction (AES-128-GCM: 16-byte key, 12-byte IV).
fn traffic_keys(secret: &[u8; 32]) -> ([u8; 16], [u8; 12]) {
    let expander = prk(secret);
    let mut key = [0u8; 16];
    let mut iv = [0u8; 12];
    expand_label(&expander, b"key", &[], &mut key);
    expand_label(&expander, b"iv", &[], &mut iv);
    (key, iv)
}

/// The Finished verify_data of one side: the finished key, then HMAC over the transcript hash.
fn finished(secret: &[u8; 32], transcript: &[u8; 32]) -> hmac::Tag {
    let key = derive(&prk(secret), b"finished", &[]);
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), transcript)
}

/// The HKDF/HMAC work of one full TLS 1.3 handshake's key schedule with SHA-256, in the order
/// and through the same aws-lc-rs calls as rustls's server: 3 extracts (early, handshake and
/// master secrets; aws-lc-rs extracts lazily, re-running HKDF-Extract inside each expand from
/// them, as it does under rustls), 20 expand-labels (2 "derived", 2 handshake and 2
/// application traffic secrets, exporter and resumption master secrets, 4 key/IV pairs,
/// 2 finished keys, 2 ticket PSKs for rustls's default of 2 tickets), 2 Finished HMACs and the
/// 2 SHA-256 hashes of the empty string that "derived" takes. Transcript hashing is left out:
/// it depends on the certificate chain's size, not on the schedule.
fn tls13_schedule(ecdhe: &[u8; 32], transcript: &[u8; 32]) -> [u8; 32] {
    let zeroes = [0u8; 32];
    let early = hkdf::Salt::new(hkdf::HKDF_SHA256, &zeroes).extract(&zeroes);
    let empty_hash = digest::digest(&digest::SHA256, &[]);
    let derived = derive(&early, b"derived", empty_hash.as_ref());

    let handshake = hkdf::Salt::new(hkdf::HKDF_SHA256, &derived).extract(ecdhe);
    let client_hs = derive(&handshake, b"c hs traffic", transcript);
    let server_hs = derive(&handshake, b"s hs traffic", transcript);
    black_box(traffic_keys(&server_hs));
    black_box(traffic_keys(&client_hs));
    black_box(finished(&server_hs, transcript));

    let empty_hash = digest::digest(&digest::SHA256, &[]);
    let derived = derive(&handshake, b"derived", empty_hash.as_ref());
    let master = hkdf::Salt::new(hkdf::HKDF_SHA256, &derived).extract(&zeroes);
    let client_ap = derive(&master, b"c ap traffic", transcript);
    let server_ap = derive(&master, b"s ap traffic", transcript);
    black_box(derive(&master, b"exp master", transcript));
    black_box(traffic_keys(&server_ap));
    black_box(finished(&client_hs, transcript));
    black_box(traffic_keys(&client_ap));

    let resumption = derive(&master, b"res master", transcript);
    let resumption = prk(&resumption);
    black_box(derive(&resumption, b"resumption", &[0]));
    derive(&resumption, b"resumption", &[1])
}

fn bench_hkdf(c: &mut Criterion) {
    let ecdhe = [0x5au8; 32];
    let transcript = [0xa5u8; 32];
    let mut group = c.benchmark_group("floor");
    group.bench_function("hkdf/tls13-schedule", |b| {
        b.iter(|| tls13_schedule(black_box(&ecdhe), black_box(&transcript)));
    });
    // One expand-label from a derived secret, the common case above ("key" of 16 bytes).
    let secret = [0x42u8; 32];
    group.bench_function("hkdf/expand-label", |b| {
        b.iter(|| {
            let mut key = [0u8; 16];
            expand_label(&prk(black_box(&secret)), b"key", &[], &mut key);
            key
        });
    });
    group.finish();
}

fn bench_aead(c: &mut Criterion) {
    let mut group = c.benchmark_group("floor");
    group.throughput(Throughput::Bytes(RECORD as u64));
    for (id, alg) in [
        ("aes-128-gcm", &aead::AES_128_GCM),
        ("aes-256-gcm", &aead::AES_256_GCM),
        ("chacha20-poly1305", &aead::CHACHA20_POLY1305),
    ] {
        let key_bytes = vec![0x11u8; alg.key_len()];
        let key = aead::LessSafeKey::new(aead::UnboundKey::new(alg, &key_bytes).unwrap());
        let mut payload = vec![0x61u8; RECORD];
        // The TLS 1.3 record header is the additional data.
        let aad = [0x17, 0x03, 0x03, 0x40, 0x11];
        let mut seq = 0u64;
        group.bench_function(format!("aead/seal/{id}/{RECORD}"), |b| {
            b.iter(|| {
                // A fresh nonce per record, as the record layer derives from the sequence
                // number; sealing the previous ciphertext again costs the same as plaintext.
                seq += 1;
                let mut nonce = [0u8; 12];
                nonce[4..].copy_from_slice(&seq.to_be_bytes());
                key.seal_in_place_separate_tag(
                    aead::Nonce::assume_unique_for_key(nonce),
                    aead::Aad::from(aad),
                    black_box(payload.as_mut_slice()),
                )
                .unwrap()
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = floor;
    config = benches::criterion();
    targets = bench_signatures, bench_kx, bench_hkdf, bench_aead
}
criterion_main!(floor);
