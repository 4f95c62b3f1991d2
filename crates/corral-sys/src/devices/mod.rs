//! Device access control of a cgroup v2 directory, behind the [`DeviceCgroup`] trait.
//!
//! cgroup v1 has a `devices` controller that takes `devices.allow`/`devices.deny` lines. On
//! cgroup v2 the same control is an eBPF program of type `BPF_PROG_TYPE_CGROUP_DEVICE`
//! attached to the cgroup: the kernel runs it on every `mknod(2)` and on every open of a
//! device node by a process of the cgroup (or of a descendant) and refuses the access with
//! `EPERM` when the program returns 0.
//!
//! This module is plan then apply:
//! - [`DeviceRule`] is one OCI `linux.resources.devices` entry in plain types;
//! - [`DevicePolicy`] evaluates a rule list as the cgroup v1 controller does (runc does the
//!   same on v2, so a spec means the same on both versions): a default, reset by rules of
//!   type `a`, and exceptions added or taken away by the other rules;
//! - [`DeviceProgram`] compiles a policy into eBPF instructions (pure, tested without root
//!   through an interpreter of the instructions it emits);
//! - [`DeviceCgroup::attach`] loads the program (`bpf(BPF_PROG_LOAD)`) and attaches it to
//!   a cgroup directory (`bpf(BPF_PROG_ATTACH, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI)`).
//!
//! An attached program lives as long as its cgroup: removing the cgroup directory detaches
//! and frees it, so nothing has to be cleaned up separately.

mod bpf;
mod policy;
mod program;

use std::fmt;
use std::path::{Path, PathBuf};

pub use bpf::{attached_device_programs, BpfDeviceCgroup};
pub use policy::{DeviceException, DevicePolicy};
pub use program::{DeviceProgram, Insn};

/// The kind of device a rule names (OCI `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeviceType {
    /// `a`: every device; a rule of this type resets the whole policy.
    All,
    /// `c`: character devices.
    Char,
    /// `b`: block devices.
    Block,
}

impl DeviceType {
    /// Parses the OCI letter (`a`, `c`, `b`; `u` is a character device as in OCI).
    ///
    /// # Errors
    /// [`DeviceRuleError::Type`] for any other text.
    pub fn parse(text: &str) -> Result<Self, DeviceRuleError> {
        match text {
            "a" => Ok(Self::All),
            "c" | "u" => Ok(Self::Char),
            "b" => Ok(Self::Block),
            other => Err(DeviceRuleError::Type(other.to_owned())),
        }
    }

    fn letter(self) -> char {
        match self {
            Self::All => 'a',
            Self::Char => 'c',
            Self::Block => 'b',
        }
    }
}

/// A set of device accesses: read, write, mknod (OCI `access`, `rwm`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct DeviceAccess(u8);

impl DeviceAccess {
    /// `mknod(2)` of a node (the kernel's `BPF_DEVCG_ACC_MKNOD`).
    pub const MKNOD: Self = Self(1);
    /// Opening for reading (`BPF_DEVCG_ACC_READ`).
    pub const READ: Self = Self(2);
    /// Opening for writing (`BPF_DEVCG_ACC_WRITE`).
    pub const WRITE: Self = Self(4);
    /// All three.
    pub const ALL: Self = Self(7);
    /// None.
    pub const NONE: Self = Self(0);

    /// Parses `r`, `w` and `m` in any order; empty means all three (OCI leaves `access`
    /// optional, and the v1 controller reads a missing access as `rwm`).
    ///
    /// # Errors
    /// [`DeviceRuleError::Access`] for any other character.
    pub fn parse(text: &str) -> Result<Self, DeviceRuleError> {
        if text.is_empty() {
            return Ok(Self::ALL);
        }
        let mut bits = 0;
        for c in text.chars() {
            bits |= match c {
                'r' => Self::READ.0,
                'w' => Self::WRITE.0,
                'm' => Self::MKNOD.0,
                _ => return Err(DeviceRuleError::Access(text.to_owned())),
            };
        }
        Ok(Self(bits))
    }

    /// The kernel's bit encoding (`BPF_DEVCG_ACC_*`).
    pub fn bits(self) -> u8 {
        self.0
    }

    /// From the kernel's bit encoding; unknown bits are dropped.
    pub fn from_bits(bits: u8) -> Self {
        Self(bits & Self::ALL.0)
    }

    /// Whether no access is in the set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every access of `other` is in `self`.
    pub fn contains(self, other: Self) -> bool {
        other.0 & !self.0 == 0
    }

    /// Whether the two sets share an access.
    pub fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }

    /// The accesses in either set.
    #[must_use]
    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// The accesses of `self` not in `other`.
    #[must_use]
    pub fn difference(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }
}

impl fmt::Display for DeviceAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (flag, c) in [(Self::READ, 'r'), (Self::WRITE, 'w'), (Self::MKNOD, 'm')] {
            if self.contains(flag) {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for DeviceAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceAccess({self})")
    }
}

/// One device cgroup rule (an OCI `linux.resources.devices` entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRule {
    /// Allow (`true`) or deny the accesses.
    pub allow: bool,
    /// Which kind of device.
    pub kind: DeviceType,
    /// The major number; `None` is every major (`*`).
    pub major: Option<u32>,
    /// The minor number; `None` is every minor (`*`).
    pub minor: Option<u32>,
    /// The accesses the rule is about.
    pub access: DeviceAccess,
}

impl fmt::Display for DeviceRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let number = |n: Option<u32>| n.map_or_else(|| "*".to_owned(), |n| n.to_string());
        write!(
            f,
            "{} {} {}:{} {}",
            if self.allow { "allow" } else { "deny" },
            self.kind.letter(),
            number(self.major),
            number(self.minor),
            self.access
        )
    }
}

/// A device rule list that cannot be turned into a program.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceRuleError {
    /// The device type is not `a`, `b`, `c` or `u`.
    #[error("invalid device type {0:?} (want a, b or c)")]
    Type(String),
    /// The access holds a character other than `r`, `w`, `m`.
    #[error("invalid device access {0:?} (want a combination of r, w and m)")]
    Access(String),
    /// A major or minor number does not fit in 32 bits.
    #[error("device number {0} out of range")]
    Number(i64),
    /// A deny rule takes away part of a wildcard allow rule (or the reverse on a deny list).
    /// The v1 controller ignores such a rule silently; like runc, Corral refuses it rather
    /// than pretend the hole was punched.
    #[error("device rule {rule} cannot punch a hole in the wildcard rule {wildcard}")]
    WildcardHole {
        /// The rule that was refused.
        rule: String,
        /// The wildcard exception it overlaps.
        wildcard: String,
    },
}

/// Loading or attaching a device program failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceCgroupError {
    /// The cgroup directory could not be opened.
    #[error("opening cgroup {path}")]
    Open {
        /// The cgroup directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The kernel refused the program (`BPF_PROG_LOAD`); `log` is the verifier's output.
    #[error("loading the device program: {source}{}", verifier_suffix(.log))]
    Load {
        /// The cause.
        #[source]
        source: std::io::Error,
        /// The verifier log (empty when the kernel gave none).
        log: String,
    },
    /// The kernel refused to attach the program to the cgroup (`BPF_PROG_ATTACH`).
    #[error("attaching the device program to cgroup {path}")]
    Attach {
        /// The cgroup directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

fn verifier_suffix(log: &str) -> String {
    let log = log.trim();
    if log.is_empty() {
        String::new()
    } else {
        format!(" (verifier: {log})")
    }
}

/// Device access control of cgroup v2 directories.
pub trait DeviceCgroup: Send + Sync {
    /// Loads `program` and attaches it to the cgroup v2 directory `cgroup` next to any
    /// program already there (`BPF_F_ALLOW_MULTI`: an access needs every program of the
    /// cgroup and of its ancestors to allow it). The attachment ends with the cgroup.
    ///
    /// # Errors
    /// [`DeviceCgroupError`] naming the step the kernel refused; on error nothing is
    /// attached.
    fn attach(&self, cgroup: &Path, program: &DeviceProgram) -> Result<(), DeviceCgroupError>;
}

/// A [`DeviceCgroup`] that records the attachments it is asked for and can be made to fail.
#[cfg(any(test, feature = "fake"))]
#[derive(Debug, Default)]
pub struct FakeDeviceCgroup {
    attached: std::sync::RwLock<Vec<(PathBuf, DeviceProgram)>>,
    fail: std::sync::atomic::AtomicBool,
}

#[cfg(any(test, feature = "fake"))]
impl FakeDeviceCgroup {
    /// A fake that accepts every attachment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every later [`DeviceCgroup::attach`] fail (`EPERM` from the attach step).
    pub fn fail_attach(&self, fail: bool) {
        self.fail.store(fail, std::sync::atomic::Ordering::SeqCst);
    }

    /// The attachments made so far, in order: cgroup directory and program.
    pub fn attached(&self) -> Vec<(PathBuf, DeviceProgram)> {
        self.attached
            .read()
            .map(|calls| calls.clone())
            .unwrap_or_default()
    }
}

#[cfg(any(test, feature = "fake"))]
impl DeviceCgroup for FakeDeviceCgroup {
    fn attach(&self, cgroup: &Path, program: &DeviceProgram) -> Result<(), DeviceCgroupError> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(DeviceCgroupError::Attach {
                path: cgroup.to_owned(),
                source: std::io::Error::from_raw_os_error(libc::EPERM),
            });
        }
        if let Ok(mut calls) = self.attached.write() {
            calls.push((cgroup.to_owned(), program.clone()));
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Docker's default rules, as Corral's spec builder emits them.
    pub(crate) fn docker_default_rules() -> Vec<DeviceRule> {
        let rule = |allow, kind, major, minor, access| DeviceRule {
            allow,
            kind,
            major,
            minor,
            access: DeviceAccess::parse(access).unwrap(),
        };
        let mut rules = vec![
            rule(false, DeviceType::All, None, None, "rwm"),
            rule(true, DeviceType::Char, None, None, "m"),
            rule(true, DeviceType::Block, None, None, "m"),
        ];
        for (major, minor) in [
            (1, 3),
            (1, 5),
            (1, 7),
            (1, 8),
            (1, 9),
            (5, 0),
            (5, 1),
            (5, 2),
        ] {
            rules.push(rule(
                true,
                DeviceType::Char,
                Some(major),
                Some(minor),
                "rwm",
            ));
        }
        rules.push(rule(true, DeviceType::Char, Some(136), None, "rwm"));
        rules.push(rule(true, DeviceType::Char, Some(10), Some(200), "rwm"));
        rules
    }

    #[test]
    fn parses_oci_types_and_accesses() {
        assert_eq!(DeviceType::parse("c").unwrap(), DeviceType::Char);
        assert_eq!(DeviceType::parse("u").unwrap(), DeviceType::Char);
        assert_eq!(DeviceType::parse("b").unwrap(), DeviceType::Block);
        assert_eq!(DeviceType::parse("a").unwrap(), DeviceType::All);
        assert_eq!(
            DeviceType::parse("p").unwrap_err().to_string(),
            r#"invalid device type "p" (want a, b or c)"#
        );
        assert_eq!(DeviceAccess::parse("mr").unwrap().to_string(), "rm");
        assert_eq!(DeviceAccess::parse("").unwrap(), DeviceAccess::ALL);
        assert_eq!(
            DeviceAccess::parse("rx").unwrap_err().to_string(),
            r#"invalid device access "rx" (want a combination of r, w and m)"#
        );
        let rule = DeviceRule {
            allow: false,
            kind: DeviceType::Block,
            major: Some(8),
            minor: None,
            access: DeviceAccess::parse("rw").unwrap(),
        };
        assert_eq!(rule.to_string(), "deny b 8:* rw");
    }

    #[test]
    fn fake_records_attachments_and_fails_on_demand() {
        let fake = FakeDeviceCgroup::new();
        let program = DeviceProgram::compile(&DevicePolicy::deny_all());
        fake.attach(Path::new("/cg/a"), &program).unwrap();
        fake.fail_attach(true);
        let err = fake.attach(Path::new("/cg/b"), &program).unwrap_err();
        assert_eq!(
            err.to_string(),
            "attaching the device program to cgroup /cg/b"
        );
        let attached = fake.attached();
        assert_eq!(attached.len(), 1);
        assert_eq!(attached[0].0, Path::new("/cg/a"));
    }
}
