//! The [`Engine`] trait and the values that cross it.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use corral_core::{ContainerRecord, ContainerSpec, ImageRecord, VolumeRecord};
use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

use crate::error::Result;
use crate::events::Event;

/// A boxed stream of results.
pub type BoxStream<T> = Pin<Box<dyn Stream<Item = T> + Send>>;

/// A registered wait: resolves with the exit status once its condition holds.
pub type WaitFuture = Pin<Box<dyn std::future::Future<Output = ExitStatus> + Send>>;

/// A boxed async byte source.
pub type BoxRead = Pin<Box<dyn AsyncRead + Send>>;

/// A boxed async byte sink.
pub type BoxWrite = Pin<Box<dyn AsyncWrite + Send>>;

/// Registry credentials for one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// User name (empty for anonymous).
    pub username: String,
    /// Password or token.
    pub password: String,
    /// An identity token from a previous login, used instead of a password.
    pub identity_token: String,
    /// Registry host the credentials are for (may be empty).
    pub server_address: String,
}

/// One line of progress while pulling or pushing, as Docker's JSON progress stream shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Layer short id (12 hex digits) or empty for image-level messages.
    pub id: String,
    /// `Pulling fs layer`, `Downloading`, `Pull complete`, `Status: …`, …
    pub status: String,
    /// Bytes done and total, for a progress bar.
    pub current: Option<(u64, u64)>,
}

/// A container wait condition, as `POST /containers/{id}/wait?condition=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaitCondition {
    /// Return at once if not running, else at the next exit.
    #[default]
    NotRunning,
    /// Return at the next exit.
    NextExit,
    /// Return once the container is removed.
    Removed,
}

/// How a container's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    /// Exit code; 128+N when killed by signal N.
    pub code: i64,
    /// Killed by the OOM killer.
    pub oom_killed: bool,
}

/// A container's disk use, as `SizeRw` and `SizeRootFs` show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ContainerSize {
    /// Bytes of the files the container wrote or changed (its writable layer).
    pub rw: u64,
    /// `rw` plus the size of the image's layers.
    pub root_fs: u64,
}

/// How much disk the images take, as `/system/df` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImagesDiskUsage {
    /// Bytes of all unpacked layers, each counted once however many images use it.
    pub layers_size: u64,
    /// Per image id: bytes of its layers that other images use too (`SharedSize`).
    pub shared: BTreeMap<String, u64>,
}

/// Options for reading a container's logs.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// Include stdout.
    pub stdout: bool,
    /// Include stderr.
    pub stderr: bool,
    /// Keep streaming until the container stops.
    pub follow: bool,
    /// Only entries at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only entries before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only the last N entries.
    pub tail: Option<usize>,
    /// Prefix each line with its RFC 3339 timestamp.
    pub timestamps: bool,
}

/// Which stream a chunk of container output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// Standard input (echoed).
    Stdin,
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// A chunk of container output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputChunk {
    /// Source stream (`Stdout` for everything when the container has a TTY).
    pub stream: StreamKind,
    /// The bytes.
    pub data: Bytes,
}

/// What a client wants from an attach.
#[derive(Debug, Clone, Copy, Default)]
pub struct AttachOptions {
    /// Forward the client's input to the container's stdin.
    pub stdin: bool,
    /// Receive stdout.
    pub stdout: bool,
    /// Receive stderr.
    pub stderr: bool,
    /// Replay the logs first.
    pub logs: bool,
    /// Stream live output (false: logs only).
    pub stream: bool,
}

/// The two halves of an attach or exec session.
pub struct AttachIo {
    /// Container output; ends when the process's stdio closes.
    pub output: BoxStream<OutputChunk>,
    /// Container stdin, when requested; shutting it down closes the container's stdin.
    pub input: Option<BoxWrite>,
    /// Whether the session uses a TTY (raw stream instead of multiplexed frames).
    pub tty: bool,
}

/// The result of `create`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The new container's full id.
    pub id: String,
    /// Non-fatal warnings to show the user.
    pub warnings: Vec<String>,
}

/// What a push stored in the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The tag pushed.
    pub tag: String,
    /// The manifest digest.
    pub digest: String,
    /// The manifest's size in bytes.
    pub size: u64,
}

/// One entry of an image removal report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageDeleted {
    /// A tag or digest reference was removed.
    Untagged(String),
    /// An image or layer was deleted.
    Deleted(String),
}

/// One row of `docker history`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Image id for the top row, `<missing>` below.
    pub id: String,
    /// Creation time (unix seconds).
    pub created: i64,
    /// The instruction that made the layer.
    pub created_by: String,
    /// Size of the layer in bytes.
    pub size: u64,
    /// Comment.
    pub comment: String,
    /// Tags of the image for the top row.
    pub tags: Vec<String>,
}

/// A process listing (`top`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessList {
    /// Column titles.
    pub titles: Vec<String>,
    /// Rows of column values.
    pub processes: Vec<Vec<String>>,
}

/// A filesystem change kind, as `docker diff` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// `C`
    Modified,
    /// `A`
    Added,
    /// `D`
    Deleted,
}

/// `docker update`: new limits and restart policy. Zero fields (and `None`) leave the
/// current value, as dockerd.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerUpdate {
    /// Memory limit in bytes.
    pub memory: i64,
    /// Memory + swap limit in bytes (-1 = unlimited).
    pub memory_swap: i64,
    /// CPU quota in units of 1e-9 CPUs.
    pub nano_cpus: i64,
    /// Relative CPU weight.
    pub cpu_shares: i64,
    /// CFS period in microseconds.
    pub cpu_period: i64,
    /// CFS quota in microseconds.
    pub cpu_quota: i64,
    /// CPUs the container may run on (empty keeps the current set).
    pub cpuset_cpus: String,
    /// Memory nodes the container may use (empty keeps the current set).
    pub cpuset_mems: String,
    /// Soft memory limit in bytes.
    pub memory_reservation: i64,
    /// Relative block I/O weight (10 to 1000).
    pub blkio_weight: u16,
    /// Maximum number of processes (-1 = unlimited).
    pub pids_limit: Option<i64>,
    /// A new restart policy.
    pub restart_policy: Option<corral_core::RestartPolicy>,
}

/// Options for `commit`.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// Repository for the new image (may be empty).
    pub repo: String,
    /// Tag (defaults to `latest` when a repo is given).
    pub tag: String,
    /// Commit message.
    pub comment: String,
    /// Author.
    pub author: String,
    /// Pause the container while committing.
    pub pause: bool,
    /// Config overrides as a Docker `Config` JSON object.
    pub config: Option<serde_json::Value>,
    /// Use `config` as the image's whole `Config` instead of merging it into the
    /// container's (the builder keeps the config itself).
    pub replace_config: bool,
    /// The history entry's `created_by` (default: the container's command).
    pub created_by: Option<String>,
    /// `--change` Dockerfile instructions, applied to `config` (the container's config
    /// when `config` is `None`) before it is merged into the container's, as dockerd's
    /// `BuildFromConfig` does ([`crate::build::changes::apply_changes`]).
    pub changes: Vec<String>,
}

/// Options for creating an exec session.
#[derive(Debug, Clone, Default)]
pub struct ExecSpec {
    /// Command and arguments.
    pub cmd: Vec<String>,
    /// Extra environment.
    pub env: Vec<String>,
    /// Working directory.
    pub working_dir: Option<String>,
    /// User.
    pub user: Option<String>,
    /// Allocate a TTY.
    pub tty: bool,
    /// Attach stdin.
    pub attach_stdin: bool,
    /// Attach stdout.
    pub attach_stdout: bool,
    /// Attach stderr.
    pub attach_stderr: bool,
    /// Run with extended privileges.
    pub privileged: bool,
    /// The client's detach sequence (`DetachKeys`); the default when `None`.
    pub detach_keys: Option<String>,
}

/// The state of an exec session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecState {
    /// Exec id.
    pub id: String,
    /// Container it runs in.
    pub container_id: String,
    /// Still running.
    pub running: bool,
    /// Exit code once finished.
    pub exit_code: Option<i64>,
    /// Host pid while running.
    pub pid: i64,
    /// The command.
    pub cmd: Vec<String>,
    /// TTY.
    pub tty: bool,
    /// Stdin attached.
    pub open_stdin: bool,
    /// The detach sequence given at create.
    pub detach_keys: Option<String>,
}

/// Host facts for `/info`.
#[derive(Debug, Clone, Default)]
pub struct HostInfo {
    /// Containers by state: total, running, paused, stopped.
    pub containers: (usize, usize, usize, usize),
    /// Number of images.
    pub images: usize,
    /// Default runtime name.
    pub default_runtime: String,
    /// All runtime names.
    pub runtimes: Vec<String>,
    /// Data directory.
    pub data_dir: String,
    /// `1` or `2` (hybrid hosts report 1).
    pub cgroup_version: String,
    /// Instance name.
    pub name: String,
    /// Registries allowed over plain HTTP (the daemon's `--insecure-registry` list).
    pub insecure_registries: Vec<String>,
    /// Whether the memory cgroup accounts swap (so `--memory-swap` can be enforced).
    pub swap_limit: bool,
    /// Whether the host forwards IPv4 (`/proc/sys/net/ipv4/ip_forward`).
    pub ipv4_forwarding: bool,
    /// Conditions an operator should fix (`docker info` prints them as WARNING lines).
    pub warnings: Vec<String>,
}

/// A request to create a volume (`docker volume create`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeCreate {
    /// Name; a random 64-hex name when unset.
    pub name: Option<String>,
    /// Driver; `local` when unset.
    pub driver: Option<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Driver options (`--opt`).
    pub options: BTreeMap<String, String>,
}

/// A volume as front ends show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInfo {
    /// The stored record.
    pub record: VolumeRecord,
    /// Host path of the volume's data.
    pub mountpoint: String,
    /// Ids of the containers (any state) that use the volume.
    pub containers: Vec<String>,
    /// Bytes used, when asked for.
    pub size: Option<u64>,
}

/// Which volumes `prune` removes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumePrune {
    /// Also named volumes (API >= 1.42 prunes only anonymous ones by default).
    pub all: bool,
    /// `key` or `key=value`: only volumes with these labels.
    pub labels: Vec<String>,
    /// `key` or `key=value`: only volumes without these labels.
    pub not_labels: Vec<String>,
}

/// The host-side interface every API front end drives.
///
/// Names accept whatever Docker accepts: full id, unique id prefix or name (with or without
/// the leading `/`) for containers; `name[:tag]`, `name@digest`, full or short id for images.
#[async_trait]
pub trait Engine: Send + Sync + 'static {
    /// Pulls `reference` (tag defaulting to `latest`), reporting progress on `progress`.
    async fn pull_image(
        &self,
        reference: &str,
        creds: Credentials,
        progress: mpsc::Sender<Progress>,
    ) -> Result<ImageRecord>;
    /// Pushes a local image to its registry.
    async fn push_image(
        &self,
        reference: &str,
        creds: Credentials,
        progress: mpsc::Sender<Progress>,
    ) -> Result<Pushed>;
    /// All images.
    async fn images(&self) -> Result<Vec<ImageRecord>>;
    /// One image.
    async fn image(&self, name: &str) -> Result<ImageRecord>;
    /// Adds `repo:tag` to an image.
    async fn tag_image(&self, name: &str, repo: &str, tag: &str) -> Result<()>;
    /// Removes a tag, or the image when its last reference goes.
    async fn remove_image(&self, name: &str, force: bool) -> Result<Vec<ImageDeleted>>;
    /// Removes dangling (or, with `all`, unused) images; returns what went and bytes freed.
    async fn prune_images(&self, all: bool) -> Result<(Vec<ImageDeleted>, u64)>;
    /// The layer history of an image.
    async fn image_history(&self, name: &str) -> Result<Vec<HistoryEntry>>;
    /// Writes the images as a docker-archive tarball.
    async fn save_images(&self, names: &[String]) -> Result<BoxRead>;
    /// Loads a docker-archive or OCI-layout tarball; returns the loaded references.
    async fn load_images(&self, tar: BoxRead) -> Result<Vec<String>>;
    /// Imports a root filesystem tarball as a one-layer image.
    async fn import_image(
        &self,
        tar: BoxRead,
        reference: Option<&str>,
        config: Option<serde_json::Value>,
    ) -> Result<String>;

    /// Creates a container.
    async fn create_container(&self, name: Option<&str>, spec: ContainerSpec) -> Result<Created>;
    /// Starts a created or stopped container.
    async fn start_container(&self, name: &str) -> Result<()>;
    /// Stops: the stop signal, then SIGKILL after `timeout` seconds.
    async fn stop_container(
        &self,
        name: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()>;
    /// Sends a signal.
    async fn kill_container(&self, name: &str, signal: Option<&str>) -> Result<()>;
    /// Stops then starts.
    async fn restart_container(&self, name: &str, timeout: Option<i64>) -> Result<()>;
    /// Freezes all processes.
    async fn pause_container(&self, name: &str) -> Result<()>;
    /// Thaws.
    async fn unpause_container(&self, name: &str) -> Result<()>;
    /// Renames.
    async fn rename_container(&self, name: &str, new_name: &str) -> Result<()>;
    /// Changes limits and the restart policy (`docker update`); returns warnings.
    async fn update_container(&self, name: &str, update: ContainerUpdate) -> Result<Vec<String>>;
    /// Registers a wait for `condition` at once; the returned future resolves with the exit
    /// status when it holds (dropping it cancels the wait).
    async fn wait_container(&self, name: &str, condition: WaitCondition) -> Result<WaitFuture>;
    /// Removes a container (`force` kills it first).
    async fn remove_container(&self, name: &str, force: bool, volumes: bool) -> Result<()>;
    /// Removes all stopped containers; returns their ids.
    async fn prune_containers(&self) -> Result<Vec<String>>;
    /// All containers: the current records, shared (no copy; a later change to a container
    /// makes a new record and leaves these as they were).
    async fn containers(&self) -> Result<Vec<Arc<ContainerRecord>>>;
    /// One container's current record, shared.
    async fn container(&self, name: &str) -> Result<Arc<ContainerRecord>>;
    /// The images' disk use: every layer once, and what each image shares with others.
    async fn images_disk_usage(&self) -> Result<ImagesDiskUsage>;
    /// The container's disk use: its writable layer, and with the image's layers. Walks the
    /// writable layer, so only on request (`size=1`, `inspect -s`, `system df`).
    async fn container_size(&self, record: &ContainerRecord) -> Result<ContainerSize>;
    /// Host paths of a container's files for inspect: `rootfs`, `upper`, `work`, `log`,
    /// `hosts`, `resolv`, `hostname`.
    fn container_paths(&self, record: &ContainerRecord) -> BTreeMap<&'static str, String>;
    /// Log entries as output chunks (with timestamps prepended when asked).
    async fn logs(&self, name: &str, opts: LogOptions) -> Result<BoxStream<OutputChunk>>;
    /// Attaches to a container (before or after start).
    async fn attach(&self, name: &str, opts: AttachOptions) -> Result<AttachIo>;
    /// Resizes the container's TTY.
    async fn resize_container(&self, name: &str, height: u16, width: u16) -> Result<()>;
    /// Lists the container's processes.
    async fn top(&self, name: &str, ps_args: Option<&str>) -> Result<ProcessList>;
    /// Filesystem changes against the image.
    async fn changes(&self, name: &str) -> Result<Vec<(String, ChangeKind)>>;
    /// The container's filesystem as a tarball.
    async fn export_container(&self, name: &str) -> Result<BoxRead>;
    /// Makes an image from a container's changes; returns the image id.
    async fn commit_container(&self, name: &str, opts: CommitOptions) -> Result<String>;
    /// A tar of `path` inside the container, plus its stat as Docker's header JSON.
    async fn archive_get(&self, name: &str, path: &str) -> Result<(serde_json::Value, BoxRead)>;
    /// Stat of `path` inside the container.
    async fn archive_stat(&self, name: &str, path: &str) -> Result<serde_json::Value>;
    /// Extracts a tar into `path` inside the container.
    async fn archive_put(&self, name: &str, path: &str, tar: BoxRead) -> Result<()>;
    /// A resource usage sample as Docker's stats JSON (without `precpu_stats`).
    async fn stats(&self, name: &str) -> Result<serde_json::Value>;

    /// Creates an exec session; returns its id.
    async fn exec_create(&self, name: &str, spec: ExecSpec) -> Result<String>;
    /// Starts an exec session; with `detach` no streams are returned.
    async fn exec_start(&self, exec_id: &str, detach: bool) -> Result<Option<AttachIo>>;
    /// Resizes an exec session's TTY.
    async fn exec_resize(&self, exec_id: &str, height: u16, width: u16) -> Result<()>;
    /// Inspects an exec session.
    async fn exec_inspect(&self, exec_id: &str) -> Result<ExecState>;

    /// Host facts.
    async fn info(&self) -> Result<HostInfo>;
    /// Subscribes to events, replaying retained ones in `[since, until]`.
    async fn events(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<(Vec<Event>, tokio::sync::broadcast::Receiver<Event>)>;
    /// Stores registry credentials after checking them against the registry.
    async fn login(&self, creds: Credentials) -> Result<String>;

    /// Creates a volume, or returns the existing one of that name.
    async fn create_volume(&self, req: VolumeCreate) -> Result<VolumeInfo>;
    /// All volumes, with their sizes when `usage` is set.
    async fn volumes(&self, usage: bool) -> Result<Vec<VolumeInfo>>;
    /// One volume by name.
    async fn volume(&self, name: &str) -> Result<VolumeInfo>;
    /// Removes a volume; refused while a container uses it. With `force`, a missing volume
    /// is not an error.
    async fn remove_volume(&self, name: &str, force: bool) -> Result<()>;
    /// Removes unused volumes; returns their names and the bytes freed.
    async fn prune_volumes(&self, opts: VolumePrune) -> Result<(Vec<String>, u64)>;
    /// Host path of a volume's data (for inspect `Mounts`).
    fn volume_mountpoint(&self, name: &str) -> String;
    /// A container's networks (inspect `NetworkSettings.Networks`, `ps` ports): live
    /// endpoints while it runs, the configured networks (no address) otherwise.
    fn container_networks(&self, _record: &ContainerRecord) -> Vec<ContainerNetwork> {
        Vec::new()
    }
    /// The networks (`GET /networks`): the default `bridge` plus `host` and `none`.
    async fn networks(&self) -> Result<Vec<NetworkInfo>> {
        Ok(Vec::new())
    }
    /// Creates a user-defined bridge network; returns its id.
    async fn create_network(&self, _req: NetworkCreate) -> Result<String> {
        Err(crate::Error::Unsupported("user-defined networks"))
    }
    /// Removes a user-defined network (refused while containers are connected).
    async fn remove_network(&self, _name: &str) -> Result<()> {
        Err(crate::Error::Unsupported("user-defined networks"))
    }
    /// Connects a container (created or running) to a network (`network connect`).
    async fn connect_network(
        &self,
        _network: &str,
        _container: &str,
        _endpoint: corral_core::EndpointSpec,
    ) -> Result<()> {
        Err(crate::Error::Unsupported("network connect"))
    }
    /// Disconnects a container from a network (`network disconnect`).
    async fn disconnect_network(
        &self,
        _network: &str,
        _container: &str,
        _force: bool,
    ) -> Result<()> {
        Err(crate::Error::Unsupported("network disconnect"))
    }
    /// Removes the unused user-defined networks that `keep` does not keep; returns their
    /// names.
    async fn prune_networks(&self, _keep: NetworkKeep) -> Result<Vec<String>> {
        Err(crate::Error::Unsupported("network prune"))
    }
}

/// A published port of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedPort {
    /// `tcp` or `udp`.
    pub proto: String,
    /// Host address (`0.0.0.0` for all).
    pub host_ip: String,
    /// Host port.
    pub host_port: u16,
    /// Container port.
    pub container_port: u16,
}

/// A container's attachment to a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerNetwork {
    /// Network name.
    pub network: String,
    /// Network id.
    pub network_id: String,
    /// Endpoint id.
    pub endpoint_id: String,
    /// The container's IPv4 address.
    pub ip: String,
    /// Its prefix length.
    pub prefix_len: u8,
    /// The gateway.
    pub gateway: String,
    /// The interface's MAC address.
    pub mac: String,
    /// The container's network namespace file.
    pub sandbox_key: String,
    /// Published ports.
    pub ports: Vec<PublishedPort>,
    /// Network-scoped aliases (with the short id while running, as dockerd 20.10 shows).
    pub aliases: Option<Vec<String>>,
    /// The address asked for with `--ip` (inspect `IPAMConfig`).
    pub static_ip: Option<String>,
}

/// A `network prune` filter: true for the networks to keep.
pub type NetworkKeep = Box<dyn Fn(&NetworkInfo) -> bool + Send + Sync>;

/// `POST /networks/create`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkCreate {
    /// Name.
    pub name: String,
    /// Subnet (`a.b.c.d/len`); allocated from the pool when `None`.
    pub subnet: Option<String>,
    /// Gateway; the subnet's first host when `None`.
    pub gateway: Option<String>,
    /// Range dynamic addresses come from.
    pub ip_range: Option<String>,
    /// No route out.
    pub internal: bool,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// A network as `GET /networks` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkInfo {
    /// Id (64 hex).
    pub id: String,
    /// Name.
    pub name: String,
    /// Driver: `bridge`, `host`, `null`.
    pub driver: String,
    /// Creation time (RFC 3339).
    pub created: String,
    /// Subnet (empty for host/none).
    pub subnet: String,
    /// Gateway (empty for host/none).
    pub gateway: String,
    /// No route out.
    pub internal: bool,
    /// Bridge interface name.
    pub bridge: String,
    /// Connected containers: id → (endpoint id, MAC, `ip/prefix`).
    pub containers: BTreeMap<String, (String, String, String)>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// Labels merged from image and container, for filters.
pub fn merged_labels(record: &ContainerRecord) -> BTreeMap<String, String> {
    record.spec.labels.clone()
}
