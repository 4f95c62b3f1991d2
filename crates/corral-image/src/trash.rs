//! Deleting directory trees off the path of a request: move them aside at once, delete later.
//!
//! Removing a container deletes a few dozen files; on a loaded disk each unlink can take
//! milliseconds, and `docker rm`/`run --rm` waited for all of them. A tree is instead renamed
//! into a trash directory on the same file system (one `rename`, atomic: the name is free
//! again immediately and nothing half-deleted is ever visible) and deleted by one background
//! thread. What a crash leaves in the trash is deleted at the next start ([`empty`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use parking_lot::Mutex;

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

/// Deletes `paths` (trees moved by [`move_into`]) on the process's one trash thread, in the
/// order given (a mass removal queues its trees rather than starting a thread each);
/// failures are logged, and what is left is deleted by the next [`empty`].
pub fn delete_later(paths: Vec<PathBuf>) {
    static QUEUE: Mutex<Option<mpsc::Sender<Vec<PathBuf>>>> = Mutex::new(None);
    if paths.is_empty() {
        return;
    }
    let mut queue = QUEUE.lock();
    // No thread yet, or it is gone: start one and hand it the paths.
    let paths = match queue.as_ref() {
        Some(tx) => match tx.send(paths) {
            Ok(()) => return,
            Err(mpsc::SendError(paths)) => paths,
        },
        None => paths,
    };
    let (tx, rx) = mpsc::channel::<Vec<PathBuf>>();
    let spawned = std::thread::Builder::new()
        .name("corral-trash".into())
        .spawn(move || {
            for batch in rx {
                delete_now(&batch);
            }
        });
    match spawned {
        Ok(_) => {
            let _ = tx.send(paths);
            *queue = Some(tx);
        }
        Err(err) => {
            tracing::warn!(error = %err, "could not start the trash thread; deleting trash later");
        }
    }
}

/// Deletes everything in `trash` (left by a crash or a stop before the background deletion
/// finished), on the trash thread.
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
    fn the_trash_thread_deletes_queued_batches() {
        let root = tempfile::tempdir().unwrap();
        let trash = root.path().join("trash");
        let mut moved = Vec::new();
        for i in 0..3 {
            let dir = root.path().join(format!("c{i}"));
            std::fs::create_dir_all(dir.join("sub")).unwrap();
            moved.push(move_into(&dir, &trash).unwrap());
        }
        delete_later(moved[..1].to_vec());
        delete_later(moved[1..].to_vec());
        // Up to 10 s for the background thread.
        for _ in 0..1000 {
            if moved.iter().all(|p| !p.exists()) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(moved.iter().all(|p| !p.exists()), "trash left: {moved:?}");
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
