//! The engine side of `diff`, `export` and `cp`.

use std::io::{self, Read};
use std::path::Path;

use serde_json::Value;

use super::archive::{self, ExtractError};
use super::changes::{self, Lowers};
use super::tarball::TreeWriter;
use super::{blocking, stream_from_blocking, BlockingReader};
use crate::api::{BoxRead, ChangeKind};
use crate::error::{io as io_err, Error, Result};
use crate::local::LocalEngine;

/// Bytes of a refused upload read before answering (Go's `net/http` reads 256 KiB).
const DRAIN_LIMIT: u64 = 256 * 1024;

/// dockerd's error for a missing `cp` path.
fn not_found(path: &str, container: &str) -> Error {
    Error::NotFound(format!(
        "Could not find the file {path} in container {container}"
    ))
}

impl LocalEngine {
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
            let (r, meta) = stat_in(guard.root(), &path, &name)?;
            Ok(archive::path_stat(guard.root(), &r, &meta))
        })
        .await
    }

    /// `GET /containers/{id}/archive`: the stat, and a tar of `path` named after its
    /// last element.
    pub(crate) async fn cp_get(&self, name: &str, path: &str) -> Result<(Value, BoxRead)> {
        let entry = self.lookup(name)?;
        let this = self.clone();
        let (path, name) = (path.to_owned(), name.to_owned());
        let (guard, r, stat) = blocking(move || {
            let guard = this.hold_rootfs(&entry)?;
            let (r, meta) = stat_in(guard.root(), &path, &name)?;
            let stat = archive::path_stat(guard.root(), &r, &meta);
            Ok((guard, r, stat))
        })
        .await?;
        let tar = stream_from_blocking(move |w| {
            let mut tw = TreeWriter::new(w);
            tw.append_tree(&r.host, &r.base)?;
            tw.finish()?;
            drop(guard);
            Ok(())
        });
        Ok((stat, tar))
    }

    /// `PUT /containers/{id}/archive`: extracts a tar into the directory `path`.
    pub(crate) async fn cp_put(&self, name: &str, path: &str, tar: BoxRead) -> Result<()> {
        let entry = self.lookup(name)?;
        if entry.record.lock().spec.host.read_only_rootfs {
            return Err(Error::InvalidInput(
                "container rootfs is marked read-only".into(),
            ));
        }
        let this = self.clone();
        let (path, name) = (path.to_owned(), name.to_owned());
        let mut reader = BlockingReader::new(tar);
        blocking(move || {
            let guard = this.hold_rootfs(&entry)?;
            let root = guard.root();
            // The destination's last element is followed too: extracting "into" a
            // symlink to a directory is allowed, as in dockerd.
            let abs = archive::clean_abs(&path);
            let dest = corral_runtime::spec::secure_join(root, &abs)
                .map_err(|e| Error::InvalidInput(e.to_string()))?;
            let refused = match std::fs::symlink_metadata(&dest) {
                Ok(m) if m.is_dir() => None,
                Ok(_) => Some(Error::InvalidInput(
                    "extraction point is not a directory".into(),
                )),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Some(not_found(&path, &name)),
                Err(e) => Some(io_err(format!("inspecting {path}"))(e)),
            };
            if let Some(e) = refused {
                // Like Go's HTTP server, read a little of the unread body so a client
                // still sending gets the error instead of a broken pipe.
                let _ = io::copy(&mut (&mut reader).take(DRAIN_LIMIT), &mut io::sink());
                return Err(e);
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
        })
        .await
    }
}

/// Resolves and `lstat`s `path` inside `root`.
fn stat_in(
    root: &Path,
    path: &str,
    container: &str,
) -> Result<(archive::Resolved, std::fs::Metadata)> {
    if path.is_empty() {
        return Err(Error::InvalidInput("path is required".into()));
    }
    let r = archive::resolve(root, path).map_err(io_err(format!("resolving {path}")))?;
    match std::fs::symlink_metadata(&r.host) {
        Ok(m) => Ok((r, m)),
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
