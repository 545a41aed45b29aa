//! The sticky pull-request comment: one comment per marker, edited in place on every run, and
//! what it takes to post one: the pull request the event is about, GitHub's size limit, and a
//! refusal explained by the permission it needs.

use http::Method;
use serde::Deserialize;
use serde_json::json;

use super::{GitHub, GitHubError};

/// How many comments `upsert_comment` reads looking for its marker; a pull request with more
/// is rare, and a second sticky comment on one is harmless.
const MAX_COMMENTS: usize = 3000;

/// The marker that finds `promote plan`'s sticky comment on a pull request again.
pub const PLAN_COMMENT_MARKER: &str = "<!-- promote-action:plan -->";

/// GitHub refuses a comment body over 65,536 characters; a byte budget below it is safe for
/// any text (a character is at least one byte), with room for the marker and the footer.
pub const COMMENT_BUDGET: usize = 65_536 - 1_024;

/// Why a run has no pull request to comment on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoPullRequest {
    /// The run is for another event (`push`, `workflow_dispatch`): nothing to warn about.
    OtherEvent(String),
    /// A pull-request event whose payload does not say which one.
    Unreadable(String),
}

/// The pull request a `pull_request` / `pull_request_target` run is about, from the event name
/// and the payload file the runner wrote.
///
/// # Errors
/// [`NoPullRequest`]: another event, or a payload that cannot be read.
pub fn pull_request_of_run(
    event_name: Option<&str>,
    event_path: Option<&str>,
) -> Result<u64, NoPullRequest> {
    let event = event_name.unwrap_or_default();
    if !matches!(event, "pull_request" | "pull_request_target") {
        return Err(NoPullRequest::OtherEvent(if event.is_empty() {
            "none".to_string()
        } else {
            event.to_string()
        }));
    }
    let path = event_path
        .ok_or_else(|| NoPullRequest::Unreadable("GITHUB_EVENT_PATH is not set".to_string()))?;
    let text = std::fs::read_to_string(path).map_err(|e| {
        NoPullRequest::Unreadable(format!("cannot read the event payload {path}: {e}"))
    })?;
    pull_request_number(&text).map_err(NoPullRequest::Unreadable)
}

/// The pull request a `pull_request` / `pull_request_target` event is about, from its payload.
///
/// # Errors
/// Why the number could not be read, for the warning.
pub fn pull_request_number(payload: &str) -> Result<u64, String> {
    let event: serde_json::Value =
        serde_json::from_str(payload).map_err(|e| format!("the event payload is not JSON: {e}"))?;
    event["pull_request"]["number"]
        .as_u64()
        .ok_or_else(|| "the event payload has no `pull_request.number`".to_string())
}

/// The warning for a comment GitHub refused, with the permission it needs.
pub fn comment_failure(number: u64, e: &GitHubError) -> String {
    let hint = match e.status() {
        Some(401 | 403 | 404) => {
            "; the job needs `permissions: pull-requests: write` (pull requests from forks get a \
             read-only token)"
        }
        _ => "",
    };
    format!("could not comment on pull request #{number}: {e}{hint}")
}

#[derive(Deserialize)]
struct Comment {
    id: u64,
    #[serde(default)]
    body: Option<String>,
    html_url: String,
}

impl GitHub {
    /// Creates, or edits in place, the one comment on issue/PR `number` whose body contains
    /// `marker` (an HTML comment); returns the comment's html_url.
    ///
    /// The edit is a PATCH of a known comment, so it is retried like a PUT; the create is a
    /// POST, sent once.
    pub async fn upsert_comment(
        &self,
        number: u64,
        marker: &str,
        body: &str,
    ) -> Result<String, GitHubError> {
        let list = self.repo_path(&format!("/issues/{number}/comments"));
        let comments: Vec<Comment> = self.paged(&list, MAX_COMMENTS, Some).await?;
        let existing = comments
            .iter()
            .find(|c| c.body.as_deref().is_some_and(|b| b.contains(marker)));
        let payload = json!({ "body": body });
        let comment: Comment = match existing {
            Some(c) => {
                let path = self.repo_path(&format!("/issues/comments/{}", c.id));
                self.call(Method::PATCH, &path, Some(&payload)).await?
            }
            None => self.call(Method::POST, &list, Some(&payload)).await?,
        };
        Ok(comment.html_url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_request_numbers_come_from_the_event_payload() {
        assert_eq!(
            pull_request_number(r#"{"action": "synchronize", "pull_request": {"number": 42}}"#),
            Ok(42)
        );
        assert!(
            pull_request_number(r#"{"ref": "refs/heads/main"}"#)
                .unwrap_err()
                .contains("pull_request.number")
        );
        assert!(
            pull_request_number("not json")
                .unwrap_err()
                .contains("not JSON")
        );
        assert_eq!(
            pull_request_of_run(Some("push"), None),
            Err(NoPullRequest::OtherEvent("push".into()))
        );
        assert_eq!(
            pull_request_of_run(None, None),
            Err(NoPullRequest::OtherEvent("none".into()))
        );
        assert!(matches!(
            pull_request_of_run(Some("pull_request"), None),
            Err(NoPullRequest::Unreadable(_))
        ));
    }

    #[test]
    fn refused_comments_name_the_permission() {
        let refused = GitHubError::Status {
            method: "POST".into(),
            path: "/repos/o/r/issues/7/comments".into(),
            status: 403,
            message: "Resource not accessible by integration".into(),
            accepted_permissions: None,
        };
        let text = comment_failure(7, &refused);
        assert!(
            text.starts_with("could not comment on pull request #7: POST"),
            "{text}"
        );
        assert!(
            text.contains("`permissions: pull-requests: write`"),
            "{text}"
        );
        let down = GitHubError::Transport {
            method: "GET".into(),
            path: "/x".into(),
            message: "connection refused".into(),
        };
        assert!(!comment_failure(7, &down).contains("permissions"));
    }
}
