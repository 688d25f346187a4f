//! Non-blocking I/O vocabulary both sides share: telling flow control (`WouldBlock`) and a
//! retry (`Interrupted`) apart from real errors, and the bound on plaintext queued ahead of
//! the socket; and the private scratch directory a started peer or test server writes its
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

#[cfg(test)]
mod tests {
    use super::*;

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
