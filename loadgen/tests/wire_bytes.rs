//! TLS bytes on the wire, counted by the generator and by the server in this process at their
//! socket reads and writes: the same connections give the same bytes each way on both sides
//! (totals and the handshake's share), an ML-KEM key share shows in the ClientHello, and a
//! HelloRetryRequest's round trip shows both ways.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use common::certs::{self, ChainOptions, KeyType};
use common::tls::Version;
use loadgen::{LoadCounters, ResumeMode};
use server::Resumption;
use support::TestServer;
use test_support::load_target as support;

/// The ML-KEM-768 encapsulation key a X25519MLKEM768 key share carries beside X25519's.
const MLKEM768_KEY_SHARE: u64 = 1184;

/// Waits (bounded) until the server has closed every connection it accepted, so that what
/// the clients sent last (their close_notify) is counted before the counters are compared.
fn wait_all_closed(srv: &TestServer) -> server::Snapshot {
    let stats = srv.server.as_ref().unwrap().stats();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = stats.snapshot();
        if s.accepted > 0 && s.active() == 0 {
            return s;
        }
        assert!(Instant::now() < deadline, "connections still open: {s:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The generator's handshake bytes against the server's, both ways.
fn assert_same_handshake_bytes(c: &LoadCounters, s: &server::Snapshot) {
    assert!(
        c.handshake_bytes_out > 0 && c.handshake_bytes_in > 0,
        "{c:?}"
    );
    assert_eq!(
        (s.handshake_bytes[0], s.handshake_bytes[1]),
        (c.handshake_bytes_out, c.handshake_bytes_in),
        "server (in, out) vs generator (out, in)"
    );
}

#[test]
fn sequential_keep_alive_connections_count_the_same_bytes_on_both_sides() {
    let srv = TestServer::start(Resumption::Both, 1);
    let mut total = LoadCounters::default();
    // One connection per run, closed by the generator (close_notify) when the run ends, so
    // every byte either side wrote is read by the other.
    for _ in 0..5 {
        let mut opts = srv.options("/bytes/3000");
        opts.connections = 1;
        opts.threads = 1;
        opts.requests = Some(3);
        opts.warmup = Duration::ZERO;
        let r = support::run(&opts);
        assert!(r.incomplete.is_none(), "{:?}", r.incomplete);
        assert_eq!(r.measured.counters.requests, 3);
        total.merge(&r.measured.counters);
    }
    let s = wait_all_closed(&srv);
    assert_eq!(s.handshakes_total(), 5);
    assert_eq!(
        (s.tls_bytes[0], s.tls_bytes[1]),
        (total.tls_bytes_out, total.tls_bytes_in),
        "server (in, out) vs generator (out, in)"
    );
    assert!(total.tls_bytes_in > 5 * 3 * 3000, "the bodies are in it");
    assert_same_handshake_bytes(&total, &s);
}

/// New connections (`version`, `resume`): the handshake's share of each stream agrees
/// although the client's request rides with its Finished and the server's tickets, responses
/// and close_notify follow.
fn new_conn_handshake_bytes_agree(version: Version, resume: ResumeMode) {
    let srv = TestServer::start(Resumption::Both, 1);
    let mut opts = srv.options("/");
    opts.new_conn = true;
    opts.connections = 2;
    opts.requests = Some(60);
    opts.warmup = Duration::ZERO;
    opts.tls.versions = vec![version];
    opts.tls.resume = resume;
    let r = support::run(&opts);
    assert!(r.incomplete.is_none(), "{:?}", r.incomplete);
    let c = &r.measured.counters;
    let s = wait_all_closed(&srv);
    assert_eq!(s.handshakes_total(), c.handshakes());
    if resume != ResumeMode::Off {
        assert!(c.resumed > 0, "{c:?}");
    }
    assert_same_handshake_bytes(c, &s);
    assert_eq!(r.measured.handshake_bytes_in.len(), 60);
    // The JSON and the summary report them per handshake.
    let doc = loadgen::report::document(&opts, &r, Vec::new());
    let out = &doc.results.handshake_bytes["out"];
    assert_eq!(out.count, 60);
    assert_eq!(out.mean, c.handshake_bytes_out as f64 / 60.0);
    let text = loadgen::report::human(&opts, &doc);
    let line = format!(
        "handshake bytes: server→client mean {:.0}, p99 {}; client→server mean {:.0}, p99 {}",
        doc.results.handshake_bytes["in"].mean,
        doc.results.handshake_bytes["in"].p99,
        out.mean,
        out.p99
    );
    assert!(text.contains(&line), "{line}\n{text}");
}

#[test]
fn tls13_full_and_resumed_handshake_bytes_agree_with_the_server() {
    new_conn_handshake_bytes_agree(Version::Tls13, ResumeMode::Off);
    new_conn_handshake_bytes_agree(Version::Tls13, ResumeMode::Ticket);
}

#[test]
fn tls12_full_and_resumed_handshake_bytes_agree_with_the_server() {
    new_conn_handshake_bytes_agree(Version::Tls12, ResumeMode::Off);
    new_conn_handshake_bytes_agree(Version::Tls12, ResumeMode::SessionId);
}

/// Mean handshake bytes (client→server, server→client) of new TLS 1.3 connections offering
/// `client_groups` to a server that takes `server_groups`.
fn handshake_bytes(server_groups: &str, client_groups: &str) -> (f64, f64, LoadCounters) {
    let tls = server::TlsOptions {
        groups: common::tls::parse_groups(&[server_groups.into()]).unwrap(),
        resumption: Resumption::Off,
        ..server::TlsOptions::default()
    };
    let chain = certs::generate(KeyType::EcdsaP256, &ChainOptions::default()).unwrap();
    let srv = TestServer::start_tls(tls, 1, chain, server::Settings::default());
    let mut opts = srv.options("/");
    opts.new_conn = true;
    opts.connections = 1;
    opts.requests = Some(20);
    opts.warmup = Duration::ZERO;
    opts.tls.versions = vec![Version::Tls13];
    opts.tls.groups = common::tls::parse_groups(&[client_groups.into()]).unwrap();
    let r = support::run(&opts);
    assert!(r.incomplete.is_none(), "{:?}", r.incomplete);
    let c = r.measured.counters;
    assert_same_handshake_bytes(&c, &wait_all_closed(&srv));
    let n = c.handshakes() as f64;
    (
        c.handshake_bytes_out as f64 / n,
        c.handshake_bytes_in as f64 / n,
        c,
    )
}

#[test]
fn an_ml_kem_key_share_makes_the_client_hello_larger_by_its_size() {
    let (x25519_out, _, c) = handshake_bytes("X25519MLKEM768,X25519", "X25519");
    assert_eq!(c.full, 20);
    let (hybrid_out, hybrid_in, c) = handshake_bytes("X25519MLKEM768,X25519", "X25519MLKEM768");
    assert_eq!(c.full, 20);
    assert!(
        hybrid_out - x25519_out >= MLKEM768_KEY_SHARE as f64,
        "client→server {hybrid_out} with X25519MLKEM768 vs {x25519_out} with X25519"
    );
    // The server's share grows too (a 1088-byte ciphertext), so both ways show it.
    assert!(hybrid_in > 0.0);
}

#[test]
fn a_hello_retry_request_adds_a_round_trip_of_bytes_both_ways() {
    let (direct_out, direct_in, c) = handshake_bytes("secp384r1", "secp384r1,X25519");
    assert_eq!((c.full, c.full_hrr), (20, 0));
    let (hrr_out, hrr_in, c) = handshake_bytes("secp384r1", "X25519,secp384r1");
    assert_eq!((c.full, c.full_hrr), (0, 20));
    assert!(
        hrr_out > direct_out,
        "client→server {hrr_out} vs {direct_out}"
    );
    assert!(hrr_in > direct_in, "server→client {hrr_in} vs {direct_in}");
}
