//! `promote metrics` through the binary against the fake GitHub: as the action (job summary,
//! outputs, report), on the command line with `--json`, and refusing a window it cannot read.
//! The token is looked for everywhere the command writes.

use std::path::Path;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::fake_github::{FakeGitHub, TokenKind};
use crate::github_kpi::{End, deployment_from, sha};
use crate::util::{Run, example_config, parse_file_commands, promote, read, run};

const TOKEN: &str = "ghs_metrics_cmd_token_7d1c9e2b4a60";
const DAY: i64 = 86_400;

/// Two weeks of StudySphere's record, ending an hour ago: a commit every other day, to testing
/// and 10 minutes later to production; the third production deployment rolled back and
/// restored by the next promotion.
fn seeded() -> FakeGitHub {
    let gh = FakeGitHub::builder("studysphere", "app")
        .token(TOKEN, TokenKind::WorkflowToken)
        .start();
    let now = Timestamp::now();
    let at = |seconds: i64| (now + SignedDuration::from_secs(seconds)).to_string();
    let mut seeds = Vec::new();
    for k in 0..6i64 {
        let t = -13 * DAY + k * 2 * DAY;
        let commit = sha(k as usize);
        gh.seed_commit(&commit, &at(t - 3600), &at(t - 3600));
        seeds.push(deployment_from(now, "testing", &commit, t, End::Success));
        let end = if k == 2 {
            End::RolledBack
        } else {
            End::Success
        };
        seeds.push(deployment_from(now, "production", &commit, t + 600, end));
    }
    gh.seed_deployments(seeds);
    gh
}

/// `promote metrics ARGS` as a terminal user runs it, in the repository's environment.
fn metrics(gh: &FakeGitHub, args: &[&str]) -> Run {
    run(promote()
        .arg("--config")
        .arg(example_config())
        .args(args)
        .env("GITHUB_API_URL", gh.url())
        .env("GITHUB_REPOSITORY", "studysphere/app")
        .env("GITHUB_TOKEN", TOKEN))
}

#[track_caller]
fn assert_no_token(what: &str, text: &str) {
    assert!(!text.contains(TOKEN), "the token is in {what}:\n{text}");
}

#[test]
fn as_an_action_it_writes_the_table_the_chart_and_the_report_and_never_the_token() {
    let gh = seeded();
    let dir = tempfile::tempdir().unwrap();
    let (output, summary) = (dir.path().join("output"), dir.path().join("summary.md"));
    let r = run(promote()
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", &output)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("RUNNER_TEMP", dir.path())
        .env("GITHUB_API_URL", gh.url())
        .env("GITHUB_REPOSITORY", "studysphere/app")
        .env("INPUT_COMMAND", "metrics")
        .env("INPUT_CONFIG", example_config())
        .env("INPUT_SINCE", "2w")
        .env("INPUT_GITHUB-TOKEN", TOKEN));
    assert_eq!(r.code, 0, "{r:?}");
    let outputs_text = read(&output);
    let outputs = parse_file_commands(&outputs_text);
    assert_eq!(outputs["outcome"], "success", "{outputs:?}");

    let md = read(&summary);
    assert!(md.contains("## 📈 Delivery metrics"), "{md}");
    assert!(
        md.contains("| Deployment frequency | 2.5 / week (5 successful) | 2+ / week | ✅ |"),
        "{md}"
    );
    assert!(md.contains("| Change failure rate |"), "{md}");
    assert!(md.contains("```mermaid\nxychart-beta"), "{md}");

    let report_path = Path::new(&outputs["report-path"]);
    assert_eq!(report_path, dir.path().join("promote-metrics.json"));
    let report_text = read(report_path);
    let report: serde_json::Value = serde_json::from_str(&report_text).unwrap();
    assert_eq!(report["command"], "metrics");
    assert_eq!(report["window_days"], 14.0);
    assert_eq!(report["deployments_read"], 12);

    // The runner's add-mask command is the one place the token may appear.
    assert_eq!(r.stdout.matches(TOKEN).count(), 1, "{r:?}");
    assert!(r.stdout.contains(&format!("::add-mask::{TOKEN}")), "{r:?}");
    for (what, text) in [
        ("stderr", &r.stderr),
        ("the summary", &md),
        ("the outputs", &outputs_text),
        ("the report", &report_text),
    ] {
        assert_no_token(what, text);
    }
    assert!(gh.writes().is_empty(), "metrics only reads");
}

#[test]
fn json_on_the_command_line_prints_the_report_on_stdout_and_nothing_else() {
    let gh = seeded();
    let out = tempfile::tempdir().unwrap();
    let r = metrics(
        &gh,
        &[
            "--json",
            "metrics",
            "--since",
            "30d",
            "--output-dir",
            out.path().to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    // stdout is one JSON document, the report (`promote metrics --json > kpis.json`), the same
    // as the file it writes.
    let report: serde_json::Value = serde_json::from_str(&r.stdout).expect("stdout is JSON");
    let report_text = read(&out.path().join("promote-metrics.json"));
    let written: serde_json::Value = serde_json::from_str(&report_text).unwrap();
    assert_eq!(report, written);
    // promotion.yml's order, every environment a row; production is its last one.
    let rows: Vec<(&str, bool)> = report["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["environment"].as_str().unwrap(),
                e["production"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("development", false),
            ("testing", false),
            ("production", true)
        ]
    );
    let production = &report["environments"][2]["kpis"];
    assert_eq!(production["counts"]["rolled_back"], 1);
    assert_eq!(production["change_failure_rate"]["verdict"], "not-met");
    assert_eq!(production["lead_time"]["samples"], 5);
    // The terminal text goes to stderr.
    assert!(
        r.stderr.contains("Delivery metrics of studysphere/app"),
        "{r:?}"
    );
    for (what, text) in [
        ("stdout", &r.stdout),
        ("stderr", &r.stderr),
        ("the report", &report_text),
    ] {
        assert_no_token(what, text);
    }
}

#[test]
fn a_window_that_is_not_one_is_invalid_and_nothing_is_read() {
    let gh = seeded();
    for since in ["3y", "0d", "thirty"] {
        let r = metrics(&gh, &["metrics", "--since", since]);
        assert_eq!(r.code, 2, "{since}: {r:?}");
        assert!(
            r.stderr.contains(&format!(
                "invalid value '{since}' for '--since <SINCE>': expected a window such as `30d`, `2w`"
            )),
            "{since}: {r:?}"
        );
        assert_eq!(r.stdout.trim(), "outcome=invalid", "{r:?}");
    }
    let r = metrics(&gh, &["metrics", "--environment", "staging"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("staging"), "{r:?}");
    let r = run(promote()
        .args(["metrics", "--config"])
        .arg(example_config())
        .env("GITHUB_API_URL", gh.url())
        .env("GITHUB_REPOSITORY", "studysphere/app"));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("no GitHub token"), "{r:?}");
    assert!(gh.requests().is_empty(), "nothing was read");
}
