//! Checks the nginx test harness itself with independent clients (curl, openssl s_client): it
//! serves the hello page over HTTPS with the generated chain, resumes TLS 1.3 sessions with
//! tickets and TLS 1.2 sessions by ID, and resumes nothing with the cache and tickets off.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::certs::{self, CertPaths, ChainOptions, KeyType};
use nginx::{HELLO_PAGE, Nginx, NginxOptions};
use process::{Captured, run_bounded};
use test_support::{nginx, process};

/// Longest any curl or openssl run may take before it is killed and the test fails.
const CHILD_TIMEOUT: Duration = Duration::from_secs(30);

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: bank32.com\r\nConnection: close\r\n\r\n";

/// An ECDSA P-256 chain written to a fresh directory, removed on drop.
struct Certs {
    dir: PathBuf,
    paths: CertPaths,
}

impl Certs {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "tlsbench-nginx-harness-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let chain = certs::generate(KeyType::EcdsaP256, &ChainOptions::default()).unwrap();
        let paths = certs::write(&dir, &chain).unwrap();
        Self { dir, paths }
    }

    /// A path for a scratch file (a saved session) next to the certificates.
    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// One `openssl s_client` run sending [`REQUEST`]; `session` is `("-sess_out" | "-sess_in",
/// file)` or none. Returns stdout (the session summary and the response).
fn s_client(
    server: &Nginx,
    ca: &Path,
    version: &str,
    extra: &[&str],
    session: Option<(&str, &Path)>,
) -> String {
    let mut command = Command::new("openssl");
    command
        .arg("s_client")
        .arg("-connect")
        .arg(server.addr().to_string())
        .args(["-servername", "bank32.com", "-CAfile"])
        .arg(ca)
        .arg(version)
        .args(extra)
        .arg("-ign_eof");
    if let Some((option, file)) = session {
        command.arg(option).arg(file);
    }
    let output = Captured::start_with_stdin(command, REQUEST).wait(CHILD_TIMEOUT);
    assert!(
        output.status.success(),
        "openssl s_client failed: {}\n--- nginx ---\n{}",
        output.describe(),
        server.error_log()
    );
    assert!(
        output.stdout.contains("Verify return code: 0 (ok)"),
        "chain not verified: {}",
        output.describe()
    );
    assert!(
        output.stdout.contains("HTTP/1.1 200 OK"),
        "no 200 response: {}",
        output.describe()
    );
    output.stdout
}

/// Connects twice, saving the session and then offering it; returns both stdouts.
fn connect_twice(
    server: &Nginx,
    certs: &Certs,
    version: &str,
    extra: &[&str],
    name: &str,
) -> (String, String) {
    let session = certs.file(name);
    let first = s_client(
        server,
        &certs.paths.ca,
        version,
        extra,
        Some(("-sess_out", &session)),
    );
    assert!(
        session.is_file(),
        "openssl saved no session ({version}):\n{first}"
    );
    let second = s_client(
        server,
        &certs.paths.ca,
        version,
        extra,
        Some(("-sess_in", &session)),
    );
    (first, second)
}

#[test]
fn nginx_serves_hello_page_and_resumes_sessions() {
    let started = Instant::now();
    let certs = Certs::new("defaults");
    let server = Nginx::start(
        &certs.paths.chain,
        &certs.paths.key,
        &NginxOptions::default(),
    );
    let port = server.port();
    assert_eq!(HELLO_PAGE.len(), 228);

    // 1. The hello page, byte for byte, verified against the generated root.
    let mut curl = Command::new("curl");
    curl.args(["-sS", "--fail", "--max-time", "20", "--cacert"])
        .arg(&certs.paths.ca)
        .arg("--resolve")
        .arg(format!("bank32.com:{port}:127.0.0.1"))
        .arg(format!("https://bank32.com:{port}/"));
    let output = run_bounded(curl, CHILD_TIMEOUT);
    assert!(
        output.status.success(),
        "curl failed: {}\n--- nginx ---\n{}",
        output.describe(),
        server.error_log()
    );
    assert_eq!(
        output.stdout.as_bytes(),
        HELLO_PAGE,
        "curl got another body: {}",
        output.describe()
    );

    // 2. TLS 1.3 resumption with a session ticket.
    let (first, second) = connect_twice(&server, &certs, "-tls1_3", &[], "tls13.session");
    assert!(first.contains("New, TLSv1.3"), "first TLS 1.3:\n{first}");
    assert!(
        second.contains("Reused, TLSv1.3"),
        "TLS 1.3 session not resumed:\n{second}\n--- nginx ---\n{}",
        server.error_log()
    );

    // 3. TLS 1.2 resumption by session ID from nginx's shared cache (no tickets offered).
    let (first, second) =
        connect_twice(&server, &certs, "-tls1_2", &["-no_ticket"], "tls12.session");
    assert!(first.contains("New, TLSv1.2"), "first TLS 1.2:\n{first}");
    assert!(
        second.contains("Reused, TLSv1.2"),
        "TLS 1.2 session ID not resumed:\n{second}\n--- nginx ---\n{}",
        server.error_log()
    );

    // The same with `-reconnect` (5 more handshakes offering the session held in memory):
    // the positive control of the no-resumption test below, which cannot save a session.
    let reconnects = s_client(
        &server,
        &certs.paths.ca,
        "-tls1_2",
        &["-no_ticket", "-reconnect"],
        None,
    );
    assert_eq!(
        reconnects.matches("Reused, TLSv1.2").count(),
        5,
        "TLS 1.2 -reconnect did not resume:\n{reconnects}"
    );

    drop(server);
    eprintln!("nginx harness (defaults) took {:?}", started.elapsed());
}

#[test]
fn nginx_without_cache_or_tickets_resumes_nothing() {
    let certs = Certs::new("no-resumption");
    let server = Nginx::start(
        &certs.paths.chain,
        &certs.paths.key,
        &NginxOptions {
            session_cache: false,
            tickets: false,
            ..NginxOptions::default()
        },
    );

    // 4. nginx sends an empty session ID and no ticket, so there is nothing to resume:
    // openssl saves no session, and offering the in-memory one on 5 reconnects (`-reconnect`,
    // shown to resume against the default configuration above) gets full handshakes only.
    let session = certs.file("tls12.session");
    let first = s_client(
        &server,
        &certs.paths.ca,
        "-tls1_2",
        &[],
        Some(("-sess_out", &session)),
    );
    assert!(first.contains("New, TLSv1.2"), "first TLS 1.2:\n{first}");
    assert!(
        first.contains("Session-ID: \n"),
        "nginx sent a session ID with the cache off:\n{first}"
    );
    assert!(
        !session.exists(),
        "openssl saved a resumable session with the cache and tickets off:\n{first}"
    );
    let second = s_client(&server, &certs.paths.ca, "-tls1_2", &["-reconnect"], None);
    assert_eq!(
        second.matches("New, TLSv1.2").count(),
        6,
        "TLS 1.2 resumed with the cache and tickets off:\n{second}\n--- nginx ---\n{}",
        server.error_log()
    );
    assert!(!second.contains("Reused"), "resumed:\n{second}");
}
