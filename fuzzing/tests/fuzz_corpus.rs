//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) and every crash turned
//! regression (`fuzz/regressions/<target>/`) through the harnesses the cargo-fuzz targets run
//! (the `fuzzing` crate), so on stable Rust and without libFuzzer a bug found once stays fixed.
//!
//! `cargo test -p fuzzing --test fuzz_corpus -- --ignored write_seeds` (re)writes the seed
//! inputs into the corpus directories; see `fuzz/README.md`.

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use fuzzing::{CLIENT, CONNECTION, HTTP_HEAD};

fn fuzz_dir() -> PathBuf {
    let fuzzing = Path::new(env!("CARGO_MANIFEST_DIR"));
    fuzzing.parent().unwrap_or(fuzzing).join("fuzz")
}

/// The files of `fuzz/<kind>/<target>/`, sorted by name; none if the directory is missing.
fn inputs(kind: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = fuzz_dir().join(kind).join(target);
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

/// Runs every input through `harness` and names all that fail, not just the first.
fn replay(target: &str, harness: fn(&[u8])) {
    let corpus = inputs("corpus", target);
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{target}/ is empty or missing: the committed corpus is the point"
    );
    let regressions = inputs("regressions", target);
    let failed: Vec<String> = corpus
        .iter()
        .chain(&regressions)
        .filter(|(_, data)| panic::catch_unwind(AssertUnwindSafe(|| harness(data))).is_err())
        .map(|(path, _)| path.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} inputs of {target} fail (messages above):\n{}",
        failed.len(),
        corpus.len() + regressions.len(),
        failed.join("\n")
    );
}

#[test]
fn http_head_corpus_and_regressions_pass() {
    replay(HTTP_HEAD, fuzzing::http_head);
}

#[test]
fn connection_corpus_and_regressions_pass() {
    replay(CONNECTION, fuzzing::connection);
}

#[test]
fn client_corpus_and_regressions_pass() {
    let seeds = inputs("corpus", CLIENT).len();
    assert!(
        seeds >= 8,
        "fuzz/corpus/{CLIENT}/ holds {seeds} inputs: the committed corpus is the point"
    );
    replay(CLIENT, fuzzing::client);
}

#[test]
fn seeds_pass() {
    for seed in fuzzing::seeds() {
        match seed.target {
            HTTP_HEAD => fuzzing::http_head(&seed.data),
            CONNECTION => fuzzing::connection(&seed.data),
            CLIENT => fuzzing::client(&seed.data),
            other => panic!("seed {} for unknown target {other}", seed.name),
        }
    }
}

/// Writes the seeds as `fuzz/corpus/<target>/seed-<name>` (run explicitly, see the README).
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
