//! Seed inputs for both targets: the routes, pipelining, bodies, the error cases of the
//! acceptance tests, and real ClientHellos for the connection target's raw mode.

use crate::connection::{
    CAP_SHIFT, END_CLOSE_NOTIFY, END_EOF, END_NONE, END_SHIFT, END_SHUTDOWN, FLAG_PLAINTEXT,
    FLAG_SHORT_READS, FLAG_TLS12, new_client,
};
use crate::fixture::setup;
use crate::{CONNECTION, HTTP_HEAD};

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
    out.extend(crate::client::seeds());
    out
}
