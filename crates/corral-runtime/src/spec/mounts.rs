//! The container's mount list: runc/Docker defaults, the network files, user mounts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Mount, MountBuilder};

use super::error::{Result, SpecError};
use super::rootfs::clean_abs;

/// `/dev/shm` size when the container asks for none (Docker's 64 MiB).
pub const DEFAULT_SHM_SIZE: i64 = 64 * 1024 * 1024;

/// Options every tmpfs gets before the user's (Docker's `--tmpfs` defaults).
const TMPFS_DEFAULTS: [&str; 3] = ["noexec", "nosuid", "nodev"];

/// What kind of mount a [`ResolvedMount`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    /// A bind mount of a host path (a bind or a volume's directory).
    Bind,
    /// A fresh tmpfs.
    Tmpfs,
}

/// A bind or tmpfs mount whose source the caller has already resolved on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedMount {
    /// Host path for a bind; ignored for tmpfs.
    pub source: PathBuf,
    /// Absolute path inside the container.
    pub destination: String,
    /// Bind or tmpfs.
    pub kind: MountKind,
    /// Bind: `ro`/`rw`, propagation (`rprivate`, `rshared`, `rslave`, …), `nosuid`, `nodev`,
    /// `noexec`, `bind` (non-recursive); SELinux `z`/`Z` are accepted and ignored.
    /// Tmpfs: the kernel's tmpfs options (`size=64m`, `mode=1777`, `uid=`, …).
    pub options: Vec<String>,
}

/// The three files Docker bind-mounts into `/etc` (`None` skips one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkFiles {
    /// Host path bind-mounted at `/etc/hosts`.
    pub hosts: Option<PathBuf>,
    /// Host path bind-mounted at `/etc/resolv.conf`.
    pub resolv_conf: Option<PathBuf>,
    /// Host path bind-mounted at `/etc/hostname`.
    pub hostname: Option<PathBuf>,
}

/// Inputs of [`build_mounts`] beyond the user's mounts.
pub(crate) struct MountPlan<'a> {
    pub(crate) privileged: bool,
    pub(crate) readonly_rootfs: bool,
    pub(crate) ipc_host: bool,
    pub(crate) shm_size: i64,
    pub(crate) files: &'a NetworkFiles,
    pub(crate) user: &'a [ResolvedMount],
    pub(crate) tmpfs: &'a BTreeMap<String, String>,
}

/// Builds the ordered mount list: defaults, network files, then user mounts sorted parents
/// first. Defaults and network files at or under a user mount's destination are dropped, as
/// Docker lets user mounts win.
pub(crate) fn build_mounts(plan: &MountPlan<'_>) -> Result<Vec<Mount>> {
    let user = user_mounts(plan.user, plan.tmpfs)?;
    let shadowed = |dest: &str| {
        user.iter().any(|m| {
            let d = m.destination().to_string_lossy();
            dest == d || dest.starts_with(&format!("{d}/"))
        })
    };
    let mut out: Vec<Mount> = default_mounts(plan)?
        .into_iter()
        .filter(|m| !shadowed(&m.destination().to_string_lossy()))
        .collect();
    let ro = plan.readonly_rootfs;
    for (dest, src) in [
        ("/etc/resolv.conf", &plan.files.resolv_conf),
        ("/etc/hostname", &plan.files.hostname),
        ("/etc/hosts", &plan.files.hosts),
    ] {
        if let (Some(src), false) = (src, shadowed(dest)) {
            let mut opts = vec!["rbind", "rprivate"];
            if ro {
                opts.push("ro");
            }
            out.push(mount(dest, "bind", src, &opts)?);
        }
    }
    out.extend(user);
    Ok(out)
}

fn default_mounts(plan: &MountPlan<'_>) -> Result<Vec<Mount>> {
    if plan.shm_size < 0 {
        return Err(SpecError::InvalidResources {
            reason: "shm size can not be less than 0".to_owned(),
        });
    }
    let shm = if plan.shm_size == 0 {
        DEFAULT_SHM_SIZE
    } else {
        plan.shm_size
    };
    // Privileged containers get writable /sys and cgroupfs unless the rootfs is read-only.
    let sys_ro = !plan.privileged || plan.readonly_rootfs;
    let mut sys_opts = vec!["nosuid", "noexec", "nodev"];
    if sys_ro {
        sys_opts.push("ro");
    }
    let cgroup_opts: Vec<&str> = if sys_ro {
        vec!["ro", "nosuid", "noexec", "nodev"]
    } else {
        vec!["rw", "nosuid", "noexec", "nodev"]
    };
    let shm_opt = format!("size={}k", shm / 1024);
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount("/sys", "sysfs", "sysfs", &sys_opts)?,
        mount("/sys/fs/cgroup", "cgroup", "cgroup", &cgroup_opts)?,
    ];
    if plan.ipc_host {
        // The host's IPC namespace: share its /dev/shm and /dev/mqueue.
        mounts.push(mount(
            "/dev/mqueue",
            "bind",
            "/dev/mqueue",
            &["rbind", "rprivate"],
        )?);
        mounts.push(mount(
            "/dev/shm",
            "bind",
            "/dev/shm",
            &["rbind", "rprivate"],
        )?);
    } else {
        mounts.push(mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?);
        mounts.push(mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm_opt],
        )?);
    }
    Ok(mounts)
}

fn user_mounts(user: &[ResolvedMount], tmpfs: &BTreeMap<String, String>) -> Result<Vec<Mount>> {
    let mut all: Vec<(String, Mount)> = Vec::new();
    let mut push = |dest: String, m: Mount| {
        if all.iter().any(|(d, _)| *d == dest) {
            return Err(SpecError::DuplicateMount { destination: dest });
        }
        all.push((dest, m));
        Ok(())
    };
    for m in user {
        let dest = destination(&m.destination)?;
        let oci = match m.kind {
            MountKind::Bind => bind_mount(&dest, &m.source, &m.options)?,
            MountKind::Tmpfs => tmpfs_mount(&dest, &m.options)?,
        };
        push(dest, oci)?;
    }
    for (dest, opts) in tmpfs {
        let dest = destination(dest)?;
        let opts: Vec<String> = opts
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(str::to_owned)
            .collect();
        let oci = tmpfs_mount(&dest, &opts)?;
        push(dest, oci)?;
    }
    // Parents before children (moby sorts mounts by path depth).
    all.sort_by_key(|(d, _)| d.split('/').filter(|p| !p.is_empty()).count());
    Ok(all.into_iter().map(|(_, m)| m).collect())
}

fn destination(raw: &str) -> Result<String> {
    if !raw.starts_with('/') {
        return Err(SpecError::InvalidMount {
            reason: "mount path must be absolute".to_owned(),
        });
    }
    let d = clean_abs(raw);
    if d == "/" {
        return Err(SpecError::InvalidMount {
            reason: "destination can't be '/'".to_owned(),
        });
    }
    Ok(d)
}

fn bind_mount(dest: &str, source: &Path, options: &[String]) -> Result<Mount> {
    if !source.is_absolute() {
        return Err(SpecError::InvalidMount {
            reason: format!("bind source path must be absolute: {}", source.display()),
        });
    }
    const PROPAGATION: [&str; 6] = [
        "rprivate", "private", "rshared", "shared", "rslave", "slave",
    ];
    let recursive = !options.iter().any(|o| o == "bind");
    let mut opts: Vec<&str> = vec![if recursive { "rbind" } else { "bind" }];
    for o in options {
        match o.as_str() {
            "rbind" | "bind" | "z" | "Z" => {}
            "ro" | "rw" | "nosuid" | "suid" | "nodev" | "dev" | "noexec" | "exec" => opts.push(o),
            p if PROPAGATION.contains(&p) => opts.push(p),
            other => {
                return Err(SpecError::InvalidMount {
                    reason: format!("invalid bind option {other:?} for {dest}"),
                })
            }
        }
    }
    if !opts.iter().any(|o| PROPAGATION.contains(o)) {
        opts.push("rprivate");
    }
    mount(dest, "bind", source, &opts)
}

fn tmpfs_mount(dest: &str, options: &[String]) -> Result<Mount> {
    const FLAGS: [&str; 14] = [
        "ro",
        "rw",
        "exec",
        "noexec",
        "suid",
        "nosuid",
        "dev",
        "nodev",
        "sync",
        "async",
        "atime",
        "noatime",
        "relatime",
        "strictatime",
    ];
    const KEYED: [&str; 7] = [
        "size",
        "mode",
        "uid",
        "gid",
        "nr_inodes",
        "nr_blocks",
        "mpol",
    ];
    let mut opts: Vec<&str> = TMPFS_DEFAULTS.to_vec();
    for o in options {
        let ok = match o.split_once('=') {
            Some((k, v)) => KEYED.contains(&k) && !v.is_empty(),
            None => FLAGS.contains(&o.as_str()),
        };
        if !ok {
            return Err(SpecError::InvalidTmpfsOption {
                destination: dest.to_owned(),
                option: o.clone(),
            });
        }
        opts.push(o);
    }
    mount(dest, "tmpfs", "tmpfs", &opts)
}

fn mount(dest: &str, typ: &str, source: impl AsRef<Path>, options: &[&str]) -> Result<Mount> {
    Ok(MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source.as_ref())
        .options(options.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan<'a>(
        files: &'a NetworkFiles,
        user: &'a [ResolvedMount],
        tmpfs: &'a BTreeMap<String, String>,
    ) -> MountPlan<'a> {
        MountPlan {
            privileged: false,
            readonly_rootfs: false,
            ipc_host: false,
            shm_size: 0,
            files,
            user,
            tmpfs,
        }
    }

    fn find<'a>(ms: &'a [Mount], dest: &str) -> Option<&'a Mount> {
        ms.iter().find(|m| m.destination() == Path::new(dest))
    }

    fn opts(m: &Mount) -> Vec<String> {
        m.options().clone().unwrap_or_default()
    }

    fn bind(src: &str, dst: &str, o: &[&str]) -> ResolvedMount {
        ResolvedMount {
            source: src.into(),
            destination: dst.into(),
            kind: MountKind::Bind,
            options: o.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn defaults_match_docker() {
        let files = NetworkFiles::default();
        let ms = build_mounts(&plan(&files, &[], &BTreeMap::new())).unwrap();
        let dests: Vec<_> = ms
            .iter()
            .map(|m| m.destination().display().to_string())
            .collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/sys",
                "/sys/fs/cgroup",
                "/dev/mqueue",
                "/dev/shm"
            ]
        );
        let shm = find(&ms, "/dev/shm").unwrap();
        assert!(opts(shm).contains(&"size=65536k".to_string()));
        assert_eq!(shm.typ().as_deref(), Some("tmpfs"));
        assert!(opts(find(&ms, "/sys").unwrap()).contains(&"ro".to_string()));
        assert!(opts(find(&ms, "/sys/fs/cgroup").unwrap()).contains(&"ro".to_string()));
        let dev = opts(find(&ms, "/dev").unwrap());
        assert!(dev.contains(&"mode=755".to_string()) && dev.contains(&"strictatime".to_string()));
        let pts = opts(find(&ms, "/dev/pts").unwrap());
        for o in ["newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] {
            assert!(pts.contains(&o.to_string()), "{o}");
        }
    }

    #[test]
    fn shm_size_and_privileged_sysfs() {
        let files = NetworkFiles::default();
        let t = BTreeMap::new();
        let mut p = plan(&files, &[], &t);
        p.shm_size = 128 * 1024 * 1024;
        p.privileged = true;
        let ms = build_mounts(&p).unwrap();
        assert!(opts(find(&ms, "/dev/shm").unwrap()).contains(&"size=131072k".to_string()));
        assert!(!opts(find(&ms, "/sys").unwrap()).contains(&"ro".to_string()));
        p.shm_size = -1;
        assert!(matches!(
            build_mounts(&p),
            Err(SpecError::InvalidResources { .. })
        ));
    }

    #[test]
    fn ipc_host_binds_host_shm_and_mqueue() {
        let files = NetworkFiles::default();
        let t = BTreeMap::new();
        let mut p = plan(&files, &[], &t);
        p.ipc_host = true;
        let ms = build_mounts(&p).unwrap();
        let shm = find(&ms, "/dev/shm").unwrap();
        assert_eq!(shm.typ().as_deref(), Some("bind"));
        assert_eq!(shm.source().as_deref(), Some(Path::new("/dev/shm")));
    }

    #[test]
    fn network_files_are_bound_read_only_with_readonly_rootfs() {
        let files = NetworkFiles {
            hosts: Some("/run/c/hosts".into()),
            resolv_conf: Some("/run/c/resolv.conf".into()),
            hostname: Some("/run/c/hostname".into()),
        };
        let t = BTreeMap::new();
        let mut p = plan(&files, &[], &t);
        let ms = build_mounts(&p).unwrap();
        let hosts = find(&ms, "/etc/hosts").unwrap();
        assert_eq!(hosts.source().as_deref(), Some(Path::new("/run/c/hosts")));
        assert_eq!(opts(hosts), ["rbind", "rprivate"]);
        p.readonly_rootfs = true;
        let ms = build_mounts(&p).unwrap();
        assert!(opts(find(&ms, "/etc/resolv.conf").unwrap()).contains(&"ro".to_string()));
    }

    #[test]
    fn user_mounts_come_last_sorted_and_shadow_defaults() {
        let files = NetworkFiles {
            hosts: Some("/run/c/hosts".into()),
            ..Default::default()
        };
        let user = vec![
            bind("/srv/a/b", "/data/sub", &["ro"]),
            bind("/srv/a", "/data/", &[]),
            bind("/my/hosts", "/etc/hosts", &[]),
            bind("/my/shm", "/dev/shm", &["rshared"]),
        ];
        let mut t = BTreeMap::new();
        t.insert("/run".to_string(), "rw,size=64m,exec".to_string());
        let ms = build_mounts(&plan(&files, &user, &t)).unwrap();
        let dests: Vec<_> = ms
            .iter()
            .map(|m| m.destination().display().to_string())
            .collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/sys",
                "/sys/fs/cgroup",
                "/dev/mqueue",
                "/data",
                "/run",
                "/data/sub",
                "/etc/hosts",
                "/dev/shm"
            ]
        );
        assert_eq!(opts(&ms[6]), ["rbind", "rprivate"]);
        assert_eq!(
            opts(find(&ms, "/data/sub").unwrap()),
            ["rbind", "ro", "rprivate"]
        );
        assert_eq!(opts(find(&ms, "/dev/shm").unwrap()), ["rbind", "rshared"]);
        assert_eq!(
            find(&ms, "/etc/hosts").unwrap().source().as_deref(),
            Some(Path::new("/my/hosts"))
        );
        let run = find(&ms, "/run").unwrap();
        assert_eq!(run.typ().as_deref(), Some("tmpfs"));
        assert_eq!(
            opts(run),
            ["noexec", "nosuid", "nodev", "rw", "size=64m", "exec"]
        );
    }

    #[test]
    fn mounting_over_dev_drops_default_dev_submounts() {
        let files = NetworkFiles::default();
        let user = vec![bind("/dev", "/dev", &[])];
        let ms = build_mounts(&plan(&files, &user, &BTreeMap::new())).unwrap();
        assert!(find(&ms, "/dev/pts").is_none());
        assert!(find(&ms, "/dev/shm").is_none());
        assert_eq!(find(&ms, "/dev").unwrap().typ().as_deref(), Some("bind"));
    }

    #[test]
    fn validation_errors_name_the_problem() {
        let files = NetworkFiles::default();
        let t = BTreeMap::new();
        let rel = vec![bind("/a", "data", &[])];
        let err = build_mounts(&plan(&files, &rel, &t)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid mount config: mount path must be absolute"
        );
        let root = vec![bind("/a", "/", &[])];
        assert!(build_mounts(&plan(&files, &root, &t)).is_err());
        let dup = vec![bind("/a", "/x", &[]), bind("/b", "/x/", &[])];
        let err = build_mounts(&plan(&files, &dup, &t)).unwrap_err();
        assert_eq!(err.to_string(), "duplicate mount point: /x");
        let relsrc = vec![bind("a", "/x", &[])];
        assert!(build_mounts(&plan(&files, &relsrc, &t)).is_err());
        let badopt = vec![bind("/a", "/x", &["weird"])];
        assert!(build_mounts(&plan(&files, &badopt, &t)).is_err());
        let mut bad_tmpfs = BTreeMap::new();
        bad_tmpfs.insert("/t".to_string(), "size=1m,bogus".to_string());
        let err = build_mounts(&plan(&files, &[], &bad_tmpfs)).unwrap_err();
        assert!(
            matches!(err, SpecError::InvalidTmpfsOption { ref option, .. } if option == "bogus")
        );
        let mut rel_tmpfs = BTreeMap::new();
        rel_tmpfs.insert("t".to_string(), String::new());
        assert!(build_mounts(&plan(&files, &[], &rel_tmpfs)).is_err());
        let mut dup_tmpfs = BTreeMap::new();
        dup_tmpfs.insert("/x".to_string(), String::new());
        let one = vec![bind("/a", "/x", &[])];
        assert!(matches!(
            build_mounts(&plan(&files, &one, &dup_tmpfs)),
            Err(SpecError::DuplicateMount { .. })
        ));
    }
}
