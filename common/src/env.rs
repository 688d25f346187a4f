//! The environment a result was measured in: machine, kernel, OS, compiler, revision and the
//! versions of the crates doing the work, so a results file says where its numbers come from.
//!
//! Build-time facts (compiler, git revision, crate versions) are baked in by `build.rs`; the
//! rest is read from the running system. Nothing here fails: what cannot be found is
//! "unknown", because a missing hostname must not cost a benchmark run.

use std::collections::BTreeMap;

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
    /// `git rev-parse HEAD` when built, with "-dirty" if the checkout had changes; "unknown"
    /// when built outside a git checkout.
    pub git_revision: String,
    /// Versions of rustls, aws-lc-rs, aws-lc-sys, mio, hdrhistogram and socket2 from the
    /// workspace Cargo.lock when built (several, space-separated, if more than one is locked).
    pub crates: BTreeMap<String, String>,
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

/// A UTC timestamp for file and directory names: `20261128T074512Z`.
pub fn utc_stamp(t: std::time::SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil(t);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// A UTC timestamp in RFC 3339: `2026-11-28T07:45:12Z`.
pub fn utc_rfc3339(t: std::time::SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Calendar date and time of `t` in UTC (Howard Hinnant's days-to-civil algorithm).
fn civil(t: std::time::SystemTime) -> (i64, u32, u32, u32, u32, u32) {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
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
