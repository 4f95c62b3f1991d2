//! Failures of OCI spec generation.

use std::path::PathBuf;

use corral_core::error::Classify;
use corral_core::ErrorKind;

/// Why a container's OCI runtime spec could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// Neither the container nor its image names a command (Docker's message).
    #[error("no command specified")]
    NoCommand,
    /// `--init` was asked for but the daemon has no static init binary.
    #[error("--init needs a static init binary (Debian package tini provides /usr/bin/tini-static); none was found")]
    InitNotSupported,
    /// The working directory is relative.
    #[error("the working directory '{path}' is invalid, it needs to be an absolute path")]
    RelativeWorkdir {
        /// The offending path.
        path: String,
    },
    /// The working directory exists in the rootfs but is not a directory.
    #[error("cannot mkdir: {path} is not a directory")]
    WorkdirNotDirectory {
        /// The path inside the container.
        path: String,
    },
    /// A user name is not in the rootfs's `/etc/passwd` (Docker's message).
    #[error("unable to find user {user}: no matching entries in passwd file")]
    UserNotFound {
        /// The user as given.
        user: String,
    },
    /// A group name is not in the rootfs's `/etc/group` (Docker's message).
    #[error("unable to find group {group}: no matching entries in group file")]
    GroupNotFound {
        /// The group as given.
        group: String,
    },
    /// A user or group spec that cannot be parsed (`a:b:c`, a negative id).
    #[error("invalid user specification {user:?}: {reason}")]
    InvalidUser {
        /// The user spec as given.
        user: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A capability name the kernel does not know.
    #[error("unknown capability: {cap:?}")]
    UnknownCapability {
        /// The normalised name (`CAP_FOO`).
        cap: String,
    },
    /// A `--security-opt` this engine does not understand.
    #[error("invalid --security-opt: {opt:?}")]
    InvalidSecurityOpt {
        /// The option as given.
        opt: String,
    },
    /// A custom seccomp profile that cannot be used.
    #[error("invalid seccomp profile: {reason}")]
    InvalidSeccompProfile {
        /// What is wrong with it.
        reason: String,
    },
    /// A mount that cannot be set up as asked.
    #[error("invalid mount config: {reason}")]
    InvalidMount {
        /// What is wrong with it.
        reason: String,
    },
    /// Two mounts share one destination (Docker's message).
    #[error("duplicate mount point: {destination}")]
    DuplicateMount {
        /// The shared destination.
        destination: String,
    },
    /// A tmpfs option outside the kernel's tmpfs vocabulary.
    #[error("invalid tmpfs option {option:?} for {destination}")]
    InvalidTmpfsOption {
        /// The mount point.
        destination: String,
        /// The option as given.
        option: String,
    },
    /// A resource limit out of range or inconsistent with another.
    #[error("invalid resources: {reason}")]
    InvalidResources {
        /// What is wrong.
        reason: String,
    },
    /// A ulimit with an unknown name or impossible values.
    #[error("invalid ulimit {name:?}: {reason}")]
    InvalidUlimit {
        /// The ulimit name as given.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A sysctl that is not namespaced or not allowed with this namespace set-up.
    #[error("sysctl {key:?} is not allowed: {reason}")]
    InvalidSysctl {
        /// The sysctl key.
        key: String,
        /// Why it is refused.
        reason: String,
    },
    /// A pid or ipc mode that is unknown or needs a path the caller did not give.
    #[error("invalid {namespace} mode {mode:?}: {reason}")]
    InvalidNamespaceMode {
        /// `pid` or `ipc`.
        namespace: &'static str,
        /// The mode as given.
        mode: String,
        /// What is wrong.
        reason: String,
    },
    /// The image config JSON does not have the expected shape.
    #[error("invalid image config: {reason}")]
    InvalidImageConfig {
        /// What is wrong.
        reason: String,
    },
    /// Symlinks inside the rootfs loop or nest too deeply.
    #[error("too many levels of symbolic links resolving {path} in the rootfs")]
    TooManySymlinks {
        /// The path inside the container.
        path: String,
    },
    /// Reading or creating a file in the rootfs failed.
    #[error("failed to access {path} in the container rootfs")]
    Io {
        /// Host path that failed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A `--device` host path that is missing or holds no device node (dockerd's message,
    /// given at start with status 500).
    #[error("error gathering device information while adding custom device {path:?}: {reason}")]
    CustomDevice {
        /// The host path as given.
        path: String,
        /// `no such file or directory`, `not a device node`, …
        reason: String,
    },
    /// `--device` permissions without any of `r`, `w`, `m`.
    #[error("invalid device cgroup permissions {permissions:?} for custom device {path:?}: want a combination of r, w and m")]
    DevicePermissions {
        /// The host path as given.
        path: String,
        /// The permissions as given.
        permissions: String,
    },
    /// A `--device-cgroup-rule` that is not `TYPE MAJOR:MINOR ACCESS` (dockerd's message).
    #[error("invalid device cgroup rule format: '{rule}'")]
    DeviceCgroupRule {
        /// The rule as given.
        rule: String,
    },
    /// A `--device-cgroup-rule` number that does not fit 64 bits (dockerd's message).
    #[error("invalid {which} value in device cgroup rule format: '{rule}'")]
    DeviceCgroupRuleNumber {
        /// The rule as given.
        rule: String,
        /// `major` or `minor`.
        which: &'static str,
    },
    /// oci-spec refused to build a value (a bug in this module).
    #[error("failed to build the OCI spec")]
    Oci(#[from] oci_spec::OciSpecError),
}

/// Result alias for spec generation.
pub type Result<T, E = SpecError> = std::result::Result<T, E>;

// === impl SpecError ===

impl Classify for SpecError {
    fn kind(&self) -> ErrorKind {
        match self {
            // dockerd answers 500 for these (they surface at start, from its spec builder).
            Self::Io { .. }
            | Self::Oci(_)
            | Self::CustomDevice { .. }
            | Self::DevicePermissions { .. }
            | Self::DeviceCgroupRule { .. }
            | Self::DeviceCgroupRuleNumber { .. } => ErrorKind::Internal,
            _ => ErrorKind::InvalidInput,
        }
    }
}

impl SpecError {
    /// The kind of this failure (same as [`Classify::kind`], callable without the trait in scope).
    pub fn kind(&self) -> ErrorKind {
        Classify::kind(self)
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
