//! Which cgroup controllers can take a container's resource limits, and dockerd's handling
//! of a limit the host cannot apply (moby `verifyPlatformContainerResources`): most are
//! discarded with a warning the CLI prints, `--cpus` is refused.
//!
//! On cgroup v1 a controller is there when its hierarchy is mounted; on a pure cgroup v2
//! host when the root's `cgroup.controllers` lists it (libcgroups enables every listed
//! controller below it, and writes a limit of any other one to a file that does not exist).

use std::path::Path;

use corral_core::container::HostSpec;

use crate::error::{Error, Result};

/// The controllers (and controller features) limits need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CgroupSupport {
    /// `memory`: `--memory`, `--memory-reservation`, `--oom-kill-disable` (v1 only).
    pub(crate) memory: bool,
    /// `cpu`: `--cpu-shares`, `--cpus`, `--cpu-period`, `--cpu-quota`.
    pub(crate) cpu: bool,
    /// `cpuset`: `--cpuset-cpus`, `--cpuset-mems`.
    pub(crate) cpuset: bool,
    /// `pids`: `--pids-limit`.
    pub(crate) pids: bool,
    /// The OOM killer can be disabled per cgroup (v1's `memory.oom_control`; never on v2).
    pub(crate) oom_kill_disable: bool,
}

impl CgroupSupport {
    /// Reads the host below `root` (`/sys/fs/cgroup`).
    pub(crate) fn detect(root: &Path) -> Self {
        match std::fs::read_to_string(root.join("cgroup.controllers")) {
            Ok(list) => Self::from_v2_controllers(&list),
            Err(_) => {
                let has = |p: &str| root.join(p).exists();
                CgroupSupport {
                    memory: has("memory/memory.limit_in_bytes"),
                    cpu: has("cpu/cpu.shares"),
                    cpuset: has("cpuset/cpuset.cpus"),
                    pids: has("pids"),
                    oom_kill_disable: has("memory/memory.oom_control"),
                }
            }
        }
    }

    /// This host's support under `/sys/fs/cgroup`, read once per process: the cgroup layout
    /// does not change while the daemon runs, and this sits on the create path.
    pub(crate) fn host() -> Self {
        static HOST: std::sync::OnceLock<CgroupSupport> = std::sync::OnceLock::new();
        *HOST.get_or_init(|| Self::detect(Path::new("/sys/fs/cgroup")))
    }

    /// A pure v2 host whose root `cgroup.controllers` reads `list`.
    pub(crate) fn from_v2_controllers(list: &str) -> Self {
        let has = |c: &str| list.split_whitespace().any(|x| x == c);
        CgroupSupport {
            memory: has("memory"),
            cpu: has("cpu"),
            cpuset: has("cpuset"),
            pids: has("pids"),
            oom_kill_disable: false,
        }
    }
}

/// Drops from `host` the limits `support` cannot apply and returns dockerd's warning for
/// each (same text); `--cpus` without the cpu controller is refused as dockerd refuses it.
///
/// # Errors
/// [`Error::InvalidInput`] for `--cpus` (`nano_cpus`) without the cpu controller.
pub(crate) fn discard_unsupported(
    host: &mut HostSpec,
    support: CgroupSupport,
) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    let mut warn = |w: &str| warnings.push(w.to_owned());
    if !support.memory {
        if host.memory > 0 || host.memory_swap > 0 {
            warn("Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded.");
            host.memory = 0;
            host.memory_swap = 0;
        }
        if host.memory_reservation > 0 {
            warn("Your kernel does not support memory soft limit capabilities or the cgroup is not mounted. Limitation discarded.");
            host.memory_reservation = 0;
        }
    }
    if host.oom_kill_disable && !(support.memory && support.oom_kill_disable) {
        warn("Your kernel does not support OomKillDisable. OomKillDisable discarded.");
        host.oom_kill_disable = false;
    }
    if !support.cpu {
        if host.nano_cpus > 0 {
            return Err(Error::InvalidInput(
                "NanoCPUs can not be set, as your kernel does not support CPU CFS scheduler or the cgroup is not mounted"
                    .into(),
            ));
        }
        if host.cpu_shares > 0 {
            warn("Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded.");
            host.cpu_shares = 0;
        }
        if host.cpu_period > 0 || host.cpu_quota > 0 {
            warn("Your kernel does not support CPU CFS scheduler. CPU period/quota discarded.");
            host.cpu_period = 0;
            host.cpu_quota = 0;
        }
    }
    if !support.cpuset && (!host.cpuset_cpus.is_empty() || !host.cpuset_mems.is_empty()) {
        warn("Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded.");
        host.cpuset_cpus.clear();
        host.cpuset_mems.clear();
    }
    if !support.pids && host.pids_limit.is_some_and(|l| l > 0) {
        warn("Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded.");
        host.pids_limit = None;
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limited() -> HostSpec {
        HostSpec {
            memory: 64 << 20,
            memory_swap: 128 << 20,
            memory_reservation: 32 << 20,
            cpu_shares: 512,
            cpu_quota: 50_000,
            cpuset_cpus: "0".into(),
            pids_limit: Some(50),
            oom_kill_disable: true,
            ..HostSpec::default()
        }
    }

    #[test]
    fn v2_without_controllers_discards_limits_with_dockerds_warnings() {
        let mut h = limited();
        let w =
            discard_unsupported(&mut h, CgroupSupport::from_v2_controllers("hugetlb\n")).unwrap();
        assert_eq!(w.len(), 7, "{w:#?}");
        assert!(w[0].starts_with("Your kernel does not support memory limit"));
        assert!(w.iter().any(|x| x.contains("PIDs limit discarded")));
        assert!(w.iter().any(|x| x.contains("Cpuset discarded")));
        assert_eq!((h.memory, h.memory_swap, h.memory_reservation), (0, 0, 0));
        assert_eq!((h.cpu_shares, h.cpu_quota, h.pids_limit), (0, 0, None));
        assert!(h.cpuset_cpus.is_empty() && !h.oom_kill_disable);
    }

    #[test]
    fn refuses_cpus_without_the_cpu_controller() {
        let mut h = HostSpec {
            nano_cpus: 500_000_000,
            ..HostSpec::default()
        };
        let e = discard_unsupported(&mut h, CgroupSupport::from_v2_controllers("")).unwrap_err();
        assert!(e.to_string().contains("NanoCPUs can not be set"), "{e}");
    }

    #[test]
    fn keeps_limits_the_host_supports() {
        let mut h = limited();
        let v2 = CgroupSupport::from_v2_controllers("cpuset cpu io memory hugetlb pids rdma misc");
        let w = discard_unsupported(&mut h, v2).unwrap();
        // v2 never disables the OOM killer.
        assert_eq!(
            w,
            ["Your kernel does not support OomKillDisable. OomKillDisable discarded."]
        );
        assert_eq!(h.memory, 64 << 20);
        assert_eq!(h.pids_limit, Some(50));
        assert_eq!(h.cpuset_cpus, "0");
    }

    #[test]
    fn detects_v1_hierarchies_and_v2_controllers_from_files() {
        let d = tempfile::tempdir().unwrap();
        for f in [
            "memory/memory.limit_in_bytes",
            "memory/memory.oom_control",
            "cpu/cpu.shares",
        ] {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        let s = CgroupSupport::detect(d.path());
        assert!(s.memory && s.cpu && s.oom_kill_disable && !s.cpuset && !s.pids);
        std::fs::write(d.path().join("cgroup.controllers"), "pids memory\n").unwrap();
        let s = CgroupSupport::detect(d.path());
        assert!(s.memory && s.pids && !s.cpu && !s.oom_kill_disable);
    }
}
