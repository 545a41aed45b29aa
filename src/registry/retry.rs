//! Retries with exponential backoff and full jitter, for idempotent steps only.
//!
//! What counts as idempotent: reads (HEAD, GET), a manifest PUT (the same bytes under the same
//! name), and "make blob X present", which is content-addressed: a failed upload is started again
//! (or resumed) and ends with the same blob. A token request is a read. Nothing else is retried.

use std::future::Future;
use std::time::Duration;

use super::error::Error;

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts after the first one. 5 with a 0.5 s base waits at most 0.5+1+2+4+8 s in total
    /// (before jitter): long enough to ride out a registry restart or a rate limit window, short
    /// enough that a dead registry fails the step in well under a minute.
    pub retries: u32,
    pub base: Duration,
    /// No single wait is longer than this, even when `Retry-After` asks for more.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 5,
            base: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (0 = the first retry): the server's `Retry-After`
    /// when given, else a random duration in `[0, base·2^attempt]` ("full jitter", so that many
    /// clients that failed together do not come back together), capped at `max_delay`.
    /// `random` is a number in `[0, 1)`.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>, random: f64) -> Duration {
        let delay = match retry_after {
            Some(wait) => wait,
            None => {
                let ceiling = self.base.saturating_mul(1u32 << attempt.min(16));
                ceiling.mul_f64(random.clamp(0.0, 1.0))
            }
        };
        delay.min(self.max_delay)
    }

    /// Runs `step` until it succeeds, fails with an error that is not retryable, or the retries
    /// are used up (the last error is returned). `what` names the step in the log.
    pub async fn run<T, F, Fut>(&self, what: &str, mut step: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let mut attempt = 0;
        loop {
            match step().await {
                Ok(value) => return Ok(value),
                Err(err) if err.is_retryable() && attempt < self.retries => {
                    let delay = self.delay(attempt, err.retry_after(), random_unit());
                    tracing::warn!(
                        "{what}: {} — retrying in {:.1} s ({}/{})",
                        crate::outcome::chain(&err),
                        delay.as_secs_f64(),
                        attempt + 1,
                        self.retries
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }
}

/// A random number in `[0, 1)` from the OS; 0.5 if it has none (jitter is a courtesy, not a
/// correctness matter).
fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    match getrandom::fill(&mut bytes) {
        Ok(()) => (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.delay(0, None, 0.999_999),
            Duration::from_millis(500) - Duration::from_nanos(500)
        );
        assert_eq!(p.delay(3, None, 0.5), Duration::from_secs(2));
        assert_eq!(p.delay(20, None, 0.99), Duration::from_secs(30));
        assert_eq!(p.delay(4, None, 0.0), Duration::ZERO);
    }

    #[test]
    fn retry_after_wins_but_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(2)), 0.0),
            Duration::from_secs(2)
        );
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(600)), 0.0),
            Duration::from_secs(30)
        );
    }

    fn status(code: u16) -> Error {
        Error::Status {
            status: reqwest::StatusCode::from_u16(code).unwrap(),
            detail: String::new(),
            retry_after: Some(Duration::ZERO),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_server_errors_until_success() {
        let calls = AtomicU32::new(0);
        let result = RetryPolicy::default()
            .run("test", || async {
                match calls.fetch_add(1, Ordering::SeqCst) {
                    0 => Err(status(503)),
                    1 => Err(status(429)),
                    _ => Ok("done"),
                }
            })
            .await;
        assert_eq!(result.unwrap(), "done");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn client_errors_are_not_retried_and_retries_run_out() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = RetryPolicy::default()
            .run("test", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(status(400))
            })
            .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let calls = AtomicU32::new(0);
        let policy = RetryPolicy {
            retries: 2,
            ..RetryPolicy::default()
        };
        let result: Result<(), _> = policy
            .run("test", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(status(502))
            })
            .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}
