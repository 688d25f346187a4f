//! Fuzz target: the load generator's response parser and one client connection's state
//! machine (`loadgen`'s `ClientConn`) behind a real in-memory handshake, fed arbitrary bytes
//! as the server's plaintext; see `fuzzing::client` for the input format and the
//! invariants.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::client(data));
