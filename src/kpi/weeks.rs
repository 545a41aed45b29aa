//! The calendar of the window: every ISO week it touches (UTC), and what each week saw, for the
//! chart of deployments per week.

use std::collections::BTreeMap;

use k8s_openapi::jiff::civil::Date;
use k8s_openapi::jiff::tz::TimeZone;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::ending::Ending;
use super::measure::Entry;
use super::model::WeekCount;

/// `2025-W11`.
fn week_of(date: Date) -> String {
    let week = date.iso_week_date();
    format!("{:04}-W{:02}", week.year(), week.week())
}

fn date_of(t: Timestamp) -> Date {
    TimeZone::UTC.to_datetime(t).date()
}

/// Every ISO week from `since`'s to `until`'s, oldest first.
pub(super) fn weeks(since: Timestamp, until: Timestamp) -> Vec<String> {
    let start = date_of(since);
    let mut monday = start
        .checked_sub(SignedDuration::from_hours(
            24 * i64::from(start.weekday().to_monday_zero_offset()),
        ))
        .unwrap_or(start);
    let last = date_of(until);
    let mut out = Vec::new();
    while monday <= last {
        out.push(week_of(monday));
        match monday.checked_add(SignedDuration::from_hours(24 * 7)) {
            Ok(next) => monday = next,
            Err(_) => break,
        }
    }
    out
}

/// Successes and failures per ISO week of creation.
pub(super) fn week_counts(entries: &[&Entry], weeks: &[String]) -> Vec<WeekCount> {
    let mut counts: BTreeMap<&str, (usize, usize)> =
        weeks.iter().map(|w| (w.as_str(), (0, 0))).collect();
    for e in entries {
        let week = week_of(date_of(e.created));
        if let Some(count) = counts.get_mut(week.as_str()) {
            if e.ending == Ending::Succeeded {
                count.0 += 1;
            } else if e.ending.is_failure() {
                count.1 += 1;
            }
        }
    }
    weeks
        .iter()
        .map(|w| {
            let (deployments, failures) = counts[w.as_str()];
            WeekCount {
                week: w.clone(),
                deployments,
                failures,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_weeks_across_a_year_end() {
        let since: Timestamp = "2024-12-27T00:00:00Z".parse().unwrap();
        let until: Timestamp = "2025-01-06T00:00:00Z".parse().unwrap();
        assert_eq!(weeks(since, until), ["2024-W52", "2025-W01", "2025-W02"]);
    }

    #[test]
    fn a_window_inside_one_week_is_that_week() {
        let since: Timestamp = "2025-03-04T00:00:00Z".parse().unwrap();
        let until: Timestamp = "2025-03-04T00:00:00Z".parse().unwrap();
        assert_eq!(weeks(since, until), ["2025-W10"]);
    }
}
