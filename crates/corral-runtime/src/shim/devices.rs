//! The device cgroup of a libcontainer container on a pure cgroup v2 host.
//!
//! libcgroups 0.7 is built without its `cgroupsv2_devices` feature (its loader raises
//! `RLIMIT_MEMLOCK`, which needs `CAP_SYS_RESOURCE`), so on v2 it applies no device rule at
//! all. The shim does it instead: before creating the container it compiles the spec's
//! `linux.resources.devices` ([`DevicePlan::from_spec`]; bad rules fail here, before
//! anything exists), and once libcontainer has created the container's cgroup, with the
//! init waiting for `start`, it attaches the program there ([`DevicePlan::attach`]). The
//! user's process therefore never runs without it, and every process later added to the
//! cgroup (`docker exec`) is covered. The program goes with the cgroup when the container is
//! deleted; `docker update` (libcgroups, same feature off) does not touch it.
//!
//! On cgroup v1 and hybrid hosts the v1 `devices` controller enforces the same rules
//! (libcgroups writes them) and nothing is attached. runc attaches its own program on v2,
//! so this is for the libcontainer back end only.

use std::path::{Path, PathBuf};

use corral_sys::devices::{
    DeviceAccess, DeviceCgroup, DevicePolicy, DeviceProgram, DeviceRule, DeviceRuleError,
    DeviceType,
};
use oci_spec::runtime::{LinuxDeviceCgroup, Spec};

/// The program to attach to a container's cgroup, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DevicePlan {
    /// The container's cgroup v2 directory.
    pub(crate) cgroup: PathBuf,
    /// The compiled rules.
    pub(crate) program: DeviceProgram,
}

impl DevicePlan {
    /// The plan for the container of `spec`, whose cgroups live under `cgroup_root`
    /// (normally `/sys/fs/cgroup`). `None` when nothing is to be attached: a v1 or hybrid
    /// host (no `cgroup.controllers` at the root), no `linux.resources.devices` in the spec,
    /// rules that allow everything (privileged), or a systemd `slice:prefix:name` path
    /// (the shim disables systemd).
    ///
    /// # Errors
    /// A rule that cannot be compiled, naming it.
    pub(crate) fn from_spec(
        cgroup_root: &Path,
        spec: &Spec,
    ) -> Result<Option<Self>, DeviceRuleError> {
        if !cgroup_root.join("cgroup.controllers").is_file() {
            return Ok(None);
        }
        let Some(linux) = spec.linux() else {
            return Ok(None);
        };
        let Some(devices) = linux
            .resources()
            .as_ref()
            .and_then(|r| r.devices().as_ref())
        else {
            return Ok(None);
        };
        let Some(path) = linux.cgroups_path().as_ref() else {
            return Ok(None);
        };
        let path = path.to_string_lossy();
        if path.contains(':') {
            return Ok(None);
        }
        let policy = DevicePolicy::from_rules(&rules_from_oci(devices)?)?;
        if policy.is_allow_all() {
            return Ok(None);
        }
        Ok(Some(Self {
            cgroup: cgroup_root.join(path.trim_start_matches('/')),
            program: DeviceProgram::compile(&policy),
        }))
    }

    /// Attaches the program to the cgroup.
    ///
    /// # Errors
    /// The kernel's refusal, naming the step and the cgroup.
    pub(crate) fn attach(
        &self,
        devices: &dyn DeviceCgroup,
    ) -> Result<(), corral_sys::devices::DeviceCgroupError> {
        devices.attach(&self.cgroup, &self.program)
    }
}

/// The OCI rules in corral-sys's types: a missing type is `a`, a missing or negative major
/// or minor is `*` (runc reads -1 as `*`), a missing access is `rwm`.
fn rules_from_oci(devices: &[LinuxDeviceCgroup]) -> Result<Vec<DeviceRule>, DeviceRuleError> {
    let number = |n: Option<i64>| -> Result<Option<u32>, DeviceRuleError> {
        match n {
            None => Ok(None),
            Some(n) if n < 0 => Ok(None),
            Some(n) => u32::try_from(n)
                .map(Some)
                .map_err(|_| DeviceRuleError::Number(n)),
        }
    };
    devices
        .iter()
        .map(|d| {
            Ok(DeviceRule {
                allow: d.allow(),
                kind: DeviceType::parse(d.typ().unwrap_or_default().as_str())?,
                major: number(d.major())?,
                minor: number(d.minor())?,
                access: DeviceAccess::parse(d.access().as_deref().unwrap_or(""))?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use corral_sys::devices::FakeDeviceCgroup;
    use oci_spec::runtime::{
        LinuxBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxResourcesBuilder, SpecBuilder,
    };

    use super::*;

    fn spec(devices: Option<Vec<LinuxDeviceCgroup>>, cgroups_path: &str) -> Spec {
        let mut resources = LinuxResourcesBuilder::default();
        if let Some(devices) = devices {
            resources = resources.devices(devices);
        }
        SpecBuilder::default()
            .linux(
                LinuxBuilder::default()
                    .cgroups_path(PathBuf::from(cgroups_path))
                    .resources(resources.build().unwrap())
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    }

    fn v2_root() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("cgroup.controllers"), "hugetlb\n").unwrap();
        root
    }

    fn docker_rules(privileged: bool) -> Vec<LinuxDeviceCgroup> {
        crate::spec::device_rules(privileged).unwrap()
    }

    #[test]
    fn plans_the_spec_rules_for_the_container_cgroup_on_v2() {
        let root = v2_root();
        let plan = DevicePlan::from_spec(
            root.path(),
            &spec(Some(docker_rules(false)), "/corral-x/c1"),
        )
        .unwrap()
        .expect("a plan on v2");
        assert_eq!(plan.cgroup, root.path().join("corral-x/c1"));
        let policy =
            DevicePolicy::from_rules(&rules_from_oci(&docker_rules(false)).unwrap()).unwrap();
        assert_eq!(plan.program, DeviceProgram::compile(&policy));
        // What Corral's spec builder emits means Docker's device list.
        assert!(policy.allows(DeviceType::Char, 1, 3, DeviceAccess::parse("rw").unwrap()));
        assert!(policy.allows(DeviceType::Block, 8, 0, DeviceAccess::MKNOD));
        assert!(!policy.allows(DeviceType::Block, 8, 0, DeviceAccess::READ));

        let fake = FakeDeviceCgroup::new();
        plan.attach(&fake).unwrap();
        assert_eq!(
            fake.attached(),
            vec![(plan.cgroup.clone(), plan.program.clone())]
        );
    }

    #[test]
    fn nothing_to_attach_on_v1_privileged_or_without_rules() {
        let v1 = tempfile::tempdir().unwrap();
        let rules = spec(Some(docker_rules(false)), "/corral-x/c1");
        assert_eq!(DevicePlan::from_spec(v1.path(), &rules).unwrap(), None);
        let root = v2_root();
        for spec in [
            spec(Some(docker_rules(true)), "/corral-x/c1"),
            spec(None, "/corral-x/c1"),
            spec(Some(docker_rules(false)), "system.slice:corral:c1"),
        ] {
            assert_eq!(DevicePlan::from_spec(root.path(), &spec).unwrap(), None);
        }
    }

    #[test]
    fn reads_oci_defaults_and_refuses_bad_rules_before_anything_exists() {
        let rule = |typ: Option<LinuxDeviceType>, major: Option<i64>, access: Option<&str>| {
            let mut b = LinuxDeviceCgroupBuilder::default().allow(true);
            if let Some(typ) = typ {
                b = b.typ(typ);
            }
            if let Some(major) = major {
                b = b.major(major);
            }
            if let Some(access) = access {
                b = b.access(access);
            }
            b.build().unwrap()
        };
        let rules = rules_from_oci(&[
            rule(None, None, None),
            rule(Some(LinuxDeviceType::C), Some(-1), Some("r")),
        ])
        .unwrap();
        assert_eq!(rules[0].kind, DeviceType::All);
        assert_eq!(rules[0].access, DeviceAccess::ALL);
        assert_eq!((rules[1].kind, rules[1].major), (DeviceType::Char, None));

        let root = v2_root();
        let bad = |rules| {
            DevicePlan::from_spec(root.path(), &spec(Some(rules), "/c"))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            bad(vec![rule(Some(LinuxDeviceType::P), None, None)]),
            r#"invalid device type "p" (want a, b or c)"#
        );
        assert_eq!(
            bad(vec![rule(Some(LinuxDeviceType::C), Some(1 << 40), None)]),
            "device number 1099511627776 out of range"
        );
        assert_eq!(
            bad(vec![rule(Some(LinuxDeviceType::C), None, Some("rwx"))]),
            r#"invalid device access "rwx" (want a combination of r, w and m)"#
        );
    }
}
