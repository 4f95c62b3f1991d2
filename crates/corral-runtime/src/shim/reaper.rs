//! Reaping every child of the shim.
//!
//! The shim is a child subreaper, so the container's init and any process orphaned inside
//! it become its children. One thread reaps them all with `waitpid(-1)`; helper commands
//! (runc) that the shim runs are waited for through the reaper, never with their own
//! `wait`, which would race with it.

use std::collections::HashMap;
use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use corral_sys::process::{reap_child, ExitKind, Pid, Reaped};
use parking_lot::{Condvar, Mutex};

/// How long the reaping thread sleeps when the shim has no child, unless woken earlier by
/// [`Reaper::spawn`], [`Reaper::output`] or [`Reaper::watch`]. Once `waitpid` finds no child
/// the shim has no descendant at all (the shim is a subreaper: orphans become its children),
/// so a new child can only be one the shim starts, and those go through the calls above.
/// The periodic re-check is a backstop only.
const IDLE_RECHECK: Duration = Duration::from_secs(1);

/// Collects child exits for the pids somebody waits for.
#[derive(Debug, Default)]
pub(crate) struct Reaper {
    state: Mutex<ReaperState>,
    changed: Condvar,
    /// Signalled when a child may have appeared (the reaping thread sleeps on it while the
    /// shim has no child).
    child_added: Condvar,
}

#[derive(Debug, Default)]
struct ReaperState {
    /// Pids whose exit is wanted; `Some` once reaped.
    watched: HashMap<Pid, Option<ExitKind>>,
    running: bool,
    /// Bumped whenever a child may have been added; the reaping thread compares it before
    /// and after a `waitpid` that found no child, so a wake-up is never lost.
    generation: u64,
}

impl Reaper {
    /// A reaper that does not reap yet (see [`Reaper::start`]).
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Keeps the exit status of `pid` for [`Reaper::wait_for`].
    pub(crate) fn watch(&self, pid: Pid) {
        let mut state = self.state.lock();
        state.watched.entry(pid).or_insert(None);
        self.child_may_exist(&mut state);
    }

    /// Wakes the reaping thread if it sleeps for want of a child.
    fn child_may_exist(&self, state: &mut ReaperState) {
        state.generation = state.generation.wrapping_add(1);
        self.child_added.notify_all();
    }

    /// Starts the reaping thread. From here on the process is multi-threaded.
    pub(crate) fn start(self: &Arc<Self>) -> std::io::Result<()> {
        self.state.lock().running = true;
        let reaper = Arc::clone(self);
        std::thread::Builder::new()
            .name("reaper".into())
            .spawn(move || reaper.run())?;
        Ok(())
    }

    fn run(&self) {
        loop {
            // Read before `waitpid`: a child added after this is seen by the wait below.
            let generation = self.state.lock().generation;
            match reap_child(true) {
                Ok(Reaped::Child(exit)) => {
                    let mut state = self.state.lock();
                    if let Some(slot) = state.watched.get_mut(&exit.pid) {
                        *slot = Some(exit.kind);
                        self.changed.notify_all();
                    } else {
                        tracing::debug!(pid = %exit.pid, "reaped an orphan");
                    }
                }
                Ok(Reaped::NoChildren | Reaped::NoneReady) => {
                    // No child (the init has been reaped): sleep until one is spawned or
                    // watched instead of polling `waitpid` every few milliseconds.
                    let mut state = self.state.lock();
                    if state.generation == generation {
                        self.child_added.wait_for(&mut state, IDLE_RECHECK);
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "waitpid failed");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    /// Waits until `pid` (watched before it could exit) has been reaped; `None` on timeout.
    pub(crate) fn wait_for(&self, pid: Pid, timeout: Option<Duration>) -> Option<ExitKind> {
        let mut state = self.state.lock();
        let mut remaining = timeout;
        loop {
            if let Some(Some(kind)) = state.watched.get(&pid) {
                let kind = *kind;
                state.watched.remove(&pid);
                return Some(kind);
            }
            match remaining {
                None => self.changed.wait(&mut state),
                Some(left) if left.is_zero() => return None,
                Some(left) => {
                    let step = left.min(Duration::from_millis(100));
                    self.changed.wait_for(&mut state, step);
                    remaining = Some(left.saturating_sub(step));
                }
            }
        }
    }

    /// Spawns `command` and watches its pid in one step, so its exit cannot be reaped
    /// unseen. Collect the exit with [`Reaper::wait_for`], never with `Child::wait`.
    pub(crate) fn spawn(&self, command: &mut Command) -> std::io::Result<Pid> {
        let mut state = self.state.lock();
        let child = command.spawn()?;
        self.child_may_exist(&mut state);
        let pid = i32::try_from(child.id())
            .ok()
            .and_then(Pid::new)
            .ok_or_else(|| std::io::Error::other("child pid out of range"))?;
        state.watched.insert(pid, None);
        Ok(pid)
    }

    /// Stops keeping the exit of `pid` (nobody will wait for it).
    pub(crate) fn forget(&self, pid: Pid) {
        self.state.lock().watched.remove(&pid);
    }

    /// Runs a helper command to completion, capturing its output. Before the reaping thread
    /// runs this is `Command::output`; afterwards the exit comes from the reaper.
    pub(crate) fn output(&self, command: &mut Command) -> std::io::Result<Output> {
        if !self.state.lock().running {
            return command.output();
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = {
            // Hold the lock across spawn so the reaper cannot drop the exit before it is
            // watched.
            let mut state = self.state.lock();
            let child = command.spawn()?;
            self.child_may_exist(&mut state);
            let pid = i32::try_from(child.id())
                .ok()
                .and_then(Pid::new)
                .ok_or_else(|| std::io::Error::other("child pid out of range"))?;
            state.watched.insert(pid, None);
            child
        };
        let mut stderr_pipe = child.stderr.take();
        let stderr_reader = std::thread::spawn(move || {
            let mut buffer = Vec::new();
            if let Some(pipe) = stderr_pipe.as_mut() {
                let _ = pipe.read_to_end(&mut buffer);
            }
            buffer
        });
        let mut stdout = Vec::new();
        if let Some(pipe) = child.stdout.as_mut() {
            pipe.read_to_end(&mut stdout)?;
        }
        let stderr = stderr_reader.join().unwrap_or_default();
        let pid = i32::try_from(child.id())
            .ok()
            .and_then(Pid::new)
            .ok_or_else(|| std::io::Error::other("child pid out of range"))?;
        let kind = self
            .wait_for(pid, None)
            .ok_or_else(|| std::io::Error::other("helper exit not reaped"))?;
        Ok(Output {
            status: exit_status(kind),
            stdout,
            stderr,
        })
    }
}

fn exit_status(kind: ExitKind) -> std::process::ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    match kind {
        ExitKind::Exited(code) => std::process::ExitStatus::from_raw((code & 0xff) << 8),
        ExitKind::Signaled(signal) => std::process::ExitStatus::from_raw(signal & 0x7f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_convert_to_std() {
        assert_eq!(exit_status(ExitKind::Exited(3)).code(), Some(3));
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(exit_status(ExitKind::Signaled(9)).signal(), Some(9));
    }

    #[test]
    fn output_before_start_uses_plain_wait() {
        let reaper = Reaper::new();
        let out = reaper
            .output(Command::new("sh").args(["-c", "echo hi; exit 4"]))
            .unwrap();
        assert_eq!(out.stdout, b"hi\n");
        assert_eq!(out.status.code(), Some(4));
    }
}
