//! Registry sign-in against the real registry: htpasswd (Basic), and token auth with a token
//! server that mints RS256 JWTs and grants only what its policy allows.

use std::sync::Arc;

use crate::registry_push::{copy, output, push};
use crate::support::front::allow_all;
use crate::support::images;
use crate::support::registry::{Auth, Registry};
use crate::support::token_stack;
use crate::util::{promote, run};

fn creds(user: &str, password: &str) -> Vec<String> {
    vec![
        "--registry-username".into(),
        user.into(),
        "--registry-password".into(),
        password.into(),
    ]
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn htpasswd_registry_takes_basic_credentials_and_refuses_wrong_ones() {
    let password = "s3cret-htpasswd-Pa55";
    let registry = Registry::start(Auth::Htpasswd(vec![("ci".into(), password.into())]));
    let layout = images::layout(&[1000, 20_000]);
    let image = format!("{}/web", registry.addr);
    let mut extra = creds("ci", password);
    extra.extend(["--tag".into(), "v1".into()]);
    let r = push(layout.path(), &image, &args(&extra));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        output(&r, "digest").as_deref(),
        Some(layout.digest.as_str())
    );
    assert!(
        !r.stdout.contains(password) && !r.stderr.contains(password),
        "{r:?}"
    );

    let wrong = creds("ci", "not-the-password");
    let r = push(layout.path(), &image, &args(&wrong));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("401 Unauthorized"), "{r:?}");
    assert!(
        r.stderr
            .contains(&format!("failed to push {} to {image}", layout.digest)),
        "{r:?}"
    );

    let r = push(layout.path(), &image, &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("needs credentials and none were given"),
        "{r:?}"
    );
}

#[test]
fn token_server_is_asked_once_for_every_scope_of_a_mount() {
    let password = "token-user-pw-7f3a";
    let stack = token_stack(vec![("ci".into(), password.into())], allow_all(), None);
    let layout = images::layout(&[1000, 30_000]);
    let image = format!("{}/team/web", stack.host());
    let r = push(layout.path(), &image, &args(&creds("ci", password)));
    assert_eq!(r.code, 0, "{r:?}");

    let src = format!("{image}@{}", layout.digest);
    let mut extra = creds("ci", password);
    extra.extend(["--tag".into(), "testing".into()]);
    let r = copy(
        &src,
        &format!("{}/team/web-testing", stack.host()),
        &args(&extra),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("3 mounted"), "{r:?}");
    let tokens = stack.front.records("/token");
    let mount_token = tokens
        .iter()
        .find(|t| {
            t.params("scope")
                .contains(&"repository:team/web-testing:pull,push")
        })
        .expect("a token for the copy");
    assert_eq!(
        mount_token.params("scope"),
        [
            "repository:team/web-testing:pull,push",
            "repository:team/web:pull"
        ],
        "both scopes in one token request"
    );
    assert_eq!(mount_token.param("service"), Some(stack.host()));
    assert!(stack.registry.has_tag("team/web-testing", "testing"));
    for t in stack.front.state.issued.lock().unwrap().iter() {
        assert!(
            !r.stdout.contains(t.as_str()) && !r.stderr.contains(t.as_str()),
            "a token was printed"
        );
    }
}

#[test]
fn a_token_without_push_is_a_denied_scope_and_nothing_is_written() {
    let policy =
        Arc::new(|_: &str, repo: &str, action: &str| action == "pull" || repo != "readonly");
    let stack = token_stack(vec![("ci".into(), "pw-2b9c".into())], policy, None);
    let layout = images::layout(&[1000]);
    let mut extra = creds("ci", "pw-2b9c");
    extra.extend(["--tag".into(), "v1".into()]);
    let r = push(
        layout.path(),
        &format!("{}/readonly", stack.host()),
        &args(&extra),
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("access denied for `repository:readonly:push`"),
        "{r:?}"
    );
    assert!(!stack.registry.has_tag("readonly", "v1"));
    assert!(
        stack.front.records("/v2/readonly/blobs/uploads").is_empty(),
        "nothing was sent"
    );
}

#[test]
fn basic_credentials_given_as_action_inputs_are_masked_first() {
    let password = "action-input-pw-91d0";
    let registry = Registry::start(Auth::Htpasswd(vec![("ci".into(), password.into())]));
    let layout = images::layout(&[500]);
    let dir = tempfile::tempdir().unwrap();
    let output_file = dir.path().join("output");
    let summary = dir.path().join("summary");
    let image = format!("{}/web", registry.addr);
    let r = run(promote()
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", &output_file)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("INPUT_COMMAND", "push")
        .env("INPUT_SOURCE", layout.path())
        .env("INPUT_IMAGES", &image)
        .env("INPUT_TAGS", "v1\nsha-0123abc\n")
        .env("INPUT_REGISTRY-USERNAME", "ci")
        .env("INPUT_REGISTRY-PASSWORD", password));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.stdout.lines().next(),
        Some(format!("::add-mask::{password}").as_str())
    );
    assert_eq!(r.stdout.matches(password).count(), 1, "{r:?}");
    assert!(!r.stderr.contains(password));
    let outputs = std::fs::read_to_string(&output_file).unwrap();
    assert!(
        outputs.contains(&format!("{image}@{}", layout.digest)),
        "{outputs}"
    );
    assert!(!outputs.contains(password));
    // The progress lines are inside a collapsible group.
    let group = r
        .stdout
        .find("::group::Transferring 2 blobs")
        .expect("a group");
    let end = r.stdout.find("::endgroup::").expect("group closed");
    assert!(r.stdout[group..end].contains("blobs 2/2"), "{r:?}");
    assert!(registry.has_tag("web", "v1") && registry.has_tag("web", "sha-0123abc"));
    assert!(
        std::fs::read_to_string(&summary)
            .unwrap()
            .contains(&layout.digest)
    );
}
