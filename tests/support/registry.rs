//! The real distribution registry, as a child process with its own config and temp storage.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How the registry wants clients to sign in.
pub enum Auth {
    Anonymous,
    /// htpasswd file with bcrypt entries: `(user, password)`.
    Htpasswd(Vec<(String, String)>),
    /// Token auth: JWTs signed by the key whose certificate is in `bundle` (PEM).
    Token {
        realm: String,
        service: String,
        issuer: String,
        bundle: String,
    },
}

pub struct Registry {
    /// `127.0.0.1:<port>`.
    pub addr: String,
    pub dir: tempfile::TempDir,
    child: Child,
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Registry {
    pub fn start(auth: Auth) -> Registry {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).unwrap();
        let auth_yaml = match &auth {
            Auth::Anonymous => String::new(),
            Auth::Htpasswd(users) => {
                let path = dir.path().join("htpasswd");
                let lines: String = users
                    .iter()
                    .map(|(u, p)| format!("{u}:{}\n", bcrypt::hash(p, 5).expect("bcrypt")))
                    .collect();
                std::fs::write(&path, lines).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
                    path.display()
                )
            }
            Auth::Token {
                realm,
                service,
                issuer,
                bundle,
            } => {
                let path = dir.path().join("bundle.pem");
                std::fs::write(&path, bundle).unwrap();
                format!(
                    "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
                    path.display()
                )
            }
        };
        // A port can be taken between the probe and the registry's bind: try a few.
        for _ in 0..5 {
            let port = free_port();
            let addr = format!("127.0.0.1:{port}");
            let config = dir.path().join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: {addr}\n  secret: promote-action-tests\n  relativeurls: false\n{auth_yaml}",
                    storage.display()
                ),
            )
            .unwrap();
            let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
            let child = Command::new(registry_binary())
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("docker-registry starts (Debian package docker-registry; scripts/test installs it)");
            let mut child = child;
            if wait_ready(&mut child, &addr) {
                return Registry { addr, dir, child };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "docker-registry did not start: {}",
            std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default()
        );
    }

    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Whether a tag exists, read from the storage on disk (no client involved).
    pub fn has_tag(&self, repository: &str, tag: &str) -> bool {
        self.storage()
            .join("docker/registry/v2/repositories")
            .join(repository)
            .join("_manifests/tags")
            .join(tag)
            .join("current/link")
            .is_file()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `GET /v2/` until the registry answers (any status), for at most 20 s.
fn wait_ready(child: &mut Child, addr: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if let Ok(mut s) = TcpStream::connect(addr) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = write!(s, "GET /v2/ HTTP/1.0\r\nHost: {addr}\r\n\r\n");
            let mut buf = [0u8; 12];
            if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.") {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn registry_binary() -> &'static Path {
    for candidate in ["/usr/bin/docker-registry", "/usr/sbin/docker-registry"] {
        if Path::new(candidate).exists() {
            return Path::new(candidate);
        }
    }
    Path::new("docker-registry")
}
