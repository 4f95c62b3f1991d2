//! Docker image references (`busybox`, `127.0.0.1:5000/a/b:t`, `x@sha256:…`), parsed and
//! normalised exactly as docker/distribution's `reference.ParseNormalizedNamed` does.
//!
//! Grammar (distribution `reference/reference.go`):
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [domain '/'] path-component ['/' path-component]*
//! domain     := host [':' port-number]
//! path-component := [a-z0-9]+ (separator [a-z0-9]+)*     separator := [_.] | __ | [-]+
//! tag        := [\w][\w.-]{0,127}
//! ```

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::{Error, Result};

/// Docker Hub's canonical registry name.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The legacy Docker Hub name, normalised to [`DEFAULT_REGISTRY`].
const LEGACY_REGISTRY: &str = "index.docker.io";
/// Prefix of official images on Docker Hub.
const OFFICIAL_PREFIX: &str = "library/";
/// Tag used when a reference names neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// Longest allowed `domain/path` name.
const NAME_MAX: usize = 255;
/// Longest allowed tag.
const TAG_MAX: usize = 128;

const INVALID: &str = "invalid reference format";

/// A normalised image reference: registry, repository, and a tag and/or digest.
///
/// A reference parsed without tag or digest gets the tag `latest`, as `docker pull` does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

// === impl Reference ===

impl Reference {
    /// Parses and normalises a reference.
    ///
    /// # Errors
    /// [`Error::InvalidReference`] with Docker's message, e.g. `invalid reference format:
    /// repository name (library/Busybox) must be lowercase`.
    pub fn parse(s: &str) -> Result<Self> {
        let mut r = Self::parse_named(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_owned());
        }
        Ok(r)
    }

    /// Like [`Reference::parse`] but without adding the default tag, for filters and
    /// `docker images NAME` where "no tag" means "any tag".
    ///
    /// # Errors
    /// As [`Reference::parse`].
    pub fn parse_named(s: &str) -> Result<Self> {
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(Error::reference(
                s,
                format!(
                    "invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"
                ),
            ));
        }
        let (registry, remainder) = split_docker_domain(s);
        let remote = remainder
            .split_once(':')
            .map_or(remainder.as_str(), |(r, _)| r);
        if remote.to_lowercase() != remote {
            return Err(Error::reference(
                s,
                format!("{INVALID}: repository name ({remote}) must be lowercase"),
            ));
        }
        parse_full(s, registry, &remainder)
    }

    /// Builds a reference from parts, validating each as the parser would.
    ///
    /// # Errors
    /// [`Error::InvalidReference`] when a part is malformed.
    pub fn from_parts(
        registry: &str,
        repository: &str,
        tag: Option<&str>,
        digest: Option<&Digest>,
    ) -> Result<Self> {
        let mut s = format!("{registry}/{repository}");
        if let Some(tag) = tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(digest) = digest {
            s.push('@');
            s.push_str(digest.as_str());
        }
        Self::parse_named(&s)
    }

    /// The registry host (`docker.io`, `127.0.0.1:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path within the registry (`library/busybox`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The name as Docker prints it: `busybox`, `user/app`, `127.0.0.1:5000/a/b`.
    pub fn familiar_name(&self) -> String {
        if self.registry == DEFAULT_REGISTRY {
            match self.repository.strip_prefix(OFFICIAL_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_owned(),
                _ => self.repository.clone(),
            }
        } else {
            format!("{}/{}", self.registry, self.repository)
        }
    }

    /// The reference as Docker prints it: `busybox:latest`, `127.0.0.1:5000/a/b:t`,
    /// `busybox@sha256:…`.
    pub fn familiar(&self) -> String {
        self.with_suffix(self.familiar_name())
    }

    /// The full name without tag or digest: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// A copy with `tag` set and the digest dropped.
    ///
    /// # Errors
    /// [`Error::InvalidReference`] when `tag` is not a valid tag.
    pub fn with_tag(&self, tag: &str) -> Result<Self> {
        if !valid_tag(tag) {
            return Err(Error::reference(tag, INVALID));
        }
        Ok(Reference {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: Some(tag.to_owned()),
            digest: None,
        })
    }

    /// A copy pinned to `digest`, keeping the tag (`name:tag@digest`).
    pub fn with_digest(&self, digest: Digest) -> Self {
        Reference {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: self.tag.clone(),
            digest: Some(digest),
        }
    }

    fn with_suffix(&self, mut s: String) -> String {
        if let Some(tag) = &self.tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            s.push('@');
            s.push_str(digest.as_str());
        }
        s
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.with_suffix(self.name()))
    }
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Reference::parse(s)
    }
}

/// distribution's `splitDockerDomain`: the first component is a registry only when it
/// contains `.` or `:`, is `localhost`, or has uppercase letters.
fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (first.to_owned(), rest.to_owned())
        }
        _ => (DEFAULT_REGISTRY.to_owned(), name.to_owned()),
    };
    if domain == LEGACY_REGISTRY {
        domain = DEFAULT_REGISTRY.to_owned();
    }
    if domain == DEFAULT_REGISTRY && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_PREFIX}{remainder}");
    }
    (domain, remainder)
}

/// distribution's `Parse` applied to `domain/remainder`.
fn parse_full(input: &str, registry: String, remainder: &str) -> Result<Reference> {
    let invalid = || Error::reference(input, INVALID);
    if remainder.is_empty() {
        return Err(Error::reference(
            input,
            format!("{INVALID}: repository name must have at least one component"),
        ));
    }
    let (name_tag, digest) = match remainder.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (remainder, None),
    };
    let digest = match digest {
        None => None,
        Some(d) => {
            let (algo, hex) = d.split_once(':').ok_or_else(invalid)?;
            if !valid_digest_algorithm(algo)
                || hex.len() < 32
                || !hex.bytes().all(|b| b.is_ascii_hexdigit())
            {
                return Err(invalid());
            }
            Some(Digest::parse(d).map_err(|e| Error::reference(input, format!("{INVALID}: {e}")))?)
        }
    };
    // The tag follows the last ':' of the path part (a port lives in the domain, which is
    // already split off).
    let (repository, tag) = match name_tag.rsplit_once(':') {
        Some((r, t)) => (r, Some(t)),
        None => (name_tag, None),
    };
    if let Some(tag) = tag {
        if !valid_tag(tag) {
            return Err(invalid());
        }
    }
    if !valid_domain(&registry) || !repository.split('/').all(valid_path_component) {
        return Err(invalid());
    }
    if registry.len() + 1 + repository.len() > NAME_MAX {
        return Err(Error::reference(
            input,
            format!("{INVALID}: repository name must not be more than {NAME_MAX} characters"),
        ));
    }
    Ok(Reference {
        registry,
        repository: repository.to_owned(),
        tag: tag.map(str::to_owned),
        digest,
    })
}

/// `[a-z0-9]+ ((?:[._]|__|[-]+) [a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `host [':' port]` where host is a domain name, an IPv4 address or `[IPv6]`.
fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.is_empty()
            || !v6
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => ("ipv6", Some(port)),
                None => return false,
            },
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    host.split('.').all(|c| {
        let b = c.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
    })
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(t: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= TAG_MAX
        && word(b[0])
        && b.iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

/// `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*`
fn valid_digest_algorithm(a: &str) -> bool {
    a.split(['-', '_', '+', '.']).all(|part| {
        let b = part.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn parts(s: &str) -> (String, String, Option<String>, Option<String>) {
        let r = Reference::parse(s).unwrap();
        (
            r.registry().to_owned(),
            r.repository().to_owned(),
            r.tag().map(str::to_owned),
            r.digest().map(ToString::to_string),
        )
    }

    #[test]
    fn normalises_official_image_to_docker_hub_library() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.registry(), "docker.io");
        assert_eq!(r.repository(), "library/busybox");
        assert_eq!(r.tag(), Some("latest"));
        assert_eq!(r.digest(), None);
        assert_eq!(r.familiar(), "busybox:latest");
        assert_eq!(r.familiar_name(), "busybox");
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
    }

    #[test]
    fn normalises_user_repos_and_legacy_hub_names() {
        assert_eq!(
            parts("user/app:1.0"),
            (
                "docker.io".into(),
                "user/app".into(),
                Some("1.0".into()),
                None
            )
        );
        let r = Reference::parse("index.docker.io/library/alpine:3").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/alpine:3");
        assert_eq!(r.familiar(), "alpine:3");
        let r = Reference::parse("docker.io/library/a/b").unwrap();
        assert_eq!(r.familiar(), "library/a/b:latest");
    }

    #[test]
    fn parses_registry_with_port_and_nested_path() {
        let r = Reference::parse("127.0.0.1:5000/a/b:t").unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "a/b");
        assert_eq!(r.tag(), Some("t"));
        assert_eq!(r.familiar(), "127.0.0.1:5000/a/b:t");
        assert_eq!(r.familiar_name(), "127.0.0.1:5000/a/b");
        assert_eq!(r.to_string(), "127.0.0.1:5000/a/b:t");
        let r = Reference::parse("localhost:5000/x").unwrap();
        assert_eq!((r.registry(), r.tag()), ("localhost:5000", Some("latest")));
        let r = Reference::parse("[::1]:5000/x:y").unwrap();
        assert_eq!((r.registry(), r.repository()), ("[::1]:5000", "x"));
    }

    #[test]
    fn localhost_is_a_registry_but_plain_words_are_not() {
        assert_eq!(parts("localhost/x").0, "localhost");
        assert_eq!(parts("localhost/x").1, "x");
        assert_eq!(parts("localhost").1, "library/localhost");
        assert_eq!(parts("foo/bar").0, "docker.io");
    }

    #[test]
    fn digest_references_have_no_default_tag() {
        let r = Reference::parse(&format!("x@sha256:{HEX}")).unwrap();
        assert_eq!(r.repository(), "library/x");
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().unwrap().hex(), HEX);
        assert_eq!(r.familiar(), format!("x@sha256:{HEX}"));
        let r = Reference::parse(&format!("x:t@sha256:{HEX}")).unwrap();
        assert_eq!(r.tag(), Some("t"));
        assert_eq!(r.to_string(), format!("docker.io/library/x:t@sha256:{HEX}"));
    }

    #[test]
    fn uppercase_repository_gets_dockers_message() {
        let err = Reference::parse("Busybox").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid reference format: repository name (library/Busybox) must be lowercase"
        );
        // An uppercase first component is a registry name, and those may have capitals.
        let r = Reference::parse("MyRegistry/app").unwrap();
        assert_eq!(r.registry(), "MyRegistry");
    }

    #[test]
    fn rejects_malformed_references() {
        for bad in [
            "",
            "a b",
            "busybox:",
            ":tag",
            "busybox:-tag",
            "a//b",
            "a/b/",
            "-a",
            "a-",
            "a..b",
            "x@sha256:abc",
            "x@sha256",
            "127.0.0.1:port/x",
            "x:t:t",
        ] {
            let err = Reference::parse(bad).unwrap_err();
            assert!(
                err.to_string().starts_with("invalid reference format"),
                "{bad:?} gave {err}"
            );
        }
        let long_tag = format!("x:{}", "a".repeat(129));
        assert!(Reference::parse(&long_tag).is_err());
        let long_name = "a".repeat(300);
        assert!(Reference::parse(&long_name)
            .unwrap_err()
            .to_string()
            .contains("must not be more than 255 characters"));
        let err = Reference::parse(HEX).unwrap_err();
        assert!(err
            .to_string()
            .contains("cannot specify 64-byte hexadecimal strings"));
    }

    #[test]
    fn accepts_separators_allowed_by_the_grammar() {
        for ok in [
            "a_b",
            "a__b",
            "a.b",
            "a---b",
            "a/b-c.d_e",
            "x:v1.2-rc_3",
            "x:_y",
        ] {
            assert!(Reference::parse(ok).is_ok(), "{ok}");
        }
        assert!(Reference::parse("a___b").is_err());
    }

    #[test]
    fn with_tag_replaces_tag_and_drops_digest() {
        let r = Reference::parse(&format!("x:t@sha256:{HEX}")).unwrap();
        let t = r.with_tag("v2").unwrap();
        assert_eq!(t.familiar(), "x:v2");
        assert!(r.with_tag("bad tag").is_err());
        let d = Reference::parse("x")
            .unwrap()
            .with_digest(Digest::parse(&format!("sha256:{HEX}")).unwrap());
        assert_eq!(d.familiar(), format!("x:latest@sha256:{HEX}"));
    }

    #[test]
    fn parse_named_keeps_missing_tag_and_from_parts_round_trips() {
        let r = Reference::parse_named("busybox").unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.familiar(), "busybox");
        let p = Reference::from_parts("127.0.0.1:5000", "a/b", Some("t"), None).unwrap();
        assert_eq!(p, Reference::parse("127.0.0.1:5000/a/b:t").unwrap());
        assert!(Reference::from_parts("docker.io", "UP", None, None).is_err());
    }
}
