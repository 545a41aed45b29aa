//! A Deployment's revisions, as `kubectl rollout history` lists them, plus what promote-action
//! recorded on each (image digest, git sha, run): read from the ReplicaSets the Deployment
//! controls, which carry the Deployment's annotations of the time they were created.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::ListParams;
use kube::{Api, Client};
use serde::Serialize;

use super::api::{self, ApiError};
use super::render::{
    ANNOTATION_CHANGE_CAUSE, ANNOTATION_GIT_SHA, ANNOTATION_IMAGE, ANNOTATION_RUN_URL,
};
use super::rollback::selector_of;
use super::rollout::{REVISION_ANNOTATION, revision_of};

/// One revision of a Deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revision {
    pub revision: i64,
    /// The image of the service's container: our annotation, else the first container's.
    pub image: Option<String>,
    /// The `sha256:…` part of `image`.
    pub digest: Option<String>,
    pub git_sha: Option<String>,
    pub run_url: Option<String>,
    /// When the ReplicaSet was created, RFC 3339.
    pub created: Option<String>,
    pub change_cause: Option<String>,
    /// Whether this is the Deployment's current revision.
    pub current: bool,
    /// Ready pods of this revision.
    pub ready: i32,
}

/// The revisions of `deployment` found among `replicasets`, oldest first.
pub fn revisions(deployment: &Deployment, replicasets: &[ReplicaSet]) -> Vec<Revision> {
    let uid = deployment.metadata.uid.as_deref();
    let current = revision_of(deployment.metadata.annotations.as_ref());
    let mut out: Vec<Revision> = replicasets
        .iter()
        .filter(|rs| {
            rs.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|r| r.controller == Some(true) && Some(r.uid.as_str()) == uid)
        })
        .filter_map(|rs| {
            let annotations = rs.metadata.annotations.clone().unwrap_or_default();
            let revision: i64 = annotations.get(REVISION_ANNOTATION)?.parse().ok()?;
            let get = |key: &str| annotations.get(key).cloned();
            let image = get(ANNOTATION_IMAGE).or_else(|| {
                rs.spec
                    .as_ref()?
                    .template
                    .as_ref()?
                    .spec
                    .as_ref()?
                    .containers
                    .first()?
                    .image
                    .clone()
            });
            let digest = image
                .as_deref()
                .and_then(|i| i.split_once('@'))
                .map(|(_, d)| d.to_string());
            Some(Revision {
                revision,
                digest,
                image,
                git_sha: get(ANNOTATION_GIT_SHA),
                run_url: get(ANNOTATION_RUN_URL),
                created: rs
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .map(|t| t.0.to_string()),
                change_cause: get(ANNOTATION_CHANGE_CAUSE),
                current: Some(revision) == current,
                ready: rs
                    .status
                    .as_ref()
                    .and_then(|s| s.ready_replicas)
                    .unwrap_or(0),
            })
        })
        .collect();
    out.sort_by_key(|r| r.revision);
    out
}

/// Reads the Deployment `name` and its ReplicaSets. `Ok(None)` when the Deployment does not exist.
///
/// # Errors
/// The API's answer.
pub async fn read(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<(Deployment, Vec<Revision>)>, ApiError> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let Some(deployment) = api::retrying("reading", || api.get_opt(name)).await? else {
        return Ok(None);
    };
    let selector = selector_of(
        deployment
            .spec
            .as_ref()
            .and_then(|s| s.selector.match_labels.as_ref()),
    );
    let rs_api: Api<ReplicaSet> = Api::namespaced(client.clone(), namespace);
    let params = ListParams::default().labels(&selector);
    let replicasets = api::retrying("listing", || rs_api.list(&params))
        .await?
        .items;
    let list = revisions(&deployment, &replicasets);
    Ok(Some((deployment, list)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_come_from_owned_replicasets_oldest_first() {
        let deployment: Deployment = serde_saphyr::from_str(
            "metadata: {name: web, uid: d-1, annotations: {deployment.kubernetes.io/revision: '2'}}
spec: {selector: {matchLabels: {app: web}}, template: {}}",
        )
        .unwrap();
        let replicasets: Vec<ReplicaSet> = serde_saphyr::from_str(
            "- metadata:
    name: web-b
    creationTimestamp: '2025-01-02T00:00:00Z'
    ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: web, uid: d-1, controller: true}]
    annotations:
      deployment.kubernetes.io/revision: '2'
      promote.studysphere.dev/image: 'r.io/web@sha256:bbb'
      promote.studysphere.dev/git-sha: 2222222
      kubernetes.io/change-cause: 'promote-action: r.io/web@sha256:bbb to testing'
  status: {replicas: 2, readyReplicas: 2}
- metadata:
    name: web-a
    creationTimestamp: '2025-01-01T00:00:00Z'
    ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: web, uid: d-1, controller: true}]
    annotations: {deployment.kubernetes.io/revision: '1'}
  spec:
    selector: {}
    template: {spec: {containers: [{name: web, image: 'r.io/web:v1'}]}}
  status: {replicas: 0}
- metadata:
    name: stranger
    ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: x, uid: d-9, controller: true}]
    annotations: {deployment.kubernetes.io/revision: '5'}
  status: {replicas: 0}",
        )
        .unwrap();
        let list = revisions(&deployment, &replicasets);
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].revision, 1);
        assert_eq!(list[0].image.as_deref(), Some("r.io/web:v1"));
        assert_eq!(list[0].digest, None);
        assert!(!list[0].current);
        assert_eq!(list[1].revision, 2);
        assert_eq!(list[1].digest.as_deref(), Some("sha256:bbb"));
        assert_eq!(list[1].git_sha.as_deref(), Some("2222222"));
        assert_eq!(list[1].created.as_deref(), Some("2025-01-02T00:00:00Z"));
        assert!(list[1].current);
        assert_eq!(list[1].ready, 2);
    }
}
