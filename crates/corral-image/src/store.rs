//! [`ImageStore`]: the content store and layer store of one data root, together.

use std::io::Read;
use std::path::{Path, PathBuf};

use corral_oci::Digest;

use crate::content::ContentStore;
use crate::error::Result;
use crate::layer::LayerStore;

/// Blobs (`<root>/blobs`) and unpacked layers (`<root>/layers`) under one root.
#[derive(Debug)]
pub struct ImageStore {
    root: PathBuf,
    content: ContentStore,
    layers: LayerStore,
}

// === impl ImageStore ===

impl ImageStore {
    /// Opens both stores under `root`, creating directories and clearing crash leftovers.
    ///
    /// # Errors
    /// [`crate::Error::Io`].
    pub fn open(root: &Path) -> Result<Self> {
        Ok(ImageStore {
            root: root.to_path_buf(),
            content: ContentStore::open(root)?,
            layers: LayerStore::open(root)?,
        })
    }

    /// The data root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The blob store.
    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    /// The layer store.
    pub fn layers(&self) -> &LayerStore {
        &self.layers
    }

    /// Unpacks a layer tar (plain/gzip/zstd) for `docker load`/`import`, returning its
    /// diff_id and uncompressed size. Blocking.
    ///
    /// # Errors
    /// As [`LayerStore::import`].
    pub fn import_layer<R: Read>(&self, reader: R) -> Result<(Digest, u64)> {
        let l = self.layers.import(reader)?;
        Ok((l.diff_id, l.size))
    }

    /// Deletes an unpacked layer (no error when absent). Blocking.
    ///
    /// # Errors
    /// As [`LayerStore::remove`].
    pub fn remove_layer(&self, diff_id: &Digest) -> Result<()> {
        self.layers.remove(diff_id)
    }

    /// Deletes a blob (no error when absent).
    ///
    /// # Errors
    /// As [`ContentStore::remove`].
    pub fn remove_blob(&self, digest: &Digest) -> Result<()> {
        self.content.remove(digest)
    }
}
