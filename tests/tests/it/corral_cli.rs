//! The `corral` client against the engine under test: the same API the docker CLI uses.

use std::time::Duration;

use corral_testkit::{corral_bin, run_with_timeout, BusyboxImage, ManifestFormat, Output};

use crate::common::{assert_contains, Env};

fn corral(env: &Env, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = env.subject.command(
        corral_bin()
            .expect("corral binary")
            .to_str()
            .expect("utf-8 path"),
    );
    cmd.arg("-H").arg(env.subject.docker_host()).args(args);
    run_with_timeout(cmd, stdin, Duration::from_secs(120)).expect("corral client runs")
}

#[test]
#[ignore = "needs root: starts an engine"]
fn corral_cli_pulls_runs_and_removes() {
    let env = Env::unpulled();
    let pull = corral(&env, &["pull", &env.image], None);
    assert_eq!(pull.code, Some(0), "{pull}");
    assert_contains(&pull.stdout, "Status: Downloaded newer image for");

    let run = corral(
        &env,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            &env.image,
            "sh",
            "-c",
            "echo out; exit 4",
        ],
        None,
    );
    assert_eq!(run.code, Some(4), "{run}");
    assert_eq!(run.stdout, "out\n");

    let piped = corral(
        &env,
        &["run", "-i", "--rm", "--network", "none", &env.image, "cat"],
        Some(b"via stdin\n"),
    );
    assert_eq!(piped.stdout, "via stdin\n", "{piped}");

    let name = "corral-cli-sleeper";
    let started = corral(
        &env,
        &[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "none",
            &env.image,
            "sleep",
            "1000",
        ],
        None,
    );
    assert_eq!(started.code, Some(0), "{started}");
    let ps = corral(&env, &["ps", "--format", "{{.Names}} {{.State}}"], None);
    assert_contains(&ps.stdout, &format!("{name} running"));
    let exec = corral(&env, &["exec", name, "sh", "-c", "exit 3"], None);
    assert_eq!(exec.code, Some(3), "{exec}");
    let rm = corral(&env, &["rm", "-f", name], None);
    assert_eq!(rm.code, Some(0), "{rm}");
    let missing = corral(&env, &["inspect", name], None);
    assert_eq!(missing.code, Some(1), "{missing}");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn corral_cli_pulls_a_docker_schema2_image_with_whiteouts() {
    let env = Env::unpulled();
    let layout = BusyboxImage::new()
        .with_layer(|l| {
            l.file("/etc/gone", "x", 0o644)
                .dir("/opq", 0o755)
                .file("/opq/old", "o", 0o644)
        })
        .with_layer(|l| {
            l.whiteout("/etc/gone")
                .opaque("/opq")
                .file("/opq/new", "n", 0o644)
        })
        .build_temp()
        .unwrap();
    let r = env
        .registry
        .push_oci_layout(layout.dir(), "wh/img:v2s2", ManifestFormat::DockerV2S2)
        .unwrap();
    assert_eq!(corral(&env, &["pull", &r], None).code, Some(0));
    let run = corral(
        &env,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            &r,
            "sh",
            "-c",
            "ls /etc/gone /opq 2>&1; true",
        ],
        None,
    );
    assert_contains(&run.stdout, "No such file");
    assert_contains(&run.stdout, "new");
    assert!(!run.stdout.contains("old"), "{run}");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn corral_cli_sets_health_checks_and_reads_their_events() {
    let env = Env::new();
    let since = crate::events::unix_now();
    let c = env.name("clihealth");
    let run = corral(
        &env,
        &[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            &c,
            "--health-cmd",
            "true",
            "--health-interval",
            "1s",
            "--health-retries",
            "2",
            &env.image,
            "sleep",
            "1000",
        ],
        None,
    );
    assert_eq!(run.code, Some(0), "{run}");
    corral_testkit::assert_eventually!(env.inspect("{{.State.Health.Status}}", &c) == "healthy");
    assert_eq!(
        env.inspect("{{json .Config.Healthcheck}}", &c),
        r#"{"Test":["CMD-SHELL","true"],"Interval":1000000000,"Retries":2}"#
    );
    let events = corral(
        &env,
        &[
            "events",
            "--since",
            &since,
            "--until",
            &crate::events::unix_now(),
            "--filter",
            "event=health_status",
            "--format",
            "{{.Action}}",
        ],
        None,
    );
    assert_eq!(events.code, Some(0), "{events}");
    assert_eq!(events.stdout.trim(), "health_status: healthy");
    let both = corral(
        &env,
        &[
            "create",
            "--no-healthcheck",
            "--health-cmd",
            "true",
            &env.image,
        ],
        None,
    );
    assert_ne!(both.code, Some(0));
    assert_contains(
        &both.stderr,
        "--no-healthcheck conflicts with --health-* options",
    );
}
