//! Tests of `matrix`.

#![allow(clippy::unwrap_used)]

use super::*;

fn counters(cpu_s: f64, handshakes: u64) -> ServerCounters {
    ServerCounters {
        cpu_s,
        handshakes,
        ..ServerCounters::default()
    }
}

#[test]
fn a_failed_or_missing_admin_scrape_fails_the_window() {
    let t = Instant::now();
    let good = || -> Scrape { Ok((counters(1.0, 10), t)) };
    let (d, _) = server_window(Some(good()), Ok((counters(3.0, 30), t))).unwrap();
    assert_eq!((d.cpu_s, d.handshakes), (2.0, 20));

    let refused = || -> Scrape { Err("connection refused".into()) };
    let e = server_window(Some(refused()), good()).unwrap_err();
    assert!(
        e.contains("start") && e.contains("connection refused"),
        "{e}"
    );
    let e = server_window(Some(good()), refused()).unwrap_err();
    assert!(e.contains("end") && e.contains("connection refused"), "{e}");
    let e = server_window(None, good()).unwrap_err();
    assert!(e.contains("never started"), "{e}");
}

/// Three repeats that differ on purpose: a fast one with many samples, a slow one, one
/// in between, so the median of their p99s is far from the p99 of all samples.
fn three_repeats() -> Vec<Hist> {
    let mut hists = vec![loadgen::stats::new_hist(); 3];
    for v in 0..5000u64 {
        hists[0].record(50 + v % 100).unwrap();
    }
    for v in 0..300u64 {
        hists[1].record(20_000 + v * 37).unwrap();
    }
    for v in 0..1000u64 {
        hists[2].record(900 + v * 3).unwrap();
    }
    hists
}

#[test]
fn merged_percentiles_are_those_of_one_histogram_holding_every_sample() {
    let hists = three_repeats();
    let mut all = loadgen::stats::new_hist();
    for h in &hists {
        for v in h.iter_recorded() {
            all.record_n(v.value_iterated_to(), v.count_at_value())
                .unwrap();
        }
    }
    let merged = merge(&hists).unwrap();
    assert_eq!(merged.len(), 6300);
    for p in [50.0, 99.0, 99.9] {
        assert_eq!(
            merged.value_at_percentile(p),
            all.value_at_percentile(p),
            "p{p}"
        );
    }
    assert_eq!(
        percentiles(&merged)["p99"],
        all.value_at_percentile(99.0) as f64
    );
    // The median of the repeats' p99s is another number: not a p99 of anything.
    let mut p99s: Vec<u64> = hists.iter().map(|h| h.value_at_percentile(99.0)).collect();
    p99s.sort_unstable();
    assert_ne!(p99s[1], all.value_at_percentile(99.0));
    assert!(
        percentiles(&loadgen::stats::new_hist()).is_empty(),
        "no samples, no latency"
    );
}

#[test]
fn a_row_shows_merged_latency_and_keeps_every_repeats_histogram() {
    let m =
        Matrix::parse("[[scenario]]\nname = \"h\"\nkind = \"handshake\"\ntls = \"1.3\"\n").unwrap();
    let reps: Vec<Repeat> = three_repeats()
        .into_iter()
        .map(|hist| Repeat {
            record: RepeatRecord {
                rate: 10.0,
                client_ops: 20.0,
                latency_hdr: loadgen::report::encode_hist(&hist),
                ..RepeatRecord::default()
            },
            hist,
            handshake_bytes: (
                loadgen::stats::new_bytes_hist(),
                loadgen::stats::new_bytes_hist(),
            ),
            server_util: None,
            client_share: 0.1,
            full: 20,
            resumed: 0,
            full_hrr: 0,
            resumed_hrr: 0,
            errors: 0,
        })
        .collect();
    let row = aggregate(&m.scenarios[0], &reps, OpsFrom::Client).unwrap();
    let merged = merge(reps.iter().map(|r| &r.hist)).unwrap();
    assert_eq!(row.latency_merged_us, percentiles(&merged));
    assert_eq!(row.per_repeat.len(), 3);
    for (rec, rep) in row.per_repeat.iter().zip(&reps) {
        let back = loadgen::report::decode_hist(&rec.latency_hdr).unwrap();
        assert_eq!(back, rep.hist);
    }
    assert_eq!(
        loadgen::report::decode_hist(&row.latency_hdr).unwrap(),
        merged
    );
    // The per-repeat percentiles stay available as median and range.
    let p99 = row.latency_us["p99"];
    assert!(p99.min < p99.median && p99.median < p99.max, "{p99:?}");
}

#[test]
fn a_tls12_ecdsa_row_also_offers_the_certificates_curve_last() {
    let m = Matrix::parse(
        "[[scenario]]\nname = \"a\"\nkind = \"handshake\"\ntls = \"1.2\"\ncert = \"ecdsa-p256\"\nkx_groups = [\"X25519\"]\n\
         [[scenario]]\nname = \"b\"\nkind = \"handshake\"\ntls = \"1.2\"\ncert = \"ecdsa-p384\"\nkx_groups = [\"X25519\", \"secp384r1\"]\n\
         [[scenario]]\nname = \"c\"\nkind = \"handshake\"\ntls = \"1.3\"\ncert = \"ecdsa-p256\"\nkx_groups = [\"X25519\"]\n\
         [[scenario]]\nname = \"d\"\nkind = \"handshake\"\ntls = \"1.2\"\ncert = \"rsa2048\"\nkx_groups = [\"X25519\"]\n\
         [[scenario]]\nname = \"e\"\nkind = \"handshake\"\ntls = \"1.2,1.3\"\ncert = \"ecdsa-p384\"\nkx_groups = [\"X25519\"]\n\
         [[scenario]]\nname = \"f\"\nkind = \"handshake\"\ntls = \"1.2\"\ncert = \"ecdsa-p256\"\n",
    )
    .unwrap();
    let names = |i: usize| -> Vec<String> {
        client_groups(&m.scenarios[i])
            .into_iter()
            .map(common::tls::group_name)
            .collect()
    };
    assert_eq!(names(0), ["X25519", "secp256r1"]);
    assert_eq!(
        names(1),
        ["X25519", "secp384r1"],
        "already offered: not twice"
    );
    assert_eq!(names(2), ["X25519"], "TLS 1.3 signs apart from the groups");
    assert_eq!(names(3), ["X25519"], "an RSA certificate has no curve");
    assert_eq!(names(4), ["X25519", "secp384r1"]);
    assert!(
        names(5).is_empty(),
        "no groups named: the provider's, which hold both"
    );
}

#[test]
fn connections_in_flight_are_counted_in_the_rows_operation() {
    let m = Matrix::parse(
        "[[scenario]]\nname = \"h\"\nkind = \"handshake\"\ntls = \"1.3\"\nconnections = 8\n\
         [[scenario]]\nname = \"d\"\nkind = \"throughput\"\ntls = \"1.3\"\nconnections = 4\ndownload = 500000\n",
    )
    .unwrap();
    assert_eq!(in_flight_ops(&m.scenarios[0]), 8.0);
    assert_eq!(in_flight_ops(&m.scenarios[1]), 2.0);
}
