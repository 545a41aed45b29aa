//! Shared test support: running the binary, temp dirs, comparing text as blocks.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn example_config() -> PathBuf {
    repo_root().join("workflows-examples/studysphere/promotion.yml")
}

/// The `promote` binary with a clean environment: no GITHUB_*/INPUT_*/RUNNER_* leak in from the
/// machine running the tests (CI itself may be GitHub Actions).
pub fn promote() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_promote"));
    for (key, _) in std::env::vars() {
        if key.starts_with("GITHUB_")
            || key.starts_with("INPUT_")
            || key.starts_with("RUNNER_")
            || key.starts_with("PROMOTE_")
            || key == "CI"
        {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(repo_root());
    cmd
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(cmd: &mut Command) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("the promote binary runs");
    Run {
        code: status.code().expect("exited normally, not by a signal"),
        stdout: String::from_utf8(stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(stderr).expect("stderr is UTF-8"),
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit code {}\n--- stdout ---\n{}\n--- stderr ---\n{}\n---",
            self.code, self.stdout, self.stderr
        )
    }
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Compares text, printing both sides as blocks on mismatch.
#[track_caller]
pub fn assert_text_eq(expected: &str, actual: &str, what: &str) {
    if expected != actual {
        let first_diff = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || "length differs".to_string(),
                |i| format!("first difference at line {}", i + 1),
            );
        panic!(
            "{what} differs ({first_diff})\n--- expected ---\n{expected}\n--- actual ---\n{actual}\n---"
        );
    }
}

pub const DIGEST_A: &str =
    "sha256:4f1c2a9b0d3e4f1c2a9b0d3e4f1c2a9b0d3e4f1c2a9b0d3e4f1c2a9b0d3e4f1c";
pub const DIGEST_B: &str =
    "sha256:9a0b7c6d5e4f9a0b7c6d5e4f9a0b7c6d5e4f9a0b7c6d5e4f9a0b7c6d5e4f9a0b";

/// The `name=value` and `name<<DELIM … DELIM` lines of a GITHUB_OUTPUT (or GITHUB_ENV) file;
/// a multi-line value must use a random `ghadelimiter_…` delimiter.
pub fn parse_file_commands(text: &str) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delimiter)) = line.split_once("<<") {
            let mut value = Vec::new();
            for l in lines.by_ref() {
                if l == delimiter {
                    break;
                }
                value.push(l);
            }
            assert!(
                delimiter.starts_with("ghadelimiter_"),
                "random delimiter, got {delimiter}"
            );
            out.insert(name.to_string(), value.join("\n"));
        } else if let Some((name, value)) = line.split_once('=') {
            out.insert(name.to_string(), value.to_string());
        }
    }
    out
}
