//! OCI distribution: image references and digests.
//!
//! Everything after a reference is resolved uses its digest: the same bytes run in every
//! environment. Pushing and copying images arrives with the images issue.

mod reference;

pub use reference::{Digest, Reference, ReferenceError};
