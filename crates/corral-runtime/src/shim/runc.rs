//! Any OCI runtime binary with runc's command line (runc, crun, youki's CLI).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use corral_sys::process::Pid;
use nix::sys::signal::Signal;

use super::reaper::Reaper;
use super::runtime::{ContainerStdio, OciRuntime, RuntimeError};

/// Drives `binary --root ROOT --log LOG --log-format json <command>`.
#[derive(Debug, Clone)]
pub struct Runc {
    binary: PathBuf,
    root: PathBuf,
    log: PathBuf,
    pid_file: PathBuf,
    reaper: Arc<Reaper>,
}

impl Runc {
    /// A back end running `binary` with state under `root`; its own log and pid file go to
    /// `state_dir`.
    pub(crate) fn new(
        binary: PathBuf,
        root: PathBuf,
        state_dir: &Path,
        reaper: Arc<Reaper>,
    ) -> Self {
        Self {
            binary,
            root,
            log: state_dir.join("runtime.log"),
            pid_file: state_dir.join("runtime.pid"),
            reaper,
        }
    }

    /// The same back end with its own runtime log and pid file (one pair per exec, since
    /// execs run concurrently).
    pub(crate) fn with_files(mut self, log: PathBuf, pid_file: PathBuf) -> Self {
        self.log = log;
        self.pid_file = pid_file;
        self
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(&self.log)
            .args(["--log-format", "json"]);
        command
    }

    fn run<I, S>(&self, args: I) -> Result<(), RuntimeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = self.command();
        command.args(args);
        let output = self
            .reaper
            .output(&mut command)
            .map_err(|err| RuntimeError {
                message: format!("failed to run {}: {err}", self.binary.display()),
            })?;
        if output.status.success() {
            return Ok(());
        }
        Err(self.failure(&output.stderr))
    }

    fn read_pid_file(&self) -> Result<Pid, RuntimeError> {
        let text = std::fs::read_to_string(&self.pid_file).map_err(|err| RuntimeError {
            message: format!("failed to read {}: {err}", self.pid_file.display()),
        })?;
        text.trim()
            .parse::<i32>()
            .ok()
            .and_then(Pid::new)
            .ok_or_else(|| RuntimeError {
                message: format!("invalid pid {text:?} in {}", self.pid_file.display()),
            })
    }

    /// The runtime's error: the last error in its json log, else its stderr.
    fn failure(&self, stderr: &[u8]) -> RuntimeError {
        let from_log = std::fs::read_to_string(&self.log).ok().and_then(|text| {
            text.lines().rev().find_map(|line| {
                let value: serde_json::Value = serde_json::from_str(line).ok()?;
                let level = value.get("level")?.as_str()?;
                matches!(level, "error" | "fatal")
                    .then(|| value.get("msg")?.as_str().map(str::to_owned))
                    .flatten()
            })
        });
        let message = from_log.unwrap_or_else(|| {
            let text = String::from_utf8_lossy(stderr).trim().to_owned();
            if text.is_empty() {
                format!("{} failed without a message", self.binary.display())
            } else {
                text
            }
        });
        RuntimeError { message }
    }
}

impl OciRuntime for Runc {
    fn create(&self, id: &str, bundle: &Path, stdio: ContainerStdio) -> Result<Pid, RuntimeError> {
        let _ = std::fs::remove_file(&self.pid_file);
        let _ = std::fs::remove_file(&self.log);
        let mut command = self.command();
        command
            .arg("create")
            .arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(&self.pid_file);
        match stdio {
            ContainerStdio::Pipes {
                stdin,
                stdout,
                stderr,
            } => {
                // runc passes its own stdio through to the container (non-terminal mode).
                command
                    .stdin(Stdio::from(stdin))
                    .stdout(Stdio::from(stdout))
                    .stderr(Stdio::from(stderr));
            }
            ContainerStdio::Console { socket } => {
                command
                    .arg("--console-socket")
                    .arg(socket)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
            }
        }
        command.arg(id);
        // The shim is still single-threaded here and the reaper is not running, so a plain
        // wait is safe. The stdio descriptors are dropped with `command` afterwards.
        let status = command.status().map_err(|err| RuntimeError {
            message: format!("failed to run {}: {err}", self.binary.display()),
        })?;
        drop(command);
        if !status.success() {
            return Err(self.failure(&[]));
        }
        self.read_pid_file()
    }

    fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.run(["start", id])
    }

    fn exec(
        &self,
        id: &str,
        process: &Path,
        console_socket: Option<&Path>,
    ) -> Result<Pid, RuntimeError> {
        let _ = std::fs::remove_file(&self.pid_file);
        let _ = std::fs::remove_file(&self.log);
        let mut command = self.command();
        // Detached: runc returns once the process runs; the process is then re-parented to
        // the caller, a subreaper, which reaps it and learns its exit status.
        command
            .arg("exec")
            .arg("--process")
            .arg(process)
            .arg("--pid-file")
            .arg(&self.pid_file)
            .arg("--detach");
        if let Some(socket) = console_socket {
            command
                .arg("--console-socket")
                .arg(socket)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
        }
        // Without a terminal runc hands its own fds 0-2 (inherited) to the process.
        command.arg(id);
        let status = command.status().map_err(|err| RuntimeError {
            message: format!("failed to run {}: {err}", self.binary.display()),
        })?;
        if !status.success() {
            return Err(self.failure(&[]));
        }
        self.read_pid_file()
    }

    fn kill(&self, id: &str, signal: Signal, all: bool) -> Result<(), RuntimeError> {
        let number = (signal as i32).to_string();
        if all {
            self.run(["kill", "--all", id, &number])
        } else {
            self.run(["kill", id, &number])
        }
    }

    fn pause(&self, id: &str) -> Result<(), RuntimeError> {
        self.run(["pause", id])
    }

    fn resume(&self, id: &str) -> Result<(), RuntimeError> {
        self.run(["resume", id])
    }

    fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError> {
        if force {
            self.run(["delete", "--force", id])
        } else {
            self.run(["delete", id])
        }
    }
}
