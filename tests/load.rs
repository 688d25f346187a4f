//! `tlsbench load` as a child process against a `tlsbench server` child: the one-shot verbose
//! output, a wrong name refused with exit 4, results kept when the server dies mid-run, the
//! HDR interval log, and its counts agreeing with the server's with a plausible CPU per
//! operation (the plausibility checks are proven by tests that make them fail).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use support::{
    EXIT_TIMEOUT, assert_cpu_plausible, drain, load_target, p, scrape, spawn_guarded, text,
    wait_until,
};

use std::process::Stdio;
use std::time::Instant;

use server::http::Status;
use test_support::binary as support;

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
    let json = t.dir.path().join("insecure.json");
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
    let json = t.dir.path().join("partial.json");
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
    let log = t.dir.path().join("latency.hlog");
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
    let json = t.dir.path().join("counts.json");
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
