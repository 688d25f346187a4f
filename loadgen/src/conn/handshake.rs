//! The end of a client connection's handshake: what it counts (kind, version, offered and
//! resumed sessions, HelloRetryRequest, client certificates, early data, bytes on the wire)
//! and how a handshake failure is classified.

use std::time::Instant;

use super::{ClientConn, ClientSession, Fail};
use crate::client_cert::CertRequest;
use crate::plan::Plan;
use crate::stats::{self, FailureKind, HandshakeClass, Measured};

impl<S: ClientSession> ClientConn<S> {
    /// The handshake completed at `now`: its flight's bytes, kind, offers and client
    /// certificate counted (measured operations), and whether early data was accepted.
    pub(super) fn handshake_done(&mut self, m: &mut Measured, now: Instant) -> Result<(), Fail> {
        let Some(kind) = self.tls.handshake_kind() else {
            return Err(Fail(
                FailureKind::Tls,
                Some("rustls finished a handshake without saying its kind".into()),
            ));
        };
        let tls13 = match self.tls.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_2) => false,
            Some(rustls::ProtocolVersion::TLSv1_3) => true,
            other => {
                return Err(Fail(
                    FailureKind::Tls,
                    Some(format!("handshake finished with version {other:?}")),
                ));
            }
        };
        // What the session queued since its last write is its last handshake flight, which the
        // server reads before it completes: handshake bytes (see `tail`).
        if self.tls.wants_write() {
            let _ = self.tls.write_tls(&mut self.tail);
        }
        let (hs_in, hs_out) = (self.received, self.sent + self.tail.len() as u64);
        if self.early_sent {
            self.early_accepted = self.tls.early_accepted();
            if !self.early_accepted {
                self.head_off = 0;
            }
        }
        if !self.op.measured {
            return Ok(());
        }
        if self.early_sent {
            let e = &mut m.counters.early_data;
            e.offered += 1;
            if self.early_accepted {
                e.accepted += 1;
            } else {
                e.rejected += 1;
            }
        }
        stats::record_bytes(&mut m.handshake_bytes_in, hs_in);
        stats::record_bytes(&mut m.handshake_bytes_out, hs_out);
        m.counters.handshake_bytes_in += hs_in;
        m.counters.handshake_bytes_out += hs_out;
        let since = self.connected.unwrap_or(self.connect_started);
        stats::record(&mut m.handshake, now.saturating_duration_since(since));
        let k = &mut m.counters;
        let class = HandshakeClass::of(kind, self.saw_hrr);
        k.handshake(class);
        match class {
            HandshakeClass::Resumed | HandshakeClass::ResumedHrr if self.offered => {
                k.offered_resumed += 1;
            }
            HandshakeClass::Full
            | HandshakeClass::FullHrr
            | HandshakeClass::Resumed
            | HandshakeClass::ResumedHrr => {}
        }
        if self.offered {
            k.offered += 1;
        }
        match self.cert_request {
            Some(CertRequest::Sent) => {
                k.cert_requested += 1;
                k.cert_sent += 1;
            }
            Some(CertRequest::NoneSent) => k.cert_requested += 1,
            None => {}
        }
        if tls13 {
            k.tls13 += 1;
        } else {
            k.tls12 += 1;
        }
        Ok(())
    }
}

/// A TLS error as a failure kind: a refused certificate (with the message that names it), an
/// alert from the server (counted by name), or another TLS failure.
pub(super) fn classify_tls(err: &rustls::Error, m: &mut Measured, plan: &Plan) -> Fail {
    match err {
        rustls::Error::InvalidCertificate(_) => Fail(
            FailureKind::CertVerify,
            Some(crate::verify::describe_error(
                err,
                &plan.server_name,
                &plan.trust,
            )),
        ),
        rustls::Error::AlertReceived(a) => {
            *m.counters
                .alerts
                .entry(common::tls::alert_name(*a))
                .or_default() += 1;
            Fail(FailureKind::TlsAlert, None)
        }
        other => Fail(FailureKind::Tls, Some(other.to_string())),
    }
}
