//! Volumes for Corral: the [`VolumeDriver`] seam and its default implementation,
//! [`LocalDriver`], which keeps each volume as a directory on the host as dockerd's `local`
//! driver does (`<root>/<name>/_data`).
//!
//! Drivers hold data only; which volumes exist, their labels and which containers use them
//! are records the engine keeps in its state store.
#![forbid(unsafe_code)]

mod copy;
mod error;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use copy::{copy_tree, is_empty_dir};
pub use error::{Error, Result};

/// The name of the default driver.
pub const LOCAL_DRIVER: &str = "local";

/// Where a volume's data lives and how it is created and destroyed.
///
/// Implementations are blocking; async callers run them on a blocking thread.
pub trait VolumeDriver: Send + Sync {
    /// The driver's name as users give it (`--driver local`).
    fn name(&self) -> &str;
    /// Creates the volume's storage (idempotent) and returns its host mount point.
    fn create(&self, name: &str, options: &BTreeMap<String, String>) -> Result<PathBuf>;
    /// Deletes the volume and its data; removing a missing volume is not an error.
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

/// The `local` driver: one directory per volume under a root (`<data-dir>/volumes`).
#[derive(Debug, Clone)]
pub struct LocalDriver {
    root: PathBuf,
}

// === impl LocalDriver ===

impl LocalDriver {
    /// A driver keeping volumes under `root`, which is created if missing.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(error::io(format!(
            "creating volume root {}",
            root.display()
        )))?;
        Ok(Self { root })
    }

    /// The directory holding the volume (`_data` and driver metadata).
    fn volume_dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}

/// Options the local driver accepts; mounting a device or tmpfs is not implemented yet.
fn check_options(options: &BTreeMap<String, String>) -> Result<()> {
    match options.keys().next().map(String::as_str) {
        None => Ok(()),
        Some(key @ ("type" | "device" | "o" | "size")) => Err(Error::InvalidOption(format!(
            "{key}: mounting devices or tmpfs into local volumes is not supported by corral yet"
        ))),
        Some(other) => Err(Error::InvalidOption(format!(
            "invalid option key: {other:?}"
        ))),
    }
}

impl VolumeDriver for LocalDriver {
    fn name(&self) -> &str {
        LOCAL_DRIVER
    }

    fn create(&self, name: &str, options: &BTreeMap<String, String>) -> Result<PathBuf> {
        validate_name(name)?;
        check_options(options)?;
        let data = self.path(name);
        std::fs::create_dir_all(&data)
            .map_err(error::io(format!("creating volume {}", data.display())))?;
        tracing::debug!(volume = name, path = %data.display(), "created local volume");
        Ok(data)
    }

    fn remove(&self, name: &str) -> Result<()> {
        validate_name(name)?;
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

/// Apparent size of the regular files under `dir`, not following symlinks.
fn disk_usage(dir: &Path) -> Result<u64> {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let ctx = || format!("reading {}", d.display());
        for entry in std::fs::read_dir(&d).map_err(error::io(ctx()))? {
            let entry = entry.map_err(error::io(ctx()))?;
            let meta = entry.metadata().map_err(error::io(ctx()))?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                total += meta.len();
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn local_driver_creates_lists_measures_and_removes() {
        let tmp = tempfile::tempdir().unwrap();
        let d = LocalDriver::new(tmp.path().join("volumes")).unwrap();
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
        let d = LocalDriver::new(tmp.path()).unwrap();
        assert!(matches!(
            d.create("../x", &BTreeMap::new()),
            Err(Error::InvalidName(_))
        ));
        assert!(matches!(d.remove(".."), Err(Error::InvalidName(_))));
        let mut opts = BTreeMap::new();
        opts.insert("foo".to_owned(), "bar".to_owned());
        let err = d.create("x1", &opts).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid option: invalid option key: \"foo\""
        );
        assert!(!tmp.path().join("x1").exists());
    }
}
