//! `tlsbench server`: the command line (clap derive; the doc comments are the `--help` text),
//! certificate selection, binding, signal handling and the shutdown summary.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use common::certs::{self, KeyType};
use common::tls;

use crate::config::{Resumption, Settings, TlsOptions};
use crate::http::Limits;
use crate::{Server, ServerError, Snapshot};

/// Flags of `tlsbench server`.
#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// Address to listen on (IPv4 or IPv6, e.g. [::1]:4433; port 0 picks a free port).
    #[arg(short, long, default_value = "127.0.0.1:4433")]
    pub listen: SocketAddr,

    /// Worker threads, each with its own epoll and SO_REUSEPORT listener [default: one per CPU
    /// this process may run on: those of --pin-cpus, else all].
    #[arg(short, long)]
    pub threads: Option<usize>,

    /// Accept backlog of each listener.
    #[arg(long, default_value_t = 1024)]
    pub backlog: i32,

    /// TLS versions to offer, comma-separated.
    #[arg(long = "tls", default_value = "1.2,1.3")]
    pub tls_versions: String,

    /// Cipher suites in preference order, by IANA or rustls name, comma-separated [default: all AEAD suites].
    #[arg(long, value_delimiter = ',')]
    pub cipher_suites: Vec<String>,

    /// Key-exchange groups in preference order (X25519MLKEM768, X25519, secp256r1, secp384r1) [default: X25519MLKEM768,X25519,secp256r1,secp384r1].
    #[arg(long, value_delimiter = ',')]
    pub kx_groups: Vec<String>,

    /// Certificate from the generated set: rsa2048, rsa3072, rsa4096, ecdsa-p256, ecdsa-p384, ed25519.
    #[arg(long, default_value = "ecdsa-p256", conflicts_with_all = ["cert", "key"])]
    pub cert_type: String,

    /// Directory of the generated set (made with `tlsbench certs` or on first start).
    #[arg(long, default_value = "certs")]
    pub certs_dir: PathBuf,

    /// Certificate chain file (PEM: leaf first, then intermediates; never the root).
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,

    /// Private key file (PEM; must not be world-readable).
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,

    /// Session resumption: off, stateful (session cache: TLS 1.2 session IDs, TLS 1.3 stateful
    /// tickets), tickets (stateless: RFC 5077 and TLS 1.3 PSK tickets), both.
    #[arg(long, value_enum, default_value_t = Resumption::Both)]
    pub resumption: Resumption,

    /// Sessions kept by the stateful session cache (shared by all workers).
    #[arg(long, default_value_t = 20_480)]
    pub session_cache: usize,

    /// Tickets sent after each full TLS 1.3 handshake.
    #[arg(long, default_value_t = 2)]
    pub tls13_tickets: usize,

    /// Largest plaintext per TLS record, in bytes (32..=16384) [default: 16384].
    #[arg(long)]
    pub max_fragment: Option<usize>,

    /// ALPN protocols to accept, comma-separated; empty string disables ALPN.
    #[arg(long, default_value = "http/1.1", value_delimiter = ',')]
    pub alpn: Vec<String>,

    /// Write the NSS key log (SSLKEYLOGFILE format) here so Wireshark can decrypt captures.
    /// Exposes every session key: for debugging only.
    #[arg(long)]
    pub keylog: Option<PathBuf>,

    /// Serve the counters over plain HTTP (Prometheus text at /metrics, JSON at /metrics.json):
    /// a PORT binds 127.0.0.1:PORT, an ADDR:PORT binds exactly that (a non-loopback address is
    /// warned about); off if not given.
    #[arg(long, value_parser = parse_admin_addr)]
    pub admin: Option<SocketAddr>,

    /// Pin the server to these CPUs (e.g. 0 or 0-1): every thread may run only on them, and
    /// each worker on one of them, round robin. The default worker count becomes their number.
    #[arg(long)]
    pub pin_cpus: Option<common::cpu::CpuList>,

    /// Open connections allowed across all workers; more are accepted and closed at once [default: unlimited].
    #[arg(long)]
    pub max_connections: Option<usize>,

    /// Time allowed from accept to a completed handshake.
    #[arg(long, default_value = "60s", value_parser = common::duration::parse)]
    pub handshake_timeout: Duration,

    /// Time allowed from the first byte of a request head to its end.
    #[arg(long, default_value = "60s", value_parser = common::duration::parse)]
    pub header_timeout: Duration,

    /// Time allowed between two reads of a request body.
    #[arg(long, default_value = "60s", value_parser = common::duration::parse)]
    pub body_timeout: Duration,

    /// Time an idle keep-alive connection is kept.
    #[arg(long, default_value = "75s", value_parser = common::duration::parse)]
    pub keepalive_timeout: Duration,

    /// Time allowed between two successful writes while a response is pending.
    #[arg(long, default_value = "60s", value_parser = common::duration::parse)]
    pub send_timeout: Duration,

    /// On SIGINT/SIGTERM, time given to in-flight responses before connections are cut.
    #[arg(long, default_value = "10s", value_parser = common::duration::parse)]
    pub shutdown_timeout: Duration,

    /// Longest request line, in bytes (longer: 414).
    #[arg(long, default_value_t = 8192)]
    pub max_request_line: usize,

    /// Longest request head, in bytes (longer: 431).
    #[arg(long, default_value_t = 32768)]
    pub max_header_bytes: usize,

    /// Most header fields in a request (more: 431).
    #[arg(long, default_value_t = 100)]
    pub max_headers: usize,

    /// Largest request body on routes other than /sink, in bytes (larger: 413).
    #[arg(long, default_value_t = 1 << 20)]
    pub max_body: u64,

    /// Largest N served by GET /bytes/N (larger: 400).
    #[arg(long, default_value_t = 1 << 30)]
    pub max_bytes: u64,
}

impl ServerArgs {
    /// The runtime settings these flags describe.
    pub fn settings(&self) -> Settings {
        Settings {
            limits: Limits {
                max_request_line: self.max_request_line,
                max_header_bytes: self.max_header_bytes,
                max_headers: self.max_headers,
                max_body: self.max_body,
                max_bytes: self.max_bytes,
            },
            handshake_timeout: self.handshake_timeout,
            header_timeout: self.header_timeout,
            body_timeout: self.body_timeout,
            keepalive_timeout: self.keepalive_timeout,
            send_timeout: self.send_timeout,
            shutdown_timeout: self.shutdown_timeout,
            max_connections: self.max_connections,
            pin_cpus: self.pin_cpus.clone().map(|l| l.0).unwrap_or_default(),
            ..Settings::default()
        }
    }

    /// The TLS options these flags describe (names resolved, unknown ones refused).
    pub fn tls_options(&self) -> Result<TlsOptions, ServerError> {
        if let Some(n) = self.max_fragment
            && !(32..=16384).contains(&n)
        {
            return Err(ServerError::Config(format!(
                "--max-fragment {n}: must be between 32 and 16384"
            )));
        }
        Ok(TlsOptions {
            versions: tls::parse_versions(&self.tls_versions)?,
            suites: tls::parse_suites(&self.cipher_suites)?,
            groups: tls::parse_groups(&self.kx_groups)?,
            resumption: self.resumption,
            session_cache: self.session_cache,
            tls13_tickets: self.tls13_tickets,
            // rustls counts the 5-byte record header in max_fragment_size.
            max_fragment: self.max_fragment.map(|n| n + 5),
            alpn: self
                .alpn
                .iter()
                .filter(|p| !p.is_empty())
                .map(|p| p.as_bytes().to_vec())
                .collect(),
            keylog: self.keylog.clone(),
        })
    }
}

/// Runs `tlsbench server` until SIGINT/SIGTERM; returns the final counters.
pub fn run(args: ServerArgs) -> Result<Snapshot, ServerError> {
    // First, while this is the only thread: every thread started below (signal, admin,
    // workers) inherits the set, and the default worker count is read from it.
    if let Some(cpus) = &args.pin_cpus {
        common::cpu::pin_current_process(cpus)?;
    }
    let tls_opts = args.tls_options()?;
    let (chain_path, key_path, cert_label) = match (&args.cert, &args.key) {
        (Some(c), Some(k)) => (c.clone(), k.clone(), c.display().to_string()),
        _ => {
            let kt: KeyType = args.cert_type.parse()?;
            let p = certs::paths(&args.certs_dir, kt);
            if !(p.chain.exists() && p.key.exists() && p.ca.exists()) {
                eprintln!(
                    "tlsbench server: no {kt} certificate in {}; generating the default set (all key types)",
                    args.certs_dir.display()
                );
                certs::ensure(&args.certs_dir, &KeyType::ALL)?;
            }
            let label = format!("{kt} ({}, CA {})", p.chain.display(), p.ca.display());
            (p.chain, p.key, label)
        }
    };
    let chain = certs::load_certs(&chain_path)?;
    let key = certs::load_private_key(&key_path)?;
    let tls_config = tls_opts.server_config(chain, key)?;
    if let Some(path) = &tls_opts.keylog {
        eprintln!(
            "WARNING: writing TLS session keys to {} (--keylog). Anyone with this file can decrypt the traffic.",
            path.display()
        );
    }

    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let listeners = crate::bind(args.listen, threads, args.backlog)?;
    let server = Server::start(listeners, tls_config, args.settings())?;
    let addr = server.local_addrs()[0];
    let admin = match args.admin {
        Some(a) => {
            let l = std::net::TcpListener::bind(a).map_err(|source| ServerError::Io {
                what: format!("binding the admin listener {a}"),
                source,
            })?;
            if !a.ip().is_loopback() {
                eprintln!(
                    "tlsbench server: WARNING: the admin endpoint listens on {a}, not on loopback: \
                     its plain-HTTP metrics are readable by anyone who can reach that address"
                );
            }
            Some(crate::admin::Admin::start(l, server.stats())?)
        }
        None => None,
    };

    let handle = server.shutdown_handle();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .map_err(|source| ServerError::Io {
        what: "installing signal handlers".into(),
        source,
    })?;
    let signal_handle = signals.handle();
    let signal_thread = std::thread::Builder::new()
        .name("tlsbench-signal".into())
        .spawn(move || {
            let mut seen = 0;
            for _ in signals.forever() {
                seen += 1;
                if seen == 1 {
                    eprintln!(
                        "tlsbench server: shutting down (signal again to cut connections now)"
                    );
                    handle.shutdown();
                } else {
                    handle.force();
                }
            }
        })
        .map_err(|source| ServerError::Io {
            what: "spawning the signal thread".into(),
            source,
        })?;

    let versions: Vec<&str> = tls_opts.versions.iter().map(|v| v.as_str()).collect();
    {
        // One line, flushed, that scripts and tests wait for instead of sleeping.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "tlsbench server listening on https://{addr}/ ({threads} workers, TLS {}, resumption {:?}, certificate {cert_label})",
            versions.join("+"),
            args.resumption
        );
        if let Some(a) = &admin {
            let _ = writeln!(
                out,
                "tlsbench admin listening on http://{}/metrics",
                a.local_addr()
            );
        }
        let _ = out.flush();
    }

    let result = server.wait();
    signal_handle.close();
    let _ = signal_thread.join();
    if let Some(a) = admin {
        a.stop();
    }
    let snapshot = result?;
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "{}", snapshot.summary());
    let _ = out.flush();
    Ok(snapshot)
}

/// `--admin`: a bare port means loopback, so exposing the metrics beyond this machine always
/// takes an explicit address.
pub fn parse_admin_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port)));
    }
    s.parse::<SocketAddr>()
        .map_err(|_| format!("expected PORT or ADDR:PORT (e.g. 9090 or 127.0.0.1:9090), got {s:?}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::parse_admin_addr;

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
}
