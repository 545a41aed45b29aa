//! An in-process fake Kubernetes API server for tests: the real HTTP API (JSON over HTTP/1.1 on
//! `127.0.0.1`, bearer-token auth) behind a real kubeconfig, with the controllers a deploy
//! depends on, so the product's `kube::Client` code runs unchanged against it.
//!
//! ```ignore
//! let fake = FakeKube::start();                      // own thread and runtime: sync or async tests
//! let kubeconfig = fake.write_kubeconfig(dir.path()); // hand it to the binary
//! let client = fake.client().await;                   // or use it in-process
//! ```
//!
//! # What it serves
//! Namespaces, nodes, pods (+ `log`), events, services, configmaps, secrets, serviceaccounts,
//! persistentvolumeclaims, endpoints, deployments, replicasets, statefulsets, daemonsets,
//! controllerrevisions, jobs, cronjobs, HPAs (autoscaling/v2), PDBs (policy/v1), leases,
//! ingresses, networkpolicies, endpointslices (discovery.k8s.io/v1) and RBAC objects; `status`
//! and `scale` subresources; the service proxy (`services/{name[:port]}/proxy/...`, see below);
//! discovery (legacy and aggregated) and `/version` (v1.33).
//!
//! Like the real apiserver: errors are `Status` objects (NotFound, AlreadyExists, Conflict,
//! Invalid with causes, BadRequest, Expired, TooManyRequests, Unauthorized ...); one
//! resourceVersion counter bumped by every write (no-op writes are not writes);
//! `metadata.generation` counts spec changes; uid and creationTimestamp; defaulting of the
//! fields clients read back; creating in a missing namespace is 404 `namespaces "x" not
//! found`; PUT with a stale resourceVersion is 409; server-side apply with `managedFields` per
//! manager and operation, 409 naming the conflicting manager and fields unless `force`;
//! `dryRun=All` stores nothing; JSON, merge and strategic merge patches; LIST as `XList` with
//! `metadata.resourceVersion`, label and field selectors, `limit`/`continue`; WATCH from a
//! resourceVersion with ADDED/MODIFIED/DELETED/BOOKMARK events, `timeoutSeconds`,
//! `sendInitialEvents`, and an ERROR event carrying a 410 Expired Status once the version has
//! left the history window; deletion with `propagationPolicy` (Background, Foreground,
//! Orphan; Jobs default to Orphan with the real warning), graceful pod deletion, finalizers,
//! and a garbage collector for owner references.
//!
//! Controllers: Deployment (ReplicaSets named `<deployment>-<pod-template-hash>` with
//! `deployment.kubernetes.io/revision`, revision history, rolling update within
//! maxSurge/maxUnavailable or Recreate, the Available and Progressing conditions with the real
//! reasons including ProgressDeadlineExceeded, pause/resume, revisionHistoryLimit),
//! ReplicaSet, StatefulSet (ordered, partitioned rolling update, ControllerRevisions),
//! DaemonSet (one pod per fake node), Job (Complete/Failed, backoffLimit,
//! activeDeadlineSeconds, ttlSecondsAfterFinished), HPA (keeps replicas within min..max; there
//! is no metrics server), PDB status, namespaces (default ServiceAccount, kube-root-ca.crt,
//! termination), Endpoints and EndpointSlices (`kubernetes.io/service-name`, the pods a
//! Service's selector picks with `conditions.ready`; `endpoints.rs`), the scheduler and the
//! kubelet.
//!
//! # The service proxy
//! `/api/v1/namespaces/N/services/NAME[:PORT]/proxy/PATH` resolves like the real one (through
//! the Service's Endpoints, 503 `no endpoints available` when no ready pod has the port; a
//! request without a port only matches an unnamed Service port) and takes turns over the ready
//! pods. Pods are not processes, so a test registers the HTTP server that answers for them:
//! [`FakeKube::set_http_backend`] (`"prod"`, `"app=web,version=blue"`, `url`) or
//! [`FakeKube::set_pod_http_backend`] for one pod; a pod without one answers 200 with a JSON
//! echo `{pod, namespace, image, labels, port, method, path, query}`. A smoke check through the
//! proxy therefore reaches the pods the Service selects right now: after a selector switch
//! the Endpoints follow within one controller pass, as on a cluster they follow within the
//! controller manager's sync.
//!
//! # Time
//! Durations an object states in seconds (`progressDeadlineSeconds`, `minReadySeconds`,
//! `activeDeadlineSeconds`, `ttlSecondsAfterFinished`, back-offs, termination grace) run
//! scaled: one object second lasts [`Builder::second`] (10 ms by default), so a
//! `progressDeadlineSeconds: 600` deadline passes after 6 s of real time. Timestamps written
//! into objects are wall-clock time. The controllers run after every write and when the next
//! timed change is due, so a healthy three-replica rollout completes in about a hundred
//! milliseconds; names, uids and hashes come from counters, not randomness.
//!
//! # The pod script
//! A container's behaviour comes from its image name: the test's rules first
//! ([`FakeKube::set_pod_behavior`], newest first, matching a substring), then:
//!
//! | image contains   | behaviour |
//! |------------------|-----------|
//! | `unschedulable`  | Pending, no node; condition PodScheduled=False reason Unschedulable; a FailedScheduling event |
//! | `pull-fail`      | Pending; waiting ErrImagePull, then ImagePullBackOff, alternating with growing back-off; Failed/BackOff events |
//! | `missing-config` | Pending; waiting CreateContainerConfigError (`secret "<container>-config" not found`) |
//! | `never-ready`    | Running, never Ready (readiness probe failing); an Unhealthy event |
//! | `crash`          | starts, exits 1 after the ready delay: lastState.terminated (reason Error, exitCode 1), waiting CrashLoopBackOff, restartCount growing (back-off 10 s doubling to 300 s, scaled); BackOff events |
//! | `oom`            | like `crash` with lastState.terminated reason OOMKilled, exitCode 137 |
//! | `slow`           | Ready after [`Builder::slow_ready_delay`] (5 s) |
//! | anything else    | Running and Ready after [`Builder::pod_ready_delay`] (20 ms) |
//!
//! Independently of the image, a container whose `env` or `envFrom` refers to a Secret,
//! ConfigMap or key that does not exist (and is not optional) waits in
//! CreateContainerConfigError with the kubelet's message (`secret "x" not found`, `couldn't
//! find key K in ConfigMap ns/x`) until it exists. Pods with restartPolicy Never/OnFailure
//! (Job pods) run to completion: ready images exit 0 after running for the ready delay
//! (Succeeded), `crash` exits 1 and `oom` 137 (Failed, or restarted under OnFailure).
//!
//! Logs (`pods/x/log`: `container`, `follow`, `tailLines`, `limitBytes`, `timestamps`,
//! `previous`): [`FakeKube::set_pod_log`] text for a matching image, else a few lines naming
//! the image (`<image>: starting`, then `listening on :8080`; `crash` logs
//! `error: environment variable DATABASE_URL is not set`). A container that never started
//! answers 400 `container "web" in pod "x" is waiting to start: ...` like the kubelet.
//!
//! # Clients
//! Plain HTTP by default; [`Builder::tls`] serves HTTPS with a throwaway CA written into the
//! kubeconfig. kube-rs sends its bearer token over either; client-go (kubectl) only sends
//! credentials over TLS, and with TLS `kubectl apply --server-side --validate=false`,
//! `rollout status`, `rollout history` and `rollout undo` work against the fake (kubectl's
//! `create` writes protobuf, which the fake does not read). kube's default client retries 429,
//! 503 and 504 by itself (up to 15 times, honouring `Retry-After`) and sends no User-Agent, so
//! writes without a `fieldManager` are owned by manager `""`. [`FakeKube::changes`] gives
//! each write to an object with the instant it was stored, for latency measurements.
//!
//! # Deliberately not like the real server
//! No protobuf, CBOR, Table output or websockets (exec, attach, port-forward); no admission
//! webhooks, quotas, RBAC enforcement or OpenAPI schema (unknown fields are kept, type
//! errors mostly not caught); list types for apply come from a table of the common keyed
//! lists (containers, env, ports, volumes, volumeMounts, conditions ...), others are atomic;
//! a watch from a resourceVersion newer than the server's starts now instead of waiting;
//! LIST ignores `resourceVersion`/`resourceVersionMatch` and always reads the latest state;
//! controllers do not adopt orphans; no pod eviction subresource; no `/openapi`; no
//! events.k8s.io/v1 view of events (core/v1 only); the 410 for a compacted watch is reason
//! `Expired` as the watch cache sends it (not `Gone`).

mod admission;
mod controllers;
mod endpoints;
mod fields;
mod kubelet;
mod object;
mod proxy;
mod registry;
mod resources;
mod selectors;
mod server;
mod state;
mod status;
mod store;
mod tls;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use self::registry::{DeleteOpts, Ownership, WriteOpts};
use self::state::{Knobs, Shared, State};
use self::store::Store;

/// A failure the server answers with instead of serving the request, `times` times.
///
/// `path_prefix` matches the start of the request path (`/apis/apps/v1/namespaces/prod`), or
/// of `METHOD path` when it starts with a method (`PATCH /apis/apps/v1`); empty matches all.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// 429 with a `Retry-After` header and a TooManyRequests Status.
    TooManyRequests {
        path_prefix: String,
        times: usize,
        retry_after: u64,
    },
    /// 500 InternalError (`etcdserver: request timed out`).
    InternalError { path_prefix: String, times: usize },
    /// Any other Status: `code`, `reason` (e.g. 503 ServiceUnavailable), `message`.
    Status {
        path_prefix: String,
        times: usize,
        code: u16,
        reason: String,
        message: String,
    },
    /// The connection closes without an answer.
    DropConnection { path_prefix: String, times: usize },
}

impl Fault {
    fn path_prefix(&self) -> &str {
        match self {
            Fault::TooManyRequests { path_prefix, .. }
            | Fault::InternalError { path_prefix, .. }
            | Fault::Status { path_prefix, .. }
            | Fault::DropConnection { path_prefix, .. } => path_prefix,
        }
    }

    fn times(&self) -> usize {
        match self {
            Fault::TooManyRequests { times, .. }
            | Fault::InternalError { times, .. }
            | Fault::Status { times, .. }
            | Fault::DropConnection { times, .. } => *times,
        }
    }
}

/// When the server ends watch streams (cleanly, as when a connection to the real one drops).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchDrop {
    /// After this many events (bookmarks not counted).
    AfterEvents(usize),
    /// After this long.
    After(Duration),
}

/// What a container does; see the module doc for the script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behavior {
    Ready,
    /// Ready after this long instead of the pod ready delay.
    ReadyAfter(Duration),
    /// Ready after the slow delay.
    Slow,
    NeverReady,
    CrashLoop,
    OomKilled,
    PullFailure,
    Unschedulable,
    MissingConfig,
}

/// One write to an object, as [`FakeKube::changes`] reports it.
#[derive(Debug, Clone)]
pub struct Change {
    /// When the server stored it.
    pub at: Instant,
    /// `ADDED`, `MODIFIED` or `DELETED`, as a watch would say.
    pub event: &'static str,
    pub object: Value,
}

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    pub content_type: Option<String>,
    pub body: String,
    pub user_agent: Option<String>,
    /// The HTTP status answered (0 for a dropped connection).
    pub status: u16,
}

impl RecordedRequest {
    /// A query parameter, decoded.
    pub fn param(&self, key: &str) -> Option<String> {
        server::parse_query(&self.query)
            .into_iter()
            .find_map(|(k, v)| (k == key).then_some(v))
    }

    /// The body as JSON (apply bodies are YAML, which kube sends as JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .or_else(|_| serde_saphyr::from_str(&self.body))
            .unwrap_or(Value::Null)
    }
}

/// Settings for [`FakeKube`]; every one has a default suited to fast tests.
pub struct Builder {
    knobs: Knobs,
    history: usize,
    tls: bool,
}

impl Builder {
    /// The bearer token the server accepts (default `fake-kube-token`).
    pub fn token(mut self, token: &str) -> Builder {
        self.knobs.token = token.to_string();
        self
    }

    /// How long one object second lasts (default 10 ms): see "Time" in the module doc.
    pub fn second(mut self, real: Duration) -> Builder {
        self.knobs.second = real;
        self
    }

    /// How long a ready image takes to become Ready after scheduling (default 20 ms).
    pub fn pod_ready_delay(mut self, d: Duration) -> Builder {
        self.knobs.ready_delay = d;
        self
    }

    /// How long a `slow` image takes (default 5 s).
    pub fn slow_ready_delay(mut self, d: Duration) -> Builder {
        self.knobs.slow_delay = d;
        self
    }

    /// How long a deleted pod stays Terminating at most (default 10 ms; shorter when its
    /// grace period, scaled, is shorter).
    pub fn pod_termination_delay(mut self, d: Duration) -> Builder {
        self.knobs.termination_delay = d;
        self
    }

    /// How often watches that allow bookmarks get one (default 1 s).
    pub fn bookmark_interval(mut self, d: Duration) -> Builder {
        self.knobs.bookmark_interval = d;
        self
    }

    /// How many changes the watch history keeps (default 10 000); a watch from a version older
    /// than the window gets 410 Expired.
    pub fn watch_history(mut self, limit: usize) -> Builder {
        self.history = limit;
        self
    }

    pub fn drop_watches_after(mut self, drop: WatchDrop) -> Builder {
        self.knobs.watch_drop = Some(drop);
        self
    }

    pub fn fault(mut self, fault: Fault) -> Builder {
        let times = fault.times();
        self.knobs.faults.push((fault, times));
        self
    }

    pub fn pod_behavior(mut self, image_substring: &str, behavior: Behavior) -> Builder {
        self.knobs
            .behaviors
            .push((image_substring.to_string(), behavior));
        self
    }

    pub fn pod_log(mut self, image_substring: &str, text: &str) -> Builder {
        self.knobs
            .logs
            .push((image_substring.to_string(), text.to_string()));
        self
    }

    /// The number of nodes (default 1): what DaemonSets run on.
    pub fn nodes(mut self, n: usize) -> Builder {
        self.knobs.nodes = (1..=n.max(1)).map(|i| format!("fake-node-{i}")).collect();
        self
    }

    /// Serves HTTPS with a throwaway CA (in the kubeconfig as `certificate-authority-data`)
    /// instead of plain HTTP. kube-rs sends its token over either; client-go tools such as
    /// kubectl only send credentials over TLS.
    pub fn tls(mut self) -> Builder {
        self.tls = true;
        self
    }

    /// Starts with the controllers paused (see [`FakeKube::resume_controllers`]).
    pub fn paused(mut self) -> Builder {
        self.knobs.paused = true;
        self
    }

    /// Binds `127.0.0.1:0` and serves from a thread of its own.
    ///
    /// # Panics
    /// When no port can be bound or the runtime cannot start.
    pub fn start(self) -> FakeKube {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let port = listener.local_addr().expect("bound address").port();
        let mut state = State {
            store: Store::new(self.history),
            knobs: self.knobs,
            memory: controllers::Memory::default(),
            requests: Vec::new(),
            proxy_turns: HashMap::new(),
        };
        seed(&mut state);
        let shared = Shared::new(state, port, self.tls);
        let (acceptor, ca_pem) = match self.tls {
            true => {
                let (acceptor, pem) = tls::acceptor();
                (Some(acceptor), Some(pem))
            }
            false => (None, None),
        };
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fake-kube-{port}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    let controllers =
                        tokio::spawn(controllers::run(thread_shared.clone(), stop_rx.clone()));
                    server::serve(listener, thread_shared, acceptor, stop_rx).await;
                    let _ = controllers.await;
                });
            })
            .expect("spawn the fake-kube thread");
        FakeKube {
            shared,
            stop: stop_tx,
            thread: Some(thread),
            ca_pem,
        }
    }
}

/// The namespaces and nodes a fresh cluster has.
fn seed(st: &mut State) {
    let opts = WriteOpts::controller();
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let obj = json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } });
        let _ = registry::create(st, resources::NAMESPACES, "", obj, &opts);
    }
    for (i, node) in st.knobs.nodes.clone().iter().enumerate() {
        let obj = json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": { "name": node, "labels": {
                "kubernetes.io/hostname": node, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            }},
            "spec": { "podCIDR": format!("10.244.{i}.0/24") },
        });
        if let Ok(created) = registry::create(st, resources::NODES, "", obj, &opts) {
            let mut ready = created.clone();
            ready["status"] = json!({
                "conditions": [{ "type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status" }],
                "allocatable": { "cpu": "4", "memory": "8Gi", "pods": "110" },
                "capacity": { "cpu": "4", "memory": "8Gi", "pods": "110" },
                "addresses": [{ "type": "InternalIP", "address": format!("172.18.0.{}", i + 2) }, { "type": "Hostname", "address": node }],
                "nodeInfo": { "kubeletVersion": "v1.33.0-fake", "containerRuntimeVersion": "containerd://2.0.0", "operatingSystem": "linux", "architecture": "amd64" },
            });
            st.store.replace(resources::NODES, ready);
        }
    }
}

/// A running fake apiserver. Dropping it stops the server (open watches end).
pub struct FakeKube {
    shared: Arc<Shared>,
    stop: tokio::sync::watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
    /// The CA of a TLS server.
    ca_pem: Option<String>,
}

impl FakeKube {
    /// A server with every default.
    pub fn start() -> FakeKube {
        FakeKube::builder().start()
    }

    pub fn builder() -> Builder {
        Builder {
            knobs: Knobs {
                token: "fake-kube-token".into(),
                second: Duration::from_millis(10),
                ready_delay: Duration::from_millis(20),
                slow_delay: Duration::from_secs(5),
                termination_delay: Duration::from_millis(10),
                bookmark_interval: Duration::from_secs(1),
                watch_drop: None,
                behaviors: Vec::new(),
                logs: Vec::new(),
                faults: Vec::new(),
                paused: false,
                nodes: vec!["fake-node-1".into()],
                backends: Vec::new(),
            },
            history: 10_000,
            tls: false,
        }
    }

    /// `http://127.0.0.1:PORT`, or `https://` for a TLS server.
    pub fn url(&self) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}", self.shared.port)
    }

    /// The CA certificate (PEM) of a TLS server.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    pub fn token(&self) -> String {
        self.shared.lock().knobs.token.clone()
    }

    /// A kubeconfig with one cluster, one token user and one context (`fake-kube`, namespace
    /// `default`), current.
    pub fn kubeconfig_yaml(&self) -> String {
        self.kubeconfig_yaml_with("fake-kube", "default", &self.token())
    }

    /// A kubeconfig naming its context `context`, with `namespace` as the context's default and
    /// `token` as the credential (a wrong one gets 401).
    pub fn kubeconfig_yaml_with(&self, context: &str, namespace: &str, token: &str) -> String {
        let ca = self
            .ca_pem
            .as_ref()
            .map(|pem| {
                let data = base64::engine::general_purpose::STANDARD.encode(pem);
                format!("    certificate-authority-data: {data}\n")
            })
            .unwrap_or_default();
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {context}\n  cluster:\n    server: {url}\n{ca}\
             users:\n- name: {context}-user\n  user:\n    token: {token}\n\
             contexts:\n- name: {context}\n  context:\n    cluster: {context}\n    user: {context}-user\n    namespace: {namespace}\n\
             current-context: {context}\npreferences: {{}}\n",
            url = self.url()
        )
    }

    /// Writes [`FakeKube::kubeconfig_yaml`] to `dir/kubeconfig` and returns the path.
    ///
    /// # Panics
    /// When the file cannot be written.
    pub fn write_kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(&path, self.kubeconfig_yaml()).expect("write the kubeconfig");
        path
    }

    /// A `kube::Client` configured from the kubeconfig (installs the aws-lc-rs crypto
    /// provider, which kube's client setup needs even for plain HTTP).
    ///
    /// # Panics
    /// When the kubeconfig is rejected.
    pub async fn client(&self) -> kube::Client {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&self.kubeconfig_yaml())
            .expect("kubeconfig parses");
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("kubeconfig loads");
        kube::Client::try_from(config).expect("client builds")
    }

    /// A `kube::Client` whose requests reach the server's handler directly, in the caller's
    /// runtime, without a socket. For tests under `#[tokio::test(start_paused = true)]`: over a
    /// real connection the paused clock jumps ahead (to the client's read timeout) while the
    /// runtime waits for bytes; here every answer is ready when polled. What a request starts
    /// (a watch's stream and timeout) runs on the caller's clock; the controllers keep their
    /// own thread and real time.
    pub fn in_process_client(&self) -> kube::Client {
        kube::Client::new(server::InProcess(self.shared.clone()), "default")
    }

    /// Adds a fault while running.
    pub fn inject(&self, fault: Fault) {
        let times = fault.times();
        self.shared.lock().knobs.faults.push((fault, times));
    }

    pub fn clear_faults(&self) {
        self.shared.lock().knobs.faults.clear();
    }

    /// Ends watches opened from now on as given (`None`: never).
    pub fn set_watch_drop(&self, drop: Option<WatchDrop>) {
        self.shared.lock().knobs.watch_drop = drop;
    }

    /// Shrinks or grows the watch history window (see [`Builder::watch_history`]).
    pub fn set_watch_history(&self, limit: usize) {
        self.shared.lock().store.history_limit = limit;
    }

    /// Ends every open watch now, as a dropped connection would.
    pub fn drop_watches(&self) {
        self.shared.lock().store.close_watches();
    }

    pub fn set_pod_behavior(&self, image_substring: &str, behavior: Behavior) {
        self.shared
            .lock()
            .knobs
            .behaviors
            .push((image_substring.to_string(), behavior));
        self.shared.wake.notify_one();
    }

    pub fn set_pod_log(&self, image_substring: &str, text: &str) {
        self.shared
            .lock()
            .knobs
            .logs
            .push((image_substring.to_string(), text.to_string()));
    }

    /// Sends service proxy requests for the pods in `namespace` that `selector` matches (label
    /// selector syntax: `app=web,version=blue`, `track in (stable)`) to the HTTP server at
    /// `url` (`http://127.0.0.1:PORT`; only its host and port are used). The newest
    /// registration that matches a pod wins; a pod with none answers with a JSON echo of its
    /// name, image and labels (see `proxy.rs`).
    ///
    /// # Panics
    /// When `selector` does not parse.
    pub fn set_http_backend(&self, namespace: &str, selector: &str, url: &str) {
        let selector = selectors::LabelSelector::parse(selector)
            .unwrap_or_else(|e| panic!("set_http_backend: {selector:?}: {e}"));
        self.add_backend(namespace, state::PodMatch::Selected(selector), url);
    }

    /// [`FakeKube::set_http_backend`] for one pod, by name.
    pub fn set_pod_http_backend(&self, namespace: &str, pod: &str, url: &str) {
        self.add_backend(namespace, state::PodMatch::Named(pod.to_string()), url);
    }

    /// Forgets every HTTP backend: pods answer with the echo again.
    pub fn clear_http_backends(&self) {
        self.shared.lock().knobs.backends.clear();
    }

    fn add_backend(&self, namespace: &str, pods: state::PodMatch, url: &str) {
        self.shared.lock().knobs.backends.push(state::HttpBackend {
            namespace: namespace.to_string(),
            pods,
            url: url.to_string(),
        });
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// An object as stored (with `kind` and `apiVersion`). `kind` may be the kind, plural,
    /// singular or short name (`Deployment`, `deployments`, `deploy`); `ns` is ignored for
    /// cluster-scoped kinds.
    ///
    /// # Panics
    /// For a kind the server does not serve.
    pub fn get(&self, kind: &str, ns: &str, name: &str) -> Option<Value> {
        let rt = kind_index(kind);
        let ns = if resources::TYPES[rt].namespaced {
            ns
        } else {
            ""
        };
        self.shared.lock().store.get(rt, ns, name).cloned()
    }

    /// Objects of a kind, in one namespace or all.
    pub fn list(&self, kind: &str, ns: Option<&str>) -> Vec<Value> {
        self.shared.lock().store.list(kind_index(kind), ns)
    }

    /// Events about the object named `name` in `ns`, oldest first.
    pub fn events_for(&self, ns: &str, name: &str) -> Vec<Value> {
        self.list("Event", Some(ns))
            .into_iter()
            .filter(|e| e["involvedObject"]["name"] == name)
            .collect()
    }

    /// Creates or replaces an object directly (as manager `fake-kube`, through defaulting and
    /// validation); a `status` in it is stored too. For setting up a cluster's prior state.
    ///
    /// # Panics
    /// When the object is rejected; the Status says why.
    pub fn put(&self, obj: Value) -> Value {
        let api_version = obj["apiVersion"].as_str().unwrap_or_default();
        let kind = obj["kind"].as_str().unwrap_or_default();
        let rt = resources::by_kind(api_version, kind)
            .unwrap_or_else(|| panic!("fake-kube does not serve {api_version} {kind}"));
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let opts = WriteOpts::client("fake-kube", false);
        let mut st = self.shared.lock();
        let ns_key = if resources::TYPES[rt].namespaced {
            ns.as_str()
        } else {
            ""
        };
        let result = match st.store.get(rt, ns_key, &name).cloned() {
            Some(old) => registry::update(
                &mut st,
                rt,
                &old,
                obj.clone(),
                registry::main_part(rt),
                Ownership::Record {
                    manager: "fake-kube",
                    subresource: None,
                },
                &opts,
            ),
            None => registry::create(&mut st, rt, &ns, obj.clone(), &opts),
        };
        let mut stored =
            result.unwrap_or_else(|e| panic!("fake-kube rejected the object: {}", e.status));
        if !obj["status"].is_null() && resources::TYPES[rt].status_subresource {
            let old = stored.clone();
            stored = registry::update(
                &mut st,
                rt,
                &old,
                obj,
                fields::Part::Status,
                Ownership::Record {
                    manager: "fake-kube",
                    subresource: Some("status"),
                },
                &opts,
            )
            .unwrap_or_else(|e| panic!("fake-kube rejected the status: {}", e.status));
        }
        drop(st);
        self.shared.wake.notify_one();
        stored
    }

    /// Deletes an object directly (background propagation).
    pub fn delete(&self, kind: &str, ns: &str, name: &str) -> bool {
        let rt = kind_index(kind);
        let done = registry::delete(
            &mut self.shared.lock(),
            rt,
            ns,
            name,
            &DeleteOpts {
                propagation: Some(registry::Propagation::Background),
                ..DeleteOpts::default()
            },
        )
        .is_ok();
        self.shared.wake.notify_one();
        done
    }

    /// Every write to one object still in the watch history window, oldest first, with the
    /// instant it happened: for measuring how long a client takes to notice a change (e.g.
    /// from the Deployment status that completes a rollout to the binary's report).
    pub fn changes(&self, kind: &str, ns: &str, name: &str) -> Vec<Change> {
        let rt = kind_index(kind);
        let ns = if resources::TYPES[rt].namespaced {
            ns
        } else {
            ""
        };
        self.shared
            .lock()
            .store
            .changes_of(rt, ns, name)
            .into_iter()
            .map(|(at, kind, object)| Change {
                at,
                event: match kind {
                    store::ChangeKind::Added => "ADDED",
                    store::ChangeKind::Modified => "MODIFIED",
                    store::ChangeKind::Deleted => "DELETED",
                },
                object,
            })
            .collect()
    }

    /// The newest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().store.resource_version()
    }

    /// Stops the controllers (objects stay as they are; the API keeps serving).
    pub fn pause_controllers(&self) {
        self.shared.lock().knobs.paused = true;
    }

    pub fn resume_controllers(&self) {
        self.shared.lock().knobs.paused = false;
        self.shared.wake.notify_one();
    }

    /// Blocks until `done` holds or `timeout` passes; true when it held. For sync tests.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&FakeKube) -> bool) -> bool {
        let until = Instant::now() + timeout;
        loop {
            if done(self) {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// [`FakeKube::wait_for`] for async tests (does not block the test's runtime).
    pub async fn wait_for_async(
        &self,
        timeout: Duration,
        done: impl Fn(&FakeKube) -> bool,
    ) -> bool {
        let until = Instant::now() + timeout;
        loop {
            if done(self) {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops the server and waits for its thread.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.stop_now();
    }
}

fn kind_index(kind: &str) -> usize {
    resources::by_any_name(kind).unwrap_or_else(|| panic!("fake-kube does not serve {kind:?}"))
}
