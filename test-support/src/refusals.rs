//! Test support: the five ways a server certificate must be refused (wrong name, untrusted CA,
//! expired, not yet valid, chain missing its intermediate) plus the positive control, each as
//! a tlsbench server on 127.0.0.1:0 with the CA file and host a client should use, what the
//! load generator's refusal must say and what curl must exit with, and curl run on a case
//! (bounded). Shared by the library-level `loadgen/tests/cert_refusals.rs` and the binary-level
//! `tests/load_faults.rs`, so both check the same cases.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use crate::loopback::{pem_certs, pem_key};
use crate::process::{self, Ran};
use crate::temp_dir;
use common::certs::{self, ChainOptions, GeneratedChain, KeyType};
use server::{Server, Settings, TlsOptions};

/// curl's CURLE_PEER_FAILED_VERIFICATION: the certificate or its name did not verify.
pub const CURL_VERIFY_FAILED: i32 = 60;
/// A curl run that has not exited after this is killed and the test fails.
const CURL_LIMIT: Duration = Duration::from_secs(20);

/// One certificate case.
pub struct Case {
    /// What is wrong, for messages.
    pub what: &'static str,
    /// The name the client asks for (URL host, SNI, verification).
    pub host: &'static str,
    /// Fragments the load generator's refusal message must contain (empty: accepted).
    pub says: &'static [&'static str],
    /// curl's exit code.
    pub curl_exit: i32,
    /// A fragment of curl's error message (empty: accepted).
    pub curl_says: &'static str,
    /// The chain the server presents.
    chain: GeneratedChain,
    /// The server sends its leaf alone, without the intermediate.
    leaf_only: bool,
    /// The root the client trusts.
    trusted_root: String,
}

impl Case {
    /// Whether the client must accept this case (the positive control).
    pub fn accepted(&self) -> bool {
        self.says.is_empty()
    }
}

fn chain(not_before: SystemTime, not_after: SystemTime) -> GeneratedChain {
    certs::generate(
        KeyType::EcdsaP256,
        &ChainOptions {
            not_before,
            not_after,
            ..ChainOptions::default()
        },
    )
    .unwrap()
}

/// The positive control first, then the five refusals.
pub fn cases() -> Vec<Case> {
    let day = Duration::from_secs(86_400);
    let now = SystemTime::now();
    let good = || certs::generate(KeyType::EcdsaP256, &ChainOptions::default()).unwrap();
    let case = |what: &'static str,
                host: &'static str,
                says: &'static [&'static str],
                curl_says: &'static str,
                chain: GeneratedChain,
                leaf_only: bool| {
        let trusted_root = chain.root_pem.clone();
        Case {
            what,
            host,
            says,
            curl_exit: if curl_says.is_empty() {
                0
            } else {
                CURL_VERIFY_FAILED
            },
            curl_says,
            chain,
            leaf_only,
            trusted_root,
        }
    };
    let mut untrusted = case(
        "untrusted CA",
        "bank32.com",
        &["certificate chain of bank32.com is not trusted by CA file"][..],
        // Generated CAs share one name: webpki takes the trusted root for the issuer by name
        // and fails on its signature, while OpenSSL also matches the authority key
        // identifier and finds no issuer at all.
        "unable to get local issuer certificate",
        good(),
        false,
    );
    untrusted.trusted_root = good().root_pem;
    vec![
        case("good chain", "bank32.com", &[][..], "", good(), false),
        case(
            "wrong hostname",
            "evil.example",
            &[
                "certificate is not valid for the name evil.example",
                "it holds bank32.com, localhost, 127.0.0.1, ::1",
            ][..],
            "no alternative certificate subject name matches target host name 'evil.example'",
            good(),
            false,
        ),
        untrusted,
        case(
            "expired",
            "bank32.com",
            &["certificate chain of bank32.com has expired: notAfter "][..],
            "certificate has expired",
            chain(now - 30 * day, now - day),
            false,
        ),
        case(
            "not yet valid",
            "bank32.com",
            &["certificate chain of bank32.com is not valid yet: notBefore "][..],
            "certificate is not yet valid",
            chain(now + day, now + 30 * day),
            false,
        ),
        case(
            "missing intermediate",
            "bank32.com",
            &[
                "certificate chain of bank32.com is not trusted by CA file",
                "unknown issuer",
                "the server may be missing its intermediate certificate",
            ][..],
            "unable to get local issuer certificate",
            good(),
            true,
        ),
    ]
}

/// A case's server, running, and the CA file its client trusts.
pub struct Running {
    server: Option<Server>,
    /// Where the server listens.
    pub addr: SocketAddr,
    /// The CA file its client trusts (the case's, which may be the wrong one).
    pub ca_file: PathBuf,
    dir: PathBuf,
}

impl Running {
    /// Starts a one-worker tlsbench server presenting the case's chain (or its leaf alone).
    pub fn start(case: &Case) -> Running {
        let mut chain = pem_certs(&case.chain.chain_pem());
        if case.leaf_only {
            chain.truncate(1);
        }
        let key = pem_key(&case.chain.leaf_key_pem);
        let cfg = TlsOptions::default().server_config(chain, key).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let server = Server::start(vec![listener], cfg, Settings::default()).unwrap();
        let addr = server.local_addrs()[0];
        let dir = temp_dir("ca");
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, &case.trusted_root).unwrap();
        Running {
            server: Some(server),
            addr,
            ca_file,
            dir,
        }
    }

    /// The server's counters so far.
    pub fn snapshot(&self) -> server::Snapshot {
        self.server.as_ref().unwrap().stats().snapshot()
    }

    /// Stops the server; its counters.
    pub fn stop(mut self) -> server::Snapshot {
        let s = self.server.take().unwrap();
        s.shutdown_handle().force();
        s.wait().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown_handle().force();
            let _ = s.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `curl --cacert CA --resolve HOST:PORT:127.0.0.1 https://HOST:PORT/`, bounded: a curl that
/// is still running after `CURL_LIMIT` is killed and the test fails.
pub fn curl(host: &str, addr: SocketAddr, ca_file: &Path) -> Ran {
    let url = format!("https://{host}:{}/", addr.port());
    let resolve = format!("{host}:{}:{}", addr.port(), addr.ip());
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "10", "--cacert"])
        .arg(ca_file)
        .args(["--resolve", &resolve, &url]);
    process::run_bounded(cmd, CURL_LIMIT)
}
