//! The engine a Docker-compatibility test talks to, picked by `CORRAL_TEST_SUBJECT`, and the
//! docker CLI helpers that drive it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tempfile::TempDir;

use crate::daemon::{DaemonOptions, RefDockerd, TestDaemon};
use crate::process::{run_with_timeout, Output};

/// The docker CLI 28 binary.
pub const DOCKER_CLI: &str = "/usr/local/bin/docker";
/// The docker CLI 20.10 binary from Debian's docker.io.
pub const DOCKER20_CLI: &str = "/usr/bin/docker";

/// Default deadline of one docker CLI invocation.
pub const DOCKER_TIMEOUT: Duration = Duration::from_secs(180);

/// Which engine the compatibility suite runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubjectKind {
    /// `corral server` (the default).
    Corral,
    /// A private reference dockerd.
    Docker,
}

impl SubjectKind {
    /// Reads `CORRAL_TEST_SUBJECT` (`corral` when unset).
    ///
    /// # Errors
    /// On any other value.
    pub fn from_env() -> Result<Self> {
        match std::env::var("CORRAL_TEST_SUBJECT") {
            Err(_) => Ok(SubjectKind::Corral),
            Ok(v) => match v.as_str() {
                "" | "corral" => Ok(SubjectKind::Corral),
                "docker" => Ok(SubjectKind::Docker),
                other => bail!("CORRAL_TEST_SUBJECT={other:?}: expected `corral` or `docker`"),
            },
        }
    }
}

#[derive(Debug)]
enum Engine {
    Corral(TestDaemon),
    Docker(RefDockerd),
}

/// A started engine plus a private docker CLI config directory.
#[derive(Debug)]
pub struct Subject {
    kind: SubjectKind,
    // Dropped first: nothing else refers to it.
    docker_config: TempDir,
    engine: Engine,
}

impl Subject {
    /// Starts the engine chosen by `CORRAL_TEST_SUBJECT`, trusting `insecure_registries`.
    ///
    /// # Errors
    /// When the variable is invalid or the engine fails to start.
    pub fn start(insecure_registries: &[String]) -> Result<Self> {
        Self::start_kind(SubjectKind::from_env()?, insecure_registries)
    }

    /// Starts the given engine.
    ///
    /// # Errors
    /// When the engine fails to start.
    pub fn start_kind(kind: SubjectKind, insecure_registries: &[String]) -> Result<Self> {
        let docker_config = tempfile::Builder::new()
            .prefix("corral-cli-")
            .tempdir()
            .context("docker config dir")?;
        let engine = match kind {
            SubjectKind::Corral => Engine::Corral(TestDaemon::start(DaemonOptions {
                insecure_registries: insecure_registries.to_vec(),
                ..DaemonOptions::default()
            })?),
            SubjectKind::Docker => Engine::Docker(RefDockerd::start(insecure_registries)?),
        };
        Ok(Subject {
            kind,
            docker_config,
            engine,
        })
    }

    /// Starts `corral server` with `opts` (extra listeners, flags), whatever
    /// `CORRAL_TEST_SUBJECT` says: for tests of Corral's own daemon options.
    ///
    /// # Errors
    /// When the daemon fails to start.
    pub fn start_corral(opts: DaemonOptions) -> Result<Self> {
        let docker_config = tempfile::Builder::new()
            .prefix("corral-cli-")
            .tempdir()
            .context("docker config dir")?;
        Ok(Subject {
            kind: SubjectKind::Corral,
            docker_config,
            engine: Engine::Corral(TestDaemon::start(opts)?),
        })
    }

    /// Which engine this is.
    pub fn kind(&self) -> SubjectKind {
        self.kind
    }

    /// The Corral daemon under test, `None` for the reference dockerd.
    pub fn corral(&mut self) -> Option<&mut TestDaemon> {
        match &mut self.engine {
            Engine::Corral(d) => Some(d),
            Engine::Docker(_) => None,
        }
    }

    /// `unix:///.../docker.sock`, for `DOCKER_HOST`.
    pub fn docker_host(&self) -> String {
        match &self.engine {
            Engine::Corral(d) => d.docker_host(),
            Engine::Docker(d) => d.docker_host(),
        }
    }

    /// The API socket path.
    pub fn socket(&self) -> PathBuf {
        match &self.engine {
            Engine::Corral(d) => d.socket(),
            Engine::Docker(d) => d.socket(),
        }
    }

    /// The private `DOCKER_CONFIG` directory the CLI helpers use (credentials from
    /// `docker login` land here, never in `~/.docker`).
    pub fn docker_config_dir(&self) -> &Path {
        self.docker_config.path()
    }

    /// The end of the engine's log.
    pub fn log_tail(&self) -> String {
        match &self.engine {
            Engine::Corral(d) => d.log_tail(),
            Engine::Docker(d) => d.log_tail(),
        }
    }

    /// A `Command` for `cli` with `DOCKER_HOST` and `DOCKER_CONFIG` pointing at this subject
    /// and every other docker variable removed.
    pub fn command(&self, cli: &str) -> Command {
        let mut cmd = Command::new(cli);
        for var in [
            "DOCKER_CONTEXT",
            "DOCKER_TLS_VERIFY",
            "DOCKER_CERT_PATH",
            "DOCKER_API_VERSION",
            "DOCKER_DEFAULT_PLATFORM",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("DOCKER_HOST", self.docker_host())
            .env("DOCKER_CONFIG", self.docker_config.path())
            .env("DOCKER_CLI_HINTS", "false");
        cmd
    }
}

/// Options for [`docker_with`].
#[derive(Debug, Clone, Default)]
pub struct DockerOpts<'a> {
    /// Bytes piped to the CLI's stdin (otherwise `/dev/null`).
    pub stdin: Option<&'a [u8]>,
    /// Deadline; [`DOCKER_TIMEOUT`] when `None`.
    pub timeout: Option<Duration>,
    /// CLI binary; [`DOCKER_CLI`] when `None`.
    pub cli: Option<&'a str>,
}

/// Runs `docker ARGS` (CLI 28) against `subject`.
///
/// # Panics
/// When the CLI cannot be started (a broken test environment, not a test failure).
pub fn docker(subject: &Subject, args: &[&str]) -> Output {
    docker_with(subject, args, DockerOpts::default())
}

/// Runs `docker ARGS` with stdin, a custom timeout or another CLI binary.
///
/// # Panics
/// When the CLI cannot be started.
pub fn docker_with(subject: &Subject, args: &[&str], opts: DockerOpts<'_>) -> Output {
    let cli = opts.cli.unwrap_or(DOCKER_CLI);
    let mut cmd = subject.command(cli);
    cmd.args(args);
    match run_with_timeout(cmd, opts.stdin, opts.timeout.unwrap_or(DOCKER_TIMEOUT)) {
        Ok(out) => out,
        Err(e) => panic!("cannot run {cli}: {e:#}"),
    }
}

/// Runs `docker ARGS` with the 20.10 CLI, or returns `None` when it is not installed.
///
/// # Panics
/// When the CLI exists but cannot be started.
pub fn docker20(subject: &Subject, args: &[&str]) -> Option<Output> {
    if !Path::new(DOCKER20_CLI).exists() {
        return None;
    }
    Some(docker_with(
        subject,
        args,
        DockerOpts {
            cli: Some(DOCKER20_CLI),
            ..DockerOpts::default()
        },
    ))
}
