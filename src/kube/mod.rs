//! Kubernetes: its one job is to do to a cluster what the deploy verbs need (connect, apply,
//! wait for rollouts and Jobs, diagnose, roll back, lock) and to render promotion.yml and
//! manifests into the exact objects to apply (pure, no cluster). Deciding what to do, and
//! reporting it, is the caller's (`pipeline`, `report`).
//!
//! - `render`: promotion.yml + manifests → the exact objects, in apply order;
//! - `connect`: a client from the `kubeconfig` input, a kubeconfig file, in-cluster, or AKS
//!   (from the user credential `azure` fetches);
//! - `apply`: server-side apply (dry-run first), dependency order, conflicts named;
//! - `rollout`: kubectl's rollout rules and the watch that waits for them;
//! - `diagnose`: why a rollout failed, from pods, events and logs;
//! - `rollback`: `kubectl rollout undo` semantics;
//! - `lock`: a Lease per environment and service;
//! - `history`: a Deployment's revisions; `verified`: which release passed verification;
//! - `blue_green`: the two colours, the selector switch and the preview Service;
//! - `canary`: a canary's objects (`<deployment>-canary`, NGINX's canary Ingress), its size
//!   for a step's weight, scaling and removal;
//! - `hooks`: pre-deploy Jobs; `job`: running a Job to its end (watched, its log
//!   streamed), for hooks and integration checks;
//! - `live`: a namespace as it runs, Secret values hashed as read, for `drift`;
//! - `secret_env`: Secrets made from the job's variables (`fromEnv`), masked as read, and their
//!   hash on the pod templates that read them.
//!
//! Decisions are pure functions tested by table beside them; I/O goes through `api`'s retry
//! policy. The submodules are private: callers use the names re-exported here.

mod api;
mod apply;
mod blue_green;
mod canary;
mod connect;
mod diagnose;
mod history;
mod hooks;
mod job;
mod live;
mod lock;
mod render;
mod rollback;
mod rollout;
mod secret_env;
mod verified;
mod watch;

pub use api::{ApiError, retrying};
pub use apply::{
    ApplyError, Batch as ApplyBatch, CONCURRENCY as APPLY_CONCURRENCY, Force, Mode, apply_all,
    apply_one, get_live, known_resource, object_ref,
};
pub use blue_green::{
    ANNOTATION_SWITCHED_AT, Colour, ColourState, LABEL_VERSION, Live as BlueGreenLive, NoPrevious,
    Retirement, Start as BlueGreenStart, SwitchBack, colour_from_live, colour_name,
    delete_deployment, kept_until, objects_before_switch, plain_from_colour, preview_name,
    previous_expired, read_deployment, read_live as read_blue_green, retirement,
    serving_deployment, serving_name, start as blue_green_start, switch as switch_selector,
    switch_back as blue_green_switch_back, switched_services,
};
pub use canary::{
    ANNOTATION_NGINX_CANARY, ANNOTATION_NGINX_CANARY_WEIGHT, LABEL_TRACK, Split as CanarySplit,
    canary_deployment, canary_ingress, canary_name, canary_service,
    ingress_split as canary_ingress_split, ready_replicas, remove as remove_object,
    scale as scale_deployment, split as canary_split, stable_deployment,
};
pub use connect::{
    ClusterInputs, ConnectError, Connection, Source as ClusterSource, Token as EntraToken,
    TokenSource, aks_client, connect, connect_aks, resolve_source,
};
pub use diagnose::{
    ContainerState, Diagnosis, EventLine, Failure, FailureReason, LogTail, PodState,
    collect as collect_diagnosis,
};
pub use history::{Revision, read as read_history};
pub use hooks::{HookOutcome, HookReport, run as run_hooks};
pub use job::{
    JobEnd, JobRun, delete as delete_job, follow as follow_job, print_line as print_job_line,
};
pub use live::{
    LiveError, LiveNamespace, LiveSecret, ValueHasher, hide_values as hide_secret_values,
    read_namespace,
};
pub use lock::{
    HeldLock, LEASE_DURATION, LockError, LockRequest, acquire as acquire_lock, lease_name,
};
pub use render::{
    ANNOTATION_CONFIG_HASH, ANNOTATION_IMAGE, ANNOTATION_SECRET_NAME, LABEL_ENVIRONMENT,
    LABEL_MANAGED_BY, LABEL_SERVICE, MANAGER, Provenance, Rendered, apply_rank, render_hooks,
    render_service,
};
pub use rollback::{ROLLBACK_MANAGER, RollbackError, UndoError, UndoResult, undo};
pub use rollout::{
    RolloutOutcome, RolloutResult, RolloutState, Workload, WorkloadKind,
    evaluate_value as evaluate_rollout, revision_of, wait as wait_for_rollout,
};
pub use secret_env::{
    Absence, ManagedSecret, Materialized, MissingVariable, MissingVariables, Variables,
    materialize as materialize_secrets, pod_references, point_at_versions,
    read_variables as read_secret_variables, rename_secret_references,
};
pub use verified::{LiveService, Verified, mark as mark_verified, read as read_verified};
