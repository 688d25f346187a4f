//! The human summary of a load run (what stdout shows), written from the same [`Document`]
//! as the JSON, so the two never disagree.

use std::fmt::Write as _;

use super::*;

fn fmt_us(us: u64) -> String {
    if us >= 1_000_000 {
        format!("{:.2}s", us as f64 / 1e6)
    } else if us >= 1_000 {
        format!("{:.2}ms", us as f64 / 1e3)
    } else {
        format!("{us}µs")
    }
}

/// The human summary (what stdout shows).
pub fn human(opts: &LoadOptions, d: &Document) -> String {
    let r = &d.results;
    let c = &r.counts;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "tlsbench load {} — {} connections on {} threads, {}, resume {} (ratio {}), provider {}, {}",
        d.config.url,
        d.config.connections,
        d.config.threads,
        d.config.mode,
        d.config.resume,
        d.config.resume_ratio,
        d.config.provider,
        if opts.rate.is_some() {
            "open loop"
        } else {
            "closed loop"
        }
    );
    let _ = writeln!(o, "  verification: {}", d.config.verification);
    let _ = writeln!(o, "  measured: {:.2} s", r.duration_s);
    if let Some(seg) = d.config.segment {
        let _ = writeln!(
            o,
            "  segment: {seg} (this process's share of the load; tlsbench merge joins the parts' --json files)"
        );
    }
    let _ = writeln!(
        o,
        "  handshakes: {} ({:.1}/s): {} full, {} resumed, {} full with HRR, {} resumed with HRR; TLS 1.3: {}, TLS 1.2: {}",
        c.handshakes(),
        r.handshakes_per_s,
        c.full,
        c.resumed,
        c.full_hrr,
        c.resumed_hrr,
        c.tls13,
        c.tls12
    );
    if c.offered + c.offer_missed > 0 {
        let _ = writeln!(
            o,
            "  resumption: {} offered a session, {} resumed ({:.2}% hit rate); {} had none to offer",
            c.offered,
            c.offered_resumed,
            r.resumption_hit_rate.unwrap_or(0.0) * 100.0,
            c.offer_missed
        );
    }
    if c.cert_requested > 0 || opts.tls.client_cert.is_some() {
        let _ = writeln!(
            o,
            "  client certificates: the server asked on {} handshakes, we sent one on {}",
            c.cert_requested, c.cert_sent
        );
    }
    let _ = writeln!(
        o,
        "  requests: {} ok ({:.1}/s)",
        c.requests, r.requests_per_s
    );
    if let Some(ol) = &r.open_loop {
        let _ = writeln!(
            o,
            "  open loop: asked {:.1}/s, started {:.1}/s ({:.1}%); {} due operations never started",
            ol.requested_per_s,
            ol.achieved_per_s,
            100.0 * ol.achieved_per_s / ol.requested_per_s,
            ol.not_started
        );
    }
    if c.body_bytes_in + c.body_bytes_out > 0 {
        let _ = writeln!(
            o,
            "  bodies: {} bytes down ({:.2} MB/s = {:.2} MiB/s), {} bytes up ({:.2} MB/s = {:.2} MiB/s); MB = 10^6 bytes, MiB = 2^20",
            c.body_bytes_in,
            r.download_mb_per_s,
            r.download_mb_per_s * 1e6 / 1_048_576.0,
            c.body_bytes_out,
            r.upload_mb_per_s,
            r.upload_mb_per_s * 1e6 / 1_048_576.0
        );
    }
    let _ = writeln!(
        o,
        "  latency       {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "p50", "p90", "p99", "p99.9", "p99.99", "max"
    );
    for name in LATENCIES {
        if let Some(l) = r.latency.get(name) {
            if l.count == 0 {
                continue;
            }
            let p = &l.percentiles_us;
            let g = |k: &str| fmt_us(p.get(k).copied().unwrap_or(0));
            let _ = writeln!(
                o,
                "  {:<13} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                name,
                g("p50"),
                g("p90"),
                g("p99"),
                g("p99.9"),
                g("p99.99"),
                g("max")
            );
        }
    }
    if let (Some(i), Some(out)) = (r.handshake_bytes.get("in"), r.handshake_bytes.get("out"))
        && i.count > 0
    {
        let _ = writeln!(
            o,
            "  handshake bytes: server→client mean {:.0}, p99 {}; client→server mean {:.0}, p99 {}",
            i.mean, i.p99, out.mean, out.p99
        );
    }
    let _ = writeln!(
        o,
        "  TLS on the wire: {} bytes in, {} bytes out",
        c.tls_bytes_in, c.tls_bytes_out
    );
    if c.cert_compressed.total() > 0 {
        let _ = writeln!(
            o,
            "  certificates received compressed: {} brotli, {} zlib",
            c.cert_compressed.brotli, c.cert_compressed.zlib
        );
    }
    let e = c.early_data;
    if e.offered > 0 {
        let _ = writeln!(
            o,
            "  early data (0-RTT): {} offered, {} accepted, {} rejected",
            e.offered, e.accepted, e.rejected
        );
    }
    let errors: Vec<String> = r
        .errors
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    let _ = writeln!(
        o,
        "  errors: {}{}",
        c.errors_total(),
        if errors.is_empty() {
            String::new()
        } else {
            format!(" ({})", errors.join(", "))
        }
    );
    if !c.alerts.is_empty() {
        let a: Vec<String> = c.alerts.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let _ = writeln!(o, "  alerts received: {}", a.join(", "));
    }
    if !c.statuses.is_empty() {
        let a: Vec<String> = c
            .statuses
            .iter()
            .map(|(k, n)| format!("{n} × {k}"))
            .collect();
        let _ = writeln!(o, "  non-2xx: {}", a.join(", "));
    }
    let cpu = &r.cpu;
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    let _ = writeln!(
        o,
        "  client CPU: {:.3} s user + {:.3} s sys; µs per handshake {}, per request {}, per MB {}; busiest worker {:.0}% of a core",
        cpu.user_s,
        cpu.sys_s,
        opt(cpu.us_per_handshake),
        opt(cpu.us_per_request),
        opt(cpu.us_per_mb),
        cpu.max_worker_core_share * 100.0
    );
    for w in &r.warnings {
        let _ = writeln!(o, "WARNING: {w}");
    }
    o
}
