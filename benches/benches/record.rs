//! Record benches through rustls on an in-memory pair, per cipher suite and application write
//! size, reported as bytes of plaintext per second.
//!
//! Ids: group `record`, function `{op}/{suite}/{size}` (see `pairs::RecordCase::id`).
//!
//! * `seal` (server send): `writer().write_all(payload)` then `write_tls` into a reused buffer,
//!   cleared every write. The server's buffer limit is lifted so a 1 MiB write is one call.
//! * `open` (client receive): `read_tls` + `process_new_packets` + draining `reader()`, over
//!   records the server sealed beforehand, untimed. Records only open in sequence-number
//!   order, so they are sealed in batches of about 256 KiB of plaintext and each batch is
//!   opened once; only the opening is timed. The untimed sealing keeps rustls's default
//!   64 KiB send buffer: sealing a whole 1 MiB write at once would free a megabyte of record
//!   buffers right before the timed part, the allocator would hand those pages back to the
//!   kernel, and the opening would then be charged for faulting fresh pages in.
//!
//! Each criterion call starts from a fresh connection (its handshake untimed), and a
//! connection is replaced after [`pairs::MAX_RECORDS_PER_CONNECTION`] records, far below the
//! AEAD limits at which rustls would rekey or stop.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pairs::{Connected, Op, Pair, RecordCase};

/// Plaintext sealed per `open` batch (at least one write).
const OPEN_BATCH_BYTES: usize = 256 * 1024;

fn connect(pair: &Pair, case: &RecordCase, op: Op) -> Connected {
    case.connect(pair)
        .unwrap_or_else(|e| panic!("{}: {e}", case.id(op)))
}

/// Writes per connection before it is replaced.
fn writes_per_connection(case: &RecordCase) -> u64 {
    (pairs::MAX_RECORDS_PER_CONNECTION / case.records_per_write()).max(1)
}

fn seal(pair: &Pair, case: &RecordCase, payload: &[u8], iters: u64) -> Duration {
    let mut sink = Vec::with_capacity(case.size + case.size / 8 + 1024);
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(writes_per_connection(case));
        let mut c = connect(pair, case, Op::Seal);
        c.unlimit_server();
        let start = Instant::now();
        for _ in 0..n {
            if let Err(e) = c.seal(payload, &mut sink) {
                panic!("{}: {e}", case.id(Op::Seal));
            }
            black_box(&mut sink).clear();
        }
        total += start.elapsed();
        left -= n;
    }
    total
}

fn open(pair: &Pair, case: &RecordCase, payload: &[u8], iters: u64) -> Duration {
    let per_batch = (OPEN_BATCH_BYTES / case.size).max(1) as u64;
    let per_conn = writes_per_connection(case);
    let mut records = Vec::new();
    let mut scratch = vec![0u8; 16 * 1024];
    let mut total = Duration::ZERO;
    let mut c = connect(pair, case, Op::Open);
    let mut written = 0;
    let mut left = iters;
    while left > 0 {
        let n = left.min(per_batch).min(per_conn);
        if written + n > per_conn {
            c = connect(pair, case, Op::Open);
            written = 0;
        }
        records.clear();
        for _ in 0..n {
            c.seal(payload, &mut records)
                .unwrap_or_else(|e| panic!("{}: {e}", case.id(Op::Open)));
        }
        written += n;
        let start = Instant::now();
        let opened = c.open(black_box(&records), &mut scratch);
        total += start.elapsed();
        let opened = opened.unwrap_or_else(|e| panic!("{}: {e}", case.id(Op::Open)));
        assert_eq!(opened as u64, n * case.size as u64, "{}", case.id(Op::Open));
        left -= n;
    }
    total
}

fn records(c: &mut Criterion) {
    let mut group = c.benchmark_group("record");
    for case in pairs::record_cases() {
        let spec = case
            .spec()
            .unwrap_or_else(|e| panic!("{}: {e}", case.id(Op::Seal)));
        let pair = Pair::new(&spec).unwrap_or_else(|e| panic!("{}: {e}", case.id(Op::Seal)));
        let payload: Vec<u8> = (0..case.size).map(|i| (i % 251) as u8).collect();
        group.throughput(Throughput::Bytes(case.size as u64));
        for op in Op::ALL {
            group.bench_function(case.id(op), |b| {
                b.iter_custom(|iters| match op {
                    Op::Seal => seal(&pair, &case, &payload, iters),
                    Op::Open => open(&pair, &case, &payload, iters),
                })
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = record;
    config = benches::criterion();
    targets = records
}
criterion_main!(record);
