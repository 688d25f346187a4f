//! The tlsbench HTTPS server: an epoll (mio) server on rustls with the aws-lc-rs provider,
//! one worker thread per core, each with its own SO_REUSEPORT listener, and exact counters of
//! every handshake, failure and request so the cost of a handshake can be read off the server.
//!
//! # Layout
//! - [`client_auth`]: mutual TLS: the `--client-auth` policy, its rustls verifier, and the
//!   per-connection outcome (certificate accepted, none, or refused by cause).
//! - [`config`]: runtime [`Settings`] and the TLS side ([`TlsOptions`] → one shared
//!   `rustls::ServerConfig`, so session caches and ticket keys span all workers).
//! - [`http`]: sans-I/O HTTP/1.1: head parsing and routing, body framing, response heads.
//! - [`conn`]: one connection's state machine (TLS or plain, + HTTP) over any byte transport.
//! - `worker`: one thread's event loop: accept (TLS and plain listeners), drive,
//!   re-register, sweep deadlines.
//! - [`session_cache`]: rustls's stateful session cache behind a decorator that mirrors its
//!   occupancy (entries, evictions, lookups).
//! - [`stats`]: per-worker counters merged into a [`Snapshot`] on read.
//! - [`metrics`]: the contract with readers: series names, the Prometheus and JSON
//!   expositions of a [`Snapshot`], and [`metrics::scrape`], their one reader.
//! - [`admin`]: the plain-HTTP `/metrics` and `/metrics.json` endpoint on its own thread.
//! - [`cli`]: `tlsbench server`: flags, certificates, binding, signals, the summary.
//!
//! Tests start a [`Server`] on listeners they bound themselves (port 0) and stop it through
//! its [`ShutdownHandle`], so they never race for ports or sleep for readiness.

pub mod admin;
pub mod cli;
pub mod client_auth;
pub mod config;
pub mod conn;
pub mod http;
pub mod metrics;
pub mod session_cache;
pub mod stats;
mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

pub use config::{Resumption, ServerTls, Settings, TlsOptions};
pub use stats::{Snapshot, Stats};

use common::cert_compression::CertCompression;
use worker::{Shared, Worker};

/// Why the server could not start or keep running.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A system call failed; `what` says what we were doing.
    #[error("{what}: {source}")]
    Io {
        /// What we were doing.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A TLS name or configuration was refused.
    #[error(transparent)]
    Tls(#[from] common::tls::TlsError),
    /// A certificate or key could not be generated or loaded.
    #[error(transparent)]
    Cert(#[from] common::certs::CertError),
    /// The process could not be pinned to `--pin-cpus`.
    #[error(transparent)]
    Cpu(#[from] common::cpu::CpuError),
    /// The command line or settings do not make sense together.
    #[error("{0}")]
    Config(String),
    /// A worker thread died (a bug: workers must never panic).
    #[error("worker thread {0} panicked")]
    WorkerPanicked(usize),
}

/// Stops a running server from any thread.
#[derive(Clone)]
pub struct ShutdownHandle {
    shared: Arc<Shared>,
    wakers: Arc<Vec<mio::Waker>>,
}

impl ShutdownHandle {
    /// Graceful stop: stop accepting, finish in-flight responses (within
    /// `Settings::shutdown_timeout`), close idle connections.
    pub fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::Release);
        self.wake();
    }

    /// Immediate stop: cut every connection now.
    pub fn force(&self) {
        self.shared.force.store(true, Ordering::Release);
        self.shutdown();
    }

    fn wake(&self) {
        for w in self.wakers.iter() {
            let _ = w.wake();
        }
    }
}

/// A running server.
pub struct Server {
    threads: Vec<JoinHandle<std::io::Result<()>>>,
    stats: Arc<Stats>,
    handle: ShutdownHandle,
    addrs: Vec<SocketAddr>,
    plain_addrs: Vec<SocketAddr>,
}

impl Server {
    /// Starts one worker per listener. Listeners may share a port (SO_REUSEPORT, see [`bind`])
    /// or not (tests give each worker its own port to pick which worker a client reaches).
    pub fn start(
        listeners: Vec<std::net::TcpListener>,
        tls: impl Into<ServerTls>,
        settings: Settings,
    ) -> Result<Server, ServerError> {
        Server::start_with_plain(listeners, Vec::new(), tls, settings)
    }

    /// [`Server::start`], with plain-HTTP listeners too (the TCP floor): none, or one per
    /// worker, served by that worker beside its TLS listener.
    pub fn start_with_plain(
        listeners: Vec<std::net::TcpListener>,
        plain: Vec<std::net::TcpListener>,
        tls: impl Into<ServerTls>,
        settings: Settings,
    ) -> Result<Server, ServerError> {
        let ServerTls {
            config: tls,
            session_cache,
        } = tls.into();
        if !plain.is_empty() && plain.len() != listeners.len() {
            return Err(ServerError::Config(format!(
                "{} plain listeners for {} workers: give none or one per worker",
                plain.len(),
                listeners.len()
            )));
        }
        if listeners.is_empty() {
            return Err(ServerError::Config(
                "the server needs at least one listener".into(),
            ));
        }
        let io_err = |what: &str| {
            let what = what.to_string();
            move |source| ServerError::Io { what, source }
        };
        let settings = Arc::new(Settings {
            cert_compression: CertCompression::of_compressors(&tls.cert_compressors),
            early_data: tls.max_early_data_size > 0,
            ..settings
        });
        let stats = Arc::new(Stats::new(listeners.len()));
        if let Some(gauge) = session_cache {
            stats.attach_session_cache(gauge)?;
        }
        let shared = Arc::new(Shared::default());
        let mut workers = Vec::with_capacity(listeners.len());
        let mut wakers = Vec::with_capacity(listeners.len());
        let mut addrs = Vec::with_capacity(listeners.len());
        let mut plain_addrs = Vec::with_capacity(plain.len());
        let mut plain = plain.into_iter();
        for (i, l) in listeners.into_iter().enumerate() {
            let plain_listener = match plain.next() {
                Some(p) => {
                    p.set_nonblocking(true).map_err(io_err("plain listener"))?;
                    plain_addrs.push(p.local_addr().map_err(io_err("plain listener address"))?);
                    Some(mio::net::TcpListener::from_std(p))
                }
                None => None,
            };
            l.set_nonblocking(true).map_err(io_err("listener"))?;
            addrs.push(l.local_addr().map_err(io_err("listener address"))?);
            let poll = mio::Poll::new().map_err(io_err("epoll"))?;
            wakers.push(mio::Waker::new(poll.registry(), worker::WAKER).map_err(io_err("waker"))?);
            let wstats = stats
                .worker(i)
                .ok_or_else(|| ServerError::Config("worker stats".into()))?;
            workers.push(Worker::new(
                poll,
                mio::net::TcpListener::from_std(l),
                plain_listener,
                Arc::clone(&tls),
                Arc::clone(&settings),
                wstats,
                Arc::clone(&shared),
            ));
        }
        let mut threads = Vec::with_capacity(workers.len());
        for (i, w) in workers.into_iter().enumerate() {
            threads.push(
                std::thread::Builder::new()
                    .name(format!("tlsbench-worker-{i}"))
                    .spawn(move || w.run(i))
                    .map_err(io_err("spawning a worker"))?,
            );
        }
        Ok(Server {
            threads,
            stats,
            handle: ShutdownHandle {
                shared,
                wakers: Arc::new(wakers),
            },
            addrs,
            plain_addrs,
        })
    }

    /// The address of each worker's listener, in worker order.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The address of each worker's plain-HTTP listener, in worker order (empty without).
    pub fn plain_addrs(&self) -> &[SocketAddr] {
        &self.plain_addrs
    }

    /// The live counters.
    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.stats)
    }

    /// A handle that stops the server from elsewhere (a signal thread, a test).
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.handle.clone()
    }

    /// Waits for every worker to finish (after a shutdown) and returns the final counters.
    pub fn wait(self) -> Result<Snapshot, ServerError> {
        let mut result = Ok(());
        for (i, t) in self.threads.into_iter().enumerate() {
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(source)) => {
                    result = Err(ServerError::Io {
                        what: format!("worker {i} event loop"),
                        source,
                    })
                }
                Err(_) => result = Err(ServerError::WorkerPanicked(i)),
            }
        }
        result.map(|()| self.stats.snapshot())
    }

    /// Graceful shutdown, then [`Server::wait`].
    pub fn stop(self) -> Result<Snapshot, ServerError> {
        self.handle.shutdown();
        self.wait()
    }
}

/// Binds `n` listeners on `addr` with SO_REUSEPORT (the kernel spreads connections over them),
/// non-blocking, with the given accept backlog. Port 0 picks one port for all of them.
pub fn bind(
    addr: SocketAddr,
    n: usize,
    backlog: i32,
) -> Result<Vec<std::net::TcpListener>, ServerError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let mut out = Vec::with_capacity(n);
    let mut addr = addr;
    for _ in 0..n.max(1) {
        let err = |what: &'static str| {
            move |source| ServerError::Io {
                what: format!("{what} {addr}"),
                source,
            }
        };
        let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
            .map_err(err("socket for"))?;
        s.set_reuse_address(true).map_err(err("SO_REUSEADDR on"))?;
        s.set_reuse_port(true).map_err(err("SO_REUSEPORT on"))?;
        if addr.is_ipv6() {
            // [::] serves IPv6 only; listen on 0.0.0.0 as well for IPv4, explicitly.
            s.set_only_v6(true).map_err(err("IPV6_V6ONLY on"))?;
        }
        s.set_nonblocking(true).map_err(err("O_NONBLOCK on"))?;
        s.bind(&addr.into()).map_err(err("binding"))?;
        s.listen(backlog).map_err(err("listening on"))?;
        let l: std::net::TcpListener = s.into();
        // Port 0: the first bind picked the port; the other workers share it.
        addr = l.local_addr().map_err(err("address of"))?;
        out.push(l);
    }
    Ok(out)
}
