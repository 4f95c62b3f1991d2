//! Live changes to a running container's cgroup limits (`docker update`), through youki's
//! libcgroups so both cgroup layouts are written as the runtimes wrote them at create.

use std::path::PathBuf;

use corral_core::{error::Classify, ErrorKind};
use libcgroups::common::{
    create_cgroup_manager, CgroupConfig, CgroupManager, ControllerOpt, FreezerState,
};
use oci_spec::runtime::LinuxResources;

/// Applying new limits failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CgroupError {
    /// The container's cgroup could not be opened.
    #[error("opening cgroup {path}: {reason}")]
    Open {
        /// The cgroup path (`/corral-<instance>/<id>`).
        path: String,
        /// The cause.
        reason: String,
    },
    /// The kernel refused a value (for example a memory limit below current usage).
    #[error("updating cgroup {path}: {reason}")]
    Apply {
        /// The cgroup path.
        path: String,
        /// The cause.
        reason: String,
    },
}

impl Classify for CgroupError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Open { .. } => ErrorKind::Internal,
            Self::Apply { .. } => ErrorKind::InvalidInput,
        }
    }
}

/// Writes `resources` into the existing cgroup `cgroups_path` (the spec's
/// `linux.cgroupsPath`, not systemd's slice form). Blocking: call it off the async runtime.
///
/// # Errors
/// [`CgroupError`] when the cgroup cannot be opened or the kernel refuses a value.
pub fn update_resources(
    cgroups_path: &str,
    container_id: &str,
    resources: &LinuxResources,
) -> Result<(), CgroupError> {
    let manager = create_cgroup_manager(CgroupConfig {
        cgroup_path: PathBuf::from(cgroups_path),
        systemd_cgroup: false,
        container_name: container_id.to_owned(),
    })
    .map_err(|e| CgroupError::Open {
        path: cgroups_path.to_owned(),
        reason: e.to_string(),
    })?;
    manager
        .apply(&ControllerOpt {
            resources,
            disable_oom_killer: false,
            oom_score_adj: None,
            freezer_state: None,
        })
        .map_err(|e| CgroupError::Apply {
            path: cgroups_path.to_owned(),
            reason: e.to_string(),
        })
}

/// Whether any hierarchy under `/sys/fs/cgroup` (or the cgroup2 root itself) still has
/// the cgroup `cgroups_path`.
#[must_use]
pub fn exists(cgroups_path: &str) -> bool {
    let rel = cgroups_path.trim_start_matches('/');
    let root = std::path::Path::new("/sys/fs/cgroup");
    if root.join(rel).is_dir() {
        return true;
    }
    std::fs::read_dir(root).is_ok_and(|dirs| dirs.flatten().any(|d| d.path().join(rel).is_dir()))
}

/// Removes the cgroup of a container whose shim is gone (so nothing else will): thaws
/// it, kills every process still in it, waits for them to leave (up to about a
/// second), and removes the cgroup from every hierarchy. Blocking: call it off the
/// async runtime.
///
/// # Errors
/// [`CgroupError`] when the cgroup cannot be opened or still holds processes, or the
/// kernel refuses the removal.
pub fn kill_and_remove(cgroups_path: &str, container_id: &str) -> Result<(), CgroupError> {
    let open = |e: &dyn std::fmt::Display| CgroupError::Open {
        path: cgroups_path.to_owned(),
        reason: e.to_string(),
    };
    let manager = create_cgroup_manager(CgroupConfig {
        cgroup_path: PathBuf::from(cgroups_path),
        systemd_cgroup: false,
        container_name: container_id.to_owned(),
    })
    .map_err(|e| open(&e))?;
    // A paused container's processes take SIGKILL only once thawed.
    let _ = manager.freeze(FreezerState::Thawed);
    for _ in 0..100 {
        let pids = manager.get_all_pids().map_err(|e| open(&e))?;
        if pids.is_empty() {
            return manager.remove().map_err(|e| CgroupError::Apply {
                path: cgroups_path.to_owned(),
                reason: e.to_string(),
            });
        }
        for pid in pids {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Err(CgroupError::Apply {
        path: cgroups_path.to_owned(),
        reason: "processes remain after SIGKILL".to_owned(),
    })
}
