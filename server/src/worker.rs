//! One worker thread: its own `mio::Poll`, its own SO_REUSEPORT listener (and, with
//! `--plain-listen`, a plain-HTTP one beside it) and a slab of connections of either kind.
//! Accepts until WouldBlock, drives each ready connection until its socket would block,
//! re-registers only when the interest the connection [`Wants`] changed, and sweeps deadlines
//! on a tick so no connection outlives its timeout.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use rustls::{ServerConfig, ServerConnection};
use slab::Slab;

use crate::config::Settings;
use crate::conn::{Conn, Ctx, Verdict, Wants};
use crate::http::DateCache;
use crate::stats::TimeoutKind;
use crate::stats::WorkerStats;
use common::io::{interrupted, would_block};
use common::session::Plain;

pub(crate) const LISTENER: Token = Token(0);
pub(crate) const WAKER: Token = Token(1);
pub(crate) const PLAIN_LISTENER: Token = Token(2);
const FIRST_CONN: usize = 3;

/// How long accepting pauses after EMFILE/ENFILE: long enough not to spin on a full
/// descriptor table, short enough to resume promptly when descriptors free up.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// State every worker and the controlling handle share.
#[derive(Default)]
pub(crate) struct Shared {
    /// Graceful stop requested.
    pub stop: AtomicBool,
    /// Stop now, cutting what is in flight.
    pub force: AtomicBool,
    /// Open connections across all workers, for `--max-connections`.
    pub active: AtomicUsize,
}

/// One open connection in the slab.
struct Entry {
    /// Its socket.
    stream: TcpStream,
    /// Its state machine, TLS or plain.
    conn: AnyConn,
    /// The interest registered now, compared with what the connection [`Wants`] after each
    /// event so `reregister` runs only on a change.
    interest: Interest,
}

/// A connection of either listener. Each kind is its own monomorphic `Conn`, so the TLS path
/// costs one match per event for the plain one's existence.
// Unboxed on purpose: the slab holds mostly TLS connections, and boxing them would add an
// allocation and a pointer chase per connection to save memory only on plain ones.
#[allow(clippy::large_enum_variant)]
enum AnyConn {
    Tls(Conn),
    Plain(Conn<Plain>),
}

/// Calls the same method on whichever connection it is.
macro_rules! each {
    ($conn:expr, $c:ident => $call:expr) => {
        match $conn {
            AnyConn::Tls($c) => $call,
            AnyConn::Plain($c) => $call,
        }
    };
}

impl AnyConn {
    fn on_ready(&mut self, io: &mut TcpStream, ctx: &mut Ctx<'_>, trust: bool) -> Verdict {
        each!(self, c => c.on_ready(io, ctx, trust))
    }
    fn wants(&self) -> Wants {
        each!(self, c => c.wants())
    }
    fn deadline(&self, s: &Settings) -> (Instant, TimeoutKind) {
        each!(self, c => c.deadline(s))
    }
    fn on_timeout(&mut self, io: &mut TcpStream, ctx: &mut Ctx<'_>) -> Verdict {
        each!(self, c => c.on_timeout(io, ctx))
    }
    fn begin_shutdown(&mut self, io: &mut TcpStream, ctx: &mut Ctx<'_>) -> Verdict {
        each!(self, c => c.begin_shutdown(io, ctx))
    }
    fn on_forced_close(&mut self, ctx: &mut Ctx<'_>) {
        each!(self, c => c.on_forced_close(ctx))
    }
}

/// One worker thread's state: what it polls, what it serves with, and its connections.
pub(crate) struct Worker {
    /// This worker's epoll instance; nothing else registers with it.
    pub poll: Poll,
    /// The TLS listener; taken (and deregistered) when shutdown begins.
    pub listener: Option<TcpListener>,
    /// The plain-HTTP listener (`--plain-listen`), the TCP floor's way in.
    pub plain_listener: Option<TcpListener>,
    /// The config every worker shares, so sessions and tickets resume across workers.
    pub tls: Arc<ServerConfig>,
    /// Limits and timeouts.
    pub settings: Arc<Settings>,
    /// This worker's counters; only this thread writes them.
    pub stats: Arc<WorkerStats>,
    /// Stop flags and the open-connection count all workers share.
    pub shared: Arc<Shared>,
    /// Open connections, keyed by mio token minus `FIRST_CONN`.
    conns: Slab<Entry>,
    /// The Date header, formatted once per second.
    date: DateCache,
    /// Response heads are encoded here, reused across requests and connections.
    scratch: Vec<u8>,
    /// Keys whose deadline passed, reused from sweep to sweep.
    expired: Vec<usize>,
    /// Accepting is paused until then after EMFILE/ENFILE (see `ACCEPT_BACKOFF`).
    accept_paused_until: Option<Instant>,
    /// Most connections open at once since memory was last handed back (see `give_back`).
    peak_since_trim: usize,
}

impl Worker {
    pub fn new(
        poll: Poll,
        listener: TcpListener,
        plain_listener: Option<TcpListener>,
        tls: Arc<ServerConfig>,
        settings: Arc<Settings>,
        stats: Arc<WorkerStats>,
        shared: Arc<Shared>,
    ) -> Worker {
        Worker {
            poll,
            listener: Some(listener),
            plain_listener,
            tls,
            settings,
            stats,
            shared,
            conns: Slab::with_capacity(1024),
            date: DateCache::new(),
            scratch: Vec::with_capacity(512),
            expired: Vec::with_capacity(64),
            accept_paused_until: None,
            peak_since_trim: 0,
        }
    }

    /// Runs until shutdown completes; `index` picks this worker's CPU from `pin_cpus`.
    pub fn run(mut self, index: usize) -> io::Result<()> {
        if !self.settings.pin_cpus.is_empty() {
            common::cpu::pin_current_thread(
                self.settings.pin_cpus[index % self.settings.pin_cpus.len()],
            )?;
        }
        if let Some(l) = self.listener.as_mut() {
            self.poll
                .registry()
                .register(l, LISTENER, Interest::READABLE)?;
        }
        if let Some(l) = self.plain_listener.as_mut() {
            self.poll
                .registry()
                .register(l, PLAIN_LISTENER, Interest::READABLE)?;
        }
        let mut events = Events::with_capacity(1024);
        let tick = (self.settings.min_timeout() / 8)
            .clamp(Duration::from_millis(5), Duration::from_millis(250));
        let mut next_sweep = Instant::now() + tick;
        let mut stopping_since: Option<Instant> = None;
        self.date.update(SystemTime::now());

        loop {
            let now = Instant::now();
            let mut wake_at = next_sweep;
            if let Some(t) = self.accept_paused_until {
                wake_at = wake_at.min(t);
            }
            if let Err(e) = self
                .poll
                .poll(&mut events, Some(wake_at.saturating_duration_since(now)))
            {
                if interrupted(&e) {
                    continue;
                }
                return Err(e);
            }
            let now = Instant::now();
            self.date.update(SystemTime::now());

            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(now, false),
                    PLAIN_LISTENER => self.accept(now, true),
                    WAKER => {}
                    Token(t) => {
                        let key = t - FIRST_CONN;
                        let (conns, mut ctx) = self.lend(now);
                        let verdict = match conns.get_mut(key) {
                            Some(entry) => {
                                let trust_short_reads =
                                    !event.is_read_closed() && !event.is_error();
                                entry
                                    .conn
                                    .on_ready(&mut entry.stream, &mut ctx, trust_short_reads)
                            }
                            None => continue,
                        };
                        self.settle(key, verdict);
                    }
                }
            }

            if stopping_since.is_none() && self.shared.stop.load(Ordering::Acquire) {
                stopping_since = Some(now);
                self.begin_shutdown(now);
            }
            if self.accept_paused_until.is_some_and(|until| now >= until) {
                self.accept_paused_until = None;
                self.accept(now, false);
                self.accept(now, true);
            }
            if now >= next_sweep {
                self.sweep(now);
                next_sweep = now + tick;
            }
            if let Some(since) = stopping_since {
                let expired = now >= since + self.settings.shutdown_timeout;
                if self.conns.is_empty() {
                    return Ok(());
                }
                if expired || self.shared.force.load(Ordering::Acquire) {
                    self.close_all(now);
                    return Ok(());
                }
            }
        }
    }

    /// Accepts on the TLS listener, or on the plain one (`plain`).
    fn accept(&mut self, now: Instant, plain: bool) {
        if self.accept_paused_until.is_some() {
            return;
        }
        let listener = if plain {
            self.plain_listener.as_ref()
        } else {
            self.listener.as_ref()
        };
        let Some(listener) = listener else {
            return;
        };
        loop {
            match listener.accept() {
                Ok((stream, _peer)) => {
                    self.stats.accepted();
                    if let Some(max) = self.settings.max_connections
                        && self.shared.active.load(Ordering::Relaxed) >= max
                    {
                        // A clean refusal: the client sees the TCP connection close before
                        // any TLS byte, and the count says why.
                        self.stats.refused();
                        self.stats.closed();
                        drop(stream);
                        continue;
                    }
                    // Responses are written whole per event; Nagle would only add latency.
                    let _ = stream.set_nodelay(true);
                    let conn = if plain {
                        AnyConn::Plain(Conn::plain(now))
                    } else {
                        match ServerConnection::new(Arc::clone(&self.tls)) {
                            Ok(t) => AnyConn::Tls(Conn::new(t, now)),
                            Err(_) => {
                                self.stats.closed();
                                continue;
                            }
                        }
                    };
                    let slot = self.conns.vacant_entry();
                    let token = Token(slot.key() + FIRST_CONN);
                    let mut entry = Entry {
                        stream,
                        conn,
                        interest: Interest::READABLE,
                    };
                    if self
                        .poll
                        .registry()
                        .register(&mut entry.stream, token, Interest::READABLE)
                        .is_err()
                    {
                        self.stats.closed();
                        continue;
                    }
                    slot.insert(entry);
                    self.shared.active.fetch_add(1, Ordering::Relaxed);
                    self.peak_since_trim = self.peak_since_trim.max(self.conns.len());
                }
                Err(e) if would_block(&e) => return,
                Err(e) if interrupted(&e) => {}
                Err(e) => {
                    self.stats.accept_error();
                    match e.raw_os_error() {
                        // The connection died in the backlog: skip it, keep accepting.
                        Some(libc::ECONNABORTED) | Some(libc::EPROTO) | Some(libc::EPERM) => {}
                        // Out of descriptors or memory: back off instead of spinning on a
                        // listener that stays readable.
                        _ => {
                            self.accept_paused_until = Some(now + ACCEPT_BACKOFF);
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Applies a connection's verdict: drop it, or re-register if its interest changed.
    fn settle(&mut self, key: usize, verdict: Verdict) {
        match verdict {
            Verdict::Close => self.remove(key),
            Verdict::Open => {
                let Some(entry) = self.conns.get_mut(key) else {
                    return;
                };
                let interest = match entry.conn.wants() {
                    Wants {
                        read: true,
                        write: true,
                    } => Interest::READABLE | Interest::WRITABLE,
                    Wants {
                        read: false,
                        write: true,
                    } => Interest::WRITABLE,
                    // Even with nothing to read yet, a readable event tells us the peer closed.
                    Wants { write: false, .. } => Interest::READABLE,
                };
                if interest != entry.interest {
                    let token = Token(key + FIRST_CONN);
                    if self
                        .poll
                        .registry()
                        .reregister(&mut entry.stream, token, interest)
                        .is_err()
                    {
                        self.remove(key);
                        return;
                    }
                    entry.interest = interest;
                }
            }
        }
    }

    /// The connections, and what the worker lends one of them for an event at `now`: borrowed
    /// apart, so a connection in the slab can be driven with them.
    fn lend(&mut self, now: Instant) -> (&mut Slab<Entry>, Ctx<'_>) {
        let ctx = Ctx {
            stats: &self.stats,
            settings: &self.settings,
            date: self.date.get(),
            now,
            scratch: &mut self.scratch,
        };
        (&mut self.conns, ctx)
    }

    fn remove(&mut self, key: usize) {
        if let Some(mut entry) = self.conns.try_remove(key) {
            let _ = self.poll.registry().deregister(&mut entry.stream);
            self.stats.closed();
            self.shared.active.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn sweep(&mut self, now: Instant) {
        let mut expired = std::mem::take(&mut self.expired);
        let (conns, mut ctx) = self.lend(now);
        for (key, entry) in conns.iter_mut() {
            if entry.conn.deadline(ctx.settings).0 > now {
                continue;
            }
            if entry.conn.on_timeout(&mut entry.stream, &mut ctx) == Verdict::Close {
                expired.push(key);
            }
        }
        for key in expired.drain(..) {
            self.remove(key);
        }
        self.expired = expired;
        self.give_back();
    }

    /// After a spike of connections has mostly gone, hands the memory it used back to the
    /// system. Freed connection state otherwise stays in the allocator's arenas (glibc returns
    /// little on its own), so one burst of 10,000 idle clients would keep the server's RSS at
    /// its peak for the rest of a benchmark. Runs on the sweep tick, and only when the open
    /// count has fallen by at least `TRIM_STEP` and to half the peak, so its cost (a walk of
    /// the heap) is paid once per spike, never per connection.
    fn give_back(&mut self) {
        const TRIM_STEP: usize = 512;
        let open = self.conns.len();
        if self.peak_since_trim < open + TRIM_STEP || open > self.peak_since_trim / 2 {
            return;
        }
        if open == 0 {
            // The slab keeps its largest capacity; with nothing in it, keys can start over.
            self.conns = Slab::with_capacity(1024);
        }
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only releases free memory of the allocator's own arenas; it has
        // no preconditions and touches no live allocation.
        unsafe {
            libc::malloc_trim(0);
        }
        self.peak_since_trim = open;
    }

    fn begin_shutdown(&mut self, now: Instant) {
        if let Some(mut l) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut l);
        }
        if let Some(mut l) = self.plain_listener.take() {
            let _ = self.poll.registry().deregister(&mut l);
        }
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            let (conns, mut ctx) = self.lend(now);
            let verdict = match conns.get_mut(key) {
                Some(entry) => entry.conn.begin_shutdown(&mut entry.stream, &mut ctx),
                None => continue,
            };
            self.settle(key, verdict);
        }
    }

    fn close_all(&mut self, now: Instant) {
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            let (conns, mut ctx) = self.lend(now);
            if let Some(entry) = conns.get_mut(key) {
                entry.conn.on_forced_close(&mut ctx);
            }
            self.remove(key);
        }
    }
}
