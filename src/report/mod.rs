//! Reports: turns results into what people read (job summary, terminal text) and what machines
//! read (the JSON report). Renders values only; never calls an API or reads the environment.

mod plan;
mod run;

pub use plan::{plan_json, plan_summary, plan_text};
pub use run::*;
