//! Deleting directory trees off the path of a request: move them aside at once, delete later.
//!
//! Removing a container deletes a few dozen files; on a loaded disk each unlink can take
//! milliseconds, and `docker rm`/`run --rm` waited for all of them. A tree is instead renamed
//! into a trash directory on the same file system (one `rename`, atomic: the name is free
//! again immediately and nothing half-deleted is ever visible) and deleted by a background
//! thread. What a crash leaves in the trash is deleted at the next start ([`empty`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Moves `dir` into `trash` (created if missing) under a fresh name and returns that path;
/// `None` when `dir` does not exist or cannot be moved there (another file system, no
/// permission): the caller then deletes it in place.
pub fn move_into(dir: &Path, trash: &Path) -> Option<PathBuf> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    if !dir.exists() || std::fs::create_dir_all(trash).is_err() {
        return None;
    }
    let name = format!(
        "{}.{}.{}",
        dir.file_name()?.to_string_lossy(),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let target = trash.join(name);
    std::fs::rename(dir, &target).ok().map(|()| target)
}

/// Deletes `paths` (trees moved by [`move_into`]) on a background thread; failures are
/// logged, and what is left is deleted by the next [`empty`].
pub fn delete_later(paths: Vec<PathBuf>) {
    if paths.is_empty() {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("corral-trash".into())
        .spawn(move || delete_now(&paths));
    if let Err(err) = spawned {
        tracing::warn!(error = %err, "could not start the trash thread; deleting trash later");
    }
}

/// Deletes everything in `trash` (left by a crash or a stop before the background deletion
/// finished), on a background thread.
pub fn empty(trash: &Path) {
    let Ok(entries) = std::fs::read_dir(trash) else {
        return;
    };
    delete_later(entries.filter_map(|e| e.ok().map(|e| e.path())).collect());
}

fn delete_now(paths: &[PathBuf]) {
    for path in paths {
        if let Err(err) = std::fs::remove_dir_all(path) {
            if err.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %path.display(), error = %err, "deleting trash");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moved_trees_leave_their_name_free_and_are_deleted() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("c1");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/f"), b"x").unwrap();
        let trash = root.path().join("trash");
        let moved = move_into(&dir, &trash).unwrap();
        assert!(!dir.exists());
        assert!(moved.starts_with(&trash) && moved.join("sub/f").is_file());
        // The name is free at once: a new tree may take it.
        std::fs::create_dir(&dir).unwrap();
        delete_now(std::slice::from_ref(&moved));
        assert!(!moved.exists());
        assert!(move_into(&root.path().join("missing"), &trash).is_none());
    }

    #[test]
    fn empty_deletes_what_a_crash_left() {
        let root = tempfile::tempdir().unwrap();
        let trash = root.path().join("trash");
        std::fs::create_dir_all(trash.join("old/deep")).unwrap();
        let entries: Vec<PathBuf> = std::fs::read_dir(&trash)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        delete_now(&entries);
        assert_eq!(std::fs::read_dir(&trash).unwrap().count(), 0);
    }
}
