//! The sticky pull-request comment: one comment per marker, edited in place on every run.

use http::Method;
use serde::Deserialize;
use serde_json::json;

use super::{GitHub, GitHubError};

/// How many comments `upsert_comment` reads looking for its marker; a pull request with more
/// is rare, and a second sticky comment on one is harmless.
const MAX_COMMENTS: usize = 3000;

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
