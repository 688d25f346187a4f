//! One end of a connection held in memory: the socket a sans-I/O connection runs on when the
//! server's and the load generator's tests and the fuzzing harnesses drive it byte for byte,
//! with no socket and no thread. What a real socket decides (data not there yet, a full send
//! buffer, a short write, the peer's FIN) is a field the caller sets, so every case is exact.

use std::collections::VecDeque;
use std::io::{self, Read, Write};

/// One end of an in-memory connection. Reads take from `input` and writes add to `output`;
/// the caller (or [`Memory::carry_to`]) moves bytes between the two ends.
#[derive(Debug, Default)]
pub struct Memory {
    /// Bytes the peer sent and this end has not read yet; reads take from the front.
    pub input: VecDeque<u8>,
    /// The peer closed its side: once `input` is drained reads return 0 (EOF), not
    /// `WouldBlock`.
    pub eof: bool,
    /// Bytes reads may still take before they would block (data still in flight); `None`:
    /// all of `input`.
    pub read_budget: Option<usize>,
    /// Bytes written and not yet taken by the peer.
    pub output: Vec<u8>,
    /// Most bytes `output` holds before writes would block (a send buffer the peer has not
    /// drained); `None`: no limit. `Some(0)` is a socket that is not writable.
    pub output_cap: Option<usize>,
    /// Bytes writes may still accept in all (a volume bound); `None`: no limit.
    pub write_budget: Option<usize>,
    /// Largest single write accepted (short writes); `None`: a write takes all it is given.
    pub write_max: Option<usize>,
    /// This end shut its write side; a later write panics, since a connection must never
    /// write after its FIN.
    pub write_shut: bool,
    /// Reads made so far, whatever they returned: the syscalls a real socket would have cost.
    pub reads: u64,
}

impl Memory {
    /// An end whose reads return `input`, then block.
    pub fn reading(input: &[u8]) -> Memory {
        Memory {
            input: input.iter().copied().collect(),
            ..Memory::default()
        }
    }

    /// Half-closes the write side (the FIN after the last byte).
    pub fn shutdown_write(&mut self) {
        self.write_shut = true;
    }

    /// Moves what this end wrote into `peer`'s input, and this end's FIN into `peer`'s EOF.
    pub fn carry_to(&mut self, peer: &mut Memory) {
        peer.input.extend(self.output.drain(..));
        peer.eof |= self.write_shut;
    }
}

impl Read for Memory {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reads += 1;
        let ready = self.read_budget.unwrap_or(usize::MAX).min(self.input.len());
        if ready == 0 {
            return if self.input.is_empty() && self.eof {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let n = ready.min(buf.len());
        for (dst, src) in buf.iter_mut().zip(self.input.drain(..n)) {
            *dst = src;
        }
        if let Some(b) = self.read_budget.as_mut() {
            *b -= n;
        }
        Ok(n)
    }
}

impl Write for Memory {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        assert!(!self.write_shut, "write after shutdown_write");
        if buf.is_empty() {
            return Ok(0);
        }
        let room = self
            .output_cap
            .map_or(usize::MAX, |cap| cap.saturating_sub(self.output.len()))
            .min(self.write_budget.unwrap_or(usize::MAX))
            .min(self.write_max.unwrap_or(usize::MAX));
        if room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = room.min(buf.len());
        self.output.extend_from_slice(&buf[..n]);
        if let Some(b) = self.write_budget.as_mut() {
            *b -= n;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn would_block<T: std::fmt::Debug>(r: io::Result<T>) -> bool {
        r.unwrap_err().kind() == io::ErrorKind::WouldBlock
    }

    #[test]
    fn reads_block_until_bytes_or_the_peers_close_arrive() {
        let mut m = Memory::reading(b"abc");
        let mut buf = [0u8; 2];
        assert_eq!(m.read(&mut buf).unwrap(), 2);
        assert_eq!(&buf, b"ab");
        assert_eq!(m.read(&mut buf).unwrap(), 1);
        assert!(would_block(m.read(&mut buf)));
        m.eof = true;
        assert_eq!(m.read(&mut buf).unwrap(), 0);
    }

    #[test]
    fn a_read_budget_holds_back_bytes_that_are_there() {
        let mut m = Memory::reading(b"abcdef");
        m.read_budget = Some(4);
        m.eof = true;
        let mut buf = [0u8; 8];
        assert_eq!(m.read(&mut buf).unwrap(), 4);
        // Bytes left but none readable yet: blocks, even after the peer's close.
        assert!(would_block(m.read(&mut buf)));
        m.read_budget = None;
        assert_eq!(m.read(&mut buf).unwrap(), 2);
        assert_eq!(m.read(&mut buf).unwrap(), 0);
    }

    #[test]
    fn writes_are_cut_by_the_cap_the_budget_and_the_largest_write() {
        let mut m = Memory {
            output_cap: Some(0),
            ..Memory::default()
        };
        assert!(would_block(m.write(b"x")));
        m.output_cap = Some(10);
        m.write_max = Some(3);
        assert_eq!(m.write(b"abcdef").unwrap(), 3);
        m.write_budget = Some(5);
        m.write_max = None;
        assert_eq!(m.write(b"defghijk").unwrap(), 5);
        assert!(would_block(m.write(b"x")), "the budget is spent");
        assert_eq!(m.output, b"abcdefgh");
        m.write_budget = None;
        assert_eq!(m.write(b"ijklm").unwrap(), 2, "the cap: 10 held");
        assert_eq!(m.write(b"").unwrap(), 0);
    }

    #[test]
    fn carrying_moves_the_bytes_and_the_fin_to_the_peer() {
        let (mut a, mut b) = (Memory::default(), Memory::default());
        a.write_all(b"hello").unwrap();
        a.shutdown_write();
        a.carry_to(&mut b);
        assert!(a.output.is_empty());
        let mut got = String::new();
        b.read_to_string(&mut got).unwrap();
        assert_eq!(got, "hello");
    }

    #[test]
    #[should_panic(expected = "write after shutdown_write")]
    fn a_write_after_the_fin_panics() {
        let mut m = Memory::default();
        m.shutdown_write();
        let _ = m.write(b"x");
    }
}
