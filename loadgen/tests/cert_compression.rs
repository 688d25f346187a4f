//! Certificate compression (RFC 8879) between the generator and the server in this process:
//! negotiated when both enable it (and both say so), fewer bytes from the server for the
//! same chain, and nothing changes when either side leaves it off.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use common::cert_compression::CertCompression;
use common::certs::{self, ChainOptions, GeneratedChain, KeyType};
use common::tls::Version;
use loadgen::LoadCounters;
use server::Resumption;
use support::TestServer;
use test_support::load_target as support;

const HANDSHAKES: u64 = 20;

/// `HANDSHAKES` full TLS 1.3 handshakes against a server serving `chain` that compresses with
/// `server`, from a generator offering `client`: the generator's counters and the server's.
fn run(chain: &GeneratedChain, server: &str, client: &str) -> (LoadCounters, server::Snapshot) {
    let tls = server::TlsOptions {
        resumption: Resumption::Off,
        cert_compression: server.parse().unwrap(),
        ..server::TlsOptions::default()
    };
    let srv = TestServer::start_tls(tls, 1, chain.clone(), server::Settings::default());
    let mut opts = srv.options("/");
    opts.new_conn = true;
    opts.connections = 1;
    opts.requests = Some(HANDSHAKES);
    opts.warmup = Duration::ZERO;
    opts.tls.versions = vec![Version::Tls13];
    opts.tls.cert_compression = client.parse::<CertCompression>().unwrap();
    let r = support::run(&opts);
    assert!(r.incomplete.is_none(), "{:?}", r.incomplete);
    assert_eq!(r.measured.counters.full, HANDSHAKES);
    let stats = srv.server.as_ref().unwrap().stats();
    let deadline = Instant::now() + Duration::from_secs(10);
    let s = loop {
        let s = stats.snapshot();
        if s.active() == 0 && s.handshakes_total() == HANDSHAKES {
            break s;
        }
        assert!(Instant::now() < deadline, "connections still open: {s:?}");
        std::thread::sleep(Duration::from_millis(5));
    };
    (r.measured.counters, s)
}

fn rsa4096() -> GeneratedChain {
    certs::generate(KeyType::Rsa4096, &ChainOptions::default()).unwrap()
}

#[test]
fn both_sides_say_compression_was_negotiated_in_the_servers_order() {
    let chain = certs::generate(KeyType::EcdsaP256, &ChainOptions::default()).unwrap();
    let (c, s) = run(&chain, "brotli,zlib", "zlib,brotli");
    assert_eq!(
        (c.cert_compressed.brotli, c.cert_compressed.zlib),
        (HANDSHAKES, 0)
    );
    assert_eq!(s.cert_compressed, [HANDSHAKES, 0], "brotli, zlib");
    let (c, s) = run(&chain, "zlib", "brotli,zlib");
    assert_eq!(
        (c.cert_compressed.brotli, c.cert_compressed.zlib),
        (0, HANDSHAKES)
    );
    assert_eq!(s.cert_compressed, [0, HANDSHAKES]);
    let text = s.prometheus();
    assert!(
        text.contains("tlsbench_cert_compressed_total{algorithm=\"zlib\"} 20\n"),
        "{text}"
    );
}

#[test]
fn a_compressed_chain_costs_fewer_bytes_from_the_server() {
    let chain = rsa4096();
    let (plain, _) = run(&chain, "off", "off");
    for algorithm in ["brotli", "zlib"] {
        let (packed, s) = run(&chain, algorithm, algorithm);
        assert_eq!(packed.cert_compressed.total(), HANDSHAKES, "{algorithm}");
        assert!(
            packed.handshake_bytes_in < plain.handshake_bytes_in,
            "{algorithm}: {} server→client bytes compressed vs {} not",
            packed.handshake_bytes_in,
            plain.handshake_bytes_in
        );
        assert_eq!(s.handshake_bytes[1], packed.handshake_bytes_in);
    }
}

#[test]
fn nothing_changes_when_either_side_leaves_it_off() {
    // RSA signatures have one length, so every handshake sends the same bytes.
    let chain = rsa4096();
    let (off, _) = run(&chain, "off", "off");
    assert_eq!(off.handshake_bytes_in % HANDSHAKES, 0, "{off:?}");
    for (server, client) in [("brotli,zlib", "off"), ("off", "brotli,zlib")] {
        let (c, s) = run(&chain, server, client);
        assert_eq!(c.cert_compressed.total(), 0, "{server} / {client}");
        assert_eq!(s.cert_compressed, [0, 0], "{server} / {client}");
        assert_eq!(
            c.handshake_bytes_in, off.handshake_bytes_in,
            "server→client bytes, server {server} / client {client}"
        );
    }
}
