//! The git revision a build records, decided from what git answered. `build.rs` includes this
//! file to run git over the paths named here; the unit tests feed it fixed answers, since a
//! build script has no tests of its own.
//!
//! Only the files that go into the binaries count: a build is "-dirty" when one of them differs
//! from the commit, and the build script reruns whenever one of them changes, so the value is
//! that of the build that ran, not of the last time the index moved.

/// Written when the revision cannot be known.
pub const UNKNOWN: &str = "unknown";

/// The directory of the runner's built-in scenario matrix, compiled in with `include_str!`
/// from outside any `src/`.
const EMBEDDED: &str = "scenarios";

/// The workspace members named in a root `Cargo.toml`'s `members = [...]` (comments skipped).
pub fn members(manifest: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in manifest.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if !inside {
            match line.strip_prefix("members") {
                Some(rest) if rest.trim_start().starts_with('=') => inside = true,
                _ => continue,
            }
        }
        let body = line.split_once('[').map_or(line, |(_, b)| b);
        let (body, closed) = match body.split_once(']') {
            Some((b, _)) => (b, true),
            None => (body, false),
        };
        out.extend(
            body.split(',')
                .filter_map(|item| item.trim().strip_prefix('"')?.strip_suffix('"'))
                .map(str::to_owned),
        );
        if closed {
            break;
        }
    }
    out
}

/// The paths, relative to the workspace root, whose contents make the binaries: each member's
/// `src/`, `Cargo.toml` and `build.rs`, the lockfile and the embedded scenarios. Empty when
/// the manifest names no member (then nothing ties a revision to the sources).
pub fn source_paths(manifest: &str) -> Vec<String> {
    let members = members(manifest);
    if members.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<String> = members
        .iter()
        .flat_map(|m| {
            let prefix = if m == "." {
                String::new()
            } else {
                format!("{}/", m.trim_end_matches('/'))
            };
            ["src", "Cargo.toml", "build.rs"].map(|f| format!("{prefix}{f}"))
        })
        .collect();
    out.push("Cargo.lock".to_owned());
    out.push(EMBEDDED.to_owned());
    out
}

/// The revision to record from `git rev-parse HEAD` and `git status --porcelain` over the
/// source paths (`None`: the command failed): the commit, "-dirty" when any source differs
/// from it, "unknown" when either answer is missing or the commit is not a hash.
pub fn revision(head: Option<&str>, status: Option<&str>) -> String {
    let (Some(head), Some(status)) = (head.map(str::trim), status) else {
        return UNKNOWN.to_owned();
    };
    let is_hash = matches!(head.len(), 40 | 64) && head.bytes().all(|b| b.is_ascii_hexdigit());
    if !is_hash {
        return UNKNOWN.to_owned();
    }
    if status.trim().is_empty() {
        head.to_owned()
    } else {
        format!("{head}-dirty")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "6f40ec7a2b5d4c3e1f0a9b8c7d6e5f4a3b2c1d0e";

    #[test]
    fn members_of_a_commented_manifest() {
        let manifest = "[workspace]\nmembers = [\n    \".\",\n    # the shared code\n    \"common\",\n    \"server\", \"loadgen\"\n]\nexclude = [\"fuzz\"]\n";
        assert_eq!(members(manifest), [".", "common", "server", "loadgen"]);
        assert_eq!(members("members = [\"a\", \"b/\"]\n"), ["a", "b/"]);
        assert!(members("[package]\nname = \"x\"\n").is_empty());
    }

    #[test]
    fn sources_are_every_members_code_and_the_lockfile() {
        let paths = source_paths("members = [\".\", \"common\"]\n");
        assert_eq!(
            paths,
            [
                "src",
                "Cargo.toml",
                "build.rs",
                "common/src",
                "common/Cargo.toml",
                "common/build.rs",
                "Cargo.lock",
                "scenarios"
            ]
        );
        assert!(source_paths("").is_empty());
    }

    #[test]
    fn revision_is_clean_dirty_or_unknown() {
        assert_eq!(revision(Some(HEAD), Some("")), HEAD);
        assert_eq!(revision(Some(&format!("{HEAD}\n")), Some(" ")), HEAD);
        assert_eq!(
            revision(Some(HEAD), Some(" M server/src/lib.rs")),
            format!("{HEAD}-dirty")
        );
        assert_eq!(revision(None, Some("")), UNKNOWN);
        assert_eq!(revision(Some(HEAD), None), UNKNOWN);
        assert_eq!(revision(Some("HEAD"), Some("")), UNKNOWN);
        assert_eq!(revision(Some(""), Some("")), UNKNOWN);
    }
}
