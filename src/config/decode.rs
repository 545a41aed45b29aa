//! promotion.yml's YAML tree → [`Config`], field by field, collecting every error on the way.
//! Cross-field and cross-file rules (requires cycles, manifests) live in `validate.rs`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::diagnostics::{Diagnostics, Fields, join};
use super::model::*;
use super::units::{self, IntOrPercent, Quantity};
use super::yaml::{Node, PlainKind, Pos, Value, plain_kind};

const TOP: &[&str] = &["registry", "services", "environments"];
const SERVICE: &[&str] = &[
    "name",
    "image",
    "manifests",
    "deployment",
    "container",
    "port",
    "healthPath",
];
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
    "checks",
    "slo",
    "onFailure",
    "hooks",
];

pub fn decode_config(d: &mut Diagnostics, root: &Node) -> Option<Config> {
    let top = d.fields(root, "", TOP)?;
    let registry = top
        .required(
            d,
            "registry",
            "the registry login server, e.g. `myregistry.azurecr.io`",
        )
        .and_then(|n| string(d, n, "registry"))
        .unwrap_or_default();
    let services = match top.required(d, "services", "a list of services") {
        Some(n) => list(d, n, "services", decode_service),
        None => Vec::new(),
    };
    let environments = match top.required(d, "environments", "a list of environments") {
        Some(n) => list(d, n, "environments", |d, n, path| {
            decode_environment(d, n, path)
        }),
        None => Vec::new(),
    };
    Some(Config {
        file: d.file().to_path_buf(),
        registry,
        services,
        environments,
    })
}

/// A list whose items are named: the item's path uses its `name` (`environments.testing`) when
/// it has one, its index otherwise.
fn list<T>(
    d: &mut Diagnostics,
    node: &Node,
    field: &str,
    mut item: impl FnMut(&mut Diagnostics, &Node, &str) -> Option<T>,
) -> Vec<T> {
    let Value::Seq(items) = &node.value else {
        d.error(
            node.pos,
            field,
            format!("expected a list, found {}", node.describe()),
        );
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            let path = match n.get("name").and_then(Node::scalar) {
                Some(name) if !name.is_empty() => format!("{field}.{name}"),
                _ => format!("{field}[{i}]"),
            };
            item(d, n, &path)
        })
        .collect()
}

fn decode_service(d: &mut Diagnostics, node: &Node, path: &str) -> Option<Service> {
    let f = d.fields(node, path, SERVICE)?;
    let name = req_string(d, &f, "name", "the service name");
    let image = req_string(d, &f, "image", "the image repository in the registry");
    let manifests_dir = req_string(d, &f, "manifests", "a directory of Kubernetes YAML");
    let deployment = opt(d, &f, "deployment", string);
    let container = opt(d, &f, "container", string);
    let port = opt(d, &f, "port", |d, n, p| uint(d, n, p, 1, 65535)).map(|p| p as u16);
    let health_path = opt(d, &f, "healthPath", string);
    let name = name?;
    Some(Service {
        deployment: deployment.unwrap_or_else(|| name.clone()),
        container: container.unwrap_or_else(|| name.clone()),
        name,
        image: image?,
        manifests_dir: PathBuf::from(manifests_dir?),
        manifests: Vec::new(),
        port,
        health_path,
        pos: node.pos,
        positions: Positions(super::yaml::positions(node)),
    })
}

fn decode_environment(d: &mut Diagnostics, node: &Node, path: &str) -> Option<Environment> {
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
    let secrets = opt(d, &f, "secrets", string_list)
        .unwrap_or_default()
        .into_iter()
        .map(|name| SecretRef {
            name,
            from_env: BTreeMap::new(),
            pos: node.pos,
        })
        .collect();
    let rollout = opt(d, &f, "rollout", decode_rollout).unwrap_or_default();
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
        strategy: Strategy::Rolling,
        analysis: None,
        checks,
        slo,
        on_failure,
        hooks,
        pos: node.pos,
        positions: Positions(super::yaml::positions(node)),
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
            let pos = super::decode::field_pos(node, &["limits", name]).unwrap_or(node.pos);
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

fn decode_checks(d: &mut Diagnostics, node: &Node, path: &str) -> Option<Checks> {
    let f = d.fields(node, path, &["smoke", "integration", "soak"])?;
    let smoke =
        opt(d, &f, "smoke", |d, n, p| Some(list(d, n, p, decode_smoke))).unwrap_or_default();
    let integration = opt(d, &f, "integration", |d, n, p| {
        Some(list(d, n, p, decode_integration))
    })
    .unwrap_or_default();
    let soak = opt(d, &f, "soak", |d, n, p| {
        let s = d.fields(n, p, &["duration", "maxRestarts"])?;
        let duration = s
            .required(d, "duration", "how long to watch the new pods")
            .and_then(|n| duration(d, n, &s.path("duration")));
        let max_restarts = opt(d, &s, "maxRestarts", |d, n, p| uint(d, n, p, 0, 1000)).unwrap_or(0);
        Some(Soak {
            duration: duration?,
            max_restarts: max_restarts as u32,
        })
    });
    Some(Checks {
        smoke,
        integration,
        soak,
    })
}

fn decode_smoke(d: &mut Diagnostics, node: &Node, path: &str) -> Option<SmokeCheck> {
    let f = d.fields(
        node,
        path,
        &[
            "name",
            "url",
            "path",
            "via",
            "service",
            "method",
            "headers",
            "expectStatus",
            "expectBody",
            "expectJson",
            "samples",
            "concurrency",
            "requestTimeout",
            "readinessTimeout",
            "caFile",
            "duration",
            "maxRedirects",
        ],
    )?;
    let name = req_string(d, &f, "name", "a name for the check");
    let url = opt(d, &f, "url", string);
    let check_path = opt(d, &f, "path", string);
    let via = opt(d, &f, "via", |d, n, p| {
        one_of(
            d,
            n,
            p,
            &[
                ("url", CheckRoute::Url),
                ("service-proxy", CheckRoute::ServiceProxy),
            ],
        )
    })
    .unwrap_or_default();
    let service = opt(d, &f, "service", string);
    let method = opt(d, &f, "method", |d, n, p| {
        let m = string(d, n, p)?;
        let known = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
        if known.contains(&m.as_str()) {
            Some(m)
        } else {
            d.error(
                n.pos,
                p,
                format!(
                    "expected an HTTP method ({}), found {m:?}",
                    known.join(", ")
                ),
            );
            None
        }
    })
    .unwrap_or_else(|| "GET".to_string());
    let headers = opt(d, &f, "headers", |d, n, p| {
        let entries = map_entries(d, n, p, "a mapping of header names to values")?;
        let mut headers = BTreeMap::new();
        for (k, v) in entries {
            let key = k.scalar().unwrap_or_default().to_string();
            let field = join(p, &key);
            let value = match &v.value {
                Value::Map(_) => d.fields(v, &field, &["fromEnv"]).and_then(|h| {
                    h.required(
                        d,
                        "fromEnv",
                        "the environment variable holding the secret value",
                    )
                    .and_then(|n| string(d, n, &h.path("fromEnv")))
                    .map(HeaderValue::FromEnv)
                }),
                _ => string(d, v, &field).map(HeaderValue::Plain),
            };
            if let Some(value) = value {
                headers.insert(key, value);
            }
        }
        Some(headers)
    })
    .unwrap_or_default();
    let expect_status =
        opt(d, &f, "expectStatus", |d, n, p| uint(d, n, p, 100, 599)).unwrap_or(200) as u16;
    let expect_body = opt(d, &f, "expectBody", string);
    let expect_json = opt(d, &f, "expectJson", |d, n, p| {
        let entries = map_entries(d, n, p, "a mapping of JSON paths to values")?;
        Some(
            entries
                .iter()
                .map(|(k, v)| (k.scalar().unwrap_or_default().to_string(), v.to_json()))
                .collect(),
        )
    })
    .unwrap_or_default();
    let samples = opt(d, &f, "samples", |d, n, p| uint(d, n, p, 1, 100_000)).unwrap_or(20) as u32;
    let concurrency =
        opt(d, &f, "concurrency", |d, n, p| uint(d, n, p, 1, 1000)).unwrap_or(4) as u32;
    let request_timeout = opt(d, &f, "requestTimeout", duration).unwrap_or(Duration::from_secs(10));
    let readiness_timeout =
        opt(d, &f, "readinessTimeout", duration).unwrap_or(Duration::from_secs(120));
    let ca_file = opt(d, &f, "caFile", string).map(PathBuf::from);
    let sample_for = opt(d, &f, "duration", duration);
    if sample_for.is_some_and(|s| s.is_zero())
        && let Some(n) = f.get("duration")
    {
        d.error(
            n.pos,
            &f.path("duration"),
            "expected a sampling duration of more than zero",
        );
    }
    // reqwest's and curl's habit: 10 redirects is plenty for any health endpoint.
    let max_redirects =
        opt(d, &f, "maxRedirects", |d, n, p| uint(d, n, p, 0, 20)).unwrap_or(10) as u32;
    if url.is_some() && check_path.is_some() {
        d.error(node.pos, path, "give either `url` or `path`, not both");
    }
    if url.is_none() && check_path.is_none() {
        d.error(
            node.pos,
            path,
            "missing `url` (a full URL) or `path` (appended to the environment's url)",
        );
    }
    if via == CheckRoute::ServiceProxy && url.is_some() {
        d.error(
            node.pos,
            path,
            "`via: service-proxy` takes a `path`, not a `url`",
        );
    }
    Some(SmokeCheck {
        name: name?,
        url,
        path: check_path,
        via,
        service,
        method,
        headers,
        expect_status,
        expect_body,
        expect_json,
        samples,
        concurrency,
        request_timeout,
        readiness_timeout,
        ca_file,
        duration: sample_for,
        max_redirects,
        pos: node.pos,
    })
}

fn decode_integration(d: &mut Diagnostics, node: &Node, path: &str) -> Option<IntegrationCheck> {
    let f = d.fields(
        node,
        path,
        &[
            "name",
            "image",
            "command",
            "args",
            "env",
            "serviceAccount",
            "timeout",
        ],
    )?;
    let name = req_string(d, &f, "name", "a name for the check");
    let image = opt(d, &f, "image", string);
    let command = opt(d, &f, "command", string_list).unwrap_or_default();
    let args = opt(d, &f, "args", string_list).unwrap_or_default();
    let env = opt(d, &f, "env", string_map).unwrap_or_default();
    let service_account = opt(d, &f, "serviceAccount", string);
    let timeout = opt(d, &f, "timeout", duration).unwrap_or(Duration::from_secs(600));
    Some(IntegrationCheck {
        name: name?,
        image,
        command,
        args,
        env,
        service_account,
        timeout,
        pos: node.pos,
    })
}

fn decode_slo(d: &mut Diagnostics, node: &Node, path: &str) -> Option<Slo> {
    let f = d.fields(
        node,
        path,
        &["p95Latency", "p99Latency", "errorRate", "uptime"],
    )?;
    Some(Slo {
        p95_latency: opt(d, &f, "p95Latency", duration),
        p99_latency: opt(d, &f, "p99Latency", duration),
        error_rate: opt(d, &f, "errorRate", percent),
        uptime: opt(d, &f, "uptime", percent),
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

// ---- typed readers: each reports its own error and returns None ----

fn opt<T>(
    d: &mut Diagnostics,
    f: &Fields<'_>,
    key: &str,
    read: impl FnOnce(&mut Diagnostics, &Node, &str) -> Option<T>,
) -> Option<T> {
    let node = f.get(key)?;
    read(d, node, &f.path(key))
}

fn req_string(d: &mut Diagnostics, f: &Fields<'_>, key: &str, what: &str) -> Option<String> {
    let node = f.required(d, key, what)?;
    let value = string(d, node, &f.path(key))?;
    if value.trim().is_empty() {
        d.error(
            node.pos,
            &f.path(key),
            format!("must not be empty ({what})"),
        );
        return None;
    }
    Some(value)
}

/// The text of a scalar, refusing lists and mappings.
fn scalar_text(d: &mut Diagnostics, node: &Node, path: &str, expected: &str) -> Option<String> {
    match &node.value {
        Value::Scalar { text, .. } => Some(text.clone()),
        _ => {
            d.error(
                node.pos,
                path,
                format!("expected {expected}, found {}", node.describe()),
            );
            None
        }
    }
}

/// The entries of a mapping, or an "expected {what}" error at the node.
fn map_entries<'a>(
    d: &mut Diagnostics,
    node: &'a Node,
    path: &str,
    what: &str,
) -> Option<&'a [(Node, Node)]> {
    match &node.value {
        Value::Map(entries) => Some(entries),
        _ => {
            d.error(
                node.pos,
                path,
                format!("expected {what}, found {}", node.describe()),
            );
            None
        }
    }
}

/// A string: any scalar, taken as written, so `on`, `no` or `3.10` stay strings.
pub fn string(d: &mut Diagnostics, node: &Node, path: &str) -> Option<String> {
    scalar_text(d, node, path, "a string")
}

fn boolean(d: &mut Diagnostics, node: &Node, path: &str) -> Option<bool> {
    match &node.value {
        Value::Scalar { text, quoted } => match plain_kind(text, *quoted) {
            PlainKind::Bool(b) => Some(b),
            _ => {
                d.error(
                    node.pos,
                    path,
                    format!("expected `true` or `false`, found {}", node.describe()),
                );
                None
            }
        },
        _ => {
            d.error(
                node.pos,
                path,
                format!("expected `true` or `false`, found {}", node.describe()),
            );
            None
        }
    }
}

fn uint(d: &mut Diagnostics, node: &Node, path: &str, min: u64, max: u64) -> Option<u64> {
    let found = match &node.value {
        Value::Scalar { text, quoted } => match plain_kind(text, *quoted) {
            PlainKind::Int(i) if i >= 0 => Some(i as u64),
            PlainKind::Int(i) => {
                d.error(
                    node.pos,
                    path,
                    format!("expected an integer from {min} to {max}, found {i}"),
                );
                return None;
            }
            _ => None,
        },
        _ => None,
    };
    match found {
        Some(n) if (min..=max).contains(&n) => Some(n),
        Some(n) => {
            d.error(
                node.pos,
                path,
                format!("expected an integer from {min} to {max}, found {n}"),
            );
            None
        }
        None => {
            d.error(
                node.pos,
                path,
                format!("expected an integer, found {}", node.describe()),
            );
            None
        }
    }
}

fn string_list(d: &mut Diagnostics, node: &Node, path: &str) -> Option<Vec<String>> {
    let Value::Seq(items) = &node.value else {
        d.error(
            node.pos,
            path,
            format!("expected a list of strings, found {}", node.describe()),
        );
        return None;
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        out.push(string(d, item, &format!("{path}[{i}]"))?);
    }
    Some(out)
}

/// A mapping of strings to strings (ConfigMap data, env): values keep their source text,
/// so YAML 1.1 booleans like `on` and numbers like `010` arrive exactly as written.
fn string_map(d: &mut Diagnostics, node: &Node, path: &str) -> Option<BTreeMap<String, String>> {
    let entries = map_entries(d, node, path, "a mapping of names to strings")?;
    let mut map = BTreeMap::new();
    for (key, value) in entries {
        let name = key.scalar().unwrap_or_default().to_string();
        let field = join(path, &name);
        let text = if value.is_null() {
            Some(String::new())
        } else {
            string(d, value, &field)
        };
        if let Some(text) = text {
            map.insert(name, text);
        }
    }
    Some(map)
}

fn one_of<T: Copy>(
    d: &mut Diagnostics,
    node: &Node,
    path: &str,
    choices: &[(&str, T)],
) -> Option<T> {
    let text = string(d, node, path)?;
    if let Some((_, value)) = choices.iter().find(|(name, _)| *name == text) {
        return Some(*value);
    }
    let names: Vec<String> = choices.iter().map(|(n, _)| format!("`{n}`")).collect();
    d.error(
        node.pos,
        path,
        format!("expected one of {}, found {text:?}", names.join(", ")),
    );
    None
}

fn with_parser<T>(
    d: &mut Diagnostics,
    node: &Node,
    path: &str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Option<T> {
    let text = scalar_text(d, node, path, "a scalar value")?;
    parse(&text).map_err(|e| d.error(node.pos, path, e)).ok()
}

fn quantity(d: &mut Diagnostics, node: &Node, path: &str) -> Option<Quantity> {
    with_parser(d, node, path, units::parse_quantity)
}

fn duration(d: &mut Diagnostics, node: &Node, path: &str) -> Option<Duration> {
    with_parser(d, node, path, units::parse_duration)
}

fn percent(d: &mut Diagnostics, node: &Node, path: &str) -> Option<f64> {
    with_parser(d, node, path, units::parse_percent)
}

fn int_or_percent(d: &mut Diagnostics, node: &Node, path: &str) -> Option<IntOrPercent> {
    with_parser(d, node, path, units::parse_int_or_percent)
}

/// Where a field is, for checks that run after decoding.
pub fn field_pos(root: &Node, path: &[&str]) -> Option<Pos> {
    let mut node = root;
    for key in path {
        node = node.get(key)?;
    }
    Some(node.pos)
}
