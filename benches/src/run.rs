//! The writing side of the run marker: each bench target starts or joins the run marked in
//! criterion's output directory before it measures. The marker's format, and its reader, are
//! in `bench_report::marker`, which `tlsbench bench-report` shares.
//!
//! One `cargo bench -p benches` runs four bench targets, each a child of the same cargo
//! process: the first starts a run, the others join it. A bench target started by another
//! invocation, or in another profile, starts a new run, and what earlier runs left in the
//! directory stops counting.

use std::fs;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use bench_report::marker::{self, MarkerError, Profile, RunMarker};

/// Starts or joins the run in criterion directory `dir` for this bench process in `profile`.
///
/// # Errors
///
/// [`MarkerError`] when the marker cannot be read or written: benches that went on would
/// leave their results next to a marker that names another run.
pub fn mark(dir: &Path, profile: Profile) -> Result<RunMarker, MarkerError> {
    let run = RunMarker::next(
        marker::read(dir)?,
        &invocation(),
        profile,
        SystemTime::now(),
    );
    marker::write(dir, &run)?;
    Ok(run)
}

/// This process's parent (the `cargo bench` that started it) as "PID@START". When the parent's
/// start time cannot be read, this process's own ID and the time make a run of one target: the
/// report then leaves the other targets out, loudly, rather than joining runs by a PID alone.
fn invocation() -> String {
    let parent = std::os::unix::process::parent_id();
    match fs::read_to_string(format!("/proc/{parent}/stat"))
        .ok()
        .and_then(|stat| start_ticks(&stat))
    {
        Some(start) => format!("{parent}@{start}"),
        None => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            format!("self {}@{now}", std::process::id())
        }
    }
}

/// Field 22 of `/proc/<pid>/stat` (start time, clock ticks after boot). The command name
/// (field 2) is in parentheses and may itself hold spaces and parentheses, so fields are
/// counted after the last `)`.
fn start_ticks(stat: &str) -> Option<u64> {
    let (_, after_comm) = stat.rsplit_once(')')?;
    // After the name come field 3 (state) onwards: the start time is the 20th of them.
    after_comm.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use bench_report::marker::{FILE_NAME, read};

    use super::*;

    #[test]
    fn start_time_is_read_after_the_command_name() {
        let stat = "4242 (cargo (x) y) S 1 4242 4242 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 \
                    987654 1000 100 18446744073709551615";
        assert_eq!(start_ticks(stat), Some(987_654));
        assert_eq!(start_ticks("4242 (cargo) S 1"), None);
        assert_eq!(start_ticks("no name"), None);
        let own = fs::read_to_string("/proc/self/stat").unwrap();
        assert!(start_ticks(&own).is_some(), "{own}");
        assert!(invocation().contains('@'));
    }

    #[test]
    fn marker_round_trips_and_absence_is_none() {
        let dir = std::env::temp_dir().join(format!("tlsbench-marker-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        assert_eq!(read(&dir).unwrap(), None);
        let m = mark(&dir, Profile::Quick).unwrap();
        assert_eq!(read(&dir).unwrap(), Some(m.clone()));
        // A second target of this same process's "invocation" joins the run.
        assert_eq!(mark(&dir, Profile::Quick).unwrap(), m);
        fs::write(dir.join(FILE_NAME), "{").unwrap();
        assert!(matches!(read(&dir), Err(MarkerError::Json { .. })));
        let _ = fs::remove_dir_all(&dir);
    }
}
