//! The deploy's decisions, as plain data in and out: whether a workload is awaited, which
//! ConfigMaps the hooks need first, what an undo failure means, and the verdict after a failed
//! rollout. Table-tested here; the phases only carry them out.

use serde_json::Value;

use super::workloads::Before;
use crate::report::RollbackOutcome;

/// What the apply did to one workload, and whether its rollout is waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Awaited {
    /// The apply changed it (a new generation, or it is new).
    pub changed: bool,
    pub awaited: bool,
    /// It would be awaited, but kubectl cannot tell when its rollout is done: an update strategy
    /// other than `RollingUpdate` (`OnDelete` changes pods only when they are deleted).
    pub not_waitable: bool,
}

/// Whether to wait for a workload. `applied` is the generation the apply returned, `None` when
/// the apply did not reach it. One still rolling out (or failed) from an earlier run is awaited
/// too: success means it is healthy now, not that this apply changed nothing.
pub fn awaited(
    before: &Before,
    applied: Option<Option<i64>>,
    update_strategy: Option<&str>,
) -> Awaited {
    let changed = match applied {
        Some(after) => before.generation.is_none() || after != before.generation,
        None => false,
    };
    let wanted = applied.is_some() && (changed || !before.settled);
    let not_waitable = wanted && update_strategy.is_some_and(|s| s != "RollingUpdate");
    Awaited {
        changed,
        awaited: wanted && !not_waitable,
        not_waitable,
    }
}

/// The ConfigMaps and Secrets among `objects` that a hook Job reads (`envFrom.configMapRef`,
/// `envFrom.secretRef`: a `fromEnv` Secret the plan holds): applied before the hooks run, since
/// the hooks run before everything else.
pub fn hook_sources<'a>(hooks: &[Value], objects: impl Iterator<Item = &'a Value>) -> Vec<Value> {
    let env_from: Vec<&Value> = hooks
        .iter()
        .flat_map(|h| {
            h.pointer("/spec/template/spec/containers/0/envFrom")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .collect();
    let named = |reference: &str| -> Vec<&str> {
        env_from
            .iter()
            .filter_map(|e| e[reference]["name"].as_str())
            .collect()
    };
    let (config_maps, secrets) = (named("configMapRef"), named("secretRef"));
    objects
        .filter(|o| {
            let name = o["metadata"]["name"].as_str().unwrap_or_default();
            match o["kind"].as_str() {
                Some("ConfigMap") => config_maps.contains(&name),
                Some("Secret") => secrets.contains(&name),
                _ => false,
            }
        })
        .cloned()
        .collect()
}

/// Why a rollback happens, which decides what a missing revision means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// After a failed deploy: a workload this deploy created has nothing to go back to, and is
    /// left as deployed (with a warning).
    DeployFailed,
    /// `promote rollback`: a revision that is not in the history is bad input (exit 2).
    Asked,
}

/// Why an undo did not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UndoFailure {
    /// The workload has no earlier revision.
    NoHistory,
    /// The revision asked for is not in its history.
    RevisionNotFound,
    /// The workload does not exist.
    NotFound,
    /// Anything else: paused, the API failing.
    Other,
}

/// What an undo failure means for the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UndoVerdict {
    /// Bad input: exit 2, nothing changed.
    Invalid,
    /// Nothing to go back to (a first deploy): left as deployed, with a warning.
    NotPossible,
    /// The rollback failed: a human must act.
    Failed,
}

pub fn undo_verdict(failure: UndoFailure, reason: Reason) -> UndoVerdict {
    match (failure, reason) {
        (
            UndoFailure::NoHistory | UndoFailure::RevisionNotFound | UndoFailure::NotFound,
            Reason::Asked,
        ) => UndoVerdict::Invalid,
        (UndoFailure::NoHistory, Reason::DeployFailed) => UndoVerdict::NotPossible,
        _ => UndoVerdict::Failed,
    }
}

/// How a failed deploy ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// `onFailure: keep`: left as is for a human to look at.
    Kept,
    /// Nothing ran there before, so nothing was rolled back: saying "rolled back" would hide
    /// that the failing version is what runs now.
    FirstDeploy,
    RolledBack,
    RollbackFailed,
}

impl Verdict {
    /// After a rollback: `ok` when every undo worked or was not possible, with each workload's
    /// rollback outcome.
    pub fn after_rollback(ok: bool, outcomes: &[RollbackOutcome]) -> Verdict {
        if !ok {
            Verdict::RollbackFailed
        } else if outcomes.iter().all(|o| *o == RollbackOutcome::NotPossible) {
            Verdict::FirstDeploy
        } else {
            Verdict::RolledBack
        }
    }

    /// The one-line summary, for the report and the annotation.
    pub fn summary(self, environment: &str, why: &str) -> String {
        match self {
            Verdict::Kept => {
                format!("deploy to {environment} failed ({why}); left as is (onFailure: keep)")
            }
            Verdict::FirstDeploy => format!(
                "deploy to {environment} failed ({why}); nothing to roll back to (first deploy), left as deployed"
            ),
            Verdict::RolledBack => format!("deploy to {environment} failed ({why}); rolled back"),
            Verdict::RollbackFailed => format!(
                "deploy to {environment} failed ({why}), and rolling back failed too: a human must act"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn before(generation: Option<i64>, settled: bool) -> Before {
        Before {
            generation,
            settled,
            ..Before::default()
        }
    }

    #[test]
    fn what_is_awaited() {
        let cases = [
            // (before, applied, strategy) → (changed, awaited, not_waitable)
            (before(None, true), Some(Some(1)), None, (true, true, false)),
            (
                before(Some(3), true),
                Some(Some(4)),
                None,
                (true, true, false),
            ),
            (
                before(Some(3), true),
                Some(Some(3)),
                None,
                (false, false, false),
            ),
            // An earlier rollout still under way (or failed) is waited for again.
            (
                before(Some(3), false),
                Some(Some(3)),
                None,
                (false, true, false),
            ),
            // The apply never reached it.
            (before(Some(3), false), None, None, (false, false, false)),
            (
                before(Some(3), true),
                Some(Some(4)),
                Some("RollingUpdate"),
                (true, true, false),
            ),
            (
                before(Some(3), true),
                Some(Some(4)),
                Some("OnDelete"),
                (true, false, true),
            ),
            (
                before(Some(3), true),
                Some(Some(3)),
                Some("OnDelete"),
                (false, false, false),
            ),
        ];
        for (i, (was, applied, strategy, (changed, is_awaited, not_waitable))) in
            cases.into_iter().enumerate()
        {
            assert_eq!(
                awaited(&was, applied, strategy),
                Awaited {
                    changed,
                    awaited: is_awaited,
                    not_waitable
                },
                "case {i}"
            );
        }
    }

    #[test]
    fn hooks_get_the_config_maps_and_secrets_they_read_and_no_others() {
        let hooks = [json!({"spec": {"template": {"spec": {"containers": [
            {"envFrom": [{"configMapRef": {"name": "web-config-1"}}, {"secretRef": {"name": "s"}}]}
        ]}}}})];
        let objects = [
            json!({"kind": "ConfigMap", "metadata": {"name": "web-config-1"}}),
            json!({"kind": "ConfigMap", "metadata": {"name": "other"}}),
            json!({"kind": "Secret", "metadata": {"name": "web-config-1"}}),
            json!({"kind": "Secret", "metadata": {"name": "s"}}),
            json!({"kind": "Secret", "metadata": {"name": "other"}}),
            json!({"kind": "Deployment", "metadata": {"name": "web"}}),
        ];
        let picked = hook_sources(&hooks, objects.iter());
        assert_eq!(picked, [objects[0].clone(), objects[3].clone()]);
        assert!(hook_sources(&[], objects.iter()).is_empty());
    }

    #[test]
    fn undo_failures_by_reason() {
        use UndoFailure::*;
        let cases = [
            (NoHistory, Reason::Asked, UndoVerdict::Invalid),
            (RevisionNotFound, Reason::Asked, UndoVerdict::Invalid),
            (NotFound, Reason::Asked, UndoVerdict::Invalid),
            (Other, Reason::Asked, UndoVerdict::Failed),
            (NoHistory, Reason::DeployFailed, UndoVerdict::NotPossible),
            (RevisionNotFound, Reason::DeployFailed, UndoVerdict::Failed),
            (NotFound, Reason::DeployFailed, UndoVerdict::Failed),
            (Other, Reason::DeployFailed, UndoVerdict::Failed),
        ];
        for (failure, reason, want) in cases {
            assert_eq!(
                undo_verdict(failure, reason),
                want,
                "{failure:?} {reason:?}"
            );
        }
    }

    #[test]
    fn verdicts_after_a_rollback() {
        use RollbackOutcome::*;
        let cases: [(bool, &[RollbackOutcome], Verdict); 6] = [
            (true, &[RolledBack], Verdict::RolledBack),
            (true, &[RolledBack, NotPossible], Verdict::RolledBack),
            (true, &[Skipped], Verdict::RolledBack),
            (true, &[NotPossible, NotPossible], Verdict::FirstDeploy),
            (true, &[], Verdict::FirstDeploy),
            (false, &[RolledBack, Failed], Verdict::RollbackFailed),
        ];
        for (ok, outcomes, want) in cases {
            assert_eq!(
                Verdict::after_rollback(ok, outcomes),
                want,
                "{ok} {outcomes:?}"
            );
        }
        assert_eq!(
            Verdict::RolledBack.summary("testing", "deployment/web: timed out"),
            "deploy to testing failed (deployment/web: timed out); rolled back"
        );
    }
}
