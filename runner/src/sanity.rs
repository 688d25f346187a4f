//! The sanity checks of a `tlsbench run`: shape and consistency, never speed. A row that
//! fails one makes the run incomplete (exit 3). Each check is a function of a row (and its
//! scenario) so a unit test can make it fail on a synthetic row.

use crate::results::{
    ClientCertsRecord, HandshakeBytesRecord, OpsFrom, RepeatRecord, Row, RowKind, RunResults,
};
use crate::scenario::{Matrix, Scenario};

/// How far the two sides' counts of the same operation may differ, as a share of the larger,
/// on top of the operations in flight at the window's edges.
pub const COUNT_TOLERANCE: f64 = 0.02;
/// CPU per operation × rate may exceed the side's cores by this factor (clock and
/// accounting granularity), no more: beyond it a count or a CPU time is wrong.
pub const CORES_SLACK: f64 = 1.05;
/// Share of handshakes a resumption row must have resumed.
pub const MIN_RESUMED: f64 = 0.99;

/// Every problem of the run, one line each naming its scenario; empty when it is sane.
pub fn check(matrix: &Matrix, r: &RunResults) -> Vec<String> {
    let mut problems = Vec::new();
    for s in &matrix.scenarios {
        let Some(row) = r.rows.iter().find(|row| row.name == s.name) else {
            // A row the probe found the server cannot honour is reported, not failed.
            if !r.skipped.iter().any(|k| k.name == s.name) {
                problems.push(format!("'{}': no row", s.name));
            }
            continue;
        };
        problems.extend(
            check_row(s, row, r)
                .into_iter()
                .map(|p| format!("'{}': {p}", s.name)),
        );
    }
    problems
}

/// The problems of one row.
pub fn check_row(s: &Scenario, row: &Row, r: &RunResults) -> Vec<String> {
    // Ours, a peer, or a --target whose CPU --server-pid/--server-cgroup read: measured.
    let measured = r.target.is_none() || r.server_cpu_source.is_some();
    // A foreign server counts nothing: its CPU divides by the generator's count, so there is
    // no second count to hold it against.
    let own_counts = row.server_ops_from == OpsFrom::Server;
    let mut problems = Vec::new();
    if row.rate.median <= 0.0 {
        problems.push("no operations measured".to_owned());
    }
    if row.errors > 0 {
        problems.push(format!("{} errors", row.errors));
    }
    if measured && row.server_cpu_us.is_none() {
        problems.push("no server CPU: the local server was not measured".to_owned());
    }
    if row.per_repeat.len() != row.repeats {
        problems.push(format!(
            "{} repeats aggregated but {} recorded",
            row.repeats,
            row.per_repeat.len()
        ));
    }
    for (i, rep) in row.per_repeat.iter().enumerate() {
        let n = i + 1;
        if measured {
            if own_counts {
                problems.extend(counts_agree(row.kind, rep).map(|p| format!("repeat {n}: {p}")));
                problems
                    .extend(client_certs(s, rep.client_certs).map(|p| format!("repeat {n}: {p}")));
                problems.extend(early_data(s, rep).map(|p| format!("repeat {n}: {p}")));
                match &rep.handshake_bytes {
                    Some(h) => {
                        problems
                            .extend(handshake_bytes_agree(h).map(|p| format!("repeat {n}: {p}")));
                        problems.extend(
                            cert_compression(s, rep, h).map(|p| format!("repeat {n}: {p}")),
                        );
                    }
                    None => problems.push(format!("repeat {n}: no handshake bytes")),
                }
            }
            match rep.server_cpu_us {
                // A --target's CPUs are not ours to know: nothing to hold its CPU against.
                Some(_) if r.server_cpus.is_empty() => {}
                Some(us) => problems.extend(
                    cpu_fits("server", us, rep.rate, r.server_cpus.len())
                        .map(|p| format!("repeat {n}: {p}")),
                ),
                None => problems.push(format!("repeat {n}: no server CPU")),
            }
        }
        match rep.client_cpu_us {
            Some(us) => problems.extend(
                cpu_fits("generator", us, rep.rate, r.client_cpus.len())
                    .map(|p| format!("repeat {n}: {p}")),
            ),
            None => problems.push(format!("repeat {n}: no generator CPU per operation")),
        }
    }
    problems.extend(resumption(s, row));
    problems
}

/// The server's and the generator's counts of the row's operation agree within
/// [`COUNT_TOLERANCE`] plus the operations in flight.
pub fn counts_agree(kind: RowKind, rep: &RepeatRecord) -> Option<String> {
    let Some(server) = rep.server_ops else {
        return Some("no server count of the operation".to_owned());
    };
    let client = rep.client_ops;
    let allowed = COUNT_TOLERANCE * server.max(client) + rep.in_flight_ops;
    let agree = (server - client).abs() <= allowed;
    (!agree).then(|| {
        format!(
            "the server counted {server:.1} {unit}, the generator {client:.1} (allowed difference {allowed:.1}: {:.0}% + {:.1} in flight)",
            COUNT_TOLERANCE * 100.0,
            rep.in_flight_ops,
            unit = kind.op_unit(),
        )
    })
}

/// On a mutual-TLS row the server counted what the row asked for: every handshake with a
/// client certificate (resumed ones included: the ticket carries it) when the generator sends
/// one, none with one when it does not, and no refusal either way.
pub fn client_certs(s: &Scenario, counted: Option<ClientCertsRecord>) -> Option<String> {
    let m = s.mutual?;
    let Some(c) = counted else {
        return Some("no client-certificate counts from the server".to_owned());
    };
    if c.refused > 0 {
        return Some(format!(
            "the server refused {} client certificates",
            c.refused
        ));
    }
    match m.cert {
        Some(kt) if c.none > 0 || c.accepted == 0 => Some(format!(
            "the generator sends a {kt} client certificate, yet the server counted {} handshakes with one and {} without",
            c.accepted, c.none
        )),
        None if c.accepted > 0 => Some(format!(
            "the generator sends no client certificate, yet the server accepted {}",
            c.accepted
        )),
        _ => None,
    }
}

/// The server's handshake bytes in are the generator's bytes out, and its bytes out the
/// generator's in (both count at their sockets, to the byte), within what the operation
/// counts are held to: the two sides read their counts at slightly different instants
/// ([`COUNT_TOLERANCE`] of the larger, as for the counts), and the handshakes under way at the
/// window's two edges may be counted by one side only (at each edge one per connection, none
/// larger than the largest the generator saw).
pub fn handshake_bytes_agree(h: &HandshakeBytesRecord) -> Option<String> {
    let (Some(server_in), Some(server_out)) = (h.server_in, h.server_out) else {
        return Some("no server count of handshake bytes".to_owned());
    };
    let ways = [
        ("client to server", server_in, h.client_out, h.largest.0),
        ("server to client", server_out, h.client_in, h.largest.1),
    ];
    let problems: Vec<String> = ways
        .into_iter()
        .filter_map(|(way, server, client, largest)| {
            let edges = 2 * h.in_flight * largest;
            let allowed = (COUNT_TOLERANCE * server.max(client) as f64) as u64 + edges;
            (server.abs_diff(client) > allowed).then(|| {
                format!(
                    "handshake bytes {way}: the server counted {server}, the generator {client} (allowed difference {allowed}: {:.0}% + 2 window edges × {} in flight × {largest} B)",
                    COUNT_TOLERANCE * 100.0,
                    h.in_flight
                )
            })
        })
        .collect();
    (!problems.is_empty()).then(|| problems.join("; "))
}

/// In a full-handshake row, every handshake the generator counted came with its chain
/// compressed when the row asks for compression, and none otherwise; the server says the same
/// of every handshake it counted.
pub fn cert_compression(
    s: &Scenario,
    rep: &RepeatRecord,
    h: &HandshakeBytesRecord,
) -> Option<String> {
    if s.kind != RowKind::Handshake || s.plain || s.resumes() {
        return None;
    }
    let on = !s.cert_compression.is_off();
    let want = |ops: f64| if on { ops } else { 0.0 };
    let client = h.client_compressed as f64;
    let server = h.server_compressed.map(|n| n as f64);
    let client_ok = client == want(rep.client_ops);
    let server_ok = match (server, rep.server_ops) {
        (Some(n), Some(ops)) => n == want(ops),
        _ => false,
    };
    (!(client_ok && server_ok)).then(|| {
        format!(
            "certificate compression {}: the generator saw {client} of its {} handshakes compressed, the server {} of {}",
            s.cert_compression,
            rep.client_ops,
            server.map_or("no count".to_owned(), |n| n.to_string()),
            rep.server_ops
                .map_or("no count".to_owned(), |n| n.to_string()),
        )
    })
}

/// In a 0-RTT row, the generator sent early data and the server accepted every one; the
/// server's count of acceptances matches the generator's but for the connections under way at
/// the window's edges. A row without early data records none.
pub fn early_data(s: &Scenario, rep: &RepeatRecord) -> Option<String> {
    let Some(e) = rep.early_data else {
        return s
            .early_data
            .then(|| "0-RTT row without early data counts".to_owned());
    };
    if !s.early_data {
        return Some("early data counted on a row without early_data".to_owned());
    }
    let [offered, accepted, rejected] = e.client;
    let Some([s_offered, s_accepted, s_rejected]) = e.server else {
        return Some("0-RTT row without the server's early data counts".to_owned());
    };
    let apart = s_accepted.abs_diff(accepted) as f64;
    let ok = accepted > 0
        && offered == accepted
        && rejected == 0
        && s_offered == s_accepted
        && s_rejected == 0
        && apart <= rep.in_flight_ops;
    (!ok).then(|| {
        format!(
            "early data: the generator {offered} offered, {accepted} accepted, {rejected} rejected; the server {s_offered} offered, {s_accepted} accepted, {s_rejected} rejected"
        )
    })
}

/// CPU µs per operation × operations per second is the side's CPU use in cores: at most its
/// cores × [`CORES_SLACK`].
pub fn cpu_fits(side: &str, cpu_us_per_op: f64, rate: f64, cores: usize) -> Option<String> {
    let used = cpu_us_per_op * rate / 1e6;
    let limit = cores.max(1) as f64 * CORES_SLACK;
    // Written so a NaN (a zero count somewhere) fails rather than passes.
    let fits = used <= limit;
    (!fits).then(|| {
        format!(
            "{side} CPU {cpu_us_per_op:.1} µs/op × {rate:.1} op/s = {used:.2} cores, more than its {cores} × {CORES_SLACK}"
        )
    })
}

/// Resumption rows resumed ≥ [`MIN_RESUMED`] of their handshakes; full handshake rows none;
/// plain floor rows no handshake at all.
pub fn resumption(s: &Scenario, row: &Row) -> Option<String> {
    if s.plain {
        // A floor row has no TLS: any handshake means it did not measure plain HTTP.
        let handshakes: u64 = row.handshakes.values().sum();
        return (handshakes > 0).then(|| format!("{handshakes} handshakes in a plain row"));
    }
    match (s.resumes(), row.resumed_share) {
        (true, Some(share)) if share < MIN_RESUMED => Some(format!(
            "only {:.2}% resumed (at least {:.0}% expected)",
            share * 100.0,
            MIN_RESUMED * 100.0
        )),
        (true, None) => Some("no handshakes to resume".to_owned()),
        (false, Some(share)) if s.kind == RowKind::Handshake && share > 0.0 => Some(format!(
            "{:.2}% resumed in a full-handshake row",
            share * 100.0
        )),
        (false, None) if s.kind == RowKind::Handshake => Some("no handshakes".to_owned()),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::results::{EarlyDataRecord, Stat};

    const MATRIX: &str = "\
        [[scenario]]\nname = \"full\"\nkind = \"handshake\"\ntls = \"1.3\"\nserver_resumption = \"off\"\nconnections = 8\n\
        [[scenario]]\nname = \"resumed\"\nkind = \"handshake\"\ntls = \"1.3\"\nresume = \"ticket\"\nconnections = 8\n";

    fn stat(v: f64) -> Stat {
        Stat {
            median: v,
            min: v,
            max: v,
        }
    }

    /// A sane row: 1000 handshakes/s, both sides counting 2000 in a 2-s window, 300 µs of
    /// server CPU and 200 µs of generator CPU per handshake (0.3 and 0.2 cores).
    fn row(name: &str, full: u64, resumed: u64) -> Row {
        let rep = RepeatRecord {
            rate: 1000.0,
            client_ops: 2000.0,
            server_ops: Some(2000.0),
            in_flight_ops: 8.0,
            client_cpu_us: Some(200.0),
            server_cpu_us: Some(300.0),
            latency_hdr: String::new(),
            session_cache: None,
            client_certs: None,
            // 2000 handshakes of 400 B in and 3000 B out, counted alike by both sides.
            handshake_bytes: Some(HandshakeBytesRecord {
                client_out: 800_000,
                client_in: 6_000_000,
                server_in: Some(800_000),
                server_out: Some(6_000_000),
                largest: (420, 3100),
                in_flight: 8,
                client_compressed: 0,
                server_compressed: Some(0),
            }),
            early_data: None,
        };
        Row {
            name: name.to_owned(),
            kind: RowKind::Handshake,
            rate: stat(1000.0),
            latency_us: BTreeMap::new(),
            latency_merged_us: BTreeMap::new(),
            server_cpu_us: Some(stat(300.0)),
            client_cpu_us: stat(200.0),
            handshakes: [("full".to_owned(), full), ("resumed".to_owned(), resumed)].into(),
            resumed_share: Some(resumed as f64 / (full + resumed) as f64),
            errors: 0,
            saturated: "neither".to_owned(),
            latency_hdr: String::new(),
            repeats: 1,
            per_repeat: vec![rep],
            tls_cost: None,
            cert: None,
            presented_cert: None,
            server_ops_from: OpsFrom::Server,
            provider: "aws-lc-rs".into(),
            handshake_bytes: None,
        }
    }

    fn sane() -> (Matrix, RunResults) {
        let m = Matrix::parse(MATRIX).unwrap();
        let r = RunResults::fixture(vec![row("full", 2000, 0), row("resumed", 0, 2000)]);
        (m, r)
    }

    /// Breaks the sane run with `f` and returns the problems of scenario `name`.
    fn broken(name: &str, f: impl FnOnce(&mut Row, &mut RunResults)) -> String {
        let (m, mut r) = sane();
        assert!(check(&m, &r).is_empty(), "{:?}", check(&m, &r));
        let mut rows = std::mem::take(&mut r.rows);
        let i = rows.iter().position(|x| x.name == name).unwrap();
        f(&mut rows[i], &mut r);
        r.rows = rows;
        let problems = check(&m, &r);
        assert!(!problems.is_empty(), "breaking '{name}' went unnoticed");
        problems.join("; ")
    }

    #[test]
    fn a_mutual_tls_row_needs_the_servers_client_certificates_to_match_what_was_sent() {
        let parse = |extra: &str| {
            let m = Matrix::parse(&format!(
                "[[scenario]]\nname = \"m\"\nkind = \"handshake\"\ntls = \"1.3\"\n{extra}"
            ))
            .unwrap();
            m.scenarios[0].clone()
        };
        let sends = parse("client_auth = \"required\"\nclient_cert = \"ecdsa-p256\"\n");
        let silent = parse("client_auth = \"optional\"\n");
        let plain_tls = parse("");
        let rec = |accepted, none, refused| {
            Some(ClientCertsRecord {
                accepted,
                none,
                refused,
            })
        };
        assert_eq!(client_certs(&sends, rec(2000, 0, 0)), None);
        assert_eq!(client_certs(&silent, rec(0, 2000, 0)), None);
        assert_eq!(client_certs(&plain_tls, None), None);
        for (s, counted, says) in [
            (&sends, None, "no client-certificate counts"),
            (
                &sends,
                rec(1990, 10, 0),
                "1990 handshakes with one and 10 without",
            ),
            (&sends, rec(0, 0, 0), "0 handshakes with one"),
            (&sends, rec(2000, 0, 3), "refused 3"),
            (&silent, rec(5, 1995, 0), "accepted 5"),
            (&silent, rec(0, 2000, 1), "refused 1"),
        ] {
            let p = client_certs(s, counted).unwrap_or_else(|| panic!("{counted:?} passed"));
            assert!(p.contains(says), "{p}");
        }
    }

    #[test]
    fn a_skipped_row_is_no_missing_row_but_an_unlisted_absence_still_is() {
        let (m, mut r) = sane();
        r.rows.retain(|row| row.name != "resumed");
        assert_eq!(check(&m, &r), ["'resumed': no row"]);
        r.skipped.push(crate::results::SkippedRow {
            name: "resumed".into(),
            kind: RowKind::Handshake,
            reason: "no session resumption: second connection was a full handshake".into(),
        });
        assert!(check(&m, &r).is_empty(), "{:?}", check(&m, &r));
        r.rows.retain(|row| row.name != "full");
        assert_eq!(check(&m, &r), ["'full': no row"]);
    }

    #[test]
    fn a_local_row_without_server_cpu_fails_and_an_external_one_does_not() {
        let p = broken("full", |row, _| row.server_cpu_us = None);
        assert!(p.contains("'full': no server CPU"), "{p}");
        let p = broken("full", |row, _| row.per_repeat[0].server_cpu_us = None);
        assert!(p.contains("repeat 1: no server CPU"), "{p}");

        let (m, mut r) = sane();
        r.target = Some("https://nginx.test/".into());
        for row in &mut r.rows {
            row.server_cpu_us = None;
            row.per_repeat[0].server_cpu_us = None;
            row.per_repeat[0].server_ops = None;
        }
        assert!(check(&m, &r).is_empty(), "{:?}", check(&m, &r));
    }

    #[test]
    fn a_foreign_server_measured_from_outside_needs_its_cpu_but_no_count_of_its_own() {
        // A peer or --server-pid: CPU per op over the generator's count, no server count.
        let foreign = |r: &mut RunResults, target: Option<&str>| {
            r.target = target.map(str::to_owned);
            r.server_cpu_source = Some("/proc: the nginx peer's process tree".into());
            for row in &mut r.rows {
                row.server_ops_from = OpsFrom::Client;
                row.per_repeat[0].server_ops = None;
            }
        };
        let (m, mut r) = sane();
        foreign(&mut r, None);
        assert!(check(&m, &r).is_empty(), "{:?}", check(&m, &r));
        foreign(&mut r, Some("https://nginx.test/"));
        r.server_cpus.clear();
        assert!(check(&m, &r).is_empty(), "{:?}", check(&m, &r));
        // Measured from outside yet without CPU: refused, as for ours.
        let p = broken("full", |row, r| {
            foreign(r, Some("https://nginx.test/"));
            row.server_ops_from = OpsFrom::Client;
            row.per_repeat[0].server_ops = None;
            row.server_cpu_us = None;
        });
        assert!(p.contains("'full': no server CPU"), "{p}");
        // A peer on known CPUs is held to them.
        let p = broken("full", |row, r| {
            foreign(r, None);
            row.server_ops_from = OpsFrom::Client;
            row.per_repeat[0].server_ops = None;
            row.per_repeat[0].server_cpu_us = Some(2000.0);
        });
        assert!(p.contains("server CPU 2000.0 µs/op"), "{p}");
        // Our own server's count is still required when the row says the counts are its own.
        let p = broken("full", |row, r| {
            r.server_cpu_source = Some("x".into());
            row.per_repeat[0].server_ops = None;
        });
        assert!(p.contains("no server count"), "{p}");
    }

    #[test]
    fn the_two_sides_counts_must_agree_within_two_percent_plus_in_flight() {
        // 2% of 2000 + 8 in flight = 48: 1952 passes, 1951 does not.
        let (m, mut r) = sane();
        r.rows[0].per_repeat[0].server_ops = Some(1952.0);
        assert!(check(&m, &r).is_empty(), "{:?}", check(&m, &r));
        let p = broken("full", |row, _| row.per_repeat[0].server_ops = Some(1951.0));
        assert!(
            p.contains("repeat 1: the server counted 1951.0 handshake, the generator 2000.0"),
            "{p}"
        );
        let p = broken("full", |row, _| row.per_repeat[0].client_ops = 2100.0);
        assert!(p.contains("the generator 2100.0"), "{p}");
        let p = broken("full", |row, _| row.per_repeat[0].server_ops = None);
        assert!(p.contains("no server count"), "{p}");
    }

    #[test]
    fn the_two_sides_handshake_bytes_must_agree_within_the_in_flight_handshakes() {
        // 2% of the larger count + 2 edges × 8 in flight × the largest 420 B client to
        // server: 823183 - 800000 = 16463 + 6720; back, 2% of 6000000 + 2 × 8 × 3100 B.
        let (m, mut r) = sane();
        let h = r.rows[0].per_repeat[0].handshake_bytes.as_mut().unwrap();
        h.server_in = Some(800_000 + 23_183);
        h.server_out = Some(6_000_000 - 169_600);
        assert!(check(&m, &r).is_empty(), "{:?}", check(&m, &r));

        let p = broken("full", |row, _| {
            let h = row.per_repeat[0].handshake_bytes.as_mut().unwrap();
            h.server_in = Some(800_000 + 23_184);
        });
        assert!(
            p.contains("repeat 1: handshake bytes client to server: the server counted 823184, the generator 800000 (allowed difference 23183"),
            "{p}"
        );
        let p = broken("resumed", |row, _| {
            let h = row.per_repeat[0].handshake_bytes.as_mut().unwrap();
            h.client_in = 6_000_000 + 173_062;
        });
        assert!(p.contains("handshake bytes server to client"), "{p}");
        assert!(!p.contains("client to server"), "{p}");
        let p = broken("full", |row, _| {
            row.per_repeat[0]
                .handshake_bytes
                .as_mut()
                .unwrap()
                .server_out = None;
        });
        assert!(p.contains("no server count of handshake bytes"), "{p}");
        let p = broken("full", |row, _| row.per_repeat[0].handshake_bytes = None);
        assert!(p.contains("repeat 1: no handshake bytes"), "{p}");
    }

    #[test]
    fn a_compressed_row_compresses_every_handshake_and_an_uncompressed_row_none() {
        // The sane "full" row does not ask for compression and saw none.
        let (mut m, mut r) = sane();
        let p = broken("full", |row, _| {
            row.per_repeat[0]
                .handshake_bytes
                .as_mut()
                .unwrap()
                .server_compressed = Some(1);
        });
        assert!(
            p.contains("certificate compression off: the generator saw 0 of its 2000 handshakes compressed, the server 1 of 2000"),
            "{p}"
        );
        // Asking for it: every handshake on both sides, or the row fails.
        m.scenarios[0].cert_compression = "brotli".parse().unwrap();
        let h = r.rows[0].per_repeat[0].handshake_bytes.as_mut().unwrap();
        h.client_compressed = 2000;
        h.server_compressed = Some(2000);
        assert!(check(&m, &r).is_empty(), "{:?}", check(&m, &r));
        let h = r.rows[0].per_repeat[0].handshake_bytes.as_mut().unwrap();
        h.client_compressed = 1999;
        let p = check(&m, &r).join("\n");
        assert!(p.contains("the generator saw 1999 of its 2000"), "{p}");
        let h = r.rows[0].per_repeat[0].handshake_bytes.as_mut().unwrap();
        h.client_compressed = 2000;
        h.server_compressed = None;
        let p = check(&m, &r).join("\n");
        assert!(p.contains("the server no count"), "{p}");
        // Resumed rows send no certificate: not checked.
        assert!(
            cert_compression(
                &m.scenarios[1],
                &r.rows[1].per_repeat[0],
                &HandshakeBytesRecord::default()
            )
            .is_none()
        );
    }

    #[test]
    fn a_0rtt_row_needs_every_early_request_accepted_on_both_sides() {
        let (mut m, mut r) = sane();
        m.scenarios[1].early_data = true;
        let p = check(&m, &r).join("\n");
        assert!(p.contains("0-RTT row without early data counts"), "{p}");
        let good = EarlyDataRecord {
            client: [2000, 2000, 0],
            server: Some([1995, 1995, 0]),
        };
        r.rows[1].per_repeat[0].early_data = Some(good);
        assert!(check(&m, &r).is_empty(), "{:?}", check(&m, &r));
        for bad in [
            EarlyDataRecord {
                client: [2000, 1990, 10],
                ..good
            },
            EarlyDataRecord {
                server: Some([2000, 1999, 1]),
                ..good
            },
            EarlyDataRecord {
                server: Some([1900, 1900, 0]),
                ..good
            },
            EarlyDataRecord {
                client: [0, 0, 0],
                server: Some([0, 0, 0]),
            },
            EarlyDataRecord {
                server: None,
                ..good
            },
        ] {
            r.rows[1].per_repeat[0].early_data = Some(bad);
            let p = check(&m, &r).join("\n");
            assert!(p.contains("early data"), "{bad:?} passed");
        }
        // Counts on a row that asked for none.
        m.scenarios[1].early_data = false;
        r.rows[1].per_repeat[0].early_data = Some(good);
        let p = check(&m, &r).join("\n");
        assert!(p.contains("on a row without early_data"), "{p}");
    }

    #[test]
    fn cpu_per_op_times_rate_cannot_exceed_the_sides_cores() {
        // One core each: 1000/s × 1050 µs = 1.05 cores passes, 1051 µs does not.
        let (m, mut r) = sane();
        r.rows[0].per_repeat[0].server_cpu_us = Some(1050.0);
        assert!(check(&m, &r).is_empty(), "{:?}", check(&m, &r));
        let p = broken("full", |row, _| {
            row.per_repeat[0].server_cpu_us = Some(1051.0)
        });
        assert!(
            p.contains("server CPU 1051.0 µs/op") && p.contains("1.05 cores"),
            "{p}"
        );
        let p = broken("full", |row, _| {
            row.per_repeat[0].client_cpu_us = Some(2500.0)
        });
        assert!(p.contains("generator CPU 2500.0 µs/op"), "{p}");
        let p = broken("full", |row, _| row.per_repeat[0].client_cpu_us = None);
        assert!(p.contains("repeat 1: no generator CPU"), "{p}");
        // With two server cores the same figure fits.
        let (m, mut r) = sane();
        r.server_cpus = vec![0, 1];
        r.rows[0].per_repeat[0].server_cpu_us = Some(2000.0);
        assert!(check(&m, &r).is_empty(), "{:?}", check(&m, &r));
        assert!(
            cpu_fits("server", f64::NAN, 1.0, 1).is_some(),
            "NaN never fits"
        );
    }

    #[test]
    fn resumed_rows_resume_99_percent_and_full_rows_none() {
        let p = broken("resumed", |row, _| row.resumed_share = Some(0.989));
        assert!(p.contains("'resumed': only 98.90% resumed"), "{p}");
        let p = broken("resumed", |row, _| row.resumed_share = None);
        assert!(p.contains("no handshakes to resume"), "{p}");
        let p = broken("full", |row, _| row.resumed_share = Some(0.0005));
        assert!(
            p.contains("'full': 0.05% resumed in a full-handshake row"),
            "{p}"
        );
        let p = broken("full", |row, _| row.resumed_share = None);
        assert!(p.contains("'full': no handshakes"), "{p}");
    }

    #[test]
    fn a_plain_floor_row_passes_without_handshakes_and_fails_with_one() {
        let m = Matrix::parse(
            "[[scenario]]\nname = \"floor\"\nkind = \"handshake\"\ntls = \"none\"\nconnections = 8\n",
        )
        .unwrap();
        let mut floor = row("floor", 0, 0);
        floor.resumed_share = None;
        let r = RunResults::fixture(vec![floor]);
        assert!(check(&m, &r).is_empty(), "{:?}", check(&m, &r));
        let mut r = r;
        r.rows[0].handshakes.insert("full".to_owned(), 1);
        let p = check(&m, &r).join("; ");
        assert!(p.contains("'floor': 1 handshakes in a plain row"), "{p}");
    }

    #[test]
    fn rows_without_operations_with_errors_or_missing_fail() {
        let p = broken("full", |row, _| row.rate = stat(0.0));
        assert!(p.contains("no operations measured"), "{p}");
        let p = broken("full", |row, _| row.errors = 3);
        assert!(p.contains("3 errors"), "{p}");
        let p = broken("full", |row, _| row.per_repeat.clear());
        assert!(p.contains("1 repeats aggregated but 0 recorded"), "{p}");
        let p = broken("full", |row, _| row.name = "other".into());
        assert!(p.contains("'full': no row"), "{p}");
    }
}
