//! The one classification of failures that every Corral error reports.

/// What kind of failure an error is, independent of which crate raised it.
///
/// API crates map this once to an HTTP status (Docker's 404, 409, 400, 503, 500).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The named object does not exist.
    NotFound,
    /// The request conflicts with the current state (name in use, container running).
    Conflict,
    /// The request itself is malformed or names impossible values.
    InvalidInput,
    /// Nothing to do: the object is already in the requested state (Docker's 304).
    NotModified,
    /// A dependency (registry, runtime, kernel feature) is unreachable or refused.
    Unavailable,
    /// Access was refused (registry credentials, permissions).
    Unauthorized,
    /// The operation is not allowed in the object's current state (Docker's 403, e.g. a
    /// container connected twice to a network).
    Forbidden,
    /// The operation is not supported by this engine (yet).
    Unsupported,
    /// A bug or an unexpected system failure.
    Internal,
}

/// Implemented by every library error so callers can classify without matching variants.
pub trait Classify {
    /// The kind of this failure.
    fn kind(&self) -> ErrorKind;
}
