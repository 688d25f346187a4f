//! One worker thread of the load generator: a `mio::Poll` driving many
//! `rustls::ClientConnection`s (or, for an `http://` target, plain connections: the same
//! worker, generic over [`Session`], so the TLS path pays nothing for the plain one). Each connection slot runs operations back to back (closed
//! loop) or when the worker's schedule says so (open loop, `--rate`), measures connect,
//! handshake, time to first byte and the whole operation (each read from the clock at the
//! operation's own events), and classifies every handshake with `handshake_kind()` and
//! whether a HelloRetryRequest came first. Results stay in the worker until the end; a copy of the interval
//! histogram goes to the main thread once per report interval.

use std::io::{self, BufRead, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use common::session::{Plain, Session};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use rustls::ClientConnection;
use rustls::pki_types::ServerName;

use crate::response::ResponseReader;
use crate::schedule::Schedule;
use crate::stats::{self, FailureKind, HandshakeClass, Hist, Measured};
use crate::tlsconf::WorkerTls;

/// Plaintext queued in rustls before more upload body is encrypted (as on the server).
const OUT_WINDOW: usize = 64 * 1024;
/// After a failed operation a slot waits this long before the next one, so a dead server
/// costs errors, not a spinning core.
const RETRY_BACKOFF: Duration = Duration::from_millis(10);
/// How often timeouts are checked when nothing else wakes the worker.
const TICK: Duration = Duration::from_millis(20);

/// What every worker does, shared read-only.
pub(crate) struct Plan {
    pub addr: SocketAddr,
    /// Plain HTTP (an `http://` target): no TLS, no handshake.
    pub plain: bool,
    pub server_name: ServerName<'static>,
    /// The request head for a request that keeps the connection open.
    pub request: Vec<u8>,
    /// The same with `Connection: close`, for the last request on a connection.
    pub request_close: Vec<u8>,
    pub head_request: bool,
    /// Request body bytes (`--upload`).
    pub upload: u64,
    pub new_conn: bool,
    pub requests_per_conn: Option<u64>,
    pub resume_ratio: f64,
    pub timeout: Duration,
    pub warmup: Duration,
    pub duration: Option<Duration>,
    pub insecure: bool,
    /// Where trusted roots came from, for error messages.
    pub trust: crate::verify::Trust,
    pub report_interval: Duration,
}

impl Plan {
    /// What `opts` asks every worker to do; without `-d` or `-n` a run lasts 10 s.
    pub fn new(opts: &crate::LoadOptions) -> Plan {
        Plan {
            addr: opts.target.addr,
            plain: opts.target.plain,
            server_name: opts.target.server_name.clone(),
            request: crate::request_head(opts, false),
            request_close: crate::request_head(opts, true),
            head_request: opts.method.eq_ignore_ascii_case("HEAD"),
            upload: opts.upload,
            new_conn: opts.new_conn,
            requests_per_conn: opts.requests_per_conn,
            resume_ratio: if opts.tls.resume == crate::ResumeMode::Off || opts.target.plain {
                0.0
            } else {
                opts.resume_ratio
            },
            timeout: opts.timeout,
            warmup: opts.warmup,
            duration: match (opts.duration, opts.requests) {
                (None, None) => Some(Duration::from_secs(10)),
                (d, _) => d,
            },
            insecure: opts.tls.insecure,
            trust: opts.tls.trust.clone(),
            report_interval: opts.report_interval.max(Duration::from_millis(100)),
        }
    }
}

/// State all workers and the main thread share.
#[derive(Default)]
pub(crate) struct Shared {
    /// Stop now (deadline, Ctrl-C, --max-errors, a fatal error).
    pub stop: AtomicBool,
    /// Why the run was cut short, if it was.
    pub abort: Mutex<Option<String>>,
    /// Errors so far, all workers (for --max-errors).
    pub errors: AtomicU64,
    /// Measured operations finished so far, all workers (for the progress line).
    pub done: AtomicU64,
    /// Limit of errors before the run stops.
    pub max_errors: Option<u64>,
    /// A certificate was refused (not under --insecure): the run stopped for that.
    pub verify_failed: AtomicBool,
}

impl Shared {
    fn fatal(&self, why: String) {
        if let Ok(mut a) = self.abort.lock()
            && a.is_none()
        {
            *a = Some(why);
        }
        self.stop.store(true, Ordering::Release);
    }
}

/// One worker's share of the run.
pub(crate) struct WorkerSpec {
    pub connections: usize,
    /// Measured operations this worker performs (`-n`), if bounded by count.
    pub quota: Option<u64>,
    /// Operations per second for this worker (`--rate`), if open loop.
    pub rate: Option<f64>,
    pub tls: WorkerTls,
    /// The CPU this worker pins itself to, if any.
    pub pin_cpu: Option<usize>,
    /// When the run started (the same instant for all workers).
    pub start: Instant,
    pub intervals: mpsc::Sender<(u64, Hist)>,
    /// This worker's index and the number of workers: open-loop arrivals are staggered by it.
    pub place: (usize, usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Connecting,
    Handshaking,
    Requesting,
    Responding,
    /// Keep-alive connection waiting for its next operation (open loop).
    Idle,
}

struct Conn<S> {
    stream: TcpStream,
    tls: S,
    phase: Phase,
    interest: Interest,
    /// The operation's intended start (its schedule slot) and actual start.
    intended: Instant,
    started: Instant,
    measured: bool,
    connect_started: Instant,
    connected: Option<Instant>,
    request_sent: Instant,
    first_byte: bool,
    /// Requests completed on this connection.
    served: u64,
    offered: bool,
    /// The server answered with a HelloRetryRequest (rustls forgets it if it then resumes).
    saw_hrr: bool,
    reader: ResponseReader,
    head_off: usize,
    close_after: bool,
    upload_left: u64,
    unflushed: usize,
}

enum Outcome {
    /// Still working.
    Pending,
    /// The operation finished at this instant; keep the connection for another (keep-alive).
    DoneKeep(Instant),
    /// The operation finished at this instant; close the connection.
    DoneClose(Instant),
    /// An idle keep-alive connection was closed by the server: no operation was involved.
    IdleClosed,
}

struct Fail(FailureKind, Option<String>);

/// How a connection's session starts: a rustls client, or plain.
trait ClientSession: Session + Sized {
    fn open(plan: &Plan, tls: &WorkerTls) -> Result<Self, Fail>;
}

impl ClientSession for ClientConnection {
    fn open(plan: &Plan, tls: &WorkerTls) -> Result<Self, Fail> {
        ClientConnection::new(Arc::clone(&tls.config), plan.server_name.clone())
            .map_err(|e| Fail(FailureKind::Tls, Some(e.to_string())))
    }
}

impl ClientSession for Plain {
    fn open(_: &Plan, _: &WorkerTls) -> Result<Self, Fail> {
        Ok(Plain::new())
    }
}

pub(crate) fn run(plan: &Plan, shared: &Shared, spec: WorkerSpec) -> Measured {
    if plan.plain {
        run_with::<Plain>(plan, shared, spec)
    } else {
        run_with::<ClientConnection>(plan, shared, spec)
    }
}

fn run_with<S: ClientSession>(plan: &Plan, shared: &Shared, spec: WorkerSpec) -> Measured {
    if let Some(cpu) = spec.pin_cpu
        && let Err(e) = common::cpu::pin_current_thread(cpu)
    {
        shared.fatal(format!("pinning a worker to CPU {cpu}: {e}"));
        return Measured::default();
    }
    let mut w = match Worker::<S>::new(plan, shared, spec) {
        Ok(w) => w,
        Err(e) => {
            shared.fatal(format!("worker could not start: {e}"));
            return Measured::default();
        }
    };
    w.run();
    w.finish()
}

struct Worker<'a, S> {
    plan: &'a Plan,
    shared: &'a Shared,
    spec: WorkerSpec,
    poll: Poll,
    slots: Vec<Option<Conn<S>>>,
    retry_at: Vec<Option<Instant>>,
    m: Measured,
    interval_hist: Hist,
    interval_index: u64,
    /// Open loop: when operations are due.
    schedule: Option<Schedule>,
    /// Measured operations finished and started.
    finished: u64,
    started_ops: u64,
    /// Bresenham accumulator for --resume-ratio: offers exactly that fraction of connections.
    offer_acc: f64,
    warmup_end: Instant,
    end: Option<Instant>,
    cpu_start: Option<(common::cpu::CpuTime, Instant)>,
    /// Reads the time at each operation's own events (connect issued, connected, handshake
    /// done, request written, first byte, response complete), never once per pass: a pass
    /// that completes several operations gives each its own end. `Instant::now` (vDSO); tests
    /// substitute a clock that never returns the same instant twice.
    clock: fn() -> Instant,
    /// Event-loop passes so far, and each measured operation's (pass, start, end).
    #[cfg(test)]
    pass: u64,
    #[cfg(test)]
    trace: Vec<(u64, Instant, Instant)>,
}

impl<'a, S: ClientSession> Worker<'a, S> {
    fn new(plan: &'a Plan, shared: &'a Shared, spec: WorkerSpec) -> io::Result<Worker<'a, S>> {
        let poll = Poll::new()?;
        let n = spec.connections.max(1);
        let warmup_end = spec.start + plan.warmup;
        let end = plan.duration.map(|d| warmup_end + d);
        let (index, workers) = spec.place;
        Ok(Worker {
            plan,
            shared,
            schedule: spec
                .rate
                .map(|r| Schedule::new(r, index, workers, spec.start)),
            spec,
            poll,
            slots: (0..n).map(|_| None).collect(),
            retry_at: vec![None; n],
            m: Measured::default(),
            interval_hist: stats::new_hist(),
            interval_index: 0,
            finished: 0,
            started_ops: 0,
            offer_acc: 0.0,
            warmup_end,
            end,
            cpu_start: None,
            clock: Instant::now,
            #[cfg(test)]
            pass: 0,
            #[cfg(test)]
            trace: Vec::new(),
        })
    }

    fn quota_reached(&self) -> bool {
        self.spec.quota.is_some_and(|q| self.started_ops >= q)
    }

    fn run(&mut self) {
        let mut events = Events::with_capacity(1024);
        let mut next_tick = Instant::now() + TICK;
        let mut next_report = self.warmup_end + self.plan.report_interval;
        if self.plan.warmup.is_zero() {
            self.cpu_start = Some((common::cpu::thread(), Instant::now()));
        }
        loop {
            #[cfg(test)]
            {
                self.pass += 1;
            }
            let now = Instant::now();
            if self.cpu_start.is_none() && now >= self.warmup_end {
                self.cpu_start = Some((common::cpu::thread(), now));
            }
            if self.shared.stop.load(Ordering::Acquire) || self.end.is_some_and(|e| now >= e) {
                break;
            }
            if self.spec.quota.is_some_and(|q| self.finished >= q) {
                break;
            }
            self.schedule(now);
            if now >= next_report {
                let h = std::mem::replace(&mut self.interval_hist, stats::new_hist());
                let _ = self.spec.intervals.send((self.interval_index, h));
                self.interval_index += 1;
                next_report += self.plan.report_interval;
            }

            let mut wake = next_tick.min(next_report);
            if let Some(e) = self.end {
                wake = wake.min(e);
            }
            if let Some(s) = &self.schedule
                && self.has_free_slot()
            {
                wake = wake.min(s.next());
            }
            for t in self.retry_at.iter().flatten() {
                wake = wake.min(*t);
            }
            let timeout = wake.saturating_duration_since(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, Some(timeout))
                && e.kind() != io::ErrorKind::Interrupted
            {
                self.shared.fatal(format!("epoll failed: {e}"));
                break;
            }
            let now = Instant::now();
            for ev in events.iter() {
                let slot = ev.token().0;
                self.drive(slot);
            }
            if now >= next_tick {
                self.sweep(now);
                next_tick = now + TICK;
            }
        }
        let stopped = Instant::now();
        self.m.counters.started = self.started_ops;
        if let Some(s) = &self.schedule {
            let until = self.end.map_or(stopped, |e| e.min(stopped));
            let missed = s.not_started(self.warmup_end, until);
            // Under -n, slots past the quota were never going to start.
            self.m.counters.not_started = match self.spec.quota {
                Some(q) => missed.min(q.saturating_sub(self.started_ops)),
                None => missed,
            };
        }
        // Deadline: what is in flight is abandoned, not counted (wrk and h2load do the same).
        for slot in 0..self.slots.len() {
            if let Some(mut c) = self.slots[slot].take() {
                let _ = self.poll.registry().deregister(&mut c.stream);
                c.tls.send_close_notify();
                let _ = c.tls.write_tls(&mut c.stream);
            }
        }
        let h = std::mem::replace(&mut self.interval_hist, stats::new_hist());
        let _ = self.spec.intervals.send((self.interval_index, h));
    }

    fn finish(mut self) -> Measured {
        let now = Instant::now();
        if let Some((cpu0, t0)) = self.cpu_start {
            let cpu = common::cpu::thread().since(&cpu0);
            let wall = now.saturating_duration_since(t0).as_secs_f64();
            self.m.cpu = cpu;
            if wall > 0.0 {
                self.m.max_worker_cpu_share = cpu.total().as_secs_f64() / wall;
            }
        }
        self.m
    }

    fn has_free_slot(&self) -> bool {
        self.slots.iter().enumerate().any(|(i, s)| {
            self.retry_at[i].is_none() && s.as_ref().is_none_or(|c| c.phase == Phase::Idle)
        })
    }

    /// Starts operations on free slots: at once (closed loop) or when due (open loop).
    fn schedule(&mut self, now: Instant) {
        for i in 0..self.slots.len() {
            if let Some(t) = self.retry_at[i] {
                if now < t {
                    continue;
                }
                self.retry_at[i] = None;
            }
            let free = self.slots[i]
                .as_ref()
                .is_none_or(|c| c.phase == Phase::Idle);
            if !free || self.quota_reached() {
                continue;
            }
            let intended = match self.schedule.as_mut() {
                None => None,
                Some(s) => match s.take(now) {
                    Some(t) => Some(t),
                    None => return,
                },
            };
            self.start_op(i, intended);
        }
    }

    /// Starts an operation on `slot`: open loop at its schedule slot `intended`, closed loop
    /// (`None`) intended for when it actually starts.
    fn start_op(&mut self, slot: usize, intended: Option<Instant>) {
        let now = (self.clock)();
        let measured = intended.unwrap_or(now) >= self.warmup_end;
        if measured {
            self.started_ops += 1;
        }
        let reuse = self.slots[slot]
            .as_ref()
            .is_some_and(|c| c.phase == Phase::Idle);
        if reuse {
            if let Some(c) = self.slots[slot].as_mut() {
                c.intended = intended.unwrap_or(now);
                c.started = now;
                c.measured = measured;
                c.phase = Phase::Requesting;
            }
            self.begin_request(slot);
            self.drive(slot);
            return;
        }
        match self.connect(slot, intended, measured) {
            Ok(()) => {}
            Err(Fail(kind, _)) => self.op_failed(slot, kind, measured),
        }
    }

    fn connect(
        &mut self,
        slot: usize,
        intended: Option<Instant>,
        measured: bool,
    ) -> Result<(), Fail> {
        let offer = if self.plan.resume_ratio >= 1.0 {
            true
        } else {
            // Offer on exactly the given fraction of new connections, evenly spread.
            self.offer_acc += self.plan.resume_ratio;
            if self.offer_acc >= 1.0 {
                self.offer_acc -= 1.0;
                true
            } else {
                false
            }
        };
        if let Some(store) = &self.spec.tls.store {
            store.set_offer(offer);
        }
        let tls = S::open(self.plan, &self.spec.tls)?;
        let offered = self
            .spec
            .tls
            .store
            .as_ref()
            .is_some_and(|s| s.take_offered());
        if measured && offer && self.spec.tls.store.is_some() && !offered {
            self.m.counters.offer_missed += 1;
        }
        // The operation starts when the connect is issued, after the TLS state is set up.
        let now = (self.clock)();
        let mut stream =
            TcpStream::connect(self.plan.addr).map_err(|e| Fail(FailureKind::of_io(&e), None))?;
        let interest = Interest::READABLE | Interest::WRITABLE;
        self.poll
            .registry()
            .register(&mut stream, Token(slot), interest)
            .map_err(|e| Fail(FailureKind::of_io(&e), None))?;
        if measured {
            self.m.counters.connections += 1;
        }
        self.slots[slot] = Some(Conn {
            stream,
            tls,
            phase: Phase::Connecting,
            interest,
            intended: intended.unwrap_or(now),
            started: now,
            measured,
            connect_started: now,
            connected: None,
            request_sent: now,
            first_byte: false,
            served: 0,
            offered,
            saw_hrr: false,
            reader: ResponseReader::new(),
            head_off: 0,
            close_after: false,
            upload_left: 0,
            unflushed: 0,
        });
        self.begin_request(slot);
        Ok(())
    }

    /// Prepares the next request on `slot` (head and upload counters).
    fn begin_request(&mut self, slot: usize) {
        let plan = self.plan;
        let Some(c) = self.slots[slot].as_mut() else {
            return;
        };
        let last = plan.new_conn || plan.requests_per_conn.is_some_and(|k| c.served + 1 >= k);
        c.close_after = last;
        c.head_off = 0;
        c.upload_left = plan.upload;
        c.first_byte = false;
        c.reader.start(plan.head_request);
    }

    fn drive(&mut self, slot: usize) {
        let result = match self.slots[slot].as_mut() {
            Some(c) => step(c, self.plan, &mut self.m, self.clock),
            None => return,
        };
        match result {
            Ok(Outcome::Pending) => self.reregister(slot),
            Ok(Outcome::IdleClosed) => self.close(slot),
            Ok(Outcome::DoneKeep(end)) => self.op_done(slot, end, true),
            Ok(Outcome::DoneClose(end)) => self.op_done(slot, end, false),
            Err(Fail(kind, detail)) => {
                let measured = self.slots[slot].as_ref().is_some_and(|c| c.measured);
                if kind == FailureKind::CertVerify && !self.plan.insecure {
                    let why = detail.unwrap_or_else(|| "certificate verification failed".into());
                    self.shared.verify_failed.store(true, Ordering::Release);
                    self.shared.fatal(why);
                }
                self.op_failed(slot, kind, measured);
            }
        }
    }

    fn reregister(&mut self, slot: usize) {
        let Some(c) = self.slots[slot].as_mut() else {
            return;
        };
        let want = match c.phase {
            Phase::Connecting => Interest::READABLE | Interest::WRITABLE,
            _ if c.tls.wants_write() => Interest::READABLE | Interest::WRITABLE,
            _ => Interest::READABLE,
        };
        if want != c.interest {
            if self
                .poll
                .registry()
                .reregister(&mut c.stream, Token(slot), want)
                .is_err()
            {
                let measured = c.measured;
                self.op_failed(slot, FailureKind::Io, measured);
                return;
            }
            c.interest = want;
        }
    }

    /// Records the operation on `slot` that completed at `end`.
    fn op_done(&mut self, slot: usize, end: Instant, keep: bool) {
        let Some(c) = self.slots[slot].as_mut() else {
            return;
        };
        c.served += 1;
        if c.measured {
            #[cfg(test)]
            self.trace.push((self.pass, c.started, end));
            let corrected = end.saturating_duration_since(c.intended);
            stats::record(&mut self.m.request, corrected);
            stats::record(
                &mut self.m.request_uncorrected,
                end.saturating_duration_since(c.started),
            );
            stats::record(&mut self.interval_hist, corrected);
            self.finished += 1;
            self.shared.done.fetch_add(1, Ordering::Relaxed);
        }
        if keep {
            c.phase = Phase::Idle;
        } else {
            self.close(slot);
        }
    }

    fn op_failed(&mut self, slot: usize, kind: FailureKind, measured: bool) {
        self.close(slot);
        if measured {
            self.m.counters.error(kind);
            self.finished += 1;
            let total = self.shared.errors.fetch_add(1, Ordering::Relaxed) + 1;
            if self.shared.max_errors.is_some_and(|m| total >= m) {
                self.shared
                    .fatal(format!("stopped after {total} errors (--max-errors)"));
            }
        }
        self.retry_at[slot] = Some(Instant::now() + RETRY_BACKOFF);
    }

    fn close(&mut self, slot: usize) {
        if let Some(mut c) = self.slots[slot].take() {
            let _ = self.poll.registry().deregister(&mut c.stream);
            if !c.tls.is_handshaking() {
                c.tls.send_close_notify();
                let _ = c.tls.write_tls(&mut c.stream);
            }
        }
    }

    fn sweep(&mut self, now: Instant) {
        for slot in 0..self.slots.len() {
            let expired = self.slots[slot]
                .as_ref()
                .is_some_and(|c| c.phase != Phase::Idle && now >= c.started + self.plan.timeout);
            if expired {
                let measured = self.slots[slot].as_ref().is_some_and(|c| c.measured);
                self.op_failed(slot, FailureKind::Timeout, measured);
            }
        }
    }
}

/// Drives one connection as far as its socket allows.
fn step<S: Session>(
    c: &mut Conn<S>,
    plan: &Plan,
    m: &mut Measured,
    clock: fn() -> Instant,
) -> Result<Outcome, Fail> {
    if c.phase == Phase::Connecting {
        match c.stream.take_error() {
            Ok(Some(e)) | Err(e) => return Err(Fail(FailureKind::of_io(&e), None)),
            Ok(None) => {}
        }
        match c.stream.peer_addr() {
            Ok(_) => {
                let now = clock();
                c.connected = Some(now);
                if c.measured {
                    stats::record(
                        &mut m.connect,
                        now.saturating_duration_since(c.connect_started),
                    );
                }
                let _ = c.stream.set_nodelay(true);
                // A plain session has no handshake: the request goes out at once.
                c.phase = if c.tls.is_handshaking() {
                    Phase::Handshaking
                } else {
                    Phase::Requesting
                };
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(Outcome::Pending),
            Err(e) => return Err(Fail(FailureKind::of_io(&e), None)),
        }
    }
    if c.phase == Phase::Idle {
        // The server may close an idle keep-alive connection (close_notify, FIN, reset):
        // notice it without calling it an error. Anything else it sends is unexpected too.
        return match c.tls.read_tls(&mut c.stream) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Outcome::Pending),
            Ok(0) | Err(_) => Ok(Outcome::IdleClosed),
            Ok(_) => match c.tls.process_new_packets() {
                Ok(got) if got.plaintext_bytes == 0 && !got.peer_closed => Ok(Outcome::Pending),
                _ => Ok(Outcome::IdleClosed),
            },
        };
    }
    loop {
        let mut progress = false;

        // Queue request bytes once the handshake is done.
        if c.phase == Phase::Requesting {
            let head: &[u8] = if c.close_after {
                &plan.request_close
            } else {
                &plan.request
            };
            if c.head_off < head.len() {
                let n = c
                    .tls
                    .writer()
                    .write(&head[c.head_off..])
                    .map_err(|e| Fail(FailureKind::Tls, Some(e.to_string())))?;
                c.head_off += n;
                c.unflushed += n;
                progress |= n > 0;
            }
            while c.head_off >= head.len() && c.upload_left > 0 && c.unflushed < OUT_WINDOW {
                let chunk = common::pattern::chunk(plan.upload - c.upload_left, c.upload_left);
                let n = c
                    .tls
                    .writer()
                    .write(chunk)
                    .map_err(|e| Fail(FailureKind::Tls, Some(e.to_string())))?;
                if n == 0 {
                    break;
                }
                c.upload_left -= n as u64;
                c.unflushed += n;
                if c.measured {
                    m.counters.body_bytes_out += n as u64;
                }
                progress = true;
            }
            if c.head_off >= head.len() && c.upload_left == 0 {
                c.phase = Phase::Responding;
                c.request_sent = clock();
            }
        }

        while c.tls.wants_write() {
            match c.tls.write_tls(&mut c.stream) {
                Ok(0) => return Err(Fail(FailureKind::Reset, None)),
                Ok(_) => progress = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Fail(FailureKind::of_io(&e), None)),
            }
        }
        if !c.tls.wants_write() {
            c.unflushed = 0;
        }

        let mut eof = false;
        if c.tls.wants_read() {
            match c.tls.read_tls(&mut c.stream) {
                Ok(0) => eof = true,
                Ok(_) => progress = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => progress = true,
                Err(e) => return Err(Fail(FailureKind::of_io(&e), None)),
            }
            if progress || eof {
                if let Err(err) = c.tls.process_new_packets() {
                    // Let the peer see our alert before we go.
                    let _ = c.tls.write_tls(&mut c.stream);
                    return Err(classify_tls(&err, m, plan));
                }
                // Between the HRR and the server's second hello, which needs our second
                // ClientHello first, so no single read spans both.
                c.saw_hrr |= c.tls.handshake_kind()
                    == Some(rustls::HandshakeKind::FullWithHelloRetryRequest);
            }
        }

        if c.phase == Phase::Handshaking {
            if !c.tls.is_handshaking() {
                handshake_done(c, m, clock())?;
                // The request goes out in the same pass, with the client's Finished.
                c.phase = Phase::Requesting;
                continue;
            }
            if eof {
                return Err(Fail(FailureKind::Reset, None));
            }
        }

        if c.phase == Phase::Responding {
            loop {
                let mut rd = c.tls.reader();
                let buf = match rd.fill_buf() {
                    Ok(b) => b,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        drop(rd);
                        return finish_eof(c, m, clock());
                    }
                    Err(e) => return Err(Fail(FailureKind::of_io(&e), None)),
                };
                if buf.is_empty() {
                    // close_notify: the response may be delimited by the close.
                    drop(rd);
                    return finish_eof(c, m, clock());
                }
                if !c.first_byte {
                    c.first_byte = true;
                    if c.measured {
                        let ttfb = clock().saturating_duration_since(c.request_sent);
                        stats::record(&mut m.ttfb, ttfb);
                    }
                }
                let step = c
                    .reader
                    .feed(buf)
                    .map_err(|_| Fail(FailureKind::BadResponse, None))?;
                rd.consume(step.consumed);
                // The session's reader may have a destructor: end its borrow before `c` moves.
                drop(rd);
                if c.measured {
                    m.counters.body_bytes_in += step.body_bytes;
                }
                progress = true;
                if let Some(resp) = step.done {
                    return Ok(complete(c, m, resp, clock()));
                }
            }
            if eof {
                return finish_eof(c, m, clock());
            }
        } else if eof {
            return Err(Fail(FailureKind::Reset, None));
        }

        if !progress {
            return Ok(Outcome::Pending);
        }
    }
}

fn handshake_done<S: Session>(c: &mut Conn<S>, m: &mut Measured, now: Instant) -> Result<(), Fail> {
    let Some(kind) = c.tls.handshake_kind() else {
        return Err(Fail(
            FailureKind::Tls,
            Some("rustls finished a handshake without saying its kind".into()),
        ));
    };
    let tls13 = match c.tls.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_2) => false,
        Some(rustls::ProtocolVersion::TLSv1_3) => true,
        other => {
            return Err(Fail(
                FailureKind::Tls,
                Some(format!("handshake finished with version {other:?}")),
            ));
        }
    };
    if !c.measured {
        return Ok(());
    }
    let since = c.connected.unwrap_or(c.connect_started);
    stats::record(&mut m.handshake, now.saturating_duration_since(since));
    let k = &mut m.counters;
    let class = HandshakeClass::of(kind, c.saw_hrr);
    k.handshake(class);
    match class {
        HandshakeClass::Resumed | HandshakeClass::ResumedHrr if c.offered => {
            k.offered_resumed += 1;
        }
        HandshakeClass::Full
        | HandshakeClass::FullHrr
        | HandshakeClass::Resumed
        | HandshakeClass::ResumedHrr => {}
    }
    if c.offered {
        k.offered += 1;
    }
    if tls13 {
        k.tls13 += 1;
    } else {
        k.tls12 += 1;
    }
    Ok(())
}

/// Counts a finished response: 2xx as a request, anything else as an error by status.
fn count_response<S>(c: &Conn<S>, m: &mut Measured, status: u16) {
    if !c.measured {
        return;
    }
    if (200..300).contains(&status) {
        m.counters.requests += 1;
    } else {
        m.counters.error(FailureKind::HttpStatus);
        *m.counters.statuses.entry(status).or_default() += 1;
    }
}

fn complete<S>(
    c: &mut Conn<S>,
    m: &mut Measured,
    resp: crate::response::Response,
    end: Instant,
) -> Outcome {
    count_response(c, m, resp.status);
    if resp.keep_alive && !c.close_after {
        Outcome::DoneKeep(end)
    } else {
        Outcome::DoneClose(end)
    }
}

/// The connection ended (at `end`) while reading a response: complete if it was delimited by
/// the close.
fn finish_eof<S>(c: &mut Conn<S>, m: &mut Measured, end: Instant) -> Result<Outcome, Fail> {
    match c.reader.finish_on_eof() {
        Ok(resp) => {
            count_response(c, m, resp.status);
            Ok(Outcome::DoneClose(end))
        }
        Err(_) => Err(Fail(FailureKind::ShortBody, None)),
    }
}

fn classify_tls(err: &rustls::Error, m: &mut Measured, plan: &Plan) -> Fail {
    match err {
        rustls::Error::InvalidCertificate(_) => Fail(
            FailureKind::CertVerify,
            Some(crate::verify::describe_error(
                err,
                &plan.server_name,
                &plan.trust,
            )),
        ),
        rustls::Error::AlertReceived(a) => {
            *m.counters
                .alerts
                .entry(common::tls::alert_name(*a))
                .or_default() += 1;
            Fail(FailureKind::TlsAlert, None)
        }
        other => Fail(FailureKind::Tls, Some(other.to_string())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use common::certs::KeyType;

    use super::*;
    use crate::verify::{self, Trust, testutil};
    use crate::{LoadOptions, Target, tlsconf};

    /// The system clock, except that it never returns the same instant twice: operations that
    /// shared one reading would show up as equal instants.
    fn distinct_now() -> Instant {
        static LAST: Mutex<Option<Instant>> = Mutex::new(None);
        let mut last = LAST.lock().unwrap();
        let mut t = Instant::now();
        if let Some(l) = *last
            && t <= l
        {
            t = l + Duration::from_nanos(1);
        }
        *last = Some(t);
        t
    }

    /// Runs one closed-loop worker of `connections` keep-alive connections for `n` requests
    /// and returns each measured operation's (pass, start, end).
    fn traced_run(addr: SocketAddr, ca: &std::path::Path, n: u64) -> Vec<(u64, Instant, Instant)> {
        let url = format!("https://bank32.com:{}/", addr.port());
        let target = Target::new(&url, None, Some(&addr.to_string())).unwrap();
        let mut opts = LoadOptions::new(target, Trust::CaFile(ca.to_path_buf()));
        opts.connections = 16;
        opts.requests = Some(n);
        let plan = Plan::new(&opts);
        let shared = Shared::default();
        let roots = verify::root_store(&opts.tls.trust).unwrap();
        let (intervals, _rx) = mpsc::channel();
        let spec = WorkerSpec {
            connections: opts.connections,
            quota: opts.requests,
            rate: None,
            tls: tlsconf::worker_tls(&opts.tls, Some(&roots)).unwrap(),
            pin_cpu: None,
            start: Instant::now(),
            intervals,
            place: (0, 1),
        };
        let mut w = Worker::<ClientConnection>::new(&plan, &shared, spec).unwrap();
        w.clock = distinct_now;
        w.run();
        assert_eq!(w.m.counters.requests, n, "{:?}", w.m.counters);
        std::mem::take(&mut w.trace)
    }

    #[test]
    fn operations_completed_in_one_pass_each_get_their_own_start_and_end() {
        let chain = testutil::chain(KeyType::EcdsaP256);
        let (server, addr) = testutil::start(&chain, &server::TlsOptions::default());
        let ca = testutil::ca_file(&[&chain]);
        // Sixteen connections on one server worker: its answers arrive together, so a pass
        // often completes several operations. Until one does, the test would prove nothing.
        let mut busiest = 0;
        for _attempt in 0..5 {
            let n = 1000;
            let trace = traced_run(addr, &ca, n);
            assert_eq!(trace.len() as u64, n);
            for (i, &(_, start, end)) in trace.iter().enumerate() {
                assert!(start < end, "operation {i} ended when it started");
            }
            for (what, mut instants) in [
                ("start", trace.iter().map(|t| t.1).collect::<Vec<_>>()),
                ("end", trace.iter().map(|t| t.2).collect::<Vec<_>>()),
            ] {
                instants.sort();
                instants.dedup();
                assert_eq!(
                    instants.len() as u64,
                    n,
                    "operations shared a {what} instant: timed per pass, not per operation"
                );
            }
            let mut per_pass = std::collections::BTreeMap::<u64, u32>::new();
            for (pass, _, _) in &trace {
                *per_pass.entry(*pass).or_default() += 1;
            }
            busiest = per_pass.values().copied().max().unwrap_or(0);
            if busiest >= 2 {
                break;
            }
        }
        server.stop().unwrap();
        assert!(busiest >= 2, "no pass completed two operations in 5 runs");
    }
}
