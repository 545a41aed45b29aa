//! Connecting to a cluster: AKS through an ARM double (listClusterUserCredential) and a token
//! source; kubeconfig inputs and contexts.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use futures_util::future::BoxFuture;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::ListParams;
use promote_action::actions::{Console, Secret};
use promote_action::azure::{AKS_SCOPE, ARM_SCOPE};
use promote_action::config::AksCluster;
use promote_action::kube::{EntraToken, TokenSource, connect_aks};
use serde_json::json;

use crate::fake_kube::FakeKube;
use crate::kube_deploy::staging;
use crate::util::run;

/// Hands out the fake's token for AKS and a fixed ARM token, each valid for an hour.
struct Tokens {
    aks: String,
    asked: Mutex<Vec<&'static str>>,
}

impl TokenSource for Tokens {
    fn token<'a>(&'a self, scope: &'static str) -> BoxFuture<'a, anyhow::Result<EntraToken>> {
        Box::pin(async move {
            self.asked.lock().unwrap().push(scope);
            let console = Console::new(false);
            let value = if scope == ARM_SCOPE {
                "arm-token".to_string()
            } else {
                self.aks.clone()
            };
            Ok(EntraToken {
                secret: Secret::new(value, &console),
                expires_at: SystemTime::now() + Duration::from_secs(3600),
            })
        })
    }
}

/// What the ARM double received: method, path and query, Authorization.
type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

/// An ARM double answering `listClusterUserCredential` with a kubeconfig for `server` (an
/// Entra cluster: its user runs kubelogin), or 403 for subscription `denied`.
async fn arm(server: String) -> (String, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let record = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let record = record.clone();
            let server = server.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |request: hyper::Request<hyper::body::Incoming>| {
                        let record = record.clone();
                        let server = server.clone();
                        async move {
                            let auth = request
                                .headers()
                                .get("authorization")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_string();
                            let target = request
                                .uri()
                                .path_and_query()
                                .map(|p| p.to_string())
                                .unwrap_or_default();
                            record.lock().unwrap().push((
                                request.method().to_string(),
                                target.clone(),
                                auth,
                            ));
                            let _ = request.into_body().collect().await;
                            let (status, body) = if target.starts_with("/subscriptions/denied/") {
                                (
                                    403,
                                    json!({ "error": { "code": "AuthorizationFailed", "message": "The client 'x' does not have authorization to perform action 'Microsoft.ContainerService/managedClusters/listClusterUserCredential/action'." } }),
                                )
                            } else {
                                let kubeconfig = format!(
                                    "apiVersion: v1
clusters:
- name: aks
  cluster: {{server: '{server}'}}
contexts:
- name: aks
  context: {{cluster: aks, user: clusterUser_rg_aks}}
current-context: aks
users:
- name: clusterUser_rg_aks
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: kubelogin
      args: [get-token, --server-id, 6dae42f8-4368-4678-94ff-3960e28e3630]
"
                                );
                                let value =
                                    base64::engine::general_purpose::STANDARD.encode(kubeconfig);
                                (
                                    200,
                                    json!({ "kubeconfigs": [{ "name": "clusterUser", "value": value }] }),
                                )
                            };
                            Ok::<_, Infallible>(
                                hyper::Response::builder()
                                    .status(status)
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from(body.to_string())))
                                    .unwrap(),
                            )
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (format!("http://{addr}"), seen)
}

fn aks(subscription: &str) -> AksCluster {
    AksCluster {
        subscription: subscription.into(),
        resource_group: "rg".into(),
        name: "aks".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aks_credentials_come_from_arm_and_the_entra_token_is_sent() {
    let fake = FakeKube::start();
    let _ = fake.client().await; // installs the crypto provider
    let (arm_base, seen) = arm(fake.url()).await;
    let tokens = Arc::new(Tokens {
        aks: fake.token(),
        asked: Mutex::default(),
    });
    let connection = connect_aks(
        &reqwest::Client::new(),
        &arm_base,
        &aks("sub-1"),
        tokens.clone(),
        &Console::new(false),
    )
    .await
    .expect("connects");
    assert!(connection.description.contains("AKS cluster rg/aks"));
    let namespaces: Api<Namespace> = Api::all(connection.client.clone());
    namespaces
        .list(&ListParams::default())
        .await
        .expect("the Entra token is accepted");

    let requests = seen.lock().unwrap().clone();
    assert_eq!(
        requests,
        [(
            "POST".to_string(),
            "/subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks/listClusterUserCredential?api-version=2024-02-01".to_string(),
            "Bearer arm-token".to_string(),
        )]
    );
    assert_eq!(*tokens.asked.lock().unwrap(), [ARM_SCOPE, AKS_SCOPE]);
    // The refresh before expiry is tested on paused time beside the code
    // (`kube::connect::aks::tests::the_token_is_refreshed_until_the_client_is_dropped`).
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arm_refusals_say_which_role_is_missing() {
    let fake = FakeKube::start();
    let _ = fake.client().await;
    let (arm_base, _) = arm(fake.url()).await;
    let tokens = Arc::new(Tokens {
        aks: fake.token(),
        asked: Mutex::default(),
    });
    let err = match connect_aks(
        &reqwest::Client::new(),
        &arm_base,
        &aks("denied"),
        tokens,
        &Console::new(false),
    )
    .await
    {
        Ok(_) => panic!("ARM said 403"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("answered 403"), "{err}");
    assert!(err.contains("does not have authorization"), "{err}");
    assert!(
        err.contains("Azure Kubernetes Service Cluster User Role"),
        "{err}"
    );
}

#[test]
fn an_unknown_context_is_invalid_input_listing_the_known_ones() {
    let fake = FakeKube::start();
    let project = staging(&fake, "");
    let out = run(&mut project.command("history", &["--context", "prod"]));
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("context `prod` is not in the kubeconfig (it has: fake-kube)"),
        "{out:?}"
    );
}

#[test]
fn an_aks_cluster_without_an_azure_identity_says_how_to_sign_in() {
    let fake = FakeKube::start();
    let project = staging(
        &fake,
        "    cluster: { aks: { subscription: s, resourceGroup: rg, name: aks } }\n",
    );
    let mut cmd = crate::util::promote();
    cmd.arg("--config")
        .arg(project.dir.path().join("promotion.yml"))
        .args(["history", "--environment", "staging"]);
    let out = run(&mut cmd);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("azure-client-id"), "{out:?}");
}
