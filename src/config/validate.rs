//! Rules that span fields, items or files: names, duplicates, `requires` references and cycles,
//! references from checks and hooks to services, and the services' manifests. Every error points
//! at the field it is about (`Service::pos_of`, `Environment::pos_of`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::diagnostics::{Diagnostics, suggest};
use super::manifests::{is_dns_label, is_dns_subdomain, load_service_manifests};
use super::model::*;
use super::yaml::{Node, Pos, Value};

pub fn validate(d: &mut Diagnostics, root: &Node, base_dir: &Path, config: &mut Config) {
    check_registry(d, root, &config.registry);
    check_services(d, root, config);
    check_environments(d, root, config);
    for i in 0..config.services.len() {
        let field = format!("services.{}", config.services[i].name);
        let manifests = load_service_manifests(d, base_dir, &config.services[i], &field);
        config.services[i].manifests = manifests;
    }
    check_object_names_unique(d, config);
    check_strategy_objects(d, config);
}

/// Blue-green and canary work on objects the manifests must have: a Service in front of the
/// Deployment (its selector is switched, or the canary's pods join it) and, with ingress-nginx,
/// the Ingress to split.
fn check_strategy_objects(d: &mut Diagnostics, config: &Config) {
    for env in &config.environments {
        let field = format!("environments.{}", env.name);
        let routing = match &env.strategy {
            Strategy::Rolling => continue,
            Strategy::BlueGreen(_) => None,
            Strategy::Canary(c) => Some(&c.traffic_routing),
        };
        for service in &config.services {
            if service.deployment_manifest().is_none() {
                continue; // The manifests' own errors are reported already.
            }
            if service.fronting_services().is_empty() {
                d.error(
                    env.pos_of("strategy"),
                    &format!("{field}.strategy"),
                    format!(
                        "`strategy: {}` needs a Service whose selector picks Deployment `{}`'s pods, and service `{}`'s manifests have none",
                        env.strategy.word(),
                        service.deployment,
                        service.name
                    ),
                );
            }
            if let Some(TrafficRouting::IngressNginx { ingress }) = routing
                && let Err(why) = service.canary_ingress(ingress.as_deref())
            {
                let at = if ingress.is_some() {
                    "canary.trafficRouting.ingress-nginx.ingress"
                } else {
                    "canary.trafficRouting"
                };
                d.error(env.pos_of(at), &format!("{field}.{at}"), why);
            }
        }
    }
}

/// True when `key` of the root is written as an empty list (not missing, not another type,
/// which decoding has reported already).
fn is_empty_list(root: &Node, key: &str) -> bool {
    matches!(root.get(key).map(|n| &n.value), Some(Value::Seq(items)) if items.is_empty())
}

fn check_registry(d: &mut Diagnostics, root: &Node, registry: &str) {
    if registry.is_empty() {
        return;
    }
    let pos = root.get("registry").map_or(Pos::default(), |n| n.pos);
    if let Some((_, host)) = registry.split_once("://") {
        let host = host.trim_end_matches('/');
        let example = if host.is_empty() {
            "myregistry.azurecr.io"
        } else {
            host
        };
        d.error(
            pos,
            "registry",
            format!("write the login server without a scheme, e.g. `{example}`"),
        );
    } else if registry.contains('/')
        || registry.chars().any(char::is_whitespace)
        || registry.chars().any(|c| c.is_ascii_uppercase())
    {
        d.error(
            pos,
            "registry",
            format!("expected a registry host such as `myregistry.azurecr.io` or `localhost:5000`, found {registry:?}"),
        );
    }
}

fn check_services(d: &mut Diagnostics, root: &Node, config: &Config) {
    if is_empty_list(root, "services") {
        let pos = root.get("services").map_or(Pos::default(), |n| n.pos);
        d.error(pos, "services", "declare at least one service");
    }
    let mut seen: HashMap<&str, Pos> = HashMap::new();
    for s in &config.services {
        let field = format!("services.{}", s.name);
        let name_pos = s.pos_of("name");
        if let Some(first) = seen.insert(&s.name, name_pos) {
            d.error(
                name_pos,
                &format!("{field}.name"),
                format!(
                    "duplicate service name `{}` (first at line {})",
                    s.name, first.line
                ),
            );
        }
        if !is_dns_label(&s.name) {
            d.error(
                name_pos,
                &format!("{field}.name"),
                format!(
                    "{:?} is not a valid service name: lower-case letters, digits and `-`, at most 63 (it names Kubernetes objects)",
                    s.name
                ),
            );
        }
        if let Err(why) = check_repository(&s.image, &config.registry) {
            d.error(s.pos_of("image"), &format!("{field}.image"), why);
        }
    }
}

/// A repository path inside the registry, without registry host, tag or digest: tags are
/// resolved to digests by the promotion itself.
fn check_repository(image: &str, registry: &str) -> Result<(), String> {
    if let Some((first, rest)) = image.split_once('/')
        && (first.contains(['.', ':']) || first == "localhost")
    {
        return Err(format!(
            "{image:?}: give the repository without the registry host, e.g. `{rest}` (the registry is `{registry}`, set by `registry:`)"
        ));
    }
    if image.contains('@')
        || image
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
    {
        return Err(format!(
            "{image:?}: give the repository only, without a tag or digest (the digest comes from the build)"
        ));
    }
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            })
            && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && c.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
    };
    if image.split('/').all(component_ok) {
        Ok(())
    } else {
        Err(format!(
            "{image:?} is not a valid repository name: lower-case path components separated by `/`"
        ))
    }
}

fn check_environments(d: &mut Diagnostics, root: &Node, config: &Config) {
    if is_empty_list(root, "environments") {
        let pos = root.get("environments").map_or(Pos::default(), |n| n.pos);
        d.error(pos, "environments", "declare at least one environment");
    }
    let names: Vec<&str> = config
        .environments
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    let mut seen: HashMap<&str, Pos> = HashMap::new();
    let mut namespaces: HashMap<(&str, &Cluster), &str> = HashMap::new();
    for (index, env) in config.environments.iter().enumerate() {
        let field = format!("environments.{}", env.name);
        let at = |f: &str| env.pos_of(f);
        if let Some(first) = seen.insert(&env.name, at("name")) {
            d.error(
                at("name"),
                &format!("{field}.name"),
                format!(
                    "duplicate environment name `{}` (first at line {})",
                    env.name, first.line
                ),
            );
        }
        // The name labels objects and names GitHub environments and image tags.
        if !is_label_value(&env.name) {
            d.error(
                at("name"),
                &format!("{field}.name"),
                format!("{:?} is not a valid environment name: letters, digits, `-`, `_` and `.`, at most 63", env.name),
            );
        }
        if !is_dns_label(&env.namespace) {
            if env.positions.has("namespace") {
                d.error(
                    at("namespace"),
                    &format!("{field}.namespace"),
                    format!(
                        "{:?} is not a valid namespace: a DNS label (lower-case letters, digits and `-`, at most 63, starting and ending with a letter or digit)",
                        env.namespace
                    ),
                );
            } else {
                d.error(
                    at("name"),
                    &format!("{field}.name"),
                    format!(
                        "the namespace defaults to the environment name, and {:?} is not a valid namespace: set `namespace:` (lower-case letters, digits and `-`)",
                        env.name
                    ),
                );
            }
        } else if let Some(other) =
            namespaces.insert((env.namespace.as_str(), &env.cluster), env.name.as_str())
        {
            d.error(
                at("namespace"),
                &format!("{field}.namespace"),
                format!(
                    "namespace `{}` is already used by environment `{other}` on the same cluster",
                    env.namespace
                ),
            );
        }
        if let Some(url) = &env.url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            d.error(
                at("url"),
                &format!("{field}.url"),
                format!("expected an http(s) URL, found {url:?}"),
            );
        }
        if let Some(req) = &env.requires {
            let requires_field = format!("{field}.requires");
            if req == &env.name {
                d.error(
                    at("requires"),
                    &requires_field,
                    "an environment cannot require itself",
                );
            } else if !names.contains(&req.as_str()) {
                let hint = suggest(req, &names)
                    .map(|s| format!(", did you mean `{s}`?"))
                    .unwrap_or_default();
                d.error(
                    at("requires"),
                    &requires_field,
                    format!("unknown environment `{req}`{hint}"),
                );
            } else if !names[..index].contains(&req.as_str()) && !in_cycle(config, &env.name) {
                d.error(
                    at("requires"),
                    &requires_field,
                    format!("`{req}` comes later in the file: list environments in promotion order, each after the one it requires"),
                );
            }
        }
        if env.approval.reviewers.len() > 6 {
            d.error(
                at("approval.reviewers"),
                &format!("{field}.approval.reviewers"),
                format!(
                    "GitHub allows at most 6 required reviewers, found {}",
                    env.approval.reviewers.len()
                ),
            );
        }
        if env.autoscaling.is_none() && env.replicas.min == 0 && !env.checks.smoke.is_empty() {
            d.error(
                at("replicas"),
                &format!("{field}.replicas"),
                "smoke checks need at least one replica",
            );
        }
        check_config_keys(d, &field, env);
        check_flags(d, &field, env);
        check_secrets(d, &field, env);
        check_hooks(d, &field, env, config);
        check_smoke(d, &field, env, config);
    }
    check_cycles(d, config);
}

fn check_secrets(d: &mut Diagnostics, field: &str, env: &Environment) {
    let mut names: HashMap<&str, Pos> = HashMap::new();
    // envFrom lets a later source override an earlier one silently: a key set twice is a mistake.
    let mut keys: BTreeMap<&str, String> = env
        .config
        .keys()
        .map(|k| (k.as_str(), "`config`".to_string()))
        .collect();
    for (i, secret) in env.secrets.iter().enumerate() {
        let name = &secret.name;
        let pos = if secret.is_managed() {
            env.pos_of(&format!("secrets[{i}].name"))
        } else {
            env.pos_of(&format!("secrets[{i}]"))
        };
        if !is_dns_subdomain(name) {
            d.error(
                pos,
                &format!("{field}.secrets"),
                format!("{name:?} is not a valid Secret name"),
            );
        }
        if let Some(first) = names.insert(name, pos) {
            d.error(
                pos,
                &format!("{field}.secrets"),
                format!(
                    "Secret `{name}` is listed twice (first at line {})",
                    first.line
                ),
            );
        }
        for key in secret.from_env.keys() {
            let source = format!("Secret `{name}`");
            if let Some(other) = keys.insert(key, source) {
                d.error(
                    env.pos_of(&format!("secrets[{i}].fromEnv.{key}")),
                    &format!("{field}.secrets.{name}.fromEnv.{key}"),
                    format!("`{key}` is also set by {other}: both would become the same environment variable"),
                );
            }
        }
    }
}

fn check_hooks(d: &mut Diagnostics, field: &str, env: &Environment, config: &Config) {
    let services: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
    for (i, hook) in env.hooks.pre_deploy.iter().enumerate() {
        let hook_field = format!("{field}.hooks.preDeploy.{}", hook.name);
        let at = |f: &str| {
            env.positions
                .at(&format!("hooks.preDeploy[{i}].{f}"), hook.pos)
        };
        if !is_dns_label(&hook.name) {
            d.error(
                at("name"),
                &format!("{hook_field}.name"),
                format!("{:?} is not a valid hook name (it names a Job): lower-case letters, digits and `-`", hook.name),
            );
        }
        if hook.service.is_empty() && services.len() > 1 {
            d.error(
                hook.pos,
                &hook_field,
                format!(
                    "name the `service` whose image the hook runs (one of: {})",
                    services.join(", ")
                ),
            );
        } else if !hook.service.is_empty() && !services.contains(&hook.service.as_str()) {
            d.error(
                at("service"),
                &format!("{hook_field}.service"),
                format!("unknown service `{}`", hook.service),
            );
        }
    }
}

fn check_smoke(d: &mut Diagnostics, field: &str, env: &Environment, config: &Config) {
    let services: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
    for (i, check) in env.checks.smoke.iter().enumerate() {
        let check_field = format!("{field}.checks.smoke.{}", check.name);
        let at = |f: &str| {
            env.positions
                .at(&format!("checks.smoke[{i}].{f}"), check.pos)
        };
        if check.path.is_some() && check.via == CheckRoute::Url && env.url.is_none() {
            d.error(
                at("path"),
                &check_field,
                "`path` needs the environment's `url` (or use a full `url`, or `via: service-proxy`)",
            );
        }
        if let Some(url) = &check.url
            && !(url.starts_with("https://")
                || url.starts_with("http://")
                || url.starts_with("{url}"))
        {
            d.error(
                at("url"),
                &format!("{check_field}.url"),
                format!("expected an http(s) URL or one starting with `{{url}}`, found {url:?}"),
            );
        }
        match &check.service {
            Some(s) if !services.contains(&s.as_str()) => {
                d.error(
                    at("service"),
                    &format!("{check_field}.service"),
                    format!("unknown service `{s}`"),
                );
            }
            None if check.via == CheckRoute::ServiceProxy && services.len() > 1 => {
                d.error(
                    at("via"),
                    &check_field,
                    "`via: service-proxy` needs the `service` to reach",
                );
            }
            _ => {}
        }
    }
}

/// ConfigMap keys become environment variables through envFrom, so they follow both rules.
fn check_config_keys(d: &mut Diagnostics, field: &str, env: &Environment) {
    for key in env.config.keys() {
        let pos = env.pos_of(&format!("config.{key}"));
        let valid = !key.is_empty()
            && key.len() <= 253
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && !key.bytes().next().is_some_and(|b| b.is_ascii_digit());
        if !valid {
            d.error(
                pos,
                &format!("{field}.config.{key}"),
                format!("{key:?} is not a valid configuration key: letters, digits, `_`, `-` and `.`, not starting with a digit"),
            );
        }
        let from_flags = key == FEATURE_FLAGS_KEY
            || env
                .feature_flags
                .keys()
                .any(|f| feature_env_name(f) == *key);
        if from_flags {
            d.error(
                pos,
                &format!("{field}.config.{key}"),
                format!("`{key}` is set from featureFlags; remove it from config"),
            );
        }
    }
}

fn check_flags(d: &mut Diagnostics, field: &str, env: &Environment) {
    let mut by_env_name: BTreeMap<String, &str> = BTreeMap::new();
    for flag in env.feature_flags.keys() {
        let pos = env.pos_of(&format!("featureFlags.{flag}"));
        let name = feature_env_name(flag);
        if name == FEATURE_FLAGS_KEY {
            d.error(
                pos,
                &format!("{field}.featureFlags.{flag}"),
                format!("flag `{flag}` would become {FEATURE_FLAGS_KEY}, which holds all flags as JSON: rename it"),
            );
        } else if let Some(other) = by_env_name.insert(name.clone(), flag) {
            d.error(
                pos,
                &format!("{field}.featureFlags.{flag}"),
                format!("flags `{other}` and `{flag}` both become {name}"),
            );
        }
    }
}

/// The ConfigMap key holding all feature flags as one JSON object.
pub const FEATURE_FLAGS_KEY: &str = "FEATURE_FLAGS";

/// `newDashboard` → `FEATURE_NEW_DASHBOARD`, `beta-features` → `FEATURE_BETA_FEATURES`.
pub fn feature_env_name(flag: &str) -> String {
    let mut out = String::from("FEATURE_");
    let mut prev_lower = false;
    for c in flag.chars() {
        if c == '-' || c == '_' {
            out.push('_');
            prev_lower = false;
        } else if c.is_ascii_uppercase() && prev_lower {
            out.push('_');
            out.push(c);
            prev_lower = false;
        } else {
            out.push(c.to_ascii_uppercase());
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        }
    }
    out
}

/// Whether following `requires` from `name` comes back to it (reported once by `check_cycles`).
fn in_cycle(config: &Config, name: &str) -> bool {
    let mut current = name;
    for _ in 0..config.environments.len() {
        match config
            .environment(current)
            .and_then(|e| e.requires.as_deref())
        {
            Some(next) if next == name => return true,
            Some(next) => current = next,
            None => return false,
        }
    }
    false
}

fn check_cycles(d: &mut Diagnostics, config: &Config) {
    let requires: HashMap<&str, &str> = config
        .environments
        .iter()
        .filter_map(|e| e.requires.as_deref().map(|r| (e.name.as_str(), r)))
        .collect();
    let mut reported: Vec<&str> = Vec::new();
    for env in &config.environments {
        let mut chain = vec![env.name.as_str()];
        let mut current = env.name.as_str();
        while let Some(&next) = requires.get(current) {
            if next == env.name && chain.len() > 1 {
                if !chain.iter().any(|c| reported.contains(c)) {
                    chain.push(next);
                    d.error(
                        env.pos_of("requires"),
                        &format!("environments.{}.requires", env.name),
                        format!("circular requirement: {}", chain.join(" → ")),
                    );
                    reported.extend(chain.iter().copied());
                }
                break;
            }
            if chain.contains(&next) || chain.len() > config.environments.len() {
                break;
            }
            chain.push(next);
            current = next;
        }
    }
}

/// Two services applying objects of the same kind and name would overwrite each other.
fn check_object_names_unique(d: &mut Diagnostics, config: &Config) {
    let mut owners: HashMap<(String, String), (&str, &Manifest)> = HashMap::new();
    for service in &config.services {
        for m in &service.manifests {
            let key = (m.kind().to_string(), m.name().to_string());
            match owners.get(&key) {
                Some((other, first)) if *other != service.name => d.error_in(
                    &m.file,
                    m.name_pos,
                    "metadata.name",
                    format!(
                        "{} `{}` is also defined by service `{other}` ({}:{})",
                        m.kind(),
                        m.name(),
                        first.file.display(),
                        first.name_pos.line
                    ),
                ),
                Some(_) => {}
                None => {
                    owners.insert(key, (&service.name, m));
                }
            }
        }
    }
}

fn is_label_value(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_flag_env_names() {
        assert_eq!(feature_env_name("newDashboard"), "FEATURE_NEW_DASHBOARD");
        assert_eq!(feature_env_name("betaFeatures"), "FEATURE_BETA_FEATURES");
        assert_eq!(feature_env_name("debug-mode"), "FEATURE_DEBUG_MODE");
        assert_eq!(feature_env_name("v2Api"), "FEATURE_V2_API");
        assert_eq!(feature_env_name("flags"), FEATURE_FLAGS_KEY);
    }

    #[test]
    fn repositories() {
        let check = |image| check_repository(image, "r.io");
        assert!(check("studysphere/auth-service").is_ok());
        assert!(check("studysphere/auth-service:1.0").is_err());
        assert!(check("Studysphere/auth").is_err());
        assert!(check("a//b").is_err());
        assert!(
            check("r.io/team/web")
                .unwrap_err()
                .contains("without the registry host")
        );
    }
}
