//! Criterion benches for tlsbench: in-memory handshakes (`benches/handshake.rs`), record
//! encryption and decryption (`benches/record.rs`), the crypto floor (`benches/floor.rs`) and
//! HTTP over TLS (`benches/http.rs`).
//!
//! This library holds what the bench targets share: the in-memory client/server pairs built
//! with the server's and the load generator's own config code, the profile every bench target
//! runs with ([`criterion`]) and the run marker it leaves, and the report built from
//! criterion's results.
//!
//! # Layout
//!
//! - [`pair`]: in-memory client/server pairs and the handshake and record cases.
//! - [`marker`]: the profile and the run marker (`tlsbench-run.json`) the benches write.
//! - [`report`]: `tlsbench bench-report`, the tables of one run.
//!
//! # Profiles
//!
//! * Full (default): warm-up 1 s, measurement 3 s, 30 samples per bench.
//! * Quick: set `TLSBENCH_BENCH_QUICK=1` (warm-up 0.2 s, measurement 0.4 s, 10 samples), e.g.
//!   `TLSBENCH_BENCH_QUICK=1 cargo bench -p benches`. Numbers are noisier but every bench
//!   target runs; meant for CI and for checking that the benches still work. Any other value
//!   than `1` or `0` is refused.

use std::path::PathBuf;

pub mod marker;
pub mod pair;
pub mod report;

pub use marker::{Profile, QUICK_ENV};

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
        if let Err(e) = marker::mark(&dir, profile) {
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
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
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
