//! End-to-end checks of generated specs with real runtimes: runc (root) and youki's
//! libcontainer seccomp loader (re-executed test child, no root needed).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use super::test_support::TempDir;
use super::*;

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root: run it as root with --include-ignored"
    );
}

/// A runc container id plus its state root; `Drop` force-deletes the container (which also
/// removes its cgroup) and removes the cgroup parent directories the test created.
struct RuncContainer {
    state: PathBuf,
    id: String,
    cgroup_parent: &'static str,
}

impl Drop for RuncContainer {
    fn drop(&mut self) {
        let _ = Command::new("runc")
            .arg("--root")
            .arg(&self.state)
            .args(["delete", "-f", &self.id])
            .output();
        if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
            for e in entries.flatten() {
                let _ = std::fs::remove_dir(e.path().join(self.cgroup_parent));
            }
        }
        let _ = std::fs::remove_dir("/sys/fs/cgroup/unified/corral-test");
    }
}

/// A bundle with a busybox rootfs: `/bin/busybox` plus applet symlinks, `/etc/passwd`, `/mnt`.
fn busybox_bundle(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    for d in ["bin", "etc", "mnt", "proc", "sys", "dev", "tmp"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for applet in ["sh", "cat", "grep", "mount", "unshare", "echo", "id", "wc"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\n").unwrap();
    rootfs
}

fn own_bounding_set() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    bounding_set_from_status(&status, "CapBnd").unwrap()
}

fn run_in_runc(spec: &ContainerSpec, tag: &str) -> (String, i32) {
    let dir = TempDir::new(tag);
    let rootfs = busybox_bundle(dir.path());
    let id = format!("corral-spec-{tag}-{}", std::process::id());
    let img = serde_json::Value::Null;
    let mut input = SpecInput::new(&id, spec, &img, &rootfs);
    input.cgroups_path = format!("/corral-test/{id}");
    // This machine's runner lacks CAP_SYS_RESOURCE: stay within its hard limit.
    input.features.nofile_limit = Some(TEST_NOFILE);
    input.features.capability_bound = Some(own_bounding_set());
    let oci = build_spec(&input).unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        serde_json::to_vec_pretty(&oci).unwrap(),
    )
    .unwrap();
    let guard = RuncContainer {
        state: dir.path().join("state"),
        id: id.clone(),
        cgroup_parent: "corral-test",
    };
    let out = Command::new("runc")
        .arg("--root")
        .arg(&guard.state)
        .args(["run", "--bundle"])
        .arg(dir.path())
        .arg(&id)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.code().is_some(),
        "runc failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(guard);
    (
        format!(
            "{stdout}\n--stderr--\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        out.status.code().unwrap_or(-1),
    )
}

const TEST_NOFILE: u64 = 4096;

const PROBE: &str = "echo nofile=$(ulimit -n); grep -E '^(CapEff|CapInh|CapAmb|Seccomp|NoNewPrivs):' /proc/self/status; \
    if mount -t tmpfs x /mnt 2>/dev/null; then echo MOUNT_OK; else echo MOUNT_DENIED; fi; \
    if unshare -n true 2>/dev/null; then echo UNSHARE_OK; else echo UNSHARE_DENIED; fi; \
    echo kcore=$(cat /proc/kcore | wc -c); \
    if echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null; then echo PROCSYS_RW; else echo PROCSYS_RO; fi; \
    id -u; echo done";

#[test]
#[ignore = "needs root: runs runc"]
fn runc_runs_default_spec_with_dockers_confinement() {
    require_root();
    let spec = ContainerSpec {
        cmd: Some(vec!["/bin/sh".into(), "-c".into(), PROBE.into()]),
        ..Default::default()
    };
    let (out, code) = run_in_runc(&spec, "default");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
    assert!(out.contains(&format!("nofile={TEST_NOFILE}")), "{out}");
    assert!(out.contains("CapInh:\t0000000000000000"), "{out}");
    assert!(out.contains("CapAmb:\t0000000000000000"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(out.contains("NoNewPrivs:\t0"), "{out}");
    assert!(out.contains("MOUNT_DENIED"), "{out}");
    assert!(out.contains("UNSHARE_DENIED"), "{out}");
    assert!(out.contains("kcore=0"), "{out}");
    assert!(out.contains("PROCSYS_RO"), "{out}");
    // `$(...)` and pipelines fork: clone without namespace flags is allowed.
    assert!(out.contains("\n0\ndone"), "{out}");
}

#[test]
#[ignore = "needs root: runs runc"]
fn runc_runs_unconfined_and_privileged_specs() {
    require_root();
    let mut spec = ContainerSpec {
        cmd: Some(vec!["/bin/sh".into(), "-c".into(), PROBE.into()]),
        ..Default::default()
    };
    spec.host.security_opt = vec!["seccomp=unconfined".into(), "no-new-privileges".into()];
    let (out, code) = run_in_runc(&spec, "unconfined");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Seccomp:\t0"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    // Still no CAP_SYS_ADMIN, so mount stays denied by the kernel.
    assert!(out.contains("MOUNT_DENIED"), "{out}");

    let mut spec = ContainerSpec {
        cmd: Some(vec!["/bin/sh".into(), "-c".into(), PROBE.into()]),
        ..Default::default()
    };
    spec.host.privileged = true;
    let (out, code) = run_in_runc(&spec, "privileged");
    assert_eq!(code, 0, "{out}");
    let want = format!("CapEff:\t{:016x}", own_bounding_set() & ((1 << 41) - 1));
    assert!(out.contains(&want), "{want} in {out}");
    assert!(out.contains("Seccomp:\t0"), "{out}");
    assert!(out.contains("MOUNT_OK"), "{out}");
}

#[test]
#[ignore = "needs root: runs runc"]
fn runc_applies_cap_add_sys_admin_through_seccomp() {
    require_root();
    let mut spec = ContainerSpec {
        cmd: Some(vec!["/bin/sh".into(), "-c".into(), PROBE.into()]),
        ..Default::default()
    };
    spec.host.cap_add = vec!["sys_admin".into()];
    let (out, code) = run_in_runc(&spec, "sysadmin");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("CapEff:\t00000000a82425fb"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(out.contains("MOUNT_OK"), "{out}");
}

const CHILD_ENV: &str = "CORRAL_SPEC_SECCOMP_CHILD";

/// Loads the rendered default profile with youki's libcontainer in a re-executed test process,
/// then checks what it allows. Needs no root: no_new_privs is set first.
#[test]
fn libcontainer_loads_default_seccomp_and_allows_fork_but_not_unshare() {
    if std::env::var_os(CHILD_ENV).is_some() {
        seccomp_child();
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "spec::runc_tests::libcontainer_loads_default_seccomp_and_allows_fork_but_not_unshare",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("SECCOMP_CHILD_OK"), "{text}");
}

fn seccomp_child() {
    let profile = SeccompProfile::docker_default()
        .render(&DEFAULT_CAPABILITIES, host_arch())
        .unwrap();
    nix::sys::prctl::set_no_new_privs().unwrap();
    libcontainer::seccomp::initialize_seccomp(&profile).unwrap();
    // Fork + exec (clone3 → ENOSYS → clone without namespace flags).
    let st = Command::new("/bin/busybox").arg("true").status().unwrap();
    assert!(st.success());
    let out = Command::new("/bin/busybox")
        .args(["echo", "hi"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"hi\n");
    // Namespace creation and mount are denied with EPERM.
    assert_eq!(
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUTS),
        Err(nix::errno::Errno::EPERM)
    );
    assert_eq!(
        nix::mount::mount(
            Some("x"),
            "/tmp",
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>
        ),
        Err(nix::errno::Errno::EPERM)
    );
    // A namespace-creating clone from a child: busybox unshare uses unshare(2), denied too.
    let st = Command::new("/bin/busybox")
        .args(["unshare", "-n", "true"])
        .status()
        .unwrap();
    assert!(!st.success());
    println!("SECCOMP_CHILD_OK");
    let _ = json!({});
}
