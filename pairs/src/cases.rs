//! The bench cases by name: every handshake case (protocol, key exchange, certificate,
//! [`HandshakeMode`]) and record case (suite, write size), their criterion ids, their configs,
//! and the checks that a measured connection is what its id says.

use std::io::{self, Read};

use common::certs::KeyType;
use common::tls::{self, Version};
use loadgen::tlsconf::ResumeMode;
use rustls::HandshakeKind;
use server::Resumption;

use crate::pair::{Connected, Pair, PairSpec};
use crate::{PairError, io_err, mismatch};

/// Which side of a handshake a bench times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The server's own processing only.
    Server,
    /// The client's own processing only.
    Client,
    /// The whole in-memory handshake, both sides and the buffer shuffling.
    Pair,
}

impl Side {
    /// Every side, in report order.
    pub const ALL: [Side; 3] = [Side::Server, Side::Client, Side::Pair];

    /// `server`, `client` or `pair`, as in bench ids.
    pub fn name(self) -> &'static str {
        match self {
            Side::Server => "server",
            Side::Client => "client",
            Side::Pair => "pair",
        }
    }
}

/// How a bench's handshakes go: full, or resumed and by which mechanism (rustls's
/// [`HandshakeKind`] says only full or resumed; this is what the bench configures and names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeMode {
    /// A full handshake; neither side has resumption enabled.
    Full,
    /// Resumed with a ticket: TLS 1.3 PSK tickets or TLS 1.2 RFC 5077 tickets (server
    /// [`Resumption::Tickets`], client [`ResumeMode::Ticket`]).
    ResumedTicket,
    /// Resumed with a TLS 1.2 session ID (server [`Resumption::Stateful`], client
    /// [`ResumeMode::SessionId`]).
    ResumedSessionId,
}

impl HandshakeMode {
    /// `full`, `resumed-ticket` or `resumed-session-id`, as in bench ids.
    pub fn name(self) -> &'static str {
        match self {
            HandshakeMode::Full => "full",
            HandshakeMode::ResumedTicket => "resumed-ticket",
            HandshakeMode::ResumedSessionId => "resumed-session-id",
        }
    }

    /// The rustls handshake kind every measured handshake must have.
    pub fn expected(self) -> HandshakeKind {
        match self {
            HandshakeMode::Full => HandshakeKind::Full,
            HandshakeMode::ResumedTicket | HandshakeMode::ResumedSessionId => {
                HandshakeKind::Resumed
            }
        }
    }

    /// The server's and the client's resumption settings for this mode.
    pub fn resumption(self) -> (Resumption, ResumeMode) {
        match self {
            HandshakeMode::Full => (Resumption::Off, ResumeMode::Off),
            HandshakeMode::ResumedTicket => (Resumption::Tickets, ResumeMode::Ticket),
            HandshakeMode::ResumedSessionId => (Resumption::Stateful, ResumeMode::SessionId),
        }
    }
}

/// `tls13` or `tls12`, as in bench ids.
pub fn proto_name(version: Version) -> &'static str {
    match version {
        Version::Tls13 => "tls13",
        Version::Tls12 => "tls12",
    }
}

/// One handshake bench: protocol, key exchange, certificate and handshake mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandshakeCase {
    /// The protocol version.
    pub version: Version,
    /// The key-exchange group (IANA name: `X25519`, `secp256r1`, `X25519MLKEM768`).
    pub group: &'static str,
    /// The server certificate's key type.
    pub key_type: KeyType,
    /// Full or resumed, and how.
    pub mode: HandshakeMode,
}

impl HandshakeCase {
    /// The criterion bench id: `{side}/{proto}/{kx}/{cert}/{mode}`.
    pub fn id(&self, side: Side) -> String {
        format!(
            "{}/{}/{}/{}/{}",
            side.name(),
            proto_name(self.version),
            self.group.to_ascii_lowercase(),
            self.key_type.name(),
            self.mode.name()
        )
    }

    /// The configs by name.
    pub fn spec(&self) -> PairSpec {
        let (resumption, resume) = self.mode.resumption();
        PairSpec {
            version: self.version,
            group: self.group.to_owned(),
            key_type: self.key_type,
            suites: Vec::new(),
            resumption,
            resume,
        }
    }

    /// Builds the pair and, for resumed modes, primes it with one full handshake so the
    /// first measured handshake can resume. The priming handshake is checked too.
    pub fn setup(&self) -> Result<Pair, PairError> {
        let pair = Pair::new(&self.spec())?;
        if self.mode != HandshakeMode::Full {
            let primed = pair.handshake()?;
            primed.expect_kind(HandshakeKind::Full)?;
            self.check_negotiated(&primed)?;
        }
        Ok(pair)
    }

    /// Fails unless `c` is a handshake of this case's mode, version and group (TLS 1.2
    /// resumption exchanges no key, so there the group is not checked).
    pub fn check(&self, c: &Connected) -> Result<(), PairError> {
        c.expect_kind(self.mode.expected())?;
        self.check_negotiated(c)
    }

    fn check_negotiated(&self, c: &Connected) -> Result<(), PairError> {
        c.expect_version(self.version)?;
        let key_exchanged = !(self.version == Version::Tls12
            && c.server.handshake_kind() == Some(HandshakeKind::Resumed));
        if key_exchanged {
            c.expect_group(self.group)?;
        }
        Ok(())
    }
}

/// Every handshake bench, in report order.
pub fn handshake_cases() -> Vec<HandshakeCase> {
    let case = |version, group, key_type, mode| HandshakeCase {
        version,
        group,
        key_type,
        mode,
    };
    use HandshakeMode::{Full, ResumedSessionId, ResumedTicket};
    use KeyType::{EcdsaP256, Ed25519, Rsa2048};
    use Version::{Tls12, Tls13};
    vec![
        // Protocol × key exchange, full, ecdsa-p256.
        case(Tls13, "X25519", EcdsaP256, Full),
        case(Tls13, "secp256r1", EcdsaP256, Full),
        case(Tls13, "X25519MLKEM768", EcdsaP256, Full),
        case(Tls12, "X25519", EcdsaP256, Full),
        case(Tls12, "secp256r1", EcdsaP256, Full),
        // Certificates, full, TLS 1.3 X25519 (ecdsa-p256 above).
        case(Tls13, "X25519", Rsa2048, Full),
        case(Tls13, "X25519", Ed25519, Full),
        // rsa2048 with the post-quantum hybrid as well: the default group of both sides.
        case(Tls13, "X25519MLKEM768", Rsa2048, Full),
        // Resumption.
        case(Tls13, "X25519", EcdsaP256, ResumedTicket),
        case(Tls12, "X25519", EcdsaP256, ResumedSessionId),
        case(Tls12, "X25519", EcdsaP256, ResumedTicket),
    ]
}

/// Cipher suites of the record benches (IANA names, as `common::tls::suite_name` gives them).
pub const RECORD_SUITES: [&str; 6] = [
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
];

/// Application write sizes of the record benches, in bytes.
pub const RECORD_SIZES: [usize; 4] = [64, 1024, 16 * 1024, 1024 * 1024];

/// Which direction a record bench times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Server send: plaintext in, records out.
    Seal,
    /// Client receive: records in, plaintext out.
    Open,
}

impl Op {
    /// Both operations, in report order.
    pub const ALL: [Op; 2] = [Op::Seal, Op::Open];

    /// `seal` or `open`, as in bench ids.
    pub fn name(self) -> &'static str {
        match self {
            Op::Seal => "seal",
            Op::Open => "open",
        }
    }
}

/// One record bench: a cipher suite (IANA name) and an application write size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordCase {
    /// The cipher suite, IANA name.
    pub suite: &'static str,
    /// Bytes per application write.
    pub size: usize,
}

impl RecordCase {
    /// The criterion bench id: `{op}/{suite}/{size}`.
    pub fn id(&self, op: Op) -> String {
        format!("{}/{}/{}", op.name(), self.suite, self.size)
    }

    /// The configs by name: the suite's version only, X25519, an ECDSA P-256 certificate,
    /// no resumption.
    pub fn spec(&self) -> Result<PairSpec, PairError> {
        let suite = tls::find_suite(self.suite)?;
        let version = Version::from_rustls(suite.version().version)
            .ok_or_else(|| mismatch("version", format!("{:?}", suite.version()), "1.2 or 1.3"))?;
        Ok(PairSpec {
            version,
            group: "X25519".to_owned(),
            key_type: KeyType::EcdsaP256,
            suites: vec![self.suite.to_owned()],
            resumption: Resumption::Off,
            resume: ResumeMode::Off,
        })
    }

    /// A connected pair that negotiated this case's suite (the server keeps rustls's default
    /// buffer limit; see [`Connected::unlimit_server`]).
    pub fn connect(&self, pair: &Pair) -> Result<Connected, PairError> {
        let c = pair.handshake()?;
        c.expect_kind(HandshakeKind::Full)?;
        c.expect_suite(self.suite)?;
        Ok(c)
    }

    /// Records one `size`-byte write becomes (plaintext is split at 16 KiB).
    pub fn records_per_write(&self) -> u64 {
        self.size.div_ceil(16 * 1024).max(1) as u64
    }
}

/// Every record bench, suites outer, sizes inner.
pub fn record_cases() -> Vec<RecordCase> {
    RECORD_SUITES
        .iter()
        .flat_map(|&suite| RECORD_SIZES.map(|size| RecordCase { suite, size }))
        .collect()
}

/// Writes sealed on one connection before the benches reconnect (untimed): far below the
/// AEAD record limits at which rustls would rekey (TLS 1.3) or refuse to send (TLS 1.2).
pub const MAX_RECORDS_PER_CONNECTION: u64 = 1 << 20;

/// Checks one record case end to end: seals one write under rustls's default buffer limit
/// (as the open bench's untimed sealing does) and one with the limit lifted (as the seal
/// bench does), opens both in order and compares the plaintext.
pub fn record_roundtrip(case: &RecordCase) -> Result<(), PairError> {
    let pair = Pair::new(&case.spec()?)?;
    let mut c = case.connect(&pair)?;
    let payload: Vec<u8> = (0..case.size).map(|i| (i % 251) as u8).collect();
    let mut records = Vec::new();
    c.seal(&payload, &mut records)?;
    c.unlimit_server();
    c.seal(&payload, &mut records)?;
    let mut opened = Vec::with_capacity(2 * case.size);
    let mut scratch = vec![0; 16 * 1024];
    let mut rest = &records[..];
    while !rest.is_empty() {
        let n = c
            .client
            .read_tls(&mut rest)
            .map_err(io_err("read_tls of records"))?;
        if n == 0 {
            return Err(PairError::Refused("read_tls"));
        }
        c.client.process_new_packets()?;
        loop {
            match c.client.reader().read(&mut scratch) {
                Ok(0) => break,
                Ok(got) => opened.extend_from_slice(&scratch[..got]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(io_err("reading plaintext")(e)),
            }
        }
    }
    if opened.len() != 2 * case.size {
        return Err(mismatch("plaintext length", opened.len(), 2 * case.size));
    }
    if opened[..case.size] != payload[..] || opened[case.size..] != payload[..] {
        return Err(mismatch("plaintext", "different bytes", "the bytes sealed"));
    }
    Ok(())
}
