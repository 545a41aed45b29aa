//! The commands a user runs, each a sequence of steps over the capability modules:
//! inputs → validated config → plan → effects → report. `promote run` (the full promotion)
//! arrives with the pipeline issue; `plan` is its first step and a command of its own.

pub mod plan;

use std::path::PathBuf;

use anyhow::Context as _;

use crate::actions::{Annotation, Console, Context, Outputs};
use crate::cli::{GlobalArgs, PlanArgs};
use crate::config::{self, ConfigErrors};
use crate::kube::Provenance;
use crate::outcome::{Outcome, outcome_of};
use crate::report;

/// Everything a command needs from the outside world, read once at start.
pub struct Runtime<'a> {
    pub ctx: &'a Context,
    pub console: &'a Console,
    pub outputs: &'a mut Outputs,
}

/// `promote plan`.
pub fn run_plan(
    rt: &mut Runtime<'_>,
    global: &GlobalArgs,
    args: &PlanArgs,
) -> anyhow::Result<Outcome> {
    let config = config::load(&global.config)?;
    let request = plan::PlanRequest {
        environment: args.environment.clone(),
        service: args.service.clone(),
        images: args.images.clone(),
        provenance: Provenance {
            git_sha: rt.ctx.sha.clone(),
            run_url: rt.ctx.run_url(),
        },
    };
    let plan = plan::plan(&config, &request)?;

    eprint!("{}", report::plan_text(&config, &plan));
    if let Some(dir) = &args.output_dir {
        let files = plan::write_files(&plan, dir)?;
        eprintln!(
            "\nWrote {} file{} to {}",
            files.len(),
            if files.len() == 1 { "" } else { "s" },
            dir.display()
        );
    }

    // The JSON report goes beside the rendered files, or to the runner's temp dir in Actions.
    let report_dir = args
        .output_dir
        .clone()
        .or_else(|| rt.ctx.runner_temp.as_ref().map(PathBuf::from));
    if let Some(dir) = report_dir {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("promote-plan.json");
        let json = serde_json::to_string_pretty(&report::plan_json(&config, &plan))?;
        std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?;
        rt.outputs.set("report-path", path.display().to_string());
    }
    if let [env] = plan.environments.as_slice()
        && let Some(url) = config.environment(&env.name).and_then(|e| e.url.clone())
    {
        rt.outputs.set("environment-url", url);
    }
    let pinned: Vec<_> = plan.images.values().filter(|i| i.pinned).collect();
    if let [only] = pinned.as_slice() {
        rt.outputs.set("image", only.reference.pinned());
        if let Some(d) = &only.reference.digest {
            rt.outputs.set("digest", d.to_string());
        }
    }
    report::plan_summary(&config, &plan)
        .write(rt.ctx)
        .context("writing the job summary")?;
    Ok(Outcome::Success)
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
                eprintln!("error: {e}");
            }
        }
        eprintln!("{errors}");
    } else {
        let message = format!("{err:#}");
        if console.in_actions() {
            console.annotate(
                &Annotation::error(message.clone()).title(format!("promote: {}", outcome.word())),
            );
        }
        eprintln!("error: {message}");
    }
    outcome
}
