//! `corral compose` against the engine under test: a web + worker + db stand-in
//! project built from the test registry's busybox comes up, shares a volume, scales,
//! runs one-off jobs, is reconciled (unchanged containers kept, changed ones
//! recreated) and goes down leaving nothing behind; a broken file creates nothing.
//!
//! `corral compose` is a client of the Docker API, so these run against the reference
//! dockerd too (`CORRAL_TEST_SUBJECT=docker`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use corral_testkit::{corral_bin, run_with_timeout, BusyboxImage, Output};

use crate::common::{assert_contains, Env};

/// A project directory with a compose file; removed at the end of the test.
pub(crate) struct ProjectDir {
    dir: tempfile::TempDir,
    pub(crate) name: String,
}

impl ProjectDir {
    pub(crate) fn new(compose: &str) -> ProjectDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("compose.yaml"), compose).expect("write compose.yaml");
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("e2e{}x{n}", std::process::id());
        ProjectDir { dir, name }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// `corral compose -p NAME ARGS` run in the project directory, with extra variables.
pub(crate) fn compose(env: &Env, p: &ProjectDir, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut cmd = env.subject.command(
        corral_bin()
            .expect("corral binary")
            .to_str()
            .expect("utf-8 path"),
    );
    cmd.current_dir(p.path())
        .env("IMAGE", &env.image)
        .env_remove("COMPOSE_FILE")
        .env_remove("COMPOSE_PROJECT_NAME")
        .env_remove("COMPOSE_PROFILES")
        .arg("-H")
        .arg(env.subject.docker_host())
        .args(["compose", "-p", &p.name])
        .args(args);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    run_with_timeout(cmd, None, Duration::from_secs(180)).expect("corral compose runs")
}

/// Lines of `docker OBJECT ls` filtered by the project label.
pub(crate) fn project_objects(env: &Env, object: &str, project: &str, format: &str) -> Vec<String> {
    let filter = format!("label=com.docker.compose.project={project}");
    let mut args = vec![object, "ls", "--filter", &filter, "--format", format];
    if object == "container" {
        args.insert(2, "-a");
    }
    let out = env.docker(&args);
    out.ok();
    let mut v: Vec<String> = out.stdout.lines().map(str::to_owned).collect();
    v.sort();
    v
}

/// Everything of the project is removed even when the test fails half-way.
pub(crate) struct Down<'a> {
    pub(crate) env: &'a Env,
    pub(crate) p: &'a ProjectDir,
}

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = compose(
            self.env,
            self.p,
            &["down", "-v", "--remove-orphans", "-t", "1"],
            &[],
        );
    }
}

const APP: &str = r#"
# A web + worker + db stand-in; the image comes from the test registry via $IMAGE.
x-base: &base
  image: ${IMAGE:?IMAGE must name the test image}
  stop_grace_period: 1s
  init: true
services:
  db:
    <<: *base
    command: ["sh", "-c", "echo ready > /data/ready && exec sleep 1000"]
    volumes: [shared:/data]
  worker:
    <<: *base
    command: sh -c 'while true; do echo tick >> /data/ticks; echo "worker $$HOSTNAME tick"; sleep 1; done'
    volumes: [shared:/data]
    depends_on: [db]
  web:
    <<: *base
    command: ["sh", "-c", "echo web says $$GREETING; exec sleep 1000"]
    environment:
      GREETING: ${GREETING:-hello}
    volumes:
      - type: volume
        source: shared
        target: /srv
        read_only: true
    depends_on:
      worker:
        condition: service_started
      db:
        condition: service_started
    secrets: [token]
    configs:
      - source: settings
        target: /etc/app.conf
volumes:
  shared:
    labels: {purpose: e2e}
secrets:
  token:
    file: ./token.txt
configs:
  settings:
    file: ./settings.conf
"#;

fn ids(env: &Env, project: &str) -> Vec<String> {
    project_objects(env, "container", project, "{{.Names}} {{.ID}}")
}

#[test]
#[ignore = "needs root: starts an engine"]
fn compose_project_comes_up_scales_runs_jobs_and_goes_down() {
    let env = Env::new();
    let p = ProjectDir::new(APP);
    std::fs::write(p.path().join("token.txt"), "s3cret\n").expect("write token");
    std::fs::write(p.path().join("settings.conf"), "level=1\n").expect("write config");
    let _down = Down { env: &env, p: &p };
    let name = p.name.clone();

    let up = compose(&env, &p, &["up", "-d"], &[]);
    assert_eq!(up.code, Some(0), "{up}");
    assert_contains(&up.stderr, &format!("{name}-web-1  Started"));
    let names = project_objects(&env, "container", &name, "{{.Names}} {{.State}}");
    assert_eq!(
        names,
        vec![
            format!("{name}-db-1 running"),
            format!("{name}-web-1 running"),
            format!("{name}-worker-1 running"),
        ]
    );
    assert_eq!(
        project_objects(&env, "network", &name, "{{.Name}}"),
        vec![format!("{name}_default")]
    );
    assert_eq!(
        project_objects(&env, "volume", &name, "{{.Name}}"),
        vec![format!("{name}_shared")]
    );

    // Compose's labels, on containers, networks and volumes.
    let labels = env.inspect("{{json .Config.Labels}}", &format!("{name}-worker-1"));
    let labels: serde_json::Value = serde_json::from_str(&labels).expect("labels json");
    assert_eq!(labels["com.docker.compose.project"], name.as_str());
    assert_eq!(labels["com.docker.compose.service"], "worker");
    assert_eq!(labels["com.docker.compose.container-number"], "1");
    assert_eq!(labels["com.docker.compose.oneoff"], "False");
    assert_eq!(
        labels["com.docker.compose.depends_on"],
        "db:service_started:false"
    );
    let dir = std::fs::canonicalize(p.path()).expect("canonical dir");
    assert_eq!(
        labels["com.docker.compose.project.working_dir"],
        dir.to_str().expect("utf-8")
    );
    assert_eq!(
        labels["com.docker.compose.project.config_files"],
        dir.join("compose.yaml").to_str().expect("utf-8")
    );
    assert_eq!(
        labels["com.docker.compose.config-hash"]
            .as_str()
            .map(str::len),
        Some(64)
    );
    assert!(labels["com.docker.compose.version"].is_string());
    let vlabels = env.inspect("{{json .Labels}}", &format!("{name}_shared"));
    assert_contains(&vlabels, "\"com.docker.compose.volume\":\"shared\"");
    assert_contains(&vlabels, "\"purpose\":\"e2e\"");
    let nlabels = env.inspect("{{json .Labels}}", &format!("{name}_default"));
    assert_contains(&nlabels, "\"com.docker.compose.network\":\"default\"");

    // ps and ps -q agree with the engine.
    let ps = compose(&env, &p, &["ps"], &[]);
    assert_eq!(ps.code, Some(0), "{ps}");
    assert_contains(&ps.stdout, "SERVICE");
    assert_contains(&ps.stdout, &format!("{name}-worker-1"));
    let q = compose(&env, &p, &["ps", "-q"], &[]);
    assert_eq!(q.stdout.lines().count(), 3, "{q}");

    // The shared volume: db wrote it, the one-off job and exec read it.
    let job = compose(
        &env,
        &p,
        &["run", "--rm", "-T", "db", "cat", "/data/ready"],
        &[],
    );
    assert_eq!(job.code, Some(0), "{job}");
    assert_eq!(job.stdout, "ready\n");
    let job = compose(
        &env,
        &p,
        &[
            "run",
            "--rm",
            "-T",
            "-e",
            "X=42",
            "--no-deps",
            "web",
            "sh",
            "-c",
            "echo $X; cat /srv/ready; exit 3",
        ],
        &[],
    );
    assert_eq!(job.code, Some(3), "{job}");
    assert_eq!(job.stdout, "42\nready\n");
    let left = project_objects(&env, "container", &name, "{{.Names}}");
    assert_eq!(
        left.len(),
        3,
        "one-off containers removed by --rm: {left:?}"
    );
    let ex = compose(&env, &p, &["exec", "-T", "web", "cat", "/srv/ready"], &[]);
    assert_eq!(ex.code, Some(0), "{ex}");
    assert_eq!(ex.stdout, "ready\n");
    let ex = compose(&env, &p, &["exec", "-T", "web", "sh", "-c", "exit 7"], &[]);
    assert_eq!(ex.code, Some(7), "{ex}");

    // File-based secrets and configs are mounted read-only.
    let ex = compose(
        &env,
        &p,
        &[
            "exec",
            "-T",
            "web",
            "sh",
            "-c",
            "cat /run/secrets/token /etc/app.conf; echo x > /run/secrets/token",
        ],
        &[],
    );
    assert_eq!(ex.stdout, "s3cret\nlevel=1\n", "{ex}");
    assert_ne!(ex.code, Some(0), "secret is read-only: {ex}");

    let top = compose(&env, &p, &["top", "web"], &[]);
    assert_eq!(top.code, Some(0), "{top}");
    assert_contains(&top.stdout, &format!("{name}-web-1"));
    assert_contains(&top.stdout, "sleep 1000");

    // Logs, prefixed per container.
    let logs = compose(&env, &p, &["logs", "web"], &[]);
    assert_eq!(logs.code, Some(0), "{logs}");
    assert_contains(&logs.stdout, &format!("{name}-web-1 | web says hello"));

    // Reconcile: an unchanged project keeps its containers; a changed service is
    // recreated and nothing else.
    let before = ids(&env, &name);
    let again = compose(&env, &p, &["up", "-d"], &[]);
    assert_eq!(again.code, Some(0), "{again}");
    assert_eq!(ids(&env, &name), before);
    let changed = compose(&env, &p, &["up", "-d"], &[("GREETING", "bonjour")]);
    assert_eq!(changed.code, Some(0), "{changed}");
    assert_contains(&changed.stderr, &format!("{name}-web-1  Recreated"));
    let after = ids(&env, &name);
    assert_eq!(after[0], before[0], "db kept");
    assert_ne!(after[1], before[1], "web recreated");
    assert_eq!(after[2], before[2], "worker kept");
    let logs = compose(
        &env,
        &p,
        &["logs", "--no-log-prefix", "web"],
        &[("GREETING", "bonjour")],
    );
    assert_contains(&logs.stdout, "web says bonjour");

    // Scale up and down.
    let up3 = compose(
        &env,
        &p,
        &["up", "-d", "--scale", "worker=3"],
        &[("GREETING", "bonjour")],
    );
    assert_eq!(up3.code, Some(0), "{up3}");
    let workers = |env: &Env| {
        project_objects(env, "container", &name, "{{.Names}}")
            .into_iter()
            .filter(|n| n.contains("-worker-"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        workers(&env),
        vec![
            format!("{name}-worker-1"),
            format!("{name}-worker-2"),
            format!("{name}-worker-3"),
        ]
    );
    let down1 = compose(&env, &p, &["scale", "worker=1"], &[("GREETING", "bonjour")]);
    assert_eq!(down1.code, Some(0), "{down1}");
    assert_eq!(workers(&env), vec![format!("{name}-worker-1")]);

    // stop / start / restart.
    let stop = compose(&env, &p, &["stop", "-t", "1", "worker"], &[]);
    assert_eq!(stop.code, Some(0), "{stop}");
    let all = compose(&env, &p, &["ps", "-a", "-q"], &[]);
    let running = compose(&env, &p, &["ps", "-q"], &[]);
    assert_eq!(all.stdout.lines().count(), 3, "{all}");
    assert_eq!(running.stdout.lines().count(), 2, "{running}");
    // --status (implies -a), --filter status=, --format json and templates.
    let exited = compose(
        &env,
        &p,
        &[
            "ps",
            "--status",
            "exited",
            "--format",
            "{{.Name}} {{.Service}} {{.State}}",
        ],
        &[],
    );
    assert_eq!(exited.code, Some(0), "{exited}");
    assert_eq!(
        exited.stdout,
        format!("{name}-worker-1 worker exited\n"),
        "{exited}"
    );
    let running = compose(
        &env,
        &p,
        &["ps", "--filter", "status=running", "--format", "json"],
        &[],
    );
    assert_eq!(running.code, Some(0), "{running}");
    let rows: Vec<serde_json::Value> = running
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(rows.len(), 2, "{running}");
    for r in &rows {
        assert_eq!(r["State"], "running", "{r}");
        assert_eq!(r["Project"], name.as_str(), "{r}");
        assert!(
            r["Name"].as_str().is_some_and(|n| n.starts_with(&name)),
            "{r}"
        );
        assert!(
            r["Service"].is_string() && r["ID"].is_string() && r["Publishers"].is_array(),
            "{r}"
        );
    }
    let bad = compose(&env, &p, &["ps", "--status", "sleeping"], &[]);
    assert_eq!(bad.code, Some(1), "{bad}");
    assert_contains(&bad.stderr, "invalid status \"sleeping\"");
    let start = compose(&env, &p, &["start", "worker"], &[]);
    assert_eq!(start.code, Some(0), "{start}");
    let running = compose(&env, &p, &["ps", "-q"], &[]);
    assert_eq!(running.stdout.lines().count(), 3, "{running}");

    // Down without -v keeps the named volume; with -v it goes too.
    let down = compose(&env, &p, &["down", "-t", "1"], &[]);
    assert_eq!(down.code, Some(0), "{down}");
    assert!(project_objects(&env, "container", &name, "{{.Names}}").is_empty());
    assert!(project_objects(&env, "network", &name, "{{.Name}}").is_empty());
    assert_eq!(project_objects(&env, "volume", &name, "{{.Name}}").len(), 1);
    let down = compose(&env, &p, &["down", "-v", "-t", "1"], &[]);
    assert_eq!(down.code, Some(0), "{down}");
    assert!(project_objects(&env, "volume", &name, "{{.Name}}").is_empty());
}

#[test]
#[ignore = "needs root: starts an engine"]
fn compose_broken_file_exits_non_zero_and_creates_nothing() {
    let env = Env::new();
    let broken = r#"
services:
  web:
    image: ${IMAGE}
    depends_on: [db]
    networks: [front]
  db:
    image: ${IMAGE}
    depends_on: [web]
networks:
  front:
volumes:
  data:
"#;
    let p = ProjectDir::new(broken);
    let _down = Down { env: &env, p: &p };
    let up = compose(&env, &p, &["up", "-d"], &[]);
    assert_eq!(up.code, Some(1), "{up}");
    assert_contains(&up.stderr, "compose.yaml:");
    assert_contains(&up.stderr, "dependency cycle: db -> web -> db");
    for (object, format) in [
        ("container", "{{.Names}}"),
        ("network", "{{.Name}}"),
        ("volume", "{{.Name}}"),
    ] {
        assert!(
            project_objects(&env, object, &p.name, format).is_empty(),
            "{object} created"
        );
    }
    std::fs::write(
        p.path().join("compose.yaml"),
        "services:\n  web:\n    image: x\n    imgae: y\n",
    )
    .expect("write");
    let up = compose(&env, &p, &["up", "-d"], &[]);
    assert_eq!(up.code, Some(1), "{up}");
    assert_contains(
        &up.stderr,
        "compose.yaml:4:5: services.web.imgae: unknown key \"imgae\" (did you mean \"image\"?)",
    );
}

/// Needs the engine's network aliases, embedded DNS, `network connect` and health
/// checks (other branches): web reaches db by its alias on a second network, and
/// `up` waits for db to be healthy before it starts web.
#[test]
#[ignore = "needs root: starts an engine"]
fn compose_services_reach_each_other_by_alias_and_gate_on_health() {
    let env = Env::new();
    let image = env.pull(
        BusyboxImage::new().applet("httpd").applet("wget"),
        "compose-busybox:latest",
    );
    let text = format!(
        r#"
services:
  db:
    image: {image}
    command: ["sh", "-c", "mkdir -p /www && echo pong > /www/ping && touch /tmp/healthy && exec httpd -f -p 8080 -h /www"]
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/healthy"]
      interval: 1s
      retries: 30
    networks:
      back:
        aliases: [database]
  web:
    image: {image}
    command: ["sleep", "1000"]
    init: true
    depends_on:
      db:
        condition: service_healthy
    networks: [front, back]
networks:
  front:
  back:
"#
    );
    let p = ProjectDir::new(&text);
    let _down = Down { env: &env, p: &p };
    let up = compose(&env, &p, &["up", "-d"], &[]);
    assert_eq!(up.code, Some(0), "{up}");
    assert_contains(&up.stderr, &format!("{}-db-1  Healthy", p.name));
    for host in ["db", "database"] {
        let url = format!("http://{host}:8080/ping");
        let out = compose(&env, &p, &["exec", "-T", "web", "wget", "-qO-", &url], &[]);
        assert_eq!(out.code, Some(0), "{out}");
        assert_eq!(out.stdout, "pong\n");
    }
    let nets = env.inspect(
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
        &format!("{}-web-1", p.name),
    );
    assert_eq!(nets, format!("{0}_back {0}_front", p.name));
}

/// `config` needs no engine: the merge case of the corpus resolves to its expected
/// output through the binary too.
#[test]
fn compose_config_prints_the_resolved_merge_case() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/compose/valid/merge");
    let dir = std::fs::canonicalize(dir).expect("corpus dir");
    let mut cmd = std::process::Command::new(corral_bin().expect("corral binary"));
    cmd.current_dir(&dir)
        .env_remove("COMPOSE_FILE")
        .env_remove("COMPOSE_PROJECT_NAME")
        .env_remove("COMPOSE_PROFILES")
        .args([
            "compose",
            "-f",
            "compose.yaml",
            "-f",
            "compose.prod.yaml",
            "-p",
            "merged",
            "config",
        ]);
    let out = run_with_timeout(cmd, None, Duration::from_secs(60)).expect("corral runs");
    assert_eq!(out.code, Some(0), "{out}");
    let expected = std::fs::read_to_string(dir.join("expected.yaml")).expect("expected.yaml");
    let got = out.stdout.replace(dir.to_str().expect("utf-8"), "$DIR");
    assert_eq!(got, expected);

    let mut cmd = std::process::Command::new(corral_bin().expect("corral binary"));
    cmd.current_dir(&dir)
        .args(["compose", "-f", "compose.yaml", "-p", "Bad Name", "config"]);
    let out = run_with_timeout(cmd, None, Duration::from_secs(60)).expect("corral runs");
    assert_eq!(out.code, Some(1), "{out}");
    assert_contains(&out.stderr, "invalid project name \"Bad Name\"");
}

/// docker-compose v1 (Debian 1.29.2) against the same engine is the oracle for the
/// names and labels of a project's networks and volumes, and for the label keys of
/// its containers (v1 names containers `p_svc_1`, v2 and Corral `p-svc-1`).
#[test]
#[ignore = "needs root: starts an engine"]
fn compose_resources_match_docker_compose_v1() {
    let env = Env::new();
    let text = "services:\n  app:\n    image: ${IMAGE}\n    command: [sleep, '1000']\n    init: true\n    volumes: [data:/data]\n    networks: [front]\nnetworks:\n  front:\nvolumes:\n  data:\n";
    let p = ProjectDir::new(text);
    let _down = Down { env: &env, p: &p };
    let snapshot = |env: &Env| {
        let c = project_objects(env, "container", &p.name, "{{.Names}}");
        assert_eq!(c.len(), 1, "{c:?}");
        let clabels: serde_json::Value =
            serde_json::from_str(&env.inspect("{{json .Config.Labels}}", &c[0])).expect("json");
        let mut keys: Vec<String> = clabels
            .as_object()
            .expect("labels")
            .keys()
            .filter(|k| *k != "com.docker.compose.project.environment_file")
            .cloned()
            .collect();
        keys.sort();
        // The values that say what the container is must agree too (the config
        // hash and version are each tool's own; config_files is compared by file
        // name: v1 writes the paths as given, compose v2 and Corral absolute ones).
        let stable: Vec<(String, String)> = [
            "com.docker.compose.project",
            "com.docker.compose.service",
            "com.docker.compose.container-number",
            "com.docker.compose.oneoff",
            "com.docker.compose.project.working_dir",
            "com.docker.compose.project.config_files",
        ]
        .iter()
        .map(|k| {
            let v = clabels[*k].as_str().unwrap_or_default();
            let v = match *k {
                "com.docker.compose.project.config_files" => {
                    v.rsplit('/').next().unwrap_or_default()
                }
                _ => v,
            };
            (k.to_string(), v.to_string())
        })
        .collect();
        let nets = project_objects(env, "network", &p.name, "{{.Name}}");
        let vols = project_objects(env, "volume", &p.name, "{{.Name}}");
        let net = format!("{}_front", p.name);
        let vol = format!("{}_data", p.name);
        let nl = env.inspect("{{json .Labels}}", &net);
        let vl = env.inspect("{{json .Labels}}", &vol);
        let strip_version = |s: String| -> serde_json::Value {
            let mut v: serde_json::Value = serde_json::from_str(&s).expect("json");
            v.as_object_mut()
                .expect("labels")
                .remove("com.docker.compose.version");
            v
        };
        (
            c[0].clone(),
            keys,
            stable,
            (nets, vols),
            strip_version(nl),
            strip_version(vl),
        )
    };

    let mut cmd = env.subject.command("docker-compose");
    cmd.current_dir(p.path())
        .env("IMAGE", &env.image)
        .args(["-p", &p.name, "up", "-d"]);
    let v1 = run_with_timeout(cmd, None, Duration::from_secs(180)).expect("docker-compose runs");
    assert_eq!(v1.code, Some(0), "{v1}");
    let (v1_name, v1_keys, v1_stable, v1_objects, v1_net, v1_vol) = snapshot(&env);
    assert_eq!(v1_name, format!("{}_app_1", p.name));
    let mut cmd = env.subject.command("docker-compose");
    cmd.current_dir(p.path())
        .env("IMAGE", &env.image)
        .args(["-p", &p.name, "down", "-v", "-t", "1"]);
    let v1 = run_with_timeout(cmd, None, Duration::from_secs(180)).expect("docker-compose runs");
    assert_eq!(v1.code, Some(0), "{v1}");

    let up = compose(&env, &p, &["up", "-d"], &[]);
    assert_eq!(up.code, Some(0), "{up}");
    let (name, keys, stable, objects, net, vol) = snapshot(&env);
    assert_eq!(name, format!("{}-app-1", p.name));
    assert_eq!(keys, v1_keys);
    assert_eq!(stable, v1_stable);
    assert_eq!(objects, v1_objects);
    assert_eq!(net, v1_net);
    assert_eq!(vol, v1_vol);
}

/// `up --abort-on-container-exit` stops every container when the first one exits
/// and ends with its exit code; `--exit-code-from` picks the service whose code `up`
/// returns; neither goes with `-d`, and an unknown service is refused before anything
/// is created.
#[test]
#[ignore = "needs root: starts an engine"]
fn compose_up_abort_on_container_exit_returns_the_exit_code() {
    let env = Env::new();
    let text = r#"
services:
  server:
    image: ${IMAGE}
    init: true
    command: ["sh", "-c", "echo serving; exec sleep 300"]
  check:
    image: ${IMAGE}
    command: ["sh", "-c", "sleep 2; echo checked; exit 3"]
"#;
    let p = ProjectDir::new(text);
    let _down = Down { env: &env, p: &p };
    let server = format!("{}-server-1", p.name);
    let check = format!("{}-check-1", p.name);

    let up = compose(
        &env,
        &p,
        &["up", "--abort-on-container-exit", "-t", "1"],
        &[],
    );
    assert_eq!(up.code, Some(3), "{up}");
    assert_contains(&up.stdout, &format!("{check}  | checked"));
    assert_contains(&up.stdout, &format!("{check} exited with code 3"));
    assert_contains(&up.stderr, "Aborting on container exit...");
    assert_contains(&up.stderr, &format!("{server}  Stopped"));
    assert_eq!(env.inspect("{{.State.Status}}", &server), "exited");

    // The server is stopped by the cascade (137 or 143); `up` returns check's code.
    let up = compose(
        &env,
        &p,
        &["up", "--exit-code-from", "check", "-t", "1"],
        &[],
    );
    assert_eq!(up.code, Some(3), "{up}");
    assert_eq!(env.inspect("{{.State.Status}}", &server), "exited");
    // ...or the server's, which the cascade stopped.
    let up = compose(
        &env,
        &p,
        &["up", "--exit-code-from", "server", "-t", "1"],
        &[],
    );
    let server_code: i32 = env
        .inspect("{{.State.ExitCode}}", &server)
        .parse()
        .expect("exit code");
    assert_ne!(server_code, 0);
    assert_eq!(up.code, Some(server_code), "{up}");

    let bad = compose(&env, &p, &["up", "--exit-code-from", "nosuch"], &[]);
    assert_eq!(bad.code, Some(1), "{bad}");
    assert_contains(&bad.stderr, "no such service: nosuch");
    let bad = compose(&env, &p, &["up", "-d", "--abort-on-container-exit"], &[]);
    assert_ne!(bad.code, Some(0), "{bad}");
    assert_contains(&bad.stderr, "--abort-on-container-exit");
}

/// Attached `up` streams the containers' output, prefixed, until they all exit;
/// `service_completed_successfully` orders a one-shot job before its dependent and
/// stops `up` when the job fails.
#[test]
#[ignore = "needs root: starts an engine"]
fn compose_up_attached_waits_for_completed_dependencies() {
    let env = Env::new();
    let text = r#"
services:
  migrate:
    image: ${IMAGE}
    command: ["sh", "-c", "sleep 1; echo migrated; exit ${MIGRATE_EXIT:-0}"]
  app:
    image: ${IMAGE}
    command: ["sh", "-c", "echo app after migrate"]
    depends_on:
      migrate:
        condition: service_completed_successfully
"#;
    let p = ProjectDir::new(text);
    let _down = Down { env: &env, p: &p };
    let up = compose(&env, &p, &["up"], &[]);
    assert_eq!(up.code, Some(0), "{up}");
    assert_contains(&up.stderr, &format!("{}-migrate-1  Exited", p.name));
    assert_contains(
        &up.stdout,
        &format!("{}-app-1     | app after migrate", p.name),
    );
    assert_contains(&up.stdout, &format!("{}-app-1 exited with code 0", p.name));

    let down = compose(&env, &p, &["down", "-t", "1"], &[]);
    assert_eq!(down.code, Some(0), "{down}");
    let up = compose(&env, &p, &["up", "-d"], &[("MIGRATE_EXIT", "3")]);
    assert_eq!(up.code, Some(1), "{up}");
    assert_contains(
        &up.stderr,
        "service \"migrate\" didn't complete successfully: exit 3",
    );
    let names = project_objects(&env, "container", &p.name, "{{.Names}}");
    assert_eq!(
        names,
        vec![format!("{}-migrate-1", p.name)],
        "app never created"
    );
}

/// `events --json` streams the project's container events with their service.
#[test]
#[ignore = "needs root: starts an engine"]
fn compose_events_stream_the_project_events() {
    let env = Env::new();
    let text =
        "services:\n  app:\n    image: ${IMAGE}\n    command: [sleep, '1000']\n    init: true\n";
    let p = ProjectDir::new(text);
    let _down = Down { env: &env, p: &p };
    let up = compose(&env, &p, &["up", "-d"], &[]);
    assert_eq!(up.code, Some(0), "{up}");
    let events = std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let mut cmd = env.subject.command(
                corral_bin()
                    .expect("corral binary")
                    .to_str()
                    .expect("utf-8 path"),
            );
            cmd.current_dir(p.path())
                .env("IMAGE", &env.image)
                .arg("-H")
                .arg(env.subject.docker_host())
                .args(["compose", "-p", &p.name, "events", "--json"]);
            run_with_timeout(cmd, None, Duration::from_secs(6)).expect("events runs")
        });
        std::thread::sleep(Duration::from_secs(2));
        let r = compose(&env, &p, &["restart", "-t", "1"], &[]);
        assert_eq!(r.code, Some(0), "{r}");
        watcher.join().expect("watcher")
    });
    let actions: Vec<String> = events
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["service"] == "app")
        .filter_map(|v| v["action"].as_str().map(str::to_owned))
        .collect();
    assert!(
        actions.iter().any(|a| a == "start"),
        "no start event for app: {events}"
    );
}

/// `--force-recreate`, `--no-recreate`, `exec --index` and orphans.
#[test]
#[ignore = "needs root: starts an engine"]
fn compose_up_recreate_flags_index_and_orphans() {
    let env = Env::new();
    let two = "services:\n  a:\n    image: ${IMAGE}\n    command: [sleep, '1000']\n    init: true\n    scale: 2\n    volumes: [/cache]\n    environment: {V: '${V:-1}'}\n  b:\n    image: ${IMAGE}\n    command: [sleep, '1000']\n    init: true\n";
    let p = ProjectDir::new(two);
    let _down = Down { env: &env, p: &p };
    let up = compose(&env, &p, &["up", "-d"], &[]);
    assert_eq!(up.code, Some(0), "{up}");
    let first = ids(&env, &p.name);
    assert_eq!(first.len(), 3, "{first:?}");

    let pull = compose(&env, &p, &["pull"], &[]);
    assert_eq!(pull.code, Some(0), "{pull}");
    assert_contains(&pull.stderr, "Pulled");

    // exec --index picks the replica.
    let idx = compose(
        &env,
        &p,
        &["exec", "-T", "--index", "2", "a", "hostname"],
        &[],
    );
    assert_eq!(idx.code, Some(0), "{idx}");
    let host2 = env.inspect("{{.Config.Hostname}}", &format!("{}-a-2", p.name));
    assert_eq!(idx.stdout.trim(), host2);

    // --no-recreate keeps a changed service; --force-recreate replaces everything.
    let keep = compose(&env, &p, &["up", "-d", "--no-recreate"], &[("V", "2")]);
    assert_eq!(keep.code, Some(0), "{keep}");
    assert_eq!(ids(&env, &p.name), first);
    let mark = compose(&env, &p, &["exec", "-T", "a", "touch", "/cache/kept"], &[]);
    assert_eq!(mark.code, Some(0), "{mark}");
    let force = compose(&env, &p, &["up", "-d", "--force-recreate"], &[]);
    assert_eq!(force.code, Some(0), "{force}");
    let forced = ids(&env, &p.name);
    for (a, b) in first.iter().zip(&forced) {
        assert_ne!(a, b, "recreated");
    }
    // The anonymous volume of a recreated container is kept, as compose does.
    let kept = compose(&env, &p, &["exec", "-T", "a", "ls", "/cache"], &[]);
    assert_eq!(kept.stdout, "kept\n", "{kept}");
    let anon = env.inspect(
        "{{range .Mounts}}{{.Name}}{{end}}",
        &format!("{}-a-1", p.name),
    );
    assert_eq!(anon.len(), 64, "{anon}");

    // Removing b from the file makes its container an orphan.
    std::fs::write(
        p.path().join("compose.yaml"),
        "services:\n  a:\n    image: ${IMAGE}\n    command: [sleep, '1000']\n    init: true\n    scale: 2\n    volumes: [/cache]\n    environment: {V: '${V:-1}'}\n",
    )
    .expect("rewrite");
    let warn = compose(&env, &p, &["up", "-d"], &[]);
    assert_eq!(warn.code, Some(0), "{warn}");
    assert_contains(&warn.stderr, "Found orphan containers");
    assert_eq!(ids(&env, &p.name).len(), 3);
    let clean = compose(&env, &p, &["up", "-d", "--remove-orphans"], &[]);
    assert_eq!(clean.code, Some(0), "{clean}");
    let left = project_objects(&env, "container", &p.name, "{{.Names}}");
    assert_eq!(
        left,
        vec![format!("{}-a-1", p.name), format!("{}-a-2", p.name)]
    );

    // down -v removes anonymous volumes too, also ones a recreate carried over.
    let down = compose(&env, &p, &["down", "-v", "-t", "1"], &[]);
    assert_eq!(down.code, Some(0), "{down}");
    let vols = env.docker(&["volume", "ls", "-q"]);
    assert!(
        !vols.stdout.contains(&anon),
        "{anon} left behind: {vols}\n{down}"
    );
}
