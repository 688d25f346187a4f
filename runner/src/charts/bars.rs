//! The bar charts: handshake rate per row beside server and client CPU per handshake, and
//! record throughput per row, on a scenario axis that names every row.

use std::ops::Range;
use std::path::Path;

use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::palette::TAB10;
use super::{ChartError, DrawResult, Mark, WIDTH, draw_err, legend};
use crate::results::{Row, Stat};

/// Width of the handshake chart: rate and CPU panels side by side.
const HANDSHAKE_WIDTH: u32 = 1500;
/// Height of the legend strip above the handshake chart's panels, px.
const LEGEND_STRIP: u32 = 34;
/// Height per bar in the bar charts, px, plus room for title and axes.
const BAR_HEIGHT: u32 = 34;
const BAR_CHART_CHROME: u32 = 150;
/// Rows at or above this resumed share are drawn as resumed-handshake rows.
const RESUMED_SHARE: f64 = 0.5;

/// Colour of full-handshake bars and of throughput bars, and of resumed-handshake bars.
const FULL_COLOR: RGBColor = TAB10[0];
const RESUMED_COLOR: RGBColor = TAB10[1];
/// Colour of server CPU bars, and of client CPU bars.
const SERVER_COLOR: RGBColor = TAB10[2];
const CLIENT_COLOR: RGBColor = TAB10[4];

/// Whether a row's handshakes were mostly resumptions.
fn is_resumed(r: &Row) -> bool {
    r.resumed_share.is_some_and(|s| s >= RESUMED_SHARE)
}

/// Height of a bar chart of `n` rows.
fn bar_chart_height(n: usize) -> u32 {
    BAR_CHART_CHROME + BAR_HEIGHT * u32::try_from(n).unwrap_or(u32::MAX / 2 / BAR_HEIGHT)
}

/// Label area sized to the longest row name (the SVG viewer's font, ~7 px per character).
fn label_area(rows: &[&Row], limit: u32) -> u32 {
    let longest = rows
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(0);
    u32::try_from(longest * 8 + 20).unwrap_or(400).min(limit)
}

/// A bar panel's chart: 0 to past the largest of `stats` (a whisker's end or a median) on x,
/// labelled `x_desc`, and `axis`'s row bands on y, in a label area of `labels.0` px titled
/// `labels.1`.
fn bar_axes<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    stats: impl Iterator<Item = Stat>,
    axis: &RowAxis,
    labels: (u32, Option<&str>),
    x_desc: &str,
) -> Result<ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RowAxis>>, String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let x_max = stats
        .map(|s| s.max.max(s.median))
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    // Room past the longest whisker; a run of all-zero values still gets a usable axis.
    let x_max = if x_max > 0.0 { x_max * 1.08 } else { 1.0 };
    let (label_width, y_desc) = labels;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(label_width)
        .build_cartesian_2d(0.0..x_max, axis.clone())
        .map_err(e)?;
    let x_label = |x: &f64| axis_number(*x, x_max);
    let mut mesh = chart.configure_mesh();
    mesh.disable_y_mesh()
        .x_label_formatter(&x_label)
        .x_desc(x_desc)
        .label_style(("sans-serif", 13));
    if let Some(y_desc) = y_desc {
        mesh.y_desc(y_desc);
    }
    mesh.draw().map_err(e)?;
    Ok(chart)
}

/// Horizontal bars of `rate` per row, first row on top, with min–max whiskers. Horizontal so
/// that long scenario names fit as axis labels without overlapping. With `split_resumed`,
/// resumed rows get their own colour (its legend is the caller's, outside the plot).
fn rate_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    rows: &[&Row],
    title: &str,
    unit: &str,
    split_resumed: bool,
) -> DrawResult {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let (w, _) = area.dim_in_pixel();
    let axis = RowAxis::new(rows.iter().map(|r| r.name.clone()).collect());
    let band = |i: usize, edge: f64| axis.center(i) - 0.5 + edge;
    let rates = rows.iter().map(|r| r.rate);
    let labels = (label_area(rows, w / 2), Some("scenario"));
    let mut chart = bar_axes(area, title, rates, &axis, labels, unit)?;
    for (i, row) in rows.iter().enumerate() {
        let color = if split_resumed && is_resumed(row) {
            RESUMED_COLOR
        } else {
            FULL_COLOR
        };
        let r = row.rate;
        let (min, med, max) = (finite(r.min), finite(r.median), finite(r.max));
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(0.0, band(i, 0.15)), (med, band(i, 0.85))],
                color.mix(0.8).filled(),
            )))
            .map_err(e)?;
        chart
            .draw_series(std::iter::once(ErrorBar::new_horizontal(
                axis.center(i),
                min.min(med),
                med,
                max.max(med),
                BLACK.stroke_width(1),
                10,
            )))
            .map_err(e)?;
    }
    Ok(())
}

/// Server and client CPU µs per operation per row, as two bars in each row's band (server on
/// top), with min–max whiskers; the row names are those of the rate panel beside it.
fn cpu_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    rows: &[&Row],
    title: &str,
) -> DrawResult {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let stats = |r: &Row| [r.server_cpu_us, Some(r.client_cpu_us)];
    let axis = RowAxis::blank(rows.len());
    let measured = rows.iter().flat_map(|r| stats(r).into_iter().flatten());
    let labels = (8, None);
    let mut chart = bar_axes(area, title, measured, &axis, labels, "CPU µs per operation")?;
    for (i, row) in rows.iter().enumerate() {
        let top = axis.center(i) + 0.5;
        for (k, (stat, color)) in stats(row)
            .into_iter()
            .zip([SERVER_COLOR, CLIENT_COLOR])
            .enumerate()
        {
            // No server CPU (an external --target): no bar, rather than a bar of 0.
            let Some(st) = stat else { continue };
            let (y1, y0) = (top - 0.1 - 0.4 * k as f64, top - 0.5 - 0.4 * k as f64);
            let (min, med, max) = (finite(st.min), finite(st.median), finite(st.max));
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(0.0, y0), (med, y1)],
                    color.mix(0.85).filled(),
                )))
                .map_err(e)?;
            chart
                .draw_series(std::iter::once(ErrorBar::new_horizontal(
                    (y0 + y1) / 2.0,
                    min.min(med),
                    med,
                    max.max(med),
                    BLACK.stroke_width(1),
                    6,
                )))
                .map_err(e)?;
        }
    }
    Ok(())
}

/// Record throughput per row.
pub(super) fn throughput_chart(path: &Path, rows: &[&Row]) -> Result<(), ChartError> {
    let err = draw_err(path);
    let root = SVGBackend::new(path, (WIDTH, bar_chart_height(rows.len()))).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    rate_panel(
        &root,
        rows,
        "Throughput (MB/s = 10^6 bytes/s, median; whiskers: min–max over repeats)",
        "MB/s",
        false,
    )
    .map_err(draw_err(path))?;
    root.present().map_err(&err)?;
    Ok(())
}

/// The handshake chart: rate per row (left) beside server and client CPU µs per handshake
/// (right), rows aligned, the legend in a strip above both.
pub(super) fn handshake_chart(path: &Path, rows: &[&Row]) -> Result<(), ChartError> {
    let err = draw_err(path);
    let height = LEGEND_STRIP + bar_chart_height(rows.len());
    let root = SVGBackend::new(path, (HANDSHAKE_WIDTH, height)).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let (strip, body) = root.split_vertically(LEGEND_STRIP);
    let mut entries = vec![("full handshakes".to_owned(), FULL_COLOR, Mark::Bar)];
    if rows.iter().any(|r| is_resumed(r)) {
        entries.push((
            "resumed (≥ 50% of handshakes)".to_owned(),
            RESUMED_COLOR,
            Mark::Bar,
        ));
    }
    entries.push((
        "server CPU µs/handshake".to_owned(),
        SERVER_COLOR,
        Mark::Bar,
    ));
    entries.push((
        "client CPU µs/handshake".to_owned(),
        CLIENT_COLOR,
        Mark::Bar,
    ));
    legend(&strip, &entries, true).map_err(draw_err(path))?;
    let (left, right) = body.split_horizontally(HANDSHAKE_WIDTH * 3 / 5);
    rate_panel(
        &left,
        rows,
        "Handshake rate (handshakes/s, median; whiskers: min–max over repeats)",
        "handshakes/s",
        true,
    )
    .map_err(draw_err(path))?;
    cpu_panel(
        &right,
        rows,
        "CPU per handshake (µs, median; server, client)",
    )
    .map_err(draw_err(path))?;
    root.present().map_err(&err)?;
    Ok(())
}

/// The scenario axis of the bar charts: one band per row, first row on top, labelled with the
/// row's name at the band's center. Its own type so that every row gets exactly one label (the
/// automatic key points of plotters' segmented axes drop labels for some row counts).
#[derive(Clone)]
pub(crate) struct RowAxis {
    /// Row names, in matrix order.
    names: Vec<String>,
    /// 0..rows, one unit per band.
    inner: RangedCoordf64,
}

impl RowAxis {
    pub(crate) fn new(names: Vec<String>) -> RowAxis {
        let n = names.len().max(1) as f64;
        RowAxis {
            names,
            inner: (0.0..n).into(),
        }
    }

    /// The same bands for `n` rows, unlabelled (a panel beside one that names them).
    fn blank(n: usize) -> RowAxis {
        RowAxis::new(vec![String::new(); n])
    }

    /// Where row `i`'s band is centered (y grows upwards, so row 0 gets the top band).
    pub(crate) fn center(&self, i: usize) -> f64 {
        self.names.len().saturating_sub(i + 1) as f64 + 0.5
    }
}

impl Ranged for RowAxis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            return Vec::new();
        }
        (0..self.names.len()).map(|i| self.center(i)).collect()
    }

    fn range(&self) -> Range<f64> {
        self.inner.range()
    }
}

impl ValueFormatter<f64> for RowAxis {
    fn format_ext(&self, value: &f64) -> String {
        (0..self.names.len())
            .find(|&i| (self.center(i) - value).abs() < 1e-6)
            .map_or_else(String::new, |i| self.names[i].clone())
    }
}

/// An axis tick value on an axis ending at `max`: whole numbers unless the axis is short enough
/// to need a decimal.
fn axis_number(v: f64, max: f64) -> String {
    if max >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// Non-finite values (never expected, but read from a file) drawn as zero rather than breaking
/// the chart's coordinates.
fn finite(v: f64) -> f64 {
    if v.is_finite() { v } else { 0.0 }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::fixtures::{sample, temp_dir, texts};
    use super::super::write_charts;
    use super::*;
    use crate::results::{RunResults, Stat};

    #[test]
    fn the_handshake_chart_shows_server_and_client_cpu_per_handshake() {
        let dir = temp_dir("handshake-cpu");
        let mut rows = sample();
        rows[0].server_cpu_us = Some(Stat::of(&[310.0]));
        rows[0].client_cpu_us = Stat::of(&[205.0]);
        // An external server: no server bar, the client one stays.
        rows[1].server_cpu_us = None;
        write_charts(&RunResults::fixture(rows), &dir).unwrap();
        let svg = std::fs::read_to_string(dir.join("handshakes.svg")).unwrap();
        let texts = texts(&svg);
        for label in ["server CPU µs/handshake", "client CPU µs/handshake"] {
            let (x, _) = texts.iter().find(|(_, t)| t == label).unwrap();
            assert!(*x < 1000.0, "{label} in the legend strip");
        }
        assert!(
            texts
                .iter()
                .any(|(_, t)| t.starts_with("CPU per handshake"))
        );
        let bars = |colour: RGBColor| {
            let fill = format!("fill=\"#{:02X}{:02X}{:02X}\"", colour.0, colour.1, colour.2);
            // Bars are drawn translucent; the legend's square is opaque.
            svg.split("<rect")
                .filter(|r| r.contains(&fill) && r.contains("opacity=\"0.85\""))
                .map(|r| {
                    let w = r
                        .split("width=\"")
                        .nth(1)
                        .unwrap()
                        .split('"')
                        .next()
                        .unwrap();
                    w.parse::<f64>().unwrap()
                })
                .collect::<Vec<f64>>()
        };
        let (server, client) = (bars(SERVER_COLOR), bars(CLIENT_COLOR));
        assert_eq!(
            (server.len(), client.len()),
            (1, 2),
            "one bar per measured side and row"
        );
        // 310 vs 205 µs: the server's bar is the longer, in proportion.
        let ratio = server[0] / client[0];
        assert!((ratio - 310.0 / 205.0).abs() < 0.02, "{ratio}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
