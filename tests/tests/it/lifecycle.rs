//! Container lifecycle: create/start/wait, ps, inspect, stop/kill/restart, pause, rename, rm,
//! logs and top.

use corral_testkit::assert_eventually;

use crate::common::{assert_contains, Env};

#[test]
#[ignore = "needs root: starts an engine"]
fn create_start_wait_logs_rm() {
    let env = Env::new();
    let c = env.name("cswl");
    let id = env.docker(&[
        "create",
        "--name",
        &c,
        "--network",
        "none",
        &env.image,
        "sh",
        "-c",
        "echo out; exit 5",
    ]);
    let id = id.ok().out().to_owned();
    assert_eq!(id.len(), 64, "{id}");
    assert_eq!(env.inspect("{{.State.Status}}", &c), "created");
    env.docker(&["start", &c]).ok();
    assert_eq!(env.docker(&["wait", &c]).ok().out(), "5");
    assert_eq!(env.docker(&["logs", &c]).ok().out(), "out");
    // `start -a` attaches and propagates the exit code; logs accumulate.
    let again = env.docker(&["start", "-a", &c]);
    assert_eq!(again.code, Some(5), "{again}");
    assert_eq!(again.out(), "out");
    assert_eq!(env.docker(&["logs", &c]).ok().out(), "out\nout");
    assert_eq!(env.docker(&["rm", &c]).ok().out(), c);
    let gone = env.docker(&["inspect", &c]);
    gone.failed();
    assert_contains(&gone.stderr, &format!("No such object: {c}"));
}

#[test]
#[ignore = "needs root: starts an engine"]
fn ps_filters_by_status() {
    let env = Env::new();
    let done = env.name("ps-exited");
    env.docker(&[
        "run",
        "--name",
        &done,
        "--network",
        "none",
        &env.image,
        "sh",
        "-c",
        "exit 2",
    ]);
    let running = env.sleeper("ps-running", &[]);
    let exited = env.docker(&[
        "ps",
        "-a",
        "--filter",
        "status=exited",
        "--format",
        "{{.Names}} {{.Status}}",
    ]);
    let text = exited.ok().out().to_owned();
    assert!(text.starts_with(&format!("{done} Exited (2) ")), "{text}");
    assert!(!text.contains(&running), "{text}");
    let ps = env.docker(&["ps", "--format", "{{.Names}}"]);
    assert_eq!(ps.ok().out(), running);
    let all = env.docker(&["ps", "-aq"]);
    assert_eq!(all.ok().out().lines().count(), 2);
    let by_name = env.docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("name={done}"),
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(by_name.ok().out(), done);
}

#[test]
#[ignore = "needs root: starts an engine"]
fn inspect_reports_running_and_exited_state() {
    let env = Env::new();
    let c = env.sleeper("inspect", &[]);
    let state = env.inspect(
        "{{.State.Status}} {{.State.Running}} {{.State.Paused}} {{.State.ExitCode}} {{.State.FinishedAt}}",
        &c,
    );
    assert_eq!(state, "running true false 0 0001-01-01T00:00:00Z");
    let pid: u32 = env.inspect("{{.State.Pid}}", &c).parse().unwrap();
    assert!(pid > 1);
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    let started = env.inspect("{{.State.StartedAt}}", &c);
    assert!(started.starts_with("20"), "{started}");
    assert_eq!(env.inspect("{{.Name}}", &c), format!("/{c}"));
    assert_eq!(env.inspect("{{.Config.Image}}", &c), env.image);
    assert_eq!(env.inspect("{{.Image}}", &c), env.layout.config_digest);
    assert_eq!(
        env.inspect("{{json .Config.Cmd}}", &c),
        r#"["sleep","1000"]"#
    );

    env.docker(&["kill", &c]).ok();
    assert_eventually!(env.inspect("{{.State.Status}}", &c) == "exited");
    let state = env.inspect(
        "{{.State.Running}} {{.State.ExitCode}} {{.State.Pid}} {{.State.OOMKilled}}",
        &c,
    );
    assert_eq!(state, "false 137 0 false");
    let finished = env.inspect("{{.State.FinishedAt}}", &c);
    assert!(
        finished.starts_with("20") && finished >= started,
        "{finished} < {started}"
    );
}

#[test]
#[ignore = "needs root: starts an engine"]
fn stop_sends_sigterm_first() {
    let env = Env::new();
    let c = env.name("stop-term");
    env.docker(&[
        "run",
        "-d",
        "--name",
        &c,
        "--network",
        "none",
        &env.image,
        "sh",
        "-c",
        "trap 'echo got-term; exit 7' TERM; echo ready; while true; do sleep 0.1; done",
    ])
    .ok();
    assert_eventually!(env.docker(&["logs", &c]).out() == "ready");
    env.docker(&["stop", "-t", "10", &c]).ok();
    assert_eq!(env.inspect("{{.State.ExitCode}}", &c), "7");
    assert_eq!(env.docker(&["logs", &c]).ok().out(), "ready\ngot-term");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn stop_kills_after_timeout_when_sigterm_is_ignored() {
    let env = Env::new();
    // `sleep` as PID 1 has no SIGTERM handler, so the kernel ignores SIGTERM for it.
    let c = env.sleeper("stop-kill", &[]);
    let out = env.docker(&["stop", "-t", "1", &c]);
    assert_eq!(out.ok().out(), c);
    assert_eq!(
        env.inspect("{{.State.Status}} {{.State.ExitCode}}", &c),
        "exited 137"
    );
}

#[test]
#[ignore = "needs root: starts an engine"]
fn stop_signal_from_run_flag_is_used() {
    let env = Env::new();
    let c = env.name("stop-signal");
    env.docker(&[
        "run",
        "-d",
        "--name",
        &c,
        "--network",
        "none",
        "--stop-signal",
        "USR1",
        &env.image,
        "sh",
        "-c",
        "trap 'exit 11' USR1; echo ready; while true; do sleep 0.1; done",
    ])
    .ok();
    assert_eventually!(env.docker(&["logs", &c]).out() == "ready");
    env.docker(&["stop", "-t", "10", &c]).ok();
    assert_eq!(env.inspect("{{.State.ExitCode}}", &c), "11");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn kill_with_signal_and_kill_of_stopped_container() {
    let env = Env::new();
    let c = env.name("kill-s");
    env.docker(&[
        "run",
        "-d",
        "--name",
        &c,
        "--network",
        "none",
        &env.image,
        "sh",
        "-c",
        "trap 'echo got-usr1; exit 9' USR1; echo ready; while true; do sleep 0.1; done",
    ])
    .ok();
    assert_eventually!(env.docker(&["logs", &c]).out() == "ready");
    assert_eq!(env.docker(&["kill", "-s", "USR1", &c]).ok().out(), c);
    assert_eventually!(env.inspect("{{.State.Status}}", &c) == "exited");
    assert_eq!(env.inspect("{{.State.ExitCode}}", &c), "9");
    assert_eq!(env.docker(&["logs", &c]).ok().out(), "ready\ngot-usr1");
    let again = env.docker(&["kill", &c]);
    again.failed();
    assert_contains(
        &again.stderr,
        "Error response from daemon: Cannot kill container: ",
    );
    assert_contains(&again.stderr, "is not running");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn restart_runs_the_command_again() {
    let env = Env::new();
    let c = env.name("restart");
    env.docker(&[
        "run",
        "-d",
        "--name",
        &c,
        "--network",
        "none",
        &env.image,
        "sh",
        "-c",
        "echo start; sleep 1000",
    ])
    .ok();
    assert_eventually!(env.docker(&["logs", &c]).out() == "start");
    let pid1 = env.inspect("{{.State.Pid}}", &c);
    let started1 = env.inspect("{{.State.StartedAt}}", &c);
    assert_eq!(env.docker(&["restart", "-t", "0", &c]).ok().out(), c);
    assert_eq!(env.inspect("{{.State.Status}}", &c), "running");
    assert_ne!(env.inspect("{{.State.Pid}}", &c), pid1);
    assert!(env.inspect("{{.State.StartedAt}}", &c) > started1);
    // A manual restart does not count as a policy restart.
    assert_eq!(env.inspect("{{.RestartCount}}", &c), "0");
    assert_eventually!(env.docker(&["logs", &c]).out() == "start\nstart");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn pause_freezes_and_unpause_resumes() {
    let env = Env::new();
    let c = env.name("pause");
    env.docker(&[
        "run",
        "-d",
        "--name",
        &c,
        "--network",
        "none",
        &env.image,
        "sh",
        "-c",
        "while true; do echo tick; sleep 0.05; done",
    ])
    .ok();
    let ticks = || env.docker(&["logs", &c]).ok().out().lines().count();
    assert_eventually!(ticks() > 2);
    env.docker(&["pause", &c]).ok();
    assert_eq!(
        env.inspect("{{.State.Status}} {{.State.Paused}} {{.State.Running}}", &c),
        "paused true true"
    );
    let ps = env.docker(&["ps", "--format", "{{.Status}}"]);
    assert!(ps.ok().out().ends_with("(Paused)"), "{}", ps.out());
    let frozen = ticks();
    // A frozen container produces nothing; give it time it would have used for ~10 ticks.
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(ticks(), frozen);
    let exec = env.docker(&["exec", &c, "true"]);
    exec.failed();
    assert_contains(
        &exec.stderr,
        &format!("Container {c} is paused, unpause the container before exec"),
    );
    env.docker(&["unpause", &c]).ok();
    assert_eq!(
        env.inspect("{{.State.Status}} {{.State.Paused}}", &c),
        "running false"
    );
    assert_eventually!(ticks() > frozen);
    let again = env.docker(&["unpause", &c]);
    again.failed();
    assert_contains(&again.stderr, "is not paused");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn rename_changes_the_name() {
    let env = Env::new();
    let c = env.sleeper("rename-from", &[]);
    let new = env.name("rename-to");
    env.docker(&["rename", &c, &new]).ok();
    assert_eq!(env.inspect("{{.Name}}", &new), format!("/{new}"));
    let old = env.docker(&["inspect", &c]);
    old.failed();
    assert_contains(&old.stderr, &format!("No such object: {c}"));
}

#[test]
#[ignore = "needs root: starts an engine"]
fn rm_of_running_container_requires_force() {
    let env = Env::new();
    let c = env.sleeper("rm-force", &[]);
    let pid = env.inspect("{{.State.Pid}}", &c);
    let out = env.docker(&["rm", &c]);
    out.failed();
    assert_contains(&out.stderr, "You cannot remove a running container ");
    assert_contains(
        &out.stderr,
        "Stop the container before attempting removal or force remove",
    );
    assert_eq!(env.docker(&["rm", "-f", &c]).ok().out(), c);
    let proc_dir = format!("/proc/{pid}");
    assert_eventually!(
        !std::path::Path::new(&proc_dir).exists(),
        "{proc_dir} still exists"
    );
    env.docker(&["inspect", &c]).failed();
    let gone = env.docker(&["rm", &c]);
    gone.failed();
    assert_contains(&gone.stderr, &format!("No such container: {c}"));
}

#[test]
#[ignore = "needs root: starts an engine"]
fn duplicate_name_is_a_conflict() {
    let env = Env::new();
    let c = env.name("conflict");
    let id = env.docker(&[
        "create",
        "--name",
        &c,
        "--network",
        "none",
        &env.image,
        "true",
    ]);
    let id = id.ok().out().to_owned();
    let out = env.docker(&[
        "create",
        "--name",
        &c,
        "--network",
        "none",
        &env.image,
        "true",
    ]);
    out.failed();
    assert_contains(
        &out.stderr,
        &format!(
            "Conflict. The container name \"/{c}\" is already in use by container \"{id}\". \
             You have to remove (or rename) that container to be able to reuse that name."
        ),
    );
}

#[test]
#[ignore = "needs root: starts an engine"]
fn logs_tail_timestamps_and_since() {
    let env = Env::new();
    let c = env.name("logs");
    env.docker(&[
        "run",
        "--name",
        &c,
        "--network",
        "none",
        &env.image,
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo line$i; sleep 0.1; done",
    ])
    .ok();
    assert_eq!(
        env.docker(&["logs", "--tail", "2", &c]).ok().out(),
        "line4\nline5"
    );
    assert_eq!(env.docker(&["logs", "--tail", "0", &c]).ok().out(), "");
    let stamped = env.docker(&["logs", "-t", &c]);
    let lines: Vec<(String, String)> = stamped
        .ok()
        .out()
        .lines()
        .map(|l| {
            let (ts, msg) = l.split_once(' ').unwrap();
            (ts.to_owned(), msg.to_owned())
        })
        .collect();
    assert_eq!(lines.len(), 5);
    for (i, (ts, msg)) in lines.iter().enumerate() {
        assert_eq!(msg, &format!("line{}", i + 1));
        // RFC 3339 with nanoseconds, UTC.
        assert!(
            ts.ends_with('Z') && ts.len() >= 20 && ts.contains('T'),
            "{ts}"
        );
    }
    // `--since` keeps entries at or after the given instant.
    let since = env.docker(&["logs", "--since", &lines[2].0, &c]);
    assert_eq!(since.ok().out(), "line3\nline4\nline5");
    let future = env.docker(&["logs", "--since", "2099-01-01T00:00:00Z", &c]);
    assert_eq!(future.ok().out(), "");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn logs_keep_stdout_and_stderr_apart() {
    let env = Env::new();
    let c = env.name("logs-streams");
    env.docker(&[
        "run",
        "--name",
        &c,
        "--network",
        "none",
        &env.image,
        "sh",
        "-c",
        "echo to-out; echo to-err >&2",
    ])
    .ok();
    let logs = env.docker(&["logs", &c]);
    assert_eq!(logs.ok().out(), "to-out");
    assert_eq!(logs.err(), "to-err");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn top_lists_container_processes() {
    let env = Env::new();
    let c = env.sleeper("top", &[]);
    let pid = env.inspect("{{.State.Pid}}", &c);
    let out = env.docker(&["top", &c]);
    let text = out.ok().out().to_owned();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 1, "{text}");
    let cols: Vec<&str> = rows[0].split_whitespace().collect();
    assert_eq!(cols[0], "root");
    assert_eq!(cols[1], pid);
    assert!(rows[0].ends_with("sleep 1000"), "{}", rows[0]);
    let custom = env.docker(&["top", &c, "-o", "pid,comm"]);
    assert_eq!(
        custom.ok().out().lines().collect::<Vec<_>>()[1]
            .split_whitespace()
            .collect::<Vec<_>>(),
        [pid.as_str(), "sleep"]
    );
    let stopped = env.name("top-stopped");
    env.docker(&[
        "create",
        "--name",
        &stopped,
        "--network",
        "none",
        &env.image,
        "true",
    ])
    .ok();
    let out = env.docker(&["top", &stopped]);
    out.failed();
    assert_contains(&out.stderr, "is not running");
}

/// Kills a background command this test started when the test ends.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "needs root: starts an engine"]
fn a_stuck_stop_and_a_client_that_never_reads_do_not_block_others() {
    use std::io::Write;
    use std::time::Duration;

    use tokio::time::Instant;

    let env = Env::new();
    // PID 1 without a SIGTERM handler ignores SIGTERM: `stop -t 30` hangs for 30 s.
    let stuck = env.sleeper("stuck-stop", &[]);
    let chatty = env.name("chatty");
    env.docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &chatty,
        &env.image,
        "sh",
        "-c",
        "while true; do echo 0123456789012345678901234567890123456789012345678901234567890123456789; done",
    ])
    .ok();
    // A raw attach whose client never reads what it is sent.
    let mut attach =
        std::os::unix::net::UnixStream::connect(env.subject.socket()).expect("connect");
    write!(
        attach,
        "POST /containers/{chatty}/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
    )
    .expect("send attach");
    let stop = ChildGuard(
        env.subject
            .command(corral_testkit::DOCKER_CLI)
            .args(["stop", "-t", "30", &stuck])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn docker stop"),
    );
    // Let the stop reach the engine and the attach fill its buffers.
    std::thread::sleep(Duration::from_secs(2));
    for round in 0..3 {
        let t = Instant::now();
        let ps = env.docker(&["ps", "--format", "{{.Names}}"]);
        let names = ps.ok().out().to_owned();
        assert!(names.contains(&stuck) && names.contains(&chatty), "{names}");
        env.docker(&["images", "-q"]).ok();
        env.docker(&["events", "--since", "0", "--until", "1s"])
            .ok();
        let took = t.elapsed();
        assert!(
            took < Duration::from_secs(10),
            "round {round}: ps, images and events took {took:?} while a stop and an attach hang"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    // The stop is still pending: it was the container, not the engine, that held it up.
    assert_eq!(env.inspect("{{.State.Status}}", &stuck), "running");
    drop(stop);
    drop(attach);
}

#[test]
#[ignore = "needs root: starts an engine"]
fn ps_name_filter_is_a_regular_expression() {
    let env = Env::new();
    let a = env.name("rx-alpha");
    let b = env.name("rx-beta");
    for n in [&a, &b] {
        env.docker(&[
            "create",
            "--network",
            "none",
            "--name",
            n,
            &env.image,
            "true",
        ])
        .ok();
    }
    let names = |filter: &str| {
        let mut v: Vec<String> = env
            .docker(&["ps", "-a", "--filter", filter, "--format", "{{.Names}}"])
            .ok()
            .out()
            .lines()
            .map(str::to_owned)
            .collect();
        v.sort();
        v
    };
    // Anchors, classes and alternation, with or without the leading `/`.
    assert_eq!(names(&format!("name=^{a}$")), std::slice::from_ref(&a));
    assert_eq!(names(&format!("name=^/{b}$")), std::slice::from_ref(&b));
    assert_eq!(names("name=rx-(alpha|beta)-[0-9]+-[0-9]+$"), {
        let mut v = vec![a.clone(), b.clone()];
        v.sort();
        v
    });
    // `.` is any character: a substring match would find nothing here.
    assert_eq!(names("name=rx-.lpha"), std::slice::from_ref(&a));
    assert!(names("name=^rx-alpha").is_empty());
}

#[test]
#[ignore = "needs root: starts an engine"]
fn container_prune_until_accepts_durations() {
    let env = Env::new();
    let c = env.name("prune-until");
    env.docker(&[
        "create",
        "--network",
        "none",
        "--name",
        &c,
        &env.image,
        "true",
    ])
    .ok();
    let id = env.inspect("{{.Id}}", &c);
    // Created just now: not older than 24 hours.
    let out = env.docker(&["container", "prune", "-f", "--filter", "until=24h"]);
    assert!(!out.ok().out().contains(&id), "{out}");
    assert_eq!(env.inspect("{{.Name}}", &c), format!("/{c}"));
    std::thread::sleep(std::time::Duration::from_secs(2));
    let out = env.docker(&["container", "prune", "-f", "--filter", "until=1s"]);
    assert_contains(out.ok().out(), &id);
    env.docker(&["inspect", &c]).failed();
}

/// A `--rm` container's writable layer is disposable: Corral mounts it volatile (no sync of
/// the upper layer, also not at unmount). A restart remounts it with what was written, and
/// stopping it still removes it. A container without `--rm` keeps the normal mount.
#[test]
#[ignore = "needs root: starts an engine"]
fn rm_container_layer_is_volatile_and_survives_a_restart() {
    let corral =
        corral_testkit::SubjectKind::from_env().ok() != Some(corral_testkit::SubjectKind::Docker);
    let env = Env::new();
    let rm = env.sleeper("volatile", &["--rm"]);
    let kept = env.sleeper("durable", &[]);
    let mount_options = |c: &str| {
        let merged = env.inspect("{{.GraphDriver.Data.MergedDir}}", c);
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .find(|l| l.split(' ').nth(4) == Some(merged.as_str()))
            .unwrap_or_else(|| panic!("{merged} is not mounted"))
            .to_owned()
    };
    if corral {
        assert_contains(&mount_options(&rm), "volatile");
        assert!(!mount_options(&kept).contains("volatile"));
    }
    env.docker(&["exec", &rm, "sh", "-c", "echo kept > /data"])
        .ok();
    env.docker(&["restart", "-t", "0", &rm]).ok();
    assert_eq!(env.inspect("{{.State.Status}}", &rm), "running");
    assert_eq!(
        env.docker(&["exec", &rm, "cat", "/data"]).ok().out(),
        "kept"
    );
    if corral {
        assert_contains(&mount_options(&rm), "volatile");
    }
    env.docker(&["stop", "-t", "0", &rm]).ok();
    assert_eventually!(
        !env.docker(&["ps", "-aq", "--no-trunc"]).out().contains(&rm)
            && env.docker(&["inspect", &rm]).code == Some(1)
    );
}

/// A `--rm` container whose process ends while the daemon is down (killed with SIGKILL) is
/// removed when the daemon comes back, as dockerd's restore does. This is the path a crash
/// between a `--rm` exit and its deletion relies on: Corral does not store that exit, so the
/// stored record still reads running, as here.
#[test]
#[ignore = "needs root: starts an engine"]
fn rm_container_that_ended_while_the_daemon_was_down_is_removed_on_restart() {
    if corral_testkit::SubjectKind::from_env().ok() == Some(corral_testkit::SubjectKind::Docker) {
        return;
    }
    let mut env = Env::new();
    let rm = env.sleeper("rmaway", &["--rm"]);
    let pid = env.inspect("{{.State.Pid}}", &rm);
    let kill9 = |pid: &str| {
        let status = std::process::Command::new("kill")
            .args(["-9", pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -9 {pid}");
    };
    let daemon = env.subject.corral().expect("corral daemon").pid();
    kill9(&daemon.to_string());
    kill9(&pid);
    env.subject
        .corral()
        .expect("corral daemon")
        .kill9_and_restart()
        .expect("restart the daemon");
    assert_eventually!(
        !env.docker(&["ps", "-a", "--format", "{{.Names}}"])
            .out()
            .lines()
            .any(|n| n == rm)
            && env.docker(&["inspect", &rm]).code == Some(1)
    );
}

/// Processes as `(pid, ppid, command line)`.
fn processes() -> Vec<(u32, u32, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let (Ok(stat), Ok(cmdline)) = (
            std::fs::read_to_string(e.path().join("stat")),
            std::fs::read(e.path().join("cmdline")),
        ) else {
            continue;
        };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // A zombie is gone for this test's purposes.
        if fields.first() == Some(&"Z") {
            continue;
        }
        let ppid = fields.get(1).and_then(|p| p.parse().ok()).unwrap_or(0);
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        out.push((pid, ppid, cmdline.trim().to_owned()));
    }
    out
}

/// Corral forks shims from a pre-started launcher (the zygote, a child of the daemon) instead
/// of executing its binary per container; `ps` shows each shim as `corral shim --id ID …`. A
/// killed zygote only costs speed: the next start executes the binary, the one after starts a
/// new zygote, and the dead one is reaped.
#[test]
#[ignore = "needs root: starts an engine"]
fn shims_come_from_the_zygote_which_is_replaced_when_killed() {
    if corral_testkit::SubjectKind::from_env().ok() == Some(corral_testkit::SubjectKind::Docker) {
        return;
    }
    let mut env = Env::new();
    let (daemon, run_dir) = {
        let d = env.subject.corral().expect("a corral subject");
        (d.pid(), d.run_dir().display().to_string())
    };
    let marker = format!("shim-zygote --run-dir {run_dir}");
    let zygotes = || -> Vec<u32> {
        processes()
            .into_iter()
            .filter(|(_, ppid, cmd)| *ppid == daemon && cmd.contains(&marker))
            .map(|(pid, ..)| pid)
            .collect()
    };
    let first = zygotes();
    assert_eq!(first.len(), 1, "one zygote under the daemon: {first:?}");

    let c = env.sleeper("zygote", &[]);
    let id = env.inspect("{{.Id}}", &c);
    let shim = format!("corral shim --id {id} --bundle {run_dir}");
    assert!(
        processes().iter().any(|(_, _, cmd)| cmd.starts_with(&shim)),
        "no process shows as `{shim}`"
    );

    let status = std::process::Command::new("kill")
        .args(["-9", &first[0].to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let after_kill = env.sleeper("zygote-gone", &[]);
    assert_eq!(env.inspect("{{.State.Status}}", &after_kill), "running");
    let again = env.sleeper("zygote-new", &[]);
    assert_eq!(env.inspect("{{.State.Status}}", &again), "running");
    let now = zygotes();
    assert_eq!(now.len(), 1, "a new zygote: {now:?}");
    assert_ne!(now[0], first[0]);
    assert!(
        !processes().iter().any(|(pid, ..)| *pid == first[0]),
        "the killed zygote was not reaped"
    );
}
