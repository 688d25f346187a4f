//! `tlsbench run --scale`: the sweep at one server core on a one-row matrix (the shape of its
//! output, not a timing claim: this machine has two cores), and a core count beyond
//! `--server-cpus` refused before anything runs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use support::{
    ONE_ROW_MATRIX, TempDir, p, quick_run, results_json, run_dir, tlsbench, write_matrix,
};
use test_support::binary as support;

#[test]
fn a_sweep_at_one_core_writes_scale_json_and_svg_with_the_linear_reference() {
    let dir = TempDir::new("scale");
    let matrix = write_matrix(dir.path(), "one.toml", ONE_ROW_MATRIX);
    let out = dir.path().join("results");
    let certs = dir.path().join("certs");
    let extra = ["--scale", "1", "--certs-dir", p(&certs)];
    let ran = tlsbench(&quick_run(&matrix, &out, &extra));
    assert_eq!(ran.status.code(), Some(0), "{}", ran.describe());
    let sweep = run_dir(&out);
    assert!(
        sweep
            .file_name()
            .unwrap()
            .to_string_lossy()
            .ends_with("-scale"),
        "{}",
        sweep.display()
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sweep.join("scale.json")).unwrap()).unwrap();
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["scale"], serde_json::json!([1]));
    assert!(doc["incomplete"].is_null(), "{doc}");
    // The one K's own run is a whole run directory, with its server on one CPU.
    let k1 = run_dir(&sweep.join("k1"));
    assert_eq!(doc["runs"]["1"].as_str().unwrap(), p(&k1));
    let run = results_json(&k1);
    assert_eq!(run["server_cpus"].as_array().unwrap().len(), 1);
    let rows = doc["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row["name"], "full tls1.3 x25519 ecdsa-p256");
    assert_eq!(row["unit"], "handshakes/s");
    let point = &row["points"][0];
    assert_eq!(point["server_cores"], 1);
    let rate = point["rate"].as_f64().unwrap();
    assert!(rate > 0.0, "{point}");
    assert_eq!(rate, run["rows"][0]["rate"]["median"].as_f64().unwrap());
    // At the smallest K the reference is the point itself.
    assert_eq!(point["linear"].as_f64().unwrap(), rate);
    assert_eq!(point["efficiency"].as_f64().unwrap(), 1.0);
    assert!(point["server_cpu_us"].as_f64().unwrap() > 0.0, "{point}");
    let saturated = point["saturated"].as_str().unwrap();
    assert_eq!(
        point["generator_bound"].as_bool().unwrap(),
        saturated == "client" || saturated == "both",
        "{point}"
    );
    let svg = std::fs::read_to_string(sweep.join("scale.svg")).unwrap();
    assert!(svg.contains("linear reference"), "{svg}");
    assert!(svg.contains("server cores"), "{svg}");
}

#[test]
fn a_core_count_beyond_the_server_cpus_is_refused_naming_it() {
    let dir = TempDir::new("scale-refused");
    let matrix = write_matrix(dir.path(), "one.toml", ONE_ROW_MATRIX);
    let out = dir.path().join("results");
    let extra = ["--scale", "1,2", "--server-cpus", "0", "--client-cpus", "1"];
    let ran = tlsbench(&quick_run(&matrix, &out, &extra));
    assert!(!ran.status.success(), "{}", ran.describe());
    assert!(
        ran.stderr.contains("--scale 2") && ran.stderr.contains("--server-cpus 0"),
        "{}",
        ran.describe()
    );
    assert!(!out.exists(), "nothing is written: {}", out.display());
}
