//! Certificates for tests and benchmarks: a root CA → intermediate CA → leaf chain per key
//! type and a client CA → client certificate pair for mutual TLS, generated with rcgen on aws-lc-rs ([`generate()`]), written to disk without ever
//! exposing or half-writing the key ([`write()`], [`ensure`]), and loaded back for the server and
//! the clients ([`load_certs`], [`load_private_key`]). This file holds the key types, the
//! errors and the loaders; generating and writing are submodules, re-exported here.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rcgen::{KeyPair, RsaKeySize, SignatureAlgorithm};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

mod files;
mod generate;

pub use files::{CertPaths, ClientPaths, client_paths, ensure, paths, write, write_client};
pub use generate::{ChainOptions, GeneratedChain, GeneratedClient, generate, generate_client};

/// Key types of the generated set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// RSA with a 2048-bit modulus, signing with PKCS#1 v1.5 SHA-256.
    Rsa2048,
    /// RSA with a 3072-bit modulus, signing with PKCS#1 v1.5 SHA-256.
    Rsa3072,
    /// RSA with a 4096-bit modulus, signing with PKCS#1 v1.5 SHA-256.
    Rsa4096,
    /// ECDSA on NIST P-256 with SHA-256.
    EcdsaP256,
    /// ECDSA on NIST P-384 with SHA-384.
    EcdsaP384,
    /// Ed25519.
    Ed25519,
}

impl KeyType {
    /// Every key type, in the order the names are listed to users.
    pub const ALL: [KeyType; 6] = [
        KeyType::Rsa2048,
        KeyType::Rsa3072,
        KeyType::Rsa4096,
        KeyType::EcdsaP256,
        KeyType::EcdsaP384,
        KeyType::Ed25519,
    ];

    /// The names of [`KeyType::ALL`], comma separated, for error messages and help text.
    pub const VALID_NAMES: &'static str =
        "rsa2048, rsa3072, rsa4096, ecdsa-p256, ecdsa-p384, ed25519";

    /// The name used on the command line and as the directory name on disk.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Rsa2048 => "rsa2048",
            KeyType::Rsa3072 => "rsa3072",
            KeyType::Rsa4096 => "rsa4096",
            KeyType::EcdsaP256 => "ecdsa-p256",
            KeyType::EcdsaP384 => "ecdsa-p384",
            KeyType::Ed25519 => "ed25519",
        }
    }

    fn is_rsa(self) -> bool {
        matches!(self, KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096)
    }

    fn generate_key(self) -> Result<KeyPair, rcgen::Error> {
        let rsa = |size| KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, size);
        match self {
            KeyType::Rsa2048 => rsa(RsaKeySize::_2048),
            KeyType::Rsa3072 => rsa(RsaKeySize::_3072),
            KeyType::Rsa4096 => rsa(RsaKeySize::_4096),
            KeyType::EcdsaP256 => KeyPair::generate_for(signature_algorithm(self)),
            KeyType::EcdsaP384 => KeyPair::generate_for(signature_algorithm(self)),
            KeyType::Ed25519 => KeyPair::generate_for(signature_algorithm(self)),
        }
    }
}

fn signature_algorithm(key_type: KeyType) -> &'static SignatureAlgorithm {
    match key_type {
        KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => &rcgen::PKCS_RSA_SHA256,
        KeyType::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        KeyType::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        KeyType::Ed25519 => &rcgen::PKCS_ED25519,
    }
}

impl FromStr for KeyType {
    type Err = CertError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyType::ALL
            .into_iter()
            .find(|kt| kt.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| CertError::UnknownKeyType {
                given: s.to_owned(),
                valid: KeyType::VALID_NAMES,
            })
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad` rather than `write_str` so width and alignment work in tables.
        f.pad(self.name())
    }
}

/// Errors of generating, writing and loading certificates.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A key type name that is not one of [`KeyType::VALID_NAMES`].
    #[error("unknown key type {given:?}; valid key types are: {valid}")]
    UnknownKeyType {
        /// The name given.
        given: String,
        /// All valid names, comma separated.
        valid: &'static str,
    },
    /// The validity window in [`ChainOptions`] cannot be put in a certificate.
    #[error("invalid certificate validity: {reason}")]
    InvalidValidity {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A DNS name in [`ChainOptions::leaf_dns_names`] is not an IA5 string.
    #[error("invalid DNS name {name:?} for the leaf certificate")]
    InvalidDnsName {
        /// The name given.
        name: String,
        /// Why rcgen refused it.
        #[source]
        source: rcgen::Error,
    },
    /// rcgen failed to generate a key or to sign a certificate.
    #[error("generating the {key_type} {what} failed")]
    Generate {
        /// Key type of the chain being generated.
        key_type: KeyType,
        /// Which key or certificate failed.
        what: &'static str,
        /// The rcgen error.
        #[source]
        source: rcgen::Error,
    },
    /// A file system operation failed.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done ("read", "create", ...).
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A file is not well-formed PEM.
    #[error("{} is not valid PEM", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// The PEM parser's error.
        #[source]
        source: pem::Error,
    },
    /// A certificate file holds no `CERTIFICATE` block.
    #[error("{} holds no certificate", path.display())]
    NoCertificates {
        /// The file.
        path: PathBuf,
    },
    /// A key file holds no PKCS#8, PKCS#1 or SEC1 private key.
    #[error("{} holds no private key (PKCS#8, PKCS#1 or SEC1 PEM)", path.display())]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// A private key file that every user on the machine can read.
    #[error(
        "refusing to load private key {}: its mode {mode:04o} lets every user read it; fix with `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    KeyWorldReadable {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> CertError {
    let path = path.to_path_buf();
    move |source| CertError::Io {
        action,
        path,
        source,
    }
}

/// Loads every certificate of a PEM file, in file order; a file with none is an error.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let pem = fs::read(path).map_err(io_error("read", path))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| CertError::Pem {
            path: path.to_path_buf(),
            source,
        })?;
    if certs.is_empty() {
        return Err(CertError::NoCertificates {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// Loads the first private key (PKCS#8, PKCS#1 or SEC1 PEM) of a file.
///
/// Refuses a file that every user can read: a leaked server key lets anyone impersonate the
/// server, and failing loudly is how such a file gets noticed and fixed.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, CertError> {
    let mut file = File::open(path).map_err(io_error("open", path))?;
    // The mode of the opened file, not of the path, so the file checked is the file read.
    let mode = file
        .metadata()
        .map_err(io_error("read the mode of", path))?
        .permissions()
        .mode()
        & 0o7777;
    if mode & 0o004 != 0 {
        return Err(CertError::KeyWorldReadable {
            path: path.to_path_buf(),
            mode,
        });
    }
    let mut pem = Vec::new();
    file.read_to_end(&mut pem).map_err(io_error("read", path))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|source| match source {
        pem::Error::NoItemsFound => CertError::NoPrivateKey {
            path: path.to_path_buf(),
        },
        source => CertError::Pem {
            path: path.to_path_buf(),
            source,
        },
    })
}

#[cfg(test)]
mod tests;
