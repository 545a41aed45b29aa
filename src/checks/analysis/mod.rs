//! Metric analysis: its one job is to say, with numbers, whether a release's metrics stayed
//! within the bounds promotion.yml gives them (`analysis.prometheus`) over a window.
//!
//! - [`render`] fills a query's `{{namespace}}`, `{{service}}` and `{{track}}` in;
//! - [`Prometheus`] asks a real Prometheus (`/api/v1/query` to validate, `/api/v1/query_range`
//!   to read the window);
//! - [`evaluate`] judges a window's samples against a bound held for `for` (pure);
//! - [`preflight`] has Prometheus check every rendered query before anything is written;
//!   [`analyse`] reads and judges a window and returns an [`AnalysisReport`].
//!
//! When to analyse, and what a failed analysis means (abort a canary, roll back), is the
//! caller's: nothing here waits except between retries.

mod evaluate;
mod prometheus;
mod report;
mod seed;
mod template;

pub use evaluate::{Breach, Evaluation, Verdict, breaks, evaluate};
pub use prometheus::{Error, Matrix, Prometheus, Sample, Series, Window, default_step};
pub use report::{AnalysisReport, QueryReport, format_value};
pub use seed::{SEED_ALERT_RULES_YAML, seed_alert_rules};
pub use template::{PLACEHOLDERS, Target, Track, render};

use std::collections::BTreeSet;

use futures_util::future::join_all;

use crate::config::{MetricQuery, OnInconclusive, PrometheusAnalysis, yaml::Pos};

/// A query that could not be validated or read, naming it as promotion.yml does.
#[derive(Debug, thiserror::Error)]
#[error("analysis query {name}")]
pub struct QueryError {
    pub name: String,
    /// Its index in `analysis.prometheus.queries`.
    pub index: usize,
    /// Where it stands in promotion.yml.
    pub pos: Pos,
    #[source]
    pub source: Error,
}

impl QueryError {
    fn new(index: usize, query: &MetricQuery, source: Error) -> QueryError {
        QueryError {
            name: query.name.clone(),
            index,
            pos: query.pos,
            source,
        }
    }
}

/// Has Prometheus parse and run every query of `analysis`, rendered for each of `targets`,
/// so that a query it rejects is bad input before anything is written (exit 2).
///
/// # Errors
/// Every rejected query (each once, for the first target that rendered it so); or, when
/// Prometheus cannot be reached or answers oddly, only the first such error, since the others
/// would say the same.
pub async fn preflight(
    prometheus: &Prometheus,
    analysis: &PrometheusAnalysis,
    targets: &[Target],
) -> Result<(), Vec<QueryError>> {
    let mut seen = BTreeSet::new();
    let mut rendered = Vec::new();
    for (index, query) in analysis.queries.iter().enumerate() {
        for target in targets {
            let text = render(&query.query, target);
            if seen.insert((index, text.clone())) {
                rendered.push((index, query, text));
            }
        }
    }
    let answers = join_all(
        rendered
            .iter()
            .map(|(_, _, text)| prometheus.validate(text)),
    )
    .await;
    let mut rejected = Vec::new();
    let mut reported = BTreeSet::new();
    for ((index, query, _), answer) in rendered.iter().zip(answers) {
        match answer {
            Ok(()) => {}
            Err(err @ Error::Rejected { .. }) => {
                if reported.insert(*index) {
                    rejected.push(QueryError::new(*index, query, err));
                }
            }
            Err(err) => return Err(vec![QueryError::new(*index, query, err)]),
        }
    }
    if rejected.is_empty() {
        Ok(())
    } else {
        Err(rejected)
    }
}

/// Reads every query of `analysis`, rendered for `target`, over `window` and judges it: one
/// row per query in the order of promotion.yml, and the overall verdict under
/// `onInconclusive`.
///
/// # Errors
/// The first query that could not be read (Prometheus unreachable after retries, a query it
/// rejects now): no verdict is made up for it.
pub async fn analyse(
    prometheus: &Prometheus,
    analysis: &PrometheusAnalysis,
    target: &Target,
    window: &Window,
) -> Result<AnalysisReport, QueryError> {
    let rendered: Vec<String> = analysis
        .queries
        .iter()
        .map(|q| render(&q.query, target))
        .collect();
    let answers = join_all(
        rendered
            .iter()
            .map(|text| prometheus.query_range(text, window)),
    )
    .await;
    let mut queries = Vec::with_capacity(answers.len());
    for (index, ((query, text), answer)) in analysis
        .queries
        .iter()
        .zip(rendered)
        .zip(answers)
        .enumerate()
    {
        let matrix = answer.map_err(|err| QueryError::new(index, query, err))?;
        queries.push(row(query, text, &matrix, window, analysis.on_inconclusive));
    }
    let mut report = AnalysisReport {
        target: target.clone(),
        window: *window,
        on_inconclusive: analysis.on_inconclusive,
        verdict: Verdict::Pass,
        passed: false,
        summary: String::new(),
        queries,
    };
    report.conclude();
    Ok(report)
}

fn row(
    query: &MetricQuery,
    text: String,
    matrix: &Matrix,
    window: &Window,
    policy: OnInconclusive,
) -> QueryReport {
    let e = evaluate(query.bound, query.for_, window.step, &matrix.series);
    QueryReport {
        name: query.name.clone(),
        query: text,
        verdict: e.verdict,
        passed: match e.verdict {
            Verdict::Pass => true,
            Verdict::Breach => false,
            Verdict::Inconclusive => policy == OnInconclusive::Pass,
        },
        bound: query.bound,
        for_: query.for_,
        worst: e.worst,
        last: e.last,
        samples: e.samples,
        series: e.series,
        labels: e.labels,
        breach: e.breach,
        warnings: matrix.warnings.clone(),
    }
}
