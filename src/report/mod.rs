//! Reports: turns results into what people read (job summary, terminal text) and what machines
//! read (the JSON report). Renders values only; never calls an API or reads the environment.

pub mod diff;
mod plan;
mod run;
mod run_render;

pub use plan::{
    changes_json, changes_text, plan_comment, plan_json, plan_summary, plan_summary_with, plan_text,
};
pub use run::*;
pub use run_render::{run_summary, run_text, status_summary, status_text};
