//! The plain-HTTP listener (`--plain-listen`, the TCP floor): the same routes and bytes as over
//! TLS, on the same workers and counters, with no handshake counted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use common::certs::KeyType;
use server::http::{HELLO_PAGE, Status};
use server::{Server, Settings, TlsOptions};
use test_support::loopback as support;

fn start_plain() -> Server {
    let cfg = support::server_config(KeyType::EcdsaP256, &TlsOptions::default());
    let tls = vec![TcpListener::bind("127.0.0.1:0").unwrap()];
    let plain = vec![TcpListener::bind("127.0.0.1:0").unwrap()];
    Server::start_with_plain(tls, plain, cfg, Settings::default()).unwrap()
}

/// Replaces the value of every `Date:` header (the one thing that changes) with `DATE`.
fn without_dates(raw: &[u8]) -> String {
    let text = String::from_utf8(raw.to_vec()).unwrap();
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("\r\nDate: ") {
        let value = at + "\r\nDate: ".len();
        let end = value + rest[value..].find("\r\n").unwrap();
        assert_eq!(end - value, 29, "an IMF-fixdate: {}", &rest[value..end]);
        out.push_str(&rest[..value]);
        out.push_str("DATE");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn plain_listener_serves_the_same_routes_byte_for_byte_without_a_handshake() {
    let server = start_plain();
    assert_eq!(server.plain_addrs().len(), 1);
    let mut sock = TcpStream::connect(server.plain_addrs()[0]).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    sock.write_all(
        b"GET / HTTP/1.1\r\nHost: bank32.com\r\n\r\n\
          POST /sink HTTP/1.1\r\nHost: bank32.com\r\nContent-Length: 3\r\n\r\nabc\
          GET /bytes/5 HTTP/1.1\r\nHost: bank32.com\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut raw = Vec::new();
    sock.read_to_end(&mut raw).unwrap();
    let hello = String::from_utf8(HELLO_PAGE.to_vec()).unwrap();
    let expected = format!(
        "HTTP/1.1 200 OK\r\nServer: tlsbench\r\nDate: DATE\r\n\
         Content-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\r\n{hello}\
         HTTP/1.1 200 OK\r\nServer: tlsbench\r\nDate: DATE\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n\r\n3\n\
         HTTP/1.1 200 OK\r\nServer: tlsbench\r\nDate: DATE\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: 5\r\n\
         Connection: close\r\n\r\n01234",
        HELLO_PAGE.len()
    );
    assert_eq!(without_dates(&raw), expected);
    drop(sock);
    let s = server.stop().unwrap();
    assert_eq!(s.requests_of(Status::Ok), 3);
    assert_eq!(s.handshakes_total(), 0);
    assert_eq!(s.accepted, 1);
    assert_eq!(s.bytes_out as usize, raw.len());
}

#[test]
fn plain_and_tls_listeners_must_pair_one_per_worker() {
    let cfg = support::server_config(KeyType::EcdsaP256, &TlsOptions::default());
    let tls = vec![TcpListener::bind("127.0.0.1:0").unwrap()];
    let plain = (0..2)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let err = Server::start_with_plain(tls, plain, cfg, Settings::default())
        .err()
        .expect("two plain listeners for one worker are refused");
    assert!(err.to_string().contains("one per worker"), "{err}");
}
