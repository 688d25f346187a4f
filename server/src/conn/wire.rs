//! The TLS bytes one connection moves through its socket each way, and where its handshake's
//! share of each stream ends.
//!
//! Totals are counted at the socket reads and writes. The handshake's share needs a boundary
//! inside those streams, found without an extra syscall:
//! - in: a client may send its first request in the same segment as its Finished (TLS 1.3,
//!   and TLS 1.2 resumption), so one socket read can hold both. While the handshake runs,
//!   rustls is handed the bytes read one TLS record at a time ([`RecordFeed`]), and the
//!   handshake's share is what it had been handed when it completed.
//! - out: a TLS 1.3 server completes on the client's Finished, its own flight long written;
//!   what it queues then is its session tickets, which the client only reads after its own
//!   completion, so they are not counted. A TLS 1.2 server completes on the client's
//!   Finished too but only then queues its final flight (ticket, ChangeCipherSpec, Finished),
//!   which the client reads before completing: that flight is counted, up to the first time
//!   the output queue is empty (no request can be answered before: the client waits for it).
//!
//! The feed also keeps the connection's first record, the ClientHello, when asked: its
//! certificate compression offer decides whether the chain went out compressed (see
//! `common::cert_compression`), and its early data offer is counted against what rustls
//! accepted.

use std::io::{self, Read};

use common::cert_compression::{self, Algorithm};

/// A TLS record header: content type, legacy version, 16-bit body length.
const HEADER: usize = 5;

/// One connection's byte counts.
#[derive(Default)]
pub(super) struct Wire {
    /// Bytes read from the socket.
    pub received: u64,
    /// Bytes written to the socket.
    pub sent: u64,
    /// Bytes handed to the session (≤ `received`: the feed may hold some).
    pub fed: u64,
    /// The handshake's bytes in, once it completed; its bytes out are still being written
    /// (TLS 1.2's final flight) until they are counted.
    pub flight_open: Option<u64>,
    /// The socket's bytes not yet handed to the session, while record framing matters.
    pub feed: RecordFeed,
}

/// Bytes read from the socket and handed on one TLS record at a time.
#[derive(Default)]
pub(super) struct RecordFeed {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    framing: Framing,
    /// The first record so far, while it is kept ([`RecordFeed::keep_hello`]).
    hello: Option<Vec<u8>>,
    /// Records handed on whole.
    records: u64,
    /// What the ClientHello offered, once read (`None` inside: it could not be read).
    offered: Option<Option<Vec<Algorithm>>>,
    /// The ClientHello offered 0-RTT early data (`None`: not kept, or unreadable).
    early_offered: Option<bool>,
}

/// Where the stream handed on is within its current record.
#[derive(Default)]
struct Framing {
    header: [u8; HEADER],
    header_len: usize,
    body_left: usize,
}

impl Framing {
    /// How many of `bytes` reach at most the end of the current record, and whether that is
    /// its end; moves past them.
    fn take(&mut self, bytes: &[u8]) -> (usize, bool) {
        let mut i = 0;
        while i < bytes.len() {
            if self.header_len < HEADER {
                self.header[self.header_len] = bytes[i];
                self.header_len += 1;
                i += 1;
                if self.header_len == HEADER {
                    self.body_left =
                        usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                }
            } else {
                let n = self.body_left.min(bytes.len() - i);
                self.body_left -= n;
                i += n;
            }
            if self.header_len == HEADER && self.body_left == 0 {
                self.header_len = 0;
                return (i, true);
            }
        }
        (i, false)
    }
}

impl RecordFeed {
    /// Bytes read from the socket and not yet handed on.
    pub fn pending(&self) -> bool {
        self.start < self.end
    }

    /// Keeps the first record (before any is handed on) to read its ClientHello.
    pub fn keep_hello(&mut self) {
        if self.records == 0 && self.hello.is_none() && self.offered.is_none() {
            self.hello = Some(Vec::new());
        }
    }

    /// The kept ClientHello's certificate compression offer: `None` when none was kept,
    /// `Some(None)` when it could not be read.
    pub fn take_offered(&mut self) -> Option<Option<Vec<Algorithm>>> {
        self.offered.take()
    }

    /// Whether the kept ClientHello offered early data (false when none was kept or read).
    pub fn early_offered(&self) -> bool {
        self.early_offered == Some(true)
    }

    /// Gives the buffer back once the handshake no longer needs it.
    pub fn release(&mut self) {
        if !self.pending() {
            *self = RecordFeed::default();
        }
    }

    /// A reader over `socket` that hands out at most one record (or its rest) per read, and
    /// adds what it reads from the socket to `received`.
    pub fn reader<'a, R: Read>(
        &'a mut self,
        socket: &'a mut R,
        received: &'a mut u64,
    ) -> FeedReader<'a, R> {
        FeedReader {
            feed: self,
            socket,
            received,
        }
    }
}

/// See [`RecordFeed::reader`].
pub(super) struct FeedReader<'a, R> {
    feed: &'a mut RecordFeed,
    socket: &'a mut R,
    received: &'a mut u64,
}

impl<R: Read> Read for FeedReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let feed = &mut *self.feed;
        if !feed.pending() {
            if feed.buf.len() < buf.len() {
                feed.buf.resize(buf.len(), 0);
            }
            // As much as the session asked for: one socket read, as without the feed.
            let n = self.socket.read(&mut feed.buf[..buf.len()])?;
            *self.received += n as u64;
            (feed.start, feed.end) = (0, n);
            if n == 0 {
                return Ok(0);
            }
        }
        let avail = &feed.buf[feed.start..feed.end];
        let avail = &avail[..avail.len().min(buf.len())];
        let (n, whole) = feed.framing.take(avail);
        buf[..n].copy_from_slice(&avail[..n]);
        if let Some(hello) = feed.hello.as_mut() {
            hello.extend_from_slice(&avail[..n]);
        }
        if whole {
            feed.records += 1;
            if let Some(hello) = feed.hello.take() {
                feed.offered = Some(cert_compression::offered(&hello));
                feed.early_offered = cert_compression::offers_early_data(&hello);
            }
        }
        feed.start += n;
        Ok(n)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A record of `len` body bytes filled with `fill`.
    fn record(len: u16, fill: u8) -> Vec<u8> {
        let mut r = vec![0x17, 0x03, 0x03];
        r.extend_from_slice(&len.to_be_bytes());
        r.extend(std::iter::repeat_n(fill, usize::from(len)));
        r
    }

    #[test]
    fn the_feed_hands_out_one_record_per_read_from_one_socket_read() {
        let mut stream = record(3, 1);
        stream.extend(record(0, 2));
        stream.extend(record(40, 3));
        let mut socket = &stream[..stream.len() - 10];
        let mut feed = RecordFeed::default();
        let mut received = 0;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        for _ in 0..4 {
            let n = feed
                .reader(&mut socket, &mut received)
                .read(&mut buf)
                .unwrap();
            got.push(n);
        }
        // Three records, the last one short of its tail: the next read asks the socket.
        assert_eq!(got, [8, 5, 35, 0]);
        assert_eq!(received, stream.len() as u64 - 10);
        assert!(!feed.pending());
        let mut rest = &stream[stream.len() - 10..];
        let n = feed
            .reader(&mut rest, &mut received)
            .read(&mut buf)
            .unwrap();
        assert_eq!(n, 10, "the rest of the split record");
        assert_eq!(received, stream.len() as u64);
    }

    #[test]
    fn a_record_header_split_across_reads_is_framed() {
        let stream = [record(2, 9), record(1, 8)].concat();
        let mut framing = Framing::default();
        assert_eq!(framing.take(&stream[..3]), (3, false));
        assert_eq!(
            framing.take(&stream[3..]),
            (4, true),
            "the header's rest and the body"
        );
        assert_eq!(framing.take(&stream[7..]), (6, true));
    }

    #[test]
    fn the_first_record_is_kept_whole_across_reads_and_read_as_a_client_hello() {
        // Not a ClientHello: kept, and said to be unreadable.
        let stream = [record(6, 1), record(2, 2)].concat();
        let mut feed = RecordFeed::default();
        feed.keep_hello();
        let mut received = 0;
        let mut buf = [0u8; 4096];
        for part in [&stream[..4], &stream[4..]] {
            let mut socket = part;
            while feed
                .reader(&mut socket, &mut received)
                .read(&mut buf)
                .unwrap()
                > 0
            {}
        }
        assert_eq!(feed.take_offered(), Some(None));
        assert_eq!(feed.take_offered(), None, "taken once");
        assert_eq!(received, stream.len() as u64);
        // Not asked to keep it: nothing read.
        let mut feed = RecordFeed::default();
        let mut socket = &stream[..];
        let n = feed
            .reader(&mut socket, &mut received)
            .read(&mut buf)
            .unwrap();
        assert_eq!(n, 11, "the first record");
        assert_eq!(feed.take_offered(), None);
    }
}
