//! The session cache's occupancy on the wire: a stateful server sending two TLS 1.3 tickets per
//! handshake to a client that resumes with one keeps the other, unused, until it is evicted;
//! with one ticket per handshake the cache stays near empty. Exact counts from the admin
//! endpoint's gauge, against a verifying rustls client on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use test_support::loopback as support;

use std::net::TcpListener;

use common::certs::KeyType;
use rustls::HandshakeKind;
use rustls::version::TLS13;
use server::session_cache::CacheCounts;
use server::{Resumption, Server, Settings, TlsOptions};
use support::ClientResume;

/// A one-worker stateful server reporting its cache, with `tickets` TLS 1.3 tickets per
/// handshake and room for `capacity` sessions.
fn stateful(tickets: usize, capacity: usize) -> Server {
    let opts = TlsOptions {
        resumption: Resumption::Stateful,
        tls13_tickets: tickets,
        session_cache: capacity,
        ..TlsOptions::default()
    };
    let c = support::chain(KeyType::EcdsaP256);
    let tls = opts
        .server_tls(
            support::pem_certs(&c.chain_pem()),
            support::pem_key(&c.leaf_key_pem),
        )
        .unwrap();
    assert!(tls.session_cache.is_some());
    Server::start(
        vec![TcpListener::bind("127.0.0.1:0").unwrap()],
        tls,
        Settings::default(),
    )
    .unwrap()
}

/// `n` sequential connections from one client: the first full, each later one resuming with
/// a ticket of the connection before (rustls's client uses its newest ticket first).
fn connections(server: &Server, n: usize) {
    let cfg = support::client_config(KeyType::EcdsaP256, &[&TLS13], ClientResume::Default);
    for i in 0..n {
        let (kind, head, _) = support::get(server.local_addrs()[0], &cfg, "/");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let want = if i == 0 {
            HandshakeKind::Full
        } else {
            HandshakeKind::Resumed
        };
        assert_eq!(kind, want, "connection {i}");
    }
}

#[test]
fn two_tickets_per_handshake_leave_one_unused_entry_per_connection() {
    let server = stateful(2, 1000);
    connections(&server, 6);
    let s = server.stop().unwrap();
    assert_eq!(s.handshakes_of("1.3", "resumed"), 5);
    // 6 handshakes × 2 tickets stored, 5 taken: 7 left, of which the client could still use
    // the two of its last connection.
    assert_eq!(
        s.session_cache,
        Some(CacheCounts {
            capacity: 1000,
            entries: 7,
            stored: 12,
            evicted: 0,
            hits: 5,
            misses: 0,
        })
    );
}

#[test]
fn one_ticket_per_handshake_keeps_the_cache_at_one_entry() {
    let server = stateful(1, 1000);
    connections(&server, 6);
    let s = server.stop().unwrap();
    let c = s.session_cache.unwrap();
    assert_eq!((c.stored, c.hits, c.entries, c.evicted), (6, 5, 1, 0));
}

#[test]
fn a_full_cache_evicts_the_oldest_unused_ticket_and_says_so() {
    let server = stateful(2, 4);
    connections(&server, 6);
    let s = server.stop().unwrap();
    // Full at 4: of the 12 stored, 5 were taken and 3 evicted unused (the oldest), and the
    // newest ticket always survived, so every resumption still found its session.
    assert_eq!(
        s.session_cache,
        Some(CacheCounts {
            capacity: 4,
            entries: 4,
            stored: 12,
            evicted: 3,
            hits: 5,
            misses: 0,
        })
    );
}

#[test]
fn a_server_without_a_cache_reports_none() {
    let server = support::start(
        KeyType::EcdsaP256,
        &TlsOptions {
            resumption: Resumption::Tickets,
            ..TlsOptions::default()
        },
        Settings::default(),
        1,
    );
    connections(&server, 2);
    assert_eq!(server.stop().unwrap().session_cache, None);
}
