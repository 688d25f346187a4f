//! Server certificate verification for the load generator: trusted roots, a verifier that
//! caches chain-and-name verdicts (handshake signatures are still checked every time) and the
//! `--insecure` verifier. Human messages for verification failures and certificates are in
//! `describe`.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::iter;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{VerifierBuilderError, WebPkiServerVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

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

mod describe;

pub use describe::{CertSummary, describe_cert, describe_error};

/// Shared by the tests of this module and of `tlsconf` and `conn`: generated chains, an
/// in-process server on loopback port 0 and a blocking client.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) mod testutil;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::{Duration, SystemTime};

    use common::certs::{self, ChainOptions, KeyType};
    use rustls::CertificateError;
    use server::TlsOptions;

    use super::testutil::{
        ca_file, caching, chain, client, handshake, name, pem_certs, roots, start, temp_dir, unix,
    };
    use super::*;

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
