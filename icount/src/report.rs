//! `instructions.json`: the document `tlsbench icount` writes and `tlsbench compare --metric
//! instructions` reads — instructions per row (the interquartile mean over iterations, with
//! each iteration's count), and the conditions the counts depend on.
//!
//! Why not the median: with random ECDSA nonces a handshake side's count falls into two modes
//! about 0.5% apart (measured: 1 141 5xx or 1 147 5xx for the TLS 1.3 ECDSA server), so the
//! median of a few iterations flips between them from run to run. The mean of the middle half
//! averages over the modes and still drops outliers.
//!
//! Counts are only comparable when taken under the same conditions: the CPU features the
//! measured process saw (aws-lc picks its code paths by them, and under valgrind they are
//! valgrind's emulated CPUID, not the host's), the valgrind version and the build profile.
//! [`Report::conditions`] lists them; compare refuses reports whose conditions differ.

use serde::{Deserialize, Serialize};

/// Version of the document; bump on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// The file name inside `--out`.
pub const FILE_NAME: &str = "instructions.json";

/// One row: a side of a handshake or a record operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Scenario name and side, e.g. "full tls1.3 x25519 rsa2048 / server".
    pub name: String,
    /// Instructions per iteration: the mean of the middle half of the iterations
    /// (interquartile mean; all of them when fewer than four).
    pub instructions: f64,
    /// Fewest instructions of an iteration.
    pub min: u64,
    /// Most instructions of an iteration.
    pub max: u64,
    /// Every counted iteration, in order (what the median is over).
    pub iterations: Vec<u64>,
}

impl Row {
    /// The row of `counts` (None when there is no count: a row is never made up).
    pub fn of(name: &str, counts: &[u64]) -> Option<Row> {
        let mut sorted = counts.to_vec();
        sorted.sort_unstable();
        let (&min, &max) = (sorted.first()?, sorted.last()?);
        let cut = sorted.len() / 4;
        let middle = &sorted[cut..sorted.len() - cut];
        let mean = middle.iter().map(|&c| c as f64).sum::<f64>() / middle.len() as f64;
        Some(Row {
            name: name.to_owned(),
            instructions: mean,
            min,
            max,
            iterations: counts.to_vec(),
        })
    }
}

/// The whole document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// "tlsbench icount".
    pub tool: String,
    /// When the count started, UTC, RFC 3339.
    pub started_utc: String,
    /// Counted iterations per row.
    pub iterations: u32,
    /// "release" or "debug": what was counted is the code this profile compiled.
    pub profile: String,
    /// `valgrind --version`.
    pub valgrind: String,
    /// CPU features as the measured process detected them (under valgrind), sorted.
    pub cpu_features: Vec<String>,
    /// Where it ran (host, compiler, git revision, crate versions).
    pub environment: common::env::Environment,
    /// One per row, in report order.
    pub rows: Vec<Row>,
}

impl Report {
    /// What the counts depend on, as (what, value) pairs: two reports are compared only when
    /// these are equal.
    pub fn conditions(&self) -> [(&'static str, String); 3] {
        [
            ("CPU features", self.cpu_features.join(" ")),
            ("valgrind", self.valgrind.clone()),
            ("profile", self.profile.clone()),
        ]
    }
}

/// The profile this crate was compiled in.
pub fn profile() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

/// The CPU features this process detects, among those aws-lc dispatches on.
pub fn cpu_features() -> Vec<String> {
    let mut found: Vec<String> = detected().into_iter().map(str::to_owned).collect();
    found.sort_unstable();
    found
}

#[cfg(target_arch = "x86_64")]
fn detected() -> Vec<&'static str> {
    macro_rules! features {
        ($($f:tt),*) => {{
            let mut v = Vec::new();
            $(if std::arch::is_x86_feature_detected!($f) { v.push($f); })*
            v
        }};
    }
    features!(
        "aes",
        "pclmulqdq",
        "sse2",
        "ssse3",
        "sse4.1",
        "avx",
        "avx2",
        "bmi1",
        "bmi2",
        "adx",
        "sha",
        "movbe",
        "vaes",
        "vpclmulqdq",
        "avx512f",
        "avx512bw",
        "avx512vl",
        "avx512ifma"
    )
}

#[cfg(target_arch = "aarch64")]
fn detected() -> Vec<&'static str> {
    macro_rules! features {
        ($($f:tt),*) => {{
            let mut v = Vec::new();
            $(if std::arch::is_aarch64_feature_detected!($f) { v.push($f); })*
            v
        }};
    }
    features!("neon", "aes", "pmull", "sha2", "sha3", "sve", "sve2")
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn detected() -> Vec<&'static str> {
    // No detection here: the architecture itself then tells reports apart.
    vec![std::env::consts::ARCH]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn interquartile_mean_and_range_of_iterations() {
        let r = Row::of("x", &[30, 10, 20]).unwrap();
        assert_eq!((r.instructions, r.min, r.max), (20.0, 10, 30));
        assert_eq!(r.iterations, [30, 10, 20]);
        assert_eq!(Row::of("x", &[10, 40]).unwrap().instructions, 25.0);
        // Two modes: the mean of the middle half lies between them, outliers either side are dropped.
        let two_modes = [100, 200, 100, 200, 1, 100, 200, 100, 200, 9999];
        assert_eq!(Row::of("x", &two_modes).unwrap().instructions, 150.0);
        assert_eq!(Row::of("x", &[]), None);
    }

    #[test]
    fn features_are_sorted_and_not_empty_on_known_arches() {
        let f = cpu_features();
        let mut sorted = f.clone();
        sorted.sort_unstable();
        assert_eq!(f, sorted);
        if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
            // sse2 and neon are part of these architectures' baselines.
            assert!(f.iter().any(|x| x == "sse2" || x == "neon"), "{f:?}");
        }
    }
}
