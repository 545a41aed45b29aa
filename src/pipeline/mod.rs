//! The commands a user runs, each a sequence of steps over the capability modules:
//! inputs → validated config → plan → effects → report. `promote run` (the full promotion)
//! arrives with the pipeline issue; `plan` is its first step and a command of its own.

pub mod copy;
pub mod deploy;
pub mod environments;
pub mod gate;
pub mod history;
pub mod plan;
pub mod push;
pub mod rollback;
pub mod run;
pub mod sign_in;
pub mod status;
pub mod verify;

use crate::actions::{Annotation, Console, Context, Outputs};
use crate::config::ConfigErrors;
use crate::kube::Provenance;
use crate::outcome::{Outcome, outcome_of};

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
