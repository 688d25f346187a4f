//! CPU placement of the generator run in this process: with `pin_cpus` each worker runs on
//! its own CPU of the set and the calling thread (intervals, progress) on the whole set, as
//! `/proc/self/task/*/status` shows while the load runs; an unusable set is refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use common::cpu::{CpuError, CpuList, allowed_cpus};
use loadgen::{LoadError, Observer};
use server::Resumption;
use support::TestServer;
use test_support::load_target as support;

/// The CPUs a thread may run on, from `/proc/<task>/status` (`thread-self`, `self/task/<tid>`).
fn cpus_of(task: &str) -> Option<CpuList> {
    allowed_cpus(&common::procfs::status(task).ok()?)
}

/// What the generator's threads may run on, sampled from the progress callback (which runs on
/// the calling thread while the workers run).
struct Placement {
    /// The calling thread's CPUs at the last sample.
    caller: Option<CpuList>,
    /// Each `tlsbench-load-<i>` worker's CPUs at the last sample, by name.
    workers: Vec<(String, CpuList)>,
    /// The first sample where `placed` held, if one did.
    settled: Option<(CpuList, Vec<(String, CpuList)>)>,
    /// The set the generator was given.
    want: CpuList,
}

impl Placement {
    /// The caller on the whole set, worker i (both present, named) on the i-th CPU of it.
    fn placed(&self, caller: &CpuList) -> bool {
        *caller == self.want
            && self.workers.len() == 2
            && self.workers.iter().enumerate().all(|(i, (name, cpus))| {
                *name == format!("tlsbench-load-{i}")
                    && cpus.0 == [self.want.0[i % self.want.0.len()]]
            })
    }
}

impl Observer for Placement {
    fn progress(&mut self, _elapsed: Duration, _done: u64) {
        self.caller = cpus_of("thread-self");
        self.workers.clear();
        for entry in std::fs::read_dir("/proc/self/task").unwrap() {
            let tid = entry.unwrap().file_name().into_string().unwrap();
            let Ok(comm) = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")) else {
                continue;
            };
            if comm.starts_with("tlsbench-load-")
                && let Some(cpus) = cpus_of(&format!("self/task/{tid}"))
            {
                self.workers.push((comm.trim().to_owned(), cpus));
            }
        }
        self.workers.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(caller) = &self.caller
            && self.settled.is_none()
            && self.placed(caller)
        {
            self.settled = Some((caller.clone(), self.workers.clone()));
        }
    }
}

#[test]
fn every_generator_thread_runs_on_its_pinned_cpus() {
    let usable = cpus_of("thread-self").unwrap().0;
    // Fewer CPUs than this process has (when it has several), so an unpinned thread shows.
    let take = usable.len().saturating_sub(1).clamp(1, 2);
    let set = CpuList(usable.into_iter().take(take).collect());
    let srv = TestServer::start(Resumption::Both, 1);
    let mut opts = srv.options("/");
    opts.threads = 2;
    opts.connections = 2;
    opts.requests = None;
    // Long enough for several progress samples (one per 200 ms at most) with workers running.
    opts.duration = Some(Duration::from_secs(2));
    opts.pin_cpus = set.0.clone();
    let mut placement = Placement {
        caller: None,
        workers: Vec::new(),
        settled: None,
        want: set.clone(),
    };
    let r = loadgen::run(&opts, &mut placement, &AtomicBool::new(false)).unwrap();
    assert!(r.incomplete.is_none(), "{:?}", r.incomplete);
    assert!(
        placement.settled.is_some(),
        "pinned to {set}: the caller was on {:?}, the workers on {:?}",
        placement.caller,
        placement.workers
    );
}

#[test]
fn a_set_the_kernel_cannot_pin_to_is_refused() {
    let srv = TestServer::start(Resumption::Both, 1);
    let mut opts = srv.options("/");
    opts.pin_cpus = vec![1 << 20];
    let err = loadgen::run(&opts, &mut loadgen::Quiet, &AtomicBool::new(false)).unwrap_err();
    assert!(
        matches!(err, LoadError::Cpu(CpuError::OutOfRange(n)) if n == 1 << 20),
        "{err:?}"
    );
    // A CPU the affinity call can name but this machine does not have.
    opts.pin_cpus = vec![1000];
    let err = loadgen::run(&opts, &mut loadgen::Quiet, &AtomicBool::new(false)).unwrap_err();
    assert!(
        matches!(err, LoadError::Cpu(CpuError::Affinity { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("CPUs 1000"), "{err}");
}
