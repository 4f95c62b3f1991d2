//! The default back end: youki's libcontainer, in the shim's own process.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use corral_sys::devices::{BpfDeviceCgroup, DeviceCgroup};
use corral_sys::process::Pid;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::syscall::syscall::SyscallType;
use nix::sys::signal::Signal;

use super::devices::DevicePlan;
use super::runtime::{ContainerStdio, OciRuntime, RuntimeError};
use super::seccomp_program::{use_seccomp_program, SECCOMP_PROGRAM_FILE};

/// The cgroupfs root libcgroups creates container cgroups under.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Runs containers with libcontainer; state lives under `root` (like `youki --root`).
///
/// On a pure cgroup v2 host it also attaches the container's device program, which
/// libcgroups (built without `cgroupsv2_devices`) does not (see `shim/devices.rs`).
#[derive(Clone)]
pub struct Libcontainer {
    root: PathBuf,
    cgroup_root: PathBuf,
    devices: Arc<dyn DeviceCgroup>,
}

impl std::fmt::Debug for Libcontainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Libcontainer")
            .field("root", &self.root)
            .field("cgroup_root", &self.cgroup_root)
            .finish_non_exhaustive()
    }
}

impl Libcontainer {
    /// A back end keeping container state under `root`, with cgroups under `/sys/fs/cgroup`
    /// and device programs loaded through `bpf(2)`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            cgroup_root: PathBuf::from(CGROUP_ROOT),
            devices: Arc::new(BpfDeviceCgroup::new()),
        }
    }

    /// Uses `cgroup_root` as the cgroupfs root and `devices` to attach device programs.
    #[must_use]
    pub fn with_device_cgroup(
        mut self,
        cgroup_root: impl Into<PathBuf>,
        devices: Arc<dyn DeviceCgroup>,
    ) -> Self {
        self.cgroup_root = cgroup_root.into();
        self.devices = devices;
        self
    }

    /// Reads what the shim itself needs from the bundle's spec before anything is created:
    /// the device program (compiled now so a bad rule leaves no state) and the precompiled
    /// seccomp program. The spec is only read when one of them applies: only a pure v2 host
    /// needs a device program, only a bundle with `seccomp.bpf` a seccomp profile.
    fn prepare(&self, bundle: &Path) -> Result<Option<DevicePlan>, RuntimeError> {
        let v2 = self.cgroup_root.join("cgroup.controllers").is_file();
        let program = bundle.join(SECCOMP_PROGRAM_FILE).is_file();
        if !v2 && !program {
            return Ok(None);
        }
        // Read whole, then parsed: `Spec::load`'s reader path is several times slower.
        let bytes = std::fs::read(bundle.join("config.json")).map_err(chain)?;
        if !v2 {
            // Only the seccomp profile is needed: the rest of the spec is skipped, not built.
            #[derive(serde::Deserialize)]
            struct SeccompOnly {
                linux: Option<LinuxSeccompOnly>,
            }
            #[derive(serde::Deserialize)]
            struct LinuxSeccompOnly {
                seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
            }
            let spec: SeccompOnly = serde_json::from_slice(&bytes).map_err(chain)?;
            use_seccomp_program(bundle, spec.linux.and_then(|l| l.seccomp).as_ref());
            return Ok(None);
        }
        let spec: oci_spec::runtime::Spec = serde_json::from_slice(&bytes).map_err(chain)?;
        if program {
            use_seccomp_program(
                bundle,
                spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()),
            );
        }
        DevicePlan::from_spec(&self.cgroup_root, &spec).map_err(|err| RuntimeError {
            message: format!("invalid device cgroup rules: {err}"),
        })
    }

    fn load(&self, id: &str) -> Result<Container, RuntimeError> {
        Container::load(self.root.join(id)).map_err(chain)
    }
}

/// Joins an error and its sources into one message.
pub(super) fn chain(err: impl std::error::Error) -> RuntimeError {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    RuntimeError { message }
}

impl Libcontainer {
    /// Creates the container (and attaches its device program): the libcontainer handle.
    fn build(
        &self,
        id: &str,
        bundle: &Path,
        stdio: ContainerStdio,
    ) -> Result<Container, RuntimeError> {
        let device_plan = self.prepare(bundle)?;
        std::fs::create_dir_all(&self.root).map_err(chain)?;
        let mut builder = ContainerBuilder::new(id.to_owned(), SyscallType::default())
            .with_root_path(self.root.clone())
            .map_err(chain)?
            .validate_id()
            .map_err(chain)?;
        builder = match stdio {
            ContainerStdio::Pipes {
                stdin,
                stdout,
                stderr,
            } => builder
                .with_stdin(stdin)
                .with_stdout(stdout)
                .with_stderr(stderr),
            ContainerStdio::Console { socket } => builder.with_console_socket(Some(socket)),
        };
        let container = builder
            .as_init(bundle)
            .with_systemd(false)
            .with_detach(true)
            .build()
            .map_err(chain)?;
        // The init waits for `start` in its cgroup: attach before the user's program runs.
        // On error the caller deletes the created container (and its cgroup).
        if let Some(plan) = device_plan {
            plan.attach(self.devices.as_ref()).map_err(|err| {
                let mut failed = chain(err);
                failed.message = format!("applying the device cgroup: {}", failed.message);
                failed
            })?;
            tracing::debug!(cgroup = %plan.cgroup.display(), "device program attached");
        }
        Ok(container)
    }
}

/// The init's host pid of a created container.
fn init_pid(container: &Container) -> Result<Pid, RuntimeError> {
    container
        .pid()
        .and_then(|pid| Pid::new(pid.as_raw()))
        .ok_or_else(|| RuntimeError {
            message: "libcontainer reported no init pid".into(),
        })
}

impl OciRuntime for Libcontainer {
    fn create(&self, id: &str, bundle: &Path, stdio: ContainerStdio) -> Result<Pid, RuntimeError> {
        init_pid(&self.build(id, bundle, stdio)?)
    }

    fn create_and_start(
        &self,
        id: &str,
        bundle: &Path,
        stdio: ContainerStdio,
    ) -> Result<Pid, RuntimeError> {
        let mut container = self.build(id, bundle, stdio)?;
        let pid = init_pid(&container)?;
        container.start().map_err(chain)?;
        Ok(pid)
    }

    fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.load(id)?.start().map_err(chain)
    }

    fn exec(
        &self,
        id: &str,
        process: &Path,
        console_socket: Option<&Path>,
    ) -> Result<Pid, RuntimeError> {
        let pid = ContainerBuilder::new(id.to_owned(), SyscallType::default())
            .with_root_path(self.root.clone())
            .map_err(chain)?
            .validate_id()
            .map_err(chain)?
            .with_console_socket(console_socket)
            .as_tenant()
            // libcontainer insists on "detached" exactly when a console socket is given; it
            // changes nothing else: the process is our child either way.
            .with_detach(console_socket.is_some())
            .with_process(Some(process))
            .build()
            .map_err(chain)?;
        Pid::new(pid.as_raw()).ok_or_else(|| RuntimeError {
            message: format!("libcontainer reported an invalid exec pid {pid}"),
        })
    }

    fn kill(&self, id: &str, signal: Signal, all: bool) -> Result<(), RuntimeError> {
        self.load(id)?.kill(signal, all).map_err(chain)
    }

    fn pause(&self, id: &str) -> Result<(), RuntimeError> {
        self.load(id)?.pause().map_err(chain)
    }

    fn resume(&self, id: &str) -> Result<(), RuntimeError> {
        self.load(id)?.resume().map_err(chain)
    }

    fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError> {
        match self.load(id) {
            Ok(mut container) => container.delete(force).map_err(chain),
            // Already gone: nothing to delete.
            Err(_) if !self.root.join(id).exists() => Ok(()),
            Err(err) => Err(err),
        }
    }
}
