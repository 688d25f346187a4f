//! The report end to end on criterion trees written by hand (criterion's own layout and JSON),
//! with a known answer for every figure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, UNIX_EPOCH};

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::marker::Profile;
use crate::marker::{self, RunMarker};
use crate::ratios::{aead_of_suite, kx_floor_id};
use crate::results::{collect, parse_throughput};
use crate::tables::{Report, csv_field};
use crate::{LeftOut, ReportError, run, run_at};

/// A scratch directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "tlsbench-report-{name}-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Writes one benchmark as criterion lays it out: `<group>/<dir>/<sub>/benchmark.json`
/// and `estimates.json`, with the mean deliberately different from the median so a test
/// fails if the mean is read.
fn write_bench(
    root: &Path,
    sub: &str,
    group: &str,
    function: &str,
    value: Option<&str>,
    throughput: &str,
    median_ns: f64,
) {
    let mut dir = root.join(group).join(function.replace('/', "_"));
    if let Some(v) = value {
        dir = dir.join(v);
    }
    let dir = dir.join(sub);
    fs::create_dir_all(&dir).unwrap();
    let value_json = value.map_or("null".to_owned(), |v| format!("\"{v}\""));
    let full_id = match value {
        Some(v) => format!("{group}/{function}/{v}"),
        None => format!("{group}/{function}"),
    };
    fs::write(
        dir.join("benchmark.json"),
        format!(
            r#"{{"group_id":"{group}","function_id":"{function}","value_str":{value_json},"throughput":{throughput},"full_id":"{full_id}","directory_name":"x","title":"{full_id}"}}"#
        ),
    )
    .unwrap();
    let est = |v: f64| {
        format!(
            r#"{{"confidence_interval":{{"confidence_level":0.95,"lower_bound":{v},"upper_bound":{v}}},"point_estimate":{v},"standard_error":1.0}}"#
        )
    };
    fs::write(
        dir.join("estimates.json"),
        format!(
            r#"{{"mean":{},"median":{},"median_abs_dev":{},"slope":null,"std_dev":{}}}"#,
            est(median_ns * 3.0),
            est(median_ns),
            est(1.0),
            est(1.0)
        ),
    )
    .unwrap();
    write_samples(&dir, Profile::Quick.sample_size());
}

/// Criterion's `sample.json` with `n` samples.
fn write_samples(new_dir: &Path, n: usize) {
    let iters: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
    let iters = iters.join(",");
    fs::write(
        new_dir.join("sample.json"),
        format!(r#"{{"sampling_mode":"Linear","iters":[{iters}],"times":[{iters}]}}"#),
    )
    .unwrap();
}

/// The marker of a quick run that started an hour ago: the fixture's files are newer.
fn mark_run(root: &Path) -> RunMarker {
    let run = RunMarker::next(
        None,
        "100@5",
        Profile::Quick,
        SystemTime::now() - Duration::from_secs(3600),
    );
    marker::write(root, &run).unwrap();
    run
}

/// Makes a result look written `age` ago (criterion wrote it in an earlier run).
fn age(new_dir: &Path, age: Duration) {
    let file = fs::File::options()
        .write(true)
        .open(new_dir.join("estimates.json"))
        .unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

fn bench(root: &Path, group: &str, function: &str, median_ns: f64) {
    write_bench(root, "new", group, function, None, "null", median_ns);
}

/// A criterion tree of one quick run with a known answer for every figure the report
/// computes.
fn fixture(root: &Path) {
    mark_run(root);
    bench(root, "floor", "sign/rsa2048", 300_000.0);
    bench(root, "floor", "verify/rsa2048", 20_000.0);
    bench(root, "floor", "kx/x25519", 40_000.0);
    bench(root, "floor", "hkdf/tls13-schedule", 10_000.0);
    write_bench(
        root,
        "new",
        "floor",
        "aead/seal/aes-128-gcm/16384",
        None,
        r#"{"Bytes":16384}"#,
        1638.4,
    );
    // 10 handshakes per iteration: 420 µs each; floor 350 µs → 1.2.
    write_bench(
        root,
        "new",
        "handshake",
        "server/tls13/x25519/rsa2048/full",
        None,
        r#"{"Elements":10}"#,
        4_200_000.0,
    );
    // Floor 20 + 40 + 10 = 70 µs; 100 µs → 1.4285…
    bench(
        root,
        "handshake",
        "client/tls13/X25519/rsa2048/full",
        100_000.0,
    );
    // No floor/sign/ed25519 and no hybrid server kx: not measured.
    bench(
        root,
        "handshake",
        "server/tls13/x25519mlkem768/ed25519/full",
        200_000.0,
    );
    // Resumed handshakes have no floor ratio.
    bench(
        root,
        "handshake",
        "server/tls13/x25519/rsa2048/resumed",
        50_000.0,
    );
    // 16384 B in 2048 ns = 8 GB/s; floor 10 GB/s → 0.8.
    write_bench(
        root,
        "new",
        "record",
        "seal/TLS13_AES_128_GCM_SHA256",
        Some("16384"),
        r#"{"Bytes":16384}"#,
        2048.0,
    );
    write_bench(
        root,
        "new",
        "record",
        "seal/TLS13_AES_128_GCM_SHA256",
        Some("64"),
        r#"{"Bytes":64}"#,
        64.0,
    );
    bench(root, "http", "parse/hello", 700.0);
    bench(root, "http", "encode/hello", 30.0);
    // The previous run and an unanalysed bench must both be ignored.
    write_bench(root, "base", "http", "parse/hello", None, "null", 1.0);
    let unanalysed = root.join("http").join("chunked_decode").join("new");
    fs::create_dir_all(&unanalysed).unwrap();
    fs::write(
        unanalysed.join("benchmark.json"),
        r#"{"group_id":"http","function_id":"chunked/decode","value_str":null,"throughput":null}"#,
    )
    .unwrap();
}

#[test]
fn reads_medians_and_ids() {
    let tmp = TempDir::new("collect");
    fixture(&tmp.0);
    let ms = collect(&tmp.0).unwrap();
    let ids: Vec<String> = ms.iter().map(|m| format!("{}/{}", m.group, m.id)).collect();
    assert_eq!(
        ids,
        [
            "floor/aead/seal/aes-128-gcm/16384",
            "floor/hkdf/tls13-schedule",
            "floor/kx/x25519",
            "floor/sign/rsa2048",
            "floor/verify/rsa2048",
            "handshake/client/tls13/X25519/rsa2048/full",
            "handshake/server/tls13/x25519/rsa2048/full",
            "handshake/server/tls13/x25519/rsa2048/resumed",
            "handshake/server/tls13/x25519mlkem768/ed25519/full",
            "http/encode/hello",
            "http/parse/hello",
            "record/seal/TLS13_AES_128_GCM_SHA256/16384",
            "record/seal/TLS13_AES_128_GCM_SHA256/64",
        ]
    );
    let parse = ms.iter().find(|m| m.id == "parse/hello").unwrap();
    assert_eq!(parse.median_ns, 700.0);
    let server = ms
        .iter()
        .find(|m| m.id == "server/tls13/x25519/rsa2048/full")
        .unwrap();
    assert_eq!(server.per_op_ns(), 420_000.0);
    let aead = ms
        .iter()
        .find(|m| m.group == "floor" && m.id.starts_with("aead"))
        .unwrap();
    let bps = aead.bytes_per_s(None).unwrap();
    assert!((bps - 1e10).abs() < 1.0, "{bps}");
}

#[test]
fn throughput_shapes() {
    let parse = |s: &str| parse_throughput(Some(&serde_json::from_str(s).unwrap()));
    assert_eq!(parse(r#"{"Bytes":8}"#).bytes, Some(8.0));
    assert_eq!(parse(r#"{"BytesDecimal":8}"#).bytes, Some(8.0));
    assert_eq!(parse(r#"{"Bits":64}"#).bytes, Some(8.0));
    assert_eq!(parse(r#"{"Elements":3}"#).elements, Some(3.0));
    let both = parse(r#"{"ElementsAndBytes":{"elements":2,"bytes":5}}"#);
    assert_eq!((both.elements, both.bytes), (Some(2.0), Some(5.0)));
    assert_eq!(parse(r#"{"Future":1}"#), parse_throughput(None));
}

#[test]
fn ratios_are_exact_and_gaps_say_not_measured() {
    let tmp = TempDir::new("ratios");
    fixture(&tmp.0);
    let ms = collect(&tmp.0).unwrap();
    let run = mark_run(&tmp.0);
    let report = Report::new(&ms, &run, &[]);
    let got: Vec<(&str, Option<String>, &str)> = report
        .ratios
        .iter()
        .map(|r| {
            (
                r.subject.as_str(),
                r.value.map(|v| format!("{v:.6}")),
                r.status(),
            )
        })
        .collect();
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        got,
        [
            (
                "handshake/server/tls13/x25519/rsa2048/full",
                s("1.200000"),
                "ok"
            ),
            (
                "handshake/server/tls13/x25519mlkem768/ed25519/full",
                None,
                "not measured"
            ),
            (
                "handshake/client/tls13/X25519/rsa2048/full",
                s("1.428571"),
                "misses target"
            ),
            (
                "record/seal/TLS13_AES_128_GCM_SHA256/16384",
                s("0.800000"),
                "misses target"
            ),
            ("record/seal/aes-256-gcm/16384", None, "not measured"),
            ("record/seal/chacha20-poly1305/16384", None, "not measured"),
        ]
    );
    assert_eq!(
        report.ratios[0].detail,
        "350.00 µs = sign 300.00 + kx 40.00 + hkdf 10.00 (handshake 420.00 µs)"
    );
    assert_eq!(
        report.ratios[1].detail,
        "missing floor/sign/ed25519, floor/kx/x25519mlkem768-server"
    );
    assert_eq!(
        report.ratios[3].detail,
        "8.000 GB/s ÷ floor/aead/seal/aes-128-gcm/16384 10.000 GB/s"
    );
    assert_eq!(report.http_overhead, Ok(730.0));
}

#[test]
fn writes_markdown_and_csv() {
    let tmp = TempDir::new("files");
    let criterion = tmp.0.join("criterion");
    fixture(&criterion);
    let out = tmp.0.join("results");
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let summary = run_at(&criterion, &out, now).unwrap();
    assert_eq!(summary.measurements, 13);
    assert_eq!(summary.markdown, out.join("bench-20231114T221320Z.md"));
    assert_eq!(summary.csv, out.join("bench-20231114T221320Z.csv"));
    assert_eq!(summary.latest_markdown, out.join("bench-latest.md"));
    assert_eq!(summary.latest_csv, out.join("bench-latest.csv"));
    assert_eq!(summary.ratios.len(), 6);

    let csv = fs::read_to_string(&summary.csv).unwrap();
    assert_eq!(fs::read_to_string(&summary.latest_csv).unwrap(), csv);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "section,id,metric,value,unit,target,status");
    for expected in [
        "handshake,server/tls13/x25519/rsa2048/full,us_per_op,420.000,us,,",
        "handshake,server/tls13/x25519/rsa2048/full,ops_per_s,2381.0,1/s,,",
        "handshake,client/tls13/X25519/rsa2048/full,ops_per_s,10000.0,1/s,,",
        "record,seal/TLS13_AES_128_GCM_SHA256/16384,us_per_op,2.048,us,,",
        "record,seal/TLS13_AES_128_GCM_SHA256/16384,bytes_per_s,8000000000,B/s,,",
        "floor_ratio,handshake/server/tls13/x25519/rsa2048/full,ratio,1.2000,x,<= 1.3,ok",
        "floor_ratio,handshake/client/tls13/X25519/rsa2048/full,ratio,1.4286,x,<= 1.3,misses target",
        "floor_ratio,handshake/server/tls13/x25519mlkem768/ed25519/full,ratio,,x,<= 1.3,not measured",
        "floor_ratio,record/seal/TLS13_AES_128_GCM_SHA256/16384,ratio,0.8000,x,>= 0.9,misses target",
        "floor_ratio,record/seal/aes-256-gcm/16384,ratio,,x,>= 0.9,not measured",
        "floor,aead/seal/aes-128-gcm/16384,bytes_per_s,10000000000,B/s,,",
        "floor,sign/rsa2048,us_per_op,300.000,us,,",
        "http,per-request,ns_per_op,730.0,ns,,",
        "http,parse/hello,ns_per_op,700.0,ns,,",
    ] {
        assert!(
            lines.contains(&expected),
            "missing CSV line {expected:?} in\n{csv}"
        );
    }
    // Resumed handshakes are reported but have no ratio; nothing from base/ leaks in.
    assert!(csv.contains("handshake,server/tls13/x25519/rsa2048/resumed,us_per_op,50.000"));
    assert!(!csv.contains("ns_per_op,1.0,"));
    assert!(!csv.contains("chunked"));

    let md = fs::read_to_string(&summary.markdown).unwrap();
    assert_eq!(fs::read_to_string(&summary.latest_markdown).unwrap(), md);
    assert!(md.starts_with("# tlsbench bench report 20231114T221320Z\n"));
    for expected in [
        "| server | tls13 | x25519 | rsa2048 | full | 420.00 | 2381 |",
        "| client | tls13 | X25519 | rsa2048 | full | 100.00 | 10000 |",
        "| seal | TLS13_AES_128_GCM_SHA256 | 16384 | 2.05 | 8.000 | 7629.4 |",
        "| handshake/server/tls13/x25519/rsa2048/full | 1.20 | <= 1.3 | ok | 350.00 µs = sign 300.00 + kx 40.00 + hkdf 10.00 (handshake 420.00 µs) |",
        "| handshake/server/tls13/x25519mlkem768/ed25519/full | not measured | <= 1.3 | not measured | missing floor/sign/ed25519, floor/kx/x25519mlkem768-server |",
        "| record/seal/chacha20-poly1305/16384 | not measured | >= 0.9 | not measured | missing record/seal/<chacha20-poly1305 suite>/16384 |",
        "| aead/seal/aes-128-gcm/16384 | 1.64 | 610352 | 10.000 |",
        "Per request outside TLS: 730.0 ns (parse/hello + encode/hello).",
        "| parse/hello | 700.0 | 1428571 |  |",
    ] {
        assert!(md.contains(expected), "missing {expected:?} in\n{md}");
    }
    // 64-byte records (1 GB/s) sort before 16 KiB ones; server rows before client rows.
    let small = md
        .find("| seal | TLS13_AES_128_GCM_SHA256 | 64 | 0.06 | 1.000 | 953.7 |")
        .unwrap();
    let full = md
        .find("| seal | TLS13_AES_128_GCM_SHA256 | 16384 |")
        .unwrap();
    assert!(small < full);
    let server = md
        .find("| server | tls13 | x25519 | rsa2048 | full")
        .unwrap();
    let client = md.find("| client | tls13").unwrap();
    assert!(server < client);
}

#[test]
fn missing_parts_are_not_measured() {
    let tmp = TempDir::new("sparse");
    let criterion = tmp.0.join("criterion");
    bench(&criterion, "http", "parse/hello", 700.0);
    mark_run(&criterion);
    let summary = run_at(&criterion, &tmp.0.join("out"), UNIX_EPOCH).unwrap();
    let csv = fs::read_to_string(&summary.csv).unwrap();
    assert!(csv.contains("handshake,,,,,,not measured\n"));
    assert!(csv.contains("record,,,,,,not measured\n"));
    assert!(csv.contains("http,per-request,ns_per_op,,ns,,not measured\n"));
    let md = fs::read_to_string(&summary.markdown).unwrap();
    assert!(md.contains("Handshakes: not measured."));
    assert!(md.contains("Crypto floor: not measured."));
    assert!(md.contains("Per request outside TLS: not measured (missing http/encode/hello)."));
    assert_eq!(
        summary.markdown,
        tmp.0.join("out").join("bench-19700101T000000Z.md")
    );
}

#[test]
fn errors_name_the_directory() {
    let tmp = TempDir::new("errors");
    let missing = tmp.0.join("nope");
    let err = run(&missing, &tmp.0).unwrap_err();
    assert!(matches!(err, ReportError::MissingDir { .. }));
    assert!(err.to_string().contains("nope"));

    let empty = tmp.0.join("empty");
    fs::create_dir_all(empty.join("report")).unwrap();
    assert!(matches!(
        run(&empty, &tmp.0),
        Err(ReportError::NoResults { .. })
    ));

    let bad = tmp.0.join("bad");
    bench(&bad, "floor", "kx/x25519", 1.0);
    fs::write(bad.join("floor/kx_x25519/new/estimates.json"), "{").unwrap();
    let err = run(&bad, &tmp.0).unwrap_err();
    assert!(matches!(err, ReportError::Json { .. }));
    assert!(err.to_string().contains("estimates.json"));
}

#[test]
fn names_map_to_floor_ids() {
    assert_eq!(kx_floor_id("X25519", "server"), "kx/x25519");
    assert_eq!(kx_floor_id("P-256", "client"), "kx/secp256r1");
    assert_eq!(
        kx_floor_id("X25519MLKEM768", "client"),
        "kx/x25519mlkem768-client"
    );
    assert_eq!(
        aead_of_suite("TLS13_AES_256_GCM_SHA384"),
        Some("aes-256-gcm")
    );
    assert_eq!(
        aead_of_suite("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
        Some("chacha20-poly1305")
    );
    assert_eq!(aead_of_suite("aes-128-gcm"), Some("aes-128-gcm"));
    assert_eq!(aead_of_suite("null"), None);
    assert_eq!(csv_field("a,b"), "\"a,b\"");
    assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
}

#[test]
fn one_clean_run_is_reported_whole() {
    let tmp = TempDir::new("clean");
    let criterion = tmp.0.join("criterion");
    fixture(&criterion);
    let summary = run_at(&criterion, &tmp.0.join("out"), UNIX_EPOCH).unwrap();
    assert_eq!(summary.measurements, 13);
    assert!(summary.left_out.is_empty(), "{:?}", summary.left_out);
    assert_eq!(summary.run.profile, Profile::Quick);
    let md = fs::read_to_string(&summary.markdown).unwrap();
    assert!(md.contains("Run: quick profile, started "), "{md}");
    assert!(!md.contains("Left out"), "{md}");
    let csv = fs::read_to_string(&summary.csv).unwrap();
    assert!(csv.contains("run,,profile,quick,,,\n"), "{csv}");
    assert!(!csv.contains("left_out"), "{csv}");
}

#[test]
fn results_of_an_earlier_run_are_left_out_and_listed_first() {
    let tmp = TempDir::new("stale");
    let criterion = tmp.0.join("criterion");
    fixture(&criterion);
    // A filtered rerun: the floor's key exchange and the HTTP encoder are from a run of
    // yesterday, so neither may feed a ratio or the per-request overhead.
    age(
        &criterion.join("floor/kx_x25519/new"),
        Duration::from_secs(86_400),
    );
    age(
        &criterion.join("http/encode_hello/new"),
        Duration::from_secs(86_400),
    );
    let summary = run_at(&criterion, &tmp.0.join("out"), UNIX_EPOCH).unwrap();
    assert_eq!(summary.measurements, 11);
    let ids: Vec<&str> = summary.left_out.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(ids, ["floor/kx/x25519", "http/encode/hello"]);
    assert!(
        summary.left_out[0]
            .reason
            .ends_with("before this run started"),
        "{:?}",
        summary.left_out
    );
    let md = fs::read_to_string(&summary.markdown).unwrap();
    let warning = md
        .find("> **Left out: 2 result(s) from another run or profile.**")
        .unwrap_or_else(|| panic!("no warning in\n{md}"));
    assert!(warning < md.find("## Handshakes").unwrap(), "{md}");
    assert!(md.contains("> - `floor/kx/x25519`: written "), "{md}");
    assert!(md.contains("Per request outside TLS: not measured (missing http/encode/hello)."));
    assert!(md.contains("missing floor/kx/x25519"), "{md}");
    assert!(!md.contains("| kx/x25519 |"), "{md}");
    let csv = fs::read_to_string(&summary.csv).unwrap();
    assert!(
        csv.contains("\nleft_out,floor/kx/x25519,,,,,\"written "),
        "{csv}"
    );
    assert!(!csv.contains("floor,kx/x25519,"), "{csv}");
}

#[test]
fn results_of_another_profile_are_left_out() {
    let tmp = TempDir::new("profile");
    let criterion = tmp.0.join("criterion");
    fixture(&criterion);
    // Written during the quick run, but with the full profile's sample count.
    write_samples(
        &criterion.join("floor/sign_rsa2048/new"),
        Profile::Full.sample_size(),
    );
    fs::remove_file(criterion.join("http/parse_hello/new/sample.json")).unwrap();
    let summary = run_at(&criterion, &tmp.0.join("out"), UNIX_EPOCH).unwrap();
    assert_eq!(
        summary.left_out,
        [
            LeftOut {
                id: "floor/sign/rsa2048".to_owned(),
                reason: "30 samples; the run's quick profile takes 10".to_owned(),
            },
            LeftOut {
                id: "http/parse/hello".to_owned(),
                reason: "no sample.json, so its profile is unknown".to_owned(),
            },
        ]
    );
    let md = fs::read_to_string(&summary.markdown).unwrap();
    assert!(
        md.contains("> - `floor/sign/rsa2048`: 30 samples; the run's quick profile takes 10"),
        "{md}"
    );
    assert!(md.contains("missing floor/sign/rsa2048"), "{md}");
}

#[test]
fn no_marker_or_nothing_from_the_run_is_refused() {
    let tmp = TempDir::new("unmarked");
    let criterion = tmp.0.join("criterion");
    bench(&criterion, "http", "parse/hello", 700.0);
    let err = run_at(&criterion, &tmp.0.join("out"), UNIX_EPOCH).unwrap_err();
    assert!(matches!(err, ReportError::NoRunMarker { .. }), "{err}");
    assert!(err.to_string().contains(marker::FILE_NAME), "{err}");

    mark_run(&criterion);
    age(
        &criterion.join("http/parse_hello/new"),
        Duration::from_secs(7200),
    );
    let err = run_at(&criterion, &tmp.0.join("out"), UNIX_EPOCH).unwrap_err();
    assert!(
        matches!(err, ReportError::NothingFromRun { left_out: 1, .. }),
        "{err}"
    );
    assert!(!tmp.0.join("out").exists());
}

#[test]
fn criterion_dir_follows_criterions_order_of_preference() {
    use crate::criterion_dir_from;
    let some = |s: &str| Some(std::ffi::OsString::from(s));
    assert_eq!(
        criterion_dir_from(some("/ch"), some("/t")),
        Some(PathBuf::from("/ch"))
    );
    assert_eq!(
        criterion_dir_from(None, some("/t")),
        Some(PathBuf::from("/t/criterion"))
    );
    assert_eq!(criterion_dir_from(None, None), None);
}
