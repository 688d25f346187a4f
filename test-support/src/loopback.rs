//! Test support for the server's tests: generated chains (once per test binary), a server on
//! loopback port 0, a blocking rustls client that verifies the chain and the name bank32.com,
//! and the check that a server survived what a test threw at it (a verified GET / still gets
//! the hello page).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::certs::{self, ChainOptions, GeneratedChain, KeyType};
use rustls::client::Resumption as ClientResumption;
use rustls::client::Tls12Resumption;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::version::TLS13;
use rustls::{
    ClientConfig, ClientConnection, HandshakeKind, RootCertStore, ServerConfig, StreamOwned,
};
use server::{Server, Settings, TlsOptions};

pub use crate::temp_dir;

/// The generated chain of `kt`, made once per test binary.
pub fn chain(kt: KeyType) -> GeneratedChain {
    static CHAINS: OnceLock<Mutex<HashMap<KeyType, GeneratedChain>>> = OnceLock::new();
    let map = CHAINS.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = map.lock().unwrap();
    map.entry(kt)
        .or_insert_with(|| certs::generate(kt, &ChainOptions::default()).unwrap())
        .clone()
}

/// The certificates of a PEM text.
pub fn pem_certs(pem: &str) -> Vec<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// The private key of a PEM text.
pub fn pem_key(pem: &str) -> PrivateKeyDer<'static> {
    use rustls::pki_types::pem::PemObject;
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap()
}

/// Writes `kt`'s chain under a fresh temp dir (for clients that need files: curl, openssl).
pub fn chain_files(kt: KeyType) -> (PathBuf, certs::CertPaths) {
    let dir = temp_dir("certs");
    let p = certs::write(&dir, &chain(kt)).unwrap();
    (dir, p)
}

/// A server with `workers` workers, each on its own 127.0.0.1 port.
pub fn start(kt: KeyType, opts: &TlsOptions, settings: Settings, workers: usize) -> Server {
    let listeners: Vec<TcpListener> = (0..workers)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    start_on(listeners, kt, opts, settings)
}

/// A server presenting `kt`'s chain on listeners the caller made (shared ports, small socket
/// buffers), one worker each.
pub fn start_on(
    listeners: Vec<TcpListener>,
    kt: KeyType,
    opts: &TlsOptions,
    settings: Settings,
) -> Server {
    Server::start(listeners, server_config(kt, opts), settings).unwrap()
}

/// The server's rustls config for `kt`'s chain with `opts`, for servers started by hand.
pub fn server_config(kt: KeyType, opts: &TlsOptions) -> Arc<ServerConfig> {
    chain_config(&chain(kt), opts)
}

/// The server's rustls config presenting `chain` with `opts`.
pub fn chain_config(chain: &GeneratedChain, opts: &TlsOptions) -> Arc<ServerConfig> {
    opts.server_config(pem_certs(&chain.chain_pem()), pem_key(&chain.leaf_key_pem))
        .unwrap()
}

/// The default server: ecdsa-p256, TLS 1.2+1.3, both resumption mechanisms, one worker.
pub fn start_default() -> Server {
    start(
        KeyType::EcdsaP256,
        &TlsOptions::default(),
        Settings::default(),
        1,
    )
}

/// How the test client resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientResume {
    /// No resumption.
    Off,
    /// TLS 1.3 tickets, TLS 1.2 session IDs and tickets (rustls's default).
    Default,
    /// TLS 1.2 session IDs only (no ticket extension offered).
    SessionIdOnly,
}

/// A verifying client config trusting `kt`'s CA.
pub fn client_config(
    kt: KeyType,
    versions: &[&'static rustls::SupportedProtocolVersion],
    resume: ClientResume,
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in pem_certs(&chain(kt).root_pem) {
        roots.add(c).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.resumption = match resume {
        ClientResume::Off => ClientResumption::disabled(),
        ClientResume::Default => ClientResumption::in_memory_sessions(64),
        ClientResume::SessionIdOnly => ClientResumption::in_memory_sessions(64)
            .tls12_resumption(Tls12Resumption::SessionIdOnly),
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

/// A verifying client config trusting the ecdsa-p256 CA, offering `versions`, resuming
/// nothing: every connection a full handshake.
pub fn client_no_resume(
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    client_config(KeyType::EcdsaP256, versions, ClientResume::Off)
}

/// A blocking TLS client stream.
pub type Tls = StreamOwned<ClientConnection, TcpStream>;

/// Connects and completes the handshake to `addr`, verifying the name bank32.com.
pub fn connect(addr: SocketAddr, cfg: &Arc<ClientConfig>) -> Tls {
    let name = ServerName::try_from("bank32.com").unwrap();
    let conn = ClientConnection::new(Arc::clone(cfg), name).unwrap();
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    sock.set_write_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut tls = StreamOwned::new(conn, sock);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).unwrap();
    }
    tls
}

/// How the handshake of `tls` went (full or resumed).
pub fn kind(tls: &Tls) -> HandshakeKind {
    tls.conn.handshake_kind().unwrap()
}

/// Reads one HTTP/1.1 response (head + Content-Length body) and returns (head, body).
pub fn read_response(tls: &mut Tls) -> (String, Vec<u8>) {
    let head = read_head(tls);
    let len: usize = header(&head, "content-length").map_or(0, |v| v.parse().unwrap());
    let mut body = vec![0u8; len];
    tls.read_exact(&mut body).unwrap();
    (head, body)
}

/// Reads one response head (through the blank line).
pub fn read_head(tls: &mut Tls) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tls.read(&mut byte).unwrap();
        assert_eq!(
            n,
            1,
            "connection closed inside a response head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// The value of header `name` (case-insensitive) in a response head.
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The status code of a response head.
pub fn status(head: &str) -> u16 {
    head.split(' ').nth(1).unwrap().parse().unwrap()
}

/// GET `path` on a fresh verified connection; returns (handshake kind, head, body).
pub fn get(
    addr: SocketAddr,
    cfg: &Arc<ClientConfig>,
    path: &str,
) -> (HandshakeKind, String, Vec<u8>) {
    let mut tls = connect(addr, cfg);
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: bank32.com\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    tls.flush().unwrap();
    let (head, body) = read_response(&mut tls);
    let k = kind(&tls);
    (k, head, body)
}

/// The server still works: a verified TLS 1.3 handshake and GET / give the hello page.
pub fn good_request_still_served(server: &Server) {
    let cfg = client_no_resume(&[&TLS13]);
    let (_, head, body) = get(server.local_addrs()[0], &cfg, "/");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert_eq!(body, server::http::HELLO_PAGE);
}

/// Reads until the server closes; true when it closed (EOF or reset) rather than timing out.
pub fn closed_by_server(sock: &mut TcpStream, within: Duration) -> bool {
    sock.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match sock.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

/// Waits (bounded) until `cond` holds on the server's counters; returns whether it did.
pub fn wait_for(
    server: &Server,
    within: Duration,
    cond: impl Fn(&server::Snapshot) -> bool,
) -> bool {
    let stats = server.stats();
    let deadline = Instant::now() + within;
    loop {
        if cond(&stats.snapshot()) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::yield_now();
    }
}

/// A path as a command-line argument (test paths are UTF-8).
pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}
