//! A small client of the Prometheus HTTP API (`/api/v1/query`, `/api/v1/query_range`): enough
//! to have a query checked by Prometheus itself and to read a window of its samples.
//!
//! Connection errors and 502/503/504 (a Prometheus starting up or restarting) are retried with
//! back-off; every request is a read, so retrying is always safe.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use crate::registry::{Http, RetryPolicy};
use crate::untrusted::server_text;

/// One request's limit: a range query over an hour of a busy service is well under it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not shown: a URL that does not parse may still hold a password.
    #[error("the Prometheus URL is not an absolute http(s) URL")]
    BadUrl,
    #[error("cannot reach Prometheus at {url}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// Prometheus refused the query (`bad_data`) or could not run it (`execution`); `error` is
    /// its own message.
    #[error("Prometheus rejected the query `{query}`: {error}")]
    Rejected { query: String, error: String },
    #[error("unexpected answer from Prometheus at {url} (HTTP {status}): {detail}")]
    Unexpected {
        url: String,
        status: u16,
        detail: String,
    },
}

impl Error {
    fn is_retryable(&self) -> bool {
        match self {
            Error::Unreachable { .. } => true,
            Error::Unexpected { status, .. } => matches!(status, 502..=504),
            Error::BadUrl | Error::Rejected { .. } => false,
        }
    }
}

/// One sample of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub at: Timestamp,
    /// May be NaN (a ratio of zero requests) or ±Inf.
    pub value: f64,
}

/// One series of a range query's answer: its labels and its samples, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub samples: Vec<Sample>,
}

/// A range query's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub series: Vec<Series>,
    /// Prometheus' warnings (a partial answer, for one), cleaned for printing.
    pub warnings: Vec<String>,
}

/// The time range an analysis reads, and the resolution it reads it at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    pub start: Timestamp,
    pub end: Timestamp,
    #[serde(rename = "step_ms", serialize_with = "super::report::millis")]
    pub step: Duration,
}

impl Window {
    /// From `start` to `end`, at [`default_step`] for its length.
    pub fn new(start: Timestamp, end: Timestamp) -> Window {
        let length = Duration::try_from(end.duration_since(start)).unwrap_or_default();
        Window {
            start,
            end,
            step: default_step(length),
        }
    }

    pub fn length(&self) -> Duration {
        Duration::try_from(self.end.duration_since(self.start)).unwrap_or_default()
    }
}

/// About 300 points over the window, in whole seconds from 1 s to 60 s: a 5-minute step is read
/// every second, an hour every 12 s, and no window comes near Prometheus' 11,000 points.
pub fn default_step(length: Duration) -> Duration {
    let secs = length.as_secs().div_ceil(300).clamp(1, 60);
    Duration::from_secs(secs)
}

/// A Prometheus HTTP API at one base URL (`http://prometheus.monitoring:9090`, or with a path
/// prefix behind a proxy).
#[derive(Debug, Clone)]
pub struct Prometheus {
    base: String,
    /// The base URL without any user or password, for messages.
    shown: String,
    http: reqwest::Client,
    retry: RetryPolicy,
}

impl Prometheus {
    /// A client of the API at `url`, on the crate's shared HTTP client (plain for `http://`,
    /// rustls otherwise). Credentials in the URL are sent as basic auth and never shown.
    ///
    /// # Errors
    /// [`Error::BadUrl`] when `url` is not an absolute `http(s)` URL.
    pub fn new(url: &str) -> Result<Prometheus, Error> {
        let parsed = reqwest::Url::parse(url).map_err(|_| Error::BadUrl)?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(Error::BadUrl);
        }
        let base = url.trim_end_matches('/').to_string();
        Ok(Prometheus {
            shown: redact(&base).unwrap_or_default(),
            http: Http::new().for_url(&base).clone(),
            base,
            retry: RetryPolicy::default(),
        })
    }

    /// Retries connection errors and 502/503/504 this way (default: 5 retries from 0.5 s).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Prometheus {
        self.retry = retry;
        self
    }

    /// The base URL as it may be shown: without credentials.
    pub fn url(&self) -> &str {
        &self.shown
    }

    /// Has Prometheus parse and run `query` once, now, as an instant query.
    ///
    /// # Errors
    /// [`Error::Rejected`] with Prometheus' own message when it refuses the query, and also when
    /// the query is a range vector or a string, which a range query cannot evaluate.
    pub async fn validate(&self, query: &str) -> Result<(), Error> {
        let url = format!("{}/api/v1/query", self.base);
        let data = self
            .call(query, || {
                self.http
                    .get(&url)
                    .query(&[("query", query)])
                    .timeout(REQUEST_TIMEOUT)
            })
            .await?;
        match data.result_type.as_str() {
            "vector" | "scalar" => Ok(()),
            other => Err(Error::Rejected {
                query: query.to_string(),
                error: format!(
                    "the query returns a {}; analysis needs an instant vector or a scalar (wrap a range selector in rate() or a *_over_time function)",
                    if other == "matrix" {
                        "range vector"
                    } else {
                        other
                    }
                ),
            }),
        }
    }

    /// The samples of `query` over `window`, one per step.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn query_range(&self, query: &str, window: &Window) -> Result<Matrix, Error> {
        let url = format!("{}/api/v1/query_range", self.base);
        let start = unix_seconds(window.start);
        let end = unix_seconds(window.end);
        let step = window.step.as_secs_f64().to_string();
        let data = self
            .call(query, || {
                self.http
                    .post(&url)
                    .form(&[
                        ("query", query),
                        ("start", &start),
                        ("end", &end),
                        ("step", &step),
                    ])
                    .timeout(REQUEST_TIMEOUT)
            })
            .await?;
        let unexpected = |detail: String| Error::Unexpected {
            url: format!("{}/api/v1/query_range", self.shown),
            status: 200,
            detail,
        };
        if data.result_type != "matrix" {
            return Err(unexpected(format!(
                "a range query answered a {}",
                server_text(&data.result_type)
            )));
        }
        let raw: Vec<RawSeries> = serde_json::from_value(data.result)
            .map_err(|e| unexpected(format!("the matrix does not decode: {e}")))?;
        let series = raw
            .into_iter()
            .map(|s| {
                let samples = s
                    .values
                    .iter()
                    .map(|(at, value)| parse_sample(*at, value))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| unexpected("a sample is not a number".to_string()))?;
                Ok(Series {
                    labels: s.metric,
                    samples,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Matrix {
            series,
            warnings: data.warnings,
        })
    }

    /// Sends the request `build` makes (again on a retryable failure) and reads its `data`.
    async fn call<F>(&self, query: &str, build: F) -> Result<Data, Error>
    where
        F: Fn() -> reqwest::RequestBuilder,
    {
        let mut attempt = 0;
        loop {
            match self.once(query, build()).await {
                Err(err) if err.is_retryable() && attempt < self.retry.retries => {
                    // No jitter: one client polling one server has no herd to spread.
                    let delay = self.retry.delay(attempt, None, 1.0);
                    tracing::warn!(
                        "{err} — retrying in {:.1} s ({}/{})",
                        delay.as_secs_f64(),
                        attempt + 1,
                        self.retry.retries
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn once(&self, query: &str, request: reqwest::RequestBuilder) -> Result<Data, Error> {
        let (client, request) = request.build_split();
        let request = request.map_err(|_| Error::BadUrl)?;
        let url = redact(request.url().as_str())
            .map(|u| u.split('?').next().unwrap_or_default().to_string())
            .unwrap_or_default();
        let unreachable = |source: reqwest::Error| Error::Unreachable {
            url: url.clone(),
            source: source.without_url(),
        };
        let response = client.execute(request).await.map_err(unreachable)?;
        let status = response.status();
        let body = response.text().await.map_err(unreachable)?;
        let answer: Option<Answer> = serde_json::from_str(&body).ok();
        match answer {
            Some(Answer {
                status: ref s,
                data: Some(data),
                warnings,
                ..
            }) if status == StatusCode::OK && s == "success" => Ok(Data {
                warnings: warnings.iter().map(|w| server_text(w)).collect(),
                ..data
            }),
            // bad_data (400): the query does not parse or type-check; execution (422): it
            // cannot be run (many-to-many matching, for one). Both are about the query.
            Some(Answer {
                error_type: Some(kind),
                error: Some(error),
                ..
            }) if kind == "bad_data" || kind == "execution" => Err(Error::Rejected {
                query: query.to_string(),
                error: server_text(&error),
            }),
            Some(Answer {
                error: Some(error), ..
            }) => Err(Error::Unexpected {
                url,
                status: status.as_u16(),
                detail: server_text(&error),
            }),
            _ => Err(Error::Unexpected {
                url,
                status: status.as_u16(),
                detail: if body.trim().is_empty() {
                    "an empty body".to_string()
                } else {
                    server_text(&body)
                },
            }),
        }
    }
}

/// The API's envelope (`{"status":"success","data":…}` or `{"status":"error",…}`).
#[derive(Deserialize)]
struct Answer {
    status: String,
    data: Option<Data>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
    /// The envelope's, moved here once it is read.
    #[serde(skip)]
    warnings: Vec<String>,
}

#[derive(Deserialize)]
struct RawSeries {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

/// A `[1712000000.123, "0.5"]` pair; the value may be `NaN`, `+Inf` or `-Inf`.
fn parse_sample(at: f64, value: &str) -> Option<Sample> {
    let at = Timestamp::from_millisecond((at * 1000.0).round() as i64).ok()?;
    let value = value.parse::<f64>().ok()?;
    Some(Sample { at, value })
}

/// Unix seconds with milliseconds, as the API takes them.
fn unix_seconds(at: Timestamp) -> String {
    let ms = at.as_millisecond();
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// `url` without a user or password; `None` when it does not parse.
fn redact(url: &str) -> Option<String> {
    let mut parsed = reqwest::Url::parse(url).ok()?;
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    Some(parsed.as_str().trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_as_prometheus_writes_them() {
        let cases: &[(&str, f64, &str, Option<f64>)] = &[
            ("a number", 1_712_000_000.5, "0.25", Some(0.25)),
            ("an integer", 1_712_000_000.0, "12", Some(12.0)),
            (
                "plus infinity",
                1_712_000_000.0,
                "+Inf",
                Some(f64::INFINITY),
            ),
            (
                "minus infinity",
                1_712_000_000.0,
                "-Inf",
                Some(f64::NEG_INFINITY),
            ),
            ("exponent", 1_712_000_000.0, "1e-05", Some(0.00001)),
            ("not a number", 1_712_000_000.0, "abc", None),
        ];
        for (case, at, value, want) in cases {
            let got = parse_sample(*at, value);
            assert_eq!(got.map(|s| s.value), *want, "case: {case}");
        }
        let nan = parse_sample(1_712_000_000.0, "NaN").expect("NaN parses");
        assert!(nan.value.is_nan());
        let half = parse_sample(1_712_000_000.5, "1").unwrap();
        assert_eq!(half.at.as_millisecond(), 1_712_000_000_500);
    }

    #[test]
    fn steps_for_windows() {
        let cases: &[(u64, u64)] = &[
            (0, 1),
            (10, 1),
            (300, 1),
            (301, 2),
            (1800, 6),
            (3600, 12),
            (86_400, 60),
        ];
        for (length, step) in cases {
            assert_eq!(
                default_step(Duration::from_secs(*length)),
                Duration::from_secs(*step),
                "window of {length} s"
            );
        }
    }

    #[test]
    fn urls_are_shown_without_credentials() {
        let p = Prometheus::new("https://user:s3cret@prometheus.example.com/prom/").unwrap();
        assert_eq!(p.url(), "https://prometheus.example.com/prom");
        assert_eq!(
            redact("http://prometheus:9090").as_deref(),
            Some("http://prometheus:9090")
        );
        for bad in ["prometheus:9090", "not a url", "ftp://prometheus", "/api"] {
            let err = Prometheus::new(bad).unwrap_err();
            assert!(matches!(err, Error::BadUrl), "{bad}: {err}");
        }
        let err = Prometheus::new("mailto:user:s3cret@x").unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    #[test]
    fn timestamps_as_the_api_takes_them() {
        let at = Timestamp::from_millisecond(1_712_000_000_050).unwrap();
        assert_eq!(unix_seconds(at), "1712000000.050");
    }
}
