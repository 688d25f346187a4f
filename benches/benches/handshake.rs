//! Handshake benches on in-memory client/server pairs (buffers, no sockets): full handshakes
//! per protocol × key exchange and per certificate type, and resumed handshakes (TLS 1.3
//! ticket, TLS 1.2 session ID, TLS 1.2 ticket).
//!
//! Ids: group `handshake`, function `{side}/{proto}/{kx}/{cert}/{mode}` (see
//! `pairs::HandshakeCase::id`). `server` and `client` time only that side's own work,
//! as rustls's `rustls-bench` does: creating its connection object and processing each flight
//! it receives while producing its answer. `pair` times the whole handshake, both sides plus
//! moving the bytes between them.
//!
//! The client is the load generator's: it verifies the server's chain with its caching
//! verifier, which checks the chain and name once per (chain, name) and the handshake
//! signature every time. After the first handshake of a bench, a client-side full handshake
//! therefore costs a cache hit plus the signature check, which is the real cost per full
//! handshake of a `tlsbench load` run. The client's time also includes storing the tickets
//! the server sends after the handshake (TLS 1.3).
//!
//! Every measured handshake is checked with `handshake_kind()` on both connections: a resumed
//! bench whose handshakes fell back to full ones panics rather than report them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use pairs::{HandshakeCase, Pair, Side};
use rustls::HandshakeKind;

/// `iters` handshakes; the time of `side` only.
fn run(
    pair: &Pair,
    case: &HandshakeCase,
    side: Side,
    expected: HandshakeKind,
    iters: u64,
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let (c, time) = pair
            .handshake_for(side)
            .unwrap_or_else(|e| panic!("{}: {e}", case.id(side)));
        total += time;
        c.expect_kind(expected)
            .unwrap_or_else(|e| panic!("{}: {e}", case.id(side)));
        // Dropped outside the clock, like rustls-bench.
        drop(black_box(c));
    }
    total
}

fn handshakes(c: &mut Criterion) {
    let mut group = c.benchmark_group("handshake");
    for case in pairs::handshake_cases() {
        let pair = case
            .setup()
            .unwrap_or_else(|e| panic!("{}: setup: {e}", case.id(Side::Pair)));
        // The first handshake the benches run is checked in full (version and group too).
        let first = pair.handshake().expect("first handshake");
        case.check(&first)
            .unwrap_or_else(|e| panic!("{}: {e}", case.id(Side::Pair)));
        drop(first);
        let expected = case.mode.expected();
        for side in Side::ALL {
            group.bench_function(case.id(side), |b| {
                b.iter_custom(|iters| run(&pair, &case, side, expected, iters))
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = handshake;
    config = benches::criterion();
    targets = handshakes
}
criterion_main!(handshake);
