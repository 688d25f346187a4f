//! The byte pipe under a connection's HTTP exchange: a rustls connection, or plain TCP for the
//! floor (the same HTTP code with no TLS, so a row's TLS cost is its CPU minus the plain
//! row's). [`Session`] is the subset of rustls's connection API both sides drive; the server
//! and the load generator are generic over it, so each path is compiled for its own session
//! type and the TLS one pays nothing for the plain one.

use std::io::{self, BufRead, Read, Write};

/// What a read brought: plaintext to consume, and whether the peer closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// Plaintext bytes ready in [`Session::reader`].
    pub plaintext_bytes: usize,
    /// The peer closed cleanly (close_notify, or TCP EOF for plain).
    pub peer_closed: bool,
}

/// A connection's record layer, as the server and load generator drive it.
pub trait Session {
    /// Reads plaintext: `WouldBlock` when none is buffered yet, `Ok(&[])` after a clean close.
    type Reader<'a>: BufRead
    where
        Self: 'a;
    /// Queues plaintext to send.
    type Writer<'a>: Write
    where
        Self: 'a;
    /// Whether bytes should be read from the socket now.
    fn wants_read(&self) -> bool;
    /// Whether bytes are queued for the socket.
    fn wants_write(&self) -> bool;
    /// Reads once from the socket into the session.
    fn read_tls(&mut self, rd: &mut dyn Read) -> io::Result<usize>;
    /// Writes queued bytes once to the socket.
    fn write_tls(&mut self, wr: &mut dyn Write) -> io::Result<usize>;
    /// Processes what [`Session::read_tls`] read.
    fn process_new_packets(&mut self) -> Result<Received, rustls::Error>;
    /// The handshake is still running (never, for plain).
    fn is_handshaking(&self) -> bool;
    /// Which handshake ran (none, for plain).
    fn handshake_kind(&self) -> Option<rustls::HandshakeKind>;
    /// The negotiated version (none, for plain).
    fn protocol_version(&self) -> Option<rustls::ProtocolVersion>;
    /// The peer's certificate chain once the handshake has it: the server's for a client,
    /// the client's (mutual TLS) for a server; none for plain.
    fn peer_certificates(&self) -> Option<&[rustls::pki_types::CertificateDer<'static>]>;
    /// Queues a close_notify (plain has none: the FIN says it).
    fn send_close_notify(&mut self);
    /// The plaintext received.
    fn reader(&mut self) -> Self::Reader<'_>;
    /// The plaintext to send.
    fn writer(&mut self) -> Self::Writer<'_>;
    /// Moves the TLS 1.3 early data (0-RTT) received so far onto `into`; returns whether the
    /// server accepted early data on this connection. Only a server reads early data.
    fn take_early_data(&mut self, into: &mut Vec<u8>) -> bool {
        let _ = into;
        false
    }
}

macro_rules! rustls_session {
    ($conn:ty $(, $extra:item)*) => {
        impl Session for $conn {
            type Reader<'a> = rustls::Reader<'a>;
            type Writer<'a> = rustls::Writer<'a>;
            fn wants_read(&self) -> bool {
                rustls::CommonState::wants_read(self)
            }
            fn wants_write(&self) -> bool {
                rustls::CommonState::wants_write(self)
            }
            fn read_tls(&mut self, rd: &mut dyn Read) -> io::Result<usize> {
                rustls::ConnectionCommon::read_tls(self, rd)
            }
            fn write_tls(&mut self, wr: &mut dyn Write) -> io::Result<usize> {
                rustls::ConnectionCommon::write_tls(self, wr)
            }
            fn process_new_packets(&mut self) -> Result<Received, rustls::Error> {
                let io = rustls::ConnectionCommon::process_new_packets(self)?;
                Ok(Received {
                    plaintext_bytes: io.plaintext_bytes_to_read(),
                    peer_closed: io.peer_has_closed(),
                })
            }
            fn is_handshaking(&self) -> bool {
                rustls::CommonState::is_handshaking(self)
            }
            fn handshake_kind(&self) -> Option<rustls::HandshakeKind> {
                rustls::CommonState::handshake_kind(self)
            }
            fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
                rustls::CommonState::protocol_version(self)
            }
            fn peer_certificates(&self) -> Option<&[rustls::pki_types::CertificateDer<'static>]> {
                rustls::CommonState::peer_certificates(self)
            }
            fn send_close_notify(&mut self) {
                rustls::CommonState::send_close_notify(self)
            }
            fn reader(&mut self) -> rustls::Reader<'_> {
                rustls::ConnectionCommon::reader(self)
            }
            fn writer(&mut self) -> rustls::Writer<'_> {
                rustls::ConnectionCommon::writer(self)
            }
            $($extra)*
        }
    };
}

rustls_session!(
    rustls::ServerConnection,
    fn take_early_data(&mut self, into: &mut Vec<u8>) -> bool {
        match self.early_data() {
            // Reading from memory: rustls's buffer fails only when early data was not
            // accepted, which `early_data()` already ruled out.
            Some(mut early) => early.read_to_end(into).is_ok(),
            None => false,
        }
    }
);
rustls_session!(rustls::ClientConnection);

/// Plaintext received and not yet consumed, above which no more is read from the socket
/// (rustls's default for received plaintext is of the same order).
const IN_CAP: usize = 16 * 1024;

/// Plain TCP in the [`Session`] shape: bytes read are plaintext at once, bytes written go out
/// as they are. Both buffers keep their capacity across requests (no allocation per request).
#[derive(Debug, Default)]
pub struct Plain {
    /// Received bytes are `inbuf[in_off..in_end]`.
    inbuf: Vec<u8>,
    in_off: usize,
    in_end: usize,
    outbuf: Vec<u8>,
    out_off: usize,
    eof: bool,
}

impl Plain {
    /// A fresh connection's session.
    pub fn new() -> Plain {
        Plain::default()
    }

    fn buffered(&self) -> usize {
        self.in_end - self.in_off
    }
}

impl Session for Plain {
    type Reader<'a> = PlainReader<'a>;
    type Writer<'a> = PlainWriter<'a>;

    fn wants_read(&self) -> bool {
        !self.eof && self.buffered() < IN_CAP
    }

    fn wants_write(&self) -> bool {
        self.out_off < self.outbuf.len()
    }

    fn read_tls(&mut self, rd: &mut dyn Read) -> io::Result<usize> {
        // A fixed buffer, zeroed once per connection: the floor must not pay a memset per read.
        if self.inbuf.is_empty() {
            self.inbuf = vec![0; IN_CAP];
        }
        if self.in_off > 0 {
            self.inbuf.copy_within(self.in_off..self.in_end, 0);
            self.in_end -= self.in_off;
            self.in_off = 0;
        }
        if self.in_end == IN_CAP {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = rd.read(&mut self.inbuf[self.in_end..])?;
        self.in_end += n;
        if n == 0 {
            self.eof = true;
        }
        Ok(n)
    }

    fn write_tls(&mut self, wr: &mut dyn Write) -> io::Result<usize> {
        let n = wr.write(&self.outbuf[self.out_off..])?;
        self.out_off += n;
        if self.out_off == self.outbuf.len() {
            self.outbuf.clear();
            self.out_off = 0;
        }
        Ok(n)
    }

    fn process_new_packets(&mut self) -> Result<Received, rustls::Error> {
        Ok(Received {
            plaintext_bytes: self.buffered(),
            peer_closed: self.eof,
        })
    }

    fn is_handshaking(&self) -> bool {
        false
    }

    fn handshake_kind(&self) -> Option<rustls::HandshakeKind> {
        None
    }

    fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        None
    }

    fn peer_certificates(&self) -> Option<&[rustls::pki_types::CertificateDer<'static>]> {
        None
    }

    fn send_close_notify(&mut self) {}

    fn reader(&mut self) -> PlainReader<'_> {
        PlainReader { s: self }
    }

    fn writer(&mut self) -> PlainWriter<'_> {
        PlainWriter { s: self }
    }
}

/// [`Session::reader`] of [`Plain`].
pub struct PlainReader<'a> {
    s: &'a mut Plain,
}

impl Read for PlainReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let have = self.fill_buf()?;
        let n = have.len().min(buf.len());
        buf[..n].copy_from_slice(&have[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for PlainReader<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.s.buffered() == 0 && !self.s.eof {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(&self.s.inbuf[self.s.in_off..self.s.in_end])
    }

    fn consume(&mut self, amt: usize) {
        self.s.in_off = (self.s.in_off + amt).min(self.s.in_end);
        if self.s.in_off == self.s.in_end {
            self.s.in_off = 0;
            self.s.in_end = 0;
        }
    }
}

/// [`Session::writer`] of [`Plain`].
pub struct PlainWriter<'a> {
    s: &'a mut Plain,
}

impl Write for PlainWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.s.outbuf.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn plain_passes_bytes_through_and_reports_the_close() {
        let mut s = Plain::new();
        assert!(s.wants_read() && !s.wants_write() && !s.is_handshaking());
        let err = s.reader().fill_buf().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);

        let mut wire: &[u8] = b"GET / HTTP/1.1\r\n\r\n";
        assert_eq!(s.read_tls(&mut wire).unwrap(), 18);
        let got = s.process_new_packets().unwrap();
        assert_eq!(got.plaintext_bytes, 18);
        assert!(!got.peer_closed);
        let mut rd = s.reader();
        assert_eq!(rd.fill_buf().unwrap(), b"GET / HTTP/1.1\r\n\r\n");
        rd.consume(4);
        assert_eq!(s.reader().fill_buf().unwrap(), b"/ HTTP/1.1\r\n\r\n");
        s.reader().consume(14);

        s.writer().write_all(b"HTTP/1.1 200 OK\r\n").unwrap();
        assert!(s.wants_write());
        let mut out = Vec::new();
        assert_eq!(s.write_tls(&mut out).unwrap(), 17);
        assert_eq!(out, b"HTTP/1.1 200 OK\r\n");
        assert!(!s.wants_write());

        let mut closed: &[u8] = b"";
        assert_eq!(s.read_tls(&mut closed).unwrap(), 0);
        assert!(s.process_new_packets().unwrap().peer_closed);
        assert!(!s.wants_read());
        assert_eq!(s.reader().fill_buf().unwrap(), b"");
    }

    #[test]
    fn plain_stops_reading_when_its_buffer_is_full() {
        let mut s = Plain::new();
        let big = vec![7u8; IN_CAP + 10];
        let mut wire: &[u8] = &big;
        assert_eq!(s.read_tls(&mut wire).unwrap(), IN_CAP);
        assert!(!s.wants_read());
        s.reader().consume(10);
        assert!(s.wants_read());
    }
}
