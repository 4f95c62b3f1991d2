//! Where a `cp` path lives on the host: a path under a bind mount or a volume is read and
//! written in the mount's source (the bind's host directory, the volume's `_data`), not in
//! the rootfs below it, for running and stopped containers alike, as dockerd does. The
//! mount whose destination is the longest prefix of the path wins.
//!
//! The container's own tmpfs mounts exist only in its mount namespace; dockerd does not
//! see them either, so paths under them resolve in the rootfs.

use std::path::{Path, PathBuf};

use corral_core::{ContainerRecord, MountType};

use super::archive::clean_abs;

/// What backs a mount a `cp` can reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CpSource {
    /// A host directory (or file) bound into the container.
    Host(PathBuf),
    /// A volume, by name; its data directory comes from the driver.
    Volume(String),
}

/// One bind or volume mount of a container, as `cp` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CpMount {
    /// The cleaned absolute path inside the container.
    pub(crate) destination: String,
    /// What is mounted there.
    pub(crate) source: CpSource,
    /// Mounted read-only: copying into it is refused.
    pub(crate) read_only: bool,
}

/// The bind and volume mounts of a container (from `-v`, `--mount` and its volumes).
pub(crate) fn cp_mounts(rec: &ContainerRecord) -> Vec<CpMount> {
    let mut out = Vec::new();
    for b in &rec.spec.host.binds {
        let parts: Vec<&str> = b.splitn(3, ':').collect();
        if let [src, dst, rest @ ..] = parts.as_slice() {
            if src.starts_with('/') {
                let ro = rest
                    .first()
                    .is_some_and(|m| m.split(',').any(|o| o == "ro"));
                out.push(CpMount {
                    destination: clean_abs(dst),
                    source: CpSource::Host(PathBuf::from(src)),
                    read_only: ro,
                });
            }
        }
    }
    for m in &rec.spec.host.mounts {
        if m.kind == MountType::Bind {
            out.push(CpMount {
                destination: clean_abs(&m.target),
                source: CpSource::Host(PathBuf::from(&m.source)),
                read_only: m.read_only,
            });
        }
    }
    for v in &rec.volume_mounts {
        out.push(CpMount {
            destination: clean_abs(&v.destination),
            source: CpSource::Volume(v.name.clone()),
            read_only: v.read_only,
        });
    }
    out
}

/// The mount holding the cleaned absolute `abs`: the one with the longest destination that
/// is `abs` or a parent of it.
pub(crate) fn mount_for<'a>(mounts: &'a [CpMount], abs: &str) -> Option<&'a CpMount> {
    mounts
        .iter()
        .filter(|m| {
            m.destination != "/"
                && (abs == m.destination
                    || abs
                        .strip_prefix(&m.destination)
                        .is_some_and(|rest| rest.starts_with('/')))
        })
        .max_by_key(|m| m.destination.len())
}

/// `path` (as the user gave it) relative to the mount at `destination`, as an absolute
/// path inside the mount's source; a trailing `/.` is kept (it names the directory's
/// content in `cp`).
pub(crate) fn path_in_mount(path: &str, destination: &str) -> String {
    let abs = clean_abs(path);
    let inner = abs.strip_prefix(destination).unwrap_or(&abs);
    let mut inner = if inner.is_empty() {
        "/".to_owned()
    } else {
        inner.to_owned()
    };
    if path.ends_with("/.") {
        inner = format!("{}/.", inner.trim_end_matches('/'));
    }
    inner
}

/// The last element of a mount destination (`/data/vol` → `vol`).
pub(crate) fn last_element(destination: &str) -> String {
    Path::new(destination)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_core::{MountSpec, VolumeMount};

    fn rec() -> ContainerRecord {
        let mut r = ContainerRecord {
            id: corral_core::ContainerId::random(),
            name: corral_core::ContainerName::parse("c1").unwrap(),
            created: chrono::Utc::now(),
            path: "sh".into(),
            args: vec![],
            env: vec![],
            image_id: "sha256:x".into(),
            runtime: "runc".into(),
            spec: corral_core::ContainerSpec::default(),
            state: Default::default(),
            volume_mounts: vec![],
        };
        r.spec.host.binds = vec![
            "/srv/a:/a".into(),
            "/srv/ro:/a/ro:ro,z".into(),
            "named:/n".into(),
        ];
        r.spec.host.mounts = vec![
            MountSpec {
                kind: MountType::Bind,
                source: "/srv/b".into(),
                target: "/b/".into(),
                read_only: true,
                options: Default::default(),
            },
            MountSpec {
                kind: MountType::Tmpfs,
                source: String::new(),
                target: "/t".into(),
                read_only: false,
                options: Default::default(),
            },
        ];
        r.volume_mounts = vec![VolumeMount {
            name: "named".into(),
            destination: "/n".into(),
            read_only: false,
            anonymous: false,
            no_copy: false,
            mode: String::new(),
        }];
        r
    }

    #[test]
    fn lists_binds_and_volumes_but_not_tmpfs() {
        let m = cp_mounts(&rec());
        let got: Vec<_> = m
            .iter()
            .map(|m| (m.destination.as_str(), &m.source, m.read_only))
            .collect();
        assert_eq!(
            got,
            vec![
                ("/a", &CpSource::Host("/srv/a".into()), false),
                ("/a/ro", &CpSource::Host("/srv/ro".into()), true),
                ("/b", &CpSource::Host("/srv/b".into()), true),
                ("/n", &CpSource::Volume("named".into()), false),
            ]
        );
    }

    #[test]
    fn longest_destination_prefix_wins() {
        let m = cp_mounts(&rec());
        let dest = |p: &str| mount_for(&m, p).map(|m| m.destination.clone());
        assert_eq!(dest("/a"), Some("/a".into()));
        assert_eq!(dest("/a/x/y"), Some("/a".into()));
        assert_eq!(dest("/a/ro/f"), Some("/a/ro".into()));
        assert_eq!(dest("/a/rox"), Some("/a".into()));
        assert_eq!(dest("/ab"), None);
        assert_eq!(dest("/t/f"), None);
        assert_eq!(dest("/"), None);
    }

    #[test]
    fn paths_inside_a_mount_keep_a_trailing_dot() {
        assert_eq!(path_in_mount("/a/x/../y", "/a"), "/y");
        assert_eq!(path_in_mount("/a", "/a"), "/");
        assert_eq!(path_in_mount("/a/", "/a"), "/");
        assert_eq!(path_in_mount("/a/.", "/a"), "/.");
        assert_eq!(path_in_mount("/a/d/.", "/a"), "/d/.");
        assert_eq!(last_element("/data/vol"), "vol");
    }
}
