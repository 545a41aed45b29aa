//! The commands a user runs, each a sequence of steps over the capability modules:
//! inputs → validated config → plan → effects → report. One module per verb; `run` (the full
//! promotion step) sequences the others' phases. What commands share is here: the [`Runtime`],
//! the cluster connection, the JSON report writer and the release outputs.

mod cluster;
mod copy;
mod deploy;
mod drift;
mod environments;
mod gate;
mod history;
mod metrics;
mod plan;
mod push;
mod retire;
mod rollback;
mod run;
mod sign_in;
mod status;
mod verify;

use anyhow::Context as _;

use crate::actions::{Annotation, Console, Context, Outputs};
use crate::config::ConfigErrors;
use crate::kube::Provenance;
use crate::kube::Variables;
use crate::outcome::{Outcome, outcome_of};
pub use cluster::connect_to;
pub(crate) use cluster::serving_deployment;
pub use copy::run_copy;
pub use deploy::run_deploy;
pub use drift::run_drift;
pub use environments::run_environments;
pub use history::run_history;
pub use metrics::run_metrics;
pub use plan::run_plan;
pub use push::run_push;
pub use retire::run_retire;
pub use rollback::run_rollback;
pub use run::run_promotion;
pub use status::run_status;
pub use verify::run_verify;

/// Everything a command needs from the outside world, read once at start.
pub struct Runtime<'a> {
    pub ctx: &'a Context,
    pub console: &'a Console,
    pub outputs: &'a mut Outputs,
}

impl Runtime<'_> {
    /// Where this run comes from, recorded on what it changes.
    pub fn provenance(&self) -> Provenance {
        Provenance {
            git_sha: self.ctx.sha.clone(),
            run_url: self.ctx.run_url(),
        }
    }
}

/// `environment` when given, else every environment in promotion order.
pub(crate) fn environments<'a>(
    config: &'a crate::config::Config,
    name: Option<&str>,
) -> Result<Vec<&'a crate::config::Environment>, ConfigErrors> {
    match name.filter(|n| !n.is_empty()) {
        Some(name) => Ok(vec![crate::plan::environment(config, name)?]),
        None => Ok(config.environments.iter().collect()),
    }
}

/// Reads the job's variables the `fromEnv` Secrets of `environments` are made of, each masked
/// the moment it is read (see `kube::read_secret_variables`).
pub(crate) fn secret_variables<'a>(
    rt: &Runtime<'_>,
    environments: impl IntoIterator<Item = &'a crate::config::Environment>,
) -> Variables {
    crate::kube::read_secret_variables(
        environments.into_iter().flat_map(|e| &e.secrets),
        |name| rt.ctx.read_var(name, rt.console),
        rt.console,
    )
}

/// Writes a command's JSON report as `file_name` into `output_dir` (default: the runner's temp
/// directory) and sets the `report-path` output. Every command's report goes through here.
///
/// # Errors
/// Only when the report cannot be serialized (a bug worth failing for). A report that cannot be
/// written is a warning: the command's own outcome stands.
pub(crate) fn write_report(
    rt: &mut Runtime<'_>,
    file_name: &str,
    report: &impl serde::Serialize,
    output_dir: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let dir = output_dir
        .map(std::path::Path::to_path_buf)
        .or_else(|| rt.ctx.runner_temp.as_ref().map(std::path::PathBuf::from));
    let Some(dir) = dir else { return Ok(()) };
    let path = dir.join(file_name);
    let json = serde_json::to_string_pretty(report)
        .with_context(|| format!("serializing the report {file_name}"))?;
    // Nothing secret is put in a report; redacting is the seatbelt for what a server might echo
    // back into a message.
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&path, crate::actions::redact(&json).as_bytes()));
    match written {
        Ok(()) => rt.outputs.set("report-path", path.display().to_string()),
        Err(e) => rt.console.annotate(
            &Annotation::warning(format!(
                "cannot write the report to {}: {e}",
                path.display()
            ))
            .title("Report not written"),
        ),
    }
    Ok(())
}

/// The `image` and `digest` outputs (for one image, `REPOSITORY@sha256:…`) and `revision`:
/// set the same way by every command that has them.
pub(crate) fn set_release_outputs(
    outputs: &mut Outputs,
    image: Option<&str>,
    revision: Option<i64>,
) {
    if let Some(image) = image {
        outputs.set("image", image);
        if let Some((_, digest)) = image.split_once('@') {
            outputs.set("digest", digest);
        }
    }
    if let Some(revision) = revision {
        outputs.set("revision", revision.to_string());
    }
}

/// Prints a failed command's error once, in the form its reader needs: every config error
/// located (and annotated in Actions), anything else as one line with its causes.
pub fn report_failure(console: &Console, err: &anyhow::Error) -> Outcome {
    let outcome = outcome_of(err);
    if let Some(errors) = err.chain().find_map(|c| c.downcast_ref::<ConfigErrors>()) {
        for e in &errors.0 {
            let mut annotation = Annotation::error(format!(
                "{}{}",
                if e.field.is_empty() {
                    String::new()
                } else {
                    format!("{}: ", e.field)
                },
                e.message
            ))
            .title(if e.file.as_os_str().is_empty() {
                "Invalid input"
            } else {
                "Invalid configuration"
            });
            if !e.file.as_os_str().is_empty() {
                annotation = annotation
                    .file(e.file.display().to_string())
                    .line(e.pos.line)
                    .col(e.pos.col);
            }
            if console.in_actions() {
                console.annotate(&annotation);
            } else {
                crate::say!("error: {e}");
            }
        }
        crate::say!("{errors}");
    } else {
        let message = format!("{err:#}");
        if console.in_actions() {
            console.annotate(
                &Annotation::error(message.clone()).title(format!("promote: {}", outcome.word())),
            );
        }
        crate::say!("error: {message}");
    }
    outcome
}
