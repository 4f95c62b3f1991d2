//! The `corral` CLI against Debian's reference dockerd: a private daemon (own data,
//! exec root and socket; no iptables, no bridge) is started per test in a RAII guard,
//! a busybox image is imported with `corral import`, and the CLI's outputs and exit
//! codes are checked against what the docker CLI prints for the same commands.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use parking_lot::Mutex;

/// One reference dockerd at a time: they are heavy and share the host's containerd.
static SERIAL: Mutex<()> = Mutex::new(());

fn require_root() {
    assert!(
        nix_is_root(),
        "this test needs root: it starts a private dockerd"
    );
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// A private dockerd; stopped and its directories removed on drop.
struct RefDockerd {
    child: Child,
    root: PathBuf,
    host: String,
}

impl RefDockerd {
    /// Starts a daemon whose directories are named after `name` (the test).
    fn start(name: &str) -> RefDockerd {
        assert!(
            Path::new("/usr/sbin/dockerd").exists(),
            "reference dockerd (/usr/sbin/dockerd) is not installed"
        );
        assert!(
            Path::new("/bin/busybox").exists(),
            "busybox-static (/bin/busybox) is not installed"
        );
        let root =
            std::env::temp_dir().join(format!("corral-cliref-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let sock = root.join("docker.sock");
        let log = std::fs::File::create(root.join("dockerd.log")).unwrap();
        let child = Command::new("/usr/sbin/dockerd")
            .arg("--data-root")
            .arg(root.join("data"))
            .arg("--exec-root")
            .arg(root.join("exec"))
            .arg("--pidfile")
            .arg(root.join("pid"))
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .args(["--iptables=false", "--ip6tables=false", "--bridge=none"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        let d = RefDockerd {
            child,
            host: format!("unix://{}", sock.display()),
            root,
        };
        // Up to 60 s for the daemon to answer.
        let mut tries = 0;
        loop {
            if sock.exists() && d.corral(&["version"], None).status.success() {
                break;
            }
            tries += 1;
            assert!(tries < 300, "dockerd did not become ready: {}", d.log());
            std::thread::sleep(Duration::from_millis(200));
        }
        d.import_busybox();
        d
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("dockerd.log")).unwrap_or_default()
    }

    /// Builds a busybox rootfs tarball and imports it as `busybox:latest`.
    fn import_busybox(&self) {
        let rootfs = self.root.join("rootfs");
        let bin = rootfs.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for d in ["etc", "tmp", "proc", "sys", "dev", "root"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
        let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            if applet != "busybox" {
                std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
            }
        }
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        std::fs::write(rootfs.join("etc/group"), "root:x:0:\n").unwrap();
        let tarball = self.root.join("rootfs.tar");
        let st = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tarball)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success());
        let out = self.corral(
            &["import", tarball.to_str().unwrap(), "busybox:latest"],
            None,
        );
        assert!(out.status.success(), "import failed: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).starts_with("sha256:"),
            "import prints the image id: {}",
            text(&out.stdout)
        );
    }

    fn corral(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_corral"));
        cmd.arg("-H").arg(&self.host).args(args);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn corral");
        if let Some(data) = stdin {
            let mut s = child.stdin.take().unwrap();
            s.write_all(data).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// Runs and expects success, returning stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.corral(args, None);
        assert!(
            out.status.success(),
            "corral {args:?} failed ({:?}): {}",
            out.status.code(),
            text(&out.stderr)
        );
        text(&out.stdout)
    }
}

impl Drop for RefDockerd {
    fn drop(&mut self) {
        // Remove containers first so dockerd has nothing left to tear down.
        let ids = self.corral(&["ps", "-a", "-q"], None);
        for id in text(&ids.stdout).lines() {
            let _ = self.corral(&["rm", "-f", id], None);
        }
        let pid = self.child.id();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
        // Up to 20 s for a clean shutdown, then SIGKILL.
        for _ in 0..200 {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // dockerd unmounts its layers on shutdown; make sure nothing below root stays mounted.
        if let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") {
            let root = self.root.to_string_lossy().to_string();
            let mut points: Vec<&str> = mounts
                .lines()
                .filter_map(|l| l.split_whitespace().nth(1))
                .filter(|m| m.starts_with(&root))
                .collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for p in points {
                let _ = Command::new("umount").arg("-l").arg(p).status();
            }
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

fn lock() -> parking_lot::MutexGuard<'static, ()> {
    SERIAL.lock()
}

#[test]
#[ignore = "needs root: reference dockerd"]
fn run_exit_codes_stdin_and_flag_errors() {
    require_root();
    let _serial = lock();
    let d = RefDockerd::start("run");

    let out = d.corral(&["run", "--network", "none", "busybox", "echo", "hi"], None);
    assert_eq!(
        (out.status.code(), text(&out.stdout).as_str()),
        (Some(0), "hi\n")
    );

    let out = d.corral(
        &[
            "run",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "echo oops >&2; exit 3",
        ],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "run exits with the container's code"
    );
    assert_eq!(
        text(&out.stderr),
        "oops\n",
        "container stderr goes to our stderr"
    );
    assert_eq!(text(&out.stdout), "");

    let out = d.corral(&["run", "--network", "none", "busybox", "nosuchcmd"], None);
    assert_eq!(out.status.code(), Some(127));
    assert!(
        text(&out.stderr).contains("executable file not found"),
        "{}",
        text(&out.stderr)
    );

    let out = d.corral(
        &["run", "--network", "none", "busybox", "/etc/passwd"],
        None,
    );
    assert_eq!(out.status.code(), Some(126));

    let out = d.corral(
        &["run", "--rm", "-i", "--network", "none", "busybox", "cat"],
        Some(b"hello stdin\n"),
    );
    assert_eq!(
        (out.status.code(), text(&out.stdout).as_str()),
        (Some(0), "hello stdin\n")
    );

    let before = d.ok(&["ps", "-a", "-q"]).lines().count();
    let out = d.corral(
        &["run", "--rm", "--network", "none", "busybox", "true"],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        d.ok(&["ps", "-a", "-q"]).lines().count(),
        before,
        "--rm removed the container"
    );

    let out = d.corral(&["run", "-m", "abc", "busybox"], None);
    assert_eq!(out.status.code(), Some(125));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one-line error: {err}");
    assert!(err.contains("--memory") && err.contains("\"abc\""), "{err}");

    let out = d.corral(&["run", "--network", "none", "nosuch-image:1"], None);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("Unable to find image 'nosuch-image:1' locally"),
        "{}",
        text(&out.stderr)
    );

    let out = d.corral(
        &[
            "run",
            "--network",
            "none",
            "--pull",
            "never",
            "nosuch-image:1",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("No such image: nosuch-image:1"),
        "{}",
        text(&out.stderr)
    );

    let out = d.corral(
        &["run", "-d", "--network", "none", "busybox", "sleep", "30"],
        None,
    );
    let id = text(&out.stdout).trim().to_string();
    assert_eq!(id.len(), 64, "run -d prints the full id: {id}");
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Running}}", &id]),
        "true\n"
    );
}

#[test]
#[ignore = "needs root: reference dockerd"]
fn ps_inspect_logs_exec_and_cp() {
    require_root();
    let _serial = lock();
    let d = RefDockerd::start("ps");
    let script = "for i in 1 2 3 4 5; do echo line$i; done; sleep 300";
    d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "none",
        "-l",
        "a=b",
        "-e",
        "FOO=bar",
        "busybox",
        "sh",
        "-c",
        script,
    ]);

    let ps = d.ok(&["ps"]);
    let mut lines = ps.lines();
    let header = lines.next().unwrap();
    let cols: Vec<&str> = header
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        cols,
        [
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES"
        ],
        "{header}"
    );
    let row = lines.next().unwrap();
    assert!(
        row.starts_with(&d.ok(&["ps", "-q"]).trim().to_string()),
        "{row}"
    );
    assert!(
        row.contains("busybox") && row.contains("\"sh -c 'for i in 1 2…\"") && row.ends_with("web"),
        "{row}"
    );
    assert_eq!(
        d.ok(&["ps", "--format", "{{.Names}} {{.State}} {{.Image}}"]),
        "web running busybox\n"
    );

    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}}", "web"]),
        "running\n"
    );
    assert_eq!(
        d.ok(&["inspect", "-f", "{{json .Config.Labels}} {{.Name}}", "web"]),
        "{\"a\":\"b\"} /web\n"
    );
    assert_eq!(
        d.ok(&["inspect", "-f", "{{index .Config.Labels \"a\"}}", "web"]),
        "b\n"
    );
    let raw = d.ok(&["inspect", "web"]);
    assert!(
        raw.starts_with("[\n    {\n        \"Id\": \""),
        "docker's indentation: {raw}"
    );
    let out = d.corral(&["inspect", "nosuch"], None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "Error: No such object: nosuch\n");

    // Wait for the five lines, then check --tail.
    let mut tries = 0;
    while !d.ok(&["logs", "web"]).contains("line5") {
        tries += 1;
        assert!(tries < 100, "logs never showed line5");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(d.ok(&["logs", "--tail", "2", "web"]), "line4\nline5\n");

    let out = d.corral(&["exec", "web", "sh", "-c", "echo $FOO; exit 7"], None);
    assert_eq!(
        (out.status.code(), text(&out.stdout).as_str()),
        (Some(7), "bar\n")
    );
    let out = d.corral(&["exec", "-i", "web", "cat"], Some(b"via exec\n"));
    assert_eq!(
        (out.status.code(), text(&out.stdout).as_str()),
        (Some(0), "via exec\n")
    );
    let out = d.corral(&["exec", "web", "nosuch"], None);
    assert_eq!(
        out.status.code(),
        Some(126),
        "exec of a missing command: {}",
        text(&out.stdout)
    );

    let tmp = d.root.join("cp");
    std::fs::create_dir_all(tmp.join("dir")).unwrap();
    std::fs::write(tmp.join("f.txt"), b"round trip\n").unwrap();
    std::fs::write(tmp.join("dir/g.txt"), b"nested\n").unwrap();
    d.ok(&["cp", tmp.join("f.txt").to_str().unwrap(), "web:/tmp/"]);
    d.ok(&["cp", tmp.join("dir").to_str().unwrap(), "web:/tmp/dd"]);
    assert_eq!(
        d.ok(&["exec", "web", "cat", "/tmp/f.txt", "/tmp/dd/g.txt"]),
        "round trip\nnested\n"
    );
    d.ok(&[
        "cp",
        "web:/tmp/f.txt",
        tmp.join("back.txt").to_str().unwrap(),
    ]);
    d.ok(&["cp", "web:/tmp/dd", tmp.join("backdir").to_str().unwrap()]);
    assert_eq!(
        std::fs::read(tmp.join("back.txt")).unwrap(),
        b"round trip\n"
    );
    assert_eq!(
        std::fs::read(tmp.join("backdir/g.txt")).unwrap(),
        b"nested\n"
    );
    let out = d.corral(&["cp", "web:/nonexistent", tmp.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("Error response from daemon: "),
        "{}",
        text(&out.stderr)
    );

    assert_eq!(d.ok(&["stop", "-t", "1", "web"]), "web\n");
    assert_eq!(d.ok(&["ps", "-a", "--format", "{{.State}}"]), "exited\n");
    assert_eq!(d.ok(&["wait", "web"]), "137\n");
    assert_eq!(d.ok(&["rm", "web"]), "web\n");
    let out = d.corral(&["rm", "web"], None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "Error response from daemon: No such container: web\n"
    );
}

#[test]
#[ignore = "needs root: reference dockerd"]
fn image_commands_round_trip() {
    require_root();
    let _serial = lock();
    let d = RefDockerd::start("images");
    let images = d.ok(&["images"]);
    let mut lines = images.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("REPOSITORY   TAG       IMAGE ID       CREATED"),
        "{header}"
    );
    assert!(header.trim_end().ends_with("SIZE"), "{header}");
    assert!(lines.next().unwrap().starts_with("busybox      latest    "));

    d.ok(&["tag", "busybox", "bb:2"]);
    assert_eq!(
        d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}", "bb"]),
        "bb:2\n"
    );
    assert_eq!(d.ok(&["rmi", "bb:2"]), "Untagged: bb:2\n");

    let tar = d.root.join("saved.tar");
    d.ok(&["save", "-o", tar.to_str().unwrap(), "busybox:latest"]);
    assert!(std::fs::metadata(&tar).unwrap().len() > 1_000_000);
    let rmi = d.ok(&["rmi", "busybox:latest"]);
    assert!(
        rmi.starts_with("Untagged: busybox:latest\nDeleted: sha256:"),
        "{rmi}"
    );
    assert_eq!(
        d.ok(&["load", "-i", tar.to_str().unwrap()]),
        "Loaded image: busybox:latest\n"
    );

    d.ok(&[
        "run",
        "--name",
        "c1",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo x > /marker",
    ]);
    let id = d.ok(&["commit", "-m", "snap", "c1", "snap:1"]);
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(d.ok(&["diff", "c1"]), "A /marker\n");
    let out = d.corral(
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "snap:1",
            "cat",
            "/marker",
        ],
        None,
    );
    assert_eq!(text(&out.stdout), "x\n");
    let hist = d.ok(&["history", "snap:1"]);
    assert!(hist.starts_with("IMAGE          CREATED"), "{hist}");
    assert!(
        hist.lines().nth(1).unwrap().trim_end().ends_with("snap"),
        "{hist}"
    );

    let out = d.corral(&["rmi", "nosuch"], None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "Error response from daemon: No such image: nosuch:latest\n"
    );
}
