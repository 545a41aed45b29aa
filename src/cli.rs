//! The command line: what a person types, and what the action's inputs are turned into
//! (see `actions::inputs`). Only parsing lives here; `main` dispatches.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "promote",
    version,
    about = "Promote one container image, by digest, through development → testing → production on Kubernetes",
    after_help = "Exit codes: 0 success · 1 deployment or check failed (rolled back) · 2 invalid input or config (nothing changed) · 3 refused (gate or lock) · 4 rollback failed (a human must act)"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The promotion file.
    #[arg(
        long,
        global = true,
        env = "PROMOTE_CONFIG",
        default_value = "promotion.yml"
    )]
    pub config: PathBuf,
    /// Print outputs as one JSON object instead of `name=value` lines (outside Actions).
    #[arg(long, global = true)]
    pub json: bool,
    /// More detailed logs.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Token for the GitHub API.
    #[arg(long, global = true, env = "GITHUB_TOKEN", hide_env_values = true)]
    pub github_token: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render every environment's objects exactly as a deploy would apply them (no cluster needed).
    Plan(PlanArgs),
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Only this environment.
    #[arg(short, long, env = "PROMOTE_ENVIRONMENT")]
    pub environment: Option<String>,
    /// Only this service.
    #[arg(short, long)]
    pub service: Option<String>,
    /// Pin an image: `[SERVICE=]REGISTRY/REPOSITORY@sha256:…` (repeat per service).
    #[arg(long = "image", value_name = "[SERVICE=]REF")]
    pub images: Vec<String>,
    /// Write one multi-document YAML file per environment and service here.
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
}

pub fn parse_from(argv: Vec<OsString>) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(argv)
}

/// A parse error as one message without clap's own `error:` prefix. When the command line was
/// built from the action's inputs, an unknown subcommand is the `command` input's fault: say so.
pub fn usage_error(err: &clap::Error, from_inputs: bool) -> String {
    use clap::CommandFactory;
    use clap::error::{ContextKind, ErrorKind};
    if from_inputs && err.kind() == ErrorKind::InvalidSubcommand {
        let given = err
            .get(ContextKind::InvalidSubcommand)
            .map(|v| v.to_string())
            .unwrap_or_default();
        let known: Vec<String> = Cli::command()
            .get_subcommands()
            .filter(|c| c.get_name() != "help")
            .map(|c| format!("`{}`", c.get_name()))
            .collect();
        return format!(
            "input `command`: unknown command `{given}` (expected one of: {})",
            known.join(", ")
        );
    }
    let rendered = err.render().to_string();
    rendered.trim().trim_start_matches("error: ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::inputs::{INPUTS, InputKind};
    use clap::CommandFactory;

    /// Every action input must be a flag the CLI understands, or the action would fail to start.
    #[test]
    fn every_input_is_a_cli_flag() {
        let cli = Cli::command();
        let longs: Vec<&str> = cli
            .get_arguments()
            .chain(cli.get_subcommands().flat_map(|c| c.get_arguments()))
            .filter_map(|a| a.get_long())
            .collect();
        for def in INPUTS {
            let flag = match def.kind {
                InputKind::Command => continue,
                InputKind::Lines(flag) => flag,
                _ => def.name,
            };
            assert!(
                longs.contains(&flag),
                "input `{}` has no `--{flag}` flag",
                def.name
            );
        }
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
