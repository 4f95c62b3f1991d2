//! Paths inside a container rootfs: chroot-like resolution and the working directory.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::ErrorKind as IoKind;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use super::error::{Result, SpecError};

/// Linux's own limit on symlinks followed in one lookup (`MAXSYMLINKS` is 40; filepath-securejoin
/// allows 255). Past this the path is treated as a loop.
const MAX_SYMLINKS: usize = 255;

/// Joins `unsafe_path` onto `root` as if `root` were `/`: `..` never climbs above `root`, and
/// symlinks met on the way (absolute or relative) are resolved inside `root`, like a chroot.
///
/// Components that do not exist are appended lexically, so the result may name a file still
/// to be created. The result is only safe while nobody swaps a component for a symlink
/// concurrently (the rootfs of a container that is not running yet).
///
/// # Errors
/// [`SpecError::TooManySymlinks`] on a symlink loop, [`SpecError::Io`] when a component cannot
/// be inspected for another reason than not existing.
pub fn secure_join(root: &Path, unsafe_path: impl AsRef<Path>) -> Result<PathBuf> {
    let unsafe_path = unsafe_path.as_ref();
    let mut pending: VecDeque<OsString> = components(unsafe_path).collect();
    let mut resolved = PathBuf::new();
    let mut links = 0usize;
    while let Some(part) = pending.pop_front() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = root.join(&resolved).join(&part);
        match std::fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(SpecError::TooManySymlinks {
                        path: unsafe_path.display().to_string(),
                    });
                }
                let target =
                    std::fs::read_link(&candidate).map_err(|e| SpecError::io(&candidate, e))?;
                if target.is_absolute() {
                    resolved.clear();
                }
                for (i, c) in components(&target).enumerate() {
                    pending.insert(i, c);
                }
            }
            Ok(_) => resolved.push(part),
            // Missing (or under a non-directory): the rest of the path is lexical.
            Err(e) if e.kind() == IoKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => {
                resolved.push(part)
            }
            Err(e) => return Err(SpecError::io(candidate, e)),
        }
    }
    Ok(root.join(resolved))
}

/// Creates the container's working directory `cwd` (absolute, inside `rootfs`) when it is
/// missing, with mode 0755 and owned by `uid:gid`, as Docker does at start. Directories that
/// already exist are left untouched; only the ones created here are chowned.
///
/// The caller decides when to run it (after the rootfs is mounted, before the process starts).
///
/// # Errors
/// [`SpecError::RelativeWorkdir`] for a relative `cwd`, [`SpecError::WorkdirNotDirectory`] when
/// the path exists as something else, [`SpecError::Io`] when creating or chowning fails.
pub fn ensure_workdir(rootfs: &Path, cwd: &str, uid: u32, gid: u32) -> Result<()> {
    if !cwd.starts_with('/') {
        return Err(SpecError::RelativeWorkdir {
            path: cwd.to_owned(),
        });
    }
    let target = secure_join(rootfs, cwd)?;
    let mut missing = Vec::new();
    let mut cur = target.as_path();
    loop {
        match std::fs::metadata(cur) {
            Ok(meta) if meta.is_dir() => break,
            Ok(_) => {
                return Err(SpecError::WorkdirNotDirectory {
                    path: cwd.to_owned(),
                })
            }
            Err(e) if e.kind() == IoKind::NotFound => missing.push(cur.to_path_buf()),
            Err(e) => return Err(SpecError::io(cur, e)),
        }
        match cur.parent() {
            Some(parent) if parent.starts_with(rootfs) && cur != rootfs => cur = parent,
            _ => break,
        }
    }
    for dir in missing.iter().rev() {
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(dir)
            .map_err(|e| SpecError::io(dir, e))?;
        // The umask may have narrowed the mode given to mkdir(2).
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| SpecError::io(dir, e))?;
        std::os::unix::fs::chown(dir, Some(uid), Some(gid)).map_err(|e| SpecError::io(dir, e))?;
    }
    Ok(())
}

/// Lexically cleans an absolute container path like Go's `filepath.Clean`: no `.`, no `..`
/// above `/`, no doubled or trailing slashes.
pub(crate) fn clean_abs(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p),
        }
    }
    format!("/{}", out.join("/"))
}

fn components(path: &Path) -> impl Iterator<Item = OsString> + '_ {
    path.components().filter_map(|c| match c {
        Component::Normal(s) => Some(s.to_owned()),
        Component::ParentDir => Some(OsString::from("..")),
        Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::spec::test_support::TempDir;

    #[test]
    fn secure_join_keeps_dotdot_inside_root() {
        let root = TempDir::new("sj-dotdot");
        let p = secure_join(root.path(), "/../../etc/passwd").unwrap();
        assert_eq!(p, root.path().join("etc/passwd"));
        let p = secure_join(root.path(), "a/../../b").unwrap();
        assert_eq!(p, root.path().join("b"));
    }

    #[test]
    fn secure_join_resolves_absolute_symlinks_against_root() {
        let root = TempDir::new("sj-abs");
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        symlink("/../../../etc/shadow", root.path().join("etc/passwd")).unwrap();
        let p = secure_join(root.path(), "/etc/passwd").unwrap();
        assert_eq!(p, root.path().join("etc/shadow"));
    }

    #[test]
    fn secure_join_resolves_relative_symlinks_and_dirs() {
        let root = TempDir::new("sj-rel");
        std::fs::create_dir_all(root.path().join("usr/lib")).unwrap();
        symlink("usr/lib", root.path().join("lib")).unwrap();
        symlink("../../../../x", root.path().join("usr/lib/up")).unwrap();
        assert_eq!(
            secure_join(root.path(), "/lib/foo").unwrap(),
            root.path().join("usr/lib/foo")
        );
        assert_eq!(
            secure_join(root.path(), "/lib/up").unwrap(),
            root.path().join("x")
        );
    }

    #[test]
    fn secure_join_detects_loops() {
        let root = TempDir::new("sj-loop");
        symlink("b", root.path().join("a")).unwrap();
        symlink("a", root.path().join("b")).unwrap();
        let err = secure_join(root.path(), "/a").unwrap_err();
        assert!(matches!(err, SpecError::TooManySymlinks { .. }), "{err}");
    }

    #[test]
    fn ensure_workdir_creates_missing_dirs_with_0755() {
        let root = TempDir::new("wd-create");
        let uid = nix::unistd::getuid().as_raw();
        let gid = nix::unistd::getgid().as_raw();
        ensure_workdir(root.path(), "/srv/app/data", uid, gid).unwrap();
        let meta = std::fs::metadata(root.path().join("srv/app/data")).unwrap();
        assert!(meta.is_dir());
        assert_eq!(meta.permissions().mode() & 0o7777, 0o755);
        // idempotent
        ensure_workdir(root.path(), "/srv/app/data", uid, gid).unwrap();
    }

    #[test]
    fn ensure_workdir_follows_symlinks_inside_rootfs_only() {
        let root = TempDir::new("wd-link");
        let outside = TempDir::new("wd-outside");
        symlink(outside.path(), root.path().join("escape")).unwrap();
        let uid = nix::unistd::getuid().as_raw();
        let gid = nix::unistd::getgid().as_raw();
        ensure_workdir(root.path(), "/escape/work", uid, gid).unwrap();
        assert!(!outside.path().join("work").exists());
        // The absolute link target is re-rooted inside the rootfs.
        let inside = secure_join(root.path(), "/escape/work").unwrap();
        assert!(inside.starts_with(root.path()));
        assert!(inside.is_dir());
    }

    #[test]
    fn ensure_workdir_rejects_files_and_relative_paths() {
        let root = TempDir::new("wd-file");
        std::fs::write(root.path().join("f"), b"x").unwrap();
        let err = ensure_workdir(root.path(), "/f", 0, 0).unwrap_err();
        assert!(
            matches!(err, SpecError::WorkdirNotDirectory { .. }),
            "{err}"
        );
        let err = ensure_workdir(root.path(), "rel", 0, 0).unwrap_err();
        assert!(matches!(err, SpecError::RelativeWorkdir { .. }), "{err}");
    }

    #[test]
    fn clean_abs_normalises_like_go() {
        assert_eq!(clean_abs("/a//b/./c/.."), "/a/b");
        assert_eq!(clean_abs("/../x/"), "/x");
        assert_eq!(clean_abs("/"), "/");
    }
}
