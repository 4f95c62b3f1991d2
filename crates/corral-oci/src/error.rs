//! Errors raised while parsing references and digests.

use corral_core::error::Classify;
use corral_core::ErrorKind;

/// A failure to parse an image reference or digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The reference does not follow Docker's grammar. `message` is Docker's exact text
    /// (`invalid reference format…`) because clients match on it.
    #[error("{message}")]
    InvalidReference {
        /// The input that failed to parse.
        input: String,
        /// Docker's message.
        message: String,
    },
    /// The digest is not `algorithm:hex` with a supported algorithm and length.
    #[error("invalid digest format: {input}: {reason}")]
    InvalidDigest {
        /// The input that failed to parse.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

// === impl Error ===

impl Error {
    pub(crate) fn reference(input: &str, message: impl Into<String>) -> Self {
        Error::InvalidReference {
            input: input.to_owned(),
            message: message.into(),
        }
    }
}

impl Classify for Error {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidInput
    }
}
