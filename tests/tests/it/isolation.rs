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

/// Opens `/tmp/lc`, a node for `/dev/loop-control` (10:237, outside Docker's list) that
/// the probe makes itself.
const LOOP_CONTROL_PROBE: &str =
    "mknod /tmp/lc c 10 237; echo mknod=$?; true </tmp/lc; echo open=$?; rm -f /tmp/lc";

#[test]
#[ignore = "needs root: starts an engine"]
fn device_flag_adds_host_nodes_with_their_cgroup_rules() {
    let env = Env::new();
    let run = |flags: &[&str], script: &str| {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[env.image.as_str(), "sh", "-c", script]);
        env.docker(&args)
    };
    // Without the flag the node may be made but not opened.
    let out = run(&[], LOOP_CONTROL_PROBE);
    assert_eq!(out.ok().out(), "mknod=0\nopen=1");
    assert_contains(&out.stderr, "Operation not permitted");
    // `--device HOST`: the node at the same path, with the host's mode, and opened.
    assert_eq!(
        run(
            &["--device", "/dev/loop-control"],
            "stat -c '%F %t:%T %a %u:%g' /dev/loop-control; true </dev/loop-control && echo opened",
        )
        .ok()
        .out(),
        "character special file a:ed 600 0:0\nopened"
    );
    // `HOST:CONTAINER`: the node at the new path; it works.
    assert_eq!(
        run(
            &["--device", "/dev/null:/dev/mynull"],
            "stat -c '%F %t:%T %a' /dev/mynull; echo x >/dev/mynull && echo written",
        )
        .ok()
        .out(),
        "character special file 1:3 666\nwritten"
    );
    // `HOST:CONTAINER:r`: read-only in the device cgroup (a node outside the defaults).
    let ro = run(
        &["--device", "/dev/loop-control:/dev/lc:r"],
        "true </dev/lc; echo read=$?; true >/dev/lc; echo write=$?",
    );
    assert_eq!(ro.ok().out(), "read=0\nwrite=1");
    assert_contains(&ro.stderr, "Operation not permitted");
    // A host directory adds the device nodes below it, at the same place under the target.
    assert_eq!(
        run(
            &["--device", "/dev/net:/dev/nets"],
            "stat -c '%t:%T' /dev/nets/tun; true </dev/nets/tun && echo opened",
        )
        .ok()
        .out(),
        "a:c8\nopened"
    );
}

#[test]
#[ignore = "needs root: starts an engine"]
fn device_cgroup_rule_lets_the_container_open_its_own_node() {
    let env = Env::new();
    let out = env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--device-cgroup-rule",
        "c 10:237 rwm",
        &env.image,
        "sh",
        "-c",
        LOOP_CONTROL_PROBE,
    ]);
    assert_eq!(out.ok().out(), "mknod=0\nopen=0");
    // Wildcards: every char device readable, still not writable.
    let wild = env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--device-cgroup-rule",
        "c *:* r",
        &env.image,
        "sh",
        "-c",
        "mknod /tmp/lc c 10 237; true </tmp/lc; echo read=$?; true >/tmp/lc; echo write=$?",
    ]);
    assert_eq!(wild.ok().out(), "read=0\nwrite=1");
}

/// `POST path` with a JSON body through curl; returns (status, body).
fn api_post(env: &Env, path: &str, body: &str) -> (String, String) {
    let out = std::process::Command::new("curl")
        .args(["-s", "-w", "\\n%{http_code}", "--unix-socket"])
        .arg(env.subject.socket())
        .args(["-X", "POST", "-H", "Content-Type: application/json"])
        .args(["-d", body])
        .arg(format!("http://localhost/v1.41{path}"))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').expect("status line");
    (code.to_owned(), body.to_owned())
}

#[test]
#[ignore = "needs root: starts an engine"]
fn bad_devices_and_rules_fail_at_start_with_dockerds_messages() {
    let env = Env::new();
    // Create accepts a missing device; start (here `run`) fails. The CLI exits 127 because
    // the message says "no such file or directory".
    let name = env.name("nodev");
    let out = env.docker(&[
        "run",
        "--name",
        &name,
        "--network",
        "none",
        "--device",
        "/dev/corral-e2e-nope",
        &env.image,
        "true",
    ]);
    assert_eq!(out.code, Some(127), "{out}");
    assert_contains(
        &out.stderr,
        "error gathering device information while adding custom device \"/dev/corral-e2e-nope\": no such file or directory",
    );
    assert_eq!(env.inspect("{{.State.Status}}", &name), "created");
    let (code, body) = api_post(&env, &format!("/containers/{name}/start"), "");
    assert_eq!(code, "500", "{body}");
    // A regular file is no device node.
    let out = env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--device",
        "/etc/hostname:/dev/h",
        &env.image,
        "true",
    ]);
    out.failed();
    assert_contains(
        &out.stderr,
        "error gathering device information while adding custom device \"/etc/hostname\": not a device node",
    );

    // The CLI refuses a bad rule itself, so send it to the API: created, refused at start.
    let bad = env.name("badrule");
    let body = format!(
        r#"{{"Image":"{}","Cmd":["true"],"HostConfig":{{"NetworkMode":"none","DeviceCgroupRules":["c 1:3 rwz"]}}}}"#,
        env.image
    );
    let (code, created) = api_post(&env, &format!("/containers/create?name={bad}"), &body);
    assert_eq!(code, "201", "{created}");
    let (code, body) = api_post(&env, &format!("/containers/{bad}/start"), "");
    assert_eq!(code, "500", "{body}");
    assert_contains(&body, "invalid device cgroup rule format: 'c 1:3 rwz'");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn inspect_shows_devices_and_rules_which_survive_a_restart() {
    let env = Env::new();
    let plain = env.sleeper("plain", &[]);
    assert_eq!(
        env.inspect(
            "{{json .HostConfig.Devices}} {{json .HostConfig.DeviceCgroupRules}}",
            &plain
        ),
        "[] null"
    );
    let name = env.sleeper(
        "devs",
        &[
            "--device",
            "/dev/null:/dev/mynull:rw",
            "--device",
            "/dev/loop-control",
            "--device-cgroup-rule",
            "c 10:237 rwm",
            "--device-cgroup-rule",
            "b *:* m",
        ],
    );
    let expect = r#"[{"PathOnHost":"/dev/null","PathInContainer":"/dev/mynull","CgroupPermissions":"rw"},{"PathOnHost":"/dev/loop-control","PathInContainer":"/dev/loop-control","CgroupPermissions":"rwm"}] ["c 10:237 rwm","b *:* m"]"#;
    let fields = "{{json .HostConfig.Devices}} {{json .HostConfig.DeviceCgroupRules}}";
    assert_eq!(env.inspect(fields, &name), expect);
    let probe = format!(
        "{LOOP_CONTROL_PROBE}; true </dev/loop-control; echo dev=$?; stat -c %t:%T /dev/mynull"
    );
    let answer = "mknod=0\nopen=0\ndev=0\n1:3";
    assert_eq!(
        env.docker(&["exec", &name, "sh", "-c", &probe]).ok().out(),
        answer
    );
    env.docker(&["restart", "-t", "1", &name]).ok();
    assert_eq!(env.inspect(fields, &name), expect);
    assert_eq!(
        env.docker(&["exec", &name, "sh", "-c", &probe]).ok().out(),
        answer
    );
}

/// Custom profiles (`--security-opt seccomp=FILE`, whose JSON the CLI sends) apply to the
/// container they were given to, also when the daemon reuses compiled programs: profiles
/// alternate, and each run must see its own rules.
#[test]
#[ignore = "needs root: starts an engine"]
fn custom_seccomp_profiles_apply_to_their_own_container() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let profile = |name: &str, denied: &[&str]| {
        let path = dir.path().join(name);
        let body = serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": denied, "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
        });
        std::fs::write(&path, body.to_string()).unwrap();
        format!("seccomp={}", path.display())
    };
    let no_mkdir = profile("no-mkdir.json", &["mkdir", "mkdirat"]);
    let no_rmdir = profile("no-rmdir.json", &["rmdir"]);
    let script =
        "mkdir /d; echo mkdir=$?; rmdir /d; echo rmdir=$?; grep Seccomp: /proc/self/status";
    let run = |opt: Option<&str>| {
        let mut args = vec!["run", "--rm", "--network", "none"];
        if let Some(opt) = opt {
            args.extend(["--security-opt", opt]);
        }
        args.extend([env.image.as_str(), "sh", "-c", script]);
        env.docker(&args).ok().out().replace(['\t', ' '], "")
    };
    let denied_mkdir = "mkdir=1\nrmdir=1\nSeccomp:2";
    let denied_rmdir = "mkdir=0\nrmdir=1\nSeccomp:2";
    assert_eq!(run(Some(&no_mkdir)), denied_mkdir);
    assert_eq!(run(Some(&no_rmdir)), denied_rmdir);
    assert_eq!(run(None), "mkdir=0\nrmdir=0\nSeccomp:2");
    assert_eq!(run(Some(&no_mkdir)), denied_mkdir);
    assert_eq!(
        run(Some("seccomp=unconfined")),
        "mkdir=0\nrmdir=0\nSeccomp:0"
    );
    assert_eq!(run(Some(&no_rmdir)), denied_rmdir);
}
