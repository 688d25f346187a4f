//! What a connection owes its client, modelled from the request bytes alone (the parser and
//! the chunked decoder), and the check of the plaintext the client received against it.

use common::chunked::ChunkedDecoder;
use server::http::{self, Action, BodyFraming, Head, Limits, Status};

/// A response the server owes, as the request bytes alone decide it (timing cannot change it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expected {
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
pub(crate) fn expected_responses(payload: &[u8], limits: &Limits) -> Vec<Expected> {
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
pub(crate) fn check_responses(plain: &[u8], expected: &[Expected]) -> u64 {
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
