//! Two real `tlsbench run --quick` results side by side: one against the runner's own server,
//! one against a server it did not start (`--target`) that has resumption off, so the probe
//! skips the resumed row there (exit 0, the reason in the table and results.json); then
//! `compare --side-by-side` shows the common row with both values and the ratio and lists the
//! other as in one run only, and the gate treats the skipped row as missing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use test_support::binary::{TempDir, make_certs, p, server_in, tlsbench, tlsbench_within};

const MATRIX: &str = r#"
[defaults]
connections = 2
quick_duration = "1s"
quick_warmup = "200ms"

[[scenario]]
name = "full tls1.3 x25519 ecdsa-p256"
kind = "handshake"
tls = "1.3"
kx_groups = ["X25519"]
server_resumption = "off"
resume = "off"

[[scenario]]
name = "resumed tls1.3 tickets"
kind = "handshake"
tls = "1.3"
kx_groups = ["X25519"]
server_resumption = "tickets"
resume = "ticket"
"#;

/// A quick run may take this long on a loaded machine.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// The results.json of the single run written under `out`.
fn results_file(out: &Path) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.remove(0).join("results.json")
}

#[test]
fn a_skipped_row_is_reported_and_two_real_runs_compare_side_by_side() {
    let dir = TempDir::new("side-by-side");
    let certs = dir.path().join("certs");
    make_certs(&certs, "ecdsa-p256");
    let matrix = dir.path().join("matrix.toml");
    std::fs::write(&matrix, MATRIX).unwrap();

    let out_a = dir.path().join("a");
    let ran = tlsbench_within(
        &[
            "run",
            "--quick",
            "--scenarios",
            p(&matrix),
            "--out",
            p(&out_a),
            "--certs-dir",
            p(&certs),
        ],
        RUN_LIMIT,
    );
    assert_eq!(ran.status.code(), Some(0), "{}", ran.describe());
    let a = results_file(&out_a);

    let (_server, addr, _admin) = server_in(dir.path(), &["--resumption", "off"]);
    let out_b = dir.path().join("b");
    let url = format!("https://bank32.com:{}/", addr.port());
    let ran = tlsbench_within(
        &[
            "run",
            "--quick",
            "--scenarios",
            p(&matrix),
            "--out",
            p(&out_b),
            "--target",
            &url,
            "--connect-to",
            &addr.to_string(),
            "--cacert",
            p(&certs.join("ecdsa-p256/ca.pem")),
        ],
        RUN_LIMIT,
    );
    let reason = "no session resumption: second connection was a full handshake";
    assert_eq!(ran.status.code(), Some(0), "{}", ran.describe());
    assert!(
        ran.stdout
            .contains(&format!("- resumed tls1.3 tickets (handshake): {reason}")),
        "{}",
        ran.describe()
    );
    assert!(ran.stdout.contains("1 skipped"), "{}", ran.describe());
    let b = results_file(&out_b);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&b).unwrap()).unwrap();
    assert_eq!(doc["rows"].as_array().unwrap().len(), 1);
    assert_eq!(doc["rows"][0]["presented_cert"], "ecdsa-p256");
    assert_eq!(doc["skipped"][0]["name"], "resumed tls1.3 tickets");
    assert_eq!(doc["skipped"][0]["reason"], reason);

    let chart = dir.path().join("side.svg");
    let ran = tlsbench(&[
        "compare",
        p(&a),
        p(&b),
        "--side-by-side",
        "--chart",
        p(&chart),
    ]);
    assert_eq!(ran.status.code(), Some(0), "{}", ran.describe());
    let text = &ran.stdout;
    assert!(text.contains("A: tlsbench-server"), "{text}");
    assert!(text.contains(&format!("B: {url}")), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("full tls1.3 x25519 ecdsa-p256"))
        .unwrap_or_else(|| panic!("no common row:\n{text}"));
    // Rate, server CPU (B has none: "missing"), client CPU and p99, each A, B and B/A.
    assert!(line.contains("handshakes/s"), "{line}");
    assert_eq!(line.matches('×').count(), 3, "{line}");
    assert!(line.contains("missing"), "{line}");
    assert!(
        text.contains(&format!(
            "resumed tls1.3 tickets: in A only (B: skipped there: {reason})"
        )),
        "{text}"
    );
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(svg.contains("full tls1.3 x25519 ecdsa-p256"));

    let md = tlsbench(&["compare", p(&a), p(&b), "--side-by-side", "--markdown"]);
    assert_eq!(md.status.code(), Some(0), "{}", md.describe());
    assert!(
        md.stdout
            .contains("| scenario | rate A | rate B | rate B/A |")
    );

    // The gate sees the skipped row as missing, as any row absent from NEW.
    let gate = tlsbench(&["compare", p(&a), p(&b), "--metric", "client-cpu"]);
    assert_eq!(gate.status.code(), Some(2), "{}", gate.describe());
    let unreadable = tlsbench(&[
        "compare",
        p(&a),
        p(&dir.path().join("none.json")),
        "--side-by-side",
    ]);
    assert_eq!(
        unreadable.status.code(),
        Some(2),
        "{}",
        unreadable.describe()
    );
}
