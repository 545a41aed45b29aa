//! The environment's checks after a rollout: smoke checks with their numbers against the SLO,
//! integration Jobs and the soak.

use super::text::*;
use crate::actions::table;
use crate::checks::VerifyReport;
use crate::untrusted::{code, escape_md_with_code};

/// Names of failed integration tests listed in the summary; the JUnit report has the rest.
pub(super) const FAILED_TESTS_SHOWN: usize = 20;

/// The environment's checks: each with its numbers, and the SLO objectives measured against.
pub(super) fn checks_section(v: &VerifyReport) -> String {
    let mut out = format!(
        "### Checks: {}\n\n{} · took {}\n\n",
        if v.passed { "✅ passed" } else { "❌ failed" },
        escape_md_with_code(&v.summary),
        human_ms(v.duration_ms)
    );
    if v.checks.is_empty() {
        return out;
    }
    out.push_str(&v.summary_table());
    let slo_rows: Vec<Vec<String>> = v
        .checks
        .iter()
        .filter_map(|c| c.smoke.as_ref().map(|s| (c, s)))
        .flat_map(|(c, s)| {
            s.slo.iter().map(move |verdict| {
                vec![
                    escape_md_with_code(&c.name),
                    code(verdict.objective),
                    escape_md_with_code(&verdict.target),
                    escape_md_with_code(&verdict.measured),
                    if verdict.passed { "✅" } else { "❌" }.to_string(),
                ]
            })
        })
        .collect();
    if !slo_rows.is_empty() {
        out.push_str("\n**Against the SLO**\n\n");
        out.push_str(&table(
            &["Check", "Objective", "Target", "Measured", "Met"],
            &slo_rows,
        ));
    }
    let failed_tests: Vec<String> = v
        .checks
        .iter()
        .filter_map(|c| c.integration.as_ref()?.junit.as_ref())
        .flat_map(|j| j.failures.iter())
        .map(|name| code(name))
        .collect();
    if !failed_tests.is_empty() {
        let more = failed_tests.len().saturating_sub(FAILED_TESTS_SHOWN);
        out.push_str(&format!(
            "\n**Failed tests:** {}{}\n",
            failed_tests
                .iter()
                .take(FAILED_TESTS_SHOWN)
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ));
    }
    let sampling_errors: Vec<String> = v
        .checks
        .iter()
        .filter_map(|c| c.smoke.as_ref()?.sampling.as_ref().map(|s| (c, s)))
        .flat_map(|(c, s)| {
            s.error_reasons.iter().map(move |e| {
                format!(
                    "{}: {} × {}",
                    escape_md_with_code(&c.name),
                    e.count,
                    escape_md_with_code(&e.reason)
                )
            })
        })
        .collect();
    if !sampling_errors.is_empty() {
        out.push_str(&format!(
            "\n**Failed requests:** {}\n",
            sampling_errors.join("; ")
        ));
    }
    out
}
