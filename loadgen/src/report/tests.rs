//! Tests of `report`.

#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn an_open_loop_below_95_percent_of_its_rate_is_flagged() {
    let ol = |achieved: f64| OpenLoop {
        requested_per_s: 1000.0,
        achieved_per_s: achieved,
        not_started: 61,
    };
    assert_eq!(ol(950.0).shortfall(), None);
    assert_eq!(ol(1000.0).shortfall(), None);
    let w = ol(949.0).shortfall().unwrap();
    assert!(w.starts_with("OPEN LOOP FELL BEHIND"), "{w}");
    assert!(w.contains("started 949.0/s (94.9%)"), "{w}");
    assert!(w.contains("61 due operations never started"), "{w}");
}

#[test]
fn handshake_bytes_give_the_exact_mean_and_the_histograms_percentiles() {
    let mut h = crate::stats::new_bytes_hist();
    for n in [300u64, 300, 301, 1500] {
        crate::stats::record_bytes(&mut h, n);
    }
    let b = handshake_bytes(&h, 2401);
    assert_eq!(b.count, 4);
    assert_eq!(b.mean, 600.25, "the counted total over the count");
    assert_eq!(b.p50, 300);
    assert!(h.equivalent(b.p99, 1500), "{}", b.p99);
    assert_eq!(decode_hist(&b.hdr).unwrap(), h);
    let none = handshake_bytes(&crate::stats::new_bytes_hist(), 0);
    assert_eq!((none.count, none.mean, none.p99), (0, 0.0, 0));
}

#[test]
fn histograms_round_trip_and_merge_exactly() {
    let mut a = crate::stats::new_hist();
    let mut b = crate::stats::new_hist();
    for v in [10u64, 20, 30, 1000, 250_000] {
        a.saturating_record(v);
    }
    for v in [15u64, 99_999] {
        b.saturating_record(v);
    }
    let mut merged = decode_hist(&encode_hist(&a)).unwrap();
    merged.add(decode_hist(&encode_hist(&b)).unwrap()).unwrap();
    assert_eq!(merged.len(), 7);
    assert_eq!(merged.max(), a.max().max(b.max()));
    let l = latency(&a);
    assert_eq!(l.count, 5);
    assert_eq!(l.percentiles_us["p50"], 30);
    assert!(l.percentiles_us.contains_key("p99.99"));
    assert_eq!(l.percentiles_us["max"], a.max());
}
