//! Errors of the engine, each classified once into an [`ErrorKind`].

use corral_core::{error::Classify, ErrorKind};

/// An engine failure. Messages follow dockerd's wording where clients show them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No container matches the name or id.
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    /// No image matches the reference or id.
    #[error("No such image: {0}")]
    NoSuchImage(String),
    /// No network has this name.
    #[error("network {0} not found")]
    NoSuchNetwork(String),
    /// No exec session has this id.
    #[error("No such exec instance: {0}")]
    NoSuchExec(String),
    /// A path or other object named in the request does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with current state.
    #[error("{0}")]
    Conflict(String),
    /// The request is malformed.
    #[error("{0}")]
    InvalidInput(String),
    /// Not allowed in the current state (Docker's 403).
    #[error("{0}")]
    Forbidden(String),
    /// Refused where dockerd answers with an untyped error (500), e.g. disconnecting a
    /// container from a network it is not connected to; kept so statuses match dockerd.
    #[error("{0}")]
    Refused(String),
    /// Already in the requested state.
    #[error("{0}")]
    NotModified(String),
    /// Not supported by this engine yet.
    #[error("{0} is not supported by corral yet")]
    Unsupported(&'static str),
    /// The container's process could not be started.
    #[error("{0}")]
    StartFailed(String),
    /// An image store or registry failure.
    #[error(transparent)]
    Image(#[from] corral_image::Error),
    /// A runtime (shim, OCI runtime) failure.
    #[error(transparent)]
    Runtime(#[from] corral_runtime::Error),
    /// A state store failure.
    #[error(transparent)]
    Store(#[from] corral_store::Error),
    /// A volume driver failure.
    #[error(transparent)]
    Volume(#[from] corral_volume::Error),
    /// A network driver, IPAM or firewall failure.
    #[error(transparent)]
    Network(#[from] corral_network::Error),
    /// A host I/O failure.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An unexpected internal failure.
    #[error("{0}")]
    Internal(String),
}

/// Result alias for the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Classify for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NoSuchContainer(_)
            | Self::NoSuchImage(_)
            | Self::NoSuchExec(_)
            | Self::NoSuchNetwork(_)
            | Self::NotFound(_) => ErrorKind::NotFound,
            Self::Conflict(_) => ErrorKind::Conflict,
            Self::InvalidInput(_) => ErrorKind::InvalidInput,
            Self::Forbidden(_) => ErrorKind::Forbidden,
            Self::NotModified(_) => ErrorKind::NotModified,
            Self::Unsupported(_) => ErrorKind::Unsupported,
            Self::StartFailed(_) => ErrorKind::InvalidInput,
            Self::Image(e) => e.kind(),
            Self::Runtime(e) => e.kind(),
            Self::Store(e) => e.kind(),
            Self::Volume(e) => e.kind(),
            Self::Network(e) => e.kind(),
            Self::Io { .. } | Self::Internal(_) | Self::Refused(_) => ErrorKind::Internal,
        }
    }
}

/// Wraps an I/O error with what was being done.
pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

impl From<corral_runtime::shim::ShimError> for Error {
    fn from(e: corral_runtime::shim::ShimError) -> Self {
        Self::Runtime(e.into())
    }
}
