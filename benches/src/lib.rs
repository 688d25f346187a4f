//! Criterion benches for tlsbench: in-memory handshakes (`benches/handshake.rs`), record
//! encryption and decryption (`benches/record.rs`), the crypto floor (`benches/floor.rs`) and
//! HTTP over TLS (`benches/http.rs`).
//!
//! This library holds what the bench targets share: the profile every bench target runs with
//! ([`criterion()`]) and the run marker it leaves ([`run`]). The in-memory client/server pairs
//! and the bench cases are the `pairs` crate (shared with `icount`); the marker's format and the
//! report built from criterion's results are the `bench_report` crate (`tlsbench
//! bench-report`), which does not link criterion.
//!
//! # Layout
//!
//! - this root: [`criterion()`], the configured Criterion, and where it writes.
//! - [`run`]: starting or joining the marked run (`tlsbench-run.json`) before measuring.
//!
//! # Profiles
//!
//! * Full (default): warm-up 1 s, measurement 3 s, 30 samples per bench.
//! * Quick: set `TLSBENCH_BENCH_QUICK=1` (warm-up 0.2 s, measurement 0.4 s, 10 samples), e.g.
//!   `TLSBENCH_BENCH_QUICK=1 cargo bench -p benches`. Numbers are noisier but every bench
//!   target runs; meant for CI and for checking that the benches still work. Any other value
//!   than `1` or `0` is refused.

use std::path::PathBuf;

pub mod run;

pub use bench_report::marker::{Profile, QUICK_ENV};

/// The Criterion every bench target runs with, in the selected profile. When the process
/// measures (`cargo bench`, not `cargo test --benches` or `--list`), it first starts or joins
/// the run marked in criterion's output directory.
///
/// # Panics
///
/// When `TLSBENCH_BENCH_QUICK` is neither `1` nor `0`, or the run marker cannot be written:
/// measuring on would leave results that `tlsbench bench-report` attributes to another run.
pub fn criterion() -> criterion::Criterion {
    let profile = Profile::from_env().unwrap_or_else(|e| panic!("{e}"));
    let (warm_up, measurement, samples) = profile.timing();
    let dir = criterion_dir();
    let args: Vec<String> = std::env::args().collect();
    let measuring = args.iter().any(|a| a == "--bench")
        && !args
            .iter()
            .any(|a| a == "--test" || a == "--list" || a.starts_with("--profile-time"));
    if measuring {
        if let Err(e) = run::mark(&dir, profile) {
            panic!("cannot mark the bench run: {e}");
        }
    }
    criterion::Criterion::default()
        // Set, not left to criterion (which may ask `cargo metadata`), so the marker and the
        // results are in one directory by construction.
        .output_directory(&dir)
        .warm_up_time(warm_up)
        .measurement_time(measurement)
        .sample_size(samples)
}

/// Criterion's output directory: `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`, else
/// `criterion/` in the target directory this bench binary was built in (the ancestor holding
/// cargo's `CACHEDIR.TAG`), else `target/criterion` — criterion's own order of preference.
fn criterion_dir() -> PathBuf {
    if let Some(dir) = bench_report::criterion_dir_from_env() {
        return dir;
    }
    let exe = std::env::current_exe().ok();
    // target/<profile>/deps/<bench>: the target directory is a few levels up.
    let target = exe.as_deref().and_then(|exe| {
        exe.ancestors()
            .take(6)
            .find(|dir| dir.join("CACHEDIR.TAG").is_file())
    });
    target.map_or_else(
        || PathBuf::from("target/criterion"),
        |t| t.join("criterion"),
    )
}
