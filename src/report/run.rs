//! The report of `promote run` (one promotion step) and of `promote status` (every
//! environment side by side): the data the pipeline fills in, serialized as the JSON report,
//! and rendered here into the job summary and terminal text. Rendering reads values only.

use serde::Serialize;

use crate::pipeline::deploy::DeployReport;

/// What one `promote run --environment E` did, in the order it did it.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub command: &'static str,
    pub environment: String,
    /// `success`, `failed`, `invalid`, `refused`, `rollback-failed`.
    pub outcome: String,
    /// One line: what happened, or the classified cause of the failure.
    pub summary: String,
    pub started_at: String,
    pub finished_at: String,
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
    /// Where the digests came from: `input` or `environment:<name>`.
    pub source: String,
    /// Short fingerprint of the sorted `service@digest` list: equal releases, equal ids.
    pub id: String,
    pub images: Vec<ReleaseImage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReleaseImage {
    pub service: String,
    /// `registry/repository@sha256:…` as it was found (input or lower environment).
    pub image: String,
    pub digest: String,
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
    /// Short digest(s) running there, e.g. `sha256:3f2a9c1b…`, when known.
    pub release_id: Option<String>,
    /// When that environment was last promoted (RFC 3339), when known.
    pub at: Option<String>,
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

#[derive(Debug, Clone, Serialize)]
pub struct ImageRow {
    pub service: String,
    pub digest: String,
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
    pub statuses: Vec<String>,
}

/// `promote status`: every environment of the promotion, side by side.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub environments: Vec<EnvironmentStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EnvironmentStatus {
    pub environment: String,
    pub namespace: String,
    /// Set when the cluster could not be read; the rows are then empty.
    pub error: Option<String>,
    pub services: Vec<ServiceStatus>,
    /// The latest GitHub deployment's outcome for this environment, when GitHub was read.
    pub last_outcome: Option<String>,
    pub last_deployed_by: Option<String>,
    pub last_deployed_at: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    pub service: String,
    /// False when the Deployment does not exist.
    pub deployed: bool,
    pub digest: Option<String>,
    pub git_sha: Option<String>,
    pub revision: Option<i64>,
    pub ready: Option<i32>,
    pub desired: Option<i32>,
    /// When the current revision was created (RFC 3339).
    pub since: Option<String>,
    /// The digest the last successful verification approved (cluster annotation).
    pub verified_digest: Option<String>,
    pub deployed_by: Option<String>,
}
