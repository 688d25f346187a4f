//! The TLS side of the load generator: [`ClientTlsOptions`] by name turned into one rustls
//! `ClientConfig` per worker thread, with that worker's own verifier cache and session store
//! ([`OfferingStore`], which lets the caller decide per connection whether to resume).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::cert_compression::CertCompression;
use common::tls::{self, Provider, TlsError, Version};
use rustls::client::{
    ClientSessionMemoryCache, ClientSessionStore, Resumption, Tls12ClientSessionValue,
    Tls12Resumption, Tls13ClientSessionValue,
};
use rustls::crypto::SupportedKxGroup;
use rustls::{ClientConfig, NamedGroup, RootCertStore, SupportedCipherSuite};
use rustls_pki_types::ServerName;

use crate::client_cert::{ClientIdentity, NotingResolver};
use crate::verify::{CachingVerifier, InsecureVerifier, Trust, VerifyError};

/// How the generator resumes sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ResumeMode {
    /// Never resume: every connection is a full handshake.
    Off,
    /// TLS 1.3 tickets; under TLS 1.2, RFC 5077 tickets or session IDs.
    Ticket,
    /// TLS 1.2 session IDs only (the server's session cache); needs `--tls 1.2`.
    SessionId,
}

/// The TLS side of a load run, by name.
#[derive(Clone, Debug)]
pub struct ClientTlsOptions {
    /// The crypto provider doing the handshakes, records and certificate checks.
    pub provider: Provider,
    /// Protocol versions offered.
    pub versions: Vec<Version>,
    /// Cipher suites in preference order; empty = the provider's defaults.
    pub suites: Vec<SupportedCipherSuite>,
    /// Key-exchange groups in preference order; empty = the provider's defaults.
    pub groups: Vec<&'static dyn SupportedKxGroup>,
    /// ALPN protocols offered, in preference order.
    pub alpn: Vec<Vec<u8>>,
    /// Where to append the NSS key log, if anywhere.
    pub keylog: Option<PathBuf>,
    /// How sessions are resumed.
    pub resume: ResumeMode,
    /// Where trusted roots come from (also named in verification errors).
    pub trust: Trust,
    /// Accept any certificate chain and name (handshake signatures are still checked).
    pub insecure: bool,
    /// The certificate sent when a server asks for one (`--cert`/`--key`); none: an empty
    /// Certificate message, which a server requiring client auth refuses.
    pub client_cert: Option<ClientIdentity>,
    /// Certificate compression (RFC 8879) offered, in order of preference; off by default.
    pub cert_compression: CertCompression,
    /// Send the request as TLS 1.3 early data (0-RTT) when resuming a ticket that allows it.
    pub early_data: bool,
}

/// Why a worker's TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfError {
    /// Versions, suites or groups refused (e.g. TLS 1.2 only with TLS 1.3 suites only).
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Session-ID resumption asked for while TLS 1.3 is offered.
    #[error("session-id resumption exists only in TLS 1.2: use --tls 1.2")]
    SessionIdNeedsTls12,
    /// Verification asked for but no root store given (a caller bug or a missing `--cacert`).
    #[error(
        "verifying servers needs trusted roots (--cacert or the platform's); or pass --insecure"
    )]
    NoRoots,
    /// The verifier could not be built from the roots.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The key log file could not be opened.
    #[error("cannot open key log {}: {source}", path.display())]
    KeyLog {
        /// The file given.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// A worker's session store: always keeps what servers hand out, but offers a saved session
/// only when told to, so `--resume-ratio` can choose per connection; it also reports whether
/// the last new connection actually found a session to offer.
///
/// Offering is on until [`OfferingStore::set_offer`] says otherwise, so a worker that never
/// chooses resumes whenever it can, as rustls's own store would.
pub struct OfferingStore {
    inner: ClientSessionMemoryCache,
    /// TLS 1.3 tickets, kept here rather than in `inner`: rustls's cache holds at most 8 per
    /// server, so with more concurrent connections than that, most would find no ticket and
    /// do full handshakes although the server resumes fine. Single-use, newest first.
    tickets: Mutex<HashMap<ServerName<'static>, VecDeque<Tls13ClientSessionValue>>>,
    offer: AtomicBool,
    offered: AtomicBool,
}

/// TLS 1.3 tickets kept per server: enough for every connection of a large run to hold one
/// (servers send one or more per handshake), bounded so memory does not grow with the run.
pub const TLS13_TICKETS_PER_SERVER: usize = 4096;

impl OfferingStore {
    /// A store keeping up to `capacity` servers' sessions (at least one).
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            inner: ClientSessionMemoryCache::new(capacity.max(1)),
            tickets: Mutex::new(HashMap::new()),
            offer: AtomicBool::new(true),
            offered: AtomicBool::new(false),
        })
    }

    /// Whether the next `ClientConnection::new` may offer a saved session; call it right
    /// before creating the connection, on the same thread. Also forgets the previous
    /// connection's [`OfferingStore::take_offered`] answer.
    pub fn set_offer(&self, offer: bool) {
        // Relaxed: the store is per worker, and set/new/take happen in order on one thread.
        self.offer.store(offer, Ordering::Relaxed);
        self.offered.store(false, Ordering::Relaxed);
    }

    /// True if the last `ClientConnection::new` got a session (TLS 1.3 ticket or TLS 1.2
    /// session) from this store; resets to false.
    ///
    /// Offering is not resuming: the server may still refuse it and run a full handshake,
    /// which is exactly what a run wants to count separately.
    pub fn take_offered(&self) -> bool {
        self.offered.swap(false, Ordering::Relaxed)
    }

    fn offering(&self) -> bool {
        self.offer.load(Ordering::Relaxed)
    }

    fn note<T>(&self, found: Option<T>) -> Option<T> {
        if found.is_some() {
            self.offered.store(true, Ordering::Relaxed);
        }
        found
    }
}

impl fmt::Debug for OfferingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OfferingStore")
            .field("offer", &self.offering())
            .field("offered", &self.offered.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl ClientSessionStore for OfferingStore {
    // No group hint is kept: the first key share is always the first of `--groups`, with
    // resumption on or off (rustls's disabled resumption keeps none either), as browsers do.
    // A hint would turn every HelloRetryRequest after the first into a first-try handshake,
    // so a run asking for a group the server does not prefer would measure no HRR at all.
    fn set_kx_hint(&self, _: ServerName<'static>, _: NamedGroup) {}

    fn kx_hint(&self, _: &ServerName<'_>) -> Option<NamedGroup> {
        None
    }

    fn set_tls12_session(&self, server_name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.inner.set_tls12_session(server_name, value);
    }

    fn tls12_session(&self, server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        if !self.offering() {
            return None;
        }
        self.note(self.inner.tls12_session(server_name))
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        self.inner.remove_tls12_session(server_name);
    }

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        let mut map = match self.tickets.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let queue = map.entry(server_name).or_default();
        if queue.len() >= TLS13_TICKETS_PER_SERVER {
            queue.pop_front();
        }
        queue.push_back(value);
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        // Not offering must not consume a ticket either: tickets are single-use, and a full
        // handshake should not burn one that a later resumed connection could use.
        if !self.offering() {
            return None;
        }
        let mut map = match self.tickets.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Newest first: the freshest ticket is the least likely to have expired.
        self.note(map.get_mut(server_name).and_then(VecDeque::pop_back))
    }
}

/// Everything one worker thread needs to open connections.
pub struct WorkerTls {
    /// The worker's client config (shared by all its connections).
    pub config: Arc<ClientConfig>,
    /// The session store, unless resumption is off.
    pub store: Option<Arc<OfferingStore>>,
    /// The caching verifier, for its hit and miss counts; `None` under `--insecure`.
    pub verifier: Option<Arc<CachingVerifier>>,
}

/// Sessions a worker remembers: one per server name, and a run has few of those; TLS 1.3
/// tickets are bounded per name by rustls itself.
const STORE_CAPACITY: usize = 256;

/// Builds the per-worker config. `roots` is built once and shared (read-only); the verifier
/// (with its cache) and the store are per worker, so the hot path takes no lock another
/// thread holds.
pub fn worker_tls(
    opts: &ClientTlsOptions,
    roots: Option<&Arc<RootCertStore>>,
) -> Result<WorkerTls, TlsConfError> {
    if opts.resume == ResumeMode::SessionId && opts.versions.contains(&Version::Tls13) {
        return Err(TlsConfError::SessionIdNeedsTls12);
    }
    let provider = opts.provider.crypto(&opts.suites, &opts.groups)?;
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&tls::rustls_versions(&opts.versions))
        .map_err(TlsError::from)?
        .dangerous();
    let (builder, verifier) = if opts.insecure {
        (
            builder.with_custom_certificate_verifier(InsecureVerifier::new(&provider)),
            None,
        )
    } else {
        let roots = roots.ok_or(TlsConfError::NoRoots)?;
        let verifier = CachingVerifier::new(Arc::clone(roots), provider)?;
        (
            builder.with_custom_certificate_verifier(verifier.clone()),
            Some(verifier),
        )
    };
    // Installed with or without a certificate, so a server asking for one is noted either way.
    let mut config =
        builder.with_client_cert_resolver(NotingResolver::new(opts.client_cert.as_ref()));

    let store = match opts.resume {
        ResumeMode::Off => {
            config.resumption = Resumption::disabled();
            None
        }
        ResumeMode::Ticket | ResumeMode::SessionId => {
            let store = OfferingStore::new(STORE_CAPACITY);
            let tls12 = if opts.resume == ResumeMode::Ticket {
                Tls12Resumption::SessionIdOrTickets
            } else {
                // No ticket extension at all, so the server must use its session cache.
                Tls12Resumption::SessionIdOnly
            };
            config.resumption = Resumption::store(store.clone()).tls12_resumption(tls12);
            Some(store)
        }
    };

    config.alpn_protocols = opts.alpn.clone();
    config.enable_sni = true;
    // Set either way: rustls offers compression by default when its features are built in.
    config.cert_decompressors = opts.cert_compression.decompressors();
    config.cert_compressors = opts.cert_compression.compressors();
    config.enable_early_data = opts.early_data;
    if let Some(path) = &opts.keylog {
        let log =
            common::keylog::KeyLogFile::open(path).map_err(|source| TlsConfError::KeyLog {
                path: path.clone(),
                source,
            })?;
        config.key_log = Arc::new(log);
    }

    Ok(WorkerTls {
        config: Arc::new(config),
        store,
        verifier,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use clap::ValueEnum;
    use common::certs::KeyType;
    use rustls::HandshakeKind;
    #[cfg(feature = "ring")]
    use rustls::pki_types::pem::PemObject as _;
    use server::TlsOptions;

    use super::*;
    use crate::verify::root_store;
    use crate::verify::testutil::{Tls, ca_file, chain, get_root, handshake, start, temp_dir};

    fn options(versions: &[Version], resume: ResumeMode, trust: Trust) -> ClientTlsOptions {
        ClientTlsOptions {
            provider: Provider::default(),
            versions: versions.to_vec(),
            suites: Vec::new(),
            groups: Vec::new(),
            alpn: vec![b"http/1.1".to_vec()],
            keylog: None,
            resume,
            trust,
            insecure: false,
            client_cert: None,
            cert_compression: CertCompression::off(),
            early_data: false,
        }
    }

    fn kind(tls: &Tls) -> HandshakeKind {
        tls.conn.handshake_kind().unwrap()
    }

    /// Full, full without offering, then resumed, against a server at `addr`.
    fn offer_only_when_told(addr: std::net::SocketAddr, w: &WorkerTls, version: Version) {
        let store = w.store.as_ref().unwrap();

        store.set_offer(true);
        let mut tls = handshake(addr, &w.config, "bank32.com").unwrap();
        assert!(!store.take_offered(), "nothing saved yet");
        assert_eq!(kind(&tls), HandshakeKind::Full);
        assert_eq!(
            Version::from_rustls(tls.conn.protocol_version().unwrap()),
            Some(version)
        );
        get_root(&mut tls);

        store.set_offer(false);
        let mut tls = handshake(addr, &w.config, "bank32.com").unwrap();
        assert!(!store.take_offered());
        assert_eq!(kind(&tls), HandshakeKind::Full);
        get_root(&mut tls);

        store.set_offer(true);
        let mut tls = handshake(addr, &w.config, "bank32.com").unwrap();
        assert!(store.take_offered());
        assert!(!store.take_offered(), "take resets");
        assert_eq!(kind(&tls), HandshakeKind::Resumed);
        get_root(&mut tls);

        // Two full handshakes verified the chain (once fully, once from the cache); the
        // resumed one presented no certificate.
        let v = w.verifier.as_ref().unwrap();
        assert_eq!((v.misses(), v.hits()), (1, 1));
    }

    #[test]
    fn tls13_tickets_are_offered_only_when_told() {
        let a = chain(KeyType::EcdsaP256);
        let trust = Trust::CaFile(ca_file(&[&a]));
        let roots = root_store(&trust).unwrap();
        let (server, addr) = start(&a, &TlsOptions::default());
        let w = worker_tls(
            &options(&[Version::Tls13], ResumeMode::Ticket, trust),
            Some(&roots),
        )
        .unwrap();
        offer_only_when_told(addr, &w, Version::Tls13);
        let stats = server.stop().unwrap();
        assert_eq!(stats.handshakes_of("1.3", "resumed"), 1);
    }

    /// ring's ticketer and store: a ring server's TLS 1.3 ticket resumes a ring generator.
    #[cfg(feature = "ring")]
    #[test]
    fn ring_tls13_tickets_resume() {
        let a = chain(KeyType::EcdsaP256);
        let trust = Trust::CaFile(ca_file(&[&a]));
        let roots = root_store(&trust).unwrap();
        let server_opts = TlsOptions {
            provider: Provider::Ring,
            resumption: server::Resumption::Tickets,
            ..TlsOptions::default()
        };
        let (server, addr) = start(&a, &server_opts);
        let mut opts = options(&[Version::Tls13], ResumeMode::Ticket, trust);
        opts.provider = Provider::Ring;
        let w = worker_tls(&opts, Some(&roots)).unwrap();
        offer_only_when_told(addr, &w, Version::Tls13);
        let stats = server.stop().unwrap();
        assert_eq!(stats.handshakes_of("1.3", "resumed"), 1);
    }

    #[test]
    fn tls12_session_ids_are_offered_only_when_told() {
        let a = chain(KeyType::EcdsaP256);
        let trust = Trust::CaFile(ca_file(&[&a]));
        let roots = root_store(&trust).unwrap();
        let server_opts = TlsOptions {
            resumption: server::Resumption::Stateful,
            ..TlsOptions::default()
        };
        let (server, addr) = start(&a, &server_opts);
        let w = worker_tls(
            &options(&[Version::Tls12], ResumeMode::SessionId, trust),
            Some(&roots),
        )
        .unwrap();
        offer_only_when_told(addr, &w, Version::Tls12);
        let stats = server.stop().unwrap();
        assert_eq!(stats.handshakes_of("1.2", "resumed"), 1);
    }

    /// A TLS 1.3 handshake with a `key` certificate, `server` on the server and `client` on
    /// the generator; returns the negotiated group and both configs' providers as their
    /// randomness names them ("Ring", "AwsLcRs"): which library did the work, not which one
    /// was asked for.
    #[cfg(feature = "ring")]
    fn tls13_pair(key: KeyType, server: Provider, client: Provider) -> (String, String, String) {
        let a = chain(key);
        let trust = Trust::CaFile(ca_file(&[&a]));
        let roots = root_store(&trust).unwrap();
        let server_opts = TlsOptions {
            provider: server,
            versions: vec![Version::Tls13],
            ..TlsOptions::default()
        };
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(a.leaf_key_pem.as_bytes());
        let server_cfg = server_opts
            .server_config(
                crate::verify::testutil::pem_certs(&a.chain_pem()),
                key.unwrap(),
            )
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let srv = server::Server::start(
            vec![listener],
            Arc::clone(&server_cfg),
            server::Settings::default(),
        )
        .unwrap();
        let addr = srv.local_addrs()[0];
        let mut opts = options(&[Version::Tls13], ResumeMode::Off, trust);
        opts.provider = client;
        let w = worker_tls(&opts, Some(&roots)).unwrap();
        let mut tls = handshake(addr, &w.config, "bank32.com").unwrap();
        assert_eq!(
            tls.conn.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_3)
        );
        let group = tls::group_name(tls.conn.negotiated_key_exchange_group().unwrap());
        get_root(&mut tls);
        let stats = srv.stop().unwrap();
        assert_eq!(stats.handshakes_of("1.3", "full"), 1);
        (
            group,
            format!("{:?}", server_cfg.crypto_provider().secure_random),
            format!("{:?}", w.config.crypto_provider().secure_random),
        )
    }

    #[cfg(feature = "ring")]
    #[test]
    fn ring_on_both_sides_completes_a_tls13_ecdsa_handshake() {
        let (group, server, client) =
            tls13_pair(KeyType::EcdsaP256, Provider::Ring, Provider::Ring);
        assert_eq!((server.as_str(), client.as_str()), ("Ring", "Ring"));
        // ring's first group: it has no X25519MLKEM768 to prefer.
        assert_eq!(group, "X25519");
        // rcgen's RSA and Ed25519 keys load and sign on ring too.
        for key in [KeyType::Rsa2048, KeyType::Ed25519] {
            let (_, server, client) = tls13_pair(key, Provider::Ring, Provider::Ring);
            assert_eq!(
                (server.as_str(), client.as_str()),
                ("Ring", "Ring"),
                "{key}"
            );
        }
    }

    #[cfg(feature = "ring")]
    #[test]
    fn a_ring_server_and_an_aws_lc_rs_generator_agree_on_a_group_both_have() {
        let (group, server, client) =
            tls13_pair(KeyType::EcdsaP256, Provider::Ring, Provider::AwsLcRs);
        assert_eq!((server.as_str(), client.as_str()), ("Ring", "AwsLcRs"));
        // The generator offers X25519MLKEM768 first; the ring server picks X25519.
        assert_eq!(group, "X25519");
    }

    #[test]
    fn session_id_with_tls13_is_refused() {
        let opts = options(
            &[Version::Tls12, Version::Tls13],
            ResumeMode::SessionId,
            Trust::Platform,
        );
        let err = worker_tls(&opts, None).err().unwrap();
        assert!(matches!(err, TlsConfError::SessionIdNeedsTls12), "{err:?}");
        assert_eq!(
            err.to_string(),
            "session-id resumption exists only in TLS 1.2: use --tls 1.2"
        );
    }

    #[test]
    fn resume_off_and_insecure() {
        let a = chain(KeyType::EcdsaP256);
        let (server, addr) = start(&a, &TlsOptions::default());
        let mut opts = options(&[Version::Tls13], ResumeMode::Off, Trust::Platform);

        // Verification without roots is a configuration error, not a silent --insecure.
        let err = worker_tls(&opts, None).err().unwrap();
        assert!(matches!(err, TlsConfError::NoRoots), "{err:?}");

        opts.insecure = true;
        let keylog = temp_dir("keylog").join("keys.log");
        opts.keylog = Some(keylog.clone());
        let w = worker_tls(&opts, None).unwrap();
        assert!(w.store.is_none() && w.verifier.is_none());
        for _ in 0..2 {
            let mut tls = handshake(addr, &w.config, "evil.example").unwrap();
            assert_eq!(kind(&tls), HandshakeKind::Full);
            assert_eq!(tls.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
            get_root(&mut tls);
        }
        let log = std::fs::read_to_string(&keylog).unwrap();
        assert_eq!(
            log.lines()
                .filter(|l| l.starts_with("CLIENT_TRAFFIC_SECRET_0 "))
                .count(),
            2,
            "{log}"
        );
        server.stop().unwrap();
    }

    #[test]
    fn resume_mode_names() {
        let names: Vec<String> = ResumeMode::value_variants()
            .iter()
            .map(|m| m.to_possible_value().unwrap().get_name().to_owned())
            .collect();
        assert_eq!(names, ["off", "ticket", "session-id"]);
        assert_eq!(
            ResumeMode::from_str("session-id", false).unwrap(),
            ResumeMode::SessionId
        );
    }
}
