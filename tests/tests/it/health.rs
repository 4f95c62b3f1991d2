//! Health checks: `--health-*` flags, the image's `HEALTHCHECK`, `--no-healthcheck`,
//! `State.Health`, the `ps` status and `health` filter, and `health_status` events.

use corral_testkit::{assert_eventually, BusyboxImage, Healthcheck, SubjectKind};

use crate::common::{assert_contains, Env};
use crate::events::{events_between, unix_now};

const SECOND_NS: u64 = 1_000_000_000;

fn status(env: &Env, c: &str) -> String {
    env.inspect("{{.State.Health.Status}}", c)
}

/// Names `docker ps` lists for `filter`.
fn ps_names(env: &Env, filter: &str) -> Vec<String> {
    env.docker(&["ps", "-a", "--filter", filter, "--format", "{{.Names}}"])
        .ok()
        .out()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn ps_status(env: &Env, c: &str) -> String {
    env.docker(&[
        "ps",
        "--filter",
        &format!("name={c}"),
        "--format",
        "{{.Status}}",
    ])
    .ok()
    .out()
    .to_owned()
}

#[test]
#[ignore = "needs root: starts an engine"]
fn health_turns_healthy_then_unhealthy_with_status_filter_log_and_events() {
    let env = Env::new();
    let since = unix_now();
    let c = env.sleeper(
        "health",
        &[
            "--health-cmd",
            "test -f /tmp/ok && echo fine",
            "--health-interval",
            "1s",
            "--health-retries",
            "2",
            "--health-timeout",
            "5s",
        ],
    );
    env.docker(&["exec", &c, "touch", "/tmp/ok"]).ok();
    assert_eventually!(status(&env, &c) == "healthy", "{}", status(&env, &c));
    assert_contains(&ps_status(&env, &c), "(healthy)");
    assert!(ps_names(&env, "health=healthy").contains(&c));
    assert!(!ps_names(&env, "health=unhealthy").contains(&c));
    assert_eq!(
        env.inspect("{{(index .State.Health.Log 0).ExitCode}}", &c),
        "0"
    );
    assert_contains(
        &env.inspect("{{json .State.Health.Log}}", &c),
        r#""Output":"fine\n""#,
    );
    assert_eq!(
        env.inspect("{{json .Config.Healthcheck}}", &c),
        r#"{"Test":["CMD-SHELL","test -f /tmp/ok && echo fine"],"Interval":1000000000,"Timeout":5000000000,"Retries":2}"#
    );

    env.docker(&["exec", &c, "rm", "/tmp/ok"]).ok();
    assert_eventually!(status(&env, &c) == "unhealthy", "{}", status(&env, &c));
    assert_contains(&ps_status(&env, &c), "(unhealthy)");
    assert!(ps_names(&env, "health=unhealthy").contains(&c));
    let streak: u32 = env
        .inspect("{{.State.Health.FailingStreak}}", &c)
        .parse()
        .unwrap();
    assert!(streak >= 2, "failing streak {streak}");
    let log_len: usize = env
        .inspect("{{len .State.Health.Log}}", &c)
        .parse()
        .unwrap();
    assert!((3..=5).contains(&log_len), "log length {log_len}");

    let health = events_between(
        &env,
        &since,
        &unix_now(),
        &[&format!("container={c}"), "event=health_status"],
        "{{.Action}}",
    );
    assert_eq!(
        health,
        vec!["health_status: healthy", "health_status: unhealthy"]
    );
    // Probes are exec sessions, with their events, as in dockerd.
    let execs = events_between(
        &env,
        &since,
        &unix_now(),
        &[&format!("container={c}"), "event=exec_create"],
        "{{.Action}}",
    );
    assert!(
        execs
            .iter()
            .any(|a| a == "exec_create: /bin/sh -c test -f /tmp/ok && echo fine"),
        "{execs:?}"
    );
    let dies = events_between(
        &env,
        &since,
        &unix_now(),
        &[&format!("container={c}"), "event=exec_die"],
        "{{.Actor.Attributes.exitCode}}",
    );
    assert!(dies.iter().any(|code| code == "1"), "{dies:?}");
    // Stopping keeps the last state in inspect; `ps` no longer shows it.
    env.docker(&["stop", "-t", "0", &c]).ok();
    assert_eq!(status(&env, &c), "unhealthy");
    let shown = env
        .docker(&[
            "ps",
            "-a",
            "--filter",
            &format!("name={c}"),
            "--format",
            "{{.Status}}",
        ])
        .ok()
        .out()
        .to_owned();
    assert!(
        shown.starts_with("Exited") && !shown.contains("health"),
        "{shown}"
    );
}

#[test]
#[ignore = "needs root: starts an engine"]
fn start_period_keeps_starting_and_filters_tell_none_from_starting() {
    let env = Env::new();
    let c = env.sleeper(
        "startperiod",
        &[
            "--health-cmd",
            "exit 1",
            "--health-interval",
            "1s",
            "--health-retries",
            "1",
            "--health-start-period",
            "1h",
        ],
    );
    let plain = env.sleeper("nohealth", &[]);
    assert_eq!(status(&env, &c), "starting");
    // Failing probes run but are not counted during the start period.
    assert_eventually!(
        env.inspect("{{len .State.Health.Log}}", &c) == "2",
        "{}",
        env.inspect("{{json .State.Health}}", &c)
    );
    assert_eq!(status(&env, &c), "starting");
    assert_eq!(env.inspect("{{.State.Health.FailingStreak}}", &c), "0");
    assert_eq!(
        env.inspect("{{(index .State.Health.Log 0).ExitCode}}", &c),
        "1"
    );
    assert_contains(&ps_status(&env, &c), "(health: starting)");
    assert_eq!(ps_names(&env, "health=starting"), vec![c.clone()]);
    assert_eq!(ps_names(&env, "health=none"), vec![plain.clone()]);
    assert_eq!(env.inspect("{{json .State.Health}}", &plain), "null");
    let bad = env.docker(&["ps", "--filter", "health=sick"]);
    assert_contains(
        bad.failed().err(),
        "Unrecognised filter value for health: sick",
    );
    // A restart starts over at `starting`.
    env.docker(&["restart", "-t", "0", &c]).ok();
    assert_eq!(status(&env, &c), "starting");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn image_healthcheck_applies_merges_with_flags_and_no_healthcheck_disables_it() {
    let env = Env::new();
    let img = env.pull(
        BusyboxImage::new().healthcheck(Healthcheck {
            test: vec!["CMD-SHELL".into(), "echo probed".into()],
            interval_ns: SECOND_NS,
            timeout_ns: 10 * SECOND_NS,
            retries: 4,
            ..Healthcheck::default()
        }),
        "hc:1",
    );
    let run = |base: &str, flags: &[&str]| {
        let name = env.name(base);
        let mut args = vec!["run", "-d", "--network", "none", "--name", name.as_str()];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[img.as_str(), "sleep", "1000"]);
        env.docker(&args).ok();
        name
    };
    let inherits = run("hcimage", &[]);
    let overrides = run(
        "hcmerge",
        &["--health-retries", "7", "--health-interval", "2s"],
    );
    let disabled = run("hcnone", &["--no-healthcheck"]);
    assert_eventually!(status(&env, &inherits) == "healthy");
    assert_eq!(
        env.inspect("{{json .Config.Healthcheck}}", &inherits),
        r#"{"Test":["CMD-SHELL","echo probed"],"Interval":1000000000,"Timeout":10000000000,"Retries":4}"#
    );
    assert_eq!(
        env.inspect("{{json .Config.Healthcheck}}", &overrides),
        r#"{"Test":["CMD-SHELL","echo probed"],"Interval":2000000000,"Timeout":10000000000,"Retries":7}"#
    );
    assert_eventually!(status(&env, &overrides) == "healthy");
    // The merge is field by field: `NONE` keeps the image's other settings.
    assert_eq!(
        env.inspect("{{json .Config.Healthcheck}}", &disabled),
        r#"{"Test":["NONE"],"Interval":1000000000,"Timeout":10000000000,"Retries":4}"#
    );
    assert_eq!(env.inspect("{{json .State.Health}}", &disabled), "null");
    assert!(ps_names(&env, "health=none").contains(&disabled));
    assert!(!ps_status(&env, &disabled).contains("health"));
}

#[test]
#[ignore = "needs root: starts an engine"]
fn bad_health_settings_are_refused() {
    let env = Env::new();
    let out = env.docker(&[
        "create",
        "--health-cmd",
        "true",
        "--health-interval",
        "1ns",
        &env.image,
    ]);
    assert_contains(
        out.failed().err(),
        "Interval in Healthcheck cannot be less than 1ms",
    );
    assert_eq!(env.docker(&["ps", "-aq"]).ok().out(), "");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn health_monitoring_resumes_after_a_daemon_restart() {
    if SubjectKind::from_env().ok() == Some(SubjectKind::Docker) {
        eprintln!(
            "skipped: the reference dockerd runs without live restore; this is Corral's restart"
        );
        return;
    }
    let mut env = Env::new();
    let c = env.sleeper(
        "hcrestart",
        &[
            "--health-cmd",
            "test -f /tmp/ok",
            "--health-interval",
            "1s",
            "--health-retries",
            "1",
        ],
    );
    env.docker(&["exec", &c, "touch", "/tmp/ok"]).ok();
    assert_eventually!(status(&env, &c) == "healthy");
    let pid = env.inspect("{{.State.Pid}}", &c);
    env.subject
        .corral()
        .expect("corral daemon")
        .kill9_and_restart()
        .expect("restart the daemon");
    assert_eq!(env.inspect("{{.State.Pid}}", &c), pid);
    // As dockerd's restore, monitoring starts over (`starting`, soon `healthy` again), and
    // probes run: removing the file turns it unhealthy.
    let after = status(&env, &c);
    assert!(after == "starting" || after == "healthy", "{after}");
    assert_eventually!(status(&env, &c) == "healthy");
    env.docker(&["exec", &c, "rm", "/tmp/ok"]).ok();
    assert_eventually!(status(&env, &c) == "unhealthy", "{}", status(&env, &c));
}

#[test]
#[ignore = "needs root: starts an engine"]
fn a_slow_probe_times_out_and_long_output_is_capped() {
    let env = Env::new();
    let slow = env.sleeper(
        "hcslow",
        &[
            "--health-cmd",
            "echo started; sleep 30",
            "--health-interval",
            "1s",
            "--health-timeout",
            "1s",
            "--health-retries",
            "1",
        ],
    );
    let chatty = env.sleeper(
        "hcchatty",
        &[
            "--health-cmd",
            "head -c 5000 /dev/zero | tr '\\0' x",
            "--health-interval",
            "1s",
        ],
    );
    assert_eventually!(
        status(&env, &slow) == "unhealthy",
        "{}",
        status(&env, &slow)
    );
    assert_eq!(
        env.inspect("{{(index .State.Health.Log 0).ExitCode}}", &slow),
        "-1"
    );
    assert_eq!(
        env.inspect("{{(index .State.Health.Log 0).Output}}", &slow),
        "Health check exceeded timeout (1s)"
    );
    // The timed-out probe was killed: no `sleep 30` is left in the container.
    assert_eventually!(!env
        .docker(&["exec", &slow, "ps", "-o", "args"])
        .ok()
        .out()
        .contains("sleep 30"));
    assert_eventually!(status(&env, &chatty) == "healthy");
    let out = env.inspect("{{(index .State.Health.Log 0).Output}}", &chatty);
    assert_eq!(out.len(), 4096 + 3, "{} bytes", out.len());
    assert!(out.ends_with("xxx..."), "{}", &out[4000..]);
}
