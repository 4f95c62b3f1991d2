//! The engine side of `diff`, `export` and `cp`.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use super::archive::{self, ExtractError, Resolved};
use super::changes::{self, Lowers};
use super::mounts::{cp_mounts, last_element, mount_for, path_in_mount, CpSource};
use super::tarball::TreeWriter;
use super::{blocking, stream_from_blocking, BlockingReader};
use crate::api::{BoxRead, ChangeKind};
use crate::error::{io as io_err, Error, Result};
use crate::local::{Entry, LocalEngine};

/// Bytes of a refused upload read before answering (Go's `net/http` reads 256 KiB).
const DRAIN_LIMIT: u64 = 256 * 1024;

/// dockerd's error for a missing `cp` path.
fn not_found(path: &str, container: &str) -> Error {
    Error::NotFound(format!(
        "Could not find the file {path} in container {container}"
    ))
}

/// A volume mounted for one file operation; released (the last user unmounts) on drop.
struct VolumeHold {
    engine: LocalEngine,
    name: String,
    user: String,
}

impl Drop for VolumeHold {
    fn drop(&mut self) {
        let (engine, name, user) = (
            self.engine.clone(),
            std::mem::take(&mut self.name),
            std::mem::take(&mut self.user),
        );
        let release = move || engine.inner.volumes.release([name.as_str()], &user);
        // Dropped on a runtime thread: the unmount goes to the blocking pool.
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(release)),
            Err(_) => release(),
        }
    }
}

/// A `cp` path found on the host: in the rootfs, or in the source of the bind or volume
/// mounted over it.
struct Located {
    /// The tree the path resolves in (the rootfs or the mount's source).
    root: PathBuf,
    /// The path resolved inside `root` (`abs` relative to `root`).
    resolved: Resolved,
    /// The mount's destination inside the container, when the path is under one.
    mount: Option<String>,
    /// The mount is read-only.
    read_only: bool,
    _hold: Option<VolumeHold>,
}

impl Located {
    /// Docker's path stat, with the name and link target as the container sees them.
    fn stat(&self, meta: &std::fs::Metadata) -> Value {
        let mut v = archive::path_stat(&self.root, &self.resolved, meta);
        if let Some(dest) = &self.mount {
            if let Some(link) = v.get("linkTarget").and_then(Value::as_str) {
                if !link.is_empty() {
                    let full = format!("{dest}{}", link.trim_end_matches('/'));
                    v["linkTarget"] = Value::String(full);
                }
            }
        }
        v
    }
}

impl LocalEngine {
    /// Finds `path` of the container: under the bind or volume mount with the longest
    /// destination prefix (a volume is mounted for the operation), else in `rootfs`.
    /// Blocking.
    fn locate(&self, entry: &super::Entry, rootfs: &Path, path: &str) -> Result<Located> {
        let rec = entry.snapshot();
        let mounts = cp_mounts(&rec);
        let abs = archive::clean_abs(path);
        let Some(m) = mount_for(&mounts, &abs) else {
            let resolved =
                archive::resolve(rootfs, path).map_err(io_err(format!("resolving {path}")))?;
            return Ok(Located {
                root: rootfs.to_path_buf(),
                resolved,
                mount: None,
                read_only: false,
                _hold: None,
            });
        };
        let (root, hold) = match &m.source {
            CpSource::Host(p) => (p.clone(), None),
            CpSource::Volume(name) => {
                let user = format!("cp-{}", &corral_volume::anonymous_name()[..16]);
                let data = self.inner.volumes.hold(name, &user)?;
                let hold = VolumeHold {
                    engine: self.clone(),
                    name: name.clone(),
                    user,
                };
                (data, Some(hold))
            }
        };
        let inner = path_in_mount(path, &m.destination);
        let mut resolved =
            archive::resolve(&root, &inner).map_err(io_err(format!("resolving {path}")))?;
        if resolved.base == "/" {
            resolved.base = last_element(&m.destination);
        }
        Ok(Located {
            root,
            resolved,
            mount: Some(m.destination.clone()),
            read_only: m.read_only,
            _hold: hold,
        })
    }

    /// `docker diff`: the container's writable layer against its image.
    pub(crate) async fn fs_changes(&self, name: &str) -> Result<Vec<(String, ChangeKind)>> {
        let entry = self.lookup(name)?;
        let this = self.clone();
        blocking(move || {
            let plan = this.rootfs_plan(&entry)?;
            changes::changes(&plan.upper, &Lowers(plan.lower.clone()))
                .map_err(io_err(format!("reading changes of {}", plan.id)))
        })
        .await
    }

    /// `docker export`: the merged rootfs as a tar stream.
    pub(crate) async fn fs_export(&self, name: &str) -> Result<BoxRead> {
        let entry = self.lookup(name)?;
        let this = self.clone();
        let guard = blocking(move || this.hold_rootfs(&entry)).await?;
        Ok(stream_from_blocking(move |w| {
            let mut tw = TreeWriter::new(w);
            tw.append_tree(guard.root(), "")?;
            tw.finish()?;
            drop(guard);
            Ok(())
        }))
    }

    /// `HEAD /containers/{id}/archive`: Docker's stat of `path`.
    pub(crate) async fn cp_stat(&self, name: &str, path: &str) -> Result<Value> {
        let entry = self.lookup(name)?;
        let this = self.clone();
        let (path, name) = (path.to_owned(), name.to_owned());
        blocking(move || {
            let guard = this.hold_rootfs(&entry)?;
            let loc = this.locate(&entry, guard.root(), &path)?;
            let meta = lstat(&loc, &path, &name)?;
            Ok(loc.stat(&meta))
        })
        .await
    }

    /// `GET /containers/{id}/archive`: the stat, and a tar of `path` named after its
    /// last element.
    pub(crate) async fn cp_get(&self, name: &str, path: &str) -> Result<(Value, BoxRead)> {
        let entry = self.lookup(name)?;
        let this = self.clone();
        let (path, name) = (path.to_owned(), name.to_owned());
        let (guard, loc, stat) = blocking(move || {
            let guard = this.hold_rootfs(&entry)?;
            let loc = this.locate(&entry, guard.root(), &path)?;
            let meta = lstat(&loc, &path, &name)?;
            let stat = loc.stat(&meta);
            Ok((guard, loc, stat))
        })
        .await?;
        let tar = stream_from_blocking(move |w| {
            let mut tw = TreeWriter::new(w);
            let r = &loc.resolved;
            tw.append_tree(&r.host, &r.base)?;
            tw.finish()?;
            drop(loc);
            drop(guard);
            Ok(())
        });
        Ok((stat, tar))
    }

    /// `PUT /containers/{id}/archive`: extracts a tar into the directory `path`.
    pub(crate) async fn cp_put(&self, name: &str, path: &str, tar: BoxRead) -> Result<()> {
        let entry = self.lookup(name)?;
        let read_only_rootfs = entry.record.lock().spec.host.read_only_rootfs;
        let this = self.clone();
        let (path, name) = (path.to_owned(), name.to_owned());
        let mut reader = BlockingReader::new(tar);
        blocking(move || {
            let put = this.put_archive(&entry, &path, &name, read_only_rootfs, &mut reader);
            // Whatever the outcome, read what is left of the body (the tar reader stops at
            // the first of the two end-of-archive blocks; an error comes before any): a
            // client still sending when the connection closes would see a broken pipe
            // instead of the answer, as Go's HTTP server avoids the same way.
            let _ = io::copy(&mut (&mut reader).take(DRAIN_LIMIT), &mut io::sink());
            put
        })
        .await
    }

    /// `cp_put`'s blocking part: checks the destination and extracts `reader` there.
    fn put_archive(
        &self,
        entry: &Arc<Entry>,
        path: &str,
        name: &str,
        read_only_rootfs: bool,
        reader: &mut impl Read,
    ) -> Result<()> {
        let guard = self.hold_rootfs(entry)?;
        let loc = self.locate(entry, guard.root(), path)?;
        let root = loc.root.as_path();
        // A writable mount takes copies even when the rootfs is read-only (dockerd).
        let refused_ro = match &loc.mount {
            Some(_) if loc.read_only => Some("mounted volume is marked read-only"),
            None if read_only_rootfs => Some("container rootfs is marked read-only"),
            _ => None,
        };
        if let Some(msg) = refused_ro {
            return Err(Error::InvalidInput(msg.into()));
        }
        // The destination's last element is followed too: extracting "into" a
        // symlink to a directory is allowed, as in dockerd.
        let abs = match &loc.mount {
            Some(dest) => archive::clean_abs(&path_in_mount(path, dest)),
            None => archive::clean_abs(path),
        };
        let dest = corral_runtime::spec::secure_join(root, &abs)
            .map_err(|e| Error::InvalidInput(e.to_string()))?;
        match std::fs::symlink_metadata(&dest) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::InvalidInput(
                    "extraction point is not a directory".into(),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(not_found(path, name)),
            Err(e) => return Err(io_err(format!("inspecting {path}"))(e)),
        }
        let in_root = dest
            .strip_prefix(root)
            .map(|p| format!("/{}", p.display()))
            .unwrap_or(abs);
        match archive::extract(reader, root, &in_root) {
            Ok(n) => {
                tracing::debug!(container = %name, path = %path, entries = n, "extracted archive");
                Ok(())
            }
            Err(ExtractError::Overwrite(m)) => Err(Error::InvalidInput(m)),
            Err(ExtractError::Io(e)) => Err(io_err(format!("extracting into {path}"))(e)),
        }
    }
}

/// `lstat`s the located `path` (as the user gave it, for errors).
fn lstat(loc: &Located, path: &str, container: &str) -> Result<std::fs::Metadata> {
    if path.is_empty() {
        return Err(Error::InvalidInput("path is required".into()));
    }
    match std::fs::symlink_metadata(&loc.resolved.host) {
        Ok(m) => Ok(m),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Err(not_found(path, container))
        }
        Err(e) => Err(io_err(format!("inspecting {path}"))(e)),
    }
}
