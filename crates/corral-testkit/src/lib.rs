//! Test support for Corral; a dev-dependency only, never linked into shipped code.
//!
//! - [`BusyboxImage`]: deterministic OCI image layouts built from the host's static busybox.
//! - [`Registry`]: a throw-away `docker-registry` on 127.0.0.1 with skopeo pushes.
//! - [`TestDaemon`] / [`RefDockerd`] / [`Subject`]: the engine under test (`corral server`
//!   or a private reference dockerd, chosen by `CORRAL_TEST_SUBJECT`), stopped and swept in
//!   `Drop`.
//! - [`docker`] / [`docker20`]: the docker CLI with `DOCKER_HOST` set and a deadline.
//! - [`TestPki`]: a CA with server and client certificates for TLS listener tests.
//! - [`known_gap`]: a test of behaviour Corral lacks, which fails once the gap closes.
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
mod tls;

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
pub use sweep::{mount_tmpfs, unmount_tmpfs, Sweep};
pub use tls::{CertFiles, TestPki};

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

/// Runs `body`, the test of a known gap: behaviour dockerd has and Corral does not have yet.
///
/// Against Corral (the default subject) `body` is expected to fail: its panic is caught and
/// reported with `reason`, and the test passes. If `body` succeeds the gap has closed and
/// this panics, so the list of gaps stays true: turn the test into an ordinary one. Against
/// the reference dockerd (`CORRAL_TEST_SUBJECT=docker`) `body` runs as an ordinary test and
/// must pass, which proves the expectation is Docker's behaviour.
///
/// `.ci/run` runs every test (`--include-ignored`), so a gap cannot simply be `#[ignore]`d:
/// it would run and fail. Set-up that must work on both engines belongs outside `body`.
///
/// # Panics
/// When the subject is Corral and `body` succeeds, or when the subject is dockerd and
/// `body` fails, or when `CORRAL_TEST_SUBJECT` is invalid.
#[track_caller]
pub fn known_gap(reason: &str, body: impl FnOnce()) {
    let kind = match SubjectKind::from_env() {
        Ok(k) => k,
        Err(e) => panic!("{e:#}"),
    };
    known_gap_on(kind, reason, body);
}

/// [`known_gap`] with the subject given explicitly.
///
/// # Panics
/// As [`known_gap`].
#[track_caller]
pub fn known_gap_on(kind: SubjectKind, reason: &str, body: impl FnOnce()) {
    if kind != SubjectKind::Corral {
        body();
        return;
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
    match outcome {
        Err(cause) => {
            let msg = cause
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| cause.downcast_ref::<&str>().copied())
                .unwrap_or("(non-string panic)");
            eprintln!("known gap, failing as expected: {reason}\n  failure: {msg}");
        }
        Ok(()) => panic!(
            "known gap now passes: {reason}. Remove the known_gap wrapper so the test guards the behaviour"
        ),
    }
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
    fn known_gap_passes_while_the_body_fails() {
        known_gap_on(SubjectKind::Corral, "not built yet", || {
            panic!("still missing");
        });
    }

    #[test]
    #[should_panic(expected = "known gap now passes: built meanwhile")]
    fn known_gap_fails_once_the_body_passes() {
        known_gap_on(SubjectKind::Corral, "built meanwhile", || {});
    }

    #[test]
    fn known_gap_runs_the_body_normally_against_dockerd() {
        let mut ran = false;
        known_gap_on(SubjectKind::Docker, "corral only", || ran = true);
        assert!(ran);
    }

    #[test]
    #[should_panic(expected = "dockerd disagrees")]
    fn known_gap_body_must_pass_against_dockerd() {
        known_gap_on(SubjectKind::Docker, "corral only", || {
            panic!("dockerd disagrees")
        });
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
