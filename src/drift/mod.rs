//! Drift: every environment side by side, comparing what promotion.yml renders for it with
//! what its cluster runs, and telling apart the differences promotion.yml declares from those it
//! does not. Pure: rendered objects and live namespaces in (see `kube::live`), a
//! [`DriftReport`] out; reading clusters and rendering the report are left to `pipeline` and
//! `report`.
//!
//! What is compared, per service workload: each container's image digest, its effective
//! environment variables (literal, from ConfigMaps, and Secret keys shown only as the keyed hash
//! `kube::live` made of each value), the feature flags, resources, and replicas or the HPA. A
//! row differs when the environments' live values differ; it is
//! - [`Class::Declared`] when every environment runs what promotion.yml renders for it (the
//!   environments are meant to differ, e.g. replicas per environment);
//! - [`Class::UndeclaredBetweenEnvironments`] when some environment runs something else;
//! - [`Class::HandEdit`] when, in some environment, a field of the row is owned in
//!   `metadata.managedFields` by a manager other than promote-action's own.
//!
//! Hand edits are also listed per object with the manager's name, including fields no row
//! shows (a label added by `kubectl label`).

mod compare;
mod ownership;
mod state;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use crate::config::Environment;
use crate::kube::{LiveNamespace, pod_references, rename_secret_references};

pub use compare::compare;

/// Points promotion.yml's references to its `fromEnv` Secrets (`app-secrets`) at the versions
/// the live workloads read (`app-secrets-<hash>`, see `kube::point_at_versions`), so both sides
/// name the same object and a new version is not a difference in itself. A Secret no live
/// workload reads a version of is left as declared.
pub fn fold_secret_versions(desired: &mut [Value], live: &LiveNamespace) {
    let read: BTreeSet<String> = live
        .objects
        .iter()
        .flat_map(pod_references)
        .filter(|(kind, _)| *kind == "Secret")
        .map(|(_, name)| name)
        .collect();
    let versions: BTreeMap<String, String> = live
        .secrets
        .iter()
        .filter(|s| read.contains(&s.name))
        .filter_map(|s| Some((s.declared.clone()?, s.name.clone())))
        .collect();
    rename_secret_references(desired, &versions);
}

/// One environment's two sides.
#[derive(Debug, Clone, Copy)]
pub struct EnvironmentInput<'a> {
    pub environment: &'a Environment,
    /// What promotion.yml renders for the environment: every service's objects, as `plan`
    /// produces them (rendered Secrets are ignored: their values are never read).
    pub desired: &'a [Value],
    pub live: Live<'a>,
}

/// The cluster's side of an environment.
#[derive(Debug, Clone, Copy)]
pub enum Live<'a> {
    Read(&'a LiveNamespace),
    /// The cluster could not be read; why, in one line without secrets.
    Unreadable(&'a str),
}

/// Every service in every environment.
#[derive(Debug, Clone, Serialize)]
pub struct DriftReport {
    /// The columns, in promotion order.
    pub environments: Vec<Column>,
    pub services: Vec<ServiceDrift>,
}

impl DriftReport {
    /// Whether anything differs that promotion.yml does not declare: a row that differs
    /// between environments against promotion.yml, or any hand edit. Unreadable environments
    /// are not drift (see [`DriftReport::unreadable`]).
    pub fn undeclared(&self) -> bool {
        self.services.iter().any(|s| {
            !s.hand_edits.is_empty()
                || s.rows.iter().any(|r| {
                    matches!(
                        r.class,
                        Some(Class::UndeclaredBetweenEnvironments | Class::HandEdit)
                    )
                })
        })
    }

    /// Rows of `class`, over all services.
    pub fn count(&self, class: Class) -> usize {
        self.services
            .iter()
            .flat_map(|s| &s.rows)
            .filter(|r| r.class == Some(class))
            .count()
    }

    /// The environments whose cluster could not be read.
    pub fn unreadable(&self) -> impl Iterator<Item = &Column> {
        self.environments.iter().filter(|c| c.error.is_some())
    }
}

/// One environment, a column of every table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Column {
    pub environment: String,
    pub namespace: String,
    /// Why its cluster could not be read.
    pub error: Option<String>,
}

/// One service across the environments.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceDrift {
    pub service: String,
    /// Readable environments where none of the service's workloads exists.
    pub not_deployed: Vec<String>,
    /// Per workload, in a fixed order: images, replicas, resources, flags, environment.
    pub rows: Vec<Row>,
    pub hand_edits: Vec<HandEdit>,
    /// Workloads that run under another name than promotion.yml renders: in a blue-green
    /// environment, the colour the Service selects.
    pub runs_as: Vec<RunsAs>,
}

/// `deployment/web` running in `production` as `deployment/web-green`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunsAs {
    pub environment: String,
    /// As promotion.yml renders it (the row's `workload`).
    pub workload: String,
    /// The live object compared.
    pub object: String,
}

/// One thing compared, with a cell per environment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// `deployment/web`.
    pub workload: String,
    pub aspect: Aspect,
    /// `None`: the same in every environment that could be compared.
    pub class: Option<Class>,
    /// One per environment, in column order.
    pub cells: Vec<Cell>,
}

/// What a row compares.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Aspect {
    /// The container's image: its digest when pinned, else the reference.
    Image { container: String },
    /// The fixed count, or the HPA's range and targets.
    Replicas,
    /// `requests.cpu`, `limits.memory` …
    Resource {
        container: String,
        list: String,
        name: String,
    },
    /// A flag of `featureFlags`, as the service container sees it.
    FeatureFlag { name: String },
    /// An environment variable as the container sees it.
    Env { container: String, name: String },
    /// An `envFrom` source that does not exist.
    MissingSource { container: String, source: String },
}

impl Aspect {
    /// How a table names the row: `image (web)`, `env LOG_LEVEL (web)`, `flag newDashboard`.
    pub fn label(&self) -> String {
        match self {
            Aspect::Image { container } => format!("image ({container})"),
            Aspect::Replicas => "replicas".to_string(),
            Aspect::Resource {
                container,
                list,
                name,
            } => format!("{list}.{name} ({container})"),
            Aspect::FeatureFlag { name } => format!("flag {name}"),
            Aspect::Env { container, name } => format!("env {name} ({container})"),
            Aspect::MissingSource { container, source } => {
                format!("envFrom {source} ({container})")
            }
        }
    }
}

/// How a row differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// Each environment runs what promotion.yml renders for it: expected, shown as info.
    Declared,
    /// Some environment runs something promotion.yml does not render for it.
    UndeclaredBetweenEnvironments,
    /// Some environment's value is owned by another field manager.
    HandEdit,
}

impl Class {
    pub fn word(self) -> &'static str {
        match self {
            Class::Declared => "declared",
            Class::UndeclaredBetweenEnvironments => "undeclared-between-environments",
            Class::HandEdit => "hand-edit",
        }
    }
}

/// One environment's value of a row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cell {
    /// What runs; `None` when the environment could not be read or the workload is not there.
    pub live: Option<Shown>,
    /// What promotion.yml renders for it, when that is known (a digest is what was last
    /// promoted; a Secret's value is never known, only whether the key is declared).
    pub declared: Option<Shown>,
    /// Field managers other than promote-action that own the value's fields.
    pub edited_by: Vec<String>,
}

/// A value as a report may show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "kebab-case")]
pub enum Shown {
    /// Not set.
    Absent,
    Text(String),
    /// A Secret's value, as its keyed hash.
    Hashed(String),
    /// Refers to something that is not there (`configmap x not found`).
    Unresolved(String),
}

/// Fields of one live object owned by another manager.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HandEdit {
    pub environment: String,
    /// `deployment/web`.
    pub object: String,
    pub manager: String,
    /// `Update` (kubectl edit, patch, scale …) or `Apply` (someone else's server-side apply).
    pub operation: String,
    /// When the manager last wrote the object (RFC 3339).
    pub time: Option<jiff::Timestamp>,
    /// Whether that was after promote-action's last apply of the object. Earlier edits are
    /// still listed: a field promote-action does not set survives every promotion.
    pub since_promotion: bool,
    /// `.spec.replicas`, `.spec.template.spec.containers[name="web"].env[name="DEBUG"]`.
    pub fields: Vec<String>,
}
