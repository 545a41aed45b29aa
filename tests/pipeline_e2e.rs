//! The jobs of workflows-examples/promote.yml, end to end: the `promote` binary started exactly
//! as the Actions runner starts a Docker action (no arguments; INPUT_* variables with hyphens
//! kept; GITHUB_OUTPUT, GITHUB_STEP_SUMMARY and GITHUB_EVENT_PATH files in temp dirs), job after
//! job, against the real registry (htpasswd), the fake Kubernetes API (bearer token) and the
//! fake GitHub API.
//!
//! The binary is `PROMOTE_BIN` when set (scripts/test points it at the release build), else the
//! test profile's build of the same source.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::checks_server::{Answer, Route, TestService};
use crate::fake_github::{FakeGitHub, TokenKind};
use crate::fake_kube::FakeKube;
use crate::support::images;
use crate::support::registry::{Auth, Registry};
use crate::util::{Run, read, repo_root, run};

const OWNER: &str = "studysphere";
const REPO: &str = "app";
const SHA: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
const RUN_ID: &str = "7001";
const GITHUB_TOKEN: &str = "ghs_e2eWorkflowToken0123456789abcdefXYZ";
const REGISTRY_USER: &str = "ci-pusher";
const REGISTRY_PASSWORD: &str = "Registry-Pa55word-e2e-9f8e7d";
const SERVICES: [&str; 2] = ["auth-service", "course-service"];

/// Everything a promotion talks to, and the project it promotes.
struct World {
    registry: Registry,
    kube: FakeKube,
    github: FakeGitHub,
    /// The services' public URL per environment: what smoke checks sample.
    health: BTreeMap<&'static str, TestService>,
    project: tempfile::TempDir,
    /// Every file a job wrote (outputs, summaries, reports, logs), for the secret scan.
    written: Vec<(String, String)>,
    /// Production rolls out blue-green behind a Service per service, checked through the
    /// preview Service.
    blue_green_production: bool,
}

/// What one job left behind.
struct Job {
    run: Run,
    outputs: BTreeMap<String, String>,
    summary: String,
    report: Option<Value>,
}

impl World {
    /// `failing`: the environment whose service answers 500 to its smoke checks.
    fn new(failing: Option<&str>) -> World {
        World::with(failing, false)
    }

    fn with(failing: Option<&str>, blue_green_production: bool) -> World {
        let registry = Registry::start(Auth::Htpasswd(vec![(
            REGISTRY_USER.into(),
            REGISTRY_PASSWORD.into(),
        )]));
        let kube = FakeKube::start();
        let github = FakeGitHub::builder(OWNER, REPO)
            .token(GITHUB_TOKEN, TokenKind::WorkflowToken)
            .git_ref("main", SHA)
            .start();
        let mut health = BTreeMap::new();
        for env in ["development", "testing", "production"] {
            let answer = if failing == Some(env) {
                Answer::status(500).body("database unreachable")
            } else {
                Answer::ok("ok")
            };
            health.insert(
                env,
                TestService::http(vec![("/health", Route::always(answer))]),
            );
        }
        let project = tempfile::tempdir().unwrap();
        let world = World {
            registry,
            kube,
            github,
            health,
            project,
            written: Vec::new(),
            blue_green_production,
        };
        world.write_project();
        world
    }

    fn config(&self) -> PathBuf {
        self.project.path().join("promotion.yml")
    }

    fn write_project(&self) {
        let root = self.project.path();
        let url = |env: &str| self.health[env].url("").trim_end_matches('/').to_string();
        let smoke = "    checks:\n      smoke:\n        - { name: health, path: /health, samples: 20, concurrency: 4, readinessTimeout: 2s }\n";
        let production = if self.blue_green_production {
            "    strategy: blue-green\n    checks:\n      smoke:\n        - { name: auth, via: service-proxy, service: auth-service, path: /health, readinessTimeout: 10s }\n        - { name: course, via: service-proxy, service: course-service, path: /health, readinessTimeout: 10s }\n"
        } else {
            smoke
        };
        std::fs::write(
            self.config(),
            format!(
                "registry: {registry}
services:
  - {{ name: auth-service, image: studysphere/auth-service, manifests: services/auth-service, port: 3001 }}
  - {{ name: course-service, image: studysphere/course-service, manifests: services/course-service, port: 3002 }}
environments:
  - name: development
    namespace: development
    url: {dev}
    approval: {{ branches: [main] }}
    replicas: 1
    rollout: {{ timeout: 60s }}
{smoke}    onFailure: rollback
  - name: testing
    namespace: testing
    url: {test}
    requires: development
    approval: {{ reviewers: [team:qa], branches: [main] }}
    replicas: 2
    rollout: {{ timeout: 60s }}
{smoke}    onFailure: rollback
  - name: production
    namespace: production
    url: {prod}
    requires: testing
    approval: {{ reviewers: [team:product-owners], waitTimer: 5m, preventSelfReview: true, branches: [main] }}
    replicas: 2
    rollout: {{ timeout: 60s }}
{production}    onFailure: rollback
",
                registry = self.registry.addr,
                dev = url("development"),
                test = url("testing"),
                prod = url("production"),
            ),
        )
        .unwrap();
        for (service, port) in [("auth-service", 3001), ("course-service", 3002)] {
            let dir = root.join("services").join(service);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(
                dir.join("deployment.yaml"),
                format!(
                    "apiVersion: apps/v1
kind: Deployment
metadata: {{ name: {service}, labels: {{ app: {service} }} }}
spec:
  selector: {{ matchLabels: {{ app: {service} }} }}
  template:
    metadata: {{ labels: {{ app: {service} }} }}
    spec:
      containers:
        - name: {service}
          image: studysphere/{service}:latest
          ports: [{{ name: http, containerPort: {port} }}]
"
                ),
            )
            .unwrap();
            if self.blue_green_production {
                std::fs::write(
                    dir.join("service.yaml"),
                    format!(
                        "apiVersion: v1
kind: Service
metadata: {{ name: {service}, labels: {{ app: {service} }} }}
spec:
  selector: {{ app: {service} }}
  ports: [{{ name: http, port: {port}, targetPort: http }}]
"
                    ),
                )
                .unwrap();
            }
        }
    }

    /// Runs one job's step the way the runner does, with this run's context.
    fn job(&mut self, name: &str, inputs: &[(&str, &str)], git_ref: &str) -> Job {
        let dir = self.project.path().join("jobs").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let output = dir.join("output");
        let summary = dir.join("summary");
        let event = dir.join("event.json");
        let temp = dir.join("runner_temp");
        std::fs::create_dir_all(&temp).unwrap();
        std::fs::write(
            &event,
            serde_json::json!({
                "ref": git_ref, "after": SHA,
                "repository": {"full_name": format!("{OWNER}/{REPO}"), "default_branch": "main"},
                "pusher": {"name": "octocat"},
            })
            .to_string(),
        )
        .unwrap();
        let mut cmd = binary();
        cmd.current_dir(self.project.path())
            .env("GITHUB_ACTIONS", "true")
            .env("CI", "true")
            .env("GITHUB_OUTPUT", &output)
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("GITHUB_EVENT_PATH", &event)
            .env("GITHUB_EVENT_NAME", "push")
            .env("GITHUB_SERVER_URL", "https://github.com")
            .env("GITHUB_API_URL", self.github.url())
            .env("GITHUB_REPOSITORY", format!("{OWNER}/{REPO}"))
            .env("GITHUB_RUN_ID", RUN_ID)
            .env("GITHUB_RUN_ATTEMPT", "1")
            .env("GITHUB_SHA", SHA)
            .env("GITHUB_REF", git_ref)
            .env("GITHUB_REF_NAME", git_ref.trim_start_matches("refs/heads/"))
            .env("GITHUB_ACTOR", "octocat")
            .env("GITHUB_JOB", name)
            .env("GITHUB_WORKSPACE", self.project.path())
            .env("RUNNER_TEMP", &temp);
        let common = [
            ("config", "promotion.yml".to_string()),
            ("github-token", GITHUB_TOKEN.to_string()),
            ("registry-username", REGISTRY_USER.to_string()),
            ("registry-password", REGISTRY_PASSWORD.to_string()),
            ("kubeconfig", self.kube.kubeconfig_yaml()),
        ];
        for (input, value) in common
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .chain(inputs.iter().copied())
        {
            // The runner upper-cases the name and keeps hyphens.
            cmd.env(format!("INPUT_{}", input.to_uppercase()), value);
        }
        let run = run(&mut cmd);
        let outputs = if output.exists() {
            crate::util::parse_file_commands(&read(&output))
        } else {
            BTreeMap::new()
        };
        let summary = if summary.exists() {
            read(&summary)
        } else {
            String::new()
        };
        let report: Option<Value> = outputs
            .get("report-path")
            .map(|p| serde_json::from_str(&read(Path::new(p))).expect("the report is JSON"));
        // To look at the summaries rendered: E2E_SUMMARY_DIR=/tmp/s cargo test pipeline_e2e
        if let Some(keep) = std::env::var_os("E2E_SUMMARY_DIR") {
            let keep = PathBuf::from(keep);
            std::fs::create_dir_all(&keep).unwrap();
            std::fs::write(keep.join(format!("{name}.md")), &summary).unwrap();
        }
        self.written
            .push((format!("{name}: stdout"), run.stdout.clone()));
        self.written
            .push((format!("{name}: stderr"), run.stderr.clone()));
        self.written
            .push((format!("{name}: summary"), summary.clone()));
        self.written
            .push((format!("{name}: outputs"), format!("{outputs:?}")));
        if let Some(r) = &report {
            self.written
                .push((format!("{name}: report"), r.to_string()));
        }
        Job {
            run,
            outputs,
            summary,
            report,
        }
    }

    /// The build job: pushes each service's image (an OCI layout the build left) by digest.
    fn build(&mut self) -> BTreeMap<&'static str, String> {
        let mut digests = BTreeMap::new();
        for service in SERVICES {
            let layout = images::layout(&[2048, 4096]);
            let image = format!("{}/studysphere/{service}", self.registry.addr);
            let job = self.job(
                &format!("build-{service}"),
                &[
                    ("command", "push"),
                    ("source", layout.path().to_str().unwrap()),
                    ("images", &image),
                    ("tags", "build-4b825dc"),
                ],
                "refs/heads/main",
            );
            assert_eq!(job.run.code, 0, "build of {service}: {:?}", job.run);
            digests.insert(service, job.outputs["digest"].clone());
        }
        digests
    }

    /// The promote.yml job for `env`; `images` only for development.
    fn promote(&mut self, env: &str, images_input: Option<&str>, git_ref: &str) -> Job {
        let mut inputs = vec![
            ("command", "run"),
            ("environment", env),
            ("create-namespace", "true"),
        ];
        if let Some(images) = images_input {
            inputs.push(("images", images));
        }
        self.job(env, &inputs, git_ref)
    }

    /// The image each service's Deployment runs in `namespace`.
    fn running(&self, namespace: &str) -> BTreeMap<String, String> {
        SERVICES
            .iter()
            .filter_map(|s| {
                let d = self.kube.get("Deployment", namespace, s)?;
                let image = d["spec"]["template"]["spec"]["containers"][0]["image"]
                    .as_str()?
                    .to_string();
                Some((s.to_string(), image))
            })
            .collect()
    }

    /// Our states posted to the deployments of `env`, oldest first, per deployment.
    fn states(&self, env: &str) -> Vec<Vec<String>> {
        self.github
            .deployments()
            .iter()
            .filter(|d| d.environment() == env)
            .map(|d| d.states().into_iter().rev().collect())
            .collect()
    }

    #[track_caller]
    fn assert_no_secret_anywhere(&self) {
        let kube_token = self.kube.token();
        for (what, text) in &self.written {
            // `::add-mask::` is how the runner learns a secret; it never shows that line.
            let text: String = text
                .lines()
                .filter(|l| !l.starts_with("::add-mask::"))
                .collect::<Vec<_>>()
                .join("\n");
            for secret in [GITHUB_TOKEN, REGISTRY_PASSWORD, kube_token.as_str()] {
                assert!(
                    !text.contains(secret),
                    "a secret appears in {what}:\n{text}"
                );
            }
        }
    }
}

fn binary() -> Command {
    let path = std::env::var_os("PROMOTE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_promote")));
    let mut cmd = Command::new(path);
    for (key, _) in std::env::vars() {
        if key.starts_with("GITHUB_")
            || key.starts_with("INPUT_")
            || key.starts_with("RUNNER_")
            || key.starts_with("PROMOTE_")
            || key.starts_with("ACTIONS_")
            || key == "CI"
            || key == "KUBECONFIG"
        {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(repo_root());
    cmd
}

fn images_input(world: &World, digests: &BTreeMap<&str, String>) -> String {
    digests
        .iter()
        .map(|(s, d)| format!("{s}={}/studysphere/{s}@{d}\n", world.registry.addr))
        .collect()
}

#[test]
fn one_release_goes_through_all_three_environments() {
    let mut world = World::new(None);
    let digests = world.build();
    let images = images_input(&world, &digests);

    // development declares `environment:`: GitHub made a deployment for the job already.
    let job_deployment = world
        .github
        .create_job_deployment("development", SHA, RUN_ID);
    let dev = world.promote("development", Some(&images), "refs/heads/main");
    assert_eq!(dev.run.code, 0, "{:?}", dev.run);
    assert_eq!(dev.outputs["outcome"], "success");
    // GitHub closes its job deployment when the job ends, after the action's own status.
    let job_url = format!("https://github.com/{OWNER}/{REPO}/actions/runs/{RUN_ID}/job/1");
    world
        .github
        .add_status(job_deployment, "success", Some(&job_url));
    assert_eq!(
        dev.outputs["environment-url"],
        world.health["development"].url("").trim_end_matches('/')
    );
    // testing: no job deployment (`deployment: false`): the action creates one.
    let testing = world.promote("testing", None, "refs/heads/main");
    assert_eq!(testing.run.code, 0, "{:?}", testing.run);
    let production = world.promote("production", None, "refs/heads/main");
    assert_eq!(production.run.code, 0, "{:?}", production.run);

    // The same digests run in all three namespaces.
    for namespace in ["development", "testing", "production"] {
        let running = world.running(namespace);
        for (service, digest) in &digests {
            let image = &running[*service];
            assert!(
                image.ends_with(&format!("@{digest}")),
                "{namespace}/{service} runs {image}, not {digest}"
            );
        }
    }
    // Copied into each environment's tag, by digest.
    for env in ["development", "testing", "production"] {
        for service in SERVICES {
            assert!(
                world
                    .registry
                    .has_tag(&format!("studysphere/{service}"), env),
                "{service}:{env} was not tagged"
            );
        }
    }

    // GitHub: no duplicate for development; statuses in order on each.
    assert_eq!(
        world.states("development").len(),
        1,
        "one deployment for development"
    );
    assert_eq!(
        world
            .github
            .deployment(job_deployment)
            .unwrap()
            .states()
            .into_iter()
            .rev()
            .collect::<Vec<_>>(),
        ["in_progress", "in_progress", "success", "success"],
        "GitHub's in_progress, ours, then GitHub's own at the job's end"
    );
    for env in ["testing", "production"] {
        assert_eq!(world.states(env), [["in_progress", "success"]], "{env}");
    }
    let created = world
        .github
        .requests_to("POST", &format!("/repos/{OWNER}/{REPO}/deployments"))
        .into_iter()
        .filter(|r| !r.path.contains("/statuses"))
        .collect::<Vec<_>>();
    assert_eq!(created.len(), 2, "testing and production created");
    for request in &created {
        assert_eq!(request.body["auto_merge"], false);
        assert_eq!(request.body["required_contexts"], serde_json::json!([]));
        for (service, digest) in &digests {
            assert_eq!(
                request.body["payload"]["promote"]["digests"][*service],
                *digest
            );
        }
    }
    assert_eq!(created[1].body["production_environment"], true);

    // Outputs, reports and summaries.
    for job in [&dev, &testing, &production] {
        assert_eq!(job.outputs["outcome"], "success");
        assert!(job.summary.len() < 1024 * 1024);
        assert!(job.summary.contains("```mermaid"), "{}", job.summary);
        let report = job.report.as_ref().expect("a report");
        assert_eq!(report["outcome"], "success");
    }
    assert_eq!(
        production.report.as_ref().unwrap()["release"]["source"],
        "environment:testing"
    );

    // status: every environment side by side, the same digests everywhere, who and the outcome.
    let status = world.job("status", &[("command", "status")], "refs/heads/main");
    assert_eq!(status.run.code, 0, "{:?}", status.run);
    let report = status.report.as_ref().expect("a status report");
    let environments = report["environments"].as_array().unwrap();
    assert_eq!(environments.len(), 3);
    for env in environments {
        assert_eq!(env["last_outcome"], "success", "{env}");
        for service in env["services"].as_array().unwrap() {
            let name = service["service"].as_str().unwrap();
            assert_eq!(service["digest"], digests[name].as_str(), "{env}");
            assert_eq!(service["verified_digest"], digests[name].as_str());
            assert_eq!(service["deployed_by"], "octocat");
            assert_eq!(service["git_sha"], SHA);
        }
    }
    let short = &digests["auth-service"]["sha256:".len()..][..12];
    assert!(status.summary.contains(short), "{}", status.summary);
    assert!(status.run.stderr.contains(short), "{}", status.run.stderr);
    world.assert_no_secret_anywhere();
}

#[test]
fn a_failure_in_testing_blocks_production() {
    let mut world = World::new(Some("testing"));
    let digests = world.build();
    let images = images_input(&world, &digests);
    let dev = world.promote("development", Some(&images), "refs/heads/main");
    assert_eq!(dev.run.code, 0, "{:?}", dev.run);

    let testing = world.promote("testing", None, "refs/heads/main");
    assert_eq!(testing.run.code, 1, "{:?}", testing.run);
    assert_eq!(testing.outputs["outcome"], "failed");
    assert_eq!(world.states("testing"), [["in_progress", "failure"]]);
    // Rolled back: the first deploy of testing leaves nothing running the new digests
    // verified, and the summary says why first.
    assert!(testing.summary.contains("health"), "{}", testing.summary);

    let production = world.promote("production", None, "refs/heads/main");
    assert_eq!(production.run.code, 3, "{:?}", production.run);
    assert_eq!(production.outputs["outcome"], "refused");
    assert!(
        production.run.stderr.contains("testing") && production.run.stderr.contains("refused"),
        "{}",
        production.run.stderr
    );
    assert!(
        world.running("production").is_empty(),
        "nothing deployed to production"
    );
    assert_eq!(world.states("production"), [["in_progress", "failure"]]);
    world.assert_no_secret_anywhere();
}

#[test]
fn the_gate_refuses_a_wrong_branch_and_a_lower_environment_changed_by_hand() {
    let mut world = World::new(None);
    let digests = world.build();
    let images = images_input(&world, &digests);

    let feature = world.promote("development", Some(&images), "refs/heads/feature/x");
    assert_eq!(feature.run.code, 3, "{:?}", feature.run);
    assert!(
        feature.run.stderr.contains("feature/x"),
        "{}",
        feature.run.stderr
    );
    assert!(world.running("development").is_empty());

    // By tag this time: resolved to the build's digests once, and those are what run.
    let by_tag: String = SERVICES
        .iter()
        .map(|s| {
            format!(
                "{s}={}/studysphere/{s}:build-4b825dc\n",
                world.registry.addr
            )
        })
        .collect();
    let dev = world.promote("development", Some(&by_tag), "refs/heads/main");
    assert_eq!(dev.run.code, 0, "{:?}", dev.run);
    for (service, digest) in &digests {
        assert!(world.running("development")[*service].ends_with(digest.as_str()));
    }
    // Someone changes development by hand: its cluster no longer runs what was verified.
    let mut deployment = world
        .kube
        .get("Deployment", "development", "auth-service")
        .unwrap();
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = Value::from(format!(
        "{}/studysphere/auth-service:hotfix",
        world.registry.addr
    ));
    world.kube.put(deployment);
    let testing = world.promote("testing", None, "refs/heads/main");
    assert_eq!(testing.run.code, 3, "{:?}", testing.run);
    assert!(
        testing.run.stderr.contains("auth-service"),
        "{}",
        testing.run.stderr
    );

    // skip-gate goes ahead, loudly.
    let mut world_inputs = vec![
        ("command", "run"),
        ("environment", "testing"),
        ("create-namespace", "true"),
        ("skip-gate", "true"),
    ];
    let fixed = format!(
        "auth-service={}/studysphere/auth-service@{}\ncourse-service={}/studysphere/course-service@{}",
        world.registry.addr,
        digests["auth-service"],
        world.registry.addr,
        digests["course-service"]
    );
    world_inputs.push(("images", fixed.as_str()));
    let skipped = world.job("testing-skip", &world_inputs, "refs/heads/main");
    assert_eq!(skipped.run.code, 0, "{:?}", skipped.run);
    assert!(skipped.summary.contains("CAUTION"), "{}", skipped.summary);
    world.assert_no_secret_anywhere();
}

/// Production blue-green: the release reaches a colour, that colour is marked verified (not a
/// plain Deployment that does not exist), and `status` reads the serving colour with both
/// colours beside it.
#[test]
fn a_blue_green_production_is_promoted_marked_and_shown_by_colour() {
    let mut world = World::with(None, true);
    let digests = world.build();
    let images = images_input(&world, &digests);
    for env in ["development", "testing", "production"] {
        let images = (env == "development").then_some(images.as_str());
        let job = world.promote(env, images, "refs/heads/main");
        assert_eq!(job.run.code, 0, "{env}: {:?}", job.run);
    }
    for (service, digest) in &digests {
        assert!(
            world
                .kube
                .get("Deployment", "production", service)
                .is_none(),
            "no plain {service} in production"
        );
        let blue = world
            .kube
            .get("Deployment", "production", &format!("{service}-blue"))
            .expect("the first release is blue");
        let annotations = &blue["metadata"]["annotations"];
        assert_eq!(
            annotations["promote.studysphere.dev/verified-digest"],
            digest.as_str()
        );
        let selector =
            &world.kube.get("Service", "production", service).unwrap()["spec"]["selector"];
        assert_eq!(selector["version"], "blue", "{selector}");
    }

    let status = world.job("status", &[("command", "status")], "refs/heads/main");
    assert_eq!(status.run.code, 0, "{:?}", status.run);
    let report = status.report.as_ref().expect("a status report");
    let production = &report["environments"][2];
    for service in production["services"].as_array().unwrap() {
        let name = service["service"].as_str().unwrap();
        assert_eq!(service["strategy"], "blue-green");
        assert_eq!(service["digest"], digests[name].as_str(), "{service}");
        assert_eq!(service["verified_digest"], digests[name].as_str());
        assert_eq!(service["blue_green"]["serving"], "blue", "{service}");
        assert!(
            service["blue_green"]["switched_at"].is_string(),
            "{service}"
        );
        assert_eq!(service["blue_green"]["colours"][0]["track"], "blue");
    }
    assert_eq!(
        report["environments"][0]["services"][0]["strategy"],
        "rolling"
    );
    assert!(
        status.summary.contains("🔵 blue serves · switched "),
        "{}",
        status.summary
    );
    assert!(
        status
            .run
            .stderr
            .contains("production auth-service: blue serves (switched "),
        "{}",
        status.run.stderr
    );
    world.assert_no_secret_anywhere();
}
