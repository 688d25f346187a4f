//! `tlsbench load`: flags (wrk/h2load/curl names where they exist), the live progress line,
//! the printed summary, `--json` and `--hdr-log` files, and the exit codes.
//!
//! Exit codes: [`Exit`] (0 complete; 1 could not run; 2 usage, from clap; 3 finished but
//! incomplete; 4 a certificate was refused).

use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::Args;
use common::cert_compression::CertCompression;
use common::tls;

use crate::client_cert::ClientIdentity;
use crate::exit::Exit;
use crate::report;
use crate::segment::{Segment, StartAt};
use crate::stats::Hist;
use crate::tlsconf::{ClientTlsOptions, ResumeMode};
use crate::verify::Trust;
use crate::{LoadError, LoadOptions, Observer, Target};

/// Flags of `tlsbench load`.
#[derive(Args, Debug, Clone)]
pub struct LoadArgs {
    /// Target URL, e.g. https://bank32.com:4433/; http://ADDR/ measures plain HTTP (no TLS) against
    /// `tlsbench server --plain-listen`, the TCP floor.
    // The text is clap's help, where `<…>` around the URL would be printed.
    #[allow(rustdoc::bare_urls)]
    pub url: String,

    /// Worker threads (each with its own epoll) [default: one per CPU this process may run on
    /// (those of --pin-cpus), at most --connections].
    #[arg(short, long)]
    pub threads: Option<usize>,

    /// Concurrent connections in total.
    #[arg(short, long, default_value_t = 10)]
    pub connections: usize,

    /// Measured requests (operations) in total, after warm-up.
    #[arg(short = 'n', long)]
    pub requests: Option<u64>,

    /// Measured duration after warm-up (e.g. 10s, 1m) [default: 10s unless -n is given].
    #[arg(short, long, value_parser = common::duration::parse)]
    pub duration: Option<Duration>,

    /// Warm-up excluded from results.
    #[arg(long, default_value = "0s", value_parser = common::duration::parse)]
    pub warmup: Duration,

    /// Time allowed per operation (connect, handshake, request and its response).
    #[arg(long, default_value = "10s", value_parser = common::duration::parse)]
    pub timeout: Duration,

    /// Open loop: operations per second (connections/s with --new-conn, requests/s
    /// otherwise); latency is measured from each operation's intended start (wrk2).
    #[arg(long)]
    pub rate: Option<f64>,

    /// Every request on a fresh TCP + TLS connection, closed after the response: the
    /// handshake benchmark.
    #[arg(long, visible_alias = "no-keepalive")]
    pub new_conn: bool,

    /// Keep-alive: reconnect after this many requests on a connection.
    #[arg(long, conflicts_with = "new_conn")]
    pub requests_per_conn: Option<u64>,

    /// Session resumption: off, ticket (TLS 1.2 RFC 5077 tickets / TLS 1.3 PSK tickets),
    /// session-id (TLS 1.2 only, tickets not offered).
    #[arg(long, value_enum, default_value_t = ResumeMode::Off)]
    pub resume: ResumeMode,

    /// Fraction (0..1) of new connections that offer a saved session.
    #[arg(long, default_value_t = 1.0)]
    pub resume_ratio: f64,

    /// TLS versions to offer: 1.2, 1.3 or 1.2,1.3 [default: 1.2,1.3; 1.2 with --resume session-id].
    #[arg(long = "tls")]
    pub tls_versions: Option<String>,

    /// Crypto provider: aws-lc-rs, or ring (builds with the cargo feature `ring`; no
    /// X25519MLKEM768, no P-521). `tlsbench list` shows what each supports.
    #[arg(long, default_value = "aws-lc-rs")]
    pub provider: tls::Provider,

    /// Cipher suites in preference order (IANA or rustls names), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub cipher_suites: Vec<String>,

    /// Key-exchange groups in preference order (X25519MLKEM768, X25519, secp256r1, secp384r1).
    #[arg(long, value_delimiter = ',')]
    pub kx_groups: Vec<String>,

    /// ALPN protocols to offer; empty string for none.
    #[arg(long, default_value = "http/1.1", value_delimiter = ',')]
    pub alpn: Vec<String>,

    /// Certificate compression (RFC 8879) to offer: brotli, zlib (in order of preference), or
    /// off. Off by default, so compression is a choice the results name.
    #[arg(long, default_value = "off")]
    pub cert_compression: CertCompression,

    /// TLS 1.3 0-RTT: on a resumed connection whose ticket allows it, send the request as early
    /// data with the ClientHello (a server that rejects it gets the request again after the
    /// handshake). Counted per connection: offered, accepted, rejected.
    #[arg(long)]
    pub early_data: bool,

    /// Write the NSS key log here (Wireshark); exposes session keys.
    #[arg(long)]
    pub keylog: Option<PathBuf>,

    /// Trust these CA certificates (PEM, may hold several) instead of the platform's roots.
    #[arg(long)]
    pub cacert: Option<PathBuf>,

    /// Client certificate chain (PEM, leaf first) sent when the server asks for one (mutual
    /// TLS; curl's --cert).
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,

    /// Private key of --cert (PEM; must not be world-readable).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,

    /// DO NOT verify the server's chain or hostname (recorded in the results).
    #[arg(short = 'k', long)]
    pub insecure: bool,

    /// Name to send in SNI and to verify [default: the URL's host].
    #[arg(long)]
    pub sni: Option<String>,

    /// Dial HOST:PORT instead of the URL's host, still verifying the URL's name.
    #[arg(long)]
    pub connect_to: Option<String>,

    /// Request path [default: the URL's path].
    #[arg(long)]
    pub path: Option<String>,

    /// Download N bytes per request: GET /bytes/N on a tlsbench server (10MiB, 1MB, 4096).
    #[arg(long, value_parser = parse_size, conflicts_with = "upload")]
    pub download: Option<u64>,

    /// Upload N bytes per request: POST /sink on a tlsbench server (10MiB, 1MB, 4096).
    #[arg(long, value_parser = parse_size)]
    pub upload: Option<u64>,

    /// Extra request header, "Name: value" (repeatable).
    #[arg(short = 'H', long = "header")]
    pub headers: Vec<String>,

    /// Pin the generator to these CPUs (e.g. 1 or 1-3): every thread may run only on them, and
    /// each worker on one of them, round robin. The default thread count becomes their number.
    #[arg(long)]
    pub pin_cpus: Option<common::cpu::CpuList>,

    /// Run the i-th (from 0) of N equal parts of this load: connections, --rate and -n are
    /// split so the N parts sum to the whole (the first total % N parts get one more). Default:
    /// JOB_COMPLETION_INDEX (Kubernetes Indexed Jobs) of TLSBENCH_SEGMENTS. `tlsbench merge`
    /// joins the parts' --json files.
    #[arg(long, value_name = "i/N")]
    pub segment: Option<Segment>,

    /// Start the run (warm-up, then the measured window) at this wall-clock time (RFC 3339
    /// UTC, e.g. 2026-12-01T05:00:00Z), so N processes start together without a coordinator;
    /// a time more than 1 s past is refused.
    #[arg(long, value_name = "TIME")]
    pub start_at: Option<StartAt>,

    /// The longest wait --start-at may ask for.
    #[arg(long, default_value = "10m", value_parser = common::duration::parse)]
    pub start_at_max_wait: Duration,

    /// Stop after this many errors.
    #[arg(long)]
    pub max_errors: Option<u64>,

    /// Write the results as JSON (schema: loadgen/schema.json).
    #[arg(long)]
    pub json: Option<PathBuf>,

    /// Write per-interval request-latency histograms in HdrHistogram's interval log format.
    #[arg(long)]
    pub hdr_log: Option<PathBuf>,

    /// Interval of the progress line and of --hdr-log.
    #[arg(long, default_value = "1s", value_parser = common::duration::parse)]
    pub interval: Duration,

    /// No progress line.
    #[arg(short, long)]
    pub quiet: bool,

    /// With -n 1: show the certificate chain, the negotiated parameters and the response.
    #[arg(short, long)]
    pub verbose: bool,
}

/// Parses `4096`, `64KiB`, `10MiB`, `1MB`, `2GB` (KB/MB/GB = 10^3/10^6/10^9, KiB/MiB/GiB =
/// 2^10/2^20/2^30; `k`/`M`/`G` alone are decimal).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}': expected a number of bytes like 4096 or 10MiB"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "k" | "K" | "KB" | "kB" => 1_000,
        "KiB" => 1 << 10,
        "M" | "MB" => 1_000_000,
        "MiB" => 1 << 20,
        "G" | "GB" => 1_000_000_000,
        "GiB" => 1 << 30,
        u => {
            return Err(format!(
                "'{s}': unknown unit '{u}' (use B, KB, KiB, MB, MiB, GB, GiB)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("'{s}' is too large"))
}

impl LoadArgs {
    /// The library options these flags describe, the segment's defaults read from the
    /// process environment.
    pub fn options(&self) -> Result<LoadOptions, LoadError> {
        self.options_in(|name| std::env::var(name).ok())
    }

    /// [`LoadArgs::options`] with the environment read through `env`.
    pub fn options_in(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<LoadOptions, LoadError> {
        let segment = Segment::resolve(self.segment, env)?;
        let (connections, requests, rate) = match segment {
            Some(s) => (
                s.nonzero_share(self.connections as u64, "--connections")? as usize,
                self.requests
                    .map(|n| s.nonzero_share(n, "-n"))
                    .transpose()?,
                self.rate.map(|r| s.rate(r)),
            ),
            None => (self.connections, self.requests, self.rate),
        };
        let mut target = Target::new(&self.url, self.sni.as_deref(), self.connect_to.as_deref())?;
        if let Some(p) = &self.path {
            target.path = p.clone();
        }
        if let Some(n) = self.download {
            target.path = format!("/bytes/{n}");
        }
        let (method, upload) = match self.upload {
            Some(n) => {
                if self.path.is_none() {
                    target.path = "/sink".into();
                }
                ("POST".to_string(), n)
            }
            None => ("GET".to_string(), 0),
        };
        let versions = match (&self.tls_versions, self.resume) {
            (Some(v), _) => {
                tls::parse_versions(v).map_err(|e| LoadError::Options(e.to_string()))?
            }
            (None, ResumeMode::SessionId) => vec![tls::Version::Tls12],
            (None, _) => vec![tls::Version::Tls12, tls::Version::Tls13],
        };
        let threads = self
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .min(connections.max(1))
            .max(1);
        Ok(LoadOptions {
            target,
            threads,
            connections,
            new_conn: self.new_conn,
            requests_per_conn: self.requests_per_conn,
            method,
            headers: self.headers.clone(),
            upload,
            tls: ClientTlsOptions {
                provider: self.provider,
                versions,
                suites: self
                    .provider
                    .parse_suites(&self.cipher_suites)
                    .map_err(|e| LoadError::Options(e.to_string()))?,
                groups: self
                    .provider
                    .parse_groups(&self.kx_groups)
                    .map_err(|e| LoadError::Options(e.to_string()))?,
                alpn: self
                    .alpn
                    .iter()
                    .filter(|a| !a.is_empty())
                    .map(|a| a.as_bytes().to_vec())
                    .collect(),
                keylog: self.keylog.clone(),
                cert_compression: self.cert_compression.clone(),
                early_data: self.early_data,
                resume: self.resume,
                trust: match &self.cacert {
                    Some(p) => Trust::CaFile(p.clone()),
                    None => Trust::Platform,
                },
                insecure: self.insecure,
                client_cert: match (&self.cert, &self.key) {
                    (Some(cert), Some(key)) => Some(
                        // Only the provider's key loader is used: suites and groups do not matter.
                        ClientIdentity::load(cert, key, &tls::provider(&[], &[]))
                            .map_err(|e| LoadError::Options(e.to_string()))?,
                    ),
                    _ => None,
                },
            },
            resume_ratio: self.resume_ratio,
            rate,
            duration: self.duration,
            requests,
            warmup: self.warmup,
            timeout: self.timeout,
            max_errors: self.max_errors,
            report_interval: self.interval,
            pin_cpus: self.pin_cpus.clone().map(|l| l.0).unwrap_or_default(),
            segment,
        })
    }
}

/// The live progress line and the `--hdr-log` writer.
struct CliObserver<'a> {
    bar: Option<indicatif::ProgressBar>,
    hdr: Option<
        hdrhistogram::serialization::interval_log::IntervalLogWriter<
            'a,
            'a,
            std::fs::File,
            hdrhistogram::serialization::V2DeflateSerializer,
        >,
    >,
    last: (Duration, u64),
}

impl Observer for CliObserver<'_> {
    fn interval(&mut self, start: Duration, length: Duration, hist: &Hist) {
        if let Some(w) = self.hdr.as_mut() {
            let _ = w.write_histogram(hist, start, length, None);
        }
    }

    fn progress(&mut self, elapsed: Duration, done: u64) {
        if let Some(bar) = &self.bar {
            let (t0, n0) = self.last;
            if elapsed >= t0 + Duration::from_secs(1) {
                let rate = (done - n0.min(done)) as f64 / (elapsed - t0).as_secs_f64();
                bar.set_message(format!(
                    "{:>6.1}s  {done} done  {rate:.0}/s",
                    elapsed.as_secs_f64()
                ));
                self.last = (elapsed, done);
            }
        }
    }
}

/// Runs `tlsbench load`; returns the process exit code.
pub fn run(args: &LoadArgs, command_line: Vec<String>) -> Result<Exit, LoadError> {
    // While this is the only thread: the progress bar's ticker and the workers inherit the set,
    // and the default thread count is read from it.
    if let Some(cpus) = &args.pin_cpus {
        common::cpu::pin_current_process(cpus)?;
    }
    let opts = args.options()?;
    if opts.tls.insecure {
        eprintln!(
            "WARNING: --insecure: the server's certificate chain and hostname will NOT be verified; results are marked insecure"
        );
    }
    if opts.tls.keylog.is_some() {
        eprintln!("WARNING: --keylog writes every session key to a file");
    }
    if args.verbose && args.requests == Some(1) {
        if opts.target.plain {
            return Err(LoadError::Options(format!(
                "{}: --verbose -n 1 traces a TLS handshake; an http:// target has none",
                opts.target.url
            )));
        }
        return crate::oneshot::run(&opts);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let signals = signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&stop))
        .and_then(|_| signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&stop)));
    if let Err(e) = signals {
        return Err(LoadError::Io {
            what: "installing signal handlers".into(),
            source: e,
        });
    }

    let hdr_file = match &args.hdr_log {
        Some(p) => Some(std::fs::File::create(p).map_err(|source| LoadError::Io {
            what: format!("creating {}", p.display()),
            source,
        })?),
        None => None,
    };
    let mut serializer = hdrhistogram::serialization::V2DeflateSerializer::new();
    let mut hdr_file = hdr_file;
    let hdr = match hdr_file.as_mut() {
        Some(f) => {
            let mut b = hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder::new();
            b.add_comment(&format!(
                "tlsbench load {} (request latency, µs)",
                opts.target.url
            ));
            b.with_start_time(std::time::SystemTime::now());
            b.with_max_value_divisor(1.0);
            Some(
                b.begin_log_with(f, &mut serializer)
                    .map_err(|e| LoadError::Io {
                        what: "writing the hdr log header".into(),
                        source: std::io::Error::other(format!("{e:?}")),
                    })?,
            )
        }
        None => None,
    };
    let bar = (!args.quiet && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.enable_steady_tick(Duration::from_millis(200));
        b
    });
    let mut obs = CliObserver {
        bar,
        hdr,
        last: (Duration::ZERO, 0),
    };
    if let Some(start) = &args.start_at {
        start.wait(args.start_at_max_wait)?;
    }
    let result = crate::run(&opts, &mut obs, &stop)?;
    if let Some(b) = obs.bar.take() {
        b.finish_and_clear();
    }
    drop(obs);

    let doc = report::document(&opts, &result, command_line);
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "{}", report::human(&opts, &doc));
    let _ = out.flush();
    if let Some(w) = doc
        .results
        .open_loop
        .as_ref()
        .and_then(report::OpenLoop::shortfall)
    {
        eprintln!("WARNING: {w}");
    }
    if let Some(p) = &args.json {
        let text = serde_json::to_string_pretty(&doc).map_err(|e| LoadError::Io {
            what: "encoding JSON".into(),
            source: std::io::Error::other(e),
        })?;
        std::fs::write(p, text + "\n").map_err(|source| LoadError::Io {
            what: format!("writing {}", p.display()),
            source,
        })?;
    }
    if result.verification_failed {
        eprintln!(
            "tlsbench load: certificate refused: {}",
            result
                .incomplete
                .as_deref()
                .unwrap_or("verification failed")
        );
        return Ok(Exit::Verify);
    }
    Ok(if result.incomplete.is_some() {
        Exit::Incomplete
    } else {
        Exit::Ok
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_decimal_and_binary_units() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("10MiB").unwrap(), 10 << 20);
        assert_eq!(parse_size("1MB").unwrap(), 1_000_000);
        assert_eq!(parse_size("64KiB").unwrap(), 65_536);
        assert_eq!(parse_size("2GB").unwrap(), 2_000_000_000);
        assert!(parse_size("10 parsecs").is_err());
        assert!(parse_size("MiB").is_err());
    }

    #[derive(clap::Parser)]
    struct Cmd {
        #[command(flatten)]
        args: LoadArgs,
    }

    fn parse(extra: &[&str]) -> Result<LoadArgs, clap::Error> {
        use clap::Parser as _;
        let mut argv = vec!["load", "https://bank32.com/"];
        argv.extend(extra);
        Cmd::try_parse_from(argv).map(|c| c.args)
    }

    #[cfg(feature = "ring")]
    #[test]
    fn ring_with_a_group_it_lacks_is_refused_naming_both() {
        let dial = ["--connect-to", "127.0.0.1:1"];
        let a = parse(
            &[
                &dial[..],
                &["--provider", "ring", "--kx-groups", "X25519MLKEM768"],
            ]
            .concat(),
        )
        .unwrap();
        let err = a.options().err().unwrap().to_string();
        assert!(
            err.contains("the ring provider has no key-exchange group X25519MLKEM768"),
            "{err}"
        );
        let ok = parse(&[&dial[..], &["--provider", "ring"]].concat())
            .unwrap()
            .options()
            .unwrap();
        assert_eq!(ok.tls.provider, tls::Provider::Ring);
    }

    #[cfg(not(feature = "ring"))]
    #[test]
    fn ring_without_its_feature_is_refused_naming_the_feature() {
        let err = parse(&["--provider", "ring"]).err().unwrap().to_string();
        assert!(err.contains("cargo feature `ring`"), "{err}");
    }

    #[test]
    fn a_bare_duration_is_seconds_as_in_wrk_and_h2load() {
        let a = parse(&["-d", "3", "--warmup", "1.5", "--timeout", "2"]).unwrap();
        assert_eq!(a.duration, Some(Duration::from_secs(3)));
        assert_eq!(a.warmup, Duration::from_millis(1500));
        assert_eq!(a.timeout, Duration::from_secs(2));
        let a = parse(&["-d", "500ms", "--warmup", "2m"]).unwrap();
        assert_eq!(a.duration, Some(Duration::from_millis(500)));
        assert_eq!(a.warmup, Duration::from_secs(120));
        let e = parse(&["-d", "soon"]).err().unwrap().to_string();
        assert!(e.contains("invalid duration 'soon'"), "{e}");
    }

    #[test]
    fn a_segment_runs_its_share_of_connections_requests_and_rate() {
        let flags = ["--connect-to", "127.0.0.1:1", "-c", "5", "-n", "11"];
        let no_env = |_: &str| None;
        let parts: Vec<LoadOptions> = (0..2)
            .map(|i| {
                let seg = format!("{i}/2");
                parse(&[&flags[..], &["--rate", "99", "--segment", &seg]].concat())
                    .unwrap()
                    .options_in(no_env)
                    .unwrap()
            })
            .collect();
        assert_eq!(
            parts.iter().map(|o| o.connections).collect::<Vec<_>>(),
            [3, 2]
        );
        assert_eq!(
            parts.iter().map(|o| o.requests).collect::<Vec<_>>(),
            [Some(6), Some(5)]
        );
        assert_eq!(parts[0].rate, Some(49.5));
        assert_eq!(parts[1].segment, Some(Segment { index: 1, count: 2 }));
        // The environment's index and count when the flag is absent.
        let env = |k: &str| match k {
            "JOB_COMPLETION_INDEX" => Some("2".to_string()),
            "TLSBENCH_SEGMENTS" => Some("3".to_string()),
            _ => None,
        };
        let o = parse(&flags).unwrap().options_in(env).unwrap();
        assert_eq!((o.connections, o.requests), (1, Some(3)));
        // More parts than connections: a part would have none.
        let err = parse(&[&flags[..], &["--segment", "5/6"]].concat())
            .unwrap()
            .options_in(no_env)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("--connections 5"), "{err}");
        let a = parse(&[
            "--start-at",
            "2026-12-01T05:00:00Z",
            "--start-at-max-wait",
            "1m",
        ])
        .unwrap();
        assert_eq!(a.start_at.unwrap().text, "2026-12-01T05:00:00Z");
        assert_eq!(a.start_at_max_wait, Duration::from_secs(60));
        assert!(parse(&["--start-at", "5pm"]).is_err());
    }
}
