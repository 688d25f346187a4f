//! The load generator against the tlsbench server when a connection is failed by TLS (issue
//! 16): a relay between them splices a crafted record and unread filler after each
//! ClientHello, so the server's rustls refuses the connection with bytes of the client still
//! unread. The server's alert must reach the client (the server lingers instead of closing
//! into a reset), and the load generator must count it as `tls_alert` by the alert's name,
//! never as `reset`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

use common::tls::Version;
use loadgen::{FailureKind, Target};
use server::stats::FailureCause;
use server::{Resumption, Settings};
use support::TestServer;
use test_support::load_target as support;

/// Connections a run makes before `max_errors` stops it; the relay serves no more.
const CONNECTIONS: usize = 3;
/// Filler sent after the crafted record: far more than rustls reads at once, so the server
/// gives up with some of it still in its socket.
const TAIL: usize = 256 * 1024;

/// Closes `sock` with a reset, as the other side of the relay did.
fn reset(sock: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads `linger` (a valid, sized struct) for the duration of the
    // call; the descriptor is owned by `sock`, alive here.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// Relays `CONNECTIONS` connections from a fresh port to `server`, writing `inject` and the
/// filler right behind the client's first record (its ClientHello), in the same write.
fn relay(server: SocketAddr, inject: Vec<u8>, tail: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for _ in 0..CONNECTIONS {
            let Ok((client, _)) = listener.accept() else {
                return;
            };
            let inject = inject.clone();
            std::thread::spawn(move || one(client, server, inject, tail));
        }
    });
    addr
}

fn one(mut client: TcpStream, server: SocketAddr, inject: Vec<u8>, tail: usize) {
    let mut upstream = TcpStream::connect(server).unwrap();
    let (mut c_in, mut u_out) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
    std::thread::spawn(move || {
        let mut head = [0u8; 5];
        if c_in.read_exact(&mut head).is_err() {
            return;
        }
        let mut first = head.to_vec();
        first.resize(5 + usize::from(u16::from_be_bytes([head[3], head[4]])), 0);
        if c_in.read_exact(&mut first[5..]).is_err() {
            return;
        }
        first.extend_from_slice(&inject);
        first.extend(std::iter::repeat_n(0x17, tail));
        // The server may refuse before reading all of it: that is the case under test.
        let _ = u_out.write_all(&first);
        let _ = std::io::copy(&mut c_in, &mut u_out);
        let _ = u_out.shutdown(Shutdown::Write);
    });
    let mut buf = [0u8; 16 * 1024];
    loop {
        match upstream.read(&mut buf) {
            Ok(0) => {
                let _ = client.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                if client.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(_) => {
                reset(&client);
                return;
            }
        }
    }
}

/// Runs the load generator (TLS 1.3, a connection per request) through a relay injecting
/// `inject` and `tail` filler bytes; returns its counters and the server's.
fn alerts_through(inject: &[u8], tail: usize) -> (loadgen::stats::LoadCounters, server::Snapshot) {
    let mut srv = TestServer::start_with(
        Resumption::Both,
        1,
        common::certs::generate(
            common::certs::KeyType::EcdsaP256,
            &common::certs::ChainOptions::default(),
        )
        .unwrap(),
        Settings::default(),
    );
    let server = srv.server.as_ref().unwrap().local_addrs()[0];
    let via = relay(server, inject.to_vec(), tail);
    let mut opts = srv.options("/");
    opts.target = Target::new(&srv.url("/"), None, Some(&via.to_string())).unwrap();
    opts.connections = 1;
    opts.new_conn = true;
    opts.tls.versions = vec![Version::Tls13];
    opts.requests = None;
    opts.duration = Some(Duration::from_secs(20));
    opts.timeout = Duration::from_secs(10);
    opts.max_errors = Some(CONNECTIONS as u64);
    let r = support::run(&opts);
    (r.measured.counters, srv.stop())
}

/// One plaintext record.
fn record(typ: u8, payload: &[u8]) -> Vec<u8> {
    let mut r = vec![typ, 0x03, 0x03];
    r.extend_from_slice(&u16::try_from(payload.len()).unwrap().to_be_bytes());
    r.extend_from_slice(payload);
    r
}

/// What the relay injects, how much filler follows, the alert the load generator must name
/// (if rustls sends one), the error kind it counts, and the server's failure cause.
type Case = (
    &'static str,
    Vec<u8>,
    usize,
    Option<&'static str>,
    FailureKind,
    FailureCause,
);

#[test]
fn alerts_from_a_server_fed_crafted_records_are_counted_by_name_never_as_resets() {
    let ccs = record(0x14, &[1]);
    let cases: [Case; 4] = [
        // Plaintext, where the server already reads under the client's handshake key: the
        // record cannot be opened.
        (
            "zero-length application data",
            record(0x17, &[]),
            TAIL,
            Some("bad_record_mac"),
            FailureKind::TlsAlert,
            FailureCause::DecryptError,
        ),
        (
            "content type 0",
            record(0, &[0]),
            TAIL,
            Some("decode_error"),
            FailureKind::TlsAlert,
            FailureCause::InvalidMessage,
        ),
        (
            "content type 0, padded",
            record(0, &[0; 64]),
            TAIL,
            Some("decode_error"),
            FailureKind::TlsAlert,
            FailureCause::InvalidMessage,
        ),
        // Two ChangeCipherSpec records: rustls drops them, and fails the client's own
        // compatibility CCS (the third) without an alert (docs/rustls-findings.md). The
        // client sees the connection end, cleanly, before its response. No filler: it would
        // be the first thing the server refuses.
        (
            "two ChangeCipherSpec",
            [ccs.clone(), ccs].concat(),
            0,
            None,
            FailureKind::ShortBody,
            FailureCause::PeerMisbehaved,
        ),
    ];
    for (what, inject, tail, alert, kind, cause) in cases {
        let (c, s) = alerts_through(&inject, tail);
        let n = CONNECTIONS as u64;
        assert_eq!(c.errors_of(FailureKind::Reset), 0, "{what}: {c:?}");
        assert_eq!(c.errors_of(kind), n, "{what}: {c:?}");
        assert_eq!(c.errors_total(), n, "{what}: {c:?}");
        let named: Vec<(&str, u64)> = c.alerts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        let expected: Vec<(&str, u64)> = alert.iter().map(|a| (*a, n)).collect();
        assert_eq!(named, expected, "{what}");
        assert_eq!(s.failures_of(cause), n, "{what}: {}", s.summary());
        assert_eq!(s.failures_total(), n, "{what}: {}", s.summary());
        assert_eq!((s.accepted, s.closed), (n, n), "{what}");
    }
}
