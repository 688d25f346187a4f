//! A process's resources as Linux's `/proc` shows them: fields of `/proc/<pid>/status`
//! (resident set, threads, high-water mark) and the count of open descriptors. The soak samples
//! its server with these; the resource tests read the server binary the same way.

use std::io;

/// The text of `/proc/<pid>/status` (`pid` "self" for this process).
pub fn status(pid: &str) -> io::Result<String> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
}

/// The number in field `name` of `/proc/<pid>/status` text (`VmRSS` and `VmHWM` are in KiB,
/// `Threads` a count); `None` when the field is absent.
pub fn status_field(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Open descriptors of a process: the entries of `/proc/<pid>/fd`.
pub fn fd_count(pid: &str) -> io::Result<u64> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_parse() {
        let status = "Name:\ttlsbench\nVmPeak:\t  99999 kB\nVmRSS:\t   12345 kB\nThreads:\t5\n";
        assert_eq!(status_field(status, "VmRSS"), Some(12345));
        assert_eq!(status_field(status, "Threads"), Some(5));
        assert_eq!(status_field(status, "VmHWM"), None);
        assert_eq!(status_field("", "VmRSS"), None);
    }

    #[test]
    fn this_process_can_be_sampled() {
        let me = status("self").unwrap();
        assert!(status_field(&me, "VmRSS").unwrap() > 0);
        assert!(status_field(&me, "Threads").unwrap() > 0);
        assert!(fd_count("self").unwrap() >= 3);
    }
}
