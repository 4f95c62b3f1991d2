//! docker-py 7.1 against the engine under test: the pytest suite in tests/python/dockerpy,
//! run in a private venv (tests/python/setup-venv: docker==7.1.0 and pytest from PyPI).
//! Known gaps are strict `xfail`s there, so the suite fails when one starts to pass.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use corral_testkit::{run_with_timeout, BusyboxImage, ManifestFormat, Output};

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
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    if let Ok(filter) = std::env::var("CORRAL_PYTEST_K") {
        cmd.args(["-k", &filter]);
    }
    for var in ["DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT"] {
        cmd.env_remove(var);
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
