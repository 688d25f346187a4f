//! What the chart tests draw: rows of each kind with latency histograms, a scratch
//! directory, and the texts of an SVG.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::results::{Row, RowKind, Stat};

pub(super) fn hist(values_us: &[u64]) -> String {
    let mut h = loadgen::stats::new_hist();
    for &v in values_us {
        loadgen::stats::record(&mut h, Duration::from_micros(v));
    }
    loadgen::report::encode_hist(&h)
}

pub(super) fn row(
    name: &str,
    kind: RowKind,
    rate: f64,
    resumed_share: Option<f64>,
    hdr: String,
) -> Row {
    Row {
        name: name.to_owned(),
        kind,
        rate: Stat {
            median: rate,
            min: rate * 0.95,
            max: rate * 1.04,
        },
        latency_us: BTreeMap::new(),
        latency_merged_us: BTreeMap::new(),
        server_cpu_us: Some(Stat {
            median: 100.0,
            min: 99.0,
            max: 101.0,
        }),
        client_cpu_us: Stat {
            median: 100.0,
            min: 99.0,
            max: 101.0,
        },
        handshakes: BTreeMap::new(),
        resumed_share,
        errors: 0,
        saturated: "neither".to_owned(),
        latency_hdr: hdr,
        repeats: 3,
        per_repeat: Vec::new(),
        tls_cost: None,
        cert: None,
        presented_cert: None,
        server_ops_from: crate::results::OpsFrom::Server,
        provider: "aws-lc-rs".to_owned(),
        handshake_bytes: None,
    }
}

pub(super) fn sample() -> Vec<Row> {
    vec![
        row(
            "full-x25519-p256",
            RowKind::Handshake,
            1850.0,
            Some(0.0),
            hist(&[400, 450, 480, 900, 2500]),
        ),
        row(
            "resumed-tickets",
            RowKind::Handshake,
            9100.0,
            Some(0.98),
            hist(&[90, 95, 100, 140, 600]),
        ),
        row(
            "keepalive-1k",
            RowKind::Requests,
            52000.0,
            None,
            hist(&[20, 22, 25, 30, 45, 300]),
        ),
        row(
            "bulk-1m",
            RowKind::Throughput,
            1480.0,
            None,
            hist(&[700, 710, 720, 800, 1500]),
        ),
    ]
}

pub(super) fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tlsbench-charts-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Each `<text>` element of an SVG: (x, its text).
pub(super) fn texts(svg: &str) -> Vec<(f64, String)> {
    svg.split("<text")
        .skip(1)
        .map(|t| {
            let x = t.split("x=\"").nth(1).unwrap().split('"').next().unwrap();
            let body = t
                .split_once('>')
                .unwrap()
                .1
                .split("</text>")
                .next()
                .unwrap();
            (x.parse().unwrap(), body.trim().to_owned())
        })
        .collect()
}
