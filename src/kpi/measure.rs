//! The four figures from a deployment history: pure, `now` passed in. The window is cut here,
//! deployments grouped by environment and service, counted and judged; the durations and the
//! calendar are `durations` and `weeks`.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::jiff::Timestamp;

use super::durations::{lead_time, restore};
use super::ending::{DecidedBy, Ending, outcome};
use super::model::{
    Counts, EnvironmentKpis, FailureRate, Frequency, KpiReport, Kpis, ServiceKpis, Settings,
    Targets, Verdict,
};
use super::weeks::{week_counts, weeks};
use crate::github::{CommitDates, DeploymentHistory, History};

/// The key under which `promote run` records the release in a deployment's payload.
const PAYLOAD_KEY: &str = "promote";

const WEEK_SECONDS: f64 = 7.0 * 86_400.0;

/// The sha whose commit date the lead time of `deployment` needs: a successful deployment to
/// a production environment (named in `production`, or flagged by GitHub). The release's
/// commit from our payload when recorded, else the deployment's sha. Pass it to
/// `GitHub::deployment_history` as `|d| kpi::lead_time_commit(d, &production)`.
pub fn lead_time_commit(deployment: &DeploymentHistory, production: &[String]) -> Option<String> {
    let is_production = deployment.production_environment
        || production.contains(&deployment.deployment.environment);
    (is_production && outcome(&deployment.statuses).ending == Ending::Succeeded)
        .then(|| commit_sha(deployment).to_string())
}

fn commit_sha(deployment: &DeploymentHistory) -> &str {
    deployment.deployment.payload[PAYLOAD_KEY]["sha"]
        .as_str()
        .unwrap_or(&deployment.deployment.sha)
}

/// One deployment in the window, read once.
pub(super) struct Entry<'a> {
    pub(super) id: u64,
    pub(super) created: Timestamp,
    pub(super) ending: Ending,
    pub(super) decided_by: DecidedBy,
    /// When the ending came; the creation time when unreadable.
    pub(super) at: Timestamp,
    pub(super) sha: &'a str,
    pub(super) services: Vec<&'a str>,
}

/// The metrics of `history` over the window ending at `settings.now`.
pub fn compute(history: &History, settings: &Settings) -> KpiReport {
    let until = settings.now;
    let since = Timestamp::from_second(
        until
            .as_second()
            .saturating_sub(i64::try_from(settings.window.as_secs()).unwrap_or(i64::MAX)),
    )
    .unwrap_or(Timestamp::MIN);
    let weeks_in_window = settings.window.as_secs_f64() / WEEK_SECONDS;

    let mut outside_window = 0;
    let mut by_environment: BTreeMap<&str, Vec<Entry>> = BTreeMap::new();
    let mut flagged: BTreeSet<&str> = BTreeSet::new();
    for d in &history.deployments {
        let Ok(created) = d.deployment.created_at.parse::<Timestamp>() else {
            outside_window += 1;
            continue;
        };
        if created < since || created > until {
            outside_window += 1;
            continue;
        }
        if d.production_environment {
            flagged.insert(&d.deployment.environment);
        }
        let found = outcome(&d.statuses);
        let services = d.deployment.payload[PAYLOAD_KEY]["digests"]
            .as_object()
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        by_environment
            .entry(&d.deployment.environment)
            .or_default()
            .push(Entry {
                id: d.deployment.id,
                created,
                ending: found.ending,
                decided_by: found.decided_by,
                at: found.at.unwrap_or(created),
                sha: commit_sha(d),
                services,
            });
    }

    let mut names: Vec<&str> = settings.environments.iter().map(String::as_str).collect();
    for name in settings.production.iter().map(String::as_str) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    for name in by_environment.keys() {
        if !names.contains(name) {
            names.push(name);
        }
    }
    let week_keys = weeks(since, until);
    let environments = names
        .into_iter()
        .map(|name| {
            let mut entries = by_environment.remove(name).unwrap_or_default();
            // Outcomes in the order they came, for the restore clock.
            entries.sort_by_key(|e| (e.at, e.id));
            let production =
                settings.production.iter().any(|p| p == name) || flagged.contains(name);
            let all: Vec<&Entry> = entries.iter().collect();
            let measure = |subset: &[&Entry]| {
                kpis(
                    subset,
                    production,
                    &history.commits,
                    until,
                    weeks_in_window,
                    &settings.targets,
                )
            };
            let service_names: BTreeSet<&str> = entries
                .iter()
                .flat_map(|e| e.services.iter().copied())
                .collect();
            let services = service_names
                .into_iter()
                .map(|service| {
                    let subset: Vec<&Entry> = entries
                        .iter()
                        .filter(|e| e.services.contains(&service))
                        .collect();
                    ServiceKpis {
                        service: service.to_string(),
                        kpis: measure(&subset),
                    }
                })
                .collect();
            EnvironmentKpis {
                environment: name.to_string(),
                production,
                kpis: measure(&all),
                weeks: week_counts(&all, &week_keys),
                services,
            }
        })
        .collect();
    KpiReport {
        command: "metrics",
        repository: settings.repository.clone(),
        since: since.to_string(),
        until: until.to_string(),
        window_days: settings.window.as_secs_f64() / 86_400.0,
        window_weeks: weeks_in_window,
        targets: settings.targets,
        requests: history.requests,
        deployments_read: history.deployments.len(),
        outside_window,
        environments,
    }
}

/// The figures of one set of deployments, sorted by outcome time.
fn kpis(
    entries: &[&Entry],
    production: bool,
    commits: &BTreeMap<String, CommitDates>,
    now: Timestamp,
    weeks: f64,
    targets: &Targets,
) -> Kpis {
    let mut counts = Counts {
        deployments: entries.len(),
        ..Counts::default()
    };
    for e in entries {
        match e.ending {
            Ending::Succeeded => counts.succeeded += 1,
            Ending::Failed => counts.failed += 1,
            Ending::RolledBack => counts.rolled_back += 1,
            Ending::RollbackFailed => counts.rollback_failed += 1,
            Ending::Refused => counts.refused += 1,
            Ending::Unfinished => counts.unfinished += 1,
            Ending::NoStatus => counts.without_status += 1,
        }
        if e.decided_by == DecidedBy::GitHub {
            counts.decided_by_github += 1;
        }
    }
    let judged = |verdict: Verdict| production.then_some(verdict);

    let per_week = if weeks > 0.0 {
        counts.succeeded as f64 / weeks
    } else {
        0.0
    };
    let deployment_frequency = Frequency {
        per_week,
        successes: counts.succeeded,
        verdict: judged(if counts.deployments == 0 {
            Verdict::NoData
        } else if per_week >= targets.deployments_per_week {
            Verdict::Met
        } else {
            Verdict::NotMet
        }),
    };

    let lead_time = production.then(|| lead_time(entries, commits, targets));

    let failures = counts.failed + counts.rolled_back + counts.rollback_failed;
    let finished = counts.succeeded + failures;
    let rate = (finished > 0).then(|| failures as f64 / finished as f64);
    let change_failure_rate = FailureRate {
        rate,
        failures,
        finished,
        verdict: judged(match rate {
            None => Verdict::NoData,
            Some(r) if r < targets.change_failure_rate => Verdict::Met,
            Some(_) => Verdict::NotMet,
        }),
    };

    let time_to_restore = restore(entries, now, targets, production);
    Kpis {
        counts,
        deployment_frequency,
        lead_time,
        change_failure_rate,
        time_to_restore,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use std::time::Duration;

    use k8s_openapi::jiff::SignedDuration;

    use super::*;
    use crate::github::{Deployment, DeploymentState, DeploymentStatus};

    use DeploymentState::{Failure, InProgress, Inactive, Success};

    /// Monday 2025-03-31 12:00 UTC; a 28-day window is exactly 4 weeks from Monday 03-03.
    const NOW: &str = "2025-03-31T12:00:00Z";
    const SINCE_DAYS: u64 = 28;

    /// `day` of March 2025 at `hh:mm` UTC.
    fn t(day: u32, hh: u32, mm: u32) -> String {
        format!("2025-03-{day:02}T{hh:02}:{mm:02}:00Z")
    }

    fn settings() -> Settings {
        Settings {
            repository: "studysphere/app".into(),
            now: NOW.parse().unwrap(),
            window: Duration::from_secs(SINCE_DAYS * 86_400),
            environments: vec!["testing".into(), "production".into()],
            production: vec!["production".into()],
            targets: Targets::SEED,
        }
    }

    /// A deployment by `promote run` (payload with the release's services), statuses newest
    /// first as `(state, description, at)`.
    fn ours(
        id: u64,
        env: &str,
        sha: &str,
        created: &str,
        statuses: &[(DeploymentState, &str, &str)],
    ) -> DeploymentHistory {
        DeploymentHistory {
            deployment: Deployment {
                id,
                sha: "run-sha".into(),
                git_ref: "main".into(),
                task: "deploy".into(),
                environment: env.into(),
                payload: json!({ "promote": {
                    "release": "3f2a9c1b0d4e", "sha": sha,
                    "digests": { "web": "sha256:1", "api": "sha256:2" },
                }}),
                description: None,
                creator: None,
                created_at: created.into(),
                url: String::new(),
            },
            production_environment: env == "production",
            statuses: statuses
                .iter()
                .enumerate()
                .map(|(i, (state, description, at))| DeploymentStatus {
                    id: id * 100 + i as u64,
                    state: *state,
                    description: Some((*description).into()),
                    environment_url: None,
                    log_url: None,
                    creator: None,
                    created_at: (*at).into(),
                })
                .collect(),
        }
    }

    const OK: &str = "release 3f2a9c1b0d4e verified in production";
    const ROLLED_BACK: &str =
        "release 3f2a9c1b0d4e failed: deploy to production failed (x); rolled back";
    const REFUSED: &str = "release 3f2a9c1b0d4e refused: not verified in testing";

    /// A success `minutes` after `created` on `day`.
    fn success(id: u64, env: &str, sha: &str, day: u32, minutes: u32) -> DeploymentHistory {
        ours(
            id,
            env,
            sha,
            &t(day, 10, 0),
            &[(Success, OK, &t(day, 10, minutes))],
        )
    }

    fn rolled_back(id: u64, env: &str, day: u32, hh: u32) -> DeploymentHistory {
        ours(
            id,
            env,
            "bad",
            &t(day, hh, 0),
            &[(Failure, ROLLED_BACK, &t(day, hh, 20))],
        )
    }

    fn committed(at: &str) -> CommitDates {
        CommitDates {
            committed_at: Some(at.into()),
            authored_at: Some("2025-01-01T00:00:00Z".into()),
        }
    }

    /// The production row's figures that a case pins down.
    #[derive(Debug, PartialEq)]
    struct Figures {
        succeeded: usize,
        failures: usize,
        per_week: f64,
        lead: Option<(Option<u64>, Option<u64>, usize)>,
        cfr: Option<f64>,
        restore: (Option<u64>, Option<u64>),
        verdicts: [Option<Verdict>; 4],
    }

    fn figures(k: &Kpis) -> Figures {
        Figures {
            succeeded: k.counts.succeeded,
            failures: k.change_failure_rate.failures,
            per_week: k.deployment_frequency.per_week,
            lead: k
                .lead_time
                .as_ref()
                .map(|l| (l.median_seconds, l.p90_seconds, l.skewed)),
            cfr: k.change_failure_rate.rate,
            restore: (
                k.time_to_restore.median_seconds,
                k.time_to_restore.open.as_ref().map(|o| o.age_seconds),
            ),
            verdicts: [
                k.deployment_frequency.verdict,
                k.lead_time.as_ref().and_then(|l| l.verdict),
                k.change_failure_rate.verdict,
                k.time_to_restore.verdict,
            ],
        }
    }

    use Verdict::{Met, NoData, NotMet};

    const MIN: u64 = 60;

    /// A case: its name, a history, the commit dates by sha, and production's figures.
    type Case = (
        &'static str,
        Vec<DeploymentHistory>,
        Vec<(&'static str, String)>,
        Figures,
    );

    #[test]
    fn production_figures() {
        let cases: Vec<Case> = vec![
            (
                "no production deployments yet: a row of no data",
                vec![success(1, "testing", "a", 10, 5)],
                vec![],
                Figures {
                    succeeded: 0,
                    failures: 0,
                    per_week: 0.0,
                    lead: Some((None, None, 0)),
                    cfr: None,
                    restore: (None, None),
                    verdicts: [Some(NoData), Some(NoData), Some(NoData), Some(NoData)],
                },
            ),
            (
                "an empty window: a row of no data, nothing divided by zero",
                vec![],
                vec![],
                Figures {
                    succeeded: 0,
                    failures: 0,
                    per_week: 0.0,
                    lead: Some((None, None, 0)),
                    cfr: None,
                    restore: (None, None),
                    verdicts: [Some(NoData), Some(NoData), Some(NoData), Some(NoData)],
                },
            ),
            (
                "a commit GitHub does not know is not measured",
                vec![success(1, "production", "gone", 20, 5)],
                vec![],
                Figures {
                    succeeded: 1,
                    failures: 0,
                    per_week: 0.25,
                    lead: Some((None, None, 0)),
                    cfr: Some(0.0),
                    restore: (None, None),
                    verdicts: [Some(NotMet), Some(NoData), Some(Met), Some(NoData)],
                },
            ),
            (
                "a failure restored quickly meets the restore target",
                vec![
                    rolled_back(1, "production", 20, 9),
                    success(2, "production", "fix", 20, 5),
                ],
                vec![("fix", t(20, 9, 50))],
                Figures {
                    succeeded: 1,
                    failures: 1,
                    per_week: 0.25,
                    lead: Some((Some(15 * MIN), Some(15 * MIN), 0)),
                    cfr: Some(0.5),
                    // 09:20 → 10:05.
                    restore: (Some(45 * MIN), None),
                    verdicts: [Some(NotMet), Some(Met), Some(NotMet), Some(Met)],
                },
            ),
            (
                "two a week, fast, no failures",
                (1..=8)
                    .map(|i| success(i, "production", &format!("c{i}"), 3 + 3 * i as u32, 5))
                    .collect(),
                (1..=8)
                    .map(|i| {
                        // Committed 10·i minutes before the deploy started: leads of 15..85 min.
                        let start: Timestamp = t(3 + 3 * i as u32, 10, 0).parse().unwrap();
                        let at = start - SignedDuration::from_mins(10 * i as i64);
                        (
                            ["c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8"][i as usize - 1],
                            at.to_string(),
                        )
                    })
                    .collect(),
                Figures {
                    succeeded: 8,
                    failures: 0,
                    per_week: 2.0,
                    lead: Some((Some(45 * MIN), Some(85 * MIN), 0)),
                    cfr: Some(0.0),
                    restore: (None, None),
                    verdicts: [Some(Met), Some(Met), Some(Met), Some(NoData)],
                },
            ),
            (
                "a rollback with no later success stays open, with its age",
                vec![
                    success(1, "production", "a", 20, 5),
                    rolled_back(2, "production", 31, 9),
                ],
                vec![("a", t(20, 9, 0))],
                Figures {
                    succeeded: 1,
                    failures: 1,
                    per_week: 0.25,
                    lead: Some((Some(65 * MIN), Some(65 * MIN), 0)),
                    cfr: Some(0.5),
                    // Failed at 09:20, now is 12:00.
                    restore: (None, Some(160 * MIN)),
                    verdicts: [Some(NotMet), Some(Met), Some(NotMet), Some(NotMet)],
                },
            ),
            (
                "failures in a row are one outage, timed from the first",
                vec![
                    rolled_back(1, "production", 20, 9),
                    rolled_back(2, "production", 20, 10),
                    success(3, "production", "fix", 20, 50),
                    success(4, "production", "more", 21, 5),
                    success(5, "production", "more2", 22, 5),
                    success(6, "production", "more3", 23, 5),
                    success(7, "production", "more4", 24, 5),
                    success(8, "production", "more5", 25, 5),
                    success(9, "production", "more6", 26, 5),
                    success(10, "production", "more7", 27, 5),
                ],
                vec![],
                Figures {
                    succeeded: 8,
                    failures: 2,
                    per_week: 2.0,
                    lead: Some((None, None, 0)),
                    cfr: Some(0.2),
                    // 09:20 → 10:50.
                    restore: (Some(90 * MIN), None),
                    verdicts: [Some(Met), Some(NoData), Some(NotMet), Some(NotMet)],
                },
            ),
            (
                "clock skew: committed after it succeeded counts as 0 and as skewed",
                vec![
                    success(1, "production", "a", 20, 5),
                    success(2, "production", "b", 21, 5),
                ],
                vec![("a", t(20, 11, 0)), ("b", t(21, 9, 0))],
                Figures {
                    succeeded: 2,
                    failures: 0,
                    per_week: 0.5,
                    lead: Some((Some(0), Some(65 * MIN), 1)),
                    cfr: Some(0.0),
                    restore: (None, None),
                    verdicts: [Some(NotMet), Some(Met), Some(Met), Some(NoData)],
                },
            ),
            (
                "inactive ignored, no statuses and refusals are not changes, outside the window \
                 not counted, GitHub's duplicate success not the time",
                vec![
                    ours(
                        1,
                        "production",
                        "a",
                        &t(10, 10, 0),
                        &[
                            (Inactive, "", &t(12, 10, 0)),
                            (Success, OK, &t(10, 10, 30)),
                            (
                                InProgress,
                                "promoting release 3f2a9c1b0d4e to production (2 services)",
                                &t(10, 10, 0),
                            ),
                        ],
                    ),
                    ours(2, "production", "b", &t(11, 10, 0), &[]),
                    ours(
                        3,
                        "production",
                        "c",
                        &t(12, 10, 0),
                        &[(Failure, REFUSED, &t(12, 10, 1))],
                    ),
                    ours(
                        4,
                        "production",
                        "old",
                        "2025-02-01T10:00:00Z",
                        &[(Failure, ROLLED_BACK, "2025-02-01T10:20:00Z")],
                    ),
                    ours(
                        5,
                        "production",
                        "d",
                        &t(13, 10, 0),
                        &[(Success, "", &t(13, 12, 0)), (Success, OK, &t(13, 10, 10))],
                    ),
                ],
                vec![("a", t(10, 10, 0)), ("d", t(13, 10, 0))],
                Figures {
                    succeeded: 2,
                    failures: 0,
                    per_week: 0.5,
                    lead: Some((Some(10 * MIN), Some(30 * MIN), 0)),
                    cfr: Some(0.0),
                    restore: (None, None),
                    verdicts: [Some(NotMet), Some(Met), Some(Met), Some(NoData)],
                },
            ),
        ];
        for (case, deployments, commits, want) in cases {
            let history = History {
                deployments,
                commits: commits
                    .into_iter()
                    .map(|(sha, at)| (sha.to_string(), committed(&at)))
                    .collect(),
                requests: 0,
            };
            let report = compute(&history, &settings());
            let production = report
                .environments
                .iter()
                .find(|e| e.environment == "production")
                .unwrap_or_else(|| panic!("case: {case}: no production row"));
            assert!(production.production, "case: {case}");
            assert_eq!(figures(&production.kpis), want, "case: {case}");
        }
    }

    #[test]
    fn a_window_of_no_length_counts_nothing_and_divides_by_nothing() {
        let history = History {
            deployments: vec![success(1, "production", "a", 31, 5)],
            ..History::default()
        };
        let report = compute(
            &history,
            &Settings {
                window: Duration::ZERO,
                ..settings()
            },
        );
        assert_eq!(report.window_weeks, 0.0);
        assert_eq!(report.outside_window, 1, "created before `now`");
        let production = &report.environments[1];
        assert_eq!(production.kpis.deployment_frequency.per_week, 0.0);
        assert_eq!(production.weeks.len(), 1);
    }

    #[test]
    fn counts_say_what_was_left_out_and_why() {
        let history = History {
            deployments: vec![
                ours(1, "production", "a", &t(10, 10, 0), &[]),
                ours(
                    2,
                    "production",
                    "c",
                    &t(12, 10, 0),
                    &[(Failure, REFUSED, &t(12, 10, 1))],
                ),
                ours(3, "production", "old", "2025-02-01T10:00:00Z", &[]),
                ours(4, "production", "future", "2025-04-01T10:00:00Z", &[]),
                ours(
                    5,
                    "production",
                    "e",
                    &t(14, 10, 0),
                    &[(InProgress, "", &t(14, 10, 0))],
                ),
            ],
            ..History::default()
        };
        let report = compute(&history, &settings());
        assert_eq!(report.deployments_read, 5);
        assert_eq!(report.outside_window, 2);
        let production = &report.environments[1];
        assert_eq!(
            production.kpis.counts,
            Counts {
                deployments: 3,
                refused: 1,
                unfinished: 1,
                without_status: 1,
                ..Counts::default()
            }
        );
        assert_eq!(production.kpis.change_failure_rate.finished, 0);
    }

    #[test]
    fn rows_follow_the_promotion_order_and_only_production_is_judged() {
        let history = History {
            deployments: vec![
                success(1, "preview-42", "a", 20, 5),
                rolled_back(2, "testing", 20, 9),
                success(3, "testing", "a", 20, 50),
            ],
            ..History::default()
        };
        let report = compute(&history, &settings());
        let names: Vec<&str> = report
            .environments
            .iter()
            .map(|e| e.environment.as_str())
            .collect();
        assert_eq!(names, ["testing", "production", "preview-42"]);
        let testing = &report.environments[0];
        assert!(!testing.production);
        assert_eq!(testing.kpis.lead_time, None, "lead time is production's");
        assert_eq!(testing.kpis.change_failure_rate.rate, Some(0.5));
        assert_eq!(testing.kpis.change_failure_rate.verdict, None);
        assert_eq!(testing.kpis.time_to_restore.median_seconds, Some(90 * MIN));
        assert_eq!(testing.kpis.time_to_restore.verdict, None);
    }

    #[test]
    fn services_come_from_the_payloads_digests() {
        let mut github_job = success(3, "production", "b", 22, 5);
        github_job.deployment.payload = json!({});
        let history = History {
            deployments: vec![
                success(1, "production", "a", 20, 5),
                rolled_back(2, "production", 21, 9),
                github_job,
            ],
            ..History::default()
        };
        let report = compute(&history, &settings());
        let production = &report.environments[1];
        assert_eq!(production.kpis.counts.deployments, 3);
        let services: Vec<(&str, usize, usize)> = production
            .services
            .iter()
            .map(|s| {
                (
                    s.service.as_str(),
                    s.kpis.counts.deployments,
                    s.kpis.change_failure_rate.failures,
                )
            })
            .collect();
        assert_eq!(services, [("api", 2, 1), ("web", 2, 1)]);
    }

    #[test]
    fn weeks_cover_the_window_with_zeros() {
        let history = History {
            deployments: vec![
                success(1, "production", "a", 4, 5),
                success(2, "production", "b", 5, 5),
                rolled_back(3, "production", 18, 9),
                success(4, "production", "c", 31, 5),
            ],
            ..History::default()
        };
        let report = compute(&history, &settings());
        let weeks: Vec<(&str, usize, usize)> = report.environments[1]
            .weeks
            .iter()
            .map(|w| (w.week.as_str(), w.deployments, w.failures))
            .collect();
        assert_eq!(
            weeks,
            [
                ("2025-W10", 2, 0),
                ("2025-W11", 0, 0),
                ("2025-W12", 0, 1),
                ("2025-W13", 0, 0),
                ("2025-W14", 1, 0),
            ]
        );
        assert_eq!(report.window_weeks, 4.0);
        assert_eq!(report.since, "2025-03-03T12:00:00Z");
    }

    #[test]
    fn commit_dates_are_fetched_for_production_successes_only() {
        let production = vec!["production".to_string()];
        let mut github_job = success(3, "production", "x", 22, 5);
        github_job.deployment.payload = json!({});
        github_job.deployment.sha = "job-sha".into();
        let mut flagged = success(4, "live", "flagged", 22, 5);
        flagged.production_environment = true;
        let cases = [
            (
                "ours: the release's commit",
                success(1, "production", "rel", 20, 5),
                Some("rel"),
            ),
            (
                "GitHub's job deployment: its sha",
                github_job,
                Some("job-sha"),
            ),
            ("flagged by GitHub", flagged, Some("flagged")),
            ("not production", success(5, "testing", "t", 20, 5), None),
            ("failed", rolled_back(6, "production", 20, 9), None),
        ];
        for (case, deployment, want) in cases {
            assert_eq!(
                lead_time_commit(&deployment, &production).as_deref(),
                want,
                "case: {case}"
            );
        }
    }
}
