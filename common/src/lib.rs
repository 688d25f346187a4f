//! What both sides of tlsbench share, kept in one place so the server, the load generator and
//! the benches measure the same configuration and read the same bytes the same way.
//!
//! # Layout
//! - [`tls`]: TLS versions, cipher suites, key-exchange groups and the crypto provider
//!   (aws-lc-rs, or ring with the feature `ring`) from names, into the rustls provider every
//!   config is built from; `tls::catalogue` lists what each provider supports.
//! - [`certs`]: certificate chains and key files: generating, writing and loading them.
//! - [`cert_compression`]: certificate compression (RFC 8879) from names, and each side's
//!   view of whether it happened.
//! - [`session`]: the record layer under a connection's HTTP, rustls or plain TCP for the floor.
//! - [`http`]: the HTTP field-value tokens both sides parse (OWS, lengths, `Connection`).
//! - [`chunked`]: the streaming decoder of chunked bodies, requests and responses alike.
//! - [`pattern`]: the `/bytes/N` body both sides agree on.
//! - [`io`]: non-blocking I/O outcomes (`WouldBlock`, `Interrupted`) and the output window.
//! - [`memory`]: one end of a connection held in memory, the socket of the in-memory tests and
//!   fuzzing harnesses.
//! - [`cpu`]: CPU-time accounting and CPU placement (lists, pinning, SMT siblings).
//! - [`keylog`]: the NSS key log for decrypting captures.
//! - [`env`](mod@env): the environment a result was measured in.
//! - [`date`]: UTC timestamps (RFC 3339, file-name stamps) and the range formatters accept.
//! - [`procfs`]: a process's resources from `/proc`.
//! - [`duration`]: the one duration syntax of every flag and file.
//! - `provenance`: the git revision a build records; `build.rs` includes it, and only its
//!   tests are compiled into the library.

pub mod cert_compression;
pub mod certs;
pub mod chunked;
pub mod cpu;
pub mod date;
pub mod duration;
pub mod env;
pub mod http;
pub mod io;
pub mod keylog;
pub mod memory;
pub mod pattern;
pub mod procfs;
#[cfg(test)]
mod provenance;
pub mod session;
pub mod tls;
