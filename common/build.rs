//! Build-time facts for `common::env`: the compiler's version, the git revision of the
//! sources being compiled (see `src/provenance.rs`) and the versions of the crates whose code
//! is measured, passed to the crate as `TLSBENCH_RUSTC`, `TLSBENCH_GIT_REV` and
//! `TLSBENCH_CRATES` (`name=version,...`).
//!
//! Anything that cannot be found becomes "unknown" rather than failing the build: a tarball
//! without `.git` must still compile.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The crates whose versions a result records: the TLS stack, its crypto, the event loop, the
/// histograms and the socket options.
const CRATES: [&str; 6] = [
    "rustls",
    "aws-lc-rs",
    "aws-lc-sys",
    "mio",
    "hdrhistogram",
    "socket2",
];

#[path = "src/provenance.rs"]
mod provenance;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest_dir.join("..");

    // Without any rerun-if-changed line cargo would rerun on every change in the package;
    // naming this file switches that off, and the lines below add what the values depend on.
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/provenance.rs");
    println!("cargo:rerun-if-env-changed=RUSTC");
    let lock = root.join("Cargo.lock");
    rerun_if_exists(&lock);

    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let rustc_version = run(Command::new(rustc).arg("--version")).unwrap_or_default();
    println!(
        "cargo:rustc-env=TLSBENCH_RUSTC={}",
        or_unknown(rustc_version)
    );
    println!("cargo:rustc-env=TLSBENCH_GIT_REV={}", git_revision(&root));
    let crates = std::fs::read_to_string(&lock)
        .map(|text| crate_versions(&text))
        .unwrap_or_default();
    println!("cargo:rustc-env=TLSBENCH_CRATES={crates}");
}

fn rerun_if_exists(path: &Path) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// The revision of the sources this build compiles (see `provenance`), and the rerun lines
/// that keep it so: every source path (cargo scans a directory's files recursively), and the
/// git files a commit or checkout moves.
fn git_revision(root: &Path) -> String {
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap_or_default();
    let sources: Vec<String> = provenance::source_paths(&manifest)
        .into_iter()
        .filter(|path| root.join(path).exists())
        .collect();
    for path in &sources {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    // --no-optional-locks: a plain status refreshes and rewrites the index, which is watched
    // below, so every build would trigger the next one.
    let git = |args: &[&str]| {
        run(Command::new("git")
            .arg("-C")
            .arg(root)
            .arg("--no-optional-locks")
            .args(args))
    };
    // Only this workspace's own checkout counts: a source tarball unpacked inside another
    // repository must not record that repository's revision.
    let toplevel = git(&["rev-parse", "--show-toplevel"]).map(PathBuf::from);
    if sources.is_empty()
        || toplevel.and_then(|t| t.canonicalize().ok()) != root.canonicalize().ok()
    {
        return provenance::UNKNOWN.to_owned();
    }
    // --git-path: in a worktree `.git` is a file and HEAD, the index and the refs live in two
    // other directories. A commit moves the branch's ref (loose or packed), not HEAD.
    let mut git_files = vec![
        "HEAD".to_owned(),
        "index".to_owned(),
        "packed-refs".to_owned(),
    ];
    git_files.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for name in git_files {
        if let Some(path) = git(&["rev-parse", "--git-path", &name]) {
            rerun_if_exists(&root.join(path));
        }
    }
    let head = git(&["rev-parse", "HEAD"]);
    let mut status = vec!["status", "--porcelain", "--untracked-files=no", "--"];
    status.extend(sources.iter().map(String::as_str));
    provenance::revision(head.as_deref(), git(&status).as_deref())
}

/// The command's trimmed stdout when it ran and succeeded, with line breaks flattened so it
/// fits a `cargo:` line.
fn run(command: &mut Command) -> Option<String> {
    let output = command.output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    Some(text.trim().replace(['\r', '\n'], " "))
}

fn or_unknown(value: String) -> String {
    if value.is_empty() {
        "unknown".to_owned()
    } else {
        value
    }
}

/// `name=version,...` for the [`CRATES`] found in a Cargo.lock; a crate locked at several
/// versions gets them all, space-separated.
fn crate_versions(lock: &str) -> String {
    let mut found: Vec<(&str, String)> = Vec::new();
    let mut current: Option<&str> = None;
    for line in lock.lines() {
        let line = line.trim();
        if let Some(name) = quoted_value(line, "name") {
            current = CRATES.iter().copied().find(|&wanted| wanted == name);
        } else if let (Some(name), Some(version)) = (current, quoted_value(line, "version")) {
            current = None;
            match found.iter_mut().find(|(n, _)| *n == name) {
                Some((_, versions)) => {
                    versions.push(' ');
                    versions.push_str(version);
                }
                None => found.push((name, version.to_owned())),
            }
        }
    }
    let pairs: Vec<String> = found
        .into_iter()
        .map(|(name, version)| format!("{name}={version}"))
        .collect();
    pairs.join(",")
}

/// The value of a `key = "value"` line.
fn quoted_value<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.strip_prefix(key)?
        .trim_start()
        .strip_prefix('=')?
        .trim()
        .strip_prefix('"')?
        .strip_suffix('"')
}
