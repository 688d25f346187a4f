//! The HTTP exchange of one connection over the plaintext its session decrypted: parsing
//! request heads, consuming and discarding request bodies, answering (the hello page,
//! `/bytes/N` streamed in bounded windows, `/sink`, errors) and deciding whether the
//! connection stays open after each answer. TLS, deadlines and closing stay in [`super`].

use std::io::{self, BufRead, Write};

use common::chunked::ChunkedDecoder;
use common::io::{OUT_WINDOW, would_block};
use common::pattern;
use common::session::Session;

use super::{Conn, Ctx, Phase};
use crate::http::{self, Action, BodyFraming, Head, Request, ResponseHead, Status};

/// What is left of a request body being discarded.
pub(super) enum BodyLeft {
    /// This many bytes (never 0 while reading).
    Length(u64),
    /// A chunked body, framed by the shared decoder.
    Chunked(ChunkedDecoder),
}

impl<S: Session> Conn<S> {
    /// Runs HTTP over the plaintext rustls has decrypted. Returns whether anything moved;
    /// `Err` means the connection must be dropped at once.
    pub(super) fn pump_http(&mut self, ctx: &mut Ctx<'_>) -> Result<bool, ()> {
        let mut progress = false;
        loop {
            match &mut self.phase {
                Phase::Handshake | Phase::Linger | Phase::Failed => return Ok(progress),
                Phase::Idle => {
                    if self.closing || self.unflushed >= OUT_WINDOW {
                        return Ok(progress);
                    }
                    if !self.inbuf.is_empty() {
                        match http::parse_head(&self.inbuf, &ctx.settings.limits) {
                            Head::Complete(req) => {
                                let early = self.early > 0;
                                self.consume_inbuf(req.head_len);
                                self.begin(req, early, ctx)?;
                                progress = true;
                                continue;
                            }
                            Head::Invalid(status) => {
                                self.send_error(status, None, false, false, ctx)?;
                                return Ok(true);
                            }
                            Head::Incomplete => {}
                        }
                    }
                    let room = ctx.settings.limits.max_header_bytes + 1
                        - self.inbuf.len().min(ctx.settings.limits.max_header_bytes);
                    let was_empty = self.inbuf.is_empty();
                    let n = self.pull(room, ctx)?;
                    if n == 0 {
                        return Ok(progress);
                    }
                    if was_empty {
                        self.head_started = ctx.now;
                    }
                    progress = true;
                }
                Phase::Body { req, left, count } => {
                    let req = *req;
                    let from_inbuf = !self.inbuf.is_empty();
                    let (used, data, done) = if from_inbuf {
                        feed_body(left, &self.inbuf)?
                    } else {
                        let mut rd = self.session.reader();
                        match rd.fill_buf() {
                            Ok([]) => {
                                self.read_eof = true;
                                return Err(());
                            }
                            Ok(buf) => {
                                let r = feed_body(left, buf)?;
                                rd.consume(r.0);
                                ctx.stats.bytes_in(r.0 as u64);
                                r
                            }
                            Err(e) if would_block(&e) => {
                                return Ok(progress);
                            }
                            Err(_) => {
                                self.read_eof = true;
                                return Err(());
                            }
                        }
                    };
                    if from_inbuf {
                        self.inbuf.drain(..used);
                        self.early = self.early.saturating_sub(used);
                    }
                    *count += data;
                    let total = *count;
                    progress |= used > 0;
                    if req.action != Action::Sink && total > ctx.settings.limits.max_body {
                        self.send_error(
                            Status::PayloadTooLarge,
                            None,
                            req.http10,
                            req.head_only,
                            ctx,
                        )?;
                        return Ok(true);
                    }
                    if done {
                        self.respond(req, total, ctx)?;
                    } else if used == 0 {
                        return Ok(progress);
                    }
                }
                Phase::Stream { remaining, offset } => {
                    while *remaining > 0 && self.unflushed < OUT_WINDOW {
                        let chunk = pattern::chunk(*offset, *remaining);
                        let n = self.session.writer().write(chunk).map_err(|_| ())?;
                        if n == 0 {
                            return Err(());
                        }
                        *offset += n as u64;
                        *remaining -= n as u64;
                        self.unflushed += n;
                        ctx.stats.bytes_out(n as u64);
                        progress = true;
                    }
                    if *remaining > 0 {
                        return Ok(progress);
                    }
                    let keep = !self.closing;
                    self.response_done(keep, ctx);
                }
            }
        }
    }

    /// Copies up to `room` bytes of decrypted plaintext into `inbuf`.
    fn pull(&mut self, room: usize, ctx: &mut Ctx<'_>) -> Result<usize, ()> {
        let mut rd = self.session.reader();
        match rd.fill_buf() {
            Ok([]) => {
                // close_notify: the client will send nothing more.
                self.read_eof = true;
                Ok(0)
            }
            Ok(buf) => {
                let take = buf.len().min(room);
                self.inbuf.extend_from_slice(&buf[..take]);
                rd.consume(take);
                ctx.stats.bytes_in(take as u64);
                Ok(take)
            }
            Err(e) if would_block(&e) => Ok(0),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                self.read_eof = true;
                Ok(0)
            }
            Err(_) => Err(()),
        }
    }

    /// Drops `n` parsed bytes from the front of `inbuf`.
    fn consume_inbuf(&mut self, n: usize) {
        self.inbuf.drain(..n);
        self.early = self.early.saturating_sub(n);
    }

    /// A complete request head arrived (`early`: it started in TLS early data).
    fn begin(&mut self, req: Request, early: bool, ctx: &mut Ctx<'_>) -> Result<(), ()> {
        if early && !req.safe {
            // RFC 8470: an attacker can replay early data, so only a safe, idempotent method
            // is served from it; the client may send this one again after the handshake.
            return self.send_error(Status::TooEarly, None, req.http10, req.head_only, ctx);
        }
        if let Action::Error(status) = req.action {
            return self.send_error(status, req.allow, req.http10, req.head_only, ctx);
        }
        match req.body {
            BodyFraming::None | BodyFraming::Length(0) => return self.respond(req, 0, ctx),
            _ if req.expect_continue => self.send_raw(b"HTTP/1.1 100 Continue\r\n\r\n", ctx)?,
            _ => {}
        }
        match req.body {
            BodyFraming::None | BodyFraming::Length(0) => Ok(()),
            BodyFraming::Length(n) => {
                self.phase = Phase::Body {
                    req,
                    left: BodyLeft::Length(n),
                    count: 0,
                };
                self.last_read = ctx.now;
                Ok(())
            }
            BodyFraming::Chunked => {
                self.phase = Phase::Body {
                    req,
                    left: BodyLeft::Chunked(ChunkedDecoder::new()),
                    count: 0,
                };
                self.last_read = ctx.now;
                Ok(())
            }
        }
    }

    /// Answers `req`, whose body (`body_len` bytes) has been consumed.
    fn respond(&mut self, req: Request, body_len: u64, ctx: &mut Ctx<'_>) -> Result<(), ()> {
        // A client that half-closed after pipelining still gets every answer; the connection
        // closes once none is left (see on_ready).
        let keep_alive = req.keep_alive && !self.shutting_down;
        let mut head = ResponseHead {
            status: Status::Ok,
            content_type: http::CONTENT_TYPE_TEXT,
            content_length: 0,
            keep_alive,
            http10: req.http10,
            allow: None,
            date: ctx.date,
        };
        match req.action {
            Action::Hello => {
                head.content_type = http::CONTENT_TYPE_HTML;
                head.content_length = http::HELLO_PAGE.len() as u64;
                self.send(&head, http::HELLO_PAGE, req.head_only, ctx)?;
            }
            Action::Sink => {
                let mut num = itoa::Buffer::new();
                let digits = num.format(body_len).as_bytes();
                let mut body = [0u8; 21];
                body[..digits.len()].copy_from_slice(digits);
                body[digits.len()] = b'\n';
                let body = &body[..digits.len() + 1];
                head.content_length = body.len() as u64;
                self.send(&head, body, req.head_only, ctx)?;
            }
            Action::Bytes(n) => {
                head.content_type = http::CONTENT_TYPE_BYTES;
                head.content_length = n;
                self.send(&head, &[], req.head_only, ctx)?;
                ctx.stats.request(Status::Ok);
                if !req.head_only && n > 0 {
                    self.closing |= !keep_alive;
                    self.phase = Phase::Stream {
                        remaining: n,
                        offset: 0,
                    };
                } else {
                    self.response_done(keep_alive, ctx);
                }
                return Ok(());
            }
            Action::Error(status) => {
                return self.send_error(status, req.allow, req.http10, req.head_only, ctx);
            }
        }
        ctx.stats.request(Status::Ok);
        self.response_done(keep_alive, ctx);
        Ok(())
    }

    /// Answers with an error status and closes after it (a HEAD request gets the head alone).
    fn send_error(
        &mut self,
        status: Status,
        allow: Option<&'static str>,
        http10: bool,
        head_only: bool,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), ()> {
        let body = status.error_body();
        let head = ResponseHead {
            status,
            content_type: http::CONTENT_TYPE_TEXT,
            content_length: body.len() as u64,
            keep_alive: false,
            http10,
            allow,
            date: ctx.date,
        };
        self.send(&head, body, head_only, ctx)?;
        ctx.stats.request(status);
        self.response_done(false, ctx);
        Ok(())
    }

    /// Queues a head and a (small) body as one write, so they share a TLS record; the answer to
    /// a HEAD request (`head_only`) leaves the body out and keeps its Content-Length. The body is
    /// copied behind the head in the reused scratch buffer: rustls's vectored write collects
    /// its slices into a fresh Vec, a copy of a few hundred bytes does not allocate.
    fn send(
        &mut self,
        head: &ResponseHead<'_>,
        body: &[u8],
        head_only: bool,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), ()> {
        ctx.scratch.clear();
        http::write_head(ctx.scratch, head);
        if !head_only {
            ctx.scratch.extend_from_slice(body);
        }
        let total = ctx.scratch.len();
        let n = self.session.writer().write(ctx.scratch).map_err(|_| ())?;
        if n != total {
            // With no rustls buffer limit this cannot happen; if it does, the response is
            // truncated and the connection must not go on.
            return Err(());
        }
        self.unflushed += total;
        ctx.stats.bytes_out(total as u64);
        Ok(())
    }

    /// Queues bytes that are not a response of their own (an interim `100 Continue`).
    fn send_raw(&mut self, bytes: &[u8], ctx: &mut Ctx<'_>) -> Result<(), ()> {
        let n = self.session.writer().write(bytes).map_err(|_| ())?;
        if n != bytes.len() {
            return Err(());
        }
        self.unflushed += n;
        ctx.stats.bytes_out(n as u64);
        Ok(())
    }

    fn response_done(&mut self, keep_alive: bool, ctx: &mut Ctx<'_>) {
        self.phase = Phase::Idle;
        self.idle_since = ctx.now;
        self.head_started = ctx.now;
        // A response that was already under way when shutdown began promised keep-alive;
        // the connection still closes once it is done.
        if !keep_alive || self.shutting_down {
            self.closing = true;
        }
    }
}

/// Feeds body bytes to the framing; returns (bytes consumed, body bytes among them, done).
fn feed_body(left: &mut BodyLeft, input: &[u8]) -> Result<(usize, u64, bool), ()> {
    match left {
        BodyLeft::Length(rem) => {
            let take = (*rem).min(input.len() as u64);
            *rem -= take;
            Ok((take as usize, take, *rem == 0))
        }
        BodyLeft::Chunked(dec) => {
            // Which framing rule broke does not change the answer: the body's end is lost, so
            // the connection closes.
            let p = dec.feed(input).map_err(|_| ())?;
            Ok((p.consumed, p.data, p.done))
        }
    }
}
