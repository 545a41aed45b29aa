//! The deploy's metric analysis (`analysis.prometheus`): every query checked by Prometheus
//! before anything is written, and the release's window judged after its rollout (a plain
//! rolling update) or after the switch (blue-green).
//!
//! Prometheus that cannot be reached at the preflight stops the deploy as invalid input (exit 2,
//! nothing written): the analysis is a gate promotion.yml asks for, and a deploy that could not
//! run it would only find out after the rollout, with a rollback to pay for it.

use std::time::Duration;

use jiff::Timestamp;

use super::Deploy;
use crate::checks::analysis::{
    self, AnalysisReport, Prometheus, QueryError, Target, Track, Window,
};
use crate::config::{PrometheusAnalysis, Strategy};
use crate::outcome::{Classified, chain};
use crate::say;

/// The environment's Prometheus analysis, when it has one and the deploy verifies.
fn configured<'a>(deploy: &Deploy<'a>) -> Option<&'a PrometheusAnalysis> {
    deploy
        .environment
        .analysis
        .as_ref()
        .and_then(|a| a.prometheus.as_ref())
        .filter(|_| deploy.options.verify)
}

/// The workloads the queries are rendered for: each service's stable track, and its canary
/// track in a canary environment.
fn targets(deploy: &Deploy<'_>) -> Vec<Target> {
    let tracks: &[Track] = match deploy.environment.strategy {
        Strategy::Canary(_) => &[Track::Stable, Track::Canary],
        _ => &[Track::Stable],
    };
    deploy
        .plan
        .services
        .iter()
        .flat_map(|r| {
            tracks
                .iter()
                .map(|t| Target::new(&deploy.environment.namespace, &r.service, *t))
        })
        .collect()
}

/// `promotion.yml:14:9 environments.testing.analysis.prometheus.queries.error-rate`.
fn located(deploy: &Deploy<'_>, e: &QueryError) -> String {
    format!(
        "{}:{}:{} environments.{}.analysis.prometheus.queries.{}",
        deploy.config.file.display(),
        e.pos.line,
        e.pos.col,
        deploy.environment.name,
        e.name
    )
}

/// Has Prometheus parse and run every query, rendered for every target, before anything is
/// written.
///
/// # Errors
/// Invalid input (exit 2): a query Prometheus rejects (each named with its place in
/// promotion.yml), or Prometheus that cannot be reached (see the module's documentation).
pub(super) async fn preflight(deploy: &Deploy<'_>) -> anyhow::Result<()> {
    let Some(p) = configured(deploy) else {
        return Ok(());
    };
    let prometheus =
        Prometheus::new(&p.url).map_err(|e| Classified::invalid(anyhow::Error::new(e)))?;
    let targets = targets(deploy);
    match analysis::preflight(&prometheus, p, &targets).await {
        Ok(()) => {
            say!(
                "Prometheus at {} accepted {} analysis quer{}",
                prometheus.url(),
                p.queries.len(),
                if p.queries.len() == 1 { "y" } else { "ies" }
            );
            Ok(())
        }
        Err(errors) => {
            let lines: Vec<String> = errors
                .iter()
                .map(|e| format!("{}: {}", located(deploy, e), chain(&e.source)))
                .collect();
            Err(Classified::invalid(anyhow::anyhow!(
                "metric analysis cannot run; nothing was written:\n{}",
                lines.join("\n")
            )))
        }
    }
}

/// What the window's analysis found.
pub(super) struct Analysed {
    pub reports: Vec<AnalysisReport>,
    pub passed: bool,
    /// One line: every failed query's headline, or why it could not be read.
    pub summary: String,
}

/// Waits until `window` has passed since `since` (the release started serving), then judges
/// every service's queries for `track` over that window. `None` without an analysis (or with
/// `--no-verify`). A query that cannot be read fails the analysis: no verdict is made up.
pub(super) async fn analyse_window(
    deploy: &Deploy<'_>,
    since: Timestamp,
    track: Track,
) -> Option<Analysed> {
    let p = configured(deploy)?;
    let prometheus = match Prometheus::new(&p.url) {
        Ok(p) => p,
        Err(e) => {
            return Some(Analysed {
                reports: Vec::new(),
                passed: false,
                summary: format!("metric analysis: {e}"),
            });
        }
    };
    let window = p.window;
    let elapsed = Duration::try_from(Timestamp::now().duration_since(since)).unwrap_or_default();
    if let Some(rest) = window.checked_sub(elapsed).filter(|d| !d.is_zero()) {
        say!(
            "Analysing metrics for {} (Prometheus at {})",
            crate::config::units::format_duration(window),
            prometheus.url()
        );
        tokio::time::sleep(rest).await;
    }
    let range = Window::new(since, Timestamp::now());
    let mut reports = Vec::new();
    let mut failed = Vec::new();
    for target in targets(deploy).into_iter().filter(|t| t.track == track) {
        match analysis::analyse(&prometheus, p, &target, &range).await {
            Ok(report) => {
                say!(
                    "{} analysis of {}: {}",
                    if report.passed { "✓" } else { "✗" },
                    target.service,
                    report.summary
                );
                if !report.passed {
                    failed.push(format!("{}: {}", target.service, report.summary));
                }
                reports.push(report);
            }
            Err(e) => failed.push(format!("{}: {}", target.service, chain(&e))),
        }
    }
    Some(Analysed {
        passed: failed.is_empty(),
        summary: if failed.is_empty() {
            reports
                .iter()
                .map(|r| r.summary.clone())
                .collect::<Vec<_>>()
                .join("; ")
        } else {
            failed.join("; ")
        },
        reports,
    })
}
