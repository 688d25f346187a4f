//! Hostile and malformed TLS input against the in-process server:
//! pseudo-random bytes, plain HTTP, SSLv3 / TLS 1.0 / CBC-only ClientHellos, a ClientHello
//! split over records or sent a byte per TCP segment, a stalled record, a close right after
//! the ClientHello, ClientHellos near and over rustls's 64 KiB handshake-message cap, and a
//! TLS 1.3 KeyUpdate flood (alone, and mixed with pipelined requests from a client that never
//! reads); TLS 1.3 conversations crafted inside the encryption by a scripted client
//! (zero-length application data, content type 0, oversized records, the order of
//! tickets and the first response, ChangeCipherSpec records), and a record interleaved with a
//! split ClientHello. Each case checks what the server sent (the alert code, read from the
//! alert record, opened when encrypted), that it closed (with a FIN where it refused the peer)
//! or completed, the exact counter of the outcome, that the worker survived (a verified GET /
//! still gets the hello page), and that every accepted connection was closed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::certs::KeyType;
use common::io::{interrupted, would_block};
use rustls::version::{TLS12, TLS13};
use rustls::{AlertDescription, ClientConfig, ClientConnection, StreamOwned};
use server::http::HELLO_PAGE;
use server::stats::{FailureCause, TimeoutKind};
use server::{Server, Settings, Snapshot, TlsOptions};
use support::{client_no_resume, good_request_still_served};

/// TLS record content types and handshake message types used below.
const ALERT: u8 = 0x15;
const HANDSHAKE: u8 = 0x16;
const CLIENT_HELLO: u8 = 1;
const SERVER_HELLO: u8 = 2;
/// rustls refuses handshake messages whose body is longer than this (its deframer's
/// `MAX_HANDSHAKE_SIZE`, a denial-of-service cap well under the protocol's 16 MiB).
const MAX_HANDSHAKE_BODY: usize = 0xffff;
/// The longest plaintext record payload the protocol allows.
const MAX_RECORD: usize = 16 * 1024;
/// How long any single wait in these tests may take before it counts as a failure.
const WITHIN: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Bytes: a reproducible generator, TLS records and hand-built ClientHellos.

/// `len` pseudo-random bytes from `seed` (splitmix64): the same bytes on every run.
fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn be16(b: &[u8], at: usize) -> usize {
    usize::from(u16::from_be_bytes([b[at], b[at + 1]]))
}

fn u16_len(n: usize) -> [u8; 2] {
    u16::try_from(n).unwrap().to_be_bytes()
}

fn u24_len(n: usize) -> [u8; 3] {
    assert!(n < 1 << 24);
    let b = u32::try_from(n).unwrap().to_be_bytes();
    [b[1], b[2], b[3]]
}

/// One TLS record.
fn record(typ: u8, version: u16, payload: &[u8]) -> Vec<u8> {
    let mut r = vec![typ];
    r.extend_from_slice(&version.to_be_bytes());
    r.extend_from_slice(&u16_len(payload.len()));
    r.extend_from_slice(payload);
    r
}

/// The complete records in a byte stream, as (content type, payload).
fn records(mut bytes: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    while bytes.len() >= 5 {
        let len = be16(bytes, 3);
        if bytes.len() < 5 + len {
            break;
        }
        out.push((bytes[0], &bytes[5..5 + len]));
        bytes = &bytes[5 + len..];
    }
    out
}

/// The handshake bytes carried by a flight of plaintext handshake records.
fn handshake_bytes(flight: &[u8]) -> Vec<u8> {
    let recs = records(flight);
    assert_eq!(
        recs.iter().map(|(_, p)| p.len() + 5).sum::<usize>(),
        flight.len()
    );
    recs.iter()
        .map(|(typ, payload)| {
            assert_eq!(*typ, HANDSHAKE);
            *payload
        })
        .collect::<Vec<_>>()
        .concat()
}

/// `msg` framed as handshake records (version 0x0301, as ClientHellos are), cut at `cuts`.
fn reframe(msg: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut from = 0;
    for &to in cuts.iter().chain([msg.len()].iter()) {
        assert!(to > from && to - from <= MAX_RECORD, "legal record sizes");
        out.extend_from_slice(&record(HANDSHAKE, 0x0301, &msg[from..to]));
        from = to;
    }
    out
}

/// `msg` framed as full-size handshake records (the last one shorter).
fn reframe_full(msg: &[u8]) -> Vec<u8> {
    let cuts: Vec<usize> = (1..msg.len().div_ceil(MAX_RECORD))
        .map(|i| i * MAX_RECORD)
        .collect();
    reframe(msg, &cuts)
}

/// One extension: type, length, body.
fn ext(typ: u16, body: &[u8]) -> Vec<u8> {
    let mut e = typ.to_be_bytes().to_vec();
    e.extend_from_slice(&u16_len(body.len()));
    e.extend_from_slice(body);
    e
}

/// A list of 16-bit values with its 16-bit length prefix.
fn list16(values: &[u16]) -> Vec<u8> {
    let mut v = u16_len(values.len() * 2).to_vec();
    for x in values {
        v.extend_from_slice(&x.to_be_bytes());
    }
    v
}

fn server_name(name: &str) -> Vec<u8> {
    let mut entry = vec![0u8]; // host_name
    entry.extend_from_slice(&u16_len(name.len()));
    entry.extend_from_slice(name.as_bytes());
    let mut list = u16_len(entry.len()).to_vec();
    list.extend_from_slice(&entry);
    ext(0x0000, &list)
}

fn supported_groups() -> Vec<u8> {
    // x25519, secp256r1, secp384r1: groups the server does support, so only the version or
    // the suites can be what it refuses.
    ext(0x000a, &list16(&[0x001d, 0x0017, 0x0018]))
}

fn ec_point_formats() -> Vec<u8> {
    ext(0x000b, &[1, 0]) // uncompressed only
}

fn signature_algorithms() -> Vec<u8> {
    // ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256, rsa_pkcs1_sha1.
    ext(0x000d, &list16(&[0x0403, 0x0804, 0x0401, 0x0201]))
}

fn renegotiation_info() -> Vec<u8> {
    ext(0xff01, &[0])
}

/// A hand-built ClientHello record: no supported_versions extension, so `legacy_version` is
/// the highest version offered; null compression only; no extensions block at all when
/// `extensions` is empty (as SSLv3 clients send it).
fn legacy_client_hello(
    record_version: u16,
    legacy_version: u16,
    suites: &[u16],
    extensions: &[Vec<u8>],
) -> Vec<u8> {
    let mut body = legacy_version.to_be_bytes().to_vec();
    body.extend_from_slice(&pseudo_random(0xc11e, 32)); // random
    body.push(0); // empty session id
    body.extend_from_slice(&list16(suites));
    body.extend_from_slice(&[1, 0]); // compression methods: null
    if !extensions.is_empty() {
        let all = extensions.concat();
        body.extend_from_slice(&u16_len(all.len()));
        body.extend_from_slice(&all);
    }
    let mut msg = vec![CLIENT_HELLO];
    msg.extend_from_slice(&u24_len(body.len()));
    msg.extend_from_slice(&body);
    record(HANDSHAKE, record_version, &msg)
}

/// Where the extensions block (its 16-bit length) of a ClientHello message starts.
fn extensions_at(msg: &[u8]) -> usize {
    assert_eq!(msg[0], CLIENT_HELLO);
    let mut at = 4 + 2 + 32; // message header, legacy_version, random
    at += 1 + usize::from(msg[at]); // session id
    at += 2 + be16(msg, at); // cipher suites
    at += 1 + usize::from(msg[at]); // compression methods
    assert_eq!(
        at + 2 + be16(msg, at),
        msg.len(),
        "extensions end the message"
    );
    at
}

/// `msg` (a ClientHello) with one more extension of unknown type holding `len` filler bytes,
/// appended last (the client offers no pre_shared_key, which would have to stay last), with
/// the extensions length and the handshake length fixed up.
fn with_unknown_extension(msg: &[u8], len: usize) -> Vec<u8> {
    // A GREASE type (RFC 8701): reserved so that servers learn to ignore unknown extensions.
    const GREASE: u16 = 0xfafa;
    let at = extensions_at(msg);
    let mut out = msg.to_vec();
    let total = be16(msg, at) + 4 + len;
    out[at..at + 2].copy_from_slice(&u16_len(total));
    out.extend_from_slice(&GREASE.to_be_bytes());
    out.extend_from_slice(&u16_len(len));
    out.extend_from_slice(&pseudo_random(len as u64, len));
    let body = out.len() - 4;
    out[1..4].copy_from_slice(&u24_len(body));
    out
}

// ---------------------------------------------------------------------------------------------
// Clients.

/// A rustls client and the ClientHello message it would send first (taken out of it: the
/// caller sends it however it likes, then lets the client drive the rest).
fn rustls_hello(cfg: &Arc<ClientConfig>) -> (ClientConnection, Vec<u8>) {
    let name = rustls::pki_types::ServerName::try_from("bank32.com").unwrap();
    let mut conn = ClientConnection::new(Arc::clone(cfg), name).unwrap();
    let mut flight = Vec::new();
    conn.write_tls(&mut flight).unwrap();
    assert!(!conn.wants_write());
    let msg = handshake_bytes(&flight);
    assert_eq!(msg[0], CLIENT_HELLO);
    assert_eq!(msg.len(), 4 + (be16(&msg, 2) | usize::from(msg[1]) << 16));
    (conn, msg)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(WITHIN)).unwrap();
    sock.set_write_timeout(Some(WITHIN)).unwrap();
    sock
}

/// Lets `conn`, whose ClientHello was already sent on `sock` by hand, finish the handshake
/// (bounded), then GETs / and checks the hello page byte for byte. Returns the version.
fn finish_and_get(conn: ClientConnection, sock: TcpStream) -> rustls::ProtocolVersion {
    let mut tls = StreamOwned::new(conn, sock);
    for _ in 0..100 {
        if !tls.conn.is_handshaking() {
            break;
        }
        tls.conn.complete_io(&mut tls.sock).unwrap();
    }
    assert!(!tls.conn.is_handshaking(), "the handshake must complete");
    write!(
        tls,
        "GET / HTTP/1.1\r\nHost: bank32.com\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let (head, body) = support::read_response(&mut tls);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert_eq!(body, HELLO_PAGE);
    tls.conn.protocol_version().unwrap()
}

/// Everything the server sends until it closes the connection (EOF or reset). Panics if it
/// has not closed within `within`.
fn read_until_closed(sock: &mut TcpStream, within: Duration) -> Vec<u8> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "the server did not close within {within:?}"
        );
        sock.set_read_timeout(Some(left)).unwrap();
        match sock.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if interrupted(&e) => {}
            Err(e) if would_block(&e) || e.kind() == io::ErrorKind::TimedOut => {
                panic!("the server did not close within {within:?}")
            }
            // A reset closes too: the server dropped a socket holding bytes it never read.
            Err(_) => return out,
        }
    }
}

/// Sends `bytes` on a fresh connection and returns what the server sent until it closed.
fn send_and_collect(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut sock = connect(addr);
    // The server may refuse (and reset) before it has read everything: that is its right.
    let _ = sock.write_all(bytes);
    read_until_closed(&mut sock, WITHIN)
}

/// The description of the alert in what the server sent, checking it is the only record, in
/// plaintext (no ServerHello was sent, so nothing is encrypted yet) and fatal.
fn sole_fatal_alert(from_server: &[u8]) -> AlertDescription {
    let recs = records(from_server);
    assert_eq!(recs.len(), 1, "one record, the alert: {from_server:02x?}");
    let (typ, payload) = recs[0];
    assert_eq!(typ, ALERT, "an alert record: {from_server:02x?}");
    assert_eq!(payload.len(), 2, "level and description");
    assert_eq!(payload[0], 2, "a fatal alert");
    AlertDescription::from(payload[1])
}

// ---------------------------------------------------------------------------------------------
// Server side.

/// Waits (bounded) until the server has closed every connection and `cond` holds.
fn settled(server: &Server, what: &str, cond: impl Fn(&Snapshot) -> bool) {
    let ok = support::wait_for(server, WITHIN, |s| s.active() == 0 && cond(s));
    assert!(ok, "{what}: {}", server.stats().snapshot().summary());
}

/// Stops the server (a panicked worker makes this fail) and checks that every accepted
/// connection was closed and none was still handshaking at shutdown.
fn stop(server: Server) -> Snapshot {
    let s = server.stop().unwrap();
    assert_eq!(s.accepted, s.closed, "{}", s.summary());
    assert_eq!(s.failures_of(FailureCause::Shutdown), 0, "{}", s.summary());
    s
}

fn start_with(settings: Settings) -> Server {
    support::start(KeyType::EcdsaP256, &TlsOptions::default(), settings, 1)
}

// ---------------------------------------------------------------------------------------------
// 1 and 2: bytes that are not TLS.

#[test]
fn random_bytes_and_plain_http_are_refused_and_counted() {
    let server = support::start_default();
    let addr = server.local_addrs()[0];
    // A bad content type or record version in the first header (and 'G' is no content type
    // either): rustls says InvalidMessage and answers decode_error.
    let decode_error = Some(AlertDescription::DecodeError);
    let mut inputs: Vec<(&str, Vec<u8>, Option<AlertDescription>)> = Vec::new();
    for (seed, len) in [(1, 4096), (2, 4096), (3, 4096), (4, 517), (5, 64 * 1024)] {
        let bytes = pseudo_random(seed, len);
        assert!(!(0x14..=0x18).contains(&bytes[0]) || bytes[1] != 0x03);
        inputs.push(("random", bytes, decode_error));
    }
    inputs.push((
        "plain HTTP",
        b"GET / HTTP/1.1\r\nHost: bank32.com\r\n\r\n".to_vec(),
        decode_error,
    ));
    // A valid-looking record header (handshake, TLS 1.0, the rest of 4 KiB) over random
    // bytes. The random handshake header announces a message longer than rustls's 64 KiB cap:
    // InvalidMessage::HandshakePayloadTooLarge, which rustls 0.23 returns without queuing an
    // alert (its deframer's `coalesce()?` skips the alert path), so the server just closes.
    let payload = pseudo_random(6, 4096 - 5);
    assert!(usize::from(payload[1]) << 16 | be16(&payload, 2) > MAX_HANDSHAKE_BODY);
    let mut framed = vec![HANDSHAKE, 0x03, 0x01];
    framed.extend_from_slice(&u16_len(payload.len()));
    framed.extend_from_slice(&payload);
    inputs.push(("record header + random", framed, None));
    // One step further: a ClientHello header whose length matches, then random bytes.
    let mut hello = vec![HANDSHAKE, 0x03, 0x01];
    hello.extend_from_slice(&u16_len(4096 - 5));
    hello.push(CLIENT_HELLO);
    hello.extend_from_slice(&u24_len(4096 - 9));
    hello.extend_from_slice(&pseudo_random(7, 4096 - 9));
    inputs.push(("ClientHello header + random", hello, decode_error));

    for (i, (what, bytes, alert)) in inputs.iter().enumerate() {
        let reply = send_and_collect(addr, bytes);
        match alert {
            Some(alert) => assert_eq!(sole_fatal_alert(&reply), *alert, "{what} #{i}"),
            None => assert!(reply.is_empty(), "{what} #{i}: {reply:02x?}"),
        }
        let n = i as u64 + 1;
        settled(&server, what, |s| {
            s.failures_of(FailureCause::InvalidMessage) == n && s.failures_total() == n
        });
        good_request_still_served(&server);
    }
    let s = stop(server);
    let n = inputs.len() as u64;
    assert_eq!(s.failures_of(FailureCause::InvalidMessage), n);
    assert_eq!(s.failures_total(), n);
    assert_eq!(s.handshakes_of("1.3", "full"), n);
    assert_eq!((s.accepted, s.closed), (2 * n, 2 * n));
}

// ---------------------------------------------------------------------------------------------
// 3: old protocol versions and non-AEAD suites.

#[test]
fn sslv3_tls10_and_cbc_only_client_hellos_are_refused_and_counted() {
    const RC4_SHA: u16 = 0x0005;
    const DES3_SHA: u16 = 0x000a;
    const AES128_SHA: u16 = 0x002f;
    const AES256_SHA: u16 = 0x0035;
    const AES128_SHA256: u16 = 0x003c;
    const ECDHE_ECDSA_AES128_SHA: u16 = 0xc009;
    const ECDHE_RSA_AES128_SHA: u16 = 0xc013;
    const ECDHE_RSA_AES256_SHA: u16 = 0xc014;
    const ECDHE_ECDSA_AES128_SHA256: u16 = 0xc023;
    const ECDHE_RSA_AES128_SHA256: u16 = 0xc027;
    const RENEGO_SCSV: u16 = 0x00ff;
    let old_suites = [
        ECDHE_RSA_AES256_SHA,
        ECDHE_RSA_AES128_SHA,
        AES256_SHA,
        AES128_SHA,
        RC4_SHA,
        DES3_SHA,
        RENEGO_SCSV,
    ];
    let tls10_extensions = vec![
        server_name("bank32.com"),
        supported_groups(),
        ec_point_formats(),
        renegotiation_info(),
    ];
    let mut tls10_with_sigalgs = tls10_extensions.clone();
    tls10_with_sigalgs.push(signature_algorithms());
    let cbc_suites = [
        ECDHE_ECDSA_AES128_SHA256,
        ECDHE_RSA_AES128_SHA256,
        ECDHE_ECDSA_AES128_SHA,
        ECDHE_RSA_AES128_SHA,
        AES128_SHA256,
        AES128_SHA,
    ];
    let cases: [(&str, Vec<u8>, AlertDescription); 5] = [
        // Real SSLv3 and TLS 1.0 clients send no signature_algorithms (a TLS 1.2 extension).
        // rustls checks for that extension before it looks at the version, so it refuses
        // these with handshake_failure (PeerIncompatible::SignatureAlgorithmsExtensionRequired).
        (
            "SSLv3, no extensions",
            legacy_client_hello(
                0x0300,
                0x0300,
                &[RC4_SHA, DES3_SHA, AES128_SHA, RENEGO_SCSV],
                &[],
            ),
            AlertDescription::HandshakeFailure,
        ),
        (
            "TLS 1.0, usual TLS 1.0 extensions",
            legacy_client_hello(0x0301, 0x0301, &old_suites, &tls10_extensions),
            AlertDescription::HandshakeFailure,
        ),
        // With signature_algorithms added, the version check is reached: legacy_version below
        // TLS 1.2 and no supported_versions extension is protocol_version
        // (PeerIncompatible::Tls12NotOffered).
        (
            "SSLv3 with signature_algorithms",
            legacy_client_hello(0x0300, 0x0300, &old_suites, &tls10_with_sigalgs),
            AlertDescription::ProtocolVersion,
        ),
        (
            "TLS 1.0 with signature_algorithms",
            legacy_client_hello(0x0301, 0x0301, &old_suites, &tls10_with_sigalgs),
            AlertDescription::ProtocolVersion,
        ),
        // TLS 1.2 offering only CBC suites: the server has only AEAD suites, so no suite in
        // common: handshake_failure (PeerIncompatible::NoCipherSuitesInCommon).
        (
            "TLS 1.2, CBC suites only",
            legacy_client_hello(0x0301, 0x0303, &cbc_suites, &tls10_with_sigalgs),
            AlertDescription::HandshakeFailure,
        ),
    ];

    let server = support::start_default();
    let addr = server.local_addrs()[0];
    for (i, (what, hello, alert)) in cases.iter().enumerate() {
        let reply = send_and_collect(addr, hello);
        assert_eq!(sole_fatal_alert(&reply), *alert, "{what}");
        let n = i as u64 + 1;
        settled(&server, what, |s| {
            s.failures_of(FailureCause::PeerIncompatible) == n && s.failures_total() == n
        });
        good_request_still_served(&server);
    }
    let s = stop(server);
    let n = cases.len() as u64;
    assert_eq!(s.failures_of(FailureCause::PeerIncompatible), n);
    assert_eq!(s.failures_total(), n);
    assert_eq!(s.handshakes_total(), n);
    assert_eq!((s.accepted, s.closed), (2 * n, 2 * n));
}

// ---------------------------------------------------------------------------------------------
// 4: legal fragmentation of a valid ClientHello.

#[test]
fn client_hello_split_over_records_or_one_byte_segments_completes() {
    let server = support::start_default();
    let addr = server.local_addrs()[0];
    let mut expected = 0;
    for version in [&TLS13, &TLS12] {
        let cfg = client_no_resume(&[version]);

        // Three records: the first carries one byte of the message header, the second the
        // rest of the header and part of the body, the third the remainder.
        let (conn, msg) = rustls_hello(&cfg);
        let split = reframe(&msg, &[1, msg.len() / 2]);
        assert_eq!(records(&split).len(), 3);
        let mut sock = connect(addr);
        sock.write_all(&split).unwrap();
        assert_eq!(finish_and_get(conn, sock), version.version);

        // The original record, one write per byte with Nagle off: a segment per byte (unless
        // the kernel's autocorking merges a few), so the server reads it in tiny pieces.
        let (conn, msg) = rustls_hello(&cfg);
        let whole = reframe(&msg, &[]);
        let mut sock = connect(addr);
        sock.set_nodelay(true).unwrap();
        for b in &whole {
            sock.write_all(std::slice::from_ref(b)).unwrap();
        }
        assert_eq!(finish_and_get(conn, sock), version.version);

        expected += 2;
        settled(&server, "split hellos", |s| {
            s.handshakes_total() == expected
        });
        good_request_still_served(&server);
        expected += 1;
    }
    let s = stop(server);
    assert_eq!(s.handshakes_of("1.2", "full"), 2);
    assert_eq!(s.handshakes_of("1.3", "full"), 4);
    assert_eq!(s.failures_total(), 0);
    assert_eq!(s.requests_total(), 6);
    assert_eq!((s.accepted, s.closed), (6, 6));
}

// ---------------------------------------------------------------------------------------------
// 5: a stall inside the first record.

#[test]
fn record_header_then_stall_is_cut_at_the_handshake_timeout() {
    let timeout = Duration::from_millis(300);
    let server = start_with(Settings {
        handshake_timeout: timeout,
        ..Settings::default()
    });
    let started = Instant::now();
    let mut sock = connect(server.local_addrs()[0]);
    // A handshake record announcing 512 bytes, none of which follow.
    sock.write_all(&[HANDSHAKE, 0x03, 0x01, 0x02, 0x00])
        .unwrap();
    let reply = read_until_closed(&mut sock, WITHIN);
    let waited = started.elapsed();
    // The server was accepted after our connect began, so it cannot have cut us sooner.
    assert!(waited >= timeout, "closed after {waited:?}");
    // A timeout is a plain close: rustls has nothing to say about an incomplete record.
    assert!(reply.is_empty(), "{reply:02x?}");
    settled(&server, "stall", |s| {
        s.failures_of(FailureCause::Timeout) == 1
    });
    good_request_still_served(&server);
    let s = stop(server);
    assert_eq!(s.failures_of(FailureCause::Timeout), 1);
    assert_eq!(s.timeouts_of(TimeoutKind::Handshake), 1);
    assert_eq!(s.failures_total(), 1);
    assert_eq!(s.handshakes_total(), 1);
    assert_eq!((s.accepted, s.closed), (2, 2));
}

// ---------------------------------------------------------------------------------------------
// 6: a client that leaves right after its ClientHello.

#[test]
fn close_right_after_the_client_hello_is_counted_and_survived() {
    let server = support::start_default();
    let addr = server.local_addrs()[0];
    let cfg = client_no_resume(&[&TLS13]);

    // Full close without reading anything. Which of the two the server counts is a race
    // (observed both ways on loopback): if its read sees our FIN first, EOF; if its flight
    // reached our closed socket first, our kernel answered with a reset and the next read
    // fails, Io. Both mean the client left mid-handshake.
    let (_conn, msg) = rustls_hello(&cfg);
    {
        let mut sock = connect(addr);
        sock.write_all(&reframe(&msg, &[])).unwrap();
    }
    settled(&server, "full close", |s| s.failures_total() == 1);
    let before = server.stats().snapshot();
    let eof = before.failures_of(FailureCause::Eof);
    let io = before.failures_of(FailureCause::Io);
    assert_eq!(eof + io, 1, "{}", before.summary());
    good_request_still_served(&server);

    // Half close: we still read, so nothing is reset, and the cause is exactly EOF. The
    // server answers the hello with its flight (a ServerHello first), then sees our FIN.
    let (_conn, msg) = rustls_hello(&cfg);
    let mut sock = connect(addr);
    sock.write_all(&reframe(&msg, &[])).unwrap();
    sock.shutdown(std::net::Shutdown::Write).unwrap();
    let reply = read_until_closed(&mut sock, WITHIN);
    let recs = records(&reply);
    assert_eq!(recs[0].0, HANDSHAKE);
    assert_eq!(recs[0].1[0], SERVER_HELLO);
    settled(&server, "half close", |s| s.failures_total() == 2);
    good_request_still_served(&server);

    let s = stop(server);
    assert_eq!(s.failures_of(FailureCause::Eof), eof + 1);
    assert_eq!(s.failures_of(FailureCause::Io), io);
    assert_eq!(s.failures_total(), 2);
    assert_eq!(s.handshakes_total(), 2);
    assert_eq!((s.accepted, s.closed), (4, 4));
}

// ---------------------------------------------------------------------------------------------
// 7: ClientHellos near and over the 64 KiB handshake-message cap.

/// A client config whose ClientHello is about `target` bytes long: ALPN names of 250 bytes
/// after "http/1.1" (the one the server picks). The client builds the big hello itself, so
/// its transcript matches what the server hashed and the handshake can complete.
fn client_with_hello_of(target: usize) -> Arc<ClientConfig> {
    let base = client_no_resume(&[&TLS13]);
    let base_len = rustls_hello(&base).1.len();
    let mut cfg = (*base).clone();
    for i in 0..(target - base_len) / 251 {
        let mut name = format!("hostile-{i:04}-").into_bytes();
        name.resize(250, b'x');
        cfg.alpn_protocols.push(name);
    }
    Arc::new(cfg)
}

#[test]
fn client_hello_near_64k_completes_and_over_64k_is_refused() {
    let server = support::start_default();
    let addr = server.local_addrs()[0];
    let near = 60 * 1024;

    // ~60 KiB built by the client itself: rustls accepts it and the handshake completes.
    let cfg = client_with_hello_of(near);
    let (conn, msg) = rustls_hello(&cfg);
    assert!(msg.len() > near - 251 && msg.len() - 4 <= MAX_HANDSHAKE_BODY);
    let framed = reframe_full(&msg);
    assert_eq!(records(&framed).len(), 4);
    let mut sock = connect(addr);
    sock.write_all(&framed).unwrap();
    assert_eq!(finish_and_get(conn, sock), rustls::ProtocolVersion::TLSv1_3);
    settled(&server, "60 KiB hello", |s| s.handshakes_total() == 1);
    good_request_still_served(&server);

    // ~60 KiB by appending an unknown extension to the client's own hello (lengths fixed
    // up): the server parses it and answers with a ServerHello. The client hashed the hello
    // without our extension, so it could not finish; it half-closes instead (counted as EOF).
    let (_conn, msg) = rustls_hello(&client_no_resume(&[&TLS13]));
    let grown = with_unknown_extension(&msg, near - msg.len());
    assert_eq!(grown.len(), near + 4);
    let mut sock = connect(addr);
    sock.write_all(&reframe_full(&grown)).unwrap();
    let mut first = [0u8; 6];
    sock.read_exact(&mut first).unwrap();
    assert_eq!(first[0], HANDSHAKE);
    assert_eq!(first[5], SERVER_HELLO, "the grown hello was accepted");
    sock.shutdown(std::net::Shutdown::Write).unwrap();
    read_until_closed(&mut sock, WITHIN);
    settled(&server, "grown hello", |s| {
        s.failures_of(FailureCause::Eof) == 1
    });
    good_request_still_served(&server);

    // Over 64 KiB: the extensions block at its 16-bit maximum puts the message body past
    // rustls's 0xffff cap. rustls refuses from the message header alone (in the first
    // record): InvalidMessage::HandshakePayloadTooLarge, returned without queuing an alert,
    // so the server closes without one.
    let (_conn, msg) = rustls_hello(&client_no_resume(&[&TLS13]));
    let at = extensions_at(&msg);
    let huge = with_unknown_extension(&msg, 0xffff - be16(&msg, at) - 4);
    assert_eq!(be16(&huge, at), 0xffff);
    assert!(huge.len() - 4 > MAX_HANDSHAKE_BODY);
    let reply = send_and_collect(addr, &reframe_full(&huge));
    assert!(reply.is_empty(), "{reply:02x?}");
    settled(&server, "huge hello", |s| {
        s.failures_of(FailureCause::InvalidMessage) == 1
    });
    good_request_still_served(&server);

    let s = stop(server);
    assert_eq!(s.failures_of(FailureCause::Eof), 1);
    assert_eq!(s.failures_of(FailureCause::InvalidMessage), 1);
    assert_eq!(s.failures_total(), 2);
    assert_eq!(s.handshakes_of("1.3", "full"), 4);
    assert_eq!((s.accepted, s.closed), (6, 6));
}

// ---------------------------------------------------------------------------------------------
// 8: KeyUpdate floods after a TLS 1.3 handshake.

/// A TLS 1.3 connection that has done one request (so the server has counted its handshake
/// and its tickets and response are out of the way), on `sock`.
fn established(sock: TcpStream) -> support::Tls {
    let name = rustls::pki_types::ServerName::try_from("bank32.com").unwrap();
    let conn = ClientConnection::new(client_no_resume(&[&TLS13]), name).unwrap();
    let mut tls = StreamOwned::new(conn, sock);
    for _ in 0..100 {
        if !tls.conn.is_handshaking() {
            break;
        }
        tls.conn.complete_io(&mut tls.sock).unwrap();
    }
    write!(tls, "GET / HTTP/1.1\r\nHost: bank32.com\r\n\r\n").unwrap();
    let (head, body) = support::read_response(&mut tls);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert_eq!(body, HELLO_PAGE);
    tls
}

#[test]
fn key_update_flood_is_cut_by_rustls_and_counted() {
    let server = support::start_default();
    let mut tls = established(connect(server.local_addrs()[0]));

    // rustls allows 32 KeyUpdates in a row without application data between them (its
    // TemperCounters, after BoringSSL's kMaxKeyUpdates). 32, then a request: still served.
    for _ in 0..32 {
        tls.conn.refresh_traffic_keys().unwrap();
    }
    write!(tls, "GET / HTTP/1.1\r\nHost: bank32.com\r\n\r\n").unwrap();
    let (head, body) = support::read_response(&mut tls);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert_eq!(body, HELLO_PAGE);

    // 20,000 KeyUpdates, each asking for one back (update_requested), never reading. No
    // replies pile up: rustls keeps at most one KeyUpdate reply pending, flushed only ahead of
    // the next record the server sends. The 33rd is PeerMisbehaved::TooManyKeyUpdateRequests,
    // which rustls returns without queuing an alert: the server closes without one, after
    // reading a few KiB of the flood.
    'flood: for i in 0..20_000 {
        tls.conn.refresh_traffic_keys().unwrap();
        if i % 64 == 63 || i == 19_999 {
            while tls.conn.wants_write() {
                if tls.conn.write_tls(&mut tls.sock).is_err() {
                    // The server closed on us (broken pipe or reset): the flood is over.
                    break 'flood;
                }
            }
        }
    }
    // The close is waited for (bounded by WITHIN, failing past it); how long the flood took to
    // write on a busy machine is not the server's doing.
    let reply = read_until_closed(&mut tls.sock, WITHIN);
    assert!(
        reply.is_empty(),
        "no alert, no KeyUpdate replies: {reply:02x?}"
    );
    settled(&server, "KeyUpdate flood", |s| s.tls_errors_total() == 1);
    good_request_still_served(&server);

    let s = stop(server);
    assert_eq!(s.tls_errors_of(FailureCause::PeerMisbehaved), 1);
    assert_eq!(s.tls_errors_total(), 1);
    assert_eq!(s.failures_total(), 0, "the handshake had completed");
    assert_eq!(s.handshakes_of("1.3", "full"), 2);
    assert_eq!(s.requests_total(), 3);
    assert_eq!((s.accepted, s.closed), (2, 2));
}

/// A one-worker server whose accepted sockets have small fixed buffers (they inherit them from
/// the listener; fixed sizes also turn autotuning off), so a client that never reads fills the
/// path between them after a few hundred KiB instead of several MiB.
fn start_with_small_buffers(settings: Settings) -> Server {
    use socket2::{Domain, Socket, Type};
    let l = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    l.set_send_buffer_size(16 * 1024).unwrap();
    l.set_recv_buffer_size(16 * 1024).unwrap();
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    l.bind(&addr.into()).unwrap();
    l.listen(128).unwrap();
    support::start_on(
        vec![l.into()],
        KeyType::EcdsaP256,
        &TlsOptions::default(),
        settings,
    )
}

/// A client socket with small fixed buffers, connected to `addr`.
fn small_buffer_client(addr: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.set_send_buffer_size(16 * 1024).unwrap();
    s.set_recv_buffer_size(16 * 1024).unwrap();
    s.connect(&addr.into()).unwrap();
    let sock: TcpStream = s.into();
    sock.set_read_timeout(Some(WITHIN)).unwrap();
    sock.set_write_timeout(Some(WITHIN)).unwrap();
    sock
}

#[test]
fn key_updates_with_pipelined_requests_from_a_client_that_never_reads_hit_back_pressure() {
    // A KeyUpdate before every request: the requests reset rustls's KeyUpdate allowance, and
    // every response carries a KeyUpdate reply, so this is the flood that could make output
    // pile up. It does not: once OUT_WINDOW of responses is stuck behind a full socket, the
    // server stops taking requests out of rustls, rustls's plaintext buffer stays non-empty,
    // so wants_read() is false and the server stops reading; the client's writes block, and
    // the send timeout cuts the connection.
    let send_timeout = Duration::from_millis(300);
    let server = start_with_small_buffers(Settings {
        send_timeout,
        ..Settings::default()
    });
    let mut tls = established(small_buffer_client(server.local_addrs()[0]));
    // A write blocked this long means the server has stopped reading.
    tls.sock
        .set_write_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let started = Instant::now();
    let mut sent = 0u64;
    let mut outcome = None;
    'flood: while sent < 100_000 && started.elapsed() < WITHIN {
        tls.conn.refresh_traffic_keys().unwrap();
        tls.conn
            .writer()
            .write_all(b"GET / HTTP/1.1\r\nHost: bank32.com\r\n\r\n")
            .unwrap();
        sent += 1;
        while tls.conn.wants_write() {
            match tls.conn.write_tls(&mut tls.sock) {
                Ok(_) => {}
                Err(e) => {
                    // Blocked (the server stopped reading) or already cut by the send
                    // timeout: either way the server did not take the flood in.
                    outcome = Some(e.kind());
                    break 'flood;
                }
            }
        }
    }
    let outcome = outcome.expect("the server must stop reading a client that never reads");
    assert!(
        matches!(
            outcome,
            io::ErrorKind::WouldBlock
                | io::ErrorKind::TimedOut
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::ConnectionReset
        ),
        "{outcome:?}"
    );
    settled(&server, "send timeout", |s| {
        s.timeouts_of(TimeoutKind::Send) == 1
    });
    // Whatever the kernel buffered for us is all there is, then the close.
    read_until_closed(&mut tls.sock, WITHIN);
    let s = server.stats().snapshot();
    // The first request came from `established`.
    let answered = s.requests_total() - 1;
    assert!(answered < sent, "answered {answered} of {sent}");
    // Output stayed bounded: all the server ever produced is OUT_WINDOW plus what the two
    // small socket buffers hold (about 100 KiB here), however long the client went on.
    assert!(
        s.bytes_out < (common::io::OUT_WINDOW + 256 * 1024) as u64,
        "{} bytes out for {answered} responses",
        s.bytes_out
    );
    good_request_still_served(&server);

    let s = stop(server);
    assert_eq!(s.timeouts_of(TimeoutKind::Send), 1);
    assert_eq!(s.tls_errors_total(), 0);
    assert_eq!(s.failures_total(), 0);
    assert_eq!(s.handshakes_of("1.3", "full"), 2);
    assert_eq!((s.accepted, s.closed), (2, 2));
}

// ---------------------------------------------------------------------------------------------
// 9-12: TLS 1.3 edge conversations, crafted inside the encryption. A real rustls
// client does the handshake and logs its secrets; the test seals its own records with them
// (so it can send what no client library would) and opens every record the server sends, so
// it sees the order of tickets and data, and alerts that are encrypted on the wire.

use rustls::crypto::cipher::{
    AeadKey, InboundOpaqueMessage, Iv, MessageDecrypter, MessageEncrypter, OutboundChunks,
    OutboundPlainMessage,
};
use rustls::crypto::tls13::OkmBlock;
use rustls::{ContentType, Tls13CipherSuite};
use std::collections::HashMap;
use std::sync::Mutex;
use test_support::loopback as support;

const CHANGE_CIPHER_SPEC: u8 = 0x14;
const APPLICATION_DATA: u8 = 0x17;
const NEW_SESSION_TICKET: u8 = 4;
/// The middlebox-compatibility ChangeCipherSpec record (RFC 8446, D.4).
const CCS_RECORD: [u8; 6] = [CHANGE_CIPHER_SPEC, 0x03, 0x03, 0x00, 0x01, 0x01];
/// Bytes the client sends after its offending record, so that the server, which stops at the
/// first bad record, leaves some unread in its socket when it gives up.
const TAIL: usize = 256 * 1024;
/// The only suite the scripted client offers: a 32-byte key, which rustls's public `AeadKey`
/// can carry (its length setter is crate-private).
static SUITE: &Tls13CipherSuite =
    match rustls::crypto::aws_lc_rs::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256 {
        rustls::SupportedCipherSuite::Tls13(s) => s,
        rustls::SupportedCipherSuite::Tls12(_) => panic!("a TLS 1.3 suite"),
    };

/// The client's traffic secrets, by key-log label.
#[derive(Debug, Default)]
struct Secrets(Mutex<HashMap<String, Vec<u8>>>);

impl rustls::KeyLog for Secrets {
    fn log(&self, label: &str, _client_random: &[u8], secret: &[u8]) {
        self.0
            .lock()
            .unwrap()
            .insert(label.to_owned(), secret.to_vec());
    }
}

impl Secrets {
    /// The key and IV of `label`'s traffic secret (RFC 8446 7.3, HKDF-Expand-Label).
    fn key_iv(&self, label: &str) -> (AeadKey, Iv) {
        let secrets = self.0.lock().unwrap();
        let secret = secrets
            .get(label)
            .unwrap_or_else(|| panic!("{label} logged"));
        let expander = SUITE.hkdf_provider.expander_for_okm(&OkmBlock::new(secret));
        let expand = |label: &[u8], out: &mut [u8]| {
            let len = u16_len(out.len());
            let label_len = [u8::try_from(6 + label.len()).unwrap()];
            expander
                .expand_slice(&[&len, &label_len, b"tls13 ", label, &[0]], out)
                .unwrap();
        };
        let mut key = [0u8; 32];
        assert_eq!(SUITE.aead_alg.key_len(), key.len());
        expand(b"key", &mut key);
        let mut iv = [0u8; 12];
        expand(b"iv", &mut iv);
        (AeadKey::from(key), Iv::new(iv))
    }

    fn sealer(&self, label: &str) -> Sealer {
        let (key, iv) = self.key_iv(label);
        Sealer(SUITE.aead_alg.encrypter(key, iv), 0)
    }

    fn opener(&self, label: &str) -> Opener {
        let (key, iv) = self.key_iv(label);
        Opener(SUITE.aead_alg.decrypter(key, iv), 0)
    }
}

/// Seals records under one client traffic key, counting its sequence numbers.
struct Sealer(Box<dyn MessageEncrypter>, u64);

impl Sealer {
    /// One record whose inner plaintext is `payload` then the content type `typ` (which may be
    /// 0, the padding byte, making the whole inner plaintext padding).
    fn seal(&mut self, typ: u8, payload: &[u8]) -> Vec<u8> {
        let msg = OutboundPlainMessage {
            typ: ContentType::from(typ),
            version: rustls::ProtocolVersion::TLSv1_2,
            payload: OutboundChunks::Single(payload),
        };
        let sealed = self.0.encrypt(msg, self.1).unwrap();
        self.1 += 1;
        sealed.encode()
    }
}

/// Opens records under one server traffic key, counting its sequence numbers.
struct Opener(Box<dyn MessageDecrypter>, u64);

impl Opener {
    /// The inner content type and plaintext, or None when the record is not under this key.
    fn open(&mut self, payload: &[u8]) -> Option<(u8, Vec<u8>)> {
        let mut buf = payload.to_vec();
        let msg = InboundOpaqueMessage::new(
            ContentType::ApplicationData,
            rustls::ProtocolVersion::TLSv1_2,
            &mut buf,
        );
        let plain = self.0.decrypt(msg, self.1).ok()?;
        self.1 += 1;
        Some((u8::from(plain.typ), plain.payload.to_vec()))
    }
}

/// A verifying TLS 1.3 client offering only [`SUITE`] and logging its secrets.
fn scripted_client_config(secrets: &Arc<Secrets>) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in support::pem_certs(&support::chain(KeyType::EcdsaP256).root_pem) {
        roots.add(c).unwrap();
    }
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.cipher_suites = vec![rustls::SupportedCipherSuite::Tls13(SUITE)];
    let mut cfg = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    cfg.key_log = Arc::clone(secrets) as Arc<dyn rustls::KeyLog>;
    Arc::new(cfg)
}

/// One scripted TLS 1.3 conversation.
struct Scripted {
    sock: TcpStream,
    client: ClientConnection,
    secrets: Arc<Secrets>,
    /// Everything the server sent so far.
    from_server: Vec<u8>,
}

impl Scripted {
    /// Connects and sends the client's ClientHello, followed by `then` in the same write.
    fn hello(addr: SocketAddr, then: &[u8]) -> Scripted {
        let secrets = Arc::new(Secrets::default());
        let (client, msg) = rustls_hello(&scripted_client_config(&secrets));
        let mut sock = connect(addr);
        sock.set_nodelay(true).unwrap();
        let mut first = reframe(&msg, &[]);
        first.extend_from_slice(then);
        sock.write_all(&first).unwrap();
        Scripted {
            sock,
            client,
            secrets,
            from_server: Vec::new(),
        }
    }

    /// Feeds the server's flight to the client until it has its Finished to send; returns
    /// what the client would send (its ChangeCipherSpec and its encrypted Finished).
    fn server_flight(&mut self) -> Vec<u8> {
        let mut buf = [0u8; 16 * 1024];
        for _ in 0..100 {
            if !self.client.is_handshaking() {
                break;
            }
            let n = self.sock.read(&mut buf).unwrap();
            assert!(n > 0, "the server closed mid-handshake");
            self.from_server.extend_from_slice(&buf[..n]);
            self.client.read_tls(&mut &buf[..n]).unwrap();
            self.client.process_new_packets().unwrap();
        }
        assert!(!self.client.is_handshaking(), "the server's flight arrived");
        let mut out = Vec::new();
        while self.client.wants_write() {
            self.client.write_tls(&mut out).unwrap();
        }
        out
    }

    /// Sends `bytes`, then `tail` filler bytes, half-closes, and reads what the server sends
    /// until it closes. Panics on a reset: the server must close with a FIN, so that nothing
    /// it wrote is lost, even though it gave up with bytes of ours unread.
    fn send_then_read_to_eof(&mut self, bytes: &[u8], tail: usize) {
        let mut all = bytes.to_vec();
        all.extend(std::iter::repeat_n(0x17, tail));
        // A server that closes at once makes this write fail; what it sent is still read.
        let _ = self.sock.write_all(&all);
        let _ = self.sock.shutdown(std::net::Shutdown::Write);
        let deadline = Instant::now() + WITHIN;
        let mut buf = [0u8; 16 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the server did not close within {WITHIN:?}"
            );
            self.sock.set_read_timeout(Some(left)).unwrap();
            match self.sock.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => self.from_server.extend_from_slice(&buf[..n]),
                Err(e) if interrupted(&e) => {}
                Err(e) => panic!(
                    "{e} after {:02x?}: the server must close with a FIN",
                    self.from_server
                ),
            }
        }
    }

    /// Every record the server sent as (inner content type, plaintext), opened with the
    /// handshake key until it no longer fits, then with the application key.
    fn opened(&self) -> Vec<(u8, Vec<u8>)> {
        let mut handshake = Some(self.secrets.opener("SERVER_HANDSHAKE_TRAFFIC_SECRET"));
        let mut traffic = self.secrets.opener("SERVER_TRAFFIC_SECRET_0");
        let recs = records(&self.from_server);
        assert_eq!(
            recs.iter().map(|(_, p)| p.len() + 5).sum::<usize>(),
            self.from_server.len(),
            "whole records"
        );
        let mut out = Vec::new();
        for (typ, payload) in recs {
            if typ != APPLICATION_DATA {
                out.push((typ, payload.to_vec()));
                continue;
            }
            if let Some(opened) = handshake.as_mut().and_then(|h| h.open(payload)) {
                out.push(opened);
                continue;
            }
            handshake = None;
            out.push(traffic.open(payload).expect("a record under a server key"));
        }
        out
    }

    /// The fatal alert the server ended with, if its last record is one (checked to be the only
    /// alert it sent).
    fn final_alert(&self) -> Option<AlertDescription> {
        let opened = self.opened();
        let alerts = opened.iter().filter(|(t, _)| *t == ALERT).count();
        let (typ, payload) = opened.last()?;
        if *typ != ALERT {
            assert_eq!(alerts, 0, "{opened:02x?}");
            return None;
        }
        assert_eq!(alerts, 1, "one alert: {opened:02x?}");
        assert_eq!(payload.len(), 2, "level and description");
        assert_eq!(payload[0], 2, "a fatal alert");
        Some(AlertDescription::from(payload[1]))
    }
}

/// When a crafted record is sent.
#[derive(Clone, Copy, Debug)]
enum When {
    /// In place of the client's Finished, under its handshake key.
    Handshake,
    /// Right after the client's Finished, as its first application-key record.
    AfterHandshake,
    /// After a request was answered on the connection.
    ApplicationData,
}

/// Runs one conversation: a handshake, the record `craft` seals sent at `when` followed by
/// unread filler; returns the conversation once the server closed.
fn crafted(addr: SocketAddr, when: When, craft: impl Fn(&mut Sealer) -> Vec<u8>) -> Scripted {
    let mut s = Scripted::hello(addr, &[]);
    let finished = s.server_flight();
    let mut out = Vec::new();
    match when {
        When::Handshake => {
            out.extend(craft(
                &mut s.secrets.sealer("CLIENT_HANDSHAKE_TRAFFIC_SECRET"),
            ));
        }
        When::AfterHandshake => {
            out.extend(finished);
            out.extend(craft(&mut s.secrets.sealer("CLIENT_TRAFFIC_SECRET_0")));
        }
        When::ApplicationData => {
            let mut app = s.secrets.sealer("CLIENT_TRAFFIC_SECRET_0");
            let mut first = finished;
            first.extend(app.seal(
                APPLICATION_DATA,
                b"GET / HTTP/1.1\r\nHost: bank32.com\r\n\r\n",
            ));
            s.sock.write_all(&first).unwrap();
            s.read_until_response();
            out.extend(craft(&mut app));
        }
    }
    s.send_then_read_to_eof(&out, TAIL);
    s
}

impl Scripted {
    /// Reads (bounded) until the server has sent application data.
    fn read_until_response(&mut self) {
        let mut buf = [0u8; 16 * 1024];
        for _ in 0..100 {
            if self.opened().iter().any(|(t, _)| *t == APPLICATION_DATA) {
                return;
            }
            let n = self.sock.read(&mut buf).unwrap();
            assert!(n > 0, "the server closed before answering");
            self.from_server.extend_from_slice(&buf[..n]);
        }
        panic!("no response: {:02x?}", self.opened());
    }
}

/// A crafted record sealed by `craft` at `when`, what the server answers and how it counts it
/// (a handshake failure or a TLS error after the handshake, by cause).
type CraftCase = (
    &'static str,
    When,
    fn(&mut Sealer) -> Vec<u8>,
    Option<AlertDescription>,
    FailureCause,
);

#[test]
fn crafted_records_get_their_alert_then_a_clean_close() {
    // Every conversation leaves 256 KiB the server never decrypts. Closing at once would let
    // the kernel answer those bytes with a reset that destroys the alert; the server lingers
    // (drains them) and closes with a FIN after whatever rustls had to say.
    let server = start_with(Settings {
        linger_timeout: WITHIN,
        ..Settings::default()
    });
    let addr = server.local_addrs()[0];
    let unexpected = Some(AlertDescription::UnexpectedMessage);
    // rustls refuses an all-padding inner plaintext (content type 0) with
    // PeerMisbehaved::IllegalTlsInnerPlaintext and queues no alert for it (RFC 8446 5.4 asks
    // for unexpected_message; see docs/rustls-findings.md): the peer sees a clean close.
    let misbehaved = FailureCause::PeerMisbehaved;
    let cases: [CraftCase; 11] = [
        // A Finished whose verify_data is wrong (32 zero bytes for SHA-256): decrypt_error.
        (
            "wrong Finished",
            When::Handshake,
            |s| s.seal(HANDSHAKE, &[[20, 0, 0, 32].as_slice(), &[0; 32]].concat()),
            Some(AlertDescription::DecryptError),
            FailureCause::DecryptError,
        ),
        (
            "zero-length application data",
            When::Handshake,
            |s| s.seal(APPLICATION_DATA, &[]),
            unexpected,
            FailureCause::InappropriateMessage,
        ),
        (
            "content type 0 in the record header",
            When::Handshake,
            |_| record(0, 0x0303, &[0; 16]),
            Some(AlertDescription::DecodeError),
            FailureCause::InvalidMessage,
        ),
        (
            "content type 0",
            When::Handshake,
            |s| s.seal(0, &[]),
            None,
            misbehaved,
        ),
        (
            "content type 0, padded",
            When::Handshake,
            |s| s.seal(0, &[0; 64]),
            None,
            misbehaved,
        ),
        (
            "content type 0",
            When::AfterHandshake,
            |s| s.seal(0, &[]),
            None,
            misbehaved,
        ),
        (
            "content type 0, padded",
            When::AfterHandshake,
            |s| s.seal(0, &[0; 64]),
            None,
            misbehaved,
        ),
        (
            "content type 0",
            When::ApplicationData,
            |s| s.seal(0, &[]),
            None,
            misbehaved,
        ),
        (
            "content type 0, padded",
            When::ApplicationData,
            |s| s.seal(0, &[0; 64]),
            None,
            misbehaved,
        ),
        // A record whose plaintext is one byte over 2^14, sealed correctly: record_overflow
        // (rustls's PeerSentOversizedRecord, an OtherTls error here).
        (
            "oversized plaintext",
            When::ApplicationData,
            |s| s.seal(APPLICATION_DATA, &[b'x'; MAX_RECORD + 1]),
            Some(AlertDescription::RecordOverflow),
            FailureCause::OtherTls,
        ),
        // A ciphertext over 2^14 + 256 bytes that is not one: rustls tries to open it before
        // it looks at the length, so the peer hears bad_record_mac, not record_overflow.
        (
            "oversized ciphertext",
            When::ApplicationData,
            |_| record(APPLICATION_DATA, 0x0303, &[0; MAX_RECORD + 256 + 1]),
            Some(AlertDescription::BadRecordMac),
            FailureCause::DecryptError,
        ),
    ];
    let (mut failures, mut errors, mut handshakes) = (0, 0, 0);
    for (what, when, craft, alert, cause) in cases {
        let what = format!("{what} ({when:?})");
        let s = crafted(addr, when, craft);
        assert_eq!(s.final_alert(), alert, "{what}");
        let before = server.stats().snapshot();
        if matches!(when, When::Handshake) {
            failures += 1;
            settled(&server, &what, |s| {
                s.failures_of(cause) == before.failures_of(cause).max(1)
                    && s.failures_total() == failures
            });
        } else {
            errors += 1;
            handshakes += 1;
            settled(&server, &what, |s| {
                s.tls_errors_of(cause) >= 1 && s.tls_errors_total() == errors
            });
        }
        good_request_still_served(&server);
        handshakes += 1;
        settled(&server, &what, |s| {
            s.handshakes_of("1.3", "full") == handshakes
        });
    }
    let s = stop(server);
    assert_eq!(s.failures_of(FailureCause::InappropriateMessage), 1);
    assert_eq!(s.failures_of(FailureCause::InvalidMessage), 1);
    assert_eq!(s.failures_of(misbehaved), 2);
    assert_eq!(s.failures_of(FailureCause::DecryptError), 1);
    assert_eq!(s.failures_total(), 5);
    assert_eq!(s.tls_errors_of(misbehaved), 4);
    assert_eq!(s.tls_errors_of(FailureCause::OtherTls), 1);
    assert_eq!(s.tls_errors_of(FailureCause::DecryptError), 1);
    assert_eq!(s.tls_errors_total(), 6);
    // Each crafted conversation lingered until the client's FIN, none until the timeout.
    assert_eq!(s.timeouts_of(TimeoutKind::Linger), 0);
    assert_eq!((s.accepted, s.closed), (22, 22));
}

/// A record of another type between two records of a split ClientHello (RFC 8446 §5.1: "MUST
/// NOT be interleaved"). rustls's deframer refuses it (MessageInterleavedWithHandshakeMessage)
/// without queuing an alert; before the server has sent anything the peer still reads
/// plaintext, so the server sends the unexpected_message rustls omits. These are tlsfuzzer's
/// "zero-length app data [with padding] interleaved in handshake" conversations.
#[test]
fn a_record_interleaved_with_a_split_client_hello_gets_unexpected_message() {
    let server = support::start_default();
    let addr = server.local_addrs()[0];
    let cfg = client_no_resume(&[&TLS13]);
    let interleaved: [(&str, Vec<u8>); 3] = [
        (
            "empty application data",
            record(APPLICATION_DATA, 0x0303, &[]),
        ),
        (
            "application data",
            record(APPLICATION_DATA, 0x0303, &[0; 64]),
        ),
        ("ChangeCipherSpec", CCS_RECORD.to_vec()),
    ];
    for (i, (what, between)) in interleaved.iter().enumerate() {
        let (_conn, msg) = rustls_hello(&cfg);
        let mut bytes = record(HANDSHAKE, 0x0301, &msg[..2]);
        bytes.extend_from_slice(between);
        bytes.extend_from_slice(&record(HANDSHAKE, 0x0301, &msg[2..]));
        let reply = send_and_collect(addr, &bytes);
        assert_eq!(
            sole_fatal_alert(&reply),
            AlertDescription::UnexpectedMessage,
            "{what}"
        );
        let n = i as u64 + 1;
        settled(&server, what, |s| {
            s.failures_of(FailureCause::PeerMisbehaved) == n && s.failures_total() == n
        });
        good_request_still_served(&server);
    }
    let s = stop(server);
    assert_eq!(s.failures_of(FailureCause::PeerMisbehaved), 3);
    assert_eq!(s.failures_total(), 3);
    assert_eq!(s.timeouts_of(TimeoutKind::Linger), 0);
    assert_eq!((s.accepted, s.closed), (6, 6));
}

/// The same interleaving in the second ClientHello, after the server's HelloRetryRequest went
/// out: from its first byte on the wire only rustls speaks (after a ServerHello an alert of
/// ours would be in the wrong encryption state), so the client gets the HRR, then a FIN.
#[test]
fn an_interleaved_record_after_the_server_spoke_gets_only_a_close() {
    let opts = TlsOptions {
        groups: common::tls::parse_groups(&["secp384r1".into()]).unwrap(),
        ..TlsOptions::default()
    };
    let server = support::start(KeyType::EcdsaP256, &opts, Settings::default(), 1);
    let addr = server.local_addrs()[0];
    // The client's first key share is for another group: the server must ask again.
    let (_conn, msg) = rustls_hello(&client_no_resume(&[&TLS13]));
    let mut sock = connect(addr);
    sock.write_all(&reframe(&msg, &[])).unwrap();
    let mut hrr = Vec::new();
    let mut buf = [0u8; 4096];
    for _ in 0..100 {
        if records(&hrr)
            .iter()
            .any(|(typ, _)| *typ == CHANGE_CIPHER_SPEC)
        {
            break;
        }
        let n = sock.read(&mut buf).unwrap();
        assert!(n > 0, "the server closed before its HelloRetryRequest");
        hrr.extend_from_slice(&buf[..n]);
    }
    let types: Vec<u8> = records(&hrr).iter().map(|(typ, _)| *typ).collect();
    assert_eq!(
        types,
        [HANDSHAKE, CHANGE_CIPHER_SPEC],
        "HRR, then the compatibility CCS"
    );
    assert_eq!(records(&hrr)[0].1[0], SERVER_HELLO);

    let mut second = record(HANDSHAKE, 0x0303, &msg[..2]);
    second.extend_from_slice(&record(APPLICATION_DATA, 0x0303, &[]));
    sock.write_all(&second).unwrap();
    let after = read_until_closed(&mut sock, WITHIN);
    assert!(after.is_empty(), "no alert after the HRR: {after:02x?}");
    drop(sock);
    settled(&server, "after the HRR", |s| {
        s.failures_of(FailureCause::PeerMisbehaved) == 1
    });
    good_request_still_served(&server);
    let s = stop(server);
    assert_eq!(s.failures_total(), 1);
    assert_eq!(s.timeouts_of(TimeoutKind::Linger), 0);
    assert_eq!((s.accepted, s.closed), (2, 2));
}

/// The handshake message types in a run of handshake plaintext.
fn handshake_types(mut plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while plain.len() >= 4 {
        out.push(plain[0]);
        let len = usize::from(plain[1]) << 16 | be16(plain, 2);
        plain = &plain[(4 + len).min(plain.len())..];
    }
    out
}

#[test]
fn tickets_go_out_before_the_first_response() {
    let server = support::start_default();
    let addr = server.local_addrs()[0];
    for round in 0..3 {
        let mut s = Scripted::hello(addr, &[]);
        // The client's Finished and its request in one write, so one read on the server sees
        // both: rustls issues the tickets when it verifies the Finished, before it decrypts
        // the request, and the server answers only after that, so the tickets lead.
        let mut out = s.server_flight();
        let mut app = s.secrets.sealer("CLIENT_TRAFFIC_SECRET_0");
        out.extend(app.seal(
            APPLICATION_DATA,
            b"GET / HTTP/1.1\r\nHost: bank32.com\r\nConnection: close\r\n\r\n",
        ));
        s.send_then_read_to_eof(&out, 0);
        let opened = s.opened();
        let finished = opened
            .iter()
            .position(|(t, p)| *t == HANDSHAKE && handshake_types(p).contains(&20))
            .expect("the server's Finished");
        let after: Vec<&(u8, Vec<u8>)> = opened[finished + 1..].iter().collect();
        let tickets: Vec<u8> = after
            .iter()
            .take_while(|(t, _)| *t == HANDSHAKE)
            .flat_map(|(_, p)| handshake_types(p))
            .collect();
        assert_eq!(
            tickets, [NEW_SESSION_TICKET; 2],
            "round {round}: the tickets come first: {opened:02x?}"
        );
        let rest: Vec<u8> = after
            .iter()
            .map(|(t, _)| *t)
            .skip_while(|t| *t == HANDSHAKE)
            .collect();
        // The response (one record), then close_notify.
        assert_eq!(rest, [APPLICATION_DATA, ALERT], "round {round}");
        let response = &after
            .iter()
            .find(|(t, _)| *t == APPLICATION_DATA)
            .unwrap()
            .1;
        assert!(response.starts_with(b"HTTP/1.1 200 OK\r\n"));
        assert!(response.ends_with(HELLO_PAGE));
    }
    let s = stop(server);
    assert_eq!(s.handshakes_of("1.3", "full"), 3);
    assert_eq!(s.requests_total(), 3);
}

#[test]
fn change_cipher_spec_conversations_are_answered_within_a_bound() {
    // rustls drops up to two middlebox ChangeCipherSpec records per connection in TLS 1.3
    // (one per ClientHello, allowing for a HelloRetryRequest), whatever their position, and
    // fails the third with IllegalMiddleboxChangeCipherSpec, queuing no alert for it (see
    // docs/rustls-findings.md). Every conversation gets the server's flight at once, and
    // ends within a bound: completed, closed at the client's close, or at the handshake
    // timeout; never silence until the client gives up.
    let timeout = Duration::from_millis(500);
    let server = start_with(Settings {
        handshake_timeout: timeout,
        ..Settings::default()
    });
    let addr = server.local_addrs()[0];
    let two_ccs = [CCS_RECORD, CCS_RECORD].concat();

    // ClientHello + CCS + CCS in one segment: both dropped, the flight comes back; the
    // client's own CCS before its Finished is then the third: refused, clean close.
    let mut s = Scripted::hello(addr, &two_ccs);
    let fin = s.server_flight();
    assert_eq!(
        fin[..6],
        CCS_RECORD,
        "the client sends its compatibility CCS"
    );
    s.send_then_read_to_eof(&fin, 0);
    assert_eq!(s.final_alert(), None);
    settled(&server, "three CCS", |s| {
        s.failures_of(FailureCause::PeerMisbehaved) == 1
    });

    // The same without the client's CCS: the Finished completes the handshake.
    let mut s = Scripted::hello(addr, &two_ccs);
    let fin = s.server_flight();
    let mut app = s.secrets.sealer("CLIENT_TRAFFIC_SECRET_0");
    let mut out = fin[6..].to_vec();
    out.extend(app.seal(
        APPLICATION_DATA,
        b"GET / HTTP/1.1\r\nHost: bank32.com\r\nConnection: close\r\n\r\n",
    ));
    s.send_then_read_to_eof(&out, 0);
    assert!(
        s.opened()
            .iter()
            .any(|(t, p)| *t == APPLICATION_DATA && p.ends_with(HELLO_PAGE)),
        "answered after two CCS"
    );

    // A second CCS before the client's Finished (its own is the first): the handshake
    // completes.
    let mut s = Scripted::hello(addr, &[]);
    let mut out = CCS_RECORD.to_vec();
    out.extend(s.server_flight());
    out.extend(app_request(&s));
    s.send_then_read_to_eof(&out, 0);
    assert!(
        s.opened()
            .iter()
            .any(|(t, p)| *t == APPLICATION_DATA && p.ends_with(HELLO_PAGE)),
        "answered after a second CCS"
    );
    settled(&server, "two CCS", |s| s.handshakes_of("1.3", "full") == 2);

    // ClientHello + CCS + CCS, then the client waits for an alert (as OpenSSL would send):
    // the server has answered with its flight and waits for the Finished until its
    // handshake timeout, then closes.
    let started = Instant::now();
    let mut s = Scripted::hello(addr, &two_ccs);
    s.server_flight();
    let rest = read_until_closed(&mut s.sock, WITHIN);
    assert!(rest.is_empty(), "{rest:02x?}");
    assert!(started.elapsed() >= timeout);
    settled(&server, "silent client", |s| {
        s.failures_of(FailureCause::Timeout) == 1
    });

    good_request_still_served(&server);
    let s = stop(server);
    assert_eq!(s.failures_of(FailureCause::PeerMisbehaved), 1);
    assert_eq!(s.failures_of(FailureCause::Timeout), 1);
    assert_eq!(s.failures_total(), 2);
    assert_eq!(s.handshakes_of("1.3", "full"), 3);
    assert_eq!((s.accepted, s.closed), (5, 5));
}

/// The request `GET /` (closing) as the client's first application-data record.
fn app_request(s: &Scripted) -> Vec<u8> {
    s.secrets.sealer("CLIENT_TRAFFIC_SECRET_0").seal(
        APPLICATION_DATA,
        b"GET / HTTP/1.1\r\nHost: bank32.com\r\nConnection: close\r\n\r\n",
    )
}
