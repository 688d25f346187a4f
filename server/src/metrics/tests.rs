//! Unit tests of the metrics contract: both expositions of one snapshot, the JSON round trip,
//! and a missing series or field refused by name.

use super::*;

/// A snapshot where every count differs, so a swapped or dropped series shows.
fn distinct() -> Snapshot {
    let mut next = 0u64;
    let mut n = || {
        next += 7;
        next
    };
    let mut s = Snapshot {
        workers: 3,
        uptime: Duration::new(12, 345_678_901),
        cpu: CpuTime {
            user: Duration::new(1, 500_000_000),
            sys: Duration::new(0, 250_001_000),
        },
        cpu_at_start: CpuTime {
            user: Duration::from_micros(1_234),
            sys: Duration::from_micros(56),
        },
        accepted: n(),
        closed: n(),
        refused: n(),
        accept_errors: n(),
        bytes_in: n(),
        bytes_out: n(),
        session_cache: Some(CacheCounts {
            capacity: n(),
            entries: n(),
            stored: n(),
            evicted: n(),
            hits: n(),
            misses: n(),
        }),
        ..Snapshot::default()
    };
    for c in s.handshakes.iter_mut().flatten() {
        *c = n();
    }
    for c in s
        .failures
        .iter_mut()
        .chain(&mut s.tls_errors)
        .chain(&mut s.timeouts)
        .chain(&mut s.requests)
        .chain(&mut s.client_certs)
        .chain(&mut s.client_auth_refusals)
        .chain(&mut s.tls_bytes)
        .chain(&mut s.handshake_bytes)
        .chain(&mut s.cert_compressed)
        .chain(&mut s.early_data)
    {
        *c = n();
    }
    s.alerts_received[usize::from(u8::from(AlertDescription::BadCertificate))] = n();
    // A code without a name travels too ("unknown200").
    s.alerts_received[200] = n();
    s
}

fn json_without(path: &[&str]) -> String {
    let mut v = serde_json::to_value(distinct()).unwrap();
    let (last, parents) = path.split_last().unwrap();
    let mut at = &mut v;
    for p in parents {
        at = &mut at[*p];
    }
    assert!(
        at.as_object_mut().unwrap().remove(*last).is_some(),
        "{path:?}"
    );
    v.to_string()
}

#[test]
fn the_json_exposition_round_trips_every_count() {
    let s = distinct();
    let back = Snapshot::from_json(&s.to_json().unwrap()).unwrap();
    assert_eq!(back, s);
}

#[test]
fn a_server_without_a_session_cache_says_so_in_both_expositions() {
    let s = Snapshot {
        session_cache: None,
        ..distinct()
    };
    let json = s.to_json().unwrap();
    assert!(json.contains("\"session_cache\":null"), "{json}");
    assert_eq!(Snapshot::from_json(&json).unwrap(), s);
    assert!(!s.prometheus().contains("tlsbench_session_cache"));
}

#[test]
fn the_prometheus_exposition_carries_the_same_counts() {
    let s = distinct();
    let text = s.prometheus();
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
            .parse()
            .unwrap()
    };
    assert_eq!(value(CONNECTIONS_ACCEPTED), s.accepted as f64);
    assert_eq!(value(CONNECTIONS_ACTIVE), s.active() as f64);
    for (v, version) in VERSIONS.iter().enumerate() {
        for class in HandshakeClass::ALL {
            let series = format!(
                "{HANDSHAKES}{{version=\"{version}\",kind=\"{}\"}}",
                class.as_str()
            );
            assert_eq!(value(&series), s.handshakes[v][class as usize] as f64);
        }
    }
    for cause in FailureCause::ALL {
        let series = format!("{HANDSHAKE_FAILURES}{{cause=\"{}\"}}", cause.as_str());
        assert_eq!(value(&series), s.failures_of(cause) as f64);
    }
    for status in Status::ALL {
        let series = format!("{REQUESTS}{{status=\"{}\"}}", status.code());
        assert_eq!(value(&series), s.requests_of(status) as f64);
    }
    for r in ClientCert::ALL {
        let series = format!("{CLIENT_CERTS}{{result=\"{}\"}}", r.as_str());
        assert_eq!(value(&series), s.client_certs_of(r) as f64);
    }
    for c in RefusalCause::ALL {
        let series = format!("{CLIENT_AUTH_REFUSALS}{{cause=\"{}\"}}", c.as_str());
        assert_eq!(value(&series), s.client_auth_refusals_of(c) as f64);
    }
    let alert = format!("{ALERTS_RECEIVED}{{alert=\"bad_certificate\"}}");
    assert_eq!(value(&alert), s.alerts_received[42] as f64);
    assert_eq!(value(PROCESS_CPU_SECONDS), 1.750001);
    assert_eq!(
        value(&format!("{PLAINTEXT_BYTES}{{direction=\"out\"}}")),
        s.bytes_out as f64
    );
    for (i, d) in DIRECTIONS.iter().enumerate() {
        let tls = format!("{TLS_BYTES}{{direction=\"{d}\"}}");
        assert_eq!(value(&tls), s.tls_bytes[i] as f64);
        let hs = format!("{HANDSHAKE_BYTES}{{direction=\"{d}\"}}");
        assert_eq!(value(&hs), s.handshake_bytes[i] as f64);
    }
    for a in Algorithm::ALL {
        let series = format!("{CERT_COMPRESSED}{{algorithm=\"{a}\"}}");
        assert_eq!(value(&series), s.cert_compressed[a.index()] as f64);
    }
    for r in EarlyData::ALL {
        let series = format!("{EARLY_DATA}{{result=\"{}\"}}", r.as_str());
        assert_eq!(value(&series), s.early_data[r.index()] as f64);
    }
    let cache = s.session_cache.unwrap();
    assert_eq!(value(SESSION_CACHE_ENTRIES), cache.entries as f64);
    assert_eq!(value(SESSION_CACHE_CAPACITY), cache.capacity as f64);
    assert_eq!(value(SESSION_CACHE_STORED), cache.stored as f64);
    assert_eq!(value(SESSION_CACHE_EVICTED), cache.evicted as f64);
    let lookups = |r: &str| value(&format!("{SESSION_CACHE_LOOKUPS}{{result=\"{r}\"}}"));
    assert_eq!(lookups("hit"), cache.hits as f64);
    assert_eq!(lookups("miss"), cache.misses as f64);
}

#[test]
fn a_missing_series_is_an_error_naming_it() {
    let cases: [(&[&str], &str); 14] = [
        (
            &["client_certs", "none"],
            "missing series tlsbench_client_certs_total{result=\"none\"}",
        ),
        (
            &["client_auth_refusals", "wrong_key_usage"],
            "missing series tlsbench_client_auth_refusals_total{cause=\"wrong_key_usage\"}",
        ),
        (
            &["handshakes", "1.3", "resumed_hrr"],
            "missing series tlsbench_handshakes_total{version=\"1.3\",kind=\"resumed_hrr\"}",
        ),
        (
            &["handshakes", "1.2"],
            "missing series tlsbench_handshakes_total{version=\"1.2\"}",
        ),
        (
            &["failures", "timeout"],
            "missing series tlsbench_handshake_failures_total{cause=\"timeout\"}",
        ),
        (
            &["timeouts", "idle"],
            "missing series tlsbench_timeouts_total{phase=\"idle\"}",
        ),
        (
            &["requests", "200"],
            "missing series tlsbench_requests_total{status=\"200\"}",
        ),
        (&["bytes_out"], "missing field `bytes_out`"),
        (
            &["tls_bytes", "in"],
            "missing series tlsbench_tls_bytes_total{direction=\"in\"}",
        ),
        (
            &["cert_compressed", "zlib"],
            "missing series tlsbench_cert_compressed_total{algorithm=\"zlib\"}",
        ),
        (
            &["early_data", "rejected"],
            "missing series tlsbench_early_data_total{result=\"rejected\"}",
        ),
        (
            &["handshake_bytes", "out"],
            "missing series tlsbench_handshake_bytes_total{direction=\"out\"}",
        ),
        (&["session_cache"], "missing field `session_cache`"),
        (&["session_cache", "evicted"], "missing field `evicted`"),
    ];
    for (path, want) in cases {
        let err = Snapshot::from_json(&json_without(path)).unwrap_err();
        assert!(err.to_string().contains(want), "{path:?}: {err}");
    }
}

#[test]
fn an_unknown_series_or_a_value_that_is_not_a_count_is_an_error() {
    let mut v = serde_json::to_value(distinct()).unwrap();
    v["timeouts"]["lunch"] = 1.into();
    let err = Snapshot::from_json(&v.to_string()).unwrap_err();
    assert!(
        err.to_string()
            .contains("unknown series tlsbench_timeouts_total{phase=\"lunch\"}"),
        "{err}"
    );

    let mut v = serde_json::to_value(distinct()).unwrap();
    v["alerts_received"]["no_such_alert"] = 1.into();
    let err = Snapshot::from_json(&v.to_string()).unwrap_err();
    assert!(err.to_string().contains("no_such_alert"), "{err}");

    let mut v = serde_json::to_value(distinct()).unwrap();
    v["accepted"] = (-1).into();
    assert!(Snapshot::from_json(&v.to_string()).is_err());

    let mut v = serde_json::to_value(distinct()).unwrap();
    v["requests"]["200"] = 1.5.into();
    assert!(Snapshot::from_json(&v.to_string()).is_err());

    let mut v = serde_json::to_value(distinct()).unwrap();
    v["surprise"] = 1.into();
    let err = Snapshot::from_json(&v.to_string()).unwrap_err();
    assert!(err.to_string().contains("surprise"), "{err}");
}

#[test]
fn scrape_reads_the_admin_endpoint_json() {
    let stats = std::sync::Arc::new(crate::Stats::new(2));
    let w = stats.worker(1).unwrap();
    w.accepted();
    w.handshake(
        Some(rustls::ProtocolVersion::TLSv1_3),
        HandshakeClass::ResumedHrr,
    );
    w.request(Status::NotFound);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let admin = crate::admin::Admin::start(listener, std::sync::Arc::clone(&stats)).unwrap();
    let s = scrape(admin.local_addr()).unwrap();
    assert_eq!(s.workers, 2);
    assert_eq!(s.accepted, 1);
    assert_eq!(s.handshakes_of("1.3", "resumed_hrr"), 1);
    assert_eq!(s.requests_of(Status::NotFound), 1);
    // The Prometheus text is served beside it, from the same counters.
    let mut c = TcpStream::connect(admin.local_addr()).unwrap();
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: admin\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    c.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
    let series = format!("\n{HANDSHAKES}{{version=\"1.3\",kind=\"resumed_hrr\"}} 1\n");
    assert!(text.contains(&series), "{text}");
    admin.stop();
}

#[test]
fn scrape_refuses_an_answer_that_is_not_the_snapshot() {
    // An endpoint that answers every request with a 404, as a wrong port might.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        // The whole request head first: closing a socket with unread bytes sends a reset,
        // which can reach the client before it has read the answer.
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "the client closed before its request head ended");
            head.extend_from_slice(&buf[..n]);
        }
        s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        // Until the client closes (bounded by its own read timeout).
        while s.read(&mut buf).is_ok_and(|n| n > 0) {}
    });
    let err = scrape(addr).unwrap_err();
    assert!(
        matches!(&err, MetricsError::Answer { answer, .. } if answer == "HTTP/1.1 404 Not Found"),
        "{err}"
    );
    peer.join().unwrap();
}
