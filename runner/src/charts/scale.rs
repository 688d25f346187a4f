//! The core-scaling chart of `tlsbench run --scale`: each row's rate against server cores
//! beside its server CPU per operation, the linear reference dashed in the row's colour, and a
//! cross on every point where the generator was the limit.

use std::path::Path;

use plotters::prelude::*;

use super::palette::palette;
use super::{ChartError, DrawResult, LEGEND_ENTRY, Mark, draw_err, legend};
use crate::scale::{ScalePoint, ScaleReport};

/// Width of the two panels together, and of the legend column beside them, px.
const PANELS_WIDTH: u32 = 1200;
const LEGEND_WIDTH: u32 = 560;
const HEIGHT: u32 = 520;
/// Colour of the generator-bound cross.
const BOUND_COLOR: RGBColor = RGBColor(0, 0, 0);
/// The legend entry of the generator-bound cross.
const BOUND_LABEL: &str =
    "× generator-bound (saturated: client): a floor, not the server's measure";

/// Writes the chart of `report` to `path`.
pub(crate) fn scale_chart(report: &ScaleReport, path: &Path) -> Result<(), ChartError> {
    let colors = palette(report.rows.len());
    let mut entries = Vec::new();
    for (row, color) in report.rows.iter().zip(&colors) {
        entries.push((format!("{} ({})", row.name, row.unit), *color, Mark::Line));
        entries.push((
            format!(
                "{}: linear reference (dashed), cores × the rate per core",
                row.name
            ),
            *color,
            Mark::Bar,
        ));
    }
    let bound = report
        .rows
        .iter()
        .any(|r| r.points.iter().any(|p| p.generator_bound));
    if bound {
        entries.push((BOUND_LABEL.to_owned(), BOUND_COLOR, Mark::Bar));
    }
    let height = HEIGHT.max(40 + LEGEND_ENTRY * u32::try_from(entries.len()).unwrap_or(0));
    let root = SVGBackend::new(path, (PANELS_WIDTH + LEGEND_WIDTH, height)).into_drawing_area();
    let draw = || -> DrawResult {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (panels, side) = root.split_horizontally(PANELS_WIDTH);
        let (left, right) = panels.split_horizontally(PANELS_WIDTH / 2);
        let k_max = report.scale.iter().copied().max().unwrap_or(1) as f64;
        panel(
            &left,
            report,
            &colors,
            k_max,
            ("rate against server cores", "rate"),
            true,
            |p| Some(p.rate),
        )?;
        panel(
            &right,
            report,
            &colors,
            k_max,
            (
                "server CPU per operation against server cores",
                "server CPU µs/op",
            ),
            false,
            |p| p.server_cpu_us,
        )?;
        legend(&side, &entries, false)?;
        root.present().map_err(|e| e.to_string())
    };
    draw().map_err(draw_err(path))
}

/// One panel titled `title` with `y_desc` up its side: `value` of each row's points against server cores, and with `with_reference`
/// each row's linear reference from the origin (the rate panel's).
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    report: &ScaleReport,
    colors: &[RGBColor],
    k_max: f64,
    (title, y_desc): (&str, &str),
    with_reference: bool,
    value: impl Fn(&ScalePoint) -> Option<f64>,
) -> DrawResult {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let mut y_max = 0.0_f64;
    for row in &report.rows {
        for p in &row.points {
            y_max = y_max.max(value(p).unwrap_or(0.0));
        }
        if with_reference {
            y_max = y_max.max(row.per_core_reference * k_max);
        }
    }
    let y_max = if y_max.is_finite() && y_max > 0.0 {
        y_max * 1.1
    } else {
        1.0
    };
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..k_max + 0.5, 0.0..y_max)
        .map_err(e)?;
    // Whole cores only: a fractional core count is no point of the sweep.
    let whole = |x: &f64| {
        if x.fract() == 0.0 {
            format!("{x:.0}")
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .x_labels(k_max as usize + 2)
        .x_label_formatter(&whole)
        .x_desc("server cores")
        .y_desc(y_desc)
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(e)?;
    for (row, color) in report.rows.iter().zip(colors) {
        if with_reference {
            let reference = [(0.0, 0.0), (k_max, row.per_core_reference * k_max)];
            chart
                .draw_series(DashedLineSeries::new(
                    reference,
                    8,
                    6,
                    color.mix(0.5).stroke_width(2),
                ))
                .map_err(e)?;
        }
        let points: Vec<(f64, f64, bool)> = row
            .points
            .iter()
            .filter_map(|p| value(p).map(|v| (p.server_cores as f64, v, p.generator_bound)))
            .collect();
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|&(k, v, _)| (k, v)),
                color.stroke_width(2),
            ))
            .map_err(e)?;
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&(k, v, _)| Circle::new((k, v), 4, color.filled())),
            )
            .map_err(e)?;
        chart
            .draw_series(
                points
                    .iter()
                    .filter(|p| p.2)
                    .map(|&(k, v, _)| Cross::new((k, v), 8, BOUND_COLOR.stroke_width(2))),
            )
            .map_err(e)?;
    }
    Ok(())
}
