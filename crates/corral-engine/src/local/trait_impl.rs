//! `impl Engine for LocalEngine`: the trait surface, delegating to the modules beside it.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use corral_core::{ContainerRecord, ContainerSpec, ImageRecord};
use tokio::sync::mpsc;

use super::LocalEngine;
use crate::api::*;
use crate::error::{Error, Result};
use crate::events::Event;

/// The host's IPv4 forwarding switch, as dockerd reads it for `/info`.
const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

#[async_trait]
impl Engine for LocalEngine {
    async fn pull_image(
        &self,
        reference: &str,
        creds: Credentials,
        progress: mpsc::Sender<Progress>,
    ) -> Result<ImageRecord> {
        self.pull(reference, creds, progress).await
    }

    async fn push_image(
        &self,
        reference: &str,
        creds: Credentials,
        progress: mpsc::Sender<Progress>,
    ) -> Result<Pushed> {
        self.push(reference, creds, progress).await
    }

    async fn images(&self) -> Result<Vec<ImageRecord>> {
        Ok(self.inner.images.read().values().cloned().collect())
    }

    async fn image(&self, name: &str) -> Result<ImageRecord> {
        self.lookup_image(name)
    }

    async fn tag_image(&self, name: &str, repo: &str, tag: &str) -> Result<()> {
        self.tag(name, repo, tag).await
    }

    async fn remove_image(&self, name: &str, force: bool) -> Result<Vec<ImageDeleted>> {
        LocalEngine::remove_image(self, name, force).await
    }

    async fn prune_images(&self, all: bool) -> Result<(Vec<ImageDeleted>, u64)> {
        self.prune_unused(all).await
    }

    async fn image_history(&self, name: &str) -> Result<Vec<HistoryEntry>> {
        self.history(name)
    }

    async fn save_images(&self, names: &[String]) -> Result<BoxRead> {
        self.save_archive(names).await
    }

    async fn load_images(&self, tar: BoxRead) -> Result<Vec<String>> {
        self.load_archive(tar).await
    }

    async fn import_image(
        &self,
        tar: BoxRead,
        reference: Option<&str>,
        config: Option<serde_json::Value>,
    ) -> Result<String> {
        self.import(tar, reference, config).await
    }

    async fn create_container(&self, name: Option<&str>, spec: ContainerSpec) -> Result<Created> {
        self.create(name, spec).await
    }

    async fn start_container(&self, name: &str) -> Result<()> {
        self.start(name).await
    }

    async fn stop_container(
        &self,
        name: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        self.stop(name, timeout, signal).await
    }

    async fn kill_container(&self, name: &str, signal: Option<&str>) -> Result<()> {
        self.kill(name, signal).await
    }

    async fn restart_container(&self, name: &str, timeout: Option<i64>) -> Result<()> {
        self.restart(name, timeout).await
    }

    async fn pause_container(&self, name: &str) -> Result<()> {
        self.pause(name, true).await
    }

    async fn unpause_container(&self, name: &str) -> Result<()> {
        self.pause(name, false).await
    }

    async fn rename_container(&self, name: &str, new_name: &str) -> Result<()> {
        self.rename(name, new_name).await
    }

    async fn update_container(&self, name: &str, update: ContainerUpdate) -> Result<Vec<String>> {
        self.update_limits(name, update).await
    }

    async fn wait_container(&self, name: &str, condition: WaitCondition) -> Result<WaitFuture> {
        self.wait(name, condition)
    }

    async fn remove_container(&self, name: &str, force: bool, volumes: bool) -> Result<()> {
        self.remove(name, force, volumes).await
    }

    async fn prune_containers(&self) -> Result<Vec<String>> {
        self.prune_stopped().await
    }

    async fn containers(&self) -> Result<Vec<Arc<ContainerRecord>>> {
        Ok(self
            .inner
            .containers
            .read()
            .values()
            .map(|e| e.shared())
            .collect())
    }

    async fn container(&self, name: &str) -> Result<Arc<ContainerRecord>> {
        Ok(self.lookup(name)?.shared())
    }

    fn container_paths(&self, record: &ContainerRecord) -> BTreeMap<&'static str, String> {
        self.paths(record)
    }

    async fn images_disk_usage(&self) -> Result<ImagesDiskUsage> {
        Ok(LocalEngine::images_disk_usage(self))
    }

    async fn container_size(&self, record: &ContainerRecord) -> Result<ContainerSize> {
        LocalEngine::container_size(self, record).await
    }

    async fn logs(&self, name: &str, opts: LogOptions) -> Result<BoxStream<OutputChunk>> {
        LocalEngine::logs(self, name, opts).await
    }

    async fn attach(&self, name: &str, opts: AttachOptions) -> Result<AttachIo> {
        LocalEngine::attach(self, name, opts).await
    }

    async fn resize_container(&self, name: &str, height: u16, width: u16) -> Result<()> {
        self.resize(name, height, width).await
    }

    async fn top(&self, name: &str, ps_args: Option<&str>) -> Result<ProcessList> {
        LocalEngine::top(self, name, ps_args).await
    }

    async fn changes(&self, name: &str) -> Result<Vec<(String, ChangeKind)>> {
        self.fs_changes(name).await
    }

    async fn export_container(&self, name: &str) -> Result<BoxRead> {
        self.fs_export(name).await
    }

    async fn commit_container(&self, name: &str, opts: CommitOptions) -> Result<String> {
        self.commit(name, opts).await
    }

    async fn archive_get(&self, name: &str, path: &str) -> Result<(serde_json::Value, BoxRead)> {
        self.cp_get(name, path).await
    }

    async fn archive_stat(&self, name: &str, path: &str) -> Result<serde_json::Value> {
        self.cp_stat(name, path).await
    }

    async fn archive_put(&self, name: &str, path: &str, tar: BoxRead) -> Result<()> {
        self.cp_put(name, path, tar).await
    }

    async fn stats(&self, name: &str) -> Result<serde_json::Value> {
        self.container_stats(name).await
    }

    async fn exec_create(&self, name: &str, spec: ExecSpec) -> Result<String> {
        LocalEngine::exec_create(self, name, spec).await
    }

    async fn exec_start(&self, exec_id: &str, detach: bool) -> Result<Option<AttachIo>> {
        LocalEngine::exec_start(self, exec_id, detach).await
    }

    async fn exec_resize(&self, exec_id: &str, height: u16, width: u16) -> Result<()> {
        LocalEngine::exec_resize(self, exec_id, height, width).await
    }

    async fn exec_inspect(&self, exec_id: &str) -> Result<ExecState> {
        LocalEngine::exec_inspect(self, exec_id)
    }

    async fn info(&self) -> Result<HostInfo> {
        let cfg = &self.inner.cfg;
        let this = self.clone();
        let (warnings, swap_limit, ipv4_forwarding) = tokio::task::spawn_blocking(move || {
            let warnings: Vec<String> = this
                .inner
                .network
                .host_firewall_warning()
                .into_iter()
                .map(|w| format!("WARNING: {w}"))
                .collect();
            let forwarding = std::fs::read_to_string(IP_FORWARD).is_ok_and(|s| s.trim() == "1");
            (
                warnings,
                super::containers::swap_limit_supported(),
                forwarding,
            )
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
        Ok(HostInfo {
            warnings,
            swap_limit,
            ipv4_forwarding,
            containers: self.counts(),
            images: self.inner.images.read().len(),
            default_runtime: cfg.default_runtime.clone(),
            runtimes: cfg.runtimes.keys().cloned().collect(),
            data_dir: cfg.data_dir.display().to_string(),
            cgroup_version: if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
                "2".into()
            } else {
                "1".into()
            },
            name: cfg.instance.clone(),
            insecure_registries: cfg.insecure_registries.clone(),
        })
    }

    async fn events(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<(Vec<Event>, tokio::sync::broadcast::Receiver<Event>)> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.inner.events.subscribe(since))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
    }

    async fn login(&self, creds: Credentials) -> Result<String> {
        self.login_check(creds).await
    }

    async fn create_volume(&self, req: VolumeCreate) -> Result<VolumeInfo> {
        self.volume_create(req).await
    }

    async fn volumes(&self, usage: bool) -> Result<Vec<VolumeInfo>> {
        self.volume_list(usage).await
    }

    async fn volume(&self, name: &str) -> Result<VolumeInfo> {
        self.volume_inspect(name).await
    }

    async fn remove_volume(&self, name: &str, force: bool) -> Result<()> {
        self.volume_remove(name, force).await
    }

    async fn prune_volumes(&self, opts: VolumePrune) -> Result<(Vec<String>, u64)> {
        self.volume_prune(opts).await
    }

    fn volume_mountpoint(&self, name: &str) -> String {
        self.inner.volumes.mountpoint(name)
    }

    fn container_networks(&self, record: &ContainerRecord) -> Vec<crate::api::ContainerNetwork> {
        self.networks_of(record)
    }

    async fn networks(&self) -> Result<Vec<crate::api::NetworkInfo>> {
        self.network_list().await
    }

    async fn create_network(&self, req: crate::api::NetworkCreate) -> Result<String> {
        let this = self.clone();
        let res = tokio::task::spawn_blocking(move || this.inner.network.create_network(&req))
            .await
            .map_err(|e| crate::Error::Internal(e.to_string()))?;
        self.flush_net_events();
        res
    }

    async fn remove_network(&self, name: &str) -> Result<()> {
        let (this, name) = (self.clone(), name.to_owned());
        let res = tokio::task::spawn_blocking(move || this.inner.network.remove_network(&name))
            .await
            .map_err(|e| crate::Error::Internal(e.to_string()))?;
        self.flush_net_events();
        res
    }

    async fn connect_network(
        &self,
        network: &str,
        container: &str,
        endpoint: corral_core::EndpointSpec,
    ) -> Result<()> {
        self.network_connect(network, container, endpoint).await
    }

    async fn disconnect_network(&self, network: &str, container: &str, force: bool) -> Result<()> {
        self.network_disconnect(network, container, force).await
    }

    async fn prune_networks(&self, keep: crate::api::NetworkKeep) -> Result<Vec<String>> {
        self.network_prune(keep).await
    }
}
