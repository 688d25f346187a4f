//! CPU time of this process or thread, from `getrusage`: the numerator of every
//! "CPU-µs per operation" figure tlsbench reports; and CPU placement: the CPU lists of the
//! command line, pinning a thread or a whole process to them, the rule that a benchmark's
//! server and generator share no CPU, and the warning when they share a core (SMT siblings).

use std::time::Duration;

/// User and system CPU time consumed so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTime {
    /// Time spent running our code (TLS, HTTP, the event loop).
    pub user: Duration,
    /// Time spent in the kernel on our behalf (socket reads and writes, epoll).
    pub sys: Duration,
}

impl CpuTime {
    /// User plus system time.
    pub fn total(&self) -> Duration {
        self.user + self.sys
    }

    /// The CPU time spent between `earlier` and `self` (saturating, never negative).
    pub fn since(&self, earlier: &CpuTime) -> CpuTime {
        CpuTime {
            user: self.user.saturating_sub(earlier.user),
            sys: self.sys.saturating_sub(earlier.sys),
        }
    }
}

/// CPU time of the whole process (all threads, including exited ones).
pub fn process() -> CpuTime {
    rusage(libc::RUSAGE_SELF)
}

/// CPU time of the calling thread only.
pub fn thread() -> CpuTime {
    rusage(libc::RUSAGE_THREAD)
}

fn rusage(who: libc::c_int) -> CpuTime {
    // SAFETY: `getrusage` writes a `struct rusage` into the pointer we pass; a zeroed rusage is
    // a valid value of that plain-data struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage; `who` is one of the two constants above, for
    // which getrusage cannot fail on Linux.
    let rc = unsafe { libc::getrusage(who, &mut usage) };
    if rc != 0 {
        return CpuTime::default();
    }
    CpuTime {
        user: timeval(usage.ru_utime),
        sys: timeval(usage.ru_stime),
    }
}

/// Why a placement was refused or could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum CpuError {
    /// The server and the generator were given the same CPUs.
    #[error(
        "the server CPUs ({server}) and the client CPUs ({client}) share CPU {shared}: a side's \
         CPU time would include the other's work"
    )]
    Overlap {
        /// The server's list as given.
        server: CpuList,
        /// The generator's list as given.
        client: CpuList,
        /// The CPUs in both.
        shared: CpuList,
    },
    /// A CPU number beyond what the affinity calls can name.
    #[error("CPU {0} is beyond what sched_setaffinity can name")]
    OutOfRange(usize),
    /// The kernel refused the affinity (an offline CPU, one outside this cgroup's cpuset).
    #[error("pinning {what} to CPUs {cpus}: {source}")]
    Affinity {
        /// The thread or process being pinned.
        what: String,
        /// The CPUs asked for.
        cpus: CpuList,
        /// The kernel's answer.
        source: std::io::Error,
    },
}

/// The kernel's CPU set for `cpus`.
fn cpu_set(cpus: &[usize]) -> Result<libc::cpu_set_t, CpuError> {
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(CpuError::OutOfRange(cpu));
        }
        // SAFETY: `cpu` < CPU_SETSIZE (checked above), so CPU_SET stays inside `set`.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    Ok(set)
}

/// `sched_setaffinity` of thread `tid` (0: the calling thread).
fn set_affinity(tid: libc::pid_t, set: &libc::cpu_set_t) -> std::io::Result<()> {
    // SAFETY: `set` is a valid cpu_set_t of the size we pass; the kernel only reads it.
    let rc = unsafe { libc::sched_setaffinity(tid, size_of::<libc::cpu_set_t>(), set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Pins the calling thread to one CPU, so the server and the generator of a benchmark do
/// not share a core and their CPU times stay apart.
pub fn pin_current_thread(cpu: usize) -> std::io::Result<()> {
    let set = cpu_set(&[cpu])
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    set_affinity(0, &set)
}

/// Confines the calling thread to `cpus`; threads it spawns afterwards inherit the set.
pub fn pin_current_thread_to(cpus: &CpuList) -> Result<(), CpuError> {
    set_affinity(0, &cpu_set(&cpus.0)?).map_err(|source| CpuError::Affinity {
        what: "this thread".into(),
        cpus: cpus.clone(),
        source,
    })
}

/// Confines every thread of this process to `cpus`: those running now, and through
/// inheritance every thread they spawn later. Call it before a side starts its work so no
/// thread of it (main, signal, admin, progress) runs on the other side's CPUs.
pub fn pin_current_process(cpus: &CpuList) -> Result<(), CpuError> {
    let set = cpu_set(&cpus.0)?;
    let err = |what: String| {
        let cpus = cpus.clone();
        move |source| CpuError::Affinity { what, cpus, source }
    };
    // Own thread first: if the kernel refuses the set, nothing has moved yet.
    set_affinity(0, &set).map_err(err("this thread".into()))?;
    // A thread spawned while the list is read inherits its creator's old mask; another pass
    // catches it. Threads do not multiply without bound, so a few passes settle.
    let mut pinned = std::collections::BTreeSet::new();
    for _ in 0..16 {
        let tasks = std::fs::read_dir("/proc/self/task")
            .map_err(err("the threads of /proc/self/task".into()))?;
        let mut new = 0;
        for entry in tasks.flatten() {
            let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
                continue;
            };
            if !pinned.insert(tid) {
                continue;
            }
            new += 1;
            match set_affinity(tid, &set) {
                Ok(()) => {}
                // The thread exited after it was listed.
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                Err(e) => return Err(err(format!("thread {tid}"))(e)),
            }
        }
        if new == 0 {
            return Ok(());
        }
    }
    Err(err("this process".into())(std::io::Error::other(
        "threads kept appearing while they were being pinned",
    )))
}

/// The CPUs a thread may run on, from its `/proc/<pid>/task/<tid>/status` text
/// (`Cpus_allowed_list`); `None` when the field is absent or unreadable.
pub fn allowed_cpus(status: &str) -> Option<CpuList> {
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
    list.trim().parse().ok()
}

/// The pairs (server CPU, client CPU) that are SMT siblings (two hardware threads of one core)
/// on this machine: there the two sides compete for one core's execution units, so each
/// side's CPU time depends on the other's load. Empty when the topology is unreadable.
pub fn smt_siblings_between(server: &CpuList, client: &CpuList) -> Vec<(usize, usize)> {
    crate::env::Topology::collect().siblings_between(server, client)
}

/// What a benchmark's placement needs before it starts, for a runner that generates load in
/// this process: the server's and the generator's CPUs share none (`server` is `None` when the
/// server is not ours to place), and this process is confined to the generator's CPUs.
/// Returns the warnings to print: server and client CPUs that are SMT siblings.
pub fn place_generator(
    server: Option<&CpuList>,
    client: &CpuList,
) -> Result<Vec<String>, CpuError> {
    let warnings = match server {
        Some(server) => check_placement(&crate::env::Topology::collect(), server, client)?,
        None => Vec::new(),
    };
    pin_current_process(client)?;
    Ok(warnings)
}

/// The placement rules on a given topology: overlapping sets refused, SMT siblings warned of.
fn check_placement(
    topology: &crate::env::Topology,
    server: &CpuList,
    client: &CpuList,
) -> Result<Vec<String>, CpuError> {
    server.disjoint(client)?;
    Ok(topology
        .siblings_between(server, client)
        .into_iter()
        .map(|(s, c)| {
            format!(
                "server CPU {s} and client CPU {c} are SMT siblings (one core): each side's \
                 CPU time depends on the other's load"
            )
        })
        .collect())
}

/// Parses a CPU list as taskset and /sys write them: `0`, `1-3`, `0,2-3`.
pub fn parse_cpu_list(s: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("'{s}': expected CPU numbers like 0, 1-3 or 0,2");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (
                    a.trim().parse().map_err(|_| bad())?,
                    b.trim().parse().map_err(|_| bad())?,
                );
                if a > b {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    if out.is_empty() {
        return Err(format!("'{s}': no CPU given"));
    }
    out.dedup();
    Ok(out)
}

/// A CPU list flag value (`0`, `1-3`, `0,2`): one type so a command line takes the whole
/// list as one argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuList(pub Vec<usize>);

impl CpuList {
    /// Refuses two lists that share a CPU, naming the shared ones; `self` is the server's.
    pub fn disjoint(&self, client: &CpuList) -> Result<(), CpuError> {
        let shared: Vec<usize> = self
            .0
            .iter()
            .copied()
            .filter(|cpu| client.0.contains(cpu))
            .collect();
        if shared.is_empty() {
            Ok(())
        } else {
            Err(CpuError::Overlap {
                server: self.clone(),
                client: client.clone(),
                shared: CpuList(shared),
            })
        }
    }
}

impl std::str::FromStr for CpuList {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_cpu_list(s).map(CpuList)
    }
}

impl std::fmt::Display for CpuList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(usize::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

fn timeval(tv: libc::timeval) -> Duration {
    Duration::from_secs(tv.tv_sec.max(0) as u64) + Duration::from_micros(tv.tv_usec.max(0) as u64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_and_pinning() {
        assert_eq!(parse_cpu_list("0").unwrap(), vec![0]);
        assert_eq!(parse_cpu_list("1-3").unwrap(), vec![1, 2, 3]);
        assert_eq!(parse_cpu_list("0, 2-3").unwrap(), vec![0, 2, 3]);
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("x").is_err());
        assert!(parse_cpu_list("").is_err());
        std::thread::spawn(|| {
            pin_current_thread(0).unwrap();
            // SAFETY: sched_getcpu has no preconditions.
            assert_eq!(unsafe { libc::sched_getcpu() }, 0);
        })
        .join()
        .unwrap();
        assert!(pin_current_thread(1 << 20).is_err());
    }

    #[test]
    fn overlapping_lists_are_refused_naming_the_shared_cpus() {
        let list = |s: &str| s.parse::<CpuList>().unwrap();
        assert!(list("0").disjoint(&list("1")).is_ok());
        assert!(list("0-1").disjoint(&list("2-3")).is_ok());
        let err = list("0").disjoint(&list("0,1")).unwrap_err();
        assert!(
            matches!(&err, CpuError::Overlap { shared, .. } if shared.0 == [0]),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("server CPUs (0)"), "{text}");
        assert!(text.contains("client CPUs (0,1)"), "{text}");
        assert!(text.contains("share CPU 0"), "{text}");
        let err = list("0-3").disjoint(&list("2,3,5")).unwrap_err();
        assert!(err.to_string().contains("share CPU 2,3"), "{err}");
        // The generator's side is refused before anything is pinned.
        assert!(matches!(
            place_generator(Some(&list("0")), &list("0")),
            Err(CpuError::Overlap { .. })
        ));
    }

    #[test]
    fn smt_siblings_across_the_sides_are_warned_of() {
        let list = |s: &str| s.parse::<CpuList>().unwrap();
        let smt = crate::env::Topology {
            cores: Some(vec![vec![0, 2], vec![1, 3]]),
            ..Default::default()
        };
        assert!(
            check_placement(&smt, &list("0"), &list("1"))
                .unwrap()
                .is_empty()
        );
        let warnings = check_placement(&smt, &list("0-1"), &list("2")).unwrap();
        assert_eq!(
            warnings,
            [
                "server CPU 0 and client CPU 2 are SMT siblings (one core): each side's CPU time \
              depends on the other's load"
            ]
        );
        // Unknown cores: nothing to warn of, nothing invented.
        let unknown = crate::env::Topology::default();
        assert!(
            check_placement(&unknown, &list("0"), &list("2"))
                .unwrap()
                .is_empty()
        );
        assert!(check_placement(&smt, &list("0"), &list("0")).is_err());
    }

    #[test]
    fn allowed_cpus_from_status() {
        let status =
            "Name:\ttlsbench\nCpus_allowed:\t3\nCpus_allowed_list:\t0-1\nMems_allowed_list:\t0\n";
        assert_eq!(allowed_cpus(status), Some(CpuList(vec![0, 1])));
        assert_eq!(allowed_cpus("Name:\tx\n"), None);
    }

    #[test]
    fn a_pinned_process_confines_its_threads_and_their_children() {
        // A process of its own: pinning the test binary would confine the tests around it.
        let cpu = pinnable_cpu();
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "cpu::tests::pinned_process_probe",
                "--ignored",
                "--nocapture",
            ])
            .env("TLSBENCH_PIN_PROBE", cpu.to_string())
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&child.stdout).into_owned();
        assert!(
            child.status.success(),
            "{out}{}",
            String::from_utf8_lossy(&child.stderr)
        );
        assert!(
            out.contains(&format!("probe: every thread on {cpu}")),
            "{out}"
        );
    }

    /// Run by the test above in a child process of its own, hence ignored in the ordinary run.
    #[test]
    #[ignore = "pins its whole process; run by a_pinned_process_confines_its_threads_and_their_children"]
    fn pinned_process_probe() {
        let cpus: CpuList = std::env::var("TLSBENCH_PIN_PROBE")
            .unwrap()
            .parse()
            .unwrap();
        let (tx_before, rx_before) = std::sync::mpsc::channel::<()>();
        let before = std::thread::spawn(move || rx_before.recv());
        pin_current_process(&cpus).unwrap();
        let (tx_after, rx_after) = std::sync::mpsc::channel::<()>();
        let after = std::thread::spawn(move || rx_after.recv());
        let mut seen = 0;
        for entry in std::fs::read_dir("/proc/self/task").unwrap() {
            let tid = entry.unwrap().file_name().into_string().unwrap();
            let status = crate::procfs::status(&format!("self/task/{tid}")).unwrap();
            assert_eq!(allowed_cpus(&status), Some(cpus.clone()), "thread {tid}");
            seen += 1;
        }
        tx_before.send(()).unwrap();
        tx_after.send(()).unwrap();
        before.join().unwrap().unwrap();
        after.join().unwrap().unwrap();
        // The harness's main thread, this test's, and the two above.
        assert!(seen >= 3, "{seen} threads");
        println!("probe: every thread on {cpus}");
    }

    /// A CPU this process may run on (the last allowed one, so CPU 0 is not always the one).
    fn pinnable_cpu() -> usize {
        let status = crate::procfs::status("self").unwrap();
        *allowed_cpus(&status).unwrap().0.last().unwrap()
    }

    #[test]
    fn thread_cpu_grows_with_work_and_process_covers_thread() {
        let before = thread();
        // Spin until the kernel's accounting (tick-granular on some kernels) has moved.
        let mut x = 0u64;
        while thread().total() <= before.total() {
            for i in 0..100_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            std::hint::black_box(x);
        }
        let after = thread();
        assert!(after.since(&before).total() > Duration::ZERO);
        assert!(process().total() >= after.total());
        assert_eq!(before.since(&after), CpuTime::default());
    }
}
