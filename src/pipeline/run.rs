//! `promote run` (in progress).

use super::Runtime;
use crate::cli::{GlobalArgs, RunArgs};
use crate::outcome::Outcome;

pub async fn run_promotion(
    _rt: &mut Runtime<'_>,
    _global: &GlobalArgs,
    _args: &RunArgs,
) -> anyhow::Result<Outcome> {
    anyhow::bail!("not implemented yet")
}
