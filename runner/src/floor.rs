//! The TCP floor: each TLS row's **TLS cost**, its server CPU per operation minus that of the
//! plain-HTTP row (`tls = "none"`) doing the same operation — a new connection per request
//! for handshake rows, a keep-alive request for request rows, the same body size and
//! direction for throughput rows. A TLS row without such a floor gets no figure and the
//! reason, never a guess; a figure the repeats cannot tell from zero is marked so.

use crate::results::{Row, TlsCost};
use crate::scenario::{Body, Matrix, Scenario};

/// What a floor must share with a TLS row to be its floor.
fn same_operation(tls: &Scenario, plain: &Scenario) -> bool {
    plain.plain && tls.kind == plain.kind && tls.body == plain.body
}

fn describe(s: &Scenario) -> String {
    let body = match s.body {
        Some(Body::Download(n)) => format!(", download {n} bytes"),
        Some(Body::Upload(n)) => format!(", upload {n} bytes"),
        None => String::new(),
    };
    format!("kind {}{body}", s.kind.op_unit())
}

/// The TLS cost of TLS scenario `s` (whose row is `row`) against the rows of the run.
pub fn tls_cost(matrix: &Matrix, s: &Scenario, row: &Row, rows: &[Row]) -> TlsCost {
    let missing = |floor: Option<&str>, why: String| TlsCost {
        floor: floor.map(str::to_owned),
        us: None,
        within_noise: false,
        missing: Some(why),
    };
    let Some(floor) = matrix.scenarios.iter().find(|p| same_operation(s, p)) else {
        return missing(
            None,
            format!(
                "no plain row (tls = \"none\") with the same operation ({}) in the matrix",
                describe(s)
            ),
        );
    };
    let Some(floor_row) = rows.iter().find(|r| r.name == floor.name) else {
        return missing(Some(&floor.name), "the floor row did not run".to_owned());
    };
    let (Some(tls_cpu), Some(floor_cpu)) = (&row.server_cpu_us, &floor_row.server_cpu_us) else {
        return missing(
            Some(&floor.name),
            "no server CPU on this row or its floor (an external --target is not measured)"
                .to_owned(),
        );
    };
    let us = tls_cpu.median - floor_cpu.median;
    let overlap = tls_cpu.min <= floor_cpu.max && floor_cpu.min <= tls_cpu.max;
    TlsCost {
        floor: Some(floor.name.clone()),
        us: Some(us),
        within_noise: overlap || us < 0.0,
        missing: None,
    }
}

/// Sets every TLS row's [`Row::tls_cost`]; floor rows keep none (they are the floor).
pub fn apply(matrix: &Matrix, rows: &mut [Row]) {
    let costs: Vec<Option<TlsCost>> = rows
        .iter()
        .map(|row| {
            let s = matrix.scenarios.iter().find(|s| s.name == row.name)?;
            (!s.plain).then(|| tls_cost(matrix, s, row, rows))
        })
        .collect();
    for (row, cost) in rows.iter_mut().zip(costs) {
        row.tls_cost = cost;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::results::{RowKind, Stat};

    const MATRIX: &str = "\
        [[scenario]]\nname = \"full\"\nkind = \"handshake\"\ntls = \"1.3\"\n\
        [[scenario]]\nname = \"keep-alive\"\nkind = \"requests\"\ntls = \"1.3\"\n\
        [[scenario]]\nname = \"down 1M\"\nkind = \"throughput\"\ntls = \"1.3\"\ndownload = 1048576\n\
        [[scenario]]\nname = \"down 64K\"\nkind = \"throughput\"\ntls = \"1.3\"\ndownload = 65536\n\
        [[scenario]]\nname = \"up 1M\"\nkind = \"throughput\"\ntls = \"1.3\"\nupload = 1048576\n\
        [[scenario]]\nname = \"floor: new connection\"\nkind = \"handshake\"\ntls = \"none\"\n\
        [[scenario]]\nname = \"floor: keep-alive\"\nkind = \"requests\"\ntls = \"none\"\n\
        [[scenario]]\nname = \"floor: download 1M\"\nkind = \"throughput\"\ntls = \"none\"\ndownload = 1048576\n\
        [[scenario]]\nname = \"floor: upload 1M\"\nkind = \"throughput\"\ntls = \"none\"\nupload = 1048576\n";

    fn row(name: &str, server_cpu: Option<f64>) -> Row {
        let mut r = crate::results::tests_support::row(name, RowKind::Handshake);
        r.server_cpu_us = server_cpu.map(|v| Stat::of(&[v]));
        r
    }

    #[test]
    fn each_tls_row_is_measured_against_the_floor_of_its_own_operation() {
        let m = Matrix::parse(MATRIX).unwrap();
        let mut rows: Vec<Row> = [
            ("full", Some(250.0)),
            ("keep-alive", Some(9.0)),
            ("down 1M", Some(900.0)),
            ("down 64K", Some(1200.0)),
            ("up 1M", Some(1100.0)),
            ("floor: new connection", Some(40.0)),
            ("floor: keep-alive", Some(4.0)),
            ("floor: download 1M", Some(300.0)),
            ("floor: upload 1M", Some(500.0)),
        ]
        .into_iter()
        .map(|(n, cpu)| row(n, cpu))
        .collect();
        apply(&m, &mut rows);
        let cost = |name: &str| {
            rows.iter()
                .find(|r| r.name == name)
                .unwrap()
                .tls_cost
                .clone()
        };
        let got = |name: &str| {
            let c = cost(name).unwrap();
            (c.floor.unwrap(), c.us.unwrap())
        };
        assert_eq!(got("full"), ("floor: new connection".into(), 210.0));
        assert_eq!(got("keep-alive"), ("floor: keep-alive".into(), 5.0));
        assert_eq!(got("down 1M"), ("floor: download 1M".into(), 600.0));
        assert_eq!(got("up 1M"), ("floor: upload 1M".into(), 600.0));
        // No floor of that size: no figure, and the reason says what was looked for.
        let none = cost("down 64K").unwrap();
        assert_eq!((none.floor, none.us), (None, None));
        let why = none.missing.unwrap();
        assert!(why.contains("download 65536 bytes"), "{why}");
        // Floor rows are the floor, not TLS rows.
        assert_eq!(cost("floor: keep-alive"), None);
    }

    #[test]
    fn a_cost_the_repeats_cannot_tell_from_noise_is_marked() {
        let m = Matrix::parse(MATRIX).unwrap();
        let cost = |tls: &[f64], floor: &[f64]| {
            let mut rows = vec![row("keep-alive", None), row("floor: keep-alive", None)];
            rows[0].server_cpu_us = Some(Stat::of(tls));
            rows[1].server_cpu_us = Some(Stat::of(floor));
            apply(&m, &mut rows);
            let c = rows[0].tls_cost.clone().unwrap();
            (c.us.unwrap(), c.within_noise)
        };
        // Ranges apart: a cost.
        assert_eq!(cost(&[9.0, 9.5, 10.0], &[4.0, 4.5, 5.0]), (5.0, false));
        // Ranges overlapping: the same median difference is within the noise.
        assert_eq!(cost(&[9.0, 9.5, 12.0], &[4.0, 4.5, 9.0]), (5.0, true));
        // Below zero: never a real cost, even from one repeat each.
        assert_eq!(cost(&[4.0], &[4.5]), (-0.5, true));
        assert_eq!(cost(&[5.0], &[4.5]), (0.5, false));
    }

    #[test]
    fn a_floor_that_did_not_run_or_was_not_measured_gives_no_figure() {
        let m = Matrix::parse(MATRIX).unwrap();
        let mut rows = vec![row("full", Some(250.0)), row("keep-alive", Some(9.0))];
        rows.push(row("floor: keep-alive", None));
        apply(&m, &mut rows);
        let full = rows[0].tls_cost.clone().unwrap();
        assert_eq!(full.floor.as_deref(), Some("floor: new connection"));
        assert_eq!(full.us, None);
        assert!(full.missing.unwrap().contains("did not run"));
        let ka = rows[1].tls_cost.clone().unwrap();
        assert_eq!(ka.us, None);
        assert!(ka.missing.unwrap().contains("no server CPU"));
    }
}
