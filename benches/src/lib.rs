//! Criterion benches for tlsbench: in-memory handshakes (`benches/handshake.rs`), record
//! encryption and decryption (`benches/record.rs`), the crypto floor (`benches/floor.rs`) and
//! HTTP over TLS (`benches/http.rs`).
//!
//! This library holds what the bench targets share: the in-memory client/server pairs built
//! with the server's and the load generator's own config code ([`pair`]), the report built
//! from criterion's results ([`report`]), and the profile every bench target runs with
//! ([`criterion`], from [`timing`]).
//!
//! # Profiles
//!
//! * Full (default): warm-up 1 s, measurement 3 s, 30 samples per bench.
//! * Quick: set `TLSBENCH_BENCH_QUICK=1` (warm-up 0.2 s, measurement 0.4 s, 10 samples), e.g.
//!   `TLSBENCH_BENCH_QUICK=1 cargo bench -p benches`. Numbers are noisier but every bench
//!   target runs; meant for CI and for checking that the benches still work.

use std::time::Duration;

pub mod pair;
pub mod report;

/// The environment variable selecting the quick profile when set to `1`.
pub const QUICK_ENV: &str = "TLSBENCH_BENCH_QUICK";

/// True when the quick profile is selected (`TLSBENCH_BENCH_QUICK=1`).
pub fn quick() -> bool {
    std::env::var_os(QUICK_ENV).is_some_and(|v| v == "1")
}

/// The profile's `(warm-up time, measurement time, sample size)` per bench.
pub fn timing() -> (Duration, Duration, usize) {
    if quick() {
        (Duration::from_millis(200), Duration::from_millis(400), 10)
    } else {
        (Duration::from_secs(1), Duration::from_secs(3), 30)
    }
}

/// The Criterion every bench target runs with, in the selected profile.
pub fn criterion() -> criterion::Criterion {
    let (warm_up, measurement, samples) = timing();
    criterion::Criterion::default()
        .warm_up_time(warm_up)
        .measurement_time(measurement)
        .sample_size(samples)
}
