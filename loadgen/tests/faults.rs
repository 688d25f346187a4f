//! The load generator under faults, in this process: a server that accepts TCP but never
//! answers TLS (handshake timeouts, counted by kind, and the `-d` deadline still holds), a
//! server that breaks its response off (a reset is `reset`, a FIN or close_notify before the
//! announced length is `short_body`), and a server replaced mid-run on the same port by one
//! with a chain from another CA (refused: neither the verification cache nor resumption hides
//! the new chain, and what was measured before the switch is kept).
//!
//! The binary-level twins (exit codes, `--json`) are in `tests/load_faults.rs`; a server
//! killed mid-run is `tests/load.rs` (`load_keeps_its_results_when_the_server_dies_mid_run`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use common::certs::GeneratedChain;
use faulty::{Cut, Tarpit, Truncating, good_chain};
use loadgen::{FailureKind, LoadOptions, RunResult};
use test_support::faulty;

/// A run must end by itself within this; past it the test stops the run and fails.
const RUN_LIMIT: Duration = Duration::from_secs(30);

/// A temp directory holding `ca.pem`, removed on drop.
struct CaFile(PathBuf);

impl CaFile {
    fn of(chain: &GeneratedChain) -> CaFile {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("tlsbench-lg-faults-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.pem"), &chain.root_pem).unwrap();
        CaFile(dir)
    }

    fn path(&self) -> String {
        self.0.join("ca.pem").to_str().unwrap().to_owned()
    }
}

impl Drop for CaFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `tlsbench load https://bank32.com:PORT/ --connect-to ADDR --cacert CA <extra>`.
fn options(addr: SocketAddr, ca: &CaFile, extra: &[&str]) -> LoadOptions {
    let [url, connect_to, dial] = faulty::target_flags("bank32.com", addr);
    let ca = ca.path();
    let mut flags = vec![
        url.as_str(),
        connect_to.as_str(),
        dial.as_str(),
        "--cacert",
        &ca,
    ];
    flags.extend(extra);
    faulty::load_options(&flags)
}

/// A load run on its own thread; stopped (and the test failed) if it outlives [`RUN_LIMIT`].
struct Run {
    result: Receiver<RunResult>,
    stop: Arc<AtomicBool>,
    started: Instant,
}

impl Run {
    fn start(opts: LoadOptions) -> Run {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, result) = mpsc::channel();
        let flag = Arc::clone(&stop);
        std::thread::spawn(move || {
            let r = loadgen::run(&opts, &mut loadgen::Quiet, &flag).unwrap();
            let _ = tx.send(r);
        });
        Run {
            result,
            stop,
            started: Instant::now(),
        }
    }

    /// The result and the wall time from start to result.
    fn join(self) -> (RunResult, Duration) {
        match self.result.recv_timeout(RUN_LIMIT) {
            Ok(r) => (r, self.started.elapsed()),
            Err(e) => panic!("the run did not end within {RUN_LIMIT:?} ({e:?}); stopped it"),
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        // Whatever happened, no run outlives its test.
        self.stop.store(true, Ordering::Release);
    }
}

#[test]
fn a_server_that_never_answers_tls_costs_timeouts_and_the_deadline_holds() {
    let tarpit = Tarpit::start();
    let ca = CaFile::of(&good_chain());
    let (connections, deadline, timeout) = (4u64, 1.5f64, 0.3);
    let opts = options(
        tarpit.addr(),
        &ca,
        &["-c", "4", "-t", "1", "-d", "1500ms", "--timeout", "300ms"],
    );
    let (r, wall) = Run::start(opts).join();
    let c = &r.measured.counters;
    // A run that missed its deadline would go on timing out 300 ms handshakes until stopped at
    // RUN_LIMIT; half of that is ten times the run, room for a loaded machine.
    assert!(wall < RUN_LIMIT / 2, "{wall:?} for a {deadline} s run");
    // Every operation timed out in its handshake: at least one per connection, at most as
    // many as fit in the window, and nothing else went wrong.
    let timeouts = c.errors_of(FailureKind::Timeout);
    let most = connections * (deadline / timeout).ceil() as u64;
    assert!(
        (connections..=most).contains(&timeouts),
        "{timeouts} timeouts: {c:?}"
    );
    assert_eq!(c.errors_total(), timeouts, "{c:?}");
    assert_eq!(c.handshakes() + c.requests, 0, "{c:?}");
    assert!(r.measured.handshake.is_empty());
    // TCP connected every time (the tarpit accepts); the TLS side never answered.
    assert!(c.connections >= timeouts, "{c:?}");
    assert!(r.measured.connect.len() >= timeouts, "{c:?}");
    assert_eq!(
        r.incomplete.as_deref(),
        Some(format!("{timeouts} operations failed").as_str())
    );
    assert!(!r.verification_failed);
    assert!(tarpit.accepted() >= connections, "{}", tarpit.accepted());
    assert!(tarpit.discarded() > 0, "no ClientHello reached the tarpit");
}

#[test]
fn a_deadline_shorter_than_the_timeout_still_ends_the_run() {
    let tarpit = Tarpit::start();
    let ca = CaFile::of(&good_chain());
    let opts = options(
        tarpit.addr(),
        &ca,
        &["-c", "2", "-t", "1", "-d", "1s", "--timeout", "60s"],
    );
    let (r, wall) = Run::start(opts).join();
    let c = &r.measured.counters;
    // A run held open by its in-flight handshakes would last their 60 s timeout (and be
    // stopped at RUN_LIMIT); half of RUN_LIMIT is far from both that and the 1 s run.
    assert!(wall < RUN_LIMIT / 2, "{wall:?} for a 1 s run");
    // What is in flight at the deadline is abandoned uncounted (as wrk and h2load do), so
    // nothing at all was measured: no error, no request, no handshake.
    assert_eq!(c.errors_total() + c.requests + c.handshakes(), 0, "{c:?}");
    assert_eq!(c.connections, 2, "{c:?}");
    assert!(r.measured.request.is_empty());
    // ...and such a run is not passed off as a clean one.
    assert_eq!(
        r.incomplete.as_deref(),
        Some("no request completed before the run ended; 2 connections were abandoned in flight")
    );
}

#[test]
fn a_response_cut_off_is_a_reset_or_a_short_body_by_how_it_ended() {
    let chain = good_chain();
    let ca = CaFile::of(&chain);
    for (cut, kind) in [
        (Cut::Reset, FailureKind::Reset),
        (Cut::Fin, FailureKind::ShortBody),
        (Cut::CloseNotify, FailureKind::ShortBody),
    ] {
        let srv = Truncating::start(&chain, cut);
        let opts = options(
            srv.addr(),
            &ca,
            &["-n", "3", "-c", "1", "-t", "1", "--timeout", "10s"],
        );
        let (r, _) = Run::start(opts).join();
        let c = &r.measured.counters;
        assert_eq!(c.errors_of(kind), 3, "{cut:?}: {c:?}");
        assert_eq!(c.errors_total(), 3, "{cut:?}: {c:?}");
        // The handshakes completed and the head arrived; only the body fell short.
        assert_eq!((c.full, c.requests), (3, 0), "{cut:?}: {c:?}");
        assert!(
            r.incomplete.as_deref() == Some("3 operations failed"),
            "{cut:?}: {:?}",
            r.incomplete
        );
        if cut == Cut::Reset {
            // A reset may discard what the client had not read yet.
            assert!(c.body_bytes_in <= 3 * faulty::SENT as u64, "{cut:?}: {c:?}");
        } else {
            // A FIN loses nothing: every byte sent was counted, every head timed.
            assert_eq!(c.body_bytes_in, 3 * faulty::SENT as u64, "{cut:?}: {c:?}");
            assert_eq!(r.measured.ttfb.len(), 3, "{cut:?}");
        }
        // The server side did cut each of them as planned (its threads may lag the client).
        let deadline = Instant::now() + Duration::from_secs(10);
        while srv.cut() < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(srv.cut(), 3, "{cut:?}: {:?}", srv.failures());
        assert!(srv.failures().is_empty(), "{cut:?}: {:?}", srv.failures());
    }
}

/// Runs load against a server with a trusted chain until it has served `before` requests,
/// replaces it on the same port with one whose chain comes from another CA, and returns the
/// run's result with both servers' counters.
fn swap_chain_mid_run(
    extra: &[&str],
    before: u64,
) -> (RunResult, server::Snapshot, server::Snapshot) {
    let trusted = good_chain();
    let ca = CaFile::of(&trusted);
    let first = faulty::serve(&trusted, "127.0.0.1:0".parse().unwrap());
    let addr = first.local_addrs()[0];
    let mut flags = vec!["-c", "2", "-t", "1", "-d", "25s", "--timeout", "5s"];
    flags.extend(extra);
    let run = Run::start(options(addr, &ca, &flags));
    let (first, second) = faulty::replace_after(first, before);
    let (r, _) = run.join();
    second.shutdown_handle().force();
    (r, first, second.wait().unwrap())
}

#[test]
fn a_chain_from_another_ca_mid_run_is_refused_and_earlier_results_are_kept() {
    for (extra, resumed) in [
        (&["--new-conn"][..], false),
        (&["--new-conn", "--resume", "ticket"][..], true),
    ] {
        let (r, first, second) = swap_chain_mid_run(extra, 100);
        let c = &r.measured.counters;
        assert!(r.verification_failed, "{extra:?}: {:?}", r.incomplete);
        let why = r.incomplete.clone().unwrap_or_default();
        assert!(
            why.starts_with("certificate chain of bank32.com is not trusted by CA file "),
            "{extra:?}: {why}"
        );
        // Refused at once: at most one handshake per connection slot saw the new chain.
        let refused = c.errors_of(FailureKind::CertVerify);
        assert!((1..=2).contains(&refused), "{extra:?}: {c:?}");
        // Everything measured before the switch is kept, and no more than was served. The
        // first server counts a response once queued, so cutting it off may lose one
        // response per connection (2) on the way.
        assert!(
            (98..=first.requests_total()).contains(&c.requests),
            "{extra:?}: {} of {} requests: {c:?}",
            c.requests,
            first.requests_total()
        );
        // The cache answered for the first chain and still sent the new one to be verified.
        let (hits, misses) = r.verify_cache;
        assert!(hits >= 1 && misses >= 2, "{extra:?}: {:?}", r.verify_cache);
        if resumed {
            assert!(c.resumed > 0, "{extra:?}: resumption was not in use: {c:?}");
        } else {
            // Every handshake on the first server but the first one came from the cache.
            assert!(hits + 1 >= c.requests, "{extra:?}: {:?}", r.verify_cache);
        }
        // The second server never completed a handshake nor served anything.
        assert_eq!(second.handshakes_total(), 0, "{extra:?}: {second:?}");
        assert_eq!(second.requests_total(), 0, "{extra:?}: {second:?}");
        assert!(second.failures_total() >= refused, "{extra:?}: {second:?}");
    }
}
