//! `tlsbench run` as a child process: the results table, charts and compare gate of a small
//! matrix, the TCP floor and each TLS row's cost over it, an interrupted run keeping its rows
//! and leaving no server, and runs against an external target.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use support::{
    EXIT_TIMEOUT, ONE_ROW_MATRIX, READY_TIMEOUT, TempDir, assert_cpu_plausible, bin, drain, lines,
    load_target, make_certs, p, quick_run, results_json, run_dir, spawn_guarded, text, tlsbench,
    write_matrix,
};

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use test_support::binary as support;

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
    let matrix = write_matrix(t.dir.path(), "target.toml", &keep_alive_only);
    let out = t.dir.path().join("results");
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
