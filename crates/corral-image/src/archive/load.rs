//! Reading a tarball of images into the store: unpack privately, plan and verify
//! everything, then store (see the module docs).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};

use chrono::{DateTime, Utc};
use corral_core::LayerRecord;
use corral_oci::media_type::{self, layer_compression, Compression};
use corral_oci::{host_platform, select_manifest, Digest, Reference};
use serde::Deserialize;
use serde_json::Value;
use sha2::Digest as _;

use super::LoadedImage;
use crate::error::{Error, Result};
use crate::layer::{decompressor, sniff};
use crate::store::ImageStore;

/// How many symlinks a path in the tarball may go through.
const MAX_LINKS: usize = 16;

/// One entry of a docker-archive `manifest.json`.
#[derive(Debug, Deserialize)]
struct DockerEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

/// A verified layer file, ready to be stored.
#[derive(Debug, Clone)]
struct PlannedLayer {
    file: PathBuf,
    diff_id: Digest,
    compression: Compression,
    /// Digest and length of the file as it is.
    raw: (Digest, u64),
    /// The media type to record when the file is stored as is (compressed files).
    media_type: String,
}

/// A verified image, ready to be stored.
#[derive(Debug)]
struct PlannedImage {
    config_bytes: Vec<u8>,
    config_digest: Digest,
    config: Value,
    layers: Vec<PlannedLayer>,
    repo_tags: Vec<String>,
}

/// The unpacked tarball: a private directory plus the links found in it.
struct Unpacked {
    dir: tempfile::TempDir,
    links: BTreeMap<PathBuf, PathBuf>,
}

/// Loads every image in the tarball `reader` into `store`. Blocking.
///
/// `known` maps diff_ids to layer records of images already stored whose blobs exist:
/// such layers keep their blob instead of getting a new one.
///
/// # Errors
/// [`Error::InvalidArchive`] when the tarball is malformed, names missing files, or a
/// digest does not match (nothing is stored then); [`Error::Io`] when storing fails.
pub fn load_archive<R: Read>(
    store: &ImageStore,
    reader: R,
    known: &BTreeMap<String, LayerRecord>,
) -> Result<Vec<LoadedImage>> {
    let tmp_root = store.root().join("blobs").join("tmp");
    let unpacked = unpack(reader, &tmp_root)?;
    let plan = if unpacked.dir.path().join("manifest.json").is_file() {
        plan_docker(&unpacked)?
    } else if unpacked.dir.path().join("index.json").is_file() {
        plan_oci(&unpacked)?
    } else {
        return Err(invalid(
            "no manifest.json or index.json: not a docker-archive or OCI layout tarball",
        ));
    };
    if plan.is_empty() {
        return Err(invalid("the tarball contains no images"));
    }
    let mut stored: BTreeMap<String, LayerRecord> = known.clone();
    let mut out = Vec::with_capacity(plan.len());
    for img in plan {
        out.push(apply(store, unpacked.dir.path(), img, &mut stored)?);
    }
    Ok(out)
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidArchive(msg.into())
}

// === unpacking ===

fn unpack<R: Read>(reader: R, tmp_root: &Path) -> Result<Unpacked> {
    fs::create_dir_all(tmp_root).map_err(Error::io("create dir", tmp_root))?;
    let dir = tempfile::Builder::new()
        .prefix("load-")
        .tempdir_in(tmp_root)
        .map_err(Error::io("create temp dir in", tmp_root))?;
    let mut links = BTreeMap::new();
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|e| invalid(format!("reading tarball: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| invalid(format!("reading tarball: {e}")))?;
        let raw = entry
            .path()
            .map_err(|e| invalid(format!("bad entry path: {e}")))?
            .into_owned();
        let Some(rel) = clean(&raw) else {
            return Err(invalid(format!(
                "entry {} escapes the archive",
                raw.display()
            )));
        };
        if rel.as_os_str().is_empty() {
            continue;
        }
        let dest = dir.path().join(&rel);
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                fs::create_dir_all(&dest).map_err(Error::io("create dir", &dest))?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if let Some(p) = dest.parent() {
                    fs::create_dir_all(p).map_err(Error::io("create dir", p))?;
                }
                let mut f = fs::File::create(&dest).map_err(Error::io("create file", &dest))?;
                io::copy(&mut entry, &mut f)
                    .map_err(|e| invalid(format!("reading {}: {e}", rel.display())))?;
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .ok()
                    .flatten()
                    .ok_or_else(|| invalid(format!("link {} has no target", rel.display())))?
                    .into_owned();
                let target = if entry.header().entry_type() == tar::EntryType::Link
                    || target.is_absolute()
                {
                    // Hard links and absolute targets name paths from the archive root.
                    clean(&target)
                } else {
                    clean(&rel.parent().unwrap_or(Path::new("")).join(&target))
                };
                let target = target.ok_or_else(|| {
                    invalid(format!("link {} escapes the archive", rel.display()))
                })?;
                links.insert(rel, target);
            }
            _ => {}
        }
    }
    Ok(Unpacked { dir, links })
}

/// A relative path with `.` and `..` resolved lexically; `None` when it climbs out.
fn clean(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

impl Unpacked {
    /// The file `name` refers to inside the archive, following the archive's links.
    fn file(&self, name: &str) -> Result<PathBuf> {
        let mut rel =
            clean(Path::new(name)).ok_or_else(|| invalid(format!("{name} escapes the archive")))?;
        for _ in 0..MAX_LINKS {
            match self.links.get(&rel) {
                Some(t) => rel = t.clone(),
                None => {
                    let p = self.dir.path().join(&rel);
                    return if p.is_file() {
                        Ok(p)
                    } else {
                        Err(invalid(format!("{name} is missing from the tarball")))
                    };
                }
            }
        }
        Err(invalid(format!("{name}: too many levels of links")))
    }

    fn read(&self, name: &str) -> Result<Vec<u8>> {
        let p = self.file(name)?;
        fs::read(&p).map_err(Error::io("read", &p))
    }
}

// === planning ===

fn plan_docker(u: &Unpacked) -> Result<Vec<PlannedImage>> {
    let entries: Vec<DockerEntry> = serde_json::from_slice(&u.read("manifest.json")?)
        .map_err(|e| invalid(format!("manifest.json: {e}")))?;
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let config_bytes = u.read(&e.config)?;
        let config_digest = Digest::sha256_of(&config_bytes);
        let (config, diff_ids) = parse_config(&config_bytes, &e.config)?;
        if diff_ids.len() != e.layers.len() {
            return Err(invalid(format!(
                "{}: {} diff_ids for {} layers",
                e.config,
                diff_ids.len(),
                e.layers.len()
            )));
        }
        let mut layers = Vec::with_capacity(diff_ids.len());
        for (name, diff_id) in e.layers.iter().zip(diff_ids) {
            let file = u.file(name)?;
            layers.push(verify_layer(file, diff_id, None, None, name)?);
        }
        out.push(PlannedImage {
            config_bytes,
            config_digest,
            config,
            layers,
            repo_tags: familiar_tags(e.repo_tags.unwrap_or_default())?,
        });
    }
    Ok(out)
}

fn plan_oci(u: &Unpacked) -> Result<Vec<PlannedImage>> {
    let index: Value = serde_json::from_slice(&u.read("index.json")?)
        .map_err(|e| invalid(format!("index.json: {e}")))?;
    let descs = index
        .get("manifests")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("index.json has no manifests"))?;
    let mut by_digest: Vec<PlannedImage> = Vec::new();
    for d in descs {
        let (manifest, digest) = resolve_manifest(u, d)?;
        let tags = oci_name(d).into_iter().collect::<Vec<_>>();
        let tags = familiar_tags(tags)?;
        if let Some(prev) = by_digest.iter_mut().find(|p| p.config_digest == digest.1) {
            prev.repo_tags.extend(tags);
            continue;
        }
        let mut img = plan_oci_manifest(u, &manifest, &digest.0)?;
        img.repo_tags = tags;
        by_digest.push(img);
    }
    Ok(by_digest)
}

/// Reads and verifies the manifest a descriptor names, following an index to the host
/// platform's manifest. Returns it with (manifest digest, config digest).
fn resolve_manifest(u: &Unpacked, desc: &Value) -> Result<(Value, (Digest, Digest))> {
    let mut desc = desc.clone();
    for _ in 0..4 {
        let (bytes, digest) = read_blob(u, &desc)?;
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| invalid(format!("manifest {digest}: {e}")))?;
        let mt = desc
            .get("mediaType")
            .and_then(Value::as_str)
            .or_else(|| v.get("mediaType").and_then(Value::as_str))
            .unwrap_or(if v.get("manifests").is_some() {
                media_type::OCI_INDEX
            } else {
                media_type::OCI_MANIFEST
            })
            .to_owned();
        if media_type::is_index(&mt) {
            let index: oci_spec::image::ImageIndex = serde_json::from_slice(&bytes)
                .map_err(|e| invalid(format!("index {digest}: {e}")))?;
            let chosen = select_manifest(&index, &host_platform()).ok_or_else(|| {
                invalid(format!("index {digest} has no manifest for this platform"))
            })?;
            desc = serde_json::to_value(chosen)
                .map_err(|e| invalid(format!("index {digest}: {e}")))?;
            continue;
        }
        let config = v
            .get("config")
            .ok_or_else(|| invalid(format!("manifest {digest} has no config")))?;
        let config_digest = descriptor_digest(config)?;
        return Ok((v, (digest, config_digest)));
    }
    Err(invalid("indexes nested too deeply"))
}

fn plan_oci_manifest(u: &Unpacked, manifest: &Value, digest: &Digest) -> Result<PlannedImage> {
    let config_desc = manifest
        .get("config")
        .ok_or_else(|| invalid(format!("manifest {digest} has no config")))?;
    let (config_bytes, config_digest) = read_blob(u, config_desc)?;
    let (config, diff_ids) = parse_config(&config_bytes, config_digest.as_str())?;
    let descs = manifest
        .get("layers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if descs.len() != diff_ids.len() {
        return Err(invalid(format!(
            "manifest {digest}: {} diff_ids for {} layers",
            diff_ids.len(),
            descs.len()
        )));
    }
    let mut layers = Vec::with_capacity(descs.len());
    for (d, diff_id) in descs.iter().zip(diff_ids) {
        let blob = descriptor_digest(d)?;
        let mt = d
            .get("mediaType")
            .and_then(Value::as_str)
            .unwrap_or(media_type::OCI_LAYER_TAR)
            .to_owned();
        let compression =
            layer_compression(&mt).ok_or_else(|| Error::UnsupportedMediaType(mt.clone()))?;
        let name = super::blob_path(&blob);
        let file = u.file(&name)?;
        let mut l = verify_layer(file, diff_id, Some(&blob), Some(compression), &name)?;
        l.media_type = mt;
        layers.push(l);
    }
    Ok(PlannedImage {
        config_bytes,
        config_digest,
        config,
        layers,
        repo_tags: Vec::new(),
    })
}

/// Reads the blob a descriptor names and checks its digest and size.
fn read_blob(u: &Unpacked, desc: &Value) -> Result<(Vec<u8>, Digest)> {
    let digest = descriptor_digest(desc)?;
    let bytes = u.read(&super::blob_path(&digest))?;
    let actual = Digest::sha256_of(&bytes);
    if digest.algorithm() == corral_oci::digest::Algorithm::Sha256 && actual != digest {
        return Err(invalid(format!("blob {digest} has digest {actual}")));
    }
    if let Some(size) = desc.get("size").and_then(Value::as_u64) {
        if size != bytes.len() as u64 {
            return Err(invalid(format!(
                "blob {digest} is {} bytes, its descriptor says {size}",
                bytes.len()
            )));
        }
    }
    Ok((bytes, digest))
}

fn descriptor_digest(d: &Value) -> Result<Digest> {
    let s = d
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("descriptor without digest"))?;
    Digest::parse(s).map_err(|e| invalid(format!("descriptor digest: {e}")))
}

/// The reference an OCI index entry names: the full name containerd and dockerd record,
/// or a `ref.name` that is itself a full reference (a bare tag names no repository).
fn oci_name(desc: &Value) -> Option<String> {
    let a = desc.get("annotations")?;
    if let Some(n) = a.get("io.containerd.image.name").and_then(Value::as_str) {
        return Some(n.to_owned());
    }
    let r = a.get("org.opencontainers.image.ref.name")?.as_str()?;
    (r.contains('/') || r.contains(':')).then(|| r.to_owned())
}

fn familiar_tags(tags: Vec<String>) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for t in tags {
        let r = Reference::parse(&t).map_err(|e| invalid(format!("tag {t:?}: {e}")))?;
        if r.digest().is_some() {
            continue;
        }
        let f = r.familiar();
        if !out.contains(&f) {
            out.push(f);
        }
    }
    Ok(out)
}

fn parse_config(bytes: &[u8], name: &str) -> Result<(Value, Vec<Digest>)> {
    let config: Value =
        serde_json::from_slice(bytes).map_err(|e| invalid(format!("config {name}: {e}")))?;
    let ids = config
        .pointer("/rootfs/diff_ids")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid(format!("config {name} has no rootfs.diff_ids")))?;
    let diff_ids = ids
        .iter()
        .map(|v| {
            v.as_str()
                .and_then(|s| Digest::parse(s).ok())
                .ok_or_else(|| invalid(format!("config {name}: bad diff_id {v}")))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((config, diff_ids))
}

/// Hashes a layer file as it is and decompressed, checking the decompressed digest is
/// `diff_id` (and the raw digest is `blob`, when the manifest names one).
fn verify_layer(
    file: PathBuf,
    diff_id: Digest,
    blob: Option<&Digest>,
    compression: Option<Compression>,
    name: &str,
) -> Result<PlannedLayer> {
    let f = fs::File::open(&file).map_err(Error::io("open layer", &file))?;
    let mut raw = HashingReader::new(f);
    let (compression, uncompressed) = {
        let mut buffered = BufReader::new(&mut raw);
        let compression = match compression {
            Some(c) => c,
            None => sniff(&mut buffered).map_err(Error::io("read layer", &file))?,
        };
        let mut dec =
            decompressor(compression, buffered).map_err(Error::io("decompress layer", &file))?;
        let mut h = HashingReader::new(&mut dec);
        io::copy(&mut h, &mut io::sink())
            .map_err(|e| invalid(format!("layer {name} cannot be decompressed: {e}")))?;
        (compression, h.finish().0)
    };
    // Drain what the decompressor left unread (trailing padding) so the raw hash is whole.
    io::copy(&mut raw, &mut io::sink()).map_err(Error::io("read layer", &file))?;
    let (raw_digest, raw_len) = raw.finish();
    if uncompressed != diff_id {
        return Err(invalid(format!(
            "layer {name} has diff_id {uncompressed}, the config says {diff_id}"
        )));
    }
    if let Some(b) = blob {
        if *b != raw_digest {
            return Err(invalid(format!("layer {name} has digest {raw_digest}")));
        }
    }
    let media_type = match compression {
        Compression::Gzip => media_type::DOCKER_LAYER_GZIP,
        Compression::Zstd => media_type::OCI_LAYER_ZSTD,
        _ => media_type::DOCKER_LAYER_TAR,
    };
    Ok(PlannedLayer {
        file,
        diff_id,
        compression,
        raw: (raw_digest, raw_len),
        media_type: media_type.to_owned(),
    })
}

/// Hashes (SHA-256) and counts what is read through it.
struct HashingReader<R> {
    inner: R,
    hasher: sha2::Sha256,
    count: u64,
}

impl<R> HashingReader<R> {
    fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: sha2::Sha256::new(),
            count: 0,
        }
    }

    fn finish(self) -> (Digest, u64) {
        (
            Digest::from_sha256_bytes(&self.hasher.finalize()),
            self.count,
        )
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Hashes (SHA-256) and counts what is written through it.
struct HashingWriter<W> {
    inner: W,
    hasher: sha2::Sha256,
    count: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

// === storing ===

fn apply(
    store: &ImageStore,
    work: &Path,
    img: PlannedImage,
    stored: &mut BTreeMap<String, LayerRecord>,
) -> Result<LoadedImage> {
    if !store.content().contains(&img.config_digest) {
        store
            .content()
            .write_bytes(&img.config_digest, &img.config_bytes)?;
    }
    let mut layers = Vec::with_capacity(img.layers.len());
    let mut size = 0;
    for l in &img.layers {
        let unpack_type = match l.compression {
            Compression::Gzip => media_type::OCI_LAYER_GZIP,
            Compression::Zstd => media_type::OCI_LAYER_ZSTD,
            _ => media_type::OCI_LAYER_TAR,
        };
        let unpacked = store.layers().unpack(&l.file, unpack_type, &l.diff_id)?;
        size += unpacked.size;
        let key = l.diff_id.to_string();
        let usable = stored
            .get(&key)
            .filter(|r| Digest::parse(&r.digest).is_ok_and(|d| store.content().contains(&d)));
        let record = match usable {
            Some(r) => r.clone(),
            None => store_blob(store, work, l)?,
        };
        stored.insert(key, record.clone());
        layers.push(record);
    }
    let created = img
        .config
        .get("created")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_default();
    Ok(LoadedImage {
        config_digest: img.config_digest,
        config: img.config,
        layers,
        size,
        created,
        repo_tags: img.repo_tags,
    })
}

/// Stores a layer's blob: compressed files as they are, plain tars gzip-compressed.
fn store_blob(store: &ImageStore, work: &Path, l: &PlannedLayer) -> Result<LayerRecord> {
    let (digest, size, media_type, src) = if l.compression == Compression::None {
        let (digest, size, path) = gzip(work, &l.file)?;
        (digest, size, media_type::DOCKER_LAYER_GZIP.to_owned(), path)
    } else {
        (
            l.raw.0.clone(),
            l.raw.1,
            l.media_type.clone(),
            l.file.clone(),
        )
    };
    persist_blob(store, &digest, &src)?;
    Ok(LayerRecord {
        digest: digest.to_string(),
        diff_id: l.diff_id.to_string(),
        size,
        media_type,
    })
}

/// Gzip-compresses `src` into a new file in `work`; returns its digest, size and path.
fn gzip(work: &Path, src: &Path) -> Result<(Digest, u64, PathBuf)> {
    let out = tempfile::Builder::new()
        .prefix("gz-")
        .tempfile_in(work)
        .map_err(Error::io("create temp file in", work))?;
    let (_, path) = out.keep().map_err(|e| Error::Io {
        op: "keep temp file",
        path: work.to_path_buf(),
        source: e.error,
    })?;
    let file = fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(Error::io("open", &path))?;
    let mut input = fs::File::open(src).map_err(Error::io("open layer", src))?;
    let mut hw = HashingWriter {
        inner: io::BufWriter::new(file),
        hasher: sha2::Sha256::new(),
        count: 0,
    };
    {
        let mut enc = flate2::write::GzEncoder::new(&mut hw, flate2::Compression::fast());
        io::copy(&mut input, &mut enc).map_err(Error::io("compress layer", &path))?;
        enc.finish().map_err(Error::io("compress layer", &path))?;
    }
    hw.flush().map_err(Error::io("compress layer", &path))?;
    let digest = Digest::from_sha256_bytes(&hw.hasher.finalize());
    Ok((digest, hw.count, path))
}

/// Moves a verified file into the content store under `digest` (same file system: both
/// live under the image root), fsyncing it and the directory first.
fn persist_blob(store: &ImageStore, digest: &Digest, src: &Path) -> Result<()> {
    let content = store.content();
    if content.contains(digest) {
        return Ok(());
    }
    fs::File::open(src)
        .and_then(|f| f.sync_all())
        .map_err(Error::io("fsync blob", src))?;
    let dst = content.path(digest);
    fs::rename(src, &dst).map_err(Error::io("rename blob into", &dst))?;
    if let Some(dir) = dst.parent() {
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}
