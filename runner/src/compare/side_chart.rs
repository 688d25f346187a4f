//! The SVG chart of `compare --side-by-side --chart FILE`: one panel per metric, a bar of
//! B/A per row common to both runs, and a line at 1 (the same as A).

use std::path::Path;

use plotters::prelude::*;

use super::side::SideBySide;
use crate::charts::RowAxis;
use crate::charts::palette::TAB10;

/// Width of the chart, px.
const WIDTH: u32 = 1100;
/// Height per row in a panel, px, and room for a panel's title and axes.
const ROW_HEIGHT: u32 = 28;
const PANEL_CHROME: u32 = 110;

/// Why the chart could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw {path}: {message}")]
pub struct ChartError {
    /// The chart file.
    pub path: std::path::PathBuf,
    /// plotters' error, as text.
    pub message: String,
}

/// Draws `s` into `path`.
pub fn write(s: &SideBySide, path: &Path) -> Result<(), ChartError> {
    let err = |e: String| ChartError {
        path: path.to_owned(),
        message: e,
    };
    let n = u32::try_from(s.lines.len().max(1)).unwrap_or(u32::MAX / 4 / ROW_HEIGHT);
    let panel = PANEL_CHROME + ROW_HEIGHT * n;
    let panels = u32::try_from(s.columns.len().max(1)).unwrap_or(1);
    let root = SVGBackend::new(path, (WIDTH, panel * panels)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let areas = root.split_evenly((s.columns.len().max(1), 1));
    let names: Vec<String> = s.lines.iter().map(|l| l.name.clone()).collect();
    let longest = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    let label_width = u32::try_from(longest * 8 + 20)
        .unwrap_or(400)
        .min(WIDTH / 2);
    for (k, (column, area)) in s.columns.iter().zip(&areas).enumerate() {
        let ratios: Vec<Option<f64>> = s.lines.iter().map(|l| l.cells[k].ratio).collect();
        let x_max = ratios
            .iter()
            .flatten()
            .copied()
            .filter(|r| r.is_finite())
            .fold(1.0_f64, f64::max)
            * 1.1;
        let axis = RowAxis::new(names.clone());
        let title = format!("{} B/A — B: {} ÷ A: {}", column.label(), s.b, s.a);
        let e = |e: DrawingAreaErrorKind<std::io::Error>| err(e.to_string());
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(label_width)
            .build_cartesian_2d(0.0..x_max, axis.clone())
            .map_err(e)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc("B ÷ A (1 = the same; a row without the metric in either run has no bar)")
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(e)?;
        let color = TAB10[k % TAB10.len()];
        for (i, r) in ratios.iter().enumerate() {
            let Some(r) = r.filter(|r| r.is_finite()) else {
                continue;
            };
            let c = axis.center(i);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(0.0, c - 0.35), (r, c + 0.35)],
                    color.mix(0.85).filled(),
                )))
                .map_err(e)?;
        }
        let top = names.len().max(1) as f64;
        chart
            .draw_series(LineSeries::new(
                [(1.0, 0.0), (1.0, top)],
                BLACK.stroke_width(1),
            ))
            .map_err(e)?;
    }
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::fixtures::base;
    use super::super::side::{Column, side_by_side};
    use super::*;

    #[test]
    fn the_chart_names_every_common_row_and_both_runs() {
        let a = base();
        let mut b = base();
        b.server_software = Some("nginx/1.22.1".into());
        for r in &mut b.rows {
            r.rate.median *= 2.0;
        }
        let s = side_by_side(&a, &b, &[Column::Rate, Column::P99]);
        let path =
            std::env::temp_dir().join(format!("tlsbench-side-chart-{}.svg", std::process::id()));
        write(&s, &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        for l in &s.lines {
            assert!(svg.contains(&l.name), "{} missing", l.name);
        }
        assert!(svg.contains("rate B/A — B: nginx/1.22.1"), "{svg}");
        assert!(svg.contains("p99 B/A"));
        // Every row has a rate in both: one bar each in the first colour; the fixture rows
        // have no p99, so the second panel has no bar at all.
        let bars = |color: RGBColor| {
            let fill = format!("fill=\"#{:02X}{:02X}{:02X}\"", color.0, color.1, color.2);
            svg.matches(&fill).count()
        };
        assert_eq!(bars(TAB10[0]), s.lines.len(), "{svg}");
        assert_eq!(bars(TAB10[1]), 0, "{svg}");
    }
}
