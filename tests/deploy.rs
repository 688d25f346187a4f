//! The orchestrator recipes of README "More load than one machine": the Kubernetes Indexed
//! Job and its merge Job (deploy/k8s/), the Dockerfile, and deploy/ssh/run-segments.sh; and
//! the benchmark script of "Generator efficiency against h2load" (scripts/vs-h2load.sh). Each
//! check is a function returning the problems it found, run on the shipped file and on a
//! broken copy, so a check that cannot fail is caught here too.
//!
//! No YAML crate is in the tree, and a manifest needs none to be checked: the manifests are
//! written in the block subset of YAML that [`yaml`] reads (maps, lists, plain and quoted
//! scalars, comments, `---`), and anything outside it (flow collections, anchors, block
//! scalars, tags, tabs) fails the test instead of being read wrongly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Map, Value};
use support::TempDir;
use test_support::binary as support;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap()
}

/// The block subset of YAML the manifests use, read into JSON values (every scalar a string).
mod yaml {
    use super::{Map, Value};

    /// One meaningful line: its indentation and its text.
    struct Line {
        indent: usize,
        text: String,
    }

    /// Every document of `text`, or why it is outside the subset.
    pub fn documents(text: &str) -> Result<Vec<Value>, String> {
        let mut docs = Vec::new();
        for doc in text.split("\n---\n") {
            let mut lines = Vec::new();
            for (n, raw) in doc.lines().enumerate() {
                if raw.contains('\t') {
                    return Err(format!("line {}: a tab", n + 1));
                }
                let text = raw.trim_start();
                if text.is_empty() || text.starts_with('#') || text == "---" {
                    continue;
                }
                lines.push(Line {
                    indent: raw.len() - text.len(),
                    text: text.trim_end().to_owned(),
                });
            }
            if lines.is_empty() {
                continue;
            }
            let mut i = 0;
            let value = block(&mut lines, &mut i, 0)?;
            if i != lines.len() {
                return Err(format!("unexpected indentation at '{}'", lines[i].text));
            }
            docs.push(value);
        }
        Ok(docs)
    }

    fn block(lines: &mut [Line], i: &mut usize, indent: usize) -> Result<Value, String> {
        if lines[*i].indent != indent {
            return Err(format!("'{}' is not at indent {indent}", lines[*i].text));
        }
        if lines[*i].text == "-" || lines[*i].text.starts_with("- ") {
            list(lines, i, indent)
        } else {
            map(lines, i, indent)
        }
    }

    /// Where a `key: value` or `key:` line splits, if it is one (a quoted scalar is not).
    fn split_key(text: &str) -> Option<(&str, &str)> {
        if text.starts_with(['"', '\'']) {
            return None;
        }
        if let Some(key) = text.strip_suffix(':') {
            return Some((key, ""));
        }
        text.split_once(": ").map(|(k, v)| (k, v.trim_start()))
    }

    fn map(lines: &mut [Line], i: &mut usize, indent: usize) -> Result<Value, String> {
        let mut out = Map::new();
        while *i < lines.len() && lines[*i].indent == indent {
            let text = lines[*i].text.clone();
            let (key, value) =
                split_key(&text).ok_or_else(|| format!("'{text}' is not `key: value`"))?;
            let key = scalar(key)?;
            *i += 1;
            let value = if value.is_empty() {
                match lines.get(*i) {
                    Some(next) if next.indent > indent => {
                        let at = next.indent;
                        block(lines, i, at)?
                    }
                    _ => return Err(format!("'{key}' has no value")),
                }
            } else {
                Value::String(scalar(value)?)
            };
            if out.insert(key.clone(), value).is_some() {
                return Err(format!("'{key}' twice"));
            }
        }
        Ok(Value::Object(out))
    }

    fn list(lines: &mut [Line], i: &mut usize, indent: usize) -> Result<Value, String> {
        let mut out = Vec::new();
        while *i < lines.len() && lines[*i].indent == indent && lines[*i].text.starts_with("- ") {
            let item = lines[*i].text[2..].trim_start().to_owned();
            if split_key(&item).is_some() {
                // A map whose first key shares the dash's line: read it as if it began on
                // its own line, where its other keys are.
                lines[*i] = Line {
                    indent: indent + 2,
                    text: item,
                };
                out.push(map(lines, i, indent + 2)?);
            } else {
                out.push(Value::String(scalar(&item)?));
                *i += 1;
            }
        }
        Ok(Value::Array(out))
    }

    fn scalar(s: &str) -> Result<String, String> {
        for q in ['"', '\''] {
            if let Some(rest) = s.strip_prefix(q) {
                let inner = rest
                    .strip_suffix(q)
                    .ok_or_else(|| format!("{s}: unterminated quote"))?;
                if inner.contains(q) || inner.contains('\\') {
                    return Err(format!("{s}: escapes are outside the subset"));
                }
                return Ok(inner.to_owned());
            }
        }
        if s.starts_with(['[', '{', '&', '*', '!', '|', '>', '%', '@', '`']) || s.contains(" #") {
            return Err(format!("{s}: outside the block subset"));
        }
        Ok(s.to_owned())
    }
}

fn manifest(text: &str) -> Value {
    let mut docs = yaml::documents(text).unwrap();
    assert_eq!(docs.len(), 1, "one object per file");
    docs.remove(0)
}

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| match k.parse::<usize>() {
        Ok(n) => v.get(n),
        Err(_) => v.get(*k),
    })
}

fn text_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(v, path).and_then(Value::as_str)
}

/// The segments Job: an Indexed Job of N pods, each running `tlsbench load` on segment
/// `$(JOB_COMPLETION_INDEX)/N` with its JSON on a mounted volume.
fn load_job_problems(job: &Value) -> Vec<String> {
    let mut p = Vec::new();
    if text_at(job, &["kind"]) != Some("Job") {
        p.push("kind is not Job".to_owned());
    }
    let spec = |k: &str| text_at(job, &["spec", k]);
    if spec("completionMode") != Some("Indexed") {
        p.push("completionMode is not Indexed".to_owned());
    }
    let n = spec("parallelism");
    if n.is_none() || n != spec("completions") {
        p.push(format!(
            "parallelism {n:?} is not completions {:?}",
            spec("completions")
        ));
    }
    let Some(c) = at(job, &["spec", "template", "spec", "containers", "0"]) else {
        p.push("no container".to_owned());
        return p;
    };
    let env = |name: &str| {
        at(c, &["env"])
            .and_then(Value::as_array)
            .and_then(|e| e.iter().find(|v| text_at(v, &["name"]) == Some(name)))
            .and_then(|v| text_at(v, &["value"]))
    };
    if env("TLSBENCH_SEGMENTS") != n {
        p.push(format!(
            "TLSBENCH_SEGMENTS {:?} is not parallelism {n:?}",
            env("TLSBENCH_SEGMENTS")
        ));
    }
    let args: Vec<&str> = at(c, &["args"])
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let after = |flag: &str| {
        args.iter()
            .position(|a| *a == flag)
            .and_then(|i| args.get(i + 1))
    };
    if args.first() != Some(&"load") {
        p.push(format!(
            "the container does not run `tlsbench load`: {args:?}"
        ));
    }
    if after("--segment") != Some(&"$(JOB_COMPLETION_INDEX)/$(TLSBENCH_SEGMENTS)") {
        p.push(format!("no --segment of the completion index: {args:?}"));
    }
    if after("--start-at").is_none() {
        p.push("no shared --start-at".to_owned());
    }
    let mounts: Vec<&str> = at(c, &["volumeMounts"])
        .and_then(Value::as_array)
        .map(|m| {
            m.iter()
                .filter_map(|v| text_at(v, &["mountPath"]))
                .collect()
        })
        .unwrap_or_default();
    match after("--json") {
        Some(json) if json.contains("$(JOB_COMPLETION_INDEX)") => {
            if !mounts.iter().any(|m| json.starts_with(&format!("{m}/"))) {
                p.push(format!("--json {json} is on no mounted volume {mounts:?}"));
            }
        }
        other => p.push(format!("no --json per index: {other:?}")),
    }
    p.extend(volume_problems(job));
    p
}

/// Every volume mount of the first container names a volume of the pod.
fn volume_problems(job: &Value) -> Vec<String> {
    let pod = at(job, &["spec", "template", "spec"]);
    let volumes: Vec<&str> = pod
        .and_then(|s| at(s, &["volumes"]))
        .and_then(Value::as_array)
        .map(|v| v.iter().filter_map(|v| text_at(v, &["name"])).collect())
        .unwrap_or_default();
    let mounts = pod
        .and_then(|s| at(s, &["containers", "0", "volumeMounts"]))
        .and_then(Value::as_array);
    let Some(mounts) = mounts.filter(|m| !m.is_empty()) else {
        return vec!["no volume mount".to_owned()];
    };
    mounts
        .iter()
        .filter_map(|m| text_at(m, &["name"]))
        .filter(|name| !volumes.contains(name))
        .map(|name| format!("mount {name} has no volume"))
        .collect()
}

/// The merge Job reads one file per index 0..N-1 of the load Job and writes one result.
fn merge_job_problems(merge: &Value, n: usize) -> Vec<String> {
    let mut p = volume_problems(merge);
    let args: Vec<&str> = at(
        merge,
        &["spec", "template", "spec", "containers", "0", "args"],
    )
    .and_then(Value::as_array)
    .map(|a| a.iter().filter_map(Value::as_str).collect())
    .unwrap_or_default();
    let want: Vec<String> = (0..n)
        .map(|i| format!("/results/segment-{i}.json"))
        .collect();
    let inputs: Vec<&str> = args
        .iter()
        .skip(1)
        .take_while(|a| !a.starts_with('-'))
        .copied()
        .collect();
    if args.first() != Some(&"merge") || inputs != want {
        p.push(format!("merge of {args:?} is not of {want:?}"));
    }
    if !args.windows(2).any(|w| w[0] == "-o") {
        p.push("the merge writes no -o file".to_owned());
    }
    p
}

/// A multi-stage build whose last stage is slim, runs as a non-root user and has tlsbench as
/// its entry point.
fn dockerfile_problems(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let froms: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with("FROM "))
        .collect();
    let mut p = Vec::new();
    let Some(&last) = froms.last() else {
        return vec!["no FROM".to_owned()];
    };
    if froms.len() < 2 {
        p.push("not multi-stage".to_owned());
    }
    let builder = lines[froms[0]]
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .find(|w| w[0].eq_ignore_ascii_case("AS"))
        .map(|w| w[1].to_owned());
    if !lines[froms[0]].starts_with("FROM rust:") || builder.is_none() {
        p.push(format!(
            "the first stage is no named rust builder: {}",
            lines[froms[0]]
        ));
    }
    if !lines[last].contains("slim") {
        p.push(format!("the runtime stage is not slim: {}", lines[last]));
    }
    let runtime = &lines[last..];
    if let Some(b) = builder
        && !runtime
            .iter()
            .any(|l| l.starts_with(&format!("COPY --from={b} ")) && l.contains("tlsbench"))
    {
        p.push("the runtime stage does not copy tlsbench from the builder".to_owned());
    }
    match runtime.iter().rev().find_map(|l| l.strip_prefix("USER ")) {
        Some(user) => {
            let name = user.split(':').next().unwrap_or_default();
            if name == "root" || name == "0" {
                p.push(format!("USER {user} is root"));
            }
        }
        None => p.push("the runtime stage has no USER".to_owned()),
    }
    if !runtime.contains(&r#"ENTRYPOINT ["tlsbench"]"#) {
        p.push("the entry point is not [\"tlsbench\"]".to_owned());
    }
    p
}

#[test]
fn the_yaml_subset_reads_blocks_and_refuses_the_rest() {
    let v = manifest("a: 1\nb:\n  - x\n  - c: \"2\"\n    d: '3'\n# note\ne:\n  f: g\n");
    assert_eq!(
        v,
        serde_json::json!({"a": "1", "b": ["x", {"c": "2", "d": "3"}], "e": {"f": "g"}})
    );
    for bad in [
        "a: [1, 2]\n",
        "a: {b: c}\n",
        "a: &x 1\n",
        "a: |\n  text\n",
        "a: 1\na: 2\n",
        "a:\n\tb: 1\n",
        "a: 1 # why\n",
        "a:\n",
        "a: 1\n  b: 2\n",
    ] {
        assert!(yaml::documents(bad).is_err(), "{bad:?} was read");
    }
}

#[test]
fn the_load_job_is_an_indexed_job_of_segments_on_a_volume() {
    let job = manifest(&read("deploy/k8s/load-job.yaml"));
    assert_eq!(load_job_problems(&job), Vec::<String>::new());
    let pvc = manifest(&read("deploy/k8s/results-pvc.yaml"));
    assert_eq!(text_at(&pvc, &["kind"]), Some("PersistentVolumeClaim"));
    let claim = job["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|v| text_at(v, &["persistentVolumeClaim", "claimName"]));
    assert_eq!(claim, text_at(&pvc, &["metadata", "name"]));
}

#[test]
fn the_load_job_check_fails_on_each_broken_field() {
    let text = read("deploy/k8s/load-job.yaml");
    let broken = |from: &str, to: &str, why: &str| {
        assert!(text.contains(from), "{from}");
        let problems = load_job_problems(&manifest(&text.replacen(from, to, 1)));
        assert!(
            problems.iter().any(|p| p.contains(why)),
            "{from} → {to}: {problems:?}"
        );
    };
    broken("kind: Job", "kind: Deployment", "kind is not Job");
    broken(
        "completionMode: Indexed",
        "completionMode: NonIndexed",
        "Indexed",
    );
    broken("parallelism: 4", "parallelism: 2", "parallelism");
    broken("value: \"4\"", "value: \"3\"", "TLSBENCH_SEGMENTS");
    broken("\"--segment\"", "\"--segments\"", "--segment");
    broken("\"--start-at\"", "\"--start\"", "--start-at");
    broken(
        "mountPath: /results",
        "mountPath: /out",
        "on no mounted volume",
    );
    broken(
        "        - name: results\n          persistentVolumeClaim",
        "        - name: other\n          persistentVolumeClaim",
        "mount results has no volume",
    );
}

#[test]
fn the_merge_job_merges_every_segment_of_the_load_job() {
    let job = manifest(&read("deploy/k8s/load-job.yaml"));
    let n: usize = text_at(&job, &["spec", "parallelism"])
        .unwrap()
        .parse()
        .unwrap();
    let text = read("deploy/k8s/merge-job.yaml");
    let merge = manifest(&text);
    assert_eq!(text_at(&merge, &["kind"]), Some("Job"));
    assert_eq!(merge_job_problems(&merge, n), Vec::<String>::new());
    let short = text.replace("            - /results/segment-3.json\n", "");
    assert!(!merge_job_problems(&manifest(&short), n).is_empty());
    let nowhere = text.replace("\"-o\"", "\"--out\"");
    assert!(!merge_job_problems(&manifest(&nowhere), n).is_empty());
}

#[test]
fn the_dockerfile_is_multi_stage_non_root_with_tlsbench_as_entry_point() {
    let text = read("Dockerfile");
    assert_eq!(dockerfile_problems(&text), Vec::<String>::new());
    let broken = |from: &str, to: &str, why: &str| {
        assert!(text.contains(from), "{from}");
        let problems = dockerfile_problems(&text.replacen(from, to, 1));
        assert!(
            problems.iter().any(|p| p.contains(why)),
            "{from} → {to}: {problems:?}"
        );
    };
    broken("USER 10001:10001", "USER root", "is root");
    broken("USER 10001:10001", "USER 0:0", "is root");
    broken("USER 10001:10001", "", "no USER");
    broken(
        r#"ENTRYPOINT ["tlsbench"]"#,
        r#"ENTRYPOINT ["sh"]"#,
        "entry point",
    );
    broken(
        "FROM debian:bookworm-slim",
        "FROM debian:bookworm",
        "not slim",
    );
    broken("COPY --from=builder", "COPY --from=other", "does not copy");
    let single: String = text
        .lines()
        .filter(|l| !l.starts_with("FROM debian"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        dockerfile_problems(&single)
            .iter()
            .any(|p| p == "not multi-stage")
    );
    let ignore = read(".dockerignore");
    assert!(ignore.lines().any(|l| l == "target/"), "{ignore}");
}

/// A directory of stand-ins for ssh, scp and tlsbench that log their arguments, one call a
/// line, to `calls.log` beside them; ssh fails for the host named in `FAIL_HOST`.
fn fakes(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = dir.join("calls.log");
    let fake = |name: &str, body: &str| {
        let path = bin.join(name);
        let script = format!(
            "#!/usr/bin/env bash\nprintf '%s' {name} >>'{log}'\nprintf ' [%s]' \"$@\" >>'{log}'\necho >>'{log}'\n{body}\n",
            log = log.display()
        );
        std::fs::write(&path, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    fake("ssh", r#"[[ "$3" == "${FAIL_HOST:-}" ]] && exit 7; exit 0"#);
    fake("scp", r#"touch "${@: -1}""#);
    fake("tlsbench", "exit 0");
    bin
}

fn run_segments(dir: &Path, fail_host: &str) -> (std::process::Output, String) {
    let bin = fakes(dir);
    let out = dir.join("out");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let ran = Command::new("bash")
        .arg(repo("deploy/ssh/run-segments.sh"))
        .args(["-H", "gen-a,gen-b,gen-c", "-o"])
        .arg(&out)
        .args([
            "-l",
            "5",
            "--",
            "https://srv:4433/",
            "--cacert",
            "/etc/ca file.pem",
            "-c",
            "30",
        ])
        .env("PATH", path)
        .env("FAIL_HOST", fail_host)
        .env_remove("TLSBENCH")
        .output()
        .unwrap();
    let log = std::fs::read_to_string(dir.join("calls.log")).unwrap_or_default();
    (ran, log)
}

/// `script` parses (`bash -n`) and passes shellcheck, where shellcheck is installed.
fn parses_and_passes_shellcheck(script: &Path) {
    let syntax = Command::new("bash").arg("-n").arg(script).output().unwrap();
    assert!(syntax.status.success(), "{syntax:?}");
    match Command::new("shellcheck").arg(script).output() {
        Ok(out) => assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        ),
        Err(e) => eprintln!("shellcheck not run: {e}"),
    }
}

#[test]
fn the_ssh_script_parses_and_passes_shellcheck_when_installed() {
    parses_and_passes_shellcheck(&repo("deploy/ssh/run-segments.sh"));
}

#[test]
fn the_h2load_comparison_parses_and_names_the_package_of_a_missing_h2load() {
    let script = repo("scripts/vs-h2load.sh");
    parses_and_passes_shellcheck(&script);
    // No h2load on this PATH: refused before anything starts, naming the Debian package.
    let empty = TempDir::new("no-h2load");
    // bash itself is found on this PATH, not the child's.
    let bash = std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join("bash"))
        .find(|p| p.is_file())
        .unwrap();
    let ran = Command::new(bash)
        .arg(&script)
        .arg("1")
        .env("PATH", empty.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert_eq!(ran.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("h2load not found") && stderr.contains("nghttp2-client"),
        "{stderr}"
    );
}

#[test]
fn the_ssh_script_runs_one_segment_per_host_at_one_start_and_merges_them_in_order() {
    let dir = TempDir::new("ssh-segments");
    let (ran, log) = run_segments(dir.path(), "");
    assert!(ran.status.success(), "{ran:?}\n{log}");
    let calls: Vec<&str> = log.lines().collect();
    let ssh: Vec<&str> = calls
        .iter()
        .copied()
        .filter(|c| c.starts_with("ssh "))
        .collect();
    assert_eq!(ssh.len(), 3, "{log}");
    let mut starts = Vec::new();
    for (i, host) in ["gen-a", "gen-b", "gen-c"].iter().enumerate() {
        let call = ssh
            .iter()
            .find(|c| c.contains(&format!("[{host}]")))
            .unwrap_or_else(|| panic!("{host}: {log}"));
        // The remote command is one word, quoted for the remote shell.
        assert!(call.contains(&format!("--segment {i}/3 ")), "{call}");
        assert!(call.contains(r"--cacert /etc/ca\ file.pem"), "{call}");
        let start = call
            .split("--start-at ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap();
        starts.push(start.to_owned());
        let scp =
            format!("scp [-q] [-o] [BatchMode=yes] [{host}:/tmp/tlsbench-segment-{i}-of-3.json]");
        assert!(log.contains(&scp), "{scp}\n{log}");
    }
    assert!(starts.iter().all(|s| *s == starts[0]), "{starts:?}");
    assert!(
        starts[0].ends_with('Z') && starts[0].len() == 20,
        "{starts:?}"
    );
    let out = dir.path().join("out");
    let merge = calls.last().unwrap();
    let want = format!(
        "tlsbench [merge] [{0}/segment-0.json] [{0}/segment-1.json] [{0}/segment-2.json] [-o] [{0}/merged.json]",
        out.display()
    );
    assert_eq!(*merge, want, "{log}");
}

#[test]
fn the_ssh_script_fails_without_merging_when_a_segment_fails() {
    let dir = TempDir::new("ssh-segment-fails");
    let (ran, log) = run_segments(dir.path(), "gen-b");
    assert_eq!(ran.status.code(), Some(1), "{ran:?}\n{log}");
    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert!(stderr.contains("segment 1/3 on gen-b failed"), "{stderr}");
    assert!(!log.contains("tlsbench [merge]"), "{log}");
}
