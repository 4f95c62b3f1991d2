//! What a container is asked to be ([`ContainerSpec`]) and what it is ([`ContainerState`]).
//!
//! The spec is Corral's own model of Docker's `Config` + `HostConfig`: the Docker API crate
//! translates wire documents into it, compose and the cluster produce it directly.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::id::{ContainerId, ContainerName};

/// Everything needed to create a container, independent of any API's wire format.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerSpec {
    /// The image reference as the user gave it (`busybox`, `reg:5000/a/b@sha256:…`).
    pub image: String,
    /// Overrides the image's entrypoint when set; `Some(vec![])` clears it.
    pub entrypoint: Option<Vec<String>>,
    /// Overrides the image's cmd when set.
    pub cmd: Option<Vec<String>>,
    /// `KEY=value` entries added to (and overriding) the image's environment.
    pub env: Vec<String>,
    /// Working directory; the image's when unset.
    pub working_dir: Option<String>,
    /// `user`, `uid`, `user:group` or `uid:gid`; the image's when unset.
    pub user: Option<String>,
    /// Hostname; the short id when unset.
    pub hostname: Option<String>,
    /// NIS domain name.
    pub domainname: Option<String>,
    /// Container labels (merged over the image's labels).
    pub labels: BTreeMap<String, String>,
    /// Allocate a pseudo-terminal.
    pub tty: bool,
    /// Keep stdin open.
    pub open_stdin: bool,
    /// Close stdin after the first attached client detaches.
    pub stdin_once: bool,
    /// Whether a client means to attach stdin / stdout / stderr (informational, as in Docker).
    pub attach_stdin: bool,
    /// See [`ContainerSpec::attach_stdin`].
    pub attach_stdout: bool,
    /// See [`ContainerSpec::attach_stdin`].
    pub attach_stderr: bool,
    /// Signal for `stop`; the image's or `SIGTERM` when unset.
    pub stop_signal: Option<String>,
    /// Seconds to wait after the stop signal before SIGKILL; 10 when unset.
    pub stop_timeout: Option<i64>,
    /// Ports the container declares (`80/tcp`).
    pub exposed_ports: Vec<String>,
    /// Volume mount points declared on the container (`Config.Volumes`).
    pub volumes: Vec<String>,
    /// `Config.Healthcheck`, merged with the image's at create.
    pub healthcheck: Option<crate::HealthConfig>,
    /// Host-level settings.
    pub host: HostSpec,
    /// Per-network endpoint settings from create (`NetworkingConfig.EndpointsConfig`):
    /// network name → aliases, static address, MAC.
    pub networks: BTreeMap<String, EndpointSpec>,
}

/// How a container wants to be attached to one network (`--network-alias`, `--ip`,
/// `--mac-address`, `network connect --alias --ip`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointSpec {
    /// DNS aliases on that network.
    pub aliases: Vec<String>,
    /// A static IPv4 address (`--ip`).
    pub ipv4_address: Option<String>,
    /// A static MAC address (`--mac-address`).
    pub mac_address: Option<String>,
}

/// Host-level settings of a container: Docker's `HostConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostSpec {
    /// `-v` style binds: `src:dst[:opts]`.
    pub binds: Vec<String>,
    /// `--mount` style mounts.
    pub mounts: Vec<MountSpec>,
    /// tmpfs mounts: path → options.
    pub tmpfs: BTreeMap<String, String>,
    /// Mount the root filesystem read-only.
    pub read_only_rootfs: bool,
    /// Memory limit in bytes (0 = none).
    pub memory: i64,
    /// Memory + swap limit in bytes (0 = default, -1 = unlimited).
    pub memory_swap: i64,
    /// CPU quota in units of 1e-9 CPUs (0 = none).
    pub nano_cpus: i64,
    /// Relative CPU weight (0 = default).
    pub cpu_shares: i64,
    /// CFS period in microseconds (`--cpu-period`, 0 = the kernel's).
    pub cpu_period: i64,
    /// CFS quota in microseconds per period (`--cpu-quota`, 0 = none).
    pub cpu_quota: i64,
    /// CPUs the container may run on (`--cpuset-cpus`, e.g. `0-2,4`; empty = all).
    pub cpuset_cpus: String,
    /// Memory nodes the container may use (`--cpuset-mems`; empty = all).
    pub cpuset_mems: String,
    /// Soft memory limit in bytes (`--memory-reservation`, 0 = none).
    pub memory_reservation: i64,
    /// Relative block I/O weight, 10 to 1000 (`--blkio-weight`, 0 = default).
    pub blkio_weight: u16,
    /// Maximum number of processes (None or ≤0 = unlimited).
    pub pids_limit: Option<i64>,
    /// Capabilities added to the default set (`NET_ADMIN` or `CAP_NET_ADMIN`, or `ALL`).
    pub cap_add: Vec<String>,
    /// Capabilities removed from the default set.
    pub cap_drop: Vec<String>,
    /// `no-new-privileges[:true]`, `seccomp=unconfined`, …
    pub security_opt: Vec<String>,
    /// Run privileged: all capabilities, all devices, no seccomp, no masked paths.
    pub privileged: bool,
    /// Run an init process as pid 1 that reaps zombies and forwards signals.
    pub init: bool,
    /// OCI runtime name; the daemon default when unset.
    pub runtime: Option<String>,
    /// `bridge`, `host`, `none`, `container:<id>` or a network name.
    pub network_mode: Option<String>,
    /// Extra `/etc/hosts` entries, `name:ip`.
    pub extra_hosts: Vec<String>,
    /// DNS servers for `/etc/resolv.conf`.
    pub dns: Vec<String>,
    /// DNS search domains.
    pub dns_search: Vec<String>,
    /// resolv.conf options.
    pub dns_options: Vec<String>,
    /// Restart policy.
    pub restart_policy: RestartPolicy,
    /// Remove the container when it exits (`--rm`).
    pub auto_remove: bool,
    /// Log driver and options.
    pub log_config: LogConfig,
    /// Namespaced sysctls.
    pub sysctls: BTreeMap<String, String>,
    /// Port bindings: `80/tcp` → list of (host ip, host port).
    pub port_bindings: BTreeMap<String, Vec<(String, String)>>,
    /// Publish all exposed ports on random host ports.
    pub publish_all_ports: bool,
    /// `host` to share the host's pid namespace.
    pub pid_mode: Option<String>,
    /// `host` or `private` / `shareable`.
    pub ipc_mode: Option<String>,
    /// Size of /dev/shm in bytes (0 = 64 MiB).
    pub shm_size: i64,
    /// Supplementary groups.
    pub group_add: Vec<String>,
    /// Resource limits: (name, soft, hard).
    pub ulimits: Vec<(String, i64, i64)>,
    /// Disable the OOM killer for this container's cgroup.
    pub oom_kill_disable: bool,
    /// OOM score adjustment.
    pub oom_score_adj: i64,
    /// `--device` mappings as given; the host paths are looked up at every start, as
    /// dockerd does.
    pub devices: Vec<DeviceMapping>,
    /// `--device-cgroup-rule` entries (`c 1:3 rwm`) as given; checked at start, as dockerd does.
    pub device_cgroup_rules: Vec<String>,
}

/// One `--device`: a host device node (or a directory of them) made available in the
/// container (Docker's `DeviceMapping`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeviceMapping {
    /// The node or directory on the host; symlinks are followed.
    pub path_on_host: String,
    /// Where it appears in the container; `path_on_host` when empty.
    pub path_in_container: String,
    /// Device cgroup access, a combination of `r`, `w` and `m`; `rwm` when empty.
    pub cgroup_permissions: String,
}

/// One `--mount`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MountSpec {
    /// What kind of mount.
    pub kind: MountType,
    /// Host path (bind) or volume name; empty for tmpfs and anonymous volumes.
    pub source: String,
    /// Path inside the container.
    pub target: String,
    /// Mount read-only.
    pub read_only: bool,
    /// Extra options (`tmpfs-size`, bind propagation, …).
    pub options: BTreeMap<String, String>,
}

/// The kinds of mount a container may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    /// A host path.
    Bind,
    /// A named or anonymous volume.
    Volume,
    /// A tmpfs.
    Tmpfs,
}

/// When a container is restarted after it exits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartPolicy {
    /// `""`/`no`, `always`, `unless-stopped` or `on-failure`.
    pub name: String,
    /// Maximum retries for `on-failure` (0 = unlimited).
    pub maximum_retry_count: i64,
}

/// Log driver configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogConfig {
    /// Driver name; `json-file` (default) or `none`.
    pub driver: String,
    /// Driver options (`max-size`, `max-file`).
    pub options: BTreeMap<String, String>,
}

/// Lifecycle status, spelled as Docker spells it in `State.Status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerStatus {
    /// Created, never started.
    #[default]
    Created,
    /// Process running.
    Running,
    /// Frozen.
    Paused,
    /// Waiting to be restarted by its policy.
    Restarting,
    /// Being removed.
    Removing,
    /// Process ended.
    Exited,
    /// Could not be cleaned up.
    Dead,
}

impl ContainerStatus {
    /// Docker's lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Restarting => "restarting",
            Self::Removing => "removing",
            Self::Exited => "exited",
            Self::Dead => "dead",
        }
    }

    /// True while the container has a live process (running, paused, restarting).
    pub fn is_alive(self) -> bool {
        matches!(self, Self::Running | Self::Paused | Self::Restarting)
    }
}

/// The observed state of a container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerState {
    /// Lifecycle status.
    pub status: ContainerStatus,
    /// Host pid of the container's init process while running (0 otherwise).
    pub pid: i64,
    /// Host pid of the shim while running (0 otherwise).
    pub shim_pid: i64,
    /// Exit code of the last run.
    pub exit_code: i64,
    /// Killed by the OOM killer in its last run.
    pub oom_killed: bool,
    /// Error message of the last failed start.
    pub error: String,
    /// When the last run started.
    pub started_at: Option<DateTime<Utc>>,
    /// When the last run ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Times the restart policy restarted it.
    pub restart_count: i64,
    /// Stopped explicitly by a user (governs `unless-stopped`).
    pub stopped_by_user: bool,
    /// `State.Health`: present once a container with a health check started.
    pub health: Option<crate::Health>,
}

/// A container as stored: identity, spec, resolved image and state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// Id.
    pub id: ContainerId,
    /// Unique name.
    pub name: ContainerName,
    /// Creation time.
    pub created: DateTime<Utc>,
    /// What was asked for.
    pub spec: ContainerSpec,
    /// The resolved image id (`sha256:…` of its config).
    pub image_id: String,
    /// Resolved entrypoint + cmd: the path of the process.
    pub path: String,
    /// Arguments after `path`.
    pub args: Vec<String>,
    /// Fully merged environment (image + spec).
    pub env: Vec<String>,
    /// Runtime used for the current or last run.
    pub runtime: String,
    /// Observed state.
    pub state: ContainerState,
    /// Volumes resolved at create time (named, auto-created and anonymous).
    #[serde(default)]
    pub volume_mounts: Vec<crate::VolumeMount>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_serialises_as_docker_spells_it() {
        assert_eq!(
            serde_json::to_string(&ContainerStatus::Exited).unwrap(),
            "\"exited\""
        );
        assert_eq!(ContainerStatus::Paused.as_str(), "paused");
        assert!(ContainerStatus::Paused.is_alive());
        assert!(!ContainerStatus::Created.is_alive());
    }

    #[test]
    fn spec_deserialises_with_defaults() {
        let s: ContainerSpec = serde_json::from_str(r#"{"image":"busybox"}"#).unwrap();
        assert_eq!(s.image, "busybox");
        assert!(s.cmd.is_none());
        assert_eq!(s.host.memory, 0);
    }

    #[test]
    fn devices_default_in_old_records_and_round_trip() {
        let old: HostSpec = serde_json::from_str(r#"{"memory":5,"privileged":true}"#).unwrap();
        assert!(old.devices.is_empty() && old.device_cgroup_rules.is_empty());
        let h = HostSpec {
            devices: vec![DeviceMapping {
                path_on_host: "/dev/null".to_owned(),
                path_in_container: "/dev/mynull".to_owned(),
                cgroup_permissions: "rw".to_owned(),
            }],
            device_cgroup_rules: vec!["c 1:3 rwm".to_owned()],
            ..HostSpec::default()
        };
        let back: HostSpec = serde_json::from_str(&serde_json::to_string(&h).unwrap()).unwrap();
        assert_eq!(back, h);
    }
}
