//! `tlsbench load` as a child process under faults and bad certificates: its exit code (as
//! documented in `loadgen/src/cli.rs`: 3 finished but incomplete, 4 a certificate was
//! refused), its `--json` results written even when partial, and never a hang (every child is
//! waited for with a bound, then killed and the test failed).
//!
//! Faults: a server that accepts TCP but never answers TLS, one that resets mid-response, and
//! one replaced mid-run on the same port by a server with a chain from another CA. A server
//! killed mid-run is `tests/cli.rs` (`load_keeps_its_results_when_the_server_dies_mid_run`).
//! Refusals: the five cases of `loadgen/tests/support/refusals.rs` (wrong name, untrusted CA,
//! expired, not yet valid, missing intermediate) and the good chain; their messages and
//! curl's verdicts are checked in `loadgen/tests/cert_refusals.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../loadgen/tests/support/faulty.rs"]
mod faulty;
#[path = "../loadgen/tests/support/refusals.rs"]
mod refusals;
mod support;

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use common::certs::{self, ChainOptions, GeneratedChain, KeyType};
use faulty::{Cut, Tarpit, Truncating};
use support::{BIN, TempDir, p};

/// A load child must have exited this long after it was started, or it is killed.
const CHILD_LIMIT: Duration = Duration::from_secs(30);
/// `tlsbench load`'s exit codes (loadgen/src/cli.rs).
const EXIT_OK: i32 = 0;
const EXIT_INCOMPLETE: i32 = 3;
const EXIT_VERIFY: i32 = 4;

/// A running `tlsbench load`, killed and reaped on drop unless it has exited.
struct Load {
    child: Option<Child>,
    output: Receiver<(bool, String)>,
    started: Instant,
}

/// What a finished `tlsbench load` did.
struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    /// From spawn to exit.
    wall: Duration,
}

impl Ran {
    fn describe(&self) -> String {
        format!(
            "status {:?} after {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.wall, self.stdout, self.stderr
        )
    }
}

impl Load {
    /// `tlsbench load https://HOST:PORT/ --connect-to ADDR <args>`, output drained on threads.
    fn start(host: &str, addr: SocketAddr, args: &[&str]) -> Load {
        let [url, connect_to, dial] = faulty::target_flags(host, addr);
        let started = Instant::now();
        let mut child = Command::new(BIN)
            .args(["load", &url, &connect_to, &dial])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, output) = mpsc::channel();
        for (is_out, mut pipe) in [
            (
                true,
                Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            ),
            (false, Box::new(child.stderr.take().unwrap())),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut b = Vec::new();
                let _ = pipe.read_to_end(&mut b);
                let _ = tx.send((is_out, String::from_utf8_lossy(&b).into_owned()));
            });
        }
        Load {
            child: Some(child),
            output,
            started,
        }
    }

    /// Waits for the exit, bounded by [`CHILD_LIMIT`] from the start; past it the child is
    /// killed and the test fails.
    fn wait(mut self) -> Ran {
        let deadline = self.started + CHILD_LIMIT;
        let (mut stdout, mut stderr) = (None, None);
        while stdout.is_none() || stderr.is_none() {
            match self
                .output
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok((true, s)) => stdout = Some(s),
                Ok((false, s)) => stderr = Some(s),
                Err(_) => panic!("tlsbench load still running after {CHILD_LIMIT:?}; killed"),
            }
        }
        let child = self.child.as_mut().unwrap();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "tlsbench load closed its output but did not exit; killed"
            );
            std::thread::yield_now();
        };
        let wall = self.started.elapsed();
        self.child = None;
        Ran {
            status,
            stdout: stdout.unwrap(),
            stderr: stderr.unwrap(),
            wall,
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn good_chain() -> GeneratedChain {
    certs::generate(KeyType::EcdsaP256, &ChainOptions::default()).unwrap()
}

/// Writes `chain`'s root as `ca.pem` in `dir`.
fn ca_file(dir: &TempDir, chain: &GeneratedChain) -> PathBuf {
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, &chain.root_pem).unwrap();
    path
}

/// The `--json` results document; it must exist and parse.
fn results(path: &Path, ran: &Ran) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no results at {}: {e}\n{}", path.display(), ran.describe()));
    serde_json::from_str(&text).unwrap()
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
    let json = dir.path().join("results.json");
    let ran = Load::start(
        "bank32.com",
        tarpit.addr(),
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
            "-q",
            "--json",
            p(&json),
        ],
    )
    .wait();
    assert_eq!(
        ran.status.code(),
        Some(EXIT_INCOMPLETE),
        "{}",
        ran.describe()
    );
    // The deadline holds for the whole process: start-up, 2 s of load, results.
    assert!(ran.wall < Duration::from_secs(5), "{}", ran.describe());
    let doc = results(&json, &ran);
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
    let json = dir.path().join("results.json");
    let ran = Load::start(
        "bank32.com",
        srv.addr(),
        &[
            "--cacert",
            p(&ca),
            "-n",
            "3",
            "-c",
            "1",
            "-t",
            "1",
            "-q",
            "--json",
            p(&json),
        ],
    )
    .wait();
    assert_eq!(
        ran.status.code(),
        Some(EXIT_INCOMPLETE),
        "{}",
        ran.describe()
    );
    let doc = results(&json, &ran);
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
    let json = dir.path().join("results.json");
    let first = faulty::serve(&trusted, "127.0.0.1:0".parse().unwrap());
    let addr = first.local_addrs()[0];
    let load = Load::start(
        "bank32.com",
        addr,
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
            "-q",
            "--json",
            p(&json),
        ],
    );
    let stats = first.stats();
    let deadline = Instant::now() + Duration::from_secs(20);
    while stats.snapshot().requests_total() < 200 {
        assert!(
            Instant::now() < deadline,
            "no load reached the first server"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    first.shutdown_handle().force();
    let first = first.wait().unwrap();
    let second = faulty::serve(&good_chain(), addr);
    let ran = load.wait();
    second.shutdown_handle().force();
    let second = second.wait().unwrap();

    assert_eq!(ran.status.code(), Some(EXIT_VERIFY), "{}", ran.describe());
    let said = "tlsbench load: certificate refused: certificate chain of bank32.com is not \
                trusted by CA file ";
    assert!(ran.stderr.contains(said), "{}", ran.describe());
    let doc = results(&json, &ran);
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
        let json = dir.path().join("results.json");
        let ran = Load::start(
            case.host,
            srv.addr,
            &[
                "--cacert",
                p(&srv.ca_file),
                "-n",
                "5",
                "-c",
                "1",
                "-q",
                "--json",
                p(&json),
            ],
        )
        .wait();
        let doc = results(&json, &ran);
        if case.accepted() {
            assert_eq!(
                ran.status.code(),
                Some(EXIT_OK),
                "{}: {}",
                case.what,
                ran.describe()
            );
            assert_eq!(doc["results"]["complete"], true, "{}", case.what);
            assert_eq!(count(&doc, "/results/counts/requests"), 5, "{}", case.what);
            continue;
        }
        assert_eq!(
            ran.status.code(),
            Some(EXIT_VERIFY),
            "{}: {}",
            case.what,
            ran.describe()
        );
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
