//! Unpacked layers: `<root>/layers/sha256/<diff_id hex>/`, ready to be overlay lower dirs.
//!
//! A layer is extracted into a temp dir under `<root>/layers/tmp` and renamed into place
//! only after its diff_id verified, so a crash never leaves a half layer visible. Its
//! uncompressed size is kept in `<root>/layers/meta/<hex>.size`, written before the rename.

use std::fs;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use corral_oci::media_type::{layer_compression, Compression};
use corral_oci::Digest;

use crate::error::{Error, Result};
use crate::lock::KeyedLocks;
use crate::unpack;

/// The store of unpacked layers.
#[derive(Debug)]
pub struct LayerStore {
    layers: PathBuf,
    meta: PathBuf,
    tmp: PathBuf,
    locks: KeyedLocks,
}

/// What [`LayerStore::unpack`] or [`LayerStore::import`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackedLayer {
    /// The layer's diff_id.
    pub diff_id: Digest,
    /// Uncompressed size in bytes.
    pub size: u64,
    /// Whether this call extracted it (`false`: it was already present).
    pub extracted: bool,
}

// === impl LayerStore ===

impl LayerStore {
    /// Opens the store under `root` (creating directories) and removes temp dirs a crash
    /// left behind. Open one store per root per process.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn open(root: &Path) -> Result<Self> {
        let base = root.join("layers");
        let store = LayerStore {
            layers: base.join("sha256"),
            meta: base.join("meta"),
            tmp: base.join("tmp"),
            locks: KeyedLocks::default(),
        };
        if store.tmp.exists() {
            fs::remove_dir_all(&store.tmp).map_err(Error::io("clean temp dir", &store.tmp))?;
        }
        for dir in [&store.layers, &store.meta, &store.tmp] {
            fs::create_dir_all(dir).map_err(Error::io("create dir", dir))?;
        }
        Ok(store)
    }

    /// The directory of layer `diff_id` (whether or not it exists).
    pub fn path(&self, diff_id: &Digest) -> PathBuf {
        self.layers.join(diff_id.hex())
    }

    /// Whether the layer is unpacked.
    pub fn contains(&self, diff_id: &Digest) -> bool {
        self.path(diff_id).is_dir()
    }

    /// Uncompressed size of an unpacked layer.
    ///
    /// # Errors
    /// [`Error::LayerNotFound`] when the layer or its size record is missing.
    pub fn size(&self, diff_id: &Digest) -> Result<u64> {
        if !self.contains(diff_id) {
            return Err(Error::LayerNotFound(diff_id.to_string()));
        }
        fs::read_to_string(self.size_path(diff_id))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| Error::LayerNotFound(diff_id.to_string()))
    }

    /// Decompresses the blob at `blob` (per `media_type`), verifies the uncompressed stream
    /// hashes to `diff_id` and makes it the layer `diff_id`. Concurrent calls for the same
    /// diff_id extract once. Blocking: call from `spawn_blocking`.
    ///
    /// # Errors
    /// [`Error::UnsupportedMediaType`], [`Error::DigestMismatch`] (nothing is left
    /// behind), [`Error::Io`].
    pub fn unpack(&self, blob: &Path, media_type: &str, diff_id: &Digest) -> Result<UnpackedLayer> {
        let compression = layer_compression(media_type)
            .ok_or_else(|| Error::UnsupportedMediaType(media_type.to_owned()))?;
        let _guard = self.locks.lock(diff_id.as_str());
        if self.contains(diff_id) {
            return Ok(UnpackedLayer {
                diff_id: diff_id.clone(),
                size: self.size(diff_id).unwrap_or(0),
                extracted: false,
            });
        }
        let file = fs::File::open(blob).map_err(Error::io("open layer blob", blob))?;
        let reader = decompressor(compression, BufReader::new(file))
            .map_err(Error::io("decompress layer blob", blob))?;
        let tmp = self.temp_dir()?;
        let got = unpack::extract(reader, tmp.path())?;
        if got.diff_id != *diff_id {
            return Err(Error::DigestMismatch {
                what: "layer",
                expected: diff_id.to_string(),
                actual: got.diff_id.to_string(),
            });
        }
        self.commit(tmp, &got)?;
        tracing::info!(diff_id = %diff_id, size = got.size, skipped = got.skipped, "layer unpacked");
        Ok(UnpackedLayer {
            diff_id: got.diff_id,
            size: got.size,
            extracted: true,
        })
    }

    /// Unpacks a layer tar (plain, gzip or zstd: detected from magic bytes) whose digest
    /// is not known in advance, as for `docker load` and `docker import`; the diff_id is
    /// computed while extracting. Blocking.
    ///
    /// # Errors
    /// [`Error::Io`] when the stream or file system fails.
    pub fn import<R: Read>(&self, reader: R) -> Result<UnpackedLayer> {
        let mut reader = BufReader::new(reader);
        let compression = sniff(&mut reader).map_err(Error::io("read layer from", &self.tmp))?;
        let reader =
            decompressor(compression, reader).map_err(Error::io("decompress layer", &self.tmp))?;
        let tmp = self.temp_dir()?;
        let got = unpack::extract(reader, tmp.path())?;
        let _guard = self.locks.lock(got.diff_id.as_str());
        let extracted = !self.contains(&got.diff_id);
        if extracted {
            self.commit(tmp, &got)?;
        }
        Ok(UnpackedLayer {
            diff_id: got.diff_id,
            size: got.size,
            extracted,
        })
    }

    /// Deletes an unpacked layer; a missing layer is not an error. The caller makes sure
    /// no image or container still uses it.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn remove(&self, diff_id: &Digest) -> Result<()> {
        let _guard = self.locks.lock(diff_id.as_str());
        let path = self.path(diff_id);
        if path.exists() {
            // Rename away first so a half-deleted layer is never visible under its name.
            let doomed = self.temp_dir()?.keep();
            let target = doomed.join("layer");
            fs::rename(&path, &target).map_err(Error::io("remove layer", &path))?;
            fs::remove_dir_all(&doomed).map_err(Error::io("remove layer", &doomed))?;
        }
        match fs::remove_file(self.size_path(diff_id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Io {
                op: "remove layer size record",
                path: self.size_path(diff_id),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    fn size_path(&self, diff_id: &Digest) -> PathBuf {
        self.meta.join(format!("{}.size", diff_id.hex()))
    }

    fn temp_dir(&self) -> Result<tempfile::TempDir> {
        tempfile::Builder::new()
            .prefix("layer-")
            .tempdir_in(&self.tmp)
            .map_err(Error::io("create temp dir in", &self.tmp))
    }

    /// Records the size, then renames the extracted tree into place.
    fn commit(&self, tmp: tempfile::TempDir, got: &unpack::Extracted) -> Result<()> {
        let size_path = self.size_path(&got.diff_id);
        let size_tmp = tmp.path().with_extension("size");
        fs::write(&size_tmp, got.size.to_string())
            .and_then(|()| fs::rename(&size_tmp, &size_path))
            .map_err(Error::io("write layer size", &size_path))?;
        let dst = self.path(&got.diff_id);
        let src = tmp.keep();
        if let Err(e) = fs::rename(&src, &dst) {
            let _ = fs::remove_dir_all(&src);
            return Err(Error::Io {
                op: "rename layer into",
                path: dst,
                source: e,
            });
        }
        Ok(())
    }
}

/// Detects gzip and zstd by their magic numbers (RFC 1952, RFC 8878).
pub(crate) fn sniff<R: Read>(reader: &mut BufReader<R>) -> std::io::Result<Compression> {
    use std::io::BufRead;
    let head = reader.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    })
}

pub(crate) fn decompressor<'a, R: std::io::BufRead + 'a>(
    compression: Compression,
    reader: R,
) -> std::io::Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(reader)?),
        _ => Box::new(reader),
    })
}
