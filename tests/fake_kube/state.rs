//! Everything the server, the controllers and the test-facing handle share, behind one mutex:
//! the store, the knobs tests turn, the controllers' memory and the request log.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Notify;

use super::controllers::Memory;
use super::object;
use super::selectors::LabelSelector;
use super::store::Store;
use super::{Behavior, Fault, RecordedRequest, WatchDrop};

/// Settings a test chooses at start and may change while the server runs.
#[derive(Debug, Clone)]
pub struct Knobs {
    pub token: String,
    /// How long one second of object time (`progressDeadlineSeconds`, `minReadySeconds`,
    /// back-offs, `activeDeadlineSeconds`, ...) lasts in real time.
    pub second: Duration,
    pub ready_delay: Duration,
    pub slow_delay: Duration,
    pub termination_delay: Duration,
    pub bookmark_interval: Duration,
    pub watch_drop: Option<WatchDrop>,
    /// Rules added by the test, consulted newest first, before the built-in script.
    pub behaviors: Vec<(String, Behavior)>,
    pub logs: Vec<(String, String)>,
    /// Each fault with the number of times it still fires.
    pub faults: Vec<(Fault, usize)>,
    pub paused: bool,
    pub nodes: Vec<String>,
    /// The HTTP servers standing in for pods behind the service proxy, newest last.
    pub backends: Vec<HttpBackend>,
}

/// Which pods a test's HTTP server answers for.
#[derive(Debug, Clone)]
pub enum PodMatch {
    Selected(LabelSelector),
    Named(String),
}

/// One [`super::FakeKube::set_http_backend`] registration.
#[derive(Debug, Clone)]
pub struct HttpBackend {
    pub namespace: String,
    pub pods: PodMatch,
    /// `http://127.0.0.1:PORT`: only its host and port are used.
    pub url: String,
}

impl HttpBackend {
    pub fn serves(&self, pod: &Value) -> bool {
        object::namespace(pod) == self.namespace
            && match &self.pods {
                PodMatch::Selected(selector) => selector.matches(&object::labels(pod)),
                PodMatch::Named(name) => object::name(pod) == name,
            }
    }
}

impl Knobs {
    /// `seconds` of object time in real time.
    pub fn scaled(&self, seconds: f64) -> Duration {
        self.second.mul_f64(seconds.max(0.0))
    }
}

pub struct State {
    pub store: Store,
    pub knobs: Knobs,
    pub memory: Memory,
    pub requests: Vec<RecordedRequest>,
    /// The service proxy's next turn per `namespace/service-id` (round robin over addresses).
    pub proxy_turns: HashMap<String, usize>,
}

/// The shared handle: state plus the bell the controllers wait on.
pub struct Shared {
    state: Mutex<State>,
    pub wake: Notify,
    pub port: u16,
    /// Serving HTTPS (the service proxy's `X-Forwarded-Proto` and rewritten redirects say so).
    pub tls: bool,
    /// The service proxy's client, made on first use inside the server's runtime.
    pub http: OnceLock<reqwest::Client>,
}

impl Shared {
    pub fn new(state: State, port: u16, tls: bool) -> Arc<Shared> {
        Arc::new(Shared {
            state: Mutex::new(state),
            wake: Notify::new(),
            port,
            tls,
            http: OnceLock::new(),
        })
    }

    /// Locks the state. A panic in a controller must not hide every later failure behind a
    /// poisoned lock, so poisoning is ignored.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
