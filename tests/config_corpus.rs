//! The invalid-configuration corpus: promotion files that must be refused, each with the exact
//! errors it must produce.
//!
//! Every case is a directory `tests/corpus/invalid/<NN-name>/` holding a `promotion.yml` (and, when
//! the case is about manifests, the manifest directories next to it). The file's first lines state
//! what `config::load` must report, one line per error:
//!
//! ```text
//! # expect: promotion.yml:14:15 environments.testing.replicas: expected a replica count
//! # expect: web/deployment.yaml:8:7 spec.selector.matchLabels: does not match
//! ```
//!
//! that is `<file relative to the case>:<line>:<column> <field>: <message substring>`, with `-` for
//! an empty field and `*` for a column that does not matter; in the message, `…` stands for any
//! text (such as the absolute path of the case, which messages about directories include).
//!
//! A case passes when loading fails with exactly these errors: each expectation matches its own
//! error, and no error is left over (all of a file's errors come in one run).
//!
//! A bug found in validation gets a case here that states the correct behaviour (cases 59-78
//! came from this corpus's first run: misplaced positions, a panic on huge durations).

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::Command;

use promote_action::config::{self, ConfigError, ConfigErrors};

/// The corpus must keep at least this many asserting cases.
const MIN_CASES: usize = 35;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The case directories of `tests/corpus/<group>`, sorted by name.
fn case_dirs(group: &str) -> Vec<PathBuf> {
    let root = repo_root().join("tests/corpus").join(group);
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", root.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    for dir in &dirs {
        assert!(
            dir.join("promotion.yml").is_file(),
            "{} has no promotion.yml",
            dir.display()
        );
    }
    dirs
}

fn case_name(dir: &Path) -> String {
    dir.file_name().unwrap().to_string_lossy().into_owned()
}

/// One `# expect:` line.
#[derive(Debug)]
struct Expectation {
    /// Relative to the case directory.
    file: String,
    line: usize,
    /// `None` for `*`.
    col: Option<usize>,
    /// Empty for `-`.
    field: String,
    message: String,
    /// The line as written, for failure reports.
    text: String,
}

impl Expectation {
    fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("malformed expectation ({why}): {text}");
        let rest = text
            .strip_prefix("# expect: ")
            .ok_or_else(|| bad("prefix"))?;
        let (location, rest) = rest
            .split_once(' ')
            .ok_or_else(|| bad("no space after the location"))?;
        let mut parts = location.rsplitn(3, ':');
        let (col, line, file) = match (parts.next(), parts.next(), parts.next()) {
            (Some(col), Some(line), Some(file)) if !file.is_empty() => (col, line, file),
            _ => return Err(bad("location is not file:line:col")),
        };
        let line = line.parse().map_err(|_| bad("line is not a number"))?;
        let col = match col {
            "*" => None,
            n => Some(
                n.parse()
                    .map_err(|_| bad("column is not a number or `*`"))?,
            ),
        };
        let (field, message) = rest
            .split_once(": ")
            .ok_or_else(|| bad("no `: ` after the field"))?;
        if message.is_empty() {
            return Err(bad("empty message"));
        }
        Ok(Expectation {
            file: file.to_string(),
            line,
            col,
            field: if field == "-" {
                String::new()
            } else {
                field.to_string()
            },
            message: message.to_string(),
            text: text.to_string(),
        })
    }

    fn matches(&self, case_dir: &Path, error: &ConfigError) -> bool {
        error.file == case_dir.join(&self.file)
            && error.pos.line == self.line
            && self.col.is_none_or(|col| error.pos.col == col)
            && error.field == self.field
            && contains_in_order(&error.message, &self.message)
    }
}

/// Whether `message` contains the pieces of `pattern` separated by `…`, in order (a `…` stands for
/// text that differs between machines, such as the absolute path of the case).
fn contains_in_order(message: &str, pattern: &str) -> bool {
    let mut rest = message;
    for piece in pattern.split('…') {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    true
}

/// The `# expect:` lines that open the case's promotion.yml.
fn expectations(case_dir: &Path) -> Result<Vec<Expectation>, String> {
    let path = case_dir.join("promotion.yml");
    let source = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let lines: Vec<&str> = source.lines().collect();
    let header = lines
        .iter()
        .take_while(|l| l.starts_with("# expect:"))
        .count();
    if header == 0 {
        return Err("promotion.yml does not start with `# expect:` lines".to_string());
    }
    if let Some(late) = lines[header..].iter().find(|l| l.contains("# expect:")) {
        return Err(format!(
            "`# expect:` lines must all come first in promotion.yml: {late}"
        ));
    }
    lines[..header]
        .iter()
        .map(|l| Expectation::parse(l))
        .collect()
}

/// Loads the case and compares; `Err` holds a readable report of what differs.
fn check_case(case_dir: &Path) -> Result<(), String> {
    let name = case_name(case_dir);
    let expected = expectations(case_dir).map_err(|e| format!("── {name}\n{e}\n"))?;
    let path = case_dir.join("promotion.yml");
    let errors = match catch_unwind(AssertUnwindSafe(|| config::load(&path))) {
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            return Err(report(
                &name,
                &expected,
                &[],
                &[format!("config::load panicked: {why}")],
                case_dir,
            ));
        }
        Ok(Ok(_)) => {
            return Err(report(
                &name,
                &expected,
                &[],
                &["config::load accepted the file".to_string()],
                case_dir,
            ));
        }
        Ok(Err(ConfigErrors(errors))) => errors,
    };

    let mut used = vec![false; errors.len()];
    let mut problems = Vec::new();
    for exp in &expected {
        let found = errors
            .iter()
            .enumerate()
            .find(|(i, e)| !used[*i] && exp.matches(case_dir, e));
        match found {
            Some((i, _)) => used[i] = true,
            None => problems.push(format!("no error matches: {}", exp.text)),
        }
    }
    for (error, _) in errors.iter().zip(&used).filter(|(_, used)| !**used) {
        problems.push(format!("unexpected error: {}", shown(error, case_dir)));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(report(&name, &expected, &errors, &problems, case_dir))
    }
}

/// An error's Display with the case directory left out of its location, so it reads like an
/// expectation (the message itself is shown as it is).
fn shown(error: &ConfigError, case_dir: &Path) -> String {
    let text = error.to_string();
    match text.strip_prefix(&format!("{}/", case_dir.display())) {
        Some(rest) => rest.to_string(),
        None => text,
    }
}

fn report(
    name: &str,
    expected: &[Expectation],
    errors: &[ConfigError],
    problems: &[String],
    case_dir: &Path,
) -> String {
    let mut text = format!("── {name}\n");
    for p in problems {
        text.push_str(&format!("  ✗ {p}\n"));
    }
    text.push_str("  expected:\n");
    for e in expected {
        text.push_str(&format!("    {}\n", e.text));
    }
    text.push_str(&format!(
        "  actual ({} error{}):\n",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    ));
    for e in errors {
        text.push_str(&format!("    {}\n", shown(e, case_dir)));
    }
    text
}

fn check_group(group: &str) {
    let cases = case_dirs(group);
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|dir| check_case(dir).err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases in tests/corpus/{group} failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn every_invalid_config_reports_exactly_its_expected_errors() {
    check_group("invalid");
}

/// Every file of a case, with promotion.yml's comments left out.
fn fingerprint(dir: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
                continue;
            }
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            let mut text = std::fs::read_to_string(&path).unwrap();
            if rel == Path::new("promotion.yml") {
                text = text
                    .lines()
                    .filter(|l| !l.trim_start().starts_with('#'))
                    .collect::<Vec<_>>()
                    .join("\n");
            }
            out.insert(rel, text);
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn corpus_has_enough_distinct_cases() {
    let invalid = case_dirs("invalid");
    assert!(
        invalid.len() >= MIN_CASES,
        "the corpus has {} cases, expected at least {MIN_CASES}",
        invalid.len()
    );
    let all: Vec<PathBuf> = invalid;
    let prints: Vec<_> = all.iter().map(|d| fingerprint(d)).collect();
    let mut same = Vec::new();
    for i in 0..all.len() {
        for j in i + 1..all.len() {
            if prints[i] == prints[j] {
                same.push(format!("{} = {}", case_name(&all[i]), case_name(&all[j])));
            }
        }
    }
    assert!(same.is_empty(), "identical cases:\n{}", same.join("\n"));
}

/// The positive control: the complete example loads without a single error.
#[test]
fn the_studysphere_example_is_valid() {
    let path = repo_root().join("workflows-examples/studysphere/promotion.yml");
    if let Err(errors) = config::load(&path) {
        let lines: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
        panic!("{errors}\n{}", lines.join("\n"));
    }
}

/// The positive control for the delivery keys: strategies, their settings, analysis and secrets
/// from the job's environment decode into the model as written.
#[test]
fn the_delivery_keys_decode_into_the_model() {
    use config::{Bound, KeepPrevious, OnInconclusive, Strategy, TrafficRouting};
    use std::time::Duration;

    let path = repo_root().join("tests/corpus/valid/progressive-delivery/promotion.yml");
    let config = config::load(&path).unwrap_or_else(|errors| {
        let lines: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
        panic!("{errors}\n{}", lines.join("\n"))
    });
    let [development, testing, production] = config.environments.as_slice() else {
        panic!("three environments")
    };

    assert_eq!(development.strategy, Strategy::Rolling);
    let names: Vec<(&str, bool)> = development
        .secrets
        .iter()
        .map(|s| (s.name.as_str(), s.is_managed()))
        .collect();
    assert_eq!(names, [("azure-secrets", false), ("web-secrets", true)]);
    assert_eq!(
        development.secrets[1]
            .from_env
            .get("JWT_SECRET")
            .map(String::as_str),
        Some("DEV_JWT_SECRET")
    );
    let analysed = development
        .analysis
        .as_ref()
        .and_then(|a| a.prometheus.as_ref())
        .unwrap();
    assert_eq!(analysed.window, Duration::from_secs(120));
    assert_eq!(
        analysed.queries[0].expand("development", "web", "stable"),
        "sum(rate(http_requests_total{namespace=\"development\",service=\"web\",code=~\"5..\"}[1m]))\n  / sum(rate(http_requests_total{namespace=\"development\",service=\"web\"}[1m]))\n"
    );

    let Strategy::BlueGreen(blue_green) = &testing.strategy else {
        panic!("testing is blue-green: {:?}", testing.strategy)
    };
    assert_eq!(blue_green.keep_previous, KeepPrevious::UntilNextPromotion);
    assert_eq!(
        blue_green.preview_url.as_deref(),
        Some("https://preview.test.example.com")
    );
    assert_eq!(testing.analysis, None);

    let Strategy::Canary(canary) = &production.strategy else {
        panic!("production is a canary: {:?}", production.strategy)
    };
    let steps: Vec<(u32, u64)> = canary
        .steps
        .iter()
        .map(|s| (s.weight, s.pause.as_secs()))
        .collect();
    assert_eq!(steps, [(10, 120), (25, 120), (50, 300), (100, 300)]);
    let TrafficRouting::IngressNginx { ingress } = &canary.traffic_routing else {
        panic!("ingress-nginx: {:?}", canary.traffic_routing)
    };
    let web = &config.services[0];
    assert_eq!(
        web.canary_ingress(ingress.as_deref()).unwrap().name(),
        "web"
    );
    assert_eq!(web.fronting_services()[0].name(), "web");
    let analysed = production
        .analysis
        .as_ref()
        .and_then(|a| a.prometheus.as_ref())
        .unwrap();
    assert_eq!(analysed.on_inconclusive, OnInconclusive::Pass);
    let bounds: Vec<(&str, Bound, u64)> = analysed
        .queries
        .iter()
        .map(|q| (q.name.as_str(), q.bound, q.for_.as_secs()))
        .collect();
    assert_eq!(
        bounds,
        [
            ("error-rate", Bound::Max(0.01), 60),
            ("p95-latency", Bound::Max(1.0), 0),
            ("availability", Bound::Min(1.0), 0),
        ]
    );
}

// ---- the binary, end to end -------------------------------------------------------------------

/// The cases run through `promote plan`: one with many errors in promotion.yml, one with errors
/// in promotion.yml and in manifests.
const BINARY_CASES: &[&str] = &[
    "many-errors-in-environments",
    "many-errors-in-promotion-and-manifests",
];

/// The case directory, relative to the repository root, whose name ends with `-<name>`.
fn binary_case(name: &str) -> (String, Vec<Expectation>) {
    let dir = case_dirs("invalid")
        .into_iter()
        .find(|d| case_name(d).ends_with(&format!("-{name}")))
        .unwrap_or_else(|| panic!("no case named *-{name} in tests/corpus/invalid"));
    let expected = expectations(&dir).unwrap();
    assert!(
        expected.iter().all(|e| e.col.is_some()),
        "{name}: the binary cases need exact columns"
    );
    let rel = format!("tests/corpus/invalid/{}", case_name(&dir));
    (rel, expected)
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// `promote plan --config <case>/promotion.yml` from the repository root, with no GitHub or
/// promote variables inherited from the machine running the tests.
fn run_plan(case_rel: &str, actions: Option<&Path>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_promote"));
    for (key, _) in std::env::vars() {
        if ["GITHUB_", "INPUT_", "RUNNER_", "PROMOTE_"]
            .iter()
            .any(|p| key.starts_with(p))
            || key == "CI"
        {
            cmd.env_remove(key);
        }
    }
    if let Some(tmp) = actions {
        cmd.env("GITHUB_ACTIONS", "true")
            .env("GITHUB_OUTPUT", tmp.join("output"))
            .env("GITHUB_STEP_SUMMARY", tmp.join("summary.md"));
    }
    let out = cmd
        .current_dir(repo_root())
        .args(["plan", "--config", &format!("{case_rel}/promotion.yml")])
        .output()
        .expect("run promote");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn assert_no_panic(case: &str, run: &Run) {
    for text in [&run.stdout, &run.stderr] {
        assert!(
            !text.contains("panicked") && !text.contains("stack backtrace"),
            "{case}: the binary panicked\n--- stdout\n{}\n--- stderr\n{}",
            run.stdout,
            run.stderr
        );
    }
}

#[test]
fn plan_prints_every_config_error_with_its_location_and_exits_2() {
    for name in BINARY_CASES {
        let (case, expected) = binary_case(name);
        let run = run_plan(&case, None);
        assert_no_panic(name, &run);
        assert_eq!(
            run.code,
            Some(2),
            "{name}: exit code\n--- stderr\n{}",
            run.stderr
        );
        let error_lines: Vec<&str> = run
            .stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .collect();
        let mut missing = Vec::new();
        for e in &expected {
            let location = format!("{case}/{}:{}:{}: ", e.file, e.line, e.col.unwrap());
            if !error_lines
                .iter()
                .any(|l| l.contains(&location) && contains_in_order(l, &e.message))
            {
                missing.push(format!("{location}… {}", e.message));
            }
        }
        assert!(
            missing.is_empty() && error_lines.len() == expected.len(),
            "{name}: expected {} `error:` lines, found {}; missing:\n{}\n--- stderr\n{}",
            expected.len(),
            error_lines.len(),
            missing.join("\n"),
            run.stderr
        );
    }
}

#[test]
fn plan_in_actions_annotates_every_config_error() {
    for name in BINARY_CASES {
        let (case, expected) = binary_case(name);
        let tmp = tempfile::tempdir().unwrap();
        let run = run_plan(&case, Some(tmp.path()));
        assert_no_panic(name, &run);
        assert_eq!(
            run.code,
            Some(2),
            "{name}: exit code\n--- stdout\n{}\n--- stderr\n{}",
            run.stdout,
            run.stderr
        );
        let annotations: Vec<&str> = run
            .stdout
            .lines()
            .filter(|l| l.starts_with("::error "))
            .collect();
        let mut missing = Vec::new();
        for e in &expected {
            let prefix = format!(
                "::error file={case}/{},line={},col={},title=Invalid configuration::",
                e.file,
                e.line,
                e.col.unwrap()
            );
            // The message is escaped as workflow-command data: `%` first, then line breaks.
            let field = if e.field.is_empty() {
                String::new()
            } else {
                format!("{}: ", e.field)
            };
            let body = field.replace('%', "%25");
            let message = e.message.replace('%', "%25");
            if !annotations.iter().any(|l| {
                l.strip_prefix(&prefix).is_some_and(|rest| {
                    rest.starts_with(&body) && contains_in_order(rest, &message)
                })
            }) {
                missing.push(format!("{prefix}{body}… {message}"));
            }
        }
        assert!(
            missing.is_empty() && annotations.len() == expected.len(),
            "{name}: expected {} `::error` annotations, found {}; missing:\n{}\n--- stdout\n{}",
            expected.len(),
            annotations.len(),
            missing.join("\n"),
            run.stdout
        );
    }
}
