//! The `bpf(2)` calls: load a device program, attach it to a cgroup, count attachments.
//!
//! Raw `libc::syscall(SYS_bpf, …)` with the three `union bpf_attr` layouts used here
//! (`include/uapi/linux/bpf.h`): a loader crate (aya, libbpf-rs) would bring an ELF loader,
//! BTF handling and, for libbpf, a C library, for three calls on instructions built in memory.
//!
//! No `RLIMIT_MEMLOCK` is raised: since Linux 5.11 BPF memory is charged to the memory cgroup
//! and the rlimit is not consulted, and raising it needs `CAP_SYS_RESOURCE`, which
//! containerised hosts often lack (libcgroups' loader raised it and failed there).
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::{DeviceCgroup, DeviceCgroupError, DeviceProgram};

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;
/// The license the kernel records for the program; device programs call no GPL-only helper.
const LICENSE: &CStr = c"Apache-2.0";
/// Shown by `bpftool prog` (at most 15 bytes: letters, digits, `_` and `.`).
const PROG_NAME: &[u8] = b"corral_devices";
/// Verifier log size when a load is retried for its log.
const LOG_SIZE: usize = 64 * 1024;

/// `union bpf_attr` for `BPF_PROG_LOAD`, up to `expected_attach_type`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `union bpf_attr` for `BPF_PROG_ATTACH`.
#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// `union bpf_attr` for `BPF_PROG_QUERY`, up to `prog_attach_flags`.
#[repr(C)]
#[derive(Default)]
struct ProgQueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
    prog_attach_flags: u64,
}

/// The Linux [`DeviceCgroup`]: `bpf(2)` on the cgroup directory.
#[derive(Debug, Clone, Copy, Default)]
pub struct BpfDeviceCgroup;

impl BpfDeviceCgroup {
    /// A new handle.
    pub fn new() -> Self {
        Self
    }
}

impl DeviceCgroup for BpfDeviceCgroup {
    fn attach(&self, cgroup: &Path, program: &DeviceProgram) -> Result<(), DeviceCgroupError> {
        let dir = open_cgroup(cgroup)?;
        let prog = load(program)?;
        let mut attr = ProgAttachAttr {
            target_fd: fd_u32(dir.as_raw_fd()),
            attach_bpf_fd: fd_u32(prog.as_raw_fd()),
            attach_type: BPF_CGROUP_DEVICE,
            attach_flags: BPF_F_ALLOW_MULTI,
            replace_bpf_fd: 0,
        };
        // SAFETY: attr is the BPF_PROG_ATTACH layout and carries no pointer, only the two
        // descriptors, open for the call.
        unsafe { bpf(BPF_PROG_ATTACH, &mut attr) }.map_err(|source| DeviceCgroupError::Attach {
            path: cgroup.to_owned(),
            source,
        })?;
        // The attachment holds its own reference: the program fd can be closed.
        drop(prog);
        Ok(())
    }
}

/// How many device programs are attached to the cgroup directory `cgroup` itself (not
/// inherited from its ancestors): `bpf(BPF_PROG_QUERY)`.
///
/// # Errors
/// The open or `bpf(2)` error.
pub fn attached_device_programs(cgroup: &Path) -> io::Result<u32> {
    let dir = open_cgroup(cgroup).map_err(|e| match e {
        DeviceCgroupError::Open { source, .. } => source,
        other => io::Error::other(other.to_string()),
    })?;
    let mut attr = ProgQueryAttr {
        target_fd: fd_u32(dir.as_raw_fd()),
        attach_type: BPF_CGROUP_DEVICE,
        ..ProgQueryAttr::default()
    };
    // SAFETY: attr is the BPF_PROG_QUERY layout with prog_ids and prog_attach_flags null
    // and prog_cnt 0, so the kernel writes only attach_flags and prog_cnt, inside attr.
    unsafe { bpf(BPF_PROG_QUERY, &mut attr) }?;
    Ok(attr.prog_cnt)
}

fn open_cgroup(cgroup: &Path) -> Result<File, DeviceCgroupError> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(cgroup)
        .map_err(|source| DeviceCgroupError::Open {
            path: cgroup.to_owned(),
            source,
        })
}

/// Loads the program; on failure loads it again with a verifier log for the error.
fn load(program: &DeviceProgram) -> Result<OwnedFd, DeviceCgroupError> {
    let bytes = program.to_bytes();
    let insn_cnt = u32::try_from(program.insns().len()).unwrap_or(u32::MAX);
    let mut prog_name = [0u8; 16];
    prog_name[..PROG_NAME.len()].copy_from_slice(PROG_NAME);
    let attr = |log: Option<&mut Vec<u8>>| {
        let (log_level, log_size, log_buf) = match log {
            Some(buf) => (
                1,
                u32::try_from(buf.len()).unwrap_or(0),
                buf.as_mut_ptr() as u64,
            ),
            None => (0, 0, 0),
        };
        ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
            insn_cnt,
            insns: bytes.as_ptr() as u64,
            license: LICENSE.as_ptr() as u64,
            log_level,
            log_size,
            log_buf,
            prog_name,
            expected_attach_type: BPF_CGROUP_DEVICE,
            ..ProgLoadAttr::default()
        }
    };
    let mut first = attr(None);
    // SAFETY: `first` is the BPF_PROG_LOAD layout pointing at `bytes` (insn_cnt
    // instructions of 8 bytes each) and at the NUL-terminated LICENSE, both alive for the
    // call; no log buffer is given.
    match unsafe { bpf(BPF_PROG_LOAD, &mut first) } {
        // SAFETY: on success bpf(BPF_PROG_LOAD) returns a new file descriptor that nothing
        // else owns.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
        Err(source) => {
            let mut buf = vec![0u8; LOG_SIZE];
            let mut retry = attr(Some(&mut buf));
            // SAFETY: as above; log_buf points at `buf`, LOG_SIZE writable bytes alive for
            // the call, and the kernel writes at most log_size bytes there.
            if let Ok(fd) = unsafe { bpf(BPF_PROG_LOAD, &mut retry) } {
                // SAFETY: a new descriptor owned by no one else (the retry succeeded).
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            Err(DeviceCgroupError::Load {
                source,
                log: String::from_utf8_lossy(&buf[..end]).into_owned(),
            })
        }
    }
}

/// `bpf(cmd, attr, sizeof(*attr))`: the non-negative result, or the errno.
///
/// # Safety
/// `attr` must be the `union bpf_attr` layout `cmd` expects, and every pointer inside it
/// valid for what `cmd` reads and writes during the call.
unsafe fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<RawFd> {
    let size = std::mem::size_of::<T>();
    // SAFETY: attr is a live, exclusive T of `size` bytes, which the kernel may read and
    // write; the pointers it carries are the caller's responsibility (see # Safety).
    let rc = unsafe { libc::syscall(libc::SYS_bpf, cmd, std::ptr::from_mut(attr), size) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    RawFd::try_from(rc).map_err(|_| io::Error::other("bpf(2) returned an out-of-range value"))
}

/// A descriptor as the kernel's `__u32` field (descriptors of open files are never negative).
fn fd_u32(fd: RawFd) -> u32 {
    u32::try_from(fd).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::process::Command;

    use super::*;
    use crate::devices::tests::docker_default_rules;
    use crate::devices::{DeviceAccess, DevicePolicy, DeviceRule, DeviceType};

    fn require_root() {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test needs root: it loads BPF programs and creates cgroups"
        );
    }

    /// A scratch cgroup v2 directory, removed on drop (its processes have exited by then).
    struct ScratchCgroup(PathBuf);

    impl ScratchCgroup {
        fn new(name: &str) -> Self {
            // The cgroup2 tree: /sys/fs/cgroup on a pure v2 host, /sys/fs/cgroup/unified on
            // a hybrid one.
            let root = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
                .into_iter()
                .map(PathBuf::from)
                .find(|p| p.join("cgroup.controllers").exists())
                .expect("a cgroup2 mount at /sys/fs/cgroup or /sys/fs/cgroup/unified");
            let dir = root.join(format!("corral-sys-{name}-{}", std::process::id()));
            std::fs::create_dir(&dir).unwrap();
            Self(dir)
        }

        /// Runs `script` in `sh`, moved into this cgroup first; returns (success, stderr).
        fn sh(&self, script: &str) -> (bool, String) {
            let procs = self.0.join("cgroup.procs");
            let out = Command::new("sh")
                .arg("-c")
                .arg(format!("echo $$ > {} && {script}", procs.display()))
                .output()
                .unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
    }

    impl Drop for ScratchCgroup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }

    /// A directory for device nodes (its filesystem must not be `nodev`: the test checks a node
    /// opens before the program is attached).
    fn node_dir() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("corral-sys-dev")
            .tempdir()
            .unwrap()
    }

    #[test]
    #[ignore = "needs root: loads a BPF program into a scratch cgroup v2"]
    fn docker_defaults_deny_opening_other_devices_but_allow_mknod_and_dev_null() {
        require_root();
        let cg = ScratchCgroup::new("defaults");
        let nodes = node_dir();
        let d = nodes.path().display();
        // Before: the scratch cgroup opens a block device node freely.
        let (ok, err) = cg.sh(&format!(
            "mknod {d}/before b 7 0 && head -c0 {d}/before; rm -f {d}/before"
        ));
        assert!(ok, "without a program: {err}");

        let policy = DevicePolicy::from_rules(&docker_default_rules()).unwrap();
        BpfDeviceCgroup::new()
            .attach(&cg.0, &DeviceProgram::compile(&policy))
            .unwrap();
        assert_eq!(attached_device_programs(&cg.0).unwrap(), 1);

        // mknod is allowed for every node, opening only for the standard devices.
        let (ok, err) = cg.sh(&format!("mknod {d}/loop0 b 7 0 && head -c0 {d}/loop0"));
        assert!(!ok);
        assert!(err.contains("Operation not permitted"), "{err}");
        let (ok, err) = cg.sh(&format!(
            "mknod {d}/null c 1 3 && echo x > {d}/null && head -c1 {d}/null"
        ));
        assert!(ok, "{err}");
        let (ok, err) = cg.sh("head -c4 /dev/urandom >/dev/null && echo x > /dev/null");
        assert!(ok, "{err}");
        let (ok, err) = cg.sh(&format!("mknod {d}/mem c 1 1 && head -c1 {d}/mem"));
        assert!(!ok);
        assert!(err.contains("Operation not permitted"), "{err}");
        // The host outside the cgroup is not affected.
        let out = Command::new("head")
            .arg("-c0")
            .arg(nodes.path().join("loop0"))
            .output()
            .unwrap();
        assert!(out.status.success());
    }

    #[test]
    #[ignore = "needs root: loads a BPF program into a scratch cgroup v2"]
    fn a_program_without_mknod_refuses_mknod_and_programs_stack() {
        require_root();
        let cg = ScratchCgroup::new("mknod");
        let nodes = node_dir();
        let d = nodes.path().display();
        let rule = |allow, kind, major, minor, access: &str| DeviceRule {
            allow,
            kind,
            major,
            minor,
            access: DeviceAccess::parse(access).unwrap(),
        };
        // Only /dev/null, and no mknod of anything.
        let only_null = DevicePolicy::from_rules(&[
            rule(false, DeviceType::All, None, None, "rwm"),
            rule(true, DeviceType::Char, Some(1), Some(3), "rw"),
        ])
        .unwrap();
        BpfDeviceCgroup::new()
            .attach(&cg.0, &DeviceProgram::compile(&only_null))
            .unwrap();
        let (ok, err) = cg.sh(&format!("mknod {d}/null c 1 3"));
        assert!(!ok);
        assert!(err.contains("Operation not permitted"), "{err}");
        let (ok, err) = cg.sh("echo x > /dev/null && head -c1 /dev/zero");
        assert!(!ok, "/dev/zero is not allowed");
        assert!(err.contains("Operation not permitted"), "{err}");
        // A second (allow-all) program does not widen the first: all must allow.
        let all =
            DevicePolicy::from_rules(&[rule(true, DeviceType::All, None, None, "rwm")]).unwrap();
        BpfDeviceCgroup::new()
            .attach(&cg.0, &DeviceProgram::compile(&all))
            .unwrap();
        assert_eq!(attached_device_programs(&cg.0).unwrap(), 2);
        let (ok, _) = cg.sh("head -c1 /dev/zero >/dev/null");
        assert!(!ok);
    }

    #[test]
    #[ignore = "needs root: opens a cgroup directory"]
    fn attaching_to_a_missing_cgroup_names_it() {
        require_root();
        let err = BpfDeviceCgroup::new()
            .attach(
                Path::new("/sys/fs/cgroup/corral-no-such-cgroup"),
                &DeviceProgram::compile(&DevicePolicy::deny_all()),
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "opening cgroup /sys/fs/cgroup/corral-no-such-cgroup"
        );
    }
}
