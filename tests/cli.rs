//! The `tlsbench` binary as a child process, its certificates and server side: `tlsbench
//! certs` (files, modes, idempotence, bad names), `tlsbench server` refusing bad flags and
//! world-readable keys, and a clean exit with the summary on SIGTERM under load and on SIGINT
//! when idle. `tlsbench load` is in tests/load.rs, `tlsbench run` in tests/run.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use support::{
    EXIT_TIMEOUT, ServerProc, TempDir, bin, client_config, lines, make_certs, p, read_hello,
    scrape, server_in, text, tlsbench,
};

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, StreamOwned};
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
