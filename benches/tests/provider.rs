//! Bench pairs on a chosen crypto provider: a ring pair does a full TLS 1.3 ECDSA handshake
//! with both connection objects on ring, and a group ring lacks is refused when the pair is
//! built, not mid-bench.

#![cfg(feature = "ring")]
#![allow(clippy::unwrap_used)]

use common::certs::KeyType;
use common::tls::{Provider, Version};
use loadgen::ResumeMode;
use pairs::{Pair, PairSpec};
use rustls::HandshakeKind;
use server::Resumption;

fn spec(group: &str) -> PairSpec {
    PairSpec {
        version: Version::Tls13,
        group: group.to_owned(),
        key_type: KeyType::EcdsaP256,
        suites: Vec::new(),
        resumption: Resumption::Off,
        resume: ResumeMode::Off,
    }
}

#[test]
fn a_ring_pair_handshakes_on_ring_and_refuses_what_ring_lacks() {
    let pair = Pair::on(Provider::Ring, &spec("X25519")).unwrap();
    let c = pair.handshake().unwrap();
    c.expect_kind(HandshakeKind::Full).unwrap();
    c.expect_group("X25519").unwrap();
    // Each config's randomness names the library doing the work.
    let server = format!("{:?}", pair.server_config().crypto_provider().secure_random);
    let client = format!(
        "{:?}",
        pair.client_tls().config.crypto_provider().secure_random
    );
    assert_eq!((server.as_str(), client.as_str()), ("Ring", "Ring"));
    let aws = Pair::new(&spec("X25519")).unwrap();
    let aws = format!("{:?}", aws.server_config().crypto_provider().secure_random);
    assert_eq!(aws, "AwsLcRs");

    let err = Pair::on(Provider::Ring, &spec("X25519MLKEM768"))
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        err,
        "the ring provider has no key-exchange group X25519MLKEM768"
    );
}
