//! What the compare tests build their runs from: rows, a four-row run, its file, the flags.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Allow, CompareArgs, Metric};
use crate::results::{Row, RowKind, RunResults, Stat};

pub(super) fn stat(v: f64) -> Stat {
    Stat {
        median: v,
        min: v * 0.98,
        max: v * 1.02,
    }
}

pub(super) fn row(name: &str, kind: RowKind, server_cpu: f64, rate: f64) -> Row {
    Row {
        name: name.to_owned(),
        kind,
        rate: stat(rate),
        latency_us: BTreeMap::new(),
        latency_merged_us: BTreeMap::new(),
        server_cpu_us: Some(stat(server_cpu)),
        client_cpu_us: stat(server_cpu * 1.5),
        handshakes: BTreeMap::new(),
        resumed_share: None,
        errors: 0,
        saturated: "neither".to_owned(),
        latency_hdr: String::new(),
        repeats: 3,
        per_repeat: Vec::new(),
        tls_cost: None,
        cert: None,
        presented_cert: None,
        server_ops_from: crate::results::OpsFrom::Server,
        provider: "aws-lc-rs".into(),
        handshake_bytes: None,
    }
}

pub(super) fn base() -> RunResults {
    RunResults::fixture(vec![
        row("full-p256", RowKind::Handshake, 800.0, 1200.0),
        row("resumed", RowKind::Handshake, 120.0, 9000.0),
        row("keepalive", RowKind::Requests, 15.0, 50000.0),
        row("bulk-64k", RowKind::Throughput, 900.0, 1100.0),
    ])
}

/// Writes `r` to a fresh temporary file.
pub(super) fn temp_json(r: &RunResults) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "tlsbench-compare-{}-{}.json",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, serde_json::to_string(r).unwrap()).unwrap();
    path
}

pub(super) fn args(old: PathBuf, new: PathBuf, metric: Metric) -> CompareArgs {
    CompareArgs {
        old,
        new,
        threshold: 0.10,
        metric,
        markdown: false,
        allow: Allow::default(),
        side_by_side: false,
        show: super::Column::ALL.to_vec(),
        chart: None,
    }
}
