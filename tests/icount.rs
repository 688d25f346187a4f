//! `tlsbench icount` for real under valgrind: a short count of two rows whose order is known
//! (a server signing with RSA-2048 executes more than one signing with ECDSA P-256), the
//! report `compare --metric instructions` reads, and the gate on it (0 on the same file).
//! Needs valgrind (`.ci/run` installs it); without it the test fails naming the package.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::Duration;

use test_support::binary as support;

use support::{TempDir, p, tlsbench_within};

/// Under valgrind a debug build's count of two rows takes seconds; the bound is for a
/// machine shared with other builds.
const LIMIT: Duration = Duration::from_secs(300);

const RSA: &str = "full tls1.3 x25519 rsa2048 / server";
const ECDSA: &str = "full tls1.3 x25519 ecdsa-p256 / server";

#[test]
fn server_side_full_rsa2048_costs_more_instructions_than_ecdsa_p256() {
    let valgrind = Command::new("valgrind").arg("--version").output();
    assert!(
        valgrind.is_ok_and(|o| o.status.success()),
        "valgrind is needed: install the Debian package `valgrind` (apt-get install valgrind)"
    );
    let dir = TempDir::new("icount");
    let ran = tlsbench_within(
        &[
            "icount",
            "--iterations",
            "3",
            "--row",
            RSA,
            "--row",
            ECDSA,
            "--out",
            p(&dir.0),
        ],
        LIMIT,
    );
    assert!(ran.status.success(), "{}", ran.describe());
    let path = dir.0.join("instructions.json");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let count = |name: &str| {
        let row = report["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no row {name}: {report}"));
        assert_eq!(row["iterations"].as_array().unwrap().len(), 3, "{row}");
        row["instructions"].as_f64().unwrap()
    };
    let (rsa, ecdsa) = (count(RSA), count(ECDSA));
    assert!(ecdsa > 0.0, "{report}");
    assert!(rsa > ecdsa, "RSA {rsa} is not above ECDSA {ecdsa}");
    assert!(
        !report["cpu_features"].as_array().unwrap().is_empty(),
        "{report}"
    );
    assert!(
        report["valgrind"]
            .as_str()
            .unwrap()
            .starts_with("valgrind-")
    );

    let same = tlsbench_within(
        &[
            "compare",
            "--metric",
            "instructions",
            "--threshold",
            "2%",
            p(&path),
            p(&path),
        ],
        LIMIT,
    );
    assert_eq!(same.status.code(), Some(0), "{}", same.describe());
}
