//! One deploy at a time per environment and service: a `coordination.k8s.io/v1` Lease in the
//! environment's namespace, held for the whole deploy and renewed while it runs, with the run's
//! URL as holder so whoever waits can see who holds it.
//!
//! The decision (take, wait, take over an expired lease) is pure and tested; acquiring uses
//! optimistic concurrency (create, or replace at the resourceVersion read), so two runs racing
//! for a free or expired lease cannot both win: the loser gets 409 and decides again.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{DeleteParams, PostParams, Preconditions};
use kube::{Api, Client};
use tokio::sync::oneshot;

use super::api::{self, ApiError};
use super::render::{LABEL_ENVIRONMENT, LABEL_MANAGED_BY, LABEL_SERVICE, MANAGER};

/// How long a lease stays valid without renewal. A run that dies (cancelled job, lost runner)
/// frees the environment after this long.
pub const LEASE_DURATION: Duration = Duration::from_secs(60);

/// How often a waiting run looks at the lease again.
const POLL: Duration = Duration::from_secs(2);

/// What to do about a lease, seen at `now` by `me`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockDecision {
    /// There is no lease: create it.
    Create,
    /// It is ours already (a retried step of the same run): renew it.
    Renew,
    /// Its holder released it or stopped renewing it: take it over.
    TakeOver { previous: Option<String> },
    /// Someone else holds it for `remaining` more unless renewed.
    Wait { holder: String, remaining: Duration },
}

/// Decides from the lease as read.
pub fn decide(lease: Option<&Lease>, me: &str, now: Timestamp) -> LockDecision {
    let Some(lease) = lease else {
        return LockDecision::Create;
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.filter(|h| !h.is_empty());
    let Some(holder) = holder else {
        return LockDecision::TakeOver { previous: None };
    };
    if holder == me {
        return LockDecision::Renew;
    }
    let since = spec
        .renew_time
        .or(spec.acquire_time)
        .map(|t| t.0)
        .unwrap_or(Timestamp::UNIX_EPOCH);
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(0)));
    let expires = since.checked_add(duration).unwrap_or(since);
    if expires <= now {
        return LockDecision::TakeOver {
            previous: Some(holder),
        };
    }
    let remaining = expires.duration_since(now).unsigned_abs();
    LockDecision::Wait { holder, remaining }
}

/// The Lease name for an environment and service: `promote-<environment>-<service>`.
pub fn lease_name(environment: &str, service: &str) -> String {
    format!("promote-{environment}-{service}")
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{lease} is held by {holder}; gave up after waiting {waited:?} (lock-timeout)")]
    Held {
        lease: String,
        holder: String,
        waited: Duration,
    },
    #[error("cannot use lease {lease}")]
    Api {
        lease: String,
        #[source]
        source: ApiError,
    },
}

/// A held lease; renewed in the background until [`HeldLock::release`] (or drop).
pub struct HeldLock {
    pub name: String,
    pub holder: String,
    /// Who held it before, when an expired lease was taken over.
    pub took_over_from: Option<String>,
    pub waited: Duration,
    api: Api<Lease>,
    stop: Option<oneshot::Sender<()>>,
    renewal: Option<tokio::task::JoinHandle<()>>,
}

impl HeldLock {
    /// Stops renewing and deletes the lease if it is still ours.
    pub async fn release(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.renewal.take() {
            let _ = task.await;
        }
        let Ok(Some(lease)) = self.api.get_opt(&self.name).await else {
            return;
        };
        if decide(Some(&lease), &self.holder, Timestamp::now()) != LockDecision::Renew {
            return;
        }
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: lease.metadata.resource_version.clone(),
                uid: lease.metadata.uid.clone(),
            }),
            ..DeleteParams::default()
        };
        if let Err(e) = self.api.delete(&self.name, &params).await {
            tracing::warn!(
                "could not release lease {}: {}",
                self.name,
                ApiError::from(e)
            );
        }
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        if let Some(task) = self.renewal.take() {
            task.abort();
        }
    }
}

/// What to lock.
#[derive(Debug, Clone)]
pub struct LockRequest {
    pub namespace: String,
    pub environment: String,
    pub service: String,
    /// The run URL (or a local identity).
    pub holder: String,
    /// How long to wait for another holder.
    pub timeout: Duration,
    /// How long the lease lasts without renewal ([`LEASE_DURATION`]); it is renewed every
    /// third of that, so two renewals may fail before it lapses.
    pub lease_duration: Duration,
}

/// Takes the lease, waiting up to `request.timeout` while someone else holds it.
/// `on_wait` is called once, with the holder, when waiting starts.
///
/// # Errors
/// [`LockError::Held`] naming the holder when the wait times out; [`LockError::Api`] when the
/// lease cannot be read or written (RBAC: `leases` in `coordination.k8s.io`).
pub async fn acquire(
    client: &Client,
    request: &LockRequest,
    on_wait: &(dyn Fn(&str) + Sync),
) -> Result<HeldLock, LockError> {
    let name = lease_name(&request.environment, &request.service);
    let api: Api<Lease> = Api::namespaced(client.clone(), &request.namespace);
    let started = tokio::time::Instant::now();
    let deadline = started + request.timeout;
    let err = |source: ApiError| LockError::Api {
        lease: name.clone(),
        source,
    };
    let mut announced = false;
    loop {
        let current = api::retrying("reading the lease", || api.get_opt(&name))
            .await
            .map_err(err)?;
        let now = Timestamp::now();
        let decision = decide(current.as_ref(), &request.holder, now);
        let took_over_from = match &decision {
            LockDecision::TakeOver { previous } => previous.clone(),
            _ => None,
        };
        let written = match decision {
            LockDecision::Create => {
                let lease = new_lease(&name, request, now, None);
                api.create(&PostParams::default(), &lease).await
            }
            LockDecision::Renew | LockDecision::TakeOver { .. } => {
                let current = current.expect("decided from a lease");
                let lease = new_lease(&name, request, now, Some(&current));
                api.replace(&name, &PostParams::default(), &lease).await
            }
            LockDecision::Wait { holder, remaining } => {
                if tokio::time::Instant::now() >= deadline {
                    return Err(LockError::Held {
                        lease: name.clone(),
                        holder,
                        waited: started.elapsed(),
                    });
                }
                if !announced {
                    on_wait(&holder);
                    announced = true;
                }
                let pause = POLL
                    .min(remaining + Duration::from_millis(100))
                    .min(deadline.saturating_duration_since(tokio::time::Instant::now()));
                tokio::time::sleep(pause.max(Duration::from_millis(50))).await;
                continue;
            }
        };
        match written.map_err(ApiError::from) {
            Ok(lease) => {
                let (stop, stopped) = oneshot::channel();
                let renewal = tokio::spawn(renew(
                    api.clone(),
                    name.clone(),
                    request.holder.clone(),
                    lease,
                    request.lease_duration / 3,
                    stopped,
                ));
                return Ok(HeldLock {
                    name,
                    holder: request.holder.clone(),
                    took_over_from,
                    waited: started.elapsed(),
                    api,
                    stop: Some(stop),
                    renewal: Some(renewal),
                });
            }
            // Someone else created or changed it between our read and write: decide again.
            Err(e) if e.is_conflict() => continue,
            Err(e) if api::is_transient(&e) => {
                tokio::time::sleep(api::backoff(0, None)).await;
                continue;
            }
            Err(e) => return Err(err(e)),
        }
    }
}

fn new_lease(name: &str, request: &LockRequest, now: Timestamp, current: Option<&Lease>) -> Lease {
    let previous = current.and_then(|l| l.spec.clone()).unwrap_or_default();
    let ours = previous.holder_identity.as_deref() == Some(request.holder.as_str());
    let transitions =
        previous.lease_transitions.unwrap_or(0) + i32::from(current.is_some() && !ours);
    Lease {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(request.namespace.clone()),
            resource_version: current.and_then(|l| l.metadata.resource_version.clone()),
            labels: Some(
                [
                    (LABEL_MANAGED_BY.to_string(), MANAGER.to_string()),
                    (LABEL_ENVIRONMENT.to_string(), request.environment.clone()),
                    (LABEL_SERVICE.to_string(), request.service.clone()),
                ]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(request.holder.clone()),
            lease_duration_seconds: Some(
                i32::try_from(request.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX),
            ),
            acquire_time: Some(MicroTime(if ours {
                previous.acquire_time.map(|t| t.0).unwrap_or(now)
            } else {
                now
            })),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }),
    }
}

/// Renews every `every` until stopped. A lease lost to someone else (we stopped renewing
/// for longer than its duration) is logged; the deploy itself is not interrupted mid-rollout.
async fn renew(
    api: Api<Lease>,
    name: String,
    holder: String,
    mut lease: Lease,
    every: Duration,
    mut stopped: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            _ = tokio::time::sleep(every) => {}
        }
        let now = Timestamp::now();
        if let Some(spec) = lease.spec.as_mut() {
            spec.renew_time = Some(MicroTime(now));
        }
        match api.replace(&name, &PostParams::default(), &lease).await {
            Ok(renewed) => lease = renewed,
            Err(e) => {
                let e = ApiError::from(e);
                // Read again: a conflict may just be a stale resourceVersion.
                match api.get_opt(&name).await {
                    Ok(Some(current))
                        if decide(Some(&current), &holder, now) == LockDecision::Renew =>
                    {
                        lease = current;
                    }
                    Ok(current) => {
                        let by = current
                            .and_then(|l| l.spec)
                            .and_then(|s| s.holder_identity)
                            .unwrap_or_else(|| "nobody".into());
                        tracing::warn!("lost lease {name} (now held by {by}): {e}");
                        return;
                    }
                    Err(_) => tracing::warn!("could not renew lease {name}: {e}"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(yaml: &str) -> Lease {
        serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("fixture: {e}\n{yaml}"))
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    const ME: &str = "https://github.com/o/r/actions/runs/2";

    /// Every branch of the decision, from leases as the API returns them.
    #[test]
    fn lock_decisions() {
        let now = at("2025-01-01T00:01:00Z");
        let cases: &[(&str, Option<&str>, LockDecision)] = &[
            ("no lease: create it", None, LockDecision::Create),
            (
                "held and fresh: wait for the rest of its duration",
                Some("metadata: {name: l}
spec: {holderIdentity: 'https://github.com/o/r/actions/runs/1', leaseDurationSeconds: 60, renewTime: '2025-01-01T00:00:30.000000Z'}"),
                LockDecision::Wait {
                    holder: "https://github.com/o/r/actions/runs/1".into(),
                    remaining: Duration::from_secs(30),
                },
            ),
            (
                "expired: take it over",
                Some("metadata: {name: l}
spec: {holderIdentity: 'https://github.com/o/r/actions/runs/1', leaseDurationSeconds: 60, renewTime: '2025-01-01T00:00:00.000000Z'}"),
                LockDecision::TakeOver {
                    previous: Some("https://github.com/o/r/actions/runs/1".into()),
                },
            ),
            (
                "never renewed: acquireTime counts",
                Some("metadata: {name: l}
spec: {holderIdentity: other, leaseDurationSeconds: 60, acquireTime: '2025-01-01T00:00:59.000000Z'}"),
                LockDecision::Wait {
                    holder: "other".into(),
                    remaining: Duration::from_secs(59),
                },
            ),
            (
                "released (no holder): take it",
                Some("metadata: {name: l}
spec: {leaseDurationSeconds: 60, renewTime: '2025-01-01T00:00:59.000000Z'}"),
                LockDecision::TakeOver { previous: None },
            ),
            (
                "ours already: renew",
                Some("metadata: {name: l}
spec: {holderIdentity: 'https://github.com/o/r/actions/runs/2', leaseDurationSeconds: 60, renewTime: '2025-01-01T00:00:59.000000Z'}"),
                LockDecision::Renew,
            ),
            (
                "no times at all: long expired",
                Some("metadata: {name: l}
spec: {holderIdentity: other}"),
                LockDecision::TakeOver {
                    previous: Some("other".into()),
                },
            ),
        ];
        for (case, yaml, want) in cases {
            let lease = yaml.map(lease);
            assert_eq!(decide(lease.as_ref(), ME, now), *want, "case: {case}");
        }
    }

    #[test]
    fn a_taken_over_lease_counts_a_transition_and_keeps_its_version() {
        let request = LockRequest {
            namespace: "testing".into(),
            environment: "testing".into(),
            service: "web".into(),
            holder: ME.into(),
            timeout: Duration::from_secs(1),
            lease_duration: LEASE_DURATION,
        };
        let old = lease(
            "metadata: {name: l, resourceVersion: '7'}
spec: {holderIdentity: other, leaseDurationSeconds: 60, leaseTransitions: 2}",
        );
        let now = at("2025-01-01T00:01:00Z");
        let new = new_lease("promote-testing-web", &request, now, Some(&old));
        let spec = new.spec.unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some(ME));
        assert_eq!(spec.lease_transitions, Some(3));
        assert_eq!(spec.lease_duration_seconds, Some(60));
        assert_eq!(new.metadata.resource_version.as_deref(), Some("7"));
        assert_eq!(lease_name("testing", "web"), "promote-testing-web");
    }
}
