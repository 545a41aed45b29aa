//! An in-process fake of GitHub's REST API for one repository: deployments and their statuses,
//! environments with protection rules and branch policies, users and teams, issue comments.
//! The product's `github` client (octocrab underneath) and the `promote` binary talk to it
//! unchanged through `GITHUB_API_URL`.
//!
//! ```ignore
//! let gh = FakeGitHub::builder("studysphere", "app")
//!     .token("admin-token", TokenKind::Admin)
//!     .team("qa", 11)
//!     .start();                          // own thread and runtime: sync or async tests
//! gh.url();                              // http://127.0.0.1:PORT, the API URL
//! gh.inject(Fault::status("POST", "/repos/studysphere/app/deployments", 500));
//! gh.requests();                         // what it received, with the token used
//! ```
//!
//! # Like GitHub
//! - Auth: `Authorization: Bearer <t>` or `token <t>` with a registered token, else 401 `Bad
//!   credentials` (`Requires authentication` without a header). [`TokenKind::WorkflowToken`]
//!   behaves like a workflow's `GITHUB_TOKEN`: deployments, statuses and comments are allowed;
//!   environment and branch-policy writes answer 403 `Resource not accessible by integration`
//!   with `x-accepted-github-permissions: administration=write`; team lookups answer 403 with
//!   `members=read` (the token has no organisation permissions).
//! - Every answer carries `x-ratelimit-{limit,remaining,reset,used,resource}` and
//!   `x-github-request-id`; lists page with `per_page` (default 30, at most 100) and `page`, and
//!   a `Link` header (`next`, `last`, `first`, `prev`).
//! - Bodies are type-checked the way GitHub's schema validation words it: 422 `Invalid
//!   request.\n\nFor 'properties/auto_merge', "yes" is not a boolean.`; business rules answer
//!   422 `Validation Failed` with `errors[]`.
//! - `POST /deployments`: `ref` resolved to a sha (a 40-hex sha is itself; branch and tag names
//!   from [`Builder::git_ref`]; else 422 `No ref found for: x`); with [`Builder::behind_default`]
//!   and `auto_merge` missing or true, 202 `Auto-merged main into topic branch.` (nothing
//!   created); with [`Builder::failing_contexts`] and `required_contexts` missing or naming
//!   one, 409 `Conflict: Commit status checks failed for <ref>.`.
//! - A `success` status with `auto_inactive` (default true) adds an `inactive` status to every
//!   other non-transient deployment of the environment whose latest status is `success`.
//! - `PUT /environments/{name}` validates `wait_timer` (0..=43200), `reviewers` (at most 6,
//!   `{type: User|Team, id}` of a known user or team) and `deployment_branch_policy` (null, or
//!   exactly one of `protected_branches`/`custom_branch_policies` true). Branch policies need
//!   custom policies on (else 404) and answer 303 for a duplicate pattern.
//!
//! - `GET /commits/{sha}` answers a commit seeded with [`FakeGitHub::seed_commit`] (author and
//!   committer dates, no files), else 422 `No commit found for SHA: x`.
//!
//! # Deliberately not like GitHub
//! One repository; no ETags or conditional requests; no commit statuses (the contexts that fail
//! are configured); timestamps are wall-clock seconds unless seeded
//! ([`FakeGitHub::seed_deployments`]); the rate-limit headers count down but never refuse (inject
//! a [`Fault`] for that); `GET` of environments is allowed to
//! every registered token; the `environment` parameter of a status does not move its
//! deployment.

mod server;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use serde_json::{Value, json};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Everything (a GitHub App installation token or PAT with administration write).
    Admin,
    /// Like a workflow's `GITHUB_TOKEN`: no administration, no organisation permissions.
    WorkflowToken,
}

/// An answer the server gives instead of serving the request, `times` times, to requests whose
/// method matches (`None`: any) and whose path starts with `path_prefix`.
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: Option<String>,
    pub path_prefix: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    pub times: usize,
    /// Close the connection without an answer instead.
    pub drop_connection: bool,
}

impl Fault {
    /// `status` with GitHub's error body for it.
    pub fn status(method: &str, path_prefix: &str, status: u16) -> Fault {
        let message = match status {
            500 => "Server Error",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            _ => "Error",
        };
        Fault {
            method: (!method.is_empty()).then(|| method.to_string()),
            path_prefix: path_prefix.to_string(),
            status,
            headers: Vec::new(),
            body: json!({ "message": message }),
            times: 1,
            drop_connection: false,
        }
    }

    /// 429 with `retry-after: seconds` (a secondary rate limit).
    pub fn retry_after(method: &str, path_prefix: &str, seconds: u64) -> Fault {
        Fault {
            body: json!({
                "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
            }),
            ..Fault::status(method, path_prefix, 429)
        }
        .header("retry-after", &seconds.to_string())
    }

    /// 403 with `x-ratelimit-remaining: 0` and the reset `seconds` from now (the primary rate
    /// limit used up).
    pub fn rate_limit_exhausted(method: &str, path_prefix: &str, seconds: u64) -> Fault {
        let reset = server::now() + seconds;
        Fault {
            body: json!({
                "message": "API rate limit exceeded for installation ID 1.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
            }),
            ..Fault::status(method, path_prefix, 403)
        }
        .header("x-ratelimit-remaining", "0")
        .header("x-ratelimit-reset", &reset.to_string())
    }

    /// The connection closes without an answer.
    pub fn drop_connection(method: &str, path_prefix: &str) -> Fault {
        Fault {
            drop_connection: true,
            ..Fault::status(method, path_prefix, 0)
        }
    }

    pub fn times(mut self, times: usize) -> Fault {
        self.times = times;
        self
    }

    /// A header of the answer; it replaces a default one of the same name.
    pub fn header(mut self, name: &str, value: &str) -> Fault {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, body: Value) -> Fault {
        self.body = body;
        self
    }
}

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// The path, not decoded.
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    /// The body as JSON (`Null` when empty or not JSON).
    pub body: Value,
    /// The token from `Authorization`, if any.
    pub token: Option<String>,
    /// The status answered (0 for a dropped connection).
    pub status: u16,
}

/// A deployment with its statuses, newest status first.
#[derive(Debug, Clone)]
pub struct DeploymentRecord {
    /// The deployment as GitHub returns it.
    pub json: Value,
    pub statuses: Vec<Value>,
}

impl DeploymentRecord {
    pub fn id(&self) -> u64 {
        self.json["id"].as_u64().expect("id")
    }

    pub fn environment(&self) -> &str {
        self.json["environment"].as_str().unwrap_or_default()
    }

    /// The states of the statuses, newest first.
    pub fn states(&self) -> Vec<String> {
        self.statuses
            .iter()
            .map(|s| s["state"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// The newest status's state, `None` without statuses.
    pub fn state(&self) -> Option<String> {
        self.states().into_iter().next()
    }
}

/// A commit as `GET /commits/{sha}` reports it.
#[derive(Debug, Clone)]
pub struct CommitRecord {
    /// RFC 3339, like GitHub's `commit.committer.date`.
    pub committed_at: String,
    pub authored_at: String,
    pub message: String,
}

/// A deployment as it would be after its life: created at `created_at` with `statuses`
/// (oldest first, as they were posted), for [`FakeGitHub::seed_deployments`].
#[derive(Debug, Clone)]
pub struct SeededDeployment {
    pub environment: String,
    /// The commit deployed (40 hex).
    pub sha: String,
    /// `{}` for GitHub's own job deployments; `promote run`'s records name the release.
    pub payload: Value,
    /// GitHub's flag; by default true for an environment named `production`.
    pub production_environment: Option<bool>,
    pub created_at: String,
    /// `(state, description, created_at)`, oldest first.
    pub statuses: Vec<(String, String, String)>,
}

/// A reviewer of an environment as stored.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reviewer {
    User(u64),
    Team(u64),
}

/// An environment's settings as stored.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EnvironmentRecord {
    pub id: u64,
    pub name: String,
    pub wait_timer: u64,
    pub prevent_self_review: bool,
    pub reviewers: Vec<Reviewer>,
    /// `None`: any branch; `Some((protected_branches, custom_branch_policies))`.
    pub branch_policy: Option<(bool, bool)>,
    /// Custom policies: (id, name, type).
    pub policies: Vec<(u64, String, String)>,
    pub created_at: String,
    pub updated_at: String,
}

impl EnvironmentRecord {
    /// The names of the custom branch policies, sorted.
    pub fn policy_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.policies.iter().map(|p| p.1.clone()).collect();
        names.sort();
        names
    }
}

/// An issue comment as stored.
#[derive(Debug, Clone)]
pub struct CommentRecord {
    pub id: u64,
    pub issue: u64,
    pub body: String,
    pub html_url: String,
}

/// Everything behind the server's one mutex.
pub(crate) struct State {
    pub owner: String,
    pub repo: String,
    pub default_branch: String,
    pub tokens: BTreeMap<String, TokenKind>,
    pub users: BTreeMap<String, u64>,
    pub teams: BTreeMap<String, u64>,
    pub refs: BTreeMap<String, String>,
    pub behind_default: bool,
    pub failing_contexts: Vec<String>,
    pub deployments: Vec<DeploymentRecord>,
    pub environments: BTreeMap<String, EnvironmentRecord>,
    pub comments: Vec<CommentRecord>,
    /// By sha.
    pub commits: BTreeMap<String, CommitRecord>,
    pub faults: Vec<Fault>,
    pub requests: Vec<RecordedRequest>,
    pub next_id: u64,
    pub port: u16,
}

impl State {
    pub fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn server_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

pub(crate) struct Shared {
    state: Mutex<State>,
}

impl Shared {
    /// Locks the state; a panicking handler must not hide later failures behind poisoning.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Settings for [`FakeGitHub`].
pub struct Builder {
    owner: String,
    repo: String,
    default_branch: String,
    tokens: BTreeMap<String, TokenKind>,
    users: BTreeMap<String, u64>,
    teams: BTreeMap<String, u64>,
    refs: BTreeMap<String, String>,
    behind_default: bool,
    failing_contexts: Vec<String>,
    faults: Vec<Fault>,
}

impl Builder {
    pub fn token(mut self, token: &str, kind: TokenKind) -> Builder {
        self.tokens.insert(token.to_string(), kind);
        self
    }

    pub fn user(mut self, login: &str, id: u64) -> Builder {
        self.users.insert(login.to_string(), id);
        self
    }

    /// A team of the repository's owner organisation.
    pub fn team(mut self, slug: &str, id: u64) -> Builder {
        self.teams.insert(slug.to_string(), id);
        self
    }

    /// A branch or tag name and the sha it points at.
    pub fn git_ref(mut self, name: &str, sha: &str) -> Builder {
        self.refs.insert(name.to_string(), sha.to_string());
        self
    }

    /// The default branch (default `main`), named in the auto-merge answer.
    pub fn default_branch(mut self, name: &str) -> Builder {
        self.default_branch = name.to_string();
        self
    }

    /// Every ref is behind the default branch: `POST /deployments` without `auto_merge: false`
    /// answers 202.
    pub fn behind_default(mut self) -> Builder {
        self.behind_default = true;
        self
    }

    /// Commit status contexts that fail for every ref.
    pub fn failing_contexts(mut self, contexts: &[&str]) -> Builder {
        self.failing_contexts = contexts.iter().map(|c| c.to_string()).collect();
        self
    }

    pub fn fault(mut self, fault: Fault) -> Builder {
        self.faults.push(fault);
        self
    }

    /// Binds `127.0.0.1:0` and serves from a thread of its own.
    ///
    /// # Panics
    /// When no port can be bound or the runtime cannot start.
    pub fn start(self) -> FakeGitHub {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let port = listener.local_addr().expect("bound address").port();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                owner: self.owner,
                repo: self.repo,
                default_branch: self.default_branch,
                tokens: self.tokens,
                users: self.users,
                teams: self.teams,
                refs: self.refs,
                behind_default: self.behind_default,
                failing_contexts: self.failing_contexts,
                deployments: Vec::new(),
                environments: BTreeMap::new(),
                comments: Vec::new(),
                commits: BTreeMap::new(),
                faults: self.faults,
                requests: Vec::new(),
                next_id: 1000,
                port,
            }),
        });
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fake-github-{port}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    server::serve(listener, thread_shared, stop_rx).await;
                });
            })
            .expect("spawn the fake-github thread");
        FakeGitHub {
            shared,
            stop: stop_tx,
            thread: Some(thread),
            port,
        }
    }
}

/// A running fake GitHub API. Dropping it stops the server.
pub struct FakeGitHub {
    shared: Arc<Shared>,
    stop: tokio::sync::watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
    port: u16,
}

impl FakeGitHub {
    /// A fake for `owner/repo` with nothing registered.
    pub fn builder(owner: &str, repo: &str) -> Builder {
        Builder {
            owner: owner.to_string(),
            repo: repo.to_string(),
            default_branch: "main".into(),
            tokens: BTreeMap::new(),
            users: BTreeMap::new(),
            teams: BTreeMap::new(),
            refs: BTreeMap::new(),
            behind_default: false,
            failing_contexts: Vec::new(),
            faults: Vec::new(),
        }
    }

    /// `http://127.0.0.1:PORT`: the API URL, and the server URL in links it makes.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Queues a fault (see [`Fault`]).
    pub fn inject(&self, fault: Fault) {
        self.shared.lock().faults.push(fault);
    }

    pub fn set_behind_default(&self, behind: bool) {
        self.shared.lock().behind_default = behind;
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// The requests whose method is `method` and whose path starts with `path_prefix`.
    pub fn requests_to(&self, method: &str, path_prefix: &str) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method && r.path.starts_with(path_prefix))
            .collect()
    }

    /// The requests that changed something (anything but GET).
    pub fn writes(&self) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.method != "GET")
            .collect()
    }

    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// All deployments, newest first.
    pub fn deployments(&self) -> Vec<DeploymentRecord> {
        let mut all = self.shared.lock().deployments.clone();
        all.reverse();
        all
    }

    pub fn deployment(&self, id: u64) -> Option<DeploymentRecord> {
        self.deployments().into_iter().find(|d| d.id() == id)
    }

    pub fn environment(&self, name: &str) -> Option<EnvironmentRecord> {
        self.shared.lock().environments.get(name).cloned()
    }

    pub fn environments(&self) -> Vec<EnvironmentRecord> {
        self.shared.lock().environments.values().cloned().collect()
    }

    /// Creates or replaces an environment directly (no request is logged).
    pub fn seed_environment(&self, mut env: EnvironmentRecord) {
        let mut st = self.shared.lock();
        if env.id == 0 {
            env.id = st.id();
        }
        for policy in &mut env.policies {
            if policy.0 == 0 {
                policy.0 = st.id();
            }
        }
        if env.created_at.is_empty() {
            env.created_at = server::timestamp();
            env.updated_at = env.created_at.clone();
        }
        st.environments.insert(env.name.clone(), env);
    }

    /// The comments on issue or pull request `issue`, oldest first.
    pub fn comments(&self, issue: u64) -> Vec<CommentRecord> {
        self.shared
            .lock()
            .comments
            .iter()
            .filter(|c| c.issue == issue)
            .cloned()
            .collect()
    }

    /// What GitHub does when a job declares `environment:`: a deployment of `sha` to
    /// `environment` by `github-actions[bot]` (task `deploy`, payload `{}`), with an
    /// `in_progress` status whose log and target URLs are the job's page in run `run_id`.
    /// Returns the deployment id.
    pub fn create_job_deployment(&self, environment: &str, sha: &str, run_id: &str) -> u64 {
        let mut st = self.shared.lock();
        let id = server::insert_deployment(
            &mut st,
            server::BOT,
            json!({
                "ref": sha,
                "task": "deploy",
                "payload": {},
                "environment": environment,
                "description": null,
                "transient_environment": false,
                "production_environment": false,
            }),
            sha.to_string(),
        );
        let log_url = format!(
            "{}/{}/{}/actions/runs/{run_id}/job/1",
            st.server_url(),
            st.owner,
            st.repo
        );
        server::insert_status(
            &mut st,
            id,
            server::BOT,
            json!({ "state": "in_progress", "log_url": log_url, "target_url": log_url }),
        );
        id
    }

    /// Stores a history of deployments directly (no request is logged): sorted by creation time
    /// first, since GitHub's ids grow with time and its lists are newest first by id; each gets
    /// its statuses with their own times. Returns the ids in the order given.
    ///
    /// # Panics
    /// When the fake already holds a deployment created after the oldest one given (ids would
    /// no longer follow time).
    pub fn seed_deployments(&self, seeds: Vec<SeededDeployment>) -> Vec<u64> {
        let mut order: Vec<usize> = (0..seeds.len()).collect();
        order.sort_by(|a, b| seeds[*a].created_at.cmp(&seeds[*b].created_at));
        let mut ids = vec![0; seeds.len()];
        let mut st = self.shared.lock();
        if let (Some(newest), Some(&first)) = (st.deployments.last(), order.first()) {
            let newest = newest.json["created_at"].as_str().unwrap_or_default();
            assert!(
                newest <= seeds[first].created_at.as_str(),
                "seeded deployments must be newer than those already stored ({newest})"
            );
        }
        for index in order {
            let seed = &seeds[index];
            let mut body = json!({
                "ref": seed.sha,
                "task": "deploy",
                "payload": seed.payload,
                "environment": seed.environment,
                "description": null,
                "transient_environment": false,
            });
            if let Some(flag) = seed.production_environment {
                body["production_environment"] = json!(flag);
            }
            let id = server::insert_deployment(&mut st, server::BOT, body, seed.sha.clone());
            let record = st.deployments.last_mut().expect("just inserted");
            record.json["created_at"] = json!(seed.created_at);
            record.json["updated_at"] = json!(seed.created_at);
            for (state, description, at) in &seed.statuses {
                server::insert_status(
                    &mut st,
                    id,
                    server::BOT,
                    json!({ "state": state, "description": description }),
                );
                // Statuses are stored newest first: the one just added is the first.
                let stored = &mut st.deployments.last_mut().expect("just inserted").statuses[0];
                stored["created_at"] = json!(at);
                stored["updated_at"] = json!(at);
            }
            ids[index] = id;
        }
        ids
    }

    /// Stores a commit for `GET /commits/{sha}` (no request is logged).
    pub fn seed_commit(&self, sha: &str, committed_at: &str, authored_at: &str) {
        self.shared.lock().commits.insert(
            sha.to_lowercase(),
            CommitRecord {
                committed_at: committed_at.to_string(),
                authored_at: authored_at.to_string(),
                message: format!("change {}", &sha[..sha.len().min(7)]),
            },
        );
    }

    /// Adds a status to a deployment directly, as its creator would (no request is logged, and
    /// `auto_inactive` is not applied).
    pub fn add_status(&self, deployment: u64, state: &str, log_url: Option<&str>) {
        let mut st = self.shared.lock();
        let mut body = json!({ "state": state });
        if let Some(url) = log_url {
            body["log_url"] = json!(url);
            body["target_url"] = json!(url);
        }
        server::insert_status(&mut st, deployment, server::BOT, body);
    }
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
