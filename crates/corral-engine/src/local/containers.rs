//! Container lifecycle: create, start, stop, kill, pause, rename, remove, and the monitor
//! that records exits.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use corral_core::{
    ContainerId, ContainerName, ContainerRecord, ContainerSpec, ContainerState, ContainerStatus,
};
use corral_oci::{Digest, Reference};
use corral_runtime::shim::{RuntimeKind, ShimArgs, ShimClient, SECCOMP_PROGRAM_FILE};
use corral_runtime::spec::{
    self, MountKind, NamespaceMode, NetworkFiles, ResolvedMount, SpecInput,
};
use serde_json::Value;

use super::{blocking, Entry, LocalEngine, RuntimeConfig, TRASH_SUBDIR};
use crate::api::{Created, ExitStatus, WaitCondition, WaitFuture};
use crate::error::{io, Error, Result};

/// Seconds `stop` waits after the stop signal when nothing else is configured.
const DEFAULT_STOP_TIMEOUT: i64 = 10;

/// Parses `SIGTERM`, `TERM`, `term` or `15`.
pub(crate) fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(Error::InvalidInput(format!("Invalid signal: {s}")));
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let n = match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "TRAP" => 5,
        "ABRT" | "IOT" => 6,
        "BUS" => 7,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "STKFLT" => 16,
        "CHLD" => 17,
        "CONT" => 18,
        "STOP" => 19,
        "TSTP" => 20,
        "TTIN" => 21,
        "TTOU" => 22,
        "URG" => 23,
        "XCPU" => 24,
        "XFSZ" => 25,
        "VTALRM" => 26,
        "PROF" => 27,
        "WINCH" => 28,
        "IO" | "POLL" => 29,
        "PWR" => 30,
        "SYS" => 31,
        _ => {
            if let Some(rest) = name.strip_prefix("RTMIN+") {
                return rest
                    .parse::<i32>()
                    .ok()
                    .filter(|n| (0..=30).contains(n))
                    .map(|n| 34 + n)
                    .ok_or_else(|| Error::InvalidInput(format!("Invalid signal: {s}")));
            }
            return Err(Error::InvalidInput(format!("Invalid signal: {s}")));
        }
    };
    Ok(n)
}

fn image_cfg<'a>(config: &'a Value, key: &str) -> Option<&'a Value> {
    config
        .get("config")
        .and_then(|c| c.get(key))
        .filter(|v| !v.is_null())
}

fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    v.and_then(|v| v.as_array()).map(|a| {
        a.iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect()
    })
}

/// Merges the image config into the spec, as dockerd stores a container's `Config`.
fn merge_image_config(spec: &mut ContainerSpec, config: &Value) {
    let entry_overridden = spec.entrypoint.is_some();
    if spec.entrypoint.is_none() {
        spec.entrypoint = strings(image_cfg(config, "Entrypoint"));
    }
    if spec.cmd.is_none() && !entry_overridden {
        spec.cmd = strings(image_cfg(config, "Cmd"));
    }
    if spec.working_dir.is_none() {
        spec.working_dir = image_cfg(config, "WorkingDir")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
    }
    if spec.user.is_none() {
        spec.user = image_cfg(config, "User")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
    }
    if spec.stop_signal.is_none() {
        spec.stop_signal = image_cfg(config, "StopSignal")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
    }
    if let Some(labels) = image_cfg(config, "Labels").and_then(|v| v.as_object()) {
        for (k, v) in labels {
            if let Some(v) = v.as_str() {
                spec.labels.entry(k.clone()).or_insert_with(|| v.to_owned());
            }
        }
    }
    for key in ["ExposedPorts", "Volumes"] {
        if let Some(m) = image_cfg(config, key).and_then(|v| v.as_object()) {
            let list = if key == "Volumes" {
                &mut spec.volumes
            } else {
                &mut spec.exposed_ports
            };
            for k in m.keys() {
                if !list.contains(k) {
                    list.push(k.clone());
                }
            }
        }
    }
}

/// Docker's text for a name already taken.
fn name_conflict(name: &str, owner: &ContainerId) -> Error {
    Error::Conflict(format!(
        "Conflict. The container name \"/{name}\" is already in use by container \"{owner}\". You have to remove (or rename) that container to be able to reuse that name."
    ))
}

impl LocalEngine {
    fn runtime_for(&self, spec: &ContainerSpec) -> Result<(String, RuntimeConfig)> {
        let name = spec
            .host
            .runtime
            .clone()
            .unwrap_or_else(|| self.inner.cfg.default_runtime.clone());
        let rt = self.inner.cfg.runtimes.get(&name).cloned().ok_or_else(|| {
            Error::InvalidInput(format!("unknown or invalid runtime name: {name}"))
        })?;
        Ok((name, rt))
    }

    /// Refuses what this engine cannot honour instead of silently ignoring it.
    fn validate(&self, spec: &ContainerSpec) -> Result<()> {
        self.inner.network.validate_spec(spec)?;
        super::network::validate_ports(spec)?;
        if spec.host.init && init_binary().is_none() {
            return Err(Error::InvalidInput(
                "--init needs a static init binary (Debian package tini provides /usr/bin/tini-static); none was found".into(),
            ));
        }
        super::volumes::validate_spec(spec)?;
        match spec.host.restart_policy.name.as_str() {
            "" | "no" | "always" | "unless-stopped" | "on-failure" => {}
            other => {
                return Err(Error::InvalidInput(format!(
                    "invalid restart policy: {other}"
                )));
            }
        }
        if spec.host.restart_policy.maximum_retry_count != 0
            && spec.host.restart_policy.name != "on-failure"
        {
            return Err(Error::InvalidInput(
                "invalid restart policy: maximum retry count can only be used with 'on-failure'"
                    .to_owned(),
            ));
        }
        self.runtime_for(spec)?;
        // Resource limits are checked at create, as dockerd does, not first at start.
        check_cpusets(&spec.host)?;
        spec::update_resources(&spec.host, host_features()).map_err(corral_runtime::Error::from)?;
        Ok(())
    }

    pub(crate) async fn create(
        &self,
        name: Option<&str>,
        mut spec: ContainerSpec,
    ) -> Result<Created> {
        // A start usually follows: the kernel's cgroup migration lock gets ready meanwhile.
        tokio::task::spawn_blocking(corral_runtime::cgroup::warm_attach_lock);
        let img = self.lookup_image(&spec.image).map_err(|_| {
            let shown = Reference::parse(&spec.image)
                .map(|r| {
                    if r.digest().is_some() {
                        r.to_string()
                    } else {
                        r.familiar()
                    }
                })
                .unwrap_or_else(|_| spec.image.clone());
            Error::NoSuchImage(shown)
        })?;
        let name = match name {
            Some(n) => ContainerName::parse(n).map_err(|_| {
                Error::InvalidInput(format!(
                    "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                ))
            })?,
            None => loop {
                let n = ContainerName::generate();
                if self.lookup(n.as_str()).is_err() {
                    break n;
                }
            },
        };
        let mut warnings = super::limits::discard_unsupported(
            &mut spec.host,
            super::limits::CgroupSupport::host(),
        )?;
        if spec.host.blkio_weight > 0 && !blkio_weight_supported() {
            spec.host.blkio_weight = 0;
            warnings.push(BLKIO_WEIGHT_WARNING.to_owned());
        }
        self.validate(&spec)?;
        merge_image_config(&mut spec, &img.config);
        super::health::merge_image_healthcheck(&mut spec, &img.config)?;
        let proc_args = spec::resolve_process(&spec, &img.config)
            .map_err(|e| Error::InvalidInput(e.to_string()))?;
        let (runtime, _) = self.runtime_for(&spec)?;
        let id = ContainerId::random();
        if let Some(owner) = self
            .inner
            .containers
            .read()
            .iter()
            .find_map(|(id, e)| (e.record.lock().name == name).then(|| id.clone()))
        {
            return Err(name_conflict(name.as_str(), &owner));
        }
        let diff_ids = layer_digests(&img)?;
        let volume_mounts = self.create_volume_mounts(&spec).await?;
        let rec = ContainerRecord {
            id: id.clone(),
            name: name.clone(),
            created: Utc::now(),
            path: proc_args.args.first().cloned().unwrap_or_default(),
            args: proc_args
                .args
                .get(1..)
                .map(<[String]>::to_vec)
                .unwrap_or_default(),
            env: proc_args.env.clone(),
            image_id: img.id.clone(),
            runtime,
            spec,
            state: ContainerState::default(),
            volume_mounts,
        };
        let dir = self.container_dir(&id);
        let (this, id2, rec2) = (self.clone(), id.clone(), rec.clone());
        // One blocking call: the directories, then the record; a failure undoes both.
        let prepared = blocking(move || {
            std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
            let plan = match this.inner.snapshots.prepare(id2.as_str(), &diff_ids) {
                Ok(plan) => plan,
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&dir);
                    return Err(e.into());
                }
            };
            if let Err(e) = this.inner.store.insert_container(&rec2) {
                let _ = this.inner.snapshots.remove(id2.as_str());
                let _ = std::fs::remove_dir_all(&dir);
                return Err(match e {
                    corral_store::Error::Conflict(_) => name_conflict(rec2.name.as_str(), &id2),
                    other => other.into(),
                });
            }
            Ok(plan)
        })
        .await;
        let mut plan = match prepared {
            Ok(plan) => plan,
            Err(e) => {
                self.drop_anonymous(&rec.volume_mounts).await;
                return Err(e);
            }
        };
        let entry = Entry::new(rec.clone());
        self.inner
            .containers
            .write()
            .insert(id.clone(), entry.clone());
        self.container_event(&rec, "create", &[]);
        // As `prepare_bundle` will mount it.
        plan.volatile = rec.spec.host.auto_remove;
        self.premount_rootfs(entry, plan);
        Ok(Created {
            id: id.to_string(),
            warnings,
        })
    }

    /// Writes `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf` for the container.
    fn write_network_files(&self, rec: &ContainerRecord, hostname: &str) -> Result<NetworkFiles> {
        let dir = self.container_dir(&rec.id);
        let h = &rec.spec.host;
        let hostname_path = dir.join("hostname");
        let hosts_path = dir.join("hosts");
        let resolv_path = dir.join("resolv.conf");
        let write = |p: &PathBuf, s: String| {
            std::fs::write(p, s).map_err(io(format!("writing {}", p.display())))
        };
        write(&hostname_path, format!("{hostname}\n"))?;
        let mut hosts = String::from(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
        );
        for e in &h.extra_hosts {
            let (name, ip) = e.split_once(':').ok_or_else(|| {
                Error::InvalidInput(format!("invalid extra host entry {e:?}: expected name:ip"))
            })?;
            hosts.push_str(&format!("{ip}\t{name}\n"));
        }
        write(&hosts_path, hosts)?;
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let mut resolv = String::new();
        // A container on the default bridge also connected to a user-defined network
        // (configured before this start) is served by the embedded DNS, as in dockerd.
        if super::netops::uses_embedded_dns(rec) || self.inner.network.has_user_endpoint(&rec.id) {
            write(
                &resolv_path,
                super::netops::embedded_resolv_conf(&host_resolv, h),
            )?;
            return Ok(NetworkFiles {
                hosts: Some(hosts_path),
                resolv_conf: Some(resolv_path),
                hostname: Some(hostname_path),
            });
        }
        if h.dns.is_empty() {
            for line in host_resolv.lines() {
                let t = line.trim();
                // A loopback resolver on the host is unreachable from a private netns.
                let loopback = t.starts_with("nameserver")
                    && t.split_whitespace()
                        .nth(1)
                        .is_some_and(|ip| ip.starts_with("127.") || ip == "::1");
                if t.starts_with("nameserver")
                    && (!loopback || h.network_mode.as_deref() == Some("host"))
                {
                    resolv.push_str(t);
                    resolv.push('\n');
                }
                if (t.starts_with("search") && h.dns_search.is_empty())
                    || (t.starts_with("options") && h.dns_options.is_empty())
                {
                    resolv.push_str(t);
                    resolv.push('\n');
                }
            }
        } else {
            for d in &h.dns {
                resolv.push_str(&format!("nameserver {d}\n"));
            }
        }
        if !h.dns_search.is_empty() {
            resolv.push_str(&format!("search {}\n", h.dns_search.join(" ")));
        }
        if !h.dns_options.is_empty() {
            resolv.push_str(&format!("options {}\n", h.dns_options.join(" ")));
        }
        write(&resolv_path, resolv)?;
        Ok(NetworkFiles {
            hosts: Some(hosts_path),
            resolv_conf: Some(resolv_path),
            hostname: Some(hostname_path),
        })
    }

    /// Binds and tmpfs mounts from `-v` and `--mount`, validated against the host.
    fn resolve_mounts(rec: &ContainerRecord) -> Result<Vec<ResolvedMount>> {
        let mut out = Vec::new();
        for b in &rec.spec.host.binds {
            let parts: Vec<&str> = b.splitn(3, ':').collect();
            let (src, dst) = match parts.as_slice() {
                [s, d, ..] => (*s, *d),
                _ => {
                    return Err(Error::InvalidInput(format!(
                        "invalid volume specification: '{b}'"
                    )))
                }
            };
            if !src.starts_with('/') {
                // A named volume: resolved by `mount_volumes`.
                continue;
            }
            let mut options: Vec<String> = parts
                .get(2)
                .map(|o| o.split(',').map(str::to_owned).collect())
                .unwrap_or_default();
            options.retain(|o| !o.is_empty());
            let src = PathBuf::from(src);
            if !src.exists() {
                // dockerd creates a missing bind source directory for -v (not for --mount).
                std::fs::create_dir_all(&src)
                    .map_err(io(format!("creating bind source {}", src.display())))?;
            }
            out.push(ResolvedMount {
                source: src,
                destination: dst.to_owned(),
                kind: MountKind::Bind,
                options,
            });
        }
        for m in &rec.spec.host.mounts {
            match m.kind {
                corral_core::MountType::Bind => {
                    let src = PathBuf::from(&m.source);
                    if !src.exists() {
                        return Err(Error::InvalidInput(format!(
                            "invalid mount config for type \"bind\": bind source path does not exist: {}",
                            m.source
                        )));
                    }
                    let mut options = Vec::new();
                    if m.read_only {
                        options.push("ro".to_owned());
                    }
                    out.push(ResolvedMount {
                        source: src,
                        destination: m.target.clone(),
                        kind: MountKind::Bind,
                        options,
                    });
                }
                corral_core::MountType::Tmpfs => {
                    let mut options: Vec<String> =
                        m.options.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    if m.read_only {
                        options.push("ro".to_owned());
                    }
                    out.push(ResolvedMount {
                        source: PathBuf::new(),
                        destination: m.target.clone(),
                        kind: MountKind::Tmpfs,
                        options,
                    });
                }
                // Resolved by `mount_volumes`.
                corral_core::MountType::Volume => {}
            }
        }
        Ok(out)
    }

    /// Mounts the rootfs and writes the OCI bundle; returns the bundle's state dir. With
    /// `precompile_seccomp` (the libcontainer runtime) the bundle also gets the compiled
    /// seccomp program.
    fn prepare_bundle(
        &self,
        rec: &ContainerRecord,
        image_config: &Value,
        diff_ids: &[Digest],
        precompile_seccomp: bool,
    ) -> Result<PathBuf> {
        let snaps = &self.inner.snapshots;
        let mut plan = snaps.prepare(rec.id.as_str(), diff_ids)?;
        // An auto-remove container's writable layer goes with it: spare its unmount the
        // upper file system's sync.
        plan.volatile = rec.spec.host.auto_remove;
        snaps.mount(&plan)?;
        let hostname = rec
            .spec
            .hostname
            .clone()
            .unwrap_or_else(|| rec.id.short().to_owned());
        let net = self.connect_network(rec)?;
        let network_files = self.write_network_files(rec, &hostname)?;
        if let (Some((_, Some(ip))), Some(hosts)) = (&net, &network_files.hosts) {
            super::network::append_hosts_line(hosts, *ip, &hostname)?;
        }
        let mut input = SpecInput::new(rec.id.as_str(), &rec.spec, image_config, &plan.rootfs);
        input.hostname = hostname;
        input.network_files = network_files;
        input.cgroups_path = self.cgroups_path(&rec.id);
        input.network = match (rec.spec.host.network_mode.as_deref(), net) {
            (Some("host"), _) => NamespaceMode::Host,
            (_, Some((netns, _))) => NamespaceMode::Join(netns),
            _ => NamespaceMode::Private,
        };
        input.mounts = Self::resolve_mounts(rec)?;
        input.mounts.extend(self.mount_volumes(rec, &plan.rootfs)?);
        // Parents before children, as dockerd sorts mounts, so a volume never hides a bind
        // below it.
        input
            .mounts
            .sort_by_key(|m| std::path::Path::new(&m.destination).components().count());
        input.features = host_features();
        input.init = init_binary();
        // Bad options are the client's (400); a `--device` or `--device-cgroup-rule` that
        // fails here gets dockerd's 500, as dockerd only checks them at start too.
        let oci = spec::build_spec(&input).map_err(|e| match e.kind() {
            corral_core::ErrorKind::Internal => Error::Internal(e.to_string()),
            _ => Error::InvalidInput(e.to_string()),
        })?;
        if let Some(p) = oci.process() {
            let (uid, gid) = (p.user().uid(), p.user().gid());
            spec::ensure_workdir(&plan.rootfs, p.cwd().to_str().unwrap_or("/"), uid, gid)
                .map_err(|e| Error::InvalidInput(e.to_string()))?;
        }
        let state_dir = self.state_dir(&rec.id);
        // A previous run's shim state must not be mistaken for this run's.
        let _ = std::fs::remove_dir_all(&state_dir);
        std::fs::create_dir_all(&state_dir)
            .map_err(io(format!("creating {}", state_dir.display())))?;
        let json = serde_json::to_vec_pretty(&oci).map_err(|e| Error::Internal(e.to_string()))?;
        let cfg = state_dir.join("config.json");
        std::fs::write(&cfg, json).map_err(io(format!("writing {}", cfg.display())))?;
        // libcontainer's init loads a program compiled once per profile instead of compiling
        // the profile on every start; without the file it compiles, so a failure only costs
        // time.
        if precompile_seccomp {
            if let Some(seccomp) = oci.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
                if let Err(e) = corral_runtime::shim::write_seccomp_program(seccomp, &state_dir) {
                    tracing::warn!(container = %rec.id, error = %e.message, "precompiling seccomp");
                    let _ = std::fs::remove_file(state_dir.join(SECCOMP_PROGRAM_FILE));
                }
            }
        }
        Ok(state_dir)
    }

    pub(crate) async fn start(&self, name: &str) -> Result<()> {
        let entry = self.lookup(name)?;
        let res = self.start_entry(&entry).await;
        let rec = entry.snapshot();
        // dockerd removes an auto-remove container whose start failed; `run --rm` waits
        // for that removal.
        if res.is_err() && rec.spec.host.auto_remove && !rec.state.status.is_alive() {
            if let Err(e) = self.remove(rec.id.as_str(), true, true).await {
                tracing::warn!(container = %rec.id, error = %e, "auto-removing after failed start");
            }
        }
        res
    }

    pub(crate) async fn start_entry(&self, entry: &Arc<Entry>) -> Result<()> {
        self.start_entry_as(entry, false).await
    }

    /// Starts a container; `by_policy` lets a restart policy start one that is waiting in
    /// `restarting`, which a user's start leaves alone.
    pub(crate) async fn start_entry_as(&self, entry: &Arc<Entry>, by_policy: bool) -> Result<()> {
        let entry = entry.clone();
        let _op = entry.op.lock().await;
        let rec = entry.snapshot();
        match rec.state.status {
            ContainerStatus::Restarting if by_policy => {}
            ContainerStatus::Running | ContainerStatus::Restarting => {
                return Err(Error::NotModified("container already started".into()))
            }
            ContainerStatus::Paused => {
                return Err(Error::Conflict(
                    "cannot start a paused container, try unpause instead".into(),
                ))
            }
            ContainerStatus::Removing | ContainerStatus::Dead => {
                return Err(Error::Conflict(format!(
                    "container {} is marked for removal and cannot be started",
                    rec.id
                )))
            }
            _ => {}
        }
        // The runtime's cgroup attach comes in a few milliseconds; see `warm_attach_lock`.
        tokio::task::spawn_blocking(corral_runtime::cgroup::warm_attach_lock);
        let img = self
            .inner
            .images
            .read()
            .get(&rec.image_id)
            .cloned()
            .ok_or_else(|| Error::NoSuchImage(rec.image_id.clone()))?;
        let diff_ids = layer_digests(&img)?;
        let (_, runtime) = self.runtime_for(&rec.spec)?;
        let this = self.clone();
        let rec2 = rec.clone();
        let precompile = matches!(runtime, RuntimeConfig::Libcontainer);
        let bundle = tokio::task::spawn_blocking(move || {
            this.prepare_bundle(&rec2, &img.config, &diff_ids, precompile)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
        let state_dir = match bundle {
            Ok(d) => d,
            Err(e) => {
                self.record_start_failure(&entry, &e.to_string(), 128).await;
                return Err(e);
            }
        };
        let mut args = ShimArgs::new(
            rec.id.as_str(),
            &state_dir,
            &state_dir,
            self.log_path(&rec.id),
        );
        match &runtime {
            RuntimeConfig::Libcontainer => {
                args.runtime = RuntimeKind::Libcontainer;
                args.runtime_root = self.inner.cfg.run_dir.join("runtime").join("libcontainer");
            }
            RuntimeConfig::External { path } => {
                args.runtime = RuntimeKind::Runc;
                args.runtime_path = path.clone();
                args.runtime_root = self.inner.cfg.run_dir.join("runtime").join(&rec.runtime);
            }
        }
        let (max_size, max_files) = self.log_limits(&rec)?;
        args.log_max_size = max_size;
        args.log_max_files = max_files;
        args.tty = rec.spec.tty;
        args.stdin = rec.spec.open_stdin;
        // With no attach client to connect first, the shim starts the container as soon as
        // it is created: one round trip less. An attach that comes meanwhile joins a running
        // container, as one that comes after a start does.
        args.start = entry.pending_attach.lock().is_empty();
        let shim = match ShimClient::launch(&self.inner.cfg.shim_exe, &args).await {
            Ok(s) => s,
            Err(e) => {
                let (msg, code) = match &e {
                    corral_runtime::shim::ShimError::Create {
                        message, exit_code, ..
                    } => (message.clone(), *exit_code),
                    other => (other.to_string(), 128),
                };
                self.record_start_failure(&entry, &msg, code).await;
                return Err(Error::StartFailed(msg));
            }
        };
        // Attaches that arrived before start connect now, so no output is lost.
        let pending = std::mem::take(&mut *entry.pending_attach.lock());
        for (opts, tx) in pending {
            let io = self.attach_shim(&shim, &rec, opts).await;
            let _ = tx.send(io);
        }
        if args.start {
            // Started by the shim already.
        } else if let Err(e) = shim.start().await {
            let _ = shim.kill(9, true).await;
            let msg = e.to_string();
            self.record_start_failure(&entry, &msg, 128).await;
            return Err(Error::StartFailed(msg));
        }
        let pid = shim.init_pid().as_raw();
        let shim_pid = shim.shim_pid().as_raw();
        *entry.shim.lock() = Some(shim.clone());
        self.update(&entry, |r| {
            r.state.status = ContainerStatus::Running;
            r.state.pid = i64::from(pid);
            r.state.shim_pid = i64::from(shim_pid);
            r.state.started_at = Some(Utc::now());
            r.state.error.clear();
            r.state.exit_code = 0;
            r.state.oom_killed = false;
            r.state.stopped_by_user = false;
            super::health::reset_on_start(r);
        })
        .await?;
        entry.run.send_modify(|s| s.running = true);
        self.health_start(&entry);
        self.container_event(&entry.snapshot(), "start", &[]);
        self.spawn_monitor(entry.clone(), shim);
        Ok(())
    }

    fn log_limits(&self, rec: &ContainerRecord) -> Result<(u64, u32)> {
        let o = &rec.spec.host.log_config.options;
        let size = match o.get("max-size") {
            Some(s) => parse_size(s)
                .ok_or_else(|| Error::InvalidInput(format!("invalid log-opt max-size: {s}")))?,
            None => self.inner.cfg.log_max_size,
        };
        let files = match o.get("max-file") {
            Some(s) => s
                .parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| Error::InvalidInput(format!("invalid log-opt max-file: {s}")))?,
            None => self.inner.cfg.log_max_files,
        };
        Ok((size, files))
    }

    /// Unmounts a container's rootfs on the blocking pool (an unmount can hang on a busy
    /// or remote filesystem).
    pub(crate) async fn unmount_rootfs(&self, id: &ContainerId) -> Result<()> {
        let (this, id) = (self.clone(), id.clone());
        blocking(move || Ok(this.inner.snapshots.unmount(id.as_str())?)).await
    }

    async fn record_start_failure(&self, entry: &Arc<Entry>, msg: &str, code: i32) {
        // Attach sessions waiting for this start end now.
        entry.pending_attach.lock().clear();
        let id = entry.record.lock().id.clone();
        self.disconnect_network(&id).await;
        // Every failed start leaves the rootfs and volumes unmounted, whichever step failed.
        if let Err(e) = self.unmount_rootfs(&id).await {
            tracing::debug!(container = %id, error = %e, "unmounting after a failed start");
        }
        self.release_volumes(&entry.snapshot()).await;
        let res = self
            .update(entry, |r| {
                r.state.error = msg.to_owned();
                r.state.exit_code = i64::from(code);
                if r.state.status != ContainerStatus::Created {
                    r.state.status = ContainerStatus::Exited;
                }
            })
            .await;
        if let Err(e) = res {
            tracing::warn!(error = %e, "recording start failure");
        }
    }

    /// Watches a run until it exits, then records the exit and applies `--rm`.
    pub(crate) fn spawn_monitor(&self, entry: Arc<Entry>, shim: ShimClient) {
        let this = self.clone();
        self.inner.spawn_task(async move {
            let status = match shim.wait().await {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "lost the shim; reading its exit file");
                    ShimClient::read_exit(shim.state_dir()).await.ok().flatten()
                }
            };
            this.record_exit(&entry, status).await;
        });
    }

    /// Records how a run ended: the shim's exit record, or (when the shim vanished without
    /// one) code 255 at the current time.
    pub(crate) async fn record_exit(
        &self,
        entry: &Arc<Entry>,
        exit: Option<corral_runtime::shim::ExitStatus>,
    ) {
        let status = exit.map_or(
            ExitStatus {
                code: 255,
                oom_killed: false,
            },
            |s| ExitStatus {
                code: i64::from(s.code),
                oom_killed: s.oom_killed,
            },
        );
        let finished_at = exit.map_or_else(Utc::now, |s| s.finished_at);
        *entry.shim.lock() = None;
        let id = entry.record.lock().id.clone();
        self.health_stop(&id);
        self.drop_execs_of(&id);
        if exit.is_none() {
            // The shim vanished without its exit record, so it did not delete the
            // container: kill what is left of it and remove its cgroup.
            self.remove_orphaned_cgroup(&id).await;
        }
        let auto_remove =
            entry.snapshot().spec.host.auto_remove && !entry.user_restart.load(Ordering::SeqCst);
        // A `--rm` container's rootfs is unmounted by its removal below.
        if !auto_remove {
            if let Err(e) = self.unmount_rootfs(&id).await {
                tracing::warn!(container = %id, error = %e, "unmounting rootfs");
            }
        }
        self.unmount_volumes(&entry.snapshot()).await;
        self.disconnect_network(&id).await;
        entry.edit(|r| {
            r.state.status = ContainerStatus::Exited;
            r.state.exit_code = status.code;
            r.state.oom_killed = status.oom_killed;
            r.state.pid = 0;
            r.state.shim_pid = 0;
            r.state.finished_at = Some(finished_at);
        });
        // A `--rm` container's record is deleted just below: its exit is not written first.
        // Should the daemon stop before the deletion, the stored record still reads running
        // and the next start's `restore` finds the shim gone and comes back here.
        if !auto_remove {
            self.save_exit(entry, &id).await;
        }
        let rec = entry.snapshot();
        if status.oom_killed {
            self.container_event(&rec, "oom", &[]);
        }
        self.container_event(&rec, "die", &[("exitCode", status.code.to_string())]);
        entry.run.send_modify(|s| {
            s.exits += 1;
            s.running = false;
            s.last = Some((status.code, status.oom_killed));
        });
        if auto_remove {
            if let Err(e) = self.remove(id.as_str(), true, true).await {
                tracing::warn!(container = %id, error = %e, "auto-removing");
                // The container stays: its exit is stored after all, its rootfs unmounted.
                if let Err(e) = self.unmount_rootfs(&id).await {
                    tracing::warn!(container = %id, error = %e, "unmounting rootfs");
                }
                self.save_exit(entry, &id).await;
            }
        } else {
            self.maybe_restart(entry).await;
        }
    }

    async fn save_exit(&self, entry: &Arc<Entry>, id: &ContainerId) {
        if let Err(e) = self.save(entry).await {
            tracing::warn!(container = %id, error = %e, "recording exit");
        }
    }

    fn live_shim(&self, entry: &Arc<Entry>) -> Result<ShimClient> {
        let rec = entry.snapshot();
        match entry.shim.lock().clone() {
            Some(s) if rec.state.status.is_alive() => Ok(s),
            _ => Err(Error::Conflict(format!(
                "Container {} is not running",
                rec.id
            ))),
        }
    }

    pub(crate) async fn kill(&self, name: &str, signal: Option<&str>) -> Result<()> {
        let entry = self.lookup(name)?;
        let sig = parse_signal(signal.unwrap_or("SIGKILL"))?;
        let rec = entry.snapshot();
        let shim = self.live_shim(&entry).map_err(|_| {
            Error::Conflict(format!(
                "Cannot kill container: {name}: Container {} is not running",
                rec.id
            ))
        })?;
        shim.kill(sig, false).await?;
        if rec.state.status == ContainerStatus::Paused && sig == 9 {
            let _ = shim.resume().await;
        }
        self.container_event(&rec, "kill", &[("signal", sig.to_string())]);
        Ok(())
    }

    /// Waits up to `timeout` for the run that is live now to end.
    async fn wait_exit(&self, entry: &Arc<Entry>, timeout: Duration) -> bool {
        let mut rx = entry.run.subscribe();
        let res = tokio::time::timeout(timeout, rx.wait_for(|s| !s.running)).await;
        matches!(res, Ok(Ok(_)))
    }

    pub(crate) async fn stop(
        &self,
        name: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        let entry = self.lookup(name)?;
        let _op = entry.op.lock().await;
        self.stop_locked(&entry, timeout, signal).await
    }

    async fn stop_locked(
        &self,
        entry: &Arc<Entry>,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        if self.cancel_restart(entry).await {
            // Stopped while waiting to be restarted: it stays stopped.
            self.update(entry, |r| r.state.stopped_by_user = true)
                .await?;
            self.container_event(&entry.snapshot(), "stop", &[]);
            return Ok(());
        }
        let rec = entry.snapshot();
        let Ok(shim) = self.live_shim(entry) else {
            return Err(Error::NotModified("container already stopped".into()));
        };
        let sig = parse_signal(
            signal
                .or(rec.spec.stop_signal.as_deref())
                .unwrap_or("SIGTERM"),
        )?;
        let t = timeout
            .or(rec.spec.stop_timeout)
            .unwrap_or(DEFAULT_STOP_TIMEOUT);
        self.update(entry, |r| r.state.stopped_by_user = true)
            .await?;
        if rec.state.status == ContainerStatus::Paused {
            let _ = shim.resume().await;
        }
        if let Err(e) = shim.kill(sig, false).await {
            tracing::debug!(error = %e, "stop signal");
        }
        self.container_event(&rec, "kill", &[("signal", sig.to_string())]);
        // A negative timeout waits for as long as it takes, as `docker stop -t -1` does.
        let patience = if t < 0 {
            Duration::from_secs(u64::from(u32::MAX))
        } else {
            Duration::from_secs(t.unsigned_abs())
        };
        if !self.wait_exit(entry, patience).await {
            let _ = shim.kill(9, true).await;
            self.container_event(&rec, "kill", &[("signal", "9".into())]);
            if !self.wait_exit(entry, Duration::from_secs(30)).await {
                return Err(Error::Internal(format!(
                    "container {} did not exit after SIGKILL",
                    rec.id
                )));
            }
        }
        self.container_event(&entry.snapshot(), "stop", &[]);
        Ok(())
    }

    pub(crate) async fn restart(&self, name: &str, timeout: Option<i64>) -> Result<()> {
        let entry = self.lookup(name)?;
        // The stop's exit must not auto-remove a `--rm` container that is restarted; it is
        // removed if the start fails (`start`) or when it next exits.
        entry.user_restart.store(true, Ordering::SeqCst);
        let stopped = {
            let _op = entry.op.lock().await;
            match self.stop_locked(&entry, timeout, None).await {
                Ok(()) | Err(Error::NotModified(_)) => Ok(()),
                Err(e) => Err(e),
            }
        };
        let id = entry.record.lock().id.to_string();
        let started = match stopped {
            Ok(()) => self.start(&id).await,
            Err(e) => Err(e),
        };
        entry.user_restart.store(false, Ordering::SeqCst);
        started?;
        self.container_event(&entry.snapshot(), "restart", &[]);
        Ok(())
    }

    pub(crate) async fn pause(&self, name: &str, pause: bool) -> Result<()> {
        let entry = self.lookup(name)?;
        let _op = entry.op.lock().await;
        let rec = entry.snapshot();
        let shim = self.live_shim(&entry)?;
        match (pause, rec.state.status) {
            (true, ContainerStatus::Paused) => {
                return Err(Error::Conflict(format!(
                    "Container {} is already paused",
                    rec.id
                )))
            }
            (false, ContainerStatus::Running) => {
                return Err(Error::Conflict(format!(
                    "Container {} is not paused",
                    rec.id
                )))
            }
            _ => {}
        }
        if pause {
            shim.pause().await?;
        } else {
            shim.resume().await?;
        }
        // The container may have exited meanwhile (`record_exit` does not wait for `op`):
        // its recorded exit stays.
        let mut alive = false;
        self.update(&entry, |r| {
            alive = r.state.status.is_alive();
            if alive {
                r.state.status = if pause {
                    ContainerStatus::Paused
                } else {
                    ContainerStatus::Running
                };
            }
        })
        .await?;
        if pause {
            self.health_stop(&rec.id);
        } else if alive {
            self.health_start(&entry);
        }
        self.container_event(&rec, if pause { "pause" } else { "unpause" }, &[]);
        Ok(())
    }

    pub(crate) async fn rename(&self, name: &str, new_name: &str) -> Result<()> {
        let entry = self.lookup(name)?;
        let new = ContainerName::parse(new_name).map_err(|_| {
            Error::InvalidInput(format!(
                "Invalid container name ({new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            ))
        })?;
        // Check and claim the name under the table's lock, so two renames (or a rename and
        // a create) cannot both take it; only the name changes, never the rest of a record
        // that state updates may be writing meanwhile.
        let old = {
            let all = self.inner.containers.write();
            if entry.record.lock().name == new {
                return Err(Error::Conflict(
                    "Renaming a container with the same name as its current name".to_owned(),
                ));
            }
            if let Some(owner) = all
                .iter()
                .find_map(|(id, e)| (e.record.lock().name == new).then(|| id.clone()))
            {
                return Err(name_conflict(new.as_str(), &owner));
            }
            let mut guard = entry.record.lock();
            let rec = Arc::make_mut(&mut guard);
            std::mem::replace(&mut rec.name, new.clone())
        };
        if let Err(e) = self.save(&entry).await {
            {
                let mut guard = entry.record.lock();
                let rec = Arc::make_mut(&mut guard);
                if rec.name == new {
                    rec.name = old.clone();
                }
            }
            // A concurrent save may have written the new name meanwhile.
            if let Err(e2) = self.save(&entry).await {
                tracing::warn!(error = %e2, "restoring the name after a failed rename");
            }
            return Err(e);
        }
        self.refresh_dns();
        self.container_event(
            &entry.snapshot(),
            "rename",
            &[("oldName", format!("/{old}"))],
        );
        Ok(())
    }

    /// Registers a waiter now and returns the future that resolves when `condition` holds:
    /// the baseline for `next-exit` is taken before the caller answers its client, so a
    /// container started (and ended) right after cannot be missed.
    pub(crate) fn wait(&self, name: &str, condition: WaitCondition) -> Result<WaitFuture> {
        let entry = self.lookup(name)?;
        let mut rx = entry.run.subscribe();
        let start = *rx.borrow();
        Ok(Box::pin(async move {
            let done = |s: &super::RunState| match condition {
                WaitCondition::NotRunning => !s.running,
                WaitCondition::NextExit => s.exits > start.exits,
                WaitCondition::Removed => s.removed,
            };
            // `remove` publishes `removed` before the entry goes; a closed channel means
            // the same.
            let s = match rx.wait_for(done).await {
                Ok(s) => *s,
                Err(_) => super::RunState {
                    removed: true,
                    ..start
                },
            };
            let (code, oom) = s.last.unwrap_or((0, false));
            ExitStatus {
                code,
                oom_killed: oom,
            }
        }))
    }

    pub(crate) async fn remove(&self, name: &str, force: bool, volumes: bool) -> Result<()> {
        let entry = self.lookup(name)?;
        self.cancel_restart(&entry).await;
        let _op = entry.op.lock().await;
        let rec = entry.snapshot();
        if rec.state.status.is_alive() {
            if !force {
                // dockerd 20.10's wording (the reference the tests are checked against).
                return Err(Error::Conflict(format!(
                    "You cannot remove a running container {}. Stop the container before attempting removal or force remove",
                    rec.id
                )));
            }
            if let Ok(shim) = self.live_shim(&entry) {
                let _ = shim.kill(9, true).await;
                self.container_event(&rec, "kill", &[("signal", "9".into())]);
                if rec.state.status == ContainerStatus::Paused {
                    let _ = shim.resume().await;
                }
                if !self.wait_exit(&entry, Duration::from_secs(30)).await {
                    return Err(Error::Internal(format!(
                        "container {} did not exit after SIGKILL",
                        rec.id
                    )));
                }
            }
        }
        if self.inner.containers.read().get(&rec.id).is_none() {
            // Already removed meanwhile (e.g. by --rm).
            return Ok(());
        }
        let (this, id) = (self.clone(), rec.id.clone());
        // One blocking call: the record's deletion, then (only once it is gone) the files.
        blocking(move || {
            this.inner.store.delete_container(&id)?;
            // Moved aside now, deleted in the background: the request does not wait for
            // the unlinks (see `corral_image::trash`).
            let data_trash = this.inner.cfg.data_dir.join(TRASH_SUBDIR);
            let run_trash = this.inner.cfg.run_dir.join(TRASH_SUBDIR);
            let mut moved = Vec::new();
            // `remove_into` unmounts first (and leaves the rootfs alone if that fails).
            match this.inner.snapshots.remove_into(id.as_str(), &data_trash) {
                Ok(Some(path)) => moved.push(path),
                Ok(None) => {}
                Err(e) => tracing::warn!(container = %id, error = %e, "removing rootfs"),
            }
            for (dir, trash) in [
                (this.container_dir(&id), &data_trash),
                (this.state_dir(&id), &run_trash),
            ] {
                match corral_image::trash::move_into(&dir, trash) {
                    Some(path) => moved.push(path),
                    None => {
                        let _ = std::fs::remove_dir_all(&dir);
                    }
                }
            }
            corral_image::trash::delete_later(moved);
            Ok(())
        })
        .await?;
        self.inner.containers.write().remove(&rec.id);
        self.disconnect_network(&rec.id).await;
        self.container_event(&rec, "destroy", &[]);
        if volumes {
            self.drop_anonymous(&rec.volume_mounts).await;
        }
        entry.run.send_modify(|s| s.removed = true);
        Ok(())
    }

    pub(crate) async fn prune_stopped(&self) -> Result<Vec<String>> {
        let stopped: Vec<String> = self
            .inner
            .containers
            .read()
            .values()
            .filter_map(|e| {
                let r = e.record.lock();
                (!r.state.status.is_alive()).then(|| r.id.to_string())
            })
            .collect();
        let mut out = Vec::new();
        for id in stopped {
            if self.remove(&id, false, false).await.is_ok() {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// Re-adopts a container after a daemon start: reconnects to a live shim, or records
    /// the exit that happened while the daemon was away.
    pub(crate) async fn restore(&self, entry: Arc<Entry>) {
        let rec = entry.snapshot();
        if !rec.state.status.is_alive() {
            return;
        }
        let dir = self.state_dir(&rec.id);
        match ShimClient::connect(&dir).await {
            Ok(shim) => {
                tracing::info!(container = %rec.id, "re-adopted running container");
                let (this, r) = (self.clone(), rec.clone());
                if let Err(e) = super::blocking(move || {
                    this.adopt_volumes(&r);
                    Ok(())
                })
                .await
                {
                    tracing::warn!(container = %rec.id, error = %e, "re-adopting volumes");
                }
                *entry.shim.lock() = Some(shim.clone());
                entry.run.send_modify(|s| s.running = true);
                self.health_restore(&entry).await;
                self.spawn_monitor(entry, shim);
            }
            Err(e) => {
                let exit = ShimClient::read_exit(&dir).await.ok().flatten();
                let code = exit.map_or(255, |s| s.code);
                tracing::info!(container = %rec.id, error = %e, code, "container ended while the daemon was away");
                self.record_exit(&entry, exit).await;
            }
        }
    }

    /// Kills the processes left in a container's cgroup and removes the cgroup, for a
    /// container whose shim is gone.
    async fn remove_orphaned_cgroup(&self, id: &ContainerId) {
        let path = self.cgroups_path(id);
        let (p, cid) = (path.clone(), id.to_string());
        let res = super::blocking(move || {
            if corral_runtime::cgroup::exists(&p) {
                corral_runtime::cgroup::kill_and_remove(&p, &cid)
                    .map_err(corral_runtime::Error::from)?;
                return Ok(true);
            }
            Ok(false)
        })
        .await;
        match res {
            Ok(true) => {
                tracing::info!(container = %id, cgroup = %path, "removed the cgroup its vanished shim left")
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(container = %id, error = %e, "removing the cgroup of a vanished shim")
            }
        }
    }

    /// The container's disk use: the apparent size of its writable layer's files, and
    /// that plus its image's size (0 for a layer not made yet).
    pub(crate) async fn container_size(
        &self,
        rec: &ContainerRecord,
    ) -> Result<crate::ContainerSize> {
        let image = self
            .inner
            .images
            .read()
            .get(&rec.image_id)
            .map_or(0, |i| i.size);
        let upper = PathBuf::from(&self.paths(rec)["upper"]);
        let rw = tokio::task::spawn_blocking(move || {
            if upper.is_dir() {
                corral_volume::disk_usage(&upper)
            } else {
                Ok(0)
            }
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
        Ok(crate::ContainerSize {
            rw,
            root_fs: rw + image,
        })
    }

    /// The container's cgroup path (the spec's `linux.cgroupsPath`).
    pub(crate) fn cgroups_path(&self, id: &impl std::fmt::Display) -> String {
        format!("/corral-{}/{}", self.inner.cfg.instance, id)
    }

    pub(crate) fn paths(&self, rec: &ContainerRecord) -> BTreeMap<&'static str, String> {
        let dir = self.container_dir(&rec.id);
        let s = |p: PathBuf| p.display().to_string();
        let snap = self
            .inner
            .cfg
            .data_dir
            .join("image")
            .join("containers")
            .join(rec.id.as_str());
        let mut m = BTreeMap::new();
        m.insert("hosts", s(dir.join("hosts")));
        m.insert("resolv", s(dir.join("resolv.conf")));
        m.insert("hostname", s(dir.join("hostname")));
        m.insert("log", s(self.log_path(&rec.id)));
        m.insert("rootfs", s(snap.join("rootfs")));
        m.insert("upper", s(snap.join("upper")));
        m.insert("work", s(snap.join("work")));
        m
    }
}

/// The image's layer diff ids, lowest first.
pub(crate) fn layer_digests(img: &corral_core::ImageRecord) -> Result<Vec<Digest>> {
    img.layers
        .iter()
        .map(|l| {
            Digest::parse(&l.diff_id).map_err(|e| Error::Internal(format!("image {}: {e}", img.id)))
        })
        .collect()
}

/// Parses Docker's sizes: `10m`, `1g`, `512k`, `100` (bytes).
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1024u64),
        'm' => (&s[..s.len() - 1], 1024 * 1024),
        'g' => (&s[..s.len() - 1], 1024 * 1024 * 1024),
        _ => (s, 1),
    };
    let n: f64 = num.parse().ok()?;
    // Log sizes are far below 2^53 bytes, so the float product is exact enough and in range.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let bytes = (n * mult as f64).round() as u64;
    (n >= 0.0 && n.is_finite()).then_some(bytes)
}

/// The static init binary `--init` runs as pid 1 (tini, as Docker's docker-init is).
fn init_binary() -> Option<PathBuf> {
    [
        "/usr/bin/tini-static",
        "/usr/bin/docker-init",
        "/usr/libexec/docker/docker-init",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

/// What this host lets containers have: cgroup layout, swap accounting, and the daemon's
/// own open-files hard limit and capability bounding set (a container cannot get more).
/// Read once per daemon: none of it changes while the daemon runs (its limits and bounding
/// set are its own; the cgroup layout would need the hierarchies remounted under it).
pub(super) fn host_features() -> spec::HostFeatures {
    static FEATURES: std::sync::OnceLock<spec::HostFeatures> = std::sync::OnceLock::new();
    *FEATURES.get_or_init(read_host_features)
}

fn read_host_features() -> spec::HostFeatures {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let nofile_hard = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|x| x.starts_with("Max open files"))
                .and_then(|x| x.split_whitespace().nth(4))
                .and_then(|v| v.parse::<u64>().ok())
        });
    spec::HostFeatures {
        swap_limit: swap_limit_supported(),
        cgroup_v2: is_pure_cgroup_v2(),
        nofile_limit: Some(
            nofile_hard.map_or(spec::DEFAULT_NOFILE, |h| h.min(spec::DEFAULT_NOFILE)),
        ),
        capability_bound: spec::bounding_set_from_status(&status, "CapBnd"),
        blkio_weight: blkio_weight_supported(),
    }
}

/// Whether the block I/O controller takes a weight (dockerd's `sysInfo.BlkioWeight`).
pub(crate) fn blkio_weight_supported() -> bool {
    if is_pure_cgroup_v2() {
        return std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .is_ok_and(|c| c.split_whitespace().any(|x| x == "io"));
    }
    std::path::Path::new("/sys/fs/cgroup/blkio/blkio.weight").exists()
}

/// The CPUs and memory nodes the host offers containers (the cpuset cgroup root's).
pub(crate) fn available_cpusets() -> (String, String) {
    let read = |v1: &str, v2: &str| {
        std::fs::read_to_string(v1)
            .or_else(|_| std::fs::read_to_string(v2))
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    };
    (
        read(
            "/sys/fs/cgroup/cpuset/cpuset.cpus",
            "/sys/fs/cgroup/cpuset.cpus.effective",
        ),
        read(
            "/sys/fs/cgroup/cpuset/cpuset.mems",
            "/sys/fs/cgroup/cpuset.mems.effective",
        ),
    )
}

/// dockerd's checks of `--cpuset-cpus`/`--cpuset-mems` against what the host offers.
pub(crate) fn check_cpusets(host: &corral_core::container::HostSpec) -> Result<()> {
    if host.cpuset_cpus.is_empty() && host.cpuset_mems.is_empty() {
        return Ok(());
    }
    let (cpus, mems) = available_cpusets();
    if !host.cpuset_cpus.is_empty() {
        spec::check_cpuset_available("CPUs", &host.cpuset_cpus, &cpus)
            .map_err(corral_runtime::Error::from)?;
    }
    if !host.cpuset_mems.is_empty() {
        spec::check_cpuset_available("memory nodes", &host.cpuset_mems, &mems)
            .map_err(corral_runtime::Error::from)?;
    }
    Ok(())
}

/// dockerd's warning when `--blkio-weight` cannot be applied and is dropped.
pub(crate) const BLKIO_WEIGHT_WARNING: &str =
    "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.";

fn is_pure_cgroup_v2() -> bool {
    std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// Whether the memory cgroup accounts swap: dockerd's `SwapLimit` in `/info`.
pub(crate) fn swap_limit_supported() -> bool {
    std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
        || std::path::Path::new("/sys/fs/cgroup/memory.swap.max").exists()
        || (is_pure_cgroup_v2() && super::limits::CgroupSupport::host().memory)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_signals_like_docker() {
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("term").unwrap(), 15);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("SIGRTMIN+1").unwrap(), 35);
        assert!(parse_signal("SIGNOPE").is_err());
        assert!(parse_signal("0").is_err());
    }

    #[test]
    fn parses_log_sizes() {
        assert_eq!(parse_size("10m"), Some(10 * 1024 * 1024));
        assert_eq!(parse_size("1k"), Some(1024));
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("x"), None);
    }

    #[test]
    fn merges_image_config_like_dockerd() {
        let img = serde_json::json!({"config": {"Entrypoint": ["/e"], "Cmd": ["c"], "WorkingDir": "/w",
            "User": "app", "Labels": {"a": "1"}, "StopSignal": "SIGQUIT", "Volumes": {"/data": {}}}});
        let mut s = ContainerSpec {
            image: "x".into(),
            ..Default::default()
        };
        merge_image_config(&mut s, &img);
        assert_eq!(s.entrypoint.as_deref(), Some(&["/e".to_string()][..]));
        assert_eq!(s.cmd.as_deref(), Some(&["c".to_string()][..]));
        assert_eq!(s.working_dir.as_deref(), Some("/w"));
        assert_eq!(s.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(s.volumes, vec!["/data".to_string()]);
        // A new entrypoint drops the image's cmd.
        let mut s = ContainerSpec {
            image: "x".into(),
            entrypoint: Some(vec!["sh".into()]),
            ..Default::default()
        };
        merge_image_config(&mut s, &img);
        assert_eq!(s.cmd, None);
        let mut s = ContainerSpec {
            image: "x".into(),
            labels: [("a".to_string(), "2".to_string())].into(),
            ..Default::default()
        };
        merge_image_config(&mut s, &img);
        assert_eq!(s.labels["a"], "2");
    }
}
