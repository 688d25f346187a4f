//! The soak's sampling: once a second, the server's resident set, descriptors and threads
//! from `/proc`, its admin counters and the generator's own resident set, into samples.csv.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::procfs;

use super::bounds::Sample;
use crate::child::ServerChild;

/// One sample; counters that cannot be read fail it like an unreadable `/proc`.
fn take_sample(server: &ServerChild, t_s: f64) -> std::io::Result<Sample> {
    let m = server.metrics().map_err(std::io::Error::other)?;
    let pid = server.pid.to_string();
    let status = procfs::status(&pid)?;
    let field = |name| procfs::status_field(&status, name).unwrap_or(0);
    let (rss_kib, threads) = (field("VmRSS"), field("Threads"));
    let fds = procfs::fd_count(&pid)?;
    let client_rss_kib = procfs::status("self")
        .ok()
        .and_then(|me| procfs::status_field(&me, "VmRSS"))
        .unwrap_or(0);
    Ok(Sample {
        t_s,
        rss_kib,
        fds,
        threads,
        client_rss_kib,
        connections_active: m.active(),
        handshakes: m.handshakes_total(),
        requests: m.requests_total(),
    })
}

pub(crate) fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Sleeps until `t` unless `stop` is raised first.
fn sleep_until(t: Instant, stop: &AtomicBool) {
    loop {
        let now = Instant::now();
        if now >= t || stop.load(Ordering::Acquire) {
            return;
        }
        std::thread::sleep(t.duration_since(now).min(Duration::from_millis(100)));
    }
}

/// Samples `server` at whole seconds from `t0` until `duration` is over or `stop` is raised,
/// writing each to `csv` and a progress line every `progress_every` seconds (and at the end
/// of `warmup`). Returns the samples and why sampling stopped early, if it did (then `stop`
/// is raised so the load stops too).
pub(crate) fn sample_every_second(
    server: &mut ServerChild,
    t0: Instant,
    duration: Duration,
    warmup: Duration,
    stop: &AtomicBool,
    csv: &mut impl Write,
) -> (Vec<Sample>, Option<String>) {
    let progress_every = (duration.as_secs() / 20).clamp(1, 30);
    let mut samples = Vec::new();
    // One sample a second, at whole seconds from the start, the last one a second before the
    // deadline (the load is winding down at the deadline itself).
    for k in 0..duration.as_secs_f64().ceil() as u64 {
        sleep_until(t0 + Duration::from_secs(k), stop);
        if stop.load(Ordering::Acquire) {
            break;
        }
        if !server.alive() {
            stop.store(true, Ordering::Release);
            return (samples, Some(format!("the server exited at t={k} s")));
        }
        match take_sample(server, t0.elapsed().as_secs_f64()) {
            Ok(s) => {
                let _ = writeln!(csv, "{}", s.csv_row());
                let _ = csv.flush();
                if k % progress_every == 0 || k == warmup.as_secs() {
                    println!(
                        "  t={:>4} s  server RSS {:>9}  fds {:>4}  threads {:>2}  connections {:>4}  handshakes {:>8}  requests {:>9}  generator RSS {}",
                        k,
                        mib(s.rss_kib),
                        s.fds,
                        s.threads,
                        s.connections_active,
                        s.handshakes,
                        s.requests,
                        mib(s.client_rss_kib)
                    );
                }
                samples.push(s);
            }
            Err(e) => {
                stop.store(true, Ordering::Release);
                return (
                    samples,
                    Some(format!("sampling the server failed at t={k} s: {e}")),
                );
            }
        }
    }
    (samples, None)
}
