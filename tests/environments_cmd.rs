use std::path::Path;

use crate::fake_github::{EnvironmentRecord, FakeGitHub, Reviewer, TokenKind};
use crate::util::{Run, example_config, promote, read, run};

const ADMIN: &str = "ghs_envadmin_1a2b3c4d5e6f7a8b9c0d";
const WORKFLOW: &str = "ghs_envworkflow_0f9e8d7c6b5a4f3e2d";

/// GitHub with the teams StudySphere's promotion.yml names.
fn fake() -> FakeGitHub {
    FakeGitHub::builder("studysphere", "app")
        .token(ADMIN, TokenKind::Admin)
        .token(WORKFLOW, TokenKind::WorkflowToken)
        .team("qa", 101)
        .team("tech-leads", 102)
        .team("product-owners", 103)
        .team("engineering-managers", 104)
        .start()
}

/// `promote environments <verb>` against the fake, as a terminal user runs it.
fn environments(gh: &FakeGitHub, verb: &str, token: &str) -> Run {
    run(promote()
        .args(["environments", verb, "--config"])
        .arg(example_config())
        .env("GITHUB_API_URL", gh.url())
        .env("GITHUB_REPOSITORY", "studysphere/app")
        .env("GITHUB_TOKEN", token))
}

#[track_caller]
fn assert_no_token(run: &Run, token: &str) {
    assert!(!run.stdout.contains(token), "token on stdout: {run:?}");
    assert!(!run.stderr.contains(token), "token on stderr: {run:?}");
}

#[test]
fn check_reports_drift_sync_fixes_it_and_check_is_then_clean() {
    let gh = fake();
    let check = environments(&gh, "check", ADMIN);
    assert_eq!(check.code, 1, "{check:?}");
    assert!(
        check.stderr.contains(
            "production: the environment does not exist on GitHub, promotion.yml wants reviewers team:product-owners, team:engineering-managers, wait timer 5 min, branches main"
        ),
        "{check:?}"
    );
    assert!(gh.writes().is_empty(), "check writes nothing");
    assert_no_token(&check, ADMIN);

    let sync = environments(&gh, "sync", ADMIN);
    assert_eq!(sync.code, 0, "{sync:?}");
    assert!(sync.stderr.contains("production"), "{sync:?}");
    assert!(sync.stderr.contains("created"), "{sync:?}");
    assert_no_token(&sync, ADMIN);

    let production = gh.environment("production").expect("created");
    assert_eq!(production.wait_timer, 5);
    assert!(production.prevent_self_review);
    let mut reviewers = production.reviewers.clone();
    reviewers.sort();
    assert_eq!(reviewers, [Reviewer::Team(103), Reviewer::Team(104)]);
    assert_eq!(production.branch_policy, Some((false, true)));
    assert_eq!(production.policy_names(), ["main"]);
    let testing = gh.environment("testing").expect("created");
    let mut reviewers = testing.reviewers.clone();
    reviewers.sort();
    assert_eq!(reviewers, [Reviewer::Team(101), Reviewer::Team(102)]);
    assert_eq!(testing.wait_timer, 0);
    let development = gh.environment("development").expect("created");
    assert!(development.reviewers.is_empty());
    assert_eq!(development.policy_names(), ["main"]);

    let check = environments(&gh, "check", ADMIN);
    assert_eq!(check.code, 0, "{check:?}");
    assert!(
        check
            .stderr
            .contains("GitHub environments match promotion.yml"),
        "{check:?}"
    );

    gh.clear_requests();
    let again = environments(&gh, "sync", ADMIN);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stderr.contains("unchanged"), "{again:?}");
    assert!(
        gh.writes().is_empty(),
        "an environment in sync is not written"
    );
}

#[test]
fn check_names_each_setting_that_drifted() {
    let gh = fake();
    gh.seed_environment(EnvironmentRecord {
        name: "production".into(),
        wait_timer: 5,
        prevent_self_review: true,
        ..EnvironmentRecord::default()
    });
    let check = run(promote()
        .args([
            "environments",
            "check",
            "--environment",
            "production",
            "--config",
        ])
        .arg(example_config())
        .env("GITHUB_API_URL", gh.url())
        .env("GITHUB_REPOSITORY", "studysphere/app")
        .env("GITHUB_TOKEN", WORKFLOW));
    assert_eq!(check.code, 1, "{check:?}");
    assert!(
        check.stderr.contains(
            "production: no required reviewers on GitHub, promotion.yml wants team:product-owners, team:engineering-managers"
        ),
        "{check:?}"
    );
    assert!(
        check.stderr.contains(
            "production: deployment branches on GitHub is any branch, promotion.yml wants main"
        ),
        "{check:?}"
    );
    assert!(
        !check.stderr.contains("testing"),
        "only the environment asked for: {check:?}"
    );
}

#[test]
fn a_workflow_token_cannot_sync_and_is_told_what_is_missing() {
    let gh = fake();
    let sync = environments(&gh, "sync", WORKFLOW);
    assert_eq!(sync.code, 2, "{sync:?}");
    assert!(sync.stderr.contains("administration: write"), "{sync:?}");
    assert!(
        sync.stderr.contains("GITHUB_TOKEN cannot be granted"),
        "{sync:?}"
    );
    assert!(
        sync.stderr
            .contains("GitHub App installation token or a fine-grained personal access token"),
        "{sync:?}"
    );
    assert!(gh.writes().is_empty(), "nothing written: {:?}", gh.writes());
    assert!(gh.environments().is_empty());
    assert_no_token(&sync, WORKFLOW);
}

#[test]
fn a_workflow_token_cannot_write_even_when_reviewers_resolve() {
    // Only development, which has no reviewers: the PUT itself is refused.
    let gh = fake();
    let sync = run(promote()
        .args([
            "environments",
            "sync",
            "--environment",
            "development",
            "--config",
        ])
        .arg(example_config())
        .args(["--github-token", WORKFLOW])
        .env("GITHUB_API_URL", gh.url())
        .env("GITHUB_REPOSITORY", "studysphere/app"));
    assert_eq!(sync.code, 2, "{sync:?}");
    assert!(
        sync.stderr.contains("administration=write"),
        "GitHub's words: {sync:?}"
    );
    assert!(sync.stderr.contains("administration: write"), "{sync:?}");
    assert!(gh.environments().is_empty());
    assert_no_token(&sync, WORKFLOW);
}

#[test]
fn an_unknown_team_is_invalid_and_nothing_is_written() {
    let gh = FakeGitHub::builder("studysphere", "app")
        .token(ADMIN, TokenKind::Admin)
        .team("qa", 101)
        .team("tech-leads", 102)
        .team("product-owners", 103)
        .start();
    let sync = environments(&gh, "sync", ADMIN);
    assert_eq!(sync.code, 2, "{sync:?}");
    assert!(
        sync.stderr.contains("promotion.yml:117:"),
        "located: {sync:?}"
    );
    assert!(
        sync.stderr.contains("no team `engineering-managers`"),
        "{sync:?}"
    );
    assert!(gh.writes().is_empty(), "{:?}", gh.writes());
}

#[test]
fn without_a_repository_the_command_is_invalid() {
    let gh = fake();
    let r = run(promote()
        .args(["environments", "check", "--config"])
        .arg(example_config())
        .env("GITHUB_API_URL", gh.url())
        .env("GITHUB_TOKEN", ADMIN));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("GITHUB_REPOSITORY is not set"), "{r:?}");
    assert!(gh.requests().is_empty());
}

/// The action with `command: environments sync`, then `environments check`: job summaries, and
/// the token only ever in the runner's add-mask command.
#[test]
fn as_an_action_it_writes_a_summary_and_never_the_token() {
    let gh = fake();
    let dir = tempfile::tempdir().unwrap();
    let action = |command: &str, summary: &Path| {
        run(promote()
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_OUTPUT", dir.path().join("output"))
            .env("GITHUB_STEP_SUMMARY", summary)
            .env("GITHUB_API_URL", gh.url())
            .env("GITHUB_REPOSITORY", "studysphere/app")
            .env("INPUT_COMMAND", command)
            .env("INPUT_CONFIG", example_config())
            .env("INPUT_GITHUB-TOKEN", ADMIN))
    };
    let check_summary = dir.path().join("check.md");
    let check = action("environments check", &check_summary);
    assert_eq!(check.code, 1, "{check:?}");
    let summary = read(&check_summary);
    assert!(
        summary.contains("### GitHub environments: 3 differences"),
        "{summary}"
    );
    assert!(
        summary.contains("| production | environment |"),
        "{summary}"
    );
    assert!(
        check.stdout.contains("::error file="),
        "drift is annotated: {check:?}"
    );

    let sync_summary = dir.path().join("sync.md");
    let sync = action("environments sync", &sync_summary);
    assert_eq!(sync.code, 0, "{sync:?}");
    let summary_text = read(&sync_summary);
    assert!(
        summary_text.contains("### GitHub environments synced from"),
        "{summary_text}"
    );
    assert!(
        summary_text.contains("| production | created |"),
        "{summary_text}"
    );

    for (r, summary) in [(&check, read(&check_summary)), (&sync, summary_text)] {
        assert_eq!(
            r.stdout.matches(ADMIN).count(),
            1,
            "only the add-mask line holds the token: {r:?}"
        );
        assert!(r.stdout.contains(&format!("::add-mask::{ADMIN}")));
        assert!(!r.stderr.contains(ADMIN), "{r:?}");
        assert!(!summary.contains(ADMIN));
    }
}
