//! `openssl s_server` as a peer: its arguments for one row and its start. With `-WWW` it serves
//! files relative to its working directory (the hello page as `/index.html`, `/bytes/N`),
//! one connection at a time on one thread, closing each after its response (HTTP/1.0, no
//! keep-alive, no POST): handshake rows are what it can measure. It listens on port 0 and
//! prints the port it got (`ACCEPT 127.0.0.1:PORT`), which is read from its stdout.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Instant;

use common::tls::Version;
use server::config::Resumption;

use super::{Peer, PeerError, PeerKind, PeerProgram, READY_TIMEOUT, Site, io_err, names};

fn config_err(why: String) -> PeerError {
    PeerError::Config {
        kind: PeerKind::Openssl,
        why,
    }
}

/// The `s_server` arguments serving `site` from `dir` (which holds leaf.pem,
/// intermediates.pem and key.pem).
pub fn args(site: &Site, dir: &Path) -> Result<Vec<OsString>, PeerError> {
    let mut a: Vec<OsString> = vec!["s_server".into(), "-accept".into(), "127.0.0.1:0".into()];
    for (flag, file) in [
        ("-cert", "leaf.pem"),
        ("-cert_chain", "intermediates.pem"),
        ("-key", "key.pem"),
    ] {
        a.push(flag.into());
        a.push(dir.join(file).into());
    }
    a.push("-WWW".into());
    let has = |v| site.versions.contains(&v);
    let name = |v| match v {
        Version::Tls12 => "TLSv1.2",
        Version::Tls13 => "TLSv1.3",
    };
    let (min, max) = match (has(Version::Tls12), has(Version::Tls13)) {
        (true, true) => (Version::Tls12, Version::Tls13),
        (true, false) => (Version::Tls12, Version::Tls12),
        (false, true) => (Version::Tls13, Version::Tls13),
        (false, false) => return Err(config_err("the row offers no TLS version".into())),
    };
    a.extend(["-min_protocol", name(min), "-max_protocol", name(max)].map(OsString::from));
    if !site.suites.is_empty() {
        let (tls12, tls13) = names::suites(&site.suites).map_err(config_err)?;
        if !tls12.is_empty() {
            a.extend(["-cipher".into(), tls12.into()]);
        }
        if !tls13.is_empty() {
            a.extend(["-ciphersuites".into(), tls13.into()]);
        }
    }
    if !site.groups.is_empty() {
        let groups = names::groups(&site.groups).map_err(config_err)?;
        a.extend(["-groups".into(), groups.into()]);
    }
    let off: &[&str] = match site.resumption {
        Resumption::Off => &["-no_cache", "-no_ticket"],
        Resumption::Stateful => &["-no_ticket"],
        Resumption::Tickets => &["-no_cache"],
        Resumption::Both => &[],
    };
    a.extend(off.iter().map(OsString::from));
    if let Some(n) = site.tls13_tickets {
        a.extend(["-num_tickets".into(), n.to_string().into()]);
    }
    if site.early_data {
        // s_server says "Can't use -early_data in combination with -www, -WWW, -HTTP, or
        // -rev", and -WWW is how it serves the row's pages.
        return Err(config_err(
            "a 0-RTT row (early_data): s_server cannot serve pages (-WWW) with -early_data".into(),
        ));
    }
    Ok(a)
}

/// Starts `openssl s_server` for `site` from `dir`, pinned to `cpus` (one: it has one thread).
pub(super) fn start(
    program: &PeerProgram,
    site: &Site,
    cpus: &[usize],
    dir: &Path,
) -> Result<Peer, PeerError> {
    if cpus.len() != 1 {
        return Err(config_err(format!(
            "s_server runs one thread: give --server-cpus one CPU, not {}",
            cpus.len()
        )));
    }
    let mut cmd = super::command(&program.path, cpus);
    cmd.args(args(site, dir)?)
        .current_dir(dir.join("html"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(io_err(format!(
        "starting {} s_server",
        program.path.display()
    )))?;
    let (tx, rx) = mpsc::channel();
    for pipe in [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        // Drained to the end so s_server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
    }
    drop(tx);
    let mut peer = Peer {
        kind: PeerKind::Openssl,
        pid: child.id(),
        child: Some(child),
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        hello_path: "/index.html",
        dir: Some(dir.to_path_buf()),
    };
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut said = Vec::new();
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                if let Some(addr) = accepted(&line) {
                    peer.addr = addr;
                    return Ok(peer);
                }
                said.push(line);
            }
            Err(_) => {
                // Keep the directory for nothing: the error carries what s_server said.
                peer.shutdown()?;
                return Err(PeerError::Start {
                    kind: PeerKind::Openssl,
                    why: said.join("\n"),
                });
            }
        }
    }
}

/// The address in s_server's `ACCEPT 127.0.0.1:PORT` line.
fn accepted(line: &str) -> Option<SocketAddr> {
    line.strip_prefix("ACCEPT ")?.trim().parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    use super::*;

    fn site(versions: Vec<Version>, resumption: Resumption) -> Site {
        Site {
            chain: PathBuf::from("/c/chain.pem"),
            key: PathBuf::from("/c/key.pem"),
            versions,
            suites: Vec::new(),
            groups: common::tls::parse_groups(&["X25519".into()]).unwrap(),
            resumption,
            tls13_tickets: None,
            early_data: false,
            downloads: BTreeSet::new(),
            workers: 1,
        }
    }

    fn joined(s: &Site) -> String {
        args(s, Path::new("/p"))
            .unwrap()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn the_row_becomes_s_server_flags() {
        let a = joined(&site(vec![Version::Tls13], Resumption::Off));
        assert!(
            a.starts_with("s_server -accept 127.0.0.1:0 -cert /p/leaf.pem"),
            "{a}"
        );
        assert!(
            a.contains("-cert_chain /p/intermediates.pem -key /p/key.pem -WWW"),
            "{a}"
        );
        assert!(
            a.contains("-min_protocol TLSv1.3 -max_protocol TLSv1.3"),
            "{a}"
        );
        assert!(a.contains("-groups X25519"), "{a}");
        assert!(a.contains("-no_cache -no_ticket"), "{a}");
        let a = joined(&site(
            vec![Version::Tls12, Version::Tls13],
            Resumption::Tickets,
        ));
        assert!(
            a.contains("-min_protocol TLSv1.2 -max_protocol TLSv1.3"),
            "{a}"
        );
        assert!(a.ends_with("-no_cache"), "{a}");
        let a = joined(&site(vec![Version::Tls12], Resumption::Both));
        assert!(!a.contains("-no_"), "{a}");
        assert!(!a.contains("-early_data"), "{a}");
        let early = Site {
            early_data: true,
            ..site(vec![Version::Tls13], Resumption::Stateful)
        };
        let e = args(&early, Path::new("/p")).unwrap_err().to_string();
        assert!(e.contains("-early_data") && e.contains("0-RTT"), "{e}");
        assert!(args(&site(vec![], Resumption::Both), Path::new("/p")).is_err());
    }

    #[test]
    fn the_accept_line_gives_the_port() {
        assert_eq!(
            accepted("ACCEPT 127.0.0.1:34729"),
            Some(SocketAddr::from(([127, 0, 0, 1], 34729)))
        );
        assert_eq!(accepted("Using default temp DH parameters"), None);
    }
}
