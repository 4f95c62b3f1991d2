//! OCI runtime spec generation: turns a [`ContainerSpec`], its image config and the paths the
//! engine prepared into the `config.json` a runtime (runc, youki's libcontainer) executes,
//! with Docker's defaults: capabilities, seccomp, masked paths, mounts, devices, rlimits.
//!
//! Everything here is pure except reading the rootfs's `/etc/passwd` and `/etc/group`
//! (through [`secure_join`], so image symlinks cannot point the daemon at host files) and
//! [`ensure_workdir`], which the caller runs when it chooses.

use std::path::{Path, PathBuf};

use corral_core::ContainerSpec;
use oci_spec::runtime::{
    LinuxBuilder, LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType, ProcessBuilder,
    RootBuilder, Spec, SpecBuilder, UserBuilder,
};
use serde_json::Value;

mod caps;
mod devices;
mod error;
mod mounts;
mod process;
mod resources;
mod rootfs;
mod seccomp;
mod user;

#[cfg(test)]
mod runc_tests;
#[cfg(test)]
pub(crate) mod test_support;

pub use caps::{
    all_capabilities, bounding_set_from_status, capability_mask, capability_set,
    DEFAULT_CAPABILITIES,
};
pub use devices::{HostDevices, NodeInfo, NodeKind, RealHostDevices};
pub use error::{Result, SpecError};
pub use mounts::{MountKind, NetworkFiles, ResolvedMount, DEFAULT_SHM_SIZE};
pub use process::{merge_env, resolve_process, ImageConfig, ProcessArgs, DEFAULT_PATH};
pub use resources::{check_cpuset_available, parse_cpuset, HostFeatures, DEFAULT_NOFILE};
pub use rootfs::{ensure_workdir, secure_join};
pub use seccomp::{host_arch, SeccompProfile};
pub use user::{resolve_user, resolve_user_from, ResolvedUser};

#[cfg(test)]
pub(crate) use resources::device_rules;

/// Paths Docker hides from containers by mounting over them (moby `oci/defaults.go`).
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths Docker remounts read-only in containers.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Which namespace of a kind the container gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceMode {
    /// A new, private namespace.
    Private,
    /// The host's namespace (no namespace entry in the spec).
    Host,
    /// Join an existing namespace, e.g. `/run/corral/netns/<id>` or `/proc/<pid>/ns/net`.
    Join(PathBuf),
}

/// Everything [`build_spec`] needs. Build it with [`SpecInput::new`] and adjust the fields.
#[derive(Debug, Clone)]
pub struct SpecInput<'a> {
    /// Container id.
    pub id: &'a str,
    /// What the container was asked to be.
    pub spec: &'a ContainerSpec,
    /// The image config document (OCI image config, with a `config` object).
    pub image_config: &'a Value,
    /// Host path of the mounted (merged) rootfs.
    pub rootfs: &'a Path,
    /// Hostname inside the container.
    pub hostname: String,
    /// Files bind-mounted at `/etc/hosts`, `/etc/resolv.conf`, `/etc/hostname`.
    pub network_files: NetworkFiles,
    /// The cgroup path, e.g. `/corral-<instance>/<id>`.
    pub cgroups_path: String,
    /// The network namespace.
    pub network: NamespaceMode,
    /// The pid namespace; `None` derives it from `spec.host.pid_mode` (`host` or private).
    /// Must be set for `container:<id>` modes, which only the caller can resolve.
    pub pid: Option<NamespaceMode>,
    /// The IPC namespace; `None` derives it from `spec.host.ipc_mode`.
    pub ipc: Option<NamespaceMode>,
    /// Volume and bind mounts, resolved to host paths.
    pub mounts: Vec<ResolvedMount>,
    /// Host properties (swap accounting, cgroup v2).
    pub features: HostFeatures,
    /// Architecture to render seccomp for, Go spelling (`amd64`); defaults to the host's.
    pub arch: &'static str,
    /// A static init binary on the host (tini) for `--init`: bind-mounted read-only at
    /// [`INIT_PATH`] and run as pid 1 in front of the command, as Docker runs docker-init.
    pub init: Option<PathBuf>,
    /// Where `--device` host paths are looked up; [`RealHostDevices`] by default.
    pub host_devices: &'a dyn HostDevices,
}

/// Where `--init` mounts the init binary inside the container (Docker's path).
pub const INIT_PATH: &str = "/sbin/docker-init";

/// Parsed `--security-opt` values.
#[derive(Debug, Clone, Default)]
struct SecurityOpts {
    no_new_privileges: bool,
    seccomp: SeccompChoice,
    unmask_system_paths: bool,
}

#[derive(Debug, Clone, Default)]
enum SeccompChoice {
    #[default]
    Default,
    Unconfined,
    Custom(Box<SeccompProfile>),
}

// === impl SpecInput ===

impl<'a> SpecInput<'a> {
    /// Input with Docker's defaults: hostname from the spec or the first 12 characters of the
    /// id, a private network namespace, cgroup `/corral/<id>`, no network files or mounts.
    pub fn new(
        id: &'a str,
        spec: &'a ContainerSpec,
        image_config: &'a Value,
        rootfs: &'a Path,
    ) -> Self {
        let hostname = spec
            .hostname
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| id.chars().take(12).collect());
        Self {
            id,
            spec,
            image_config,
            rootfs,
            hostname,
            network_files: NetworkFiles::default(),
            cgroups_path: format!("/corral/{id}"),
            network: NamespaceMode::Private,
            pid: None,
            ipc: None,
            mounts: Vec::new(),
            features: HostFeatures::default(),
            arch: host_arch(),
            init: None,
            host_devices: &RealHostDevices,
        }
    }
}

/// The cgroup resources of `host` for a live update (`docker update`), validated as at
/// create. Device rules are included on cgroup v2, where libcgroups (built without
/// `cgroupsv2_devices`) ignores them, so the device program the shim attached at create
/// stays as it is, and left out on v1, where writing them again would deny every device for
/// a moment (libcgroups re-allows Docker's default devices either way).
///
/// # Errors
/// [`SpecError::InvalidResources`] naming the inconsistent limit.
pub fn update_resources(
    host: &corral_core::container::HostSpec,
    features: HostFeatures,
) -> Result<oci_spec::runtime::LinuxResources> {
    let devices = if features.cgroup_v2 {
        resources::device_rules(host.privileged)?
    } else {
        Vec::new()
    };
    resources::resources(host, features, devices)
}

/// Builds the OCI runtime spec of a container (see the module docs for what it contains).
///
/// Reads `rootfs/etc/passwd` and `rootfs/etc/group` to resolve the user; creates nothing.
///
/// # Errors
/// [`SpecError::InitNotSupported`] for `--init`; [`SpecError`] variants classified
/// `InvalidInput` for every bad option (unknown capability or security opt, bad mount,
/// unknown user, resource out of range, no command); `Internal` for I/O failures.
pub fn build_spec(input: &SpecInput<'_>) -> Result<Spec> {
    let spec = input.spec;
    let host = &spec.host;
    let init = match (host.init, &input.init) {
        (false, _) => None,
        (true, Some(path)) => Some(path.clone()),
        (true, None) => return Err(SpecError::InitNotSupported),
    };
    let security = parse_security_opts(&host.security_opt)?;

    let mut proc_args = resolve_process(spec, input.image_config)?;
    if init.is_some() {
        // tini as pid 1: it reaps zombies and forwards signals to the command.
        let mut args = vec![INIT_PATH.to_owned(), "--".to_owned()];
        args.append(&mut proc_args.args);
        proc_args.args = args;
    }
    process::set_env(&mut proc_args.env, "HOSTNAME", &input.hostname);
    let user = resolve_user(input.rootfs, &proc_args.user_spec, &host.group_add)?;
    if !proc_args.env.iter().any(|e| process::env_key(e) == "HOME") {
        proc_args.env.push(format!("HOME={}", user.home));
    }

    let mut cap_names = capability_set(&host.cap_add, &host.cap_drop, host.privileged)?;
    let wants_all = host.privileged || host.cap_add.iter().any(|c| c.eq_ignore_ascii_case("all"));
    if let (true, Some(bound)) = (wants_all, input.features.capability_bound) {
        cap_names = caps::narrow_to(cap_names, bound);
    }
    if !(-1000..=1000).contains(&host.oom_score_adj) {
        return Err(SpecError::InvalidResources {
            reason: format!(
                "invalid value {}, range for oom score adj is [-1000, 1000]",
                host.oom_score_adj
            ),
        });
    }
    let oom_score_adj = i32::try_from(host.oom_score_adj).unwrap_or_default();

    let mut process = ProcessBuilder::default()
        .terminal(spec.tty)
        .user(
            UserBuilder::default()
                .uid(user.uid)
                .gid(user.gid)
                .additional_gids(user.additional_gids.clone())
                .build()?,
        )
        .args(proc_args.args)
        .env(proc_args.env)
        .cwd(proc_args.cwd)
        .capabilities(caps::linux_capabilities(&cap_names)?)
        .rlimits(resources::rlimits(
            input.features.nofile_limit,
            &host.ulimits,
        )?)
        .oom_score_adj(oom_score_adj)
        .build()?;
    // Leave the field out unless it is set: youki's libcontainer 0.7 treats any present value,
    // even `false`, as "no new privileges", then loads seccomp after dropping CAP_SYS_ADMIN
    // and fails with EACCES. Absent and `false` mean the same to the OCI spec and to runc.
    // (oci-spec's process builder starts from a default with the flag set.)
    process.set_no_new_privileges(security.no_new_privileges.then_some(true));

    let pid = match &input.pid {
        Some(mode) => mode.clone(),
        None => namespace_mode("pid", host.pid_mode.as_deref())?,
    };
    let ipc = match &input.ipc {
        Some(mode) => mode.clone(),
        None => namespace_mode("ipc", host.ipc_mode.as_deref())?,
    };
    let namespaces = namespaces(&pid, &ipc, &input.network, input.features.cgroup_v2)?;

    let mut user_mounts = input.mounts.clone();
    if let Some(path) = &init {
        user_mounts.push(ResolvedMount {
            source: path.clone(),
            destination: INIT_PATH.to_owned(),
            kind: MountKind::Bind,
            options: vec!["ro".to_owned()],
        });
    }
    let mounts = mounts::build_mounts(&mounts::MountPlan {
        privileged: host.privileged,
        readonly_rootfs: host.read_only_rootfs,
        ipc_host: ipc == NamespaceMode::Host,
        shm_size: host.shm_size,
        files: &input.network_files,
        user: &user_mounts,
        tmpfs: &host.tmpfs,
    })?;

    // `--device` and `--device-cgroup-rule` are resolved here, at every start, as dockerd
    // does: a node added or removed on the host since create counts.
    let custom = devices::custom_devices(host, input.host_devices)?;
    let mut device_rules = resources::device_rules(host.privileged)?;
    device_rules.extend(custom.rules);
    let mut nodes = resources::default_devices()?;
    // A `--device` at a default node's path (`--device /dev/null`) replaces it.
    nodes.retain(|d| !custom.nodes.iter().any(|c| c.path() == d.path()));
    nodes.extend(custom.nodes);
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .cgroups_path(PathBuf::from(&input.cgroups_path))
        .resources(resources::resources(host, input.features, device_rules)?)
        .devices(nodes)
        .sysctl(resources::sysctls(
            &host.sysctls,
            input.network == NamespaceMode::Host,
            ipc == NamespaceMode::Host,
        )?);
    let confine_paths = !host.privileged && !security.unmask_system_paths;
    let owned = |paths: &[&str]| -> Option<Vec<String>> {
        confine_paths.then(|| paths.iter().map(|p| (*p).to_owned()).collect())
    };
    if !host.privileged {
        let rendered = match security.seccomp {
            SeccompChoice::Default => Some(seccomp::render_default(&cap_names, input.arch)?),
            SeccompChoice::Custom(p) => Some(p.render(&cap_names, input.arch)?),
            SeccompChoice::Unconfined => None,
        };
        if let Some(rendered) = rendered {
            linux = linux.seccomp(rendered);
        }
    }

    let mut out = SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path(input.rootfs)
                .readonly(host.read_only_rootfs)
                .build()?,
        )
        .hostname(input.hostname.clone())
        .mounts(mounts)
        .process(process)
        .linux({
            // The builder starts from `Linux::default()`, which has runc's own masked and
            // read-only paths: always set both explicitly.
            let mut linux = linux.build()?;
            linux.set_masked_paths(owned(&MASKED_PATHS));
            linux.set_readonly_paths(owned(&READONLY_PATHS));
            linux
        });
    if let Some(domain) = spec.domainname.as_deref().filter(|d| !d.is_empty()) {
        out = out.domainname(domain);
    }
    tracing::debug!(container = input.id, "built OCI spec");
    Ok(out.build()?)
}

fn parse_security_opts(opts: &[String]) -> Result<SecurityOpts> {
    let mut out = SecurityOpts::default();
    for opt in opts {
        // Docker accepts both `key=value` and the legacy `key:value`.
        let (key, value) = match opt.split_once(['=', ':']) {
            Some((k, v)) => (k, Some(v)),
            None => (opt.as_str(), None),
        };
        let bad = || SpecError::InvalidSecurityOpt { opt: opt.clone() };
        match (key, value) {
            ("no-new-privileges", None | Some("true")) => out.no_new_privileges = true,
            ("no-new-privileges", Some("false")) => out.no_new_privileges = false,
            ("seccomp", Some("unconfined")) => out.seccomp = SeccompChoice::Unconfined,
            ("seccomp", Some("builtin" | "default")) => out.seccomp = SeccompChoice::Default,
            ("seccomp", Some(json)) if json.trim_start().starts_with('{') => {
                // The docker CLI sends the file's contents, not its path.
                let json = opt.split_once(['=', ':']).map_or("", |(_, v)| v);
                out.seccomp = SeccompChoice::Custom(Box::new(SeccompProfile::from_json(json)?));
            }
            ("systempaths", Some("unconfined")) => out.unmask_system_paths = true,
            // AppArmor and SELinux are not in use on Corral hosts; dockerd ignores these
            // options on such hosts too.
            ("apparmor" | "label", Some(_)) => {
                tracing::debug!(option = %opt, "ignoring security option: LSM not in use");
            }
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

fn namespace_mode(namespace: &'static str, mode: Option<&str>) -> Result<NamespaceMode> {
    match mode.unwrap_or("") {
        "" | "private" | "shareable" => Ok(NamespaceMode::Private),
        // ipc `none`: a private namespace (Docker also omits /dev/shm).
        "none" if namespace == "ipc" => Ok(NamespaceMode::Private),
        "host" => Ok(NamespaceMode::Host),
        other => Err(SpecError::InvalidNamespaceMode {
            namespace,
            mode: other.to_owned(),
            reason: if other.starts_with("container:") {
                "the caller must resolve the container's namespace path".to_owned()
            } else {
                "unknown mode".to_owned()
            },
        }),
    }
}

fn namespaces(
    pid: &NamespaceMode,
    ipc: &NamespaceMode,
    network: &NamespaceMode,
    cgroup: bool,
) -> Result<Vec<LinuxNamespace>> {
    let ns = |typ: LinuxNamespaceType, mode: &NamespaceMode| -> Result<Option<LinuxNamespace>> {
        Ok(match mode {
            NamespaceMode::Host => None,
            NamespaceMode::Private => Some(LinuxNamespaceBuilder::default().typ(typ).build()?),
            NamespaceMode::Join(path) => Some(
                LinuxNamespaceBuilder::default()
                    .typ(typ)
                    .path(path.clone())
                    .build()?,
            ),
        })
    };
    let private = NamespaceMode::Private;
    let cgroup_mode = if cgroup {
        NamespaceMode::Private
    } else {
        NamespaceMode::Host
    };
    Ok([
        ns(LinuxNamespaceType::Pid, pid)?,
        ns(LinuxNamespaceType::Network, network)?,
        ns(LinuxNamespaceType::Ipc, ipc)?,
        ns(LinuxNamespaceType::Uts, &private)?,
        ns(LinuxNamespaceType::Mount, &private)?,
        ns(LinuxNamespaceType::Cgroup, &cgroup_mode)?,
    ]
    .into_iter()
    .flatten()
    .collect())
}

#[cfg(test)]
mod tests;
