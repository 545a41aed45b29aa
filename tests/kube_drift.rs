//! `promote drift` against the fake API server: two environments deployed by the real binary,
//! compared side by side in-process (`pipeline::drift::run_drift`, the command's function), before
//! and after a hand edit. No Secret value may appear in anything it writes.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use promote_action::actions::{Console, Context, Outputs};
use promote_action::drift::Class;
use promote_action::pipeline::Runtime;
use promote_action::pipeline::drift::{DriftOptions, DriftRun, run_drift};
use promote_action::{cli, report};
use serde_json::json;

use crate::fake_kube::FakeKube;
use crate::util::{DIGEST_A, promote, read, run};

/// Values that must never be printed: one per environment, each unlike anything else here.
const STAGING_TOKEN: &str = "staging-tok-3a91c07e55d2";
const PRODUCTION_TOKEN: &str = "production-tok-b82f4410c6a9";

/// Staging and production, declared equal but for replicas; both read `app-secrets`.
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
    secrets: [app-secrets]
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

impl Project {
    fn new(fake: &FakeKube) -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("web")).unwrap();
        std::fs::write(dir.path().join("promotion.yml"), PROMOTION).unwrap();
        std::fs::write(dir.path().join("web/deployment.yaml"), DEPLOYMENT).unwrap();
        let kubeconfig = fake.write_kubeconfig(dir.path());
        Project { dir, kubeconfig }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("promotion.yml")
    }

    /// The namespace and its `app-secrets` (as someone created it, not promote-action), then
    /// `promote deploy` of DIGEST_A.
    fn deploy(&self, fake: &FakeKube, environment: &str, token: &str) {
        fake.put(json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": environment },
        }));
        fake.put(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": { "name": "app-secrets", "namespace": environment },
            "data": { "TOKEN": base64::engine::general_purpose::STANDARD.encode(token) },
        }));
        let image = format!("web=registry.example.com/team/web@{DIGEST_A}");
        let mut cmd = promote();
        cmd.arg("--config")
            .arg(self.config())
            .args(["deploy", "--environment", environment, "--image", &image])
            .arg("--kubeconfig-path")
            .arg(&self.kubeconfig)
            .arg("--output-dir")
            .arg(self.dir.path().join("deploy-out"));
        let deployed = run(&mut cmd);
        assert_eq!(deployed.code, 0, "{deployed:?}");
    }

    /// `promote drift` as the command runs it, with a job summary file and an output dir.
    fn drift(&self, out: &Path) -> (DriftRun, String) {
        std::fs::create_dir_all(out).unwrap();
        let summary = out.join("summary.md");
        let ctx = Context::from_vars(|name| match name {
            "GITHUB_STEP_SUMMARY" => Some(summary.display().to_string()),
            _ => None,
        });
        let console = Console::new(false);
        let mut outputs = Outputs::default();
        let mut rt = Runtime {
            ctx: &ctx,
            console: &console,
            outputs: &mut outputs,
        };
        // The global flags and the cluster flags exactly as the command line gives them.
        let argv: Vec<std::ffi::OsString> = vec![
            "promote".into(),
            "--config".into(),
            self.config().into(),
            "status".into(),
            "--kubeconfig-path".into(),
            self.kubeconfig.clone().into(),
        ];
        let parsed = cli::parse_from(argv).unwrap();
        let cli::Command::Status(status) = &parsed.command else {
            unreachable!()
        };
        let options = DriftOptions {
            environments: Vec::new(),
            cluster: status.cluster.clone(),
            output_dir: Some(out.to_path_buf()),
        };
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let drift = runtime
            .block_on(run_drift(&mut rt, &parsed.global, &options))
            .expect("drift runs");
        (drift, read(&summary))
    }
}

/// Everything the run wrote or would print: terminal text, summary, JSON report, and the
/// report's own Debug form.
fn everything_written(drift: &DriftRun, summary: &str, out: &Path) -> String {
    format!(
        "{}\n{summary}\n{}\n{:?}",
        report::drift::text(&drift.report),
        read(&out.join("promote-drift.json")),
        drift.report
    )
}

fn assert_no_secret(text: &str) {
    for value in [STAGING_TOKEN, PRODUCTION_TOKEN] {
        let encoded = base64::engine::general_purpose::STANDARD.encode(value);
        for form in [value.to_string(), encoded] {
            assert!(!text.contains(&form), "{form} leaked:\n{text}");
        }
    }
}

#[test]
fn a_hand_edit_in_production_is_reported_with_its_manager_and_fails_the_check() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let fake = FakeKube::start();
    let project = Project::new(&fake);
    project.deploy(&fake, "staging", STAGING_TOKEN);
    project.deploy(&fake, "production", PRODUCTION_TOKEN);

    // As promoted: replicas and the Secret's value differ, as promotion.yml declares.
    let out = project.dir.path().join("before");
    let (before, summary) = project.drift(&out);
    let text = report::drift::text(&before.report);
    assert!(!before.undeclared(), "{text}");
    assert_eq!(before.outcome().code(), 0, "{text}");
    let web = &before.report.services[0];
    let class_of = |drift: &DriftRun, label: &str| {
        drift.report.services[0]
            .rows
            .iter()
            .find(|r| r.aspect.label() == label)
            .unwrap_or_else(|| panic!("no row {label}: {:#?}", drift.report.services[0].rows))
            .class
    };
    assert_eq!(class_of(&before, "replicas"), Some(Class::Declared));
    assert_eq!(class_of(&before, "env TOKEN (web)"), Some(Class::Declared));
    assert_eq!(class_of(&before, "image (web)"), None);
    assert!(web.hand_edits.is_empty(), "{:#?}", web.hand_edits);
    assert!(summary.contains("✅ **No undeclared drift**"), "{summary}");
    assert!(
        summary.contains("| **env TOKEN (web)** | 🔒 <code>sha256:"),
        "{summary}"
    );
    assert_no_secret(&everything_written(&before, &summary, &out));

    // `kubectl edit` in production: an environment variable added under another manager.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = fake.client().await;
        let api: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
            kube::Api::namespaced(client, "production");
        let patch = json!({ "spec": { "template": { "spec": { "containers": [
            { "name": "web", "env": [{ "name": "DEBUG", "value": "1" }] },
        ] } } } });
        let params = kube::api::PatchParams {
            field_manager: Some("kubectl-edit".into()),
            ..kube::api::PatchParams::default()
        };
        api.patch("web", &params, &kube::api::Patch::Strategic(&patch))
            .await
            .unwrap();
    });

    let out = project.dir.path().join("after");
    let (after, summary) = project.drift(&out);
    let text = report::drift::text(&after.report);
    assert!(after.undeclared(), "{text}");
    assert_eq!(
        after.outcome().code(),
        1,
        "exit 1 on undeclared drift:\n{text}"
    );
    assert_eq!(class_of(&after, "env DEBUG (web)"), Some(Class::HandEdit));
    let edits = &after.report.services[0].hand_edits;
    assert_eq!(edits.len(), 1, "{edits:#?}");
    assert_eq!(
        (
            edits[0].environment.as_str(),
            edits[0].object.as_str(),
            edits[0].manager.as_str(),
            edits[0].operation.as_str(),
            edits[0].since_promotion,
        ),
        (
            "production",
            "deployment/web",
            "kubectl-edit",
            "Update",
            true
        )
    );
    assert_eq!(
        edits[0].fields,
        [".spec.template.spec.containers[name=\"web\"].env[name=\"DEBUG\"]"]
    );
    assert!(
        text.contains("hand edit: production deployment/web by kubectl-edit"),
        "{text}"
    );
    assert!(summary.contains("❌ **Undeclared drift**"), "{summary}");
    assert!(
        summary.contains("✋ <code>kubectl-edit</code>"),
        "{summary}"
    );
    assert_no_secret(&everything_written(&after, &summary, &out));
}
