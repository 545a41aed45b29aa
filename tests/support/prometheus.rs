//! The real Prometheus (Debian's `prometheus`) as a child process with its own config and temp
//! storage, scraping every second a test exporter whose `/metrics` the test writes at any time.

#![allow(dead_code)] // A harness's face: each test uses the knobs it needs.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use super::registry::free_port;

/// The scrape job's name: its series carry `job="exporter"`.
pub const JOB: &str = "exporter";

pub struct Prometheus {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    pub exporter: Exporter,
    dir: tempfile::TempDir,
    child: Child,
}

impl Prometheus {
    /// Starts an exporter and a Prometheus scraping it, and returns once Prometheus is ready
    /// and has scraped the exporter once (`up == 1`).
    pub fn start() -> Prometheus {
        let exporter = Exporter::start();
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: {JOB}\n    static_configs:\n      - targets: ['{}']\n",
                exporter.addr
            ),
        )
        .unwrap();
        let log_path = dir.path().join("prometheus.log");
        // A port can be taken between the probe and Prometheus' bind: try a few.
        for _ in 0..5 {
            let addr = format!("127.0.0.1:{}", free_port());
            let log = std::fs::File::create(&log_path).unwrap();
            let mut child = Command::new(prometheus_binary())
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg("--storage.tsdb.retention.time=1h")
                .arg(format!("--web.listen-address={addr}"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("prometheus starts (Debian package prometheus; scripts/test installs it)");
            if wait_ready(&mut child, &addr) {
                return Prometheus {
                    url: format!("http://{addr}"),
                    exporter,
                    dir,
                    child,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "prometheus did not start and scrape the exporter: {}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- prometheus log ({}) ---\n{}", self.url, self.log());
        }
    }
}

/// Polls until `/-/ready` answers 200 and the exporter has been scraped (`up == 1`), for at most
/// 60 s: a cold start on a busy 2-core machine takes a few seconds.
fn wait_ready(child: &mut Child, addr: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut ready = false;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if !ready {
            ready = get(addr, "/-/ready").is_some_and(|(status, _)| status == 200);
        }
        // `up == 1`, URL-encoded: an empty result until the first successful scrape.
        if ready
            && get(addr, "/api/v1/query?query=up%3D%3D1")
                .is_some_and(|(status, body)| status == 200 && body.contains("\"result\":[{"))
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// A plain HTTP/1.0 GET (Prometheus closes the connection after the answer): status and body.
fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    let status = answer.split(' ').nth(1)?.parse().ok()?;
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

fn prometheus_binary() -> &'static Path {
    for candidate in ["/usr/bin/prometheus", "/usr/sbin/prometheus"] {
        if Path::new(candidate).exists() {
            return Path::new(candidate);
        }
    }
    Path::new("prometheus")
}

/// One series: a value, growing at `per_second` since `since` (a counter), or held (0/s).
struct Metric {
    value: f64,
    per_second: f64,
    since: Instant,
}

impl Metric {
    fn at(&self, now: Instant) -> f64 {
        self.value + self.per_second * now.duration_since(self.since).as_secs_f64()
    }
}

/// Series by metric name, then by the whole series text, so that each metric's lines are one
/// group as the exposition format wants.
type Series = BTreeMap<(String, String), Metric>;

/// Serves `/metrics` (any path, in fact) in the Prometheus text exposition format from a thread
/// of its own.
pub struct Exporter {
    /// `127.0.0.1:<port>`.
    pub addr: String,
    series: Arc<Mutex<Series>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Exporter {
    pub fn start() -> Exporter {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("address").to_string();
        let series: Arc<Mutex<Series>> = Arc::default();
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel();
        let state = series.clone();
        let thread = std::thread::Builder::new()
            .name(format!("exporter-{addr}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
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
                                let state = state.clone();
                                tokio::spawn(async move {
                                    let service = service_fn(move |_: Request<hyper::body::Incoming>| {
                                        let body = exposition(&state.lock().unwrap());
                                        async move {
                                            Ok::<_, Infallible>(
                                                Response::builder()
                                                    .header("content-type", "text/plain; version=0.0.4")
                                                    .body(Full::new(Bytes::from(body)))
                                                    .unwrap(),
                                            )
                                        }
                                    });
                                    let _ = http1::Builder::new()
                                        .serve_connection(TokioIo::new(stream), service)
                                        .await;
                                });
                            }
                            _ = &mut stop_rx => return,
                        }
                    }
                });
                runtime.shutdown_background();
            })
            .expect("spawn the exporter");
        Exporter {
            addr,
            series,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Holds `series` (`name{label="value",…}`) at `value`: a gauge, or a counter that stops.
    pub fn set(&self, series: &str, value: f64) {
        self.change(series, |m| {
            m.value = value;
            m.per_second = 0.0;
        });
    }

    /// Makes `series` a counter growing at `per_second` from its current value (0 when new),
    /// by the exporter's clock at each scrape: `rate()` over it reads `per_second`.
    pub fn grow(&self, series: &str, per_second: f64) {
        self.change(series, |m| {
            m.value = m.at(Instant::now());
            m.per_second = per_second;
        });
    }

    /// Stops exposing `series`: Prometheus marks it stale at the next scrape.
    pub fn remove(&self, series: &str) {
        self.series.lock().unwrap().remove(&key(series));
    }

    fn change(&self, series: &str, f: impl FnOnce(&mut Metric)) {
        let mut all = self.series.lock().unwrap();
        let metric = all.entry(key(series)).or_insert_with(|| Metric {
            value: 0.0,
            per_second: 0.0,
            since: Instant::now(),
        });
        f(metric);
        metric.since = Instant::now();
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn key(series: &str) -> (String, String) {
    let name = series.split('{').next().unwrap_or(series).trim();
    (name.to_string(), series.trim().to_string())
}

/// Every series read at the same instant, so that ratios of rates are exact.
fn exposition(series: &Series) -> String {
    let now = Instant::now();
    series
        .iter()
        .map(|((_, text), m)| format!("{text} {}\n", number(m.at(now))))
        .collect()
}

/// A sample value as the text format writes it.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        v.to_string()
    }
}
