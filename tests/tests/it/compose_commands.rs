//! `corral compose` commands on an existing project (`create`, `rm`, `kill`, `pause`,
//! `unpause`, `port`, `images`, `ls`), published port ranges reached from the host,
//! a file on standard input, `build:` (Corral has no `docker build`), and an attached
//! `up` and `logs -f` in a real terminal (tmux), ended with Ctrl-C.
//!
//! Like compose.rs these run against the reference dockerd too
//! (`CORRAL_TEST_SUBJECT=docker`): `corral compose` is a client of the Docker API.

use std::time::Duration;

use corral_testkit::{corral_bin, http_get_tcp, poll_until, run_with_timeout, BusyboxImage};

use crate::common::{assert_contains, Env};
use crate::compose::{compose, project_objects, Down, ProjectDir};
use crate::interactive::Tmux;

/// Two consecutive free TCP ports on the host.
fn free_port_pair() -> u16 {
    for _ in 0..50 {
        let a = std::net::TcpListener::bind("0.0.0.0:0").expect("bind");
        let port = a.local_addr().expect("addr").port();
        if port < u16::MAX && std::net::TcpListener::bind(("0.0.0.0", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no two consecutive free ports");
}

fn state(env: &Env, container: &str) -> String {
    env.inspect("{{.State.Status}}", container)
}

/// `create` makes containers without starting them; `port` names the host side of a
/// published range, which the host reaches; `pause`/`unpause`, `images`, `ls`, `kill`
/// act on the project's containers; `rm` removes stopped ones only unless `-s`.
#[test]
#[ignore = "needs root: starts an engine"]
fn compose_create_port_range_pause_kill_rm_images_ls() {
    let env = Env::new();
    let image = env.pull(BusyboxImage::new().applet("httpd"), "compose-httpd:latest");
    let low = free_port_pair();
    let text = format!(
        r#"
services:
  web:
    image: {image}
    command: ["sh", "-c", "mkdir -p /a /b && echo eighty > /a/index.html && echo eighty-one > /b/index.html && httpd -p 81 -h /b && exec httpd -f -p 80 -h /a"]
    init: true
    ports: ["{low}-{high}:80-81"]
  worker:
    image: {image}
    command: ["sleep", "1000"]
    init: true
"#,
        high = low + 1
    );
    let p = ProjectDir::new(&text);
    let _down = Down { env: &env, p: &p };
    let web = format!("{}-web-1", p.name);
    let worker = format!("{}-worker-1", p.name);

    let create = compose(&env, &p, &["create"], &[]);
    assert_eq!(create.code, Some(0), "{create}");
    assert_eq!(state(&env, &web), "created");
    assert_eq!(state(&env, &worker), "created");
    let start = compose(&env, &p, &["start"], &[]);
    assert_eq!(start.code, Some(0), "{start}");
    assert_eq!(state(&env, &web), "running");

    // The range is published port by port; `port` prints the host side.
    for (private, public, body) in [("80", low, "eighty\n"), ("81", low + 1, "eighty-one\n")] {
        let out = compose(&env, &p, &["port", "web", private], &[]);
        assert_eq!(out.code, Some(0), "{out}");
        assert_eq!(out.stdout, format!("0.0.0.0:{public}\n"));
        let addr = format!("127.0.0.1:{public}");
        let mut got = None;
        let ok = poll_until(Duration::from_secs(20), || {
            got = http_get_tcp(&addr, "/index.html").ok();
            got.as_ref()
                .is_some_and(|(status, b)| *status == 200 && b == body)
        });
        assert!(ok, "GET {addr}: {got:?}");
    }
    let none = compose(&env, &p, &["port", "worker", "80"], &[]);
    assert_eq!(none.code, Some(1), "{none}");

    let pause = compose(&env, &p, &["pause", "worker"], &[]);
    assert_eq!(pause.code, Some(0), "{pause}");
    assert_contains(&pause.stderr, &format!("{worker}  Paused"));
    assert_eq!(state(&env, &worker), "paused");
    let unpause = compose(&env, &p, &["unpause"], &[]);
    assert_eq!(unpause.code, Some(0), "{unpause}");
    assert_eq!(state(&env, &worker), "running");

    let images = compose(&env, &p, &["images"], &[]);
    assert_eq!(images.code, Some(0), "{images}");
    let (repo, _) = image.rsplit_once(':').expect("tagged reference");
    for c in [&web, &worker] {
        let line = images
            .stdout
            .lines()
            .find(|l| l.starts_with(c.as_str()))
            .unwrap_or_else(|| panic!("{c} not in {images}"));
        assert_contains(line, repo);
        assert_contains(line, "latest");
    }

    let ls = compose(&env, &p, &["ls"], &[]);
    assert_eq!(ls.code, Some(0), "{ls}");
    let row = ls
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("{} ", p.name)))
        .unwrap_or_else(|| panic!("{} not in {ls}", p.name));
    assert_contains(row, "running(2)");
    assert_contains(row, "compose.yaml");

    let kill = compose(&env, &p, &["kill", "worker"], &[]);
    assert_eq!(kill.code, Some(0), "{kill}");
    assert_contains(&kill.stderr, &format!("{worker}  Killed"));
    let exited = poll_until(Duration::from_secs(20), || state(&env, &worker) == "exited");
    assert!(exited, "worker is {}", state(&env, &worker));
    assert_eq!(env.inspect("{{.State.ExitCode}}", &worker), "137");
    let ls = compose(&env, &p, &["ls", "-a"], &[]);
    assert_contains(&ls.stdout, "exited(1), running(1)");

    // rm removes the stopped container only; -s stops the others first.
    let rm = compose(&env, &p, &["rm", "-f"], &[]);
    assert_eq!(rm.code, Some(0), "{rm}");
    let left = project_objects(&env, "container", &p.name, "{{.Names}}");
    assert_eq!(left, vec![web.clone()]);
    let rm = compose(&env, &p, &["rm", "-f", "-s", "-v"], &[]);
    assert_eq!(rm.code, Some(0), "{rm}");
    assert!(project_objects(&env, "container", &p.name, "{{.Names}}").is_empty());
    let nothing = compose(&env, &p, &["rm", "-f"], &[]);
    assert_eq!(nothing.code, Some(0), "{nothing}");
    assert_contains(&nothing.stderr, "No stopped containers");
}

/// A service with `build:` and no `image:` cannot come up (Corral has no `docker
/// build`): a clear error naming the service and nothing created. With an `image:`
/// too, that image is used, with a warning.
#[test]
#[ignore = "needs root: starts an engine"]
fn compose_build_is_refused_without_image_and_warned_with_one() {
    let env = Env::new();
    let only_build = "services:\n  db:\n    image: ${IMAGE}\n    command: [sleep, '1000']\n    init: true\n  app:\n    build: .\n    command: [sleep, '1000']\n    networks: [front]\nnetworks:\n  front:\nvolumes:\n  data:\n";
    let p = ProjectDir::new(only_build);
    let _down = Down { env: &env, p: &p };
    let up = compose(&env, &p, &["up", "-d"], &[]);
    assert_eq!(up.code, Some(1), "{up}");
    assert_contains(
        &up.stderr,
        "service \"app\" has a build section and no image: `corral compose` does not build images yet",
    );
    assert!(project_objects(&env, "container", &p.name, "{{.Names}}").is_empty());
    assert!(project_objects(&env, "network", &p.name, "{{.Name}}").is_empty());
    let run = compose(&env, &p, &["run", "--rm", "-T", "app", "true"], &[]);
    assert_eq!(run.code, Some(1), "{run}");
    assert_contains(
        &run.stderr,
        "service \"app\" has a build section and no image",
    );
    // The services without build still come up on their own.
    let db = compose(&env, &p, &["up", "-d", "db"], &[]);
    assert_eq!(db.code, Some(0), "{db}");

    std::fs::write(
        p.path().join("compose.yaml"),
        "services:\n  app:\n    build: .\n    image: ${IMAGE}\n    command: [sleep, '1000']\n    init: true\n",
    )
    .expect("rewrite");
    let up = compose(&env, &p, &["up", "-d", "--remove-orphans"], &[]);
    assert_eq!(up.code, Some(0), "{up}");
    assert_contains(
        &up.stderr,
        "service \"app\" has a build section, but `corral compose` does not build images yet: using image",
    );
    let app = format!("{}-app-1", p.name);
    assert_eq!(state(&env, &app), "running");
}

/// `-f -` reads the file from standard input; the project directory is the current one.
#[test]
fn compose_file_from_stdin() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(".env"), "TAG=from-dotenv\n").expect("write .env");
    let mut cmd = std::process::Command::new(corral_bin().expect("corral binary"));
    cmd.current_dir(dir.path())
        .env_remove("COMPOSE_FILE")
        .env_remove("COMPOSE_PROJECT_NAME")
        .env_remove("COMPOSE_PROFILES")
        .env_remove("TAG")
        .args(["compose", "-f", "-", "-p", "stdin", "config"]);
    let text = b"services:\n  b:\n    image: busybox:${TAG}\n    depends_on: [a]\n  a:\n    image: busybox\n";
    let out = run_with_timeout(cmd, Some(text), Duration::from_secs(60)).expect("corral runs");
    assert_eq!(out.code, Some(0), "{out}");
    assert_contains(&out.stdout, "image: busybox:from-dotenv");
    assert_contains(&out.stdout, "name: stdin");

    let mut cmd = std::process::Command::new(corral_bin().expect("corral binary"));
    cmd.current_dir(dir.path())
        .args(["compose", "-f", "-", "-p", "stdin", "config"]);
    let out = run_with_timeout(
        cmd,
        Some(b"services:\n  a:\n    imag: x\n"),
        Duration::from_secs(60),
    )
    .expect("corral runs");
    assert_eq!(out.code, Some(1), "{out}");
    assert_contains(&out.stderr, "imag");
}

/// Starts `corral compose -p NAME ARGS` for project `p` in a fresh tmux window; the
/// shell around it (which outlives a Ctrl-C: its trap handler is reset for the
/// client) prints `EXIT=<code>` when it ends.
fn compose_in_tmux(env: &Env, p: &ProjectDir, args: &str) -> Tmux {
    let tmux = Tmux::new();
    let script = format!(
        "trap : INT; cd {dir} && IMAGE={image} {bin} -H {host} compose -p {name} {args}; echo EXIT=$?; sleep 600",
        dir = p.path().display(),
        image = env.image,
        bin = corral_bin().expect("corral binary").display(),
        host = env.subject.docker_host(),
        name = p.name,
    );
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "160",
        "-y",
        "40",
        "sh",
        "-c",
        &script,
    ]);
    tmux.run(&["set-option", "-t", "t", "status", "off"]);
    tmux.run(&["set-option", "-t", "t", "remain-on-exit", "on"]);
    tmux
}

/// The highest `tick N` on the screen.
fn last_tick(screen: &str) -> u32 {
    screen
        .lines()
        .filter_map(|l| {
            l.rsplit_once("tick ")
                .and_then(|(_, n)| n.trim().parse().ok())
        })
        .max()
        .unwrap_or(0)
}

/// An attached `up` in a terminal streams the prefixed output until Ctrl-C, which
/// stops (and keeps) the containers; `logs -f` follows new output until Ctrl-C.
#[test]
#[ignore = "needs root: starts an engine"]
fn compose_attached_up_and_logs_follow_end_with_ctrl_c() {
    let env = Env::new();
    let text = "services:\n  ticker:\n    image: ${IMAGE}\n    init: true\n    command: [sh, -c, 'i=0; while true; do i=$$((i+1)); echo tick $$i; sleep 1; done']\n";
    let p = ProjectDir::new(text);
    let _down = Down { env: &env, p: &p };
    let ticker = format!("{}-ticker-1", p.name);

    let tmux = compose_in_tmux(&env, &p, "up");
    tmux.wait_for(&format!("Attaching to {ticker}"));
    tmux.wait_for(&format!("{ticker} | tick 2"));
    tmux.send(&["C-c"]);
    tmux.wait_for("Gracefully stopping");
    let screen = tmux.wait_for("EXIT=");
    assert_contains(&screen, &format!("{ticker}  Stopped"));
    let stopped = poll_until(Duration::from_secs(20), || state(&env, &ticker) == "exited");
    assert!(stopped, "{ticker} is {}", state(&env, &ticker));
    drop(tmux);

    let start = compose(&env, &p, &["start"], &[]);
    assert_eq!(start.code, Some(0), "{start}");
    let tmux = compose_in_tmux(&env, &p, "logs -f --tail 1");
    let first = last_tick(&tmux.wait_for("| tick"));
    // New lines keep coming while it follows.
    let mut screen = String::new();
    let grew = poll_until(Duration::from_secs(20), || {
        screen = tmux.screen();
        last_tick(&screen) >= first + 2
    });
    assert!(grew, "logs -f did not follow:\n{screen}");
    tmux.send(&["C-c"]);
    tmux.wait_for("EXIT=");
    // Ctrl-C ends the client only: the container keeps running.
    assert_eq!(state(&env, &ticker), "running");
    drop(tmux);

    // A second Ctrl-C kills a container that ignores SIGTERM (sh as PID 1) instead
    // of waiting out its grace period.
    let stubborn = "services:\n  stubborn:\n    image: ${IMAGE}\n    stop_grace_period: 60s\n    command: [sh, -c, 'echo up; while true; do sleep 1; done']\n";
    std::fs::write(p.path().join("compose.yaml"), stubborn).expect("rewrite");
    let name = format!("{}-stubborn-1", p.name);
    let tmux = compose_in_tmux(&env, &p, "up --remove-orphans");
    tmux.wait_for(&format!("{name} | up"));
    tmux.send(&["C-c"]);
    tmux.wait_for("Gracefully stopping");
    std::thread::sleep(Duration::from_millis(500));
    tmux.send(&["C-c"]);
    let screen = tmux.wait_for("EXIT=");
    assert_contains(&screen, &format!("{name}  Killed"));
    let killed = poll_until(Duration::from_secs(20), || state(&env, &name) == "exited");
    assert!(killed, "{name} is {}", state(&env, &name));
}

/// `cp` copies to and from a service's container; `wait` blocks until a service's
/// container stops and prints its exit code.
#[test]
#[ignore = "needs root: starts an engine"]
fn compose_cp_and_wait() {
    let env = Env::new();
    let text = "services:\n  app:\n    image: ${IMAGE}\n    command: [sleep, '1000']\n    init: true\n  job:\n    image: ${IMAGE}\n    command: [sh, -c, 'sleep 2; exit 3']\n";
    let p = ProjectDir::new(text);
    let _down = Down { env: &env, p: &p };
    let up = compose(&env, &p, &["up", "-d"], &[]);
    assert_eq!(up.code, Some(0), "{up}");

    std::fs::write(p.path().join("hello.txt"), "hello from the host\n").expect("write");
    let to = compose(&env, &p, &["cp", "hello.txt", "app:/tmp/hello.txt"], &[]);
    assert_eq!(to.code, Some(0), "{to}");
    let cat = compose(
        &env,
        &p,
        &["exec", "-T", "app", "cat", "/tmp/hello.txt"],
        &[],
    );
    assert_eq!(cat.stdout, "hello from the host\n", "{cat}");
    // (A file of the container's own filesystem: Corral's archive endpoint does not
    // see bind-mounted files such as /etc/hostname yet.)
    let mark = compose(
        &env,
        &p,
        &["exec", "-T", "app", "sh", "-c", "hostname > /tmp/name"],
        &[],
    );
    assert_eq!(mark.code, Some(0), "{mark}");
    let from = compose(&env, &p, &["cp", "app:/tmp/name", "./hostname.out"], &[]);
    assert_eq!(from.code, Some(0), "{from}");
    let hostname = env.inspect("{{.Config.Hostname}}", &format!("{}-app-1", p.name));
    let got = std::fs::read_to_string(p.path().join("hostname.out")).expect("copied file");
    assert_eq!(got.trim(), hostname);
    let bad = compose(&env, &p, &["cp", "hello.txt", "nosuch:/tmp"], &[]);
    assert_eq!(bad.code, Some(1), "{bad}");
    assert_contains(&bad.stderr, "no such service: nosuch");

    let wait = compose(&env, &p, &["wait", "job"], &[]);
    assert_eq!(wait.code, Some(0), "{wait}");
    assert_eq!(wait.stdout, "3\n");
}
