//! Azure sign-in end to end: GitHub OIDC → Entra → ACR `/oauth2/exchange` → `/oauth2/token`,
//! against doubles that check the exact form fields and audiences, in front of the real
//! token-auth registry; and the classic failures, each with its advice.

use std::process::Command;
use std::sync::Arc;

use crate::registry_push::{copy, output};
use crate::support::front::{ACR_SCOPE, AUDIENCE, AzureSetup, allow_all};
use crate::support::{Stack, images, token_stack};
use crate::util::{Run, promote, run};

fn azure_stack(azure: &AzureSetup) -> Stack {
    token_stack(Vec::new(), allow_all(), Some(azure.clone()))
}

/// The binary with the job's OIDC variables and the Azure flags, pointed at the doubles.
fn with_azure(cmd: &mut Command, stack: &Stack, azure: &AzureSetup) {
    cmd.env(
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        format!("http://{}/oidc/token?api-version=2.0", stack.host()),
    )
    .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", &azure.request_token)
    .args(["--azure-client-id", &azure.client_id])
    .args(["--azure-tenant-id", &azure.tenant])
    .args([
        "--azure-authority-host",
        &format!("http://{}", stack.host()),
    ]);
}

fn azure_push(stack: &Stack, azure: &AzureSetup, layout: &images::Layout, repo: &str) -> Run {
    let mut cmd = promote();
    cmd.arg("push").arg("--source").arg(layout.path()).args([
        "--image",
        &format!("{}/{repo}", stack.host()),
        "--tag",
        "v1",
    ]);
    with_azure(&mut cmd, stack, azure);
    run(&mut cmd)
}

fn assert_no_token_printed(stack: &Stack, r: &Run) {
    let issued = stack.front.state.issued.lock().unwrap();
    assert!(!issued.is_empty());
    for token in issued.iter() {
        for line in r.stdout.lines().chain(r.stderr.lines()) {
            assert!(
                !line.contains(token.as_str()) || line.starts_with("::add-mask::"),
                "a token was printed: {line}"
            );
        }
    }
}

#[test]
fn oidc_chain_pushes_and_each_exchange_uses_a_fresh_id_token() {
    let azure = AzureSetup::new();
    let stack = azure_stack(&azure);
    let layout = images::layout(&[1000, 40_000]);
    let r = azure_push(&stack, &azure, &layout, "studysphere/web");
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        output(&r, "digest").as_deref(),
        Some(layout.digest.as_str())
    );
    assert!(stack.registry.has_tag("studysphere/web", "v1"));
    assert_no_token_printed(&stack, &r);

    // GitHub OIDC: the audience Entra expects.
    let oidc = stack.front.records("/oidc/token");
    assert_eq!(oidc.len(), 1);
    assert_eq!(oidc[0].param("audience"), Some(AUDIENCE));
    assert_eq!(oidc[0].param("api-version"), Some("2.0"));
    // Entra: exactly the client-credentials form with a JWT assertion.
    let entra = stack
        .front
        .records(&format!("/{}/oauth2/v2.0/token", azure.tenant));
    assert_eq!(entra.len(), 1);
    let mut fields: Vec<&str> = entra[0].form.iter().map(|(k, _)| k.as_str()).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "client_assertion",
            "client_assertion_type",
            "client_id",
            "grant_type",
            "scope"
        ]
    );
    assert_eq!(entra[0].param("scope"), Some(ACR_SCOPE));
    assert_eq!(entra[0].param("client_id"), Some(azure.client_id.as_str()));
    // ACR: exchange, then access tokens with the repository scope.
    let exchange = stack.front.records("/oauth2/exchange");
    assert_eq!(exchange.len(), 1);
    assert_eq!(exchange[0].param("tenant"), Some(azure.tenant.as_str()));
    assert_eq!(exchange[0].param("service"), Some(stack.host()));
    let token = stack.front.records("/oauth2/token");
    assert!(
        token
            .iter()
            .all(|t| t.param("grant_type") == Some("refresh_token"))
    );
    assert!(
        token
            .iter()
            .any(|t| t.params("scope") == ["repository:studysphere/web:pull,push"])
    );

    // A copy between two registry names signs in twice: two exchanges, two fresh ID tokens
    // (the Entra double refuses an ID token it has seen).
    let other_name = stack.host().replace("127.0.0.1", "localhost");
    let mut cmd = promote();
    cmd.arg("copy")
        .arg(format!(
            "{}/studysphere/web@{}",
            stack.host(),
            layout.digest
        ))
        .arg(format!("{other_name}/studysphere/web-production"))
        .args(["--tag", "production"]);
    with_azure(&mut cmd, &stack, &azure);
    let r = run(&mut cmd);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(stack.front.records("/oidc/token").len(), 3);
    let entra = stack
        .front
        .records(&format!("/{}/oauth2/v2.0/token", azure.tenant));
    assert_eq!(entra.len(), 3);
    let assertions: std::collections::HashSet<_> = entra
        .iter()
        .map(|e| e.param("client_assertion").unwrap().to_string())
        .collect();
    assert_eq!(assertions.len(), 3, "a new ID token for every exchange");
    assert!(
        stack
            .registry
            .has_tag("studysphere/web-production", "production")
    );
    assert_no_token_printed(&stack, &r);
}

#[test]
fn service_principal_secret_replaces_the_assertion() {
    let azure = AzureSetup::new();
    let stack = azure_stack(&azure);
    let layout = images::layout(&[700]);
    let sp_push = |secret: &str| {
        run(promote()
            .arg("push")
            .arg("--source")
            .arg(layout.path())
            .args(["--image", &format!("{}/sp/web", stack.host())])
            .args([
                "--azure-client-id",
                &azure.client_id,
                "--azure-tenant-id",
                &azure.tenant,
            ])
            .args(["--azure-client-secret", secret])
            .args([
                "--azure-authority-host",
                &format!("http://{}", stack.host()),
            ]))
    };
    let r = sp_push(&azure.client_secret);
    assert_eq!(r.code, 0, "{r:?}");
    let entra = stack
        .front
        .records(&format!("/{}/oauth2/v2.0/token", azure.tenant));
    assert_eq!(
        entra[0].param("client_secret"),
        Some(azure.client_secret.as_str())
    );
    assert_eq!(entra[0].param("client_assertion"), None);
    assert!(stack.front.records("/oidc/token").is_empty());
    assert!(!r.stderr.contains(&azure.client_secret) && !r.stdout.contains(&azure.client_secret));

    let r = sp_push("wrong-secret-value");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("AADSTS7000215"), "{r:?}");
    assert!(
        r.stderr.contains("the client secret is wrong or expired"),
        "{r:?}"
    );
}

#[test]
fn federated_subject_mismatch_names_the_subject_to_add() {
    let mut azure = AzureSetup::new();
    azure.job_subject = "repo:studysphere/app:ref:refs/heads/feature".into();
    let stack = azure_stack(&azure);
    let layout = images::layout(&[100]);
    let r = azure_push(&stack, &azure, &layout, "web");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("AADSTS70021"), "{r:?}");
    assert!(
        r.stderr
            .contains("`repo:studysphere/app:ref:refs/heads/feature`"),
        "{r:?}"
    );
    assert!(r.stderr.contains(&format!(
        "failed to sign in to Microsoft Entra as {}",
        azure.client_id
    )));
    assert!(!r.stderr.contains("Trace ID"), "one line per error: {r:?}");
    assert!(stack.front.records("/v2/web/blobs/uploads").is_empty());
}

#[test]
fn an_expired_id_token_is_aadsts700024_with_advice() {
    let mut azure = AzureSetup::new();
    azure.id_token_lifetime = -120;
    let stack = azure_stack(&azure);
    let r = azure_push(&stack, &azure, &images::layout(&[100]), "web");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("AADSTS700024"), "{r:?}");
    assert!(
        r.stderr.contains("requests a fresh one for every exchange"),
        "{r:?}"
    );
}

#[test]
fn missing_acr_push_is_a_denied_scope() {
    let azure = AzureSetup::new();
    let policy = Arc::new(|_: &str, _: &str, action: &str| action == "pull");
    let stack = token_stack(Vec::new(), policy, Some(azure.clone()));
    let r = azure_push(&stack, &azure, &images::layout(&[100]), "web");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("access denied for `repository:web:push`"),
        "{r:?}"
    );
    assert!(r.stderr.contains("AcrPush"), "{r:?}");
    assert!(!stack.registry.has_tag("web", "v1"));
}

#[test]
fn without_id_token_permission_the_error_says_how_to_grant_it() {
    let layout = images::layout(&[100]);
    let r = run(promote()
        .arg("push")
        .arg("--source")
        .arg(layout.path())
        .args(["--image", "myacr.azurecr.io/web"])
        .args(["--azure-client-id", "a1b2", "--azure-tenant-id", "t1"]));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("permissions: id-token: write"), "{r:?}");
    let r = copy(
        "myacr.azurecr.io/a:v1",
        "myacr.azurecr.io/b",
        &["--azure-client-id", "a1b2"],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("azure-tenant-id is not"), "{r:?}");
}
