//! Sans-I/O HTTP/1.1 for the server.
//!
//! This module owns the protocol, not the connection: it parses and routes a request head
//! ([`parse_head`]), says how the request body is framed ([`BodyFraming`]: Content-Length, or
//! chunked, which the connection decodes with [`common::chunked::ChunkedDecoder`], shared with
//! the load generator), and encodes response heads ([`write_head`]) into a buffer the caller
//! clears and reuses. The connection code feeds it plaintext bytes and acts on what it returns;
//! sockets and TLS never reach here, so every rule can be tested on byte strings.
//!
//! It sits on the hot path of every request, so nothing here allocates per request: heads are
//! parsed into a stack array of headers, numbers are written with `itoa`, and the Date header is
//! formatted once per second by [`DateCache`].

use std::io::Write as _;
use std::mem::MaybeUninit;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::http::{ConnectionOptions, U64_DIGITS, parse_digits, trim_ows};

/// The hello page `GET /` answers, byte for byte (no trailing newline).
pub const HELLO_PAGE: &[u8] = b"<!DOCTYPE html><html><head><title>Hello World</title><style>body {background-color: black}h1 {font-size:3cm; text-align: center; color: white; text-shadow: 0 0 3mm yellow}</style></head><body><h1>Hello, world!</h1></body></html>";

/// Content-Type of [`HELLO_PAGE`].
pub const CONTENT_TYPE_HTML: &str = "text/html; charset=utf-8";
/// Content-Type of the `GET /bytes/N` payload.
pub const CONTENT_TYPE_BYTES: &str = "application/octet-stream";
/// Content-Type of the `/sink` answer and of every error body.
pub const CONTENT_TYPE_TEXT: &str = "text/plain; charset=utf-8";
/// Content-Type of the admin endpoint's `/metrics`: Prometheus's text exposition format.
pub const CONTENT_TYPE_PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content-Type of the admin endpoint's `/metrics.json`.
pub const CONTENT_TYPE_JSON: &str = "application/json";
/// Content-Type of the admin endpoint's 404 and 500 answers.
pub const CONTENT_TYPE_PLAIN: &str = "text/plain";

/// Request limits, nginx-like defaults (see the [`Default`] impl).
#[derive(Clone, Debug)]
pub struct Limits {
    /// Longest request line (method, target and version, without its CRLF); longer is 414.
    pub max_request_line: usize,
    /// Longest whole head (request line, header fields and the blank line); longer is 431.
    pub max_header_bytes: usize,
    /// Most header fields in one head; more is 431. Values above 127 act as 127, because the
    /// fields are parsed into a fixed stack array.
    pub max_headers: usize,
    /// Largest Content-Length accepted on every route except `/sink` (which takes any length);
    /// larger is 413.
    pub max_body: u64,
    /// Largest N in `GET /bytes/N`; larger is 400.
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_line: 8192,
            max_header_bytes: 32 * 1024,
            max_headers: 100,
            max_body: 1024 * 1024,
            max_bytes: 1024 * 1024 * 1024,
        }
    }
}

/// Response statuses the server sends; [`Status::index`] gives a dense
/// `0..Status::ALL.len()` index for counter arrays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// 200 OK.
    Ok,
    /// 400 Bad Request.
    BadRequest,
    /// 404 Not Found.
    NotFound,
    /// 405 Method Not Allowed.
    MethodNotAllowed,
    /// 408 Request Timeout.
    RequestTimeout,
    /// 413 Content Too Large (RFC 9110's name for what RFC 7231 called Payload Too Large).
    PayloadTooLarge,
    /// 414 URI Too Long.
    UriTooLong,
    /// 425 Too Early (RFC 8470): an unsafe method sent as TLS 1.3 early data, which an
    /// attacker could replay.
    TooEarly,
    /// 431 Request Header Fields Too Large.
    HeaderFieldsTooLarge,
    /// 501 Not Implemented.
    NotImplemented,
    /// 503 Service Unavailable.
    ServiceUnavailable,
}

impl Status {
    /// Every status, in [`Status::index`] order.
    pub const ALL: [Status; 11] = [
        Status::Ok,
        Status::BadRequest,
        Status::NotFound,
        Status::MethodNotAllowed,
        Status::RequestTimeout,
        Status::PayloadTooLarge,
        Status::UriTooLong,
        Status::TooEarly,
        Status::HeaderFieldsTooLarge,
        Status::NotImplemented,
        Status::ServiceUnavailable,
    ];

    /// The numeric status code.
    pub fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::BadRequest => 400,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::RequestTimeout => 408,
            Status::PayloadTooLarge => 413,
            Status::UriTooLong => 414,
            Status::TooEarly => 425,
            Status::HeaderFieldsTooLarge => 431,
            Status::NotImplemented => 501,
            Status::ServiceUnavailable => 503,
        }
    }

    /// The reason phrase, as RFC 9110 names it.
    pub fn reason(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::BadRequest => "Bad Request",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::RequestTimeout => "Request Timeout",
            Status::PayloadTooLarge => "Content Too Large",
            Status::UriTooLong => "URI Too Long",
            Status::TooEarly => "Too Early",
            Status::HeaderFieldsTooLarge => "Request Header Fields Too Large",
            Status::NotImplemented => "Not Implemented",
            Status::ServiceUnavailable => "Service Unavailable",
        }
    }

    /// Dense index into [`Status::ALL`], for per-status counter arrays.
    pub fn index(self) -> usize {
        // The discriminants are declared in ALL's order; a test keeps the two in step.
        self as usize
    }

    /// The plain-text body sent with this status when it is an error: `"<code> <reason>\n"`.
    pub fn error_body(self) -> &'static [u8] {
        // Literals rather than formatting, so error responses stay allocation-free.
        match self {
            Status::Ok => b"200 OK\n",
            Status::BadRequest => b"400 Bad Request\n",
            Status::NotFound => b"404 Not Found\n",
            Status::MethodNotAllowed => b"405 Method Not Allowed\n",
            Status::RequestTimeout => b"408 Request Timeout\n",
            Status::PayloadTooLarge => b"413 Content Too Large\n",
            Status::UriTooLong => b"414 URI Too Long\n",
            Status::TooEarly => b"425 Too Early\n",
            Status::HeaderFieldsTooLarge => b"431 Request Header Fields Too Large\n",
            Status::NotImplemented => b"501 Not Implemented\n",
            Status::ServiceUnavailable => b"503 Service Unavailable\n",
        }
    }
}

/// What a request asks for, after routing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `GET /` or `HEAD /`: the hello page.
    Hello,
    /// `GET /bytes/N` or `HEAD /bytes/N`: N bytes of payload.
    Bytes(u64),
    /// `POST /sink`: the body is read and discarded.
    Sink,
    /// Answer with this error status and close the connection.
    Error(Status),
}

/// How the request body is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body bytes follow the head (also used for `Content-Length: 0`).
    None,
    /// Exactly this many body bytes follow the head (never 0).
    Length(u64),
    /// A chunked body follows; decode it with [`common::chunked::ChunkedDecoder`].
    Chunked,
}

/// A parsed, routed request head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// What to answer.
    pub action: Action,
    /// HEAD: send the head, not the body (also for error answers).
    pub head_only: bool,
    /// GET or HEAD: safe and idempotent (RFC 9110 §9.2), so it may be answered from TLS 1.3
    /// early data, which an attacker can replay.
    pub safe: bool,
    /// Whether the connection stays open after the answer. False for HTTP/1.1 with
    /// `Connection: close`, for HTTP/1.0 without `Connection: keep-alive`, and for every
    /// [`Action::Error`].
    pub keep_alive: bool,
    /// The request was HTTP/1.0 (the answer then says `Connection: keep-alive` explicitly).
    pub http10: bool,
    /// The body the server must consume (and discard) before answering. On error actions it is
    /// the framing if it could be determined, else [`BodyFraming::None`].
    pub body: BodyFraming,
    /// How many bytes at the start of the buffer the head occupied; the body or the next
    /// pipelined request starts there.
    pub head_len: usize,
    /// The `Allow` value for a 405 answer: `Some` exactly when `action` is
    /// `Action::Error(Status::MethodNotAllowed)`.
    pub allow: Option<&'static str>,
    /// The client sent `Expect: 100-continue` (HTTP/1.1) and waits for a `100 Continue`
    /// before sending the body (curl does this for uploads over 1 KiB).
    pub expect_continue: bool,
}

/// The outcome of [`parse_head`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Head {
    /// The head is not complete yet; read more and parse again from the same start.
    Incomplete,
    /// The head is complete and well framed (its action may still be an error).
    Complete(Request),
    /// The head cannot be framed at all: answer with this status and close without reading
    /// further.
    Invalid(Status),
}

/// Header slots on the stack: one more than the largest `max_headers` honoured, so that a head
/// with exactly one field too many is told apart from one that fits.
const HEADER_SLOTS: usize = 128;

/// Most digits in a request's Content-Length. Every 19-digit length fits a u64 with room to
/// spare, so a length near `u64::MAX` (20 digits) is refused as malformed rather than read as
/// a body no client sends.
const CONTENT_LENGTH_DIGITS: usize = 19;

/// `Allow` values for 405 answers.
const ALLOW_GET_HEAD: &str = "GET, HEAD";
const ALLOW_POST: &str = "POST";

/// Parses the head at the start of `buf`. `Invalid` means the head cannot be framed at all (the
/// server answers with that status and closes without looking further).
///
/// `buf` is re-parsed from its start on every call, so the caller passes everything received
/// since the previous request ended. To be told 431 rather than waiting forever, the caller must
/// be willing to buffer at least `limits.max_header_bytes` bytes.
#[must_use]
pub fn parse_head(buf: &[u8], limits: &Limits) -> Head {
    let max_headers = limits.max_headers.min(HEADER_SLOTS - 1);
    // Uninitialised slots: zeroing all 128 (4 KiB) on every request would cost more than
    // parsing a typical head. httparse's safe API writes before it exposes them.
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; HEADER_SLOTS];
    let mut req = httparse::Request::new(&mut []);
    let parsed = parser_config().parse_request_with_uninit_headers(
        &mut req,
        buf,
        &mut slots[..=max_headers],
    );
    let head_len = match parsed {
        Err(httparse::Error::TooManyHeaders) => return Head::Invalid(Status::HeaderFieldsTooLarge),
        Err(_) => return Head::Invalid(Status::BadRequest),
        Ok(httparse::Status::Partial) => {
            // Everything buffered so far is head, so reject what is already wrong in it rather
            // than waiting for a head that can never be accepted.
            if !line_ends_clean(buf) {
                return Head::Invalid(Status::BadRequest);
            }
            if request_line_too_long(buf, limits.max_request_line) {
                return Head::Invalid(Status::UriTooLong);
            }
            // Still incomplete at max bytes means the finished head would exceed max.
            if buf.len() >= limits.max_header_bytes {
                return Head::Invalid(Status::HeaderFieldsTooLarge);
            }
            return Head::Incomplete;
        }
        Ok(httparse::Status::Complete(n)) => n,
    };
    let head = &buf[..head_len];
    if !line_ends_clean(head) {
        return Head::Invalid(Status::BadRequest);
    }
    if request_line_too_long(head, limits.max_request_line) {
        return Head::Invalid(Status::UriTooLong);
    }
    if head_len > limits.max_header_bytes || req.headers.len() > max_headers {
        return Head::Invalid(Status::HeaderFieldsTooLarge);
    }
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Head::Invalid(Status::BadRequest);
    };
    let http10 = match version {
        0 => true,
        1 => false,
        _ => return Head::Invalid(Status::BadRequest),
    };

    let fields = scan_fields(req.headers);
    let (body, framing_error) = body_framing(&fields, http10);
    let host_error = fields.hosts > 1 || (!http10 && fields.hosts == 0);
    let (routed, allow) = route(method, target, limits);
    let action = if let Some(status) = framing_error {
        Action::Error(status)
    } else if host_error {
        Action::Error(Status::BadRequest)
    } else if matches!(routed, Action::Error(_) | Action::Sink) {
        routed
    } else if matches!(body, BodyFraming::Length(n) if n > limits.max_body) {
        Action::Error(Status::PayloadTooLarge)
    } else {
        routed
    };
    let is_error = matches!(action, Action::Error(_));
    let keep_alive = !is_error && fields.connection.persists(http10);
    let allow = if action == Action::Error(Status::MethodNotAllowed) {
        allow
    } else {
        None
    };
    Head::Complete(Request {
        action,
        head_only: method == "HEAD",
        safe: method == "GET" || method == "HEAD",
        keep_alive,
        http10,
        body,
        head_len,
        allow,
        expect_continue: fields.expect_continue && !http10 && body != BodyFraming::None,
    })
}

/// httparse's strict settings, spelled out so a change of its defaults cannot loosen them.
fn parser_config() -> httparse::ParserConfig {
    let mut config = httparse::ParserConfig::default();
    config
        .allow_multiple_spaces_in_request_line_delimiters(false)
        .allow_space_before_first_header_name(false)
        .ignore_invalid_headers_in_requests(false);
    config
}

/// True when every LF is preceded by CR and there is no NUL. httparse accepts bare LF line
/// ends, and a server that does so disagrees with strict peers about where a head ends, which
/// is the stuff of request smuggling.
fn line_ends_clean(head: &[u8]) -> bool {
    let mut prev = 0u8;
    for &b in head {
        if b == 0 || (b == b'\n' && prev != b'\r') {
            return false;
        }
        prev = b;
    }
    true
}

/// True when the request line (without its CRLF) is already known to exceed `max`.
fn request_line_too_long(buf: &[u8], max: usize) -> bool {
    // httparse skips empty lines before the request line (RFC 9112 section 2.2), so measure
    // from after them. Bare LF has been rejected already, so CR or LF marks the line's end.
    let mut line = buf;
    while let Some(rest) = line.strip_prefix(b"\r\n") {
        line = rest;
    }
    let window = max.saturating_add(1);
    let ended = line.iter().take(window).any(|&b| b == b'\r' || b == b'\n');
    !ended && line.len() > max
}

/// What the header fields say, gathered in one pass.
#[derive(Default)]
struct Fields {
    hosts: u32,
    content_lengths: u32,
    /// The value of the last Content-Length; only meaningful when there is exactly one.
    content_length: Option<u64>,
    transfer_encodings: u32,
    /// Every Transfer-Encoding value was exactly `chunked`.
    all_chunked: bool,
    connection: ConnectionOptions,
    expect_continue: bool,
}

fn scan_fields(headers: &[httparse::Header<'_>]) -> Fields {
    let mut fields = Fields {
        all_chunked: true,
        ..Fields::default()
    };
    for header in headers {
        let name = header.name.as_bytes();
        let value = trim_ows(header.value);
        if name.eq_ignore_ascii_case(b"host") {
            fields.hosts += 1;
        } else if name.eq_ignore_ascii_case(b"content-length") {
            fields.content_lengths += 1;
            fields.content_length = parse_digits(value, CONTENT_LENGTH_DIGITS);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            fields.transfer_encodings += 1;
            fields.all_chunked &= value.eq_ignore_ascii_case(b"chunked");
        } else if name.eq_ignore_ascii_case(b"expect") {
            fields.expect_continue |= value.eq_ignore_ascii_case(b"100-continue");
        } else if name.eq_ignore_ascii_case(b"connection") {
            fields.connection.add_field(value);
        }
    }
    fields
}

/// The body framing and, when the framing is unacceptable, the error to answer with.
fn body_framing(fields: &Fields, http10: bool) -> (BodyFraming, Option<Status>) {
    if fields.transfer_encodings > 0 {
        // Any of these leaves the body's end unknowable, so the framing is None and the
        // connection is closed after the error.
        let error = if http10 || fields.content_lengths > 0 {
            // RFC 9112 section 6.1: TE on 1.0 and CL alongside TE are smuggling signs.
            Status::BadRequest
        } else if !fields.all_chunked {
            Status::NotImplemented
        } else if fields.transfer_encodings > 1 {
            // chunked applied twice is not a framing anyone sends honestly.
            Status::BadRequest
        } else {
            return (BodyFraming::Chunked, None);
        };
        return (BodyFraming::None, Some(error));
    }
    match (fields.content_lengths, fields.content_length) {
        (0, _) => (BodyFraming::None, None),
        (1, Some(0)) => (BodyFraming::None, None),
        (1, Some(n)) => (BodyFraming::Length(n), None),
        // Duplicates are rejected even when equal: one less rule for a peer to disagree on.
        _ => (BodyFraming::None, Some(Status::BadRequest)),
    }
}

/// Routes the target; the second value is the `Allow` list should the method not fit.
fn route(method: &str, target: &str, limits: &Limits) -> (Action, Option<&'static str>) {
    let path = request_path(target.as_bytes());
    let get_or_head = method == "GET" || method == "HEAD";
    if path == b"/" {
        let action = if get_or_head {
            Action::Hello
        } else {
            Action::Error(Status::MethodNotAllowed)
        };
        return (action, Some(ALLOW_GET_HEAD));
    }
    if path == b"/sink" {
        let action = if method == "POST" {
            Action::Sink
        } else {
            Action::Error(Status::MethodNotAllowed)
        };
        return (action, Some(ALLOW_POST));
    }
    if let Some(digits) = path.strip_prefix(b"/bytes/") {
        // A malformed N names no resource, so it is 404 whatever the method.
        let action = match parse_digits(digits, U64_DIGITS) {
            None => return (Action::Error(Status::NotFound), None),
            Some(_) if !get_or_head => Action::Error(Status::MethodNotAllowed),
            Some(n) if n > limits.max_bytes => Action::Error(Status::BadRequest),
            Some(n) => Action::Bytes(n),
        };
        return (action, Some(ALLOW_GET_HEAD));
    }
    (Action::Error(Status::NotFound), None)
}

/// The path of a request target without its query; absolute-form targets give their path part.
fn request_path(target: &[u8]) -> &[u8] {
    let (rest, absolute) = match strip_scheme(target) {
        Some(after_scheme) => {
            let authority_end = after_scheme
                .iter()
                .position(|&b| matches!(b, b'/' | b'?' | b'#'))
                .unwrap_or(after_scheme.len());
            (&after_scheme[authority_end..], true)
        }
        None => (target, false),
    };
    let end = rest
        .iter()
        .position(|&b| b == b'?' || b == b'#')
        .unwrap_or(rest.len());
    let path = &rest[..end];
    if absolute && path.is_empty() {
        // RFC 9112 section 3.2.2: an empty path in absolute-form means "/".
        b"/"
    } else {
        path
    }
}

fn strip_scheme(target: &[u8]) -> Option<&[u8]> {
    for scheme in [&b"http://"[..], &b"https://"[..]] {
        if target.len() >= scheme.len() && target[..scheme.len()].eq_ignore_ascii_case(scheme) {
            return Some(&target[scheme.len()..]);
        }
    }
    None
}

/// Length of an IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
const DATE_LEN: usize = 29;

/// Formats the Date header value once per second (29 bytes, IMF-fixdate), so responses never
/// format time.
#[derive(Clone, Debug)]
pub struct DateCache {
    text: [u8; DATE_LEN],
    /// Seconds since the epoch that `text` shows.
    secs: u64,
}

impl DateCache {
    /// A cache showing the current time.
    pub fn new() -> Self {
        // Starts self-consistent at the epoch, so update() only has to handle a change.
        let mut cache = DateCache {
            text: *b"Thu, 01 Jan 1970 00:00:00 GMT",
            secs: 0,
        };
        cache.update(SystemTime::now());
        cache
    }

    /// Re-formats the date if `now` is in a different second from the one shown. Times before
    /// 1970 or after 9999 are clamped rather than panicking.
    pub fn update(&mut self, now: SystemTime) {
        let secs = common::date::unix_secs(now);
        if secs == self.secs {
            return;
        }
        let date = httpdate::HttpDate::from(UNIX_EPOCH + Duration::from_secs(secs));
        let mut text = [0u8; DATE_LEN];
        let mut cursor = &mut text[..];
        // Formatting into a fixed array keeps this allocation-free; a short or failed write
        // leaves the previous (one second stale) date in place rather than a torn one.
        if write!(cursor, "{date}").is_ok() && cursor.is_empty() {
            self.text = text;
            self.secs = secs;
        }
    }

    /// The Date header value (29 bytes).
    pub fn get(&self) -> &[u8] {
        &self.text
    }
}

impl Default for DateCache {
    fn default() -> Self {
        Self::new()
    }
}

/// What goes into a response head.
#[derive(Clone, Copy, Debug)]
pub struct ResponseHead<'a> {
    /// The status line's status.
    pub status: Status,
    /// [`CONTENT_TYPE_HTML`] for the hello page, [`CONTENT_TYPE_BYTES`] for `/bytes`,
    /// [`CONTENT_TYPE_TEXT`] for `/sink` and errors.
    pub content_type: &'static str,
    /// The body length (also for HEAD, where the body is not sent).
    pub content_length: u64,
    /// Whether the connection stays open; false sends `Connection: close`.
    pub keep_alive: bool,
    /// The request was HTTP/1.0, so keep-alive must be said explicitly.
    pub http10: bool,
    /// The `Allow` header value, for 405 answers.
    pub allow: Option<&'static str>,
    /// The Date header value, from [`DateCache::get`].
    pub date: &'a [u8],
}

/// Appends the head (status line .. blank line) to `out` without allocating when `out` has
/// capacity.
///
/// The status line always says HTTP/1.1: RFC 9110 section 6.2 has a server send its own
/// highest version, also to 1.0 clients.
pub fn write_head(out: &mut Vec<u8>, head: &ResponseHead<'_>) {
    let mut number = itoa::Buffer::new();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(number.format(head.status.code()).as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.status.reason().as_bytes());
    out.extend_from_slice(b"\r\nServer: tlsbench\r\nDate: ");
    out.extend_from_slice(head.date);
    out.extend_from_slice(b"\r\nContent-Type: ");
    out.extend_from_slice(head.content_type.as_bytes());
    out.extend_from_slice(b"\r\nContent-Length: ");
    out.extend_from_slice(number.format(head.content_length).as_bytes());
    out.extend_from_slice(b"\r\n");
    if !head.keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if head.http10 {
        // HTTP/1.1 keep-alive is the default and goes unsaid; 1.0 clients need to be told.
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    if let Some(allow) = head.allow {
        out.extend_from_slice(b"Allow: ");
        out.extend_from_slice(allow.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests;
