//! Test support: an in-process tlsbench server on 127.0.0.1:0 with a generated chain as the
//! load generator's target, and load options aimed at it with verification on (the CA written
//! to a temp file).

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use common::certs::{self, ChainOptions, GeneratedChain, KeyType};
use loadgen::verify::Trust;
use loadgen::{LoadOptions, RunResult, Target};
use server::{Resumption, Server, Settings, TlsOptions};

use crate::loopback::chain_config;

pub use crate::temp_dir;

/// A running server plus the files a client needs to trust it.
pub struct TestServer {
    /// The server; `None` once stopped.
    pub server: Option<Server>,
    /// The chain it serves.
    pub chain: GeneratedChain,
    /// The chain's CA, written for `--cacert`.
    pub ca_file: PathBuf,
    /// The temp directory holding the CA file.
    pub dir: PathBuf,
}

impl TestServer {
    /// A server with `workers` workers and `resumption`, on a fresh ECDSA P-256 chain.
    pub fn start(resumption: Resumption, workers: usize) -> TestServer {
        Self::start_with(
            resumption,
            workers,
            certs::generate(KeyType::EcdsaP256, &ChainOptions::default()).unwrap(),
            Settings::default(),
        )
    }

    /// A server with `workers` workers, `resumption` and `settings`, serving `chain`.
    pub fn start_with(
        resumption: Resumption,
        workers: usize,
        chain: GeneratedChain,
        settings: Settings,
    ) -> TestServer {
        let opts = TlsOptions {
            resumption,
            ..TlsOptions::default()
        };
        Self::start_tls(opts, workers, chain, settings)
    }

    /// A server with TLS options of the test's choosing (groups, versions, suites).
    pub fn start_tls(
        opts: TlsOptions,
        workers: usize,
        chain: GeneratedChain,
        settings: Settings,
    ) -> TestServer {
        let cfg = chain_config(&chain, &opts);
        let bind = || {
            (0..workers)
                .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
                .collect()
        };
        // Every test server also serves plain HTTP (the TCP floor) beside TLS.
        let server = Server::start_with_plain(bind(), bind(), cfg, settings).unwrap();
        let dir = temp_dir("srv");
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, &chain.root_pem).unwrap();
        TestServer {
            server: Some(server),
            chain,
            ca_file,
            dir,
        }
    }

    /// The TLS port (the first worker's listener).
    pub fn port(&self) -> u16 {
        self.server.as_ref().unwrap().local_addrs()[0].port()
    }

    /// The plain-HTTP listener's URL (the first worker's).
    pub fn plain_url(&self, path: &str) -> String {
        let port = self.server.as_ref().unwrap().plain_addrs()[0].port();
        format!("http://127.0.0.1:{port}{path}")
    }

    /// The HTTPS URL of `path`, named bank32.com (resolve it to 127.0.0.1).
    pub fn url(&self, path: &str) -> String {
        format!("https://bank32.com:{}{path}", self.port())
    }

    /// Load options: verified against our CA, dialling 127.0.0.1, one thread, closed loop.
    pub fn options(&self, path: &str) -> LoadOptions {
        let target = Target::new(
            &self.url(path),
            None,
            Some(&format!("127.0.0.1:{}", self.port())),
        )
        .unwrap();
        let mut opts = LoadOptions::new(target, Trust::CaFile(self.ca_file.clone()));
        opts.connections = 4;
        opts.requests = Some(200);
        opts
    }

    /// Stops the server and returns its final counters.
    pub fn stop(&mut self) -> server::Snapshot {
        self.server.take().unwrap().stop().unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown_handle().force();
            let _ = s.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `opts` to completion.
pub fn run(opts: &LoadOptions) -> RunResult {
    loadgen::run(opts, &mut loadgen::Quiet, &AtomicBool::new(false)).unwrap()
}
