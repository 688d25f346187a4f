//! One client connection's state machine, free of sockets: connect → handshake → request (the
//! head, then any upload body in bounded windows) → response → the next request or close, and
//! the deadline of the operation in flight. It runs over any byte [`Transport`]: the worker
//! hands it a non-blocking TCP socket, tests and the fuzzer hand it memory. It measures
//! connect, handshake and time to first byte at its own events, classifies each handshake
//! (kind, HelloRetryRequest, offered and resumed sessions) and counts responses; the worker
//! owns scheduling, errors and each operation's latency.
//!
//! # Layout
//!
//! - this root: the state machine ([`ClientConn`], [`Outcome`], [`Wake`], [`Op`], [`Fail`]).
//! - `handshake`: what a completed handshake counts, and how a TLS failure is classified.
//! - `session`: the [`Transport`] and [`ClientSession`] it runs over.

use std::io::{self, BufRead, Write};
use std::time::Instant;

use common::io::{OUT_WINDOW, ShortReadProbe, interrupted, would_block};

use crate::client_cert::{self, CertRequest};
use crate::plan::Plan;
use crate::response::{Response, ResponseReader};
use crate::stats::{self, FailureKind, Measured};

mod handshake;
mod session;
use handshake::classify_tls;
pub use session::{ClientSession, Transport};

/// Where the connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Connecting,
    Handshaking,
    Requesting,
    Responding,
    /// Keep-alive connection waiting for its next operation.
    Idle,
}

/// What one drive of the connection came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Still working.
    Pending,
    /// The operation finished at this instant; keep the connection for another (keep-alive).
    DoneKeep(Instant),
    /// The operation finished at this instant; close the connection.
    DoneClose(Instant),
    /// An idle keep-alive connection was closed by the server: no operation was involved.
    IdleClosed,
}

/// Why a connection is driven: what its caller knows of the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// The poller reported the socket.
    Event {
        /// Input, the peer's close or an error was reported (a report of writability alone
        /// says nothing new is there to read).
        readable: bool,
        /// The report was not of the peer's close or an error, so a read that returns less
        /// than asked proves the receive queue empty (see [`ShortReadProbe`]).
        trust_short_reads: bool,
    },
    /// The worker started an operation on an idle keep-alive connection: nothing new is known
    /// of the socket, so it is read only if the last read did not find it empty. Anything
    /// that arrived since is reported by the next event (edge-triggered epoll).
    Started,
}

impl Wake {
    /// For a transport without a poller (memory, the fuzzer): anything may be there to read.
    pub const ANY: Wake = Wake::Event {
        readable: true,
        trust_short_reads: false,
    };
}

/// An operation failed: why, and for a refused certificate the message that names it.
#[derive(Debug, PartialEq, Eq)]
pub struct Fail(pub FailureKind, pub Option<String>);

/// One operation's identity on its connection.
#[derive(Clone, Copy, Debug)]
pub struct Op {
    /// When it should have started (its open-loop schedule slot; else when it started).
    pub intended: Instant,
    /// When it started.
    pub started: Instant,
    /// After warm-up: its timings and counts go into the results.
    pub measured: bool,
}

/// One client connection over TLS (`ClientConn<ClientConnection>`) or plain TCP.
pub struct ClientConn<S> {
    tls: S,
    phase: Phase,
    /// The operation in flight, or the last one while idle.
    op: Op,
    /// When the connect was issued and when it completed, for the connect and handshake
    /// times.
    connect_started: Instant,
    connected: Option<Instant>,
    /// When the request's last byte was queued, for the time to first byte.
    request_sent: Instant,
    first_byte: bool,
    /// Requests completed on this connection, for `--requests-per-conn`.
    served: u64,
    /// A saved session was offered: a resumed handshake counts as an offer taken.
    offered: bool,
    /// The server answered with a HelloRetryRequest (rustls forgets it if it then resumes).
    saw_hrr: bool,
    /// The server's CertificateRequest and our answer (none: it did not ask).
    cert_request: Option<CertRequest>,
    reader: ResponseReader,
    /// The last read found the receive queue empty (`WouldBlock`, or a trusted short read):
    /// no read is made until the poller reports the socket readable again. A keep-alive
    /// request so costs one write and one read, not a third read that only says `WouldBlock`.
    drained: bool,
    /// Bytes of the request head queued so far.
    head_off: usize,
    /// The first request's head went (whole) as TLS 1.3 early data.
    early_sent: bool,
    /// The server accepted it: its time to first byte is a 0-RTT one.
    early_accepted: bool,
    /// This request is the connection's last: it says `Connection: close`.
    close_after: bool,
    upload_left: u64,
    /// Plaintext queued in the session since its output was last empty (see [`OUT_WINDOW`]).
    unflushed: usize,
    /// TLS bytes read from the socket.
    received: u64,
    /// TLS bytes written to the socket.
    sent: u64,
    /// What the session had queued when its handshake completed (its last flight: a TLS 1.3
    /// Finished, a TLS 1.2 resumption's ChangeCipherSpec and Finished), and what it queued
    /// after while that was still unwritten: taken out of the session so that the
    /// handshake's share of the stream is known exactly, yet written in the same write as the
    /// request that follows. Empty otherwise.
    tail: Vec<u8>,
    /// How much of `tail` is written.
    tail_off: usize,
}

impl<S: ClientSession> ClientConn<S> {
    /// A connection whose connect was issued at `op.started`, for the operation `op`;
    /// `offered`: the session offers a saved session.
    pub fn connecting(tls: S, offered: bool, op: Op, plan: &Plan) -> ClientConn<S> {
        let mut c = ClientConn {
            tls,
            phase: Phase::Connecting,
            op,
            connect_started: op.started,
            connected: None,
            request_sent: op.started,
            first_byte: false,
            served: 0,
            offered,
            saw_hrr: false,
            cert_request: None,
            reader: ResponseReader::new(),
            drained: false,
            head_off: 0,
            early_sent: false,
            early_accepted: false,
            close_after: false,
            upload_left: 0,
            unflushed: 0,
            received: 0,
            sent: 0,
            tail: Vec::new(),
            tail_off: 0,
        };
        c.begin_request(plan);
        if plan.early_data && offered {
            c.send_early(plan);
        }
        c
    }

    /// Queues the first request head as early data, if the session may send it.
    fn send_early(&mut self, plan: &Plan) {
        let head: &[u8] = if self.close_after {
            &plan.request_close
        } else {
            &plan.request
        };
        if self.tls.write_early(head) == head.len() {
            self.head_off = head.len();
            self.early_sent = true;
        }
    }

    /// Starts the next operation on an idle keep-alive connection; the caller drives it at
    /// once, so the request goes out.
    pub fn next_op(&mut self, op: Op, plan: &Plan) {
        self.op = op;
        self.early_accepted = false;
        self.phase = Phase::Requesting;
        self.begin_request(plan);
    }

    /// Prepares the next request (head and upload counters).
    fn begin_request(&mut self, plan: &Plan) {
        let last = plan.new_conn || plan.requests_per_conn.is_some_and(|k| self.served + 1 >= k);
        self.close_after = last;
        self.head_off = 0;
        self.upload_left = plan.upload;
        self.first_byte = false;
        self.reader.start(plan.head_request);
    }

    /// A keep-alive connection waiting for its next operation.
    pub fn is_idle(&self) -> bool {
        self.phase == Phase::Idle
    }

    /// The request is out and its response is awaited.
    pub fn is_responding(&self) -> bool {
        self.phase == Phase::Responding
    }

    /// The operation in flight (or the last one, while idle).
    pub fn op(&self) -> Op {
        self.op
    }

    /// The socket readiness this connection waits for: (readable, writable).
    pub fn wants(&self) -> (bool, bool) {
        let write =
            self.phase == Phase::Connecting || self.tls.wants_write() || !self.tail.is_empty();
        (true, write)
    }

    /// When the operation in flight times out (`--timeout` after it started); none while
    /// idle, where only the server's close ends the wait.
    pub fn deadline(&self, plan: &Plan) -> Option<Instant> {
        (self.phase != Phase::Idle).then(|| self.op.started + plan.timeout)
    }

    /// The failure to count when woken at `now` for the deadline: a timeout once it has
    /// passed, none before (a wake-up for an older operation's deadline).
    pub fn expired(&self, now: Instant, plan: &Plan) -> Option<FailureKind> {
        self.deadline(plan)
            .is_some_and(|d| now >= d)
            .then_some(FailureKind::Timeout)
    }

    /// The operation finished: one more request served on this connection; `keep`: the
    /// connection waits idle for the next one.
    pub fn op_done(&mut self, keep: bool) {
        self.served += 1;
        if keep {
            self.phase = Phase::Idle;
        }
    }

    /// Closes the connection: a close_notify unless the handshake never finished.
    pub fn close<T: Transport>(mut self, io: &mut T, m: &mut Measured) {
        if !self.tls.is_handshaking() {
            self.tls.send_close_notify();
            if let Ok(n) = self.tls.write_tls(io) {
                self.count_sent(n, m);
            }
        }
    }

    /// The run ended with this connection in flight: abandoned (uncounted) with a
    /// close_notify.
    pub fn abandon<T: Transport>(mut self, io: &mut T, m: &mut Measured) {
        self.tls.send_close_notify();
        if let Ok(n) = self.tls.write_tls(io) {
            self.count_sent(n, m);
        }
    }

    /// Drives the connection as far as its transport allows, after `wake`, reading `clock`
    /// at each event it measures.
    pub fn on_ready<T: Transport>(
        &mut self,
        io: &mut T,
        wake: Wake,
        plan: &Plan,
        m: &mut Measured,
        clock: fn() -> Instant,
    ) -> Result<Outcome, Fail> {
        let trust_short_reads = match wake {
            Wake::Event {
                readable,
                trust_short_reads,
            } => {
                if readable {
                    self.drained = false;
                }
                trust_short_reads
            }
            Wake::Started => false,
        };
        if self.phase == Phase::Connecting {
            match io.connected() {
                Ok(true) => {
                    let now = clock();
                    self.connected = Some(now);
                    if self.early_sent {
                        // The request leaves with the ClientHello.
                        self.request_sent = now;
                    }
                    if self.op.measured {
                        stats::record(
                            &mut m.connect,
                            now.saturating_duration_since(self.connect_started),
                        );
                    }
                    // A plain session has no handshake: the request goes out at once.
                    self.phase = if self.tls.is_handshaking() {
                        Phase::Handshaking
                    } else {
                        Phase::Requesting
                    };
                }
                Ok(false) => return Ok(Outcome::Pending),
                Err(e) => return Err(Fail(FailureKind::of_io(&e), None)),
            }
        }
        if self.phase == Phase::Idle {
            return Ok(self.idle_read(io, m));
        }
        loop {
            let mut progress = self.queue_request(plan, m, clock)?;

            progress |= self.flush(io, m)?;
            if !self.tls.wants_write() && self.tail.is_empty() {
                self.unflushed = 0;
            }

            let mut eof = false;
            if self.tls.wants_read() && !self.drained {
                let mut probe = ShortReadProbe::new(&mut *io);
                let read = self.tls.read_tls(&mut probe);
                let short = probe.short;
                match read {
                    Ok(0) => eof = true,
                    Ok(n) => {
                        self.count_received(n, m);
                        self.drained = trust_short_reads && short;
                        progress = true;
                    }
                    Err(e) if would_block(&e) => self.drained = true,
                    Err(e) if interrupted(&e) => progress = true,
                    Err(e) => return Err(Fail(FailureKind::of_io(&e), None)),
                }
                if progress || eof {
                    let handshaking = self.phase == Phase::Handshaking;
                    if handshaking {
                        // Whatever an earlier connection on this thread left unread is not ours.
                        let _ = client_cert::take_request();
                    }
                    let processed = self.tls.process_new_packets();
                    if handshaking && let Some(answer) = client_cert::take_request() {
                        self.cert_request = Some(answer);
                    }
                    // A chain arrives only in the handshake, so only then is there a count to
                    // take; taken whatever the outcome, so none is left for the next connection.
                    if handshaking {
                        let decompressed = common::cert_compression::take_decompressed();
                        if self.op.measured {
                            m.counters.cert_compressed.add(decompressed);
                        }
                    }
                    if let Err(err) = processed {
                        // Let the peer see our alert before we go.
                        let _ = self.tls.write_tls(io);
                        return Err(classify_tls(&err, m, plan));
                    }
                    // Between the HRR and the server's second hello, which needs our second
                    // ClientHello first, so no single read spans both.
                    self.saw_hrr |= self.tls.handshake_kind()
                        == Some(rustls::HandshakeKind::FullWithHelloRetryRequest);
                }
            }

            if self.phase == Phase::Handshaking {
                if !self.tls.is_handshaking() {
                    self.handshake_done(m, clock())?;
                    self.phase = if self.early_accepted {
                        Phase::Responding
                    } else {
                        // The request goes out in the same pass, with the client's Finished;
                        // early data the server rejected goes again.
                        Phase::Requesting
                    };
                    continue;
                }
                if eof {
                    return Err(Fail(FailureKind::Reset, None));
                }
            }

            if self.phase == Phase::Responding {
                if let Some(outcome) = self.read_response(m, clock, &mut progress)? {
                    return Ok(outcome);
                }
                if eof {
                    return self.finish_eof(m, clock());
                }
            } else if eof {
                return Err(Fail(FailureKind::Reset, None));
            }

            if !progress {
                return Ok(Outcome::Pending);
            }
        }
    }

    /// Writes what is queued until the socket would block; whether anything was written.
    fn flush<T: Transport>(&mut self, io: &mut T, m: &mut Measured) -> Result<bool, Fail> {
        let mut progress = false;
        loop {
            let written = if !self.tail.is_empty() {
                if self.tls.wants_write() {
                    // Into memory: cannot block, and keeps the stream's order.
                    let _ = self.tls.write_tls(&mut self.tail);
                }
                io.write(&self.tail[self.tail_off..])
            } else if self.tls.wants_write() {
                self.tls.write_tls(io)
            } else {
                return Ok(progress);
            };
            match written {
                Ok(0) => return Err(Fail(FailureKind::Reset, None)),
                Ok(n) => {
                    self.count_sent(n, m);
                    if !self.tail.is_empty() {
                        self.tail_off += n;
                        if self.tail_off == self.tail.len() {
                            self.tail.clear();
                            self.tail_off = 0;
                        }
                    }
                    progress = true;
                }
                Err(e) if would_block(&e) => return Ok(progress),
                Err(e) if interrupted(&e) => {}
                Err(e) => return Err(Fail(FailureKind::of_io(&e), None)),
            }
        }
    }

    /// Counts `n` TLS bytes written, into the results if the operation is measured.
    fn count_sent(&mut self, n: usize, m: &mut Measured) {
        self.sent += n as u64;
        if self.op.measured {
            m.counters.tls_bytes_out += n as u64;
        }
    }

    /// Counts `n` TLS bytes read, into the results if the operation is measured.
    fn count_received(&mut self, n: usize, m: &mut Measured) {
        self.received += n as u64;
        if self.op.measured {
            m.counters.tls_bytes_in += n as u64;
        }
    }

    /// The server may close an idle keep-alive connection (close_notify, FIN, reset): noticed
    /// without calling it an error. Anything else it sends is unexpected too.
    fn idle_read<T: Transport>(&mut self, io: &mut T, m: &mut Measured) -> Outcome {
        if self.drained {
            return Outcome::Pending;
        }
        match self.tls.read_tls(io) {
            Err(e) if would_block(&e) => {
                self.drained = true;
                Outcome::Pending
            }
            Ok(0) | Err(_) => Outcome::IdleClosed,
            Ok(n) => {
                self.count_received(n, m);
                match self.tls.process_new_packets() {
                    Ok(got) if got.plaintext_bytes == 0 && !got.peer_closed => Outcome::Pending,
                    _ => Outcome::IdleClosed,
                }
            }
        }
    }

    /// Queues request bytes once the handshake is done: the head, then the upload body while
    /// the session holds less than [`OUT_WINDOW`]. Returns whether anything was queued.
    fn queue_request(
        &mut self,
        plan: &Plan,
        m: &mut Measured,
        clock: fn() -> Instant,
    ) -> Result<bool, Fail> {
        if self.phase != Phase::Requesting {
            return Ok(false);
        }
        let mut progress = false;
        let head: &[u8] = if self.close_after {
            &plan.request_close
        } else {
            &plan.request
        };
        if self.head_off < head.len() {
            let n = self
                .tls
                .writer()
                .write(&head[self.head_off..])
                .map_err(|e| Fail(FailureKind::Tls, Some(e.to_string())))?;
            self.head_off += n;
            self.unflushed += n;
            progress |= n > 0;
        }
        while self.head_off >= head.len() && self.upload_left > 0 && self.unflushed < OUT_WINDOW {
            let chunk = common::pattern::chunk(plan.upload - self.upload_left, self.upload_left);
            let n = self
                .tls
                .writer()
                .write(chunk)
                .map_err(|e| Fail(FailureKind::Tls, Some(e.to_string())))?;
            if n == 0 {
                break;
            }
            self.upload_left -= n as u64;
            self.unflushed += n;
            if self.op.measured {
                m.counters.body_bytes_out += n as u64;
            }
            progress = true;
        }
        if self.head_off >= head.len() && self.upload_left == 0 {
            self.phase = Phase::Responding;
            self.request_sent = clock();
        }
        Ok(progress)
    }

    /// Reads what plaintext the session holds into the response (setting `progress` when
    /// any was): the outcome once the response ended (completed, or by the server's close),
    /// none while it goes on.
    fn read_response(
        &mut self,
        m: &mut Measured,
        clock: fn() -> Instant,
        progress: &mut bool,
    ) -> Result<Option<Outcome>, Fail> {
        loop {
            let mut rd = self.tls.reader();
            let buf = match rd.fill_buf() {
                Ok(b) => b,
                Err(e) if would_block(&e) => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    drop(rd);
                    return self.finish_eof(m, clock()).map(Some);
                }
                Err(e) => return Err(Fail(FailureKind::of_io(&e), None)),
            };
            if buf.is_empty() {
                // close_notify: the response may be delimited by the close.
                drop(rd);
                return self.finish_eof(m, clock()).map(Some);
            }
            if !self.first_byte {
                self.first_byte = true;
                if self.op.measured {
                    let ttfb = clock().saturating_duration_since(self.request_sent);
                    let hist = if self.early_accepted {
                        &mut m.ttfb_0rtt
                    } else {
                        &mut m.ttfb
                    };
                    stats::record(hist, ttfb);
                }
            }
            let step = self
                .reader
                .feed(buf)
                .map_err(|_| Fail(FailureKind::BadResponse, None))?;
            rd.consume(step.consumed);
            // The session's reader may have a destructor: end its borrow before `self` is
            // used again.
            drop(rd);
            if self.op.measured {
                m.counters.body_bytes_in += step.body_bytes;
            }
            *progress = true;
            if let Some(resp) = step.done {
                return Ok(Some(self.complete(m, resp, clock())));
            }
        }
    }

    /// Counts a finished response: 2xx as a request, anything else as an error by status.
    fn count_response(&self, m: &mut Measured, status: u16) {
        if !self.op.measured {
            return;
        }
        if (200..300).contains(&status) {
            m.counters.requests += 1;
        } else {
            m.counters.error(FailureKind::HttpStatus);
            *m.counters.statuses.entry(status).or_default() += 1;
        }
    }

    fn complete(&mut self, m: &mut Measured, resp: Response, end: Instant) -> Outcome {
        self.count_response(m, resp.status);
        if resp.keep_alive && !self.close_after {
            Outcome::DoneKeep(end)
        } else {
            Outcome::DoneClose(end)
        }
    }

    /// The connection ended (at `end`) while reading a response: complete if it was delimited
    /// by the close.
    fn finish_eof(&mut self, m: &mut Measured, end: Instant) -> Result<Outcome, Fail> {
        match self.reader.finish_on_eof() {
            Ok(resp) => {
                self.count_response(m, resp.status);
                Ok(Outcome::DoneClose(end))
            }
            Err(_) => Err(Fail(FailureKind::ShortBody, None)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
