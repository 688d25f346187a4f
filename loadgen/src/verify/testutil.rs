//! Test support for the load generator's TLS tests: generated chains, an in-process server on
//! loopback port 0, a blocking client, client configs around a given verifier.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::certs::{self, ChainOptions, GeneratedChain, KeyType};
use rustls::client::Resumption;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use super::CachingVerifier;
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

/// A client config that checks certificates with `verifier` and never resumes, so every
/// connection presents and verifies a certificate.
pub(crate) fn client(verifier: Arc<dyn ServerCertVerifier>) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    cfg.resumption = Resumption::disabled();
    Arc::new(cfg)
}

/// A caching verifier trusting `roots`.
pub(crate) fn caching(roots: Arc<RootCertStore>) -> Arc<CachingVerifier> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    CachingVerifier::new(roots, provider).unwrap()
}

/// `secs` after the Unix epoch.
pub(crate) fn unix(secs: u64) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(secs))
}

/// `s` as a server name.
pub(crate) fn name(s: &str) -> ServerName<'static> {
    ServerName::try_from(s.to_owned()).unwrap()
}
