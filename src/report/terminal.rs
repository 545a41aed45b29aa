//! `promote run` in the terminal: a short plain-text rendering, one line per fact.

use super::map::*;
use super::rollout::*;
use super::run::RunReport;
use super::text::*;
use crate::kube::{Diagnosis, HookOutcome};
use crate::outcome::Outcome;
use crate::untrusted::{short_digest, short_sha};

/// A short terminal rendering of `promote run`: verdict, path, images, rollout, checks, cause.
/// Plain text; data from the cluster is put on one line with control characters removed.
pub fn run_text(report: &RunReport) -> String {
    let ending = report.outcome;
    let env = plain(&report.environment);
    let mark = match ending {
        Outcome::Success => "✓",
        Outcome::Refused => "⛔",
        Outcome::RollbackFailed => "🚨",
        _ => "✗",
    };
    let mut out = format!("{mark} {env}: {}\n", plain(&report.summary));
    let mut facts = Vec::new();
    if !report.release.id.is_empty() {
        facts.push(format!("release {}", plain(&report.release.id)));
    }
    if let Some(sha) = &report.sha {
        facts.push(format!("commit {}", plain(short_sha(sha))));
    }
    facts.push(human_ms(report.duration_ms));
    out.push_str(&format!("  {}\n", facts.join(" · ")));
    if report.gate.skipped {
        out.push_str("  WARNING: the promotion gate was skipped (skip-gate)\n");
    }
    if !report.path.is_empty() {
        let path: Vec<String> = report
            .path
            .iter()
            .map(|s| format!("{} ({})", plain(&s.environment), step_word(s.state)))
            .collect();
        out.push_str(&format!("path: {}\n", path.join(" → ")));
    }
    for check in report.gate.checks.iter().filter(|c| !c.passed) {
        out.push_str(&format!(
            "gate: {}: {}\n",
            plain(&check.name),
            plain(&check.detail)
        ));
    }
    if !report.images.is_empty() {
        out.push_str("images:\n");
        let rows: Vec<Vec<String>> = report
            .images
            .iter()
            .map(|i| {
                vec![
                    plain(&i.service),
                    plain(&short_digest(i.digest.as_str())),
                    i.size.map_or(String::new(), human_bytes),
                    format!(
                        "from {}",
                        i.source_environment
                            .as_deref()
                            .map_or("input".into(), plain)
                    ),
                    if i.tags.is_empty() {
                        String::new()
                    } else {
                        format!("tags {}", plain(&i.tags.join(", ")))
                    },
                ]
            })
            .collect();
        out.push_str(&aligned(&rows, "  "));
    }
    if let Some(deploy) = &report.deploy {
        if !deploy.workloads.is_empty() {
            out.push_str("rollout:\n");
            let rows: Vec<Vec<String>> = deploy
                .workloads
                .iter()
                .map(|w| {
                    let revision = match (w.revision_before, w.revision_after) {
                        (Some(b), Some(a)) if a != b => format!("revision {b} → {a}"),
                        (_, Some(a)) => format!("revision {a}"),
                        _ => String::new(),
                    };
                    let mut result = w
                        .rollout
                        .map_or(
                            if w.changed {
                                "not awaited"
                            } else {
                                "unchanged"
                            },
                            |o| rollout_word(o),
                        )
                        .to_string();
                    if let Some(ms) = w.rollout_ms {
                        result.push_str(&format!(" in {}", human_ms(ms)));
                    }
                    if let Some(d) = &w.diagnosis {
                        result.push_str(&format!(": {}", plain(&d.failure.to_string())));
                    }
                    vec![plain(&w.object), revision, result]
                })
                .collect();
            out.push_str(&aligned(&rows, "  "));
            for w in &deploy.workloads {
                if let Some(r) = &w.rollback {
                    let to = r
                        .to_revision
                        .map(|v| format!(" to revision {v}"))
                        .unwrap_or_default();
                    let message = r
                        .message
                        .as_deref()
                        .map(|m| format!(": {}", plain(m)))
                        .unwrap_or_default();
                    out.push_str(&format!(
                        "rollback: {} {}{to}{message}\n",
                        plain(&w.object),
                        r.outcome.word()
                    ));
                }
            }
        }
        for hook in deploy
            .hooks
            .iter()
            .filter(|h| h.outcome == HookOutcome::Failed)
        {
            let why = hook
                .diagnosis
                .as_ref()
                .map(|d| format!(": {}", plain(&d.failure.to_string())))
                .unwrap_or_default();
            out.push_str(&format!("hook {} failed{why}\n", plain(&hook.name)));
        }
        for rejection in &deploy.rejected {
            out.push_str(&format!(
                "rejected: {}: {}\n",
                plain(&rejection.object),
                plain(&rejection.message)
            ));
        }
        if let Some(v) = &deploy.verification {
            out.push_str(&format!("checks: {}\n", plain(&v.summary)));
            for c in &v.checks {
                out.push_str(&format!(
                    "  {} {} {}: {}\n",
                    if c.passed { "✓" } else { "✗" },
                    c.kind.word(),
                    plain(&c.name),
                    plain(&c.numbers())
                ));
            }
        }
    }
    if let Some(github) = &report.github {
        out.push_str(&format!(
            "github: deployment {} ({}) {}\n",
            github.deployment_id,
            if github.reused { "reused" } else { "created" },
            plain(
                &github
                    .statuses
                    .iter()
                    .map(|s| s.word())
                    .collect::<Vec<_>>()
                    .join(" → ")
            )
        ));
    }
    if let Some(url) = &report.run_url {
        out.push_str(&format!("run: {}\n", plain(url)));
    }
    if let Some(url) = &report.environment_url {
        out.push_str(&format!("url: {}\n", plain(url)));
    }
    for warning in report
        .warnings
        .iter()
        .chain(report.deploy.iter().flat_map(|d| &d.warnings))
    {
        out.push_str(&format!("warning: {}\n", plain(warning)));
    }
    out
}

/// A failure's diagnosis for the log: what failed, the pods and their containers, the events and
/// the failing container's last log lines. Lines from the cluster are shown as they came (the
/// console redacts every line it prints).
pub fn diagnosis_text(d: &Diagnosis) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "{}", d.failure);
    if !d.pods.is_empty() {
        out.push_str("Pods:\n");
        for p in &d.pods {
            let _ = writeln!(
                out,
                "  {} {}{}{}",
                p.name,
                p.phase,
                if p.ready { ", ready" } else { "" },
                p.scheduling
                    .as_deref()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default()
            );
            for c in &p.containers {
                let _ = writeln!(
                    out,
                    "    {}: {}, {} restarts{}",
                    c.name,
                    c.state,
                    c.restarts,
                    c.last_termination
                        .as_deref()
                        .map(|t| format!(", last: {t}"))
                        .unwrap_or_default()
                );
            }
        }
    }
    if !d.events.is_empty() {
        out.push_str("Events:\n");
        for e in &d.events {
            let _ = writeln!(
                out,
                "  {} {} {} {}{}",
                e.time.as_deref().unwrap_or("-"),
                e.type_,
                e.reason,
                e.object,
                if e.message.is_empty() {
                    String::new()
                } else {
                    format!(": {}", e.message)
                }
            );
        }
    }
    if let Some(logs) = &d.logs {
        let _ = writeln!(
            out,
            "Last {} log lines of {}/{}{}:",
            logs.lines.len(),
            logs.pod,
            logs.container,
            if logs.previous {
                " (previous instance)"
            } else {
                ""
            }
        );
        for line in &logs.lines {
            let _ = writeln!(out, "│ {line}");
        }
    }
    out.truncate(out.trim_end().len());
    out
}
