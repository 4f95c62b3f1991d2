//! Root tests: real containers through a real shim process, with both runtime back ends.
//!
//! Each test builds a busybox bundle by hand, launches `corral-test-shim shim …` through
//! [`ShimClient::launch`] and drives it like the daemon would. A guard kills leftover
//! processes and removes runtime state and cgroups even when an assertion fails.
// Helpers here are test code too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use corral_runtime::logs::LogStream;
use corral_runtime::shim::{AttachOptions, ContainerStatus, RuntimeKind, ShimClient, ShimError};
use corral_sys::process::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use support::*;

async fn output_reaches_log_and_attach(runtime: RuntimeKind) {
    let mut container = TestContainer::new(
        runtime,
        &["sh", "-c", "echo hello; echo oops >&2; echo bye"],
    );
    let client = container.launch().await.unwrap();
    assert_eq!(
        client.state().await.unwrap().status,
        ContainerStatus::Created
    );
    let attach = client
        .attach(AttachOptions {
            stdin: false,
            stdout: true,
            stderr: true,
        })
        .await
        .unwrap();
    let (mut reader, _writer) = attach.into_split();
    client.start().await.unwrap();
    let (stdout, stderr) = collect_frames(&mut reader).await;
    assert_eq!(stdout, "hello\nbye\n");
    assert_eq!(stderr, "oops\n");
    let exit = wait(&client).await;
    assert_eq!(exit.code, 0);
    assert!(!exit.oom_killed);
    let mut lines = container.log_lines();
    lines.sort();
    assert_eq!(
        lines,
        vec![
            (LogStream::Stdout, "bye\n".to_owned()),
            (LogStream::Stdout, "hello\n".to_owned()),
            (LogStream::Stderr, "oops\n".to_owned()),
        ]
    );
    let state = ShimClient::read_exit(client.state_dir()).await.unwrap();
    assert_eq!(state, Some(exit));
}

async fn exit_code_is_reported(runtime: RuntimeKind) {
    let mut container = TestContainer::new(runtime, &["sh", "-c", "exit 3"]);
    let client = container.launch().await.unwrap();
    client.start().await.unwrap();
    assert_eq!(wait(&client).await.code, 3);
}

/// `--start`: the shim starts the container itself; the launch returns a running one whose
/// output reaches the log, and a `start` request is refused. A start that cannot happen
/// fails the launch like a create failure.
async fn start_at_launch_runs_without_a_start_request(runtime: RuntimeKind) {
    let mut container = TestContainer::new(runtime, &["sh", "-c", "echo early; sleep 300"]);
    container.args.start = true;
    let client = container.launch().await.unwrap();
    let state = client.state().await.unwrap();
    assert_eq!(state.status, ContainerStatus::Running, "{state:?}");
    let deadline = tokio::time::Instant::now() + STEP;
    while container.log_lines().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no output");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        container.log_lines(),
        vec![(LogStream::Stdout, "early\n".to_owned())]
    );
    assert!(client.start().await.is_err());
    client.kill(9, false).await.unwrap();
    assert_eq!(wait(&client).await.code, 137);

    let mut missing = TestContainer::new(runtime, &["nosuch"]);
    missing.args.start = true;
    match missing.launch().await {
        Err(ShimError::Create { exit_code, .. }) => assert_eq!(exit_code, 127),
        other => panic!("expected a create error, got {other:?}"),
    }
}

async fn sigkill_gives_137(runtime: RuntimeKind) {
    let mut container = TestContainer::new(runtime, &["sleep", "300"]);
    let client = container.launch().await.unwrap();
    client.start().await.unwrap();
    let state = client.state().await.unwrap();
    assert_eq!(state.status, ContainerStatus::Running);
    assert!(
        state.pids.contains(&client.init_pid().as_raw()),
        "{state:?}"
    );
    client.kill(9, false).await.unwrap();
    assert_eq!(wait(&client).await.code, 137);
    // The container is gone from the runtime and the init was reaped.
    assert!(!running(client.init_pid()));
}

async fn missing_binary_fails_like_docker(runtime: RuntimeKind) {
    let mut container = TestContainer::new(runtime, &["nosuch"]);
    match container.launch().await {
        Err(ShimError::Create {
            message, exit_code, ..
        }) => {
            assert_eq!(exit_code, 127, "{message}");
            assert!(
                message.contains(r#"exec: "nosuch": executable file not found in $PATH"#),
                "{message}"
            );
        }
        other => panic!("expected a create error, got {other:?}"),
    }
}

async fn stdin_eof_reaches_cat(runtime: RuntimeKind) {
    let mut container = TestContainer::with(
        Options {
            runtime,
            tty: false,
            stdin: true,
            memory_limit: None,
        },
        &["cat"],
    );
    let client = container.launch().await.unwrap();
    let (mut reader, mut writer) = client
        .attach(AttachOptions {
            stdin: true,
            stdout: true,
            stderr: true,
        })
        .await
        .unwrap()
        .into_split();
    client.start().await.unwrap();
    writer.write_all(b"ping\npong\n").await.unwrap();
    writer.shutdown().await.unwrap();
    let (stdout, stderr) = collect_frames(&mut reader).await;
    assert_eq!(stdout, "ping\npong\n");
    assert_eq!(stderr, "");
    assert_eq!(wait(&client).await.code, 0);
}

async fn reconnect_after_client_drop(runtime: RuntimeKind) {
    let mut container = TestContainer::new(runtime, &["sh", "-c", "sleep 1; exit 5"]);
    let client = container.launch().await.unwrap();
    client.start().await.unwrap();
    let state_dir = client.state_dir().to_owned();
    let shim_pid = client.shim_pid();
    drop(client);
    let again = ShimClient::connect(&state_dir).await.unwrap();
    assert_eq!(again.shim_pid(), shim_pid);
    assert_eq!(wait(&again).await.code, 5);
    // Once the exit was collected the shim leaves; the status stays readable.
    let deadline = tokio::time::Instant::now() + STEP;
    while running(shim_pid) {
        assert!(tokio::time::Instant::now() < deadline, "shim did not exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(matches!(
        ShimClient::connect(&state_dir).await,
        Err(ShimError::Gone { .. })
    ));
    let exit = ShimClient::read_exit(&state_dir).await.unwrap().unwrap();
    assert_eq!(exit.code, 5);
    // A stale handle still gets the status from exit.json.
    assert_eq!(again.wait().await.unwrap().code, 5);
}

async fn tty_output_and_resize(runtime: RuntimeKind) {
    let mut container = TestContainer::with(
        Options {
            runtime,
            tty: true,
            stdin: false,
            memory_limit: None,
        },
        &["sh", "-c", "tty; stty size"],
    );
    let client = container.launch().await.unwrap();
    client.resize(30, 100).await.unwrap();
    let (mut reader, _writer) = client
        .attach(AttachOptions {
            stdin: false,
            stdout: true,
            stderr: true,
        })
        .await
        .unwrap()
        .into_split();
    client.start().await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(STEP, reader.read_to_end(&mut raw))
        .await
        .expect("tty stream did not end")
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    assert!(text.contains("/dev/pts/0"), "{text:?}");
    assert!(text.contains("30 100"), "{text:?}");
    assert_eq!(wait(&client).await.code, 0);
    let logged: String = container
        .log_lines()
        .into_iter()
        .map(|(_, line)| line)
        .collect();
    assert!(logged.contains("30 100"), "{logged:?}");
}

async fn pause_and_resume(runtime: RuntimeKind) {
    // As pid 1 of its namespace, the shell only dies of SIGTERM through its trap.
    let mut container = TestContainer::new(
        runtime,
        &[
            "sh",
            "-c",
            "trap 'exit 42' TERM; while true; do sleep 0.1; done",
        ],
    );
    let client = container.launch().await.unwrap();
    client.start().await.unwrap();
    client.pause().await.unwrap();
    assert_eq!(
        client.state().await.unwrap().status,
        ContainerStatus::Paused
    );
    client.resume().await.unwrap();
    assert_eq!(
        client.state().await.unwrap().status,
        ContainerStatus::Running
    );
    client.kill(15, false).await.unwrap();
    assert_eq!(wait(&client).await.code, 42);
    assert!(matches!(
        client.kill(9, false).await,
        Err(ShimError::NotRunning(_) | ShimError::Gone { .. })
    ));
}

async fn oom_kill_is_reported(runtime: RuntimeKind) {
    let mut container = TestContainer::with(
        Options {
            runtime,
            tty: false,
            stdin: false,
            memory_limit: Some(16 * 1024 * 1024),
        },
        &[
            "sh",
            "-c",
            "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived",
        ],
    );
    let client = container.launch().await.unwrap();
    client.start().await.unwrap();
    let exit = wait(&client).await;
    assert!(exit.oom_killed, "{exit:?}");
    assert_eq!(exit.code, 137, "{exit:?}");
}

macro_rules! battery {
    ($backend:ident, $kind:expr) => {
        mod $backend {
            use super::*;

            #[tokio::test]
            #[ignore = "needs root: runs containers"]
            async fn output_reaches_log_and_attach() {
                super::output_reaches_log_and_attach($kind).await;
            }

            #[tokio::test]
            #[ignore = "needs root: runs containers"]
            async fn exit_code_is_reported() {
                super::exit_code_is_reported($kind).await;
            }

            #[tokio::test]
            #[ignore = "needs root: runs containers"]
            async fn start_at_launch_runs_without_a_start_request() {
                super::start_at_launch_runs_without_a_start_request($kind).await;
            }

            #[tokio::test]
            #[ignore = "needs root: runs containers"]
            async fn sigkill_gives_137() {
                super::sigkill_gives_137($kind).await;
            }

            #[tokio::test]
            #[ignore = "needs root: runs containers"]
            async fn missing_binary_fails_like_docker() {
                super::missing_binary_fails_like_docker($kind).await;
            }

            #[tokio::test]
            #[ignore = "needs root: runs containers"]
            async fn stdin_eof_reaches_cat() {
                super::stdin_eof_reaches_cat($kind).await;
            }

            #[tokio::test]
            #[ignore = "needs root: runs containers"]
            async fn reconnect_after_client_drop() {
                super::reconnect_after_client_drop($kind).await;
            }

            #[tokio::test]
            #[ignore = "needs root: runs containers"]
            async fn tty_output_and_resize() {
                super::tty_output_and_resize($kind).await;
            }

            #[tokio::test]
            #[ignore = "needs root: runs containers"]
            async fn oom_kill_is_reported() {
                super::oom_kill_is_reported($kind).await;
            }

            #[tokio::test]
            #[ignore = "needs root: runs containers"]
            async fn pause_and_resume() {
                super::pause_and_resume($kind).await;
            }
        }
    };
}

battery!(libcontainer, RuntimeKind::Libcontainer);
battery!(runc, RuntimeKind::Runc);

#[tokio::test]
#[ignore = "needs root: runs containers"]
async fn thirty_short_libcontainer_containers_neither_hang_nor_leave_zombies() {
    require_root();
    let me = Pid::new(i32::try_from(std::process::id()).unwrap()).unwrap();
    let mut shims = Vec::new();
    for round in 0..30 {
        let mut container =
            TestContainer::new(RuntimeKind::Libcontainer, &["sh", "-c", "echo round; true"]);
        let client = container.launch().await.unwrap();
        client.start().await.unwrap();
        let exit = wait(&client).await;
        assert_eq!(exit.code, 0, "round {round}");
        // While the shim lingers, its children must all have been reaped.
        assert!(zombies_of(&[client.shim_pid()]).is_empty(), "round {round}");
        shims.push(client.shim_pid());
        assert_eq!(container.log_lines().len(), 1, "round {round}");
    }
    let deadline = tokio::time::Instant::now() + STEP;
    while shims.iter().any(|pid| running(*pid)) {
        assert!(tokio::time::Instant::now() < deadline, "a shim hung");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut parents = shims.clone();
    parents.push(me);
    assert_eq!(zombies_of(&parents), Vec::<String>::new());
}
