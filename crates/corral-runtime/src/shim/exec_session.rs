//! Exec sessions inside the shim: start a process through the exec helper, stream its stdio
//! on the requesting connection, record its exit code for `exec_wait`.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use corral_sys::process::{self as sys, ExitKind, Pid, Processes as _};
use parking_lot::{Condvar, Mutex};

use super::args::ShimArgs;
use super::error::{Result, ShimError};
use super::exec::ExecArgs;
use super::protocol::{encode_frame, ExecReport, FrameStream};
use super::reaper::Reaper;
use super::runtime::docker_exec_message;
use super::server::{receive_console, write_atomic};

/// How long the helper may take to start the process.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the start is polled.
const START_POLL: Duration = Duration::from_millis(5);
/// How long output may keep flowing after the process exited (moby waits 2 s for an exec's
/// streams before closing them).
const OUTPUT_DRAIN: Duration = Duration::from_secs(2);
/// Exec sessions kept at most (running ones and exited ones not yet pruned).
const MAX_SESSIONS: usize = 1024;
/// Above this many sessions, exited ones are pruned when a new one starts.
const PRUNE_ABOVE: usize = 64;
/// Longest exec id accepted.
const MAX_EXEC_ID: usize = 128;

/// The exec sessions of one shim.
#[derive(Debug, Default)]
pub(crate) struct ExecTable {
    sessions: Mutex<HashMap<String, Arc<ExecSession>>>,
    /// Ids whose start is under way.
    starting: Mutex<HashSet<String>>,
    next: AtomicU64,
}

/// One exec'd process.
#[derive(Debug)]
pub(crate) struct ExecSession {
    pid: Pid,
    console: Option<File>,
    exit: Mutex<Option<i32>>,
    exited: Condvar,
}

/// What the daemon asked for.
#[derive(Debug)]
pub(crate) struct ExecRequest {
    pub(crate) exec_id: String,
    pub(crate) process: serde_json::Value,
    pub(crate) tty: bool,
    pub(crate) stdin: bool,
}

/// A started process whose stdio is not served yet.
#[derive(Debug)]
pub(crate) struct StartedExec {
    session: Arc<ExecSession>,
    outputs: Vec<(File, FrameStream)>,
    stdin: Option<File>,
    helper: Pid,
    helper_exit: Option<ExitKind>,
    files: ExecFiles,
    tty: bool,
}

/// The per-exec files in the shim's state directory (short names: socket paths are limited
/// to 108 bytes).
#[derive(Debug)]
struct ExecFiles {
    process: PathBuf,
    report: PathBuf,
    log: PathBuf,
    pid_file: PathBuf,
    console: PathBuf,
}

/// The helper's stdio and the shim's ends of it.
struct Plumbing {
    helper_stdin: Stdio,
    helper_stdout: Stdio,
    helper_stderr: Stdio,
    outputs: Vec<(File, FrameStream)>,
    stdin: Option<File>,
    console: Option<UnixListener>,
}

/// Output of a running exec, sent to its one client.
struct ExecOutput {
    tty: bool,
    /// The client; `None` once it went away (output is then drained and dropped).
    client: Mutex<Option<UnixStream>>,
    copiers: Mutex<usize>,
    copiers_done: Condvar,
}

// === impl ExecTable ===

impl ExecTable {
    /// Starts the requested process through the exec helper and waits until it runs.
    ///
    /// # Errors
    /// [`ShimError::InvalidRequest`] for a bad or duplicate id, [`ShimError::ExecFailed`]
    /// with Docker's text when the runtime could not start the process, other variants when
    /// the shim failed.
    pub(crate) fn start(
        &self,
        args: &ShimArgs,
        reaper: &Reaper,
        request: ExecRequest,
    ) -> Result<StartedExec> {
        validate_exec_id(&request.exec_id)?;
        self.reserve(&request.exec_id)?;
        let result = self.start_reserved(args, reaper, &request);
        let mut starting = self.starting.lock();
        starting.remove(&request.exec_id);
        if let Ok(started) = &result {
            self.sessions
                .lock()
                .insert(request.exec_id.clone(), Arc::clone(&started.session));
        }
        drop(starting);
        result
    }

    fn reserve(&self, exec_id: &str) -> Result<()> {
        let mut starting = self.starting.lock();
        let mut sessions = self.sessions.lock();
        if sessions.contains_key(exec_id) || starting.contains(exec_id) {
            return Err(ShimError::InvalidRequest(format!(
                "exec {exec_id} already exists"
            )));
        }
        if sessions.len() > PRUNE_ABOVE {
            sessions.retain(|_, session| session.exit_code().is_none());
        }
        if sessions.len() + starting.len() >= MAX_SESSIONS {
            return Err(ShimError::InvalidRequest("too many exec sessions".into()));
        }
        starting.insert(exec_id.to_owned());
        Ok(())
    }

    fn start_reserved(
        &self,
        args: &ShimArgs,
        reaper: &Reaper,
        request: &ExecRequest,
    ) -> Result<StartedExec> {
        let number = self.next.fetch_add(1, Ordering::SeqCst);
        let files = ExecFiles::new(&args.state_dir, number);
        let result = start_helper(args, reaper, request, &files);
        match result {
            Ok((session, plumbing, helper, helper_exit)) => Ok(StartedExec {
                session,
                outputs: plumbing.outputs,
                stdin: plumbing.stdin,
                helper,
                helper_exit,
                files,
                tty: request.tty,
            }),
            Err(err) => {
                files.remove();
                Err(err)
            }
        }
    }

    /// The session `exec_id`.
    ///
    /// # Errors
    /// [`ShimError::InvalidRequest`] when there is none.
    pub(crate) fn get(&self, exec_id: &str) -> Result<Arc<ExecSession>> {
        self.sessions
            .lock()
            .get(exec_id)
            .cloned()
            .ok_or_else(|| ShimError::InvalidRequest(format!("no such exec {exec_id}")))
    }
}

fn validate_exec_id(exec_id: &str) -> Result<()> {
    let valid = !exec_id.is_empty()
        && exec_id.len() <= MAX_EXEC_ID
        && exec_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
    if valid {
        Ok(())
    } else {
        Err(ShimError::InvalidRequest(format!(
            "invalid exec id {exec_id:?}"
        )))
    }
}

/// Writes the process file, spawns the helper and waits for its report.
fn start_helper(
    args: &ShimArgs,
    reaper: &Reaper,
    request: &ExecRequest,
    files: &ExecFiles,
) -> Result<(Arc<ExecSession>, Plumbing, Pid, Option<ExitKind>)> {
    let body = serde_json::to_vec(&request.process)
        .map_err(|err| ShimError::Protocol(format!("invalid exec process: {err}")))?;
    write_atomic(&files.process, &body)?;
    let mut plumbing = Plumbing::new(request, &files.console)?;
    let exe = std::env::current_exe().map_err(ShimError::io("find the shim executable"))?;
    let helper_args = ExecArgs {
        id: args.id.clone(),
        runtime: args.runtime,
        runtime_path: args.runtime_path.clone(),
        runtime_root: args.runtime_root.clone(),
        process: files.process.clone(),
        report: files.report.clone(),
        log: files.log.clone(),
        pid_file: files.pid_file.clone(),
        console_socket: request.tty.then(|| files.console.clone()),
    };
    let mut command = Command::new(exe);
    command
        .arg("shim")
        .args(helper_args.to_args())
        .stdin(std::mem::replace(&mut plumbing.helper_stdin, Stdio::null()))
        .stdout(std::mem::replace(
            &mut plumbing.helper_stdout,
            Stdio::null(),
        ))
        .stderr(std::mem::replace(
            &mut plumbing.helper_stderr,
            Stdio::null(),
        ));
    let helper = reaper
        .spawn(&mut command)
        .map_err(ShimError::io("start the exec helper"))?;
    // The helper holds the child ends now; ours must close so output reaches end of file.
    drop(command);
    let (report, helper_exit) = match wait_report(reaper, helper, &files.report) {
        Ok(pair) => pair,
        Err(err) => {
            let _ = sys::LinuxProcesses.signal(helper, nix::sys::signal::Signal::SIGKILL);
            reaper.forget(helper);
            return Err(err);
        }
    };
    let pid = match report {
        ExecReport::Started { pid } => {
            Pid::new(pid).ok_or_else(|| ShimError::Protocol(format!("invalid exec pid {pid}")))?
        }
        ExecReport::Failed { message } => {
            if helper_exit.is_none() {
                // Collected by the reaper; nothing waits for it any more.
                reaper.forget(helper);
            }
            return Err(ShimError::ExecFailed(docker_exec_message(&message)));
        }
    };
    let console = match plumbing.console.take() {
        Some(listener) => {
            let master = receive_console(&listener);
            let _ = std::fs::remove_file(&files.console);
            match master {
                Ok(master) => Some(master),
                Err(err) => {
                    let _ = sys::LinuxProcesses.signal(pid, nix::sys::signal::Signal::SIGKILL);
                    if helper_exit.is_none() {
                        reaper.forget(helper);
                    }
                    return Err(err);
                }
            }
        }
        None => None,
    };
    if let Some(master) = &console {
        let clone = |file: &File| file.try_clone().map_err(ShimError::io("dup pty master"));
        plumbing.outputs.push((clone(master)?, FrameStream::Stdout));
        if request.stdin {
            plumbing.stdin = Some(clone(master)?);
        }
    }
    let session = Arc::new(ExecSession {
        pid,
        console,
        exit: Mutex::new(None),
        exited: Condvar::new(),
    });
    Ok((session, plumbing, helper, helper_exit))
}

/// Polls for the helper's report; also returns the helper's exit when it was seen.
fn wait_report(
    reaper: &Reaper,
    helper: Pid,
    report: &Path,
) -> Result<(ExecReport, Option<ExitKind>)> {
    let read = || -> Result<Option<ExecReport>> {
        match std::fs::read(report) {
            Ok(body) => serde_json::from_slice(&body)
                .map(Some)
                .map_err(|err| ShimError::Protocol(format!("invalid exec report: {err}"))),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(ShimError::io(format!("read {}", report.display()))(err)),
        }
    };
    let mut waited = Duration::ZERO;
    loop {
        if let Some(found) = read()? {
            return Ok((found, None));
        }
        if let Some(kind) = reaper.wait_for(helper, Some(START_POLL)) {
            // The report is written before the helper exits.
            return match read()? {
                Some(found) => Ok((found, Some(kind))),
                None => Err(ShimError::Protocol(format!(
                    "the exec helper exited with code {} before starting the process",
                    kind.code()
                ))),
            };
        }
        waited += START_POLL;
        if waited >= START_TIMEOUT {
            return Err(ShimError::Protocol(format!(
                "the exec helper did not start the process within {}s",
                START_TIMEOUT.as_secs()
            )));
        }
    }
}

// === impl ExecFiles ===

impl ExecFiles {
    fn new(state_dir: &Path, number: u64) -> Self {
        let file = |suffix: &str| state_dir.join(format!("exec-{number}.{suffix}"));
        Self {
            process: file("json"),
            report: file("report"),
            log: file("log"),
            pid_file: file("pid"),
            console: file("sock"),
        }
    }

    fn remove(&self) {
        for path in [
            &self.process,
            &self.report,
            &self.log,
            &self.pid_file,
            &self.console,
        ] {
            let _ = std::fs::remove_file(path);
        }
    }
}

// === impl Plumbing ===

impl Plumbing {
    /// Pipes (stdin only when requested) or, with a terminal, a console socket.
    fn new(request: &ExecRequest, console: &Path) -> Result<Self> {
        if request.tty {
            let _ = std::fs::remove_file(console);
            let listener = UnixListener::bind(console)
                .map_err(ShimError::io(format!("listen on {}", console.display())))?;
            return Ok(Self {
                helper_stdin: Stdio::null(),
                helper_stdout: Stdio::null(),
                // The helper's own diagnostics join the shim's log.
                helper_stderr: Stdio::inherit(),
                outputs: Vec::new(),
                stdin: None,
                console: Some(listener),
            });
        }
        let pipe =
            |what: &str| std::io::pipe().map_err(ShimError::io(format!("create {what} pipe")));
        let (helper_stdin, stdin) = if request.stdin {
            let (read, write) = pipe("stdin")?;
            (
                Stdio::from(OwnedFd::from(read)),
                Some(File::from(OwnedFd::from(write))),
            )
        } else {
            (Stdio::null(), None)
        };
        let (stdout_read, stdout_write) = pipe("stdout")?;
        let (stderr_read, stderr_write) = pipe("stderr")?;
        Ok(Self {
            helper_stdin,
            helper_stdout: Stdio::from(OwnedFd::from(stdout_write)),
            helper_stderr: Stdio::from(OwnedFd::from(stderr_write)),
            outputs: vec![
                (File::from(OwnedFd::from(stdout_read)), FrameStream::Stdout),
                (File::from(OwnedFd::from(stderr_read)), FrameStream::Stderr),
            ],
            stdin,
            console: None,
        })
    }
}

// === impl StartedExec ===

impl StartedExec {
    /// The process's host pid.
    pub(crate) fn pid(&self) -> Pid {
        self.session.pid
    }

    /// Serves the process's stdio on `client` until it exited and its output drained, then
    /// closes the connection; `stdin_from` (the same connection's read side), when given,
    /// feeds its stdin until the client half-closes. Blocks while feeding stdin.
    pub(crate) fn serve(
        self,
        reaper: Arc<Reaper>,
        client: UnixStream,
        stdin_from: Option<impl Read>,
    ) {
        let Self {
            session,
            outputs,
            stdin,
            helper,
            helper_exit,
            files,
            tty,
        } = self;
        let output = Arc::new(ExecOutput {
            tty,
            client: Mutex::new(Some(client)),
            copiers: Mutex::new(0),
            copiers_done: Condvar::new(),
        });
        for (source, stream) in outputs {
            if let Err(err) = output.spawn_copier(source, stream) {
                tracing::warn!(error = %err, "failed to start an exec output copier");
            }
        }
        {
            let waiter_output = Arc::clone(&output);
            let waiter_session = Arc::clone(&session);
            let spawned = std::thread::Builder::new()
                .name("exec-wait".into())
                .spawn(move || {
                    let kind = helper_exit.or_else(|| reaper.wait_for(helper, None));
                    waiter_session.finish(kind.map_or(255, ExitKind::code));
                    waiter_output.wait_copiers(OUTPUT_DRAIN);
                    waiter_output.close();
                    files.remove();
                });
            if let Err(err) = spawned {
                // Without the waiter nobody records the exit: end the process.
                tracing::warn!(error = %err, "failed to start the exec waiter");
                let _ = sys::LinuxProcesses.signal(session.pid, nix::sys::signal::Signal::SIGKILL);
                session.finish(255);
                output.close();
                return;
            }
        }
        if let (Some(mut stdin), Some(mut from)) = (stdin, stdin_from) {
            let mut buffer = vec![0u8; 32 * 1024];
            loop {
                match from.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(read) => {
                        if stdin.write_all(&buffer[..read]).is_err() {
                            break;
                        }
                    }
                }
            }
            // Dropping `stdin` closes the pipe: the process reads end of file.
        }
    }
}

// === impl ExecSession ===

impl ExecSession {
    /// The exit code once the process exited.
    pub(crate) fn exit_code(&self) -> Option<i32> {
        *self.exit.lock()
    }

    /// Blocks until the process exited; returns its code.
    pub(crate) fn wait(&self) -> i32 {
        let mut exit = self.exit.lock();
        loop {
            if let Some(code) = *exit {
                return code;
            }
            self.exited.wait(&mut exit);
        }
    }

    /// Sets the terminal size.
    ///
    /// # Errors
    /// [`ShimError::InvalidRequest`] when the process has no terminal.
    pub(crate) fn resize(&self, height: u16, width: u16) -> Result<()> {
        let console = self.console.as_ref().ok_or_else(|| {
            ShimError::InvalidRequest(format!("exec process {} has no terminal", self.pid))
        })?;
        sys::set_window_size(console.as_fd(), height, width)?;
        Ok(())
    }

    fn finish(&self, code: i32) {
        *self.exit.lock() = Some(code);
        self.exited.notify_all();
    }
}

// === impl ExecOutput ===

impl ExecOutput {
    fn spawn_copier(
        self: &Arc<Self>,
        mut source: File,
        stream: FrameStream,
    ) -> std::io::Result<()> {
        *self.copiers.lock() += 1;
        let output = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("exec-copy".into())
            .spawn(move || {
                let mut buffer = vec![0u8; 32 * 1024];
                loop {
                    match source.read(&mut buffer) {
                        Ok(0) => break,
                        Ok(read) => output.send(stream, &buffer[..read]),
                        Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                        // EIO: the last holder of the pty slave closed it.
                        Err(_) => break,
                    }
                }
                *output.copiers.lock() -= 1;
                output.copiers_done.notify_all();
            });
        if let Err(err) = spawned {
            *self.copiers.lock() -= 1;
            return Err(err);
        }
        Ok(())
    }

    /// Sends output to the client; once it went away, output is only drained.
    fn send(&self, stream: FrameStream, data: &[u8]) {
        let mut client = self.client.lock();
        let Some(connection) = client.as_mut() else {
            return;
        };
        let written = if self.tty {
            connection.write_all(data)
        } else {
            connection.write_all(&encode_frame(stream, data))
        };
        if written.is_err() {
            *client = None;
        }
    }

    fn wait_copiers(&self, timeout: Duration) {
        let mut copiers = self.copiers.lock();
        let mut left = timeout;
        while *copiers > 0 && !left.is_zero() {
            let step = left.min(Duration::from_millis(50));
            self.copiers_done.wait_for(&mut copiers, step);
            left = left.saturating_sub(step);
        }
    }

    /// Ends the client's stream; its pending stdin read returns too.
    fn close(&self) {
        if let Some(client) = self.client.lock().take() {
            let _ = client.shutdown(Shutdown::Both);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_ids_are_checked() {
        assert!(validate_exec_id("abc-1_2").is_ok());
        assert!(validate_exec_id("").is_err());
        assert!(validate_exec_id("../x").is_err());
        assert!(validate_exec_id(&"a".repeat(129)).is_err());
    }

    #[test]
    fn duplicate_ids_are_refused_and_exited_sessions_pruned() {
        let table = ExecTable::default();
        table.reserve("a").unwrap();
        assert!(table.reserve("a").is_err());
        for index in 0..=PRUNE_ABOVE {
            let session = Arc::new(ExecSession {
                pid: Pid::new(1).unwrap(),
                console: None,
                exit: Mutex::new(None),
                exited: Condvar::new(),
            });
            session.finish(0);
            table.sessions.lock().insert(format!("s{index}"), session);
        }
        table.reserve("b").unwrap();
        assert!(table.sessions.lock().is_empty());
    }

    #[test]
    fn session_wait_returns_the_recorded_code() {
        let session = Arc::new(ExecSession {
            pid: Pid::new(1).unwrap(),
            console: None,
            exit: Mutex::new(None),
            exited: Condvar::new(),
        });
        let waiter = {
            let session = Arc::clone(&session);
            std::thread::spawn(move || session.wait())
        };
        session.finish(3);
        assert_eq!(waiter.join().unwrap(), 3);
        assert_eq!(session.exit_code(), Some(3));
        assert!(session.resize(1, 1).is_err());
    }

    #[test]
    fn output_is_framed_and_dropped_once_the_client_left() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let output = ExecOutput {
            tty: false,
            client: Mutex::new(Some(ours)),
            copiers: Mutex::new(0),
            copiers_done: Condvar::new(),
        };
        output.send(FrameStream::Stderr, b"hi");
        output.close();
        let mut bytes = Vec::new();
        theirs.read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes, encode_frame(FrameStream::Stderr, b"hi"));
        output.send(FrameStream::Stdout, b"lost");
        assert!(output.client.lock().is_none());
    }
}
