//! What a default container may not do, and resource limits, checked from inside.

use crate::common::{assert_contains, Env};

/// Docker's default capability set: CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID,
/// SETPCAP, NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP.
const DEFAULT_CAPS: &str = "00000000a80425fb";

#[test]
#[ignore = "needs root: starts an engine"]
fn default_capabilities_seccomp_and_no_new_privs() {
    let env = Env::new();
    let out = env.run_sh(
        "grep -E '^(CapPrm|CapEff|CapBnd|CapInh|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status",
    );
    let status: std::collections::BTreeMap<String, String> = out
        .ok()
        .out()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.to_owned(), v.trim().to_owned())
        })
        .collect();
    assert_eq!(status["CapEff"], DEFAULT_CAPS);
    assert_eq!(status["CapPrm"], DEFAULT_CAPS);
    assert_eq!(status["CapBnd"], DEFAULT_CAPS);
    assert_eq!(status["CapInh"], "0000000000000000");
    assert_eq!(status["CapAmb"], "0000000000000000");
    assert_eq!(status["Seccomp"], "2", "seccomp filter mode expected");
    assert_eq!(status["NoNewPrivs"], "0");

    let nnp = env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--security-opt",
        "no-new-privileges",
        &env.image,
        "grep",
        "NoNewPrivs:",
        "/proc/self/status",
    ]);
    assert_eq!(nnp.ok().out().split_whitespace().last(), Some("1"));
    // A non-root user has no effective capabilities.
    let app = env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-u",
        "app",
        &env.image,
        "grep",
        "CapEff:",
        "/proc/self/status",
    ]);
    assert_eq!(
        app.ok().out().split_whitespace().last(),
        Some("0000000000000000")
    );
}

#[test]
#[ignore = "needs root: starts an engine"]
fn mount_is_denied() {
    let env = Env::new();
    let out = env.run_sh("mkdir -p /mnt/x; mount -t tmpfs none /mnt/x; echo rc=$?");
    assert_eq!(out.ok().out(), "rc=1");
    assert_contains(&out.stderr, "mount: permission denied");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn proc_sys_is_read_only() {
    let env = Env::new();
    let out = env.run_sh(
        "echo 1 > /proc/sys/kernel/panic; echo rc=$?; echo 1 > /proc/sys/vm/drop_caches; echo rc=$?",
    );
    assert_eq!(out.ok().out(), "rc=1\nrc=1");
    assert_contains(
        &out.stderr,
        "can't create /proc/sys/kernel/panic: Read-only file system",
    );
}

#[test]
#[ignore = "needs root: starts an engine"]
fn device_nodes_can_be_made_but_not_opened() {
    let env = Env::new();
    // CAP_MKNOD is in the default set and the device cgroup allows `mknod` ("m") for every
    // device, so creating the node succeeds; opening a device outside the allow-list fails.
    let out = env.run_sh(
        "mknod /tmp/blk b 7 0; echo mknod=$?; head -c 1 /tmp/blk >/dev/null; echo open=$?; \
         mknod /tmp/mem c 1 1; head -c 1 /tmp/mem >/dev/null; echo mem=$?; \
         head -c 1 /dev/zero >/dev/null; echo zero=$?",
    );
    assert_eq!(out.ok().out(), "mknod=0\nopen=1\nmem=1\nzero=0");
    assert_contains(&out.stderr, "head: /tmp/blk: Operation not permitted");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn unshare_is_denied() {
    let env = Env::new();
    let out = env.run_sh(
        "unshare -m true; echo rc=$?; unshare -U true; echo rc=$?; unshare -n true; echo rc=$?",
    );
    assert_eq!(out.ok().out(), "rc=1\nrc=1\nrc=1");
    assert_contains(&out.stderr, "Operation not permitted");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn memory_limit_oom_kills_with_137() {
    let env = Env::new();
    let c = env.name("oom");
    let out = env.docker(&[
        "run",
        "--name",
        &c,
        "--network",
        "none",
        "--memory",
        "32m",
        &env.image,
        "sh",
        "-c",
        "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived",
    ]);
    assert_eq!(out.code, Some(137), "{out}");
    assert!(!out.stdout.contains("survived"));
    assert_eq!(
        env.inspect(
            "{{.State.OOMKilled}} {{.State.ExitCode}} {{.HostConfig.Memory}}",
            &c
        ),
        "true 137 33554432"
    );
}

#[test]
#[ignore = "needs root: starts an engine"]
fn pids_limit_stops_a_fork_loop() {
    let env = Env::new();
    // The inner shell dies on its first failed fork; `read` is a builtin, so the outer shell
    // can still report how far it got.
    let script = "sh -c \"i=0; while [ \\$i -lt 60 ]; do sleep 30 & i=\\$((i+1)); echo \\$i > /tmp/n; done\"; \
                  echo inner=$?; read n < /tmp/n; echo forked=$n";
    let out = env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--pids-limit",
        "20",
        &env.image,
        "sh",
        "-c",
        script,
    ]);
    let text = out.ok().out().to_owned();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("inner=2"), "{out}");
    let forked: u32 = lines
        .next()
        .and_then(|l| l.strip_prefix("forked="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        (5..20).contains(&forked),
        "forked {forked} sleeps under pids-limit 20"
    );
    assert_contains(&out.stderr, "can't fork");
    // Without the limit the same loop completes.
    let free = env.run_sh(script);
    assert_eq!(free.ok().out(), "inner=0\nforked=60");
}
