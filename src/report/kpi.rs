//! `promote metrics`: the delivery metrics as a job summary (a table per production
//! environment with ✅/❌ against the seed's targets, a mermaid chart of deployments per week
//! with the failures marked, the services and the other environments) and as terminal text.
//! The JSON report is the serde form of [`KpiReport`] itself.
//!
//! Environment and service names come from GitHub (an environment is whatever a workflow
//! named it): escaped for Markdown and mermaid, put on one line for the terminal.

use super::text::{aligned, plain, plural};
use crate::actions::{Priority, Summary, table};
use crate::kpi::{EnvironmentKpis, KpiReport, Kpis, Targets, Verdict};
use crate::untrusted::{escape_md, mermaid_text};

/// The job summary of `promote metrics`.
pub fn kpi_summary(report: &KpiReport) -> Summary {
    let mut summary = Summary::new();
    summary.section(
        Priority::Essential,
        format!(
            "## 📈 Delivery metrics\n\n{} · {} → {} ({}) · {} deployment{} read in {} request{}\n",
            escape_md(&report.repository),
            day(&report.since),
            day(&report.until),
            window_text(report.window_days),
            report.deployments_read,
            plural(report.deployments_read),
            report.requests,
            plural(report.requests as usize),
        ),
    );
    let (production, others): (Vec<&EnvironmentKpis>, Vec<&EnvironmentKpis>) =
        report.environments.iter().partition(|e| e.production);
    if production.is_empty() {
        summary.section(
            Priority::Essential,
            "> [!NOTE]\n> No production environment in the record yet: the targets apply to \
             production only.\n",
        );
    }
    for env in production {
        summary.section(Priority::Essential, production_table(env, &report.targets));
        summary.section(Priority::High, weekly_chart(env));
        if !env.services.is_empty() {
            summary.section(Priority::Normal, services_table(env));
        }
        if let Some(note) = notes(&env.kpis) {
            summary.section(Priority::Normal, note);
        }
    }
    if !others.is_empty() {
        summary.section(Priority::Normal, others_table(&others));
    }
    summary
}

/// `promote metrics` in the terminal: a block per environment, one line per figure.
pub fn kpi_text(report: &KpiReport) -> String {
    let mut out = format!(
        "Delivery metrics of {}, {} → {} ({}; {} deployment{} read in {} request{})\n",
        plain(&report.repository),
        day(&report.since),
        day(&report.until),
        window_text(report.window_days),
        report.deployments_read,
        plural(report.deployments_read),
        report.requests,
        plural(report.requests as usize),
    );
    let targets = &report.targets;
    for env in &report.environments {
        let k = &env.kpis;
        out.push_str(&format!(
            "\n{}{}\n",
            plain(&env.environment),
            if env.production {
                " (production: judged against the targets)"
            } else {
                ""
            }
        ));
        let mut rows = vec![vec![
            "deployment frequency".to_string(),
            frequency_text(k),
            format!("target {}", frequency_target(targets)),
            verdict_word(k.deployment_frequency.verdict),
        ]];
        if let Some(lead) = &k.lead_time {
            rows.push(vec![
                "lead time".to_string(),
                lead_text(k),
                format!("target < {}", duration_text(targets.lead_time_seconds)),
                verdict_word(lead.verdict),
            ]);
        }
        rows.push(vec![
            "change failure rate".to_string(),
            failure_rate_text(k),
            format!("target < {}", percent(targets.change_failure_rate)),
            verdict_word(k.change_failure_rate.verdict),
        ]);
        rows.push(vec![
            "time to restore".to_string(),
            restore_text(k),
            format!(
                "target < {}",
                duration_text(targets.time_to_restore_seconds)
            ),
            verdict_word(k.time_to_restore.verdict),
        ]);
        out.push_str(&aligned(&rows, "  "));
        if env.production && !env.services.is_empty() {
            let rows: Vec<Vec<String>> = env
                .services
                .iter()
                .map(|s| {
                    vec![
                        plain(&s.service),
                        frequency_text(&s.kpis),
                        format!("failures {}", failure_rate_text(&s.kpis)),
                        format!("restore {}", restore_text(&s.kpis)),
                    ]
                })
                .collect();
            out.push_str("  services:\n");
            out.push_str(&aligned(&rows, "    "));
        }
    }
    out
}

/// The four figures of a production environment against the targets.
fn production_table(env: &EnvironmentKpis, targets: &Targets) -> String {
    let k = &env.kpis;
    let mut rows = vec![vec![
        "Deployment frequency".to_string(),
        frequency_text(k),
        frequency_target(targets),
        mark(k.deployment_frequency.verdict).to_string(),
    ]];
    if let Some(lead) = &k.lead_time {
        rows.push(vec![
            "Lead time for changes".to_string(),
            lead_text(k),
            format!("< {}", duration_text(targets.lead_time_seconds)),
            mark(lead.verdict).to_string(),
        ]);
    }
    rows.push(vec![
        "Change failure rate".to_string(),
        failure_rate_text(k),
        format!("< {}", percent(targets.change_failure_rate)),
        mark(k.change_failure_rate.verdict).to_string(),
    ]);
    rows.push(vec![
        "Time to restore".to_string(),
        restore_text(k),
        format!("< {}", duration_text(targets.time_to_restore_seconds)),
        mark(k.time_to_restore.verdict).to_string(),
    ]);
    format!(
        "### {}\n\n{}",
        escape_md(&env.environment),
        table(&["Metric", "Value", "Target", "Met"], &escape_cells(rows))
    )
}

/// Per service: the same figures, each with its mark.
fn services_table(env: &EnvironmentKpis) -> String {
    let rows: Vec<Vec<String>> = env
        .services
        .iter()
        .map(|s| {
            let k = &s.kpis;
            vec![
                format!("**{}**", escape_md(&s.service)),
                marked(frequency_text(k), k.deployment_frequency.verdict),
                k.lead_time
                    .as_ref()
                    .map_or("—".to_string(), |l| marked(lead_text(k), l.verdict)),
                marked(failure_rate_text(k), k.change_failure_rate.verdict),
                marked(restore_text(k), k.time_to_restore.verdict),
            ]
        })
        .collect();
    format!(
        "#### Services in {}\n\n{}",
        escape_md(&env.environment),
        table(
            &[
                "Service",
                "Frequency",
                "Lead time",
                "Change failure rate",
                "Time to restore"
            ],
            &rows
        )
    )
}

/// Environments before production: the same figures, not judged (a failure caught in
/// testing is the promotion working).
fn others_table(others: &[&EnvironmentKpis]) -> String {
    let rows: Vec<Vec<String>> = others
        .iter()
        .map(|env| {
            let k = &env.kpis;
            vec![
                format!("**{}**", escape_md(&env.environment)),
                k.counts.deployments.to_string(),
                escape_md(&frequency_text(k)),
                escape_md(&failure_rate_text(k)),
                escape_md(&restore_text(k)),
            ]
        })
        .collect();
    format!(
        "### Other environments\n\nNot judged: the targets apply to production.\n\n{}",
        table(
            &[
                "Environment",
                "Deployments",
                "Frequency",
                "Change failure rate",
                "Time to restore"
            ],
            &rows
        )
    )
}

/// Successful deployments per ISO week as bars, failed changes as a line over them (mermaid's
/// xychart has no legend, so the caption says which is which).
fn weekly_chart(env: &EnvironmentKpis) -> String {
    let labels: Vec<String> = env
        .weeks
        .iter()
        // `2025-W11` → `W11`: the year only where it changes would need state; the caption
        // gives the window.
        .map(|w| {
            format!(
                "\"{}\"",
                mermaid_text(w.week.rsplit('-').next().unwrap_or(&w.week))
            )
        })
        .collect();
    let successes: Vec<String> = env
        .weeks
        .iter()
        .map(|w| w.deployments.to_string())
        .collect();
    let failures: Vec<String> = env.weeks.iter().map(|w| w.failures.to_string()).collect();
    let top = env
        .weeks
        .iter()
        .map(|w| w.deployments.max(w.failures))
        .max()
        .unwrap_or(0)
        .max(1);
    let failed: usize = env.weeks.iter().map(|w| w.failures).sum();
    format!(
        "```mermaid\nxychart-beta\n    title \"{} deployments per week\"\n    x-axis [{}]\n    \
         y-axis \"Deployments\" 0 --> {top}\n    bar [{}]\n    line [{}]\n```\n\n\
         *Bars: successful deployments · line: failed changes ({failed} in the window) · ISO \
         weeks, UTC.*\n",
        mermaid_text(&env.environment),
        labels.join(", "),
        successes.join(", "),
        failures.join(", "),
    )
}

/// What the figures leave out and why, when anything was.
fn notes(k: &Kpis) -> Option<String> {
    let c = &k.counts;
    let mut lines = Vec::new();
    if c.refused > 0 {
        lines.push(format!(
            "{} refused by the gate, a lock or invalid input: nothing changed, not counted as \
             changes",
            c.refused
        ));
    }
    if c.unfinished > 0 {
        lines.push(format!(
            "{} without a final status (running, waiting for approval, or abandoned)",
            c.unfinished
        ));
    }
    if c.without_status > 0 {
        lines.push(format!("{} without any status", c.without_status));
    }
    if c.decided_by_github > 0 {
        lines.push(format!(
            "{} decided by GitHub's own statuses (promote recorded no outcome)",
            c.decided_by_github
        ));
    }
    if let Some(lead) = &k.lead_time {
        if lead.skewed > 0 {
            lines.push(format!(
                "{} commit{} dated after {} deployment (clock skew), counted as 0",
                lead.skewed,
                plural(lead.skewed),
                if lead.skewed == 1 { "its" } else { "their" }
            ));
        }
        if lead.unknown_commit > 0 {
            lines.push(format!(
                "{} success{} whose commit GitHub does not know: lead time not measured",
                lead.unknown_commit,
                if lead.unknown_commit == 1 { "" } else { "es" }
            ));
        }
    }
    if lines.is_empty() {
        return None;
    }
    let mut out = String::from("<sub>\n\n");
    for line in lines {
        out.push_str(&format!("- {line}\n"));
    }
    out.push_str("\n</sub>\n");
    Some(out)
}

fn escape_cells(rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    rows.into_iter()
        .map(|row| {
            let last = row.len().saturating_sub(1);
            row.into_iter()
                .enumerate()
                // The mark is ours; every other cell holds numbers and words, escaped anyway.
                .map(|(i, cell)| if i == last { cell } else { escape_md(&cell) })
                .collect()
        })
        .collect()
}

fn marked(text: String, verdict: Option<Verdict>) -> String {
    match verdict {
        Some(v) => format!("{} {}", mark(Some(v)), escape_md(&text)),
        None => escape_md(&text),
    }
}

fn mark(verdict: Option<Verdict>) -> &'static str {
    match verdict {
        Some(Verdict::Met) => "✅",
        Some(Verdict::NotMet) => "❌",
        Some(Verdict::NoData) => "➖",
        None => "",
    }
}

fn verdict_word(verdict: Option<Verdict>) -> String {
    match verdict {
        Some(Verdict::Met) => "✅ met",
        Some(Verdict::NotMet) => "❌ not met",
        Some(Verdict::NoData) => "no data",
        None => "",
    }
    .to_string()
}

fn frequency_target(targets: &Targets) -> String {
    format!("{}+ / week", number(targets.deployments_per_week))
}

/// `2.3 / week (9 successful)`.
fn frequency_text(k: &Kpis) -> String {
    let f = &k.deployment_frequency;
    format!("{} / week ({} successful)", number(f.per_week), f.successes)
}

/// `median 45m · p90 1h 25m (8 commits)`, or why there is none.
fn lead_text(k: &Kpis) -> String {
    match &k.lead_time {
        Some(l) => match (l.median_seconds, l.p90_seconds) {
            (Some(median), Some(p90)) => format!(
                "median {} · p90 {} ({} commit{})",
                duration_text(median),
                duration_text(p90),
                l.samples,
                plural(l.samples)
            ),
            _ => "no commit measured".to_string(),
        },
        None => "—".to_string(),
    }
}

/// `12.5 % (1 of 8)`, or `no finished change`.
fn failure_rate_text(k: &Kpis) -> String {
    let r = &k.change_failure_rate;
    match r.rate {
        Some(rate) => format!("{} ({} of {})", percent(rate), r.failures, r.finished),
        None => "no finished change".to_string(),
    }
}

/// `median 35m (2 restored) · open for 2h 40m`, or `no failure`.
fn restore_text(k: &Kpis) -> String {
    let r = &k.time_to_restore;
    let mut parts = Vec::new();
    if let Some(median) = r.median_seconds {
        parts.push(format!(
            "median {} ({} restored)",
            duration_text(median),
            r.restored
        ));
    }
    if let Some(open) = &r.open {
        parts.push(format!(
            "open for {} (deployment {})",
            duration_text(open.age_seconds),
            open.deployment_id
        ));
    }
    if parts.is_empty() {
        "no failure".to_string()
    } else {
        parts.join(" · ")
    }
}

/// `0s`, `45s`, `12m`, `1h 05m`, `2d 4h`.
fn duration_text(seconds: u64) -> String {
    let (d, h, m) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
    );
    if seconds < 60 {
        format!("{seconds}s")
    } else if seconds < 3600 {
        format!("{m}m")
    } else if d == 0 {
        if m == 0 {
            format!("{h}h")
        } else {
            format!("{h}h {m:02}m")
        }
    } else if h == 0 {
        format!("{d}d")
    } else {
        format!("{d}d {h}h")
    }
}

/// `15 %`, `12.5 %`.
fn percent(fraction: f64) -> String {
    format!("{} %", number(fraction * 100.0))
}

/// At most one decimal, none when whole: `2`, `2.3`.
fn number(value: f64) -> String {
    let rounded = (value * 10.0).round() / 10.0;
    if rounded.fract() == 0.0 {
        format!("{rounded:.0}")
    } else {
        format!("{rounded:.1}")
    }
}

/// `2025-03-03` from an RFC 3339 time.
fn day(at: &str) -> String {
    plain(at.split('T').next().unwrap_or(at))
}

/// `30 days`, `1 day`, `12 hours`.
fn window_text(days: f64) -> String {
    if days >= 1.0 {
        let n = number(days);
        format!("{n} day{}", if n == "1" { "" } else { "s" })
    } else {
        let hours = number(days * 24.0);
        format!("{hours} hour{}", if hours == "1" { "" } else { "s" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kpi::{
        Counts, FailureRate, Frequency, LeadTime, OpenFailure, Restore, ServiceKpis, WeekCount,
    };

    fn production_kpis() -> Kpis {
        Kpis {
            counts: Counts {
                deployments: 11,
                succeeded: 9,
                rolled_back: 1,
                refused: 1,
                ..Counts::default()
            },
            deployment_frequency: Frequency {
                per_week: 2.25,
                successes: 9,
                verdict: Some(Verdict::Met),
            },
            lead_time: Some(LeadTime {
                median_seconds: Some(45 * 60),
                p90_seconds: Some(3 * 3600 + 5 * 60),
                samples: 8,
                skewed: 1,
                unknown_commit: 0,
                verdict: Some(Verdict::Met),
            }),
            change_failure_rate: FailureRate {
                rate: Some(0.1),
                failures: 1,
                finished: 10,
                verdict: Some(Verdict::Met),
            },
            time_to_restore: Restore {
                median_seconds: None,
                restored: 0,
                open: Some(OpenFailure {
                    deployment_id: 4242,
                    failed_at: "2025-03-31T09:20:00Z".into(),
                    age_seconds: 160 * 60,
                }),
                verdict: Some(Verdict::NotMet),
            },
        }
    }

    fn report(environment: &str) -> KpiReport {
        let weeks = vec![
            WeekCount {
                week: "2025-W10".into(),
                deployments: 2,
                failures: 0,
            },
            WeekCount {
                week: "2025-W11".into(),
                deployments: 3,
                failures: 1,
            },
        ];
        let mut testing = production_kpis();
        testing.lead_time = None;
        testing.deployment_frequency.verdict = None;
        testing.change_failure_rate.verdict = None;
        testing.time_to_restore.verdict = None;
        KpiReport {
            command: "metrics",
            repository: "studysphere/app".into(),
            since: "2025-03-03T12:00:00Z".into(),
            until: "2025-03-31T12:00:00Z".into(),
            window_days: 28.0,
            window_weeks: 4.0,
            targets: Targets::SEED,
            requests: 57,
            deployments_read: 30,
            outside_window: 0,
            environments: vec![
                EnvironmentKpis {
                    environment: "testing".into(),
                    production: false,
                    kpis: testing,
                    weeks: weeks.clone(),
                    services: Vec::new(),
                },
                EnvironmentKpis {
                    environment: environment.into(),
                    production: true,
                    kpis: production_kpis(),
                    weeks,
                    services: vec![ServiceKpis {
                        service: "web".into(),
                        kpis: production_kpis(),
                    }],
                },
            ],
        }
    }

    #[test]
    fn the_summary_judges_production_and_charts_its_weeks() {
        let md = kpi_summary(&report("production")).render();
        for want in [
            "## 📈 Delivery metrics",
            "studysphere/app · 2025-03-03 → 2025-03-31 (28 days) · 30 deployments read in 57 requests",
            "### production",
            "| Deployment frequency | 2.3 / week (9 successful) | 2+ / week | ✅ |",
            "| Lead time for changes | median 45m · p90 3h 05m (8 commits) | &lt; 2h | ✅ |",
            "| Change failure rate | 10 % (1 of 10) | &lt; 15 % | ✅ |",
            "| Time to restore | open for 2h 40m (deployment 4242) | &lt; 1h | ❌ |",
            "xychart-beta",
            "title \"production deployments per week\"",
            "x-axis [\"W10\", \"W11\"]",
            "y-axis \"Deployments\" 0 --> 3",
            "bar [2, 3]",
            "line [0, 1]",
            "line: failed changes (1 in the window)",
            "| **web** | ✅ 2.3 / week (9 successful) |",
            "1 refused by the gate",
            "1 commit dated after its deployment (clock skew)",
            "### Other environments",
            "| **testing** | 11 | 2.3 / week (9 successful) | 10 % (1 of 10) |",
        ] {
            assert!(md.contains(want), "missing {want:?} in:\n{md}");
        }
        assert_eq!(md.matches("xychart-beta").count(), 1, "production only");
    }

    #[test]
    fn names_from_github_cannot_break_the_table_the_chart_or_the_terminal() {
        let hostile = "prod|<b>x</b>\"] \n::error::forged";
        let report = report(hostile);
        let md = kpi_summary(&report).render();
        assert!(!md.contains("<b>"), "{md}");
        assert!(!md.contains("prod|"), "{md}");
        assert!(!md.contains("\n::error::"), "{md}");
        let title = md
            .lines()
            .find(|l| l.trim_start().starts_with("title "))
            .unwrap();
        assert_eq!(title.matches('"').count(), 2, "{title}");
        let text = kpi_text(&report);
        assert!(
            text.lines().all(|l| !l.starts_with("::")),
            "a line could forge a workflow command:\n{text}"
        );
    }

    #[test]
    fn no_production_yet_says_so() {
        let mut report = report("production");
        report.environments.retain(|e| !e.production);
        let md = kpi_summary(&report).render();
        assert!(
            md.contains("No production environment in the record yet"),
            "{md}"
        );
        assert!(!md.contains("xychart-beta"), "{md}");
    }

    #[test]
    fn the_terminal_text_has_a_line_per_figure() {
        let text = kpi_text(&report("production"));
        for want in [
            "Delivery metrics of studysphere/app, 2025-03-03 → 2025-03-31 (28 days; 30 \
             deployments read in 57 requests)",
            "production (production: judged against the targets)",
            "  deployment frequency  2.3 / week (9 successful)",
            "target 2+ / week",
            "✅ met",
            "open for 2h 40m (deployment 4242)",
            "❌ not met",
            "  services:\n    web",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
        let testing = text.split("\n\n").nth(1).unwrap();
        assert!(
            !testing.contains("met"),
            "testing is not judged:\n{testing}"
        );
        assert!(!testing.contains("lead time"), "{testing}");
    }

    #[test]
    fn durations_and_numbers_read_like_people_write_them() {
        for (seconds, want) in [
            (0, "0s"),
            (45, "45s"),
            (12 * 60, "12m"),
            (3600, "1h"),
            (3600 + 5 * 60, "1h 05m"),
            (2 * 86_400, "2d"),
            (2 * 86_400 + 4 * 3600 + 59, "2d 4h"),
        ] {
            assert_eq!(duration_text(seconds), want, "{seconds}s");
        }
        assert_eq!(percent(0.15), "15 %");
        assert_eq!(percent(0.125), "12.5 %");
        assert_eq!(number(2.0), "2");
        assert_eq!(window_text(1.0), "1 day");
        assert_eq!(window_text(0.5), "12 hours");
    }
}
