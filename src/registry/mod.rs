//! OCI distribution: image references and digests, a registry client (sign-in, retries), images
//! on disk, and the transfer engine behind `push` and `copy`.
//!
//! Everything after a reference is resolved uses its digest: the same bytes run in every
//! environment. This module speaks the distribution protocol only; Azure sign-in (Entra, ACR's
//! token exchange) lives in `azure` and arrives here as [`Credentials`].

mod auth;
mod client;
mod error;
mod http;
mod image;
mod progress;
mod reference;
mod retry;
mod tar;
mod transfer;

pub use auth::{Credentials, jwt_claims};
pub use client::{Client, Mount};
pub use error::Error;
pub use http::{Http, http_client, scheme_for};
pub use image::{Image, Source, SourceError, open_source, sha256};
pub use progress::Progress;
pub use reference::{Digest, Reference, ReferenceError};
pub use retry::RetryPolicy;
pub use transfer::{DEFAULT_CHUNK_SIZE, DEFAULT_CONCURRENCY, Options, push_image, read_image};
