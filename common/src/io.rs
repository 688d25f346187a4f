//! Non-blocking I/O vocabulary both sides share: telling flow control (`WouldBlock`) and a
//! retry (`Interrupted`) apart from real errors, the bound on plaintext queued ahead of the
//! socket, and the probe that tells a short read (the receive queue is empty); and the private scratch directory a started peer or test server writes its
//! configuration and keys into.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// Plaintext handed to rustls but not yet written to the socket, above which a side starts no
/// new message and encrypts no more of a streamed body. Four full TLS records: enough for one
/// vectored write per event, small enough that a peer that stops reading costs little memory.
/// The server bounds responses with it and the load generator its uploads, so both sides queue
/// the same amount.
pub const OUT_WINDOW: usize = 64 * 1024;

/// A fresh directory `<temp>/<prefix>-<pid>-<n>`, mode 0700 (it may hold private keys),
/// unique to this process and call; a leftover of an earlier process with the same pid is
/// removed first. The caller removes it when done.
pub fn private_temp_dir(prefix: &str) -> io::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&dir);
    DirBuilder::new().mode(0o700).create(&dir)?;
    Ok(dir)
}

/// True when a non-blocking call has nothing to do now: flow control, not an error. The caller
/// waits for the next readiness event.
pub fn would_block(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::WouldBlock
}

/// True when a signal interrupted the call before it did anything; the caller retries it.
pub fn interrupted(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::Interrupted
}

/// A reader that notes whether its last read returned less than asked (and more than
/// nothing). On a TCP socket that proves the receive queue empty at that instant, so with
/// edge-triggered epoll the read that would only say `WouldBlock` can be skipped: the next
/// arrival is reported. Not when the event that woke the caller reported the peer's close or
/// an error: that report is spent, so the reader must go on to the end of the stream. nginx
/// does the same (`ngx_unix_recv` clears `ready` on a short read under EPOLLET).
pub struct ShortReadProbe<'a, T> {
    /// The reader read through.
    pub inner: &'a mut T,
    /// The last read returned `0 < n < buf.len()` bytes.
    pub short: bool,
}

impl<'a, T> ShortReadProbe<'a, T> {
    /// Reads through `inner`; no read made yet.
    pub fn new(inner: &'a mut T) -> ShortReadProbe<'a, T> {
        ShortReadProbe {
            inner,
            short: false,
        }
    }
}

impl<T: io::Read> io::Read for ShortReadProbe<'_, T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.short = n > 0 && n < buf.len();
        Ok(n)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_short_read_is_told_from_a_full_one_and_from_the_end() {
        use std::io::Read;
        let mut src: &[u8] = b"abcdef";
        let mut probe = ShortReadProbe::new(&mut src);
        let mut buf = [0u8; 4];
        assert_eq!(probe.read(&mut buf).unwrap(), 4);
        assert!(!probe.short, "a full buffer says nothing of what is left");
        assert_eq!(probe.read(&mut buf).unwrap(), 2);
        assert!(probe.short);
        assert_eq!(probe.read(&mut buf).unwrap(), 0);
        assert!(!probe.short, "the end of the stream is not a short read");
    }

    #[test]
    fn each_kind_is_told_apart() {
        let block = io::Error::from(io::ErrorKind::WouldBlock);
        let intr = io::Error::from(io::ErrorKind::Interrupted);
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert!(would_block(&block));
        assert!(!would_block(&intr));
        assert!(!would_block(&reset));
        assert!(interrupted(&intr));
        assert!(!interrupted(&block));
        assert!(!interrupted(&reset));
        // EAGAIN from the OS is WouldBlock too.
        assert!(would_block(&io::Error::from_raw_os_error(libc::EAGAIN)));
        assert!(interrupted(&io::Error::from_raw_os_error(libc::EINTR)));
    }
}
