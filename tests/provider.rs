//! Crypto providers through the `tlsbench` binary: a ring server and a ring generator complete
//! TLS 1.3 ECDSA handshakes and each says it ran on ring (the server's listening line, the
//! load JSON); a ring server serves the default aws-lc-rs generator; ring with a group it
//! lacks is refused by both commands before anything runs; a matrix row with
//! `provider = "ring"` runs and records its provider; `tlsbench list` prints in text every
//! name its JSON holds.

#![cfg(feature = "ring")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use test_support::binary::{
    self as support, EXIT_TIMEOUT, Ran, TempDir, bin, make_certs, p, server_in, tlsbench,
};

const RING_LACKS_PQ: &str = "the ring provider has no key-exchange group X25519MLKEM768";

/// `tlsbench load` of 20 new connections against `addr` (TLS 1.3) with `extra` flags and
/// `--json` into `dir`; returns the run and the parsed JSON.
fn load(dir: &Path, addr: std::net::SocketAddr, extra: &[&str]) -> (Ran, serde_json::Value) {
    let json = dir.join(format!("load-{}.json", extra.join("_")));
    let mut cmd = Command::new(bin());
    cmd.arg("load")
        .arg(format!("https://bank32.com:{}/", addr.port()))
        .args(["--connect-to", &addr.to_string()])
        .args(["--cacert", p(&dir.join("certs/ecdsa-p256/ca.pem"))])
        .args(["--tls", "1.3", "--new-conn", "-c", "2", "-n", "20", "-q"])
        .args(["--json", p(&json)])
        .args(extra);
    let ran = support::process::run_bounded(cmd, EXIT_TIMEOUT);
    assert_eq!(ran.status.code(), Some(0), "{}", ran.describe());
    let doc = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    (ran, doc)
}

#[test]
fn ring_on_both_sides_and_a_mixed_pair_complete_and_each_side_reports_its_provider() {
    let dir = TempDir::new("ring");
    let (server, addr, _admin) = server_in(
        dir.path(),
        &[
            "--provider",
            "ring",
            "--tls",
            "1.3",
            "--cert-type",
            "ecdsa-p256",
        ],
    );
    let line = server
        .stdout
        .iter()
        .find(|l| l.contains("listening on https://"))
        .unwrap()
        .clone();
    assert!(line.contains("provider ring"), "{line}");

    for (flags, provider) in [
        (&["--provider", "ring"][..], "ring"),
        (&[][..], "aws-lc-rs"),
    ] {
        let (ran, doc) = load(dir.path(), addr, flags);
        assert_eq!(doc["config"]["provider"], provider, "{}", ran.describe());
        assert!(
            ran.stdout.contains(&format!("provider {provider}")),
            "{}",
            ran.describe()
        );
        let r = &doc["results"];
        assert_eq!(r["counts"]["full"], 20, "{}", ran.describe());
        let errors: u64 = r["errors"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(errors, 0, "{}", ran.describe());
    }
}

#[test]
fn ring_with_x25519mlkem768_is_refused_by_the_server_and_the_generator() {
    let dir = TempDir::new("ring-pq");
    let ran = tlsbench(&[
        "server",
        "--listen",
        "127.0.0.1:0",
        "--certs-dir",
        p(&dir.path().join("certs")),
        "--provider",
        "ring",
        "--kx-groups",
        "X25519MLKEM768",
    ]);
    assert_eq!(ran.status.code(), Some(1), "{}", ran.describe());
    assert!(ran.stderr.contains(RING_LACKS_PQ), "{}", ran.describe());
    assert!(!ran.stdout.contains("listening"), "{}", ran.describe());

    let ran = tlsbench(&[
        "load",
        "https://127.0.0.1:1/",
        "--provider",
        "ring",
        "--kx-groups",
        "X25519MLKEM768",
        "-n",
        "1",
    ]);
    assert_eq!(ran.status.code(), Some(1), "{}", ran.describe());
    assert!(ran.stderr.contains(RING_LACKS_PQ), "{}", ran.describe());
}

#[test]
fn list_prints_in_text_every_name_its_json_holds() {
    let text = tlsbench(&["list"]);
    assert!(text.status.success(), "{}", text.describe());
    let json = tlsbench(&["list", "--json"]);
    assert!(json.status.success(), "{}", json.describe());
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let mut names = 0;
    for table in [
        "cipher_suites",
        "kx_groups",
        "cert_types",
        "signature_schemes",
    ] {
        for e in doc[table].as_array().unwrap() {
            let name = e["name"].as_str().unwrap();
            let line = text
                .stdout
                .lines()
                .find(|l| l.split_whitespace().next() == Some(name))
                .unwrap_or_else(|| panic!("{name} not in the text:\n{}", text.stdout));
            let yes = line.split_whitespace().filter(|w| *w == "yes").count();
            assert_eq!(yes, e["providers"].as_array().unwrap().len(), "{line}");
            names += 1;
        }
    }
    assert!(names > 20, "{names} names");
    assert!(
        text.stdout.contains("ring         built in"),
        "{}",
        text.stdout
    );
}

const RING_ROW: &str = r#"
[defaults]
connections = 4
quick_duration = "1s"
quick_warmup = "200ms"

[[scenario]]
name = "full tls1.3 ecdsa-p256, ring"
kind = "handshake"
tls = "1.3"
cert = "ecdsa-p256"
provider = "ring"
"#;

#[test]
fn a_ring_row_of_the_matrix_runs_and_records_its_provider() {
    let dir = TempDir::new("run-ring");
    make_certs(dir.path(), "ecdsa-p256");
    let matrix = dir.path().join("ring.toml");
    std::fs::write(&matrix, RING_ROW).unwrap();
    let out = dir.path().join("results");
    // One row with its own server: bounded well above its ~3 s, the machine's cores are shared.
    let ran = support::tlsbench_within(
        &[
            "run",
            "--quick",
            "--scenarios",
            p(&matrix),
            "--out",
            p(&out),
            "--certs-dir",
            p(dir.path()),
        ],
        std::time::Duration::from_secs(120),
    );
    assert_eq!(ran.status.code(), Some(0), "{}", ran.describe());
    let run_dir = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("results.json")).unwrap())
            .unwrap();
    let row = &doc["rows"][0];
    assert_eq!(row["provider"], "ring", "{row}");
    assert_eq!(row["errors"], 0, "{row}");
    assert!(row["handshakes"]["full"].as_u64().unwrap() > 0, "{row}");
    assert!(
        row["server_cpu_us"]["median"].as_f64().unwrap() > 0.0,
        "{row}"
    );
}
