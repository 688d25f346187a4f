//! What a client connection runs on: the byte [`Transport`] (a non-blocking TCP socket in
//! the worker, memory in tests and the fuzzer) and the [`ClientSession`] over it (rustls, or
//! plain for the TCP floor), with the early-data hooks 0-RTT needs.

use std::io::{self, Read, Write};
use std::sync::Arc;

use common::session::{Plain, Session};
use rustls::ClientConnection;

use super::Fail;
use crate::plan::Plan;
use crate::stats::FailureKind;
use crate::tlsconf::WorkerTls;

/// A byte stream a client connection can run on.
pub trait Transport: Read + Write {
    /// Whether a non-blocking connect has completed (`Ok(false)`: still in progress); an
    /// error is the connect's failure. Once connected, the stream is made ready for
    /// requests (TCP_NODELAY: a request head must not wait for an ACK).
    fn connected(&mut self) -> io::Result<bool>;
}

impl Transport for mio::net::TcpStream {
    fn connected(&mut self) -> io::Result<bool> {
        if let Some(e) = self.take_error()? {
            return Err(e);
        }
        match self.peer_addr() {
            Ok(_) => {
                let _ = self.set_nodelay(true);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Connections driven in memory (unit tests, the fuzzing harness): connected from the start.
impl Transport for common::memory::Memory {
    fn connected(&mut self) -> io::Result<bool> {
        Ok(true)
    }
}

/// How a connection's session starts: a rustls client, or plain.
pub trait ClientSession: Session + Sized {
    /// A session for `plan`'s server with the worker's TLS configuration.
    fn open(plan: &Plan, tls: &WorkerTls) -> Result<Self, Fail>;
    /// Queues `data` as TLS 1.3 early data if the session may send all of it (it resumes a
    /// ticket that allows that much and early data is enabled); how much it took (0: none).
    fn write_early(&mut self, data: &[u8]) -> usize;
    /// The server accepted our early data.
    fn early_accepted(&self) -> bool;
}

impl ClientSession for ClientConnection {
    fn open(plan: &Plan, tls: &WorkerTls) -> Result<Self, Fail> {
        ClientConnection::new(Arc::clone(&tls.config), plan.server_name.clone())
            .map_err(|e| Fail(FailureKind::Tls, Some(e.to_string())))
    }

    fn write_early(&mut self, data: &[u8]) -> usize {
        // All or nothing, within the ticket's max_early_data_size: a server that rejects
        // early data loses it, and only a whole request can be sent again.
        match self.early_data() {
            Some(mut w) if w.bytes_left() >= data.len() => w.write(data).unwrap_or(0),
            _ => 0,
        }
    }

    fn early_accepted(&self) -> bool {
        self.is_early_data_accepted()
    }
}

impl ClientSession for Plain {
    fn open(_: &Plan, _: &WorkerTls) -> Result<Self, Fail> {
        Ok(Plain::new())
    }

    fn write_early(&mut self, _: &[u8]) -> usize {
        0
    }

    fn early_accepted(&self) -> bool {
        false
    }
}
