//! What a server is told: runtime [`Settings`] (limits, timeouts, caps) and the TLS side
//! ([`TlsOptions`] turned into one shared `rustls::ServerConfig`, so every worker resumes every
//! other worker's sessions).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::cert_compression::CertCompression;
use common::tls::{self, Provider, Version};
use rustls::crypto::SupportedKxGroup;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::NoServerSessionStorage;
use rustls::{ServerConfig, SupportedCipherSuite};

use crate::ServerError;
use crate::client_auth::ClientAuthOptions;
use crate::http::Limits;
use crate::session_cache::{Gauge, SessionCache};

/// Limits and timeouts of one server; `Default` gives nginx-like values.
#[derive(Clone, Debug)]
pub struct Settings {
    /// HTTP request limits (request line, headers, bodies, /bytes cap).
    pub limits: Limits,
    /// From accept to a completed handshake (nginx `ssl_handshake_timeout`).
    pub handshake_timeout: Duration,
    /// From the first byte of a request head to its end (nginx `client_header_timeout`).
    pub header_timeout: Duration,
    /// Between two reads of a request body (nginx `client_body_timeout`).
    pub body_timeout: Duration,
    /// A kept-alive connection with no request in flight (nginx `keepalive_timeout`).
    pub keepalive_timeout: Duration,
    /// Between two successful writes while output is pending (nginx `send_timeout`).
    pub send_timeout: Duration,
    /// After our last response on a closing connection, how long unread client bytes are
    /// drained so the kernel does not reset the connection under the response (nginx
    /// `lingering_timeout`).
    pub linger_timeout: Duration,
    /// On shutdown, how long in-flight responses may take before connections are cut.
    pub shutdown_timeout: Duration,
    /// Open connections across all workers; further ones are accepted and closed at once.
    pub max_connections: Option<usize>,
    /// CPUs the workers are pinned to (worker i to the i-th, round robin); empty: not pinned.
    pub pin_cpus: Vec<usize>,
    /// The TLS config's certificate compressors, which the connections count by: set by
    /// [`crate::Server::start`] from the config it is given, so the two cannot disagree.
    pub cert_compression: CertCompression,
    /// The TLS config accepts early data (0-RTT), so connections read the ClientHello's offer
    /// of it: set by [`crate::Server::start`] from the config, like `cert_compression`.
    pub early_data: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            limits: Limits::default(),
            handshake_timeout: Duration::from_secs(60),
            header_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(60),
            keepalive_timeout: Duration::from_secs(75),
            send_timeout: Duration::from_secs(60),
            linger_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(10),
            max_connections: None,
            pin_cpus: Vec::new(),
            cert_compression: CertCompression::off(),
            early_data: false,
        }
    }
}

impl Settings {
    /// The shortest timeout: the worker sweeps for expired deadlines at a fraction of it.
    pub(crate) fn min_timeout(&self) -> Duration {
        [
            self.handshake_timeout,
            self.header_timeout,
            self.body_timeout,
            self.keepalive_timeout,
            self.send_timeout,
            self.linger_timeout,
        ]
        .into_iter()
        .min()
        .unwrap_or(Duration::from_secs(1))
    }
}

/// How sessions may be resumed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Resumption {
    /// Every handshake is full: no session cache, no tickets.
    Off,
    /// Server-side session cache only: TLS 1.2 session IDs, TLS 1.3 stateful tickets.
    Stateful,
    /// Stateless tickets only: TLS 1.2 RFC 5077 tickets, TLS 1.3 PSK tickets.
    Tickets,
    /// Both a session cache and stateless tickets (what nginx does when both are on).
    Both,
}

/// The TLS side of the server, by name.
#[derive(Clone, Debug)]
pub struct TlsOptions {
    /// The crypto provider doing the handshakes, records and tickets.
    pub provider: Provider,
    /// Protocol versions offered.
    pub versions: Vec<Version>,
    /// Cipher suites in preference order; empty = the provider's defaults.
    pub suites: Vec<SupportedCipherSuite>,
    /// Key-exchange groups in preference order; empty = the provider's defaults.
    pub groups: Vec<&'static dyn SupportedKxGroup>,
    /// Resumption mechanisms.
    pub resumption: Resumption,
    /// Sessions kept by the stateful cache (shared by all workers).
    pub session_cache: usize,
    /// Tickets sent after each full TLS 1.3 handshake.
    pub tls13_tickets: usize,
    /// TLS 1.3 early data accepted per resumed connection, in bytes; 0: none.
    pub early_data: u32,
    /// Largest plaintext per record (`None`: the protocol maximum, 16 KiB).
    pub max_fragment: Option<usize>,
    /// ALPN protocols offered, in preference order.
    pub alpn: Vec<Vec<u8>>,
    /// Where to write the NSS key log, if anywhere.
    pub keylog: Option<PathBuf>,
    /// Whether client certificates are asked for, required, and which CAs issue them.
    pub client_auth: ClientAuthOptions,
    /// Certificate compression (RFC 8879), in order of preference; off by default.
    pub cert_compression: CertCompression,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            provider: Provider::default(),
            versions: vec![Version::Tls12, Version::Tls13],
            suites: Vec::new(),
            groups: Vec::new(),
            resumption: Resumption::Both,
            session_cache: 20_480,
            tls13_tickets: 2,
            early_data: 0,
            max_fragment: None,
            alpn: vec![b"http/1.1".to_vec()],
            keylog: None,
            client_auth: ClientAuthOptions::default(),
            cert_compression: CertCompression::off(),
        }
    }
}

impl TlsOptions {
    /// Builds the shared rustls config serving `chain` (leaf first) with `key`.
    pub fn server_config(
        &self,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Arc<ServerConfig>, ServerError> {
        Ok(self.server_tls(chain, key)?.config)
    }

    /// [`TlsOptions::server_config`] with the session cache's gauge, for a server that
    /// reports the cache's occupancy (give it to [`crate::Server::start`]).
    pub fn server_tls(
        &self,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<ServerTls, ServerError> {
        if self.early_data > 0 && self.resumption != Resumption::Stateful {
            // rustls refuses early data on a stateless ticket (it could be replayed at will)
            // and has nothing to resume without a cache: the flag would silently do nothing.
            use clap::ValueEnum as _;
            let name = self
                .resumption
                .to_possible_value()
                .map_or_else(String::new, |v| v.get_name().to_owned());
            return Err(ServerError::Config(format!(
                "--early-data {} needs --resumption stateful, not {name}",
                self.early_data
            )));
        }
        let provider = self.provider.crypto(&self.suites, &self.groups)?;
        let client_verifier = self.client_auth.verifier(provider.clone())?;
        let mut cfg = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&tls::rustls_versions(&self.versions))
            .map_err(tls::TlsError::from)?
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(chain, key)
            .map_err(tls::TlsError::from)?;
        let (cache, tickets) = match self.resumption {
            Resumption::Off => (false, false),
            Resumption::Stateful => (true, false),
            Resumption::Tickets => (false, true),
            Resumption::Both => (true, true),
        };
        let mut gauge = None;
        cfg.session_storage = if cache {
            let c = SessionCache::new(self.session_cache);
            gauge = Some(c.gauge());
            Arc::new(c)
        } else {
            Arc::new(NoServerSessionStorage {})
        };
        if tickets {
            // One ticketer for all workers (the config is shared): a ticket issued by one
            // thread opens on any other. Its keys rotate every 6 hours and live only in memory.
            cfg.ticketer = self.provider.ticketer()?;
        }
        cfg.send_tls13_tickets = if cache || tickets {
            self.tls13_tickets
        } else {
            0
        };
        cfg.max_fragment_size = self.max_fragment;
        cfg.max_early_data_size = self.early_data;
        // Set either way: rustls compresses by default when its features are built in.
        cfg.cert_compressors = self.cert_compression.compressors();
        cfg.cert_decompressors = self.cert_compression.decompressors();
        cfg.alpn_protocols = self.alpn.clone();
        if let Some(path) = &self.keylog {
            let log = common::keylog::KeyLogFile::open(path).map_err(|source| ServerError::Io {
                what: format!("opening key log {}", path.display()),
                source,
            })?;
            cfg.key_log = Arc::new(log);
        }
        Ok(ServerTls {
            config: Arc::new(cfg),
            session_cache: gauge,
        })
    }
}

/// The shared rustls config and, when it has a session cache, that cache's gauge: what a
/// [`crate::Server`] starts with. A bare `ServerConfig` converts into one without a gauge
/// (the server then reports no session cache, as with a config it did not build).
pub struct ServerTls {
    /// The config every worker serves.
    pub config: Arc<ServerConfig>,
    /// The stateful cache's occupancy and counts (`None`: no session cache).
    pub session_cache: Option<Arc<Gauge>>,
}

impl From<Arc<ServerConfig>> for ServerTls {
    fn from(config: Arc<ServerConfig>) -> Self {
        ServerTls {
            config,
            session_cache: None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use common::certs::{self, ChainOptions, KeyType};
    use rustls::pki_types::pem::PemObject;

    fn test_identity() -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let c = certs::generate(KeyType::EcdsaP256, &ChainOptions::default()).unwrap();
        let chain = CertificateDer::pem_slice_iter(c.chain_pem().as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(c.leaf_key_pem.as_bytes()).unwrap();
        (chain, key)
    }

    fn config(resumption: Resumption) -> Arc<ServerConfig> {
        let (chain, key) = test_identity();
        let opts = TlsOptions {
            resumption,
            ..TlsOptions::default()
        };
        opts.server_config(chain, key).unwrap()
    }

    #[test]
    fn early_data_is_refused_without_the_stateful_cache_and_set_with_it() {
        for (resumption, name) in [
            (Resumption::Off, "off"),
            (Resumption::Tickets, "tickets"),
            (Resumption::Both, "both"),
        ] {
            let opts = TlsOptions {
                resumption,
                early_data: 16384,
                ..TlsOptions::default()
            };
            let (chain, key) = test_identity();
            let err = opts.server_config(chain, key).err().unwrap().to_string();
            assert_eq!(
                err,
                format!("--early-data 16384 needs --resumption stateful, not {name}")
            );
        }
        let opts = TlsOptions {
            resumption: Resumption::Stateful,
            early_data: 16384,
            ..TlsOptions::default()
        };
        let (chain, key) = test_identity();
        let cfg = opts.server_config(chain, key).unwrap();
        assert_eq!(cfg.max_early_data_size, 16384);
        let (chain, key) = test_identity();
        let off = TlsOptions::default().server_config(chain, key).unwrap();
        assert_eq!(off.max_early_data_size, 0);
    }

    #[test]
    fn ticket_keys_rotate_in_memory_and_no_key_log_by_default() {
        let cfg = config(Resumption::Both);
        // rustls's TicketRotator makes a fresh random key every 6 hours and accepts tickets of
        // the previous key too, hence a 12-hour ticket lifetime; the keys exist only in memory.
        assert!(cfg.ticketer.enabled());
        assert!(format!("{:?}", cfg.ticketer).starts_with("TicketRotator"));
        assert_eq!(cfg.ticketer.lifetime(), 12 * 60 * 60);
        assert!(!cfg.key_log.will_log("CLIENT_RANDOM"));
        assert!(!config(Resumption::Stateful).ticketer.enabled());
    }
}
