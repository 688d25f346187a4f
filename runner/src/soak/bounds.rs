//! The soak verdict on resources: the once-a-second samples of the server process judged
//! against stated bounds after warm-up. Pure data in, verdict out, so the rule that decides a
//! ten-minute run is tested on made-up series in milliseconds.

use serde::Serialize;

/// One sample of the server process and of the generator, taken once a second.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Sample {
    /// Seconds since the load started.
    pub t_s: f64,
    /// Server resident set (`VmRSS` of `/proc/<pid>/status`), KiB.
    pub rss_kib: u64,
    /// Server open descriptors (entries of `/proc/<pid>/fd`).
    pub fds: u64,
    /// Server threads (`Threads` of `/proc/<pid>/status`).
    pub threads: u64,
    /// The generator's own resident set (this process), KiB: a leak on the client side would
    /// otherwise pass for the server's.
    pub client_rss_kib: u64,
    /// Connections the server holds open (its `tlsbench_connections_active` gauge).
    pub connections_active: u64,
    /// Handshakes the server completed so far, all kinds.
    pub handshakes: u64,
    /// Responses the server sent so far, all statuses.
    pub requests: u64,
}

impl Sample {
    /// The CSV header matching [`Sample::csv_row`].
    pub const CSV_HEADER: &'static str =
        "t_s,rss_kib,fds,threads,client_rss_kib,connections_active,handshakes,requests";

    /// The sample as one CSV line (no newline).
    pub fn csv_row(&self) -> String {
        format!(
            "{:.1},{},{},{},{},{},{},{}",
            self.t_s,
            self.rss_kib,
            self.fds,
            self.threads,
            self.client_rss_kib,
            self.connections_active,
            self.handshakes,
            self.requests
        )
    }
}

/// What "did not grow" means, after warm-up.
///
/// The defaults (set on the command line, see `SoakArgs`) and why:
/// - RSS max ≤ RSS at the end of warm-up × 1.25 + 16 MiB. After warm-up every code path and
///   every buffer size has been used, but the allocator keeps what the busiest second needed
///   (glibc arenas are per thread and rarely shrink), so RSS follows the *peak* number of open
///   connections, not the current one: the mix and the stalled broken clients can together
///   hold about a hundred connections with full 16 KiB record buffers on both sides, a few
///   MiB; 16 MiB absorbs such a peak on a small server, 25% absorbs fragmentation that scales
///   with the heap. A leak of 1 KiB per connection exceeds it within a minute at the default
///   rates.
/// - Mean RSS of the last third of the post-warm-up window ≤ mean of the middle third + 4 MiB.
///   A plateau passes; a steady leak raises the later mean by (leak rate × a third of the
///   window): with the 10-minute defaults (three 180 s thirds) 4 MiB catches any leak above
///   about 23 KiB/s — roughly 50 bytes per operation at the default mix — that the ×1.25
///   bound would only catch after an hour.
/// - Descriptors max ≤ descriptors at the end of warm-up + the connections the mix can hold +
///   the broken-client stall cap + a slack for broken clients between connect and close: a
///   leaked descriptor per broken client (20/s) crosses that within seconds.
/// - Threads: exactly the count at the end of warm-up (the server's threads are fixed at
///   start: workers, admin, signals, main).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Bounds {
    /// RSS may reach (RSS at the end of warm-up) × this + `rss_slack_kib`.
    pub rss_factor: f64,
    /// See `rss_factor`, KiB.
    pub rss_slack_kib: u64,
    /// Mean RSS of the last third may exceed the middle third's by this much, KiB.
    pub rss_drift_kib: u64,
    /// Descriptors may exceed the count at the end of warm-up by this many.
    pub fd_headroom: u64,
}

/// One resource over the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Series {
    /// The first sample.
    pub start: u64,
    /// The last sample of the warm-up: the baseline the bounds are relative to.
    pub warmup_end: u64,
    /// The last sample.
    pub end: u64,
    /// The largest sample after warm-up.
    pub max_after_warmup: u64,
    /// The highest value allowed after warm-up (None: not bounded, e.g. the generator's RSS).
    pub limit: Option<u64>,
}

/// The resource verdict.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ResourceVerdict {
    /// No bound was crossed (and there were samples to judge).
    pub pass: bool,
    /// Each crossed bound, in words.
    pub reasons: Vec<String>,
    /// Server RSS, KiB.
    pub rss_kib: Series,
    /// Server open descriptors.
    pub fds: Series,
    /// Server threads.
    pub threads: Series,
    /// The generator's RSS, KiB (reported, not bounded).
    pub client_rss_kib: Series,
    /// Mean server RSS of the first, middle and last third of the post-warm-up samples, KiB
    /// (None with fewer than three such samples).
    pub rss_thirds_mean_kib: Option<[f64; 3]>,
    /// Last third's mean minus the middle third's, KiB.
    pub rss_drift_kib: Option<f64>,
    /// Samples judged (after warm-up).
    pub samples_after_warmup: usize,
}

fn mib(kib: f64) -> String {
    format!("{:.1} MiB", kib / 1024.0)
}

fn series(samples: &[Sample], base: &Sample, after: &[Sample], f: fn(&Sample) -> u64) -> Series {
    Series {
        start: samples.first().map_or(0, f),
        warmup_end: f(base),
        end: samples.last().map_or(0, f),
        max_after_warmup: after.iter().map(f).max().unwrap_or(0),
        limit: None,
    }
}

fn mean(s: &[Sample]) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    s.iter().map(|x| x.rss_kib as f64).sum::<f64>() / s.len() as f64
}

/// Judges `samples` (in time order) against `b`: the baseline is the last sample taken at or
/// before `warmup_s`, and every later sample is held to the bounds.
pub fn evaluate(samples: &[Sample], warmup_s: f64, b: &Bounds) -> ResourceVerdict {
    let split = samples.partition_point(|s| s.t_s <= warmup_s);
    let Some(base) = samples[..split].last().or(samples.first()).copied() else {
        return ResourceVerdict {
            reasons: vec!["no samples".into()],
            ..ResourceVerdict::default()
        };
    };
    let after = &samples[split..];
    let mut v = ResourceVerdict {
        rss_kib: series(samples, &base, after, |s| s.rss_kib),
        fds: series(samples, &base, after, |s| s.fds),
        threads: series(samples, &base, after, |s| s.threads),
        client_rss_kib: series(samples, &base, after, |s| s.client_rss_kib),
        samples_after_warmup: after.len(),
        ..ResourceVerdict::default()
    };
    if after.is_empty() {
        v.reasons
            .push(format!("no samples after the {warmup_s:.0} s warm-up"));
        return v;
    }

    let rss_limit = (base.rss_kib as f64 * b.rss_factor).ceil() as u64 + b.rss_slack_kib;
    v.rss_kib.limit = Some(rss_limit);
    if let Some(s) = after.iter().find(|s| s.rss_kib > rss_limit) {
        v.reasons.push(format!(
            "server RSS reached {} at t={:.0} s, above the bound {} (warm-up end {} × {} + {})",
            mib(s.rss_kib as f64),
            s.t_s,
            mib(rss_limit as f64),
            mib(base.rss_kib as f64),
            b.rss_factor,
            mib(b.rss_slack_kib as f64)
        ));
    }

    let fd_limit = base.fds + b.fd_headroom;
    v.fds.limit = Some(fd_limit);
    if let Some(s) = after.iter().find(|s| s.fds > fd_limit) {
        v.reasons.push(format!(
            "server descriptors reached {} at t={:.0} s, above the bound {fd_limit} (warm-up end {} + {})",
            s.fds, s.t_s, base.fds, b.fd_headroom
        ));
    }

    v.threads.limit = Some(base.threads);
    if let Some(s) = after.iter().find(|s| s.threads != base.threads) {
        v.reasons.push(format!(
            "server threads changed from {} to {} at t={:.0} s (they must stay constant)",
            base.threads, s.threads, s.t_s
        ));
    }

    let n = after.len();
    if n >= 3 {
        let thirds = [
            mean(&after[..n / 3]),
            mean(&after[n / 3..2 * n / 3]),
            mean(&after[2 * n / 3..]),
        ];
        let drift = thirds[2] - thirds[1];
        v.rss_thirds_mean_kib = Some(thirds);
        v.rss_drift_kib = Some(drift);
        if drift > b.rss_drift_kib as f64 {
            v.reasons.push(format!(
                "server RSS still growing: the last third's mean {} exceeds the middle third's {} by {}, more than {}",
                mib(thirds[2]),
                mib(thirds[1]),
                mib(drift),
                mib(b.rss_drift_kib as f64)
            ));
        }
    } else {
        v.reasons.push(format!(
            "only {n} samples after warm-up: growth needs at least 3 to judge"
        ));
    }
    v.pass = v.reasons.is_empty();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Bounds = Bounds {
        rss_factor: 1.25,
        rss_slack_kib: 16 * 1024,
        rss_drift_kib: 4 * 1024,
        fd_headroom: 100,
    };

    /// 600 one-second samples: `rss(t)` KiB, 40 descriptors, 5 threads.
    fn run_of(rss: impl Fn(f64) -> f64) -> Vec<Sample> {
        (0..600)
            .map(|i| {
                let t = f64::from(i);
                Sample {
                    t_s: t,
                    rss_kib: rss(t) as u64,
                    fds: 40,
                    threads: 5,
                    client_rss_kib: 30_000,
                    ..Sample::default()
                }
            })
            .collect()
    }

    #[test]
    fn a_flat_series_with_noise_and_a_warmup_ramp_passes() {
        // Ramps up during the 60 s warm-up, then wobbles ±1 MiB around a plateau.
        let s = run_of(|t| {
            if t < 60.0 {
                10_000.0 + t * 200.0
            } else {
                22_000.0 + 1024.0 * (t / 7.0).sin()
            }
        });
        let v = evaluate(&s, 60.0, &B);
        assert!(v.pass, "{:?}", v.reasons);
        assert_eq!(v.samples_after_warmup, 539);
        assert_eq!(v.rss_kib.start, 10_000);
        assert_eq!(v.threads.limit, Some(5));
        assert_eq!(v.fds.limit, Some(140));
        assert!(v.rss_drift_kib.is_some_and(|d| d.abs() < 1024.0));
    }

    #[test]
    fn a_slow_steady_leak_fails_on_growth_before_the_ratio_bound() {
        // 40 KiB/s: +21 MiB over the window, under 22 MiB × 1.25 + 16 MiB, yet growing.
        let s = run_of(|t| 22_000.0 + 40.0 * (t - 60.0).max(0.0));
        let v = evaluate(&s, 60.0, &B);
        assert!(!v.pass);
        assert_eq!(v.reasons.len(), 1, "{:?}", v.reasons);
        assert!(v.reasons[0].contains("still growing"), "{:?}", v.reasons);
    }

    #[test]
    fn a_fast_leak_crosses_the_ratio_bound() {
        let s = run_of(|t| 22_000.0 + 200.0 * (t - 60.0).max(0.0));
        let v = evaluate(&s, 60.0, &B);
        assert!(!v.pass);
        assert!(
            v.reasons.iter().any(|r| r.contains("above the bound")),
            "{:?}",
            v.reasons
        );
        assert!(v.rss_kib.max_after_warmup > v.rss_kib.limit.unwrap_or(0));
    }

    #[test]
    fn descriptor_leaks_and_thread_changes_fail() {
        let mut s = run_of(|_| 22_000.0);
        for x in s.iter_mut().filter(|x| x.t_s > 300.0) {
            x.fds = 40 + (x.t_s as u64 - 300);
        }
        s[400].threads = 6;
        let v = evaluate(&s, 60.0, &B);
        assert!(!v.pass);
        assert!(
            v.reasons
                .iter()
                .any(|r| r.contains("descriptors reached 141")),
            "{:?}",
            v.reasons
        );
        assert!(
            v.reasons
                .iter()
                .any(|r| r.contains("threads changed from 5 to 6")),
            "{:?}",
            v.reasons
        );
    }

    #[test]
    fn too_few_samples_cannot_pass() {
        let s = run_of(|_| 22_000.0);
        assert!(!evaluate(&s[..61], 60.0, &B).pass, "nothing after warm-up");
        assert!(!evaluate(&s[..63], 60.0, &B).pass, "two after warm-up");
        assert!(evaluate(&s[..64], 60.0, &B).pass, "three after warm-up");
        assert!(!evaluate(&[], 60.0, &B).pass);
    }
}
