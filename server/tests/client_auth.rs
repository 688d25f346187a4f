//! Mutual TLS against real clients: curl `--cert/--key` and `openssl s_client -cert -key`
//! succeed with ecdsa-p256 and rsa2048 client certificates; each refusal (none sent, unknown
//! CA, expired, serverAuth only, a signature that does not verify) reaches them as its alert and is counted by cause; `optional`
//! serves a client without a certificate and counts it as none; a resumed TLS 1.3 session
//! still carries the client's identity.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::certs::{self, KeyType};
use rustls::version::TLS13;
use rustls::{ClientConfig, HandshakeKind, RootCertStore};
use server::client_auth::{ClientAuth, ClientCert, RefusalCause};
use server::{Server, Snapshot, TlsOptions};
use test_support::client_certs::{ClientCerts, Identity};
use test_support::loopback;
use test_support::process::{Captured, Ran, run_bounded};

/// A client process that has not exited after this is killed and the test fails.
const CLIENT_LIMIT: Duration = Duration::from_secs(30);
/// How long the server's counters may take to settle once the clients are done.
const SETTLE: Duration = Duration::from_secs(10);

/// A server force-stopped on drop, so a failed assertion leaves no worker behind.
struct Running(Option<Server>);

impl Running {
    fn new(certs: &ClientCerts, mode: ClientAuth) -> (Running, u16) {
        let (server, addr) = certs.server(mode, TlsOptions::default());
        (Running(Some(server)), addr.port())
    }

    /// The counters once `conns` connections were accepted and closed.
    fn settled(&self, conns: u64) -> Snapshot {
        let server = self.0.as_ref().unwrap();
        let ok = loopback::wait_for(server, SETTLE, |s| s.accepted == conns && s.closed == conns);
        let snap = server.stats().snapshot();
        assert!(ok, "{conns} connections not settled:\n{}", snap.summary());
        snap
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.0.take() {
            s.shutdown_handle().force();
            let _ = s.wait();
        }
    }
}

fn curl(port: u16, ca: &Path, id: Option<&Identity>) -> Ran {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--fail", "--max-time", "20", "--cacert"])
        .arg(ca)
        .args(["--resolve", &format!("bank32.com:{port}:127.0.0.1")]);
    if let Some(id) = id {
        cmd.arg("--cert").arg(&id.cert).arg("--key").arg(&id.key);
    }
    cmd.arg(format!("https://bank32.com:{port}/"));
    run_bounded(cmd, CLIENT_LIMIT)
}

fn s_client(port: u16, ca: &Path, id: Option<&Identity>) -> Ran {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args([
            "-servername",
            "bank32.com",
            "-verify_return_error",
            "-ign_eof",
        ])
        .arg("-CAfile")
        .arg(ca);
    if let Some(id) = id {
        cmd.arg("-cert").arg(&id.cert).arg("-key").arg(&id.key);
    }
    Captured::start_with_stdin(
        cmd,
        b"GET / HTTP/1.1\r\nHost: bank32.com\r\nConnection: close\r\n\r\n",
    )
    .wait(CLIENT_LIMIT)
}

#[test]
fn curl_and_openssl_with_an_ecdsa_or_rsa_client_certificate_are_served() {
    let ids = ClientCerts::new();
    let (srv, port) = Running::new(&ids, ClientAuth::Required);
    let (dir, server_files) = loopback::chain_files(KeyType::EcdsaP256);
    for id in [&ids.good_ecdsa, &ids.good_rsa] {
        let ran = curl(port, &server_files.ca, Some(id));
        assert!(ran.status.success(), "{}", ran.describe());
        assert_eq!(ran.stdout.as_bytes(), server::http::HELLO_PAGE);
        let ran = s_client(port, &server_files.ca, Some(id));
        assert!(ran.status.success(), "{}", ran.describe());
        assert!(ran.stdout.contains("HTTP/1.1 200 OK"), "{}", ran.describe());
    }
    let s = srv.settled(4);
    assert_eq!(
        s.client_certs_of(ClientCert::Accepted),
        4,
        "{}",
        s.summary()
    );
    assert_eq!(s.client_certs_of(ClientCert::None), 0, "{}", s.summary());
    assert_eq!(s.client_auth_refusals.iter().sum::<u64>(), 0);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn each_refusal_reaches_curl_and_openssl_as_its_alert_and_is_counted_by_cause() {
    let ids = ClientCerts::new();
    let (srv, port) = Running::new(&ids, ClientAuth::Required);
    let (dir, server_files) = loopback::chain_files(KeyType::EcdsaP256);
    let cases = [
        (None, RefusalCause::NoneSent, "alert certificate required"),
        (
            Some(&ids.unknown_ca),
            RefusalCause::UnknownCa,
            "alert unknown ca",
        ),
        (
            Some(&ids.expired),
            RefusalCause::Expired,
            "alert certificate expired",
        ),
        (
            Some(&ids.server_only),
            RefusalCause::WrongKeyUsage,
            "alert unsupported certificate",
        ),
        (
            Some(&ids.bad_signature),
            RefusalCause::BadSignature,
            "alert decrypt error",
        ),
    ];
    for (n, (id, cause, alert)) in cases.iter().enumerate() {
        let ran = curl(port, &server_files.ca, *id);
        assert!(!ran.status.success(), "{cause:?}: {}", ran.describe());
        assert!(ran.stderr.contains(alert), "{cause:?}: {}", ran.describe());
        let ran = s_client(port, &server_files.ca, *id);
        let both = format!("{}{}", ran.stdout, ran.stderr);
        assert!(both.contains(alert), "{cause:?}: {}", ran.describe());
        assert!(
            !both.contains("HTTP/1.1 200"),
            "{cause:?}: {}",
            ran.describe()
        );
        let s = srv.settled(2 * (n as u64 + 1));
        assert_eq!(s.client_auth_refusals_of(*cause), 2, "{}", s.summary());
    }
    let s = srv.settled(10);
    assert_eq!(
        s.client_auth_refusals.iter().sum::<u64>(),
        10,
        "{}",
        s.summary()
    );
    assert_eq!(s.failures_total(), 10, "{}", s.summary());
    assert_eq!(s.handshakes_total(), 0, "{}", s.summary());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn optional_serves_a_client_without_a_certificate_and_counts_it_as_none() {
    let ids = ClientCerts::new();
    let (srv, port) = Running::new(&ids, ClientAuth::Optional);
    let (dir, server_files) = loopback::chain_files(KeyType::EcdsaP256);
    let ran = curl(port, &server_files.ca, None);
    assert!(ran.status.success(), "{}", ran.describe());
    let ran = curl(port, &server_files.ca, Some(&ids.good_ecdsa));
    assert!(ran.status.success(), "{}", ran.describe());
    // A bad certificate is still refused when certificates are optional.
    let ran = curl(port, &server_files.ca, Some(&ids.expired));
    assert!(!ran.status.success(), "{}", ran.describe());
    let s = srv.settled(3);
    assert_eq!(s.client_certs_of(ClientCert::None), 1, "{}", s.summary());
    assert_eq!(
        s.client_certs_of(ClientCert::Accepted),
        1,
        "{}",
        s.summary()
    );
    assert_eq!(
        s.client_auth_refusals_of(RefusalCause::Expired),
        1,
        "{}",
        s.summary()
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_resumed_tls13_session_still_carries_the_client_certificate() {
    let ids = ClientCerts::new();
    let (srv, _) = Running::new(&ids, ClientAuth::Required);
    let addr = srv.0.as_ref().unwrap().local_addrs()[0];
    let mut roots = RootCertStore::empty();
    for c in loopback::pem_certs(&loopback::chain(KeyType::EcdsaP256).root_pem) {
        roots.add(c).unwrap();
    }
    let cfg = ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[&TLS13])
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(
        certs::load_certs(&ids.good_ecdsa.cert).unwrap(),
        certs::load_private_key(&ids.good_ecdsa.key).unwrap(),
    )
    .unwrap();
    let cfg = Arc::new(cfg);
    let (first, head, _) = loopback::get(addr, &cfg, "/");
    assert_eq!(first, HandshakeKind::Full);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut tls = loopback::connect(addr, &cfg);
    assert_eq!(loopback::kind(&tls), HandshakeKind::Resumed);
    write!(
        tls,
        "GET / HTTP/1.1\r\nHost: bank32.com\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let (head, _) = loopback::read_response(&mut tls);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    drop(tls);
    let s = srv.settled(2);
    assert_eq!(s.handshakes_of("1.3", "resumed"), 1, "{}", s.summary());
    // rustls keeps the client's chain in the TLS 1.3 ticket and restores it on resumption
    // (no CertificateRequest is sent then), so the resumed connection is still authenticated.
    assert_eq!(
        s.client_certs_of(ClientCert::Accepted),
        2,
        "{}",
        s.summary()
    );
}
