//! Tests of `scenario`.

#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn the_standard_matrix_parses_and_covers_the_issue() {
    let m = Matrix::parse(STANDARD).unwrap();
    let count = |k: RowKind| m.scenarios.iter().filter(|s| s.kind == k).count();
    assert_eq!(count(RowKind::Handshake), 16);
    let early: Vec<&str> = m
        .scenarios
        .iter()
        .filter(|s| s.early_data)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(early, ["resumed tls1.3 0-rtt"]);
    let mutual = |name: &str| {
        m.scenarios
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.mutual)
            .map(|m| (m.mode, m.cert))
    };
    for (name, kt) in [
        (
            "full tls1.3 x25519 ecdsa-p256 mtls ecdsa-p256",
            KeyType::EcdsaP256,
        ),
        (
            "full tls1.3 x25519 ecdsa-p256 mtls rsa2048",
            KeyType::Rsa2048,
        ),
        ("resumed tls1.3 ticket mtls ecdsa-p256", KeyType::EcdsaP256),
    ] {
        assert_eq!(
            mutual(name),
            Some((ClientAuth::Required, Some(kt))),
            "{name}"
        );
    }
    // Stateful TLS 1.3 resumption both with rustls's two tickets and with one.
    let tickets = |name: &str| {
        m.scenarios
            .iter()
            .find(|s| s.name == name)
            .map(|s| (s.server_resumption, s.tls13_tickets))
    };
    assert_eq!(
        tickets("resumed tls1.3 stateful"),
        Some((Resumption::Stateful, None))
    );
    assert_eq!(
        tickets("resumed tls1.3 stateful, 1 ticket"),
        Some((Resumption::Stateful, Some(1)))
    );
    assert_eq!(count(RowKind::Requests), 2);
    assert_eq!(count(RowKind::Throughput), 10);
    let floors: Vec<&str> = m
        .scenarios
        .iter()
        .filter(|s| s.plain)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        floors,
        [
            "floor: new connection, plain HTTP",
            "floor: keep-alive plain",
            "floor: download plain",
            "floor: upload plain"
        ]
    );
    // Every TLS row of the standard matrix has its floor.
    let rows: Vec<crate::results::Row> = m
        .scenarios
        .iter()
        .map(|s| crate::results::tests_support::row(&s.name, s.kind))
        .collect();
    let mut with_cost = rows.clone();
    crate::floor::apply(&m, &mut with_cost);
    for (s, row) in m.scenarios.iter().zip(&with_cost) {
        match &row.tls_cost {
            None => assert!(s.plain, "{}: no TLS cost", s.name),
            Some(c) => assert!(c.us.is_some(), "{}: {:?}", s.name, c.missing),
        }
    }
    assert_eq!(
        m.timing(true),
        (Duration::from_secs(2), Duration::from_millis(500))
    );
    assert_eq!(
        m.timing(false),
        (Duration::from_secs(8), Duration::from_secs(2))
    );
    let s = m
        .scenarios
        .iter()
        .find(|s| s.name == "resumed tls1.2 session-id")
        .unwrap();
    assert_eq!(s.tls, vec![Version::Tls12]);
    assert_eq!(s.resume, ResumeMode::SessionId);
    assert_eq!(s.server_resumption, Resumption::Stateful);
    assert!(s.resumes());
    let up = m
        .scenarios
        .iter()
        .find(|s| s.name == "upload tls1.3 aes-128-gcm")
        .unwrap();
    assert_eq!(up.body, Some(Body::Upload(1 << 20)));
    assert_eq!(up.connections, 4);
    assert_eq!(
        tls::suite_name(up.cipher_suites[0]),
        "TLS_AES_128_GCM_SHA256"
    );
}

#[test]
fn a_scenario_becomes_the_servers_typed_flags() {
    let m = Matrix::parse(
        "[[scenario]]\nname = \"a\"\nkind = \"handshake\"\ntls = \"1.2\"\ncert = \"rsa2048\"\n\
         kx_groups = [\"X25519\"]\ncipher_suites = [\"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\"]\n\
         server_resumption = \"tickets\"\n",
    )
    .unwrap();
    let a = m.scenarios[0].server_args(Path::new("/c"), &[2, 3]);
    let mut line: Vec<std::ffi::OsString> = vec!["server".into()];
    line.extend(a.to_args());
    let back = ServerArgs::try_parse_from(line).unwrap();
    assert_eq!(back, a);
    assert_eq!(back.threads, Some(2));
    assert_eq!(back.pin_cpus, Some(common::cpu::CpuList(vec![2, 3])));
    assert_eq!(back.cert_type, KeyType::Rsa2048);
    assert_eq!(back.resumption, Resumption::Tickets);
    assert_eq!(back.tls_options().unwrap().versions, vec![Version::Tls12]);
    assert_eq!(back.kx_groups, vec!["X25519".to_owned()]);
    assert_eq!(
        back.cipher_suites,
        vec!["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".to_owned()]
    );
}

#[test]
fn the_provider_defaults_to_aws_lc_rs_and_an_unknown_one_is_refused() {
    let m = Matrix::parse(BASE).unwrap();
    assert_eq!(m.scenarios[0].provider, Provider::AwsLcRs);
    let e = refused("provider = \"openssl\"");
    assert!(
        e.contains("scenario 'a'") && e.contains("field `provider`") && e.contains("openssl"),
        "{e}"
    );
    // The plain floor row has no TLS, hence no provider to choose.
    #[cfg(feature = "ring")]
    {
        let e = Matrix::parse(&format!("{}provider = \"ring\"\n", with("tls", "\"none\"")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("field `provider`") && e.contains("plain row"),
            "{e}"
        );
    }
}

#[cfg(not(feature = "ring"))]
#[test]
fn ring_without_its_feature_is_refused_naming_the_feature() {
    let e = refused("provider = \"ring\"");
    assert!(
        e.contains("field `provider`") && e.contains("cargo feature `ring`"),
        "{e}"
    );
}

#[cfg(feature = "ring")]
#[test]
fn a_ring_row_reaches_both_sides_and_refuses_what_ring_lacks() {
    let m = Matrix::parse(&format!(
        "{BASE}provider = \"ring\"\nkx_groups = [\"X25519\"]\n"
    ))
    .unwrap();
    let s = &m.scenarios[0];
    assert_eq!(s.provider, Provider::Ring);
    // The server child's command line, through the server's own parser.
    let a = s.server_args(Path::new("/c"), &[1]);
    let mut line: Vec<std::ffi::OsString> = vec!["server".into()];
    line.extend(a.to_args());
    assert!(line.iter().any(|f| f == "--provider=ring"), "{line:?}");
    let back = ServerArgs::try_parse_from(line).unwrap();
    assert_eq!(back, a);
    let tls = back.tls_options().unwrap();
    assert_eq!(tls.provider, Provider::Ring);
    assert_eq!(tls::group_name(tls.groups[0]), "X25519");
    // The generator side: the options the runner hands to loadgen.
    #[derive(clap::Parser)]
    struct Run {
        #[command(flatten)]
        args: crate::RunArgs,
    }
    let args = <Run as clap::Parser>::try_parse_from(["run"]).unwrap().args;
    let target = loadgen::Target::new("https://127.0.0.1:1/", None, None).unwrap();
    let opts = crate::matrix::load_options(
        s,
        &m,
        &args,
        true,
        &target,
        loadgen::verify::Trust::Platform,
    );
    assert_eq!(opts.tls.provider, Provider::Ring);

    let e = refused("provider = \"ring\"\nkx_groups = [\"X25519MLKEM768\"]");
    assert!(
        e.contains("scenario 'a'")
            && e.contains("field `kx_groups`")
            && e.contains("the ring provider has no key-exchange group X25519MLKEM768"),
        "{e}"
    );
}

/// The shipped comparison file: rows in pairs that differ only in provider and name.
#[cfg(feature = "ring")]
#[test]
fn the_providers_file_pairs_each_row_with_its_ring_twin() {
    let m = Matrix::parse(include_str!("../../../scenarios/providers.toml")).unwrap();
    assert!(!m.scenarios.is_empty() && m.scenarios.len() % 2 == 0);
    for pair in m.scenarios.chunks(2) {
        let (aws, ring) = (&pair[0], &pair[1]);
        assert_eq!(
            (aws.provider, ring.provider),
            (Provider::AwsLcRs, Provider::Ring)
        );
        // Everything but name and provider is the same: the server's flags and the
        // generator's options.
        let server = |s: &Scenario| ServerArgs {
            provider: Provider::default(),
            ..s.server_args(Path::new("/c"), &[0])
        };
        assert_eq!(server(aws), server(ring), "{}", ring.name);
        let same = |s: &Scenario| {
            (
                s.kind,
                s.tls.clone(),
                s.cert,
                s.resume,
                s.body,
                s.connections,
                s.kx_groups
                    .iter()
                    .map(|g| tls::group_name(*g))
                    .collect::<Vec<_>>(),
                s.cipher_suites
                    .iter()
                    .map(|c| tls::suite_name(*c))
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(same(aws), same(ring), "{}", ring.name);
    }
}

#[test]
fn cert_compression_reaches_both_sides_and_is_refused_where_it_cannot_apply() {
    let m = Matrix::parse(&with("cert_compression", "\"zlib,brotli\"")).unwrap();
    let s = &m.scenarios[0];
    let want: CertCompression = "zlib,brotli".parse().unwrap();
    assert_eq!(s.cert_compression, want);
    let a = s.server_args(Path::new("/c"), &[1]);
    let mut line: Vec<std::ffi::OsString> = vec!["server".into()];
    line.extend(a.to_args());
    let back = ServerArgs::try_parse_from(line).unwrap();
    assert_eq!(back.tls_options().unwrap().cert_compression, want);
    assert!(
        Matrix::parse(BASE).unwrap().scenarios[0]
            .cert_compression
            .is_off()
    );
    let err = |text: &str| Matrix::parse(text).unwrap_err().to_string();
    let e = err(&with("cert_compression", "\"zstd\""));
    assert!(
        e.contains("field `cert_compression`") && e.contains("'zstd'"),
        "{e}"
    );
    let e = err(&format!(
        "{}cert_compression = \"brotli\"\n",
        with("tls", "\"1.2\"")
    ));
    assert!(e.contains("only in TLS 1.3"), "{e}");
    let e = err(&format!(
        "{}cert_compression = \"brotli\"\n",
        with("tls", "\"none\"")
    ));
    assert!(e.contains("plain row"), "{e}");
}

#[test]
fn early_data_reaches_both_sides_and_is_refused_where_rustls_would_not_send_it() {
    let row = format!(
        "{}server_resumption = \"stateful\"\nresume = \"ticket\"\n",
        BASE
    );
    let m = Matrix::parse(&format!("{row}early_data = true\n")).unwrap();
    let s = &m.scenarios[0];
    assert!(s.early_data);
    let a = s.server_args(Path::new("/c"), &[1]);
    let mut line: Vec<std::ffi::OsString> = vec!["server".into()];
    line.extend(a.to_args());
    let back = ServerArgs::try_parse_from(line).unwrap();
    assert_eq!(back.tls_options().unwrap().early_data, EARLY_DATA_BYTES);
    let target = loadgen::Target::new("https://bank32.com/", None, Some("127.0.0.1:1")).unwrap();
    let trust = || loadgen::verify::Trust::Platform;
    assert!(
        crate::matrix::client_options(s, &target, trust())
            .tls
            .early_data
    );
    let off = &Matrix::parse(&row).unwrap().scenarios[0];
    assert!(!off.early_data);
    assert_eq!(off.server_args(Path::new("/c"), &[1]).early_data, 0);
    assert!(
        !crate::matrix::client_options(off, &target, trust())
            .tls
            .early_data
    );

    let err = |text: &str| Matrix::parse(text).unwrap_err().to_string();
    for bad in [
        row.replace("stateful", "tickets"),
        row.replace("resume = \"ticket\"", "resume = \"off\""),
        row.replace("tls = \"1.3\"", "tls = \"1.2,1.3\""),
    ] {
        let e = err(&format!("{bad}early_data = true\n"));
        assert!(
            e.contains("field `early_data`") && e.contains("server_resumption = \"stateful\""),
            "{e}"
        );
    }
    let e = err(&format!("{}early_data = true\n", with("tls", "\"none\"")));
    assert!(e.contains("plain row"), "{e}");
    let e = err(&with("early_data", "\"yes\""));
    assert!(e.contains("field `early_data`"), "{e}");
}

#[test]
fn the_cert_compression_matrix_pairs_each_compressed_row_with_an_uncompressed_one() {
    let m = Matrix::parse(include_str!("../../../scenarios/cert-compression.toml")).unwrap();
    let compressed: Vec<&Scenario> = m
        .scenarios
        .iter()
        .filter(|s| !s.cert_compression.is_off())
        .collect();
    assert_eq!(compressed.len(), 4);
    for s in compressed {
        let twin = m
            .scenarios
            .iter()
            .find(|o| o.cert_compression.is_off() && o.cert == s.cert)
            .unwrap_or_else(|| panic!("no uncompressed row for '{}'", s.name));
        assert_eq!(
            (twin.kind, &twin.tls, twin.server_resumption, twin.resume),
            (s.kind, &s.tls, s.server_resumption, s.resume),
            "{}",
            s.name
        );
    }
}

#[test]
fn a_floor_row_is_plain_and_refuses_tls_settings() {
    let m = Matrix::parse(&with("tls", "\"none\"")).unwrap();
    let s = &m.scenarios[0];
    assert!(s.plain && s.tls.is_empty() && !s.resumes());
    let a = s.server_args(Path::new("/c"), &[1]);
    assert_eq!(a.plain_listen, Some("127.0.0.1:0".parse().unwrap()));
    assert_eq!(a.tls_versions, ServerArgs::default().tls_versions);
    assert!(!Matrix::parse(BASE).unwrap().scenarios[0].plain);
    assert_eq!(
        Matrix::parse(BASE).unwrap().scenarios[0]
            .server_args(Path::new("/c"), &[1])
            .plain_listen,
        None
    );
    for (field, value) in [
        ("kx_groups", "[\"X25519\"]"),
        ("cipher_suites", "[\"TLS_AES_128_GCM_SHA256\"]"),
        ("resume", "\"ticket\""),
        ("tls13_tickets", "1"),
    ] {
        let e = Matrix::parse(&format!("{}{field} = {value}\n", with("tls", "\"none\"")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!("field `{field}`")) && e.contains("plain row"),
            "{e}"
        );
    }
    let e = Matrix::parse(&with("tls", "\"nope\""))
        .unwrap_err()
        .to_string();
    assert!(e.contains("field `tls`") && e.contains("nope"), "{e}");
}

const BASE: &str = "[[scenario]]\nname = \"a\"\nkind = \"handshake\"\ntls = \"1.3\"\n";

/// The base scenario with `field` set to `value` (replaced when the base has it).
fn with(field: &str, value: &str) -> String {
    let mut lines: Vec<String> = BASE
        .lines()
        .filter(|l| !l.starts_with(&format!("{field} = ")))
        .map(str::to_owned)
        .collect();
    lines.push(format!("{field} = {value}"));
    lines.join("\n") + "\n"
}

fn refused(extra: &str) -> String {
    Matrix::parse(&format!("{BASE}{extra}\n"))
        .unwrap_err()
        .to_string()
}

#[test]
fn every_fields_bad_value_is_refused_naming_the_scenario_and_the_field() {
    let m = Matrix::parse(BASE).unwrap();
    let s = &m.scenarios[0];
    assert_eq!(s.cert, KeyType::EcdsaP256);
    assert_eq!(s.server_resumption, Resumption::Both);
    assert_eq!(s.resume, ResumeMode::Off);
    assert_eq!(s.connections, 32);
    for (field, value, shown) in [
        ("kind", "\"latency\"", "latency"),
        ("tls", "\"1.1\"", "1.1"),
        ("cert", "\"dsa1024\"", "dsa1024"),
        ("kx_groups", "[\"ffdhe2048\"]", "ffdhe2048"),
        ("cipher_suites", "[\"TLS_NULL\"]", "TLS_NULL"),
        ("server_resumption", "\"ticket\"", "'ticket'"),
        ("resume", "\"tickets\"", "'tickets'"),
        ("download", "-1", "-1"),
        ("upload", "\"1MiB\"", "1MiB"),
        ("connections", "0", "at least 1"),
        ("connections", "\"many\"", "many"),
        ("tls13_tickets", "-1", "-1"),
    ] {
        let e = Matrix::parse(&with(field, value)).unwrap_err().to_string();
        assert!(
            e.contains("scenario 'a'")
                && e.contains(&format!("field `{field}`"))
                && e.contains(shown),
            "{field}: {e}"
        );
    }
    let e = refused("server_resumption = \"sometimes\"");
    assert!(e.contains("off, stateful, tickets, both"), "{e}");
    let e = refused("colour = \"red\"");
    assert!(
        e.contains("scenario 'a'") && e.contains("unknown field `colour`"),
        "{e}"
    );
    let e = refused("download = 1\nupload = 1");
    assert!(e.contains("separate"), "{e}");
    let e = Matrix::parse(&BASE.replace("handshake", "throughput"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("needs download or upload"), "{e}");
    let e = Matrix::parse(&BASE.replace("tls = \"1.3\"\n", ""))
        .unwrap_err()
        .to_string();
    assert!(e.contains("field `tls`: missing"), "{e}");
    let e = Matrix::parse(&BASE.replace("name = \"a\"\n", ""))
        .unwrap_err()
        .to_string();
    assert!(e.contains("number 1") && e.contains("field `name`"), "{e}");
    let e = Matrix::parse(&format!("{BASE}{BASE}"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("scenario 'a': name used twice"), "{e}");
    assert!(Matrix::parse("").is_err());
    let e = Matrix::parse(&format!("colour = 1\n{BASE}"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("colour"), "{e}");
}

#[test]
fn durations_use_the_one_parser_and_bad_ones_name_the_field() {
    let m = Matrix::parse(&format!(
        "[defaults]\nduration = 3\nwarmup = 1.5\nquick_duration = \"750ms\"\nquick_warmup = \"0\"\n{BASE}"
    ))
    .unwrap();
    assert_eq!(
        m.timing(false),
        (Duration::from_secs(3), Duration::from_millis(1500))
    );
    assert_eq!(m.timing(true), (Duration::from_millis(750), Duration::ZERO));
    for (field, line) in [
        ("duration", "duration = \"soon\""),
        ("warmup", "warmup = -2"),
        ("quick_duration", "quick_duration = \"2 parsecs\""),
        ("quick_warmup", "quick_warmup = true"),
        ("duration", "duration = 0"),
        ("connections", "connections = 0"),
    ] {
        let e = Matrix::parse(&format!("[defaults]\n{line}\n{BASE}"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!("[defaults]: field `{field}`")),
            "{field}: {e}"
        );
    }
    let e = Matrix::parse(&format!("[defaults]\nrepeats = 3\n{BASE}"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field `repeats`"), "{e}");
}

#[test]
fn client_auth_reaches_the_server_with_the_client_certs_ca_and_bad_pairs_are_refused() {
    let m = Matrix::parse(&format!(
        "{BASE}client_auth = \"required\"\nclient_cert = \"rsa2048\"\n"
    ))
    .unwrap();
    let s = &m.scenarios[0];
    assert_eq!(
        s.mutual,
        Some(MutualTls {
            mode: ClientAuth::Required,
            cert: Some(KeyType::Rsa2048)
        })
    );
    let a = s.server_args(Path::new("/c"), &[1]);
    assert_eq!(a.client_auth, ClientAuth::Required);
    assert_eq!(
        a.client_ca.as_deref(),
        Some(Path::new("/c/rsa2048/client-ca.pem"))
    );
    let mut line: Vec<std::ffi::OsString> = vec!["server".into()];
    line.extend(a.to_args());
    let back = ServerArgs::try_parse_from(line).unwrap();
    assert_eq!(
        (back.client_auth, back.client_ca),
        (a.client_auth, a.client_ca)
    );
    // Optional without a certificate: the server's default CAs, nothing sent.
    let m = Matrix::parse(&format!("{BASE}client_auth = \"optional\"\n")).unwrap();
    let s = &m.scenarios[0];
    assert_eq!(
        s.mutual,
        Some(MutualTls {
            mode: ClientAuth::Optional,
            cert: None
        })
    );
    assert_eq!(s.server_args(Path::new("/c"), &[1]).client_ca, None);
    assert_eq!(Matrix::parse(BASE).unwrap().scenarios[0].mutual, None);
    assert_eq!(
        Matrix::parse(BASE).unwrap().scenarios[0]
            .server_args(Path::new("/c"), &[1])
            .client_auth,
        ClientAuth::Off
    );

    let e = refused("client_auth = \"required\"");
    assert!(e.contains("field `client_cert`: missing"), "{e}");
    let e = refused("client_cert = \"ecdsa-p256\"");
    assert!(
        e.contains("field `client_cert`") && e.contains("needs client_auth"),
        "{e}"
    );
    let e = refused("client_auth = \"sometimes\"\nclient_cert = \"ecdsa-p256\"");
    assert!(
        e.contains("field `client_auth`") && e.contains("off, optional, required"),
        "{e}"
    );
    let e = refused("client_auth = \"required\"\nclient_cert = \"dsa\"");
    assert!(
        e.contains("field `client_cert`") && e.contains("dsa"),
        "{e}"
    );
    let e = Matrix::parse(&format!(
        "{}client_auth = \"optional\"\n",
        with("tls", "\"none\"")
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("field `client_auth`") && e.contains("plain row"),
        "{e}"
    );
}

#[test]
fn tls13_tickets_reach_the_server_and_are_refused_where_no_ticket_is_sent() {
    let m = Matrix::parse(&format!(
        "{BASE}server_resumption = \"stateful\"\ntls13_tickets = 1\n"
    ))
    .unwrap();
    let a = m.scenarios[0].server_args(Path::new("/c"), &[1]);
    assert_eq!(a.tls13_tickets, 1);
    let mut line: Vec<std::ffi::OsString> = vec!["server".into()];
    line.extend(a.to_args());
    assert_eq!(ServerArgs::try_parse_from(line).unwrap().tls13_tickets, 1);
    // Unset: the server's default, whatever it is.
    let a = Matrix::parse(BASE).unwrap().scenarios[0].server_args(Path::new("/c"), &[1]);
    assert_eq!(a.tls13_tickets, ServerArgs::default().tls13_tickets);
    let e = refused("server_resumption = \"off\"\ntls13_tickets = 1");
    assert!(
        e.contains("field `tls13_tickets`") && e.contains("off"),
        "{e}"
    );
    let e = Matrix::parse(&format!(
        "{}tls13_tickets = 1\n",
        BASE.replace("tls = \"1.3\"", "tls = \"1.2\"")
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("field `tls13_tickets`") && e.contains("TLS 1.3"),
        "{e}"
    );
}
