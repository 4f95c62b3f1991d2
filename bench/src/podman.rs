//! Podman (Debian `podman`) as a daemonless engine beside the others: every call is its own
//! `podman` process with a private `--root`, `--runroot` and `--tmpdir` under `/tmp`, the
//! cgroupfs manager and a private cgroup parent, so it never touches other podman state.
//!
//! Two host-specific adjustments, both stated in the report:
//! - runtime: `runc` through [`RUNTIME_WRAPPER`] (this binary under another name), which drops
//!   `process.rlimits` from the bundle before `runc create`. Podman as root always writes
//!   `RLIMIT_NOFILE`/`RLIMIT_NPROC` into the spec and runc applies them with `prlimit` on the
//!   container's init, which this host refuses (no `CAP_SYS_RESOURCE` in the benchmark's
//!   bounding set). Docker and Corral write no rlimits by default, so this makes the spec
//!   alike, at the cost of one extra exec per `runc create`. `crun` (Podman's first choice)
//!   refuses the hybrid cgroup layout of this host.
//! - log driver `k8s-file` (the journald default of some builds needs a journal).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use corral_testkit::Sweep;
use tempfile::TempDir;

use crate::engines::record_state;

/// The name under which this binary acts as Podman's OCI runtime (see the module docs).
pub(crate) const RUNTIME_WRAPPER: &str = "runc-norlimits";

/// The real runc the wrapper hands over to.
const RUNC: &str = "/usr/sbin/runc";

/// Where Podman is expected (Debian package `podman`).
pub(crate) const PODMAN: &str = "/usr/bin/podman";

/// Whether Podman is installed.
pub(crate) fn installed() -> bool {
    Path::new(PODMAN).exists()
}

/// What the docker-CLI-shaped calls of the steps need to become a `podman` call.
pub(crate) struct PodmanCli {
    global: Vec<String>,
    env: Vec<(String, PathBuf)>,
    cgroup_parent: String,
}

impl PodmanCli {
    /// `podman GLOBAL ARGS`, with the docker-only defaults of the steps translated: `run` and
    /// `create` get the private cgroup parent and log driver; `rm -f` stops without the 10 s
    /// grace period (docker's `rm -f` sends SIGKILL right away, Podman's waits for SIGTERM).
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(PODMAN);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.args(&self.global);
        let Some((&sub, rest)) = args.split_first() else {
            return cmd;
        };
        cmd.arg(sub);
        match sub {
            "run" | "create" => {
                cmd.arg("--cgroup-parent")
                    .arg(&self.cgroup_parent)
                    .args(["--log-driver", "k8s-file"]);
            }
            "rm" if rest.contains(&"-f") => {
                cmd.arg("--time=0");
            }
            _ => {}
        }
        cmd.args(rest);
        cmd
    }
}

/// The private Podman state; swept on drop.
pub(crate) struct PodmanState {
    root: Option<TempDir>,
    path: PathBuf,
    cgroup: String,
    cli: std::sync::Arc<PodmanCli>,
}

impl PodmanState {
    /// Lays out the private roots and config files; `registry` is the benchmark's insecure
    /// registry (`host:port`).
    pub(crate) fn new(registry: &str) -> Result<(Self, std::sync::Arc<PodmanCli>)> {
        let root = tempfile::Builder::new()
            .prefix("corral-bench-podman-")
            .tempdir_in("/tmp")
            .context("podman root")?;
        let path = root.path().to_path_buf();
        record_state(&format!("root {}", path.display()));
        let cgroup = format!("corral-bench-podman-{}", corral_testkit::unique_instance());
        record_state(&format!("cgroup {cgroup}"));
        let me = std::env::current_exe().context("path of the benchmark binary")?;
        let wrapper = path.join(RUNTIME_WRAPPER);
        std::os::unix::fs::symlink(&me, &wrapper).context("runtime wrapper link")?;
        let conf = path.join("containers.conf");
        std::fs::write(
            &conf,
            "[containers]\nlog_driver = \"k8s-file\"\n\n[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"none\"\n",
        )?;
        let registries = path.join("registries.conf");
        std::fs::write(
            &registries,
            format!("[[registry]]\nlocation = \"{registry}\"\ninsecure = true\n"),
        )?;
        // The run root and libpod's tmp dir on tmpfs, as `/run/containers` and `/run/libpod`
        // are on a default install: mounted last, once nothing else here can fail; the drop's
        // sweep (and the benchmark's backstop) detaches them as mounts below the root.
        for dir in ["run", "tmp"] {
            let dir = path.join(dir);
            std::fs::create_dir_all(&dir)?;
            if let Err(err) = corral_testkit::mount_tmpfs(&dir) {
                corral_testkit::unmount_tmpfs(&path.join("run"));
                return Err(err).with_context(|| format!("tmpfs on {}", dir.display()));
            }
        }
        let p = |s: &str| path.join(s).to_string_lossy().into_owned();
        let global = vec![
            "--root".into(),
            p("root"),
            "--runroot".into(),
            p("run"),
            "--tmpdir".into(),
            p("tmp"),
            "--volumepath".into(),
            p("volumes"),
            "--cgroup-manager".into(),
            "cgroupfs".into(),
            "--events-backend".into(),
            "none".into(),
            "--storage-driver".into(),
            "overlay".into(),
            "--runtime".into(),
            wrapper.to_string_lossy().into_owned(),
        ];
        let cli = std::sync::Arc::new(PodmanCli {
            global,
            env: vec![
                ("CONTAINERS_CONF".into(), conf),
                ("CONTAINERS_REGISTRIES_CONF".into(), registries),
            ],
            cgroup_parent: format!("/{cgroup}"),
        });
        Ok((
            PodmanState {
                root: Some(root),
                path,
                cgroup,
                cli: cli.clone(),
            },
            cli,
        ))
    }

    /// The private root (every conmon names it on its command line).
    pub(crate) fn root(&self) -> &Path {
        &self.path
    }

    /// The parent cgroup of its containers and conmons.
    pub(crate) fn cgroup(&self) -> &str {
        &self.cgroup
    }
}

impl Drop for PodmanState {
    fn drop(&mut self) {
        // Podman's own removal first (container storage mounts, conmons), then the sweep for
        // anything it left.
        let _ = self
            .cli
            .command(&["rm", "-a", "-f"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        let _ = self
            .cli
            .command(&["system", "reset", "-f"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        if let Some(root) = self.root.take() {
            Sweep {
                roots: vec![self.path.clone()],
                cgroup_name: self.cgroup.clone(),
                mountinfo: None,
            }
            .run();
            drop(root);
        }
    }
}

/// Entry point when this binary runs as [`RUNTIME_WRAPPER`]: removes `process.rlimits` from
/// the bundle of a `create` and executes runc with the same arguments.
pub(crate) fn runtime_wrapper() -> ! {
    use std::os::unix::process::CommandExt;
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "create") {
        let bundle = args
            .iter()
            .position(|a| a == "--bundle" || a == "-b")
            .and_then(|i| args.get(i + 1))
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        if let Err(e) = strip_rlimits(&bundle.join("config.json")) {
            eprintln!("{RUNTIME_WRAPPER}: {e:#}");
            std::process::exit(1);
        }
    }
    let err = Command::new(RUNC).arg0("runc").args(&args).exec();
    eprintln!("{RUNTIME_WRAPPER}: exec {RUNC}: {err}");
    std::process::exit(127);
}

fn strip_rlimits(config: &Path) -> Result<()> {
    let raw = std::fs::read(config).with_context(|| format!("read {}", config.display()))?;
    let mut spec: serde_json::Value =
        serde_json::from_slice(&raw).with_context(|| format!("parse {}", config.display()))?;
    let Some(process) = spec.get_mut("process").and_then(|p| p.as_object_mut()) else {
        bail!("{}: no process object", config.display());
    };
    if process.remove("rlimits").is_some() {
        std::fs::write(config, serde_json::to_vec(&spec)?)
            .with_context(|| format!("write {}", config.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_only_rlimits() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        std::fs::write(
            &p,
            r#"{"process":{"args":["true"],"rlimits":[{"type":"RLIMIT_NOFILE","hard":1,"soft":1}]},"root":{"path":"rootfs"}}"#,
        )
        .unwrap();
        strip_rlimits(&p).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"process":{"args":["true"]},"root":{"path":"rootfs"}})
        );
    }

    #[test]
    fn translates_docker_defaults() {
        let (state, cli) = PodmanState::new("127.0.0.1:5000").unwrap();
        let args = |c: Command| {
            c.get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        };
        let run = args(cli.command(&["run", "-d", "img", "sleep", "1"]));
        let i = run.iter().position(|a| a == "run").unwrap();
        assert_eq!(run[i + 1], "--cgroup-parent");
        assert_eq!(run[i + 2], format!("/{}", state.cgroup()));
        assert_eq!(&run[run.len() - 4..], ["-d", "img", "sleep", "1"]);
        let rm = args(cli.command(&["rm", "-f", "x"]));
        assert!(rm.ends_with(&["rm".into(), "--time=0".into(), "-f".into(), "x".into()]));
        assert!(run.contains(&state.root().join("root").to_string_lossy().into_owned()));
    }
}
