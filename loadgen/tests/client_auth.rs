//! The load generator with client certificates against the tlsbench server requiring them:
//! ecdsa-p256 and rsa2048 identities are served, every handshake noted as asked and answered
//! on our side and accepted on the server's; each refusal is an error carrying the server's
//! alert by name, matched by the server's refusal counter; `optional` without `--cert` is
//! served and counted as none on both sides; resumed connections are not asked again and
//! still count as authenticated on the server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use common::certs::KeyType;
use loadgen::client_cert::ClientIdentity;
use loadgen::stats::LoadCounters;
use loadgen::verify::Trust;
use loadgen::{FailureKind, LoadOptions, ResumeMode, Target};
use server::client_auth::{ClientAuth, ClientCert, RefusalCause};
use server::{Server, Snapshot, TlsOptions};
use test_support::client_certs::{ClientCerts, Identity};
use test_support::{load_target, loopback};

/// A server with client auth `mode`, the load options aimed at it (TLS 1.3, verified, one
/// connection per request) and the directory of its CA file.
struct Target13 {
    server: Option<Server>,
    opts: LoadOptions,
    dir: PathBuf,
}

impl Target13 {
    fn new(ids: &ClientCerts, mode: ClientAuth) -> Target13 {
        let (server, addr) = ids.server(mode, TlsOptions::default());
        let (dir, files) = loopback::chain_files(KeyType::EcdsaP256);
        let target = Target::new(
            &format!("https://bank32.com:{}/", addr.port()),
            None,
            Some(&addr.to_string()),
        )
        .unwrap();
        let mut opts = LoadOptions::new(target, Trust::CaFile(files.ca));
        opts.tls.versions = vec![common::tls::Version::Tls13];
        opts.connections = 1;
        opts.new_conn = true;
        opts.requests = Some(6);
        Target13 {
            server: Some(server),
            opts,
            dir,
        }
    }

    fn with_identity(mut self, id: &Identity) -> Target13 {
        let provider = common::tls::provider(&[], &[]);
        self.opts.tls.client_cert =
            Some(ClientIdentity::load(&id.cert, &id.key, &provider).unwrap());
        self
    }

    fn run(&mut self) -> (LoadCounters, Snapshot) {
        let r = load_target::run(&self.opts);
        let server = self.server.take().unwrap();
        (r.measured.counters, server.stop().unwrap())
    }
}

impl Drop for Target13 {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown_handle().force();
            let _ = s.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn ecdsa_and_rsa_client_certificates_are_sent_when_asked_and_accepted() {
    let ids = ClientCerts::new();
    for id in [&ids.good_ecdsa, &ids.good_rsa] {
        let (c, s) = Target13::new(&ids, ClientAuth::Required)
            .with_identity(id)
            .run();
        assert_eq!(c.errors_total(), 0, "{c:?}");
        assert_eq!(c.requests, 6, "{c:?}");
        assert_eq!(c.handshakes(), 6, "{c:?}");
        assert_eq!((c.cert_requested, c.cert_sent), (6, 6), "{c:?}");
        assert_eq!(
            s.client_certs_of(ClientCert::Accepted),
            6,
            "{}",
            s.summary()
        );
        assert_eq!(s.client_certs_of(ClientCert::None), 0, "{}", s.summary());
    }
}

#[test]
fn each_refusal_is_an_error_with_the_servers_alert_and_its_counter() {
    let ids = ClientCerts::new();
    let cases = [
        (None, "certificate_required", RefusalCause::NoneSent),
        (Some(&ids.unknown_ca), "unknown_ca", RefusalCause::UnknownCa),
        (
            Some(&ids.expired),
            "certificate_expired",
            RefusalCause::Expired,
        ),
        (
            Some(&ids.server_only),
            "unsupported_certificate",
            RefusalCause::WrongKeyUsage,
        ),
        (
            Some(&ids.bad_signature),
            "decrypt_error",
            RefusalCause::BadSignature,
        ),
    ];
    for (id, alert, cause) in cases {
        let mut t = Target13::new(&ids, ClientAuth::Required);
        if let Some(id) = id {
            t = t.with_identity(id);
        }
        t.opts.requests = None;
        t.opts.duration = Some(Duration::from_secs(20));
        t.opts.max_errors = Some(3);
        let (c, s) = t.run();
        let errors = c.errors_of(FailureKind::TlsAlert);
        assert!(errors >= 3, "{alert}: {c:?}");
        assert_eq!(c.errors_total(), errors, "{alert}: {c:?}");
        assert_eq!(c.alerts.get(alert), Some(&errors), "{alert}: {c:?}");
        assert_eq!(c.requests, 0, "{alert}: {c:?}");
        // TLS 1.3: our side finishes its handshake before the server's verdict arrives.
        assert_eq!(c.cert_sent, if id.is_some() { c.cert_requested } else { 0 });
        assert_eq!(
            s.client_auth_refusals_of(cause),
            errors,
            "{alert}: {}",
            s.summary()
        );
        assert_eq!(
            s.client_auth_refusals.iter().sum::<u64>(),
            errors,
            "{}",
            s.summary()
        );
    }
}

#[test]
fn optional_without_a_certificate_is_served_and_counted_as_none_on_both_sides() {
    let ids = ClientCerts::new();
    let (c, s) = Target13::new(&ids, ClientAuth::Optional).run();
    assert_eq!(c.errors_total(), 0, "{c:?}");
    assert_eq!(c.requests, 6, "{c:?}");
    assert_eq!((c.cert_requested, c.cert_sent), (6, 0), "{c:?}");
    assert_eq!(s.client_certs_of(ClientCert::None), 6, "{}", s.summary());
    assert_eq!(
        s.client_certs_of(ClientCert::Accepted),
        0,
        "{}",
        s.summary()
    );
}

#[test]
fn resumed_connections_are_not_asked_again_yet_stay_authenticated() {
    let ids = ClientCerts::new();
    let mut t = Target13::new(&ids, ClientAuth::Required).with_identity(&ids.good_ecdsa);
    t.opts.tls.resume = ResumeMode::Ticket;
    t.opts.resume_ratio = 1.0;
    let (c, s) = t.run();
    assert_eq!(c.errors_total(), 0, "{c:?}");
    assert!(c.resumed > 0, "{c:?}");
    // Only full handshakes carry a CertificateRequest; a resumption authenticates by the
    // identity the server stored in its ticket.
    assert_eq!(c.cert_requested, c.full, "{c:?}");
    assert_eq!(c.cert_sent, c.full, "{c:?}");
    assert_eq!(
        s.client_certs_of(ClientCert::Accepted),
        c.handshakes(),
        "{}",
        s.summary()
    );
    assert_eq!(
        s.handshakes_of("1.3", "resumed"),
        c.resumed,
        "{}",
        s.summary()
    );
}

#[test]
fn the_summary_and_the_json_show_what_the_server_asked_and_what_was_sent() {
    let ids = ClientCerts::new();
    let t = Target13::new(&ids, ClientAuth::Required).with_identity(&ids.good_rsa);
    let r = load_target::run(&t.opts);
    let doc = loadgen::report::document(&t.opts, &r, vec!["load".into()]);
    let human = loadgen::report::human(&t.opts, &doc);
    assert!(
        human.contains("client certificates: the server asked on 6 handshakes, we sent one on 6"),
        "{human}"
    );
    let json = serde_json::to_value(&doc).unwrap();
    assert_eq!(json["results"]["counts"]["cert_requested"], 6, "{json}");
    assert_eq!(json["results"]["counts"]["cert_sent"], 6, "{json}");
}
