//! `tlsbench load URL -n 1 -v`: a TLS client that shows one connection step by step: each
//! certificate of the chain with subject, issuer and validity, the verdict on chain and name,
//! the negotiated version, suite and group, the handshake's kind (full or resumed, with or
//! without a HelloRetryRequest) and its TLS bytes each way, then the response. Also
//! [`exchange`], the same connection returned typed (what was negotiated, the leaf's key, the
//! response) for `tlsbench run`'s probe of what a server supports.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use common::tls::Version;
use rustls::{ClientConnection, StreamOwned};

use crate::exit::Exit;
use crate::verify::{self, InsecureVerifier};
use crate::{HandshakeClass, LoadError, LoadOptions, tlsconf};

fn connect(
    opts: &LoadOptions,
    config: Arc<rustls::ClientConfig>,
) -> Result<StreamOwned<ClientConnection, TcpStream>, LoadError> {
    let io = |what: String| move |source| LoadError::Io { what, source };
    let sock = TcpStream::connect_timeout(&opts.target.addr, opts.timeout)
        .map_err(io(format!("connecting to {}", opts.target.addr)))?;
    sock.set_read_timeout(Some(opts.timeout))
        .map_err(io("socket".into()))?;
    sock.set_write_timeout(Some(opts.timeout))
        .map_err(io("socket".into()))?;
    let conn = ClientConnection::new(config, opts.target.server_name.clone())
        .map_err(|e| LoadError::Options(e.to_string()))?;
    Ok(StreamOwned::new(conn, sock))
}

fn print_chain(out: &mut impl Write, certs: &[rustls::pki_types::CertificateDer<'_>]) {
    for (i, der) in certs.iter().enumerate() {
        let role = if i == 0 { "leaf" } else { "intermediate" };
        match verify::describe_cert(der) {
            Some(c) => {
                let _ = writeln!(out, "  [{i}] {role}: subject {}", c.subject);
                let _ = writeln!(out, "      issuer  {}", c.issuer);
                let _ = writeln!(out, "      valid   {} .. {}", c.not_before, c.not_after);
                if !c.names.is_empty() {
                    let _ = writeln!(out, "      names   {}", c.names.join(", "));
                }
            }
            None => {
                let _ = writeln!(out, "  [{i}] {role}: (could not be parsed)");
            }
        }
    }
}

/// What the handshake came to.
struct Handshaken {
    /// The server asked for a HelloRetryRequest on the way (rustls's final kind forgets it
    /// when the handshake then resumes).
    saw_hrr: bool,
    /// TLS bytes read until the handshake completed (server to client).
    bytes_in: u64,
    /// TLS bytes written up to and including our Finished (client to server).
    bytes_out: u64,
    /// Certificates decompressed, by `Algorithm::ALL` order.
    decompressed: [u64; 2],
}

/// Drives the handshake to its end and writes our last flight (before the request, so the
/// handshake's bytes are all that was written).
fn handshake(tls: &mut StreamOwned<ClientConnection, TcpStream>) -> std::io::Result<Handshaken> {
    let mut saw_hrr = false;
    let (mut bytes_in, mut bytes_out) = (0u64, 0u64);
    let _ = common::cert_compression::take_decompressed();
    // Each pass writes or reads at least one byte or fails (the socket has timeouts).
    while tls.conn.is_handshaking() {
        if tls.conn.wants_write() {
            bytes_out += tls.conn.write_tls(&mut tls.sock)? as u64;
            continue;
        }
        let n = tls.conn.read_tls(&mut tls.sock)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        bytes_in += n as u64;
        if let Err(e) = tls.conn.process_new_packets() {
            // Let the peer see our alert before we go.
            let _ = tls.conn.write_tls(&mut tls.sock);
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e));
        }
        saw_hrr |=
            tls.conn.handshake_kind() == Some(rustls::HandshakeKind::FullWithHelloRetryRequest);
    }
    while tls.conn.wants_write() {
        bytes_out += tls.conn.write_tls(&mut tls.sock)? as u64;
    }
    Ok(Handshaken {
        saw_hrr,
        bytes_in,
        bytes_out,
        decompressed: common::cert_compression::take_decompressed(),
    })
}

/// Reports a failed handshake: a refused certificate with the chain as presented, or the error.
fn refused_or_failed(
    opts: &LoadOptions,
    wt: &tlsconf::WorkerTls,
    out: &mut impl Write,
    e: &std::io::Error,
) -> Result<Exit, LoadError> {
    let rustls_err = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .cloned();
    match rustls_err {
        Some(err @ rustls::Error::InvalidCertificate(_)) => {
            let _ = writeln!(out, "certificate chain as presented (NOT trusted):");
            // Fetch the chain again without verification, only to show it.
            let mut cfg = (*wt.config).clone();
            cfg.dangerous()
                .set_certificate_verifier(InsecureVerifier::new(wt.config.crypto_provider()));
            if let Ok(mut shown) = connect(opts, Arc::new(cfg)) {
                while shown.conn.is_handshaking() {
                    if shown.conn.complete_io(&mut shown.sock).is_err() {
                        break;
                    }
                }
                if let Some(certs) = shown.conn.peer_certificates() {
                    print_chain(out, certs);
                }
            }
            let _ = writeln!(
                out,
                "verdict: REFUSED: {}",
                verify::describe_error(&err, &opts.target.server_name, &opts.tls.trust)
            );
            Ok(Exit::Verify)
        }
        _ => {
            let _ = writeln!(out, "handshake failed: {e}");
            Ok(Exit::Incomplete)
        }
    }
}

/// Runs the one-shot client; returns the exit code.
pub fn run(opts: &LoadOptions) -> Result<Exit, LoadError> {
    let roots = if opts.tls.insecure {
        None
    } else {
        Some(verify::root_store(&opts.tls.trust)?)
    };
    let wt = tlsconf::worker_tls(&opts.tls, roots.as_ref())?;
    let mut out = std::io::stdout().lock();
    let name = opts.target.server_name.to_str().into_owned();
    let _ = writeln!(
        out,
        "connecting to {} (verifying the name {name})",
        opts.target.addr
    );
    let mut tls = connect(opts, Arc::clone(&wt.config))?;
    let done = match handshake(&mut tls) {
        Ok(done) => done,
        Err(e) => return refused_or_failed(opts, &wt, &mut out, &e),
    };

    let _ = writeln!(out, "certificate chain:");
    if let Some(certs) = tls.conn.peer_certificates() {
        print_chain(&mut out, certs);
    }
    let _ = writeln!(
        out,
        "verdict: {}",
        if opts.tls.insecure {
            "NOT VERIFIED (--insecure)".to_string()
        } else {
            format!("chain verified to a trusted root; name {name} matches")
        }
    );
    let version = tls
        .conn
        .protocol_version()
        .map_or("?".into(), |v| format!("{v:?}"));
    let suite = tls
        .conn
        .negotiated_cipher_suite()
        .map_or("?".into(), common::tls::suite_name);
    let group = tls
        .conn
        .negotiated_key_exchange_group()
        .map_or("none".into(), common::tls::group_name);
    let Some(kind) = tls.conn.handshake_kind() else {
        let _ = writeln!(
            out,
            "handshake failed: rustls finished it without saying its kind"
        );
        return Ok(Exit::Incomplete);
    };
    let alpn = tls
        .conn
        .alpn_protocol()
        .map_or("none".into(), |p| String::from_utf8_lossy(p).into_owned());
    let _ = writeln!(
        out,
        "negotiated: {version}, {suite}, group {group}, ALPN {alpn}, handshake {}",
        HandshakeClass::of(kind, done.saw_hrr).as_str()
    );
    let _ = writeln!(
        out,
        "handshake bytes: {} server→client, {} client→server",
        done.bytes_in, done.bytes_out
    );
    let compressed: Vec<&str> = common::cert_compression::Algorithm::ALL
        .into_iter()
        .zip(done.decompressed)
        .filter(|(_, n)| *n > 0)
        .map(|(a, _)| a.as_str())
        .collect();
    let _ = writeln!(
        out,
        "certificate compression: {}",
        if compressed.is_empty() {
            format!("none (offered: {})", opts.tls.cert_compression)
        } else {
            compressed.join(", ")
        }
    );
    let request = crate::request_head(opts, true);
    let sent = tls.write_all(&request).and_then(|()| {
        let mut left = opts.upload;
        while left > 0 {
            let chunk = common::pattern::chunk(opts.upload - left, left);
            tls.write_all(chunk)?;
            left -= chunk.len() as u64;
        }
        tls.flush()
    });
    if let Err(e) = sent {
        let _ = writeln!(out, "sending the request failed: {e}");
        return Ok(Exit::Incomplete);
    }
    let _ = writeln!(out, "response:");
    let mut response = Vec::new();
    let deadline = std::time::Instant::now() + opts.timeout.max(Duration::from_secs(1));
    let mut buf = [0u8; 16384];
    loop {
        match tls.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => {
                let _ = writeln!(out, "reading the response failed: {e}");
                return Ok(Exit::Incomplete);
            }
        }
        if std::time::Instant::now() > deadline {
            break;
        }
    }
    let _ = out.write_all(&response);
    let _ = writeln!(out);
    Ok(Exit::Ok)
}

/// The key of a certificate as a row labels it: type and size of the leaf's public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PresentedKey {
    /// RSA with a modulus of this many bits.
    Rsa(usize),
    /// ECDSA on a named curve.
    Ecdsa(Curve),
    /// Ed25519.
    Ed25519,
    /// Anything else, by the algorithm's OID (and curve OID, if any), so it is named, never
    /// mistaken for a known type.
    Other(String),
}

/// The curve of an ECDSA key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Curve {
    /// NIST P-256 (secp256r1).
    P256,
    /// NIST P-384 (secp384r1).
    P384,
    /// Another curve, by OID.
    Other(String),
}

impl PresentedKey {
    /// The key type of the same name that tlsbench generates, if it is one.
    pub fn key_type(&self) -> Option<common::certs::KeyType> {
        use common::certs::KeyType;
        match self {
            PresentedKey::Rsa(2048) => Some(KeyType::Rsa2048),
            PresentedKey::Rsa(3072) => Some(KeyType::Rsa3072),
            PresentedKey::Rsa(4096) => Some(KeyType::Rsa4096),
            PresentedKey::Ecdsa(Curve::P256) => Some(KeyType::EcdsaP256),
            PresentedKey::Ecdsa(Curve::P384) => Some(KeyType::EcdsaP384),
            PresentedKey::Ed25519 => Some(KeyType::Ed25519),
            _ => None,
        }
    }

    /// Reads the leaf's public key from its DER; an unparseable certificate is an error.
    pub fn of_leaf(der: &[u8]) -> Result<PresentedKey, String> {
        use x509_parser::oid_registry::{
            OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
            OID_SIG_ED25519,
        };
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| format!("the leaf certificate does not parse: {e}"))?;
        let spki = cert.public_key();
        let alg = &spki.algorithm.algorithm;
        if *alg == OID_PKCS1_RSAENCRYPTION {
            let bits = spki
                .parsed()
                .map_err(|e| format!("the leaf's RSA key does not parse: {e}"))?
                .key_size();
            return Ok(PresentedKey::Rsa(bits));
        }
        if *alg == OID_SIG_ED25519 {
            return Ok(PresentedKey::Ed25519);
        }
        if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok());
            return Ok(PresentedKey::Ecdsa(match curve {
                Some(c) if c == OID_EC_P256 => Curve::P256,
                Some(c) if c == OID_NIST_EC_P384 => Curve::P384,
                Some(c) => Curve::Other(c.to_id_string()),
                None => Curve::Other("(no named curve)".into()),
            }));
        }
        Ok(PresentedKey::Other(alg.to_id_string()))
    }
}

impl std::fmt::Display for PresentedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PresentedKey::Rsa(bits) => write!(f, "rsa{bits}"),
            PresentedKey::Ecdsa(Curve::P256) => f.write_str("ecdsa-p256"),
            PresentedKey::Ecdsa(Curve::P384) => f.write_str("ecdsa-p384"),
            PresentedKey::Ecdsa(Curve::Other(oid)) => write!(f, "ecdsa-{oid}"),
            PresentedKey::Ed25519 => f.write_str("ed25519"),
            PresentedKey::Other(oid) => write!(f, "key-{oid}"),
        }
    }
}

/// What one connection of [`exchange`] negotiated and got back.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// The protocol version.
    pub version: Version,
    /// The cipher suite.
    pub suite: rustls::SupportedCipherSuite,
    /// The key-exchange group (None: a resumed TLS 1.2 session, which exchanges no key).
    pub group: Option<&'static dyn rustls::crypto::SupportedKxGroup>,
    /// Full or resumed, with or without a HelloRetryRequest.
    pub class: HandshakeClass,
    /// The leaf certificate's key (None: the server presented no certificate, as when
    /// resuming).
    pub leaf: Option<PresentedKey>,
    /// The response to the request of `opts`.
    pub response: crate::response::Response,
}

/// Why [`exchange`] got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// No TCP connection, or the options were refused.
    #[error(transparent)]
    Connect(#[from] LoadError),
    /// The handshake failed (an alert, a refused certificate, a closed connection).
    #[error("handshake failed: {0}")]
    Handshake(std::io::Error),
    /// The leaf certificate the server presented could not be read.
    #[error("{0}")]
    Leaf(String),
    /// rustls finished the handshake without naming what it negotiated.
    #[error("the handshake ended without a negotiated {0}")]
    Unnegotiated(&'static str),
    /// The server negotiated a version tlsbench does not speak.
    #[error("the server negotiated {0:?}")]
    Version(rustls::ProtocolVersion),
    /// Sending the request or reading the response failed.
    #[error("{what}: {source}")]
    Io {
        /// What we were doing.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// The response could not be read.
    #[error("reading the response: {0}")]
    Response(#[from] crate::response::ResponseError),
    /// The response did not end within the timeout.
    #[error("no complete response within {0:?}")]
    Timeout(Duration),
}

/// One connection with `config`: the handshake, then `opts`'s request (method, path, upload)
/// with `Connection: close`, its response read to the end. What `tlsbench run` probes a
/// server with before measuring a row. With a session store in `config`, a second call
/// offers the session the first was given.
pub fn exchange(
    opts: &LoadOptions,
    config: Arc<rustls::ClientConfig>,
) -> Result<Exchange, ExchangeError> {
    let mut tls = connect(opts, config)?;
    let done = handshake(&mut tls).map_err(ExchangeError::Handshake)?;
    let version = tls
        .conn
        .protocol_version()
        .ok_or(ExchangeError::Unnegotiated("version"))?;
    let version = Version::from_rustls(version).ok_or(ExchangeError::Version(version))?;
    let suite = tls
        .conn
        .negotiated_cipher_suite()
        .ok_or(ExchangeError::Unnegotiated("cipher suite"))?;
    let kind = tls
        .conn
        .handshake_kind()
        .ok_or(ExchangeError::Unnegotiated("handshake kind"))?;
    let leaf = match tls.conn.peer_certificates().and_then(|c| c.first()) {
        Some(der) => Some(PresentedKey::of_leaf(der).map_err(ExchangeError::Leaf)?),
        None => None,
    };
    let group = tls.conn.negotiated_key_exchange_group();
    let io = |what| move |source| ExchangeError::Io { what, source };
    let request = crate::request_head(opts, true);
    tls.write_all(&request).map_err(io("sending the request"))?;
    let mut left = opts.upload;
    while left > 0 {
        let chunk = common::pattern::chunk(opts.upload - left, left);
        tls.write_all(chunk).map_err(io("sending the body"))?;
        left -= chunk.len() as u64;
    }
    tls.flush().map_err(io("sending the request"))?;
    let mut reader = crate::response::ResponseReader::new();
    reader.start(opts.method.eq_ignore_ascii_case("HEAD"));
    let wait = opts.timeout.max(Duration::from_secs(1));
    let deadline = std::time::Instant::now() + wait;
    let mut buf = [0u8; 16384];
    // Each pass reads at least one byte, meets EOF or fails (the socket has timeouts), and
    // the deadline bounds a server that trickles.
    let response = loop {
        let n = match tls.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(io("reading the response")(e)),
        };
        if n == 0 {
            break reader.finish_on_eof()?;
        }
        if let Some(done) = reader.feed(&buf[..n])?.done {
            break done;
        }
        if std::time::Instant::now() > deadline {
            return Err(ExchangeError::Timeout(wait));
        }
    };
    tls.conn.send_close_notify();
    // The answer is in; a failed goodbye changes nothing.
    let _ = tls.conn.write_tls(&mut tls.sock);
    Ok(Exchange {
        version,
        suite,
        group,
        class: HandshakeClass::of(kind, done.saw_hrr),
        leaf,
        response,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use common::certs::{ChainOptions, KeyType, generate};
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    #[test]
    fn the_leafs_key_is_named_as_tlsbench_names_key_types() {
        for kt in [
            KeyType::Rsa2048,
            KeyType::EcdsaP256,
            KeyType::EcdsaP384,
            KeyType::Ed25519,
        ] {
            let chain = generate(kt, &ChainOptions::default()).unwrap();
            let leaf = CertificateDer::pem_slice_iter(chain.chain_pem().as_bytes())
                .next()
                .unwrap()
                .unwrap();
            let key = PresentedKey::of_leaf(&leaf).unwrap();
            assert_eq!(key.to_string(), kt.name());
            assert_eq!(key.key_type(), Some(kt));
        }
        assert_eq!(PresentedKey::Rsa(1024).key_type(), None);
        assert_eq!(PresentedKey::Rsa(1024).to_string(), "rsa1024");
        assert!(PresentedKey::of_leaf(b"not a certificate").is_err());
    }
}
