//! `promote status` (in progress).

use super::Runtime;
use crate::cli::{GlobalArgs, StatusArgs};
use crate::outcome::Outcome;

pub async fn run_status(
    _rt: &mut Runtime<'_>,
    _global: &GlobalArgs,
    _args: &StatusArgs,
) -> anyhow::Result<Outcome> {
    anyhow::bail!("not implemented yet")
}
