//! Generating a chain: root CA → intermediate CA → leaf, one key type for all three, with
//! random serials and a validity window every verifier reads the same way; and a client
//! identity for mutual TLS: a client CA and a client certificate it signed.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose, SanType, SerialNumber,
};

use super::{CertError, KeyType, io_error};

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

// The range RFC 5280 encodes unambiguously: from 1950, where UTCTime starts, up to
// 9999-12-31T23:59:59Z, the largest GeneralizedTime and RFC 5280's "no expiry" value. Outside
// it rcgen's date arithmetic or encoding could panic or produce a time verifiers disagree on.
const EARLIEST_CERT_TIME: i64 = -631_152_000;
pub(super) const LATEST_CERT_TIME: i64 = crate::date::LAST_SECOND as i64;

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

/// The validity window of `opts` as checked seconds since the epoch.
fn validity(opts: &ChainOptions) -> Result<(i64, i64), CertError> {
    let not_before = cert_seconds(opts.not_before, "not_before is outside 1950..=9999")?;
    let not_after = cert_seconds(opts.not_after, "not_after is outside 1950..=9999")?;
    if not_after <= not_before {
        return Err(CertError::InvalidValidity {
            reason: "not_after is not later than not_before",
        });
    }
    Ok((not_before, not_after))
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
    let (not_before, not_after) = validity(opts)?;
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

/// PEM text of one generated client identity for mutual TLS.
#[derive(Clone)]
pub struct GeneratedClient {
    /// Key type of the CA and the client certificate.
    pub key_type: KeyType,
    /// The client CA certificate: what a server requiring client certificates trusts
    /// (`--client-ca`). A CA of its own, apart from the server chain's root, so trusting
    /// clients never means trusting whoever holds a server certificate.
    pub ca_pem: String,
    /// The client certificate (clientAuth extended key usage), signed by the client CA.
    pub cert_pem: String,
    /// The client certificate's private key as PKCS#8 (`PRIVATE KEY`).
    pub key_pem: String,
}

// Hand-written so that debug output and panics in tests never print the private key.
impl fmt::Debug for GeneratedClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedClient")
            .field("key_type", &self.key_type)
            .field("ca_pem", &self.ca_pem)
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// Generates a client CA and a client certificate signed by it, both with keys of
/// `key_type`, valid over `opts`'s window (its names are for server leaves and are not used).
/// The CA signs the client certificate directly: a client sends one certificate, and the
/// handshake cost measured is that of verifying one signature chain link. The CA key is
/// dropped here, as in [`generate`].
pub fn generate_client(
    key_type: KeyType,
    opts: &ChainOptions,
) -> Result<GeneratedClient, CertError> {
    let (not_before, not_after) = validity(opts)?;
    let failed = |what: &'static str| {
        move |source| CertError::Generate {
            key_type,
            what,
            source,
        }
    };
    let mut ca_params = CertificateParams::default();
    // The key type in the name: a server trusting every generated client CA names each one
    // apart in its CertificateRequest, and a client picks by name.
    ca_params.distinguished_name =
        distinguished_name("Model Client CA", &format!("Model Client CA {key_type}"));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.serial_number = Some(random_serial()?);
    set_validity(&mut ca_params, not_before, not_after);
    let ca_key = key_type.generate_key().map_err(failed("client CA key"))?;
    let ca =
        CertifiedIssuer::self_signed(ca_params, ca_key).map_err(failed("client CA certificate"))?;

    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name("Bank32 Inc.", "tlsbench client");
    params.is_ca = IsCa::ExplicitNoCa;
    // clientAuth only: a server verifying client certificates (webpki) refuses one without it.
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(random_serial()?);
    set_validity(&mut params, not_before, not_after);
    let key = key_type.generate_key().map_err(failed("client key"))?;
    let cert = params
        .signed_by(&key, &ca)
        .map_err(failed("client certificate"))?;
    Ok(GeneratedClient {
        key_type,
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}
