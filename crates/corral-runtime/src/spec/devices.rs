//! `--device` and `--device-cgroup-rule`: host device nodes added to the container and the
//! device cgroup rules that let it use them, resolved at every start as dockerd does (moby
//! `daemon/oci_linux.go` `WithDevices`, `oci/devices_linux.go`).
//!
//! A `--device` host path is looked at through [`HostDevices`] (symlinks at the top are
//! followed): a char or block node becomes one node; a directory adds every char and block
//! node below it (symlinks inside are not followed) at the same place under the container
//! path; anything else, or a directory without nodes, fails with dockerd's message.

use std::path::{Path, PathBuf};

use corral_core::container::HostSpec;
use corral_core::DeviceMapping;
use oci_spec::runtime::{
    LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType,
};

use super::error::{Result, SpecError};

/// What a host path is, as `lstat(2)` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// A character device.
    Char,
    /// A block device.
    Block,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// Anything else (regular file, fifo, socket).
    Other,
}

/// The `lstat(2)` facts of one host path that a device node needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeInfo {
    /// The file type.
    pub kind: NodeKind,
    /// `major(st_rdev)`.
    pub major: u64,
    /// `minor(st_rdev)`.
    pub minor: u64,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// The host file system as `--device` reads it; [`RealHostDevices`] in production, a map
/// in tests.
pub trait HostDevices: std::fmt::Debug + Send + Sync {
    /// `lstat(2)` of `path` (the last component is not followed).
    ///
    /// # Errors
    /// The system error (`ENOENT`, `EACCES`, …).
    fn lstat(&self, path: &Path) -> std::io::Result<NodeInfo>;
    /// `path` with every symlink resolved (Go's `filepath.EvalSymlinks`).
    ///
    /// # Errors
    /// The system error.
    fn resolve(&self, path: &Path) -> std::io::Result<PathBuf>;
    /// The entries of directory `path`, full paths, sorted by name (as Go's `filepath.Walk`
    /// visits them).
    ///
    /// # Errors
    /// The system error.
    fn list_dir(&self, path: &Path) -> std::io::Result<Vec<PathBuf>>;
}

/// [`HostDevices`] over the real host file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealHostDevices;

impl HostDevices for RealHostDevices {
    fn lstat(&self, path: &Path) -> std::io::Result<NodeInfo> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let meta = std::fs::symlink_metadata(path)?;
        let ft = meta.file_type();
        let kind = if ft.is_char_device() {
            NodeKind::Char
        } else if ft.is_block_device() {
            NodeKind::Block
        } else if ft.is_dir() {
            NodeKind::Dir
        } else if ft.is_symlink() {
            NodeKind::Symlink
        } else {
            NodeKind::Other
        };
        let rdev = meta.rdev();
        // glibc's major(3)/minor(3) encoding of dev_t.
        let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
        let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
        Ok(NodeInfo {
            kind,
            major,
            minor,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
        })
    }

    fn resolve(&self, path: &Path) -> std::io::Result<PathBuf> {
        std::fs::canonicalize(path)
    }

    fn list_dir(&self, path: &Path) -> std::io::Result<Vec<PathBuf>> {
        let mut out = std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<Vec<_>>>()?;
        out.sort();
        Ok(out)
    }
}

/// The nodes and device cgroup rules `--device` and `--device-cgroup-rule` add.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct CustomDevices {
    /// Nodes to create in the container.
    pub(crate) nodes: Vec<LinuxDevice>,
    /// Allow rules appended to the default device cgroup rules.
    pub(crate) rules: Vec<LinuxDeviceCgroup>,
}

/// Resolves `host.devices` and parses `host.device_cgroup_rules`.
///
/// Privileged containers may use every device already, so (as dockerd) their rules are not
/// read and a `--device` that cannot be resolved is skipped; the nodes that can be are still
/// created (dockerd creates every host node instead, which Corral does not).
///
/// # Errors
/// [`SpecError::CustomDevice`] for a host path that is missing or holds no device node,
/// [`SpecError::DeviceCgroupRule`] for a rule that does not parse, and
/// [`SpecError::DevicePermissions`] for permissions without any of `r`, `w`, `m`.
pub(crate) fn custom_devices(host: &HostSpec, fs: &dyn HostDevices) -> Result<CustomDevices> {
    let mut out = CustomDevices::default();
    for mapping in &host.devices {
        match devices_from_path(mapping, fs) {
            Ok(nodes) => {
                for (node, access) in nodes {
                    if !host.privileged {
                        out.rules.push(allow_rule(&node, &access)?);
                    }
                    out.nodes.push(node);
                }
            }
            Err(e) if host.privileged => {
                tracing::warn!(error = %e, "skipping --device of a privileged container");
            }
            Err(e) => return Err(e),
        }
    }
    if !host.privileged {
        for rule in &host.device_cgroup_rules {
            out.rules.push(parse_cgroup_rule(rule)?);
        }
    }
    Ok(out)
}

/// dockerd's `DevicesFromPath`: the nodes of one mapping, each with its cgroup access.
fn devices_from_path(
    mapping: &DeviceMapping,
    fs: &dyn HostDevices,
) -> Result<Vec<(LinuxDevice, String)>> {
    let on_host = mapping.path_on_host.as_str();
    let in_container = if mapping.path_in_container.is_empty() {
        on_host
    } else {
        mapping.path_in_container.as_str()
    };
    let access = access(mapping)?;
    let failed = |reason: String| SpecError::CustomDevice {
        path: on_host.to_owned(),
        reason,
    };
    let mut resolved = PathBuf::from(on_host);
    if matches!(fs.lstat(&resolved), Ok(i) if i.kind == NodeKind::Symlink) {
        if let Ok(target) = fs.resolve(&resolved) {
            resolved = target;
        }
    }
    let info = fs.lstat(&resolved).map_err(|e| failed(errno_text(&e)))?;
    if let Some(node) = node(&info, in_container)? {
        return Ok(vec![(node, access)]);
    }
    let mut out = Vec::new();
    if info.kind == NodeKind::Dir {
        walk(fs, &resolved, &mut |path, info| {
            let Ok(rest) = path.strip_prefix(&resolved) else {
                return Ok(());
            };
            let target = Path::new(in_container).join(rest);
            if let Some(node) = node(info, &target.to_string_lossy())? {
                out.push((node, access.clone()));
            }
            Ok(())
        })?;
    }
    if out.is_empty() {
        return Err(failed("not a device node".to_owned()));
    }
    Ok(out)
}

/// Visits every entry below `dir` (not `dir` itself), depth first in name order, without
/// following symlinks; unreadable entries are skipped, as dockerd's walk ignores them.
fn walk(
    fs: &dyn HostDevices,
    dir: &Path,
    visit: &mut dyn FnMut(&Path, &NodeInfo) -> Result<()>,
) -> Result<()> {
    let Ok(entries) = fs.list_dir(dir) else {
        return Ok(());
    };
    for path in entries {
        let Ok(info) = fs.lstat(&path) else {
            continue;
        };
        visit(&path, &info)?;
        if info.kind == NodeKind::Dir {
            walk(fs, &path, visit)?;
        }
    }
    Ok(())
}

/// The OCI node for a char or block device at `path` in the container; `None` otherwise.
fn node(info: &NodeInfo, path: &str) -> Result<Option<LinuxDevice>> {
    let typ = match info.kind {
        NodeKind::Char => LinuxDeviceType::C,
        NodeKind::Block => LinuxDeviceType::B,
        _ => return Ok(None),
    };
    let number = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    Ok(Some(
        LinuxDeviceBuilder::default()
            .path(path)
            .typ(typ)
            .major(number(info.major))
            .minor(number(info.minor))
            .file_mode(info.mode)
            .uid(info.uid)
            .gid(info.gid)
            .build()?,
    ))
}

/// The mapping's cgroup access: `rwm` when empty, otherwise its `r`, `w` and `m` letters
/// (runc ignores any other letter; dockerd passes them through).
fn access(mapping: &DeviceMapping) -> Result<String> {
    let given = mapping.cgroup_permissions.as_str();
    if given.is_empty() {
        return Ok("rwm".to_owned());
    }
    let kept: String = "rwm".chars().filter(|c| given.contains(*c)).collect();
    if kept.is_empty() {
        return Err(SpecError::DevicePermissions {
            path: mapping.path_on_host.clone(),
            permissions: given.to_owned(),
        });
    }
    Ok(kept)
}

/// One device cgroup rule: allow or deny `access` (`r`, `w`, `m` letters) to devices of
/// type `typ` with these numbers, where `None` is any (`*`: the OCI spec reads an absent
/// number so). The one place rules are built: the default rules, `--device` and
/// `--device-cgroup-rule` all come through here.
pub(crate) fn cgroup_rule(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> Result<LinuxDeviceCgroup> {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .typ(typ)
        .access(access);
    if let Some(m) = major {
        b = b.major(m);
    }
    if let Some(m) = minor {
        b = b.minor(m);
    }
    Ok(b.build()?)
}

/// The rule that lets the container use `node` with `access`.
fn allow_rule(node: &LinuxDevice, access: &str) -> Result<LinuxDeviceCgroup> {
    cgroup_rule(
        true,
        node.typ(),
        Some(node.major()),
        Some(node.minor()),
        access,
    )
}

/// Parses one `--device-cgroup-rule` as dockerd 20.10 does: `TYPE MAJOR:MINOR ACCESS` with
/// type `a`, `b` or `c`, decimal numbers or `*`, and one to three of `r`, `w`, `m`, single
/// spaces, nothing else. A `*` becomes an absent number (any), as the OCI spec reads it.
pub(crate) fn parse_cgroup_rule(rule: &str) -> Result<LinuxDeviceCgroup> {
    let bad = || SpecError::DeviceCgroupRule {
        rule: rule.to_owned(),
    };
    let number_shape =
        |t: &str| t == "*" || (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()));
    let parts: Vec<&str> = rule.split(' ').collect();
    let [typ, numbers, access] = parts[..] else {
        return Err(bad());
    };
    let Some((major, minor)) = numbers.split_once(':') else {
        return Err(bad());
    };
    let typ = match typ {
        "a" => LinuxDeviceType::A,
        "b" => LinuxDeviceType::B,
        "c" => LinuxDeviceType::C,
        _ => return Err(bad()),
    };
    if !number_shape(major)
        || !number_shape(minor)
        || !(1..=3).contains(&access.len())
        || !access.chars().all(|c| "rwm".contains(c))
    {
        return Err(bad());
    }
    // Only then are the numbers read (a `*` is any), each with its own message.
    let number = |text: &str, which: &'static str| -> Result<Option<i64>> {
        if text == "*" {
            return Ok(None);
        }
        text.parse::<i64>()
            .map(Some)
            .map_err(|_| SpecError::DeviceCgroupRuleNumber {
                rule: rule.to_owned(),
                which,
            })
    };
    let (major, minor) = (number(major, "major")?, number(minor, "minor")?);
    cgroup_rule(true, typ, major, minor, access)
}

/// Go's text of a system error (`no such file or directory`), which dockerd's message uses.
fn errno_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    // std renders "No such file or directory (os error 2)".
    let text = text.split(" (os error").next().unwrap_or(&text).to_owned();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// A host file system made of `lstat` answers and symlink targets.
    #[derive(Debug, Default)]
    struct FakeFs {
        nodes: BTreeMap<PathBuf, NodeInfo>,
        links: BTreeMap<PathBuf, PathBuf>,
    }

    impl FakeFs {
        fn add(&mut self, path: &str, kind: NodeKind, major: u64, minor: u64, mode: u32) {
            self.nodes.insert(
                PathBuf::from(path),
                NodeInfo {
                    kind,
                    major,
                    minor,
                    mode,
                    uid: 0,
                    gid: 5,
                },
            );
        }

        fn link(&mut self, path: &str, target: &str) {
            self.add(path, NodeKind::Symlink, 0, 0, 0o777);
            self.links
                .insert(PathBuf::from(path), PathBuf::from(target));
        }
    }

    impl HostDevices for FakeFs {
        fn lstat(&self, path: &Path) -> std::io::Result<NodeInfo> {
            self.nodes
                .get(path)
                .copied()
                .ok_or_else(|| std::io::Error::from_raw_os_error(ENOENT))
        }

        fn resolve(&self, path: &Path) -> std::io::Result<PathBuf> {
            self.links
                .get(path)
                .cloned()
                .ok_or_else(|| std::io::Error::from_raw_os_error(ENOENT))
        }

        fn list_dir(&self, path: &Path) -> std::io::Result<Vec<PathBuf>> {
            Ok(self
                .nodes
                .keys()
                .filter(|p| p.parent() == Some(path))
                .cloned()
                .collect())
        }
    }

    const ENOENT: i32 = 2;

    fn fake() -> FakeFs {
        let mut fs = FakeFs::default();
        fs.add("/dev/null", NodeKind::Char, 1, 3, 0o666);
        fs.add("/dev/loop-control", NodeKind::Char, 10, 237, 0o600);
        fs.add("/dev/sda", NodeKind::Block, 8, 0, 0o660);
        fs.add("/dev/snd", NodeKind::Dir, 0, 0, 0o755);
        fs.add("/dev/snd/timer", NodeKind::Char, 116, 33, 0o660);
        fs.add("/dev/snd/by-path", NodeKind::Dir, 0, 0, 0o755);
        fs.add("/dev/snd/by-path/pci", NodeKind::Symlink, 0, 0, 0o777);
        fs.add("/dev/snd/sub", NodeKind::Dir, 0, 0, 0o755);
        fs.add("/dev/snd/sub/c0", NodeKind::Char, 116, 1, 0o640);
        fs.add("/dev/snd/file", NodeKind::Other, 0, 0, 0o644);
        fs.add("/dev/empty", NodeKind::Dir, 0, 0, 0o755);
        fs.add("/etc/passwd", NodeKind::Other, 0, 0, 0o644);
        fs.link("/dev/lc", "/dev/loop-control");
        fs.link("/dev/sound", "/dev/snd");
        fs
    }

    fn mapping(on_host: &str, in_container: &str, perms: &str) -> DeviceMapping {
        DeviceMapping {
            path_on_host: on_host.to_owned(),
            path_in_container: in_container.to_owned(),
            cgroup_permissions: perms.to_owned(),
        }
    }

    fn host(devices: Vec<DeviceMapping>, rules: &[&str]) -> HostSpec {
        HostSpec {
            devices,
            device_cgroup_rules: rules.iter().map(|r| (*r).to_owned()).collect(),
            ..HostSpec::default()
        }
    }

    fn summary(d: &CustomDevices) -> (Vec<String>, Vec<String>) {
        let nodes = d
            .nodes
            .iter()
            .map(|n| {
                format!(
                    "{} {:?} {}:{} {:o} {}:{}",
                    n.path().display(),
                    n.typ(),
                    n.major(),
                    n.minor(),
                    n.file_mode().unwrap(),
                    n.uid().unwrap(),
                    n.gid().unwrap()
                )
            })
            .collect();
        let rules = d.rules.iter().map(rule_text).collect();
        (nodes, rules)
    }

    fn rule_text(r: &LinuxDeviceCgroup) -> String {
        let n = |n: Option<i64>| n.map_or("*".to_owned(), |n| n.to_string());
        format!(
            "{} {:?} {}:{} {}",
            if r.allow() { "allow" } else { "deny" },
            r.typ().unwrap(),
            n(r.major()),
            n(r.minor()),
            r.access().as_deref().unwrap_or("")
        )
    }

    #[test]
    fn a_device_node_becomes_a_node_and_an_allow_rule() {
        let h = host(
            vec![
                mapping("/dev/loop-control", "", ""),
                mapping("/dev/null", "/dev/mynull", "rw"),
                mapping("/dev/sda", "/dev/xvda", "r"),
            ],
            &[],
        );
        let d = custom_devices(&h, &fake()).unwrap();
        assert_eq!(
            summary(&d),
            (
                vec![
                    "/dev/loop-control C 10:237 600 0:5".to_owned(),
                    "/dev/mynull C 1:3 666 0:5".to_owned(),
                    "/dev/xvda B 8:0 660 0:5".to_owned(),
                ],
                vec![
                    "allow C 10:237 rwm".to_owned(),
                    "allow C 1:3 rw".to_owned(),
                    "allow B 8:0 r".to_owned(),
                ]
            )
        );
    }

    #[test]
    fn symlinks_are_followed_at_the_top_only_and_directories_walked() {
        let h = host(
            vec![
                mapping("/dev/lc", "/dev/lc", "rwm"),
                mapping("/dev/sound", "/dev/s", "rw"),
            ],
            &[],
        );
        let d = custom_devices(&h, &fake()).unwrap();
        assert_eq!(
            summary(&d).0,
            vec![
                "/dev/lc C 10:237 600 0:5",
                // by-path/pci is a symlink and the file is no device: both skipped.
                "/dev/s/sub/c0 C 116:1 640 0:5",
                "/dev/s/timer C 116:33 660 0:5",
            ]
        );
        assert_eq!(
            summary(&d).1,
            vec![
                "allow C 10:237 rwm",
                "allow C 116:1 rw",
                "allow C 116:33 rw"
            ]
        );
    }

    #[test]
    fn missing_paths_and_paths_without_nodes_fail_with_dockerds_message() {
        let fs = fake();
        let err = |m: DeviceMapping| {
            let e = custom_devices(&host(vec![m], &[]), &fs).unwrap_err();
            assert_eq!(e.kind(), corral_core::ErrorKind::Internal, "dockerd's 500");
            e.to_string()
        };
        assert_eq!(
            err(mapping("/dev/nope", "/dev/nope", "rwm")),
            r#"error gathering device information while adding custom device "/dev/nope": no such file or directory"#
        );
        assert_eq!(
            err(mapping("/etc/passwd", "/dev/p", "rwm")),
            r#"error gathering device information while adding custom device "/etc/passwd": not a device node"#
        );
        assert_eq!(
            err(mapping("/dev/empty", "/dev/e", "rwm")),
            r#"error gathering device information while adding custom device "/dev/empty": not a device node"#
        );
        assert_eq!(
            err(mapping("/dev/null", "/dev/x", "z")),
            r#"invalid device cgroup permissions "z" for custom device "/dev/null": want a combination of r, w and m"#
        );
    }

    #[test]
    fn stray_permission_letters_are_dropped() {
        let h = host(vec![mapping("/dev/null", "/dev/x", "rwz")], &[]);
        let d = custom_devices(&h, &fake()).unwrap();
        assert_eq!(summary(&d).1, vec!["allow C 1:3 rw"]);
    }

    #[test]
    fn privileged_skips_rules_and_unresolvable_devices() {
        let mut h = host(
            vec![
                mapping("/dev/nope", "", ""),
                mapping("/dev/null", "/dev/n", ""),
            ],
            &["bad"],
        );
        h.privileged = true;
        let d = custom_devices(&h, &fake()).unwrap();
        assert_eq!(
            summary(&d),
            (vec!["/dev/n C 1:3 666 0:5".to_owned()], vec![])
        );
    }

    #[test]
    fn cgroup_rules_parse_as_dockerd_does() {
        let ok = |r: &str| rule_text(&parse_cgroup_rule(r).unwrap());
        assert_eq!(ok("c 1:3 rwm"), "allow C 1:3 rwm");
        assert_eq!(ok("b *:* m"), "allow B *:* m");
        assert_eq!(ok("a 7:* r"), "allow A 7:* r");
        assert_eq!(ok("c 10:200 rrr"), "allow C 10:200 rrr");
        let bad = |r: &str| {
            let e = parse_cgroup_rule(r).unwrap_err();
            assert_eq!(e.kind(), corral_core::ErrorKind::Internal, "dockerd's 500");
            e.to_string()
        };
        for r in [
            "x",
            "c 1:3 rwz",
            "c 1:3",
            "p 1:3 rwm",
            "c 1:3  rwm",
            " c 1:3 rwm",
            "c 1:3 rwmr",
            "c 1-3 rwm",
            "c -1:3 rwm",
            "c :3 rwm",
            "c 1:3 rwm ",
            "",
        ] {
            assert_eq!(bad(r), format!("invalid device cgroup rule format: '{r}'"));
        }
        assert_eq!(
            bad("c 99999999999999999999:1 r"),
            "invalid major value in device cgroup rule format: 'c 99999999999999999999:1 r'"
        );
        assert_eq!(
            bad("c 1:99999999999999999999 r"),
            "invalid minor value in device cgroup rule format: 'c 1:99999999999999999999 r'"
        );
    }

    #[test]
    fn absent_numbers_in_a_rule_mean_any() {
        let r = cgroup_rule(false, LinuxDeviceType::A, None, None, "rwm").unwrap();
        assert_eq!(rule_text(&r), "deny A *:* rwm");
        let r = cgroup_rule(true, LinuxDeviceType::C, Some(136), None, "rw").unwrap();
        assert_eq!(rule_text(&r), "allow C 136:* rw");
        assert_eq!((r.major(), r.minor()), (Some(136), None));
    }

    #[test]
    fn errno_text_is_gos() {
        assert_eq!(
            errno_text(&std::io::Error::from_raw_os_error(2)),
            "no such file or directory"
        );
        assert_eq!(
            errno_text(&std::io::Error::from_raw_os_error(13)),
            "permission denied"
        );
    }

    #[test]
    fn the_real_host_reads_dev_null() {
        let info = RealHostDevices.lstat(Path::new("/dev/null")).unwrap();
        assert_eq!((info.kind, info.major, info.minor), (NodeKind::Char, 1, 3));
    }
}
