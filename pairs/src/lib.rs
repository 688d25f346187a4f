//! In-memory client/server pairs for the handshake and record benches (`benches`) and the
//! instruction counts (`icount`): a matched rustls `ServerConnection` and `ClientConnection`
//! built from names, exchanging TLS bytes through buffers (no sockets, no threads), plus the
//! list of bench cases both the benches and the setup test iterate over. No criterion here:
//! `icount` ships in the `tlsbench` binary.
//!
//! Configs are built only through the product's own code: the server's
//! [`server::TlsOptions::server_config`] and the load generator's
//! [`loadgen::tlsconf::worker_tls`] (with its caching verifier and
//! [`loadgen::tlsconf::OfferingStore`]), trusting the generated root exactly as
//! `tlsbench load --cacert` would ([`loadgen::verify::Trust::CaFile`] read by
//! [`loadgen::verify::root_store`]). There is no second copy of suite, group or certificate
//! handling here. A [`Pair`] keeps both configs,
//! so repeated handshakes reuse the server's ticketer and session cache and the client's
//! session store: that is what lets a primed pair resume.
//!
//! Each side's cost is counted apart the way rustls's own `rustls-bench` does: a side's clock
//! runs while it creates its connection object and while it processes the peer's flight and
//! produces its own (`read_tls` + `process_new_packets` + `write_tls`), never while the other
//! side works.
//!
//! # Layout
//!
//! - `material`: the certificate chains pairs use, generated once per key type or loaded
//!   from `tlsbench certs` output ([`use_chain`]).
//! - `pair`: [`Pair`] (both configs, connect as often as needed), [`Connected`] (one
//!   handshaken pair: checks, sealing, opening) and one side's steps ([`feed`], [`flush`]).
//! - `cases`: the bench cases by name: [`HandshakeCase`] (with its [`HandshakeMode`] and
//!   [`Side`]) and [`RecordCase`] (with its [`Op`]).
//! - this root: [`PairError`] and [`SERVER_NAME`].

use std::io;

use rustls::HandshakeKind;

mod cases;
mod material;
mod pair;

pub use cases::{
    HandshakeCase, HandshakeMode, MAX_RECORDS_PER_CONNECTION, Op, RECORD_SIZES, RECORD_SUITES,
    RecordCase, Side, handshake_cases, proto_name, record_cases, record_roundtrip,
};
pub use material::use_chain;
pub use pair::{Connected, Pair, PairSpec, SideTimes, feed, flush};

/// The name the client connects to; every generated leaf holds it.
pub const SERVER_NAME: &str = "bank32.com";

/// Why a pair could not be built or a handshake or transfer failed.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    /// A version, suite or group name was refused.
    #[error(transparent)]
    Tls(#[from] common::tls::TlsError),
    /// A certificate chain could not be generated, written or loaded.
    #[error(transparent)]
    Cert(#[from] common::certs::CertError),
    /// The server's config code refused the options.
    #[error(transparent)]
    Server(#[from] server::ServerError),
    /// The load generator's config code refused the options.
    #[error(transparent)]
    Client(#[from] loadgen::tlsconf::TlsConfError),
    /// The CA file could not be turned into a root store.
    #[error(transparent)]
    Verify(#[from] loadgen::verify::VerifyError),
    /// rustls failed a connection.
    #[error("TLS error: {0}")]
    Rustls(#[from] rustls::Error),
    /// Moving bytes in or out of a connection failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The I/O error.
        source: io::Error,
    },
    /// The server name is not a valid DNS name (a bug in [`SERVER_NAME`]).
    #[error("invalid server name: {0}")]
    Name(#[from] rustls::pki_types::InvalidDnsNameError),
    /// Neither side had anything left to send but the handshake had not finished.
    #[error("handshake stalled (client handshaking: {client}, server handshaking: {server})")]
    Stalled {
        /// Whether the client was still handshaking.
        client: bool,
        /// Whether the server was still handshaking.
        server: bool,
    },
    /// A connection would not take more bytes.
    #[error("{0} accepted no bytes")]
    Refused(&'static str),
    /// The handshake was not of the kind the bench is named after.
    #[error("expected a {expected:?} handshake, got client {client:?}, server {server:?}")]
    WrongKind {
        /// What the bench measures.
        expected: HandshakeKind,
        /// What the client saw.
        client: Option<HandshakeKind>,
        /// What the server saw.
        server: Option<HandshakeKind>,
    },
    /// Something other than what the bench is named after was negotiated.
    #[error("negotiated {what} {got}, expected {expected}")]
    Mismatch {
        /// Version, group, suite, plaintext length...
        what: &'static str,
        /// What was negotiated or seen.
        got: String,
        /// What the bench is named after.
        expected: String,
    },
}

pub(crate) fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> PairError {
    move |source| PairError::Io { what, source }
}

pub(crate) fn mismatch(
    what: &'static str,
    got: impl ToString,
    expected: impl ToString,
) -> PairError {
    PairError::Mismatch {
        what,
        got: got.to_string(),
        expected: expected.to_string(),
    }
}
