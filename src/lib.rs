//! promote-action: carries one container image, by digest, through an ordered set of
//! environments on Kubernetes. The `promote` binary (src/main.rs) parses and dispatches; the
//! capabilities live here, one module each, so tests can drive them without a process.

pub mod actions;
pub mod azure;
pub mod checks;
pub mod cli;
pub mod config;
pub mod drift;
pub mod github;
pub mod kpi;
pub mod kube;
pub mod outcome;
pub mod pipeline;
pub mod plan;
pub mod registry;
pub mod report;
pub mod untrusted;
