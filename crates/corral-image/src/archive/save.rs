//! Writing a tarball of stored images (see the module docs for the layout).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufReader, Read, Write};

use corral_core::LayerRecord;
use corral_oci::media_type::{self, layer_compression};
use corral_oci::{Digest, Reference};
use serde_json::{json, Value};
use sha2::Digest as _;

use super::{blob_path, ArchiveImage};
use crate::error::{Error, Result};
use crate::layer::decompressor;
use crate::store::ImageStore;

/// A layer to write: where its blob is and how long its uncompressed tar is.
struct LayerSource {
    diff_id: Digest,
    blob: Digest,
    media_type: String,
    size: u64,
}

/// Writes `images` as one tarball to `out`, streaming each layer from its stored blob.
/// Blocking. Returns `out` once the tarball is complete.
///
/// # Errors
/// [`Error::BlobNotFound`] when a config or layer blob is missing (checked before
/// anything is written); [`Error::DigestMismatch`] when a stored blob no longer
/// decompresses to its diff_id (the tarball is then incomplete); [`Error::Io`] when
/// writing fails.
pub fn write_archive<W: Write>(store: &ImageStore, images: &[ArchiveImage], out: W) -> Result<W> {
    let mut configs = Vec::with_capacity(images.len());
    let mut layers: BTreeMap<String, LayerSource> = BTreeMap::new();
    let mut order = Vec::new();
    for img in images {
        configs.push(store.content().read(&img.config_digest)?);
        for l in &img.layers {
            if layers.contains_key(&l.diff_id) {
                continue;
            }
            let src = layer_source(store, l)?;
            order.push(l.diff_id.clone());
            layers.insert(l.diff_id.clone(), src);
        }
    }
    let mut tar = tar::Builder::new(out);
    let io_err = |path: &str| Error::io("write image archive entry", path.to_owned());
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(0);
        tar.append_data(&mut h, dir, io::empty())
            .map_err(io_err(dir))?;
    }
    append_bytes(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    for diff_id in &order {
        if let Some(src) = layers.get(diff_id) {
            append_layer(&mut tar, store, src)?;
        }
    }
    let mut manifest_json = Vec::new();
    let mut index = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (img, config) in images.iter().zip(&configs) {
        append_bytes(&mut tar, &blob_path(&img.config_digest), config)?;
        let manifest = oci_manifest(img, config.len() as u64, &layers)?;
        let manifest_digest = Digest::sha256_of(&manifest);
        append_bytes(&mut tar, &blob_path(&manifest_digest), &manifest)?;
        let desc = |annotations: Option<Value>| {
            let mut d = json!({
                "mediaType": media_type::OCI_MANIFEST,
                "digest": manifest_digest.as_str(),
                "size": manifest.len(),
            });
            if let Some(a) = annotations {
                d["annotations"] = a;
            }
            d
        };
        if img.repo_tags.is_empty() {
            index.push(desc(None));
        }
        for t in &img.repo_tags {
            let r = Reference::parse(t)?;
            let tag = r.tag().unwrap_or(corral_oci::reference::DEFAULT_TAG);
            index.push(desc(Some(json!({
                "io.containerd.image.name": format!("{}:{tag}", r.name()),
                "org.opencontainers.image.ref.name": tag,
            }))));
            if let Some(top) = img.layers.last() {
                let hex = top.diff_id.trim_start_matches("sha256:").to_owned();
                repositories
                    .entry(r.familiar_name())
                    .or_default()
                    .insert(tag.to_owned(), hex);
            }
        }
        manifest_json.push(json!({
            "Config": blob_path(&img.config_digest),
            "RepoTags": if img.repo_tags.is_empty() { Value::Null } else { json!(img.repo_tags) },
            "Layers": img.layers.iter().map(|l| {
                Digest::parse(&l.diff_id).map(|d| blob_path(&d))
            }).collect::<std::result::Result<Vec<_>, _>>()?,
        }));
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": media_type::OCI_INDEX,
        "manifests": index,
    });
    append_bytes(&mut tar, "index.json", &to_json(&index))?;
    append_bytes(
        &mut tar,
        "manifest.json",
        &to_json(&Value::Array(manifest_json)),
    )?;
    if !repositories.is_empty() {
        append_bytes(&mut tar, "repositories", &to_json(&json!(repositories)))?;
    }
    tar.into_inner().map_err(io_err("end of archive"))
}

fn to_json(v: &Value) -> Vec<u8> {
    // Serialising a `Value` cannot fail: its keys are strings.
    serde_json::to_vec(v).unwrap_or_default()
}

/// Finds a layer's blob and the length of its uncompressed tar.
fn layer_source(store: &ImageStore, l: &LayerRecord) -> Result<LayerSource> {
    let diff_id = Digest::parse(&l.diff_id)?;
    let blob = Digest::parse(&l.digest)?;
    if !store.content().contains(&blob) {
        return Err(Error::BlobNotFound(blob.to_string()));
    }
    // The tar header needs the length up front, and nothing records it (layer sizes
    // count file content): decompress once to count, then again while writing.
    let mut r = open_uncompressed(store, &blob, &l.media_type)?;
    let size = io::copy(&mut r, &mut io::sink())
        .map_err(Error::io("read layer blob", store.content().path(&blob)))?;
    Ok(LayerSource {
        diff_id,
        blob,
        media_type: l.media_type.clone(),
        size,
    })
}

fn open_uncompressed(store: &ImageStore, blob: &Digest, mt: &str) -> Result<Box<dyn Read>> {
    let path = store.content().path(blob);
    let compression =
        layer_compression(mt).ok_or_else(|| Error::UnsupportedMediaType(mt.to_owned()))?;
    let file = fs::File::open(&path).map_err(Error::io("open layer blob", &path))?;
    decompressor(compression, BufReader::new(file))
        .map_err(Error::io("decompress layer blob", &path))
}

fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, path: &str, data: &[u8]) -> Result<()> {
    let mut h = file_header(data.len() as u64);
    tar.append_data(&mut h, path, data)
        .map_err(Error::io("write image archive entry", path.to_owned()))
}

fn file_header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn append_layer<W: Write>(
    tar: &mut tar::Builder<W>,
    store: &ImageStore,
    src: &LayerSource,
) -> Result<()> {
    let path = blob_path(&src.diff_id);
    let mut h = file_header(src.size);
    let reader = VerifyingReader {
        inner: open_uncompressed(store, &src.blob, &src.media_type)?,
        hasher: sha2::Sha256::new(),
        count: 0,
        size: src.size,
        diff_id: src.diff_id.clone(),
    };
    tar.append_data(&mut h, &path, reader).map_err(|e| {
        match e
            .get_ref()
            .and_then(|i| i.downcast_ref::<Mismatch>())
            .cloned()
        {
            Some(Mismatch { expected, actual }) => Error::DigestMismatch {
                what: "layer",
                expected,
                actual,
            },
            None => Error::Io {
                op: "write image archive entry",
                path: path.clone().into(),
                source: e,
            },
        }
    })
}

/// A stored layer that does not decompress to its diff_id (or length).
#[derive(Debug, Clone, thiserror::Error)]
#[error("layer content {actual} does not match {expected}")]
struct Mismatch {
    expected: String,
    actual: String,
}

/// Yields exactly `size` bytes hashing to `diff_id`, or fails: the tar header already
/// promised that many bytes, so a short or long layer must not pass silently.
struct VerifyingReader<R> {
    inner: R,
    hasher: sha2::Sha256,
    count: u64,
    size: u64,
    diff_id: Digest,
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        if self.count > self.size {
            return Err(io::Error::other(Mismatch {
                expected: format!("{} ({} bytes)", self.diff_id, self.size),
                actual: format!("more than {} bytes", self.size),
            }));
        }
        self.hasher.update(&buf[..n]);
        if n == 0 {
            let actual = Digest::from_sha256_bytes(&self.hasher.clone().finalize());
            if self.count != self.size || actual != self.diff_id {
                return Err(io::Error::other(Mismatch {
                    expected: self.diff_id.to_string(),
                    actual: actual.to_string(),
                }));
            }
        }
        Ok(n)
    }
}

/// The OCI manifest of one saved image: uncompressed layers named by diff_id.
fn oci_manifest(
    img: &ArchiveImage,
    config_size: u64,
    layers: &BTreeMap<String, LayerSource>,
) -> Result<Vec<u8>> {
    let mut descs = Vec::with_capacity(img.layers.len());
    for l in &img.layers {
        let src = layers
            .get(&l.diff_id)
            .ok_or_else(|| Error::LayerNotFound(l.diff_id.clone()))?;
        descs.push(json!({
            "mediaType": media_type::OCI_LAYER_TAR,
            "digest": src.diff_id.as_str(),
            "size": src.size,
        }));
    }
    Ok(to_json(&json!({
        "schemaVersion": 2,
        "mediaType": media_type::OCI_MANIFEST,
        "config": {
            "mediaType": media_type::OCI_CONFIG,
            "digest": img.config_digest.as_str(),
            "size": config_size,
        },
        "layers": descs,
    })))
}
