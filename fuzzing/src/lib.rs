//! Fuzzing harnesses for tlsbench, shared by the cargo-fuzz targets in `fuzz/` and the stable
//! replay test `fuzzing/tests/fuzz_corpus.rs`, so a corpus file or a crash reproduces the same
//! way in both. Harness code, not product: the server's library keeps none of it and the
//! harnesses drive the server through its public API only.
//!
//! Here a failed assertion is the product: each one names an invariant the code under test must
//! keep on any input.
//!
//! # Layout
//! - [`http_head`](mod@http_head): the `http_head` target, `server::http::parse_head` on
//!   arbitrary bytes with the default and with small limits, checked against what the parser
//!   promises (head bounds, routing rules, split consistency); a chunked body after a complete
//!   head also goes through `ChunkedDecoder`, whole and split.
//! - [`connection`](mod@connection): the `connection` target, one `server::conn::Conn` with a
//!   real `rustls::ServerConnection` over an in-memory transport, on raw client TLS bytes or
//!   on plaintext behind a real handshake; the input format is on [`connection()`].
//! - `fixture`: the setup both connection targets share: the generated chain and the panic
//!   naming a setup step that failed.
//! - `responses`: the model of the responses a connection owes, from the request bytes alone,
//!   and the check of what the client received against it.
//! - [`client`](mod@client): the `client` target, the load generator's response parser and
//!   one `loadgen::conn::ClientConn` behind a real in-memory handshake, fed arbitrary bytes as
//!   the server's plaintext; the input format is on [`client()`].
//! - [`seeds`](mod@seeds): meaningful starting inputs for every target, written into
//!   `fuzz/corpus/`.

pub mod client;
pub mod connection;
mod fixture;
pub mod http_head;
mod responses;
pub mod seeds;

pub use client::client;
pub use connection::{
    CAP_SHIFT, CHUNK_CAPS, END_CLOSE_NOTIFY, END_EOF, END_NONE, END_SHIFT, END_SHUTDOWN,
    FLAG_PLAINTEXT, FLAG_SHORT_READS, FLAG_TLS12, connection,
};
pub use http_head::http_head;
pub use seeds::{Seed, connection_input, seeds};

/// Name of the head parser target (its directory under `fuzz/corpus/`).
pub const HTTP_HEAD: &str = "http_head";
/// Name of the connection target (its directory under `fuzz/corpus/`).
pub const CONNECTION: &str = "connection";
/// Name of the client target (its directory under `fuzz/corpus/`).
pub const CLIENT: &str = "client";

/// A fixed Date header value: the output must not depend on the clock.
const DATE: &[u8] = b"Sun, 06 Nov 1994 08:49:37 GMT";
