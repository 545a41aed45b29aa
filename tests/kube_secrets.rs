//! `fromEnv` Secrets through the binary against the fake API server: `deploy` creates a version
//! of the Secret from the job's variables before the workload, a new value is a new version and
//! rolls the Deployment, a rollback takes the old version back, a variable without a value is
//! exit 2 with nothing written, and `plan` tells a changed value from an unchanged one. No value
//! appears in anything a command prints or writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use serde_json::Value;

use crate::fake_kube::FakeKube;
use crate::support::project::Project;
use crate::util::{DIGEST_A, Run, parse_file_commands, run};

/// `testing` reads `app-secrets`, made of two of the job's variables.
const TESTING: &str = "    replicas: 1
    rollout: { timeout: 30s }
    secrets:
      - { name: app-secrets, fromEnv: { DATABASE_URL: TEST_DATABASE_URL, JWT_SECRET: TEST_JWT_SECRET } }
";

/// A value unlike anything else the test sees, so finding it anywhere is a leak.
fn value(label: &str) -> String {
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).expect("randomness");
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("{label}-{hex}")
}

fn encode(value: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(value)
}

/// One command's run as the runner starts it, and every file it wrote.
struct Written {
    run: Run,
    text: String,
}

/// Runs `cmd` in Actions with `variables` set and a job summary and outputs file in `out`;
/// returns the run and everything it printed or wrote (but the `::add-mask::` commands, which
/// the runner reads and never shows).
fn in_actions(mut cmd: Command, variables: &[(&str, &str)], out: &Path) -> Written {
    std::fs::create_dir_all(out).unwrap();
    let (summary, outputs) = (out.join("summary.md"), out.join("outputs"));
    let _ = std::fs::remove_file(&summary);
    let _ = std::fs::remove_file(&outputs);
    cmd.env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_OUTPUT", &outputs);
    for (name, value) in variables {
        cmd.env(name, value);
    }
    let run = run(&mut cmd);
    let mut text: Vec<String> = run
        .stdout
        .lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .map(str::to_string)
        .collect();
    text.push(run.stderr.clone());
    text.extend(files_under(out).iter().map(|f| crate::util::read(f)));
    Written {
        run,
        text: text.join("\n"),
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[track_caller]
fn assert_hidden(written: &Written, values: &[&str]) {
    for value in values {
        for form in [value.to_string(), encode(value)] {
            assert!(
                !written.text.contains(&form),
                "{form} leaked:\n{}",
                written.text
            );
        }
    }
}

fn project(fake: &FakeKube) -> Project {
    Project::new("testing", TESTING).with_kubeconfig(&fake.kubeconfig_yaml())
}

fn deploy(project: &Project, variables: &[(&str, &str)], out: &str) -> Written {
    let image = format!("web=registry.example.com/team/web@{DIGEST_A}");
    let cmd = project.command_in(
        "deploy",
        &["--image", &image, "--create-namespace"],
        &project.path(out),
    );
    in_actions(cmd, variables, &project.path(out))
}

/// `<out>/promote-<verb>.json`.
fn report(project: &Project, out: &str, verb: &str) -> Value {
    let path = project.path(out).join(format!("promote-{verb}.json"));
    serde_json::from_str(&crate::util::read(&path)).expect("the report is JSON")
}

/// The Secret the Deployment's pod template reads (render adds an `envFrom` for it).
fn version_read(deployment: &Value) -> String {
    let from = deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"]
        .as_array()
        .expect("envFrom");
    from.iter()
        .find_map(|f| f["secretRef"]["name"].as_str())
        .expect("a secretRef")
        .to_string()
}

fn live_version(fake: &FakeKube) -> String {
    version_read(&fake.get("Deployment", "testing", "web").expect("deployed"))
}

fn revision(fake: &FakeKube) -> Value {
    let live = fake.get("Deployment", "testing", "web").expect("deployed");
    live["metadata"]["annotations"]["deployment.kubernetes.io/revision"].clone()
}

fn secret_data(fake: &FakeKube, version: &str) -> BTreeMap<String, String> {
    let secret = fake.get("Secret", "testing", version).expect("created");
    serde_json::from_value(secret["data"].clone()).unwrap()
}

/// The index of the first write (not a dry run) to a path ending in `suffix`.
fn first_write(fake: &FakeKube, suffix: &str) -> usize {
    fake.requests()
        .iter()
        .position(|r| {
            r.method == "PATCH" && r.path.ends_with(suffix) && r.param("dryRun").is_none()
        })
        .unwrap_or_else(|| panic!("no write to {suffix}"))
}

#[test]
fn deploy_creates_the_secret_first_and_a_new_value_rolls_the_deployment() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let fake = FakeKube::start();
    let project = project(&fake);
    let (url, jwt) = (value("postgres://app:pw@db"), value("jwt"));

    let first = deploy(
        &project,
        &[("TEST_DATABASE_URL", &url), ("TEST_JWT_SECRET", &jwt)],
        "first",
    );
    assert_eq!(first.run.code, 0, "{:?}", first.run);
    assert_hidden(&first, &[&url, &jwt]);
    let version = live_version(&fake);
    assert!(version.starts_with("app-secrets-"), "{version}");
    assert_eq!(
        secret_data(&fake, &version),
        BTreeMap::from([
            ("DATABASE_URL".to_string(), encode(&url)),
            ("JWT_SECRET".to_string(), encode(&jwt)),
        ])
    );
    let secret = fake.get("Secret", "testing", &version).unwrap();
    assert_eq!(
        secret["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "promote-action"
    );
    assert_eq!(
        secret["metadata"]["annotations"]["promote.studysphere.dev/secret-name"],
        "app-secrets"
    );
    assert_eq!(secret["immutable"], true, "a new value is a new version");
    assert!(
        first_write(&fake, &format!("/secrets/{version}")) < first_write(&fake, "/deployments/web"),
        "the Secret is applied before the Deployment that reads it"
    );
    // The dry run already validated the rewritten template.
    let dry_run = fake
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/deployments/web") && r.param("dryRun").is_some())
        .expect("a dry run of the Deployment");
    assert_eq!(version_read(&dry_run.json()), version);
    assert_eq!(revision(&fake), "1");
    let report = report(&project, "first", "deploy");
    assert!(
        report["applied"]
            .as_array()
            .unwrap()
            .contains(&Value::from(format!("secret/{version}"))),
        "{report:#}"
    );

    // The same values: the same version, nothing to roll.
    let again = deploy(
        &project,
        &[("TEST_DATABASE_URL", &url), ("TEST_JWT_SECRET", &jwt)],
        "again",
    );
    assert_eq!(again.run.code, 0, "{:?}", again.run);
    assert_eq!(
        (live_version(&fake), revision(&fake)),
        (version.clone(), "1".into())
    );

    // A new value: a new version, and the pod template with it; the old version stays.
    let rotated = value("postgres://app:new@db");
    let third = deploy(
        &project,
        &[("TEST_DATABASE_URL", &rotated), ("TEST_JWT_SECRET", &jwt)],
        "rotated",
    );
    assert_eq!(third.run.code, 0, "{:?}", third.run);
    assert_hidden(&third, &[&url, &jwt, &rotated]);
    let new_version = live_version(&fake);
    assert_ne!(new_version, version, "a new value is a new version");
    assert_eq!(
        secret_data(&fake, &new_version)["DATABASE_URL"],
        encode(&rotated)
    );
    assert_eq!(secret_data(&fake, &version)["DATABASE_URL"], encode(&url));
    assert_eq!(revision(&fake), "2", "and a new rollout");

    // A rollback takes the template back to revision 1, which reads the first version: the
    // values roll back with the Deployment.
    let back = in_actions(
        project.command_in("rollback", &[], &project.path("rollback")),
        &[],
        &project.path("rollback"),
    );
    assert_eq!(back.run.code, 0, "{:?}", back.run);
    assert_eq!(live_version(&fake), version);
    assert_eq!(secret_data(&fake, &version)["DATABASE_URL"], encode(&url));
    assert_hidden(&back, &[&url, &jwt, &rotated]);
}

#[test]
fn a_variable_without_a_value_is_exit_2_naming_it_and_nothing_is_written() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let fake = FakeKube::start();
    let project = project(&fake);
    let url = value("postgres://app:pw@db");
    let config = project.path("promotion.yml");
    let line = crate::util::read(&config)
        .lines()
        .position(|l| l.contains("- { name: app-secrets"))
        .unwrap()
        + 1;

    // Empty, as `${{ secrets.TEST_JWT_SECRET }}` is when the GitHub secret does not exist.
    let image = format!("web=registry.example.com/team/web@{DIGEST_A}");
    for (verb, args) in [
        (
            "deploy",
            vec!["--image", image.as_str(), "--create-namespace"],
        ),
        ("run", vec!["--image", image.as_str(), "--create-namespace"]),
    ] {
        let out = project.path(&format!("missing-{verb}"));
        let written = in_actions(
            project.command_in(verb, &args, &out),
            &[("TEST_DATABASE_URL", &url), ("TEST_JWT_SECRET", "")],
            &out,
        );
        assert_eq!(written.run.code, 2, "{verb}: {:?}", written.run);
        let annotation = written
            .run
            .stdout
            .lines()
            .find(|l| l.starts_with("::error "))
            .unwrap_or_else(|| panic!("{verb}: an error annotation: {:?}", written.run));
        assert!(
            annotation.starts_with(&format!("::error file={},line={line},", config.display())),
            "{verb}: {annotation}"
        );
        assert!(
            annotation.contains(
                "::environments.testing.secrets.app-secrets.fromEnv.JWT_SECRET: environment \
                 variable TEST_JWT_SECRET (key JWT_SECRET of secret app-secrets) is empty"
            ),
            "{verb}: {annotation}"
        );
        assert_eq!(
            parse_file_commands(&crate::util::read(&out.join("outputs")))["outcome"],
            "invalid"
        );
        assert_hidden(&written, &[&url]);
    }
    assert!(
        fake.requests().is_empty(),
        "nothing reached the cluster: {:#?}",
        fake.requests()
    );
    assert!(fake.get("Namespace", "", "testing").is_none());
    assert!(fake.list("Secret", None).is_empty());
}

/// The object change of the object named `object` or, for `Kind/name-*`, of the only one whose
/// name starts so, in the plan report's cluster comparison.
fn cluster_change(report: &Value, object: &str) -> Value {
    let matches = |name: &str| match object.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == object,
    };
    let found: Vec<&Value> = report["changes"]["comparisons"]
        .as_array()
        .and_then(|sets| sets.iter().find(|s| s["against"] == "cluster"))
        .and_then(|set| set["environments"][0]["objects"].as_array())
        .into_iter()
        .flatten()
        .filter(|o| o["object"].as_str().is_some_and(matches))
        .collect();
    assert_eq!(found.len(), 1, "one change for {object}: {report:#}");
    found[0].clone()
}

#[test]
fn plan_shows_a_secret_changed_or_unchanged_without_its_value() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let fake = FakeKube::start();
    let project = project(&fake);
    let (url, jwt) = (value("postgres://app:pw@db"), value("jwt"));
    let deployed = deploy(
        &project,
        &[("TEST_DATABASE_URL", &url), ("TEST_JWT_SECRET", &jwt)],
        "deployed",
    );
    assert_eq!(deployed.run.code, 0, "{:?}", deployed.run);

    let plan = |variables: &[(&str, &str)], out: &str| {
        let image = format!("web=registry.example.com/team/web@{DIGEST_A}");
        let written = in_actions(
            project.command_in(
                "plan",
                &["--image", &image, "--diff-cluster"],
                &project.path(out),
            ),
            variables,
            &project.path(out),
        );
        assert_eq!(written.run.code, 0, "{:?}", written.run);
        (written, report(&project, out, "plan"))
    };

    let (same, report) = plan(
        &[("TEST_DATABASE_URL", &url), ("TEST_JWT_SECRET", &jwt)],
        "same",
    );
    assert_hidden(&same, &[&url, &jwt]);
    assert_eq!(
        cluster_change(&report, "Secret/app-secrets-*")["change"],
        "unchanged",
        "{report:#}"
    );
    assert_eq!(
        cluster_change(&report, "Deployment/web")["change"],
        "unchanged",
        "{report:#}"
    );
    let files = crate::util::read(&project.path("same/testing/web.yaml"));
    assert!(files.contains("DATABASE_URL: \"*** sha256:"), "{files}");

    let rotated = value("postgres://app:new@db");
    let (changed, report) = plan(
        &[("TEST_DATABASE_URL", &rotated), ("TEST_JWT_SECRET", &jwt)],
        "changed",
    );
    assert_hidden(&changed, &[&url, &jwt, &rotated]);
    let secret = cluster_change(&report, "Secret/app-secrets-*");
    assert_eq!(
        secret["change"], "changed",
        "a new version, compared with the one the Deployment reads: {report:#}"
    );
    assert!(
        secret["note"]
            .as_str()
            .is_some_and(|n| n.contains("the one the live workloads read")),
        "{secret:#}"
    );
    let diff = secret["diff"].as_str().unwrap();
    assert!(
        diff.contains("-  DATABASE_URL: \"*** sha256:")
            && diff.contains("+  DATABASE_URL: \"*** sha256:"),
        "{diff}"
    );
    assert!(
        !diff.contains("-  JWT_SECRET") && !diff.contains("+  JWT_SECRET"),
        "an unchanged value is context only: {diff}"
    );
    assert_eq!(
        cluster_change(&report, "Deployment/web")["change"],
        "changed",
        "the pod template reads the new version: {report:#}"
    );

    // Without the variables (a pull request's plan): a warning, the Secret left out.
    let (without, _) = plan(&[], "without");
    assert!(
        without
            .run
            .stdout
            .contains("::warning title=promote plan::environment testing: 2 variables"),
        "{:?}",
        without.run
    );
    assert_hidden(&without, &[&url, &jwt, &rotated]);
}
