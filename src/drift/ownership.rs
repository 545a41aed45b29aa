//! Who owns which fields of a live object, from `metadata.managedFields`: the fields written by
//! any manager other than promote-action's own are hand edits.
//!
//! `fieldsV1` is structured-merge-diff's field set: `f:name` a field, `k:{"name":"web"}` an
//! item of a keyed list, `v:"x"` an item of a set, `.` the item itself, an empty object a
//! leaf. Paths print as the API server prints them in conflicts:
//! `.spec.template.spec.containers[name="web"].image`.

use jiff::Timestamp;
use serde_json::Value;

use crate::kube::{MANAGER, ROLLBACK_MANAGER};

/// Managers whose writes are not hand edits: ours (apply and rollback), and the controller
/// manager (the Deployment controller's revision annotation, the HPA scaling `spec.replicas`).
const OWN_MANAGERS: [&str; 3] = [MANAGER, ROLLBACK_MANAGER, "kube-controller-manager"];

/// Annotation prefixes whose writes are not hand edits: promote-action's own record (the
/// verification annotations are a merge patch, whose manager is the client's user agent) and
/// `kubectl rollout restart`, which restarts pods without changing what they run.
const OWN_ANNOTATIONS: [&str; 2] = [
    "promote.studysphere.dev/",
    "kubectl.kubernetes.io/restartedAt",
];

/// One step of a field path.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Pe {
    Field(String),
    /// An item of a keyed list by its key fields (`{"name":"web"}`).
    Key(Value),
    /// An item of a set-like list by its value.
    Value(Value),
}

pub(super) type FieldPath = Vec<Pe>;

/// `Pe::Field` for each name.
pub(super) fn fields(names: &[&str]) -> FieldPath {
    names.iter().map(|n| Pe::Field((*n).to_string())).collect()
}

/// The item of a list keyed by `name`.
pub(super) fn named(name: &str) -> Pe {
    Pe::Key(serde_json::json!({ "name": name }))
}

/// One other manager's fields of an object.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Edit {
    pub manager: String,
    pub operation: String,
    pub time: Option<Timestamp>,
    pub paths: Vec<FieldPath>,
}

/// What an object's managed fields say.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct Ownership {
    /// When promote-action last applied it.
    pub promoted_at: Option<Timestamp>,
    pub edits: Vec<Edit>,
}

impl Ownership {
    /// The managers owning a field at, under or above `path`.
    pub fn owners_of(&self, path: &[Pe]) -> Vec<String> {
        let mut owners: Vec<String> = Vec::new();
        for edit in &self.edits {
            if edit.paths.iter().any(|p| overlaps(p, path)) && !owners.contains(&edit.manager) {
                owners.push(edit.manager.clone());
            }
        }
        owners
    }
}

/// The ownership of an object from its `managedFields`, or `None` when promote-action never
/// applied it (an object someone else manages cannot be hand-edited away from a promotion).
pub(super) fn ownership(managed_fields: &Value) -> Option<Ownership> {
    let entries = managed_fields.as_array()?;
    let promoted_at = entries
        .iter()
        .find(|e| e["manager"] == MANAGER && e["operation"] == "Apply")
        .map(|e| timestamp(&e["time"]))?;
    let mut edits = Vec::new();
    for e in entries {
        let manager = e["manager"].as_str().unwrap_or_default();
        if OWN_MANAGERS.contains(&manager) || e["subresource"] == "status" {
            continue;
        }
        let mut paths = Vec::new();
        leaves(&e["fieldsV1"], &mut Vec::new(), &mut paths);
        paths.retain(|p| !own_annotation(p));
        if paths.is_empty() {
            continue;
        }
        edits.push(Edit {
            manager: manager.to_string(),
            operation: e["operation"].as_str().unwrap_or_default().to_string(),
            time: timestamp(&e["time"]),
            paths,
        });
    }
    Some(Ownership { promoted_at, edits })
}

/// A managed-fields `time` (RFC 3339, as the API server writes it); one that does not parse
/// is treated as unknown rather than failing the comparison.
fn timestamp(time: &Value) -> Option<Timestamp> {
    time.as_str()?.parse().ok()
}

fn leaves(node: &Value, prefix: &mut FieldPath, out: &mut Vec<FieldPath>) {
    let Some(map) = node.as_object() else {
        return;
    };
    if map.is_empty() || map.contains_key(".") {
        out.push(prefix.clone());
    }
    for (key, child) in map {
        let pe = if let Some(name) = key.strip_prefix("f:") {
            Pe::Field(name.to_string())
        } else if let Some(json) = key.strip_prefix("k:") {
            Pe::Key(serde_json::from_str(json).unwrap_or_else(|_| Value::from(json)))
        } else if let Some(json) = key.strip_prefix("v:") {
            Pe::Value(serde_json::from_str(json).unwrap_or_else(|_| Value::from(json)))
        } else {
            continue;
        };
        prefix.push(pe);
        leaves(child, prefix, out);
        prefix.pop();
    }
}

fn own_annotation(path: &[Pe]) -> bool {
    let annotation = match path {
        [Pe::Field(m), Pe::Field(a), Pe::Field(key), ..]
            if m == "metadata" && a == "annotations" =>
        {
            key
        }
        [
            Pe::Field(s),
            Pe::Field(t),
            Pe::Field(m),
            Pe::Field(a),
            Pe::Field(key),
            ..,
        ] if s == "spec" && t == "template" && m == "metadata" && a == "annotations" => key,
        _ => return false,
    };
    OWN_ANNOTATIONS.iter().any(|p| annotation.starts_with(p))
}

/// Whether one path is a prefix of the other: a field and the object holding it overlap.
pub(super) fn overlaps(a: &[Pe], b: &[Pe]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

/// `.spec.template.spec.containers[name="web"].image`.
pub(super) fn path_text(path: &[Pe]) -> String {
    let mut out = String::new();
    for pe in path {
        match pe {
            Pe::Field(name) => {
                out.push('.');
                out.push_str(name);
            }
            Pe::Key(key) => {
                let parts: Vec<String> = key
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                    .unwrap_or_else(|| vec![key.to_string()]);
                out.push_str(&format!("[{}]", parts.join(",")));
            }
            Pe::Value(v) => out.push_str(&format!("[={v}]")),
        }
    }
    if out.is_empty() { ".".to_string() } else { out }
}

/// `paths` as text, sorted, the way a person would name what was changed: an item of a list owned whole
/// (an env var, a container) without its fields, and no list or object that only holds what
/// is listed deeper.
pub(super) fn paths_text(paths: &[FieldPath]) -> Vec<String> {
    let is_item = |p: &FieldPath| matches!(p.last(), Some(Pe::Key(_) | Pe::Value(_)));
    let strictly_inside = |p: &FieldPath, q: &FieldPath| q.len() < p.len() && p[..q.len()] == q[..];
    let mut out: Vec<String> = Vec::new();
    for p in paths {
        let in_listed_item = paths.iter().any(|q| is_item(q) && strictly_inside(p, q));
        let holds_deeper = !is_item(p) && paths.iter().any(|q| strictly_inside(q, p));
        let text = path_text(p);
        if !in_listed_item && !holds_deeper && !out.contains(&text) {
            out.push(text);
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn managed(yaml: &str) -> Value {
        serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("fixture: {e}\n{yaml}"))
    }

    const APPLIED: &str = "- manager: promote-action
  operation: Apply
  time: '2025-03-14T10:00:00Z'
  fieldsV1:
    f:spec:
      f:replicas: {}
      f:template:
        f:spec:
          f:containers:
            k:{\"name\":\"web\"}:
              .: {}
              f:image: {}
              f:name: {}
";

    #[test]
    fn other_managers_fields_are_edits_and_ours_are_not() {
        // (case, more managedFields entries, the edits: manager and fields)
        type Case = (
            &'static str,
            &'static str,
            &'static [(&'static str, &'static [&'static str])],
        );
        let cases: &[Case] = &[
            ("only promote-action", "", &[]),
            (
                "kubectl edit of replicas",
                "- {manager: kubectl-edit, operation: Update, time: '2025-03-14T11:00:00Z', fieldsV1: {f:spec: {f:replicas: {}}}}",
                &[("kubectl-edit", &[".spec.replicas"])],
            ),
            (
                "kubectl set env: the item, not its name and value",
                "- manager: kubectl-set
  operation: Update
  time: '2025-03-14T11:00:00Z'
  fieldsV1:
    f:spec:
      f:template:
        f:spec:
          f:containers:
            k:{\"name\":\"web\"}:
              f:env:
                .: {}
                k:{\"name\":\"DEBUG\"}: {.: {}, f:name: {}, f:value: {}}",
                &[(
                    "kubectl-set",
                    &[".spec.template.spec.containers[name=\"web\"].env[name=\"DEBUG\"]"],
                )],
            ),
            (
                "status, the controller manager, our rollback and our annotations are not edits",
                "- {manager: kube-controller-manager, operation: Update, subresource: status, fieldsV1: {f:status: {f:replicas: {}}}}
- {manager: kube-controller-manager, operation: Update, fieldsV1: {f:metadata: {f:annotations: {f:deployment.kubernetes.io/revision: {}}}}}
- {manager: promote-action-rollback, operation: Update, fieldsV1: {f:spec: {f:template: {}}}}
- {manager: '', operation: Update, fieldsV1: {f:metadata: {f:annotations: {f:promote.studysphere.dev/verified-digest: {}}}}}
- {manager: kubectl-rollout, operation: Update, fieldsV1: {f:spec: {f:template: {f:metadata: {f:annotations: {f:kubectl.kubernetes.io/restartedAt: {}}}}}}}
- {manager: someone, operation: Update, subresource: status, fieldsV1: {f:status: {f:x: {}}}}",
                &[],
            ),
            (
                "another applier and a label",
                "- {manager: helm, operation: Apply, fieldsV1: {f:metadata: {f:labels: {f:team: {}}}}}",
                &[("helm", &[".metadata.labels.team"])],
            ),
        ];
        for (name, extra, want) in cases {
            let o = ownership(&managed(&format!("{APPLIED}{extra}"))).expect(name);
            assert_eq!(
                o.promoted_at.map(|t| t.to_string()),
                Some("2025-03-14T10:00:00Z".to_string()),
                "{name}"
            );
            let got: Vec<(String, Vec<String>)> = o
                .edits
                .iter()
                .map(|e| (e.manager.clone(), paths_text(&e.paths)))
                .collect();
            let want: Vec<(String, Vec<String>)> = want
                .iter()
                .map(|(m, p)| (m.to_string(), p.iter().map(|s| s.to_string()).collect()))
                .collect();
            assert_eq!(got, want, "case: {name}");
        }
    }

    #[test]
    fn objects_promote_action_never_applied_have_no_ownership() {
        let created = managed(
            "- {manager: kubectl-create, operation: Update, fieldsV1: {f:data: {f:PASSWORD: {}}}}",
        );
        assert_eq!(ownership(&created), None);
        assert_eq!(ownership(&Value::Null), None);
    }

    #[test]
    fn owners_are_found_above_at_and_below_a_path() {
        let edit = "- manager: kubectl-edit
  operation: Update
  fieldsV1:
    f:spec:
      f:template:
        f:spec:
          f:containers:
            k:{\"name\":\"web\"}:
              f:resources: {f:limits: {f:cpu: {}}}
";
        let o = ownership(&managed(&format!("{APPLIED}{edit}"))).unwrap();
        let container = || {
            let mut p = fields(&["spec", "template", "spec", "containers"]);
            p.push(named("web"));
            p
        };
        let mut limits = container();
        limits.extend(fields(&["resources", "limits"]));
        let mut cpu = limits.clone();
        cpu.push(Pe::Field("cpu".into()));
        let mut memory = limits.clone();
        memory.push(Pe::Field("memory".into()));
        let mut image = container();
        image.push(Pe::Field("image".into()));
        assert_eq!(o.owners_of(&cpu), ["kubectl-edit"]);
        assert_eq!(o.owners_of(&limits), ["kubectl-edit"], "below");
        assert_eq!(o.owners_of(&container()), ["kubectl-edit"], "below");
        assert!(o.owners_of(&memory).is_empty());
        assert!(o.owners_of(&image).is_empty());
        assert_eq!(
            path_text(&cpu),
            ".spec.template.spec.containers[name=\"web\"].resources.limits.cpu"
        );
    }
}
