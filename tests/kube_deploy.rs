//! `deploy`, `rollback` and `history`, end to end: the real binary against the fake API server
//! (tests/fake_kube), through a real kubeconfig.

use std::time::Duration;

use serde_json::Value;

use crate::fake_kube::{Behavior, FakeKube, Fault, WatchDrop};
use crate::support::project::Project;
use crate::util::{DIGEST_A, DIGEST_B, promote, read, run};

/// A digest whose pods crash (the test sets that behaviour on it).
pub const DIGEST_CRASH: &str =
    "sha256:c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ff";
/// A digest whose pods cannot pull their image.
pub const DIGEST_PULL: &str =
    "sha256:badbadbadbadbadbadbadbadbadbadbadbadbadbadbadbadbadbadbadbadbadb";
/// A digest whose pods become ready slowly.
pub const DIGEST_SLOW: &str =
    "sha256:5105105105105105105105105105105105105105105105105105105105105105";

/// The environment lines every deploy test starts from.
const STAGING: &str = "    replicas: 2
    rollout: { timeout: 30s }
    config: { LOG_LEVEL: info }
    onFailure: rollback
";

const SERVICE_YAML: &str = "apiVersion: v1
kind: Service
metadata: {name: web, labels: {app: web}}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
";

/// Environment `staging` with [`STAGING`] and `extra` (e.g. `    hooks: …`), Service `web`,
/// the fake's kubeconfig, and deploys that create the namespace.
pub fn staging(fake: &FakeKube, extra: &str) -> Project {
    staging_with_service(fake, extra, SERVICE_YAML)
}

/// [`staging`] with another Service manifest.
pub fn staging_with_service(fake: &FakeKube, extra: &str, service_yaml: &str) -> Project {
    Project::new("staging", &format!("{STAGING}{extra}"))
        .with_manifest("service.yaml", service_yaml)
        .with_kubeconfig(&fake.kubeconfig_yaml())
        .with_deploy_args(&["--create-namespace"])
}

fn image_of(deployment: &Value) -> String {
    deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn revision_of(deployment: &Value) -> Option<i64> {
    deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
        .as_str()?
        .parse()
        .ok()
}

/// kubectl's rule, read from the stored object: every replica updated and available.
fn healthy(deployment: &Value) -> bool {
    let status = &deployment["status"];
    let want = deployment["spec"]["replicas"].as_i64().unwrap_or(1);
    deployment["metadata"]["generation"] == status["observedGeneration"]
        && status["updatedReplicas"].as_i64() == Some(want)
        && status["availableReplicas"].as_i64() == Some(want)
        && status["replicas"].as_i64() == Some(want)
}

fn fake() -> FakeKube {
    FakeKube::builder()
        .pod_behavior(&DIGEST_CRASH[7..19], Behavior::CrashLoop)
        .pod_behavior(&DIGEST_PULL[7..19], Behavior::PullFailure)
        .pod_behavior(
            &DIGEST_SLOW[7..19],
            Behavior::ReadyAfter(Duration::from_millis(1500)),
        )
        .start()
}

#[test]
fn deploys_fails_on_a_crash_rolls_back_and_the_previous_revision_is_healthy() {
    let fake = fake();
    let project = staging(&fake, "");

    let first = project.deploy(DIGEST_A, &[]);
    assert_eq!(first.code, 0, "{first:?}");
    let report = project.report("deploy");
    assert_eq!(report["outcome"], "success", "{report:#}");
    assert_eq!(report["workloads"][0]["revision_after"], 1, "{report:#}");
    assert!(
        first
            .stderr
            .contains("deployment/web rolled out (revision 1)"),
        "{first:?}"
    );
    assert!(first.stdout.contains("revision=1"), "{first:?}");
    let live = fake.get("Deployment", "staging", "web").unwrap();
    assert!(image_of(&live).ends_with(DIGEST_A));
    assert_eq!(
        live["metadata"]["annotations"]["kubernetes.io/change-cause"],
        format!("promote-action: registry.example.com/team/web@{DIGEST_A} to staging")
    );

    let second = project.deploy(DIGEST_CRASH, &[]);
    assert_eq!(second.code, 1, "{second:?}");
    let report = project.report("deploy");
    assert_eq!(report["outcome"], "failed", "{report:#}");
    let web = &report["workloads"][0];
    assert_eq!(web["revision_before"], 1, "{report:#}");
    assert_eq!(web["rollout"], "failed", "{report:#}");
    assert_eq!(
        web["diagnosis"]["failure"]["reason"], "crash-loop",
        "{report:#}"
    );
    assert!(
        web["diagnosis"]["logs"]["lines"]
            .as_array()
            .is_some_and(|l| !l.is_empty()),
        "the failing container's log is in the report: {report:#}"
    );
    assert_eq!(web["rollback"]["outcome"], "rolled-back", "{report:#}");
    assert_eq!(web["rollback"]["to_revision"], 1, "{report:#}");
    assert_eq!(web["rollback"]["revision_after"], 3, "{report:#}");
    assert!(
        report["summary"].as_str().unwrap().contains("rolled back"),
        "{report:#}"
    );
    assert!(second.stderr.contains("CrashLoopBackOff"), "{second:?}");

    // The previous revision is back and healthy: image A, all replicas available.
    let live = fake.get("Deployment", "staging", "web").unwrap();
    assert!(image_of(&live).ends_with(DIGEST_A), "{live:#}");
    assert_eq!(revision_of(&live), Some(3));
    assert!(healthy(&live), "{live:#}");

    // A later deploy takes back the fields the rollback set without `force`.
    let third = project.deploy(DIGEST_B, &[]);
    assert_eq!(third.code, 0, "{third:?}");
    let live = fake.get("Deployment", "staging", "web").unwrap();
    assert!(image_of(&live).ends_with(DIGEST_B));
    assert!(healthy(&live));
}

#[test]
fn two_concurrent_deploys_are_serialized_by_the_lock() {
    let fake = fake();
    let project = staging(&fake, "");
    let prepared = project.deploy(DIGEST_A, &[]);
    assert_eq!(prepared.code, 0, "{prepared:?}");

    let image = |d: &str| format!("web=registry.example.com/team/web@{d}");
    let slow = image(DIGEST_SLOW);
    let b = image(DIGEST_B);
    let mut first = project.command_in(
        "deploy",
        &["--image", &slow],
        &project.dir.path().join("first"),
    );
    first
        .env("GITHUB_SERVER_URL", "https://github.com")
        .env("GITHUB_REPOSITORY", "octo/web")
        .env("GITHUB_RUN_ID", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let first = first.spawn().unwrap();
    // The first holds the lock once its lease exists.
    assert!(fake.wait_for(Duration::from_secs(20), |f| {
        f.get("Lease", "staging", "promote-staging-web").is_some()
    }));
    let mut second = project.command_in(
        "deploy",
        &["--image", &b],
        &project.dir.path().join("second"),
    );
    second
        .env("GITHUB_REPOSITORY", "octo/web")
        .env("GITHUB_RUN_ID", "2");
    let second = run(&mut second);
    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{first:?}");
    assert_eq!(second.code, 0, "{second:?}");
    assert!(
        second
            .stderr
            .contains("held by https://github.com/octo/web/actions/runs/1"),
        "the waiting run says who holds the lock: {second:?}"
    );
    let report: Value = serde_json::from_str(&read(
        &project.dir.path().join("second/promote-deploy.json"),
    ))
    .unwrap();
    assert!(
        report["locks"][0]["waited_ms"].as_u64().unwrap() > 0,
        "{report:#}"
    );
    // Serialized: the second applied after the first's rollout; the last one wins.
    let live = fake.get("Deployment", "staging", "web").unwrap();
    assert!(image_of(&live).ends_with(DIGEST_B));
    assert!(
        fake.get("Lease", "staging", "promote-staging-web")
            .is_none(),
        "released"
    );
}

#[test]
fn a_held_lock_times_out_with_exit_3_naming_the_holder() {
    let fake = fake();
    let project = staging(&fake, "");
    let prepared = project.deploy(DIGEST_A, &[]);
    assert_eq!(prepared.code, 0, "{prepared:?}");
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    fake.put(serde_json::json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": { "name": "promote-staging-web", "namespace": "staging" },
        "spec": {
            "holderIdentity": "https://github.com/octo/web/actions/runs/41",
            "leaseDurationSeconds": 600,
            "acquireTime": now,
            "renewTime": now,
        },
    }));
    let refused = project.deploy(DIGEST_B, &["--lock-timeout", "1s"]);
    assert_eq!(refused.code, 3, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("held by https://github.com/octo/web/actions/runs/41"),
        "{refused:?}"
    );
    assert!(refused.stdout.contains("outcome=refused"), "{refused:?}");
    let live = fake.get("Deployment", "staging", "web").unwrap();
    assert!(image_of(&live).ends_with(DIGEST_A), "nothing applied");

    // An expired lease is taken over.
    let long_ago = "2020-01-01T00:00:00.000000Z";
    let mut lease = fake.get("Lease", "staging", "promote-staging-web").unwrap();
    lease["spec"]["renewTime"] = long_ago.into();
    lease["spec"]["leaseDurationSeconds"] = 60.into();
    fake.put(lease);
    let taken = project.deploy(DIGEST_B, &["--lock-timeout", "1s"]);
    assert_eq!(taken.code, 0, "{taken:?}");
    let report = project.report("deploy");
    assert_eq!(
        report["locks"][0]["took_over_from"],
        "https://github.com/octo/web/actions/runs/41"
    );
}

#[test]
fn a_rejected_object_changes_nothing() {
    let fake = fake();
    // A Service without ports: the API server refuses it (422 spec.ports: Required value).
    let project = staging_with_service(
        &fake,
        "",
        "apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}}
",
    );
    let namespace = serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "staging" },
    });
    fake.put(namespace);
    fake.clear_requests();
    let rejected = project.deploy(DIGEST_A, &[]);
    assert_eq!(rejected.code, 2, "{rejected:?}");
    assert!(
        rejected.stderr.contains("service/web was rejected"),
        "{rejected:?}"
    );
    assert!(rejected.stderr.contains("spec.ports"), "{rejected:?}");
    let writes: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET" && r.param("dryRun").as_deref() != Some("All"))
        .filter(|r| !r.path.ends_with("/namespaces/staging") && !r.path.ends_with("/namespaces"))
        .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
        .collect();
    assert!(writes.is_empty(), "nothing written: {writes:#?}");
    assert!(fake.get("Deployment", "staging", "web").is_none());
    assert!(
        fake.list("ConfigMap", Some("staging"))
            .iter()
            .all(|c| c["metadata"]["name"] == "kube-root-ca.crt")
    );
    assert!(
        fake.get("Lease", "staging", "promote-staging-web")
            .is_none()
    );
    let report = project.report("deploy");
    assert_eq!(report["outcome"], "invalid");
    assert_eq!(report["rejected"][0]["object"], "service/web", "{report:#}");
}

#[test]
fn a_missing_namespace_is_invalid_without_create_namespace() {
    let fake = fake();
    let project = staging(&fake, "");
    let image = format!("web=registry.example.com/team/web@{DIGEST_A}");
    let refused = run(&mut project.command("deploy", &["--image", &image]));
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("create-namespace"), "{refused:?}");
    assert!(fake.get("Namespace", "", "staging").is_none());
}

#[test]
fn pull_failures_are_classified_before_the_deadline_and_rolled_back() {
    let fake = fake();
    let project = staging(&fake, "");
    assert_eq!(project.deploy(DIGEST_A, &[]).code, 0);
    let started = std::time::Instant::now();
    let failed = project.deploy(DIGEST_PULL, &["--timeout", "5m"]);
    assert_eq!(failed.code, 1, "{failed:?}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "classified long before the 5m deadline"
    );
    let report = project.report("deploy");
    let web = &report["workloads"][0];
    assert_eq!(
        web["diagnosis"]["failure"]["reason"], "image-pull",
        "{report:#}"
    );
    assert!(
        web["diagnosis"]["events"]
            .as_array()
            .is_some_and(|e| !e.is_empty()),
        "{report:#}"
    );
    assert_eq!(web["rollback"]["outcome"], "rolled-back", "{report:#}");
    let live = fake.get("Deployment", "staging", "web").unwrap();
    assert!(image_of(&live).ends_with(DIGEST_A));
}

/// StatefulSets and DaemonSets are awaited by kubectl's rules too, and rolled back through their
/// ControllerRevisions.
#[test]
fn statefulsets_and_daemonsets_roll_out_and_back() {
    let fake = FakeKube::builder()
        .pod_behavior("-crash", Behavior::CrashLoop)
        .nodes(2)
        .start();
    let project = staging(&fake, "");
    let workers = |tag: &str| {
        let pod = |name: &str| {
            format!(
                "metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
        - name: {name}
          image: registry.example.com/team/{name}:{tag}"
            )
        };
        format!(
            "apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: cache}}
spec:
  serviceName: cache
  replicas: 2
  selector: {{matchLabels: {{app: cache}}}}
  template:
    {}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: agent}}
spec:
  selector: {{matchLabels: {{app: agent}}}}
  template:
    {}
",
            pod("cache"),
            pod("agent")
        )
    };
    let file = project.dir.path().join("web/workers.yaml");
    std::fs::write(&file, workers("1")).unwrap();
    let ok = project.deploy(DIGEST_A, &[]);
    assert_eq!(ok.code, 0, "{ok:?}");
    assert!(ok.stderr.contains("statefulset/cache rolled out"), "{ok:?}");
    assert!(ok.stderr.contains("daemonset/agent rolled out"), "{ok:?}");

    std::fs::write(&file, workers("2-crash")).unwrap();
    let failed = project.deploy(DIGEST_A, &[]);
    assert_eq!(failed.code, 1, "{failed:?}");
    let report = project.report("deploy");
    let by_name = |name: &str| {
        report["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("web")["awaited"], false, "{report:#}");
    for name in ["cache", "agent"] {
        let w = by_name(name);
        assert_eq!(w["rollout"], "failed", "{report:#}");
        assert_eq!(w["rollback"]["outcome"], "rolled-back", "{report:#}");
    }
    for (kind, name) in [("StatefulSet", "cache"), ("DaemonSet", "agent")] {
        let live = fake.get(kind, "staging", name).unwrap();
        assert!(image_of(&live).ends_with(":1"), "{kind} {name}: {live:#}");
    }
}

/// A digest made of `tag` and zeros, so a test can give it a behaviour by substring.
fn digest(tag: &str) -> String {
    format!("sha256:{tag}{}", "0".repeat(64 - tag.len()))
}

/// Each failure the fake's kubelet can play, classified as the report says, then rolled back.
#[test]
fn every_kind_of_failure_is_classified_and_rolled_back() {
    let cases: &[(&str, Behavior, &[&str], &str, &str)] = &[
        ("0001", Behavior::OomKilled, &[], "oom-killed", "failed"),
        (
            "0002",
            Behavior::MissingConfig,
            &[],
            "config-error",
            "failed",
        ),
        // Unschedulable is decisive only after 30 s; at a 3 s deadline it explains the timeout.
        (
            "0003",
            Behavior::Unschedulable,
            &["--timeout", "3s"],
            "unschedulable",
            "timed-out",
        ),
        (
            "0004",
            Behavior::NeverReady,
            &[],
            "progress-deadline-exceeded",
            "failed",
        ),
    ];
    let mut builder = FakeKube::builder();
    for (tag, behavior, _, _, _) in cases {
        builder = builder.pod_behavior(&digest(tag)[7..], behavior.clone());
    }
    let fake = builder.start();
    let project = staging(&fake, "");
    assert_eq!(project.deploy(DIGEST_A, &[]).code, 0);
    for (tag, _, args, reason, rollout) in cases {
        if *reason == "progress-deadline-exceeded" {
            // A short progress deadline: 1 s of real time at the fake's 10 ms per second.
            let deployment = project.dir.path().join("web/deployment.yaml");
            let yaml = read(&deployment).replace(
                "spec:\n  selector:",
                "spec:\n  progressDeadlineSeconds: 100\n  selector:",
            );
            std::fs::write(&deployment, yaml).unwrap();
        }
        let failed = project.deploy(&digest(tag), args);
        assert_eq!(failed.code, 1, "{reason}: {failed:?}");
        let report = project.report("deploy");
        let web = &report["workloads"][0];
        assert_eq!(web["diagnosis"]["failure"]["reason"], *reason, "{report:#}");
        assert_eq!(web["rollout"], *rollout, "{reason}: {report:#}");
        assert_eq!(
            web["rollback"]["outcome"], "rolled-back",
            "{reason}: {report:#}"
        );
        let live = fake.get("Deployment", "staging", "web").unwrap();
        assert!(image_of(&live).ends_with(DIGEST_A), "{reason}: rolled back");
    }
}

/// A field another manager owns stops the deploy at the dry run, naming the manager; `force`
/// takes it over.
#[test]
fn conflicts_name_the_other_field_manager_and_force_takes_over() {
    let fake = fake();
    let project = staging(&fake, "");
    assert_eq!(project.deploy(DIGEST_A, &[]).code, 0);
    let mut edited = fake.get("Deployment", "staging", "web").unwrap();
    edited["spec"]["replicas"] = 5.into();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = fake.client().await;
        let api: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
            kube::Api::namespaced(client, "staging");
        let patch = serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": "web" }, "spec": { "replicas": 5 },
        });
        api.patch(
            "web",
            &kube::api::PatchParams::apply("kubectl-edit").force(),
            &kube::api::Patch::Apply(&patch),
        )
        .await
        .unwrap();
    });
    let refused = project.deploy(DIGEST_B, &[]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("fields are owned by kubectl-edit (.spec.replicas)"),
        "{refused:?}"
    );
    let forced = project.deploy(DIGEST_B, &["--force"]);
    assert_eq!(forced.code, 0, "{forced:?}");
    let live = fake.get("Deployment", "staging", "web").unwrap();
    assert_eq!(live["spec"]["replicas"], 2);
}

#[test]
fn keep_leaves_a_failed_rollout_in_place() {
    let fake = fake();
    let project = staging(&fake, "");
    std::fs::write(
        project.dir.path().join("promotion.yml"),
        read(&project.dir.path().join("promotion.yml"))
            .replace("onFailure: rollback", "onFailure: keep"),
    )
    .unwrap();
    assert_eq!(project.deploy(DIGEST_A, &[]).code, 0);
    let failed = project.deploy(DIGEST_CRASH, &[]);
    assert_eq!(failed.code, 1, "{failed:?}");
    let live = fake.get("Deployment", "staging", "web").unwrap();
    assert!(image_of(&live).ends_with(DIGEST_CRASH), "left as is");
    assert!(project.report("deploy")["workloads"][0]["rollback"].is_null());
}

#[test]
fn a_failed_hook_stops_the_deploy_before_the_rollout() {
    let fake = fake();
    let hooks = "    hooks:
      preDeploy:
        - { name: migrate, service: web, command: [migrate, up], timeout: 1m }
";
    let project = staging(&fake, hooks);
    let ok = project.deploy(DIGEST_A, &[]);
    assert_eq!(ok.code, 0, "{ok:?}");
    assert_eq!(project.report("deploy")["hooks"][0]["outcome"], "succeeded");
    // A rerun of the same release does not run the hook again.
    let again = project.deploy(DIGEST_A, &[]);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(
        project.report("deploy")["hooks"][0]["outcome"],
        "already-succeeded"
    );

    let failed = project.deploy(DIGEST_CRASH, &[]);
    assert_eq!(failed.code, 1, "{failed:?}");
    let report = project.report("deploy");
    assert_eq!(report["hooks"][0]["outcome"], "failed", "{report:#}");
    assert!(
        report["summary"]
            .as_str()
            .unwrap()
            .contains("pre-deploy hook migrate failed")
    );
    assert!(
        failed.stderr.contains("│ "),
        "the hook's log is streamed: {failed:?}"
    );
    let live = fake.get("Deployment", "staging", "web").unwrap();
    assert!(
        image_of(&live).ends_with(DIGEST_A),
        "the rollout never started"
    );
}

#[test]
fn rollback_and_history_commands() {
    let fake = fake();
    let project = staging(&fake, "");
    assert_eq!(project.deploy(DIGEST_A, &[]).code, 0);
    assert_eq!(project.deploy(DIGEST_B, &[]).code, 0);

    let history = run(&mut project.command("history", &[]));
    assert_eq!(history.code, 0, "{history:?}");
    assert!(
        history.stderr.contains("web (deployment/web)"),
        "{history:?}"
    );
    let lines: Vec<&str> = history
        .stderr
        .lines()
        .filter(|l| l.trim_start().starts_with(['1', '2']))
        .collect();
    assert_eq!(lines.len(), 2, "{history:?}");
    assert!(lines[0].trim_start().starts_with("2*"), "{history:?}");
    assert!(lines[0].contains(&DIGEST_B[..19]), "{history:?}");
    let report = project.report("history");
    assert_eq!(report["services"][0]["current_revision"], 2);

    let unknown = run(&mut project.command("rollback", &["--to-revision", "9"]));
    assert_eq!(unknown.code, 2, "{unknown:?}");
    assert!(
        unknown
            .stderr
            .contains("unable to find specified revision 9"),
        "{unknown:?}"
    );

    let back = run(&mut project.command("rollback", &[]));
    assert_eq!(back.code, 0, "{back:?}");
    let live = fake.get("Deployment", "staging", "web").unwrap();
    assert!(image_of(&live).ends_with(DIGEST_A));
    assert_eq!(revision_of(&live), Some(3));
    assert!(healthy(&live));
    assert!(back.stdout.contains("revision=3"), "{back:?}");

    let forward = run(&mut project.command("rollback", &["--to-revision", "2"]));
    assert_eq!(forward.code, 0, "{forward:?}");
    let live = fake.get("Deployment", "staging", "web").unwrap();
    assert!(image_of(&live).ends_with(DIGEST_B));
}

#[test]
fn dropped_watches_and_throttling_are_survived() {
    let fake = FakeKube::builder()
        .drop_watches_after(WatchDrop::AfterEvents(1))
        .fault(Fault::TooManyRequests {
            path_prefix: "PATCH /apis/apps/v1".into(),
            times: 2,
            retry_after: 1,
        })
        .fault(Fault::InternalError {
            path_prefix: "GET /apis/apps/v1".into(),
            times: 2,
        })
        .start();
    let project = staging(&fake, "");
    let ok = project.deploy(DIGEST_A, &[]);
    assert_eq!(ok.code, 0, "{ok:?}");
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert!(
        statuses.contains(&429) && statuses.contains(&500),
        "{statuses:?}"
    );
}

#[test]
fn the_kubeconfig_input_is_masked_by_credential_value_and_line() {
    let fake = fake();
    let project = staging(&fake, "");
    assert_eq!(project.deploy(DIGEST_A, &[]).code, 0);
    let out = run(promote()
        .env("GITHUB_ACTIONS", "true")
        .env("INPUT_COMMAND", "history")
        .env("INPUT_CONFIG", project.dir.path().join("promotion.yml"))
        .env("INPUT_ENVIRONMENT", "staging")
        .env("INPUT_KUBECONFIG", fake.kubeconfig_yaml()));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains(&format!("::add-mask::{}", fake.token())),
        "{out:?}"
    );
    assert!(
        out.stdout
            .contains(&format!("::add-mask::token: {}", fake.token())),
        "the credential's line is masked too: {out:?}"
    );
    assert!(
        !out.stdout.contains("::add-mask::apiVersion"),
        "structure lines are not masked: {out:?}"
    );
}

/// The lock in-process: renewed while held, refused to a second holder naming the first,
/// deleted on release. On the paused clock with a client that needs no socket, so the
/// seconds pass at once. Whether a lease has expired is judged on the wall clock, which the
/// test does not move: that rule is `lock::decide`'s, table-tested beside it.
#[tokio::test(start_paused = true)]
async fn the_lease_is_renewed_while_held_and_released_after() {
    use promote_action::kube::{LockError, LockRequest, acquire_lock};
    let fake = FakeKube::start();
    let client = fake.in_process_client();
    fake.put(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "staging" },
    }));
    let request = |holder: &str, timeout: Duration| LockRequest {
        namespace: "staging".into(),
        environment: "staging".into(),
        service: "web".into(),
        holder: holder.into(),
        timeout,
        lease_duration: Duration::from_secs(3),
    };
    let held = acquire_lock(&client, &request("run-1", Duration::ZERO), &|_| {})
        .await
        .expect("a free lease is taken");
    let renew_time = |fake: &FakeKube| {
        fake.get("Lease", "staging", "promote-staging-web").unwrap()["spec"]["renewTime"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let first = renew_time(&fake);
    // Past the 3 s duration: still held, because it was renewed (every second).
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_ne!(renew_time(&fake), first, "renewed");
    let renewals = fake
        .changes("Lease", "staging", "promote-staging-web")
        .iter()
        .filter(|c| c.event == "MODIFIED")
        .count();
    assert_eq!(renewals, 3, "at 1 s, 2 s and 3 s");
    let waited = std::sync::Mutex::new(Vec::new());
    let refused = acquire_lock(
        &client,
        &request("run-2", Duration::from_millis(500)),
        &|holder| waited.lock().unwrap().push(holder.to_string()),
    )
    .await;
    match refused {
        Err(LockError::Held { holder, .. }) => assert_eq!(holder, "run-1"),
        Err(other) => panic!("expected Held, got {other}"),
        Ok(_) => panic!("two holders"),
    }
    assert_eq!(*waited.lock().unwrap(), ["run-1"]);
    held.release().await;
    assert!(
        fake.get("Lease", "staging", "promote-staging-web")
            .is_none()
    );
    let next = acquire_lock(&client, &request("run-2", Duration::ZERO), &|_| {})
        .await
        .expect("free again");
    next.release().await;
}

#[test]
fn a_namespace_created_for_a_rejected_deploy_is_removed_again() {
    let fake = fake();
    let project = staging_with_service(
        &fake,
        "",
        "apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}}
",
    );
    let rejected = project.deploy(DIGEST_A, &[]);
    assert_eq!(rejected.code, 2, "{rejected:?}");
    assert!(
        rejected.stderr.contains("Created namespace staging"),
        "{rejected:?}"
    );
    assert!(
        fake.wait_for(Duration::from_secs(20), |f| f
            .get("Namespace", "", "staging")
            .is_none_or(|n| !n["metadata"]["deletionTimestamp"].is_null())),
        "the namespace goes again"
    );
    assert_eq!(project.report("deploy")["namespace_created"], false);
}

/// The in-process face: the library's rollout wait and apply against the fake, for the
/// measurements the deploy issue asks for. Printed with `--nocapture`.
mod measure {
    use super::*;
    use promote_action::kube::{
        APPLY_CONCURRENCY, Force, Mode, RolloutOutcome, Workload, WorkloadKind, apply_all,
        wait_for_rollout,
    };

    /// How many watches of `collection` (`/apis/apps/v1/namespaces/bench/deployments`) the
    /// fake has opened so far: a wait that has one open sees every change after it.
    fn watches(fake: &FakeKube, collection: &str) -> usize {
        fake.requests()
            .iter()
            .filter(|r| {
                r.path == collection && r.param("watch").is_some_and(|w| w == "true" || w == "1")
            })
            .count()
    }

    fn config_maps(n: usize) -> Vec<Value> {
        (0..n)
            .map(|i| {
                serde_json::json!({
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": { "name": format!("cm-{i}"), "namespace": "bench" },
                    "data": { "index": i.to_string() },
                })
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn apply_of_100_objects_concurrent_vs_sequential() {
        let fake = FakeKube::start();
        let client = fake.client().await;
        fake.put(serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "bench" },
        }));
        let objects = config_maps(100);
        let sequential = apply_all(&client, &objects, Mode::Write, Force::No, 1).await;
        assert!(sequential.errors.is_empty(), "{:?}", sequential.errors);
        let objects: Vec<Value> = objects
            .into_iter()
            .map(|mut o| {
                o["data"]["index"] = "changed".into();
                o
            })
            .collect();
        let concurrent =
            apply_all(&client, &objects, Mode::Write, Force::No, APPLY_CONCURRENCY).await;
        assert!(concurrent.errors.is_empty(), "{:?}", concurrent.errors);
        eprintln!(
            "MEASURE apply 100 objects: sequential {:?}, concurrent ({}) {:?}",
            sequential.elapsed, APPLY_CONCURRENCY, concurrent.elapsed
        );
        assert_eq!(concurrent.applied.len(), 100);
    }

    /// The binary, as a user sees it: from the moment the fake reports the last replica
    /// available to the `rolled out` line, and to the process exiting with success.
    #[test]
    fn the_binary_reports_success_within_100ms_of_the_last_replica() {
        use std::io::BufRead as _;
        let fake = fake();
        let project = staging(&fake, "");
        assert_eq!(project.deploy(DIGEST_A, &[]).code, 0);
        let mut to_line = Vec::new();
        let mut to_exit = Vec::new();
        for digest in [DIGEST_B, DIGEST_A, DIGEST_B] {
            fake.pause_controllers();
            let image = format!("web=registry.example.com/team/web@{digest}");
            let mut child = project
                .command("deploy", &["--image", &image])
                .stderr(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let collection = "/apis/apps/v1/namespaces/staging/deployments";
            let watched = watches(&fake, collection);
            let (lines_tx, lines) = std::sync::mpsc::channel::<(String, std::time::Instant)>();
            let stderr = child.stderr.take().unwrap();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stderr)
                    .lines()
                    .map_while(Result::ok)
                {
                    let _ = lines_tx.send((line, std::time::Instant::now()));
                }
            });
            let mut seen = Vec::new();
            loop {
                let (line, _) = lines
                    .recv_timeout(Duration::from_secs(20))
                    .expect("waiting");
                let waiting = line.starts_with("Waiting up to");
                seen.push(line);
                if waiting {
                    break;
                }
            }
            // Once the binary watches its Deployment, the status below is news to it.
            assert!(
                fake.wait_for(Duration::from_secs(20), |f| watches(f, collection)
                    > watched),
                "the binary watches the rollout: {seen:#?}"
            );
            let mut done = fake.get("Deployment", "staging", "web").unwrap();
            let replicas = done["spec"]["replicas"].clone();
            done["status"] = serde_json::json!({
                "observedGeneration": done["metadata"]["generation"],
                "replicas": replicas, "updatedReplicas": replicas,
                "readyReplicas": replicas, "availableReplicas": replicas,
            });
            let available_at = std::time::Instant::now();
            fake.put(done);
            let rolled_out_at = loop {
                let (line, at) = lines
                    .recv_timeout(Duration::from_secs(20))
                    .unwrap_or_else(|_| panic!("no `rolled out` line after: {seen:#?}"));
                let found = line.contains("rolled out");
                seen.push(line);
                if found {
                    break at;
                }
            };
            let status = child.wait().unwrap();
            let exited_at = std::time::Instant::now();
            assert!(status.success(), "{seen:#?}");
            to_line.push(rolled_out_at.duration_since(available_at));
            to_exit.push(exited_at.duration_since(available_at));
            fake.resume_controllers();
            // Let the controllers catch up (pods of the new template) before the next round.
            assert!(fake.wait_for(Duration::from_secs(20), |f| {
                f.get("Deployment", "staging", "web")
                    .is_some_and(|d| healthy(&d))
            }));
        }
        eprintln!(
            "MEASURE binary: last replica available → `rolled out` line {to_line:?}, → exit 0 {to_exit:?}"
        );
        to_line.sort();
        assert!(to_line[1] < Duration::from_millis(100), "{to_line:?}");
    }

    /// From the moment the last replica is reported available to the moment the wait returns
    /// success: the watch delivers it, nothing polls.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn success_is_seen_within_milliseconds_of_the_last_replica() {
        let fake = FakeKube::start();
        let client = fake.client().await;
        fake.put(serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "bench" },
        }));
        let deployment = serde_json::json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": { "name": "web", "namespace": "bench" },
            "spec": {
                "replicas": 3,
                "selector": { "matchLabels": { "app": "web" } },
                "template": {
                    "metadata": { "labels": { "app": "web" } },
                    "spec": { "containers": [{ "name": "web", "image": "r.example.com/web:1" }] },
                },
            },
        });
        let mut samples = Vec::new();
        for round in 0..5 {
            fake.pause_controllers();
            let mut d = deployment.clone();
            d["spec"]["template"]["spec"]["containers"][0]["image"] =
                format!("r.example.com/web:{round}").into();
            let stored = fake.put(d);
            let generation = stored["metadata"]["generation"].clone();
            let workload = Workload {
                kind: WorkloadKind::Deployment,
                namespace: "bench".into(),
                name: "web".into(),
            };
            let collection = "/apis/apps/v1/namespaces/bench/deployments";
            let watched = watches(&fake, collection);
            let waiter = {
                let client = client.clone();
                tokio::spawn(async move {
                    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
                    let r = wait_for_rollout(&client, &workload, deadline, &|_, _| {}).await;
                    (r, std::time::Instant::now())
                })
            };
            // Once the wait watches the Deployment, the status below is news to it.
            assert!(
                fake.wait_for_async(Duration::from_secs(20), |f| watches(f, collection)
                    > watched)
                    .await,
                "the wait watches the rollout"
            );
            let mut done = fake.get("Deployment", "bench", "web").unwrap();
            done["status"] = serde_json::json!({
                "observedGeneration": generation,
                "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3,
            });
            let available_at = std::time::Instant::now();
            fake.put(done);
            let (result, seen_at) = waiter.await.unwrap();
            let result = result.unwrap();
            assert_eq!(result.outcome, RolloutOutcome::Complete);
            samples.push(seen_at.duration_since(available_at));
            fake.resume_controllers();
        }
        samples.sort();
        eprintln!("MEASURE last replica available → success seen: {samples:?}");
        assert!(
            samples[samples.len() / 2] < Duration::from_millis(100),
            "{samples:?}"
        );
    }
}
