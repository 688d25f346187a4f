//! SVG charts of a run's results (plotters, SVG backend only): handshake rates beside server
//! and client CPU per handshake, request-latency percentile curves in one panel per kind of row
//! (handshakes, requests, throughput) with the legend beside the plot, never over it, and
//! record throughput. Every series of a chart has its own colour. Text is left to the SVG
//! viewer's fonts, so nothing here needs font files.

use std::path::{Path, PathBuf};

use std::ops::Range;

use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::results::{Kind, Row, RunResults};

/// Width of every chart, px.
const WIDTH: u32 = 960;
/// Width of the handshake chart: rate and CPU panels side by side.
const HANDSHAKE_WIDTH: u32 = 1500;
/// Height of the legend strip above the handshake chart's panels, px.
const LEGEND_STRIP: u32 = 34;
/// Latency chart: the plots take this many px from the left; the legend column starts here.
const LEGEND_LEFT: u32 = 620;
/// Height of one latency panel, px (more when its legend needs it).
const PANEL_HEIGHT: u32 = 380;
/// Height of one legend entry, px.
const LEGEND_ENTRY: u32 = 18;
/// Height per bar in the bar charts, px, plus room for title and axes.
const BAR_HEIGHT: u32 = 34;
const BAR_CHART_CHROME: u32 = 150;
/// Rows at or above this resumed share are drawn as resumed-handshake rows.
const RESUMED_SHARE: f64 = 0.5;
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

/// Color of full-handshake bars and of throughput bars.
const FULL_COLOR: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
/// Color of resumed-handshake bars.
const RESUMED_COLOR: RGBColor = RGBColor(0xff, 0x7f, 0x0e);

/// Colour of server CPU bars, and of client CPU bars.
const SERVER_COLOR: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);
const CLIENT_COLOR: RGBColor = RGBColor(0x94, 0x67, 0xbd);

/// The first colours of the latency curves (matplotlib's "tab10"): distinct and readable on
/// white, which the light yellows of plotters' palettes are not. [`palette`] continues them.
const LINE_COLORS: [RGBColor; 10] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x17, 0xbe, 0xcf),
];

/// Why charts could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// The output directory could not be created.
    #[error("cannot create {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// plotters failed while drawing or writing a chart.
    #[error("cannot draw {path}: {message}")]
    Draw {
        /// The chart file.
        path: PathBuf,
        /// plotters' error, as text (its error type is generic over the backend).
        message: String,
    },
}

/// Maps a plotters error for `path` to [`ChartError::Draw`].
fn draw_err<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> ChartError + '_ {
    move |e| ChartError::Draw {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

/// Writes the run's charts into `dir`; returns the files written. A chart with no rows to
/// show is not written at all.
pub fn write_charts(results: &RunResults, dir: &Path) -> Result<Vec<PathBuf>, ChartError> {
    std::fs::create_dir_all(dir).map_err(|source| ChartError::Dir {
        path: dir.to_owned(),
        source,
    })?;
    let mut written = Vec::new();

    let handshakes: Vec<&Row> = results
        .rows
        .iter()
        .filter(|r| r.kind == Kind::Handshake)
        .collect();
    if !handshakes.is_empty() {
        let path = dir.join("handshakes.svg");
        handshake_chart(&path, &handshakes)?;
        written.push(path);
    }

    let curves: Vec<Curve<'_>> = results
        .rows
        .iter()
        .filter_map(|r| {
            latency_curve(&r.latency_hdr).map(|points| Curve {
                name: r.name.as_str(),
                kind: r.kind,
                points,
            })
        })
        .collect();
    if !curves.is_empty() {
        let path = dir.join("latency.svg");
        latency_chart(&path, &curves)?;
        written.push(path);
    }

    let throughput: Vec<&Row> = results
        .rows
        .iter()
        .filter(|r| r.kind == Kind::Throughput)
        .collect();
    if !throughput.is_empty() {
        let path = dir.join("throughput.svg");
        throughput_chart(&path, &throughput)?;
        written.push(path);
    }
    Ok(written)
}

/// Whether a row's handshakes were mostly resumptions.
fn is_resumed(r: &Row) -> bool {
    r.resumed_share.is_some_and(|s| s >= RESUMED_SHARE)
}

/// Height of a bar chart of `n` rows.
fn bar_chart_height(n: usize) -> u32 {
    BAR_CHART_CHROME + BAR_HEIGHT * u32::try_from(n).unwrap_or(u32::MAX / 2 / BAR_HEIGHT)
}

/// plotters' drawing error on an SVG area, as text.
type DrawResult = Result<(), String>;

/// Label area sized to the longest row name (the SVG viewer's font, ~7 px per character).
fn label_area(rows: &[&Row], limit: u32) -> u32 {
    let longest = rows
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(0);
    u32::try_from(longest * 8 + 20).unwrap_or(400).min(limit)
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
    let x_max = rows
        .iter()
        .map(|r| r.rate.max.max(r.rate.median))
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    // Room past the longest whisker; a run of all-zero rates still gets a usable axis.
    let x_max = if x_max > 0.0 { x_max * 1.08 } else { 1.0 };
    let (w, _) = area.dim_in_pixel();
    let axis = RowAxis::new(rows.iter().map(|r| r.name.clone()).collect());
    let band = |i: usize, edge: f64| axis.center(i) - 0.5 + edge;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(label_area(rows, w / 2))
        .build_cartesian_2d(0.0..x_max, axis.clone())
        .map_err(e)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_label_formatter(&|x: &f64| axis_number(*x, x_max))
        .x_desc(unit)
        .y_desc("scenario")
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(e)?;
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
    let x_max = rows
        .iter()
        .flat_map(|r| stats(r).into_iter().flatten())
        .map(|s| s.max.max(s.median))
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    let x_max = if x_max > 0.0 { x_max * 1.08 } else { 1.0 };
    let axis = RowAxis::blank(rows.len());
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(8)
        .build_cartesian_2d(0.0..x_max, axis.clone())
        .map_err(e)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_label_formatter(&|x: &f64| axis_number(*x, x_max))
        .x_desc("CPU µs per operation")
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(e)?;
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

/// How a legend entry is marked.
#[derive(Clone, Copy)]
enum Mark {
    /// A filled square (bars).
    Bar,
    /// A short thick line (curves), drawn as a thin filled rectangle so it is not mistaken
    /// for a data line.
    Line,
}

/// Draws legend entries on `area` (which the plots do not use): in a column from the top, or
/// in a row when `across`.
fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    entries: &[(String, RGBColor, Mark)],
    across: bool,
) -> DrawResult {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let font = ("sans-serif", 13).into_font();
    let (mut x, mut y) = (12_i32, 10_i32);
    for (label, color, mark) in entries {
        let (x0, y0) = match mark {
            Mark::Bar => ((x, y), (x + 12, y + 12)),
            Mark::Line => ((x, y + 4), (x + 18, y + 8)),
        };
        area.draw(&Rectangle::new([x0, y0], color.filled()))
            .map_err(e)?;
        area.draw(&Text::new(label.clone(), (x + 24, y), font.clone()))
            .map_err(e)?;
        if across {
            x += 24 + 8 * i32::try_from(label.chars().count()).unwrap_or(40) + 24;
        } else {
            y += LEGEND_ENTRY as i32;
        }
    }
    Ok(())
}

/// Record throughput per row.
fn throughput_chart(path: &Path, rows: &[&Row]) -> Result<(), ChartError> {
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
fn handshake_chart(path: &Path, rows: &[&Row]) -> Result<(), ChartError> {
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
struct RowAxis {
    /// Row names, in matrix order.
    names: Vec<String>,
    /// 0..rows, one unit per band.
    inner: RangedCoordf64,
}

impl RowAxis {
    fn new(names: Vec<String>) -> RowAxis {
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
    fn center(&self, i: usize) -> f64 {
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

/// The "nines" of quantile `q`: 0.9 → 1, 0.99 → 2, 0.5 → 0.301.
fn nines(q: f64) -> f64 {
    -(1.0 - q).log10()
}

/// A row's latency curve as (nines, µs) points, or None when its histogram does not decode or
/// is empty.
fn latency_curve(hdr: &str) -> Option<Vec<(f64, f64)>> {
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

/// One row's latency percentile curve.
struct Curve<'a> {
    name: &'a str,
    kind: Kind,
    /// (nines, µs) points.
    points: Vec<(f64, f64)>,
}

/// The second ten colours: tab20's light partners of [`LINE_COLORS`], still readable as
/// 2-px lines on white.
const LIGHT_COLORS: [RGBColor; 10] = [
    RGBColor(0xae, 0xc7, 0xe8),
    RGBColor(0xff, 0xbb, 0x78),
    RGBColor(0x98, 0xdf, 0x8a),
    RGBColor(0xff, 0x98, 0x96),
    RGBColor(0xc5, 0xb0, 0xd5),
    RGBColor(0xc4, 0x9c, 0x94),
    RGBColor(0xf7, 0xb6, 0xd2),
    RGBColor(0xc7, 0xc7, 0xc7),
    RGBColor(0xdb, 0xdb, 0x8d),
    RGBColor(0x9e, 0xda, 0xe5),
];

/// `n` colours, no two alike: [`LINE_COLORS`], [`LIGHT_COLORS`], then dark hues around the
/// circle at the golden angle (so neighbours differ most).
fn palette(n: usize) -> Vec<RGBColor> {
    let mut out: Vec<RGBColor> = LINE_COLORS
        .iter()
        .chain(&LIGHT_COLORS)
        .copied()
        .take(n)
        .collect();
    let mut k = 0_u32;
    while out.len() < n {
        let hue = (f64::from(k) * 137.508 + 15.0) % 360.0;
        let light = [0.28, 0.4][(k % 2) as usize];
        let c = hsl(hue, 0.8, light);
        if !out.contains(&c) {
            out.push(c);
        }
        k += 1;
    }
    out
}

/// HSL (hue in degrees, saturation and lightness 0..1) to RGB.
fn hsl(h: f64, s: f64, l: f64) -> RGBColor {
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let x = c * (1.0 - ((h / 60.0) % 2.0 - 1.0).abs());
    let m = l - c / 2.0;
    let (r, g, b) = match (h / 60.0) as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let byte = |v: f64| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    RGBColor(byte(r), byte(g), byte(b))
}

/// The latency panels, in order, and their titles.
const LATENCY_PANELS: [(Kind, &str); 3] = [
    (Kind::Handshake, "Handshakes (new connection each)"),
    (Kind::Requests, "Keep-alive requests"),
    (Kind::Throughput, "Throughput (whole bodies)"),
];

/// One panel per kind of row (handshakes, requests, throughput), each a line per row on a
/// nines × log(µs) plane, with its legend in a column right of the plot. Colours are given
/// over all rows, so none repeats anywhere in the chart.
fn latency_chart(path: &Path, curves: &[Curve<'_>]) -> Result<(), ChartError> {
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
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::results::Stat;

    fn hist(values_us: &[u64]) -> String {
        let mut h = loadgen::stats::new_hist();
        for &v in values_us {
            loadgen::stats::record(&mut h, Duration::from_micros(v));
        }
        loadgen::report::encode_hist(&h)
    }

    fn row(name: &str, kind: Kind, rate: f64, resumed_share: Option<f64>, hdr: String) -> Row {
        Row {
            name: name.to_owned(),
            kind,
            rate: Stat {
                median: rate,
                min: rate * 0.95,
                max: rate * 1.04,
            },
            latency_us: BTreeMap::new(),
            latency_merged_us: BTreeMap::new(),
            server_cpu_us: Some(Stat {
                median: 100.0,
                min: 99.0,
                max: 101.0,
            }),
            client_cpu_us: Stat {
                median: 100.0,
                min: 99.0,
                max: 101.0,
            },
            handshakes: BTreeMap::new(),
            resumed_share,
            errors: 0,
            saturated: "neither".to_owned(),
            latency_hdr: hdr,
            repeats: 3,
            per_repeat: Vec::new(),
            tls_cost: None,
        }
    }

    fn sample() -> Vec<Row> {
        vec![
            row(
                "full-x25519-p256",
                Kind::Handshake,
                1850.0,
                Some(0.0),
                hist(&[400, 450, 480, 900, 2500]),
            ),
            row(
                "resumed-tickets",
                Kind::Handshake,
                9100.0,
                Some(0.98),
                hist(&[90, 95, 100, 140, 600]),
            ),
            row(
                "keepalive-1k",
                Kind::Requests,
                52000.0,
                None,
                hist(&[20, 22, 25, 30, 45, 300]),
            ),
            row(
                "bulk-1m",
                Kind::Throughput,
                1480.0,
                None,
                hist(&[700, 710, 720, 800, 1500]),
            ),
        ]
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("tlsbench-charts-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn writes_three_charts_with_row_names() {
        let dir = temp_dir("all");
        let written = write_charts(&RunResults::fixture(sample()), &dir).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["handshakes.svg", "latency.svg", "throughput.svg"]);
        for p in &written {
            let svg = std::fs::read_to_string(p).unwrap();
            assert!(
                svg.starts_with("<svg"),
                "{}: {}",
                p.display(),
                &svg[..svg.len().min(80)]
            );
        }
        let hs = std::fs::read_to_string(dir.join("handshakes.svg")).unwrap();
        assert!(hs.contains("full-x25519-p256") && hs.contains("resumed-tickets"));
        assert!(hs.contains("handshakes/s"));
        assert!(!hs.contains("keepalive-1k"), "only handshake rows are bars");
        let lat = std::fs::read_to_string(dir.join("latency.svg")).unwrap();
        for name in [
            "full-x25519-p256",
            "resumed-tickets",
            "keepalive-1k",
            "bulk-1m",
            "99.9%",
            "µs",
        ] {
            assert!(lat.contains(name), "latency.svg lacks {name}");
        }
        let tp = std::fs::read_to_string(dir.join("throughput.svg")).unwrap();
        assert!(tp.contains("bulk-1m") && tp.contains("MB/s"));
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Each `<text>` element of an SVG: (x, its text).
    fn texts(svg: &str) -> Vec<(f64, String)> {
        svg.split("<text")
            .skip(1)
            .map(|t| {
                let x = t.split("x=\"").nth(1).unwrap().split('"').next().unwrap();
                let body = t
                    .split_once('>')
                    .unwrap()
                    .1
                    .split("</text>")
                    .next()
                    .unwrap();
                (x.parse().unwrap(), body.trim().to_owned())
            })
            .collect()
    }

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
    fn the_palette_never_repeats_a_colour() {
        for n in [1, 10, 11, 20, 21, 64] {
            let mut p = palette(n);
            assert_eq!(p.len(), n);
            p.sort_by_key(|c| (c.0, c.1, c.2));
            p.dedup();
            assert_eq!(p.len(), n, "{n} colours");
        }
    }

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

    #[test]
    fn charts_without_rows_are_skipped() {
        let dir = temp_dir("no-throughput");
        let mut rows = sample();
        rows.retain(|r| r.kind != Kind::Throughput);
        let written = write_charts(&RunResults::fixture(rows), &dir).unwrap();
        assert_eq!(written.len(), 2);
        assert!(!dir.join("throughput.svg").exists());

        // No decodable histograms: no latency chart; one handshake row still draws.
        let mut one = sample();
        one.truncate(1);
        one[0].latency_hdr = "not base64!".to_owned();
        let dir2 = temp_dir("one");
        let written = write_charts(&RunResults::fixture(one), &dir2).unwrap();
        assert_eq!(written, vec![dir2.join("handshakes.svg")]);

        let dir3 = temp_dir("empty");
        assert!(
            write_charts(&RunResults::fixture(Vec::new()), &dir3)
                .unwrap()
                .is_empty()
        );
        for d in [dir, dir2, dir3] {
            let _ = std::fs::remove_dir_all(d);
        }
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
