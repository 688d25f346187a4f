//! TLS 1.3 0-RTT from the generator (`--early-data`) to the server in this process: every
//! resumed connection sends its request as early data, the server accepts it, both sides
//! count the same offers and acceptances, and those requests' time to first byte goes into
//! the 0-RTT histogram, apart from the 1-RTT one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use common::certs::{self, ChainOptions, KeyType};
use common::tls::Version;
use loadgen::{LoadCounters, Measured, ResumeMode};
use server::Resumption;
use server::stats::EarlyData;
use support::TestServer;
use test_support::load_target as support;

const CONNECTIONS: u64 = 20;

/// `CONNECTIONS` TLS 1.3 connections, each resuming the session of one before it, against a
/// server accepting `server_early` bytes of early data: what each side measured.
fn run(early_data: bool) -> (Measured, server::Snapshot) {
    let tls = server::TlsOptions {
        resumption: Resumption::Stateful,
        early_data: 16384,
        ..server::TlsOptions::default()
    };
    let chain = certs::generate(KeyType::EcdsaP256, &ChainOptions::default()).unwrap();
    let srv = TestServer::start_tls(tls, 1, chain, server::Settings::default());
    let mut opts = srv.options("/");
    opts.new_conn = true;
    opts.connections = 1;
    opts.requests = Some(CONNECTIONS);
    opts.warmup = Duration::ZERO;
    opts.tls.versions = vec![Version::Tls13];
    opts.tls.resume = ResumeMode::Ticket;
    opts.resume_ratio = 1.0;
    opts.tls.early_data = early_data;
    let r = support::run(&opts);
    assert!(r.incomplete.is_none(), "{:?}", r.incomplete);
    assert_eq!(r.measured.counters.requests, CONNECTIONS);
    let stats = srv.server.as_ref().unwrap().stats();
    let deadline = Instant::now() + Duration::from_secs(10);
    let s = loop {
        let s = stats.snapshot();
        if s.active() == 0 && s.handshakes_total() == CONNECTIONS {
            break s;
        }
        assert!(Instant::now() < deadline, "connections still open: {s:?}");
        std::thread::sleep(Duration::from_millis(5));
    };
    (r.measured, s)
}

fn early(s: &server::Snapshot) -> [u64; 3] {
    EarlyData::ALL.map(|r| s.early_data_of(r))
}

#[test]
fn every_resumed_request_goes_early_and_both_sides_count_it_accepted() {
    let (m, s) = run(true);
    let c: &LoadCounters = &m.counters;
    // The first connection has no session to resume, every later one resumes.
    assert_eq!(c.full, 1);
    assert_eq!(c.resumed, CONNECTIONS - 1);
    let e = c.early_data;
    assert_eq!(
        (e.offered, e.accepted, e.rejected),
        (CONNECTIONS - 1, CONNECTIONS - 1, 0)
    );
    assert_eq!(early(&s), [e.offered, e.accepted, e.rejected]);
    assert_eq!(s.requests_of(server::http::Status::Ok), CONNECTIONS);
    // Each request's first byte is timed once, in the histogram of how it was sent.
    assert_eq!(m.ttfb_0rtt.len(), e.accepted);
    assert_eq!(m.ttfb.len(), CONNECTIONS - e.accepted);
}

#[test]
fn without_the_flag_nothing_goes_early() {
    let (m, s) = run(false);
    assert_eq!(m.counters.resumed, CONNECTIONS - 1);
    assert_eq!(
        m.counters.early_data,
        loadgen::stats::EarlyDataCounts::default()
    );
    assert_eq!(early(&s), [0, 0, 0]);
    assert_eq!(m.ttfb_0rtt.len(), 0);
    assert_eq!(m.ttfb.len(), CONNECTIONS);
}
