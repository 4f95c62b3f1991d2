//! The `local` driver's options (`docker volume create --opt KEY=VALUE`), validated as
//! dockerd's `volume/local` validates them.
//!
//! dockerd knows four keys: `type` (the filesystem type), `device` (what to mount), `o`
//! (`mount -o` options) and `size` (an XFS project quota). `type` and `device` go together,
//! and `o` needs both. A volume with a `type` is mounted at its `_data` directory while
//! containers use it.

use std::collections::BTreeMap;

use corral_sys::mount::{plan_fs_mount, FsMount};

use crate::error::{Error, Result};

/// The keys the local driver accepts.
const KEYS: [&str; 4] = ["type", "device", "o", "size"];

/// For each key, the keys it needs beside it (dockerd's `mandatoryOpts`).
const REQUIRES: [(&str, &[&str]); 3] = [
    ("device", &["type"]),
    ("type", &["device"]),
    ("o", &["device", "type"]),
];

/// Filesystem types that reach a server over the network. dockerd resolves the host name
/// in `addr=` (and in a CIFS device URL) before mounting; corral cannot test that path
/// here, so it refuses these types rather than ship it untested.
const NETWORK_TYPES: [&str; 5] = ["nfs", "nfs4", "cifs", "smb3", "smbfs"];

/// What a local volume mounts at its `_data` directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMount {
    /// `type`: the filesystem type (`tmpfs`, `ext4`, `none` for a bind).
    pub fstype: String,
    /// `device`: what to mount (`tmpfs`, `/dev/sdb1`, a directory for a bind).
    pub device: String,
    /// `o`: `mount -o` options (`size=100m,uid=1000`, `bind`).
    pub options: String,
}

// === impl LocalMount ===

impl LocalMount {
    /// The `mount(2)` call for this volume.
    pub fn plan(&self) -> FsMount {
        plan_fs_mount(&self.device, &self.fstype, &self.options)
    }
}

/// Validates the options of volume `name`; `Some` when the volume mounts a filesystem.
///
/// # Errors
/// [`Error::InvalidOption`] with dockerd's message for an unknown key (`invalid option:
/// "foo"`), a missing companion key (`missing required option: "device"`), a bad `size`,
/// a positive `size` (no quota support), or a network filesystem type.
pub fn parse_options(name: &str, options: &BTreeMap<String, String>) -> Result<Option<LocalMount>> {
    let invalid = |message: String| Error::InvalidOption {
        name: name.to_owned(),
        message,
    };
    if let Some(key) = options.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(invalid(format!("invalid option: {key:?}")));
    }
    if let Some(size) = options.get("size") {
        let bytes =
            parse_ram_size(size).ok_or_else(|| invalid(format!("invalid size: '{size}'")))?;
        // dockerd sets the size as an XFS project quota when its data root supports one;
        // corral has no quota support, and says so as dockerd does without it.
        if bytes > 0 {
            return Err(invalid(
                "quota size requested but no quota support".to_owned(),
            ));
        }
    }
    for (key, needs) in REQUIRES {
        if options.contains_key(key) {
            if let Some(missing) = needs.iter().find(|n| !options.contains_key(**n)) {
                return Err(invalid(format!("missing required option: {missing:?}")));
            }
        }
    }
    let get = |k: &str| options.get(k).cloned().unwrap_or_default();
    let (fstype, device) = (get("type"), get("device"));
    if NETWORK_TYPES.contains(&fstype.as_str()) {
        return Err(invalid(format!(
            "network filesystem type {fstype:?} is not supported by corral's local driver"
        )));
    }
    if fstype.is_empty() && device.is_empty() {
        return Ok(None);
    }
    if device.is_empty() {
        // dockerd accepts `device=` (empty) at create and fails at mount with this message;
        // refusing it up front leaves no volume that can never be mounted.
        return Err(invalid("missing device in volume options".to_owned()));
    }
    Ok(Some(LocalMount {
        fstype,
        device,
        options: get("o"),
    }))
}

/// Parses a size as dockerd's `units.RAMInBytes`: a decimal number, an optional space and
/// binary unit `k`, `m`, `g`, `t`, `p`, then an optional `i` and `b` (`100m`, `1.5GiB`).
fn parse_ram_size(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let mut rest = lower.as_str();
    rest = rest.strip_suffix('b').unwrap_or(rest);
    rest = rest.strip_suffix('i').unwrap_or(rest);
    let mult: u64 = match rest.chars().last()? {
        'k' => 1 << 10,
        'm' => 1 << 20,
        'g' => 1 << 30,
        't' => 1 << 40,
        'p' => 1 << 50,
        _ => 1,
    };
    if mult > 1 {
        rest = &rest[..rest.len() - 1];
    }
    let num = rest.strip_suffix(' ').unwrap_or(rest);
    let valid = !num.is_empty()
        && num.chars().all(|c| c.is_ascii_digit() || c == '.')
        && num.starts_with(|c: char| c.is_ascii_digit())
        && num.ends_with(|c: char| c.is_ascii_digit());
    if !valid {
        return None;
    }
    let n: f64 = num.parse().ok()?;
    // Sizes are far below 2^63 bytes; the float product is in range and exact enough.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let bytes = (n * mult as f64) as u64;
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn err(pairs: &[(&str, &str)]) -> String {
        parse_options("v", &opts(pairs)).unwrap_err().to_string()
    }

    #[test]
    fn accepts_tmpfs_bind_and_device_volumes() {
        assert_eq!(parse_options("v", &opts(&[])).unwrap(), None);
        assert_eq!(parse_options("v", &opts(&[("size", "0")])).unwrap(), None);
        let t = parse_options(
            "v",
            &opts(&[
                ("type", "tmpfs"),
                ("device", "tmpfs"),
                ("o", "size=100m,uid=1000"),
            ]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(t.fstype, "tmpfs");
        assert_eq!(t.plan().data, "size=100m,uid=1000");
        let b = parse_options(
            "v",
            &opts(&[("type", "none"), ("device", "/srv/data"), ("o", "bind")]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(b.plan(), plan_fs_mount("/srv/data", "none", "bind"));
        let d = parse_options("v", &opts(&[("type", "ext4"), ("device", "/dev/loop7")]))
            .unwrap()
            .unwrap();
        assert_eq!(d.options, "");
    }

    #[test]
    fn refuses_options_with_dockerds_messages() {
        assert_eq!(err(&[("foo", "bar")]), "create v: invalid option: \"foo\"");
        assert_eq!(
            err(&[("type", "tmpfs")]),
            "create v: missing required option: \"device\""
        );
        assert_eq!(
            err(&[("device", "/x")]),
            "create v: missing required option: \"type\""
        );
        assert!(err(&[("o", "size=1m")]).starts_with("create v: missing required option: "));
        assert_eq!(err(&[("size", "abc")]), "create v: invalid size: 'abc'");
        assert_eq!(
            err(&[("size", "10m")]),
            "create v: quota size requested but no quota support"
        );
        assert_eq!(
            err(&[
                ("type", "nfs"),
                ("device", ":/export"),
                ("o", "addr=10.0.0.1")
            ]),
            "create v: network filesystem type \"nfs\" is not supported by corral's local driver"
        );
        assert_eq!(
            err(&[("type", "tmpfs"), ("device", "")]),
            "create v: missing device in volume options"
        );
        let e = parse_options("v", &opts(&[("x", "1")])).unwrap_err();
        assert_eq!(
            corral_core::error::Classify::kind(&e),
            corral_core::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn parses_sizes_like_ram_in_bytes() {
        for (s, n) in [
            ("0", 0),
            ("100", 100),
            ("1k", 1024),
            ("100m", 100 << 20),
            ("1.5g", 3 << 29),
            ("2GiB", 2 << 30),
            ("10 MB", 10 << 20),
            ("1t", 1 << 40),
        ] {
            assert_eq!(parse_ram_size(s), Some(n), "{s}");
        }
        for bad in ["", "abc", "-1", "1x", "m", ".5m", "1.", "1..2"] {
            assert!(parse_ram_size(bad).is_none(), "{bad}");
        }
    }
}
