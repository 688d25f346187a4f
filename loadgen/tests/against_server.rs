//! The load generator against the tlsbench server in this process: handshake kinds and the
//! server's own counters agree exactly, each resumption mode really resumes, the resume ratio
//! holds, bodies are counted to the byte, certificates are refused for the right reason, and
//! the open-loop rate holds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use common::certs::{self, ChainOptions, KeyType};
use common::tls::Version;
use loadgen::{FailureKind, ResumeMode};
use server::Resumption;
use support::TestServer;
use test_support::load_target as support;

#[test]
fn new_conn_without_resumption_is_all_full_and_agrees_with_the_server() {
    let mut srv = TestServer::start(Resumption::Both, 1);
    let mut opts = srv.options("/");
    opts.new_conn = true;
    opts.requests = Some(300);
    let r = support::run(&opts);
    let c = &r.measured.counters;
    assert!(r.incomplete.is_none(), "{:?}", r.incomplete);
    assert_eq!(c.requests, 300);
    assert_eq!(c.full, 300);
    assert_eq!(c.resumed + c.full_hrr, 0);
    assert_eq!(c.connections, 300);
    let s = srv.stop();
    assert_eq!(s.handshakes_of("1.3", "full"), 300);
    assert_eq!(s.handshakes_total(), 300);
    assert_eq!(s.requests_total(), 300);
    assert_eq!(s.failures_total(), 0);
    assert_eq!(r.measured.request.len(), 300);
    assert_eq!(r.measured.handshake.len(), 300);
}

#[test]
fn plain_http_runs_without_tls_and_agrees_with_the_server() {
    let mut srv = TestServer::start(Resumption::Both, 1);
    let mut opts = srv.options("/bytes/1000");
    opts.target = loadgen::Target::new(&srv.plain_url("/bytes/1000"), None, None).unwrap();
    opts.new_conn = true;
    opts.requests = Some(100);
    let r = support::run(&opts);
    let c = &r.measured.counters;
    assert!(r.incomplete.is_none(), "{:?}", r.incomplete);
    assert_eq!((c.requests, c.connections), (100, 100));
    assert_eq!(c.full + c.resumed + c.full_hrr + c.resumed_hrr, 0);
    assert_eq!(c.body_bytes_in, 100 * 1000);
    assert_eq!(r.measured.handshake.len(), 0);

    opts.new_conn = false;
    let r = support::run(&opts);
    assert_eq!(r.measured.counters.requests, 100);
    assert_eq!(r.measured.counters.connections, 4);
    let s = srv.stop();
    assert_eq!(s.handshakes_total(), 0);
    assert_eq!(s.requests_total(), 200);
    assert_eq!(s.accepted, 104);
}

fn resumed_run(
    server_mode: Resumption,
    resume: ResumeMode,
    versions: Vec<Version>,
) -> (loadgen::RunResult, server::Snapshot) {
    let mut srv = TestServer::start(server_mode, 2);
    let mut opts = srv.options("/");
    opts.new_conn = true;
    opts.tls.resume = resume;
    opts.tls.versions = versions;
    opts.requests = Some(400);
    // Warm-up primes each worker's session store with full handshakes.
    opts.warmup = Duration::from_millis(300);
    let r = support::run(&opts);
    (r, srv.stop())
}

fn assert_resumed(r: &loadgen::RunResult, s: &server::Snapshot, version: &str) {
    let c = &r.measured.counters;
    assert!(r.incomplete.is_none(), "{:?}", r.incomplete);
    assert_eq!(c.requests, 400);
    let share = c.resumed as f64 / c.handshakes() as f64;
    assert!(share >= 0.99, "only {share} resumed: {c:?}");
    assert_eq!(
        c.offered, 400,
        "every measured connection offered a session"
    );
    // The server saw every measured handshake, plus the warm-up ones, and agrees on kinds.
    assert!(s.handshakes_of(version, "resumed") >= c.resumed, "{s:?}");
    let other = if version == "1.3" { "1.2" } else { "1.3" };
    assert_eq!(
        s.handshakes_of(other, "full") + s.handshakes_of(other, "resumed"),
        0
    );
    assert_eq!(s.failures_total(), 0);
}

#[test]
fn a_resumption_after_a_hello_retry_request_is_counted_as_resumed_hrr() {
    // The server takes X25519 only and the client's first key share is secp256r1, so every
    // handshake starts with a HelloRetryRequest, the resumed ones included.
    let tls = server::TlsOptions {
        groups: common::tls::parse_groups(&["X25519".into()]).unwrap(),
        resumption: Resumption::Tickets,
        ..server::TlsOptions::default()
    };
    let chain = certs::generate(KeyType::EcdsaP256, &ChainOptions::default()).unwrap();
    let mut srv = TestServer::start_tls(tls, 1, chain, server::Settings::default());
    let mut opts = srv.options("/");
    opts.new_conn = true;
    opts.tls.resume = ResumeMode::Ticket;
    opts.tls.versions = vec![Version::Tls13];
    opts.tls.groups = common::tls::parse_groups(&["secp256r1,X25519".into()]).unwrap();
    opts.requests = Some(200);
    // Warm-up primes each worker's session store with full handshakes.
    opts.warmup = Duration::from_millis(300);
    let r = support::run(&opts);
    let c = &r.measured.counters;
    assert!(r.incomplete.is_none(), "{:?}", r.incomplete);
    assert_eq!(c.handshakes(), 200, "{c:?}");
    assert_eq!(c.full + c.resumed, 0, "no handshake escaped its HRR: {c:?}");
    assert!(c.resumed_hrr >= 198, "{c:?}");
    assert_eq!(c.resumed_any(), c.resumed_hrr);
    let doc = loadgen::report::document(&opts, &r, vec![]);
    assert_eq!(
        doc.results.resumed_share,
        Some(c.resumed_hrr as f64 / 200.0),
        "a resumption after an HRR is still a resumption"
    );
    let s = srv.stop();
    assert!(s.handshakes_total() >= 200, "{s:?}");
    assert_eq!(s.failures_total(), 0);
}

#[test]
fn ticket_resumption_tls13() {
    let (r, s) = resumed_run(
        Resumption::Tickets,
        ResumeMode::Ticket,
        vec![Version::Tls13],
    );
    assert_resumed(&r, &s, "1.3");
    assert_eq!(r.measured.counters.tls13, r.measured.counters.handshakes());
}

#[test]
fn ticket_resumption_tls12() {
    let (r, s) = resumed_run(
        Resumption::Tickets,
        ResumeMode::Ticket,
        vec![Version::Tls12],
    );
    assert_resumed(&r, &s, "1.2");
    assert_eq!(r.measured.counters.tls12, r.measured.counters.handshakes());
}

#[test]
fn session_id_resumption_tls12() {
    let (r, s) = resumed_run(
        Resumption::Stateful,
        ResumeMode::SessionId,
        vec![Version::Tls12],
    );
    assert_resumed(&r, &s, "1.2");
}

#[test]
fn exact_agreement_with_server_counters_when_resuming() {
    // No warm-up: every handshake is measured, so both sides must count the same kinds.
    let mut srv = TestServer::start(Resumption::Tickets, 1);
    let mut opts = srv.options("/");
    opts.new_conn = true;
    opts.tls.resume = ResumeMode::Ticket;
    opts.tls.versions = vec![Version::Tls13];
    opts.requests = Some(250);
    let r = support::run(&opts);
    let c = r.measured.counters.clone();
    let s = srv.stop();
    assert_eq!(s.handshakes_of("1.3", "full"), c.full);
    assert_eq!(s.handshakes_of("1.3", "resumed"), c.resumed);
    assert_eq!(s.handshakes_total(), c.handshakes());
    assert_eq!(c.handshakes(), 250);
    // Only the first handshake of each connection slot can be full.
    assert!(c.full <= opts.connections as u64, "{c:?}");
}

#[test]
fn resume_ratio_half_lands_near_half() {
    let mut srv = TestServer::start(Resumption::Tickets, 1);
    let mut opts = srv.options("/");
    opts.new_conn = true;
    opts.tls.resume = ResumeMode::Ticket;
    opts.tls.versions = vec![Version::Tls13];
    opts.resume_ratio = 0.5;
    opts.requests = Some(400);
    opts.warmup = Duration::from_millis(200);
    let r = support::run(&opts);
    let c = &r.measured.counters;
    let share = c.resumed as f64 / c.handshakes() as f64;
    assert!(
        (0.47..=0.53).contains(&share),
        "resumed share {share}: {c:?}"
    );
    assert_eq!(c.offered_resumed, c.resumed);
    srv.stop();
}

#[test]
fn download_and_upload_bytes_are_exact() {
    let mut srv = TestServer::start(Resumption::Both, 1);
    let n: u64 = 10 << 20;
    let mut down = srv.options(&format!("/bytes/{n}"));
    down.connections = 2;
    down.requests = Some(6);
    let r = support::run(&down);
    assert_eq!(r.measured.counters.requests, 6);
    assert_eq!(r.measured.counters.body_bytes_in, 6 * n);

    let mut up = srv.options("/sink");
    up.method = "POST".into();
    up.upload = n;
    up.connections = 2;
    up.requests = Some(6);
    let r = support::run(&up);
    assert_eq!(r.measured.counters.requests, 6);
    assert_eq!(r.measured.counters.body_bytes_out, 6 * n);
    // The server's answers are the decimal count: 9 characters and a newline each.
    assert_eq!(
        r.measured.counters.body_bytes_in,
        6 * (n.to_string().len() as u64 + 1)
    );
    let s = srv.stop();
    assert!(s.bytes_in >= 6 * n);
}

#[test]
fn keep_alive_requests_per_conn_reconnects() {
    let mut srv = TestServer::start(Resumption::Off, 1);
    let mut opts = srv.options("/");
    // One slot, so the count is exact: 100 requests, 10 per connection.
    opts.connections = 1;
    opts.requests_per_conn = Some(10);
    opts.requests = Some(100);
    let r = support::run(&opts);
    assert_eq!(r.measured.counters.requests, 100);
    assert_eq!(r.measured.counters.connections, 10);
    assert_eq!(r.measured.counters.full, 10);
    assert_eq!(srv.stop().handshakes_total(), 10);
}

fn refused_message(
    chain: certs::GeneratedChain,
    trust_other: bool,
    name: Option<&str>,
) -> (loadgen::RunResult, String) {
    let srv = TestServer::start_with(Resumption::Both, 1, chain, server::Settings::default());
    let mut opts = srv.options("/");
    if let Some(n) = name {
        opts.target = loadgen::Target::new(
            &format!("https://{n}:{}/", srv.port()),
            None,
            Some(&format!("127.0.0.1:{}", srv.port())),
        )
        .unwrap();
    }
    if trust_other {
        let other = certs::generate(KeyType::EcdsaP256, &ChainOptions::default()).unwrap();
        std::fs::write(&srv.ca_file, &other.root_pem).unwrap();
    }
    opts.requests = Some(5);
    let r = support::run(&opts);
    let why = r.incomplete.clone().unwrap_or_default();
    (r, why)
}

#[test]
fn wrong_name_untrusted_and_expired_are_refused_with_the_reason() {
    let good = || certs::generate(KeyType::EcdsaP256, &ChainOptions::default()).unwrap();
    let (r, why) = refused_message(good(), false, Some("evil.example"));
    assert!(r.verification_failed);
    assert_eq!(r.measured.counters.requests, 0);
    assert!(
        why.contains("evil.example") && why.contains("bank32.com"),
        "{why}"
    );

    let (r, why) = refused_message(good(), true, None);
    assert!(r.verification_failed);
    assert!(why.contains("not trusted"), "{why}");

    let day = Duration::from_secs(86_400);
    let now = std::time::SystemTime::now();
    let expired = certs::generate(
        KeyType::EcdsaP256,
        &ChainOptions {
            not_before: now - 30 * day,
            not_after: now - day,
            ..ChainOptions::default()
        },
    )
    .unwrap();
    let (r, why) = refused_message(expired, false, None);
    assert!(r.verification_failed);
    assert!(why.to_lowercase().contains("expired"), "{why}");
}

#[test]
fn insecure_connects_to_a_wrong_name_and_says_so() {
    let srv = TestServer::start(Resumption::Both, 1);
    let mut opts = srv.options("/");
    opts.target = loadgen::Target::new(
        &format!("https://evil.example:{}/", srv.port()),
        None,
        Some(&format!("127.0.0.1:{}", srv.port())),
    )
    .unwrap();
    opts.tls.insecure = true;
    opts.requests = Some(20);
    let r = support::run(&opts);
    assert!(!r.verification_failed);
    assert_eq!(r.measured.counters.requests, 20);
    let doc = loadgen::report::document(&opts, &r, vec!["test".into()]);
    assert!(doc.config.insecure);
    assert!(doc.config.verification.starts_with("INSECURE"));
    assert!(
        loadgen::report::warnings(&opts, &doc)
            .iter()
            .any(|w| w.contains("NOT verified"))
    );
}

#[test]
fn verification_is_cached_per_chain_and_name() {
    let srv = TestServer::start(Resumption::Off, 1);
    let mut opts = srv.options("/");
    opts.new_conn = true;
    opts.requests = Some(50);
    let r = support::run(&opts);
    assert_eq!(r.measured.counters.full, 50);
    // One full validation; 49 connections reused it (their signatures were still checked).
    assert_eq!(r.verify_cache, (49, 1));
}

#[test]
fn open_loop_rate_holds() {
    let srv = TestServer::start(Resumption::Both, 1);
    let mut opts = srv.options("/");
    opts.requests = None;
    opts.duration = Some(Duration::from_secs(5));
    opts.rate = Some(400.0);
    opts.connections = 8;
    let r = support::run(&opts);
    let rate = r.measured.counters.requests as f64 / r.elapsed.as_secs_f64();
    assert!(
        (380.0..=420.0).contains(&rate),
        "{rate} req/s for 400 asked"
    );
    assert_eq!(r.measured.counters.errors_total(), 0);
}

#[test]
fn stalled_server_makes_corrected_latency_exceed_uncorrected() {
    // A server that answers only after a stall: with one connection and a rate above what it
    // can answer, queued operations wait; wrk2-style latency counts that wait.
    let srv = TestServer::start(Resumption::Both, 1);
    let mut opts = srv.options(&format!("/bytes/{}", 4 << 20));
    opts.requests = None;
    opts.duration = Some(Duration::from_secs(2));
    opts.rate = Some(2000.0);
    opts.connections = 1;
    let r = support::run(&opts);
    let m = &r.measured;
    assert!(!m.request.is_empty());
    assert!(
        m.request.value_at_quantile(0.99) > 2 * m.request_uncorrected.value_at_quantile(0.99),
        "corrected p99 {} vs uncorrected {}",
        m.request.value_at_quantile(0.99),
        m.request_uncorrected.value_at_quantile(0.99)
    );
}

#[test]
fn an_open_loop_that_falls_behind_counts_what_never_started_and_warns() {
    // One connection, 4 MiB answers, 2000 asked per second: most operations find the only
    // connection busy when they are due.
    let srv = TestServer::start(Resumption::Both, 1);
    let mut opts = srv.options(&format!("/bytes/{}", 4 << 20));
    opts.requests = None;
    opts.duration = Some(Duration::from_secs(1));
    opts.rate = Some(2000.0);
    opts.connections = 1;
    let r = support::run(&opts);
    let c = &r.measured.counters;
    assert!(c.started > 0, "{c:?}");
    assert!(c.not_started > c.started, "{c:?}");
    let doc = loadgen::report::document(&opts, &r, vec![]);
    let ol = doc.results.open_loop.as_ref().unwrap();
    assert_eq!(ol.not_started, c.not_started);
    assert!(ol.achieved_per_s < 0.95 * 2000.0, "{ol:?}");
    assert!(
        doc.results
            .warnings
            .iter()
            .any(|w| w.starts_with("OPEN LOOP FELL BEHIND")),
        "{:?}",
        doc.results.warnings
    );
    let text = loadgen::report::human(&opts, &doc);
    assert!(
        text.contains(&format!("{} due operations never started", c.not_started)),
        "{text}"
    );
}

#[test]
fn server_gone_is_counted_and_marked_incomplete() {
    let mut srv = TestServer::start(Resumption::Both, 1);
    let opts = srv.options("/");
    srv.stop();
    let mut opts = opts;
    opts.requests = Some(20);
    let r = support::run(&opts);
    assert_eq!(r.measured.counters.errors_of(FailureKind::Refused), 20);
    assert!(r.incomplete.is_some());
}

#[test]
fn tls13_tickets_suffice_for_many_concurrent_connections() {
    // rustls's own client cache keeps 8 tickets per server; with 32 connections in flight
    // most would find none. The generator's store keeps enough.
    let mut srv = TestServer::start(Resumption::Tickets, 1);
    let mut opts = srv.options("/");
    opts.new_conn = true;
    opts.connections = 32;
    opts.tls.resume = ResumeMode::Ticket;
    opts.tls.versions = vec![Version::Tls13];
    opts.requests = Some(600);
    opts.warmup = Duration::from_millis(300);
    let r = support::run(&opts);
    let c = &r.measured.counters;
    assert_eq!(c.offer_missed, 0, "{c:?}");
    assert!(c.resumed as f64 >= 0.99 * c.handshakes() as f64, "{c:?}");
    srv.stop();
}

#[test]
fn asking_for_resumption_from_a_server_without_it_is_flagged_loudly() {
    let srv = TestServer::start(Resumption::Off, 1);
    let mut opts = srv.options("/");
    opts.new_conn = true;
    opts.tls.resume = ResumeMode::Ticket;
    opts.requests = Some(50);
    let r = support::run(&opts);
    assert_eq!(r.measured.counters.resumed, 0);
    assert_eq!(r.measured.counters.offer_missed, 50);
    let doc = loadgen::report::document(&opts, &r, vec![]);
    let warnings = loadgen::report::warnings(&opts, &doc);
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("RESUMPTION MOSTLY FAILED")
                && w.contains("50 connections had no saved session")),
        "{warnings:?}"
    );
}
