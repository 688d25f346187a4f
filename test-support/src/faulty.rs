//! Test support: servers on 127.0.0.1 for the load generator's fault tests (a tarpit that
//! accepts TCP and never speaks TLS; a rustls server that breaks its response off halfway with
//! a reset, a FIN or a close_notify; a tlsbench server that a successor with a chain from
//! another CA replaces on the same port mid-run), and load options built from `tlsbench load`
//! flags exactly as the binary builds them. Shared by `loadgen/tests/faults.rs` and the
//! binary-level `tests/load_faults.rs`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use clap::Parser;
use common::certs::{self, ChainOptions, GeneratedChain, KeyType};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use server::{Server, Settings, TlsOptions};

use crate::loopback::{chain_config, pem_certs, pem_key};

/// Connections a fake server accepts before it stops by itself: far above what any test
/// makes, so a runaway client ends the accept loop instead of a test never finishing.
const MAX_ACCEPTS: u64 = 10_000;
/// Longest a fake server waits on one read or write: nothing blocks a thread for ever.
const IO_LIMIT: Duration = Duration::from_secs(30);

/// `tlsbench load` flags (the URL first), as the binary parses them.
#[derive(Parser, Debug)]
struct LoadCommand {
    #[command(flatten)]
    args: loadgen::cli::LoadArgs,
}

/// The library options `tlsbench load <flags>` runs with.
pub fn load_options(flags: &[&str]) -> loadgen::LoadOptions {
    let cmd = LoadCommand::try_parse_from(std::iter::once("load").chain(flags.iter().copied()))
        .unwrap_or_else(|e| panic!("bad flags {flags:?}: {e}"));
    cmd.args.options().unwrap()
}

/// The URL and `--connect-to` flags aiming at `addr` while verifying `host`.
pub fn target_flags(host: &str, addr: SocketAddr) -> [String; 3] {
    [
        format!("https://{host}:{}/", addr.port()),
        "--connect-to".to_owned(),
        addr.to_string(),
    ]
}

/// A tlsbench server presenting `chain` on `addr` (port 0: any), with SO_REUSEADDR and
/// SO_REUSEPORT so a successor can take the same port once it has stopped.
pub fn serve(chain: &GeneratedChain, addr: SocketAddr) -> Server {
    let cfg = chain_config(chain, &TlsOptions::default());
    Server::start(
        server::bind(addr, 1, 128).unwrap(),
        cfg,
        Settings::default(),
    )
    .unwrap()
}

/// A fresh ECDSA P-256 chain under a CA of its own.
pub fn good_chain() -> GeneratedChain {
    certs::generate(KeyType::EcdsaP256, &ChainOptions::default()).unwrap()
}

/// Waits (bounded) until `first`, a [`serve`]d server under load, has served `requests`
/// requests, then stops it and starts in its place, on the same port, a server whose chain
/// comes from another CA. Returns the first server's final counters and its successor.
pub fn replace_after(first: Server, requests: u64) -> (server::Snapshot, Server) {
    let addr = first.local_addrs()[0];
    let stats = first.stats();
    let deadline = Instant::now() + Duration::from_secs(20);
    while stats.snapshot().requests_total() < requests {
        assert!(
            Instant::now() < deadline,
            "no load reached the first server"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    first.shutdown_handle().force();
    let first = first.wait().unwrap();
    (first, serve(&good_chain(), addr))
}

/// Accepts on `listener` until `stop` (or [`MAX_ACCEPTS`]), handing each socket to `each`.
fn accept_loop(
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    mut each: impl FnMut(TcpStream) + Send + 'static,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for _ in 0..MAX_ACCEPTS {
            let Ok((sock, _)) = listener.accept() else {
                continue;
            };
            if stop.load(Ordering::Acquire) {
                break;
            }
            each(sock);
        }
    })
}

/// Stops an [`accept_loop`]: raise the flag, then wake the blocking `accept` with one
/// connection of our own.
fn stop_accepting(addr: SocketAddr, stop: &AtomicBool, thread: &mut Option<JoinHandle<()>>) {
    stop.store(true, Ordering::Release);
    let _ = TcpStream::connect_timeout(&addr, IO_LIMIT);
    if let Some(t) = thread.take() {
        let _ = t.join();
    }
}

/// Accepts TCP connections and never answers: each socket is held open, and whatever the
/// client sends (its ClientHello) is read and thrown away, until the client closes.
pub struct Tarpit {
    addr: SocketAddr,
    accepted: Arc<AtomicU64>,
    discarded: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Tarpit {
    /// Listens on 127.0.0.1:0 and accepts on a thread until dropped.
    pub fn start() -> Tarpit {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicU64::new(0));
        let discarded = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, d) = (Arc::clone(&accepted), Arc::clone(&discarded));
        let thread = accept_loop(listener, Arc::clone(&stop), move |mut sock| {
            a.fetch_add(1, Ordering::Relaxed);
            let d = Arc::clone(&d);
            // One holder per connection; it ends when the client closes (or after IO_LIMIT
            // of silence), so the socket lives exactly as long as the client keeps it.
            std::thread::spawn(move || {
                let _ = sock.set_read_timeout(Some(IO_LIMIT));
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = sock.read(&mut buf) {
                    d.fetch_add(n as u64, Ordering::Relaxed);
                }
            });
        });
        Tarpit {
            addr,
            accepted,
            discarded,
            stop,
            thread: Some(thread),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Bytes received and thrown away so far.
    pub fn discarded(&self) -> u64 {
        self.discarded.load(Ordering::Relaxed)
    }
}

impl Drop for Tarpit {
    fn drop(&mut self) {
        stop_accepting(self.addr, &self.stop, &mut self.thread);
    }
}

/// How [`Truncating`] ends a connection after part of the response body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// SO_LINGER 0, then close: the kernel sends RST instead of FIN.
    Reset,
    /// A plain TCP FIN, without close_notify (a truncation attack or a crashed proxy).
    Fin,
    /// A TLS close_notify, then FIN: an orderly close, but before the body was complete.
    CloseNotify,
}

/// Response body length announced in Content-Length.
pub const ANNOUNCED: usize = 1000;
/// Body bytes actually sent before the cut.
pub const SENT: usize = 100;

/// A rustls server that completes the handshake, reads one request head, answers with a
/// head announcing [`ANNOUNCED`] body bytes, sends [`SENT`] of them and then cuts the
/// connection as its [`Cut`] says.
pub struct Truncating {
    addr: SocketAddr,
    /// Connections cut as planned (after the partial body left this side).
    cut: Arc<AtomicU64>,
    /// Connections that failed before the cut (handshake or request), with why.
    failed: Arc<std::sync::Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Truncating {
    /// Serves `chain` on 127.0.0.1:0, cutting every response as `how` says.
    pub fn start(chain: &GeneratedChain, how: Cut) -> Truncating {
        let (certs, key) = (pem_certs(&chain.chain_pem()), pem_key(&chain.leaf_key_pem));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let cfg = Arc::new(
            ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, f) = (Arc::clone(&cut), Arc::clone(&failed));
        let thread = accept_loop(listener, Arc::clone(&stop), move |sock| {
            let (cfg, c, f) = (Arc::clone(&cfg), Arc::clone(&c), Arc::clone(&f));
            std::thread::spawn(move || match serve_truncated(sock, cfg, how) {
                Ok(()) => {
                    c.fetch_add(1, Ordering::Release);
                }
                Err(e) => f.lock().unwrap().push(e.to_string()),
            });
        });
        Truncating {
            addr,
            cut,
            failed,
            stop,
            thread: Some(thread),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections cut as planned so far.
    pub fn cut(&self) -> u64 {
        self.cut.load(Ordering::Acquire)
    }

    /// Why connections failed before their cut.
    pub fn failures(&self) -> Vec<String> {
        self.failed.lock().unwrap().clone()
    }
}

impl Drop for Truncating {
    fn drop(&mut self) {
        stop_accepting(self.addr, &self.stop, &mut self.thread);
    }
}

fn serve_truncated(sock: TcpStream, cfg: Arc<ServerConfig>, how: Cut) -> io::Result<()> {
    sock.set_read_timeout(Some(IO_LIMIT))?;
    sock.set_write_timeout(Some(IO_LIMIT))?;
    let conn = ServerConnection::new(cfg).map_err(io::Error::other)?;
    let mut tls = StreamOwned::new(conn, sock);
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > 64 * 1024 {
            return Err(io::Error::other("request head too long"));
        }
        match tls.read(&mut buf)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => head.extend_from_slice(&buf[..n]),
        }
    }
    tls.write_all(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {ANNOUNCED}\r\n\r\n"
        )
        .as_bytes(),
    )?;
    tls.write_all(&[b'x'; SENT])?;
    tls.flush()?;
    match how {
        Cut::Reset => {
            // With SO_LINGER 0 anything still queued is thrown away with the RST, so first
            // wait (bounded) until the partial response has been acknowledged.
            wait_acked(&tls.sock)?;
            linger_zero(&tls.sock)?;
            // Dropping the stream closes the socket: RST.
        }
        Cut::Fin | Cut::CloseNotify => {
            if how == Cut::CloseNotify {
                tls.conn.send_close_notify();
                while tls.conn.wants_write() {
                    tls.conn.write_tls(&mut tls.sock)?;
                }
            }
            tls.sock.shutdown(Shutdown::Write)?;
            // Read until the client closes: closing with unread bytes would send RST, and
            // this cut must be a FIN.
            let deadline = Instant::now() + IO_LIMIT;
            while Instant::now() < deadline {
                match tls.sock.read(&mut buf) {
                    Ok(1..) => {}
                    Ok(0) | Err(_) => break,
                }
            }
        }
    }
    Ok(())
}

/// Waits (bounded by [`IO_LIMIT`]) until the kernel holds no unacknowledged bytes of `sock`.
fn wait_acked(sock: &TcpStream) -> io::Result<()> {
    let deadline = Instant::now() + IO_LIMIT;
    loop {
        let mut queued: libc::c_int = 0;
        // SAFETY: TIOCOUTQ (SIOCOUTQ for TCP) on a descriptor this function borrows writes
        // one c_int, to a live local of that type.
        let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        if queued == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(io::Error::other(format!(
                "{queued} bytes still unacknowledged"
            )));
        }
        std::thread::yield_now();
    }
}

/// SO_LINGER on with a zero timeout: close(2) then resets the connection.
fn linger_zero(sock: &TcpStream) -> io::Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a descriptor this function borrows, reading exactly
    // size_of::<linger>() bytes from a live local of that type.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            std::ptr::from_ref(&linger).cast::<libc::c_void>(),
            libc::socklen_t::try_from(size_of::<libc::linger>()).unwrap(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
