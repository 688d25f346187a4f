//! `tlsbench server`: the command line (clap derive; the doc comments are the `--help` text),
//! certificate selection, binding, signal handling and the shutdown summary.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use common::cert_compression::CertCompression;
use common::certs::{self, KeyType};
use common::tls::{self, Provider};

use crate::client_auth::{ClientAuth, ClientAuthOptions};
use crate::config::{Resumption, Settings, TlsOptions};
use crate::http::Limits;
use crate::{Server, ServerError, Snapshot};

/// Flags of `tlsbench server`.
///
/// Programs that start a server child build one of these ([`ServerArgs::default`] plus what
/// differs) and pass [`ServerArgs::to_args`]: one producer of the command line, checked by
/// its own parser, instead of flags spelt out by hand in each caller.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct ServerArgs {
    /// Address to listen on (IPv4 or IPv6, e.g. [::1]:4433; port 0 picks a free port).
    // The text is clap's help: `[::1]` is an address, not a link.
    #[allow(rustdoc::broken_intra_doc_links)]
    #[arg(short, long, default_value = "127.0.0.1:4433")]
    pub listen: SocketAddr,

    /// Also serve the same routes over plain HTTP/1.1 on this address, on the same workers
    /// (each with its own SO_REUSEPORT listener): the TCP floor a TLS row's cost is read
    /// against. Never for production traffic.
    #[arg(long, value_name = "ADDR")]
    pub plain_listen: Option<SocketAddr>,

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

    /// Crypto provider: aws-lc-rs, or ring (builds with the cargo feature `ring`; no
    /// X25519MLKEM768, no P-521). `tlsbench list` shows what each supports.
    #[arg(long, default_value = "aws-lc-rs")]
    pub provider: Provider,

    /// Cipher suites in preference order, by IANA or rustls name, comma-separated [default: all AEAD suites].
    #[arg(long, value_delimiter = ',')]
    pub cipher_suites: Vec<String>,

    /// Key-exchange groups in preference order (X25519MLKEM768, X25519, secp256r1, secp384r1) [default: the provider's: X25519MLKEM768,X25519,secp256r1,secp384r1 with aws-lc-rs, X25519,secp256r1,secp384r1 with ring].
    #[arg(long, value_delimiter = ',')]
    pub kx_groups: Vec<String>,

    /// Certificate from the generated set: rsa2048, rsa3072, rsa4096, ecdsa-p256, ecdsa-p384, ed25519.
    #[arg(long, default_value = "ecdsa-p256", conflicts_with_all = ["cert", "key"])]
    pub cert_type: KeyType,

    /// Directory of the generated set (made with `tlsbench certs` or on first start).
    #[arg(long, default_value = "certs")]
    pub certs_dir: PathBuf,

    /// Certificate chain file (PEM: leaf first, then intermediates; never the root).
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,

    /// Private key file (PEM; must not be world-readable).
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,

    /// Client certificates (mutual TLS): off, optional (asked for; a client without one is
    /// served, a bad one refused), required (a client without a valid one is refused).
    #[arg(long, value_enum, default_value_t = ClientAuth::Off)]
    pub client_auth: ClientAuth,

    /// Client CA certificates (PEM) trusted to issue client certificates [default with
    /// --client-auth optional|required: every key type's generated client-ca.pem in --certs-dir].
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<PathBuf>,

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

    /// TLS 1.3 0-RTT: the early data accepted from a resuming client, in bytes (its
    /// max_early_data_size); 0 turns it off. Needs --resumption stateful: rustls accepts early
    /// data only with single-use session-cache tickets. Only GET and HEAD are served from
    /// early data; any other method sent early is answered 425 Too Early (RFC 8470).
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    pub early_data: u32,

    /// Largest plaintext per TLS record, in bytes (32..=16384) [default: 16384].
    #[arg(long)]
    pub max_fragment: Option<usize>,

    /// ALPN protocols to accept, comma-separated; empty string disables ALPN.
    #[arg(long, default_value = "http/1.1", value_delimiter = ',')]
    pub alpn: Vec<String>,

    /// Certificate compression (RFC 8879): the algorithms to compress the chain with, in order
    /// of preference (brotli, zlib), for clients that offer one; or off. Off by default, so
    /// compression is a choice the results name.
    #[arg(long, default_value = "off")]
    pub cert_compression: CertCompression,

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

/// `tlsbench server` on its own, so a command line from [`ServerArgs::to_args`] can be read
/// back by the same parser the binary uses.
#[derive(clap::Parser, Debug)]
#[command(name = "server")]
struct ServerCommand {
    #[command(flatten)]
    args: ServerArgs,
}

impl Default for ServerArgs {
    /// The defaults the `--help` text states, read by the parser itself so they are written
    /// down once (in the `#[arg]` attributes).
    #[allow(clippy::expect_used)]
    fn default() -> Self {
        // No user input here: every default is a literal above, and
        // `defaults_and_every_changed_field_round_trip` proves they parse.
        ServerArgs::try_parse_from(["server"]).expect("the defaults of ServerArgs parse")
    }
}

impl ServerArgs {
    /// Parses `server FLAGS...` (the first item is the program name, as in `std::env::args`).
    pub fn try_parse_from<I, T>(args: I) -> Result<ServerArgs, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::Parser as _;
        ServerCommand::try_parse_from(args).map(|c| c.args)
    }

    /// The command line (after `server`) that parses back into exactly `self`: every flag,
    /// each as `--name=value` so a value that starts with `-` stays a value. Paths are passed
    /// as they are (not necessarily UTF-8), hence `OsString`.
    pub fn to_args(&self) -> Vec<std::ffi::OsString> {
        use std::ffi::OsString;
        let mut out: Vec<OsString> = Vec::with_capacity(40);
        let mut flag = |name: &str, value: &dyn std::fmt::Display| {
            out.push(format!("--{name}={value}").into());
        };
        flag("listen", &self.listen);
        if let Some(a) = self.plain_listen {
            flag("plain-listen", &a);
        }
        if let Some(n) = self.threads {
            flag("threads", &n);
        }
        flag("backlog", &self.backlog);
        flag("tls", &self.tls_versions);
        flag("provider", &self.provider);
        if !self.cipher_suites.is_empty() {
            flag("cipher-suites", &self.cipher_suites.join(","));
        }
        if !self.kx_groups.is_empty() {
            flag("kx-groups", &self.kx_groups.join(","));
        }
        // --cert-type conflicts with --cert/--key: a chain given by path replaces it.
        if self.cert.is_none() && self.key.is_none() {
            flag("cert-type", &self.cert_type);
        }
        flag("client-auth", &self.client_auth.as_str());
        flag("resumption", &self.resumption_name());
        flag("session-cache", &self.session_cache);
        flag("tls13-tickets", &self.tls13_tickets);
        flag("early-data", &self.early_data);
        if let Some(n) = self.max_fragment {
            flag("max-fragment", &n);
        }
        flag("alpn", &self.alpn.join(","));
        flag("cert-compression", &self.cert_compression);
        if let Some(a) = self.admin {
            flag("admin", &a);
        }
        if let Some(l) = &self.pin_cpus {
            flag("pin-cpus", l);
        }
        if let Some(n) = self.max_connections {
            flag("max-connections", &n);
        }
        for (name, d) in [
            ("handshake-timeout", self.handshake_timeout),
            ("header-timeout", self.header_timeout),
            ("body-timeout", self.body_timeout),
            ("keepalive-timeout", self.keepalive_timeout),
            ("send-timeout", self.send_timeout),
            ("shutdown-timeout", self.shutdown_timeout),
        ] {
            flag(name, &common::duration::format(d));
        }
        flag("max-request-line", &self.max_request_line);
        flag("max-header-bytes", &self.max_header_bytes);
        flag("max-headers", &self.max_headers);
        flag("max-body", &self.max_body);
        flag("max-bytes", &self.max_bytes);
        let path_flag = |out: &mut Vec<OsString>, name: &str, p: &std::path::Path| {
            let mut a = OsString::from(format!("--{name}="));
            a.push(p.as_os_str());
            out.push(a);
        };
        path_flag(&mut out, "certs-dir", &self.certs_dir);
        if let Some(p) = &self.cert {
            path_flag(&mut out, "cert", p);
        }
        if let Some(p) = &self.key {
            path_flag(&mut out, "key", p);
        }
        if let Some(p) = &self.keylog {
            path_flag(&mut out, "keylog", p);
        }
        if let Some(p) = &self.client_ca {
            path_flag(&mut out, "client-ca", p);
        }
        out
    }

    /// `--resumption`'s name for the mode (off, stateful, tickets, both).
    fn resumption_name(&self) -> String {
        use clap::ValueEnum as _;
        self.resumption
            .to_possible_value()
            .map_or_else(String::new, |v| v.get_name().to_owned())
    }

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
            provider: self.provider,
            versions: tls::parse_versions(&self.tls_versions)?,
            suites: self.provider.parse_suites(&self.cipher_suites)?,
            groups: self.provider.parse_groups(&self.kx_groups)?,
            resumption: self.resumption,
            session_cache: self.session_cache,
            tls13_tickets: self.tls13_tickets,
            early_data: self.early_data,
            // rustls counts the 5-byte record header in max_fragment_size.
            max_fragment: self.max_fragment.map(|n| n + 5),
            alpn: self
                .alpn
                .iter()
                .filter(|p| !p.is_empty())
                .map(|p| p.as_bytes().to_vec())
                .collect(),
            keylog: self.keylog.clone(),
            cert_compression: self.cert_compression.clone(),
            client_auth: self.client_auth_options()?,
        })
    }

    /// `--client-auth` with its CAs read: `--client-ca`, else every key type's generated
    /// client CA in `--certs-dir` (generated if missing), so any generated client identity is
    /// accepted. A `--client-ca` without client auth is refused rather than ignored.
    fn client_auth_options(&self) -> Result<ClientAuthOptions, ServerError> {
        if self.client_auth == ClientAuth::Off {
            if let Some(p) = &self.client_ca {
                return Err(ServerError::Config(format!(
                    "--client-ca {} needs --client-auth optional or required",
                    p.display()
                )));
            }
            return Ok(ClientAuthOptions::default());
        }
        let sources = match &self.client_ca {
            Some(p) => vec![p.clone()],
            None => {
                let all: Vec<PathBuf> = KeyType::ALL
                    .iter()
                    .map(|&kt| certs::client_paths(&self.certs_dir, kt).ca)
                    .collect();
                if !all.iter().all(|p| p.is_file()) {
                    eprintln!(
                        "tlsbench server: client CAs missing in {}; generating the missing sets",
                        self.certs_dir.display()
                    );
                    certs::ensure(&self.certs_dir, &KeyType::ALL)?;
                }
                all
            }
        };
        let mut roots = Vec::new();
        for p in &sources {
            roots.extend(certs::load_certs(p)?);
        }
        Ok(ClientAuthOptions {
            mode: self.client_auth,
            roots,
            sources,
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
            let kt = args.cert_type;
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
    let tls = tls_opts.server_tls(chain, key)?;
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
    let plain = match args.plain_listen {
        Some(a) => crate::bind(a, threads, args.backlog)?,
        None => Vec::new(),
    };
    let server = Server::start_with_plain(listeners, plain, tls, args.settings())?;
    let addr = server.local_addrs()[0];
    let plain_addr = server.plain_addrs().first().copied();
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
                    // Not eprintln!, which panics when nobody reads stderr any more (a runner
                    // killed outright: its child gets SIGTERM with the pipe broken), and this
                    // thread would die before stopping the server.
                    let _ = writeln!(
                        std::io::stderr(),
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
            "tlsbench server listening on https://{addr}/ ({threads} workers, TLS {}, provider {}, resumption {:?}, certificate {cert_label}, client auth {})",
            versions.join("+"),
            tls_opts.provider,
            args.resumption,
            client_auth_label(&tls_opts.client_auth)
        );
        if let Some(p) = plain_addr {
            let _ = writeln!(
                out,
                "tlsbench server listening on http://{p}/ (plain HTTP, the TCP floor)"
            );
        }
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

/// `off`, or the mode and the CA files trusted (`required (certs/ecdsa-p256/client-ca.pem)`).
fn client_auth_label(c: &ClientAuthOptions) -> String {
    if c.mode == ClientAuth::Off {
        return "off".into();
    }
    let files: Vec<String> = c.sources.iter().map(|p| p.display().to_string()).collect();
    format!("{} ({})", c.mode.as_str(), files.join(", "))
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
mod tests;
