//! The GitHub Actions runtime, and nothing else: the run [`Context`], workflow commands on
//! stdout ([`Console`], [`Annotation`]), file commands (`GITHUB_OUTPUT`, `GITHUB_ENV`,
//! `GITHUB_STATE`), the job [`Summary`], secret masking ([`Secret`], [`mask`], [`redact`]) and
//! logging ([`init_logging`]).
//!
//! No other module reads `GITHUB_*` or `RUNNER_*` variables or prints a workflow command. The
//! environment is read once into a [`Context`] that callers pass down, so the rest of the crate is
//! tested without touching the process environment (the opposite of k8s-deploy's helpers, which
//! read `GITHUB_*` deep inside). Outside Actions everything here degrades to plain CLI behaviour:
//! readable messages on stderr, `name=value` outputs on stdout.
//!
//! Everything that leaves the process through this module (commands, files, the summary, log
//! lines) passes through [`redact`] first, so a value given to [`mask`] cannot be printed by
//! accident.

mod commands;
mod context;
mod files;
pub mod inputs;
mod log;
mod masks;
mod secret;
mod summary;

pub use commands::{Annotation, Console, Level, command_line, escape_data, escape_property, say};
pub use context::{Context, Variable};
pub use files::{
    FileCommandError, OutputFormat, Outputs, append_entry, format_entry, random_delimiter,
};
pub use log::init_logging;
pub use masks::redact;
pub use secret::{Secret, mask};
pub use summary::{Priority, SUMMARY_LIMIT, Summary, code_fence, table};
