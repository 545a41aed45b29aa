//! The run context: every `GITHUB_*` / `RUNNER_*` variable the crate uses, read once.

use std::path::PathBuf;

/// Where `GITHUB_SERVER_URL` points on github.com; GitHub Enterprise Server sets its own.
const DEFAULT_SERVER_URL: &str = "https://github.com";
/// `GITHUB_API_URL` on github.com.
const DEFAULT_API_URL: &str = "https://api.github.com";

/// A variable of the step's environment that promotion.yml names, as [`Context::read_var`]
/// read it.
#[derive(Debug, Clone)]
pub enum Variable {
    /// Set and not empty; masked.
    Set(super::Secret),
    /// Set to the empty string.
    Empty,
    /// Not set (or not Unicode).
    Unset,
}

/// What the runner tells a step about its run, read once from the environment.
///
/// The runner sets these variables in every container action (protocols.md §1). An empty
/// variable is treated as unset (`None`): the runner exports some of them empty, for example
/// `GITHUB_HEAD_REF` outside pull requests, and an empty path must never be opened as a file.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// `GITHUB_ACTIONS == "true"`: the runner sets it for every step; act and other emulators too.
    pub in_actions: bool,
    /// `GITHUB_OUTPUT`: step outputs (file command).
    pub output_file: Option<PathBuf>,
    /// `GITHUB_ENV`: environment variables for later steps (file command).
    pub env_file: Option<PathBuf>,
    /// `GITHUB_STATE`: state for the `post-entrypoint` of the same action (file command).
    pub state_file: Option<PathBuf>,
    /// `GITHUB_STEP_SUMMARY`: the job summary Markdown file.
    pub summary_file: Option<PathBuf>,
    /// `GITHUB_SERVER_URL`, default `https://github.com`.
    pub server_url: String,
    /// `GITHUB_API_URL`, default `https://api.github.com`.
    pub api_url: String,
    /// `GITHUB_REPOSITORY`: `owner/name`.
    pub repository: Option<String>,
    /// `GITHUB_RUN_ID`.
    pub run_id: Option<String>,
    /// `GITHUB_RUN_ATTEMPT`: `1` for the first attempt, higher after "Re-run".
    pub run_attempt: Option<String>,
    /// `GITHUB_SHA`.
    pub sha: Option<String>,
    /// `GITHUB_REF`, e.g. `refs/heads/main`.
    pub git_ref: Option<String>,
    /// `GITHUB_REF_NAME`, e.g. `main`.
    pub ref_name: Option<String>,
    /// `GITHUB_EVENT_NAME`, e.g. `push`.
    pub event_name: Option<String>,
    /// `GITHUB_EVENT_PATH`: the webhook payload as JSON.
    pub event_path: Option<String>,
    /// `GITHUB_ACTOR`.
    pub actor: Option<String>,
    /// `GITHUB_WORKSPACE`: `/github/workspace` inside a container action.
    pub workspace: Option<String>,
    /// `RUNNER_TEMP`: emptied at the end of every job.
    pub runner_temp: Option<String>,
    /// `GITHUB_JOB`: the job id.
    pub job: Option<String>,
    /// `GITHUB_WORKFLOW`: the workflow name.
    pub workflow: Option<String>,
    /// `RUNNER_DEBUG == "1"`: debug logging was enabled for the run ("Re-run with debug logging").
    pub debug: bool,
    /// `ACTIONS_ID_TOKEN_REQUEST_URL`: GitHub's OIDC token service for this job; set only when
    /// the job has `permissions: id-token: write` (protocols.md §1).
    pub id_token_request_url: Option<String>,
    /// `ACTIONS_ID_TOKEN_REQUEST_TOKEN`: the bearer token for that service, registered for
    /// redaction as it is read (the runner masks it in the log itself).
    pub id_token_request_token: Option<super::Secret>,
}

impl Context {
    /// Reads the process environment. Call it once, at start-up, and pass the value down.
    pub fn from_env() -> Self {
        // A variable that is not valid Unicode is treated as unset: none of these are ever
        // legitimately non-UTF-8 on a runner, and a lossy path would point at the wrong file.
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Builds a context from any variable lookup, so tests need no process environment.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Self {
        let text = |name: &str| get(name).filter(|value| !value.is_empty());
        let path = |name: &str| text(name).map(PathBuf::from);
        Self {
            in_actions: get("GITHUB_ACTIONS").as_deref() == Some("true"),
            output_file: path("GITHUB_OUTPUT"),
            env_file: path("GITHUB_ENV"),
            state_file: path("GITHUB_STATE"),
            summary_file: path("GITHUB_STEP_SUMMARY"),
            server_url: text("GITHUB_SERVER_URL").unwrap_or_else(|| DEFAULT_SERVER_URL.to_owned()),
            api_url: text("GITHUB_API_URL").unwrap_or_else(|| DEFAULT_API_URL.to_owned()),
            repository: text("GITHUB_REPOSITORY"),
            run_id: text("GITHUB_RUN_ID"),
            run_attempt: text("GITHUB_RUN_ATTEMPT"),
            sha: text("GITHUB_SHA"),
            git_ref: text("GITHUB_REF"),
            ref_name: text("GITHUB_REF_NAME"),
            event_name: text("GITHUB_EVENT_NAME"),
            event_path: text("GITHUB_EVENT_PATH"),
            actor: text("GITHUB_ACTOR"),
            workspace: text("GITHUB_WORKSPACE"),
            runner_temp: text("RUNNER_TEMP"),
            job: text("GITHUB_JOB"),
            workflow: text("GITHUB_WORKFLOW"),
            debug: get("RUNNER_DEBUG").as_deref() == Some("1"),
            id_token_request_url: text("ACTIONS_ID_TOKEN_REQUEST_URL"),
            id_token_request_token: text("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
                .map(|t| super::Secret::new(t, &super::Console::new(false))),
        }
    }

    /// Reads the workflow's own variable `name` as a [`Secret`](super::Secret), masked the moment
    /// it is read: the value of a smoke check's `{fromEnv: VAR}` header. Unlike the runner's
    /// variables above, these names come from promotion.yml, so they cannot be read at start.
    /// Unset, empty or non-Unicode is `None`.
    pub fn read_secret(&self, name: &str, console: &super::Console) -> Option<super::Secret> {
        match self.read_var(name, console) {
            Variable::Set(value) => Some(value),
            Variable::Empty | Variable::Unset => None,
        }
    }

    /// Reads the workflow's own variable `name`, masked the moment it is read (every such
    /// variable promotion.yml names holds a secret: a `fromEnv` Secret value, a header). Tells an
    /// empty variable from an unset one, since the fix differs: `${{ secrets.X }}` of a secret
    /// that does not exist expands to an empty string.
    pub fn read_var(&self, name: &str, console: &super::Console) -> Variable {
        match std::env::var(name) {
            Ok(value) if value.is_empty() => Variable::Empty,
            Ok(value) => Variable::Set(super::Secret::new(value, console)),
            // Not Unicode: no secret a workflow passes is, and it cannot be sent as text anyway.
            Err(_) => Variable::Unset,
        }
    }

    /// The web page of this run: `{server}/{repo}/actions/runs/{run_id}`, plus
    /// `/attempts/{n}` after a re-run so the link shows the attempt that produced it (the run
    /// page alone shows the latest attempt). `None` without a repository or run id.
    pub fn run_url(&self) -> Option<String> {
        let repository = self.repository.as_deref()?;
        let run_id = self.run_id.as_deref()?;
        // `Context::default()` has an empty server URL; fall back rather than emit "/owner/…".
        let server = match self.server_url.trim_end_matches('/') {
            "" => DEFAULT_SERVER_URL,
            server => server,
        };
        let mut url = format!("{server}/{repository}/actions/runs/{run_id}");
        let attempt = self
            .run_attempt
            .as_deref()
            .and_then(|a| a.trim().parse::<u32>().ok());
        if let Some(attempt) = attempt.filter(|&n| n > 1) {
            url.push_str(&format!("/attempts/{attempt}"));
        }
        Some(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn context(vars: &[(&str, &str)]) -> Context {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Context::from_vars(|name| vars.get(name).cloned())
    }

    #[test]
    fn reads_runner_variables() {
        let ctx = context(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_OUTPUT", "/github/file_commands/set_output_1"),
            (
                "GITHUB_STEP_SUMMARY",
                "/github/file_commands/step_summary_1",
            ),
            ("GITHUB_REPOSITORY", "octo/web"),
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_REF_NAME", "main"),
            ("RUNNER_DEBUG", "1"),
        ]);
        assert!(ctx.in_actions);
        assert!(ctx.debug);
        assert_eq!(
            ctx.output_file,
            Some(PathBuf::from("/github/file_commands/set_output_1"))
        );
        assert_eq!(
            ctx.summary_file,
            Some(PathBuf::from("/github/file_commands/step_summary_1"))
        );
        assert_eq!(ctx.repository.as_deref(), Some("octo/web"));
        assert_eq!(ctx.git_ref.as_deref(), Some("refs/heads/main"));
        assert_eq!(ctx.ref_name.as_deref(), Some("main"));
        assert_eq!(ctx.server_url, "https://github.com");
        assert_eq!(ctx.api_url, "https://api.github.com");
    }

    #[test]
    fn empty_variables_are_unset() {
        let ctx = context(&[
            ("GITHUB_ACTIONS", "1"),
            ("GITHUB_OUTPUT", ""),
            ("GITHUB_SERVER_URL", ""),
            ("GITHUB_SHA", ""),
            ("RUNNER_DEBUG", "0"),
        ]);
        assert!(!ctx.in_actions, "only the exact value \"true\" counts");
        assert!(!ctx.debug);
        assert_eq!(ctx.output_file, None);
        assert_eq!(ctx.sha, None);
        assert_eq!(ctx.server_url, "https://github.com");
    }

    #[test]
    fn run_url_names_the_attempt_after_a_rerun() {
        let first = context(&[
            ("GITHUB_SERVER_URL", "https://ghe.example.com/"),
            ("GITHUB_REPOSITORY", "octo/web"),
            ("GITHUB_RUN_ID", "42"),
            ("GITHUB_RUN_ATTEMPT", "1"),
        ]);
        assert_eq!(
            first.run_url().as_deref(),
            Some("https://ghe.example.com/octo/web/actions/runs/42")
        );
        let rerun = Context {
            run_attempt: Some("3".into()),
            ..first
        };
        assert_eq!(
            rerun.run_url().as_deref(),
            Some("https://ghe.example.com/octo/web/actions/runs/42/attempts/3")
        );
    }

    #[test]
    fn run_url_needs_repository_and_run_id() {
        assert_eq!(context(&[("GITHUB_RUN_ID", "42")]).run_url(), None);
        assert_eq!(
            context(&[("GITHUB_REPOSITORY", "octo/web")]).run_url(),
            None
        );
        let default = Context {
            repository: Some("octo/web".into()),
            run_id: Some("7".into()),
            ..Context::default()
        };
        assert_eq!(
            default.run_url().as_deref(),
            Some("https://github.com/octo/web/actions/runs/7")
        );
    }
}
