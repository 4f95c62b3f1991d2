//! Restart policies: counted restarts with backoff, and `stop` keeping a container stopped.

use corral_testkit::assert_eventually;

use crate::common::Env;

#[test]
#[ignore = "needs root: starts an engine"]
fn on_failure_restarts_up_to_its_maximum() {
    let env = Env::new();
    let c = env.name("onfail");
    env.docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &c,
        "--restart",
        "on-failure:2",
        &env.image,
        "sh",
        "-c",
        "echo run; exit 3",
    ])
    .ok();
    // Two restarts after the first failure (backoff 100 ms, 200 ms), then it stays exited.
    assert_eventually!(
        env.inspect("{{.State.Status}} {{.RestartCount}}", &c) == "exited 2",
        "{}",
        env.inspect("{{.State.Status}} {{.RestartCount}}", &c)
    );
    assert_eq!(env.inspect("{{.State.ExitCode}}", &c), "3");
    assert_eq!(env.docker(&["logs", &c]).ok().out(), "run\nrun\nrun");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn on_failure_does_not_restart_a_success() {
    let env = Env::new();
    let c = env.name("onok");
    env.docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &c,
        "--restart",
        "on-failure",
        &env.image,
        "true",
    ])
    .ok();
    assert_eventually!(env.inspect("{{.State.Status}}", &c) == "exited");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(env.inspect("{{.RestartCount}}", &c), "0");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn always_restarts_until_stopped_and_stop_keeps_it_stopped() {
    let env = Env::new();
    let c = env.name("always");
    env.docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &c,
        "--restart",
        "always",
        &env.image,
        "sh",
        "-c",
        "sleep 0.2",
    ])
    .ok();
    assert_eventually!(
        env.inspect("{{.RestartCount}}", &c)
            .parse::<u32>()
            .unwrap_or(0)
            >= 2
    );
    env.docker(&["stop", "-t", "1", &c]).ok();
    let count = env.inspect("{{.RestartCount}}", &c);
    assert_eq!(env.inspect("{{.State.Status}}", &c), "exited");
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert_eq!(env.inspect("{{.State.Status}}", &c), "exited");
    assert_eq!(env.inspect("{{.RestartCount}}", &c), count);
}
