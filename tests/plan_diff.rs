//! `plan`'s comparisons, end to end through the binary: against the base branch's promotion
//! file (`--base-config`), against the live cluster with a server-side dry run
//! (`--diff-cluster`, the fake API server), and the sticky pull-request comment
//! (`--comment-on-pr`, the fake GitHub).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::fake_github::{FakeGitHub, Fault as GitHubFault, TokenKind};
use crate::fake_kube::FakeKube;
use crate::kube_deploy::staging;
use crate::util::{DIGEST_A, DIGEST_B, Run, promote, read, repo_root, run};

/// The StudySphere example copied to `<dir>/<name>`, where a test may edit it.
fn studysphere(dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(name);
    copy_dir(&repo_root().join("workflows-examples/studysphere"), &to);
    to.join("promotion.yml")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = read(path);
    assert!(text.contains(from), "{} has no {from:?}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

/// `promote plan` with a job summary file, returning the run, the summary and the report.
fn plan(dir: &Path, config: &Path, args: &[&str]) -> (Run, String, Value) {
    let summary = dir.join("summary.md");
    let _ = std::fs::remove_file(&summary);
    let out = dir.join("out");
    let run = run(promote()
        .env("GITHUB_STEP_SUMMARY", &summary)
        .arg("--config")
        .arg(config)
        .arg("plan")
        .arg("--output-dir")
        .arg(&out)
        .args(args));
    let summary = std::fs::read_to_string(&summary).unwrap_or_default();
    let report = std::fs::read_to_string(out.join("promote-plan.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    (run, summary, report)
}

/// The report's object entries of comparison `set` in `env`: `(object, change)`.
fn objects(report: &Value, set: usize, env: &str) -> Vec<(String, String)> {
    let envs = report["changes"]["comparisons"][set]["environments"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let env = envs
        .iter()
        .find(|e| e["name"] == env)
        .unwrap_or_else(|| panic!("no environment {env} in {report:#}"));
    env["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["object"].as_str().unwrap().to_string(),
                o["change"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The change of the object named `name`, or of the one whose name starts with it when `name`
/// ends with `-` (a hashed name).
fn change_of<'a>(objects: &'a [(String, String)], name: &str) -> &'a str {
    objects
        .iter()
        .find(|(o, _)| o == name || (name.ends_with('-') && o.starts_with(name)))
        .map(|(_, c)| c.as_str())
        .unwrap_or_else(|| panic!("no {name} in {objects:?}"))
}

#[test]
fn base_config_diff_names_every_change_and_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let base = studysphere(dir.path(), "base");
    let head = studysphere(dir.path(), "head");
    let root = head.parent().unwrap();
    edit(&head, "LOG_LEVEL: debug", "LOG_LEVEL: trace");
    std::fs::remove_file(root.join("services/course-service/service.yaml")).unwrap();
    std::fs::write(
        root.join("services/auth-service/metrics.yaml"),
        "apiVersion: v1
kind: Service
metadata: {name: auth-service-metrics, labels: {app: auth-service}}
spec:
  selector: {app: auth-service}
  ports: [{name: metrics, port: 9090, targetPort: 9090}]
",
    )
    .unwrap();

    let base_arg = base.to_str().unwrap();
    let (run, summary, report) = plan(
        dir.path(),
        &head,
        &["--environment", "development", "--base-config", base_arg],
    );
    assert_eq!(run.code, 0, "{run:?}");

    let dev = objects(&report, 0, "development");
    assert_eq!(change_of(&dev, "ConfigMap/auth-service-config-"), "changed");
    assert_eq!(change_of(&dev, "Deployment/auth-service"), "changed");
    assert_eq!(change_of(&dev, "Service/auth-service-metrics"), "added");
    assert_eq!(change_of(&dev, "Service/course-service"), "removed");
    assert_eq!(change_of(&dev, "Service/auth-service"), "unchanged");
    assert_eq!(
        report["changes"]["comparisons"][0]["against"]["base"],
        base_arg
    );

    // The summary: counts, a table of what differs, each diff collapsed in a diff fence.
    assert!(
        summary.contains("### Changes against the base branch"),
        "{summary}"
    );
    assert!(
        summary.contains("**development**: 5 changed, 1 added, 1 removed"),
        "{summary}"
    );
    assert!(
        summary.contains("| <code>Service/course-service</code> | course-service | 🔴 removed |"),
        "{summary}"
    );
    assert!(summary.contains("```diff\n--- base/development/ConfigMap/auth-service-config-"));
    assert!(
        summary.contains("-  LOG_LEVEL: debug\n+  LOG_LEVEL: trace\n"),
        "{summary}"
    );
    // The terminal shows the same, with the changed objects' diffs.
    assert!(
        run.stderr.contains("Changes against the base branch"),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains("    added        Service/auth-service-metrics\n")
    );
    assert!(run.stderr.contains("+  LOG_LEVEL: trace\n"));
}

#[test]
fn an_invalid_base_is_a_warning_and_the_head_is_still_planned() {
    let dir = tempfile::tempdir().unwrap();
    let head = studysphere(dir.path(), "head");
    let base = dir.path().join("base.yml");
    std::fs::write(
        &base,
        "registry: studysphere.azurecr.io\nservices: [{name: 1}]\n",
    )
    .unwrap();
    let (run, summary, _) = plan(
        dir.path(),
        &head,
        &["--base-config", base.to_str().unwrap()],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("warning") && run.stderr.contains("is invalid"),
        "{run:?}"
    );
    assert!(summary.contains("> [!WARNING]"), "{summary}");
    assert!(
        summary.contains("planned the head without a diff"),
        "{summary}"
    );
    assert!(summary.contains("### Environment comparison"));

    let missing = dir.path().join("nowhere.yml");
    let (run, _, _) = plan(
        dir.path(),
        &head,
        &["--base-config", missing.to_str().unwrap()],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("file not found"), "{run:?}");
}

#[test]
fn cluster_diff_compares_live_objects_with_a_server_side_dry_run() {
    let fake = FakeKube::start();
    let project = staging(&fake, "");
    let deployed = project.deploy(DIGEST_A, &[]);
    assert_eq!(deployed.code, 0, "{deployed:?}");
    let before = fake.get("Deployment", "staging", "web").unwrap();
    // A manifest the cluster has never seen.
    std::fs::write(
        project.dir.path().join("web/extra.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-extra}\ndata: {mode: fast}\n",
    )
    .unwrap();

    let summary_file = project.dir.path().join("summary.md");
    let image = format!("web=registry.example.com/team/web@{DIGEST_B}");
    let run = run(project
        .command("plan", &["--diff-cluster", "--image", &image])
        .env("GITHUB_STEP_SUMMARY", &summary_file));
    assert_eq!(run.code, 0, "{run:?}");
    let summary = read(&summary_file);
    let report: Value =
        serde_json::from_str(&read(&project.out().join("promote-plan.json"))).unwrap();
    let staging = objects(&report, 0, "staging");
    assert_eq!(change_of(&staging, "Deployment/web"), "changed");
    assert_eq!(change_of(&staging, "Service/web"), "unchanged");
    assert_eq!(change_of(&staging, "ConfigMap/web-config-"), "unchanged");
    assert_eq!(change_of(&staging, "ConfigMap/web-extra"), "added");

    let deployment = report["changes"]["comparisons"][0]["environments"][0]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["object"] == "Deployment/web")
        .unwrap()["diff"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        deployment
            .starts_with("--- live/staging/Deployment/web\n+++ merged/staging/Deployment/web\n"),
        "{deployment}"
    );
    // Folded by the YAML writer (`image: >-`), the digest is a line of its own.
    assert!(
        deployment.contains(&format!(
            "\n-          registry.example.com/team/web@{DIGEST_A}\n"
        )) && deployment.contains(&format!(
            "\n+          registry.example.com/team/web@{DIGEST_B}\n"
        )),
        "{deployment}"
    );
    // The server maintains these; they are not the change.
    for noise in [
        "managedFields",
        "resourceVersion",
        "uid:",
        "creationTimestamp",
        "status:",
        "deployment.kubernetes.io/revision",
    ] {
        assert!(!deployment.contains(noise), "{noise} in\n{deployment}");
    }
    // A new object is shown as the server would create it (its defaults included).
    assert!(
        summary.contains("### Changes against the live cluster"),
        "{summary}"
    );
    assert!(summary.contains("--- /dev/null\n+++ merged/staging/ConfigMap/web-extra\n"));

    // A dry run: nothing was written.
    let after = fake.get("Deployment", "staging", "web").unwrap();
    assert_eq!(
        after["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );
    assert!(fake.get("ConfigMap", "staging", "web-extra").is_none());
}

#[test]
fn an_unreachable_cluster_is_a_warning_per_environment() {
    let fake = FakeKube::start();
    let project = staging(&fake, "");
    // The kubeconfig still points at the port, but nothing answers there any more.
    fake.shutdown();
    let summary_file = project.dir.path().join("summary.md");
    let run = run(project
        .command("plan", &["--diff-cluster"])
        .env("GITHUB_STEP_SUMMARY", &summary_file));
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr
            .contains("staging: not compared with the live cluster, which does not answer"),
        "{run:?}"
    );
    let summary = read(&summary_file);
    assert!(
        summary.contains("**staging**: ⚠️ not compared"),
        "{summary}"
    );
    assert!(
        summary.contains("### Rendered objects"),
        "the plan is still there"
    );
}

/// The plan step of pr-plan.yml as the runner starts the action: no arguments, the inputs as
/// `INPUT_*` variables (hyphens kept), the pull request's event payload.
fn pr_plan(
    dir: &Path,
    github: &FakeGitHub,
    token: &str,
    event: &str,
    config: &Path,
    base: &Path,
) -> Run {
    let event_file = dir.join("event.json");
    std::fs::write(
        &event_file,
        r#"{"action": "synchronize", "number": 7, "pull_request": {"number": 7}}"#,
    )
    .unwrap();
    let mut cmd: Command = promote();
    cmd.env("GITHUB_ACTIONS", "true")
        .env("GITHUB_EVENT_NAME", event)
        .env("GITHUB_EVENT_PATH", &event_file)
        .env("GITHUB_REPOSITORY", "studysphere/app")
        .env("GITHUB_API_URL", github.url())
        .env("GITHUB_SERVER_URL", "https://github.com")
        .env("GITHUB_RUN_ID", "99")
        .env("INPUT_COMMAND", "plan")
        .env("INPUT_CONFIG", config)
        .env("INPUT_ENVIRONMENT", "development")
        .env("INPUT_BASE-CONFIG", base)
        .env("INPUT_COMMENT-ON-PR", "true")
        .env("INPUT_GITHUB-TOKEN", token);
    run(&mut cmd)
}

#[test]
fn the_pr_comment_is_one_comment_edited_on_every_plan() {
    let dir = tempfile::tempdir().unwrap();
    let base = studysphere(dir.path(), "base");
    let head = studysphere(dir.path(), "head");
    let token = "ghs_planCommentToken0123456789";
    let github = FakeGitHub::builder("studysphere", "app")
        .token(token, TokenKind::WorkflowToken)
        .start();

    edit(&head, "LOG_LEVEL: debug", "LOG_LEVEL: trace");
    let first = pr_plan(dir.path(), &github, token, "pull_request", &head, &base);
    assert_eq!(first.code, 0, "{first:?}");
    let comments = github.comments(7);
    assert_eq!(comments.len(), 1, "{first:?}");
    let id = comments[0].id;
    let body = &comments[0].body;
    assert!(body.starts_with("<!-- promote-action:plan -->\n"), "{body}");
    assert!(body.contains("+  LOG_LEVEL: trace"), "{body}");
    assert!(
        body.contains("[job summary](https://github.com/studysphere/app/actions/runs/99)"),
        "{body}"
    );
    assert!(
        !body.contains("```yaml"),
        "the comment leaves the rendered YAML to the summary"
    );
    let printed = first
        .stdout
        .lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .chain(first.stderr.lines());
    for line in printed {
        assert!(!line.contains(token), "the token is printed: {line}");
    }

    // A second push: the same comment, edited.
    edit(&head, "LOG_LEVEL: trace", "LOG_LEVEL: verbose");
    let second = pr_plan(dir.path(), &github, token, "pull_request", &head, &base);
    assert_eq!(second.code, 0, "{second:?}");
    let comments = github.comments(7);
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0].id, id);
    assert!(comments[0].body.contains("+  LOG_LEVEL: verbose"));
    assert!(!comments[0].body.contains("trace"));
    assert_eq!(
        github
            .requests_to("POST", "/repos/studysphere/app/issues")
            .len(),
        1
    );
    assert_eq!(
        github
            .requests_to("PATCH", "/repos/studysphere/app/issues/comments")
            .len(),
        1
    );
}

#[test]
fn a_refused_comment_is_a_warning_naming_the_permission() {
    let dir = tempfile::tempdir().unwrap();
    let config = studysphere(dir.path(), "head");
    let token = "ghs_readOnlyForkToken0123456789";
    let github = FakeGitHub::builder("studysphere", "app")
        .token(token, TokenKind::WorkflowToken)
        .fault(GitHubFault::status(
            "POST",
            "/repos/studysphere/app/issues/7/comments",
            403,
        ))
        .start();
    let run = pr_plan(
        dir.path(),
        &github,
        token,
        "pull_request_target",
        &config,
        &config,
    );
    assert_eq!(run.code, 0, "the plan is the product: {run:?}");
    assert!(run.stdout.contains("::warning"), "{run:?}");
    assert!(run.stdout.contains("pull-requests: write"), "{run:?}");
    assert!(github.comments(7).is_empty());
}

#[test]
fn comment_on_pr_outside_a_pull_request_is_a_notice() {
    let dir = tempfile::tempdir().unwrap();
    let config = studysphere(dir.path(), "head");
    let github = FakeGitHub::builder("studysphere", "app").start();
    let run = pr_plan(
        dir.path(),
        &github,
        "ghs_unusedToken0123456789",
        "push",
        &config,
        &config,
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("::notice::comment-on-pr: this run is not for a pull request (event `push`)"),
        "{run:?}"
    );
    assert!(github.requests().is_empty());
}
