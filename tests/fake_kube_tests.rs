//! The fake Kubernetes API server, checked with the real `kube` client (and kubectl, when it
//! is installed): the API semantics clients rely on, the controllers, and the pod script.

use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Pod, Secret, Service};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use crate::fake_kube::{Behavior, FakeKube, Fault, WatchDrop};

/// Generous bound for anything the fake does in milliseconds: a missing event fails the test
/// instead of hanging it. Never asserted as a duration.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

pub(crate) async fn cluster() -> (FakeKube, Client) {
    let fake = FakeKube::start();
    let client = fake.client().await;
    (fake, client)
}

/// Creates a namespace and waits for its controllers to add what they add (the `default`
/// ServiceAccount, `kube-root-ca.crt`), so later resourceVersions are the test's own.
pub(crate) async fn namespace(fake: &FakeKube, client: &Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": name } })).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace created");
    let settled = fake
        .wait_for_async(PATIENCE, |f| {
            f.get("ConfigMap", name, "kube-root-ca.crt").is_some()
        })
        .await;
    assert!(settled, "the namespace controllers ran");
}

fn deployment(name: &str, image: &str, replicas: i32) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name, "annotations": { "kubernetes.io/change-cause": format!("deploy {image}") } },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "app", "image": image, "ports": [{ "containerPort": 8080 }] }] },
            },
        },
    })
}

pub(crate) async fn apply<K>(
    api: &Api<K>,
    name: &str,
    manager: &str,
    body: &Value,
) -> Result<K, kube::Error>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch(name, &PatchParams::apply(manager), &Patch::Apply(body))
        .await
}

/// kubectl's rollout status rules for a Deployment (protocols.md §6): Ok(true) when done,
/// Ok(false) while waiting, Err on ProgressDeadlineExceeded.
fn rollout_state(d: &Deployment) -> Result<bool, String> {
    let status = d.status.clone().unwrap_or_default();
    let spec_replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    if d.metadata.generation.unwrap_or(0) > status.observed_generation.unwrap_or(0) {
        return Ok(false);
    }
    let progressing = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Progressing");
    if let Some(c) = progressing
        && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    {
        return Err(c.message.clone().unwrap_or_default());
    }
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    Ok(updated >= spec_replicas && replicas <= updated && available >= updated)
}

/// Watches one Deployment (by field selector, as kubectl does) until its rollout ends.
async fn wait_rollout(api: &Api<Deployment>, name: &str) -> (Deployment, Result<(), String>) {
    let wp = WatchParams::default()
        .fields(&format!("metadata.name={name}"))
        .timeout(60);
    let run = async {
        let mut stream = api.watch(&wp, "0").await.expect("watch starts").boxed();
        while let Some(event) = stream.try_next().await.expect("watch streams") {
            if let WatchEvent::Added(d) | WatchEvent::Modified(d) = event {
                match rollout_state(&d) {
                    Ok(true) => return (d, Ok(())),
                    Ok(false) => {}
                    Err(e) => return (d, Err(e)),
                }
            }
        }
        panic!("the watch ended before the rollout did");
    };
    tokio::time::timeout(PATIENCE, run)
        .await
        .expect("the rollout ends in time")
}

async fn owned_replica_sets(client: &Client, ns: &str, deploy: &Deployment) -> Vec<ReplicaSet> {
    let uid = deploy.uid().unwrap();
    let mut rss: Vec<ReplicaSet> = Api::<ReplicaSet>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|rs| rs.owner_references().iter().any(|o| o.uid == uid))
        .collect();
    rss.sort_by_key(revision);
    rss
}

fn revision(o: &impl ResourceExt) -> i64 {
    o.annotations()
        .get("deployment.kubernetes.io/revision")
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// A PATCH with any content type, as the client sends it.
pub(crate) async fn raw_patch(
    client: &Client,
    path: &str,
    content_type: &str,
    body: &Value,
) -> Result<Value, kube::Error> {
    let req = hyper::Request::patch(path)
        .header("content-type", content_type)
        .body(serde_json::to_vec(body).unwrap())
        .unwrap();
    client.request::<Value>(req).await
}

pub(crate) fn api_error(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(status) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_healthy_deployment_rolls_out_with_revision_one() {
    let (fake, client) = cluster().await;
    namespace(&fake, &client, "prod").await;
    let api = Api::<Deployment>::namespaced(client.clone(), "prod");
    let applied = apply(
        &api,
        "web",
        "promote-action",
        &deployment("web", "example.com/web:1", 3),
    )
    .await
    .expect("applied");
    assert_eq!(applied.metadata.generation, Some(1));
    assert!(applied.uid().is_some() && applied.creation_timestamp().is_some());

    let (done, result) = wait_rollout(&api, "web").await;
    assert_eq!(result, Ok(()));
    let status = done.status.clone().unwrap();
    assert_eq!(
        (
            status.replicas,
            status.updated_replicas,
            status.ready_replicas,
            status.available_replicas
        ),
        (Some(3), Some(3), Some(3), Some(3))
    );
    assert_eq!(status.observed_generation, Some(1));
    let conditions: Vec<(String, String, String)> = status
        .conditions
        .unwrap()
        .into_iter()
        .map(|c| (c.type_, c.status, c.reason.unwrap_or_default()))
        .collect();
    assert!(
        conditions.contains(&(
            "Available".into(),
            "True".into(),
            "MinimumReplicasAvailable".into()
        )),
        "{conditions:?}"
    );
    assert!(
        conditions.contains(&(
            "Progressing".into(),
            "True".into(),
            "NewReplicaSetAvailable".into()
        )),
        "{conditions:?}"
    );
    assert_eq!(revision(&done), 1);

    let rss = owned_replica_sets(&client, "prod", &done).await;
    assert_eq!(rss.len(), 1);
    let rs = &rss[0];
    let hash = rs.labels()["pod-template-hash"].clone();
    assert_eq!(rs.name_any(), format!("web-{hash}"));
    assert_eq!(revision(rs), 1);
    assert_eq!(
        rs.annotations()["kubernetes.io/change-cause"],
        "deploy example.com/web:1"
    );

    let pods = Api::<Pod>::namespaced(client.clone(), "prod")
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    assert_eq!(pods.items.len(), 3);
    for pod in &pods.items {
        assert_eq!(pod.labels()["pod-template-hash"], hash);
        assert_eq!(pod.owner_references()[0].name, rs.name_any());
        assert_eq!(pod.owner_references()[0].controller, Some(true));
        assert_eq!(
            pod.status.as_ref().unwrap().phase.as_deref(),
            Some("Running")
        );
    }
    let applies: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert_eq!(applies.len(), 1);
    assert_eq!(
        applies[0].content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    assert_eq!(
        applies[0].param("fieldManager").as_deref(),
        Some("promote-action")
    );
    assert_eq!(applies[0].json()["spec"]["replicas"], 3);
}

#[tokio::test]
async fn a_new_template_makes_revision_two_and_scales_the_old_replica_set_down() {
    let (fake, client) = cluster().await;
    namespace(&fake, &client, "prod").await;
    let api = Api::<Deployment>::namespaced(client.clone(), "prod");
    apply(
        &api,
        "web",
        "promote-action",
        &deployment("web", "example.com/web:1", 3),
    )
    .await
    .unwrap();
    let (first, result) = wait_rollout(&api, "web").await;
    assert_eq!(result, Ok(()));
    let old_pods: Vec<String> = fake
        .list("pods", Some("prod"))
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();

    let updated = apply(
        &api,
        "web",
        "promote-action",
        &deployment("web", "example.com/web:2", 3),
    )
    .await
    .unwrap();
    assert_eq!(
        updated.metadata.generation,
        Some(2),
        "a template change is a spec change"
    );
    let (done, result) = wait_rollout(&api, "web").await;
    assert_eq!(result, Ok(()));
    assert_eq!(revision(&done), 2);
    assert_eq!(done.status.as_ref().unwrap().observed_generation, Some(2));

    let rss = owned_replica_sets(&client, "prod", &done).await;
    assert_eq!(rss.len(), 2);
    assert_eq!(
        (revision(&rss[0]), rss[0].spec.as_ref().unwrap().replicas),
        (1, Some(0))
    );
    assert_eq!(
        (revision(&rss[1]), rss[1].spec.as_ref().unwrap().replicas),
        (2, Some(3))
    );
    assert_eq!(
        rss[1].annotations()["kubernetes.io/change-cause"],
        "deploy example.com/web:2"
    );
    assert_eq!(
        rss[1].annotations()["deployment.kubernetes.io/max-replicas"],
        "4",
        "3 + maxSurge 25% rounded up"
    );
    // The write that completed the rollout, with the instant it was stored.
    let changes = fake.changes("deployments", "prod", "web");
    let completed = changes
        .iter()
        .find(|c| {
            c.object["metadata"]["generation"] == 2
                && c.object["status"]["observedGeneration"] == 2
                && c.object["status"]["availableReplicas"] == 3
                && c.object["status"]["updatedReplicas"] == 3
                && c.object["status"]["replicas"] == 3
        })
        .expect("the completing write is recorded");
    assert_eq!(completed.event, "MODIFIED");
    assert!(completed.at >= changes[0].at);

    // The old pods terminate once the new ones are available.
    assert!(
        fake.wait_for_async(PATIENCE, |f| {
            let now = f.list("pods", Some("prod"));
            now.len() == 3
                && now.iter().all(|p| {
                    !old_pods.contains(&p["metadata"]["name"].as_str().unwrap().to_string())
                })
        })
        .await,
        "old pods are gone: {:#?}",
        fake.list("pods", Some("prod"))
    );
    // Scaling events as the deployment controller words them.
    let scaling: Vec<String> = fake
        .events_for("prod", "web")
        .iter()
        .filter(|e| e["reason"] == "ScalingReplicaSet")
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    let old_name = rss[0].name_any();
    assert!(
        scaling.contains(&format!("Scaled down replica set {old_name} from 3 to 2")),
        "{scaling:#?}"
    );
    assert!(
        scaling.iter().any(|m| m.ends_with("from 0 to 1")),
        "{scaling:#?}"
    );
    let _ = first;
}

#[tokio::test]
async fn a_crash_looping_image_exceeds_the_progress_deadline() {
    let (fake, client) = cluster().await;
    namespace(&fake, &client, "prod").await;
    let api = Api::<Deployment>::namespaced(client.clone(), "prod");
    apply(
        &api,
        "web",
        "promote-action",
        &deployment("web", "example.com/web:1", 2),
    )
    .await
    .unwrap();
    assert_eq!(wait_rollout(&api, "web").await.1, Ok(()));

    let mut bad = deployment("web", "example.com/web-crash:2", 2);
    bad["spec"]["progressDeadlineSeconds"] = json!(30);
    apply(&api, "web", "promote-action", &bad).await.unwrap();
    let (done, result) = wait_rollout(&api, "web").await;
    let new_rs = owned_replica_sets(&client, "prod", &done)
        .await
        .pop()
        .unwrap()
        .name_any();
    assert_eq!(
        result,
        Err(format!(
            "ReplicaSet \"{new_rs}\" has timed out progressing."
        ))
    );
    let status = done.status.unwrap();
    assert_eq!(
        status.available_replicas,
        Some(2),
        "maxUnavailable 25% of 2 is 0: the old pods stay"
    );
    assert_eq!(status.updated_replicas, Some(1), "maxSurge 25% of 2 is 1");
    assert_eq!(
        status.unavailable_replicas, None,
        "zero is left out, like Go's omitempty"
    );

    let pods = Api::<Pod>::namespaced(client.clone(), "prod");
    // The container alternates between running and CrashLoopBackOff; look while it backs off.
    let backing_off = fake
        .wait_for_async(PATIENCE, |f| {
            f.list("pods", Some("prod")).iter().any(|p| {
                p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
                    == "CrashLoopBackOff"
            })
        })
        .await;
    assert!(backing_off);
    let crashing = pods
        .list(&ListParams::default().labels(&format!(
            "pod-template-hash={}",
            new_rs.trim_start_matches("web-")
        )))
        .await
        .unwrap()
        .items;
    assert_eq!(crashing.len(), 1);
    let cs = &crashing[0]
        .status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0];
    let state = cs.state.as_ref().unwrap();
    let reason = state.waiting.as_ref().and_then(|w| w.reason.as_deref());
    assert!(
        reason == Some("CrashLoopBackOff") || state.running.is_some(),
        "{state:?}"
    );
    let last = cs.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!((last.exit_code, last.reason.as_deref()), (1, Some("Error")));
    assert!(cs.restart_count >= 1);
    assert!(!cs.ready);
    let pod_name = crashing[0].name_any();
    let backoffs = fake
        .events_for("prod", &pod_name)
        .into_iter()
        .filter(|e| e["reason"] == "BackOff" && e["type"] == "Warning")
        .count();
    assert_eq!(backoffs, 1, "repeats fold into one event's count");
    let log = pods.logs(&pod_name, &Default::default()).await.unwrap();
    assert!(log.contains("DATABASE_URL is not set"), "{log}");
}

#[tokio::test]
async fn a_dry_run_returns_the_would_be_object_and_stores_nothing() {
    let (fake, client) = cluster().await;
    namespace(&fake, &client, "prod").await;
    let api = Api::<Deployment>::namespaced(client.clone(), "prod");
    let before = fake.resource_version();
    let dry = api
        .patch(
            "web",
            &PatchParams::apply("promote-action").dry_run(),
            &Patch::Apply(&deployment("web", "example.com/web:1", 2)),
        )
        .await
        .expect("dry run accepted");
    assert!(dry.uid().is_some());
    assert_eq!(dry.metadata.resource_version, None);
    assert_eq!(
        dry.spec.as_ref().unwrap().revision_history_limit,
        Some(10),
        "defaulted"
    );
    assert_eq!(
        dry.metadata.managed_fields.as_ref().unwrap()[0]
            .manager
            .as_deref(),
        Some("promote-action")
    );
    assert_eq!(fake.resource_version(), before);
    assert!(fake.get("Deployment", "prod", "web").is_none());
    let missing = api_error(api.get("web").await.unwrap_err());
    assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));
    assert_eq!(missing.message, "deployments.apps \"web\" not found");

    // A rejected object is rejected in a dry run too, with the real field path.
    let mut bad = deployment("web", "example.com/web:1", 2);
    bad["spec"]["template"]["metadata"]["labels"] = json!({ "app": "other" });
    let e = api_error(
        api.patch(
            "web",
            &PatchParams::apply("promote-action").dry_run(),
            &Patch::Apply(&bad),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    let causes = e.details.unwrap().causes;
    assert_eq!(causes[0].field, "spec.template.metadata.labels");
    assert!(
        e.message
            .contains("`selector` does not match template `labels`"),
        "{}",
        e.message
    );
}

/// A change inside a list item (`kubectl set env` adding a variable to a container) is owned
/// field by field, as structured-merge-diff compares: the container itself stays its applier's.
#[tokio::test]
async fn an_update_inside_a_list_item_owns_only_the_fields_it_changed() {
    let (fake, client) = cluster().await;
    namespace(&fake, &client, "prod").await;
    let api = Api::<Deployment>::namespaced(client.clone(), "prod");
    apply(
        &api,
        "web",
        "promote-action",
        &deployment("web", "example.com/web:1", 2),
    )
    .await
    .unwrap();
    let patch = json!({ "spec": { "template": { "spec": { "containers": [
        { "name": "app", "env": [{ "name": "DEBUG", "value": "1" }] },
    ] } } } });
    let params = PatchParams {
        field_manager: Some("kubectl-set".into()),
        ..PatchParams::default()
    };
    api.patch("web", &params, &Patch::Strategic(&patch))
        .await
        .unwrap();
    let live = fake.get("Deployment", "prod", "web").unwrap();
    let entries = live["metadata"]["managedFields"].as_array().unwrap();
    let set = entries
        .iter()
        .find(|e| e["manager"] == "kubectl-set")
        .unwrap();
    let container =
        &set["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"app\"}"];
    assert!(container.get(".").is_none(), "{set:#}");
    assert!(
        container["f:env"]["k:{\"name\":\"DEBUG\"}"]
            .get(".")
            .is_some(),
        "{set:#}"
    );
    let applied = entries
        .iter()
        .find(|e| e["manager"] == "promote-action")
        .unwrap();
    assert!(
        applied["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
            ["k:{\"name\":\"app\"}"]
            .get(".")
            .is_some(),
        "{applied:#}"
    );
}

#[tokio::test]
async fn an_apply_conflict_names_the_other_manager_unless_forced() {
    let (fake, client) = cluster().await;
    namespace(&fake, &client, "prod").await;
    let api = Api::<Deployment>::namespaced(client.clone(), "prod");
    apply(
        &api,
        "web",
        "promote-action",
        &deployment("web", "example.com/web:1", 2),
    )
    .await
    .unwrap();
    // Someone scales by hand with a merge patch: an Update manager now owns spec.replicas.
    api.patch(
        "web",
        &PatchParams {
            field_manager: Some("kubectl-scale".into()),
            ..PatchParams::default()
        },
        &Patch::Merge(json!({ "spec": { "replicas": 5 } })),
    )
    .await
    .unwrap();
    let e = api_error(
        apply(
            &api,
            "web",
            "promote-action",
            &deployment("web", "example.com/web:2", 2),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        e.message,
        "Apply failed with 1 conflict: conflict with \"kubectl-scale\" using apps/v1: .spec.replicas"
    );
    let cause = &e.details.unwrap().causes[0];
    assert_eq!(
        (
            cause.reason.as_str(),
            cause.message.as_str(),
            cause.field.as_str()
        ),
        (
            "FieldManagerConflict",
            "conflict with \"kubectl-scale\" using apps/v1",
            ".spec.replicas"
        )
    );
    // Another applier conflicts by plain name.
    let e = api_error(
        apply(
            &api,
            "web",
            "other-tool",
            &deployment("web", "example.com/web:3", 2),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        e.message,
        "Apply failed with 3 conflicts: conflicts with \"kubectl-scale\" using apps/v1:\n- .spec.replicas\n\
         conflicts with \"promote-action\":\n- .metadata.annotations.kubernetes.io/change-cause\n\
         - .spec.template.spec.containers[name=\"app\"].image"
    );

    // Same value: no conflict. Forced: ownership moves.
    let mut same = deployment("web", "example.com/web:1", 5);
    same["metadata"]["annotations"] =
        json!({ "kubernetes.io/change-cause": "deploy example.com/web:1" });
    apply(&api, "web", "promote-action", &same)
        .await
        .expect("agreeing on a value is no conflict");
    let forced = api
        .patch(
            "web",
            &PatchParams::apply("promote-action").force(),
            &Patch::Apply(&deployment("web", "example.com/web:2", 2)),
        )
        .await
        .expect("forced");
    assert_eq!(forced.spec.as_ref().unwrap().replicas, Some(2));
    let managers: Vec<(String, String)> = forced
        .managed_fields()
        .iter()
        .map(|m| (m.manager.clone().unwrap(), m.operation.clone().unwrap()))
        .collect();
    assert!(
        !managers.contains(&("kubectl-scale".into(), "Update".into())),
        "lost its only field: {managers:?}"
    );
    let fields = serde_json::to_value(&forced.managed_fields()[0].fields_v1).unwrap();
    assert!(
        fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"app\"}"]["."]
            .is_object(),
        "{fields:#}"
    );
}

#[tokio::test]
async fn a_json_patch_of_the_template_rolls_back_like_rollout_undo() {
    let (fake, client) = cluster().await;
    namespace(&fake, &client, "prod").await;
    let api = Api::<Deployment>::namespaced(client.clone(), "prod");
    apply(
        &api,
        "web",
        "promote-action",
        &deployment("web", "example.com/web:1", 2),
    )
    .await
    .unwrap();
    let (first, _) = wait_rollout(&api, "web").await;
    apply(
        &api,
        "web",
        "promote-action",
        &deployment("web", "example.com/web:2", 2),
    )
    .await
    .unwrap();
    let (second, _) = wait_rollout(&api, "web").await;
    let rss = owned_replica_sets(&client, "prod", &second).await;
    let mut template = serde_json::to_value(&rss[0].spec.as_ref().unwrap().template).unwrap();
    template["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("pod-template-hash");
    let undo = json!([
        { "op": "replace", "path": "/spec/template", "value": template },
        { "op": "replace", "path": "/metadata/annotations", "value": { "kubernetes.io/change-cause": "deploy example.com/web:1", "deployment.kubernetes.io/revision": "2" } },
    ]);
    // kube's Patch::Json needs its `jsonpatch` feature; the wire format is what matters here.
    raw_patch(
        &client,
        "/apis/apps/v1/namespaces/prod/deployments/web",
        "application/json-patch+json",
        &undo,
    )
    .await
    .expect("json patch");
    let (third, result) = wait_rollout(&api, "web").await;
    assert_eq!(result, Ok(()));
    assert_eq!(revision(&third), 3);
    let rss = owned_replica_sets(&client, "prod", &third).await;
    assert_eq!(
        rss.len(),
        2,
        "the old ReplicaSet came back instead of a new one"
    );
    let back = rss
        .iter()
        .find(|rs| rs.name_any() == first_rs_name(&rss, &first))
        .unwrap();
    assert_eq!(revision(back), 3);
    assert_eq!(
        back.annotations()["deployment.kubernetes.io/revision-history"],
        "1"
    );
    assert_eq!(back.spec.as_ref().unwrap().replicas, Some(2));
}

fn first_rs_name(rss: &[ReplicaSet], first: &Deployment) -> String {
    let image = |rs: &ReplicaSet| {
        rs.spec
            .as_ref()
            .unwrap()
            .template
            .as_ref()
            .unwrap()
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
            .image
            .clone()
    };
    let wanted = first
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .image
        .clone();
    rss.iter()
        .find(|rs| image(rs) == wanted)
        .unwrap()
        .name_any()
}

/// A raw HTTP/1.1 exchange, for what the kube client hides (headers, unauthenticated calls).
fn raw(fake: &FakeKube, method: &str, path: &str, token: Option<&str>) -> (u16, String, Value) {
    use std::io::{Read, Write};
    let addr = fake.url().trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (
        code,
        head.to_ascii_lowercase(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn requests_need_the_kubeconfig_token() {
    let fake = FakeKube::start();
    let (code, head, body) = raw(&fake, "GET", "/api/v1/namespaces", None);
    assert_eq!(code, 401);
    assert!(head.contains("www-authenticate: bearer"), "{head}");
    assert_eq!(body["reason"], "Unauthorized");
    let (code, _, body) = raw(&fake, "GET", "/api/v1/namespaces", Some(&fake.token()));
    assert_eq!(code, 200);
    assert_eq!(body["kind"], "NamespaceList");
    let names: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["default", "kube-node-lease", "kube-public", "kube-system"]
    );
    assert!(
        body["items"][0].get("kind").is_none(),
        "list items carry no kind, like the real server"
    );

    // Through kube: a kubeconfig with another token is refused.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let wrong =
        kube::config::Kubeconfig::from_yaml(&fake.kubeconfig_yaml_with("ctx", "default", "nope"))
            .unwrap();
    let config = kube::Config::from_custom_kubeconfig(wrong, &Default::default())
        .await
        .unwrap();
    let client = Client::try_from(config).unwrap();
    let e = api_error(
        Api::<Namespace>::all(client)
            .list(&ListParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 401);

    let dir = tempfile::tempdir().unwrap();
    let path = fake.write_kubeconfig(dir.path());
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.contains(&fake.url()) && text.contains("token: fake-kube-token"),
        "{text}"
    );
    let version = fake.client().await.apiserver_version().await.unwrap();
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "33")
    );
}

#[tokio::test]
async fn a_missing_namespace_and_a_missing_object_are_404() {
    let (fake, client) = cluster().await;
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "nowhere");
    let cm: ConfigMap =
        serde_json::from_value(json!({ "metadata": { "name": "c" }, "data": { "k": "v" } }))
            .unwrap();
    let e = api_error(cms.create(&PostParams::default(), &cm).await.unwrap_err());
    assert_eq!(
        (e.code, e.reason.as_str(), e.message.as_str()),
        (404, "NotFound", "namespaces \"nowhere\" not found")
    );
    let e = api_error(
        apply(
            &cms,
            "c",
            "promote-action",
            &json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "c" } }),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 404);
    assert!(
        cms.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "listing an empty namespace is fine"
    );

    namespace(&fake, &client, "prod").await;
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "prod");
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let e = api_error(cms.create(&PostParams::default(), &cm).await.unwrap_err());
    assert_eq!(
        (e.code, e.reason.as_str(), e.message.as_str()),
        (409, "AlreadyExists", "configmaps \"c\" already exists")
    );
    let e = api_error(cms.get("d").await.unwrap_err());
    assert_eq!(
        (e.code, e.message.as_str()),
        (404, "configmaps \"d\" not found")
    );
    let e = api_error(cms.delete("d", &DeleteParams::default()).await.unwrap_err());
    assert_eq!(e.code, 404);
    let e = api_error(
        Api::<Namespace>::all(client.clone())
            .delete("default", &DeleteParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
}

#[tokio::test]
async fn a_stale_watch_gets_an_expired_error_event() {
    let fake = FakeKube::builder().watch_history(5).start();
    let client = fake.client().await;
    namespace(&fake, &client, "prod").await;
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "prod");
    let first = apply(&cms, "c", "t", &json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "c" }, "data": { "n": "0" } }))
        .await
        .unwrap();
    let from = first.resource_version().unwrap();
    for n in 1..=10 {
        apply(&cms, "c", "t", &json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "c" }, "data": { "n": n.to_string() } }))
            .await
            .unwrap();
    }
    let mut stream = cms
        .watch(&WatchParams::default(), &from)
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await.unwrap() {
        Some(WatchEvent::Error(e)) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
            assert!(
                e.message
                    .starts_with(&format!("too old resource version: {from} (")),
                "{}",
                e.message
            );
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    assert!(
        stream.try_next().await.unwrap().is_none(),
        "the stream ends after the error"
    );

    // A recent version replays what came after it, then streams live changes.
    let latest = cms.get("c").await.unwrap().resource_version().unwrap();
    let mut stream = cms
        .watch(&WatchParams::default().labels("x=y"), &latest)
        .await
        .unwrap()
        .boxed();
    let mut labelled = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "c", "labels": { "x": "y" } }, "data": { "n": "11" } });
    apply(&cms, "c", "t", &labelled).await.unwrap();
    labelled["metadata"]["labels"]["x"] = json!("z");
    apply(&cms, "c", "t", &labelled).await.unwrap();
    let first = stream.try_next().await.unwrap().unwrap();
    assert!(
        matches!(first, WatchEvent::Added(ref c) if c.labels()["x"] == "y"),
        "entering the selection is ADDED: {first:?}"
    );
    let second = stream.try_next().await.unwrap().unwrap();
    assert!(
        matches!(second, WatchEvent::Deleted(_)),
        "leaving it is DELETED: {second:?}"
    );
}

#[tokio::test]
async fn watches_drop_when_told_and_resume_from_their_last_version() {
    let fake = FakeKube::builder()
        .drop_watches_after(WatchDrop::AfterEvents(2))
        .start();
    let client = fake.client().await;
    namespace(&fake, &client, "prod").await;
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "prod");
    let start = fake.resource_version().to_string();
    for n in 0..5 {
        let cm: ConfigMap =
            serde_json::from_value(json!({ "metadata": { "name": format!("c{n}") } })).unwrap();
        cms.create(&PostParams::default(), &cm).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut from = start;
    let mut watches = 0;
    while seen.len() < 5 {
        watches += 1;
        let mut stream = cms
            .watch(&WatchParams::default(), &from)
            .await
            .unwrap()
            .boxed();
        while let Some(event) = stream.try_next().await.unwrap() {
            if let WatchEvent::Added(c) = event {
                from = c.resource_version().unwrap();
                seen.push(c.name_any());
            }
            if seen.len() == 5 {
                break;
            }
        }
    }
    assert_eq!(seen, ["c0", "c1", "c2", "c3", "c4"]);
    assert_eq!(watches, 3, "two events per connection");

    // Time-based drops and bookmarks.
    fake.set_watch_drop(Some(WatchDrop::After(Duration::from_millis(300))));
    let mut stream = cms
        .watch(
            &WatchParams::default().timeout(60),
            &fake.resource_version().to_string(),
        )
        .await
        .unwrap()
        .boxed();
    let ended = tokio::time::timeout(PATIENCE, async {
        while stream.try_next().await.unwrap().is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the watch ended by itself");
}

#[tokio::test]
async fn a_watch_from_zero_lists_first_and_bookmarks_when_asked() {
    let fake = FakeKube::builder()
        .bookmark_interval(Duration::from_millis(50))
        .start();
    let client = fake.client().await;
    namespace(&fake, &client, "prod").await;
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "prod");
    let mut stream = cms
        .watch(&WatchParams::default().timeout(2), "0")
        .await
        .unwrap()
        .boxed();
    let mut added = Vec::new();
    let mut bookmark = None;
    while let Some(event) = stream.try_next().await.unwrap() {
        match event {
            WatchEvent::Added(c) => added.push(c.name_any()),
            WatchEvent::Bookmark(b) => {
                bookmark = Some(b.metadata.resource_version);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(added, ["kube-root-ca.crt"]);
    assert_eq!(bookmark, Some(fake.resource_version().to_string()));

    // sendInitialEvents: the state, then a bookmark marking its end.
    let wp = WatchParams::default().initial_events().timeout(2);
    let mut stream = cms.watch(&wp, "").await.unwrap().boxed();
    let first = stream.try_next().await.unwrap().unwrap();
    assert!(matches!(first, WatchEvent::Added(_)));
    match stream.try_next().await.unwrap().unwrap() {
        WatchEvent::Bookmark(b) => assert_eq!(
            b.metadata
                .annotations
                .get("k8s.io/initial-events-end")
                .map(String::as_str),
            Some("true")
        ),
        other => panic!("expected the initial-events-end bookmark, got {other:?}"),
    }
}

#[tokio::test]
async fn injected_faults_answer_429_with_retry_after_and_500() {
    let fake = FakeKube::builder()
        .fault(Fault::TooManyRequests {
            path_prefix: "/api/v1/namespaces".into(),
            times: 1,
            retry_after: 3,
        })
        .start();
    let (code, head, body) = raw(&fake, "GET", "/api/v1/namespaces", Some(&fake.token()));
    assert_eq!(code, 429);
    assert!(head.contains("retry-after: 3"), "{head}");
    assert_eq!(
        (
            body["reason"].as_str(),
            body["details"]["retryAfterSeconds"].as_i64()
        ),
        (Some("TooManyRequests"), Some(3))
    );
    let (code, _, _) = raw(&fake, "GET", "/api/v1/namespaces", Some(&fake.token()));
    assert_eq!(code, 200, "a fault fires only `times` times");

    let client = fake.client().await;
    fake.inject(Fault::InternalError {
        path_prefix: "PATCH /apis/apps".into(),
        times: 2,
    });
    let api = Api::<Deployment>::namespaced(client.clone(), "default");
    for _ in 0..2 {
        let e = api_error(
            apply(
                &api,
                "web",
                "promote-action",
                &deployment("web", "example.com/web:1", 1),
            )
            .await
            .unwrap_err(),
        );
        assert_eq!((e.code, e.reason.as_str()), (500, "InternalError"));
    }
    apply(
        &api,
        "web",
        "promote-action",
        &deployment("web", "example.com/web:1", 1),
    )
    .await
    .expect("the third try succeeds");
    // kube's default client retries 429, 503 and 504 by itself (honouring Retry-After).
    fake.inject(Fault::Status {
        path_prefix: "/apis/apps/v1/namespaces/default/deployments/web".into(),
        times: 2,
        code: 503,
        reason: "ServiceUnavailable".into(),
        message: "the server is currently unable to handle the request".into(),
    });
    api.get("web").await.expect("retried by the client");
    fake.inject(Fault::DropConnection {
        path_prefix: "GET /apis/apps".into(),
        times: 1,
    });
    assert!(
        !matches!(api.get("web").await.unwrap_err(), kube::Error::Api(_)),
        "no answer at all"
    );
    api.get("web").await.expect("served again");
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 200, 500, 500, 201, 503, 503, 200, 0, 200]);
}

#[tokio::test]
async fn a_lease_update_with_a_stale_resource_version_conflicts() {
    let (fake, client) = cluster().await;
    namespace(&fake, &client, "prod").await;
    let leases = Api::<Lease>::namespaced(client.clone(), "prod");
    let lease: Lease = serde_json::from_value(json!({
        "metadata": { "name": "promote-web" },
        "spec": { "holderIdentity": "run-1", "leaseDurationSeconds": 30, "acquireTime": "2025-01-01T00:00:00.000000Z", "renewTime": "2025-01-01T00:00:00.000000Z" },
    }))
    .unwrap();
    let created = leases.create(&PostParams::default(), &lease).await.unwrap();
    let mut renewed = created.clone();
    renewed.spec.as_mut().unwrap().renew_time =
        Some(serde_json::from_value(json!("2025-01-01T00:00:10.000000Z")).unwrap());
    let after = leases
        .replace("promote-web", &PostParams::default(), &renewed)
        .await
        .expect("fresh version");
    assert!(after.resource_version() > created.resource_version());
    assert_eq!(after.metadata.generation, None, "leases have no generation");
    let mut stale = created.clone();
    stale.spec.as_mut().unwrap().holder_identity = Some("run-2".into());
    let e = api_error(
        leases
            .replace("promote-web", &PostParams::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        e.message,
        "Operation cannot be fulfilled on leases.coordination.k8s.io \"promote-web\": the object has been modified; please apply your changes to the latest version and try again"
    );
    // A create of a held lease is AlreadyExists: how a second run learns it must wait.
    let e = api_error(
        leases
            .create(&PostParams::default(), &lease)
            .await
            .unwrap_err(),
    );
    assert_eq!(e.reason, "AlreadyExists");
    // A merge patch carrying a resourceVersion is a precondition too.
    let e = api_error(
        leases
            .patch(
                "promote-web",
                &PatchParams::default(),
                &Patch::Merge(
                    json!({ "metadata": { "resourceVersion": created.resource_version() } }),
                ),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 409);
}

#[tokio::test]
async fn pod_logs_follow_tail_and_name_their_container() {
    let fake = FakeKube::builder()
        .pod_log("migrate", "applying 001\napplying 002\nmigrations done\n")
        .start();
    let client = fake.client().await;
    namespace(&fake, &client, "prod").await;
    let jobs = Api::<Job>::namespaced(client.clone(), "prod");
    let job = json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": { "name": "migrate" },
        "spec": { "backoffLimit": 0, "template": { "spec": { "restartPolicy": "Never", "containers": [{ "name": "migrate", "image": "example.com/migrate:1" }] } } },
    });
    apply(&jobs, "migrate", "promote-action", &job)
        .await
        .unwrap();
    let pods = Api::<Pod>::namespaced(client.clone(), "prod");
    let pod_name = loop {
        let listed = pods
            .list(&ListParams::default().labels("job-name=migrate"))
            .await
            .unwrap();
        if let Some(p) = listed.items.first() {
            break p.name_any();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    // Following from the start streams the whole log and ends when the container exits.
    let started = fake
        .wait_for_async(PATIENCE, |f| !f.get("pods", "prod", &pod_name).unwrap()["status"]["containerStatuses"][0]["containerID"].is_null())
        .await;
    assert!(started);
    // `logs` reads the body to its end: a followed log ends when the container exits.
    let followed = pods
        .logs(
            &pod_name,
            &kube::api::LogParams {
                follow: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(followed, "applying 001\napplying 002\nmigrations done\n");
    let tail = pods
        .logs(
            &pod_name,
            &kube::api::LogParams {
                tail_lines: Some(1),
                container: Some("migrate".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(tail, "migrations done\n");
    let e = api_error(
        pods.logs(
            &pod_name,
            &kube::api::LogParams {
                previous: true,
                ..Default::default()
            },
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            400,
            format!("previous terminated container \"migrate\" in pod \"{pod_name}\" not found")
                .as_str()
        )
    );
    let done = fake
        .wait_for_async(PATIENCE, |f| {
            f.get("jobs", "prod", "migrate").unwrap()["status"]["succeeded"] == 1
        })
        .await;
    assert!(done, "{:#}", fake.get("jobs", "prod", "migrate").unwrap());
}

#[tokio::test]
async fn logs_of_a_container_that_never_started_say_why() {
    let (fake, client) = cluster().await;
    namespace(&fake, &client, "prod").await;
    let api = Api::<Deployment>::namespaced(client.clone(), "prod");
    apply(
        &api,
        "web",
        "promote-action",
        &deployment("web", "example.com/web-pull-fail@sha256:0123", 1),
    )
    .await
    .unwrap();
    let pulled = fake
        .wait_for_async(PATIENCE, |f| {
            f.list("pods", Some("prod")).iter().any(|p| {
                p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
                    == "ImagePullBackOff"
            })
        })
        .await;
    assert!(pulled, "{:#?}", fake.list("pods", Some("prod")));
    let pod = &fake.list("pods", Some("prod"))[0];
    assert_eq!(pod["status"]["phase"], "Pending");
    let name = pod["metadata"]["name"].as_str().unwrap();
    let e = api_error(
        Api::<Pod>::namespaced(client.clone(), "prod")
            .logs(name, &Default::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (e.code, e.message),
        (
            400,
            format!(
                "container \"app\" in pod \"{name}\" is waiting to start: trying and failing to pull image"
            )
        )
    );
    let reasons: Vec<(String, String)> = fake
        .events_for("prod", name)
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().into(),
                e["reason"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        reasons.contains(&("Warning".into(), "Failed".into()))
            && reasons.contains(&("Normal".into(), "BackOff".into())),
        "{reasons:?}"
    );
    let failed: Vec<String> = fake
        .events_for("prod", name)
        .iter()
        .filter(|e| e["reason"] == "Failed")
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    assert!(
        failed.contains(&"Error: ErrImagePull".to_string())
            && failed.contains(&"Error: ImagePullBackOff".to_string()),
        "{failed:?}"
    );
}

#[tokio::test]
async fn events_are_found_by_involved_object_and_pods_by_label() {
    let fake = FakeKube::builder().nodes(1).start();
    let client = fake.client().await;
    namespace(&fake, &client, "prod").await;
    let api = Api::<Deployment>::namespaced(client.clone(), "prod");
    apply(
        &api,
        "web",
        "promote-action",
        &deployment("web", "example.com/web-unschedulable:1", 2),
    )
    .await
    .unwrap();
    let pods = Api::<Pod>::namespaced(client.clone(), "prod");
    let pending = fake
        .wait_for_async(PATIENCE, |f| {
            f.list("pods", Some("prod"))
                .iter()
                .filter(|p| p["status"]["conditions"][0]["reason"] == "Unschedulable")
                .count()
                == 2
        })
        .await;
    assert!(pending);
    let listed = pods
        .list(&ListParams::default().labels("app=web,app notin (api)"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 2);
    assert!(
        pods.list(&ListParams::default().labels("app=api"))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(
        pods.list(&ListParams::default().labels("!app"))
            .await
            .unwrap()
            .items
            .len(),
        0
    );
    assert_eq!(
        pods.list(&ListParams::default().fields("status.phase=Pending"))
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    let e = api_error(
        pods.list(&ListParams::default().labels("app in web"))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (400, "BadRequest"));
    let e = api_error(
        pods.list(&ListParams::default().fields("spec.image=x"))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.message, "field label not supported: spec.image");

    let pod = &listed.items[0];
    let scheduled = &pod.status.as_ref().unwrap().conditions.as_ref().unwrap()[0];
    assert_eq!(
        (scheduled.type_.as_str(), scheduled.status.as_str()),
        ("PodScheduled", "False")
    );
    assert!(
        scheduled
            .message
            .as_deref()
            .unwrap()
            .starts_with("0/1 nodes are available")
    );
    let events = Api::<Event>::namespaced(client.clone(), "prod")
        .list(&ListParams::default().fields(&format!(
            "involvedObject.name={},involvedObject.kind=Pod",
            pod.name_any()
        )))
        .await
        .unwrap();
    assert_eq!(events.items.len(), 1, "{:#?}", events.items);
    let event = &events.items[0];
    assert_eq!(
        (
            event.reason.as_deref(),
            event.type_.as_deref(),
            event.source.as_ref().unwrap().component.as_deref()
        ),
        (
            Some("FailedScheduling"),
            Some("Warning"),
            Some("default-scheduler")
        )
    );
    assert_eq!(event.involved_object.uid, pod.uid());
    let all_events = Api::<Event>::all(client.clone())
        .list(&ListParams::default().fields("reason=SuccessfulCreate"))
        .await
        .unwrap();
    assert_eq!(all_events.items.len(), 2, "the ReplicaSet created two pods");
}

#[tokio::test]
async fn the_pod_script_covers_oom_missing_config_and_never_ready() {
    let (fake, client) = cluster().await;
    namespace(&fake, &client, "prod").await;
    let api = Api::<Deployment>::namespaced(client.clone(), "prod");
    apply(
        &api,
        "oom",
        "t",
        &deployment("oom", "example.com/app-oom:1", 1),
    )
    .await
    .unwrap();
    apply(
        &api,
        "scripted",
        "t",
        &deployment("scripted", "example.com/app-missing-config:1", 1),
    )
    .await
    .unwrap();
    apply(
        &api,
        "unready",
        "t",
        &deployment("unready", "example.com/app-never-ready:1", 1),
    )
    .await
    .unwrap();
    let mut real = deployment("real", "example.com/app:1", 1);
    real["spec"]["template"]["spec"]["containers"][0]["env"] = json!([
        { "name": "DB", "valueFrom": { "secretKeyRef": { "name": "db", "key": "url" } } },
    ]);
    apply(&api, "real", "t", &real).await.unwrap();
    fake.set_pod_behavior("custom", Behavior::CrashLoop);
    apply(
        &api,
        "custom",
        "t",
        &deployment("custom", "example.com/custom-but-ready:1", 1),
    )
    .await
    .unwrap();

    let state_of = |f: &FakeKube, app: &str| -> Value {
        f.list("pods", Some("prod"))
            .into_iter()
            .find(|p| p["metadata"]["labels"]["app"] == app)
            .map(|p| p["status"]["containerStatuses"][0].clone())
            .unwrap_or(Value::Null)
    };
    let settled = fake
        .wait_for_async(PATIENCE, |f| {
            state_of(f, "oom")["lastState"]["terminated"]["reason"] == "OOMKilled"
                && state_of(f, "scripted")["state"]["waiting"]["reason"]
                    == "CreateContainerConfigError"
                && state_of(f, "real")["state"]["waiting"]["reason"] == "CreateContainerConfigError"
                && state_of(f, "unready")["state"]["running"].is_object()
                && state_of(f, "custom")["restartCount"].as_i64() >= Some(1)
        })
        .await;
    assert!(settled, "{:#?}", fake.list("pods", Some("prod")));
    assert_eq!(
        state_of(&fake, "oom")["lastState"]["terminated"]["exitCode"],
        137
    );
    assert_eq!(
        state_of(&fake, "real")["state"]["waiting"]["message"],
        "secret \"db\" not found"
    );
    assert_eq!(state_of(&fake, "unready")["ready"], false);

    // The missing Secret appears: the container starts.
    let secrets = Api::<Secret>::namespaced(client.clone(), "prod");
    let secret: Secret = serde_json::from_value(
        json!({ "metadata": { "name": "db" }, "stringData": { "other": "x" } }),
    )
    .unwrap();
    let stored = secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    assert_eq!(stored.type_.as_deref(), Some("Opaque"));
    assert!(
        stored.string_data.is_none(),
        "stringData is folded into data"
    );
    assert_eq!(stored.data.unwrap()["other"].0, b"x");
    let key_missing = fake
        .wait_for_async(PATIENCE, |f| {
            state_of(f, "real")["state"]["waiting"]["message"]
                == "couldn't find key url in Secret prod/db"
        })
        .await;
    assert!(key_missing, "{:#}", state_of(&fake, "real"));
    secrets
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({ "stringData": { "url": "postgres://db" } })),
        )
        .await
        .unwrap();
    let (_, result) = wait_rollout(&api, "real").await;
    assert_eq!(result, Ok(()));
}

#[tokio::test]
async fn a_slow_image_is_ready_after_its_own_delay() {
    let fake = FakeKube::builder()
        .slow_ready_delay(Duration::from_millis(400))
        .pod_ready_delay(Duration::from_millis(5))
        .start();
    let client = fake.client().await;
    namespace(&fake, &client, "prod").await;
    fake.set_pod_behavior("later", Behavior::ReadyAfter(Duration::from_millis(200)));
    let api = Api::<Deployment>::namespaced(client.clone(), "prod");
    apply(
        &api,
        "slow",
        "t",
        &deployment("slow", "example.com/app-slow:1", 1),
    )
    .await
    .unwrap();
    apply(
        &api,
        "later",
        "t",
        &deployment("later", "example.com/app-later:1", 1),
    )
    .await
    .unwrap();
    assert_eq!(wait_rollout(&api, "slow").await.1, Ok(()));
    assert_eq!(wait_rollout(&api, "later").await.1, Ok(()));
}

#[tokio::test]
async fn deletes_propagate_like_the_garbage_collector() {
    let (fake, client) = cluster().await;
    namespace(&fake, &client, "prod").await;
    let api = Api::<Deployment>::namespaced(client.clone(), "prod");
    apply(&api, "web", "t", &deployment("web", "example.com/web:1", 2))
        .await
        .unwrap();
    assert_eq!(wait_rollout(&api, "web").await.1, Ok(()));

    // Background (the default for apps/v1): a Status now, dependents collected afterwards.
    let deleted = api
        .delete("web", &DeleteParams::background())
        .await
        .unwrap();
    let status = deleted
        .right()
        .expect("a Status for an object deleted at once");
    assert_eq!(status.details.as_ref().unwrap().name, "web");
    assert_eq!(status.details.as_ref().unwrap().kind, "deployments");
    let collected = fake
        .wait_for_async(PATIENCE, |f| {
            f.list("replicasets", Some("prod")).is_empty()
                && f.list("pods", Some("prod")).is_empty()
        })
        .await;
    assert!(collected, "{:#?}", fake.list("pods", Some("prod")));

    // Jobs default to orphaning their pods, with the apiserver's warning.
    let jobs = Api::<Job>::namespaced(client.clone(), "prod");
    let job = |name: &str| {
        json!({
            "apiVersion": "batch/v1", "kind": "Job", "metadata": { "name": name },
            "spec": { "template": { "spec": { "restartPolicy": "Never", "containers": [{ "name": "c", "image": "example.com/job-never-ready:1" }] } } },
        })
    };
    apply(&jobs, "orphaning", "t", &job("orphaning"))
        .await
        .unwrap();
    assert!(
        fake.wait_for_async(PATIENCE, |f| f.list("pods", Some("prod")).len() == 1)
            .await
    );
    jobs.delete("orphaning", &DeleteParams::default())
        .await
        .unwrap();
    let warning = fake
        .requests()
        .iter()
        .rev()
        .find(|r| r.method == "DELETE")
        .map(|r| r.status);
    assert_eq!(warning, Some(200));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let pods = fake.list("pods", Some("prod"));
    assert_eq!(pods.len(), 1, "orphaned, not deleted");
    assert!(
        pods[0]["metadata"]["ownerReferences"].is_null(),
        "{:#}",
        pods[0]
    );
    let (code, head, _) = raw(
        &fake,
        "DELETE",
        &format!(
            "/api/v1/namespaces/prod/pods/{}",
            pods[0]["metadata"]["name"].as_str().unwrap()
        ),
        Some(&fake.token()),
    );
    assert_eq!(code, 200);
    let _ = head;

    // Foreground: the owner stays, marked, until its dependents are gone.
    apply(&jobs, "fg", "t", &job("fg")).await.unwrap();
    assert!(
        fake.wait_for_async(PATIENCE, |f| f
            .list("pods", Some("prod"))
            .iter()
            .any(|p| p["metadata"]["labels"]["job-name"] == "fg"))
            .await
    );
    let marked = jobs
        .delete("fg", &DeleteParams::foreground())
        .await
        .unwrap()
        .left()
        .expect("the object, still there");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(marked.finalizers(), ["foregroundDeletion"]);
    assert!(
        fake.wait_for_async(PATIENCE, |f| f.get("jobs", "prod", "fg").is_none()
            && f.list("pods", Some("prod")).is_empty())
            .await
    );
}

#[tokio::test]
async fn the_job_warning_header_is_sent() {
    let fake = FakeKube::start();
    fake.put(json!({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": { "name": "j", "namespace": "default" },
        "spec": { "template": { "spec": { "restartPolicy": "Never", "containers": [{ "name": "c", "image": "x" }] } } },
    }));
    let (code, head, body) = raw(
        &fake,
        "DELETE",
        "/apis/batch/v1/namespaces/default/jobs/j",
        Some(&fake.token()),
    );
    assert_eq!(code, 200);
    assert!(
        head.contains("warning: 299 - \"child pods are preserved by default when jobs are deleted"),
        "{head}"
    );
    assert_eq!(body["status"], "Success");
}

#[tokio::test]
async fn jobs_complete_or_fail_with_their_conditions() {
    let (fake, client) = cluster().await;
    namespace(&fake, &client, "prod").await;
    let jobs = Api::<Job>::namespaced(client.clone(), "prod");
    let job = |name: &str, image: &str, backoff: i64| {
        json!({
            "apiVersion": "batch/v1", "kind": "Job", "metadata": { "name": name },
            "spec": { "backoffLimit": backoff, "template": { "spec": { "restartPolicy": "Never", "containers": [{ "name": "c", "image": image }] } } },
        })
    };
    apply(&jobs, "ok", "t", &job("ok", "example.com/migrate:1", 0))
        .await
        .unwrap();
    apply(
        &jobs,
        "bad",
        "t",
        &job("bad", "example.com/migrate-crash:1", 1),
    )
    .await
    .unwrap();
    let mut deadline = job("late", "example.com/migrate-never-ready:1", 0);
    deadline["spec"]["activeDeadlineSeconds"] = json!(5);
    apply(&jobs, "late", "t", &deadline).await.unwrap();
    let condition = |f: &FakeKube, name: &str, kind: &str| -> Value {
        f.get("jobs", "prod", name).unwrap()["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == kind).cloned())
            .unwrap_or(Value::Null)
    };
    let finished = fake
        .wait_for_async(PATIENCE, |f| {
            condition(f, "ok", "Complete")["status"] == "True"
                && condition(f, "bad", "Failed")["status"] == "True"
                && condition(f, "late", "Failed")["status"] == "True"
        })
        .await;
    assert!(finished, "{:#?}", fake.list("jobs", Some("prod")));
    let ok = jobs.get("ok").await.unwrap().status.unwrap();
    assert_eq!((ok.succeeded, ok.active, ok.failed), (Some(1), None, None));
    assert!(ok.completion_time.is_some());
    let bad = jobs.get("bad").await.unwrap().status.unwrap();
    assert_eq!(bad.failed, Some(2), "one try plus backoffLimit 1");
    assert_eq!(
        condition(&fake, "bad", "Failed")["reason"],
        "BackoffLimitExceeded"
    );
    assert_eq!(
        condition(&fake, "late", "Failed")["reason"],
        "DeadlineExceeded"
    );
    let pods = fake.list("pods", Some("prod"));
    let phase_of = |job: &str| -> Vec<String> {
        pods.iter()
            .filter(|p| p["metadata"]["labels"]["job-name"] == job)
            .map(|p| p["status"]["phase"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(phase_of("ok"), ["Succeeded"]);
    assert_eq!(phase_of("bad"), ["Failed", "Failed"]);
    let e = api_error(jobs.patch("ok", &PatchParams::default(), &Patch::Merge(json!({ "spec": { "template": { "spec": { "containers": [{ "name": "c", "image": "other" }] } } } }))).await.unwrap_err());
    assert_eq!(
        (e.code, e.details.unwrap().causes[0].field.as_str()),
        (422, "spec.template")
    );
}

#[tokio::test]
async fn a_stateful_set_rolls_out_in_order_with_revisions() {
    let (fake, client) = cluster().await;
    namespace(&fake, &client, "prod").await;
    let api = Api::<StatefulSet>::namespaced(client.clone(), "prod");
    let sts = |image: &str| {
        json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": { "name": "db" },
            "spec": {
                "replicas": 3, "serviceName": "db",
                "selector": { "matchLabels": { "app": "db" } },
                "template": { "metadata": { "labels": { "app": "db" } }, "spec": { "containers": [{ "name": "db", "image": image }] } },
            },
        })
    };
    apply(&api, "db", "t", &sts("example.com/db:1"))
        .await
        .unwrap();
    // kubectl's rule: observedGeneration current, readyReplicas == replicas, revisions equal.
    let done = |s: &StatefulSet| {
        let st = s.status.clone().unwrap_or_default();
        st.observed_generation == s.metadata.generation
            && st.ready_replicas == Some(3)
            && st.updated_replicas == Some(3)
            && st.current_revision.is_some()
            && st.current_revision == st.update_revision
    };
    let wait = |api: Api<StatefulSet>| async move {
        let wp = WatchParams::default().fields("metadata.name=db");
        let mut stream = api.watch(&wp, "0").await.unwrap().boxed();
        tokio::time::timeout(PATIENCE, async {
            while let Some(WatchEvent::Added(s) | WatchEvent::Modified(s)) =
                stream.try_next().await.unwrap()
            {
                if done(&s) {
                    return s;
                }
            }
            panic!("watch ended");
        })
        .await
        .unwrap()
    };
    let first = wait(api.clone()).await;
    let rev1 = first.status.unwrap().update_revision.unwrap();
    let created: Vec<String> = fake
        .events_for("prod", "db")
        .iter()
        .filter(|e| e["reason"] == "SuccessfulCreate")
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        created,
        [
            "create Pod db-0 in StatefulSet db successful",
            "create Pod db-1 in StatefulSet db successful",
            "create Pod db-2 in StatefulSet db successful",
        ]
    );
    apply(&api, "db", "t", &sts("example.com/db:2"))
        .await
        .unwrap();
    let second = wait(api.clone()).await;
    let status = second.status.unwrap();
    assert_ne!(status.update_revision.as_deref(), Some(rev1.as_str()));
    let pod = fake.get("pods", "prod", "db-0").unwrap();
    assert_eq!(
        pod["metadata"]["labels"]["controller-revision-hash"],
        status.update_revision.unwrap().as_str()
    );
    assert_eq!(pod["spec"]["containers"][0]["image"], "example.com/db:2");
    let revisions = fake.list("controllerrevisions", Some("prod"));
    let numbers: Vec<i64> = revisions
        .iter()
        .map(|r| r["revision"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers.len(), 2);
    assert!(numbers.contains(&1) && numbers.contains(&2));
}

#[tokio::test]
async fn a_daemon_set_runs_a_pod_per_node_and_reports_kubectl_fields() {
    let fake = FakeKube::builder().nodes(3).start();
    let client = fake.client().await;
    namespace(&fake, &client, "prod").await;
    let api = Api::<DaemonSet>::namespaced(client.clone(), "prod");
    let ds = |image: &str| {
        json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": { "name": "agent" },
            "spec": {
                "selector": { "matchLabels": { "app": "agent" } },
                "template": { "metadata": { "labels": { "app": "agent" } }, "spec": { "containers": [{ "name": "a", "image": image }] } },
            },
        })
    };
    apply(&api, "agent", "t", &ds("example.com/agent:1"))
        .await
        .unwrap();
    apply(&api, "agent", "t", &ds("example.com/agent:2"))
        .await
        .unwrap();
    let rolled = fake
        .wait_for_async(PATIENCE, |f| {
            let s = &f.get("daemonsets", "prod", "agent").unwrap()["status"];
            s["observedGeneration"] == 2
                && s["updatedNumberScheduled"] == 3
                && s["numberAvailable"] == 3
                && s["desiredNumberScheduled"] == 3
        })
        .await;
    assert!(
        rolled,
        "{:#}",
        fake.get("daemonsets", "prod", "agent").unwrap()
    );
    let status = api.get("agent").await.unwrap().status.unwrap();
    assert_eq!(
        (status.desired_number_scheduled, status.number_unavailable),
        (3, None)
    );
    let nodes: Vec<String> = fake
        .list("pods", Some("prod"))
        .iter()
        .filter(|p| p["spec"]["containers"][0]["image"] == "example.com/agent:2")
        .map(|p| p["spec"]["nodeName"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(nodes.len(), 3);
    assert!(nodes.contains(&"fake-node-3".to_string()));
}

/// Runs kubectl against the fake; `None` when kubectl is not installed.
fn kubectl(
    kubeconfig: &std::path::Path,
    args: &[&str],
    stdin: Option<&str>,
) -> Option<(i32, String, String)> {
    use std::io::Write;
    let mut cmd = std::process::Command::new("kubectl");
    cmd.arg("--kubeconfig").arg(kubeconfig).args(args);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().ok()?;
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    Some((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[test]
fn kubectl_applies_waits_undoes_and_reads_history() {
    let fake = FakeKube::builder().tls().start();
    let dir = tempfile::tempdir().unwrap();
    let config = fake.write_kubeconfig(dir.path());
    // kubectl writes protobuf for `create`; apply sends JSON, which is all the fake reads.
    let ns = json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "prod" } })
        .to_string();
    let Some((code, out, err)) = kubectl(
        &config,
        &["apply", "--server-side", "--validate=false", "-f", "-"],
        Some(&ns),
    ) else {
        eprintln!("kubectl is not installed; skipping");
        return;
    };
    assert_eq!(code, 0, "{out}\n{err}\n{:#?}", fake.requests());
    let manifest = |image: &str| {
        let mut d = deployment("web", image, 2);
        d["metadata"]["namespace"] = json!("prod");
        d.to_string()
    };
    for image in ["example.com/web:1", "example.com/web:2"] {
        let r = kubectl(
            &config,
            &[
                "apply",
                "--server-side",
                "--validate=false",
                "--field-manager=promote-action",
                "-f",
                "-",
            ],
            Some(&manifest(image)),
        )
        .unwrap();
        assert_eq!(r.0, 0, "{r:?}");
        let r = kubectl(
            &config,
            &[
                "rollout",
                "status",
                "deployment/web",
                "-n",
                "prod",
                "--timeout=20s",
            ],
            None,
        )
        .unwrap();
        assert_eq!(r.0, 0, "{r:?}");
        assert!(r.1.contains("successfully rolled out"), "{r:?}");
    }
    let r = kubectl(
        &config,
        &["rollout", "history", "deployment/web", "-n", "prod"],
        None,
    )
    .unwrap();
    assert_eq!(r.0, 0, "{r:?}");
    assert!(
        r.1.contains("deploy example.com/web:1") && r.1.contains("deploy example.com/web:2"),
        "{r:?}"
    );
    let r = kubectl(
        &config,
        &["rollout", "undo", "deployment/web", "-n", "prod"],
        None,
    )
    .unwrap();
    assert_eq!(r.0, 0, "{r:?}");
    let r = kubectl(
        &config,
        &[
            "rollout",
            "status",
            "deployment/web",
            "-n",
            "prod",
            "--timeout=20s",
        ],
        None,
    )
    .unwrap();
    assert_eq!(r.0, 0, "{r:?}");
    let d = fake.get("deployments", "prod", "web").unwrap();
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "example.com/web:1"
    );
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );

    // A crashing image: kubectl reports the exceeded deadline.
    let mut bad: Value = serde_json::from_str(&manifest("example.com/web-crash:3")).unwrap();
    bad["spec"]["progressDeadlineSeconds"] = json!(20);
    let r = kubectl(
        &config,
        &[
            "apply",
            "--server-side",
            "--validate=false",
            "--force-conflicts",
            "--field-manager=promote-action",
            "-f",
            "-",
        ],
        Some(&bad.to_string()),
    )
    .unwrap();
    assert_eq!(r.0, 0, "{r:?}");
    let r = kubectl(
        &config,
        &[
            "rollout",
            "status",
            "deployment/web",
            "-n",
            "prod",
            "--timeout=20s",
        ],
        None,
    )
    .unwrap();
    assert_ne!(r.0, 0, "{r:?}");
    assert!(r.2.contains("exceeded its progress deadline"), "{r:?}");
    let r = kubectl(&config, &["get", "pods", "-n", "prod", "-o", "json"], None).unwrap();
    assert_eq!(r.0, 0, "{r:?}");
    let pods: Value = serde_json::from_str(&r.1).unwrap();
    let restarts = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["status"]["containerStatuses"][0]["restartCount"].as_i64())
        .max();
    assert!(restarts >= Some(1), "{r:?}");
}

#[tokio::test]
async fn resource_versions_and_generations_follow_the_real_rules() {
    let (fake, client) = cluster().await;
    namespace(&fake, &client, "prod").await;
    fake.pause_controllers();
    let api = Api::<Deployment>::namespaced(client.clone(), "prod");
    let d1 = apply(&api, "web", "t", &deployment("web", "example.com/web:1", 1))
        .await
        .unwrap();
    // The same apply again is no write at all.
    let d2 = apply(&api, "web", "t", &deployment("web", "example.com/web:1", 1))
        .await
        .unwrap();
    assert_eq!(d1.resource_version(), d2.resource_version());
    // Metadata changes bump the version, not the generation.
    let labelled = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": { "team": "a" } } })),
        )
        .await
        .unwrap();
    assert!(
        labelled.resource_version().unwrap().parse::<u64>().unwrap()
            > d2.resource_version().unwrap().parse::<u64>().unwrap()
    );
    assert_eq!(labelled.metadata.generation, Some(1));
    // Status written through the object is ignored; through /status it is kept.
    let ignored = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": { "replicas": 7 } })),
        )
        .await
        .unwrap();
    assert_eq!(ignored.status.as_ref().and_then(|s| s.replicas), None);
    assert_eq!(
        ignored.resource_version(),
        labelled.resource_version(),
        "nothing changed"
    );
    let kept = api
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": { "replicas": 7 } })),
        )
        .await
        .unwrap();
    assert_eq!(kept.status.unwrap().replicas, Some(7));
    // A spec change bumps the generation; the status still shows the observed one.
    let scaled = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "replicas": 2 } })),
        )
        .await
        .unwrap();
    assert_eq!(scaled.metadata.generation, Some(2));
    let scale = api.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(2));
    assert_eq!(scale.status.unwrap().selector.as_deref(), Some("app=web"));
    fake.resume_controllers();
    let (done, result) = wait_rollout(&api, "web").await;
    assert_eq!(result, Ok(()));
    assert_eq!(done.status.unwrap().observed_generation, Some(2));
    // A strategic merge patch merges containers by name.
    let patched = api
        .patch("web", &PatchParams::default(), &Patch::Strategic(json!({ "spec": { "template": { "spec": { "containers": [{ "name": "app", "image": "example.com/web:2" }] } } } })))
        .await
        .unwrap();
    let container = &patched.spec.unwrap().template.spec.unwrap().containers[0];
    assert_eq!(container.image.as_deref(), Some("example.com/web:2"));
    assert_eq!(
        container.ports.as_ref().unwrap()[0].container_port,
        8080,
        "the rest of the item stays"
    );
}

#[tokio::test]
async fn lists_page_with_limit_and_continue() {
    let (fake, client) = cluster().await;
    namespace(&fake, &client, "prod").await;
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "prod");
    for n in 0..5 {
        let cm: ConfigMap = serde_json::from_value(
            json!({ "metadata": { "name": format!("c{n}"), "labels": { "set": "a" } } }),
        )
        .unwrap();
        cms.create(&PostParams::default(), &cm).await.unwrap();
    }
    let mut names = Vec::new();
    let mut lp = ListParams::default().labels("set=a").limit(2);
    loop {
        let page = cms.list(&lp).await.unwrap();
        names.extend(page.items.iter().map(|c| c.name_any()));
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => lp = lp.continue_token(&token),
            _ => break,
        }
    }
    assert_eq!(names, ["c0", "c1", "c2", "c3", "c4"]);
    let collection = cms
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("set=a"),
        )
        .await
        .unwrap();
    assert_eq!(collection.left().unwrap().items.len(), 5);
    assert_eq!(
        cms.list(&ListParams::default()).await.unwrap().items.len(),
        1,
        "kube-root-ca.crt stays"
    );
}

#[tokio::test]
async fn immutable_config_maps_and_services_keep_what_may_not_change() {
    let (fake, client) = cluster().await;
    namespace(&fake, &client, "prod").await;
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "prod");
    let cm = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "web-config-abc" }, "immutable": true, "data": { "A": "1" } });
    apply(&cms, "web-config-abc", "promote-action", &cm)
        .await
        .unwrap();
    let mut changed = cm.clone();
    changed["data"]["A"] = json!("2");
    let e = api_error(
        apply(&cms, "web-config-abc", "promote-action", &changed)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            422,
            "ConfigMap \"web-config-abc\" is invalid: data: Forbidden: field is immutable when `immutable` is set"
        )
    );
    let svcs = Api::<Service>::namespaced(client.clone(), "prod");
    let svc = json!({ "apiVersion": "v1", "kind": "Service", "metadata": { "name": "web" }, "spec": { "selector": { "app": "web" }, "ports": [{ "port": 80, "targetPort": 8080 }] } });
    let created = apply(&svcs, "web", "promote-action", &svc).await.unwrap();
    let spec = created.spec.unwrap();
    assert!(
        spec.cluster_ip
            .as_deref()
            .is_some_and(|ip| ip.starts_with("10.96."))
    );
    assert_eq!(
        (
            spec.type_.as_deref(),
            spec.ports.unwrap()[0].protocol.as_deref()
        ),
        (Some("ClusterIP"), Some("TCP"))
    );
    let again = apply(&svcs, "web", "promote-action", &svc).await.unwrap();
    assert_eq!(
        again.spec.unwrap().cluster_ip,
        spec.cluster_ip,
        "re-applying keeps the allocated IP"
    );
}

#[tokio::test]
async fn autoscalers_keep_replicas_in_bounds_and_budgets_report_status() {
    let (fake, client) = cluster().await;
    namespace(&fake, &client, "prod").await;
    let api = Api::<Deployment>::namespaced(client.clone(), "prod");
    let mut d = deployment("web", "example.com/web:1", 1);
    d["spec"].as_object_mut().unwrap().remove("replicas");
    apply(&api, "web", "promote-action", &d).await.unwrap();
    let hpa = json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": { "name": "web", "namespace": "prod" },
        "spec": { "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "web" }, "minReplicas": 3, "maxReplicas": 5,
                  "metrics": [{ "type": "Resource", "resource": { "name": "cpu", "target": { "type": "Utilization", "averageUtilization": 70 } } }] },
    });
    let pdb = json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": { "name": "web", "namespace": "prod" },
        "spec": { "maxUnavailable": 1, "selector": { "matchLabels": { "app": "web" } } },
    });
    let hpas: Api<k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler> =
        Api::namespaced(client.clone(), "prod");
    apply(&hpas, "web", "promote-action", &hpa).await.unwrap();
    let pdbs: Api<k8s_openapi::api::policy::v1::PodDisruptionBudget> =
        Api::namespaced(client.clone(), "prod");
    apply(&pdbs, "web", "promote-action", &pdb).await.unwrap();
    let (done, result) = wait_rollout(&api, "web").await;
    assert_eq!(result, Ok(()));
    assert_eq!(
        done.spec.as_ref().unwrap().replicas,
        Some(3),
        "raised to minReplicas"
    );
    let scaler = done
        .managed_fields()
        .iter()
        .find(|m| m.subresource.as_deref() == Some("scale"))
        .cloned();
    assert_eq!(
        scaler.and_then(|m| m.manager),
        Some("kube-controller-manager".into())
    );
    let budget = fake
        .wait_for_async(PATIENCE, |f| {
            f.get("pdb", "prod", "web").unwrap()["status"]["currentHealthy"] == 3
        })
        .await;
    assert!(budget);
    let status = pdbs.get("web").await.unwrap().status.unwrap();
    assert_eq!(
        (
            status.expected_pods,
            status.desired_healthy,
            status.disruptions_allowed
        ),
        (3, 2, 1)
    );
    // Applying replicas now conflicts with the autoscaler's ownership, as on a real cluster.
    let e = api_error(
        apply(
            &api,
            "web",
            "promote-action",
            &deployment("web", "example.com/web:1", 1),
        )
        .await
        .unwrap_err(),
    );
    assert!(
        e.message
            .contains("conflict with \"kube-controller-manager\" using apps/v1: .spec.replicas"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn discovery_finds_every_served_kind() {
    let (_fake, client) = cluster().await;
    let discovery = kube::discovery::Discovery::new(client.clone())
        .run()
        .await
        .expect("legacy discovery");
    let (ar, caps) = discovery
        .resolve_gvk(&kube::core::GroupVersionKind::gvk(
            "apps",
            "v1",
            "Deployment",
        ))
        .unwrap();
    assert_eq!(ar.plural, "deployments");
    assert!(
        caps.subresources
            .iter()
            .any(|(s, _)| s.plural == "deployments/scale" || s.plural == "scale"),
        "{caps:?}"
    );
    let aggregated = kube::discovery::Discovery::new(client.clone())
        .run_aggregated()
        .await
        .expect("aggregated discovery");
    for (group, version, kind) in [
        ("", "v1", "Pod"),
        ("", "v1", "Event"),
        ("batch", "v1", "Job"),
        ("coordination.k8s.io", "v1", "Lease"),
        ("autoscaling", "v2", "HorizontalPodAutoscaler"),
        ("policy", "v1", "PodDisruptionBudget"),
    ] {
        assert!(
            aggregated
                .resolve_gvk(&kube::core::GroupVersionKind::gvk(group, version, kind))
                .is_some(),
            "{kind}"
        );
    }
    // A dynamic object applied through discovery, as a generic apply loop does.
    let (ar, _) = aggregated
        .resolve_gvk(&kube::core::GroupVersionKind::gvk("", "v1", "ConfigMap"))
        .unwrap();
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let applied = apply(&api, "dyn", "promote-action", &json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "dyn" }, "data": { "a": "b" } }))
        .await
        .unwrap();
    assert_eq!(applied.data["data"]["a"], "b");
}

#[tokio::test]
async fn a_recreate_deployment_stops_the_old_pods_first_and_pausing_holds_a_rollout() {
    let (fake, client) = cluster().await;
    namespace(&fake, &client, "prod").await;
    let api = Api::<Deployment>::namespaced(client.clone(), "prod");
    let mut d = deployment("web", "example.com/web:1", 2);
    d["spec"]["strategy"] = json!({ "type": "Recreate" });
    apply(&api, "web", "t", &d).await.unwrap();
    assert_eq!(wait_rollout(&api, "web").await.1, Ok(()));
    d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("example.com/web:2");
    apply(&api, "web", "t", &d).await.unwrap();
    assert_eq!(wait_rollout(&api, "web").await.1, Ok(()));
    let scaling: Vec<String> = fake
        .events_for("prod", "web")
        .iter()
        .filter(|e| e["reason"] == "ScalingReplicaSet")
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(scaling.len(), 3, "{scaling:?}");
    assert!(
        scaling[1].starts_with("Scaled down") && scaling[1].ends_with("from 2 to 0"),
        "{scaling:?}"
    );
    assert!(
        scaling[2].starts_with("Scaled up") && scaling[2].ends_with("from 0 to 2"),
        "{scaling:?}"
    );

    // Paused: a template change makes no new ReplicaSet until resumed.
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({ "spec": { "paused": true } })),
    )
    .await
    .unwrap();
    d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("example.com/web:3");
    apply(&api, "web", "t", &d).await.unwrap();
    let paused = fake
        .wait_for_async(PATIENCE, |f| {
            let d = f.get("deployments", "prod", "web").unwrap();
            d["status"]["observedGeneration"] == d["metadata"]["generation"]
                && d["status"]["conditions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| c["reason"] == "DeploymentPaused")
        })
        .await;
    assert!(paused);
    assert_eq!(fake.list("replicasets", Some("prod")).len(), 2);
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({ "spec": { "paused": false } })),
    )
    .await
    .unwrap();
    let (done, result) = wait_rollout(&api, "web").await;
    assert_eq!(result, Ok(()));
    assert_eq!(revision(&done), 3);
}

#[test]
fn sync_tests_drive_it_without_a_runtime() {
    let fake = FakeKube::builder()
        .pod_ready_delay(Duration::from_millis(1))
        .start();
    fake.put(json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "prod" } }));
    let mut d = deployment("web", "example.com/web:1", 2);
    d["metadata"]["namespace"] = json!("prod");
    let stored = fake.put(d);
    assert_eq!(
        stored["metadata"]["managedFields"][0]["manager"],
        "fake-kube"
    );
    let rolled = fake.wait_for(PATIENCE, |f| {
        f.get("deploy", "prod", "web").unwrap()["status"]["availableReplicas"] == 2
    });
    assert!(rolled);
    // A prior state with a status, as a test seeds a cluster.
    let seeded = fake.put(json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": { "name": "lock", "namespace": "prod" },
        "spec": { "holderIdentity": "https://github.com/o/r/actions/runs/1", "leaseDurationSeconds": 15 },
    }));
    assert_eq!(
        seeded["spec"]["holderIdentity"],
        "https://github.com/o/r/actions/runs/1"
    );
    assert!(fake.delete("lease", "prod", "lock"));
    assert!(fake.get("leases", "prod", "lock").is_none());
    assert!(fake.delete("namespace", "", "prod"));
    assert!(
        fake.wait_for(PATIENCE, |f| f.get("ns", "", "prod").is_none()
            && f.list("pods", Some("prod")).is_empty())
    );
    fake.shutdown();
}

#[tokio::test]
async fn kube_connects_over_tls_with_the_kubeconfig_ca() {
    let fake = FakeKube::builder().tls().start();
    assert!(fake.url().starts_with("https://127.0.0.1:"));
    assert!(
        fake.kubeconfig_yaml()
            .contains("certificate-authority-data: ")
    );
    let client = fake.client().await;
    let names: Vec<String> = Api::<Namespace>::all(client)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|n| n.name_any())
        .collect();
    assert!(names.contains(&"default".to_string()));
    assert!(
        fake.ca_pem()
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
}

#[tokio::test]
async fn every_knob_can_be_turned() {
    let fake = FakeKube::builder()
        .token("s3cret")
        .second(Duration::from_millis(1))
        .pod_termination_delay(Duration::from_millis(1))
        .paused()
        .start();
    assert_eq!(fake.token(), "s3cret");
    assert_eq!(
        raw(&fake, "GET", "/api/v1/nodes", Some("fake-kube-token")).0,
        401
    );
    let client = fake.client().await;
    let api = Api::<Deployment>::namespaced(client.clone(), "default");
    let mut d = deployment("web", "example.com/web-crash:1", 1);
    d["spec"]["progressDeadlineSeconds"] = json!(100);
    apply(&api, "web", "t", &d).await.unwrap();
    // Paused: nothing happens.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(fake.list("replicasets", Some("default")).is_empty());
    fake.resume_controllers();
    // 100 object seconds at 1 ms each.
    let (_, result) = wait_rollout(&api, "web").await;
    assert!(result.unwrap_err().ends_with("has timed out progressing."));

    // Faults can be cleared; logs replaced; the history shrunk; watches cut.
    fake.inject(Fault::InternalError {
        path_prefix: String::new(),
        times: 100,
    });
    fake.clear_faults();
    fake.set_pod_log("web-crash", "custom\n");
    let pod = fake.list("pods", Some("default"))[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let pods = Api::<Pod>::namespaced(client.clone(), "default");
    assert_eq!(
        pods.logs(&pod, &Default::default()).await.unwrap(),
        "custom\n"
    );
    let rv = fake.resource_version();
    fake.set_watch_history(1);
    let cm: ConfigMap = serde_json::from_value(json!({ "metadata": { "name": "a" } })).unwrap();
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &cm).await.unwrap();
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    let mut stale = cms
        .watch(&WatchParams::default(), &rv.to_string())
        .await
        .unwrap()
        .boxed();
    assert!(matches!(stale.try_next().await.unwrap(), Some(WatchEvent::Error(e)) if e.code == 410));
    let mut open = cms
        .watch(
            &WatchParams::default(),
            &fake.resource_version().to_string(),
        )
        .await
        .unwrap()
        .boxed();
    fake.drop_watches();
    assert!(
        tokio::time::timeout(PATIENCE, open.try_next())
            .await
            .unwrap()
            .unwrap()
            .is_none(),
        "cut off"
    );
    // kube sends no User-Agent, so writes without a fieldManager are owned by "" (the real
    // server derives the default manager from the User-Agent).
    assert_eq!(fake.requests().last().unwrap().user_agent, None);
    let patched = cms
        .patch(
            "kube-root-ca.crt",
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": { "x": "y" } } })),
        )
        .await
        .unwrap();
    assert!(
        patched
            .managed_fields()
            .iter()
            .any(|m| m.manager.as_deref() == Some(""))
    );
}

#[tokio::test]
async fn old_replica_sets_beyond_the_history_limit_are_deleted() {
    let (fake, client) = cluster().await;
    namespace(&fake, &client, "prod").await;
    let api = Api::<Deployment>::namespaced(client.clone(), "prod");
    for n in 1..=4 {
        let mut d = deployment("web", &format!("example.com/web:{n}"), 1);
        d["spec"]["revisionHistoryLimit"] = json!(1);
        apply(&api, "web", "t", &d).await.unwrap();
        assert_eq!(wait_rollout(&api, "web").await.1, Ok(()));
    }
    let trimmed = fake
        .wait_for_async(PATIENCE, |f| f.list("replicasets", Some("prod")).len() == 2)
        .await;
    assert!(trimmed);
    let mut revisions: Vec<String> = fake
        .list("replicasets", Some("prod"))
        .iter()
        .map(|rs| {
            rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    revisions.sort();
    assert_eq!(revisions, ["3", "4"]);
}
