//! Service `volumes`: the short syntax `[SOURCE:]TARGET[:MODE]` and the long syntax,
//! read into [`ServiceVolume`]s.

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

/// One mount of a service (the spec's long syntax).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceVolume {
    /// `volume`, `bind` or `tmpfs`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Volume name or host path; absent for an anonymous volume or tmpfs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Absolute path in the container.
    pub target: String,
    /// Mount read-only.
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
    /// Bind options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<BindOptions>,
    /// Volume options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeOptions>,
    /// Tmpfs options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<TmpfsOptions>,
    /// macOS consistency hint (accepted, ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `bind:` options of a mount.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindOptions {
    /// Mount propagation (`rprivate`, `shared`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation: Option<String>,
    /// Create the host path when missing (the short syntax always does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_host_path: Option<bool>,
    /// SELinux relabel `z` or `Z`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selinux: Option<String>,
}

/// `volume:` options of a mount.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeOptions {
    /// Do not copy image content into a new volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nocopy: Option<bool>,
    /// Mount a sub-path of the volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subpath: Option<String>,
}

/// `tmpfs:` options of a mount.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TmpfsOptions {
    /// Size in bytes or with a unit (`64m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// File mode of the tmpfs root.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::shape::file_mode"
    )]
    pub mode: Option<u32>,
}

/// True when a short-syntax source names a host path rather than a volume.
pub(crate) fn is_path(source: &str) -> bool {
    source.starts_with('/') || source.starts_with('.') || source.starts_with('~')
}

/// Parses one short-syntax entry.
pub(crate) fn parse_short(spec: &str) -> Result<ServiceVolume, String> {
    let bad = |why: &str| format!("invalid volume {spec:?}: {why}");
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [t] => (None, *t, None),
        [s, t] if t.starts_with('/') => (Some(*s), *t, None),
        [t, m] => (None, *t, Some(*m)),
        [s, t, m] => (Some(*s), *t, Some(*m)),
        _ => return Err(bad("expected [SOURCE:]TARGET[:MODE]")),
    };
    if target.is_empty() || !target.starts_with('/') {
        return Err(bad(&format!("target {target:?} is not an absolute path")));
    }
    let source = source.filter(|s| !s.is_empty());
    let kind = match source {
        Some(s) if is_path(s) => "bind",
        _ => "volume",
    };
    let mut v = ServiceVolume {
        kind: kind.to_string(),
        source: source.map(str::to_string),
        target: target.to_string(),
        read_only: false,
        bind: None,
        volume: None,
        tmpfs: None,
        consistency: None,
    };
    if kind == "bind" {
        v.bind = Some(BindOptions {
            create_host_path: Some(true),
            ..BindOptions::default()
        });
    }
    for opt in mode.unwrap_or("").split(',').filter(|o| !o.is_empty()) {
        match opt {
            "ro" => v.read_only = true,
            "rw" => v.read_only = false,
            "z" | "Z" if kind == "bind" => {
                if let Some(b) = v.bind.as_mut() {
                    b.selinux = Some(opt.to_string());
                }
            }
            "nocopy" if kind == "volume" => {
                v.volume = Some(VolumeOptions {
                    nocopy: Some(true),
                    subpath: None,
                })
            }
            "consistent" | "cached" | "delegated" => v.consistency = Some(opt.to_string()),
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate"
                if kind == "bind" =>
            {
                if let Some(b) = v.bind.as_mut() {
                    b.propagation = Some(opt.to_string());
                }
            }
            other => return Err(bad(&format!("unknown mode {other:?}"))),
        }
    }
    Ok(v)
}

/// Deserializes a `volumes` sequence of short and long entries.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ServiceVolume>, D::Error> {
    let v: Vec<Entry> = Vec::deserialize(d)?;
    Ok(v.into_iter().map(|e| e.0).collect())
}

struct Entry(ServiceVolume);

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(EntryVisitor)
    }
}

struct EntryVisitor;

impl<'de> Visitor<'de> for EntryVisitor {
    type Value = Entry;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a volume (\"data:/data\") or a mapping with type and target")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Entry, E> {
        parse_short(v).map(Entry).map_err(E::custom)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Entry, A::Error> {
        let v = ServiceVolume::deserialize(de::value::MapAccessDeserializer::new(map))?;
        if !matches!(v.kind.as_str(), "volume" | "bind" | "tmpfs") {
            return Err(de::Error::custom(format_args!(
                "unsupported mount type {:?} (expected volume, bind or tmpfs)",
                v.kind
            )));
        }
        if !v.target.starts_with('/') {
            return Err(de::Error::custom(format_args!(
                "target {:?} is not an absolute path",
                v.target
            )));
        }
        if v.kind == "bind" && v.source.as_deref().is_none_or(str::is_empty) {
            return Err(de::Error::custom("a bind mount needs a source"));
        }
        Ok(Entry(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_forms() {
        let v = parse_short("/data").unwrap();
        assert_eq!((v.kind.as_str(), v.source.as_deref()), ("volume", None));
        let v = parse_short("db:/var/lib/db:ro").unwrap();
        assert_eq!(
            (v.kind.as_str(), v.source.as_deref()),
            ("volume", Some("db"))
        );
        assert!(v.read_only);
        let v = parse_short("./conf:/etc/conf").unwrap();
        assert_eq!(v.kind, "bind");
        let v = parse_short("/tmp:/tmp:rw,z").unwrap();
        assert_eq!(v.bind.unwrap().selinux.as_deref(), Some("z"));
        let v = parse_short("/cache:ro").unwrap();
        assert!(v.read_only && v.source.is_none());
    }

    #[test]
    fn rejects_bad_specs() {
        for s in ["relative", "a:b", "a:/b:bogus", "a:/b:c:d", ""] {
            assert!(parse_short(s).is_err(), "{s}");
        }
    }
}
