//! Image tarballs for `docker save` and `docker load`.
//!
//! **Writing** produces the layout of dockerd 25 and later, which older dockerd loads too:
//! `manifest.json` (`[{Config, RepoTags, Layers}]`) names files under `blobs/sha256/`,
//! beside an OCI image layout (`oci-layout`, `index.json`, one OCI manifest per image) and
//! the legacy `repositories` map. Layers are written uncompressed, so each layer file's
//! digest is its diff_id; they are decompressed from the stored blobs on the fly and
//! verified against their diff_ids as they are written.
//!
//! **Reading** accepts a docker-archive (`manifest.json`, from any dockerd) or an OCI image
//! layout (`index.json`), with plain, gzip or zstd layers. The tarball is unpacked into a
//! private directory under `blobs/tmp`, then every config, manifest and layer digest is
//! checked before anything enters the store: a bad tarball leaves nothing behind.
//! Uncompressed layers are stored gzip-compressed, so every stored image has compressed
//! blobs to push, as a pulled one does.

use chrono::{DateTime, Utc};
use corral_core::LayerRecord;
use corral_oci::Digest;

mod load;
mod save;

pub use load::load_archive;
pub use save::write_archive;

/// One image to write into a tarball.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveImage {
    /// Digest of the stored config blob (the image id).
    pub config_digest: Digest,
    /// Layers, lowest first, with their stored blobs.
    pub layers: Vec<LayerRecord>,
    /// References to record, in familiar form (`busybox:latest`); empty for an id.
    pub repo_tags: Vec<String>,
}

/// One image read from a tarball and now in the store.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedImage {
    /// Digest of the config blob: the image id.
    pub config_digest: Digest,
    /// The config JSON.
    pub config: serde_json::Value,
    /// Layers, lowest first, each with a stored blob.
    pub layers: Vec<LayerRecord>,
    /// Sum of uncompressed layer sizes.
    pub size: u64,
    /// `created` from the config (the Unix epoch when absent).
    pub created: DateTime<Utc>,
    /// The references the tarball names for it, normalised to familiar form.
    pub repo_tags: Vec<String>,
}

/// `blobs/<algorithm>/<hex>`: where a blob lives in an OCI layout.
fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm().as_str(), d.hex())
}

#[cfg(test)]
mod tests;
