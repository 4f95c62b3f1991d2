//! Errors of the image store, layer unpacking, snapshots and registry pulls.

use std::io;
use std::path::PathBuf;

use corral_core::error::Classify;
use corral_core::ErrorKind;

/// A failure in `corral-image`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Content did not hash to the digest it was announced with.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was verified (`blob`, `layer`, `manifest`).
        what: &'static str,
        /// The announced digest.
        expected: String,
        /// The digest of what arrived.
        actual: String,
    },
    /// Content was not as long as its descriptor says.
    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The blob's digest.
        digest: String,
        /// The announced size.
        expected: u64,
        /// Bytes received (so far, when too many).
        actual: u64,
    },
    /// No such blob in the content store.
    #[error("blob {0} not found")]
    BlobNotFound(String),
    /// No such unpacked layer.
    #[error("layer {0} not found")]
    LayerNotFound(String),
    /// A layer media type Corral cannot unpack.
    #[error("unsupported layer media type {0}")]
    UnsupportedMediaType(String),
    /// A manifest Corral cannot use (schema 1, artifact, malformed).
    #[error("unsupported or invalid manifest for {reference}: {reason}")]
    UnsupportedManifest {
        /// The reference pulled.
        reference: String,
        /// Why.
        reason: String,
    },
    /// The image config is malformed or disagrees with the manifest.
    #[error("invalid image config for {reference}: {reason}")]
    InvalidConfig {
        /// The reference pulled.
        reference: String,
        /// Why.
        reason: String,
    },
    /// The registry has no such manifest or repository (Docker's text).
    #[error("manifest for {reference} not found: manifest unknown")]
    ManifestNotFound {
        /// The reference as Docker prints it.
        reference: String,
    },
    /// The index has no manifest for this platform (Docker's text).
    #[error("no matching manifest for {platform} in the manifest list entries")]
    NoMatchingPlatform {
        /// `linux/amd64`.
        platform: String,
    },
    /// The registry refused the credentials or demands some.
    #[error("unauthorized: access to {reference} denied: {message}")]
    Unauthorized {
        /// The reference.
        reference: String,
        /// The registry's message.
        message: String,
    },
    /// The registry could not be reached or timed out.
    #[error("registry {registry} unavailable: {message}")]
    Unavailable {
        /// The registry host.
        registry: String,
        /// What failed.
        message: String,
    },
    /// Any other registry failure.
    #[error("registry {registry} error: {message}")]
    Registry {
        /// The registry host.
        registry: String,
        /// The error text.
        message: String,
    },
    /// An image tarball (`docker load`) that is malformed or disagrees with itself.
    #[error("invalid image archive: {0}")]
    InvalidArchive(String),
    /// A registry refused a login check (dockerd's text).
    #[error("login attempt to {url} failed with status: {status}")]
    LoginFailed {
        /// The `/v2/` URL that was checked.
        url: String,
        /// The HTTP status line, `401 Unauthorized`.
        status: String,
        /// Whether the registry rejected the credentials (401/403).
        unauthorized: bool,
    },
    /// A container id that cannot name a snapshot directory.
    #[error("invalid container id {0:?}")]
    InvalidId(String),
    /// A file system operation failed.
    #[error("{op} {}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A mount operation for a container rootfs failed.
    #[error("{op} rootfs of container {id}")]
    Mount {
        /// `mount` or `unmount`.
        op: &'static str,
        /// The container.
        id: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A reference or digest failed to parse.
    #[error(transparent)]
    Oci(#[from] corral_oci::Error),
    /// A blocking task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

// === impl Error ===

impl Error {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }
}

impl Classify for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::DigestMismatch { .. }
            | Error::SizeMismatch { .. }
            | Error::UnsupportedMediaType(_)
            | Error::UnsupportedManifest { .. }
            | Error::InvalidConfig { .. }
            | Error::InvalidArchive(_)
            | Error::InvalidId(_) => ErrorKind::InvalidInput,
            Error::LoginFailed {
                unauthorized: true, ..
            } => ErrorKind::Unauthorized,
            Error::Oci(e) => e.kind(),
            Error::BlobNotFound(_)
            | Error::LayerNotFound(_)
            | Error::ManifestNotFound { .. }
            | Error::NoMatchingPlatform { .. } => ErrorKind::NotFound,
            Error::Unauthorized { .. } => ErrorKind::Unauthorized,
            Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::Registry { .. }
            | Error::LoginFailed { .. }
            | Error::Io { .. }
            | Error::Mount { .. }
            | Error::Task(_) => ErrorKind::Internal,
        }
    }
}
