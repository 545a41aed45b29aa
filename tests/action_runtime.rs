use std::collections::BTreeMap;
use std::path::Path;

use crate::util::{DIGEST_A, DIGEST_B, example_config, promote, read, run};

/// Parses a GITHUB_OUTPUT file: `name<<DELIM` / value lines / `DELIM`, or `name=value`.
struct ActionRun {
    run: crate::util::Run,
    outputs: BTreeMap<String, String>,
    summary: String,
    dir: tempfile::TempDir,
}

/// Runs the binary the way the runner starts a Docker action: no arguments, inputs as
/// INPUT_* variables (hyphens kept), fresh file-command files.
fn run_action(inputs: &[(&str, &str)]) -> ActionRun {
    let dir = tempfile::tempdir().unwrap();
    let output_file = dir.path().join("output");
    let summary_file = dir.path().join("summary");
    let mut cmd = promote();
    cmd.env("GITHUB_ACTIONS", "true")
        .env("CI", "true")
        .env("GITHUB_OUTPUT", &output_file)
        .env("GITHUB_STEP_SUMMARY", &summary_file)
        .env("GITHUB_SERVER_URL", "https://github.com")
        .env("GITHUB_REPOSITORY", "studysphere/app")
        .env("GITHUB_RUN_ID", "4242")
        .env("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567")
        .env("RUNNER_TEMP", dir.path());
    for (name, value) in inputs {
        cmd.env(format!("INPUT_{}", name.to_uppercase()), value);
    }
    let run = run(&mut cmd);
    let outputs = if output_file.exists() {
        crate::util::parse_file_commands(&read(&output_file))
    } else {
        BTreeMap::new()
    };
    let summary = if summary_file.exists() {
        read(&summary_file)
    } else {
        String::new()
    };
    ActionRun {
        run,
        outputs,
        summary,
        dir,
    }
}

#[test]
fn plan_as_an_action_writes_outputs_summary_and_report() {
    let config = example_config();
    let images = format!(
        "auth-service=studysphere.azurecr.io/studysphere/auth-service@{DIGEST_A}\n\ncourse-service=studysphere.azurecr.io/studysphere/course-service@{DIGEST_B}\n"
    );
    let out_dir = tempfile::tempdir().unwrap();
    let a = run_action(&[
        ("command", "plan"),
        ("config", config.to_str().unwrap()),
        ("images", &images),
        ("output-dir", out_dir.path().to_str().unwrap()),
        ("environment", ""),
        ("github-token", "ghs_supersecrettokenvalue123"),
    ]);
    assert_eq!(a.run.code, 0, "{:?}", a.run);
    assert_eq!(a.outputs["outcome"], "success", "outputs: {:?}", a.outputs);
    let report_path = Path::new(&a.outputs["report-path"]);
    let report: serde_json::Value = serde_json::from_str(&read(report_path)).unwrap();
    assert_eq!(report["environments"].as_array().unwrap().len(), 3);
    assert_eq!(
        report["environments"][2]["services"][0]["image"],
        format!("studysphere.azurecr.io/studysphere/auth-service@{DIGEST_A}")
    );
    for env in ["development", "testing", "production"] {
        for service in ["auth-service", "course-service"] {
            let file = out_dir.path().join(env).join(format!("{service}.yaml"));
            assert!(
                read(&file).contains(DIGEST_A) || service == "course-service",
                "{} pins the digest",
                file.display()
            );
        }
    }
    // The summary people read: comparison table, promotion path, rendered YAML folded away.
    assert!(
        a.summary.contains("### Environment comparison"),
        "{}",
        a.summary
    );
    assert!(a.summary.contains("```mermaid"));
    assert!(a.summary.contains("<details>"));
    assert!(a.summary.len() < 1024 * 1024);
    assert!(a.summary.contains("team qa"));
    // Two digests: no single `digest` output.
    assert!(!a.outputs.contains_key("digest"));
    // Logs carry no timestamps from us: the runner adds its own.
    assert!(!a.run.stderr.contains("Z  INFO"), "{}", a.run.stderr);
}

#[test]
fn a_secret_input_is_masked_first_and_never_written() {
    let secret = "ghs_anothersecret_9f8e7d6c5b4a";
    let a = run_action(&[
        ("command", "plan"),
        ("config", example_config().to_str().unwrap()),
        ("environment", "production"),
        ("github-token", secret),
    ]);
    assert_eq!(a.run.code, 0, "{:?}", a.run);
    let first_line = a.run.stdout.lines().next().unwrap_or_default();
    assert_eq!(
        first_line,
        format!("::add-mask::{secret}"),
        "the mask comes before anything else"
    );
    assert_eq!(
        a.run.stdout.matches(secret).count(),
        1,
        "only the add-mask line holds it: {:?}",
        a.run
    );
    assert!(!a.run.stderr.contains(secret));
    assert!(!a.summary.contains(secret));
    for value in a.outputs.values() {
        assert!(!value.contains(secret));
    }
    for entry in walk(a.dir.path()) {
        assert!(
            !read(&entry).contains(secret),
            "{} holds the secret",
            entry.display()
        );
    }
    assert_eq!(
        a.outputs["environment-url"],
        "https://studysphere.example.com"
    );
}

#[test]
fn one_pinned_service_sets_digest_and_image_outputs() {
    let image = format!("studysphere.azurecr.io/studysphere/auth-service@{DIGEST_A}");
    let a = run_action(&[
        ("command", "plan"),
        ("config", example_config().to_str().unwrap()),
        ("environment", "testing"),
        ("service", "auth-service"),
        ("images", &image),
    ]);
    assert_eq!(a.run.code, 0, "{:?}", a.run);
    assert_eq!(a.outputs["digest"], DIGEST_A);
    assert_eq!(a.outputs["image"], image);
}

#[test]
fn invalid_inputs_exit_2_with_an_annotation_and_the_outcome_output() {
    let a = run_action(&[
        ("command", "plan"),
        ("config", example_config().to_str().unwrap()),
        ("environment", "staging"),
        ("images", "not-a-reference"),
    ]);
    assert_eq!(a.run.code, 2, "{:?}", a.run);
    assert_eq!(a.outputs["outcome"], "invalid");
    assert!(
        a.run
            .stdout
            .contains("::error title=Invalid input::environment: unknown environment `staging`"),
        "{:?}",
        a.run
    );
    assert!(
        a.run.stdout.contains("::error title=Invalid input::image:"),
        "{:?}",
        a.run
    );
    assert!(!a.run.stderr.contains("panicked"));
}

#[test]
fn an_unknown_command_is_invalid_input() {
    let a = run_action(&[("command", "deploy-everything")]);
    assert_eq!(a.run.code, 2, "{:?}", a.run);
    assert_eq!(a.outputs["outcome"], "invalid");
    assert!(a.run.stdout.contains("::error"), "{:?}", a.run);
}

#[test]
fn outside_actions_outputs_go_to_stdout_as_lines_or_json() {
    let r = run(promote()
        .args(["plan", "--environment", "development", "--config"])
        .arg(example_config()));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        "environment-url=https://dev.studysphere.example.com\noutcome=success\n"
    );
    assert!(
        r.stderr.contains("development → namespace development"),
        "{r:?}"
    );

    let r = run(promote()
        .args(["plan", "--json", "--environment", "development", "--config"])
        .arg(example_config()));
    let json: serde_json::Value = serde_json::from_str(&r.stdout).expect("stdout is JSON");
    assert_eq!(json["outcome"], "success");
}

#[test]
fn help_and_version_exit_0() {
    assert_eq!(run(promote().arg("--help")).code, 0);
    assert_eq!(run(promote().arg("--version")).code, 0);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
