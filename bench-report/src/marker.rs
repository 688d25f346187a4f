//! The run marker's format: which bench run criterion's output directory holds. Criterion's
//! files carry no run ID, so every bench target writes `tlsbench-run.json` next to them when it
//! starts (the profile, its sample size, the start time and the `cargo bench` invocation; the
//! writing side is `benches::run`), and `tlsbench bench-report` keeps only the measurements
//! that run wrote.
//!
//! One `cargo bench -p benches` runs four bench targets, each a child of the same cargo
//! process: the first starts a run, the others join it. A bench target started by another
//! invocation, or in another profile, starts a new run, and what earlier runs left in the
//! directory stops counting.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The marker's file name in criterion's output directory.
pub const FILE_NAME: &str = "tlsbench-run.json";

/// The environment variable selecting the quick profile when set to `1`.
pub const QUICK_ENV: &str = "TLSBENCH_BENCH_QUICK";

/// The bench profile: how long and how many samples each bench measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// Warm-up 1 s, measurement 3 s, 30 samples per bench.
    Full,
    /// Warm-up 0.2 s, measurement 0.4 s, 10 samples: noisier, for CI and smoke runs.
    Quick,
}

impl Profile {
    /// The profile `TLSBENCH_BENCH_QUICK` selects: `1` quick, unset or `0` full.
    ///
    /// # Errors
    ///
    /// [`MarkerError::Profile`] for any other value, which would otherwise pick a profile
    /// silently.
    pub fn from_env() -> Result<Profile, MarkerError> {
        Profile::from_value(std::env::var_os(QUICK_ENV).as_deref())
    }

    /// The profile a value of `TLSBENCH_BENCH_QUICK` selects (`None`: unset).
    fn from_value(value: Option<&std::ffi::OsStr>) -> Result<Profile, MarkerError> {
        match value {
            None => Ok(Profile::Full),
            Some(v) if v == "0" => Ok(Profile::Full),
            Some(v) if v == "1" => Ok(Profile::Quick),
            Some(v) => Err(MarkerError::Profile(v.to_string_lossy().into_owned())),
        }
    }

    /// `(warm-up time, measurement time, sample size)` per bench.
    pub fn timing(self) -> (Duration, Duration, usize) {
        match self {
            Profile::Full => (Duration::from_secs(1), Duration::from_secs(3), 30),
            Profile::Quick => (Duration::from_millis(200), Duration::from_millis(400), 10),
        }
    }

    /// Samples per bench: what a measurement's `sample.json` holds when this profile made it.
    pub fn sample_size(self) -> usize {
        self.timing().2
    }

    /// "full" or "quick".
    pub fn name(self) -> &'static str {
        match self {
            Profile::Full => "full",
            Profile::Quick => "quick",
        }
    }
}

/// Errors of selecting the profile and of reading or writing the marker.
#[derive(Debug, thiserror::Error)]
pub enum MarkerError {
    /// `TLSBENCH_BENCH_QUICK` holds something other than `1` or `0`.
    #[error("{QUICK_ENV}={0:?}: set it to 1 (quick profile) or 0 / unset (full profile)")]
    Profile(String),
    /// The marker could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The marker file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The marker is not a run marker.
    #[error("{}: {source}", path.display())]
    Json {
        /// The marker file.
        path: PathBuf,
        /// The underlying error.
        source: serde_json::Error,
    },
}

/// What `tlsbench-run.json` holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunMarker {
    /// The `cargo bench` process the bench targets are children of, as "PID@START" (START its
    /// start time in clock ticks after boot, so a reused PID is another invocation).
    pub invocation: String,
    /// The profile every bench of the run measured with.
    pub profile: Profile,
    /// When the run's first bench target started, ms since the Unix epoch. Every measurement
    /// of the run is written after it (at least a warm-up later).
    pub started_unix_ms: u64,
}

impl RunMarker {
    /// When the run started.
    pub fn started(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.started_unix_ms)
    }

    /// The marker a bench target starting at `now` leaves: `existing` when it is the same
    /// invocation in the same profile (a later target of one `cargo bench`), else a new run.
    pub fn next(
        existing: Option<RunMarker>,
        invocation: &str,
        profile: Profile,
        now: SystemTime,
    ) -> RunMarker {
        match existing {
            Some(m) if m.invocation == invocation && m.profile == profile => m,
            _ => RunMarker {
                invocation: invocation.to_owned(),
                profile,
                started_unix_ms: now
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            },
        }
    }
}

/// The marker in criterion directory `dir`; `None` when there is none.
///
/// # Errors
///
/// [`MarkerError`] when the file exists but cannot be read or parsed.
pub fn read(dir: &Path) -> Result<Option<RunMarker>, MarkerError> {
    let path = dir.join(FILE_NAME);
    let text = match fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(MarkerError::Io { path, source }),
    };
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|source| MarkerError::Json { path, source })
}

/// Writes `marker` into criterion directory `dir` (created if needed).
///
/// # Errors
///
/// [`MarkerError::Io`] when the directory or the file cannot be written.
pub fn write(dir: &Path, marker: &RunMarker) -> Result<(), MarkerError> {
    let path = dir.join(FILE_NAME);
    let io_err = |source| MarkerError::Io {
        path: path.clone(),
        source,
    };
    fs::create_dir_all(dir).map_err(io_err)?;
    let text = serde_json::to_vec_pretty(marker).map_err(|source| MarkerError::Json {
        path: path.clone(),
        source,
    })?;
    fs::write(&path, text).map_err(io_err)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_later_target_of_one_invocation_joins_its_run() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000);
        let t1 = t0 + Duration::from_secs(60);
        let first = RunMarker::next(None, "100@5", Profile::Quick, t0);
        assert_eq!(first.started(), t0);
        let joined = RunMarker::next(Some(first.clone()), "100@5", Profile::Quick, t1);
        assert_eq!(joined, first);
        // Another cargo invocation, even with the same PID, starts a new run.
        let other = RunMarker::next(Some(first.clone()), "100@9", Profile::Quick, t1);
        assert_eq!(other.started(), t1);
        assert_eq!(other.invocation, "100@9");
        // So does the same invocation in another profile.
        let full = RunMarker::next(Some(first), "100@5", Profile::Full, t1);
        assert_eq!((full.started(), full.profile), (t1, Profile::Full));
    }

    #[test]
    fn only_1_and_0_select_a_profile() {
        use std::ffi::OsStr;
        assert_eq!(Profile::from_value(None).unwrap(), Profile::Full);
        assert_eq!(
            Profile::from_value(Some(OsStr::new("0"))).unwrap(),
            Profile::Full
        );
        assert_eq!(
            Profile::from_value(Some(OsStr::new("1"))).unwrap(),
            Profile::Quick
        );
        let err = Profile::from_value(Some(OsStr::new("yes"))).unwrap_err();
        assert!(
            err.to_string().contains("TLSBENCH_BENCH_QUICK=\"yes\""),
            "{err}"
        );
    }

    #[test]
    fn profiles_and_their_sample_sizes() {
        assert_eq!(Profile::Full.sample_size(), 30);
        assert_eq!(Profile::Quick.sample_size(), 10);
        assert_eq!(serde_json::to_string(&Profile::Quick).unwrap(), "\"quick\"");
    }
}
