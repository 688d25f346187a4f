//! The soak's verdict beyond the resource bounds ([`super::bounds`]): the good clients saw no
//! error, the broken ones ran and the server counted and timed them out; and the summary
//! printed at the end.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::broken::BrokenCounts;
use super::mix::MixResult;
use super::sampling::mib;
use super::{SoakArgs, SoakSummary, bounds};
use server::Snapshot;
use server::stats::{FailureCause, TimeoutKind};

/// Checks of the good and broken clients and of the server's counters of the latter.
pub(crate) fn client_reasons(
    mix: &[MixResult],
    broken: &BrokenCounts,
    counters: &Snapshot,
    args: &SoakArgs,
    elapsed: Duration,
) -> Vec<String> {
    let mut reasons = Vec::new();
    for m in mix {
        if m.errors > 0 {
            let kinds: Vec<String> = m
                .errors_by_kind
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            reasons.push(format!(
                "mix '{}': {} errors ({})",
                m.name,
                m.errors,
                kinds.join(", ")
            ));
        } else if m.requests == 0 {
            reasons.push(format!("mix '{}': no requests completed", m.name));
        }
    }
    if args.broken_rate > 0.0 {
        if broken.total() == 0 {
            reasons.push("no broken client ran".into());
        }
        if broken.connect_failed > 0 {
            reasons.push(format!(
                "{} broken clients could not connect",
                broken.connect_failed
            ));
        }
        if broken.outlived > 0 {
            reasons.push(format!(
                "{} broken connections were still open after {:.0} s: the server did not close them",
                broken.outlived,
                stall_limit(args).as_secs_f64()
            ));
        }
        let failures = counters.failures_total();
        if failures < broken.rejected_closed_by_server {
            reasons.push(format!(
                "the server counted {failures} failed handshakes, fewer than the {} garbage and plain-HTTP connections it closed",
                broken.rejected_closed_by_server
            ));
        }
        let timeouts = |kind| counters.timeouts_of(kind);
        // A stall opened in the first second is timed out before the end only when the run
        // outlasts the timeout with room to spare.
        let room = Duration::from_secs(1);
        if broken.tcp_stall > 0 && elapsed > args.handshake_timeout + room {
            if timeouts(TimeoutKind::Handshake) == 0 {
                reasons.push("the server timed out no stalled handshake".into());
            }
            if broken.tcp_stalls_closed_by_server == 0 {
                reasons.push("the server closed no TCP stall".into());
            }
        }
        if broken.half_head > 0 && elapsed > args.header_timeout + room {
            if timeouts(TimeoutKind::Header) == 0 {
                reasons.push("the server timed out no half request head".into());
            }
            if broken.half_heads_closed_by_server == 0 {
                reasons.push("the server closed no half request head".into());
            }
        }
    }
    reasons
}

/// How long a broken connection may stay open before the server is blamed for it.
pub(crate) fn stall_limit(args: &SoakArgs) -> Duration {
    args.handshake_timeout.max(args.header_timeout) * 3
}

/// The summary printed at the end.
pub fn human(s: &SoakSummary, dir: &Path) -> String {
    let mut o = String::new();
    let r = &s.resources;
    let _ = writeln!(
        o,
        "\ntlsbench soak: {} — {:.0} s of mixed load (warm-up {:.0} s), {} samples; {}",
        if s.pass { "PASS" } else { "FAIL" },
        s.elapsed_s,
        s.warmup_s,
        s.samples,
        dir.display()
    );
    let _ = writeln!(
        o,
        "  {:<16} {:>10} {:>12} {:>10} {:>12} {:>10}",
        "", "start", "warm-up end", "end", "max after", "bound"
    );
    let row = |o: &mut String, name: &str, x: &bounds::Series, f: &dyn Fn(u64) -> String| {
        let _ = writeln!(
            o,
            "  {:<16} {:>10} {:>12} {:>10} {:>12} {:>10}",
            name,
            f(x.start),
            f(x.warmup_end),
            f(x.end),
            f(x.max_after_warmup),
            x.limit.map_or("-".into(), f)
        );
    };
    row(&mut o, "server RSS", &r.rss_kib, &mib);
    row(&mut o, "server fds", &r.fds, &|v| v.to_string());
    row(&mut o, "server threads", &r.threads, &|v| v.to_string());
    row(&mut o, "generator RSS", &r.client_rss_kib, &mib);
    if let (Some(t), Some(d)) = (r.rss_thirds_mean_kib, r.rss_drift_kib) {
        let _ = writeln!(
            o,
            "  server RSS mean by third after warm-up: {} / {} / {}; last − middle {:+.1} MiB (bound +{})",
            mib(t[0] as u64),
            mib(t[1] as u64),
            mib(t[2] as u64),
            d / 1024.0,
            mib(s.bounds.bounds.rss_drift_kib)
        );
    }
    let _ = writeln!(
        o,
        "  {:<14} {:>7} {:>6} {:>10} {:>9} {:>9} {:>8} {:>8}",
        "mix", "rate/s", "conns", "requests", "full", "resumed", "p99 ms", "errors"
    );
    for m in &s.mix {
        let _ = writeln!(
            o,
            "  {:<14} {:>7.0} {:>6} {:>10} {:>9} {:>9} {:>8.1} {:>8}",
            m.name,
            m.rate_per_s,
            m.connections,
            m.requests,
            m.handshakes_full,
            m.handshakes_resumed,
            m.p99_ms,
            m.errors
        );
    }
    let b = &s.broken.counts;
    let _ = writeln!(
        o,
        "  broken clients: {} (garbage {}, plain HTTP {}, mid-handshake {}, TCP stall {}, half head {}); closed by the server: {} rejected, {} TCP stalls, {} half heads; dropped at cap {}, outlived {}",
        b.total(),
        b.garbage,
        b.plain_http,
        b.mid_handshake,
        b.tcp_stall,
        b.half_head,
        b.rejected_closed_by_server,
        b.tcp_stalls_closed_by_server,
        b.half_heads_closed_by_server,
        b.stalls_dropped_at_cap,
        b.outlived
    );
    if let Some(c) = &s.server.counters {
        let nonzero = |parts: Vec<(&str, u64)>| -> String {
            parts
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(|(label, n)| format!("{label} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let failures = FailureCause::ALL.map(|f| (f.as_str(), c.failures_of(f)));
        let timeouts = TimeoutKind::ALL.map(|t| (t.as_str(), c.timeouts_of(t)));
        let _ = writeln!(
            o,
            "  server: handshake failures [{}]; timeouts [{}]",
            nonzero(failures.to_vec()),
            nonzero(timeouts.to_vec())
        );
    }
    for reason in &s.reasons {
        let _ = writeln!(o, "  FAIL: {reason}");
    }
    o
}
