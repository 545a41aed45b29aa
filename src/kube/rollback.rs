//! Rolling a workload back to an earlier revision with `kubectl rollout undo` semantics
//! (protocols.md §6): the choice of target and the patch are pure and tested by table; the
//! calls that read history and send the patch follow.
//!
//! Deployments keep their history in ReplicaSets (`deployment.kubernetes.io/revision`);
//! StatefulSets and DaemonSets in ControllerRevisions, whose `data` already is the strategic
//! merge patch that restores the template (kubectl sends it as-is). Because the rendered
//! ConfigMap's name is a hash of its content and the template refers to it, restoring the
//! template restores the configuration too.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet,
};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client, Resource as _};
use serde_json::{Value, json};

use super::api::{self, ApiError};
use super::rollout::{REVISION_ANNOTATION, Workload, WorkloadKind};

/// The field manager of rollback patches. Deploys apply as `promote-action`; a later deploy
/// takes back the fields a rollback changed (see `apply::ours`), as it would after kubectl's
/// `kubectl-rollout`.
pub const ROLLBACK_MANAGER: &str = "promote-action-rollback";

/// `pod-template-hash`: the label the Deployment controller adds to each ReplicaSet's template.
const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// Annotations kubectl keeps from the Deployment itself instead of copying them from the
/// ReplicaSet (kubectl's `annotationsToSkip`).
const KEEP_FROM_DEPLOYMENT: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION_ANNOTATION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
];

/// Why a rollback cannot be done; kubectl's own messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UndoError {
    #[error(
        "you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume' and try again"
    )]
    Paused,
    #[error("no rollout history found for {0}")]
    NoHistory(String),
    #[error("unable to find specified revision {0} in history")]
    RevisionNotFound(i64),
}

/// Why [`undo`] did not roll a workload back. Both variants print their cause's own words (the
/// caller adds which workload), so an error chain says each thing once.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    /// kubectl would refuse too: a paused Deployment, no earlier revision, no such revision.
    #[error(transparent)]
    Refused(#[from] UndoError),
    /// Reading the workload or its history, or sending the patch, failed; a 404 means the
    /// workload does not exist.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The pod template could not be turned into JSON to compare it with the history.
    #[error("cannot compare the pod template with its history")]
    Template(#[source] serde_json::Error),
}

impl RollbackError {
    /// The workload (or what undo read of it) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, RollbackError::Api(e) if e.is_not_found())
    }
}

/// What undo will do.
#[derive(Debug, Clone, PartialEq)]
enum Undo {
    /// The current template already is that revision's: nothing to send.
    Skip { revision: i64 },
    /// Send this patch to go back to `revision`.
    Patch { revision: i64, patch: UndoPatch },
}

#[derive(Debug, Clone, PartialEq)]
enum UndoPatch {
    /// A JSON patch (Deployments).
    Json(Value),
    /// A strategic merge patch (StatefulSets, DaemonSets: the ControllerRevision's data).
    Strategic(Value),
}

impl Undo {
    pub fn revision(&self) -> i64 {
        match self {
            Undo::Skip { revision } | Undo::Patch { revision, .. } => *revision,
        }
    }
}

/// kubectl's `deploymentutil.Revision`: a missing annotation is revision 0; one that is not a
/// number is no revision at all.
fn rs_revision(rs: &ReplicaSet) -> Option<i64> {
    match rs
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION_ANNOTATION))
    {
        None => Some(0),
        Some(text) => text.parse().ok(),
    }
}

/// Whether `owner_uid` is the controller of an object with these owner references.
fn controlled_by(
    refs: Option<&Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>>,
    owner_uid: Option<&str>,
) -> bool {
    let Some(uid) = owner_uid else { return false };
    refs.into_iter()
        .flatten()
        .any(|r| r.controller == Some(true) && r.uid == uid)
}

/// The highest and second-highest revision among `(revision, item)`, or the exact one asked for.
fn pick<T>(
    items: impl Iterator<Item = (i64, T)>,
    to_revision: Option<i64>,
    what: &str,
) -> Result<T, UndoError> {
    let mut latest: Option<(i64, T)> = None;
    let mut previous: Option<(i64, T)> = None;
    for (revision, item) in items {
        if let Some(wanted) = to_revision.filter(|r| *r > 0) {
            if revision == wanted {
                return Ok(item);
            }
            continue;
        }
        match &latest {
            Some((l, _)) if *l >= revision => {
                if previous.as_ref().is_none_or(|(p, _)| *p < revision) {
                    previous = Some((revision, item));
                }
            }
            _ => previous = latest.replace((revision, item)),
        }
    }
    if let Some(wanted) = to_revision.filter(|r| *r > 0) {
        return Err(UndoError::RevisionNotFound(wanted));
    }
    previous
        .map(|(_, item)| item)
        .ok_or_else(|| UndoError::NoHistory(what.to_string()))
}

/// The ReplicaSet to go back to: among those the Deployment controls (controllerRef), the one
/// with the second-highest revision, or exactly `to_revision`.
///
/// # Errors
/// A paused Deployment, no earlier revision, or no such revision.
fn choose_rollback_target<'a>(
    deployment: &Deployment,
    replicasets: &'a [ReplicaSet],
    to_revision: Option<i64>,
) -> Result<&'a ReplicaSet, UndoError> {
    if deployment.spec.as_ref().and_then(|s| s.paused) == Some(true) {
        return Err(UndoError::Paused);
    }
    let uid = deployment.metadata.uid.as_deref();
    let owned = replicasets
        .iter()
        .filter(|rs| controlled_by(rs.metadata.owner_references.as_ref(), uid))
        .filter_map(|rs| rs_revision(rs).map(|r| (r, rs)));
    let name = format!(
        "deployment {:?}",
        deployment.metadata.name.as_deref().unwrap_or_default()
    );
    pick(owned, to_revision, &name)
}

/// Removes what Kubernetes' semantic equality ignores: nulls, empty maps and empty lists.
fn normalize(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), normalize(v)))
                .filter(|(_, v)| !is_empty(v))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn without_hash(template: &Value) -> Value {
    let mut template = template.clone();
    if let Some(labels) = template
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(POD_TEMPLATE_HASH);
    }
    normalize(&template)
}

/// The undo of a Deployment, as kubectl computes it: skip when the target's template equals
/// the current one ignoring `pod-template-hash`; otherwise a JSON patch that replaces
/// `/spec/template` (without `pod-template-hash`) and `/metadata/annotations` (the
/// ReplicaSet's, but the Deployment's own revision-related ones kept).
///
/// # Errors
/// See [`choose_rollback_target`].
fn plan_deployment_undo(
    deployment: &Deployment,
    replicasets: &[ReplicaSet],
    to_revision: Option<i64>,
) -> Result<Undo, UndoError> {
    let target = choose_rollback_target(deployment, replicasets, to_revision)?;
    let revision = rs_revision(target).unwrap_or(0);
    let wanted = target
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .map(|t| serde_json::to_value(t).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    let current = deployment
        .spec
        .as_ref()
        .map(|s| serde_json::to_value(&s.template).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    if without_hash(&wanted) == without_hash(&current) {
        return Ok(Undo::Skip { revision });
    }
    let mut template = wanted;
    if let Some(labels) = template
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(POD_TEMPLATE_HASH);
    }
    let mut annotations: BTreeMap<String, String> = BTreeMap::new();
    let own = deployment.metadata.annotations.clone().unwrap_or_default();
    for key in KEEP_FROM_DEPLOYMENT {
        if let Some(v) = own.get(*key) {
            annotations.insert((*key).to_string(), v.clone());
        }
    }
    for (k, v) in target.metadata.annotations.iter().flatten() {
        if !KEEP_FROM_DEPLOYMENT.contains(&k.as_str()) {
            annotations.insert(k.clone(), v.clone());
        }
    }
    Ok(Undo::Patch {
        revision,
        patch: UndoPatch::Json(json!([
            { "op": "replace", "path": "/spec/template", "value": template },
            { "op": "replace", "path": "/metadata/annotations", "value": annotations },
        ])),
    })
}

/// The undo of a StatefulSet or DaemonSet from its ControllerRevisions: the second-highest
/// `revision` (or `to_revision`), skipped when its data already matches the current template;
/// otherwise its data is the patch.
///
/// # Errors
/// No earlier revision, or no such revision.
fn plan_controller_revision_undo(
    what: &str,
    owner_uid: Option<&str>,
    current_template: &Value,
    revisions: &[ControllerRevision],
    to_revision: Option<i64>,
) -> Result<Undo, UndoError> {
    let owned = revisions
        .iter()
        .filter(|r| controlled_by(r.metadata.owner_references.as_ref(), owner_uid))
        .map(|r| (r.revision, r));
    let target = pick(owned, to_revision, what)?;
    let data = target
        .data
        .as_ref()
        .map(|d| d.0.clone())
        .unwrap_or(Value::Null);
    let mut wanted = data
        .pointer("/spec/template")
        .cloned()
        .unwrap_or(Value::Null);
    if let Some(map) = wanted.as_object_mut() {
        map.remove("$patch");
    }
    if normalize(&wanted) == normalize(current_template) {
        return Ok(Undo::Skip {
            revision: target.revision,
        });
    }
    Ok(Undo::Patch {
        revision: target.revision,
        patch: UndoPatch::Strategic(data),
    })
}

/// What an undo did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndoResult {
    /// The revision rolled back to (the one whose template is restored).
    pub to_revision: i64,
    /// True when the template already was that revision's.
    pub skipped: bool,
    /// StatefulSet pods of the failed revision that were deleted (forced rollback).
    pub deleted_pods: Vec<String>,
}

/// Rolls `workload` back (kubectl `rollout undo [--to-revision]`). Waiting for the resulting
/// rollout is the caller's.
///
/// # Errors
/// [`RollbackError::Refused`] (paused, no history, no such revision) or
/// [`RollbackError::Api`], the API's answer.
pub async fn undo(
    client: &Client,
    workload: &Workload,
    to_revision: Option<i64>,
) -> Result<UndoResult, RollbackError> {
    let ns = workload.namespace.as_str();
    let name = workload.name.as_str();
    // A StatefulSet's failed revision, and its selector, for the forced rollback below.
    let mut stuck: Option<(String, String)> = None;
    let undo = match workload.kind {
        WorkloadKind::Deployment => {
            let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
            let deployment = api::retrying("reading", || api.get(name)).await?;
            let selector = selector_of(
                deployment
                    .spec
                    .as_ref()
                    .and_then(|s| s.selector.match_labels.as_ref()),
            );
            let rs_api: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
            let params = ListParams::default().labels(&selector);
            let replicasets = api::retrying("listing", || rs_api.list(&params))
                .await?
                .items;
            plan_deployment_undo(&deployment, &replicasets, to_revision)?
        }
        WorkloadKind::StatefulSet => {
            let api: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
            let object = api::retrying("reading", || api.get(name)).await?;
            let spec = object.spec.clone().unwrap_or_default();
            let template = serde_json::to_value(&spec.template).map_err(RollbackError::Template)?;
            let selector = selector_of(spec.selector.match_labels.as_ref());
            let revisions = controller_revisions(client, ns, &selector).await?;
            if let Some(update) = object
                .status
                .as_ref()
                .and_then(|s| s.update_revision.clone())
            {
                stuck = Some((update, selector.clone()));
            }
            plan_controller_revision_undo(
                &format!("statefulset {name:?}"),
                object.metadata.uid.as_deref(),
                &template,
                &revisions,
                to_revision,
            )?
        }
        WorkloadKind::DaemonSet => {
            let api: Api<DaemonSet> = Api::namespaced(client.clone(), ns);
            let object = api::retrying("reading", || api.get(name)).await?;
            let spec = object.spec.clone().unwrap_or_default();
            let template = serde_json::to_value(&spec.template).map_err(RollbackError::Template)?;
            let selector = selector_of(spec.selector.match_labels.as_ref());
            let revisions = controller_revisions(client, ns, &selector).await?;
            plan_controller_revision_undo(
                &format!("daemonset {name:?}"),
                object.metadata.uid.as_deref(),
                &template,
                &revisions,
                to_revision,
            )?
        }
    };
    let to_revision = undo.revision();
    let Undo::Patch { patch, .. } = undo else {
        return Ok(UndoResult {
            to_revision,
            skipped: true,
            deleted_pods: Vec::new(),
        });
    };
    match patch {
        UndoPatch::Json(body) => json_patch(client, workload, &body).await?,
        UndoPatch::Strategic(body) => {
            let params = PatchParams {
                field_manager: Some(ROLLBACK_MANAGER.to_string()),
                ..PatchParams::default()
            };
            let patch = Patch::Strategic(&body);
            match workload.kind {
                WorkloadKind::StatefulSet => {
                    let api: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
                    api::retrying("patching", || api.patch(name, &params, &patch)).await?;
                }
                _ => {
                    let api: Api<DaemonSet> = Api::namespaced(client.clone(), ns);
                    api::retrying("patching", || api.patch(name, &params, &patch)).await?;
                }
            }
        }
    }
    let deleted_pods = match stuck {
        Some((revision, selector)) => forced_rollback(client, ns, &revision, &selector).await?,
        None => Vec::new(),
    };
    Ok(UndoResult {
        to_revision,
        skipped: false,
        deleted_pods,
    })
}

/// A StatefulSet (with the default OrderedReady pod management) never replaces a pod that is
/// not Ready, so reverting its template alone leaves it stuck on the broken pod: Kubernetes'
/// documented "forced rollback" is to delete the pods of the bad revision as well. Only those
/// that are not Ready are deleted; healthy ones are replaced by the controller in order.
async fn forced_rollback(
    client: &Client,
    ns: &str,
    revision: &str,
    selector: &str,
) -> Result<Vec<String>, ApiError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let params = ListParams::default().labels(&format!(
        "{selector}{}controller-revision-hash={revision}",
        if selector.is_empty() { "" } else { "," }
    ));
    let list = api::retrying("listing", || pods.list(&params)).await?;
    let mut deleted = Vec::new();
    for pod in list.items {
        let ready = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        let Some(name) = pod.metadata.name.clone().filter(|_| !ready) else {
            continue;
        };
        match pods
            .delete(&name, &DeleteParams::default())
            .await
            .map_err(ApiError::from)
        {
            Ok(_) => deleted.push(name),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(deleted)
}

/// `key=value,...` from matchLabels.
pub fn selector_of(labels: Option<&BTreeMap<String, String>>) -> String {
    labels
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

async fn controller_revisions(
    client: &Client,
    ns: &str,
    selector: &str,
) -> Result<Vec<ControllerRevision>, ApiError> {
    let api: Api<ControllerRevision> = Api::namespaced(client.clone(), ns);
    let params = ListParams::default().labels(selector);
    Ok(api::retrying("listing", || api.list(&params)).await?.items)
}

/// Sends a JSON patch (`application/json-patch+json`) to a Deployment. kube's typed `Patch::Json`
/// needs the json-patch crate; the request is simple enough to build here.
async fn json_patch(client: &Client, workload: &Workload, body: &Value) -> Result<(), ApiError> {
    let url = format!(
        "{}/{}?fieldManager={ROLLBACK_MANAGER}",
        Deployment::url_path(&(), Some(&workload.namespace)),
        workload.name
    );
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    api::retrying("patching", || {
        let request = http::Request::patch(&url)
            .header(http::header::CONTENT_TYPE, "application/json-patch+json")
            .header(http::header::ACCEPT, "application/json")
            .body(bytes.clone())
            .expect("a valid request");
        let client = client.clone();
        async move { client.request::<Deployment>(request).await.map(|_| ()) }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture<T: serde::de::DeserializeOwned>(yaml: &str) -> T {
        serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("fixture: {e}\n{yaml}"))
    }

    const DEPLOYMENT: &str = "metadata:
  name: web
  uid: d-1
  annotations:
    deployment.kubernetes.io/revision: '3'
    kubernetes.io/change-cause: deploy v3
    promote.studysphere.dev/image: r.io/web@sha256:v3
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: 'r.io/web@sha256:v3'}]}";

    fn rs(name: &str, revision: Option<&str>, owner: &str, image: &str) -> ReplicaSet {
        let annotations = match revision {
            Some(r) => format!(
                "{{deployment.kubernetes.io/revision: '{r}', kubernetes.io/change-cause: deploy {image}, deployment.kubernetes.io/desired-replicas: '2'}}"
            ),
            None => "{}".into(),
        };
        fixture(&format!(
            "metadata:
  name: {name}
  annotations: {annotations}
  ownerReferences: [{{apiVersion: apps/v1, kind: Deployment, name: web, uid: {owner}, controller: true}}]
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web, pod-template-hash: {name}}}}}
    spec: {{containers: [{{name: web, image: 'r.io/web@sha256:{image}'}}]}}"
        ))
    }

    fn history() -> Vec<ReplicaSet> {
        vec![
            rs("web-a", Some("1"), "d-1", "v1"),
            rs("web-c", Some("3"), "d-1", "v3"),
            rs("web-b", Some("2"), "d-1", "v2"),
            // Not ours: same labels, another owner; a higher revision must not be picked.
            rs("other", Some("9"), "d-2", "v9"),
            // Not a number: ignored, as kubectl ignores it.
            rs("web-x", Some("three"), "d-1", "vx"),
        ]
    }

    fn name(rs: &ReplicaSet) -> &str {
        rs.metadata.name.as_deref().unwrap_or_default()
    }

    /// kubectl's target choice, one row per rule.
    #[test]
    fn rollback_target_is_the_previous_owned_revision_or_the_one_asked_for() {
        let d: Deployment = fixture(DEPLOYMENT);
        let h = history();
        let cases: &[(&str, Option<i64>, Result<&str, UndoError>)] = &[
            (
                "second-highest revision owned by the deployment",
                None,
                Ok("web-b"),
            ),
            ("an exact revision", Some(1), Ok("web-a")),
            (
                "0 means the previous one, as in kubectl",
                Some(0),
                Ok("web-b"),
            ),
            (
                "a revision not in history",
                Some(7),
                Err(UndoError::RevisionNotFound(7)),
            ),
            (
                "another owner's revision is not history",
                Some(9),
                Err(UndoError::RevisionNotFound(9)),
            ),
        ];
        for (case, to, want) in cases {
            let got = choose_rollback_target(&d, &h, *to).map(name);
            assert_eq!(got, want.clone(), "case: {case}");
        }
    }

    #[test]
    fn a_single_revision_has_no_history_and_paused_is_refused() {
        let d: Deployment = fixture(DEPLOYMENT);
        let only = vec![rs("web-c", Some("3"), "d-1", "v3")];
        assert_eq!(
            choose_rollback_target(&d, &only, None).map(name),
            Err(UndoError::NoHistory("deployment \"web\"".into()))
        );
        let mut paused = d.clone();
        paused.spec.as_mut().unwrap().paused = Some(true);
        assert_eq!(
            choose_rollback_target(&paused, &history(), None).map(name),
            Err(UndoError::Paused)
        );
    }

    #[test]
    fn a_replicaset_without_revision_counts_as_revision_zero() {
        let d: Deployment = fixture(DEPLOYMENT);
        let h = vec![
            rs("web-c", Some("3"), "d-1", "v3"),
            rs("web-0", None, "d-1", "v0"),
        ];
        assert_eq!(choose_rollback_target(&d, &h, None).map(name), Ok("web-0"));
    }

    #[test]
    fn undo_patch_replaces_template_without_hash_and_keeps_revision_annotations() {
        let d: Deployment = fixture(DEPLOYMENT);
        let undo = plan_deployment_undo(&d, &history(), None).unwrap();
        let Undo::Patch {
            revision,
            patch: UndoPatch::Json(patch),
        } = undo
        else {
            panic!("expected a JSON patch, got {undo:?}");
        };
        assert_eq!(revision, 2);
        assert_eq!(
            patch,
            json!([
                {
                    "op": "replace",
                    "path": "/spec/template",
                    "value": {
                        "metadata": { "labels": { "app": "web" } },
                        "spec": { "containers": [{ "name": "web", "image": "r.io/web@sha256:v2" }] }
                    }
                },
                {
                    "op": "replace",
                    "path": "/metadata/annotations",
                    "value": {
                        // the Deployment's own revision, not the ReplicaSet's desired-replicas
                        "deployment.kubernetes.io/revision": "3",
                        "kubernetes.io/change-cause": "deploy v2"
                    }
                }
            ])
        );
    }

    #[test]
    fn undo_is_skipped_when_the_template_already_matches() {
        let mut d: Deployment = fixture(DEPLOYMENT);
        // The Deployment runs v2's template again (plus empty fields semantic equality ignores).
        d.spec.as_mut().unwrap().template = fixture(
            "metadata: {labels: {app: web}, annotations: {}}
spec: {containers: [{name: web, image: 'r.io/web@sha256:v2', env: []}]}",
        );
        assert_eq!(
            plan_deployment_undo(&d, &history(), None),
            Ok(Undo::Skip { revision: 2 })
        );
    }

    fn revision(name: &str, n: i64, owner: &str, image: &str) -> ControllerRevision {
        fixture(&format!(
            "metadata:
  name: {name}
  ownerReferences: [{{apiVersion: apps/v1, kind: StatefulSet, name: db, uid: {owner}, controller: true}}]
revision: {n}
data:
  spec:
    template:
      $patch: replace
      metadata: {{labels: {{app: db}}}}
      spec: {{containers: [{{name: db, image: '{image}'}}]}}"
        ))
    }

    #[test]
    fn controller_revision_undo_sends_the_previous_data() {
        let revisions = vec![
            revision("db-1", 1, "s-1", "db:1"),
            revision("db-3", 3, "s-1", "db:3"),
            revision("db-2", 2, "s-1", "db:2"),
            revision("x-5", 5, "s-2", "db:5"),
        ];
        let current = json!({
            "metadata": { "labels": { "app": "db" } },
            "spec": { "containers": [{ "name": "db", "image": "db:3" }] }
        });
        let undo = plan_controller_revision_undo(
            "statefulset \"db\"",
            Some("s-1"),
            &current,
            &revisions,
            None,
        )
        .unwrap();
        let Undo::Patch {
            revision,
            patch: UndoPatch::Strategic(data),
        } = undo
        else {
            panic!("expected a strategic merge patch, got {undo:?}");
        };
        assert_eq!(revision, 2);
        assert_eq!(data["spec"]["template"]["$patch"], "replace");
        assert_eq!(
            data["spec"]["template"]["spec"]["containers"][0]["image"],
            "db:2"
        );
        let at_two = json!({
            "metadata": { "labels": { "app": "db" } },
            "spec": { "containers": [{ "name": "db", "image": "db:2" }] }
        });
        assert_eq!(
            plan_controller_revision_undo(
                "statefulset \"db\"",
                Some("s-1"),
                &at_two,
                &revisions,
                None
            ),
            Ok(Undo::Skip { revision: 2 })
        );
        assert_eq!(
            plan_controller_revision_undo(
                "statefulset \"db\"",
                Some("s-1"),
                &current,
                &revisions,
                Some(5)
            ),
            Err(UndoError::RevisionNotFound(5))
        );
    }
}
