//! Volumes: named storage that outlives containers ([`VolumeRecord`]) and where a container
//! mounts one ([`VolumeMount`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The label dockerd (23+) puts on volumes it creates for a container without a name.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// A volume as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRecord {
    /// Unique name (64 hex digits for anonymous volumes).
    pub name: String,
    /// Driver name (`local`).
    pub driver: String,
    /// Creation time.
    pub created: DateTime<Utc>,
    /// User labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Driver options (`--opt`).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

impl VolumeRecord {
    /// Whether the volume was created for a container without a name.
    pub fn is_anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }
}

/// A volume mounted into a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeMount {
    /// The volume's name.
    pub name: String,
    /// Path inside the container.
    pub destination: String,
    /// Mounted read-only.
    pub read_only: bool,
    /// Created for this container without a name (removed by `rm -v`).
    pub anonymous: bool,
    /// Do not copy the image's content at `destination` into an empty volume.
    #[serde(default)]
    pub no_copy: bool,
    /// The mode string as the user gave it in `-v` (`ro`, `rw,z`, …); empty for `--mount`.
    #[serde(default)]
    pub mode: String,
}
