//! Support for the root package's binary-level tests: the `tlsbench` binary as a child
//! process (killed and reaped on drop, run to the end with a bound through [`process`]), a
//! server child whose stdout lines are waited on instead of sleeping, temp directories, a
//! verifying client, Prometheus scraping of `--admin`, a server child as `tlsbench load`'s
//! target ([`LoadTarget`]), the run directory and results of `tlsbench run`, and the check
//! that a side's CPU per operation is plausible.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use server::cli::ServerArgs;

pub use crate::process::{self, ChildGuard, Ran, spawn_guarded};

/// The `tlsbench` binary under test. Cargo builds it for the root package's integration tests
/// and names it in `CARGO_BIN_EXE_tlsbench` when it runs them; this crate is compiled apart
/// from them, so it reads the variable at run time.
///
/// # Panics
///
/// When the variable is not set (the test binary was not started by `cargo test`).
pub fn bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| match std::env::var_os("CARGO_BIN_EXE_tlsbench") {
        Some(path) => PathBuf::from(path),
        None => panic!(
            "CARGO_BIN_EXE_tlsbench is not set: run the root package's tests with cargo test"
        ),
    })
}
/// A command that should exit by itself must do so within this.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a server child may take to say where it listens. Generous because a server
/// without certificates first generates every key type's (RSA-4096 included), which on a
/// loaded machine has taken more than 20 s; the wait ends as soon as the line comes.
pub const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// The hello page's length.
pub const HELLO_LEN: usize = 228;
/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Makes the directory (see [`crate::temp_dir`]).
    pub fn new(tag: &str) -> TempDir {
        TempDir(crate::temp_dir(tag))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Reads `r` to the end on a thread; the buffer fills as bytes arrive, and the receiver
/// disconnects once the end (EOF) has been read.
pub fn drain(mut r: impl Read + Send + 'static) -> (Arc<Mutex<Vec<u8>>>, Receiver<()>) {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let out = Arc::clone(&buf);
    let (tx, done) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let _tx = tx;
        let mut chunk = [0u8; 4096];
        loop {
            match r.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.lock().unwrap().extend_from_slice(&chunk[..n]),
            }
        }
    });
    (buf, done)
}

/// Reads `r` line by line on a thread; the receiver disconnects at its end (EOF), so a
/// child's closed stdout is seen as a disconnect.
pub fn lines(r: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// What [`drain`] has read so far, as (lossy) text.
pub fn text(buf: &Arc<Mutex<Vec<u8>>>) -> String {
    String::from_utf8_lossy(&buf.lock().unwrap()).into_owned()
}

/// Runs the binary with `args` to completion; kills it and fails if it runs longer than
/// [`EXIT_TIMEOUT`].
pub fn tlsbench(args: &[&str]) -> Ran {
    tlsbench_within(args, EXIT_TIMEOUT)
}

/// Runs the binary with `args` to completion; kills it and fails if it runs longer than
/// `limit`.
pub fn tlsbench_within(args: &[&str], limit: Duration) -> Ran {
    let mut cmd = Command::new(bin());
    cmd.args(args);
    process::run_bounded(cmd, limit)
}

/// `tlsbench certs` into `dir` for `types` (comma-separated key types); fails the test unless
/// it succeeds.
pub fn make_certs(dir: &Path, types: &str) -> Ran {
    let ran = tlsbench(&["certs", "--out", p(dir), "--key-type", types]);
    assert!(ran.status.success(), "{}", ran.describe());
    ran
}

/// A path as a command-line argument (test paths are UTF-8).
pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A `tlsbench server` child with its stdout read line by line on a thread.
pub struct ServerProc {
    /// The child, killed and reaped on drop.
    pub guard: ChildGuard,
    /// Stdout lines as the reader thread reads them.
    pub lines: Receiver<String>,
    /// The stdout lines received so far.
    pub stdout: Vec<String>,
    /// Stderr, read to the end on a thread.
    pub stderr: Arc<Mutex<Vec<u8>>>,
    /// Disconnects once stderr has been read to its end.
    pub stderr_done: Receiver<()>,
}

impl ServerProc {
    /// Starts `tlsbench server` with `args`.
    pub fn start(args: &[&str]) -> ServerProc {
        let mut cmd = Command::new(bin());
        cmd.arg("server").args(args);
        ServerProc::spawn(cmd)
    }

    /// Starts `cmd` (a `tlsbench server …` command the caller may have given an environment or
    /// a working directory) with its output captured.
    pub fn spawn(mut cmd: Command) -> ServerProc {
        let mut guard = spawn_guarded(&mut cmd, Stdio::null());
        let (stderr, stderr_done) = drain(guard.child().stderr.take().unwrap());
        let lines = lines(guard.child().stdout.take().unwrap());
        ServerProc {
            guard,
            lines,
            stdout: Vec::new(),
            stderr,
            stderr_done,
        }
    }

    /// Reads stdout lines until one contains `marker`; returns the text after it.
    pub fn line_after(&mut self, marker: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => {
                    self.stdout.push(line.clone());
                    if let Some((_, rest)) = line.split_once(marker) {
                        return rest.to_owned();
                    }
                }
                Err(e) => panic!(
                    "no {marker:?} line from the server ({e:?}); stdout so far:\n{}\nstderr:\n{}",
                    self.stdout.join("\n"),
                    text(&self.stderr)
                ),
            }
        }
    }

    /// The address in the `... listening on <scheme>ADDR/...` line.
    pub fn addr_after(&mut self, marker: &str) -> SocketAddr {
        let rest = self.line_after(marker, READY_TIMEOUT);
        let addr = rest.split('/').next().unwrap();
        addr.parse()
            .unwrap_or_else(|e| panic!("bad address {addr:?} in {rest:?}: {e}"))
    }

    /// Sends `sig` and waits (bounded by `within`) for the process to close its stdout and
    /// exit; returns the exit status; `stdout` and `stderr` are then complete.
    pub fn signal_and_wait(&mut self, sig: libc::c_int, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        self.guard.signal(sig);
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => self.stdout.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!(
                    "the server did not exit within {within:?} of signal {sig}; stdout:\n{}\nstderr:\n{}",
                    self.stdout.join("\n"),
                    text(&self.stderr)
                ),
            }
        }
        let status = self.guard.wait_until(deadline).unwrap_or_else(|| {
            panic!("the server closed stdout but did not exit within {within:?} of signal {sig}")
        });
        // The process is gone; wait until its stderr has been read to the end.
        let left = deadline.saturating_duration_since(Instant::now());
        assert_eq!(
            self.stderr_done.recv_timeout(left + Duration::from_secs(1)),
            Err(RecvTimeoutError::Disconnected),
            "stderr still open after the server exited"
        );
        status
    }

    /// The stdout lines received so far, one string.
    pub fn stdout_text(&self) -> String {
        self.stdout.join("\n")
    }
}

/// A verifying rustls client trusting `ca`, with rustls's default versions and resumption.
pub fn client_config(ca: &Path) -> Arc<ClientConfig> {
    client_config_for(ca, rustls::DEFAULT_VERSIONS)
}

/// A verifying rustls client trusting `ca`, offering `versions`, resuming as rustls does by
/// default (TLS 1.3 tickets, TLS 1.2 session IDs and tickets).
pub fn client_config_for(
    ca: &Path,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cfg = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(cfg)
}

/// Reads one response (head through the blank line, then a 228-byte hello body).
pub fn read_hello(tls: &mut StreamOwned<ClientConnection, TcpStream>) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 4096 {
            return Err(std::io::Error::other("response head too long"));
        }
        tls.read_exact(&mut byte)?;
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    if !head.starts_with("HTTP/1.1 200 ") {
        return Err(std::io::Error::other(format!("not a 200: {head:?}")));
    }
    let want = format!("content-length: {HELLO_LEN}\r\n");
    if !head.to_ascii_lowercase().contains(&want) {
        return Err(std::io::Error::other(format!(
            "not the hello page: {head:?}"
        )));
    }
    let mut body = [0u8; HELLO_LEN];
    tls.read_exact(&mut body)?;
    if &body[..] != server::http::HELLO_PAGE {
        return Err(std::io::Error::other("wrong hello body"));
    }
    Ok(())
}

/// The server's counters from its admin endpoint, through the server's own reader.
pub fn scrape(admin: SocketAddr) -> server::Snapshot {
    server::metrics::scrape(admin).unwrap()
}

/// Polls `cond` every 5 ms until it holds or `within` passes; returns whether it held.
pub fn wait_until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What a process's descriptors point at (`readlink /proc/PID/fd/*`).
pub fn fd_targets(pid: u32) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return out;
    };
    for entry in dir.flatten() {
        if let Ok(t) = std::fs::read_link(entry.path()) {
            out.push(t.to_string_lossy().into_owned());
        }
    }
    out
}

/// A `/proc/PID/status` field in kB or as a count (VmRSS, VmHWM, Threads).
pub fn proc_status(pid: u32, field: &str) -> u64 {
    let status = common::procfs::status(&pid.to_string()).unwrap();
    common::procfs::status_field(&status, field)
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// User + system CPU time of a process so far (`/proc/PID/stat` fields 14 and 15).
pub fn proc_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name (field 2) may hold spaces; the fields after it follow its ')'.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap();
    Duration::from_micros(ticks * 1_000_000 / hz)
}

/// The flags of a test server: 127.0.0.1 port 0, metrics on a loopback port, one worker,
/// certificates under `dir/certs` (made if missing). Tests change what they need and start
/// it with [`server_with`]; [`ServerArgs::to_args`] writes the command line.
pub fn server_args(dir: &Path) -> ServerArgs {
    ServerArgs {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        admin: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        threads: Some(1),
        certs_dir: dir.join("certs"),
        ..ServerArgs::default()
    }
}

/// `tlsbench server ARGS` as a command, for callers that wrap it (prlimit) or set its
/// environment.
pub fn server_command(args: &ServerArgs) -> Command {
    let mut cmd = Command::new(bin());
    cmd.arg("server").args(args.to_args());
    cmd
}

/// A `tlsbench server` with `args` running in `dir`; returns it with its TLS and admin
/// addresses once it said it is listening.
pub fn server_with(dir: &Path, args: &ServerArgs) -> (ServerProc, SocketAddr, SocketAddr) {
    let mut cmd = server_command(args);
    cmd.current_dir(dir);
    let mut server = ServerProc::spawn(cmd);
    let addr = server.addr_after("listening on https://");
    let admin = server.addr_after("admin listening on http://");
    (server, addr, admin)
}

/// [`server_in`]'s flags: [`server_args`] with `extra` flags read by the server's own parser
/// (so a misspelt flag fails here, not as a server that never starts).
pub fn server_args_with(dir: &Path, extra: &[&str]) -> ServerArgs {
    let parsed = ServerArgs::try_parse_from(std::iter::once("server").chain(extra.iter().copied()))
        .unwrap_or_else(|e| panic!("test server flags {extra:?}: {e}"));
    let base = server_args(dir);
    ServerArgs {
        listen: base.listen,
        admin: base.admin,
        threads: parsed.threads.or(base.threads),
        certs_dir: base.certs_dir,
        ..parsed
    }
}

/// A `tlsbench server` on 127.0.0.1 port 0 running in `dir`, with certificates under
/// `dir/certs` (made if missing) and metrics on a loopback port, plus `extra` flags; one worker
/// unless `extra` says `--threads`. Returns it with its TLS and admin addresses once it said
/// it is listening.
pub fn server_in(dir: &Path, extra: &[&str]) -> (ServerProc, SocketAddr, SocketAddr) {
    server_with(dir, &server_args_with(dir, extra))
}

/// A one-row scenario file for `tlsbench run --quick`: a full TLS 1.3 handshake (X25519,
/// ecdsa-p256, no resumption) on four connections for one second after 200 ms of warm-up.
pub const ONE_ROW_MATRIX: &str = r#"
[defaults]
connections = 4
duration = "1s"
warmup = "200ms"
quick_duration = "1s"
quick_warmup = "200ms"

[[scenario]]
name = "full tls1.3 x25519 ecdsa-p256"
kind = "handshake"
tls = "1.3"
cert = "ecdsa-p256"
kx_groups = ["X25519"]
server_resumption = "off"
resume = "off"
"#;

/// The arguments of `tlsbench run --quick --scenarios MATRIX --out OUT` followed by `extra`.
pub fn quick_run<'a>(matrix: &'a Path, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run", "--quick", "--scenarios", p(matrix), "--out", p(out)];
    args.extend(extra);
    args
}

/// Writes `toml` as the scenario file `name` in `dir`, for `tlsbench run --scenarios`.
pub fn write_matrix(dir: &Path, name: &str, toml: &str) -> PathBuf {
    let matrix = dir.join(name);
    std::fs::write(&matrix, toml).unwrap();
    matrix
}

/// The directory one `tlsbench run --out <out>` made under `out` (the first entry: each test
/// gives every run its own `out`).
pub fn run_dir(out: &Path) -> PathBuf {
    std::fs::read_dir(out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
}

/// `results.json` of a run directory, parsed.
pub fn results_json(run_dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run_dir.join("results.json")).unwrap()).unwrap()
}

/// A server child with its certificates, for `tlsbench load` runs.
pub struct LoadTarget {
    /// The server child.
    pub server: ServerProc,
    /// Its TLS listener.
    pub addr: SocketAddr,
    /// Its admin (metrics) listener.
    pub admin: SocketAddr,
    /// The CA of its chain, for `--cacert`.
    pub ca: PathBuf,
    /// The directory holding the certificates; a test's files go here too.
    pub dir: TempDir,
}

/// A `tlsbench server` child on a fresh ECDSA P-256 chain from `tlsbench certs`.
pub fn load_target() -> LoadTarget {
    let dir = TempDir::new("load");
    make_certs(&dir.path().join("certs"), "ecdsa-p256");
    let (server, addr, admin) = server_in(dir.path(), &[]);
    let ca = dir.path().join("certs/ecdsa-p256/ca.pem");
    LoadTarget {
        server,
        addr,
        admin,
        ca,
        dir,
    }
}

impl LoadTarget {
    /// `tlsbench load https://HOST:PORT/ --connect-to ADDR`: trusting the platform's roots
    /// only, to add flags to.
    pub fn load_command_without_ca(&self, host: &str) -> Command {
        let mut cmd = Command::new(bin());
        cmd.arg("load")
            .arg(format!("https://{host}:{}/", self.addr.port()))
            .args(["--connect-to", &self.addr.to_string()]);
        cmd
    }

    /// [`Self::load_command_without_ca`] trusting the server's CA (`--cacert CA`).
    pub fn load_command(&self, host: &str) -> Command {
        let mut cmd = self.load_command_without_ca(host);
        cmd.args(["--cacert", p(&self.ca)]);
        cmd
    }

    /// [`Self::load_command`] with `args`, run to the end (bounded by [`EXIT_TIMEOUT`]).
    pub fn load(&self, host: &str, args: &[&str]) -> Ran {
        let mut cmd = self.load_command(host);
        cmd.args(args);
        process::run_bounded(cmd, EXIT_TIMEOUT)
    }

    /// [`Self::load_command_without_ca`] with `args`, run to the end (bounded by
    /// [`EXIT_TIMEOUT`]).
    pub fn load_without_ca(&self, host: &str, args: &[&str]) -> Ran {
        let mut cmd = self.load_command_without_ca(host);
        cmd.args(args);
        process::run_bounded(cmd, EXIT_TIMEOUT)
    }
}

/// The most cores a side's CPU time may add up to: its measured window has edges (a worker
/// starts its CPU clock a little before the first operation and stops it a little after the
/// last), worth a few percent of a one-second window.
pub const CORES_SLACK: f64 = 1.05;

/// Fails unless `cpu_us_per_op` is plausible for a side with `cores` cores doing `rate`
/// operations a second: positive (every operation costs CPU) and, multiplied by the rate, no
/// more than the side's cores. An inflated CPU time, or one divided by too few operations,
/// claims more cores than the side had.
pub fn assert_cpu_plausible(what: &str, rate: f64, cpu_us_per_op: f64, cores: f64) {
    assert!(
        rate > 0.0 && cpu_us_per_op > 0.0,
        "{what}: rate {rate}, CPU {cpu_us_per_op} µs/op"
    );
    let used = rate * cpu_us_per_op / 1e6;
    assert!(
        used <= cores * CORES_SLACK,
        "{what}: {rate:.1} ops/s × {cpu_us_per_op:.1} µs/op = {used:.2} cores, but the side had {cores}"
    );
}
