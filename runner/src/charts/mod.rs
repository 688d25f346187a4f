//! SVG charts of a run's results (plotters, SVG backend only): handshake rates beside server
//! and client CPU per handshake, request-latency percentile curves in one panel per kind of row
//! (handshakes, requests, throughput) with the legend beside the plot, never over it, and
//! record throughput. Every series of a chart has its own colour. Text is left to the SVG
//! viewer's fonts, so nothing here needs font files.
//!
//! # Layout
//! - `bars`: the handshake chart (rate beside CPU per handshake) and the throughput chart;
//!   their scenario axis, which the side-by-side chart of `compare` shares.
//! - `latency`: the latency percentile curves, one panel per kind of row.
//! - `palette`: the colours, shared with the profile chart.
//! - `scale`: the core-scaling chart of `tlsbench run --scale`.
//! - `fixtures` (tests only): rows with latency histograms, and an SVG's texts.

mod bars;
#[cfg(test)]
mod fixtures;
mod latency;
pub(crate) mod palette;
mod scale;

pub(crate) use bars::RowAxis;
pub(crate) use scale::scale_chart;

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::results::{Row, RowKind, RunResults};

/// Width of every chart, px.
const WIDTH: u32 = 960;
/// Height of one legend entry, px.
const LEGEND_ENTRY: u32 = 18;

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
    let of_kind =
        |kind: RowKind| -> Vec<&Row> { results.rows.iter().filter(|r| r.kind == kind).collect() };
    let handshakes = of_kind(RowKind::Handshake);
    let curves = latency::curves(&results.rows);
    let throughput = of_kind(RowKind::Throughput);
    type Draw<'a> = &'a dyn Fn(&Path) -> Result<(), ChartError>;
    let charts: [(&str, bool, Draw<'_>); 3] = [
        ("handshakes.svg", !handshakes.is_empty(), &|p| {
            bars::handshake_chart(p, &handshakes)
        }),
        ("latency.svg", !curves.is_empty(), &|p| {
            latency::latency_chart(p, &curves)
        }),
        ("throughput.svg", !throughput.is_empty(), &|p| {
            bars::throughput_chart(p, &throughput)
        }),
    ];
    let mut written = Vec::new();
    for (name, has_rows, draw) in charts {
        if has_rows {
            let path = dir.join(name);
            draw(&path)?;
            written.push(path);
        }
    }
    Ok(written)
}

/// plotters' drawing error on an SVG area, as text.
type DrawResult = Result<(), String>;

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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::fixtures::{sample, temp_dir};
    use super::*;

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
        rows.retain(|r| r.kind != RowKind::Throughput);
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
}
