//! Recipe (a) of "More load than one machine", end to end: two `tlsbench load` processes on
//! disjoint CPUs, each running its `--segment` of one load from a shared `--start-at`, against
//! one `tlsbench server` on loopback, then `tlsbench merge`: the merged counts are the parts'
//! sums and the merged p99 is the p99 of one histogram holding every sample.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::cpu::allowed_cpus;
use support::{EXIT_TIMEOUT, TempDir, bin, make_certs, p, server_in, tlsbench};
use test_support::binary as support;
use test_support::process::Captured;

/// The CPUs this test may pin a child to (the child starts with the test's own mask).
fn usable_cpus() -> Vec<usize> {
    let status = common::procfs::status("self").unwrap();
    allowed_cpus(&status).unwrap().0
}

fn read_json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The histogram a document's `results.latency.<name>.hdr` encodes.
fn hist(doc: &serde_json::Value, name: &str) -> loadgen::Hist {
    loadgen::report::decode_hist(doc["results"]["latency"][name]["hdr"].as_str().unwrap()).unwrap()
}

#[test]
fn two_segments_from_one_start_merge_into_the_whole_load() {
    let dir = TempDir::new("segments");
    let certs = dir.path().join("certs");
    make_certs(&certs, "ecdsa-p256");
    let (_server, addr, _admin) = server_in(dir.path(), &[]);
    let ca = certs.join("ecdsa-p256/ca.pem");
    // Whole seconds (RFC 3339 as written): between 3 and 4 s ahead, enough for both
    // processes to start on a busy machine.
    let start_at = common::date::utc_rfc3339(SystemTime::now() + Duration::from_secs(4));
    let start_ns = humantime_ns(&start_at);
    let cpus = usable_cpus();
    let parts: Vec<_> = (0..2)
        .map(|i| {
            let json = dir.path().join(format!("part{i}.json"));
            let mut cmd = Command::new(bin());
            cmd.arg("load")
                .arg(format!("https://bank32.com:{}/", addr.port()))
                .args(["--connect-to", &addr.to_string(), "--cacert", p(&ca)])
                // Odd totals: 3 connections are 2 + 1, 401 requests 201 + 200.
                .args(["-c", "3", "-n", "401", "--quiet"])
                .args(["--segment", &format!("{i}/2"), "--start-at", &start_at])
                .args(["--json", p(&json)]);
            // Disjoint CPUs where there are two; one CPU cannot hold two pinned generators
            // apart, so they then share it unpinned.
            if cpus.len() >= 2 {
                cmd.args(["--pin-cpus", &cpus[i].to_string()]);
            }
            (Captured::start(cmd), json)
        })
        .collect();
    let mut docs = Vec::new();
    let mut files = Vec::new();
    for (run, json) in parts {
        let ran = run.wait(EXIT_TIMEOUT);
        assert!(ran.status.success(), "{}", ran.describe());
        docs.push(read_json(&json));
        files.push(json);
    }
    for (i, (doc, (connections, requests))) in docs.iter().zip([(2, 201), (1, 200)]).enumerate() {
        let config = &doc["config"];
        assert_eq!(config["segment"]["index"], i, "{config}");
        assert_eq!(config["segment"]["count"], 2, "{config}");
        assert_eq!(config["connections"], connections, "{config}");
        assert_eq!(doc["results"]["counts"]["requests"], requests);
        // Neither measured before the shared start.
        let begun = doc["results"]["window"]["start_unix_ns"].as_u64().unwrap();
        assert!(
            begun >= start_ns,
            "part {i} started at {begun}, before {start_ns}"
        );
    }

    let merged_path = dir.path().join("merged.json");
    let ran = tlsbench(&["merge", p(&files[0]), p(&files[1]), "-o", p(&merged_path)]);
    assert!(ran.status.success(), "{}", ran.describe());
    let merged = read_json(&merged_path);
    let r = &merged["results"];
    for field in ["requests", "connections", "full", "tls13", "started"] {
        let sum: u64 = docs
            .iter()
            .map(|d| d["results"]["counts"][field].as_u64().unwrap())
            .sum();
        assert_eq!(r["counts"][field], sum, "counts.{field}");
    }
    assert_eq!(r["counts"]["requests"], 401);
    assert_eq!(merged["config"]["connections"], 3);
    assert_eq!(merged["config"]["requests"], 401);
    assert_eq!(r["complete"], true, "{r}");
    for name in ["request", "handshake", "ttfb"] {
        let mut all = hist(&docs[0], name);
        all.add(hist(&docs[1], name)).unwrap();
        let lat = &r["latency"][name];
        assert_eq!(lat["count"], all.len(), "{name}");
        assert_eq!(
            lat["percentiles_us"]["p99"],
            all.value_at_percentile(99.0),
            "{name} p99"
        );
        assert_eq!(
            hist(&merged, name),
            all,
            "{name}: the merged histogram is the sum"
        );
    }
    let hosts: Vec<&str> = merged["merged_from"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["hostname"].as_str().unwrap())
        .collect();
    assert_eq!(hosts.len(), 2);
}

/// Nanoseconds since the epoch of an RFC 3339 UTC time written with whole seconds.
fn humantime_ns(rfc3339: &str) -> u64 {
    let t: loadgen::segment::StartAt = rfc3339.parse().unwrap();
    t.at.duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}
