//! Failures of the shim and of its client.

use std::path::PathBuf;

use corral_core::error::{Classify, ErrorKind};

use crate::logs::LogError;

/// Failures of the shim process, its runtime back ends and the daemon-side client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShimError {
    /// The shim command line is invalid.
    #[error("invalid shim arguments: {0}")]
    Args(String),
    /// The OCI runtime failed to create the container. `message` is the runtime's text (for
    /// a missing binary, Docker's `exec: "x": executable file not found in $PATH`) and
    /// `exit_code` the code Docker records for it (127, 126 or 128).
    #[error("failed to create container {id}: {message}")]
    Create {
        /// Container id.
        id: String,
        /// The runtime's error text.
        message: String,
        /// Docker's exit code for this failure.
        exit_code: i32,
    },
    /// An OCI runtime operation other than create failed.
    #[error("runtime {op} failed for container {id}: {message}")]
    Runtime {
        /// The operation (`start`, `kill`, …).
        op: &'static str,
        /// Container id.
        id: String,
        /// The runtime's error text.
        message: String,
    },
    /// The runtime could not start an exec'd process; the message is Docker's text
    /// (`OCI runtime exec failed: …`).
    #[error("{0}")]
    ExecFailed(String),
    /// The container is not running (it exited, or was never started).
    #[error("container {0} is not running")]
    NotRunning(String),
    /// The request is not valid for this container (resize without a TTY, …).
    #[error("invalid shim request: {0}")]
    InvalidRequest(String),
    /// An I/O operation failed.
    #[error("failed to {context}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// No shim serves this state directory any more.
    #[error("no shim is running for {}", state_dir.display())]
    Gone {
        /// The shim's state directory.
        state_dir: PathBuf,
    },
    /// The shim did not report in time.
    #[error("shim for {} did not report within {seconds}s", state_dir.display())]
    Timeout {
        /// The shim's state directory.
        state_dir: PathBuf,
        /// How long was waited.
        seconds: u64,
    },
    /// The shim answered something unexpected.
    #[error("shim protocol error: {0}")]
    Protocol(String),
    /// The shim reported an error of another kind.
    #[error("shim error: {0}")]
    Remote(String),
    /// Log writing failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// A process operation failed.
    #[error(transparent)]
    Process(#[from] corral_sys::process::ProcessError),
}

/// Result alias for shim operations.
pub type Result<T, E = ShimError> = std::result::Result<T, E>;

impl ShimError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}

impl Classify for ShimError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Args(_) | Self::InvalidRequest(_) | Self::ExecFailed(_) => {
                ErrorKind::InvalidInput
            }
            Self::Create { exit_code, .. } if *exit_code == 126 || *exit_code == 127 => {
                ErrorKind::InvalidInput
            }
            Self::NotRunning(_) => ErrorKind::Conflict,
            Self::Gone { .. } => ErrorKind::NotFound,
            Self::Timeout { .. } => ErrorKind::Unavailable,
            Self::Log(err) => err.kind(),
            _ => ErrorKind::Internal,
        }
    }
}

/// Docker's exit code for a container whose creation failed with `message`: 127 when the
/// command was not found, 126 when it could not be executed, 128 otherwise (moby's
/// `daemon/start.go`).
pub fn create_failure_exit_code(message: &str) -> i32 {
    if message.contains("executable file not found")
        || message.contains("no such file or directory")
    {
        127
    } else if message.contains("permission denied") {
        126
    } else {
        128
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_create_failures_to_docker_exit_codes() {
        assert_eq!(
            create_failure_exit_code(r#"exec: "nosuch": executable file not found in $PATH"#),
            127
        );
        assert_eq!(
            create_failure_exit_code("exec: \"/etc\": permission denied"),
            126
        );
        assert_eq!(create_failure_exit_code("cgroup trouble"), 128);
    }
}
