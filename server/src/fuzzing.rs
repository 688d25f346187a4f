//! Fuzzing harnesses, shared by the cargo-fuzz targets in `fuzz/` and the stable replay test
//! `tests/fuzz_corpus.rs`, so a corpus file or a crash reproduces the same way in both.
//!
//! - [`http_head`]: [`http::parse_head`] on arbitrary bytes, with the default [`Limits`] and
//!   with small limits taken from the input's last bytes, checked against what the parser
//!   promises (head bounds, routing rules, split consistency); a chunked body after a complete
//!   head also goes through [`ChunkedDecoder`], whole and split.
//! - [`connection`]: one [`Conn`] with a real `rustls::ServerConnection`, driven over an
//!   in-memory [`Transport`], either on raw client bytes (the TLS layer) or, behind a real
//!   in-memory handshake, on plaintext the fuzzer writes through a rustls client (the HTTP layer
//!   of the state machine). The input format is described on [`connection`].
//!
//! Not part of the server's API (hidden from the docs). Here a failed assertion is the product:
//! each one names an invariant the server must keep on any input.

use std::io::{self, Read, Write};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::certs::{self, ChainOptions, KeyType};
use common::chunked::ChunkedDecoder;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

use crate::config::{Resumption, Settings, TlsOptions};
use crate::conn::{Conn, Ctx, Transport, Verdict};
use crate::http::{self, Action, BodyFraming, Head, Limits, ResponseHead, Status};
use crate::stats::Stats;

/// Name of the head parser target (its directory under `fuzz/corpus/`).
pub const HTTP_HEAD: &str = "http_head";
/// Name of the connection target (its directory under `fuzz/corpus/`).
pub const CONNECTION: &str = "connection";

// ---------------------------------------------------------------------------------------------
// http_head

/// Parses `data` as a request head with the default limits and with small ones, and asserts
/// every invariant the parser guarantees. Panics on a violation.
pub fn http_head(data: &[u8]) {
    check_head(data, &Limits::default());
    check_head(data, &small_limits(data));
}

/// Limits small enough for short inputs to reach every limit, taken from the input's last five
/// bytes (so the fuzzer steers them with bytes after the head, which the parser ignores).
fn small_limits(data: &[u8]) -> Limits {
    let from_end = |i: usize| {
        data.len()
            .checked_sub(i + 1)
            .and_then(|j| data.get(j))
            .map_or(0, |&b| usize::from(b))
    };
    Limits {
        max_request_line: from_end(0) * 2,
        max_header_bytes: from_end(1) * 8,
        max_headers: from_end(2) % 131,
        max_body: (from_end(3) * 61) as u64,
        max_bytes: (from_end(4) * 1009) as u64,
    }
}

fn check_head(data: &[u8], limits: &Limits) {
    let outcome = http::parse_head(data, limits);
    // Two cut points: a fixed one and one the input picks.
    let cuts = [data.len() / 2, data.first().map_or(0, |&b| usize::from(b))];
    match outcome {
        Head::Complete(req) => {
            let n = req.head_len;
            assert!(n > 0 && n <= data.len(), "head_len {n} of {}", data.len());
            check_request(&data[..n], limits, &req);
            // Only the head decides: whatever follows it changes nothing...
            assert_eq!(
                http::parse_head(&data[..n], limits),
                outcome,
                "the head alone parses differently"
            );
            // ...and any shorter prefix is a head still arriving, never an error.
            for cut in cuts.into_iter().chain([n - 1]).filter(|&c| c < n) {
                assert_eq!(
                    http::parse_head(&data[..cut], limits),
                    Head::Incomplete,
                    "prefix {cut} of a complete {n}-byte head"
                );
            }
            check_response_head(&req);
            if req.body == BodyFraming::Chunked {
                check_chunked(&data[n..]);
            }
        }
        Head::Incomplete => {
            assert!(
                data.len() < limits.max_header_bytes,
                "incomplete at {} bytes, limit {}",
                data.len(),
                limits.max_header_bytes
            );
            for cut in cuts.into_iter().filter(|&c| c < data.len()) {
                assert_eq!(
                    http::parse_head(&data[..cut], limits),
                    Head::Incomplete,
                    "prefix {cut} of an incomplete head"
                );
            }
        }
        Head::Invalid(status) => {
            assert!(
                matches!(
                    status,
                    Status::BadRequest | Status::UriTooLong | Status::HeaderFieldsTooLarge
                ),
                "Invalid({status:?})"
            );
            // More bytes never repair a head: no prefix of an invalid buffer is complete.
            for cut in cuts.into_iter().filter(|&c| c < data.len()) {
                let prefix = http::parse_head(&data[..cut], limits);
                assert!(
                    !matches!(prefix, Head::Complete(_)),
                    "prefix {cut} of an invalid head is {prefix:?}"
                );
            }
        }
    }
}

/// What a complete head must look like, checked on its bytes independently of the parser.
fn check_request(head: &[u8], limits: &Limits, req: &http::Request) {
    assert!(head.len() <= limits.max_header_bytes, "head over the limit");
    assert!(
        head.ends_with(b"\r\n\r\n"),
        "head does not end with CRLFCRLF"
    );
    assert!(!head.contains(&0), "NUL in an accepted head");
    assert!(
        head.windows(2).all(|w| w[1] != b'\n' || w[0] == b'\r') && head[0] != b'\n',
        "bare LF in an accepted head"
    );
    // Empty lines before the request line are skipped (RFC 9112 section 2.2).
    let mut rest = head;
    while let Some(r) = rest.strip_prefix(b"\r\n") {
        rest = r;
    }
    let line_len = find(rest, b"\r\n").unwrap_or(rest.len());
    let line = &rest[..line_len];
    assert!(
        line_len <= limits.max_request_line,
        "request line of {line_len} bytes, limit {}",
        limits.max_request_line
    );
    let fields = rest
        .windows(2)
        .filter(|w| *w == b"\r\n")
        .count()
        .saturating_sub(2);
    assert!(
        fields <= limits.max_headers.min(127),
        "{fields} header fields, limit {}",
        limits.max_headers
    );
    assert!(
        line.ends_with(b" HTTP/1.1") || line.ends_with(b" HTTP/1.0"),
        "version"
    );
    assert_eq!(req.http10, line.ends_with(b" HTTP/1.0"), "http10");
    assert_eq!(req.head_only, line.starts_with(b"HEAD "), "head_only");
    match req.action {
        Action::Hello | Action::Bytes(_) => assert!(
            line.starts_with(b"GET ") || line.starts_with(b"HEAD "),
            "{:?} on another method",
            req.action
        ),
        Action::Sink => assert!(line.starts_with(b"POST "), "Sink on another method"),
        Action::Error(status) => {
            assert!(
                matches!(
                    status,
                    Status::BadRequest
                        | Status::NotFound
                        | Status::MethodNotAllowed
                        | Status::PayloadTooLarge
                        | Status::NotImplemented
                ),
                "Error({status:?}) from routing"
            );
            assert!(!req.keep_alive, "keep-alive after an error");
        }
    }
    if let Action::Bytes(n) = req.action {
        assert!(n <= limits.max_bytes, "/bytes/{n} over the limit");
    }
    assert_eq!(
        req.allow.is_some(),
        req.action == Action::Error(Status::MethodNotAllowed),
        "Allow exactly on 405"
    );
    match req.body {
        BodyFraming::Length(0) => panic!("Length(0) instead of None"),
        BodyFraming::Length(n) => {
            if matches!(req.action, Action::Hello | Action::Bytes(_)) {
                assert!(n <= limits.max_body, "body of {n} accepted");
            }
        }
        BodyFraming::None | BodyFraming::Chunked => {}
    }
    if req.action == Action::Error(Status::PayloadTooLarge) {
        assert!(
            matches!(req.body, BodyFraming::Length(n) if n > limits.max_body),
            "413 without a body over the limit: {:?}",
            req.body
        );
    }
    if req.expect_continue {
        assert!(
            !req.http10 && req.body != BodyFraming::None,
            "100-continue without a body or on 1.0"
        );
    }
}

/// The answer the connection would write for `req` parses back as that status.
fn check_response_head(req: &http::Request) {
    let status = match req.action {
        Action::Error(s) => s,
        _ => Status::Ok,
    };
    let mut out = Vec::with_capacity(512);
    http::write_head(
        &mut out,
        &ResponseHead {
            status,
            content_type: http::CONTENT_TYPE_TEXT,
            content_length: status.error_body().len() as u64,
            keep_alive: req.keep_alive,
            http10: req.http10,
            allow: req.allow,
            date: DATE,
        },
    );
    let mut headers = [httparse::EMPTY_HEADER; 8];
    let mut resp = httparse::Response::new(&mut headers);
    assert_eq!(
        resp.parse(&out),
        Ok(httparse::Status::Complete(out.len())),
        "response head"
    );
    assert_eq!(resp.code, Some(status.code()));
    let close = resp
        .headers
        .iter()
        .any(|h| h.name == "Connection" && h.value == b"close");
    assert_eq!(
        close, !req.keep_alive,
        "Connection: close iff not kept alive"
    );
}

/// A chunked body decodes the same whole and split at an input-chosen point.
fn check_chunked(body: &[u8]) {
    let whole = ChunkedDecoder::new().feed(body);
    if let Ok(p) = &whole {
        assert!(p.consumed <= body.len());
        assert!(p.data <= p.consumed as u64);
        assert!(
            p.done || p.consumed == body.len(),
            "stopped early, not done"
        );
    }
    let cut = body.first().map_or(0, |&b| usize::from(b)).min(body.len());
    let mut dec = ChunkedDecoder::new();
    let split = dec.feed(&body[..cut]).and_then(|a| {
        if a.done {
            return Ok(a);
        }
        let b = dec.feed(&body[cut..])?;
        Ok(sum_progress(a, b))
    });
    match (&whole, &split) {
        (Ok(w), Ok(s)) => assert_eq!(
            (w.consumed, w.data, w.done),
            (s.consumed, s.data, s.done),
            "split at {cut}"
        ),
        (Err(_), Err(_)) => {}
        _ => panic!("whole {whole:?} vs split at {cut} {split:?}"),
    }
}

fn sum_progress(
    a: common::chunked::ChunkProgress,
    b: common::chunked::ChunkProgress,
) -> common::chunked::ChunkProgress {
    common::chunked::ChunkProgress {
        consumed: a.consumed + b.consumed,
        data: a.data + b.data,
        done: b.done,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// connection

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
/// Handshake flights are few; more rounds than this is a stuck handshake.
const HANDSHAKE_ROUNDS: usize = 16;
/// Rounds of "the socket became writable" after the client's last byte.
const DRAIN_ROUNDS: usize = 8;
/// Server output the transport holds before the client reads it (then writes would block).
const OUT_CAP: usize = 64 * 1024;
/// Server output accepted per run; after it the client stops reading, so `GET /bytes/<1 GiB>`
/// costs a bounded amount (four windows of [`crate::conn::OUT_WINDOW`]) and ends on the send
/// timeout.
const OUT_BUDGET: usize = 256 * 1024;
/// Largest plaintext the client keeps for checking.
const PLAIN_KEEP: usize = 256 * 1024;
/// A fixed Date header value: the output must not depend on the clock.
const DATE: &[u8] = b"Sun, 06 Nov 1994 08:49:37 GMT";
/// The name the generated leaf certificate carries.
const SERVER_NAME: &str = "bank32.com";

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

fn setup<T, E: std::fmt::Display>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("fuzzing fixture: {what}: {e}"),
    }
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let chain = setup(
            certs::generate(KeyType::EcdsaP256, &ChainOptions::default()),
            "generating the chain",
        );
        let pem_certs = |pem: &str| {
            setup(
                CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<Vec<_>, _>>(),
                "parsing PEM certificates",
            )
        };
        let key = setup(
            PrivateKeyDer::from_pem_slice(chain.leaf_key_pem.as_bytes()),
            "parsing the key",
        );
        // Stateless tickets rather than the default session cache as well: a cache would keep
        // one session per run, so no run would free all it allocated, and libFuzzer would
        // answer each with a full leak scan (the cache is rustls's code, not the server's).
        let options = TlsOptions {
            resumption: Resumption::Tickets,
            ..TlsOptions::default()
        };
        let server = setup(
            options.server_config(pem_certs(&chain.chain_pem()), key),
            "server config",
        );
        let mut roots = RootCertStore::empty();
        for c in pem_certs(&chain.root_pem) {
            setup(roots.add(c), "root store");
        }
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

fn new_client(tls12: bool) -> ClientConnection {
    let f = fixture();
    let cfg = if tls12 { &f.tls12 } else { &f.tls13 };
    let name = setup(ServerName::try_from(SERVER_NAME), "server name");
    let mut client = setup(ClientConnection::new(Arc::clone(cfg), name), "client");
    // The harness moves records itself and bounds the volume; rustls must not refuse a write.
    client.set_buffer_limit(None);
    client
}

/// The server's socket, in memory.
struct Memory {
    /// Client bytes not yet read by the server.
    input: Vec<u8>,
    read_pos: usize,
    /// The client closed its side: reads past `input` return 0.
    eof: bool,
    /// Server bytes not yet read by the client.
    output: Vec<u8>,
    /// Largest single write accepted (short writes exercise rustls's partial writes).
    write_max: usize,
    /// Output bytes still accepted in this run.
    budget: usize,
    /// `shutdown_write` was called.
    write_shut: bool,
}

impl Read for Memory {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = &self.input[self.read_pos..];
        if available.is_empty() {
            return if self.eof {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.read_pos += n;
        if self.read_pos == self.input.len() {
            self.input.clear();
            self.read_pos = 0;
        }
        Ok(n)
    }
}

impl Write for Memory {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        assert!(!self.write_shut, "write after shutdown_write");
        if buf.is_empty() {
            return Ok(0);
        }
        let room = OUT_CAP
            .saturating_sub(self.output.len())
            .min(self.budget)
            .min(self.write_max);
        if room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = room.min(buf.len());
        self.output.extend_from_slice(&buf[..n]);
        self.budget -= n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for Memory {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.write_shut = true;
        Ok(())
    }
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
            io: Memory {
                input: Vec::new(),
                read_pos: 0,
                eof: false,
                output: Vec::new(),
                write_max: [usize::MAX, 7, 300, 5000][usize::from(seed & 3)],
                budget: OUT_BUDGET,
                write_shut: false,
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
    fn finish(&mut self, open: bool) -> crate::Snapshot {
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
            self.io.input.extend_from_slice(&rest[..n]);
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

/// A response the server owes, as the request bytes alone decide it (timing cannot change it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expected {
    /// 200 with this body.
    Ok {
        action: Action,
        body_len: u64,
        head_only: bool,
    },
    /// This error, then the connection closes.
    Error { status: Status, head_only: bool },
    /// A head that cannot be framed: 400, 414 or 431 (which one may depend on how the bytes
    /// arrived), then the connection closes.
    Invalid,
}

/// The responses `payload` calls for, in order, as far as its bytes go: a model of the
/// connection built from the parser and the chunked decoder alone.
fn expected_responses(payload: &[u8], limits: &Limits) -> Vec<Expected> {
    let mut out = Vec::new();
    let mut rest = payload;
    while !rest.is_empty() {
        // The connection buffers at most one byte over the head limit before deciding.
        let window = &rest[..rest.len().min(limits.max_header_bytes + 1)];
        let req = match http::parse_head(window, limits) {
            Head::Incomplete => break,
            Head::Invalid(_) => {
                out.push(Expected::Invalid);
                break;
            }
            Head::Complete(req) => req,
        };
        rest = &rest[req.head_len..];
        if let Action::Error(status) = req.action {
            out.push(Expected::Error {
                status,
                head_only: req.head_only,
            });
            break;
        }
        let body_len = match req.body {
            BodyFraming::None => 0,
            BodyFraming::Length(n) => {
                let Some(body) = usize::try_from(n).ok().and_then(|n| rest.get(..n)) else {
                    break;
                };
                rest = &rest[body.len()..];
                n
            }
            BodyFraming::Chunked => match ChunkedDecoder::new().feed(rest) {
                // Over the cap the answer is 413, but whether it comes before a framing error
                // further on depends on how the bytes arrived: stop predicting.
                Ok(p) if req.action != Action::Sink && p.data > limits.max_body => break,
                Ok(p) if p.done => {
                    rest = &rest[p.consumed..];
                    p.data
                }
                // Unfinished, or malformed (the connection closes without an answer).
                _ => break,
            },
        };
        out.push(Expected::Ok {
            action: req.action,
            body_len,
            head_only: req.head_only,
        });
        if !req.keep_alive {
            break;
        }
    }
    out
}

/// Walks the responses the client received against the model; returns how many final
/// (non-1xx) ones it saw. The client may have seen fewer than expected (the run ended first),
/// never others or more.
fn check_responses(plain: &[u8], expected: &[Expected]) -> u64 {
    let mut rest = plain;
    let mut finals = 0;
    for (i, want) in expected.iter().enumerate() {
        // Interim answers (100 Continue) come before their request's final one.
        while let Some(after) = rest.strip_prefix(&b"HTTP/1.1 100 Continue\r\n\r\n"[..]) {
            rest = after;
        }
        if rest.is_empty() {
            return finals;
        }
        let prefix = b"HTTP/1.1 ";
        let n = rest.len().min(prefix.len());
        assert_eq!(
            &rest[..n],
            &prefix[..n],
            "response {i} does not start with HTTP/1.1"
        );
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut resp = httparse::Response::new(&mut headers);
        let head_len = match resp.parse(rest) {
            Ok(httparse::Status::Complete(n)) => n,
            // Cut by the kept-plaintext cap or by the end of the run.
            Ok(httparse::Status::Partial) => return finals,
            Err(e) => panic!("unparsable response head ({e}): {:?}", lossy(rest)),
        };
        assert!(
            rest[9..12].iter().all(u8::is_ascii_digit) && rest[12] == b' ',
            "status code of response {i}"
        );
        let code = resp.code.unwrap_or(0);
        let header = |name: &str| {
            resp.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| h.value)
        };
        let length = header("content-length")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse::<u64>().ok());
        let Some(length) = length else {
            panic!("no Content-Length: {:?}", lossy(&rest[..head_len]));
        };
        let close = header("connection").is_some_and(|v| v == b"close");
        finals += 1;
        rest = &rest[head_len..];
        let (body, head_only): (Option<Vec<u8>>, bool) = match *want {
            Expected::Ok {
                action,
                body_len,
                head_only,
            } => {
                assert_eq!(code, 200, "response {i}: expected 200 for {want:?}");
                let body = match action {
                    Action::Hello => Some(http::HELLO_PAGE.to_vec()),
                    Action::Sink => Some(format!("{body_len}\n").into_bytes()),
                    // Checked against the pattern below instead of being built.
                    _ => None,
                };
                if let Action::Bytes(n) = action {
                    assert_eq!(length, n, "Content-Length of /bytes/{n}");
                }
                (body, head_only)
            }
            Expected::Error { status, head_only } => {
                assert_eq!(code, status.code(), "response {i}: expected {want:?}");
                assert!(close, "error {code} without Connection: close");
                (Some(status.error_body().to_vec()), head_only)
            }
            Expected::Invalid => {
                let status = Status::ALL.iter().find(|s| s.code() == code);
                let Some(status) = status.filter(|s| {
                    matches!(
                        s,
                        Status::BadRequest | Status::UriTooLong | Status::HeaderFieldsTooLarge
                    )
                }) else {
                    panic!("response {i}: {code} for an unframable head");
                };
                assert!(close, "error {code} without Connection: close");
                (Some(status.error_body().to_vec()), false)
            }
        };
        if let Some(body) = &body {
            assert_eq!(length, body.len() as u64, "Content-Length of response {i}");
        }
        // HEAD answers carry the length of the body they leave out (RFC 9110 section 9.3.2).
        let sent = if head_only { 0 } else { length };
        let Some(got) = usize::try_from(sent).ok().and_then(|n| rest.get(..n)) else {
            // The body is still coming (a long /bytes stream cut by the run's end).
            assert!(
                body.as_ref().is_none_or(|b| b.starts_with(rest)),
                "response {i}: wrong body start"
            );
            assert!(
                body.is_some() || common::pattern::matches(0, rest),
                "response {i}: /bytes body off the pattern"
            );
            return finals;
        };
        match &body {
            _ if head_only => {}
            Some(b) => assert!(
                got == &b[..],
                "response {i}: body {:?}, expected {:?}",
                lossy(got),
                lossy(b)
            ),
            None => assert!(
                common::pattern::matches(0, got),
                "response {i}: /bytes body off the pattern"
            ),
        }
        rest = &rest[got.len()..];
        if close {
            break;
        }
    }
    // Everything that came was expected: no answer to a request the model did not see, and
    // nothing after a response that closed the connection.
    while let Some(after) = rest.strip_prefix(&b"HTTP/1.1 100 Continue\r\n\r\n"[..]) {
        rest = after;
    }
    assert!(
        rest.is_empty(),
        "{} unexpected bytes after {finals} responses: {:?}",
        rest.len(),
        lossy(rest)
    );
    finals
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(200)]).into_owned()
}

// ---------------------------------------------------------------------------------------------
// seeds

/// One seed input of a target, written to `fuzz/corpus/<target>/seed-<name>`.
pub struct Seed {
    /// [`HTTP_HEAD`] or [`CONNECTION`].
    pub target: &'static str,
    /// File name suffix.
    pub name: String,
    /// The input.
    pub data: Vec<u8>,
}

/// A connection input: flags, chunk seed, payload.
pub fn connection_input(flags: u8, seed: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 2);
    v.push(flags);
    v.push(seed);
    v.extend_from_slice(payload);
    v
}

/// Request heads (and what follows them) for both targets: the routes, pipelining, bodies,
/// and the error cases of the acceptance tests (`tests/http.rs`).
const HEAD_SEEDS: &[(&str, &[u8])] = &[
    (
        "get",
        b"GET / HTTP/1.1\r\nHost: bank32.com\r\nUser-Agent: t\r\n\r\n",
    ),
    (
        "head-bytes-close",
        b"HEAD /bytes/5 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    ),
    ("head-404", b"HEAD /missing HTTP/1.1\r\nHost: x\r\n\r\n"),
    (
        "http10-keep-alive",
        b"GET /bytes/100 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    ),
    (
        "absolute",
        b"GET HTTPS://example.com:8443/bytes/7?q HTTP/1.1\r\nHost: a\r\n\r\n",
    ),
    (
        "leading-crlf",
        b"\r\n\r\nGET /?x HTTP/1.1\r\nHost: a\r\n\r\n",
    ),
    (
        "sink-length",
        b"POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    ),
    (
        "sink-chunked",
        b"POST /sink HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\
          Expect: 100-continue\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Trailer: yes\r\n\r\n",
    ),
    (
        "pipelined",
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /bytes/3 HTTP/1.1\r\nHost: a\r\n\r\n\
          HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
    ),
    ("partial", b"GET / HTTP/1.1\r\nHo"),
    ("404", b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("405", b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("405-sink", b"GET /sink HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("no-host", b"GET / HTTP/1.1\r\n\r\n"),
    (
        "cl-twice",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
    ),
    (
        "cl-and-te",
        b"POST /sink HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\
          Transfer-Encoding: chunked\r\n\r\n",
    ),
    (
        "413",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n",
    ),
    (
        "bytes-too-many",
        b"GET /bytes/2000000000 HTTP/1.1\r\nHost: x\r\n\r\n",
    ),
    ("bare-lf", b"GET / HTTP/1.1\nHost: x\n\n"),
    (
        "obs-fold",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n  folded\r\n\r\n",
    ),
    ("nul", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: b\0c\r\n\r\n"),
    ("bare-cr", b"GET / HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n"),
    (
        "cl-plus",
        b"POST /sink HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello",
    ),
    (
        "te-gzip",
        b"POST /sink HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    ),
    (
        "te-http10",
        b"POST /sink HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    ),
];

/// Meaningful starting points for both targets: valid and pipelined requests, bodies, the
/// error cases of the acceptance tests, and real ClientHellos for raw mode.
pub fn seeds() -> Vec<Seed> {
    let mut heads: Vec<(&str, Vec<u8>)> = HEAD_SEEDS
        .iter()
        .map(|(name, data)| (*name, data.to_vec()))
        .collect();
    let many: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
    heads.push((
        "431-count",
        format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n").into_bytes(),
    ));

    let mut out: Vec<Seed> = heads
        .iter()
        .map(|(name, data)| Seed {
            target: HTTP_HEAD,
            name: (*name).to_string(),
            data: data.clone(),
        })
        .collect();

    let plain = FLAG_PLAINTEXT;
    let conn = |name: &str, flags: u8, seed: u8, payload: &[u8]| Seed {
        target: CONNECTION,
        name: name.to_string(),
        data: connection_input(flags, seed, payload),
    };
    let end = |e: u8| e << END_SHIFT;
    let cap = |i: u8| i << CAP_SHIFT;
    for (name, data) in &heads {
        out.push(conn(
            &format!("h-{name}"),
            plain | end(END_CLOSE_NOTIFY),
            0,
            data,
        ));
    }
    let pipelined = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n\
        POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc\
        HEAD /bytes/9 HTTP/1.1\r\nHost: a\r\n\r\n\
        GET /bytes/70000 HTTP/1.1\r\nHost: a\r\n\r\n\
        GET /nope HTTP/1.1\r\nHost: a\r\n\r\n";
    out.push(conn("pipelined-13", plain, 0, pipelined));
    out.push(conn("pipelined-12", plain | FLAG_TLS12, 0, pipelined));
    out.push(conn(
        "pipelined-chunks",
        plain | FLAG_SHORT_READS | cap(4),
        7,
        pipelined,
    ));
    out.push(conn(
        "chunked-sink-bytewise",
        plain | cap(1) | end(END_EOF),
        1,
        b"POST /sink HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\
          Expect: 100-continue\r\n\r\n\
          5\r\nhello\r\n10;x=y\r\n0123456789abcdef\r\n0\r\nT: 1\r\n\r\n\
          GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    ));
    out.push(conn(
        "bytes-stream-stalled",
        plain | end(END_NONE),
        2,
        b"GET /bytes/1000000000 HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    ));
    out.push(conn(
        "bytes-stream-shutdown",
        plain | FLAG_TLS12 | end(END_SHUTDOWN),
        3,
        b"GET /bytes/200000 HTTP/1.1\r\nHost: a\r\n\r\n",
    ));
    out.push(conn(
        "body-cut-by-eof",
        plain | end(END_EOF) | cap(3),
        9,
        b"POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nonly some",
    ));
    out.push(conn(
        "idle-keep-alive",
        plain | FLAG_TLS12 | end(END_NONE),
        0,
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    ));
    out.push(conn(
        "shutdown-mid-head",
        plain | end(END_SHUTDOWN),
        0,
        b"GET / HTTP/1.1\r\nHo",
    ));

    for (name, tls12) in [("tls13", false), ("tls12", true)] {
        let mut client = new_client(tls12);
        let mut hello = Vec::new();
        while client.wants_write() {
            if setup(client.write_tls(&mut hello), "ClientHello") == 0 {
                break;
            }
        }
        out.push(conn(&format!("raw-hello-{name}"), end(END_EOF), 0, &hello));
        out.push(conn(
            &format!("raw-hello-{name}-bytewise"),
            FLAG_SHORT_READS | cap(1) | end(END_NONE),
            5,
            &hello,
        ));
        // A fatal alert (handshake_failure) after the hello: the peer gives up.
        let mut alerted = hello.clone();
        alerted.extend_from_slice(&[21, 3, 3, 0, 2, 2, 40]);
        out.push(conn(
            &format!("raw-hello-{name}-alert"),
            cap(6),
            11,
            &alerted,
        ));
    }
    out.push(conn(
        "raw-plain-http",
        end(END_EOF),
        0,
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    ));
    out.push(conn(
        "raw-sslv2",
        end(END_SHUTDOWN),
        0,
        b"\x80\x2e\x01\x00\x02\x00\x15\x00\x00\x00\x10\x07\x00\xc0\x05\x00\x80\x03\x00\x80",
    ));
    out
}
