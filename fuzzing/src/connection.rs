//! The `connection` target: one server connection (`server::conn::Conn`, TLS + HTTP) driven
//! over an in-memory transport, on raw client TLS bytes or on plaintext a real rustls client
//! sends after a real handshake. The input format is on [`connection`].

use std::io::{self, Read, Write};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::memory::Memory;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};
use server::conn::{Conn, Ctx, Verdict};
use server::{Resumption, Settings, Stats, TlsOptions};

use crate::DATE;
use crate::fixture::{self, HANDSHAKE_ROUNDS, SERVER_NAME, setup};
use crate::responses::{check_responses, expected_responses};

/// Input byte 0, bit 0: the payload is plaintext HTTP sent through a real client after a real
/// handshake (set), or raw bytes of the client's TLS stream (clear).
pub const FLAG_PLAINTEXT: u8 = 1;
/// Input byte 0, bit 1: with [`FLAG_PLAINTEXT`], the client speaks TLS 1.2 (else TLS 1.3).
pub const FLAG_TLS12: u8 = 1 << 1;
/// Input byte 0, bit 2: `trust_short_reads` as the worker passes it.
pub const FLAG_SHORT_READS: u8 = 1 << 2;
/// Input byte 0, bits 3-4: how the client's side ends ([`END_EOF`], [`END_CLOSE_NOTIFY`],
/// [`END_NONE`], [`END_SHUTDOWN`]).
pub const END_SHIFT: u32 = 3;
/// The client closes TCP (reads return 0).
pub const END_EOF: u8 = 0;
/// The client sends close_notify (raw mode: as [`END_EOF`]).
pub const END_CLOSE_NOTIFY: u8 = 1;
/// The client goes quiet; the connection's deadline fires.
pub const END_NONE: u8 = 2;
/// The server shuts down gracefully, then the deadline fires.
pub const END_SHUTDOWN: u8 = 3;
/// Input byte 0, bits 5-7: index into the largest chunk size (see [`CHUNK_CAPS`]).
pub const CAP_SHIFT: u32 = 5;
/// Largest chunk the payload is cut into, by index; 0 means all at once.
pub const CHUNK_CAPS: [usize; 8] = [0, 1, 2, 5, 16, 64, 512, 4096];

/// At most this many chunks; the rest of the payload goes in one last chunk.
const MAX_CHUNKS: usize = 2048;
/// Rounds of "the socket became writable" after the client's last byte.
const DRAIN_ROUNDS: usize = 8;
/// Server output the transport holds before the client reads it (then writes would block).
const OUT_CAP: usize = 64 * 1024;
/// Server output accepted per run; after it the client stops reading, so `GET /bytes/<1 GiB>`
/// costs a bounded amount (four windows of [`server::conn::OUT_WINDOW`]) and ends on the send
/// timeout.
const OUT_BUDGET: usize = 256 * 1024;
/// Largest plaintext the client keeps for checking.
const PLAIN_KEEP: usize = 256 * 1024;

/// Drives one [`Conn`] with `data`, asserting that it never misbehaves. Panics on a violation.
///
/// Format: byte 0 holds the flags (`FLAG_*`, the end mode at [`END_SHIFT`], the chunk cap at
/// [`CAP_SHIFT`]), byte 1 seeds the chunk sizes and the transport's largest write, the rest is
/// the payload. Raw mode feeds the payload as the client's TLS bytes; plaintext mode completes
/// a real handshake first and sends the payload as application data, so the fuzzer reaches
/// HTTP parsing, bodies, pipelining and streaming. Every loop is bounded.
pub fn connection(data: &[u8]) {
    let (flags, seed, payload) = match data {
        [f, s, rest @ ..] => (*f, *s, rest),
        [f] => (*f, 0, &[][..]),
        [] => (0, 0, &[][..]),
    };
    let mut run = Run::new(flags, seed);
    if flags & FLAG_PLAINTEXT != 0 {
        run.plaintext(flags, payload);
    } else {
        run.raw(payload);
    }
}

/// The server config and the two client configs (trusting the generated chain), made once
/// per process: generating a chain or building a config per run would dwarf the run itself.
struct Fixture {
    server: Arc<ServerConfig>,
    tls13: Arc<ClientConfig>,
    tls12: Arc<ClientConfig>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let chain = fixture::chain();
        // Stateless tickets rather than the default session cache as well: a cache would keep
        // one session per run, so no run would free all it allocated, and libFuzzer would
        // answer each with a full leak scan (the cache is rustls's code, not the server's).
        let options = TlsOptions {
            resumption: Resumption::Tickets,
            ..TlsOptions::default()
        };
        let server = setup(
            options.server_config(chain.certs, chain.key),
            "server config",
        );
        let roots = chain.roots;
        let client = |version: &'static rustls::SupportedProtocolVersion| {
            let mut cfg = setup(
                ClientConfig::builder_with_provider(common::tls::provider(&[], &[]))
                    .with_protocol_versions(&[version]),
                "client versions",
            )
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
            // Every run is a full handshake, so a run does not depend on the ones before it.
            cfg.resumption = rustls::client::Resumption::disabled();
            cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
            Arc::new(cfg)
        };
        Fixture {
            server,
            tls13: client(&rustls::version::TLS13),
            tls12: client(&rustls::version::TLS12),
        }
    })
}

pub(crate) fn new_client(tls12: bool) -> ClientConnection {
    let f = fixture();
    let cfg = if tls12 { &f.tls12 } else { &f.tls13 };
    let name = setup(ServerName::try_from(SERVER_NAME), "server name");
    let mut client = setup(ClientConnection::new(Arc::clone(cfg), name), "client");
    // The harness moves records itself and bounds the volume; rustls must not refuse a write.
    client.set_buffer_limit(None);
    client
}

/// Chunk sizes from a seed (xorshift), so the payload itself stays free of control bytes.
struct Chunker {
    state: u32,
    cap: usize,
    count: usize,
}

impl Chunker {
    fn next_len(&mut self, left: usize) -> usize {
        self.count += 1;
        if self.cap == 0 || self.count >= MAX_CHUNKS {
            return left;
        }
        self.state ^= self.state << 13;
        self.state ^= self.state >> 17;
        self.state ^= self.state << 5;
        (1 + self.state as usize % self.cap).min(left)
    }
}

/// One connection's run: the transport, the counters and the clock.
struct Run {
    conn: Conn,
    io: Memory,
    stats: Stats,
    settings: Settings,
    scratch: Vec<u8>,
    start: Instant,
    /// Events so far (each advances the clock by a millisecond).
    events: u32,
    trust_short_reads: bool,
    end: u8,
    chunks: Chunker,
}

impl Run {
    fn new(flags: u8, seed: u8) -> Run {
        let start = Instant::now();
        let tls = setup(
            ServerConnection::new(Arc::clone(&fixture().server)),
            "server connection",
        );
        Run {
            conn: Conn::new(tls, start),
            // The server's socket: a send buffer of OUT_CAP, short writes, a volume bound.
            io: Memory {
                output_cap: Some(OUT_CAP),
                write_budget: Some(OUT_BUDGET),
                write_max: [None, Some(7), Some(300), Some(5000)][usize::from(seed & 3)],
                ..Memory::default()
            },
            stats: Stats::new(1),
            settings: Settings::default(),
            scratch: Vec::with_capacity(512),
            start,
            events: 0,
            trust_short_reads: flags & FLAG_SHORT_READS != 0,
            end: (flags >> END_SHIFT) & 3,
            chunks: Chunker {
                state: u32::from(seed) | 0x9e37_7900,
                cap: CHUNK_CAPS[usize::from(flags >> CAP_SHIFT)],
                count: 0,
            },
        }
    }

    /// One readiness event: `on_ready`, `on_timeout` or `begin_shutdown`.
    fn event(&mut self, what: Event) -> Verdict {
        let Some(wstats) = self.stats.worker(0) else {
            panic!("worker stats");
        };
        self.events += 1;
        let mut ctx = Ctx {
            stats: &wstats,
            settings: &self.settings,
            date: DATE,
            now: self.start + Duration::from_millis(u64::from(self.events)),
            scratch: &mut self.scratch,
        };
        match what {
            Event::Ready => self
                .conn
                .on_ready(&mut self.io, &mut ctx, self.trust_short_reads),
            Event::Timeout => self.conn.on_timeout(&mut self.io, &mut ctx),
            Event::Shutdown => self.conn.begin_shutdown(&mut self.io, &mut ctx),
        }
    }

    /// The connection's end: counted exactly once as a handshake or a failed one.
    fn finish(&mut self, open: bool) -> server::Snapshot {
        if open {
            let (when, _) = self.conn.deadline(&self.settings);
            assert!(when >= self.start, "deadline before the accept");
            assert_eq!(
                self.event(Event::Timeout),
                Verdict::Close,
                "on_timeout must close"
            );
        }
        let snap = self.stats.snapshot();
        assert_eq!(
            snap.handshakes_total() + snap.failures_total(),
            1,
            "one connection, one handshake outcome"
        );
        snap
    }

    /// Raw mode: the payload is the client's TLS stream.
    fn raw(&mut self, payload: &[u8]) {
        let mut records = RecordCheck::default();
        let mut open = true;
        let mut rest = payload;
        while open && !rest.is_empty() {
            let n = self.chunks.next_len(rest.len());
            self.io.input.extend(&rest[..n]);
            rest = &rest[n..];
            open = self.event(Event::Ready) == Verdict::Open;
            records.take(&mut self.io.output);
        }
        if open {
            open = self.end_client(None);
            for _ in 0..DRAIN_ROUNDS {
                if !open {
                    break;
                }
                open = self.event(Event::Ready) == Verdict::Open;
                records.take(&mut self.io.output);
            }
        }
        records.take(&mut self.io.output);
        let snap = self.finish(open);
        assert_eq!(snap.requests_total(), 0, "a response without a handshake");
    }

    /// How the client's side ends; returns whether the connection is still open.
    fn end_client(&mut self, client: Option<&mut ClientConnection>) -> bool {
        match self.end {
            END_CLOSE_NOTIFY if client.is_some() => {
                if let Some(c) = client {
                    c.send_close_notify();
                    self.client_to_server(c);
                }
                self.event(Event::Ready) == Verdict::Open
            }
            END_EOF | END_CLOSE_NOTIFY => {
                self.io.eof = true;
                self.event(Event::Ready) == Verdict::Open
            }
            END_SHUTDOWN => self.event(Event::Shutdown) == Verdict::Open,
            _ => true,
        }
    }

    fn client_to_server(&mut self, client: &mut ClientConnection) {
        while client.wants_write() {
            if setup(client.write_tls(&mut self.io.input), "client write_tls") == 0 {
                break;
            }
        }
    }

    /// Plaintext mode: a real handshake, then the payload as application data.
    fn plaintext(&mut self, flags: u8, payload: &[u8]) {
        let mut client = new_client(flags & FLAG_TLS12 != 0);
        let mut reader = ClientSide::default();
        for round in 0.. {
            assert!(round < HANDSHAKE_ROUNDS, "handshake did not complete");
            self.client_to_server(&mut client);
            assert_eq!(self.event(Event::Ready), Verdict::Open, "handshake refused");
            reader.take(&mut client, &mut self.io.output);
            if !client.is_handshaking()
                && !client.wants_write()
                && self.stats.snapshot().handshakes_total() == 1
            {
                break;
            }
        }

        let mut open = true;
        let mut rest = payload;
        while open && !rest.is_empty() {
            let n = self.chunks.next_len(rest.len());
            // The client may already have seen close_notify; it can still send (half-close).
            let written = setup(client.writer().write(&rest[..n]), "client write");
            assert_eq!(written, n, "client refused plaintext");
            rest = &rest[n..];
            self.client_to_server(&mut client);
            open = self.event(Event::Ready) == Verdict::Open;
            reader.take(&mut client, &mut self.io.output);
        }
        if open {
            open = self.end_client(Some(&mut client));
            reader.take(&mut client, &mut self.io.output);
            for _ in 0..DRAIN_ROUNDS {
                if !open {
                    break;
                }
                open = self.event(Event::Ready) == Verdict::Open;
                reader.take(&mut client, &mut self.io.output);
            }
        }
        let snap = self.finish(open);
        reader.take(&mut client, &mut self.io.output);
        assert_eq!(snap.handshakes_total(), 1, "handshake not counted");
        let expected = expected_responses(payload, &self.settings.limits);
        let answered = check_responses(&reader.plain, &expected);
        assert!(
            answered <= snap.requests_total(),
            "client read {answered} responses, server counted {}",
            snap.requests_total()
        );
    }
}

#[derive(Clone, Copy)]
enum Event {
    Ready,
    Timeout,
    Shutdown,
}

/// Checks the record framing of everything the server writes in raw mode (no client can
/// decrypt it there, but the framing must always be sound).
#[derive(Default)]
struct RecordCheck {
    pending: Vec<u8>,
}

impl RecordCheck {
    fn take(&mut self, output: &mut Vec<u8>) {
        self.pending.append(output);
        let mut rest = &self.pending[..];
        while let &[typ, major, minor, hi, lo, ..] = rest {
            assert!((20..=23).contains(&typ), "record type {typ}");
            assert!(major == 3 && minor <= 4, "record version {major}.{minor}");
            let len = usize::from(u16::from_be_bytes([hi, lo]));
            assert!(len <= 16384 + 2048, "record of {len} bytes");
            if rest.len() < 5 + len {
                break;
            }
            rest = &rest[5 + len..];
        }
        let used = self.pending.len() - rest.len();
        self.pending.drain(..used);
    }
}

/// The client's receiving side: decrypts what the server wrote and keeps the plaintext.
#[derive(Default)]
struct ClientSide {
    plain: Vec<u8>,
    closed: bool,
}

impl ClientSide {
    fn take(&mut self, client: &mut ClientConnection, output: &mut Vec<u8>) {
        let mut rest = &output[..];
        // Each pass consumes bytes or ends, and the output holds at most OUT_CAP bytes.
        for _ in 0..=OUT_CAP {
            if rest.is_empty() {
                break;
            }
            let n = setup(client.read_tls(&mut rest), "client read_tls");
            if let Err(e) = client.process_new_packets() {
                panic!("the server sent TLS its client rejects: {e}");
            }
            self.read_plain(client);
            if n == 0 {
                break;
            }
        }
        assert!(rest.is_empty(), "client left server bytes unread");
        output.clear();
    }

    fn read_plain(&mut self, client: &mut ClientConnection) {
        let mut buf = [0u8; 16 * 1024];
        for _ in 0..64 {
            match client.reader().read(&mut buf) {
                Ok(0) => {
                    self.closed = true;
                    return;
                }
                Ok(n) => {
                    assert!(!self.closed, "data after close_notify");
                    let keep = n.min(PLAIN_KEEP.saturating_sub(self.plain.len()));
                    self.plain.extend_from_slice(&buf[..keep]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => panic!("client read: {e}"),
            }
        }
    }
}
