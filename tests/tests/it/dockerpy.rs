//! docker-py 7.1 against the engine under test: the pytest suite in tests/python/dockerpy,
//! run in a private venv (tests/python/setup-venv: docker==7.1.0 and pytest from PyPI).
//! Known gaps are strict `xfail`s there, so the suite fails when one starts to pass.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use corral_testkit::{
    free_port, run_with_timeout, BusyboxImage, DaemonOptions, ManifestFormat, Output, Subject,
    TestPki,
};

use crate::common::Env;

/// The workspace's tests/ directory.
fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// Creates (once per requirements change) and returns the venv with docker-py and pytest.
pub(crate) fn python_venv() -> PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pyvenv-dockerpy");
    let mut cmd = Command::new("bash");
    cmd.arg(tests_dir().join("python/setup-venv")).arg(&venv);
    let out = run_with_timeout(cmd, None, Duration::from_secs(600)).expect("run setup-venv");
    assert!(out.success(), "creating the docker-py venv failed: {out}");
    venv
}

/// Runs pytest on `target` (relative to tests/python) against `env`'s engine.
pub(crate) fn pytest(env: &Env, target: &str, extra_env: &[(&str, &str)]) -> Output {
    let venv = python_venv();
    let mut cmd = Command::new(venv.join("bin/python"));
    cmd.current_dir(tests_dir().join("python"))
        .args([
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-rxXfE",
            "-v",
            target,
        ])
        .env("DOCKER_HOST", env.subject.docker_host())
        .env("DOCKER_CONFIG", env.subject.docker_config_dir())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env(
            "CORRAL_TEST_SUBJECT",
            match env.subject.kind() {
                corral_testkit::SubjectKind::Docker => "docker",
                _ => "corral",
            },
        )
        .env("CORRAL_TEST_IMAGE", &env.image);
    // requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override docker-py's own CA (its
    // session `verify`), which would break the TLS run on hosts that set them.
    for var in [
        "DOCKER_TLS_VERIFY",
        "DOCKER_CERT_PATH",
        "DOCKER_CONTEXT",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    if let Ok(filter) = std::env::var("CORRAL_PYTEST_K") {
        cmd.args(["-k", &filter]);
    }
    run_with_timeout(cmd, None, Duration::from_secs(900)).expect("run pytest")
}

#[test]
#[ignore = "needs root: starts a registry and the engine under test"]
fn docker_py_suite() {
    let env = Env::new();
    // A second image, in the registry only, for the pull test.
    let pull = env.push(
        BusyboxImage::new().label("corral.test", "dockerpy-pull"),
        "dockerpy/busybox:pull",
        ManifestFormat::Oci,
    );
    let out = pytest(&env, "dockerpy", &[("CORRAL_TEST_PULL_IMAGE", &pull)]);
    println!("{}", out.stdout);
    eprintln!("{}", out.stderr);
    assert!(
        out.success(),
        "the docker-py suite failed (exit {:?}); see the output above",
        out.code
    );
    assert!(
        out.stdout.contains(" passed") || out.stdout.contains(" xfailed"),
        "pytest ran no test:\n{}",
        out.stdout
    );
}

/// The whole suite again over TCP with TLS and a client certificate: hijacked attach and
/// exec streams, chunked logs and events through rustls. Corral only (a daemon option).
#[test]
#[ignore = "needs root: starts a registry and corral server"]
fn docker_py_suite_over_tls() {
    let pki = TestPki::generate().expect("generate certificates");
    let port = free_port().expect("free port");
    let server = pki.server();
    let env = Env::new_with(|registries| {
        Subject::start_corral(DaemonOptions {
            insecure_registries: registries.to_vec(),
            hosts: vec![format!("tcp://127.0.0.1:{port}")],
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
    });
    // docker-py reads ca.pem, cert.pem and key.pem from DOCKER_CERT_PATH.
    let certs = tempfile::tempdir().expect("cert dir");
    let client = pki.client();
    for (from, to) in [
        (pki.ca(), "ca.pem"),
        (client.cert.clone(), "cert.pem"),
        (client.key.clone(), "key.pem"),
    ] {
        std::fs::copy(&from, certs.path().join(to)).expect("copy certificate");
    }
    let pull = env.push(
        BusyboxImage::new().label("corral.test", "dockerpy-pull"),
        "dockerpy/busybox:pull",
        ManifestFormat::Oci,
    );
    let host = format!("tcp://127.0.0.1:{port}");
    let cert_path = certs.path().display().to_string();
    let out = pytest(
        &env,
        "dockerpy",
        &[
            ("CORRAL_TEST_PULL_IMAGE", &pull),
            ("DOCKER_HOST", &host),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", &cert_path),
        ],
    );
    println!("{}", out.stdout);
    eprintln!("{}", out.stderr);
    assert!(
        out.success(),
        "the docker-py suite over TLS failed (exit {:?})",
        out.code
    );
    assert!(
        out.stdout.contains(" passed"),
        "pytest ran no test:\n{}",
        out.stdout
    );
}
