//! What `tlsbench run` and `tlsbench soak` share around their measurements: the stop flag
//! raised by SIGINT/SIGTERM, finding the executable to start the server from, the
//! certificates, the URL a local server child is reached at, writing a JSON document, and
//! the UTC timestamps of results.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::certs::KeyType;
use loadgen::Target;
use serde::Serialize;

use crate::RunError;
use crate::child::ServerChild;

/// The last second humantime formats (9999-12-31T23:59:59Z).
const LAST_FORMATTED_SECOND: u64 = 253_402_300_799;

/// The name the generated certificates are issued for; the child is dialled by address.
const SERVER_NAME: &str = "bank32.com";

/// `RunError::Io` for `what`.
pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RunError {
    let what = what.into();
    move |source| RunError::Io { what, source }
}

/// A flag raised by the first SIGINT or SIGTERM: the run stops at the next boundary and
/// writes what it has.
pub(crate) fn stop_on_signals() -> Result<Arc<AtomicBool>, RunError> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(io_err("installing signal handlers"))?;
    }
    Ok(stop)
}

/// The tlsbench binary the server child is started from: `given`, else this executable.
pub(crate) fn server_exe(given: Option<&Path>) -> Result<PathBuf, RunError> {
    match given {
        Some(p) => Ok(p.to_path_buf()),
        None => std::env::current_exe().map_err(io_err("finding this executable")),
    }
}

/// Generates the certificates of `types` under `dir` where they are missing.
pub(crate) fn ensure_certs(dir: &Path, types: &[KeyType]) -> Result<(), RunError> {
    common::certs::ensure(dir, types)
        .map(drop)
        .map_err(|e| RunError::Server(format!("certificates: {e}")))
}

/// The URL of a local server child: the certificates' name, dialled at the child's address.
pub(crate) fn child_target(child: &ServerChild) -> Result<Target, RunError> {
    Ok(Target::new(
        &format!("https://{SERVER_NAME}:{}/", child.addr.port()),
        None,
        Some(&child.addr.to_string()),
    )?)
}

/// The URL of a peer at `addr` serving its hello page at `path`: the certificates' name,
/// dialled at the address.
pub(crate) fn local_target(addr: std::net::SocketAddr, path: &str) -> Result<Target, RunError> {
    Ok(Target::new(
        &format!("https://{SERVER_NAME}:{}{path}", addr.port()),
        None,
        Some(&addr.to_string()),
    )?)
}

/// The plain-HTTP URL of a local server child started with `--plain-listen` (a floor row).
pub(crate) fn child_plain_target(child: &ServerChild) -> Result<Target, RunError> {
    let addr = child.plain.ok_or_else(|| {
        RunError::Server("the server printed no plain listening line (--plain-listen)".into())
    })?;
    Ok(Target::new(&format!("http://{addr}/"), None, None)?)
}

/// Writes `value` as pretty JSON (with a final newline) to `path`.
pub(crate) fn write_json<T: Serialize>(value: &T, path: &Path) -> Result<(), RunError> {
    let json = serde_json::to_string_pretty(value).map_err(|e| RunError::Io {
        what: format!("encoding {}", path.display()),
        source: std::io::Error::other(e),
    })?;
    std::fs::write(path, json + "\n").map_err(io_err(format!("writing {}", path.display())))
}

/// `s` as part of a file name: ASCII letters, digits and `keep` stay, anything else becomes
/// `with`.
pub(crate) fn file_name(s: &str, keep: char, with: char) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == keep {
                c
            } else {
                with
            }
        })
        .collect()
}

/// `t` in RFC 3339 UTC to the second, as results record it: `2026-11-28T07:45:12Z`. A clock
/// outside 1970..=9999 is written as the nearest end of that range: humantime formats nothing
/// else, and a run must not panic over its timestamp.
pub(crate) fn utc_rfc3339(t: SystemTime) -> String {
    let last = UNIX_EPOCH + Duration::from_secs(LAST_FORMATTED_SECOND);
    humantime::format_rfc3339_seconds(t.clamp(UNIX_EPOCH, last)).to_string()
}

/// `t` as a UTC timestamp for file and directory names: `20261128T074512Z`.
pub(crate) fn utc_stamp(t: SystemTime) -> String {
    utc_rfc3339(t).replace(['-', ':'], "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn file_names_keep_letters_digits_and_the_one_character() {
        assert_eq!(file_name("ci-runner.local", '-', '_'), "ci-runner_local");
        assert_eq!(
            file_name("full tls1.3 / server", '.', '-'),
            "full-tls1.3---server"
        );
        assert_eq!(file_name("é", '.', '-'), "-");
    }

    #[test]
    fn timestamps_are_utc_to_the_second() {
        assert_eq!(utc_rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(utc_rfc3339(at(1_795_851_912)), "2026-11-28T07:45:12Z");
        assert_eq!(utc_stamp(at(1_795_851_912)), "20261128T074512Z");
        // Leap day, and the day after a 400-year leap century.
        assert_eq!(utc_rfc3339(at(1_709_251_199)), "2024-02-29T23:59:59Z");
        assert_eq!(utc_stamp(at(951_868_800)), "20000301T000000Z");
        // Subseconds are cut, not rounded.
        let late = at(1_709_251_199) + Duration::from_millis(999);
        assert_eq!(utc_rfc3339(late), "2024-02-29T23:59:59Z");
    }

    #[test]
    fn a_clock_out_of_range_is_written_at_its_end_of_the_range() {
        let before = UNIX_EPOCH - Duration::from_secs(86_400);
        assert_eq!(utc_rfc3339(before), "1970-01-01T00:00:00Z");
        let after = at(LAST_FORMATTED_SECOND) + Duration::from_secs(86_400);
        assert_eq!(utc_rfc3339(after), "9999-12-31T23:59:59Z");
        assert_eq!(utc_stamp(at(LAST_FORMATTED_SECOND)), "99991231T235959Z");
    }
}
