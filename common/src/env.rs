//! The environment a result was measured in: machine, CPU topology, kernel, OS, compiler,
//! revision and the versions of the crates doing the work, so a results file says where its
//! numbers come from.
//!
//! Build-time facts (compiler, git revision, crate versions) are baked in by `build.rs`; the
//! rest is read from the running system. Nothing here fails: what cannot be found is
//! "unknown" (or `None`), because a missing hostname must not cost a benchmark run.

use std::collections::BTreeMap;
use std::path::Path;

use crate::cpu::CpuList;

// Results record when they were measured beside where; the formatting lives in `date`.
pub use crate::date::{utc_rfc3339, utc_stamp};

/// Written where a value could not be found.
const UNKNOWN: &str = "unknown";

/// Where a result was measured.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Environment {
    /// The machine's host name (`/proc/sys/kernel/hostname`).
    pub hostname: String,
    /// The first processor's model name from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// CPUs this process may run on (`std::thread::available_parallelism`, which honours
    /// affinity masks and cgroup quotas).
    pub cores: usize,
    /// Processor entries in `/proc/cpuinfo`: every logical CPU of the machine; 0 if unreadable.
    pub logical_cpus: usize,
    /// The kernel release (`/proc/sys/kernel/osrelease`).
    pub kernel: String,
    /// `PRETTY_NAME` from `/etc/os-release`.
    pub os: String,
    /// `rustc --version` of the compiler that built this binary.
    pub rustc: String,
    /// The tlsbench version.
    pub tlsbench_version: String,
    /// The commit the binary was built from, with "-dirty" if any source compiled into it
    /// differed from that commit; "unknown" when built outside this project's git checkout
    /// (`build.rs` reruns on every source change, so this is the build's, not a stale value).
    pub git_revision: String,
    /// Versions of rustls, aws-lc-rs, aws-lc-sys, mio, hdrhistogram and socket2 from the
    /// workspace Cargo.lock when built (several, space-separated, if more than one is locked).
    pub crates: BTreeMap<String, String>,
    /// The CPUs as the kernel describes them; absent from results written before it existed.
    #[serde(default)]
    pub topology: Topology,
}

/// The machine's CPUs as the kernel describes them: what decides whether two pinned sides
/// really run apart and at a steady clock. Each field is `None` (or empty) where the kernel
/// does not say, never a guess.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Topology {
    /// Online CPUs (`/sys/devices/system/cpu/online`).
    pub online: Option<Vec<usize>>,
    /// One entry per core of the online CPUs: the CPUs that are its SMT siblings
    /// (`cpuN/topology/thread_siblings_list`); a core without SMT lists one CPU.
    pub cores: Option<Vec<Vec<usize>>>,
    /// Whether SMT is active (`/sys/devices/system/cpu/smt/active`).
    pub smt_active: Option<bool>,
    /// The hypervisor under this machine: "none" on bare metal, else its name ("kvm", "xen",
    /// ...) from `systemd-detect-virt --vm` or `/sys/hypervisor/type`, or "unknown hypervisor"
    /// when only the x86 `hypervisor` CPU flag says there is one.
    pub virtualization: Option<String>,
    /// The frequency governor of each cpufreq policy (`policyN/scaling_governor`); empty when
    /// cpufreq is not exposed (common in virtual machines).
    pub governors: BTreeMap<String, String>,
    /// Whether boost (turbo) may raise the clock (`cpufreq/boost`, or intel_pstate's
    /// `no_turbo` inverted).
    pub boost: Option<bool>,
}

impl Topology {
    /// Reads this machine's topology.
    pub fn collect() -> Topology {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let detected = std::process::Command::new("systemd-detect-virt")
            .arg("--vm")
            .output()
            .ok()
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned());
        let hypervisor = std::fs::read_to_string("/sys/hypervisor/type").ok();
        let mut topology = Topology::from_sysfs(Path::new("/sys/devices/system/cpu"));
        topology.virtualization =
            virtualization(detected.as_deref(), hypervisor.as_deref(), &cpuinfo);
        topology
    }

    /// The CPU part of the topology from a `/sys/devices/system/cpu` tree at `dir`.
    fn from_sysfs(dir: &Path) -> Topology {
        let read = |path: &str| std::fs::read_to_string(dir.join(path)).ok();
        let online = read("online").and_then(|t| t.trim().parse::<CpuList>().ok());
        let cores = online.as_ref().and_then(|online| {
            let lists: Option<Vec<String>> = online
                .0
                .iter()
                .map(|cpu| read(&format!("cpu{cpu}/topology/thread_siblings_list")))
                .collect();
            cores(&lists?)
        });
        let mut governors = BTreeMap::new();
        if let Ok(policies) = std::fs::read_dir(dir.join("cpufreq")) {
            for policy in policies.flatten() {
                let name = policy.file_name().to_string_lossy().into_owned();
                if !name.starts_with("policy") {
                    continue;
                }
                if let Ok(governor) =
                    std::fs::read_to_string(policy.path().join("scaling_governor"))
                {
                    governors.insert(name, governor.trim().to_owned());
                }
            }
        }
        Topology {
            online: online.map(|l| l.0),
            cores,
            smt_active: read("smt/active").as_deref().and_then(flag),
            virtualization: None,
            governors,
            boost: boost(
                read("cpufreq/boost").as_deref(),
                read("intel_pstate/no_turbo").as_deref(),
            ),
        }
    }

    /// The pairs (server CPU, client CPU) that are two hardware threads of one core: there the
    /// sides compete for that core's execution units. Empty when the cores are unknown.
    pub fn siblings_between(&self, server: &CpuList, client: &CpuList) -> Vec<(usize, usize)> {
        let Some(cores) = &self.cores else {
            return Vec::new();
        };
        let mut pairs = Vec::new();
        for core in cores {
            for &s in server.0.iter().filter(|s| core.contains(s)) {
                for &c in client.0.iter().filter(|c| core.contains(c) && **c != s) {
                    pairs.push((s, c));
                }
            }
        }
        pairs.sort_unstable();
        pairs.dedup();
        pairs
    }
}

/// The cores from each online CPU's `thread_siblings_list`: distinct sibling sets, sorted;
/// `None` if any list is unreadable as a CPU list.
fn cores(sibling_lists: &[String]) -> Option<Vec<Vec<usize>>> {
    let mut cores = Vec::new();
    for text in sibling_lists {
        let mut core = text.trim().parse::<CpuList>().ok()?.0;
        core.sort_unstable();
        core.dedup();
        cores.push(core);
    }
    cores.sort_unstable();
    cores.dedup();
    Some(cores)
}

/// A sysfs switch: "1" on, "0" off, anything else unknown.
fn flag(text: &str) -> Option<bool> {
    match text.trim() {
        "1" => Some(true),
        "0" => Some(false),
        _ => None,
    }
}

/// Boost from `cpufreq/boost` (1 = on) or else intel_pstate's `no_turbo` (1 = off).
fn boost(boost: Option<&str>, no_turbo: Option<&str>) -> Option<bool> {
    boost
        .and_then(flag)
        .or_else(|| no_turbo.and_then(flag).map(|off| !off))
}

/// The hypervisor from `systemd-detect-virt --vm`'s output, else `/sys/hypervisor/type`, else
/// the x86 cpuinfo `flags` (which say whether there is one, not which).
fn virtualization(
    detected: Option<&str>,
    hypervisor_type: Option<&str>,
    cpuinfo: &str,
) -> Option<String> {
    let named = |s: Option<&str>| {
        s.map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    if let Some(name) = named(detected).or_else(|| named(hypervisor_type)) {
        return Some(name);
    }
    let flags = cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "flags").then_some(value)
    })?;
    Some(if flags.split_whitespace().any(|f| f == "hypervisor") {
        "unknown hypervisor".to_owned()
    } else {
        "none".to_owned()
    })
}

impl Environment {
    /// Gathers the environment of this process.
    pub fn collect() -> Environment {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let (cpu_model, logical_cpus) = parse_cpuinfo(&cpuinfo);
        let os = ["/etc/os-release", "/usr/lib/os-release"]
            .iter()
            .filter_map(|path| std::fs::read_to_string(path).ok())
            .find_map(|text| pretty_name(&text));
        Environment {
            hostname: read_line("/proc/sys/kernel/hostname"),
            cpu_model: cpu_model.unwrap_or_else(|| UNKNOWN.to_owned()),
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            logical_cpus,
            kernel: read_line("/proc/sys/kernel/osrelease"),
            os: os.unwrap_or_else(|| UNKNOWN.to_owned()),
            rustc: env!("TLSBENCH_RUSTC").to_owned(),
            tlsbench_version: env!("CARGO_PKG_VERSION").to_owned(),
            git_revision: env!("TLSBENCH_GIT_REV").to_owned(),
            crates: parse_crates(env!("TLSBENCH_CRATES")),
            topology: Topology::collect(),
        }
    }
}

/// The first line of a small text file, or "unknown".
fn read_line(path: &str) -> String {
    std::fs::read_to_string(path)
        .ok()
        .map(|text| text.lines().next().unwrap_or_default().trim().to_owned())
        .filter(|line| !line.is_empty())
        .unwrap_or_else(|| UNKNOWN.to_owned())
}

/// The first CPU model named in `/proc/cpuinfo` text, and the number of processor entries.
fn parse_cpuinfo(text: &str) -> (Option<String>, usize) {
    let mut model = None;
    // Fallback model, for architectures without "model name" (arm64 has only some of these).
    let mut other = None;
    let mut processors = 0;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if key == "processor" {
            processors += 1;
        } else if value.is_empty() {
            continue;
        } else if key == "model name" {
            model.get_or_insert_with(|| value.to_owned());
        } else if matches!(key, "Hardware" | "Model" | "cpu model" | "uarch") {
            other.get_or_insert_with(|| value.to_owned());
        }
    }
    (model.or(other), processors)
}

/// `PRETTY_NAME` from os-release text, unquoted.
fn pretty_name(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let value = line.trim().strip_prefix("PRETTY_NAME=")?;
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        (!value.is_empty()).then(|| value.to_owned())
    })
}

/// `name=version,...` as `build.rs` writes it.
fn parse_crates(list: &str) -> BTreeMap<String, String> {
    list.split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, version)| (name.to_owned(), version.to_owned()))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn collect_finds_this_machine() {
        let env = Environment::collect();
        assert!(env.cores >= 1);
        assert!(!env.kernel.is_empty());
        assert!(!env.cpu_model.is_empty());
        assert!(!env.git_revision.is_empty());
        assert!(!env.rustc.is_empty());
        let rustls = env.crates.get("rustls").expect("rustls in Cargo.lock");
        assert!(rustls.starts_with("0.23"), "{rustls}");
        assert_eq!(env.tlsbench_version, env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn cpuinfo_model_and_processors() {
        let x86 = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n";
        assert_eq!(parse_cpuinfo(x86), (Some("AMD EPYC 7B13".to_owned()), 2));
        let arm = "processor\t: 0\nBogoMIPS\t: 50.00\nCPU part\t: 0xd0c\n\nprocessor\t: 1\n\nHardware\t: BCM2835\n";
        assert_eq!(parse_cpuinfo(arm), (Some("BCM2835".to_owned()), 2));
        assert_eq!(parse_cpuinfo(""), (None, 0));
    }

    #[test]
    fn topology_from_a_sysfs_tree() {
        let dir = std::env::temp_dir().join(format!("tlsbench-topology-{}", std::process::id()));
        let write = |path: &str, text: &str| {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        // Two cores of two hardware threads each, numbered the way x86 numbers them.
        write("online", "0-3\n");
        for (cpu, siblings) in [(0, "0,2"), (1, "1,3"), (2, "0,2"), (3, "1,3")] {
            write(&format!("cpu{cpu}/topology/thread_siblings_list"), siblings);
        }
        write("smt/active", "1\n");
        write("cpufreq/policy0/scaling_governor", "performance\n");
        write("cpufreq/policy1/scaling_governor", "powersave\n");
        write("intel_pstate/no_turbo", "1\n");
        let t = Topology::from_sysfs(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(t.online, Some(vec![0, 1, 2, 3]));
        assert_eq!(t.cores, Some(vec![vec![0, 2], vec![1, 3]]));
        assert_eq!(t.smt_active, Some(true));
        assert_eq!(t.governors["policy0"], "performance");
        assert_eq!(t.governors["policy1"], "powersave");
        assert_eq!(t.boost, Some(false));

        let list = |s: &str| s.parse::<CpuList>().unwrap();
        assert_eq!(t.siblings_between(&list("0"), &list("1")), []);
        assert_eq!(t.siblings_between(&list("0"), &list("2")), [(0, 2)]);
        assert_eq!(
            t.siblings_between(&list("0-1"), &list("2-3")),
            [(0, 2), (1, 3)]
        );
        assert_eq!(
            Topology::default().siblings_between(&list("0"), &list("2")),
            []
        );

        // Nothing readable: nothing invented.
        let empty = Topology::from_sysfs(&dir);
        assert_eq!(empty, Topology::default());
    }

    #[test]
    fn topology_parsers() {
        assert_eq!(
            cores(&["0\n".into(), "1\n".into()]),
            Some(vec![vec![0], vec![1]])
        );
        assert_eq!(cores(&["0-1".into(), "x".into()]), None);
        assert_eq!(flag("0\n"), Some(false));
        assert_eq!(flag("notsupported"), None);
        assert_eq!(boost(Some("1"), Some("1")), Some(true));
        assert_eq!(boost(None, Some("0")), Some(true));
        assert_eq!(boost(None, None), None);
        let x86 = |flags: &str| format!("processor\t: 0\nflags\t\t: fpu {flags} sse\n");
        assert_eq!(
            virtualization(Some("kvm\n"), None, "").as_deref(),
            Some("kvm")
        );
        assert_eq!(
            virtualization(Some(""), Some("xen\n"), "").as_deref(),
            Some("xen")
        );
        assert_eq!(
            virtualization(None, None, &x86("hypervisor")).as_deref(),
            Some("unknown hypervisor")
        );
        assert_eq!(
            virtualization(None, None, &x86("vmx")).as_deref(),
            Some("none")
        );
        assert_eq!(virtualization(None, None, "processor\t: 0\n"), None);
    }

    #[test]
    fn results_without_a_topology_still_load() {
        let mut old = serde_json::to_value(Environment::collect()).unwrap();
        old.as_object_mut().unwrap().remove("topology");
        let env: Environment = serde_json::from_value(old).unwrap();
        assert_eq!(env.topology, Topology::default());
    }

    #[test]
    fn os_release_pretty_name() {
        let text = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n";
        assert_eq!(
            pretty_name(text).as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(pretty_name("PRETTY_NAME=Arch\n").as_deref(), Some("Arch"));
        assert_eq!(pretty_name("NAME=x\n"), None);
    }

    #[test]
    fn crate_list_round_trip() {
        let crates = parse_crates("rustls=0.23.46,mio=1.2.5,socket2=0.5.10 0.6.5");
        assert_eq!(crates.len(), 3);
        assert_eq!(crates["socket2"], "0.5.10 0.6.5");
        assert!(parse_crates("").is_empty());
    }

    #[test]
    fn utc_timestamps() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_851_912);
        assert_eq!(utc_stamp(t), "20261128T074512Z");
        assert_eq!(utc_rfc3339(t), "2026-11-28T07:45:12Z");
        assert_eq!(utc_rfc3339(std::time::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let leap = std::time::UNIX_EPOCH + std::time::Duration::from_secs(951_782_400);
        assert_eq!(utc_rfc3339(leap), "2000-02-29T00:00:00Z");
    }
}
