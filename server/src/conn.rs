//! One connection's state machine: a `rustls::ServerConnection` (or, for the plain-HTTP floor,
//! a [`Plain`] session: the same code without TLS) with the HTTP/1.1 exchange on top, driven
//! by any byte [`Transport`]. The worker hands it a socket; tests and fuzzers can
//! hand it memory. It reads until the transport would block, answers every complete request
//! in order, streams large bodies in bounded windows, and decides its own deadline.

use std::io::{self, BufRead, Read, Write};
use std::time::Instant;

use common::session::{Plain, Session};
use rustls::ServerConnection;

use crate::config::Settings;
use crate::http::{self, Action, BodyFraming, Head, Request, ResponseHead, Status};
use crate::stats::{FailureCause, HandshakeClass, TimeoutKind, WorkerStats};
use common::chunked::ChunkedDecoder;
use common::io::{OUT_WINDOW, interrupted, would_block};
use common::pattern;

/// The socket readiness a connection waits for, recomputed after every event so the worker
/// re-registers only when it changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wants {
    /// TLS (or plain) input is awaited, or the lingering close drains the peer.
    pub read: bool,
    /// Output is queued for the socket: records, or our own alert.
    pub write: bool,
}

/// A byte stream a connection can run on.
pub trait Transport: Read + Write {
    /// Half-closes the write side (TCP FIN) after our last response.
    fn shutdown_write(&mut self) -> io::Result<()>;
}

impl Transport for mio::net::TcpStream {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

/// What the worker needs to drive a connection, borrowed for one event.
pub struct Ctx<'a> {
    /// The worker's counters.
    pub stats: &'a WorkerStats,
    /// Limits and timeouts.
    pub settings: &'a Settings,
    /// The current `Date` header value.
    pub date: &'a [u8],
    /// The time of this event (read once per poll wakeup).
    pub now: Instant,
    /// A buffer for response heads, reused across requests and connections.
    pub scratch: &'a mut Vec<u8>,
}

/// Whether the worker should keep the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Keep it registered.
    Open,
    /// Deregister and drop it.
    Close,
}

enum Phase {
    /// The TLS handshake is running.
    Handshake,
    /// Waiting for (the rest of) a request head in `inbuf`.
    Idle,
    /// Reading and discarding the body of `req` before answering it.
    Body {
        req: Request,
        left: BodyLeft,
        count: u64,
    },
    /// Streaming a `/bytes/N` body.
    Stream { remaining: u64, offset: u64 },
    /// rustls failed the connection: writing the fatal alert it queued (waiting for writable
    /// events if the socket is full), then lingering like after an HTTP error. Closing at once
    /// would let the kernel answer the client's unread bytes with a reset that discards the
    /// alert still in our send queue.
    Failed,
    /// Our side is done and half-closed: reading what the client still sends until it closes,
    /// so the kernel does not answer unread data with a reset that destroys our last response.
    Linger,
}

/// The fatal alert RFC 8446 asks for where rustls fails a connection without queuing one,
/// for the failures that can come before the server has sent anything. rustls returns these
/// from its record deframer, which has no alert path for them (docs/rustls-findings.md).
/// Every other error is rustls's to answer: it either queued its alert or chose to send none.
fn omitted_alert(err: &rustls::Error) -> Option<rustls::AlertDescription> {
    use rustls::{AlertDescription, Error, PeerMisbehaved};
    match err {
        // "Handshake messages MUST NOT be interleaved with other record types" (§5.1), and a
        // record that does not belong where it arrives gets unexpected_message (§6.2).
        Error::PeerMisbehaved(PeerMisbehaved::MessageInterleavedWithHandshakeMessage) => {
            Some(AlertDescription::UnexpectedMessage)
        }
        _ => None,
    }
}

/// A fatal alert record in plaintext, written by the server itself (see [`omitted_alert`]).
struct OwnAlert {
    record: [u8; 7],
    written: usize,
}

impl OwnAlert {
    fn new(description: rustls::AlertDescription) -> OwnAlert {
        // ContentType alert, legacy_record_version TLS 1.2, length 2, level fatal.
        let record = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, u8::from(description)];
        OwnAlert { record, written: 0 }
    }

    fn is_written(&self) -> bool {
        self.written == self.record.len()
    }

    fn write<W: Write>(&mut self, io: &mut W) -> io::Result<usize> {
        let n = io.write(&self.record[self.written..])?;
        self.written += n;
        Ok(n)
    }
}

enum BodyLeft {
    Length(u64),
    Chunked(ChunkedDecoder),
}

/// One client connection, over TLS or (`Conn<Plain>`) plain TCP.
pub struct Conn<S = ServerConnection> {
    tls: S,
    phase: Phase,
    /// Unparsed plaintext: a partial request head, or heads of pipelined requests.
    inbuf: Vec<u8>,
    /// Plaintext queued in rustls since its output buffer was last empty.
    unflushed: usize,
    /// No further requests will be read; close once the output is flushed.
    closing: bool,
    /// The close_notify alert has been queued.
    notify_sent: bool,
    /// The client closed its side (TCP EOF or close_notify).
    read_eof: bool,
    /// The server is shutting down: answer what is in flight, keep nothing alive.
    shutting_down: bool,
    /// We sent a HelloRetryRequest: rustls forgets it when the retried hello resumes.
    hrr_sent: bool,
    /// Some TLS bytes went out. Until then the peer reads plaintext records, so the server
    /// may send an alert rustls omitted (see [`omitted_alert`]); after, only rustls may.
    wrote_tls: bool,
    /// That alert, as a plaintext record, and how much of it is written.
    own_alert: Option<OwnAlert>,
    /// When each deadline's clock started.
    accepted_at: Instant,
    idle_since: Instant,
    head_started: Instant,
    last_read: Instant,
    last_write: Instant,
    linger_since: Instant,
}

impl Conn<ServerConnection> {
    /// A connection accepted at `now`, about to handshake.
    pub fn new(mut tls: ServerConnection, now: Instant) -> Conn {
        // Our own window (OUT_WINDOW) bounds what we queue; rustls must never refuse part of
        // a response we already committed to.
        tls.set_buffer_limit(None);
        Conn::with(tls, Phase::Handshake, now)
    }
}

impl Conn<Plain> {
    /// A plain-HTTP connection accepted at `now`: no handshake, waiting for a request.
    pub fn plain(now: Instant) -> Conn<Plain> {
        Conn::with(Plain::new(), Phase::Idle, now)
    }
}

impl<S: Session> Conn<S> {
    fn with(tls: S, phase: Phase, now: Instant) -> Conn<S> {
        Conn {
            tls,
            phase,
            inbuf: Vec::new(),
            unflushed: 0,
            closing: false,
            notify_sent: false,
            read_eof: false,
            shutting_down: false,
            hrr_sent: false,
            wrote_tls: false,
            own_alert: None,
            accepted_at: now,
            idle_since: now,
            head_started: now,
            last_read: now,
            last_write: now,
            linger_since: now,
        }
    }

    /// The socket readiness this connection waits for.
    pub fn wants(&self) -> Wants {
        let read = match self.phase {
            Phase::Linger => true,
            Phase::Failed => false,
            _ => !self.read_eof && self.tls.wants_read(),
        };
        let own_alert = self.own_alert.as_ref().is_some_and(|a| !a.is_written());
        Wants {
            read,
            write: self.tls.wants_write() || own_alert,
        }
    }

    /// When this connection times out next, and which timeout that is.
    pub fn deadline(&self, s: &Settings) -> (Instant, TimeoutKind) {
        match self.phase {
            Phase::Handshake => (
                self.accepted_at + s.handshake_timeout,
                TimeoutKind::Handshake,
            ),
            Phase::Linger => (self.linger_since + s.linger_timeout, TimeoutKind::Linger),
            Phase::Stream { .. } | Phase::Failed => {
                (self.last_write + s.send_timeout, TimeoutKind::Send)
            }
            _ if self.tls.wants_write() => (self.last_write + s.send_timeout, TimeoutKind::Send),
            Phase::Body { .. } => (self.last_read + s.body_timeout, TimeoutKind::Body),
            Phase::Idle if !self.inbuf.is_empty() => {
                (self.head_started + s.header_timeout, TimeoutKind::Header)
            }
            Phase::Idle => (self.idle_since + s.keepalive_timeout, TimeoutKind::Idle),
        }
    }

    /// The deadline passed: count it and close (an idle connection gets a close_notify).
    pub fn on_timeout<T: Transport>(&mut self, io: &mut T, ctx: &mut Ctx<'_>) -> Verdict {
        let (_, kind) = self.deadline(ctx.settings);
        ctx.stats.timeout(kind);
        match kind {
            TimeoutKind::Handshake => self.abort(FailureCause::Timeout, None, ctx),
            TimeoutKind::Idle => {
                self.tls.send_close_notify();
                let _ = self.tls.write_tls(io);
                Verdict::Close
            }
            _ => Verdict::Close,
        }
    }

    /// The server is stopping: close what is idle, let what is in flight finish without
    /// keep-alive.
    pub fn begin_shutdown<T: Transport>(&mut self, io: &mut T, ctx: &mut Ctx<'_>) -> Verdict {
        self.shutting_down = true;
        match self.phase {
            Phase::Handshake => self.abort(FailureCause::Shutdown, None, ctx),
            Phase::Idle if self.inbuf.is_empty() && !self.tls.wants_write() => {
                self.tls.send_close_notify();
                let _ = self.tls.write_tls(io);
                Verdict::Close
            }
            Phase::Linger | Phase::Failed => Verdict::Close,
            _ => {
                // A response is in flight (or a request half-read): finish it, then close.
                self.on_ready(io, ctx, false)
            }
        }
    }

    /// The connection is being dropped by the worker without a verdict of its own (shutdown
    /// grace expired): a handshake still running counts as failed.
    pub fn on_forced_close(&mut self, ctx: &mut Ctx<'_>) {
        if matches!(self.phase, Phase::Handshake) {
            ctx.stats.handshake_failed(FailureCause::Shutdown, None);
        }
    }

    /// Drives the connection after a readiness event until the transport would block.
    ///
    /// `trust_short_reads`: the event did not report the peer's close, so a read that returns
    /// less than asked proves the socket's receive queue empty, and the read that would only
    /// say WouldBlock is skipped (edge-triggered epoll reports the next arrival). This saves a
    /// syscall per request on keep-alive connections.
    pub fn on_ready<T: Transport>(
        &mut self,
        io: &mut T,
        ctx: &mut Ctx<'_>,
        trust_short_reads: bool,
    ) -> Verdict {
        let mut drained = false;
        loop {
            match self.phase {
                Phase::Linger => return self.drain_linger(io),
                Phase::Failed => return self.flush_alert(io, ctx),
                _ => {}
            }
            let mut progress = false;

            if !self.read_eof && !drained && self.tls.wants_read() {
                let mut got = false;
                let mut reader = ShortReadProbe {
                    inner: &mut *io,
                    short: false,
                };
                let result = self.tls.read_tls(&mut reader);
                drained = trust_short_reads && reader.short;
                match result {
                    Ok(0) => {
                        self.read_eof = true;
                        got = true;
                    }
                    Ok(_) => {
                        self.last_read = ctx.now;
                        got = true;
                    }
                    Err(e) if would_block(&e) => {}
                    Err(e) if interrupted(&e) => progress = true,
                    Err(_) => return self.abort(FailureCause::Io, None, ctx),
                }
                if got {
                    progress = true;
                    if let Err(err) = self.tls.process_new_packets() {
                        return self.tls_error(&err, io, ctx);
                    }
                    if matches!(self.phase, Phase::Handshake) {
                        self.hrr_sent |= self.tls.handshake_kind()
                            == Some(rustls::HandshakeKind::FullWithHelloRetryRequest);
                        if !self.tls.is_handshaking() {
                            self.handshake_done(ctx);
                        } else if self.read_eof {
                            return self.abort(FailureCause::Eof, None, ctx);
                        }
                    }
                }
            }

            match self.pump_http(ctx) {
                Ok(p) => progress |= p,
                Err(()) => return Verdict::Close,
            }

            while self.tls.wants_write() {
                match self.tls.write_tls(io) {
                    Ok(0) => return self.abort(FailureCause::Io, None, ctx),
                    Ok(_) => {
                        self.last_write = ctx.now;
                        self.wrote_tls = true;
                        progress = true;
                    }
                    Err(e) if would_block(&e) => break,
                    Err(e) if interrupted(&e) => {}
                    Err(_) => return self.abort(FailureCause::Io, None, ctx),
                }
            }
            if !self.tls.wants_write() {
                self.unflushed = 0;
            }

            if matches!(self.phase, Phase::Idle) && !self.tls.wants_write() {
                if self.closing {
                    if !self.notify_sent {
                        self.tls.send_close_notify();
                        self.notify_sent = true;
                        continue;
                    }
                    let _ = io.shutdown_write();
                    self.phase = Phase::Linger;
                    self.linger_since = ctx.now;
                    continue;
                }
                if self.read_eof && !progress {
                    // The client closed between requests (or mid-head) and every request it
                    // sent before closing has been answered: nothing is left to do.
                    return Verdict::Close;
                }
            }
            if !progress {
                return Verdict::Open;
            }
        }
    }

    fn handshake_done(&mut self, ctx: &mut Ctx<'_>) {
        let kind = self
            .tls
            .handshake_kind()
            .unwrap_or(rustls::HandshakeKind::Full);
        let class = HandshakeClass::of(kind, self.hrr_sent);
        ctx.stats.handshake(self.tls.protocol_version(), class);
        self.phase = Phase::Idle;
        self.idle_since = ctx.now;
    }

    /// Ends the connection because of `cause`; a running handshake counts as failed.
    fn abort(
        &mut self,
        cause: FailureCause,
        alert: Option<rustls::AlertDescription>,
        ctx: &mut Ctx<'_>,
    ) -> Verdict {
        if matches!(self.phase, Phase::Handshake) {
            ctx.stats.handshake_failed(cause, alert);
            // Counted once: whatever happens next is not another failure.
            self.phase = Phase::Idle;
            self.closing = true;
        }
        Verdict::Close
    }

    fn tls_error<T: Transport>(
        &mut self,
        err: &rustls::Error,
        io: &mut T,
        ctx: &mut Ctx<'_>,
    ) -> Verdict {
        let alert = match err {
            rustls::Error::AlertReceived(a) => Some(*a),
            _ => None,
        };
        let cause = FailureCause::of(err);
        if matches!(self.phase, Phase::Handshake) && !self.tls.is_handshaking() {
            // The client's Finished and the failing record came in one read: rustls verified
            // the Finished (and queued its tickets) before it failed, so the handshake did
            // complete and the failure is one after it.
            self.handshake_done(ctx);
        }
        if !matches!(self.phase, Phase::Handshake) {
            // Not a handshake failure (abort counts none), but a close worth counting: e.g.
            // rustls cuts a peer flooding KeyUpdates (PeerMisbehaved) without sending an alert.
            ctx.stats.tls_error(cause);
        }
        self.abort(cause, alert, ctx);
        if !self.wrote_tls && !self.tls.wants_write() {
            self.own_alert = omitted_alert(err).map(OwnAlert::new);
        }
        // rustls queued the fatal alert that describes the error (if it has one); the peer
        // should see it, and only once the failure is counted, so that a peer which reads the
        // alert and then asks for the counters finds it there.
        self.phase = Phase::Failed;
        self.last_write = ctx.now;
        self.flush_alert(io, ctx)
    }

    /// Writes what rustls queued before it failed (or the alert it omitted), then half-closes
    /// and lingers. Nothing is read meanwhile: rustls is done with this connection, and the
    /// linger drains the socket.
    fn flush_alert<T: Transport>(&mut self, io: &mut T, ctx: &mut Ctx<'_>) -> Verdict {
        loop {
            let written = if self.tls.wants_write() {
                self.tls.write_tls(io)
            } else if let Some(alert) = self.own_alert.as_mut().filter(|a| !a.is_written()) {
                alert.write(io)
            } else {
                break;
            };
            match written {
                Ok(0) => return Verdict::Close,
                Ok(_) => self.last_write = ctx.now,
                // The worker waits for writable (see `wants`), bounded by the send timeout.
                Err(e) if would_block(&e) => return Verdict::Open,
                Err(e) if interrupted(&e) => {}
                // The peer is gone: nobody is left to read the alert.
                Err(_) => return Verdict::Close,
            }
        }
        let _ = io.shutdown_write();
        self.phase = Phase::Linger;
        self.linger_since = ctx.now;
        self.drain_linger(io)
    }

    fn drain_linger<T: Transport>(&mut self, io: &mut T) -> Verdict {
        let mut sink = [0u8; 4096];
        loop {
            match io.read(&mut sink) {
                Ok(0) => return Verdict::Close,
                Ok(_) => {}
                Err(e) if would_block(&e) => return Verdict::Open,
                Err(e) if interrupted(&e) => {}
                Err(_) => return Verdict::Close,
            }
        }
    }

    /// Runs HTTP over the plaintext rustls has decrypted. Returns whether anything moved;
    /// `Err` means the connection must be dropped at once.
    fn pump_http(&mut self, ctx: &mut Ctx<'_>) -> Result<bool, ()> {
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
                                self.inbuf.drain(..req.head_len);
                                self.begin(req, ctx)?;
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
                        let mut rd = self.tls.reader();
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
                        let n = self.tls.writer().write(chunk).map_err(|_| ())?;
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
        let mut rd = self.tls.reader();
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

    /// A complete request head arrived.
    fn begin(&mut self, req: Request, ctx: &mut Ctx<'_>) -> Result<(), ()> {
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
        let n = self.tls.writer().write(ctx.scratch).map_err(|_| ())?;
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
        let n = self.tls.writer().write(bytes).map_err(|_| ())?;
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

/// Passes reads through and notes whether the last one came back shorter than the buffer.
struct ShortReadProbe<'a, T> {
    inner: &'a mut T,
    short: bool,
}

impl<T: Read> Read for ShortReadProbe<'_, T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.short = n > 0 && n < buf.len();
        Ok(n)
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::TlsOptions;
    use crate::stats::Stats;
    use common::certs::{self, ChainOptions, KeyType};
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use std::sync::Arc;
    use std::time::Duration;

    /// A socket in memory whose writes block until `writable` is set.
    #[derive(Default)]
    struct Socket {
        input: Vec<u8>,
        eof: bool,
        output: Vec<u8>,
        writable: bool,
        write_shut: bool,
    }

    impl Read for Socket {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.input.is_empty() {
                return if self.eof {
                    Ok(0)
                } else {
                    Err(io::ErrorKind::WouldBlock.into())
                };
            }
            let n = buf.len().min(self.input.len());
            buf[..n].copy_from_slice(&self.input[..n]);
            self.input.drain(..n);
            Ok(n)
        }
    }

    impl Write for Socket {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            assert!(!self.write_shut, "write after shutdown_write");
            if !self.writable {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.output.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Transport for Socket {
        fn shutdown_write(&mut self) -> io::Result<()> {
            self.write_shut = true;
            Ok(())
        }
    }

    fn server_connection() -> ServerConnection {
        server_connection_with(&TlsOptions::default())
    }

    fn server_connection_with(opts: &TlsOptions) -> ServerConnection {
        let c = certs::generate(KeyType::EcdsaP256, &ChainOptions::default()).unwrap();
        let chain = CertificateDer::pem_slice_iter(c.chain_pem().as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(c.leaf_key_pem.as_bytes()).unwrap();
        let cfg = opts.server_config(chain, key).unwrap();
        ServerConnection::new(Arc::clone(&cfg)).unwrap()
    }

    /// A server that only does secp384r1: rustls's client offers a key share for another
    /// group first, so its ClientHello gets a HelloRetryRequest, and the server then waits
    /// for a second ClientHello in plaintext.
    fn hrr_server_connection() -> ServerConnection {
        let opts = TlsOptions {
            groups: common::tls::parse_groups(&["secp384r1".into()]).unwrap(),
            ..TlsOptions::default()
        };
        server_connection_with(&opts)
    }

    /// The records of rustls's first ClientHello, as its client would send them.
    fn client_hello_records() -> Vec<u8> {
        let cfg = rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("bank32.com").unwrap();
        let mut client = rustls::ClientConnection::new(Arc::new(cfg), name).unwrap();
        let mut out = Vec::new();
        client.write_tls(&mut out).unwrap();
        out
    }

    /// The first two bytes of a ClientHello in one record, then an empty application-data
    /// record: a record interleaved with a split handshake message (RFC 8446 §5.1).
    const INTERLEAVED: [u8; 12] = [
        0x16, 0x03, 0x01, 0x00, 0x02, 0x01, 0x00, // handshake, 2 bytes of a ClientHello
        0x17, 0x03, 0x03, 0x00, 0x00, // application data, empty
    ];

    /// What RFC 8446 asks for there, in plaintext: rustls queues no alert for it.
    const UNEXPECTED_MESSAGE_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x0a];

    /// Record types of the HelloRetryRequest flight: the HRR (handshake), then the
    /// compatibility ChangeCipherSpec.
    const HRR_FLIGHT: [u8; 2] = [0x16, 0x14];

    fn record_types(mut bytes: &[u8]) -> Vec<u8> {
        let mut types = Vec::new();
        while bytes.len() >= 5 {
            let len = usize::from(u16::from_be_bytes([bytes[3], bytes[4]]));
            types.push(bytes[0]);
            bytes = &bytes[(5 + len).min(bytes.len())..];
        }
        types
    }

    /// Plain HTTP on the TLS port: rustls queues a decode_error alert (a plaintext record).
    const DECODE_ERROR_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32];

    #[test]
    fn a_tls_failure_waits_for_writable_to_send_its_alert_then_half_closes_and_lingers() {
        let stats = Stats::new(1);
        let wstats = stats.worker(0).unwrap();
        let settings = Settings::default();
        let start = Instant::now();
        let mut scratch = Vec::new();
        let mut conn = Conn::new(server_connection(), start);
        let mut sock = Socket {
            input: b"GET / HTTP/1.1\r\nHost: bank32.com\r\n\r\n".to_vec(),
            ..Socket::default()
        };
        let mut ctx = Ctx {
            stats: &wstats,
            settings: &settings,
            date: b"",
            now: start,
            scratch: &mut scratch,
        };

        // The socket is full: the connection stays, waiting only to write, on the send
        // timeout; the failure is counted already.
        assert_eq!(conn.on_ready(&mut sock, &mut ctx, true), Verdict::Open);
        assert_eq!(
            conn.wants(),
            Wants {
                read: false,
                write: true
            }
        );
        assert_eq!(
            conn.deadline(&settings),
            (start + settings.send_timeout, TimeoutKind::Send)
        );
        assert!(sock.output.is_empty() && !sock.write_shut);
        assert_eq!(
            stats.snapshot().failures_of(FailureCause::InvalidMessage),
            1
        );

        // Writable: the alert goes out whole, then the FIN; the connection lingers, reading.
        sock.writable = true;
        let later = start + Duration::from_millis(10);
        ctx.now = later;
        assert_eq!(conn.on_ready(&mut sock, &mut ctx, true), Verdict::Open);
        assert_eq!(sock.output, DECODE_ERROR_ALERT);
        assert!(sock.write_shut);
        assert_eq!(
            conn.wants(),
            Wants {
                read: true,
                write: false
            }
        );
        assert_eq!(
            conn.deadline(&settings),
            (later + settings.linger_timeout, TimeoutKind::Linger)
        );

        // The client's bytes are drained; its FIN ends the connection.
        sock.input = vec![0x17; 100_000];
        sock.eof = true;
        assert_eq!(conn.on_ready(&mut sock, &mut ctx, true), Verdict::Close);
        assert!(sock.input.is_empty());
        let s = stats.snapshot();
        assert_eq!(s.failures_total(), 1);
        assert_eq!(s.timeouts_of(TimeoutKind::Send), 0);
    }

    #[test]
    fn a_record_interleaved_with_a_split_client_hello_gets_unexpected_message_in_plaintext() {
        let stats = Stats::new(1);
        let wstats = stats.worker(0).unwrap();
        let settings = Settings::default();
        let start = Instant::now();
        let mut scratch = Vec::new();
        let mut conn = Conn::new(server_connection(), start);
        let mut sock = Socket {
            input: INTERLEAVED.to_vec(),
            ..Socket::default()
        };
        let mut ctx = Ctx {
            stats: &wstats,
            settings: &settings,
            date: b"",
            now: start,
            scratch: &mut scratch,
        };

        // Our alert waits for writable like one rustls queued, bounded by the send timeout.
        assert_eq!(conn.on_ready(&mut sock, &mut ctx, true), Verdict::Open);
        assert_eq!(
            conn.wants(),
            Wants {
                read: false,
                write: true
            }
        );
        assert_eq!(
            conn.deadline(&settings),
            (start + settings.send_timeout, TimeoutKind::Send)
        );
        assert_eq!(
            stats.snapshot().failures_of(FailureCause::PeerMisbehaved),
            1
        );

        sock.writable = true;
        assert_eq!(conn.on_ready(&mut sock, &mut ctx, true), Verdict::Open);
        assert_eq!(sock.output, UNEXPECTED_MESSAGE_ALERT);
        assert!(sock.write_shut);
        assert_eq!(
            conn.wants(),
            Wants {
                read: true,
                write: false
            }
        );
        sock.eof = true;
        assert_eq!(conn.on_ready(&mut sock, &mut ctx, true), Verdict::Close);
        assert_eq!(stats.snapshot().failures_total(), 1);
    }

    #[test]
    fn once_rustls_has_spoken_the_server_adds_no_alert_of_its_own() {
        let stats = Stats::new(1);
        let wstats = stats.worker(0).unwrap();
        let settings = Settings::default();
        let start = Instant::now();
        let mut scratch = Vec::new();
        let mut ctx = Ctx {
            stats: &wstats,
            settings: &settings,
            date: b"",
            now: start,
            scratch: &mut scratch,
        };
        // After a HelloRetryRequest the interleaved record splits the second ClientHello.
        let mut rest = INTERLEAVED.to_vec();
        rest[2] = 0x03;

        // Queued, not yet written: the hello and the interleaved record in one read.
        let mut conn = Conn::new(hrr_server_connection(), start);
        let mut input = client_hello_records();
        input.extend_from_slice(&rest);
        let mut sock = Socket {
            input,
            ..Socket::default()
        };
        assert_eq!(conn.on_ready(&mut sock, &mut ctx, true), Verdict::Open);
        sock.writable = true;
        assert_eq!(conn.on_ready(&mut sock, &mut ctx, true), Verdict::Open);
        assert!(sock.write_shut);
        assert_eq!(record_types(&sock.output), HRR_FLIGHT, "no alert after it");

        // Written: the HelloRetryRequest went out before the interleaved record came in.
        let mut conn = Conn::new(hrr_server_connection(), start);
        let mut sock = Socket {
            input: client_hello_records(),
            writable: true,
            ..Socket::default()
        };
        assert_eq!(conn.on_ready(&mut sock, &mut ctx, true), Verdict::Open);
        let hrr = sock.output.len();
        assert_eq!(record_types(&sock.output), HRR_FLIGHT);
        sock.input = rest;
        assert_eq!(conn.on_ready(&mut sock, &mut ctx, true), Verdict::Open);
        assert!(sock.write_shut);
        assert_eq!(sock.output.len(), hrr, "nothing after the HRR");

        assert_eq!(
            stats.snapshot().failures_of(FailureCause::PeerMisbehaved),
            2
        );
    }

    #[test]
    fn an_alert_that_cannot_be_written_is_cut_at_the_send_timeout() {
        let stats = Stats::new(1);
        let wstats = stats.worker(0).unwrap();
        let settings = Settings::default();
        let start = Instant::now();
        let mut scratch = Vec::new();
        let mut conn = Conn::new(server_connection(), start);
        let mut sock = Socket {
            input: b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            ..Socket::default()
        };
        let mut ctx = Ctx {
            stats: &wstats,
            settings: &settings,
            date: b"",
            now: start,
            scratch: &mut scratch,
        };
        assert_eq!(conn.on_ready(&mut sock, &mut ctx, true), Verdict::Open);
        ctx.now = start + settings.send_timeout;
        assert_eq!(conn.on_timeout(&mut sock, &mut ctx), Verdict::Close);
        let s = stats.snapshot();
        assert_eq!(s.timeouts_of(TimeoutKind::Send), 1);
        assert_eq!(s.failures_of(FailureCause::InvalidMessage), 1);
        assert_eq!(s.failures_total(), 1, "the timeout is not a second failure");
    }
}
