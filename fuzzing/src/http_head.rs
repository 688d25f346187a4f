//! The `http_head` target: the request head parser and router on arbitrary bytes, with the
//! default limits and with small ones the input chooses, checked against every promise the
//! parser makes.

use common::chunked::ChunkedDecoder;
use server::http::{self, Action, BodyFraming, Head, Limits, ResponseHead, Status};

use crate::DATE;

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
