//! Unit tests of the sans-I/O HTTP layer on byte strings: request heads (framing, routing,
//! limits, malformed input), the cached Date header and response heads.

#![allow(clippy::unwrap_used)]

use super::*;

fn parse(buf: &[u8]) -> Head {
    parse_head(buf, &Limits::default())
}

fn complete(buf: &[u8]) -> Request {
    match parse(buf) {
        Head::Complete(req) => req,
        other => panic!(
            "expected a complete head for {:?}, got {other:?}",
            String::from_utf8_lossy(buf)
        ),
    }
}

fn action(buf: &[u8]) -> Action {
    complete(buf).action
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n").into_bytes()
}

#[test]
fn hello_page_is_the_seed_page() {
    assert_eq!(HELLO_PAGE.len(), 228);
    assert!(HELLO_PAGE.starts_with(b"<!DOCTYPE html>"));
    assert!(HELLO_PAGE.ends_with(b"</html>"));
}

#[test]
fn limits_defaults() {
    let limits = Limits::default();
    assert_eq!(limits.max_request_line, 8192);
    assert_eq!(limits.max_header_bytes, 32768);
    assert_eq!(limits.max_headers, 100);
    assert_eq!(limits.max_body, 1_048_576);
    assert_eq!(limits.max_bytes, 1_073_741_824);
}

#[test]
fn status_table_is_consistent() {
    for (i, status) in Status::ALL.iter().enumerate() {
        assert_eq!(status.index(), i);
        let expected = format!("{} {}\n", status.code(), status.reason());
        assert_eq!(status.error_body(), expected.as_bytes());
    }
    assert_eq!(Status::NotFound.error_body(), b"404 Not Found\n");
    assert_eq!(Status::HeaderFieldsTooLarge.code(), 431);
    assert_eq!(Status::UriTooLong.reason(), "URI Too Long");
    assert_eq!(Status::TooEarly.code(), 425);
    assert_eq!(Status::TooEarly.error_body(), b"425 Too Early\n");
}

#[test]
fn only_get_and_head_are_safe_to_answer_from_early_data() {
    for (req, safe) in [
        (&b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"[..], true),
        (b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n", true),
        (
            b"POST /sink HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
            false,
        ),
        (b"PUT / HTTP/1.1\r\nHost: h\r\n\r\n", false),
    ] {
        let Head::Complete(r) = parse(req) else {
            panic!("not complete: {req:?}");
        };
        assert_eq!(r.safe, safe, "{:?}", String::from_utf8_lossy(req));
    }
}

#[test]
fn get_root_is_hello_keep_alive() {
    let buf = b"GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n";
    assert_eq!(
        parse(buf),
        Head::Complete(Request {
            action: Action::Hello,
            head_only: false,
            safe: true,
            keep_alive: true,
            http10: false,
            body: BodyFraming::None,
            head_len: buf.len(),
            allow: None,
            expect_continue: false,
        })
    );
}

#[test]
fn expect_continue_only_with_a_body_on_http11() {
    let with_body =
        b"POST /sink HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
    assert!(complete(with_body).expect_continue);
    let no_body = b"GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n";
    assert!(!complete(no_body).expect_continue);
    let plain = b"POST /sink HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n";
    assert!(!complete(plain).expect_continue);
}

#[test]
fn head_request_is_head_only() {
    let req = complete(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(req.action, Action::Hello);
    assert!(req.head_only);
    assert!(req.keep_alive);
    let req = complete(b"HEAD /bytes/10 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(req.action, Action::Bytes(10));
    assert!(req.head_only);
    let req = complete(b"HEAD /nope HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(req.action, Action::Error(Status::NotFound));
    assert!(req.head_only);
}

#[test]
fn connection_close() {
    let req = complete(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert_eq!(req.action, Action::Hello);
    assert!(!req.keep_alive);
    let req = complete(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade ,  CLOSE\r\n\r\n");
    assert!(!req.keep_alive);
    let req = complete(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
    );
    assert!(!req.keep_alive);
    let req = complete(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n");
    assert!(req.keep_alive);
}

#[test]
fn http10_defaults_to_close() {
    let req = complete(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(req.action, Action::Hello);
    assert!(req.http10);
    assert!(!req.keep_alive);
    let req = complete(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    assert!(req.http10);
    assert!(req.keep_alive);
    let req = complete(b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n");
    assert!(!req.keep_alive);
}

#[test]
fn pipelined_requests_parse_one_after_another() {
    let first = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".as_slice();
    let second = b"HEAD /bytes/5 HTTP/1.1\r\nHost: a\r\n\r\n".as_slice();
    let third = b"GET /nope HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".as_slice();
    let buf = [first, second, third].concat();
    let mut at = 0;
    let mut seen = Vec::new();
    while at < buf.len() {
        let req = complete(&buf[at..]);
        seen.push((req.action, req.head_only, req.keep_alive, req.head_len));
        at += req.head_len;
    }
    assert_eq!(at, buf.len());
    assert_eq!(
        seen,
        vec![
            (Action::Hello, false, true, first.len()),
            (Action::Bytes(5), true, true, second.len()),
            (Action::Error(Status::NotFound), false, false, third.len()),
        ]
    );
}

#[test]
fn every_split_point_is_incomplete_until_complete() {
    let buf = b"POST /sink?x=1 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nabc";
    let head_len = buf.len() - 3;
    for split in 0..head_len {
        assert_eq!(parse(&buf[..split]), Head::Incomplete, "split at {split}");
    }
    for end in head_len..=buf.len() {
        let req = complete(&buf[..end]);
        assert_eq!(req.action, Action::Sink);
        assert_eq!(req.body, BodyFraming::Length(3));
        assert_eq!(req.head_len, head_len);
    }
}

#[test]
fn leading_empty_lines_are_skipped() {
    let req = complete(b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(req.action, Action::Hello);
    assert_eq!(req.head_len, 31);
}

#[test]
fn bytes_route() {
    assert_eq!(action(&get("/bytes/0")), Action::Bytes(0));
    assert_eq!(action(&get("/bytes/16384")), Action::Bytes(16384));
    assert_eq!(action(&get("/bytes/16384?cache=no")), Action::Bytes(16384));
    assert_eq!(action(&get("/bytes/1073741824")), Action::Bytes(1 << 30));
    assert_eq!(
        action(&get("/bytes/1073741825")),
        Action::Error(Status::BadRequest)
    );
    // Fits u64 but over the cap: 400, not 404.
    assert_eq!(
        action(&get("/bytes/18446744073709551615")),
        Action::Error(Status::BadRequest)
    );
    for bad in [
        "/bytes/abc",
        "/bytes/-1",
        "/bytes/+1",
        "/bytes/",
        "/bytes/1.5",
        "/bytes/5/",
        "/bytes/0x10",
        "/bytes/18446744073709551616",
        "/bytes/000000000000000000001",
        "/bytes",
    ] {
        assert_eq!(action(&get(bad)), Action::Error(Status::NotFound), "{bad}");
    }
    let req = complete(b"POST /bytes/5 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(req.action, Action::Error(Status::MethodNotAllowed));
    assert_eq!(req.allow, Some("GET, HEAD"));
    assert!(!req.keep_alive);
}

#[test]
fn sink_with_content_length_and_chunked() {
    let req = complete(b"POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: 5000000\r\n\r\n");
    assert_eq!(req.action, Action::Sink);
    assert_eq!(req.body, BodyFraming::Length(5_000_000));
    assert!(req.keep_alive);
    let req = complete(b"POST /sink HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  Chunked \r\n\r\n");
    assert_eq!(req.action, Action::Sink);
    assert_eq!(req.body, BodyFraming::Chunked);
    let req = complete(b"POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(req.action, Action::Sink);
    assert_eq!(req.body, BodyFraming::None);
    let req = complete(b"POST /sink HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(req.body, BodyFraming::None);
}

#[test]
fn wrong_methods_are_405_with_allow() {
    let req = complete(b"GET /sink HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(req.action, Action::Error(Status::MethodNotAllowed));
    assert_eq!(req.allow, Some("POST"));
    assert!(!req.keep_alive);
    let req = complete(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi");
    assert_eq!(req.action, Action::Error(Status::MethodNotAllowed));
    assert_eq!(req.allow, Some("GET, HEAD"));
    assert_eq!(req.body, BodyFraming::Length(2));
    let req = complete(b"get / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(req.action, Action::Error(Status::MethodNotAllowed));
}

#[test]
fn unknown_paths_are_404() {
    for path in ["/index.html", "/sink/", "//", "/?", "*", "/Sink"] {
        let req = complete(&get(path));
        if path == "/?" {
            assert_eq!(req.action, Action::Hello);
        } else {
            assert_eq!(req.action, Action::Error(Status::NotFound), "{path}");
            assert_eq!(req.allow, None);
            assert!(!req.keep_alive);
        }
    }
}

#[test]
fn absolute_form_routes_by_path() {
    assert_eq!(action(&get("http://example.com/")), Action::Hello);
    assert_eq!(
        action(&get("HTTPS://example.com:8443/bytes/7?q")),
        Action::Bytes(7)
    );
    assert_eq!(action(&get("https://example.com")), Action::Hello);
    assert_eq!(action(&get("https://example.com?x")), Action::Hello);
    assert_eq!(
        action(&get("ftp://example.com/")),
        Action::Error(Status::NotFound)
    );
}

#[test]
fn host_rules() {
    let req = complete(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(req.action, Action::Error(Status::BadRequest));
    assert!(!req.keep_alive);
    assert_eq!(req.head_len, 18);
    let req = complete(b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n");
    assert_eq!(req.action, Action::Error(Status::BadRequest));
    let req = complete(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(req.action, Action::Hello);
    let req = complete(b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n");
    assert_eq!(req.action, Action::Error(Status::BadRequest));
}

#[test]
fn content_length_rules() {
    let req = complete(
        b"POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
    );
    assert_eq!(req.action, Action::Error(Status::BadRequest));
    assert_eq!(req.body, BodyFraming::None);
    assert!(!req.keep_alive);
    for value in ["+5", "5 5", "", "-1", "0x5", "5,5", "12345678901234567890"] {
        let buf = format!("POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: {value}\r\n\r\n");
        assert_eq!(
            action(buf.as_bytes()),
            Action::Error(Status::BadRequest),
            "{value:?}"
        );
    }
    let req =
        complete(b"POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: 9999999999999999999\r\n\r\n");
    assert_eq!(req.action, Action::Sink);
    assert_eq!(req.body, BodyFraming::Length(9_999_999_999_999_999_999));
    let req = complete(b"POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n");
    assert_eq!(req.body, BodyFraming::Length(7));
}

#[test]
fn transfer_encoding_rules() {
    let req = complete(
        b"POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    assert_eq!(req.action, Action::Error(Status::BadRequest));
    assert_eq!(req.body, BodyFraming::None);
    let req = complete(b"POST /sink HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n");
    assert_eq!(req.action, Action::Error(Status::NotImplemented));
    assert!(!req.keep_alive);
    let req =
        complete(b"POST /sink HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
    assert_eq!(req.action, Action::Error(Status::NotImplemented));
    let req = complete(
        b"POST /sink HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    assert_eq!(req.action, Action::Error(Status::BadRequest));
    let req = complete(b"POST /sink HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(req.action, Action::Error(Status::BadRequest));
    assert_eq!(req.body, BodyFraming::None);
    // A body on GET is framed and must be skipped, not answered as an error.
    let req = complete(b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(req.action, Action::Hello);
    assert_eq!(req.body, BodyFraming::Chunked);
    assert!(req.keep_alive);
}

#[test]
fn body_cap_spares_sink() {
    let req = complete(b"POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: 1048577\r\n\r\n");
    assert_eq!(req.action, Action::Sink);
    let req = complete(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1048577\r\n\r\n");
    assert_eq!(req.action, Action::Error(Status::PayloadTooLarge));
    assert_eq!(req.body, BodyFraming::Length(1_048_577));
    assert!(!req.keep_alive);
    let req = complete(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n");
    assert_eq!(req.action, Action::Hello);
    assert_eq!(req.body, BodyFraming::Length(1_048_576));
    assert!(req.keep_alive);
}

fn request_line_of(len: usize) -> Vec<u8> {
    let fixed = "GET / HTTP/1.1".len();
    format!("GET /{} HTTP/1.1", "a".repeat(len - fixed)).into_bytes()
}

#[test]
fn long_request_line_is_414() {
    let line = request_line_of(8193);
    assert_eq!(line.len(), 8193);
    assert_eq!(parse(&line), Head::Invalid(Status::UriTooLong));
    assert_eq!(parse(&line[..8192]), Head::Incomplete);
    let head = [&line[..], b"\r\nHost: a\r\n\r\n"].concat();
    assert_eq!(parse(&head), Head::Invalid(Status::UriTooLong));

    let line = request_line_of(8192);
    assert_eq!(parse(&line), Head::Incomplete);
    assert_eq!(parse(&[&line[..], b"\r"].concat()), Head::Incomplete);
    let head = [&line[..], b"\r\nHost: a\r\n\r\n"].concat();
    assert_eq!(action(&head), Action::Error(Status::NotFound));
}

fn with_headers(count: usize) -> Vec<u8> {
    let mut buf = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 1..count {
        buf.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    buf.extend_from_slice(b"\r\n");
    buf
}

#[test]
fn too_many_headers_is_431() {
    assert_eq!(action(&with_headers(100)), Action::Hello);
    assert_eq!(
        parse(&with_headers(101)),
        Head::Invalid(Status::HeaderFieldsTooLarge)
    );
    assert_eq!(
        parse(&with_headers(102)),
        Head::Invalid(Status::HeaderFieldsTooLarge)
    );
    assert_eq!(
        parse(&with_headers(500)),
        Head::Invalid(Status::HeaderFieldsTooLarge)
    );
    let limits = Limits {
        max_headers: 1000,
        ..Limits::default()
    };
    let req = match parse_head(&with_headers(127), &limits) {
        Head::Complete(req) => req,
        other => panic!("127 headers: {other:?}"),
    };
    assert_eq!(req.action, Action::Hello);
    assert_eq!(req.head_len, with_headers(127).len());
    assert_eq!(
        parse_head(&with_headers(128), &limits),
        Head::Invalid(Status::HeaderFieldsTooLarge)
    );
}

fn head_of_len(len: usize) -> Vec<u8> {
    let fixed = b"GET / HTTP/1.1\r\nHost: a\r\nX: \r\n\r\n".len();
    format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
        "v".repeat(len - fixed)
    )
    .into_bytes()
}

#[test]
fn large_head_is_431() {
    let head = head_of_len(32768);
    assert_eq!(head.len(), 32768);
    assert_eq!(action(&head), Action::Hello);
    let head = head_of_len(32769);
    assert_eq!(parse(&head), Head::Invalid(Status::HeaderFieldsTooLarge));
    // Incomplete with max bytes buffered can only complete too large.
    assert_eq!(
        parse(&head[..32768]),
        Head::Invalid(Status::HeaderFieldsTooLarge)
    );
    assert_eq!(parse(&head[..32767]), Head::Incomplete);
}

#[test]
fn malformed_heads_are_400() {
    for buf in [
        &b"GET / HTTP/1.1\nHost: a\n\n"[..],
        b"GET / HTTP/1.1\r\nHost: a\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n\n",
        b"GET / HTTP/1.1\nHo",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: b\0c\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\0",
        b"GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /  HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        b"GET / HTTP/1.1\r\n Host: a\r\n\r\n",
        b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.2\r\nHost: a\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"GET /\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ] {
        assert_eq!(
            parse(buf),
            Head::Invalid(Status::BadRequest),
            "{:?}",
            String::from_utf8_lossy(buf)
        );
    }
}

#[test]
fn date_cache_matches_httpdate() {
    let mut cache = DateCache::new();
    assert_eq!(cache.get().len(), 29);
    let now = SystemTime::now();
    cache.update(now);
    assert_eq!(cache.get(), httpdate::fmt_http_date(now).as_bytes());
    let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
    cache.update(t);
    assert_eq!(cache.get(), b"Sun, 06 Nov 1994 08:49:37 GMT");
    // Later in the same second: nothing changes.
    cache.update(t + Duration::from_millis(999));
    assert_eq!(cache.get(), b"Sun, 06 Nov 1994 08:49:37 GMT");
    cache.update(t + Duration::from_secs(1));
    assert_eq!(cache.get(), b"Sun, 06 Nov 1994 08:49:38 GMT");
    cache.update(UNIX_EPOCH);
    assert_eq!(cache.get(), b"Thu, 01 Jan 1970 00:00:00 GMT");
    cache.update(UNIX_EPOCH - Duration::from_secs(10));
    assert_eq!(cache.get(), b"Thu, 01 Jan 1970 00:00:00 GMT");
    cache.update(UNIX_EPOCH + Duration::from_secs(300_000_000_000));
    assert_eq!(cache.get(), b"Fri, 31 Dec 9999 23:59:59 GMT");
}

const DATE: &[u8] = b"Sun, 06 Nov 1994 08:49:37 GMT";

fn head(status: Status, content_type: &'static str, content_length: u64) -> ResponseHead<'static> {
    ResponseHead {
        status,
        content_type,
        content_length,
        keep_alive: true,
        http10: false,
        allow: None,
        date: DATE,
    }
}

fn written(head: &ResponseHead<'_>) -> String {
    let mut out = Vec::with_capacity(512);
    let start = out.as_ptr();
    write_head(&mut out, head);
    assert_eq!(out.as_ptr(), start, "write_head reallocated");
    String::from_utf8(out).unwrap()
}

#[test]
fn write_head_keep_alive_11() {
    assert_eq!(
        written(&head(Status::Ok, CONTENT_TYPE_HTML, 228)),
        "HTTP/1.1 200 OK\r\nServer: tlsbench\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 228\r\n\r\n"
    );
}

#[test]
fn write_head_close() {
    let head = ResponseHead {
        keep_alive: false,
        ..head(Status::Ok, CONTENT_TYPE_BYTES, 18_446_744_073_709_551_615)
    };
    assert_eq!(
        written(&head),
        "HTTP/1.1 200 OK\r\nServer: tlsbench\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Type: application/octet-stream\r\nContent-Length: 18446744073709551615\r\nConnection: close\r\n\r\n"
    );
    let head = ResponseHead {
        keep_alive: false,
        http10: true,
        ..head
    };
    assert!(written(&head).ends_with("\r\nConnection: close\r\n\r\n"));
}

#[test]
fn write_head_keep_alive_10() {
    let head = ResponseHead {
        http10: true,
        ..head(Status::Ok, CONTENT_TYPE_TEXT, 0)
    };
    assert_eq!(
        written(&head),
        "HTTP/1.1 200 OK\r\nServer: tlsbench\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"
    );
}

#[test]
fn write_head_405_with_allow() {
    let status = Status::MethodNotAllowed;
    let head = ResponseHead {
        keep_alive: false,
        allow: Some("GET, HEAD"),
        ..head(status, CONTENT_TYPE_TEXT, status.error_body().len() as u64)
    };
    assert_eq!(
        written(&head),
        "HTTP/1.1 405 Method Not Allowed\r\nServer: tlsbench\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 23\r\nConnection: close\r\nAllow: GET, HEAD\r\n\r\n"
    );
}

#[test]
fn write_head_appends() {
    let mut out = b"previous".to_vec();
    write_head(&mut out, &head(Status::NotFound, CONTENT_TYPE_TEXT, 14));
    assert!(out.starts_with(b"previousHTTP/1.1 404 Not Found\r\n"));
}
