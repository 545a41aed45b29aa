//! Kubernetes: rendering an environment's objects. Applying them, waiting for rollouts, rolling
//! back and locking arrive with the deploy issue; rendering is pure and needs no cluster.

mod render;

#[allow(unused_imports)] // the deploy issue reads these labels back from the cluster
pub use render::{
    ANNOTATION_CHANGE_CAUSE, ANNOTATION_CONFIG_HASH, ANNOTATION_GIT_SHA, ANNOTATION_IMAGE,
    ANNOTATION_RUN_URL, LABEL_ENVIRONMENT, LABEL_MANAGED_BY, LABEL_SERVICE, MANAGER,
};
pub use render::{Provenance, Rendered, apply_rank, render_hooks, render_service};
