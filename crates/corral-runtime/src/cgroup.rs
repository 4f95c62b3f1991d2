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

/// Whether a [`warm_attach_lock`] is under way.
static WARMING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Puts the kernel's cgroup migration lock into its writer mode ahead of a container's
/// cgroup attach. Blocking (up to one RCU grace period); best effort: errors are ignored.
///
/// Moving a task into a cgroup (the runtime's `cgroup.procs` writes, which every container
/// start makes) takes the global `cgroup_threadgroup_rwsem` for writing. Unless the cgroup2
/// root is mounted with `favordynmods`, the first such write after a quiet spell waits for an
/// RCU grace period (~5 ms on the 2-core VM, docs/performance.md), while writes within the
/// next grace periods do not. Writing this process's pid into the `cgroup.procs` of the
/// cgroup it is already in takes the lock and moves nothing, so calling this when a
/// container is created or started lets that wait overlap the engine's other start work
/// instead of delaying the attach. One call at a time: callers arriving while one waits
/// return at once. Does nothing when this process's cgroup cannot be found for certain (the
/// file is checked once to list this process).
pub fn warm_attach_lock() {
    use std::sync::atomic::Ordering;
    if WARMING.swap(true, Ordering::AcqRel) {
        return;
    }
    static PROCS: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    let procs = PROCS.get_or_init(|| {
        let file = own_procs_file(&std::fs::read_to_string("/proc/self/cgroup").ok()?)?;
        lists_pid(&file, std::process::id()).then_some(file)
    });
    if let Some(procs) = procs {
        if let Err(e) = std::fs::write(procs, std::process::id().to_string()) {
            tracing::debug!(file = %procs.display(), error = %e, "warming the cgroup migration lock");
        }
    }
    WARMING.store(false, Ordering::Release);
}

/// Whether the `cgroup.procs` file lists `pid`: the file found from `/proc/self/cgroup` is
/// only used when it really is this process's cgroup (in a cgroup namespace the table's paths
/// are relative to the namespace's root, which need not be the mount's root).
fn lists_pid(procs: &std::path::Path, pid: u32) -> bool {
    let pid = pid.to_string();
    std::fs::read_to_string(procs).is_ok_and(|list| list.lines().any(|l| l == pid))
}

/// The `cgroup.procs` file of this process's own cgroup, from `/proc/self/cgroup`: its
/// freezer cgroup where v1 controllers are mounted (a hierarchy that holds tasks in every
/// cgroup), else its cgroup on a pure v2 host; `None` when neither is found.
fn own_procs_file(table: &str) -> Option<PathBuf> {
    let root = std::path::Path::new("/sys/fs/cgroup");
    let line = |want: &dyn Fn(&str) -> bool| {
        table.lines().find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
            want(controllers).then(|| path.trim_start_matches('/').to_owned())
        })
    };
    if let Some(path) = line(&|c| c.split(',').any(|c| c == "freezer")) {
        let file = root.join("freezer").join(path).join("cgroup.procs");
        return file.exists().then_some(file);
    }
    if root.join("cgroup.controllers").exists() {
        let path = line(&|c| c.is_empty())?;
        let file = root.join(path).join("cgroup.procs");
        return file.exists().then_some(file);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_procs_file_is_the_freezer_cgroup_or_the_v2_one() {
        let hybrid = std::path::Path::new("/sys/fs/cgroup/freezer/cgroup.procs").exists();
        let pure_v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        let table = "12:freezer:/\n11:cpu,cpuacct:/x\n0::/\n";
        // A pure v2 host has no freezer hierarchy mounted: nothing to name then.
        let want = hybrid.then(|| PathBuf::from("/sys/fs/cgroup/freezer/cgroup.procs"));
        assert_eq!(own_procs_file(table), want);
        // A cgroup that does not exist gives no file rather than a wrong one.
        assert_eq!(own_procs_file("12:freezer:/corral-no-such-cgroup\n"), None);
        if pure_v2 {
            assert_eq!(
                own_procs_file("0::/\n"),
                Some(PathBuf::from("/sys/fs/cgroup/cgroup.procs"))
            );
        }
        // The file is used only when it lists this process, line by line.
        let dir = tempfile::tempdir().unwrap();
        let procs = dir.path().join("cgroup.procs");
        std::fs::write(&procs, "12\n345\n").unwrap();
        assert!(lists_pid(&procs, 345));
        assert!(!lists_pid(&procs, 34));
        assert!(!lists_pid(
            std::path::Path::new("/nonexistent/cgroup.procs"),
            1
        ));
    }
}
