//! What a verification found, as data: every check with its numbers, its verdict and the
//! reason, serialized into the JSON report (`promote-verify.json`, and the deploy and pipeline
//! reports that embed it). Rendering for people lives in [`VerifyReport::lines`] and
//! [`VerifyReport::summary_table`]; neither calls anything.

use serde::Serialize;

use super::junit::JunitSummary;
use super::slo::{self, Verdict};

/// The result of [`verify`](super::verify): passed when every check passed.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub environment: String,
    pub namespace: String,
    pub passed: bool,
    /// One line: "3 checks passed" or "smoke health: p95 512 ms > 500 ms".
    pub summary: String,
    pub duration_ms: u128,
    pub checks: Vec<CheckReport>,
    /// Problems that did not fail a check (a report that could not be parsed, a Job that could
    /// not be deleted).
    pub warnings: Vec<String>,
}

impl VerifyReport {
    /// Fills in `passed` and `summary` from the checks.
    pub fn conclude(&mut self) {
        self.passed = self.checks.iter().all(|c| c.passed);
        let failed: Vec<&CheckReport> = self.checks.iter().filter(|c| !c.passed).collect();
        self.summary = match failed.as_slice() {
            [] if self.checks.is_empty() => "no checks declared".to_string(),
            [] => format!(
                "{} check{} passed",
                self.checks.len(),
                if self.checks.len() == 1 { "" } else { "s" }
            ),
            [only] => only.headline(),
            many => format!(
                "{} of {} checks failed: {}",
                many.len(),
                self.checks.len(),
                many.iter()
                    .map(|c| c.headline())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        };
    }

    /// A Markdown table for the job summary: check, result, numbers.
    pub fn summary_table(&self) -> String {
        use crate::actions::table;
        use crate::untrusted::escape_md;
        let rows: Vec<Vec<String>> = self
            .checks
            .iter()
            .map(|c| {
                vec![
                    escape_md(&format!("{} {}", c.kind.word(), c.name)),
                    if c.passed { "✅ passed" } else { "❌ failed" }.to_string(),
                    escape_md(&c.numbers()),
                    escape_md(c.reason.as_deref().unwrap_or("")),
                ]
            })
            .collect();
        table(&["Check", "Result", "Numbers", "Reason"], &rows)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckKind {
    Smoke,
    Integration,
    Soak,
}

impl CheckKind {
    pub fn word(self) -> &'static str {
        match self {
            CheckKind::Smoke => "smoke",
            CheckKind::Integration => "integration",
            CheckKind::Soak => "soak",
        }
    }
}

/// One check: its verdict, why, and what was measured.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub name: String,
    pub kind: CheckKind,
    pub passed: bool,
    /// Why it failed (or, when it passed with something worth knowing, a note).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub duration_ms: u128,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smoke: Option<SmokeReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integration: Option<IntegrationReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soak: Option<SoakReport>,
}

impl CheckReport {
    pub(crate) fn new(kind: CheckKind, name: &str) -> CheckReport {
        CheckReport {
            name: name.to_string(),
            kind,
            passed: false,
            reason: None,
            duration_ms: 0,
            smoke: None,
            integration: None,
            soak: None,
        }
    }

    /// `smoke health: p95 512 ms > 500 ms`, or `smoke health passed`.
    pub fn headline(&self) -> String {
        match (&self.reason, self.passed) {
            (Some(reason), false) => format!("{} {}: {reason}", self.kind.word(), self.name),
            (_, false) => format!("{} {} failed", self.kind.word(), self.name),
            (_, true) => format!("{} {} passed", self.kind.word(), self.name),
        }
    }

    /// The measurements in one line, for the log and the summary table.
    pub fn numbers(&self) -> String {
        if let Some(s) = &self.smoke {
            let mut parts = Vec::new();
            if let Some(r) = &s.readiness {
                parts.push(format!(
                    "{} after {} attempt{} ({:.1}s)",
                    if r.ready { "ready" } else { "not ready" },
                    r.attempts,
                    if r.attempts == 1 { "" } else { "s" },
                    r.elapsed_ms as f64 / 1000.0
                ));
            }
            if let Some(x) = &s.sampling {
                parts.push(x.line());
            }
            return parts.join("; ");
        }
        if let Some(i) = &self.integration {
            let mut text = format!("job/{}: {}", i.job, i.status);
            if let Some(j) = &i.junit {
                text.push_str(&format!(
                    "; {} tests: {} passed, {} failed, {} skipped",
                    j.tests, j.passed, j.failed, j.skipped
                ));
            }
            return text;
        }
        if let Some(s) = &self.soak {
            return format!(
                "{} pod{} watched for {:.0}s, {} restart{} (at most {} allowed)",
                s.pods.len(),
                if s.pods.len() == 1 { "" } else { "s" },
                s.watched_ms as f64 / 1000.0,
                s.restarts,
                if s.restarts == 1 { "" } else { "s" },
                s.max_restarts
            );
        }
        String::new()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SmokeReport {
    /// Where requests went: the URL, or the API server path of the service proxy.
    pub target: String,
    /// `url` or `service-proxy`.
    pub route: &'static str,
    pub method: String,
    pub expect_status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readiness: Option<Readiness>,
    /// Phase 2; absent when the service never became ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampling: Option<SampleStats>,
    /// Each objective of the environment's SLO compared with the sample.
    pub slo: Vec<Verdict>,
}

/// Phase 1: requests until one met every expectation.
#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    pub ready: bool,
    pub attempts: u32,
    pub elapsed_ms: u128,
    /// Why the last failing attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
}

/// Phase 2: what the sampler measured. Latencies in milliseconds (microsecond precision) over
/// every answered request, whatever its status; failed requests are counted in `errors`.
#[derive(Debug, Clone, Serialize)]
pub struct SampleStats {
    pub requests: u64,
    /// Requests whose answer missed an expectation, or that got none (timeout, connection).
    pub errors: u64,
    pub error_rate_percent: f64,
    pub concurrency: u32,
    pub elapsed_ms: f64,
    pub throughput_rps: f64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub min_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub mean_ms: Option<f64>,
    /// Why requests failed, most frequent first (at most 5 reasons).
    pub error_reasons: Vec<ErrorCount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorCount {
    pub reason: String,
    pub count: u64,
}

impl SampleStats {
    /// `200 requests at concurrency 10 in 1.2s (166 req/s): p50 3.1 ms, p95 5.2 ms, p99 7.0 ms;
    /// errors 0 (0%)`.
    pub fn line(&self) -> String {
        let ms = |v: Option<f64>| {
            v.map_or_else(
                || "–".to_string(),
                |v| slo::show_ms(std::time::Duration::from_secs_f64(v / 1000.0)),
            )
        };
        format!(
            "{} requests at concurrency {} in {:.1}s ({:.0} req/s): p50 {}, p95 {}, p99 {}; errors {} ({})",
            self.requests,
            self.concurrency,
            self.elapsed_ms / 1000.0,
            self.throughput_rps,
            ms(self.p50_ms),
            ms(self.p95_ms),
            ms(self.p99_ms),
            self.errors,
            slo::format_percent(self.error_rate_percent)
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct IntegrationReport {
    pub job: String,
    pub image: String,
    /// `succeeded`, `failed: <the Job's reason>` or `timed out`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub junit: Option<JunitSummary>,
    /// Whether the Job was deleted afterwards (`ttlSecondsAfterFinished` is the backstop).
    pub deleted: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    pub watched_ms: u128,
    pub max_restarts: u32,
    pub restarts: u32,
    /// The pods of the current revision that were watched.
    pub pods: Vec<String>,
}
