//! The plan as a job summary (the seed's Environment Comparison, the promotion map, the rendered
//! YAML), as terminal text, and as JSON.

use serde_json::{Value, json};

use crate::actions::{Priority, Summary, table};
use crate::config::{Config, Environment, units::format_duration};
use crate::plan::{Against, Change, ChangeSet, Changes, Plan, to_yaml};
use crate::untrusted::{code, escape_md, mermaid_text};

/// The plan's job summary, without comparisons.
pub fn plan_summary(config: &Config, plan: &Plan) -> Summary {
    plan_summary_with(config, plan, &Changes::default())
}

/// The plan's job summary: what it covers, the changes found (against the base branch or the
/// live cluster), the promotion path, the Environment Comparison, the objects, and the
/// rendered YAML of each environment and service.
pub fn plan_summary_with(config: &Config, plan: &Plan, changes: &Changes) -> Summary {
    build_summary(config, plan, changes, true)
}

/// The plan as a pull-request comment: the job summary without the rendered YAML (the
/// comment must stay under GitHub's 65,536 characters; the job summary has it), plus a link to
/// the run.
pub fn plan_comment(
    config: &Config,
    plan: &Plan,
    changes: &Changes,
    run_url: Option<&str>,
) -> Summary {
    let mut summary = build_summary(config, plan, changes, false);
    let footer = match run_url {
        Some(url) => format!(
            "<sub>Rendered YAML and details in the [job summary]({}). Updated on every push by promote-action.</sub>\n",
            url.replace(['(', ')', ' '], "")
        ),
        None => "<sub>Updated on every push by promote-action.</sub>\n".to_string(),
    };
    summary.section(Priority::Essential, footer);
    summary
}

fn build_summary(config: &Config, plan: &Plan, changes: &Changes, with_yaml: bool) -> Summary {
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
    if !changes.warnings.is_empty() {
        let lines: Vec<String> = changes
            .warnings
            .iter()
            .map(|w| format!("> {}", escape_md(w)))
            .collect();
        summary.section(
            Priority::Essential,
            format!("> [!WARNING]\n{}\n\n", lines.join("\n>\n")),
        );
    }
    for set in &changes.sets {
        changes_sections(&mut summary, set);
    }
    summary.section(Priority::High, promotion_map(config));
    summary.section(Priority::Essential, comparison_table(&scope));
    summary.section(Priority::High, objects_table(plan));
    if !with_yaml {
        return summary;
    }
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

fn against_title(against: &Against) -> String {
    match against {
        Against::Base(path) => format!("the base branch ({})", code(&path.display().to_string())),
        Against::Cluster => "the live cluster (server-side dry run)".to_string(),
    }
}

/// `1 changed, 2 added, 5 unchanged`: the counts that are not zero, in a fixed order.
fn counts(env: &crate::plan::EnvironmentChanges) -> String {
    let parts: Vec<String> = [
        Change::Changed,
        Change::Added,
        Change::Removed,
        Change::Failed,
        Change::Unchanged,
    ]
    .into_iter()
    .filter_map(|c| {
        let n = env.count(c);
        (n > 0).then(|| format!("{n} {}", c.word()))
    })
    .collect();
    if parts.is_empty() {
        "no objects".to_string()
    } else {
        parts.join(", ")
    }
}

fn change_cell(change: Change) -> &'static str {
    match change {
        Change::Added => "🟢 added",
        Change::Removed => "🔴 removed",
        Change::Changed => "🟡 changed",
        Change::Unchanged => "unchanged",
        Change::Failed => "⚠️ not compared",
    }
}

/// One comparison: per environment a line of counts and a table of what differs (High), then
/// each differing object's diff, collapsed (Normal: trimmed before the tables are).
fn changes_sections(summary: &mut Summary, set: &ChangeSet) {
    let mut text = format!("### Changes against {}\n\n", against_title(&set.against));
    for env in &set.environments {
        text.push_str(&format!("**{}**: ", escape_md(&env.environment)));
        if let Some(why) = &env.skipped {
            text.push_str(&format!("⚠️ {}\n\n", escape_md(why)));
            continue;
        }
        let differing: Vec<_> = env
            .objects
            .iter()
            .filter(|o| o.change != Change::Unchanged)
            .collect();
        if differing.is_empty() {
            text.push_str(&format!("no changes ({})\n\n", counts(env)));
            continue;
        }
        text.push_str(&format!("{}\n\n", counts(env)));
        let rows: Vec<Vec<String>> = differing
            .iter()
            .map(|o| {
                let lines = if o.change == Change::Failed {
                    o.note.as_deref().map(escape_md).unwrap_or_default()
                } else {
                    let mut cell = format!("+{} −{}", o.added_lines, o.removed_lines);
                    if let Some(note) = &o.note {
                        cell.push_str(&format!("<br>{}", escape_md(note)));
                    }
                    cell
                };
                vec![
                    code(&o.object),
                    escape_md(&o.service),
                    change_cell(o.change).to_string(),
                    lines,
                ]
            })
            .collect();
        text.push_str(&table(&["Object", "Service", "Change", "Lines"], &rows));
        text.push('\n');
    }
    summary.section(Priority::High, text);
    for env in &set.environments {
        for o in &env.objects {
            if o.diff.is_empty() || o.change == Change::Unchanged {
                continue;
            }
            summary.details(
                Priority::Normal,
                &format!(
                    "{} · {} ({}, +{} −{})",
                    env.environment,
                    o.object,
                    o.change.word(),
                    o.added_lines,
                    o.removed_lines
                ),
                &o.diff,
                Some("diff"),
            );
        }
    }
}

/// The comparisons for the terminal: counts per environment and the diff of each changed
/// object (added and removed objects are named; their YAML is in the output directory).
pub fn changes_text(changes: &Changes) -> String {
    let mut out = String::new();
    for set in &changes.sets {
        let title = match &set.against {
            Against::Base(path) => format!("the base branch ({})", path.display()),
            Against::Cluster => "the live cluster".to_string(),
        };
        out.push_str(&format!("\nChanges against {title}\n"));
        for env in &set.environments {
            if let Some(why) = &env.skipped {
                out.push_str(&format!("  {}: {why}\n", env.environment));
                continue;
            }
            out.push_str(&format!("  {}: {}\n", env.environment, counts(env)));
            for o in env.objects.iter().filter(|o| o.change != Change::Unchanged) {
                out.push_str(&format!(
                    "    {:<12} {}{}\n",
                    o.change.word(),
                    o.object,
                    o.note
                        .as_deref()
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default()
                ));
            }
            for o in env.objects.iter().filter(|o| o.change == Change::Changed) {
                out.push('\n');
                out.push_str(&o.diff);
            }
        }
    }
    out
}

/// The comparisons in the JSON report.
pub fn changes_json(changes: &Changes) -> Value {
    json!({
        "warnings": changes.warnings,
        "comparisons": changes.sets.iter().map(|set| json!({
            "against": match &set.against {
                Against::Base(path) => json!({ "base": path.display().to_string() }),
                Against::Cluster => json!("cluster"),
            },
            "environments": set.environments.iter().map(|env| json!({
                "name": env.environment,
                "skipped": env.skipped,
                "objects": env.objects.iter().map(|o| json!({
                    "service": o.service,
                    "object": o.object,
                    "change": o.change.word(),
                    "added": o.added_lines,
                    "removed": o.removed_lines,
                    "note": o.note,
                    "diff": o.diff,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{EnvironmentChanges, ObjectChange, PlanRequest, plan};
    use std::path::{Path, PathBuf};

    fn example() -> (Config, Plan) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("workflows-examples/studysphere/promotion.yml");
        let config = crate::config::load(&path).expect("the example loads");
        let plan = plan(&config, &PlanRequest::default()).expect("the example renders");
        (config, plan)
    }

    fn object(name: &str, change: Change, diff: &str) -> ObjectChange {
        ObjectChange {
            service: "web".into(),
            object: name.into(),
            change,
            diff: diff.into(),
            added_lines: diff
                .lines()
                .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
                .count(),
            removed_lines: diff
                .lines()
                .filter(|l| l.starts_with('-') && !l.starts_with("---"))
                .count(),
            note: None,
        }
    }

    fn changes(diff: &str) -> Changes {
        Changes {
            sets: vec![
                ChangeSet {
                    against: Against::Base(PathBuf::from("base/promotion.yml")),
                    environments: vec![EnvironmentChanges {
                        environment: "development".into(),
                        objects: vec![
                            object("Deployment/<script>x</script>", Change::Changed, diff),
                            object("Service/web", Change::Unchanged, ""),
                            object("ConfigMap/new", Change::Added, "+a: 1\n"),
                        ],
                        skipped: None,
                    }],
                },
                ChangeSet {
                    against: Against::Cluster,
                    environments: vec![EnvironmentChanges {
                        environment: "production".into(),
                        objects: Vec::new(),
                        skipped: Some("not compared: <b>refused</b>".into()),
                    }],
                },
            ],
            warnings: vec!["production: not compared: <b>refused</b>".into()],
        }
    }

    #[test]
    fn changes_show_counts_a_table_and_collapsed_diffs() {
        let (config, plan) = example();
        let diff = "--- base/x\n+++ head/x\n@@ -1 +1 @@\n-image: a\n+image: b ```\n";
        let text = plan_summary_with(&config, &plan, &changes(diff)).render();
        assert!(
            text.contains("### Changes against the base branch (<code>base/promotion.yml</code>)")
        );
        assert!(text.contains("**development**: 1 changed, 1 added, 1 unchanged"));
        assert!(text.contains("| Object | Service | Change | Lines |"));
        assert!(text.contains("| 🟡 changed | +1 −1 |"), "{text}");
        assert!(
            text.contains("<summary>development · Deployment/&lt;script&gt;x&lt;/script&gt; (changed, +1 −1)</summary>"),
            "{text}"
        );
        // The body has a run of three backticks: the fence is longer.
        assert!(text.contains("````diff\n--- base/x\n"), "{text}");
        assert!(
            !text.contains("<script>") && !text.contains("<b>"),
            "{text}"
        );
        assert!(text.contains("### Changes against the live cluster"));
        assert!(text.contains("> [!WARNING]\n> production: not compared: &lt;b&gt;refused"));
        // The changes come before the rendered YAML.
        assert!(text.find("### Changes").unwrap() < text.find("### Promotion path").unwrap());
        assert!(text.contains("```yaml"));
    }

    #[test]
    fn the_comment_leaves_out_the_yaml_and_fits_githubs_limit() {
        let (config, plan) = example();
        let huge: String = (0..20_000).map(|i| format!("+line {i}\n")).collect();
        let comment = plan_comment(
            &config,
            &plan,
            &changes(&huge),
            Some("https://github.com/o/r/actions/runs/1"),
        );
        let text = comment.render_with_budget(60_000);
        assert!(text.len() <= 60_000);
        assert!(!text.contains("```yaml"));
        assert!(text.contains("### Changes against the base branch"));
        assert!(
            text.contains("(trimmed)"),
            "the long diff is trimmed, not dropped"
        );
        assert!(text.contains("[job summary](https://github.com/o/r/actions/runs/1)"));
    }

    #[test]
    fn terminal_text_names_each_change_and_prints_changed_diffs() {
        let text = changes_text(&changes("--- a\n+++ b\n@@ -1 +1 @@\n-x\n+y\n"));
        assert!(text.contains("Changes against the base branch (base/promotion.yml)\n"));
        assert!(text.contains("  development: 1 changed, 1 added, 1 unchanged\n"));
        assert!(text.contains("    changed      Deployment/<script>x</script>\n"));
        assert!(text.contains("\n--- a\n+++ b\n@@ -1 +1 @@\n-x\n+y\n"));
        assert!(text.contains("  production: not compared: <b>refused</b>\n"));
    }
}
