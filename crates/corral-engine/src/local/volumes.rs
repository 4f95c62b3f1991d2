//! Volumes: records in the state store, data through a [`VolumeDriver`], and the hooks
//! containers use (resolve at create, mount and populate at start, unmount when the run
//! ends, release at remove). The driver counts the running containers of each volume, so
//! a volume with mount options is mounted by its first user and unmounted after its last;
//! on daemon start the count is rebuilt from the containers that kept running.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use corral_core::volume::ANONYMOUS_LABEL;
use corral_core::{ContainerRecord, ContainerSpec, MountType, VolumeMount, VolumeRecord};
use corral_runtime::spec::{secure_join, MountKind, ResolvedMount};
use corral_store::StateStore;
use corral_sys::mount::Mounts;
use corral_volume::{LocalDriver, VolumeDriver, LOCAL_DRIVER};
use parking_lot::RwLock;

use super::LocalEngine;
use crate::api::{VolumeCreate, VolumeInfo, VolumePrune};
use crate::error::{Error, Result};

/// The engine's volume bookkeeping: the driver and a cache of the stored records.
pub(crate) struct Volumes {
    driver: Arc<dyn VolumeDriver>,
    records: RwLock<BTreeMap<String, VolumeRecord>>,
    /// Serialises create and remove, so an in-use check and a removal cannot interleave
    /// with a concurrent create of the same name.
    op: tokio::sync::Mutex<()>,
}

impl Volumes {
    /// Loads the records and opens the local driver under `<data-dir>/volumes`, mounting
    /// volume filesystems through `mounts`.
    pub(crate) fn open(
        data_dir: &Path,
        store: &dyn StateStore,
        mounts: Arc<dyn Mounts>,
    ) -> Result<Self> {
        let driver = LocalDriver::new(data_dir.join("volumes"), mounts)?;
        let records = store
            .volumes()?
            .into_iter()
            .map(|v| (v.name.clone(), v))
            .collect();
        Ok(Self {
            driver: Arc::new(driver),
            records: RwLock::new(records),
            op: tokio::sync::Mutex::new(()),
        })
    }

    /// Host path of a volume's data.
    pub(crate) fn mountpoint(&self, name: &str) -> String {
        self.driver.path(name).display().to_string()
    }

    /// The stored options of a volume (none for an unknown one).
    fn options(&self, name: &str) -> BTreeMap<String, String> {
        self.records
            .read()
            .get(name)
            .map(|r| r.options.clone())
            .unwrap_or_default()
    }

    /// Mounts volume `name` for a short-lived `user` (a file operation) and returns its
    /// data directory. Blocking.
    pub(crate) fn hold(&self, name: &str, user: &str) -> Result<PathBuf> {
        Ok(self.driver.mount(name, &self.options(name), user)?)
    }

    /// Releases `user`'s reference to each of `names`; the last user unmounts. Blocking.
    pub(crate) fn release<'a>(&self, names: impl IntoIterator<Item = &'a str>, user: &str) {
        for name in names {
            if let Err(e) = self.driver.unmount(name, user) {
                tracing::warn!(volume = name, container = user, error = %e, "unmounting volume");
            }
        }
    }
}

/// One `-v`/`--mount`/`VOLUME` entry that names a volume (`None` for an anonymous one).
struct VolumeRequest {
    name: Option<String>,
    destination: String,
    read_only: bool,
    no_copy: bool,
    mode: String,
}

/// The volume entries of a spec, in Docker's precedence: binds and `--mount` first, then
/// `Config.Volumes` (image `VOLUME` and `-v /path`) for destinations not yet covered.
fn volume_requests(spec: &ContainerSpec) -> Vec<VolumeRequest> {
    let mut out: Vec<VolumeRequest> = Vec::new();
    let mut taken: Vec<String> = Vec::new();
    for b in &spec.host.binds {
        let parts: Vec<&str> = b.splitn(3, ':').collect();
        if let [src, dst, rest @ ..] = parts.as_slice() {
            taken.push(clean(dst));
            if src.starts_with('/') {
                continue;
            }
            let mode = rest.first().copied().unwrap_or("");
            let opts: Vec<&str> = mode.split(',').collect();
            out.push(VolumeRequest {
                name: Some((*src).to_owned()),
                destination: (*dst).to_owned(),
                read_only: opts.contains(&"ro"),
                no_copy: opts.contains(&"nocopy"),
                // dockerd shows `z` (its default relabel mode) when none is given.
                mode: if mode.is_empty() { "z" } else { mode }.to_owned(),
            });
        }
    }
    for m in &spec.host.mounts {
        taken.push(clean(&m.target));
        if m.kind != MountType::Volume {
            continue;
        }
        out.push(VolumeRequest {
            name: (!m.source.is_empty()).then(|| m.source.clone()),
            destination: m.target.clone(),
            read_only: m.read_only,
            no_copy: m.options.get("nocopy").is_some_and(|v| v != "false"),
            mode: String::new(),
        });
    }
    for dst in &spec.volumes {
        if taken.contains(&clean(dst)) {
            continue;
        }
        taken.push(clean(dst));
        out.push(VolumeRequest {
            name: None,
            destination: dst.clone(),
            read_only: false,
            no_copy: false,
            mode: String::new(),
        });
    }
    out
}

fn clean(p: &str) -> String {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        "/".to_owned()
    } else {
        t.to_owned()
    }
}

/// Refuses volume names dockerd refuses, before anything is created.
pub(crate) fn validate_spec(spec: &ContainerSpec) -> Result<()> {
    for r in volume_requests(spec) {
        if let Some(n) = &r.name {
            corral_volume::validate_name(n)?;
        }
        if !r.destination.starts_with('/') {
            return Err(Error::InvalidInput(format!(
                "invalid mount config for type \"volume\": invalid mount path: '{}' mount path must be absolute",
                r.destination
            )));
        }
    }
    Ok(())
}

fn matches_label(labels: &BTreeMap<String, String>, f: &str) -> bool {
    match f.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(f),
    }
}

impl LocalEngine {
    fn volume_users(&self, name: &str) -> Vec<String> {
        self.inner
            .containers
            .read()
            .values()
            .filter_map(|e| {
                let r = e.record.lock();
                r.volume_mounts
                    .iter()
                    .any(|m| m.name == name)
                    .then(|| r.id.to_string())
            })
            .collect()
    }

    async fn volume_info(&self, record: VolumeRecord, usage: bool) -> Result<VolumeInfo> {
        let size = if usage {
            let driver = self.inner.volumes.driver.clone();
            let name = record.name.clone();
            tokio::task::spawn_blocking(move || driver.usage(&name))
                .await
                .map_err(|e| Error::Internal(e.to_string()))?
                .ok()
        } else {
            None
        };
        Ok(VolumeInfo {
            containers: self.volume_users(&record.name),
            mountpoint: self.inner.volumes.mountpoint(&record.name),
            record,
            size,
        })
    }

    /// Creates the volume unless it exists; returns its record and whether it is new.
    async fn ensure_volume(&self, record: VolumeRecord) -> Result<(VolumeRecord, bool)> {
        let vols = &self.inner.volumes;
        let _op = vols.op.lock().await;
        let existing = vols.records.read().get(&record.name).cloned();
        if let Some(existing) = existing {
            // dockerd reports `create` for every reference, also to an existing volume.
            self.volume_event(&existing.name, "create", &[]);
            return Ok((existing, false));
        }
        let driver = vols.driver.clone();
        let store = self.inner.store.clone();
        let rec = record.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            driver.create(&rec.name, &rec.options)?;
            if let Err(e) = store.insert_volume(&rec) {
                let _ = driver.remove(&rec.name);
                return Err(e.into());
            }
            Ok(())
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
        vols.records
            .write()
            .insert(record.name.clone(), record.clone());
        self.volume_event(&record.name, "create", &[]);
        Ok((record, true))
    }

    fn volume_event(&self, name: &str, action: &str, extra: &[(&str, String)]) {
        let mut attrs = BTreeMap::new();
        attrs.insert("driver".to_owned(), LOCAL_DRIVER.to_owned());
        for (k, v) in extra {
            attrs.insert((*k).to_owned(), v.clone());
        }
        self.inner.events.publish("volume", action, name, attrs);
    }

    pub(crate) async fn volume_create(&self, req: VolumeCreate) -> Result<VolumeInfo> {
        let driver = req.driver.unwrap_or_else(|| LOCAL_DRIVER.to_owned());
        if driver != LOCAL_DRIVER {
            return Err(Error::NotFound(format!(
                "error looking up volume plugin {driver}: plugin \"{driver}\" not found"
            )));
        }
        let mut labels = req.labels;
        let name = match req.name.filter(|n| !n.is_empty()) {
            Some(n) => n,
            None => {
                labels.insert(ANONYMOUS_LABEL.to_owned(), String::new());
                corral_volume::anonymous_name()
            }
        };
        corral_volume::validate_name(&name)?;
        let (rec, _) = self
            .ensure_volume(VolumeRecord {
                name,
                driver,
                created: Utc::now(),
                labels,
                options: req.options,
            })
            .await?;
        self.volume_info(rec, false).await
    }

    pub(crate) async fn volume_list(&self, usage: bool) -> Result<Vec<VolumeInfo>> {
        let recs: Vec<VolumeRecord> = self
            .inner
            .volumes
            .records
            .read()
            .values()
            .cloned()
            .collect();
        let mut out = Vec::with_capacity(recs.len());
        for r in recs {
            out.push(self.volume_info(r, usage).await?);
        }
        Ok(out)
    }

    pub(crate) async fn volume_inspect(&self, name: &str) -> Result<VolumeInfo> {
        let rec = self
            .inner
            .volumes
            .records
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("get {name}: no such volume")))?;
        self.volume_info(rec, false).await
    }

    pub(crate) async fn volume_remove(&self, name: &str, force: bool) -> Result<()> {
        let vols = &self.inner.volumes;
        let _op = vols.op.lock().await;
        if !vols.records.read().contains_key(name) {
            if force {
                return Ok(());
            }
            return Err(Error::NotFound(format!("get {name}: no such volume")));
        }
        let users = self.volume_users(name);
        if !users.is_empty() {
            return Err(Error::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        let driver = vols.driver.clone();
        let store = self.inner.store.clone();
        let n = name.to_owned();
        tokio::task::spawn_blocking(move || -> Result<()> {
            // A filesystem that cannot be unmounted keeps the record, so nothing is lost.
            driver.unmount_idle(&n)?;
            store.delete_volume(&n)?;
            driver.remove(&n)?;
            Ok(())
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
        vols.records.write().remove(name);
        self.volume_event(name, "destroy", &[]);
        Ok(())
    }

    pub(crate) async fn volume_prune(&self, opts: VolumePrune) -> Result<(Vec<String>, u64)> {
        let candidates: Vec<VolumeRecord> = self
            .inner
            .volumes
            .records
            .read()
            .values()
            .filter(|v| opts.all || v.is_anonymous())
            .filter(|v| opts.labels.iter().all(|f| matches_label(&v.labels, f)))
            .filter(|v| !opts.not_labels.iter().any(|f| matches_label(&v.labels, f)))
            .cloned()
            .collect();
        let mut removed = Vec::new();
        let mut freed = 0;
        for v in candidates {
            if !self.volume_users(&v.name).is_empty() {
                continue;
            }
            let size = self.volume_info(v.clone(), true).await?.size.unwrap_or(0);
            match self.volume_remove(&v.name, false).await {
                Ok(()) => {
                    freed += size;
                    removed.push(v.name);
                }
                Err(e) => tracing::warn!(volume = %v.name, error = %e, "pruning volume"),
            }
        }
        Ok((removed, freed))
    }

    // --- container hooks ---

    /// Creates the named (if missing) and anonymous volumes a new container asks for.
    pub(crate) async fn create_volume_mounts(
        &self,
        spec: &ContainerSpec,
    ) -> Result<Vec<VolumeMount>> {
        let mut out: Vec<VolumeMount> = Vec::new();
        for r in volume_requests(spec) {
            let anonymous = r.name.is_none();
            let mut labels = BTreeMap::new();
            let name = match r.name {
                Some(n) => n,
                None => {
                    labels.insert(ANONYMOUS_LABEL.to_owned(), String::new());
                    corral_volume::anonymous_name()
                }
            };
            let created = self
                .ensure_volume(VolumeRecord {
                    name: name.clone(),
                    driver: LOCAL_DRIVER.to_owned(),
                    created: Utc::now(),
                    labels,
                    options: BTreeMap::new(),
                })
                .await;
            if let Err(e) = created {
                self.drop_anonymous(&out).await;
                return Err(e);
            }
            out.push(VolumeMount {
                name,
                destination: r.destination,
                read_only: r.read_only,
                anonymous,
                no_copy: r.no_copy,
                mode: r.mode,
            });
        }
        Ok(out)
    }

    /// Releases the volumes of a container whose process ended (the last user of a volume
    /// unmounts its filesystem) and publishes `unmount` for each, as dockerd does.
    pub(crate) async fn unmount_volumes(&self, rec: &ContainerRecord) {
        self.release_volumes(rec).await;
        for m in &rec.volume_mounts {
            self.volume_event(&m.name, "unmount", &[("container", rec.id.to_string())]);
        }
    }

    /// Releases the container's references to its volumes without events (a failed
    /// start). Releasing twice is harmless.
    pub(crate) async fn release_volumes(&self, rec: &ContainerRecord) {
        if rec.volume_mounts.is_empty() {
            return;
        }
        let (this, rec) = (self.clone(), rec.clone());
        let res = super::blocking(move || {
            let names = rec.volume_mounts.iter().map(|m| m.name.as_str());
            this.inner.volumes.release(names, rec.id.as_str());
            Ok(())
        })
        .await;
        if let Err(e) = res {
            tracing::warn!(error = %e, "releasing volumes");
        }
    }

    /// Live restore: a container that kept running holds its volumes again. Blocking.
    pub(crate) fn adopt_volumes(&self, rec: &ContainerRecord) {
        let vols = &self.inner.volumes;
        for m in &rec.volume_mounts {
            if let Err(e) = vols
                .driver
                .mount(&m.name, &vols.options(&m.name), rec.id.as_str())
            {
                tracing::warn!(volume = %m.name, container = %rec.id, error = %e, "re-adopting volume");
            }
        }
    }

    /// After live restore: unmounts volume filesystems no running container holds (their
    /// users ended while the daemon was away). Blocking.
    pub(crate) fn unmount_idle_volumes(&self) {
        let vols = &self.inner.volumes;
        let names: Vec<String> = vols
            .records
            .read()
            .values()
            .filter(|r| !r.options.is_empty())
            .map(|r| r.name.clone())
            .collect();
        for name in names {
            if let Err(e) = vols.driver.unmount_idle(&name) {
                tracing::warn!(volume = %name, error = %e, "unmounting idle volume");
            }
        }
    }

    /// Removes the anonymous volumes among `mounts` (after a failed create, or `rm -v`).
    pub(crate) async fn drop_anonymous(&self, mounts: &[VolumeMount]) {
        for m in mounts.iter().filter(|m| m.anonymous) {
            if let Err(e) = self.volume_remove(&m.name, true).await {
                tracing::warn!(volume = %m.name, error = %e, "removing anonymous volume");
            }
        }
    }

    /// Bind mounts for the container's volumes, each mounted for the container (see
    /// [`VolumeDriver::mount`]); populates empty volumes from the image content at their
    /// destination under the mounted `rootfs`, and publishes `mount`. On failure the
    /// volumes taken so far are released again. Blocking.
    pub(crate) fn mount_volumes(
        &self,
        rec: &ContainerRecord,
        rootfs: &Path,
    ) -> Result<Vec<ResolvedMount>> {
        let mut out = Vec::new();
        let mut taken: Vec<&str> = Vec::new();
        for m in &rec.volume_mounts {
            match self.mount_volume(rec, m, rootfs, &mut taken) {
                Ok(mount) => out.push(mount),
                Err(e) => {
                    self.inner.volumes.release(taken, rec.id.as_str());
                    return Err(e);
                }
            }
        }
        for m in &rec.volume_mounts {
            self.volume_event(
                &m.name,
                "mount",
                &[
                    ("container", rec.id.to_string()),
                    ("destination", m.destination.clone()),
                    ("propagation", String::new()),
                    ("read/write", (!m.read_only).to_string()),
                ],
            );
        }
        Ok(out)
    }

    fn mount_volume<'a>(
        &self,
        rec: &ContainerRecord,
        m: &'a VolumeMount,
        rootfs: &Path,
        taken: &mut Vec<&'a str>,
    ) -> Result<ResolvedMount> {
        let vols = &self.inner.volumes;
        let data: PathBuf = vols
            .driver
            .mount(&m.name, &vols.options(&m.name), rec.id.as_str())?;
        taken.push(&m.name);
        // dockerd copies the image content into an empty volume, a bind-type one (whose
        // `_data` shows the host directory) included.
        if !m.no_copy && corral_volume::is_empty_dir(&data)? {
            let src = secure_join(rootfs, &m.destination)
                .map_err(|e| Error::InvalidInput(e.to_string()))?;
            if src.is_dir() {
                tracing::debug!(volume = %m.name, from = %src.display(), "populating volume from image");
                corral_volume::copy_tree(&src, &data)?;
            }
        }
        let mut opts = vec!["rbind".to_owned()];
        if m.read_only {
            opts.push("ro".to_owned());
        }
        Ok(ResolvedMount {
            source: data,
            destination: m.destination.clone(),
            kind: MountKind::Bind,
            options: opts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_core::MountSpec;

    #[test]
    fn volume_requests_follow_docker_precedence() {
        let mut spec = ContainerSpec::default();
        spec.host.binds = vec!["/host:/bind".into(), "data:/data:ro,nocopy".into()];
        spec.host.mounts = vec![
            MountSpec {
                kind: MountType::Volume,
                source: String::new(),
                target: "/anon".into(),
                read_only: true,
                options: BTreeMap::new(),
            },
            MountSpec {
                kind: MountType::Tmpfs,
                source: String::new(),
                target: "/t".into(),
                read_only: false,
                options: BTreeMap::new(),
            },
        ];
        spec.volumes = vec!["/data/".into(), "/bind".into(), "/t".into(), "/img".into()];
        let r = volume_requests(&spec);
        let got: Vec<_> = r
            .iter()
            .map(|r| {
                (
                    r.name.clone(),
                    r.destination.as_str(),
                    r.read_only,
                    r.no_copy,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (Some("data".to_owned()), "/data", true, true),
                (None, "/anon", true, false),
                (None, "/img", false, false),
            ]
        );
        assert!(validate_spec(&spec).is_ok());
        spec.host.binds = vec!["a@b:/x".into()];
        assert!(validate_spec(&spec)
            .unwrap_err()
            .to_string()
            .contains("includes invalid characters"));
    }

    fn config(root: &Path) -> crate::EngineConfig {
        crate::EngineConfig {
            data_dir: root.join("d"),
            run_dir: root.join("r"),
            instance: "voltest".into(),
            shim_exe: PathBuf::from("/bin/false"),
            default_runtime: "runc".into(),
            runtimes: BTreeMap::new(),
            insecure_registries: Vec::new(),
            log_max_size: 0,
            log_max_files: 1,
        }
    }

    #[tokio::test]
    async fn volumes_survive_engine_restart_and_prune_only_anonymous_by_default() {
        let tmp = tempfile::tempdir().unwrap();
        let named;
        {
            let engine = LocalEngine::open(config(tmp.path())).await.unwrap();
            named = engine
                .volume_create(VolumeCreate {
                    name: Some("keep".into()),
                    labels: [("k".to_owned(), "v".to_owned())].into(),
                    ..Default::default()
                })
                .await
                .unwrap();
            let anon = engine.volume_create(VolumeCreate::default()).await.unwrap();
            assert!(anon.record.is_anonymous());
            assert_eq!(anon.record.name.len(), 64);
            std::fs::write(Path::new(&named.mountpoint).join("f"), b"data").unwrap();
            let err = engine
                .volume_create(VolumeCreate {
                    name: Some("x".into()),
                    ..Default::default()
                })
                .await
                .unwrap_err();
            assert!(
                err.to_string().contains("includes invalid characters"),
                "{err}"
            );
            let (pruned, _) = engine.volume_prune(VolumePrune::default()).await.unwrap();
            assert_eq!(pruned, vec![anon.record.name.clone()]);
            assert!(!Path::new(&anon.mountpoint).exists());
            engine.shutdown().await;
        }
        let engine = LocalEngine::open(config(tmp.path())).await.unwrap();
        let all = engine.volume_list(true).await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].record, named.record);
        assert_eq!(all[0].size, Some(4));
        assert_eq!(
            std::fs::read(Path::new(&all[0].mountpoint).join("f")).unwrap(),
            b"data"
        );
        let err = engine.volume_remove("missing", false).await.unwrap_err();
        assert_eq!(err.to_string(), "get missing: no such volume");
        engine.volume_remove("missing", true).await.unwrap();
        engine.volume_remove("keep", false).await.unwrap();
        assert!(engine.volume_list(false).await.unwrap().is_empty());
        assert!(!Path::new(&named.mountpoint).exists());
    }

    #[tokio::test]
    async fn volume_options_are_validated_and_survive_engine_restart() {
        let tmp = tempfile::tempdir().unwrap();
        let opts: BTreeMap<String, String> = [
            ("type", "tmpfs"),
            ("device", "tmpfs"),
            ("o", "size=10m,uid=1000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        {
            let engine = LocalEngine::open(config(tmp.path())).await.unwrap();
            let err = engine
                .volume_create(VolumeCreate {
                    name: Some("bad".into()),
                    options: [("foo".to_owned(), "1".to_owned())].into(),
                    ..Default::default()
                })
                .await
                .unwrap_err();
            assert_eq!(err.to_string(), "create bad: invalid option: \"foo\"");
            assert_eq!(
                corral_core::error::Classify::kind(&err),
                corral_core::ErrorKind::InvalidInput
            );
            assert!(engine.volume_inspect("bad").await.is_err());
            let info = engine
                .volume_create(VolumeCreate {
                    name: Some("tmp".into()),
                    options: opts.clone(),
                    ..Default::default()
                })
                .await
                .unwrap();
            assert_eq!(info.record.options, opts);
            // Nothing is mounted before a container uses it.
            assert!(corral_volume::is_empty_dir(Path::new(&info.mountpoint)).unwrap());
            engine.shutdown().await;
        }
        let engine = LocalEngine::open(config(tmp.path())).await.unwrap();
        assert_eq!(
            engine.volume_inspect("tmp").await.unwrap().record.options,
            opts
        );
    }

    #[test]
    fn label_filters_match_key_or_pair() {
        let l: BTreeMap<String, String> = [("a".to_owned(), "1".to_owned())].into();
        assert!(matches_label(&l, "a"));
        assert!(matches_label(&l, "a=1"));
        assert!(!matches_label(&l, "a=2"));
        assert!(!matches_label(&l, "b"));
    }
}
