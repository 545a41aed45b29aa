//! The promotion map: every environment of the promotion as a mermaid flowchart node, with the
//! release it runs and this run's state.

use super::run::{PathStep, RunReport, StepState};
use super::text::*;
use crate::untrusted::mermaid_text;

/// The promotion path as a mermaid flowchart: one node per environment with its state, the
/// release it runs and when it got it; this run's environment drawn thicker.
pub(super) fn promotion_path(report: &RunReport) -> String {
    let mut lines = vec!["```mermaid".to_string(), "flowchart LR".to_string()];
    // Node ids come from the position, never from a name: a name is data, an id is syntax.
    let id = |i: usize| format!("step{i}");
    let mut current = None;
    for (i, step) in report.path.iter().enumerate() {
        let is_current = step.environment == report.environment;
        if is_current {
            current = Some(i);
        }
        lines.push(format!(
            "    {}[\"{}\"]",
            id(i),
            step_label(step, is_current, report)
        ));
    }
    if report.path.len() > 1 {
        let chain: Vec<String> = (0..report.path.len()).map(id).collect();
        lines.push(format!("    {}", chain.join(" --> ")));
    }
    lines.extend([
        "    classDef done fill:#dafbe1,stroke:#1a7f37,color:#1f2328".to_string(),
        "    classDef failed fill:#ffebe9,stroke:#cf222e,color:#1f2328".to_string(),
        "    classDef refused fill:#fff8c5,stroke:#9a6700,color:#1f2328".to_string(),
        "    classDef pending fill:#f6f8fa,stroke:#8c959f,color:#57606a,stroke-dasharray: 4 3"
            .to_string(),
        "    classDef current stroke-width:4px".to_string(),
    ]);
    for class in ["done", "failed", "refused", "pending"] {
        let members: Vec<String> = report
            .path
            .iter()
            .enumerate()
            .filter(|(_, s)| step_class(s.state) == class)
            .map(|(i, _)| id(i))
            .collect();
        if !members.is_empty() {
            lines.push(format!("    class {} {class}", members.join(",")));
        }
    }
    if let Some(i) = current {
        lines.push(format!("    class {} current", id(i)));
    }
    lines.push("```".to_string());
    format!("### Promotion path\n\n{}\n", lines.join("\n"))
}

pub(super) fn step_class(state: StepState) -> &'static str {
    match state {
        StepState::Done | StepState::Succeeded => "done",
        StepState::Failed | StepState::RollbackFailed => "failed",
        StepState::Refused => "refused",
        StepState::Pending => "pending",
    }
}

pub(super) fn step_emoji(state: StepState) -> &'static str {
    match state {
        StepState::Done | StepState::Succeeded => "✅",
        StepState::Failed => "❌",
        StepState::RollbackFailed => "🚨",
        StepState::Refused => "⛔",
        StepState::Pending => "⏳",
    }
}

pub(super) fn step_word(state: StepState) -> &'static str {
    match state {
        StepState::Done => "done",
        StepState::Succeeded => "succeeded",
        StepState::Failed => "failed",
        StepState::RollbackFailed => "rollback failed",
        StepState::Refused => "refused",
        StepState::Pending => "pending",
    }
}

/// `development ✅<br/>sha256:3f2a9c1b… · 12:03 · rolling`, every piece of data escaped for mermaid.
pub(super) fn step_label(step: &PathStep, is_current: bool, report: &RunReport) -> String {
    let mut label = format!(
        "{} {}",
        mermaid_text(&step.environment),
        step_emoji(step.state)
    );
    let release = step.release_id.clone().or_else(|| {
        (is_current && !report.release.id.is_empty()).then(|| report.release.id.clone())
    });
    let mut second = Vec::new();
    if let Some(release) = release {
        second.push(mermaid_text(&release));
    }
    if let Some(at) = step.at {
        let reference = report.finished_at.unwrap_or(report.started_at);
        second.push(mermaid_text(&clock(at, reference)));
    }
    if !step.strategy.is_empty() {
        second.push(mermaid_text(&step.strategy));
    }
    if is_current {
        second.push("this run".to_string());
    }
    if !second.is_empty() {
        label.push_str("<br/>");
        label.push_str(&second.join(" · "));
    }
    label
}
