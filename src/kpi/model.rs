//! What the delivery metrics are asked for and what they found: plain values, serialized as
//! `promote metrics --json` (durations in whole seconds, rates as fractions).

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

/// What to measure.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `owner/name`, carried into the report for its title.
    pub repository: String,
    /// The end of the window; the clock is a parameter so the computation stays pure.
    pub now: Timestamp,
    /// How far back the window reaches (`--since 30d`).
    pub window: Duration,
    /// promotion.yml's environments in order: each gets a row, with or without deployments,
    /// first and in this order; environments only GitHub knows follow, by name.
    pub environments: Vec<String>,
    /// The production environments (promotion.yml's last one). A deployment GitHub flags
    /// `production_environment` makes its environment one too.
    pub production: Vec<String>,
    pub targets: Targets,
}

/// The seed's targets ("Metrics and KPIs"). They are judged for production environments only:
/// a failure caught in testing is the promotion working, not a change failure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Targets {
    /// Successful deployments per week, at least.
    pub deployments_per_week: f64,
    /// Median commit → production, below.
    pub lead_time_seconds: u64,
    /// Failed changes per finished change, below (0.15 = 15 %).
    pub change_failure_rate: f64,
    /// Median failure → next success, below; an open failure older than this fails it too.
    pub time_to_restore_seconds: u64,
}

impl Targets {
    /// 2+ deployments a week, lead time < 2 h, change failure rate < 15 %, restore < 1 h.
    pub const SEED: Targets = Targets {
        deployments_per_week: 2.0,
        lead_time_seconds: 2 * 3600,
        change_failure_rate: 0.15,
        time_to_restore_seconds: 3600,
    };
}

impl Default for Targets {
    fn default() -> Self {
        Targets::SEED
    }
}

/// Whether a figure meets its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Met,
    NotMet,
    /// Nothing in the record to judge by (no deployments, no failures to restore from).
    NoData,
}

/// The metrics of one repository over one window.
#[derive(Debug, Clone, Serialize)]
pub struct KpiReport {
    pub command: &'static str,
    /// `owner/name`.
    pub repository: String,
    /// The window, RFC 3339.
    pub since: String,
    pub until: String,
    pub window_days: f64,
    pub window_weeks: f64,
    pub targets: Targets,
    /// Requests made to GitHub to read the record.
    pub requests: u64,
    /// Deployments read from GitHub.
    pub deployments_read: usize,
    /// Of those, created outside the window (before it, or after `now`): not counted.
    pub outside_window: usize,
    pub environments: Vec<EnvironmentKpis>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EnvironmentKpis {
    pub environment: String,
    pub production: bool,
    pub kpis: Kpis,
    /// Every ISO week the window touches, oldest first.
    pub weeks: Vec<WeekCount>,
    /// Per service, for deployments whose payload names the release's digests (`promote run`
    /// creates those; GitHub's own job deployments carry none). Sorted by name.
    pub services: Vec<ServiceKpis>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceKpis {
    pub service: String,
    pub kpis: Kpis,
}

/// The four figures of a set of deployments.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Kpis {
    pub counts: Counts,
    pub deployment_frequency: Frequency,
    /// Production only (`None` elsewhere): commit dates are read for production successes.
    pub lead_time: Option<LeadTime>,
    pub change_failure_rate: FailureRate,
    pub time_to_restore: Restore,
}

/// How the deployments in the window ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Counts {
    pub deployments: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub rolled_back: usize,
    pub rollback_failed: usize,
    /// Refused by the gate or a lock, or invalid input: nothing changed, not counted as changes.
    pub refused: usize,
    pub unfinished: usize,
    pub without_status: usize,
    /// Decided by GitHub's own statuses because promote recorded no outcome.
    pub decided_by_github: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Frequency {
    /// Successful deployments per week of the window.
    pub per_week: f64,
    pub successes: usize,
    /// `None` outside production.
    pub verdict: Option<Verdict>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeadTime {
    /// Nearest rank, like the SLO gate's percentiles.
    pub median_seconds: Option<u64>,
    pub p90_seconds: Option<u64>,
    /// Commits measured: each commit's first success in the window.
    pub samples: usize,
    /// Of those, committed after their deployment succeeded (clock skew): counted as 0.
    pub skewed: usize,
    /// Successes whose commit GitHub does not know: not measured.
    pub unknown_commit: usize,
    pub verdict: Option<Verdict>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailureRate {
    /// `failures / finished`, `None` without finished changes.
    pub rate: Option<f64>,
    /// Failed, rolled back, or rollback failed.
    pub failures: usize,
    /// Succeeded plus failures.
    pub finished: usize,
    pub verdict: Option<Verdict>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Restore {
    /// Median of restored failures; consecutive failures before one success are one outage,
    /// timed from the first.
    pub median_seconds: Option<u64>,
    pub restored: usize,
    /// A failure with no success after it yet.
    pub open: Option<OpenFailure>,
    pub verdict: Option<Verdict>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenFailure {
    /// The first failed deployment of the outage.
    pub deployment_id: u64,
    pub failed_at: String,
    pub age_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WeekCount {
    /// ISO week, `2025-W11`.
    pub week: String,
    /// Successful deployments created that week.
    pub deployments: usize,
    /// Failed changes created that week.
    pub failures: usize,
}
