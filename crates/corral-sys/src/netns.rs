//! Persistent named network namespaces behind the [`Netns`] trait.
//!
//! A namespace is kept alive by bind-mounting its nsfs file onto a plain file (as
//! `ip netns add` does), so it outlives the thread that created it and the daemon itself:
//! a restarted daemon finds its containers' namespaces at the same paths.

use std::io;
use std::path::Path;

use nix::mount::{MntFlags, MsFlags};

/// Creation and removal of persistent network namespaces.
pub trait Netns: Send + Sync {
    /// Creates a new network namespace and bind-mounts it on `path` (parents are created).
    ///
    /// # Errors
    /// `AlreadyExists` when `path` already exists; otherwise the syscall error. On error no
    /// file is left at `path`.
    fn create(&self, path: &Path) -> io::Result<()>;

    /// Unmounts and removes the namespace file at `path`; absent is not an error.
    ///
    /// # Errors
    /// The `umount2(2)` or unlink error.
    fn delete(&self, path: &Path) -> io::Result<()>;
}

/// The Linux implementation of [`Netns`].
#[derive(Debug, Clone, Copy, Default)]
pub struct LinuxNetns;

impl LinuxNetns {
    /// A new handle.
    pub fn new() -> Self {
        Self
    }
}

impl Netns for LinuxNetns {
    fn create(&self, path: &Path) -> io::Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)?;
        let target = path.to_path_buf();
        let worker = std::thread::Builder::new()
            .name("corral-netns".into())
            .spawn(move || -> io::Result<()> {
                // Only this thread enters the new namespace; it exits right after.
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)?;
                nix::mount::mount(
                    Some(Path::new("/proc/thread-self/ns/net")),
                    &target,
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )?;
                Ok(())
            })?;
        let res = worker
            .join()
            .map_err(|_| io::Error::other("netns worker thread panicked"))
            .and_then(|r| r);
        if let Err(e) = res {
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        Ok(())
    }

    fn delete(&self, path: &Path) -> io::Result<()> {
        match nix::mount::umount2(path, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => return Err(e.into()),
        }
        match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// A [`Netns`] that only creates and removes plain files (no namespace).
#[cfg(any(test, feature = "fake"))]
#[derive(Debug, Clone, Copy, Default)]
pub struct FakeNetns;

#[cfg(any(test, feature = "fake"))]
impl Netns for FakeNetns {
    fn create(&self, path: &Path) -> io::Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map(drop)
    }
    fn delete(&self, path: &Path) -> io::Result<()> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}
