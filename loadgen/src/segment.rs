//! Segments: `--segment i/N` runs the i-th of N equal parts of a load (connections, `--rate`
//! and `-n` split so the parts sum to the whole), with defaults from an orchestrator's
//! environment, and `--start-at`, the shared wall-clock start that lets N processes begin
//! together without a coordinator.

use std::str::FromStr;
use std::time::{Duration, SystemTime};

/// Kubernetes Indexed Jobs give each pod its index (0-based) in this variable.
pub const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// The number of segments when `--segment` is not given.
pub const COUNT_ENV: &str = "TLSBENCH_SEGMENTS";

/// A start this far in the past is still taken as "now": processes launched together
/// reach the check a little apart.
pub const START_AT_SLACK: Duration = Duration::from_secs(1);

/// Why a segment or a start time is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SegmentError {
    /// `--segment` or an environment variable does not read as a segment.
    #[error("{source_name}: {reason}")]
    Invalid {
        /// The flag or variable the value came from.
        source_name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The index is known but the count is not.
    #[error(
        "{INDEX_ENV} is set ({index}) but {COUNT_ENV} is not: the number of segments must be given (--segment {index}/N or {COUNT_ENV}=N)"
    )]
    IndexWithoutCount {
        /// The index read from the environment.
        index: String,
    },
    /// The count is known but the index is not.
    #[error(
        "{COUNT_ENV} is set ({count}) but {INDEX_ENV} is not: which segment this is must be given (--segment i/{count} or {INDEX_ENV}=i)"
    )]
    CountWithoutIndex {
        /// The count read from the environment.
        count: String,
    },
    /// A segment would get nothing of a quantity.
    #[error("segment {segment}: {what} {total} cannot be split into {count} non-empty parts")]
    TooSmall {
        /// The segment.
        segment: Segment,
        /// The quantity (`--connections`, `-n`).
        what: &'static str,
        /// Its total.
        total: u64,
        /// The number of parts.
        count: u32,
    },
    /// `--start-at` lies in the past by more than [`START_AT_SLACK`].
    #[error(
        "--start-at {at} was {ago:?} ago (more than {START_AT_SLACK:?}): start the processes with a later time"
    )]
    StartInPast {
        /// The time as given.
        at: String,
        /// How long ago it was.
        ago: Duration,
    },
    /// `--start-at` lies further ahead than `--start-at-max-wait`.
    #[error("--start-at {at} is {wait:?} away, beyond --start-at-max-wait {max:?}")]
    StartTooFar {
        /// The time as given.
        at: String,
        /// The wait it would take.
        wait: Duration,
        /// The bound.
        max: Duration,
    },
}

/// The i-th (0-based, as `JOB_COMPLETION_INDEX`) of N equal parts of a load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Segment {
    /// Which part, 0..count.
    pub index: u32,
    /// How many parts.
    pub count: u32,
}

impl std::fmt::Display for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Segment {
    /// `index` of `count`, refused (naming `source_name`) unless `index < count`.
    pub fn new(index: u32, count: u32, source_name: &str) -> Result<Segment, SegmentError> {
        if count == 0 || index >= count {
            return Err(SegmentError::Invalid {
                source_name: source_name.into(),
                reason: format!(
                    "segment {index} of {count}: the index must be below the count (indexes start at 0)"
                ),
            });
        }
        Ok(Segment { index, count })
    }

    /// This segment's part of an integer total: `total / N`, one more for the first
    /// `total % N` segments, so the parts sum to `total`.
    pub fn share(&self, total: u64) -> u64 {
        let n = u64::from(self.count);
        total / n + u64::from(u64::from(self.index) < total % n)
    }

    /// [`Segment::share`], refused when this segment's part would be empty.
    pub fn nonzero_share(&self, total: u64, what: &'static str) -> Result<u64, SegmentError> {
        match self.share(total) {
            0 => Err(SegmentError::TooSmall {
                segment: *self,
                what,
                total,
                count: self.count,
            }),
            s => Ok(s),
        }
    }

    /// This segment's part of a rate: exact division.
    pub fn rate(&self, total: f64) -> f64 {
        total / f64::from(self.count)
    }

    /// The segment a process runs: `--segment` when given, else from [`INDEX_ENV`] and
    /// [`COUNT_ENV`] read through `env`; none when neither is set.
    pub fn resolve(
        flag: Option<Segment>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Segment>, SegmentError> {
        if flag.is_some() {
            return Ok(flag);
        }
        let number = |name: &str, v: &str| {
            v.trim().parse::<u32>().map_err(|e| SegmentError::Invalid {
                source_name: name.into(),
                reason: format!("{v:?}: {e}"),
            })
        };
        match (env(INDEX_ENV), env(COUNT_ENV)) {
            (None, None) => Ok(None),
            (Some(index), None) => Err(SegmentError::IndexWithoutCount { index }),
            (None, Some(count)) => Err(SegmentError::CountWithoutIndex { count }),
            (Some(i), Some(n)) => Segment::new(
                number(INDEX_ENV, &i)?,
                number(COUNT_ENV, &n)?,
                &format!("{INDEX_ENV}={i}, {COUNT_ENV}={n}"),
            )
            .map(Some),
        }
    }
}

impl FromStr for Segment {
    type Err = SegmentError;

    /// `i/N`.
    fn from_str(s: &str) -> Result<Segment, SegmentError> {
        let invalid = |reason: String| SegmentError::Invalid {
            source_name: "--segment".into(),
            reason,
        };
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| invalid(format!("{s:?}: expected i/N, e.g. 0/4")))?;
        let num = |v: &str| {
            v.trim()
                .parse::<u32>()
                .map_err(|e| invalid(format!("{s:?}: {v:?}: {e}")))
        };
        Segment::new(num(i)?, num(n)?, "--segment")
    }
}

/// `--start-at`: an RFC 3339 UTC time (`2026-12-01T05:00:00Z`), kept with its text for
/// messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartAt {
    /// The wall-clock time.
    pub at: SystemTime,
    /// As given.
    pub text: String,
}

impl FromStr for StartAt {
    type Err = String;

    fn from_str(s: &str) -> Result<StartAt, String> {
        humantime::parse_rfc3339(s.trim())
            .map(|at| StartAt {
                at,
                text: s.trim().to_owned(),
            })
            .map_err(|e| format!("{s:?}: {e} (expected RFC 3339 UTC, e.g. 2026-12-01T05:00:00Z)"))
    }
}

impl StartAt {
    /// How long to wait from `now`: refused when the time is more than [`START_AT_SLACK`]
    /// past or more than `max` ahead.
    pub fn wait_from(&self, now: SystemTime, max: Duration) -> Result<Duration, SegmentError> {
        match self.at.duration_since(now) {
            Ok(wait) if wait > max => Err(SegmentError::StartTooFar {
                at: self.text.clone(),
                wait,
                max,
            }),
            Ok(wait) => Ok(wait),
            Err(past) if past.duration() > START_AT_SLACK => Err(SegmentError::StartInPast {
                at: self.text.clone(),
                ago: past.duration(),
            }),
            Err(_) => Ok(Duration::ZERO),
        }
    }

    /// Blocks until the wall clock reaches the time (checked against `max` first). Sleeps in
    /// short steps read against the wall clock, as the other processes waiting for the same
    /// time do, so a clock slewed by NTP while waiting moves them all alike; the steps are
    /// bounded by the checked wait.
    pub fn wait(&self, max: Duration) -> Result<(), SegmentError> {
        let first = self.wait_from(SystemTime::now(), max)?;
        let step = Duration::from_millis(50);
        // Bounded: enough steps for the checked wait, plus slack for oversleeping.
        for _ in 0..=(first.as_millis() / step.as_millis() + 2) {
            match self.at.duration_since(SystemTime::now()) {
                Ok(left) if !left.is_zero() => std::thread::sleep(left.min(step)),
                _ => return Ok(()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn all(count: u32) -> impl Iterator<Item = Segment> {
        (0..count).map(move |index| Segment { index, count })
    }

    #[test]
    fn integer_parts_sum_to_the_whole_with_the_remainder_first() {
        for (total, count) in [(10u64, 3u32), (7, 2), (1001, 7), (5, 5), (13, 1), (100, 4)] {
            let parts: Vec<u64> = all(count).map(|s| s.share(total)).collect();
            assert_eq!(parts.iter().sum::<u64>(), total, "{total} in {count}");
            let big = total / u64::from(count) + 1;
            let rem = (total % u64::from(count)) as usize;
            for (i, p) in parts.iter().enumerate() {
                assert_eq!(*p, if i < rem { big } else { big - 1 }, "{total}/{count}");
            }
        }
        // Odd connections over two processes: 5 = 3 + 2.
        assert_eq!(all(2).map(|s| s.share(5)).collect::<Vec<_>>(), vec![3, 2]);
    }

    #[test]
    fn rates_divide_exactly_and_sum_to_the_whole() {
        let parts: Vec<f64> = all(3).map(|s| s.rate(1000.0)).collect();
        assert_eq!(parts[0], 1000.0 / 3.0);
        assert!(
            (parts.iter().sum::<f64>() - 1000.0).abs() < 1e-9,
            "{parts:?}"
        );
    }

    #[test]
    fn an_empty_part_is_refused_naming_the_quantity() {
        let s = Segment { index: 3, count: 4 };
        let err = s.nonzero_share(3, "--connections").unwrap_err().to_string();
        assert!(
            err.contains("--connections 3") && err.contains("4"),
            "{err}"
        );
        assert_eq!(Segment { index: 2, count: 4 }.nonzero_share(3, "-n"), Ok(1));
    }

    #[test]
    fn the_flag_reads_i_of_n_and_refuses_an_index_out_of_range() {
        assert_eq!("1/3".parse(), Ok(Segment { index: 1, count: 3 }));
        for bad in ["3/3", "0/0", "1", "a/2", "1/-2"] {
            let err = bad.parse::<Segment>().unwrap_err().to_string();
            assert!(err.starts_with("--segment"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_environment_gives_the_default_and_the_flag_wins() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let both = env(&[(INDEX_ENV, "2"), (COUNT_ENV, "4")]);
        assert_eq!(
            Segment::resolve(None, both),
            Ok(Some(Segment { index: 2, count: 4 }))
        );
        let flag = Segment { index: 0, count: 2 };
        assert_eq!(Segment::resolve(Some(flag), both), Ok(Some(flag)));
        assert_eq!(Segment::resolve(None, env(&[])), Ok(None));
        let err = Segment::resolve(None, env(&[(INDEX_ENV, "2")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(COUNT_ENV) && err.contains(INDEX_ENV), "{err}");
        let err = Segment::resolve(None, env(&[(COUNT_ENV, "2")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("JOB_COMPLETION_INDEX is not"), "{err}");
        let err = Segment::resolve(None, env(&[(INDEX_ENV, "4"), (COUNT_ENV, "4")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("JOB_COMPLETION_INDEX=4"), "{err}");
        let err = Segment::resolve(None, env(&[(INDEX_ENV, "x"), (COUNT_ENV, "4")]))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(INDEX_ENV), "{err}");
    }

    #[test]
    fn start_at_refuses_the_past_and_a_wait_beyond_the_bound() {
        let start: StartAt = "2026-12-01T05:00:00Z".parse().unwrap();
        let max = Duration::from_secs(600);
        let at = start.at;
        // Future: wait the difference.
        assert_eq!(
            start.wait_from(at - Duration::from_secs(3), max),
            Ok(Duration::from_secs(3))
        );
        // Just past (within the slack): start now.
        assert_eq!(
            start.wait_from(at + Duration::from_millis(500), max),
            Ok(Duration::ZERO)
        );
        // Past by more than the slack.
        let err = start
            .wait_from(at + Duration::from_secs(2), max)
            .unwrap_err();
        assert!(
            matches!(err, SegmentError::StartInPast { ago, .. } if ago == Duration::from_secs(2)),
            "{err}"
        );
        // Beyond the bound.
        let err = start
            .wait_from(at - Duration::from_secs(601), max)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--start-at-max-wait"), "{err}");
        assert!("tomorrow".parse::<StartAt>().is_err());
    }

    #[test]
    fn waiting_for_a_time_just_ahead_returns_once_it_has_passed() {
        let at = SystemTime::now() + Duration::from_millis(120);
        let start = StartAt {
            at,
            text: "soon".into(),
        };
        start.wait(Duration::from_secs(5)).unwrap();
        assert!(SystemTime::now() >= at);
    }
}
