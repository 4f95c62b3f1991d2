//! The measurements. Every step drives all engines with the same docker CLI (run latency and
//! the `ps`/`inspect` step also with one Rust API client, [`crate::api_run`]); repeated samples
//! are interleaved across engines so machine noise hits them alike.

use parking_lot::Mutex;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

use anyhow::{bail, Context, Result};
use corral_sys::mount::{LinuxMounts, Mounts};

use crate::engines::{ms, Engine};
use crate::results::{Results, Stat};
use crate::stats::Better;
use crate::{check_stop, Sizes};

/// Image references the steps use.
pub(crate) struct Images {
    /// Small busybox image for containers.
    pub(crate) run: String,
    /// Multi-layer image for the cold pull.
    pub(crate) pull_a: String,
    /// An image sharing `pull_a`'s base layer.
    pub(crate) pull_b: String,
}

const NONE: &str = "--network=none";

/// Runs `f(i)` for `i in 0..n` on `conc` threads; returns the wall time in seconds.
fn parallel(n: usize, conc: usize, f: impl Fn(usize) -> Result<()> + Sync) -> Result<f64> {
    let next = AtomicUsize::new(0);
    let err: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..conc.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n || crate::stopped() {
                    break;
                }
                if let Err(e) = f(i) {
                    err.lock().get_or_insert(e);
                    break;
                }
            });
        }
    });
    let elapsed = t.elapsed().as_secs_f64();
    if let Some(e) = err.into_inner() {
        return Err(e);
    }
    check_stop()?;
    Ok(elapsed)
}

fn time_cmd(cmd: &mut Command) -> Result<f64> {
    let t = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("spawn {cmd:?}"))?;
    let e = ms(t.elapsed());
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(e)
}

/// 1. The kernel floor: what any engine pays at least; and the OCI runtimes driven directly.
pub(crate) fn kernel_floor(r: &mut Results, sz: &Sizes) -> Result<()> {
    let n = sz.floor;
    let mut fork = Vec::new();
    let mut clone = Vec::new();
    let mut client = Vec::new();
    for _ in 0..n {
        check_stop()?;
        fork.push(time_cmd(Command::new("/bin/busybox").arg("true"))?);
        clone.push(time_cmd(Command::new("unshare").args([
            "-pmiun",
            "--fork",
            "/bin/busybox",
            "true",
        ]))?);
        client.push(time_cmd(
            Command::new(corral_testkit::DOCKER_CLI).arg("--version"),
        )?);
    }
    let (v1, v2) = cgroup_hierarchies()?;
    let cg1 = cgroup_floor(n, &v1, "v1")?;
    let cg2 = cgroup_floor(n, &v2, "v2")?;
    let attach = cgroup_attach_floor(n, &v1, true)?;
    let attach_quiet = cgroup_attach_floor(n, &v1, false)?;
    let ov = overlay_floor(n)?;
    let veth = veth_floor(n)?;
    // A step with no samples (v1 steps on a pure v2 host) adds nothing to the sum.
    let med = |v: &[f64]| {
        if v.is_empty() {
            0.0
        } else {
            crate::stats::summarize(v).p50
        }
    };
    let sum = med(&fork) + med(&clone) + med(&cg1) + med(&cg2) + med(&attach) + med(&ov);
    let k = "kernel";
    let lo = Better::Lower;
    let mut add = |key: &str, title: &str, v: Vec<f64>| {
        r.add(key, title, "ms", lo, Stat::P50, k, v);
    };
    add("floor_fork", "fork+exec+wait /bin/busybox true", fork);
    add(
        "floor_clone",
        "unshare -pmiun --fork true (namespaces)",
        clone,
    );
    add(
        "floor_cgroup_v1",
        &format!("cgroup v1 mkdir+rmdir, {} hierarchies", v1.len()),
        cg1,
    );
    add(
        "floor_cgroup_v2",
        &format!("cgroup v2 mkdir+rmdir, {} hierarchy", v2.len()),
        cg2,
    );
    add(
        "floor_cgroup_attach",
        &format!(
            "cgroup v1: a task moved into a new cgroup of each of {} hierarchies (cgroup.procs writes, right after another move)",
            v1.len()
        ),
        attach,
    );
    add(
        "floor_cgroup_attach_quiet",
        "the same after 50 ms without a move (not in the sum: adds an RCU grace period unless the cgroup2 root has favordynmods)",
        attach_quiet,
    );
    add("floor_overlay", "overlayfs mount+umount", ov);
    add(
        "floor_veth",
        "veth pair into a bridge: add, enslave, up, del (not in the sum: runs use --network=none)",
        veth,
    );
    add(
        "floor_sum",
        "kernel floor sum (medians of fork, clone, cgroup v1, cgroup v2, v1 attach, overlay)",
        vec![sum],
    );
    add(
        "client_floor",
        "client floor: docker --version (no daemon)",
        client,
    );
    let runc = crate::runc_direct::run("runc", sz.run)?;
    add(
        "runc_direct",
        "runc run busybox true, no engine (runc spec bundle)",
        runc.run,
    );
    if std::path::Path::new(crate::runc_direct::CRUN).exists() {
        match crate::runc_direct::run(crate::runc_direct::CRUN, sz.run) {
            Ok(c) => {
                add(
                    "crun_direct",
                    "crun run busybox true, no engine, via nsenter into a v1-only mount namespace",
                    c.run,
                );
                if !c.nsenter.is_empty() {
                    add(
                        "nsenter_floor",
                        "nsenter -m true (the part of the crun row that is not crun)",
                        c.nsenter,
                    );
                }
            }
            Err(e) => {
                check_stop()?;
                let note = format!("crun driven directly: no figure: {e:#}");
                eprintln!("bench: {note}");
                r.notes.push(note);
            }
        }
    } else {
        r.notes
            .push("crun driven directly: not installed (Debian crun)".into());
    }
    Ok(())
}

/// The cgroup hierarchies: (v1 controller hierarchies, the v2 one), symlinks skipped.
fn cgroup_hierarchies() -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let root = std::path::Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        return Ok((Vec::new(), vec![root.to_path_buf()]));
    }
    let mut v1 = Vec::new();
    let mut v2 = Vec::new();
    for e in std::fs::read_dir(root)?.flatten() {
        let p = e.path();
        let is_link = e.file_type().map(|t| t.is_symlink()).unwrap_or(true);
        if is_link || !p.join("cgroup.procs").exists() {
            continue;
        }
        if p.join("cgroup.controllers").exists() {
            v2.push(p);
        } else {
            v1.push(p);
        }
    }
    v1.sort();
    Ok((v1, v2))
}

/// mkdir+rmdir of one cgroup in each of `hierarchies`; empty samples when there are none.
fn cgroup_floor(n: usize, hierarchies: &[PathBuf], tag: &str) -> Result<Vec<f64>> {
    if hierarchies.is_empty() {
        return Ok(Vec::new());
    }
    let name = format!("corral-bench-floor-{tag}-{}", std::process::id());
    crate::engines::record_state(&format!("cgroup {name}"));
    let mut out = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let mut made = Vec::new();
        let mut res = Ok(());
        for h in hierarchies {
            let d = h.join(&name);
            match std::fs::create_dir(&d) {
                Ok(()) => made.push(d),
                Err(e) => {
                    res = Err(e).with_context(|| format!("mkdir {}", d.display()));
                    break;
                }
            }
        }
        for d in made.iter().rev() {
            std::fs::remove_dir(d).with_context(|| format!("rmdir {}", d.display()))?;
        }
        res?;
        out.push(ms(t.elapsed()));
    }
    Ok(out)
}

/// Moving a task into a new cgroup of each v1 hierarchy: the `cgroup.procs` writes only (the
/// cgroups already exist), one fresh `sleep` per sample, 50 ms apart. What every container
/// start pays on a host with v1 controllers, which have no `CLONE_INTO_CGROUP`.
///
/// The first such write after a quiet spell waits for an RCU grace period (the global
/// `cgroup_threadgroup_rwsem` leaves its fast mode), unless the cgroup2 root was mounted with
/// `favordynmods` since boot (docs/performance.md); a write soon after another does not.
/// With `warm`, an untimed move of the task into another cgroup comes right before the timed
/// writes, so they measure the attach itself, the least any start pays (the floor sum uses
/// this); without it they include the wait when the host has it. Empty on a pure v2 host.
fn cgroup_attach_floor(n: usize, v1: &[PathBuf], warm: bool) -> Result<Vec<f64>> {
    if v1.is_empty() {
        return Ok(Vec::new());
    }
    let tag = if warm { "warm" } else { "quiet" };
    let name = format!("corral-bench-attach-{tag}-{}", std::process::id());
    crate::engines::record_state(&format!("cgroup {name}"));
    let dirs: Vec<PathBuf> = v1.iter().map(|h| h.join(&name)).collect();
    // The cgroup the warm-up move goes to: a sibling in a hierarchy other than cpuset (whose
    // new cgroups take no task before their CPUs and memory nodes are set).
    let pre_hierarchy = v1
        .iter()
        .find(|h| !h.to_string_lossy().contains("cpuset"))
        .unwrap_or(&v1[0]);
    let warm_dir = warm.then(|| pre_hierarchy.join(format!("{name}-pre")));
    if let Some(w) = &warm_dir {
        crate::engines::record_state(&format!("cgroup {name}-pre"));
        if !w.exists() {
            std::fs::create_dir(w).with_context(|| format!("mkdir {}", w.display()))?;
        }
    }
    let mut out = Vec::new();
    for _ in 0..n {
        check_stop()?;
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut child = Command::new("sleep")
            .arg("600")
            .stdin(Stdio::null())
            .spawn()
            .context("spawn sleep")?;
        let pid = child.id().to_string();
        let sample = (|| -> Result<f64> {
            for d in &dirs {
                std::fs::create_dir(d).with_context(|| format!("mkdir {}", d.display()))?;
                // A new v1 cpuset has no CPUs or memory nodes and takes no task: inherit the
                // parent's, as runtimes do.
                for f in ["cpuset.cpus", "cpuset.mems"] {
                    if let Some(parent) = d.parent().filter(|_| d.join(f).exists()) {
                        let v = std::fs::read_to_string(parent.join(f))?;
                        std::fs::write(d.join(f), v.trim())
                            .with_context(|| format!("write {}", d.join(f).display()))?;
                    }
                }
            }
            if let Some(w) = &warm_dir {
                let procs = w.join("cgroup.procs");
                std::fs::write(&procs, &pid)
                    .with_context(|| format!("write {}", procs.display()))?;
            }
            let t = Instant::now();
            for d in &dirs {
                let procs = d.join("cgroup.procs");
                std::fs::write(&procs, &pid)
                    .with_context(|| format!("write {}", procs.display()))?;
            }
            Ok(ms(t.elapsed()))
        })();
        let _ = child.kill();
        let _ = child.wait();
        for d in dirs.iter().rev() {
            if d.exists() {
                std::fs::remove_dir(d).with_context(|| format!("rmdir {}", d.display()))?;
            }
        }
        out.push(sample?);
    }
    if let Some(w) = &warm_dir {
        std::fs::remove_dir(w).with_context(|| format!("rmdir {}", w.display()))?;
    }
    Ok(out)
}

/// A private network namespace with a bridge; deleted on drop.
struct BenchNetns(String);

impl Drop for BenchNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.0])
            .stderr(Stdio::null())
            .status();
    }
}

/// A veth pair created, one end enslaved to a bridge and brought up, then deleted, in a
/// private network namespace. One `ip -batch` runs 20 rounds per sample, so the exec of `ip`
/// is spread over them; each sample is the time per round.
fn veth_floor(n: usize) -> Result<Vec<f64>> {
    const ROUNDS: usize = 20;
    let name = format!("corral-bench-{}", std::process::id());
    crate::engines::record_state(&format!("netns {name}"));
    let ip = |args: &[&str]| -> Result<()> {
        let out = Command::new("ip")
            .args(args)
            .output()
            .context("ip (iproute2)")?;
        if !out.status.success() {
            bail!(
                "ip {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    };
    ip(&["netns", "add", &name])?;
    let ns = BenchNetns(name);
    ip(&["-n", &ns.0, "link", "add", "cbr0", "type", "bridge"])?;
    ip(&["-n", &ns.0, "link", "set", "cbr0", "up"])?;
    let dir = tempfile::Builder::new()
        .prefix("corral-bench-veth-")
        .tempdir()?;
    let batch = dir.path().join("batch");
    let round = "link add cva type veth peer name cvb\nlink set cva master cbr0\nlink set cva up\nlink del cva\n";
    std::fs::write(&batch, round.repeat(ROUNDS))?;
    let mut out = Vec::new();
    for _ in 0..n {
        check_stop()?;
        let mut cmd = Command::new("ip");
        cmd.args(["-n", &ns.0, "-batch"]).arg(&batch);
        out.push(time_cmd(&mut cmd)? / ROUNDS as f64);
    }
    drop(ns);
    Ok(out)
}

/// overlayfs mount+umount of one lower, upper and work dir.
fn overlay_floor(n: usize) -> Result<Vec<f64>> {
    let dir = tempfile::Builder::new()
        .prefix("corral-bench-ovl-")
        .tempdir()?;
    crate::engines::record_state(&format!("root {}", dir.path().display()));
    let p = |s: &str| -> Result<PathBuf> {
        let d = dir.path().join(s);
        std::fs::create_dir_all(&d)?;
        Ok(d)
    };
    let (lower, upper, work, merged) = (p("l")?, p("u")?, p("w")?, p("m")?);
    std::fs::write(lower.join("f"), b"x")?;
    let m = LinuxMounts::new();
    let mut out = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        m.mount_overlay(std::slice::from_ref(&lower), &upper, &work, &merged)
            .context("mount overlay")?;
        let un = m.unmount(&merged);
        out.push(ms(t.elapsed()));
        un.context("umount overlay")?;
    }
    Ok(out)
}

/// Run latency: `run --rm true` (docker CLI, and one Rust API client for the daemons),
/// created→running, and time to the first log line (issue 7, item 2).
pub(crate) fn run_latency(
    r: &mut Results,
    engines: &[Engine],
    img: &Images,
    sz: &Sizes,
) -> Result<()> {
    let mut run: Vec<Vec<f64>> = vec![Vec::new(); engines.len()];
    let mut api = run.clone();
    let mut start = run.clone();
    let mut first = run.clone();
    let clients = engines
        .iter()
        .map(|e| {
            e.socket()
                .map(|s| crate::api_run::ApiClient::new(e.name, s))
                .transpose()
        })
        .collect::<Result<Vec<_>>>()?;
    for _ in 0..sz.run {
        for (i, e) in engines.iter().enumerate() {
            check_stop()?;
            run[i].push(e.timed(&["run", "--rm", NONE, &img.run, "true"])?);
            if let Some(c) = &clients[i] {
                api[i].push(c.run_rm_true(&img.run)?);
            }
            let id = e.cli(&["create", NONE, &img.run, "sleep", "600"])?;
            start[i].push(e.timed(&["start", &id])?);
            e.cli(&["rm", "-f", &id])?;
            first[i].push(first_line(e, &img.run)?);
        }
    }
    for (i, e) in engines.iter().enumerate() {
        let lo = Better::Lower;
        r.add(
            "run_rm_p50",
            "docker run --rm true (podman run for Podman)",
            "ms",
            lo,
            Stat::P50,
            e.name,
            run[i].clone(),
        );
        r.add(
            "run_rm_p90",
            "docker run --rm true (podman run for Podman)",
            "ms",
            lo,
            Stat::P90,
            e.name,
            run[i].clone(),
        );
        if clients[i].is_some() {
            r.add(
                "run_api_p50",
                "run --rm true through the API (create AutoRemove, wait removed, start)",
                "ms",
                lo,
                Stat::P50,
                e.name,
                api[i].clone(),
            );
            r.add(
                "run_api_p90",
                "run --rm true through the API (create AutoRemove, wait removed, start)",
                "ms",
                lo,
                Stat::P90,
                e.name,
                api[i].clone(),
            );
        }
        r.add(
            "start",
            "docker start (created → running)",
            "ms",
            lo,
            Stat::P50,
            e.name,
            start[i].clone(),
        );
        r.add(
            "first_line",
            "docker run --rm echo: first stdout line",
            "ms",
            lo,
            Stat::P50,
            e.name,
            first[i].clone(),
        );
    }
    Ok(())
}

/// A bridge the benchmark owns on the host (for the reference dockerd's `-b`); deleted on drop.
struct HostBridge(String);

impl HostBridge {
    /// Creates `cbb<pid>` with 10.231.X.1/24, X from the pid; fails when that subnet is routed.
    fn create() -> Result<Self> {
        let name = format!("cbb{}", std::process::id() % 100_000);
        let net = format!("10.231.{}", std::process::id() % 200 + 20);
        let routes = Command::new("ip")
            .args(["-4", "route", "show", &format!("{net}.0/24")])
            .output()
            .context("ip route")?;
        if !routes.stdout.is_empty() {
            bail!("{net}.0/24 is already routed on this host");
        }
        crate::engines::record_state(&format!("link {name}"));
        let ip = |args: &[&str]| -> Result<()> {
            let out = Command::new("ip").args(args).output().context("ip")?;
            if !out.status.success() {
                bail!(
                    "ip {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            Ok(())
        };
        ip(&["link", "add", &name, "type", "bridge"])?;
        let b = HostBridge(name);
        ip(&["addr", "add", &format!("{net}.1/24"), "dev", &b.0])?;
        ip(&["link", "set", &b.0, "up"])?;
        Ok(b)
    }
}

impl Drop for HostBridge {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.0])
            .stderr(Stdio::null())
            .status();
    }
}

/// 2b. `run --rm true` on the default bridge network: Corral's default `bridge` network (its
/// own bridge and nftables table), and a dockerd started for this step on a bridge the
/// benchmark created (`-b`, `--iptables=false`: the reference dockerd must not touch the
/// host's firewall, so it sets up no NAT rules; Corral's table is its own). Podman's default
/// network needs CNI plugins and is left out.
pub(crate) fn run_bridge(
    r: &mut Results,
    engines: &[Engine],
    img: &Images,
    sz: &Sizes,
    registry: &str,
) -> Result<()> {
    let bridge = HostBridge::create()?;
    let dockerd = Engine::dockerd_bridge(registry, &bridge.0)?;
    dockerd.cli(&["pull", "-q", &img.run])?;
    let corrals: Vec<&Engine> = engines
        .iter()
        .filter(|e| e.name.starts_with("corral"))
        .collect();
    let mut all: Vec<&Engine> = vec![&dockerd];
    all.extend(corrals);
    let mut run: Vec<Vec<f64>> = vec![Vec::new(); all.len()];
    let mut veth_ok = true;
    for k in 0..sz.run {
        for (i, e) in all.iter().enumerate() {
            check_stop()?;
            if k == 0 {
                // Check the container really has a routed interface on the bridge.
                let out = e.cli(&["run", "--rm", &img.run, "cat", "/proc/net/route"])?;
                veth_ok &= out.contains("eth0");
            }
            run[i].push(e.timed(&["run", "--rm", &img.run, "true"])?);
        }
    }
    if !veth_ok {
        bail!("a container on the default bridge has no route through eth0");
    }
    for (i, e) in all.iter().enumerate() {
        for (key, stat) in [("run_bridge_p50", Stat::P50), ("run_bridge_p90", Stat::P90)] {
            r.add(
                key,
                "docker run --rm true, default bridge network",
                "ms",
                Better::Lower,
                stat,
                e.name,
                run[i].clone(),
            );
        }
    }
    let _ = dockerd.remove_all();
    drop(dockerd);
    drop(bridge);
    Ok(())
}

fn first_line(e: &Engine, img: &str) -> Result<f64> {
    let t = Instant::now();
    let mut child = e
        .command(&["run", "--rm", NONE, img, "echo", "hello"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdout = child.stdout.take().context("stdout")?;
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    let mut elapsed = None;
    loop {
        let n = stdout.read(&mut buf)?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        if elapsed.is_none() && got.contains(&b'\n') {
            elapsed = Some(ms(t.elapsed()));
        }
    }
    let status = child.wait()?;
    match elapsed {
        Some(v) if status.success() && got == b"hello\n" => Ok(v),
        _ => bail!(
            "{}: run echo printed {:?} ({status})",
            e.name,
            String::from_utf8_lossy(&got)
        ),
    }
}

/// 3. `run -d sleep` throughput at concurrency 1/4/16, then stop and remove throughput.
pub(crate) fn throughput(
    r: &mut Results,
    engines: &[Engine],
    img: &Images,
    sz: &Sizes,
) -> Result<()> {
    let n = sz.throughput;
    for conc in [1usize, 4, 16] {
        for e in engines {
            check_stop()?;
            let ids = Mutex::new(Vec::new());
            let start = parallel(n, conc, |_| {
                let id = e.cli(&["run", "-d", NONE, &img.run, "sleep", "600"])?;
                ids.lock().push(id);
                Ok(())
            })?;
            let ids = ids.into_inner();
            let stop = parallel(ids.len(), conc, |i| {
                e.cli(&["stop", "-t", "0", &ids[i]]).map(drop)
            })?;
            let rm = parallel(ids.len(), conc, |i| e.cli(&["rm", &ids[i]]).map(drop))?;
            let hi = Better::Higher;
            let rate = |secs: f64| vec![n as f64 / secs];
            r.add(
                &format!("start_c{conc}"),
                &format!("run -d sleep, concurrency {conc}"),
                "containers/s",
                hi,
                Stat::P50,
                e.name,
                rate(start),
            );
            r.add(
                &format!("stop_c{conc}"),
                &format!("stop -t 0, concurrency {conc}"),
                "containers/s",
                hi,
                Stat::P50,
                e.name,
                rate(stop),
            );
            r.add(
                &format!("rm_c{conc}"),
                &format!("rm, concurrency {conc}"),
                "containers/s",
                hi,
                Stat::P50,
                e.name,
                rate(rm),
            );
        }
    }
    Ok(())
}

/// 4. Cold pull of the multi-layer image, then of an image sharing its base layer.
pub(crate) fn pull(r: &mut Results, engines: &[Engine], img: &Images, sz: &Sizes) -> Result<()> {
    for _ in 0..sz.pull {
        for e in engines {
            check_stop()?;
            let _ = e.cli(&["rmi", "-f", &img.pull_a, &img.pull_b]);
            let a = e.timed(&["pull", "-q", &img.pull_a])?;
            let b = e.timed(&["pull", "-q", &img.pull_b])?;
            let lo = Better::Lower;
            r.add(
                "pull_cold",
                "cold pull, 6 layers",
                "ms",
                lo,
                Stat::P50,
                e.name,
                vec![a],
            );
            r.add(
                "pull_shared",
                "pull of a 2-layer image sharing the base",
                "ms",
                lo,
                Stat::P50,
                e.name,
                vec![b],
            );
        }
    }
    Ok(())
}

/// 5a. Idle engine memory (RSS and PSS of every engine process), a few samples.
pub(crate) fn idle_memory(r: &mut Results, engines: &[Engine]) -> Result<()> {
    for _ in 0..3 {
        check_stop()?;
        std::thread::sleep(Duration::from_millis(500));
        for e in engines {
            let (rss, pss) = e.memory_kib();
            r.add(
                "idle_rss",
                "idle engine RSS",
                "MiB",
                Better::Lower,
                Stat::P50,
                e.name,
                vec![rss as f64 / 1024.0],
            );
            r.add(
                "idle_pss",
                "idle engine PSS",
                "MiB",
                Better::Lower,
                Stat::P50,
                e.name,
                vec![pss as f64 / 1024.0],
            );
        }
    }
    Ok(())
}

/// 5b. Memory per running container (shims and container processes included).
pub(crate) fn container_memory(
    r: &mut Results,
    engines: &[Engine],
    img: &Images,
    sz: &Sizes,
) -> Result<()> {
    for e in engines {
        check_stop()?;
        e.remove_all()?;
        std::thread::sleep(Duration::from_secs(1));
        let (rss0, pss0) = e.memory_kib();
        let mut running = 0;
        for &level in &sz.memory_levels {
            let add = level.saturating_sub(running);
            parallel(add, 4, |_| {
                e.cli(&["run", "-d", NONE, &img.run, "sleep", "3600"])
                    .map(drop)
            })?;
            running = level;
            std::thread::sleep(Duration::from_secs(2));
            let (rss, pss) = e.memory_kib();
            let per = |x: u64, x0: u64| (x.saturating_sub(x0)) as f64 / 1024.0 / level as f64;
            r.add(
                &format!("rss_at_{level}"),
                &format!("engine RSS with {level} running"),
                "MiB",
                Better::Lower,
                Stat::P50,
                e.name,
                vec![rss as f64 / 1024.0],
            );
            r.add(
                "per_container_rss",
                "RSS per running container",
                "MiB",
                Better::Lower,
                Stat::P50,
                e.name,
                vec![per(rss, rss0)],
            );
            r.add(
                "per_container_pss",
                "PSS per running container",
                "MiB",
                Better::Lower,
                Stat::P50,
                e.name,
                vec![per(pss, pss0)],
            );
        }
        e.remove_all()?;
    }
    Ok(())
}

/// 6. `ps -a` and `inspect` latency with many containers, and API request rates.
pub(crate) fn api(r: &mut Results, engines: &[Engine], img: &Images, sz: &Sizes) -> Result<()> {
    for e in engines {
        check_stop()?;
        let names: Vec<String> = (0..sz.api_containers)
            .map(|i| format!("bench-api-{i}"))
            .collect();
        parallel(names.len(), 4, |i| {
            e.cli(&["create", NONE, "--name", &names[i], &img.run, "true"])
                .map(drop)
        })?;
        let listed = e.cli(&["ps", "-aq"])?.lines().count();
        if listed < names.len() {
            bail!(
                "{}: ps -a lists {listed} containers, {} created",
                e.name,
                names.len()
            );
        }
        // The same requests through one Rust API client (no CLI start-up or rendering), on a
        // kept-alive connection opened by an untimed first request.
        let client = e
            .socket()
            .map(|s| crate::api_run::ApiClient::new(e.name, s))
            .transpose()?;
        if let Some(c) = &client {
            c.list_all(names.len())?;
        }
        let mut ps = Vec::new();
        let mut inspect = Vec::new();
        let mut api_ps = Vec::new();
        let mut api_inspect = Vec::new();
        for i in 0..sz.api_samples {
            check_stop()?;
            let name = &names[(i * 7) % names.len()];
            ps.push(e.timed(&["ps", "-a"])?);
            inspect.push(e.timed(&["inspect", name])?);
            if let Some(c) = &client {
                api_ps.push(c.list_all(names.len())?);
                api_inspect.push(c.inspect(name)?);
            }
        }
        drop(client);
        let lo = Better::Lower;
        let title = format!("docker ps -a, {} containers", names.len());
        r.add("ps_p50", &title, "ms", lo, Stat::P50, e.name, ps.clone());
        r.add("ps_p99", &title, "ms", lo, Stat::P99, e.name, ps);
        let title = format!("docker inspect, {} containers", names.len());
        r.add(
            "inspect_p50",
            &title,
            "ms",
            lo,
            Stat::P50,
            e.name,
            inspect.clone(),
        );
        r.add("inspect_p99", &title, "ms", lo, Stat::P99, e.name, inspect);
        if !api_ps.is_empty() {
            let title = format!(
                "GET /containers/json?all=1 through the API (bollard), {} containers",
                names.len()
            );
            r.add(
                "ps_api_p50",
                &title,
                "ms",
                lo,
                Stat::P50,
                e.name,
                api_ps.clone(),
            );
            r.add("ps_api_p99", &title, "ms", lo, Stat::P99, e.name, api_ps);
            let title = format!(
                "GET /containers/NAME/json through the API (bollard), {} containers",
                names.len()
            );
            r.add(
                "inspect_api_p50",
                &title,
                "ms",
                lo,
                Stat::P50,
                e.name,
                api_inspect.clone(),
            );
            r.add(
                "inspect_api_p99",
                &title,
                "ms",
                lo,
                Stat::P99,
                e.name,
                api_inspect,
            );
        }
        let Some(socket) = e.socket() else {
            // Podman without `podman system service` has no API to load.
            e.remove_all()?;
            continue;
        };
        let (ping, list) = crate::load::rates(socket, sz.load_secs)?;
        let hi = Better::Higher;
        r.add(
            "rate_ping",
            "GET /_ping, 8 connections",
            "req/s",
            hi,
            Stat::P50,
            e.name,
            vec![ping],
        );
        r.add(
            "rate_list",
            &format!(
                "GET /containers/json?all=1 ({} containers), 8 connections",
                names.len()
            ),
            "req/s",
            hi,
            Stat::P50,
            e.name,
            vec![list],
        );
        e.remove_all()?;
    }
    Ok(())
}

/// 7. Throughput of a container's stdout through `logs -f`, and of reading the finished log.
///
/// The container sleeps before it writes, so `logs -f` is attached before the first byte on
/// every engine (`logs -f` of a created container does not follow on dockerd: it answers with
/// what is there and ends). The follow figure is bytes ÷ (end of stream − first byte): what the
/// follower receives while the container writes, not the CLI's start-up or the sleep. After the
/// container exited, a plain `logs` reads the whole file back: that is the "whole log
/// readable" figure, and it shows whether a short follow lost output or only ended early.
pub(crate) fn logs(r: &mut Results, engines: &[Engine], img: &Images, sz: &Sizes) -> Result<()> {
    let bytes = sz.log_mib * 1024 * 1024;
    // json-file's max-size counts the JSON-encoded file (a 64-byte line becomes ~145 bytes with
    // its `log`/`stream`/`time` keys), not the payload: at 2× the payload dockerd rotated the
    // file during the run and, with max-file 1, dropped the older part (the 88.1 % of an earlier
    // run; a follower crossing the rotation can also get a part twice). 4× never rotates.
    let log_size = format!("max-size={}m", 4 * sz.log_mib);
    // 64-byte lines, as a chatty service would write them.
    let script = format!(
        "sleep {}; yes 0123456789abcdef0123456789abcdef0123456789abcdef0123456789a | head -c {bytes}",
        sz.log_delay_secs
    );
    for _ in 0..sz.logs {
        for e in engines {
            check_stop()?;
            // The same json-file settings on every engine, large enough that the file never
            // rotates: Corral's daemon default is 10 MiB x 3 and dockerd's is unbounded, and a
            // follower that falls more than `max-file` rotations behind a writer loses output
            // on either engine. This step measures throughput, not rotation.
            let id = e.cli(&[
                "run",
                "-d",
                NONE,
                "--log-opt",
                &log_size,
                &img.run,
                "sh",
                "-c",
                &script,
            ])?;
            // Podman 4.3's `logs -f` of a k8s-file log delivered 8 MiB in ~800 s on this VM
            // (0.01 MiB/s, its follow reader polls): 256 MiB would take hours, so Podman gets the
            // plain read only.
            let follow = if e.is_podman() {
                None
            } else {
                let t = Instant::now();
                let mut child = e
                    .command(&["logs", "-f", &id])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()?;
                let counted = count_stream(child.stdout.take().context("stdout")?, t)?;
                child.wait()?;
                Some(counted)
            };
            e.cli(&["wait", &id])?;
            let t_read = Instant::now();
            let mut plain = e
                .command(&["logs", &id])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()?;
            let (read_total, _, _) = count_stream(plain.stdout.take().context("stdout")?, t_read)?;
            let read_secs = t_read.elapsed().as_secs_f64();
            plain.wait()?;
            e.cli(&["rm", "-f", &id])?;
            let mib = |b: u64| b as f64 / 1024.0 / 1024.0;
            let pct = |b: u64| b as f64 * 100.0 / bytes as f64;
            let read_mibs = mib(bytes) / read_secs;
            r.add(
                "logs_read_delivered",
                "share of the written bytes a plain `logs` after exit delivered",
                "%",
                Better::Higher,
                Stat::P50,
                e.name,
                vec![pct(read_total)],
            );
            if read_total == bytes {
                r.add(
                    "logs_read_mibs",
                    &format!("reading the finished {} MiB log (plain logs)", sz.log_mib),
                    "MiB/s",
                    Better::Higher,
                    Stat::P50,
                    e.name,
                    vec![read_mibs],
                );
            }
            let Some((total, first, end)) = follow else {
                continue;
            };
            r.add(
                "logs_delivered",
                "share of the written bytes `logs -f` delivered",
                "%",
                Better::Higher,
                Stat::P50,
                e.name,
                vec![pct(total)],
            );
            if total != bytes {
                // A correctness finding, not a benchmark failure: report it and go on.
                let note = format!(
                    "**{}: `logs -f` delivered {total} of {bytes} bytes** ({:.1} %; a plain `logs` after exit: {read_total}): no follow throughput recorded for this sample",
                    e.name,
                    pct(total)
                );
                eprintln!("bench: {note}");
                r.notes.push(note);
                continue;
            }
            let span = match (first, end) {
                (Some(f), Some(e)) if e > f => e - f,
                _ => end.unwrap_or_default(),
            };
            r.add(
                "logs_mibs",
                &format!(
                    "{} MiB stdout through logs -f (first byte → end of stream)",
                    sz.log_mib
                ),
                "MiB/s",
                Better::Higher,
                Stat::P50,
                e.name,
                vec![mib(bytes) / span.max(1e-6)],
            );
        }
    }
    Ok(())
}

/// Reads `stream` to its end: (bytes, seconds from `t` to the first byte, to the end).
fn count_stream(mut stream: impl Read, t: Instant) -> Result<(u64, Option<f64>, Option<f64>)> {
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    let mut first = None;
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if first.is_none() {
            first = Some(t.elapsed().as_secs_f64());
        }
        total += n as u64;
    }
    Ok((total, first, Some(t.elapsed().as_secs_f64())))
}
