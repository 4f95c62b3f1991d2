//! Root tests of exec: processes started in running containers through a real shim and its
//! exec helper (`corral-test-shim shim --exec …`), with both runtime back ends.
// Helpers here are test code too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use corral_runtime::shim::{RuntimeKind, ShimClient, ShimError};
use corral_sys::process::Pid;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use support::*;

/// An OCI process running `args` as root in `/` with a minimal environment.
fn process(args: &[&str], tty: bool) -> Value {
    json!({
        "terminal": tty,
        "user": {"uid": 0, "gid": 0},
        "args": args,
        "env": ["PATH=/bin", "TERM=xterm"],
        "cwd": "/",
    })
}

/// A running `sleep` container and its shim.
async fn running_container(runtime: RuntimeKind) -> (TestContainer, ShimClient) {
    let mut container = TestContainer::new(runtime, &["sleep", "300"]);
    let client = container.launch().await.unwrap();
    client.start().await.unwrap();
    (container, client)
}

/// Runs a non-TTY exec to its end: stdout, stderr and exit code.
async fn run_exec(
    client: &ShimClient,
    exec_id: &str,
    process: &Value,
    input: Option<&[u8]>,
) -> (String, String, i32) {
    let exec = tokio::time::timeout(STEP, client.exec(exec_id, process, false, input.is_some()))
        .await
        .expect("exec start timed out")
        .unwrap();
    assert!(exec.pid().as_raw() > 0);
    let (mut reader, mut writer) = exec.into_split();
    if let Some(bytes) = input {
        writer.write_all(bytes).await.unwrap();
        writer.shutdown().await.unwrap();
    }
    let (stdout, stderr) = collect_frames(&mut reader).await;
    (stdout, stderr, exec_wait(client, exec_id).await)
}

async fn exec_wait(client: &ShimClient, exec_id: &str) -> i32 {
    tokio::time::timeout(STEP, client.exec_wait(exec_id))
        .await
        .expect("exec wait timed out")
        .unwrap()
}

/// Host pids whose parent is `parent`.
fn children_of(parent: Pid) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some(after) = stat.rfind(')').map(|index| &stat[index + 2..]) else {
            continue;
        };
        let ppid: i32 = after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        if ppid == parent.as_raw() {
            found.push(entry.file_name().to_string_lossy().parse().unwrap_or(0));
        }
    }
    found
}

async fn output_and_exit_codes(runtime: RuntimeKind) {
    let (_container, client) = running_container(runtime).await;
    let (stdout, stderr, code) = run_exec(
        &client,
        "out",
        &process(&["sh", "-c", "echo hello; echo oops >&2; echo bye"], false),
        None,
    )
    .await;
    assert_eq!(
        (stdout.as_str(), stderr.as_str(), code),
        ("hello\nbye\n", "oops\n", 0)
    );
    let (_, _, code) = run_exec(
        &client,
        "three",
        &process(&["sh", "-c", "exit 3"], false),
        None,
    )
    .await;
    assert_eq!(code, 3);
    let (_, _, code) = run_exec(
        &client,
        "killed",
        &process(&["sh", "-c", "kill -9 $$"], false),
        None,
    )
    .await;
    assert_eq!(code, 137);
    // The container itself is unaffected.
    assert_eq!(
        client.state().await.unwrap().status,
        corral_runtime::shim::ContainerStatus::Running
    );
}

async fn stdin_eof_reaches_cat(runtime: RuntimeKind) {
    let (_container, client) = running_container(runtime).await;
    let (stdout, stderr, code) = run_exec(
        &client,
        "cat",
        &process(&["cat"], false),
        Some(b"ping\npong\n"),
    )
    .await;
    assert_eq!(
        (stdout.as_str(), stderr.as_str(), code),
        ("ping\npong\n", "", 0)
    );
    // Without stdin the process reads /dev/null.
    let (stdout, _, code) = run_exec(&client, "null", &process(&["cat"], false), None).await;
    assert_eq!((stdout.as_str(), code), ("", 0));
}

async fn tty_and_resize(runtime: RuntimeKind) {
    let (_container, client) = running_container(runtime).await;
    let exec = client
        .exec(
            "tty",
            &process(&["sh", "-c", "tty; sleep 0.5; stty size"], true),
            true,
            false,
        )
        .await
        .unwrap();
    client.exec_resize("tty", 30, 100).await.unwrap();
    let (mut reader, _writer) = exec.into_split();
    let mut raw = Vec::new();
    tokio::time::timeout(STEP, reader.read_to_end(&mut raw))
        .await
        .expect("tty stream did not end")
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    assert!(text.contains("/dev/pts/"), "{text:?}");
    assert!(text.contains("30 100"), "{text:?}");
    assert_eq!(exec_wait(&client, "tty").await, 0);
    // A pipe exec has no terminal to resize.
    let (_, _, _) = run_exec(&client, "plain", &process(&["true"], false), None).await;
    assert!(matches!(
        client.exec_resize("plain", 1, 1).await,
        Err(ShimError::InvalidRequest(_))
    ));
}

async fn tty_stdin_is_forwarded(runtime: RuntimeKind) {
    let (_container, client) = running_container(runtime).await;
    let exec = client
        .exec("sh", &process(&["sh"], true), true, true)
        .await
        .unwrap();
    let (mut reader, mut writer) = exec.into_split();
    writer
        .write_all(b"echo marker-$((6*7))\nexit 5\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(STEP, reader.read_to_end(&mut raw))
        .await
        .expect("tty stream did not end")
        .unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(text.contains("marker-42"), "{text:?}");
    assert_eq!(exec_wait(&client, "sh").await, 5);
}

async fn missing_binary_fails_like_docker(runtime: RuntimeKind) {
    let (_container, client) = running_container(runtime).await;
    match client
        .exec("missing", &process(&["nosuch"], false), false, false)
        .await
    {
        Err(ShimError::ExecFailed(message)) => assert_eq!(
            message,
            r#"OCI runtime exec failed: exec failed: unable to start container process: exec: "nosuch": executable file not found in $PATH: unknown"#
        ),
        other => panic!("expected an exec failure, got {other:?}"),
    }
    // The failed session is not kept, and the container still runs execs.
    assert!(matches!(
        client.exec_wait("missing").await,
        Err(ShimError::InvalidRequest(_))
    ));
    let (stdout, _, code) =
        run_exec(&client, "after", &process(&["echo", "ok"], false), None).await;
    assert_eq!((stdout.as_str(), code), ("ok\n", 0));
}

async fn env_cwd_and_user_apply(runtime: RuntimeKind) {
    let (_container, client) = running_container(runtime).await;
    let spec = json!({
        "terminal": false,
        "user": {"uid": 1000, "gid": 1001, "additionalGids": [1002]},
        "args": ["sh", "-c", "echo $FOO; pwd; id -u; id -g; id -G"],
        "env": ["PATH=/bin", "FOO=bar"],
        "cwd": "/tmp",
    });
    let (stdout, stderr, code) = run_exec(&client, "who", &spec, None).await;
    assert_eq!(stderr, "");
    assert_eq!(stdout, "bar\n/tmp\n1000\n1001\n1001 1002\n");
    assert_eq!(code, 0);
}

async fn refuses_duplicate_ids_and_paused_containers(runtime: RuntimeKind) {
    let (_container, client) = running_container(runtime).await;
    let exec = client
        .exec("dup", &process(&["sleep", "1"], false), false, false)
        .await
        .unwrap();
    assert!(matches!(
        client
            .exec("dup", &process(&["true"], false), false, false)
            .await,
        Err(ShimError::InvalidRequest(_))
    ));
    drop(exec);
    assert_eq!(exec_wait(&client, "dup").await, 0);
    client.pause().await.unwrap();
    let paused = client
        .exec("frozen", &process(&["true"], false), false, false)
        .await;
    client.resume().await.unwrap();
    match paused {
        Err(ShimError::InvalidRequest(message)) => assert!(message.contains("paused"), "{message}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn exec_in_stopped_container_is_refused(runtime: RuntimeKind) {
    let mut container = TestContainer::new(runtime, &["sh", "-c", "exit 0"]);
    let client = container.launch().await.unwrap();
    // Created but not started.
    assert!(matches!(
        client
            .exec("early", &process(&["true"], false), false, false)
            .await,
        Err(ShimError::NotRunning(_))
    ));
    client.start().await.unwrap();
    assert_eq!(wait(&client).await.code, 0);
    assert!(matches!(
        client
            .exec("late", &process(&["true"], false), false, false)
            .await,
        Err(ShimError::NotRunning(_) | ShimError::Gone { .. })
    ));
}

async fn twenty_execs_are_reaped(runtime: RuntimeKind) {
    let (_container, client) = running_container(runtime).await;
    let shim = client.shim_pid();
    for round in 0..20 {
        let id = format!("round-{round}");
        let script = format!("echo {round}; exit {}", round % 4);
        let (stdout, _, code) = tokio::time::timeout(
            STEP,
            run_exec(&client, &id, &process(&["sh", "-c", &script], false), None),
        )
        .await
        .expect("exec hung");
        assert_eq!(stdout, format!("{round}\n"));
        assert_eq!(code, round % 4);
    }
    // Helpers and exec'd processes are all gone: the shim's only child is the init, and
    // nothing it parents is a zombie.
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let children = children_of(shim);
        let zombies = zombies_of(&[shim]);
        if children == [client.init_pid().as_raw()] && zombies.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "children {children:?}, zombies {zombies:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

macro_rules! battery {
    ($backend:ident, $kind:expr) => {
        mod $backend {
            use super::*;

            #[tokio::test]
            #[ignore = "needs root: runs containers"]
            async fn output_and_exit_codes() {
                super::output_and_exit_codes($kind).await;
            }

            #[tokio::test]
            #[ignore = "needs root: runs containers"]
            async fn stdin_eof_reaches_cat() {
                super::stdin_eof_reaches_cat($kind).await;
            }

            #[tokio::test]
            #[ignore = "needs root: runs containers"]
            async fn tty_and_resize() {
                super::tty_and_resize($kind).await;
            }

            #[tokio::test]
            #[ignore = "needs root: runs containers"]
            async fn tty_stdin_is_forwarded() {
                super::tty_stdin_is_forwarded($kind).await;
            }

            #[tokio::test]
            #[ignore = "needs root: runs containers"]
            async fn missing_binary_fails_like_docker() {
                super::missing_binary_fails_like_docker($kind).await;
            }

            #[tokio::test]
            #[ignore = "needs root: runs containers"]
            async fn env_cwd_and_user_apply() {
                super::env_cwd_and_user_apply($kind).await;
            }

            #[tokio::test]
            #[ignore = "needs root: runs containers"]
            async fn refuses_duplicate_ids_and_paused_containers() {
                super::refuses_duplicate_ids_and_paused_containers($kind).await;
            }

            #[tokio::test]
            #[ignore = "needs root: runs containers"]
            async fn exec_in_stopped_container_is_refused() {
                super::exec_in_stopped_container_is_refused($kind).await;
            }

            #[tokio::test]
            #[ignore = "needs root: runs containers"]
            async fn twenty_execs_are_reaped() {
                super::twenty_execs_are_reaped($kind).await;
            }
        }
    };
}

battery!(libcontainer, RuntimeKind::Libcontainer);
battery!(runc, RuntimeKind::Runc);
