//! `tlsbench soak` as a child process, shortened to seconds: it writes samples.csv and
//! summary.json, samples the server's resources, sees no error on good clients, and the
//! server counts (and times out) the broken clients.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;
use std::time::Duration;

use server::stats::{FailureCause, TimeoutKind};
use support::{TempDir, p, tlsbench_within};

/// Far above the 6 s soak plus server start-up on a busy debug build.
const EXIT_TIMEOUT: Duration = Duration::from_secs(180);

/// The server's counters in summary.json, read by the server's own contract.
fn server_counters(summary: &serde_json::Value) -> server::Snapshot {
    serde_json::from_value(summary["server"]["counters"].clone()).unwrap()
}

#[test]
fn soak_samples_judges_and_counts_broken_clients() {
    let tmp = TempDir::new("soak");
    let out = tmp.path().join("results");
    let certs = tmp.path().join("certs");
    let ran = tlsbench_within(
        &[
            "soak",
            "--duration",
            "6s",
            "--warmup",
            "2s",
            "--handshake-timeout",
            "2s",
            "--header-timeout",
            "2s",
            "--out",
            p(&out),
            "--certs-dir",
            p(&certs),
        ],
        EXIT_TIMEOUT,
    );
    let stdout = &ran.stdout;
    let describe = ran.describe();
    let code = ran.status.code();
    assert!(matches!(code, Some(0 | 1)), "{describe}");

    let dirs: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let dir = &dirs[0];
    assert!(
        dir.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("soak-"),
        "{dir:?}"
    );

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

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["tool"], "tlsbench soak");
    let bounds = &summary["bounds"];
    assert_eq!(bounds["rss_factor"], 1.25, "{bounds}");
    assert_eq!(bounds["rss_slack_kib"], 16 * 1024, "{bounds}");
    assert_eq!(bounds["rss_drift_kib"], 4 * 1024, "{bounds}");
    assert!(bounds["fd_headroom"].as_u64().unwrap() > 64, "{bounds}");
    assert!(!bounds["statement"].as_array().unwrap().is_empty());
    let pass = summary["pass"].as_bool().unwrap();
    assert_eq!(code == Some(0), pass, "{describe}");
    assert_eq!(
        pass,
        summary["reasons"].as_array().unwrap().is_empty(),
        "{describe}"
    );
    assert!(
        stdout.contains(if pass { "PASS" } else { "FAIL" }),
        "{describe}"
    );
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
