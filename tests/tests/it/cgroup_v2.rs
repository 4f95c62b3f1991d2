//! A pure cgroup v2 host, seen from a private mount namespace whose `/sys/fs/cgroup` is a
//! cgroup2 mount (`DaemonOptions::cgroup_v2_view`); the host's layout is not changed. On the
//! hybrid test host that tree is `/sys/fs/cgroup/unified` with every controller bound to
//! v1, so the daemon, libcgroups and the shims take the v2 path with no controllers: the
//! lifecycle, `cgroup.freeze` and live restore work; the device cgroup (an eBPF program)
//! refuses to open devices outside Docker's list, also for `exec` and after `update`;
//! memory, cpu, cpuset and pids limits are discarded with dockerd's warnings and `--cpus`
//! is refused (checked against dockerd 20.10 run in the same view).
//!
//! Corral only: the reference dockerd of the suite runs on the host's hybrid layout.

use std::path::PathBuf;

use corral_testkit::{assert_eventually, DaemonOptions, Subject, SubjectKind};

use crate::common::{assert_contains, Env};

/// Makes a block node and `/dev/mem`'s node (both may be made: CAP_MKNOD and Docker's
/// mknod rules) and opens them (both refused) and the standard devices (allowed).
const DEVICE_PROBE: &str = "mknod /tmp/blk b 7 0; echo mknod=$?; head -c 1 /tmp/blk >/dev/null; \
     echo open=$?; mknod /tmp/mem c 1 1; head -c 1 /tmp/mem >/dev/null; echo mem=$?; \
     head -c 1 /dev/zero >/dev/null; echo zero=$?; echo x >/dev/null; echo null=$?; \
     head -c 1 /dev/urandom >/dev/null; echo urandom=$?; rm -f /tmp/blk /tmp/mem";
const DEVICE_PROBE_ANSWER: &str = "mknod=0\nopen=1\nmem=1\nzero=0\nnull=0\nurandom=0";

fn which(binary: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(binary).is_file()))
}

/// The container's cgroup as the host sees it: the view's root is the host's cgroup2 mount.
fn host_cgroup(instance: &str, id: &str) -> PathBuf {
    PathBuf::from("/sys/fs/cgroup/unified")
        .join(format!("corral-{instance}"))
        .join(id)
}

fn read(p: &std::path::Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
        .trim()
        .to_owned()
}

#[test]
#[ignore = "needs root: starts a registry and corral server in a private mount namespace"]
fn containers_run_pause_and_survive_a_daemon_crash_on_pure_cgroup_v2() {
    if SubjectKind::from_env().ok() == Some(SubjectKind::Docker) {
        eprintln!("skipped: the view is a corral testkit option");
        return;
    }
    if !std::path::Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists() {
        eprintln!("skipped: the host has no cgroup2 mount at /sys/fs/cgroup/unified");
        return;
    }
    let mut env = Env::new_with(|registries| {
        Subject::start_corral(DaemonOptions {
            insecure_registries: registries.to_vec(),
            cgroup_v2_view: true,
            ..DaemonOptions::default()
        })
    });
    let instance = env.subject.corral().expect("corral").instance().to_owned();
    assert_eq!(
        env.docker(&["info", "-f", "{{.CgroupVersion}}"]).ok().out(),
        "2"
    );

    let name = env.name("v2");
    let id = env
        .docker(&["run", "-d", "--name", &name, &env.image, "sleep", "300"])
        .ok()
        .out()
        .to_owned();
    let pid = env.inspect("{{.State.Pid}}", &name);
    let cg = host_cgroup(&instance, &id);
    assert_eq!(read(&cg.join("cgroup.procs")), pid, "{}", cg.display());
    assert!(
        !PathBuf::from("/sys/fs/cgroup/memory")
            .join(format!("corral-{instance}"))
            .exists(),
        "no v1 cgroup in the v2 view"
    );
    // Inside: a private cgroup namespace rooted at its own cgroup.
    assert_eq!(
        env.docker(&["exec", &name, "cat", "/proc/self/cgroup"])
            .ok()
            .out()
            .lines()
            .last(),
        Some("0::/")
    );
    assert_contains(
        env.docker(&["ps", "--format", "{{.Names}} {{.Status}}"])
            .ok()
            .out(),
        &format!("{name} Up"),
    );
    assert_contains(env.docker(&["top", &name]).ok().out(), "sleep 300");
    // Without a memory controller there are no memory stats: `0B / 0B`, as dockerd.
    assert_eq!(
        env.docker(&[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.MemUsage}}",
            &name
        ])
        .ok()
        .out(),
        format!("{name} 0B / 0B"),
    );

    // The v2 freezer is there without controllers.
    env.docker(&["pause", &name]).ok();
    assert_eq!(read(&cg.join("cgroup.freeze")), "1");
    assert_eq!(env.inspect("{{.State.Status}}", &name), "paused");
    env.docker(&["unpause", &name]).ok();
    assert_eq!(read(&cg.join("cgroup.freeze")), "0");
    assert_eq!(
        env.docker(&["exec", &name, "echo", "thawed"]).ok().out(),
        "thawed"
    );

    // The device cgroup is an eBPF program on v2, attached by the shim to the container's
    // cgroup before the user's process runs: mknod works (CAP_MKNOD and Docker's
    // "c *:* m"/"b *:* m"), opening a device outside Docker's list fails with EPERM, the
    // standard devices open. Same probe and answers as the v1 test in isolation.rs, and as
    // dockerd 20.10 run in the same view (run, exec and after update; checked by hand).
    let dev = env
        .docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            &env.image,
            "sh",
            "-c",
            DEVICE_PROBE,
        ])
        .ok()
        .clone();
    assert_eq!(dev.out(), DEVICE_PROBE_ANSWER);
    assert_contains(dev.err(), "head: /tmp/blk: Operation not permitted");
    // `docker exec` joins the same cgroup, so the same program applies.
    let exec = env
        .docker(&["exec", &name, "sh", "-c", DEVICE_PROBE])
        .ok()
        .clone();
    assert_eq!(exec.out(), DEVICE_PROBE_ANSWER);
    // Privileged: every device (no program is attached).
    assert_eq!(
        env.docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--privileged",
            &env.image,
            "sh",
            "-c",
            "mknod /tmp/lc c 10 237 && : < /tmp/lc && echo opened",
        ])
        .ok()
        .out(),
        "opened"
    );
    // runc attaches its own program on v2: the same answers through `--runtime runc`.
    if which("runc") {
        let runc = env
            .docker(&[
                "run",
                "--rm",
                "--network",
                "none",
                "--runtime",
                "runc",
                &env.image,
                "sh",
                "-c",
                DEVICE_PROBE,
            ])
            .ok()
            .clone();
        assert_eq!(runc.out(), DEVICE_PROBE_ANSWER);
    }

    // Limits need controllers this tree does not have: dropped with dockerd's warnings.
    let memory = env
        .docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-m",
            "64m",
            "--pids-limit",
            "50",
            &env.image,
            "echo",
            "ran",
        ])
        .ok()
        .clone();
    assert_eq!(memory.out(), "ran");
    assert_contains(
        memory.err(),
        "Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded.",
    );
    assert_contains(
        memory.err(),
        "Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded.",
    );
    let cpus = env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--cpus",
        "0.5",
        &env.image,
        "true",
    ]);
    cpus.failed();
    assert_contains(
        cpus.err(),
        "NanoCPUs can not be set, as your kernel does not support CPU CFS scheduler or the cgroup is not mounted",
    );
    // The CLI prints update's warnings on stdout, before the name.
    let updated = env
        .docker(&["update", "--memory", "64m", &name])
        .ok()
        .clone();
    assert_contains(
        &format!("{}{}", updated.out(), updated.err()),
        "Limitation discarded",
    );
    assert_eq!(env.inspect("{{.HostConfig.Memory}}", &name), "0");
    // `docker update` rewrites limits through libcgroups, which leaves the device program.
    assert_eq!(
        env.docker(&["exec", &name, "sh", "-c", DEVICE_PROBE])
            .ok()
            .out(),
        DEVICE_PROBE_ANSWER
    );

    // `--device` and `--device-cgroup-rule` reach the eBPF program: the mapped node and a
    // node the container makes under the rule open; the rest of Docker's list is unchanged.
    let devs = env.name("v2devs");
    env.docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &devs,
        "--device",
        "/dev/loop-control:/dev/lc:r",
        "--device-cgroup-rule",
        "c 10:237 w",
        &env.image,
        "sleep",
        "300",
    ])
    .ok();
    let devs_probe = format!(
        "{DEVICE_PROBE}; true </dev/lc; echo lc=$?; mknod /tmp/lc2 c 10 237; true >/tmp/lc2; \
         echo lc2=$?; rm -f /tmp/lc2"
    );
    let devs_answer = format!("{DEVICE_PROBE_ANSWER}\nlc=0\nlc2=0");
    assert_eq!(
        env.docker(&["exec", &devs, "sh", "-c", &devs_probe])
            .ok()
            .out(),
        devs_answer
    );

    // Live restore: the new daemon (in the same view) re-adopts the running container.
    env.subject
        .corral()
        .expect("corral")
        .kill9_and_restart()
        .expect("restart the daemon");
    assert_eq!(env.inspect("{{.State.Status}}", &name), "running");
    assert_eq!(env.inspect("{{.State.Pid}}", &name), pid);
    assert_eq!(
        env.docker(&["exec", &name, "echo", "re-adopted"])
            .ok()
            .out(),
        "re-adopted"
    );
    // The program belongs to the cgroup, not to the daemon or the shim's memory.
    assert_eq!(
        env.docker(&["exec", &name, "sh", "-c", DEVICE_PROBE])
            .ok()
            .out(),
        DEVICE_PROBE_ANSWER
    );
    env.docker(&["pause", &name]).ok();
    assert_eq!(read(&cg.join("cgroup.freeze")), "1");
    env.docker(&["unpause", &name]).ok();

    assert_eq!(
        env.docker(&["exec", &devs, "sh", "-c", &devs_probe])
            .ok()
            .out(),
        devs_answer
    );
    env.docker(&["rm", "-f", &devs]).ok();
    env.docker(&["stop", "-t", "1", &name]).ok();
    assert_eq!(env.inspect("{{.State.Status}}", &name), "exited");
    env.docker(&["rm", &name]).ok();
    assert_eventually!(!cg.exists());
    // Dropping the env checks that nothing else of the instance is left: processes, the
    // cgroups in the unified tree and the mounts of the view's namespace.
}
