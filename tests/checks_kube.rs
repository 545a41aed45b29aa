//! `promote verify`'s cluster checks end to end against the fake API server (tests/fake_kube):
//! integration Jobs (success, failure, timeout, JUnit, cleanup), the soak, and smoke checks
//! through the fake's service proxy, whose pods answer from a [`TestService`].

use std::time::Duration;

use serde_json::{Value, json};

use crate::checks_server::{Answer, Route, TestService};
use crate::fake_kube::{Behavior, FakeKube};
use crate::support::project::Project;
use crate::util::{read, run};

/// Generous bound for what the fake does in milliseconds; never asserted as a duration.
const PATIENCE: Duration = Duration::from_secs(30);

const JUNIT_PASSING: &str = r#"running the contract tests
--- promote-junit-begin ---
<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="api" tests="3">
    <testcase classname="api" name="lists courses"/>
    <testcase classname="api" name="creates a course"></testcase>
    <testcase classname="api" name="exports to SCORM"><skipped/></testcase>
  </testsuite>
</testsuites>
--- promote-junit-end ---
3 tests, 0 failures
"#;

const JUNIT_FAILING: &str = r#"running the contract tests
--- promote-junit-begin ---
<testsuite name="api" tests="2" failures="1">
  <testcase classname="api" name="lists courses"/>
  <testcase classname="api" name="rejects bad tokens"><failure message="expected 401">got 200</failure></testcase>
</testsuite>
--- promote-junit-end ---
1 of 2 tests failed
"#;

/// Environment `staging` (namespace `staging`, created) with the test's `environment` lines,
/// and a kubeconfig for the fake.
fn staging(fake: &FakeKube, environment: &str) -> Project {
    if fake.get("Namespace", "", "staging").is_none() {
        fake.put(
            json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "staging" } }),
        );
    }
    Project::new("staging", environment).with_kubeconfig(&fake.kubeconfig_yaml())
}

/// Service `web` on the port the promotion file names (8080), to the pods' 8080.
const WEB_SERVICE: &str = "apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 8080, targetPort: 8080}]
";

/// [`staging`] deploying [`WEB_SERVICE`] with the Deployment.
fn staging_serving(fake: &FakeKube, environment: &str) -> Project {
    staging(fake, environment).with_manifest("service.yaml", WEB_SERVICE)
}

/// Puts [`WEB_SERVICE`] in `staging`, as a deploy would have.
fn serving(fake: &FakeKube) {
    let mut service: Value = serde_saphyr::from_str(WEB_SERVICE).unwrap();
    service["metadata"]["namespace"] = json!("staging");
    fake.put(service);
}

/// Requests the fake's service proxy received for `web:8080`.
fn proxied(fake: &FakeKube) -> usize {
    fake.requests()
        .iter()
        .filter(|r| {
            r.path
                .starts_with("/api/v1/namespaces/staging/services/web:8080/proxy/")
        })
        .count()
}

/// The Job the binary created, as it was sent.
fn created_job(fake: &FakeKube) -> Value {
    fake.requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path == "/apis/batch/v1/namespaces/staging/jobs")
        .map(|r| r.json())
        .expect("a Job was created")
}

fn integration(image_line: &str, timeout: &str) -> String {
    format!(
        "    checks:
      integration:
        - name: contracts
{image_line}
          command: [npm, run, test:integration]
          env: {{ BASE_URL: 'http://web.staging' }}
          serviceAccount: contract-tester
          timeout: {timeout}"
    )
}

#[test]
fn a_passing_job_streams_its_log_counts_its_junit_report_and_is_deleted() {
    let fake = FakeKube::builder()
        .pod_log("contract-tests", JUNIT_PASSING)
        .start();
    let project = staging(
        &fake,
        &integration(
            "          image: registry.example.com/team/contract-tests:1",
            "5m",
        ),
    );
    let out = project.verify();
    assert_eq!(out.code, 0, "{out:?}");

    let job = created_job(&fake);
    let name = job["metadata"]["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("verify-contracts-"), "{name}");
    assert_eq!(job["spec"]["backoffLimit"], 0);
    assert_eq!(job["spec"]["activeDeadlineSeconds"], 300);
    assert_eq!(job["spec"]["ttlSecondsAfterFinished"], 3600);
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "contract-tester");
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(
        pod["containers"][0]["command"],
        json!(["npm", "run", "test:integration"])
    );
    assert_eq!(
        pod["containers"][0]["env"],
        json!([{ "name": "BASE_URL", "value": "http://web.staging" }])
    );

    let report = project.report("verify");
    let check = &report["checks"][0];
    assert_eq!(check["kind"], "integration");
    assert_eq!(check["integration"]["status"], "succeeded", "{report:#}");
    assert_eq!(
        check["integration"]["junit"],
        json!({ "tests": 3, "passed": 2, "failed": 0, "skipped": 1, "failures": [] })
    );
    assert_eq!(check["integration"]["deleted"], true);
    let gone = fake.wait_for(PATIENCE, |f| f.get("Job", "staging", &name).is_none());
    assert!(gone, "the Job was deleted");
    let delete = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "DELETE" && r.path.ends_with(&format!("/jobs/{name}")))
        .expect("a DELETE of the Job");
    assert_eq!(delete.json()["propagationPolicy"], "Background");

    // The log is in the group, line by line; the XML is collected, not printed.
    assert!(
        out.stderr
            .contains("Integration check contracts (job/verify-contracts-"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("│ running the contract tests"),
        "{out:?}"
    );
    assert!(out.stderr.contains("│ 3 tests, 0 failures"), "{out:?}");
    assert!(!out.stderr.contains("<testcase"), "{out:?}");
}

#[test]
fn a_failing_job_fails_the_check_naming_the_failed_tests() {
    let fake = FakeKube::builder()
        .pod_log("contract-tests-crash", JUNIT_FAILING)
        .start();
    let project = staging(
        &fake,
        &integration(
            "          image: registry.example.com/team/contract-tests-crash:1",
            "5m",
        ),
    );
    let mut cmd = project.command("verify", &[]);
    cmd.env("GITHUB_ACTIONS", "true");
    let out = run(&mut cmd);
    assert_eq!(out.code, 1, "{out:?}");
    let report = project.report("verify");
    let check = &report["checks"][0];
    let reason = check["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("job/verify-contracts-")
            && reason.contains(" failed: BackoffLimitExceeded"),
        "{reason}"
    );
    assert!(
        reason.ends_with("; 1 of 2 tests failed: api.rejects bad tokens"),
        "{reason}"
    );
    assert_eq!(check["integration"]["junit"]["failed"], 1);
    assert_eq!(check["integration"]["deleted"], true);
    assert!(
        out.stdout
            .contains("::group::Integration check contracts (job/verify-contracts-"),
        "{out:?}"
    );
    assert!(out.stdout.contains("::endgroup::"), "{out:?}");
    assert!(
        out.stdout
            .contains("::error title=Verification failed::integration contracts: job/"),
        "{out:?}"
    );
    assert_eq!(report["outcome"], "failed");
}

#[test]
fn a_job_that_outlasts_its_timeout_fails_and_is_deleted() {
    let fake = FakeKube::start();
    // `never-ready` runs forever; the Job controller ends it at activeDeadlineSeconds.
    let project = staging(
        &fake,
        &integration(
            "          image: registry.example.com/team/never-ready-tests:1",
            "2s",
        ),
    );
    let out = project.verify();
    assert_eq!(out.code, 1, "{out:?}");
    let report = project.report("verify");
    let check = &report["checks"][0];
    let reason = check["reason"].as_str().unwrap();
    assert!(reason.contains("failed: DeadlineExceeded"), "{reason}");
    assert_eq!(check["integration"]["deleted"], true, "{report:#}");
    assert!(check["integration"]["junit"].is_null());
}

fn deployment(image: &str, replicas: u32) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": "web", "namespace": "staging" },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": "web" } },
            "template": {
                "metadata": { "labels": { "app": "web" } },
                "spec": { "containers": [{
                    "name": "web", "image": image,
                    "ports": [{ "name": "http", "containerPort": 8080 }],
                }] },
            },
        },
    })
}

/// Puts the Deployment and waits for its rollout, as a deploy would have.
fn rolled_out(fake: &FakeKube, image: &str, replicas: u32) {
    if fake.get("Namespace", "", "staging").is_none() {
        fake.put(
            json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "staging" } }),
        );
    }
    fake.put(deployment(image, replicas));
    let ready = fake.wait_for(PATIENCE, |f| {
        f.get("Deployment", "staging", "web").is_some_and(|d| {
            d["status"]["readyReplicas"] == replicas && d["status"]["updatedReplicas"] == replicas
        })
    });
    assert!(ready, "the Deployment rolled out");
}

#[test]
fn an_integration_check_without_an_image_runs_the_deployed_one() {
    let fake = FakeKube::start();
    let image = "registry.example.com/team/web@sha256:4f1c2a9b0d3e4f1c2a9b0d3e4f1c2a9b0d3e4f1c2a9b0d3e4f1c2a9b0d3e4f1c";
    rolled_out(&fake, image, 1);
    let project = staging(&fake, &integration("", "5m"));
    let out = project.verify();
    assert_eq!(out.code, 0, "{out:?}");
    let job = created_job(&fake);
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["image"],
        image
    );
    assert_eq!(
        project.report("verify")["checks"][0]["integration"]["image"],
        image
    );

    // A deploy knows what it pinned: `--image` wins over the cluster's.
    let pinned = format!("registry.example.com/team/web@{}", crate::util::DIGEST_B);
    fake.clear_requests();
    let out = run(&mut project.command("verify", &["--image", &format!("web={pinned}")]));
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        created_job(&fake)["spec"]["template"]["spec"]["containers"][0]["image"],
        pinned.as_str()
    );
}

fn soak(duration: &str, max_restarts: u32) -> String {
    format!("    checks:\n      soak: {{ duration: {duration}, maxRestarts: {max_restarts} }}")
}

#[test]
fn the_soak_passes_while_the_new_pods_stay_ready() {
    let fake = FakeKube::start();
    rolled_out(&fake, "registry.example.com/team/web-stable:1", 2);
    let project = staging(&fake, &soak("1s", 0));
    let out = project.verify();
    assert_eq!(out.code, 0, "{out:?}");
    let report = project.report("verify");
    let soak = &report["checks"][0]["soak"];
    assert_eq!(soak["pods"].as_array().unwrap().len(), 2, "{report:#}");
    assert_eq!(soak["restarts"], 0);
    assert!(soak["watched_ms"].as_u64().unwrap() >= 1000);
}

#[test]
fn the_soak_fails_when_the_new_pods_restart() {
    let fake = FakeKube::start();
    rolled_out(&fake, "registry.example.com/team/web-flaky:1", 2);
    // After the rollout, the new pods start crashing.
    fake.set_pod_behavior("web-flaky", Behavior::CrashLoop);
    let project = staging(&fake, &soak("30s", 0));
    let out = project.verify();
    assert_eq!(out.code, 1, "{out:?}");
    let reason = project.report("verify")["checks"][0]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.starts_with("pod web-") && reason.contains("turned unready")
            || reason.contains("restart") && reason.contains("at most 0 allowed"),
        "{reason}"
    );
}

#[test]
fn the_soak_needs_the_deployment() {
    let fake = FakeKube::start();
    let project = staging(&fake, &soak("1s", 0));
    let out = project.verify();
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        project.report("verify")["checks"][0]["reason"],
        "deployment/web does not exist in namespace staging"
    );
}

/// The smoke sample goes through the API server's service proxy to the service's port; 6 slow
/// answers in 100 breach `p95Latency` there just as they do over a URL.
#[test]
fn smoke_checks_through_the_service_proxy() {
    let fake = FakeKube::start();
    rolled_out(&fake, "registry.example.com/team/web:1", 1);
    serving(&fake);
    for (slow, want_code) in [(5, 0), (6, 1)] {
        let backend = TestService::http(vec![(
            "/health",
            Route::mix(&[
                (100 - slow, Answer::ok(r#"{"status":"ok"}"#)),
                (
                    slow,
                    Answer::ok(r#"{"status":"ok"}"#).after(Duration::from_millis(300)),
                ),
            ]),
        )]);
        fake.set_http_backend("staging", "app=web", &backend.url(""));
        fake.clear_requests();
        let project = staging(
            &fake,
            "    checks:
      smoke:
        - name: health
          via: service-proxy
          path: /health
          samples: 100
          concurrency: 10
          expectJson: { status: ok }
    slo: { p95Latency: 250ms }",
        );
        let out = project.verify();
        assert_eq!(out.code, want_code, "{slow} slow: {out:?}");
        let report = project.report("verify");
        let smoke = &report["checks"][0]["smoke"];
        assert_eq!(smoke["route"], "service-proxy");
        assert_eq!(
            smoke["target"],
            "/api/v1/namespaces/staging/services/web:8080/proxy/health"
        );
        assert_eq!(smoke["sampling"]["requests"], 100, "{report:#}");
        assert_eq!(backend.count("/health"), 101);
        if want_code == 1 {
            let reason = report["checks"][0]["reason"].as_str().unwrap();
            assert!(reason.ends_with(" ms > 250 ms"), "{reason}");
        }
        assert!(
            proxied(&fake) >= 101,
            "every request went through the API server"
        );
    }
}

/// promotion.yml's `port` is the container's (8080); the Service maps its port 80 to the
/// container port named `http`. A real API server answers 503 for `web:8080` there, so the proxy
/// must address the Service port that reaches 8080: `web:80`.
#[test]
fn the_service_proxy_addresses_the_service_port_that_reaches_the_container_port() {
    let fake = FakeKube::start();
    rolled_out(&fake, "registry.example.com/team/web:1", 1);
    let mut service: Value = serde_saphyr::from_str(
        "apiVersion: v1
kind: Service
metadata: {name: web, namespace: staging}
spec:
  selector: {app: web}
  ports: [{name: metrics, port: 9090, targetPort: 9090}, {name: http, port: 80, targetPort: http}]
",
    )
    .unwrap();
    service["metadata"]["namespace"] = json!("staging");
    fake.put(service.clone());
    let backend = TestService::http(vec![("/health", Route::always(Answer::ok("ok")))]);
    fake.set_http_backend("staging", "app=web", &backend.url(""));
    let project = staging(
        &fake,
        "    checks:
      smoke:
        - { name: health, via: service-proxy, path: /health, samples: 3, concurrency: 1 }",
    )
    .with_manifest("service.yaml", &serde_saphyr::to_string(&service).unwrap());
    let out = project.verify();
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        project.report("verify")["checks"][0]["smoke"]["target"],
        "/api/v1/namespaces/staging/services/web:80/proxy/health"
    );
    assert_eq!(backend.count("/health"), 4, "readiness, then 3 samples");
}

/// The issue's end-to-end story up to the verdict: the deploy succeeds, then verification
/// fails on latency. Rolling back on that
/// verdict is the deploy → verify wiring's; once `deploy` runs `verify`, this test should expect
/// exit 1 from the deploy and the previous revision.
#[test]
fn a_successful_deploy_then_a_verification_that_fails_on_latency() {
    let fake = FakeKube::start();
    let _backend = slow_tail_behind_the_proxy(&fake);
    let project = staging_serving(
        &fake,
        "    replicas: 2
    checks:
      smoke:
        - { name: health, via: service-proxy, path: /health, samples: 100, concurrency: 10 }
    slo: { p95Latency: 250ms, errorRate: 0.1% }",
    );
    let deployed = project.deploy(crate::util::DIGEST_A, &["--no-verify"]);
    assert_eq!(deployed.code, 0, "{deployed:?}");
    let out = project.verify();
    assert_eq!(out.code, 1, "{out:?}");
    let report = project.report("verify");
    assert_eq!(report["checks"][0]["smoke"]["slo"][0]["passed"], false);
    assert_eq!(
        report["checks"][0]["smoke"]["slo"][1]["passed"], true,
        "{report:#}"
    );
    let reason = report["checks"][0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("p95 ") && reason.ends_with(" ms > 250 ms"),
        "{reason}"
    );
}

/// `web`'s `/health` behind the service proxy, with one answer in ten taking 300 ms: a p95
/// objective of 250 ms fails.
fn slow_tail_behind_the_proxy(fake: &FakeKube) -> TestService {
    let backend = TestService::http(vec![(
        "/health",
        Route::mix(&[
            (90, Answer::ok("ok")),
            (10, Answer::ok("ok").after(Duration::from_millis(300))),
        ]),
    )]);
    fake.set_http_backend("staging", "app=web", &backend.url(""));
    backend
}

/// The end-to-end path of the verify issue: a deploy whose rollout succeeds verifies the
/// environment at once; breaching the SLO rolls the deploy back and the run ends with exit 1.
#[test]
fn a_deploy_that_fails_verification_on_latency_is_rolled_back() {
    let fake = FakeKube::start();
    let _backend = slow_tail_behind_the_proxy(&fake);
    let project = staging_serving(
        &fake,
        "    replicas: 2
    checks:
      smoke:
        - { name: health, via: service-proxy, path: /health, samples: 100, concurrency: 10 }
    slo: { p95Latency: 250ms }",
    );
    let first = project.deploy(crate::util::DIGEST_A, &["--no-verify"]);
    assert_eq!(first.code, 0, "{first:?}");

    let second = project.deploy(crate::util::DIGEST_B, &[]);
    assert_eq!(second.code, 1, "{second:?}");
    let report: Value =
        serde_json::from_str(&read(&project.dir.path().join("out/promote-deploy.json"))).unwrap();
    assert_eq!(report["outcome"], "failed", "{report:#}");
    assert_eq!(report["verification"]["passed"], false, "{report:#}");
    assert!(
        report["summary"]
            .as_str()
            .unwrap()
            .contains("verification failed: "),
        "{report:#}"
    );
    assert_eq!(
        report["workloads"][0]["rollback"]["outcome"], "rolled-back",
        "{report:#}"
    );
    let deployment = fake.get("Deployment", "staging", "web").unwrap();
    let image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        image.ends_with(crate::util::DIGEST_A),
        "back on the first image: {image}"
    );
}

#[test]
fn a_service_proxy_without_endpoints_is_not_ready() {
    let fake = FakeKube::start();
    let project = staging(
        &fake,
        "    checks:
      smoke:
        - { name: health, via: service-proxy, path: /health, readinessTimeout: 1s }",
    );
    // The Service exists, no pod is behind it.
    serving(&fake);
    let out = project.verify();
    assert_eq!(out.code, 1, "{out:?}");
    let reason = project.report("verify")["checks"][0]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.contains(r#"status 503, expected 200: {"kind":"Status""#)
            && reason.contains(r#"no endpoints available for service \"web\""#),
        "{reason}"
    );
}
