//! `strategy: blue-green`: the release goes to the idle colour of two Deployments
//! `<deployment>-blue` / `-green`, is checked through the preview Service, and the Service's
//! selector switches to it in one patch.

use super::{Deploy, Locked};
use crate::config;
use crate::outcome::{Classified, Outcome};
use crate::report::DeployReport;

/// Rolls the release out blue-green (see the module's documentation).
///
/// # Errors
/// The API failing outside a rollout, or checks that cannot run (invalid input).
pub(super) async fn roll_out(
    _deploy: &Deploy<'_>,
    _locked: &Locked,
    _settings: &config::BlueGreen,
    _report: &mut DeployReport,
) -> anyhow::Result<Outcome> {
    Err(Classified::invalid(anyhow::anyhow!(
        "blue-green is not wired yet"
    )))
}
