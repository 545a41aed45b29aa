//! The report of `promote run` (one promotion step): the data the pipeline fills in, serialized
//! as the JSON report (promote-run.json) and rendered by this module's siblings.

use std::fmt;

use jiff::Timestamp;
use serde::Serialize;

use super::deploy::DeployReport;
use crate::github::DeploymentState;
use crate::outcome::Outcome;
use crate::registry::Digest;

/// What one `promote run --environment E` did, in the order it did it.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub command: &'static str,
    pub environment: String,
    /// How it ended; [`Outcome::Failed`] until the run says otherwise.
    pub outcome: Outcome,
    /// One line: what happened, or the classified cause of the failure.
    pub summary: String,
    pub started_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    pub duration_ms: u128,
    /// `owner/name`.
    pub repository: Option<String>,
    /// The commit this run is for (`GITHUB_SHA`).
    pub sha: Option<String>,
    pub run_url: Option<String>,
    pub environment_url: Option<String>,
    pub release: Release,
    pub gate: Gate,
    /// Every environment of the promotion in order, for the promotion map.
    pub path: Vec<PathStep>,
    /// One row per service promoted.
    pub images: Vec<ImageRow>,
    /// The deploy (with its verification and any rollback), when it started.
    pub deploy: Option<DeployReport>,
    /// The GitHub Deployment this run recorded to, when GitHub was reachable.
    pub github: Option<GitHubRecord>,
    pub warnings: Vec<String>,
}

/// A release: the set of service digests built from one commit, promoted as a whole.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Release {
    /// The commit the images were built from, when known.
    pub sha: Option<String>,
    pub source: ReleaseSource,
    /// Short fingerprint of the sorted `service@digest` list: equal releases, equal ids.
    pub id: String,
    pub images: Vec<ReleaseImage>,
}

/// Where a release's digests came from. Serialized (reports, the deployment payload) as
/// `input` or `environment:<name>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ReleaseSource {
    /// The `images` input (tags resolved to digests once).
    #[default]
    Input,
    /// What the `requires` environment runs, verified.
    Environment(String),
}

impl fmt::Display for ReleaseSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReleaseSource::Input => f.write_str("input"),
            ReleaseSource::Environment(name) => write!(f, "environment:{name}"),
        }
    }
}

impl Serialize for ReleaseSource {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReleaseImage {
    pub service: String,
    /// `registry/repository@sha256:…` as it was found (input or lower environment).
    pub image: String,
    pub digest: Digest,
}

/// The promotion gate: each condition checked, or the emergency skip.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Gate {
    /// The environment that had to succeed first (`requires`).
    pub requires: Option<String>,
    /// `skip-gate` was set: shown loudly in the summary.
    pub skipped: bool,
    pub checks: Vec<GateCheck>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GateCheck {
    /// What was checked, e.g. "branch main may deploy to production".
    pub name: String,
    pub passed: bool,
    /// Why it passed or what is missing.
    pub detail: String,
}

/// One environment in the promotion map.
#[derive(Debug, Clone, Serialize)]
pub struct PathStep {
    pub environment: String,
    pub state: StepState,
    /// The release id running there, when known.
    pub release_id: Option<String>,
    /// When that environment was last promoted, when known.
    pub at: Option<Timestamp>,
    /// How a release replaces the running one there (`rolling`, `blue-green`, `canary`).
    pub strategy: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepState {
    /// Runs this release, verified.
    Done,
    /// This run's environment, succeeded.
    Succeeded,
    /// This run's environment, failed (and rolled back, unless `RollbackFailed`).
    Failed,
    RollbackFailed,
    /// This run's environment, refused by the gate.
    Refused,
    /// Not yet promoted to.
    Pending,
}

impl StepState {
    /// The state of the environment a run promoted to, from how the run ended.
    pub fn of_run(outcome: Outcome) -> StepState {
        match outcome {
            Outcome::Success => StepState::Succeeded,
            Outcome::Refused | Outcome::Invalid => StepState::Refused,
            Outcome::RollbackFailed => StepState::RollbackFailed,
            Outcome::Failed => StepState::Failed,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageRow {
    pub service: String,
    pub digest: Digest,
    /// Where it was copied to: `registry/repository@sha256:…`.
    pub image: String,
    pub tags: Vec<String>,
    /// Total bytes of config and layers, when the manifest was read.
    pub size: Option<u64>,
    /// The environment the digest was promoted from, or `None` for an input.
    pub source_environment: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GitHubRecord {
    pub deployment_id: u64,
    /// True when GitHub made the deployment for the job's `environment:` and we posted to it.
    pub reused: bool,
    /// States posted, in order (`in_progress`, `success`, …).
    pub statuses: Vec<DeploymentState>,
}
