//! Real TLS clients (curl and `openssl s_client`, run as child processes) against an
//! in-process server: verification, names, trust, uploads and downloads, and session
//! resumption (TLS 1.2 session IDs, TLS 1.3 stateless and stateful tickets, resumption off),
//! each checked against the server's exact counters.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::certs::{CertPaths, KeyType};
use server::stats::{EarlyData, FailureCause};
use server::{Resumption, Server, Settings, Snapshot, TlsOptions};
use test_support::loopback as support;

/// How long one client process may run before it is killed and the test fails.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the server's counters may take to settle after the clients are done.
const SETTLE: Duration = Duration::from_secs(10);
/// The TLS alert `unknown_ca`.
const ALERT_UNKNOWN_CA: usize = 48;

/// A server running in this process, force-stopped on drop so a failed assertion leaves no
/// worker threads behind.
struct Running(Option<Server>);

impl Running {
    fn new(opts: &TlsOptions) -> Running {
        Running(Some(support::start(
            KeyType::EcdsaP256,
            opts,
            Settings::default(),
            1,
        )))
    }

    fn server(&self) -> &Server {
        self.0.as_ref().unwrap()
    }

    fn addr(&self) -> SocketAddr {
        self.server().local_addrs()[0]
    }

    fn port(&self) -> u16 {
        self.addr().port()
    }

    /// Waits until exactly `conns` connections were accepted and all of them closed, so every
    /// counter of those connections is final, and returns the counters.
    fn settled(&self, conns: u64) -> Snapshot {
        let ok = support::wait_for(self.server(), SETTLE, |s| {
            s.accepted == conns && s.closed == conns
        });
        let snap = self.server().stats().snapshot();
        assert!(
            ok,
            "expected {conns} connections accepted and closed within {SETTLE:?}:\n{}",
            snap.summary()
        );
        snap
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.0.take() {
            s.shutdown_handle().force();
            let _ = s.wait();
        }
    }
}

/// A child process killed and reaped on drop unless it was waited for.
struct ChildGuard(Option<Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// What a client process did.
struct Ran {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
}

impl Ran {
    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    fn describe(&self) -> String {
        format!(
            "status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            self.stdout_text(),
            self.stderr
        )
    }
}

/// Runs `program` with `args`, feeding `stdin` (then EOF), and collects its output; fails the
/// test if the program is not installed or runs longer than [`CLIENT_TIMEOUT`].
fn run(program: &str, args: &[OsString], stdin: Option<&[u8]>) -> Ran {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "`{program}` is not installed, and these tests need it: install it \
             (e.g. `apt-get install {program}`) and run them again"
        ),
        Err(e) => panic!("cannot run `{program}`: {e}"),
    };
    let mut guard = ChildGuard(Some(child));
    let child = guard.0.as_mut().unwrap();
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let input = input.to_vec();
        // A writer thread: a child that does not read its stdin cannot block the test.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let (tx, rx) = mpsc::channel();
    let mut out = child.stdout.take().unwrap();
    let tx_out = tx.clone();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        let _ = tx_out.send((true, buf));
    });
    let mut err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        let _ = tx.send((false, buf));
    });
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let (mut stdout, mut stderr) = (None, None);
    while stdout.is_none() || stderr.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((true, b)) => stdout = Some(b),
            Ok((false, b)) => stderr = Some(b),
            Err(_) => panic!("`{program} {args:?}` still running after {CLIENT_TIMEOUT:?}"),
        }
    }
    // Both pipes are closed: the process has exited (or is about to); reap it.
    let status = guard.0.take().unwrap().wait().unwrap();
    Ran {
        status,
        stdout: stdout.unwrap(),
        stderr: String::from_utf8_lossy(&stderr.unwrap()).into_owned(),
    }
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

/// curl to `https://<host>:<port><path>` with `host` resolved to 127.0.0.1, trusting `ca`.
fn curl(host: &str, port: u16, path: &str, ca: &Path, extra: &[&str]) -> Ran {
    let mut args = os(&["-sS", "--fail", "--max-time", "30", "--cacert"]);
    args.push(ca.into());
    args.extend(os(&["--resolve", &format!("{host}:{port}:127.0.0.1")]));
    args.extend(os(extra));
    args.push(format!("https://{host}:{port}{path}").into());
    run("curl", &args, None)
}

/// The request every `openssl s_client` run sends; the server closes after answering it, so
/// `-ign_eof` makes s_client read everything (tickets included) until then.
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: bank32.com\r\nConnection: close\r\n\r\n";

/// `openssl s_client` to the server with `version` ("tls1_2"/"tls1_3"), verifying the chain;
/// `extra` adds e.g. `-sess_out FILE`.
fn s_client(port: u16, ca: &Path, version: &str, extra: &[OsString]) -> Ran {
    let mut args = os(&[
        "s_client",
        "-connect",
        &format!("127.0.0.1:{port}"),
        "-servername",
        "bank32.com",
        "-verify_return_error",
        "-ign_eof",
        &format!("-{version}"),
        "-CAfile",
    ]);
    args.push(ca.into());
    args.extend(extra.iter().cloned());
    let ran = run("openssl", &args, Some(REQUEST));
    assert!(
        ran.status.success(),
        "openssl s_client failed: {}",
        ran.describe()
    );
    let out = ran.stdout_text();
    assert!(
        out.contains("Verify return code: 0 (ok)"),
        "chain not verified: {}",
        ran.describe()
    );
    assert!(
        out.contains("HTTP/1.1 200 OK"),
        "no response: {}",
        ran.describe()
    );
    ran
}

fn sess_out(file: &Path) -> Vec<OsString> {
    vec!["-sess_out".into(), file.into()]
}

fn sess_in(file: &Path) -> Vec<OsString> {
    vec!["-sess_in".into(), file.into()]
}

/// Asserts s_client's `New, TLSv1.x, Cipher is` / `Reused, TLSv1.x, Cipher is` line.
fn assert_session(ran: &Ran, how: &str, version: &str) {
    let want = format!("{how}, {version}, Cipher is ");
    assert!(
        ran.stdout_text().contains(&want),
        "expected {want:?} in s_client's output: {}",
        ran.describe()
    );
}

/// A directory of chain files, removed on drop.
struct Files(PathBuf);

impl std::ops::Deref for Files {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `kt`'s chain, key and CA written under a fresh directory.
fn chain_files(kt: KeyType) -> (Files, CertPaths) {
    let (dir, paths) = support::chain_files(kt);
    (Files(dir), paths)
}

fn ecdsa_files() -> (Files, CertPaths) {
    chain_files(KeyType::EcdsaP256)
}

#[test]
fn curl_gets_the_hello_page_over_tls12_and_tls13() {
    let srv = Running::new(&TlsOptions::default());
    let (_dir, files) = ecdsa_files();

    let ran = curl("bank32.com", srv.port(), "/", &files.ca, &[]);
    assert!(ran.status.success(), "{}", ran.describe());
    assert_eq!(ran.stdout, server::http::HELLO_PAGE, "{}", ran.describe());

    for (flags, version) in [
        (&["-v", "--tlsv1.2", "--tls-max", "1.2"][..], "TLSv1.2"),
        (&["-v", "--tlsv1.3"][..], "TLSv1.3"),
    ] {
        let ran = curl("bank32.com", srv.port(), "/", &files.ca, flags);
        assert!(ran.status.success(), "{}", ran.describe());
        assert_eq!(ran.stdout, server::http::HELLO_PAGE, "{}", ran.describe());
        let line = format!("SSL connection using {version} / ");
        assert!(
            ran.stderr.contains(&line),
            "expected {line:?} in curl -v: {}",
            ran.describe()
        );
    }

    // curl offers TLS 1.3 by default, with a key share the server accepts (no HRR); separate
    // processes never resume.
    let s = srv.settled(3);
    assert_eq!(s.handshakes_of("1.3", "full"), 2, "{}", s.summary());
    assert_eq!(s.handshakes_of("1.2", "full"), 1, "{}", s.summary());
    assert_eq!(s.handshakes_total(), 3, "{}", s.summary());
    assert_eq!(s.failures_total(), 0, "{}", s.summary());
    assert_eq!(
        s.requests_of(server::http::Status::Ok),
        3,
        "{}",
        s.summary()
    );
    assert_eq!(s.requests_total(), 3, "{}", s.summary());
}

#[test]
fn curl_refuses_a_name_the_certificate_does_not_cover() {
    let srv = Running::new(&TlsOptions::default());
    let (_dir, files) = ecdsa_files();

    let ran = curl("evil.example", srv.port(), "/", &files.ca, &[]);
    assert_eq!(ran.status.code(), Some(60), "{}", ran.describe());
    assert!(
        ran.stderr
            .contains("no alternative certificate subject name matches"),
        "{}",
        ran.describe()
    );
    assert!(ran.stdout.is_empty(), "{}", ran.describe());

    // curl (OpenSSL backend) checks the name after the handshake has completed, then closes
    // without a request, so the server sees a completed handshake; a client that checks the
    // name inside the handshake aborts with an alert instead. Either way: one connection, it
    // ended as exactly one handshake or one failure, and nothing was served on it.
    let s = srv.settled(1);
    assert_eq!(
        s.handshakes_total() + s.failures_total(),
        1,
        "{}",
        s.summary()
    );
    assert_eq!(s.requests_total(), 0, "{}", s.summary());

    // The server is unharmed: the right name works on the next connection.
    let ran = curl("bank32.com", srv.port(), "/", &files.ca, &[]);
    assert!(ran.status.success(), "{}", ran.describe());
    assert_eq!(ran.stdout, server::http::HELLO_PAGE);
    let s = srv.settled(2);
    assert_eq!(s.requests_total(), 1, "{}", s.summary());
}

#[test]
fn curl_refuses_a_server_from_an_untrusted_ca() {
    let srv = Running::new(&TlsOptions::default());
    let (_dir, good) = ecdsa_files();
    // Another "Model CA": same name, different key, so it signed nothing the server sends.
    let (_dir2, other) = chain_files(KeyType::Ed25519);

    let ran = curl("bank32.com", srv.port(), "/", &other.ca, &[]);
    assert_eq!(ran.status.code(), Some(60), "{}", ran.describe());
    assert!(ran.stdout.is_empty(), "{}", ran.describe());

    // OpenSSL verifies the chain inside the handshake and aborts with unknown_ca.
    let s = srv.settled(1);
    assert_eq!(s.failures_of(FailureCause::PeerAlert), 1, "{}", s.summary());
    assert_eq!(s.failures_total(), 1, "{}", s.summary());
    assert_eq!(s.alerts_received[ALERT_UNKNOWN_CA], 1, "{}", s.summary());
    assert_eq!(s.handshakes_total(), 0, "{}", s.summary());
    assert_eq!(s.requests_total(), 0, "{}", s.summary());

    let ran = curl("bank32.com", srv.port(), "/", &good.ca, &[]);
    assert!(ran.status.success(), "{}", ran.describe());
    assert_eq!(ran.stdout, server::http::HELLO_PAGE);
}

#[test]
fn curl_uploads_to_sink_and_downloads_bytes() {
    let srv = Running::new(&TlsOptions::default());
    let (dir, files) = ecdsa_files();

    const UPLOAD: usize = 3 << 20;
    let upload = dir.join("upload.bin");
    let data: Vec<u8> = (0..UPLOAD).map(|i| (i % 251) as u8).collect();
    std::fs::write(&upload, &data).unwrap();
    let at = format!("@{}", support::path_str(&upload));
    let ran = curl(
        "bank32.com",
        srv.port(),
        "/sink",
        &files.ca,
        &["--data-binary", &at],
    );
    assert!(ran.status.success(), "{}", ran.describe());
    assert_eq!(ran.stdout_text(), format!("{UPLOAD}\n"));

    const DOWNLOAD: usize = 1_000_000;
    let ran = curl(
        "bank32.com",
        srv.port(),
        &format!("/bytes/{DOWNLOAD}"),
        &files.ca,
        &[],
    );
    assert!(
        ran.status.success(),
        "status {:?}: {}",
        ran.status,
        ran.stderr
    );
    assert_eq!(ran.stdout.len(), DOWNLOAD, "stderr: {}", ran.stderr);
    assert!(common::pattern::matches(0, &ran.stdout));

    let s = srv.settled(2);
    assert_eq!(
        s.requests_of(server::http::Status::Ok),
        2,
        "{}",
        s.summary()
    );
    assert!(s.bytes_in >= UPLOAD as u64, "{}", s.summary());
    assert!(s.bytes_out >= DOWNLOAD as u64, "{}", s.summary());
}

/// Two s_client runs, the second offering the first one's session; returns both.
fn two_runs(srv: &Running, version: &str, first_extra: &[&str]) -> (Ran, Ran) {
    let (dir, files) = ecdsa_files();
    let sess = dir.join("session.pem");
    let mut extra = os(first_extra);
    extra.extend(sess_out(&sess));
    let first = s_client(srv.port(), &files.ca, version, &extra);
    assert!(
        sess.is_file(),
        "s_client wrote no session: {}",
        first.describe()
    );
    let mut extra = os(first_extra);
    extra.extend(sess_in(&sess));
    let second = s_client(srv.port(), &files.ca, version, &extra);
    (first, second)
}

#[test]
fn openssl_resumes_tls12_by_session_id_without_tickets() {
    let srv = Running::new(&TlsOptions {
        resumption: Resumption::Both,
        ..TlsOptions::default()
    });
    let (first, second) = two_runs(&srv, "tls1_2", &["-no_ticket"]);
    assert_session(&first, "New", "TLSv1.2");
    assert_session(&second, "Reused", "TLSv1.2");
    // -no_ticket: the session is found by its ID, so no ticket was ever issued.
    assert!(
        !first.stdout_text().contains("TLS session ticket:"),
        "{}",
        first.describe()
    );

    let s = srv.settled(2);
    assert_eq!(s.handshakes_of("1.2", "full"), 1, "{}", s.summary());
    assert_eq!(s.handshakes_of("1.2", "resumed"), 1, "{}", s.summary());
    assert_eq!(s.handshakes_total(), 2, "{}", s.summary());
    assert_eq!(s.requests_total(), 2, "{}", s.summary());
}

fn tls13_resumes_with(resumption: Resumption) {
    let srv = Running::new(&TlsOptions {
        resumption,
        ..TlsOptions::default()
    });
    let (first, second) = two_runs(&srv, "tls1_3", &[]);
    assert_session(&first, "New", "TLSv1.3");
    assert_session(&second, "Reused", "TLSv1.3");

    let s = srv.settled(2);
    assert_eq!(s.handshakes_of("1.3", "full"), 1, "{}", s.summary());
    assert_eq!(s.handshakes_of("1.3", "resumed"), 1, "{}", s.summary());
    assert_eq!(s.handshakes_total(), 2, "{}", s.summary());
    assert_eq!(s.requests_total(), 2, "{}", s.summary());
}

#[test]
fn openssl_resumes_tls13_with_stateless_tickets() {
    tls13_resumes_with(Resumption::Tickets);
}

#[test]
fn openssl_resumes_tls13_with_stateful_tickets() {
    tls13_resumes_with(Resumption::Stateful);
}

#[test]
fn openssl_never_resumes_with_resumption_off() {
    let off = Running::new(&TlsOptions {
        resumption: Resumption::Off,
        ..TlsOptions::default()
    });
    let (dir, files) = ecdsa_files();

    // The server offers nothing to resume: no session ID, no ticket, so s_client has no
    // session to save, in either version.
    for version in ["tls1_2", "tls1_3"] {
        let sess = dir.join(format!("off-{version}.pem"));
        let ran = s_client(off.port(), &files.ca, version, &sess_out(&sess));
        assert_session(&ran, "New", &version.replace("tls1_", "TLSv1."));
        assert!(
            !sess.exists(),
            "the server handed out a resumable {version} session: {}",
            ran.describe()
        );
    }

    // A session the client holds (from a server that issues them, same certificate) is not
    // resumed: the second run says New, not Reused.
    let both = Running::new(&TlsOptions::default());
    let sess = dir.join("from-both.pem");
    let ran = s_client(both.port(), &files.ca, "tls1_3", &sess_out(&sess));
    assert_session(&ran, "New", "TLSv1.3");
    assert!(sess.is_file(), "{}", ran.describe());
    let ran = s_client(off.port(), &files.ca, "tls1_3", &sess_in(&sess));
    assert_session(&ran, "New", "TLSv1.3");
    assert!(!ran.stdout_text().contains("Reused,"), "{}", ran.describe());

    let s = off.settled(3);
    assert_eq!(s.handshakes_of("1.2", "full"), 1, "{}", s.summary());
    assert_eq!(s.handshakes_of("1.3", "full"), 2, "{}", s.summary());
    assert_eq!(s.handshakes_of("1.2", "resumed"), 0, "{}", s.summary());
    assert_eq!(s.handshakes_of("1.3", "resumed"), 0, "{}", s.summary());
    assert_eq!(s.handshakes_total(), 3, "{}", s.summary());
    assert_eq!(s.requests_total(), 3, "{}", s.summary());
}

#[test]
fn openssl_sends_early_data_on_a_resumed_tls13_session_and_the_server_accepts_it() {
    let srv = Running::new(&TlsOptions {
        resumption: Resumption::Stateful,
        early_data: 16384,
        ..TlsOptions::default()
    });
    let (dir, files) = ecdsa_files();
    let sess = dir.join("session.pem");
    let first = s_client(srv.port(), &files.ca, "tls1_3", &sess_out(&sess));
    assert_session(&first, "New", "TLSv1.3");
    assert!(
        first.stdout_text().contains("Max Early Data: 16384"),
        "the ticket allows no early data: {}",
        first.describe()
    );

    // The early request keeps the connection open: the one s_client sends after the
    // handshake (REQUEST, from stdin) closes it.
    let early = dir.join("early.txt");
    std::fs::write(&early, b"GET / HTTP/1.1\r\nHost: bank32.com\r\n\r\n").unwrap();
    let mut extra = sess_in(&sess);
    extra.push("-early_data".into());
    extra.push(early.into());
    let second = s_client(srv.port(), &files.ca, "tls1_3", &extra);
    assert_session(&second, "Reused", "TLSv1.3");
    let out = second.stdout_text();
    assert!(
        out.contains("Early data was accepted"),
        "{}",
        second.describe()
    );
    assert_eq!(
        out.matches("HTTP/1.1 200 OK").count(),
        2,
        "{}",
        second.describe()
    );

    let s = srv.settled(2);
    assert_eq!(s.early_data_of(EarlyData::Offered), 1, "{}", s.summary());
    assert_eq!(s.early_data_of(EarlyData::Accepted), 1, "{}", s.summary());
    assert_eq!(s.early_data_of(EarlyData::Rejected), 0, "{}", s.summary());
    assert_eq!(s.requests_total(), 3, "{}", s.summary());
}
