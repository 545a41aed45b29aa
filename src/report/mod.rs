//! Reports: turns results into what people read (job summary, terminal text) and what machines
//! read (the JSON report). Renders values only; never calls an API or reads the environment.

pub mod diff;
pub mod drift;
mod map;
mod plan;
mod rollout;
mod run;
mod status;
mod summary;
mod terminal;
#[cfg(test)]
mod tests;
mod text;
mod verification;

pub use plan::{
    changes_json, changes_text, plan_comment, plan_json, plan_summary, plan_summary_with, plan_text,
};
pub use run::*;
pub use status::{status_summary, status_text};
pub use summary::run_summary;
pub use terminal::run_text;
