//! The security defaults the README promises, checked on the `tlsbench server` binary with real
//! peers (openssl s_client, a rustls client) and with the process's own view of itself
//! (`/proc/PID/fd`): only TLS 1.2 and 1.3, only AEAD suites, no renegotiation, no key log unless
//! `--keylog` (SSLKEYLOGFILE is ignored), ticket keys only in memory, and an admin endpoint on
//! loopback unless an address is given. (Private keys written 0600 and the refusal of
//! world-readable keys are tested in `tests/cli.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::SystemTime;

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};
use server::stats::FailureCause;
use support::{
    ChildGuard, EXIT_TIMEOUT, ServerProc, TempDir, client_config_for, drain, fd_targets,
    make_certs, p, read_hello, scrape, server_args, server_command, server_in, text, tlsbench,
    wait_until,
};
use test_support::binary as support;

/// What `openssl s_client` printed and whether it exited successfully.
struct SClient {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `openssl s_client` against `addr` with `args`, writing `input` to its stdin. When
/// `until` is given, stdin stays open until stderr or stdout contains it (bounded), so the
/// client acts on its input before it sees end of file.
fn s_client(addr: SocketAddr, args: &[&str], input: &[u8], until: Option<&str>) -> SClient {
    let connect = addr.to_string();
    let child = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &connect,
            "-servername",
            "bank32.com",
        ])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl is installed (.ci/run installs it)");
    let mut guard = ChildGuard(Some(child));
    let (out, out_done) = drain(guard.child().stdout.take().unwrap());
    let (err, err_done) = drain(guard.child().stderr.take().unwrap());
    let mut stdin = guard.child().stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    if let Some(marker) = until {
        let seen = wait_until(EXIT_TIMEOUT, || {
            text(&out).contains(marker) || text(&err).contains(marker)
        });
        assert!(
            seen,
            "openssl never printed {marker:?}:\n{}\n{}",
            text(&out),
            text(&err)
        );
    }
    drop(stdin);
    let status = guard
        .wait_until(std::time::Instant::now() + EXIT_TIMEOUT)
        .expect("openssl s_client exits once its stdin closes");
    // Both pipes close when the process exits; each reader says so by hanging up once it has
    // read to the end.
    for done in [out_done, err_done] {
        assert_eq!(
            done.recv_timeout(EXIT_TIMEOUT),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected),
            "an openssl output pipe stayed open after it exited"
        );
    }
    SClient {
        ok: status.success(),
        stdout: text(&out),
        stderr: text(&err),
    }
}

fn failures(admin: SocketAddr, cause: FailureCause) -> u64 {
    scrape(admin).failures_of(cause)
}

fn handshakes(admin: SocketAddr) -> u64 {
    scrape(admin).handshakes_total()
}

#[test]
fn only_tls12_and_tls13_with_aead_suites_are_accepted() {
    let dir = TempDir::new("sec-versions");
    let (mut server, addr, admin) = server_in(dir.path(), &[]);
    // SECLEVEL=0 lets this openssl build offer the old versions and suites at all; the refusal
    // then comes from the server: one alert record (7 bytes) in answer to the ClientHello.
    let refused = [
        vec!["-tls1", "-cipher", "DEFAULT@SECLEVEL=0"],
        vec!["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"],
        vec![
            "-tls1_2",
            "-cipher",
            "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:AES128-SHA256:AES256-SHA@SECLEVEL=0",
        ],
    ];
    for args in &refused {
        let r = s_client(addr, args, b"", None);
        assert!(!r.ok, "{args:?} was accepted:\n{}", r.stdout);
        assert!(
            r.stderr.contains("alert handshake failure") || r.stderr.contains("alert protocol"),
            "{args:?}: no alert from the server:\n{}",
            r.stderr
        );
        assert!(
            r.stdout.contains("SSL handshake has read 7 bytes"),
            "{args:?}: the server should answer with one alert record:\n{}",
            r.stdout
        );
    }
    assert_eq!(failures(admin, FailureCause::PeerIncompatible), 3);
    // Controls: the same client is served over TLS 1.2 and 1.3, with AEAD suites only.
    let ca = dir.path().join("certs/ecdsa-p256/ca.pem");
    for (flag, protocol) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
        let r = s_client(
            addr,
            &[flag, "-CAfile", p(&ca), "-verify_return_error"],
            b"",
            None,
        );
        assert!(r.ok, "{flag}: {}\n{}", r.stdout, r.stderr);
        // "New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384"
        let new_line = format!("New, {protocol}, Cipher is ");
        let cipher = r
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix(new_line.as_str()))
            .unwrap_or_else(|| panic!("{flag}: no {new_line:?} line:\n{}", r.stdout));
        assert!(
            cipher.contains("GCM") || cipher.contains("CHACHA20"),
            "{flag}: a non-AEAD suite {cipher}"
        );
    }
    // A TLS 1.3 client is done before the server has read its Finished; the server counts the
    // handshake then, a moment after openssl may have exited.
    assert!(wait_until(EXIT_TIMEOUT, || handshakes(admin) == 2));
    assert_eq!(handshakes(admin), 2);
    drop(server.guard.0.take().map(|mut c| c.kill()));

    // Flags cannot ask for less: TLS 1.1 and CBC suites are not names the server knows.
    let certs = dir.path().join("certs");
    for (flags, want) in [
        (["--tls", "1.1"], "1.2, 1.3"),
        (
            ["--cipher-suites", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"],
            "TLS_AES_128_GCM_SHA256",
        ),
    ] {
        let ran = tlsbench(&[
            "server",
            "--listen",
            "127.0.0.1:0",
            "--certs-dir",
            p(&certs),
            flags[0],
            flags[1],
        ]);
        assert!(!ran.status.success(), "{}", ran.describe());
        assert!(ran.stderr.contains(want), "{}", ran.describe());
        if flags[0] == "--cipher-suites" {
            // The list of valid names offered in the error is all AEAD.
            let valid = ran.stderr.split_once("valid: ").unwrap().1;
            assert!(!valid.contains("CBC"), "{}", ran.describe());
        }
    }
}

#[test]
fn renegotiation_is_refused() {
    let dir = TempDir::new("sec-reneg");
    let (_server, addr, admin) = server_in(dir.path(), &[]);
    let ca = dir.path().join("certs/ecdsa-p256/ca.pem");
    // "R" on its own line makes s_client renegotiate; the server answers no_renegotiation.
    let r = s_client(
        addr,
        &["-tls1_2", "-CAfile", p(&ca), "-verify_return_error"],
        b"R\n",
        Some("no renegotiation"),
    );
    assert!(r.stderr.contains("RENEGOTIATING"), "{}", r.stderr);
    assert!(r.stderr.contains("no renegotiation"), "{}", r.stderr);
    // The first handshake is the only one the server completed; no failure counted either.
    assert_eq!(handshakes(admin), 1);
    assert_eq!(failures(admin, FailureCause::PeerIncompatible), 0);
}

/// Names, sizes and modification times of every file under `dir`.
fn tree(dir: &Path) -> BTreeMap<String, (u64, SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                out.insert(
                    e.path().display().to_string(),
                    (m.len(), m.modified().unwrap()),
                );
            }
        }
    }
    out
}

/// For TLS 1.3 and then TLS 1.2: a full handshake, then two resumed from the tickets it left.
fn handshakes_with_tickets(dir: &Path, addr: SocketAddr) {
    let ca = dir.join("certs/ecdsa-p256/ca.pem");
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let cfg = client_config_for(&ca, &[version]);
        for _ in 0..3 {
            let name = ServerName::try_from("bank32.com").unwrap();
            let conn = ClientConnection::new(cfg.clone(), name).unwrap();
            let sock = TcpStream::connect(addr).unwrap();
            sock.set_read_timeout(Some(EXIT_TIMEOUT)).unwrap();
            let mut tls = StreamOwned::new(conn, sock);
            tls.write_all(b"GET / HTTP/1.1\r\nHost: bank32.com\r\n\r\n")
                .unwrap();
            read_hello(&mut tls).unwrap();
        }
    }
}

/// Descriptors of `pid` that are files on disk (not sockets, pipes, epoll or /dev/null).
fn open_files(pid: u32) -> Vec<String> {
    fd_targets(pid)
        .into_iter()
        .filter(|t| t.starts_with('/') && !t.starts_with("/dev/"))
        .collect()
}

#[test]
fn no_key_log_unless_asked_and_ticket_keys_stay_in_memory() {
    let dir = TempDir::new("sec-keys");
    let certs = dir.path().join("certs");
    make_certs(&certs, "ecdsa-p256");
    let before = tree(dir.path());

    // SSLKEYLOGFILE is how most TLS stacks are told to log keys; the server ignores it.
    let env_log = dir.path().join("env-keys.log");
    let mut cmd = server_command(&server_args(dir.path()));
    cmd.env("SSLKEYLOGFILE", &env_log).current_dir(dir.path());
    let mut server = ServerProc::spawn(cmd);
    let addr = server.addr_after("listening on https://");
    let admin = server.addr_after("admin listening on http://");
    handshakes_with_tickets(dir.path(), addr);
    let counters = scrape(admin);
    for version in ["1.3", "1.2"] {
        let resumed = counters.handshakes_of(version, "resumed");
        assert_eq!(resumed, 2, "TLS {version} clients resumed");
    }
    // While serving with live ticket keys, the process holds no file open, and nothing under
    // its working directory (which holds the certificates) was written.
    let pid = server.guard.child().id();
    assert_eq!(open_files(pid), Vec::<String>::new());
    assert!(!env_log.exists(), "SSLKEYLOGFILE was honoured");
    let status = server.signal_and_wait(libc::SIGTERM, EXIT_TIMEOUT);
    assert!(status.success());
    assert!(!env_log.exists());
    assert_eq!(
        tree(dir.path()),
        before,
        "the server wrote to its directory"
    );
    assert!(!text(&server.stderr).contains("WARNING"));

    // Control: with --keylog the file is open, filled, and the choice is announced.
    let log = dir.path().join("asked.log");
    let (mut server, addr, _) = server_in(dir.path(), &["--keylog", p(&log)]);
    handshakes_with_tickets(dir.path(), addr);
    let pid = server.guard.child().id();
    assert_eq!(open_files(pid), vec![log.display().to_string()]);
    let lines = std::fs::read_to_string(&log).unwrap();
    assert!(
        lines.contains("CLIENT_HANDSHAKE_TRAFFIC_SECRET "),
        "{lines}"
    );
    assert!(lines.contains("CLIENT_RANDOM "), "{lines}");
    assert!(text(&server.stderr).contains("WARNING: writing TLS session keys"));
    server.signal_and_wait(libc::SIGTERM, EXIT_TIMEOUT);
}

/// A server with `--admin ADMIN`, and the admin address it says it listens on. Spelt out
/// rather than through ServerArgs (which holds an address): a bare port is the command-line
/// form under test.
fn server_with_admin(certs: &Path, admin: &str) -> (ServerProc, SocketAddr) {
    let mut server = ServerProc::start(&[
        "--listen",
        "127.0.0.1:0",
        "--certs-dir",
        p(certs),
        "--admin",
        admin,
    ]);
    let admin = server.addr_after("admin listening on http://");
    (server, admin)
}

#[test]
fn admin_binds_loopback_unless_given_an_address() {
    let dir = TempDir::new("sec-admin");
    let certs = dir.path().join("certs");
    let (mut server, admin) = server_with_admin(&certs, "0");
    assert_eq!(admin.ip(), std::net::Ipv4Addr::LOCALHOST);
    assert_eq!(scrape(admin).accepted, 0);
    server.signal_and_wait(libc::SIGTERM, EXIT_TIMEOUT);
    assert!(!text(&server.stderr).contains("not on loopback"));

    // An explicit wildcard address is honoured, and said out loud.
    let (mut server, admin) = server_with_admin(&certs, "0.0.0.0:0");
    assert!(admin.ip().is_unspecified());
    assert!(wait_until(EXIT_TIMEOUT, || text(&server.stderr)
        .contains("not on loopback")));
    server.signal_and_wait(libc::SIGTERM, EXIT_TIMEOUT);
}
