//! `runc run` driven directly on a prepared bundle: the OCI runtime's own cost with no engine,
//! between the kernel floor and the engines.

use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use tokio::time::Instant;

use crate::engines::{ms, record_state};

/// Times `runc run` of `/bin/busybox true` in a fresh bundle (`runc spec` defaults: new
/// pid, mount, ipc, uts and network namespaces, no terminal), `n` times.
pub(crate) fn runc_run(n: usize) -> Result<Vec<f64>> {
    let dir = tempfile::Builder::new()
        .prefix("corral-bench-runc-")
        .tempdir()?;
    record_state(&format!("root {}", dir.path().display()));
    let cgroup = format!("corral-bench-runc-{}", std::process::id());
    record_state(&format!("cgroup {cgroup}"));
    let bundle = dir.path().join("bundle");
    let state = dir.path().join("state");
    std::fs::create_dir_all(bundle.join("rootfs/bin"))?;
    std::fs::copy(
        corral_testkit::HOST_BUSYBOX,
        bundle.join("rootfs/bin/busybox"),
    )?;
    let out = Command::new("runc")
        .arg("spec")
        .current_dir(&bundle)
        .output()
        .context("runc spec (Debian package runc)")?;
    if !out.status.success() {
        bail!("runc spec: {}", String::from_utf8_lossy(&out.stderr));
    }
    let path = bundle.join("config.json");
    let mut spec: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = serde_json::json!(["/bin/busybox", "true"]);
    spec["root"]["readonly"] = true.into();
    let mut samples = Vec::new();
    let result = (|| -> Result<()> {
        for i in 0..n {
            crate::check_stop()?;
            spec["linux"]["cgroupsPath"] = format!("/{cgroup}/{i}").into();
            std::fs::write(&path, serde_json::to_vec(&spec)?)?;
            let id = format!("corral-bench-{}-{i}", std::process::id());
            let t = Instant::now();
            let status = Command::new("runc")
                .arg("--root")
                .arg(&state)
                .args(["run", "--bundle"])
                .arg(&bundle)
                .arg(&id)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .context("runc run")?;
            samples.push(ms(t.elapsed()));
            if !status.success() {
                bail!("runc run {id}: {status}");
            }
        }
        Ok(())
    })();
    remove_cgroup(&cgroup);
    result.map(|()| samples)
}

/// Removes `/sys/fs/cgroup/*/NAME` and its (empty) children.
fn remove_cgroup(name: &str) {
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for h in hierarchies.flatten() {
        let dir = h.path().join(name);
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
