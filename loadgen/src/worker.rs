//! One worker thread of the load generator: a `mio::Poll` driving many client connections
//! ([`ClientConn`], over TLS or, for an `http://` target, plain: the worker is generic over the
//! session, so the TLS path pays nothing for the plain one). The worker only drives them:
//! readiness in, I/O through the connection, interest re-registered only when it changes.
//! It owns what spans connections: each slot runs operations back to back (closed loop) or
//! when the worker's schedule says so (open loop, `--rate`); free slots wait in a free list
//! and deadlines (operation timeouts, retry backoffs) in a heap, so a wake-up touches only
//! the slots it concerns. Results stay in the worker until the end; a copy of the interval
//! histogram goes to the main thread once per report interval.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use common::io::interrupted;

use common::session::Plain;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use rustls::ClientConnection;

use crate::conn::{ClientConn, ClientSession, Fail, Op, Outcome, Wake};
use crate::plan::Plan;
use crate::schedule::Schedule;
use crate::stats::{self, FailureKind, Hist, Measured};
use crate::tlsconf::WorkerTls;

/// After a failed operation a slot waits this long before the next one, so a dead server
/// costs errors, not a spinning core.
const RETRY_BACKOFF: Duration = Duration::from_millis(10);
/// How long a worker that nothing wakes sleeps before it looks at the stop flag again
/// (Ctrl-C, another worker's fatal error, `--max-errors`).
const STOP_CHECK: Duration = Duration::from_millis(20);

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

/// A connection with its socket and the interest it is registered with.
struct Live<S> {
    stream: TcpStream,
    conn: ClientConn<S>,
    interest: Interest,
}

/// One of the worker's connection slots.
struct Slot<S> {
    live: Option<Live<S>>,
    /// After a failure the slot waits for its backoff timer before the next operation.
    backing_off: bool,
    /// The slot is in the free list (kept once, however often it is freed).
    listed: bool,
    /// Bumped whenever the slot's operation or backoff ends, so a timer set for an earlier
    /// one is recognised and skipped when it fires (lazy deletion from the heap).
    generation: u64,
}

impl<S: ClientSession> Slot<S> {
    /// No operation in flight and no backoff: an operation may start here.
    fn is_free(&self) -> bool {
        !self.backing_off && self.live.as_ref().is_none_or(|l| l.conn.is_idle())
    }
}

/// What a timer ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    /// The operation's deadline (`--timeout`).
    Deadline,
    /// The retry backoff after a failure.
    Backoff,
}

/// A timer in the worker's heap; valid while its slot's generation is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    at: Instant,
    slot: usize,
    generation: u64,
    kind: TimerKind,
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
    slots: Vec<Slot<S>>,
    /// Slots where an operation may start, most recently freed last (its connection, if
    /// kept alive, is the warmest). Entries whose slot stopped being free are skipped.
    free: Vec<usize>,
    /// Operation deadlines and retry backoffs, earliest first.
    timers: BinaryHeap<Reverse<Timer>>,
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
            slots: (0..n)
                .map(|_| Slot {
                    live: None,
                    backing_off: false,
                    listed: true,
                    generation: 0,
                })
                .collect(),
            // Reversed, so slot 0 is taken first.
            free: (0..n).rev().collect(),
            timers: BinaryHeap::new(),
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
            self.fire_timers(now);
            self.schedule(now);
            if now >= next_report {
                let h = std::mem::replace(&mut self.interval_hist, stats::new_hist());
                let _ = self.spec.intervals.send((self.interval_index, h));
                self.interval_index += 1;
                next_report += self.plan.report_interval;
            }

            let mut wake = next_report.min(now + STOP_CHECK);
            if let Some(e) = self.end {
                wake = wake.min(e);
            }
            if self.schedule.is_some()
                && self.has_free_slot()
                && let Some(s) = &self.schedule
            {
                wake = wake.min(s.next());
            }
            if let Some(Reverse(t)) = self.timers.peek() {
                wake = wake.min(t.at);
            }
            let timeout = wake.saturating_duration_since(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, Some(timeout))
                && !interrupted(&e)
            {
                self.shared.fatal(format!("epoll failed: {e}"));
                break;
            }
            for ev in events.iter() {
                let wake = Wake::Event {
                    readable: ev.is_readable() || ev.is_read_closed() || ev.is_error(),
                    trust_short_reads: !ev.is_read_closed() && !ev.is_error(),
                };
                self.drive(ev.token().0, wake);
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
        for slot in &mut self.slots {
            if let Some(mut l) = slot.live.take() {
                let _ = self.poll.registry().deregister(&mut l.stream);
                l.conn.abandon(&mut l.stream, &mut self.m);
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

    /// Whether an operation could start now; drops stale entries off the free list's top.
    fn has_free_slot(&mut self) -> bool {
        while let Some(&slot) = self.free.last() {
            if self.slots[slot].is_free() {
                return true;
            }
            self.free.pop();
            self.slots[slot].listed = false;
        }
        false
    }

    /// Puts `slot` on the free list if an operation may start there.
    fn release(&mut self, slot: usize) {
        let s = &mut self.slots[slot];
        if s.is_free() && !s.listed {
            s.listed = true;
            self.free.push(slot);
        }
    }

    /// Sets a timer for `slot`'s current generation.
    fn set_timer(&mut self, slot: usize, at: Instant, kind: TimerKind) {
        let generation = self.slots[slot].generation;
        self.timers.push(Reverse(Timer {
            at,
            slot,
            generation,
            kind,
        }));
        // Stale timers leave only when they come due; with long timeouts and short
        // operations they would pile up, so they are swept once they outnumber the slots.
        if self.timers.len() > 4 * self.slots.len() + 64 {
            let slots = &self.slots;
            self.timers
                .retain(|Reverse(t)| slots[t.slot].generation == t.generation);
        }
    }

    /// Ends the operations whose deadline passed and the backoffs that are over.
    fn fire_timers(&mut self, now: Instant) {
        while let Some(&Reverse(t)) = self.timers.peek() {
            if t.at > now {
                break;
            }
            self.timers.pop();
            if self.slots[t.slot].generation != t.generation {
                continue;
            }
            match t.kind {
                TimerKind::Deadline => {
                    let expired = self.slots[t.slot]
                        .live
                        .as_ref()
                        .and_then(|l| l.conn.expired(now, self.plan).map(|k| (k, l.conn.op())));
                    if let Some((kind, op)) = expired {
                        self.op_failed(t.slot, kind, op.measured);
                    }
                }
                TimerKind::Backoff => {
                    self.slots[t.slot].backing_off = false;
                    self.release(t.slot);
                }
            }
        }
    }

    /// Starts operations on free slots: at once (closed loop) or when due (open loop).
    fn schedule(&mut self, now: Instant) {
        // Each slot free at the start of the pass at most once, as a slot freed again by its
        // own operation (one that failed at once) waits for the next pass.
        let mut budget = self.free.len();
        while budget > 0 && !self.quota_reached() && self.has_free_slot() {
            budget -= 1;
            let intended = match self.schedule.as_mut() {
                None => None,
                Some(s) => match s.take(now) {
                    Some(t) => Some(t),
                    None => return,
                },
            };
            let Some(slot) = self.free.pop() else {
                return;
            };
            self.slots[slot].listed = false;
            self.start_op(slot, intended);
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
        self.slots[slot].generation += 1;
        if let Some(l) = self.slots[slot].live.as_mut() {
            let op = Op {
                intended: intended.unwrap_or(now),
                started: now,
                measured,
            };
            l.conn.next_op(op, self.plan);
            self.arm_deadline(slot);
            self.drive(slot, Wake::Started);
            return;
        }
        match self.connect(slot, intended, measured) {
            Ok(()) => self.arm_deadline(slot),
            Err(Fail(kind, _)) => self.op_failed(slot, kind, measured),
        }
    }

    /// Sets the timer for the deadline of the operation in flight on `slot`.
    fn arm_deadline(&mut self, slot: usize) {
        let deadline = self.slots[slot]
            .live
            .as_ref()
            .and_then(|l| l.conn.deadline(self.plan));
        if let Some(at) = deadline {
            self.set_timer(slot, at, TimerKind::Deadline);
        }
    }

    /// Opens a connection on `slot` for an operation.
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
        let op = Op {
            intended: intended.unwrap_or(now),
            started: now,
            measured,
        };
        self.slots[slot].live = Some(Live {
            stream,
            conn: ClientConn::connecting(tls, offered, op, self.plan),
            interest,
        });
        Ok(())
    }

    fn drive(&mut self, slot: usize, wake: Wake) {
        let result = match self.slots[slot].live.as_mut() {
            Some(l) => l
                .conn
                .on_ready(&mut l.stream, wake, self.plan, &mut self.m, self.clock),
            None => return,
        };
        match result {
            Ok(Outcome::Pending) => self.reregister(slot),
            Ok(Outcome::IdleClosed) => {
                self.close(slot);
                self.release(slot);
            }
            Ok(Outcome::DoneKeep(end)) => self.op_done(slot, end, true),
            Ok(Outcome::DoneClose(end)) => self.op_done(slot, end, false),
            Err(Fail(kind, detail)) => {
                let measured = self.slots[slot]
                    .live
                    .as_ref()
                    .is_some_and(|l| l.conn.op().measured);
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
        let Some(l) = self.slots[slot].live.as_mut() else {
            return;
        };
        let want = match l.conn.wants() {
            (_, true) => Interest::READABLE | Interest::WRITABLE,
            (_, false) => Interest::READABLE,
        };
        if want != l.interest {
            if self
                .poll
                .registry()
                .reregister(&mut l.stream, Token(slot), want)
                .is_err()
            {
                let measured = l.conn.op().measured;
                self.op_failed(slot, FailureKind::Io, measured);
                return;
            }
            l.interest = want;
        }
    }

    /// Records the operation on `slot` that completed at `end`.
    fn op_done(&mut self, slot: usize, end: Instant, keep: bool) {
        let Some(l) = self.slots[slot].live.as_mut() else {
            return;
        };
        l.conn.op_done(keep);
        let op = l.conn.op();
        self.slots[slot].generation += 1;
        if op.measured {
            #[cfg(test)]
            self.trace.push((self.pass, op.started, end));
            let corrected = end.saturating_duration_since(op.intended);
            stats::record(&mut self.m.request, corrected);
            stats::record(
                &mut self.m.request_uncorrected,
                end.saturating_duration_since(op.started),
            );
            stats::record(&mut self.interval_hist, corrected);
            self.finished += 1;
            self.shared.done.fetch_add(1, Ordering::Relaxed);
        }
        if !keep {
            self.close(slot);
        }
        self.release(slot);
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
        self.slots[slot].backing_off = true;
        self.set_timer(slot, Instant::now() + RETRY_BACKOFF, TimerKind::Backoff);
    }

    /// Closes the connection on `slot`, if any, and invalidates its timers.
    fn close(&mut self, slot: usize) {
        let s = &mut self.slots[slot];
        s.generation += 1;
        if let Some(mut l) = s.live.take() {
            let _ = self.poll.registry().deregister(&mut l.stream);
            l.conn.close(&mut l.stream, &mut self.m);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
