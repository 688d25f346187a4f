//! Unit tests of `tlsbench server`'s command line: every flag's round trip and defaults, and
//! refusals by name (a provider lacking a group or its feature, client-auth CAs, admin
//! addresses).

use std::ffi::OsString;
use std::time::Duration;

use super::{ClientAuthOptions, Provider, ServerArgs, parse_admin_addr};
use crate::client_auth::ClientAuth;
use crate::config::Resumption;
use common::certs::KeyType;

/// A provider other than the default, where the build has one.
#[cfg(feature = "ring")]
const CHANGED_PROVIDER: Provider = Provider::Ring;
#[cfg(not(feature = "ring"))]
const CHANGED_PROVIDER: Provider = Provider::AwsLcRs;

#[cfg(feature = "ring")]
#[test]
fn ring_with_a_group_it_lacks_is_refused_naming_both() {
    let a = ServerArgs::try_parse_from([
        "server",
        "--provider",
        "ring",
        "--kx-groups",
        "X25519,X25519MLKEM768",
    ])
    .unwrap();
    assert_eq!(a.provider, Provider::Ring);
    let err = a.tls_options().unwrap_err().to_string();
    assert!(
        err.contains("the ring provider has no key-exchange group X25519MLKEM768"),
        "{err}"
    );
    let ok = ServerArgs::try_parse_from(["server", "--provider", "ring"]).unwrap();
    assert_eq!(ok.tls_options().unwrap().provider, Provider::Ring);
}

#[cfg(not(feature = "ring"))]
#[test]
fn ring_without_its_feature_is_refused_naming_the_feature() {
    let err = ServerArgs::try_parse_from(["server", "--provider", "ring"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("cargo feature `ring`"), "{err}");
}

fn round_trip(a: &ServerArgs) -> ServerArgs {
    let mut line: Vec<OsString> = vec!["server".into()];
    line.extend(a.to_args());
    ServerArgs::try_parse_from(line).unwrap()
}

#[test]
fn timeouts_take_a_bare_number_of_seconds() {
    let a = ServerArgs::try_parse_from([
        "server",
        "--handshake-timeout",
        "2",
        "--keepalive-timeout",
        "0.5",
        "--send-timeout",
        "1m",
    ])
    .unwrap();
    assert_eq!(a.handshake_timeout, Duration::from_secs(2));
    assert_eq!(a.keepalive_timeout, Duration::from_millis(500));
    assert_eq!(a.send_timeout, Duration::from_secs(60));
    assert!(ServerArgs::try_parse_from(["server", "--header-timeout", "-1"]).is_err());
}

#[test]
fn defaults_and_every_changed_field_round_trip() {
    let d = ServerArgs::default();
    assert_eq!(d.cert_type, KeyType::EcdsaP256);
    assert_eq!(d.handshake_timeout, Duration::from_secs(60));
    assert_eq!(round_trip(&d), d);

    let changed = ServerArgs {
        listen: "[::1]:0".parse().unwrap(),
        plain_listen: Some("127.0.0.1:0".parse().unwrap()),
        threads: Some(3),
        backlog: 7,
        tls_versions: "1.2".into(),
        provider: CHANGED_PROVIDER,
        cipher_suites: vec![
            "TLS_AES_256_GCM_SHA384".into(),
            "TLS_AES_128_GCM_SHA256".into(),
        ],
        kx_groups: vec!["X25519".into(), "secp256r1".into()],
        cert_type: KeyType::Rsa3072,
        certs_dir: "/tmp/-odd dir,with=signs".into(),
        cert: None,
        key: None,
        resumption: Resumption::Stateful,
        client_auth: ClientAuth::Required,
        client_ca: Some("/tmp/client ca.pem".into()),
        session_cache: 11,
        tls13_tickets: 0,
        early_data: 16384,
        max_fragment: Some(512),
        alpn: vec!["h2".into(), "http/1.1".into()],
        keylog: Some("/tmp/keys.log".into()),
        cert_compression: "zlib,brotli".parse().unwrap(),
        admin: Some("127.0.0.1:0".parse().unwrap()),
        pin_cpus: Some(common::cpu::CpuList(vec![0, 2])),
        max_connections: Some(99),
        handshake_timeout: Duration::from_millis(1500),
        header_timeout: Duration::from_secs(5),
        body_timeout: Duration::from_secs(6),
        keepalive_timeout: Duration::from_secs(90),
        send_timeout: Duration::from_millis(250),
        shutdown_timeout: Duration::ZERO,
        max_request_line: 100,
        max_header_bytes: 200,
        max_headers: 3,
        max_body: 4,
        max_bytes: 5,
    };
    // Every field must differ from its default, or the round trip would not prove it is
    // emitted; the destructuring has no `..`, so a new field fails to compile here until
    // it is added. (cert and key conflict with cert_type: `by_path` below covers them.)
    let ServerArgs {
        listen,
        plain_listen,
        threads,
        backlog,
        tls_versions,
        provider,
        cipher_suites,
        kx_groups,
        cert_type,
        certs_dir,
        resumption,
        client_auth,
        client_ca,
        session_cache,
        tls13_tickets,
        early_data,
        max_fragment,
        alpn,
        keylog,
        cert_compression,
        admin,
        pin_cpus,
        max_connections,
        handshake_timeout,
        header_timeout,
        body_timeout,
        keepalive_timeout,
        send_timeout,
        shutdown_timeout,
        max_request_line,
        max_header_bytes,
        max_headers,
        max_body,
        max_bytes,
        cert: _,
        key: _,
    } = &changed;
    assert_ne!(listen, &d.listen, "listen");
    assert_ne!(plain_listen, &d.plain_listen, "plain_listen");
    assert_ne!(threads, &d.threads, "threads");
    assert_ne!(backlog, &d.backlog, "backlog");
    assert_ne!(tls_versions, &d.tls_versions, "tls_versions");
    #[cfg(feature = "ring")]
    assert_ne!(provider, &d.provider, "provider");
    // Without ring there is no other provider to change to.
    #[cfg(not(feature = "ring"))]
    let _ = provider;
    assert_ne!(cipher_suites, &d.cipher_suites, "cipher_suites");
    assert_ne!(kx_groups, &d.kx_groups, "kx_groups");
    assert_ne!(cert_type, &d.cert_type, "cert_type");
    assert_ne!(certs_dir, &d.certs_dir, "certs_dir");
    assert_ne!(resumption, &d.resumption, "resumption");
    assert_ne!(client_auth, &d.client_auth, "client_auth");
    assert_ne!(client_ca, &d.client_ca, "client_ca");
    assert_ne!(session_cache, &d.session_cache, "session_cache");
    assert_ne!(tls13_tickets, &d.tls13_tickets, "tls13_tickets");
    assert_ne!(early_data, &d.early_data, "early_data");
    assert_ne!(max_fragment, &d.max_fragment, "max_fragment");
    assert_ne!(alpn, &d.alpn, "alpn");
    assert_ne!(keylog, &d.keylog, "keylog");
    assert_ne!(cert_compression, &d.cert_compression, "cert_compression");
    assert_ne!(admin, &d.admin, "admin");
    assert_ne!(pin_cpus, &d.pin_cpus, "pin_cpus");
    assert_ne!(max_connections, &d.max_connections, "max_connections");
    assert_ne!(handshake_timeout, &d.handshake_timeout, "handshake_timeout");
    assert_ne!(header_timeout, &d.header_timeout, "header_timeout");
    assert_ne!(body_timeout, &d.body_timeout, "body_timeout");
    assert_ne!(keepalive_timeout, &d.keepalive_timeout, "keepalive_timeout");
    assert_ne!(send_timeout, &d.send_timeout, "send_timeout");
    assert_ne!(shutdown_timeout, &d.shutdown_timeout, "shutdown_timeout");
    assert_ne!(max_request_line, &d.max_request_line, "max_request_line");
    assert_ne!(max_header_bytes, &d.max_header_bytes, "max_header_bytes");
    assert_ne!(max_headers, &d.max_headers, "max_headers");
    assert_ne!(max_body, &d.max_body, "max_body");
    assert_ne!(max_bytes, &d.max_bytes, "max_bytes");
    assert_eq!(round_trip(&changed), changed);

    let by_path = ServerArgs {
        cert: Some("/tmp/chain.pem".into()),
        key: Some("/tmp/key.pem".into()),
        alpn: vec![String::new()],
        ..ServerArgs::default()
    };
    assert_eq!(round_trip(&by_path), by_path);
}

#[test]
fn client_auth_reads_its_cas_and_refuses_a_ca_without_it() {
    let dir = test_support::temp_dir("server-client-ca");
    let client =
        common::certs::generate_client(KeyType::EcdsaP256, &common::certs::ChainOptions::default())
            .unwrap();
    let written = common::certs::write_client(&dir, &client).unwrap();
    let args = |auth: &str, ca: Option<&std::path::Path>| {
        let mut line: Vec<OsString> = vec!["server".into(), format!("--client-auth={auth}").into()];
        if let Some(ca) = ca {
            let mut flag = OsString::from("--client-ca=");
            flag.push(ca);
            line.push(flag);
        }
        ServerArgs::try_parse_from(line).unwrap()
    };
    let opts = args("required", Some(&written.ca)).tls_options().unwrap();
    assert_eq!(opts.client_auth.mode, ClientAuth::Required);
    assert_eq!(opts.client_auth.roots.len(), 1);
    assert_eq!(opts.client_auth.sources, std::slice::from_ref(&written.ca));
    let err = args("off", Some(&written.ca)).tls_options().unwrap_err();
    assert!(err.to_string().contains("needs --client-auth"), "{err}");
    let err = args("optional", Some(&dir.join("absent.pem")))
        .tls_options()
        .unwrap_err();
    assert!(err.to_string().contains("absent.pem"), "{err}");
    assert!(ServerArgs::try_parse_from(["server", "--client-auth", "sometimes"]).is_err());
    assert_eq!(
        args("off", None).tls_options().unwrap().client_auth,
        ClientAuthOptions::default()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn admin_port_alone_binds_loopback_and_addresses_are_exact() {
    assert_eq!(
        parse_admin_addr("9090").ok(),
        Some("127.0.0.1:9090".parse().unwrap())
    );
    assert_eq!(
        parse_admin_addr("[::1]:0").ok(),
        Some("[::1]:0".parse().unwrap())
    );
    assert_eq!(
        parse_admin_addr("0.0.0.0:9090").ok(),
        Some("0.0.0.0:9090".parse().unwrap())
    );
    let err = parse_admin_addr("localhost:x").unwrap_err();
    assert!(err.contains("PORT or ADDR:PORT"), "{err}");
}
