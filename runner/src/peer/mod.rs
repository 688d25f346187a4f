//! Peers: a foreign TLS server (`--peer nginx`, `--peer openssl` for `openssl s_server`) that
//! `tlsbench run` starts for each row in place of ours, from a configuration generated in a
//! private temporary directory (the scenario's certificate chain and key, the hello page,
//! `/bytes/N` files, `/sink`, resumption as the scenario says), pinned to the server CPUs, and
//! stopped after the row with its whole process group gone. Its CPU is read from its process
//! tree by [`crate::foreign_cpu`].
//!
//! # Layout
//! - [`nginx`]: nginx.conf for a row, and nginx's start (it cannot listen on port 0).
//! - [`openssl`]: `openssl s_server -WWW` arguments for a row.
//! - `names`: rustls's suite and group names in OpenSSL's spelling.

mod names;
pub mod nginx;
pub mod openssl;

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::tls::Version;
use rustls::SupportedCipherSuite;
use rustls::crypto::SupportedKxGroup;
use server::config::Resumption;

use crate::scenario::{Body, Matrix, Scenario};

/// When set, the only directories (`PATH` syntax) a peer's program is looked for in: tests
/// point it at a directory without the program to see the refusal.
pub const PEER_PATH_ENV: &str = "TLSBENCH_PEER_PATH";

/// Where peers' programs are looked for after `PATH` (nginx is in /usr/sbin, which a user's
/// `PATH` often lacks).
const SYSTEM_DIRS: [&str; 4] = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin"];

/// How long a peer may take to listen.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a peer may take to exit after SIGTERM before its process group gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A foreign TLS server the runner can start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PeerKind {
    /// nginx (Debian package nginx-light), one worker process per server CPU.
    Nginx,
    /// `openssl s_server -WWW` (Debian package openssl): one connection at a time, no
    /// keep-alive, no POST; one server CPU.
    Openssl,
    /// HAProxy (Debian package haproxy): refused, its configuration is not written yet.
    Haproxy,
}

impl PeerKind {
    /// The program's file name.
    pub fn program(self) -> &'static str {
        match self {
            PeerKind::Nginx => "nginx",
            PeerKind::Openssl => "openssl",
            PeerKind::Haproxy => "haproxy",
        }
    }

    /// The Debian package that installs it.
    pub fn package(self) -> &'static str {
        match self {
            PeerKind::Nginx => "nginx-light",
            PeerKind::Openssl => "openssl",
            PeerKind::Haproxy => "haproxy",
        }
    }
}

/// Why a peer could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// Its program is not installed.
    #[error("--peer {}: `{}` not found in {searched}: install the Debian package {}", .kind.program(), .kind.program(), .kind.package())]
    NotInstalled {
        /// The peer.
        kind: PeerKind,
        /// The directories looked in.
        searched: String,
    },
    /// Installed, but tlsbench cannot configure it.
    #[error("--peer {}: {why}", .kind.program())]
    Unsupported {
        /// The peer.
        kind: PeerKind,
        /// Why.
        why: String,
    },
    /// A scenario asks for something the configuration cannot express.
    #[error("--peer {}: {why}", .kind.program())]
    Config {
        /// The peer.
        kind: PeerKind,
        /// What.
        why: String,
    },
    /// It did not start (its log attached).
    #[error("--peer {}: did not start: {why}", .kind.program())]
    Start {
        /// The peer.
        kind: PeerKind,
        /// Why, with the peer's own messages.
        why: String,
    },
    /// A file or process call failed.
    #[error("--peer: {what}: {source}")]
    Io {
        /// What we were doing.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PeerError {
    let what = what.into();
    move |source| PeerError::Io { what, source }
}

/// A peer's program, found and asked for its version.
#[derive(Clone, Debug)]
pub struct PeerProgram {
    /// Which peer.
    pub kind: PeerKind,
    /// Its executable.
    pub path: PathBuf,
    /// What it says its version is (`nginx/1.22.1`, `OpenSSL 3.0.19 27 Jan 2026`): the run's
    /// `server_software`.
    pub version: String,
}

impl PeerProgram {
    /// Finds `kind`'s program ([`PEER_PATH_ENV`], else `PATH` then the system directories)
    /// and reads its version; a missing program is refused naming its package.
    pub fn find(kind: PeerKind) -> Result<PeerProgram, PeerError> {
        let dirs: Vec<PathBuf> = match std::env::var_os(PEER_PATH_ENV) {
            Some(p) => std::env::split_paths(&p).collect(),
            None => std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
                .unwrap_or_default()
                .into_iter()
                .chain(SYSTEM_DIRS.iter().map(PathBuf::from))
                .collect(),
        };
        PeerProgram::find_in(kind, &dirs)
    }

    /// Finds `kind`'s program in `dirs` and reads its version.
    pub fn find_in(kind: PeerKind, dirs: &[PathBuf]) -> Result<PeerProgram, PeerError> {
        let path = dirs
            .iter()
            .map(|d| d.join(kind.program()))
            .find(|p| p.is_file())
            .ok_or_else(|| PeerError::NotInstalled {
                kind,
                searched: std::env::join_paths(dirs)
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            })?;
        if kind == PeerKind::Haproxy {
            return Err(PeerError::Unsupported {
                kind,
                why: format!(
                    "{} is installed, but tlsbench writes no HAProxy configuration yet (use nginx or openssl)",
                    path.display()
                ),
            });
        }
        let (flag, from_stderr) = match kind {
            PeerKind::Nginx => ("-v", true),
            PeerKind::Openssl | PeerKind::Haproxy => ("version", false),
        };
        let out = Command::new(&path)
            .arg(flag)
            .output()
            .map_err(io_err(format!("running {} {flag}", path.display())))?;
        let text = String::from_utf8_lossy(if from_stderr {
            &out.stderr
        } else {
            &out.stdout
        })
        .into_owned();
        let version = parse_version(kind, &text).ok_or_else(|| PeerError::Start {
            kind,
            why: format!(
                "{} {flag} printed no version: {}",
                path.display(),
                text.trim()
            ),
        })?;
        Ok(PeerProgram {
            kind,
            path,
            version,
        })
    }
}

/// The version in `nginx -v` / `openssl version` output.
fn parse_version(kind: PeerKind, text: &str) -> Option<String> {
    let line = text.lines().next()?.trim();
    let v = match kind {
        PeerKind::Nginx => line.strip_prefix("nginx version: ")?,
        PeerKind::Openssl | PeerKind::Haproxy => line.split(" (").next()?,
    };
    (!v.is_empty()).then(|| v.to_owned())
}

/// What a peer serves for one row: the scenario's TLS and resumption, and the routes the
/// matrix uses.
#[derive(Clone, Debug)]
pub struct Site {
    /// Leaf then intermediates, PEM.
    pub chain: PathBuf,
    /// The leaf's private key, PEM.
    pub key: PathBuf,
    /// Protocol versions.
    pub versions: Vec<Version>,
    /// Cipher suites (empty: the peer's defaults).
    pub suites: Vec<SupportedCipherSuite>,
    /// Key-exchange groups (empty: the peer's defaults).
    pub groups: Vec<&'static dyn SupportedKxGroup>,
    /// Session cache and tickets.
    pub resumption: Resumption,
    /// TLS 1.3 tickets per handshake (None: the peer's default).
    pub tls13_tickets: Option<usize>,
    /// Accept TLS 1.3 early data (the row's `early_data`).
    pub early_data: bool,
    /// Every download size of the matrix: a `/bytes/N` file each.
    pub downloads: BTreeSet<u64>,
    /// Worker processes: one per server CPU.
    pub workers: usize,
}

impl Site {
    /// The site for scenario `s` of `m`, with its certificate from `certs`.
    pub fn of(s: &Scenario, m: &Matrix, certs: &Path, cpus: &[usize]) -> Site {
        let paths = common::certs::paths(certs, s.cert);
        Site {
            chain: paths.chain,
            key: paths.key,
            versions: s.tls.clone(),
            suites: s.cipher_suites.clone(),
            groups: s.kx_groups.clone(),
            resumption: s.server_resumption,
            tls13_tickets: s.tls13_tickets,
            early_data: s.early_data,
            downloads: m
                .scenarios
                .iter()
                .filter_map(|s| match s.body {
                    Some(Body::Download(n)) => Some(n),
                    _ => None,
                })
                .collect(),
            workers: cpus.len().max(1),
        }
    }
}

/// A running peer; stopped (with every process of its group) and its directory removed on
/// drop.
pub struct Peer {
    kind: PeerKind,
    child: Option<Child>,
    /// The peer's main process (nginx's master): the root of the tree its CPU is read from.
    pub pid: u32,
    /// Where it serves HTTPS.
    pub addr: SocketAddr,
    /// The path of the hello page (`/` for nginx; s_server serves only named files).
    pub hello_path: &'static str,
    dir: Option<PathBuf>,
}

impl Peer {
    /// Starts `program` serving `site`, pinned to `cpus`, and returns once it accepts
    /// connections.
    pub fn start(program: &PeerProgram, site: &Site, cpus: &[usize]) -> Result<Peer, PeerError> {
        let dir = make_dir()?;
        // From here on a failure must still remove the directory.
        let guard = DirGuard(Some(dir.clone()));
        write_docroot(&dir, site)?;
        let peer = match program.kind {
            PeerKind::Nginx => nginx::start(program, site, cpus, &dir)?,
            PeerKind::Openssl => openssl::start(program, site, cpus, &dir)?,
            PeerKind::Haproxy => {
                return Err(PeerError::Unsupported {
                    kind: program.kind,
                    why: "no HAProxy configuration".into(),
                });
            }
        };
        std::mem::forget(guard);
        Ok(peer)
    }

    /// Stops the peer: SIGTERM to its main process, SIGKILL to its process group after
    /// `STOP_TIMEOUT`, then waits (bounded) until no process of the group is left.
    pub fn stop(mut self) -> Result<(), PeerError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), PeerError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let result = stop_group(&mut child, self.kind);
        if let Some(dir) = self.dir.take() {
            let _ = fs::remove_dir_all(dir);
        }
        result
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            eprintln!("tlsbench run: {e}");
        }
    }
}

/// The command for a peer's main process: its own process group (so the group can be killed
/// and found), killed with the runner (PR_SET_PDEATHSIG), pinned to `cpus` (workers inherit
/// the mask).
fn command(program: &Path, cpus: &[usize]) -> Command {
    let mut cmd = Command::new(program);
    cmd.process_group(0);
    let runner_pid = std::process::id();
    let cpus = cpus.to_vec();
    // SAFETY: prctl, getppid and sched_setaffinity are async-signal-safe and touch only the
    // child's own state; the CPU set is built on the stack; nothing allocates between fork and
    // exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // A runner killed before the prctl above sent no signal: start nothing.
            if u32::try_from(libc::getppid()).ok() != Some(runner_pid) {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            for &cpu in &cpus {
                if cpu >= libc::CPU_SETSIZE as usize {
                    return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
                }
                libc::CPU_SET(cpu, &mut set);
            }
            if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// PIDs of the processes in process group `pgid` (from `/proc/*/stat`, field 5).
pub fn group_members(pgid: u32) -> std::io::Result<Vec<u32>> {
    Ok(fs::read_dir("/proc")?
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(e.path().join("stat")).ok()?;
            let group: u32 = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(2)?
                .parse()
                .ok()?;
            (group == pgid).then_some(pid)
        })
        .collect())
}

fn stop_group(child: &mut Child, kind: PeerKind) -> Result<(), PeerError> {
    let pid = libc::pid_t::try_from(child.id()).map_err(|_| PeerError::Io {
        what: "stopping the peer".into(),
        source: std::io::Error::other("pid out of range"),
    })?;
    let pgid = child.id();
    if matches!(child.try_wait(), Ok(None)) {
        // SAFETY: `pid` is our unreaped child, so the id names it.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_TIMEOUT;
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if matches!(child.try_wait(), Ok(None)) {
            // SAFETY: the leader is unreaped, so its group id still names only its group.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            let _ = child.wait();
        }
    }
    // Workers leave after the master; while any is left the group id cannot be reused, so
    // killing it reaches only them.
    let deadline = Instant::now() + STOP_TIMEOUT;
    loop {
        let left = group_members(pgid).map_err(io_err("listing /proc"))?;
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(PeerError::Io {
                what: format!("stopping {}", kind.program()),
                source: std::io::Error::other(format!("processes {left:?} outlived it")),
            });
        }
        // SAFETY: the group has live members (just listed), so its id is still theirs.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A fresh private (0700) directory for one peer.
fn make_dir() -> Result<PathBuf, PeerError> {
    common::io::private_temp_dir("tlsbench-peer")
        .map_err(io_err("creating a peer's directory".to_owned()))
}

/// Removes the directory on drop unless forgotten.
struct DirGuard(Option<PathBuf>);

impl Drop for DirGuard {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), PeerError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .and_then(|mut f| f.write_all(contents))
        .map_err(io_err(format!("writing {}", path.display())))
}

/// The key, the chain split into the leaf and the rest (s_server takes them apart), the
/// hello page and the `/bytes/N` files (the pattern our server sends) under `dir`.
fn write_docroot(dir: &Path, site: &Site) -> Result<(), PeerError> {
    let chain = fs::read_to_string(&site.chain)
        .map_err(io_err(format!("reading {}", site.chain.display())))?;
    let key = fs::read(&site.key).map_err(io_err(format!("reading {}", site.key.display())))?;
    let (leaf, rest) = split_chain(&chain).ok_or_else(|| PeerError::Io {
        what: format!("reading {}", site.chain.display()),
        source: std::io::Error::other("no PEM certificate in it"),
    })?;
    write_file(&dir.join("chain.pem"), chain.as_bytes(), 0o644)?;
    write_file(&dir.join("leaf.pem"), leaf.as_bytes(), 0o644)?;
    write_file(&dir.join("intermediates.pem"), rest.as_bytes(), 0o644)?;
    write_file(&dir.join("key.pem"), &key, 0o600)?;
    let html = dir.join("html");
    fs::create_dir_all(html.join("bytes")).map_err(io_err("creating html/bytes"))?;
    write_file(&html.join("index.html"), server::http::HELLO_PAGE, 0o644)?;
    for &n in &site.downloads {
        let path = html.join("bytes").join(n.to_string());
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&path)
            .map_err(io_err(format!("creating {}", path.display())))?;
        let mut offset = 0;
        while offset < n {
            let chunk = common::pattern::chunk(offset, n - offset);
            f.write_all(chunk)
                .map_err(io_err(format!("writing {}", path.display())))?;
            offset += chunk.len() as u64;
        }
    }
    Ok(())
}

/// The first PEM certificate of `chain` and the rest.
fn split_chain(chain: &str) -> Option<(&str, &str)> {
    const END: &str = "-----END CERTIFICATE-----";
    let at = chain.find(END)? + END.len();
    let at = at + chain[at..].find('\n').map_or(0, |i| i + 1);
    Some((&chain[..at], &chain[at..]))
}

/// A port that was free a moment ago, for a peer that cannot listen on port 0 and say which
/// port it got.
fn free_port() -> Result<u16, PeerError> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(io_err("binding 127.0.0.1:0 to find a free port"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_each_programs_own_words() {
        assert_eq!(
            parse_version(PeerKind::Nginx, "nginx version: nginx/1.22.1\n").as_deref(),
            Some("nginx/1.22.1")
        );
        assert_eq!(
            parse_version(
                PeerKind::Openssl,
                "OpenSSL 3.0.19 27 Jan 2026 (Library: OpenSSL 3.0.19 27 Jan 2026)\n"
            )
            .as_deref(),
            Some("OpenSSL 3.0.19 27 Jan 2026")
        );
        assert_eq!(parse_version(PeerKind::Nginx, "something else"), None);
        assert_eq!(parse_version(PeerKind::Nginx, ""), None);
    }

    #[test]
    fn a_chain_splits_into_its_leaf_and_the_rest() {
        let pem = "-----BEGIN CERTIFICATE-----\nAA\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nBB\n-----END CERTIFICATE-----\n";
        let (leaf, rest) = split_chain(pem).unwrap();
        assert_eq!(
            leaf,
            "-----BEGIN CERTIFICATE-----\nAA\n-----END CERTIFICATE-----\n"
        );
        assert!(
            rest.starts_with("-----BEGIN") && rest.contains("BB"),
            "{rest}"
        );
        assert_eq!(split_chain("no pem"), None);
    }

    #[test]
    fn a_missing_program_is_refused_naming_its_package() {
        let empty = std::env::temp_dir().join(format!("tlsbench-nopeer-{}", std::process::id()));
        fs::create_dir_all(&empty).unwrap();
        let results: Vec<String> = [PeerKind::Nginx, PeerKind::Openssl, PeerKind::Haproxy]
            .into_iter()
            .map(|k| {
                PeerProgram::find_in(k, std::slice::from_ref(&empty))
                    .unwrap_err()
                    .to_string()
            })
            .collect();
        fs::remove_dir_all(&empty).unwrap();
        assert!(
            results[0].contains("install the Debian package nginx-light"),
            "{}",
            results[0]
        );
        assert!(
            results[1].contains("install the Debian package openssl"),
            "{}",
            results[1]
        );
        assert!(
            results[2].contains("install the Debian package haproxy"),
            "{}",
            results[2]
        );
        assert!(
            results[0].contains(&empty.display().to_string()),
            "{}",
            results[0]
        );
    }
}
