//! What a deploy changed and why it failed: the rollout table, the diagnosis of each failed
//! workload or hook with its log tail, and the rollback.

use k8s_openapi::jiff::Timestamp;

use super::deploy::{DeployReport, RollbackOutcome, RollbackReport, WorkloadReport};
use super::text::*;
use crate::actions::{Priority, Summary, table};
use crate::kube::{Diagnosis, HookOutcome, LogTail, RolloutOutcome};
use crate::untrusted::{code, escape_md_with_code, html_text};

/// A log line longer than this is cut: one runaway line (a minified stack trace, a JSON blob)
/// would otherwise cost the whole log section, since the summary trims on line boundaries.
pub(super) const LOG_LINE_LIMIT: usize = 2000;

/// What the deploy changed: one row per workload, hooks and locks below.
pub(super) fn rollout_section(deploy: &DeployReport) -> Option<String> {
    if deploy.workloads.is_empty() && deploy.hooks.is_empty() {
        return None;
    }
    let mut out = format!("### Rollout in {}\n\n", code(&deploy.namespace));
    let mut facts = Vec::new();
    if let Some(cluster) = &deploy.cluster {
        facts.push(format!("cluster {}", escape_md_with_code(cluster)));
    }
    if deploy.namespace_created {
        facts.push("namespace created".to_string());
    }
    if !deploy.applied.is_empty() {
        facts.push(format!(
            "{} object{} applied",
            deploy.applied.len(),
            plural(deploy.applied.len())
        ));
    }
    for lock in &deploy.locks {
        let mut text = format!("lock {}", code(&lock.lease));
        if lock.waited_ms >= 1000 {
            text.push_str(&format!(" (waited {})", human_ms(lock.waited_ms)));
        }
        if let Some(previous) = &lock.took_over_from {
            text.push_str(&format!(
                ", taken over from {}",
                escape_md_with_code(previous)
            ));
        }
        facts.push(text);
    }
    if !facts.is_empty() {
        out.push_str(&facts.join(" · "));
        out.push_str("\n\n");
    }
    if !deploy.workloads.is_empty() {
        // Pods are only listed for a failed rollout (its diagnosis); a complete one is all
        // ready, so the column is shown only when there is something to say.
        let pods = deploy.workloads.iter().any(|w| w.diagnosis.is_some());
        let mut headers = vec!["Workload", "Service", "Revision"];
        if pods {
            headers.push("Pods ready");
        }
        headers.extend(["Took", "Result"]);
        let rows: Vec<Vec<String>> = deploy
            .workloads
            .iter()
            .map(|w| {
                let mut row = workload_row(w);
                if !pods {
                    row.remove(3);
                }
                row
            })
            .collect();
        out.push_str(&table(&headers, &rows));
    }
    if !deploy.hooks.is_empty() {
        out.push_str("\nPre-deploy hooks: ");
        let hooks: Vec<String> = deploy
            .hooks
            .iter()
            .map(|h| {
                let mark = match h.outcome {
                    HookOutcome::Succeeded => "✅",
                    HookOutcome::AlreadySucceeded => "✅ (already ran)",
                    HookOutcome::Failed => "❌",
                };
                format!("{mark} {} {}", code(&h.name), human_ms(h.duration_ms))
            })
            .collect();
        out.push_str(&hooks.join(" · "));
        out.push('\n');
    }
    Some(out)
}

pub(super) fn workload_row(w: &WorkloadReport) -> Vec<String> {
    let revision = match (w.revision_before, w.revision_after) {
        (Some(before), Some(after)) if before != after => format!("{before} → {after}"),
        (Some(_), Some(after)) => format!("{after} (unchanged)"),
        (None, Some(after)) => format!("new → {after}"),
        (Some(before), None) => format!("{before} → ?"),
        (None, None) => "—".to_string(),
    };
    let pods = w.diagnosis.as_ref().map_or("—".to_string(), |d| {
        let ready = d.pods.iter().filter(|p| p.ready).count();
        format!("{ready}/{}", d.pods.len())
    });
    let took = w.rollout_ms.map_or("—".to_string(), human_ms);
    let mut result = match (w.rollout, w.awaited, w.changed) {
        (Some(RolloutOutcome::Complete), _, _) => "✅ complete".to_string(),
        (Some(RolloutOutcome::Failed), _, _) => "❌ failed".to_string(),
        (Some(RolloutOutcome::TimedOut), _, _) => "⏱️ timed out".to_string(),
        (None, false, false) => "unchanged".to_string(),
        (None, _, _) => "not awaited".to_string(),
    };
    if let Some(d) = &w.diagnosis {
        result.push_str(&format!(
            ": {}",
            escape_md_with_code(d.failure.reason.word())
        ));
    }
    if let Some(rollback) = &w.rollback {
        result.push_str(&format!("<br>{}", rollback_word(rollback)));
    }
    vec![
        code(&w.object),
        escape_md_with_code(&w.service),
        revision,
        pods,
        took,
        result,
    ]
}

pub(super) fn rollback_word(rollback: &RollbackReport) -> String {
    let to = rollback
        .to_revision
        .map(|r| format!(" to revision {r}"))
        .unwrap_or_default();
    match rollback.outcome {
        RollbackOutcome::RolledBack => format!("↩️ rolled back{to}"),
        RollbackOutcome::Skipped => format!("↩️ already at the previous revision{to}"),
        RollbackOutcome::NotPossible => "⚠️ no earlier revision to roll back to".to_string(),
        RollbackOutcome::Failed => format!("🚨 rollback{to} failed"),
    }
}

pub(super) fn rollout_word(outcome: RolloutOutcome) -> &'static str {
    match outcome {
        RolloutOutcome::Complete => "complete",
        RolloutOutcome::Failed => "failed",
        RolloutOutcome::TimedOut => "timed out",
    }
}

/// Per failed hook and workload: the classified failure, pods and events in a collapsible
/// section (the first one open), then the container's log tail, trimmed first when space runs
/// short.
pub(super) fn add_diagnostics(summary: &mut Summary, deploy: &DeployReport) {
    let hooks = deploy.hooks.iter().filter_map(|h| {
        h.diagnosis
            .as_ref()
            .map(|d| (format!("hook {}", h.name), d))
    });
    let workloads = deploy
        .workloads
        .iter()
        .filter_map(|w| w.diagnosis.as_ref().map(|d| (w.object.clone(), d)));
    for (n, (subject, diagnosis)) in hooks.chain(workloads).enumerate() {
        let section = diagnosis_section(
            &subject,
            diagnosis,
            if n == 0 { Shown::Open } else { Shown::Closed },
        );
        summary.section(
            Priority::Normal,
            if n == 0 {
                format!("### Diagnostics\n\n{section}")
            } else {
                section
            },
        );
        if let Some(logs) = &diagnosis.logs {
            add_log(summary, logs);
        }
    }
}

/// How a diagnosis section opens. The failure of a workload or hook is already listed under
/// "What went wrong"; a rollback's is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shown {
    /// Expanded, failure not repeated: the main failure.
    Open,
    /// Collapsed, failure not repeated.
    Closed,
    /// Collapsed, with the failure line.
    ClosedWithFailure,
}

pub(super) fn diagnosis_section(subject: &str, diagnosis: &Diagnosis, shown: Shown) -> String {
    let mut out = format!(
        "<details{}><summary>🔍 <b>{}</b>: {}</summary>\n\n",
        if shown == Shown::Open { " open" } else { "" },
        html_text(subject),
        html_text(diagnosis.failure.reason.word())
    );
    if shown == Shown::ClosedWithFailure {
        out.push_str(&failure_md(diagnosis));
        out.push_str("\n\n");
    }
    if !diagnosis.pods.is_empty() {
        let rows: Vec<Vec<String>> = diagnosis
            .pods
            .iter()
            .map(|p| {
                let containers: Vec<String> = p
                    .containers
                    .iter()
                    .map(|c| {
                        let mut text = format!(
                            "{}: {}, {} restart{}",
                            code(&c.name),
                            escape_md_with_code(&c.state),
                            c.restarts,
                            plural(usize::try_from(c.restarts).unwrap_or(0))
                        );
                        if let Some(last) = &c.last_termination {
                            text.push_str(&format!(" (last: {})", escape_md_with_code(last)));
                        }
                        text
                    })
                    .collect();
                let mut phase = escape_md_with_code(&p.phase);
                if let Some(scheduling) = &p.scheduling {
                    phase.push_str(&format!("<br>{}", escape_md_with_code(scheduling)));
                }
                vec![
                    code(&p.name),
                    phase,
                    if p.ready { "✅" } else { "❌" }.to_string(),
                    containers.join("<br>"),
                ]
            })
            .collect();
        out.push_str(&table(&["Pod", "Phase", "Ready", "Containers"], &rows));
        out.push('\n');
    }
    if !diagnosis.events.is_empty() {
        let rows: Vec<Vec<String>> = diagnosis
            .events
            .iter()
            .map(|e| {
                vec![
                    e.time
                        .as_deref()
                        .map(|t| {
                            t.parse::<Timestamp>().map_or_else(
                                |_| escape_md_with_code(t),
                                |at| at.strftime("%H:%M:%S").to_string(),
                            )
                        })
                        .unwrap_or_default(),
                    if e.type_ == "Warning" {
                        "⚠️ Warning".to_string()
                    } else {
                        escape_md_with_code(&e.type_)
                    },
                    escape_md_with_code(&e.reason),
                    code(&e.object),
                    format!(
                        "{}{}",
                        escape_md_with_code(&e.message),
                        if e.count > 1 {
                            format!(" (×{})", e.count)
                        } else {
                            String::new()
                        }
                    ),
                ]
            })
            .collect();
        out.push_str(&table(
            &["Time", "Type", "Reason", "Object", "Message"],
            &rows,
        ));
        out.push('\n');
    }
    out.push_str("</details>\n");
    out
}

pub(super) fn add_log(summary: &mut Summary, logs: &LogTail) {
    let title = format!(
        "Log of {}/{}{}, last {} line{}",
        logs.pod,
        logs.container,
        if logs.previous {
            " (the crashed instance)"
        } else {
            ""
        },
        logs.lines.len(),
        plural(logs.lines.len())
    );
    summary.details(Priority::Low, &title, &log_body(&logs.lines), Some("text"));
}

/// Log lines for a code block: control characters (ANSI colours) dropped, runaway lines cut.
pub(super) fn log_body(lines: &[String]) -> String {
    let mut body = String::new();
    for line in lines {
        let clean: String = line
            .chars()
            .filter(|c| !c.is_control() || *c == '\t')
            .collect();
        if clean.len() > LOG_LINE_LIMIT {
            let mut end = LOG_LINE_LIMIT;
            while !clean.is_char_boundary(end) {
                end -= 1;
            }
            body.push_str(&format!(
                "{}… ({} more bytes)",
                &clean[..end],
                clean.len() - end
            ));
        } else {
            body.push_str(&clean);
        }
        body.push('\n');
    }
    body
}

/// What the automatic rollback did, per workload, and why it failed when it did.
pub(super) fn add_rollback(summary: &mut Summary, deploy: &DeployReport) {
    let rolled: Vec<(&WorkloadReport, &RollbackReport)> = deploy
        .workloads
        .iter()
        .filter_map(|w| w.rollback.as_ref().map(|r| (w, r)))
        .collect();
    if rolled.is_empty() {
        return;
    }
    let details = rolled.iter().any(|(_, r)| r.message.is_some());
    let rows: Vec<Vec<String>> = rolled
        .iter()
        .map(|(w, r)| {
            let outcome = match r.outcome {
                RollbackOutcome::RolledBack => "↩️ rolled back".to_string(),
                RollbackOutcome::Skipped => "↩️ already there".to_string(),
                RollbackOutcome::NotPossible => "⚠️ no earlier revision".to_string(),
                RollbackOutcome::Failed => "🚨 failed".to_string(),
            };
            let mut row = vec![
                code(&w.object),
                r.to_revision.map_or("—".to_string(), |v| v.to_string()),
                r.revision_after.map_or("—".to_string(), |v| v.to_string()),
                outcome,
            ];
            if details {
                row.push(
                    r.message
                        .as_deref()
                        .map(escape_md_with_code)
                        .unwrap_or_default(),
                );
            }
            row
        })
        .collect();
    let mut headers = vec!["Workload", "To revision", "Revision now", "Outcome"];
    if details {
        headers.push("Detail");
    }
    summary.section(
        Priority::High,
        format!("### Rollback\n\n{}", table(&headers, &rows)),
    );
    for (w, r) in rolled {
        if let Some(diagnosis) = &r.diagnosis {
            summary.section(
                Priority::Normal,
                diagnosis_section(
                    &format!("rollback of {}", w.object),
                    diagnosis,
                    Shown::ClosedWithFailure,
                ),
            );
            if let Some(logs) = &diagnosis.logs {
                add_log(summary, logs);
            }
        }
    }
}

/// `**CrashLoopBackOff**: container web is … (pod `web-1`, container `web`)`.
pub(super) fn failure_md(diagnosis: &Diagnosis) -> String {
    let failure = &diagnosis.failure;
    let mut out = format!(
        "**{}**: {}",
        escape_md_with_code(failure.reason.word()),
        escape_md_with_code(&failure.message)
    );
    let mut at = Vec::new();
    if let Some(pod) = &failure.pod {
        at.push(format!("pod {}", code(pod)));
    }
    if let Some(container) = &failure.container {
        at.push(format!("container {}", code(container)));
    }
    if !at.is_empty() {
        out.push_str(&format!(" ({})", at.join(", ")));
    }
    out
}
