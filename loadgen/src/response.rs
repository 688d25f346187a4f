//! Sans-I/O reading of HTTP/1.1 responses for the load generator: parses each head with
//! httparse, frames the body (chunked, Content-Length or until close), skips interim 1xx
//! responses and says where one response ends so pipelined ones follow. Sockets and TLS never
//! reach here; the connection feeds plaintext and acts on the [`Step`]s returned.
//!
//! It runs once per response on every connection, so steady-state reading allocates nothing:
//! a head split across reads is gathered in one buffer reused from response to response, and
//! body bytes are only counted (and pointed at for checking), never copied.
//!
//! A keep-alive connection to one URL usually gets the same head byte for byte (a `Date`
//! field changes once a second), so the reader remembers the last head it parsed and what it
//! said: a head that starts the input with exactly those bytes is taken without parsing
//! again. The parse is a function of the head's bytes alone and stops at its first empty
//! line, so it would say the same; anything else is parsed in full.

use std::ops::Range;

use common::chunked::{ChunkError, ChunkedDecoder};

use head::{HeadInfo, head_end, parse_head};

/// Longest response head accepted (status line, fields and the blank line).
pub const MAX_HEAD: usize = 64 * 1024;
/// Most header fields in one response head.
pub const MAX_HEADERS: usize = 64;
/// Longest head the reader remembers to skip parsing its repeats; a longer one is parsed
/// every time rather than held per connection.
const MEMO_HEAD: usize = 1024;

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
    /// The bytes of the last head parsed in place, and what the parse said; empty (and never
    /// allocated) until the connection's second head, so a connection that makes one request
    /// pays nothing for it.
    memo: Vec<u8>,
    memo_info: Option<HeadInfo>,
    /// A head has been parsed in place on this connection.
    parsed_one: bool,
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
            memo: Vec::new(),
            memo_info: None,
            parsed_one: false,
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
            // The usual case, a head within one read: the same bytes as the last head are
            // taken as they were parsed then; other heads are parsed in place without copying.
            if let Some(info) = self.memo_info
                && input.starts_with(&self.memo)
            {
                return Ok(HeadRead::Complete(info.len, info));
            }
            if let Some(info) = parse_head(input)? {
                self.remember(&input[..info.len], info);
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

    /// Keeps a head parsed in place and what it said, from the connection's second head on
    /// and when it is short enough (see [`MEMO_HEAD`]).
    fn remember(&mut self, head: &[u8], info: HeadInfo) {
        if !self.parsed_one {
            self.parsed_one = true;
            return;
        }
        if head.len() > MEMO_HEAD {
            self.memo_info = None;
            return;
        }
        self.memo.clear();
        self.memo.extend_from_slice(head);
        self.memo_info = Some(info);
    }

    /// Sets up the body of a final response; returns the response when it has no body.
    fn begin_body(&mut self, info: &HeadInfo) -> Option<Response> {
        self.status = info.status;
        self.keep_alive = info.connection.persists(info.http10);
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

mod head;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
