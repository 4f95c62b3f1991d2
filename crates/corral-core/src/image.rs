//! Image records as the engine stores them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// An image id: `sha256:` + the hex digest of its config blob.
pub type ImageId = String;

/// One layer of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// Digest of the compressed blob as the registry serves it.
    pub digest: String,
    /// Digest of the uncompressed tar (the config's `rootfs.diff_ids` entry).
    pub diff_id: String,
    /// Compressed size in bytes.
    pub size: u64,
    /// Media type of the blob.
    pub media_type: String,
}

/// An image in the local store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// `sha256:…` of the config blob.
    pub id: ImageId,
    /// `name:tag` references pointing at this image.
    pub repo_tags: Vec<String>,
    /// `name@sha256:…` manifest digests this image was pulled by.
    pub repo_digests: Vec<String>,
    /// Creation time from the image config, or import time.
    pub created: DateTime<Utc>,
    /// Sum of uncompressed layer sizes in bytes.
    pub size: u64,
    /// The raw OCI/Docker image config JSON (kept verbatim so inspect and save round-trip).
    pub config: serde_json::Value,
    /// Layers, lowest first.
    pub layers: Vec<LayerRecord>,
}
