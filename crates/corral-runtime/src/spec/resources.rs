//! Cgroup resources, devices, rlimits and sysctls of a container.

use std::collections::{BTreeMap, HashMap};

use corral_core::container::HostSpec;
use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup,
    LinuxDeviceType, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder,
    PosixRlimit, PosixRlimitBuilder, PosixRlimitType,
};

use super::error::{Result, SpecError};

/// Docker's smallest memory limit (moby `linuxMinMemory`).
const MIN_MEMORY: i64 = 6 * 1024 * 1024;
/// CFS period used to express `--cpus` (moby uses 100ms).
const CPU_PERIOD: u64 = 100_000;
/// `RLIMIT_NOFILE` a container inherits from dockerd under systemd on Debian.
pub const DEFAULT_NOFILE: u64 = 1_048_576;

/// Host properties that change how resources are expressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostFeatures {
    /// The memory cgroup can limit swap (`memory.memsw.*` on v1, `memory.swap.max` on v2).
    /// Without it a swap limit is dropped with a warning, as Docker does.
    pub swap_limit: bool,
    /// The host runs the unified cgroup v2 hierarchy: containers get a cgroup namespace
    /// (Docker's default `--cgroupns=private` there).
    pub cgroup_v2: bool,
    /// `RLIMIT_NOFILE` (soft and hard) for containers without a `nofile` ulimit; `None`
    /// inherits the runtime's. It must not exceed what the runtime may set: its own hard
    /// limit unless it holds `CAP_SYS_RESOURCE`. Defaults to [`DEFAULT_NOFILE`].
    pub nofile_limit: Option<u64>,
    /// The runtime's capability bounding set (`CapBnd` of the daemon, see
    /// [`super::bounding_set_from_status`]). `--privileged` and `--cap-add ALL` mean "every
    /// capability available", so they are narrowed to it; `None` assumes all are available.
    pub capability_bound: Option<u64>,
    /// The block I/O controller takes a weight (`blkio.weight` on v1, the `io` controller
    /// on v2). Without it `--blkio-weight` is dropped with a warning, as Docker does.
    pub blkio_weight: bool,
}

impl Default for HostFeatures {
    fn default() -> Self {
        Self {
            swap_limit: true,
            cgroup_v2: false,
            nofile_limit: Some(DEFAULT_NOFILE),
            capability_bound: None,
            blkio_weight: true,
        }
    }
}

/// (path, type, major, minor) of the devices every container gets (runc's defaults).
const DEFAULT_DEVICES: [(&str, LinuxDeviceType, i64, i64); 6] = [
    ("/dev/null", LinuxDeviceType::C, 1, 3),
    ("/dev/zero", LinuxDeviceType::C, 1, 5),
    ("/dev/full", LinuxDeviceType::C, 1, 7),
    ("/dev/random", LinuxDeviceType::C, 1, 8),
    ("/dev/urandom", LinuxDeviceType::C, 1, 9),
    ("/dev/tty", LinuxDeviceType::C, 5, 0),
];

/// The device nodes the runtime creates in the container's `/dev`.
pub(crate) fn default_devices() -> Result<Vec<LinuxDevice>> {
    DEFAULT_DEVICES
        .iter()
        .map(|(path, typ, major, minor)| {
            Ok(LinuxDeviceBuilder::default()
                .path(*path)
                .typ(*typ)
                .major(*major)
                .minor(*minor)
                .file_mode(0o666u32)
                .uid(0u32)
                .gid(0u32)
                .build()?)
        })
        .collect()
}

/// The device cgroup: privileged allows everything; otherwise deny all, then allow mknod of
/// any node and use of the default devices, `/dev/console`, the pty devices and `/dev/net/tun`
/// (what runc appends to Docker's rules).
pub(crate) fn device_rules(privileged: bool) -> Result<Vec<LinuxDeviceCgroup>> {
    use super::devices::cgroup_rule as rule;
    if privileged {
        return Ok(vec![rule(true, LinuxDeviceType::A, None, None, "rwm")?]);
    }
    let mut rules = vec![
        rule(false, LinuxDeviceType::A, None, None, "rwm")?,
        rule(true, LinuxDeviceType::C, None, None, "m")?,
        rule(true, LinuxDeviceType::B, None, None, "m")?,
    ];
    for (_, typ, major, minor) in DEFAULT_DEVICES {
        rules.push(rule(true, typ, Some(major), Some(minor), "rwm")?);
    }
    rules.push(rule(true, LinuxDeviceType::C, Some(5), Some(1), "rwm")?); // /dev/console
    rules.push(rule(true, LinuxDeviceType::C, Some(5), Some(2), "rwm")?); // /dev/ptmx
    rules.push(rule(true, LinuxDeviceType::C, Some(136), None, "rwm")?); // /dev/pts/*
    rules.push(rule(true, LinuxDeviceType::C, Some(10), Some(200), "rwm")?); // /dev/net/tun
    Ok(rules)
}

/// Memory, CPU and pids limits with Docker's validation and defaults, plus `devices`.
pub(crate) fn resources(
    host: &HostSpec,
    features: HostFeatures,
    devices: Vec<LinuxDeviceCgroup>,
) -> Result<LinuxResources> {
    let invalid = |reason: String| SpecError::InvalidResources { reason };
    if host.memory < 0 {
        return Err(invalid("memory limit can not be negative".into()));
    }
    if host.memory > 0 && host.memory < MIN_MEMORY {
        return Err(invalid("minimum memory limit allowed is 6MB".into()));
    }
    if host.memory_swap < -1 {
        return Err(invalid(
            "invalid memory swap limit; use -1 for unlimited swap".into(),
        ));
    }
    if host.memory_swap > 0 && host.memory == 0 {
        return Err(invalid(
            "you should always set the memory limit when using memoryswap limit".into(),
        ));
    }
    if host.memory > 0 && host.memory_swap > 0 && host.memory_swap < host.memory {
        return Err(invalid(
            "minimum memoryswap limit should be larger than memory limit".into(),
        ));
    }
    let mut memory = LinuxMemoryBuilder::default();
    let mut any_memory = false;
    if host.memory > 0 {
        memory = memory.limit(host.memory);
        any_memory = true;
        let swap = match host.memory_swap {
            0 => host.memory.checked_mul(2),
            s => Some(s),
        };
        match swap {
            Some(s) if features.swap_limit => memory = memory.swap(s),
            Some(_) => tracing::warn!("swap limit not supported by the host; dropping it"),
            None => return Err(invalid("memory limit too large".into())),
        }
    }
    if host.memory_reservation < 0 {
        return Err(invalid("memory reservation can not be negative".into()));
    }
    if host.memory_reservation > 0 && host.memory_reservation < MIN_MEMORY {
        return Err(invalid("Minimum memory reservation allowed is 6MB".into()));
    }
    if host.memory > 0 && host.memory_reservation > 0 && host.memory < host.memory_reservation {
        return Err(invalid(
            "Minimum memory limit can not be less than memory reservation limit, see usage".into(),
        ));
    }
    if host.memory_reservation > 0 {
        memory = memory.reservation(host.memory_reservation);
        any_memory = true;
    }
    if host.oom_kill_disable {
        memory = memory.disable_oom_killer(true);
        any_memory = true;
    }

    if host.nano_cpus < 0 || (host.nano_cpus > 0 && host.nano_cpus < 10_000_000) {
        return Err(invalid("range of CPUs is from 0.01 upwards".into()));
    }
    if host.cpu_shares < 0 {
        return Err(invalid("cpu shares can not be negative".into()));
    }
    let mut cpu = LinuxCpuBuilder::default();
    let mut any_cpu = false;
    if host.nano_cpus > 0 {
        let quota = i128::from(host.nano_cpus) * i128::from(CPU_PERIOD) / 1_000_000_000;
        let quota = i64::try_from(quota).map_err(|_| invalid("cpu limit too large".into()))?;
        cpu = cpu.quota(quota).period(CPU_PERIOD);
        any_cpu = true;
    }
    if host.cpu_shares > 0 {
        cpu = cpu.shares(host.cpu_shares.unsigned_abs());
        any_cpu = true;
    }
    if host.nano_cpus > 0 && host.cpu_period > 0 {
        return Err(invalid(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set".into(),
        ));
    }
    if host.nano_cpus > 0 && host.cpu_quota > 0 {
        return Err(invalid(
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set".into(),
        ));
    }
    if host.cpu_period != 0 && !(1000..=1_000_000).contains(&host.cpu_period) {
        return Err(invalid(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
                .into(),
        ));
    }
    if host.cpu_quota > 0 && host.cpu_quota < 1000 {
        return Err(invalid(
            "CPU cfs quota can not be less than 1ms (i.e. 1000)".into(),
        ));
    }
    if host.cpu_period > 0 {
        cpu = cpu.period(host.cpu_period.unsigned_abs());
        any_cpu = true;
    }
    if host.cpu_quota > 0 {
        cpu = cpu.quota(host.cpu_quota);
        any_cpu = true;
    }
    if !host.cpuset_cpus.is_empty() {
        parse_cpuset(&host.cpuset_cpus).ok_or_else(|| {
            invalid(format!(
                "Invalid value {} for cpuset cpus",
                host.cpuset_cpus
            ))
        })?;
        cpu = cpu.cpus(host.cpuset_cpus.clone());
        any_cpu = true;
    }
    if !host.cpuset_mems.is_empty() {
        parse_cpuset(&host.cpuset_mems).ok_or_else(|| {
            invalid(format!(
                "Invalid value {} for cpuset mems",
                host.cpuset_mems
            ))
        })?;
        cpu = cpu.mems(host.cpuset_mems.clone());
        any_cpu = true;
    }
    if host.blkio_weight > 0 && !(10..=1000).contains(&host.blkio_weight) {
        return Err(invalid("Range of blkio weight is from 10 to 1000".into()));
    }

    let mut b = LinuxResourcesBuilder::default().devices(devices);
    if any_memory {
        b = b.memory(memory.build()?);
    }
    if any_cpu {
        b = b.cpu(cpu.build()?);
    }
    if let Some(limit) = host.pids_limit.filter(|l| *l > 0) {
        b = b.pids(LinuxPidsBuilder::default().limit(limit).build()?);
    }
    if host.blkio_weight > 0 && features.blkio_weight {
        b = b.block_io(
            LinuxBlockIoBuilder::default()
                .weight(host.blkio_weight)
                .build()?,
        );
    }
    Ok(b.build()?)
}

/// The CPUs or memory nodes of a cpuset list (`0-2,4`), or `None` when it is malformed
/// (moby `parsers.ParseUintList`).
pub fn parse_cpuset(list: &str) -> Option<std::collections::BTreeSet<u32>> {
    let mut out = std::collections::BTreeSet::new();
    for part in list.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if a > b {
                    return None;
                }
                out.extend(a..=b);
            }
            None => {
                out.insert(part.parse().ok()?);
            }
        }
    }
    Some(out)
}

/// dockerd's check that a requested cpuset is within what the host offers (`available`,
/// the parent cgroup's `cpuset.cpus` or `cpuset.mems`); `what` is `CPUs` or `Memory nodes`.
///
/// # Errors
/// [`SpecError::InvalidResources`] with dockerd's message when it is not.
pub fn check_cpuset_available(what: &str, requested: &str, available: &str) -> Result<()> {
    let (Some(req), Some(avail)) = (parse_cpuset(requested), parse_cpuset(available.trim())) else {
        return Ok(());
    };
    if req.is_subset(&avail) {
        return Ok(());
    }
    Err(SpecError::InvalidResources {
        reason: format!(
            "Requested {what} are not available - requested {requested}, available: {}",
            available.trim()
        ),
    })
}

/// `RLIMIT_NOFILE` `nofile` (dockerd's own limit, which Docker containers inherit) with the
/// container's ulimits applied over it. `-1` means unlimited.
pub(crate) fn rlimits(
    nofile: Option<u64>,
    ulimits: &[(String, i64, i64)],
) -> Result<Vec<PosixRlimit>> {
    let mut out: Vec<PosixRlimit> = Vec::new();
    if let Some(n) = nofile {
        out.push(
            PosixRlimitBuilder::default()
                .typ(PosixRlimitType::RlimitNofile)
                .soft(n)
                .hard(n)
                .build()?,
        );
    }
    for (name, soft, hard) in ulimits {
        let bad = |reason: String| SpecError::InvalidUlimit {
            name: name.clone(),
            reason,
        };
        let typ = rlimit_type(name).ok_or_else(|| bad("unknown ulimit name".into()))?;
        let value = |v: i64| match v {
            -1 => Ok(u64::MAX),
            v if v >= 0 => Ok(v.unsigned_abs()),
            v => Err(bad(format!("invalid value {v}"))),
        };
        let (soft, hard) = (value(*soft)?, value(*hard)?);
        if soft > hard {
            return Err(bad(format!(
                "soft limit must be less than or equal to hard limit: {soft} > {hard}"
            )));
        }
        let limit = PosixRlimitBuilder::default()
            .typ(typ)
            .soft(soft)
            .hard(hard)
            .build()?;
        match out.iter_mut().find(|r| r.typ() == typ) {
            Some(r) => *r = limit,
            None => out.push(limit),
        }
    }
    Ok(out)
}

fn rlimit_type(name: &str) -> Option<PosixRlimitType> {
    Some(match name {
        "as" => PosixRlimitType::RlimitAs,
        "core" => PosixRlimitType::RlimitCore,
        "cpu" => PosixRlimitType::RlimitCpu,
        "data" => PosixRlimitType::RlimitData,
        "fsize" => PosixRlimitType::RlimitFsize,
        "locks" => PosixRlimitType::RlimitLocks,
        "memlock" => PosixRlimitType::RlimitMemlock,
        "msgqueue" => PosixRlimitType::RlimitMsgqueue,
        "nice" => PosixRlimitType::RlimitNice,
        "nofile" => PosixRlimitType::RlimitNofile,
        "nproc" => PosixRlimitType::RlimitNproc,
        "rss" => PosixRlimitType::RlimitRss,
        "rtprio" => PosixRlimitType::RlimitRtprio,
        "rttime" => PosixRlimitType::RlimitRttime,
        "sigpending" => PosixRlimitType::RlimitSigpending,
        "stack" => PosixRlimitType::RlimitStack,
        _ => return None,
    })
}

/// Validates namespaced sysctls (moby `opts.ValidateSysctl` plus the namespace checks of
/// `verifyPlatformContainerSettings`): IPC ones need a private IPC namespace, `net.*` ones a
/// network namespace that is not the host's.
pub(crate) fn sysctls(
    sysctls: &BTreeMap<String, String>,
    net_host: bool,
    ipc_host: bool,
) -> Result<HashMap<String, String>> {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let mut out = HashMap::new();
    for (key, value) in sysctls {
        let refuse = |reason: &str| SpecError::InvalidSysctl {
            key: key.clone(),
            reason: reason.to_owned(),
        };
        if IPC.contains(&key.as_str()) || key.starts_with("fs.mqueue.") {
            if ipc_host {
                return Err(refuse("it is not allowed in the host ipc namespace"));
            }
        } else if key.starts_with("net.") {
            if net_host {
                return Err(refuse("it is not allowed in the host network namespace"));
            }
        } else {
            return Err(refuse("it is not a namespaced sysctl"));
        }
        out.insert(key.clone(), value.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> HostSpec {
        HostSpec::default()
    }

    #[test]
    fn no_limits_by_default() {
        let r = resources(&host(), HostFeatures::default(), vec![]).unwrap();
        assert!(r.memory().is_none() && r.cpu().is_none() && r.pids().is_none());
    }

    #[test]
    fn memory_swap_defaults_to_twice_memory() {
        let mut h = host();
        h.memory = 64 << 20;
        let r = resources(&h, HostFeatures::default(), vec![]).unwrap();
        let m = r.memory().unwrap();
        assert_eq!((m.limit(), m.swap()), (Some(64 << 20), Some(128 << 20)));
        h.memory_swap = -1;
        let m = resources(&h, HostFeatures::default(), vec![])
            .unwrap()
            .memory()
            .unwrap();
        assert_eq!(m.swap(), Some(-1));
        h.memory_swap = 100 << 20;
        let m = resources(&h, HostFeatures::default(), vec![])
            .unwrap()
            .memory()
            .unwrap();
        assert_eq!(m.swap(), Some(100 << 20));
        let no_swap = HostFeatures {
            swap_limit: false,
            ..HostFeatures::default()
        };
        let m = resources(&h, no_swap, vec![]).unwrap().memory().unwrap();
        assert_eq!((m.limit(), m.swap()), (Some(64 << 20), None));
    }

    #[test]
    fn memory_validation_follows_docker() {
        let mut h = host();
        h.memory = 1 << 20;
        assert!(resources(&h, HostFeatures::default(), vec![]).is_err());
        h.memory = 0;
        h.memory_swap = 100 << 20;
        assert!(resources(&h, HostFeatures::default(), vec![]).is_err());
        h.memory = 200 << 20;
        let err = resources(&h, HostFeatures::default(), vec![]).unwrap_err();
        assert!(err.to_string().contains("memoryswap"), "{err}");
        assert_eq!(err.kind(), corral_core::ErrorKind::InvalidInput);
    }

    #[test]
    fn cpus_become_quota_over_100ms_period() {
        let mut h = host();
        h.nano_cpus = 1_500_000_000;
        h.cpu_shares = 512;
        let r = resources(&h, HostFeatures::default(), vec![]).unwrap();
        let c = r.cpu().as_ref().unwrap();
        assert_eq!(
            (c.quota(), c.period(), c.shares()),
            (Some(150_000), Some(100_000), Some(512))
        );
        h.nano_cpus = 1_000;
        assert!(resources(&h, HostFeatures::default(), vec![]).is_err());
    }

    #[test]
    fn pids_limit_and_oom_kill_disable() {
        let mut h = host();
        h.pids_limit = Some(100);
        h.oom_kill_disable = true;
        let r = resources(&h, HostFeatures::default(), vec![]).unwrap();
        assert_eq!(r.pids().unwrap().limit(), 100);
        assert_eq!(r.memory().unwrap().disable_oom_killer(), Some(true));
        h.pids_limit = Some(-1);
        assert!(resources(&h, HostFeatures::default(), vec![])
            .unwrap()
            .pids()
            .is_none());
    }

    #[test]
    fn device_rules_deny_then_allow_defaults() {
        let rules = device_rules(false).unwrap();
        assert!(!rules[0].allow());
        assert_eq!(rules[0].access().as_deref(), Some("rwm"));
        assert!(rules
            .iter()
            .any(|r| r.allow() && r.major() == Some(136) && r.minor().is_none()));
        assert!(rules
            .iter()
            .any(|r| r.allow() && r.major() == Some(1) && r.minor() == Some(3)));
        let all = device_rules(true).unwrap();
        assert_eq!(all.len(), 1);
        assert!(all[0].allow());
        assert_eq!(default_devices().unwrap().len(), 6);
    }

    #[test]
    fn rlimits_default_nofile_and_ulimits_override() {
        let r = rlimits(Some(DEFAULT_NOFILE), &[]).unwrap();
        assert_eq!((r[0].soft(), r[0].hard()), (DEFAULT_NOFILE, DEFAULT_NOFILE));
        let r = rlimits(
            Some(DEFAULT_NOFILE),
            &[("nofile".into(), 1024, 2048), ("core".into(), -1, -1)],
        )
        .unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].soft(), r[0].hard()), (1024, 2048));
        assert_eq!(
            (r[1].typ(), r[1].soft()),
            (PosixRlimitType::RlimitCore, u64::MAX)
        );
        assert!(rlimits(Some(DEFAULT_NOFILE), &[("bogus".into(), 1, 1)]).is_err());
        let err = rlimits(Some(DEFAULT_NOFILE), &[("nproc".into(), 10, 5)]).unwrap_err();
        assert!(err.to_string().contains("soft limit"), "{err}");
        assert!(rlimits(Some(DEFAULT_NOFILE), &[("nproc".into(), -5, 5)]).is_err());
    }

    #[test]
    fn sysctls_must_be_namespaced() {
        let mut s = BTreeMap::new();
        s.insert("net.ipv4.ip_forward".to_string(), "1".to_string());
        s.insert("kernel.shmmax".to_string(), "1".to_string());
        s.insert("fs.mqueue.msg_max".to_string(), "1".to_string());
        assert_eq!(sysctls(&s, false, false).unwrap().len(), 3);
        let err = sysctls(&s, true, false).unwrap_err();
        assert!(err.to_string().contains("net.ipv4.ip_forward"), "{err}");
        assert!(sysctls(&s, false, true).is_err());
        let mut bad = BTreeMap::new();
        bad.insert("kernel.panic".to_string(), "1".to_string());
        let err = sysctls(&bad, false, false).unwrap_err();
        assert_eq!(err.kind(), corral_core::ErrorKind::InvalidInput);
    }

    #[test]
    fn cfs_cpuset_reservation_and_blkio_weight_are_applied() {
        let h = HostSpec {
            memory: 64 << 20,
            memory_reservation: 32 << 20,
            cpu_period: 50_000,
            cpu_quota: 20_000,
            cpuset_cpus: "0-1".into(),
            cpuset_mems: "0".into(),
            blkio_weight: 300,
            ..host()
        };
        let r = resources(&h, HostFeatures::default(), vec![]).unwrap();
        let cpu = r.cpu().as_ref().unwrap();
        assert_eq!((cpu.period(), cpu.quota()), (Some(50_000), Some(20_000)));
        assert_eq!(
            (cpu.cpus().as_deref(), cpu.mems().as_deref()),
            (Some("0-1"), Some("0"))
        );
        assert_eq!(r.memory().as_ref().unwrap().reservation(), Some(32 << 20));
        assert_eq!(r.block_io().as_ref().unwrap().weight(), Some(300));
        let unsupported = HostFeatures {
            blkio_weight: false,
            ..HostFeatures::default()
        };
        assert!(resources(&h, unsupported, vec![])
            .unwrap()
            .block_io()
            .is_none());
    }

    #[test]
    fn cfs_cpuset_reservation_and_blkio_weight_are_checked_like_dockerd() {
        let err = |h: HostSpec| {
            resources(&h, HostFeatures::default(), vec![])
                .unwrap_err()
                .to_string()
        };
        let e = err(HostSpec {
            nano_cpus: 500_000_000,
            cpu_quota: 20_000,
            ..host()
        });
        assert!(
            e.contains("Nano CPUs and CPU Quota cannot both be set"),
            "{e}"
        );
        let e = err(HostSpec {
            cpu_period: 500,
            ..host()
        });
        assert!(e.contains("CPU cfs period can not be less than 1ms"), "{e}");
        let e = err(HostSpec {
            cpu_quota: 500,
            ..host()
        });
        assert!(e.contains("CPU cfs quota can not be less than 1ms"), "{e}");
        let e = err(HostSpec {
            cpuset_cpus: "1-0".into(),
            ..host()
        });
        assert!(e.contains("Invalid value 1-0 for cpuset cpus"), "{e}");
        let e = err(HostSpec {
            memory_reservation: 1 << 20,
            ..host()
        });
        assert!(
            e.contains("Minimum memory reservation allowed is 6MB"),
            "{e}"
        );
        let e = err(HostSpec {
            memory: 16 << 20,
            memory_reservation: 32 << 20,
            ..host()
        });
        assert!(e.contains("can not be less than memory reservation"), "{e}");
        let e = err(HostSpec {
            blkio_weight: 5,
            ..host()
        });
        assert!(
            e.contains("Range of blkio weight is from 10 to 1000"),
            "{e}"
        );
    }

    #[test]
    fn cpusets_must_be_within_what_the_host_offers() {
        assert_eq!(
            parse_cpuset("0-2,5")
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            [0, 1, 2, 5]
        );
        assert!(parse_cpuset("a").is_none() && parse_cpuset("").is_none());
        check_cpuset_available("CPUs", "0,1", "0-1\n").unwrap();
        let e = check_cpuset_available("CPUs", "5", "0-1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid resources: Requested CPUs are not available - requested 5, available: 0-1"
        );
    }
}
