//! Errors of the volume drivers.

use std::path::PathBuf;

use corral_core::{error::Classify, ErrorKind};

/// A volume driver failure. Messages follow dockerd's wording.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The name does not match dockerd's volume name rule.
    #[error("create {0}: \"{0}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path")]
    InvalidName(String),
    /// The driver does not know an option, or an option's value is invalid.
    #[error("create {name}: {message}")]
    InvalidOption {
        /// The volume.
        name: String,
        /// What is wrong, in dockerd's words (`invalid option: "foo"`).
        message: String,
    },
    /// The volume does not exist in the driver.
    #[error("no such volume: {0}")]
    NotFound(String),
    /// Mounting the volume's filesystem at its `_data` directory failed.
    #[error("error while mounting volume '{}': failed to mount local volume: {message}", path.display())]
    Mount {
        /// The volume's `_data` directory.
        path: PathBuf,
        /// The `mount(2)` failure, naming source, flags and data.
        message: String,
    },
    /// The volume's filesystem is mounted and cannot be unmounted, so its directory stays.
    #[error("remove {name}: volume is still mounted at {}: {message}", path.display())]
    StillMounted {
        /// The volume.
        name: String,
        /// The mount point.
        path: PathBuf,
        /// Why unmounting failed.
        message: String,
    },
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
            Self::InvalidName(_) | Self::InvalidOption { .. } => ErrorKind::InvalidInput,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::StillMounted { .. } => ErrorKind::Conflict,
            Self::Mount { .. } | Self::Io { .. } => ErrorKind::Internal,
        }
    }
}

/// Wraps an I/O error with what was being done.
pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}
