//! Blobs: existence, cross-repository mount, chunked and monolithic upload sessions with
//! resume, and ranged reads (protocols.md §4).

use std::future::Future;

use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap};
use reqwest::{Method, Response, StatusCode};

use super::{Client, Mount, check_digest_header, location, location_opt, retryable_as_error};
use crate::registry::error::Error;
use crate::registry::reference::Digest;

impl Client {
    /// `POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<repo>`: 201 mounted, 202 an upload
    /// session to use instead.
    pub async fn mount(
        &self,
        repository: &str,
        digest: &Digest,
        from: &str,
    ) -> Result<Mount, Error> {
        let path = format!("/v2/{repository}/blobs/uploads/?mount={digest}&from={from}");
        let r = self
            .simple(Method::POST, &path, HeaderMap::new(), "mounting a blob")
            .await?;
        match r.status() {
            StatusCode::CREATED => Ok(Mount::Mounted),
            StatusCode::ACCEPTED => Ok(Mount::Upload(location(&r)?)),
            _ => Err(Error::from_response(r, &format!("blob {digest}")).await),
        }
    }

    /// Opens an upload session: its `Location`.
    pub async fn start_upload(&self, repository: &str) -> Result<String, Error> {
        let path = format!("/v2/{repository}/blobs/uploads/");
        let r = self
            .simple(Method::POST, &path, HeaderMap::new(), "starting an upload")
            .await?;
        if r.status() != StatusCode::ACCEPTED {
            return Err(Error::from_response(r, &format!("upload to {repository}")).await);
        }
        location(&r)
    }

    /// Sends a whole blob to an upload session and completes it (`PUT <location>?digest=`).
    /// Not retried here: the caller restarts the upload.
    pub async fn put_blob<F, Fut>(
        &self,
        location: &str,
        digest: &Digest,
        len: u64,
        body: F,
    ) -> Result<(), Error>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<reqwest::Body, Error>>,
    {
        let url = with_digest(&self.location_url(location), digest);
        let r = self
            .send(&url, || async {
                Ok(self
                    .http
                    .put(&url)
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, len)
                    .body(body().await?))
            })
            .await?;
        if r.status() != StatusCode::CREATED {
            return Err(Error::from_response(r, &format!("blob {digest}")).await);
        }
        check_digest_header(r.headers(), digest)
    }

    /// Sends bytes `start..start+len` of a blob (`PATCH <location>`, `Content-Range`): the new
    /// `Location`. Not retried here: the caller asks how far the registry got.
    pub async fn patch_chunk(
        &self,
        location: &str,
        start: u64,
        len: u64,
        body: reqwest::Body,
    ) -> Result<String, Error> {
        let url = self.location_url(location);
        let body = std::sync::Mutex::new(Some(body));
        let r = self
            .send(&url, || async {
                let body = body
                    .lock()
                    .map_err(|_| Error::Protocol("poisoned".into()))?
                    .take()
                    // A second attempt (after a 401) has no body left: fail, the caller resumes.
                    .ok_or_else(|| {
                        Error::Protocol("the chunk was refused (401) after it was sent".into())
                    })?;
                Ok(self
                    .http
                    .patch(&url)
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header("content-range", format!("{start}-{}", start + len - 1))
                    .header(CONTENT_LENGTH, len)
                    .body(body))
            })
            .await?;
        if r.status() != StatusCode::ACCEPTED {
            return Err(Error::from_response(r, "upload chunk").await);
        }
        self::location(&r)
    }

    /// How far an upload session got: its new `Location` and the number of bytes the registry
    /// holds (`GET <location>` → 204 + `Range: 0-<last>`). `None` when the session is gone.
    pub async fn upload_status(&self, location: &str) -> Result<Option<(String, u64)>, Error> {
        let url = self.location_url(location);
        let r = self
            .retry
            .run("asking how far the upload got", || async {
                let r = self
                    .send(&url, || async { Ok(self.http.get(&url)) })
                    .await?;
                retryable_as_error(r, "upload session").await
            })
            .await?;
        match r.status() {
            StatusCode::NO_CONTENT | StatusCode::OK => {
                let next = r
                    .headers()
                    .get("range")
                    .and_then(|v| v.to_str().ok())
                    .map_or(0, next_offset);
                let loc = location_opt(&r).unwrap_or_else(|| location.to_string());
                Ok(Some((loc, next)))
            }
            s if s.is_client_error() => Ok(None),
            _ => Err(Error::from_response(r, "upload session").await),
        }
    }

    /// Completes a chunked upload (`PUT <location>?digest=` without a body).
    pub async fn finish_upload(&self, location: &str, digest: &Digest) -> Result<(), Error> {
        let url = with_digest(&self.location_url(location), digest);
        let r = self
            .send(&url, || async {
                Ok(self.http.put(&url).header(CONTENT_LENGTH, 0))
            })
            .await?;
        if r.status() != StatusCode::CREATED {
            return Err(Error::from_response(r, &format!("blob {digest}")).await);
        }
        check_digest_header(r.headers(), digest)
    }

    /// Abandons an upload session (`DELETE <location>`); failures are ignored, the registry
    /// expires sessions anyway.
    pub async fn cancel_upload(&self, location: &str) {
        let url = self.location_url(location);
        let _ = self
            .send(&url, || async { Ok(self.http.delete(&url)) })
            .await;
    }

    /// Opens a blob for reading, from byte `start` (`Range` when not 0), `len` bytes.
    pub async fn get_blob(
        &self,
        repository: &str,
        digest: &Digest,
        start: u64,
        len: u64,
    ) -> Result<Response, Error> {
        let url = self.url(&format!("/v2/{repository}/blobs/{digest}"));
        let r = self
            .retry
            .run("reading a blob", || async {
                let r = self
                    .send(&url, || async {
                        let mut request = self.http.get(&url);
                        if start > 0 || len > 0 {
                            request = request.header(
                                "range",
                                format!("bytes={start}-{}", start + len.max(1) - 1),
                            );
                        }
                        Ok(request)
                    })
                    .await?;
                if !r.status().is_success() {
                    return Err(Error::from_response(r, &format!("blob {digest}")).await);
                }
                if start > 0 && r.status() != StatusCode::PARTIAL_CONTENT {
                    return Err(Error::Protocol(format!(
                        "asked for bytes {start}- of blob {digest}, the registry sent the whole blob"
                    )));
                }
                Ok(r)
            })
            .await?;
        Ok(r)
    }
}

/// The first byte the registry does not have yet, from an upload's `Range: 0-<last>`.
///
/// distribution answers `0-0` for an empty session as well as for one holding one byte (it
/// clamps `size - 1` at 0). `0-0` is read as empty: if the registry did hold a byte, the next
/// chunk is refused (416) and the blob starts over in a new session, which is always correct.
fn next_offset(range: &str) -> u64 {
    let range = range.trim().trim_start_matches("bytes=");
    match range.split_once('-') {
        Some((_, "0")) => 0,
        Some((_, last)) => last.trim().parse::<u64>().map_or(0, |last| last + 1),
        None => 0,
    }
}

/// `<location>?digest=<d>` or `&digest=` when it carries a query already.
fn with_digest(url: &str, digest: &Digest) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!(
        "{url}{separator}digest={}",
        digest.as_str().replace(':', "%3A")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::image::sha256;

    #[test]
    fn upload_range_gives_the_next_offset() {
        assert_eq!(next_offset("0-0"), 0, "distribution's empty session");
        assert_eq!(next_offset("0-1048575"), 1_048_576);
        assert_eq!(next_offset("bytes=0-9"), 10);
        assert_eq!(next_offset("garbage"), 0);
    }

    #[test]
    fn digest_is_added_to_the_location_query() {
        let d = sha256(b"");
        assert_eq!(
            with_digest("http://r/v2/a/blobs/uploads/1?_state=x", &d),
            format!(
                "http://r/v2/a/blobs/uploads/1?_state=x&digest=sha256%3A{}",
                &d.as_str()[7..]
            )
        );
    }
}
