//! `docker diff`: a container's writable layer classified against the image's layers.
//!
//! dockerd 20.10 computes changes with its "naive" differ even on overlay2 (the
//! graphdriver's `Changes` always compares the merged trees): a non-directory is changed
//! when its mode, owner, device, mtime or size differ; a directory only when its mode or
//! owner differ, or when anything below it changed. Walking the upper dir gives the same
//! answer without mounting: only what is in the upper dir can differ from the lower view.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::Metadata;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::api::ChangeKind;

/// Paths (relative to the root) the runtime creates or mounts over in every container;
/// dockerd keeps them in a hidden init layer, so neither diff nor commit shows them.
const HIDDEN_FILES: &[&str] = &["etc/hosts", "etc/hostname", "etc/resolv.conf", ".dockerenv"];

/// Kernel file systems mounted over these in every container: what is below them in the
/// upper dir is only a mount point.
const MOUNT_DIRS: &[&str] = &["proc", "sys", "dev"];

/// Directories the runtime may create only to hold [`HIDDEN_FILES`].
const INIT_DIRS: &[&str] = &["etc"];

/// Whether `rel` (relative, no leading `/`) is managed by the runtime and never reported.
pub(crate) fn is_hidden(rel: &Path) -> bool {
    HIDDEN_FILES.iter().any(|h| rel == Path::new(h))
        || MOUNT_DIRS.iter().any(|m| rel.starts_with(m))
}

/// Whether `meta` is an overlayfs whiteout: a character device 0:0.
pub(crate) fn is_whiteout(meta: &Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Whether the directory `path` is marked opaque for overlayfs.
pub(crate) fn is_opaque(path: &Path) -> bool {
    corral_sys::mount::is_opaque(path).unwrap_or(false)
}

/// The read-only lower layers of a container, top-most first, seen as overlayfs merges them.
#[derive(Debug, Clone)]
pub(crate) struct Lowers(pub(crate) Vec<PathBuf>);

impl Lowers {
    /// The metadata of `rel` in the merged lower view, or `None` when it is absent there
    /// (never created, hidden by a whiteout or by an opaque directory above it).
    pub(crate) fn lookup(&self, rel: &Path) -> Option<Metadata> {
        let comps: Vec<_> = rel.components().collect();
        if comps.is_empty() {
            return None;
        }
        for layer in &self.0 {
            let mut cur = layer.clone();
            let mut stop_below = false;
            for (i, c) in comps.iter().enumerate() {
                cur.push(c);
                let Ok(m) = std::fs::symlink_metadata(&cur) else {
                    break;
                };
                if is_whiteout(&m) {
                    return None;
                }
                if i + 1 == comps.len() {
                    return Some(m);
                }
                if !m.is_dir() {
                    // A non-directory in a higher layer hides everything below its path.
                    return None;
                }
                if is_opaque(&cur) {
                    stop_below = true;
                }
            }
            if stop_below {
                return None;
            }
        }
        None
    }

    /// Names visible in directory `rel` of the merged lower view.
    pub(crate) fn children(&self, rel: &Path) -> BTreeSet<OsString> {
        let mut names = BTreeSet::new();
        for layer in &self.0 {
            if let Ok(rd) = std::fs::read_dir(layer.join(rel)) {
                names.extend(rd.flatten().map(|e| e.file_name()));
            }
        }
        names.retain(|n| self.lookup(&rel.join(n)).is_some());
        names
    }
}

/// dockerd's `sameFsTime`: equal, or the same second with one side lacking nanoseconds
/// (tar keeps whole seconds).
fn same_time(a: &Metadata, b: &Metadata) -> bool {
    a.mtime() == b.mtime()
        && (a.mtime_nsec() == b.mtime_nsec() || a.mtime_nsec() == 0 || b.mtime_nsec() == 0)
}

/// dockerd's `statDifferent`: directories compare mode and owner only.
pub(crate) fn stat_different(old: &Metadata, new: &Metadata) -> bool {
    old.mode() != new.mode()
        || old.uid() != new.uid()
        || old.gid() != new.gid()
        || old.rdev() != new.rdev()
        || (!old.is_dir() && (!same_time(old, new) || old.size() != new.size()))
}

/// Directory entries of `dir`, sorted by name (Go's `filepath.Walk` order).
pub(crate) fn sorted_entries(dir: &Path) -> io::Result<Vec<OsString>> {
    let mut names: Vec<OsString> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    names.sort();
    Ok(names)
}

/// The changes of `upper` against `lowers`, sorted by path, as `docker diff` lists them.
pub(crate) fn changes(upper: &Path, lowers: &Lowers) -> io::Result<Vec<(String, ChangeKind)>> {
    let mut out = Vec::new();
    walk(upper, lowers, Path::new(""), false, &mut out)?;
    let mut out: Vec<(String, ChangeKind)> = out
        .into_iter()
        .map(|(p, k)| (format!("/{}", p.display()), k))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn walk(
    upper: &Path,
    lowers: &Lowers,
    dir: &Path,
    dir_is_new: bool,
    out: &mut Vec<(PathBuf, ChangeKind)>,
) -> io::Result<()> {
    let names = match sorted_entries(&upper.join(dir)) {
        Ok(n) => n,
        // The container may remove things while we walk.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for name in &names {
        let rel = dir.join(name);
        if is_hidden(&rel) {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(upper.join(&rel)) else {
            continue;
        };
        let lower = if dir_is_new {
            None
        } else {
            lowers.lookup(&rel)
        };
        if is_whiteout(&meta) {
            if lower.is_some() {
                out.push((rel, ChangeKind::Deleted));
            }
            continue;
        }
        if !meta.is_dir() {
            match &lower {
                None => out.push((rel, ChangeKind::Added)),
                Some(l) if l.is_dir() || stat_different(l, &meta) => {
                    out.push((rel, ChangeKind::Modified));
                }
                Some(_) => {}
            }
            continue;
        }
        let start = out.len();
        let own = match &lower {
            None => Some(ChangeKind::Added),
            Some(l) if !l.is_dir() || stat_different(l, &meta) => Some(ChangeKind::Modified),
            Some(_) => None,
        };
        if let Some(k) = own {
            out.push((rel.clone(), k));
        }
        let lower_is_dir = lower.as_ref().is_some_and(Metadata::is_dir);
        walk(upper, lowers, &rel, !lower_is_dir, out)?;
        if lower_is_dir && is_opaque(&upper.join(&rel)) {
            // An opaque directory hides every lower entry it does not itself contain.
            let present: BTreeSet<OsString> = sorted_entries(&upper.join(&rel))
                .unwrap_or_default()
                .into_iter()
                .collect();
            for n in lowers.children(&rel) {
                if !present.contains(&n) {
                    out.push((rel.join(n), ChangeKind::Deleted));
                }
            }
        }
        let below = out.len() > start + usize::from(own.is_some());
        match own {
            None if below => out.insert(start, (rel, ChangeKind::Modified)),
            Some(ChangeKind::Added) if !below && INIT_DIRS.iter().any(|d| rel == Path::new(d)) => {
                // Created by the runtime only to hold the files it manages.
                out.truncate(start);
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn kinds(v: &[(String, ChangeKind)]) -> Vec<String> {
        v.iter()
            .map(|(p, k)| {
                let c = match k {
                    ChangeKind::Added => 'A',
                    ChangeKind::Modified => 'C',
                    ChangeKind::Deleted => 'D',
                };
                format!("{c} {p}")
            })
            .collect()
    }

    /// Copies a file's times and mode from `from` to `to`, as overlayfs copy-up does.
    fn copy_up_dir(from: &Path, to: &Path) {
        fs::create_dir_all(to).unwrap();
        let m = fs::metadata(from).unwrap();
        fs::set_permissions(to, m.permissions()).unwrap();
        let t = filetime::FileTime::from_last_modification_time(&m);
        filetime::set_file_mtime(to, t).unwrap();
    }

    #[test]
    fn classifies_added_and_modified_and_reports_parents() {
        let t = tempfile::tempdir().unwrap();
        let (low, up) = (t.path().join("low"), t.path().join("up"));
        fs::create_dir_all(low.join("etc")).unwrap();
        fs::create_dir_all(low.join("a/b")).unwrap();
        fs::write(low.join("etc/passwd"), "root\n").unwrap();
        fs::write(low.join("a/b/keep"), "k").unwrap();
        // Upper: a modified file, an added dir with a file, an added file deep in an
        // unchanged tree, and the runtime's own files.
        copy_up_dir(&low.join("etc"), &up.join("etc"));
        fs::write(up.join("etc/passwd"), "root\nnew\n").unwrap();
        fs::write(up.join("etc/hosts"), "").unwrap();
        fs::create_dir_all(up.join("newdir")).unwrap();
        fs::write(up.join("newdir/f"), "x").unwrap();
        copy_up_dir(&low.join("a"), &up.join("a"));
        copy_up_dir(&low.join("a/b"), &up.join("a/b"));
        fs::write(up.join("a/b/new"), "n").unwrap();
        fs::create_dir_all(up.join("proc")).unwrap();
        let got = changes(&up, &Lowers(vec![low])).unwrap();
        assert_eq!(
            kinds(&got),
            [
                "C /a",
                "C /a/b",
                "A /a/b/new",
                "C /etc",
                "C /etc/passwd",
                "A /newdir",
                "A /newdir/f"
            ]
        );
    }

    #[test]
    fn unchanged_copied_up_dirs_and_runtime_files_are_not_changes() {
        let t = tempfile::tempdir().unwrap();
        let (low, up) = (t.path().join("low"), t.path().join("up"));
        fs::create_dir_all(low.join("etc")).unwrap();
        copy_up_dir(&low.join("etc"), &up.join("etc"));
        fs::write(up.join("etc/hostname"), "").unwrap();
        fs::write(up.join("etc/resolv.conf"), "").unwrap();
        // An image without /etc: the runtime creates it for /etc/hosts.
        let low2 = t.path().join("low2");
        fs::create_dir_all(&low2).unwrap();
        assert!(changes(&up, &Lowers(vec![low])).unwrap().is_empty());
        assert!(changes(&up, &Lowers(vec![low2])).unwrap().is_empty());
    }

    #[test]
    fn mode_change_of_a_dir_is_a_change() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let (low, up) = (t.path().join("low"), t.path().join("up"));
        fs::create_dir_all(low.join("tmp")).unwrap();
        copy_up_dir(&low.join("tmp"), &up.join("tmp"));
        fs::set_permissions(up.join("tmp"), fs::Permissions::from_mode(0o700)).unwrap();
        let got = changes(&up, &Lowers(vec![low])).unwrap();
        assert_eq!(kinds(&got), ["C /tmp"]);
    }

    #[test]
    fn lookup_merges_layers_top_first() {
        let t = tempfile::tempdir().unwrap();
        let (top, bottom) = (t.path().join("top"), t.path().join("bottom"));
        fs::create_dir_all(bottom.join("d")).unwrap();
        fs::write(bottom.join("d/low"), "l").unwrap();
        fs::create_dir_all(&top).unwrap();
        // A file in a higher layer hides the lower directory's contents.
        fs::write(top.join("d"), "file").unwrap();
        let l = Lowers(vec![top.clone(), bottom.clone()]);
        assert!(l.lookup(Path::new("d")).unwrap().is_file());
        assert!(l.lookup(Path::new("d/low")).is_none());
        let l = Lowers(vec![bottom]);
        assert!(l.lookup(Path::new("d/low")).is_some());
        assert!(l.lookup(Path::new("nope")).is_none());
        assert_eq!(
            l.children(Path::new("d")).into_iter().collect::<Vec<_>>(),
            [OsString::from("low")]
        );
    }

    #[test]
    fn hides_runtime_paths() {
        assert!(is_hidden(Path::new("etc/hosts")));
        assert!(is_hidden(Path::new("proc")));
        assert!(is_hidden(Path::new("dev/shm")));
        assert!(!is_hidden(Path::new("etc/passwd")));
        assert!(!is_hidden(Path::new("devices")));
    }

    #[test]
    #[ignore = "needs root: creates overlayfs whiteouts and opaque dirs"]
    fn whiteouts_are_deletions_and_opaque_dirs_hide_lower_children() {
        crate::local::files::tests::require_root();
        let t = tempfile::tempdir().unwrap();
        let (low, up) = (t.path().join("low"), t.path().join("up"));
        fs::create_dir_all(low.join("bin")).unwrap();
        fs::write(low.join("bin/yes"), "y").unwrap();
        fs::create_dir_all(low.join("opq")).unwrap();
        fs::write(low.join("opq/old"), "o").unwrap();
        fs::write(low.join("opq/kept"), "k").unwrap();
        let old = filetime::FileTime::from_unix_time(1_000_000, 0);
        filetime::set_file_mtime(low.join("opq/kept"), old).unwrap();
        copy_up_dir(&low.join("bin"), &up.join("bin"));
        corral_sys::mount::create_whiteout(&up.join("bin/yes")).unwrap();
        // A whiteout for something the lower layers never had is not a deletion.
        corral_sys::mount::create_whiteout(&up.join("bin/ghost")).unwrap();
        copy_up_dir(&low.join("opq"), &up.join("opq"));
        corral_sys::mount::set_opaque(&up.join("opq")).unwrap();
        fs::write(up.join("opq/kept"), "k").unwrap();
        let got = changes(&up, &Lowers(vec![low])).unwrap();
        assert_eq!(
            kinds(&got),
            [
                "C /bin",
                "D /bin/yes",
                "C /opq",
                "C /opq/kept",
                "D /opq/old"
            ]
        );
    }
}
