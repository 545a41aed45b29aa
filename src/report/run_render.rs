//! Renders a [`RunReport`] (one promotion step) and a [`StatusReport`] (every environment side by
//! side) for people: the job summary, which is the product's face in Actions, and terminal text.
//!
//! Pure: values in, text out. The clock is a parameter (`now`), and every string that came from
//! a user or the cluster goes through [`escape_md`], [`code`] or one of the escapers below before
//! it reaches Markdown, HTML or mermaid.

use k8s_openapi::jiff::Timestamp;

use super::run::{
    EnvironmentStatus, GateCheck, ImageRow, PathStep, RunReport, ServiceStatus, StatusReport,
    StepState,
};
use crate::actions::{Priority, Summary, table};
use crate::checks::VerifyReport;
use crate::kube::diagnose::{Diagnosis, LogTail};
use crate::kube::hooks::HookOutcome;
use crate::kube::rollout::RolloutOutcome;
use crate::pipeline::deploy::{DeployReport, RollbackReport, WorkloadReport};
use crate::untrusted::{
    code, escape_md_with_code, html_text, link, mermaid_text, server_text, short_digest, short_sha,
};

/// A log line longer than this is cut: one runaway line (a minified stack trace, a JSON blob)
/// would otherwise cost the whole log section, since the summary trims on line boundaries.
const LOG_LINE_LIMIT: usize = 2000;

/// Names of failed integration tests listed in the summary; the JUnit report has the rest.
const FAILED_TESTS_SHOWN: usize = 20;

/// How the step ended, from the report's outcome word (the exit code as a word).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Success,
    Failed,
    Invalid,
    Refused,
    RollbackFailed,
    Unknown,
}

impl Ending {
    fn of(outcome: &str) -> Ending {
        match outcome {
            "success" => Ending::Success,
            "failed" => Ending::Failed,
            "invalid" => Ending::Invalid,
            "refused" => Ending::Refused,
            "rollback-failed" => Ending::RollbackFailed,
            _ => Ending::Unknown,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// promote run: the job summary

/// The job summary of `promote run`: verdict and cause first, then the promotion path, the
/// release, the rollout and gate, the checks, the diagnostics and rollback on failure, and the
/// GitHub record. Built so that it stays within the 1 MiB limit whatever the cluster sent:
/// the verdict is [`Priority::Essential`], tables are `High`, diagnostics `Normal` and log tails
/// `Low` (trimmed first).
pub fn run_summary(report: &RunReport) -> Summary {
    let mut summary = Summary::new();
    let ending = Ending::of(&report.outcome);
    summary.section(Priority::Essential, banner(report, ending));
    if let Some(cause) = cause_section(report, ending) {
        summary.section(Priority::Essential, cause);
    }
    if !report.path.is_empty() {
        summary.section(Priority::High, promotion_path(report));
    }
    if !report.images.is_empty() {
        summary.section(Priority::High, images_section(report));
    }
    let deploy = report.deploy.as_ref();
    if let Some(deploy) = deploy
        && let Some(rollout) = rollout_section(deploy)
    {
        summary.section(Priority::High, rollout);
    }
    if let Some(gate) = gate_section(report, ending) {
        summary.section(Priority::High, gate);
    }
    if let Some(verification) = deploy.and_then(|d| d.verification.as_ref()) {
        summary.section(Priority::High, checks_section(verification));
    }
    if let Some(deploy) = deploy {
        add_diagnostics(&mut summary, deploy);
        add_rollback(&mut summary, deploy);
    }
    if let Some(record) = record_section(report) {
        summary.section(Priority::Normal, record);
    }
    summary
}

/// Heading, the summary sentence, and one line of facts with links; the skip-gate caution.
fn banner(report: &RunReport, ending: Ending) -> String {
    let env = escape_md_with_code(&report.environment);
    let rolled_back = report.deploy.iter().flat_map(|d| &d.workloads).any(|w| {
        w.rollback
            .as_ref()
            .is_some_and(|r| r.outcome == "rolled-back")
    });
    let refused_by_gate = report.gate.checks.iter().any(|c| !c.passed);
    let heading = match ending {
        Ending::Success => format!(
            "✅ {env}: promoted release {}",
            escape_md_with_code(&report.release.id)
        ),
        Ending::Failed if rolled_back => format!("❌ {env}: failed — rolled back"),
        Ending::Failed => format!("❌ {env}: failed"),
        Ending::Invalid => format!("🛑 {env}: invalid — nothing was changed"),
        Ending::Refused if refused_by_gate => format!("⛔ {env}: refused by the gate"),
        Ending::Refused => format!("⛔ {env}: refused"),
        Ending::RollbackFailed => format!("🚨 {env}: rollback failed — a human must act"),
        Ending::Unknown => format!("❔ {env}: {}", escape_md_with_code(&report.outcome)),
    };
    let mut out = format!("## {heading}\n\n");
    if !report.summary.is_empty() {
        // The sentence repeats the heading on success; on failure it is the cause: make it loud.
        let sentence = escape_md_with_code(&report.summary);
        out.push_str(&if ending == Ending::Success {
            format!("{sentence}\n\n")
        } else {
            format!("**{sentence}**\n\n")
        });
    }
    let mut facts = Vec::new();
    if let Some(sha) = &report.sha {
        facts.push(format!("commit {}", code(short_sha(sha))));
    }
    if !report.release.id.is_empty() && ending != Ending::Success {
        facts.push(format!("release {}", code(&report.release.id)));
    }
    if let Some(source) = release_source(&report.release.source) {
        facts.push(source);
    }
    facts.push(format!("took {}", human_ms(report.duration_ms)));
    if let Some(url) = &report.run_url {
        facts.push(link("workflow run", url));
    }
    if let Some(url) = &report.environment_url {
        facts.push(link(&format!("open {}", report.environment), url));
    }
    out.push_str(&facts.join(" · "));
    out.push('\n');
    if report.gate.skipped {
        let requires = report.gate.requires.as_deref().map_or_else(
            || "the lower environment".to_string(),
            |r| format!("**{}**", escape_md_with_code(r)),
        );
        out.push_str(&format!(
            "\n> [!CAUTION]\n> **The promotion gate was skipped** (`skip-gate`): this release was \
             deployed to **{env}** without proof that it passed {requires}, and without the \
             branch check. Use it for emergencies only, and promote through the normal path \
             next.\n"
        ));
    }
    out
}

/// "from development", "from the input", or nothing when unknown.
fn release_source(source: &str) -> Option<String> {
    if let Some(env) = source.strip_prefix("environment:") {
        Some(format!("digests from {}", escape_md_with_code(env)))
    } else if source == "input" {
        Some("digests from the input".to_string())
    } else if source.is_empty() {
        None
    } else {
        Some(format!("digests from {}", escape_md_with_code(source)))
    }
}

/// On anything but success: the classified causes as a list, before any table. For a refusal,
/// the gate checks that failed; for a failed rollback, what to do next.
fn cause_section(report: &RunReport, ending: Ending) -> Option<String> {
    if ending == Ending::Success {
        return None;
    }
    let mut items: Vec<String> = Vec::new();
    for check in report.gate.checks.iter().filter(|c| !c.passed) {
        items.push(format!(
            "⛔ **{}** — {}",
            escape_md_with_code(&check.name),
            escape_md_with_code(&check.detail)
        ));
    }
    let deploy = report.deploy.as_ref();
    for rejection in deploy.iter().flat_map(|d| &d.rejected) {
        items.push(format!(
            "{} was refused by the API server: {}",
            code(&rejection.object),
            escape_md_with_code(&rejection.message)
        ));
    }
    for hook in deploy.iter().flat_map(|d| &d.hooks) {
        if hook.outcome == HookOutcome::Failed {
            let why = hook
                .diagnosis
                .as_ref()
                .map(|d| format!(": {}", failure_md(d)))
                .unwrap_or_default();
            items.push(format!(
                "pre-deploy hook {} ({}) failed{why}",
                code(&hook.name),
                code(&format!("job/{}", hook.job))
            ));
        }
    }
    for workload in deploy.iter().flat_map(|d| &d.workloads) {
        if let Some(diagnosis) = &workload.diagnosis {
            items.push(format!(
                "{}: {}",
                code(&workload.object),
                failure_md(diagnosis)
            ));
        } else if let Some(outcome @ (RolloutOutcome::Failed | RolloutOutcome::TimedOut)) =
            workload.rollout
        {
            items.push(format!(
                "{}: rollout {}",
                code(&workload.object),
                rollout_word(outcome)
            ));
        }
    }
    if let Some(v) = deploy.and_then(|d| d.verification.as_ref())
        && !v.passed
    {
        items.push(format!(
            "checks failed: {}",
            escape_md_with_code(&v.summary)
        ));
    }
    let mut failed_rollbacks = Vec::new();
    for workload in deploy.iter().flat_map(|d| &d.workloads) {
        if let Some(rollback) = &workload.rollback
            && rollback.outcome == "failed"
        {
            let to = rollback
                .to_revision
                .map(|r| format!(" to revision {r}"))
                .unwrap_or_default();
            let why = rollback
                .message
                .as_deref()
                .map(|m| format!(": {}", escape_md_with_code(m)))
                .unwrap_or_default();
            items.push(format!(
                "🚨 the rollback of {}{to} failed{why}",
                code(&workload.object)
            ));
            failed_rollbacks.push((workload, rollback));
        }
    }
    if items.is_empty() {
        return None;
    }
    let heading = match ending {
        Ending::Refused => "Why it was refused",
        _ => "What went wrong",
    };
    let mut out = format!("### {heading}\n\n");
    for item in &items {
        out.push_str(&format!("- {item}\n"));
    }
    if ending == Ending::RollbackFailed || !failed_rollbacks.is_empty() {
        let env = &report.environment;
        out.push_str(&format!(
            "\n> [!WARNING]\n> **{}** may be running a broken or half-rolled-out release. Look at \
             the workloads below, then roll back by hand with {} (add `--to-revision N`; \
             `promote history` lists them), or fix forward.\n",
            escape_md_with_code(env),
            code(&format!("promote rollback --environment {env}")),
        ));
    }
    Some(out)
}

/// `**CrashLoopBackOff**: container web is … (pod `web-1`, container `web`)`.
fn failure_md(diagnosis: &Diagnosis) -> String {
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

/// The promotion path as a mermaid flowchart: one node per environment with its state, the
/// release it runs and when it got it; this run's environment drawn thicker.
fn promotion_path(report: &RunReport) -> String {
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

fn step_class(state: StepState) -> &'static str {
    match state {
        StepState::Done | StepState::Succeeded => "done",
        StepState::Failed | StepState::RollbackFailed => "failed",
        StepState::Refused => "refused",
        StepState::Pending => "pending",
    }
}

fn step_emoji(state: StepState) -> &'static str {
    match state {
        StepState::Done | StepState::Succeeded => "✅",
        StepState::Failed => "❌",
        StepState::RollbackFailed => "🚨",
        StepState::Refused => "⛔",
        StepState::Pending => "⏳",
    }
}

fn step_word(state: StepState) -> &'static str {
    match state {
        StepState::Done => "done",
        StepState::Succeeded => "succeeded",
        StepState::Failed => "failed",
        StepState::RollbackFailed => "rollback failed",
        StepState::Refused => "refused",
        StepState::Pending => "pending",
    }
}

/// `development ✅<br/>sha256:3f2a9c1b… · 12:03`, every piece of data escaped for mermaid.
fn step_label(step: &PathStep, is_current: bool, report: &RunReport) -> String {
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
    if let Some(at) = step
        .at
        .as_deref()
        .and_then(|a| clock(a, &report.finished_at))
    {
        second.push(mermaid_text(&at));
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

/// The release: one row per service, digest short with the full one on hover.
fn images_section(report: &RunReport) -> String {
    // One registry for all (the usual case) is said once, so the column stays narrow.
    let registry = report
        .images
        .first()
        .and_then(|i| i.image.split_once('/'))
        .map(|(host, _)| host)
        .filter(|host| {
            report
                .images
                .iter()
                .all(|i| i.image.split_once('/').is_some_and(|(h, _)| h == *host))
        });
    let rows: Vec<Vec<String>> = report
        .images
        .iter()
        .map(|i| image_row(i, registry))
        .collect();
    let mut out = format!(
        "### Release {}\n\n",
        if report.release.id.is_empty() {
            "images".to_string()
        } else {
            code(&report.release.id)
        }
    );
    let mut facts = Vec::new();
    if let Some(sha) = &report.release.sha {
        facts.push(format!("built from commit {}", code(short_sha(sha))));
    }
    if let Some(registry) = registry {
        facts.push(format!("registry {}", code(registry)));
    }
    facts.push(format!(
        "{} service{}",
        report.images.len(),
        plural(report.images.len())
    ));
    if let Some(total) = report
        .images
        .iter()
        .map(|i| i.size)
        .sum::<Option<u64>>()
        .filter(|_| report.images.len() > 1)
    {
        facts.push(format!("{} in all", human_bytes(total)));
    }
    out.push_str(&facts.join(" · "));
    out.push_str("\n\n");
    out.push_str(&table(
        &["Service", "Repository", "Digest", "Tags", "Size", "From"],
        &rows,
    ));
    out
}

fn image_row(image: &ImageRow, registry: Option<&str>) -> Vec<String> {
    let repository = image
        .image
        .split_once('@')
        .map_or(image.image.as_str(), |(repo, _)| repo);
    let repository = registry
        .and_then(|r| repository.strip_prefix(r)?.strip_prefix('/'))
        .unwrap_or(repository);
    let tags = if image.tags.is_empty() {
        "—".to_string()
    } else {
        image
            .tags
            .iter()
            .map(|t| code(t))
            .collect::<Vec<_>>()
            .join(" ")
    };
    vec![
        format!("**{}**", escape_md_with_code(&image.service)),
        code(repository),
        digest_code(&image.digest),
        tags,
        image.size.map_or("—".to_string(), human_bytes),
        image
            .source_environment
            .as_deref()
            .map_or("input".to_string(), escape_md_with_code),
    ]
}

/// `<code title="sha256:full">sha256:3f2a9c1b4d5e</code>`: the short form, the whole on hover.
fn digest_code(digest: &str) -> String {
    format!(
        "<code title=\"{}\">{}</code>",
        html_text(digest),
        html_text(&short_digest(digest))
    )
}

/// What the deploy changed: one row per workload, hooks and locks below.
fn rollout_section(deploy: &DeployReport) -> Option<String> {
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

fn workload_row(w: &WorkloadReport) -> Vec<String> {
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

fn rollback_word(rollback: &RollbackReport) -> String {
    let to = rollback
        .to_revision
        .map(|r| format!(" to revision {r}"))
        .unwrap_or_default();
    match rollback.outcome {
        "rolled-back" => format!("↩️ rolled back{to}"),
        "skipped" => format!("↩️ already at the previous revision{to}"),
        "not-possible" => "⚠️ no earlier revision to roll back to".to_string(),
        "failed" => format!("🚨 rollback{to} failed"),
        other => escape_md_with_code(other),
    }
}

fn rollout_word(outcome: RolloutOutcome) -> &'static str {
    match outcome {
        RolloutOutcome::Complete => "complete",
        RolloutOutcome::Failed => "failed",
        RolloutOutcome::TimedOut => "timed out",
    }
}

/// The gate: every condition checked, or nothing to check for the first environment.
fn gate_section(report: &RunReport, ending: Ending) -> Option<String> {
    let gate = &report.gate;
    if gate.checks.is_empty() && gate.requires.is_none() && !gate.skipped {
        return None;
    }
    let mut out = "### Gate\n\n".to_string();
    match (&gate.requires, gate.skipped) {
        (_, true) => out.push_str("**Skipped** with `skip-gate`: nothing was checked.\n\n"),
        (Some(requires), false) => out.push_str(&format!(
            "Requires the release to have passed **{}**{}.\n\n",
            escape_md_with_code(requires),
            if ending == Ending::Refused && gate.checks.iter().any(|c| !c.passed) {
                ": it has not"
            } else {
                ""
            }
        )),
        (None, false) => {}
    }
    if gate.checks.is_empty() {
        return Some(out);
    }
    let rows: Vec<Vec<String>> = gate.checks.iter().map(gate_row).collect();
    let rows = table(&["Check", "Result", "Detail"], &rows);
    if matches!(ending, Ending::Success | Ending::Refused) || gate.checks.iter().any(|c| !c.passed)
    {
        out.push_str(&rows);
    } else {
        // The gate passed and something later failed: it is not the story, keep it folded.
        out.push_str(&format!(
            "<details><summary>✅ {} check{} passed</summary>\n\n{rows}\n</details>\n",
            gate.checks.len(),
            plural(gate.checks.len())
        ));
    }
    Some(out)
}

fn gate_row(check: &GateCheck) -> Vec<String> {
    vec![
        escape_md_with_code(&check.name),
        if check.passed { "✅" } else { "❌" }.to_string(),
        escape_md_with_code(&check.detail),
    ]
}

/// The environment's checks: each with its numbers, and the SLO objectives measured against.
fn checks_section(v: &VerifyReport) -> String {
    let mut out = format!(
        "### Checks: {}\n\n{} · took {}\n\n",
        if v.passed { "✅ passed" } else { "❌ failed" },
        escape_md_with_code(&v.summary),
        human_ms(v.duration_ms)
    );
    if v.checks.is_empty() {
        return out;
    }
    out.push_str(&v.summary_table());
    let slo_rows: Vec<Vec<String>> = v
        .checks
        .iter()
        .filter_map(|c| c.smoke.as_ref().map(|s| (c, s)))
        .flat_map(|(c, s)| {
            s.slo.iter().map(move |verdict| {
                vec![
                    escape_md_with_code(&c.name),
                    code(verdict.objective),
                    escape_md_with_code(&verdict.target),
                    escape_md_with_code(&verdict.measured),
                    if verdict.passed { "✅" } else { "❌" }.to_string(),
                ]
            })
        })
        .collect();
    if !slo_rows.is_empty() {
        out.push_str("\n**Against the SLO**\n\n");
        out.push_str(&table(
            &["Check", "Objective", "Target", "Measured", "Met"],
            &slo_rows,
        ));
    }
    let failed_tests: Vec<String> = v
        .checks
        .iter()
        .filter_map(|c| c.integration.as_ref()?.junit.as_ref())
        .flat_map(|j| j.failures.iter())
        .map(|name| code(name))
        .collect();
    if !failed_tests.is_empty() {
        let more = failed_tests.len().saturating_sub(FAILED_TESTS_SHOWN);
        out.push_str(&format!(
            "\n**Failed tests:** {}{}\n",
            failed_tests
                .iter()
                .take(FAILED_TESTS_SHOWN)
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ));
    }
    let sampling_errors: Vec<String> = v
        .checks
        .iter()
        .filter_map(|c| c.smoke.as_ref()?.sampling.as_ref().map(|s| (c, s)))
        .flat_map(|(c, s)| {
            s.error_reasons.iter().map(move |e| {
                format!(
                    "{}: {} × {}",
                    escape_md_with_code(&c.name),
                    e.count,
                    escape_md_with_code(&e.reason)
                )
            })
        })
        .collect();
    if !sampling_errors.is_empty() {
        out.push_str(&format!(
            "\n**Failed requests:** {}\n",
            sampling_errors.join("; ")
        ));
    }
    out
}

/// Per failed hook and workload: the classified failure, pods and events in a collapsible
/// section (the first one open), then the container's log tail, trimmed first when space runs
/// short.
fn add_diagnostics(summary: &mut Summary, deploy: &DeployReport) {
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
enum Shown {
    /// Expanded, failure not repeated: the main failure.
    Open,
    /// Collapsed, failure not repeated.
    Closed,
    /// Collapsed, with the failure line.
    ClosedWithFailure,
}

fn diagnosis_section(subject: &str, diagnosis: &Diagnosis, shown: Shown) -> String {
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

fn add_log(summary: &mut Summary, logs: &LogTail) {
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
fn log_body(lines: &[String]) -> String {
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
fn add_rollback(summary: &mut Summary, deploy: &DeployReport) {
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
                "rolled-back" => "↩️ rolled back".to_string(),
                "skipped" => "↩️ already there".to_string(),
                "not-possible" => "⚠️ no earlier revision".to_string(),
                "failed" => "🚨 failed".to_string(),
                other => escape_md_with_code(other),
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

/// The GitHub Deployment this run recorded to, times, and every warning.
fn record_section(report: &RunReport) -> Option<String> {
    let mut out = String::new();
    if let Some(github) = &report.github {
        let statuses: Vec<String> = github.statuses.iter().map(|s| code(s)).collect();
        out.push_str(&format!(
            "GitHub deployment **{}** ({}){}\n\n",
            github.deployment_id,
            if github.reused {
                "made by GitHub for the job's environment"
            } else {
                "created by this run"
            },
            if statuses.is_empty() {
                String::new()
            } else {
                format!(" · statuses {}", statuses.join(" → "))
            }
        ));
    }
    let started = time_text(&report.started_at);
    let finished = time_text(&report.finished_at);
    if let (Some(started), Some(finished)) = (started, finished) {
        out.push_str(&format!(
            "<sub>Started {started} · finished {finished}</sub>\n\n"
        ));
    }
    let warnings: Vec<&String> = report
        .warnings
        .iter()
        .chain(report.deploy.iter().flat_map(|d| &d.warnings))
        .chain(
            report
                .deploy
                .iter()
                .filter_map(|d| d.verification.as_ref())
                .flat_map(|v| &v.warnings),
        )
        .collect();
    if !warnings.is_empty() {
        out.push_str("> [!WARNING]\n");
        for warning in warnings {
            out.push_str(&format!("> - {}\n", escape_md_with_code(warning)));
        }
    }
    (!out.is_empty()).then(|| format!("---\n\n{out}"))
}

// ---------------------------------------------------------------------------------------------
// promote run: terminal text

/// A short terminal rendering of `promote run`: verdict, path, images, rollout, checks, cause.
/// Plain text; data from the cluster is put on one line with control characters removed.
pub fn run_text(report: &RunReport) -> String {
    let ending = Ending::of(&report.outcome);
    let env = plain(&report.environment);
    let mark = match ending {
        Ending::Success => "✓",
        Ending::Refused => "⛔",
        Ending::RollbackFailed => "🚨",
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
                    plain(&short_digest(&i.digest)),
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
                        r.outcome
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
            plain(&github.statuses.join(" → "))
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

// ---------------------------------------------------------------------------------------------
// promote status

/// The live Environment Comparison as a job summary: services as rows, an environment per
/// column, then the differences along the path and any environment that could not be read.
/// Times are absolute (UTC): a job summary is read long after it was written, when "2h ago"
/// would be wrong.
pub fn status_summary(report: &StatusReport) -> Summary {
    let mut summary = Summary::new();
    let services = service_names(report);
    let mut head = format!(
        "## 🌐 Environment comparison\n\nLive from each environment's cluster · {} environment{} \
         · {} service{} · times in UTC\n",
        report.environments.len(),
        plural(report.environments.len()),
        services.len(),
        plural(services.len())
    );
    let unreadable: Vec<&EnvironmentStatus> = report
        .environments
        .iter()
        .filter(|e| e.error.is_some())
        .collect();
    if !unreadable.is_empty() {
        head.push_str("\n> [!WARNING]\n");
        for env in unreadable {
            head.push_str(&format!(
                "> **{}** (namespace {}): the cluster could not be read: {}\n",
                escape_md_with_code(&env.environment),
                code(&env.namespace),
                escape_md_with_code(env.error.as_deref().unwrap_or_default())
            ));
            head.push_str(">\n");
        }
        // The last `>` line would be an empty trailing paragraph.
        head.truncate(head.len() - ">\n".len());
    }
    summary.section(Priority::Essential, head);

    let headers: Vec<String> = std::iter::once("Service".to_string())
        .chain(
            report
                .environments
                .iter()
                .map(|e| format!("**{}**", escape_md_with_code(&e.environment))),
        )
        .collect();
    let header_refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    let mut rows: Vec<Vec<String>> = Vec::new();
    for service in &services {
        let mut row = vec![format!("**{}**", escape_md_with_code(service))];
        for env in &report.environments {
            row.push(status_cell(env, service));
        }
        rows.push(row);
    }
    let mut last = vec!["*Last deployment*".to_string()];
    for env in &report.environments {
        last.push(last_deployment_cell(env));
    }
    rows.push(last);
    let mut namespaces = vec!["*Namespace*".to_string()];
    namespaces.extend(report.environments.iter().map(|e| code(&e.namespace)));
    rows.push(namespaces);
    summary.section(Priority::Essential, table(&header_refs, &rows));

    let differences = differences(report, &services);
    if !differences.is_empty() {
        let mut out = "### Along the path\n\n".to_string();
        for line in differences {
            out.push_str(&format!("- {line}\n"));
        }
        summary.section(Priority::High, out);
    }
    summary
}

/// Every service in first-seen order across environments.
fn service_names(report: &StatusReport) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for env in &report.environments {
        for s in &env.services {
            if !names.contains(&s.service) {
                names.push(s.service.clone());
            }
        }
    }
    names
}

fn find_service<'a>(env: &'a EnvironmentStatus, service: &str) -> Option<&'a ServiceStatus> {
    env.services.iter().find(|s| s.service == service)
}

fn status_cell(env: &EnvironmentStatus, service: &str) -> String {
    if env.error.is_some() {
        return "⚠️ unreadable".to_string();
    }
    let Some(s) = find_service(env, service).filter(|s| s.deployed) else {
        return "— not deployed".to_string();
    };
    let mut lines = Vec::new();
    let mut first = s
        .digest
        .as_deref()
        .map_or("digest unknown".to_string(), digest_code);
    if let (Some(digest), Some(verified)) = (&s.digest, &s.verified_digest) {
        first.push_str(if digest == verified {
            " ✔︎ verified"
        } else {
            " ⚠️ not verified"
        });
    }
    lines.push(first);
    let mut second = Vec::new();
    if let Some(sha) = &s.git_sha {
        second.push(format!("commit {}", code(short_sha(sha))));
    }
    if let Some(revision) = s.revision {
        second.push(format!("rev {revision}"));
    }
    if !second.is_empty() {
        lines.push(second.join(" · "));
    }
    let mut third = Vec::new();
    if let Some(ready) = replicas_text(s) {
        third.push(ready);
    }
    if let Some(since) = s.since.as_deref().and_then(short_time) {
        third.push(format!("since {since}"));
    }
    if let Some(by) = &s.deployed_by {
        third.push(format!("by {}", escape_md_with_code(by)));
    }
    if !third.is_empty() {
        lines.push(third.join(" · "));
    }
    lines.join("<br>")
}

/// `🟢 3/3 ready`, `🟡 1/3 ready`, `🔴 0/3 ready`.
fn replicas_text(s: &ServiceStatus) -> Option<String> {
    let (ready, desired) = (s.ready.unwrap_or(0), s.desired?);
    let light = if ready >= desired && desired > 0 {
        "🟢"
    } else if ready > 0 {
        "🟡"
    } else if desired == 0 {
        "⚪"
    } else {
        "🔴"
    };
    Some(format!("{light} {ready}/{desired} ready"))
}

fn last_deployment_cell(env: &EnvironmentStatus) -> String {
    let mut parts = Vec::new();
    if let Some(outcome) = &env.last_outcome {
        parts.push(format!(
            "{} {}",
            outcome_mark(outcome),
            escape_md_with_code(outcome)
        ));
    }
    if let Some(at) = env.last_deployed_at.as_deref().and_then(short_time) {
        parts.push(at);
    }
    if let Some(by) = &env.last_deployed_by {
        parts.push(format!("by {}", escape_md_with_code(by)));
    }
    if parts.is_empty() {
        "—".to_string()
    } else {
        parts.join(" · ")
    }
}

fn outcome_mark(outcome: &str) -> &'static str {
    match outcome {
        "success" => "✅",
        "failure" | "failed" | "error" | "rollback-failed" => "❌",
        "in_progress" | "queued" | "pending" => "⏳",
        "inactive" => "⚪",
        _ => "•",
    }
}

/// For each environment and the one before it: which services run a different digest.
fn differences(report: &StatusReport, services: &[String]) -> Vec<String> {
    let mut lines = Vec::new();
    for pair in report.environments.windows(2) {
        let (lower, upper) = (&pair[0], &pair[1]);
        if lower.error.is_some() || upper.error.is_some() {
            continue;
        }
        let digest = |env: &EnvironmentStatus, service: &str| {
            find_service(env, service)
                .filter(|s| s.deployed)
                .and_then(|s| s.digest.clone())
        };
        let differing: Vec<String> = services
            .iter()
            .filter(|s| digest(lower, s) != digest(upper, s))
            .map(|s| code(s))
            .collect();
        let (l, u) = (
            escape_md_with_code(&lower.environment),
            escape_md_with_code(&upper.environment),
        );
        lines.push(if differing.is_empty() {
            format!("**{l}** → **{u}**: the same release")
        } else {
            match differing.as_slice() {
                [one] => format!("**{l}** → **{u}**: {one} runs a different digest"),
                many => format!(
                    "**{l}** → **{u}**: {} services run different digests: {}",
                    many.len(),
                    many.join(", ")
                ),
            }
        });
    }
    lines
}

/// The live Environment Comparison for the terminal: one aligned row per environment and
/// service, an error line for an environment whose cluster could not be read.
pub fn status_text(report: &StatusReport, now: Timestamp) -> String {
    let mut out = format!(
        "Environment comparison (live, {})\n\n",
        now.strftime("%Y-%m-%d %H:%M UTC")
    );
    let mut rows = vec![
        [
            "ENVIRONMENT",
            "SERVICE",
            "DIGEST",
            "COMMIT",
            "REV",
            "READY",
            "AGE",
            "BY",
            "VERIFIED",
        ]
        .map(String::from)
        .to_vec(),
    ];
    let mut errors = Vec::new();
    for env in &report.environments {
        if let Some(error) = &env.error {
            errors.push(format!(
                "{}: the cluster could not be read: {}",
                plain(&env.environment),
                plain(error)
            ));
            rows.push(vec![plain(&env.environment), "(unreadable)".to_string()]);
            continue;
        }
        if env.services.is_empty() {
            rows.push(vec![plain(&env.environment), "(no services)".to_string()]);
        }
        for s in &env.services {
            if !s.deployed {
                rows.push(vec![
                    plain(&env.environment),
                    plain(&s.service),
                    "not deployed".to_string(),
                ]);
                continue;
            }
            let dash = || "-".to_string();
            rows.push(vec![
                plain(&env.environment),
                plain(&s.service),
                s.digest
                    .as_deref()
                    .map_or_else(dash, |d| plain(&short_digest(d))),
                s.git_sha
                    .as_deref()
                    .map_or_else(dash, |g| plain(short_sha(g))),
                s.revision.map_or_else(dash, |r| r.to_string()),
                match (s.ready, s.desired) {
                    (r, Some(d)) => format!("{}/{d}", r.unwrap_or(0)),
                    _ => dash(),
                },
                s.since
                    .as_deref()
                    .and_then(|t| age(t, now))
                    .unwrap_or_else(dash),
                s.deployed_by.as_deref().map_or_else(dash, plain),
                match (&s.digest, &s.verified_digest) {
                    (Some(d), Some(v)) if d == v => "yes".to_string(),
                    (_, Some(_)) => "no".to_string(),
                    _ => dash(),
                },
            ]);
        }
    }
    out.push_str(&aligned(&rows, ""));
    let last: Vec<String> = report
        .environments
        .iter()
        .filter(|e| e.last_outcome.is_some() || e.last_deployed_at.is_some())
        .map(|e| {
            let mut text = format!(
                "{} {}",
                plain(&e.environment),
                e.last_outcome.as_deref().map_or("-".into(), plain)
            );
            if let Some(age) = e.last_deployed_at.as_deref().and_then(|t| age(t, now)) {
                text.push_str(&format!(" {age} ago"));
            }
            if let Some(by) = &e.last_deployed_by {
                text.push_str(&format!(" by {}", plain(by)));
            }
            text
        })
        .collect();
    if !last.is_empty() {
        out.push_str(&format!("\nlast deployments: {}\n", last.join("; ")));
    }
    for error in errors {
        out.push_str(&format!("error: {error}\n"));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// small formatters and escapers

/// Rows as columns padded to the widest cell (counted in characters), trailing space trimmed.
fn aligned(rows: &[Vec<String>], indent: &str) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = indent.to_string();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i] - cell.chars().count() + 2;
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Server or user text for the terminal: one line, no control characters, at most 1000
/// characters, so it cannot forge a workflow command (`::error::` at the start of a line).
fn plain(text: &str) -> String {
    server_text(text)
}

/// `850 ms`, `4.2s`, `42s`, `3m 05s`, `1h 02m`.
fn human_ms(ms: u128) -> String {
    let secs = ms / 1000;
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 10_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if secs < 60 {
        format!("{secs}s")
    } else if secs < 3600 {
        format!("{}m {:02}s", secs / 60, secs % 60)
    } else {
        format!("{}h {:02}m", secs / 3600, (secs % 3600) / 60)
    }
}

/// `512 B`, `12.3 KiB`, `12.3 MiB`, `1.2 GiB`.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `12:03` when `at` falls on the same UTC day as `reference`, else `05-01 12:03`; `None`
/// when `at` is not a timestamp.
fn clock(at: &str, reference: &str) -> Option<String> {
    let at: Timestamp = at.parse().ok()?;
    let same_day = reference
        .parse::<Timestamp>()
        .is_ok_and(|r| r.strftime("%Y-%m-%d").to_string() == at.strftime("%Y-%m-%d").to_string());
    Some(if same_day {
        at.strftime("%H:%M").to_string()
    } else {
        at.strftime("%m-%d %H:%M").to_string()
    })
}

/// `Mar 14 10:10` (UTC), or `None` when not a timestamp.
fn short_time(at: &str) -> Option<String> {
    let at: Timestamp = at.parse().ok()?;
    Some(at.strftime("%b %-d %H:%M").to_string())
}

/// `2024-05-01 12:03:11 UTC`, or `None` when not a timestamp.
fn time_text(at: &str) -> Option<String> {
    let at: Timestamp = at.parse().ok()?;
    Some(at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
}

/// `45s`, `12m`, `5h`, `3d` between `since` and `now`; a time in the future (clock skew)
/// counts as `0s`.
fn age(since: &str, now: Timestamp) -> Option<String> {
    let since: Timestamp = since.parse().ok()?;
    let secs = now.as_second().saturating_sub(since.as_second()).max(0);
    Some(if secs < 60 {
        format!("{secs}s")
    } else if secs < 3600 {
        format!("{}m", secs / 60)
    } else if secs < 48 * 3600 {
        format!("{}h", secs / 3600)
    } else {
        format!("{}d", secs / 86400)
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::SUMMARY_LIMIT;
    use crate::checks::junit::JunitSummary;
    use crate::checks::slo::Verdict;
    use crate::checks::{
        CheckKind, CheckReport, IntegrationReport, Readiness, SampleStats, SmokeReport,
    };
    use crate::kube::diagnose::{ContainerState, EventLine, Failure, FailureReason, PodState};
    use crate::kube::rollout::WorkloadKind;
    use crate::pipeline::deploy::LockReport;
    use crate::report::{Gate, GitHubRecord, Release, ReleaseImage};

    const AUTH_DIGEST: &str =
        "sha256:4f1c2d3e4a5b6c7d8e9f00112233445566778899aabbccddeeff001122334455";
    const COURSE_DIGEST: &str =
        "sha256:9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b";
    const SHA: &str = "3f2a9c1b8e7d6c5b4a39281706f5e4d3c2b1a098";

    fn image(service: &str, digest: &str, size: u64) -> ImageRow {
        ImageRow {
            service: service.into(),
            digest: digest.into(),
            image: format!("studysphere.azurecr.io/studysphere/{service}@{digest}"),
            tags: vec!["3f2a9c1".into(), "testing".into()],
            size: Some(size),
            source_environment: Some("development".into()),
        }
    }

    fn step(environment: &str, state: StepState, at: Option<&str>) -> PathStep {
        PathStep {
            environment: environment.into(),
            state,
            release_id: at.map(|_| "3f2a9c1b".to_string()),
            at: at.map(String::from),
        }
    }

    fn gate_passed() -> Gate {
        Gate {
            requires: Some("development".into()),
            skipped: false,
            checks: vec![
                GateCheck {
                    name: "release passed development".into(),
                    passed: true,
                    detail: "development runs this release, verified at 2025-03-14 11:58 UTC"
                        .into(),
                },
                GateCheck {
                    name: "branch main may deploy to testing".into(),
                    passed: true,
                    detail: "testing allows main".into(),
                },
            ],
        }
    }

    fn workload(service: &str, before: i64, after: i64) -> WorkloadReport {
        WorkloadReport {
            object: format!("deployment/{service}"),
            kind: WorkloadKind::Deployment,
            name: service.into(),
            service: service.into(),
            revision_before: Some(before),
            revision_after: Some(after),
            image_before: None,
            image_after: None,
            changed: true,
            awaited: true,
            rollout: Some(RolloutOutcome::Complete),
            rollout_ms: Some(42_300),
            completed_at: Some("2025-03-14T12:08:40Z".into()),
            diagnosis: None,
            rollback: None,
        }
    }

    fn smoke(passed: bool) -> CheckReport {
        let mut check = CheckReport::new(CheckKind::Smoke, "auth-health");
        check.passed = passed;
        check.duration_ms = 12_400;
        let p95 = if passed { 41.0 } else { 812.0 };
        check.smoke = Some(SmokeReport {
            target: "/api/v1/namespaces/testing/services/auth-service:3001/proxy/health".into(),
            route: "service-proxy",
            method: "GET".into(),
            expect_status: 200,
            readiness: Some(Readiness {
                ready: true,
                attempts: 2,
                elapsed_ms: 2100,
                last_failure: None,
            }),
            sampling: Some(SampleStats {
                requests: 200,
                errors: if passed { 0 } else { 7 },
                error_rate_percent: if passed { 0.0 } else { 3.5 },
                concurrency: 10,
                elapsed_ms: 9800.0,
                throughput_rps: 20.4,
                p50_ms: Some(12.1),
                p95_ms: Some(p95),
                p99_ms: Some(p95 + 30.0),
                min_ms: Some(4.0),
                max_ms: Some(p95 + 80.0),
                mean_ms: Some(15.0),
                error_reasons: Vec::new(),
            }),
            slo: vec![
                Verdict {
                    objective: "p95Latency",
                    target: "500 ms".into(),
                    measured: format!("{p95} ms"),
                    passed,
                    reason: format!("p95 {p95} ms {} 500 ms", if passed { "≤" } else { ">" }),
                },
                Verdict {
                    objective: "errorRate",
                    target: "1%".into(),
                    measured: if passed { "0%" } else { "3.5%" }.into(),
                    passed,
                    reason: String::new(),
                },
            ],
        });
        if !passed {
            check.reason = Some(format!("p95 {p95} ms > 500 ms"));
        }
        check
    }

    fn integration() -> CheckReport {
        let mut check = CheckReport::new(CheckKind::Integration, "api-suite");
        check.passed = true;
        check.duration_ms = 48_000;
        check.integration = Some(IntegrationReport {
            job: "api-suite-3f2a9c1b".into(),
            image: "studysphere.azurecr.io/studysphere/api-tests@sha256:ab12".into(),
            status: "succeeded".into(),
            junit: Some(JunitSummary {
                tests: 64,
                passed: 62,
                failed: 0,
                skipped: 2,
                failures: Vec::new(),
            }),
            deleted: true,
        });
        check
    }

    fn verification(checks: Vec<CheckReport>) -> VerifyReport {
        let mut v = VerifyReport {
            environment: "testing".into(),
            namespace: "testing".into(),
            passed: false,
            summary: String::new(),
            duration_ms: 61_500,
            checks,
            warnings: Vec::new(),
        };
        v.conclude();
        v
    }

    fn deploy(workloads: Vec<WorkloadReport>, verification: Option<VerifyReport>) -> DeployReport {
        DeployReport {
            command: "deploy",
            environment: "testing".into(),
            namespace: "testing".into(),
            cluster: Some("context aks-studysphere-test".into()),
            outcome: "success".into(),
            summary: String::new(),
            started_at: "2025-03-14T12:07:50Z".into(),
            finished_at: "2025-03-14T12:09:58Z".into(),
            duration_ms: 128_000,
            namespace_created: false,
            locks: vec![LockReport {
                lease: "promote-auth-service".into(),
                holder: "run 1234".into(),
                waited_ms: 0,
                took_over_from: None,
            }],
            rejected: Vec::new(),
            hooks: Vec::new(),
            applied: vec![
                "ConfigMap/auth-service-config".into(),
                "Deployment/auth-service".into(),
                "ConfigMap/course-service-config".into(),
                "Deployment/course-service".into(),
            ],
            workloads,
            verification,
            warnings: Vec::new(),
        }
    }

    fn success() -> RunReport {
        RunReport {
            command: "run",
            environment: "testing".into(),
            outcome: "success".into(),
            summary: "promoted release 3f2a9c1b to testing; verified (2 checks passed)".into(),
            started_at: "2025-03-14T12:07:31Z".into(),
            finished_at: "2025-03-14T12:10:02Z".into(),
            duration_ms: 151_000,
            repository: Some("studysphere/studysphere".into()),
            sha: Some(SHA.into()),
            run_url: Some(
                "https://github.com/studysphere/studysphere/actions/runs/8812345678".into(),
            ),
            environment_url: Some("https://testing.studysphere.example.com".into()),
            release: Release {
                sha: Some(SHA.into()),
                source: "environment:development".into(),
                id: "3f2a9c1b".into(),
                images: vec![ReleaseImage {
                    service: "auth-service".into(),
                    image: "studysphere.azurecr.io/studysphere/auth-service".into(),
                    digest: AUTH_DIGEST.into(),
                }],
            },
            gate: gate_passed(),
            path: vec![
                step("development", StepState::Done, Some("2025-03-14T11:58:12Z")),
                step(
                    "testing",
                    StepState::Succeeded,
                    Some("2025-03-14T12:09:58Z"),
                ),
                step("production", StepState::Pending, None),
            ],
            images: vec![
                image("auth-service", AUTH_DIGEST, 48_311_092),
                image("course-service", COURSE_DIGEST, 61_020_331),
            ],
            deploy: Some(deploy(
                vec![
                    workload("auth-service", 6, 7),
                    workload("course-service", 4, 5),
                ],
                Some(verification(vec![smoke(true), integration()])),
            )),
            github: Some(GitHubRecord {
                deployment_id: 1_874_223_091,
                reused: true,
                statuses: vec!["in_progress".into(), "success".into()],
            }),
            warnings: Vec::new(),
        }
    }

    fn crash_diagnosis(log_lines: Vec<String>) -> Diagnosis {
        Diagnosis {
            object: "deployment/auth-service".into(),
            failure: Failure {
                reason: FailureReason::CrashLoop,
                message: "container auth-service is in CrashLoopBackOff (5 restarts): Error \
                          (exit code 1)"
                    .into(),
                pod: Some("auth-service-7d9f8b6c5-x2k4q".into()),
                container: Some("auth-service".into()),
                restarted: true,
            },
            pods: vec![PodState {
                name: "auth-service-7d9f8b6c5-x2k4q".into(),
                phase: "Running".into(),
                ready: false,
                scheduling: None,
                containers: vec![ContainerState {
                    name: "auth-service".into(),
                    state: "waiting: CrashLoopBackOff: back-off 2m40s restarting failed container"
                        .into(),
                    ready: false,
                    restarts: 5,
                    last_termination: Some("Error (exit code 1)".into()),
                }],
            }],
            events: vec![
                EventLine {
                    time: Some("2025-03-14T12:08:02Z".into()),
                    type_: "Normal".into(),
                    reason: "Pulled".into(),
                    object: "pod/auth-service-7d9f8b6c5-x2k4q".into(),
                    message: "Successfully pulled image \"studysphere.azurecr.io/studysphere/auth-service@sha256:4f1c…\"".into(),
                    count: 1,
                },
                EventLine {
                    time: Some("2025-03-14T12:09:41Z".into()),
                    type_: "Warning".into(),
                    reason: "BackOff".into(),
                    object: "pod/auth-service-7d9f8b6c5-x2k4q".into(),
                    message: "Back-off restarting failed container auth-service in pod auth-service-7d9f8b6c5-x2k4q_testing".into(),
                    count: 9,
                },
            ],
            logs: Some(LogTail {
                pod: "auth-service-7d9f8b6c5-x2k4q".into(),
                container: "auth-service".into(),
                previous: true,
                lines: log_lines,
            }),
        }
    }

    fn failed(log_lines: Vec<String>) -> RunReport {
        let mut report = success();
        report.outcome = "failed".into();
        report.summary = "deploy to testing failed (deployment/auth-service: CrashLoopBackOff: \
                          container auth-service is in CrashLoopBackOff (5 restarts)); rolled back"
            .into();
        report.path[1].state = StepState::Failed;
        report.path[1].release_id = None;
        report.path[1].at = None;
        report.github.as_mut().unwrap().statuses = vec!["in_progress".into(), "failure".into()];
        let mut broken = workload("auth-service", 6, 7);
        broken.rollout = Some(RolloutOutcome::Failed);
        broken.rollout_ms = Some(101_200);
        broken.completed_at = None;
        broken.diagnosis = Some(crash_diagnosis(log_lines));
        broken.rollback = Some(RollbackReport {
            outcome: "rolled-back",
            to_revision: Some(6),
            revision_after: Some(8),
            message: None,
            diagnosis: None,
        });
        let mut other = workload("course-service", 4, 5);
        other.rollback = Some(RollbackReport {
            outcome: "rolled-back",
            to_revision: Some(4),
            revision_after: Some(6),
            message: None,
            diagnosis: None,
        });
        let mut d = deploy(vec![broken, other], None);
        d.outcome = "failed".into();
        d.warnings = vec!["ReplicaSet auth-service-7d9f8b6c5 kept 1 pod after the rollback".into()];
        report.deploy = Some(d);
        report
    }

    fn refused() -> RunReport {
        let mut report = success();
        report.environment = "production".into();
        report.outcome = "refused".into();
        report.summary = "refused: release 3f2a9c1b has not passed testing".into();
        report.duration_ms = 2_400;
        report.environment_url = Some("https://studysphere.example.com".into());
        report.gate = Gate {
            requires: Some("testing".into()),
            skipped: false,
            checks: vec![
                GateCheck {
                    name: "release passed testing".into(),
                    passed: false,
                    detail: "testing runs release 91c0d2e7 (auth-service sha256:77aa01bc9d3e); \
                             promote 3f2a9c1b to testing first"
                        .into(),
                },
                GateCheck {
                    name: "branch main may deploy to production".into(),
                    passed: true,
                    detail: "production allows main".into(),
                },
            ],
        };
        report.path = vec![
            step("development", StepState::Done, Some("2025-03-14T11:58:12Z")),
            step("testing", StepState::Done, Some("2025-03-13T16:20:05Z")),
            step("production", StepState::Refused, None),
        ];
        report.path[1].release_id = Some("91c0d2e7".into());
        report.images.clear();
        report.deploy = None;
        report.github = None;
        report
    }

    fn section_order(text: &str, needles: &[&str]) {
        let mut last = 0;
        for needle in needles {
            let at = text
                .find(needle)
                .unwrap_or_else(|| panic!("missing {needle:?} in\n{text}"));
            assert!(at >= last, "{needle:?} is out of order in\n{text}");
            last = at;
        }
    }

    /// The mermaid block, checked line by line against the only shapes it may have.
    fn assert_mermaid_is_well_formed(text: &str) {
        let start = text.find("```mermaid\n").expect("mermaid block") + "```mermaid\n".len();
        let block = &text[start..start + text[start..].find("\n```").expect("closed")];
        let mut lines = block.lines();
        assert_eq!(lines.next(), Some("flowchart LR"));
        for line in lines {
            let line = line.trim_start();
            let ok = if let Some(rest) = line.strip_prefix("step") {
                let digits = rest.chars().take_while(char::is_ascii_digit).count();
                let rest = &rest[digits..];
                (rest.starts_with("[\"") && rest.ends_with("\"]") && {
                    let label = &rest[2..rest.len() - 2];
                    !label.contains(['"', '`', '[', ']', '\n'])
                        && !label.replace("<br/>", "").contains(['<', '>'])
                }) || rest.starts_with(" --> ")
            } else {
                line.starts_with("classDef ") || line.starts_with("class ")
            };
            assert!(ok, "unexpected mermaid line {line:?} in\n{block}");
        }
    }

    #[test]
    fn success_reads_top_down() {
        let text = run_summary(&success()).render();
        assert!(
            text.starts_with("## ✅ testing: promoted release 3f2a9c1b\n"),
            "{text}"
        );
        section_order(
            &text,
            &[
                "\npromoted release 3f2a9c1b to testing; verified (2 checks passed)\n",
                "commit <code>3f2a9c1</code>",
                "[workflow run](https://github.com/studysphere/studysphere/actions/runs/8812345678)",
                "[open testing](https://testing.studysphere.example.com)",
                "```mermaid",
                "### Release <code>3f2a9c1b</code>",
                "registry <code>studysphere.azurecr.io</code>",
                "| **auth-service** | <code>studysphere/auth-service</code> | <code title=\"sha256:4f1c",
                "### Rollout in <code>testing</code>",
                "| <code>deployment/auth-service</code> | auth-service | 6 → 7 | 42s | ✅ complete |",
                "### Gate",
                "### Checks: ✅ passed",
                "**Against the SLO**",
                "GitHub deployment **1874223091**",
            ],
        );
        assert!(text.contains("46.1 MiB"), "{text}");
        assert!(text.contains("| input |") || text.contains("| development |"));
        assert!(!text.contains("What went wrong"));
        assert!(!text.contains("CAUTION"));
        assert_mermaid_is_well_formed(&text);
        assert!(
            text.contains("step1[\"testing ✅<br/>3f2a9c1b · 12:09 · this run\"]"),
            "{text}"
        );
        assert!(text.contains("step0 --> step1 --> step2"));
        assert!(text.contains("class step1 current"));
    }

    #[test]
    fn failure_shows_the_cause_first_and_stays_under_the_limit_with_huge_logs() {
        // 5 MB of log: 50 000 lines of 100 bytes, plus one runaway line of 1 MB.
        let mut lines: Vec<String> = (0..50_000)
            .map(|n| {
                format!(
                    "{n:06} ERROR connect ECONNREFUSED 10.0.3.7:5432 {}",
                    "x".repeat(50)
                )
            })
            .collect();
        lines.push("y".repeat(1 << 20));
        let report = failed(lines);
        let text = run_summary(&report).render();
        assert!(text.len() <= SUMMARY_LIMIT, "{} bytes", text.len());
        assert!(
            text.starts_with("## ❌ testing: failed — rolled back\n"),
            "{text:.400}"
        );
        let first_table = text.find("\n| ").expect("a table");
        let cause = text.find("### What went wrong").expect("cause");
        assert!(cause < first_table, "the cause must come before any table");
        assert!(
            text.contains(
                "- <code>deployment/auth-service</code>: **CrashLoopBackOff**: container"
            ),
            "{text:.2000}"
        );
        section_order(
            &text,
            &[
                "### What went wrong",
                "```mermaid",
                "### Rollout in",
                "❌ failed: CrashLoopBackOff<br>↩️ rolled back to revision 6",
                "<details open><summary>🔍 <b>deployment/auth-service</b>: CrashLoopBackOff</summary>",
                "| <code>auth-service-7d9f8b6c5-x2k4q</code> | Running | ❌ |",
                "Back-off restarting failed container",
                "Log of auth-service-7d9f8b6c5-x2k4q/auth-service (the crashed instance)",
                "### Rollback",
                "| <code>deployment/auth-service</code> | 6 | 8 | ↩️ rolled back |",
                "ReplicaSet auth-service-7d9f8b6c5 kept 1 pod",
            ],
        );
        assert!(
            text.contains("to stay under the 1 MiB job summary limit"),
            "trimmed note"
        );
        assert_mermaid_is_well_formed(&text);
        assert!(text.contains("class step1 failed") || text.contains("class step1 current"));
        // The terminal form stays short whatever the log holds.
        let terminal = run_text(&report);
        assert!(terminal.len() < 4096, "{terminal}");
        assert!(terminal.contains("rollback: deployment/auth-service rolled-back to revision 6"));
    }

    #[test]
    fn log_lines_are_cleaned_and_cut() {
        let body = log_body(&[
            "\u{1b}[31mred\u{1b}[0m".into(),
            "z".repeat(LOG_LINE_LIMIT + 10),
        ]);
        assert!(body.starts_with("[31mred[0m\n"), "{body:?}");
        assert!(body.ends_with("… (10 more bytes)\n"));
    }

    #[test]
    fn rollback_failure_says_a_human_must_act() {
        let mut report = failed(vec!["boom".into()]);
        report.outcome = "rollback-failed".into();
        let w = &mut report.deploy.as_mut().unwrap().workloads[0];
        let rollback = w.rollback.as_mut().unwrap();
        rollback.outcome = "failed";
        rollback.revision_after = None;
        rollback.message = Some("revision 6 timed out: 0 of 3 pods ready".into());
        rollback.diagnosis = Some(crash_diagnosis(vec!["still broken".into()]));
        let text = run_summary(&report).render();
        assert!(
            text.starts_with("## 🚨 testing: rollback failed — a human must act\n"),
            "{text}"
        );
        assert!(text.contains(
            "- 🚨 the rollback of <code>deployment/auth-service</code> to revision 6 failed: \
             revision 6 timed out: 0 of 3 pods ready"
        ));
        assert!(text.contains("<code>promote rollback --environment testing</code>"));
        assert!(text.contains(
            "<details><summary>🔍 <b>rollback of deployment/auth-service</b>: CrashLoopBackOff"
        ));
    }

    #[test]
    fn refusal_lists_the_failed_gate_checks_first() {
        let text = run_summary(&refused()).render();
        assert!(
            text.starts_with("## ⛔ production: refused by the gate\n"),
            "{text}"
        );
        section_order(
            &text,
            &[
                "### Why it was refused",
                "- ⛔ **release passed testing** — testing runs release 91c0d2e7",
                "```mermaid",
                "### Gate",
                "Requires the release to have passed **testing**: it has not.",
                "| release passed testing | ❌ |",
                "| branch main may deploy to production | ✅ |",
            ],
        );
        assert!(
            !text.contains("branch main may deploy to production** —"),
            "only failed ones"
        );
        assert!(!text.contains("### Rollout"));
        assert!(text.contains("class step2 refused"));
        assert_mermaid_is_well_formed(&text);
        let terminal = run_text(&refused());
        assert!(
            terminal.starts_with("⛔ production: refused: release 3f2a9c1b"),
            "{terminal}"
        );
        assert!(terminal.contains("gate: release passed testing: testing runs release 91c0d2e7"));
    }

    #[test]
    fn skipped_gate_is_a_caution_block() {
        let mut report = success();
        report.environment = "production".into();
        report.gate = Gate {
            requires: Some("testing".into()),
            skipped: true,
            checks: Vec::new(),
        };
        let text = run_summary(&report).render();
        assert!(
            text.contains("\n> [!CAUTION]\n> **The promotion gate was skipped** (`skip-gate`)"),
            "{text}"
        );
        let caution = text.find("[!CAUTION]").unwrap();
        assert!(caution < text.find("```mermaid").unwrap());
        assert!(text.contains("**Skipped** with `skip-gate`"));
        assert!(run_text(&report).contains("WARNING: the promotion gate was skipped"));
    }

    #[test]
    fn hostile_strings_are_escaped_everywhere() {
        let evil = "evil<script>alert(1)</script>|x`y`]]\"q\"\n## h";
        let mut report = failed(vec![format!("``` </details> {evil}")]);
        report.summary = format!("failed: {evil}");
        report.path[0].environment = format!("dev\"]; click step0 \"javascript:alert(1)\" {evil}");
        report.path[0].release_id = Some(evil.into());
        report.images[0].service = evil.into();
        report.images[0].tags = vec![evil.into()];
        report.images[0].digest = format!("sha256:\"><img src=x onerror=alert(1)>{evil}");
        report.images[0].image = format!("reg/{evil}@sha256:x");
        report.images[1].digest = "sha256:[x](https://evil.example) *b*".into();
        report.environment_url = Some(format!("https://x.example/a) [b](javascript:{evil}"));
        report.run_url = Some("javascript:alert(1)".into());
        report.warnings = vec![evil.into()];
        report.gate.checks[0].detail = evil.into();
        let d = report.deploy.as_mut().unwrap();
        d.workloads[0].service = evil.into();
        let diagnosis = d.workloads[0].diagnosis.as_mut().unwrap();
        diagnosis.failure.message = evil.into();
        diagnosis.events[0].message = evil.into();
        diagnosis.pods[0].containers[0].state = evil.into();
        let text = run_summary(&report).render();

        // Raw text is allowed only inside the log's code block, where it is literal.
        let fence = text.find("````text\n").expect("log block");
        let end = fence + text[fence..].find("\n````\n").expect("closed log block");
        let outside = format!("{}{}", &text[..fence], &text[end..]);
        assert!(!outside.contains("<script"), "{outside}");
        assert!(!outside.contains("<img"), "{outside}");
        assert!(!text.contains("](javascript:"), "{text}");
        assert!(!outside.contains("](https://evil"), "{outside}");
        assert!(outside.contains("&#91;x&#93;(https://evil.example) &#42;b&#42;"));
        assert!(
            !text.contains("\n## h"),
            "a newline in data must not start a heading"
        );
        assert!(
            text.contains("<code>javascript:alert(1)</code>"),
            "non-http URL as code"
        );
        assert!(
            text.contains("](https://x.example/a%29%20%5Bb%5D%28javascript:"),
            "{text}"
        );
        // Every table row keeps its column count: escaped pipes do not split cells.
        let lines: Vec<&str> = text.lines().collect();
        let mut tables = 0;
        for (i, rule) in lines.iter().enumerate() {
            if !rule.starts_with("|---") {
                continue;
            }
            tables += 1;
            let columns = rule.matches('|').count();
            let rows = lines[i + 1..].iter().take_while(|l| l.starts_with("| "));
            for line in std::iter::once(&lines[i - 1]).chain(rows) {
                let cells = line.replace("\\|", "").matches('|').count();
                assert_eq!(cells, columns, "row {line:?}");
            }
        }
        assert!(tables >= 5, "{tables} tables");
        assert_mermaid_is_well_formed(&text);
        assert!(
            text.contains("dev#quot;#93;#59; click step0 #quot;javascript:alert#40;1#41;#quot;")
        );
        // The log stays inside its fence: the fence is longer than any backtick run in it.
        assert!(text.contains("````text\n``` </details>"), "{text}");

        let terminal = run_text(&report);
        assert!(
            !terminal
                .lines()
                .any(|l| l.starts_with("## h") || l.starts_with("::"))
        );
    }

    fn service(name: &str, digest: &str, revision: i64, ready: i32) -> ServiceStatus {
        ServiceStatus {
            service: name.into(),
            deployed: true,
            digest: Some(digest.into()),
            git_sha: Some(SHA.into()),
            revision: Some(revision),
            ready: Some(ready),
            desired: Some(3),
            since: Some("2025-03-14T10:10:00Z".into()),
            verified_digest: Some(digest.into()),
            deployed_by: Some("octocat".into()),
        }
    }

    fn status() -> StatusReport {
        let env = |name: &str, services: Vec<ServiceStatus>| EnvironmentStatus {
            environment: name.into(),
            namespace: name.into(),
            error: None,
            services,
            last_outcome: Some("success".into()),
            last_deployed_by: Some("octocat".into()),
            last_deployed_at: Some("2025-03-14T10:10:00Z".into()),
        };
        let mut testing = env(
            "testing",
            vec![
                service("auth-service", AUTH_DIGEST, 7, 3),
                service("course-service", "sha256:77aa01bc9d3e0000", 5, 1),
            ],
        );
        testing.services[1].verified_digest = Some(COURSE_DIGEST.into());
        let mut production = env("production", Vec::new());
        production.error = Some(
            "cannot reach https://aks-prod.hcp.westeurope.azmk8s.io: 403 Forbidden | <b>".into(),
        );
        StatusReport {
            environments: vec![
                env(
                    "development",
                    vec![
                        service("auth-service", AUTH_DIGEST, 9, 3),
                        service("course-service", COURSE_DIGEST, 6, 3),
                    ],
                ),
                testing,
                production,
            ],
        }
    }

    fn now() -> Timestamp {
        "2025-03-14T12:10:00Z".parse().unwrap()
    }

    #[test]
    fn status_summary_compares_environments_and_names_the_unreadable_one() {
        let text = status_summary(&status()).render();
        assert!(text.starts_with("## 🌐 Environment comparison\n"), "{text}");
        assert!(text.contains(
            "> **production** (namespace <code>production</code>): the cluster could not be \
             read: cannot reach https://aks-prod.hcp.westeurope.azmk8s.io: 403 Forbidden \\| &lt;b&gt;"
        ), "{text}");
        assert!(text.contains("| Service | **development** | **testing** | **production** |"));
        assert!(
            text.contains("🟢 3/3 ready · since Mar 14 10:10 · by octocat"),
            "{text}"
        );
        assert!(text.contains("🟡 1/3 ready"));
        assert!(text.contains("⚠️ not verified"));
        assert!(text.contains("| ⚠️ unreadable |"));
        assert!(
            text.contains(
                "- **development** → **testing**: <code>course-service</code> runs a different digest"
            ),
            "{text}"
        );
        assert!(
            !text.contains("**testing** → **production**"),
            "unreadable: no comparison"
        );
    }

    #[test]
    fn status_text_is_an_aligned_table_with_an_error_line() {
        let text = status_text(&status(), now());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "Environment comparison (live, 2025-03-14 12:10 UTC)"
        );
        let header = lines[2];
        assert!(
            header.starts_with("ENVIRONMENT  SERVICE         DIGEST"),
            "{text}"
        );
        let digest_column = header.find("DIGEST").unwrap();
        for line in &lines[3..6] {
            assert_eq!(&line[digest_column..digest_column + 7], "sha256:", "{text}");
        }
        assert!(text.contains("development  auth-service    sha256:4f1c2d3e4a5b  3f2a9c1  9"));
        assert!(text.contains("production   (unreadable)"));
        assert!(text.contains(
            "error: production: the cluster could not be read: cannot reach \
             https://aks-prod.hcp.westeurope.azmk8s.io: 403 Forbidden | <b>"
        ));
        assert!(text.contains("last deployments: development success 2h ago by octocat"));
    }

    #[test]
    fn formatters() {
        assert_eq!(human_ms(850), "850 ms");
        assert_eq!(human_ms(4_210), "4.2s");
        assert_eq!(human_ms(42_300), "42s");
        assert_eq!(human_ms(185_000), "3m 05s");
        assert_eq!(human_ms(3_720_000), "1h 02m");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(12_900_000), "12.3 MiB");
        assert_eq!(short_digest(AUTH_DIGEST), "sha256:4f1c2d3e4a5b");
        assert_eq!(short_sha(SHA), "3f2a9c1");
        assert_eq!(
            clock("2025-03-14T12:03:11Z", "2025-03-14T23:00:00Z").unwrap(),
            "12:03"
        );
        assert_eq!(
            clock("2025-03-13T12:03:11Z", "2025-03-14T01:00:00Z").unwrap(),
            "03-13 12:03"
        );
        assert_eq!(age("2025-03-14T12:10:30Z", now()).unwrap(), "0s");
        assert_eq!(age("2025-03-10T12:10:00Z", now()).unwrap(), "4d");
        assert_eq!(mermaid_text("a\"b#c<d>\n"), "a#quot;b#35;c#60;d#62; ");
    }

    /// `WRITE_SUMMARY_EXAMPLES=1 cargo test --lib report::run_render` regenerates
    /// docs/summary-examples/, the rendered summaries to look at (and review in diffs).
    #[test]
    fn write_summary_examples() {
        if std::env::var_os("WRITE_SUMMARY_EXAMPLES").is_none() {
            return;
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/summary-examples");
        std::fs::create_dir_all(&dir).expect("create docs/summary-examples");
        let log: Vec<String> = (0..20)
            .map(|n| match n {
                0 => "> auth-service@2.4.0 start".to_string(),
                1 => "> node dist/main.js".to_string(),
                18 => "Error: connect ECONNREFUSED 10.0.3.7:5432".to_string(),
                19 => "    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16)"
                    .to_string(),
                n => format!(
                    "[2025-03-14T12:09:{:02}Z] info: waiting for postgres ({}/16)",
                    20 + n,
                    n - 1
                ),
            })
            .collect();
        for (name, text) in [
            ("run-success.md", run_summary(&success()).render()),
            (
                "run-failed-rolled-back.md",
                run_summary(&failed(log)).render(),
            ),
            ("run-refused.md", run_summary(&refused()).render()),
            ("status.md", status_summary(&status()).render()),
        ] {
            std::fs::write(dir.join(name), text).expect("write example");
        }
        // The terminal forms, to look at with `--nocapture`.
        for report in [success(), failed(vec!["boom".into()]), refused()] {
            eprintln!("{}", run_text(&report));
        }
        eprintln!("{}", status_text(&status(), now()));
    }
}
