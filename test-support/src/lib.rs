//! Test support shared by the test binaries of several packages: processes run with a bound,
//! servers on loopback port 0 (in-process, as a child, misbehaving on purpose, or nginx),
//! verifying clients, and the certificate refusal cases. A dev-dependency only: no product
//! crate depends on it, and it is never published.
//!
//! # Layout
//!
//! - [`process`]: a child process killed and reaped on drop, run to the end with a bound.
//! - [`binary`]: the `tlsbench` binary as a child (the root package's tests): servers whose
//!   stdout is waited on, temp directories, scraping `--admin`, `tlsbench run`'s results.
//! - [`loopback`]: the server's tests: generated chains, an in-process server on port 0, a
//!   blocking rustls client, and the check that a server survived a test.
//! - [`load_target`]: the load generator's tests: an in-process server as its target and load
//!   options aimed at it.
//! - [`faulty`]: servers that misbehave on purpose (tarpit, truncated responses, a successor
//!   with another CA), for the load generator's fault tests at library and binary level.
//! - [`refusals`]: the certificate cases a client must refuse, and curl run on them.
//! - [`client_certs`]: mutual TLS: a client CA with good, expired, serverAuth-only and
//!   foreign client identities as files, and a server requiring them.
//! - [`nginx`]: a real nginx on loopback for interoperability tests.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

pub mod binary;
pub mod client_certs;
pub mod faulty;
pub mod load_target;
pub mod loopback;
pub mod nginx;
pub mod process;
pub mod refusals;

/// A fresh, empty directory under the system temp dir named after `tag`, this process and a
/// counter (so tests running in parallel never share one); a leftover of an earlier process
/// with the same ID is removed first. The caller removes it (or lets [`binary::TempDir`] do so).
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("tlsbench-test-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
