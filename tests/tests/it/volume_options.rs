//! `docker volume create --driver local --opt type=… --opt device=… --opt o=…`: the
//! volume's filesystem is mounted at its `_data` directory while containers run with it,
//! shared by all of them, and unmounted after the last one; bad options and failing
//! mounts fail with dockerd's messages and leave nothing mounted.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use corral_testkit::SubjectKind;

use crate::common::{assert_contains, Env};

/// A unique volume name; tests remove their volumes themselves.
fn vol_name(base: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "e2e-vo-{base}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// `volume create --opt K=V … NAME`.
fn create(env: &Env, name: &str, opts: &[&str]) -> corral_testkit::Output {
    let mut args = vec!["volume", "create"];
    for o in opts {
        args.extend_from_slice(&["--opt", o]);
    }
    args.push(name);
    env.docker(&args)
}

/// The mountinfo line of the mount at `path` (field 5), if any.
fn mount_line(path: &str) -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    text.lines()
        .find(|l| l.split(' ').nth(4) == Some(path))
        .map(str::to_owned)
}

fn mountpoint(env: &Env, v: &str) -> String {
    env.docker(&["volume", "inspect", "-f", "{{.Mountpoint}}", v])
        .ok()
        .out()
        .to_owned()
}

#[test]
#[ignore = "needs root: starts an engine"]
fn tmpfs_volume_is_mounted_while_used_and_shared_by_containers() {
    let env = Env::new();
    let v = vol_name("tmpfs");
    create(
        &env,
        &v,
        &["type=tmpfs", "device=tmpfs", "o=size=10m,uid=1000"],
    )
    .ok();
    assert_eq!(
        env.docker(&["volume", "inspect", "-f", "{{json .Options}}", &v])
            .ok()
            .out(),
        r#"{"device":"tmpfs","o":"size=10m,uid=1000","type":"tmpfs"}"#
    );
    let mp = mountpoint(&env, &v);
    assert!(mount_line(&mp).is_none(), "not mounted before first use");

    let c1 = env.sleeper("tmpfs1", &["-v", &format!("{v}:/data")]);
    let line = mount_line(&mp).expect("mounted while a container uses it");
    assert!(line.contains(" - tmpfs tmpfs "), "{line}");
    assert!(
        line.contains("size=10240k") && line.contains("uid=1000"),
        "{line}"
    );
    env.docker(&["exec", &c1, "sh", "-c", "echo shared > /data/f"])
        .ok();
    assert_eq!(
        env.docker(&["exec", &c1, "sh", "-c", "ls -lnd /data | awk '{print $3}'"])
            .ok()
            .out(),
        "1000"
    );
    let c2 = env.sleeper("tmpfs2", &["-v", &format!("{v}:/other")]);
    assert_eq!(
        env.docker(&["exec", &c2, "cat", "/other/f"]).ok().out(),
        "shared"
    );

    env.docker(&["stop", "-t", "0", &c1]).ok();
    assert!(
        mount_line(&mp).is_some(),
        "still mounted for the second user"
    );
    assert_eq!(
        env.docker(&["exec", &c2, "cat", "/other/f"]).ok().out(),
        "shared"
    );
    env.docker(&["stop", "-t", "0", &c2]).ok();
    assert!(mount_line(&mp).is_none(), "unmounted after the last user");

    // A fresh tmpfs on the next start.
    env.docker(&["start", &c1]).ok();
    assert!(mount_line(&mp).is_some());
    env.docker(&["exec", &c1, "sh", "-c", "test ! -e /data/f"])
        .ok();
    let out = env.docker(&["volume", "rm", &v]);
    assert_contains(out.failed().err(), "volume is in use");
    env.docker(&["rm", "-f", &c1, &c2]).ok();
    assert!(mount_line(&mp).is_none());
    env.docker(&["volume", "rm", &v]).ok();
    assert!(!Path::new(&mp).exists());
}

#[test]
#[ignore = "needs root: starts an engine"]
fn bind_volume_shows_the_host_directory_and_is_populated_like_dockerd() {
    let env = Env::new();
    let host = tempfile::tempdir().unwrap();
    let hp = host.path().to_str().unwrap();
    let v = vol_name("bind");
    create(&env, &v, &["type=none", "o=bind", &format!("device={hp}")]).ok();
    let mp = mountpoint(&env, &v);
    // dockerd copies the image content into the empty volume, which here is the host
    // directory.
    let out = env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{v}:/bin"),
        &env.image,
        "sh",
        "-c",
        "echo from-container > /bin/made",
    ]);
    out.ok();
    assert_eq!(
        std::fs::read_to_string(host.path().join("made")).unwrap(),
        "from-container\n"
    );
    assert!(host.path().join("busybox").is_file(), "populated from /bin");
    assert!(mount_line(&mp).is_none(), "unmounted after the container");
    // Read-only use of a bind volume.
    let out = env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{v}:/d:ro"),
        &env.image,
        "sh",
        "-c",
        "cat /d/made; touch /d/x 2>/dev/null && echo writable || echo readonly",
    ]);
    assert_eq!(out.ok().out(), "from-container\nreadonly");
    // Removing the volume keeps the host directory's content.
    env.docker(&["volume", "rm", &v]).ok();
    assert!(!Path::new(&mp).exists());
    assert!(host.path().join("made").is_file());
}

#[test]
#[ignore = "needs root: starts an engine"]
fn failing_volume_mount_fails_the_start_and_leaves_nothing_mounted() {
    let env = Env::new();
    let good = vol_name("good");
    let bad = vol_name("bad");
    create(&env, &good, &["type=tmpfs", "device=tmpfs"]).ok();
    let missing = format!("/nonexistent-corral-{}", std::process::id());
    create(
        &env,
        &bad,
        &["type=none", "o=bind", &format!("device={missing}")],
    )
    .ok();
    let (gmp, bmp) = (mountpoint(&env, &good), mountpoint(&env, &bad));
    let c = env.name("badmount");
    let out = env.docker(&[
        "run",
        "-d",
        "--name",
        &c,
        "--network",
        "none",
        "-v",
        &format!("{good}:/a"),
        "-v",
        &format!("{bad}:/b"),
        &env.image,
        "sleep",
        "1000",
    ]);
    let err = out.failed().err();
    assert_contains(
        err,
        &format!(
            "error while mounting volume '{bmp}': failed to mount local volume: mount {missing}:{bmp}, flags: 0x1000: no such file or directory"
        ),
    );
    assert_eq!(env.inspect("{{.State.Status}}", &c), "created");
    assert!(mount_line(&gmp).is_none(), "the good volume is released");
    assert!(mount_line(&bmp).is_none());
    // A bad tmpfs option fails in the kernel, at start too.
    let opt = vol_name("opt");
    create(&env, &opt, &["type=tmpfs", "device=tmpfs", "o=bogus=1"]).ok();
    let omp = mountpoint(&env, &opt);
    let out = env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{opt}:/o"),
        &env.image,
        "true",
    ]);
    assert_contains(
        out.failed().err(),
        &format!(
            "failed to mount local volume: mount tmpfs:{omp}, data: bogus=1: invalid argument"
        ),
    );
    assert!(mount_line(&omp).is_none());
    env.docker(&["rm", "-f", &c]).ok();
    env.docker(&["volume", "rm", &good, &bad, &opt]).ok();
}

#[test]
#[ignore = "needs root: starts an engine"]
fn volume_create_refuses_bad_options_with_dockerds_messages() {
    let env = Env::new();
    let v = vol_name("refused");
    for (opts, msg) in [
        (
            &["foo=bar"][..],
            format!("create {v}: invalid option: \"foo\""),
        ),
        (
            &["type=tmpfs"][..],
            format!("create {v}: missing required option: \"device\""),
        ),
        (
            &["device=/dev/x"][..],
            format!("create {v}: missing required option: \"type\""),
        ),
        (
            &["size=abc"][..],
            format!("create {v}: invalid size: 'abc'"),
        ),
        (
            &["size=10m"][..],
            format!("create {v}: quota size requested but no quota support"),
        ),
    ] {
        let out = create(&env, &v, opts);
        assert_contains(out.failed().err(), &msg);
    }
    let left = env.docker(&["volume", "ls", "-q"]).ok().out().to_owned();
    assert!(!left.contains(&v), "{left}");
}

/// A loop device over a sparse ext4 image, detached and deleted on drop.
struct LoopDevice {
    dev: String,
    _dir: tempfile::TempDir,
}

impl LoopDevice {
    fn new() -> LoopDevice {
        let dir = tempfile::tempdir().expect("tempdir");
        let img = dir.path().join("fs.img");
        std::fs::File::create(&img)
            .and_then(|f| f.set_len(16 << 20))
            .expect("create a sparse image");
        let ok = Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .arg(&img)
            .status()
            .expect("run mkfs.ext4")
            .success();
        assert!(ok, "mkfs.ext4");
        let out = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(&img)
            .output()
            .expect("run losetup");
        assert!(out.status.success(), "losetup");
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        LoopDevice { dev, _dir: dir }
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

#[test]
#[ignore = "needs root: starts an engine, creates a loop device"]
fn ext4_volume_on_a_loop_device_keeps_data_between_mounts() {
    let env = Env::new();
    let lo = LoopDevice::new();
    let v = vol_name("ext4");
    create(&env, &v, &["type=ext4", &format!("device={}", lo.dev)]).ok();
    let mp = mountpoint(&env, &v);
    env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{v}:/d"),
        &env.image,
        "sh",
        "-c",
        "echo persisted > /d/f",
    ])
    .ok();
    assert!(mount_line(&mp).is_none(), "unmounted after the container");
    let out = env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{v}:/d"),
        &env.image,
        "sh",
        "-c",
        "cat /d/f; ls /d | grep -c lost+found",
    ]);
    assert_eq!(out.ok().out(), "persisted\n1");
    env.docker(&["volume", "rm", &v]).ok();
}

#[test]
#[ignore = "needs root: starts an engine, restarts it"]
fn volume_mount_count_survives_a_daemon_restart() {
    let mut env = Env::new();
    if env.subject.kind() != SubjectKind::Corral {
        return;
    }
    let v = vol_name("restart");
    create(&env, &v, &["type=tmpfs", "device=tmpfs"]).ok();
    let mp = mountpoint(&env, &v);
    let c1 = env.sleeper("rs1", &["-v", &format!("{v}:/d")]);
    let c2 = env.sleeper("rs2", &["-v", &format!("{v}:/d")]);
    env.docker(&["exec", &c1, "sh", "-c", "echo kept > /d/f"])
        .ok();
    env.subject
        .corral()
        .expect("corral daemon")
        .kill9_and_restart()
        .expect("restart the daemon");
    assert!(mount_line(&mp).is_some(), "still mounted after the restart");
    env.docker(&["stop", "-t", "0", &c1]).ok();
    assert!(mount_line(&mp).is_some(), "c2 still holds it");
    assert_eq!(env.docker(&["exec", &c2, "cat", "/d/f"]).ok().out(), "kept");
    env.docker(&["stop", "-t", "0", &c2]).ok();
    assert!(mount_line(&mp).is_none(), "the last user unmounts");
    env.docker(&["rm", &c1, &c2]).ok();
    env.docker(&["volume", "rm", &v]).ok();

    // A user that ends, shim and all, while the daemon is away: nothing re-adopts it, and
    // its volume is unmounted after the restart.
    let w = vol_name("away");
    create(&env, &w, &["type=tmpfs", "device=tmpfs"]).ok();
    let wmp = mountpoint(&env, &w);
    let c3 = env.sleeper("rs3", &["-v", &format!("{w}:/d")]);
    assert!(mount_line(&wmp).is_some());
    let pid = env.inspect("{{.State.Pid}}", &c3);
    let daemon = env.subject.corral().expect("corral daemon");
    let signal = |sig: &str, pid: &str| {
        let ok = Command::new("kill")
            .args([sig, pid])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {pid}");
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("container stat");
    // The shim is the parent of the container's init (field 4, after the `(comm)`).
    let shim = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.split(' ').nth(1))
        .expect("ppid")
        .to_owned();
    signal("-STOP", &daemon.pid().to_string());
    signal("-KILL", &shim);
    signal("-KILL", &pid);
    daemon.kill9_and_restart().expect("restart the daemon");
    corral_testkit::assert_eventually!(env.inspect("{{.State.Status}}", &c3) == "exited");
    corral_testkit::assert_eventually!(mount_line(&wmp).is_none());
    let id = env.inspect("{{.Id}}", &c3);
    env.docker(&["rm", &c3]).ok();
    env.docker(&["volume", "rm", &w]).ok();
    // The shim removes a container's cgroups when it ends; this one was killed with
    // its shim, so the daemon removes them when it records the exit.
    let instance = env
        .subject
        .corral()
        .expect("corral daemon")
        .instance()
        .to_owned();
    let left: Vec<std::path::PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .expect("read /sys/fs/cgroup")
        .map(|h| h.expect("cgroup hierarchy").path())
        .chain([std::path::PathBuf::from("/sys/fs/cgroup")])
        .map(|h| h.join(format!("corral-{instance}")).join(&id))
        .filter(|d| d.exists())
        .collect();
    assert!(left.is_empty(), "cgroups left by the killed shim: {left:?}");
}
