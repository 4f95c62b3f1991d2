//! The crate-level error: one variant per module's own error type.

use corral_core::{error::Classify, ErrorKind};

/// A runtime failure: spec generation, the shim, or logs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Building the OCI spec failed.
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    /// The shim or the OCI runtime failed.
    #[error(transparent)]
    Shim(#[from] crate::shim::ShimError),
    /// Reading or writing logs failed.
    #[error(transparent)]
    Log(#[from] crate::logs::LogError),
    /// Changing a running container's cgroup limits failed.
    #[error(transparent)]
    Cgroup(#[from] crate::cgroup::CgroupError),
}

/// Result alias for the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Classify for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Spec(e) => Classify::kind(e),
            Self::Shim(e) => e.kind(),
            Self::Log(e) => e.kind(),
            Self::Cgroup(e) => e.kind(),
        }
    }
}
