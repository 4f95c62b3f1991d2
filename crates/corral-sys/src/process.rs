//! Process helpers: signals, reaping, pid checks, session set-up and fd passing.
//!
//! [`Processes`] is the seam for acting on *other* processes (signals, liveness) and has a
//! Linux implementation and, behind the `fake` feature, a recording fake. The free functions
//! act on the *calling* process (become a subreaper, detach from the parent, reap children,
//! receive a pty master over a console socket); only the per-container shim calls them.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::str::FromStr;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus};

/// Failures of process operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessError {
    /// `kill(2)` failed.
    #[error("failed to send {signal} to pid {pid}")]
    Kill {
        /// Target process.
        pid: i32,
        /// Signal that was sent.
        signal: Signal,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// The target process does not exist.
    #[error("no process with pid {0}")]
    NoSuchProcess(i32),
    /// `waitpid(2)` failed.
    #[error("failed to wait for child processes")]
    Wait(#[source] Errno),
    /// `sigaction(2)` failed.
    #[error("failed to set the SIGPIPE disposition")]
    Sigaction(#[source] Errno),
    /// `prctl(PR_SET_CHILD_SUBREAPER)` failed.
    #[error("failed to become a child subreaper")]
    Subreaper(#[source] Errno),
    /// `fork(2)` or `setsid(2)` failed while detaching.
    #[error("failed to detach from the parent process")]
    Detach(#[source] Errno),
    /// `fork(2)` failed.
    #[error("failed to fork")]
    Fork(#[source] Errno),
    /// Detaching requires a single-threaded process.
    #[error("refusing to fork: the process has {0} threads")]
    NotSingleThreaded(usize),
    /// Reading `/proc/self/status` failed.
    #[error("failed to count the threads of this process")]
    ThreadCount(#[source] std::io::Error),
    /// `recvmsg(2)` failed while receiving a file descriptor.
    #[error("failed to receive a file descriptor")]
    RecvFd(#[source] Errno),
    /// The message carried no file descriptor.
    #[error("the peer sent no file descriptor")]
    NoFd,
    /// `ioctl(TIOCSWINSZ)` failed.
    #[error("failed to set the terminal window size")]
    WindowSize(#[source] Errno),
    /// A signal name or number was not recognised.
    #[error("invalid signal {0:?}")]
    InvalidSignal(String),
    /// A chosen call of the fake failed on purpose.
    #[error("injected failure in {0}")]
    Injected(&'static str),
    /// Pointing a standard stream at `/dev/null` failed.
    #[error("failed to redirect a standard stream to /dev/null")]
    Redirect(#[source] std::io::Error),
}

/// Result alias for this module.
pub type Result<T, E = ProcessError> = std::result::Result<T, E>;

/// A process id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pid(i32);

/// How a child process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// It called `exit` with this code.
    Exited(i32),
    /// A signal (the number) terminated it.
    Signaled(i32),
}

/// A reaped child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildExit {
    /// The child's pid.
    pub pid: Pid,
    /// How it ended.
    pub kind: ExitKind,
}

/// Outcome of one [`reap_child`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaped {
    /// A child ended and was reaped.
    Child(ChildExit),
    /// Children exist but none has ended (only without blocking).
    NoneReady,
    /// The process has no children at all (`ECHILD`).
    NoChildren,
}

/// Acting on other processes: the seam tests replace with `FakeProcesses` (feature `fake`).
pub trait Processes: Send + Sync {
    /// Sends `signal` to `pid`; [`ProcessError::NoSuchProcess`] when it is gone.
    fn signal(&self, pid: Pid, signal: Signal) -> Result<()>;
    /// Whether a process with this pid exists (a zombie counts as existing).
    fn alive(&self, pid: Pid) -> bool;
}

/// The real [`Processes`], using `kill(2)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinuxProcesses;

// === impl Pid ===

impl Pid {
    /// Wraps a raw pid; `None` unless it is positive (0 and negatives address groups).
    pub fn new(raw: i32) -> Option<Self> {
        (raw > 0).then_some(Self(raw))
    }

    /// The raw pid.
    pub fn as_raw(self) -> i32 {
        self.0
    }

    fn to_nix(self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.0)
    }
}

impl std::fmt::Display for Pid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

// === impl ExitKind ===

impl ExitKind {
    /// Docker's exit code: the code itself, or 128 + signal number when a signal killed it.
    pub fn code(self) -> i32 {
        match self {
            Self::Exited(code) => code,
            Self::Signaled(signal) => 128 + signal,
        }
    }
}

// === impl LinuxProcesses ===

impl Processes for LinuxProcesses {
    fn signal(&self, pid: Pid, signal: Signal) -> Result<()> {
        match nix::sys::signal::kill(pid.to_nix(), signal) {
            Ok(()) => Ok(()),
            Err(Errno::ESRCH) => Err(ProcessError::NoSuchProcess(pid.as_raw())),
            Err(source) => Err(ProcessError::Kill {
                pid: pid.as_raw(),
                signal,
                source,
            }),
        }
    }

    fn alive(&self, pid: Pid) -> bool {
        pid_alive(pid)
    }
}

/// Whether a process with this pid exists (signal 0 probe; EPERM still means it exists).
pub fn pid_alive(pid: Pid) -> bool {
    !matches!(
        nix::sys::signal::kill(pid.to_nix(), None),
        Err(Errno::ESRCH)
    )
}

/// Parses a signal as Docker accepts it: `SIGKILL`, `KILL`, `kill` or `9`.
pub fn parse_signal(text: &str) -> Result<Signal> {
    let invalid = || ProcessError::InvalidSignal(text.to_owned());
    let trimmed = text.trim();
    if let Ok(number) = trimmed.parse::<i32>() {
        return Signal::try_from(number).map_err(|_| invalid());
    }
    let upper = trimmed.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name).map_err(|_| invalid())
}

/// Converts a signal number to a [`Signal`].
pub fn signal_from_number(number: i32) -> Result<Signal> {
    Signal::try_from(number).map_err(|_| ProcessError::InvalidSignal(number.to_string()))
}

extern "C" fn ignore_sigpipe(_: nix::libc::c_int) {}

/// Resets signal dispositions this process inherited or set for itself, so processes it
/// starts (containers) begin with defaults, as a fresh `execve` from a clean parent would.
///
/// Ignored signals stay ignored across `execve`: Rust starts with SIGPIPE ignored, and a
/// daemon launched in the background by a shell has SIGINT and SIGQUIT ignored. Every
/// ignored standard signal is reset to its default, except SIGPIPE, which gets a handler
/// that does nothing: a handled signal is reset on `execve`, while writes here keep failing
/// with `EPIPE` instead of killing the process.
pub fn reset_signal_dispositions() -> Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet};
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP | Signal::SIGPIPE) {
            continue;
        }
        // SAFETY: installing SIG_DFL runs no code in signal context; a signal this process
        // ignored becomes default again, which only affects this single-threaded shim.
        let old = unsafe { sigaction(sig, &default) }.map_err(ProcessError::Sigaction)?;
        if old.handler() != SigHandler::SigIgn {
            // It had a handler or the default: put it back as it was.
            // SAFETY: restores the exact disposition sigaction just returned.
            unsafe { sigaction(sig, &old) }.map_err(ProcessError::Sigaction)?;
        }
    }
    let action = SigAction::new(
        SigHandler::Handler(ignore_sigpipe),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler is async-signal-safe (it does nothing) and replaces a disposition
    // this process owns; no code here relies on SIGPIPE being ignored, only on writes
    // returning EPIPE, which a handled signal preserves.
    unsafe { sigaction(Signal::SIGPIPE, &action) }
        .map(drop)
        .map_err(ProcessError::Sigaction)
}

/// Lets the kernel reap the calling process's children (SIGCHLD set to `SIG_IGN`): they
/// never stay zombies, and `wait` no longer reports them. For a process that forks children
/// it never waits for (the shim zygote); a child that needs its own children reported must
/// reset its dispositions ([`reset_signal_dispositions`] does).
pub fn reap_children_automatically() -> Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet};
    let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: installing SIG_IGN runs no code in signal context.
    unsafe { sigaction(Signal::SIGCHLD, &ignore) }
        .map(drop)
        .map_err(ProcessError::Sigaction)
}

/// Marks the calling process a child subreaper (`PR_SET_CHILD_SUBREAPER`, prctl(2)): orphaned
/// descendants (a container's init once the runtime's intermediate process exits) are
/// re-parented to it, so it can and must reap them.
pub fn become_subreaper() -> Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(ProcessError::Subreaper)
}

/// Points the calling process's stdout (fd 1) at `/dev/null`, closing whatever it was.
///
/// The shim's launcher hands it a pipe as stdout and waits for its end of file: the shim
/// calls this once its launch report is written, so the daemon wakes up at once instead of
/// polling for the report.
pub fn release_stdout() -> Result<()> {
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .map_err(ProcessError::Redirect)?;
    // SAFETY: `null` is a valid open descriptor owned here and fd 1 always may be replaced
    // with dup2; the old fd 1 is closed atomically by the kernel.
    let rc = unsafe { libc::dup2(null.as_raw_fd(), libc::STDOUT_FILENO) };
    if rc < 0 {
        return Err(ProcessError::Redirect(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Number of threads of the calling process, from `/proc/self/status`.
pub fn thread_count() -> Result<usize> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(ProcessError::ThreadCount)?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|value| value.trim().parse().ok())
        .ok_or_else(|| {
            ProcessError::ThreadCount(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "no Threads line in /proc/self/status",
            ))
        })
}

/// Detaches the calling process from its parent: forks, the parent exits with status 0
/// at once, and the child starts a new session (setsid(2)) with no controlling terminal.
///
/// Returns in the child only. Refuses unless the process is single-threaded, because after
/// `fork` only async-signal-safe work is sound in the child of a multi-threaded process.
pub fn detach_from_parent() -> Result<()> {
    let threads = thread_count()?;
    if threads != 1 {
        return Err(ProcessError::NotSingleThreaded(threads));
    }
    // SAFETY: the process has exactly one thread (checked above), so the child is an exact
    // copy with no lock held by another thread; the parent only calls `_exit`, which is
    // async-signal-safe and skips atexit handlers and buffered-output flushes.
    match unsafe { nix::unistd::fork() }.map_err(ProcessError::Detach)? {
        nix::unistd::ForkResult::Parent { .. } => {
            // SAFETY: `_exit` never returns and touches no Rust state.
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Child => {
            nix::unistd::setsid().map_err(ProcessError::Detach)?;
            Ok(())
        }
    }
}

/// Reaps one ended child of the calling process (`waitpid(-1)`), blocking when `block`.
///
/// Stopped or continued children are skipped; `EINTR` is retried.
pub fn reap_child(block: bool) -> Result<Reaped> {
    let flags = if block {
        None
    } else {
        Some(WaitPidFlag::WNOHANG)
    };
    loop {
        match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(-1), flags) {
            Ok(WaitStatus::Exited(pid, code)) => {
                return Ok(Reaped::Child(ChildExit {
                    pid: Pid(pid.as_raw()),
                    kind: ExitKind::Exited(code),
                }))
            }
            Ok(WaitStatus::Signaled(pid, signal, _core)) => {
                return Ok(Reaped::Child(ChildExit {
                    pid: Pid(pid.as_raw()),
                    kind: ExitKind::Signaled(signal as i32),
                }))
            }
            Ok(WaitStatus::StillAlive) => return Ok(Reaped::NoneReady),
            Ok(_) => {}
            Err(Errno::EINTR) => {}
            Err(Errno::ECHILD) => return Ok(Reaped::NoChildren),
            Err(err) => return Err(ProcessError::Wait(err)),
        }
    }
}

/// Receives one file descriptor sent with `SCM_RIGHTS` over a connected unix socket (the
/// OCI console socket protocol: the runtime sends the pty master this way).
pub fn recv_fd(socket: BorrowedFd<'_>) -> Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let (_, received) = recv_with_fds(socket, &mut buf)?;
    // Extra descriptors, if any, are closed when `received` drops.
    received.into_iter().next().ok_or(ProcessError::NoFd)
}

/// Receives one message into `buf` with the descriptors sent along it (`SCM_RIGHTS`, up to
/// four, made close-on-exec): the byte count and the descriptors. A stream socket's end of
/// file, or an empty datagram without descriptors, gives `(0, [])`.
pub fn recv_with_fds(socket: BorrowedFd<'_>, buf: &mut [u8]) -> Result<(usize, Vec<OwnedFd>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
    let mut iov = [std::io::IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let message = loop {
        match recvmsg::<UnixAddr>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(Errno::EINTR) => continue,
            other => break other.map_err(ProcessError::RecvFd)?,
        }
    };
    let mut received: Vec<OwnedFd> = Vec::new();
    for cmsg in message.cmsgs().map_err(ProcessError::RecvFd)? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            for fd in fds {
                // SAFETY: the kernel installed this descriptor in our table for this message
                // and nothing else refers to it, so taking ownership is sound.
                received.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Ok((message.bytes, received))
}

/// Takes ownership of this process's standard input, for a process whose stdin is a
/// socket it serves (the shim zygote). Call once.
pub fn take_stdin() -> OwnedFd {
    // SAFETY: fd 0 is open for the life of the process (the parent set it up) and nothing
    // else in the process owns it; the caller takes it once.
    unsafe { OwnedFd::from_raw_fd(0) }
}

/// Rewrites this process's argument area in place, which is what `/proc/self/cmdline` and
/// `ps` show, with `args` (NUL-separated, cut to the area's size, the rest NULs): for a
/// process forked from another whose command line would mislead. The area is the one the
/// kernel set up at `exec`, so the program must have been started with enough room; no
/// privilege is needed. `std::env::args` reads the new text afterwards.
///
/// # Errors
/// Reading `/proc/self/stat` failed or it did not have the area's bounds.
pub fn overwrite_cmdline(args: &[&std::ffi::OsStr]) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let bad = || std::io::Error::other("unexpected /proc/self/stat");
    // Fields after the command name in parentheses start with field 3 (state); the
    // argument area is fields 48 and 49 (proc_pid_stat(5)).
    let rest = stat.rfind(')').map(|i| &stat[i + 1..]).ok_or_else(bad)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> std::io::Result<usize> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse().ok())
            .ok_or_else(bad)
    };
    let (start, end) = (field(48)?, field(49)?);
    if end <= start {
        return Err(bad());
    }
    let mut text = vec![0u8; end - start];
    let mut at = 0;
    for arg in args {
        let bytes = arg.as_bytes();
        // Keep the last byte a NUL.
        let n = bytes.len().min(text.len().saturating_sub(at + 1));
        text[at..at + n].copy_from_slice(&bytes[..n]);
        at += n + 1;
        if at >= text.len() {
            break;
        }
    }
    // SAFETY: [start, end) is this process's argument area on its own stack, mapped
    // read-write since exec; `text` has exactly its length. Only `std::env::args`
    // reads it, and sees the new NUL-separated text.
    unsafe { std::ptr::copy_nonoverlapping(text.as_ptr(), start as *mut u8, text.len()) };
    Ok(())
}

/// Which side of [`fork_single_threaded`] the caller is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    /// In the new process.
    Child,
    /// In the calling process; the child's pid.
    Parent(Pid),
}

/// Forks the calling process, which must have exactly one thread (so the child is an exact
/// copy with no lock held by another thread and may run any code).
pub fn fork_single_threaded() -> Result<Forked> {
    let threads = thread_count()?;
    if threads != 1 {
        return Err(ProcessError::NotSingleThreaded(threads));
    }
    // SAFETY: single-threaded (checked above): see the function's documentation.
    match unsafe { nix::unistd::fork() }.map_err(ProcessError::Fork)? {
        nix::unistd::ForkResult::Child => Ok(Forked::Child),
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent(
            Pid::new(child.as_raw()).ok_or(ProcessError::Fork(Errno::EINVAL))?,
        )),
    }
}

/// Sets a terminal's window size (`ioctl(TIOCSWINSZ)`, tty_ioctl(4)).
pub fn set_window_size(terminal: BorrowedFd<'_>, rows: u16, cols: u16) -> Result<()> {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: `terminal` is a live descriptor for the duration of the call, and TIOCSWINSZ
    // only reads a `winsize` from the pointer, which points to a valid, initialised struct.
    let rc = unsafe { libc::ioctl(terminal.as_raw_fd(), libc::TIOCSWINSZ, &size) };
    if rc == -1 {
        return Err(ProcessError::WindowSize(Errno::last()));
    }
    Ok(())
}

#[cfg(feature = "fake")]
pub use fake::{FakeProcesses, ProcessCall};

// A plain std mutex in the fake: corral-sys keeps no lock crate, and a poisoned lock in a
// test fake only means an earlier assertion already failed.
#[cfg(feature = "fake")]
#[allow(clippy::disallowed_types)]
mod fake {
    use std::collections::HashSet;
    use std::sync::Mutex;

    use nix::sys::signal::Signal;

    use super::{Pid, ProcessError, Processes, Result};

    /// A call recorded by [`FakeProcesses`].
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum ProcessCall {
        /// `signal(pid, signal)`.
        Signal(Pid, Signal),
        /// `alive(pid)`.
        Alive(Pid),
    }

    #[derive(Debug, Default)]
    struct State {
        calls: Vec<ProcessCall>,
        alive: HashSet<Pid>,
        fail_signal: bool,
    }

    /// Recording [`Processes`] fake: pids are alive when marked so; a signal that would
    /// normally kill (anything but `SIGCONT`, `SIGSTOP`, `SIGWINCH`) marks the pid dead.
    #[derive(Debug, Default)]
    pub struct FakeProcesses {
        state: Mutex<State>,
    }

    impl FakeProcesses {
        /// A fake where no process exists.
        pub fn new() -> Self {
            Self::default()
        }

        fn lock(&self) -> std::sync::MutexGuard<'_, State> {
            self.state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        }

        /// Marks `pid` as a live process.
        pub fn spawn(&self, pid: Pid) {
            self.lock().alive.insert(pid);
        }

        /// Makes every later `signal` call fail with [`ProcessError::Injected`].
        pub fn fail_signals(&self) {
            self.lock().fail_signal = true;
        }

        /// The calls made so far, in order.
        pub fn calls(&self) -> Vec<ProcessCall> {
            self.lock().calls.clone()
        }
    }

    impl Processes for FakeProcesses {
        fn signal(&self, pid: Pid, signal: Signal) -> Result<()> {
            let mut state = self.lock();
            state.calls.push(ProcessCall::Signal(pid, signal));
            if state.fail_signal {
                return Err(ProcessError::Injected("signal"));
            }
            if !state.alive.contains(&pid) {
                return Err(ProcessError::NoSuchProcess(pid.as_raw()));
            }
            if !matches!(
                signal,
                Signal::SIGCONT | Signal::SIGSTOP | Signal::SIGWINCH | Signal::SIGCHLD
            ) {
                state.alive.remove(&pid);
            }
            Ok(())
        }

        fn alive(&self, pid: Pid) -> bool {
            let mut state = self.lock();
            state.calls.push(ProcessCall::Alive(pid));
            state.alive.contains(&pid)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_signals_like_docker() {
        assert_eq!(parse_signal("SIGKILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("term").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("999").is_err());
    }

    #[test]
    fn exit_code_of_signaled_child_is_128_plus_signal() {
        assert_eq!(ExitKind::Signaled(9).code(), 137);
        assert_eq!(ExitKind::Exited(3).code(), 3);
    }

    #[test]
    fn rejects_non_positive_pids() {
        assert!(Pid::new(0).is_none());
        assert!(Pid::new(-1).is_none());
        assert_eq!(Pid::new(42).map(Pid::as_raw), Some(42));
    }

    #[test]
    fn own_process_is_alive() {
        let me = Pid::new(i32::try_from(std::process::id()).unwrap()).unwrap();
        assert!(LinuxProcesses.alive(me));
        assert!(pid_alive(me));
    }

    #[test]
    fn reaps_a_signaled_child_with_its_signal() {
        use std::os::unix::process::ExitStatusExt;
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = Pid::new(i32::try_from(child.id()).unwrap()).unwrap();
        LinuxProcesses.signal(pid, Signal::SIGKILL).unwrap();
        assert_eq!(child.wait().unwrap().signal(), Some(9));
        assert!(matches!(
            LinuxProcesses.signal(pid, Signal::SIGTERM),
            Err(ProcessError::NoSuchProcess(_))
        ));
    }

    #[test]
    fn counts_threads() {
        assert!(thread_count().unwrap() >= 1);
    }

    #[cfg(feature = "fake")]
    #[test]
    fn fake_records_calls_and_kills() {
        let fake = FakeProcesses::new();
        let pid = Pid::new(10).unwrap();
        fake.spawn(pid);
        assert!(fake.alive(pid));
        fake.signal(pid, Signal::SIGKILL).unwrap();
        assert!(!fake.alive(pid));
        assert_eq!(
            fake.calls(),
            vec![
                ProcessCall::Alive(pid),
                ProcessCall::Signal(pid, Signal::SIGKILL),
                ProcessCall::Alive(pid)
            ]
        );
        fake.fail_signals();
        assert!(fake.signal(pid, Signal::SIGTERM).is_err());
    }
}
