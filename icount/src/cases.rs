//! The rows of an instruction count and the code run for them under callgrind: each
//! handshake of the standard matrix counted on the server side and on the client side apart,
//! and record seal and open of 16 KiB per suite.
//!
//! Pairs come from [`pairs`], so configs are built by the product's own code exactly as
//! the criterion benches build them. Only what runs inside [`icount_counted_region`] is
//! counted (callgrind `--toggle-collect`); setup, priming a resumable session, the peer's steps
//! and the checks run outside it. Each iteration ends in [`icount_dump_point`], after which
//! callgrind writes that iteration's count to its own file (`--dump-after`).

use std::sync::Arc;

use common::certs::KeyType;
use common::tls::Version;
use loadgen::tlsconf::ResumeMode;
use pairs::{self as pair, Connected, Pair, PairError, PairSpec, SERVER_NAME};
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, HandshakeKind, ServerConnection};
use server::Resumption;

/// The function callgrind counts inside (`--toggle-collect`); kept out of line so the symbol
/// exists in a release build with LTO.
pub const COUNTED_SYMBOL: &str = "icount_counted_region";
/// The function after which callgrind dumps one iteration's count (`--dump-after`).
pub const DUMP_SYMBOL: &str = "icount_dump_point";

/// Application bytes per record row: one full-size TLS record.
pub const RECORD_BYTES: usize = 16 * 1024;

/// Which side of a handshake a row counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Creating the server connection and every server step.
    Server,
    /// Creating the client connection and every client step.
    Client,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Server => "server",
            Side::Client => "client",
        }
    }
}

/// Which direction of a record row is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// The server encrypts 16 KiB into a record.
    Seal,
    /// The client decrypts that record.
    Open,
}

/// What one row measures.
#[derive(Clone, Debug, PartialEq)]
pub enum Work {
    /// One side of a handshake of `spec`, which must end as `expected`.
    Handshake {
        /// Both configs by name.
        spec: PairSpec,
        /// Full, or resumed (the pair is primed with one uncounted full handshake).
        expected: HandshakeKind,
        /// The side counted.
        side: Side,
    },
    /// 16 KiB of application data through one suite.
    Record {
        /// Both configs by name (the suite fixes the version).
        spec: PairSpec,
        /// The suite (IANA name), checked after the handshake.
        suite: &'static str,
        /// Seal or open.
        op: Op,
    },
}

/// One row: its name (scenario name + side, as `tlsbench compare` matches rows) and its work.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    /// e.g. "full tls1.3 x25519 ecdsa-p256 / server", "record seal tls1.3 aes-128-gcm 16KiB".
    pub name: String,
    /// What runs.
    pub work: Work,
}

fn handshake_spec(
    version: Version,
    group: &str,
    key_type: KeyType,
    resumption: Resumption,
    resume: ResumeMode,
) -> PairSpec {
    PairSpec {
        version,
        group: group.to_owned(),
        key_type,
        suites: Vec::new(),
        resumption,
        resume,
    }
}

/// Every row, in report order: the handshakes of `scenarios/standard.toml` (named as there)
/// per side, then seal and open per record suite of that file.
pub fn all() -> Vec<Case> {
    use KeyType::{EcdsaP256, Rsa2048};
    use Version::{Tls12, Tls13};
    let off = (Resumption::Off, ResumeMode::Off, HandshakeKind::Full);
    let handshakes = [
        (
            "full tls1.3 x25519 ecdsa-p256",
            Tls13,
            "X25519",
            EcdsaP256,
            off,
        ),
        ("full tls1.3 x25519 rsa2048", Tls13, "X25519", Rsa2048, off),
        (
            "full tls1.3 x25519mlkem768 ecdsa-p256",
            Tls13,
            "X25519MLKEM768",
            EcdsaP256,
            off,
        ),
        (
            "full tls1.3 x25519mlkem768 rsa2048",
            Tls13,
            "X25519MLKEM768",
            Rsa2048,
            off,
        ),
        (
            "full tls1.2 x25519 ecdsa-p256",
            Tls12,
            "X25519",
            EcdsaP256,
            off,
        ),
        ("full tls1.2 x25519 rsa2048", Tls12, "X25519", Rsa2048, off),
        (
            "resumed tls1.3 tickets",
            Tls13,
            "X25519",
            EcdsaP256,
            (
                Resumption::Tickets,
                ResumeMode::Ticket,
                HandshakeKind::Resumed,
            ),
        ),
        (
            "resumed tls1.3 stateful",
            Tls13,
            "X25519",
            EcdsaP256,
            (
                Resumption::Stateful,
                ResumeMode::Ticket,
                HandshakeKind::Resumed,
            ),
        ),
        (
            "resumed tls1.2 session-id",
            Tls12,
            "X25519",
            EcdsaP256,
            (
                Resumption::Stateful,
                ResumeMode::SessionId,
                HandshakeKind::Resumed,
            ),
        ),
        (
            "resumed tls1.2 tickets",
            Tls12,
            "X25519",
            EcdsaP256,
            (
                Resumption::Tickets,
                ResumeMode::Ticket,
                HandshakeKind::Resumed,
            ),
        ),
    ];
    let mut cases = Vec::new();
    for (name, version, group, key_type, (resumption, resume, expected)) in handshakes {
        for side in [Side::Server, Side::Client] {
            cases.push(Case {
                name: format!("{name} / {}", side.name()),
                work: Work::Handshake {
                    spec: handshake_spec(version, group, key_type, resumption, resume),
                    expected,
                    side,
                },
            });
        }
    }
    let suites = [
        ("tls1.3 aes-128-gcm", "TLS_AES_128_GCM_SHA256", Tls13),
        ("tls1.3 aes-256-gcm", "TLS_AES_256_GCM_SHA384", Tls13),
        (
            "tls1.3 chacha20-poly1305",
            "TLS_CHACHA20_POLY1305_SHA256",
            Tls13,
        ),
        (
            "tls1.2 ecdhe-ecdsa-aes-128-gcm",
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            Tls12,
        ),
    ];
    for (label, suite, version) in suites {
        for (op, op_name) in [(Op::Seal, "seal"), (Op::Open, "open")] {
            cases.push(Case {
                name: format!("record {op_name} {label} 16KiB"),
                work: Work::Record {
                    spec: PairSpec {
                        version,
                        group: "X25519".to_owned(),
                        key_type: EcdsaP256,
                        suites: vec![suite.to_owned()],
                        resumption: Resumption::Off,
                        resume: ResumeMode::Off,
                    },
                    suite,
                    op,
                },
            });
        }
    }
    cases
}

/// Counted by callgrind: everything `f` runs, and nothing else.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "Rust" fn icount_counted_region(
    f: &mut dyn FnMut() -> Result<(), PairError>,
) -> Result<(), PairError> {
    f()
}

/// Callgrind dumps the count since the previous dump when this returns; `label` is passed
/// only so the call has an observable effect and is not merged away.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "Rust" fn icount_dump_point(label: &str) -> usize {
    std::hint::black_box(label).len()
}

/// Runs `f`, counted when `counted`.
fn step(counted: bool, f: &mut dyn FnMut() -> Result<(), PairError>) -> Result<(), PairError> {
    if counted {
        icount_counted_region(f)
    } else {
        f()
    }
}

/// A case set up: the pair (primed for resumed handshakes), or a connected pair for records.
pub struct Prepared {
    case: Case,
    pair: Pair,
    connected: Option<Connected>,
    payload: Vec<u8>,
    records: Vec<u8>,
    scratch: Vec<u8>,
}

impl Case {
    /// The server certificate's key type.
    pub fn key_type(&self) -> KeyType {
        match &self.work {
            Work::Handshake { spec, .. } | Work::Record { spec, .. } => spec.key_type,
        }
    }

    /// Builds the pair, primes it and runs one uncounted iteration (first-use costs such as
    /// the client's verification cache are not in any count).
    pub fn prepare(&self) -> Result<Prepared, PairError> {
        let spec = match &self.work {
            Work::Handshake { spec, .. } | Work::Record { spec, .. } => spec,
        };
        let pair = Pair::new(spec)?;
        let mut p = Prepared {
            case: self.clone(),
            pair,
            connected: None,
            payload: (0..RECORD_BYTES).map(|i| (i % 251) as u8).collect(),
            records: Vec::with_capacity(RECORD_BYTES + 1024),
            scratch: vec![0; RECORD_BYTES],
        };
        match &self.work {
            Work::Handshake { expected, .. } => {
                if *expected == HandshakeKind::Resumed {
                    let primed = p.pair.handshake()?;
                    primed.expect_kind(HandshakeKind::Full)?;
                }
            }
            Work::Record { suite, .. } => {
                let c = p.pair.handshake()?;
                c.expect_kind(HandshakeKind::Full)?;
                c.expect_suite(suite)?;
                p.connected = Some(c);
            }
        }
        p.iterate(false)?;
        Ok(p)
    }
}

impl Prepared {
    /// The row's name.
    pub fn name(&self) -> &str {
        &self.case.name
    }

    /// One iteration, its counted part inside [`icount_counted_region`] when `counted`.
    pub fn iterate(&mut self, counted: bool) -> Result<(), PairError> {
        match self.case.work.clone() {
            Work::Handshake {
                spec,
                expected,
                side,
            } => {
                let c = handshake(&self.pair, side, counted)?;
                c.expect_kind(expected)?;
                c.expect_version(spec.version)?;
                Ok(())
            }
            Work::Record { op, .. } => {
                let Some(c) = self.connected.as_mut() else {
                    return Err(PairError::Refused("record case without a connection"));
                };
                let (payload, records, scratch) =
                    (&self.payload, &mut self.records, &mut self.scratch);
                records.clear();
                step(counted && op == Op::Seal, &mut || c.seal(payload, records))?;
                let mut opened = 0;
                step(counted && op == Op::Open, &mut || {
                    opened = c.open(records, scratch)?;
                    Ok(())
                })?;
                if opened != RECORD_BYTES {
                    return Err(PairError::Mismatch {
                        what: "plaintext length",
                        got: opened.to_string(),
                        expected: RECORD_BYTES.to_string(),
                    });
                }
                Ok(())
            }
        }
    }
}

/// One handshake over `pair`'s configs with `side`'s work counted: the same flights as
/// [`Pair::handshake`], stepped here so each side's steps can be told apart.
fn handshake(pair: &Pair, side: Side, counted: bool) -> Result<Connected, PairError> {
    let (count_server, count_client) = (
        counted && side == Side::Server,
        counted && side == Side::Client,
    );
    let name = ServerName::try_from(SERVER_NAME)?.to_owned();
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut client: Option<ClientConnection> = None;
    step(count_client, &mut || {
        let mut c = ClientConnection::new(Arc::clone(&pair.client_tls().config), name.clone())?;
        pair::flush(&mut c, &mut buf)?;
        client = Some(c);
        Ok(())
    })?;
    let mut server: Option<ServerConnection> = None;
    step(count_server, &mut || {
        server = Some(ServerConnection::new(Arc::clone(pair.server_config()))?);
        Ok(())
    })?;
    let (Some(mut client), Some(mut server)) = (client, server) else {
        return Err(PairError::Refused("connection constructor"));
    };
    let mut server_turn = true;
    // A handshake is a handful of flights; the bound only stops a protocol bug from spinning.
    for _ in 0..32 {
        if buf.is_empty() {
            break;
        }
        let input = std::mem::take(&mut buf);
        if server_turn {
            step(count_server, &mut || {
                pair::feed(&mut server, &input)?;
                pair::flush(&mut server, &mut buf)
            })?;
        } else {
            step(count_client, &mut || {
                pair::feed(&mut client, &input)?;
                pair::flush(&mut client, &mut buf)
            })?;
        }
        server_turn = !server_turn;
    }
    if !buf.is_empty() || client.is_handshaking() || server.is_handshaking() {
        return Err(PairError::Stalled {
            client: client.is_handshaking(),
            server: server.is_handshaking(),
        });
    }
    Ok(Connected { client, server })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_named_once_and_covers_the_standard_matrix() {
        let cases = all();
        let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
        // 10 handshake scenarios × 2 sides + 4 suites × seal/open.
        assert_eq!(names.len(), 28);
        assert!(names.contains(&"full tls1.3 x25519 ecdsa-p256 / server"));
        assert!(names.contains(&"resumed tls1.2 session-id / client"));
        assert!(names.contains(&"record open tls1.3 chacha20-poly1305 16KiB"));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 28);
    }

    #[test]
    fn handshake_names_are_standard_scenarios() {
        let standard = include_str!("../../scenarios/standard.toml");
        for c in all() {
            if let Some((scenario, _side)) = c.name.split_once(" / ") {
                assert!(
                    standard.contains(&format!("name = \"{scenario}\"")),
                    "{scenario} is not in scenarios/standard.toml"
                );
            }
        }
    }

    #[test]
    fn each_case_runs_its_iteration_natively() {
        // Outside valgrind the counted region is an ordinary call: every case must set up and
        // run (resumed ones checked resumed, records checked 16 KiB) before it is counted.
        for c in all() {
            let mut p = c.prepare().unwrap_or_else(|e| panic!("{}: {e}", c.name));
            p.iterate(true)
                .unwrap_or_else(|e| panic!("{}: {e}", c.name));
        }
    }
}
