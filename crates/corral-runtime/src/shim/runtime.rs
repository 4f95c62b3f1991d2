//! The OCI runtime seam the shim drives: libcontainer in process, or a runc-compatible
//! binary.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use corral_sys::process::Pid;
use nix::sys::signal::Signal;

/// How the container's stdio is wired.
#[derive(Debug)]
pub enum ContainerStdio {
    /// Plain descriptors (pipe ends, or `/dev/null` for stdin) that become fds 0, 1 and 2.
    Pipes {
        /// Container stdin (read end).
        stdin: OwnedFd,
        /// Container stdout (write end).
        stdout: OwnedFd,
        /// Container stderr (write end).
        stderr: OwnedFd,
    },
    /// A terminal: the runtime sends the pty master to this listening unix socket.
    Console {
        /// The console socket path.
        socket: PathBuf,
    },
}

/// A failure reported by the runtime, with its text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RuntimeError {
    /// The runtime's message, causes included.
    pub message: String,
}

/// An OCI runtime as the shim uses it. `create` may clone the calling process
/// (libcontainer): call it only while the shim is single-threaded.
pub trait OciRuntime: Send + Sync {
    /// Creates container `id` from `bundle`; returns the init's host pid.
    fn create(&self, id: &str, bundle: &Path, stdio: ContainerStdio) -> Result<Pid, RuntimeError>;
    /// Starts the user process of a created container.
    fn start(&self, id: &str) -> Result<(), RuntimeError>;
    /// [`OciRuntime::create`] then [`OciRuntime::start`] (as `runc run` does), for a back end
    /// that can start what it just created without loading its state again. On an error the
    /// container may exist (created, or even started): the caller deletes it with `force`.
    fn create_and_start(
        &self,
        id: &str,
        bundle: &Path,
        stdio: ContainerStdio,
    ) -> Result<Pid, RuntimeError> {
        let pid = self.create(id, bundle, stdio)?;
        self.start(id)?;
        Ok(pid)
    }
    /// Sends `signal` to the init, or to every process of the container with `all`.
    fn kill(&self, id: &str, signal: Signal, all: bool) -> Result<(), RuntimeError>;
    /// Freezes the container.
    fn pause(&self, id: &str) -> Result<(), RuntimeError>;
    /// Thaws the container.
    fn resume(&self, id: &str) -> Result<(), RuntimeError>;
    /// Deletes the container's runtime state and cgroup; `force` kills it first.
    fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError>;
    /// Starts the OCI process described by the JSON file `process` inside running container
    /// `id` and returns its host pid once it runs. Without `console_socket` the process gets
    /// the caller's fds 0, 1 and 2; with one, the runtime sends the pty master there.
    ///
    /// The caller must be single-threaded (libcontainer clones it) and a child subreaper:
    /// the process ends up as its child, to be reaped by it.
    fn exec(
        &self,
        id: &str,
        process: &Path,
        console_socket: Option<&Path>,
    ) -> Result<Pid, RuntimeError>;
}

/// Rewrites a runtime's "command not found" text into Docker's wording
/// (`exec: "x": executable file not found in $PATH`), so engines and users see one message
/// whichever runtime ran. Other messages are returned unchanged.
pub fn docker_create_message(message: &str) -> String {
    // libcontainer: "executable 'x' not found in $PATH".
    if let Some(start) = message.find("executable '") {
        let rest = &message[start + "executable '".len()..];
        if let Some(end) = rest.find("' not found in $PATH") {
            return format!(
                "exec: \"{}\": executable file not found in $PATH",
                &rest[..end]
            );
        }
    }
    // libcontainer: "executable '/x' at path '"/x"' does not have correct permissions".
    if let Some(start) = message.find("executable '") {
        let rest = &message[start + "executable '".len()..];
        if rest.contains("does not have correct permissions") {
            if let Some(end) = rest.find('\'') {
                return format!("exec: \"{}\": permission denied", &rest[..end]);
            }
        }
    }
    // runc: `... exec: "x": executable file not found in $PATH`.
    if let Some(start) = message.find("exec: \"") {
        if message[start..].contains("executable file not found") {
            let tail = &message[start..];
            let end = tail
                .find("in $PATH")
                .map_or(tail.len(), |index| index + "in $PATH".len());
            return tail[..end].to_owned();
        }
    }
    message.to_owned()
}

/// Docker's text for an exec'd process the runtime could not start, from the runtime's
/// message: `OCI runtime exec failed: exec failed: unable to start container process: <cause>:
/// unknown`, where a missing command reads `exec: "x": executable file not found in $PATH`
/// whichever runtime ran (moby wraps runc's error this way).
pub fn docker_exec_message(message: &str) -> String {
    const PREFIX: &str = "unable to start container process: ";
    let normalised = docker_create_message(message);
    let cause = if normalised != message {
        normalised.as_str()
    } else {
        let trimmed = message.trim();
        trimmed
            .rfind(PREFIX)
            .map_or(trimmed, |index| &trimmed[index + PREFIX.len()..])
    };
    format!("OCI runtime exec failed: exec failed: {PREFIX}{cause}: unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libcontainer_permission_errors_read_like_docker() {
        let m = docker_create_message(
            "exec process failed with error error in executing process : executable '/etc/passwd' at path '\"/etc/passwd\"' does not have correct permissions",
        );
        assert_eq!(m, r#"exec: "/etc/passwd": permission denied"#);
        assert_eq!(crate::shim::create_failure_exit_code(&m), 126);
    }

    #[test]
    fn exec_failures_read_like_docker() {
        let expected = r#"OCI runtime exec failed: exec failed: unable to start container process: exec: "nosuch": executable file not found in $PATH: unknown"#;
        assert_eq!(
            docker_exec_message(
                "error in executing process : executable 'nosuch' not found in $PATH"
            ),
            expected
        );
        assert_eq!(
            docker_exec_message(
                r#"exec failed: unable to start container process: exec: "nosuch": executable file not found in $PATH"#
            ),
            expected
        );
        assert_eq!(
            docker_exec_message("exec failed: unable to start container process: chdir to cwd (\"/x\") set in config.json failed: no such file or directory"),
            "OCI runtime exec failed: exec failed: unable to start container process: chdir to cwd (\"/x\") set in config.json failed: no such file or directory: unknown"
        );
    }

    #[test]
    fn normalises_missing_executable_messages() {
        let youki = "failed to create container: error in executing process : \
                     executable 'nosuch' not found in $PATH";
        assert_eq!(
            docker_create_message(youki),
            r#"exec: "nosuch": executable file not found in $PATH"#
        );
        let runc = r#"runc create failed: unable to start container process: exec: "nosuch": executable file not found in $PATH"#;
        assert_eq!(
            docker_create_message(runc),
            r#"exec: "nosuch": executable file not found in $PATH"#
        );
        assert_eq!(docker_create_message("other"), "other");
    }
}
