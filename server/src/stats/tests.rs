//! Unit tests of the per-worker counters: exact merges across workers, and the handshake
//! kinds and TLS versions parsed by name (an unknown one refused, never a zero).

use rustls::HandshakeKind;

use super::*;

#[test]
fn merge_is_exact_across_workers() {
    let stats = Stats::new(2);
    let (a, b) = match (stats.worker(0), stats.worker(1)) {
        (Some(a), Some(b)) => (a, b),
        _ => panic!("two workers"),
    };
    a.accepted();
    b.accepted();
    b.accepted();
    a.closed();
    a.handshake(Some(rustls::ProtocolVersion::TLSv1_3), HandshakeClass::Full);
    b.handshake(
        Some(rustls::ProtocolVersion::TLSv1_3),
        HandshakeClass::Resumed,
    );
    b.handshake(
        Some(rustls::ProtocolVersion::TLSv1_2),
        HandshakeClass::Resumed,
    );
    a.handshake(
        Some(rustls::ProtocolVersion::TLSv1_3),
        HandshakeClass::ResumedHrr,
    );
    a.handshake_failed(
        FailureCause::PeerAlert,
        Some(AlertDescription::BadCertificate),
    );
    b.tls_error(FailureCause::PeerMisbehaved);
    a.client_cert(ClientCert::Accepted);
    b.client_cert(ClientCert::Accepted);
    b.client_cert(ClientCert::None);
    a.client_auth_refused(RefusalCause::UnknownCa);
    b.request(Status::Ok);
    b.request(Status::NotFound);
    a.bytes_in(10);
    b.bytes_in(5);
    a.tls_in(300);
    b.tls_out(4000);
    a.handshake_bytes(250, 3000);
    b.cert_compressed(Algorithm::Zlib);
    b.handshake_bytes(1, 2);
    let s = stats.snapshot();
    assert_eq!((s.accepted, s.closed, s.active()), (3, 1, 2));
    assert_eq!(s.handshakes_of("1.3", "full"), 1);
    assert_eq!(s.handshakes_of("1.3", "resumed"), 1);
    assert_eq!(s.handshakes_of("1.2", "resumed"), 1);
    assert_eq!(s.handshakes_of("1.3", "resumed_hrr"), 1);
    assert_eq!(s.handshakes_total(), 4);
    assert_eq!(s.failures_of(FailureCause::PeerAlert), 1);
    assert_eq!(s.tls_errors_of(FailureCause::PeerMisbehaved), 1);
    assert_eq!(s.tls_errors_total(), 1);
    assert_eq!(
        s.failures_total(),
        1,
        "a TLS error is not a handshake failure"
    );
    assert_eq!(s.requests_total(), 2);
    assert_eq!(s.bytes_in, 15);
    assert_eq!(s.tls_bytes, [300, 4000]);
    assert_eq!(s.handshake_bytes, [251, 3002]);
    assert_eq!(s.cert_compressed, [0, 1]);
    assert!(
        s.summary()
            .contains("certificates sent compressed: 0 brotli, 1 zlib")
    );
    assert!(s.summary().contains(
        "TLS on the wire: 300 bytes in, 4000 bytes out; of which handshakes 251 in, 3002 out"
    ));
    let text = s.prometheus();
    assert!(text.contains("tlsbench_handshakes_total{version=\"1.3\",kind=\"resumed\"} 1\n"));
    assert!(text.contains("tlsbench_handshakes_total{version=\"1.3\",kind=\"resumed_hrr\"} 1\n"));
    assert!(
        text.contains("tlsbench_handshake_alerts_received_total{alert=\"bad_certificate\"} 1\n")
    );
    assert!(text.contains("tlsbench_requests_total{status=\"404\"} 1\n"));
    assert!(text.contains("tlsbench_tls_errors_total{cause=\"peer_misbehaved\"} 1\n"));
    assert!(!text.contains("tlsbench_tls_errors_total{cause=\"timeout\"}"));
    assert!(text.contains("tlsbench_connections_active 2\n"));
    assert_eq!(s.client_certs_of(ClientCert::Accepted), 2);
    assert_eq!(s.client_certs_of(ClientCert::None), 1);
    assert_eq!(s.client_auth_refusals_of(RefusalCause::UnknownCa), 1);
    assert!(text.contains("tlsbench_client_certs_total{result=\"accepted\"} 2\n"));
    assert!(text.contains("tlsbench_client_auth_refusals_total{cause=\"unknown_ca\"} 1\n"));
    assert!(text.contains("tlsbench_client_auth_refusals_total{cause=\"none_sent\"} 0\n"));
    assert!(
        s.summary()
            .contains("client certificates: 2 accepted, 1 none; refused 1 (1 unknown_ca)")
    );
    assert!(
        s.summary().contains(
            "TLS 1.3 handshakes: 1 full, 1 resumed, 0 full with HRR, 1 resumed after HRR"
        )
    );
    assert!(
        s.summary()
            .contains("TLS errors after the handshake: 1 (1 peer_misbehaved)")
    );
}

#[test]
fn a_resumption_after_a_hello_retry_request_is_its_own_class() {
    use HandshakeKind::{Full, FullWithHelloRetryRequest, Resumed};
    let cases = [
        ((Full, false), HandshakeClass::Full),
        ((Resumed, false), HandshakeClass::Resumed),
        ((FullWithHelloRetryRequest, false), HandshakeClass::FullHrr),
        ((FullWithHelloRetryRequest, true), HandshakeClass::FullHrr),
        ((Full, true), HandshakeClass::FullHrr),
        // What rustls reports for a PSK accepted on the retried hello.
        ((Resumed, true), HandshakeClass::ResumedHrr),
    ];
    for ((kind, hrr), want) in cases {
        assert_eq!(HandshakeClass::of(kind, hrr), want, "{kind:?}, hrr {hrr}");
    }
    assert_eq!(HandshakeClass::ResumedHrr.as_str(), "resumed_hrr");
}

#[test]
#[should_panic(expected = "no handshake kind \"resumedd\"")]
fn a_misspelt_handshake_kind_is_refused_not_zero() {
    Snapshot::default().handshakes_of("1.3", "resumedd");
}

#[test]
#[should_panic(expected = "no TLS version \"1.4\"")]
fn an_unknown_version_is_refused_not_zero() {
    Snapshot::default().handshakes_of("1.4", "full");
}
