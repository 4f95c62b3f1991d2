//! Running helper commands with a deadline, and tiny HTTP probes for readiness checks.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::time::Instant;

/// What a finished (or timed-out) command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The program and its arguments, for messages.
    pub argv: Vec<String>,
    /// Exit code; `None` when killed by a signal (including on timeout).
    pub code: Option<i32>,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard output bytes.
    pub stdout_bytes: Vec<u8>,
    /// Standard error, lossily decoded.
    pub stderr: String,
    /// True when the deadline passed and the command was killed.
    pub timed_out: bool,
}

impl Output {
    /// True when the command exited with code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Standard output with surrounding whitespace removed.
    pub fn out(&self) -> &str {
        self.stdout.trim()
    }

    /// Standard error with surrounding whitespace removed.
    pub fn err(&self) -> &str {
        self.stderr.trim()
    }

    /// Returns `self` when the command succeeded.
    ///
    /// # Panics
    /// Otherwise, with the command line, exit code, stdout and stderr in the message.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert!(self.success(), "command failed: {self}");
        self
    }

    /// Returns `self` when the command failed (non-zero exit, not a timeout).
    ///
    /// # Panics
    /// When it succeeded or timed out.
    #[track_caller]
    pub fn failed(&self) -> &Self {
        assert!(
            !self.success() && !self.timed_out,
            "command was expected to fail: {self}"
        );
        self
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` exited with {:?}{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.argv.join(" "),
            self.code,
            if self.timed_out { " (timed out)" } else { "" },
            self.stdout,
            self.stderr
        )
    }
}

/// Runs `cmd` to completion, feeding it `stdin` (or `/dev/null`), killing it after `timeout`.
///
/// # Errors
/// When the program cannot be started.
pub fn run_with_timeout(
    mut cmd: Command,
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> Result<Output> {
    let argv: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd
        .spawn()
        .with_context(|| format!("spawn {}", argv.join(" ")))?;

    let writer = match (stdin, child.stdin.take()) {
        (Some(data), Some(mut pipe)) => {
            let data = data.to_vec();
            Some(std::thread::spawn(move || {
                // A child that exits early closes the pipe; that is not our failure.
                let _ = pipe.write_all(&data);
            }))
        }
        _ => None,
    };
    let out_reader = reader_thread(child.stdout.take());
    let err_reader = reader_thread(child.stderr.take());

    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().context("wait for child")? {
            break status;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            let _ = child.kill();
            break child.wait().context("wait for killed child")?;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    if let Some(w) = writer {
        let _ = w.join();
    }
    let stdout_bytes = out_reader.join().unwrap_or_default();
    let stderr_bytes = err_reader.join().unwrap_or_default();
    Ok(Output {
        argv,
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout_bytes).into_owned(),
        stdout_bytes,
        stderr: String::from_utf8_lossy(&stderr_bytes).into_owned(),
        timed_out,
    })
}

fn reader_thread<R: Read + Send + 'static>(r: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf);
        }
        buf
    })
}

/// Sends SIGTERM to `child`, waits up to `grace`, then SIGKILLs it and reaps it.
pub(crate) fn terminate(child: &mut Child, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Sends a bodiless `GET path` over HTTP/1.0 and returns (status code, body).
fn http_get<S: Read + Write>(stream: S, path: &str) -> Result<(u16, String)> {
    http_request(stream, "GET", path)
}

/// Sends a bodiless `METHOD path` over HTTP/1.0 and returns (status code, body).
fn http_request<S: Read + Write>(mut stream: S, method: &str, path: &str) -> Result<(u16, String)> {
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )
    .context("send request")?;
    let mut resp = Vec::new();
    stream.read_to_end(&mut resp).context("read response")?;
    let text = String::from_utf8_lossy(&resp);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .with_context(|| format!("malformed HTTP response: {text:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// `GET path` on a unix socket.
///
/// # Errors
/// When connecting, sending or parsing fails.
pub fn http_get_unix(socket: &Path, path: &str) -> Result<(u16, String)> {
    let s = UnixStream::connect(socket).with_context(|| format!("connect {}", socket.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    http_get(s, path)
}

/// A bodiless `METHOD path` on a unix socket (`DELETE /containers/x?force=1`).
///
/// # Errors
/// When connecting, sending or parsing fails.
pub fn http_request_unix(socket: &Path, method: &str, path: &str) -> Result<(u16, String)> {
    let s = UnixStream::connect(socket).with_context(|| format!("connect {}", socket.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    http_request(s, method, path)
}

/// `GET path` on `addr` (`host:port`) over TCP.
///
/// # Errors
/// When connecting, sending or parsing fails.
pub fn http_get_tcp(addr: &str, path: &str) -> Result<(u16, String)> {
    let s = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    http_get(s, path)
}

/// Polls `ready` every 50 ms until it returns true, the child exits, or `timeout` passes.
pub(crate) fn wait_ready(
    child: &mut Child,
    what: &str,
    log: &Path,
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return Ok(());
        }
        if let Some(status) = child.try_wait().context("poll child")? {
            anyhow::bail!(
                "{what} exited with {status} before becoming ready; log:\n{}",
                log_tail(log)
            );
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "{what} not ready after {timeout:?}; log:\n{}",
                log_tail(log)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last 4 KiB of a log file (or a note that it could not be read).
pub(crate) fn log_tail(log: &Path) -> String {
    match std::fs::read(log) {
        Ok(b) => {
            let start = b.len().saturating_sub(4096);
            String::from_utf8_lossy(&b[start..]).into_owned()
        }
        Err(e) => format!("<cannot read {}: {e}>", log.display()),
    }
}
