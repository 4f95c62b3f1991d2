//! The container user: `name`, `uid`, `name:group`, `uid:gid` resolved against the rootfs's
//! `/etc/passwd` and `/etc/group`, as Docker does (moby/sys/user `GetExecUser`).

use std::io::ErrorKind as IoKind;
use std::path::Path;

use super::error::{Result, SpecError};
use super::rootfs::secure_join;

/// The identity the container process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups: the primary gid, the user's `/etc/group` memberships (when no
    /// group was given explicitly) and `--group-add`, without duplicates.
    pub additional_gids: Vec<u32>,
    /// Home directory from `/etc/passwd`, `/` when the user has no entry.
    pub home: String,
}

/// Resolves `user_spec` (empty means root) and `group_add` against `rootfs/etc/passwd` and
/// `rootfs/etc/group`. Both files are found with [`secure_join`], so a symlink in the image
/// cannot make the daemon read a host file. Missing files count as empty.
///
/// # Errors
/// [`SpecError::UserNotFound`] / [`SpecError::GroupNotFound`] for a name without an entry,
/// [`SpecError::InvalidUser`] for a malformed spec, [`SpecError::Io`] when a file exists but
/// cannot be read.
pub fn resolve_user(rootfs: &Path, user_spec: &str, group_add: &[String]) -> Result<ResolvedUser> {
    let passwd = read_optional(rootfs, "/etc/passwd")?;
    let group = read_optional(rootfs, "/etc/group")?;
    resolve_user_from(&passwd, &group, user_spec, group_add)
}

/// [`resolve_user`] on file contents already read.
///
/// # Errors
/// As [`resolve_user`], minus I/O.
pub fn resolve_user_from(
    passwd: &str,
    group: &str,
    user_spec: &str,
    group_add: &[String],
) -> Result<ResolvedUser> {
    let (user_arg, group_arg) = match user_spec.split_once(':') {
        Some((u, g)) => (u, g),
        None => (user_spec, ""),
    };
    let user_arg = if user_arg.is_empty() { "0" } else { user_arg };
    let uid_num = parse_id(user_spec, user_arg)?;
    let users = parse_passwd(passwd);
    let groups = parse_group(group);

    let entry = users
        .iter()
        .find(|u| u.name == user_arg || Some(u.uid) == uid_num);
    let (uid, mut gid, home, name) = match (entry, uid_num) {
        (Some(u), _) => (u.uid, u.gid, u.home.to_owned(), Some(u.name)),
        (None, Some(n)) => (n, 0, "/".to_owned(), None),
        (None, None) => {
            return Err(SpecError::UserNotFound {
                user: user_arg.to_owned(),
            })
        }
    };

    let mut sgids = Vec::new();
    if group_arg.is_empty() {
        // Supplementary groups only come from /etc/group in the implicit form.
        if let Some(name) = name {
            sgids.extend(
                groups
                    .iter()
                    .filter(|g| g.members.contains(&name))
                    .map(|g| g.gid),
            );
        }
    } else {
        gid = lookup_group(&groups, user_spec, group_arg)?;
    }
    for g in group_add {
        sgids.push(lookup_group(&groups, g, g)?);
    }

    let mut additional_gids = vec![gid];
    for g in sgids {
        if !additional_gids.contains(&g) {
            additional_gids.push(g);
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home: if home.is_empty() {
            "/".to_owned()
        } else {
            home
        },
    })
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn read_optional(rootfs: &Path, path: &str) -> Result<String> {
    let host = secure_join(rootfs, path)?;
    match std::fs::read(&host) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == IoKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => {
            Ok(String::new())
        }
        Err(e) => Err(SpecError::io(host, e)),
    }
}

fn parse_id(spec: &str, arg: &str) -> Result<Option<u32>> {
    if arg.bytes().all(|b| b.is_ascii_digit()) {
        arg.parse::<u32>()
            .map(Some)
            .map_err(|_| SpecError::InvalidUser {
                user: spec.to_owned(),
                reason: format!("id {arg} is out of range"),
            })
    } else if arg.starts_with('-') && arg[1..].bytes().all(|b| b.is_ascii_digit()) {
        Err(SpecError::InvalidUser {
            user: spec.to_owned(),
            reason: format!("negative id {arg}"),
        })
    } else {
        Ok(None)
    }
}

fn lookup_group(groups: &[GroupEntry<'_>], spec: &str, arg: &str) -> Result<u32> {
    let num = parse_id(spec, arg)?;
    match groups.iter().find(|g| g.name == arg || Some(g.gid) == num) {
        Some(g) => Ok(g.gid),
        None => num.ok_or_else(|| SpecError::GroupNotFound {
            group: arg.to_owned(),
        }),
    }
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry<'_>> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?,
                uid: f.get(2)?.trim().parse().ok()?,
                gid: f.get(3).and_then(|g| g.trim().parse().ok()).unwrap_or(0),
                home: f.get(5).copied().unwrap_or(""),
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry<'_>> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(GroupEntry {
                name: f.first()?,
                gid: f.get(2)?.trim().parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::spec::test_support::TempDir;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
        # comment\n\
        app:x:1000:1000:App:/home/app:/bin/sh\n\
        nohome:x:1001:1001::::\n";
    const GROUP: &str = "root:x:0:root\nwheel:x:10:root,app\napp:x:1000:\n\
        staff:x:50:app\nvideo:x:44:\n";

    fn r(spec: &str, add: &[&str]) -> Result<ResolvedUser> {
        let add: Vec<String> = add.iter().map(|s| s.to_string()).collect();
        resolve_user_from(PASSWD, GROUP, spec, &add)
    }

    #[test]
    fn empty_spec_is_root_with_its_memberships() {
        let u = r("", &[]).unwrap();
        assert_eq!((u.uid, u.gid), (0, 0));
        assert_eq!(u.additional_gids, vec![0, 10]);
        assert_eq!(u.home, "/root");
    }

    #[test]
    fn name_resolves_uid_gid_home_and_groups() {
        let u = r("app", &[]).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1000, 1000, "/home/app"));
        assert_eq!(u.additional_gids, vec![1000, 10, 50]);
    }

    #[test]
    fn numeric_uid_in_passwd_uses_its_entry() {
        let u = r("1000", &[]).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1000, 1000, "/home/app"));
    }

    #[test]
    fn numeric_uid_not_in_passwd_is_allowed_with_gid_0() {
        let u = r("4242", &[]).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 0, "/"));
        assert_eq!(u.additional_gids, vec![0]);
    }

    #[test]
    fn explicit_group_replaces_memberships() {
        let u = r("app:video", &[]).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 44));
        assert_eq!(u.additional_gids, vec![44]);
        let u = r("1000:777", &[]).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 777));
    }

    #[test]
    fn group_add_appends_named_and_numeric_groups() {
        let u = r("app", &["video", "999", "wheel"]).unwrap();
        assert_eq!(u.additional_gids, vec![1000, 10, 50, 44, 999]);
        let err = r("app", &["nosuch"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to find group nosuch: no matching entries in group file"
        );
    }

    #[test]
    fn unknown_user_name_uses_dockers_message() {
        let err = r("ghost", &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to find user ghost: no matching entries in passwd file"
        );
        assert_eq!(err.kind(), corral_core::ErrorKind::InvalidInput);
        let err = r("app:nogroup", &[]).unwrap_err();
        assert!(matches!(err, SpecError::GroupNotFound { .. }));
    }

    #[test]
    fn empty_home_becomes_root_dir() {
        assert_eq!(r("nohome", &[]).unwrap().home, "/");
    }

    #[test]
    fn negative_ids_are_rejected() {
        assert!(matches!(
            r("-1", &[]).unwrap_err(),
            SpecError::InvalidUser { .. }
        ));
    }

    #[test]
    fn reads_files_from_the_rootfs() {
        let root = TempDir::new("user-files");
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        std::fs::write(root.path().join("etc/passwd"), PASSWD).unwrap();
        std::fs::write(root.path().join("etc/group"), GROUP).unwrap();
        let u = resolve_user(root.path(), "app", &[]).unwrap();
        assert_eq!(u.uid, 1000);
    }

    #[test]
    fn missing_passwd_allows_numeric_only() {
        let root = TempDir::new("user-empty");
        let u = resolve_user(root.path(), "0", &[]).unwrap();
        assert_eq!((u.uid, u.home.as_str()), (0, "/"));
        assert!(resolve_user(root.path(), "root", &[]).is_err());
    }

    #[test]
    fn symlinked_passwd_cannot_escape_the_rootfs() {
        // A host "passwd" outside the rootfs that an escaping link would reach.
        let outer = TempDir::new("user-escape");
        let rootfs = outer.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("etc")).unwrap();
        std::fs::write(
            outer.path().join("passwd"),
            "hostonly:x:7:7::/host:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(rootfs.join("passwd"), "inside:x:8:8::/in:/bin/sh\n").unwrap();
        symlink("/../../passwd", rootfs.join("etc/passwd")).unwrap();
        assert!(matches!(
            resolve_user(&rootfs, "hostonly", &[]).unwrap_err(),
            SpecError::UserNotFound { .. }
        ));
        // The link resolved to <rootfs>/passwd instead.
        assert_eq!(resolve_user(&rootfs, "inside", &[]).unwrap().uid, 8);
        // Relative escape attempts are clamped too.
        std::fs::remove_file(rootfs.join("etc/passwd")).unwrap();
        symlink("../../../passwd", rootfs.join("etc/passwd")).unwrap();
        assert_eq!(resolve_user(&rootfs, "inside", &[]).unwrap().uid, 8);
    }
}
