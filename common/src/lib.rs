//! What both sides of tlsbench share, kept in one place so the server, the load generator and
//! the benches measure the same configuration: TLS configuration from names ([`tls`]),
//! certificate chains and key files ([`certs`]), CPU-time accounting ([`cpu`]) and the NSS
//! key log ([`keylog`]).

pub mod certs;
pub mod cpu;
pub mod keylog;
pub mod tls;
