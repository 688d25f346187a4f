//! What the counters are counted by: the label values of each family (handshake class,
//! failure cause, timeout, early-data result, protocol version, direction), each with its
//! dense index into the per-worker arrays and the name both expositions print.

use rustls::HandshakeKind;

/// Protocol versions counted apart: index 0 is TLS 1.2, 1 is TLS 1.3.
pub const VERSIONS: [&str; 2] = ["1.2", "1.3"];

/// Directions of TLS bytes counted apart (the `direction` label): index 0 is from clients,
/// 1 is to them.
pub const DIRECTIONS: [&str; 2] = ["in", "out"];

/// How a completed handshake is counted. rustls's `handshake_kind()` says `Resumed` for a
/// resumption after a HelloRetryRequest too (it overwrites `FullWithHelloRetryRequest`), yet
/// that handshake costs an extra round trip and a second ClientHello: the connection notes
/// the HRR itself and [`HandshakeClass::of`] tells the two apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeClass {
    /// A full handshake.
    Full,
    /// A resumed handshake (TLS 1.3 PSK, TLS 1.2 session ID or ticket).
    Resumed,
    /// A full TLS 1.3 handshake after a HelloRetryRequest.
    FullHrr,
    /// A resumed TLS 1.3 handshake after a HelloRetryRequest.
    ResumedHrr,
}

impl HandshakeClass {
    /// Every class, in counter order.
    pub const ALL: [HandshakeClass; 4] = [
        HandshakeClass::Full,
        HandshakeClass::Resumed,
        HandshakeClass::FullHrr,
        HandshakeClass::ResumedHrr,
    ];

    /// The Prometheus label value (`kind="..."`).
    pub fn as_str(self) -> &'static str {
        match self {
            HandshakeClass::Full => "full",
            HandshakeClass::Resumed => "resumed",
            HandshakeClass::FullHrr => "full_hrr",
            HandshakeClass::ResumedHrr => "resumed_hrr",
        }
    }

    /// What the human summary calls it.
    pub(super) fn describe(self) -> &'static str {
        match self {
            HandshakeClass::Full => "full",
            HandshakeClass::Resumed => "resumed",
            HandshakeClass::FullHrr => "full with HRR",
            HandshakeClass::ResumedHrr => "resumed after HRR",
        }
    }

    /// The class of a handshake rustls reports as `kind`, where `hrr_sent` says whether this
    /// server sent a HelloRetryRequest on the connection.
    pub fn of(kind: HandshakeKind, hrr_sent: bool) -> HandshakeClass {
        match (kind, hrr_sent) {
            (HandshakeKind::Full, false) => HandshakeClass::Full,
            (HandshakeKind::Resumed, false) => HandshakeClass::Resumed,
            (HandshakeKind::Resumed, true) => HandshakeClass::ResumedHrr,
            // rustls keeps `FullWithHelloRetryRequest` once an HRR went out; either way a
            // full handshake after an HRR is one.
            (HandshakeKind::FullWithHelloRetryRequest, _) | (HandshakeKind::Full, true) => {
                HandshakeClass::FullHrr
            }
        }
    }

    pub(super) fn index(self) -> usize {
        self as usize
    }
}

/// Why a handshake did not complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureCause {
    /// The peer sent a fatal alert (counted by name in `alerts_received` too).
    PeerAlert,
    /// Bytes that do not parse as TLS records or messages (garbage, plain HTTP, SSLv2).
    InvalidMessage,
    /// The peer offers nothing we accept (versions, suites, groups, signature schemes).
    PeerIncompatible,
    /// The peer broke the protocol in a way rustls names misbehaviour.
    PeerMisbehaved,
    /// A message arrived that does not belong at that point of the handshake.
    InappropriateMessage,
    /// A record failed authentication.
    DecryptError,
    /// Any other rustls error.
    OtherTls,
    /// The handshake timeout fired.
    Timeout,
    /// The peer closed the TCP connection before the handshake completed.
    Eof,
    /// A socket error (reset, broken pipe) during the handshake.
    Io,
    /// The server was shutting down.
    Shutdown,
}

impl FailureCause {
    /// Every cause, in counter order.
    pub const ALL: [FailureCause; 11] = [
        FailureCause::PeerAlert,
        FailureCause::InvalidMessage,
        FailureCause::PeerIncompatible,
        FailureCause::PeerMisbehaved,
        FailureCause::InappropriateMessage,
        FailureCause::DecryptError,
        FailureCause::OtherTls,
        FailureCause::Timeout,
        FailureCause::Eof,
        FailureCause::Io,
        FailureCause::Shutdown,
    ];

    /// The Prometheus label value.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCause::PeerAlert => "peer_alert",
            FailureCause::InvalidMessage => "invalid_message",
            FailureCause::PeerIncompatible => "peer_incompatible",
            FailureCause::PeerMisbehaved => "peer_misbehaved",
            FailureCause::InappropriateMessage => "inappropriate_message",
            FailureCause::DecryptError => "decrypt_error",
            FailureCause::OtherTls => "other_tls",
            FailureCause::Timeout => "timeout",
            FailureCause::Eof => "eof",
            FailureCause::Io => "io",
            FailureCause::Shutdown => "shutdown",
        }
    }

    /// Whether rustls reported it (the causes that [`super::WorkerStats::tls_error`] counts too).
    pub fn is_tls(self) -> bool {
        self.index() <= FailureCause::OtherTls.index()
    }

    /// Classifies a rustls error.
    pub fn of(err: &rustls::Error) -> FailureCause {
        match err {
            rustls::Error::AlertReceived(_) => FailureCause::PeerAlert,
            rustls::Error::InvalidMessage(_) => FailureCause::InvalidMessage,
            rustls::Error::PeerIncompatible(_) => FailureCause::PeerIncompatible,
            rustls::Error::PeerMisbehaved(_) => FailureCause::PeerMisbehaved,
            rustls::Error::InappropriateMessage { .. }
            | rustls::Error::InappropriateHandshakeMessage { .. } => {
                FailureCause::InappropriateMessage
            }
            rustls::Error::DecryptError => FailureCause::DecryptError,
            _ => FailureCause::OtherTls,
        }
    }

    pub(super) fn index(self) -> usize {
        self as usize
    }
}

/// Timeouts that close a connection, by what it was waiting for. A handshake timeout is also
/// a handshake failure ([`FailureCause::Timeout`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutKind {
    /// No complete TLS handshake in time.
    Handshake,
    /// A request head started but did not complete in time.
    Header,
    /// A request body stalled.
    Body,
    /// No new request on a kept-alive connection.
    Idle,
    /// The client did not read the response in time.
    Send,
    /// Lingering close: the client neither closed nor went quiet.
    Linger,
}

impl TimeoutKind {
    /// Every kind, in counter order.
    pub const ALL: [TimeoutKind; 6] = [
        TimeoutKind::Handshake,
        TimeoutKind::Header,
        TimeoutKind::Body,
        TimeoutKind::Idle,
        TimeoutKind::Send,
        TimeoutKind::Linger,
    ];

    /// The Prometheus label value.
    pub fn as_str(self) -> &'static str {
        match self {
            TimeoutKind::Handshake => "handshake",
            TimeoutKind::Header => "header",
            TimeoutKind::Body => "body",
            TimeoutKind::Idle => "idle",
            TimeoutKind::Send => "send",
            TimeoutKind::Linger => "linger",
        }
    }
}

/// What became of a connection's TLS 1.3 early data. Offered counts the handshakes whose
/// ClientHello offered it; each of those is then accepted or rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EarlyData {
    /// The ClientHello carried the early_data extension.
    Offered,
    /// We took the early data (the request in it is answered if its method is safe).
    Accepted,
    /// We refused it (no early data configured, a stale or non-first PSK, ...): the client
    /// sends the request again after the handshake.
    Rejected,
}

impl EarlyData {
    /// Every result, in [`EarlyData::index`] order.
    pub const ALL: [EarlyData; 3] = [EarlyData::Offered, EarlyData::Accepted, EarlyData::Rejected];

    /// The `result` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            EarlyData::Offered => "offered",
            EarlyData::Accepted => "accepted",
            EarlyData::Rejected => "rejected",
        }
    }

    /// Dense index into [`EarlyData::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}
