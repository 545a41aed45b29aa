//! What an analysis found, as data: one row per query with its numbers, bound and verdict,
//! serialized into the JSON report and read by the renderers in `report/`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Serialize, Serializer};

use super::evaluate::{Breach, Verdict};
use super::prometheus::Window;
use super::template::Target;
use crate::config::{Bound, OnInconclusive, units::format_duration};

/// The result of [`analyse`](super::analyse): passed when no query breached its bound and no
/// inconclusive query counts as a failure under the policy.
///
/// Non-finite numbers (a `+Inf` latency) serialize as `null`; [`format_value`] shows them.
#[derive(Debug, Clone, Serialize)]
pub struct AnalysisReport {
    #[serde(flatten)]
    pub target: Target,
    pub window: Window,
    #[serde(serialize_with = "policy")]
    pub on_inconclusive: OnInconclusive,
    /// The worst row's: breach over inconclusive over pass.
    pub verdict: Verdict,
    pub passed: bool,
    /// One line: "4 queries passed" or "error-rate: 0.0917 > 0.01 for 12s".
    pub summary: String,
    pub queries: Vec<QueryReport>,
}

/// One query over the window.
#[derive(Debug, Clone, Serialize)]
pub struct QueryReport {
    pub name: String,
    /// As sent: placeholders filled in.
    pub query: String,
    pub verdict: Verdict,
    /// The verdict under the policy: an inconclusive query passes only with `onInconclusive: pass`.
    pub passed: bool,
    /// `{"max": 0.01}` or `{"min": 0.99}`, as in promotion.yml.
    #[serde(serialize_with = "bound")]
    pub bound: Bound,
    #[serde(rename = "for_ms", serialize_with = "millis")]
    pub for_: Duration,
    /// The deciding series' worst value (highest for `max`, lowest for `min`).
    pub worst: Option<f64>,
    /// The deciding series' last value.
    pub last: Option<f64>,
    /// Samples (NaN excluded) over all series.
    pub samples: usize,
    pub series: usize,
    /// The deciding series' labels (empty for an aggregate such as `sum(…)`).
    pub labels: BTreeMap<String, String>,
    pub breach: Option<Breach>,
    /// Prometheus' warnings about the answer.
    pub warnings: Vec<String>,
}

impl QueryReport {
    /// One line for logs and summaries: `error-rate: 0.0917 > 0.01 for 12s`,
    /// `restarts {pod="web-1"}: 7 > 5`, `latency-p95: 0.22 ≤ 1`, `cpu: no data`.
    pub fn headline(&self) -> String {
        let name = if self.series > 1 && !self.labels.is_empty() {
            format!("{} {}", self.name, labels_text(&self.labels))
        } else {
            self.name.clone()
        };
        let (within, beyond, limit) = match self.bound {
            Bound::Max(max) => ("≤", ">", max),
            Bound::Min(min) => ("≥", "<", min),
        };
        match (&self.verdict, &self.breach, self.worst) {
            (Verdict::Breach, Some(breach), _) => {
                let lasted = if breach.lasted.is_zero() {
                    String::new()
                } else {
                    format!(" for {}", format_duration(breach.lasted))
                };
                format!(
                    "{name}: {} {beyond} {}{lasted}",
                    format_value(breach.value),
                    format_value(limit)
                )
            }
            (Verdict::Inconclusive, _, _) | (_, _, None) => format!("{name}: no data"),
            (_, _, Some(worst)) => format!(
                "{name}: {} {within} {}",
                format_value(worst),
                format_value(limit)
            ),
        }
    }
}

impl AnalysisReport {
    /// Fills in `verdict`, `passed` and `summary` from the rows.
    pub fn conclude(&mut self) {
        self.verdict = [Verdict::Breach, Verdict::Inconclusive]
            .into_iter()
            .find(|v| self.queries.iter().any(|q| q.verdict == *v))
            .unwrap_or(Verdict::Pass);
        self.passed = self.queries.iter().all(|q| q.passed);
        let failed: Vec<String> = self
            .queries
            .iter()
            .filter(|q| !q.passed)
            .map(QueryReport::headline)
            .collect();
        let excused = self
            .queries
            .iter()
            .filter(|q| q.passed && q.verdict == Verdict::Inconclusive)
            .count();
        let n = self.queries.len();
        let plural = |n: usize| if n == 1 { "query" } else { "queries" };
        self.summary = match failed.as_slice() {
            [] if n == 0 => "no queries".to_string(),
            [] if excused > 0 => format!(
                "{n} {} passed ({excused} without data, passed by onInconclusive: pass)",
                plural(n)
            ),
            [] => format!("{n} {} passed", plural(n)),
            [only] => only.clone(),
            many => format!(
                "{} of {n} {} failed: {}",
                many.len(),
                plural(n),
                many.join("; ")
            ),
        };
    }
}

/// A value for people: `0.0917`, `12`, `2.38`, `+Inf`.
pub fn format_value(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_string();
    }
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    if value == value.trunc() && value.abs() < 1e15 {
        return format!("{value:.0}");
    }
    // Four significant digits below 1 (0.004567), two decimals above.
    let decimals = if value.abs() >= 1.0 {
        2
    } else {
        (3 - value.abs().log10().floor() as i32).clamp(0, 12) as usize
    };
    let text = format!("{value:.decimals$}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_string()
}

fn labels_text(labels: &BTreeMap<String, String>) -> String {
    let pairs: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k.as_str() != "__name__")
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    format!("{{{}}}", pairs.join(","))
}

pub(super) fn millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn bound<S: Serializer>(b: &Bound, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(1))?;
    match b {
        Bound::Max(v) => map.serialize_entry("max", v)?,
        Bound::Min(v) => map.serialize_entry("min", v)?,
    }
    map.end()
}

fn policy<S: Serializer>(p: &OnInconclusive, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match p {
        OnInconclusive::Fail => "fail",
        OnInconclusive::Pass => "pass",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::analysis::Track;
    use k8s_openapi::jiff::Timestamp;

    #[test]
    fn values_for_people() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (12.0, "12"),
            (0.005, "0.005"),
            (0.091743119, "0.09174"),
            (2.376, "2.38"),
            (0.25, "0.25"),
            (1e-7, "0.0000001"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (-0.5, "-0.5"),
        ];
        for (value, want) in cases {
            assert_eq!(format_value(*value), *want, "{value}");
        }
    }

    fn row(name: &str, verdict: Verdict, passed: bool) -> QueryReport {
        QueryReport {
            name: name.into(),
            query: "q".into(),
            verdict,
            passed,
            bound: Bound::Max(0.01),
            for_: Duration::from_secs(60),
            worst: (verdict != Verdict::Inconclusive).then_some(0.005),
            last: None,
            samples: 3,
            series: 1,
            labels: BTreeMap::new(),
            breach: (verdict == Verdict::Breach).then(|| Breach {
                value: 0.0917,
                at: Timestamp::UNIX_EPOCH,
                lasted: Duration::from_secs(72),
            }),
            warnings: vec![],
        }
    }

    fn report(queries: Vec<QueryReport>) -> AnalysisReport {
        let mut report = AnalysisReport {
            target: Target::new("testing", "web", Track::Canary),
            window: super::super::Window::new(Timestamp::UNIX_EPOCH, Timestamp::UNIX_EPOCH),
            on_inconclusive: OnInconclusive::Fail,
            verdict: Verdict::Pass,
            passed: false,
            summary: String::new(),
            queries,
        };
        report.conclude();
        report
    }

    #[test]
    fn conclusions() {
        let cases: Vec<(&str, Vec<QueryReport>, Verdict, bool, &str)> = vec![
            (
                "nothing declared",
                vec![],
                Verdict::Pass,
                true,
                "no queries",
            ),
            (
                "all pass",
                vec![row("a", Verdict::Pass, true), row("b", Verdict::Pass, true)],
                Verdict::Pass,
                true,
                "2 queries passed",
            ),
            (
                "one breach",
                vec![
                    row("a", Verdict::Pass, true),
                    row("b", Verdict::Breach, false),
                ],
                Verdict::Breach,
                false,
                "b: 0.0917 > 0.01 for 1m12s",
            ),
            (
                "inconclusive failing",
                vec![row("a", Verdict::Inconclusive, false)],
                Verdict::Inconclusive,
                false,
                "a: no data",
            ),
            (
                "inconclusive excused",
                vec![
                    row("a", Verdict::Inconclusive, true),
                    row("b", Verdict::Pass, true),
                ],
                Verdict::Inconclusive,
                true,
                "2 queries passed (1 without data, passed by onInconclusive: pass)",
            ),
            (
                "breach beats inconclusive",
                vec![
                    row("a", Verdict::Inconclusive, false),
                    row("b", Verdict::Breach, false),
                ],
                Verdict::Breach,
                false,
                "2 of 2 queries failed: a: no data; b: 0.0917 > 0.01 for 1m12s",
            ),
        ];
        for (case, queries, verdict, passed, summary) in cases {
            let r = report(queries);
            assert_eq!(r.verdict, verdict, "case: {case}");
            assert_eq!(r.passed, passed, "case: {case}");
            assert_eq!(r.summary, summary, "case: {case}");
        }
    }

    #[test]
    fn headlines_name_the_series_and_the_side() {
        let mut r = row("restarts", Verdict::Breach, false);
        r.series = 2;
        r.labels = [("pod".to_string(), "web-1".to_string())].into();
        r.bound = Bound::Max(5.0);
        r.breach.as_mut().unwrap().value = 7.0;
        r.breach.as_mut().unwrap().lasted = Duration::ZERO;
        assert_eq!(r.headline(), r#"restarts {pod="web-1"}: 7 > 5"#);
        let mut r = row("availability", Verdict::Pass, true);
        r.bound = Bound::Min(0.99);
        r.worst = Some(0.995);
        assert_eq!(r.headline(), "availability: 0.995 ≥ 0.99");
    }

    #[test]
    fn serialized_shape() {
        let r = report(vec![row("error-rate", Verdict::Breach, false)]);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["namespace"], "testing");
        assert_eq!(json["track"], "canary");
        assert_eq!(json["on_inconclusive"], "fail");
        assert_eq!(json["verdict"], "breach");
        assert_eq!(json["window"]["start"], "1970-01-01T00:00:00Z");
        assert_eq!(json["window"]["step_ms"], 1000);
        let q = &json["queries"][0];
        assert_eq!(q["bound"], serde_json::json!({"max": 0.01}));
        assert_eq!(q["for_ms"], 60000);
        assert_eq!(q["breach"]["lasted_ms"], 72000);
        assert_eq!(q["breach"]["at"], "1970-01-01T00:00:00Z");
    }
}
