//! `profile.svg`: per profiled row, a stacked bar of the server's CPU per operation split by
//! component (µs = the component's share of the server's samples × the row's server CPU
//! µs/op). Rows of different kinds share the axis; each bar's label carries its unit.

use std::path::Path;

use plotters::prelude::*;

use super::components::Component;
use crate::charts::ChartError;
use crate::charts::palette::{TAB10, TAB20B_DARK};
use crate::results::RunResults;

const WIDTH: u32 = 1100;
/// Height per row (its name above its bar), px, plus room for title and axis.
const ROW_HEIGHT: u32 = 44;
const CHROME: u32 = 120;

/// One distinct color per component, in [`Component::ALL`] order: tab10 with its grey kept
/// for the last component ("other"), tab20b's darks between.
const COLORS: [RGBColor; 14] = [
    TAB10[0],
    TAB10[1],
    TAB10[2],
    TAB10[3],
    TAB10[4],
    TAB10[5],
    TAB10[6],
    TAB10[8],
    TAB10[9],
    TAB20B_DARK[0],
    TAB20B_DARK[1],
    TAB20B_DARK[2],
    TAB20B_DARK[3],
    TAB10[7],
];

/// The bars: per row with a server breakdown and server CPU, its name (with the unit) and
/// (component, µs) segments in [`Component::ALL`] order.
pub fn bars(results: &RunResults) -> Vec<(String, Vec<(Component, f64)>)> {
    results
        .rows
        .iter()
        .filter_map(|r| {
            let b = results.profiles.get(&r.name)?.server.as_ref()?;
            let segments: Vec<(Component, f64)> = b
                .parts
                .iter()
                .filter_map(|p| p.us_per_op.map(|us| (p.component, us)))
                .collect();
            (!segments.is_empty())
                .then(|| (format!("{} (µs/{})", r.name, r.kind.op_unit()), segments))
        })
        .collect()
}

/// Writes `path` when some row has a server breakdown; returns whether it did.
pub fn write(results: &RunResults, path: &Path) -> Result<bool, ChartError> {
    let bars = bars(results);
    if bars.is_empty() {
        return Ok(false);
    }
    let err = |e: DrawingAreaErrorKind<_>| ChartError::Draw {
        path: path.to_owned(),
        message: e.to_string(),
    };
    let n = bars.len();
    let height = CHROME + ROW_HEIGHT * u32::try_from(n).unwrap_or(1000);
    let longest = bars
        .iter()
        .map(|(_, s)| s.iter().map(|(_, us)| us).sum::<f64>())
        .fold(0.0_f64, f64::max);
    // Room on the right for the legend, beside the longest bar rather than over it.
    let x_max = if longest > 0.0 { longest * 1.45 } else { 1.0 };
    let root = SVGBackend::new(path, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Where the server's CPU per operation goes (perf samples × CPU µs/op)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(10)
        .build_cartesian_2d(0.0..x_max, 0.0..n as f64)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_desc("server CPU µs per operation")
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(err)?;
    // Row i's band is [n-i-1, n-i): first row on top; its name in the upper part.
    let top = |i: usize| (n - i) as f64;
    for (i, (name, _)) in bars.iter().enumerate() {
        chart
            .draw_series(std::iter::once(Text::new(
                name.clone(),
                (0.0, top(i) - 0.05),
                ("sans-serif", 13),
            )))
            .map_err(err)?;
    }
    for (c, color) in Component::ALL.iter().zip(COLORS) {
        let mut rects = Vec::new();
        for (i, (_, segments)) in bars.iter().enumerate() {
            let start: f64 = segments
                .iter()
                .take_while(|(k, _)| k != c)
                .map(|(_, us)| us)
                .sum();
            if let Some((_, us)) = segments.iter().find(|(k, _)| k == c) {
                rects.push(Rectangle::new(
                    [(start, top(i) - 0.45), (start + us, top(i) - 0.92)],
                    color.filled(),
                ));
            }
        }
        if rects.is_empty() {
            continue;
        }
        chart
            .draw_series(rects)
            .map_err(err)?
            .label(c.label())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 12))
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use crate::profile::breakdown::{Breakdown, Part, RowProfile};
    use crate::results::{Row, RowKind, Stat};

    /// A row named `name`, with a server breakdown of `parts` (component, µs) when not empty.
    pub(crate) fn profiled(rows: &[(&str, &[(Component, f64)])]) -> RunResults {
        let mut r = RunResults::fixture(
            rows.iter()
                .map(|(name, _)| Row {
                    name: (*name).into(),
                    kind: RowKind::Handshake,
                    rate: Stat::default(),
                    latency_us: Default::default(),
                    latency_merged_us: Default::default(),
                    server_cpu_us: None,
                    client_cpu_us: Stat::default(),
                    handshakes: Default::default(),
                    resumed_share: None,
                    errors: 0,
                    saturated: "neither".into(),
                    latency_hdr: String::new(),
                    repeats: 1,
                    per_repeat: Vec::new(),
                    tls_cost: None,
                    cert: None,
                    presented_cert: None,
                    server_ops_from: crate::results::OpsFrom::Server,
                    provider: "aws-lc-rs".into(),
                    handshake_bytes: None,
                })
                .collect(),
        );
        for (name, parts) in rows.iter().filter(|(_, p)| !p.is_empty()) {
            let total: f64 = parts.iter().map(|(_, us)| us).sum();
            let server = Breakdown {
                sampled_ns: 1_000_000,
                named_pct: 100.0,
                complete_pct: 100.0,
                parts: parts
                    .iter()
                    .map(|(c, us)| Part {
                        component: *c,
                        sampled_ns: (us / total * 1e6) as u64,
                        share_pct: us / total * 100.0,
                        us_per_op: Some(*us),
                    })
                    .collect(),
                folded: String::new(),
                flamegraph: String::new(),
            };
            r.profiles.insert(
                (*name).into(),
                RowProfile {
                    call_graph: "dwarf".into(),
                    server: Some(server),
                    client: None,
                },
            );
        }
        r
    }

    #[test]
    fn draws_each_profiled_row_with_its_components_and_skips_the_rest() {
        let r = profiled(&[
            (
                "full ecdsa",
                &[(Component::Signatures, 40.0), (Component::Hashing, 25.0)],
            ),
            ("unprofiled", &[]),
        ]);
        let b = bars(&r);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].0, "full ecdsa (µs/handshake)");
        let dir =
            std::env::temp_dir().join(format!("tlsbench-profile-chart-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("profile.svg");
        assert!(write(&r, &path).unwrap());
        let svg = std::fs::read_to_string(&path).unwrap();
        for text in [
            "full ecdsa (µs/handshake)",
            "signatures",
            "hashing/HKDF/PRF",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
        assert!(!svg.contains("unprofiled"));
        let none = profiled(&[("unprofiled", &[])]);
        assert!(!write(&none, &dir.join("none.svg")).unwrap());
        assert!(!dir.join("none.svg").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
