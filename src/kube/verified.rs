//! The cluster's half of the promotion record: after a release is rolled out AND verified in
//! an environment, each service's Deployment gets annotations saying which digest was verified,
//! as part of which release, when and by whom. They sit on the Deployment's own metadata, not
//! its pod template, so writing them starts no rollout, and `rollout undo` (which swaps the
//! template) leaves them saying what was last verified: a Deployment whose running digest
//! differs from its verified one has been changed since (an undo, a `kubectl set image`).
//!
//! `promote run` reads them in the lower environment before promoting, and `promote status`
//! shows them.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde::Serialize;
use serde_json::json;

use super::api::{self, ApiError};
use super::history::{self, Revision};

/// The digest (`sha256:…`) the last successful verification approved.
pub const ANNOTATION_VERIFIED_DIGEST: &str = "promote.studysphere.dev/verified-digest";
/// The release (fingerprint of every service's digest) it was verified as part of.
pub const ANNOTATION_RELEASE: &str = "promote.studysphere.dev/release";
/// When (RFC 3339).
pub const ANNOTATION_VERIFIED_AT: &str = "promote.studysphere.dev/verified-at";
/// Who started the promotion (`GITHUB_ACTOR`, or the local user).
pub const ANNOTATION_DEPLOYED_BY: &str = "promote.studysphere.dev/deployed-by";
/// The commit of the release.
pub const ANNOTATION_VERIFIED_SHA: &str = "promote.studysphere.dev/verified-git-sha";

/// One service's Deployment as it runs now, with what was last verified.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LiveService {
    /// False when the Deployment does not exist.
    pub deployed: bool,
    /// The service container's image in the pod template.
    pub image: Option<String>,
    /// Its `sha256:…`, when pinned.
    pub digest: Option<String>,
    pub verified_digest: Option<String>,
    pub release: Option<String>,
    pub verified_at: Option<String>,
    pub verified_sha: Option<String>,
    pub deployed_by: Option<String>,
    /// The git sha of the running revision (render's provenance annotation).
    pub git_sha: Option<String>,
    pub revision: Option<i64>,
    pub ready: Option<i32>,
    pub desired: Option<i32>,
    /// When the running revision's ReplicaSet was created.
    pub since: Option<String>,
}

impl LiveService {
    /// Runs `digest`, and that digest is the one last verified.
    pub fn runs_verified(&self, digest: &str) -> bool {
        self.digest.as_deref() == Some(digest) && self.verified_digest.as_deref() == Some(digest)
    }
}

/// What `deployment` (with its revisions) says; `container` is the service's container.
fn live_service(deployment: &Deployment, revisions: &[Revision], container: &str) -> LiveService {
    let empty = BTreeMap::new();
    let annotations = deployment.metadata.annotations.as_ref().unwrap_or(&empty);
    let get = |key: &str| annotations.get(key).filter(|v| !v.is_empty()).cloned();
    let containers = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    let image = containers
        .iter()
        .find(|c| c.name == container)
        .or(containers.first())
        .and_then(|c| c.image.clone());
    let digest = image
        .as_deref()
        .and_then(|i| i.split_once('@'))
        .map(|(_, d)| d.to_string());
    let current = revisions.iter().find(|r| r.current);
    LiveService {
        deployed: true,
        image,
        digest,
        verified_digest: get(ANNOTATION_VERIFIED_DIGEST),
        release: get(ANNOTATION_RELEASE),
        verified_at: get(ANNOTATION_VERIFIED_AT),
        verified_sha: get(ANNOTATION_VERIFIED_SHA),
        deployed_by: get(ANNOTATION_DEPLOYED_BY),
        git_sha: current
            .and_then(|r| r.git_sha.clone())
            .or_else(|| get(super::render::ANNOTATION_GIT_SHA)),
        revision: current.map(|r| r.revision),
        ready: deployment.status.as_ref().and_then(|s| s.ready_replicas),
        desired: deployment.spec.as_ref().and_then(|s| s.replicas),
        since: current.and_then(|r| r.created.clone()),
    }
}

/// Reads the Deployment `name` in `namespace`; `deployed: false` when it does not exist.
///
/// # Errors
/// The API's answer.
pub async fn read(
    client: &Client,
    namespace: &str,
    name: &str,
    container: &str,
) -> Result<LiveService, ApiError> {
    Ok(match history::read(client, namespace, name).await? {
        Some((deployment, revisions)) => live_service(&deployment, &revisions, container),
        None => LiveService::default(),
    })
}

/// What a verified promotion writes on each Deployment.
#[derive(Debug, Clone)]
pub struct Verified<'a> {
    pub digest: &'a str,
    pub release: &'a str,
    pub git_sha: Option<&'a str>,
    pub deployed_by: Option<&'a str>,
    pub at: &'a str,
}

/// Records on the Deployment `name` that `verified` was rolled out and verified (a merge patch
/// of its metadata annotations: no rollout).
///
/// # Errors
/// The API's answer.
pub async fn mark(
    client: &Client,
    namespace: &str,
    name: &str,
    verified: &Verified<'_>,
) -> Result<(), ApiError> {
    let patch = json!({
        "metadata": {
            "annotations": {
                ANNOTATION_VERIFIED_DIGEST: verified.digest,
                ANNOTATION_RELEASE: verified.release,
                ANNOTATION_VERIFIED_AT: verified.at,
                ANNOTATION_VERIFIED_SHA: verified.git_sha,
                ANNOTATION_DEPLOYED_BY: verified.deployed_by,
            }
        }
    });
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let params = PatchParams::default();
    let patch = Patch::Merge(&patch);
    api::retrying("annotating", || deployments.patch(name, &params, &patch)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(yaml: &str) -> Deployment {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn reads_the_running_digest_and_what_was_verified() {
        let d = deployment(
            "metadata:
  name: web
  annotations:
    promote.studysphere.dev/verified-digest: sha256:aaa
    promote.studysphere.dev/release: r1
    promote.studysphere.dev/deployed-by: octocat
spec:
  replicas: 2
  selector: {}
  template:
    spec:
      containers:
        - {name: sidecar, image: 'r.io/proxy:1'}
        - {name: web, image: 'r.io/web@sha256:aaa'}
status: {readyReplicas: 1}",
        );
        let live = live_service(&d, &[], "web");
        assert!(live.deployed);
        assert_eq!(live.digest.as_deref(), Some("sha256:aaa"));
        assert!(live.runs_verified("sha256:aaa"));
        assert!(!live.runs_verified("sha256:bbb"));
        assert_eq!(live.deployed_by.as_deref(), Some("octocat"));
        assert_eq!((live.ready, live.desired), (Some(1), Some(2)));
    }

    #[test]
    fn an_undone_deployment_no_longer_runs_what_was_verified() {
        let d = deployment(
            "metadata:
  name: web
  annotations: {promote.studysphere.dev/verified-digest: 'sha256:bbb'}
spec:
  selector: {}
  template: {spec: {containers: [{name: web, image: 'r.io/web@sha256:aaa'}]}}",
        );
        let live = live_service(&d, &[], "web");
        assert!(!live.runs_verified("sha256:aaa"));
        assert!(!live.runs_verified("sha256:bbb"));
    }
}
