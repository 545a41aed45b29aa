//! Reads a service's base manifests: plain Kubernetes YAML files in one directory, any number of
//! documents each. Checks what rendering relies on, so `plan` and `deploy` never meet a surprise:
//! every document is an object with apiVersion, kind and name; nothing cluster-scoped (the
//! environment owns its namespace, not the cluster); the service's Deployment is there with its
//! container and a selector that matches its pod template.

use std::path::{Path, PathBuf};

use super::diagnostics::Diagnostics;
use super::model::{Manifest, Service};
use super::yaml::{self, Node, Pos, Value};

/// Kinds a service's manifests may not carry: they are cluster-wide, while a promotion applies
/// one namespace per environment.
const CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "Node",
    "PersistentVolume",
    "StorageClass",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PriorityClass",
    "IngressClass",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "APIService",
];

/// Loads the manifests of `service` from `base_dir/service.manifests_dir`, reporting problems to `d`.
pub fn load_service_manifests(
    d: &mut Diagnostics,
    base_dir: &Path,
    service: &Service,
    field: &str,
) -> Vec<Manifest> {
    // `base_dir` is the directory of promotion.yml as the user named it, so this path is both
    // what is read and what errors show.
    let dir = base_dir.join(&service.manifests_dir);
    let shown = dir.clone();
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
            })
            .collect(),
        Err(e) => {
            let why = if e.kind() == std::io::ErrorKind::NotFound {
                "does not exist".to_string()
            } else if dir.is_file() {
                "is a file, expected a directory of Kubernetes YAML".to_string()
            } else {
                format!("cannot be read: {e}")
            };
            d.error(
                service.pos_of("manifests"),
                &format!("{field}.manifests"),
                format!("directory {} {why}", shown.display()),
            );
            return Vec::new();
        }
    };
    files.sort();
    if files.is_empty() {
        d.error(
            service.pos_of("manifests"),
            &format!("{field}.manifests"),
            format!("directory {} has no .yaml or .yml files", shown.display()),
        );
        return Vec::new();
    }

    let mut manifests = Vec::new();
    let mut deployment: Option<(PathBuf, Node)> = None;
    for path in files {
        let file = shown.join(path.file_name().unwrap_or_default());
        let source = match std::fs::read_to_string(&path) {
            Ok(s) => s,
            Err(e) => {
                d.error_in(
                    &file,
                    Pos { line: 1, col: 1 },
                    "",
                    format!("cannot read: {e}"),
                );
                continue;
            }
        };
        let documents = match yaml::parse_documents(&source) {
            Ok(docs) => docs,
            Err(e) => {
                d.error_in(&file, e.pos, "", format!("invalid YAML: {}", e.message));
                continue;
            }
        };
        for doc in documents.into_iter().flatten() {
            if doc.is_null() {
                continue;
            }
            if !check_object(d, &file, &doc) {
                continue;
            }
            let name_pos = doc
                .get("metadata")
                .and_then(|m| m.get("name"))
                .map_or(doc.pos, |n| n.pos);
            let manifest = Manifest {
                file: file.clone(),
                line: doc.pos.line,
                name_pos,
                object: doc.to_json(),
            };
            if let Some(earlier) = manifests
                .iter()
                .find(|m: &&Manifest| m.kind() == manifest.kind() && m.name() == manifest.name())
            {
                d.error_in(
                    &file,
                    name_pos,
                    "metadata.name",
                    format!(
                        "{} `{}` is defined twice (also at {}:{})",
                        manifest.kind(),
                        manifest.name(),
                        earlier.file.display(),
                        earlier.name_pos.line
                    ),
                );
                continue;
            }
            if manifest.kind() == "Deployment" && manifest.name() == service.deployment {
                deployment = Some((file.clone(), doc.clone()));
            }
            manifests.push(manifest);
        }
    }

    match deployment {
        Some((file, doc)) => check_deployment(d, &file, &doc, service),
        None if !manifests.is_empty() => d.error(
            service.pos_of("manifests"),
            &format!("{field}.manifests"),
            format!(
                "no Deployment named `{}` in {} (set `deployment:` on the service if it has another name)",
                service.deployment,
                shown.display()
            ),
        ),
        None => {}
    }
    manifests
}

fn check_object(d: &mut Diagnostics, file: &Path, doc: &Node) -> bool {
    if !matches!(doc.value, Value::Map(_)) {
        d.error_in(
            file,
            doc.pos,
            "",
            format!("expected a Kubernetes object, found {}", doc.describe()),
        );
        return false;
    }
    let mut ok = true;
    for key in ["apiVersion", "kind"] {
        if doc
            .get(key)
            .and_then(Node::scalar)
            .is_none_or(str::is_empty)
        {
            d.error_in(file, doc.pos, key, format!("missing `{key}`"));
            ok = false;
        }
    }
    let name = doc
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Node::scalar);
    match name {
        Some(n) if is_dns_subdomain(n) => {}
        Some(n) => {
            let pos = doc
                .get("metadata")
                .and_then(|m| m.get("name"))
                .map_or(doc.pos, |n| n.pos);
            d.error_in(file, pos, "metadata.name", format!("{n:?} is not a valid Kubernetes name (lower-case letters, digits, `-` and `.`, at most 253)"));
            ok = false;
        }
        None => {
            d.error_in(file, doc.pos, "metadata.name", "missing `metadata.name`");
            ok = false;
        }
    }
    if let Some(kind) = doc.get("kind").and_then(Node::scalar) {
        let kind_pos = doc.get("kind").map_or(doc.pos, |n| n.pos);
        if kind == "List" || kind.ends_with("List") {
            d.error_in(
                file,
                kind_pos,
                "kind",
                format!("`{kind}` is not supported: write each object as its own YAML document"),
            );
            ok = false;
        } else if CLUSTER_SCOPED.contains(&kind) {
            let pos = doc.get("kind").map_or(doc.pos, |n| n.pos);
            d.error_in(
                file,
                pos,
                "kind",
                format!("{kind} is cluster-scoped; a service's manifests hold only namespaced objects (the environment sets the namespace)"),
            );
            ok = false;
        }
    }
    ok
}

fn check_deployment(d: &mut Diagnostics, file: &Path, doc: &Node, service: &Service) {
    let spec = doc.get("spec");
    let template_spec = spec
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("spec"));
    let containers = template_spec.and_then(|s| s.get("containers"));
    match containers.map(|c| &c.value) {
        Some(Value::Seq(items)) => {
            let names: Vec<&str> = items
                .iter()
                .filter_map(|c| c.get("name").and_then(Node::scalar))
                .collect();
            if !names.contains(&service.container.as_str()) {
                d.error_in(
                    file,
                    containers.map_or(doc.pos, |c| c.pos),
                    "spec.template.spec.containers",
                    format!(
                        "Deployment `{}` has no container named `{}` (found: {}); set `container:` on the service",
                        service.deployment,
                        service.container,
                        names.join(", ")
                    ),
                );
            }
        }
        _ => d.error_in(
            file,
            doc.pos,
            "spec.template.spec.containers",
            format!("Deployment `{}` has no containers list", service.deployment),
        ),
    }
    let match_labels = spec
        .and_then(|s| s.get("selector"))
        .and_then(|s| s.get("matchLabels"));
    let template_labels = spec
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"));
    match (match_labels, template_labels) {
        (
            Some(Node {
                value: Value::Map(selector),
                pos,
            }),
            labels,
        ) => {
            for (k, v) in selector {
                let key = k.scalar().unwrap_or_default();
                let found = labels.and_then(|l| l.get(key)).and_then(Node::scalar);
                if found != v.scalar() {
                    d.error_in(
                        file,
                        *pos,
                        "spec.selector.matchLabels",
                        format!(
                            "selector {key}={} does not match the pod template's labels",
                            v.scalar().unwrap_or_default()
                        ),
                    );
                }
            }
        }
        _ => d.error_in(
            file,
            doc.pos,
            "spec.selector.matchLabels",
            format!(
                "Deployment `{}` needs spec.selector.matchLabels (apps/v1 requires a selector)",
                service.deployment
            ),
        ),
    }
}

/// RFC 1123 subdomain, the rule for most Kubernetes object names.
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// RFC 1123 label: namespaces, Service names.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}
