//! `strategy: canary` end to end: the real binary against the fake API server, with the real
//! Prometheus (tests/support/prometheus.rs) scraping an exporter whose canary error ratio the
//! test sets. Pauses are a second or two; assertions are on state and numbers, never timings.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::fake_kube::{Behavior, FakeKube};
use crate::kube_deploy::{DIGEST_CRASH, staging};
use crate::support::project::Project;
use crate::support::prometheus::Prometheus;
use crate::util::{DIGEST_A, DIGEST_B, Run};

/// Long enough for a busy 2-core machine; the tests end as soon as the state is there.
const PATIENCE: Duration = Duration::from_secs(60);

/// The canary's error ratio as a gauge per track: the test holds the value it wants.
fn ratio_series(track: &str) -> String {
    format!(r#"web_error_ratio{{namespace="staging",service="web",track="{track}"}}"#)
}

/// `staging` with `replicas` and a canary of `steps`, analysed by the error ratio of
/// `track=canary` against Prometheus at `url` (max 1 %).
fn canary_project(fake: &FakeKube, url: &str, replicas: u32, steps: &str) -> Project {
    let extra = format!(
        "    strategy: canary
    canary:
      steps: {steps}
    analysis:
      prometheus:
        url: {url}
        window: 2s
        onInconclusive: pass
        queries:
          - name: error-ratio
            query: 'max(web_error_ratio{{namespace=\"{{{{namespace}}}}\",service=\"{{{{service}}}}\",track=\"{{{{track}}}}\"}})'
            max: 0.01
"
    );
    sized(staging(fake, &extra), replicas)
}

/// `project` with `replicas` instead of `staging`'s `replicas: 2`.
fn sized(project: Project, replicas: u32) -> Project {
    let path = project.path("promotion.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("    replicas: 2\n", &format!("    replicas: {replicas}\n")),
    )
    .unwrap();
    project
}

/// The time of `web`'s rollout in the last deploy's report.
fn rollout_ms(project: &Project) -> u64 {
    project.report("deploy")["workloads"]
        .as_array()
        .and_then(|w| w.iter().find(|w| w["name"] == "web"))
        .and_then(|w| w["rollout_ms"].as_u64())
        .expect("web's rollout time")
}

fn image_of(deployment: &Value) -> String {
    deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The pods the EndpointSlices of `service` list as ready, by name.
fn serving(fake: &FakeKube, ns: &str, service: &str) -> Vec<String> {
    let mut names: Vec<String> = fake
        .list("endpointslices", Some(ns))
        .iter()
        .filter(|s| s["metadata"]["labels"]["kubernetes.io/service-name"] == service)
        .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
        .filter(|e| e["conditions"]["ready"] == true)
        .filter_map(|e| e["targetRef"]["name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

/// Runs `promote deploy` with `digest`, calling `on_line` with every line it logs as it logs it.
fn deploy_watching(project: &Project, digest: &str, on_line: impl Fn(&str)) -> Run {
    let image = format!("web=registry.example.com/team/web@{digest}");
    let mut child = project
        .command("deploy", &["--image", &image, "--create-namespace"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the promote binary starts");
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (out, err) = std::thread::scope(|s| {
        let out = s.spawn(|| std::io::read_to_string(stdout).unwrap_or_default());
        let mut err = String::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap_or_default();
            on_line(&line);
            err.push_str(&line);
            err.push('\n');
        }
        (out.join().unwrap(), err)
    });
    let status = child.wait().expect("the binary ends");
    Run {
        code: status.code().expect("exited normally"),
        stdout: out,
        stderr: err,
    }
}

#[test]
fn a_canary_breaching_its_error_ratio_at_25_percent_is_aborted_and_the_stable_serves_again() {
    let prom = Prometheus::start();
    prom.exporter.set(&ratio_series("canary"), 0.0);
    prom.exporter.set(&ratio_series("stable"), 0.0);
    let fake = FakeKube::start();
    // Six replicas: 10 % is one canary pod, 25 % two, so the steps are told apart.
    let project = canary_project(
        &fake,
        &prom.url,
        6,
        "[{ weight: 10, pause: 2s }, { weight: 25, pause: 3s }, { weight: 50, pause: 1s }, { weight: 100, pause: 1s }]",
    );
    let first = project.deploy(DIGEST_A, &[]);
    assert_eq!(
        first.code, 0,
        "the first deploy has no stable to compare with: {first:?}"
    );
    assert!(
        first.stderr.contains("rolling out as `rolling` does"),
        "{first:?}"
    );

    // The canary's errors rise as soon as it reaches 25 %.
    let run = deploy_watching(&project, DIGEST_B, |line| {
        if line.contains("Canary step 2 of 4") {
            prom.exporter.set(&ratio_series("canary"), 0.5);
        }
    });
    assert_eq!(run.code, 1, "aborted and rolled back is exit 1: {run:?}");
    let report = project.report("deploy");
    assert_eq!(report["outcome"], "failed", "{report:#}");
    assert_eq!(report["strategy"], "canary", "{report:#}");
    let summary = report["summary"].as_str().unwrap();
    assert!(summary.contains("rolled back"), "{summary}");
    assert!(summary.contains("25 %"), "{summary}");
    let canary = &report["canary"];
    assert_eq!(canary["decision"], "aborted", "{report:#}");
    let steps = canary["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "{report:#}");
    assert_eq!(steps[0]["weight"], 10);
    assert_eq!(steps[0]["verdict"], "passed", "{report:#}");
    assert_eq!(
        (
            steps[0]["stable_replicas"].as_u64(),
            steps[0]["canary_replicas"].as_u64()
        ),
        (Some(6), Some(1))
    );
    assert_eq!(steps[1]["weight"], 25);
    assert_eq!(steps[1]["verdict"], "failed", "{report:#}");
    assert_eq!(
        (
            steps[1]["stable_replicas"].as_u64(),
            steps[1]["canary_replicas"].as_u64()
        ),
        (Some(6), Some(2))
    );
    assert_eq!(
        steps[1]["actual_share"], 25.0,
        "2 of 8 ready pods: {report:#}"
    );
    let query = &steps[1]["analysis"]["queries"][0];
    assert_eq!(query["name"], "error-ratio");
    assert_eq!(query["verdict"], "breach", "{report:#}");
    assert_eq!(query["worst"], 0.5, "{report:#}");
    assert_eq!(query["bound"]["max"], 0.01, "{report:#}");
    assert!(
        query["query"]
            .as_str()
            .unwrap()
            .contains(r#"track="canary""#),
        "{report:#}"
    );
    assert!(canary["abort_to_stable_ms"].is_u64(), "{report:#}");
    let canary_entry = report["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "web-canary")
        .expect("the canary in the workloads");
    assert_eq!(canary_entry["rollback"]["outcome"], "rolled-back");

    // The stable release serves alone again: image A at full size, the canary gone.
    let stable = fake.get("Deployment", "staging", "web").unwrap();
    assert!(image_of(&stable).ends_with(DIGEST_A), "{stable:#}");
    assert_eq!(stable["spec"]["replicas"], 6);
    assert!(fake.get("Deployment", "staging", "web-canary").is_none());
    let stable_only = fake.wait_for(PATIENCE, |f| {
        let pods = serving(f, "staging", "web");
        pods.len() == 6 && pods.iter().all(|p| !p.starts_with("web-canary-"))
    });
    assert!(stable_only, "{:?}", serving(&fake, "staging", "web"));
}

#[test]
fn a_healthy_canary_is_promoted_through_100_percent() {
    let prom = Prometheus::start();
    prom.exporter.set(&ratio_series("canary"), 0.0);
    let fake = FakeKube::start();
    let project = canary_project(
        &fake,
        &prom.url,
        2,
        "[{ weight: 50, pause: 1s }, { weight: 100, pause: 1s }]",
    );
    let first = project.deploy(DIGEST_A, &[]);
    assert_eq!(first.code, 0, "{first:?}");

    let run = project.deploy(DIGEST_B, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    let report = project.report("deploy");
    assert_eq!(report["outcome"], "success", "{report:#}");
    let canary = &report["canary"];
    assert_eq!(canary["decision"], "promoted", "{report:#}");
    let steps = canary["steps"].as_array().unwrap();
    let weights: Vec<u64> = steps.iter().filter_map(|s| s["weight"].as_u64()).collect();
    assert_eq!(weights, [50, 100], "{report:#}");
    assert!(steps.iter().all(|s| s["verdict"] == "passed"), "{report:#}");
    assert_eq!(
        (
            steps[1]["stable_replicas"].as_u64(),
            steps[1]["canary_replicas"].as_u64()
        ),
        (Some(0), Some(2)),
        "at 100 % the canary carries everything"
    );
    assert_eq!(steps[1]["actual_share"], 100.0, "{report:#}");
    assert!(run.stderr.contains("promoting"), "{run:?}");

    // The stable runs the new digest at full size, labelled; the canary is gone.
    let stable = fake.get("Deployment", "staging", "web").unwrap();
    assert!(image_of(&stable).ends_with(DIGEST_B), "{stable:#}");
    assert_eq!(stable["spec"]["replicas"], 2);
    assert_eq!(
        stable["spec"]["template"]["metadata"]["labels"]["track"],
        "stable"
    );
    assert!(fake.get("Deployment", "staging", "web-canary").is_none());
    let promoted = fake.wait_for(PATIENCE, |f| {
        let pods = serving(f, "staging", "web");
        pods.len() == 2 && pods.iter().all(|p| !p.starts_with("web-canary-"))
    });
    assert!(promoted, "{:?}", serving(&fake, "staging", "web"));
}

const INGRESS_YAML: &str = "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  ingressClassName: nginx
  rules:
    - host: web.example.com
      http:
        paths:
          - path: /
            pathType: Prefix
            backend: {service: {name: web, port: {number: 80}}}
";

#[test]
fn with_ingress_nginx_each_step_sets_the_exact_weight_and_the_copies_go_on_promotion() {
    let prom = Prometheus::start();
    prom.exporter.set(&ratio_series("canary"), 0.0);
    let fake = FakeKube::start();
    let project = canary_project(
        &fake,
        &prom.url,
        4,
        "[{ weight: 25, pause: 1s }, { weight: 100, pause: 1s }]\n      trafficRouting: ingress-nginx",
    )
    .with_manifest("ingress.yaml", INGRESS_YAML);
    let first = project.deploy(DIGEST_A, &[]);
    assert_eq!(first.code, 0, "{first:?}");

    // What the canary's objects look like during each step's pause.
    let seen = std::sync::Mutex::new(Vec::new());
    let run = deploy_watching(&project, DIGEST_B, |line| {
        if line.starts_with("Canary at ") {
            let ingress = fake.get("Ingress", "staging", "web-canary");
            let service = fake.get("Service", "staging", "web-canary");
            seen.lock().unwrap().push((ingress, service));
        }
    });
    assert_eq!(run.code, 0, "{run:?}");
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.len(), 2, "{run:?}");
    for ((ingress, service), weight) in seen.iter().zip(["25", "100"]) {
        let ingress = ingress
            .as_ref()
            .expect("the canary Ingress during the step");
        let annotations = &ingress["metadata"]["annotations"];
        assert_eq!(annotations["nginx.ingress.kubernetes.io/canary"], "true");
        assert_eq!(
            annotations["nginx.ingress.kubernetes.io/canary-weight"], weight,
            "{ingress:#}"
        );
        assert_eq!(
            ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"],
            "web-canary"
        );
        let service = service
            .as_ref()
            .expect("the canary Service during the step");
        assert_eq!(
            service["spec"]["selector"]["track"], "canary",
            "{service:#}"
        );
    }
    let report = project.report("deploy");
    let canary = &report["canary"];
    assert_eq!(canary["routing"], "ingress-nginx", "{report:#}");
    assert_eq!(canary["decision"], "promoted", "{report:#}");
    let steps = canary["steps"].as_array().unwrap();
    assert_eq!(steps[0]["actual_share"], 25.0, "exact: {report:#}");
    assert_eq!(
        (
            steps[0]["stable_replicas"].as_u64(),
            steps[0]["canary_replicas"].as_u64()
        ),
        (Some(4), Some(1)),
        "the stable keeps its pods; the canary has capacity for its share"
    );
    assert!(fake.get("Ingress", "staging", "web-canary").is_none());
    assert!(fake.get("Service", "staging", "web-canary").is_none());
    assert!(fake.get("Deployment", "staging", "web-canary").is_none());
    assert!(
        fake.get("Ingress", "staging", "web").is_some(),
        "the service's own Ingress stays"
    );
    let stable = fake.get("Deployment", "staging", "web").unwrap();
    assert!(image_of(&stable).ends_with(DIGEST_B), "{stable:#}");
}

#[test]
fn a_canary_that_crashes_is_aborted_with_its_diagnosis_and_the_stable_untouched() {
    let prom = Prometheus::start();
    let fake = FakeKube::builder()
        .pod_behavior(&DIGEST_CRASH[7..19], Behavior::CrashLoop)
        .start();
    let project = canary_project(
        &fake,
        &prom.url,
        2,
        "[{ weight: 50, pause: 1s }, { weight: 100, pause: 1s }]",
    );
    let first = project.deploy(DIGEST_A, &[]);
    assert_eq!(first.code, 0, "{first:?}");

    let run = project.deploy(DIGEST_CRASH, &[]);
    assert_eq!(run.code, 1, "{run:?}");
    let report = project.report("deploy");
    let canary = &report["canary"];
    assert_eq!(canary["decision"], "aborted", "{report:#}");
    assert_eq!(
        canary["steps"][0]["verdict"], "rollout-failed",
        "{report:#}"
    );
    let entry = report["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "web-canary")
        .expect("the canary in the workloads");
    assert_eq!(entry["rollout"], "failed", "{report:#}");
    assert_eq!(
        entry["diagnosis"]["failure"]["reason"], "crash-loop",
        "{report:#}"
    );
    assert_eq!(entry["rollback"]["outcome"], "rolled-back", "{report:#}");
    let stable = fake.get("Deployment", "staging", "web").unwrap();
    assert!(image_of(&stable).ends_with(DIGEST_A), "{stable:#}");
    assert_eq!(
        stable["metadata"]["generation"], 1,
        "never written: {stable:#}"
    );
    assert!(fake.get("Deployment", "staging", "web-canary").is_none());
}

/// Benchmark, not a test (`scripts/bench-strategies` runs it): from "abort decided" to "stable
/// serving all traffic", against one rolling update of the stable from one release to the next
/// at full size (the target is less than that), in the same fake. Aborted at 25 % (the stable
/// kept most of its pods) and at 100 % (the stable at zero). Prints medians over `BENCH_RUNS`
/// (default 3); asserts nothing about time.
#[test]
#[ignore = "benchmark: scripts/bench-strategies"]
fn bench_strategy_canary_abort_to_stable() {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    // Pods that take half a second to become ready, so that starting them, not the fake's
    // bookkeeping, is what rollouts and aborts spend their time on, as on a cluster.
    let fake = || {
        FakeKube::builder()
            .pod_ready_delay(Duration::from_millis(500))
            .start()
    };
    let median = |v: &mut Vec<u64>| {
        v.sort_unstable();
        v[v.len() / 2]
    };
    let mut rollouts = Vec::new();
    for _ in 0..runs {
        let fake = fake();
        let project = sized(staging(&fake, ""), 4);
        for digest in [DIGEST_A, DIGEST_B] {
            let ok = project.deploy(digest, &[]);
            assert_eq!(ok.code, 0, "{ok:?}");
        }
        rollouts.push(rollout_ms(&project));
    }
    let rollout = median(&mut rollouts);
    let prom = Prometheus::start();
    for (case, steps) in [
        (
            "abort at 25 %",
            "[{ weight: 25, pause: 1s }, { weight: 100, pause: 1s }]",
        ),
        ("abort at 100 %", "[{ weight: 100, pause: 1s }]"),
    ] {
        let mut aborts = Vec::new();
        for _ in 0..runs {
            let fake = fake();
            let project = canary_project(&fake, &prom.url, 4, steps);
            prom.exporter.set(&ratio_series("canary"), 0.0);
            let first = project.deploy(DIGEST_A, &[]);
            assert_eq!(first.code, 0, "{first:?}");
            prom.exporter.set(&ratio_series("canary"), 0.5);
            std::thread::sleep(Duration::from_secs(2)); // scraped before the step's window
            let run = project.deploy(DIGEST_B, &[]);
            assert_eq!(run.code, 1, "{run:?}");
            aborts.push(
                project.report("deploy")["canary"]["abort_to_stable_ms"]
                    .as_u64()
                    .expect("the abort's time"),
            );
        }
        let abort = median(&mut aborts);
        println!(
            "canary {case}: abort decided → stable serving all traffic: median {abort} ms over {runs} runs ({aborts:?}); one rolling update of the stable (4 replicas, 500 ms to ready): median {rollout} ms ({rollouts:?}); ratio {:.2}",
            abort as f64 / rollout.max(1) as f64
        );
    }
}
