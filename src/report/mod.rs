//! Reports: turns results into what people read (job summary, terminal text) and what machines
//! read (the JSON report). Owns the report types of every command; renders values only, never
//! calls an API or reads the environment, and imports nothing from `pipeline`.

mod analysis;
mod blue_green;
mod canary;
mod deploy;
mod drift;
#[cfg(test)]
mod fixtures;
mod kpi;
mod map;
mod plan;
mod retire;
mod rollout;
mod run;
mod status;
mod summary;
mod terminal;
#[cfg(test)]
mod tests;
mod text;
mod verification;

pub use blue_green::{BlueGreenReport, ColourRow, Transition};
pub use canary::{
    CanaryDecision, CanaryReport, CanaryStepReport, StepChecks, StepVerdict, canary_section,
};
pub use deploy::{
    DeployCommand, DeployReport, LockReport, Rejection, RollbackOutcome, RollbackReport,
    WorkloadReport,
};
pub use drift::{drift_summary, drift_text};
pub use kpi::{kpi_summary, kpi_text};
pub use plan::{
    changes_json, changes_text, plan_comment, plan_json, plan_summary, plan_summary_with, plan_text,
};
pub use retire::{RetireEnvironment, RetireReport, RetiredService, retire_summary, retire_text};
pub use run::{
    Gate, GateCheck, GitHubRecord, ImageRow, PathStep, Release, ReleaseImage, ReleaseSource,
    RunReport, StepState,
};
pub use status::{
    BlueGreenStatus, EnvironmentStatus, LastOutcome, ServiceStatus, StatusReport, TrackStatus,
    status_summary, status_text,
};
pub use summary::run_summary;
pub use terminal::{diagnosis_text, run_text};
