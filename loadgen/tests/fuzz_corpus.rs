//! Replays the committed fuzz corpus of the client target (`fuzz/corpus/client/`) and every
//! crash turned regression (`fuzz/regressions/client/`) through the harness the cargo-fuzz
//! target runs (`loadgen::fuzzing::client`), so on stable Rust and without libFuzzer a bug
//! found once stays fixed.
//!
//! `cargo test -p loadgen --test fuzz_corpus -- --ignored write_seeds` (re)writes the seed
//! inputs into `fuzz/corpus/client/`.

#![allow(clippy::unwrap_used)]

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use loadgen::fuzzing::{self, CLIENT};

fn fuzz_dir() -> PathBuf {
    let loadgen = Path::new(env!("CARGO_MANIFEST_DIR"));
    loadgen.parent().unwrap_or(loadgen).join("fuzz")
}

/// The files of `fuzz/<kind>/client/`, sorted by name; none if the directory is missing.
fn inputs(kind: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = fuzz_dir().join(kind).join(CLIENT);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()));
    paths.retain(|p| {
        p.is_file()
            && !p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
    });
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let data = std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
            (p, data)
        })
        .collect()
}

#[test]
fn client_corpus_and_regressions_pass() {
    let corpus = inputs("corpus");
    assert!(
        corpus.len() >= 8,
        "fuzz/corpus/{CLIENT}/ holds {} inputs: the committed corpus is the point",
        corpus.len()
    );
    let regressions = inputs("regressions");
    let failed: Vec<String> = corpus
        .iter()
        .chain(&regressions)
        .filter(|(_, data)| {
            panic::catch_unwind(AssertUnwindSafe(|| fuzzing::client(data))).is_err()
        })
        .map(|(path, _)| path.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} inputs fail (messages above):\n{}",
        failed.len(),
        corpus.len() + regressions.len(),
        failed.join("\n")
    );
}

#[test]
fn seeds_pass() {
    for seed in fuzzing::seeds() {
        assert_eq!(seed.target, CLIENT, "seed {}", seed.name);
        fuzzing::client(&seed.data);
    }
}

/// Writes the seeds as `fuzz/corpus/client/seed-<name>` (run on purpose when they change).
#[test]
#[ignore = "writes into fuzz/corpus; run on purpose when the seeds change"]
fn write_seeds() {
    for seed in fuzzing::seeds() {
        let dir = fuzz_dir().join("corpus").join(seed.target);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let path = dir.join(format!("seed-{}", seed.name));
        std::fs::write(&path, &seed.data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}
