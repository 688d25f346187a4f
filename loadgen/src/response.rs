//! Sans-I/O reading of HTTP/1.1 responses for the load generator: parses each head with
//! httparse, frames the body (chunked, Content-Length or until close), skips interim 1xx
//! responses and says where one response ends so pipelined ones follow. Sockets and TLS never
//! reach here; the connection feeds plaintext and acts on the [`Step`]s returned.
//!
//! It runs once per response on every connection, so steady-state reading allocates nothing:
//! a head split across reads is gathered in one buffer reused from response to response, and
//! body bytes are only counted (and pointed at for checking), never copied.

use std::mem::MaybeUninit;
use std::ops::Range;

use common::chunked::{ChunkError, ChunkedDecoder};

/// Longest response head accepted (status line, fields and the blank line).
pub const MAX_HEAD: usize = 64 * 1024;
/// Most header fields in one response head.
pub const MAX_HEADERS: usize = 64;

/// A complete response, as the generator counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response {
    /// The final (non-1xx) status code.
    pub status: u16,
    /// Whether the server keeps the connection open for the next request.
    pub keep_alive: bool,
    /// Body bytes received (chunk data only, for a chunked body; 0 for HEAD, 204 and 304).
    pub body_len: u64,
}

/// What one [`ResponseReader::feed`] call did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Bytes of `input` used; the rest belongs to the next response (pipelining) and is fed
    /// again after the next [`ResponseReader::start`].
    pub consumed: usize,
    /// Body bytes inside `input[..consumed]` for Content-Length and until-close bodies, so the
    /// caller can check their content; empty for chunked bodies, whose data is interleaved
    /// with framing.
    pub body: Range<usize>,
    /// Body bytes passed in this call, whatever the framing.
    pub body_bytes: u64,
    /// Set when the response ended within this call; `consumed` then stops right after it.
    pub done: Option<Response>,
}

/// Why a response could not be read. After any of these the connection's byte stream can no
/// longer be framed, so the connection should be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// httparse rejected the head (status line or a header field).
    #[error("malformed response head: {0}")]
    MalformedHead(httparse::Error),
    /// The head is longer than [`MAX_HEAD`] bytes.
    #[error("response head longer than {MAX_HEAD} bytes")]
    HeadTooLarge,
    /// The chunked body's framing is malformed.
    #[error("bad chunked body: {0}")]
    Chunked(#[from] ChunkError),
    /// A Content-Length that is not a decimal number fitting 64 bits, or several that differ.
    #[error("invalid Content-Length")]
    InvalidContentLength,
    /// The connection closed before the Content-Length body was complete.
    #[error("body cut short by EOF: expected {expected} bytes, received {received}")]
    ShortBody {
        /// The Content-Length.
        expected: u64,
        /// Body bytes received before EOF.
        received: u64,
    },
    /// The connection closed inside a chunked body.
    #[error("chunked body cut short by EOF after {received} data bytes")]
    ShortChunkedBody {
        /// Chunk data bytes received before EOF.
        received: u64,
    },
    /// The connection closed inside the response head.
    #[error("EOF inside the response head after {received} bytes")]
    ShortHead {
        /// Head bytes buffered when EOF came.
        received: usize,
    },
    /// The connection closed before any byte of the response.
    #[error("EOF before any response")]
    NoResponse,
}

/// How the current response's body ends.
#[derive(Clone, Debug)]
enum Body {
    /// This many bytes are left (never 0 while reading).
    Length(u64),
    /// A chunked body, framed by the shared decoder.
    Chunked(ChunkedDecoder),
    /// Everything until the server closes.
    UntilClose,
}

/// Where the reader is in the current response.
#[derive(Clone, Debug)]
enum Phase {
    /// No response is expected: before the first [`ResponseReader::start`] or after one ended.
    Idle,
    /// Reading the head (of the final response or of an interim 1xx).
    Head,
    /// Reading the body of the final response.
    Body(Body),
}

/// What the head of one response says, taken out of the parse so the buffer can be reused.
#[derive(Clone, Copy, Debug)]
struct HeadInfo {
    /// Bytes the head occupies.
    len: usize,
    status: u16,
    http10: bool,
    content_length: Option<u64>,
    /// Transfer-Encoding is present.
    transfer_encoding: bool,
    /// chunked is the final transfer coding.
    chunked: bool,
    close: bool,
    keep_alive: bool,
}

/// The outcome of [`ResponseReader::read_head`].
enum HeadRead {
    /// The head is complete after this many bytes of the input.
    Complete(usize, HeadInfo),
    /// This many bytes of the input were buffered; the head is not complete yet.
    Partial(usize),
}

/// Reads responses one after another from a connection's plaintext; reuses its buffer, so
/// steady-state reading allocates nothing.
#[derive(Clone, Debug)]
pub struct ResponseReader {
    phase: Phase,
    /// The head so far, when it arrived split across feeds; empty otherwise.
    head: Vec<u8>,
    /// The request was HEAD: the response has no body whatever its headers say.
    head_request: bool,
    /// Some byte of the current response (interim ones included) has been seen.
    started: bool,
    /// The final response's status, once its head is parsed.
    status: u16,
    keep_alive: bool,
    /// Body bytes of the current response so far.
    body_len: u64,
    /// The Content-Length, for the short-body error.
    expected: u64,
}

impl Default for ResponseReader {
    fn default() -> Self {
        Self::new()
    }
}

impl ResponseReader {
    /// A reader expecting no response until [`ResponseReader::start`].
    pub fn new() -> Self {
        ResponseReader {
            phase: Phase::Idle,
            head: Vec::new(),
            head_request: false,
            started: false,
            status: 0,
            keep_alive: false,
            body_len: 0,
            expected: 0,
        }
    }

    /// Prepares for the response to the next request; `head_request` = it was a HEAD (no body
    /// whatever the headers say). Abandons any response still being read.
    pub fn start(&mut self, head_request: bool) {
        self.phase = Phase::Head;
        // clear keeps the capacity: a later split head is gathered without allocating.
        self.head.clear();
        self.head_request = head_request;
        self.started = false;
        self.status = 0;
        self.keep_alive = false;
        self.body_len = 0;
        self.expected = 0;
    }

    /// True once any byte of the current response has been seen (for time-to-first-byte).
    pub fn started(&self) -> bool {
        self.started
    }

    /// Feeds plaintext; may be called with any split of the stream. Consumes nothing while no
    /// response is expected (before [`ResponseReader::start`], or once one has ended).
    ///
    /// # Errors
    ///
    /// A malformed or oversized head, an invalid Content-Length, or bad chunked framing; the
    /// connection should then be closed.
    pub fn feed(&mut self, input: &[u8]) -> Result<Step, ResponseError> {
        let mut step = Step {
            consumed: 0,
            body: 0..0,
            body_bytes: 0,
            done: None,
        };
        // A loop because an interim 1xx head may be followed by the final head in one input.
        loop {
            match self.phase {
                Phase::Idle => return Ok(step),
                Phase::Head => {
                    let rest = &input[step.consumed..];
                    if rest.is_empty() {
                        return Ok(step);
                    }
                    self.started = true;
                    let info = match self.read_head(rest)? {
                        HeadRead::Complete(used, info) => {
                            step.consumed += used;
                            info
                        }
                        HeadRead::Partial(used) => {
                            // Buffering stops at the first empty line, which may have been
                            // one before the status line; the head then goes on in the rest.
                            step.consumed += used;
                            continue;
                        }
                    };
                    if (100..200).contains(&info.status) {
                        // Interim: its fields say nothing about the final response.
                        continue;
                    }
                    if let Some(response) = self.begin_body(&info) {
                        step.done = Some(response);
                        return Ok(step);
                    }
                }
                Phase::Body(ref mut body) => {
                    let at = step.consumed;
                    let rest = &input[at..];
                    let (used, data, ended, copyable) = match body {
                        Body::Length(left) => {
                            let take =
                                usize::try_from(*left).map_or(rest.len(), |l| l.min(rest.len()));
                            *left -= take as u64;
                            (take, take as u64, *left == 0, true)
                        }
                        Body::Chunked(decoder) => {
                            let progress = decoder.feed(rest)?;
                            (progress.consumed, progress.data, progress.done, false)
                        }
                        Body::UntilClose => (rest.len(), rest.len() as u64, false, true),
                    };
                    step.consumed += used;
                    step.body_bytes += data;
                    if copyable {
                        step.body = at..at + used;
                    }
                    self.body_len += data;
                    if ended {
                        step.done = Some(self.end());
                    }
                    return Ok(step);
                }
            }
        }
    }

    /// The connection reached EOF: completes a body delimited by close, or reports a short
    /// body / missing response.
    ///
    /// # Errors
    ///
    /// [`ResponseError::NoResponse`] when no byte of the response came (also when none was
    /// expected), [`ResponseError::ShortHead`] inside a head, [`ResponseError::ShortBody`] and
    /// [`ResponseError::ShortChunkedBody`] inside a body that has its own end.
    pub fn finish_on_eof(&mut self) -> Result<Response, ResponseError> {
        match &self.phase {
            Phase::Idle => Err(ResponseError::NoResponse),
            Phase::Head if !self.started => Err(ResponseError::NoResponse),
            Phase::Head => Err(ResponseError::ShortHead {
                received: self.head.len(),
            }),
            Phase::Body(Body::Length(_)) => Err(ResponseError::ShortBody {
                expected: self.expected,
                received: self.body_len,
            }),
            Phase::Body(Body::Chunked(_)) => Err(ResponseError::ShortChunkedBody {
                received: self.body_len,
            }),
            Phase::Body(Body::UntilClose) => Ok(self.end()),
        }
    }

    /// Parses the head from `input` (after what is buffered): either it completes, using a
    /// prefix of `input`, or a prefix of `input` is buffered and more is needed.
    fn read_head(&mut self, input: &[u8]) -> Result<HeadRead, ResponseError> {
        if self.head.is_empty() {
            // The usual case, a head within one read, is parsed in place without copying.
            if let Some(info) = parse_head(input)? {
                return Ok(HeadRead::Complete(info.len, info));
            }
        }
        let before = self.head.len();
        // Buffer only up to the first possible end of the head, so body bytes that came with
        // it are not copied, and never past the cap: a head that fits completes within it.
        let take = head_end(&self.head, input)
            .unwrap_or(input.len())
            .min(MAX_HEAD - before);
        self.head.extend_from_slice(&input[..take]);
        match parse_head(&self.head)? {
            Some(info) => {
                self.head.clear();
                Ok(HeadRead::Complete(info.len - before, info))
            }
            None if self.head.len() >= MAX_HEAD => Err(ResponseError::HeadTooLarge),
            None => Ok(HeadRead::Partial(take)),
        }
    }

    /// Sets up the body of a final response; returns the response when it has no body.
    fn begin_body(&mut self, info: &HeadInfo) -> Option<Response> {
        self.status = info.status;
        self.keep_alive = !info.close && (!info.http10 || info.keep_alive);
        let no_body = self.head_request || matches!(info.status, 204 | 304);
        let body = if no_body {
            None
        } else if info.transfer_encoding {
            // RFC 9112 section 6.3: Transfer-Encoding overrides Content-Length, and a final
            // coding other than chunked leaves only the close to end the body.
            Some(if info.chunked {
                Body::Chunked(ChunkedDecoder::new())
            } else {
                Body::UntilClose
            })
        } else {
            match info.content_length {
                Some(0) => None,
                Some(n) => Some(Body::Length(n)),
                None => Some(Body::UntilClose),
            }
        };
        match body {
            None => Some(self.end()),
            Some(body) => {
                if matches!(body, Body::UntilClose) {
                    self.keep_alive = false;
                }
                self.expected = info.content_length.unwrap_or(0);
                self.phase = Phase::Body(body);
                None
            }
        }
    }

    /// Ends the current response: no more is expected until the next start.
    fn end(&mut self) -> Response {
        self.phase = Phase::Idle;
        Response {
            status: self.status,
            keep_alive: self.keep_alive,
            body_len: self.body_len,
        }
    }
}

/// Parses a response head at the start of `buf`; None if incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<HeadInfo>, ResponseError> {
    // Uninitialised slots: httparse writes each before exposing it, and zeroing all 64 on
    // every response would be wasted work.
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buf,
        &mut slots,
    ) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => return Err(ResponseError::MalformedHead(error)),
    };
    if len > MAX_HEAD {
        return Err(ResponseError::HeadTooLarge);
    }
    let (Some(version), Some(status)) = (response.version, response.code) else {
        // A complete parse always sets both; treat the impossible as a bad status line.
        return Err(ResponseError::MalformedHead(httparse::Error::Status));
    };
    let mut info = HeadInfo {
        len,
        status,
        http10: version == 0,
        content_length: None,
        transfer_encoding: false,
        chunked: false,
        close: false,
        keep_alive: false,
    };
    for header in response.headers.iter() {
        let name = header.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            // A list of equal values ("5, 5") is one length (RFC 9110 section 8.6).
            for item in header.value.split(|&b| b == b',') {
                let n = parse_length(trim_ows(item)).ok_or(ResponseError::InvalidContentLength)?;
                if info.content_length.is_some_and(|seen| seen != n) {
                    return Err(ResponseError::InvalidContentLength);
                }
                info.content_length = Some(n);
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            info.transfer_encoding = true;
            // Only the last coding of the last field decides; any later field overrides.
            if let Some(last) = header.value.rsplit(|&b| b == b',').next() {
                info.chunked = trim_ows(last).eq_ignore_ascii_case(b"chunked");
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in header.value.split(|&b| b == b',') {
                let token = trim_ows(token);
                if token.eq_ignore_ascii_case(b"close") {
                    info.close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    info.keep_alive = true;
                }
            }
        }
    }
    Ok(Some(info))
}

/// Where in `input` the head could end: just past the first LF that completes an empty line
/// (CRLF CRLF, or LF LF as httparse also accepts), looking back into `buffered` for the bytes
/// before `input`. None if no such LF is in `input`.
fn head_end(buffered: &[u8], input: &[u8]) -> Option<usize> {
    let (mut back2, mut back1) = match buffered {
        [.., a, b] => (*a, *b),
        [b] => (0, *b),
        [] => (0, 0),
    };
    for (i, &byte) in input.iter().enumerate() {
        if byte == b'\n' && (back1 == b'\n' || (back1 == b'\r' && back2 == b'\n')) {
            return Some(i + 1);
        }
        back2 = back1;
        back1 = byte;
    }
    None
}

/// Parses 1..=20 ASCII decimal digits fitting a u64.
fn parse_length(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    s.iter().try_fold(0u64, |value, &b| {
        if b.is_ascii_digit() {
            value.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// Trims optional whitespace (SP and HTAB, RFC 9110 section 5.6.3) from both ends.
fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const OK: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world";

    /// Feeds `input` in the given pieces after one start; returns the response, the total
    /// consumed and the body bytes gathered through `Step::body`.
    fn read_in_pieces(
        reader: &mut ResponseReader,
        pieces: &[&[u8]],
    ) -> (Option<Response>, usize, Vec<u8>, u64) {
        let mut done = None;
        let mut consumed = 0;
        let mut body = Vec::new();
        let mut body_bytes = 0;
        for piece in pieces {
            let step = reader.feed(piece).unwrap();
            assert!(step.consumed <= piece.len());
            assert!(step.body.end <= step.consumed);
            body.extend_from_slice(&piece[step.body.clone()]);
            body_bytes += step.body_bytes;
            consumed += step.consumed;
            if step.done.is_some() {
                assert!(done.is_none(), "two responses from one start");
                done = step.done;
            }
        }
        (done, consumed, body, body_bytes)
    }

    fn read_all(head_request: bool, input: &[u8]) -> Result<Step, ResponseError> {
        let mut reader = ResponseReader::new();
        reader.start(head_request);
        reader.feed(input)
    }

    #[test]
    fn content_length_split_at_every_byte() {
        let expected = Response {
            status: 200,
            keep_alive: true,
            body_len: 11,
        };
        let mut reader = ResponseReader::new();
        for split in 0..=OK.len() {
            reader.start(false);
            assert!(!reader.started());
            let (done, consumed, body, body_bytes) =
                read_in_pieces(&mut reader, &[&OK[..split], &OK[split..]]);
            assert_eq!(done, Some(expected), "split at {split}");
            assert_eq!(consumed, OK.len(), "split at {split}");
            assert_eq!(body, b"hello world", "split at {split}");
            assert_eq!(body_bytes, 11, "split at {split}");
            assert!(reader.started());
        }
        // And one byte at a time.
        reader.start(false);
        let pieces: Vec<&[u8]> = OK.chunks(1).collect();
        let (done, consumed, body, _) = read_in_pieces(&mut reader, &pieces);
        assert_eq!(done, Some(expected));
        assert_eq!(consumed, OK.len());
        assert_eq!(body, b"hello world");
    }

    #[test]
    fn pipelined_responses_in_one_buffer() {
        let second = b"HTTP/1.1 404 Not Found\r\nContent-Length: 14\r\nConnection: close\r\n\r\n404 Not Found\n";
        let buf = [OK, second].concat();
        let mut reader = ResponseReader::new();
        reader.start(false);
        let step = reader.feed(&buf).unwrap();
        assert_eq!(
            step,
            Step {
                consumed: OK.len(),
                body: OK.len() - 11..OK.len(),
                body_bytes: 11,
                done: Some(Response {
                    status: 200,
                    keep_alive: true,
                    body_len: 11
                }),
            }
        );
        // Without a start nothing more is taken.
        assert_eq!(reader.feed(&buf[step.consumed..]).unwrap().consumed, 0);
        reader.start(false);
        let rest = &buf[step.consumed..];
        let step = reader.feed(rest).unwrap();
        assert_eq!(step.consumed, second.len());
        assert_eq!(&rest[step.body.clone()], b"404 Not Found\n");
        assert_eq!(
            step.done,
            Some(Response {
                status: 404,
                keep_alive: false,
                body_len: 14
            })
        );
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=v\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Sum: 1\r\n\r\n";
        let buf = [&response[..], b"HTTP/1.1 200 OK\r\n"].concat();
        let step = read_all(false, &buf).unwrap();
        assert_eq!(
            step,
            Step {
                consumed: response.len(),
                body: 0..0,
                body_bytes: 31,
                done: Some(Response {
                    status: 200,
                    keep_alive: true,
                    body_len: 31
                }),
            }
        );
        let mut reader = ResponseReader::new();
        reader.start(false);
        let pieces: Vec<&[u8]> = response.chunks(3).collect();
        let (done, consumed, body, body_bytes) = read_in_pieces(&mut reader, &pieces);
        assert_eq!(done.map(|r| r.body_len), Some(31));
        assert_eq!(consumed, response.len());
        assert!(body.is_empty());
        assert_eq!(body_bytes, 31);
    }

    #[test]
    fn chunked_overrides_content_length() {
        let response =
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        let step = read_all(false, response).unwrap();
        assert_eq!(step.consumed, response.len());
        assert_eq!(step.done.map(|r| r.body_len), Some(0));
    }

    #[test]
    fn bad_chunked_framing_is_an_error() {
        let response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert_eq!(
            read_all(false, response),
            Err(ResponseError::Chunked(ChunkError::InvalidSize))
        );
    }

    #[test]
    fn interim_100_continue_is_skipped() {
        let interim = b"HTTP/1.1 100 Continue\r\n\r\n";
        let buf = [&interim[..], OK].concat();
        let step = read_all(false, &buf).unwrap();
        assert_eq!(step.consumed, buf.len());
        assert_eq!(&buf[step.body.clone()], b"hello world");
        assert_eq!(
            step.done,
            Some(Response {
                status: 200,
                keep_alive: true,
                body_len: 11
            })
        );
        // The interim head alone: consumed, started, nothing done yet.
        let mut reader = ResponseReader::new();
        reader.start(false);
        let step = reader.feed(interim).unwrap();
        assert_eq!(step.consumed, interim.len());
        assert_eq!(step.done, None);
        assert!(reader.started());
        assert_eq!(reader.feed(OK).unwrap().done.map(|r| r.status), Some(200));
    }

    #[test]
    fn head_response_has_no_body() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 228\r\n\r\n";
        let buf = [&head[..], b"HTTP/1.1 200 OK\r\n"].concat();
        let step = read_all(true, &buf).unwrap();
        assert_eq!(
            step,
            Step {
                consumed: head.len(),
                body: 0..0,
                body_bytes: 0,
                done: Some(Response {
                    status: 200,
                    keep_alive: true,
                    body_len: 0
                }),
            }
        );
    }

    #[test]
    fn no_body_statuses() {
        for status in ["204 No Content", "304 Not Modified"] {
            let head = format!("HTTP/1.1 {status}\r\nContent-Length: 5\r\n\r\n");
            let step = read_all(false, head.as_bytes()).unwrap();
            assert_eq!(step.consumed, head.len());
            assert_eq!(step.done.map(|r| r.body_len), Some(0));
        }
        let zero = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            read_all(false, zero).unwrap().done.map(|r| r.body_len),
            Some(0)
        );
    }

    #[test]
    fn http10_close_delimited_body() {
        let mut reader = ResponseReader::new();
        reader.start(false);
        let step = reader
            .feed(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nabc")
            .unwrap();
        assert_eq!(step.done, None);
        assert_eq!(step.body_bytes, 3);
        let step = reader.feed(b"defg").unwrap();
        assert_eq!(
            (step.consumed, step.body.clone(), step.body_bytes),
            (4, 0..4, 4)
        );
        assert_eq!(
            reader.finish_on_eof(),
            Ok(Response {
                status: 200,
                keep_alive: false,
                body_len: 7
            })
        );
        // A close-delimited body is never keep-alive, whatever the server says.
        reader.start(false);
        reader
            .feed(b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\nxy")
            .unwrap();
        assert_eq!(
            reader.finish_on_eof(),
            Ok(Response {
                status: 200,
                keep_alive: false,
                body_len: 2
            })
        );
    }

    #[test]
    fn short_body_names_expected_and_received() {
        let mut reader = ResponseReader::new();
        reader.start(false);
        let step = reader.feed(&OK[..OK.len() - 4]).unwrap();
        assert_eq!(step.done, None);
        let error = reader.finish_on_eof().unwrap_err();
        assert_eq!(
            error,
            ResponseError::ShortBody {
                expected: 11,
                received: 7
            }
        );
        assert_eq!(
            error.to_string(),
            "body cut short by EOF: expected 11 bytes, received 7"
        );
        reader.start(false);
        reader
            .feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
            .unwrap();
        assert_eq!(
            reader.finish_on_eof(),
            Err(ResponseError::ShortChunkedBody { received: 3 })
        );
    }

    #[test]
    fn eof_before_or_inside_a_head() {
        let mut reader = ResponseReader::new();
        reader.start(false);
        assert_eq!(reader.finish_on_eof(), Err(ResponseError::NoResponse));
        reader.start(false);
        reader.feed(b"HTTP/1.1 200").unwrap();
        assert_eq!(
            reader.finish_on_eof(),
            Err(ResponseError::ShortHead { received: 12 })
        );
    }

    #[test]
    fn malformed_heads_are_errors() {
        for (bad, error) in [
            (&b"HTTP/2.0 200 OK\r\n\r\n"[..], httparse::Error::Version),
            (b"\x16\x03\x03\x00\x02\x02\x28", httparse::Error::Version),
            (b"HTTP/1.1 2x0 OK\r\n\r\n", httparse::Error::Status),
            (
                b"HTTP/1.1 200 OK\r\nBad Name: v\r\n\r\n",
                httparse::Error::HeaderName,
            ),
        ] {
            assert_eq!(
                read_all(false, bad),
                Err(ResponseError::MalformedHead(error)),
                "{bad:?}"
            );
        }
        let error = read_all(false, b"HTTP/2.0 200 OK\r\n\r\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "malformed response head: invalid HTTP version"
        );
        let many = format!(
            "HTTP/1.1 200 OK\r\n{}\r\n",
            "X: v\r\n".repeat(MAX_HEADERS + 1)
        );
        assert_eq!(
            read_all(false, many.as_bytes()),
            Err(ResponseError::MalformedHead(
                httparse::Error::TooManyHeaders
            ))
        );
    }

    #[test]
    fn head_over_64_kib_is_an_error() {
        let fixed = b"HTTP/1.1 200 OK\r\nX: \r\nContent-Length: 0\r\n\r\n".len();
        let head_of = |len: usize| {
            format!(
                "HTTP/1.1 200 OK\r\nX: {}\r\nContent-Length: 0\r\n\r\n",
                "v".repeat(len - fixed)
            )
            .into_bytes()
        };
        let fits = head_of(MAX_HEAD);
        assert_eq!(read_all(false, &fits).unwrap().consumed, MAX_HEAD);
        let mut reader = ResponseReader::new();
        reader.start(false);
        let pieces: Vec<&[u8]> = fits.chunks(1000).collect();
        let (done, consumed, _, _) = read_in_pieces(&mut reader, &pieces);
        assert_eq!((done.map(|r| r.status), consumed), (Some(200), MAX_HEAD));

        let too_large = head_of(MAX_HEAD + 1);
        assert_eq!(
            read_all(false, &too_large),
            Err(ResponseError::HeadTooLarge)
        );
        reader.start(false);
        let mut result = Ok(());
        for piece in too_large.chunks(1000) {
            if let Err(error) = reader.feed(piece) {
                result = Err(error);
                break;
            }
        }
        assert_eq!(result, Err(ResponseError::HeadTooLarge));
    }

    #[test]
    fn content_length_rules() {
        let same = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2, 2\r\n\r\nab";
        assert_eq!(
            read_all(false, same).unwrap().done.map(|r| r.body_len),
            Some(2)
        );
        for bad in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nabc",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n",
        ] {
            assert_eq!(
                read_all(false, bad),
                Err(ResponseError::InvalidContentLength),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn body_range_over_three_pieces() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n";
        let body = b"0123456789abcdefghij";
        let tail = b"HTTP/1.1 204 No Content\r\n\r\n";
        let stream = [&head[..], body, tail].concat();
        // Piece 1 ends inside the head, piece 2 inside the body, piece 3 holds the rest of the
        // body and the next response.
        let cuts = [head.len() - 5, head.len() + 7, stream.len()];
        let mut reader = ResponseReader::new();
        reader.start(false);
        let mut gathered = Vec::new();
        let mut at = 0;
        let mut done = None;
        for end in cuts {
            let piece = &stream[at..end];
            let step = reader.feed(piece).unwrap();
            gathered.extend_from_slice(&piece[step.body.clone()]);
            at += step.consumed;
            done = done.or(step.done);
        }
        assert_eq!(gathered, body);
        assert_eq!(at, head.len() + body.len());
        assert_eq!(done.map(|r| r.body_len), Some(20));
        reader.start(false);
        let step = reader.feed(&stream[at..]).unwrap();
        assert_eq!(step.consumed, tail.len());
        assert_eq!(step.done.map(|r| r.status), Some(204));
    }

    #[test]
    fn keep_alive_rules() {
        let cases: [(&[u8], bool); 8] = [
            (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true),
            (
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                false,
            ),
            (
                b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, CLOSE\r\nContent-Length: 0\r\n\r\n",
                false,
            ),
            (
                b"HTTP/1.1 200 OK\r\nConnection: closed\r\nContent-Length: 0\r\n\r\n",
                true,
            ),
            (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false),
            (
                b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
                true,
            ),
            (
                b"HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\n\r\n",
                false,
            ),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false),
        ];
        for (response, keep_alive) in cases {
            let mut reader = ResponseReader::new();
            reader.start(false);
            let step = reader.feed(response).unwrap();
            let done = step.done.or_else(|| reader.finish_on_eof().ok());
            assert_eq!(
                done.map(|r| r.keep_alive),
                Some(keep_alive),
                "{:?}",
                String::from_utf8_lossy(response)
            );
        }
    }

    #[test]
    fn interim_and_chunked_split_at_every_byte() {
        let stream: &[u8] = b"HTTP/1.1 100 Continue\r\nX: 1\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        let mut reader = ResponseReader::new();
        for split in 0..=stream.len() {
            reader.start(false);
            let (done, consumed, _, body_bytes) =
                read_in_pieces(&mut reader, &[&stream[..split], &stream[split..]]);
            let expected = Response {
                status: 200,
                keep_alive: true,
                body_len: 3,
            };
            assert_eq!(done, Some(expected), "split at {split}");
            assert_eq!(
                (consumed, body_bytes),
                (stream.len(), 3),
                "split at {split}"
            );
        }
    }

    #[test]
    fn body_after_a_split_head_is_not_buffered() {
        let mut reader = ResponseReader::new();
        reader.start(false);
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 16384\r\n\r\n";
        let rest = [&head[10..], &[b'x'; 16384][..]].concat();
        let (done, consumed, body, _) = read_in_pieces(&mut reader, &[&head[..10], &rest]);
        assert_eq!(done.map(|r| r.body_len), Some(16384));
        assert_eq!(consumed, head.len() + 16384);
        assert_eq!(body.len(), 16384);
        assert!(reader.head.capacity() < 1024, "{}", reader.head.capacity());
    }

    #[test]
    fn steady_state_reuses_the_head_buffer() {
        let mut reader = ResponseReader::new();
        reader.start(false);
        read_in_pieces(&mut reader, &[&OK[..10], &OK[10..]]);
        let capacity = reader.head.capacity();
        let ptr = reader.head.as_ptr();
        for _ in 0..10 {
            reader.start(false);
            let (done, ..) = read_in_pieces(&mut reader, &[&OK[..10], &OK[10..]]);
            assert!(done.is_some());
            assert_eq!(reader.head.capacity(), capacity);
            assert_eq!(reader.head.as_ptr(), ptr);
        }
    }
}
