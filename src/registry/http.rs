//! The HTTP clients every API caller shares: one rustls stack, one set of timeouts, and the
//! scheme rule for registries on the loopback interface.

use reqwest::{Method, RequestBuilder};

/// `http` for a registry on the loopback interface, `https` for any other.
pub fn scheme_for(registry: &str) -> &'static str {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => registry.split(':').next().unwrap_or(registry),
    };
    let loopback = host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback { "http" } else { "https" }
}

/// The HTTP client every registry and Azure call shares: rustls with aws-lc-rs, the system's
/// roots, and an identifying User-Agent. No overall timeout: a 1 GiB layer takes as long as it
/// takes; a stalled connection is caught by the read timeout.
pub fn http_client() -> reqwest::Client {
    builder().build().expect("the TLS backend initialises")
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("promote-action/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(30))
        .read_timeout(std::time::Duration::from_secs(300))
}

/// The HTTP clients of one run: a plain one for `http://` URLs (loopback registries, which
/// need no trust roots), and the TLS one, built on first use, because loading the system's trust
/// roots costs more than a whole warm push on loopback.
///
/// # Caveats
/// A plain-`http` registry that redirects to `https` storage fails: the plain client has no roots.
#[derive(Debug, Clone)]
pub struct Http {
    plain: reqwest::Client,
    tls: std::sync::Arc<std::sync::OnceLock<reqwest::Client>>,
}

impl Default for Http {
    fn default() -> Self {
        Http::new()
    }
}

impl Http {
    pub fn new() -> Http {
        Http {
            plain: builder()
                .tls_certs_only(Vec::new())
                .build()
                .expect("the TLS backend initialises"),
            tls: std::sync::Arc::default(),
        }
    }

    /// The client for `url`: plain for `http://`, TLS otherwise.
    pub fn for_url(&self, url: &str) -> &reqwest::Client {
        if url.starts_with("http://") {
            &self.plain
        } else {
            self.tls.get_or_init(http_client)
        }
    }

    pub fn request(&self, method: Method, url: &str) -> RequestBuilder {
        self.for_url(url).request(method, url)
    }

    pub fn get(&self, url: &str) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    pub fn post(&self, url: &str) -> RequestBuilder {
        self.request(Method::POST, url)
    }

    pub fn put(&self, url: &str) -> RequestBuilder {
        self.request(Method::PUT, url)
    }

    pub fn patch(&self, url: &str) -> RequestBuilder {
        self.request(Method::PATCH, url)
    }

    pub fn delete(&self, url: &str) -> RequestBuilder {
        self.request(Method::DELETE, url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_use_http() {
        for (registry, scheme) in [
            ("localhost:5000", "http"),
            ("127.0.0.1:5000", "http"),
            ("127.1.2.3", "http"),
            ("[::1]:5000", "http"),
            ("myacr.azurecr.io", "https"),
            ("localhost.example.com", "https"),
            ("10.0.0.1:5000", "https"),
        ] {
            assert_eq!(scheme_for(registry), scheme, "{registry}");
        }
    }
}
