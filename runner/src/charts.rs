//! SVG charts of a run's results (plotters, SVG backend only): handshake rates, request-latency
//! percentile curves, and record throughput. Text is left to the SVG viewer's fonts, so nothing
//! here needs font files.

use std::path::{Path, PathBuf};

use std::ops::Range;

use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::results::{Kind, Row, RunResults};

/// Width of every chart, px.
const WIDTH: u32 = 960;
/// Height per bar in the bar charts, px, plus room for title and axes.
const BAR_HEIGHT: u32 = 34;
const BAR_CHART_CHROME: u32 = 150;
/// Height of the latency chart, px.
const LATENCY_HEIGHT: u32 = 560;
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

/// Colors of the latency curves (matplotlib's "tab10"): distinct and readable on white, which
/// the light yellows of plotters' palettes are not.
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
        bar_chart(
            &path,
            &handshakes,
            "Handshake rate (handshakes/s, median; whiskers: min–max over repeats)",
            "handshakes/s",
            true,
        )?;
        written.push(path);
    }

    let curves: Vec<(&str, Vec<(f64, f64)>)> = results
        .rows
        .iter()
        .filter_map(|r| latency_curve(&r.latency_hdr).map(|c| (r.name.as_str(), c)))
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
        bar_chart(
            &path,
            &throughput,
            "Throughput (MB/s = 10^6 bytes/s, median; whiskers: min–max over repeats)",
            "MB/s",
            false,
        )?;
        written.push(path);
    }
    Ok(written)
}

/// Whether a row's handshakes were mostly resumptions.
fn is_resumed(r: &Row) -> bool {
    r.resumed_share.is_some_and(|s| s >= RESUMED_SHARE)
}

/// Horizontal bars of `rate` per row, first row on top, with min–max whiskers. Horizontal so
/// that long scenario names fit as axis labels without overlapping.
fn bar_chart(
    path: &Path,
    rows: &[&Row],
    title: &str,
    unit: &str,
    split_resumed: bool,
) -> Result<(), ChartError> {
    let err = draw_err(path);
    let n = rows.len();
    let height =
        BAR_CHART_CHROME + BAR_HEIGHT * u32::try_from(n).unwrap_or(u32::MAX / 2 / BAR_HEIGHT);
    let x_max = rows
        .iter()
        .map(|r| r.rate.max.max(r.rate.median))
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    // Room past the longest whisker (and, with a legend, for the legend in the upper right,
    // beyond the longest bar); a run of all-zero rates still gets a usable axis.
    let headroom = if split_resumed { 1.45 } else { 1.08 };
    let x_max = if x_max > 0.0 { x_max * headroom } else { 1.0 };
    // Label area sized to the longest name (the SVG viewer's font, ~7 px per character).
    let longest = rows
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(0);
    let label_area = u32::try_from(longest * 8 + 20)
        .unwrap_or(400)
        .min(WIDTH / 2);

    let axis = RowAxis::new(rows.iter().map(|r| r.name.clone()).collect());
    let band = |i: usize, edge: f64| axis.center(i) - 0.5 + edge;

    let root = SVGBackend::new(path, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(label_area)
        .build_cartesian_2d(0.0..x_max, axis.clone())
        .map_err(&err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_label_formatter(&|x: &f64| axis_number(*x, x_max))
        .x_desc(unit)
        .y_desc("scenario")
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(&err)?;

    let groups: Vec<(&str, RGBColor, Vec<usize>)> = if split_resumed {
        let (resumed, full): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| is_resumed(rows[i]));
        vec![
            ("full handshakes", FULL_COLOR, full),
            ("resumed (≥ 50% of handshakes)", RESUMED_COLOR, resumed),
        ]
    } else {
        vec![("median", FULL_COLOR, (0..n).collect())]
    };
    for (label, color, members) in &groups {
        if members.is_empty() {
            continue;
        }
        let color = *color;
        chart
            .draw_series(members.iter().map(|&i| {
                Rectangle::new(
                    [
                        (0.0, band(i, 0.15)),
                        (finite(rows[i].rate.median), band(i, 0.85)),
                    ],
                    color.mix(0.8).filled(),
                )
            }))
            .map_err(&err)?
            .label(*label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        chart
            .draw_series(members.iter().map(|&i| {
                let r = rows[i].rate;
                let (min, med, max) = (finite(r.min), finite(r.median), finite(r.max));
                ErrorBar::new_horizontal(
                    axis.center(i),
                    min.min(med),
                    med,
                    max.max(med),
                    BLACK.stroke_width(1),
                    10,
                )
            }))
            .map_err(&err)?;
    }
    if split_resumed {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(&err)?;
    }
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

/// One latency-percentile line per row on a nines × log(µs) plane.
fn latency_chart(path: &Path, curves: &[(&str, Vec<(f64, f64)>)]) -> Result<(), ChartError> {
    let err = draw_err(path);
    let ys = curves.iter().flat_map(|(_, c)| c.iter().map(|p| p.1));
    let (y_min, y_max) = ys.fold((f64::MAX, 1.0_f64), |(lo, hi), y| (lo.min(y), hi.max(y)));
    // Whole decades around the data, so the log axis gets readable ticks.
    let y_lo = 10f64.powf(y_min.max(1.0).log10().floor());
    let y_hi = 10f64.powf((y_max * 1.01).log10().ceil()).max(y_lo * 10.0);
    let root = SVGBackend::new(path, (WIDTH, LATENCY_HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Request latency by percentile (µs, log scale; all repeats merged)",
            ("sans-serif", 18),
        )
        .margin(12)
        // Room for the last percentile label, which is centered on the right edge.
        .margin_right(36)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(NinesAxis::new(), (y_lo..y_hi).log_scale())
        .map_err(&err)?;
    chart
        .configure_mesh()
        .y_label_formatter(&|y: &f64| format!("{y:.0}"))
        .x_desc("percentile")
        .y_desc("latency (µs)")
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(&err)?;

    for (i, (name, points)) in curves.iter().enumerate() {
        let color = LINE_COLORS[i % LINE_COLORS.len()];
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(&err)?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(&err)?;
    root.present().map_err(&err)?;
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
