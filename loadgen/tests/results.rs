//! The results document: it validates against the published schema (loadgen/schema.json),
//! and histograms from two runs merge exactly (counts add up).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use loadgen::report;
use server::Resumption;
use support::TestServer;
use test_support::load_target as support;

fn document(srv: &TestServer, n: u64) -> serde_json::Value {
    document_at(srv, n, None)
}

fn document_at(srv: &TestServer, n: u64, rate: Option<f64>) -> serde_json::Value {
    let mut opts = srv.options("/");
    opts.requests = Some(n);
    opts.rate = rate;
    opts.new_conn = true;
    opts.tls.resume = loadgen::ResumeMode::Ticket;
    let r = support::run(&opts);
    let doc = report::document(&opts, &r, vec!["tlsbench".into(), "load".into()]);
    // Through text and back, as a reader of the file would see it.
    serde_json::from_str(&serde_json::to_string_pretty(&doc).unwrap()).unwrap()
}

#[test]
fn json_validates_against_the_schema_and_histograms_merge() {
    let schema: serde_json::Value = serde_json::from_str(include_str!("../schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let srv = TestServer::start(Resumption::Both, 1);
    let a = document(&srv, 120);
    let b = document(&srv, 80);
    let open = document_at(&srv, 40, Some(400.0));
    for doc in [&a, &b, &open] {
        let errors: Vec<String> = validator
            .iter_errors(doc)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
        assert_eq!(doc["results"]["complete"], true);
        assert_eq!(doc["config"]["insecure"], false);
    }
    assert_eq!(a["results"]["counts"]["requests"], 120);
    assert_eq!(a["results"]["counts"]["started"], 120);
    // What a merge needs: the window on the wall clock (as long as the measured duration) and
    // how the histograms record.
    let w = &a["results"]["window"];
    let (start, end) = (
        w["start_unix_ns"].as_u64().unwrap(),
        w["end_unix_ns"].as_u64().unwrap(),
    );
    let secs = a["results"]["duration_s"].as_f64().unwrap();
    assert!(
        ((end - start) as f64 / 1e9 - secs).abs() < 1e-3,
        "{w} vs {secs} s"
    );
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    assert!(
        end <= since_epoch && since_epoch - end < 600_000_000_000,
        "{w}"
    );
    let rec = &a["results"]["histograms"];
    assert_eq!(rec["latency"]["unit"], "us");
    assert_eq!(rec["latency"]["significant_figures"], 3);
    assert_eq!(rec["handshake_bytes"]["unit"], "bytes");
    assert!(a["config"]["segment"].is_null());
    assert!(a["results"]["open_loop"].is_null(), "closed loop");
    let ol = &open["results"]["open_loop"];
    assert_eq!(ol["requested_per_s"], 400.0);
    assert_eq!(open["results"]["counts"]["started"], 40);
    assert!(ol["achieved_per_s"].as_f64().unwrap() > 0.0, "{ol}");
    assert_eq!(ol["not_started"], 0, "every due operation of -n 40 started");

    // An open-loop summary without its count of operations never started is refused.
    let mut broken = open.clone();
    broken["results"]["open_loop"]
        .as_object_mut()
        .unwrap()
        .remove("not_started");
    assert!(!validator.is_valid(&broken));

    // A document missing a required field is refused: the schema is not vacuous.
    let mut broken = a.clone();
    broken["results"].as_object_mut().unwrap().remove("latency");
    assert!(!validator.is_valid(&broken));

    for name in ["request", "handshake", "connect", "ttfb"] {
        let ha =
            report::decode_hist(a["results"]["latency"][name]["hdr"].as_str().unwrap()).unwrap();
        let hb =
            report::decode_hist(b["results"]["latency"][name]["hdr"].as_str().unwrap()).unwrap();
        let mut merged = ha.clone();
        merged.add(&hb).unwrap();
        assert_eq!(merged.len(), ha.len() + hb.len(), "{name}");
        assert_eq!(
            ha.len(),
            a["results"]["latency"][name]["count"].as_u64().unwrap()
        );
        assert_eq!(merged.max(), ha.max().max(hb.max()));
    }
    assert_eq!(
        report::decode_hist(a["results"]["latency"]["request"]["hdr"].as_str().unwrap())
            .unwrap()
            .len(),
        120
    );
}
