//! A pre-started shim forker (a "zygote").
//!
//! Launching a shim by executing the `corral` binary costs the dynamic loader's work on a
//! large binary for every container (relocations and page faults: ~3 ms of a `docker run` on
//! a small VM). The daemon instead starts `corral shim-zygote` once ([`ShimZygote`]). The
//! zygote is single-threaded, like a freshly executed shim, and serves launch requests on a
//! socket pair: for each it forks, and the child, in a session of its own, is the shim: it
//! runs what `corral shim <args>` runs after detaching ([`shim_main_forked`]), with the
//! request's stdout/stderr. The zygote replies once it has forked and never waits for its
//! shims: its SIGCHLD is ignored, so the kernel reaps each when it ends (an executed `corral
//! shim` instead forks itself to detach, one process more per start). When the zygote cannot
//! be used the daemon executes the binary as before.
//!
//! Wire format, one `SOCK_SEQPACKET` message each way: the request carries the arguments,
//! each followed by a NUL byte, and two descriptors (stdout, stderr) as `SCM_RIGHTS`; the
//! reply is a little-endian `i32`: 0 once the shim is forked, non-zero when it could not be
//! (the shim's own failures come through its launch report and stderr, as for an executed
//! shim).

use parking_lot::Mutex;
use std::ffi::OsString;
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use corral_sys::process::Forked;
use nix::sys::socket::{
    sendmsg, socketpair, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType,
};
use nix::unistd::dup2;

use super::server::shim_main_forked;

/// The subcommand that runs the zygote: `corral shim-zygote --run-dir DIR`.
pub const ZYGOTE_SUBCOMMAND: &str = "shim-zygote";

/// Bytes of padding in the zygote's own command line, which its shims overwrite with theirs
/// (`corral shim --id ID --bundle …`, cut to fit) so `ps` shows each shim as what it is.
const TITLE_ROOM: usize = 384;

/// Largest request (the arguments of one shim).
const MAX_REQUEST: usize = 64 * 1024;

/// How long the zygote waits without a request before it trims its resident code.
const IDLE_BEFORE_TRIM: Duration = Duration::from_secs(1);

/// How long the daemon waits for the zygote's reply (that it forked the shim).
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// The zygote process: serves launch requests on fd 0 until the daemon closes its end.
/// Returns the process's exit code.
pub fn zygote_main() -> i32 {
    let sock = corral_sys::process::take_stdin();
    // Started with room for its shims' command lines (`TITLE_ROOM`): show its own without
    // the padding.
    let own: Vec<OsString> = std::env::args_os().take(4).collect();
    let own: Vec<&std::ffi::OsStr> = own.iter().map(OsString::as_os_str).collect();
    let _ = corral_sys::process::overwrite_cmdline(&own);
    // Keep only the pages it uses resident (the loader touched much of the binary; forked
    // shims fault in what they run either way): at start, then after a second without a
    // request, not right after each launch (the trim's CPU would compete with the shim it
    // just forked on a small host).
    let _ = corral_sys::memory::trim_executable_pages();
    // Forked shims are reaped by the kernel (each shim resets its own dispositions first).
    if let Err(err) = corral_sys::process::reap_children_automatically() {
        eprintln!("corral shim-zygote: {err}");
        return 1;
    }
    loop {
        match serve_one(&sock) {
            Ok(true) => {
                if !readable_within(&sock, IDLE_BEFORE_TRIM) {
                    let _ = corral_sys::memory::trim_executable_pages();
                }
            }
            Ok(false) => return 0,
            Err(err) => {
                eprintln!("corral shim-zygote: {err}");
                return 1;
            }
        }
    }
}

/// Whether a request (or the end of file) arrives on `sock` within `timeout`.
fn readable_within(sock: &OwnedFd, timeout: Duration) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let millis = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
    let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
    // An interrupted or failed poll counts as readable: the blocking receive decides.
    !matches!(poll(&mut fds, PollTimeout::from(millis)), Ok(0))
}

/// Serves one request; `Ok(false)` at end of file.
fn serve_one(sock: &OwnedFd) -> std::io::Result<bool> {
    let mut buf = vec![0u8; MAX_REQUEST];
    let (len, fds) = corral_sys::process::recv_with_fds(sock.as_fd(), &mut buf)
        .map_err(std::io::Error::other)?;
    if len == 0 && fds.is_empty() {
        return Ok(false);
    }
    let code = match (fds.as_slice(), parse_args(&buf[..len])) {
        ([stdout, stderr], Some(args)) => launch(stdout, stderr, args),
        _ => {
            eprintln!(
                "corral shim-zygote: malformed request ({len} bytes, {} fds)",
                fds.len()
            );
            2
        }
    };
    drop(fds);
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(&code.to_le_bytes())],
        &[],
        MsgFlags::empty(),
        None,
    )?;
    Ok(true)
}

/// The NUL-terminated arguments of a request.
fn parse_args(bytes: &[u8]) -> Option<Vec<OsString>> {
    let body = bytes.strip_suffix(&[0])?;
    Some(
        body.split(|&b| b == 0)
            .map(|a| OsString::from_vec(a.to_vec()))
            .collect(),
    )
}

/// Forks the shim: 0 once forked, 1 when the fork failed.
fn launch(stdout: &OwnedFd, stderr: &OwnedFd, args: Vec<OsString>) -> i32 {
    match corral_sys::process::fork_single_threaded() {
        Ok(Forked::Child) => {
            // stdin /dev/null (replacing the daemon's socket), stdout and stderr the
            // request's; then no other copy of them may stay open: the daemon waits for the
            // end of file on stdout, which the shim gives once its launch report is written.
            let stdio = (|| -> std::io::Result<()> {
                let null = std::fs::File::open("/dev/null")?;
                dup2(null.as_raw_fd(), 0)?;
                dup2(stdout.as_raw_fd(), 1)?;
                dup2(stderr.as_raw_fd(), 2)?;
                Ok(())
            })();
            for fd in [stdout.as_raw_fd(), stderr.as_raw_fd()] {
                let _ = nix::unistd::close(fd);
            }
            // Shown by `ps` as what it is, not as the zygote.
            let mut cmdline = vec![std::ffi::OsStr::new("corral"), std::ffi::OsStr::new("shim")];
            cmdline.extend(args.iter().map(OsString::as_os_str));
            if let Err(err) = corral_sys::process::overwrite_cmdline(&cmdline) {
                eprintln!("corral shim-zygote: rewriting the command line: {err}");
            }
            // The shim itself, in a session of its own: the zygote does not wait for it (its
            // SIGCHLD is ignored, so the kernel reaps the shim when it ends).
            let code = match stdio.and_then(|()| nix::unistd::setsid().map_err(Into::into)) {
                Ok(_) => shim_main_forked(args),
                Err(err) => {
                    eprintln!("corral shim-zygote: setting up the shim's stdio: {err}");
                    1
                }
            };
            // Destructors of the zygote's state (the request's descriptors, closed above)
            // must not run in the child: exit now.
            std::process::exit(code);
        }
        // Forked: the shim reports through its stdout pipe and launch file from here on.
        Ok(Forked::Parent(_)) => 0,
        Err(err) => {
            eprintln!("corral shim-zygote: {err}");
            1
        }
    }
}

/// Why [`ShimZygote::launch`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ZygoteError {
    /// The request did not reach a zygote.
    #[error("shim zygote unavailable: {0}")]
    Unavailable(#[source] std::io::Error),
    /// The zygote took the request and then failed or went away.
    #[error("shim zygote lost during the launch: {0}")]
    Lost(#[source] std::io::Error),
}

/// The daemon's handle on its zygote: started at once, restarted after a failure.
#[derive(Debug)]
pub struct ShimZygote {
    exe: PathBuf,
    run_dir: PathBuf,
    running: Mutex<Option<Running>>,
}

#[derive(Debug)]
struct Running {
    sock: OwnedFd,
    child: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        // Closing the socket ends the zygote; reap it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ShimZygote {
    /// Starts `exe shim-zygote --run-dir RUN_DIR` (the run dir only names the daemon in
    /// `ps`). A zygote that fails to start is retried at the next launch.
    pub fn start(exe: &Path, run_dir: &Path) -> Self {
        let zygote = Self {
            exe: exe.to_path_buf(),
            run_dir: run_dir.to_path_buf(),
            running: Mutex::new(None),
        };
        let mut running = zygote.running.lock();
        match zygote.spawn() {
            Ok(r) => *running = Some(r),
            Err(err) => tracing::warn!(error = %err, "starting the shim zygote"),
        }
        drop(running);
        zygote
    }

    /// The binary the zygote runs.
    pub fn exe(&self) -> &Path {
        &self.exe
    }

    fn spawn(&self) -> std::io::Result<Running> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        let child = Command::new(&self.exe)
            .arg(ZYGOTE_SUBCOMMAND)
            .arg("--run-dir")
            .arg(&self.run_dir)
            // Room in the argument area for the command lines of the shims it forks.
            .arg(" ".repeat(TITLE_ROOM))
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::null())
            .spawn()?;
        let timeout =
            nix::sys::time::TimeVal::new(i64::try_from(REPLY_TIMEOUT.as_secs()).unwrap_or(30), 0);
        nix::sys::socket::setsockopt(&ours, nix::sys::socket::sockopt::ReceiveTimeout, &timeout)?;
        tracing::debug!(pid = child.id(), "shim zygote started");
        Ok(Running { sock: ours, child })
    }

    /// Runs `corral shim <args>` as a fork of the zygote with `stdout` and `stderr`, and
    /// returns the zygote's reply: 0 once the shim is forked. On error the zygote is
    /// restarted at the next call; [`ZygoteError::Unavailable`] means the request never
    /// reached it (the caller may execute the binary instead), [`ZygoteError::Lost`] that it
    /// went away after taking the request (a shim may be running: the launch has failed).
    /// Blocking.
    pub fn launch(
        &self,
        args: &[OsString],
        stdout: &OwnedFd,
        stderr: &OwnedFd,
    ) -> Result<i32, ZygoteError> {
        let mut request = Vec::new();
        for arg in args {
            request.extend_from_slice(arg.as_bytes());
            request.push(0);
        }
        if request.len() > MAX_REQUEST {
            return Err(ZygoteError::Unavailable(std::io::Error::other(
                "shim arguments too long for the zygote",
            )));
        }
        let mut running = self.running.lock();
        if running.is_none() {
            *running = Some(self.spawn().map_err(ZygoteError::Unavailable)?);
        }
        let result = (|| {
            let r = running.as_ref().expect("set above");
            let fds = [stdout.as_raw_fd(), stderr.as_raw_fd()];
            sendmsg::<()>(
                r.sock.as_raw_fd(),
                &[IoSlice::new(&request)],
                &[ControlMessage::ScmRights(&fds)],
                MsgFlags::MSG_NOSIGNAL,
                None,
            )
            .map_err(|e| ZygoteError::Unavailable(e.into()))?;
            let mut reply = [0u8; 4];
            let n = nix::sys::socket::recv(r.sock.as_raw_fd(), &mut reply, MsgFlags::empty())
                .map_err(|e| ZygoteError::Lost(e.into()))?;
            if n != reply.len() {
                return Err(ZygoteError::Lost(std::io::Error::other(format!(
                    "it replied {n} bytes"
                ))));
            }
            Ok(i32::from_le_bytes(reply))
        })();
        if result.is_err() {
            // Dead, hung or confused: start afresh next time.
            *running = None;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_nul_terminated_arguments() {
        assert_eq!(
            parse_args(b"--id\0c1\0--bundle\0/b\0").unwrap(),
            ["--id", "c1", "--bundle", "/b"].map(OsString::from)
        );
        assert_eq!(parse_args(b"\0").unwrap(), [OsString::new()]);
        assert!(parse_args(b"--id").is_none(), "unterminated");
    }
}
