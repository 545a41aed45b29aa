//! A programmable HTTP(S) service for the smoke-check tests: each path answers from a script of
//! statuses, bodies and delays, so latency distributions, error rates and slow starts are
//! exact by construction (request i of a path gets answer i of its script, cycling), not by
//! timing. HTTPS uses a CA made per server (rcgen), whose PEM tests hand to `caFile`.
//!
//! Binds `127.0.0.1:0` and serves from a thread of its own, so sync tests that run the binary
//! can use it; it records every request (method, path, headers).

#![allow(dead_code)] // A test double's face: each test uses the knobs it needs.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

/// One answer: status, body, extra headers, and how long to wait before sending it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
    pub delay: Duration,
}

impl Answer {
    pub fn ok(body: &str) -> Answer {
        Answer::status(200).body(body)
    }

    pub fn status(status: u16) -> Answer {
        Answer {
            status,
            body: String::new(),
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn body(mut self, body: &str) -> Answer {
        self.body = body.to_string();
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Answer {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Waits this long before answering.
    pub fn after(mut self, delay: Duration) -> Answer {
        self.delay = delay;
        self
    }

    /// A redirect to `location`.
    pub fn redirect(location: &str) -> Answer {
        Answer::status(302).header("location", location)
    }
}

/// What a path answers, request by request.
#[derive(Debug, Clone)]
pub enum Route {
    /// Request i (0-based, per path) gets `answers[i % len]`.
    Cycle(Vec<Answer>),
    /// The first `n` requests get `before` (a service warming up), the rest `after`.
    After {
        n: usize,
        before: Answer,
        after: Answer,
    },
}

impl Route {
    pub fn always(answer: Answer) -> Route {
        Route::Cycle(vec![answer])
    }

    /// A distribution by counts, e.g. `[(95, fast), (5, slow)]`: every 100 requests get exactly
    /// 95 fast and 5 slow answers (interleaved, so concurrency does not bunch them).
    pub fn mix(parts: &[(usize, Answer)]) -> Route {
        let total: usize = parts.iter().map(|(n, _)| n).sum();
        let mut answers = Vec::with_capacity(total);
        // Spread each part evenly over the cycle: a stable, deterministic interleaving.
        let mut taken = vec![0usize; parts.len()];
        for i in 0..total {
            let next = parts
                .iter()
                .enumerate()
                .filter(|(k, (n, _))| taken[*k] < *n)
                .min_by(|(a, (na, _)), (b, (nb, _))| {
                    let due_a = (taken[*a] as f64 + 0.5) / *na as f64;
                    let due_b = (taken[*b] as f64 + 0.5) / *nb as f64;
                    due_a.total_cmp(&due_b)
                })
                .map(|(k, _)| k)
                .expect("counts add up to the total");
            taken[next] += 1;
            answers.push(parts[next].1.clone());
            let _ = i;
        }
        Route::Cycle(answers)
    }

    pub fn warming(n: usize, before: Answer, after: Answer) -> Route {
        Route::After { n, before, after }
    }

    fn answer(&self, i: usize) -> Answer {
        match self {
            Route::Cycle(answers) => answers[i % answers.len()].clone(),
            Route::After { n, before, after } => {
                if i < *n {
                    before.clone()
                } else {
                    after.clone()
                }
            }
        }
    }
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Route>,
    counters: HashMap<String, usize>,
    seen: Vec<Seen>,
}

pub struct TestService {
    pub port: u16,
    /// The CA's PEM, for HTTPS.
    pub ca_pem: Option<String>,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TestService {
    pub fn http(routes: Vec<(&str, Route)>) -> TestService {
        TestService::start(routes, None)
    }

    /// HTTPS with a certificate for `127.0.0.1` and `localhost` from a CA of its own.
    pub fn https(routes: Vec<(&str, Route)>) -> TestService {
        let (acceptor, ca) = tls();
        TestService::start(routes, Some((acceptor, ca)))
    }

    fn start(routes: Vec<(&str, Route)>, tls: Option<(TlsAcceptor, String)>) -> TestService {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("non-blocking");
        let port = listener.local_addr().expect("address").port();
        let state = Arc::new(Mutex::new(State {
            routes: routes
                .into_iter()
                .map(|(p, r)| (p.to_string(), r))
                .collect(),
            ..State::default()
        }));
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel();
        let ca_pem = tls.as_ref().map(|(_, ca)| ca.clone());
        let acceptor = tls.map(|(a, _)| a);
        let thread_state = state.clone();
        let thread = std::thread::Builder::new()
            .name(format!("test-service-{port}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    loop {
                        tokio::select! {
                            accepted = listener.accept() => {
                                let Ok((stream, _)) = accepted else { continue };
                                let _ = stream.set_nodelay(true);
                                let state = thread_state.clone();
                                let acceptor = acceptor.clone();
                                tokio::spawn(async move {
                                    let service = service_fn(move |req| handle(state.clone(), req));
                                    match acceptor {
                                        Some(acceptor) => {
                                            if let Ok(tls) = acceptor.accept(stream).await {
                                                let _ = http1::Builder::new()
                                                    .serve_connection(TokioIo::new(tls), service)
                                                    .await;
                                            }
                                        }
                                        None => {
                                            let _ = http1::Builder::new()
                                                .serve_connection(TokioIo::new(stream), service)
                                                .await;
                                        }
                                    }
                                });
                            }
                            _ = &mut stop_rx => return,
                        }
                    }
                });
                // Connections still open (a hanging request) end with the runtime.
                runtime.shutdown_background();
            })
            .expect("spawn the test service");
        TestService {
            port,
            ca_pem,
            state,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// `http(s)://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// Requests received on `path`.
    pub fn count(&self, path: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .counters
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for TestService {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn handle(
    state: Arc<Mutex<State>>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let answer = {
        let mut st = state.lock().unwrap();
        st.seen.push(Seen {
            method: req.method().to_string(),
            path: req
                .uri()
                .path_and_query()
                .map_or(path.clone(), |p| p.to_string()),
            headers: req
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
                .collect(),
        });
        let i = {
            let counter = st.counters.entry(path.clone()).or_default();
            *counter += 1;
            *counter - 1
        };
        st.routes.get(&path).map(|r| r.answer(i))
    };
    let answer = answer.unwrap_or_else(|| Answer::status(404).body("no such path"));
    if !answer.delay.is_zero() {
        tokio::time::sleep(answer.delay).await;
    }
    let mut response = Response::new(Full::new(Bytes::from(answer.body)));
    *response.status_mut() = hyper::StatusCode::from_u16(answer.status).expect("valid status");
    for (name, value) in answer.headers {
        response.headers_mut().insert(
            hyper::header::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            value.parse().expect("header value"),
        );
    }
    Ok(response)
}

/// An acceptor with a certificate for `127.0.0.1` and `localhost`, and its CA's PEM.
fn tls() -> (TlsAcceptor, String) {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "promote-checks-test-ca");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA certificate");
    let key = rcgen::KeyPair::generate().expect("server key");
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("server params");
    let cert = params.signed_by(&key, &ca).expect("server certificate");
    let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(chain, private)
    .expect("certificate and key");
    (TlsAcceptor::from(Arc::new(config)), ca.pem())
}
