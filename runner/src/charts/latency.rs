//! The latency chart: each row's request-latency percentile curve (from its merged
//! histogram) on a nines × log(µs) plane, one panel per kind of row, the legend beside.

use std::ops::Range;
use std::path::Path;

use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::palette::palette;
use super::{ChartError, DrawResult, LEGEND_ENTRY, Mark, WIDTH, draw_err, legend};
use crate::results::{Row, RowKind};

/// Latency chart: the plots take this many px from the left; the legend column starts here.
const LEGEND_LEFT: u32 = 620;
/// Height of one latency panel, px (more when its legend needs it).
const PANEL_HEIGHT: u32 = 380;
/// Percentiles the latency axis is labelled at, with their labels.
const NINES: [(f64, &str); 5] = [
    (0.5, "50%"),
    (0.9, "90%"),
    (0.99, "99%"),
    (0.999, "99.9%"),
    (0.9999, "99.99%"),
];
/// Points per latency curve, evenly spaced in "nines".
const CURVE_POINTS: usize = 80;

/// The "nines" of quantile `q`: 0.9 → 1, 0.99 → 2, 0.5 → 0.301.
fn nines(q: f64) -> f64 {
    -(1.0 - q).log10()
}

/// A row's latency curve as (nines, µs) points, or None when its histogram does not decode or
/// is empty.
pub(super) fn latency_curve(hdr: &str) -> Option<Vec<(f64, f64)>> {
    if hdr.trim().is_empty() {
        return None;
    }
    let h = loadgen::report::decode_hist(hdr).ok()?;
    if h.is_empty() {
        return None;
    }
    let (lo, hi) = (nines(NINES[0].0), nines(NINES[NINES.len() - 1].0));
    let points = (0..CURVE_POINTS)
        .map(|k| {
            let x = lo + (hi - lo) * k as f64 / (CURVE_POINTS - 1) as f64;
            let q = 1.0 - 10f64.powf(-x);
            // Log axis: a 0 µs bucket (sub-µs operations) is drawn at 1 µs.
            (x, (h.value_at_quantile(q) as f64).max(1.0))
        })
        .collect();
    Some(points)
}

/// The percentile axis: linear in nines, ticks exactly at [`NINES`] and labelled "50%" ..
/// "99.99%". A type of its own because plotters' `WithKeyPoints` loses the f64 formatter
/// that `configure_mesh` needs.
struct NinesAxis(RangedCoordf64);

impl NinesAxis {
    fn new() -> NinesAxis {
        NinesAxis((nines(NINES[0].0)..nines(NINES[NINES.len() - 1].0)).into())
    }
}

impl Ranged for NinesAxis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.0.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // As plotters' WithKeyPoints does: a request that allows light points is the one for
        // the fine grid, which this axis does without.
        if hint.weight().allow_light_points() {
            return Vec::new();
        }
        NINES.iter().map(|&(q, _)| nines(q)).collect()
    }

    fn range(&self) -> Range<f64> {
        self.0.range()
    }
}

impl ValueFormatter<f64> for NinesAxis {
    fn format_ext(&self, value: &f64) -> String {
        NINES
            .iter()
            .find(|&&(q, _)| (nines(q) - value).abs() < 1e-6)
            .map_or_else(String::new, |&(_, label)| label.to_owned())
    }
}

/// The latency curves of the rows whose histogram decodes to something, in row order.
pub(super) fn curves(rows: &[Row]) -> Vec<Curve<'_>> {
    rows.iter()
        .filter_map(|r| {
            latency_curve(&r.latency_hdr).map(|points| Curve {
                name: r.name.as_str(),
                kind: r.kind,
                points,
            })
        })
        .collect()
}

/// One row's latency percentile curve.
pub(super) struct Curve<'a> {
    name: &'a str,
    kind: RowKind,
    /// (nines, µs) points.
    points: Vec<(f64, f64)>,
}

/// The latency panels, in order, and their titles.
const LATENCY_PANELS: [(RowKind, &str); 3] = [
    (RowKind::Handshake, "Handshakes (new connection each)"),
    (RowKind::Requests, "Keep-alive requests"),
    (RowKind::Throughput, "Throughput (whole bodies)"),
];

/// One panel per kind of row (handshakes, requests, throughput), each a line per row on a
/// nines × log(µs) plane, with its legend in a column right of the plot. Colours are given
/// over all rows, so none repeats anywhere in the chart.
pub(super) fn latency_chart(path: &Path, curves: &[Curve<'_>]) -> Result<(), ChartError> {
    let err = draw_err(path);
    let colors = palette(curves.len());
    let panels: Vec<(&str, Vec<usize>)> = LATENCY_PANELS
        .iter()
        .map(|(kind, title)| {
            let members = (0..curves.len()).filter(|&i| curves[i].kind == *kind);
            (*title, members.collect::<Vec<_>>())
        })
        .filter(|(_, m)| !m.is_empty())
        .collect();
    let heights: Vec<u32> = panels
        .iter()
        .map(|(_, m)| {
            let n = u32::try_from(m.len()).unwrap_or(u32::MAX / 2 / LEGEND_ENTRY);
            PANEL_HEIGHT.max(40 + LEGEND_ENTRY * n)
        })
        .collect();
    let root = SVGBackend::new(path, (WIDTH, heights.iter().sum::<u32>())).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let mut rest = root.clone();
    for ((title, members), h) in panels.iter().zip(&heights) {
        let (panel, below) = rest.split_vertically(*h);
        rest = below;
        let (plot, key) = panel.split_horizontally(LEGEND_LEFT);
        let lines: Vec<(&Curve<'_>, RGBColor)> =
            members.iter().map(|&i| (&curves[i], colors[i])).collect();
        latency_panel(&plot, title, &lines).map_err(draw_err(path))?;
        let entries: Vec<(String, RGBColor, Mark)> = lines
            .iter()
            .map(|(c, color)| (c.name.to_owned(), *color, Mark::Line))
            .collect();
        // Below the panel's caption, level with the plot.
        let (_, key) = key.split_vertically(30);
        legend(&key, &entries, false).map_err(draw_err(path))?;
    }
    root.present().map_err(&err)?;
    Ok(())
}

fn latency_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    lines: &[(&Curve<'_>, RGBColor)],
) -> DrawResult {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let ys = lines.iter().flat_map(|(c, _)| c.points.iter().map(|p| p.1));
    let (y_min, y_max) = ys.fold((f64::MAX, 1.0_f64), |(lo, hi), y| (lo.min(y), hi.max(y)));
    // Whole decades around the data, so the log axis gets readable ticks.
    let y_lo = 10f64.powf(y_min.max(1.0).log10().floor());
    let y_hi = 10f64.powf((y_max * 1.01).log10().ceil()).max(y_lo * 10.0);
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{title}: latency (µs, log)"), ("sans-serif", 16))
        .margin(12)
        // Room for the last percentile label, which is centered on the right edge.
        .margin_right(36)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(NinesAxis::new(), (y_lo..y_hi).log_scale())
        .map_err(e)?;
    chart
        .configure_mesh()
        .y_label_formatter(&|y: &f64| format!("{y:.0}"))
        .x_desc("percentile")
        .y_desc("latency (µs)")
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(e)?;
    for (curve, color) in lines {
        chart
            .draw_series(LineSeries::new(
                curve.points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(e)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::fixtures::{hist, sample, temp_dir, texts};
    use super::super::write_charts;
    use super::*;
    use crate::results::RunResults;

    /// Each 2-px polyline (a latency curve) of an SVG: (stroke colour, its points' x).
    fn curves(svg: &str) -> Vec<(String, Vec<f64>)> {
        svg.split("<polyline")
            .skip(1)
            .filter(|p| p.contains("stroke-width=\"2\""))
            .map(|p| {
                let stroke = p
                    .split("stroke=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap();
                let points = p
                    .split("points=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap();
                let xs = points
                    .split_whitespace()
                    .map(|xy| xy.split(',').next().unwrap().parse().unwrap())
                    .collect();
                (stroke.to_owned(), xs)
            })
            .collect()
    }

    /// The sample rows plus `extra` handshake rows (more series than one palette of ten).
    fn many(extra: u64) -> Vec<Row> {
        let mut rows = sample();
        for i in 0..extra {
            let mut r = rows[0].clone();
            r.name = format!("extra handshake row {i} with a long name");
            r.latency_hdr = hist(&[100 + i * 30, 200 + i * 40, 300 + i * 50, 2000]);
            rows.push(r);
        }
        rows
    }

    #[test]
    fn latency_is_split_by_kind_with_the_legend_beside_the_plots_and_no_colour_twice() {
        let dir = temp_dir("latency");
        let rows = many(12);
        write_charts(&RunResults::fixture(rows.clone()), &dir).unwrap();
        let svg = std::fs::read_to_string(dir.join("latency.svg")).unwrap();
        let texts = texts(&svg);
        for (_, title) in LATENCY_PANELS {
            assert!(
                texts.iter().any(|(_, t)| t.starts_with(title)),
                "no panel '{title}'"
            );
        }
        let legend_left = f64::from(LEGEND_LEFT);
        for row in &rows {
            let (x, _) = texts
                .iter()
                .find(|(_, t)| *t == row.name)
                .unwrap_or_else(|| panic!("{} not in the legend", row.name));
            assert!(*x >= legend_left, "{}: legend entry at x = {x}", row.name);
        }
        let lines = curves(&svg);
        assert_eq!(lines.len(), rows.len());
        for (colour, xs) in &lines {
            assert!(
                xs.iter().all(|x| *x < legend_left),
                "curve {colour} runs into the legend column"
            );
        }
        let mut colours: Vec<&String> = lines.iter().map(|(c, _)| c).collect();
        colours.sort();
        colours.dedup();
        assert_eq!(colours.len(), rows.len(), "a colour is used twice");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn nines_axis() {
        assert!((nines(0.9) - 1.0).abs() < 1e-12);
        assert!((nines(0.9999) - 4.0).abs() < 1e-9);
        let c = latency_curve(&hist(&[10, 20, 30, 1000])).unwrap();
        assert_eq!(c.len(), CURVE_POINTS);
        assert!(
            c.windows(2).all(|w| w[0].1 <= w[1].1),
            "percentile curves never fall"
        );
        assert!(latency_curve("").is_none());
        assert!(
            latency_curve(&loadgen::report::encode_hist(&loadgen::stats::new_hist())).is_none()
        );
    }
}
