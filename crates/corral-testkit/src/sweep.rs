//! Removes what an engine under test left behind: processes, cgroups, mounts, directories.
//!
//! Used by the `Drop` of [`crate::TestDaemon`] and [`crate::RefDockerd`]; everything here is
//! best effort and scoped to one test's private root directory and cgroup name, so it never
//! touches another engine's state.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::mount::{umount2, MntFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::time::Instant;

/// The cgroup v1 hierarchies and the v2 mount to search for a test's cgroup.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// What to remove after an engine has been stopped.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// Directories owned by the test. Processes whose command line mentions one are killed,
    /// mounts below them are detached and the directories are removed.
    pub roots: Vec<PathBuf>,
    /// Name of the test's parent cgroup (`corral-<instance>`): its processes are killed and
    /// its directories removed in every hierarchy.
    pub cgroup_name: String,
    /// The mount table to check for mounts below a root: `/proc/self/mountinfo` when
    /// `None`, else this file (`/proc/<pid>/mountinfo` of a process in the private mount
    /// namespace the engine ran in; its mounts vanish with that namespace).
    pub mountinfo: Option<PathBuf>,
}

impl Sweep {
    /// Runs every step; failures are logged with `tracing` and otherwise ignored.
    pub fn run(&self) {
        let cgroups = find_cgroups(Path::new(CGROUP_ROOT), &self.cgroup_name);
        kill_cgroup_members(&cgroups);
        self.kill_processes();
        wait_cgroups_empty(&cgroups, Duration::from_secs(5));
        self.unmount();
        self.remove_network_leftovers();
        remove_cgroups(&cgroups);
        for root in &self.roots {
            if root.exists() {
                if let Err(e) = std::fs::remove_dir_all(root) {
                    tracing::warn!(root = %root.display(), error = %e, "cannot remove test root");
                }
            }
        }
    }

    /// What the engine left behind that belongs to this test alone, without removing
    /// anything: processes whose argv mentions a root, mounts below a root, cgroups below
    /// the instance's parent cgroup (the parent itself is allowed), the instance's
    /// nftables table and its bridges. Meaningful after the engine stopped with no
    /// containers (with containers, live restore keeps them running on purpose).
    pub fn leftovers(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (pid, cmdline) in self.processes() {
            out.push(format!("process {pid}: {cmdline}"));
        }
        for p in self.mount_points() {
            out.push(format!("mount {p}"));
        }
        let parents = find_cgroup_parents(Path::new(CGROUP_ROOT), &self.cgroup_name);
        for cg in find_cgroups(Path::new(CGROUP_ROOT), &self.cgroup_name) {
            if !parents.contains(&cg) {
                out.push(format!("cgroup {}", cg.display()));
            }
        }
        let table = &self.cgroup_name;
        let listed = std::process::Command::new("nft")
            .args(["list", "table", "ip", table])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        if listed.is_ok_and(|s| s.success()) {
            out.push(format!("nftables table ip {table}"));
        }
        for link in self.bridges() {
            out.push(format!("link {link}"));
        }
        out
    }

    /// This instance's bridges (`cr<6 hex of FNV-1a(instance)>-*`).
    fn bridges(&self) -> Vec<String> {
        let Some(instance) = self.cgroup_name.strip_prefix("corral-") else {
            return Vec::new();
        };
        let hash = instance.bytes().fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        let prefix = format!("cr{:06x}-", hash & 0x00ff_ffff);
        let Ok(entries) = std::fs::read_dir("/sys/class/net") else {
            return Vec::new();
        };
        entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(&prefix))
            .collect()
    }

    /// Deletes the instance's nftables table (`ip corral-<instance>`) and its bridges
    /// (`cr<6 hex of FNV-1a(instance)>-*`, the names corral-network gives them).
    fn remove_network_leftovers(&self) {
        let table = &self.cgroup_name;
        let listed = std::process::Command::new("nft")
            .args(["list", "table", "ip", table])
            .output();
        if listed.is_ok_and(|o| o.status.success()) {
            tracing::warn!(%table, "engine left its nftables table behind");
            let _ = std::process::Command::new("nft")
                .args(["delete", "table", "ip", table])
                .status();
        }
        let Some(instance) = self.cgroup_name.strip_prefix("corral-") else {
            return;
        };
        let hash = instance.bytes().fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        let prefix = format!("cr{:06x}-", hash & 0x00ff_ffff);
        let Ok(entries) = std::fs::read_dir("/sys/class/net") else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) {
                tracing::warn!(link = %name, "engine left a bridge behind");
                let _ = std::process::Command::new("ip")
                    .args(["link", "del", &name])
                    .status();
            }
        }
    }

    /// Processes (other than this one) whose argv mentions a root: (pid, argv).
    fn processes(&self) -> Vec<(u32, String)> {
        let me = std::process::id();
        let needles: Vec<String> = self
            .roots
            .iter()
            .map(|r| r.to_string_lossy().into_owned())
            .collect();
        let mut found = Vec::new();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return found;
        };
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if pid == me || is_zombie(pid) {
                continue;
            }
            let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
                continue;
            };
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if needles.iter().any(|n| cmdline.contains(n.as_str())) {
                found.push((pid, cmdline.trim_end().to_owned()));
            }
        }
        found
    }

    /// SIGKILLs every process (other than this one) whose argv mentions a root.
    fn kill_processes(&self) {
        let victims: Vec<u32> = self.processes().into_iter().map(|(pid, _)| pid).collect();
        for pid in &victims {
            tracing::debug!(pid, "killing leftover process");
            signal(*pid, Signal::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline
            && victims
                .iter()
                .any(|p| Path::new(&format!("/proc/{p}")).exists() && !is_zombie(*p))
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Mount points below a root, deepest first.
    fn mount_points(&self) -> Vec<String> {
        let table = self
            .mountinfo
            .clone()
            .unwrap_or_else(|| PathBuf::from("/proc/self/mountinfo"));
        let Ok(info) = std::fs::read_to_string(table) else {
            return Vec::new();
        };
        let mut points: Vec<String> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .map(unescape_mountinfo)
            .filter(|p| {
                self.roots
                    .iter()
                    .any(|r| Path::new(p).starts_with(r) && Path::new(p) != r.as_path())
            })
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        points.dedup();
        points
    }

    /// Lazily unmounts every mount point below a root, deepest first.
    fn unmount(&self) {
        if self.mountinfo.is_some() {
            // Another namespace's mounts: they go when its last process does.
            return;
        }
        for p in self.mount_points() {
            if let Err(e) = umount2(Path::new(&p), MntFlags::MNT_DETACH) {
                tracing::debug!(mount = %p, error = %e, "umount failed");
            }
        }
    }
}

fn signal(pid: u32, sig: Signal) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = kill(Pid::from_raw(pid), sig);
    }
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
                .unwrap_or(false)
        })
        .unwrap_or(true)
}

/// Decodes the octal escapes (`\040` for space) mountinfo uses in paths.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            if let Some(v) = s
                .get(i + 1..i + 4)
                .and_then(|o| u8::from_str_radix(o, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every directory named `name` directly below a hierarchy of `root` (or below `root`
/// itself when it is a cgroup2 mount), with all their descendants, deepest first.
fn find_cgroups(root: &Path, name: &str) -> Vec<PathBuf> {
    let mut all = Vec::new();
    for t in find_cgroup_parents(root, name) {
        collect_dirs(&t, &mut all);
    }
    all.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    all
}

/// The directories named `name` directly below `root` or one of its hierarchies.
fn find_cgroup_parents(root: &Path, name: &str) -> Vec<PathBuf> {
    let mut tops = Vec::new();
    if root.join(name).is_dir() {
        tops.push(root.join(name));
    }
    if let Ok(entries) = std::fs::read_dir(root) {
        for e in entries.flatten() {
            let candidate = e.path().join(name);
            if candidate.is_dir() {
                tops.push(candidate);
            }
        }
    }
    tops
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                collect_dirs(&e.path(), out);
            }
        }
    }
}

fn cgroup_pids(dir: &Path) -> Vec<u32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// Thaws frozen cgroups (a frozen task never handles SIGKILL) and kills their members.
fn kill_cgroup_members(cgroups: &[PathBuf]) {
    for cg in cgroups {
        let _ = std::fs::write(cg.join("freezer.state"), "THAWED");
        let _ = std::fs::write(cg.join("cgroup.freeze"), "0");
        let _ = std::fs::write(cg.join("cgroup.kill"), "1");
        for pid in cgroup_pids(cg) {
            signal(pid, Signal::SIGKILL);
        }
    }
}

fn wait_cgroups_empty(cgroups: &[PathBuf], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let busy: Vec<u32> = cgroups.iter().flat_map(|c| cgroup_pids(c)).collect();
        if busy.is_empty() {
            return;
        }
        for pid in busy {
            signal(pid, Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn remove_cgroups(cgroups: &[PathBuf]) {
    for cg in cgroups {
        if let Err(e) = std::fs::remove_dir(cg) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(cgroup = %cg.display(), error = %e, "cannot remove cgroup");
            }
        }
    }
}

/// Mounts a fresh tmpfs (mode 0711) on the existing directory `dir`: engines' run
/// directories live on tmpfs on a default install (`/run/corral`, `/run/docker`,
/// `/run/containerd`), and the benchmark runs them that way. A [`Sweep`] whose roots
/// contain `dir` detaches it; one whose root *is* `dir` does not (see [`unmount_tmpfs`]).
///
/// # Errors
/// The `mount(2)` failure.
pub fn mount_tmpfs(dir: &Path) -> std::io::Result<()> {
    nix::mount::mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
        Some("mode=0711"),
    )
    .map_err(std::io::Error::from)
}

/// Detaches the tmpfs [`mount_tmpfs`] put on `dir` (errors ignored: nothing to undo).
pub fn unmount_tmpfs(dir: &Path) {
    let _ = umount2(dir, MntFlags::MNT_DETACH);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_mountinfo_octal_sequences() {
        assert_eq!(unescape_mountinfo(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape_mountinfo(r"/tmp/x\134y"), r"/tmp/x\y");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
        assert_eq!(unescape_mountinfo(r"/trailing\"), r"/trailing\");
    }

    #[test]
    fn finds_named_cgroups_in_every_hierarchy_deepest_first() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("memory/corral-t1/abc/def")).unwrap();
        std::fs::create_dir_all(r.join("pids/corral-t1")).unwrap();
        std::fs::create_dir_all(r.join("pids/corral-t2")).unwrap();
        std::fs::create_dir_all(r.join("corral-t1")).unwrap();
        let found = find_cgroups(r, "corral-t1");
        assert_eq!(found.len(), 5, "{found:?}");
        assert_eq!(found[0], r.join("memory/corral-t1/abc/def"));
        assert!(found
            .iter()
            .all(|p| !p.to_string_lossy().contains("corral-t2")));
        // Removing in that order succeeds because children go first.
        remove_cgroups(&found);
        assert!(!r.join("memory/corral-t1").exists());
        assert!(r.join("pids/corral-t2").exists());
    }

    #[test]
    fn leftovers_name_mounts_and_processes_of_this_test_only() {
        let root = tempfile::tempdir().unwrap();
        let d = root.path().join("data");
        std::fs::create_dir_all(&d).unwrap();
        let sweep = Sweep {
            roots: vec![d.clone()],
            cgroup_name: "corral-testkit-never-exists".into(),
            mountinfo: None,
        };
        assert!(sweep.leftovers().is_empty(), "{:?}", sweep.leftovers());
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30"])
            .arg(&d)
            .spawn()
            .unwrap();
        // The child shows its own argv once it has exec'd.
        let mut found = sweep.leftovers();
        for _ in 0..100 {
            if !found.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
            found = sweep.leftovers();
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with(&format!("process {}", child.id())),
            "{found:?}"
        );
    }

    #[test]
    fn sweep_removes_roots_and_ignores_missing_cgroups() {
        let root = tempfile::tempdir().unwrap();
        let d = root.path().join("data");
        std::fs::create_dir_all(d.join("x/y")).unwrap();
        Sweep {
            roots: vec![d.clone()],
            cgroup_name: "corral-testkit-never-exists".into(),
            mountinfo: None,
        }
        .run();
        assert!(!d.exists());
    }
}
