//! The exec helper: `corral shim --exec …`, a fresh single-threaded re-execution of the
//! corral binary that starts one process inside a running container and waits for it.
//!
//! The shim is multi-threaded once it serves, and libcontainer clones the calling process,
//! so the shim never starts exec'd processes itself. The helper becomes a child subreaper,
//! asks the runtime to start the process (libcontainer's tenant builder, or `runc exec
//! --detach`), writes an [`ExecReport`] to the file the shim named, reaps its children until
//! the process has exited and exits with the process's code (128 + signal number when a
//! signal killed it). The shim reaps the helper and so learns the code.
//!
//! Without a terminal the process inherits the helper's fds 0, 1 and 2 (the shim's pipes),
//! so the helper writes nothing to them: failures go to the report.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use corral_sys::process::{self as sys, Pid, Processes as _, Reaped};

use super::args::RuntimeKind;
use super::error::{Result, ShimError};
use super::libcontainer::Libcontainer;
use super::protocol::ExecReport;
use super::reaper::Reaper;
use super::runc::Runc;
use super::runtime::OciRuntime;
use super::server::write_atomic;

/// The first argument after `corral shim` that selects the exec helper.
pub(crate) const EXEC_FLAG: &str = "--exec";
/// Helper exit code when it failed before or while starting the process (the report says
/// why; Docker records 126 for an exec that could not start).
const START_FAILED: i32 = 126;
/// Helper exit code when the process's exit was never seen.
const LOST: i32 = 255;

/// The exec helper's command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExecArgs {
    /// Container id.
    pub(crate) id: String,
    /// Runtime back end.
    pub(crate) runtime: RuntimeKind,
    /// Runtime binary for runc.
    pub(crate) runtime_path: PathBuf,
    /// Runtime state root.
    pub(crate) runtime_root: PathBuf,
    /// The OCI process JSON file.
    pub(crate) process: PathBuf,
    /// Where the helper writes its [`ExecReport`].
    pub(crate) report: PathBuf,
    /// runc's json log for this exec.
    pub(crate) log: PathBuf,
    /// runc's pid file for this exec.
    pub(crate) pid_file: PathBuf,
    /// Console socket for a terminal.
    pub(crate) console_socket: Option<PathBuf>,
}

// === impl ExecArgs ===

impl ExecArgs {
    /// The arguments after `corral shim`, starting with [`EXEC_FLAG`].
    pub(crate) fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![EXEC_FLAG.into()];
        let mut push = |flag: &str, value: OsString| {
            args.push(flag.into());
            args.push(value);
        };
        push("--id", self.id.clone().into());
        push("--runtime", self.runtime.as_str().into());
        push("--runtime-path", self.runtime_path.clone().into());
        push("--runtime-root", self.runtime_root.clone().into());
        push("--process", self.process.clone().into());
        push("--report", self.report.clone().into());
        push("--log", self.log.clone().into());
        push("--pid-file", self.pid_file.clone().into());
        if let Some(socket) = &self.console_socket {
            push("--console-socket", socket.clone().into());
        }
        args
    }

    /// Parses the arguments after `corral shim --exec`.
    pub(crate) fn from_args<I, S>(args: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let mut id = None;
        let mut runtime = None;
        let mut runtime_path = None;
        let mut runtime_root = None;
        let mut process = None;
        let mut report = None;
        let mut log = None;
        let mut pid_file = None;
        let mut console_socket = None;
        let mut iter = args.into_iter().map(Into::into);
        while let Some(flag) = iter.next() {
            let flag = flag
                .into_string()
                .map_err(|flag| ShimError::Args(format!("invalid flag {flag:?}")))?;
            let value = iter
                .next()
                .ok_or_else(|| ShimError::Args(format!("{flag} needs a value")))?;
            let path = PathBuf::from(&value);
            match flag.as_str() {
                "--id" => {
                    id = Some(
                        value
                            .into_string()
                            .map_err(|_| ShimError::Args("--id must be UTF-8".into()))?,
                    );
                }
                "--runtime" => {
                    runtime = Some(
                        value
                            .to_str()
                            .ok_or_else(|| ShimError::Args("--runtime must be UTF-8".into()))?
                            .parse()?,
                    );
                }
                "--runtime-path" => runtime_path = Some(path),
                "--runtime-root" => runtime_root = Some(path),
                "--process" => process = Some(path),
                "--report" => report = Some(path),
                "--log" => log = Some(path),
                "--pid-file" => pid_file = Some(path),
                "--console-socket" => console_socket = Some(path),
                other => return Err(ShimError::Args(format!("unknown flag {other}"))),
            }
        }
        let required = |name: &str| ShimError::Args(format!("--{name} is required"));
        Ok(Self {
            id: id.ok_or_else(|| required("id"))?,
            runtime: runtime.ok_or_else(|| required("runtime"))?,
            runtime_path: runtime_path.ok_or_else(|| required("runtime-path"))?,
            runtime_root: runtime_root.ok_or_else(|| required("runtime-root"))?,
            process: process.ok_or_else(|| required("process"))?,
            report: report.ok_or_else(|| required("report"))?,
            log: log.ok_or_else(|| required("log"))?,
            pid_file: pid_file.ok_or_else(|| required("pid-file"))?,
            console_socket,
        })
    }

    fn runtime(&self) -> Box<dyn OciRuntime> {
        match self.runtime {
            RuntimeKind::Libcontainer => Box::new(Libcontainer::new(&self.runtime_root)),
            RuntimeKind::Runc => {
                let dir = self.report.parent().unwrap_or(Path::new("/"));
                // The reaper never starts here: runc's helper commands use a plain wait.
                Box::new(
                    Runc::new(
                        self.runtime_path.clone(),
                        self.runtime_root.clone(),
                        dir,
                        Reaper::new(),
                    )
                    .with_files(self.log.clone(), self.pid_file.clone()),
                )
            }
        }
    }
}

/// Entry point of `corral shim --exec …` (the arguments after `--exec`). Runs in a fresh
/// single-threaded process; returns the exec'd process's exit code.
pub(crate) fn exec_helper_main<I, S>(args: I) -> i32
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let args = match ExecArgs::from_args(args) {
        Ok(args) => args,
        // No report path is known for sure; the shim sees the helper exit unreported.
        Err(_) => return START_FAILED,
    };
    if let Err(err) = sys::become_subreaper() {
        report(
            &args.report,
            &ExecReport::Failed {
                message: err.to_string(),
            },
        );
        return START_FAILED;
    }
    let pid = match args
        .runtime()
        .exec(&args.id, &args.process, args.console_socket.as_deref())
    {
        Ok(pid) => pid,
        Err(err) => {
            report(
                &args.report,
                &ExecReport::Failed {
                    message: err.message,
                },
            );
            // A process that failed to start may still be a zombie child of ours.
            reap_ready();
            return START_FAILED;
        }
    };
    if !report(&args.report, &ExecReport::Started { pid: pid.as_raw() }) {
        // The shim cannot learn about the process: do not leave it running unseen.
        let _ = sys::LinuxProcesses.signal(pid, nix::sys::signal::Signal::SIGKILL);
    }
    wait_for(pid)
}

/// Writes the report; `false` when that failed.
fn report(path: &Path, report: &ExecReport) -> bool {
    let Ok(body) = serde_json::to_vec(report) else {
        return false;
    };
    write_atomic(path, &body).is_ok()
}

/// Reaps children until `pid` has exited; returns its exit code.
fn wait_for(pid: Pid) -> i32 {
    loop {
        match sys::reap_child(true) {
            Ok(Reaped::Child(exit)) if exit.pid == pid => {
                reap_ready();
                return exit.kind.code();
            }
            Ok(Reaped::Child(_) | Reaped::NoneReady) => {}
            Ok(Reaped::NoChildren) | Err(_) => return LOST,
        }
    }
}

/// Reaps the children that have already exited.
fn reap_ready() {
    while let Ok(Reaped::Child(_)) = sys::reap_child(false) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ExecArgs {
        ExecArgs {
            id: "c1".into(),
            runtime: RuntimeKind::Runc,
            runtime_path: "/usr/sbin/runc".into(),
            runtime_root: "/run/r".into(),
            process: "/s/exec-1.json".into(),
            report: "/s/exec-1.report".into(),
            log: "/s/exec-1.log".into(),
            pid_file: "/s/exec-1.pid".into(),
            console_socket: Some("/s/exec-1.sock".into()),
        }
    }

    #[test]
    fn exec_args_round_trip() {
        let args = sample();
        let line = args.to_args();
        assert_eq!(line[0], EXEC_FLAG);
        assert_eq!(ExecArgs::from_args(line.into_iter().skip(1)).unwrap(), args);
        let mut plain = sample();
        plain.console_socket = None;
        plain.runtime = RuntimeKind::Libcontainer;
        let line = plain.to_args();
        assert_eq!(
            ExecArgs::from_args(line.into_iter().skip(1)).unwrap(),
            plain
        );
    }

    #[test]
    fn exec_args_reject_missing_and_unknown_flags() {
        let err = ExecArgs::from_args(["--id", "c1"]).unwrap_err().to_string();
        assert!(err.contains("--runtime is required"), "{err}");
        let err = ExecArgs::from_args(["--bogus", "1"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown flag --bogus"), "{err}");
        let err = ExecArgs::from_args(["--id"]).unwrap_err().to_string();
        assert!(err.contains("--id needs a value"), "{err}");
    }

    #[test]
    fn runtime_failures_become_failed_reports() {
        let dir = tempfile::tempdir().unwrap();
        let mut args = sample();
        args.runtime_path = "/nonexistent/runc".into();
        args.report = dir.path().join("r.json");
        args.log = dir.path().join("r.log");
        args.pid_file = dir.path().join("r.pid");
        args.console_socket = None;
        let err = args
            .runtime()
            .exec(&args.id, &args.process, None)
            .unwrap_err();
        assert!(err.message.contains("/nonexistent/runc"), "{err}");
        assert!(report(
            &args.report,
            &ExecReport::Failed {
                message: err.message.clone()
            }
        ));
        let written: ExecReport =
            serde_json::from_slice(&std::fs::read(&args.report).unwrap()).unwrap();
        assert_eq!(
            written,
            ExecReport::Failed {
                message: err.message
            }
        );
        assert!(!report(Path::new("/nonexistent/dir/r.json"), &written));
    }
}
