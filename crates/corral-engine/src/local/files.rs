//! A container's filesystem seen from the host: `diff`, `export`, `cp` (archive stat, get
//! and put), `commit`, and `import` of a root filesystem tarball.
//!
//! The pure parts (change classification, tar layout, path resolution, extraction) live in
//! the submodules and are tested on temp dirs; this file holds the plumbing between the
//! async engine and blocking file-system work: tar streams are produced by a blocking
//! thread into a bounded channel, so large exports stream, and a container's rootfs is
//! mounted for the duration of an operation when the container is not running.

mod archive;
mod changes;
mod image;
mod mounts;
mod ops;
mod tarball;

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use corral_core::ContainerStatus;
use corral_image::RootfsPlan;
use parking_lot::Mutex;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use super::{blocking, Entry, LocalEngine};
use crate::api::BoxRead;
use crate::error::{Error, Result};

/// Chunks in flight between a blocking tar writer and the HTTP body.
const STREAM_DEPTH: usize = 8;
/// Size of the chunks a blocking tar writer sends.
const CHUNK: usize = 64 * 1024;

/// How many file operations use each container rootfs this process mounted (keyed by
/// the rootfs path, unique per data directory), so the last one out unmounts it.
static USERS: LazyLock<Mutex<BTreeMap<PathBuf, usize>>> =
    LazyLock::new(|| Mutex::new(BTreeMap::new()));

/// A `std::io::Write` that sends what it is given down a channel, for a blocking producer
/// feeding an async reader. Fails with `BrokenPipe` once the reader is gone.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs `produce` on a blocking thread and returns what it writes as an async reader. An
/// error it returns reaches the reader as a read error (the stream is cut short).
fn stream_from_blocking<F>(produce: F) -> BoxRead
where
    F: FnOnce(&mut dyn Write) -> io::Result<()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(STREAM_DEPTH);
    let err_tx = tx.clone();
    // The task ends when `produce` does or when the reader is dropped (BrokenPipe).
    tokio::task::spawn_blocking(move || {
        let mut w = io::BufWriter::with_capacity(CHUNK, ChannelWriter { tx });
        let res = produce(&mut w).and_then(|()| w.flush());
        if let Err(e) = res {
            if e.kind() != io::ErrorKind::BrokenPipe {
                tracing::warn!(error = %e, "writing tar stream");
                let _ = err_tx.blocking_send(Err(e));
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Box::pin(tokio_util::io::StreamReader::new(stream))
}

/// A blocking `Read` over an async reader, for use on a `spawn_blocking` thread.
struct BlockingReader {
    inner: BoxRead,
    rt: tokio::runtime::Handle,
}

impl BlockingReader {
    fn new(inner: BoxRead) -> Self {
        Self {
            inner,
            rt: tokio::runtime::Handle::current(),
        }
    }
}

impl Read for BlockingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let inner = &mut self.inner;
        self.rt.block_on(inner.read(buf))
    }
}

/// Keeps a container's merged rootfs mounted while a file operation uses it; unmounts it
/// on drop when this was the last user and the container is not running (a running
/// container's rootfs stays mounted, as its runtime needs it).
pub(crate) struct RootfsGuard {
    engine: LocalEngine,
    entry: Arc<Entry>,
    plan: RootfsPlan,
}

impl RootfsGuard {
    /// The merged rootfs path.
    fn root(&self) -> &std::path::Path {
        &self.plan.rootfs
    }
}

impl Drop for RootfsGuard {
    fn drop(&mut self) {
        let (engine, entry) = (self.engine.clone(), self.entry.clone());
        let plan = self.plan.clone();
        // The count and the unmount happen together under `USERS`, so a new user either
        // counts first (no unmount) or mounts again after the unmount.
        let release = move || {
            let mut users = USERS.lock();
            let last = match users.get_mut(&plan.rootfs) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                _ => {
                    users.remove(&plan.rootfs);
                    true
                }
            };
            let alive = entry.record.lock().state.status.is_alive();
            if last && !alive {
                if let Err(e) = engine.inner.snapshots.unmount(&plan.id) {
                    tracing::warn!(container = %plan.id, error = %e, "unmounting rootfs after file operation");
                }
            }
        };
        // Dropped on a runtime thread: the unmount goes to the blocking pool.
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(release)),
            Err(_) => release(),
        }
    }
}

impl LocalEngine {
    /// Mounts a new container's rootfs in the background, while the client sends its
    /// `start` (the start's own mount then finds it in place). Under the container's
    /// lifecycle lock, and only while it is still the created container it was: a start
    /// or removal that comes first makes it a no-op. A failure is left for the start,
    /// which mounts again and reports it. A created container that is never started keeps
    /// its rootfs mounted until it is removed.
    pub(super) fn premount_rootfs(&self, entry: Arc<Entry>, plan: RootfsPlan) {
        let this = self.clone();
        self.inner.spawn_task(async move {
            let _op = entry.op.lock().await;
            let rec = entry.shared();
            let current = this
                .inner
                .containers
                .read()
                .get(&rec.id)
                .is_some_and(|e| Arc::ptr_eq(e, &entry));
            if !current
                || rec.state.status != ContainerStatus::Created
                || !rec.state.error.is_empty()
            {
                return;
            }
            let engine = this.clone();
            let mounted = blocking(move || {
                // Serialised with file operations' mounts and unmounts.
                let _users = USERS.lock();
                Ok(engine.inner.snapshots.mount(&plan)?)
            })
            .await;
            if let Err(e) = mounted {
                tracing::debug!(container = %rec.id, error = %e, "mounting rootfs ahead of start");
            }
        });
    }

    /// The container's rootfs plan (directories created if missing). Blocking.
    fn rootfs_plan(&self, entry: &Entry) -> Result<RootfsPlan> {
        let rec = entry.snapshot();
        let img = self
            .inner
            .images
            .read()
            .get(&rec.image_id)
            .cloned()
            .ok_or_else(|| Error::NoSuchImage(rec.image_id.clone()))?;
        let diff_ids = super::containers::layer_digests(&img)?;
        Ok(self.inner.snapshots.prepare(rec.id.as_str(), &diff_ids)?)
    }

    /// Mounts the container's rootfs if needed and registers a user of it. Blocking.
    fn hold_rootfs(&self, entry: &Arc<Entry>) -> Result<RootfsGuard> {
        let plan = self.rootfs_plan(entry)?;
        let mut users = USERS.lock();
        self.inner.snapshots.mount(&plan)?;
        *users.entry(plan.rootfs.clone()).or_insert(0) += 1;
        Ok(RootfsGuard {
            engine: self.clone(),
            entry: entry.clone(),
            plan,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Panics unless running as root (privileged tests must not pass vacuously).
    pub(crate) fn require_root() {
        use std::os::unix::fs::MetadataExt;
        let uid = std::fs::metadata("/proc/self")
            .expect("stat /proc/self")
            .uid();
        assert_eq!(uid, 0, "this test needs root");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blocking_producer_streams_to_an_async_reader() {
        let mut r = stream_from_blocking(|w| {
            for i in 0..1000u32 {
                w.write_all(&i.to_le_bytes().repeat(100))?;
            }
            Ok(())
        });
        let mut out = Vec::new();
        r.read_to_end(&mut out).await.unwrap();
        assert_eq!(out.len(), 1000 * 400);
        assert_eq!(&out[400..404], &1u32.to_le_bytes());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn producer_errors_reach_the_reader() {
        let mut r = stream_from_blocking(|w| {
            w.write_all(b"partial")?;
            w.flush()?;
            Err(io::Error::other("disk on fire"))
        });
        let mut out = Vec::new();
        let err = r.read_to_end(&mut out).await.unwrap_err();
        assert!(err.to_string().contains("disk on fire"));
        assert_eq!(out, b"partial");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blocking_reader_reads_an_async_source() {
        let src: BoxRead = Box::pin(&b"hello world"[..]);
        let got = tokio::task::spawn_blocking(move || {
            let mut s = String::new();
            BlockingReader::new(src).read_to_string(&mut s).unwrap();
            s
        });
        // `Handle::current` must be taken on the runtime, not on the blocking thread.
        assert_eq!(got.await.unwrap(), "hello world");
    }
}
