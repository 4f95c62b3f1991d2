//! Linux capabilities: Docker's default set and `--cap-add` / `--cap-drop` / `--privileged`.

use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities, LinuxCapabilitiesBuilder};

use super::error::{Result, SpecError};

/// Every capability the kernel knows (up to `CAP_CHECKPOINT_RESTORE`, Linux 5.9), with its bit.
const KNOWN: [(&str, u8, Capability); 41] = [
    ("CAP_CHOWN", 0, Capability::Chown),
    ("CAP_DAC_OVERRIDE", 1, Capability::DacOverride),
    ("CAP_DAC_READ_SEARCH", 2, Capability::DacReadSearch),
    ("CAP_FOWNER", 3, Capability::Fowner),
    ("CAP_FSETID", 4, Capability::Fsetid),
    ("CAP_KILL", 5, Capability::Kill),
    ("CAP_SETGID", 6, Capability::Setgid),
    ("CAP_SETUID", 7, Capability::Setuid),
    ("CAP_SETPCAP", 8, Capability::Setpcap),
    ("CAP_LINUX_IMMUTABLE", 9, Capability::LinuxImmutable),
    ("CAP_NET_BIND_SERVICE", 10, Capability::NetBindService),
    ("CAP_NET_BROADCAST", 11, Capability::NetBroadcast),
    ("CAP_NET_ADMIN", 12, Capability::NetAdmin),
    ("CAP_NET_RAW", 13, Capability::NetRaw),
    ("CAP_IPC_LOCK", 14, Capability::IpcLock),
    ("CAP_IPC_OWNER", 15, Capability::IpcOwner),
    ("CAP_SYS_MODULE", 16, Capability::SysModule),
    ("CAP_SYS_RAWIO", 17, Capability::SysRawio),
    ("CAP_SYS_CHROOT", 18, Capability::SysChroot),
    ("CAP_SYS_PTRACE", 19, Capability::SysPtrace),
    ("CAP_SYS_PACCT", 20, Capability::SysPacct),
    ("CAP_SYS_ADMIN", 21, Capability::SysAdmin),
    ("CAP_SYS_BOOT", 22, Capability::SysBoot),
    ("CAP_SYS_NICE", 23, Capability::SysNice),
    ("CAP_SYS_RESOURCE", 24, Capability::SysResource),
    ("CAP_SYS_TIME", 25, Capability::SysTime),
    ("CAP_SYS_TTY_CONFIG", 26, Capability::SysTtyConfig),
    ("CAP_MKNOD", 27, Capability::Mknod),
    ("CAP_LEASE", 28, Capability::Lease),
    ("CAP_AUDIT_WRITE", 29, Capability::AuditWrite),
    ("CAP_AUDIT_CONTROL", 30, Capability::AuditControl),
    ("CAP_SETFCAP", 31, Capability::Setfcap),
    ("CAP_MAC_OVERRIDE", 32, Capability::MacOverride),
    ("CAP_MAC_ADMIN", 33, Capability::MacAdmin),
    ("CAP_SYSLOG", 34, Capability::Syslog),
    ("CAP_WAKE_ALARM", 35, Capability::WakeAlarm),
    ("CAP_BLOCK_SUSPEND", 36, Capability::BlockSuspend),
    ("CAP_AUDIT_READ", 37, Capability::AuditRead),
    ("CAP_PERFMON", 38, Capability::Perfmon),
    ("CAP_BPF", 39, Capability::Bpf),
    ("CAP_CHECKPOINT_RESTORE", 40, Capability::CheckpointRestore),
];

/// Docker's default capability set (moby `oci/caps/defaults.go`), in Docker's order.
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The name of every capability known to Corral, `CAP_`-prefixed, ordered by bit.
pub fn all_capabilities() -> Vec<&'static str> {
    KNOWN.iter().map(|(name, _, _)| *name).collect()
}

/// The effective capability set for a container, as `CAP_*` names, following Docker's rules
/// (moby `oci/caps.TweakCapabilities`):
///
/// - `privileged` gives every known capability;
/// - `ALL` in `cap_add` starts from every capability and removes `cap_drop`;
/// - `ALL` in `cap_drop` starts from nothing and adds `cap_add`;
/// - otherwise the defaults minus `cap_drop` plus `cap_add`.
///
/// Names are case-insensitive, with or without the `CAP_` prefix.
///
/// # Errors
/// [`SpecError::UnknownCapability`] for a name the kernel does not know.
pub fn capability_set(
    cap_add: &[String],
    cap_drop: &[String],
    privileged: bool,
) -> Result<Vec<&'static str>> {
    if privileged {
        return Ok(all_capabilities());
    }
    let add = normalize(cap_add)?;
    let drop = normalize(cap_drop)?;
    let mut caps: Vec<&'static str> = Vec::new();
    let mut push = |c: &'static str| {
        if !caps.contains(&c) {
            caps.push(c);
        }
    };
    if add.contains(&Normalized::All) {
        for name in all_capabilities() {
            if !drop.contains(&Normalized::Cap(name)) {
                push(name);
            }
        }
    } else if drop.contains(&Normalized::All) {
        for n in &add {
            if let Normalized::Cap(name) = n {
                push(name);
            }
        }
    } else {
        for name in DEFAULT_CAPABILITIES {
            if !drop.contains(&Normalized::Cap(name)) {
                push(name);
            }
        }
        for n in &add {
            if let Normalized::Cap(name) = n {
                push(name);
            }
        }
    }
    Ok(caps)
}

/// The kernel bitmask of a set of capability names, as `CapEff` in `/proc/<pid>/status` shows it.
/// Unknown names are ignored.
pub fn capability_mask(names: &[&str]) -> u64 {
    names
        .iter()
        .filter_map(|n| KNOWN.iter().find(|(k, _, _)| k == n))
        .fold(0u64, |mask, (_, bit, _)| mask | (1u64 << bit))
}

/// Reads a capability mask line (`CapBnd`, `CapEff`, …) from the text of a
/// `/proc/<pid>/status` file.
pub fn bounding_set_from_status(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == field)
            .then(|| u64::from_str_radix(v.trim(), 16).ok())
            .flatten()
    })
}

/// Keeps only the capabilities whose bit is set in `bound`.
pub(crate) fn narrow_to(names: Vec<&'static str>, bound: u64) -> Vec<&'static str> {
    names
        .into_iter()
        .filter(|n| capability_mask(&[n]) & bound != 0)
        .collect()
}

/// The OCI process capabilities for a set of names: bounding, effective and permitted hold
/// them; inheritable and ambient stay empty, as Docker does since CVE-2022-24769.
pub(crate) fn linux_capabilities(names: &[&str]) -> Result<LinuxCapabilities> {
    let set: Capabilities = names
        .iter()
        .filter_map(|n| KNOWN.iter().find(|(k, _, _)| k == n))
        .map(|(_, _, c)| *c)
        .collect();
    Ok(LinuxCapabilitiesBuilder::default()
        .bounding(set.clone())
        .effective(set.clone())
        .permitted(set)
        .inheritable(Capabilities::new())
        .ambient(Capabilities::new())
        .build()?)
}

#[derive(Debug, PartialEq, Eq)]
enum Normalized {
    All,
    Cap(&'static str),
}

fn normalize(names: &[String]) -> Result<Vec<Normalized>> {
    names
        .iter()
        .map(|raw| {
            let upper = raw.trim().to_ascii_uppercase();
            if upper == "ALL" {
                return Ok(Normalized::All);
            }
            let full = if upper.starts_with("CAP_") {
                upper
            } else {
                format!("CAP_{upper}")
            };
            KNOWN
                .iter()
                .find(|(k, _, _)| *k == full)
                .map(|(k, _, _)| Normalized::Cap(k))
                .ok_or(SpecError::UnknownCapability { cap: full })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn default_caps_match_dockers_capeff_mask() {
        let caps = capability_set(&[], &[], false).unwrap();
        assert_eq!(caps, DEFAULT_CAPABILITIES.to_vec());
        assert_eq!(
            format!("{:016x}", capability_mask(&caps)),
            "00000000a80425fb"
        );
    }

    #[test]
    fn known_table_bits_are_unique_and_dense() {
        for (i, (name, bit, _)) in KNOWN.iter().enumerate() {
            assert_eq!(usize::from(*bit), i, "{name}");
        }
        assert_eq!(capability_mask(&all_capabilities()), (1u64 << 41) - 1);
    }

    #[test]
    fn cap_add_accepts_any_case_with_or_without_prefix() {
        let caps = capability_set(&s(&["net_admin", "CAP_sys_ptrace"]), &[], false).unwrap();
        assert!(caps.contains(&"CAP_NET_ADMIN"));
        assert!(caps.contains(&"CAP_SYS_PTRACE"));
        assert_eq!(caps.len(), 16);
    }

    #[test]
    fn cap_drop_removes_from_defaults() {
        let caps = capability_set(&[], &s(&["chown", "CAP_NET_RAW"]), false).unwrap();
        assert!(!caps.contains(&"CAP_CHOWN"));
        assert!(!caps.contains(&"CAP_NET_RAW"));
        assert_eq!(caps.len(), 12);
        assert_eq!(capability_mask(&caps), 0xa80425fb & !(1 << 0) & !(1 << 13),);
    }

    #[test]
    fn drop_all_keeps_only_added() {
        let caps = capability_set(&s(&["kill"]), &s(&["all"]), false).unwrap();
        assert_eq!(caps, vec!["CAP_KILL"]);
        assert!(capability_set(&[], &s(&["ALL"]), false).unwrap().is_empty());
    }

    #[test]
    fn add_all_gives_everything_but_dropped() {
        let caps = capability_set(&s(&["ALL"]), &s(&["sys_admin"]), false).unwrap();
        assert_eq!(caps.len(), 40);
        assert!(!caps.contains(&"CAP_SYS_ADMIN"));
    }

    #[test]
    fn privileged_gives_all_known_caps() {
        let caps = capability_set(&[], &s(&["ALL"]), true).unwrap();
        assert_eq!(caps.len(), 41);
    }

    #[test]
    fn unknown_capability_is_invalid_input_naming_it() {
        let err = capability_set(&s(&["bogus"]), &[], false).unwrap_err();
        assert_eq!(err.kind(), corral_core::ErrorKind::InvalidInput);
        assert_eq!(err.to_string(), "unknown capability: \"CAP_BOGUS\"");
        assert!(capability_set(&[], &s(&["CAP_NOPE"]), false).is_err());
    }

    #[test]
    fn bounding_set_is_read_from_proc_status() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapBnd:\t000001fffeffffff\n";
        assert_eq!(
            bounding_set_from_status(status, "CapBnd"),
            Some(0x1fffeffffff)
        );
        assert_eq!(bounding_set_from_status(status, "CapAmb"), None);
        let narrowed = narrow_to(all_capabilities(), 0x1fffeffffff);
        assert_eq!(narrowed.len(), 40);
        assert!(!narrowed.contains(&"CAP_SYS_RESOURCE"));
    }

    #[test]
    fn oci_capabilities_leave_inheritable_and_ambient_empty() {
        let caps = linux_capabilities(&DEFAULT_CAPABILITIES).unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 14);
        assert_eq!(caps.effective(), caps.bounding());
        assert_eq!(caps.permitted(), caps.bounding());
        assert!(caps.inheritable().as_ref().unwrap().is_empty());
        assert!(caps.ambient().as_ref().unwrap().is_empty());
    }
}
