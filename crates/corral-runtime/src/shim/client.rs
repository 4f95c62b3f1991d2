//! The daemon's side: launch a shim, talk to it, re-adopt it after a restart.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use corral_sys::process::{pid_alive, Pid};
use nix::sys::socket::MsgFlags;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

use super::args::ShimArgs;
use super::error::{Result, ShimError};
use super::protocol::{
    ExitStatus, LaunchReport, Request, Response, ShimState, WireErrorKind, EXIT_FILE, LAUNCH_FILE,
    SHIM_LOG_FILE, SHIM_PID_FILE, SOCKET_FILE,
};
use super::zygote::{ShimZygote, ZygoteError};

/// How long `launch` waits for the container to be created.
pub const LAUNCH_TIMEOUT: Duration = Duration::from_secs(60);
/// Timeout for connecting and for replies other than `wait`.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest reply line read.
const MAX_REPLY: usize = 1024 * 1024;

/// A handle on one container's shim. Cheap to clone; every request opens its own
/// connection, so a handle stays valid across shim-side connection failures.
#[derive(Debug, Clone)]
pub struct ShimClient {
    state_dir: PathBuf,
    shim_pid: Pid,
    init_pid: Pid,
}

/// Which streams to attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AttachOptions {
    /// Forward bytes written to the stream to the container's stdin.
    pub stdin: bool,
    /// Receive stdout.
    pub stdout: bool,
    /// Receive stderr.
    pub stderr: bool,
}

/// A process started with [`ShimClient::exec`].
#[derive(Debug)]
pub struct ExecStream {
    pid: Pid,
    stream: UnixStream,
}

/// An attached connection. Reading yields frames (see
/// [`read_frame`](super::protocol::read_frame)), or raw bytes for a TTY container; writing
/// sends stdin; shutting the write half down closes the container's stdin.
#[derive(Debug)]
pub struct AttachStream {
    stream: UnixStream,
}

/// The daemon's shim zygote, once [`start_zygote`] has run.
static ZYGOTE: std::sync::OnceLock<ShimZygote> = std::sync::OnceLock::new();

/// Starts the shim zygote of `exe` (see [`super::zygote`]): later launches of `exe` fork
/// it instead of executing the binary. Call once, at daemon start.
pub fn start_zygote(exe: &Path, run_dir: &Path) {
    if ZYGOTE.get().is_none() {
        let _ = ZYGOTE.set(ShimZygote::start(exe, run_dir));
    }
}

/// Prepares `state_dir` (created, last launch's files removed) and opens the shim's log;
/// then, when the daemon has a zygote for `exe`, launches `corral shim <args>` as its fork
/// with the launch-report pipe as its stdout and the log as its stderr. One blocking call,
/// so a launch pays one hop to the blocking pool.
fn prepare_and_fork(
    exe: &Path,
    args: &ShimArgs,
) -> Result<(std::fs::File, Option<(i32, std::os::fd::OwnedFd)>)> {
    let state_dir = &args.state_dir;
    std::fs::create_dir_all(state_dir)
        .map_err(ShimError::io(format!("create {}", state_dir.display())))?;
    for stale in [LAUNCH_FILE, EXIT_FILE, SHIM_PID_FILE] {
        let _ = std::fs::remove_file(state_dir.join(stale));
    }
    let shim_log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(state_dir.join(SHIM_LOG_FILE))
        .map_err(ShimError::io("open the shim log"))?;
    let Some(zygote) = ZYGOTE.get().filter(|z| z.exe() == exe) else {
        return Ok((shim_log, None));
    };
    let unavailable = |err: &dyn std::fmt::Display| {
        tracing::warn!(error = %err, "shim zygote unavailable; executing the shim");
    };
    let (read, write) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(err) => {
            unavailable(&err);
            return Ok((shim_log, None));
        }
    };
    let log: std::os::fd::OwnedFd = match shim_log.try_clone() {
        Ok(f) => f.into(),
        Err(err) => {
            unavailable(&err);
            return Ok((shim_log, None));
        }
    };
    // The zygote holds its copies only until it has forked; ours close on return.
    match zygote.launch(&args.to_args(), &write, &log) {
        Ok(code) => Ok((shim_log, Some((code, read)))),
        Err(err @ ZygoteError::Unavailable(_)) => {
            unavailable(&err);
            Ok((shim_log, None))
        }
        Err(err @ ZygoteError::Lost(_)) => Err(ShimError::Remote(err.to_string())),
    }
}

// === impl ShimClient ===

impl ShimClient {
    /// Starts `exe shim <args>` detached, waits until it reports the container created and
    /// returns a client for it. Creation failures come back as [`ShimError::Create`] with
    /// the runtime's text and Docker's exit code (127 for a missing executable).
    pub async fn launch(exe: &Path, args: &ShimArgs) -> Result<Self> {
        Self::launch_with_timeout(exe, args, LAUNCH_TIMEOUT).await
    }

    /// [`ShimClient::launch`] with a chosen timeout.
    pub async fn launch_with_timeout(
        exe: &Path,
        args: &ShimArgs,
        timeout: Duration,
    ) -> Result<Self> {
        args.validate()?;
        let state_dir = args.state_dir.clone();
        // stdout is a pipe the shim keeps until its launch report is written (it then points
        // stdout at /dev/null, or exits): its end of file wakes the wait below at once.
        let (exe2, args2) = (exe.to_path_buf(), args.clone());
        let (shim_log, by_zygote) =
            tokio::task::spawn_blocking(move || prepare_and_fork(&exe2, &args2))
                .await
                .map_err(|e| ShimError::Remote(format!("shim launch task: {e}")))??;
        let mut reported: Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>;
        if let Some((code, read)) = by_zygote {
            let pipe = tokio::net::unix::pipe::Receiver::from_owned_fd(read)
                .map_err(ShimError::io("watch the shim's launch pipe"))?;
            reported = Some(Box::new(pipe));
            if code != 0 {
                return Err(ShimError::Remote(format!(
                    "the shim zygote could not fork the shim (code {code}): {}",
                    shim_log_tail(&state_dir).await
                )));
            }
        } else {
            let mut child = tokio::process::Command::new(exe)
                .arg("shim")
                .args(args.to_args())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::from(shim_log))
                .kill_on_drop(false)
                .spawn()
                .map_err(ShimError::io(format!("run {}", exe.display())))?;
            reported = child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Unpin + Send>);
            // The launched process forks the real shim and exits at once.
            let status = tokio::time::timeout(REQUEST_TIMEOUT, child.wait())
                .await
                .map_err(|_| ShimError::Timeout {
                    state_dir: state_dir.clone(),
                    seconds: REQUEST_TIMEOUT.as_secs(),
                })?
                .map_err(ShimError::io("wait for the shim launcher"))?;
            if !status.success() {
                return Err(ShimError::Remote(format!(
                    "shim exited with {status}: {}",
                    shim_log_tail(&state_dir).await
                )));
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut delay = Duration::from_millis(2);
        // The pipe's end of file came: the shim wrote its report, or it is gone.
        let mut pipe_closed = false;
        // A forked shim has only just begun: wait for its pipe before the first look.
        let mut look = reported.is_none();
        loop {
            if look {
                if let Some(report) =
                    read_json::<LaunchReport>(&state_dir.join(LAUNCH_FILE)).await?
                {
                    return match report {
                        LaunchReport::Created { shim_pid, init_pid } => Ok(Self {
                            state_dir,
                            shim_pid: pid(shim_pid)?,
                            init_pid: pid(init_pid)?,
                        }),
                        LaunchReport::Failed { message, exit_code } => Err(ShimError::Create {
                            id: args.id.clone(),
                            message,
                            exit_code,
                        }),
                    };
                }
                let shim_pid = read_pid(&state_dir.join(SHIM_PID_FILE)).await;
                if pipe_closed && shim_pid.is_none() {
                    // Ended before it even wrote its pid (bad arguments, an unwritable state
                    // directory): a forked shim has no launcher exit status to report that.
                    return Err(ShimError::Remote(format!(
                        "shim exited before creating the container: {}",
                        shim_log_tail(&state_dir).await
                    )));
                }
                if let Some(shim_pid) = shim_pid {
                    if !pid_alive(shim_pid) {
                        // It may have written the report just before exiting.
                        if tokio::fs::try_exists(state_dir.join(LAUNCH_FILE))
                            .await
                            .unwrap_or(false)
                        {
                            continue;
                        }
                        return Err(ShimError::Remote(format!(
                            "shim died before creating the container: {}",
                            shim_log_tail(&state_dir).await
                        )));
                    }
                }
            }
            look = true;
            if tokio::time::Instant::now() >= deadline {
                return Err(ShimError::Timeout {
                    state_dir,
                    seconds: timeout.as_secs(),
                });
            }
            match reported.as_mut() {
                // Polling stays as the fallback: the pipe only says "look now".
                Some(pipe) => {
                    let mut byte = [0u8; 1];
                    tokio::select! {
                        read = tokio::io::AsyncReadExt::read(pipe, &mut byte) => {
                            // End of file (or an error) is final: stop watching the pipe.
                            if !matches!(read, Ok(n) if n > 0) {
                                reported = None;
                                pipe_closed = true;
                            }
                        }
                        () = tokio::time::sleep(delay) => {}
                    }
                }
                None => tokio::time::sleep(delay).await,
            }
            delay = (delay * 2).min(Duration::from_millis(50));
        }
    }

    /// Re-adopts the shim serving `state_dir` (after a daemon restart).
    /// [`ShimError::Gone`] when it has exited: read [`ShimClient::read_exit`] then.
    pub async fn connect(state_dir: &Path) -> Result<Self> {
        let gone = || ShimError::Gone {
            state_dir: state_dir.to_owned(),
        };
        let report = read_json::<LaunchReport>(&state_dir.join(LAUNCH_FILE))
            .await?
            .ok_or_else(gone)?;
        let LaunchReport::Created { shim_pid, init_pid } = report else {
            return Err(gone());
        };
        let client = Self {
            state_dir: state_dir.to_owned(),
            shim_pid: pid(shim_pid)?,
            init_pid: pid(init_pid)?,
        };
        if !pid_alive(client.shim_pid) {
            return Err(gone());
        }
        client.open().await?;
        Ok(client)
    }

    /// The exit status the shim left in `state_dir`, if the container has exited.
    pub async fn read_exit(state_dir: &Path) -> Result<Option<ExitStatus>> {
        read_json(&state_dir.join(EXIT_FILE)).await
    }

    /// The shim's state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The shim's pid.
    pub fn shim_pid(&self) -> Pid {
        self.shim_pid
    }

    /// The container init's host pid.
    pub fn init_pid(&self) -> Pid {
        self.init_pid
    }

    /// Starts the created container.
    pub async fn start(&self) -> Result<()> {
        self.expect_ok(Request::Start).await
    }

    /// Sends signal number `signal` to the container's init (or all its processes).
    pub async fn kill(&self, signal: i32, all: bool) -> Result<()> {
        self.expect_ok(Request::Kill { signal, all }).await
    }

    /// Freezes the container.
    pub async fn pause(&self) -> Result<()> {
        self.expect_ok(Request::Pause).await
    }

    /// Thaws the container.
    pub async fn resume(&self) -> Result<()> {
        self.expect_ok(Request::Resume).await
    }

    /// Sets the terminal size of a TTY container.
    pub async fn resize(&self, height: u16, width: u16) -> Result<()> {
        self.expect_ok(Request::Resize { height, width }).await
    }

    /// The container's state.
    pub async fn state(&self) -> Result<ShimState> {
        match self.call(&Request::State, Some(REQUEST_TIMEOUT)).await?.1 {
            Response::State(state) => Ok(state),
            other => Err(unexpected(other)),
        }
    }

    /// Waits for the container to exit. If the shim goes away meanwhile, the status it left
    /// in `exit.json` is returned, or [`ShimError::Gone`].
    pub async fn wait(&self) -> Result<ExitStatus> {
        match self.call(&Request::Wait, None).await {
            Ok((_, Response::Exit(status))) => Ok(status),
            Ok((_, other)) => Err(unexpected(other)),
            Err(ShimError::Io { .. } | ShimError::Gone { .. } | ShimError::Protocol(_)) => {
                Self::read_exit(&self.state_dir)
                    .await?
                    .ok_or_else(|| ShimError::Gone {
                        state_dir: self.state_dir.clone(),
                    })
            }
            Err(err) => Err(err),
        }
    }

    /// Attaches to the container's stdio. Attach before [`ShimClient::start`] to see all
    /// output.
    pub async fn attach(&self, options: AttachOptions) -> Result<AttachStream> {
        let request = Request::Attach {
            stdin: options.stdin,
            stdout: options.stdout,
            stderr: options.stderr,
        };
        let (stream, response) = self.call(&request, Some(REQUEST_TIMEOUT)).await?;
        match response {
            Response::Ok => Ok(AttachStream { stream }),
            other => Err(unexpected(other)),
        }
    }

    /// Starts `process` (an OCI runtime spec `process` object; `terminal` must equal `tty`)
    /// in the running container as exec session `exec_id`, and returns once it runs. The
    /// stream carries its output like [`ShimClient::attach`] (frames, raw bytes with `tty`)
    /// and ends after the process exited; with `stdin`, bytes written go to its stdin and
    /// shutting the write half down closes it. Collect the exit code with
    /// [`ShimClient::exec_wait`].
    ///
    /// # Errors
    /// [`ShimError::ExecFailed`] with Docker's text when the runtime could not start the
    /// process (a missing command: `OCI runtime exec failed: exec failed: unable to start
    /// container process: exec: "x": executable file not found in $PATH: unknown`);
    /// [`ShimError::NotRunning`] when the container is not running; [`ShimError::InvalidRequest`]
    /// when it is paused or the id is taken.
    pub async fn exec(
        &self,
        exec_id: &str,
        process: &serde_json::Value,
        tty: bool,
        stdin: bool,
    ) -> Result<ExecStream> {
        let request = Request::Exec {
            exec_id: exec_id.to_owned(),
            process: process.clone(),
            tty,
            stdin,
        };
        // Starting may take a while (the helper runs the OCI runtime): the launch budget.
        let (stream, response) = self.call(&request, Some(LAUNCH_TIMEOUT)).await?;
        match response {
            Response::ExecStarted { pid: raw } => Ok(ExecStream {
                pid: pid(raw)?,
                stream,
            }),
            other => Err(unexpected(other)),
        }
    }

    /// Waits for exec session `exec_id` to exit and returns its exit code (128 + signal
    /// number when a signal killed it).
    ///
    /// # Errors
    /// [`ShimError::InvalidRequest`] for an unknown session, [`ShimError::Gone`] or an I/O
    /// error when the shim went away first.
    pub async fn exec_wait(&self, exec_id: &str) -> Result<i32> {
        let request = Request::ExecWait {
            exec_id: exec_id.to_owned(),
        };
        match self.call(&request, None).await?.1 {
            Response::ExecExit { code } => Ok(code),
            other => Err(unexpected(other)),
        }
    }

    /// Sets the terminal size of exec session `exec_id`.
    ///
    /// # Errors
    /// [`ShimError::InvalidRequest`] for an unknown session or one without a terminal.
    pub async fn exec_resize(&self, exec_id: &str, height: u16, width: u16) -> Result<()> {
        self.expect_ok(Request::ExecResize {
            exec_id: exec_id.to_owned(),
            height,
            width,
        })
        .await
    }

    async fn expect_ok(&self, request: Request) -> Result<()> {
        match self.call(&request, Some(REQUEST_TIMEOUT)).await?.1 {
            Response::Ok => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn open(&self) -> Result<UnixStream> {
        let socket = self.state_dir.join(SOCKET_FILE);
        match tokio::time::timeout(REQUEST_TIMEOUT, UnixStream::connect(&socket)).await {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(err))
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                Err(ShimError::Gone {
                    state_dir: self.state_dir.clone(),
                })
            }
            Ok(Err(err)) => Err(ShimError::io(format!("connect to {}", socket.display()))(
                err,
            )),
            Err(_) => Err(ShimError::Timeout {
                state_dir: self.state_dir.clone(),
                seconds: REQUEST_TIMEOUT.as_secs(),
            }),
        }
    }

    /// Sends one request and reads the reply line (nothing after it is consumed: an attach
    /// stream follows it). Errors from the shim become `Err`.
    async fn call(
        &self,
        request: &Request,
        timeout: Option<Duration>,
    ) -> Result<(UnixStream, Response)> {
        let mut stream = self.open().await?;
        let exchange = async {
            let mut line =
                serde_json::to_vec(request).map_err(|err| ShimError::Protocol(err.to_string()))?;
            line.push(b'\n');
            stream
                .write_all(&line)
                .await
                .map_err(ShimError::io("send a shim request"))?;
            let reply = read_reply_line(&mut stream).await?;
            serde_json::from_slice::<Response>(&reply)
                .map_err(|err| ShimError::Protocol(format!("invalid reply: {err}")))
        };
        let response =
            match timeout {
                Some(limit) => tokio::time::timeout(limit, exchange).await.map_err(|_| {
                    ShimError::Timeout {
                        state_dir: self.state_dir.clone(),
                        seconds: limit.as_secs(),
                    }
                })??,
                None => exchange.await?,
            };
        if let Response::Error { message, kind } = response {
            return Err(match kind {
                WireErrorKind::NotRunning => ShimError::NotRunning(message),
                WireErrorKind::InvalidRequest => ShimError::InvalidRequest(message),
                WireErrorKind::Internal => ShimError::Remote(message),
                WireErrorKind::ExecFailed => ShimError::ExecFailed(message),
            });
        }
        Ok((stream, response))
    }
}

/// Reads one reply line, without its `\n`, and nothing after it: the bytes are peeked
/// (`MSG_PEEK`) and only those up to the newline are then read. One or two reads per reply
/// instead of one per byte.
async fn read_reply_line(stream: &mut UnixStream) -> Result<Vec<u8>> {
    let fd = stream.as_raw_fd();
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        stream
            .readable()
            .await
            .map_err(ShimError::io("read a shim reply"))?;
        let peeked = stream.try_io(Interest::READABLE, || {
            nix::sys::socket::recv(fd, &mut buf, MsgFlags::MSG_PEEK).map_err(std::io::Error::from)
        });
        let peeked = match peeked {
            Ok(0) => {
                return Err(ShimError::io("read a shim reply")(
                    std::io::ErrorKind::UnexpectedEof.into(),
                ))
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(ShimError::io("read a shim reply")(e)),
        };
        let newline = buf[..peeked].iter().position(|&b| b == b'\n');
        let take = newline.map_or(peeked, |i| i + 1);
        // What was peeked is in the socket buffer: this read returns at once.
        stream
            .read_exact(&mut buf[..take])
            .await
            .map_err(ShimError::io("read a shim reply"))?;
        let line_bytes = if newline.is_some() { take - 1 } else { take };
        reply.extend_from_slice(&buf[..line_bytes]);
        if reply.len() > MAX_REPLY {
            return Err(ShimError::Protocol("reply too long".into()));
        }
        if newline.is_some() {
            return Ok(reply);
        }
    }
}

fn unexpected(response: Response) -> ShimError {
    ShimError::Protocol(format!("unexpected reply {response:?}"))
}

fn pid(raw: i32) -> Result<Pid> {
    Pid::new(raw).ok_or_else(|| ShimError::Protocol(format!("invalid pid {raw}")))
}

async fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match tokio::fs::read(path).await {
        Ok(body) => serde_json::from_slice(&body)
            .map(Some)
            .map_err(|err| ShimError::Protocol(format!("invalid {}: {err}", path.display()))),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(ShimError::io(format!("read {}", path.display()))(err)),
    }
}

async fn read_pid(path: &Path) -> Option<Pid> {
    let text = tokio::fs::read_to_string(path).await.ok()?;
    Pid::new(text.trim().parse().ok()?)
}

async fn shim_log_tail(state_dir: &Path) -> String {
    let text = tokio::fs::read_to_string(state_dir.join(SHIM_LOG_FILE))
        .await
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join("; ")
}

// === impl ExecStream ===

impl ExecStream {
    /// The exec'd process's host pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Splits into the output half (frames or raw TTY bytes) and the stdin half.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        self.stream.into_split()
    }

    /// The underlying connection.
    pub fn into_inner(self) -> UnixStream {
        self.stream
    }
}

// === impl AttachStream ===

impl AttachStream {
    /// Splits into the output half (frames or raw TTY bytes) and the stdin half.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        self.stream.into_split()
    }

    /// The underlying connection.
    pub fn into_inner(self) -> UnixStream {
        self.stream
    }
}
