//! A small list-then-watch loop with a local store: what kube-runtime's reflector does, in the
//! few lines this crate needs. Each [`Watch::next`] returns the store after something changed.
//!
//! Resumption follows the API conventions: a watch that ends (server timeout, dropped
//! connection) is re-established from the last resourceVersion seen (bookmarks included), and
//! `410 Gone` (that version is too old) starts over with a fresh LIST.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::time::Duration;

use futures_util::{Stream, StreamExt as _};
use kube::api::{ListParams, WatchEvent, WatchParams};
use kube::{Api, Resource, ResourceExt as _};
use serde::de::DeserializeOwned;

use super::api::{self, ApiError};

type EventStream<K> = Pin<Box<dyn Stream<Item = Result<WatchEvent<K>, kube::Error>> + Send>>;

/// How long the server keeps one watch open. Below the API server's default (30–60 min
/// randomised) and below typical load-balancer idle limits, so a silent half-open connection
/// is noticed within this time.
const WATCH_TIMEOUT_SECS: u32 = 240;

/// How many times in a row a watch may fail to (re)start before the error is returned.
const RESTARTS: u32 = 8;

/// Objects matching a selector, kept current.
pub struct Watch<K> {
    api: Api<K>,
    fields: Option<String>,
    labels: Option<String>,
    version: Option<String>,
    stream: Option<EventStream<K>>,
    store: BTreeMap<String, K>,
    failures: u32,
}

impl<K> Watch<K>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    pub fn new(api: Api<K>) -> Self {
        Watch {
            api,
            fields: None,
            labels: None,
            version: None,
            stream: None,
            store: BTreeMap::new(),
            failures: 0,
        }
    }

    /// A field selector, e.g. `metadata.name=web` (kubectl's way to watch one object).
    pub fn fields(mut self, selector: &str) -> Self {
        self.fields = Some(selector.to_string());
        self
    }

    /// A label selector, e.g. `app=web`.
    pub fn labels(mut self, selector: &str) -> Self {
        self.labels = Some(selector.to_string());
        self
    }

    /// The objects as last seen, by name.
    pub fn store(&self) -> &BTreeMap<String, K> {
        &self.store
    }

    /// Waits for the next change and returns the store. The first call lists.
    ///
    /// Cancel-safe: dropping the future loses no event (the stream keeps it) and leaves the
    /// store consistent (it is only written once a LIST or an event has fully arrived).
    ///
    /// # Errors
    /// An answer that retrying cannot change (403, 404 on the resource type), or a watch that
    /// failed to restart [`RESTARTS`] times in a row.
    pub async fn next(&mut self) -> Result<&BTreeMap<String, K>, ApiError> {
        loop {
            if self.version.is_none() {
                let params = ListParams {
                    field_selector: self.fields.clone(),
                    label_selector: self.labels.clone(),
                    ..ListParams::default()
                };
                let api = self.api.clone();
                let list = api::retrying("listing", || api.list(&params)).await?;
                self.store = list.items.into_iter().map(|o| (o.name_any(), o)).collect();
                self.version = list.metadata.resource_version;
                if self.version.is_none() {
                    // A server without resourceVersions cannot be watched; say so plainly.
                    return Err(ApiError::from(kube::Error::Api(Box::new(
                        kube::core::Status::failure(
                            "the list carried no resourceVersion, so it cannot be watched",
                            "NoResourceVersion",
                        )
                        .with_code(500),
                    ))));
                }
                self.stream = None;
                return Ok(&self.store);
            }
            if self.stream.is_none() {
                let mut params = WatchParams::default().timeout(WATCH_TIMEOUT_SECS);
                params.field_selector = self.fields.clone();
                params.label_selector = self.labels.clone();
                let version = self.version.clone().unwrap_or_default();
                match self.api.watch(&params, &version).await {
                    Ok(stream) => self.stream = Some(stream.boxed()),
                    Err(e) => {
                        self.restart_after(ApiError::from(e)).await?;
                        continue;
                    }
                }
            }
            let stream = self.stream.as_mut().expect("opened above");
            match stream.next().await {
                Some(Ok(WatchEvent::Added(o) | WatchEvent::Modified(o))) => {
                    self.failures = 0;
                    self.version = o.resource_version().or(self.version.take());
                    self.store.insert(o.name_any(), o);
                    return Ok(&self.store);
                }
                Some(Ok(WatchEvent::Deleted(o))) => {
                    self.failures = 0;
                    self.version = o.resource_version().or(self.version.take());
                    self.store.remove(&o.name_any());
                    return Ok(&self.store);
                }
                Some(Ok(WatchEvent::Bookmark(b))) => {
                    self.version = Some(b.metadata.resource_version);
                }
                Some(Ok(WatchEvent::Error(status))) => {
                    self.stream = None;
                    self.restart_after(ApiError::from(kube::Error::Api(status)))
                        .await?;
                }
                Some(Err(e)) => {
                    self.stream = None;
                    self.restart_after(ApiError::from(e)).await?;
                }
                None => {
                    // The server closed the watch (its timeout, or the connection dropped):
                    // resume from the last version seen.
                    self.stream = None;
                }
            }
        }
    }

    /// Decides what a failed watch means: `410 Gone` relists at once; transient failures back
    /// off and retry; anything else is returned.
    async fn restart_after(&mut self, err: ApiError) -> Result<(), ApiError> {
        if err.code() == Some(410) {
            self.version = None;
            return Ok(());
        }
        if !api::is_transient(&err) || self.failures >= RESTARTS {
            return Err(err);
        }
        let delay = api::backoff(self.failures, None);
        self.failures += 1;
        tracing::debug!(
            "watch failed ({err}); restarting in {}ms",
            delay.as_millis()
        );
        tokio::time::sleep(delay.min(Duration::from_secs(8))).await;
        Ok(())
    }
}
