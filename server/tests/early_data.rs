//! TLS 1.3 0-RTT early data against a server with `--early-data`: a resumed connection's
//! early GET is accepted and answered, an early POST gets 425 Too Early (RFC 8470), and
//! every handshake is counted as offered and accepted (or not offered at all).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use test_support::loopback as support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use common::certs::KeyType;
use rustls::pki_types::ServerName;
use rustls::version::TLS13;
use rustls::{ClientConfig, ClientConnection, HandshakeKind, StreamOwned};
use server::http::Status;
use server::stats::EarlyData;
use server::{Resumption, Server, Settings, TlsOptions};
use support::{ClientResume, Tls};

fn early_server() -> Server {
    let opts = TlsOptions {
        resumption: Resumption::Stateful,
        early_data: 16384,
        ..TlsOptions::default()
    };
    support::start(KeyType::EcdsaP256, &opts, Settings::default(), 1)
}

fn early_client() -> Arc<ClientConfig> {
    let mut cfg = Arc::unwrap_or_clone(support::client_config(
        KeyType::EcdsaP256,
        &[&TLS13],
        ClientResume::Default,
    ));
    cfg.enable_early_data = true;
    Arc::new(cfg)
}

/// Connects, sends `request` as early data (rustls must offer it: the client holds a ticket
/// allowing it) and completes the handshake; returns the stream and whether the server took
/// the early data.
fn connect_early(addr: SocketAddr, cfg: &Arc<ClientConfig>, request: &[u8]) -> (Tls, bool) {
    let name = ServerName::try_from("bank32.com").unwrap();
    let mut conn = ClientConnection::new(Arc::clone(cfg), name).unwrap();
    let mut early = conn
        .early_data()
        .expect("a resumable ticket allowing early data");
    assert_eq!(early.write(request).unwrap(), request.len());
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut tls = StreamOwned::new(conn, sock);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).unwrap();
    }
    let accepted = tls.conn.is_early_data_accepted();
    (tls, accepted)
}

#[test]
fn an_early_get_is_accepted_and_answered_and_counted_on_both_sides() {
    let server = early_server();
    let addr = server.local_addrs()[0];
    let cfg = early_client();
    let (kind, head, _) = support::get(addr, &cfg, "/");
    assert_eq!(kind, HandshakeKind::Full);
    assert_eq!(support::status(&head), 200);

    let (mut tls, accepted) = connect_early(
        addr,
        &cfg,
        b"GET / HTTP/1.1\r\nHost: bank32.com\r\nConnection: close\r\n\r\n",
    );
    assert!(accepted, "the server refused the early data");
    assert_eq!(support::kind(&tls), HandshakeKind::Resumed);
    let (head, body) = support::read_response(&mut tls);
    assert_eq!(support::status(&head), 200, "{head}");
    assert!(!body.is_empty());

    let s = server.stop().unwrap();
    assert_eq!(s.early_data_of(EarlyData::Offered), 1);
    assert_eq!(s.early_data_of(EarlyData::Accepted), 1);
    assert_eq!(s.early_data_of(EarlyData::Rejected), 0);
    assert_eq!(s.requests_of(Status::Ok), 2);
}

#[test]
fn an_early_post_gets_425_too_early() {
    let server = early_server();
    let addr = server.local_addrs()[0];
    let cfg = early_client();
    support::get(addr, &cfg, "/");

    let (mut tls, accepted) = connect_early(
        addr,
        &cfg,
        b"POST /sink HTTP/1.1\r\nHost: bank32.com\r\nContent-Length: 3\r\n\r\nabc",
    );
    assert!(accepted);
    let (head, body) = support::read_response(&mut tls);
    assert_eq!(support::status(&head), 425, "{head}");
    assert_eq!(body, b"425 Too Early\n");

    let s = server.stop().unwrap();
    assert_eq!(s.requests_of(Status::TooEarly), 1);
    assert_eq!(s.early_data_of(EarlyData::Accepted), 1);
}

#[test]
fn a_post_after_the_handshake_of_an_early_connection_is_served() {
    let server = early_server();
    let addr = server.local_addrs()[0];
    let cfg = early_client();
    support::get(addr, &cfg, "/");

    // The early GET keeps the connection; the POST follows the handshake, not in early data.
    let (mut tls, accepted) =
        connect_early(addr, &cfg, b"GET / HTTP/1.1\r\nHost: bank32.com\r\n\r\n");
    assert!(accepted);
    let (head, _) = support::read_response(&mut tls);
    assert_eq!(support::status(&head), 200, "{head}");
    tls.write_all(b"POST /sink HTTP/1.1\r\nHost: bank32.com\r\nContent-Length: 3\r\n\r\nabc")
        .unwrap();
    let (head, body) = support::read_response(&mut tls);
    assert_eq!(support::status(&head), 200, "{head}");
    assert_eq!(body, b"3\n");
    let s = server.stop().unwrap();
    assert_eq!(s.requests_of(Status::TooEarly), 0);
}

#[test]
fn a_full_handshake_offers_no_early_data_and_counts_nothing() {
    let server = early_server();
    let cfg = early_client();
    let (kind, head, _) = support::get(server.local_addrs()[0], &cfg, "/");
    assert_eq!(kind, HandshakeKind::Full);
    assert_eq!(support::status(&head), 200);
    let s = server.stop().unwrap();
    assert_eq!(s.early_data, [0, 0, 0]);
}
