//! `promote metrics [--since 30d] [--environment E] [--json FILE]`: the seed's "Metrics and
//! KPIs", computed from the repository's GitHub deployments instead of tracked by hand.
//!
//! 1. Read every deployment created in the window (of one environment, or all), their
//!    statuses, and the commit dates of what reached production (`github`).
//! 2. Compute the four figures per environment and service and judge production's against the
//!    seed's targets (`kpi`, pure).
//! 3. Print the terminal text, write the job summary, and the JSON when asked (`report`).
//!
//! Read-only: it changes nothing on GitHub. Targets not met are a finding, not a failure: the
//! command exits 0 whenever it could measure.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::jiff::Timestamp;

use super::Runtime;
use crate::actions::{Secret, redact};
use crate::github::{GitHub, HistoryRequest};
use crate::kpi::{self, KpiReport, Settings, Targets};
use crate::outcome::{Classified, Outcome};
use crate::report;

/// `--since`'s default: the seed's targets are weekly, and 30 days holds four full weeks.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(30 * 86_400);

/// Statuses and commits read at once. GitHub's secondary limit is 100 concurrent requests per
/// token; 16 keeps far from it while hiding most of each call's latency.
pub const CONCURRENCY: usize = 16;

/// What `promote metrics` is asked for, resolved by the caller (token already masked).
#[derive(Debug, Clone)]
pub struct MetricsOptions {
    /// `owner/name` (`GITHUB_REPOSITORY`).
    pub repository: String,
    /// `GITHUB_API_URL`.
    pub api_url: String,
    /// Needs `deployments: read` and `contents: read` (the commit dates).
    pub token: Secret,
    /// How far back the window reaches from now (`--since`, default [`DEFAULT_WINDOW`]).
    pub since: Duration,
    /// Only this environment (GitHub's `environment` filter); `None`: all of them.
    pub environment: Option<String>,
    /// Also write the report as JSON here (`--json`).
    pub json: Option<PathBuf>,
    /// promotion.yml's environments in promotion order, when there is a promotion file: they
    /// get rows in that order even without deployments, and the last one is production.
    /// Empty: environments as GitHub has them, production as GitHub flags it.
    pub environments: Vec<String>,
}

/// `promote metrics`: measures, prints the text to stderr, writes the job summary and the JSON
/// (`--json`, whose path is also the `report-path` output).
///
/// # Errors
/// Invalid options (exit 2, nothing read); GitHub failing after the client's retries and
/// rate-limit waits; the summary or the JSON that cannot be written.
pub async fn run_metrics(rt: &mut Runtime<'_>, options: MetricsOptions) -> anyhow::Result<Outcome> {
    eprintln!(
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
    eprint!("{}", report::kpi_text(&report));
    report::kpi_summary(&report)
        .write(rt.ctx)
        .context("writing the job summary")?;
    if let Some(path) = &options.json {
        let json = serde_json::to_string_pretty(&report).context("encoding the metrics")?;
        // Nothing secret is in the report; redacting is the seatbelt for server text.
        std::fs::write(path, redact(&json).as_bytes())
            .with_context(|| format!("writing the metrics to {}", path.display()))?;
        rt.outputs.set("report-path", path.display().to_string());
    }
    Ok(Outcome::Success)
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

/// `--since`: `30d`, `2w`, `12h`, `1d12h`, or a bare number of days.
///
/// # Errors
/// The text, what is accepted, and why it is not that.
pub fn parse_since(text: &str) -> Result<Duration, String> {
    let expected = "a window such as `30d`, `2w`, `12h` or a number of days";
    let text = text.trim();
    let window = if let Ok(days) = text.parse::<f64>() {
        if !(days.is_finite() && days >= 0.0) {
            return Err(format!("expected {expected}, found {text:?}"));
        }
        Duration::try_from_secs_f64(days * 86_400.0)
            .map_err(|_| format!("expected {expected}, found {text:?}: too long"))?
    } else if let Some(weeks) = text.strip_suffix('w') {
        let weeks: f64 = weeks
            .parse()
            .ok()
            .filter(|w: &f64| w.is_finite() && *w >= 0.0)
            .ok_or_else(|| format!("expected {expected}, found {text:?}"))?;
        Duration::try_from_secs_f64(weeks * 7.0 * 86_400.0)
            .map_err(|_| format!("expected {expected}, found {text:?}: too long"))?
    } else {
        crate::config::units::parse_duration(text)
            .map_err(|_| format!("expected {expected}, found {text:?}"))?
    };
    if window.is_zero() {
        return Err(format!(
            "expected {expected}, found {text:?}: the window must be longer than zero"
        ));
    }
    Ok(window)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::Console;

    const DAY: u64 = 86_400;

    #[test]
    fn since_takes_days_weeks_and_durations() {
        for (text, want) in [
            ("30", 30 * DAY),
            ("30d", 30 * DAY),
            (" 2w ", 14 * DAY),
            ("12h", 12 * 3600),
            ("1d12h", DAY + 12 * 3600),
            ("0.5", DAY / 2),
        ] {
            assert_eq!(parse_since(text), Ok(Duration::from_secs(want)), "{text}");
        }
    }

    #[test]
    fn since_rejects_what_is_not_a_window() {
        for (text, why) in [
            ("", "a window such as"),
            ("0d", "longer than zero"),
            ("0", "longer than zero"),
            ("-3", "found \"-3\""),
            ("thirty days", "found \"thirty days\""),
            ("3y", "found \"3y\""),
            ("xw", "found \"xw\""),
        ] {
            let err = parse_since(text).expect_err(text);
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    fn options(environment: Option<&str>) -> MetricsOptions {
        MetricsOptions {
            repository: "studysphere/app".into(),
            api_url: "http://127.0.0.1:9".into(),
            token: Secret::new("ghs_example", &Console::new(false)),
            since: DEFAULT_WINDOW,
            environment: environment.map(str::to_string),
            json: None,
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
