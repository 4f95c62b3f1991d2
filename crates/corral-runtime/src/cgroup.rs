//! Live changes to a running container's cgroup limits (`docker update`), through youki's
//! libcgroups so both cgroup layouts are written as the runtimes wrote them at create.

use std::path::PathBuf;

use corral_core::{error::Classify, ErrorKind};
use libcgroups::common::{create_cgroup_manager, CgroupConfig, CgroupManager, ControllerOpt};
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
