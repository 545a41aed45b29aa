//! The job summary of `promote run`: verdict and cause first, then the promotion map, the
//! release's images, the rollout, the gate, the checks, diagnostics and rollback, and the record.

use super::deploy::RollbackOutcome;
use super::map::*;
use super::rollout::*;
use super::run::{GateCheck, ImageRow, ReleaseSource, RunReport};
use super::text::*;
use super::verification::*;
use crate::actions::{Priority, Summary, table};
use crate::kube::{HookOutcome, RolloutOutcome};
use crate::outcome::Outcome;
use crate::untrusted::{code, escape_md_with_code, link, short_sha};

/// The job summary of `promote run`: verdict and cause first, then the promotion path, the
/// release, the rollout and gate, the checks, the diagnostics and rollback on failure, and the
/// GitHub record. Built so that it stays within the 1 MiB limit whatever the cluster sent:
/// the verdict is [`Priority::Essential`], tables are `High`, diagnostics `Normal` and log tails
/// `Low` (trimmed first).
pub fn run_summary(report: &RunReport) -> Summary {
    let mut summary = Summary::new();
    let ending = report.outcome;
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
    if let Some(canary) = deploy.and_then(|d| d.canary.as_ref()) {
        summary.section(Priority::High, super::canary::canary_section(canary));
    }
    if let Some(gate) = gate_section(report, ending) {
        summary.section(Priority::High, gate);
    }
    if let Some(verification) = deploy.and_then(|d| d.verification.as_ref()) {
        summary.section(Priority::High, checks_section(verification));
    }
    if let Some(section) = deploy.and_then(|d| super::analysis::analysis_section(&d.analysis)) {
        summary.section(Priority::High, section);
    }
    if let Some(section) = deploy.and_then(|d| super::blue_green::blue_green_section(&d.blue_green))
    {
        summary.section(Priority::High, section);
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
pub(super) fn banner(report: &RunReport, ending: Outcome) -> String {
    let env = escape_md_with_code(&report.environment);
    let rolled_back = report.deploy.iter().flat_map(|d| &d.workloads).any(|w| {
        w.rollback
            .as_ref()
            .is_some_and(|r| r.outcome == RollbackOutcome::RolledBack)
    });
    let refused_by_gate = report.gate.checks.iter().any(|c| !c.passed);
    let heading = match ending {
        Outcome::Success => format!(
            "✅ {env}: promoted release {}",
            escape_md_with_code(&report.release.id)
        ),
        Outcome::Failed if rolled_back => format!("❌ {env}: failed — rolled back"),
        Outcome::Failed => format!("❌ {env}: failed"),
        Outcome::Invalid => format!("🛑 {env}: invalid — nothing was changed"),
        Outcome::Refused if refused_by_gate => format!("⛔ {env}: refused by the gate"),
        Outcome::Refused => format!("⛔ {env}: refused"),
        Outcome::RollbackFailed => format!("🚨 {env}: rollback failed — a human must act"),
    };
    let mut out = format!("## {heading}\n\n");
    if !report.summary.is_empty() {
        // The sentence repeats the heading on success; on failure it is the cause: make it loud.
        let sentence = escape_md_with_code(&report.summary);
        out.push_str(&if ending == Outcome::Success {
            format!("{sentence}\n\n")
        } else {
            format!("**{sentence}**\n\n")
        });
    }
    let mut facts = Vec::new();
    if let Some(sha) = &report.sha {
        facts.push(format!("commit {}", code(short_sha(sha))));
    }
    if !report.release.id.is_empty() && ending != Outcome::Success {
        facts.push(format!("release {}", code(&report.release.id)));
    }
    {
        let source = release_source(&report.release.source);
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
pub(super) fn release_source(source: &ReleaseSource) -> String {
    match source {
        ReleaseSource::Environment(env) => format!("digests from {}", escape_md_with_code(env)),
        ReleaseSource::Input => "digests from the input".to_string(),
    }
}

/// On anything but success: the classified causes as a list, before any table. For a refusal,
/// the gate checks that failed; for a failed rollback, what to do next.
pub(super) fn cause_section(report: &RunReport, ending: Outcome) -> Option<String> {
    if ending == Outcome::Success {
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
            && rollback.outcome == RollbackOutcome::Failed
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
        Outcome::Refused => "Why it was refused",
        _ => "What went wrong",
    };
    let mut out = format!("### {heading}\n\n");
    for item in &items {
        out.push_str(&format!("- {item}\n"));
    }
    if ending == Outcome::RollbackFailed || !failed_rollbacks.is_empty() {
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

/// The release: one row per service, digest short with the full one on hover.
pub(super) fn images_section(report: &RunReport) -> String {
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

pub(super) fn image_row(image: &ImageRow, registry: Option<&str>) -> Vec<String> {
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
        digest_code(image.digest.as_str()),
        tags,
        image.size.map_or("—".to_string(), human_bytes),
        image
            .source_environment
            .as_deref()
            .map_or("input".to_string(), escape_md_with_code),
    ]
}

/// The gate: every condition checked, or nothing to check for the first environment.
pub(super) fn gate_section(report: &RunReport, ending: Outcome) -> Option<String> {
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
            if ending == Outcome::Refused && gate.checks.iter().any(|c| !c.passed) {
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
    if matches!(ending, Outcome::Success | Outcome::Refused)
        || gate.checks.iter().any(|c| !c.passed)
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

pub(super) fn gate_row(check: &GateCheck) -> Vec<String> {
    vec![
        escape_md_with_code(&check.name),
        if check.passed { "✅" } else { "❌" }.to_string(),
        escape_md_with_code(&check.detail),
    ]
}

/// The GitHub Deployment this run recorded to, times, and every warning.
pub(super) fn record_section(report: &RunReport) -> Option<String> {
    let mut out = String::new();
    if let Some(github) = &report.github {
        let statuses: Vec<String> = github.statuses.iter().map(|s| code(s.word())).collect();
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
    let started = time_text(report.started_at);
    if let Some(finished) = report.finished_at.map(time_text) {
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
