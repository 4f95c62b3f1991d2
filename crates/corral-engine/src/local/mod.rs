//! [`LocalEngine`]: the default [`Engine`](crate::Engine) for one host.

mod archive;
mod containers;
mod exec;
mod files;
mod health;
mod images;
mod limits;
mod netops;
mod network;
mod push;
mod resolve;
mod restart;
mod stats;
mod streams;
#[cfg(test)]
mod tests;
mod trait_impl;
mod update;
mod volumes;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use corral_core::{ContainerId, ContainerRecord, ContainerStatus, ImageRecord};
use corral_image::{ImageStore, Puller, PullerConfig, Snapshotter};
use corral_runtime::shim::ShimClient;
use corral_store::{SqliteStore, StateStore};
use corral_sys::mount::{LinuxMounts, Mounts};
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use crate::api::{AttachIo, AttachOptions};
use crate::error::{io, Error, Result};
use crate::events::EventBus;

/// An OCI runtime the engine can run containers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeConfig {
    /// youki's libcontainer inside the shim (the default).
    Libcontainer,
    /// An external binary with runc's command line.
    External {
        /// Path to the binary.
        path: PathBuf,
    },
}

/// Validated configuration of a [`LocalEngine`].
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Persistent state root.
    pub data_dir: PathBuf,
    /// Runtime state root (sockets, bundles).
    pub run_dir: PathBuf,
    /// Instance name; cgroups live under `corral-<instance>`.
    pub instance: String,
    /// The `corral` binary, re-executed as the shim.
    pub shim_exe: PathBuf,
    /// Runtime used when a container names none.
    pub default_runtime: String,
    /// Registered runtimes by name.
    pub runtimes: BTreeMap<String, RuntimeConfig>,
    /// Registries reached over plain HTTP besides loopback.
    pub insecure_registries: Vec<String>,
    /// Default log file size limit.
    pub log_max_size: u64,
    /// Default number of log files.
    pub log_max_files: u32,
}

/// Per-container runtime state lives in `<run-dir>/c/<id>`: short, because the shim's
/// socket path inside it must fit in `sockaddr_un` (108 bytes, unix(7)).
const STATE_SUBDIR: &str = "c";
/// Where removed containers' directories wait for background deletion (under the data and
/// the run directory: a move stays on one file system).
pub(crate) const TRASH_SUBDIR: &str = "trash";

/// The longest `--run-dir` whose shim socket paths (`<run-dir>/c/<64 hex>/shim.sock`) fit
/// in `sockaddr_un.sun_path` with its terminating NUL.
pub const MAX_RUN_DIR_LEN: usize = 107 - "/c/".len() - 64 - "/shim.sock".len();

/// What a waiter sees of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct RunState {
    /// How many times it has exited since the daemon knew it.
    pub(crate) exits: u64,
    /// Whether a process is live.
    pub(crate) running: bool,
    /// The last exit.
    pub(crate) last: Option<(i64, bool)>,
    /// Removed from the engine.
    pub(crate) removed: bool,
}

/// An attach that arrived before the container started.
pub(crate) type PendingAttach = (
    AttachOptions,
    tokio::sync::oneshot::Sender<Result<AttachIo>>,
);

/// One container's live bookkeeping.
pub(crate) struct Entry {
    /// The current record. Readers take the `Arc` (a reference count, no copy); writers
    /// go through [`Entry::edit`], which copies the record only while a reader still holds
    /// an older version (copy on write).
    pub(crate) record: Mutex<Arc<ContainerRecord>>,
    /// Numbers the record's snapshots taken for saving (taken under `record`'s lock), so
    /// a save that reaches SQLite after a newer one is dropped instead of undoing it.
    pub(crate) write_seq: AtomicU64,
    /// The newest snapshot written to the store; held across the (blocking) write.
    pub(crate) written_seq: Mutex<u64>,
    /// Serialises lifecycle operations (start, stop, remove) on this container.
    pub(crate) op: tokio::sync::Mutex<()>,
    pub(crate) run: watch::Sender<RunState>,
    pub(crate) pending_attach: Mutex<Vec<PendingAttach>>,
    /// The shim of the current run, while one is live.
    pub(crate) shim: Mutex<Option<ShimClient>>,
    /// The restart policy's current backoff delay.
    pub(crate) backoff: Mutex<std::time::Duration>,
    /// A policy restart waiting for its backoff to pass.
    pub(crate) pending_restart: Mutex<Option<tokio::task::AbortHandle>>,
    /// A user's `restart` is under way: the exit it causes does not auto-remove (`--rm`),
    /// as in dockerd.
    pub(crate) user_restart: std::sync::atomic::AtomicBool,
}

impl Entry {
    fn new(record: ContainerRecord) -> Arc<Self> {
        let running = record.state.status.is_alive();
        let (run, _) = watch::channel(RunState {
            running,
            last: Some((record.state.exit_code, record.state.oom_killed)),
            ..Default::default()
        });
        Arc::new(Self {
            record: Mutex::new(Arc::new(record)),
            write_seq: AtomicU64::new(0),
            written_seq: Mutex::new(0),
            op: tokio::sync::Mutex::new(()),
            run,
            pending_attach: Mutex::new(Vec::new()),
            shim: Mutex::new(None),
            backoff: Mutex::new(std::time::Duration::ZERO),
            pending_restart: Mutex::new(None),
            user_restart: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// An owned copy of the record, for callers that change it.
    pub(crate) fn snapshot(&self) -> ContainerRecord {
        ContainerRecord::clone(&self.record.lock())
    }

    /// The current record, shared: no copy.
    pub(crate) fn shared(&self) -> Arc<ContainerRecord> {
        self.record.lock().clone()
    }

    /// Changes the record in place under its lock (copying it first only if a reader still
    /// holds the current version).
    pub(crate) fn edit<R>(&self, f: impl FnOnce(&mut ContainerRecord) -> R) -> R {
        f(Arc::make_mut(&mut self.record.lock()))
    }

    /// The record and its write sequence number, taken together.
    fn snapshot_for_write(&self) -> (Arc<ContainerRecord>, u64) {
        let rec = self.record.lock();
        let seq = self.write_seq.fetch_add(1, Ordering::Relaxed) + 1;
        (rec.clone(), seq)
    }
}

/// The default engine: images, runtime and state on this host.
#[derive(Clone)]
pub struct LocalEngine {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) cfg: EngineConfig,
    pub(crate) store: Arc<dyn StateStore>,
    pub(crate) image_store: Arc<ImageStore>,
    pub(crate) snapshots: Snapshotter,
    pub(crate) puller: Puller,
    pub(crate) containers: RwLock<BTreeMap<ContainerId, Arc<Entry>>>,
    pub(crate) images: RwLock<BTreeMap<String, ImageRecord>>,
    pub(crate) events: EventBus,
    pub(crate) execs: Mutex<BTreeMap<String, Arc<exec::ExecEntry>>>,
    pub(crate) tasks: Mutex<tokio::task::JoinSet<()>>,
    pub(crate) volumes: volumes::Volumes,
    pub(crate) network: network::Networking,
    /// Health monitors of running containers.
    pub(crate) health: Mutex<BTreeMap<ContainerId, health::Monitor>>,
}

/// Runs blocking work (filesystem, mounts, SQLite) on tokio's blocking pool, so a slow
/// disk or a hung mount never occupies a worker thread that serves other requests.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
}

// === impl Inner ===

impl Inner {
    /// Spawns a background task owned by the engine (aborted at shutdown), first collecting
    /// finished ones, which keep their slot in the set until joined.
    pub(crate) fn spawn_task(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock();
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task);
    }
}

// === impl LocalEngine ===

impl LocalEngine {
    /// Opens the engine's state under the configured directories and re-adopts containers
    /// whose shims survived a daemon restart.
    pub async fn open(cfg: EngineConfig) -> Result<Self> {
        for d in [
            cfg.data_dir.clone(),
            cfg.data_dir.join("containers"),
            cfg.run_dir.join(STATE_SUBDIR),
        ] {
            std::fs::create_dir_all(&d).map_err(io(format!("creating {}", d.display())))?;
        }
        // Trees a previous run moved aside but had not deleted yet.
        corral_image::trash::empty(&cfg.data_dir.join(TRASH_SUBDIR));
        corral_image::trash::empty(&cfg.run_dir.join(TRASH_SUBDIR));
        let db = cfg.data_dir.join("state.db");
        let store: Arc<dyn StateStore> = Arc::new(
            tokio::task::spawn_blocking(move || SqliteStore::open(&db))
                .await
                .map_err(|e| Error::Internal(e.to_string()))??,
        );
        let image_root = cfg.data_dir.join("image");
        let image_store = Arc::new(ImageStore::open(&image_root)?);
        let mounts: Arc<dyn Mounts> = Arc::new(LinuxMounts::new());
        let snapshots = Snapshotter::new(&image_root, mounts.clone())?;
        let puller = Puller::new(
            image_store.clone(),
            PullerConfig {
                insecure_registries: cfg.insecure_registries.clone(),
                ..PullerConfig::default()
            },
        );
        let images = store
            .images()?
            .into_iter()
            .map(|i| (i.id.clone(), i))
            .collect();
        let records = store.containers()?;
        let volumes = volumes::Volumes::open(&cfg.data_dir, store.as_ref(), mounts)?;
        let network = {
            let (store, run_dir, instance) =
                (store.clone(), cfg.run_dir.clone(), cfg.instance.clone());
            tokio::task::spawn_blocking(move || {
                network::Networking::open(store, &run_dir, &instance)
            })
            .await
            .map_err(|e| Error::Internal(e.to_string()))??
        };
        let events = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || EventBus::open(store))
                .await
                .map_err(|e| Error::Internal(e.to_string()))??
        };
        let inner = Arc::new(Inner {
            cfg,
            store,
            image_store,
            snapshots,
            puller,
            containers: RwLock::new(BTreeMap::new()),
            images: RwLock::new(images),
            events,
            health: Mutex::new(BTreeMap::new()),
            execs: Mutex::new(BTreeMap::new()),
            tasks: Mutex::new(tokio::task::JoinSet::new()),
            volumes,
            network,
        });
        let engine = Self { inner };
        for rec in records {
            let entry = Entry::new(rec);
            let id = entry.record.lock().id.clone();
            engine.inner.containers.write().insert(id, entry.clone());
            engine.restore(entry.clone()).await;
            // A reboot-like start: nothing of the container survived; its policy decides.
            let rec = entry.snapshot();
            if !rec.state.status.is_alive() && restart::restart_on_daemon_start(&rec) {
                let e2 = engine.clone();
                tokio::spawn(async move {
                    if let Err(e) = e2.start_entry(&entry).await {
                        tracing::warn!(container = %rec.id, error = %e, "restart on daemon start");
                    }
                });
            }
        }
        // Volumes whose users all ended while the daemon was away are mounted still.
        let e2 = engine.clone();
        blocking(move || {
            e2.unmount_idle_volumes();
            Ok(())
        })
        .await?;
        // Live restore: containers that kept running get their DNS listener back.
        let e2 = engine.clone();
        tokio::task::spawn_blocking(move || e2.restore_dns())
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        Ok(engine)
    }

    /// Stops background work. Containers and their shims keep running (live restore).
    pub async fn shutdown(&self) {
        let mut set = std::mem::take(&mut *self.inner.tasks.lock());
        set.abort_all();
        while set.join_next().await.is_some() {}
        for (_, monitor) in std::mem::take(&mut *self.inner.health.lock()) {
            monitor.stop();
        }
        let this = self.clone();
        let _ = tokio::task::spawn_blocking(move || {
            this.inner.network.shutdown();
            this.inner.events.close();
        })
        .await;
    }

    /// Persists a container's current record. Saves of one container reach the store in
    /// the order their snapshots were taken: a save overtaken by a newer one (whose
    /// snapshot already holds its change) writes nothing.
    pub(crate) async fn save(&self, entry: &Arc<Entry>) -> Result<()> {
        let (rec, seq) = entry.snapshot_for_write();
        let store = self.inner.store.clone();
        let entry = entry.clone();
        blocking(move || {
            let mut written = entry.written_seq.lock();
            if *written > seq {
                return Ok(());
            }
            store.update_container(&rec)?;
            *written = seq;
            Ok(())
        })
        .await
    }

    /// Mutates a record, persists it, then publishes the change to waiters.
    pub(crate) async fn update<F>(&self, entry: &Arc<Entry>, f: F) -> Result<()>
    where
        F: FnOnce(&mut ContainerRecord),
    {
        entry.edit(f);
        self.save(entry).await
    }

    pub(crate) fn container_dir(&self, id: &ContainerId) -> PathBuf {
        self.inner.cfg.data_dir.join("containers").join(id.as_str())
    }

    pub(crate) fn state_dir(&self, id: &ContainerId) -> PathBuf {
        self.inner.cfg.run_dir.join(STATE_SUBDIR).join(id.as_str())
    }

    pub(crate) fn log_path(&self, id: &ContainerId) -> PathBuf {
        self.container_dir(id).join(format!("{id}-json.log"))
    }

    /// Container event with Docker's actor attributes (name, image, labels).
    pub(crate) fn container_event(
        &self,
        rec: &ContainerRecord,
        action: &str,
        extra: &[(&str, String)],
    ) {
        let mut attrs: BTreeMap<String, String> = rec.spec.labels.clone();
        attrs.insert("name".into(), rec.name.to_string());
        attrs.insert("image".into(), rec.spec.image.clone());
        for (k, v) in extra {
            attrs.insert((*k).to_owned(), v.clone());
        }
        self.inner
            .events
            .publish("container", action, rec.id.as_str(), attrs);
    }

    pub(crate) fn counts(&self) -> (usize, usize, usize, usize) {
        let all = self.inner.containers.read();
        let mut running = 0;
        let mut paused = 0;
        for e in all.values() {
            match e.record.lock().state.status {
                ContainerStatus::Running | ContainerStatus::Restarting => running += 1,
                ContainerStatus::Paused => paused += 1,
                _ => {}
            }
        }
        (all.len(), running, paused, all.len() - running - paused)
    }
}
