//! Kubernetes: everything the deploy verbs do to a cluster, and rendering (pure, no cluster).
//!
//! - `render`: promotion.yml + manifests → the exact objects, in apply order;
//! - [`connect`]: a client from the `kubeconfig` input, a kubeconfig file, in-cluster, or AKS;
//! - [`apply`]: server-side apply (dry-run first), dependency order, conflicts named;
//! - [`rollout`]: kubectl's rollout rules and the watch that waits for them;
//! - [`diagnose`]: why a rollout failed, from pods, events and logs;
//! - [`rollback`]: `kubectl rollout undo` semantics;
//! - [`lock`]: a Lease per environment and service;
//! - [`history`]: a Deployment's revisions;
//! - [`hooks`]: pre-deploy Jobs.
//!
//! Decisions are pure functions tested by table beside them; I/O goes through [`api`]'s retry
//! policy. The commands that sequence these steps live in `pipeline`.

pub mod api;
pub mod apply;
pub mod connect;
pub mod diagnose;
pub mod history;
pub mod hooks;
pub mod live;
pub mod lock;
mod render;
pub mod rollback;
pub mod rollout;
pub mod secret_env;
pub mod verified;
mod watch;

pub use render::{
    ANNOTATION_CHANGE_CAUSE, ANNOTATION_CONFIG_HASH, ANNOTATION_ENVIRONMENT, ANNOTATION_GIT_SHA,
    ANNOTATION_IMAGE, ANNOTATION_RUN_URL, LABEL_ENVIRONMENT, LABEL_MANAGED_BY, LABEL_SERVICE,
    MANAGER,
};
pub use render::{Provenance, Rendered, apply_rank, render_hooks, render_service};
