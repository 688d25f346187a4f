//! The gate `.ci/run` holds the shipped binary to: `cargo tree -p tlsbench -e normal` names no
//! criterion. Run here on both sides, so the check is shown to catch criterion where it is
//! (`benches`) as well as to pass where it is not.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

/// The normal (non-dev, non-build) dependency tree of `package`, as `.ci/run` reads it.
fn normal_tree(package: &str) -> String {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = Command::new(env!("CARGO"))
        .args(["tree", "-p", package, "-e", "normal", "--prefix", "none"])
        .current_dir(workspace)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The check of `.ci/run`: does any line of the tree name criterion?
fn links_criterion(tree: &str) -> bool {
    tree.lines().any(|line| line.contains("criterion"))
}

#[test]
fn tlsbench_does_not_link_criterion() {
    let tree = normal_tree("tlsbench");
    assert!(tree.contains("bench_report"), "{tree}");
    assert!(!links_criterion(&tree), "{tree}");
}

#[test]
fn the_check_finds_criterion_in_the_benches() {
    assert!(links_criterion(&normal_tree("benches")));
}
