//! UTC timestamps, formatted by well-kept crates rather than by calendar arithmetic of our
//! own: RFC 3339 and its compact form for results and their file names (humantime), and the
//! range of times every formatter here accepts, which the server's HTTP `Date` header (httpdate)
//! shares.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The last second humantime and httpdate can format, 9999-12-31T23:59:59Z; both panic past
/// it, as humantime does before 1970.
pub const LAST_SECOND: u64 = 253_402_300_799;

/// Whole seconds since the epoch of `t`, clamped into what the formatters accept: a clock set
/// before 1970 reads as the epoch and one past 9999 as its last second, so a wrong clock gives
/// a wrong date, never a panic.
pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .min(LAST_SECOND)
}

/// A UTC timestamp in RFC 3339: `2026-11-28T07:45:12Z`.
pub fn utc_rfc3339(t: SystemTime) -> String {
    let secs = UNIX_EPOCH + Duration::from_secs(unix_secs(t));
    humantime::format_rfc3339_seconds(secs).to_string()
}

/// A UTC timestamp for file and directory names: `20261128T074512Z` (RFC 3339 without its
/// separators, so names sort by time and hold no `:`).
pub fn utc_stamp(t: SystemTime) -> String {
    let mut stamp = utc_rfc3339(t);
    stamp.retain(|c| c != '-' && c != ':');
    stamp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_outside_the_formattable_range_is_clamped() {
        assert_eq!(unix_secs(UNIX_EPOCH), 0);
        assert_eq!(unix_secs(UNIX_EPOCH - Duration::from_secs(10)), 0);
        assert_eq!(unix_secs(UNIX_EPOCH + Duration::from_millis(1_999)), 1);
        let last = UNIX_EPOCH + Duration::from_secs(LAST_SECOND);
        assert_eq!(unix_secs(last), LAST_SECOND);
        let later = UNIX_EPOCH + Duration::from_secs(300_000_000_000);
        assert_eq!(unix_secs(later), LAST_SECOND);
        assert_eq!(utc_rfc3339(later), "9999-12-31T23:59:59Z");
        assert_eq!(utc_stamp(later), "99991231T235959Z");
        assert_eq!(
            utc_rfc3339(UNIX_EPOCH - Duration::from_secs(1)),
            "1970-01-01T00:00:00Z"
        );
    }

    #[test]
    fn sub_seconds_are_dropped() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_851_912_999);
        assert_eq!(utc_rfc3339(t), "2026-11-28T07:45:12Z");
        assert_eq!(utc_stamp(t), "20261128T074512Z");
    }
}
