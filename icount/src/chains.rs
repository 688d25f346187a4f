//! The certificate chains a count is taken with: generated once per `tlsbench icount` run by
//! the product's own `common::certs` into the run's temporary directory, regenerated until
//! the certificates the server sends have their canonical DER length, and loaded by every
//! counted process. No key is ever committed; a run's key files live (0600, as
//! `common::certs` writes them) in its temporary directory, which the parent removes.
//!
//! Why canonical lengths (measured with callgrind, same binary, twelve chains): with chains
//! left as generated the TLS 1.3 x25519 ECDSA rows settled per chain on levels up to 0.5%
//! apart (server 1 142 7xx to 1 147 8xx), and the whole difference between a low and a high
//! iteration was `sha512_block_data_order` (+6 000 instructions): the transcript is hashed
//! with SHA-384, in 128-byte blocks. The only certificate field whose length varies is the
//! signature (serials are always 16 bytes, key sizes and names fixed, the validity below
//! fixed): a DER ECDSA P-256 signature holds two INTEGERs of 32 bytes, 33 when the top bit is
//! set, so it is 70, 71 or 72 bytes long. With leaf and intermediate summing to 980 bytes
//! most handshakes stayed under a block boundary, at 981 the server's own CertificateVerify
//! signature (70–72 bytes, new every handshake) decided it, and at 982 or more every
//! handshake was past it. The mlkem768 and TLS 1.2 rows moved by under 0.1% with any chain.
//! Chain verification is not what varies: the load generator's verifier caches the chain's
//! verdict after the uncounted warm-up, so counted iterations only hash and compare its bytes.

use std::path::Path;
use std::time::{Duration, SystemTime};

use common::certs::{self, CertError, ChainOptions, GeneratedChain, KeyType};
use pairs::{self as pair, PairError};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

/// The key types the rows use, with the length in bytes of the signature of every certificate
/// the server sends (intermediate and leaf; the root is only loaded, uncounted):
/// - RSA-2048 PKCS#1 v1.5: always the modulus' 256 bytes, so every chain is canonical.
/// - ECDSA P-256: 72 bytes (both INTEGERs 33 bytes), one signature in four, so one chain in
///   sixteen. The measured chains (`tlsbench certs`, UTCTime validity) were past the SHA-384
///   block boundary in every handshake from 982 bytes sent; the century validity of
///   `options` is GeneralizedTime, two bytes more per certificate, and the longest
///   signatures put the sent chain at 987 bytes, five past, so even a rare 69- or 68-byte
///   CertificateVerify signature stays past it, and well short of the next boundary.
pub const CANONICAL: [(KeyType, usize); 2] = [(KeyType::EcdsaP256, 72), (KeyType::Rsa2048, 256)];

/// Generations tried per key type before giving up: at one canonical chain in sixteen, 400
/// attempts all fail about once in 10^11 runs, and an ECDSA attempt costs milliseconds.
pub const MAX_ATTEMPTS: u32 = 400;

/// Why the chains could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum ChainsError {
    /// Generating or writing a chain failed.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// A generated certificate could not be parsed (a bug in `common::certs`).
    #[error("a generated {key_type} certificate does not parse: {reason}")]
    Parse {
        /// The chain's key type.
        key_type: KeyType,
        /// The parser's complaint.
        reason: String,
    },
    /// No attempt gave a chain with canonical lengths.
    #[error(
        "no {key_type} chain with {len}-byte signatures in {attempts} attempts (lengths of the last: {last:?})"
    )]
    NotCanonical {
        /// The chain's key type.
        key_type: KeyType,
        /// The canonical signature length.
        len: usize,
        /// Attempts made.
        attempts: u32,
        /// Signature lengths of the last attempt's intermediate and leaf.
        last: Vec<usize>,
    },
    /// The key type has no canonical length in [`CANONICAL`].
    #[error("no canonical signature length for {0} chains")]
    NoCanonicalLength(KeyType),
    /// Loading the chains for the pairs failed.
    #[error(transparent)]
    Pair(#[from] PairError),
}

/// The validity of every chain: fixed, so its encoding (and length) is the same in every run,
/// whatever the date (2025-01-01T00:00:00Z, and a century on: GeneralizedTime, never the
/// switch from UTCTime in 2050).
fn options() -> ChainOptions {
    let not_before = SystemTime::UNIX_EPOCH + Duration::from_secs(1_735_689_600);
    ChainOptions {
        not_before,
        not_after: not_before + Duration::from_secs(100 * 365 * 24 * 3600),
        ..ChainOptions::default()
    }
}

/// The signature lengths of the certificates the server sends: intermediate, leaf.
fn signature_lengths(chain: &GeneratedChain) -> Result<Vec<usize>, ChainsError> {
    let parse_error = |reason: String| ChainsError::Parse {
        key_type: chain.key_type,
        reason,
    };
    [&chain.intermediate_pem, &chain.leaf_pem]
        .into_iter()
        .map(|pem| {
            let der = CertificateDer::from_pem_slice(pem.as_bytes())
                .map_err(|e| parse_error(e.to_string()))?;
            let (_, cert) = x509_parser::parse_x509_certificate(&der)
                .map_err(|e| parse_error(e.to_string()))?;
            Ok(cert.signature_value.data.len())
        })
        .collect()
}

/// Whether every certificate the server sends has the canonical signature length `len`.
fn is_canonical(chain: &GeneratedChain, len: usize) -> Result<bool, ChainsError> {
    Ok(signature_lengths(chain)?.iter().all(|&l| l == len))
}

/// Generates a chain of `key_type` with canonical lengths, in at most [`MAX_ATTEMPTS`].
pub fn generate_canonical(key_type: KeyType) -> Result<GeneratedChain, ChainsError> {
    let len = CANONICAL
        .iter()
        .find(|(kt, _)| *kt == key_type)
        .map(|(_, len)| *len)
        .ok_or(ChainsError::NoCanonicalLength(key_type))?;
    generate_with(key_type, len, MAX_ATTEMPTS)
}

fn generate_with(
    key_type: KeyType,
    len: usize,
    attempts: u32,
) -> Result<GeneratedChain, ChainsError> {
    let opts = options();
    let mut last = Vec::new();
    for _ in 0..attempts {
        let chain = certs::generate(key_type, &opts)?;
        if is_canonical(&chain, len)? {
            return Ok(chain);
        }
        last = signature_lengths(&chain)?;
    }
    Err(ChainsError::NotCanonical {
        key_type,
        len,
        attempts,
        last,
    })
}

/// Writes a canonical chain of every key type the rows use under `dir` (as `tlsbench certs`
/// lays them out: the key 0600); the parent does this once per run.
pub fn write_canonical(dir: &Path) -> Result<(), ChainsError> {
    for (key_type, _) in CANONICAL {
        certs::write(dir, &generate_canonical(key_type)?)?;
    }
    Ok(())
}

/// Makes every later pair of this process use the chains [`write_canonical`] wrote to `dir`.
pub fn install(dir: &Path) -> Result<(), ChainsError> {
    for (key_type, _) in CANONICAL {
        pair::use_chain(dir, key_type)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_rows_key_type_has_a_canonical_length() {
        for case in crate::cases::all() {
            let key_type = case.key_type();
            assert!(
                CANONICAL.iter().any(|(kt, _)| *kt == key_type),
                "{}: no canonical length for {key_type}",
                case.name
            );
        }
        assert!(matches!(
            generate_canonical(KeyType::Ed25519),
            Err(ChainsError::NoCanonicalLength(KeyType::Ed25519))
        ));
    }

    #[test]
    fn ecdsa_chains_of_other_lengths_are_refused_and_canonical_ones_found() {
        // Fifteen chains in sixteen have a shorter signature; find one (bounded).
        let odd = (0..MAX_ATTEMPTS)
            .map(|_| certs::generate(KeyType::EcdsaP256, &options()).unwrap())
            .find(|c| signature_lengths(c).unwrap().iter().any(|&l| l != 72))
            .unwrap();
        assert!(!is_canonical(&odd, 72).unwrap());
        let chain = generate_canonical(KeyType::EcdsaP256).unwrap();
        assert_eq!(signature_lengths(&chain).unwrap(), [72, 72]);
        let sent: usize = [&chain.intermediate_pem, &chain.leaf_pem]
            .into_iter()
            .map(|pem| {
                CertificateDer::from_pem_slice(pem.as_bytes())
                    .unwrap()
                    .len()
            })
            .sum();
        // The length the measurement chose (see the module doc): names or fields that change
        // it move the counts across the block boundary again.
        assert_eq!(sent, 987);
    }

    #[test]
    fn running_out_of_attempts_is_an_error_naming_the_lengths() {
        let err = generate_with(KeyType::Rsa2048, 255, 2).unwrap_err();
        assert!(
            matches!(&err, ChainsError::NotCanonical { attempts: 2, last, .. } if *last == [256, 256]),
            "{err}"
        );
    }

    #[test]
    fn rsa_signatures_have_the_moduluss_length_and_a_wrong_length_is_refused() {
        let chain = certs::generate(KeyType::Rsa2048, &options()).unwrap();
        assert_eq!(signature_lengths(&chain).unwrap(), [256, 256]);
        assert!(!is_canonical(&chain, 255).unwrap());
    }

    #[test]
    fn written_chains_load_for_the_pairs_with_a_private_key() {
        let dir =
            std::env::temp_dir().join(format!("tlsbench-icount-chains-{}", std::process::id()));
        write_canonical(&dir).unwrap();
        let installed = install(&dir);
        let key = certs::paths(&dir, KeyType::EcdsaP256).key;
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&key).unwrap().permissions(),
        );
        let _ = std::fs::remove_dir_all(&dir);
        installed.unwrap();
        assert_eq!(mode & 0o777, 0o600);
    }
}
