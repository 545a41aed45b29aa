//! Environments and their protection rules, read and written as GitHub shapes them:
//! `GET`/`PUT /repos/{o}/{r}/environments/{name}` and its `deployment-branch-policies`.

use std::collections::BTreeSet;

use http::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{
    EnvironmentRules, EnvironmentState, GitHub, GitHubError, ReviewerId, decode, encode,
    expect_success, status_error,
};

/// The environment as `GET .../environments/{name}` answers.
#[derive(Deserialize)]
struct RawEnvironment {
    #[serde(default)]
    html_url: Option<String>,
    #[serde(default)]
    protection_rules: Vec<RawRule>,
    #[serde(default)]
    deployment_branch_policy: Option<RawBranchPolicy>,
}

#[derive(Deserialize)]
struct RawRule {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    wait_timer: Option<u32>,
    #[serde(default)]
    prevent_self_review: Option<bool>,
    #[serde(default)]
    reviewers: Vec<RawReviewer>,
}

#[derive(Deserialize)]
struct RawReviewer {
    #[serde(rename = "type")]
    kind: String,
    reviewer: Value,
}

#[derive(Deserialize, Serialize)]
struct RawBranchPolicy {
    protected_branches: bool,
    custom_branch_policies: bool,
}

#[derive(Deserialize)]
struct RawPolicy {
    id: u64,
    name: String,
    #[serde(rename = "type", default = "branch")]
    kind: String,
}

fn branch() -> String {
    "branch".into()
}

impl RawPolicy {
    /// How the policy shows in [`EnvironmentState::branches`]: a branch pattern as it is, a tag
    /// pattern as `tag:pattern` (promotion.yml only declares branches, so a tag policy is drift).
    fn pattern(&self) -> String {
        if self.kind == "tag" {
            format!("tag:{}", self.name)
        } else {
            self.name.clone()
        }
    }
}

impl GitHub {
    fn environment_path(&self, name: &str, rest: &str) -> String {
        self.repo_path(&format!("/environments/{}{rest}", encode(name)))
    }

    /// `None` when the environment does not exist (404).
    pub async fn environment(&self, name: &str) -> Result<Option<EnvironmentState>, GitHubError> {
        let path = self.environment_path(name, "");
        let answer = self.send(Method::GET, &path, None::<&()>).await?;
        if answer.status == 404 {
            return Ok(None);
        }
        let answer = expect_success(&Method::GET, &path, answer)?;
        let raw: RawEnvironment = decode(&Method::GET, &path, &answer.body)?;
        let mut state = EnvironmentState {
            html_url: raw.html_url,
            ..EnvironmentState::default()
        };
        for rule in raw.protection_rules {
            match rule.kind.as_str() {
                "wait_timer" => state.wait_timer = rule.wait_timer.unwrap_or_default(),
                "required_reviewers" => {
                    state.prevent_self_review = rule.prevent_self_review.unwrap_or_default();
                    state.reviewers = rule.reviewers.iter().filter_map(reviewer_id).collect();
                    state.reviewers.sort();
                }
                _ => {}
            }
        }
        match raw.deployment_branch_policy {
            None => {}
            Some(policy) if policy.custom_branch_policies => {
                let mut patterns: Vec<String> = self
                    .branch_policies(name)
                    .await?
                    .iter()
                    .map(RawPolicy::pattern)
                    .collect();
                patterns.sort();
                state.branches = Some(patterns);
            }
            Some(policy) => state.protected_branches_only = policy.protected_branches,
        }
        Ok(Some(state))
    }

    async fn branch_policies(&self, name: &str) -> Result<Vec<RawPolicy>, GitHubError> {
        let path = self.environment_path(name, "/deployment-branch-policies");
        self.paged(&path, usize::MAX, |page| {
            page.get("branch_policies").cloned()
        })
        .await
    }

    /// Creates or updates the environment and makes its custom branch policies exactly
    /// `rules.branches` (adding and deleting patterns).
    ///
    /// # Errors
    /// `Status` 403 with `accepted_permissions: administration=write` when the token may not
    /// administer the repository (a workflow's `GITHUB_TOKEN` never may).
    pub async fn put_environment(
        &self,
        name: &str,
        rules: &EnvironmentRules,
    ) -> Result<(), GitHubError> {
        let reviewers: Vec<Value> = rules
            .reviewers
            .iter()
            .map(|r| match r {
                ReviewerId::User { id, .. } => json!({"type": "User", "id": id}),
                ReviewerId::Team { id, .. } => json!({"type": "Team", "id": id}),
            })
            .collect();
        let branch_policy = (!rules.branches.is_empty()).then_some(RawBranchPolicy {
            protected_branches: false,
            custom_branch_policies: true,
        });
        let body = json!({
            "wait_timer": rules.wait_timer,
            "prevent_self_review": rules.prevent_self_review,
            "reviewers": reviewers,
            "deployment_branch_policy": branch_policy,
        });
        let path = self.environment_path(name, "");
        let _: Value = self.call(Method::PUT, &path, Some(&body)).await?;
        if rules.branches.is_empty() {
            // `deployment_branch_policy: null` lets every branch deploy; GitHub ignores any
            // patterns left behind.
            return Ok(());
        }
        let existing = self.branch_policies(name).await?;
        let wanted: BTreeSet<&str> = rules.branches.iter().map(String::as_str).collect();
        let have: BTreeSet<&str> = existing
            .iter()
            .filter(|p| p.kind == "branch")
            .map(|p| p.name.as_str())
            .collect();
        let policies = self.environment_path(name, "/deployment-branch-policies");
        for pattern in wanted.difference(&have) {
            let body = json!({"name": pattern, "type": "branch"});
            let answer = self.send(Method::POST, &policies, Some(&body)).await?;
            // 303: the pattern exists already (another run added it meanwhile).
            if !(200..300).contains(&answer.status) && answer.status != 303 {
                return Err(status_error(&Method::POST, &policies, &answer));
            }
        }
        for policy in existing
            .iter()
            .filter(|p| p.kind != "branch" || !wanted.contains(p.name.as_str()))
        {
            let path = format!("{policies}/{}", policy.id);
            let answer = self.send(Method::DELETE, &path, None::<&()>).await?;
            // 404: already gone, which is what we wanted.
            if !(200..300).contains(&answer.status) && answer.status != 404 {
                return Err(status_error(&Method::DELETE, &path, &answer));
            }
        }
        Ok(())
    }
}

/// A reviewer of a `required_reviewers` rule: `{type: User, reviewer: {login, id}}` or
/// `{type: Team, reviewer: {slug, id}}`.
fn reviewer_id(raw: &RawReviewer) -> Option<ReviewerId> {
    let id = raw.reviewer.get("id")?.as_u64()?;
    let text = |key: &str| {
        raw.reviewer
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    match raw.kind.as_str() {
        "User" => Some(ReviewerId::User {
            login: text("login")?,
            id,
        }),
        "Team" => Some(ReviewerId::Team {
            slug: text("slug")?,
            id,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reviewers_are_read_from_githubs_shape() {
        let raw: RawEnvironment = serde_json::from_value(json!({
            "html_url": "https://github.com/o/r/deployments/activity_log?environments_filter=production",
            "protection_rules": [
                {"id": 1, "type": "wait_timer", "wait_timer": 5},
                {"id": 2, "type": "required_reviewers", "prevent_self_review": true, "reviewers": [
                    {"type": "Team", "reviewer": {"id": 7, "slug": "qa", "name": "QA"}},
                    {"type": "User", "reviewer": {"id": 3, "login": "octocat"}}
                ]},
                {"id": 3, "type": "branch_policy"}
            ],
            "deployment_branch_policy": {"protected_branches": false, "custom_branch_policies": true}
        }))
        .unwrap();
        let reviewers = &raw.protection_rules[1].reviewers;
        let ids: Vec<ReviewerId> = reviewers.iter().filter_map(reviewer_id).collect();
        assert_eq!(
            ids,
            [
                ReviewerId::Team {
                    slug: "qa".into(),
                    id: 7
                },
                ReviewerId::User {
                    login: "octocat".into(),
                    id: 3
                },
            ]
        );
        assert!(raw.deployment_branch_policy.unwrap().custom_branch_policies);
    }

    #[test]
    fn tag_policies_show_as_tag_patterns() {
        let p: RawPolicy =
            serde_json::from_value(json!({"id": 1, "name": "v*", "type": "tag"})).unwrap();
        assert_eq!(p.pattern(), "tag:v*");
        let p: RawPolicy = serde_json::from_value(json!({"id": 1, "name": "main"})).unwrap();
        assert_eq!(p.pattern(), "main");
    }
}
