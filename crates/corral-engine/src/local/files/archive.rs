//! `docker cp`: paths resolved inside a container's root, Docker's path stat, and
//! extracting a client's tar into the container without ever leaving its root.
//!
//! Resolution follows dockerd's `container.ResolvePath`: the directory part is resolved in
//! the scope of the root (symlinks included, `..` clamped at `/`), the last element is
//! kept as is, so stat and GET see a final symlink itself.

use std::fs::Metadata;
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use corral_runtime::spec::secure_join;
use serde_json::{json, Value};
use tar::EntryType;

/// A container path resolved against the host path of its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// The host path: the directory part resolved, the last element not followed.
    pub(crate) host: PathBuf,
    /// The absolute, cleaned path inside the container.
    pub(crate) abs: String,
    /// The name the last element gets in stat and archives (`.` for a `dir/.` request).
    pub(crate) base: String,
}

/// `path` cleaned as an absolute container path (`..` cannot climb above `/`).
pub(crate) fn clean_abs(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(n) => parts.push(n.to_str().unwrap_or_default()),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    format!("/{}", parts.join("/"))
}

/// Resolves `path` inside `root` as dockerd's `ResolvePath` does.
///
/// # Errors
/// A symlink loop or an unreadable component.
pub(crate) fn resolve(root: &Path, path: &str) -> io::Result<Resolved> {
    let abs = clean_abs(path);
    let dot = path.ends_with("/.") || path == ".";
    let (dir, base) = match abs.rsplit_once('/') {
        Some((d, b)) if !b.is_empty() => (if d.is_empty() { "/" } else { d }, b),
        _ => ("/", ""),
    };
    let dir_host = secure_join(root, dir).map_err(|e| io::Error::other(e.to_string()))?;
    let host = if base.is_empty() {
        dir_host
    } else {
        dir_host.join(base)
    };
    let base = if dot {
        ".".to_owned()
    } else if base.is_empty() {
        "/".to_owned()
    } else {
        base.to_owned()
    };
    Ok(Resolved { host, abs, base })
}

/// Go's `os.FileMode` bits for `meta` (type bits high, permission bits low), as Docker's
/// path stat carries them.
pub(crate) fn go_file_mode(meta: &Metadata) -> u64 {
    use std::os::unix::fs::FileTypeExt;
    const DIR: u64 = 1 << 31;
    const SYMLINK: u64 = 1 << 27;
    const DEVICE: u64 = 1 << 26;
    const NAMED_PIPE: u64 = 1 << 25;
    const SOCKET: u64 = 1 << 24;
    const SETUID: u64 = 1 << 23;
    const SETGID: u64 = 1 << 22;
    const CHAR_DEVICE: u64 = 1 << 21;
    const STICKY: u64 = 1 << 20;
    let ft = meta.file_type();
    let mode = meta.mode();
    let mut m = u64::from(mode & 0o777);
    if ft.is_dir() {
        m |= DIR;
    } else if ft.is_symlink() {
        m |= SYMLINK;
    } else if ft.is_block_device() {
        m |= DEVICE;
    } else if ft.is_char_device() {
        m |= DEVICE | CHAR_DEVICE;
    } else if ft.is_fifo() {
        m |= NAMED_PIPE;
    } else if ft.is_socket() {
        m |= SOCKET;
    }
    if mode & 0o4000 != 0 {
        m |= SETUID;
    }
    if mode & 0o2000 != 0 {
        m |= SETGID;
    }
    if mode & 0o1000 != 0 {
        m |= STICKY;
    }
    m
}

/// Go's `time.RFC3339Nano` in UTC: nanoseconds without trailing zeros.
fn go_rfc3339_nano(t: &DateTime<Utc>) -> String {
    let s = t.to_rfc3339_opts(SecondsFormat::Nanos, true);
    match s.strip_suffix('Z').and_then(|b| b.split_once('.')) {
        Some((secs, frac)) => {
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() {
                format!("{secs}Z")
            } else {
                format!("{secs}.{frac}Z")
            }
        }
        None => s,
    }
}

/// Docker's `ContainerPathStat` JSON for `r`, whose host path was `lstat`ed as `meta`.
/// For a symlink, `linkTarget` is the fully resolved absolute path inside the container.
pub(crate) fn path_stat(root: &Path, r: &Resolved, meta: &Metadata) -> Value {
    let link_target = if meta.file_type().is_symlink() {
        secure_join(root, &r.abs)
            .ok()
            .and_then(|p| p.strip_prefix(root).ok().map(Path::to_path_buf))
            .map(|p| format!("/{}", p.display()))
            .unwrap_or_default()
    } else {
        String::new()
    };
    let mtime = DateTime::<Utc>::from_timestamp(
        meta.mtime(),
        u32::try_from(meta.mtime_nsec()).unwrap_or(0),
    )
    .unwrap_or_default();
    let mtime = go_rfc3339_nano(&mtime);
    json!({
        "name": r.base,
        "size": meta.size(),
        "mode": go_file_mode(meta),
        "mtime": mtime,
        "linkTarget": link_target,
    })
}

/// Why an extraction was refused.
#[derive(Debug)]
pub(crate) enum ExtractError {
    /// The archive would replace a directory with a non-directory or the reverse.
    Overwrite(String),
    /// Reading the archive or writing the files failed.
    Io(io::Error),
}

impl From<io::Error> for ExtractError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Extracts the tar `reader` into `dest_abs` (an absolute path inside the container whose
/// root is `root`). Every entry's path is resolved with [`secure_join`], so `..` and
/// symlinks (already in the container or created by earlier entries) stay inside `root`;
/// the last element is never followed. Devices are skipped. Ownership, mode and mtime come
/// from the archive.
///
/// # Errors
/// [`ExtractError::Overwrite`] as dockerd's `NoOverwriteDirNonDir`, or I/O failures.
pub(crate) fn extract<R: Read>(
    reader: R,
    root: &Path,
    dest_abs: &str,
) -> Result<usize, ExtractError> {
    let mut archive = tar::Archive::new(reader);
    let mut dirs: Vec<(PathBuf, tar::Header)> = Vec::new();
    let mut count = 0;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let rel = clean_abs(&raw);
        if rel == "/" {
            continue;
        }
        let want = clean_abs(&format!("{dest_abs}/{rel}"));
        let (parent, name) = want.rsplit_once('/').unwrap_or(("", &want));
        let parent_host = secure_join(root, if parent.is_empty() { "/" } else { parent })
            .map_err(|e| io::Error::other(e.to_string()))?;
        ensure_dir(root, &parent_host)?;
        let target = parent_host.join(name);
        let kind = entry.header().entry_type();
        let existing = std::fs::symlink_metadata(&target).ok();
        let is_dir_entry = kind == EntryType::Directory;
        match &existing {
            Some(m) if m.is_dir() && !is_dir_entry => {
                return Err(ExtractError::Overwrite(format!(
                    "cannot overwrite directory \"{want}\" with non-directory \"{raw}\""
                )))
            }
            Some(m) if !m.is_dir() && is_dir_entry => {
                return Err(ExtractError::Overwrite(format!(
                    "cannot overwrite non-directory \"{want}\" with directory \"{raw}\""
                )))
            }
            Some(m) if !m.is_dir() => std::fs::remove_file(&target)?,
            _ => {}
        }
        let header = entry.header().clone();
        match kind {
            EntryType::Directory => {
                if existing.is_none() {
                    std::fs::DirBuilder::new().mode(0o755).create(&target)?;
                }
                dirs.push((target, header));
                count += 1;
                continue;
            }
            EntryType::Regular | EntryType::Continuous => {
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&target)?;
                io::copy(&mut entry, &mut f)?;
            }
            EntryType::Symlink => {
                let Some(link) = entry.link_name()? else {
                    continue;
                };
                // Stored verbatim: it is resolved inside the container, never by us.
                std::os::unix::fs::symlink(link.as_ref(), &target)?;
            }
            EntryType::Link => {
                let Some(link) = entry.link_name()? else {
                    continue;
                };
                let link_abs = clean_abs(&format!(
                    "{dest_abs}/{}",
                    clean_abs(&link.to_string_lossy())
                ));
                let src =
                    secure_join(root, &link_abs).map_err(|e| io::Error::other(e.to_string()))?;
                match std::fs::symlink_metadata(&src) {
                    Ok(m) if !m.is_dir() => std::fs::hard_link(&src, &target)?,
                    _ => {
                        tracing::warn!(entry = %raw, "skipping hard link whose target is not a file in the archive");
                        continue;
                    }
                }
            }
            other => {
                tracing::warn!(entry = %raw, kind = ?other, "skipping unsupported entry in copied archive");
                continue;
            }
        }
        apply_meta(&target, &header, kind == EntryType::Symlink);
        count += 1;
    }
    // Directories last and deepest first, so their contents do not disturb the mtimes.
    for (path, h) in dirs.iter().rev() {
        apply_meta(path, h, false);
    }
    Ok(count)
}

/// Creates the missing directories of `dir` (inside `root`, already resolved).
fn ensure_dir(root: &Path, dir: &Path) -> io::Result<()> {
    if !dir.starts_with(root) {
        return Err(io::Error::other(format!(
            "{} escapes the container root",
            dir.display()
        )));
    }
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            format!("{} is not a directory", dir.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir),
        Err(e) => Err(e),
    }
}

/// Best effort: owner first (it clears setuid), then mode and mtime.
fn apply_meta(path: &Path, h: &tar::Header, is_symlink: bool) {
    let uid = h.uid().ok().and_then(|v| u32::try_from(v).ok());
    let gid = h.gid().ok().and_then(|v| u32::try_from(v).ok());
    if let Err(e) = std::os::unix::fs::lchown(path, uid, gid) {
        tracing::debug!(path = %path.display(), error = %e, "lchown failed");
    }
    if !is_symlink {
        if let Ok(mode) = h.mode() {
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7777));
        }
    }
    if let Ok(mtime) = h.mtime() {
        let t = filetime::FileTime::from_unix_time(i64::try_from(mtime).unwrap_or(0), 0);
        let _ = filetime::set_symlink_file_times(path, t, t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn cleans_paths_without_climbing_above_root() {
        assert_eq!(clean_abs("/a/../../b/./c/"), "/b/c");
        assert_eq!(clean_abs("x"), "/x");
        assert_eq!(clean_abs("/"), "/");
        assert_eq!(clean_abs("../.."), "/");
    }

    #[test]
    fn resolves_the_dir_part_inside_the_root_and_keeps_the_last_symlink() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::create_dir_all(root.join("tmp")).unwrap();
        fs::write(root.join("etc/passwd"), "p").unwrap();
        std::os::unix::fs::symlink("../../../../etc", root.join("tmp/etclink")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("tmp/pwlink")).unwrap();
        let r = resolve(root, "/tmp/etclink/passwd").unwrap();
        assert_eq!(r.host, root.join("etc/passwd"));
        assert_eq!(r.base, "passwd");
        let r = resolve(root, "/tmp/pwlink").unwrap();
        assert_eq!(r.host, root.join("tmp/pwlink"));
        let meta = fs::symlink_metadata(&r.host).unwrap();
        let stat = path_stat(root, &r, &meta);
        assert_eq!(stat["name"], "pwlink");
        assert_eq!(stat["linkTarget"], "/etc/passwd");
        assert_eq!(stat["mode"].as_u64().unwrap() & (1 << 27), 1 << 27);
        let r = resolve(root, "/").unwrap();
        assert_eq!((r.host.as_path(), r.base.as_str()), (root, "/"));
        let r = resolve(root, "/tmp/.").unwrap();
        assert_eq!((r.host, r.base.as_str()), (root.join("tmp"), "."));
    }

    #[test]
    fn formats_times_like_go() {
        let t = |s, n| DateTime::<Utc>::from_timestamp(s, n).unwrap();
        assert_eq!(go_rfc3339_nano(&t(0, 0)), "1970-01-01T00:00:00Z");
        assert_eq!(
            go_rfc3339_nano(&t(0, 425_885_520)),
            "1970-01-01T00:00:00.42588552Z"
        );
    }

    #[test]
    fn stat_mode_uses_go_file_mode_bits() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("d");
        fs::create_dir(&d).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o1777)).unwrap();
        let f = t.path().join("f");
        fs::write(&f, "12345").unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o4755)).unwrap();
        assert_eq!(
            go_file_mode(&fs::metadata(&d).unwrap()),
            (1 << 31) | (1 << 20) | 0o777
        );
        assert_eq!(go_file_mode(&fs::metadata(&f).unwrap()), (1 << 23) | 0o755);
        let r = resolve(t.path(), "/f").unwrap();
        let stat = path_stat(t.path(), &r, &fs::metadata(&f).unwrap());
        assert_eq!(stat["size"], 5);
        assert!(stat["mtime"].as_str().unwrap().ends_with('Z'));
    }

    fn tarball(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().unwrap()
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, data).unwrap();
    }

    fn raw_file(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
        // Names like `../x` that tar-rs refuses to write: put them in the header by hand.
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }

    #[test]
    fn extraction_stays_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let outside = t.path().join("outside");
        fs::create_dir_all(root.join("tmp")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        // A symlink in the container pointing at an absolute host-looking path.
        std::os::unix::fs::symlink(&outside, root.join("tmp/esc")).unwrap();
        let tar = tarball(|b| {
            raw_file(b, "../../evil1", b"1");
            file(b, "esc/evil2", b"2");
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(EntryType::Symlink);
            h.set_mode(0o777);
            h.set_size(0);
            b.append_link(&mut h, "up", "../../../..").unwrap();
            file(b, "up/evil3", b"3");
            file(b, "ok/f", b"ok");
        });
        extract(tar.as_slice(), &root, "/tmp").unwrap();
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
        // `..` cannot climb out of the destination, as in dockerd's chrooted untar.
        assert!(!t.path().join("evil1").exists());
        assert_eq!(fs::read(root.join("tmp/evil1")).unwrap(), b"1");
        // The symlink's absolute target is taken relative to the container root.
        assert_eq!(
            fs::read(root.join(outside.strip_prefix("/").unwrap()).join("evil2")).unwrap(),
            b"2"
        );
        assert_eq!(fs::read(root.join("evil3")).unwrap(), b"3");
        assert_eq!(fs::read(root.join("tmp/ok/f")).unwrap(), b"ok");
    }

    #[test]
    fn extraction_refuses_to_swap_dirs_and_files() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        fs::create_dir_all(root.join("d/x")).unwrap();
        let tar = tarball(|b| file(b, "x", b"1"));
        let err = extract(tar.as_slice(), root, "/d").unwrap_err();
        assert!(
            matches!(err, ExtractError::Overwrite(m) if m.contains("cannot overwrite directory"))
        );
        fs::write(root.join("d/f"), "old").unwrap();
        let tar = tarball(|b| file(b, "f", b"new"));
        extract(tar.as_slice(), root, "/d").unwrap();
        assert_eq!(fs::read(root.join("d/f")).unwrap(), b"new");
    }
}
