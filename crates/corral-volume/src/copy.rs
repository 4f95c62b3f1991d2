//! Populating a new volume from an image: a copy that keeps ownership and modes.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::error::{io, Result};

/// Whether `dir` is a directory with no entries (a missing directory counts as empty).
pub fn is_empty_dir(dir: &Path) -> Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut it) => Ok(it.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(io(format!("reading {}", dir.display()))(e)),
    }
}

/// Copies the tree under `src` into the existing directory `dst`, as dockerd populates a
/// volume: directories, regular files and symlinks keep their owner, group and mode; `dst`
/// itself takes `src`'s owner and mode. Symlinks are copied as links, never followed;
/// device nodes, fifos and sockets are skipped. `src` must already be resolved safely
/// inside the container's root.
pub fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(src).map_err(io(format!("reading {}", src.display())))?;
    copy_attrs(dst, &meta)?;
    copy_dir_contents(src, dst)
}

fn copy_dir_contents(src: &Path, dst: &Path) -> Result<()> {
    let ctx = || format!("reading {}", src.display());
    for entry in std::fs::read_dir(src).map_err(io(ctx()))? {
        let entry = entry.map_err(io(ctx()))?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&from).map_err(io(ctx()))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&to).map_err(io(format!("creating {}", to.display())))?;
            copy_dir_contents(&from, &to)?;
            copy_attrs(&to, &meta)?;
        } else if ft.is_file() {
            std::fs::copy(&from, &to).map_err(io(format!("copying {}", from.display())))?;
            copy_attrs(&to, &meta)?;
        } else if ft.is_symlink() {
            let target =
                std::fs::read_link(&from).map_err(io(format!("reading {}", from.display())))?;
            std::os::unix::fs::symlink(&target, &to)
                .map_err(io(format!("creating {}", to.display())))?;
            std::os::unix::fs::lchown(&to, Some(meta.uid()), Some(meta.gid()))
                .map_err(io(format!("chown {}", to.display())))?;
        } else {
            tracing::debug!(path = %from.display(), "skipping special file while populating volume");
        }
    }
    Ok(())
}

/// Owner, group and mode (set after chown, which clears setuid bits).
fn copy_attrs(to: &Path, meta: &std::fs::Metadata) -> Result<()> {
    std::os::unix::fs::chown(to, Some(meta.uid()), Some(meta.gid()))
        .map_err(io(format!("chown {}", to.display())))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(io(format!("chmod {}", to.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_tree_with_modes_and_links_and_reports_emptiness() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        let dst = tmp.path().join("dst");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::create_dir(&dst).unwrap();
        assert!(is_empty_dir(&dst).unwrap());
        assert!(is_empty_dir(&tmp.path().join("missing")).unwrap());
        std::fs::write(src.join("sub/f"), b"hello").unwrap();
        std::fs::set_permissions(src.join("sub/f"), std::fs::Permissions::from_mode(0o640))
            .unwrap();
        std::fs::set_permissions(src.join("sub"), std::fs::Permissions::from_mode(0o711)).unwrap();
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o750)).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.join("link")).unwrap();

        copy_tree(&src, &dst).unwrap();
        assert!(!is_empty_dir(&dst).unwrap());
        assert_eq!(std::fs::read(dst.join("sub/f")).unwrap(), b"hello");
        let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(mode(&dst.join("sub/f")), 0o640);
        assert_eq!(mode(&dst.join("sub")), 0o711);
        assert_eq!(mode(&dst), 0o750);
        assert_eq!(
            std::fs::read_link(dst.join("link")).unwrap(),
            Path::new("/etc/passwd")
        );
    }

    #[test]
    #[ignore = "needs root: chown to another user"]
    fn copy_keeps_ownership() {
        assert!(
            std::fs::metadata("/proc/self").unwrap().uid() == 0,
            "this test needs root"
        );
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        let dst = tmp.path().join("dst");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir(&dst).unwrap();
        std::fs::write(src.join("f"), b"x").unwrap();
        std::os::unix::fs::chown(src.join("f"), Some(1234), Some(5678)).unwrap();
        std::os::unix::fs::chown(&src, Some(42), Some(43)).unwrap();
        copy_tree(&src, &dst).unwrap();
        let m = std::fs::metadata(dst.join("f")).unwrap();
        assert_eq!((m.uid(), m.gid()), (1234, 5678));
        let m = std::fs::metadata(&dst).unwrap();
        assert_eq!((m.uid(), m.gid()), (42, 43));
    }
}
