//! An environment's own fields: where it runs, who approves, how big it is, what it is
//! configured with, how it rolls out and its hooks. Its checks, secrets and delivery strategy
//! have their own files.

use std::collections::BTreeMap;
use std::time::Duration;

use super::analysis::{check_for_fits_windows, decode_analysis};
use super::checks::{decode_checks, decode_slo};
use super::read::*;
use super::secrets::decode_secrets;
use super::strategy::decode_strategy;
use crate::config::diagnostics::{Diagnostics, join};
use crate::config::model::*;
use crate::config::yaml::{Node, Value};

const ENVIRONMENT: &[&str] = &[
    "name",
    "namespace",
    "url",
    "requires",
    "cluster",
    "approval",
    "replicas",
    "resources",
    "autoscaling",
    "config",
    "featureFlags",
    "secrets",
    "rollout",
    "strategy",
    "blueGreen",
    "canary",
    "analysis",
    "checks",
    "slo",
    "onFailure",
    "hooks",
];

pub(super) fn decode_environment(
    d: &mut Diagnostics,
    node: &Node,
    path: &str,
) -> Option<Environment> {
    let f = d.fields(node, path, ENVIRONMENT)?;
    let name = req_string(d, &f, "name", "the environment name");
    let namespace = opt(d, &f, "namespace", string);
    let url = opt(d, &f, "url", string);
    let requires = opt(d, &f, "requires", string);
    let cluster = opt(d, &f, "cluster", decode_cluster).unwrap_or_default();
    let approval = opt(d, &f, "approval", decode_approval).unwrap_or_default();
    let replicas = opt(d, &f, "replicas", decode_replicas).unwrap_or(Replicas { min: 1, max: 1 });
    let resources = opt(d, &f, "resources", decode_resources).unwrap_or_default();
    let autoscaling = opt(d, &f, "autoscaling", decode_autoscaling);
    let config = opt(d, &f, "config", string_map).unwrap_or_default();
    let feature_flags = opt(d, &f, "featureFlags", decode_flags).unwrap_or_default();
    let secrets = opt(d, &f, "secrets", decode_secrets).unwrap_or_default();
    let rollout = opt(d, &f, "rollout", decode_rollout).unwrap_or_default();
    let strategy = decode_strategy(d, &f);
    let analysis = opt(d, &f, "analysis", decode_analysis);
    check_for_fits_windows(d, &f, &strategy, analysis.as_ref());
    let checks = opt(d, &f, "checks", decode_checks).unwrap_or_default();
    let slo = opt(d, &f, "slo", decode_slo).unwrap_or_default();
    let on_failure = opt(d, &f, "onFailure", |d, n, p| {
        one_of(
            d,
            n,
            p,
            &[("rollback", OnFailure::Rollback), ("keep", OnFailure::Keep)],
        )
    })
    .unwrap_or_default();
    let hooks = opt(d, &f, "hooks", decode_hooks).unwrap_or_default();
    if let (Some(a), Some(n)) = (&autoscaling, f.get("replicas"))
        && (replicas.min < a.min_replicas || replicas.max > a.max_replicas)
    {
        d.error(
            n.pos,
            &f.path("replicas"),
            format!(
                "replicas {replicas} lie outside autoscaling's range {}-{}",
                a.min_replicas, a.max_replicas
            ),
        );
    }
    let name = name?;
    Some(Environment {
        namespace: namespace.unwrap_or_else(|| name.clone()),
        name,
        url,
        requires,
        cluster,
        approval,
        replicas,
        resources,
        autoscaling,
        config,
        feature_flags,
        secrets,
        rollout,
        strategy,
        analysis,
        checks,
        slo,
        on_failure,
        hooks,
        pos: node.pos,
        positions: Positions(crate::config::yaml::positions(node)),
    })
}

fn decode_cluster(d: &mut Diagnostics, node: &Node, path: &str) -> Option<Cluster> {
    let f = d.fields(node, path, &["context", "aks"])?;
    let context = opt(d, &f, "context", string);
    let aks = opt(d, &f, "aks", |d, n, p| {
        let a = d.fields(n, p, &["subscription", "resourceGroup", "name"])?;
        let subscription = req_string(d, &a, "subscription", "the Azure subscription id");
        let resource_group = req_string(d, &a, "resourceGroup", "the cluster's resource group");
        let name = req_string(d, &a, "name", "the AKS cluster name");
        Some(AksCluster {
            subscription: subscription?,
            resource_group: resource_group?,
            name: name?,
        })
    });
    Some(Cluster { context, aks })
}

fn decode_approval(d: &mut Diagnostics, node: &Node, path: &str) -> Option<Approval> {
    let f = d.fields(
        node,
        path,
        &["reviewers", "waitTimer", "preventSelfReview", "branches"],
    )?;
    let reviewers = opt(d, &f, "reviewers", |d, n, p| {
        let Value::Seq(items) = &n.value else {
            d.error(
                n.pos,
                p,
                format!(
                    "expected a list of `user:<login>` or `team:<slug>`, found {}",
                    n.describe()
                ),
            );
            return None;
        };
        Some(
            items
                .iter()
                .filter_map(|item| decode_reviewer(d, item, p))
                .collect(),
        )
    })
    .unwrap_or_default();
    // GitHub takes the wait timer in minutes; a bare number means minutes here too.
    let wait_timer = opt(d, &f, "waitTimer", |d, n, p| {
        let minutes = duration(d, n, p)?.as_secs() / 60;
        if minutes > 43_200 {
            d.error(
                n.pos,
                p,
                format!("GitHub allows at most 43200 minutes (30 days), found {minutes}"),
            );
            return None;
        }
        Some(minutes as u32)
    })
    .unwrap_or(0);
    let prevent_self_review = opt(d, &f, "preventSelfReview", boolean).unwrap_or(false);
    let branches = opt(d, &f, "branches", string_list).unwrap_or_default();
    Some(Approval {
        reviewers,
        wait_timer,
        prevent_self_review,
        branches,
    })
}

fn decode_reviewer(d: &mut Diagnostics, node: &Node, path: &str) -> Option<Reviewer> {
    let text = string(d, node, path)?;
    let valid_login = |s: &str| {
        !s.is_empty()
            && s.len() <= 39
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !s.starts_with('-')
    };
    let valid_slug = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
    };
    match text.split_once(':') {
        Some(("user", login)) if valid_login(login) => Some(Reviewer::User(login.to_string())),
        Some(("team", slug)) if valid_slug(slug) => Some(Reviewer::Team(slug.to_string())),
        _ => {
            d.error(
                node.pos,
                path,
                format!("expected a reviewer as `user:<login>` or `team:<slug>`, found {text:?}"),
            );
            None
        }
    }
}

fn decode_replicas(d: &mut Diagnostics, node: &Node, path: &str) -> Option<Replicas> {
    let text = scalar_text(
        d,
        node,
        path,
        "a replica count such as `2` or a range such as `2-10`",
    )?;
    let parse = |s: &str| s.trim().parse::<u32>().ok();
    let (min, max) = match text.split_once('-') {
        Some((a, b)) => (parse(a), parse(b)),
        None => (parse(&text), parse(&text)),
    };
    match (min, max) {
        (Some(min), Some(max)) if min <= max => Some(Replicas { min, max }),
        (Some(min), Some(max)) => {
            d.error(
                node.pos,
                path,
                format!("the range {min}-{max} is reversed (write `{max}-{min}`)"),
            );
            None
        }
        _ => {
            d.error(
                node.pos,
                path,
                format!(
                    "expected a replica count such as `2` or a range such as `2-10`, found {}",
                    node.describe()
                ),
            );
            None
        }
    }
}

fn decode_resources(d: &mut Diagnostics, node: &Node, path: &str) -> Option<Resources> {
    let f = d.fields(node, path, &["requests", "limits"])?;
    let requests = opt(d, &f, "requests", decode_resource_list).unwrap_or_default();
    let limits = opt(d, &f, "limits", decode_resource_list).unwrap_or_default();
    for (name, limit) in limits.entries() {
        let request = requests.entries().find(|(n, _)| *n == name).map(|(_, q)| q);
        if let Some(request) = request
            && limit.value < request.value
        {
            let pos = field_pos(node, &["limits", name]).unwrap_or(node.pos);
            d.error(
                pos,
                &join(&f.path("limits"), name),
                format!(
                    "limit {limit} is below the request {request}: Kubernetes rejects such a pod"
                ),
            );
        }
    }
    Some(Resources { requests, limits })
}

fn decode_resource_list(d: &mut Diagnostics, node: &Node, path: &str) -> Option<ResourceList> {
    let f = d.fields(node, path, &["cpu", "memory", "ephemeral-storage"])?;
    Some(ResourceList {
        cpu: opt(d, &f, "cpu", quantity),
        memory: opt(d, &f, "memory", quantity),
        ephemeral_storage: opt(d, &f, "ephemeral-storage", quantity),
    })
}

fn decode_autoscaling(d: &mut Diagnostics, node: &Node, path: &str) -> Option<Autoscaling> {
    let f = d.fields(
        node,
        path,
        &[
            "minReplicas",
            "maxReplicas",
            "targetCPUUtilization",
            "targetMemoryUtilization",
        ],
    )?;
    let min = f
        .required(d, "minReplicas", "the HPA floor")
        .and_then(|n| uint(d, n, &f.path("minReplicas"), 1, 10_000));
    let max = f
        .required(d, "maxReplicas", "the HPA ceiling")
        .and_then(|n| uint(d, n, &f.path("maxReplicas"), 1, 10_000));
    let target_cpu = opt(d, &f, "targetCPUUtilization", |d, n, p| {
        uint(d, n, p, 1, 100)
    });
    let target_memory = opt(d, &f, "targetMemoryUtilization", |d, n, p| {
        uint(d, n, p, 1, 100)
    });
    let (min, max) = (min? as u32, max? as u32);
    if min > max {
        d.error(
            node.pos,
            path,
            format!("minReplicas ({min}) is greater than maxReplicas ({max})"),
        );
        return None;
    }
    Some(Autoscaling {
        min_replicas: min,
        max_replicas: max,
        target_cpu: target_cpu.map_or(DEFAULT_TARGET_CPU, |t| t as u32),
        target_memory: target_memory.map(|t| t as u32),
    })
}

fn decode_flags(
    d: &mut Diagnostics,
    node: &Node,
    path: &str,
) -> Option<BTreeMap<String, serde_json::Value>> {
    let entries = map_entries(d, node, path, "a mapping of flag names to values")?;
    let mut flags = BTreeMap::new();
    for (key, value) in entries {
        let name = key.scalar().unwrap_or_default();
        let field = join(path, name);
        if !name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            d.error(key.pos, &field, "a feature flag name starts with a letter and has only letters, digits, `-` and `_`");
            continue;
        }
        match &value.value {
            Value::Scalar { .. } => {
                flags.insert(name.to_string(), value.to_json());
            }
            _ => d.error(
                value.pos,
                &field,
                format!(
                    "expected a boolean, number or string, found {}",
                    value.describe()
                ),
            ),
        }
    }
    Some(flags)
}

fn decode_rollout(d: &mut Diagnostics, node: &Node, path: &str) -> Option<Rollout> {
    let f = d.fields(node, path, &["timeout", "maxSurge", "maxUnavailable"])?;
    let timeout = opt(d, &f, "timeout", duration);
    let max_surge = opt(d, &f, "maxSurge", int_or_percent);
    let max_unavailable = opt(d, &f, "maxUnavailable", int_or_percent);
    if let (Some(s), Some(u)) = (&max_surge, &max_unavailable)
        && s.is_zero()
        && u.is_zero()
    {
        d.error(
            node.pos,
            path,
            "maxSurge and maxUnavailable cannot both be 0: the rollout could never make progress",
        );
    }
    Some(Rollout {
        timeout: timeout.unwrap_or(Rollout::default().timeout),
        max_surge,
        max_unavailable,
    })
}

fn decode_hooks(d: &mut Diagnostics, node: &Node, path: &str) -> Option<Hooks> {
    let f = d.fields(node, path, &["preDeploy"])?;
    let pre_deploy = opt(d, &f, "preDeploy", |d, n, p| {
        Some(list(d, n, p, |d, n, p| {
            let h = d.fields(
                n,
                p,
                &["name", "service", "command", "args", "env", "timeout"],
            )?;
            let name = req_string(d, &h, "name", "a name for the hook Job");
            let service = opt(d, &h, "service", string);
            let command = h
                .required(d, "command", "the command the hook runs")
                .and_then(|n| string_list(d, n, &h.path("command")));
            let args = opt(d, &h, "args", string_list).unwrap_or_default();
            let env = opt(d, &h, "env", string_map).unwrap_or_default();
            let timeout = opt(d, &h, "timeout", duration).unwrap_or(Duration::from_secs(300));
            Some(Hook {
                name: name?,
                service: service.unwrap_or_default(),
                command: command?,
                args,
                env,
                timeout,
                pos: n.pos,
            })
        }))
    })
    .unwrap_or_default();
    Some(Hooks { pre_deploy })
}
