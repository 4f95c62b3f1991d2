//! Where the API listens: `-H` unix and TCP listeners, TLS with client-certificate
//! verification (the real docker CLI with `--tlsverify`), plain TCP only on loopback, and
//! the unix socket's group. Corral-only: these are daemon flags, not API behaviour.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;
use std::time::Duration;

use corral_testkit::{
    corral_bin, free_port, init_tracing, require_root, run_with_timeout, BusyboxImage,
    DaemonOptions, ManifestFormat, Output, Registry, TestDaemon, TestPki, DOCKER_CLI,
};

use crate::common::assert_contains;

/// The docker CLI with only the given flags (no `DOCKER_*` from the environment).
fn docker_cli(args: &[&str]) -> Output {
    let config = tempfile::tempdir().expect("docker config dir");
    let mut cmd = Command::new(DOCKER_CLI);
    for var in [
        "DOCKER_HOST",
        "DOCKER_CONTEXT",
        "DOCKER_TLS_VERIFY",
        "DOCKER_CERT_PATH",
        "DOCKER_API_VERSION",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("DOCKER_CONFIG", config.path()).args(args);
    run_with_timeout(cmd, None, Duration::from_secs(60)).expect("run the docker CLI")
}

fn tls_daemon(pki: &TestPki, port: u16, verify: bool) -> TestDaemon {
    let server = pki.server();
    let mut extra_args = vec![
        if verify { "--tlsverify" } else { "--tls" }.to_owned(),
        "--tlscert".to_owned(),
        server.cert.display().to_string(),
        "--tlskey".to_owned(),
        server.key.display().to_string(),
    ];
    if verify {
        extra_args.extend(["--tlscacert".to_owned(), pki.ca().display().to_string()]);
    }
    TestDaemon::start(DaemonOptions {
        hosts: vec![format!("tcp://127.0.0.1:{port}")],
        extra_args,
        ..DaemonOptions::default()
    })
    .expect("start corral with a TLS listener")
}

#[test]
#[ignore = "needs root: starts corral server"]
fn docker_cli_with_tlsverify_reaches_the_tcp_listener() {
    require_root();
    init_tracing();
    let pki = TestPki::generate().unwrap();
    let port = free_port().unwrap();
    let daemon = tls_daemon(&pki, port, true);
    let host = format!("tcp://127.0.0.1:{port}");
    let ca = pki.ca().display().to_string();
    let client = pki.client();
    let (cert, key) = (
        client.cert.display().to_string(),
        client.key.display().to_string(),
    );
    let tls = [
        "--tlsverify",
        "--tlscacert",
        &ca,
        "--tlscert",
        &cert,
        "--tlskey",
        &key,
        "-H",
        &host,
    ];
    let format = [
        "version",
        "--format",
        "{{.Server.Os}} {{.Server.APIVersion}}",
    ];
    let version = docker_cli(&[&tls[..], &format[..]].concat());
    // The unix socket given first still serves, and both are the same daemon.
    let unix = docker_cli(&[&["-H", daemon.docker_host().as_str()][..], &format[..]].concat());
    assert_eq!(version.ok().out(), unix.ok().out());
    assert!(version.out().starts_with("linux 1."), "{version}");
    let ps = docker_cli(&[&tls[..], &["ps", "-a"]].concat());
    assert_contains(ps.ok().out(), "CONTAINER ID");
}

#[test]
#[ignore = "needs root: starts a registry and corral server"]
fn docker_cli_over_tls_pulls_runs_and_half_closes_stdin() {
    require_root();
    init_tracing();
    let registry = Registry::start().unwrap();
    let layout = BusyboxImage::new().build_temp().unwrap();
    let image = registry
        .push_oci_layout(layout.dir(), "busybox:tls", ManifestFormat::Oci)
        .unwrap();
    let pki = TestPki::generate().unwrap();
    let port = free_port().unwrap();
    let server = pki.server();
    let daemon = TestDaemon::start(DaemonOptions {
        hosts: vec![format!("tcp://127.0.0.1:{port}")],
        insecure_registries: vec![registry.host()],
        extra_args: vec![
            "--tlsverify".into(),
            "--tlscacert".into(),
            pki.ca().display().to_string(),
            "--tlscert".into(),
            server.cert.display().to_string(),
            "--tlskey".into(),
            server.key.display().to_string(),
        ],
        ..DaemonOptions::default()
    })
    .unwrap();
    let host = format!("tcp://127.0.0.1:{port}");
    let ca = pki.ca().display().to_string();
    let client = pki.client();
    let (cert, key) = (
        client.cert.display().to_string(),
        client.key.display().to_string(),
    );
    let tls = [
        "--tlsverify",
        "--tlscacert",
        &ca,
        "--tlscert",
        &cert,
        "--tlskey",
        &key,
        "-H",
        &host,
    ];
    // The pull's progress stream, then an attached run whose stdin ends with the client's
    // TLS close_notify: the container must see EOF and its output must still arrive.
    docker_cli(&[&tls[..], &["pull", &image]].concat()).ok();
    let mut cmd = Command::new(DOCKER_CLI);
    cmd.env_remove("DOCKER_HOST")
        .args(tls)
        .args(["run", "-i", "--rm", "--network", "none", &image, "sh", "-c"])
        .arg("cat; echo done; exit 3");
    let out = run_with_timeout(cmd, Some(b"over tls\n"), Duration::from_secs(60)).unwrap();
    assert_eq!(out.code, Some(3), "{out}");
    assert_eq!(out.stdout, "over tls\ndone\n");
    let logs = docker_cli(
        &[
            &tls[..],
            &[
                "run",
                "-d",
                "--network",
                "none",
                &image,
                "sh",
                "-c",
                "echo a; echo b >&2",
            ],
        ]
        .concat(),
    );
    let id = logs.ok().out().to_owned();
    docker_cli(&[&tls[..], &["wait", &id]].concat()).ok();
    let out = docker_cli(&[&tls[..], &["logs", &id]].concat());
    assert_eq!(
        (out.ok().stdout.as_str(), out.stderr.as_str()),
        ("a\n", "b\n")
    );
    docker_cli(&[&tls[..], &["rm", "-f", &id]].concat()).ok();
    drop(daemon);
}

#[test]
#[ignore = "needs root: starts corral server"]
fn tlsverify_refuses_clients_without_a_certificate_from_its_ca() {
    require_root();
    init_tracing();
    let pki = TestPki::generate().unwrap();
    let port = free_port().unwrap();
    let daemon = tls_daemon(&pki, port, true);
    let host = format!("tcp://127.0.0.1:{port}");
    let ca = pki.ca().display().to_string();
    // No client certificate at all: the handshake fails.
    let none = docker_cli(&["--tls", "--tlscacert", &ca, "-H", &host, "version"]);
    none.failed();
    assert!(
        !none.stdout.contains("API version:") || !none.stdout.contains("Server:"),
        "{none}"
    );
    assert_contains(&none.stderr, "certificate");
    // A certificate signed by another CA is refused too.
    let stranger = pki.stranger();
    let (cert, key) = (
        stranger.cert.display().to_string(),
        stranger.key.display().to_string(),
    );
    let other = docker_cli(&[
        "--tlsverify",
        "--tlscacert",
        &ca,
        "--tlscert",
        &cert,
        "--tlskey",
        &key,
        "-H",
        &host,
        "ps",
    ]);
    other.failed();
    assert_contains(&other.stderr, "certificate");
    // Plain HTTP on the TLS port gets no API answer.
    let plain = docker_cli(&["-H", &host, "ps"]);
    plain.failed();
    // The refusals are logged and the daemon keeps serving good clients.
    let client = pki.client();
    let (cert, key) = (
        client.cert.display().to_string(),
        client.key.display().to_string(),
    );
    docker_cli(&[
        "--tlsverify",
        "--tlscacert",
        &ca,
        "--tlscert",
        &cert,
        "--tlskey",
        &key,
        "-H",
        &host,
        "ps",
    ])
    .ok();
    assert_contains(&daemon.log_tail(), "TLS handshake refused");
}

#[test]
#[ignore = "needs root: starts corral server"]
fn tls_without_verify_serves_clients_without_certificates() {
    require_root();
    init_tracing();
    let pki = TestPki::generate().unwrap();
    let port = free_port().unwrap();
    let _daemon = tls_daemon(&pki, port, false);
    let host = format!("tcp://127.0.0.1:{port}");
    let ca = pki.ca().display().to_string();
    let out = docker_cli(&["--tlsverify", "--tlscacert", &ca, "-H", &host, "ps", "-q"]);
    out.ok();
}

#[test]
#[ignore = "needs root: starts corral server"]
fn plain_tcp_is_served_on_loopback_with_a_warning_and_refused_elsewhere() {
    require_root();
    init_tracing();
    let port = free_port().unwrap();
    let daemon = TestDaemon::start(DaemonOptions {
        hosts: vec![format!("tcp://127.0.0.1:{port}")],
        ..DaemonOptions::default()
    })
    .unwrap();
    let host = format!("tcp://127.0.0.1:{port}");
    docker_cli(&["-H", &host, "ps"]).ok();
    assert_contains(&daemon.log_tail(), "plain TCP without TLS");
    drop(daemon);

    // Any other address without TLS: the daemon exits before touching anything.
    let root = tempfile::Builder::new()
        .prefix("corral-h-")
        .tempdir_in("/tmp")
        .unwrap();
    let mut cmd = Command::new(corral_bin().unwrap());
    cmd.arg("server")
        .arg("--data-dir")
        .arg(root.path().join("d"))
        .arg("--run-dir")
        .arg(root.path().join("r"))
        .args([
            "--instance",
            "tcprefused",
            "-H",
            &format!("tcp://0.0.0.0:{port}"),
        ]);
    let out = run_with_timeout(cmd, None, Duration::from_secs(30)).unwrap();
    out.failed();
    assert_contains(
        &out.stderr,
        &format!("refusing to listen on tcp://0.0.0.0:{port} without TLS"),
    );
    assert!(!root.path().join("d").exists(), "state was created");
    assert!(!root.path().join("r").exists(), "run dir was created");
}

#[test]
#[ignore = "needs root: starts corral server"]
fn unix_socket_gets_the_configured_group_and_mode() {
    require_root();
    init_tracing();
    let daemon = TestDaemon::start(DaemonOptions {
        extra_args: vec!["--group".into(), "nogroup".into()],
        ..DaemonOptions::default()
    })
    .unwrap();
    let meta = std::fs::metadata(daemon.socket()).unwrap();
    assert_eq!(meta.gid(), 65534, "socket group");
    assert_eq!(meta.uid(), 0, "socket owner");
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    drop(daemon);

    // Without --group only root's group owns it.
    let daemon = TestDaemon::start(DaemonOptions::default()).unwrap();
    let meta = std::fs::metadata(daemon.socket()).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (0, 0));
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    drop(daemon);

    // An unknown group is a clear error.
    let root = tempfile::Builder::new()
        .prefix("corral-g-")
        .tempdir_in("/tmp")
        .unwrap();
    let mut cmd = Command::new(corral_bin().unwrap());
    cmd.arg("server")
        .arg("--data-dir")
        .arg(root.path().join("d"))
        .arg("--run-dir")
        .arg(root.path().join("r"))
        .args(["--instance", "nogrp", "--group", "no-such-group-corral"]);
    let out = run_with_timeout(cmd, None, Duration::from_secs(30)).unwrap();
    out.failed();
    assert_contains(&out.stderr, "--group no-such-group-corral: no such group");
}
