//! What a canary did, step by step: the pods each release ran, the canary's actual share, the
//! checks and metric numbers that decided, and how it ended (promoted, or aborted with the
//! stable release serving again); with the job summary's step table.

use jiff::Timestamp;
use serde::Serialize;

use super::text::*;
use crate::actions::table;
use crate::checks::analysis::{AnalysisReport, Verdict as MetricVerdict};
use crate::untrusted::{code, escape_md_with_code};

/// A canary deploy (`strategy: canary`), filled in by the pipeline as it goes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CanaryReport {
    /// `replicas` (the canary's share of ready pods) or `ingress-nginx` (exact weights).
    pub routing: String,
    pub steps: Vec<CanaryStepReport>,
    /// How it ended; absent while it runs (or when it never started a step).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<CanaryDecision>,
    /// Why it was aborted, in one line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort_decided_at: Option<Timestamp>,
    /// When the stable release was back at full size and the canary's pods gone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable_restored_at: Option<Timestamp>,
    /// From "abort decided" to "stable serving all traffic".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort_to_stable_ms: Option<u128>,
    /// When the stable Deployment had rolled out the canary's release.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promoted_at: Option<Timestamp>,
}

/// How a canary ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CanaryDecision {
    /// Every step passed; the stable Deployment runs the new release and the canary is gone.
    Promoted,
    /// A step failed; the canary is gone and the stable release serves all traffic.
    Aborted,
    /// A step failed and the stable release could not be restored in time.
    AbortFailed,
}

/// One step of one service.
#[derive(Debug, Clone, Serialize)]
pub struct CanaryStepReport {
    /// 1-based, as the summary shows it.
    pub step: usize,
    pub service: String,
    /// The step's weight in percent.
    pub weight: u32,
    pub stable_replicas: u32,
    pub canary_replicas: u32,
    /// Ready pods when the pause began.
    pub stable_ready: u32,
    pub canary_ready: u32,
    /// The canary's actual share of traffic in percent: its share of ready pods, or with
    /// ingress-nginx the weight itself.
    pub actual_share: f64,
    pub started_at: Timestamp,
    /// When both releases were rolled out at the step's size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysed_at: Option<Timestamp>,
    /// The environment's checks (smoke, SLO) at this step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<StepChecks>,
    /// The Prometheus queries for `track=canary` over the step's pause.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisReport>,
    pub verdict: StepVerdict,
    /// One line: what passed, or what failed.
    pub summary: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepChecks {
    pub passed: bool,
    pub summary: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepVerdict {
    Running,
    Passed,
    /// A check or a metric failed.
    Failed,
    /// The canary (or the stable's new size) did not roll out.
    RolloutFailed,
}

impl StepVerdict {
    fn mark(self) -> &'static str {
        match self {
            StepVerdict::Running => "⏳",
            StepVerdict::Passed => "✅",
            StepVerdict::Failed | StepVerdict::RolloutFailed => "❌",
        }
    }
}

impl CanaryReport {
    pub fn new(routing: &str) -> CanaryReport {
        CanaryReport {
            routing: routing.to_string(),
            ..CanaryReport::default()
        }
    }

    /// The step the canary reached (the highest weight any step started).
    pub fn reached(&self) -> Option<&CanaryStepReport> {
        self.steps.iter().max_by_key(|s| (s.step, s.weight))
    }
}

/// The job summary's canary section: how it ended, then one row per step and service with
/// the pods, the actual share and every query's number against its bound.
pub fn canary_section(c: &CanaryReport) -> String {
    let reached = c.reached().map(|s| s.weight);
    let heading = match (c.decision, reached) {
        (Some(CanaryDecision::Promoted), _) => "✅ promoted".to_string(),
        (Some(CanaryDecision::Aborted), Some(w)) => format!("↩️ aborted at {w} %, stable serving"),
        (Some(CanaryDecision::AbortFailed), Some(w)) => {
            format!("❌ aborted at {w} %, stable not restored")
        }
        (Some(_), None) => "↩️ aborted".to_string(),
        (None, _) => "⏳ not finished".to_string(),
    };
    let mut out = format!("### Canary: {heading}\n\n");
    let mut facts = vec![format!("routing {}", code(&c.routing))];
    if let Some(reason) = &c.reason {
        facts.push(escape_md_with_code(reason));
    }
    if let Some(ms) = c.abort_to_stable_ms {
        facts.push(format!(
            "stable serving all traffic {} after the abort",
            human_ms(ms)
        ));
    }
    out.push_str(&facts.join(" · "));
    out.push_str("\n\n");
    if c.steps.is_empty() {
        return out;
    }
    let several = c
        .steps
        .iter()
        .any(|s| c.steps.first().is_some_and(|f| f.service != s.service));
    let rows: Vec<Vec<String>> = c
        .steps
        .iter()
        .map(|s| {
            let mut row = vec![s.step.to_string()];
            if several {
                row.push(escape_md_with_code(&s.service));
            }
            row.extend([
                format!("{} %", s.weight),
                format!("{} / {}", s.stable_replicas, s.canary_replicas),
                format!("{:.0} %", s.actual_share),
                s.checks.as_ref().map_or_else(
                    || "—".to_string(),
                    |ch| {
                        format!(
                            "{} {}",
                            if ch.passed { "✅" } else { "❌" },
                            escape_md_with_code(&ch.summary)
                        )
                    },
                ),
                s.analysis
                    .as_ref()
                    .map_or_else(|| "—".to_string(), metrics_cell),
                format!("{} {}", s.verdict.mark(), escape_md_with_code(&s.summary)),
            ]);
            row
        })
        .collect();
    let mut headers = vec!["Step"];
    if several {
        headers.push("Service");
    }
    headers.extend([
        "Weight",
        "Pods stable / canary",
        "Canary share",
        "Checks",
        "Metrics (canary)",
        "Verdict",
    ]);
    out.push_str(&table(&headers, &rows));
    out
}

/// Each query's headline with its verdict, one per line of the cell.
fn metrics_cell(a: &AnalysisReport) -> String {
    a.queries
        .iter()
        .map(|q| {
            let mark = match (q.verdict, q.passed) {
                (MetricVerdict::Pass, _) => "✅",
                (MetricVerdict::Inconclusive, true) => "⚠️",
                _ => "❌",
            };
            format!("{mark} {}", escape_md_with_code(&q.headline()))
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(step: usize, weight: u32, verdict: StepVerdict, summary: &str) -> CanaryStepReport {
        CanaryStepReport {
            step,
            service: "web".into(),
            weight,
            stable_replicas: 2,
            canary_replicas: 1,
            stable_ready: 2,
            canary_ready: 1,
            actual_share: 33.3,
            started_at: Timestamp::UNIX_EPOCH,
            ready_at: None,
            analysed_at: None,
            checks: Some(StepChecks {
                passed: true,
                summary: "1 check passed".into(),
            }),
            analysis: None,
            verdict,
            summary: summary.into(),
        }
    }

    #[test]
    fn an_aborted_canary_shows_where_and_why() {
        let mut c = CanaryReport::new("replicas");
        c.steps.push(step(1, 10, StepVerdict::Passed, "passed"));
        c.steps.push(step(
            2,
            25,
            StepVerdict::Failed,
            "error-rate: 0.5 > 0.01 for 2s",
        ));
        c.decision = Some(CanaryDecision::Aborted);
        c.reason = Some("step 2 (25 %): error-rate: 0.5 > 0.01".into());
        c.abort_to_stable_ms = Some(850);
        let text = canary_section(&c);
        assert!(
            text.starts_with("### Canary: ↩️ aborted at 25 %, stable serving"),
            "{text}"
        );
        assert!(text.contains("| 2 | 25 % | 2 / 1 | 33 % |"), "{text}");
        assert!(
            text.contains("❌ error-rate: 0.5 &gt; 0.01")
                || text.contains("❌ error-rate: 0.5 > 0.01"),
            "{text}"
        );
        assert!(text.contains("850"), "{text}");
        assert!(!text.contains("Service"), "one service, no column: {text}");
    }

    #[test]
    fn a_promoted_canary() {
        let mut c = CanaryReport::new("ingress-nginx");
        c.steps.push(step(1, 100, StepVerdict::Passed, "passed"));
        c.decision = Some(CanaryDecision::Promoted);
        let text = canary_section(&c);
        assert!(text.starts_with("### Canary: ✅ promoted"), "{text}");
        assert!(
            text.contains("routing <code>ingress-nginx</code>"),
            "{text}"
        );
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["decision"], "promoted");
        assert_eq!(json["steps"][0]["verdict"], "passed");
        assert!(json.get("abort_to_stable_ms").is_none());
    }
}
