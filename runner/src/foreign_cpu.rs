//! CPU time of a server that is not ours (`--server-pid`, `--server-cgroup`, and the peers
//! `--peer` starts): read from Linux's `/proc` or a cgroup v2 `cpu.stat` at the measured
//! window's edges, as our server's admin counters are.
//!
//! A process tree is summed as utime + stime + cutime + cstime of every live process in it
//! (each root and every descendant, found by walking `/proc/*/stat` parents). A descendant that
//! exits between the two reads does not make the total go backwards: when its parent (in the
//! tree) reaps it, the kernel adds its whole time to the parent's cutime/cstime, which the sum
//! already covers. Only a process reaped outside the tree (a daemon that double-forks, a
//! parent that never waits) takes its time away; that window is refused with the reason
//! rather than clamped to a smaller number. A cgroup's `usage_usec` has no such gap.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where cgroup v2 is mounted; a relative `--server-cgroup` is under it.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Why a foreign server's CPU could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ForeignCpuError {
    /// A PID given (or a peer's) names no running process.
    #[error("server process {pid}: no such process ({source})")]
    NoProcess {
        /// The PID.
        pid: u32,
        /// What reading its `/proc/PID/stat` answered.
        source: std::io::Error,
    },
    /// /proc itself cannot be listed.
    #[error("listing /proc: {0}")]
    Proc(std::io::Error),
    /// A process's stat line is not what the kernel writes.
    #[error("/proc/{pid}/stat: {why}")]
    BadStat {
        /// The PID.
        pid: u32,
        /// What was wrong.
        why: String,
    },
    /// The cgroup has no readable cpu.stat (not a cgroup v2 directory, or no cpu controller).
    #[error("cgroup {path}: cannot read its cpu.stat ({source})")]
    NoCpuStat {
        /// The cpu.stat path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// cpu.stat without a usage_usec line.
    #[error("cgroup {path}: cpu.stat has no usage_usec line")]
    NoUsage {
        /// The cpu.stat path.
        path: PathBuf,
    },
    /// The tree's total fell between the window's edges.
    #[error(
        "the CPU of {source_name} went backwards by {lost_ms:.1} ms in the window: a process left \
         the tree without a parent in it collecting its time; measure with --server-cgroup"
    )]
    Backwards {
        /// What was read.
        source_name: String,
        /// How much was lost, ms.
        lost_ms: f64,
    },
}

/// What a foreign server's CPU is read from, parsed once from the flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CpuSource {
    /// These processes, all their threads and all their descendants.
    Pids(Vec<u32>),
    /// A cgroup v2 directory (its `cpu.stat`).
    Cgroup(PathBuf),
}

impl fmt::Display for CpuSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CpuSource::Pids(pids) => {
                let list: Vec<String> = pids.iter().map(u32::to_string).collect();
                write!(
                    f,
                    "/proc: processes {} with their threads and descendants",
                    list.join(",")
                )
            }
            CpuSource::Cgroup(dir) => write!(f, "cgroup v2 {}", dir.join("cpu.stat").display()),
        }
    }
}

impl CpuSource {
    /// The source `--server-pid` / `--server-cgroup` name (none when neither is given), read
    /// once so a PID that does not exist or a cgroup without cpu.stat is refused at start.
    pub fn from_flags(
        pids: &[u32],
        cgroup: Option<&Path>,
    ) -> Result<Option<CpuSource>, ForeignCpuError> {
        let source = match (pids.is_empty(), cgroup) {
            (_, Some(dir)) => CpuSource::Cgroup(Path::new(CGROUP_ROOT).join(dir)),
            (false, None) => CpuSource::Pids(pids.to_vec()),
            (true, None) => return Ok(None),
        };
        source.read()?;
        Ok(Some(source))
    }

    /// The CPU time consumed so far (user + system).
    pub fn read(&self) -> Result<Duration, ForeignCpuError> {
        match self {
            CpuSource::Pids(roots) => tree_cpu(Path::new("/proc"), roots),
            CpuSource::Cgroup(dir) => cgroup_usage(dir),
        }
    }

    /// The CPU time between two reads; refused when it went backwards.
    pub fn since(&self, before: Duration, after: Duration) -> Result<Duration, ForeignCpuError> {
        after
            .checked_sub(before)
            .ok_or_else(|| ForeignCpuError::Backwards {
                source_name: self.to_string(),
                lost_ms: (before - after).as_secs_f64() * 1e3,
            })
    }
}

/// `usage_usec` of `dir/cpu.stat`.
fn cgroup_usage(dir: &Path) -> Result<Duration, ForeignCpuError> {
    let path = dir.join("cpu.stat");
    let text = std::fs::read_to_string(&path).map_err(|source| ForeignCpuError::NoCpuStat {
        path: path.clone(),
        source,
    })?;
    text.lines()
        .find_map(|l| l.strip_prefix("usage_usec ")?.trim().parse::<u64>().ok())
        .map(Duration::from_micros)
        .ok_or(ForeignCpuError::NoUsage { path })
}

/// One process's line of `/proc/<pid>/stat`, the fields the sum needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stat {
    ppid: u32,
    /// utime + stime + cutime + cstime, clock ticks: its own threads (live and exited) and
    /// the children it has reaped.
    ticks: u64,
}

/// Parses a stat line. The command name (field 2) is in parentheses and may hold spaces and
/// parentheses itself, so fields are counted from the last `)`.
fn parse_stat(pid: u32, line: &str) -> Result<Stat, ForeignCpuError> {
    let bad = |why: &str| ForeignCpuError::BadStat {
        pid,
        why: why.to_owned(),
    };
    let rest = line
        .rsplit_once(')')
        .ok_or_else(|| bad("no ')' after the command name"))?
        .1;
    // Field 3 (state) is the first after the name; field N is at index N - 3.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let num = |n: usize| -> Result<u64, ForeignCpuError> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| bad(&format!("field {n} missing or not a number")))
    };
    let ppid = u32::try_from(num(4)?).map_err(|_| bad("parent PID out of range"))?;
    Ok(Stat {
        ppid,
        ticks: num(14)? + num(15)? + num(16)? + num(17)?,
    })
}

/// Every process of `proc_root` by PID (processes that vanish while listed are skipped).
fn all_stats(proc_root: &Path) -> Result<BTreeMap<u32, Stat>, ForeignCpuError> {
    let mut out = BTreeMap::new();
    let entries = std::fs::read_dir(proc_root).map_err(ForeignCpuError::Proc)?;
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        // Gone since the listing: not part of any tree now.
        let Ok(line) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        out.insert(pid, parse_stat(pid, &line)?);
    }
    Ok(out)
}

/// CPU of `roots` and all their descendants, each process once (a root that descends from
/// another root is not counted twice).
fn tree_cpu(proc_root: &Path, roots: &[u32]) -> Result<Duration, ForeignCpuError> {
    let stats = all_stats(proc_root)?;
    for &pid in roots {
        if !stats.contains_key(&pid) {
            let path = proc_root.join(pid.to_string()).join("stat");
            let source = std::fs::metadata(&path)
                .err()
                .unwrap_or_else(|| std::io::Error::other("it exited while /proc was read"));
            return Err(ForeignCpuError::NoProcess { pid, source });
        }
    }
    let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for (&pid, s) in &stats {
        children.entry(s.ppid).or_default().push(pid);
    }
    let mut seen = BTreeSet::new();
    let mut queue: Vec<u32> = roots.to_vec();
    // Each PID is visited once, so the walk ends after at most stats.len() steps.
    while let Some(pid) = queue.pop() {
        if seen.insert(pid) {
            queue.extend(children.get(&pid).into_iter().flatten());
        }
    }
    let ticks: u64 = seen
        .iter()
        .filter_map(|p| stats.get(p))
        .map(|s| s.ticks)
        .sum();
    Ok(ticks_to_duration(ticks, clock_ticks_per_second()))
}

fn ticks_to_duration(ticks: u64, per_second: u64) -> Duration {
    let per_second = per_second.max(1);
    Duration::from_secs(ticks / per_second)
        + Duration::from_nanos((ticks % per_second) * 1_000_000_000 / per_second)
}

/// The kernel's USER_HZ, the unit of /proc's times.
fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    // Linux has answered 100 on every architecture since 2.6; sysconf cannot fail for this name.
    u64::try_from(hz).unwrap_or(100)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A fake /proc: one directory per process with a stat line.
    struct FakeProc(PathBuf);

    impl FakeProc {
        fn new(tag: &str) -> FakeProc {
            let dir = std::env::temp_dir()
                .join(format!("tlsbench-fakeproc-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            FakeProc(dir)
        }

        /// Process `pid` under `ppid` with utime, stime, cutime, cstime ticks.
        fn set(&self, pid: u32, ppid: u32, t: [u64; 4]) {
            let d = self.0.join(pid.to_string());
            std::fs::create_dir_all(&d).unwrap();
            let line = format!(
                "{pid} (nginx: a) b) S {ppid} 1 1 0 -1 4194560 100 0 0 0 {} {} {} {} 20 0 1 0 5 0 0\n",
                t[0], t[1], t[2], t[3]
            );
            std::fs::write(d.join("stat"), line).unwrap();
        }

        fn remove(&self, pid: u32) {
            std::fs::remove_dir_all(self.0.join(pid.to_string())).unwrap();
        }

        fn ticks(&self, roots: &[u32]) -> u64 {
            let d = tree_cpu(&self.0, roots).unwrap();
            (d.as_nanos() * u128::from(clock_ticks_per_second()) / 1_000_000_000) as u64
        }
    }

    impl Drop for FakeProc {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn stat_lines_parse_past_a_command_name_with_parentheses() {
        let s = parse_stat(
            7,
            "7 (a) (b) S 3 1 1 0 -1 0 0 0 0 0 11 22 33 44 20 0 1 0 5 0 0",
        )
        .unwrap();
        assert_eq!(
            s,
            Stat {
                ppid: 3,
                ticks: 110
            }
        );
        let e = parse_stat(7, "7 (a) S 3 1").unwrap_err().to_string();
        assert!(e.contains("/proc/7/stat") && e.contains("field 14"), "{e}");
        assert!(parse_stat(7, "no parenthesis").is_err());
    }

    #[test]
    fn a_tree_sums_its_descendants_once_and_nothing_else() {
        let p = FakeProc::new("tree");
        p.set(100, 1, [10, 5, 0, 0]); // master
        p.set(101, 100, [40, 20, 0, 0]); // worker
        p.set(102, 100, [1, 1, 0, 0]); // worker
        p.set(103, 101, [2, 0, 0, 0]); // a grandchild
        p.set(200, 1, [1000, 0, 0, 0]); // someone else
        assert_eq!(p.ticks(&[100]), 79);
        // A worker named beside its master is not counted twice.
        assert_eq!(p.ticks(&[100, 101]), 79);
        assert_eq!(p.ticks(&[101]), 62);
        let e = tree_cpu(&p.0, &[100, 999]).unwrap_err().to_string();
        assert!(e.contains("server process 999"), "{e}");
    }

    #[test]
    fn a_child_reaped_between_reads_keeps_its_time_in_the_parents_cutime() {
        let p = FakeProc::new("reaped");
        p.set(100, 1, [10, 5, 0, 0]);
        p.set(101, 100, [40, 20, 0, 0]);
        let before = tree_cpu(&p.0, &[100]).unwrap();
        // The worker ran 5 more ticks, exited and was reaped: its 65 ticks move to cutime/cstime.
        p.remove(101);
        p.set(100, 1, [10, 5, 45, 20]);
        let after = tree_cpu(&p.0, &[100]).unwrap();
        let source = CpuSource::Pids(vec![100]);
        let d = source.since(before, after).unwrap();
        assert_eq!(d, ticks_to_duration(5, clock_ticks_per_second()));
    }

    #[test]
    fn a_child_lost_outside_the_tree_is_refused_not_clamped() {
        let p = FakeProc::new("lost");
        p.set(100, 1, [10, 5, 0, 0]);
        p.set(101, 100, [40, 20, 0, 0]);
        let before = tree_cpu(&p.0, &[100]).unwrap();
        // Reparented to init and reaped there: its time is gone from the tree.
        p.remove(101);
        let after = tree_cpu(&p.0, &[100]).unwrap();
        let e = CpuSource::Pids(vec![100])
            .since(before, after)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("went backwards") && e.contains("--server-cgroup"),
            "{e}"
        );
    }

    #[test]
    fn missing_pids_and_cgroups_without_cpu_stat_are_refused_by_name() {
        let e = CpuSource::from_flags(&[u32::MAX - 1], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains(&(u32::MAX - 1).to_string()), "{e}");
        let dir = std::env::temp_dir().join(format!("tlsbench-cgroup-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = CpuSource::from_flags(&[], Some(&dir))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&dir.display().to_string()) && e.contains("cpu.stat"),
            "{e}"
        );
        std::fs::write(dir.join("cpu.stat"), "user_usec 5\n").unwrap();
        let e = CpuSource::from_flags(&[], Some(&dir))
            .unwrap_err()
            .to_string();
        assert!(e.contains("usage_usec"), "{e}");
        std::fs::write(dir.join("cpu.stat"), "usage_usec 1500\nuser_usec 5\n").unwrap();
        let s = CpuSource::from_flags(&[], Some(&dir)).unwrap().unwrap();
        assert_eq!(s.read().unwrap(), Duration::from_micros(1500));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(CpuSource::from_flags(&[], None).unwrap(), None);
    }

    /// This process's cgroup v2 directory, when cgroup v2 is mounted.
    fn own_cgroup() -> Option<PathBuf> {
        let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
        let mount = mounts.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(f[1]))
        })?;
        let groups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let path = groups.lines().find_map(|l| l.strip_prefix("0::"))?;
        Some(mount.join(path.trim_start_matches('/')))
    }

    #[test]
    fn a_real_cgroups_usage_grows_with_work_in_it() {
        let Some(dir) = own_cgroup().filter(|d| d.join("cpu.stat").exists()) else {
            eprintln!("SKIPPED: no cgroup v2 with cpu.stat for this process");
            return;
        };
        let source = CpuSource::from_flags(&[], Some(&dir)).unwrap().unwrap();
        let before = source.read().unwrap();
        let mut x = 0u64;
        let mut rounds = 0;
        while source.read().unwrap() <= before && rounds < 10_000 {
            for i in 0..100_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            std::hint::black_box(x);
            rounds += 1;
        }
        let grew = source.since(before, source.read().unwrap()).unwrap();
        assert!(grew > Duration::ZERO, "{} did not grow", source);
    }

    #[test]
    fn this_process_is_a_tree_whose_cpu_grows_with_a_childs_work() {
        let me = CpuSource::from_flags(&[std::process::id()], None)
            .unwrap()
            .unwrap();
        let before = me.read().unwrap();
        // A child that burns CPU until the tree's total moves, then exits and is reaped.
        let mut spins = 0;
        loop {
            let status = std::process::Command::new("sh")
                .args(["-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"])
                .status()
                .unwrap();
            assert!(status.success());
            spins += 1;
            if me.read().unwrap() > before || spins > 200 {
                break;
            }
        }
        let grew = me.since(before, me.read().unwrap()).unwrap();
        assert!(grew > Duration::ZERO, "no CPU after {spins} children");
    }
}
