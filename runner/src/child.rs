//! The server under test as a child process: started from the tlsbench binary with the
//! scenario's TLS options, pinned to the server CPUs, its readiness read from its stdout (no
//! sleeps), its counters read from its admin endpoint through [`server::metrics::scrape`],
//! and never left behind: it dies with us (PR_SET_PDEATHSIG), and dropping the handle stops
//! it.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use server::Snapshot;
use server::cli::ServerArgs;
use server::client_auth::ClientCert;
use server::metrics::{self, MetricsError};
use server::session_cache::CacheCounts;

use crate::RunError;
use crate::results::ClientCertsRecord;
use crate::scenario::Scenario;

/// How long the server may take to print its listening lines.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The server's counters that CPU per operation is computed from.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ServerCounters {
    /// Process CPU seconds (user + system).
    pub cpu_s: f64,
    /// Completed handshakes, all versions and kinds.
    pub handshakes: u64,
    /// Responses, all statuses.
    pub requests: u64,
    /// Plaintext bytes in plus out.
    pub bytes: u64,
    /// TLS bytes of completed handshakes, (in, out).
    pub handshake_bytes: (u64, u64),
    /// Completed handshakes that sent the chain compressed, all algorithms.
    pub cert_compressed: u64,
    /// Completed handshakes by early data (offered, accepted, rejected).
    pub early_data: [u64; 3],
    /// The stateful session cache: its occupancy when read, and (after [`ServerCounters::since`])
    /// what was stored, evicted and looked up in between. None: the server has no cache.
    pub session_cache: Option<CacheCounts>,
    /// Handshakes by client certificate (accepted, none) and client-certificate refusals.
    pub client_certs: ClientCertsRecord,
}

impl ServerCounters {
    /// `self - earlier`.
    pub fn since(&self, earlier: &ServerCounters) -> ServerCounters {
        ServerCounters {
            cpu_s: (self.cpu_s - earlier.cpu_s).max(0.0),
            handshakes: self.handshakes.saturating_sub(earlier.handshakes),
            requests: self.requests.saturating_sub(earlier.requests),
            bytes: self.bytes.saturating_sub(earlier.bytes),
            client_certs: ClientCertsRecord {
                accepted: self
                    .client_certs
                    .accepted
                    .saturating_sub(earlier.client_certs.accepted),
                none: self
                    .client_certs
                    .none
                    .saturating_sub(earlier.client_certs.none),
                refused: self
                    .client_certs
                    .refused
                    .saturating_sub(earlier.client_certs.refused),
            },
            handshake_bytes: (
                self.handshake_bytes
                    .0
                    .saturating_sub(earlier.handshake_bytes.0),
                self.handshake_bytes
                    .1
                    .saturating_sub(earlier.handshake_bytes.1),
            ),
            cert_compressed: self.cert_compressed.saturating_sub(earlier.cert_compressed),
            early_data: [0, 1, 2].map(|i| self.early_data[i].saturating_sub(earlier.early_data[i])),
            session_cache: self.session_cache.map(|now| {
                let before = earlier.session_cache.unwrap_or_default();
                CacheCounts {
                    capacity: now.capacity,
                    entries: now.entries,
                    stored: now.stored.saturating_sub(before.stored),
                    evicted: now.evicted.saturating_sub(before.evicted),
                    hits: now.hits.saturating_sub(before.hits),
                    misses: now.misses.saturating_sub(before.misses),
                }
            }),
        }
    }

    /// The counters CPU per operation is computed from, out of a whole snapshot.
    pub fn of(s: &Snapshot) -> ServerCounters {
        ServerCounters {
            cpu_s: s.cpu.total().as_secs_f64(),
            handshakes: s.handshakes_total(),
            requests: s.requests_total(),
            bytes: s.bytes_in + s.bytes_out,
            handshake_bytes: (s.handshake_bytes[0], s.handshake_bytes[1]),
            cert_compressed: s.cert_compressed.iter().sum(),
            early_data: server::stats::EarlyData::ALL.map(|r| s.early_data_of(r)),
            session_cache: s.session_cache,
            client_certs: ClientCertsRecord {
                accepted: s.client_certs_of(ClientCert::Accepted),
                none: s.client_certs_of(ClientCert::None),
                refused: s.client_auth_refusals.iter().sum(),
            },
        }
    }
}

/// A running server child.
pub struct ServerChild {
    child: Option<Child>,
    /// Its process id, for `/proc/<pid>`.
    pub pid: u32,
    /// Where it serves HTTPS.
    pub addr: SocketAddr,
    /// Where its admin endpoint is.
    pub admin: SocketAddr,
    /// Where it serves plain HTTP, when started with `--plain-listen`.
    pub plain: Option<SocketAddr>,
}

impl ServerChild {
    /// Starts `exe server` for scenario `s`, pinned to `cpus` (one worker per CPU).
    pub fn start(
        exe: &Path,
        certs: &Path,
        s: &Scenario,
        cpus: &[usize],
    ) -> Result<ServerChild, RunError> {
        ServerChild::spawn(exe, &s.server_args(certs, cpus)).map_err(|e| match e {
            RunError::Server(why) => RunError::Server(format!("scenario '{}': {why}", s.name)),
            e => e,
        })
    }

    /// Starts `exe server` with `args`, listening and serving its admin endpoint on
    /// 127.0.0.1 at ports the kernel picks (whatever `args` says: both are read back from
    /// its stdout), and waits for its two listening lines (three with `--plain-listen`, whose
    /// port is picked the same way).
    pub fn spawn(exe: &Path, args: &ServerArgs) -> Result<ServerChild, RunError> {
        let args = ServerArgs {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            plain_listen: args
                .plain_listen
                .map(|_| SocketAddr::from(([127, 0, 0, 1], 0))),
            ..args.clone()
        };
        let wants_plain = args.plain_listen.is_some();
        let mut cmd = Command::new(exe);
        cmd.arg("server").args(args.to_args());
        // The server's stderr is kept (bounded) and shown only if it fails to start: its
        // shutdown messages would otherwise interleave with the results table.
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let runner_pid = std::process::id();
        // SAFETY: prctl and getppid are async-signal-safe and touch only the child's own
        // state; this runs between fork and exec and allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                // The server must not outlive the runner, whatever kills the runner.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // A runner killed between fork and the prctl above sent no signal: the child
                // has been reparented already, so it must not start a server nobody stops.
                if u32::try_from(libc::getppid()).ok() != Some(runner_pid) {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|source| RunError::Io {
            what: format!("starting {} server", exe.display()),
            source,
        })?;
        let stdout = child.stdout.take();
        let stderr_text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        if let Some(mut err) = child.stderr.take() {
            let sink = std::sync::Arc::clone(&stderr_text);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = err.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut s) = sink.lock()
                        && s.len() < 64 * 1024
                    {
                        s.push_str(&String::from_utf8_lossy(&buf[..n]));
                    }
                }
            });
        }
        let mut handle = ServerChild {
            pid: child.id(),
            child: Some(child),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            plain: None,
        };
        let Some(stdout) = stdout else {
            return Err(RunError::Server("no stdout from the server".into()));
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // Keep draining after the receiver is gone so the server never blocks on a
                // full pipe (it prints its summary at exit).
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + READY_TIMEOUT;
        let (mut addr, mut admin, mut plain) = (None, None, None);
        while addr.is_none() || admin.is_none() || (wants_plain && plain.is_none()) {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .map_err(|_| {
                    let err = stderr_text.lock().map(|t| t.clone()).unwrap_or_default();
                    RunError::Server(format!("the server did not start: {}", err.trim()))
                })?;
            let after = |marker: &str| -> Option<SocketAddr> {
                line.split_once(marker)?.1.split('/').next()?.parse().ok()
            };
            if let Some(a) = after("listening on https://") {
                addr = Some(a);
            }
            if let Some(a) = after("admin listening on http://") {
                admin = Some(a);
            }
            if let Some(a) = after("server listening on http://") {
                plain = Some(a);
            }
        }
        handle.plain = plain;
        if let (Some(a), Some(m)) = (addr, admin) {
            handle.addr = a;
            handle.admin = m;
        }
        Ok(handle)
    }

    /// Whether the child is still running.
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Every counter of the server, read from its admin endpoint.
    pub fn metrics(&self) -> Result<Snapshot, MetricsError> {
        metrics::scrape(self.admin)
    }

    /// The server's counters that CPU per operation is computed from.
    pub fn counters(&self) -> Result<ServerCounters, MetricsError> {
        self.metrics().map(|s| ServerCounters::of(&s))
    }

    /// Stops the server (SIGTERM, bounded wait, then SIGKILL).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: kill(2) on our own, not yet reaped child: the pid cannot be reused.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return;
                }
            }
        }
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_sum_a_snapshot_and_subtract() {
        let mut s = Snapshot {
            cpu: common::cpu::CpuTime {
                user: Duration::from_millis(1_250),
                sys: Duration::from_millis(250),
            },
            bytes_in: 100,
            bytes_out: 50,
            handshake_bytes: [4000, 9000],
            cert_compressed: [3, 4],
            early_data: [6, 5, 1],
            ..Snapshot::default()
        };
        s.handshakes[1][0] = 10;
        s.handshakes[0][1] = 5;
        s.handshakes[1][3] = 2;
        s.requests[0] = 7;
        s.requests[3] = 1;
        let c = ServerCounters::of(&s);
        assert_eq!(
            c,
            ServerCounters {
                cpu_s: 1.5,
                handshakes: 17,
                requests: 8,
                bytes: 150,
                handshake_bytes: (4000, 9000),
                cert_compressed: 7,
                early_data: [6, 5, 1],
                session_cache: None,
                client_certs: ClientCertsRecord::default(),
            }
        );
        let later = ServerCounters {
            cpu_s: 2.0,
            handshakes: 20,
            requests: 8,
            bytes: 151,
            handshake_bytes: (4300, 9800),
            cert_compressed: 10,
            early_data: [9, 7, 2],
            session_cache: None,
            client_certs: ClientCertsRecord {
                accepted: 3,
                none: 0,
                refused: 1,
            },
        };
        assert_eq!(
            later.since(&c),
            ServerCounters {
                cpu_s: 0.5,
                handshakes: 3,
                requests: 0,
                bytes: 1,
                handshake_bytes: (300, 800),
                cert_compressed: 3,
                early_data: [3, 2, 1],
                session_cache: None,
                client_certs: ClientCertsRecord {
                    accepted: 3,
                    none: 0,
                    refused: 1,
                },
            }
        );
    }

    #[test]
    fn the_session_cache_keeps_its_occupancy_and_counts_the_window() {
        let at = |entries, stored, evicted, hits| ServerCounters {
            session_cache: Some(CacheCounts {
                capacity: 100,
                entries,
                stored,
                evicted,
                hits,
                misses: 1,
            }),
            ..ServerCounters::default()
        };
        let window = at(100, 500, 400, 200).since(&at(90, 100, 0, 10));
        assert_eq!(
            window.session_cache,
            Some(CacheCounts {
                capacity: 100,
                entries: 100,
                stored: 400,
                evicted: 400,
                hits: 190,
                misses: 0,
            })
        );
    }
}
