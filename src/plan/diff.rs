//! How two renderings of the same objects compare, object by object: the base branch's plan
//! against the head's, or (filled in by `promote plan --diff-cluster`) the head against the
//! live cluster.

use std::path::PathBuf;

use serde_json::Value;

use super::text_diff::{CONTEXT, Diff};
use super::{EnvironmentPlan, Plan, PlanRequest};
use crate::config::Config;
use crate::kube::{ANNOTATION_CONFIG_HASH, ANNOTATION_SECRET_NAME};

/// How an object compares with what it was diffed against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Only the head has it (base comparison), or the cluster does not (cluster comparison).
    Added,
    /// Only the base has it: a deploy of the head would leave it behind, not delete it.
    Removed,
    Changed,
    Unchanged,
    /// It could not be compared (the server refused the dry run); `note` says why.
    Failed,
}

impl Change {
    pub fn word(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Changed => "changed",
            Change::Unchanged => "unchanged",
            Change::Failed => "not compared",
        }
    }
}

/// One object's comparison.
#[derive(Debug, Clone)]
pub struct ObjectChange {
    /// The service it belongs to, or `pre-deploy hooks`.
    pub service: String,
    /// `Kind/name`; `Kind/old → new` for a ConfigMap or hook Job whose hashed name changed.
    pub object: String,
    pub change: Change,
    /// The unified diff of the two sides as YAML; empty when unchanged or not compared.
    pub diff: String,
    pub added_lines: usize,
    pub removed_lines: usize,
    pub note: Option<String>,
}

/// One environment's comparison.
#[derive(Debug, Clone)]
pub struct EnvironmentChanges {
    pub environment: String,
    /// The head's objects in apply order, then those only the base has.
    pub objects: Vec<ObjectChange>,
    /// Why this environment was not compared at all (an unreachable cluster).
    pub skipped: Option<String>,
}

impl EnvironmentChanges {
    pub fn count(&self, change: Change) -> usize {
        self.objects.iter().filter(|o| o.change == change).count()
    }
}

/// What the rendered objects were compared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Against {
    /// The promotion file of the base branch, rendered with the same request.
    Base(PathBuf),
    /// The live cluster, through a server-side dry run of each object.
    Cluster,
}

#[derive(Debug, Clone)]
pub struct ChangeSet {
    pub against: Against,
    pub environments: Vec<EnvironmentChanges>,
}

/// Every comparison `plan` was asked for, and what kept any of them from being made.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub sets: Vec<ChangeSet>,
    pub warnings: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty() && self.warnings.is_empty()
    }
}

/// The group objects of pre-deploy hook Jobs are listed under.
pub const HOOKS: &str = "pre-deploy hooks";

/// An object as the diff sees it: which service, what it is matched by, and its name.
struct Entry<'a> {
    service: &'a str,
    identity: String,
    object: &'a Value,
}

fn entries(env: &EnvironmentPlan) -> Vec<Entry<'_>> {
    let services = env.services.iter().flat_map(|r| {
        r.objects.iter().map(|o| Entry {
            service: &r.service,
            identity: identity(o),
            object: o,
        })
    });
    let hooks = env.hooks.iter().map(|o| Entry {
        service: HOOKS,
        identity: identity(o),
        object: o,
    });
    services.chain(hooks).collect()
}

/// What matches an object across two renderings: `Kind/name`, except for names that carry a
/// content hash, which change with every edit. A service's ConfigMap (`web-config-<hash>`) and a
/// `fromEnv` Secret's version (`app-secrets-<hash>`) are matched by their names without the
/// hash, a hook Job by its hook, so a config edit reads as the ConfigMap changed rather than one
/// added and one removed.
pub fn identity(object: &Value) -> String {
    let kind = object["kind"].as_str().unwrap_or_default();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    if kind == "Job"
        && let Some(hook) = object["metadata"]["labels"]["promote.studysphere.dev/hook"].as_str()
    {
        return format!("Job/hook {hook}");
    }
    if kind == "ConfigMap"
        && let Some(hash) = object["metadata"]["annotations"][ANNOTATION_CONFIG_HASH].as_str()
        && !hash.is_empty()
        && let Some(stem) = name.strip_suffix(hash)
    {
        return format!("ConfigMap/{stem}*");
    }
    if kind == "Secret"
        && let Some(declared) = object["metadata"]["annotations"][ANNOTATION_SECRET_NAME].as_str()
        && name.starts_with(declared)
    {
        return format!("Secret/{declared}-*");
    }
    format!("{kind}/{name}")
}

/// `Kind/name` as the summary shows it.
pub fn display_name(object: &Value) -> String {
    format!(
        "{}/{}",
        object["kind"].as_str().unwrap_or_default(),
        object["metadata"]["name"].as_str().unwrap_or_default()
    )
}

/// Diffs two plans environment by environment: the head's environments in order, then any
/// only the base has (every object removed).
pub fn diff_plans(base: &Plan, head: &Plan) -> Vec<EnvironmentChanges> {
    let mut names: Vec<&str> = head.environments.iter().map(|e| e.name.as_str()).collect();
    for env in &base.environments {
        if !names.contains(&env.name.as_str()) {
            names.push(&env.name);
        }
    }
    names
        .into_iter()
        .map(|name| {
            let old = base.environment(name).map(entries).unwrap_or_default();
            let new = head.environment(name).map(entries).unwrap_or_default();
            let mut matched = vec![false; old.len()];
            let mut objects = Vec::new();
            for n in &new {
                let found = old
                    .iter()
                    .enumerate()
                    .find(|(i, o)| !matched[*i] && o.identity == n.identity);
                let before = found.map(|(i, o)| {
                    matched[i] = true;
                    o.object
                });
                let object = match before {
                    Some(b) if display_name(b) != display_name(n.object) => format!(
                        "{} → {}",
                        display_name(b),
                        n.object["metadata"]["name"].as_str().unwrap_or_default()
                    ),
                    _ => display_name(n.object),
                };
                objects.push(compare(
                    n.service,
                    object,
                    before.map(|b| (format!("base/{name}/{}", display_name(b)), b)),
                    Some((format!("head/{name}/{}", display_name(n.object)), n.object)),
                ));
            }
            for (o, _) in old.iter().zip(&matched).filter(|(_, m)| !**m) {
                objects.push(compare(
                    o.service,
                    display_name(o.object),
                    Some((format!("base/{name}/{}", display_name(o.object)), o.object)),
                    None,
                ));
            }
            EnvironmentChanges {
                environment: name.to_string(),
                objects,
                skipped: None,
            }
        })
        .collect()
}

/// Compares two sides as YAML; a missing side is `/dev/null`, as in `diff -N`.
pub fn compare(
    service: &str,
    object: String,
    old: Option<(String, &Value)>,
    new: Option<(String, &Value)>,
) -> ObjectChange {
    let yaml = |side: &Option<(String, &Value)>| {
        side.as_ref().map_or_else(String::new, |(_, v)| {
            serde_saphyr::to_string(v).unwrap_or_else(|e| format!("# cannot show as YAML: {e}\n"))
        })
    };
    let label = |side: &Option<(String, &Value)>| {
        side.as_ref()
            .map_or_else(|| "/dev/null".to_string(), |(l, _)| l.clone())
    };
    let (old_text, new_text) = (yaml(&old), yaml(&new));
    let diff = Diff::new(&old_text, &new_text);
    let change = match (&old, &new) {
        (None, _) => Change::Added,
        (_, None) => Change::Removed,
        _ if diff.is_empty() => Change::Unchanged,
        _ => Change::Changed,
    };
    ObjectChange {
        service: service.to_string(),
        object,
        change,
        diff: diff.unified(&label(&old), &label(&new), CONTEXT),
        added_lines: diff.added(),
        removed_lines: diff.removed(),
        note: None,
    }
}

/// Removes what the API server maintains and a reader of a diff does not act on, as
/// `kubectl diff` does: managed fields, resource version, uid, generation, creation time,
/// status, and the Deployment controller's revision annotation.
pub fn strip_noise(object: &mut Value) {
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in [
            "managedFields",
            "resourceVersion",
            "uid",
            "generation",
            "creationTimestamp",
        ] {
            metadata.remove(key);
        }
        if let Some(annotations) = metadata
            .get_mut("annotations")
            .and_then(Value::as_object_mut)
        {
            annotations.remove("deployment.kubernetes.io/revision");
            if annotations.is_empty() {
                metadata.remove("annotations");
            }
        }
    }
    if let Some(object) = object.as_object_mut() {
        object.remove("status");
    }
}

/// The head's request as the base file understands it: `None` when the base has no such
/// environment or service; images only for services the base declares.
pub fn base_request(base: &Config, request: &PlanRequest) -> Option<PlanRequest> {
    if let Some(env) = &request.environment
        && base.environment(env).is_none()
    {
        return None;
    }
    if let Some(service) = &request.service
        && base.service(service).is_none()
    {
        return None;
    }
    let images = request
        .images
        .iter()
        .filter(|text| match text.split_once('=') {
            Some((service, _)) => base.service(service.trim()).is_some(),
            None => true,
        })
        .cloned()
        .collect();
    Some(PlanRequest {
        images,
        ..request.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use crate::plan::plan;
    use serde_json::json;
    use std::path::Path;

    fn example() -> Config {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("workflows-examples/studysphere/promotion.yml");
        config::load(&path).expect("the example loads")
    }

    fn render(config: &Config) -> Plan {
        let request = PlanRequest {
            images: vec![
                "auth-service=studysphere.azurecr.io/studysphere/auth-service@sha256:4f1c2a9b0d3e4f1c2a9b0d3e4f1c2a9b0d3e4f1c2a9b0d3e4f1c2a9b0d3e4f1c".into(),
            ],
            ..PlanRequest::default()
        };
        plan(config, &request).expect("the example renders")
    }

    fn changed(env: &EnvironmentChanges) -> Vec<(&str, Change)> {
        env.objects
            .iter()
            .filter(|o| o.change != Change::Unchanged)
            .map(|o| (o.object.as_str(), o.change))
            .collect()
    }

    /// A config edit renames the hashed ConfigMap: it reads as that ConfigMap changed (and
    /// the Deployment that refers to it), not as one added and one removed.
    #[test]
    fn config_edits_read_as_the_configmap_changed() {
        let base = example();
        let mut head = base.clone();
        head.environments[0]
            .config
            .insert("LOG_LEVEL".into(), "trace".into());
        let changes = diff_plans(&render(&base), &render(&head));
        let names: Vec<&str> = changes.iter().map(|e| e.environment.as_str()).collect();
        assert_eq!(names, ["development", "testing", "production"]);
        let development = changed(&changes[0]);
        // Both ConfigMaps, the Deployments that refer to them, and the hook Job that does.
        assert_eq!(development.len(), 5, "{development:?}");
        assert!(development[4].0.starts_with("Job/migrate-database-"));
        for (object, change) in &development {
            assert_eq!(*change, Change::Changed, "{object}");
        }
        let config_map = &changes[0].objects[0];
        assert!(
            config_map
                .object
                .starts_with("ConfigMap/auth-service-config-")
                && config_map.object.contains(" → auth-service-config-"),
            "{}",
            config_map.object
        );
        assert!(
            config_map
                .diff
                .contains("-  LOG_LEVEL: debug\n+  LOG_LEVEL: trace\n"),
            "{}",
            config_map.diff
        );
        assert!(
            config_map
                .diff
                .starts_with("--- base/development/ConfigMap/auth-service-config-"),
            "{}",
            config_map.diff
        );
        assert_eq!((config_map.added_lines, config_map.removed_lines), (3, 3));
        for env in &changes[1..] {
            assert!(
                changed(env).is_empty(),
                "{}: {:?}",
                env.environment,
                changed(env)
            );
            assert!(env.objects.iter().all(|o| o.diff.is_empty()));
        }
    }

    #[test]
    fn environments_on_one_side_only_are_all_added_or_all_removed() {
        let base = example();
        let mut head = base.clone();
        let production = head.environments.pop().expect("three environments");
        let changes = diff_plans(&render(&base), &render(&head));
        let last = changes.last().expect("production is listed");
        assert_eq!(last.environment, "production");
        assert!(last.objects.iter().all(|o| o.change == Change::Removed));
        assert!(last.objects.iter().any(|o| o.service == HOOKS));

        let mut grown = head.clone();
        grown.environments.push(production);
        let changes = diff_plans(&render(&head), &render(&grown));
        let last = changes.last().expect("production is listed");
        assert!(last.objects.iter().all(|o| o.change == Change::Added));
        let first = &last.objects[0];
        assert!(
            first
                .diff
                .starts_with("--- /dev/null\n+++ head/production/")
        );
        assert_eq!(first.removed_lines, 0);
    }

    #[test]
    fn base_requests_drop_what_the_base_does_not_declare() {
        let base = example();
        let request = PlanRequest {
            images: vec![
                "auth-service=r/a@sha256:1".into(),
                "billing=r/b@sha256:2".into(),
            ],
            ..PlanRequest::default()
        };
        let kept = base_request(&base, &request).expect("every environment");
        assert_eq!(kept.images, ["auth-service=r/a@sha256:1"]);
        let new_env = PlanRequest {
            environment: Some("staging".into()),
            ..PlanRequest::default()
        };
        assert!(base_request(&base, &new_env).is_none());
        let new_service = PlanRequest {
            service: Some("billing".into()),
            ..PlanRequest::default()
        };
        assert!(base_request(&base, &new_service).is_none());
    }

    /// What the API server maintains goes; everything a deploy sets stays.
    #[test]
    fn noise_is_stripped_like_kubectl_diff() {
        let mut live = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "namespace": "staging",
                "uid": "1",
                "resourceVersion": "42",
                "generation": 3,
                "creationTimestamp": "2024-01-01T00:00:00Z",
                "managedFields": [{"manager": "promote-action"}],
                "labels": {"app": "web"},
                "annotations": {"deployment.kubernetes.io/revision": "3", "team": "a"},
            },
            "spec": {"replicas": 2},
            "status": {"replicas": 2},
        });
        strip_noise(&mut live);
        assert_eq!(
            live,
            json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": "web",
                    "namespace": "staging",
                    "labels": {"app": "web"},
                    "annotations": {"team": "a"},
                },
                "spec": {"replicas": 2},
            })
        );
        let mut only_revision = json!({"metadata": {"name": "x", "annotations": {"deployment.kubernetes.io/revision": "1"}}});
        strip_noise(&mut only_revision);
        assert_eq!(only_revision, json!({"metadata": {"name": "x"}}));
    }

    #[test]
    fn hashed_names_match_by_what_they_stand_for() {
        let cases = [
            (
                json!({"kind": "ConfigMap", "metadata": {"name": "web-config-ab12", "annotations": {ANNOTATION_CONFIG_HASH: "ab12"}}}),
                "ConfigMap/web-config-*",
            ),
            (
                json!({"kind": "ConfigMap", "metadata": {"name": "settings"}}),
                "ConfigMap/settings",
            ),
            (
                json!({"kind": "Secret", "metadata": {"name": "app-secrets-0a1b2c3d4e", "annotations": {ANNOTATION_SECRET_NAME: "app-secrets"}}}),
                "Secret/app-secrets-*",
            ),
            (
                json!({"kind": "Secret", "metadata": {"name": "app-secrets"}}),
                "Secret/app-secrets",
            ),
            (
                json!({"kind": "Job", "metadata": {"name": "migrate-1a2b3c4d", "labels": {"promote.studysphere.dev/hook": "migrate"}}}),
                "Job/hook migrate",
            ),
            (
                json!({"kind": "Deployment", "metadata": {"name": "web"}}),
                "Deployment/web",
            ),
        ];
        for (object, want) in cases {
            assert_eq!(identity(&object), want);
        }
    }
}
