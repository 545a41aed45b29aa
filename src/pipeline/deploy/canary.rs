//! `strategy: canary`: a `<deployment>-canary` Deployment behind the same Service, grown step by
//! step and analysed at each step. Not wired yet: the canary branch replaces this body.

use super::{Deploy, Locked};
use crate::config;
use crate::outcome::{Classified, Outcome};
use crate::report::DeployReport;

/// Rolls the release out as a canary (see the module's documentation).
///
/// # Errors
/// Always, for now: invalid input (exit 2) before anything is written.
pub(super) async fn roll_out(
    _deploy: &Deploy<'_>,
    _locked: &Locked,
    _settings: &config::Canary,
    _report: &mut DeployReport,
) -> anyhow::Result<Outcome> {
    Err(Classified::invalid(anyhow::anyhow!(
        "canary is not wired yet"
    )))
}
