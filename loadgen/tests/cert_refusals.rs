//! Certificate refusals in one table: wrong hostname, untrusted CA, expired, not yet valid and
//! a chain missing its intermediate are each refused by the load generator with a message
//! that names the cause (and the run marked as a verification failure, which `tlsbench load`
//! turns into exit code 4), and curl, given the same CA file and name, refuses the same five
//! and accepts the same good chain. The exit code itself is checked on the binary in
//! `tests/load_faults.rs`, over the same cases (`test_support::refusals`).
//!
//! Earlier, narrower checks of the same refusals: `against_server.rs`
//! (`wrong_name_untrusted_and_expired_are_refused_with_the_reason`), `src/verify.rs` unit tests
//! (messages, leaf-only chain against the verifier), `tests/load.rs`
//! (`load_refuses_a_wrong_name_with_the_names_and_exit_4`: wrong name, platform roots).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::AtomicBool;

use loadgen::FailureKind;
use refusals::{Case, Running};
use test_support::{faulty, refusals};

/// Runs 5 operations against the case's server with its CA file and name, as
/// `tlsbench load URL --connect-to ADDR --cacert CA -n 5 -c 1 --new-conn` would: each
/// operation a fresh handshake, so the verification cache is exercised.
fn generator(case: &Case, srv: &Running) -> loadgen::RunResult {
    let [url, connect_to, addr] = faulty::target_flags(case.host, srv.addr);
    let ca = srv.ca_file.to_str().unwrap();
    let opts = faulty::load_options(&[
        &url,
        &connect_to,
        &addr,
        "--cacert",
        ca,
        "-n",
        "5",
        "-c",
        "1",
        "--new-conn",
        "--timeout",
        "10s",
    ]);
    loadgen::run(&opts, &mut loadgen::Quiet, &AtomicBool::new(false)).unwrap()
}

#[test]
fn each_refusal_names_its_cause_and_curl_agrees() {
    let mut report = Vec::new();
    for case in refusals::cases() {
        let srv = Running::start(&case);
        let r = generator(&case, &srv);
        let c = &r.measured.counters;
        let why = r.incomplete.clone().unwrap_or_default();
        let snap = srv.snapshot();
        let curl = refusals::curl(case.host, srv.addr, &srv.ca_file);
        srv.stop();
        report.push(format!(
            "{}: generator {:?} | curl exit {:?}: {}",
            case.what,
            r.incomplete,
            curl.status.code(),
            curl.stderr.lines().next().unwrap_or_default()
        ));

        if case.accepted() {
            assert!(r.incomplete.is_none(), "{}: {why}", case.what);
            assert!(!r.verification_failed, "{}", case.what);
            assert_eq!(c.requests, 5, "{}: {c:?}", case.what);
            // One full validation, four from the cache.
            assert_eq!(r.verify_cache, (4, 1), "{}", case.what);
            assert_eq!(curl.status.code(), Some(0), "{}: {curl:?}", case.what);
            assert!(
                curl.stdout
                    .contains(std::str::from_utf8(server::http::HELLO_PAGE).unwrap()),
                "{}: {curl:?}",
                case.what
            );
            continue;
        }
        // The generator: refused at the first connection, the run stopped, the reason named.
        assert!(r.verification_failed, "{}: {why}", case.what);
        assert_eq!(
            c.errors_of(FailureKind::CertVerify),
            1,
            "{}: {c:?}",
            case.what
        );
        assert_eq!(c.errors_total(), 1, "{}: {c:?}", case.what);
        assert_eq!(c.requests + c.handshakes(), 0, "{}: {c:?}", case.what);
        // Failures are never cached: the one verification was a miss.
        assert_eq!(r.verify_cache, (0, 1), "{}", case.what);
        for fragment in case.says {
            assert!(
                why.contains(fragment),
                "{}: {fragment:?} missing from {why:?}",
                case.what
            );
        }
        // The server saw the generator give up in the handshake, and served nothing.
        assert_eq!(snap.handshakes_total(), 0, "{}: {snap:?}", case.what);
        assert_eq!(snap.requests_total(), 0, "{}: {snap:?}", case.what);
        // curl: the same verdict, for the same reason.
        assert_eq!(
            curl.status.code(),
            Some(case.curl_exit),
            "{}: {curl:?}",
            case.what
        );
        assert!(
            curl.stderr.contains(case.curl_says),
            "{}: {:?} missing from {curl:?}",
            case.what,
            case.curl_says
        );
        assert!(curl.stdout.is_empty(), "{}: {curl:?}", case.what);
    }
    // Shown with --nocapture: what each side said.
    println!("{}", report.join("\n"));
}
