//! `tlsbench soak` as a child process, shortened to seconds: it writes samples.csv and
//! summary.json, samples the server's resources, sees no error on good clients, the server
//! counts (and times out) the broken clients, and the verdict is a pass; the same soak held to
//! a bound that cannot hold fails, naming that bound.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use server::stats::{FailureCause, TimeoutKind};
use support::{Ran, TempDir, p, tlsbench_within};
use test_support::binary as support;

/// Far above the 6 s soak plus server start-up on a busy debug build.
const EXIT_TIMEOUT: Duration = Duration::from_secs(180);

/// Exit code of a soak whose verdict is a fail.
const EXIT_FAIL: i32 = 1;

/// The server's counters in summary.json, read by the server's own contract.
fn server_counters(summary: &serde_json::Value) -> server::Snapshot {
    serde_json::from_value(summary["server"]["counters"].clone()).unwrap()
}

/// Runs `tlsbench soak` with `args` (besides --out and --certs-dir, in `tmp`) to its end;
/// returns the run and its results directory.
fn soak(tmp: &TempDir, args: &[&str]) -> (Ran, PathBuf) {
    let out = tmp.path().join("results");
    let certs = tmp.path().join("certs");
    let mut all = vec!["soak", "--out", p(&out), "--certs-dir", p(&certs)];
    all.extend(args);
    let ran = tlsbench_within(&all, EXIT_TIMEOUT);
    let dirs: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap_or_else(|e| panic!("{e}: no results\n{}", ran.describe()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let dir = dirs[0].clone();
    assert!(
        dir.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("soak-"),
        "{dir:?}"
    );
    (ran, dir)
}

fn summary_of(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn soak_samples_judges_and_counts_broken_clients() {
    let tmp = TempDir::new("soak");
    let (ran, dir) = soak(
        &tmp,
        &[
            "--duration",
            "6s",
            "--warmup",
            "2s",
            "--handshake-timeout",
            "2s",
            "--header-timeout",
            "2s",
        ],
    );
    let stdout = &ran.stdout;
    let describe = ran.describe();
    let dir = &dir;

    let csv = std::fs::read_to_string(dir.join("samples.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(
        header[..5],
        ["t_s", "rss_kib", "fds", "threads", "client_rss_kib"]
    );
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert!(rows.len() >= 5, "{} samples\n{csv}", rows.len());
    for r in &rows {
        assert_eq!(r.len(), header.len(), "{csv}");
        assert!(
            r[1] > 0.0 && r[2] > 0.0 && r[3] > 0.0 && r[4] > 0.0,
            "{csv}"
        );
    }
    assert!(
        rows.windows(2).all(|w| w[1][0] > w[0][0]),
        "samples in time order: {csv}"
    );

    let summary = summary_of(dir);
    assert_eq!(summary["tool"], "tlsbench soak");
    let bounds = &summary["bounds"];
    assert_eq!(bounds["rss_factor"], 1.25, "{bounds}");
    assert_eq!(bounds["rss_slack_kib"], 16 * 1024, "{bounds}");
    assert_eq!(bounds["rss_drift_kib"], 4 * 1024, "{bounds}");
    assert!(bounds["fd_headroom"].as_u64().unwrap() > 64, "{bounds}");
    assert!(!bounds["statement"].as_array().unwrap().is_empty());
    // The verdict: a healthy server under this load passes every bound, and says so in the
    // exit code, in summary.json and on stdout.
    assert_eq!(summary["reasons"], serde_json::json!([]), "{describe}");
    assert_eq!(summary["pass"], true, "{describe}");
    assert_eq!(ran.status.code(), Some(0), "{describe}");
    assert!(stdout.contains("PASS"), "{describe}");
    for series in ["rss_kib", "fds", "threads"] {
        let s = &summary["resources"][series];
        assert!(s["max_after_warmup"].as_u64().unwrap() > 0, "{series}: {s}");
        assert!(s["limit"].as_u64().is_some(), "{series}: {s}");
    }
    assert_eq!(summary["samples"].as_u64().unwrap(), rows.len() as u64);

    // Good clients: every member of the mix worked, without a single error.
    let mix = summary["mix"].as_array().unwrap();
    assert_eq!(mix.len(), 6, "{describe}");
    for m in mix {
        assert_eq!(m["errors"], 0, "{m}\n{describe}");
        assert!(m["requests"].as_u64().unwrap() > 0, "{m}\n{describe}");
    }

    // Broken clients: sent, and counted by the server, stalls timed out on both timeouts.
    let broken = &summary["broken"]["counts"];
    for kind in [
        "garbage",
        "plain_http",
        "mid_handshake",
        "tcp_stall",
        "half_head",
    ] {
        assert!(broken[kind].as_u64().unwrap() > 0, "{kind}: {broken}");
    }
    assert!(
        broken["rejected_closed_by_server"].as_u64().unwrap() > 0,
        "{broken}"
    );
    assert_eq!(broken["outlived"], 0, "{broken}");
    let counters = server_counters(&summary);
    assert!(
        counters.failures_of(FailureCause::InvalidMessage) > 0,
        "{describe}"
    );
    assert!(
        counters.timeouts_of(TimeoutKind::Handshake) > 0,
        "{describe}"
    );
    assert!(counters.timeouts_of(TimeoutKind::Header) > 0, "{describe}");
}

/// The verdict can fail: the same soak, its baseline the idle server (no warm-up) and its RSS
/// bound that baseline × 1 + 0, cannot pass. Under the mix the server holds 28 TLS connections
/// and moves 1 MiB bodies both ways, so its RSS must rise above the idle figure (here by more
/// than 1 MiB within the first second).
#[test]
fn soak_with_an_rss_bound_that_cannot_hold_fails_and_names_it() {
    let tmp = TempDir::new("soak-fail");
    let (ran, dir) = soak(
        &tmp,
        &[
            "--duration",
            "3s",
            "--warmup",
            "0s",
            "--rss-factor",
            "1",
            "--rss-slack",
            "0",
            "--handshake-timeout",
            "2s",
            "--header-timeout",
            "2s",
        ],
    );
    let describe = ran.describe();
    assert_eq!(ran.status.code(), Some(EXIT_FAIL), "{describe}");
    let summary = summary_of(&dir);
    assert_eq!(summary["pass"], false, "{describe}");
    let bounds = &summary["bounds"];
    assert_eq!(
        (
            bounds["rss_factor"].as_f64(),
            bounds["rss_slack_kib"].as_u64()
        ),
        (Some(1.0), Some(0)),
        "{bounds}"
    );
    let reasons: Vec<&str> = summary["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("server RSS reached") && r.contains("above the bound")),
        "{reasons:?}\n{describe}"
    );
    let rss = &summary["resources"]["rss_kib"];
    assert!(
        rss["max_after_warmup"].as_u64().unwrap() > rss["limit"].as_u64().unwrap(),
        "{rss}"
    );
    assert!(
        ran.stdout.contains("FAIL: server RSS reached"),
        "{describe}"
    );
}
