//! `registry/repository[:tag][@sha256:…]`, parsed once and printed canonically.

use std::fmt;

/// A content digest; only sha256 is accepted (what every registry and OCI image uses).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// A digest from any text, unchecked: for test fixtures (short digests, hostile text fed
    /// through the renderers).
    #[cfg(test)]
    pub(crate) fn unchecked(text: impl Into<String>) -> Digest {
        Digest(text.into())
    }

    pub fn parse(text: &str) -> Result<Digest, ReferenceError> {
        let hex = text
            .strip_prefix("sha256:")
            .ok_or_else(|| ReferenceError::Digest(text.to_string()))?;
        if hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Digest(text.to_string()))
        } else {
            Err(ReferenceError::Digest(text.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hex part, shortened for tables and tags (`4f1c2a9b0d3e`).
    pub fn short(&self) -> &str {
        &self.0["sha256:".len().."sha256:".len() + 12]
    }
}

/// Serialized as its text, `sha256:…`.
impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("{0:?} is not a sha256 digest (expected `sha256:` and 64 lower-case hex digits)")]
    Digest(String),
    #[error(
        "{0:?} is not an image reference (expected `registry/repository@sha256:…` or `registry/repository:tag`)"
    )]
    Reference(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Registry host, e.g. `studysphere.azurecr.io` or `127.0.0.1:5000`.
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parses a fully qualified reference. Unlike Docker, no default registry is assumed: a
    /// promotion must say where its images live.
    pub fn parse(text: &str) -> Result<Reference, ReferenceError> {
        let bad = || ReferenceError::Reference(text.to_string());
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => (rest, Some(Digest::parse(digest)?)),
            None => (text, None),
        };
        let (registry, path) = rest.split_once('/').ok_or_else(bad)?;
        let registry_ok = registry.contains(['.', ':']) || registry == "localhost";
        if !registry_ok || registry.is_empty() {
            return Err(bad());
        }
        let (repository, tag) = match path.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag.to_string())),
            _ => (path, None),
        };
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
        };
        let tag_ok = tag.as_deref().is_none_or(|t| {
            !t.is_empty()
                && t.len() <= 128
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
        if !repository.split('/').all(component_ok) || !tag_ok {
            return Err(bad());
        }
        Ok(Reference {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag,
            digest,
        })
    }

    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The reference a workload should run: pinned by digest whenever one is known.
    pub fn pinned(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => format!("{}@{d}", self.name()),
            (None, Some(t)) => format!("{}:{t}", self.name()),
            (None, None) => self.name(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:4f1c2a9b0d3e4f1c2a9b0d3e4f1c2a9b0d3e4f1c2a9b0d3e4f1c2a9b0d3e4f1c";

    #[test]
    fn parses_digest_tag_and_port() {
        let r = Reference::parse(&format!("localhost:5000/team/app:v1@{D}")).unwrap();
        assert_eq!(r.registry, "localhost:5000");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert_eq!(r.pinned(), format!("localhost:5000/team/app@{D}"));
        assert_eq!(r.digest.as_ref().unwrap().short(), "4f1c2a9b0d3e");
    }

    #[test]
    fn refuses_partial_references() {
        for bad in [
            "app",
            "team/app:v1",
            "acr.io/App",
            "acr.io/app@sha256:123",
            "acr.io/app:",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }
}
