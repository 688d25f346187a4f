//! `tlsbench run --profile`: samples the server child and/or the load generator with Linux
//! perf during each repeat's measured window, and per row writes folded stacks, a flame
//! graph and a component breakdown (each component's share of the side's samples and its
//! µs per operation).
//!
//! # Layout
//! - [`perf`]: perf as a child process (the preflight check, a recording, folding).
//! - [`components`]: the documented symbol-to-component table.
//! - [`breakdown`]: shares and µs per operation of one side, and the summary table.
//! - [`chart`]: the stacked-bar chart of the server's CPU per operation by component.

pub mod breakdown;
pub mod chart;
pub mod components;
pub mod perf;

use std::path::{Path, PathBuf};

use breakdown::{Folded, RowProfile};
use perf::{CallGraph, PerfError, Recording};

use crate::results::Row;

/// Which side `--profile` samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Side {
    /// The server child (all its threads).
    Server,
    /// The load generator's threads in this process.
    Client,
    /// Both.
    Both,
}

impl Side {
    fn server(self) -> bool {
        matches!(self, Side::Server | Side::Both)
    }

    fn client(self) -> bool {
        matches!(self, Side::Client | Side::Both)
    }
}

/// The generator's worker threads' names start with this (loadgen names them).
const GENERATOR_THREADS: &str = "tlsbench-load-";

/// Why a row's profile could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// perf could not run or failed.
    #[error(transparent)]
    Perf(#[from] PerfError),
    /// `--profile server` with no server of ours.
    #[error("--profile {0}: the server is not ours (--target or --peer); profile the client only")]
    NotOurs(&'static str),
    /// A side had no samples.
    #[error("scenario '{row}', {side}: {source}")]
    Empty {
        /// The row.
        row: String,
        /// "server" or "client".
        side: &'static str,
        /// Why.
        source: breakdown::NoSamples,
    },
    /// Writing the files failed.
    #[error("{what}: {source}")]
    Io {
        /// What we were writing.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

/// The profiling of a run: what to sample, with which perf, and where the files go.
pub struct Profiler {
    perf: PathBuf,
    side: Side,
    call_graph: CallGraph,
    dir: PathBuf,
}

/// The recordings of one measured window, started when warm-up ends.
#[derive(Default)]
pub struct Window {
    server: Option<Recording>,
    client: Option<Recording>,
    /// A recording that failed to start, reported when the window ends.
    error: Option<PerfError>,
}

/// Folded stacks of a row's repeats so far, per side.
#[derive(Default)]
pub struct RowStacks {
    server: Folded,
    client: Folded,
}

impl Profiler {
    /// Checks perf can run and sample here (before any row runs, so a run that cannot be
    /// profiled does nothing) and that `side` can be sampled.
    pub fn new(
        perf: PathBuf,
        side: Side,
        call_graph: CallGraph,
        external_server: bool,
        results_dir: &Path,
    ) -> Result<Profiler, ProfileError> {
        if external_server && side.server() {
            return Err(ProfileError::NotOurs(match side {
                Side::Both => "both",
                _ => "server",
            }));
        }
        perf::preflight(&perf)?;
        Ok(Profiler {
            perf,
            side,
            call_graph,
            dir: results_dir.join("profile"),
        })
    }

    /// Starts the window's recordings: the server child `server_pid`, this process (the
    /// generator's threads are picked out when folding).
    pub fn start(&self, server_pid: Option<u32>) -> Window {
        let mut w = Window::default();
        if let Err(e) = std::fs::create_dir_all(&self.dir) {
            w.error = Some(PerfError::Failed {
                what: "record",
                why: format!("creating {}: {e}", self.dir.display()),
            });
            return w;
        }
        let mut start = |pid: u32, name: &str| {
            let data = self.dir.join(format!(".{name}.perf.data"));
            Recording::start(&self.perf, pid, self.call_graph, data)
                .map_err(|e| w.error.get_or_insert(e))
                .ok()
        };
        let server = match server_pid {
            Some(pid) if self.side.server() => start(pid, "server"),
            _ => None,
        };
        let client = if self.side.client() {
            start(std::process::id(), "client")
        } else {
            None
        };
        w.server = server;
        w.client = client;
        w
    }

    /// Stops the window's recordings and adds their stacks to the row's.
    pub fn stop(&self, w: Window, into: &mut RowStacks) -> Result<(), ProfileError> {
        let Window {
            server,
            client,
            error,
        } = w;
        let server = server.map(Recording::stop);
        let client = client.map(Recording::stop);
        if let Some(e) = error {
            return Err(e.into());
        }
        if self.side.server() && server.is_none() {
            return Err(ProfileError::Perf(PerfError::Failed {
                what: "record",
                why: "the measured window never started, so the server was not sampled".into(),
            }));
        }
        if let Some(data) = server {
            perf::fold(&self.perf, &data?, "", &mut into.server)?;
        }
        if let Some(data) = client {
            perf::fold(&self.perf, &data?, GENERATOR_THREADS, &mut into.client)?;
        }
        Ok(())
    }

    /// Writes the row's folded stacks and flame graphs and returns its breakdowns.
    pub fn finish_row(&self, row: &Row, stacks: &RowStacks) -> Result<RowProfile, ProfileError> {
        let server_cpu = row.server_cpu_us.as_ref().map(|s| s.median);
        let client_cpu = Some(row.client_cpu_us.median);
        let mut p = RowProfile {
            call_graph: self.call_graph.name().to_owned(),
            ..RowProfile::default()
        };
        if self.side.server() {
            p.server = Some(self.side_files(row, "server", &stacks.server, server_cpu)?);
        }
        if self.side.client() {
            p.client = Some(self.side_files(row, "client", &stacks.client, client_cpu)?);
        }
        Ok(p)
    }

    fn side_files(
        &self,
        row: &Row,
        side: &'static str,
        folded: &Folded,
        cpu: Option<f64>,
    ) -> Result<breakdown::Breakdown, ProfileError> {
        let stem = format!("{}.{side}", slug(&row.name));
        let (folded_name, svg_name) = (format!("{stem}.folded"), format!("{stem}.svg"));
        // Classified first, so an empty side writes no files.
        let b = breakdown::breakdown(
            folded,
            cpu,
            (
                format!("profile/{folded_name}"),
                format!("profile/{svg_name}"),
            ),
        )
        .map_err(|source| ProfileError::Empty {
            row: row.name.clone(),
            side,
            source,
        })?;
        let lines: Vec<String> = folded
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        let io = |what: String| move |source| ProfileError::Io { what, source };
        let path = self.dir.join(&folded_name);
        std::fs::write(&path, lines.join("\n") + "\n")
            .map_err(io(format!("writing {}", path.display())))?;
        let svg = self.dir.join(&svg_name);
        let file =
            std::fs::File::create(&svg).map_err(io(format!("creating {}", svg.display())))?;
        let mut opts = inferno::flamegraph::Options::default();
        opts.title = format!(
            "{} — {side} ({:.0} ms sampled)",
            row.name,
            b.sampled_ns as f64 / 1e6
        );
        opts.count_name = "ns".into();
        inferno::flamegraph::from_lines(
            &mut opts,
            lines.iter().map(String::as_str),
            std::io::BufWriter::new(file),
        )
        .map_err(io(format!("writing {}", svg.display())))?;
        Ok(b)
    }
}

/// A row name as a file name.
fn slug(name: &str) -> String {
    crate::harness::file_name(name, '.', '-')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_server_side_of_a_server_that_is_not_ours_is_refused() {
        for side in [Side::Server, Side::Both] {
            let e = Profiler::new("perf".into(), side, CallGraph::Dwarf, true, Path::new("x"))
                .err()
                .unwrap()
                .to_string();
            assert!(e.contains("--target"), "{e}");
        }
    }

    #[test]
    fn row_names_become_plain_file_names() {
        assert_eq!(
            slug("full tls1.3 x25519 ecdsa-p256"),
            "full-tls1.3-x25519-ecdsa-p256"
        );
        assert_eq!(slug("a/b c"), "a-b-c");
    }
}
