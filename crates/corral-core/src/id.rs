//! Container identifiers and names, validated once.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A malformed id or name.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdError {
    /// The name does not match Docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
    #[error("invalid container name ({0}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName(String),
    /// The id is not 64 lowercase hex digits.
    #[error("invalid container id {0:?}")]
    InvalidId(String),
}

/// A container id: 64 lowercase hex digits, like Docker's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContainerId(String);

impl ContainerId {
    /// A fresh random id.
    pub fn random() -> Self {
        let bytes: [u8; 32] = rand::random();
        Self(hex::encode(bytes))
    }

    /// The full 64-digit id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 12-digit short id Docker prints.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl TryFrom<String> for ContainerId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        if s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(s))
        } else {
            Err(IdError::InvalidId(s))
        }
    }
}

/// Lets maps keyed by id be searched with a `&str` (the order and equality are the
/// string's, as the derives above use the inner string).
impl std::borrow::Borrow<str> for ContainerId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<ContainerId> for String {
    fn from(id: ContainerId) -> String {
        id.0
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A container name without Docker's leading `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContainerName(String);

impl ContainerName {
    /// Validates a user-given name; a leading `/` is accepted and dropped, as dockerd does.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let n = s.strip_prefix('/').unwrap_or(s);
        let mut chars = n.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if first_ok && rest_ok && n.len() >= 2 {
            Ok(Self(n.to_owned()))
        } else {
            Err(IdError::InvalidName(s.to_owned()))
        }
    }

    /// A generated `adjective_name` style name, unique enough for one host.
    pub fn generate() -> Self {
        const LEFT: &[&str] = &[
            "brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid",
            "merry", "nimble", "proud", "quiet", "rapid", "sharp", "tender", "vivid", "witty",
        ];
        const RIGHT: &[&str] = &[
            "bison", "corgi", "dingo", "egret", "falcon", "gecko", "heron", "ibex", "jackal",
            "koala", "lemur", "marten", "newt", "otter", "puffin", "quokka", "raven", "stoat",
        ];
        let l = LEFT[rand::random_range(0..LEFT.len())];
        let r = RIGHT[rand::random_range(0..RIGHT.len())];
        let n: u16 = rand::random_range(0..10000);
        Self(format!("{l}_{r}_{n}"))
    }

    /// The name without a leading slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ContainerName {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::parse(&s)
    }
}

impl From<ContainerName> for String {
    fn from(n: ContainerName) -> String {
        n.0
    }
}

impl fmt::Display for ContainerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_docker_style_names_and_strips_slash() {
        assert_eq!(ContainerName::parse("/web_1").unwrap().as_str(), "web_1");
        assert_eq!(ContainerName::parse("a.b-c").unwrap().as_str(), "a.b-c");
    }

    #[test]
    fn rejects_names_docker_rejects() {
        for bad in ["", "a", "-x", "_x", "a b", "a/b", "é1"] {
            assert!(ContainerName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn random_ids_are_64_hex_and_roundtrip() {
        let id = ContainerId::random();
        assert_eq!(id.as_str().len(), 64);
        assert_eq!(ContainerId::try_from(id.to_string()).unwrap(), id);
        assert!(ContainerId::try_from("XYZ".to_string()).is_err());
    }
}
