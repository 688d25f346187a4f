//! Fuzz target: one server connection's state machine (`server::conn::Conn`, TLS + HTTP) on
//! arbitrary bytes in memory, raw or behind a real handshake; see `fuzzing::connection`
//! for the input format and the invariants.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::connection(data));
