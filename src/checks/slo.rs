//! The SLO gate, pure: latency percentiles of a sample and its comparison with the
//! environment's objectives, each breach stated with its numbers ("p95 512 ms > 500 ms").
//!
//! # Percentiles
//! Nearest-rank, the textbook definition: the p-th percentile of n sorted samples is the
//! sample at 1-based rank ⌈p·n/100⌉ (rank 1 for p·n < 100). It is always a latency that was
//! measured, never an interpolation, and needs no floating point: with 20 samples p95 is the
//! 19th, p99 the 20th (the maximum). `hey` and most load tools report the same for large n.
//!
//! # The gate
//! An objective is a limit the measurement may reach: p95 of exactly `p95Latency` passes, one
//! nanosecond more fails; an error rate of exactly `errorRate` percent passes. That matches the
//! model's reading of `errorRate` ("percent of failed requests allowed"). A latency objective
//! with no answered request to measure fails: nothing shows it was met.

use std::time::Duration;

use serde::Serialize;

use crate::config::Slo;

/// The latency figures of one sample, in nanosecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Latencies {
    pub p50: Option<Duration>,
    pub p95: Option<Duration>,
    pub p99: Option<Duration>,
    pub min: Option<Duration>,
    pub max: Option<Duration>,
    pub mean: Option<Duration>,
}

/// The nearest-rank `p`-th percentile (1..=100) of `sorted` (ascending); `None` when empty.
pub fn percentile(sorted: &[Duration], p: u32) -> Option<Duration> {
    debug_assert!((1..=100).contains(&p), "percentile {p} out of 1..=100");
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let rank = (p as usize * n).div_ceil(100).max(1);
    sorted.get(rank.min(n) - 1).copied()
}

/// Sorts `samples` and computes every figure the report shows.
pub fn latencies(samples: &mut [Duration]) -> Latencies {
    samples.sort_unstable();
    let total: Duration = samples.iter().sum();
    Latencies {
        p50: percentile(samples, 50),
        p95: percentile(samples, 95),
        p99: percentile(samples, 99),
        min: samples.first().copied(),
        max: samples.last().copied(),
        mean: (!samples.is_empty()).then(|| total / samples.len() as u32),
    }
}

/// Failed requests in percent of all requests (0 for none sent).
pub fn error_rate(errors: u64, requests: u64) -> f64 {
    if requests == 0 {
        0.0
    } else {
        errors as f64 * 100.0 / requests as f64
    }
}

/// One objective compared with its measurement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// `p95Latency`, `p99Latency` or `errorRate`, as promotion.yml names it.
    pub objective: &'static str,
    pub target: String,
    pub measured: String,
    pub passed: bool,
    /// The comparison in words: "p95 512 ms > 500 ms".
    pub reason: String,
}

/// Compares the sample with every objective `slo` sets. `uptime` is not among them: a sample of
/// seconds cannot measure it (it is reported for reference).
pub fn gate(slo: &Slo, latencies: &Latencies, errors: u64, requests: u64) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    for (objective, label, target, measured) in [
        ("p95Latency", "p95", slo.p95_latency, latencies.p95),
        ("p99Latency", "p99", slo.p99_latency, latencies.p99),
    ] {
        let Some(target) = target else { continue };
        let (target_text, measured_text) = format_pair(measured, target);
        verdicts.push(match measured {
            Some(m) => Verdict {
                objective,
                passed: m <= target,
                reason: format!(
                    "{label} {measured_text} {} {target_text}",
                    if m <= target { "≤" } else { ">" }
                ),
                target: target_text,
                measured: measured_text,
            },
            None => Verdict {
                objective,
                passed: false,
                reason: format!(
                    "{label} unknown: no request was answered (objective {target_text})"
                ),
                target: target_text,
                measured: "none".into(),
            },
        });
    }
    if let Some(allowed) = slo.error_rate {
        let rate = error_rate(errors, requests);
        // errors·100 ≤ allowed·requests, with room for the binary rounding of `allowed` (0.1 is
        // not exact): 1 error in 1000 requests meets 0.1%.
        let passed = errors as f64 * 100.0 <= allowed * requests as f64 * (1.0 + 1e-9);
        let (measured, target) = (format_percent(rate), format_percent(allowed));
        verdicts.push(Verdict {
            objective: "errorRate",
            passed,
            reason: format!(
                "error rate {measured} {} {target} ({errors} of {requests} requests failed)",
                if passed { "≤" } else { ">" }
            ),
            target,
            measured,
        });
    }
    verdicts
}

/// Milliseconds with as many decimals as it takes to tell `measured` from `target` (up to
/// microseconds), so a breach never reads "500 ms > 500 ms".
fn format_pair(measured: Option<Duration>, target: Duration) -> (String, String) {
    let target_text = format_ms(target, precision(target));
    let Some(measured) = measured else {
        return (target_text, String::new());
    };
    let decimals = [0, 1, 3]
        .into_iter()
        .find(|&d| measured == target || format_ms(target, d) != format_ms(measured, d))
        .unwrap_or(3);
    let natural = usize::from(measured < Duration::from_millis(10));
    (target_text, format_ms(measured, decimals.max(natural)))
}

/// The fewest decimals (0, 1 or 3) that show `d` in milliseconds exactly.
fn precision(d: Duration) -> usize {
    let micros = d.as_micros();
    if micros.is_multiple_of(1000) {
        0
    } else if micros.is_multiple_of(100) {
        1
    } else {
        3
    }
}

/// `d` in milliseconds: `512 ms`, `3.2 ms`.
pub fn format_ms(d: Duration, decimals: usize) -> String {
    format!("{:.*} ms", decimals, d.as_secs_f64() * 1000.0)
}

/// A latency for a person: one decimal below 10 ms, whole milliseconds above.
pub fn show_ms(d: Duration) -> String {
    if d < Duration::from_millis(10) {
        format_ms(d, 1)
    } else {
        format_ms(d, 0)
    }
}

/// `0.1%`, `0.25%`, `12.5%`: up to 3 decimals, trailing zeros dropped.
pub fn format_percent(p: f64) -> String {
    let text = format!("{p:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// 1..=n milliseconds.
    fn ramp(n: u64) -> Vec<Duration> {
        (1..=n).map(ms).collect()
    }

    #[test]
    fn nearest_rank_percentiles() {
        let cases: &[(&str, Vec<Duration>, u32, Option<Duration>)] = &[
            ("empty has none", vec![], 95, None),
            (
                "one sample is every percentile",
                vec![ms(7)],
                50,
                Some(ms(7)),
            ),
            (
                "one sample is every percentile",
                vec![ms(7)],
                99,
                Some(ms(7)),
            ),
            ("p50 of 1..=10 is the 5th", ramp(10), 50, Some(ms(5))),
            ("p95 of 1..=20 is the 19th", ramp(20), 95, Some(ms(19))),
            ("p99 of 1..=20 is the maximum", ramp(20), 99, Some(ms(20))),
            ("p95 of 1..=100 is the 95th", ramp(100), 95, Some(ms(95))),
            ("p99 of 1..=100 is the 99th", ramp(100), 99, Some(ms(99))),
            (
                "p95 of 1..=101 rounds the rank up",
                ramp(101),
                95,
                Some(ms(96)),
            ),
            ("p1 of 1..=10 is the minimum", ramp(10), 1, Some(ms(1))),
            ("p100 is the maximum", ramp(1000), 100, Some(ms(1000))),
            (
                "p95 of 1..=1000 is the 950th",
                ramp(1000),
                95,
                Some(ms(950)),
            ),
        ];
        for (case, samples, p, want) in cases {
            assert_eq!(percentile(samples, *p), *want, "case: {case} (p{p})");
        }
    }

    #[test]
    fn latencies_sort_first() {
        let mut samples = vec![ms(30), ms(10), ms(20), ms(40)];
        let l = latencies(&mut samples);
        assert_eq!(l.p50, Some(ms(20)));
        assert_eq!(l.p95, Some(ms(40)));
        assert_eq!(
            (l.min, l.max, l.mean),
            (Some(ms(10)), Some(ms(40)), Some(ms(25)))
        );
        assert_eq!(latencies(&mut []), Latencies::default());
    }

    fn slo(p95: Option<u64>, p99: Option<u64>, error_rate: Option<f64>) -> Slo {
        Slo {
            p95_latency: p95.map(ms),
            p99_latency: p99.map(ms),
            error_rate,
            uptime: Some(99.9),
        }
    }

    fn at(p95: Option<Duration>, p99: Option<Duration>) -> Latencies {
        Latencies {
            p95,
            p99,
            ..Latencies::default()
        }
    }

    #[test]
    fn gate_boundaries() {
        let us = Duration::from_micros;
        // (case, slo, latencies, errors, requests, want: (objective, passed, reason))
        type Case<'a> = (
            &'a str,
            Slo,
            Latencies,
            u64,
            u64,
            &'a [(&'a str, bool, &'a str)],
        );
        let cases: &[Case] = &[
            (
                "nothing to gate",
                Slo::default(),
                at(Some(ms(900)), None),
                5,
                10,
                &[],
            ),
            (
                "p95 exactly at the objective passes",
                slo(Some(500), None, None),
                at(Some(ms(500)), None),
                0,
                100,
                &[("p95Latency", true, "p95 500 ms ≤ 500 ms")],
            ),
            (
                "p95 a millisecond over fails",
                slo(Some(500), None, None),
                at(Some(ms(501)), None),
                0,
                100,
                &[("p95Latency", false, "p95 501 ms > 500 ms")],
            ),
            (
                "the issue's example",
                slo(Some(500), None, None),
                at(Some(ms(512)), None),
                0,
                100,
                &[("p95Latency", false, "p95 512 ms > 500 ms")],
            ),
            (
                "a fraction over shows the decimals that matter",
                slo(Some(500), None, None),
                at(Some(us(500_400)), None),
                0,
                100,
                &[("p95Latency", false, "p95 500.4 ms > 500 ms")],
            ),
            (
                "microseconds over",
                slo(Some(500), None, None),
                at(Some(us(500_001)), None),
                0,
                100,
                &[("p95Latency", false, "p95 500.001 ms > 500 ms")],
            ),
            (
                "p99 gated on its own",
                slo(None, Some(800), None),
                at(Some(ms(100)), Some(ms(801))),
                0,
                100,
                &[("p99Latency", false, "p99 801 ms > 800 ms")],
            ),
            (
                "no answer cannot meet a latency objective",
                slo(Some(500), None, None),
                at(None, None),
                20,
                20,
                &[(
                    "p95Latency",
                    false,
                    "p95 unknown: no request was answered (objective 500 ms)",
                )],
            ),
            (
                "1 error in 1000 meets 0.1%",
                slo(None, None, Some(0.1)),
                at(None, None),
                1,
                1000,
                &[(
                    "errorRate",
                    true,
                    "error rate 0.1% ≤ 0.1% (1 of 1000 requests failed)",
                )],
            ),
            (
                "2 errors in 1000 breach 0.1%",
                slo(None, None, Some(0.1)),
                at(None, None),
                2,
                1000,
                &[(
                    "errorRate",
                    false,
                    "error rate 0.2% > 0.1% (2 of 1000 requests failed)",
                )],
            ),
            (
                "1 error in 200 breaches 0.1%",
                slo(None, None, Some(0.1)),
                at(None, None),
                1,
                200,
                &[(
                    "errorRate",
                    false,
                    "error rate 0.5% > 0.1% (1 of 200 requests failed)",
                )],
            ),
            (
                "zero allowed, zero failed",
                slo(None, None, Some(0.0)),
                at(None, None),
                0,
                50,
                &[(
                    "errorRate",
                    true,
                    "error rate 0% ≤ 0% (0 of 50 requests failed)",
                )],
            ),
            (
                "every objective, in a fixed order",
                slo(Some(500), Some(800), Some(1.0)),
                at(Some(ms(200)), Some(ms(900))),
                0,
                10,
                &[
                    ("p95Latency", true, "p95 200 ms ≤ 500 ms"),
                    ("p99Latency", false, "p99 900 ms > 800 ms"),
                    (
                        "errorRate",
                        true,
                        "error rate 0% ≤ 1% (0 of 10 requests failed)",
                    ),
                ],
            ),
        ];
        for (case, slo, latencies, errors, requests, want) in cases {
            let got: Vec<(&str, bool, String)> = gate(slo, latencies, *errors, *requests)
                .into_iter()
                .map(|v| (v.objective, v.passed, v.reason))
                .collect();
            let want: Vec<(&str, bool, String)> = want
                .iter()
                .map(|(o, p, r)| (*o, *p, r.to_string()))
                .collect();
            assert_eq!(got, want, "case: {case}");
        }
    }

    #[test]
    fn percent_and_milliseconds_read_naturally() {
        assert_eq!(format_percent(0.1), "0.1%");
        assert_eq!(format_percent(12.5), "12.5%");
        assert_eq!(format_percent(100.0), "100%");
        assert_eq!(format_percent(1.0 / 3.0), "0.333%");
        assert_eq!(show_ms(Duration::from_micros(3_240)), "3.2 ms");
        assert_eq!(show_ms(ms(512)), "512 ms");
    }
}
