//! Handshakes and records held to their crypto floor: which floor benches make up a
//! handshake side or a record size, the ratio, and the target it must meet.

use std::collections::BTreeMap;

use crate::results::Measurement;
use crate::tables::{fmt_gbps, fmt_us};

/// The record size at which sealing is compared with the floor: a full TLS record.
pub(crate) const FULL_RECORD: &str = "16384";

/// The highest acceptable handshake time as a multiple of its crypto floor.
pub const HANDSHAKE_TARGET: f64 = 1.3;

/// The lowest acceptable record sealing throughput as a fraction of the raw AEAD's.
pub const SEAL_TARGET: f64 = 0.9;

/// The AEAD algorithms of the floor (`floor/aead/seal/{alg}/16384`), in report order.
pub(crate) const AEAD_ALGS: [&str; 3] = ["aes-128-gcm", "aes-256-gcm", "chacha20-poly1305"];

/// Which way a ratio must lie to meet its target.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// The value must be at most this (handshake time ÷ floor time).
    AtMost(f64),
    /// The value must be at least this (record throughput ÷ AEAD throughput).
    AtLeast(f64),
}

impl Target {
    pub(crate) fn met(self, value: f64) -> bool {
        match self {
            Target::AtMost(limit) => value <= limit,
            Target::AtLeast(limit) => value >= limit,
        }
    }

    pub(crate) fn text(self) -> String {
        match self {
            Target::AtMost(limit) => format!("<= {limit}"),
            Target::AtLeast(limit) => format!(">= {limit}"),
        }
    }
}

/// One measured thing compared with its crypto floor.
#[derive(Clone, Debug, PartialEq)]
pub struct Ratio {
    /// The measured benchmark, e.g. `handshake/server/tls13/x25519/rsa2048/full`.
    pub subject: String,
    /// The ratio, or `None` when the subject or a floor component was not measured.
    pub value: Option<f64>,
    /// The target the ratio is held to.
    pub target: Target,
    /// How the floor was composed, or which inputs were missing.
    pub detail: String,
}

impl Ratio {
    /// "ok", "misses target" or "not measured".
    pub fn status(&self) -> &'static str {
        match self.value {
            None => "not measured",
            Some(v) if self.target.met(v) => "ok",
            Some(_) => "misses target",
        }
    }
}

/// The key-exchange group as the floor names it: lower case, common aliases resolved.
pub(crate) fn kx_name(kx: &str) -> String {
    let lower = kx.to_ascii_lowercase();
    match lower.as_str() {
        "p-256" | "p256" | "prime256v1" => "secp256r1".to_owned(),
        "p-384" | "p384" => "secp384r1".to_owned(),
        _ => lower,
    }
}

/// The floor's key-exchange ID for one side of a handshake: the hybrid group's two sides do
/// different work (encapsulate vs key generation + decapsulate), ECDHE sides the same.
pub(crate) fn kx_floor_id(kx: &str, side: &str) -> String {
    let kx = kx_name(kx);
    if kx.contains("mlkem") {
        format!("kx/{kx}-{side}")
    } else {
        format!("kx/{kx}")
    }
}

/// The floor AEAD of a cipher suite name (IANA, rustls or short), if it is one of the three.
pub(crate) fn aead_of_suite(suite: &str) -> Option<&'static str> {
    let flat: String = suite
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if flat.contains("aes128gcm") {
        Some("aes-128-gcm")
    } else if flat.contains("aes256gcm") {
        Some("aes-256-gcm")
    } else if flat.contains("chacha20") {
        Some("chacha20-poly1305")
    } else {
        None
    }
}

/// A handshake ID split into its parts: `{side}/{proto}/{kx}/{cert}/{kind}`.
pub(crate) struct HandshakeId<'a> {
    pub(crate) side: &'a str,
    pub(crate) proto: &'a str,
    pub(crate) kx: &'a str,
    pub(crate) cert: &'a str,
    pub(crate) kind: &'a str,
}

impl<'a> HandshakeId<'a> {
    pub(crate) fn parse(id: &'a str) -> Option<Self> {
        let mut parts = id.split('/');
        let hs = HandshakeId {
            side: parts.next()?,
            proto: parts.next()?,
            kx: parts.next()?,
            cert: parts.next()?,
            kind: parts.next()?,
        };
        parts.next().is_none().then_some(hs)
    }
}

/// Sort rank of a handshake side in the tables.
pub(crate) fn side_rank(side: &str) -> u8 {
    match side {
        "server" => 0,
        "client" => 1,
        "pair" => 2,
        _ => 3,
    }
}

/// Sum of per-op times of `ids` in `group`, or the full IDs of those missing.
pub(crate) fn sum_of(
    map: &BTreeMap<&str, &Measurement>,
    group: &str,
    ids: &[&str],
) -> Result<f64, Vec<String>> {
    let missing: Vec<String> = ids
        .iter()
        .filter(|id| !map.contains_key(*id))
        .map(|id| format!("{group}/{id}"))
        .collect();
    if !missing.is_empty() {
        return Err(missing);
    }
    Ok(ids
        .iter()
        .filter_map(|id| map.get(id))
        .map(|m| m.per_op_ns())
        .sum())
}

/// Floor ratios of every full TLS 1.3 handshake, by side.
pub(crate) fn handshake_ratios(
    handshakes: &[&Measurement],
    floor: &BTreeMap<&str, &Measurement>,
) -> Vec<Ratio> {
    let mut ratios = Vec::new();
    for m in handshakes {
        let Some(h) = HandshakeId::parse(&m.id) else {
            continue;
        };
        if h.proto != "tls13" || h.kind != "full" {
            continue;
        }
        let cert = h.cert.to_ascii_lowercase();
        let hkdf = "hkdf/tls13-schedule".to_owned();
        let components: Vec<(&str, String)> = match h.side {
            "server" => vec![
                ("sign", format!("sign/{cert}")),
                ("kx", kx_floor_id(h.kx, "server")),
                ("hkdf", hkdf),
            ],
            "client" => vec![
                ("verify", format!("verify/{cert}")),
                ("kx", kx_floor_id(h.kx, "client")),
                ("hkdf", hkdf),
            ],
            "pair" => vec![
                ("sign", format!("sign/{cert}")),
                ("verify", format!("verify/{cert}")),
                ("server kx", kx_floor_id(h.kx, "server")),
                ("client kx", kx_floor_id(h.kx, "client")),
                ("hkdf", hkdf.clone()),
                ("hkdf", hkdf),
            ],
            _ => continue,
        };
        let ids: Vec<&str> = components.iter().map(|(_, id)| id.as_str()).collect();
        let subject = format!("handshake/{}", m.id);
        let target = Target::AtMost(HANDSHAKE_TARGET);
        ratios.push(match sum_of(floor, "floor", &ids) {
            Ok(floor_ns) => {
                let parts: Vec<String> = components
                    .iter()
                    .filter_map(|(name, id)| {
                        floor
                            .get(id.as_str())
                            .map(|f| format!("{name} {}", fmt_us(f.per_op_ns())))
                    })
                    .collect();
                Ratio {
                    subject,
                    value: Some(m.per_op_ns() / floor_ns),
                    target,
                    detail: format!(
                        "{} µs = {} (handshake {} µs)",
                        fmt_us(floor_ns),
                        parts.join(" + "),
                        fmt_us(m.per_op_ns())
                    ),
                }
            }
            Err(missing) => Ratio {
                subject,
                value: None,
                target,
                detail: format!("missing {}", missing.join(", ")),
            },
        });
    }
    ratios
}

/// Record sealing at 16 KiB against the raw AEAD, for every sealing suite measured; an AEAD
/// with no sealing suite measured gets a "not measured" row so the gap shows.
pub(crate) fn seal_ratios(
    records: &[&Measurement],
    floor: &BTreeMap<&str, &Measurement>,
) -> Vec<Ratio> {
    let full_size: f64 = 16384.0;
    let mut ratios = Vec::new();
    let mut covered = Vec::new();
    for m in records {
        let parts: Vec<&str> = m.id.splitn(3, '/').collect();
        let [op, suite, size] = parts.as_slice() else {
            continue;
        };
        if *op != "seal" || *size != FULL_RECORD {
            continue;
        }
        let Some(alg) = aead_of_suite(suite) else {
            continue;
        };
        covered.push(alg);
        let floor_id = format!("aead/seal/{alg}/{FULL_RECORD}");
        let subject = format!("record/{}", m.id);
        let target = Target::AtLeast(SEAL_TARGET);
        let record_bps = m.bytes_per_s(Some(full_size));
        let floor_bps = floor
            .get(floor_id.as_str())
            .and_then(|f| f.bytes_per_s(Some(full_size)));
        ratios.push(match (record_bps, floor_bps) {
            (Some(r), Some(f)) => Ratio {
                subject,
                value: Some(r / f),
                target,
                detail: format!(
                    "{} GB/s ÷ floor/{floor_id} {} GB/s",
                    fmt_gbps(r),
                    fmt_gbps(f)
                ),
            },
            _ => Ratio {
                subject,
                value: None,
                target,
                detail: format!("missing floor/{floor_id}"),
            },
        });
    }
    for alg in AEAD_ALGS {
        if !covered.contains(&alg) {
            ratios.push(Ratio {
                subject: format!("record/seal/{alg}/{FULL_RECORD}"),
                value: None,
                target: Target::AtLeast(SEAL_TARGET),
                detail: format!("missing record/seal/<{alg} suite>/{FULL_RECORD}"),
            });
        }
    }
    ratios.sort_by(|a, b| a.subject.cmp(&b.subject));
    ratios
}
