//! The admin endpoint: plain HTTP on its own listener and thread, serving the merged counters
//! in Prometheus text format at `/metrics` and as JSON at `/metrics.json` (what
//! [`crate::metrics::scrape`] reads). Kept off the TLS workers so scraping never perturbs what
//! is being measured, and off by default.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::ServerError;
use crate::http::{CONTENT_TYPE_JSON, CONTENT_TYPE_PLAIN, CONTENT_TYPE_PROMETHEUS};
use crate::metrics::JSON_PATH;
use crate::stats::Stats;
use common::io::{interrupted, would_block};

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);

/// What a scraper asked for.
enum Exposition {
    Prometheus,
    Json,
}

/// A running admin endpoint.
pub struct Admin {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

impl Admin {
    /// Serves `stats` on `listener` until [`Admin::stop`] (or drop).
    pub fn start(listener: std::net::TcpListener, stats: Arc<Stats>) -> Result<Admin, ServerError> {
        let io_err = |what: &str| {
            let what = what.to_string();
            move |source| ServerError::Io { what, source }
        };
        let addr = listener
            .local_addr()
            .map_err(io_err("admin listener address"))?;
        listener
            .set_nonblocking(true)
            .map_err(io_err("admin listener"))?;
        let mut listener = TcpListener::from_std(listener);
        let poll = Poll::new().map_err(io_err("admin poll"))?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(io_err("admin poll"))?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(io_err("admin waker"))?);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("tlsbench-admin".into())
            .spawn({
                let stop = Arc::clone(&stop);
                move || serve(poll, listener, &stats, &stop)
            })
            .map_err(io_err("spawning the admin thread"))?;
        Ok(Admin {
            addr,
            stop,
            waker,
            thread: Some(thread),
        })
    }

    /// Where the endpoint listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and joins the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Admin {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn serve(mut poll: Poll, listener: TcpListener, stats: &Stats, stop: &AtomicBool) {
    let mut events = Events::with_capacity(16);
    while !stop.load(Ordering::Acquire) {
        if let Err(e) = poll.poll(&mut events, None)
            && !interrupted(&e)
        {
            return;
        }
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    // One short exchange per scrape; a stuck scraper costs at most the timeouts.
                    let _ = answer(stream, stats);
                }
                Err(e) if would_block(&e) => break,
                Err(e) if interrupted(&e) => {}
                Err(_) => {
                    // Out of descriptors: the workers back off too; try again shortly.
                    std::thread::sleep(Duration::from_millis(100));
                    break;
                }
            }
        }
    }
}

fn answer(stream: mio::net::TcpStream, stats: &Stats) -> io::Result<()> {
    let fd = std::os::fd::OwnedFd::from(stream);
    let mut stream = std::net::TcpStream::from(fd);
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut buf = [0u8; 8192];
    let mut len = 0;
    let wanted = loop {
        let n = stream.read(&mut buf[len..])?;
        if n == 0 {
            return Ok(());
        }
        len += n;
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf[..len]) {
            Ok(httparse::Status::Complete(_)) => {
                let get = matches!(req.method, Some("GET") | Some("HEAD"));
                let path = req.path.unwrap_or("");
                let path = path.split('?').next().unwrap_or("");
                break match path {
                    "/metrics" | "/" if get => Some(Exposition::Prometheus),
                    JSON_PATH if get => Some(Exposition::Json),
                    _ => None,
                };
            }
            Ok(httparse::Status::Partial) if len < buf.len() => {}
            _ => break None,
        }
    };
    let snapshot = stats.snapshot();
    let (status, content_type, body) = match wanted {
        Some(Exposition::Prometheus) => ("200 OK", CONTENT_TYPE_PROMETHEUS, snapshot.prometheus()),
        Some(Exposition::Json) => match snapshot.to_json() {
            Ok(json) => ("200 OK", CONTENT_TYPE_JSON, json),
            Err(e) => (
                "500 Internal Server Error",
                CONTENT_TYPE_PLAIN,
                e.to_string(),
            ),
        },
        None => (
            "404 Not Found",
            CONTENT_TYPE_PLAIN,
            format!("the metrics are at /metrics and {JSON_PATH}"),
        ),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}
