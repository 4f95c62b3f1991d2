//! Volumes for Corral: the [`VolumeDriver`] seam and its default implementation,
//! [`LocalDriver`], which keeps each volume as a directory on the host as dockerd's `local`
//! driver does (`<root>/<name>/_data`).
//!
//! Drivers hold data and count the containers that have a volume mounted; which volumes
//! exist, their labels and options, and which containers refer to them are records the
//! engine keeps in its state store.
#![forbid(unsafe_code)]

mod copy;
mod error;
mod options;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use corral_sys::mount::Mounts;
use parking_lot::Mutex;

pub use copy::{copy_tree, is_empty_dir};
pub use error::{Error, Result};
pub use options::{parse_options, LocalMount};

/// The name of the default driver.
pub const LOCAL_DRIVER: &str = "local";

/// Where a volume's data lives and how it is created and destroyed.
///
/// Implementations are blocking; async callers run them on a blocking thread.
pub trait VolumeDriver: Send + Sync {
    /// The driver's name as users give it (`--driver local`).
    fn name(&self) -> &str;
    /// Validates the options, creates the volume's storage (idempotent) and returns its
    /// host mount point. Nothing is mounted yet.
    fn create(&self, name: &str, options: &BTreeMap<String, String>) -> Result<PathBuf>;
    /// Makes the volume's data available to `user` (a container id) and returns the host
    /// path to bind into the container. The first user of a volume whose options name a
    /// filesystem mounts it; later users share that mount. Idempotent per user.
    fn mount(&self, name: &str, options: &BTreeMap<String, String>, user: &str) -> Result<PathBuf>;
    /// Drops `user`'s reference; the last one unmounts the volume's filesystem. Releasing
    /// a user that holds no reference does nothing.
    fn unmount(&self, name: &str, user: &str) -> Result<()>;
    /// The users holding a reference to the volume, sorted.
    fn users(&self, name: &str) -> Vec<String>;
    /// Unmounts the volume's filesystem when no user holds it: after a daemon restart, a
    /// volume whose users all ended while the daemon was away is still mounted.
    fn unmount_idle(&self, name: &str) -> Result<()>;
    /// Deletes the volume and its data; removing a missing volume is not an error. A
    /// mounted filesystem is unmounted first and never deleted through.
    fn remove(&self, name: &str) -> Result<()>;
    /// The host path containers bind-mount for this volume (`Mountpoint` in inspect).
    fn path(&self, name: &str) -> PathBuf;
    /// The names of all volumes the driver holds.
    fn list(&self) -> Result<Vec<String>>;
    /// Bytes used by the volume's data.
    fn usage(&self, name: &str) -> Result<u64>;
}

/// Checks a volume name against dockerd's rule `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn validate_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName(name.to_owned()))
    }
}

/// A fresh name for an anonymous volume: 64 random hex digits, as dockerd makes them.
pub fn anonymous_name() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

/// The `local` driver: one directory per volume under a root (`<data-dir>/volumes`); a
/// volume with `type`/`device`/`o` options has that filesystem mounted on its `_data`
/// directory while containers use it, as dockerd's local driver does.
pub struct LocalDriver {
    root: PathBuf,
    mounts: Arc<dyn Mounts>,
    /// Users (container ids) of each volume with at least one. The lock also serialises
    /// mounting and unmounting, so a new user never races the last one's unmount.
    active: Mutex<BTreeMap<String, BTreeSet<String>>>,
}

// === impl LocalDriver ===

impl LocalDriver {
    /// A driver keeping volumes under `root`, which is created if missing, and mounting
    /// their filesystems through `mounts`.
    pub fn new(root: impl Into<PathBuf>, mounts: Arc<dyn Mounts>) -> Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(error::io(format!(
            "creating volume root {}",
            root.display()
        )))?;
        Ok(Self {
            root,
            mounts,
            active: Mutex::new(BTreeMap::new()),
        })
    }

    /// The directory holding the volume (`_data` and driver metadata).
    fn volume_dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn is_mounted(&self, data: &Path) -> Result<bool> {
        self.mounts.is_mounted(data).map_err(error::io(format!(
            "reading the mount table for {}",
            data.display()
        )))
    }

    /// Unmounts `data` if it is a mount point.
    fn unmount_data(&self, name: &str, data: &Path) -> Result<()> {
        if !self.is_mounted(data)? {
            return Ok(());
        }
        tracing::debug!(volume = name, path = %data.display(), "unmounting local volume");
        match self.mounts.unmount(data) {
            Ok(()) => Ok(()),
            // Gone meanwhile (EINVAL: not a mount point any more).
            Err(_) if !self.is_mounted(data)? => Ok(()),
            Err(e) => Err(Error::StillMounted {
                name: name.to_owned(),
                path: data.to_path_buf(),
                message: e.to_string(),
            }),
        }
    }
}

impl std::fmt::Debug for LocalDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalDriver")
            .field("root", &self.root)
            .field("active", &*self.active.lock())
            .finish_non_exhaustive()
    }
}

impl VolumeDriver for LocalDriver {
    fn name(&self) -> &str {
        LOCAL_DRIVER
    }

    fn create(&self, name: &str, options: &BTreeMap<String, String>) -> Result<PathBuf> {
        validate_name(name)?;
        parse_options(name, options)?;
        let data = self.path(name);
        std::fs::create_dir_all(&data)
            .map_err(error::io(format!("creating volume {}", data.display())))?;
        tracing::debug!(volume = name, path = %data.display(), "created local volume");
        Ok(data)
    }

    fn mount(&self, name: &str, options: &BTreeMap<String, String>, user: &str) -> Result<PathBuf> {
        let fs = parse_options(name, options)?;
        let data = self.create(name, options)?;
        let mut active = self.active.lock();
        let users = active.get(name);
        if users.is_some_and(|u| u.contains(user)) {
            return Ok(data);
        }
        if let Some(fs) = fs {
            // The first user mounts; a mount left from before a daemon restart is reused.
            if users.is_none_or(BTreeSet::is_empty) && !self.is_mounted(&data)? {
                tracing::debug!(volume = name, path = %data.display(), fstype = %fs.fstype, "mounting local volume");
                self.mounts
                    .mount_fs(&fs.plan(), &data)
                    .map_err(|e| Error::Mount {
                        path: data.clone(),
                        message: e.to_string(),
                    })?;
            }
        }
        active
            .entry(name.to_owned())
            .or_default()
            .insert(user.to_owned());
        Ok(data)
    }

    fn unmount(&self, name: &str, user: &str) -> Result<()> {
        let mut active = self.active.lock();
        let Some(users) = active.get_mut(name) else {
            return Ok(());
        };
        if !users.remove(user) || !users.is_empty() {
            return Ok(());
        }
        active.remove(name);
        self.unmount_data(name, &self.path(name))
    }

    fn users(&self, name: &str) -> Vec<String> {
        self.active
            .lock()
            .get(name)
            .map(|u| u.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn unmount_idle(&self, name: &str) -> Result<()> {
        let active = self.active.lock();
        if active.get(name).is_some_and(|u| !u.is_empty()) {
            return Ok(());
        }
        self.unmount_data(name, &self.path(name))
    }

    fn remove(&self, name: &str) -> Result<()> {
        validate_name(name)?;
        {
            let mut active = self.active.lock();
            active.remove(name);
            // Deleting through a mount would delete the device's or bound directory's
            // content; unmount first, and keep everything if that fails.
            self.unmount_data(name, &self.path(name))?;
        }
        let dir = self.volume_dir(name);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(error::io(format!("removing volume {}", dir.display()))(e)),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.volume_dir(name).join("_data")
    }

    fn list(&self) -> Result<Vec<String>> {
        let ctx = || format!("listing {}", self.root.display());
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.root).map_err(error::io(ctx()))? {
            let entry = entry.map_err(error::io(ctx()))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if validate_name(&name).is_ok() && entry.path().join("_data").is_dir() {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }

    fn usage(&self, name: &str) -> Result<u64> {
        let data = self.path(name);
        if !data.is_dir() {
            return Err(Error::NotFound(name.to_owned()));
        }
        disk_usage(&data)
    }
}

/// Apparent size of the regular files under `dir`, not following symlinks, a file with
/// several hard links counted once (dockerd's `directory.Size`).
///
/// # Errors
/// [`Error::Io`] when a directory cannot be read.
pub fn disk_usage(dir: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut linked = std::collections::HashSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let ctx = || format!("reading {}", d.display());
        for entry in std::fs::read_dir(&d).map_err(error::io(ctx()))? {
            let entry = entry.map_err(error::io(ctx()))?;
            let meta = entry.metadata().map_err(error::io(ctx()))?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file()
                && (meta.nlink() < 2 || linked.insert((meta.dev(), meta.ino())))
            {
                total += meta.len();
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_sys::mount::{FakeMounts, MountCall, MountOp};

    #[test]
    fn accepts_and_rejects_names_like_dockerd() {
        for ok in ["ab", "data", "my_vol.1-x", "0abc", &anonymous_name()] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "a", "_ab", ".ab", "-ab", "a/b", "a b", "a:b", "vol@1", "é1",
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        let msg = validate_name("a@b").unwrap_err().to_string();
        assert_eq!(
            msg,
            "create a@b: \"a@b\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        );
    }

    #[test]
    fn anonymous_names_are_64_hex_and_distinct() {
        let a = anonymous_name();
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, anonymous_name());
    }

    fn linux_driver(root: &Path) -> LocalDriver {
        LocalDriver::new(root, Arc::new(corral_sys::mount::LinuxMounts::new())).unwrap()
    }

    #[test]
    fn local_driver_creates_lists_measures_and_removes() {
        let tmp = tempfile::tempdir().unwrap();
        let d = linux_driver(&tmp.path().join("volumes"));
        assert_eq!(d.name(), "local");
        let p = d.create("data", &BTreeMap::new()).unwrap();
        assert_eq!(p, tmp.path().join("volumes/data/_data"));
        assert!(p.is_dir());
        // Creating again keeps the content.
        std::fs::write(p.join("f"), b"12345").unwrap();
        std::fs::create_dir(p.join("sub")).unwrap();
        std::fs::write(p.join("sub/g"), b"123").unwrap();
        assert_eq!(d.create("data", &BTreeMap::new()).unwrap(), p);
        assert_eq!(std::fs::read(p.join("f")).unwrap(), b"12345");
        assert_eq!(d.usage("data").unwrap(), 8);
        d.create("other", &BTreeMap::new()).unwrap();
        std::fs::create_dir(tmp.path().join("volumes/stray")).unwrap();
        assert_eq!(d.list().unwrap(), vec!["data", "other"]);
        d.remove("data").unwrap();
        assert!(!tmp.path().join("volumes/data").exists());
        d.remove("data").unwrap();
        assert!(matches!(d.usage("data"), Err(Error::NotFound(_))));
        assert_eq!(d.list().unwrap(), vec!["other"]);
    }

    #[test]
    fn local_driver_refuses_bad_names_and_options() {
        let tmp = tempfile::tempdir().unwrap();
        let d = linux_driver(tmp.path());
        assert!(matches!(
            d.create("../x", &BTreeMap::new()),
            Err(Error::InvalidName(_))
        ));
        assert!(matches!(d.remove(".."), Err(Error::InvalidName(_))));
        let mut opts = BTreeMap::new();
        opts.insert("foo".to_owned(), "bar".to_owned());
        let err = d.create("x1", &opts).unwrap_err();
        assert_eq!(err.to_string(), "create x1: invalid option: \"foo\"");
        assert!(!tmp.path().join("x1").exists());
        assert!(d.mount("x1", &opts, "c1").is_err());
        assert!(d.users("x1").is_empty());
    }

    fn tmpfs_opts() -> BTreeMap<String, String> {
        [("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=1m")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn fake_driver(root: &Path) -> (LocalDriver, Arc<FakeMounts>) {
        let fake = Arc::new(FakeMounts::new());
        (LocalDriver::new(root, fake.clone()).unwrap(), fake)
    }

    #[test]
    fn mounts_at_first_user_and_unmounts_after_last() {
        let tmp = tempfile::tempdir().unwrap();
        let (d, fake) = fake_driver(tmp.path());
        let data = d.mount("t1", &tmpfs_opts(), "a").unwrap();
        assert_eq!(data, tmp.path().join("t1/_data"));
        assert_eq!(fake.mounted(), vec![data.clone()]);
        // A second user and a repeated mount by the same user do not mount again.
        d.mount("t1", &tmpfs_opts(), "b").unwrap();
        d.mount("t1", &tmpfs_opts(), "a").unwrap();
        let fs_calls = |f: &FakeMounts| {
            f.calls()
                .iter()
                .filter(|c| matches!(c, MountCall::Fs { .. }))
                .count()
        };
        assert_eq!(fs_calls(&fake), 1);
        assert_eq!(d.users("t1"), vec!["a", "b"]);
        d.unmount("t1", "a").unwrap();
        d.unmount("t1", "a").unwrap();
        assert_eq!(fake.mounted(), vec![data.clone()]);
        d.unmount("t1", "b").unwrap();
        assert!(fake.mounted().is_empty());
        assert!(d.users("t1").is_empty());
        // Releasing an unknown user or volume is a no-op.
        d.unmount("t1", "b").unwrap();
        d.unmount("nope", "x").unwrap();
        // Plain volumes are never mounted.
        d.mount("plain", &BTreeMap::new(), "a").unwrap();
        d.unmount("plain", "a").unwrap();
        assert_eq!(fs_calls(&fake), 1);
    }

    #[test]
    fn failed_mount_registers_no_user() {
        let tmp = tempfile::tempdir().unwrap();
        let (d, fake) = fake_driver(tmp.path());
        fake.fail_next(MountOp::Fs, 2); // ENOENT
        let err = d.mount("t1", &tmpfs_opts(), "a").unwrap_err();
        let data = tmp.path().join("t1/_data");
        assert!(
            err.to_string().starts_with(&format!(
                "error while mounting volume '{}': failed to mount local volume: mount tmpfs:{}, data: size=1m: ",
                data.display(),
                data.display()
            )),
            "{err}"
        );
        assert!(d.users("t1").is_empty());
        assert!(fake.mounted().is_empty());
        // The next user tries again.
        d.mount("t1", &tmpfs_opts(), "a").unwrap();
        assert_eq!(fake.mounted(), vec![data]);
    }

    #[test]
    fn reuses_a_mount_left_by_a_restart_and_unmounts_it_when_idle() {
        let tmp = tempfile::tempdir().unwrap();
        let (d, fake) = fake_driver(tmp.path());
        d.mount("t1", &tmpfs_opts(), "a").unwrap();
        d.mount("t2", &tmpfs_opts(), "a").unwrap();
        // A new driver over the same mounts: the daemon restarted.
        let d2 = LocalDriver::new(tmp.path(), fake.clone()).unwrap();
        d2.mount("t1", &tmpfs_opts(), "a").unwrap();
        let fs_calls = fake
            .calls()
            .iter()
            .filter(|c| matches!(c, MountCall::Fs { .. }))
            .count();
        assert_eq!(fs_calls, 2);
        d2.unmount_idle("t1").unwrap();
        d2.unmount_idle("t2").unwrap();
        assert_eq!(fake.mounted(), vec![tmp.path().join("t1/_data")]);
        d2.unmount("t1", "a").unwrap();
        assert!(fake.mounted().is_empty());
    }

    #[test]
    fn remove_unmounts_first_and_keeps_data_when_unmount_fails() {
        let tmp = tempfile::tempdir().unwrap();
        let (d, fake) = fake_driver(tmp.path());
        d.mount("t1", &tmpfs_opts(), "a").unwrap();
        fake.fail_next(MountOp::Unmount, 16); // EBUSY
        let err = d.remove("t1").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("remove t1: volume is still mounted at "),
            "{err}"
        );
        assert!(tmp.path().join("t1/_data").is_dir());
        d.remove("t1").unwrap();
        assert!(fake.mounted().is_empty());
        assert!(!tmp.path().join("t1").exists());
    }
}
