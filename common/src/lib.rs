//! What both sides of tlsbench share, kept in one place so the server, the load generator and
//! the benches measure the same configuration: TLS configuration from names ([`tls`]),
//! certificate chains and key files ([`certs`]), CPU-time accounting ([`cpu`]), the NSS key
//! log ([`keylog`]), the `/bytes/N` body pattern both sides agree on ([`pattern`]), the
//! decoder for chunked bodies both sides read ([`chunked`]), the environment a result was
//! measured in ([`env`]), a process's resources from `/proc` ([`procfs`]) and the one
//! duration syntax of every flag and file ([`duration`]). `provenance` decides the git revision
//! a build records; `build.rs` includes it, and only its tests are compiled into the library.

pub mod certs;
pub mod chunked;
pub mod cpu;
pub mod duration;
pub mod env;
pub mod keylog;
pub mod pattern;
pub mod procfs;
#[cfg(test)]
mod provenance;
pub mod session;
pub mod tls;
