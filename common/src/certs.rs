//! Certificates for tests and benchmarks: generating a root CA → intermediate CA → leaf chain
//! per key type (rcgen on aws-lc-rs), writing it to disk without ever exposing or half-writing
//! the key, and loading certificates and private keys back for the server and the clients.

use std::fmt;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, RsaKeySize, SanType, SerialNumber,
    SignatureAlgorithm,
};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

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

/// Names and validity of a generated chain; `Default` is the standard set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainOptions {
    /// DNS subject alternative names of the leaf (default `bank32.com`, `localhost`).
    pub leaf_dns_names: Vec<String>,
    /// IP subject alternative names of the leaf (default `127.0.0.1`, `::1`).
    pub leaf_ips: Vec<IpAddr>,
    /// Start of validity of all three certificates (default: an hour ago).
    pub not_before: SystemTime,
    /// End of validity of all three certificates (default: 397 days from now).
    pub not_after: SystemTime,
}

impl Default for ChainOptions {
    fn default() -> Self {
        let now = SystemTime::now();
        Self {
            leaf_dns_names: vec!["bank32.com".to_owned(), "localhost".to_owned()],
            leaf_ips: vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ],
            // An hour back so a client whose clock lags the generating machine's still accepts
            // a freshly generated chain.
            not_before: now.checked_sub(Duration::from_secs(3600)).unwrap_or(now),
            // Over a year so generated sets outlive a benchmark campaign, yet under the 398-day
            // ceiling Apple and the browsers enforce on server certificates.
            not_after: now
                .checked_add(Duration::from_secs(397 * 24 * 3600))
                .unwrap_or(now),
        }
    }
}

/// PEM text of one generated chain.
#[derive(Clone)]
pub struct GeneratedChain {
    /// Key type shared by all three certificates.
    pub key_type: KeyType,
    /// The root CA certificate: the trust anchor clients load.
    pub root_pem: String,
    /// The intermediate CA certificate, signed by the root.
    pub intermediate_pem: String,
    /// The leaf (server) certificate, signed by the intermediate.
    pub leaf_pem: String,
    /// The leaf's private key as PKCS#8 (`PRIVATE KEY`).
    pub leaf_key_pem: String,
}

impl GeneratedChain {
    /// The chain a server sends: leaf then intermediate. The root is left out because a client
    /// must already hold it as a trust anchor; sending it only costs handshake bytes.
    pub fn chain_pem(&self) -> String {
        let mut pem = String::with_capacity(self.leaf_pem.len() + self.intermediate_pem.len() + 1);
        pem.push_str(&self.leaf_pem);
        if !pem.ends_with('\n') {
            pem.push('\n');
        }
        pem.push_str(&self.intermediate_pem);
        pem
    }
}

// Hand-written so that debug output and panics in tests never print the private key.
impl fmt::Debug for GeneratedChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedChain")
            .field("key_type", &self.key_type)
            .field("root_pem", &self.root_pem)
            .field("intermediate_pem", &self.intermediate_pem)
            .field("leaf_pem", &self.leaf_pem)
            .field("leaf_key_pem", &"<redacted>")
            .finish()
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

// The range RFC 5280 encodes unambiguously: from 1950, where UTCTime starts, up to
// 9999-12-31T23:59:59Z, the largest GeneralizedTime and RFC 5280's "no expiry" value. Outside
// it rcgen's date arithmetic or encoding could panic or produce a time verifiers disagree on.
const EARLIEST_CERT_TIME: i64 = -631_152_000;
const LATEST_CERT_TIME: i64 = 253_402_300_799;

/// Whole seconds since the Unix epoch, floored, if an X.509 certificate can hold the time.
fn cert_seconds(time: SystemTime, out_of_range: &'static str) -> Result<i64, CertError> {
    let secs = match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => {
            let before = before.duration();
            let whole = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
            // Flooring before the epoch moves away from zero.
            let floored = if before.subsec_nanos() > 0 {
                whole.saturating_add(1)
            } else {
                whole
            };
            floored.saturating_neg()
        }
    };
    if (EARLIEST_CERT_TIME..=LATEST_CERT_TIME).contains(&secs) {
        Ok(secs)
    } else {
        Err(CertError::InvalidValidity {
            reason: out_of_range,
        })
    }
}

fn set_validity(params: &mut CertificateParams, not_before: i64, not_after: i64) {
    // rcgen takes `time::OffsetDateTime`, which this crate does not depend on; deriving the
    // value from rcgen's own constructor keeps that type unnamed here. Both inputs were
    // range-checked, so the arithmetic cannot overflow.
    let at = |secs: i64| {
        let epoch = rcgen::date_time_ymd(1970, 1, 1);
        let offset = Duration::from_secs(secs.unsigned_abs());
        if secs >= 0 {
            epoch + offset
        } else {
            epoch - offset
        }
    };
    params.not_before = at(not_before);
    params.not_after = at(not_after);
}

/// A fresh random, positive serial number of 16 bytes (RFC 5280 allows up to 20).
fn random_serial() -> Result<SerialNumber, CertError> {
    const SOURCE: &str = "/dev/urandom";
    let mut bytes = [0u8; 16];
    File::open(SOURCE)
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(io_error("read", Path::new(SOURCE)))?;
    // A clear top bit keeps the DER INTEGER positive; a non-zero first byte keeps it at
    // exactly 16 bytes with no leading zero to strip.
    bytes[0] = (bytes[0] & 0x7f).max(1);
    Ok(SerialNumber::from_slice(&bytes))
}

fn distinguished_name(organization: &str, common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, organization);
    dn.push(DnType::CommonName, common_name);
    dn
}

/// Generates a root CA, an intermediate CA signed by it and a leaf signed by the intermediate,
/// all with keys of `key_type`. Only the leaf's key is kept; the CA keys are dropped here, so
/// nothing can ever issue another certificate under this root.
pub fn generate(key_type: KeyType, opts: &ChainOptions) -> Result<GeneratedChain, CertError> {
    let not_before = cert_seconds(opts.not_before, "not_before is outside 1950..=9999")?;
    let not_after = cert_seconds(opts.not_after, "not_after is outside 1950..=9999")?;
    if not_after <= not_before {
        return Err(CertError::InvalidValidity {
            reason: "not_after is not later than not_before",
        });
    }
    let failed = |what: &'static str| {
        move |source| CertError::Generate {
            key_type,
            what,
            source,
        }
    };

    let mut root_params = CertificateParams::default();
    root_params.distinguished_name = distinguished_name("Model CA", "modelCA.com");
    root_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    root_params.serial_number = Some(random_serial()?);
    set_validity(&mut root_params, not_before, not_after);
    let root_key = key_type.generate_key().map_err(failed("root CA key"))?;
    let root = CertifiedIssuer::self_signed(root_params, root_key)
        .map_err(failed("root CA certificate"))?;

    let mut intermediate_params = CertificateParams::default();
    intermediate_params.distinguished_name =
        distinguished_name("Model CA", "Model CA Intermediate");
    // Path length 0: the intermediate may sign leaves only, as in a real web PKI chain.
    intermediate_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    intermediate_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    intermediate_params.use_authority_key_identifier_extension = true;
    intermediate_params.serial_number = Some(random_serial()?);
    set_validity(&mut intermediate_params, not_before, not_after);
    let intermediate_key = key_type
        .generate_key()
        .map_err(failed("intermediate CA key"))?;
    let intermediate = CertifiedIssuer::signed_by(intermediate_params, intermediate_key, &root)
        .map_err(failed("intermediate CA certificate"))?;

    let mut leaf_params = CertificateParams::default();
    leaf_params.distinguished_name = distinguished_name("Bank32 Inc.", "bank32.com");
    // Explicit CA:FALSE rather than no basicConstraints, so no verifier can treat it as a CA.
    leaf_params.is_ca = IsCa::ExplicitNoCa;
    leaf_params.subject_alt_names = opts
        .leaf_dns_names
        .iter()
        .map(|name| {
            Ia5String::try_from(name.as_str())
                .map(SanType::DnsName)
                .map_err(|source| CertError::InvalidDnsName {
                    name: name.clone(),
                    source,
                })
        })
        .chain(opts.leaf_ips.iter().map(|&ip| Ok(SanType::IpAddress(ip))))
        .collect::<Result<_, _>>()?;
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if key_type.is_rsa() {
        // TLS 1.2 clients other than rustls may still negotiate RSA key exchange, which
        // encrypts the premaster secret to the leaf key.
        leaf_params
            .key_usages
            .push(KeyUsagePurpose::KeyEncipherment);
    }
    leaf_params.use_authority_key_identifier_extension = true;
    leaf_params.serial_number = Some(random_serial()?);
    set_validity(&mut leaf_params, not_before, not_after);
    let leaf_key = key_type.generate_key().map_err(failed("leaf key"))?;
    let leaf = leaf_params
        .signed_by(&leaf_key, &intermediate)
        .map_err(failed("leaf certificate"))?;

    Ok(GeneratedChain {
        key_type,
        root_pem: root.pem(),
        intermediate_pem: intermediate.pem(),
        leaf_pem: leaf.pem(),
        leaf_key_pem: leaf_key.serialize_pem(),
    })
}

/// Where one key type's files live: `<out>/<name>/chain.pem`, `key.pem`, `ca.pem`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertPaths {
    /// The key type's directory, `<out>/<name>`.
    pub dir: PathBuf,
    /// Leaf then intermediate certificate, what the server sends.
    pub chain: PathBuf,
    /// The leaf's private key (PKCS#8 PEM, mode 0600).
    pub key: PathBuf,
    /// The root CA certificate, what clients trust.
    pub ca: PathBuf,
}

impl CertPaths {
    fn all_present(&self) -> bool {
        [&self.chain, &self.key, &self.ca]
            .into_iter()
            .all(|path| path.is_file())
    }
}

/// The paths of `key_type`'s files under `out`; touches nothing on disk.
pub fn paths(out: &Path, key_type: KeyType) -> CertPaths {
    let dir = out.join(key_type.name());
    CertPaths {
        chain: dir.join("chain.pem"),
        key: dir.join("key.pem"),
        ca: dir.join("ca.pem"),
        dir,
    }
}

/// A complete file under a temporary name next to its destination, removed on drop unless
/// [`Staged::commit`] renamed it into place.
struct Staged {
    temp: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl Staged {
    fn new(dest: &Path, contents: &[u8], mode: u32) -> Result<Self, CertError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let file_name = dest
            .file_name()
            .map_or_else(String::new, |name| name.to_string_lossy().into_owned());
        let temp = dest.with_file_name(format!(
            ".{file_name}.tmp-{}-{}-{nanos}",
            process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
        ));
        // create_new: never write through a file or symlink someone else put at the name.
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)
            .map_err(io_error("create", &temp))?;
        let staged = Self {
            temp,
            dest: dest.to_path_buf(),
            committed: false,
        };
        if mode & 0o044 != 0 {
            // Public files get their exact mode even under a restrictive umask, so clients
            // running as another user can read the trust anchor. The key is left to `mode`
            // alone: the umask can only narrow it.
            file.set_permissions(Permissions::from_mode(mode))
                .map_err(io_error("set permissions of", &staged.temp))?;
        }
        file.write_all(contents)
            .map_err(io_error("write", &staged.temp))?;
        // On disk before the rename publishes it, so a crash cannot leave an empty file
        // under the final name.
        file.sync_all().map_err(io_error("sync", &staged.temp))?;
        Ok(staged)
    }

    fn commit(mut self) -> Result<(), CertError> {
        fs::rename(&self.temp, &self.dest).map_err(io_error("rename into", &self.dest))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: the error being returned matters more than a stray temp file.
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// Writes `chain`'s files under `out` (see [`CertPaths`]), replacing any existing ones.
///
/// Each file is written under a temporary name in the same directory and renamed into place,
/// so a crash never leaves a half-written file; all three are staged before the first rename,
/// so a failure while writing leaves any previous set untouched. The key is created with mode
/// 0600 and is never readable by others, not even for an instant; `ca.pem` and `chain.pem`
/// get 0644.
pub fn write(out: &Path, chain: &GeneratedChain) -> Result<CertPaths, CertError> {
    let paths = paths(out, chain.key_type);
    fs::create_dir_all(&paths.dir).map_err(io_error("create directory", &paths.dir))?;
    let staged = [
        Staged::new(&paths.key, chain.leaf_key_pem.as_bytes(), 0o600)?,
        Staged::new(&paths.chain, chain.chain_pem().as_bytes(), 0o644)?,
        Staged::new(&paths.ca, chain.root_pem.as_bytes(), 0o644)?,
    ];
    for file in staged {
        file.commit()?;
    }
    // The renames live in the directory; syncing it makes them survive a power loss.
    File::open(&paths.dir)
        .and_then(|dir| dir.sync_all())
        .map_err(io_error("sync directory", &paths.dir))?;
    Ok(paths)
}

/// Generates (with [`ChainOptions::default`]) and writes every key type in `types` whose
/// three files are not all present; returns the paths of all of them, existing or new, in the
/// order of `types`.
pub fn ensure(out: &Path, types: &[KeyType]) -> Result<Vec<CertPaths>, CertError> {
    types
        .iter()
        .map(|&key_type| {
            let existing = paths(out, key_type);
            if existing.all_present() {
                Ok(existing)
            } else {
                write(out, &generate(key_type, &ChainOptions::default())?)
            }
        })
        .collect()
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
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    use std::sync::Arc;

    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::{ServerName, UnixTime};
    use rustls::{CertificateError, RootCertStore, SignatureScheme};

    /// A directory under the system temp dir, removed with its contents on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let path = std::env::temp_dir().join(format!(
                "tlsbench-certs-{tag}-{}-{}",
                process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir(&path).unwrap();
            Self(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    fn verify(
        chain: &GeneratedChain,
        with_intermediate: bool,
        name: &str,
    ) -> Result<(), rustls::Error> {
        let mut roots = RootCertStore::empty();
        roots.add(der(&chain.root_pem)).unwrap();
        let verifier = WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        )
        .build()
        .unwrap();
        let intermediates = if with_intermediate {
            vec![der(&chain.intermediate_pem)]
        } else {
            Vec::new()
        };
        verifier
            .verify_server_cert(
                &der(&chain.leaf_pem),
                &intermediates,
                &ServerName::try_from(name).unwrap(),
                &[],
                UnixTime::now(),
            )
            .map(|_| ())
    }

    fn certificate_error(result: Result<(), rustls::Error>) -> CertificateError {
        match result {
            Err(rustls::Error::InvalidCertificate(e)) => e,
            other => panic!("expected an invalid-certificate error, got {other:?}"),
        }
    }

    /// Generates a standard chain and checks it end to end as a rustls client would.
    fn check_chain(key_type: KeyType) {
        let chain = generate(key_type, &ChainOptions::default()).unwrap();
        assert_eq!(chain.key_type, key_type);

        for name in ["bank32.com", "localhost", "127.0.0.1", "::1"] {
            verify(&chain, true, name)
                .unwrap_or_else(|e| panic!("{key_type} chain rejected for {name}: {e}"));
        }
        for name in ["example.com", "10.0.0.1"] {
            let err = certificate_error(verify(&chain, true, name));
            assert!(
                matches!(
                    err,
                    CertificateError::NotValidForName
                        | CertificateError::NotValidForNameContext { .. }
                ),
                "{key_type} for {name}: {err:?}"
            );
        }
        assert_eq!(
            certificate_error(verify(&chain, false, "bank32.com")),
            CertificateError::UnknownIssuer,
            "{key_type} without the intermediate"
        );

        // The key file is PKCS#8, of the right type, and belongs to the leaf certificate.
        let key = PrivateKeyDer::from_pem_slice(chain.leaf_key_pem.as_bytes()).unwrap();
        assert!(matches!(key, PrivateKeyDer::Pkcs8(_)), "{key_type}");
        let signing_key = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key).unwrap();
        let (algorithm, scheme, wrong_scheme) = match key_type {
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => (
                rustls::SignatureAlgorithm::RSA,
                SignatureScheme::RSA_PSS_SHA256,
                SignatureScheme::ECDSA_NISTP256_SHA256,
            ),
            KeyType::EcdsaP256 => (
                rustls::SignatureAlgorithm::ECDSA,
                SignatureScheme::ECDSA_NISTP256_SHA256,
                SignatureScheme::ECDSA_NISTP384_SHA384,
            ),
            KeyType::EcdsaP384 => (
                rustls::SignatureAlgorithm::ECDSA,
                SignatureScheme::ECDSA_NISTP384_SHA384,
                SignatureScheme::ECDSA_NISTP256_SHA256,
            ),
            KeyType::Ed25519 => (
                rustls::SignatureAlgorithm::ED25519,
                SignatureScheme::ED25519,
                SignatureScheme::ECDSA_NISTP256_SHA256,
            ),
        };
        assert_eq!(signing_key.algorithm(), algorithm, "{key_type}");
        assert!(
            signing_key.choose_scheme(&[wrong_scheme]).is_none(),
            "{key_type}"
        );
        let signer = signing_key.choose_scheme(&[scheme]).unwrap();
        let signature = signer.sign(b"tlsbench").unwrap();
        let rsa_bytes = match key_type {
            KeyType::Rsa2048 => Some(256),
            KeyType::Rsa3072 => Some(384),
            KeyType::Rsa4096 => Some(512),
            _ => None,
        };
        if let Some(bytes) = rsa_bytes {
            assert_eq!(signature.len(), bytes, "{key_type} modulus size");
        }
        let certified = rustls::sign::CertifiedKey::new(vec![der(&chain.leaf_pem)], signing_key);
        certified.keys_match().unwrap();
    }

    #[test]
    fn rsa2048_chain_verifies() {
        check_chain(KeyType::Rsa2048);
    }

    #[test]
    fn rsa3072_chain_verifies() {
        check_chain(KeyType::Rsa3072);
    }

    #[test]
    fn rsa4096_chain_verifies() {
        check_chain(KeyType::Rsa4096);
    }

    #[test]
    fn ecdsa_p256_chain_verifies() {
        check_chain(KeyType::EcdsaP256);
    }

    #[test]
    fn ecdsa_p384_chain_verifies() {
        check_chain(KeyType::EcdsaP384);
    }

    #[test]
    fn ed25519_chain_verifies() {
        check_chain(KeyType::Ed25519);
    }

    #[test]
    fn chains_outside_their_validity_are_rejected() {
        let day = Duration::from_secs(24 * 3600);
        let now = SystemTime::now();
        let window = |not_before, not_after| ChainOptions {
            not_before,
            not_after,
            ..ChainOptions::default()
        };

        let expired = generate(KeyType::EcdsaP256, &window(now - 10 * day, now - day)).unwrap();
        let err = certificate_error(verify(&expired, true, "bank32.com"));
        assert!(
            matches!(
                err,
                CertificateError::Expired | CertificateError::ExpiredContext { .. }
            ),
            "{err:?}"
        );

        let future = generate(KeyType::EcdsaP256, &window(now + day, now + 10 * day)).unwrap();
        let err = certificate_error(verify(&future, true, "bank32.com"));
        assert!(
            matches!(
                err,
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn unusable_validity_windows_are_refused() {
        let now = SystemTime::now();
        let backwards = ChainOptions {
            not_before: now,
            not_after: now - Duration::from_secs(1),
            ..ChainOptions::default()
        };
        assert!(matches!(
            generate(KeyType::Ed25519, &backwards),
            Err(CertError::InvalidValidity { .. })
        ));
        let too_late = ChainOptions {
            not_after: UNIX_EPOCH + Duration::from_secs(LATEST_CERT_TIME as u64 + 1),
            ..ChainOptions::default()
        };
        assert!(matches!(
            generate(KeyType::Ed25519, &too_late),
            Err(CertError::InvalidValidity { .. })
        ));
    }

    #[test]
    fn write_produces_the_three_files_with_their_modes() {
        let out = TempDir::new("write");
        let chain = generate(KeyType::EcdsaP256, &ChainOptions::default()).unwrap();
        let written = write(&out.0, &chain).unwrap();
        assert_eq!(written, paths(&out.0, KeyType::EcdsaP256));
        assert_eq!(written.dir, out.0.join("ecdsa-p256"));

        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&written.key), 0o600);
        assert_eq!(mode(&written.chain), 0o644);
        assert_eq!(mode(&written.ca), 0o644);

        // No temporary file is left behind.
        let mut names: Vec<_> = fs::read_dir(&written.dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["ca.pem", "chain.pem", "key.pem"]);

        assert_eq!(
            load_certs(&written.chain).unwrap(),
            [der(&chain.leaf_pem), der(&chain.intermediate_pem)]
        );
        assert_eq!(load_certs(&written.ca).unwrap(), [der(&chain.root_pem)]);

        let key = load_private_key(&written.key).unwrap();
        let expected = PrivateKeyDer::from_pem_slice(chain.leaf_key_pem.as_bytes()).unwrap();
        assert_eq!(key.secret_der(), expected.secret_der());

        fs::set_permissions(&written.key, Permissions::from_mode(0o644)).unwrap();
        let message = load_private_key(&written.key).unwrap_err().to_string();
        assert!(message.contains("chmod 600"), "{message}");
        assert!(message.contains("0644"), "{message}");
        assert!(
            message.contains(&written.key.display().to_string()),
            "{message}"
        );

        fs::set_permissions(&written.key, Permissions::from_mode(0o600)).unwrap();
        load_private_key(&written.key).unwrap();

        // Rewriting replaces every file and keeps the key private.
        let second = generate(KeyType::EcdsaP256, &ChainOptions::default()).unwrap();
        write(&out.0, &second).unwrap();
        assert_eq!(mode(&written.key), 0o600);
        assert_eq!(load_certs(&written.ca).unwrap(), [der(&second.root_pem)]);
        assert_eq!(
            fs::read_to_string(&written.key).unwrap(),
            second.leaf_key_pem
        );
    }

    #[test]
    fn ensure_generates_only_missing_sets() {
        let out = TempDir::new("ensure");
        let types = [KeyType::EcdsaP256, KeyType::Ed25519];
        let first = ensure(&out.0, &types).unwrap();
        assert_eq!(
            first,
            types.map(|kt| paths(&out.0, kt)).to_vec(),
            "paths in the order asked"
        );
        let contents =
            |p: &CertPaths| [&p.chain, &p.key, &p.ca].map(|path| fs::read(path).unwrap());
        let before: Vec<_> = first.iter().map(contents).collect();
        for p in &first {
            assert_eq!(load_certs(&p.chain).unwrap().len(), 2);
            load_private_key(&p.key).unwrap();
        }

        // Fresh keys are random, so unchanged bytes mean nothing was regenerated.
        let second = ensure(&out.0, &types).unwrap();
        assert_eq!(second, first);
        let after: Vec<_> = second.iter().map(contents).collect();
        assert_eq!(after, before);

        // An incomplete set is regenerated whole; the complete one is left alone.
        fs::remove_file(&first[1].ca).unwrap();
        let third = ensure(&out.0, &types).unwrap();
        assert_eq!(contents(&third[0]), before[0]);
        let regenerated = contents(&third[1]);
        assert_ne!(regenerated[0], before[1][0]);
        assert_ne!(regenerated[1], before[1][1]);
        assert!(!out.0.join(KeyType::Rsa2048.name()).exists());
    }

    #[test]
    fn load_certs_refuses_a_file_without_certificates() {
        let out = TempDir::new("nocert");
        let path = out.0.join("empty.pem");
        fs::write(&path, "no pem here\n").unwrap();
        let err = load_certs(&path).unwrap_err();
        assert!(matches!(err, CertError::NoCertificates { .. }), "{err:?}");
        assert!(err.to_string().contains("empty.pem"), "{err}");
    }

    #[test]
    fn key_type_names_round_trip() {
        for key_type in KeyType::ALL {
            assert_eq!(key_type.name().parse::<KeyType>().unwrap(), key_type);
            assert_eq!(key_type.to_string(), key_type.name());
            assert_eq!(
                format!("{key_type:>12}|"),
                format!("{:>12}|", key_type.name())
            );
        }
        let names: Vec<_> = KeyType::ALL.iter().map(|kt| kt.name()).collect();
        assert_eq!(KeyType::VALID_NAMES, names.join(", "));

        let err = "rsa1024".parse::<KeyType>().unwrap_err();
        assert!(
            matches!(&err, CertError::UnknownKeyType { given, .. } if given == "rsa1024"),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains("rsa1024"), "{message}");
        for name in names {
            assert!(message.contains(name), "{message} lacks {name}");
        }
    }
}
