//! `promote metrics [--since 30d] [--environment E]`: the seed's "Metrics and KPIs", computed
//! from the repository's GitHub deployments instead of tracked by hand.
//!
//! 1. Read every deployment created in the window (of one environment, or all), their
//!    statuses, and the commit dates of what reached production (`github`).
//! 2. Compute the four figures per environment and service and judge production's against the
//!    seed's targets (`kpi`, pure).
//! 3. Print the terminal text, write `promote-metrics.json` and the job summary (`report`).
//!
//! Read-only: it changes nothing on GitHub. Targets not met are a finding, not a failure: the
//! command exits 0 whenever it could measure. GitHub's REST API has no way to list statuses of
//! many deployments at once, so a window of N deployments costs about N + N/100 requests plus
//! one per production commit (GraphQL could fetch them a hundred at a time: a follow-up).

use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::jiff::Timestamp;

use super::Runtime;
use crate::actions::Secret;
use crate::cli::{GlobalArgs, MetricsArgs};
use crate::config;
use crate::github::{GitHub, HistoryRequest};
use crate::kpi::{self, KpiReport, Settings, Targets};
use crate::outcome::{Classified, Outcome};
use crate::report;

/// Statuses and commits read at once. GitHub's secondary limit is 100 concurrent requests per
/// token; 16 keeps far from it while hiding most of each call's latency.
pub const CONCURRENCY: usize = 16;

/// What `promote metrics` measures, resolved from the command line, the runner's environment
/// and promotion.yml (token already masked).
#[derive(Debug, Clone)]
pub struct MetricsOptions {
    /// `owner/name` (`GITHUB_REPOSITORY`).
    pub repository: String,
    /// `GITHUB_API_URL`.
    pub api_url: String,
    /// Needs `deployments: read` and `contents: read` (the commit dates).
    pub token: Secret,
    /// How far back the window reaches from now (`--since`, default 30 days: the seed's targets are weekly, and 30 days hold four full weeks).
    pub since: Duration,
    /// Only this environment (GitHub's `environment` filter); `None`: all of them.
    pub environment: Option<String>,
    /// promotion.yml's environments in promotion order, when there is a promotion file: they
    /// get rows in that order even without deployments, and the last one is production.
    /// Empty: environments as GitHub has them, production as GitHub flags it.
    pub environments: Vec<String>,
}

/// `promote metrics`: measures, prints the text, writes `promote-metrics.json` (the
/// `report-path` output) and the job summary; with `--json`, stdout is that report.
///
/// # Errors
/// Invalid input (exit 2, nothing read): no repository or token, an invalid promotion file, an
/// environment it does not name. GitHub failing after the client's retries and rate-limit
/// waits; the summary that cannot be written.
pub async fn run_metrics(
    rt: &mut Runtime<'_>,
    global: &GlobalArgs,
    args: &MetricsArgs,
) -> anyhow::Result<Outcome> {
    let options = options(rt, global, args)?;
    crate::say!(
        "Reading the deployments of {}{} since {} days ago",
        options.repository,
        options
            .environment
            .as_deref()
            .map(|e| format!(" to {e}"))
            .unwrap_or_default(),
        options.since.as_secs() / 86_400
    );
    let report = measure(&options, Timestamp::now()).await?;
    crate::say!("{}", report::kpi_text(&report).trim_end());
    super::write_report(
        rt,
        "promote-metrics.json",
        &report,
        args.output_dir.as_deref(),
    )?;
    rt.outputs
        .set_document(serde_json::to_value(&report).context("serializing the metrics for stdout")?);
    report::kpi_summary(&report)
        .write(rt.ctx)
        .context("writing the job summary")?;
    Ok(Outcome::Success)
}

/// The options from the command line, the runner (`GITHUB_REPOSITORY`, `GITHUB_API_URL`) and
/// promotion.yml when there is one: without it the command still measures, with the
/// environments and the production flag GitHub has.
fn options(
    rt: &Runtime<'_>,
    global: &GlobalArgs,
    args: &MetricsArgs,
) -> anyhow::Result<MetricsOptions> {
    let Some(repository) = rt.ctx.repository.clone() else {
        return Err(Classified::invalid(anyhow::anyhow!(
            "GITHUB_REPOSITORY is not set: set it to `owner/name` of the repository to measure \
             (the runner sets it in Actions)"
        )));
    };
    let Some(token) = global.github_token() else {
        return Err(Classified::invalid(anyhow::anyhow!(
            "no GitHub token: pass --github-token or set GITHUB_TOKEN (the action's `github-token` \
             input); it needs `deployments: read` and `contents: read`"
        )));
    };
    let environment = args.environment.clone().filter(|e| !e.trim().is_empty());
    let environments = if global.config.exists() {
        let config = config::load(&global.config)?;
        super::environments(&config, environment.as_deref())?;
        config.environments.iter().map(|e| e.name.clone()).collect()
    } else {
        crate::say!(
            "No promotion file at {}: environments and production as GitHub records them",
            global.config.display()
        );
        Vec::new()
    };
    Ok(MetricsOptions {
        repository,
        api_url: rt.ctx.api_url.clone(),
        token: Secret::new(token, rt.console),
        since: args.since,
        environment,
        environments,
    })
}

/// Reads the record and computes the metrics of the window ending at `now`: steps 1 and 2,
/// without printing or writing anything (what tests and the benchmark call).
///
/// # Errors
/// As [`run_metrics`], less the writing.
pub async fn measure(options: &MetricsOptions, now: Timestamp) -> anyhow::Result<KpiReport> {
    if options.since.is_zero() {
        return Err(Classified::invalid(anyhow::anyhow!(
            "--since: expected a window longer than zero"
        )));
    }
    let github = GitHub::new(&options.api_url, &options.token, &options.repository)
        .map_err(Classified::invalid)?;
    let settings = settings(options, now);
    let since_seconds = i64::try_from(options.since.as_secs()).unwrap_or(i64::MAX);
    let request = HistoryRequest {
        environment: options.environment.clone().filter(|e| !e.is_empty()),
        since: Timestamp::from_second(now.as_second().saturating_sub(since_seconds))
            .unwrap_or(Timestamp::MIN),
        concurrency: CONCURRENCY,
    };
    let production = settings.production.clone();
    let history = github
        .deployment_history(&request, |d| kpi::lead_time_commit(d, &production))
        .await
        .with_context(|| {
            format!(
                "failed to read the deployment history of {}",
                options.repository
            )
        })?;
    Ok(kpi::compute(&history, &settings))
}

/// The computation's settings: the rows and production from promotion.yml's order, narrowed to
/// the one environment asked for.
fn settings(options: &MetricsOptions, now: Timestamp) -> Settings {
    let production: Vec<String> = options.environments.last().cloned().into_iter().collect();
    let (environments, production) = match options.environment.as_deref() {
        Some(only) if !only.is_empty() => (
            vec![only.to_string()],
            production.into_iter().filter(|p| p == only).collect(),
        ),
        _ => (options.environments.clone(), production),
    };
    Settings {
        repository: options.repository.clone(),
        now,
        window: options.since,
        environments,
        production,
        targets: Targets::SEED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--since`'s default in clap.
    const DEFAULT_WINDOW: Duration = Duration::from_secs(30 * 86_400);
    use crate::actions::Console;

    #[test]
    fn the_command_lines_default_window_is_this_one() {
        let cli = crate::cli::parse_from(vec!["promote".into(), "metrics".into()]).expect("parses");
        let crate::cli::Command::Metrics(args) = cli.command else {
            panic!("not metrics: {:?}", cli.command)
        };
        assert_eq!(args.since, DEFAULT_WINDOW);
    }

    fn options(environment: Option<&str>) -> MetricsOptions {
        MetricsOptions {
            repository: "studysphere/app".into(),
            api_url: "http://127.0.0.1:9".into(),
            token: Secret::new("ghs_example", &Console::new(false)),
            since: DEFAULT_WINDOW,
            environment: environment.map(str::to_string),
            environments: vec!["development".into(), "testing".into(), "production".into()],
        }
    }

    #[test]
    fn production_is_the_promotions_last_environment_and_narrows_with_the_filter() {
        let now = Timestamp::UNIX_EPOCH;
        let cases = [
            (
                None,
                vec!["development", "testing", "production"],
                vec!["production"],
            ),
            (Some("production"), vec!["production"], vec!["production"]),
            (Some("testing"), vec!["testing"], vec![]),
            (
                Some(""),
                vec!["development", "testing", "production"],
                vec!["production"],
            ),
        ];
        for (environment, rows, production) in cases {
            let s = settings(&options(environment), now);
            assert_eq!(s.environments, rows, "{environment:?}");
            assert_eq!(s.production, production, "{environment:?}");
        }
        let mut bare = options(None);
        bare.environments.clear();
        let s = settings(&bare, now);
        assert!(s.environments.is_empty() && s.production.is_empty());
    }

    #[tokio::test]
    async fn a_zero_window_or_a_bad_repository_is_invalid_input() {
        let mut zero = options(None);
        zero.since = Duration::ZERO;
        let mut bad = options(None);
        bad.repository = "not-a-repository".into();
        for options in [zero, bad] {
            let err = measure(&options, Timestamp::UNIX_EPOCH)
                .await
                .expect_err("invalid");
            assert_eq!(
                crate::outcome::outcome_of(&err),
                Outcome::Invalid,
                "{err:#}"
            );
        }
    }
}
