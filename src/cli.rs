//! The command line: what a person types, and what the action's inputs are turned into
//! (see `actions::inputs`). Only parsing lives here; `main` dispatches.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// A token or password from the command line or the environment. `Debug` shows `***`, so a
/// logged argument struct cannot leak it; [`SecretArg::expose`] is the one way to the value.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretArg(String);

impl SecretArg {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretArg(***)")
    }
}

impl std::str::FromStr for SecretArg {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(SecretArg(s.to_string()))
    }
}

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
    /// Print outputs as one JSON object instead of `name=value` lines (outside Actions);
    /// `metrics` prints its report instead.
    #[arg(long, global = true)]
    pub json: bool,
    /// More detailed logs.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Token for the GitHub API.
    #[arg(long, global = true, env = "GITHUB_TOKEN", hide_env_values = true)]
    pub github_token: Option<SecretArg>,
    #[command(flatten)]
    pub auth: AuthArgs,
}

impl GlobalArgs {
    /// The GitHub token, trimmed; `None` when unset or blank (an unset secret reaches a
    /// workflow as an empty string).
    pub fn github_token(&self) -> Option<&str> {
        self.github_token
            .as_ref()
            .map(|t| t.expose().trim())
            .filter(|t| !t.is_empty())
    }
}

/// Sign-in to registries and to Azure, for every command that needs it (push, copy, and AKS).
/// With `--registry-username`, Basic credentials are used; else with `--azure-client-id`, Azure
/// (GitHub OIDC, or `--azure-client-secret`); else anonymous.
#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// Registry user name: ACR admin user, scope-map token name, or service principal app id.
    #[arg(long, global = true, env = "PROMOTE_REGISTRY_USERNAME")]
    pub registry_username: Option<String>,
    /// Password or token for --registry-username.
    #[arg(
        long,
        global = true,
        env = "PROMOTE_REGISTRY_PASSWORD",
        hide_env_values = true
    )]
    pub registry_password: Option<SecretArg>,
    /// Client id of the Entra app registration to sign in to Azure with.
    #[arg(long, global = true, env = "PROMOTE_AZURE_CLIENT_ID")]
    pub azure_client_id: Option<String>,
    /// Entra tenant id of that app registration.
    #[arg(long, global = true, env = "PROMOTE_AZURE_TENANT_ID")]
    pub azure_tenant_id: Option<String>,
    /// A service principal's client secret, instead of GitHub OIDC.
    #[arg(
        long,
        global = true,
        env = "PROMOTE_AZURE_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub azure_client_secret: Option<SecretArg>,
    /// Microsoft Entra authority host (sovereign clouds, tests).
    #[arg(long, global = true, default_value = crate::azure::DEFAULT_AUTHORITY_HOST)]
    pub azure_authority_host: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render every environment's objects exactly as a deploy would apply them (no cluster needed).
    Plan(PlanArgs),
    /// Push an image a build left on disk (OCI layout, OCI archive or `docker save` tar) by digest.
    Push(PushArgs),
    /// Copy an image by digest to another repository or registry, adding tags.
    Copy(CopyArgs),
    /// Validate with a server-side dry run, apply, wait for the rollout, roll back on failure.
    Deploy(DeployArgs),
    /// Roll workloads back to their previous (or a given) revision, like `kubectl rollout undo`.
    Rollback(RollbackArgs),
    /// List each service's Deployment revisions: digest, git sha, time, change-cause.
    History(HistoryArgs),
    /// Run an environment's checks: smoke checks with the SLO gate, integration Jobs, the soak.
    Verify(VerifyArgs),
    /// Promote a release to one environment: gate, copy by digest, deploy, verify, record.
    Run(RunArgs),
    /// Every environment side by side: digest, commit, revision, replicas, age, who, outcome.
    Status(StatusArgs),
    /// Scale to zero each blue-green previous colour whose `keepPrevious` window has passed
    /// since the switch; nothing else changes. Meant for a schedule (see workflows-examples).
    Retire(RetireArgs),
    /// Compare the environments' clusters side by side and with promotion.yml; exit 1 when
    /// something differs that promotion.yml does not declare (a hand edit, say).
    Drift(DriftArgs),
    /// Create or update GitHub environments' protection rules from the promotion file, or check them.
    #[command(subcommand)]
    Environments(EnvironmentsCommand),
    /// Delivery metrics from GitHub's deployments: frequency, lead time, change failure rate and
    /// time to restore, against the seed's targets.
    Metrics(MetricsArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The environment to promote to.
    #[arg(short, long, env = "PROMOTE_ENVIRONMENT")]
    pub environment: String,
    /// The release's image of a service, `[SERVICE=]REGISTRY/REPOSITORY@sha256:…` or a tag
    /// (resolved once); default: what the `requires` environment last verified.
    #[arg(long = "image", value_name = "[SERVICE=]REF")]
    pub images: Vec<String>,
    /// Emergency only: promote without the gate (the lower environment's success, the branch);
    /// shown loudly in the summary.
    #[arg(long)]
    pub skip_gate: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Create the namespace (labelled with the environment) when it does not exist.
    #[arg(long)]
    pub create_namespace: bool,
    /// Take over fields other field managers own (server-side apply `force`).
    #[arg(long)]
    pub force: bool,
    /// How long each rollout may take (default: the environment's `rollout.timeout`).
    #[arg(long, value_parser = parse_timeout)]
    pub timeout: Option<std::time::Duration>,
    /// How long to wait for another run's lock before giving up with exit 3 (default 10m).
    #[arg(long, value_parser = parse_timeout)]
    pub lock_timeout: Option<std::time::Duration>,
    /// Write the JSON report (promote-run.json) here (default: the runner's temp directory).
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
    #[command(flatten)]
    pub transfer: TransferArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this environment (default: all).
    #[arg(short, long, env = "PROMOTE_ENVIRONMENT")]
    pub environment: Option<String>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Write promote-status.json here (default: the runner's temp directory).
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RetireArgs {
    /// Only this environment (default: every blue-green one).
    #[arg(short, long, env = "PROMOTE_ENVIRONMENT")]
    pub environment: Option<String>,
    /// Only this service.
    #[arg(short, long)]
    pub service: Option<String>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// How long to wait for a deploy's lock before skipping the environment (default 30s: the
    /// deploy holding it takes the previous colour over itself).
    #[arg(long, value_parser = parse_timeout)]
    pub lock_timeout: Option<std::time::Duration>,
    /// Write promote-retire.json here (default: the runner's temp directory).
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DriftArgs {
    /// Only these environments (repeat; default: all, in promotion order). One alone still
    /// shows hand edits; differences between environments need two.
    #[arg(short, long = "environment", env = "PROMOTE_ENVIRONMENT")]
    pub environments: Vec<String>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Write promote-drift.json here (default: the runner's temp directory).
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// How far back to measure: `30d`, `2w`, `12h`, `1d12h` or a number of days.
    #[arg(long, default_value = "30d", value_parser = parse_window)]
    pub since: std::time::Duration,
    /// Only this environment (default: all GitHub has, in the promotion file's order).
    #[arg(short, long, env = "PROMOTE_ENVIRONMENT")]
    pub environment: Option<String>,
    /// Write promote-metrics.json here (default: the runner's temp directory).
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum EnvironmentsCommand {
    /// Create or update each environment's reviewers, wait timer, self-review rule and branch policy.
    Sync(EnvironmentsArgs),
    /// Change nothing; report where GitHub differs from the promotion file (exit 1 on drift).
    Check(EnvironmentsArgs),
}

#[derive(Debug, Args)]
pub struct EnvironmentsArgs {
    /// Only this environment (default: all).
    #[arg(short, long, env = "PROMOTE_ENVIRONMENT")]
    pub environment: Option<String>,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The image on disk: an OCI image layout directory, an OCI archive or a `docker save` tar.
    #[arg(long, value_name = "PATH")]
    pub source: PathBuf,
    /// Where to push: `REGISTRY/REPOSITORY` (a `:tag` counts as one more --tag).
    #[arg(long = "image", value_name = "REGISTRY/REPOSITORY")]
    pub image: String,
    /// A tag to set once the image is complete (repeat for more).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    #[command(flatten)]
    pub transfer: TransferArgs,
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The image to copy: `REGISTRY/REPOSITORY@sha256:…` (a tag is resolved to its digest once).
    #[arg(
        value_name = "SRC",
        conflicts_with = "source",
        required_unless_present = "source"
    )]
    pub src: Option<String>,
    /// Where to copy it: `REGISTRY/REPOSITORY` (a `:tag` counts as one more --tag).
    #[arg(
        value_name = "DST",
        conflicts_with = "image",
        required_unless_present = "image"
    )]
    pub dst: Option<String>,
    /// SRC as a flag (the action's `source` input).
    #[arg(long, value_name = "SRC")]
    pub source: Option<String>,
    /// DST as a flag (the action's `images` input).
    #[arg(long = "image", value_name = "DST")]
    pub image: Option<String>,
    /// A tag to set on the copy once it is complete (repeat for more).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    #[command(flatten)]
    pub transfer: TransferArgs,
}

/// How blobs move.
#[derive(Debug, Clone, Args)]
pub struct TransferArgs {
    /// Blobs transferred at once.
    #[arg(long, default_value_t = crate::registry::DEFAULT_CONCURRENCY as u16, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub upload_concurrency: u16,
    /// Blobs larger than this are uploaded in resumable chunks of this size (bytes, or with KiB, MiB, GiB).
    #[arg(long, default_value = "256MiB", value_parser = parse_size)]
    pub chunk_size: u64,
    /// Retries of each idempotent step on 5xx, 429 and connection errors.
    #[arg(long, default_value_t = 5)]
    pub retries: u32,
    /// Seconds between progress lines.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub progress_interval: u64,
}

/// `1048576`, `512KiB`, `64MiB`, `1GiB`.
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, ""),
    };
    let multiplier: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => {
            return Err(format!(
                "unknown unit {other:?}: use bytes, KiB, MiB or GiB"
            ));
        }
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 64MiB)"))?;
    match n.checked_mul(multiplier) {
        Some(0) | None => Err(format!("{text:?} is out of range")),
        Some(size) => Ok(size),
    }
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
    /// The base branch's promotion file: diff the rendered objects against what it renders.
    #[arg(long, value_name = "PATH")]
    pub base_config: Option<PathBuf>,
    /// Diff the rendered objects against the live cluster (server-side dry run).
    #[arg(long)]
    pub diff_cluster: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// On a pull request: keep one comment on it updated with this plan.
    #[arg(long)]
    pub comment_on_pr: bool,
}

/// Which cluster: inputs override the environment's `cluster` in promotion.yml.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// Kubeconfig content (YAML, or base64 of it); its credentials are masked.
    #[arg(long, value_name = "CONTENT")]
    pub kubeconfig: Option<String>,
    /// A kubeconfig file (default: KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig_path: Option<PathBuf>,
    /// The kubeconfig context (default: the environment's `cluster.context`, else the current one).
    #[arg(long)]
    pub context: Option<String>,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The environment to deploy to.
    #[arg(short, long, env = "PROMOTE_ENVIRONMENT")]
    pub environment: String,
    /// Only this service.
    #[arg(short, long)]
    pub service: Option<String>,
    /// The image of a service, pinned by digest: `[SERVICE=]REGISTRY/REPOSITORY@sha256:…` (repeat per service).
    #[arg(long = "image", value_name = "[SERVICE=]REF")]
    pub images: Vec<String>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Create the namespace (labelled with the environment) when it does not exist.
    #[arg(long)]
    pub create_namespace: bool,
    /// Take over fields other field managers own (server-side apply `force`).
    #[arg(long)]
    pub force: bool,
    /// How long each rollout may take: `10m`, `90s` or minutes (default: the environment's `rollout.timeout`).
    #[arg(long, value_parser = parse_timeout)]
    pub timeout: Option<std::time::Duration>,
    /// How long to wait for another run's lock before giving up with exit 3 (default 10m).
    #[arg(long, value_parser = parse_timeout)]
    pub lock_timeout: Option<std::time::Duration>,
    /// Write the JSON report (promote-deploy.json) here (default: the runner's temp directory).
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
    /// Skip the environment's checks after the rollout (by default a failed check rolls back).
    #[arg(long)]
    pub no_verify: bool,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The environment to roll back.
    #[arg(short, long, env = "PROMOTE_ENVIRONMENT")]
    pub environment: String,
    /// Only this service.
    #[arg(short, long)]
    pub service: Option<String>,
    /// The revision to return to (default: the previous one), as `promote history` lists them.
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
    pub to_revision: Option<i64>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// How long the rollback's rollout may take (default: the environment's `rollout.timeout`).
    #[arg(long, value_parser = parse_timeout)]
    pub timeout: Option<std::time::Duration>,
    /// How long to wait for another run's lock before giving up with exit 3 (default 10m).
    #[arg(long, value_parser = parse_timeout)]
    pub lock_timeout: Option<std::time::Duration>,
    /// Write the JSON report (promote-rollback.json) here (default: the runner's temp directory).
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The environment to list.
    #[arg(short, long, env = "PROMOTE_ENVIRONMENT")]
    pub environment: String,
    /// Only this service.
    #[arg(short, long)]
    pub service: Option<String>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Write promote-history.json here (default: the runner's temp directory).
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The environment whose checks to run.
    #[arg(
        short,
        long,
        env = "PROMOTE_ENVIRONMENT",
        required_unless_present = "url"
    )]
    pub environment: Option<String>,
    /// Only this service's smoke checks and pods (integration checks always run).
    #[arg(short, long)]
    pub service: Option<String>,
    /// The image a service was deployed with, `[SERVICE=]REGISTRY/REPOSITORY@sha256:…`: what an
    /// integration check without `image` runs (default: what the Deployment runs now).
    #[arg(long = "image", value_name = "[SERVICE=]REF")]
    pub images: Vec<String>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Write the JSON report (promote-verify.json) here (default: the runner's temp directory).
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
    #[command(flatten)]
    pub sample: SampleArgs,
}

/// `verify --url`: the smoke sampler on one URL, without a promotion file (quick looks, and
/// what `scripts/bench-smoke` measures).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Sampling one URL instead of an environment's checks")]
pub struct SampleArgs {
    /// Sample this URL (no promotion file needed); exit 1 when it never answers as expected.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Requests to send (default 200).
    #[arg(long, requires = "url", value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub samples: Option<u32>,
    /// Requests in flight at once (default 10).
    #[arg(long, requires = "url", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub concurrency: Option<u32>,
    /// Sample for this long instead of a number of requests: `30s`, `2m`.
    #[arg(long, requires = "url", value_parser = parse_timeout)]
    pub duration: Option<std::time::Duration>,
    /// The request method (default GET).
    #[arg(long, requires = "url")]
    pub method: Option<String>,
    /// The status every answer must have (default 200).
    #[arg(long, requires = "url", value_parser = clap::value_parser!(u16).range(100..=599))]
    pub expect_status: Option<u16>,
    /// How long one request may take (default 10s).
    #[arg(long, requires = "url", value_parser = parse_timeout)]
    pub request_timeout: Option<std::time::Duration>,
    /// How long to wait for a first good answer before sampling (default 30s).
    #[arg(long, requires = "url", value_parser = parse_timeout)]
    pub readiness_timeout: Option<std::time::Duration>,
    /// PEM file of the only CAs to trust for the URL.
    #[arg(long, requires = "url", value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
}

/// `10m`, `90s`, `1h30m` or a bare number of minutes (k8s-deploy's `timeout`); more than zero.
fn parse_timeout(text: &str) -> Result<std::time::Duration, String> {
    match crate::config::units::parse_duration(text)? {
        d if d.is_zero() => Err("expected more than zero".to_string()),
        d => Ok(d),
    }
}

/// `metrics --since`: `30d`, `2w`, `12h`, `1d12h` or a bare number of days (the targets are
/// weekly, so windows are spoken of in days and weeks); more than zero.
fn parse_window(text: &str) -> Result<std::time::Duration, String> {
    use std::time::Duration;
    const DAY: f64 = 86_400.0;
    let expected = "a window such as `30d`, `2w`, `12h` or a number of days";
    let text = text.trim();
    let invalid = || format!("expected {expected}, found {text:?}");
    let scaled = |number: &str, seconds: f64| {
        let n: f64 = number
            .parse()
            .ok()
            .filter(|n: &f64| n.is_finite() && *n >= 0.0)
            .ok_or_else(invalid)?;
        Duration::try_from_secs_f64(n * seconds).map_err(|_| format!("{}: too long", invalid()))
    };
    let window = if text.parse::<f64>().is_ok() {
        scaled(text, DAY)?
    } else if let Some(weeks) = text.strip_suffix('w') {
        scaled(weeks, 7.0 * DAY)?
    } else {
        crate::config::units::parse_duration(text).map_err(|_| invalid())?
    };
    if window.is_zero() {
        return Err(format!(
            "{}: the window must be longer than zero",
            invalid()
        ));
    }
    Ok(window)
}

pub fn parse_from(argv: Vec<OsString>) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(argv)
}

/// Whether `command` takes `--flag` (its own or a global flag). An unknown command accepts
/// everything: parsing then reports the command itself.
pub fn accepts(command: &str, flag: &str) -> bool {
    use clap::CommandFactory;
    let cli = Cli::command();
    // `environments check`: the flags of the innermost subcommand named, plus the outer ones.
    let mut commands = vec![&cli];
    for word in command.split_whitespace() {
        match commands.last().and_then(|c| c.find_subcommand(word)) {
            Some(sub) => commands.push(sub),
            None => return true,
        }
    }
    commands
        .iter()
        .flat_map(|c| c.get_arguments())
        .any(|a| a.get_long() == Some(flag))
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
    fn a_window_is_days_weeks_or_a_duration() {
        const DAY: u64 = 86_400;
        for (text, want) in [
            ("30", 30 * DAY),
            ("30d", 30 * DAY),
            (" 2w ", 14 * DAY),
            ("1.5w", 21 * DAY / 2),
            ("12h", 12 * 3600),
            ("1d12h", DAY + 12 * 3600),
            ("0.5", DAY / 2),
        ] {
            assert_eq!(
                parse_window(text),
                Ok(std::time::Duration::from_secs(want)),
                "{text}"
            );
        }
    }

    #[test]
    fn a_window_that_is_not_one_says_what_is_expected() {
        for (text, why) in [
            ("", "a window such as"),
            ("0d", "longer than zero"),
            ("0", "longer than zero"),
            ("0w", "longer than zero"),
            ("-3", "found \"-3\""),
            ("thirty days", "found \"thirty days\""),
            ("3y", "found \"3y\""),
            ("xw", "found \"xw\""),
            ("1e300", "too long"),
        ] {
            let err = parse_window(text).expect_err(text);
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
