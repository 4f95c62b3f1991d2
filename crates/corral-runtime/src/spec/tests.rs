//! Tests of [`build_spec`] as a whole.

use std::collections::BTreeMap;

use oci_spec::runtime::{Capability, LinuxNamespaceType, LinuxSeccompAction, PosixRlimitType};
use serde_json::json;

use super::test_support::TempDir;
use super::*;

fn rootfs() -> TempDir {
    let root = TempDir::new("build");
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    std::fs::write(
        root.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        root.path().join("etc/group"),
        "root:x:0:\napp:x:1000:\nwheel:x:10:app\n",
    )
    .unwrap();
    root
}

fn image() -> Value {
    json!({"config": {"Cmd": ["sh"], "Env": ["PATH=/usr/bin:/bin"]}})
}

fn build(spec: &ContainerSpec) -> Result<Spec> {
    build_with(spec, |_| {})
}

fn build_with(spec: &ContainerSpec, tweak: impl FnOnce(&mut SpecInput<'_>)) -> Result<Spec> {
    let root = rootfs();
    let img = image();
    let mut input = SpecInput::new("0123456789abcdef0123", spec, &img, root.path());
    tweak(&mut input);
    build_spec(&input)
}

fn ns_types(s: &Spec) -> Vec<LinuxNamespaceType> {
    s.linux()
        .as_ref()
        .unwrap()
        .namespaces()
        .iter()
        .flatten()
        .map(|n| n.typ())
        .collect()
}

fn effective_mask(s: &Spec) -> u64 {
    let caps = s
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .as_ref()
        .unwrap();
    let names: Vec<String> = caps
        .effective()
        .iter()
        .flatten()
        .map(|c| {
            serde_json::to_value(c)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    capability_mask(&names)
}

#[test]
fn default_spec_has_dockers_confinement() {
    let s = build(&ContainerSpec::default()).unwrap();
    assert_eq!(effective_mask(&s), 0xa80425fb);
    let caps = s
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .as_ref()
        .unwrap();
    assert!(caps.inheritable().as_ref().unwrap().is_empty());
    assert!(caps.ambient().as_ref().unwrap().is_empty());
    assert!(!caps
        .bounding()
        .as_ref()
        .unwrap()
        .contains(&Capability::SysAdmin));

    let linux = s.linux().as_ref().unwrap();
    assert_eq!(linux.masked_paths().as_deref().unwrap(), MASKED_PATHS);
    assert_eq!(linux.readonly_paths().as_deref().unwrap(), READONLY_PATHS);
    let seccomp = linux.seccomp().as_ref().unwrap();
    assert_eq!(seccomp.default_action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(
        ns_types(&s),
        [
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Network,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Mount
        ]
    );
    assert_eq!(
        linux.cgroups_path().as_deref(),
        Some(Path::new("/corral/0123456789abcdef0123"))
    );
    assert_eq!(linux.devices().as_ref().unwrap().len(), 6);
    assert!(!linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .as_ref()
        .unwrap()[0]
        .allow());

    let p = s.process().as_ref().unwrap();
    assert_eq!(p.args().as_deref().unwrap(), ["sh"]);
    assert_eq!(
        p.env().as_deref().unwrap(),
        ["PATH=/usr/bin:/bin", "HOSTNAME=0123456789ab", "HOME=/root"]
    );
    assert_eq!(
        p.no_new_privileges(),
        None,
        "absent, not false: see build_spec"
    );
    assert_eq!(p.terminal(), Some(false));
    assert_eq!(p.oom_score_adj(), Some(0));
    assert_eq!(p.user().uid(), 0);
    assert_eq!(p.cwd(), Path::new("/"));
    let nofile = &p.rlimits().as_ref().unwrap()[0];
    assert_eq!(
        (nofile.typ(), nofile.soft()),
        (PosixRlimitType::RlimitNofile, 1_048_576)
    );
    assert_eq!(s.hostname().as_deref(), Some("0123456789ab"));
    assert_eq!(s.root().as_ref().unwrap().readonly(), Some(false));
}

#[test]
fn serialised_spec_uses_oci_field_names() {
    let s = build(&ContainerSpec::default()).unwrap();
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(v["ociVersion"], "1.0.2");
    assert!(v["process"]["capabilities"]["bounding"]
        .as_array()
        .unwrap()
        .contains(&json!("CAP_CHOWN")));
    assert_eq!(v["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(v["linux"]["maskedPaths"][0], "/proc/asound");
    assert!(v["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["destination"] == "/dev/pts"));
    // Round-trips through oci-spec's own parser.
    let back: Spec = serde_json::from_value(v).unwrap();
    assert_eq!(back, s);
}

#[test]
fn privileged_drops_confinement() {
    let mut spec = ContainerSpec::default();
    spec.host.privileged = true;
    let s = build(&spec).unwrap();
    assert_eq!(effective_mask(&s), (1 << 41) - 1);
    let linux = s.linux().as_ref().unwrap();
    assert!(linux.seccomp().is_none());
    assert!(linux.masked_paths().is_none() && linux.readonly_paths().is_none());
    let rules = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .as_ref()
        .unwrap();
    assert!(rules.len() == 1 && rules[0].allow());

    let s = build_with(&spec, |i| i.features.capability_bound = Some(0x1fffeffffff)).unwrap();
    assert_eq!(effective_mask(&s), 0x1fffeffffff);
}

#[test]
fn security_opts_are_parsed() {
    let mut spec = ContainerSpec::default();
    spec.host.security_opt = vec!["seccomp=unconfined".into(), "no-new-privileges".into()];
    let s = build(&spec).unwrap();
    assert!(s.linux().as_ref().unwrap().seccomp().is_none());
    assert!(s.linux().as_ref().unwrap().masked_paths().is_some());
    assert_eq!(
        s.process().as_ref().unwrap().no_new_privileges(),
        Some(true)
    );

    for opt in [
        "no-new-privileges:true",
        "no-new-privileges=true",
        "seccomp:unconfined",
    ] {
        spec.host.security_opt = vec![opt.into()];
        build(&spec).unwrap();
    }
    spec.host.security_opt = vec!["no-new-privileges:false".into()];
    assert_eq!(
        build(&spec)
            .unwrap()
            .process()
            .as_ref()
            .unwrap()
            .no_new_privileges(),
        None
    );

    spec.host.security_opt = vec![
        "systempaths=unconfined".into(),
        "apparmor=unconfined".into(),
    ];
    let s = build(&spec).unwrap();
    assert!(s.linux().as_ref().unwrap().masked_paths().is_none());
    assert!(s.linux().as_ref().unwrap().seccomp().is_some());

    spec.host.security_opt = vec!["bogus=1".into()];
    let err = build(&spec).unwrap_err();
    assert_eq!(err.to_string(), "invalid --security-opt: \"bogus=1\"");
    assert_eq!(err.kind(), corral_core::ErrorKind::InvalidInput);
}

#[test]
fn custom_seccomp_profile_from_security_opt() {
    let mut spec = ContainerSpec::default();
    spec.host.security_opt = vec![
        r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#
            .into(),
    ];
    let s = build(&spec).unwrap();
    let sc = s.linux().as_ref().unwrap().seccomp().clone().unwrap();
    assert_eq!(sc.default_action(), LinuxSeccompAction::ScmpActAllow);
    spec.host.security_opt = vec!["seccomp={not json".into()];
    assert!(matches!(
        build(&spec),
        Err(SpecError::InvalidSeccompProfile { .. })
    ));
}

#[test]
fn cap_add_sys_admin_opens_the_seccomp_mount_rules() {
    let mut spec = ContainerSpec::default();
    spec.host.cap_add = vec!["SYS_ADMIN".into()];
    let s = build(&spec).unwrap();
    let sc = s.linux().as_ref().unwrap().seccomp().clone().unwrap();
    assert!(sc
        .syscalls()
        .iter()
        .flatten()
        .any(|r| r.names().iter().any(|n| n == "mount")));
    assert_eq!(effective_mask(&s), 0xa80425fb | (1 << 21));
    spec.host.cap_add = vec!["NOT_A_CAP".into()];
    assert!(matches!(
        build(&spec),
        Err(SpecError::UnknownCapability { .. })
    ));
}

#[test]
fn init_without_a_binary_is_refused_clearly() {
    let mut spec = ContainerSpec::default();
    spec.host.init = true;
    let err = build(&spec).unwrap_err();
    assert!(err.to_string().contains("tini-static"), "{err}");
    assert_eq!(err.kind(), corral_core::ErrorKind::InvalidInput);
}

#[test]
fn init_runs_tini_in_front_of_the_command() {
    let mut spec = ContainerSpec::default();
    spec.host.init = true;
    let s = build_with(&spec, |i| i.init = Some("/usr/bin/tini-static".into())).unwrap();
    let args = s.process().as_ref().unwrap().args().clone().unwrap();
    assert_eq!(&args[..2], [INIT_PATH, "--"]);
    let m = s
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.destination().to_str() == Some(INIT_PATH))
        .expect("init mounted");
    assert_eq!(
        m.source().as_deref().and_then(|p| p.to_str()),
        Some("/usr/bin/tini-static")
    );
}

#[test]
fn namespace_modes() {
    let mut spec = ContainerSpec::default();
    spec.host.pid_mode = Some("host".into());
    spec.host.ipc_mode = Some("host".into());
    let s = build_with(&spec, |i| i.network = NamespaceMode::Host).unwrap();
    assert_eq!(
        ns_types(&s),
        [LinuxNamespaceType::Uts, LinuxNamespaceType::Mount]
    );

    let s = build_with(&ContainerSpec::default(), |i| {
        i.network = NamespaceMode::Join("/run/corral/netns/x".into());
        i.features.cgroup_v2 = true;
    })
    .unwrap();
    let nss = s.linux().as_ref().unwrap().namespaces().clone().unwrap();
    let net = nss
        .iter()
        .find(|n| n.typ() == LinuxNamespaceType::Network)
        .unwrap();
    assert_eq!(
        net.path().as_deref(),
        Some(Path::new("/run/corral/netns/x"))
    );
    assert!(nss.iter().any(|n| n.typ() == LinuxNamespaceType::Cgroup));

    let mut spec = ContainerSpec::default();
    spec.host.pid_mode = Some("container:abc".into());
    assert!(matches!(
        build(&spec),
        Err(SpecError::InvalidNamespaceMode { .. })
    ));
    let s = build_with(&spec, |i| {
        i.pid = Some(NamespaceMode::Join("/proc/1/ns/pid".into()))
    });
    assert!(s.is_ok());
}

#[test]
fn user_and_home_come_from_the_rootfs() {
    let mut spec = ContainerSpec {
        user: Some("app".into()),
        ..Default::default()
    };
    spec.host.group_add = vec!["root".into()];
    let s = build(&spec).unwrap();
    let p = s.process().as_ref().unwrap();
    assert_eq!((p.user().uid(), p.user().gid()), (1000, 1000));
    assert_eq!(
        p.user().additional_gids().as_deref(),
        Some(&[1000, 10, 0][..])
    );
    assert!(p
        .env()
        .as_ref()
        .unwrap()
        .contains(&"HOME=/home/app".to_string()));

    spec.env = vec!["HOME=/custom".into()];
    let s = build(&spec).unwrap();
    let env = s.process().as_ref().unwrap().env().clone().unwrap();
    assert!(env.contains(&"HOME=/custom".to_string()));
    assert!(!env.contains(&"HOME=/home/app".to_string()));

    spec.user = Some("nobody".into());
    let err = build(&spec).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unable to find user nobody: no matching entries in passwd file"
    );
}

#[test]
fn host_settings_reach_the_spec() {
    let mut spec = ContainerSpec {
        tty: true,
        domainname: Some("example.org".into()),
        hostname: Some("web".into()),
        ..Default::default()
    };
    spec.host.read_only_rootfs = true;
    spec.host.memory = 256 << 20;
    spec.host.nano_cpus = 500_000_000;
    spec.host.pids_limit = Some(50);
    spec.host.oom_score_adj = 300;
    spec.host.ulimits = vec![("nofile".into(), 100, 200)];
    spec.host.sysctls = BTreeMap::from([("net.ipv4.ip_forward".to_string(), "1".to_string())]);
    let img = image();
    let root = rootfs();
    let mut input = SpecInput::new("abc", &spec, &img, root.path());
    assert_eq!(input.hostname, "web");
    input.cgroups_path = "/corral-test/abc".into();
    let s = build_spec(&input).unwrap();
    assert_eq!(s.root().as_ref().unwrap().readonly(), Some(true));
    assert_eq!(s.domainname().as_deref(), Some("example.org"));
    let p = s.process().as_ref().unwrap();
    assert_eq!(p.terminal(), Some(true));
    assert_eq!(p.oom_score_adj(), Some(300));
    assert!(p
        .env()
        .as_ref()
        .unwrap()
        .contains(&"HOSTNAME=web".to_string()));
    assert!(p
        .env()
        .as_ref()
        .unwrap()
        .contains(&"TERM=xterm".to_string()));
    assert_eq!(p.rlimits().as_ref().unwrap()[0].hard(), 200);
    let linux = s.linux().as_ref().unwrap();
    let r = linux.resources().as_ref().unwrap();
    assert_eq!(r.memory().unwrap().limit(), Some(256 << 20));
    assert_eq!(r.memory().unwrap().swap(), Some(512 << 20));
    assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(50_000));
    assert_eq!(r.pids().unwrap().limit(), 50);
    assert_eq!(linux.sysctl().as_ref().unwrap()["net.ipv4.ip_forward"], "1");
    assert_eq!(
        linux.cgroups_path().as_deref(),
        Some(Path::new("/corral-test/abc"))
    );

    let err = build_with(&spec, |i| i.network = NamespaceMode::Host).unwrap_err();
    assert!(matches!(err, SpecError::InvalidSysctl { .. }));
    spec.host.oom_score_adj = 2000;
    assert!(matches!(
        build(&spec),
        Err(SpecError::InvalidResources { .. })
    ));
}

#[test]
fn mounts_and_network_files_are_included() {
    let spec = ContainerSpec::default();
    let s = build_with(&spec, |i| {
        i.network_files.hosts = Some("/var/lib/corral/c/hosts".into());
        i.mounts = vec![ResolvedMount {
            source: "/var/lib/corral/volumes/v/_data".into(),
            destination: "/data".into(),
            kind: MountKind::Bind,
            options: vec!["ro".into()],
        }];
    })
    .unwrap();
    let dests: Vec<String> = s
        .mounts()
        .iter()
        .flatten()
        .map(|m| m.destination().display().to_string())
        .collect();
    assert_eq!(dests[dests.len() - 2..], ["/etc/hosts", "/data"]);

    let s = build_with(&spec, |i| {
        i.mounts = vec![ResolvedMount {
            source: "/x".into(),
            destination: "rel".into(),
            kind: MountKind::Bind,
            options: vec![],
        }];
    });
    assert_eq!(
        s.unwrap_err().to_string(),
        "invalid mount config: mount path must be absolute"
    );
}

#[test]
fn no_command_is_invalid_input() {
    let root = rootfs();
    let img = json!({"config": {}});
    let spec = ContainerSpec::default();
    let input = SpecInput::new("abc", &spec, &img, root.path());
    assert!(matches!(build_spec(&input), Err(SpecError::NoCommand)));
}

#[test]
fn devices_and_cgroup_rules_reach_the_spec() {
    let mut spec = ContainerSpec::default();
    spec.host.devices = vec![
        corral_core::DeviceMapping {
            path_on_host: "/dev/null".to_owned(),
            path_in_container: "/dev/mynull".to_owned(),
            cgroup_permissions: "rw".to_owned(),
        },
        // At a default node's path: replaces it rather than adding a second /dev/zero.
        corral_core::DeviceMapping {
            path_on_host: "/dev/zero".to_owned(),
            path_in_container: String::new(),
            cgroup_permissions: String::new(),
        },
    ];
    spec.host.device_cgroup_rules = vec!["c 10:237 rwm".to_owned(), "b *:* r".to_owned()];
    let s = build(&spec).unwrap();
    let linux = s.linux().as_ref().unwrap();
    let nodes: Vec<String> = linux
        .devices()
        .iter()
        .flatten()
        .map(|d| format!("{} {}:{}", d.path().display(), d.major(), d.minor()))
        .collect();
    assert_eq!(
        nodes,
        [
            "/dev/null 1:3",
            "/dev/full 1:7",
            "/dev/random 1:8",
            "/dev/urandom 1:9",
            "/dev/tty 5:0",
            "/dev/mynull 1:3",
            "/dev/zero 1:5"
        ]
    );
    let rules = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .clone()
        .unwrap();
    let tail: Vec<String> = rules[rules.len() - 4..]
        .iter()
        .map(|r| {
            format!(
                "{:?} {:?}:{:?} {}",
                r.typ().unwrap(),
                r.major(),
                r.minor(),
                r.access().as_deref().unwrap()
            )
        })
        .collect();
    assert_eq!(
        tail,
        [
            "C Some(1):Some(3) rw",
            "C Some(1):Some(5) rwm",
            "C Some(10):Some(237) rwm",
            "B None:None r"
        ]
    );
    assert!(!rules[0].allow(), "deny-all still comes first");

    spec.host.devices[0].path_on_host = "/dev/corral-no-such-device".to_owned();
    let e = build(&spec).unwrap_err();
    assert_eq!(e.kind(), corral_core::ErrorKind::Internal);
    assert_eq!(
        e.to_string(),
        "error gathering device information while adding custom device \
         \"/dev/corral-no-such-device\": no such file or directory"
    );
    spec.host.devices.clear();
    spec.host.device_cgroup_rules = vec!["c 1:3 rwz".to_owned()];
    assert_eq!(
        build(&spec).unwrap_err().to_string(),
        "invalid device cgroup rule format: 'c 1:3 rwz'"
    );
}

#[cfg(target_arch = "x86_64")]
/// Runs a classic-BPF seccomp program on one `struct seccomp_data` (the subset of the
/// instruction set libseccomp emits: absolute word loads, constant jumps, returns, scratch
/// memory and the A/X moves).
fn run_bpf(program: &[u8], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
    let mut data = Vec::with_capacity(64);
    data.extend_from_slice(&nr.to_le_bytes());
    data.extend_from_slice(&arch.to_le_bytes());
    data.extend_from_slice(&0u64.to_le_bytes());
    for a in args {
        data.extend_from_slice(&a.to_le_bytes());
    }
    let insns: Vec<(u16, u8, u8, u32)> = program
        .chunks_exact(8)
        .map(|c| {
            (
                u16::from_ne_bytes([c[0], c[1]]),
                c[2],
                c[3],
                u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            )
        })
        .collect();
    let (mut a, mut x, mut mem, mut pc) = (0u32, 0u32, [0u32; 16], 0usize);
    loop {
        let (code, jt, jf, k) = insns[pc];
        pc += 1;
        match code {
            0x20 => {
                let o = k as usize;
                a = u32::from_le_bytes(data[o..o + 4].try_into().unwrap());
            }
            0x00 => a = k,
            0x60 => a = mem[k as usize],
            0x01 => x = k,
            0x61 => x = mem[k as usize],
            0x02 => mem[k as usize] = a,
            0x03 => mem[k as usize] = x,
            0x54 => a &= k,
            0x05 => pc += k as usize,
            0x15 | 0x25 | 0x35 | 0x45 => {
                let taken = match code {
                    0x15 => a == k,
                    0x25 => a > k,
                    0x35 => a >= k,
                    _ => a & k != 0,
                };
                pc += usize::from(if taken { jt } else { jf });
            }
            0x06 => return k,
            0x16 => return a,
            0x07 => x = a,
            0x87 => a = x,
            other => panic!("instruction {other:#x} at {} not emulated", pc - 1),
        }
    }
}

#[test]
#[cfg(target_arch = "x86_64")]
fn default_seccomp_program_gives_every_syscall_its_profile_action() {
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const ALLOW: u32 = 0x7fff_0000;
    const ERRNO: u32 = 0x0005_0000;
    let s = build(&ContainerSpec::default()).unwrap();
    let profile = s.linux().as_ref().unwrap().seccomp().clone().unwrap();
    let dir = TempDir::new("seccomp");
    let path = dir.path().join("program");
    let file = std::fs::File::create(&path).unwrap();
    libcontainer::seccomp::export_bpf(&profile, &file).unwrap();
    let program = std::fs::read(&path).unwrap();
    assert!(!program.is_empty() && program.len().is_multiple_of(8));

    let action = |rule: &oci_spec::runtime::LinuxSyscall| match rule.action() {
        LinuxSeccompAction::ScmpActAllow => ALLOW,
        LinuxSeccompAction::ScmpActErrno => ERRNO | rule.errno_ret().unwrap_or(1),
        other => panic!("the default profile has no {other:?} rule"),
    };
    let nr = |name: &str| {
        let sc =
            libseccomp::ScmpSyscall::from_name_by_arch(name, libseccomp::ScmpArch::X8664).ok()?;
        u32::try_from(i32::from(sc)).ok()
    };
    let rules = profile.syscalls().clone().unwrap_or_default();
    let conditional: std::collections::HashSet<&str> = rules
        .iter()
        .filter(|r| r.args().as_ref().is_some_and(|a| !a.is_empty()))
        .flat_map(|r| r.names().iter().map(String::as_str))
        .collect();
    let mut expected: BTreeMap<u32, u32> = BTreeMap::new();
    for rule in rules.iter().filter(|r| r.args().is_none()) {
        for name in rule.names() {
            if let (Some(n), false) = (nr(name), conditional.contains(name.as_str())) {
                expected.insert(n, action(rule));
            }
        }
    }
    assert!(
        expected.len() > 250,
        "{} unconditional rules",
        expected.len()
    );
    let default = ERRNO | profile.default_errno_ret().unwrap_or(1);
    let conditional_nrs: Vec<u32> = conditional.iter().filter_map(|n| nr(n)).collect();
    for n in 0..1024u32 {
        if conditional_nrs.contains(&n) {
            continue;
        }
        let want = expected.get(&n).copied().unwrap_or(default);
        assert_eq!(
            run_bpf(&program, n, AUDIT_ARCH_X86_64, [0; 6]),
            want,
            "syscall {n}"
        );
    }
    // Spot checks of named and argument-dependent rules.
    let call = |name: &str, arg0: u64| {
        run_bpf(
            &program,
            nr(name).unwrap(),
            AUDIT_ARCH_X86_64,
            [arg0, 0, 0, 0, 0, 0],
        )
    };
    assert_eq!(call("read", 0), ALLOW);
    assert_eq!(call("unshare", 0), ERRNO | 1);
    assert_eq!(call("mount", 0), ERRNO | 1);
    assert_eq!(call("clone3", 0), ERRNO | 38, "clone3 is ENOSYS");
    assert_eq!(call("personality", 0), ALLOW);
    assert_eq!(call("personality", 0x0020_0000), ERRNO | 1);
    // A foreign architecture is refused whatever the syscall.
    assert_ne!(run_bpf(&program, 0, 0xc000_00b7, [0; 6]), ALLOW);
    // Laid out as a binary tree (vendor/libcontainer CORRAL-PATCH.md §4): range jumps on the
    // syscall number, where the linear layout has none (237 against 0 on x86_64 here).
    let range_jumps = program
        .chunks_exact(8)
        .filter(|c| matches!(u16::from_ne_bytes([c[0], c[1]]), 0x25 | 0x35))
        .count();
    assert!(range_jumps > 50, "{range_jumps} range jumps");
}
