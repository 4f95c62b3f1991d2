//! docker-compose v1 (Debian `docker-compose` 1.29.2, with its own docker-py 5) against the
//! engine under test: a multi-service project from the local registry's busybox is brought
//! up, scaled, listed, its logs read, a command executed in it, and torn down with nothing
//! left behind. Checked against the reference dockerd first.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use corral_testkit::{run_with_timeout, BusyboxImage, Output};

use crate::common::{assert_contains, Env};

/// Where Debian installs docker-compose v1.
const COMPOSE_BIN: &str = "/usr/bin/docker-compose";

fn compose(env: &Env, dir: &Path, project: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(COMPOSE_BIN);
    for var in [
        "DOCKER_TLS_VERIFY",
        "DOCKER_CERT_PATH",
        "DOCKER_CONTEXT",
        "COMPOSE_FILE",
        "COMPOSE_PROJECT_NAME",
        "COMPOSE_API_VERSION",
    ] {
        cmd.env_remove(var);
    }
    cmd.current_dir(dir)
        .env("DOCKER_HOST", env.subject.docker_host())
        .env("DOCKER_CONFIG", env.subject.docker_config_dir())
        .env("COMPOSE_INTERACTIVE_NO_CLI", "1")
        .args(["--no-ansi", "-p", project])
        .args(args);
    run_with_timeout(cmd, None, Duration::from_secs(300)).expect("run docker-compose")
}

/// A two-service project: `web` and `worker` (scaled) and a named volume. With `isolated`
/// every service has `network_mode: none`; otherwise they share the project's default
/// network, which compose v1 joins with `network connect` and service-name aliases.
fn write_project(dir: &Path, image: &str, isolated: bool) {
    let net = if isolated {
        "\n    network_mode: none"
    } else {
        ""
    };
    let yaml = format!(
        r#"version: "2.4"
services:
  web:
    image: {image}
    command: ["sh", "-c", "echo web ready; echo shared > /data/from-web; exec sleep 1000"]
    volumes:
      - data:/data
    labels:
      corral.test: compose-web{net}
  worker:
    image: {image}
    command: ["sh", "-c", "echo worker $$(hostname) started; exec sleep 1000"]
    environment:
      ROLE: worker
    depends_on:
      - web{net}
volumes:
  data: {{}}
"#
    );
    std::fs::write(dir.join("docker-compose.yml"), yaml).expect("write compose file");
}

/// Names of the project's containers, by compose's labels.
fn project_containers(env: &Env, project: &str) -> Vec<String> {
    let out = env.docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=com.docker.compose.project={project}"),
        "--format",
        "{{.Names}}",
    ]);
    let mut names: Vec<String> = out.ok().out().lines().map(str::to_owned).collect();
    names.sort();
    names
}

/// Takes the project down, whatever happened.
struct Down<'a>(&'a Env, &'a Path, &'a str);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = compose(self.0, self.1, self.2, &["down", "-v", "--timeout", "1"]);
    }
}

#[test]
#[ignore = "needs root: starts a registry and the engine under test"]
fn compose_v1_up_scale_ps_logs_exec_down() {
    let env = Env::new();
    let image = env.pull(
        BusyboxImage::new().applet("nslookup").applet("ping"),
        "compose/busybox:1",
    );
    let dir = tempfile::tempdir().expect("project dir");
    write_project(dir.path(), &image, true);
    let project = format!("cv1{}", std::process::id());
    let _down = Down(&env, dir.path(), &project);

    compose(&env, dir.path(), &project, &["up", "-d"]).ok();
    assert_eq!(
        project_containers(&env, &project),
        [format!("{project}_web_1"), format!("{project}_worker_1")]
    );

    let scaled = compose(
        &env,
        dir.path(),
        &project,
        &["up", "-d", "--scale", "worker=3"],
    );
    scaled.ok();
    assert_eq!(
        project_containers(&env, &project),
        [
            format!("{project}_web_1"),
            format!("{project}_worker_1"),
            format!("{project}_worker_2"),
            format!("{project}_worker_3"),
        ]
    );

    let ps = compose(&env, dir.path(), &project, &["ps"]);
    let ps_out = ps.ok().out();
    for n in ["web_1", "worker_1", "worker_2", "worker_3"] {
        let line = ps_out
            .lines()
            .find(|l| l.starts_with(&format!("{project}_{n}")))
            .unwrap_or_else(|| panic!("{n} missing from compose ps:\n{ps_out}"));
        assert_contains(line, "Up");
    }
    let ps_q = compose(&env, dir.path(), &project, &["ps", "-q", "worker"]);
    assert_eq!(ps_q.ok().out().lines().count(), 3, "{ps_q}");

    // Logs of every worker, prefixed by container name; wait until the third has printed.
    let mut logs = String::new();
    assert!(
        corral_testkit::poll_until(Duration::from_secs(20), || {
            logs = compose(
                &env,
                dir.path(),
                &project,
                &["logs", "--no-color", "worker"],
            )
            .ok()
            .stdout
            .clone();
            logs.matches("started").count() == 3
        }),
        "worker logs:\n{logs}"
    );
    assert_contains(&logs, &format!("{project}_worker_2"));
    let web_logs = compose(&env, dir.path(), &project, &["logs", "--no-color", "web"]);
    assert_contains(&web_logs.ok().stdout, "web ready");

    // exec without a TTY: output and exit code come back.
    let ex = compose(
        &env,
        dir.path(),
        &project,
        &[
            "exec",
            "-T",
            "worker",
            "sh",
            "-c",
            "echo role=$ROLE; cat /etc/hostname",
        ],
    );
    assert_contains(ex.ok().out(), "role=worker");
    let ex = compose(
        &env,
        dir.path(),
        &project,
        &["exec", "-T", "--index", "2", "worker", "sh", "-c", "exit 3"],
    );
    assert_eq!(ex.code, Some(3), "{ex}");
    let shared = compose(
        &env,
        dir.path(),
        &project,
        &["exec", "-T", "web", "cat", "/data/from-web"],
    );
    assert_eq!(shared.ok().out(), "shared");

    // Scaling down removes the extra replicas.
    compose(
        &env,
        dir.path(),
        &project,
        &["up", "-d", "--scale", "worker=1"],
    )
    .ok();
    assert_eq!(project_containers(&env, &project).len(), 2);

    let down = compose(
        &env,
        dir.path(),
        &project,
        &["down", "-v", "--timeout", "1"],
    );
    down.ok();
    assert!(project_containers(&env, &project).is_empty());
    let vols = env.docker(&["volume", "ls", "-q"]);
    assert!(
        !vols.ok().out().contains(&format!("{project}_data")),
        "volume left: {vols}"
    );
}

#[test]
#[ignore = "needs root: starts a registry and the engine under test"]
fn compose_v1_project_network_resolves_service_names() {
    let env = Env::new();
    let image = env.pull(
        BusyboxImage::new().applet("nslookup").applet("ping"),
        "compose/busybox:1",
    );
    let dir = tempfile::tempdir().expect("project dir");
    write_project(dir.path(), &image, false);
    let project = format!("cv1n{}", std::process::id());
    let _down = Down(&env, dir.path(), &project);
    compose(
        &env,
        dir.path(),
        &project,
        &["up", "-d", "--scale", "worker=2"],
    )
    .ok();
    let ping = compose(
        &env,
        dir.path(),
        &project,
        &["exec", "-T", "worker", "ping", "-c", "1", "-W", "5", "web"],
    );
    assert!(ping.success(), "ping web from worker: {ping}");
    // Both replicas answer to the service name.
    let look = compose(
        &env,
        dir.path(),
        &project,
        &["exec", "-T", "web", "nslookup", "worker"],
    );
    assert!(look.success(), "nslookup worker: {look}");
    let answers = look
        .out()
        .lines()
        .skip_while(|l| !l.starts_with("Name:"))
        .filter(|l| l.starts_with("Address"))
        .count();
    assert_eq!(answers, 2, "two worker replicas behind one name: {look}");
    compose(
        &env,
        dir.path(),
        &project,
        &["down", "-v", "--timeout", "1"],
    )
    .ok();
    let nets = env.docker(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(
        !nets.ok().out().contains(&format!("{project}_default")),
        "network left: {nets}"
    );
}
