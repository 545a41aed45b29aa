//! The HTTP face: hyper on 127.0.0.1, token auth, injected faults, the request log, rate-limit
//! headers, and routing on (method, path segments) to GitHub's endpoints.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::{
    CommentRecord, DeploymentRecord, EnvironmentRecord, Fault, RecordedRequest, Reviewer, Shared,
    State, TokenKind,
};

/// Who a token acts as: `(login, id, type)`.
pub type Actor = (&'static str, u64, &'static str);
pub const BOT: Actor = ("github-actions[bot]", 41898282, "Bot");
const ADMIN: Actor = ("promote-admin", 9001, "User");

const RATE_LIMIT: u64 = 5000;
const DOCS: &str = "https://docs.github.com/rest";

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// Now as GitHub writes times: `2024-05-01T12:00:00Z`.
pub fn timestamp() -> String {
    let secs = now();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut stop_accept = stop.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let shared = shared.clone();
                let mut stop = stop.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(shared.clone(), req));
                    let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = conn => {}
                        _ = stop.changed() => {}
                    }
                });
            }
            _ = stop_accept.changed() => return,
        }
    }
}

/// What a handler answers.
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Option<Value>,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Some(body),
        }
    }

    fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: None,
        }
    }

    fn header(mut self, name: &str, value: String) -> Reply {
        self.headers.push((name.to_string(), value));
        self
    }

    fn not_found() -> Reply {
        Reply::json(
            404,
            json!({ "message": "Not Found", "documentation_url": DOCS, "status": "404" }),
        )
    }

    /// GitHub's schema-validation answer.
    fn invalid(detail: String) -> Reply {
        Reply::json(
            422,
            json!({
                "message": format!("Invalid request.\n\n{detail}"),
                "documentation_url": DOCS,
                "status": "422",
            }),
        )
    }

    /// GitHub's business-rule answer.
    fn validation_failed(resource: &str, field: &str, message: &str) -> Reply {
        Reply::json(
            422,
            json!({
                "message": "Validation Failed",
                "errors": [{ "resource": resource, "code": "custom", "field": field, "message": message }],
                "documentation_url": DOCS,
                "status": "422",
            }),
        )
    }

    fn forbidden(permission: &str) -> Reply {
        Reply::json(
            403,
            json!({
                "message": "Resource not accessible by integration",
                "documentation_url": DOCS,
                "status": "403",
            }),
        )
        .header("x-accepted-github-permissions", permission.to_string())
    }
}

/// The parts of a request handlers look at.
pub struct Req {
    method: String,
    /// Decoded path segments.
    segments: Vec<String>,
    path: String,
    query: Vec<(String, String)>,
    body: Value,
    /// The body was not JSON.
    malformed: bool,
    kind: TokenKind,
}

impl Req {
    fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn actor(&self) -> Actor {
        match self.kind {
            TokenKind::Admin => ADMIN,
            TokenKind::WorkflowToken => BOT,
        }
    }
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let authorization = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let raw_query = req.uri().query().unwrap_or_default().to_string();
    let bytes = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let (body, malformed) = if bytes.iter().all(u8::is_ascii_whitespace) {
        (Value::Null, false)
    } else {
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) => (v, false),
            Err(_) => (Value::Null, true),
        }
    };
    let token = authorization
        .strip_prefix("Bearer ")
        .or_else(|| authorization.strip_prefix("token "))
        .map(|t| t.trim().to_string());

    let mut st = shared.lock();
    let index = st.requests.len();
    st.requests.push(RecordedRequest {
        method: method.clone(),
        path: path.clone(),
        query: raw_query.clone(),
        body: body.clone(),
        token: token.clone(),
        status: 0,
    });
    let kind = token.as_ref().and_then(|t| st.tokens.get(t).copied());
    let reply = if let Some(fault) = take_fault(&mut st, &method, &path) {
        if fault.drop_connection {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "fault injected: connection dropped",
            ));
        }
        let mut reply = Reply::json(fault.status, fault.body.clone());
        reply.headers = fault.headers.clone();
        reply
    } else {
        match kind {
            None if token.is_none() => Reply::json(
                401,
                json!({ "message": "Requires authentication", "documentation_url": DOCS, "status": "401" }),
            ),
            None => Reply::json(
                401,
                json!({ "message": "Bad credentials", "documentation_url": DOCS, "status": "401" }),
            ),
            Some(kind) => {
                let r = Req {
                    method: method.clone(),
                    segments: path
                        .split('/')
                        .filter(|s| !s.is_empty())
                        .map(percent_decode)
                        .collect(),
                    path: path.clone(),
                    query: parse_query(&raw_query),
                    body,
                    malformed,
                    kind,
                };
                if r.malformed {
                    Reply::json(
                        400,
                        json!({ "message": "Problems parsing JSON", "documentation_url": DOCS, "status": "400" }),
                    )
                } else {
                    route(&mut st, &r)
                }
            }
        }
    };
    st.requests[index].status = reply.status;
    let used = st.requests.len() as u64;
    let mut response = Response::new(Full::new(
        reply
            .body
            .as_ref()
            .map(|b| Bytes::from(b.to_string()))
            .unwrap_or_default(),
    ));
    *response.status_mut() = hyper::StatusCode::from_u16(reply.status).expect("valid status");
    let mut headers: Vec<(String, String)> = vec![
        (
            "content-type".into(),
            "application/json; charset=utf-8".into(),
        ),
        ("x-ratelimit-limit".into(), RATE_LIMIT.to_string()),
        (
            "x-ratelimit-remaining".into(),
            RATE_LIMIT.saturating_sub(used).to_string(),
        ),
        ("x-ratelimit-reset".into(), (now() + 3600).to_string()),
        ("x-ratelimit-used".into(), used.to_string()),
        ("x-ratelimit-resource".into(), "core".into()),
        (
            "x-github-request-id".into(),
            format!("FAKE:{:04X}:{:06X}", st.port, index),
        ),
        ("x-github-api-version-selected".into(), "2022-11-28".into()),
    ];
    for (name, value) in reply.headers {
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        headers.push((name, value));
    }
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(&value),
        ) {
            response.headers_mut().append(n, v);
        }
    }
    Ok(response)
}

/// The first queued fault matching the request; spends one of its times.
fn take_fault(st: &mut State, method: &str, path: &str) -> Option<Fault> {
    let i = st.faults.iter().position(|f| {
        f.times > 0
            && f.method.as_deref().is_none_or(|m| m == method)
            && path.starts_with(&f.path_prefix)
    })?;
    st.faults[i].times -= 1;
    let fault = st.faults[i].clone();
    if st.faults[i].times == 0 {
        st.faults.remove(i);
    }
    Some(fault)
}

fn route(st: &mut State, r: &Req) -> Reply {
    let s: Vec<&str> = r.segments.iter().map(String::as_str).collect();
    let m = r.method.as_str();
    match (m, s.as_slice()) {
        ("GET", ["users", login]) => match st.users.get(*login) {
            Some(id) => Reply::json(200, account(login, *id, "User")),
            None => Reply::not_found(),
        },
        ("GET", ["orgs", org, "teams", slug]) => {
            if *org != st.owner {
                return Reply::not_found();
            }
            if r.kind == TokenKind::WorkflowToken {
                return Reply::forbidden("members=read");
            }
            match st.teams.get(*slug) {
                Some(id) => Reply::json(
                    200,
                    json!({ "id": id, "node_id": format!("T_{id}"), "slug": slug, "name": slug,
                            "privacy": "closed", "permission": "pull" }),
                ),
                None => Reply::not_found(),
            }
        }
        (_, ["repos", owner, repo, rest @ ..]) => {
            if *owner != st.owner || *repo != st.repo {
                return Reply::not_found();
            }
            route_repo(st, r, m, rest)
        }
        _ => Reply::not_found(),
    }
}

fn route_repo(st: &mut State, r: &Req, m: &str, rest: &[&str]) -> Reply {
    match (m, rest) {
        ("POST", ["deployments"]) => create_deployment(st, r),
        ("GET", ["deployments"]) => list_deployments(st, r),
        ("GET", ["commits", reference]) => get_commit(st, reference),
        ("GET", ["deployments", id]) => match find_deployment(st, id) {
            Some(i) => Reply::json(200, st.deployments[i].json.clone()),
            None => Reply::not_found(),
        },
        ("POST", ["deployments", id, "statuses"]) => match find_deployment(st, id) {
            Some(i) => create_status(st, r, i),
            None => Reply::not_found(),
        },
        ("GET", ["deployments", id, "statuses"]) => match find_deployment(st, id) {
            Some(i) => {
                let all = st.deployments[i].statuses.clone();
                page(st, r, all, Value::Array)
            }
            None => Reply::not_found(),
        },
        ("GET", ["environments"]) => {
            let all: Vec<Value> = st
                .environments
                .values()
                .map(|e| environment_json(st, e))
                .collect();
            let total = all.len();
            page(
                st,
                r,
                all,
                |items| json!({ "total_count": total, "environments": items }),
            )
        }
        ("GET", ["environments", name]) => match st.environments.get(*name) {
            Some(e) => Reply::json(200, environment_json(st, e)),
            None => Reply::not_found(),
        },
        ("PUT", ["environments", name]) => put_environment(st, r, name),
        ("DELETE", ["environments", name]) => {
            if r.kind == TokenKind::WorkflowToken {
                return Reply::forbidden("administration=write");
            }
            match st.environments.remove(*name) {
                Some(_) => Reply::empty(204),
                None => Reply::not_found(),
            }
        }
        ("GET", ["environments", name, "deployment-branch-policies"]) => {
            let Some(env) = st.environments.get(*name) else {
                return Reply::not_found();
            };
            let all: Vec<Value> = env.policies.iter().map(policy_json).collect();
            let total = all.len();
            page(
                st,
                r,
                all,
                |items| json!({ "total_count": total, "branch_policies": items }),
            )
        }
        ("POST", ["environments", name, "deployment-branch-policies"]) => {
            create_policy(st, r, name)
        }
        ("GET", ["environments", name, "deployment-branch-policies", id]) => {
            let policy = st
                .environments
                .get(*name)
                .and_then(|e| e.policies.iter().find(|p| p.0.to_string() == *id));
            match policy {
                Some(p) => Reply::json(200, policy_json(p)),
                None => Reply::not_found(),
            }
        }
        ("DELETE", ["environments", name, "deployment-branch-policies", id]) => {
            if r.kind == TokenKind::WorkflowToken {
                return Reply::forbidden("administration=write");
            }
            let Some(env) = st.environments.get_mut(*name) else {
                return Reply::not_found();
            };
            let before = env.policies.len();
            env.policies.retain(|p| p.0.to_string() != *id);
            if env.policies.len() == before {
                Reply::not_found()
            } else {
                Reply::empty(204)
            }
        }
        ("GET", ["issues", n, "comments"]) => {
            let Ok(n) = n.parse::<u64>() else {
                return Reply::not_found();
            };
            let all: Vec<Value> = st
                .comments
                .iter()
                .filter(|c| c.issue == n)
                .map(|c| comment_json(st, c))
                .collect();
            page(st, r, all, Value::Array)
        }
        ("POST", ["issues", n, "comments"]) => {
            let Ok(n) = n.parse::<u64>() else {
                return Reply::not_found();
            };
            let Some(body) = required_string(&r.body, "body") else {
                return body_error(&r.body, "body");
            };
            let id = st.id();
            let comment = CommentRecord {
                id,
                issue: n,
                body,
                html_url: format!(
                    "{}/{}/{}/pull/{n}#issuecomment-{id}",
                    st.server_url(),
                    st.owner,
                    st.repo
                ),
            };
            let json = comment_json(st, &comment);
            st.comments.push(comment);
            Reply::json(201, json)
        }
        ("GET" | "PATCH", ["issues", "comments", id]) => {
            let Some(i) = st.comments.iter().position(|c| c.id.to_string() == *id) else {
                return Reply::not_found();
            };
            if m == "PATCH" {
                let Some(body) = required_string(&r.body, "body") else {
                    return body_error(&r.body, "body");
                };
                st.comments[i].body = body;
            }
            let comment = st.comments[i].clone();
            Reply::json(200, comment_json(st, &comment))
        }
        _ => Reply::not_found(),
    }
}

fn account(login: &str, id: u64, kind: &str) -> Value {
    json!({ "login": login, "id": id, "node_id": format!("U_{id}"), "type": kind,
            "site_admin": false, "html_url": format!("https://github.com/{login}") })
}

fn actor_json((login, id, kind): Actor) -> Value {
    account(login, id, kind)
}

// ---------- body checks, worded like GitHub's schema validation ----------

fn type_name(v: &Value) -> String {
    v.to_string()
}

/// `For 'properties/x', 5 is not a string.`
fn not_a(prop: &str, value: &Value, what: &str) -> Reply {
    Reply::invalid(format!(
        "For 'properties/{prop}', {} is not {what}.",
        type_name(value)
    ))
}

fn required_string(body: &Value, key: &str) -> Option<String> {
    body.get(key).and_then(Value::as_str).map(str::to_string)
}

/// The error for a missing or mistyped required string.
fn body_error(body: &Value, key: &str) -> Reply {
    match body.get(key) {
        None | Some(Value::Null) => Reply::invalid(format!("\"{key}\" wasn't supplied.")),
        Some(v) => not_a(key, v, "a string"),
    }
}

/// Checks optional fields: `(name, kinds)` where kinds is a list of accepted JSON types.
fn check_types(body: &Value, fields: &[(&str, &[&str])]) -> Result<(), Reply> {
    if !body.is_object() {
        return Err(Reply::invalid(format!(
            "{} is not an object.",
            type_name(body)
        )));
    }
    for (name, kinds) in fields {
        let Some(v) = body.get(*name) else { continue };
        let ok = kinds.iter().any(|k| match *k {
            "string" => v.is_string(),
            "boolean" => v.is_boolean(),
            "integer" => v.is_u64() || v.is_i64(),
            "object" => v.is_object(),
            "array" => v.is_array(),
            "null" => v.is_null(),
            _ => false,
        });
        if !ok {
            let what = kinds
                .iter()
                .map(|k| match *k {
                    "integer" | "object" | "array" => format!("an {k}"),
                    "null" => "null".to_string(),
                    k => format!("a {k}"),
                })
                .collect::<Vec<_>>()
                .join(" or ");
            return Err(not_a(name, v, &what));
        }
    }
    Ok(())
}

// ---------- deployments ----------

/// Deployments are stored in creation order and ids only grow, so the list is sorted by id.
fn find_deployment(st: &State, id: &str) -> Option<usize> {
    let id: u64 = id.parse().ok()?;
    st.deployments
        .binary_search_by_key(&id, DeploymentRecord::id)
        .ok()
}

fn is_sha(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn create_deployment(st: &mut State, r: &Req) -> Reply {
    if let Err(reply) = check_types(
        &r.body,
        &[
            ("ref", &["string"]),
            ("task", &["string"]),
            ("auto_merge", &["boolean"]),
            ("required_contexts", &["array"]),
            ("payload", &["object", "string"]),
            ("environment", &["string"]),
            ("description", &["string", "null"]),
            ("transient_environment", &["boolean"]),
            ("production_environment", &["boolean"]),
        ],
    ) {
        return reply;
    }
    let Some(git_ref) = required_string(&r.body, "ref") else {
        return body_error(&r.body, "ref");
    };
    if let Some(contexts) = r.body.get("required_contexts").and_then(Value::as_array)
        && let Some(bad) = contexts.iter().find(|c| !c.is_string())
    {
        return not_a("required_contexts/items", bad, "a string");
    }
    let sha = if is_sha(&git_ref) {
        git_ref.to_lowercase()
    } else {
        let name = git_ref
            .strip_prefix("refs/heads/")
            .or_else(|| git_ref.strip_prefix("refs/tags/"))
            .unwrap_or(&git_ref);
        match st.refs.get(name) {
            Some(sha) => sha.clone(),
            None => {
                return Reply::json(
                    422,
                    json!({ "message": format!("No ref found for: {git_ref}"), "documentation_url": DOCS, "status": "422" }),
                );
            }
        }
    };
    let auto_merge = r
        .body
        .get("auto_merge")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    if auto_merge && st.behind_default {
        return Reply::json(
            202,
            json!({ "message": format!("Auto-merged {} into topic branch.", st.default_branch) }),
        );
    }
    let required: Vec<String> = match r.body.get("required_contexts").and_then(Value::as_array) {
        Some(list) => list
            .iter()
            .filter_map(|c| c.as_str().map(str::to_string))
            .collect(),
        None => st.failing_contexts.clone(),
    };
    let failing: Vec<&String> = st
        .failing_contexts
        .iter()
        .filter(|c| required.contains(c))
        .collect();
    if !failing.is_empty() {
        let errors: Vec<Value> = failing
            .iter()
            .map(|c| json!({ "contexts": [{ "context": c, "state": "failure" }], "resource": "Deployment", "field": "required_contexts", "code": "invalid" }))
            .collect();
        return Reply::json(
            409,
            json!({
                "message": format!("Conflict: Commit status checks failed for {git_ref}."),
                "errors": errors,
                "documentation_url": DOCS,
                "status": "409",
            }),
        );
    }
    let actor = r.actor();
    let id = insert_deployment(st, actor, r.body.clone(), sha);
    let json = st.deployments.last().expect("just inserted").json.clone();
    debug_assert_eq!(json["id"], id);
    Reply::json(201, json)
}

/// Stores a deployment made from a validated request body; returns its id.
pub fn insert_deployment(st: &mut State, actor: Actor, body: Value, sha: String) -> u64 {
    let id = st.id();
    let environment = body
        .get("environment")
        .and_then(Value::as_str)
        .unwrap_or("production")
        .to_string();
    let production = body
        .get("production_environment")
        .and_then(Value::as_bool)
        .unwrap_or(environment == "production");
    let api = format!("{}/repos/{}/{}", st.server_url(), st.owner, st.repo);
    let now = timestamp();
    let json = json!({
        "url": format!("{api}/deployments/{id}"),
        "id": id,
        "node_id": format!("DE_{id}"),
        "sha": sha,
        "ref": body["ref"],
        "task": body.get("task").and_then(Value::as_str).unwrap_or("deploy"),
        "payload": body.get("payload").cloned().unwrap_or(json!({})),
        "original_environment": environment,
        "environment": environment,
        "description": body.get("description").cloned().unwrap_or(Value::Null),
        "creator": actor_json(actor),
        "created_at": now,
        "updated_at": now,
        "statuses_url": format!("{api}/deployments/{id}/statuses"),
        "repository_url": api,
        "transient_environment": body.get("transient_environment").and_then(Value::as_bool).unwrap_or(false),
        "production_environment": production,
    });
    st.deployments.push(DeploymentRecord {
        json,
        statuses: Vec::new(),
    });
    id
}

fn list_deployments(st: &State, r: &Req) -> Reply {
    let matches = |d: &DeploymentRecord, key: &str, field: &str| {
        r.param(key)
            .is_none_or(|want| d.json[field].as_str() == Some(want))
    };
    let all: Vec<&DeploymentRecord> = st
        .deployments
        .iter()
        .rev()
        .filter(|d| {
            matches(d, "sha", "sha")
                && matches(d, "ref", "ref")
                && matches(d, "task", "task")
                && matches(d, "environment", "environment")
        })
        .collect();
    // Only the page is copied: a seeded history of thousands is listed in 100s.
    page_of(st, r, all.len(), |range| {
        Value::Array(all[range].iter().map(|d| d.json.clone()).collect())
    })
}

/// `GET /repos/{o}/{r}/commits/{ref}` for a seeded commit (by sha or a ref naming it): the
/// parts of GitHub's answer a client reads, with an empty file list.
fn get_commit(st: &State, reference: &str) -> Reply {
    let sha = st
        .refs
        .get(reference)
        .map_or(reference.to_lowercase(), Clone::clone);
    let Some(commit) = st.commits.get(&sha) else {
        // What GitHub answers for a sha or ref it has no commit for.
        return Reply::json(
            422,
            json!({ "message": format!("No commit found for SHA: {reference}"),
                    "documentation_url": DOCS, "status": "422" }),
        );
    };
    let api = format!("{}/repos/{}/{}", st.server_url(), st.owner, st.repo);
    let signature = |date: &str| json!({ "name": "Dev", "email": "dev@example.com", "date": date });
    Reply::json(
        200,
        json!({
            "sha": sha,
            "node_id": format!("C_{sha}"),
            "url": format!("{api}/commits/{sha}"),
            "html_url": format!("{}/{}/{}/commit/{sha}", st.server_url(), st.owner, st.repo),
            "commit": {
                "author": signature(&commit.authored_at),
                "committer": signature(&commit.committed_at),
                "message": commit.message,
                "tree": { "sha": "4b825dc642cb6eb9a060e54bf8d69288fbee4904" },
                "comment_count": 0,
            },
            "author": null,
            "committer": null,
            "parents": [],
            "stats": { "total": 0, "additions": 0, "deletions": 0 },
            "files": [],
        }),
    )
}

const STATES: [&str; 7] = [
    "error",
    "failure",
    "inactive",
    "in_progress",
    "queued",
    "pending",
    "success",
];

fn create_status(st: &mut State, r: &Req, index: usize) -> Reply {
    if let Err(reply) = check_types(
        &r.body,
        &[
            ("state", &["string"]),
            ("target_url", &["string"]),
            ("log_url", &["string"]),
            ("description", &["string"]),
            ("environment", &["string"]),
            ("environment_url", &["string"]),
            ("auto_inactive", &["boolean"]),
        ],
    ) {
        return reply;
    }
    let Some(state) = required_string(&r.body, "state") else {
        return body_error(&r.body, "state");
    };
    if !STATES.contains(&state.as_str()) {
        return Reply::invalid(format!(
            "For 'properties/state', \"{state}\" is not one of: {}.",
            STATES.join(", ")
        ));
    }
    if let Some(d) = r.body.get("description").and_then(Value::as_str)
        && d.chars().count() > 140
    {
        return Reply::validation_failed(
            "DeploymentStatus",
            "description",
            "description is too long (maximum is 140 characters)",
        );
    }
    let id = st.deployments[index].json["id"].as_u64().expect("id");
    let status = insert_status(st, id, r.actor(), r.body.clone());
    let auto_inactive = r
        .body
        .get("auto_inactive")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    if state == "success" && auto_inactive {
        let environment = st.deployments[index].json["environment"].clone();
        let others: Vec<u64> = st
            .deployments
            .iter()
            .filter(|d| {
                d.json["id"] != id
                    && d.json["environment"] == environment
                    && d.json["transient_environment"] != true
                    && d.state().as_deref() == Some("success")
            })
            .map(DeploymentRecord::id)
            .collect();
        for other in others {
            insert_status(
                st,
                other,
                r.actor(),
                json!({ "state": "inactive", "description": "" }),
            );
        }
    }
    Reply::json(201, status)
}

/// Adds a status (newest first) to deployment `id`; returns its JSON.
pub fn insert_status(st: &mut State, deployment: u64, actor: Actor, body: Value) -> Value {
    let id = st.id();
    let api = format!("{}/repos/{}/{}", st.server_url(), st.owner, st.repo);
    let now = timestamp();
    let Ok(index) = st
        .deployments
        .binary_search_by_key(&deployment, DeploymentRecord::id)
    else {
        panic!("no deployment {deployment}");
    };
    let record = &mut st.deployments[index];
    let text = |key: &str| {
        body.get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let log_url = body
        .get("log_url")
        .or_else(|| body.get("target_url"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let status = json!({
        "url": format!("{api}/deployments/{deployment}/statuses/{id}"),
        "id": id,
        "node_id": format!("DES_{id}"),
        "state": body["state"],
        "creator": actor_json(actor),
        "description": text("description"),
        "environment": record.json["environment"],
        "target_url": log_url,
        "log_url": log_url,
        "environment_url": text("environment_url"),
        "created_at": now,
        "updated_at": now,
        "deployment_url": format!("{api}/deployments/{deployment}"),
        "repository_url": api,
    });
    record.statuses.insert(0, status.clone());
    status
}

// ---------- environments ----------

fn environment_json(st: &State, e: &EnvironmentRecord) -> Value {
    let mut rules = Vec::new();
    if e.wait_timer > 0 {
        rules.push(json!({ "id": e.id * 10 + 1, "node_id": format!("GA_{}_1", e.id), "type": "wait_timer", "wait_timer": e.wait_timer }));
    }
    if !e.reviewers.is_empty() {
        let reviewers: Vec<Value> = e
            .reviewers
            .iter()
            .map(|r| match r {
                Reviewer::User(id) => {
                    let login = st
                        .users
                        .iter()
                        .find(|(_, v)| *v == id)
                        .map(|(k, _)| k.clone())
                        .unwrap_or_default();
                    json!({ "type": "User", "reviewer": account(&login, *id, "User") })
                }
                Reviewer::Team(id) => {
                    let slug = st
                        .teams
                        .iter()
                        .find(|(_, v)| *v == id)
                        .map(|(k, _)| k.clone())
                        .unwrap_or_default();
                    json!({ "type": "Team", "reviewer": { "id": id, "node_id": format!("T_{id}"), "slug": slug, "name": slug } })
                }
            })
            .collect();
        rules.push(json!({ "id": e.id * 10 + 2, "node_id": format!("GA_{}_2", e.id), "type": "required_reviewers",
                            "prevent_self_review": e.prevent_self_review, "reviewers": reviewers }));
    }
    if e.branch_policy.is_some() {
        rules.push(json!({ "id": e.id * 10 + 3, "node_id": format!("GA_{}_3", e.id), "type": "branch_policy" }));
    }
    let api = format!("{}/repos/{}/{}", st.server_url(), st.owner, st.repo);
    json!({
        "id": e.id,
        "node_id": format!("EN_{}", e.id),
        "name": e.name,
        "url": format!("{api}/environments/{}", e.name),
        "html_url": format!("{}/{}/{}/deployments/activity_log?environments_filter={}", st.server_url(), st.owner, st.repo, e.name),
        "created_at": e.created_at,
        "updated_at": e.updated_at,
        "can_admins_bypass": true,
        "protection_rules": rules,
        "deployment_branch_policy": e.branch_policy.map(|(p, c)| json!({ "protected_branches": p, "custom_branch_policies": c })),
    })
}

fn put_environment(st: &mut State, r: &Req, name: &str) -> Reply {
    if r.kind == TokenKind::WorkflowToken {
        return Reply::forbidden("administration=write");
    }
    let body = if r.body.is_null() {
        json!({})
    } else {
        r.body.clone()
    };
    if let Err(reply) = check_types(
        &body,
        &[
            ("wait_timer", &["integer"]),
            ("prevent_self_review", &["boolean"]),
            ("reviewers", &["array", "null"]),
            ("deployment_branch_policy", &["object", "null"]),
        ],
    ) {
        return reply;
    }
    if let Some(t) = body.get("wait_timer")
        && !(0..=43200).contains(&t.as_i64().unwrap_or(-1))
    {
        return Reply::invalid(format!(
            "For 'properties/wait_timer', {t} is {} the {} of {}.",
            if t.as_i64().unwrap_or(-1) < 0 {
                "less than"
            } else {
                "greater than"
            },
            if t.as_i64().unwrap_or(-1) < 0 {
                "minimum"
            } else {
                "maximum"
            },
            if t.as_i64().unwrap_or(-1) < 0 {
                0
            } else {
                43200
            }
        ));
    }
    let mut reviewers = Vec::new();
    if let Some(list) = body.get("reviewers").and_then(Value::as_array) {
        if list.len() > 6 {
            return Reply::invalid(format!(
                "For 'properties/reviewers', {} has more than 6 items.",
                Value::Array(list.clone())
            ));
        }
        for (i, item) in list.iter().enumerate() {
            if let Err(reply) = check_types(item, &[("type", &["string"]), ("id", &["integer"])]) {
                return reply;
            }
            let (Some(kind), Some(id)) = (
                item.get("type").and_then(Value::as_str),
                item.get("id").and_then(Value::as_u64),
            ) else {
                return Reply::invalid(format!(
                    "For 'items', {item} is missing \"type\" or \"id\" (reviewers[{i}])."
                ));
            };
            let reviewer = match kind {
                "User" if st.users.values().any(|v| *v == id) => Reviewer::User(id),
                "Team" if st.teams.values().any(|v| *v == id) => Reviewer::Team(id),
                "User" | "Team" => {
                    return Reply::validation_failed(
                        "Environment",
                        "reviewers",
                        &format!(
                            "{kind} with id {id} cannot be a reviewer: not found or without access to the repository"
                        ),
                    );
                }
                other => {
                    return Reply::invalid(format!(
                        "For 'properties/type', \"{other}\" is not one of: User, Team."
                    ));
                }
            };
            reviewers.push(reviewer);
        }
    }
    let branch_policy = match body.get("deployment_branch_policy") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(policy) => {
            if let Err(reply) = check_types(
                policy,
                &[
                    ("protected_branches", &["boolean"]),
                    ("custom_branch_policies", &["boolean"]),
                ],
            ) {
                return reply;
            }
            let (Some(p), Some(c)) = (
                policy.get("protected_branches").and_then(Value::as_bool),
                policy
                    .get("custom_branch_policies")
                    .and_then(Value::as_bool),
            ) else {
                return Reply::invalid(
                    "For 'properties/deployment_branch_policy', \"protected_branches\" and \"custom_branch_policies\" are required."
                        .into(),
                );
            };
            if p == c {
                return Reply::validation_failed(
                    "Environment",
                    "deployment_branch_policy",
                    "exactly one of protected_branches and custom_branch_policies must be true",
                );
            }
            Some(Some((p, c)))
        }
    };
    let id = st.id();
    let now = timestamp();
    let env = st
        .environments
        .entry(name.to_string())
        .or_insert_with(|| EnvironmentRecord {
            id,
            name: name.to_string(),
            created_at: now.clone(),
            ..EnvironmentRecord::default()
        });
    env.updated_at = now;
    if let Some(t) = body.get("wait_timer").and_then(Value::as_u64) {
        env.wait_timer = t;
    }
    if let Some(p) = body.get("prevent_self_review").and_then(Value::as_bool) {
        env.prevent_self_review = p;
    }
    if body.get("reviewers").is_some() {
        env.reviewers = reviewers;
    }
    if let Some(policy) = branch_policy {
        if policy.is_none_or(|(_, custom)| !custom) {
            env.policies.clear();
        }
        env.branch_policy = policy;
    }
    let env = env.clone();
    Reply::json(200, environment_json(st, &env))
}

fn policy_json(p: &(u64, String, String)) -> Value {
    json!({ "id": p.0, "node_id": format!("BP_{}", p.0), "name": p.1, "type": p.2 })
}

fn create_policy(st: &mut State, r: &Req, name: &str) -> Reply {
    if r.kind == TokenKind::WorkflowToken {
        return Reply::forbidden("administration=write");
    }
    if let Err(reply) = check_types(&r.body, &[("name", &["string"]), ("type", &["string"])]) {
        return reply;
    }
    let Some(pattern) = required_string(&r.body, "name") else {
        return body_error(&r.body, "name");
    };
    let kind = r
        .body
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("branch")
        .to_string();
    if kind != "branch" && kind != "tag" {
        return Reply::invalid(format!(
            "For 'properties/type', \"{kind}\" is not one of: branch, tag."
        ));
    }
    let id = st.id();
    let server = st.server_url();
    let (owner, repo) = (st.owner.clone(), st.repo.clone());
    let Some(env) = st.environments.get_mut(name) else {
        return Reply::not_found();
    };
    if env.branch_policy != Some((false, true)) {
        return Reply::not_found();
    }
    if let Some(existing) = env.policies.iter().find(|p| p.1 == pattern && p.2 == kind) {
        return Reply::empty(303).header(
            "location",
            format!(
                "{server}/repos/{owner}/{repo}/environments/{name}/deployment-branch-policies/{}",
                existing.0
            ),
        );
    }
    let policy = (id, pattern, kind);
    env.policies.push(policy.clone());
    Reply::json(200, policy_json(&policy))
}

fn comment_json(st: &State, c: &CommentRecord) -> Value {
    let api = format!("{}/repos/{}/{}", st.server_url(), st.owner, st.repo);
    json!({
        "id": c.id,
        "node_id": format!("IC_{}", c.id),
        "url": format!("{api}/issues/comments/{}", c.id),
        "html_url": c.html_url,
        "issue_url": format!("{api}/issues/{}", c.issue),
        "body": c.body,
        "user": actor_json(ADMIN),
        "created_at": timestamp(),
        "updated_at": timestamp(),
    })
}

// ---------- pagination ----------

/// One page of `all` (`per_page` default 30, at most 100; `page` from 1), wrapped by `wrap`,
/// with GitHub's `Link` header.
fn page(st: &State, r: &Req, all: Vec<Value>, wrap: impl Fn(Vec<Value>) -> Value) -> Reply {
    let total = all.len();
    page_of(st, r, total, |range| wrap(all[range].to_vec()))
}

/// [`page`] for a list of `total` items that `items` renders a range of, so a long list is
/// not copied whole for every page.
fn page_of(
    st: &State,
    r: &Req,
    total: usize,
    items: impl FnOnce(std::ops::Range<usize>) -> Value,
) -> Reply {
    let per_page = r
        .param("per_page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let page = r
        .param("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let last = total.div_ceil(per_page).max(1);
    let start = page.saturating_sub(1).saturating_mul(per_page).min(total);
    let end = start.saturating_add(per_page).min(total);
    let mut reply = Reply::json(200, items(start..end));
    let link_to = |n: usize, rel: &str| {
        let mut query: Vec<String> = r
            .query
            .iter()
            .filter(|(k, _)| k != "page" && k != "per_page")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        query.push(format!("per_page={per_page}"));
        query.push(format!("page={n}"));
        format!(
            "<{}{}?{}>; rel=\"{rel}\"",
            st.server_url(),
            r.path,
            query.join("&")
        )
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(link_to(page - 1, "prev"));
        links.push(link_to(1, "first"));
    }
    if page < last {
        links.push(link_to(page + 1, "next"));
        links.push(link_to(last, "last"));
    }
    if !links.is_empty() {
        reply = reply.header("link", links.join(", "));
    }
    reply
}

pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

/// `%XX` escapes decoded (a `+` stays a `+`: in a path it is not a space).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
