//! The two figures that are durations: lead time (commit → production success) and time to
//! restore (failure → next success). Both are nearest-rank percentiles of whole seconds, like
//! the SLO gate's.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use super::ending::Ending;
use super::measure::Entry;
use super::model::{LeadTime, OpenFailure, Restore, Targets, Verdict};
use crate::checks::percentile;
use crate::github::CommitDates;

/// Commit → first success of that commit, per commit.
pub(super) fn lead_time(
    entries: &[&Entry],
    commits: &BTreeMap<String, CommitDates>,
    targets: &Targets,
) -> LeadTime {
    let mut seen = BTreeSet::new();
    let mut samples = Vec::new();
    let (mut skewed, mut unknown_commit) = (0, 0);
    for e in entries.iter().filter(|e| e.ending == Ending::Succeeded) {
        // A redeploy of a commit already measured is not a new change.
        if !seen.insert(e.sha) {
            continue;
        }
        let committed = commits
            .get(e.sha)
            .and_then(|c| c.committed_at.as_deref().or(c.authored_at.as_deref()))
            .and_then(|t| t.parse::<Timestamp>().ok());
        let Some(committed) = committed else {
            unknown_commit += 1;
            continue;
        };
        let seconds = e.at.as_second() - committed.as_second();
        if seconds < 0 {
            skewed += 1;
        }
        samples.push(Duration::from_secs(seconds.max(0).unsigned_abs()));
    }
    samples.sort_unstable();
    let median = percentile(&samples, 50).map(|d| d.as_secs());
    LeadTime {
        median_seconds: median,
        p90_seconds: percentile(&samples, 90).map(|d| d.as_secs()),
        samples: samples.len(),
        skewed,
        unknown_commit,
        verdict: Some(match median {
            None => Verdict::NoData,
            Some(m) if m < targets.lead_time_seconds => Verdict::Met,
            Some(_) => Verdict::NotMet,
        }),
    }
}

/// Failure → next success. Failures in a row before a success are one outage, timed from the
/// first; the last outage may still be open.
pub(super) fn restore(
    entries: &[&Entry],
    now: Timestamp,
    targets: &Targets,
    production: bool,
) -> Restore {
    let mut samples = Vec::new();
    let mut open: Option<&Entry> = None;
    for e in entries {
        if e.ending.is_failure() {
            open.get_or_insert(e);
        } else if e.ending == Ending::Succeeded
            && let Some(failure) = open.take()
        {
            let seconds = (e.at.as_second() - failure.at.as_second()).max(0);
            samples.push(Duration::from_secs(seconds.unsigned_abs()));
        }
    }
    samples.sort_unstable();
    let median = percentile(&samples, 50).map(|d| d.as_secs());
    let open = open.map(|f| OpenFailure {
        deployment_id: f.id,
        failed_at: f.at.to_string(),
        age_seconds: (now.as_second() - f.at.as_second()).max(0).unsigned_abs(),
    });
    let target = targets.time_to_restore_seconds;
    let verdict = if open.as_ref().is_some_and(|o| o.age_seconds >= target)
        || median.is_some_and(|m| m >= target)
    {
        Verdict::NotMet
    } else if median.is_some() {
        Verdict::Met
    } else {
        Verdict::NoData
    };
    Restore {
        median_seconds: median,
        restored: samples.len(),
        open,
        verdict: production.then_some(verdict),
    }
}
