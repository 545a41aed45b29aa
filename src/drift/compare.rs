//! The comparison: each service's rows on both sides of every environment, put side by side and
//! classified, and the hand edits of the objects they come from.

use std::collections::BTreeMap;

use serde_json::Value;

use super::ownership::{self, Ownership};
use super::state::{self, Images, Lookup, Rows, SecretView};
use super::{Aspect, Cell, Class, Column, DriftReport, EnvironmentInput, HandEdit, Live, Row};
use super::{RunsAs, ServiceDrift, Shown};
use crate::config::Service;
use crate::kube::{ANNOTATION_IMAGE, LABEL_SERVICE};
use crate::kube::{LiveNamespace, object_ref};

/// Compares `services` across `environments` (in promotion order).
pub fn compare(services: &[Service], environments: &[EnvironmentInput<'_>]) -> DriftReport {
    let columns = environments
        .iter()
        .map(|e| Column {
            environment: e.environment.name.clone(),
            namespace: e.environment.namespace.clone(),
            error: match e.live {
                Live::Read(_) => None,
                Live::Unreadable(why) => Some(why.to_string()),
            },
        })
        .collect();
    DriftReport {
        environments: columns,
        services: services
            .iter()
            .map(|s| compare_service(s, environments))
            .collect(),
    }
}

/// One environment's view of one workload.
struct Side {
    /// The live object it runs as (`deployment/web-green` in a blue-green environment).
    object: Option<String>,
    desired: Rows,
    /// `None`: not running there.
    live: Option<Rows>,
    /// The other managers owning each live row's fields.
    edited: BTreeMap<Aspect, Vec<String>>,
}

fn compare_service(service: &Service, environments: &[EnvironmentInput<'_>]) -> ServiceDrift {
    // The service's workloads, in the order promotion.yml renders them in any environment.
    let mut workloads: Vec<(String, String)> = Vec::new();
    for env in environments {
        for o in workloads_of(env.desired, &service.name) {
            let key = (kind(o).to_string(), name(o).to_string());
            if !workloads.contains(&key) {
                workloads.push(key);
            }
        }
    }
    let mut drift = ServiceDrift {
        service: service.name.clone(),
        not_deployed: Vec::new(),
        rows: Vec::new(),
        hand_edits: Vec::new(),
        runs_as: Vec::new(),
    };
    // Per environment (`None`: unreadable), per workload.
    let mut sides: Vec<Option<Vec<Side>>> = Vec::new();
    for env in environments {
        let Live::Read(live) = env.live else {
            sides.push(None);
            continue;
        };
        let owners = owners(live);
        let mut in_scope: Vec<String> = Vec::new();
        let mut runs_as: Vec<RunsAs> = Vec::new();
        let per_workload: Vec<Side> = workloads
            .iter()
            .map(|(kind, name)| {
                let side = side(service, env, live, &owners, kind, name);
                if let (Some(rows), Some(object)) = (&side.live, &side.object) {
                    let workload = format!("{}/{name}", kind.to_lowercase());
                    if *object != workload {
                        runs_as.push(RunsAs {
                            environment: env.environment.name.clone(),
                            workload,
                            object: object.clone(),
                        });
                    }
                    let objects = std::iter::once(object.clone()).chain(
                        rows.values()
                            .flat_map(|r| &r.sources)
                            .map(|s| s.object.clone()),
                    );
                    for object in objects {
                        if !in_scope.contains(&object) {
                            in_scope.push(object);
                        }
                    }
                }
                side
            })
            .collect();
        drift.runs_as.extend(runs_as);
        if per_workload.iter().all(|s| s.live.is_none()) {
            drift.not_deployed.push(env.environment.name.clone());
        }
        for object in &in_scope {
            if let Some(owned) = owners.get(object) {
                drift
                    .hand_edits
                    .extend(hand_edits(&env.environment.name, object, owned));
            }
        }
        sides.push(Some(per_workload));
    }

    for (w, (kind, name)) in workloads.iter().enumerate() {
        let mut aspects: Vec<&Aspect> = Vec::new();
        for side in sides.iter().flatten().map(|s| &s[w]) {
            let live = side.live.iter().flat_map(|l| l.keys());
            for a in side.desired.keys().chain(live) {
                if !aspects.contains(&a) {
                    aspects.push(a);
                }
            }
        }
        aspects.sort();
        for aspect in aspects {
            let cells: Vec<Cell> = sides
                .iter()
                .map(|side| cell(side.as_ref().map(|s| &s[w]), aspect))
                .collect();
            drift.rows.push(Row {
                workload: format!("{}/{name}", kind.to_lowercase()),
                aspect: aspect.clone(),
                class: classify(&cells),
                cells,
            });
        }
    }
    drift
}

/// Both sides of the workload `kind/name` in one environment.
fn side(
    service: &Service,
    env: &EnvironmentInput<'_>,
    live: &LiveNamespace,
    owners: &BTreeMap<String, Ownership>,
    kind: &str,
    name: &str,
) -> Side {
    let desired_object = workloads_of(env.desired, &service.name)
        .find(|o| self::kind(o) == kind && self::name(o) == name);
    // In a blue-green environment the rendered `web` runs as the colour its Service selects;
    // that is what serves, so that is what is compared (the other colour is a rollback target).
    let live_object = if kind == "Deployment" && name == service.deployment {
        let fronting: Vec<&str> = service
            .fronting_services()
            .iter()
            .map(|m| m.name())
            .collect();
        live.serving(name, &fronting)
    } else {
        live.get(kind, name)
    };
    let main = state::Service {
        container: if name == service.deployment {
            service.container.as_str()
        } else {
            ""
        },
    };
    let desired = desired_object.map_or_else(Rows::new, |o| {
        let promoted =
            live_object.and_then(|l| l["metadata"]["annotations"][ANNOTATION_IMAGE].as_str());
        let images = Images::Rendered {
            promoted,
            service_container: main.container,
        };
        state::rows(o, main, &desired_lookup(env, live), images)
    });
    let live_rows =
        live_object.map(|o| state::rows(o, main, &live_lookup(live), Images::AsRunning));
    let mut edited = BTreeMap::new();
    for (aspect, observed) in live_rows.iter().flatten() {
        let mut managers: Vec<String> = Vec::new();
        for source in &observed.sources {
            let found = owners
                .get(&source.object)
                .map(|o| o.owners_of(&source.path));
            for m in found.unwrap_or_default() {
                if !managers.contains(&m) {
                    managers.push(m);
                }
            }
        }
        if !managers.is_empty() {
            edited.insert(aspect.clone(), managers);
        }
    }
    Side {
        object: live_object.map(object_ref),
        desired,
        live: live_rows,
        edited,
    }
}

/// One environment's cell of a row: empty when the environment is unreadable or the workload
/// does not run there; a row one side lacks is `Absent` on that side.
fn cell(side: Option<&Side>, aspect: &Aspect) -> Cell {
    let Some(Side {
        desired,
        live: Some(live),
        edited,
        ..
    }) = side
    else {
        return Cell {
            live: None,
            declared: None,
            edited_by: Vec::new(),
        };
    };
    Cell {
        live: Some(
            live.get(aspect)
                .and_then(|o| o.value.clone())
                .unwrap_or(Shown::Absent),
        ),
        declared: match desired.get(aspect) {
            Some(d) => d.value.clone(),
            None => Some(Shown::Absent),
        },
        edited_by: edited.get(aspect).cloned().unwrap_or_default(),
    }
}

/// A row's class from its cells (environments without a value take no part).
pub(super) fn classify(cells: &[Cell]) -> Option<Class> {
    let compared: Vec<&Cell> = cells.iter().filter(|c| c.live.is_some()).collect();
    if compared.iter().any(|c| !c.edited_by.is_empty()) {
        return Some(Class::HandEdit);
    }
    let first = compared.first()?;
    if compared.iter().all(|c| c.live == first.live) {
        return None;
    }
    let as_declared = compared
        .iter()
        .all(|c| c.declared.is_none() || c.declared == c.live);
    Some(if as_declared {
        Class::Declared
    } else {
        Class::UndeclaredBetweenEnvironments
    })
}

fn kind(o: &Value) -> &str {
    o["kind"].as_str().unwrap_or_default()
}

fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or_default()
}

/// The rendered Deployments and StatefulSets of `service` (render labels every object with it).
fn workloads_of<'a>(objects: &'a [Value], service: &'a str) -> impl Iterator<Item = &'a Value> {
    objects.iter().filter(move |o| {
        matches!(kind(o), "Deployment" | "StatefulSet")
            && o["metadata"]["labels"][LABEL_SERVICE] == service
    })
}

/// promotion.yml's side: its ConfigMaps and HPAs; Secrets it creates (`fromEnv`) by their
/// declared keys; what it only refers to, as it is in the cluster.
fn desired_lookup<'a>(env: &EnvironmentInput<'a>, live: &'a LiveNamespace) -> Lookup<'a> {
    let of_kind = |k: &'static str| env.desired.iter().filter(move |o| kind(o) == k);
    let mut config_maps: Vec<&Value> = of_kind("ConfigMap").collect();
    config_maps.extend(live.objects.iter().filter(|o| kind(o) == "ConfigMap"));
    let mut secrets: Vec<SecretView<'a>> = env
        .environment
        .secrets
        .iter()
        .filter(|s| s.is_managed())
        .map(|s| SecretView::Declared {
            name: &s.name,
            keys: &s.from_env,
            live: live.secret(&s.name),
        })
        .collect();
    secrets.extend(live.secrets.iter().map(SecretView::Live));
    Lookup {
        config_maps,
        secrets,
        autoscalers: of_kind("HorizontalPodAutoscaler").collect(),
    }
}

fn live_lookup(live: &LiveNamespace) -> Lookup<'_> {
    let of_kind = |k: &'static str| live.objects.iter().filter(move |o| kind(o) == k);
    Lookup {
        config_maps: of_kind("ConfigMap").collect(),
        secrets: live.secrets.iter().map(SecretView::Live).collect(),
        autoscalers: of_kind("HorizontalPodAutoscaler").collect(),
    }
}

/// The ownership of every object promote-action applied in the namespace, by `kind/name`.
fn owners(live: &LiveNamespace) -> BTreeMap<String, Ownership> {
    let mut out = BTreeMap::new();
    for o in &live.objects {
        if let Some(owned) = ownership::ownership(&o["metadata"]["managedFields"]) {
            out.insert(object_ref(o), owned);
        }
    }
    for s in &live.secrets {
        if let Some(owned) = ownership::ownership(&s.managed_fields) {
            out.insert(format!("secret/{}", s.name), owned);
        }
    }
    out
}

fn hand_edits(environment: &str, object: &str, owned: &Ownership) -> Vec<HandEdit> {
    owned
        .edits
        .iter()
        .map(|e| HandEdit {
            environment: environment.to_string(),
            object: object.to_string(),
            manager: e.manager.clone(),
            operation: e.operation.clone(),
            time: e.time,
            since_promotion: match (e.time, owned.promoted_at) {
                (Some(at), Some(promoted)) => at >= promoted,
                _ => true,
            },
            fields: ownership::paths_text(&e.paths),
        })
        .collect()
}
