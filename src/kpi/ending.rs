//! How one deployment ended, read from its statuses.
//!
//! Two writers post statuses to a deployment: `promote run` (its texts, from
//! `pipeline/run/record.rs`, begin `promoting release <id>`, `release <id>`, `promotion` or
//! `invalid:`) and GitHub itself, for a job that declares `environment:` (queued, waiting,
//! in_progress, then success or failure when the job ends, after ours). Both post as
//! `github-actions[bot]` with a workflow token, so the text tells them apart, not the creator.
//!
//! The rules, in order:
//! 1. `inactive` statuses are ignored: GitHub adds one when a newer deployment of the
//!    environment succeeds, which says nothing about how this one went.
//! 2. Our newest final status (success, failure, error) decides, at its time: GitHub's success
//!    after our failure is the job ending, not a second outcome.
//! 3. Without one (a deployment promote never finished, or one made by another tool), GitHub's
//!    newest final status decides.
//! 4. Otherwise a deployment with a status is unfinished, one without is `NoStatus`.

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use crate::github::{DeploymentState, DeploymentStatus};

/// How a deployment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ending {
    Succeeded,
    /// Failed, and not known to be rolled back (a first deploy, or a description cut before
    /// its last words).
    Failed,
    /// Failed and rolled back (`… failed: …; rolled back`).
    RolledBack,
    /// The rollback failed too (`error`): a human must act.
    RollbackFailed,
    /// Refused by the gate or a lock, or invalid input: nothing was changed, so it is not a
    /// change that failed.
    Refused,
    /// No final status yet (running, waiting for approval, or abandoned).
    Unfinished,
    /// No status at all (inactive ones aside).
    NoStatus,
}

impl Ending {
    /// A change that failed in its environment: what the change failure rate counts and what
    /// starts the clock of time to restore.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Ending::Failed | Ending::RolledBack | Ending::RollbackFailed
        )
    }

    /// A change that ran to an end: the change failure rate's denominator.
    pub fn is_finished_change(self) -> bool {
        self == Ending::Succeeded || self.is_failure()
    }
}

/// Who wrote the status that decided the ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecidedBy {
    Promote,
    GitHub,
    /// Nothing decided (unfinished, no status).
    Nobody,
}

/// A deployment's ending and when it came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub ending: Ending,
    /// The deciding status's `created_at`; `None` when undecided or unreadable.
    pub at: Option<Timestamp>,
    pub decided_by: DecidedBy,
}

/// The outcome of a deployment from its statuses (newest first, as GitHub lists them).
pub fn outcome(statuses: &[DeploymentStatus]) -> Outcome {
    let live: Vec<&DeploymentStatus> = statuses
        .iter()
        .filter(|s| s.state != DeploymentState::Inactive)
        .collect();
    let is_final = |s: &&&DeploymentStatus| {
        matches!(
            s.state,
            DeploymentState::Success | DeploymentState::Failure | DeploymentState::Error
        )
    };
    let description = |s: &DeploymentStatus| s.description.clone().unwrap_or_default();
    if let Some(ours) = live
        .iter()
        .filter(|s| is_ours(&description(s)))
        .find(is_final)
    {
        return Outcome {
            ending: our_ending(ours.state, &description(ours)),
            at: ours.created_at.parse().ok(),
            decided_by: DecidedBy::Promote,
        };
    }
    if let Some(theirs) = live.iter().find(is_final) {
        return Outcome {
            ending: match theirs.state {
                DeploymentState::Success => Ending::Succeeded,
                _ => Ending::Failed,
            },
            at: theirs.created_at.parse().ok(),
            decided_by: DecidedBy::GitHub,
        };
    }
    Outcome {
        ending: if live.is_empty() {
            Ending::NoStatus
        } else {
            Ending::Unfinished
        },
        at: None,
        decided_by: DecidedBy::Nobody,
    }
}

/// Whether a status description is one `promote run` writes.
fn is_ours(description: &str) -> bool {
    description.starts_with("promoting release ")
        || description.starts_with("invalid: ")
        || after_release(description).is_some()
}

/// The text after `release <12 hex>` or `promotion` (run.rs's name for a release without an
/// id), which says how it went: ` verified in …`, ` failed: …`, ` refused: …`, `: rollback
/// failed …`.
fn after_release(description: &str) -> Option<&str> {
    if let Some(rest) = description.strip_prefix("release ") {
        let id_len = rest.bytes().take_while(u8::is_ascii_hexdigit).count();
        let after = &rest[id_len..];
        return (id_len == 12 && (after.starts_with(' ') || after.starts_with(':')))
            .then_some(after);
    }
    description
        .strip_prefix("promotion")
        .filter(|after| after.starts_with(' ') || after.starts_with(':'))
}

/// Our final status's meaning: its state, refined by the words `final_status` in run.rs
/// writes.
fn our_ending(state: DeploymentState, description: &str) -> Ending {
    let after = after_release(description).unwrap_or_default();
    match state {
        DeploymentState::Success => Ending::Succeeded,
        DeploymentState::Error => Ending::RollbackFailed,
        _ if description.starts_with("invalid: ") || after.starts_with(" refused: ") => {
            Ending::Refused
        }
        // The deploy summary ends `; rolled back`; a long cause may have cut it off (GitHub
        // keeps 140 characters), which leaves a plain failure: counted the same way.
        _ if after.starts_with(" failed: ") && description.ends_with("rolled back") => {
            Ending::RolledBack
        }
        _ => Ending::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: DeploymentState, description: &str, at: &str) -> DeploymentStatus {
        DeploymentStatus {
            id: 1,
            state,
            description: Some(description.to_string()),
            environment_url: None,
            log_url: None,
            creator: None,
            created_at: at.to_string(),
        }
    }

    use DeploymentState::{Error, Failure, InProgress, Inactive, Queued, Success, Waiting};

    const VERIFIED: &str = "release 3f2a9c1b0d4e verified in production";
    const ROLLED_BACK: &str = "release 3f2a9c1b0d4e failed: deploy to production failed \
                               (auth-service: CrashLoopBackOff); rolled back";
    const PROMOTING: &str = "promoting release 3f2a9c1b0d4e to production (2 services)";

    /// (case, statuses newest first, ending, deciding time, decided by).
    type Case = (
        &'static str,
        Vec<DeploymentStatus>,
        Ending,
        Option<&'static str>,
        DecidedBy,
    );

    #[test]
    fn outcomes_follow_our_last_final_status_then_githubs() {
        let t1 = "2025-03-14T10:00:00Z";
        let t2 = "2025-03-14T10:05:00Z";
        let t3 = "2025-03-14T10:06:00Z";
        let t4 = "2025-03-15T08:00:00Z";
        let cases: Vec<Case> = vec![
            (
                "ours: success",
                vec![
                    status(Success, VERIFIED, t2),
                    status(InProgress, PROMOTING, t1),
                ],
                Ending::Succeeded,
                Some(t2),
                DecidedBy::Promote,
            ),
            (
                "GitHub's duplicate success after ours is not the outcome's time",
                vec![
                    status(Success, "", t3),
                    status(Success, VERIFIED, t2),
                    status(InProgress, PROMOTING, t1),
                ],
                Ending::Succeeded,
                Some(t2),
                DecidedBy::Promote,
            ),
            (
                "GitHub's success after our failure (the job step) does not hide it",
                vec![
                    status(Success, "", t3),
                    status(Failure, ROLLED_BACK, t2),
                    status(InProgress, PROMOTING, t1),
                ],
                Ending::RolledBack,
                Some(t2),
                DecidedBy::Promote,
            ),
            (
                "inactive (a newer success elsewhere) is ignored",
                vec![status(Inactive, "", t4), status(Success, VERIFIED, t2)],
                Ending::Succeeded,
                Some(t2),
                DecidedBy::Promote,
            ),
            (
                "failure without a rollback (first deploy)",
                vec![status(
                    Failure,
                    "release 3f2a9c1b0d4e failed: deploy to production failed (timeout); \
                     nothing to roll back to (first deploy), left as deployed",
                    t2,
                )],
                Ending::Failed,
                Some(t2),
                DecidedBy::Promote,
            ),
            (
                "error: the rollback failed",
                vec![status(
                    Error,
                    "release 3f2a9c1b0d4e: rollback failed in production; a human must act",
                    t2,
                )],
                Ending::RollbackFailed,
                Some(t2),
                DecidedBy::Promote,
            ),
            (
                "refused by the gate: nothing changed",
                vec![status(
                    Failure,
                    "release 3f2a9c1b0d4e refused: testing has not verified it",
                    t2,
                )],
                Ending::Refused,
                Some(t2),
                DecidedBy::Promote,
            ),
            (
                "invalid input: nothing changed",
                vec![status(Failure, "invalid: images: missing web", t2)],
                Ending::Refused,
                Some(t2),
                DecidedBy::Promote,
            ),
            (
                "a release without an id",
                vec![status(Failure, "promotion failed: no cluster", t2)],
                Ending::Failed,
                Some(t2),
                DecidedBy::Promote,
            ),
            (
                "a summary that mentions `refused` later is still a failure",
                vec![status(
                    Failure,
                    "release 3f2a9c1b0d4e failed: the API server refused: 403",
                    t2,
                )],
                Ending::Failed,
                Some(t2),
                DecidedBy::Promote,
            ),
            (
                "promote never finished: GitHub's failure decides",
                vec![status(Failure, "", t3), status(InProgress, PROMOTING, t1)],
                Ending::Failed,
                Some(t3),
                DecidedBy::GitHub,
            ),
            (
                "another tool's deployment: its own success",
                vec![status(Success, "Deployed by Argo", t2)],
                Ending::Succeeded,
                Some(t2),
                DecidedBy::GitHub,
            ),
            (
                "GitHub's error is a failure, not a failed rollback",
                vec![status(Error, "", t2)],
                Ending::Failed,
                Some(t2),
                DecidedBy::GitHub,
            ),
            (
                "still running",
                vec![status(InProgress, PROMOTING, t1), status(Queued, "", t1)],
                Ending::Unfinished,
                None,
                DecidedBy::Nobody,
            ),
            (
                "waiting for approval",
                vec![status(Waiting, "", t1)],
                Ending::Unfinished,
                None,
                DecidedBy::Nobody,
            ),
            (
                "no status",
                vec![],
                Ending::NoStatus,
                None,
                DecidedBy::Nobody,
            ),
            (
                "only inactive",
                vec![status(Inactive, "", t1)],
                Ending::NoStatus,
                None,
                DecidedBy::Nobody,
            ),
        ];
        for (case, statuses, ending, at, decided_by) in cases {
            let got = outcome(&statuses);
            assert_eq!(got.ending, ending, "case: {case}");
            assert_eq!(
                got.at,
                at.map(|t| t.parse().unwrap()),
                "case: {case} (time)"
            );
            assert_eq!(got.decided_by, decided_by, "case: {case} (decided by)");
        }
    }

    #[test]
    fn only_run_rs_texts_are_ours() {
        for ours in [
            VERIFIED,
            PROMOTING,
            "release 3f2a9c1b0d4e: rollback failed in testing; a human must act",
            "invalid: bad",
            "promotion verified in testing",
        ] {
            assert!(is_ours(ours), "{ours}");
        }
        for theirs in [
            "",
            "Deployment succeeded",
            "release notes published",
            "release 3f2a verified",
            "promotional banner",
        ] {
            assert!(!is_ours(theirs), "{theirs}");
        }
    }
}
