//! [`ClientConn`] driven in memory against the server's own connection state machine
//! (`server::conn::Conn`), each on its end of an in-memory socket: no socket, no thread,
//! every byte and counter exact.

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::certs::KeyType;
use common::memory::Memory;
use common::session::{Plain, Session};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConnection, ServerConfig};
use server::conn::{Conn as ServerConn, Ctx, Verdict};
use server::http::HELLO_PAGE;
use server::stats::{Stats, WorkerStats};

use super::*;
use crate::stats::{EarlyDataCounts, LoadCounters};
use crate::tlsconf::WorkerTls;
use crate::verify::{Trust, testutil};
use crate::{LoadOptions, ResumeMode, Target, tlsconf};

/// One certificate chain, the server's config for it and a client trusting it.
struct Setup {
    server_config: Arc<ServerConfig>,
    plan: Plan,
    tls: WorkerTls,
}

/// `url` against an in-memory server: keep-alive, TLS 1.2 and 1.3, tickets when `resume`.
fn setup(url: &str, resume: bool, tweak: impl FnOnce(&mut LoadOptions)) -> Setup {
    let chain = testutil::chain(KeyType::EcdsaP256);
    let key = PrivateKeyDer::from_pem_slice(chain.leaf_key_pem.as_bytes()).unwrap();
    let server_config = server::TlsOptions::default()
        .server_config(testutil::pem_certs(&chain.chain_pem()), key)
        .unwrap();
    // Never dialled: the connection runs on memory.
    let target = Target::new(url, None, Some("127.0.0.1:9")).unwrap();
    let mut opts = LoadOptions::new(target, Trust::Platform);
    if resume {
        opts.tls.resume = ResumeMode::Ticket;
    }
    tweak(&mut opts);
    let tls = tlsconf::worker_tls(&opts.tls, Some(&testutil::roots(&[&chain]))).unwrap();
    Setup {
        server_config,
        plan: Plan::new(&opts),
        tls,
    }
}

fn op(now: Instant) -> Op {
    Op {
        intended: now,
        started: now,
        measured: true,
    }
}

/// A client connection and the server's, each on its end of an in-memory socket; what one
/// side writes reaches the other's input after each drive, its FIN the other's EOF.
struct Pair<C, S> {
    client: ClientConn<C>,
    server: ServerConn<S>,
    server_open: bool,
    /// The client's end: its input is what the server sent.
    client_io: Memory,
    /// The server's end: its input is what the client sent.
    server_io: Memory,
    stats: Stats,
    wstats: Arc<WorkerStats>,
    settings: server::Settings,
    scratch: Vec<u8>,
    m: Measured,
}

impl<C: ClientSession, S: Session> Pair<C, S> {
    fn new(client: ClientConn<C>, server: ServerConn<S>) -> Pair<C, S> {
        let stats = Stats::new(1);
        let wstats = stats.worker(0).unwrap();
        Pair {
            client,
            server,
            server_open: true,
            client_io: Memory::default(),
            server_io: Memory::default(),
            stats,
            wstats,
            settings: server::Settings::default(),
            scratch: Vec::new(),
            m: Measured::default(),
        }
    }

    fn drive_client(&mut self, plan: &Plan) -> Result<Outcome, Fail> {
        self.drive_client_after(plan, Wake::ANY)
    }

    fn drive_client_after(&mut self, plan: &Plan, wake: Wake) -> Result<Outcome, Fail> {
        let outcome =
            self.client
                .on_ready(&mut self.client_io, wake, plan, &mut self.m, Instant::now);
        self.client_io.carry_to(&mut self.server_io);
        outcome
    }

    fn drive_server(&mut self) {
        if !self.server_open {
            return;
        }
        let mut ctx = Ctx {
            stats: &self.wstats,
            settings: &self.settings,
            date: b"Tue, 01 Dec 2026 00:00:00 GMT",
            now: Instant::now(),
            scratch: &mut self.scratch,
        };
        self.server_open =
            self.server.on_ready(&mut self.server_io, &mut ctx, false) == Verdict::Open;
        self.server_io.carry_to(&mut self.client_io);
    }

    /// The client's counters, once its bytes on the wire are checked against the server's
    /// (what one side wrote the other read, or it is still on the wire) and cleared, so the
    /// rest can be compared exactly.
    fn counters_wire_checked(&self) -> LoadCounters {
        let s = self.stats.snapshot();
        let c = &self.m.counters;
        // Still on the wire: written by one end and not yet read by the other.
        let to_server = (self.client_io.output.len() + self.server_io.input.len()) as u64;
        let to_client = (self.server_io.output.len() + self.client_io.input.len()) as u64;
        assert_eq!(
            s.tls_bytes[0] + to_server,
            c.tls_bytes_out,
            "client to server"
        );
        assert_eq!(
            s.tls_bytes[1],
            c.tls_bytes_in + to_client,
            "server to client"
        );
        assert_eq!(
            s.handshake_bytes,
            [c.handshake_bytes_out, c.handshake_bytes_in],
            "handshake bytes: the server's (in, out) vs the client's (out, in)"
        );
        LoadCounters {
            tls_bytes_in: 0,
            tls_bytes_out: 0,
            handshake_bytes_in: 0,
            handshake_bytes_out: 0,
            ..c.clone()
        }
    }

    /// Drives both sides in turn until the client's operation ends (bounded).
    fn exchange(&mut self, plan: &Plan) -> Result<Outcome, Fail> {
        for _ in 0..50 {
            let outcome = self.drive_client(plan)?;
            if outcome != Outcome::Pending {
                return Ok(outcome);
            }
            self.drive_server();
        }
        panic!("the operation did not end in 50 rounds");
    }
}

/// A TLS client connection opened as the worker opens one: offering a saved session when
/// the store has one for the name.
fn tls_pair(s: &Setup) -> Pair<ClientConnection, rustls::ServerConnection> {
    if let Some(store) = &s.tls.store {
        store.set_offer(true);
    }
    let tls = ClientConnection::open(&s.plan, &s.tls).unwrap();
    let offered = s.tls.store.as_ref().is_some_and(|st| st.take_offered());
    let client = ClientConn::connecting(tls, offered, op(Instant::now()), &s.plan);
    let server_tls = rustls::ServerConnection::new(Arc::clone(&s.server_config)).unwrap();
    Pair::new(client, ServerConn::new(server_tls, Instant::now()))
}

fn plain_pair(s: &Setup) -> Pair<Plain, Plain> {
    let client = ClientConn::connecting(Plain::new(), false, op(Instant::now()), &s.plan);
    Pair::new(client, ServerConn::plain(Instant::now()))
}

/// An outcome without the instant it carries (read from the clock).
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    Pending,
    Keep,
    Close,
    IdleClosed,
}

fn ended(r: Result<Outcome, Fail>) -> Result<Ended, Fail> {
    r.map(|o| match o {
        Outcome::Pending => Ended::Pending,
        Outcome::DoneKeep(_) => Ended::Keep,
        Outcome::DoneClose(_) => Ended::Close,
        Outcome::IdleClosed => Ended::IdleClosed,
    })
}

const HELLO: u64 = HELLO_PAGE.len() as u64;

#[test]
fn a_full_handshake_then_one_request_and_its_response() {
    let s = setup("https://bank32.com/", false, |_| {});
    let mut p = tls_pair(&s);
    assert_eq!(ended(p.exchange(&s.plan)), Ok(Ended::Keep));
    assert_eq!(
        p.counters_wire_checked(),
        LoadCounters {
            full: 1,
            tls13: 1,
            requests: 1,
            body_bytes_in: HELLO,
            ..LoadCounters::default()
        }
    );
    let timed = [&p.m.connect, &p.m.handshake, &p.m.ttfb].map(|h| h.len());
    assert_eq!(timed, [1, 1, 1], "connect, handshake, time to first byte");
    let server = p.stats.snapshot();
    assert_eq!(server.handshakes_of("1.3", "full"), 1);
    assert_eq!(server.requests_total(), 1);
    // The connection waits for the next operation, with no deadline of its own.
    p.client.op_done(true);
    assert!(p.client.is_idle());
    assert_eq!(p.client.deadline(&s.plan), None);
    // Nothing from the server: still idle, not closed.
    assert_eq!(ended(p.drive_client(&s.plan)), Ok(Ended::Pending));
}

#[test]
fn a_second_connection_resumes_with_the_first_ones_ticket() {
    let s = setup("https://bank32.com/", true, |_| {});
    let mut first = tls_pair(&s);
    assert_eq!(ended(first.exchange(&s.plan)), Ok(Ended::Keep));
    assert_eq!(
        (first.m.counters.full, first.m.counters.offered),
        (1, 0),
        "nothing to offer yet"
    );
    let mut second = tls_pair(&s);
    assert_eq!(ended(second.exchange(&s.plan)), Ok(Ended::Keep));
    assert_eq!(
        second.counters_wire_checked(),
        LoadCounters {
            resumed: 1,
            offered: 1,
            offered_resumed: 1,
            tls13: 1,
            requests: 1,
            body_bytes_in: HELLO,
            ..LoadCounters::default()
        }
    );
    assert_eq!(second.stats.snapshot().handshakes_of("1.3", "resumed"), 1);
}

#[test]
fn keep_alive_serves_n_requests_and_closes_after_the_last() {
    const N: u64 = 5;
    let s = setup("https://bank32.com/", false, |o| {
        o.requests_per_conn = Some(N)
    });
    let mut p = tls_pair(&s);
    for i in 1..=N {
        let expected = if i < N { Ended::Keep } else { Ended::Close };
        assert_eq!(ended(p.exchange(&s.plan)), Ok(expected), "request {i}");
        p.client.op_done(i < N);
        if i < N {
            p.client.next_op(op(Instant::now()), &s.plan);
        }
    }
    assert_eq!(
        p.counters_wire_checked(),
        LoadCounters {
            full: 1,
            tls13: 1,
            requests: N,
            body_bytes_in: N * HELLO,
            ..LoadCounters::default()
        }
    );
    assert_eq!(p.m.ttfb.len(), N);
    assert_eq!(p.m.handshake.len(), 1);
    // The last request said `Connection: close`: the server half-closed after answering it.
    p.drive_server();
    assert!(p.client_io.eof, "no FIN after the last request");
    assert_eq!(p.stats.snapshot().requests_total(), N);
}

/// An event that reports input and not the peer's close, as the worker passes it.
const READABLE: Wake = Wake::Event {
    readable: true,
    trust_short_reads: true,
};

#[test]
fn a_keep_alive_request_costs_one_read_once_a_short_read_found_the_socket_empty() {
    let s = setup("https://bank32.com/", false, |_| {});
    let mut p = tls_pair(&s);
    let mut outcome = Outcome::Pending;
    for _ in 0..50 {
        outcome = p.drive_client_after(&s.plan, READABLE).unwrap();
        if outcome != Outcome::Pending {
            break;
        }
        p.drive_server();
    }
    assert_eq!(ended(Ok(outcome)), Ok(Ended::Keep));
    p.client.op_done(true);
    for i in 2..=4 {
        p.client.next_op(op(Instant::now()), &s.plan);
        let reads = p.client_io.reads;
        // The request goes out; the socket was found empty, so no read says WouldBlock.
        assert_eq!(
            ended(p.drive_client_after(&s.plan, Wake::Started)),
            Ok(Ended::Pending)
        );
        assert_eq!(
            p.client_io.reads, reads,
            "request {i}: a read before the response"
        );
        assert!(!p.server_io.input.is_empty(), "request {i} not sent");
        p.drive_server();
        // Its response is one short read.
        assert_eq!(
            ended(p.drive_client_after(&s.plan, READABLE)),
            Ok(Ended::Keep)
        );
        assert_eq!(p.client_io.reads, reads + 1, "request {i}");
        p.client.op_done(true);
    }
    assert_eq!(p.m.counters.requests, 4);
    // A report of writability alone reads nothing either.
    let reads = p.client_io.reads;
    let writable = Wake::Event {
        readable: false,
        trust_short_reads: true,
    };
    assert_eq!(
        ended(p.drive_client_after(&s.plan, writable)),
        Ok(Ended::Pending)
    );
    assert_eq!(p.client_io.reads, reads);
}

#[test]
fn a_short_read_on_a_report_of_the_peers_close_is_not_trusted() {
    let s = setup("https://bank32.com/", false, |_| {});
    let mut p = tls_pair(&s);
    assert_eq!(ended(p.exchange(&s.plan)), Ok(Ended::Keep));
    p.client.op_done(true);
    p.client.next_op(op(Instant::now()), &s.plan);
    p.drive_client_after(&s.plan, Wake::Started).unwrap();
    p.drive_server();
    // The response's read came on an event that also reported the peer's close: what is
    // after it (the FIN) is reported by no further event.
    let closing = Wake::Event {
        readable: true,
        trust_short_reads: false,
    };
    assert_eq!(
        ended(p.drive_client_after(&s.plan, closing)),
        Ok(Ended::Keep)
    );
    p.client.op_done(true);
    p.client_io.eof = true;
    // So the next drive reads again, and finds the close.
    let reads = p.client_io.reads;
    assert_eq!(
        ended(p.drive_client_after(&s.plan, Wake::Started)),
        Ok(Ended::IdleClosed)
    );
    assert_eq!(p.client_io.reads, reads + 1);
}

#[test]
fn a_response_split_at_every_byte_is_read_the_same() {
    let s = setup("http://bank32.com/", false, |_| {});
    // The response's length on the wire, from one unsplit exchange.
    let mut whole = plain_pair(&s);
    assert_eq!(ended(whole.drive_client(&s.plan)), Ok(Ended::Pending));
    assert_eq!(
        whole.server_io.input.iter().copied().collect::<Vec<u8>>(),
        s.plan.request,
        "the request head, byte for byte"
    );
    whole.drive_server();
    let len = whole.client_io.input.len();
    assert!(len > HELLO_PAGE.len(), "{len}");
    for split in 0..len {
        let mut p = plain_pair(&s);
        p.client_io.read_budget = Some(split);
        assert_eq!(ended(p.drive_client(&s.plan)), Ok(Ended::Pending));
        p.drive_server();
        assert_eq!(
            ended(p.drive_client(&s.plan)),
            Ok(Ended::Pending),
            "split at {split}"
        );
        p.client_io.read_budget = None;
        assert_eq!(
            ended(p.drive_client(&s.plan)),
            Ok(Ended::Keep),
            "split at {split}"
        );
        assert_eq!(
            p.counters_wire_checked(),
            LoadCounters {
                requests: 1,
                body_bytes_in: HELLO,
                ..LoadCounters::default()
            },
            "split at {split}"
        );
        assert_eq!(p.m.ttfb.len(), 1, "split at {split}");
    }
}

#[test]
fn a_handshake_the_server_never_answers_times_out_at_the_deadline() {
    let s = setup("https://bank32.com/", false, |o| {
        o.timeout = Duration::from_secs(3);
    });
    let mut p = tls_pair(&s);
    let started = p.client.op().started;
    // The ClientHello goes out; the server is never driven.
    assert_eq!(ended(p.drive_client(&s.plan)), Ok(Ended::Pending));
    assert!(!p.server_io.input.is_empty());
    let deadline = started + Duration::from_secs(3);
    assert_eq!(p.client.deadline(&s.plan), Some(deadline));
    assert_eq!(
        p.client
            .expired(deadline - Duration::from_millis(1), &s.plan),
        None
    );
    assert_eq!(
        p.client.expired(deadline, &s.plan),
        Some(FailureKind::Timeout)
    );
    let hello = (p.client_io.output.len() + p.server_io.input.len()) as u64;
    assert_eq!(
        p.m.counters,
        LoadCounters {
            tls_bytes_out: hello,
            ..LoadCounters::default()
        },
        "the ClientHello is on the wire, no handshake is counted"
    );
    assert_eq!(p.m.handshake.len(), 0);
    assert_eq!(p.m.handshake_bytes_out.len(), 0);
}

#[test]
fn a_server_that_closes_mid_response_costs_a_short_body() {
    let s = setup("http://bank32.com/", false, |_| {});
    let mut p = plain_pair(&s);
    assert_eq!(ended(p.drive_client(&s.plan)), Ok(Ended::Pending));
    p.drive_server();
    let received = {
        let w = &mut p.client_io;
        let head = w.input.len() - HELLO_PAGE.len();
        w.input.truncate(head + 100);
        w.eof = true;
        head + 100
    };
    assert_eq!(
        p.drive_client(&s.plan),
        Err(Fail(FailureKind::ShortBody, None))
    );
    assert_eq!(
        p.m.counters,
        LoadCounters {
            body_bytes_in: 100,
            tls_bytes_in: received as u64,
            tls_bytes_out: s.plan.request.len() as u64,
            ..LoadCounters::default()
        }
    );

    // Over TLS, cut inside the response's records: the same failure.
    let s = setup("https://bank32.com/", false, |_| {});
    let mut p = tls_pair(&s);
    for _ in 0..10 {
        if p.client.is_responding() {
            break;
        }
        assert_eq!(ended(p.drive_client(&s.plan)), Ok(Ended::Pending));
        p.drive_server();
    }
    {
        let w = &mut p.client_io;
        assert!(!w.input.is_empty(), "no response in flight");
        let half = w.input.len() / 2;
        w.input.truncate(half);
        w.eof = true;
    }
    assert_eq!(
        p.drive_client(&s.plan),
        Err(Fail(FailureKind::ShortBody, None))
    );
    assert_eq!(p.m.counters.requests, 0);
    assert_eq!(p.m.counters.full, 1);
}

/// A generator sending early data and a server (stateful, 16 KiB of early data) whose
/// second config is `second`'s tweak of the first, sharing its session cache: the ticket of a
/// first connection then resumes a second one on the tweaked server.
fn early_pairs(
    second: impl FnOnce(&mut ServerConfig),
) -> (Setup, Pair<ClientConnection, rustls::ServerConnection>) {
    let chain = testutil::chain(KeyType::EcdsaP256);
    let key = PrivateKeyDer::from_pem_slice(chain.leaf_key_pem.as_bytes()).unwrap();
    let opts = server::TlsOptions {
        resumption: server::Resumption::Stateful,
        early_data: 16384,
        ..server::TlsOptions::default()
    };
    let first_config = opts
        .server_config(testutil::pem_certs(&chain.chain_pem()), key)
        .unwrap();
    let target = Target::new("https://bank32.com/", None, Some("127.0.0.1:9")).unwrap();
    let mut lo = LoadOptions::new(target, Trust::Platform);
    lo.tls.resume = ResumeMode::Ticket;
    lo.tls.early_data = true;
    let tls = tlsconf::worker_tls(&lo.tls, Some(&testutil::roots(&[&chain]))).unwrap();
    let mut s = Setup {
        server_config: first_config,
        plan: Plan::new(&lo),
        tls,
    };
    let mut first = tls_pair(&s);
    first.settings.early_data = true;
    assert_eq!(ended(first.exchange(&s.plan)), Ok(Ended::Keep));
    assert_eq!(
        first.m.counters.early_data,
        Default::default(),
        "no ticket yet"
    );
    let mut cfg = (*s.server_config).clone();
    second(&mut cfg);
    s.server_config = Arc::new(cfg);
    let mut p = tls_pair(&s);
    // As `Server::start` sets it from a config with early data.
    p.settings.early_data = true;
    (s, p)
}

#[test]
fn an_early_request_accepted_is_answered_and_timed_as_0rtt() {
    let (s, mut p) = early_pairs(|_| {});
    assert_eq!(ended(p.exchange(&s.plan)), Ok(Ended::Keep));
    let c = p.counters_wire_checked();
    assert_eq!((c.resumed, c.requests), (1, 1));
    assert_eq!(
        c.early_data,
        EarlyDataCounts {
            offered: 1,
            accepted: 1,
            rejected: 0
        }
    );
    assert_eq!((p.m.ttfb_0rtt.len(), p.m.ttfb.len()), (1, 0));
    assert_eq!(p.stats.snapshot().early_data, [1, 1, 0]);
}

#[test]
fn an_early_request_rejected_goes_again_after_the_handshake() {
    // The server no longer takes early data: rustls rejects it, and only the request sent
    // again after the handshake can be answered.
    let (s, mut p) = early_pairs(|cfg| cfg.max_early_data_size = 0);
    assert_eq!(ended(p.exchange(&s.plan)), Ok(Ended::Keep));
    let c = p.counters_wire_checked();
    assert_eq!((c.resumed, c.requests), (1, 1));
    assert_eq!(
        c.early_data,
        EarlyDataCounts {
            offered: 1,
            accepted: 0,
            rejected: 1
        }
    );
    assert_eq!((p.m.ttfb_0rtt.len(), p.m.ttfb.len()), (0, 1));
    let server = p.stats.snapshot();
    assert_eq!(server.early_data, [1, 0, 1]);
    assert_eq!(server.requests_total(), 1);
}
