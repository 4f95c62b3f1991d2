//! Platforms (`linux/amd64`, `linux/arm64/v8`) and picking a manifest out of an index.

use std::fmt;

use oci_spec::image::{Descriptor, ImageIndex};

/// An OS/architecture/variant triple with Go's names, as in OCI image index entries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    /// `GOOS` name, e.g. `linux`.
    pub os: String,
    /// `GOARCH` name, e.g. `amd64`.
    pub architecture: String,
    /// CPU variant, e.g. `v8` for arm64, `v7` for arm.
    pub variant: Option<String>,
}

// === impl Platform ===

impl Platform {
    /// A platform from its parts.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Platform {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.map(str::to_owned),
        }
    }

    /// The variant with arm64's implicit `v8` filled in (containerd's normalisation).
    fn normalized_variant(&self) -> Option<&str> {
        match (self.architecture.as_str(), self.variant.as_deref()) {
            ("arm64", None) => Some("v8"),
            (_, v) => v,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// The platform this binary runs on, in Go's naming (`x86_64` → `amd64`, `aarch64` →
/// `arm64`).
pub fn host_platform() -> Platform {
    platform_for(std::env::consts::OS, std::env::consts::ARCH)
}

fn platform_for(os: &str, arch: &str) -> Platform {
    let (architecture, variant) = match arch {
        "x86_64" => ("amd64", None),
        "x86" => ("386", None),
        "aarch64" => ("arm64", Some("v8")),
        "arm" => ("arm", Some("v7")),
        "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
        "powerpc64" => ("ppc64", None),
        "riscv64" => ("riscv64", None),
        "s390x" => ("s390x", None),
        "loongarch64" => ("loong64", None),
        "mips64" if cfg!(target_endian = "little") => ("mips64le", None),
        other => (other, None),
    };
    Platform::new(os, architecture, variant)
}

/// Picks the manifest of `index` for `want`.
///
/// OS and architecture must match. Among those, an exact variant match wins; then an entry
/// without variant; then, for 32-bit arm, the highest older variant (v7 runs v6 and v5).
/// Entries without a platform (attestations, artifacts) are never picked.
pub fn select_manifest<'a>(index: &'a ImageIndex, want: &Platform) -> Option<&'a Descriptor> {
    let candidates: Vec<(&Descriptor, Platform)> = index
        .manifests()
        .iter()
        .filter_map(|d| {
            let p = d.platform().as_ref()?;
            let p = Platform {
                os: p.os().to_string(),
                architecture: p.architecture().to_string(),
                variant: p.variant().clone().filter(|v| !v.is_empty()),
            };
            (p.os == want.os && p.architecture == want.architecture).then_some((d, p))
        })
        .collect();
    let want_variant = want.normalized_variant();
    if let Some((d, _)) = candidates
        .iter()
        .find(|(_, p)| p.normalized_variant() == want_variant)
    {
        return Some(d);
    }
    if let Some((d, _)) = candidates.iter().find(|(_, p)| p.variant.is_none()) {
        return Some(d);
    }
    if want.architecture == "arm" {
        let want_n = arm_variant_number(want_variant)?;
        return candidates
            .iter()
            .filter_map(|(d, p)| Some((*d, arm_variant_number(p.variant.as_deref())?)))
            .filter(|(_, n)| *n <= want_n)
            .max_by_key(|(_, n)| *n)
            .map(|(d, _)| d);
    }
    None
}

fn arm_variant_number(v: Option<&str>) -> Option<u32> {
    v?.strip_prefix('v')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(entries: &[(&str, &str, Option<&str>, char)]) -> ImageIndex {
        let manifests: Vec<serde_json::Value> = entries
            .iter()
            .map(|(os, arch, variant, fill)| {
                let mut platform = serde_json::json!({"os": os, "architecture": arch});
                if let Some(v) = variant {
                    platform["variant"] = serde_json::json!(v);
                }
                serde_json::json!({
                    "mediaType": crate::media_type::OCI_MANIFEST,
                    "digest": format!("sha256:{}", fill.to_string().repeat(64)),
                    "size": 100,
                    "platform": platform,
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "schemaVersion": 2,
            "mediaType": crate::media_type::OCI_INDEX,
            "manifests": manifests,
        }))
        .unwrap()
    }

    fn picked(idx: &ImageIndex, want: &Platform) -> Option<char> {
        select_manifest(idx, want).map(|d| d.digest().to_string().chars().last().unwrap())
    }

    #[test]
    fn host_platform_uses_go_names() {
        assert_eq!(
            platform_for("linux", "x86_64"),
            Platform::new("linux", "amd64", None)
        );
        assert_eq!(
            platform_for("linux", "aarch64"),
            Platform::new("linux", "arm64", Some("v8"))
        );
        assert_eq!(platform_for("linux", "x86").architecture, "386");
        let host = host_platform();
        assert_eq!(host.os, "linux");
        assert!(!host.architecture.is_empty());
        assert_eq!(
            Platform::new("linux", "arm", Some("v7")).to_string(),
            "linux/arm/v7"
        );
    }

    #[test]
    fn selects_matching_os_and_architecture() {
        let idx = index(&[
            ("linux", "arm64", Some("v8"), 'a'),
            ("linux", "amd64", None, 'b'),
            ("windows", "amd64", None, 'c'),
        ]);
        assert_eq!(
            picked(&idx, &Platform::new("linux", "amd64", None)),
            Some('b')
        );
        assert_eq!(
            picked(&idx, &Platform::new("windows", "amd64", None)),
            Some('c')
        );
        assert_eq!(picked(&idx, &Platform::new("linux", "s390x", None)), None);
    }

    #[test]
    fn prefers_exact_variant_and_normalises_arm64() {
        let idx = index(&[
            ("linux", "arm", Some("v6"), 'a'),
            ("linux", "arm", Some("v7"), 'b'),
            ("linux", "arm64", None, 'c'),
        ]);
        assert_eq!(
            picked(&idx, &Platform::new("linux", "arm", Some("v7"))),
            Some('b')
        );
        assert_eq!(
            picked(&idx, &Platform::new("linux", "arm", Some("v6"))),
            Some('a')
        );
        // arm64 without variant is arm64/v8.
        assert_eq!(
            picked(&idx, &Platform::new("linux", "arm64", Some("v8"))),
            Some('c')
        );
        // v5 cannot run v6 or v7 binaries.
        assert_eq!(
            picked(&idx, &Platform::new("linux", "arm", Some("v5"))),
            None
        );
        // v8 (32-bit) falls back to the highest older variant.
        assert_eq!(
            picked(&idx, &Platform::new("linux", "arm", Some("v8"))),
            Some('b')
        );
    }

    #[test]
    fn skips_entries_without_platform() {
        let mut idx = index(&[("linux", "amd64", None, 'b')]);
        let mut m = idx.manifests().clone();
        let mut attestation = m[0].clone();
        attestation.set_platform(None);
        m.insert(0, attestation);
        idx.set_manifests(m);
        assert_eq!(idx.manifests().len(), 2);
        assert_eq!(
            picked(&idx, &Platform::new("linux", "amd64", None)),
            Some('b')
        );
    }
}
