//! A private dockerd set up like `corral_testkit::RefDockerd` (which has neither switch) with
//! `--live-restore`, or with a bridge the benchmark created: own data root, exec root, socket
//! and cgroup parent, never iptables and never `ip_forward`. Stopped and swept on drop; with
//! live restore its containers outlive it, so the sweep kills them through their cgroup.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use corral_testkit::{http_get_unix, Sweep, DOCKERD_BIN};
use tempfile::TempDir;
use tokio::time::Instant;

/// A running dockerd with live restore on, or on a given bridge.
pub(crate) struct LiveRestoreDockerd {
    child: Child,
    instance: String,
    root: Option<TempDir>,
    path: PathBuf,
}

impl LiveRestoreDockerd {
    /// Starts it with `--live-restore --bridge=none` and waits up to 60 s for `/_ping`.
    pub(crate) fn start(insecure_registry: &str) -> Result<Self> {
        Self::start_with(insecure_registry, None)
    }

    /// Starts it without live restore on the existing bridge `bridge` (`-b`; dockerd takes
    /// the bridge's address as its subnet), `--iptables=false --ip-forward=false`, or like
    /// [`LiveRestoreDockerd::start`] when `bridge` is `None`.
    pub(crate) fn start_with(insecure_registry: &str, bridge: Option<&str>) -> Result<Self> {
        let instance = format!("benchlr-{}", corral_testkit::unique_instance());
        // Unix socket paths are short: keep the root in /tmp.
        let root = tempfile::Builder::new()
            .prefix("corral-k-")
            .tempdir_in("/tmp")
            .context("dockerd root")?;
        let t = root.path().to_path_buf();
        crate::engines::record_state(&format!("root {}", t.display()));
        crate::engines::record_state(&format!("cgroup corral-{instance}"));
        let config = t.join("daemon.json");
        std::fs::write(
            &config,
            serde_json::to_vec(&serde_json::json!({ "deprecated-key-path": t.join("key.json") }))?,
        )?;
        let log = File::create(t.join("dockerd.log"))?;
        // The exec root (containerd's state and bundles) on tmpfs, as `/run/docker` is on a
        // default install; the drop's sweep detaches it.
        let exec_root = t.join("e");
        std::fs::create_dir_all(&exec_root)?;
        corral_testkit::mount_tmpfs(&exec_root).context("tmpfs exec root")?;
        let _unmount_unless_started = scopeguard_unmount(&exec_root);
        let child = Command::new(DOCKERD_BIN)
            .arg("--config-file")
            .arg(&config)
            .arg("--data-root")
            .arg(t.join("d"))
            .arg("--exec-root")
            .arg(t.join("e"))
            .arg("--pidfile")
            .arg(t.join("p"))
            .arg("-H")
            .arg(format!("unix://{}", t.join("docker.sock").display()))
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
            ])
            .args(match bridge {
                Some(b) => vec![format!("--bridge={b}")],
                None => vec!["--bridge=none".to_owned(), "--live-restore".to_owned()],
            })
            .arg("--shutdown-timeout=2")
            .arg("--cgroup-parent")
            .arg(format!("corral-{instance}"))
            .arg("--insecure-registry")
            .arg(insecure_registry)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("spawn dockerd")?;
        std::mem::forget(_unmount_unless_started);
        let mut d = LiveRestoreDockerd {
            child,
            instance,
            root: Some(root),
            path: t,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if matches!(http_get_unix(&d.socket(), "/_ping"), Ok((200, ref b)) if b.trim() == "OK")
            {
                return Ok(d);
            }
            if let Ok(Some(status)) = d.child.try_wait() {
                bail!("dockerd --live-restore exited: {status}: {}", d.log_tail());
            }
            if Instant::now() > deadline {
                bail!("dockerd --live-restore not ready in 60 s: {}", d.log_tail());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.path.join("dockerd.log")).unwrap_or_default();
        let start = log.len().saturating_sub(2000);
        log.get(start..).unwrap_or_default().to_owned()
    }

    /// The API socket.
    pub(crate) fn socket(&self) -> PathBuf {
        self.path.join("docker.sock")
    }

    /// `unix://...`.
    pub(crate) fn docker_host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// The private root.
    pub(crate) fn root(&self) -> &Path {
        &self.path
    }

    /// The cgroup parent's instance part.
    pub(crate) fn instance(&self) -> &str {
        &self.instance
    }
}

impl Drop for LiveRestoreDockerd {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(root) = self.root.take() {
            Sweep {
                roots: vec![self.path.clone()],
                cgroup_name: format!("corral-{}", self.instance),
                mountinfo: None,
            }
            .run();
            drop(root);
        }
    }
}

/// Detaches the tmpfs on `dir` when dropped (a start that failed before the daemon existed);
/// forgotten once the daemon runs, whose drop sweeps it.
fn scopeguard_unmount(dir: &std::path::Path) -> impl Drop + '_ {
    struct Guard<'a>(&'a std::path::Path);
    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            corral_testkit::unmount_tmpfs(self.0);
        }
    }
    Guard(dir)
}
