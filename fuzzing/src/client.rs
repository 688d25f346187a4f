//! The `client` target: the load generator's side. The cargo-fuzz target
//! `fuzz/fuzz_targets/client.rs` and the stable replay test `fuzzing/tests/fuzz_corpus.rs` both
//! call [`client`], so a corpus file or a crash reproduces the same way in both.
//!
//! [`client`] checks two things on each input: the response parser ([`ResponseReader`]) on the
//! payload, whole and split at input-chosen points, against what it promises; and one
//! [`ClientConn`] that completed a real in-memory handshake with a rustls server, which then
//! sends the payload as the response's plaintext. The connection must come to exactly what
//! the parser says about the same bytes: the same status, keep-alive and body count, a
//! `bad_response` where the parser refuses, a `short_body` where the close cuts it short.
//! The input format is described on [`client`]. A failed assertion is the product here: each
//! names an invariant the client must keep on any input.

use std::io::Write;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use common::memory::Memory;
use common::session::Session;
use rustls::server::NoServerSessionStorage;
use rustls::{ClientConnection, ServerConfig, ServerConnection};

use loadgen::conn::{ClientConn, ClientSession, Fail, Op, Outcome, Wake};
use loadgen::plan::Plan;
use loadgen::response::{Response, ResponseError, ResponseReader};
use loadgen::stats::{FailureKind, Measured};
use loadgen::tlsconf::{self, WorkerTls};
use loadgen::verify::Trust;
use loadgen::{LoadOptions, Target};

use crate::fixture::{self, HANDSHAKE_ROUNDS, SERVER_NAME, setup};
use crate::seeds::Seed;

/// Input byte 0, bit 0: the request is `HEAD` (the response has no body whatever it says).
pub const FLAG_HEAD: u8 = 1;
/// Input byte 0, bit 1: the client offers only TLS 1.2 (else only TLS 1.3).
pub const FLAG_TLS12: u8 = 1 << 1;
/// Input byte 0, bits 2-3: how the server's side ends after the payload ([`END_NONE`],
/// [`END_EOF`], [`END_CLOSE_NOTIFY`], [`END_BOTH`]).
pub const END_SHIFT: u32 = 2;
/// The server goes quiet: the response may still be pending.
pub const END_NONE: u8 = 0;
/// The server closes TCP without close_notify.
pub const END_EOF: u8 = 1;
/// The server sends close_notify and keeps TCP open.
pub const END_CLOSE_NOTIFY: u8 = 2;
/// The server sends close_notify, then closes TCP.
pub const END_BOTH: u8 = 3;
/// Input byte 0, bits 4-7: index into the piece sizes the payload is sent in.
pub const PIECE_SHIFT: u32 = 4;
/// Largest piece of plaintext the server sends at once, by index; 0 means all at once.
pub const PIECES: [usize; 16] = [
    0, 1, 2, 3, 5, 7, 11, 16, 31, 64, 100, 256, 512, 1000, 4096, 16384,
];

/// At most this many pieces; the rest of the payload goes in one last piece.
const MAX_PIECES: usize = 4096;

/// Checks the response parser and a connection on `data`. Panics on a violation.
///
/// Format: byte 0 holds the flags ([`FLAG_HEAD`], [`FLAG_TLS12`], the end at [`END_SHIFT`],
/// the piece size at [`PIECE_SHIFT`]); the rest is the payload, the server's plaintext after
/// the request. Every loop is bounded.
pub fn client(data: &[u8]) {
    let (flags, payload) = match data {
        [f, rest @ ..] => (*f, rest),
        [] => (0, &[][..]),
    };
    let head_request = flags & FLAG_HEAD != 0;
    let expected = parser(head_request, payload, flags);
    connection(flags, payload, &expected);
}

/// What the parser makes of a whole payload (and, at the end, of the close).
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    /// A response completed within the payload.
    Done(Response),
    /// The parser refused the payload.
    Refused(ResponseError),
    /// The payload ended inside a response: what EOF makes of it.
    Open(Result<Response, ResponseError>),
}

/// Feeds `payload` to a fresh reader in `cut`-sized pieces (0: whole) and returns its verdict
/// with the bytes consumed, checking each step's promises.
fn read(head_request: bool, payload: &[u8], cut: usize) -> (Parsed, usize) {
    let mut reader = ResponseReader::new();
    reader.start(head_request);
    let mut at = 0;
    let mut body_bytes = 0u64;
    let mut budget = payload.len() + 2;
    while budget > 0 {
        budget -= 1;
        let end = if cut == 0 {
            payload.len()
        } else {
            (at + cut).min(payload.len())
        };
        let piece = &payload[at..end];
        let step = match reader.feed(piece) {
            Ok(step) => step,
            Err(e) => return (Parsed::Refused(e), at),
        };
        assert!(step.consumed <= piece.len(), "consumed past the input");
        assert!(
            step.body.end <= step.consumed,
            "body range past what was consumed"
        );
        assert!(
            step.body.len() as u64 <= step.body_bytes,
            "body range larger than the body bytes"
        );
        at += step.consumed;
        body_bytes += step.body_bytes;
        if let Some(resp) = step.done {
            assert_eq!(
                resp.body_len, body_bytes,
                "body_len is not the sum of the steps"
            );
            if head_request || matches!(resp.status, 204 | 304) {
                assert_eq!(resp.body_len, 0, "a body where none can be");
            }
            assert!(
                !(100..200).contains(&resp.status),
                "an interim status ended a response"
            );
            // Ended: nothing more is taken until the next start.
            assert_eq!(reader.feed(&payload[at..]).map(|s| s.consumed), Ok(0));
            return (Parsed::Done(resp), at);
        }
        if step.consumed < piece.len() {
            panic!("stopped inside a piece without ending or refusing");
        }
        if at == payload.len() {
            break;
        }
    }
    assert_eq!(at, payload.len(), "pieces left unread");
    let eof = reader.finish_on_eof();
    if let Ok(resp) = &eof {
        assert!(
            !resp.keep_alive,
            "a response delimited by the close kept alive"
        );
        assert_eq!(resp.body_len, body_bytes);
    }
    (Parsed::Open(eof), at)
}

/// The parser's verdict on `payload`, the same whole, split at an input-chosen point and
/// byte by byte (short inputs).
fn parser(head_request: bool, payload: &[u8], flags: u8) -> Parsed {
    let (whole, consumed) = read(head_request, payload, 0);
    let mut cuts = vec![PIECES[usize::from(flags >> PIECE_SHIFT)]];
    if payload.len() <= 512 {
        cuts.push(1);
    }
    for cut in cuts.into_iter().filter(|&c| c > 0) {
        let (split, at) = read(head_request, payload, cut);
        match (&whole, &split) {
            // A refusal may come at a different byte, never a different verdict.
            (Parsed::Refused(_), Parsed::Refused(_)) => {}
            _ => {
                assert_eq!(split, whole, "pieces of {cut} read differently");
                assert_eq!(at, consumed, "pieces of {cut} consumed differently");
            }
        }
    }
    whole
}

/// The server config and the two workers' client TLS (trusting the generated chain), made
/// once per process: generating a chain or building a config per run would dwarf the run.
struct Fixture {
    server: Arc<ServerConfig>,
    tls13: WorkerTls,
    tls12: WorkerTls,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let chain = fixture::chain();
        let versions = [common::tls::Version::Tls12, common::tls::Version::Tls13];
        let server = setup(
            ServerConfig::builder_with_provider(common::tls::provider(&[], &[]))
                .with_protocol_versions(&common::tls::rustls_versions(&versions)),
            "server versions",
        )
        .with_no_client_auth();
        let mut server = setup(
            server.with_single_cert(chain.certs, chain.key),
            "server certificate",
        );
        // No resumption: a session cache would keep one session per run, so no run would
        // free all it allocated (libFuzzer's leak check); the client does not resume here.
        server.session_storage = Arc::new(NoServerSessionStorage {});
        server.send_tls13_tickets = 0;
        let roots = Arc::new(chain.roots);
        let client = |version| {
            let mut opts = options(false);
            opts.tls.versions = vec![version];
            setup(tlsconf::worker_tls(&opts.tls, Some(&roots)), "client TLS")
        };
        Fixture {
            server: Arc::new(server),
            tls13: client(common::tls::Version::Tls13),
            tls12: client(common::tls::Version::Tls12),
        }
    })
}

/// The load options of one run: `GET /` or `HEAD /` on a keep-alive connection.
fn options(head_request: bool) -> LoadOptions {
    // Never dialled: the connection runs on memory.
    let target = setup(
        Target::new(
            &format!("https://{SERVER_NAME}/"),
            None,
            Some("127.0.0.1:9"),
        ),
        "target",
    );
    let mut opts = LoadOptions::new(target, Trust::Platform);
    if head_request {
        opts.method = "HEAD".into();
    }
    opts
}

/// Moves what `server` has to send into the client's input.
fn server_writes(server: &mut ServerConnection, io: &mut Memory) {
    let mut out = Vec::new();
    while server.wants_write() {
        setup(server.write_tls(&mut out), "server write_tls into memory");
    }
    io.input.extend(out);
}

/// Completes a handshake between `client` and `server`; the client sends its request in the
/// same pass and then waits for the response.
fn handshake(
    client: &mut ClientConn<ClientConnection>,
    server: &mut ServerConnection,
    io: &mut Memory,
    plan: &Plan,
    m: &mut Measured,
) {
    for _ in 0..HANDSHAKE_ROUNDS {
        let outcome = client.on_ready(io, Wake::ANY, plan, m, Instant::now);
        assert!(
            matches!(outcome, Ok(Outcome::Pending)),
            "the handshake ended in {outcome:?}"
        );
        if !io.output.is_empty() {
            let mut from_client = &io.output[..];
            while !from_client.is_empty() {
                setup(server.read_tls(&mut from_client), "server read_tls");
            }
            io.output.clear();
            setup(server.process_new_packets(), "server handshake");
        }
        server_writes(server, io);
        if !server.is_handshaking() && client.is_responding() {
            return;
        }
    }
    panic!("the handshake did not complete in {HANDSHAKE_ROUNDS} rounds");
}

/// Runs one connection on `payload` and checks it against the parser's verdict.
fn connection(flags: u8, payload: &[u8], expected: &Parsed) {
    let fixture = fixture();
    let tls = if flags & FLAG_TLS12 != 0 {
        &fixture.tls12
    } else {
        &fixture.tls13
    };
    let plan = Plan::new(&options(flags & FLAG_HEAD != 0));
    let session = setup(
        ClientConnection::open(&plan, tls).map_err(|Fail(kind, why)| format!("{kind:?} {why:?}")),
        "client session",
    );
    let now = Instant::now();
    let op = Op {
        intended: now,
        started: now,
        measured: true,
    };
    let mut client = ClientConn::connecting(session, false, op, &plan);
    let mut server = setup(
        ServerConnection::new(Arc::clone(&fixture.server)),
        "server session",
    );
    server.set_buffer_limit(None);
    let mut io = Memory::default();
    let mut m = Measured::default();
    handshake(&mut client, &mut server, &mut io, &plan, &mut m);
    assert_eq!(m.counters.handshakes(), 1, "{:?}", m.counters);

    let piece = match PIECES[usize::from(flags >> PIECE_SHIFT)] {
        0 => payload.len().max(1),
        n => n.max(payload.len().div_ceil(MAX_PIECES)),
    };
    let mut outcome = Ok(Outcome::Pending);
    for chunk in payload.chunks(piece) {
        setup(server.writer().write_all(chunk), "server plaintext");
        server_writes(&mut server, &mut io);
        outcome = client.on_ready(&mut io, Wake::ANY, &plan, &mut m, Instant::now);
        if !matches!(outcome, Ok(Outcome::Pending)) {
            break;
        }
    }
    let end = (flags >> END_SHIFT) & 3;
    if matches!(outcome, Ok(Outcome::Pending)) && end != END_NONE {
        if end == END_CLOSE_NOTIFY || end == END_BOTH {
            server.send_close_notify();
            server_writes(&mut server, &mut io);
        }
        io.eof = end == END_EOF || end == END_BOTH;
        outcome = client.on_ready(&mut io, Wake::ANY, &plan, &mut m, Instant::now);
    }
    check_outcome(outcome, end, expected, &m);
}

/// The connection's outcome and counters agree with the parser's verdict.
fn check_outcome(outcome: Result<Outcome, Fail>, end: u8, expected: &Parsed, m: &Measured) {
    let k = &m.counters;
    let counted = |resp: &Response| {
        let two_xx = (200..300).contains(&resp.status);
        assert_eq!(
            k.requests,
            u64::from(two_xx),
            "requests for {}",
            resp.status
        );
        assert_eq!(
            k.errors_of(FailureKind::HttpStatus),
            u64::from(!two_xx),
            "http_status errors for {}",
            resp.status
        );
        assert_eq!(k.body_bytes_in, resp.body_len, "body bytes");
        assert_eq!(m.ttfb.len(), 1, "time to first byte");
    };
    match (expected, &outcome) {
        (Parsed::Done(resp), Ok(Outcome::DoneKeep(_))) if resp.keep_alive => counted(resp),
        (Parsed::Done(resp), Ok(Outcome::DoneClose(_))) if !resp.keep_alive => counted(resp),
        (Parsed::Refused(_), Err(Fail(FailureKind::BadResponse, None))) => {
            assert_eq!(k.requests, 0);
        }
        (Parsed::Open(_), Ok(Outcome::Pending)) if end == END_NONE => {
            assert_eq!(k.requests, 0);
        }
        (Parsed::Open(Ok(resp)), Ok(Outcome::DoneClose(_))) if end != END_NONE => counted(resp),
        (Parsed::Open(Err(_)), Err(Fail(FailureKind::ShortBody, None))) if end != END_NONE => {
            assert_eq!(k.requests, 0);
        }
        _ => panic!("the parser says {expected:?} (end {end}), the connection {outcome:?}"),
    }
}

/// The seed inputs of the client target: the shapes of response the generator must read, each
/// with the flags that send it in pieces and end it in different ways.
pub fn seeds() -> Vec<Seed> {
    let piece = |i: u8| i << PIECE_SHIFT;
    let end = |e: u8| e << END_SHIFT;
    let seed = |name: &'static str, flags: u8, payload: &[u8]| Seed {
        target: crate::CLIENT,
        name: name.to_owned(),
        data: [&[flags][..], payload].concat(),
    };
    vec![
        seed(
            "content-length",
            0,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world",
        ),
        seed(
            "content-length-bytewise-tls12",
            FLAG_TLS12 | piece(1),
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        ),
        seed(
            "chunked-with-trailer",
            piece(4),
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n",
        ),
        seed(
            "continue-then-ok",
            piece(2),
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ),
        seed(
            "not-found-close",
            0,
            b"HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 9\r\n\r\nnot found",
        ),
        seed(
            "http10-until-close",
            end(END_BOTH) | piece(3),
            b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the close",
        ),
        seed(
            "short-body-eof",
            end(END_EOF),
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part",
        ),
        seed(
            "short-head-close-notify",
            end(END_CLOSE_NOTIFY),
            b"HTTP/1.1 200 OK\r\nContent-Len",
        ),
        seed(
            "head-request-no-body",
            FLAG_HEAD,
            b"HTTP/1.1 200 OK\r\nContent-Length: 228\r\n\r\n",
        ),
        seed("no-content", piece(5), b"HTTP/1.1 204 No Content\r\n\r\n"),
        seed(
            "malformed-status",
            0,
            b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
        ),
        seed(
            "conflicting-lengths",
            piece(6),
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
        ),
        seed(
            "bad-chunk-size",
            0,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ),
        seed("pending-half-head", 0, b"HTTP/1.1 200 OK\r\n"),
        seed("empty-then-eof", end(END_EOF), b""),
    ]
}

#[cfg(test)]
mod tests {
    use std::panic;

    use super::*;

    const OK: Response = Response {
        status: 200,
        keep_alive: true,
        body_len: 3,
    };

    fn counted(requests: u64, body: u64) -> Measured {
        let mut m = Measured::default();
        m.counters.requests = requests;
        m.counters.body_bytes_in = body;
        loadgen::stats::record(&mut m.ttfb, std::time::Duration::from_micros(5));
        m
    }

    /// The oracle passes an agreeing connection and fails each kind of disagreement: a
    /// harness that accepted anything would prove nothing.
    #[test]
    fn the_oracle_fails_a_connection_that_disagrees_with_the_parser() {
        let now = Instant::now();
        let done = Parsed::Done(OK);
        check_outcome(Ok(Outcome::DoneKeep(now)), END_NONE, &done, &counted(1, 3));
        let disagreements: [(Result<Outcome, Fail>, u8, &Parsed, Measured); 5] = [
            (Ok(Outcome::DoneClose(now)), END_NONE, &done, counted(1, 3)),
            (Ok(Outcome::DoneKeep(now)), END_NONE, &done, counted(1, 2)),
            (Ok(Outcome::DoneKeep(now)), END_NONE, &done, counted(0, 3)),
            (
                Err(Fail(FailureKind::ShortBody, None)),
                END_NONE,
                &done,
                counted(0, 0),
            ),
            (
                Ok(Outcome::Pending),
                END_EOF,
                &Parsed::Open(Ok(OK)),
                counted(0, 0),
            ),
        ];
        for (i, (outcome, end, expected, m)) in disagreements.into_iter().enumerate() {
            let caught = panic::catch_unwind(panic::AssertUnwindSafe(|| {
                check_outcome(outcome, end, expected, &m)
            }));
            assert!(caught.is_err(), "disagreement {i} passed");
        }
    }

    /// Each seed reaches the verdict it is named for, so the corpus covers what it claims.
    #[test]
    fn seeds_reach_their_verdicts() {
        let verdict = |name: &str| {
            let seed = seeds().into_iter().find(|s| s.name == name).map(|s| s.data);
            let Some(data) = seed else {
                panic!("no seed {name}");
            };
            parser(data[0] & FLAG_HEAD != 0, &data[1..], data[0])
        };
        assert!(
            matches!(verdict("content-length"), Parsed::Done(r) if r.status == 200 && r.body_len == 11)
        );
        assert!(
            matches!(verdict("not-found-close"), Parsed::Done(r) if r.status == 404 && !r.keep_alive)
        );
        assert!(matches!(verdict("malformed-status"), Parsed::Refused(_)));
        assert!(matches!(
            verdict("short-body-eof"),
            Parsed::Open(Err(ResponseError::ShortBody { .. }))
        ));
        assert!(matches!(verdict("http10-until-close"), Parsed::Open(Ok(r)) if r.body_len == 15));
    }
}
