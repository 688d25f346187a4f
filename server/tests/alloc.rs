//! Counts heap allocations made on the server's worker threads per keep-alive request in
//! steady state. Our code allocates none (buffers are reused, bodies are static); what remains
//! is rustls's buffered API, which allocates one buffer per received and one per sent record.
//! The bound keeps it that way: a change that allocates per request fails here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use common::certs::KeyType;
use rustls::version::TLS13;
use test_support::loopback as support;

struct Counting;

static WORKER_ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// 0: not yet known, 1: a server worker, 2: another thread, 3: being resolved.
    static KIND: Cell<u8> = const { Cell::new(0) };
}

fn count() {
    KIND.with(|k| match k.get() {
        0 => {
            k.set(3);
            let worker = std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with("tlsbench-worker"));
            k.set(if worker { 1 } else { 2 });
            if worker {
                WORKER_ALLOCS.fetch_add(1, Ordering::Relaxed);
            }
        }
        1 => {
            WORKER_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        _ => {}
    });
}

// SAFETY: forwards to the system allocator unchanged; counting has no effect on the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The count spans every worker thread of the process: one test at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn keep_alive_requests_allocate_only_inside_rustls() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = support::start_default();
    let cfg = support::client_config(KeyType::EcdsaP256, &[&TLS13], support::ClientResume::Off);
    let mut tls = support::connect(server.local_addrs()[0], &cfg);
    let mut round = |n: usize| {
        for _ in 0..n {
            write!(tls, "GET / HTTP/1.1\r\nHost: bank32.com\r\n\r\n").unwrap();
            let (_, body) = support::read_response(&mut tls);
            assert_eq!(body, server::http::HELLO_PAGE);
        }
    };
    round(200);
    let before = WORKER_ALLOCS.load(Ordering::Relaxed);
    round(1000);
    let after = WORKER_ALLOCS.load(Ordering::Relaxed);
    let per_request = (after - before) as f64 / 1000.0;
    println!("server worker allocations per keep-alive request: {per_request:.3}");
    // One record in (the request), one record out (head and body share it).
    assert!(per_request <= 2.0, "{per_request} allocations per request");
    assert!(
        per_request >= 1.0,
        "the counter must see rustls's record buffers"
    );
    drop(tls);
    server.stop().unwrap();
}

#[test]
fn plain_keep_alive_requests_allocate_nothing() {
    use std::io::{BufRead, BufReader, Read};
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cfg = support::server_config(KeyType::EcdsaP256, &server::TlsOptions::default());
    let bind = || vec![std::net::TcpListener::bind("127.0.0.1:0").unwrap()];
    let server =
        server::Server::start_with_plain(bind(), bind(), cfg, server::Settings::default()).unwrap();
    let sock = std::net::TcpStream::connect(server.plain_addrs()[0]).unwrap();
    let mut writer = sock.try_clone().unwrap();
    let mut reader = BufReader::new(sock);
    let mut round = |n: usize| {
        for _ in 0..n {
            writer
                .write_all(b"GET / HTTP/1.1\r\nHost: bank32.com\r\n\r\n")
                .unwrap();
            let mut length = None;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" {
                    break;
                }
                if let Some(v) = line.strip_prefix("Content-Length: ") {
                    length = Some(v.trim().parse::<usize>().unwrap());
                }
            }
            let mut body = vec![0; length.unwrap()];
            reader.read_exact(&mut body).unwrap();
            assert_eq!(body, server::http::HELLO_PAGE);
        }
    };
    round(200);
    let before = WORKER_ALLOCS.load(Ordering::Relaxed);
    round(1000);
    let after = WORKER_ALLOCS.load(Ordering::Relaxed);
    // No TLS records: the plain session's buffers are kept, so steady state allocates nothing.
    assert_eq!(after - before, 0, "allocations in 1000 plain requests");
    drop(writer);
    drop(reader);
    server.stop().unwrap();
}
