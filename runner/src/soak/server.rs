//! What the soak reads of its server child (and of itself) from `/proc`: resident set, threads
//! and descriptors. Its counters come from [`crate::child::ServerChild::metrics`].

/// Resident set (KiB) and threads of a process, from `/proc/<pid>/status` ("self" for this
/// process).
pub fn status(pid: &str) -> std::io::Result<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    Ok(parse_status(&text))
}

/// `VmRSS` (KiB) and `Threads` of `/proc/<pid>/status` text; 0 when missing.
pub fn parse_status(text: &str) -> (u64, u64) {
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("Threads:"))
}

/// Open descriptors of a process: the entries of `/proc/<pid>/fd`.
pub fn fd_count(pid: &str) -> std::io::Result<u64> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::child::{metric_sum, parse_metrics};

    #[test]
    fn status_and_metrics_parse() {
        let status = "Name:\ttlsbench\nVmPeak:\t  99999 kB\nVmRSS:\t   12345 kB\nThreads:\t5\n";
        assert_eq!(parse_status(status), (12345, 5));
        assert_eq!(parse_status(""), (0, 0));

        let m = parse_metrics(
            "# HELP x\ntlsbench_handshake_failures_total{cause=\"eof\"} 3\n\
             tlsbench_handshake_failures_total{cause=\"timeout\"} 4\n\
             tlsbench_handshake_failures_totalish 100\ntlsbench_connections_active 7\nbad line\n",
        );
        assert_eq!(metric_sum(&m, "tlsbench_handshake_failures_total"), 7);
        assert_eq!(metric_sum(&m, "tlsbench_connections_active"), 7);
        assert_eq!(
            m.get("tlsbench_handshake_failures_total{cause=\"eof\"}"),
            Some(&3.0)
        );
    }

    #[test]
    fn this_process_can_be_sampled() {
        let (rss, threads) = status("self").unwrap_or_default();
        assert!(rss > 0 && threads > 0);
        assert!(fd_count("self").unwrap_or_default() >= 3);
    }
}
