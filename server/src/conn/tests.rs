//! Unit tests of the connection state machine on an in-memory socket: how TLS failures are
//! answered (alerts written when the socket allows, half-close, linger) and bounded by the
//! send timeout.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::config::TlsOptions;
use crate::stats::Stats;
use common::certs::{self, ChainOptions, KeyType};
use common::memory::Memory;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use std::time::Duration;

/// What a worker lends a connection for one event, owned by the test: fresh counters, the
/// default settings, a scratch buffer and the time the test starts at.
struct Rig {
    stats: Stats,
    worker: Arc<WorkerStats>,
    settings: Settings,
    start: Instant,
    scratch: Vec<u8>,
}

impl Rig {
    fn new() -> Rig {
        let stats = Stats::new(1);
        let worker = stats.worker(0).unwrap();
        Rig {
            stats,
            worker,
            settings: Settings::default(),
            start: Instant::now(),
            scratch: Vec::new(),
        }
    }

    /// The context of an event at the start time, and the counters to read back.
    fn ctx(&mut self) -> (Ctx<'_>, &Stats) {
        let ctx = Ctx {
            stats: &self.worker,
            settings: &self.settings,
            date: b"",
            now: self.start,
            scratch: &mut self.scratch,
        };
        (ctx, &self.stats)
    }
}

/// A socket in memory holding `input` for the connection to read, whose writes block until
/// the test lifts its `output_cap`.
fn socket(input: &[u8]) -> Memory {
    Memory {
        output_cap: Some(0),
        ..Memory::reading(input)
    }
}

fn server_connection() -> ServerConnection {
    server_connection_with(&TlsOptions::default())
}

fn server_connection_with(opts: &TlsOptions) -> ServerConnection {
    let c = certs::generate(KeyType::EcdsaP256, &ChainOptions::default()).unwrap();
    let chain = CertificateDer::pem_slice_iter(c.chain_pem().as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(c.leaf_key_pem.as_bytes()).unwrap();
    let cfg = opts.server_config(chain, key).unwrap();
    ServerConnection::new(Arc::clone(&cfg)).unwrap()
}

/// A server that only does secp384r1: rustls's client offers a key share for another
/// group first, so its ClientHello gets a HelloRetryRequest, and the server then waits
/// for a second ClientHello in plaintext.
fn hrr_server_connection() -> ServerConnection {
    let opts = TlsOptions {
        groups: common::tls::parse_groups(&["secp384r1".into()]).unwrap(),
        ..TlsOptions::default()
    };
    server_connection_with(&opts)
}

/// The records of rustls's first ClientHello, as its client would send them.
fn client_hello_records() -> Vec<u8> {
    // An explicit provider: with ring built in too, rustls has no process default to pick.
    let cfg = rustls::ClientConfig::builder_with_provider(common::tls::provider(&[], &[]))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("bank32.com").unwrap();
    let mut client = rustls::ClientConnection::new(Arc::new(cfg), name).unwrap();
    let mut out = Vec::new();
    client.write_tls(&mut out).unwrap();
    out
}

/// The first two bytes of a ClientHello in one record, then an empty application-data
/// record: a record interleaved with a split handshake message (RFC 8446 §5.1).
const INTERLEAVED: [u8; 12] = [
    0x16, 0x03, 0x01, 0x00, 0x02, 0x01, 0x00, // handshake, 2 bytes of a ClientHello
    0x17, 0x03, 0x03, 0x00, 0x00, // application data, empty
];

/// What RFC 8446 asks for there, in plaintext: rustls queues no alert for it.
const UNEXPECTED_MESSAGE_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x0a];

/// Record types of the HelloRetryRequest flight: the HRR (handshake), then the
/// compatibility ChangeCipherSpec.
const HRR_FLIGHT: [u8; 2] = [0x16, 0x14];

fn record_types(mut bytes: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    while bytes.len() >= 5 {
        let len = usize::from(u16::from_be_bytes([bytes[3], bytes[4]]));
        types.push(bytes[0]);
        bytes = &bytes[(5 + len).min(bytes.len())..];
    }
    types
}

/// Plain HTTP on the TLS port: rustls queues a decode_error alert (a plaintext record).
const DECODE_ERROR_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32];

/// The connection waits only to write (its alert), until the send timeout after `since`.
fn assert_waits_to_send(conn: &Conn, settings: &Settings, since: Instant) {
    assert_eq!(
        conn.wants(),
        Wants {
            read: false,
            write: true
        }
    );
    assert_eq!(
        conn.deadline(settings),
        (since + settings.send_timeout, TimeoutKind::Send)
    );
}

/// The connection waits only to read (a lingering close draining the peer).
fn assert_reads_only(conn: &Conn) {
    assert_eq!(
        conn.wants(),
        Wants {
            read: true,
            write: false
        }
    );
}

#[test]
fn a_tls_failure_waits_for_writable_to_send_its_alert_then_half_closes_and_lingers() {
    let mut rig = Rig::new();
    let (mut ctx, stats) = rig.ctx();
    let (settings, start) = (ctx.settings, ctx.now);
    let mut conn = Conn::new(server_connection(), start);
    let mut sock = socket(b"GET / HTTP/1.1\r\nHost: bank32.com\r\n\r\n");

    // The socket is full: the connection stays, waiting only to write, on the send
    // timeout; the failure is counted already.
    assert_eq!(conn.on_ready(&mut sock, &mut ctx, true), Verdict::Open);
    assert_waits_to_send(&conn, settings, start);
    assert!(sock.output.is_empty() && !sock.write_shut);
    assert_eq!(
        stats.snapshot().failures_of(FailureCause::InvalidMessage),
        1
    );

    // Writable: the alert goes out whole, then the FIN; the connection lingers, reading.
    sock.output_cap = None;
    let later = start + Duration::from_millis(10);
    ctx.now = later;
    assert_eq!(conn.on_ready(&mut sock, &mut ctx, true), Verdict::Open);
    assert_eq!(sock.output, DECODE_ERROR_ALERT);
    assert!(sock.write_shut);
    assert_reads_only(&conn);
    assert_eq!(
        conn.deadline(settings),
        (later + settings.linger_timeout, TimeoutKind::Linger)
    );

    // The client's bytes are drained; its FIN ends the connection.
    sock.input = vec![0x17; 100_000].into();
    sock.eof = true;
    assert_eq!(conn.on_ready(&mut sock, &mut ctx, true), Verdict::Close);
    assert!(sock.input.is_empty());
    let s = stats.snapshot();
    assert_eq!(s.failures_total(), 1);
    assert_eq!(s.timeouts_of(TimeoutKind::Send), 0);
}

#[test]
fn a_record_interleaved_with_a_split_client_hello_gets_unexpected_message_in_plaintext() {
    let mut rig = Rig::new();
    let (mut ctx, stats) = rig.ctx();
    let (settings, start) = (ctx.settings, ctx.now);
    let mut conn = Conn::new(server_connection(), start);
    let mut sock = socket(&INTERLEAVED);

    // Our alert waits for writable like one rustls queued, bounded by the send timeout.
    assert_eq!(conn.on_ready(&mut sock, &mut ctx, true), Verdict::Open);
    assert_waits_to_send(&conn, settings, start);
    assert_eq!(
        stats.snapshot().failures_of(FailureCause::PeerMisbehaved),
        1
    );

    sock.output_cap = None;
    assert_eq!(conn.on_ready(&mut sock, &mut ctx, true), Verdict::Open);
    assert_eq!(sock.output, UNEXPECTED_MESSAGE_ALERT);
    assert!(sock.write_shut);
    assert_reads_only(&conn);
    sock.eof = true;
    assert_eq!(conn.on_ready(&mut sock, &mut ctx, true), Verdict::Close);
    assert_eq!(stats.snapshot().failures_total(), 1);
}

#[test]
fn once_rustls_has_spoken_the_server_adds_no_alert_of_its_own() {
    let mut rig = Rig::new();
    let (mut ctx, stats) = rig.ctx();
    let start = ctx.now;
    // After a HelloRetryRequest the interleaved record splits the second ClientHello.
    let mut rest = INTERLEAVED.to_vec();
    rest[2] = 0x03;

    // Queued, not yet written: the hello and the interleaved record in one read.
    let mut conn = Conn::new(hrr_server_connection(), start);
    let mut input = client_hello_records();
    input.extend_from_slice(&rest);
    let mut sock = socket(&input);
    assert_eq!(conn.on_ready(&mut sock, &mut ctx, true), Verdict::Open);
    sock.output_cap = None;
    assert_eq!(conn.on_ready(&mut sock, &mut ctx, true), Verdict::Open);
    assert!(sock.write_shut);
    assert_eq!(record_types(&sock.output), HRR_FLIGHT, "no alert after it");

    // Written: the HelloRetryRequest went out before the interleaved record came in.
    let mut conn = Conn::new(hrr_server_connection(), start);
    let mut sock = Memory::reading(&client_hello_records());
    assert_eq!(conn.on_ready(&mut sock, &mut ctx, true), Verdict::Open);
    let hrr = sock.output.len();
    assert_eq!(record_types(&sock.output), HRR_FLIGHT);
    sock.input = rest.into();
    assert_eq!(conn.on_ready(&mut sock, &mut ctx, true), Verdict::Open);
    assert!(sock.write_shut);
    assert_eq!(sock.output.len(), hrr, "nothing after the HRR");

    assert_eq!(
        stats.snapshot().failures_of(FailureCause::PeerMisbehaved),
        2
    );
}

#[test]
fn an_alert_that_cannot_be_written_is_cut_at_the_send_timeout() {
    let mut rig = Rig::new();
    let (mut ctx, stats) = rig.ctx();
    let (settings, start) = (ctx.settings, ctx.now);
    let mut conn = Conn::new(server_connection(), start);
    let mut sock = socket(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(conn.on_ready(&mut sock, &mut ctx, true), Verdict::Open);
    ctx.now = start + settings.send_timeout;
    assert_eq!(conn.on_timeout(&mut sock, &mut ctx), Verdict::Close);
    let s = stats.snapshot();
    assert_eq!(s.timeouts_of(TimeoutKind::Send), 1);
    assert_eq!(s.failures_of(FailureCause::InvalidMessage), 1);
    assert_eq!(s.failures_total(), 1, "the timeout is not a second failure");
}

#[test]
fn a_complete_response_still_flushing_at_shutdown_closes_once_it_is_out() {
    // The response is answered whole into the session, but the socket takes nothing yet:
    // the connection is idle (its response done, keep-alive promised) with output pending
    // when shutdown begins.
    let mut rig = Rig::new();
    let mut conn = Conn::plain(rig.start);
    let mut io = socket(b"GET /bytes/1000 HTTP/1.1\r\nHost: bank32.com\r\n\r\n");
    let (mut ctx, _) = rig.ctx();
    assert_eq!(conn.on_ready(&mut io, &mut ctx, false), Verdict::Open);
    assert!(io.output.is_empty() && conn.wants().write);
    assert_eq!(conn.begin_shutdown(&mut io, &mut ctx), Verdict::Open);
    // The socket drains: the response goes out and the connection half-closes at once,
    // without waiting for a next request through the shutdown grace.
    io.output_cap = None;
    conn.on_ready(&mut io, &mut ctx, false);
    let out = String::from_utf8_lossy(&io.output).into_owned();
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(
        io.write_shut,
        "no FIN after the last response of a stopping server"
    );
}
