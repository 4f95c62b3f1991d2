//! OCI runtimes (`runc`, `crun`) driven directly on a prepared bundle: the runtime's own cost
//! with no engine, between the kernel floor and the engines.
//!
//! `crun` 1.8 (Debian 12) refuses a hybrid cgroup layout whose cgroup2 mount has a controller
//! attached ("cgroups in hybrid mode not supported, drop all controllers from cgroupv2"; here
//! `hugetlb` sits on cgroup2), with every `--cgroup-manager`, `disabled` included. It runs in
//! a private mount namespace whose `/sys/fs/cgroup/unified` is unmounted (a pure v1 view, the
//! same v1 hierarchies); each sample then pays an `nsenter -m` into that namespace, which the
//! `nsenter -m true` row measures alone.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context, Result};
use tokio::time::Instant;

use crate::engines::{ms, record_state};

/// Where Debian's crun lives.
pub(crate) const CRUN: &str = "/usr/bin/crun";

/// Samples of `runtime run` and, for crun, of the bare `nsenter` it needs.
pub(crate) struct Direct {
    /// `runtime run` of `/bin/busybox true`, milliseconds.
    pub(crate) run: Vec<f64>,
    /// `nsenter -m /bin/busybox true` into the v1-only namespace (crun only).
    pub(crate) nsenter: Vec<f64>,
}

/// A process holding a private mount namespace without the cgroup2 mount; killed on drop.
struct V1View {
    child: Child,
}

impl V1View {
    fn start(dir: &Path) -> Result<Self> {
        // The holder's command line names `dir`, so a sweep of a killed run finds it.
        let sleeper = dir.join("busybox");
        std::fs::copy(corral_testkit::HOST_BUSYBOX, &sleeper)?;
        let script = format!(
            "umount /sys/fs/cgroup/unified && echo ready && exec {} sleep 100000",
            sleeper.display()
        );
        let mut child = Command::new("unshare")
            .args(["-m", "--propagation", "private", "/bin/sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("unshare -m")?;
        let mut line = String::new();
        use std::io::BufRead;
        let stdout = child.stdout.take().context("stdout")?;
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        if line.trim() != "ready" {
            let _ = child.kill();
            let out = child.wait_with_output()?;
            bail!(
                "private mount namespace without cgroup2: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(V1View { child })
    }

    fn enter(&self, cmd: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("-t")
            .arg(self.child.id().to_string())
            .arg("-m")
            .args(cmd);
        c
    }
}

impl Drop for V1View {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Times `runtime run` of `/bin/busybox true` in a fresh bundle (`runc spec` defaults: new
/// pid, mount, ipc, uts and network namespaces, no terminal, read-only root), `n` times.
pub(crate) fn run(runtime: &str, n: usize) -> Result<Direct> {
    let name = Path::new(runtime)
        .file_name()
        .and_then(|s| s.to_str())
        .unwrap_or("runtime")
        .to_owned();
    let dir = tempfile::Builder::new()
        .prefix(&format!("corral-bench-{name}-"))
        .tempdir()?;
    record_state(&format!("root {}", dir.path().display()));
    let cgroup = format!("corral-bench-{name}-{}", std::process::id());
    record_state(&format!("cgroup {cgroup}"));
    let bundle = dir.path().join("bundle");
    let state = dir.path().join("state");
    std::fs::create_dir_all(bundle.join("rootfs/bin"))?;
    std::fs::copy(
        corral_testkit::HOST_BUSYBOX,
        bundle.join("rootfs/bin/busybox"),
    )?;
    let out = Command::new(runtime)
        .arg("spec")
        .current_dir(&bundle)
        .output()
        .with_context(|| format!("{runtime} spec"))?;
    if !out.status.success() {
        bail!("{runtime} spec: {}", String::from_utf8_lossy(&out.stderr));
    }
    let path = bundle.join("config.json");
    let mut spec: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = serde_json::json!(["/bin/busybox", "true"]);
    spec["root"]["readonly"] = true.into();
    // Only a hybrid layout with a controller on cgroup2 needs the v1 view.
    let hybrid = std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers")
        .map(|c| !c.trim().is_empty())
        .unwrap_or(false);
    let view = if name == "crun" && hybrid {
        Some(V1View::start(dir.path())?)
    } else {
        None
    };
    let mut samples = Direct {
        run: Vec::new(),
        nsenter: Vec::new(),
    };
    let result = (|| -> Result<()> {
        for i in 0..n {
            crate::check_stop()?;
            spec["linux"]["cgroupsPath"] = format!("/{cgroup}/{i}").into();
            std::fs::write(&path, serde_json::to_vec(&spec)?)?;
            let id = format!("corral-bench-{}-{i}", std::process::id());
            let state_s = state.to_string_lossy();
            let bundle_s = bundle.to_string_lossy();
            let argv = [
                runtime, "--root", &state_s, "run", "--bundle", &bundle_s, &id,
            ];
            let mut cmd = match &view {
                Some(v) => v.enter(&argv),
                None => {
                    let mut c = Command::new(runtime);
                    c.args(&argv[1..]);
                    c
                }
            };
            samples.run.push(time_quiet(&mut cmd, &id)?);
            if let Some(v) = &view {
                let mut c = v.enter(&["/bin/busybox", "true"]);
                samples.nsenter.push(time_quiet(&mut c, "nsenter")?);
            }
        }
        Ok(())
    })();
    drop(view);
    remove_cgroup(&cgroup);
    result.map(|()| samples)
}

fn time_quiet(cmd: &mut Command, what: &str) -> Result<f64> {
    let t = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("spawn {cmd:?}"))?;
    let e = ms(t.elapsed());
    if !out.status.success() {
        bail!(
            "{what}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(e)
}

/// Removes `/sys/fs/cgroup/*/NAME` and its (empty) children.
fn remove_cgroup(name: &str) {
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for h in hierarchies.flatten() {
        let dir: PathBuf = h.path().join(name);
        if let Ok(children) = std::fs::read_dir(&dir) {
            for c in children.flatten() {
                if c.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    let _ = std::fs::remove_dir(c.path());
                }
            }
            let _ = std::fs::remove_dir(&dir);
        }
    }
}
