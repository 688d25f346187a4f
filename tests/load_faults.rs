//! `tlsbench load` as a child process under faults and bad certificates: its exit code (as
//! documented in `loadgen/src/cli.rs`: 3 finished but incomplete, 4 a certificate was
//! refused), its `--json` results written even when partial, and never a hang (every child is
//! waited for with a bound, then killed and the test failed).
//!
//! Faults: a server that accepts TCP but never answers TLS, one that resets mid-response, and
//! one replaced mid-run on the same port by a server with a chain from another CA. A server
//! killed mid-run is `tests/load.rs` (`load_keeps_its_results_when_the_server_dies_mid_run`).
//! Refusals: the five cases of `test_support::refusals` (wrong name, untrusted CA,
//! expired, not yet valid, missing intermediate) and the good chain; their messages and
//! curl's verdicts are checked in `loadgen/tests/cert_refusals.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::certs::GeneratedChain;
use faulty::{Cut, Tarpit, Truncating, good_chain};
use support::process::Captured;
use support::{Ran, TempDir, bin, p};
use test_support::{binary as support, faulty, refusals};

/// A load child must have exited this long after it was started, or it is killed.
const CHILD_LIMIT: Duration = Duration::from_secs(30);
/// `tlsbench load`'s exit codes (loadgen/src/cli.rs).
const EXIT_OK: i32 = 0;
const EXIT_INCOMPLETE: i32 = 3;
const EXIT_VERIFY: i32 = 4;

/// `tlsbench load https://HOST:PORT/ --connect-to ADDR <args> -q --json DIR/results.json`,
/// started; the caller may act while it runs, then [`finish`].
fn start_load(host: &str, addr: SocketAddr, dir: &TempDir, args: &[&str]) -> Captured {
    let [url, connect_to, dial] = faulty::target_flags(host, addr);
    let mut cmd = Command::new(bin());
    cmd.args(["load", &url, &connect_to, &dial])
        .args(args)
        .args(["-q", "--json", p(&results_path(dir))]);
    Captured::start(cmd)
}

/// Waits for a [`start_load`]ed child, bounded by [`CHILD_LIMIT`] from its start (past it the
/// child is killed and the test fails); it must exit with `code` and leave a results document
/// that parses. `what` names the case in failure messages.
fn finish(load: Captured, dir: &TempDir, code: i32, what: &str) -> (Ran, serde_json::Value) {
    let ran = load.wait(CHILD_LIMIT);
    assert_eq!(ran.status.code(), Some(code), "{what}: {}", ran.describe());
    let path = results_path(dir);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("no results at {}: {e}\n{}", path.display(), ran.describe()));
    let doc = serde_json::from_str(&text).unwrap();
    (ran, doc)
}

fn results_path(dir: &TempDir) -> PathBuf {
    dir.path().join("results.json")
}

/// Writes `chain`'s root as `ca.pem` in `dir`.
fn ca_file(dir: &TempDir, chain: &GeneratedChain) -> PathBuf {
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, &chain.root_pem).unwrap();
    path
}

fn count(doc: &serde_json::Value, pointer: &str) -> u64 {
    doc.pointer(pointer)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or_else(|| panic!("no {pointer} in {doc}"))
}

/// The sum of `results.errors` except the kinds named.
fn errors_except(doc: &serde_json::Value, kinds: &[&str]) -> u64 {
    doc["results"]["errors"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| !kinds.contains(&k.as_str()))
        .map(|(_, v)| v.as_u64().unwrap())
        .sum()
}

#[test]
fn load_against_a_server_that_never_answers_tls_exits_3_on_time_with_its_timeouts() {
    let tarpit = Tarpit::start();
    let dir = TempDir::new("tarpit");
    let ca = ca_file(&dir, &good_chain());
    let load = start_load(
        "bank32.com",
        tarpit.addr(),
        &dir,
        &[
            "--cacert",
            p(&ca),
            "-c",
            "4",
            "-t",
            "1",
            "-d",
            "2s",
            "--timeout",
            "500ms",
        ],
    );
    let (ran, doc) = finish(load, &dir, EXIT_INCOMPLETE, "tarpit");
    // The deadline holds for the whole process: start-up, 2 s of load, results. A generator
    // that ignored -d would go on timing out 500 ms handshakes until killed at CHILD_LIMIT;
    // half of that tells the two apart however slowly a loaded machine starts the debug
    // binary (a 5 s bound left it 3 s).
    assert!(ran.wall < CHILD_LIMIT / 2, "{}", ran.describe());
    let timeouts = count(&doc, "/results/errors/timeout");
    // At least one per connection, at most four each (2 s / 500 ms).
    assert!((4..=16).contains(&timeouts), "{timeouts}: {doc}");
    assert_eq!(errors_except(&doc, &["timeout"]), 0, "{doc}");
    assert_eq!(doc["results"]["complete"], false);
    assert_eq!(
        doc["results"]["incomplete_reason"],
        format!("{timeouts} operations failed")
    );
    assert_eq!(count(&doc, "/results/counts/requests"), 0, "{doc}");
    assert_eq!(count(&doc, "/results/counts/full"), 0, "{doc}");
    assert_eq!(doc["config"]["timeout_s"], 0.5);
    assert!(tarpit.discarded() > 0, "no ClientHello reached the tarpit");
}

#[test]
fn load_against_a_server_that_resets_mid_response_exits_3_with_its_resets() {
    let chain = good_chain();
    let srv = Truncating::start(&chain, Cut::Reset);
    let dir = TempDir::new("reset");
    let ca = ca_file(&dir, &chain);
    let load = start_load(
        "bank32.com",
        srv.addr(),
        &dir,
        &["--cacert", p(&ca), "-n", "3", "-c", "1", "-t", "1"],
    );
    let (_, doc) = finish(load, &dir, EXIT_INCOMPLETE, "reset");
    assert_eq!(count(&doc, "/results/errors/reset"), 3, "{doc}");
    assert_eq!(errors_except(&doc, &["reset"]), 0, "{doc}");
    assert_eq!(doc["results"]["complete"], false);
    assert_eq!(doc["results"]["incomplete_reason"], "3 operations failed");
    assert_eq!(count(&doc, "/results/counts/requests"), 0, "{doc}");
    assert_eq!(count(&doc, "/results/counts/full"), 3, "{doc}");
}

#[test]
fn load_refused_mid_run_by_a_chain_from_another_ca_exits_4_and_keeps_its_results() {
    let trusted = good_chain();
    let dir = TempDir::new("swap");
    let ca = ca_file(&dir, &trusted);
    let first = faulty::serve(&trusted, "127.0.0.1:0".parse().unwrap());
    let load = start_load(
        "bank32.com",
        first.local_addrs()[0],
        &dir,
        &[
            "--cacert",
            p(&ca),
            "-c",
            "2",
            "-t",
            "1",
            "--new-conn",
            "-d",
            "25s",
        ],
    );
    let (first, second) = faulty::replace_after(first, 200);
    let (ran, doc) = finish(load, &dir, EXIT_VERIFY, "swap");
    second.shutdown_handle().force();
    let second = second.wait().unwrap();

    let said = "tlsbench load: certificate refused: certificate chain of bank32.com is not \
                trusted by CA file ";
    assert!(ran.stderr.contains(said), "{}", ran.describe());
    assert_eq!(doc["results"]["complete"], false);
    let why = doc["results"]["incomplete_reason"].as_str().unwrap();
    assert!(ran.stderr.contains(why), "{why:?}\n{}", ran.describe());
    let refused = count(&doc, "/results/errors/cert_verify");
    assert!((1..=2).contains(&refused), "{doc}");
    // What was measured before the switch is all there, and no more than was served. The
    // first server counts a response once queued, so cutting it off may lose one response
    // per connection (2) on the way.
    let requests = count(&doc, "/results/counts/requests");
    assert!(
        (198..=first.requests_total()).contains(&requests),
        "{requests} of {}: {doc}",
        first.requests_total()
    );
    // The cache answered for the first chain (every handshake but the first); the second
    // chain was still verified, and refused.
    assert!(
        count(&doc, "/results/verify_cache_hits") + 1 >= requests,
        "{doc}"
    );
    assert!(count(&doc, "/results/verify_cache_misses") >= 2, "{doc}");
    assert_eq!(second.handshakes_total() + second.requests_total(), 0);
}

#[test]
fn load_refuses_each_bad_certificate_with_exit_4_and_says_why() {
    for case in refusals::cases() {
        let srv = refusals::Running::start(&case);
        let dir = TempDir::new("refusal");
        let load = start_load(
            case.host,
            srv.addr,
            &dir,
            &["--cacert", p(&srv.ca_file), "-n", "5", "-c", "1"],
        );
        let code = if case.accepted() {
            EXIT_OK
        } else {
            EXIT_VERIFY
        };
        let (ran, doc) = finish(load, &dir, code, case.what);
        if case.accepted() {
            assert_eq!(doc["results"]["complete"], true, "{}", case.what);
            assert_eq!(count(&doc, "/results/counts/requests"), 5, "{}", case.what);
            continue;
        }
        let line = ran
            .stderr
            .lines()
            .find_map(|l| l.strip_prefix("tlsbench load: certificate refused: "))
            .unwrap_or_else(|| panic!("{}: no refusal line\n{}", case.what, ran.describe()));
        for fragment in case.says {
            assert!(
                line.contains(fragment),
                "{}: {fragment:?} not in {line:?}",
                case.what
            );
        }
        assert_eq!(doc["results"]["complete"], false, "{}", case.what);
        assert_eq!(doc["results"]["incomplete_reason"], line, "{}", case.what);
        assert_eq!(
            count(&doc, "/results/errors/cert_verify"),
            1,
            "{}",
            case.what
        );
        assert_eq!(errors_except(&doc, &["cert_verify"]), 0, "{}", case.what);
        assert_eq!(count(&doc, "/results/counts/requests"), 0, "{}", case.what);
    }
}
