//! The engines under test, all started by the benchmark on private roots: a reference
//! dockerd (live restore off and on) and `corral server` (default runtime and runc), driven by
//! the same docker CLI; and Podman, daemonless, driven by its own CLI on a private root.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use tokio::time::Instant;

use anyhow::{bail, Context, Result};
use corral_testkit::{DaemonOptions, RefDockerd, TestDaemon, DOCKER_CLI};
use tempfile::TempDir;

/// How long one CLI call may take before the benchmark gives up on it.
const CLI_TIMEOUT: Duration = Duration::from_secs(300);

/// The name of the reference engine every ratio divides by.
pub(crate) const REFERENCE: &str = "dockerd";

/// A running engine and the docker CLI pointed at it.
pub(crate) struct Engine {
    /// Column name in the report: `dockerd`, `dockerd-lr`, `corral`, `corral-runc`.
    pub(crate) name: &'static str,
    /// The API socket; `None` for Podman (no daemon).
    socket: Option<PathBuf>,
    host: String,
    /// Set for Podman: calls go to `podman`, not the docker CLI.
    podman: Option<std::sync::Arc<crate::podman::PodmanCli>>,
    /// The private root: every engine process mentions it on its command line.
    root: PathBuf,
    /// The parent cgroup of its containers.
    cgroup: String,
    daemon_pid: Option<u32>,
    // Dropped in declaration order: the engine (which sweeps its root) before the CLI config.
    _guard: Box<dyn std::any::Any + Send + Sync>,
    config: TempDir,
}

/// Appends a line to the state file `bench/run` reads to clean up after a killed benchmark.
pub(crate) fn record_state(line: &str) {
    let Some(path) = std::env::var_os("BENCH_STATE") else {
        return;
    };
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

impl Engine {
    /// Starts the reference dockerd (live-restore off, no bridge, no iptables).
    pub(crate) fn dockerd(registry: &str) -> Result<Self> {
        let d = RefDockerd::start_with(&[registry.to_owned()], true)?;
        let root = d.root().to_path_buf();
        let cgroup = format!("corral-{}", d.instance());
        Self::finish(
            "dockerd",
            Some(d.socket()),
            d.docker_host(),
            root,
            cgroup,
            None,
            Box::new(d),
        )
    }

    /// Starts a dockerd like [`Engine::dockerd`] but with `--live-restore`.
    pub(crate) fn dockerd_live_restore(registry: &str) -> Result<Self> {
        let d = crate::dockerd_lr::LiveRestoreDockerd::start(registry)?;
        let root = d.root().to_path_buf();
        let cgroup = format!("corral-{}", d.instance());
        let (socket, host) = (d.socket(), d.docker_host());
        Self::finish(
            "dockerd-lr",
            Some(socket),
            host,
            root,
            cgroup,
            None,
            Box::new(d),
        )
    }

    /// Starts a dockerd (live restore off) on the existing bridge `bridge`, reported in the
    /// `dockerd` column: only the default-bridge step uses it.
    pub(crate) fn dockerd_bridge(registry: &str, bridge: &str) -> Result<Self> {
        let d = crate::dockerd_lr::LiveRestoreDockerd::start_with(registry, Some(bridge))?;
        let root = d.root().to_path_buf();
        let cgroup = format!("corral-{}", d.instance());
        let (socket, host) = (d.socket(), d.docker_host());
        Self::finish(
            "dockerd",
            Some(socket),
            host,
            root,
            cgroup,
            None,
            Box::new(d),
        )
    }

    /// Starts `corral server` with `bin`, `--default-runtime runtime`.
    pub(crate) fn corral(
        name: &'static str,
        bin: &Path,
        registry: &str,
        runtime: &str,
    ) -> Result<Self> {
        let instance = format!("bench-{}", corral_testkit::unique_instance());
        let d = TestDaemon::start(DaemonOptions {
            bin: Some(bin.to_path_buf()),
            insecure_registries: vec![registry.to_owned()],
            extra_args: vec!["--default-runtime".into(), runtime.into()],
            instance: Some(instance),
            run_dir_tmpfs: true,
            ..DaemonOptions::default()
        })?;
        let root = d
            .data_dir()
            .parent()
            .context("corral data dir has no parent")?
            .to_path_buf();
        let cgroup = format!("corral-{}", d.instance());
        let pid = d.pid();
        Self::finish(
            name,
            Some(d.socket()),
            d.docker_host(),
            root,
            cgroup,
            Some(pid),
            Box::new(d),
        )
    }

    /// Podman on a private root (see [`crate::podman`]).
    pub(crate) fn podman(registry: &str) -> Result<Self> {
        let (state, cli) = crate::podman::PodmanState::new(registry)?;
        let root = state.root().to_path_buf();
        let cgroup = state.cgroup().to_owned();
        let mut e = Self::finish(
            "podman",
            None,
            String::new(),
            root,
            cgroup,
            None,
            Box::new(state),
        )?;
        e.podman = Some(cli);
        Ok(e)
    }

    /// Whether this engine has a daemon serving the Docker API (Podman here has none).
    pub(crate) fn is_podman(&self) -> bool {
        self.podman.is_some()
    }

    /// The server version.
    pub(crate) fn version(&self) -> Result<String> {
        if self.is_podman() {
            self.cli(&["version", "--format", "{{.Client.Version}}"])
        } else {
            self.cli(&["version", "--format", "{{.Server.Version}}"])
        }
    }

    fn finish(
        name: &'static str,
        socket: Option<PathBuf>,
        host: String,
        root: PathBuf,
        cgroup: String,
        daemon_pid: Option<u32>,
        guard: Box<dyn std::any::Any + Send + Sync>,
    ) -> Result<Self> {
        record_state(&format!("root {}", root.display()));
        record_state(&format!("cgroup {cgroup}"));
        let config = tempfile::Builder::new()
            .prefix("corral-bench-cli-")
            .tempdir()
            .context("docker CLI config dir")?;
        record_state(&format!("root {}", config.path().display()));
        Ok(Engine {
            name,
            socket,
            host,
            podman: None,
            root,
            cgroup,
            daemon_pid,
            _guard: guard,
            config,
        })
    }

    /// The API socket; `None` for Podman.
    pub(crate) fn socket(&self) -> Option<&Path> {
        self.socket.as_deref()
    }

    /// A docker CLI command aimed at this engine only (a `podman` one for Podman).
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        if let Some(p) = &self.podman {
            return p.command(args);
        }
        let mut cmd = Command::new(DOCKER_CLI);
        for var in [
            "DOCKER_CONTEXT",
            "DOCKER_TLS_VERIFY",
            "DOCKER_CERT_PATH",
            "DOCKER_API_VERSION",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("DOCKER_HOST", &self.host)
            .env("DOCKER_CONFIG", self.config.path())
            .args(args);
        cmd
    }

    /// Runs `docker ARGS`, returning trimmed stdout; fails on a non-zero exit.
    pub(crate) fn cli(&self, args: &[&str]) -> Result<String> {
        let out = run_watched(self.command(args), CLI_TIMEOUT)?;
        if !out.status.success() {
            bail!(
                "{}: {} {}: {}: {}",
                self.name,
                if self.is_podman() { "podman" } else { "docker" },
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Runs `docker ARGS` and returns its wall time in milliseconds.
    pub(crate) fn timed(&self, args: &[&str]) -> Result<f64> {
        let t = Instant::now();
        self.cli(args)?;
        Ok(ms(t.elapsed()))
    }

    /// Removes every container of this engine (`rm -f`, in batches).
    pub(crate) fn remove_all(&self) -> Result<()> {
        let ids = self.cli(&["ps", "-aq", "--no-trunc"])?;
        let ids: Vec<&str> = ids.lines().filter(|l| !l.is_empty()).collect();
        for chunk in ids.chunks(50) {
            let mut args = vec!["rm", "-f"];
            args.extend(chunk);
            self.cli(&args)?;
        }
        Ok(())
    }

    /// Sums `Rss` and `Pss` (KiB) over every process of the engine: the daemon and its
    /// descendants (containerd for dockerd), every process whose command line names the
    /// engine's private root (shims) and their descendants, and every process in its
    /// containers' cgroups.
    pub(crate) fn memory_kib(&self) -> (u64, u64) {
        let me = std::process::id();
        let needle = self.root.to_string_lossy().into_owned();
        let procs = read_procs();
        let mut set: BTreeSet<u32> = BTreeSet::new();
        set.extend(self.daemon_pid);
        for p in &procs {
            if p.pid != me && p.cmdline.contains(&needle) {
                set.insert(p.pid);
            }
        }
        set.extend(cgroup_members(&self.cgroup));
        loop {
            let before = set.len();
            for p in &procs {
                if set.contains(&p.ppid) {
                    set.insert(p.pid);
                }
            }
            if set.len() == before {
                break;
            }
        }
        set.remove(&me);
        set.iter()
            .map(|&pid| smaps_rollup(pid))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    }
}

/// Runs `cmd` to completion with its output captured; a watchdog SIGKILLs it after
/// `timeout`. Waits block in `waitpid` (no polling), so timings are exact.
pub(crate) fn run_watched(mut cmd: Command, timeout: Duration) -> Result<std::process::Output> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawn {cmd:?}"))?;
    let pid = child.id().to_string();
    let (done, finished) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(timeout) {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            return true;
        }
        false
    });
    let out = child.wait_with_output();
    let _ = done.send(());
    let killed = watchdog.join().unwrap_or(false);
    let out = out.with_context(|| format!("wait for {cmd:?}"))?;
    if killed {
        bail!("{cmd:?} timed out after {timeout:?}");
    }
    Ok(out)
}

/// Milliseconds of a duration.
pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Proc {
    pid: u32,
    ppid: u32,
    cmdline: String,
}

fn read_procs() -> Vec<Proc> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // Fields after the last ')' (the command name may contain spaces): state ppid ...
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let cmdline = std::fs::read(e.path().join("cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        out.push(Proc { pid, ppid, cmdline });
    }
    out
}

/// Pids in `name` and its descendants, in every cgroup hierarchy.
fn cgroup_members(name: &str) -> BTreeSet<u32> {
    fn walk(dir: &Path, depth: u32, out: &mut BTreeSet<u32>) {
        if let Ok(s) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            out.extend(s.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
        }
        if depth == 0 {
            return;
        }
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    walk(&e.path(), depth - 1, out);
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        for h in entries.flatten() {
            let dir = h.path().join(name);
            if dir.is_dir() {
                walk(&dir, 4, &mut out);
            }
        }
    }
    out
}

/// (Rss, Pss) in KiB from `/proc/PID/smaps_rollup`; zeros for a vanished process.
fn smaps_rollup(pid: u32) -> (u64, u64) {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else {
        return (0, 0);
    };
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (field("Rss:"), field("Pss:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_memory_and_parent() {
        let (rss, pss) = smaps_rollup(std::process::id());
        assert!(rss > 0 && pss > 0 && pss <= rss, "rss {rss} pss {pss}");
        let me = read_procs()
            .into_iter()
            .find(|p| p.pid == std::process::id())
            .unwrap();
        assert_eq!(me.ppid, std::os::unix::process::parent_id());
        assert!(!me.cmdline.is_empty());
    }
}
