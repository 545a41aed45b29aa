//! Server-side apply of rendered objects: field manager `promote-action`, force only when asked,
//! in dependency order (what others reference first: `render::apply_rank`), objects of the same
//! rank concurrently. The same call with [`Mode::DryRun`] validates everything against the live
//! API server (admission, schema, conflicts) without writing, which a deploy does for every
//! object before its first write.
//!
//! A `409 Conflict` names the field managers that own the disputed fields, from the server's
//! causes, so the person reading it knows whom they would overrule with `force`. The one manager
//! that is overruled without asking is our own rollback's (`promote-action-rollback`): a deploy
//! after a rollback takes back the fields the rollback changed, as `kubectl apply` after
//! `kubectl rollout undo` would with `--force-conflicts`.

use std::time::Duration;

use futures_util::{StreamExt as _, stream};
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::Scope;
use kube::{Api, Client};
use serde::Serialize;
use serde_json::Value;

use super::api::{self, ApiError};
use super::render::{MANAGER, apply_rank};
use super::rollback::ROLLBACK_MANAGER;

/// The field manager of `scale` writes (a canary step, a retired colour): apart from the
/// apply's, so that the promotion's apply can take `spec.replicas` back without forcing anyone
/// else's fields.
pub const SCALE_MANAGER: &str = "promote-action-scale";

/// Validate only (`dryRun=All`), or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    DryRun,
    Write,
}

/// Whether to take over fields other managers own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Force {
    No,
    Yes,
}

/// How many objects of one rank are applied at once: enough to hide the round trip, few enough
/// to stay well inside the API server's default client QPS budget and priority-and-fairness
/// share for one client.
pub const CONCURRENCY: usize = 8;

/// `kind/name` as kubectl prints it (`deployment/web`).
pub fn object_ref(object: &Value) -> String {
    format!(
        "{}/{}",
        object["kind"].as_str().unwrap_or("object").to_lowercase(),
        object["metadata"]["name"].as_str().unwrap_or_default()
    )
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(
        "{object}: fields are owned by {} ({}); pass force (`force: true`) to take them over",
        managers.join(", "),
        if fields.is_empty() { "fields not named".to_string() } else { fields.join(", ") }
    )]
    Conflict {
        object: String,
        managers: Vec<String>,
        fields: Vec<String>,
        #[source]
        source: ApiError,
    },
    #[error("{object} was rejected")]
    Rejected {
        object: String,
        #[source]
        source: ApiError,
    },
    #[error("{object}: reading the live object failed")]
    Read {
        object: String,
        #[source]
        source: ApiError,
    },
    #[error("{object}: the API server does not serve {api_version} {kind}")]
    UnknownKind {
        object: String,
        api_version: String,
        kind: String,
        #[source]
        source: Option<kube::Error>,
    },
}

impl ApplyError {
    pub fn object(&self) -> &str {
        match self {
            ApplyError::Conflict { object, .. }
            | ApplyError::Rejected { object, .. }
            | ApplyError::Read { object, .. }
            | ApplyError::UnknownKind { object, .. } => object,
        }
    }
}

/// The resource of a well-known kind, so no discovery round trip is needed for what `render`
/// produces. `None` for anything else (discovered on demand).
pub fn known_resource(api_version: &str, kind: &str) -> Option<(ApiResource, Scope)> {
    let (plural, scope) = match (api_version, kind) {
        ("v1", "ConfigMap") => ("configmaps", Scope::Namespaced),
        ("v1", "Secret") => ("secrets", Scope::Namespaced),
        ("v1", "ServiceAccount") => ("serviceaccounts", Scope::Namespaced),
        ("v1", "Service") => ("services", Scope::Namespaced),
        ("v1", "PersistentVolumeClaim") => ("persistentvolumeclaims", Scope::Namespaced),
        ("v1", "Namespace") => ("namespaces", Scope::Cluster),
        ("apps/v1", "Deployment") => ("deployments", Scope::Namespaced),
        ("apps/v1", "StatefulSet") => ("statefulsets", Scope::Namespaced),
        ("apps/v1", "DaemonSet") => ("daemonsets", Scope::Namespaced),
        ("batch/v1", "Job") => ("jobs", Scope::Namespaced),
        ("batch/v1", "CronJob") => ("cronjobs", Scope::Namespaced),
        ("autoscaling/v2" | "autoscaling/v1", "HorizontalPodAutoscaler") => {
            ("horizontalpodautoscalers", Scope::Namespaced)
        }
        ("policy/v1", "PodDisruptionBudget") => ("poddisruptionbudgets", Scope::Namespaced),
        ("networking.k8s.io/v1", "Ingress") => ("ingresses", Scope::Namespaced),
        ("networking.k8s.io/v1", "NetworkPolicy") => ("networkpolicies", Scope::Namespaced),
        ("rbac.authorization.k8s.io/v1", "Role") => ("roles", Scope::Namespaced),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => ("rolebindings", Scope::Namespaced),
        ("coordination.k8s.io/v1", "Lease") => ("leases", Scope::Namespaced),
        _ => return None,
    };
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    let gvk = GroupVersionKind::gvk(group, version, kind);
    Some((ApiResource::from_gvk_with_plural(&gvk, plural), scope))
}

/// The field managers a 409 names: `conflict with "kubectl-edit" using apps/v1: .spec.replicas`,
/// from each cause (or the message when there are none), in order, without repeats.
fn conflicting_managers(status: &kube::core::Status) -> (Vec<String>, Vec<String>) {
    let mut texts: Vec<&str> = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    if let Some(details) = &status.details {
        for cause in &details.causes {
            texts.push(&cause.message);
            if !cause.field.is_empty() && !fields.contains(&cause.field) {
                fields.push(cause.field.clone());
            }
        }
    }
    texts.push(&status.message);
    let mut managers: Vec<String> = Vec::new();
    for text in texts {
        let mut rest = text;
        // `conflict with X` / `conflicts with X` (not `failed with 2 conflicts`).
        while let Some(at) = rest
            .match_indices("with ")
            .map(|(i, _)| i)
            .find(|&i| rest[..i].ends_with("conflict ") || rest[..i].ends_with("conflicts "))
        {
            rest = &rest[at + "with ".len()..];
            // The API server quotes the manager (`with "kubectl" using apps/v1`); accept it
            // unquoted too (`with kubectl: .spec.replicas`).
            let (name, tail) = match rest.strip_prefix('"') {
                Some(quoted) => match quoted.find('"') {
                    Some(end) => (&quoted[..end], &quoted[end + 1..]),
                    None => break,
                },
                None => {
                    let end = rest
                        .find(|c: char| c.is_whitespace() || c == ':' || c == ',')
                        .unwrap_or(rest.len());
                    (&rest[..end], &rest[end..])
                }
            };
            let manager = crate::untrusted::server_text(name);
            if !manager.is_empty() && !managers.contains(&manager) {
                managers.push(manager);
            }
            rest = tail;
        }
    }
    (managers, fields)
}

/// Whether every conflicting manager is one of ours, so the conflict can be resolved without
/// asking: fields our own rollback changed, or the replicas a canary step set.
pub fn ours(managers: &[String]) -> bool {
    !managers.is_empty()
        && managers
            .iter()
            .all(|m| m == ROLLBACK_MANAGER || m == SCALE_MANAGER)
}

/// One applied object.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    /// `kind/name`.
    pub object: String,
    pub namespace: Option<String>,
    /// `metadata.generation` after the apply (workloads: compare with before to see a change).
    pub generation: Option<i64>,
    /// Whether conflicts with our own rollback's fields were forced.
    pub took_back_rollback_fields: bool,
    #[serde(skip)]
    pub response: Value,
}

/// Resolves an object's resource: the table, else discovery.
async fn resource(client: &Client, object: &Value) -> Result<(ApiResource, Scope), ApplyError> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    if let Some(found) = known_resource(api_version, kind) {
        return Ok(found);
    }
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    let gvk = GroupVersionKind::gvk(group, version, kind);
    match kube::discovery::pinned_kind(client, &gvk).await {
        Ok((resource, capabilities)) => Ok((resource, capabilities.scope)),
        Err(e) => Err(ApplyError::UnknownKind {
            object: object_ref(object),
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            source: Some(e),
        }),
    }
}

/// The API of `object`'s resource, in its namespace when it is namespaced.
async fn api_for(client: &Client, object: &Value) -> Result<Api<DynamicObject>, ApplyError> {
    let (resource, scope) = resource(client, object).await?;
    let namespace = object["metadata"]["namespace"].as_str();
    Ok(match (scope, namespace) {
        (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &resource),
        (Scope::Namespaced, None) => Api::default_namespaced_with(client.clone(), &resource),
        (Scope::Cluster, _) => Api::all_with(client.clone(), &resource),
    })
}

/// The live object that applying `object` would change (same resource, namespace and name),
/// or `None` when there is none: the "before" of a server-side dry-run diff, as `kubectl diff`
/// reads it. Retries like every call here.
///
/// # Errors
/// A kind the server does not know, or the read failed in the server's words.
pub async fn get_live(client: &Client, object: &Value) -> Result<Option<Value>, ApplyError> {
    let api = api_for(client, object).await?;
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    match api::retrying("reading the live object", || api.get_opt(name)).await {
        Ok(found) => Ok(found.map(|o| serde_json::to_value(o).unwrap_or(Value::Null))),
        Err(source) => Err(ApplyError::Read {
            object: object_ref(object),
            source,
        }),
    }
}

/// Server-side applies one object (retrying throttling and server errors).
///
/// # Errors
/// A conflict naming the other field managers, a rejection in the server's words, or a kind the
/// server does not know.
pub async fn apply_one(
    client: &Client,
    object: &Value,
    mode: Mode,
    force: Force,
) -> Result<Applied, ApplyError> {
    let api = api_for(client, object).await?;
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let namespace = object["metadata"]["namespace"].as_str();
    let params = |force: Force| {
        let mut p = PatchParams::apply(MANAGER);
        if force == Force::Yes {
            p = p.force();
        }
        if mode == Mode::DryRun {
            p = p.dry_run();
        }
        p
    };
    let patch = Patch::Apply(object);
    let first = params(force);
    let mut took_back = false;
    let result = match api::retrying("applying", || api.patch(name, &first, &patch)).await {
        Err(e) if e.is_conflict() && force == Force::No => {
            let (managers, fields) = e.status().map(conflicting_managers).unwrap_or_default();
            if ours(&managers) {
                took_back = true;
                let forced = params(Force::Yes);
                api::retrying("applying", || api.patch(name, &forced, &patch)).await
            } else {
                return Err(ApplyError::Conflict {
                    object: object_ref(object),
                    managers: if managers.is_empty() {
                        vec!["another field manager".to_string()]
                    } else {
                        managers
                    },
                    fields,
                    source: e,
                });
            }
        }
        other => other,
    };
    match result {
        Ok(applied) => {
            let response = serde_json::to_value(&applied).unwrap_or(Value::Null);
            Ok(Applied {
                object: object_ref(object),
                namespace: namespace.map(str::to_string),
                generation: applied.metadata.generation,
                took_back_rollback_fields: took_back,
                response,
            })
        }
        Err(source) => Err(ApplyError::Rejected {
            object: object_ref(object),
            source,
        }),
    }
}

/// The result of applying a batch.
#[derive(Debug, Default)]
pub struct Batch {
    /// In input order, for the objects that were applied.
    pub applied: Vec<Applied>,
    /// Every object that failed.
    pub errors: Vec<ApplyError>,
    /// Objects not attempted because an earlier rank failed (writes only).
    pub skipped: Vec<String>,
    pub elapsed: Duration,
}

/// Applies `objects` rank by rank ([`apply_rank`]), up to `concurrency` at once within a rank.
///
/// With [`Mode::DryRun`] every object is tried and every error collected. With [`Mode::Write`]
/// a failing rank stops the batch before the next one: a Deployment is never applied when the
/// ConfigMap it refers to was refused.
pub async fn apply_all(
    client: &Client,
    objects: &[Value],
    mode: Mode,
    force: Force,
    concurrency: usize,
) -> Batch {
    let started = tokio::time::Instant::now();
    let mut ordered: Vec<(usize, &Value)> = objects.iter().enumerate().collect();
    ordered.sort_by_key(|(i, o)| (apply_rank(o["kind"].as_str().unwrap_or_default()), *i));
    let mut batch = Batch::default();
    let mut results: Vec<(usize, Applied)> = Vec::new();
    let mut start = 0;
    while start < ordered.len() {
        let rank = apply_rank(ordered[start].1["kind"].as_str().unwrap_or_default());
        let end = ordered[start..]
            .iter()
            .position(|(_, o)| apply_rank(o["kind"].as_str().unwrap_or_default()) != rank)
            .map_or(ordered.len(), |p| start + p);
        let group = &ordered[start..end];
        let outcomes: Vec<(usize, Result<Applied, ApplyError>)> = stream::iter(group.iter())
            .map(|(i, o)| async move { (*i, apply_one(client, o, mode, force).await) })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        let mut failed = false;
        for (i, outcome) in outcomes {
            match outcome {
                Ok(applied) => results.push((i, applied)),
                Err(e) => {
                    failed = true;
                    batch.errors.push(e);
                }
            }
        }
        start = end;
        if failed && mode == Mode::Write {
            batch.skipped = ordered[start..]
                .iter()
                .map(|(_, o)| object_ref(o))
                .collect();
            break;
        }
    }
    results.sort_by_key(|(i, _)| *i);
    batch.applied = results.into_iter().map(|(_, a)| a).collect();
    batch.errors.sort_by(|a, b| a.object().cmp(b.object()));
    batch.elapsed = started.elapsed();
    batch
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn status(yaml: &str) -> Status {
        serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("fixture: {e}\n{yaml}"))
    }

    #[test]
    fn conflicts_name_every_manager_and_field() {
        let s = status(
            "kind: Status
status: Failure
code: 409
reason: Conflict
message: 'Apply failed with 2 conflicts: conflicts with \"kubectl-edit\" using apps/v1:
  - .spec.replicas
  conflict with \"helm\" using apps/v1: .spec.template.spec.containers[name=\"web\"].image'
details:
  causes:
  - {reason: FieldManagerConflict, message: 'conflict with \"kubectl-edit\" using apps/v1', field: .spec.replicas}
  - {reason: FieldManagerConflict, message: 'conflict with \"helm\" using apps/v1', field: '.spec.template.spec.containers[name=\"web\"].image'}",
        );
        let (managers, fields) = conflicting_managers(&s);
        assert_eq!(managers, ["kubectl-edit", "helm"]);
        assert_eq!(
            fields,
            [
                ".spec.replicas",
                ".spec.template.spec.containers[name=\"web\"].image"
            ]
        );
        assert!(!ours(&managers));
    }

    #[test]
    fn conflicts_are_read_from_the_message_without_causes() {
        let s = status(
            "code: 409
message: 'Apply failed with 1 conflict: conflict with \"promote-action-rollback\" using apps/v1: .spec.template'",
        );
        let (managers, fields) = conflicting_managers(&s);
        assert_eq!(managers, ["promote-action-rollback"]);
        assert!(fields.is_empty());
        assert!(ours(&managers), "our own rollback's fields are taken back");
        assert!(
            ours(&["promote-action-scale".to_string()]),
            "a canary step's replicas are taken back"
        );
        let unquoted = status(
            "code: 409
message: 'Apply failed with 2 conflicts: conflicts with kubectl-edit:
  - .spec.replicas
  conflicts with helm:
  - .metadata.labels.app'
details:
  causes:
  - {reason: FieldManagerConflict, message: conflict with kubectl-edit, field: .spec.replicas}",
        );
        assert_eq!(conflicting_managers(&unquoted).0, ["kubectl-edit", "helm"]);
        assert!(!ours(&[]), "an unnamed manager is not ours");
    }

    #[test]
    fn conflict_errors_say_whom_force_would_overrule() {
        let err = ApplyError::Conflict {
            object: "deployment/web".into(),
            managers: vec!["kubectl-edit".into()],
            fields: vec![".spec.replicas".into()],
            source: ApiError::from(kube::Error::Api(Box::new(
                Status::failure("x", "Conflict").with_code(409),
            ))),
        };
        assert_eq!(
            err.to_string(),
            "deployment/web: fields are owned by kubectl-edit (.spec.replicas); pass force (`force: true`) to take them over"
        );
    }

    #[test]
    fn rendered_kinds_need_no_discovery() {
        for (api_version, kind, plural) in [
            ("v1", "ConfigMap", "configmaps"),
            ("apps/v1", "Deployment", "deployments"),
            (
                "autoscaling/v2",
                "HorizontalPodAutoscaler",
                "horizontalpodautoscalers",
            ),
            ("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
            ("batch/v1", "Job", "jobs"),
        ] {
            let (resource, scope) = known_resource(api_version, kind).expect(kind);
            assert_eq!(resource.plural, plural);
            assert_eq!(resource.api_version, api_version);
            assert!(matches!(scope, Scope::Namespaced));
        }
        assert!(matches!(
            known_resource("v1", "Namespace").map(|(_, s)| s),
            Some(Scope::Cluster)
        ));
        assert!(known_resource("example.com/v1", "Widget").is_none());
        assert_eq!(
            object_ref(&serde_json::json!({"kind": "Deployment", "metadata": {"name": "web"}})),
            "deployment/web"
        );
    }
}
