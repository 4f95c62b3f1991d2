//! `docker run`: output, exit codes, stdin, env/user/workdir, hostname and mounts.

use crate::common::{assert_contains, Env};

#[test]
#[ignore = "needs root: starts an engine"]
fn run_prints_output_and_propagates_exit_code() {
    let env = Env::new();
    let out = env.run_sh("echo hello; echo oops >&2; exit 3");
    assert_eq!(out.code, Some(3), "{out}");
    assert_eq!(out.out(), "hello");
    assert_eq!(out.err(), "oops");
    let ok = env.docker(&["run", "--rm", "--network", "none", &env.image, "true"]);
    assert_eq!(ok.code, Some(0), "{ok}");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn run_of_missing_binary_exits_127() {
    let env = Env::new();
    let out = env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        &env.image,
        "nosuchbinary",
    ]);
    assert_eq!(out.code, Some(127), "{out}");
    // dockerd 20.10: `docker: Error response from daemon: failed to create shim task: OCI
    // runtime create failed: runc create failed: unable to start container process: exec:
    // "nosuchbinary": executable file not found in $PATH: unknown`
    assert_contains(&out.stderr, "docker: Error response from daemon:");
    assert_contains(
        &out.stderr,
        r#"exec: "nosuchbinary": executable file not found in $PATH"#,
    );
}

#[test]
#[ignore = "needs root: starts an engine"]
fn run_of_non_executable_file_exits_126() {
    let env = Env::new();
    let out = env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        &env.image,
        "/etc/passwd",
    ]);
    assert_eq!(out.code, Some(126), "{out}");
    assert_contains(&out.stderr, "permission denied");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn run_interactive_pipes_stdin() {
    let env = Env::new();
    let out = env.docker_stdin(
        &["run", "-i", "--rm", "--network", "none", &env.image, "cat"],
        b"hi\n",
    );
    assert_eq!(out.ok().stdout, "hi\n");
    let out = env.docker_stdin(
        &[
            "run",
            "-i",
            "--rm",
            "--network",
            "none",
            &env.image,
            "wc",
            "-l",
        ],
        b"a\nb\nc\n",
    );
    assert_eq!(out.ok().out(), "3");
    // Without -i the container's stdin is empty.
    let out = env.docker_stdin(
        &["run", "--rm", "--network", "none", &env.image, "cat"],
        b"ignored\n",
    );
    assert_eq!(out.ok().stdout, "");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn env_workdir_and_user_flags_apply() {
    let env = Env::new();
    let out = env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-e",
        "FOO=bar",
        "-w",
        "/tmp/newdir",
        &env.image,
        "sh",
        "-c",
        "echo $FOO; pwd; echo $HOME; echo $PATH",
    ]);
    assert_eq!(
        out.ok().out(),
        "bar\n/tmp/newdir\n/root\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    );
    let out = env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-u",
        "app",
        &env.image,
        "id",
    ]);
    assert_eq!(
        out.ok().out(),
        "uid=1000(app) gid=1000(app) groups=1000(app)"
    );
    let out = env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-u",
        "app",
        &env.image,
        "sh",
        "-c",
        "echo $HOME",
    ]);
    assert_eq!(out.ok().out(), "/home/app");
    let out = env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-u",
        "1234:55",
        &env.image,
        "id",
    ]);
    assert_eq!(out.ok().out(), "uid=1234 gid=55 groups=55");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn unknown_user_fails_with_passwd_message() {
    let env = Env::new();
    let out = env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-u",
        "nouser",
        &env.image,
        "id",
    ]);
    assert_eq!(out.code, Some(125), "{out}");
    assert_contains(
        &out.stderr,
        "unable to find user nouser: no matching entries in passwd file",
    );
}

#[test]
#[ignore = "needs root: starts an engine"]
fn hostname_defaults_to_short_container_id() {
    let env = Env::new();
    let c = env.name("hostname");
    env.docker(&[
        "run",
        "--name",
        &c,
        "--network",
        "none",
        &env.image,
        "sh",
        "-c",
        "hostname; cat /etc/hostname",
    ])
    .ok();
    let id = env.inspect("{{.Id}}", &c);
    let logs = env.docker(&["logs", &c]);
    let short = &id[..12];
    assert_eq!(logs.ok().out(), format!("{short}\n{short}"));
    // -h overrides it.
    let out = env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-h",
        "custom",
        &env.image,
        "hostname",
    ]);
    assert_eq!(out.ok().out(), "custom");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn read_only_rootfs_rejects_writes() {
    let env = Env::new();
    let out = env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--read-only",
        &env.image,
        "sh",
        "-c",
        "touch /x; echo rc=$?; touch /tmp/x; echo rc=$?",
    ]);
    assert_eq!(out.ok().out(), "rc=1\nrc=1");
    assert_contains(&out.stderr, "touch: /x: Read-only file system");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn tmpfs_mount_is_writable_and_size_limited() {
    let env = Env::new();
    let out = env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--read-only",
        "--tmpfs",
        "/tmp:size=1m",
        &env.image,
        "sh",
        "-c",
        "touch /tmp/x; echo rc=$?; grep ' /tmp ' /proc/self/mountinfo; \
         dd if=/dev/zero of=/tmp/big bs=1k count=2048 2>/dev/null; echo dd=$?",
    ]);
    let text = out.ok().out().to_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0], "rc=0");
    assert_contains(lines[1], " /tmp rw,nosuid,nodev,noexec");
    assert_contains(lines[1], "- tmpfs tmpfs rw,size=1024k");
    assert_eq!(lines[2], "dd=1");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn bind_mounts_share_host_files_and_honour_ro() {
    let env = Env::new();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("f"), "fromhost\n").unwrap();
    let hp = host.path().to_str().unwrap();
    let out = env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{hp}:/data:ro"),
        &env.image,
        "sh",
        "-c",
        "cat /data/f; echo x > /data/g; echo rc=$?",
    ]);
    assert_eq!(out.ok().out(), "fromhost\nrc=1");
    assert_contains(&out.stderr, "can't create /data/g: Read-only file system");
    env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--mount",
        &format!("type=bind,src={hp},dst=/data"),
        &env.image,
        "sh",
        "-c",
        "echo written > /data/g",
    ])
    .ok();
    assert_eq!(
        std::fs::read_to_string(host.path().join("g")).unwrap(),
        "written\n"
    );
}

#[test]
#[ignore = "needs root: starts an engine"]
fn mount_flag_with_missing_bind_source_fails() {
    let env = Env::new();
    let out = env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--mount",
        "type=bind,src=/nonexistent-e2e-src,dst=/data",
        &env.image,
        "true",
    ]);
    assert_eq!(out.code, Some(125), "{out}");
    assert_contains(
        &out.stderr,
        "invalid mount config for type \"bind\": bind source path does not exist: /nonexistent-e2e-src",
    );
}

#[test]
#[ignore = "needs root: starts an engine"]
fn volume_flag_creates_missing_bind_source() {
    let env = Env::new();
    let parent = tempfile::tempdir().unwrap();
    let src = parent.path().join("created-by-engine");
    let spec = format!("{}:/data", src.display());
    env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &spec,
        &env.image,
        "true",
    ])
    .ok();
    assert!(src.is_dir(), "-v must create a missing host directory");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn init_flag_runs_docker_init_as_pid_1() {
    let env = Env::new();
    let out = env.docker(&[
        "run",
        "--rm",
        "--init",
        "--network",
        "none",
        &env.image,
        "ps",
    ]);
    let text = out.ok().out().to_owned();
    let pid1 = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some("1"))
        .unwrap_or_default();
    assert!(pid1.ends_with("/sbin/docker-init -- ps"), "{text}");
}
