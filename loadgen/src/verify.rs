//! Server certificate verification for the load generator: trusted roots, a verifier that
//! caches chain-and-name verdicts (handshake signatures are still checked every time), the
//! `--insecure` verifier, and human messages for verification failures and certificates.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::iter;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{VerifierBuilderError, WebPkiServerVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use x509_parser::extensions::GeneralName;

/// Where trusted roots come from.
#[derive(Clone, Debug)]
pub enum Trust {
    /// A PEM file with one or more CA certificates (`--cacert`).
    CaFile(PathBuf),
    /// The operating system's trust store.
    Platform,
}

impl fmt::Display for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trust::CaFile(path) => write!(f, "CA file {}", path.display()),
            Trust::Platform => f.write_str("the platform's roots"),
        }
    }
}

/// Why trusted roots or a verifier could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The CA file could not be read, is not PEM, or holds no certificate.
    #[error("cannot use CA file {}: {source}", path.display())]
    CaFile {
        /// The file given.
        path: PathBuf,
        /// What went wrong reading it.
        #[source]
        source: common::certs::CertError,
    },
    /// A certificate in the CA file is not usable as a trust anchor.
    #[error("CA file {} holds a certificate that cannot be a trust anchor: {source}", path.display())]
    BadAnchor {
        /// The file given.
        path: PathBuf,
        /// Why webpki refused it.
        #[source]
        source: rustls::Error,
    },
    /// The platform's trust store yielded no usable root.
    #[error("no trusted roots found on this platform{detail}; pass a CA file (--cacert)")]
    NoPlatformRoots {
        /// Errors met while loading, if any (already formatted, prefixed with ": ").
        detail: String,
    },
    /// rustls refused to build the verifier (e.g. an empty root store).
    #[error("cannot build the certificate verifier: {0}")]
    Verifier(#[from] VerifierBuilderError),
}

/// Loads the trusted roots once; the result is shared read-only by every worker.
pub fn root_store(trust: &Trust) -> Result<Arc<RootCertStore>, VerifyError> {
    let mut store = RootCertStore::empty();
    match trust {
        Trust::CaFile(path) => {
            let certs = common::certs::load_certs(path).map_err(|source| VerifyError::CaFile {
                path: path.clone(),
                source,
            })?;
            // Strict: a CA file the user named should contain nothing but usable anchors, and
            // silently skipping one would turn a typo into an "unknown issuer" much later.
            for cert in certs {
                store.add(cert).map_err(|source| VerifyError::BadAnchor {
                    path: path.clone(),
                    source,
                })?;
            }
        }
        Trust::Platform => {
            let found = rustls_native_certs::load_native_certs();
            // Platform stores routinely hold a few certificates webpki cannot use; skipping
            // them is what every browser does too.
            let (added, _ignored) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                let detail = if found.errors.is_empty() {
                    String::new()
                } else {
                    let errors: Vec<String> =
                        found.errors.iter().map(ToString::to_string).collect();
                    format!(": {}", errors.join("; "))
                };
                return Err(VerifyError::NoPlatformRoots { detail });
            }
        }
    }
    Ok(Arc::new(store))
}

/// Past this many cached verdicts the cache is emptied: a run talks to a handful of servers, so
/// reaching it means chains keep changing and the cache is not helping anyway.
const MAX_CACHED: usize = 1024;

/// One cached verdict: this exact chain is valid for this name until `valid_until`.
struct Entry {
    end_entity: Vec<u8>,
    intermediates: Vec<Vec<u8>>,
    name: ServerName<'static>,
    /// The latest notBefore of the certificates; before it the verdict does not hold (a
    /// clock stepped back must not make a hit).
    valid_from: u64,
    /// The earliest notAfter of the certificates; the verdict is void from this second on.
    valid_until: u64,
}

impl Entry {
    fn matches(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &ServerName<'_>,
    ) -> bool {
        self.end_entity == end_entity.as_ref()
            && self.intermediates.len() == intermediates.len()
            && self
                .intermediates
                .iter()
                .zip(intermediates)
                .all(|(cached, given)| cached.as_slice() == given.as_ref())
            && self.name == *name
    }
}

/// Chain+name verdicts cached per (exact chain DER bytes, server name); signatures always
/// checked.
///
/// Building and checking the chain is most of a client's cost per full handshake, and a load
/// run sees the same chain thousands of times, so it is done once per chain and name. The
/// handshake signature is never cached: it proves the peer holds the leaf's key *now*, and
/// skipping it would let anyone replay the certificate. Failures are never cached, so a
/// server that fixes its chain is believed at once and every failure reaches the user.
pub struct CachingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    /// Keyed by a hash of chain and name; the entry holds the exact bytes, compared on lookup,
    /// so a collision can only cost a miss, never accept a chain that was not verified.
    cache: Mutex<HashMap<u64, Entry>>,
    /// Keyed per verifier, so no peer can choose chains that collide on purpose.
    hasher: RandomState,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl CachingVerifier {
    /// A verifier trusting `roots`, checking signatures with `provider`'s algorithms.
    pub fn new(
        roots: Arc<RootCertStore>,
        provider: Arc<CryptoProvider>,
    ) -> Result<Arc<Self>, VerifyError> {
        let inner = WebPkiServerVerifier::builder_with_provider(roots, provider).build()?;
        Ok(Arc::new(Self {
            inner,
            cache: Mutex::new(HashMap::new()),
            hasher: RandomState::new(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }))
    }

    /// Chains accepted from the cache, without building a path.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Chains handed to the full verifier (successes and failures alike).
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    fn key(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &ServerName<'_>,
    ) -> u64 {
        let ints: Vec<&[u8]> = intermediates.iter().map(AsRef::as_ref).collect();
        self.hasher
            .hash_one((end_entity.as_ref(), ints.as_slice(), name))
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Entry>> {
        // A panic elsewhere while holding the lock cannot leave a half-written entry (inserts
        // are single calls), so the map is still sound.
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl fmt::Debug for CachingVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The cache itself is certificate bytes: noise in any debug output.
        f.debug_struct("CachingVerifier")
            .field("inner", &self.inner)
            .field("cached", &self.lock().len())
            .field("hits", &self.hits())
            .field("misses", &self.misses())
            .finish()
    }
}

/// Seconds since the epoch, as x509 and rustls times meet here.
fn secs(t: UnixTime) -> i64 {
    i64::try_from(t.as_secs()).unwrap_or(i64::MAX)
}

/// The window in which a verdict made at `now` may be reused, as (latest notBefore, earliest
/// notAfter) of the chain. `None` when a certificate does not parse or `now` is outside the
/// window: such a chain is simply not cached.
fn cacheable_window(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: UnixTime,
) -> Option<(u64, u64)> {
    let mut until = i64::MAX;
    let mut from = i64::MIN;
    for der in iter::once(end_entity).chain(intermediates) {
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
        let validity = cert.validity();
        until = until.min(validity.not_after.timestamp());
        from = from.max(validity.not_before.timestamp());
    }
    let now = secs(now);
    if now >= from && now < until {
        Some((u64::try_from(from).ok()?, u64::try_from(until).ok()?))
    } else {
        None
    }
}

impl ServerCertVerifier for CachingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let key = self.key(end_entity, intermediates, server_name);
        let cached = self.lock().get(&key).is_some_and(|entry| {
            entry.matches(end_entity, intermediates, server_name)
                && (entry.valid_from..entry.valid_until).contains(&now.as_secs())
        });
        if cached {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(ServerCertVerified::assertion());
        }
        // Verified without the lock held: the cache is per worker, but nothing is gained by
        // serialising the expensive part if it ever is shared.
        self.misses.fetch_add(1, Ordering::Relaxed);
        let verdict = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        if let Some((valid_from, valid_until)) = cacheable_window(end_entity, intermediates, now) {
            let mut cache = self.lock();
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            cache.insert(
                key,
                Entry {
                    end_entity: end_entity.as_ref().to_vec(),
                    intermediates: intermediates.iter().map(|c| c.as_ref().to_vec()).collect(),
                    name: server_name.to_owned(),
                    valid_from,
                    valid_until,
                },
            );
        }
        Ok(verdict)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        self.inner.root_hint_subjects()
    }
}

/// Accepts any chain and any name (`--insecure`), but still checks the handshake signature
/// against the presented leaf, so the peer must at least own the key it presents.
#[derive(Debug)]
pub struct InsecureVerifier {
    algorithms: WebPkiSupportedAlgorithms,
}

impl InsecureVerifier {
    /// A verifier checking handshake signatures with `provider`'s algorithms.
    pub fn new(provider: &CryptoProvider) -> Arc<Self> {
        Arc::new(Self {
            algorithms: provider.signature_verification_algorithms,
        })
    }
}

impl ServerCertVerifier for InsecureVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A one-line, human message for a verification failure that names the expected name and,
/// for a name mismatch, the names the certificate holds; for an unknown issuer, says the
/// chain is not trusted by the given roots and that the server may be missing its
/// intermediate; for expiry, the notAfter and now; not yet valid, the notBefore; and
/// otherwise the rustls error text.
pub fn describe_error(err: &rustls::Error, expected: &ServerName<'_>, trust: &Trust) -> String {
    let name = expected.to_str();
    let rustls::Error::InvalidCertificate(cert_err) = err else {
        return format!("TLS handshake with {name} failed: {err}");
    };
    let untrusted =
        |why: &str| format!("certificate chain of {name} is not trusted by {trust} ({why})");
    #[allow(deprecated)] // `UnsupportedSignatureAlgorithm` may still come from other verifiers.
    match cert_err {
        CertificateError::NotValidForNameContext { presented, .. } if presented.is_empty() => {
            format!("certificate is not valid for the name {name}: it holds no DNS or IP names")
        }
        CertificateError::NotValidForNameContext { presented, .. } => {
            let held: Vec<String> = presented.iter().map(|p| presented_name(p)).collect();
            format!(
                "certificate is not valid for the name {name}: it holds {}",
                held.join(", ")
            )
        }
        CertificateError::NotValidForName => {
            format!("certificate is not valid for the name {name}")
        }
        // webpki cannot tell an issuer it was never shown from one nobody trusts, and a
        // server that sends its leaf without the intermediate (browsers hide that mistake by
        // caching or fetching intermediates) fails exactly like a chain from an unknown CA:
        // name both.
        CertificateError::UnknownIssuer => untrusted(
            "unknown issuer: neither the certificates presented nor these roots hold its \
             issuer; the server may be missing its intermediate certificate",
        ),
        // Path building follows issuer *names*; a trusted CA of the same name but another key
        // (e.g. a CA file from an earlier `certs generate`) ends in these rather than in
        // UnknownIssuer. rustls reports a bad handshake signature the same way, but with a
        // chain that verified that is an attack or a broken server: untrusted either way.
        CertificateError::BadSignature => untrusted("a signature does not verify"),
        CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => untrusted(
            "a signature does not match its issuer's key type: a CA of the same name with another key?",
        ),
        CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithm => {
            untrusted("unsupported signature algorithm")
        }
        CertificateError::ExpiredContext { time, not_after } => format!(
            "certificate chain of {name} has expired: notAfter {}, now {}",
            format_time(secs(*not_after)),
            format_time(secs(*time))
        ),
        CertificateError::Expired => format!("certificate chain of {name} has expired"),
        CertificateError::NotValidYetContext { time, not_before } => format!(
            "certificate chain of {name} is not valid yet: notBefore {}, now {}",
            format_time(secs(*not_before)),
            format_time(secs(*time))
        ),
        CertificateError::NotValidYet => {
            format!("certificate chain of {name} is not valid yet")
        }
        _ => format!("certificate chain of {name} was rejected: {err}"),
    }
}

/// A name from webpki's list of presented names, which are debug renderings
/// (`DnsName("bank32.com")`, `IpAddress(0::1)`), as a user writes it (`bank32.com`, `::1`).
/// Anything else is passed through as webpki wrote it.
fn presented_name(presented: &str) -> String {
    if let Some(dns) = presented
        .strip_prefix("DnsName(\"")
        .and_then(|rest| rest.strip_suffix("\")"))
    {
        return dns.to_owned();
    }
    if let Some(ip) = presented
        .strip_prefix("IpAddress(")
        .and_then(|rest| rest.strip_suffix(')'))
    {
        return ip
            .parse::<IpAddr>()
            .map_or_else(|_| ip.to_owned(), |ip| ip.to_string());
    }
    presented.to_owned()
}

/// Subject, issuer, validity and names of one certificate, as the one-shot client (`-n 1 -v`)
/// prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertSummary {
    /// Subject name, attributes in certificate order ("O=Bank32 Inc., CN=bank32.com").
    pub subject: String,
    /// Issuer name, in the same form.
    pub issuer: String,
    /// Start of validity ("2026-11-28 06:46:52 UTC").
    pub not_before: String,
    /// End of validity, in the same form.
    pub not_after: String,
    /// DNS and IP subject alternative names, in certificate order.
    pub names: Vec<String>,
}

/// Summarises one certificate; `None` if it does not parse as X.509.
pub fn describe_cert(der: &CertificateDer<'_>) -> Option<CertSummary> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let validity = cert.validity();
    // A malformed SAN extension only costs the names, not the rest of the summary.
    let names = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(dns) => Some((*dns).to_owned()),
                GeneralName::IPAddress(bytes) => ip_from_bytes(bytes).map(|ip| ip.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Some(CertSummary {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_before: format_time(validity.not_before.timestamp()),
        not_after: format_time(validity.not_after.timestamp()),
        names,
    })
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        Some(IpAddr::from(v4))
    } else if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
        Some(IpAddr::from(v6))
    } else {
        None
    }
}

/// "2026-11-28 06:46:52 UTC" for seconds since the Unix epoch (proleptic Gregorian).
fn format_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`): a
/// few lines instead of a date-time dependency for two fields of a message.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Shared by the tests of this module and of `tlsconf`: generated chains, an in-process
/// server on loopback port 0 and a blocking client.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) mod testutil {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::Duration;

    use common::certs::{self, ChainOptions, GeneratedChain, KeyType};
    use rustls::pki_types::pem::PemObject;
    use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use server::{Server, Settings, TlsOptions};

    pub(crate) type Tls = StreamOwned<ClientConnection, TcpStream>;

    pub(crate) fn chain(kt: KeyType) -> GeneratedChain {
        certs::generate(kt, &ChainOptions::default()).unwrap()
    }

    pub(crate) fn pem_certs(pem: &str) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    }

    /// A one-worker server on 127.0.0.1:0 serving `chain`.
    pub(crate) fn start(chain: &GeneratedChain, opts: &TlsOptions) -> (Server, SocketAddr) {
        let key = PrivateKeyDer::from_pem_slice(chain.leaf_key_pem.as_bytes()).unwrap();
        let cfg = opts
            .server_config(pem_certs(&chain.chain_pem()), key)
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let server = Server::start(vec![listener], cfg, Settings::default()).unwrap();
        let addr = server.local_addrs()[0];
        (server, addr)
    }

    /// A fresh directory under the system temp dir, unique per call.
    pub(crate) fn temp_dir(tag: &str) -> PathBuf {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("tlsbench-lg-tls-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Writes the roots of `chains` into one PEM file and returns its path.
    pub(crate) fn ca_file(chains: &[&GeneratedChain]) -> PathBuf {
        let path = temp_dir("ca").join("ca.pem");
        let pem: String = chains.iter().map(|c| c.root_pem.clone()).collect();
        std::fs::write(&path, pem).unwrap();
        path
    }

    pub(crate) fn roots(chains: &[&GeneratedChain]) -> Arc<RootCertStore> {
        let mut store = RootCertStore::empty();
        for c in chains {
            for cert in pem_certs(&c.root_pem) {
                store.add(cert).unwrap();
            }
        }
        Arc::new(store)
    }

    /// Connects to `addr` as `name` and completes the handshake, or returns the rustls error
    /// that ended it.
    pub(crate) fn handshake(
        addr: SocketAddr,
        cfg: &Arc<ClientConfig>,
        name: &str,
    ) -> Result<Tls, rustls::Error> {
        let name = ServerName::try_from(name.to_owned()).unwrap();
        let conn = ClientConnection::new(Arc::clone(cfg), name).unwrap();
        let sock = TcpStream::connect(addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut tls = StreamOwned::new(conn, sock);
        while tls.conn.is_handshaking() {
            if let Err(e) = tls.conn.complete_io(&mut tls.sock) {
                let inner = e
                    .get_ref()
                    .and_then(|i| i.downcast_ref::<rustls::Error>())
                    .unwrap_or_else(|| panic!("handshake failed without a TLS error: {e}"));
                return Err(inner.clone());
            }
        }
        Ok(tls)
    }

    /// One GET / with `Connection: close`, read to the end, so that session tickets the
    /// server sends after the handshake reach the client's store.
    pub(crate) fn get_root(tls: &mut Tls) {
        tls.write_all(b"GET / HTTP/1.1\r\nHost: bank32.com\r\nConnection: close\r\n\r\n")
            .unwrap();
        tls.flush().unwrap();
        let mut out = Vec::new();
        // The server may close without close_notify after a `Connection: close` response;
        // what matters here is that the response (and the tickets before it) arrived.
        let _ = tls.read_to_end(&mut out);
        assert!(
            out.starts_with(b"HTTP/1.1 200"),
            "{:?}",
            String::from_utf8_lossy(&out)
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::{Duration, SystemTime};

    use common::certs::{self, ChainOptions, KeyType};
    use rustls::ClientConfig;
    use rustls::client::Resumption;
    use server::TlsOptions;

    use super::testutil::{ca_file, chain, handshake, pem_certs, roots, start, temp_dir};
    use super::*;

    fn client(verifier: Arc<dyn ServerCertVerifier>) -> Arc<ClientConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut cfg = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        // Every connection must present and verify a certificate.
        cfg.resumption = Resumption::disabled();
        Arc::new(cfg)
    }

    fn caching(roots: Arc<RootCertStore>) -> Arc<CachingVerifier> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        CachingVerifier::new(roots, provider).unwrap()
    }

    fn unix(secs: u64) -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(secs))
    }

    fn name(s: &str) -> ServerName<'static> {
        ServerName::try_from(s.to_owned()).unwrap()
    }

    #[test]
    fn verdicts_are_cached_per_chain_and_name_and_failures_never() {
        let day = Duration::from_secs(24 * 3600);
        let now = SystemTime::now();
        let a = chain(KeyType::EcdsaP256);
        let b = chain(KeyType::EcdsaP256);
        let expired = certs::generate(
            KeyType::EcdsaP256,
            &ChainOptions {
                not_before: now - 10 * day,
                not_after: now - day,
                ..ChainOptions::default()
            },
        )
        .unwrap();
        let path = ca_file(&[&a, &b, &expired]);
        let trust = Trust::CaFile(path.clone());
        let store = root_store(&trust).unwrap();
        assert_eq!(store.len(), 3);
        let verifier = caching(store);
        let cfg = client(verifier.clone());

        let (server_a, addr_a) = start(&a, &TlsOptions::default());
        handshake(addr_a, &cfg, "bank32.com").unwrap();
        handshake(addr_a, &cfg, "bank32.com").unwrap();
        assert_eq!((verifier.misses(), verifier.hits()), (1, 1));

        let (server_b, addr_b) = start(&b, &TlsOptions::default());
        handshake(addr_b, &cfg, "bank32.com").unwrap();
        assert_eq!((verifier.misses(), verifier.hits()), (2, 1));

        handshake(addr_a, &cfg, "localhost").unwrap();
        assert_eq!((verifier.misses(), verifier.hits()), (3, 1));
        handshake(addr_a, &cfg, "localhost").unwrap();
        assert_eq!((verifier.misses(), verifier.hits()), (3, 2));

        let (server_x, addr_x) = start(&expired, &TlsOptions::default());
        for attempt in 1..=2 {
            let err = handshake(addr_x, &cfg, "bank32.com").unwrap_err();
            let text = describe_error(&err, &name("bank32.com"), &trust);
            assert!(text.contains("expired"), "{text}");
            assert!(text.contains("bank32.com"), "{text}");
            assert!(text.contains("notAfter"), "{text}");
            assert_eq!((verifier.misses(), verifier.hits()), (3 + attempt, 2));
        }
        for s in [server_a, server_b, server_x] {
            s.stop().unwrap();
        }
    }

    #[test]
    fn a_cached_verdict_ends_at_the_earliest_not_after() {
        let a = chain(KeyType::EcdsaP256);
        let verifier = caching(roots(&[&a]));
        let certs = pem_certs(&a.chain_pem());
        let (ee, ints) = (&certs[0], &certs[1..]);
        let (not_before, not_after) = cacheable_window(ee, ints, UnixTime::now()).unwrap();
        let bank = name("bank32.com");

        let at = |secs: u64| verifier.verify_server_cert(ee, ints, &bank, &[], unix(secs));
        at(not_after - 10).unwrap();
        at(not_after - 1).unwrap();
        assert_eq!((verifier.misses(), verifier.hits()), (1, 1));
        // Before notBefore (a clock stepped back) the cached verdict does not apply, and the
        // full check rejects the chain as not yet valid.
        let err = at(not_before - 1).unwrap_err();
        assert!(
            matches!(
                err,
                rustls::Error::InvalidCertificate(CertificateError::NotValidYetContext { .. })
            ),
            "{err:?}"
        );
        assert_eq!((verifier.misses(), verifier.hits()), (2, 1));
        at(not_after - 1).unwrap();
        assert_eq!((verifier.misses(), verifier.hits()), (2, 2));
        // From notAfter on the verdict is void; the full check then decides (and rejects
        // one second later).
        at(not_after).unwrap();
        assert_eq!((verifier.misses(), verifier.hits()), (3, 2));
        let err = at(not_after + 1).unwrap_err();
        assert!(
            matches!(
                err,
                rustls::Error::InvalidCertificate(CertificateError::ExpiredContext { .. })
            ),
            "{err:?}"
        );
        assert_eq!((verifier.misses(), verifier.hits()), (4, 2));

        // A chain whose intermediates differ is not the cached chain.
        verifier
            .verify_server_cert(ee, &[], &bank, &[], unix(not_after - 10))
            .unwrap_err();
        assert_eq!((verifier.misses(), verifier.hits()), (5, 2));
    }

    #[test]
    fn wrong_name_is_rejected_and_described_with_the_names_held() {
        let a = chain(KeyType::EcdsaP256);
        let trust = Trust::CaFile(ca_file(&[&a]));
        let verifier = caching(root_store(&trust).unwrap());
        let cfg = client(verifier.clone());
        let (server, addr) = start(&a, &TlsOptions::default());
        let err = handshake(addr, &cfg, "evil.example").unwrap_err();
        let text = describe_error(&err, &name("evil.example"), &trust);
        assert_eq!(
            text,
            "certificate is not valid for the name evil.example: it holds bank32.com, \
             localhost, 127.0.0.1, ::1"
        );
        assert_eq!(verifier.hits(), 0);
        server.stop().unwrap();
    }

    #[test]
    fn untrusted_chain_is_rejected_and_names_the_trust_source() {
        let a = chain(KeyType::EcdsaP256);
        let (server, addr) = start(&a, &TlsOptions::default());
        let bank = name("bank32.com");
        // Generated CAs all share one name, so a CA file from another generation names the
        // right issuer with the wrong key: path building fails on the signature, not on the
        // issuer name.
        for (other, why) in [
            (
                chain(KeyType::Ed25519),
                "a signature does not match its issuer's key type: a CA of the same name with \
                 another key?",
            ),
            (chain(KeyType::EcdsaP256), "a signature does not verify"),
        ] {
            let path = ca_file(&[&other]);
            let trust = Trust::CaFile(path.clone());
            let verifier = caching(root_store(&trust).unwrap());
            let err = handshake(addr, &client(verifier.clone()), "bank32.com").unwrap_err();
            let text = describe_error(&err, &bank, &trust);
            assert_eq!(
                text,
                format!(
                    "certificate chain of bank32.com is not trusted by CA file {} ({why})",
                    path.display()
                )
            );
            assert!(text.contains("not trusted"), "{text}");
            assert_eq!((verifier.misses(), verifier.hits()), (1, 0));
        }

        // Without the intermediate, no issuer of the leaf is known at all.
        let trust = Trust::CaFile(ca_file(&[&a]));
        let verifier = caching(root_store(&trust).unwrap());
        let leaf = &pem_certs(&a.leaf_pem)[0];
        let err = verifier
            .verify_server_cert(leaf, &[], &bank, &[], UnixTime::now())
            .unwrap_err();
        assert_eq!(
            describe_error(&err, &bank, &Trust::Platform),
            "certificate chain of bank32.com is not trusted by the platform's roots \
             (unknown issuer: neither the certificates presented nor these roots hold its \
             issuer; the server may be missing its intermediate certificate)"
        );
        server.stop().unwrap();
    }

    #[test]
    fn insecure_accepts_any_name_and_any_issuer() {
        let a = chain(KeyType::EcdsaP256);
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let cfg = client(InsecureVerifier::new(&provider));
        let (server, addr) = start(&a, &TlsOptions::default());
        handshake(addr, &cfg, "evil.example").unwrap();
        handshake(addr, &cfg, "bank32.com").unwrap();
        server.stop().unwrap();
    }

    #[test]
    fn not_yet_valid_and_other_errors_are_described() {
        let b = name("bank32.com");
        let trust = Trust::Platform;
        let err = rustls::Error::InvalidCertificate(CertificateError::NotValidYetContext {
            time: unix(0),
            not_before: unix(1_795_848_412),
        });
        assert_eq!(
            describe_error(&err, &b, &trust),
            "certificate chain of bank32.com is not valid yet: notBefore 2026-11-28 \
             06:46:52 UTC, now 1970-01-01 00:00:00 UTC"
        );
        let err = rustls::Error::InvalidCertificate(CertificateError::Revoked);
        let text = describe_error(&err, &b, &trust);
        assert!(
            text.starts_with("certificate chain of bank32.com was rejected: "),
            "{text}"
        );
        assert_eq!(presented_name("DnsName(\"a.example\")"), "a.example");
        assert_eq!(presented_name("IpAddress(0::1)"), "::1");
        assert_eq!(presented_name("IpAddress(10.0.0.1)"), "10.0.0.1");
        assert_eq!(presented_name("plain.example"), "plain.example");
        let err = rustls::Error::General("boom".into());
        assert_eq!(
            describe_error(&err, &b, &trust),
            "TLS handshake with bank32.com failed: unexpected error: boom"
        );
    }

    #[test]
    fn dates_format_as_utc() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_time(1_795_848_412), "2026-11-28 06:46:52 UTC");
        assert_eq!(format_time(-1), "1969-12-31 23:59:59 UTC");
        assert_eq!(format_time(253_402_300_799), "9999-12-31 23:59:59 UTC");
    }

    #[test]
    fn describe_cert_summarises_the_leaf() {
        let a = chain(KeyType::EcdsaP256);
        let leaf = &pem_certs(&a.leaf_pem)[0];
        let summary = describe_cert(leaf).unwrap();
        assert!(summary.subject.contains("CN=bank32.com"), "{summary:?}");
        assert_eq!(summary.subject, "O=Bank32 Inc., CN=bank32.com");
        assert!(
            summary.issuer.contains("Model CA Intermediate"),
            "{summary:?}"
        );
        assert_eq!(
            summary.names,
            ["bank32.com", "localhost", "127.0.0.1", "::1"]
        );
        assert!(summary.not_before.ends_with(" UTC"), "{summary:?}");
        assert!(summary.not_before < summary.not_after, "{summary:?}");
        assert!(describe_cert(&CertificateDer::from(vec![1, 2, 3])).is_none());
    }

    #[test]
    fn ca_file_errors_name_the_path() {
        let dir = temp_dir("bad-ca");
        let missing = dir.join("missing.pem");
        let err = root_store(&Trust::CaFile(missing.clone())).unwrap_err();
        assert!(
            err.to_string().contains(&missing.display().to_string()),
            "{err}"
        );
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "nothing\n").unwrap();
        let err = root_store(&Trust::CaFile(empty.clone())).unwrap_err();
        assert!(
            err.to_string().contains(&empty.display().to_string()),
            "{err}"
        );
    }
}
