//! `promote drift`: the environments side by side, as a job summary (a table per service,
//! environments as columns, differences marked) and as terminal text (only what differs).
//!
//! Secret values never reach this file: the report holds a per-run keyed hash of each one, and
//! cells show that hash behind a 🔒.

use super::text::{aligned, digest_code, plain, plural, time_text};
use crate::actions::{Priority, Summary, table};
use crate::drift::{Cell, Class, DriftReport, HandEdit, Row, ServiceDrift, Shown};
use crate::untrusted::{code, cut, escape_md, escape_md_with_code, short_digest};

/// Longest value a table cell shows; the JSON report has it whole.
const CELL_CHARS: usize = 80;

/// The job summary: the verdict, then one table per service with every row it compares.
pub fn drift_summary(report: &DriftReport) -> Summary {
    let mut summary = Summary::new();
    let mut head = format!(
        "## 🔍 Environment drift\n\n{}\n\nLive from each environment's cluster, against what \
         promotion.yml renders for it · {} environment{} · {} service{}. \
         ℹ️ declared · ⚠️ undeclared · ✋ hand edit · 🔒 a Secret value's hash (keyed for this \
         run: it tells environments apart and reveals nothing).\n",
        verdict(report),
        report.environments.len(),
        plural(report.environments.len()),
        report.services.len(),
        plural(report.services.len()),
    );
    let unreadable: Vec<_> = report.unreadable().collect();
    if !unreadable.is_empty() {
        head.push_str("\n> [!WARNING]\n");
        let lines: Vec<String> = unreadable
            .iter()
            .map(|c| {
                format!(
                    "> **{}** (namespace {}): the cluster could not be read: {}\n",
                    escape_md_with_code(&c.environment),
                    code(&c.namespace),
                    escape_md_with_code(c.error.as_deref().unwrap_or_default())
                )
            })
            .collect();
        head.push_str(&lines.join(">\n"));
    }
    summary.section(Priority::Essential, head);

    for service in &report.services {
        let differs = service.rows.iter().any(|r| r.class.is_some());
        let priority = if differs || !service.hand_edits.is_empty() {
            Priority::High
        } else {
            Priority::Normal
        };
        summary.section(priority, service_section(report, service));
    }
    summary
}

/// `✅ No undeclared drift …` or `❌ 2 undeclared differences and 1 hand edit`.
fn verdict(report: &DriftReport) -> String {
    let declared = report.count(Class::Declared);
    let undeclared = report.count(Class::UndeclaredBetweenEnvironments);
    let edits: usize = report.services.iter().map(|s| s.hand_edits.len()).sum();
    if report.undeclared() {
        let mut parts = Vec::new();
        if undeclared > 0 {
            parts.push(format!(
                "{undeclared} difference{} promotion.yml does not declare",
                plural(undeclared)
            ));
        }
        if edits > 0 {
            parts.push(format!("{edits} hand edit{}", plural(edits)));
        }
        format!("❌ **Undeclared drift**: {}.", parts.join(" and "))
    } else {
        format!(
            "✅ **No undeclared drift**: the environments differ only as promotion.yml declares \
             ({declared} declared difference{}).",
            plural(declared)
        )
    }
}

fn service_section(report: &DriftReport, service: &ServiceDrift) -> String {
    let mut out = format!("### {}\n\n", code(&service.service));
    if !service.not_deployed.is_empty() {
        out.push_str(&format!(
            "Not deployed in {}.\n\n",
            service
                .not_deployed
                .iter()
                .map(|e| format!("**{}**", escape_md(e)))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for runs in &service.runs_as {
        out.push_str(&format!(
            "In **{}**, {} runs as {}, the colour its Service selects.\n\n",
            escape_md(&runs.environment),
            code(&runs.workload),
            code(&runs.object)
        ));
    }
    let mut headers = vec!["What".to_string()];
    headers.extend(
        report
            .environments
            .iter()
            .map(|c| format!("**{}**", escape_md(&c.environment))),
    );
    headers.push(String::new());
    let header_refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    let several_workloads = service
        .rows
        .windows(2)
        .any(|w| w[0].workload != w[1].workload);
    let rows: Vec<Vec<String>> = service
        .rows
        .iter()
        .map(|row| {
            let mut label = escape_md(&row.aspect.label());
            if several_workloads {
                label = format!("{} {label}", code(&row.workload));
            }
            if row.class.is_some() {
                label = format!("**{label}**");
            }
            let mut cells = vec![label];
            for (i, cell) in row.cells.iter().enumerate() {
                let column = &report.environments[i];
                cells.push(cell_markdown(
                    cell,
                    column.error.is_some(),
                    service.not_deployed.contains(&column.environment),
                ));
            }
            cells.push(class_markdown(row.class).to_string());
            cells
        })
        .collect();
    out.push_str(&table(&header_refs, &rows));
    if !service.hand_edits.is_empty() {
        out.push_str("\n**Hand edits** (fields owned by a manager other than promote-action):\n\n");
        for edit in &service.hand_edits {
            out.push_str(&format!("- {}\n", hand_edit_markdown(edit)));
        }
    }
    out
}

fn class_markdown(class: Option<Class>) -> &'static str {
    match class {
        None => "",
        Some(Class::Declared) => "ℹ️ declared",
        Some(Class::UndeclaredBetweenEnvironments) => "⚠️ undeclared",
        Some(Class::HandEdit) => "✋ hand edit",
    }
}

fn cell_markdown(cell: &Cell, unreadable: bool, not_deployed: bool) -> String {
    let Some(live) = &cell.live else {
        return if unreadable {
            "⚠️ unreadable".to_string()
        } else if not_deployed {
            "— not deployed".to_string()
        } else {
            "—".to_string()
        };
    };
    let mut out = shown_markdown(live);
    if let Some(declared) = cell.declared.as_ref().filter(|d| *d != live) {
        out.push_str(&format!("<br>promotion.yml: {}", shown_markdown(declared)));
    }
    if !cell.edited_by.is_empty() {
        let managers: Vec<String> = cell.edited_by.iter().map(|m| code(m)).collect();
        out.push_str(&format!("<br>✋ {}", managers.join(", ")));
    }
    out
}

fn shown_markdown(shown: &Shown) -> String {
    match shown {
        Shown::Absent => "— *not set*".to_string(),
        Shown::Text(t) if is_digest(t) => digest_code(t),
        Shown::Text(t) => code(&cut(t, CELL_CHARS)),
        Shown::Hashed(h) => format!("🔒 {}", code(h)),
        Shown::Unresolved(why) => format!("⚠️ {}", escape_md(why)),
    }
}

fn hand_edit_markdown(edit: &HandEdit) -> String {
    let mut when = vec![escape_md(&edit.operation)];
    if let Some(at) = edit.time.map(time_text) {
        when.push(at);
    }
    when.push(
        if edit.since_promotion {
            "after the last promotion"
        } else {
            "before the last promotion, still in effect"
        }
        .to_string(),
    );
    let fields: Vec<String> = edit.fields.iter().map(|f| code(f)).collect();
    format!(
        "**{}** {}: {} ({}): {}",
        escape_md(&edit.environment),
        code(&edit.object),
        code(&edit.manager),
        when.join(", "),
        fields.join(", ")
    )
}

/// The terminal form: the verdict, then per service only the rows that differ, aligned, with
/// the hand edits and the environments that could not be read.
pub fn drift_text(report: &DriftReport) -> String {
    let plain_verdict = verdict(report).replace("**", "");
    let mut out = format!("Environment drift (live against promotion.yml): {plain_verdict}\n");
    for service in &report.services {
        let differing: Vec<&Row> = service.rows.iter().filter(|r| r.class.is_some()).collect();
        out.push_str(&format!("\n{}", plain(&service.service)));
        if !service.not_deployed.is_empty() {
            let names: Vec<String> = service.not_deployed.iter().map(|e| plain(e)).collect();
            out.push_str(&format!(" (not deployed in {})", names.join(", ")));
        }
        for runs in &service.runs_as {
            out.push_str(&format!(
                " ({} runs {} as {})",
                plain(&runs.environment),
                plain(&runs.workload),
                plain(&runs.object)
            ));
        }
        out.push('\n');
        if differing.is_empty() && service.hand_edits.is_empty() {
            out.push_str(&format!(
                "  the same in every environment ({} row{} compared)\n",
                service.rows.len(),
                plural(service.rows.len())
            ));
            continue;
        }
        let mut rows = vec![
            std::iter::once("WHAT".to_string())
                .chain(
                    report
                        .environments
                        .iter()
                        .map(|c| plain(&c.environment).to_uppercase()),
                )
                .chain(std::iter::once("DIFFERENCE".to_string()))
                .collect::<Vec<_>>(),
        ];
        for row in &differing {
            let mut line = vec![plain(&format!("{} {}", row.workload, row.aspect.label()))];
            for (i, cell) in row.cells.iter().enumerate() {
                line.push(cell_text(cell, report.environments[i].error.is_some()));
            }
            line.push(row.class.map_or("", Class::word).to_string());
            rows.push(line);
        }
        if !differing.is_empty() {
            out.push_str(&aligned(&rows, "  "));
        }
        let same = service.rows.len() - differing.len();
        if same > 0 {
            out.push_str(&format!(
                "  ({same} more row{} the same in every environment)\n",
                plural(same)
            ));
        }
        for edit in &service.hand_edits {
            out.push_str(&format!("  hand edit: {}\n", hand_edit_text(edit)));
        }
    }
    for column in report.unreadable() {
        out.push_str(&format!(
            "error: {}: the cluster could not be read: {}\n",
            plain(&column.environment),
            plain(column.error.as_deref().unwrap_or_default())
        ));
    }
    out
}

fn cell_text(cell: &Cell, unreadable: bool) -> String {
    let Some(live) = &cell.live else {
        return if unreadable { "(unreadable)" } else { "-" }.to_string();
    };
    let mut out = shown_text(live);
    if let Some(declared) = cell.declared.as_ref().filter(|d| *d != live) {
        out.push_str(&format!(" (promotion.yml: {})", shown_text(declared)));
    }
    if !cell.edited_by.is_empty() {
        let managers: Vec<String> = cell.edited_by.iter().map(|m| plain(m)).collect();
        out.push_str(&format!(" [edited by {}]", managers.join(", ")));
    }
    out
}

fn shown_text(shown: &Shown) -> String {
    match shown {
        Shown::Absent => "(not set)".to_string(),
        Shown::Text(t) if is_digest(t) => short_digest(t),
        Shown::Text(t) => plain(&cut(t, CELL_CHARS)),
        Shown::Hashed(h) => format!("secret {}", plain(h)),
        Shown::Unresolved(why) => format!("({})", plain(why)),
    }
}

fn hand_edit_text(edit: &HandEdit) -> String {
    let when = edit
        .time
        .map(time_text)
        .map_or(String::new(), |t| format!(" at {t}"));
    let order = if edit.since_promotion {
        "after the last promotion"
    } else {
        "before the last promotion, still in effect"
    };
    format!(
        "{} {} by {} ({}{when}, {order}): {}",
        plain(&edit.environment),
        plain(&edit.object),
        plain(&edit.manager),
        plain(&edit.operation),
        plain(&edit.fields.join(", "))
    )
}

/// A whole `sha256:` digest (64 hex digits), shown short.
fn is_digest(text: &str) -> bool {
    text.strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::drift_text as terminal_text;
    use super::*;
    use crate::drift::{Aspect, Column, RunsAs};

    const DIGEST: &str = "sha256:4f1c2a9b0d3e4f1c2a9b0d3e4f1c2a9b0d3e4f1c2a9b0d3e4f1c2a9b0d3e4f1c";

    fn value(s: &str) -> Option<Shown> {
        Some(Shown::Text(s.into()))
    }

    fn cell(live: Option<Shown>, declared: Option<Shown>, edited_by: &[&str]) -> Cell {
        Cell {
            live,
            declared,
            edited_by: edited_by.iter().map(|m| m.to_string()).collect(),
        }
    }

    fn row(aspect: Aspect, class: Option<Class>, cells: Vec<Cell>) -> Row {
        Row {
            workload: "deployment/web".into(),
            aspect,
            class,
            cells,
        }
    }

    fn env(container: &str, name: &str) -> Aspect {
        Aspect::Env {
            container: container.into(),
            name: name.into(),
        }
    }

    fn report() -> DriftReport {
        let column = |name: &str, error: Option<&str>| Column {
            environment: name.into(),
            namespace: name.into(),
            error: error.map(str::to_string),
        };
        DriftReport {
            environments: vec![
                column("staging", None),
                column("production", None),
                column("preview", Some("403 Forbidden | <b>")),
            ],
            services: vec![ServiceDrift {
                service: "web".into(),
                not_deployed: Vec::new(),
                runs_as: vec![RunsAs {
                    environment: "production".into(),
                    workload: "deployment/web".into(),
                    object: "deployment/web-green".into(),
                }],
                rows: vec![
                    row(
                        Aspect::Image {
                            container: "web".into(),
                        },
                        None,
                        vec![
                            cell(value(DIGEST), None, &[]),
                            cell(value(DIGEST), None, &[]),
                            cell(None, None, &[]),
                        ],
                    ),
                    row(
                        Aspect::Replicas,
                        Some(Class::HandEdit),
                        vec![
                            cell(value("1"), value("1"), &[]),
                            cell(value("5"), value("3"), &["kubectl-edit"]),
                            cell(None, None, &[]),
                        ],
                    ),
                    row(
                        env("web", "LOG_LEVEL"),
                        Some(Class::UndeclaredBetweenEnvironments),
                        vec![
                            cell(value("info"), value("info"), &[]),
                            cell(value("debug"), value("info"), &[]),
                            cell(None, None, &[]),
                        ],
                    ),
                    row(
                        env("web", "TOKEN"),
                        Some(Class::Declared),
                        vec![
                            cell(Some(Shown::Hashed("sha256:111111111111".into())), None, &[]),
                            cell(Some(Shown::Hashed("sha256:222222222222".into())), None, &[]),
                            cell(None, None, &[]),
                        ],
                    ),
                ],
                hand_edits: vec![HandEdit {
                    environment: "production".into(),
                    object: "deployment/web".into(),
                    manager: "kubectl-edit".into(),
                    operation: "Update".into(),
                    time: "2025-03-14T11:00:00Z".parse().ok(),
                    since_promotion: true,
                    fields: vec![".spec.replicas".into()],
                }],
            }],
        }
    }

    #[test]
    fn summary_is_a_table_per_service_with_differences_marked() {
        let out = drift_summary(&report()).render();
        for want in [
            "## 🔍 Environment drift\n",
            "❌ **Undeclared drift**: 1 difference promotion.yml does not declare and 1 hand edit.",
            "> **preview** (namespace <code>preview</code>): the cluster could not be read: 403 Forbidden \\| &lt;b&gt;",
            "### <code>web</code>",
            "In **production**, <code>deployment/web</code> runs as <code>deployment/web-green</code>, the colour its Service selects.",
            "| What | **staging** | **production** | **preview** |  |",
            "| image (web) | <code title=\"sha256:4f1c2a9b0d3e4f1c2a9b0d3e4f1c2a9b0d3e4f1c2a9b0d3e4f1c2a9b0d3e4f1c\">sha256:4f1c2a9b0d3e</code> |",
            "| **replicas** | <code>1</code> | <code>5</code><br>promotion.yml: <code>3</code><br>✋ <code>kubectl-edit</code> | ⚠️ unreadable | ✋ hand edit |",
            "| **env LOG\\_LEVEL (web)** | <code>info</code> | <code>debug</code><br>promotion.yml: <code>info</code> | ⚠️ unreadable | ⚠️ undeclared |",
            "| **env TOKEN (web)** | 🔒 <code>sha256:111111111111</code> | 🔒 <code>sha256:222222222222</code> | ⚠️ unreadable | ℹ️ declared |",
            "- **production** <code>deployment/web</code>: <code>kubectl-edit</code> (Update, 2025-03-14 11:00:00 UTC, after the last promotion): <code>.spec.replicas</code>",
        ] {
            assert!(out.contains(want), "missing {want:?} in\n{out}");
        }
    }

    #[test]
    fn terminal_text_shows_only_what_differs() {
        let out = terminal_text(&report());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "Environment drift (live against promotion.yml): ❌ Undeclared drift: 1 difference promotion.yml does not declare and 1 hand edit."
        );
        assert_eq!(
            lines[2],
            "web (production runs deployment/web as deployment/web-green)"
        );
        assert!(lines[3].starts_with("  WHAT  "), "{out}");
        assert!(
            out.contains("5 (promotion.yml: 3) [edited by kubectl-edit]"),
            "{out}"
        );
        assert!(out.contains("secret sha256:222222222222"), "{out}");
        assert!(
            !out.contains("image (web)"),
            "equal rows are counted, not shown:\n{out}"
        );
        assert!(out.contains("  (1 more row the same in every environment)\n"));
        assert!(out.contains(
            "  hand edit: production deployment/web by kubectl-edit (Update at 2025-03-14 11:00:00 UTC, after the last promotion): .spec.replicas\n"
        ));
        assert!(
            out.ends_with("error: preview: the cluster could not be read: 403 Forbidden | <b>\n")
        );
    }

    #[test]
    fn no_drift_reads_as_success() {
        let mut r = report();
        r.environments.truncate(2);
        let web = &mut r.services[0];
        web.hand_edits.clear();
        web.rows
            .retain(|row| row.class.is_none() || row.class == Some(Class::Declared));
        for row in &mut web.rows {
            row.cells.truncate(2);
        }
        assert!(!r.undeclared());
        let out = drift_summary(&r).render();
        assert!(
            out.contains("✅ **No undeclared drift**: the environments differ only as promotion.yml declares (1 declared difference)."),
            "{out}"
        );
        assert!(!out.contains("[!WARNING]"));
        r.services[0].rows.retain(|row| row.class.is_none());
        r.services[0].runs_as.clear();
        assert!(
            terminal_text(&r).contains("web\n  the same in every environment (1 row compared)\n")
        );
    }
}
