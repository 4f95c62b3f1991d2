//! Errors of the DNS server.

use corral_core::{error::Classify, ErrorKind};

/// A DNS server failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A socket handed over could not be registered with the runtime.
    #[error("registering DNS socket of container {container}")]
    Socket {
        /// The container.
        container: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Result alias for the DNS server.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Classify for Error {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}
