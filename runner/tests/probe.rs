//! The probe `tlsbench run` sends before each row, against servers that cannot honour a row
//! (our server started without a group, without resumption, asked for a body it refuses, a
//! plain-HTTP port) and against a real nginx, where the TLS 1.2 ECDSA row of the standard
//! matrix completes because the certificate's curve is offered.

#![allow(clippy::unwrap_used, clippy::expect_used)]

// Main's test-support crate holds these as `test_support::{nginx, load_target}`; included by
// path until this branch meets it (the only lines to change, with a dev-dependency).
use test_support::{load_target as server_support, nginx};

use std::sync::atomic::AtomicBool;

use common::certs::{self, ChainOptions, KeyType};
use common::tls::Version;
use loadgen::oneshot::{Curve, PresentedKey};
use loadgen::verify::Trust;
use loadgen::{LoadOptions, Target};
use runner::probe::{Probe, RowProbe, probe, probe_row};
use runner::scenario::{Matrix, STANDARD, Scenario};
use server::{Resumption, Settings, TlsOptions};
use server_support::TestServer;

/// The scenario named `name` of the standard matrix.
fn standard(name: &str) -> Scenario {
    Matrix::parse(STANDARD)
        .unwrap()
        .scenarios
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no scenario '{name}' in the standard matrix"))
}

/// The one scenario of a matrix holding only `toml`.
fn scenario(toml: &str) -> Scenario {
    Matrix::parse(&format!("[[scenario]]\nname = \"row\"\n{toml}"))
        .unwrap()
        .scenarios
        .remove(0)
}

/// The row's own load options, aimed at `port` on loopback and verified with `ca`.
fn options(s: &Scenario, port: u16, ca: &std::path::Path) -> LoadOptions {
    let target = Target::new(
        &format!("https://bank32.com:{port}/"),
        None,
        Some(&format!("127.0.0.1:{port}")),
    )
    .unwrap();
    runner::client_options(s, &target, Trust::CaFile(ca.to_owned()))
}

fn server(tls: TlsOptions, settings: Settings) -> TestServer {
    let chain = certs::generate(KeyType::EcdsaP256, &ChainOptions::default()).unwrap();
    TestServer::start_tls(tls, 1, chain, settings)
}

fn skip_reason(s: &Scenario, srv: &TestServer) -> String {
    match probe(s, &options(s, srv.port(), &srv.ca_file)).unwrap() {
        Probe::Skip(why) => why,
        honoured => panic!("'{}' should be skipped, got {honoured:?}", s.name),
    }
}

#[test]
fn a_server_without_the_rows_group_skips_it_naming_the_group() {
    let x25519 = common::tls::parse_groups(&["X25519".into()]).unwrap();
    let srv = server(
        TlsOptions {
            groups: x25519,
            ..TlsOptions::default()
        },
        Settings::default(),
    );
    let s = standard("full tls1.3 x25519mlkem768 ecdsa-p256");
    let why = skip_reason(&s, &srv);
    assert!(
        why.starts_with("the server offers none of the groups X25519MLKEM768"),
        "{why}"
    );
    // The same server honours the X25519 row, and says which certificate it presented.
    let s = standard("full tls1.3 x25519 ecdsa-p256");
    assert_eq!(
        probe(&s, &options(&s, srv.port(), &srv.ca_file)).unwrap(),
        Probe::Honoured {
            presented: PresentedKey::Ecdsa(Curve::P256)
        }
    );
}

#[test]
fn a_missing_suite_or_version_or_a_group_the_server_prefers_is_named() {
    let aes256 = common::tls::parse_suites(&["TLS_AES_256_GCM_SHA384".into()]).unwrap();
    let srv = server(
        TlsOptions {
            suites: aes256,
            ..TlsOptions::default()
        },
        Settings::default(),
    );
    let why = skip_reason(&standard("download tls1.3 aes-128-gcm"), &srv);
    assert_eq!(
        why,
        "the server accepts none of the suites TLS_AES_128_GCM_SHA256 (it chose \
         TLS_AES_256_GCM_SHA384 when offered all)"
    );

    let srv = server(
        TlsOptions {
            versions: vec![Version::Tls13],
            ..TlsOptions::default()
        },
        Settings::default(),
    );
    let why = skip_reason(&standard("full tls1.2 x25519 ecdsa-p256"), &srv);
    assert_eq!(
        why,
        "the server does not speak TLS 1.2 (it chose TLS 1.3 when offered 1.2 and 1.3)"
    );

    // The TLS 1.2 ECDSA row offers secp256r1 after X25519; a server with only the curve
    // picks it, which is not the row's exchange.
    let p256 = common::tls::parse_groups(&["secp256r1".into()]).unwrap();
    let srv = server(
        TlsOptions {
            groups: p256,
            ..TlsOptions::default()
        },
        Settings::default(),
    );
    let why = skip_reason(&standard("full tls1.2 x25519 ecdsa-p256"), &srv);
    assert_eq!(why, "the server chose the group secp256r1, not X25519");
}

#[test]
fn a_server_without_resumption_skips_resumed_rows() {
    let srv = server(
        TlsOptions {
            resumption: Resumption::Off,
            ..TlsOptions::default()
        },
        Settings::default(),
    );
    for name in [
        "resumed tls1.3 tickets",
        "resumed tls1.2 session-id",
        "resumed tls1.2 tickets",
    ] {
        let why = skip_reason(&standard(name), &srv);
        assert_eq!(
            why, "no session resumption: second connection was a full handshake",
            "{name}"
        );
    }
    // A full-handshake row needs no resumption.
    let s = standard("full tls1.2 x25519 ecdsa-p256");
    assert!(matches!(
        probe(&s, &options(&s, srv.port(), &srv.ca_file)).unwrap(),
        Probe::Honoured { .. }
    ));
}

#[test]
fn a_route_the_server_refuses_skips_the_row_with_the_status() {
    let mut settings = Settings::default();
    settings.limits.max_bytes = 1000;
    let srv = server(TlsOptions::default(), settings);
    let s = scenario("kind = \"throughput\"\ntls = \"1.3\"\ndownload = 1048576\nconnections = 1\n");
    assert_eq!(skip_reason(&s, &srv), "GET /bytes/1048576: 400");
    for body in ["download = 1000", "upload = 1048576"] {
        let s = scenario(&format!(
            "kind = \"throughput\"\ntls = \"1.3\"\n{body}\nconnections = 1\n"
        ));
        assert!(
            matches!(
                probe(&s, &options(&s, srv.port(), &srv.ca_file)).unwrap(),
                Probe::Honoured { .. }
            ),
            "{body}"
        );
    }
}

#[test]
fn a_plain_http_port_fails_the_handshake_and_skips_every_tls_row() {
    let srv = server(TlsOptions::default(), Settings::default());
    let plain = srv.server.as_ref().unwrap().plain_addrs()[0].port();
    let s = standard("keep-alive hello");
    match probe(&s, &options(&s, plain, &srv.ca_file)).unwrap() {
        Probe::Skip(why) => assert!(why.starts_with("handshake failed: "), "{why}"),
        honoured => panic!("a plain port cannot honour TLS: {honoured:?}"),
    }
}

#[test]
fn a_foreign_servers_row_is_skipped_but_our_own_failing_its_row_is_an_error() {
    let srv = server(
        TlsOptions {
            resumption: Resumption::Off,
            ..TlsOptions::default()
        },
        Settings::default(),
    );
    let s = standard("resumed tls1.3 tickets");
    let opts = options(&s, srv.port(), &srv.ca_file);
    match probe_row(&s, &opts, true).unwrap() {
        RowProbe::Skip(row) => {
            assert_eq!(row.name, s.name);
            assert!(row.reason.contains("no session resumption"), "{row:?}");
        }
        run => panic!("a foreign row it cannot honour is skipped: {run:?}"),
    }
    let err = probe_row(&s, &opts, false).unwrap_err().to_string();
    assert!(
        err.contains("our own server does not honour it: no session resumption"),
        "{err}"
    );
}

#[test]
fn against_nginx_the_tls12_ecdsa_row_completes_with_the_certificates_curve_offered() {
    let dir = std::env::temp_dir().join(format!("tlsbench-probe-nginx-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let chain = certs::generate(KeyType::EcdsaP256, &ChainOptions::default()).unwrap();
    let paths = certs::write(&dir, &chain).unwrap();
    let nginx = nginx::Nginx::start(&paths.chain, &paths.key, &nginx::NginxOptions::default());
    let s = standard("full tls1.2 x25519 ecdsa-p256");
    let opts = options(&s, nginx.port(), &paths.ca);
    assert_eq!(
        probe(&s, &opts).unwrap(),
        Probe::Honoured {
            presented: PresentedKey::Ecdsa(Curve::P256)
        },
        "{}",
        nginx.error_log()
    );
    let mut run = opts.clone();
    run.connections = 2;
    run.requests = Some(50);
    let r = loadgen::run(&run, &mut loadgen::Quiet, &AtomicBool::new(false)).unwrap();
    assert!(r.incomplete.is_none(), "{:?}", r.incomplete);
    assert_eq!(r.measured.counters.errors_total(), 0);
    assert_eq!(r.measured.counters.requests, 50);
    assert_eq!(opts.tls.versions, [Version::Tls12]);

    // Without the curve, OpenSSL refuses the P-256 certificate, and the probe says why.
    let mut x25519_only = opts.clone();
    x25519_only.tls.groups = s.kx_groups.clone();
    match probe(&s, &x25519_only).unwrap() {
        Probe::Skip(why) => assert!(
            why.starts_with("the server presents an ecdsa-p256 certificate, which a TLS 1.2"),
            "{why}"
        ),
        honoured => panic!("OpenSSL serves P-256 only when the curve is offered: {honoured:?}"),
    }

    // What this nginx (OpenSSL 3.0, no /bytes or /sink) cannot honour is skipped, each
    // with what it lacks.
    let skip = |name: &str| match probe(
        &standard(name),
        &options(&standard(name), nginx.port(), &paths.ca),
    )
    .unwrap()
    {
        Probe::Skip(why) => why,
        honoured => panic!("'{name}' against nginx: {honoured:?}"),
    };
    let why = skip("download tls1.3 aes-128-gcm");
    assert_eq!(why, "GET /bytes/1048576: 404");
    let why = skip("upload tls1.3 aes-128-gcm");
    assert!(why.starts_with("POST /sink: 4"), "{why}");
    if !openssl_has_mlkem() {
        let why = skip("full tls1.3 x25519mlkem768 ecdsa-p256");
        assert!(
            why.starts_with("the server offers none of the groups X25519MLKEM768"),
            "{why}"
        );
    }
    drop(nginx);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whether the installed OpenSSL (which nginx links) offers ML-KEM (3.5 and later).
fn openssl_has_mlkem() -> bool {
    let out = std::process::Command::new("openssl")
        .arg("version")
        .output()
        .expect("openssl version");
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.split_whitespace().nth(1).unwrap_or("0");
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (3, 5)
}
