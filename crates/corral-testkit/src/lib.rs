//! Test support for Corral; a dev-dependency only, never linked into shipped code.
//!
//! - [`BusyboxImage`]: deterministic OCI image layouts built from the host's static busybox.
//! - [`Registry`]: a throw-away `docker-registry` on 127.0.0.1 with skopeo pushes.
//! - [`TestDaemon`] / [`RefDockerd`] / [`Subject`]: the engine under test (`corral server`
//!   or a private reference dockerd, chosen by `CORRAL_TEST_SUBJECT`), stopped and swept in
//!   `Drop`.
//! - [`docker`] / [`docker20`]: the docker CLI with `DOCKER_HOST` set and a deadline.
//! - [`require_root`], [`assert_eventually!`], [`init_tracing`].
//!
//! Everything a helper creates lives under its own temporary directory and cgroup name, so
//! tests can run in parallel and never touch the host's own engines.

#![forbid(unsafe_code)]

mod daemon;
mod image;
mod process;
mod registry;
mod subject;
mod sweep;

use std::time::Duration;

pub use daemon::{corral_bin, unique_instance, DaemonOptions, RefDockerd, TestDaemon, DOCKERD_BIN};
pub use image::{
    sha256_digest, BusyboxImage, Compression, Healthcheck, ImageConfig, LayerBuilder, LayerInfo,
    OciLayout, DEFAULT_APPLETS, DEFAULT_PATH, FIXED_CREATED, FIXED_MTIME, HOST_BUSYBOX,
    MEDIA_TYPE_CONFIG, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST,
};
pub use process::{http_get_tcp, http_get_unix, http_request_unix, run_with_timeout, Output};
pub use registry::{free_port, ManifestFormat, Registry, REGISTRY_BIN, SKOPEO_BIN};
pub use subject::{
    docker, docker20, docker_with, DockerOpts, Subject, SubjectKind, DOCKER20_CLI, DOCKER_CLI,
    DOCKER_TIMEOUT,
};
pub use sweep::Sweep;

/// Panics unless the effective uid is 0. Call it first in every privileged test, so such a
/// test can never pass without doing its work.
///
/// # Panics
/// When not running as root.
#[track_caller]
pub fn require_root() {
    let euid = nix::unistd::geteuid();
    assert!(
        euid.is_root(),
        "this test needs root (euid is {euid}); run it as root with `-- --include-ignored`"
    );
}

/// How long [`assert_eventually!`] waits: `CORRAL_TEST_PATIENCE_MS` or 20 s.
pub fn patience() -> Duration {
    std::env::var("CORRAL_TEST_PATIENCE_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_millis)
        .unwrap_or(Duration::from_secs(20))
}

/// Installs a test tracing subscriber (filter from `CORRAL_LOG`, default `warn`) once per
/// process; later calls do nothing.
pub fn init_tracing() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_env("CORRAL_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}

/// Polls a boolean expression every 50 ms until it is true, panicking after [`patience()`].
///
/// Blocks the calling thread: in async tests run it inside `spawn_blocking`, or poll with
/// `tokio::time` yourself.
///
/// ```
/// let mut n = 0;
/// corral_testkit::assert_eventually!({ n += 1; n > 3 }, "n stuck at {}", n);
/// ```
#[macro_export]
macro_rules! assert_eventually {
    ($cond:expr $(,)?) => {
        $crate::assert_eventually!($cond, "condition `{}` never held", stringify!($cond))
    };
    ($cond:expr, $($arg:tt)+) => {{
        let patience = $crate::patience();
        if !$crate::poll_until(patience, || $cond) {
            panic!("after {:?}: {}", patience, format!($($arg)+));
        }
    }};
}

/// Calls `cond` every 50 ms until it returns true (then `true`) or `patience` has passed
/// (then `false`). The engine of [`assert_eventually!`].
pub fn poll_until(patience: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = tokio::time::Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > patience {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assert_eventually_returns_once_condition_holds() {
        let mut n = 0;
        assert_eventually!(
            {
                n += 1;
                n >= 3
            },
            "n = {n}"
        );
        assert_eq!(n, 3);
    }

    #[test]
    fn poll_until_gives_up_after_patience() {
        let mut calls = 0;
        let held = poll_until(Duration::from_millis(120), || {
            calls += 1;
            false
        });
        assert!(!held);
        assert!(calls >= 2, "polled {calls} times");
    }

    #[test]
    fn unique_instances_differ() {
        let a = unique_instance();
        let b = unique_instance();
        assert_ne!(a, b);
        assert!(a.len() < 24, "{a}");
    }

    #[test]
    fn subject_defaults_to_corral() {
        // The suite itself never sets the variable; only assert the parse of the current value.
        let kind = SubjectKind::from_env().unwrap();
        match std::env::var("CORRAL_TEST_SUBJECT").as_deref() {
            Ok("docker") => assert_eq!(kind, SubjectKind::Docker),
            _ => assert_eq!(kind, SubjectKind::Corral),
        }
    }
}
