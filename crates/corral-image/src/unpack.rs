//! Safe extraction of a layer tar into a directory, converting whiteouts to overlayfs form.
//!
//! The tar is untrusted. Every entry is confined to the destination:
//! - paths are cleaned as if rooted at `/` (`../../etc/x` becomes `etc/x`, `/abs` becomes
//!   `abs`), as containerd's `fs.RootPath` does;
//! - every parent directory is checked with `symlink_metadata` and must be a real
//!   directory: an entry whose parent is a symlink (`evil -> /` then `evil/etc/passwd`) is
//!   skipped, so no write ever follows a link. We are the only writer of the private temp
//!   directory, so the check cannot race;
//! - the final component is removed before it is created, and files are created with
//!   `O_CREAT|O_EXCL`, which does not follow a symlink;
//! - hard links must name an existing non-directory inside the layer, reached through real
//!   directories only;
//! - block and character devices, FIFOs and sockets are skipped with a warning;
//! - `trusted.*` xattrs (including `trusted.overlay.*`, which would let an image redirect
//!   overlayfs) are dropped.
//!
//! Whiteouts (OCI image spec, "layer.md"): `.wh.NAME` becomes a 0:0 character device
//! `NAME`, `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its directory.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use corral_oci::Digest;
use sha2::Digest as _;
use tar::EntryType;

use crate::error::{Error, Result};

const WHITEOUT_PREFIX: &str = ".wh.";
const WHITEOUT_META_PREFIX: &str = ".wh..wh.";
const WHITEOUT_OPAQUE: &str = ".wh..wh..opq";
const PAX_XATTR_PREFIX: &str = "SCHILY.xattr.";

/// What extraction found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Extracted {
    /// SHA-256 of the uncompressed tar stream (the layer's diff_id).
    pub(crate) diff_id: Digest,
    /// Bytes of file content in the layer (what `docker history` and `images` report as a
    /// layer's size: moby's diff size, not the tar's length).
    pub(crate) size: u64,
    /// Entries that were skipped as unsafe or unsupported.
    pub(crate) skipped: usize,
}

/// Hashes everything read through it.
struct HashingReader<R> {
    inner: R,
    hasher: sha2::Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Extracts the uncompressed tar `reader` into `dest` (an existing, private, empty
/// directory), reading the stream to its end so the digest covers all of it.
pub(crate) fn extract<R: Read>(reader: R, dest: &Path) -> Result<Extracted> {
    let mut hr = HashingReader {
        inner: reader,
        hasher: sha2::Sha256::new(),
    };
    let mut dirs = Vec::new();
    let mut skipped = 0;
    let mut content = 0u64;
    {
        let mut archive = tar::Archive::new(&mut hr);
        let entries = archive
            .entries()
            .map_err(Error::io("read layer tar for", dest))?;
        for entry in entries {
            let mut entry = entry.map_err(Error::io("read layer tar entry for", dest))?;
            if entry.header().entry_type().is_file() {
                content += entry.header().size().unwrap_or(0);
            }
            match extract_entry(&mut entry, dest, &mut dirs)? {
                Outcome::Done => {}
                Outcome::Skipped => skipped += 1,
            }
        }
    }
    // Trailing zero blocks and padding are part of the diff_id.
    io::copy(&mut hr, &mut io::sink()).map_err(Error::io("read layer tar for", dest))?;
    // Directory metadata last and deepest first, so writing children does not disturb
    // mtimes and read-only directories do not block their own contents.
    // A later entry may have replaced a directory (or one of its parents) with a symlink;
    // chmod follows links, so metadata goes only to what is still a real directory reached
    // through real directories.
    for (path, meta) in dirs.iter().rev() {
        let still_dir = path.strip_prefix(dest).is_ok_and(|rel| {
            rel.as_os_str().is_empty()
                || resolve_existing(dest, rel).is_some_and(|m| m.file_type().is_dir())
        });
        if still_dir {
            apply_metadata(path, meta, false);
        } else {
            tracing::warn!(path = %path.display(), "directory replaced during extraction; metadata skipped");
        }
    }
    let digest = Digest::from_sha256_bytes(&hr.hasher.finalize());
    Ok(Extracted {
        diff_id: digest,
        size: content,
        skipped,
    })
}

enum Outcome {
    Done,
    Skipped,
}

/// Ownership, mode, mtime and xattrs of one entry.
#[derive(Debug, Clone)]
struct Meta {
    uid: Option<u32>,
    gid: Option<u32>,
    mode: u32,
    mtime: Option<i64>,
    xattrs: Vec<(String, Vec<u8>)>,
}

fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>) -> Meta {
    let h = entry.header();
    let mut meta = Meta {
        uid: h.uid().ok().and_then(|v| u32::try_from(v).ok()),
        gid: h.gid().ok().and_then(|v| u32::try_from(v).ok()),
        mode: h.mode().unwrap_or(0o644) & 0o7777,
        mtime: h.mtime().ok().and_then(|v| i64::try_from(v).ok()),
        xattrs: Vec::new(),
    };
    if let Ok(Some(pax)) = entry.pax_extensions() {
        for ext in pax.flatten() {
            let Ok(key) = ext.key() else { continue };
            if let Some(name) = key.strip_prefix(PAX_XATTR_PREFIX) {
                if name.starts_with("trusted.") {
                    tracing::warn!(xattr = name, "dropping trusted xattr from layer");
                    continue;
                }
                meta.xattrs
                    .push((name.to_owned(), ext.value_bytes().to_vec()));
            }
        }
    }
    meta
}

/// `path` cleaned as if rooted at `/`; `None` for the root itself.
pub(crate) fn clean_rel(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Prefix(_) | Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// Walks `rel`'s parents under `dest`, creating missing ones. Returns `false` when a
/// parent exists but is not a real directory (a symlink or file): the entry is unsafe.
fn ensure_parents(dest: &Path, rel: &Path) -> Result<bool> {
    let mut cur = dest.to_path_buf();
    let Some(parent) = rel.parent() else {
        return Ok(true);
    };
    for c in parent.components() {
        cur.push(c);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(_) => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::DirBuilder::new()
                    .mode(0o755)
                    .create(&cur)
                    .map_err(Error::io("create dir", &cur))?;
            }
            Err(e) => {
                return Err(Error::Io {
                    op: "inspect",
                    path: cur,
                    source: e,
                })
            }
        }
    }
    Ok(true)
}

/// Whether `rel` exists under `dest` reached through real directories only.
fn resolve_existing(dest: &Path, rel: &Path) -> Option<fs::Metadata> {
    let mut cur = dest.to_path_buf();
    if let Some(parent) = rel.parent() {
        for c in parent.components() {
            cur.push(c);
            if !fs::symlink_metadata(&cur).ok()?.file_type().is_dir() {
                return None;
            }
        }
    }
    fs::symlink_metadata(dest.join(rel)).ok()
}

/// Removes whatever is at `path` (never following it) unless it is a directory and
/// `keep_dir` is set.
fn clear(path: &Path, keep_dir: bool) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_dir() => {
            if keep_dir {
                Ok(())
            } else {
                fs::remove_dir_all(path).map_err(Error::io("replace dir", path))
            }
        }
        Ok(_) => fs::remove_file(path).map_err(Error::io("replace", path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Io {
            op: "inspect",
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

fn extract_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    dest: &Path,
    dirs: &mut Vec<(PathBuf, Meta)>,
) -> Result<Outcome> {
    let raw = entry
        .path()
        .map_err(Error::io("read entry path in", dest))?
        .into_owned();
    let kind = entry.header().entry_type();
    let Some(rel) = clean_rel(&raw) else {
        // The root directory entry (`./`): its metadata applies to the layer root.
        if kind == EntryType::Directory {
            let meta = read_meta(entry);
            dirs.push((dest.to_path_buf(), meta));
        }
        return Ok(Outcome::Done);
    };
    if rel != raw {
        tracing::debug!(entry = %raw.display(), cleaned = %rel.display(), "normalised layer entry path");
    }
    if !ensure_parents(dest, &rel)? {
        tracing::warn!(entry = %raw.display(), "skipping layer entry whose parent is not a directory");
        return Ok(Outcome::Skipped);
    }
    let name = rel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let full = dest.join(&rel);

    if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
        let dir = full.parent().unwrap_or(dest);
        if hidden.is_empty() || hidden == "." || hidden == ".." {
            // `.wh.`, `.wh..` and `.wh...` would name the directory itself or its parent.
            tracing::warn!(entry = %raw.display(), "skipping malformed whiteout");
            return Ok(Outcome::Skipped);
        }
        if name == WHITEOUT_OPAQUE {
            corral_sys::mount::set_opaque(dir).map_err(Error::io("mark opaque", dir))?;
        } else if name.starts_with(WHITEOUT_META_PREFIX) {
            tracing::debug!(entry = %raw.display(), "ignoring aufs metadata entry");
        } else {
            let target = dir.join(hidden);
            clear(&target, false)?;
            corral_sys::mount::create_whiteout(&target)
                .map_err(Error::io("create whiteout", &target))?;
        }
        return Ok(Outcome::Done);
    }

    match kind {
        EntryType::Directory => {
            let meta = read_meta(entry);
            clear(&full, true)?;
            if !full.is_dir() {
                fs::DirBuilder::new()
                    .mode(0o755)
                    .create(&full)
                    .map_err(Error::io("create dir", &full))?;
            }
            dirs.push((full, meta));
        }
        EntryType::Regular | EntryType::Continuous => {
            let meta = read_meta(entry);
            clear(&full, false)?;
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&full)
                .map_err(Error::io("create file", &full))?;
            io::copy(entry, &mut file).map_err(Error::io("write file", &full))?;
            drop(file);
            apply_metadata(&full, &meta, false);
        }
        EntryType::Symlink => {
            let meta = read_meta(entry);
            let Some(target) = entry
                .link_name()
                .map_err(Error::io("read link target in", dest))?
            else {
                tracing::warn!(entry = %raw.display(), "skipping symlink without target");
                return Ok(Outcome::Skipped);
            };
            clear(&full, false)?;
            // The target is stored verbatim: it is resolved inside the container's root,
            // never by us.
            std::os::unix::fs::symlink(&target, &full)
                .map_err(Error::io("create symlink", &full))?;
            apply_metadata(&full, &meta, true);
        }
        EntryType::Link => {
            let link = entry
                .link_name()
                .map_err(Error::io("read link target in", dest))?
                .map(|l| l.into_owned());
            let Some(target_rel) = link.as_deref().and_then(clean_rel) else {
                tracing::warn!(entry = %raw.display(), "skipping hard link without target");
                return Ok(Outcome::Skipped);
            };
            match resolve_existing(dest, &target_rel) {
                Some(m) if !m.file_type().is_dir() && target_rel != rel => {
                    clear(&full, false)?;
                    fs::hard_link(dest.join(&target_rel), &full)
                        .map_err(Error::io("create hard link", &full))?;
                }
                _ => {
                    tracing::warn!(
                        entry = %raw.display(),
                        target = ?link,
                        "skipping hard link whose target is not a file inside the layer"
                    );
                    return Ok(Outcome::Skipped);
                }
            }
        }
        EntryType::Char | EntryType::Block | EntryType::Fifo => {
            tracing::warn!(entry = %raw.display(), kind = ?kind, "skipping device or fifo in layer");
            return Ok(Outcome::Skipped);
        }
        other => {
            tracing::warn!(entry = %raw.display(), kind = ?other, "skipping unsupported tar entry");
            return Ok(Outcome::Skipped);
        }
    }
    Ok(Outcome::Done)
}

/// Best effort: chown first (it clears setuid bits), then mode, xattrs and mtime.
/// Failures are logged at debug level: an unprivileged unpack cannot chown.
fn apply_metadata(path: &Path, meta: &Meta, is_symlink: bool) {
    if let Err(e) = std::os::unix::fs::lchown(path, meta.uid, meta.gid) {
        tracing::debug!(path = %path.display(), error = %e, "lchown failed");
    }
    if !is_symlink {
        if let Err(e) = fs::set_permissions(path, fs::Permissions::from_mode(meta.mode)) {
            tracing::debug!(path = %path.display(), error = %e, "chmod failed");
        }
        for (name, value) in &meta.xattrs {
            if let Err(e) = xattr::set(path, name, value) {
                tracing::debug!(path = %path.display(), xattr = %name, error = %e, "setxattr failed");
            }
        }
    }
    if let Some(mtime) = meta.mtime {
        let t = filetime::FileTime::from_unix_time(mtime, 0);
        if let Err(e) = filetime::set_symlink_file_times(path, t, t) {
            tracing::debug!(path = %path.display(), error = %e, "utimes failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_rel_neutralises_escapes() {
        let c = |s: &str| clean_rel(Path::new(s)).map(|p| p.display().to_string());
        assert_eq!(c("../../etc/x").as_deref(), Some("etc/x"));
        assert_eq!(c("/abs").as_deref(), Some("abs"));
        assert_eq!(c("./a/./b/../c").as_deref(), Some("a/c"));
        assert_eq!(c("a/../../b").as_deref(), Some("b"));
        assert_eq!(c("./"), None);
        assert_eq!(c("/"), None);
        assert_eq!(c(".."), None);
    }
}
