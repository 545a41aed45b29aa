//! `promote drift` through the binary (and as the action, from `INPUT_*`) against the fake API
//! server: two environments deployed by the binary, compared side by side before and after a
//! hand edit (exit 0, then 1). No Secret value may appear in anything either command writes.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::fake_kube::FakeKube;
use crate::util::{DIGEST_A, Run, parse_file_commands, promote, run};

/// Values that must never be printed: one per environment, each unlike anything else here.
const STAGING_TOKEN: &str = "staging-tok-3a91c07e55d2";
const PRODUCTION_TOKEN: &str = "production-tok-b82f4410c6a9";

/// Staging and production, declared equal but for replicas; both read `app-secrets`: in staging
/// one someone created, in production one promote-action makes from the job's `PROD_TOKEN`.
const PROMOTION: &str = "registry: registry.example.com
services:
  - name: web
    image: team/web
    manifests: web
    port: 8080
environments:
  - name: staging
    namespace: staging
    replicas: 1
    rollout: { timeout: 30s }
    config: { LOG_LEVEL: info }
    secrets: [app-secrets]
  - name: production
    namespace: production
    requires: staging
    replicas: 2
    rollout: { timeout: 30s }
    config: { LOG_LEVEL: info }
    secrets:
      - { name: app-secrets, fromEnv: { TOKEN: PROD_TOKEN } }
";

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: registry.example.com/team/web:latest
          ports: [{name: http, containerPort: 8080}]
";

struct Project {
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

/// One run of the binary and the files it wrote.
struct Written {
    run: Run,
    summary: String,
    outputs: String,
    report: String,
}

impl Written {
    /// Everything the run wrote or printed, but the `::add-mask::` commands: the runner reads
    /// those and never shows them.
    fn everything(&self) -> String {
        let stdout: Vec<&str> = self
            .run
            .stdout
            .lines()
            .filter(|l| !l.starts_with("::add-mask::"))
            .collect();
        format!(
            "{}\n{}\n{}\n{}\n{}",
            stdout.join("\n"),
            self.run.stderr,
            self.summary,
            self.outputs,
            self.report
        )
    }
}

impl Project {
    fn new(fake: &FakeKube) -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("web")).unwrap();
        std::fs::write(dir.path().join("promotion.yml"), PROMOTION).unwrap();
        std::fs::write(dir.path().join("web/deployment.yaml"), DEPLOYMENT).unwrap();
        let kubeconfig = fake.write_kubeconfig(dir.path());
        Project { dir, kubeconfig }
    }

    /// `promote <verb> <args> --kubeconfig-path … --output-dir <out>` with a job summary and an
    /// outputs file in `out`, as the runner gives them.
    fn run(&self, verb: &str, args: &[&str], out: &Path, variables: &[(&str, &str)]) -> Written {
        std::fs::create_dir_all(out).unwrap();
        let (summary, outputs) = (out.join("summary.md"), out.join("outputs"));
        let mut cmd = promote();
        cmd.arg("--config")
            .arg(self.dir.path().join("promotion.yml"))
            .arg(verb)
            .args(args)
            .arg("--kubeconfig-path")
            .arg(&self.kubeconfig)
            .arg("--output-dir")
            .arg(out)
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("GITHUB_OUTPUT", &outputs)
            .envs(variables.iter().copied());
        let run = run(&mut cmd);
        let optional = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
        Written {
            summary: optional(&summary),
            outputs: optional(&outputs),
            report: optional(&out.join(format!("promote-{verb}.json"))),
            run,
        }
    }

    /// The namespace (and in staging its `app-secrets`, as someone created it), then
    /// `promote deploy` of DIGEST_A with `PROD_TOKEN` set to `token`.
    fn deploy(&self, fake: &FakeKube, environment: &str, token: &str) -> Written {
        fake.put(json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": environment },
        }));
        if environment == "staging" {
            fake.put(json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": { "name": "app-secrets", "namespace": environment },
                "data": { "TOKEN": base64::engine::general_purpose::STANDARD.encode(token) },
            }));
        }
        let image = format!("web=registry.example.com/team/web@{DIGEST_A}");
        let out = self.dir.path().join(format!("deploy-{environment}"));
        let deployed = self.run(
            "deploy",
            &["--environment", environment, "--image", &image],
            &out,
            &[("PROD_TOKEN", token)],
        );
        assert_eq!(deployed.run.code, 0, "{:?}", deployed.run);
        deployed
    }

    /// `promote drift`, as a scheduled job runs it: without the Secrets' variables.
    fn drift(&self, out: &str) -> Written {
        self.run("drift", &[], &self.dir.path().join(out), &[])
    }

    /// `command: drift` as the runner starts the action: no arguments, the inputs as
    /// `INPUT_*` variables.
    fn drift_action(&self, out: &str) -> Written {
        let out = self.dir.path().join(out);
        std::fs::create_dir_all(&out).unwrap();
        let (summary, outputs) = (out.join("summary.md"), out.join("outputs"));
        let mut cmd = promote();
        cmd.env("GITHUB_ACTIONS", "true")
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("GITHUB_OUTPUT", &outputs)
            .env("INPUT_COMMAND", "drift")
            .env("INPUT_CONFIG", self.dir.path().join("promotion.yml"))
            .env("INPUT_KUBECONFIG-PATH", &self.kubeconfig)
            .env("INPUT_OUTPUT-DIR", &out);
        let run = run(&mut cmd);
        Written {
            summary: std::fs::read_to_string(&summary).unwrap_or_default(),
            outputs: std::fs::read_to_string(&outputs).unwrap_or_default(),
            report: std::fs::read_to_string(out.join("promote-drift.json")).unwrap_or_default(),
            run,
        }
    }
}

/// What `kubectl edit` leaves when someone adds `DEBUG=1` to container `web` of `deployment`:
/// the field owned by the manager `kubectl-edit`.
pub fn kubectl_edit(fake: &FakeKube, namespace: &str, deployment: &str) {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let api: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
            kube::Api::namespaced(fake.client().await, namespace);
        let patch = json!({ "spec": { "template": { "spec": { "containers": [
            { "name": "web", "env": [{ "name": "DEBUG", "value": "1" }] },
        ] } } } });
        let params = kube::api::PatchParams {
            field_manager: Some("kubectl-edit".into()),
            ..kube::api::PatchParams::default()
        };
        api.patch(deployment, &params, &kube::api::Patch::Strategic(&patch))
            .await
            .unwrap();
    });
}

fn assert_no_secret(text: &str) {
    for value in [STAGING_TOKEN, PRODUCTION_TOKEN] {
        let encoded = base64::engine::general_purpose::STANDARD.encode(value);
        for form in [value.to_string(), encoded] {
            assert!(!text.contains(&form), "{form} leaked:\n{text}");
        }
    }
}

/// The class of the first row whose label-like `aspect` matches, in the JSON report.
fn class_of(report: &Value, aspect: &Value) -> Value {
    report["services"][0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            aspect
                .as_object()
                .unwrap()
                .iter()
                .all(|(k, v)| &r["aspect"][k] == v)
        })
        .unwrap_or_else(|| panic!("no row {aspect}: {:#}", report["services"][0]["rows"]))["class"]
        .clone()
}

#[test]
fn a_hand_edit_in_production_is_reported_with_its_manager_and_fails_the_check() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let fake = FakeKube::start();
    let project = Project::new(&fake);
    let deploys = [
        project.deploy(&fake, "staging", STAGING_TOKEN),
        project.deploy(&fake, "production", PRODUCTION_TOKEN),
    ];
    for deployed in &deploys {
        assert_no_secret(&deployed.everything());
    }
    assert!(
        fake.list("Secret", Some("production")).iter().any(|s| {
            s["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("app-secrets-"))
        }),
        "a version of app-secrets made from PROD_TOKEN"
    );

    // As promoted: replicas and the Secret's value differ, as promotion.yml declares.
    let before = project.drift("before");
    assert_eq!(before.run.code, 0, "{:?}", before.run);
    let report: Value = serde_json::from_str(&before.report).expect("promote-drift.json");
    assert_eq!(class_of(&report, &json!({"kind": "replicas"})), "declared");
    assert_eq!(
        class_of(&report, &json!({"kind": "env", "name": "TOKEN"})),
        "declared"
    );
    assert_eq!(class_of(&report, &json!({"kind": "image"})), Value::Null);
    assert_eq!(report["services"][0]["hand_edits"], json!([]));
    assert!(
        before.summary.contains("✅ **No undeclared drift**"),
        "{}",
        before.summary
    );
    assert!(
        before
            .summary
            .contains("| **env TOKEN (web)** | 🔒 <code>sha256:"),
        "{}",
        before.summary
    );
    assert_eq!(parse_file_commands(&before.outputs)["outcome"], "success");
    assert_no_secret(&before.everything());

    // `kubectl edit` in production: an environment variable added under another manager.
    kubectl_edit(&fake, "production", "web");

    let after = project.drift_action("after");
    assert_eq!(
        after.run.code, 1,
        "exit 1 on undeclared drift: {:?}",
        after.run
    );
    let report: Value = serde_json::from_str(&after.report).expect("promote-drift.json");
    assert_eq!(
        class_of(&report, &json!({"kind": "env", "name": "DEBUG"})),
        "hand-edit"
    );
    let edits = report["services"][0]["hand_edits"].as_array().unwrap();
    assert_eq!(edits.len(), 1, "{edits:#?}");
    assert_eq!(
        (
            &edits[0]["environment"],
            &edits[0]["object"],
            &edits[0]["manager"],
            &edits[0]["operation"],
            &edits[0]["since_promotion"],
        ),
        (
            &json!("production"),
            &json!("deployment/web"),
            &json!("kubectl-edit"),
            &json!("Update"),
            &json!(true)
        )
    );
    assert_eq!(
        edits[0]["fields"],
        json!([".spec.template.spec.containers[name=\"web\"].env[name=\"DEBUG\"]"])
    );
    assert!(
        after
            .run
            .stderr
            .contains("hand edit: production deployment/web by kubectl-edit"),
        "{:?}",
        after.run
    );
    assert!(
        after.summary.contains("❌ **Undeclared drift**"),
        "{}",
        after.summary
    );
    assert!(
        after.summary.contains("✋ <code>kubectl-edit</code>"),
        "{}",
        after.summary
    );
    assert_eq!(parse_file_commands(&after.outputs)["outcome"], "failed");
    assert_no_secret(&after.everything());
}
