use std::time::{Duration, Instant};

use promote_action::actions::{Console, Secret};
use promote_action::github::{
    DeploymentFilter, DeploymentState, EnvironmentRules, GitHub, GitHubError, NewDeployment,
    NewStatus, RetrySettings, ReviewerId,
};
use serde_json::json;

use crate::fake_github::{FakeGitHub, Fault, TokenKind};

const ADMIN: &str = "ghs_admin_token_for_tests";
const WORKFLOW: &str = "ghs_workflow_token_for_tests";
const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const DEPLOYMENTS: &str = "/repos/studysphere/app/deployments";

fn fake() -> FakeGitHub {
    FakeGitHub::builder("studysphere", "app")
        .token(ADMIN, TokenKind::Admin)
        .token(WORKFLOW, TokenKind::WorkflowToken)
        .git_ref("main", SHA)
        .user("octocat", 1)
        .team("qa", 11)
        .team("tech-leads", 12)
        .start()
}

/// Short waits: tests must not sit out real backoffs.
fn settings() -> RetrySettings {
    RetrySettings {
        retries: 3,
        base_delay: Duration::from_millis(10),
        max_rate_limit_wait: Duration::from_secs(5),
    }
}

fn client(gh: &FakeGitHub, token: &str) -> GitHub {
    let secret = Secret::new(token, &Console::new(false));
    GitHub::new(&gh.url(), &secret, "studysphere/app")
        .expect("client")
        .with_retry(settings())
}

fn new_deployment(environment: &str) -> NewDeployment {
    NewDeployment {
        git_ref: "main".into(),
        task: "deploy".into(),
        auto_merge: false,
        required_contexts: Vec::new(),
        payload: json!({ "digest": "sha256:4f1c" }),
        environment: environment.into(),
        description: "promote auth-service".into(),
        transient_environment: false,
        production_environment: environment == "production",
    }
}

fn status(state: DeploymentState, description: &str) -> NewStatus {
    NewStatus {
        state,
        description: description.into(),
        environment_url: Some("https://test.studysphere.example.com".into()),
        log_url: Some("https://github.com/studysphere/app/actions/runs/42".into()),
        auto_inactive: true,
    }
}

#[tokio::test]
async fn deployments_and_statuses_round_trip_and_success_retires_the_previous_one() {
    let gh = fake();
    let api = client(&gh, ADMIN);
    let first = api
        .create_deployment(&new_deployment("testing"))
        .await
        .unwrap();
    assert_eq!(first.sha, SHA, "the branch is resolved to its sha");
    assert_eq!(first.git_ref, "main");
    assert_eq!(first.payload, json!({ "digest": "sha256:4f1c" }));
    api.create_status(first.id, &status(DeploymentState::Success, "deployed"))
        .await
        .unwrap();
    let second = api
        .create_deployment(&new_deployment("testing"))
        .await
        .unwrap();
    let long = "x".repeat(200);
    let posted = api
        .create_status(second.id, &status(DeploymentState::Success, &long))
        .await
        .unwrap();
    let description = posted.description.unwrap();
    assert_eq!(description.chars().count(), 140);
    assert!(description.ends_with('…'), "{description}");

    let states: Vec<DeploymentState> = api
        .statuses(first.id)
        .await
        .unwrap()
        .iter()
        .map(|s| s.state)
        .collect();
    assert_eq!(
        states,
        [DeploymentState::Inactive, DeploymentState::Success],
        "auto_inactive retired the first deployment, newest status first"
    );
    let listed = api
        .deployments(&DeploymentFilter {
            environment: Some("testing".into()),
            sha: Some(SHA.into()),
            task: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|d| d.id).collect::<Vec<_>>(),
        [second.id, first.id],
        "newest first"
    );
    let sent = &gh.requests_to("POST", DEPLOYMENTS)[0];
    assert_eq!(sent.body["auto_merge"], false);
    assert_eq!(sent.body["required_contexts"], json!([]));
    assert_eq!(sent.token.as_deref(), Some(ADMIN));
}

#[tokio::test]
async fn deployments_page_through_githubs_link_headers_up_to_the_limit() {
    let gh = fake();
    let api = client(&gh, ADMIN);
    for _ in 0..105 {
        gh.create_job_deployment("development", SHA, "1");
    }
    let all = api
        .deployments(&DeploymentFilter {
            environment: Some("development".into()),
            limit: 1000,
            ..DeploymentFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 105);
    let pages: Vec<String> = gh
        .requests_to("GET", DEPLOYMENTS)
        .iter()
        .map(|r| r.query.clone())
        .collect();
    assert_eq!(
        pages,
        [
            "environment=development&per_page=100&page=1",
            "environment=development&per_page=100&page=2"
        ]
    );
    let few = api
        .deployments(&DeploymentFilter {
            limit: 3,
            ..DeploymentFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(few.len(), 3);
}

#[tokio::test]
async fn a_202_auto_merge_is_an_error_and_creates_nothing() {
    let gh = FakeGitHub::builder("studysphere", "app")
        .token(ADMIN, TokenKind::Admin)
        .git_ref("topic", SHA)
        .behind_default()
        .start();
    let api = client(&gh, ADMIN);
    let mut new = new_deployment("testing");
    new.git_ref = "topic".into();
    new.auto_merge = true;
    let err = api.create_deployment(&new).await.unwrap_err();
    assert!(
        matches!(&err, GitHubError::AutoMerged(r) if r == "topic"),
        "{err}"
    );
    assert!(gh.deployments().is_empty());
}

#[tokio::test]
async fn conflicts_and_validation_errors_keep_githubs_message() {
    let gh = FakeGitHub::builder("studysphere", "app")
        .token(ADMIN, TokenKind::Admin)
        .git_ref("main", SHA)
        .failing_contexts(&["ci/test"])
        .start();
    let api = client(&gh, ADMIN);
    let mut new = new_deployment("production");
    new.required_contexts = vec!["ci/test".into()];
    let err = api.create_deployment(&new).await.unwrap_err();
    assert_eq!(err.status(), Some(409));
    assert!(
        err.to_string()
            .contains("409 Conflict: Commit status checks failed for main."),
        "{err}"
    );

    let mut unknown = new_deployment("production");
    unknown.git_ref = "no-such-branch".into();
    let err = api.create_deployment(&unknown).await.unwrap_err();
    assert_eq!(err.status(), Some(422));
    assert!(
        err.to_string().contains("No ref found for: no-such-branch"),
        "{err}"
    );
    assert!(gh.deployments().is_empty());
}

#[tokio::test]
async fn a_post_is_sent_once_on_a_server_error_while_a_get_is_retried() {
    let gh = fake();
    let api = client(&gh, ADMIN);
    gh.inject(Fault::status("POST", DEPLOYMENTS, 500));
    let err = api
        .create_deployment(&new_deployment("testing"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(500), "{err}");
    assert_eq!(
        gh.requests_to("POST", DEPLOYMENTS).len(),
        1,
        "exactly one POST: a resent one could create a second deployment"
    );

    gh.inject(Fault::status("GET", DEPLOYMENTS, 502).times(2));
    let listed = api
        .deployments(&DeploymentFilter {
            limit: 10,
            ..DeploymentFilter::default()
        })
        .await
        .unwrap();
    assert!(listed.is_empty());
    let statuses: Vec<u16> = gh
        .requests_to("GET", DEPLOYMENTS)
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [502, 502, 200]);
}

#[tokio::test]
async fn a_get_gives_up_after_its_retries() {
    let gh = fake();
    let api = client(&gh, ADMIN);
    gh.inject(Fault::status("GET", "/users/octocat", 503).times(10));
    let err = api.user_id("octocat").await.unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(
        gh.requests_to("GET", "/users/octocat").len(),
        4,
        "1 + 3 retries"
    );
}

#[tokio::test]
async fn rate_limits_are_waited_out_and_even_a_post_is_resent() {
    let gh = fake();
    let api = client(&gh, ADMIN);
    gh.inject(Fault::retry_after("POST", DEPLOYMENTS, 1));
    let started = Instant::now();
    let created = api
        .create_deployment(&new_deployment("testing"))
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited retry-after"
    );
    let posts: Vec<u16> = gh
        .requests_to("POST", DEPLOYMENTS)
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(
        posts,
        [429, 201],
        "GitHub did not act on the rate-limited POST"
    );
    assert_eq!(gh.deployments().len(), 1);

    gh.inject(Fault::rate_limit_exhausted(
        "GET",
        "/repos/studysphere/app/deployments/",
        1,
    ));
    let started = Instant::now();
    let statuses = api.statuses(created.id).await.unwrap();
    assert!(statuses.is_empty());
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited until x-ratelimit-reset"
    );
}

#[tokio::test]
async fn a_rate_limit_longer_than_the_limit_fails_without_waiting() {
    let gh = fake();
    let api = client(&gh, ADMIN);
    gh.inject(Fault::rate_limit_exhausted("GET", "/users/", 3600));
    let started = Instant::now();
    let err = api.user_id("octocat").await.unwrap_err();
    assert!(matches!(err, GitHubError::RateLimited { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn the_jobs_own_deployment_is_found_by_its_run() {
    let gh = fake();
    let api = client(&gh, ADMIN);
    let other_run = gh.create_job_deployment("production", SHA, "41");
    gh.add_status(
        other_run,
        "success",
        Some("https://github.com/o/r/actions/runs/41/job/1"),
    );
    let ours = gh.create_job_deployment("production", SHA, "42");
    let _newer_other_env = gh.create_job_deployment("testing", SHA, "42");
    // Our own deployment (admin token): not GitHub's, never picked.
    api.create_deployment(&new_deployment("production"))
        .await
        .unwrap();

    let found = api
        .find_job_deployment("production", SHA, "42")
        .await
        .unwrap()
        .expect("found");
    assert_eq!(found.id, ours);
    assert_eq!(found.creator.unwrap().login, "github-actions[bot]");

    // No status links to run 43: the newest bot deployment still running is the fallback.
    let fallback = api
        .find_job_deployment("production", SHA, "43")
        .await
        .unwrap()
        .expect("fallback");
    assert_eq!(fallback.id, ours);

    assert_eq!(
        api.find_job_deployment("development", SHA, "42")
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn environments_put_and_get_round_trip_with_branch_policies() {
    let gh = fake();
    let api = client(&gh, ADMIN);
    assert_eq!(api.environment("QA / staging").await.unwrap(), None);
    let rules = EnvironmentRules {
        wait_timer: 5,
        prevent_self_review: true,
        reviewers: vec![
            ReviewerId::User {
                login: "octocat".into(),
                id: 1,
            },
            ReviewerId::Team {
                slug: "qa".into(),
                id: 11,
            },
        ],
        branches: vec!["main".into(), "release/*".into()],
    };
    api.put_environment("QA / staging", &rules).await.unwrap();
    let state = api
        .environment("QA / staging")
        .await
        .unwrap()
        .expect("exists");
    assert_eq!(state.wait_timer, 5);
    assert!(state.prevent_self_review);
    let mut want = rules.reviewers.clone();
    want.sort();
    assert_eq!(state.reviewers, want);
    assert_eq!(
        state.branches,
        Some(vec!["main".to_string(), "release/*".to_string()])
    );
    assert!(!state.protected_branches_only);
    assert!(
        gh.requests()
            .iter()
            .any(|r| r.path == "/repos/studysphere/app/environments/QA%20%2F%20staging"),
        "the name is one encoded path segment"
    );

    let put = &gh.requests_to("PUT", "/repos/studysphere/app/environments/")[0];
    assert_eq!(
        put.body,
        json!({
            "wait_timer": 5,
            "prevent_self_review": true,
            "reviewers": [{"type": "User", "id": 1}, {"type": "Team", "id": 11}],
            "deployment_branch_policy": {"protected_branches": false, "custom_branch_policies": true},
        })
    );

    // Remove one pattern, add another: exactly the wanted set remains.
    let changed = EnvironmentRules {
        branches: vec!["main".into(), "hotfix/*".into()],
        ..rules.clone()
    };
    gh.clear_requests();
    api.put_environment("QA / staging", &changed).await.unwrap();
    assert_eq!(
        gh.environment("QA / staging").unwrap().policy_names(),
        ["hotfix/*", "main"]
    );
    assert_eq!(
        gh.requests_to("POST", "/repos/studysphere/app/environments/")
            .len(),
        1
    );
    assert_eq!(
        gh.requests_to("DELETE", "/repos/studysphere/app/environments/")
            .len(),
        1
    );

    // No branches: any branch may deploy.
    let open = EnvironmentRules {
        branches: Vec::new(),
        reviewers: Vec::new(),
        ..rules
    };
    api.put_environment("QA / staging", &open).await.unwrap();
    let state = api.environment("QA / staging").await.unwrap().unwrap();
    assert_eq!(state.branches, None);
    assert!(state.reviewers.is_empty());
}

#[tokio::test]
async fn a_workflow_token_is_told_it_needs_administration_write() {
    let gh = fake();
    let api = client(&gh, WORKFLOW);
    let err = api
        .put_environment("production", &EnvironmentRules::default())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403));
    match &err {
        GitHubError::Status {
            accepted_permissions,
            message,
            ..
        } => {
            assert_eq!(
                accepted_permissions.as_deref(),
                Some("administration=write")
            );
            assert_eq!(message, "Resource not accessible by integration");
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("administration=write"), "{err}");
    assert!(gh.environments().is_empty());
    assert_eq!(gh.requests().len(), 1, "a 403 is not retried");
}

#[tokio::test]
async fn users_and_teams_resolve_to_ids_and_unknown_ones_are_404() {
    let gh = fake();
    let api = client(&gh, ADMIN);
    assert_eq!(api.user_id("octocat").await.unwrap(), 1);
    assert_eq!(api.team_id("tech-leads").await.unwrap(), 12);
    assert_eq!(api.team_id("nobody").await.unwrap_err().status(), Some(404));
    assert_eq!(api.user_id("nobody").await.unwrap_err().status(), Some(404));
}

#[tokio::test]
async fn the_sticky_comment_is_created_once_then_edited_in_place() {
    let gh = fake();
    let api = client(&gh, ADMIN);
    let marker = "<!-- promote-plan -->";
    let first = api
        .upsert_comment(7, marker, &format!("{marker}\nplan v1"))
        .await
        .unwrap();
    let second = api
        .upsert_comment(7, marker, &format!("{marker}\nplan v2"))
        .await
        .unwrap();
    assert_eq!(first, second);
    assert!(first.contains("/pull/7#issuecomment-"), "{first}");
    let comments = gh.comments(7);
    assert_eq!(comments.len(), 1);
    assert!(comments[0].body.ends_with("plan v2"));
    assert_eq!(
        gh.requests_to("PATCH", "/repos/studysphere/app/issues/comments/")
            .len(),
        1
    );
}

#[tokio::test]
async fn a_bad_token_is_a_401_with_githubs_words() {
    let gh = fake();
    let api = client(&gh, "ghp_not_registered");
    let err = api.user_id("octocat").await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(err.to_string().contains("Bad credentials"), "{err}");
}

#[tokio::test]
async fn a_dropped_connection_is_retried_for_a_get_but_not_for_a_post() {
    let gh = FakeGitHub::builder("studysphere", "app")
        .token(ADMIN, TokenKind::Admin)
        .git_ref("main", SHA)
        .fault(Fault::drop_connection("GET", "/users/"))
        .fault(Fault::drop_connection("POST", DEPLOYMENTS))
        .start();
    let api = client(&gh, ADMIN);
    gh.inject(Fault::status("GET", "/orgs/", 500).body(json!({ "message": "Server Error" })));
    assert_eq!(
        api.team_id("qa").await.unwrap_err().status(),
        Some(404),
        "retried past the 500"
    );
    assert_eq!(gh.requests_to("GET", "/orgs/").len(), 2);
    assert_eq!(
        api.user_id("octocat").await.unwrap_err().status(),
        Some(404)
    );
    assert_eq!(
        gh.requests_to("GET", "/users/").len(),
        2,
        "retried after the drop"
    );
    let err = api
        .create_deployment(&new_deployment("testing"))
        .await
        .unwrap_err();
    assert!(matches!(err, GitHubError::Transport { .. }), "{err}");
    assert_eq!(gh.requests_to("POST", DEPLOYMENTS).len(), 1);
}

/// The fake itself: bodies are checked and answered in GitHub's words, with its headers.
mod fake_answers_like_github {
    use super::*;

    async fn send(
        gh: &FakeGitHub,
        method: &str,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
        // Redirects are not followed, so a 303 is seen as GitHub sends it.
        let response = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .request(method.parse().unwrap(), format!("{}{path}", gh.url()))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    #[tokio::test]
    async fn deployment_bodies_are_type_checked() {
        let gh = FakeGitHub::builder("studysphere", "app")
            .token(ADMIN, TokenKind::Admin)
            .git_ref("trunk", SHA)
            .default_branch("trunk")
            .start();
        let cases = [
            (
                json!({ "ref": 5 }),
                "Invalid request.\n\nFor 'properties/ref', 5 is not a string.",
            ),
            (
                json!({ "task": "deploy" }),
                "Invalid request.\n\n\"ref\" wasn't supplied.",
            ),
            (
                json!({ "ref": "trunk", "auto_merge": "no" }),
                "Invalid request.\n\nFor 'properties/auto_merge', \"no\" is not a boolean.",
            ),
            (
                json!({ "ref": "trunk", "required_contexts": [1] }),
                "Invalid request.\n\nFor 'properties/required_contexts/items', 1 is not a string.",
            ),
            (
                json!({ "ref": "trunk", "payload": 3 }),
                "Invalid request.\n\nFor 'properties/payload', 3 is not an object or a string.",
            ),
        ];
        for (body, message) in cases {
            let (status, headers, answer) = send(&gh, "POST", DEPLOYMENTS, body.clone()).await;
            assert_eq!(status, 422, "{body}");
            assert_eq!(answer["message"], message, "{body}");
            for header in [
                "x-ratelimit-limit",
                "x-ratelimit-remaining",
                "x-ratelimit-reset",
                "x-ratelimit-used",
                "x-ratelimit-resource",
                "x-github-request-id",
            ] {
                assert!(headers.contains_key(header), "{header}");
            }
        }
        gh.set_behind_default(true);
        let (status, _, answer) = send(
            &gh,
            "POST",
            DEPLOYMENTS,
            json!({ "ref": "trunk", "unknown": 1 }),
        )
        .await;
        assert_eq!(status, 202);
        assert_eq!(answer["message"], "Auto-merged trunk into topic branch.");
        gh.set_behind_default(false);
        let (status, _, created) = send(
            &gh,
            "POST",
            DEPLOYMENTS,
            json!({ "ref": "trunk", "payload": "text" }),
        )
        .await;
        assert_eq!(status, 201);
        assert_eq!(created["sha"], SHA);
        assert_eq!(created["task"], "deploy");
        assert_eq!(created["payload"], "text");
        assert_eq!(created["creator"]["login"], "promote-admin");

        let statuses = format!("{DEPLOYMENTS}/{}/statuses", created["id"]);
        let (status, _, answer) = send(&gh, "POST", &statuses, json!({ "state": "done" })).await;
        assert_eq!(status, 422);
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains("is not one of"),
            "{answer}"
        );
        let (status, _, answer) = send(
            &gh,
            "POST",
            &statuses,
            json!({ "state": "success", "description": "x".repeat(141) }),
        )
        .await;
        assert_eq!(status, 422);
        assert_eq!(answer["message"], "Validation Failed");
        let (status, _, _) = send(
            &gh,
            "POST",
            &format!("{DEPLOYMENTS}/999999/statuses"),
            json!({ "state": "success" }),
        )
        .await;
        assert_eq!(status, 404);
    }

    #[tokio::test]
    async fn environment_bodies_are_validated() {
        let gh = fake();
        let env = "/repos/studysphere/app/environments/production";
        let seven: Vec<serde_json::Value> = (0..7)
            .map(|_| json!({ "type": "Team", "id": 11 }))
            .collect();
        let cases = [
            (
                json!({ "wait_timer": 50000 }),
                "Invalid request.\n\nFor 'properties/wait_timer', 50000 is greater than the maximum of 43200.",
            ),
            (json!({ "reviewers": seven }), ""),
            (
                json!({ "reviewers": [{ "type": "Robot", "id": 1 }] }),
                "Invalid request.\n\nFor 'properties/type', \"Robot\" is not one of: User, Team.",
            ),
            (
                json!({ "deployment_branch_policy": { "protected_branches": true, "custom_branch_policies": true } }),
                "Validation Failed",
            ),
            (
                json!({ "prevent_self_review": "yes" }),
                "Invalid request.\n\nFor 'properties/prevent_self_review', \"yes\" is not a boolean.",
            ),
        ];
        for (body, message) in cases {
            let (status, _, answer) = send(&gh, "PUT", env, body.clone()).await;
            assert_eq!(status, 422, "{body}");
            if !message.is_empty() {
                assert_eq!(answer["message"], message, "{body}");
            }
        }
        assert!(gh.environments().is_empty());
        let policies = format!("{env}/deployment-branch-policies");
        let (status, _, _) =
            send(&gh, "PUT", env, json!({ "deployment_branch_policy": null })).await;
        assert_eq!(status, 200);
        let (status, _, _) = send(
            &gh,
            "POST",
            &policies,
            json!({ "name": "main", "type": "branch" }),
        )
        .await;
        assert_eq!(status, 404, "custom policies are off");
        send(&gh, "PUT", env, json!({ "deployment_branch_policy": { "protected_branches": false, "custom_branch_policies": true } })).await;
        let (status, _, _) = send(
            &gh,
            "POST",
            &policies,
            json!({ "name": "main", "type": "branch" }),
        )
        .await;
        assert_eq!(status, 200);
        let (status, headers, _) = send(
            &gh,
            "POST",
            &policies,
            json!({ "name": "main", "type": "branch" }),
        )
        .await;
        assert_eq!(status, 303, "a duplicate pattern");
        assert!(headers.contains_key("location"));
        let (status, _, _) = send(
            &gh,
            "POST",
            &policies,
            json!({ "name": "v*", "type": "release" }),
        )
        .await;
        assert_eq!(status, 422);
    }

    #[tokio::test]
    async fn requests_without_a_token_are_401() {
        let gh = fake();
        let response = reqwest::get(format!("{}/users/octocat", gh.url()))
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["message"], "Requires authentication");
    }
}
