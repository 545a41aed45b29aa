//! Metric analysis in the job summary: one row per query with its value, bound and verdict.

use crate::actions::table;
use crate::checks::analysis::{AnalysisReport, Verdict, format_value};
use crate::config::Bound;
use crate::config::units::format_duration;
use crate::untrusted::{code, escape_md_with_code};

fn verdict_cell(passed: bool, verdict: Verdict) -> &'static str {
    match (passed, verdict) {
        (_, Verdict::Breach) => "❌ breached",
        (true, Verdict::Inconclusive) => "⚠️ no data (passes)",
        (false, _) => "❌ no data",
        (true, Verdict::Pass) => "✅ within",
    }
}

/// `≤ 0.01` / `≥ 0.99`, with `for` when it has one.
fn bound_cell(bound: Bound, for_: std::time::Duration) -> String {
    let text = match bound {
        Bound::Max(max) => format!("≤ {}", format_value(max)),
        Bound::Min(min) => format!("≥ {}", format_value(min)),
    };
    if for_.is_zero() {
        text
    } else {
        format!("{text} (breached for {})", format_duration(for_))
    }
}

/// The metric analysis section: per service and track, the window and each query's numbers.
pub(super) fn analysis_section(reports: &[AnalysisReport]) -> Option<String> {
    if reports.is_empty() {
        return None;
    }
    let passed = reports.iter().all(|r| r.passed);
    let mut out = format!(
        "### Metric analysis: {}\n\n",
        if passed { "✅ passed" } else { "❌ failed" }
    );
    for r in reports {
        out.push_str(&format!(
            "{} ({}) · {} · window {} → {}\n\n",
            code(&r.target.service),
            r.target.track,
            escape_md_with_code(&r.summary),
            r.window.start,
            r.window.end
        ));
        let rows: Vec<Vec<String>> = r
            .queries
            .iter()
            .map(|q| {
                vec![
                    escape_md_with_code(&q.name),
                    q.worst.map_or_else(|| "—".to_string(), format_value),
                    q.last.map_or_else(|| "—".to_string(), format_value),
                    bound_cell(q.bound, q.for_),
                    q.samples.to_string(),
                    verdict_cell(q.passed, q.verdict).to_string(),
                ]
            })
            .collect();
        out.push_str(&table(
            &["Query", "Worst", "Last", "Bound", "Samples", "Verdict"],
            &rows,
        ));
        out.push('\n');
    }
    Some(out)
}
