//! Engines under test: the corral binary ([`TestDaemon`]) and a private reference dockerd
//! ([`RefDockerd`]). Each gets its own temporary root, socket and cgroup parent, and its
//! `Drop` stops it and sweeps whatever it left behind.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tempfile::TempDir;

use crate::process::{http_get_unix, http_request_unix, log_tail, terminate, wait_ready};
use crate::sweep::Sweep;

/// Where Debian's docker.io installs the reference daemon.
pub const DOCKERD_BIN: &str = "/usr/sbin/dockerd";

/// How long what an engine left may take to go away on its own before it counts as a leak
/// (a shim lingers up to 10 s after an exit nobody collected).
const LEAK_GRACE: Duration = Duration::from_secs(12);

/// How long an engine may take to answer `/_ping` after it was started.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A process-unique, short instance name such as `t1a2b3-4`.
pub fn unique_instance() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("t{:x}{:x}-{n}", std::process::id(), nanos & 0xfff)
}

/// Locates the corral binary: `$CORRAL_BIN`, else `<target>/<profile>/corral` found by
/// walking up from the current test executable (`<target>/<profile>/deps/<test>`).
///
/// # Errors
/// When neither exists.
pub fn corral_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("CORRAL_BIN") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        bail!("CORRAL_BIN={} does not exist", p.display());
    }
    let exe = std::env::current_exe().context("current_exe")?;
    for dir in exe.ancestors().skip(1).take(3) {
        let candidate = dir.join("corral");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "corral binary not found next to {} (run `cargo build -p corral` or set CORRAL_BIN)",
        exe.display()
    )
}

fn short_tempdir(prefix: &str) -> Result<TempDir> {
    // Unix socket paths are limited to 108 bytes: keep roots short and in /tmp.
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .context("create engine root")
}

fn wait_ping(child: &mut Child, what: &str, socket: &Path, log: &Path) -> Result<()> {
    wait_ready(
        child,
        what,
        log,
        READY_TIMEOUT,
        || matches!(http_get_unix(socket, "/_ping"), Ok((200, body)) if body.trim() == "OK"),
    )
}

/// Options for [`TestDaemon::start`].
#[derive(Debug, Clone, Default)]
pub struct DaemonOptions {
    /// The corral binary; [`corral_bin`] when `None`.
    pub bin: Option<PathBuf>,
    /// Registries given as `--insecure-registry`.
    pub insecure_registries: Vec<String>,
    /// More `-H` listeners (`tcp://127.0.0.1:PORT`); when set, the daemon is started with
    /// `-H unix://R/docker.sock` first, so the harness still reaches it on its socket.
    pub hosts: Vec<String>,
    /// Extra arguments appended after `server ...`.
    pub extra_args: Vec<String>,
    /// Instance name; [`unique_instance`] when `None`.
    pub instance: Option<String>,
    /// Run the daemon in this network namespace (a `/run/netns/NAME` path) through
    /// `nsenter --net`, as if it were another host; its mounts stay in the test's namespace.
    pub netns: Option<PathBuf>,
    /// Run the daemon in a private mount namespace whose `/sys/fs/cgroup` is a cgroup2
    /// mount (the host's v1 hierarchies detached there only), so it sees a pure cgroup v2
    /// host. On a hybrid host that tree is the host's `/sys/fs/cgroup/unified`, where
    /// every controller is bound to v1: the daemon gets cgroup v2 without controllers. A
    /// holder process keeps the namespace alive across [`TestDaemon::kill9_and_restart`];
    /// the leak check reads the namespace's mount table.
    pub cgroup_v2_view: bool,
    /// Put the run directory on its own tmpfs, as `/run/corral` is on a default install
    /// (the benchmark does; tests keep it on the temporary directory's file system).
    pub run_dir_tmpfs: bool,
}

/// A private mount namespace with a cgroup2 `/sys/fs/cgroup`, kept alive by a `sleep`.
#[derive(Debug)]
struct CgroupV2View {
    holder: Child,
}

impl CgroupV2View {
    fn start() -> Result<Self> {
        let ready = tempfile::NamedTempFile::new_in("/tmp").context("view marker")?;
        let marker = ready.path().to_path_buf();
        std::fs::remove_file(&marker).ok();
        // The tmpfs with the v1 hierarchies is detached in the new namespace only
        // (propagation private: nothing reaches the host's mount table).
        let script = format!(
            "umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && : > {} && exec sleep 86400",
            marker.display()
        );
        let mut holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .spawn()
            .context("spawn unshare for the cgroup v2 view")?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !marker.exists() {
            if let Some(status) = holder.try_wait()? {
                bail!("setting up the cgroup v2 view failed: {status}");
            }
            if tokio::time::Instant::now() > deadline {
                let _ = holder.kill();
                let _ = holder.wait();
                bail!("setting up the cgroup v2 view timed out");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_file(&marker);
        Ok(CgroupV2View { holder })
    }

    /// `/proc/<holder>/ns/mnt`, for `nsenter --mount=`.
    fn ns_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/mnt", self.holder.id()))
    }

    fn mountinfo(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/mountinfo", self.holder.id()))
    }
}

impl Drop for CgroupV2View {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// A running `corral server` with private data and run directories.
#[derive(Debug)]
pub struct TestDaemon {
    child: Child,
    instance: String,
    data_dir: PathBuf,
    run_dir: PathBuf,
    log: PathBuf,
    root: Option<TempDir>,
    /// The binary and arguments it was started with, for [`TestDaemon::kill9_and_restart`].
    command: (PathBuf, Vec<std::ffi::OsString>),
    /// The cgroup v2 view the daemon runs in, dropped after it and its sweep.
    view: Option<CgroupV2View>,
    /// The tmpfs on the run directory ([`DaemonOptions::run_dir_tmpfs`]), detached after
    /// the sweep.
    run_tmpfs: Option<TmpfsGuard>,
}

/// Detaches a tmpfs [`crate::sweep::mount_tmpfs`] mounted, when dropped.
#[derive(Debug)]
struct TmpfsGuard(PathBuf);

impl Drop for TmpfsGuard {
    fn drop(&mut self) {
        crate::sweep::unmount_tmpfs(&self.0);
    }
}

impl TestDaemon {
    /// Starts `corral server --data-dir D --run-dir R --instance NAME --insecure-registry ..`
    /// and waits until `GET /_ping` on `R/docker.sock` answers `OK`.
    ///
    /// # Errors
    /// When the binary is missing, exits early or is not ready within 60 s (the message
    /// contains the end of its log).
    pub fn start(opts: DaemonOptions) -> Result<Self> {
        let bin = match opts.bin {
            Some(b) => b,
            None => corral_bin()?,
        };
        // `nsenter --mount` runs it from the namespace's root: the path must be absolute.
        let bin = std::path::absolute(&bin).unwrap_or(bin);
        let instance = opts.instance.unwrap_or_else(unique_instance);
        let root = short_tempdir("corral-d-")?;
        let data_dir = root.path().join("d");
        let run_dir = root.path().join("r");
        std::fs::create_dir_all(&data_dir)?;
        std::fs::create_dir_all(&run_dir)?;
        let run_tmpfs = if opts.run_dir_tmpfs {
            crate::sweep::mount_tmpfs(&run_dir)
                .with_context(|| format!("mount a tmpfs on {}", run_dir.display()))?;
            Some(TmpfsGuard(run_dir.clone()))
        } else {
            None
        };
        let log = root.path().join("daemon.log");
        let log_file = File::create(&log)?;
        let view = if opts.cgroup_v2_view {
            Some(CgroupV2View::start()?)
        } else {
            None
        };
        let mut cmd = if opts.netns.is_some() || view.is_some() {
            let mut c = Command::new("nsenter");
            if let Some(ns) = &opts.netns {
                c.arg(format!("--net={}", ns.display()));
            }
            if let Some(v) = &view {
                c.arg(format!("--mount={}", v.ns_path().display()));
            }
            c.arg(&bin);
            c
        } else {
            Command::new(&bin)
        };
        cmd.arg("server")
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--run-dir")
            .arg(&run_dir)
            .arg("--instance")
            .arg(&instance);
        for r in &opts.insecure_registries {
            cmd.arg("--insecure-registry").arg(r);
        }
        if !opts.hosts.is_empty() {
            cmd.arg("-H")
                .arg(format!("unix://{}", run_dir.join("docker.sock").display()));
            for h in &opts.hosts {
                cmd.arg("-H").arg(h);
            }
        }
        cmd.args(&opts.extra_args)
            .env(
                "CORRAL_LOG",
                std::env::var("CORRAL_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        let command = (
            PathBuf::from(cmd.get_program()),
            cmd.get_args().map(std::ffi::OsStr::to_os_string).collect(),
        );
        let child = cmd
            .spawn()
            .with_context(|| format!("spawn {}", bin.display()))?;
        let mut d = TestDaemon {
            child,
            instance,
            data_dir,
            run_dir,
            log,
            root: Some(root),
            command,
            view,
            run_tmpfs,
        };
        let socket = d.socket();
        wait_ping(&mut d.child, "corral server", &socket, &d.log)?; // Drop cleans up on error.
        Ok(d)
    }

    /// The API socket, `R/docker.sock`.
    pub fn socket(&self) -> PathBuf {
        self.run_dir.join("docker.sock")
    }

    /// `unix://R/docker.sock`, for `DOCKER_HOST`.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// The instance name (cgroups are under `corral-<instance>`).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// `--data-dir`.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// `--run-dir`.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// The end of the daemon's log (stdout and stderr).
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the daemon with SIGKILL (its containers keep running) and starts it again with
    /// the same directories and instance, as after a crash; waits until it answers.
    ///
    /// # Errors
    /// When the new daemon does not start or answer.
    pub fn kill9_and_restart(&mut self) -> Result<()> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let log_file = std::fs::OpenOptions::new().append(true).open(&self.log)?;
        self.child = Command::new(&self.command.0)
            .args(&self.command.1)
            .env(
                "CORRAL_LOG",
                std::env::var("CORRAL_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("spawn {}", self.command.0.display()))?;
        let socket = self.socket();
        wait_ping(&mut self.child, "corral server", &socket, &self.log)
    }
}

impl TestDaemon {
    /// Force-removes every container (with its anonymous volumes) through the API, so the
    /// engine should own nothing on the host afterwards; `true` when none remain.
    fn remove_all_containers(&self) -> bool {
        let socket = self.socket();
        let list = || -> Result<Vec<String>> {
            let (code, body) = http_get_unix(&socket, "/containers/json?all=1")?;
            if code != 200 {
                bail!("listing containers: {code} {body}");
            }
            let v: serde_json::Value = serde_json::from_str(&body)?;
            Ok(v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c["Id"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default())
        };
        let result = (|| -> Result<bool> {
            for id in list()? {
                let (code, body) =
                    http_request_unix(&socket, "DELETE", &format!("/containers/{id}?force=1&v=1"))?;
                if code != 204 && code != 404 {
                    bail!("removing {id}: {code} {body}");
                }
            }
            Ok(list()?.is_empty())
        })();
        match result {
            Ok(empty) => empty,
            Err(e) => {
                eprintln!(
                    "leak check skipped for corral instance {}: {e:#}",
                    self.instance
                );
                false
            }
        }
    }
}

impl Drop for TestDaemon {
    /// Removes the remaining containers, stops the daemon and sweeps its state. When the
    /// daemon held no containers at the end, anything of this instance still on the host
    /// (processes, mounts, cgroups, nftables table, bridges) is a leak: it is swept too,
    /// and the test fails naming it.
    fn drop(&mut self) {
        let check_leaks = !std::thread::panicking()
            && matches!(self.child.try_wait(), Ok(None))
            && self.remove_all_containers();
        terminate(&mut self.child, Duration::from_secs(10));
        if std::thread::panicking() {
            eprintln!("--- corral server log (tail) ---\n{}", self.log_tail());
        }
        if let Some(root) = self.root.take() {
            let sweep = Sweep {
                roots: vec![self.data_dir.clone(), self.run_dir.clone()],
                cgroup_name: format!("corral-{}", self.instance),
                mountinfo: self.view.as_ref().map(CgroupV2View::mountinfo),
            };
            let leftovers = if check_leaks {
                // A shim stays a moment after its exit was collected (10 s at most when
                // nobody collected it): only what outlives that is a leak.
                let mut found = sweep.leftovers();
                let deadline = tokio::time::Instant::now() + LEAK_GRACE;
                while !found.is_empty() && tokio::time::Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(100));
                    found = sweep.leftovers();
                }
                found
            } else {
                Vec::new()
            };
            // The run directory's tmpfs first, so the sweep removes an ordinary directory
            // (what was mounted below it goes with it: the leak check above has looked).
            drop(self.run_tmpfs.take());
            sweep.run();
            // Its mounts go with the namespace, once the sweep killed every process in it.
            drop(self.view.take());
            drop(root);
            if !leftovers.is_empty() {
                panic!(
                    "corral instance {} stopped with no containers but left behind:\n  {}",
                    self.instance,
                    leftovers.join("\n  ")
                );
            }
        }
    }
}

/// A private reference dockerd (Debian docker.io 20.10) with its own data root, exec root,
/// socket, managed containerd and cgroup parent `corral-<instance>`. It never touches the
/// host's default dockerd state.
#[derive(Debug)]
pub struct RefDockerd {
    child: Child,
    instance: String,
    root_path: PathBuf,
    log: PathBuf,
    root: Option<TempDir>,
}

impl RefDockerd {
    /// Starts dockerd with `--iptables=false --ip6tables=false --bridge=none` (so it never
    /// changes the host firewall) and waits for `/_ping`.
    ///
    /// # Errors
    /// When dockerd is missing, exits early, or is not ready within 60 s.
    pub fn start(insecure_registries: &[String]) -> Result<Self> {
        Self::start_with(insecure_registries, false)
    }

    /// [`RefDockerd::start`], with the exec root (where containerd keeps its state and
    /// bundles) on its own tmpfs when `exec_root_tmpfs`, as `/run/docker` is on a default
    /// install. The sweep at drop detaches it.
    ///
    /// # Errors
    /// As [`RefDockerd::start`], and the tmpfs mount's failure.
    pub fn start_with(insecure_registries: &[String], exec_root_tmpfs: bool) -> Result<Self> {
        if !Path::new(DOCKERD_BIN).exists() {
            bail!("{DOCKERD_BIN} not found: install Debian package docker.io");
        }
        let instance = unique_instance();
        let root = short_tempdir("corral-k-")?;
        let t = root.path().to_path_buf();
        // An explicit config file keeps /etc/docker/daemon.json out, and moves the libtrust
        // key that 20.10 would otherwise create in /etc/docker.
        let config = t.join("daemon.json");
        std::fs::write(
            &config,
            serde_json::to_vec(&serde_json::json!({
                "deprecated-key-path": t.join("key.json"),
            }))?,
        )?;
        let log = t.join("dockerd.log");
        let log_file = File::create(&log)?;
        // Everything that can fail before dockerd runs comes before the tmpfs mount.
        let log_out = log_file.try_clone()?;
        if exec_root_tmpfs {
            let exec_root = t.join("e");
            std::fs::create_dir_all(&exec_root)?;
            if let Err(err) = crate::sweep::mount_tmpfs(&exec_root) {
                return Err(err)
                    .with_context(|| format!("mount a tmpfs on {}", exec_root.display()));
            }
        }
        let mut cmd = Command::new(DOCKERD_BIN);
        cmd.arg("--config-file")
            .arg(&config)
            .arg("--data-root")
            .arg(t.join("d"))
            .arg("--exec-root")
            .arg(t.join("e"))
            .arg("--pidfile")
            .arg(t.join("p"))
            .arg("-H")
            .arg(format!("unix://{}", t.join("docker.sock").display()))
            .args(["--iptables=false", "--ip6tables=false", "--bridge=none"])
            .arg("--shutdown-timeout=2")
            .arg("--cgroup-parent")
            .arg(format!("corral-{instance}"));
        for r in insecure_registries {
            cmd.arg("--insecure-registry").arg(r);
        }
        cmd.stdin(Stdio::null()).stdout(log_out).stderr(log_file);
        let child = match cmd.spawn() {
            Ok(child) => child,
            Err(err) => {
                if exec_root_tmpfs {
                    crate::sweep::unmount_tmpfs(&t.join("e"));
                }
                return Err(err).context("spawn dockerd");
            }
        };
        let mut d = RefDockerd {
            child,
            instance,
            root_path: t,
            log,
            root: Some(root),
        };
        let socket = d.socket();
        wait_ping(&mut d.child, "dockerd", &socket, &d.log)?;
        Ok(d)
    }

    /// The API socket.
    pub fn socket(&self) -> PathBuf {
        self.root_path.join("docker.sock")
    }

    /// `unix://.../docker.sock`, for `DOCKER_HOST`.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// The instance name (cgroup parent `corral-<instance>`).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The private root holding data root, exec root, pidfile and socket.
    pub fn root(&self) -> &Path {
        &self.root_path
    }

    /// The end of dockerd's log.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }
}

impl RefDockerd {
    /// The bridges of this dockerd's user-defined networks (`br-<12 hex of the id>`):
    /// dockerd keeps them when it stops, and a later engine would see their subnets as
    /// taken by host routes.
    fn network_bridges(&self) -> Vec<String> {
        let Ok((200, body)) = crate::process::http_get_unix(&self.socket(), "/networks") else {
            return Vec::new();
        };
        let nets: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap_or_default();
        nets.iter()
            .filter(|n| n["Driver"] == "bridge")
            .filter_map(|n| n["Id"].as_str())
            .filter(|id| id.len() >= 12)
            .map(|id| format!("br-{}", &id[..12]))
            .collect()
    }
}

impl Drop for RefDockerd {
    fn drop(&mut self) {
        let bridges = self.network_bridges();
        // dockerd stops its containers (10 s each by default) and its containerd on SIGTERM;
        // anything left after the grace period is swept below.
        terminate(&mut self.child, Duration::from_secs(20));
        for b in bridges {
            let _ = Command::new("ip")
                .args(["link", "del", &b])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if std::thread::panicking() {
            eprintln!("--- dockerd log (tail) ---\n{}", self.log_tail());
        }
        if let Some(root) = self.root.take() {
            Sweep {
                roots: vec![self.root_path.clone()],
                cgroup_name: format!("corral-{}", self.instance),
                mountinfo: None,
            }
            .run();
            drop(root);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corral_bin_honours_env_and_reports_missing_binary() {
        // Only the "not found" message is asserted: the variable is process-global.
        if std::env::var_os("CORRAL_BIN").is_none() {
            match corral_bin() {
                Ok(p) => assert!(p.ends_with("corral")),
                Err(e) => assert!(e.to_string().contains("corral binary not found"), "{e}"),
            }
        }
    }

    #[test]
    #[ignore = "needs root: starts a corral daemon"]
    fn leak_check_fails_when_the_instance_leaves_a_process_behind() {
        crate::require_root();
        let d = TestDaemon::start(DaemonOptions::default()).unwrap();
        // A process naming the daemon's data dir, as a leaked shim would.
        let mut stray = Command::new("sh")
            .args(["-c", "sleep 60"])
            .arg(d.data_dir())
            .spawn()
            .unwrap();
        let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(d)));
        // The sweep killed it.
        let status = stray.wait().unwrap();
        assert!(!status.success());
        let message = dropped
            .expect_err("dropping a leaky daemon must fail the test")
            .downcast::<String>()
            .unwrap();
        assert!(message.contains("left behind"), "{message}");
        assert!(message.contains("sleep 60"), "{message}");
    }

    #[test]
    #[ignore = "needs root: starts a corral daemon"]
    fn leak_check_passes_after_containers_are_gone() {
        crate::require_root();
        let d = TestDaemon::start(DaemonOptions::default()).unwrap();
        drop(d);
    }

    #[test]
    #[ignore = "needs root: starts a private dockerd"]
    fn ref_dockerd_starts_answers_and_is_swept_on_drop() {
        crate::require_root();
        let d = RefDockerd::start(&[]).unwrap();
        let (code, body) = http_get_unix(&d.socket(), "/_ping").unwrap();
        assert_eq!((code, body.trim()), (200, "OK"));
        let root = d.root().to_path_buf();
        let cgroup = format!("corral-{}", d.instance());
        // The 28 CLI talks to it (the e2e suite covers containers and their sweep).
        let mut cmd = Command::new(crate::DOCKER_CLI);
        cmd.env("DOCKER_HOST", d.docker_host()).args([
            "version",
            "--format",
            "{{.Server.Version}}",
        ]);
        let out = crate::run_with_timeout(cmd, None, Duration::from_secs(30)).unwrap();
        assert!(out.ok().out().starts_with("20.10"), "{out}");
        drop(d);
        assert!(!root.exists(), "{} left behind", root.display());
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mountinfo.contains(root.to_string_lossy().as_ref()));
        assert!(!Path::new("/sys/fs/cgroup/memory").join(&cgroup).exists());
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
                assert!(
                    !String::from_utf8_lossy(&c).contains(root.to_string_lossy().as_ref()),
                    "process {:?} survived",
                    e.file_name()
                );
            }
        }
    }
}
