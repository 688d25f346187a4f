//! The worker's tests: per-operation timing on a real server, and the free list and timer
//! heap driven by hand.

use std::net::SocketAddr;

use common::certs::KeyType;

use super::*;
use crate::plan::Plan;
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

/// A plain-HTTP worker of `connections` slots that is never run: its bookkeeping is
/// driven by hand.
fn idle_worker<'a>(plan: &'a Plan, shared: &'a Shared, connections: usize) -> Worker<'a, Plain> {
    let (intervals, _rx) = mpsc::channel();
    let target = Target::new("http://127.0.0.1:9/", None, None).unwrap();
    let mut opts = LoadOptions::new(target, Trust::Platform);
    // No roots to load: a plain target never verifies.
    opts.tls.insecure = true;
    let spec = WorkerSpec {
        connections,
        quota: None,
        rate: None,
        tls: tlsconf::worker_tls(&opts.tls, None).unwrap(),
        pin_cpu: None,
        start: Instant::now(),
        intervals,
        place: (0, 1),
    };
    Worker::<Plain>::new(plan, shared, spec).unwrap()
}

fn plain_plan() -> Plan {
    let target = Target::new("http://127.0.0.1:9/", None, None).unwrap();
    Plan::new(&LoadOptions::new(target, Trust::Platform))
}

#[test]
fn stale_timers_are_swept_once_they_outnumber_the_slots() {
    let plan = plain_plan();
    let shared = Shared::default();
    let mut w = idle_worker(&plan, &shared, 2);
    let later = Instant::now() + Duration::from_secs(3600);
    for _ in 0..1000 {
        // Each operation ends before its deadline: its timer goes stale.
        w.slots[0].generation += 1;
        w.set_timer(0, later, TimerKind::Deadline);
    }
    let bound = 4 * w.slots.len() + 64 + 1;
    assert!(w.timers.len() <= bound, "{} timers kept", w.timers.len());
    let current = w.slots[0].generation;
    assert!(
        w.timers.iter().any(|Reverse(t)| t.generation == current),
        "the live timer was swept"
    );
}

#[test]
fn a_failed_slot_waits_for_its_backoff_and_stale_timers_do_nothing() {
    let plan = plain_plan();
    let shared = Shared::default();
    let mut w = idle_worker(&plan, &shared, 1);
    assert!(w.has_free_slot());
    let now = Instant::now();
    // A deadline set for an operation that already ended fires into nothing.
    w.set_timer(0, now, TimerKind::Deadline);
    w.slots[0].generation += 1;
    w.fire_timers(now);
    assert!(w.timers.is_empty());
    assert!(w.has_free_slot());

    w.free.clear();
    w.slots[0].listed = false;
    w.op_failed(0, FailureKind::Refused, true);
    assert_eq!(w.m.counters.errors_of(FailureKind::Refused), 1);
    assert!(!w.has_free_slot(), "free during its backoff");
    w.fire_timers(Instant::now());
    assert!(!w.has_free_slot(), "free before its backoff ended");
    w.fire_timers(Instant::now() + RETRY_BACKOFF);
    assert!(w.has_free_slot(), "still backing off after the backoff");
    assert_eq!(w.free, [0]);
    // Freed again while listed: listed once.
    w.release(0);
    assert_eq!(w.free, [0]);
}
