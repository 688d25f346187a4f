//! Foreign servers costed on the matrix: `tlsbench run --peer nginx` over the rows nginx
//! serves (full TLS 1.3 and 1.2 with ECDSA and RSA, resumption by TLS 1.3 ticket, TLS 1.2
//! ticket and session ID, keep-alive, download, upload) completes with zero errors and server
//! CPU on every row, leaving no nginx behind; `--server-pid` on an nginx started outside the
//! run agrees with `--peer nginx` on the same row; `--peer openssl` completes handshake rows;
//! a missing program, PID or cgroup is refused by name before anything runs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use runner::peer::{Peer, PeerKind, PeerProgram, Site};
use runner::scenario::Matrix;
use test_support::binary::{self as support, TempDir, bin, p, process::run_bounded};

/// A `--quick` run of a few short rows, debug build, on a shared machine.
const RUN_LIMIT: Duration = Duration::from_secs(300);

const DEFAULTS: &str =
    "[defaults]\nconnections = 8\nquick_duration = \"1500ms\"\nquick_warmup = \"300ms\"\n";

/// The rows nginx (OpenSSL 3.0) serves, one of each kind the issue names.
const NGINX_ROWS: &str = r#"
[[scenario]]
name = "full tls1.3 ecdsa"
kind = "handshake"
tls = "1.3"
cert = "ecdsa-p256"
kx_groups = ["X25519"]
server_resumption = "off"

[[scenario]]
name = "full tls1.2 ecdsa"
kind = "handshake"
tls = "1.2"
cert = "ecdsa-p256"
kx_groups = ["secp256r1"]
server_resumption = "off"

[[scenario]]
name = "full tls1.2 rsa"
kind = "handshake"
tls = "1.2"
cert = "rsa2048"
kx_groups = ["X25519"]
server_resumption = "off"

[[scenario]]
name = "resumed tls1.3 ticket"
kind = "handshake"
tls = "1.3"
kx_groups = ["X25519"]
server_resumption = "tickets"
resume = "ticket"

[[scenario]]
name = "resumed tls1.2 ticket"
kind = "handshake"
tls = "1.2"
kx_groups = ["secp256r1"]
server_resumption = "tickets"
resume = "ticket"

[[scenario]]
name = "resumed tls1.2 session id"
kind = "handshake"
tls = "1.2"
kx_groups = ["secp256r1"]
server_resumption = "stateful"
resume = "session-id"

[[scenario]]
name = "keep-alive tls1.3"
kind = "requests"
tls = "1.3"
kx_groups = ["X25519"]

[[scenario]]
name = "download 1MB tls1.3"
kind = "throughput"
tls = "1.3"
kx_groups = ["X25519"]
cipher_suites = ["TLS_AES_128_GCM_SHA256"]
connections = 4
download = 1000000

[[scenario]]
name = "upload 1MB tls1.3"
kind = "throughput"
tls = "1.3"
kx_groups = ["X25519"]
connections = 4
upload = 1000000
"#;

const HANDSHAKE_ROWS: &str = r#"
[[scenario]]
name = "full tls1.3 ecdsa"
kind = "handshake"
tls = "1.3"
cert = "ecdsa-p256"
kx_groups = ["X25519"]
server_resumption = "off"

[[scenario]]
name = "full tls1.2 rsa"
kind = "handshake"
tls = "1.2"
cert = "rsa2048"
kx_groups = ["X25519"]
server_resumption = "off"
"#;

/// A peer's program, or why the test cannot run here (CI installs both).
fn program(kind: PeerKind) -> Option<PeerProgram> {
    match PeerProgram::find(kind) {
        Ok(p) => Some(p),
        Err(e) => {
            eprintln!("SKIPPED: {e}");
            None
        }
    }
}

/// The server and client CPU lists: two CPUs this test may use, apart.
fn cpus() -> (usize, usize) {
    let status = common::procfs::status("self").unwrap();
    let mine = common::cpu::allowed_cpus(&status).unwrap().0;
    assert!(mine.len() >= 2, "two CPUs needed, allowed {mine:?}");
    (mine[0], mine[1])
}

/// `tlsbench run --quick` with `args` over `rows`, its temp dir as TMPDIR (where peers make
/// their directories); returns the results document.
fn run(dir: &Path, rows: &str, args: &[&str]) -> serde_json::Value {
    let matrix = dir.join("matrix.toml");
    std::fs::write(&matrix, format!("{DEFAULTS}{rows}")).unwrap();
    let out = dir.join("results");
    let _ = std::fs::remove_dir_all(&out);
    let (server, client) = cpus();
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut cmd = Command::new(bin());
    cmd.env("TMPDIR", &tmp).args([
        "run",
        "--quick",
        "--scenarios",
        p(&matrix),
        "--out",
        p(&out),
        "--certs-dir",
        p(&dir.join("certs")),
        "--server-cpus",
        &server.to_string(),
        "--client-cpus",
        &client.to_string(),
    ]);
    cmd.args(args);
    let ran = run_bounded(cmd, RUN_LIMIT);
    assert_eq!(ran.status.code(), Some(0), "{}", ran.describe());
    let run_dir = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    serde_json::from_str(&std::fs::read_to_string(run_dir.join("results.json")).unwrap()).unwrap()
}

/// Processes whose working directory is under `dir` (a peer's, which runs from its own
/// directory under the run's TMPDIR): what a stopped peer must not leave.
fn processes_under(dir: &Path) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cwd) = std::fs::read_link(entry.path().join("cwd")) else {
            continue;
        };
        if cwd.starts_with(dir) {
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            out.push((pid, comm.trim().to_owned()));
        }
    }
    out
}

fn median(row: &serde_json::Value, key: &str) -> Option<f64> {
    row[key]["median"].as_f64()
}

#[test]
fn peer_nginx_serves_every_kind_of_row_with_zero_errors_and_leaves_nothing() {
    let Some(nginx) = program(PeerKind::Nginx) else {
        return;
    };
    let dir = TempDir::new("peer-nginx");
    let doc = run(dir.path(), NGINX_ROWS, &["--peer", "nginx"]);
    assert_eq!(doc["server_software"], nginx.version.as_str());
    assert!(nginx.version.starts_with("nginx/"), "{}", nginx.version);
    assert!(doc["incomplete"].is_null(), "{}", doc["incomplete"]);
    let rows = doc["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 9);
    for row in rows {
        let name = row["name"].as_str().unwrap();
        assert_eq!(row["errors"], 0, "{name}");
        let cpu = median(row, "server_cpu_us").unwrap_or_else(|| panic!("{name}: no server CPU"));
        assert!(cpu > 0.0, "{name}: server CPU {cpu}");
        assert_eq!(row["server_ops_from"], "client", "{name}");
        if name.starts_with("resumed") {
            let share = row["resumed_share"].as_f64().unwrap();
            assert!(share >= 0.99, "{name}: {share} resumed");
        }
    }
    // Every peer stopped with its workers, and its directory gone.
    let tmp = dir.path().join("tmp");
    assert_eq!(processes_under(&tmp), Vec::new());
    let left: Vec<PathBuf> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn server_pid_on_an_nginx_started_outside_the_run_agrees_with_peer_nginx() {
    let Some(nginx) = program(PeerKind::Nginx) else {
        return;
    };
    let dir = TempDir::new("peer-pid");
    let row = r#"
[[scenario]]
name = "full tls1.3 ecdsa"
kind = "handshake"
tls = "1.3"
cert = "ecdsa-p256"
kx_groups = ["X25519"]
server_resumption = "off"
"#;
    let by_peer = run(dir.path(), row, &["--peer", "nginx"]);
    let peer_cpu = median(&by_peer["rows"][0], "server_cpu_us").unwrap();

    // The same nginx configuration, started here: the run only knows its PID.
    let certs = dir.path().join("certs");
    let matrix = Matrix::parse(&format!("{DEFAULTS}{row}")).unwrap();
    let (server, _) = cpus();
    let site = Site::of(&matrix.scenarios[0], &matrix, &certs, &[server]);
    let outside = Peer::start(&nginx, &site, &[server]).unwrap();
    // The peer's hello page is ours, byte for byte.
    let ca = certs.join("ecdsa-p256").join("ca.pem");
    let name = rustls::pki_types::ServerName::try_from("bank32.com").unwrap();
    let conn = rustls::ClientConnection::new(support::client_config(&ca), name).unwrap();
    let tcp = std::net::TcpStream::connect(outside.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(b"GET / HTTP/1.1\r\nHost: bank32.com\r\n\r\n")
        .unwrap();
    support::read_hello(&mut tls).unwrap();
    drop(tls);
    // Pinned to the server CPU: the master and, by inheritance, every worker (one exists:
    // it answered).
    let group = runner::peer::group_members(outside.pid).unwrap();
    assert!(group.len() >= 2, "master and a worker: {group:?}");
    for pid in group {
        let status = common::procfs::status(&pid.to_string()).unwrap();
        let allowed = common::cpu::allowed_cpus(&status).unwrap();
        assert_eq!(allowed.0, [server], "process {pid}");
    }
    let port = outside.addr.port();
    let url = format!("https://bank32.com:{port}/");
    let by_pid = run(
        dir.path(),
        row,
        &[
            "--target",
            &url,
            "--connect-to",
            &outside.addr.to_string(),
            "--cacert",
            p(&ca),
            "--server-pid",
            &outside.pid.to_string(),
        ],
    );
    let pid = outside.pid;
    outside.stop().unwrap();
    let source = by_pid["server_cpu_source"].as_str().unwrap();
    assert!(source.contains(&format!("processes {pid} ")), "{source}");
    let pid_cpu = median(&by_pid["rows"][0], "server_cpu_us").unwrap();
    assert_eq!(by_pid["rows"][0]["server_ops_from"], "client");
    // Two measurements of the same thing on a shared, noisy machine: within 30% of each other.
    let ratio = pid_cpu / peer_cpu;
    eprintln!("--server-pid {pid_cpu:.1} µs, --peer {peer_cpu:.1} µs per handshake");
    assert!(
        (0.7..=1.3).contains(&ratio),
        "--server-pid {pid_cpu:.1} µs vs --peer {peer_cpu:.1} µs per handshake (ratio {ratio:.2})"
    );
}

#[test]
fn peer_openssl_completes_the_handshake_rows() {
    let Some(openssl) = program(PeerKind::Openssl) else {
        return;
    };
    let dir = TempDir::new("peer-openssl");
    let doc = run(dir.path(), HANDSHAKE_ROWS, &["--peer", "openssl"]);
    assert_eq!(doc["server_software"], openssl.version.as_str());
    assert!(
        openssl.version.starts_with("OpenSSL "),
        "{}",
        openssl.version
    );
    let rows = doc["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        let name = row["name"].as_str().unwrap();
        assert_eq!(row["errors"], 0, "{name}");
        assert!(row["handshakes"]["full"].as_u64().unwrap() > 0, "{name}");
        assert!(median(row, "server_cpu_us").unwrap() > 0.0, "{name}");
    }
    assert_eq!(processes_under(&dir.path().join("tmp")), Vec::new());
}

#[test]
fn a_missing_peer_program_pid_or_cgroup_is_refused_by_name_before_the_run() {
    let dir = TempDir::new("peer-refusals");
    let out = dir.path().join("results");
    let refused = |args: &[&str], env: Option<&Path>| {
        let mut cmd = Command::new(bin());
        cmd.args(["run", "--quick", "--out", p(&out)]).args(args);
        if let Some(empty) = env {
            cmd.env(runner::peer::PEER_PATH_ENV, empty);
        }
        let ran = run_bounded(cmd, Duration::from_secs(30));
        assert_ne!(ran.status.code(), Some(0), "{}", ran.describe());
        assert!(!out.exists(), "a refused run wrote {}", out.display());
        ran.stderr
    };
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let e = refused(&["--peer", "nginx"], Some(&empty));
    assert!(e.contains("install the Debian package nginx-light"), "{e}");
    let e = refused(&["--peer", "openssl"], Some(&empty));
    assert!(e.contains("install the Debian package openssl"), "{e}");
    let e = refused(&["--peer", "haproxy"], Some(&empty));
    assert!(e.contains("install the Debian package haproxy"), "{e}");

    let target = ["--target", "https://127.0.0.1:9/"];
    // PIDs are below 2^22 on Linux: this one names no process.
    let e = refused(&[&target[..], &["--server-pid", "4294967"]].concat(), None);
    assert!(e.contains("server process 4294967: no such process"), "{e}");
    let no_cgroup = dir.path().join("not-a-cgroup");
    std::fs::create_dir_all(&no_cgroup).unwrap();
    let e = refused(
        &[&target[..], &["--server-cgroup", p(&no_cgroup)]].concat(),
        None,
    );
    assert!(e.contains(p(&no_cgroup)) && e.contains("cpu.stat"), "{e}");
}

#[test]
fn a_peer_is_not_ours_to_profile() {
    if program(PeerKind::Nginx).is_none() {
        return;
    }
    let dir = TempDir::new("peer-profile");
    let out = dir.path().join("results");
    let mut cmd = Command::new(bin());
    cmd.args(["run", "--quick", "--peer", "nginx", "--profile", "server"])
        .args(["--out", p(&out)]);
    let ran = run_bounded(cmd, Duration::from_secs(30));
    assert_ne!(ran.status.code(), Some(0), "{}", ran.describe());
    assert!(
        ran.stderr
            .contains("the server is not ours (--target or --peer)"),
        "{}",
        ran.describe()
    );
    assert!(!out.exists(), "a refused run wrote {}", out.display());
}
