//! The load generator against a real nginx (installed by .ci/run) with session cache and
//! tickets on: every resumption mode is classified correctly on a server we did not write,
//! and without resumption every handshake is full.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use common::certs::{self, ChainOptions, KeyType};
use common::tls::Version;
use loadgen::verify::Trust;
use loadgen::{LoadOptions, ResumeMode, Target};
use nginx::{Nginx, NginxOptions};
use test_support::nginx;

struct Setup {
    nginx: Nginx,
    ca: std::path::PathBuf,
    dir: std::path::PathBuf,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn setup() -> Setup {
    setup_with(&NginxOptions::default())
}

fn setup_with(opts: &NginxOptions) -> Setup {
    let dir = std::env::temp_dir().join(format!(
        "tlsbench-lg-nginx-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let chain = certs::generate(KeyType::EcdsaP256, &ChainOptions::default()).unwrap();
    let p = certs::write(&dir, &chain).unwrap();
    let nginx = Nginx::start(&p.chain, &p.key, opts);
    Setup {
        nginx,
        ca: p.ca,
        dir,
    }
}

fn options(s: &Setup, resume: ResumeMode, versions: Vec<Version>) -> LoadOptions {
    let port = s.nginx.port();
    let target = Target::new(
        &format!("https://bank32.com:{port}/"),
        None,
        Some(&format!("127.0.0.1:{port}")),
    )
    .unwrap();
    let mut opts = LoadOptions::new(target, Trust::CaFile(s.ca.clone()));
    opts.connections = 4;
    opts.new_conn = true;
    opts.tls.versions = versions;
    opts.tls.resume = resume;
    opts.requests = Some(200);
    opts.warmup = Duration::from_millis(300);
    opts
}

fn run(opts: &LoadOptions) -> loadgen::RunResult {
    let r = loadgen::run(opts, &mut loadgen::Quiet, &AtomicBool::new(false)).unwrap();
    assert!(r.incomplete.is_none(), "{:?}", r.incomplete);
    assert_eq!(r.measured.counters.requests, 200);
    r
}

#[test]
fn nginx_resumption_modes_are_classified() {
    let s = setup();
    for (resume, versions) in [
        (ResumeMode::Ticket, vec![Version::Tls13]),
        (ResumeMode::Ticket, vec![Version::Tls12]),
        (ResumeMode::SessionId, vec![Version::Tls12]),
    ] {
        let r = run(&options(&s, resume, versions.clone()));
        let c = &r.measured.counters;
        let share = c.resumed as f64 / c.handshakes() as f64;
        assert!(
            share >= 0.99,
            "{resume:?} {versions:?}: {share} resumed ({c:?})\n{}",
            s.nginx.error_log()
        );
        assert_eq!(c.handshakes(), 200);
        if versions == [Version::Tls12] {
            assert_eq!(c.tls12, 200);
        } else {
            assert_eq!(c.tls13, 200);
        }
    }
    let r = run(&options(
        &s,
        ResumeMode::Off,
        vec![Version::Tls12, Version::Tls13],
    ));
    let c = &r.measured.counters;
    assert_eq!(c.full + c.full_hrr, 200, "{c:?}");
    assert_eq!(c.resumed, 0);
}

#[test]
fn nginx_with_ssl_early_data_accepts_the_generators_early_requests() {
    // Stateless tickets (nginx's default), and the session cache alone (OpenSSL's stateful
    // TLS 1.3 tickets, with its anti-replay check): what `--peer nginx` runs a 0-RTT row with.
    for tickets in [true, false] {
        let s = setup_with(&NginxOptions {
            early_data: true,
            tickets,
            ..NginxOptions::default()
        });
        let mut opts = options(&s, ResumeMode::Ticket, vec![Version::Tls13]);
        opts.tls.early_data = true;
        let r = run(&opts);
        let c = &r.measured.counters;
        let e = c.early_data;
        // Every resumed connection sent its request early, and nginx took each one.
        assert!(c.resumed > 0, "tickets {tickets}: {c:?}");
        assert_eq!(e.offered, c.resumed, "tickets {tickets}: {c:?}");
        assert_eq!(
            (e.accepted, e.rejected),
            (e.offered, 0),
            "tickets {tickets}: {c:?}"
        );
        assert_eq!(r.measured.ttfb_0rtt.len(), e.accepted);
    }
}
