//! `tlsbench load URL -n 1 -v`: a TLS client that shows one connection step by step: each
//! certificate of the chain with subject, issuer and validity, the verdict on chain and name,
//! the negotiated version, suite and group, the handshake's kind (full or resumed, with or
//! without a HelloRetryRequest) and its TLS bytes each way, then the response.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

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
                .set_certificate_verifier(InsecureVerifier::new(&common::tls::provider(
                    &opts.tls.suites,
                    &opts.tls.groups,
                )));
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
