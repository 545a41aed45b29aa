//! Talking to the API server: its errors kept in its own words, and one retry policy for what
//! is transient (429, 5xx, a connection that dropped).
//!
//! kube's own retry layer is turned off when the client is built (see `connect`), so this is the
//! only place that decides how often and how long to retry, and it is tested here.

use std::future::Future;
use std::time::Duration;

use kube::core::Status;

/// An API call that failed, as the server put it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server answered with a Status.
    #[error("the API server answered {code} {reason}: {message}")]
    Status {
        code: u16,
        reason: String,
        message: String,
        status: Box<Status>,
    },
    /// No answer: connection refused or reset, TLS, a body that is not what was expected.
    #[error("no usable answer from the API server")]
    Transport(#[source] kube::Error),
}

impl ApiError {
    pub fn code(&self) -> Option<u16> {
        match self {
            ApiError::Status { code, .. } => Some(*code),
            ApiError::Transport(_) => None,
        }
    }

    pub fn status(&self) -> Option<&Status> {
        match self {
            ApiError::Status { status, .. } => Some(status),
            ApiError::Transport(_) => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.code() == Some(404)
    }

    pub fn is_conflict(&self) -> bool {
        self.code() == Some(409)
    }
}

impl From<kube::Error> for ApiError {
    fn from(err: kube::Error) -> Self {
        match err {
            kube::Error::Api(status) => ApiError::Status {
                code: status.code,
                reason: if status.reason.is_empty() {
                    reason_phrase(status.code).to_string()
                } else {
                    status.reason.clone()
                },
                message: crate::untrusted::server_text(&status.message),
                status,
            },
            other => ApiError::Transport(other),
        }
    }
}

fn reason_phrase(code: u16) -> &'static str {
    http::StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

/// Whether trying again may help: throttling (429), server errors (500, 502, 503, 504) and
/// transport failures. Everything else (400, 403, 404, 409, 422) is an answer.
pub fn is_transient(err: &ApiError) -> bool {
    match err {
        ApiError::Status { code, .. } => matches!(code, 429 | 500 | 502 | 503 | 504),
        ApiError::Transport(e) => !matches!(
            e,
            kube::Error::SerdeError(_) | kube::Error::BuildRequest(_) | kube::Error::FromUtf8(_)
        ),
    }
}

/// How many times a call is tried in all: with the delays below that is about 25 s of trying,
/// long enough for an API server restart or a burst of throttling, short enough to fail a step
/// that cannot reach its cluster while the operator is still watching.
pub const ATTEMPTS: u32 = 6;

/// Delay before retry number `retry` (0-based): 250 ms doubling up to 8 s, or what the server
/// asked for in `retryAfterSeconds` (capped at 30 s, so a confused server cannot stall us).
pub fn backoff(retry: u32, retry_after: Option<u32>) -> Duration {
    if let Some(seconds) = retry_after.filter(|s| *s > 0) {
        return Duration::from_secs(u64::from(seconds.min(30)));
    }
    let millis = 250u64.saturating_mul(1 << retry.min(5));
    Duration::from_millis(millis.min(8000))
}

/// Runs `call` until it succeeds, fails with an answer, or [`ATTEMPTS`] transient failures.
///
/// # Errors
/// The last error.
pub async fn retrying<T, F, Fut>(what: &str, mut call: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut retry = 0;
    loop {
        match call().await.map_err(ApiError::from) {
            Ok(value) => return Ok(value),
            Err(err) if is_transient(&err) && retry + 1 < ATTEMPTS => {
                let retry_after = err
                    .status()
                    .and_then(|s| s.details.as_ref())
                    .map(|d| d.retry_after_seconds);
                let delay = backoff(retry, retry_after);
                tracing::debug!("{what}: {err} — retrying in {}ms", delay.as_millis());
                tokio::time::sleep(delay).await;
                retry += 1;
            }
            Err(err) => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn api_error(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(Status::failure("nope", "").with_code(code)))
    }

    #[test]
    fn transient_errors_are_throttling_and_server_errors() {
        for (code, want) in [
            (429, true),
            (500, true),
            (503, true),
            (504, true),
            (400, false),
            (403, false),
            (404, false),
            (409, false),
            (410, false),
            (422, false),
        ] {
            assert_eq!(
                is_transient(&ApiError::from(api_error(code))),
                want,
                "code {code}"
            );
        }
    }

    #[test]
    fn backoff_doubles_to_a_cap_and_honours_retry_after() {
        let delays: Vec<u128> = (0..7).map(|r| backoff(r, None).as_millis()).collect();
        assert_eq!(delays, [250, 500, 1000, 2000, 4000, 8000, 8000]);
        assert_eq!(backoff(0, Some(3)), Duration::from_secs(3));
        assert_eq!(backoff(0, Some(600)), Duration::from_secs(30));
        assert_eq!(backoff(1, Some(0)), Duration::from_millis(500));
    }

    #[test]
    fn errors_read_in_the_servers_words_on_one_line() {
        let err = ApiError::from(kube::Error::Api(Box::new(
            Status::failure("line one\nline two", "Conflict").with_code(409),
        )));
        assert_eq!(
            err.to_string(),
            "the API server answered 409 Conflict: line one line two"
        );
        let err = ApiError::from(api_error(500));
        assert_eq!(
            err.to_string(),
            "the API server answered 500 Internal Server Error: nope"
        );
        assert!(crate::untrusted::server_text(&"x".repeat(5000)).ends_with('…'));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_failures_then_succeeds() {
        let calls = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let result = retrying("reading", || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 2 {
                    Err(api_error(if n == 0 { 429 } else { 500 }))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(result.ok(), Some(2));
        assert_eq!(started.elapsed(), Duration::from_millis(750));
    }

    #[tokio::test(start_paused = true)]
    async fn answers_are_not_retried_and_retries_end() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = retrying("reading", || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(api_error(404)) }
        })
        .await;
        assert!(result.is_err_and(|e| e.is_not_found()));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let calls = AtomicU32::new(0);
        let result: Result<(), _> = retrying("reading", || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(api_error(503)) }
        })
        .await;
        assert_eq!(result.err().and_then(|e| e.code()), Some(503));
        assert_eq!(calls.load(Ordering::SeqCst), ATTEMPTS);
    }
}
