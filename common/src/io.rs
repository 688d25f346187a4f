//! Non-blocking I/O vocabulary both sides share: telling flow control (`WouldBlock`) and a
//! retry (`Interrupted`) apart from real errors, and the bound on plaintext queued ahead of
//! the socket.

use std::io;

/// Plaintext handed to rustls but not yet written to the socket, above which a side starts no
/// new message and encrypts no more of a streamed body. Four full TLS records: enough for one
/// vectored write per event, small enough that a peer that stops reading costs little memory.
/// The server bounds responses with it and the load generator its uploads, so both sides queue
/// the same amount.
pub const OUT_WINDOW: usize = 64 * 1024;

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
