//! `promote environments` (in progress).

use super::Runtime;
use crate::cli::{EnvironmentsCommand, GlobalArgs};
use crate::outcome::Outcome;

pub async fn run_environments(
    _rt: &mut Runtime<'_>,
    _global: &GlobalArgs,
    _args: &EnvironmentsCommand,
) -> anyhow::Result<Outcome> {
    anyhow::bail!("not implemented yet")
}
