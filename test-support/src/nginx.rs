//! A real nginx on loopback for interoperability tests: [`Nginx::start`] runs it in the
//! foreground from a private temporary directory and [`Drop`] stops it and removes the directory.
//!
//! It needs an `nginx` binary (`nginx-light` on Debian).

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The page nginx serves at `/`: the same 228 bytes as `server::http::HELLO_PAGE`, so the
/// tlsbench server and nginx are measured on identical responses.
pub const HELLO_PAGE: &[u8] = b"<!DOCTYPE html><html><head><title>Hello World</title><style>body {background-color: black}h1 {font-size:3cm; text-align: center; color: white; text-shadow: 0 0 3mm yellow}</style></head><body><h1>Hello, world!</h1></body></html>";

/// Where nginx is looked for first; then every directory of `PATH`.
const NGINX_PATH: &str = "/usr/sbin/nginx";
/// How many free ports are tried before giving up when another process takes the port first.
const START_ATTEMPTS: usize = 5;
/// How long nginx may take to write its pid file and accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long nginx may take to exit after SIGTERM before the whole process group gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// TLS settings of the nginx server block; `Default` is nginx's usual production setup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NginxOptions {
    /// `ssl_session_cache shared:SSL:1m; ssl_session_timeout 10m;` (session ID resumption)
    /// when true, `ssl_session_cache off;` when false.
    pub session_cache: bool,
    /// `ssl_session_tickets on|off;` (stateless resumption, and TLS 1.3 resumption).
    pub tickets: bool,
    /// The `ssl_protocols` value, e.g. `"TLSv1.2 TLSv1.3"`.
    pub protocols: &'static str,
    /// `ssl_early_data on|off;` (TLS 1.3 0-RTT; off, nginx's default).
    pub early_data: bool,
}

impl Default for NginxOptions {
    fn default() -> Self {
        Self {
            session_cache: true,
            tickets: true,
            protocols: "TLSv1.2 TLSv1.3",
            early_data: false,
        }
    }
}

/// A running nginx serving HTTPS on `127.0.0.1:<port>`; stopped and cleaned up on drop.
#[derive(Debug)]
pub struct Nginx {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Nginx {
    /// Starts nginx serving HTTPS on `127.0.0.1:<free port>` with `chain` (leaf then
    /// intermediate, PEM) and its private `key`, and returns once it accepts connections.
    ///
    /// Panics (this is a test helper) if nginx is not installed, the configuration is refused,
    /// nginx dies while starting or is not ready within 10 s; the message holds the error log.
    pub fn start(chain: &Path, key: &Path, opts: &NginxOptions) -> Nginx {
        let nginx = find_nginx()
            .unwrap_or_else(|| panic!("nginx not found: install nginx-light (see .ci/run)"));
        let dir = make_temp_dir();
        // From here on a panic must still remove the directory.
        let cleanup = DirGuard(Some(dir.clone()));

        fs::copy(chain, dir.join("chain.pem")).unwrap_or_else(|e| {
            panic!(
                "cannot copy {} into {}: {e}",
                chain.display(),
                dir.display()
            )
        });
        let key_pem =
            fs::read(key).unwrap_or_else(|e| panic!("cannot read {}: {e}", key.display()));
        write_new(&dir.join("key.pem"), &key_pem, 0o600);
        fs::create_dir(dir.join("html")).expect("create html directory");
        write_new(&dir.join("html").join("index.html"), HELLO_PAGE, 0o644);

        let mut last_failure = String::new();
        for attempt in 1..=START_ATTEMPTS {
            let port = free_port();
            fs::write(dir.join("nginx.conf"), config(&dir, port, opts)).expect("write nginx.conf");
            for stale in ["nginx.pid", "error.log", "stderr.log"] {
                let _ = fs::remove_file(dir.join(stale));
            }
            let stderr = File::create(dir.join("stderr.log")).expect("create stderr.log");
            let mut command = Command::new(&nginx);
            command
                .arg("-p")
                .arg(&dir)
                .arg("-c")
                .arg(dir.join("nginx.conf"))
                .arg("-e")
                .arg(dir.join("error.log"))
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                // Its own process group, so the workers can be killed with the master if it
                // ignores SIGTERM, and a Ctrl-C meant for cargo is not delivered to it twice.
                .process_group(0);
            let mut child = command
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", nginx.display()));
            match wait_ready(&mut child, &dir, port) {
                Ok(()) => {
                    std::mem::forget(cleanup);
                    return Nginx { child, port, dir };
                }
                Err(Startup::PortTaken) => {
                    stop(&mut child);
                    last_failure = read_logs(&dir);
                    eprintln!(
                        "nginx: port {port} was taken before nginx bound it (attempt {attempt} of {START_ATTEMPTS}); retrying"
                    );
                }
                Err(Startup::Failed(why)) => {
                    stop(&mut child);
                    let log = read_logs(&dir);
                    panic!("nginx failed to start: {why}\n--- nginx error log ---\n{log}");
                }
            }
        }
        panic!(
            "nginx could not bind a free port in {START_ATTEMPTS} attempts\n--- nginx error log ---\n{last_failure}"
        );
    }

    /// The loopback port nginx listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// nginx's private directory (config, logs, the copied certificate and key).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The master process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The error log (followed by anything nginx wrote to stderr), for assertion messages.
    pub fn error_log(&self) -> String {
        read_logs(&self.dir)
    }
}

/// Waits, without sleeping, until nginx has written its pid file (it does so only after
/// binding the listening socket, so a connection cannot reach some other process that took
/// the port) and a TCP connection to the port succeeds.
fn wait_ready(child: &mut Child, dir: &Path, port: u16) -> Result<(), Startup> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let pid_file = dir.join("nginx.pid");
    let pid = child.id().to_string();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                return Err(if read_logs(dir).contains("Address already in use") {
                    Startup::PortTaken
                } else {
                    Startup::Failed(format!("nginx exited while starting ({status})"))
                });
            }
            Ok(None) => {}
            Err(e) => return Err(Startup::Failed(format!("cannot poll nginx: {e}"))),
        }
        let pid_written = fs::read_to_string(&pid_file).is_ok_and(|text| text.trim() == pid);
        if pid_written && TcpStream::connect(addr).is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Startup::Failed(format!(
                "not accepting connections on {addr} after {READY_TIMEOUT:?}"
            )));
        }
        thread::yield_now();
    }
}

/// SIGTERM (nginx's fast shutdown: the master stops its workers, then exits), then SIGKILL
/// to the whole process group if it is still running after [`STOP_TIMEOUT`]; reaps it.
fn stop(child: &mut Child) {
    let Ok(pid) = libc::pid_t::try_from(child.id()) else {
        return;
    };
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    // SAFETY: `pid` is our unreaped child, so the id cannot have been reused.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) => thread::yield_now(),
        }
    }
    eprintln!("nginx {pid} ignored SIGTERM for {STOP_TIMEOUT:?}; killing its process group");
    // SAFETY: the master is unreaped, so its process group id (its pid, from
    // `process_group(0)`) still names nginx's master and workers only.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
    let _: io::Result<ExitStatus> = child.wait();
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "--- nginx error log ({}) ---\n{}",
                self.addr(),
                self.error_log()
            );
        }
        stop(&mut self.child);
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Why one start attempt failed.
enum Startup {
    /// Another process bound the port between [`free_port`] and nginx's bind: try another.
    PortTaken,
    /// Anything else: report it.
    Failed(String),
}

/// Removes the directory on drop unless forgotten (a panic during [`Nginx::start`]).
struct DirGuard(Option<PathBuf>);

impl Drop for DirGuard {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

/// The error log followed by anything nginx wrote to stderr.
fn read_logs(dir: &Path) -> String {
    let mut log = match fs::read(dir.join("error.log")) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => format!("(no error log: {e})\n"),
    };
    if let Ok(bytes) = fs::read(dir.join("stderr.log"))
        && !bytes.is_empty()
    {
        let _ = write!(log, "--- stderr ---\n{}", String::from_utf8_lossy(&bytes));
    }
    log
}

fn find_nginx() -> Option<PathBuf> {
    let fixed = PathBuf::from(NGINX_PATH);
    if fixed.is_file() {
        return Some(fixed);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.is_file())
}

/// A fresh, private (0700) directory unique to this process and instance.
fn make_temp_dir() -> PathBuf {
    common::io::private_temp_dir("tlsbench-nginx")
        .unwrap_or_else(|e| panic!("cannot create nginx's directory: {e}"))
}

fn write_new(path: &Path, contents: &[u8], mode: u32) {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .and_then(|mut file| file.write_all(contents))
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// A port that was free a moment ago: nginx cannot listen on port 0 and report the port.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("bind 127.0.0.1:0 to find a free port")
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// nginx.conf for one instance. Every path nginx would write to is inside `dir`, so it needs
/// neither /var/lib/nginx nor /run, and parallel instances never share a file.
fn config(dir: &Path, port: u16, opts: &NginxOptions) -> String {
    let d = dir.display();
    // As root the workers would otherwise switch to `nobody`, who cannot read the 0700
    // directory; as another user nginx ignores `user` (with a warning), so leave it out.
    let user = if is_root() { "user root;\n" } else { "" };
    let session_cache = if opts.session_cache {
        "ssl_session_cache shared:SSL:1m;\n        ssl_session_timeout 10m;"
    } else {
        "ssl_session_cache off;"
    };
    let tickets = if opts.tickets { "on" } else { "off" };
    let protocols = opts.protocols;
    let early_data = if opts.early_data { "on" } else { "off" };
    format!(
        r#"# Generated by test_support::nginx.
daemon off;
master_process on;
worker_processes 1;
{user}pid {d}/nginx.pid;
lock_file {d}/nginx.lock;
error_log {d}/error.log notice;

events {{
    worker_connections 1024;
}}

http {{
    access_log off;
    client_body_temp_path {d}/client_body_temp;
    proxy_temp_path {d}/proxy_temp;
    fastcgi_temp_path {d}/fastcgi_temp;
    uwsgi_temp_path {d}/uwsgi_temp;
    scgi_temp_path {d}/scgi_temp;

    server {{
        listen 127.0.0.1:{port} ssl;
        server_name bank32.com localhost;

        ssl_certificate {d}/chain.pem;
        ssl_certificate_key {d}/key.pem;
        ssl_protocols {protocols};
        {session_cache}
        ssl_session_tickets {tickets};
        ssl_early_data {early_data};
        ssl_prefer_server_ciphers off;

        keepalive_requests 100000;
        root {d}/html;

        location = / {{
            default_type text/html;
            index index.html;
        }}
    }}
}}
"#
    )
}
