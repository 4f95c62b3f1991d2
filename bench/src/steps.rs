//! The measurements. Every step drives all engines with the same docker CLI; repeated
//! samples are interleaved across engines so machine noise hits them alike.

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

/// 1. The kernel floor: what any engine pays at least.
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
    let cg = cgroup_floor(n)?;
    let ov = overlay_floor(n)?;
    let med = |v: &[f64]| crate::stats::summarize(v).p50;
    let sum = med(&fork) + med(&clone) + med(&cg) + med(&ov);
    let k = "kernel";
    let lo = Better::Lower;
    r.add(
        "floor_fork",
        "fork+exec+wait /bin/busybox true",
        "ms",
        lo,
        Stat::P50,
        k,
        fork,
    );
    r.add(
        "floor_clone",
        "unshare -pmiun --fork true (namespaces)",
        "ms",
        lo,
        Stat::P50,
        k,
        clone,
    );
    r.add(
        "floor_cgroup",
        "cgroup mkdir+rmdir, every v1 hierarchy + v2",
        "ms",
        lo,
        Stat::P50,
        k,
        cg,
    );
    r.add(
        "floor_overlay",
        "overlayfs mount+umount",
        "ms",
        lo,
        Stat::P50,
        k,
        ov,
    );
    r.add(
        "floor_sum",
        "kernel floor sum (medians of the four above)",
        "ms",
        lo,
        Stat::P50,
        k,
        vec![sum],
    );
    r.add(
        "client_floor",
        "client floor: docker --version (no daemon)",
        "ms",
        lo,
        Stat::P50,
        k,
        client,
    );
    let runc = crate::runc_direct::runc_run(sz.run)?;
    r.add(
        "runc_direct",
        "runc run busybox true, no engine (runc spec bundle)",
        "ms",
        lo,
        Stat::P50,
        k,
        runc,
    );
    Ok(())
}

/// mkdir+rmdir of one cgroup in every hierarchy (hybrid: v1 controllers and v2 unified).
fn cgroup_floor(n: usize) -> Result<Vec<f64>> {
    let mut hierarchies: Vec<PathBuf> = Vec::new();
    for e in std::fs::read_dir("/sys/fs/cgroup")?.flatten() {
        let p = e.path();
        let is_link = e.file_type().map(|t| t.is_symlink()).unwrap_or(true);
        if !is_link && p.join("cgroup.procs").exists() {
            hierarchies.push(p);
        }
    }
    if hierarchies.is_empty() && std::path::Path::new("/sys/fs/cgroup/cgroup.procs").exists() {
        hierarchies.push(PathBuf::from("/sys/fs/cgroup"));
    }
    let name = format!("corral-bench-floor-{}", std::process::id());
    crate::engines::record_state(&format!("cgroup {name}"));
    let mut out = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let mut made = Vec::new();
        let mut res = Ok(());
        for h in &hierarchies {
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

/// 2. `run --rm true`, created→running, and time to the first log line.
pub(crate) fn run_latency(
    r: &mut Results,
    engines: &[Engine],
    img: &Images,
    sz: &Sizes,
) -> Result<()> {
    let mut run: Vec<Vec<f64>> = vec![Vec::new(); engines.len()];
    let mut start = run.clone();
    let mut first = run.clone();
    for _ in 0..sz.run {
        for (i, e) in engines.iter().enumerate() {
            check_stop()?;
            run[i].push(e.timed(&["run", "--rm", NONE, &img.run, "true"])?);
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
            "docker run --rm true",
            "ms",
            lo,
            Stat::P50,
            e.name,
            run[i].clone(),
        );
        r.add(
            "run_rm_p90",
            "docker run --rm true",
            "ms",
            lo,
            Stat::P90,
            e.name,
            run[i].clone(),
        );
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
        let mut ps = Vec::new();
        let mut inspect = Vec::new();
        for i in 0..sz.api_samples {
            check_stop()?;
            ps.push(e.timed(&["ps", "-a"])?);
            inspect.push(e.timed(&["inspect", &names[(i * 7) % names.len()]])?);
        }
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
        let (ping, list) = crate::load::rates(e.socket(), sz.load_secs)?;
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

/// 7. Throughput of a container's stdout through `logs -f`.
pub(crate) fn logs(r: &mut Results, engines: &[Engine], img: &Images, sz: &Sizes) -> Result<()> {
    let bytes = sz.log_mib * 1024 * 1024;
    let log_size = format!("max-size={}m", 2 * sz.log_mib);
    // 64-byte lines, as a chatty service would write them.
    let script = format!(
        "yes 0123456789abcdef0123456789abcdef0123456789abcdef0123456789a | head -c {bytes}"
    );
    for _ in 0..sz.logs {
        for e in engines {
            check_stop()?;
            let t = Instant::now();
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
            let mut child = e
                .command(&["logs", "-f", &id])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()?;
            let mut stdout = child.stdout.take().context("stdout")?;
            let mut buf = vec![0u8; 1 << 16];
            let mut total = 0u64;
            loop {
                let n = stdout.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
            let secs = t.elapsed().as_secs_f64();
            child.wait()?;
            e.cli(&["rm", "-f", &id])?;
            let delivered = total as f64 * 100.0 / bytes as f64;
            r.add(
                "logs_delivered",
                "share of the written bytes `logs -f` delivered",
                "%",
                Better::Higher,
                Stat::P50,
                e.name,
                vec![delivered],
            );
            if total != bytes {
                // A correctness finding, not a benchmark failure: report it and go on.
                let note = format!(
                    "**{}: `logs -f` delivered {total} of {bytes} bytes**: lost output, no throughput recorded",
                    e.name
                );
                eprintln!("bench: {note}");
                r.notes.push(note);
                continue;
            }
            let mibs = (bytes as f64 / 1024.0 / 1024.0) / secs;
            r.add(
                "logs_mibs",
                &format!("{} MiB stdout through logs -f", sz.log_mib),
                "MiB/s",
                Better::Higher,
                Stat::P50,
                e.name,
                vec![mibs],
            );
        }
    }
    Ok(())
}
