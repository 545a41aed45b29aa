//! The plan as a job summary (the seed's Environment Comparison, the promotion map, the rendered
//! YAML), as terminal text, and as JSON.

use serde_json::{Value, json};

use crate::actions::{Priority, Summary, code, escape_md, table};
use crate::config::{Config, Environment, units::format_duration};
use crate::pipeline::plan::{Plan, to_yaml};

pub fn plan_summary(config: &Config, plan: &Plan) -> Summary {
    let mut summary = Summary::new();
    let scope: Vec<&Environment> = plan
        .environments
        .iter()
        .filter_map(|e| config.environment(&e.name))
        .collect();
    let mut head = format!(
        "## 🗺️ Promotion plan\n\n{} · registry {} · {} service{} · {} environment{}\n\n",
        code(&config.file.display().to_string()),
        code(&config.registry),
        config.services.len(),
        plural(config.services.len()),
        scope.len(),
        plural(scope.len()),
    );
    let unpinned: Vec<&str> = plan
        .images
        .iter()
        .filter(|(_, i)| !i.pinned)
        .map(|(s, _)| s.as_str())
        .collect();
    if !unpinned.is_empty() {
        head.push_str(&format!(
            "> [!NOTE]\n> Not pinned to a digest: {}. Pass `images` (`SERVICE=REGISTRY/REPOSITORY@sha256:…`) to render exactly what a deploy runs.\n\n",
            unpinned.iter().map(|s| code(s)).collect::<Vec<_>>().join(", ")
        ));
    }
    summary.section(Priority::Essential, head);
    summary.section(Priority::High, promotion_map(config));
    summary.section(Priority::Essential, comparison_table(&scope));
    summary.section(Priority::High, objects_table(plan));
    for env in &plan.environments {
        for rendered in &env.services {
            let body = to_yaml(&rendered.objects).unwrap_or_else(|e| format!("# {e}"));
            summary.details(
                Priority::Low,
                &format!(
                    "{} · {} ({} objects)",
                    escape_md(&env.name),
                    escape_md(&rendered.service),
                    rendered.objects.len()
                ),
                &body,
                Some("yaml"),
            );
        }
        if !env.hooks.is_empty() {
            let body = to_yaml(&env.hooks).unwrap_or_else(|e| format!("# {e}"));
            summary.details(
                Priority::Low,
                &format!("{} · pre-deploy hooks", escape_md(&env.name)),
                &body,
                Some("yaml"),
            );
        }
    }
    summary
}

/// The promotion path as a mermaid flowchart: which environment gates which, and how.
fn promotion_map(config: &Config) -> String {
    let id = |name: &str| {
        format!(
            "env_{}",
            name.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        )
    };
    let mut lines = vec!["```mermaid".to_string(), "flowchart LR".to_string()];
    for env in &config.environments {
        lines.push(format!(
            "    {}[\"{}\"]",
            id(&env.name),
            mermaid_text(&env.name)
        ));
    }
    for env in &config.environments {
        if let Some(req) = &env.requires {
            lines.push(format!(
                "    {} -->|{}| {}",
                id(req),
                mermaid_text(&deployment_mode(env)),
                id(&env.name)
            ));
        }
    }
    lines.push("```".to_string());
    format!("### Promotion path\n\n{}\n\n", lines.join("\n"))
}

fn mermaid_text(s: &str) -> String {
    s.replace(['"', '|', '[', ']', '{', '}', '<', '>'], " ")
}

/// The seed's Environment Comparison, generated from the config.
fn comparison_table(envs: &[&Environment]) -> String {
    let mut headers = vec!["Feature"];
    headers.extend(envs.iter().map(|e| e.name.as_str()));
    let headers: Vec<String> = headers
        .iter()
        .map(|h| format!("**{}**", escape_md(h)))
        .collect();
    let header_refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    let row = |label: &str, cell: &dyn Fn(&Environment) -> String| {
        let mut r = vec![format!("**{label}**")];
        r.extend(envs.iter().map(|e| cell(e)));
        r
    };
    let rows = vec![
        row("Namespace", &|e| code(&e.namespace)),
        row("URL", &|e| e.url.as_deref().map_or("—".into(), escape_md)),
        row("Requires", &|e| {
            e.requires.as_deref().map_or("—".into(), escape_md)
        }),
        row("Deployment", &|e| escape_md(&deployment_mode(e))),
        row("Approvers", &|e| {
            if e.approval.reviewers.is_empty() {
                "None".into()
            } else {
                e.approval
                    .reviewers
                    .iter()
                    .map(|r| escape_md(&r.to_string()))
                    .collect::<Vec<_>>()
                    .join("<br>")
            }
        }),
        row("Branches", &|e| {
            if e.approval.branches.is_empty() {
                "any".into()
            } else {
                e.approval
                    .branches
                    .iter()
                    .map(|b| code(b))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        }),
        row("Replicas", &|e| e.replicas.to_string()),
        row("Resources", &|e| {
            let list = |l: &crate::config::ResourceList| {
                l.entries()
                    .map(|(_, q)| escape_md(&q.text))
                    .collect::<Vec<_>>()
                    .join(" / ")
            };
            if e.resources.is_empty() {
                "manifest's own".into()
            } else {
                format!(
                    "requests {}<br>limits {}",
                    list(&e.resources.requests),
                    list(&e.resources.limits)
                )
            }
        }),
        row("Autoscaling", &|e| match &e.autoscaling {
            Some(a) => format!(
                "{}–{} at {}% CPU",
                a.min_replicas, a.max_replicas, a.target_cpu
            ),
            None => "off".into(),
        }),
        row("Config", &|e| {
            if e.config.is_empty() {
                "—".into()
            } else {
                e.config
                    .iter()
                    .map(|(k, v)| format!("{}={}", code(k), escape_md(v)))
                    .collect::<Vec<_>>()
                    .join("<br>")
            }
        }),
        row("Feature flags", &|e| {
            if e.feature_flags.is_empty() {
                "—".into()
            } else {
                e.feature_flags
                    .iter()
                    .map(|(k, v)| match v {
                        Value::Bool(true) => format!("✅ {}", escape_md(k)),
                        Value::Bool(false) => format!("⬜ {}", escape_md(k)),
                        other => format!("{}={}", escape_md(k), escape_md(&other.to_string())),
                    })
                    .collect::<Vec<_>>()
                    .join("<br>")
            }
        }),
        row("Checks", &|e| {
            let mut parts = Vec::new();
            if !e.checks.smoke.is_empty() {
                parts.push(format!("{} smoke", e.checks.smoke.len()));
            }
            if !e.checks.integration.is_empty() {
                parts.push(format!("{} integration", e.checks.integration.len()));
            }
            if let Some(s) = &e.checks.soak {
                parts.push(format!("soak {}", format_duration(s.duration)));
            }
            if parts.is_empty() {
                "—".into()
            } else {
                parts.join(", ")
            }
        }),
        row("SLO", &|e| {
            let mut parts = Vec::new();
            if let Some(u) = e.slo.uptime {
                parts.push(format!("uptime {u}%"));
            }
            if let Some(p) = e.slo.p95_latency {
                parts.push(format!("p95 &lt; {}", format_duration(p)));
            }
            if let Some(p) = e.slo.p99_latency {
                parts.push(format!("p99 &lt; {}", format_duration(p)));
            }
            if let Some(r) = e.slo.error_rate {
                parts.push(format!("errors &lt; {r}%"));
            }
            if parts.is_empty() {
                "None".into()
            } else {
                parts.join("<br>")
            }
        }),
        row("Rollout", &|e| {
            let mut s = format!("timeout {}", format_duration(e.rollout.timeout));
            if let Some(v) = &e.rollout.max_surge {
                s.push_str(&format!(", surge {v}"));
            }
            if let Some(v) = &e.rollout.max_unavailable {
                s.push_str(&format!(", unavailable {v}"));
            }
            s
        }),
        row("On failure", &|e| {
            format!("{:?}", e.on_failure).to_lowercase()
        }),
    ];
    format!(
        "### Environment comparison\n\n{}\n",
        table(&header_refs, &rows)
    )
}

fn deployment_mode(env: &Environment) -> String {
    match (env.needs_approval(), env.approval.wait_timer) {
        (true, 0) => "Manual approval".into(),
        (true, w) => format!("Manual approval, then {w} min wait"),
        (false, 0) => "Automatic".into(),
        (false, w) => format!("Automatic after {w} min"),
    }
}

fn objects_table(plan: &Plan) -> String {
    let rows: Vec<Vec<String>> = plan
        .environments
        .iter()
        .flat_map(|env| {
            env.services.iter().map(move |r| {
                let pinned = plan.images.get(&r.service).is_some_and(|i| i.pinned);
                let objects: Vec<String> = r
                    .objects
                    .iter()
                    .map(|o| {
                        escape_md(&format!(
                            "{}/{}",
                            o["kind"].as_str().unwrap_or(""),
                            o["metadata"]["name"].as_str().unwrap_or("")
                        ))
                    })
                    .collect();
                vec![
                    escape_md(&env.name),
                    escape_md(&r.service),
                    format!(
                        "{}{}",
                        code(&r.image),
                        if pinned { "" } else { " ⚠️ not pinned" }
                    ),
                    objects.join("<br>"),
                ]
            })
        })
        .collect();
    format!(
        "### Rendered objects\n\n{}\n",
        table(
            &["Environment", "Service", "Image", "Objects (apply order)"],
            &rows
        )
    )
}

/// A short human summary for the terminal.
pub fn plan_text(config: &Config, plan: &Plan) -> String {
    let mut out = format!(
        "Plan for {} (registry {})\n",
        config.file.display(),
        config.registry
    );
    for env in &plan.environments {
        let Some(e) = config.environment(&env.name) else {
            continue;
        };
        let gate = match &e.requires {
            Some(r) => format!(", after {r}"),
            None => String::new(),
        };
        out.push_str(&format!(
            "\n{} → namespace {}{gate} · {}\n",
            env.name,
            env.namespace,
            deployment_mode(e)
        ));
        for r in &env.services {
            let pinned = plan.images.get(&r.service).is_some_and(|i| i.pinned);
            out.push_str(&format!(
                "  {:<16} {}{}\n",
                r.service,
                r.image,
                if pinned {
                    ""
                } else {
                    "  (not pinned: pass --image SERVICE=REF@sha256:…)"
                }
            ));
            let objects: Vec<String> = r
                .objects
                .iter()
                .map(|o| {
                    format!(
                        "{}/{}",
                        o["kind"].as_str().unwrap_or(""),
                        o["metadata"]["name"].as_str().unwrap_or("")
                    )
                })
                .collect();
            out.push_str(&format!("  {:<16} {}\n", "", objects.join(", ")));
        }
        for hook in &env.hooks {
            out.push_str(&format!(
                "  {:<16} Job/{} before the rollout\n",
                "pre-deploy",
                hook["metadata"]["name"].as_str().unwrap_or("")
            ));
        }
    }
    out
}

/// The plan as the JSON report: what would be applied where, with image and config hash.
pub fn plan_json(config: &Config, plan: &Plan) -> Value {
    json!({
        "command": "plan",
        "config": config.file.display().to_string(),
        "registry": config.registry,
        "environments": plan.environments.iter().map(|env| json!({
            "name": env.name,
            "namespace": env.namespace,
            "services": env.services.iter().map(|r| json!({
                "name": r.service,
                "image": r.image,
                "pinned": plan.images.get(&r.service).is_some_and(|i| i.pinned),
                "configHash": r.config_hash,
                "objects": r.objects.iter().map(|o| json!({
                    "apiVersion": o["apiVersion"],
                    "kind": o["kind"],
                    "name": o["metadata"]["name"],
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "hooks": env.hooks.iter().map(|h| h["metadata"]["name"].clone()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
