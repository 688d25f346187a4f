//! Runs every handshake and record bench setup once, without criterion, and proves each bench
//! measures what it is named after: resumed benches really resume (on both connection
//! objects, handshake after handshake), full benches really do full handshakes, and the
//! negotiated version, group, suite and certificate are the ones in the bench id.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use benches::pair::{self, HandshakeCase, Kind, Op, Side};
use common::tls::Version;
use rustls::HandshakeKind;

/// Handshakes per case: enough to show resumption keeps working after the first resumed
/// handshake used up a TLS 1.3 ticket.
const ROUNDS: usize = 3;

/// Chains the client's caching verifier has been asked about (cached or not).
fn verifications(pair: &pair::Pair) -> u64 {
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

        let expected = case.kind.expected();
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
        if case.version == Version::Tls12 && case.kind != Kind::Full {
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
        match case.kind {
            Kind::Full => assert_eq!(verified, verified_before + 1, "{id}"),
            Kind::ResumedTicket | Kind::ResumedSessionId => {
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
    let cases = pair::handshake_cases();
    assert_eq!(cases.len(), 11);
    for case in &cases {
        check_case(case);
    }
}

#[test]
fn handshake_ids_follow_the_report_naming() {
    let ids: Vec<String> = pair::handshake_cases()
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
    let resumed = pair::handshake_cases()
        .into_iter()
        .find(|c| c.kind == Kind::ResumedTicket && c.version == Version::Tls13)
        .unwrap();
    let full = HandshakeCase {
        kind: Kind::Full,
        ..resumed
    };
    let c = full.setup().unwrap().handshake().unwrap();
    let err = resumed.check(&c).unwrap_err().to_string();
    assert!(err.contains("expected a Resumed handshake"), "{err}");
    c.expect_kind(HandshakeKind::Resumed).unwrap_err();
}

#[test]
fn every_record_bench_negotiates_its_suite_and_round_trips() {
    let cases = pair::record_cases();
    assert_eq!(cases.len(), 24);
    for case in &cases {
        let spec = case.spec().unwrap();
        let p = pair::Pair::new(&spec).unwrap();
        let c = case.connect(&p).unwrap();
        let suite = c.server.negotiated_cipher_suite().unwrap();
        assert_eq!(common::tls::suite_name(suite), case.suite, "{case:?}");
        assert_eq!(
            c.server.protocol_version().and_then(Version::from_rustls),
            Some(spec.version)
        );
        c.expect_kind(HandshakeKind::Full).unwrap();
        pair::record_roundtrip(case).unwrap_or_else(|e| panic!("{}: {e}", case.id(Op::Open)));
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
    let case = pair::record_cases()
        .into_iter()
        .find(|c| c.size == 1024 * 1024)
        .unwrap();
    let p = pair::Pair::new(&case.spec().unwrap()).unwrap();
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
