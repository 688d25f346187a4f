//! TLS acceptance of the server, with a verifying rustls client on loopback: the hello page for
//! every key type over TLS 1.2 and 1.3, every resumption mode checked on both ends (the
//! client's `handshake_kind()` and the server's exact counters), resumption across worker
//! threads, and broken clients closed, counted and survived.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use common::certs::KeyType;
use rustls::HandshakeKind;
use rustls::pki_types::ServerName;
use rustls::version::{TLS12, TLS13};
use server::stats::FailureCause;
use server::{Resumption, Settings, TlsOptions};
use support::ClientResume;
use test_support::loopback as support;

#[test]
fn hello_page_byte_for_byte_for_every_key_type_and_version() {
    for kt in KeyType::ALL {
        let server = support::start(kt, &TlsOptions::default(), Settings::default(), 1);
        let addr = server.local_addrs()[0];
        for version in [&TLS12, &TLS13] {
            let cfg = support::client_config(kt, &[version], ClientResume::Off);
            let mut tls = support::connect(addr, &cfg);
            assert_eq!(tls.conn.protocol_version(), Some(version.version), "{kt}");
            write!(tls, "GET / HTTP/1.1\r\nHost: bank32.com\r\n\r\n").unwrap();
            let (head, body) = support::read_response(&mut tls);
            assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{kt}: {head}");
            assert_eq!(
                support::header(&head, "content-type"),
                Some("text/html; charset=utf-8")
            );
            assert_eq!(support::header(&head, "content-length"), Some("228"));
            assert_eq!(
                body,
                server::http::HELLO_PAGE,
                "{kt} over {:?}",
                version.version
            );
        }
        let s = server.stop().unwrap();
        assert_eq!(s.handshakes_of("1.2", "full"), 1, "{kt}");
        assert_eq!(s.handshakes_of("1.3", "full"), 1, "{kt}");
        assert_eq!(s.requests_total(), 2);
        assert_eq!(s.failures_total(), 0);
        assert_eq!((s.accepted, s.closed), (2, 2));
    }
}

/// Two connections with one client config: returns both handshake kinds. Each connection
/// reads its whole response, so TLS 1.3 tickets (sent before it) have been stored.
fn twice(
    server: &server::Server,
    second_worker: usize,
    version: &'static rustls::SupportedProtocolVersion,
    resume: ClientResume,
) -> (HandshakeKind, HandshakeKind) {
    let cfg = support::client_config(KeyType::EcdsaP256, &[version], resume);
    let (k1, h1, b1) = support::get(server.local_addrs()[0], &cfg, "/");
    let (k2, h2, b2) = support::get(server.local_addrs()[second_worker], &cfg, "/");
    assert!(h1.starts_with("HTTP/1.1 200") && h2.starts_with("HTTP/1.1 200"));
    assert_eq!(b1, server::http::HELLO_PAGE);
    assert_eq!(b2, server::http::HELLO_PAGE);
    (k1, k2)
}

fn server_with(resumption: Resumption, workers: usize) -> server::Server {
    let opts = TlsOptions {
        resumption,
        ..TlsOptions::default()
    };
    support::start(KeyType::EcdsaP256, &opts, Settings::default(), workers)
}

#[test]
fn tls13_ticket_resumption() {
    let server = server_with(Resumption::Tickets, 1);
    let kinds = twice(&server, 0, &TLS13, ClientResume::Default);
    assert_eq!(kinds, (HandshakeKind::Full, HandshakeKind::Resumed));
    let s = server.stop().unwrap();
    assert_eq!(s.handshakes_of("1.3", "full"), 1);
    assert_eq!(s.handshakes_of("1.3", "resumed"), 1);
    assert_eq!(s.handshakes_total(), 2);
}

#[test]
fn tls13_stateful_resumption() {
    let server = server_with(Resumption::Stateful, 1);
    let kinds = twice(&server, 0, &TLS13, ClientResume::Default);
    assert_eq!(kinds, (HandshakeKind::Full, HandshakeKind::Resumed));
    let s = server.stop().unwrap();
    assert_eq!(s.handshakes_of("1.3", "full"), 1);
    assert_eq!(s.handshakes_of("1.3", "resumed"), 1);
}

#[test]
fn tls12_session_id_resumption_with_tickets_off() {
    // Stateful only: the server has no ticketer, and the client does not offer tickets.
    let server = server_with(Resumption::Stateful, 1);
    let kinds = twice(&server, 0, &TLS12, ClientResume::SessionIdOnly);
    assert_eq!(kinds, (HandshakeKind::Full, HandshakeKind::Resumed));
    let s = server.stop().unwrap();
    assert_eq!(s.handshakes_of("1.2", "full"), 1);
    assert_eq!(s.handshakes_of("1.2", "resumed"), 1);
}

#[test]
fn tls12_ticket_resumption() {
    // Tickets only: no session cache, so a resumption can only have come from the ticket.
    let server = server_with(Resumption::Tickets, 1);
    let kinds = twice(&server, 0, &TLS12, ClientResume::Default);
    assert_eq!(kinds, (HandshakeKind::Full, HandshakeKind::Resumed));
    let s = server.stop().unwrap();
    assert_eq!(s.handshakes_of("1.2", "full"), 1);
    assert_eq!(s.handshakes_of("1.2", "resumed"), 1);
}

#[test]
fn tls12_session_id_client_gets_full_handshakes_from_a_tickets_only_server() {
    // Shows the modes are really apart: no cache means nothing to resume by ID.
    let server = server_with(Resumption::Tickets, 1);
    let kinds = twice(&server, 0, &TLS12, ClientResume::SessionIdOnly);
    assert_eq!(kinds, (HandshakeKind::Full, HandshakeKind::Full));
    assert_eq!(server.stop().unwrap().handshakes_of("1.2", "full"), 2);
}

#[test]
fn resumption_off_gives_only_full_handshakes() {
    let server = server_with(Resumption::Off, 1);
    for version in [&TLS12, &TLS13] {
        let cfg = support::client_config(KeyType::EcdsaP256, &[version], ClientResume::Default);
        for _ in 0..3 {
            let (k, head, _) = support::get(server.local_addrs()[0], &cfg, "/");
            assert!(head.starts_with("HTTP/1.1 200"));
            assert_eq!(k, HandshakeKind::Full);
        }
    }
    let s = server.stop().unwrap();
    assert_eq!(s.handshakes_of("1.2", "full"), 3);
    assert_eq!(s.handshakes_of("1.3", "full"), 3);
    assert_eq!(
        s.handshakes_of("1.2", "resumed") + s.handshakes_of("1.3", "resumed"),
        0
    );
}

#[test]
fn resumption_works_across_worker_threads() {
    // Each worker has its own port, so the first connection lands on worker 0 and the second
    // on worker 1: the session must be shared through the one ServerConfig.
    for (mode, version, resume) in [
        (Resumption::Tickets, &TLS13, ClientResume::Default),
        (Resumption::Stateful, &TLS13, ClientResume::Default),
        (Resumption::Stateful, &TLS12, ClientResume::SessionIdOnly),
        (Resumption::Tickets, &TLS12, ClientResume::Default),
    ] {
        let server = server_with(mode, 2);
        let kinds = twice(&server, 1, version, resume);
        assert_eq!(
            kinds,
            (HandshakeKind::Full, HandshakeKind::Resumed),
            "{mode:?} {:?}",
            version.version
        );
        let s = server.stop().unwrap();
        assert_eq!(s.handshakes_total(), 2);
        assert_eq!(s.accepted, 2);
    }
}

#[test]
fn garbage_is_closed_counted_and_survived() {
    let server = support::start_default();
    let addr = server.local_addrs()[0];
    let mut sock = TcpStream::connect(addr).unwrap();
    let garbage: Vec<u8> = (0..2048u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    sock.write_all(&garbage).unwrap();
    assert!(support::closed_by_server(
        &mut sock,
        Duration::from_secs(10)
    ));
    support::good_request_still_served(&server);
    let s = server.stop().unwrap();
    assert_eq!(s.failures_total(), 1);
    assert_eq!(s.handshakes_total(), 1);
    assert_eq!((s.accepted, s.closed), (2, 2));
}

#[test]
fn plain_http_on_the_tls_port_is_closed_counted_and_survived() {
    let server = support::start_default();
    let mut sock = TcpStream::connect(server.local_addrs()[0]).unwrap();
    sock.write_all(b"GET / HTTP/1.1\r\nHost: bank32.com\r\n\r\n")
        .unwrap();
    assert!(support::closed_by_server(
        &mut sock,
        Duration::from_secs(10)
    ));
    support::good_request_still_served(&server);
    let s = server.stop().unwrap();
    assert_eq!(s.failures_of(FailureCause::InvalidMessage), 1);
    assert_eq!(s.failures_total(), 1);
    assert_eq!(s.requests_total(), 1);
}

#[test]
fn disconnect_mid_handshake_is_counted_and_survived() {
    let server = support::start_default();
    let addr = server.local_addrs()[0];
    // A real ClientHello, then the client vanishes before the server's flight is answered.
    let cfg = support::client_no_resume(&[&TLS13]);
    let mut conn = rustls::ClientConnection::new(cfg, "bank32.com".try_into().unwrap()).unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    {
        let mut sock = TcpStream::connect(addr).unwrap();
        sock.write_all(&hello).unwrap();
        // Wait for the server's reply so we know it is mid-handshake, then drop the socket.
        let mut first = [0u8; 5];
        sock.read_exact(&mut first).unwrap();
        assert_eq!(first[0], 0x16, "a handshake record");
    }
    assert!(support::wait_for(&server, Duration::from_secs(10), |s| s
        .failures_total()
        == 1));
    support::good_request_still_served(&server);
    let s = server.stop().unwrap();
    assert_eq!(
        s.failures_of(FailureCause::Eof) + s.failures_of(FailureCause::Io),
        1
    );
    assert_eq!(s.handshakes_total(), 1);
}

#[test]
fn refusing_client_alert_is_counted_by_name() {
    // The client trusts another CA: it aborts with an alert, which the server records under
    // the alert's name.
    let server = support::start_default();
    let cfg = support::client_config(KeyType::Ed25519, &[&TLS13], ClientResume::Off);
    let name = ServerName::try_from("bank32.com").unwrap();
    let mut conn = rustls::ClientConnection::new(cfg, name).unwrap();
    let mut sock = TcpStream::connect(server.local_addrs()[0]).unwrap();
    let mut err = None;
    for _ in 0..100 {
        match conn.complete_io(&mut sock) {
            Ok(_) if !conn.is_handshaking() => break,
            Ok(_) => {}
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    let err = err.expect("the handshake must fail");
    assert!(
        err.to_string().contains("invalid peer certificate"),
        "{err}"
    );
    assert!(support::wait_for(&server, Duration::from_secs(10), |s| s
        .failures_total()
        == 1));
    let s = server.stop().unwrap();
    assert_eq!(s.failures_of(FailureCause::PeerAlert), 1);
    // Same CA name, other key type: webpki refuses the signature algorithm, and rustls sends
    // the alert it maps that to.
    let received: Vec<(u8, u64)> = (0..=u8::MAX)
        .zip(s.alerts_received)
        .filter(|(_, n)| *n > 0)
        .collect();
    let decrypt_error = u8::from(rustls::AlertDescription::DecryptError);
    assert_eq!(received, [(decrypt_error, 1)], "{}", s.summary());
}

#[test]
fn handshake_timeout_closes_silent_clients() {
    let settings = Settings {
        handshake_timeout: Duration::from_millis(200),
        ..Settings::default()
    };
    let server = support::start(KeyType::EcdsaP256, &TlsOptions::default(), settings, 1);
    let mut sock = TcpStream::connect(server.local_addrs()[0]).unwrap();
    assert!(support::closed_by_server(
        &mut sock,
        Duration::from_secs(10)
    ));
    let s = server.stop().unwrap();
    assert_eq!(s.failures_of(FailureCause::Timeout), 1);
    assert_eq!(s.timeouts_of(server::stats::TimeoutKind::Handshake), 1);
}

#[test]
fn negotiated_suite_and_group_follow_the_options() {
    let opts = TlsOptions {
        suites: common::tls::parse_suites(&["TLS_CHACHA20_POLY1305_SHA256".into()]).unwrap(),
        groups: common::tls::parse_groups(&["secp384r1".into()]).unwrap(),
        ..TlsOptions::default()
    };
    let server = support::start(KeyType::EcdsaP256, &opts, Settings::default(), 1);
    let cfg = support::client_no_resume(&[&TLS13]);
    let mut tls = support::connect(server.local_addrs()[0], &cfg);
    // A request and its answer: the server has then seen our Finished and counted the
    // handshake (stopping before that would count it as cut by the shutdown).
    write!(tls, "GET / HTTP/1.1\r\nHost: bank32.com\r\n\r\n").unwrap();
    assert_eq!(support::read_response(&mut tls).1, server::http::HELLO_PAGE);
    let suite = tls.conn.negotiated_cipher_suite().unwrap();
    assert_eq!(
        common::tls::suite_name(suite),
        "TLS_CHACHA20_POLY1305_SHA256"
    );
    let group = tls.conn.negotiated_key_exchange_group().unwrap();
    assert_eq!(common::tls::group_name(group), "secp384r1");
    // The client offered X25519MLKEM768 first, so the server had to ask again: an HRR.
    assert_eq!(
        tls.conn.handshake_kind(),
        Some(HandshakeKind::FullWithHelloRetryRequest)
    );
    drop(tls);
    let s = server.stop().unwrap();
    assert_eq!(s.handshakes_of("1.3", "full_hrr"), 1);
}

/// A client session store that forgets which group the server chose, so every connection
/// offers the client's first group again: the server asks for another (an HRR) each time.
#[derive(Debug)]
struct NoKxHint(rustls::client::ClientSessionMemoryCache);

impl rustls::client::ClientSessionStore for NoKxHint {
    fn set_kx_hint(&self, _: ServerName<'static>, _: rustls::NamedGroup) {}
    fn kx_hint(&self, _: &ServerName<'_>) -> Option<rustls::NamedGroup> {
        None
    }
    fn set_tls12_session(
        &self,
        name: ServerName<'static>,
        value: rustls::client::Tls12ClientSessionValue,
    ) {
        self.0.set_tls12_session(name, value);
    }
    fn tls12_session(
        &self,
        name: &ServerName<'_>,
    ) -> Option<rustls::client::Tls12ClientSessionValue> {
        self.0.tls12_session(name)
    }
    fn remove_tls12_session(&self, name: &ServerName<'static>) {
        self.0.remove_tls12_session(name);
    }
    fn insert_tls13_ticket(
        &self,
        name: ServerName<'static>,
        value: rustls::client::Tls13ClientSessionValue,
    ) {
        self.0.insert_tls13_ticket(name, value);
    }
    fn take_tls13_ticket(
        &self,
        name: &ServerName<'static>,
    ) -> Option<rustls::client::Tls13ClientSessionValue> {
        self.0.take_tls13_ticket(name)
    }
}

#[test]
fn a_resumption_after_a_hello_retry_request_counts_as_resumed_hrr() {
    let opts = TlsOptions {
        groups: common::tls::parse_groups(&["secp384r1".into()]).unwrap(),
        resumption: Resumption::Tickets,
        ..TlsOptions::default()
    };
    let server = support::start(KeyType::EcdsaP256, &opts, Settings::default(), 1);
    let mut cfg =
        (*support::client_config(KeyType::EcdsaP256, &[&TLS13], ClientResume::Off)).clone();
    cfg.resumption = rustls::client::Resumption::store(Arc::new(NoKxHint(
        rustls::client::ClientSessionMemoryCache::new(8),
    )));
    let cfg = Arc::new(cfg);
    let addr = server.local_addrs()[0];
    // The client offers X25519MLKEM768 first each time; the server takes only secp384r1.
    let (first, h1, _) = support::get(addr, &cfg, "/");
    assert_eq!(first, HandshakeKind::FullWithHelloRetryRequest, "{h1}");
    let (second, h2, body) = support::get(addr, &cfg, "/");
    assert!(h2.starts_with("HTTP/1.1 200"), "{h2}");
    assert_eq!(body, server::http::HELLO_PAGE);
    // rustls says only "resumed" on both ends; the server counts the HRR it sent.
    assert_eq!(second, HandshakeKind::Resumed);
    let s = server.stop().unwrap();
    assert_eq!(s.handshakes_of("1.3", "full_hrr"), 1, "{}", s.summary());
    assert_eq!(s.handshakes_of("1.3", "resumed_hrr"), 1, "{}", s.summary());
    assert_eq!(s.handshakes_of("1.3", "resumed"), 0, "{}", s.summary());
    assert_eq!(s.handshakes_total(), 2);
    assert!(
        s.summary().contains(
            "TLS 1.3 handshakes: 0 full, 0 resumed, 1 full with HRR, 1 resumed after HRR"
        ),
        "{}",
        s.summary()
    );
}

#[test]
fn max_fragment_limits_record_size() {
    let opts = TlsOptions {
        max_fragment: Some(1024 + 5),
        ..TlsOptions::default()
    };
    let server = support::start(KeyType::EcdsaP256, &opts, Settings::default(), 1);
    let cfg = support::client_no_resume(&[&TLS13]);
    let mut tls = support::connect(server.local_addrs()[0], &cfg);
    write!(
        tls,
        "GET /bytes/100000 HTTP/1.1\r\nHost: bank32.com\r\n\r\n"
    )
    .unwrap();
    let (_, body) = support::read_response(&mut tls);
    assert!(common::pattern::matches(0, &body));
    assert_eq!(body.len(), 100_000);
    drop(tls);
    server.stop().unwrap();
}

#[test]
fn keylog_writes_nss_lines() {
    let dir = support::temp_dir("keylog");
    let path = dir.join("keys.log");
    let opts = TlsOptions {
        keylog: Some(path.clone()),
        ..TlsOptions::default()
    };
    let server = support::start(KeyType::EcdsaP256, &opts, Settings::default(), 1);
    let cfg = support::client_no_resume(&[&TLS13]);
    let (_, head, _) = support::get(server.local_addrs()[0], &cfg, "/");
    assert!(head.starts_with("HTTP/1.1 200"));
    server.stop().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    for label in [
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET ",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET ",
        "CLIENT_TRAFFIC_SECRET_0 ",
        "SERVER_TRAFFIC_SECRET_0 ",
    ] {
        assert_eq!(
            text.lines().filter(|l| l.starts_with(label)).count(),
            1,
            "{label} in {text}"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn reuseport_workers_share_one_port_over_ipv4_and_ipv6() {
    for addr in ["127.0.0.1:0", "[::1]:0"] {
        let listeners = server::bind(addr.parse().unwrap(), 2, 128).unwrap();
        let server = support::start_on(
            listeners,
            KeyType::EcdsaP256,
            &TlsOptions::default(),
            Settings::default(),
        );
        let addrs = server.local_addrs().to_vec();
        assert_eq!(addrs.len(), 2);
        assert_eq!(addrs[0], addrs[1], "port 0 is picked once and shared");
        assert_ne!(addrs[0].port(), 0);
        let client = support::client_no_resume(&[&TLS13]);
        for _ in 0..8 {
            let (_, head, body) = support::get(addrs[0], &client, "/");
            assert!(head.starts_with("HTTP/1.1 200"), "{addr}: {head}");
            assert_eq!(body, server::http::HELLO_PAGE);
        }
        let s = server.stop().unwrap();
        assert_eq!(s.handshakes_of("1.3", "full"), 8, "{addr}");
        assert_eq!(s.workers, 2);
    }
}
