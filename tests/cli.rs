//! The `tlsbench` binary as a child process: `tlsbench certs` (files, modes, idempotence,
//! bad names), `tlsbench server` refusing bad flags and world-readable keys, a clean exit
//! with the summary on SIGTERM under load and on SIGINT when idle, `tlsbench load` (its counts
//! agreeing with the server's, its CPU per operation plausible) and `tlsbench run`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use support::{
    EXIT_TIMEOUT, ONE_ROW_MATRIX, READY_TIMEOUT, Ran, ServerProc, TempDir, bin, client_config,
    drain, lines, make_certs, p, quick_run, read_hello, results_json, run_dir, scrape, server_in,
    spawn_guarded, text, tlsbench, wait_until, write_matrix,
};

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use server::http::Status;
use server::stats::FailureCause;
use test_support::binary as support;

const VALID_KEY_TYPES: &str = "rsa2048, rsa3072, rsa4096, ecdsa-p256, ecdsa-p384, ed25519";

fn count_certs(pem: &[u8]) -> usize {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
        .len()
}

#[test]
fn certs_writes_each_key_type_and_keeps_existing_files() {
    let tmp = TempDir::new("certs");
    let ran = make_certs(tmp.path(), "ecdsa-p256,ed25519");
    assert_eq!(
        ran.stdout.matches(" generated ").count(),
        2,
        "{}",
        ran.describe()
    );

    let mut before = Vec::new();
    for kt in ["ecdsa-p256", "ed25519"] {
        let dir = tmp.path().join(kt);
        let chain = std::fs::read(dir.join("chain.pem")).unwrap();
        let key = std::fs::read(dir.join("key.pem")).unwrap();
        let ca = std::fs::read(dir.join("ca.pem")).unwrap();
        assert_eq!(
            count_certs(&chain),
            2,
            "{kt}: chain.pem is leaf + intermediate"
        );
        assert_eq!(count_certs(&ca), 1, "{kt}: ca.pem is the root alone");
        assert!(
            String::from_utf8_lossy(&key).starts_with("-----BEGIN PRIVATE KEY-----"),
            "{kt}: key.pem is PKCS#8 PEM"
        );
        let mode = std::fs::metadata(dir.join("key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{kt}: key.pem mode {mode:o}");
        // The mutual-TLS identity beside the chain: its own CA, one certificate, a private key.
        let client = std::fs::read(dir.join("client.pem")).unwrap();
        assert_eq!(count_certs(&client), 1, "{kt}: client.pem");
        assert_eq!(
            count_certs(&std::fs::read(dir.join("client-ca.pem")).unwrap()),
            1
        );
        assert_ne!(
            std::fs::read(dir.join("client-ca.pem")).unwrap(),
            ca,
            "{kt}: its own CA"
        );
        let mode = std::fs::metadata(dir.join("client-key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{kt}: client-key.pem mode {mode:o}");
        before.push((chain, key, ca));
    }
    // Only the types asked for.
    assert!(!tmp.path().join("rsa2048").exists());

    let ran = make_certs(tmp.path(), "ecdsa-p256,ed25519");
    assert_eq!(
        ran.stdout.matches(" kept ").count(),
        2,
        "{}",
        ran.describe()
    );
    assert!(!ran.stdout.contains("generated"), "{}", ran.describe());
    for (kt, (chain, key, ca)) in ["ecdsa-p256", "ed25519"].into_iter().zip(&before) {
        let dir = tmp.path().join(kt);
        assert_eq!(
            &std::fs::read(dir.join("chain.pem")).unwrap(),
            chain,
            "{kt}"
        );
        assert_eq!(&std::fs::read(dir.join("key.pem")).unwrap(), key, "{kt}");
        assert_eq!(&std::fs::read(dir.join("ca.pem")).unwrap(), ca, "{kt}");
    }
}

#[test]
fn certs_rejects_an_unknown_key_type_and_lists_the_valid_ones() {
    let tmp = TempDir::new("bogus");
    let ran = tlsbench(&["certs", "--out", p(tmp.path()), "--key-type", "bogus"]);
    assert_eq!(ran.status.code(), Some(1), "{}", ran.describe());
    assert!(ran.stderr.contains("\"bogus\""), "{}", ran.describe());
    assert!(ran.stderr.contains(VALID_KEY_TYPES), "{}", ran.describe());
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

/// `tlsbench server` with `args` must exit by itself with status 1 and say `want` on stderr.
fn server_refuses(args: &[&str], want: &[&str]) {
    let tmp = TempDir::new("refuse");
    let certs = tmp.path().join("certs");
    let mut all = vec!["server", "--listen", "127.0.0.1:0", "--threads", "1"];
    if !args.contains(&"--cert") {
        all.extend(["--certs-dir", p(&certs)]);
    }
    all.extend(args);
    let ran = tlsbench(&all);
    assert_eq!(ran.status.code(), Some(1), "{}", ran.describe());
    for w in want {
        assert!(ran.stderr.contains(w), "expected {w:?}: {}", ran.describe());
    }
    assert!(!ran.stdout.contains("listening"), "{}", ran.describe());
}

#[test]
fn server_rejects_an_unknown_cipher_suite_and_lists_the_valid_ones() {
    server_refuses(
        &["--cipher-suites", "NOPE"],
        &[
            "unknown cipher suite 'NOPE'",
            "TLS_AES_128_GCM_SHA256",
            "TLS_AES_256_GCM_SHA384",
            "TLS_CHACHA20_POLY1305_SHA256",
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        ],
    );
}

#[test]
fn server_rejects_an_unknown_kx_group_and_lists_the_valid_ones() {
    server_refuses(
        &["--kx-groups", "NOPE"],
        &[
            "unknown key-exchange group 'NOPE'",
            "X25519MLKEM768",
            "X25519",
            "secp256r1",
        ],
    );
}

#[test]
fn server_refuses_a_world_readable_key() {
    let tmp = TempDir::new("wr-key");
    make_certs(tmp.path(), "ecdsa-p256");
    let dir = tmp.path().join("ecdsa-p256");
    let key = tmp.path().join("open-key.pem");
    std::fs::copy(dir.join("key.pem"), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let chain = dir.join("chain.pem");
    let fix = format!("chmod 600 {}", p(&key));
    server_refuses(
        &["--cert", p(&chain), "--key", p(&key)],
        &["refusing to load private key", "0644", &fix],
    );
}

/// The count of the summary's `  requests: N (...)` line.
fn summary_requests(stdout: &str) -> u64 {
    let line = stdout
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("requests: "))
        .unwrap_or_else(|| panic!("no requests line in:\n{stdout}"));
    line.split_whitespace().next().unwrap().parse().unwrap()
}

/// One load client: a verified keep-alive connection, requests until the first error, at most
/// 2,000 of them or 20 s. Counts fully received responses in `done`.
fn load_client(
    addr: SocketAddr,
    cfg: Arc<ClientConfig>,
    done: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> (u64, Option<String>) {
    let mut mine = 0u64;
    let result = (|| -> Result<(), String> {
        let name = ServerName::try_from("bank32.com").unwrap();
        let conn = ClientConnection::new(cfg, name).map_err(|e| e.to_string())?;
        let sock = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        sock.set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut tls = StreamOwned::new(conn, sock);
        let deadline = Instant::now() + Duration::from_secs(20);
        for _ in 0..2_000 {
            if Instant::now() >= deadline || stop.load(Ordering::Relaxed) {
                break;
            }
            tls.write_all(b"GET / HTTP/1.1\r\nHost: bank32.com\r\n\r\n")
                .map_err(|e| format!("write: {e}"))?;
            tls.flush().map_err(|e| format!("flush: {e}"))?;
            read_hello(&mut tls).map_err(|e| format!("read: {e}"))?;
            mine += 1;
            done.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    })();
    (mine, result.err())
}

/// The stdout of a two-worker server that exited on a signal, after checking that it exited
/// with 0, printed its summary and said on stderr that it was shutting down.
fn exited_cleanly(srv: &ServerProc, status: ExitStatus) -> String {
    let stdout = srv.stdout_text();
    let stderr = text(&srv.stderr);
    assert_eq!(
        status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("tlsbench server summary (2 workers,"),
        "{stdout}"
    );
    assert!(
        stderr.contains("tlsbench server: shutting down"),
        "{stderr}"
    );
    stdout
}

#[test]
fn server_exits_cleanly_on_sigterm_under_load() {
    const CLIENTS: usize = 4;
    let tmp = TempDir::new("sigterm");
    make_certs(&tmp.path().join("certs"), "ecdsa-p256");
    let (mut srv, addr, admin) = server_in(tmp.path(), &["--threads", "2"]);
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");

    let cfg = client_config(&tmp.path().join("certs/ecdsa-p256/ca.pem"));
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (cfg, done, stop) = (Arc::clone(&cfg), Arc::clone(&done), Arc::clone(&stop));
            let errors = Arc::clone(&errors);
            std::thread::spawn(move || {
                let (n, err) = load_client(addr, cfg, done, stop);
                if let Some(e) = &err {
                    errors.lock().unwrap().push(e.clone());
                }
                (n, err)
            })
        })
        .collect();
    // Stops the clients if an assertion below fails.
    struct StopOnDrop(Arc<AtomicBool>);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let _stop_clients = StopOnDrop(Arc::clone(&stop));

    // At least 50 responses in all, and every client's handshake done (one full TLS 1.3
    // handshake each: rustls sends an X25519MLKEM768 key share, the server's first choice).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n = done.load(Ordering::SeqCst);
        let metrics = scrape(admin);
        if n >= 50 && metrics.handshakes_of("1.3", "full") == CLIENTS as u64 {
            break;
        }
        let errors = errors.lock().unwrap().clone();
        assert!(
            errors.is_empty(),
            "client errors before the signal: {errors:?}"
        );
        assert!(
            Instant::now() < deadline,
            "only {n} responses within 20 s; metrics:\n{}",
            metrics.summary()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let metrics = scrape(admin);
    let summary = metrics.summary();
    assert_eq!(
        metrics.handshakes_of("1.3", "full"),
        CLIENTS as u64,
        "{summary}"
    );
    assert_eq!(metrics.failures_of(FailureCause::Eof), 0, "{summary}");

    let status = srv.signal_and_wait(libc::SIGTERM, Duration::from_secs(15));
    let results: Vec<(u64, Option<String>)> =
        clients.into_iter().map(|c| c.join().unwrap()).collect();
    let received: u64 = results.iter().map(|r| r.0).sum();
    assert_eq!(received, done.load(Ordering::SeqCst));

    let stdout = exited_cleanly(&srv, status);
    assert!(
        stdout.contains("TLS 1.3 handshakes: 4 full, 0 resumed, 0 full with HRR"),
        "{stdout}"
    );
    assert!(stdout.contains("handshake failures: 0"), "{stdout}");
    let requests = summary_requests(&stdout);
    // Each client has at most one request in flight: served but not fully received.
    assert!(
        requests >= received && requests <= received + CLIENTS as u64,
        "server counted {requests} requests, clients received {received}; clients: {results:?}\n{stdout}"
    );
}

#[test]
fn server_exits_promptly_on_sigint_when_idle() {
    let tmp = TempDir::new("sigint");
    make_certs(tmp.path(), "ecdsa-p256");
    let mut srv = ServerProc::start(&[
        "--listen",
        "127.0.0.1:0",
        "--threads",
        "2",
        "--certs-dir",
        p(tmp.path()),
    ]);
    let addr = srv.addr_after("tlsbench server listening on https://");
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");

    // A server that missed the signal never exits; one that exits does so in milliseconds. A
    // bound is only a hang detector here, so it is the generous one every child gets.
    let status = srv.signal_and_wait(libc::SIGINT, EXIT_TIMEOUT);
    let stdout = exited_cleanly(&srv, status);
    assert_eq!(summary_requests(&stdout), 0, "{stdout}");
    assert!(
        stdout.contains("connections: 0 accepted, 0 closed"),
        "{stdout}"
    );
}

#[test]
fn server_exits_on_sigterm_when_its_stderr_is_gone() {
    // What a runner killed with SIGKILL leaves behind: its server child gets SIGTERM (from
    // PR_SET_PDEATHSIG) with nobody reading its stderr. Writing the shutdown notice must not
    // stop the shutdown.
    let tmp = TempDir::new("sigterm-no-stderr");
    make_certs(tmp.path(), "ecdsa-p256");
    let (stderr_reader, stderr_writer) = std::io::pipe().unwrap();
    let mut cmd = Command::new(bin());
    cmd.args(["server", "--listen", "127.0.0.1:0", "--threads", "1"])
        .args(["--certs-dir", p(tmp.path())])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr_writer);
    let mut guard = support::ChildGuard(Some(cmd.spawn().unwrap()));
    drop(cmd);
    let lines = lines(guard.child().stdout.take().unwrap());
    let deadline = Instant::now() + EXIT_TIMEOUT;
    loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the server's listening line");
        if line.contains("tlsbench server listening on https://") {
            break;
        }
    }
    drop(stderr_reader);
    guard.signal(libc::SIGTERM);
    // Its stdout closes when it exits; a server whose shutdown died with the notice never does.
    loop {
        match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(_) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("the server did not exit on SIGTERM with its stderr closed")
            }
        }
    }
    let status = guard.wait_until(deadline).expect("exited");
    assert_eq!(status.code(), Some(0));
}

/// A server child with its certificates, for `tlsbench load` runs.
struct LoadTarget {
    server: ServerProc,
    addr: SocketAddr,
    admin: SocketAddr,
    ca: PathBuf,
    _dir: TempDir,
}

fn load_target() -> LoadTarget {
    let dir = TempDir::new("load");
    make_certs(&dir.path().join("certs"), "ecdsa-p256");
    let (server, addr, admin) = server_in(dir.path(), &[]);
    let ca = dir.path().join("certs/ecdsa-p256/ca.pem");
    LoadTarget {
        server,
        addr,
        admin,
        ca,
        _dir: dir,
    }
}

impl LoadTarget {
    /// `tlsbench load https://HOST:PORT/ --connect-to ADDR`: trusting the platform's roots
    /// only, to add flags to.
    fn load_command_without_ca(&self, host: &str) -> Command {
        let mut cmd = Command::new(bin());
        cmd.arg("load")
            .arg(format!("https://{host}:{}/", self.addr.port()))
            .args(["--connect-to", &self.addr.to_string()]);
        cmd
    }

    /// [`Self::load_command_without_ca`] trusting the server's CA (`--cacert CA`).
    fn load_command(&self, host: &str) -> Command {
        let mut cmd = self.load_command_without_ca(host);
        cmd.args(["--cacert", p(&self.ca)]);
        cmd
    }

    /// [`Self::load_command`] with `args`, run to the end (bounded by [`EXIT_TIMEOUT`]).
    fn load(&self, host: &str, args: &[&str]) -> Ran {
        let mut cmd = self.load_command(host);
        cmd.args(args);
        support::process::run_bounded(cmd, EXIT_TIMEOUT)
    }

    /// [`Self::load_command_without_ca`] with `args`, run to the end (bounded by
    /// [`EXIT_TIMEOUT`]).
    fn load_without_ca(&self, host: &str, args: &[&str]) -> Ran {
        let mut cmd = self.load_command_without_ca(host);
        cmd.args(args);
        support::process::run_bounded(cmd, EXIT_TIMEOUT)
    }
}

#[test]
fn load_one_shot_verbose_shows_chain_parameters_and_response() {
    let t = load_target();
    let ran = t.load("bank32.com", &["-n", "1", "-v"]);
    assert_eq!(ran.status.code(), Some(0), "{}", ran.describe());
    for want in [
        "[0] leaf: subject O=Bank32 Inc., CN=bank32.com",
        "issuer  O=Model CA, CN=Model CA Intermediate",
        "[1] intermediate: subject O=Model CA, CN=Model CA Intermediate",
        "verdict: chain verified to a trusted root; name bank32.com matches",
        "negotiated: TLSv1_3, ",
        "handshake bytes: ",
        " server→client, ",
        "certificate compression: none (offered: off)",
        "HTTP/1.1 200 OK",
    ] {
        assert!(
            ran.stdout.contains(want),
            "missing {want:?}:\n{}",
            ran.stdout
        );
    }
    assert!(
        ran.stdout
            .contains(std::str::from_utf8(server::http::HELLO_PAGE).unwrap())
    );
}

#[test]
fn load_refuses_a_wrong_name_with_the_names_and_exit_4() {
    let t = load_target();
    let ran = t.load("evil.example", &["-n", "5", "-q"]);
    assert_eq!(ran.status.code(), Some(4), "{}", ran.describe());
    assert!(
        ran.stderr.contains("not valid for the name evil.example")
            && ran.stderr.contains("bank32.com, localhost, 127.0.0.1, ::1"),
        "{}",
        ran.describe()
    );
    // Without --cacert the platform roots do not know Model CA: refused as untrusted.
    let ran = t.load_without_ca("bank32.com", &["-n", "5", "-q"]);
    assert_eq!(ran.status.code(), Some(4), "{}", ran.describe());
    assert!(ran.stderr.contains("not trusted"), "{}", ran.describe());
    // --insecure connects, says so loudly, and records it.
    let json = t._dir.path().join("insecure.json");
    let ran = t.load_without_ca(
        "evil.example",
        &["--insecure", "-n", "5", "-q", "--json", p(&json)],
    );
    assert_eq!(ran.status.code(), Some(0), "{}", ran.describe());
    assert!(
        ran.stderr.contains("will NOT be verified"),
        "{}",
        ran.describe()
    );
    assert!(
        ran.stdout.contains("WARNING: INSECURE"),
        "{}",
        ran.describe()
    );
    let doc = std::fs::read_to_string(&json).unwrap();
    assert!(doc.contains("\"insecure\": true"), "{doc}");
}

#[test]
fn load_keeps_its_results_when_the_server_dies_mid_run() {
    let t = load_target();
    let json = t._dir.path().join("partial.json");
    let mut load = spawn_guarded(
        t.load_command("bank32.com").args([
            "-c",
            "2",
            "-t",
            "1",
            "-d",
            "3s",
            "-q",
            "--json",
            p(&json),
        ]),
        Stdio::null(),
    );
    let (stdout, _) = drain(load.child().stdout.take().unwrap());
    let (stderr, _) = drain(load.child().stderr.take().unwrap());
    // Let it measure something, then kill the server outright.
    let deadline = Instant::now() + EXIT_TIMEOUT;
    while scrape(t.admin).requests_of(Status::Ok) < 200 {
        assert!(Instant::now() < deadline, "no load reached the server");
        std::thread::yield_now();
    }
    t.server.guard.signal(libc::SIGKILL);
    let status = load
        .wait_until(Instant::now() + EXIT_TIMEOUT)
        .expect("the load generator honours its deadline after the server died");
    assert_eq!(
        status.code(),
        Some(3),
        "stdout:\n{}\nstderr:\n{}",
        text(&stdout),
        text(&stderr)
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["results"]["complete"], false);
    assert!(
        doc["results"]["counts"]["requests"].as_u64().unwrap() >= 200,
        "{doc}"
    );
    let errors = &doc["results"]["errors"];
    assert!(
        errors["refused"].as_u64().unwrap()
            + errors["reset"].as_u64().unwrap()
            + errors["short_body"].as_u64().unwrap()
            > 0,
        "{errors}"
    );
}

#[test]
fn load_writes_an_hdr_interval_log_that_hdrhistogram_reads() {
    let t = load_target();
    let log = t._dir.path().join("latency.hlog");
    let ran = t.load(
        "bank32.com",
        &[
            "-c",
            "2",
            "-d",
            "1500ms",
            "--interval",
            "500ms",
            "-q",
            "--hdr-log",
            p(&log),
        ],
    );
    assert_eq!(ran.status.code(), Some(0), "{}", ran.describe());
    let bytes = std::fs::read(&log).unwrap();
    let mut intervals = 0;
    let mut total = 0;
    for entry in hdrhistogram::serialization::interval_log::IntervalLogIterator::new(&bytes) {
        if let hdrhistogram::serialization::interval_log::LogEntry::Interval(h) = entry.unwrap() {
            let hist: hdrhistogram::Histogram<u64> =
                hdrhistogram::serialization::Deserializer::new()
                    .deserialize(&mut std::io::Cursor::new(base64_decode(
                        h.encoded_histogram(),
                    )))
                    .unwrap();
            intervals += 1;
            total += hist.len();
        }
    }
    assert!(
        intervals >= 3,
        "{intervals} intervals in:\n{}",
        String::from_utf8_lossy(&bytes)
    );
    let requests: u64 = ran
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("requests: "))
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        total, requests,
        "every measured request is in exactly one interval"
    );
}

/// The most cores a side's CPU time may add up to: its measured window has edges (a worker
/// starts its CPU clock a little before the first operation and stops it a little after the
/// last), worth a few percent of a one-second window.
const CORES_SLACK: f64 = 1.05;

/// Fails unless `cpu_us_per_op` is plausible for a side with `cores` cores doing `rate`
/// operations a second: positive (every operation costs CPU) and, multiplied by the rate, no
/// more than the side's cores. An inflated CPU time, or one divided by too few operations,
/// claims more cores than the side had.
fn assert_cpu_plausible(what: &str, rate: f64, cpu_us_per_op: f64, cores: f64) {
    assert!(
        rate > 0.0 && cpu_us_per_op > 0.0,
        "{what}: rate {rate}, CPU {cpu_us_per_op} µs/op"
    );
    let used = rate * cpu_us_per_op / 1e6;
    assert!(
        used <= cores * CORES_SLACK,
        "{what}: {rate:.1} ops/s × {cpu_us_per_op:.1} µs/op = {used:.2} cores, but the side had {cores}"
    );
}

/// Fails unless the server counted `server` of what the generator counted `client` of: at
/// least as many, and at most `in_flight` more (one per connection, in flight at the deadline).
fn assert_counts_agree(what: &str, server: u64, client: u64, in_flight: u64) {
    assert!(
        (client..=client + in_flight).contains(&server),
        "{what}: the server counted {server}, the generator {client} (+ at most {in_flight} in flight)"
    );
}

#[test]
#[should_panic(expected = "cores, but the side had 2")]
fn cpu_per_operation_claiming_more_cores_than_the_side_had_fails() {
    // 1,000 operations a second at 2,500 µs each is 2.5 cores.
    assert_cpu_plausible("inflated", 1000.0, 2500.0, 2.0);
}

#[test]
#[should_panic(expected = "CPU 0 µs/op")]
fn cpu_per_operation_of_zero_fails() {
    assert_cpu_plausible("free", 1000.0, 0.0, 2.0);
}

#[test]
fn server_counts_outside_the_generators_plus_in_flight_fail() {
    assert_counts_agree("exact", 100, 100, 4);
    assert_counts_agree("in flight", 104, 100, 4);
    for server in [99, 105] {
        let failed = std::panic::catch_unwind(|| assert_counts_agree("off", server, 100, 4));
        assert!(failed.is_err(), "{server} of 100 passed");
    }
}

/// `tlsbench load` against our server, a connection per request: the server counted what the
/// generator counted (no more than one operation per connection more: those in flight at the
/// deadline, which the server finished and the generator abandoned), and the generator's CPU
/// per handshake and per request adds up to no more cores than its threads could use.
#[test]
fn load_counts_agree_with_the_server_and_its_cpu_per_operation_is_plausible() {
    const CONNECTIONS: u64 = 4;
    const THREADS: u64 = 2;
    let t = load_target();
    let before = scrape(t.admin);
    let json = t._dir.path().join("counts.json");
    let ran = t.load(
        "bank32.com",
        &[
            "-c",
            &CONNECTIONS.to_string(),
            "-t",
            &THREADS.to_string(),
            "-d",
            "1s",
            "--warmup",
            "0s",
            "--new-conn",
            "--tls",
            "1.3",
            "-q",
            "--json",
            p(&json),
        ],
    );
    assert_eq!(ran.status.code(), Some(0), "{}", ran.describe());
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let res = &doc["results"];
    let num = |v: &serde_json::Value| v.as_u64().unwrap_or_else(|| panic!("{v} in {res}"));
    let counts = &res["counts"];
    let handshakes = num(&counts["full"]) + num(&counts["resumed"]) + num(&counts["full_hrr"]);
    let requests = num(&counts["requests"]);
    assert!(handshakes > 0 && requests > 0, "{counts}");
    assert_eq!(
        res["errors"]
            .as_object()
            .unwrap()
            .values()
            .map(num)
            .sum::<u64>(),
        0,
        "{res}"
    );

    // The server finishes a TLS 1.3 handshake when the client's Finished arrives, after the
    // client counted it: wait (bounded) until it has counted at least what the client saw.
    let server_handshakes = || scrape(t.admin).handshakes_total() - before.handshakes_total();
    let server_requests =
        || scrape(t.admin).requests_of(Status::Ok) - before.requests_of(Status::Ok);
    wait_until(EXIT_TIMEOUT, || {
        server_handshakes() >= handshakes && server_requests() >= requests
    });
    assert_counts_agree("handshakes", server_handshakes(), handshakes, CONNECTIONS);
    assert_counts_agree("requests", server_requests(), requests, CONNECTIONS);

    let cpu = &res["cpu"];
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or_else(|| panic!("{v} in {res}"));
    let cores = (THREADS as f64).min(f(&doc["machine"]["logical_cpus"]));
    assert_cpu_plausible(
        "generator per handshake",
        f(&res["handshakes_per_s"]),
        f(&cpu["us_per_handshake"]),
        cores,
    );
    assert_cpu_plausible(
        "generator per request",
        f(&res["requests_per_s"]),
        f(&cpu["us_per_request"]),
        cores,
    );
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

/// The one-row matrix and three more rows: a resumed handshake, keep-alive requests and a
/// download.
fn mini_matrix() -> String {
    format!("{ONE_ROW_MATRIX}\n{MORE_ROWS}")
}

const MORE_ROWS: &str = r#"
[[scenario]]
name = "resumed tls1.3 tickets"
kind = "handshake"
tls = "1.3"
kx_groups = ["X25519"]
server_resumption = "tickets"
resume = "ticket"

[[scenario]]
name = "keep-alive hello"
kind = "requests"
tls = "1.3"

[[scenario]]
name = "download tls1.3 aes-128-gcm"
kind = "throughput"
tls = "1.3"
cipher_suites = ["TLS_AES_128_GCM_SHA256"]
download = 65536
connections = 2
"#;

/// Server processes started for a certificates directory: none may outlive a run.
fn servers_using(certs: &Path) -> Vec<String> {
    let needle = p(certs);
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let pid = e.ok()?.file_name().into_string().ok()?;
            pid.parse::<u32>().ok()?;
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            (cmd.contains(" server ") && cmd.contains(needle)).then_some(cmd)
        })
        .collect()
}

/// Fails if a server process started for `certs` outlived the run.
fn assert_no_server_left(certs: &Path) {
    let left = servers_using(certs);
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn run_writes_results_table_and_charts_and_compare_gates() {
    let dir = TempDir::new("run");
    make_certs(dir.path(), "ecdsa-p256");
    let matrix = write_matrix(dir.path(), "mini.toml", &mini_matrix());
    let out = dir.path().join("results");
    let ran = tlsbench(&quick_run(&matrix, &out, &["--certs-dir", p(dir.path())]));
    assert_eq!(ran.status.code(), Some(0), "{}", ran.describe());
    assert!(
        ran.stdout.contains("| scenario | rate |"),
        "{}",
        ran.describe()
    );
    let run_dir = run_dir(&out);
    for f in [
        "results.json",
        "summary.md",
        "handshakes.svg",
        "latency.svg",
        "throughput.svg",
    ] {
        assert!(
            run_dir.join(f).exists(),
            "{f} missing in {}",
            run_dir.display()
        );
    }
    let doc = results_json(&run_dir);
    let rows = doc["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert!(doc["incomplete"].is_null());
    // Each side may use the CPUs it was pinned to, or every CPU when it was not pinned.
    let cores = |key: &str| match doc[key].as_array().unwrap().len() {
        0 => doc["environment"]["logical_cpus"].as_f64().unwrap(),
        pinned => pinned as f64,
    };
    let (server_cores, client_cores) = (cores("server_cpus"), cores("client_cpus"));
    for row in rows {
        let name = row["name"].as_str().unwrap();
        // The smallest rate × the smallest CPU/op is at most any one repeat's product: if
        // even it claims too many cores, every repeat did.
        let least = |v: &serde_json::Value| {
            v["min"]
                .as_f64()
                .unwrap_or_else(|| panic!("{name}: {v} in {row}"))
        };
        let rate = least(&row["rate"]);
        assert_cpu_plausible(
            &format!("{name}: server"),
            rate,
            least(&row["server_cpu_us"]),
            server_cores,
        );
        assert_cpu_plausible(
            &format!("{name}: client"),
            rate,
            least(&row["client_cpu_us"]),
            client_cores,
        );
        assert_eq!(row["errors"], 0);
    }
    assert!(
        rows[1]["resumed_share"].as_f64().unwrap() >= 0.99,
        "{}",
        rows[1]
    );
    assert_eq!(rows[0]["resumed_share"].as_f64().unwrap(), 0.0);
    assert_no_server_left(dir.path());

    // compare: identical inputs pass; the same file against itself is no regression.
    let results = run_dir.join("results.json");
    let same = tlsbench(&["compare", p(&results), p(&results)]);
    assert_eq!(same.status.code(), Some(0), "{}", same.describe());
    // A synthetic regression: the first row's server CPU up by half.
    let mut worse = doc.clone();
    for k in ["median", "min", "max"] {
        let v = worse["rows"][0]["server_cpu_us"][k].as_f64().unwrap();
        worse["rows"][0]["server_cpu_us"][k] = serde_json::json!(v * 1.5);
    }
    let worse_file = dir.path().join("worse.json");
    std::fs::write(&worse_file, serde_json::to_string(&worse).unwrap()).unwrap();
    let gate = tlsbench(&[
        "compare",
        p(&results),
        p(&worse_file),
        "--threshold",
        "10%",
        "--markdown",
    ]);
    assert_eq!(gate.status.code(), Some(1), "{}", gate.describe());
    assert!(
        gate.stdout.contains(rows[0]["name"].as_str().unwrap()),
        "{}",
        gate.describe()
    );
}

const FLOOR_MATRIX: &str = r#"
[defaults]
connections = 4
quick_duration = "1s"
quick_warmup = "200ms"

[[scenario]]
name = "full tls1.3"
kind = "handshake"
tls = "1.3"
server_resumption = "off"

[[scenario]]
name = "keep-alive tls1.3"
kind = "requests"
tls = "1.3"

[[scenario]]
name = "download tls1.3 64k"
kind = "throughput"
tls = "1.3"
download = 65536
connections = 2

[[scenario]]
name = "floor: new connection, plain HTTP"
kind = "handshake"
tls = "none"

[[scenario]]
name = "floor: keep-alive plain"
kind = "requests"
tls = "none"
"#;

#[test]
fn run_measures_the_tcp_floor_and_each_tls_rows_cost_over_it() {
    let dir = TempDir::new("run-floor");
    make_certs(dir.path(), "ecdsa-p256");
    let matrix = write_matrix(dir.path(), "floor.toml", FLOOR_MATRIX);
    let out = dir.path().join("results");
    // Five rows, each with its own server: bounded well above their ~10 s, since other
    // tests share the machine's cores.
    let ran = support::tlsbench_within(
        &quick_run(&matrix, &out, &["--certs-dir", p(dir.path())]),
        Duration::from_secs(120),
    );
    assert_eq!(ran.status.code(), Some(0), "{}", ran.describe());
    assert!(
        ran.stdout.contains("| TLS cost µs/op |"),
        "{}",
        ran.describe()
    );
    let run_dir = run_dir(&out);
    let doc = results_json(&run_dir);
    assert!(doc["incomplete"].is_null(), "{}", doc["incomplete"]);
    let rows = doc["rows"].as_array().unwrap();
    let row = |name: &str| rows.iter().find(|r| r["name"] == name).unwrap();
    let server_cpu = |name: &str| row(name)["server_cpu_us"]["median"].as_f64().unwrap();
    for floor in [
        "floor: new connection, plain HTTP",
        "floor: keep-alive plain",
    ] {
        let f = row(floor);
        assert!(server_cpu(floor) > 0.0, "{f}");
        assert!(f["tls_cost"].is_null(), "{f}");
        let handshakes: u64 = f["handshakes"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(handshakes, 0, "{f}");
        assert!(f["rate"]["median"].as_f64().unwrap() > 0.0, "{f}");
    }
    for (tls, floor) in [
        ("full tls1.3", "floor: new connection, plain HTTP"),
        ("keep-alive tls1.3", "floor: keep-alive plain"),
    ] {
        let cost = &row(tls)["tls_cost"];
        assert_eq!(cost["floor"], floor, "{cost}");
        let us = cost["us"].as_f64().unwrap();
        assert!(
            (us - (server_cpu(tls) - server_cpu(floor))).abs() < 1e-9,
            "{tls}: {cost}"
        );
    }
    // No plain download row in this matrix: no figure, and the reason.
    let none = &row("download tls1.3 64k")["tls_cost"];
    assert!(none["us"].is_null(), "{none}");
    assert!(
        none["missing"]
            .as_str()
            .unwrap()
            .contains("download 65536 bytes"),
        "{none}"
    );
    assert_no_server_left(dir.path());
}

#[test]
fn run_interrupted_keeps_rows_and_leaves_no_server() {
    let dir = TempDir::new("run-int");
    make_certs(dir.path(), "ecdsa-p256");
    let matrix = write_matrix(dir.path(), "mini.toml", &mini_matrix());
    let out = dir.path().join("results");
    let mut run = spawn_guarded(
        Command::new(bin()).args(quick_run(&matrix, &out, &["--certs-dir", p(dir.path())])),
        Stdio::null(),
    );
    let (stderr, _) = drain(run.child().stderr.take().unwrap());
    let rx = lines(run.child().stdout.take().unwrap());
    // The first row is printed as soon as it is measured; interrupt during the second. The
    // bound covers the server's start, the row's probe and its window on a loaded machine.
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no first row; stderr:\n{}", text(&stderr)));
        if line.contains("full tls1.3 x25519 ecdsa-p256") {
            break;
        }
    }
    run.signal(libc::SIGINT);
    let status = run
        .wait_until(Instant::now() + EXIT_TIMEOUT)
        .expect("run exits after Ctrl-C");
    assert_eq!(status.code(), Some(3), "stderr:\n{}", text(&stderr));
    let run_dir = run_dir(&out);
    let doc = results_json(&run_dir);
    assert_eq!(doc["incomplete"], "interrupted");
    let rows = doc["rows"].as_array().unwrap();
    assert!(!rows.is_empty() && rows.len() < 4, "{} rows", rows.len());
    assert_eq!(rows[0]["name"], "full tls1.3 x25519 ecdsa-p256");
    assert_no_server_left(dir.path());
}

#[test]
fn run_against_an_external_target_reports_client_side_only() {
    let t = load_target();
    // The matrix's server fields do not apply to a server we did not start.
    let keep_alive_only = mini_matrix()
        .split("[[scenario]]")
        .filter(|part| part.contains("keep-alive hello") || part.contains("[defaults]"))
        .collect::<Vec<_>>()
        .join("[[scenario]]");
    let matrix = write_matrix(t._dir.path(), "target.toml", &keep_alive_only);
    let out = t._dir.path().join("results");
    let url = format!("https://bank32.com:{}/", t.addr.port());
    let ran = tlsbench(&quick_run(
        &matrix,
        &out,
        &[
            "--target",
            &url,
            "--connect-to",
            &t.addr.to_string(),
            "--cacert",
            p(&t.ca),
        ],
    ));
    assert_eq!(ran.status.code(), Some(0), "{}", ran.describe());
    assert!(ran.stdout.contains("- (not ours)"), "{}", ran.describe());
    let run_dir = run_dir(&out);
    let doc = results_json(&run_dir);
    assert_eq!(doc["target"], url.as_str());
    let rows = doc["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0]["server_cpu_us"].is_null());
    assert!(rows[0]["rate"]["median"].as_f64().unwrap() > 0.0);
}

#[test]
fn run_refuses_a_floor_row_against_an_external_target() {
    let dir = TempDir::new("run-floor-target");
    // Only the floor row: it is refused before any load is sent, so no server is needed.
    let floor_only = FLOOR_MATRIX
        .split("[[scenario]]")
        .filter(|part| part.contains("floor: keep-alive plain") || part.contains("[defaults]"))
        .collect::<Vec<_>>()
        .join("[[scenario]]");
    let matrix = write_matrix(dir.path(), "floor.toml", &floor_only);
    let out = dir.path().join("results");
    let ran = tlsbench(&quick_run(
        &matrix,
        &out,
        &["--target", "https://127.0.0.1:9/"],
    ));
    assert_eq!(ran.status.code(), Some(3), "{}", ran.describe());
    assert!(
        ran.stderr.contains("'floor: keep-alive plain'")
            && ran.stderr.contains("needs the local server"),
        "{}",
        ran.describe()
    );
}
