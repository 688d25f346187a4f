//! What a server can honour, asked before its row is measured: one probe connection with the
//! row's versions, suites and groups and its request (its route, a small POST for uploads),
//! and for a resumed row a second connection that must resume the first. A row the server
//! cannot honour is skipped with the reason, rather than measured as thousands of errors.
//! The probe also reads the certificate the server presented, which labels the row.

use std::sync::Arc;

use loadgen::oneshot::{self, Exchange, ExchangeError, PresentedKey};
use loadgen::verify::root_store;
use loadgen::{HandshakeClass, LoadOptions, tlsconf};

use crate::RunError;
use crate::results::SkippedRow;
use crate::scenario::{Body, Scenario};

/// The most bytes the probe uploads: enough to show `POST /sink` is served, not the row's
/// whole body.
const PROBE_UPLOAD: u64 = 1024;

/// What the probe found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// The server honours the row.
    Honoured {
        /// The leaf certificate's key as the server presented it.
        presented: PresentedKey,
    },
    /// It does not; why, in words for the table and results.json.
    Skip(String),
}

/// What `run` does with a row once probed.
#[derive(Debug)]
pub enum RowProbe {
    /// Measure it; the certificate the server presented (None on a plain row, not probed).
    Run(Option<String>),
    /// Skip it, for the reason given.
    Skip(SkippedRow),
}

/// Probes a TLS row before it is measured. A foreign server's row it cannot honour is
/// skipped; our own server failing its own scenario is an error (a bug, not a limitation).
pub fn probe_row(s: &Scenario, opts: &LoadOptions, foreign: bool) -> Result<RowProbe, RunError> {
    if s.plain {
        return Ok(RowProbe::Run(None));
    }
    match probe(s, opts)? {
        Probe::Honoured { presented } => Ok(RowProbe::Run(Some(presented.to_string()))),
        Probe::Skip(reason) if foreign => Ok(RowProbe::Skip(SkippedRow {
            name: s.name.clone(),
            kind: s.kind,
            reason,
        })),
        Probe::Skip(reason) => Err(RunError::Server(format!(
            "scenario '{}': our own server does not honour it: {reason}",
            s.name
        ))),
    }
}

/// Probes the server `opts` aims at (the row's load options, target included) for what
/// scenario `s` needs. A server that cannot be reached at all is an error, not a skip: no
/// row could be measured.
pub fn probe(s: &Scenario, opts: &LoadOptions) -> Result<Probe, RunError> {
    let mut p = opts.clone();
    p.upload = p.upload.min(PROBE_UPLOAD);
    let roots = if p.tls.insecure {
        None
    } else {
        Some(root_store(&p.tls.trust).map_err(loadgen::LoadError::from)?)
    };
    let wt = tlsconf::worker_tls(&p.tls, roots.as_ref()).map_err(loadgen::LoadError::from)?;
    let first = match oneshot::exchange(&p, Arc::clone(&wt.config)) {
        Ok(x) => x,
        Err(ExchangeError::Connect(e)) => return Err(RunError::Load(e)),
        Err(ExchangeError::Handshake(e)) => {
            return Ok(Probe::Skip(diagnose(s, &p, roots.as_ref(), &e)));
        }
        Err(
            e @ (ExchangeError::Leaf(_)
            | ExchangeError::Unnegotiated(_)
            | ExchangeError::Version(_)),
        ) => return Ok(Probe::Skip(e.to_string())),
        Err(
            e @ (ExchangeError::Io { .. } | ExchangeError::Response(_) | ExchangeError::Timeout(_)),
        ) => return Ok(Probe::Skip(format!("{}: {e}", request_line(&p)))),
    };
    if let Some(why) = unfit(s, &p, &first) {
        return Ok(Probe::Skip(why));
    }
    let Some(presented) = first.leaf else {
        return Ok(Probe::Skip(
            "the server presented no certificate on a full handshake".into(),
        ));
    };
    if s.resumes() {
        match oneshot::exchange(&p, Arc::clone(&wt.config)) {
            Ok(second) if !resumed(second.class) => {
                return Ok(Probe::Skip(
                    "no session resumption: second connection was a full handshake".into(),
                ));
            }
            Ok(_) => {}
            Err(e) => return Ok(Probe::Skip(format!("resuming: {e}"))),
        }
    }
    Ok(Probe::Honoured { presented })
}

fn resumed(c: HandshakeClass) -> bool {
    matches!(c, HandshakeClass::Resumed | HandshakeClass::ResumedHrr)
}

/// "GET /bytes/1048576", "POST /sink": the probe's request as the reasons name it.
fn request_line(p: &LoadOptions) -> String {
    format!("{} {}", p.method, p.target.path)
}

/// Why a completed first exchange does not honour the row: another group than the row's
/// (the client also offers the certificate's curve on TLS 1.2 ECDSA rows, which the server
/// may prefer), a response other than 2xx, a download of another size.
fn unfit(s: &Scenario, p: &LoadOptions, x: &Exchange) -> Option<String> {
    if !s.kx_groups.is_empty()
        && let Some(g) = x.group
        && !s.kx_groups.iter().any(|want| want.name() == g.name())
    {
        return Some(format!(
            "the server chose the group {}, not {}",
            common::tls::group_name(g),
            group_names(s)
        ));
    }
    let status = x.response.status;
    if !(200..300).contains(&status) {
        return Some(format!("{}: {status}", request_line(p)));
    }
    if let Some(Body::Download(n)) = s.body
        && x.response.body_len != n
    {
        return Some(format!(
            "{}: a body of {} bytes, not {n}",
            request_line(p),
            x.response.body_len
        ));
    }
    None
}

fn group_names(s: &Scenario) -> String {
    let names: Vec<String> = s
        .kx_groups
        .iter()
        .map(|g| common::tls::group_name(*g))
        .collect();
    names.join(", ")
}

/// Why the handshake failed, found by relaxing one of the row's choices at a time (groups,
/// suites, versions) and seeing which one the server then accepts; the handshake's own error
/// when none does.
fn diagnose(
    s: &Scenario,
    p: &LoadOptions,
    roots: Option<&Arc<rustls::RootCertStore>>,
    failure: &std::io::Error,
) -> String {
    let accepts = |relax: &dyn Fn(&mut LoadOptions)| -> Option<Exchange> {
        let mut q = p.clone();
        relax(&mut q);
        // A resumption mode the relaxed versions cannot have (session IDs with TLS 1.3) is
        // beside the question asked here: whether a full handshake completes.
        q.tls.resume = loadgen::ResumeMode::Off;
        let wt = tlsconf::worker_tls(&q.tls, roots).ok()?;
        oneshot::exchange(&q, wt.config).ok()
    };
    if !s.kx_groups.is_empty()
        && let Some(x) = accepts(&|q| q.tls.groups.clear())
    {
        let chose = x.group.map_or("none".into(), common::tls::group_name);
        let chose_ours = x
            .group
            .is_some_and(|g| s.kx_groups.iter().any(|w| w.name() == g.name()));
        if let (true, Some(PresentedKey::Ecdsa(_)), common::tls::Version::Tls12) =
            (chose_ours, &x.leaf, x.version)
        {
            // The row's group was fine; the certificate's curve was missing from the offer.
            return format!(
                "the server presents an {} certificate, which a TLS 1.2 server (OpenSSL) uses \
                 only when its curve is among the offered groups; the row offers {}",
                x.leaf.as_ref().map_or(String::new(), ToString::to_string),
                group_names(s)
            );
        }
        return format!(
            "the server offers none of the groups {} (it chose {chose} when offered all)",
            group_names(s)
        );
    }
    if !s.cipher_suites.is_empty()
        && let Some(x) = accepts(&|q| q.tls.suites.clear())
    {
        let names: Vec<String> = s
            .cipher_suites
            .iter()
            .map(|c| common::tls::suite_name(*c))
            .collect();
        return format!(
            "the server accepts none of the suites {} (it chose {} when offered all)",
            names.join(", "),
            common::tls::suite_name(x.suite)
        );
    }
    let both = vec![common::tls::Version::Tls12, common::tls::Version::Tls13];
    if s.tls != both
        && let Some(x) = accepts(&|q| q.tls.versions = both.clone())
    {
        let asked: Vec<&str> = s.tls.iter().map(|v| v.as_str()).collect();
        return format!(
            "the server does not speak TLS {} (it chose TLS {} when offered 1.2 and 1.3)",
            asked.join(", "),
            x.version
        );
    }
    format!("handshake failed: {failure}")
}
