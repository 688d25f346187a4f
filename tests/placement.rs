//! CPU placement of the `tlsbench server` binary, read from outside the process: with
//! `--pin-cpus` every thread (main, signal, admin, workers) may run only on the given CPUs, and
//! each worker only on its own one of them; `tlsbench run` refuses server and client CPUs that
//! overlap.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use common::cpu::{CpuList, allowed_cpus};
use support::{EXIT_TIMEOUT, TempDir, server_in, tlsbench, wait_until};
use test_support::binary as support;

/// Each thread of process `pid`: its name (`comm`, which the kernel cuts to 15 bytes, so
/// `tlsbench-worker-0` reads `tlsbench-worker`) and the CPUs it may run on.
fn thread_cpus(pid: u32) -> Vec<(String, CpuList)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let tid = entry.unwrap().file_name().into_string().unwrap();
        // A thread that exited after the listing has no status to read.
        let (Ok(comm), Ok(status)) = (
            std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")),
            common::procfs::status(&format!("{pid}/task/{tid}")),
        ) else {
            continue;
        };
        let cpus = allowed_cpus(&status).expect("Cpus_allowed_list in a thread's status");
        out.push((comm.trim().to_owned(), cpus));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The CPUs this test may pin a child to (the child starts with the test's own mask).
fn usable_cpus() -> Vec<usize> {
    let status = common::procfs::status("self").unwrap();
    allowed_cpus(&status).unwrap().0
}

/// Every thread a server with two workers and `--admin` runs, by name. A new thread bears its
/// creator's name until it has named itself, so the names also say the threads have started.
const THREADS: [&str; 5] = [
    "tlsbench",
    "tlsbench-admin",
    "tlsbench-signal",
    "tlsbench-worker",
    "tlsbench-worker",
];

/// The threads of a server started with `--threads 2 --pin-cpus pin`, once all of them run
/// and `placed` holds for each (workers pin themselves as they start, maybe after the
/// listening line); the server is stopped before returning.
fn pinned_server(pin: &str, placed: impl Fn(&str, &CpuList) -> bool) -> Vec<(String, CpuList)> {
    let dir = TempDir::new("placement");
    let (mut server, _, _) = server_in(dir.path(), &["--threads", "2", "--pin-cpus", pin]);
    let pid = server.guard.child().id();
    let mut threads = Vec::new();
    let settled = wait_until(EXIT_TIMEOUT, || {
        threads = thread_cpus(pid);
        threads.iter().map(|(name, _)| name.as_str()).eq(THREADS)
            && threads.iter().all(|(name, cpus)| placed(name, cpus))
    });
    let status = server.signal_and_wait(libc::SIGTERM, EXIT_TIMEOUT);
    assert!(settled, "threads of `--pin-cpus {pin}`: {threads:?}");
    assert!(status.success(), "{status:?}");
    threads
}

#[test]
fn every_server_thread_runs_on_the_pinned_cpu() {
    let want = CpuList(vec![usable_cpus()[0]]);
    let threads = pinned_server(&want.to_string(), |_, cpus| *cpus == want);
    assert_eq!(threads.len(), THREADS.len());
}

#[test]
fn workers_each_take_one_cpu_and_the_other_threads_the_whole_set() {
    let usable = usable_cpus();
    if usable.len() < 2 {
        eprintln!("skipped: this test may use only CPU {usable:?}");
        return;
    }
    let set = CpuList(usable[..2].to_vec());
    let threads = pinned_server(&set.to_string(), |name, cpus| {
        if name == "tlsbench-worker" {
            cpus.0.len() == 1 && set.0.contains(&cpus.0[0])
        } else {
            *cpus == set
        }
    });
    // Round robin: the two workers on different CPUs.
    let mut workers: Vec<usize> = threads
        .iter()
        .filter(|(name, _)| name == "tlsbench-worker")
        .map(|(_, cpus)| cpus.0[0])
        .collect();
    workers.sort_unstable();
    assert_eq!(workers, set.0);
}

#[test]
fn run_refuses_server_and_client_cpus_that_overlap() {
    let dir = TempDir::new("placement-run");
    let out = dir.path().join("results");
    let ran = tlsbench(&[
        "run",
        "--quick",
        "--server-cpus",
        "0",
        "--client-cpus",
        "0,1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(ran.status.code(), Some(1), "{}", ran.describe());
    assert!(
        ran.stderr
            .contains("the server CPUs (0) and the client CPUs (0,1) share CPU 0"),
        "{}",
        ran.describe()
    );
    assert!(!out.exists(), "a refused run wrote {}", out.display());
}
