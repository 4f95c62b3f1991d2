//! Helpers shared by the root test binaries: busybox bundles launched through a real shim,
//! with guards that kill leftover processes and remove runtime state and cgroups.
// Each test binary uses a different subset of the helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use corral_runtime::logs::{read_logs, LogReadOptions, LogStream};
use corral_runtime::shim::protocol::{read_frame, FrameStream};
use corral_runtime::shim::{RuntimeKind, ShimArgs, ShimClient, ShimError};
use corral_sys::process::{pid_alive, LinuxProcesses, Pid, Processes};
use nix::sys::signal::Signal;

pub(crate) const STEP: Duration = Duration::from_secs(30);

pub(crate) fn require_root() {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "this test needs root: it runs containers"
    );
}

pub(crate) fn runc_path() -> PathBuf {
    for candidate in ["/usr/sbin/runc", "/usr/bin/runc", "/usr/local/bin/runc"] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    panic!("runc is not installed");
}

/// A container bundle plus everything needed to clean up after it.
pub(crate) struct TestContainer {
    pub(crate) args: ShimArgs,
    cgroup_parent: String,
    _bundle: tempfile::TempDir,
    _state: tempfile::TempDir,
    _root: tempfile::TempDir,
    client: Option<ShimClient>,
}

pub(crate) struct Options {
    pub(crate) runtime: RuntimeKind,
    pub(crate) tty: bool,
    pub(crate) stdin: bool,
    pub(crate) memory_limit: Option<i64>,
}

impl TestContainer {
    pub(crate) fn new(runtime: RuntimeKind, command: &[&str]) -> Self {
        Self::with(
            Options {
                runtime,
                tty: false,
                stdin: false,
                memory_limit: None,
            },
            command,
        )
    }

    pub(crate) fn with(options: Options, command: &[&str]) -> Self {
        require_root();
        let bundle = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let suffix: u32 = rand_suffix();
        let id = format!("shimtest-{suffix}");
        let cgroup_parent = format!("corral-test-{suffix}");
        build_rootfs(&bundle.path().join("rootfs"));
        let mut config = serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": options.tty,
                "user": {"uid": 0, "gid": 0},
                "args": command,
                "env": ["PATH=/bin", "TERM=xterm"],
                "cwd": "/",
            },
            "root": {"path": bundle.path().join("rootfs"), "readonly": false},
            "hostname": "shimtest",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                 "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            ],
            "linux": {
                "namespaces": [
                    {"type": "pid"}, {"type": "mount"}, {"type": "ipc"},
                    {"type": "uts"}, {"type": "network"}
                ],
                "cgroupsPath": format!("/{cgroup_parent}/{id}"),
            },
        });
        if let Some(limit) = options.memory_limit {
            config["linux"]["resources"] =
                serde_json::json!({"memory": {"limit": limit, "swap": limit}});
        }
        std::fs::write(
            bundle.path().join("config.json"),
            serde_json::to_vec_pretty(&config).unwrap(),
        )
        .unwrap();
        let mut args = ShimArgs::new(
            id,
            bundle.path(),
            state.path(),
            state.path().join("container.log"),
        );
        args.runtime = options.runtime;
        args.runtime_path = runc_path();
        args.runtime_root = root.path().to_owned();
        args.tty = options.tty;
        args.stdin = options.stdin;
        Self {
            args,
            cgroup_parent,
            _bundle: bundle,
            _state: state,
            _root: root,
            client: None,
        }
    }

    pub(crate) async fn launch(&mut self) -> Result<ShimClient, ShimError> {
        let exe = Path::new(env!("CARGO_BIN_EXE_corral-test-shim"));
        let client = tokio::time::timeout(STEP, ShimClient::launch(exe, &self.args))
            .await
            .expect("launch timed out")?;
        self.client = Some(client.clone());
        Ok(client)
    }

    pub(crate) fn log_lines(&self) -> Vec<(LogStream, String)> {
        read_logs(&self.args.log_path, &LogReadOptions::default())
            .unwrap()
            .into_iter()
            .map(|entry| (entry.stream, String::from_utf8(entry.line).unwrap()))
            .collect()
    }
}

impl Drop for TestContainer {
    fn drop(&mut self) {
        // A frozen process cannot die: thaw first (cgroup v1 freezer).
        let _ = std::fs::write(
            format!(
                "/sys/fs/cgroup/freezer/{}/{}/freezer.state",
                self.cgroup_parent, self.args.id
            ),
            "THAWED",
        );
        if let Some(client) = &self.client {
            for pid in [client.init_pid(), client.shim_pid()] {
                let _ = LinuxProcesses.signal(pid, Signal::SIGKILL);
            }
            // The killed init leaves its cgroup only once it is dead.
            for _ in 0..100 {
                if !running(client.init_pid()) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if self.args.runtime == RuntimeKind::Runc {
            let _ = std::process::Command::new(&self.args.runtime_path)
                .arg("--root")
                .arg(&self.args.runtime_root)
                .args(["delete", "--force", &self.args.id])
                .output();
        }
        remove_cgroups(&self.cgroup_parent);
    }
}

pub(crate) fn rand_suffix() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    (std::process::id() << 16) ^ nanos ^ COUNTER.fetch_add(1, Ordering::SeqCst)
}

pub(crate) fn build_rootfs(rootfs: &Path) {
    let bin = rootfs.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for dir in ["proc", "dev", "tmp", "etc"] {
        std::fs::create_dir_all(rootfs.join(dir)).unwrap();
    }
    std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    for applet in [
        "sh", "echo", "cat", "sleep", "true", "false", "tty", "stty", "ls", "head", "tr", "id",
        "pwd", "env",
    ] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
}

/// Removes `<controller>/<parent>` (and its children) in every mounted hierarchy.
pub(crate) fn remove_cgroups(parent: &str) {
    // Processes leave a cgroup a little after they die: retry while any directory remains.
    for _ in 0..50 {
        if !remove_cgroups_once(parent) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One removal pass; `true` when a directory is still there.
fn remove_cgroups_once(parent: &str) -> bool {
    let mut left = false;
    let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") else {
        return false;
    };
    for entry in entries.flatten() {
        let dir = entry.path().join(parent);
        if !dir.is_dir() {
            continue;
        }
        if let Ok(children) = std::fs::read_dir(&dir) {
            for child in children.flatten() {
                if child.path().is_dir() {
                    let _ = std::fs::remove_dir(child.path());
                }
            }
        }
        let _ = std::fs::remove_dir(&dir);
        left |= dir.exists();
    }
    left
}

/// Reads an attach stream to its end, split into stdout and stderr.
pub(crate) async fn collect_frames(
    reader: &mut tokio::net::unix::OwnedReadHalf,
) -> (String, String) {
    let mut stdout = String::new();
    let mut stderr = String::new();
    let read_all = async {
        while let Some((stream, payload)) = read_frame(reader).await.unwrap() {
            let text = String::from_utf8(payload).unwrap();
            match stream {
                FrameStream::Stdout => stdout.push_str(&text),
                FrameStream::Stderr => stderr.push_str(&text),
                FrameStream::Stdin => panic!("stdin frame from the shim"),
            }
        }
    };
    tokio::time::timeout(STEP, read_all)
        .await
        .expect("attach stream did not end");
    (stdout, stderr)
}

pub(crate) async fn wait(client: &ShimClient) -> corral_runtime::shim::ExitStatus {
    tokio::time::timeout(STEP, client.wait())
        .await
        .expect("wait timed out")
        .unwrap()
}

/// Whether `pid` exists and is not a zombie.
pub(crate) fn running(pid: Pid) -> bool {
    if !pid_alive(pid) {
        return false;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rfind(')')
        .and_then(|index| stat[index + 1..].split_whitespace().next())
        .unwrap_or("X");
    state != "Z" && state != "X"
}

/// Zombie processes whose parent is one of `parents`.
pub(crate) fn zombies_of(parents: &[Pid]) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let Some(after) = stat.rfind(')').map(|index| &stat[index + 2..]) else {
            continue;
        };
        let mut fields = after.split_whitespace();
        let state = fields.next().unwrap_or_default();
        let ppid: i32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if state == "Z" && parents.iter().any(|parent| parent.as_raw() == ppid) {
            found.push(stat);
        }
    }
    found
}
