//! One connection's state machine: a `rustls::ServerConnection` (or, for the plain-HTTP floor,
//! a [`Plain`] session: the same code without TLS) with the HTTP/1.1 exchange on top, driven
//! by any byte [`Transport`]. The worker hands it a socket; tests and fuzzers can
//! hand it memory. It reads until the transport would block, answers every complete request
//! in order, streams large bodies in bounded windows, and decides its own deadline.
//!
//! This file owns the connection's life: the TLS session, readiness, deadlines, failures
//! with their alerts, shutdown and the lingering close. The HTTP exchange on top of the
//! decrypted stream is `exchange`'s.

use std::io::{self, Read, Write};
use std::time::Instant;

use common::session::{Plain, Session};
use rustls::ServerConnection;

use crate::client_auth::{ClientCert, RefusalCause};
use crate::config::Settings;
use crate::http::Request;
use crate::stats::{EarlyData, FailureCause, HandshakeClass, TimeoutKind, WorkerStats};
use common::io::{ShortReadProbe, interrupted, would_block};

mod exchange;
mod wire;

use exchange::BodyLeft;
use wire::Wire;

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

/// Connections driven in memory (unit tests, the fuzzing harnesses).
impl Transport for common::memory::Memory {
    fn shutdown_write(&mut self) -> io::Result<()> {
        common::memory::Memory::shutdown_write(self);
        Ok(())
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

/// Where a connection is in its life; decides what an event does and which deadline runs.
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

/// One client connection, over TLS or (`Conn<Plain>`) plain TCP.
pub struct Conn<S = ServerConnection> {
    /// The record layer: rustls, or plain TCP for the floor.
    session: S,
    phase: Phase,
    /// Unparsed plaintext: a partial request head, or heads of pipelined requests.
    inbuf: Vec<u8>,
    /// How many bytes at the front of `inbuf` came as TLS 1.3 early data (0-RTT), which an
    /// attacker may have replayed: a request starting in them is served only if it is safe.
    early: usize,
    /// rustls accepted early data on this connection.
    early_accepted: bool,
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
    /// The TLS bytes each way, for the wire counters and the handshake's share of them.
    wire: Wire,
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
    fn with(session: S, phase: Phase, now: Instant) -> Conn<S> {
        Conn {
            session,
            phase,
            inbuf: Vec::new(),
            early: 0,
            early_accepted: false,
            unflushed: 0,
            closing: false,
            notify_sent: false,
            read_eof: false,
            shutting_down: false,
            hrr_sent: false,
            wrote_tls: false,
            own_alert: None,
            wire: Wire::default(),
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
            _ => !self.read_eof && self.session.wants_read(),
        };
        let own_alert = self.own_alert.as_ref().is_some_and(|a| !a.is_written());
        Wants {
            read,
            write: self.session.wants_write() || own_alert,
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
            _ if self.session.wants_write() => {
                (self.last_write + s.send_timeout, TimeoutKind::Send)
            }
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
                self.session.send_close_notify();
                self.write_last(io, ctx);
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
            Phase::Idle if self.inbuf.is_empty() && !self.session.wants_write() => {
                self.session.send_close_notify();
                self.write_last(io, ctx);
                Verdict::Close
            }
            Phase::Linger | Phase::Failed => Verdict::Close,
            Phase::Idle if self.inbuf.is_empty() => {
                // The last response is complete but still being flushed (it was done before
                // shutdown began, so it promised keep-alive): close once it is out, never
                // wait for a next request through the shutdown grace.
                self.closing = true;
                self.on_ready(io, ctx, false)
            }
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
                Phase::Linger => return self.drain_linger(io, ctx),
                Phase::Failed => return self.flush_alert(io, ctx),
                _ => {}
            }
            let mut progress = false;

            let fed_by_record = matches!(self.phase, Phase::Handshake) || self.wire.feed.pending();
            if !self.read_eof && (!drained || self.wire.feed.pending()) && self.session.wants_read()
            {
                let mut got = false;
                let mut reader = ShortReadProbe::new(&mut *io);
                let received = self.wire.received;
                if received == 0
                    && (!ctx.settings.cert_compression.is_off() || ctx.settings.early_data)
                {
                    self.wire.feed.keep_hello();
                }
                let result = if fed_by_record {
                    let mut feed = self.wire.feed.reader(&mut reader, &mut self.wire.received);
                    self.session.read_tls(&mut feed)
                } else {
                    let result = self.session.read_tls(&mut reader);
                    if let Ok(n) = result {
                        self.wire.received += n as u64;
                    }
                    result
                };
                ctx.stats.tls_in(self.wire.received - received);
                drained |= trust_short_reads && reader.short;
                match result {
                    Ok(0) => {
                        self.read_eof = true;
                        got = true;
                    }
                    Ok(n) => {
                        self.wire.fed += n as u64;
                        self.last_read = ctx.now;
                        got = true;
                    }
                    Err(e) if would_block(&e) => {}
                    Err(e) if interrupted(&e) => progress = true,
                    Err(_) => return self.abort(FailureCause::Io, None, ctx),
                }
                if got {
                    progress = true;
                    if let Err(err) = self.session.process_new_packets() {
                        return self.tls_error(&err, io, ctx);
                    }
                    if matches!(self.phase, Phase::Handshake) {
                        self.take_early_data(ctx);
                        self.hrr_sent |= self.session.handshake_kind()
                            == Some(rustls::HandshakeKind::FullWithHelloRetryRequest);
                        if !self.session.is_handshaking() {
                            self.handshake_done(ctx);
                        } else if self.read_eof {
                            return self.abort(FailureCause::Eof, None, ctx);
                        }
                    } else if fed_by_record {
                        // The handshake's record framing is no longer needed once what it
                        // read past the handshake (a request) is handed on.
                        self.wire.feed.release();
                    }
                }
            }

            match self.pump_http(ctx) {
                Ok(p) => progress |= p,
                Err(()) => return Verdict::Close,
            }

            while self.session.wants_write() {
                match self.session.write_tls(io) {
                    Ok(0) => return self.abort(FailureCause::Io, None, ctx),
                    Ok(n) => {
                        self.sent(n, ctx);
                        self.last_write = ctx.now;
                        self.wrote_tls = true;
                        progress = true;
                    }
                    Err(e) if would_block(&e) => break,
                    Err(e) if interrupted(&e) => {}
                    Err(_) => return self.abort(FailureCause::Io, None, ctx),
                }
            }
            if !self.session.wants_write() {
                self.unflushed = 0;
                if let Some(hs_in) = self.wire.flight_open.take() {
                    ctx.stats.handshake_bytes(hs_in, self.wire.sent);
                }
            }

            if matches!(self.phase, Phase::Idle) && !self.session.wants_write() {
                if self.closing {
                    if !self.notify_sent {
                        self.session.send_close_notify();
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
            .session
            .handshake_kind()
            .unwrap_or(rustls::HandshakeKind::Full);
        let class = HandshakeClass::of(kind, self.hrr_sent);
        let version = self.session.protocol_version();
        ctx.stats.handshake(version, class);
        ctx.stats
            .client_cert(ClientCert::of(self.session.peer_certificates()));
        self.take_early_data(ctx);
        // rustls says whether it accepted early data, not whether it was offered: the
        // ClientHello says that (read when the server accepts early data at all).
        if self.early_accepted || self.wire.feed.early_offered() {
            ctx.stats.early_data(EarlyData::Offered);
            ctx.stats.early_data(if self.early_accepted {
                EarlyData::Accepted
            } else {
                EarlyData::Rejected
            });
        }
        // rustls compresses the chain of a full TLS 1.3 handshake with the first of our
        // algorithms the ClientHello offered (see `common::cert_compression`).
        if let Some(Some(offered)) = self.wire.feed.take_offered()
            && version == Some(rustls::ProtocolVersion::TLSv1_3)
            && matches!(class, HandshakeClass::Full | HandshakeClass::FullHrr)
            && let Some(algorithm) = ctx.settings.cert_compression.chosen(&offered)
        {
            ctx.stats.cert_compressed(algorithm);
        }
        // See `wire`: only TLS 1.2's queue holds handshake bytes (the server's last flight)
        // when the handshake completes; TLS 1.3's holds the tickets that follow it.
        if version == Some(rustls::ProtocolVersion::TLSv1_2) && self.session.wants_write() {
            self.wire.flight_open = Some(self.wire.fed);
        } else {
            ctx.stats.handshake_bytes(self.wire.fed, self.wire.sent);
        }
        self.wire.feed.release();
        self.phase = Phase::Idle;
        self.idle_since = ctx.now;
    }

    /// Moves the early data rustls decrypted so far to the front of `inbuf`: nothing else is
    /// read into it before the handshake completes.
    fn take_early_data(&mut self, ctx: &Ctx<'_>) {
        let before = self.inbuf.len();
        self.early_accepted |= self.session.take_early_data(&mut self.inbuf);
        let n = self.inbuf.len() - before;
        self.early += n;
        ctx.stats.bytes_in(n as u64);
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
        if matches!(self.phase, Phase::Handshake) && !self.session.is_handshaking() {
            // The client's Finished and the failing record came in one read: rustls verified
            // the Finished (and queued its tickets) before it failed, so the handshake did
            // complete and the failure is one after it.
            self.handshake_done(ctx);
        }
        if matches!(self.phase, Phase::Handshake)
            && let Some(refusal) = RefusalCause::of(err)
        {
            ctx.stats.client_auth_refused(refusal);
        }
        if !matches!(self.phase, Phase::Handshake) {
            // Not a handshake failure (abort counts none), but a close worth counting: e.g.
            // rustls cuts a peer flooding KeyUpdates (PeerMisbehaved) without sending an alert.
            ctx.stats.tls_error(cause);
        }
        self.abort(cause, alert, ctx);
        if !self.wrote_tls && !self.session.wants_write() {
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
            let written = if self.session.wants_write() {
                self.session.write_tls(io)
            } else if let Some(alert) = self.own_alert.as_mut().filter(|a| !a.is_written()) {
                alert.write(io)
            } else {
                break;
            };
            match written {
                Ok(0) => return Verdict::Close,
                Ok(n) => {
                    self.sent(n, ctx);
                    self.last_write = ctx.now;
                }
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
        self.drain_linger(io, ctx)
    }

    fn drain_linger<T: Transport>(&mut self, io: &mut T, ctx: &mut Ctx<'_>) -> Verdict {
        let mut sink = [0u8; 4096];
        loop {
            match io.read(&mut sink) {
                Ok(0) => return Verdict::Close,
                // Discarded, but TLS bytes the client sent (its close_notify, say) all the same.
                Ok(n) => {
                    self.wire.received += n as u64;
                    ctx.stats.tls_in(n as u64);
                }
                Err(e) if would_block(&e) => return Verdict::Open,
                Err(e) if interrupted(&e) => {}
                Err(_) => return Verdict::Close,
            }
        }
    }
}

impl<S: Session> Conn<S> {
    /// Counts `n` bytes written to the socket.
    fn sent(&mut self, n: usize, ctx: &Ctx<'_>) {
        self.wire.sent += n as u64;
        ctx.stats.tls_out(n as u64);
    }

    /// One last write of what is queued (a close_notify), counted; its failure changes
    /// nothing, the connection is closing.
    fn write_last<T: Transport>(&mut self, io: &mut T, ctx: &Ctx<'_>) {
        if let Ok(n) = self.session.write_tls(io) {
            self.sent(n, ctx);
        }
    }
}

#[cfg(test)]
mod tests;
