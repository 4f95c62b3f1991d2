use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use pathrs::flags::OpenFlags;
use pathrs::procfs::{ProcfsBase, ProcfsHandle};
use procfs::ProcError;
use procfs::process::MountInfo;

use super::ControllerType;
use super::controller_type::CONTROLLERS;

#[derive(thiserror::Error, Debug)]
pub enum V1MountPointError {
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
    #[error("failed to get mountinfo: {0}")]
    MountInfo(ProcError),
    #[error("could not find mountpoint for {subsystem}")]
    NotFound { subsystem: ControllerType },
    #[error(transparent)]
    Pathrs(#[from] pathrs::error::Error),
}

/// List all cgroup v1 subsystem mount points on the system. This can include unsupported
/// subsystems, comounted controllers and named hierarchies.
pub fn list_subsystem_mount_points() -> Result<Vec<PathBuf>, V1MountPointError> {
    let reader = BufReader::new(ProcfsHandle::new()?.open(
        ProcfsBase::ProcSelf,
        "mountinfo",
        OpenFlags::O_RDONLY | OpenFlags::O_CLOEXEC,
    )?);

    reader
        .lines()
        .map(|lr| {
            lr.map_err(V1MountPointError::Io)
                .and_then(|line| MountInfo::from_line(&line).map_err(V1MountPointError::MountInfo))
        })
        .try_fold(Vec::new(), |mut mount_points, r| {
            r.map(|m| {
                if m.fs_type == "cgroup" {
                    mount_points.push(m.mount_point);
                }
                mount_points
            })
        })
}

/// List the mount points of all currently supported cgroup subsystems.
pub fn list_supported_mount_points() -> Result<HashMap<ControllerType, PathBuf>, V1MountPointError>
{
    let mut mount_paths = HashMap::with_capacity(CONTROLLERS.len());

    for controller in CONTROLLERS {
        if let Ok(mount_point) = get_subsystem_mount_point(controller) {
            mount_paths.insert(controller.to_owned(), mount_point);
        }
    }

    Ok(mount_paths)
}

pub fn get_subsystem_mount_point(subsystem: &ControllerType) -> Result<PathBuf, V1MountPointError> {
    let subsystem_name = subsystem.to_string();
    let reader = BufReader::new(ProcfsHandle::new()?.open(
        ProcfsBase::ProcSelf,
        "mountinfo",
        OpenFlags::O_RDONLY | OpenFlags::O_CLOEXEC,
    )?);

    reader
        .lines()
        .map(|lr| {
            lr.map_err(V1MountPointError::Io)
                .and_then(|line| MountInfo::from_line(&line).map_err(V1MountPointError::MountInfo))
        })
        .find_map(|r| match r {
            Err(e) => Some(Err(e)),
            Ok(m) if m.fs_type == "cgroup" => {
                if mounts_subsystem(&m.mount_point, &subsystem_name) {
                    Some(Ok(m.mount_point))
                } else {
                    None
                }
            }
            Ok(_) => None,
        })
        .transpose()?
        .ok_or(V1MountPointError::NotFound {
            subsystem: *subsystem,
        })
}

/// Whether the cgroup v1 hierarchy mounted at `mount_point` is the one of `subsystem_name`.
fn mounts_subsystem(mount_point: &Path, subsystem_name: &str) -> bool {
    // Some systems mount net_prio and net_cls in the same directory
    // other systems mount them in their own directories. This
    // should handle both cases.
    match subsystem_name {
        "net_cls" => ["net_cls,net_prio", "net_prio,net_cls", "net_cls"]
            .iter()
            .any(|s| mount_point.ends_with(s)),
        "net_prio" => ["net_cls,net_prio", "net_prio,net_cls", "net_prio"]
            .iter()
            .any(|s| mount_point.ends_with(s)),
        "cpu" => ["cpu,cpuacct", "cpu"]
            .iter()
            .any(|s| mount_point.ends_with(s)),
        "cpuacct" => ["cpu,cpuacct", "cpuacct"]
            .iter()
            .any(|s| mount_point.ends_with(s)),
        _ => mount_point.ends_with(subsystem_name),
    }
}

/// (Corral patch) The cgroup v1 mounts of this process's mount namespace, read from
/// `/proc/self/mountinfo` once, in its order, so that the mount points of all subsystems are
/// found with one read: [`CgroupMounts::find`] answers exactly as
/// [`get_subsystem_mount_point`] would, which reads and parses the file again for every
/// subsystem.
#[derive(Debug)]
pub struct CgroupMounts {
    /// Cgroup mount points, and the text of a line that failed to read or parse (where the
    /// search stopped).
    entries: Vec<Result<PathBuf, String>>,
}

impl CgroupMounts {
    /// Reads this process's mountinfo.
    pub fn read() -> Result<Self, V1MountPointError> {
        let reader = BufReader::new(ProcfsHandle::new()?.open(
            ProcfsBase::ProcSelf,
            "mountinfo",
            OpenFlags::O_RDONLY | OpenFlags::O_CLOEXEC,
        )?);
        let mut entries = Vec::new();
        for line in reader.lines() {
            let parsed = line
                .map_err(|err| err.to_string())
                .and_then(|line| MountInfo::from_line(&line).map_err(|err| err.to_string()));
            match parsed {
                Ok(m) if m.fs_type == "cgroup" => entries.push(Ok(m.mount_point)),
                Ok(_) => {}
                Err(err) => {
                    // `get_subsystem_mount_point` stops at the first bad line.
                    entries.push(Err(err));
                    break;
                }
            }
        }
        Ok(Self { entries })
    }

    /// The mount point of `subsystem`: the first cgroup mount for it, unless a bad line
    /// comes before it.
    pub fn find(&self, subsystem: &ControllerType) -> Result<PathBuf, V1MountPointError> {
        let subsystem_name = subsystem.to_string();
        for entry in &self.entries {
            match entry {
                Err(text) => {
                    return Err(V1MountPointError::Io(std::io::Error::other(text.clone())));
                }
                Ok(mount_point) if mounts_subsystem(mount_point, &subsystem_name) => {
                    return Ok(mount_point.clone());
                }
                Ok(_) => {}
            }
        }
        Err(V1MountPointError::NotFound {
            subsystem: *subsystem,
        })
    }
}
