//! `tlsbench run --profile` end to end: a one-row quick matrix profiled with perf writes a
//! non-empty flame graph and folded stacks per side, and a breakdown in results.json whose
//! shares sum to 100% with at least 90% of samples in a named component; without perf on
//! the PATH the run refuses to start and names the package to install.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::Duration;

use test_support::binary as support;

use support::process::run_bounded;
use support::{
    ONE_ROW_MATRIX, TempDir, bin, p, quick_run, results_json, run_dir, tlsbench, write_matrix,
};

/// Folding DWARF stacks of a debug build takes tens of seconds per side.
const PROFILED_RUN: Duration = Duration::from_secs(300);

/// Why perf cannot sample here, if it cannot (then the profiled test is skipped: CI
/// installs perf, so there it runs).
fn perf_unusable() -> Option<String> {
    match Command::new("perf").arg("--version").output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => return Some(format!("perf --version: {}", o.status)),
        Err(e) => return Some(format!("perf: {e}")),
    }
    let paranoid = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid").ok()?;
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    (!root && paranoid.trim().parse::<i64>().unwrap_or(3) > 1)
        .then(|| format!("kernel.perf_event_paranoid is {}", paranoid.trim()))
}

#[test]
fn profile_writes_flame_graphs_and_a_breakdown_of_100_percent() {
    if let Some(why) = perf_unusable() {
        eprintln!("SKIPPED: perf cannot sample here ({why}); CI installs linux-perf");
        return;
    }
    let dir = TempDir::new("profile");
    let matrix = write_matrix(dir.path(), "one.toml", ONE_ROW_MATRIX);
    let out = dir.path().join("results");
    let mut cmd = Command::new(bin());
    cmd.args(quick_run(
        &matrix,
        &out,
        &["--profile", "both", "--certs-dir", p(dir.path())],
    ));
    let ran = run_bounded(cmd, PROFILED_RUN);
    assert_eq!(ran.status.code(), Some(0), "{}", ran.describe());
    let run_dir = run_dir(&out);
    let doc = results_json(&run_dir);
    let row = &doc["profiles"]["full tls1.3 x25519 ecdsa-p256"];
    for side in ["server", "client"] {
        let b = &row[side];
        assert!(b["sampled_ns"].as_u64().unwrap() > 0, "{side}: {b}");
        let parts = b["parts"].as_array().unwrap();
        let share: f64 = parts.iter().map(|x| x["share_pct"].as_f64().unwrap()).sum();
        assert!(
            (share - 100.0).abs() <= 0.1,
            "{side}: shares sum to {share}"
        );
        let named: f64 = parts
            .iter()
            .filter(|x| x["component"] != "other")
            .map(|x| x["share_pct"].as_f64().unwrap())
            .sum();
        assert!(named >= 90.0, "{side}: {named}% named: {b}");
        assert!((named - b["named_pct"].as_f64().unwrap()).abs() < 1e-6);
        // µs per operation: the parts add up to the side's CPU per operation.
        let us: f64 = parts.iter().map(|x| x["us_per_op"].as_f64().unwrap()).sum();
        let cpu_key = format!("{side}_cpu_us");
        let cpu = doc["rows"][0][cpu_key.as_str()]["median"].as_f64().unwrap();
        assert!((us - cpu).abs() <= cpu * 1e-6, "{side}: {us} vs {cpu}");
        for file in ["folded", "flamegraph"] {
            let path = run_dir.join(b[file].as_str().unwrap());
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(!text.trim().is_empty(), "{} is empty", path.display());
        }
        let svg = std::fs::read_to_string(run_dir.join(b["flamegraph"].as_str().unwrap()));
        assert!(svg.unwrap().contains("<svg"), "{side}: not an SVG");
    }
    // The server's stacks reach its crypto: the component a full handshake cannot lack.
    let server = row["server"]["parts"].as_array().unwrap();
    assert!(
        server.iter().any(|x| x["component"] == "signatures"),
        "{server:?}"
    );
    assert!(run_dir.join("profile.svg").exists());
    let summary = std::fs::read_to_string(run_dir.join("summary.md")).unwrap();
    assert!(summary.contains("## Where the CPU goes"), "{summary}");
}

#[test]
fn profile_without_perf_exits_naming_the_package_and_writes_nothing() {
    let dir = TempDir::new("profile-noperf");
    let matrix = write_matrix(dir.path(), "one.toml", ONE_ROW_MATRIX);
    let out = dir.path().join("results");
    let empty = dir.path().join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let mut cmd = Command::new(bin());
    cmd.env("PATH", &empty).args(quick_run(
        &matrix,
        &out,
        &["--profile", "--certs-dir", p(dir.path())],
    ));
    let ran = run_bounded(cmd, Duration::from_secs(60));
    assert!(!ran.status.success(), "{}", ran.describe());
    assert!(ran.stderr.contains("linux-perf"), "{}", ran.describe());
    assert!(
        !out.exists(),
        "a run that cannot profile wrote {}",
        out.display()
    );
    // An unknown side is refused with its name.
    let ran = tlsbench(&["run", "--profile", "bogus"]);
    assert!(!ran.status.success());
    assert!(ran.stderr.contains("bogus"), "{}", ran.describe());
}
