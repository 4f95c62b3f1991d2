//! Pulling, listing, inspecting, tagging, saving and committing images.

use corral_testkit::{docker20, BusyboxImage, ManifestFormat};
use serde_json::json;

use crate::common::{assert_contains, Env};

#[test]
#[ignore = "needs root: starts an engine"]
fn pulls_oci_image_and_lists_it() {
    let env = Env::unpulled();
    let out = env.docker(&["pull", &env.image]);
    out.ok();
    assert_contains(&out.stdout, &env.layout.manifest_digest);
    let images = env.docker(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    let repo = format!("{}/busybox:latest", env.registry.host());
    let short_id = &env.layout.config_digest["sha256:".len().."sha256:".len() + 12];
    assert_contains(images.ok().out(), &format!("{repo} {short_id}"));
    // `images -q` prints just the short id.
    assert_eq!(
        env.docker(&["images", "-q", &env.image]).ok().out(),
        short_id
    );
}

#[test]
#[ignore = "needs root: starts an engine"]
fn pulls_docker_schema2_image_and_runs_it() {
    let env = Env::unpulled();
    let img = BusyboxImage::new().cmd(&["echo", "from-v2s2"]);
    let r = env.push(img, "v2s2/busybox:1", ManifestFormat::DockerV2S2);
    env.track_image(&r);
    env.docker(&["pull", "-q", &r]).ok();
    let run = env.docker(&["run", "--rm", "--network", "none", &r]);
    assert_eq!(run.ok().out(), "from-v2s2");
    let digests = env.inspect("{{json .RepoDigests}}", &r);
    assert_contains(
        &digests,
        &format!("{}/v2s2/busybox@sha256:", env.registry.host()),
    );
}

#[test]
#[ignore = "needs root: starts an engine"]
fn image_inspect_reports_tags_digests_cmd_and_layers() {
    let env = Env::new();
    let img = BusyboxImage::new()
        .entrypoint(&["/bin/sh", "-c"])
        .cmd(&["echo hi"])
        .env("FOO", "bar")
        .workdir("/tmp")
        .label("org.example.k", "v")
        .with_layer(|l| l.file("/a.txt", "a", 0o644))
        .with_layer(|l| l.file("/b.txt", "b", 0o644));
    let layout = img.build_temp().unwrap();
    let r = env
        .registry
        .push_oci_layout(layout.dir(), "inspect/me:v1", ManifestFormat::Oci)
        .unwrap();
    env.track_image(&r);
    env.docker(&["pull", "-q", &r]).ok();

    let out = env.docker(&["image", "inspect", &r]);
    let v: serde_json::Value = serde_json::from_str(out.ok().out()).unwrap();
    let i = &v[0];
    assert_eq!(i["Id"], layout.config_digest.as_str());
    assert_eq!(i["RepoTags"], serde_json::json!([r]));
    assert_eq!(
        i["RepoDigests"],
        serde_json::json!([format!(
            "{}/inspect/me@{}",
            env.registry.host(),
            layout.manifest_digest
        )])
    );
    assert_eq!(i["Config"]["Cmd"], serde_json::json!(["echo hi"]));
    assert_eq!(
        i["Config"]["Entrypoint"],
        serde_json::json!(["/bin/sh", "-c"])
    );
    assert_eq!(i["Config"]["WorkingDir"], "/tmp");
    assert_eq!(i["Config"]["Labels"]["org.example.k"], "v");
    assert_contains(&i["Config"]["Env"].to_string(), "FOO=bar");
    assert_eq!(i["Os"], "linux");
    assert_eq!(i["Architecture"], "amd64");
    assert_eq!(i["RootFS"]["Type"], "layers");
    let layers: Vec<&str> = i["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    let want: Vec<&str> = layout.layers.iter().map(|l| l.diff_id.as_str()).collect();
    assert_eq!(layers, want);
    assert!(i["Size"].as_u64().unwrap() > 1_000_000, "{}", i["Size"]);
    // The image config drives `run`: entrypoint + cmd.
    let run = env.docker(&["run", "--rm", "--network", "none", &r]);
    assert_eq!(run.ok().out(), "hi");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn image_config_user_workdir_and_env_apply_to_containers() {
    let env = Env::new();
    let r = env.pull(
        BusyboxImage::new()
            .user("app")
            .workdir("/home/app")
            .env("GREETING", "hello"),
        "cfg/user:v1",
    );
    let out = env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        &r,
        "sh",
        "-c",
        "id -u; pwd; echo $GREETING",
    ]);
    assert_eq!(out.ok().out(), "1000\n/home/app\nhello");
    // Flags override the image config.
    let out = env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-u",
        "0",
        "-w",
        "/",
        "-e",
        "GREETING=bye",
        &r,
        "sh",
        "-c",
        "id -u; pwd; echo $GREETING",
    ]);
    assert_eq!(out.ok().out(), "0\n/\nbye");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn tag_and_rmi_manage_references() {
    let env = Env::new();
    env.track_image("e2e-tagged/name:t1");
    env.docker(&["tag", &env.image, "e2e-tagged/name:t1"]).ok();
    let id = env.inspect("{{.Id}}", "e2e-tagged/name:t1");
    assert_eq!(id, env.layout.config_digest);
    let out = env.docker(&["rmi", "e2e-tagged/name:t1"]);
    assert_contains(out.ok().out(), "Untagged: e2e-tagged/name:t1");
    // The image itself survives: it still has its original tag.
    assert_eq!(env.inspect("{{.Id}}", &env.image), env.layout.config_digest);
    let again = env.docker(&["rmi", "e2e-tagged/name:t1"]);
    again.failed();
    assert_contains(
        &again.stderr,
        "Error response from daemon: No such image: e2e-tagged/name:t1",
    );
}

#[test]
#[ignore = "needs root: starts an engine"]
fn rmi_of_last_tag_deletes_the_image() {
    let env = Env::new();
    let out = env.docker(&["rmi", &env.image]);
    let text = out.ok().out().to_owned();
    assert_contains(&text, &format!("Untagged: {}", env.image));
    assert_contains(&text, &format!("Deleted: {}", env.layout.config_digest));
    assert_eq!(env.docker(&["images", "-q"]).ok().out(), "");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn rmi_refuses_image_used_by_a_container() {
    let env = Env::new();
    let c = env.name("rmi-used");
    env.docker(&[
        "create",
        "--name",
        &c,
        "--network",
        "none",
        &env.image,
        "true",
    ])
    .ok();
    let out = env.docker(&["rmi", &env.image]);
    out.failed();
    // Docker: "conflict: unable to remove repository reference "<ref>" (must force) -
    // container <short id> is using its referenced image <short id>"
    assert_contains(
        &out.stderr,
        "conflict: unable to remove repository reference",
    );
    assert_contains(&out.stderr, "(must force)");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn save_and_load_round_trip() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("img.tar");
    let archive_s = archive.to_str().unwrap();
    env.docker(&["save", "-o", archive_s, &env.image]).ok();

    // docker-archive format: manifest.json names the config and the repo tags.
    let mut ar = tar::Archive::new(std::fs::File::open(&archive).unwrap());
    let mut manifest = None;
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some("manifest.json") {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut e, &mut s).unwrap();
            manifest = Some(s);
        }
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&manifest.expect("manifest.json")).unwrap();
    assert_eq!(manifest[0]["RepoTags"], serde_json::json!([env.image]));
    assert_eq!(manifest[0]["Layers"].as_array().unwrap().len(), 1);

    env.docker(&["rmi", &env.image]).ok();
    env.docker(&["image", "inspect", &env.image]).failed();
    let out = env.docker(&["load", "-i", archive_s]);
    assert_contains(out.ok().out(), &format!("Loaded image: {}", env.image));
    assert_eq!(env.inspect("{{.Id}}", &env.image), env.layout.config_digest);
    let run = env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        &env.image,
        "echo",
        "loaded",
    ]);
    assert_eq!(run.ok().out(), "loaded");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn history_lists_each_layer_with_created_by() {
    let env = Env::new();
    let r = env.pull(
        BusyboxImage::new().with_layer(|l| l.file("/x", "x", 0o644).created_by("ADD x /x")),
        "hist/img:v1",
    );
    let out = env.docker(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}|{{.Size}}",
        &r,
    ]);
    let lines: Vec<&str> = out.ok().out().lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    // Newest first.
    assert_eq!(lines[0], "ADD x /x|1B");
    assert!(
        lines[1].starts_with("corral-testkit: busybox base|"),
        "{}",
        lines[1]
    );
}

#[test]
#[ignore = "needs root: starts an engine"]
fn commit_creates_a_runnable_image_with_a_new_layer() {
    let env = Env::new();
    let c = env.name("commit");
    env.docker(&[
        "run",
        "--name",
        &c,
        "--network",
        "none",
        &env.image,
        "sh",
        "-c",
        "echo committed > /marker",
    ])
    .ok();
    env.track_image("e2e-committed:v1");
    let id = env.docker(&[
        "commit",
        "-c",
        r#"CMD ["cat", "/marker"]"#,
        "-m",
        "e2e message",
        &c,
        "e2e-committed:v1",
    ]);
    assert!(id.ok().out().starts_with("sha256:"), "{}", id.out());
    let run = env.docker(&["run", "--rm", "--network", "none", "e2e-committed:v1"]);
    assert_eq!(run.ok().out(), "committed");
    let layers = env.inspect("{{len .RootFS.Layers}}", "e2e-committed:v1");
    assert_eq!(layers, "2");
    let hist = env.docker(&["history", "--format", "{{.Comment}}", "e2e-committed:v1"]);
    assert_eq!(hist.ok().out().lines().next(), Some("e2e message"));
}

#[test]
#[ignore = "needs root: starts an engine"]
fn commit_change_applies_instructions_to_the_containers_config() {
    let env = Env::new();
    let c = env.name("commit-change");
    env.docker(&[
        "create",
        "--name",
        &c,
        "--network",
        "none",
        "-e",
        "FOO=bar",
        "-l",
        "cl=cv",
        "--expose",
        "9000",
        "-w",
        "/cw",
        "--entrypoint",
        "/bin/sh",
        &env.image,
        "-c",
        "echo hi",
    ])
    .ok();
    let img = "e2e-commit-change:v1";
    env.track_image(img);
    let changes = [
        // Expands from the container's environment; ENV replaces in place.
        "ENV C=$FOO-x",
        "ENV FOO=new",
        "LABEL x=y cl=over",
        "EXPOSE 80 8080-8081/udp",
        "VOLUME /data",
        "USER nobody",
        "WORKDIR sub",
        "onbuild run echo hi",
        "HEALTHCHECK --interval=5s CMD true",
        "CMD echo $FOO",
    ];
    let mut args = vec!["commit"];
    for ch in &changes {
        args.extend(["-c", ch]);
    }
    args.extend([c.as_str(), img]);
    env.docker(&args).ok();
    let cfg = |f: &str| -> serde_json::Value {
        serde_json::from_str(&env.inspect(&format!("{{{{json .Config.{f}}}}}"), img)).unwrap()
    };
    let path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    assert_eq!(cfg("Env"), json!(["FOO=new", path, "C=bar-x"]));
    assert_eq!(cfg("Labels"), json!({"cl": "over", "x": "y"}));
    assert_eq!(
        cfg("ExposedPorts"),
        json!({"80/tcp": {}, "8080/udp": {}, "8081/udp": {}, "9000/tcp": {}})
    );
    assert_eq!(cfg("Volumes"), json!({"/data": {}}));
    assert_eq!(cfg("User"), "nobody");
    assert_eq!(cfg("WorkingDir"), "/cw/sub");
    assert_eq!(cfg("OnBuild"), json!(["run echo hi"]));
    assert_eq!(
        cfg("Healthcheck"),
        json!({"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000_u64})
    );
    assert_eq!(cfg("Cmd"), json!(["/bin/sh", "-c", "echo $FOO"]));
    assert_eq!(cfg("Entrypoint"), json!(["/bin/sh"]));

    // A new ENTRYPOINT drops the container's CMD.
    let img2 = "e2e-commit-change:v2";
    env.track_image(img2);
    env.docker(&["commit", "-c", r#"ENTRYPOINT ["echo"]"#, &c, img2])
        .ok();
    assert_eq!(env.inspect("{{json .Config.Cmd}}", img2), "null");
    let run = env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-u",
        "0",
        "-w",
        "/",
        img2,
        "from",
        "entry",
    ]);
    assert_eq!(run.ok().out(), "from entry");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn commit_change_rejects_bad_changes_and_leaves_no_image() {
    let env = Env::new();
    let c = env.sleeper("commit-bad", &[]);
    let img = "e2e-commit-bad:v1";
    env.track_image(img);
    for (changes, message) in [
        (
            &["ENV A=1", "RUN rm -rf /"][..],
            "run is not a valid change command",
        ),
        (&["FROM x"], "from is not a valid change command"),
        (
            &["STOPSIGNAL SIGINT"],
            "stopsignal is not a valid change command",
        ),
        (&["USER"], "USER requires exactly one argument"),
        (&["ENV A"], "ENV must have two arguments"),
        (&["EXPOSE 80/xyz"], "Invalid proto: xyz"),
        (
            &["ONBUILD ONBUILD x"],
            "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
        ),
        (&["CMD --foo x"], "Unknown flag: foo"),
        (&[""], "file with no instructions"),
    ] {
        let mut args = vec!["commit"];
        for ch in changes {
            args.extend(["-c", ch]);
        }
        args.extend([c.as_str(), img]);
        let out = env.docker(&args);
        assert_ne!(out.code, Some(0), "{changes:?}: {out}");
        assert_contains(
            &out.stderr,
            &format!("Error response from daemon: {message}"),
        );
    }
    let out = env.docker(&["image", "inspect", img]);
    assert_ne!(out.code, Some(0), "{out}");
    // The failed commits did not leave the container paused.
    assert_eq!(env.inspect("{{.State.Status}}", &c), "running");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn import_change_applies_instructions_to_an_empty_config() {
    let env = Env::new();
    let c = env.name("import-src");
    env.docker(&["create", "--name", &c, &env.image]).ok();
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("rootfs.tar");
    let tar = tar.to_str().unwrap();
    env.docker(&["export", "-o", tar, &c]).ok();
    let img = "e2e-import-change:v1";
    env.track_image(img);
    env.docker(&[
        "import",
        "-c",
        "ENV A=1",
        "-c",
        "ENV B=$A-z C=$HOME",
        "-c",
        r#"ENTRYPOINT ["/bin/sh", "-c"]"#,
        "-c",
        r#"CMD ["echo $B"]"#,
        "-c",
        "WORKDIR rel",
        tar,
        img,
    ])
    .ok();
    let envs: serde_json::Value =
        serde_json::from_str(&env.inspect("{{json .Config.Env}}", img)).unwrap();
    assert_eq!(envs, json!(["A=1", "B=1-z", "C="]));
    assert_eq!(env.inspect("{{json .Config.WorkingDir}}", img), r#""/rel""#);
    let run = env.docker(&["run", "--rm", "--network", "none", "-w", "/", img]);
    assert_eq!(run.ok().out(), "1-z");

    let bad = "e2e-import-bad:v1";
    env.track_image(bad);
    let out = env.docker(&["import", "-c", "RUN x", tar, bad]);
    assert_ne!(out.code, Some(0), "{out}");
    assert_contains(
        &out.stderr,
        "Error response from daemon: run is not a valid change command",
    );
    assert_ne!(env.docker(&["image", "inspect", bad]).code, Some(0));
}

#[test]
#[ignore = "needs root: starts an engine"]
fn whiteout_and_opaque_layers_hide_lower_files() {
    let env = Env::new();
    let r = env.pull(
        BusyboxImage::new()
            .with_layer(|l| {
                l.dir("/data", 0o755)
                    .file("/data/keep", "k", 0o644)
                    .file("/data/gone", "g", 0o644)
                    .dir("/opq", 0o755)
                    .file("/opq/lower", "l", 0o644)
            })
            .with_layer(|l| {
                l.whiteout("/data/gone")
                    .whiteout("/bin/yes")
                    .opaque("/opq")
                    .file("/opq/upper", "u", 0o644)
            }),
        "wh/img:v1",
    );
    let out = env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        &r,
        "sh",
        "-c",
        "ls /data; echo --; ls -a /opq; echo --; ls /bin/yes; echo rc=$?",
    ]);
    let text = out.ok().out().to_owned();
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        ["keep", "--", ".", "..", "upper", "--", "rc=1"],
        "{out}"
    );
    // Whiteout markers themselves are never visible.
    assert!(!out.stdout.contains(".wh."));
}

#[test]
#[ignore = "needs root: starts an engine"]
fn pull_of_unknown_image_reports_manifest_unknown() {
    let env = Env::unpulled();
    let missing = env.registry.image_ref("nosuch:latest");
    let out = env.docker(&["pull", &missing]);
    out.failed();
    assert_eq!(out.code, Some(1));
    assert_contains(
        &out.stderr,
        &format!("Error response from daemon: manifest for {missing} not found: manifest unknown"),
    );
}

#[test]
#[ignore = "needs root: starts an engine"]
fn run_of_unknown_image_tries_pull_and_exits_125() {
    let env = Env::unpulled();
    let missing = env.registry.image_ref("nosuch:latest");
    let out = env.docker(&["run", "--rm", "--network", "none", &missing, "true"]);
    assert_eq!(out.code, Some(125), "{out}");
    assert_contains(
        &out.stderr,
        &format!("Unable to find image '{missing}' locally"),
    );
    assert_contains(&out.stderr, &format!("manifest for {missing} not found"));
}

#[test]
#[ignore = "needs root: starts an engine"]
fn inspect_of_unknown_image_fails() {
    let env = Env::unpulled();
    let out = env.docker(&["image", "inspect", "e2e-nosuch:latest"]);
    out.failed();
    assert_contains(&out.stderr, "No such image: e2e-nosuch:latest");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn pull_of_bad_reference_is_rejected_by_the_daemon() {
    let env = Env::unpulled();
    // The docker CLI validates references itself, so talk to the API directly. The
    // reference names a loopback registry, so no host outside this machine is contacted.
    let sock = env.subject.socket();
    let out = std::process::Command::new("curl")
        .args(["-s", "-w", "\\n%{http_code}", "--unix-socket"])
        .arg(&sock)
        .args([
            "-X",
            "POST",
            "http://localhost/v1.41/images/create?fromImage=127.0.0.1:1/UPPER/case&tag=v1",
        ])
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    assert_eq!(code, "400", "{text}");
    assert_contains(body, "invalid reference format: repository name");
    assert_contains(body, "must be lowercase");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn docker_20_cli_negotiates_and_runs_containers() {
    let env = Env::new();
    let Some(out) = docker20(
        &env.subject,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            &env.image,
            "echo",
            "old-cli",
        ],
    ) else {
        eprintln!("docker 20.10 CLI not installed: skipping");
        return;
    };
    assert_eq!(out.ok().out(), "old-cli");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn pull_from_basic_auth_registry_needs_login() {
    corral_testkit::require_root();
    let reg = corral_testkit::Registry::start_with_basic_auth("e2e", "pa55word").unwrap();
    let layout = BusyboxImage::new().build_temp().unwrap();
    let r = reg
        .push_oci_layout(layout.dir(), "private/bb:v1", ManifestFormat::Oci)
        .unwrap();
    let subject = corral_testkit::Subject::start(&[reg.host()]).unwrap();
    let docker = |args: &[&str]| corral_testkit::docker(&subject, args);

    let anon = docker(&["pull", &r]);
    assert_eq!(anon.code, Some(1), "{anon}");
    assert_contains(&anon.stderr, "no basic auth credentials");

    let bad = corral_testkit::docker_with(
        &subject,
        &["login", "-u", "e2e", "--password-stdin", &reg.host()],
        corral_testkit::DockerOpts {
            stdin: Some(b"wrong\n"),
            ..Default::default()
        },
    );
    bad.failed();
    // dockerd: "login attempt to http://127.0.0.1:PORT/v2/ failed with status: 401 Unauthorized"
    assert_contains(&bad.stderr, "failed with status: 401 Unauthorized");

    let login = corral_testkit::docker_with(
        &subject,
        &["login", "-u", "e2e", "--password-stdin", &reg.host()],
        corral_testkit::DockerOpts {
            stdin: Some(b"pa55word\n"),
            ..Default::default()
        },
    );
    assert_contains(login.ok().out(), "Login Succeeded");
    docker(&["pull", "-q", &r]).ok();
    assert_eq!(
        docker(&["image", "inspect", "-f", "{{.Id}}", &r])
            .ok()
            .out(),
        layout.config_digest
    );
    docker(&["rmi", &r]).ok();
}
