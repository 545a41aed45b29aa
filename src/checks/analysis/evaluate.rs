//! The verdict of one query over a window, from its samples alone (pure: no clock, no I/O).
//!
//! A bound is broken like a Prometheus alert fires: the condition (`value > max`, or
//! `value < min`) holds in consecutive samples spanning at least `for`, so `for: 0` means any
//! one sample. A NaN (a ratio of zero requests) does not break a bound and ends a run, as it
//! ends an alert; a missing sample (a gap wider than the step) ends a run too. A query with no
//! series, or only NaN, says nothing: inconclusive, and the analysis' policy decides.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use super::prometheus::{Sample, Series};
use crate::config::Bound;

/// What one query says about the release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Pass,
    Breach,
    /// No data: no series, or only NaN.
    Inconclusive,
}

/// The bound broken long enough to count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Breach {
    /// The worst value while the bound was broken.
    pub value: f64,
    /// When the bound had been broken for `for`: the moment an alert with that `for` fires.
    pub at: Timestamp,
    /// From the first breaking sample of the run to its last.
    #[serde(rename = "lasted_ms", serialize_with = "super::report::millis")]
    pub lasted: Duration,
}

/// The verdict of one query, with the numbers behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub verdict: Verdict,
    pub breach: Option<Breach>,
    /// The deciding series' worst value (highest for `max`, lowest for `min`), NaN skipped.
    pub worst: Option<f64>,
    /// The deciding series' last value that was not NaN.
    pub last: Option<f64>,
    /// Samples that were not NaN, over every series.
    pub samples: usize,
    pub series: usize,
    /// The deciding series' labels: the breach with the worst value, else the worst values.
    pub labels: BTreeMap<String, String>,
}

/// Judges `series` (the window's samples at `step`) against `bound` held for `for_`. Each series
/// is judged alone and the worst decides: any breach over any pass, and among breaches or among
/// passes the worst value. A series of only NaN beside others with data is ignored.
pub fn evaluate(bound: Bound, for_: Duration, step: Duration, series: &[Series]) -> Evaluation {
    // Points of a range query sit exactly one step apart; half a step more absorbs rounding.
    let max_gap = step.max(Duration::from_millis(1)).mul_f64(1.5);
    let judged: Vec<(&Series, SeriesResult)> = series
        .iter()
        .map(|s| (s, judge(bound, for_, max_gap, &s.samples)))
        .collect();
    let mut breached: Option<&(&Series, SeriesResult)> = None;
    let mut worst: Option<&(&Series, SeriesResult)> = None;
    for entry in &judged {
        let result = &entry.1;
        if let Some(b) = &result.breach
            && breached.is_none_or(|(_, cur)| {
                worse(bound, b.value, cur.breach.as_ref().expect("kept").value)
            })
        {
            breached = Some(entry);
        }
        if let Some(w) = result.worst
            && worst.is_none_or(|(_, cur)| worse(bound, w, cur.worst.expect("kept")))
        {
            worst = Some(entry);
        }
    }
    let samples = judged.iter().map(|(_, r)| r.samples).sum();
    let (verdict, deciding) = match (breached, worst) {
        (Some(entry), _) => (Verdict::Breach, Some(entry)),
        (None, Some(entry)) => (Verdict::Pass, Some(entry)),
        (None, None) => (Verdict::Inconclusive, None),
    };
    Evaluation {
        verdict,
        breach: deciding.and_then(|(_, r)| r.breach.clone()),
        worst: deciding.and_then(|(_, r)| r.worst),
        last: deciding.and_then(|(_, r)| r.last),
        samples,
        series: series.len(),
        labels: deciding.map(|(s, _)| s.labels.clone()).unwrap_or_default(),
    }
}

/// Whether `value` breaks the bound. At the bound is within it (`> max`, `< min`, as the
/// alert rules are written); NaN breaks nothing.
pub fn breaks(bound: Bound, value: f64) -> bool {
    match bound {
        Bound::Max(max) => value > max,
        Bound::Min(min) => value < min,
    }
}

/// Whether `a` is further on the wrong side than `b`.
fn worse(bound: Bound, a: f64, b: f64) -> bool {
    match bound {
        Bound::Max(_) => a > b,
        Bound::Min(_) => a < b,
    }
}

#[derive(Debug, Default)]
struct SeriesResult {
    worst: Option<f64>,
    last: Option<f64>,
    samples: usize,
    breach: Option<Breach>,
}

/// Consecutive breaking samples.
struct Run {
    start: Timestamp,
    last: Timestamp,
    worst: f64,
    /// When the run had lasted `for`.
    counted: Option<Timestamp>,
}

fn judge(bound: Bound, for_: Duration, max_gap: Duration, samples: &[Sample]) -> SeriesResult {
    let mut result = SeriesResult::default();
    let mut run: Option<Run> = None;
    for sample in samples {
        let value = sample.value;
        if value.is_nan() {
            close(bound, run.take(), &mut result.breach);
            continue;
        }
        result.samples += 1;
        result.last = Some(value);
        if result.worst.is_none_or(|w| worse(bound, value, w)) {
            result.worst = Some(value);
        }
        if !breaks(bound, value) {
            close(bound, run.take(), &mut result.breach);
            continue;
        }
        match &mut run {
            Some(r) if span(r.last, sample.at) <= max_gap => {
                r.last = sample.at;
                if worse(bound, value, r.worst) {
                    r.worst = value;
                }
            }
            _ => {
                close(bound, run.take(), &mut result.breach);
                run = Some(Run {
                    start: sample.at,
                    last: sample.at,
                    worst: value,
                    counted: None,
                });
            }
        }
        let r = run.as_mut().expect("set above");
        if r.counted.is_none() && span(r.start, r.last) >= for_ {
            r.counted = Some(sample.at);
        }
    }
    close(bound, run, &mut result.breach);
    result
}

/// Keeps a run that counted as the series' breach when it is the worst so far.
fn close(bound: Bound, run: Option<Run>, breach: &mut Option<Breach>) {
    let Some(run) = run else { return };
    let Some(at) = run.counted else { return };
    if breach
        .as_ref()
        .is_none_or(|cur| worse(bound, run.worst, cur.value))
    {
        *breach = Some(Breach {
            value: run.worst,
            at,
            lasted: span(run.start, run.last),
        });
    }
}

fn span(from: Timestamp, to: Timestamp) -> Duration {
    Duration::try_from(to.duration_since(from)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000;
    const STEP: Duration = Duration::from_secs(1);

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(T0 + second).unwrap()
    }

    /// One sample a second from T0; `None` leaves a gap.
    fn series(labels: &[(&str, &str)], values: &[Option<f64>]) -> Series {
        Series {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            samples: values
                .iter()
                .enumerate()
                .filter_map(|(i, v)| {
                    v.map(|value| Sample {
                        at: at(i as i64),
                        value,
                    })
                })
                .collect(),
        }
    }

    fn each(values: &[f64]) -> Vec<Option<f64>> {
        values.iter().copied().map(Some).collect()
    }

    struct Want {
        verdict: Verdict,
        /// (value, at second, lasted seconds)
        breach: Option<(f64, i64, u64)>,
        worst: Option<f64>,
        last: Option<f64>,
        samples: usize,
        pod: Option<&'static str>,
    }

    fn pass(worst: f64, last: f64, samples: usize) -> Want {
        Want {
            verdict: Verdict::Pass,
            breach: None,
            worst: Some(worst),
            last: Some(last),
            samples,
            pod: None,
        }
    }

    fn breach(value: f64, at: i64, lasted: u64, worst: f64, last: f64, samples: usize) -> Want {
        Want {
            verdict: Verdict::Breach,
            breach: Some((value, at, lasted)),
            worst: Some(worst),
            last: Some(last),
            samples,
            pod: None,
        }
    }

    fn inconclusive(samples: usize) -> Want {
        Want {
            verdict: Verdict::Inconclusive,
            breach: None,
            worst: None,
            last: None,
            samples,
            pod: None,
        }
    }

    fn on(mut want: Want, pod: &'static str) -> Want {
        want.pod = Some(pod);
        want
    }

    #[test]
    fn verdicts() {
        let max = Bound::Max(0.01);
        let secs = Duration::from_secs;
        let nan = f64::NAN;
        let cases: Vec<(&str, Bound, Duration, Vec<Series>, Want)> = vec![
            (
                "within the bound",
                max,
                secs(0),
                vec![series(&[], &each(&[0.002, 0.005, 0.004]))],
                pass(0.005, 0.004, 3),
            ),
            (
                "at the bound is within it",
                max,
                secs(0),
                vec![series(&[], &each(&[0.01, 0.01]))],
                pass(0.01, 0.01, 2),
            ),
            (
                "for 0: one sample over breaks it",
                max,
                secs(0),
                vec![series(&[], &each(&[0.002, 0.03, 0.004]))],
                breach(0.03, 1, 0, 0.03, 0.004, 3),
            ),
            (
                "for 2s: three consecutive samples over span 2s",
                max,
                secs(2),
                vec![series(&[], &each(&[0.0, 0.02, 0.05, 0.03, 0.0]))],
                breach(0.05, 3, 2, 0.05, 0.0, 5),
            ),
            (
                "for 2s: a breach shorter than `for` passes",
                max,
                secs(2),
                vec![series(&[], &each(&[0.0, 0.02, 0.05, 0.0, 0.02, 0.0]))],
                pass(0.05, 0.0, 6),
            ),
            (
                "recovers after a counted breach: still a breach",
                max,
                secs(1),
                vec![series(&[], &each(&[0.02, 0.02, 0.0, 0.0, 0.0]))],
                breach(0.02, 1, 1, 0.02, 0.0, 5),
            ),
            (
                "still breaking at the end of the window",
                max,
                secs(1),
                vec![series(&[], &each(&[0.0, 0.0, 0.02, 0.04]))],
                breach(0.04, 3, 1, 0.04, 0.04, 4),
            ),
            (
                "the worst of two counted runs",
                max,
                secs(0),
                vec![series(&[], &each(&[0.02, 0.0, 0.09, 0.0, 0.03]))],
                breach(0.09, 2, 0, 0.09, 0.03, 5),
            ),
            (
                "a gap ends a run",
                max,
                secs(2),
                vec![series(
                    &[],
                    &[Some(0.02), Some(0.02), None, Some(0.02), Some(0.02)],
                )],
                pass(0.02, 0.02, 4),
            ),
            (
                "a NaN ends a run",
                max,
                secs(2),
                vec![series(&[], &each(&[0.02, 0.02, nan, 0.02, 0.02]))],
                pass(0.02, 0.02, 4),
            ),
            (
                "+Inf breaks a max",
                max,
                secs(0),
                vec![series(&[], &each(&[0.0, f64::INFINITY]))],
                breach(f64::INFINITY, 1, 0, f64::INFINITY, f64::INFINITY, 2),
            ),
            ("no series", max, secs(0), vec![], inconclusive(0)),
            (
                "a series without samples",
                max,
                secs(0),
                vec![series(&[], &[])],
                inconclusive(0),
            ),
            (
                "only NaN",
                max,
                secs(0),
                vec![series(&[], &each(&[nan, nan, nan]))],
                inconclusive(0),
            ),
            (
                "min bound: under it breaks",
                Bound::Min(0.99),
                secs(1),
                vec![series(&[], &each(&[0.999, 0.98, 0.95, 0.999]))],
                breach(0.95, 2, 1, 0.95, 0.999, 4),
            ),
            (
                "min bound: over it passes, worst is the lowest",
                Bound::Min(0.99),
                secs(0),
                vec![series(&[], &each(&[0.999, 0.995, 0.9999]))],
                pass(0.995, 0.9999, 3),
            ),
            (
                "several series: the one that breaches decides",
                Bound::Max(5.0),
                secs(0),
                vec![
                    series(&[("pod", "web-a")], &each(&[1.0, 2.0])),
                    series(&[("pod", "web-b")], &each(&[3.0, 7.0])),
                    series(&[("pod", "web-c")], &each(&[0.0, 0.0])),
                ],
                on(breach(7.0, 1, 0, 7.0, 7.0, 6), "web-b"),
            ),
            (
                "several series: the worst breach decides",
                Bound::Max(5.0),
                secs(0),
                vec![
                    series(&[("pod", "web-a")], &each(&[6.0, 2.0])),
                    series(&[("pod", "web-b")], &each(&[9.0, 1.0])),
                ],
                on(breach(9.0, 0, 0, 9.0, 1.0, 4), "web-b"),
            ),
            (
                "several series: a short spike does not beat a long breach",
                Bound::Max(5.0),
                secs(1),
                vec![
                    series(&[("pod", "web-a")], &each(&[6.0, 6.0, 1.0])),
                    series(&[("pod", "web-b")], &each(&[1.0, 50.0, 1.0])),
                ],
                on(breach(6.0, 1, 1, 6.0, 1.0, 6), "web-a"),
            ),
            (
                "several series passing: the worst value names the series",
                Bound::Max(5.0),
                secs(0),
                vec![
                    series(&[("pod", "web-a")], &each(&[1.0, 2.0])),
                    series(&[("pod", "web-b")], &each(&[4.0, 3.0])),
                ],
                on(pass(4.0, 3.0, 4), "web-b"),
            ),
            (
                "a NaN-only series beside one with data is ignored",
                Bound::Max(5.0),
                secs(0),
                vec![
                    series(&[("pod", "web-a")], &each(&[nan, nan])),
                    series(&[("pod", "web-b")], &each(&[1.0, 2.0])),
                ],
                on(pass(2.0, 2.0, 2), "web-b"),
            ),
        ];
        for (case, bound, for_, series, want) in cases {
            let got = evaluate(bound, for_, STEP, &series);
            assert_eq!(got.verdict, want.verdict, "case: {case}");
            assert_eq!(
                got.breach
                    .as_ref()
                    .map(|b| (b.value, b.at, b.lasted.as_secs())),
                want.breach.map(|(v, s, l)| (v, at(s), l)),
                "case: {case}"
            );
            assert_eq!(got.worst, want.worst, "case: {case}");
            assert_eq!(got.last, want.last, "case: {case}");
            assert_eq!(got.samples, want.samples, "case: {case}");
            assert_eq!(got.series, series.len(), "case: {case}");
            assert_eq!(
                got.labels.get("pod").map(String::as_str),
                want.pod,
                "case: {case}"
            );
        }
    }

    #[test]
    fn a_wider_step_keeps_its_samples_consecutive() {
        let samples = (0..4)
            .map(|i| Sample {
                at: at(i * 30),
                value: 0.5,
            })
            .collect();
        let series = [Series {
            labels: BTreeMap::new(),
            samples,
        }];
        let got = evaluate(
            Bound::Max(0.1),
            Duration::from_secs(60),
            Duration::from_secs(30),
            &series,
        );
        assert_eq!(got.verdict, Verdict::Breach);
        assert_eq!(got.breach.unwrap().lasted, Duration::from_secs(90));
    }
}
