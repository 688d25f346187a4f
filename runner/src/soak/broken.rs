//! The soak's broken clients: one thread, paced at a fixed rate until the deadline, cycling
//! through five misbehaviours the server must survive without keeping anything:
//!
//! - garbage: bytes that are not TLS, then wait for the server to close;
//! - plain HTTP to the TLS port, then wait for the server to close;
//! - mid-handshake close: a real ClientHello, the first bytes of the server's answer, close;
//! - TCP stall: connect and send nothing (the server's handshake timeout must close it);
//! - half a request head: a completed TLS handshake, then half a request head and silence
//!   (the server's header timeout must close it).
//!
//! Every connection we hold is polled without blocking; what the server closes is counted by
//! kind. Stalls are capped (`max_stalls`, oldest dropped first), and anything the server has
//! not closed after `stall_limit` is dropped and counted as outlived: a server that forgets a
//! timeout shows up there, not as a hung soak.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::io::{interrupted, would_block};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};
use serde::Serialize;

/// Connect, read and write timeout of one broken client's blocking steps.
const STEP_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest sleep between housekeeping passes.
const TICK: Duration = Duration::from_millis(20);
/// The half request head: a request line and part of a header, never finished.
const HALF_HEAD: &[u8] = b"GET / HTTP/1.1\r\nHost: bank32.com\r\nUser-Agent: tlsbench-soak-bro";
/// Plain HTTP on the TLS port.
const PLAIN_HTTP: &[u8] = b"GET / HTTP/1.1\r\nHost: bank32.com\r\nConnection: close\r\n\r\n";

/// What the broken-client thread needs.
pub struct BrokenOptions {
    /// The server's TLS address.
    pub addr: SocketAddr,
    /// The name the TLS clients send and verify.
    pub server_name: ServerName<'static>,
    /// The TLS configuration of the TLS-speaking broken clients (no resumption).
    pub config: Arc<ClientConfig>,
    /// Broken clients started per second (all kinds together); 0 disables them.
    pub rate: f64,
    /// Most stalled connections (TCP stalls and half heads) held at once.
    pub max_stalls: usize,
    /// A connection the server has not closed after this long is dropped and counted.
    pub stall_limit: Duration,
    /// When to stop.
    pub deadline: Instant,
}

/// What the broken clients did and saw.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BrokenCounts {
    /// Connections that sent non-TLS garbage.
    pub garbage: u64,
    /// Connections that sent a plain-HTTP request.
    pub plain_http: u64,
    /// Connections closed by us in the middle of a handshake.
    pub mid_handshake: u64,
    /// Connections that sent nothing.
    pub tcp_stall: u64,
    /// Connections that completed a handshake and sent half a request head.
    pub half_head: u64,
    /// Garbage and plain-HTTP connections the server closed.
    pub rejected_closed_by_server: u64,
    /// TCP stalls the server closed (its handshake timeout).
    pub tcp_stalls_closed_by_server: u64,
    /// Half heads the server closed (its header timeout).
    pub half_heads_closed_by_server: u64,
    /// Stalls we dropped because `max_stalls` were open.
    pub stalls_dropped_at_cap: u64,
    /// Connections the server had not closed after `stall_limit` (dropped by us).
    pub outlived: u64,
    /// Connections that could not be made (refused, timed out).
    pub connect_failed: u64,
    /// Half heads whose TLS handshake did not complete.
    pub handshake_failed: u64,
    /// Most connections held at once.
    pub max_held: u64,
    /// Connections still held when the deadline came (dropped then).
    pub held_at_end: u64,
}

impl BrokenCounts {
    /// Broken clients started, all kinds.
    pub fn total(&self) -> u64 {
        self.garbage + self.plain_http + self.mid_handshake + self.tcp_stall + self.half_head
    }
}

/// How a broken client misbehaves (the module's list, in declaration order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Misbehaviour {
    /// Bytes that are not TLS.
    Garbage,
    /// Plain HTTP to the TLS port.
    PlainHttp,
    /// A ClientHello, the first bytes of the answer, then close.
    MidHandshake,
    /// Connect and send nothing.
    TcpStall,
    /// A TLS handshake, then half a request head and silence.
    HalfHead,
}

const CYCLE: [Misbehaviour; 5] = [
    Misbehaviour::Garbage,
    Misbehaviour::TcpStall,
    Misbehaviour::PlainHttp,
    Misbehaviour::HalfHead,
    Misbehaviour::MidHandshake,
];

impl Misbehaviour {
    fn is_stall(self) -> bool {
        matches!(self, Misbehaviour::TcpStall | Misbehaviour::HalfHead)
    }
}

/// A connection we keep until the server closes it.
struct Held {
    stream: TcpStream,
    misbehaviour: Misbehaviour,
    since: Instant,
}

/// Runs the broken clients until `o.deadline` or `stop`.
pub fn run(o: &BrokenOptions, stop: &AtomicBool) -> BrokenCounts {
    let mut c = BrokenCounts::default();
    if !(o.rate > 0.0 && o.rate.is_finite()) {
        return c;
    }
    let interval = Duration::from_secs_f64(1.0 / o.rate);
    let mut held: Vec<Held> = Vec::new();
    let mut next = Instant::now();
    let mut k = 0usize;
    loop {
        let now = Instant::now();
        if now >= o.deadline || stop.load(Ordering::Acquire) {
            break;
        }
        housekeeping(&mut held, &mut c, o.stall_limit, now);
        if now >= next {
            let misbehaviour = CYCLE[k % CYCLE.len()];
            if misbehaviour.is_stall()
                && held.iter().filter(|h| h.misbehaviour.is_stall()).count() >= o.max_stalls
            {
                if let Some(i) = held.iter().position(|h| h.misbehaviour.is_stall()) {
                    held.remove(i);
                    c.stalls_dropped_at_cap += 1;
                }
            }
            match connect(o.addr).map(|s| act(misbehaviour, k, s, o, &mut c)) {
                Ok(Ok(Some(stream))) => {
                    let _ = stream.set_nonblocking(true);
                    held.push(Held {
                        stream,
                        misbehaviour,
                        since: Instant::now(),
                    });
                    c.max_held = c.max_held.max(held.len() as u64);
                }
                Ok(Ok(None)) => {}
                // Only the half head can fail after connecting: its handshake did not finish.
                Ok(Err(_)) => c.handshake_failed += 1,
                Err(_) => c.connect_failed += 1,
            }
            k += 1;
            // Paced, never bursting to catch up after a slow step.
            next = (next + interval).max(Instant::now());
        }
        let wake = next.min(o.deadline);
        std::thread::sleep(wake.saturating_duration_since(Instant::now()).min(TICK));
    }
    c.held_at_end = held.len() as u64;
    c
}

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, STEP_TIMEOUT)?;
    s.set_read_timeout(Some(STEP_TIMEOUT))?;
    s.set_write_timeout(Some(STEP_TIMEOUT))?;
    Ok(s)
}

/// Deterministic non-TLS bytes: the first is no TLS content type, so the server rejects them
/// at the first record header rather than waiting for a record that never completes.
fn garbage(seed: usize) -> [u8; 256] {
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ seed as u64;
    let mut out = [0u8; 256];
    for b in &mut out {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    out[0] = 0xde;
    out
}

/// One broken client; returns the connection when it is to be held.
fn act(
    misbehaviour: Misbehaviour,
    k: usize,
    mut s: TcpStream,
    o: &BrokenOptions,
    c: &mut BrokenCounts,
) -> io::Result<Option<TcpStream>> {
    match misbehaviour {
        Misbehaviour::Garbage => {
            c.garbage += 1;
            // The server may close as soon as the header is read: a failed write is its answer.
            let _ = s.write_all(&garbage(k));
            Ok(Some(s))
        }
        Misbehaviour::PlainHttp => {
            c.plain_http += 1;
            let _ = s.write_all(PLAIN_HTTP);
            Ok(Some(s))
        }
        Misbehaviour::TcpStall => {
            c.tcp_stall += 1;
            Ok(Some(s))
        }
        Misbehaviour::MidHandshake => {
            c.mid_handshake += 1;
            // Whatever fails here, the connection ends mid-handshake as intended.
            if let Ok(mut tls) = ClientConnection::new(Arc::clone(&o.config), o.server_name.clone())
            {
                while tls.wants_write() {
                    if tls.write_tls(&mut s).is_err() {
                        break;
                    }
                }
                // The first bytes of the ServerHello: the server is mid-handshake when we leave.
                let mut buf = [0u8; 512];
                let _ = s.read(&mut buf);
            }
            Ok(None)
        }
        Misbehaviour::HalfHead => {
            c.half_head += 1;
            let mut tls = ClientConnection::new(Arc::clone(&o.config), o.server_name.clone())
                .map_err(io::Error::other)?;
            while tls.is_handshaking() {
                tls.complete_io(&mut s)?;
            }
            tls.writer().write_all(HALF_HEAD)?;
            while tls.wants_write() {
                tls.write_tls(&mut s)?;
            }
            Ok(Some(s))
        }
    }
}

/// Reads (and discards) what each held connection has; counts and drops those the server
/// closed, and those it kept beyond `limit`.
fn housekeeping(held: &mut Vec<Held>, c: &mut BrokenCounts, limit: Duration, now: Instant) {
    let mut buf = [0u8; 4096];
    held.retain_mut(|h| {
        let closed = loop {
            match h.stream.read(&mut buf) {
                Ok(0) => break true,
                Ok(_) => {}
                Err(e) if would_block(&e) => break false,
                Err(e) if interrupted(&e) => {}
                // A reset is the server closing too.
                Err(_) => break true,
            }
        };
        if closed {
            match h.misbehaviour {
                Misbehaviour::Garbage | Misbehaviour::PlainHttp => c.rejected_closed_by_server += 1,
                Misbehaviour::TcpStall => c.tcp_stalls_closed_by_server += 1,
                Misbehaviour::HalfHead => c.half_heads_closed_by_server += 1,
                Misbehaviour::MidHandshake => {}
            }
            return false;
        }
        if now.saturating_duration_since(h.since) > limit {
            c.outlived += 1;
            return false;
        }
        true
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_never_a_tls_record() {
        for seed in 0..100 {
            let g = garbage(seed);
            assert_eq!(g[0], 0xde);
            assert_ne!(g[1..8], [0u8; 7]);
        }
        assert_ne!(garbage(1), garbage(2));
    }
}
