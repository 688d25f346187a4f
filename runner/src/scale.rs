//! `tlsbench run --scale 1,2,4,8`: the core-scaling sweep. The chosen rows run once per
//! server core count K, the server on the first K CPUs of `--server-cpus` (one worker per CPU)
//! and the generator on `--client-cpus` throughout; each K keeps its own results directory.
//! The sweep's own `scale.json` and `scale.svg` put every row's rate and server CPU per
//! operation against K beside the linear reference, and mark the points where the generator,
//! not the server, was the limit.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::results::{RowKind, RunResults};
use crate::{RunArgs, RunError, charts, harness};

/// Version of `scale.json`'s layout.
pub const SCALE_SCHEMA_VERSION: u32 = 1;

/// The `saturated` value of a row whose generator was the limit: its rate says how fast the
/// generator went, not how fast the server could go.
const CLIENT_BOUND: [&str; 2] = ["client", "both"];

/// `scale.json`: the sweep's rows, each a curve over the server core counts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScaleReport {
    /// [`SCALE_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The server core counts swept, in the order run.
    pub scale: Vec<usize>,
    /// `--server-cpus`: each K uses its first K.
    pub server_cpus: Vec<usize>,
    /// `--client-cpus`: the generator's CPUs at every K.
    pub client_cpus: Vec<usize>,
    /// Each K's own results directory (results.json, summary.md, charts), by K.
    pub runs: BTreeMap<usize, PathBuf>,
    /// One curve per row of the scenario file.
    pub rows: Vec<ScaleRow>,
    /// Why the sweep is not complete (a K's run was incomplete or a row is missing at a K);
    /// null when complete.
    pub incomplete: Option<String>,
}

/// One row of the scenario file across the core counts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScaleRow {
    /// The scenario's name.
    pub name: String,
    /// What it measures (its rate's unit).
    pub kind: RowKind,
    /// The rate's unit ("handshakes/s", "requests/s", "MB/s").
    pub unit: String,
    /// The rate per server core at the smallest K: the linear reference is K × this.
    pub per_core_reference: f64,
    /// One point per K, in the order run.
    pub points: Vec<ScalePoint>,
}

/// One row at one server core count.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScalePoint {
    /// Server cores (workers).
    pub server_cores: usize,
    /// The row's rate (median over repeats).
    pub rate: f64,
    /// Server CPU µs per operation (median over repeats); null when the server counted none.
    pub server_cpu_us: Option<f64>,
    /// The linear reference at this K: K × [`ScaleRow::per_core_reference`].
    pub linear: f64,
    /// rate / linear: 1.0 is perfect scaling; null when the reference is no rate at all (the
    /// smallest K measured none), never a made-up 0.
    pub efficiency: Option<f64>,
    /// The row's `saturated` at this K ("server", "client", "both", "neither").
    pub saturated: String,
    /// The generator was the limit (saturated "client" or "both"): this point is a floor on
    /// what the server could do, not its measure.
    pub generator_bound: bool,
}

/// The core counts to sweep, checked against `--server-cpus`: each K from 1 to its length,
/// no repeats.
pub fn plan(scale: &[usize], server_cpus: &[usize]) -> Result<Vec<usize>, RunError> {
    let mut seen = Vec::with_capacity(scale.len());
    for &k in scale {
        if k == 0 {
            return Err(RunError::Args(
                "--scale 0: a server needs at least one core".into(),
            ));
        }
        if k > server_cpus.len() {
            return Err(RunError::Args(format!(
                "--scale {k}: more server cores than --server-cpus {} gives ({})",
                common::cpu::CpuList(server_cpus.to_vec()),
                server_cpus.len()
            )));
        }
        if seen.contains(&k) {
            return Err(RunError::Args(format!("--scale {k} is given twice")));
        }
        seen.push(k);
    }
    Ok(seen)
}

/// Runs the sweep: one run of the matrix per K, then scale.json and scale.svg. Returns the
/// exit code (0 complete, 3 incomplete).
pub(crate) fn run(args: &RunArgs, env: &common::env::Environment) -> Result<i32, RunError> {
    let ks = plan(&args.scale, &args.server_cpus.0)?;
    let started = SystemTime::now();
    let dir = args.out.join(format!(
        "{}-{}-scale",
        harness::utc_stamp(started),
        harness::file_name(&env.hostname, '-', '_')
    ));
    let mut runs = Vec::with_capacity(ks.len());
    for &k in &ks {
        let mut one = args.clone();
        one.scale = Vec::new();
        one.server_cpus = common::cpu::CpuList(args.server_cpus.0[..k].to_vec());
        one.out = dir.join(format!("k{k}"));
        println!(
            "tlsbench run --scale: {k} server core(s), CPUs {}",
            one.server_cpus
        );
        let (results, run_dir) = crate::run_once(&one, env)?;
        // An interrupted or failed K ends the sweep: the points after it would be measured
        // on a server or generator already known to be wrong, or against the user's ^C.
        let stop = results.incomplete.is_some();
        runs.push((k, results, run_dir));
        if stop {
            break;
        }
    }
    let mut report = report(args, &runs);
    if let Some(not_run) = not_run(&ks, runs.len()) {
        let why = report.incomplete.take().into_iter().chain([not_run]);
        report.incomplete = Some(why.collect::<Vec<_>>().join("; "));
    }
    harness::write_json(&report, &dir.join("scale.json"))?;
    charts::scale_chart(&report, &dir.join("scale.svg"))
        .map_err(|e| RunError::Results(e.to_string()))?;
    println!("tlsbench run --scale: {}", dir.join("scale.json").display());
    if let Some(why) = &report.incomplete {
        eprintln!("tlsbench run --scale: INCOMPLETE: {why}");
        return Ok(3);
    }
    Ok(0)
}

/// The core counts a sweep stopped before, if it stopped early.
fn not_run(ks: &[usize], done: usize) -> Option<String> {
    let left = ks.get(done..).filter(|l| !l.is_empty())?;
    let left: Vec<String> = left.iter().map(ToString::to_string).collect();
    Some(format!("stopped before {} core(s)", left.join(", ")))
}

/// The sweep's report from each K's results, rows in the scenario file's order (that of the
/// first K's run).
pub fn report(args: &RunArgs, runs: &[(usize, RunResults, PathBuf)]) -> ScaleReport {
    let mut problems = Vec::new();
    for (k, r, _) in runs {
        if let Some(why) = &r.incomplete {
            problems.push(format!("{k} core(s): {why}"));
        }
    }
    let names: Vec<(String, RowKind)> = runs
        .first()
        .map(|(_, r, _)| {
            r.rows
                .iter()
                .map(|row| (row.name.clone(), row.kind))
                .collect()
        })
        .unwrap_or_default();
    let mut rows = Vec::with_capacity(names.len());
    for (name, kind) in names {
        let mut measured = Vec::with_capacity(runs.len());
        for (k, r, _) in runs {
            match r.rows.iter().find(|row| row.name == name) {
                Some(row) => measured.push((*k, row)),
                None => problems.push(format!("'{name}' has no result at {k} core(s)")),
            }
        }
        if let Some(row) = curve(&name, kind, &measured) {
            rows.push(row);
        }
    }
    ScaleReport {
        schema_version: SCALE_SCHEMA_VERSION,
        scale: runs.iter().map(|(k, _, _)| *k).collect(),
        server_cpus: args.server_cpus.0.clone(),
        client_cpus: args.client_cpus.0.clone(),
        runs: runs.iter().map(|(k, _, dir)| (*k, dir.clone())).collect(),
        rows,
        incomplete: (!problems.is_empty()).then(|| problems.join("; ")),
    }
}

/// One row's curve from its result at each K; none without a point. The reference is the
/// rate per core at the smallest K (K = 1 when swept), so a sweep without 1 still has one.
fn curve(
    name: &str,
    kind: RowKind,
    measured: &[(usize, &crate::results::Row)],
) -> Option<ScaleRow> {
    let (k0, base) = measured.iter().min_by_key(|(k, _)| *k)?;
    let per_core = base.rate.median / *k0 as f64;
    let points = measured
        .iter()
        .map(|(k, row)| {
            let linear = per_core * *k as f64;
            ScalePoint {
                server_cores: *k,
                rate: row.rate.median,
                server_cpu_us: row.server_cpu_us.map(|s| s.median),
                linear,
                efficiency: (linear > 0.0).then(|| row.rate.median / linear),
                saturated: row.saturated.clone(),
                generator_bound: CLIENT_BOUND.contains(&row.saturated.as_str()),
            }
        })
        .collect();
    Some(ScaleRow {
        name: name.to_owned(),
        kind,
        unit: kind.rate_unit().to_owned(),
        per_core_reference: per_core,
        points,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::results::Stat;
    use crate::results::tests_support::row;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    fn args(flags: &[&str]) -> RunArgs {
        Cli::try_parse_from(std::iter::once("run").chain(flags.iter().copied()))
            .unwrap()
            .run
    }

    fn results(rows: Vec<crate::results::Row>) -> RunResults {
        RunResults::fixture(rows)
    }

    fn hs(rate: f64, cpu: f64, saturated: &str) -> crate::results::Row {
        let mut r = row("full", RowKind::Handshake);
        r.rate = Stat::of(&[rate]);
        r.server_cpu_us = Some(Stat::of(&[cpu]));
        r.saturated = saturated.into();
        r
    }

    #[test]
    fn a_k_beyond_the_server_cpus_is_refused_naming_it() {
        let e = plan(&[1, 2, 4], &[0, 1]).unwrap_err().to_string();
        assert!(e.contains("--scale 4"), "{e}");
        assert!(e.contains("--server-cpus 0,1"), "{e}");
        assert_eq!(plan(&[1, 2], &[0, 1]).unwrap(), vec![1, 2]);
    }

    #[test]
    fn zero_and_repeated_core_counts_are_refused() {
        assert!(
            plan(&[0], &[0])
                .unwrap_err()
                .to_string()
                .contains("--scale 0")
        );
        let e = plan(&[1, 1], &[0, 1]).unwrap_err().to_string();
        assert!(e.contains("--scale 1 is given twice"), "{e}");
    }

    #[test]
    fn the_flag_takes_a_list_and_refuses_a_target() {
        assert_eq!(args(&["--scale", "1,2,4"]).scale, vec![1, 2, 4]);
        assert!(args(&[]).scale.is_empty());
        let cli = Cli::try_parse_from(["run", "--scale", "1", "--target", "https://x/"]);
        assert!(cli.is_err());
    }

    #[test]
    fn points_have_the_linear_reference_and_mark_the_generator_bound() {
        let a = args(&["--server-cpus", "0-3", "--client-cpus", "4-7"]);
        let runs = vec![
            (
                1,
                results(vec![hs(1000.0, 900.0, "server")]),
                PathBuf::from("k1"),
            ),
            (
                2,
                results(vec![hs(1900.0, 950.0, "server")]),
                PathBuf::from("k2"),
            ),
            (
                4,
                results(vec![hs(2500.0, 990.0, "client")]),
                PathBuf::from("k4"),
            ),
        ];
        let r = report(&a, &runs);
        assert_eq!(r.incomplete, None);
        assert_eq!(r.server_cpus, vec![0, 1, 2, 3]);
        let row = &r.rows[0];
        assert_eq!(row.per_core_reference, 1000.0);
        let linear: Vec<f64> = row.points.iter().map(|p| p.linear).collect();
        assert_eq!(linear, vec![1000.0, 2000.0, 4000.0]);
        assert_eq!(row.points[1].efficiency, Some(0.95));
        assert_eq!(row.points[2].server_cpu_us, Some(990.0));
        let bound: Vec<bool> = row.points.iter().map(|p| p.generator_bound).collect();
        assert_eq!(bound, vec![false, false, true]);
    }

    #[test]
    fn no_rate_at_the_smallest_k_gives_no_efficiency() {
        let a = args(&["--server-cpus", "0,1"]);
        let runs = vec![
            (1, results(vec![hs(0.0, 1.0, "server")]), PathBuf::new()),
            (2, results(vec![hs(10.0, 1.0, "server")]), PathBuf::new()),
        ];
        let row = &report(&a, &runs).rows[0];
        assert_eq!(row.points[1].efficiency, None);
    }

    #[test]
    fn a_sweep_stopped_early_names_the_core_counts_not_run() {
        assert_eq!(
            not_run(&[1, 2, 4], 1).as_deref(),
            Some("stopped before 2, 4 core(s)")
        );
        assert_eq!(not_run(&[1, 2, 4], 3), None);
    }

    #[test]
    fn without_one_core_the_reference_is_per_core_at_the_smallest() {
        let a = args(&["--server-cpus", "0-3"]);
        let runs = vec![
            (4, results(vec![hs(3000.0, 1.0, "server")]), PathBuf::new()),
            (2, results(vec![hs(2000.0, 1.0, "server")]), PathBuf::new()),
        ];
        let row = &report(&a, &runs).rows[0];
        assert_eq!(row.per_core_reference, 1000.0);
        assert_eq!(row.points[0].linear, 4000.0);
    }

    #[test]
    fn an_incomplete_run_or_a_missing_row_makes_the_sweep_incomplete() {
        let a = args(&["--server-cpus", "0,1"]);
        let mut bad = results(vec![hs(1.0, 1.0, "server")]);
        bad.incomplete = Some("sanity checks failed: x".into());
        let r = report(&a, &[(1, bad, PathBuf::new())]);
        assert!(
            r.incomplete
                .unwrap()
                .contains("1 core(s): sanity checks failed: x")
        );
        let runs = vec![
            (1, results(vec![hs(1.0, 1.0, "server")]), PathBuf::new()),
            (2, results(vec![]), PathBuf::new()),
        ];
        let why = report(&a, &runs).incomplete.unwrap();
        assert!(why.contains("'full' has no result at 2 core(s)"), "{why}");
    }

    #[test]
    fn the_chart_draws_the_reference_and_the_generator_bound_marker() {
        let a = args(&["--server-cpus", "0-3"]);
        let runs = vec![
            (
                1,
                results(vec![hs(1000.0, 900.0, "server")]),
                PathBuf::new(),
            ),
            (
                2,
                results(vec![hs(1500.0, 950.0, "client")]),
                PathBuf::new(),
            ),
        ];
        let dir = std::env::temp_dir().join(format!("tlsbench-scale-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("scale.svg");
        charts::scale_chart(&report(&a, &runs), &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("linear reference"), "{svg}");
        assert!(svg.contains("generator-bound"), "{svg}");
        assert!(svg.contains("full"), "{svg}");
        // Without a generator-bound point, the marker's legend is not drawn.
        let calm = vec![(
            1,
            results(vec![hs(1000.0, 900.0, "server")]),
            PathBuf::new(),
        )];
        charts::scale_chart(&report(&a, &calm), &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(!svg.contains("generator-bound"), "{svg}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
