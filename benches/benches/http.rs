//! The server's per-request overhead outside TLS (criterion group `http`): parsing a request
//! head, encoding the hello answer into the reused buffer, decoding a chunked upload.
//!
//! IDs: `parse/hello`, `encode/hello`, `chunked/decode-64KiB`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use common::chunked::ChunkedDecoder;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use server::http::{self, Action, DateCache, Head, Limits, ResponseHead, Status};

/// A browser-like `GET /` (Firefox's header set, trimmed of cookies): 10 fields, ~400 bytes,
/// so the parser walks as many fields as it does for real clients, not just `Host`.
const BROWSER_GET: &[u8] = b"GET / HTTP/1.1\r\n\
Host: bank32.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Connection: keep-alive\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-Site: none\r\n\
\r\n";

/// The chunked body size of `chunked/decode-64KiB`.
const CHUNKED_DATA: usize = 64 * 1024;

/// A 64 KiB body in 4 KiB chunks with extension-free size lines, as curl sends uploads.
fn chunked_body() -> Vec<u8> {
    let mut body = Vec::with_capacity(CHUNKED_DATA + 200);
    for _ in 0..CHUNKED_DATA / 4096 {
        body.extend_from_slice(b"1000\r\n");
        body.extend(std::iter::repeat_n(b'x', 4096));
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    body
}

fn bench_http(c: &mut Criterion) {
    let limits = Limits::default();
    // The bench must measure the hello route, not an error path: check once before timing.
    match http::parse_head(BROWSER_GET, &limits) {
        Head::Complete(req) => {
            assert_eq!(req.action, Action::Hello);
            assert_eq!(req.head_len, BROWSER_GET.len());
        }
        other => panic!("the browser GET does not parse: {other:?}"),
    }

    let mut group = c.benchmark_group("http");
    group.bench_function("parse/hello", |b| {
        b.iter(|| http::parse_head(black_box(BROWSER_GET), &limits));
    });

    // As the connection's `send`: clear the reused scratch buffer, write the head, append the
    // page. The date comes from the per-second cache, so formatting it is not per request.
    let date = DateCache::new();
    let mut scratch = Vec::with_capacity(4096);
    group.bench_function("encode/hello", |b| {
        b.iter(|| {
            scratch.clear();
            let head = ResponseHead {
                status: Status::Ok,
                content_type: http::CONTENT_TYPE_HTML,
                content_length: http::HELLO_PAGE.len() as u64,
                keep_alive: true,
                http10: false,
                allow: None,
                date: date.get(),
            };
            http::write_head(&mut scratch, black_box(&head));
            scratch.extend_from_slice(http::HELLO_PAGE);
            black_box(scratch.len())
        });
    });

    let body = chunked_body();
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("chunked/decode-64KiB", |b| {
        b.iter(|| {
            let mut decoder = ChunkedDecoder::new();
            let progress = decoder.feed(black_box(&body)).unwrap();
            assert!(progress.done);
            progress.data
        });
    });
    group.finish();
}

criterion_group! {
    name = http;
    config = benches::criterion();
    targets = bench_http
}
criterion_main!(http);
