//! Fuzz target: the HTTP/1.1 request head parser and router (`server::http::parse_head`), with
//! default and small limits; the invariants are in `fuzzing::http_head`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::http_head(data));
