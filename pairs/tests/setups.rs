//! Runs every handshake and record bench setup once, without criterion, and proves each bench
//! measures what it is named after: resumed benches really resume (on both connection
//! objects, handshake after handshake), full benches really do full handshakes, the
//! negotiated version, group, suite and certificate are the ones in the bench id, and the
//! `server` and `client` benches time their own side (an RSA handshake's signing lands on the
//! server).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use common::certs::KeyType;
use common::tls::Version;
use pairs::{HandshakeCase, HandshakeMode, Op, Side};
use rustls::HandshakeKind;

/// Handshakes per case: enough to show resumption keeps working after the first resumed
/// handshake used up a TLS 1.3 ticket.
const ROUNDS: usize = 3;

/// Chains the client's caching verifier has been asked about (cached or not).
fn verifications(pair: &pairs::Pair) -> u64 {
    let v = pair.client_tls().verifier.as_ref().unwrap();
    v.hits() + v.misses()
}

fn check_case(case: &HandshakeCase) {
    let id = case.id(Side::Pair);
    let pair = case.setup().unwrap_or_else(|e| panic!("{id}: setup: {e}"));
    let mut verified_before = verifications(&pair);
    for round in 0..ROUNDS {
        // The timed path is what the side benches run; the untimed one what `pair` runs.
        let c = if round % 2 == 0 {
            pair.handshake_timed().map(|(c, _)| c)
        } else {
            pair.handshake()
        }
        .unwrap_or_else(|e| panic!("{id}: handshake {round}: {e}"));

        let expected = case.mode.expected();
        assert_eq!(c.client.handshake_kind(), Some(expected), "{id} client");
        assert_eq!(c.server.handshake_kind(), Some(expected), "{id} server");
        assert_eq!(
            c.client.protocol_version().and_then(Version::from_rustls),
            Some(case.version),
            "{id}"
        );
        assert_eq!(
            c.server.protocol_version().and_then(Version::from_rustls),
            Some(case.version),
            "{id}"
        );
        let groups = [
            c.client.negotiated_key_exchange_group(),
            c.server.negotiated_key_exchange_group(),
        ]
        .map(|g| g.map(common::tls::group_name));
        if case.version == Version::Tls12 && case.mode != HandshakeMode::Full {
            // TLS 1.2 resumption exchanges no key at all.
            assert_eq!(groups, [None, None], "{id}");
        } else {
            let want = Some(case.group.to_owned());
            assert_eq!(groups, [want.clone(), want], "{id}");
        }
        // Full handshakes present the bench's certificate and the client verifies it; resumed
        // ones present none (rustls carries the first handshake's chain over) and verify
        // nothing.
        assert_eq!(
            c.client.peer_certificates().and_then(|certs| certs.first()),
            pair.leaf(),
            "{id}"
        );
        let verified = verifications(&pair);
        match case.mode {
            HandshakeMode::Full => assert_eq!(verified, verified_before + 1, "{id}"),
            HandshakeMode::ResumedTicket | HandshakeMode::ResumedSessionId => {
                assert_eq!(verified, verified_before, "{id}")
            }
        }
        verified_before = verified;
        // The library's own check agrees.
        case.check(&c).unwrap_or_else(|e| panic!("{id}: {e}"));
    }
}

#[test]
fn every_handshake_bench_does_the_handshake_it_is_named_after() {
    let cases = pairs::handshake_cases();
    assert_eq!(cases.len(), 11);
    for case in &cases {
        check_case(case);
    }
}

#[test]
fn handshake_ids_follow_the_report_naming() {
    let ids: Vec<String> = pairs::handshake_cases()
        .iter()
        .flat_map(|c| Side::ALL.map(|s| c.id(s)))
        .collect();
    for id in [
        "server/tls13/x25519/ecdsa-p256/full",
        "client/tls13/x25519mlkem768/ecdsa-p256/full",
        "pair/tls12/secp256r1/ecdsa-p256/full",
        "server/tls13/x25519/rsa2048/full",
        "server/tls13/x25519/ed25519/full",
        "server/tls13/x25519/ecdsa-p256/resumed-ticket",
        "server/tls12/x25519/ecdsa-p256/resumed-session-id",
        "client/tls12/x25519/ecdsa-p256/resumed-ticket",
    ] {
        assert!(ids.iter().any(|i| i == id), "{id} missing from {ids:?}");
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "duplicate ids");
}

/// A resumed bench whose store ran dry would do full handshakes: the check must refuse them.
#[test]
fn a_full_handshake_fails_the_resumed_check() {
    let resumed = pairs::handshake_cases()
        .into_iter()
        .find(|c| c.mode == HandshakeMode::ResumedTicket && c.version == Version::Tls13)
        .unwrap();
    let full = HandshakeCase {
        mode: HandshakeMode::Full,
        ..resumed
    };
    let c = full.setup().unwrap().handshake().unwrap();
    let err = resumed.check(&c).unwrap_err().to_string();
    assert!(err.contains("expected a Resumed handshake"), "{err}");
    c.expect_kind(HandshakeKind::Resumed).unwrap_err();
}

/// Handshakes timed per side for the split check; their median shrugs off the ones a busy
/// machine preempted (the benches time wall clock per flight, as rustls-bench does).
const SPLIT_ROUNDS: usize = 101;

/// How much more the signing side of an RSA-2048 handshake costs than the verifying side, at
/// least. Both sides do the same X25519 exchange and hashing; on top, the server signs with the
/// private key (a full modular exponentiation, about 250 µs with aws-lc on the 2-core EPYC
/// this runs on) while the client verifies with the public exponent 65537 (about 20 µs; the
/// chain itself is cached after the first handshake). Measured there: server 2.2–2.8 × client
/// on a loaded machine; swapped, the same numbers give about 0.4.
const SIGNER_OVER_VERIFIER: f64 = 1.5;

/// The median time a `side` bench counts for one handshake of `case`.
fn median_side_time(case: &HandshakeCase, pair: &pairs::Pair, side: Side) -> Duration {
    let mut times: Vec<Duration> = (0..SPLIT_ROUNDS)
        .map(|_| {
            let (c, t) = pair.handshake_for(side).unwrap();
            case.check(&c).unwrap();
            t
        })
        .collect();
    times.sort();
    times[SPLIT_ROUNDS / 2]
}

/// Passes when `signer`, the time counted for the side that signs, exceeds `verifier`'s by
/// [`SIGNER_OVER_VERIFIER`]; returns the ratio.
fn signer_outweighs_verifier(signer: Duration, verifier: Duration) -> Result<f64, String> {
    let ratio = signer.as_secs_f64() / verifier.as_secs_f64().max(1e-9);
    if ratio >= SIGNER_OVER_VERIFIER {
        Ok(ratio)
    } else {
        Err(format!(
            "signer {signer:?} is only {ratio:.2} × verifier {verifier:?} (want ≥ {SIGNER_OVER_VERIFIER})"
        ))
    }
}

/// The per-side split is the right way round: in the RSA-2048 bench the `server` time carries
/// the signature and the `client` time does not. A split with the sides swapped (each bench
/// reporting the other's time) fails the same check.
#[test]
fn the_server_bench_times_the_side_that_signs() {
    let case = pairs::handshake_cases()
        .into_iter()
        .find(|c| {
            c.key_type == KeyType::Rsa2048
                && c.version == Version::Tls13
                && c.group == "X25519"
                && c.mode == HandshakeMode::Full
        })
        .unwrap();
    let p = case.setup().unwrap();
    let server = median_side_time(&case, &p, Side::Server);
    let client = median_side_time(&case, &p, Side::Client);
    let id = case.id(Side::Server);
    let ratio = signer_outweighs_verifier(server, client).unwrap_or_else(|e| panic!("{id}: {e}"));
    eprintln!("{id}: server {server:?}, client {client:?}, ratio {ratio:.2}");

    // Swapped sides: what the client bench reports put where the server's belongs.
    let swapped = signer_outweighs_verifier(client, server).unwrap_err();
    assert!(
        client.as_secs_f64() / server.as_secs_f64() < 1.0,
        "{id}: {swapped}"
    );
}

#[test]
fn every_record_bench_negotiates_its_suite_and_round_trips() {
    let cases = pairs::record_cases();
    assert_eq!(cases.len(), 24);
    for case in &cases {
        let spec = case.spec().unwrap();
        let p = pairs::Pair::new(&spec).unwrap();
        let c = case.connect(&p).unwrap();
        let suite = c.server.negotiated_cipher_suite().unwrap();
        assert_eq!(common::tls::suite_name(suite), case.suite, "{case:?}");
        assert_eq!(
            c.server.protocol_version().and_then(Version::from_rustls),
            Some(spec.version)
        );
        c.expect_kind(HandshakeKind::Full).unwrap();
        pairs::record_roundtrip(case).unwrap_or_else(|e| panic!("{}: {e}", case.id(Op::Open)));
    }
    assert_eq!(
        cases[0].id(Op::Seal),
        "seal/TLS_AES_128_GCM_SHA256/64",
        "ids as the report parses them"
    );
    assert_eq!(
        cases[23].id(Op::Open),
        "open/TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256/1048576"
    );
}

/// Several writes sealed back to back open in order, byte for byte, as the open bench needs.
#[test]
fn batched_records_open_in_order() {
    let case = pairs::record_cases()
        .into_iter()
        .find(|c| c.size == 1024 * 1024)
        .unwrap();
    let p = pairs::Pair::new(&case.spec().unwrap()).unwrap();
    let mut c = case.connect(&p).unwrap();
    let payload: Vec<u8> = (0..case.size).map(|i| (i % 251) as u8).collect();
    let mut records = Vec::new();
    for _ in 0..3 {
        c.seal(&payload, &mut records).unwrap();
    }
    assert!(records.len() > 3 * case.size);
    let mut scratch = vec![0; 16 * 1024];
    assert_eq!(c.open(&records, &mut scratch).unwrap(), 3 * case.size);
}
