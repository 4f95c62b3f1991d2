//! Errors of the volume drivers.

use corral_core::{error::Classify, ErrorKind};

/// A volume driver failure. Messages follow dockerd's wording.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The name does not match dockerd's volume name rule.
    #[error("create {0}: \"{0}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path")]
    InvalidName(String),
    /// The driver does not know this option, or its value is invalid.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// The volume does not exist in the driver.
    #[error("no such volume: {0}")]
    NotFound(String),
    /// A host I/O failure.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Result alias for volume drivers.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Classify for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidName(_) | Self::InvalidOption(_) => ErrorKind::InvalidInput,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::Io { .. } => ErrorKind::Internal,
        }
    }
}

/// Wraps an I/O error with what was being done.
pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}
