//! The promotion map's data: every environment in order, this run's state, and for the others
//! whether their latest success is this release.

use jiff::Timestamp;

use super::super::gate::Record;
use super::record::{latest_successful, record_of};
use crate::config::{Config, Environment};
use crate::github::GitHub;
use crate::report::{PathStep, RunReport, StepState};

pub async fn promotion_path(
    config: &Config,
    env: &Environment,
    github: Option<&GitHub>,
    report: &RunReport,
) -> Vec<PathStep> {
    let mut steps = Vec::new();
    for other in &config.environments {
        if other.name == env.name {
            steps.push(PathStep {
                environment: other.name.clone(),
                state: StepState::of_run(report.outcome),
                release_id: (!report.release.id.is_empty()).then(|| report.release.id.clone()),
                at: Some(Timestamp::now()),
                strategy: other.strategy.word().to_string(),
            });
            continue;
        }
        let latest = match github {
            Some(github) => latest_successful(github, &other.name).await.ok().flatten(),
            None => None,
        };
        let (release_id, at) = match &latest {
            Some((deployment, description)) => {
                match record_of(deployment, description.as_deref()) {
                    Record::Success { release, .. } => {
                        (release, deployment.created_at.parse::<Timestamp>().ok())
                    }
                    Record::Missing => (None, None),
                }
            }
            None => (None, None),
        };
        let done =
            release_id.is_some() && release_id.as_deref() == Some(report.release.id.as_str());
        steps.push(PathStep {
            environment: other.name.clone(),
            state: if done {
                StepState::Done
            } else {
                StepState::Pending
            },
            release_id,
            at,
            strategy: other.strategy.word().to_string(),
        });
    }
    steps
}
