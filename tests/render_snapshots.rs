use std::path::Path;

use promote_action::config;
use promote_action::kube::Provenance;
use promote_action::plan::{PlanRequest, plan, to_yaml};

use crate::util::{DIGEST_A, DIGEST_B, assert_text_eq, example_config, read, repo_root};

/// Compares with `tests/snapshots/<name>`; `UPDATE_SNAPSHOTS=1` rewrites it instead.
fn check_snapshot(name: &str, actual: &str) {
    let path = repo_root().join("tests/snapshots").join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    assert!(
        path.exists(),
        "missing snapshot {}: run with UPDATE_SNAPSHOTS=1 and review it",
        path.display()
    );
    assert_text_eq(&read(&path), actual, &format!("snapshot {name}"));
}

fn provenance() -> Provenance {
    Provenance {
        git_sha: Some("0123456789abcdef0123456789abcdef01234567".into()),
        run_url: Some("https://github.com/studysphere/app/actions/runs/4242".into()),
    }
}

#[test]
fn studysphere_renders_as_snapshotted_for_every_environment() {
    let config = config::load(&example_config()).expect("the example is valid");
    let request = PlanRequest {
        images: vec![
            format!("auth-service=studysphere.azurecr.io/studysphere/auth-service@{DIGEST_A}"),
            format!("course-service=studysphere.azurecr.io/studysphere/course-service@{DIGEST_B}"),
        ],
        provenance: provenance(),
        ..Default::default()
    };
    let plan = plan(&config, &request).expect("renders");
    assert_eq!(plan.environments.len(), 3);
    for env in &plan.environments {
        for rendered in &env.services {
            check_snapshot(
                &format!("studysphere/{}/{}.yaml", env.name, rendered.service),
                &to_yaml(&rendered.objects).unwrap(),
            );
        }
        check_snapshot(
            &format!("studysphere/{}/hooks.yaml", env.name),
            &to_yaml(&env.hooks).unwrap(),
        );
    }
}

/// Writes a one-service promotion into a temp dir and renders its only environment.
fn render_inline(
    promotion: &str,
    deployment: &str,
    extra: &[(&str, &str)],
) -> Vec<serde_json::Value> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("svc")).unwrap();
    std::fs::write(dir.path().join("promotion.yml"), promotion).unwrap();
    std::fs::write(dir.path().join("svc/deployment.yaml"), deployment).unwrap();
    for (name, text) in extra {
        std::fs::write(dir.path().join("svc").join(name), text).unwrap();
    }
    let config = config::load(&dir.path().join("promotion.yml"))
        .unwrap_or_else(|e| panic!("{e}: {:?}", e.0));
    let request = PlanRequest {
        images: vec![format!("reg.example.io/team/web@{DIGEST_A}")],
        provenance: provenance(),
        ..Default::default()
    };
    let plan = plan(&config, &request).unwrap_or_else(|e| panic!("{e}: {:?}", e.0));
    plan.environments[0].services[0].objects.clone()
}

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 7
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      initContainers:
        - {name: migrate, image: 'reg.example.io/team/web:old'}
        - {name: other, image: 'docker.io/library/busybox:1'}
      containers:
        - name: web
          image: reg.example.io/team/web:old
          env: [{name: FEATURE_DARK_MODE, value: stale}, {name: KEEP, value: 'yes'}]
";

#[test]
fn yaml_11_words_and_numbers_stay_strings_in_config() {
    let objects = render_inline(
        "registry: reg.example.io
services: [{name: web, image: team/web, manifests: svc}]
environments:
  - name: dev
    config: {ENABLED: on, LEGACY: no, ANSWER: yes, OCTAL: 010, VERSION: 3.10, EMPTY: ''}
",
        DEPLOYMENT,
        &[],
    );
    let config_map = objects
        .iter()
        .find(|o| o["kind"] == "ConfigMap")
        .expect("a ConfigMap");
    let yaml = to_yaml(std::slice::from_ref(config_map)).unwrap();
    for (key, value) in [
        ("ENABLED", "on"),
        ("LEGACY", "no"),
        ("ANSWER", "yes"),
        ("OCTAL", "010"),
        ("VERSION", "3.10"),
    ] {
        assert_eq!(config_map["data"][key], value, "{key} as written");
        // And the YAML a person or kubectl reads back keeps it a string.
        let reparsed: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(
            reparsed["data"][key], value,
            "{key} after a YAML round trip:\n{yaml}"
        );
    }
}

#[test]
fn fixed_replicas_pin_the_image_everywhere_it_runs_and_replace_flag_variables() {
    let objects = render_inline(
        "registry: reg.example.io
services: [{name: web, image: team/web, manifests: svc}]
environments:
  - name: dev
    replicas: 3
    featureFlags: {darkMode: true}
",
        DEPLOYMENT,
        &[],
    );
    let d = objects.iter().find(|o| o["kind"] == "Deployment").unwrap();
    let pinned = format!("reg.example.io/team/web@{DIGEST_A}");
    assert_eq!(
        d["spec"]["replicas"], 3,
        "no autoscaling: the environment's count"
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        pinned.as_str()
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["initContainers"][0]["image"],
        pinned.as_str(),
        "same repository"
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["initContainers"][1]["image"],
        "docker.io/library/busybox:1"
    );
    let env = d["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap();
    let dark: Vec<_> = env
        .iter()
        .filter(|e| e["name"] == "FEATURE_DARK_MODE")
        .collect();
    assert_eq!(dark.len(), 1);
    assert_eq!(dark[0]["value"], "true");
    assert!(
        env.iter()
            .any(|e| e["name"] == "KEEP" && e["value"] == "yes")
    );
    assert!(
        !objects
            .iter()
            .any(|o| o["kind"] == "HorizontalPodAutoscaler")
    );
    let pdb = objects
        .iter()
        .find(|o| o["kind"] == "PodDisruptionBudget")
        .expect("3 replicas get a PDB");
    assert_eq!(pdb["spec"]["selector"], d["spec"]["selector"]);
}

#[test]
fn autoscaling_replaces_a_base_hpa_and_leaves_replicas_to_it() {
    let base_hpa = "apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec: {scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}, minReplicas: 1, maxReplicas: 2}
";
    let objects = render_inline(
        "registry: reg.example.io
services: [{name: web, image: team/web, manifests: svc}]
environments:
  - name: prod
    replicas: 3
    resources: {requests: {cpu: 100m}}
    autoscaling: {minReplicas: 3, maxReplicas: 6}
",
        DEPLOYMENT,
        &[("hpa.yaml", base_hpa)],
    );
    let hpas: Vec<_> = objects
        .iter()
        .filter(|o| o["kind"] == "HorizontalPodAutoscaler")
        .collect();
    assert_eq!(hpas.len(), 1);
    assert_eq!(hpas[0]["spec"]["minReplicas"], 3);
    assert_eq!(
        hpas[0]["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 80,
        "Kubernetes' default target"
    );
    let d = objects.iter().find(|o| o["kind"] == "Deployment").unwrap();
    assert!(
        d["spec"].get("replicas").is_none(),
        "replicas belong to the HPA"
    );
    let kinds: Vec<&str> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "Deployment",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget"
        ],
        "apply order"
    );
}

#[test]
fn autoscaling_without_a_cpu_request_is_a_located_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("svc")).unwrap();
    std::fs::write(
        dir.path().join("promotion.yml"),
        "registry: reg.example.io\nservices: [{name: web, image: team/web, manifests: svc}]\nenvironments:\n  - name: prod\n    autoscaling: {minReplicas: 2, maxReplicas: 4}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("svc/deployment.yaml"), DEPLOYMENT).unwrap();
    let config = config::load(&dir.path().join("promotion.yml")).unwrap();
    let errors = plan(&config, &PlanRequest::default()).unwrap_err().0;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].file, dir.path().join("svc/deployment.yaml"));
    assert_eq!(errors[0].pos.line, 1);
    assert!(
        errors[0].message.contains("needs a CPU request"),
        "{}",
        errors[0].message
    );
}

#[test]
fn config_changes_rename_the_config_map_and_touch_the_pod_template() {
    let render = |level: &str| {
        render_inline(
            &format!(
                "registry: reg.example.io\nservices: [{{name: web, image: team/web, manifests: svc}}]\nenvironments:\n  - name: dev\n    config: {{LOG_LEVEL: {level}}}\n"
            ),
            DEPLOYMENT,
            &[],
        )
    };
    let (a, b) = (render("debug"), render("info"));
    let name = |objects: &[serde_json::Value]| {
        objects.iter().find(|o| o["kind"] == "ConfigMap").unwrap()["metadata"]["name"].clone()
    };
    assert_ne!(name(&a), name(&b));
    let template = |objects: &[serde_json::Value]| {
        objects.iter().find(|o| o["kind"] == "Deployment").unwrap()["spec"]["template"].clone()
    };
    assert_ne!(template(&a), template(&b), "a config change rolls the pods");
    assert_eq!(render("debug"), a, "rendering is deterministic");
}

#[test]
fn snapshots_exist_for_the_whole_example() {
    let dir = repo_root().join("tests/snapshots/studysphere");
    for env in ["development", "testing", "production"] {
        for file in ["auth-service.yaml", "course-service.yaml", "hooks.yaml"] {
            assert!(
                Path::new(&dir.join(env).join(file)).exists(),
                "{env}/{file}"
            );
        }
    }
}
