//! `docker commit` and `docker import`: new images from a container's writable layer or
//! from a root filesystem tarball.
//!
//! The image config follows dockerd 20.10 (`image.NewChildImage` for commit,
//! `ImportImage` for import); its id is the SHA-256 of the config JSON, which is stored as
//! a blob beside the layer blob.

use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use chrono::{SecondsFormat, Utc};
use corral_core::{ContainerRecord, ImageRecord, LayerRecord};
use corral_oci::{media_type, Digest, Reference};
use serde_json::{json, Map, Value};
use sha2::Digest as _;

use super::tarball::TreeWriter;
use super::{blocking, BlockingReader};
use crate::api::{BoxRead, CommitOptions};
use crate::error::{io as io_err, Error, Result};
use crate::local::LocalEngine;

/// diff_id of an empty layer (a tar of two zero blocks); dockerd records no layer for it.
const EMPTY_LAYER_DIFF_ID: &str =
    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

/// A writer that hashes and counts what passes through it.
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

/// A stored layer: its blob and its unpacked form.
struct NewLayer {
    record: LayerRecord,
    /// Uncompressed size.
    size: u64,
}

/// The media type of a layer blob from its first bytes (RFC 1952, RFC 8878 magic).
fn sniff_media_type(head: &[u8]) -> &'static str {
    if head.starts_with(&[0x1f, 0x8b]) {
        media_type::OCI_LAYER_GZIP
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        media_type::OCI_LAYER_ZSTD
    } else {
        media_type::OCI_LAYER_TAR
    }
}

fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// `repo[:tag]` as Docker records it, or `None` when no repo is given.
fn tag_for(repo: &str, tag: &str) -> Result<Option<String>> {
    if repo.is_empty() {
        return Ok(None);
    }
    let s = if tag.is_empty() {
        repo.to_owned()
    } else {
        format!("{repo}:{tag}")
    };
    let r = Reference::parse(&s).map_err(|e| Error::InvalidInput(e.to_string()))?;
    if r.digest().is_some() {
        return Err(Error::InvalidInput(format!(
            "invalid reference format: {s} must be a tag, not a digest"
        )));
    }
    Ok(Some(r.familiar()))
}

fn is_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        Some(_) => false,
    }
}

fn env_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A container's `Config` as dockerd keeps it: the image config merged with the
/// container's own settings at create.
pub(crate) fn container_config(rec: &ContainerRecord, image_config: &Value) -> Value {
    let s = &rec.spec;
    let image_env = env_list(image_config.get("config").and_then(|c| c.get("Env")));
    let env = corral_runtime::spec::merge_env(&image_env, &s.env);
    let set = |v: &[String]| -> Value {
        if v.is_empty() {
            Value::Null
        } else {
            Value::Object(v.iter().map(|k| (k.clone(), json!({}))).collect())
        }
    };
    json!({
        "Hostname": s.hostname.clone().unwrap_or_else(|| rec.id.short().to_owned()),
        "Domainname": s.domainname.clone().unwrap_or_default(),
        "User": s.user.clone().unwrap_or_default(),
        "AttachStdin": s.attach_stdin,
        "AttachStdout": s.attach_stdout,
        "AttachStderr": s.attach_stderr,
        "ExposedPorts": set(&s.exposed_ports),
        "Tty": s.tty,
        "OpenStdin": s.open_stdin,
        "StdinOnce": s.stdin_once,
        "Env": if env.is_empty() { Value::Null } else { json!(env) },
        "Cmd": s.cmd,
        "Image": s.image,
        "Volumes": set(&s.volumes),
        "WorkingDir": s.working_dir.clone().unwrap_or_default(),
        "Entrypoint": s.entrypoint,
        "OnBuild": Value::Null,
        "Labels": s.labels,
        "StopSignal": s.stop_signal,
    })
}

/// The committed image's `Config`: the container's config with the user's overrides, by
/// dockerd's `merge` rules (env, labels, ports and volumes are unions where the user
/// wins; a new entrypoint drops the container's cmd).
pub(crate) fn merge_config(container: &Value, user: Option<&Value>) -> Value {
    let mut out = container.as_object().cloned().unwrap_or_default();
    let Some(user) = user.and_then(Value::as_object) else {
        return Value::Object(out);
    };
    for (k, v) in user {
        if !is_empty(Some(v)) {
            out.insert(k.clone(), v.clone());
        }
    }
    if !is_empty(user.get("Env")) {
        let merged = corral_runtime::spec::merge_env(
            &env_list(container.get("Env")),
            &env_list(user.get("Env")),
        );
        out.insert("Env".into(), json!(merged));
    }
    for key in ["Labels", "ExposedPorts", "Volumes"] {
        let mut m: Map<String, Value> = container
            .get(key)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if let Some(u) = user.get(key).and_then(Value::as_object) {
            m.extend(u.clone());
        }
        if !m.is_empty() {
            out.insert(key.into(), Value::Object(m));
        }
    }
    if !is_empty(user.get("Entrypoint")) {
        out.insert(
            "Cmd".into(),
            user.get("Cmd").cloned().unwrap_or(Value::Null),
        );
    }
    Value::Object(out)
}

/// The committed image's config JSON (dockerd's `NewChildImage`).
pub(crate) fn child_image_config(
    parent: &Value,
    rec: &ContainerRecord,
    config: Value,
    container_config: Value,
    opts: &CommitOptions,
    diff_id: &str,
) -> Value {
    let created = now_rfc3339();
    let empty = diff_id == EMPTY_LAYER_DIFF_ID;
    let mut diff_ids = parent
        .pointer("/rootfs/diff_ids")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !empty {
        diff_ids.push(json!(diff_id));
    }
    let mut history = parent
        .get("history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut h = Map::new();
    h.insert("created".into(), json!(created));
    if !opts.author.is_empty() {
        h.insert("author".into(), json!(opts.author));
    }
    h.insert(
        "created_by".into(),
        json!(opts.created_by.clone().unwrap_or_else(|| rec
            .spec
            .cmd
            .clone()
            .unwrap_or_default()
            .join(" "))),
    );
    if !opts.comment.is_empty() {
        h.insert("comment".into(), json!(opts.comment));
    }
    if empty {
        h.insert("empty_layer".into(), json!(true));
    }
    history.push(Value::Object(h));
    let host = corral_oci::host_platform();
    let mut out = Map::new();
    out.insert(
        "architecture".into(),
        parent
            .get("architecture")
            .cloned()
            .unwrap_or_else(|| json!(host.architecture)),
    );
    if !opts.author.is_empty() {
        out.insert("author".into(), json!(opts.author));
    }
    out.insert("config".into(), config);
    out.insert("container".into(), json!(rec.id.as_str()));
    out.insert("container_config".into(), container_config);
    out.insert("created".into(), json!(created));
    out.insert("history".into(), Value::Array(history));
    out.insert(
        "os".into(),
        parent.get("os").cloned().unwrap_or_else(|| json!("linux")),
    );
    if let Some(v) = parent.get("variant") {
        out.insert("variant".into(), v.clone());
    }
    out.insert(
        "rootfs".into(),
        json!({"type": "layers", "diff_ids": diff_ids}),
    );
    Value::Object(out)
}

/// The imported image's config JSON (dockerd's `ImportImage`). `options` may carry a
/// `comment` and a container `config` (Docker `Config` keys).
pub(crate) fn import_image_config(options: Option<&Value>, diff_id: &str) -> Value {
    let created = now_rfc3339();
    let comment = options
        .and_then(|o| o.get("comment"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("Imported from -");
    let config = options
        .and_then(|o| o.get("config").or_else(|| o.get("Config")))
        .cloned()
        .unwrap_or_else(|| json!({}));
    let host = corral_oci::host_platform();
    let mut out = json!({
        "architecture": host.architecture,
        "comment": comment,
        "config": config,
        "created": created,
        "history": [{"created": created, "comment": comment}],
        "os": host.os,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    });
    if let (Some(v), Some(o)) = (host.variant, out.as_object_mut()) {
        o.insert("variant".into(), json!(v));
    }
    out
}

/// A private scratch dir for building a layer, removed on drop.
fn scratch(data_dir: &Path) -> Result<tempfile::TempDir> {
    let dir = data_dir.join("tmp");
    std::fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
    tempfile::Builder::new()
        .prefix("layer-")
        .tempdir_in(&dir)
        .map_err(io_err(format!("creating a temp dir in {}", dir.display())))
}

/// Copies `src` to `dst` through `wrap` (a compressor or nothing), returning the digest
/// and size of the bytes written to `dst`.
fn copy_hashed<R: Read>(mut src: R, dst: &Path, gzip: bool) -> io::Result<(Digest, u64)> {
    let file = std::fs::File::create(dst)?;
    let mut hw = HashingWriter {
        inner: BufWriter::new(file),
        hasher: sha2::Sha256::new(),
        count: 0,
    };
    if gzip {
        let mut gz = flate2::write::GzEncoder::new(&mut hw, flate2::Compression::fast());
        io::copy(&mut src, &mut gz)?;
        gz.finish()?;
    } else {
        io::copy(&mut src, &mut hw)?;
    }
    hw.flush()?;
    let digest = Digest::from_sha256_bytes(&hw.hasher.finalize());
    Ok((digest, hw.count))
}

impl LocalEngine {
    /// Stores the blob at `blob` (of digest `digest`) and unpacks the layer tar at `tar`
    /// (plain or compressed) into the layer store.
    async fn store_layer(
        &self,
        blob: PathBuf,
        digest: Digest,
        blob_size: u64,
        media: &str,
        tar: PathBuf,
    ) -> Result<NewLayer> {
        let file = tokio::fs::File::open(&blob)
            .await
            .map_err(io_err(format!("opening {}", blob.display())))?;
        self.inner
            .image_store
            .content()
            .write_stream(
                &digest,
                Some(blob_size),
                tokio_util::io::ReaderStream::new(file),
                |_| {},
            )
            .await?;
        let store = self.inner.image_store.clone();
        let (diff_id, size) = blocking(move || {
            let f =
                std::fs::File::open(&tar).map_err(io_err(format!("opening {}", tar.display())))?;
            Ok(store.import_layer(BufReader::new(f))?)
        })
        .await?;
        Ok(NewLayer {
            record: LayerRecord {
                digest: digest.to_string(),
                diff_id: diff_id.to_string(),
                size: blob_size,
                media_type: media.to_owned(),
            },
            size,
        })
    }

    /// Stores a config blob and records the image; returns the image id.
    async fn put_new_image(
        &self,
        config: Value,
        layers: Vec<LayerRecord>,
        size: u64,
        tag: Option<String>,
    ) -> Result<ImageRecord> {
        let bytes = serde_json::to_vec(&config).map_err(|e| Error::Internal(e.to_string()))?;
        let store = self.inner.image_store.clone();
        let digest = blocking(move || Ok(store.content().put(&bytes)?)).await?;
        let id = digest.to_string();
        let mut rec = self
            .inner
            .images
            .read()
            .get(&id)
            .cloned()
            .unwrap_or_else(|| ImageRecord {
                id: id.clone(),
                repo_tags: Vec::new(),
                repo_digests: Vec::new(),
                created: Utc::now(),
                size,
                config,
                layers,
            });
        if let Some(t) = tag {
            if !rec.repo_tags.contains(&t) {
                rec.repo_tags.push(t);
            }
        }
        self.put_image(rec.clone()).await?;
        Ok(rec)
    }

    /// `docker commit`: a new image from the container's writable layer.
    pub(crate) async fn commit(&self, name: &str, opts: CommitOptions) -> Result<String> {
        let entry = self.lookup(name)?;
        let tag = tag_for(&opts.repo, &opts.tag)?;
        let rec = entry.snapshot();
        // Bad changes fail before the container is paused or a layer written.
        let opts = if opts.changes.is_empty() {
            opts
        } else {
            let base = match opts.config.as_ref().and_then(Value::as_object) {
                Some(c) => c.clone(),
                None => {
                    let parent = self
                        .inner
                        .images
                        .read()
                        .get(&rec.image_id)
                        .map(|i| i.config.clone())
                        .ok_or_else(|| Error::NoSuchImage(rec.image_id.clone()))?;
                    match container_config(&rec, &parent) {
                        Value::Object(m) => m,
                        _ => Map::new(),
                    }
                }
            };
            let config = crate::build::changes::apply_changes(base, &opts.changes)
                .map_err(|e| Error::InvalidInput(e.message))?;
            CommitOptions {
                config: Some(Value::Object(config)),
                changes: Vec::new(),
                ..opts
            }
        };
        let pause = opts.pause && rec.state.status == corral_core::ContainerStatus::Running;
        if pause {
            self.pause(rec.id.as_str(), true).await?;
        }
        let res = self.commit_layer(&entry, &opts, tag).await;
        if pause {
            if let Err(e) = self.pause(rec.id.as_str(), false).await {
                tracing::warn!(container = %rec.id, error = %e, "unpausing after commit");
            }
        }
        let img = res?;
        let mut attrs = vec![
            ("comment", opts.comment.clone()),
            ("imageID", img.id.clone()),
        ];
        if let Some(t) = img.repo_tags.last() {
            attrs.push(("imageRef", t.clone()));
        }
        self.container_event(&entry.snapshot(), "commit", &attrs);
        Ok(img.id)
    }

    async fn commit_layer(
        &self,
        entry: &std::sync::Arc<crate::local::Entry>,
        opts: &CommitOptions,
        tag: Option<String>,
    ) -> Result<ImageRecord> {
        let rec = entry.snapshot();
        let parent = self
            .inner
            .images
            .read()
            .get(&rec.image_id)
            .cloned()
            .ok_or_else(|| Error::NoSuchImage(rec.image_id.clone()))?;
        let this = self.clone();
        let entry2 = entry.clone();
        let data_dir = self.inner.cfg.data_dir.clone();
        let (tmp, digest, blob_size) = blocking(move || {
            let plan = this.rootfs_plan(&entry2)?;
            let tmp = scratch(&data_dir)?;
            let tar_path = tmp.path().join("layer.tar");
            let ctx = format!("writing the layer of {}", plan.id);
            let f = std::fs::File::create(&tar_path).map_err(io_err(ctx.clone()))?;
            let mut tw = TreeWriter::new(BufWriter::new(f));
            tw.append_layer(&plan.upper).map_err(io_err(ctx.clone()))?;
            tw.finish()
                .and_then(|mut w| w.flush())
                .map_err(io_err(ctx.clone()))?;
            let src = std::fs::File::open(&tar_path).map_err(io_err(ctx.clone()))?;
            let (digest, size) =
                copy_hashed(BufReader::new(src), &tmp.path().join("layer.tar.gz"), true)
                    .map_err(io_err(ctx))?;
            Ok((tmp, digest, size))
        })
        .await?;
        let layer = self
            .store_layer(
                tmp.path().join("layer.tar.gz"),
                digest,
                blob_size,
                media_type::OCI_LAYER_GZIP,
                tmp.path().join("layer.tar"),
            )
            .await?;
        drop(tmp);
        let cc = container_config(&rec, &parent.config);
        let config = match (&opts.config, opts.replace_config) {
            (Some(c), true) => c.clone(),
            _ => merge_config(&cc, opts.config.as_ref()),
        };
        let image_config = child_image_config(
            &parent.config,
            &rec,
            config,
            cc,
            opts,
            &layer.record.diff_id,
        );
        let mut layers = parent.layers.clone();
        let mut size = parent.size;
        if layer.record.diff_id != EMPTY_LAYER_DIFF_ID {
            layers.push(layer.record);
            size += layer.size;
        }
        self.put_new_image(image_config, layers, size, tag).await
    }

    /// `docker import`: a one-layer image from a root filesystem tarball (plain, gzip or
    /// zstd).
    pub(crate) async fn import(
        &self,
        tar: BoxRead,
        reference: Option<&str>,
        options: Option<Value>,
    ) -> Result<String> {
        let tag = match reference.filter(|r| !r.is_empty()) {
            Some(r) => Some(
                Reference::parse(r)
                    .map_err(|e| Error::InvalidInput(e.to_string()))?
                    .familiar(),
            ),
            None => None,
        };
        let data_dir = self.inner.cfg.data_dir.clone();
        let reader = BlockingReader::new(tar);
        let (tmp, digest, blob_size, media) = blocking(move || {
            let tmp = scratch(&data_dir)?;
            let blob = tmp.path().join("blob");
            let (digest, size) = copy_hashed(reader, &blob, false)
                .map_err(io_err("reading the imported tarball"))?;
            let mut head = [0u8; 4];
            let n = std::fs::File::open(&blob)
                .and_then(|mut f| f.read(&mut head))
                .map_err(io_err("reading the imported tarball"))?;
            Ok((tmp, digest, size, sniff_media_type(&head[..n])))
        })
        .await?;
        let blob = tmp.path().join("blob");
        let layer = self
            .store_layer(blob.clone(), digest, blob_size, media, blob)
            .await?;
        drop(tmp);
        let config = import_image_config(options.as_ref(), &layer.record.diff_id);
        let size = layer.size;
        let img = self
            .put_new_image(config, vec![layer.record], size, tag)
            .await?;
        self.image_event(&img, "import", &img.id);
        Ok(img.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_config_overrides_and_unions_like_dockerd() {
        let container = json!({"Cmd": ["sh"], "Entrypoint": ["/init"], "Env": ["PATH=/bin", "A=0"],
            "Labels": {"x": "1"}, "Hostname": "h", "WorkingDir": "/w"});
        let merged = merge_config(
            &container,
            Some(&json!({"Cmd": ["cat", "/m"], "Env": ["A=1"], "Labels": {"y": "2"}})),
        );
        assert_eq!(merged["Cmd"], json!(["cat", "/m"]));
        assert_eq!(merged["Entrypoint"], json!(["/init"]));
        assert_eq!(merged["Env"], json!(["A=1", "PATH=/bin"]));
        assert_eq!(merged["Labels"], json!({"x": "1", "y": "2"}));
        assert_eq!(merged["Hostname"], "h");
        // A new entrypoint without a cmd drops the container's cmd.
        let merged = merge_config(&container, Some(&json!({"Entrypoint": ["/e"]})));
        assert_eq!(merged["Cmd"], Value::Null);
        assert_eq!(merge_config(&container, None), container);
    }

    #[test]
    fn child_config_appends_layer_and_history() {
        let parent = json!({"architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": ["sha256:aa"]},
            "history": [{"created_by": "base"}]});
        let rec = ContainerRecord {
            id: corral_core::ContainerId::random(),
            name: corral_core::ContainerName::parse("commit-test").unwrap(),
            created: Utc::now(),
            path: "sh".into(),
            args: vec!["-c".into(), "x".into()],
            env: vec![],
            image_id: "sha256:p".into(),
            runtime: "libcontainer".into(),
            spec: corral_core::ContainerSpec {
                image: "busybox".into(),
                cmd: Some(vec!["sh".into(), "-c".into(), "x".into()]),
                ..Default::default()
            },
            state: Default::default(),
            volume_mounts: vec![],
        };
        let opts = CommitOptions {
            comment: "msg".into(),
            author: "me".into(),
            ..Default::default()
        };
        let c = child_image_config(&parent, &rec, json!({}), json!({}), &opts, "sha256:bb");
        assert_eq!(c["rootfs"]["diff_ids"], json!(["sha256:aa", "sha256:bb"]));
        let h = &c["history"][1];
        assert_eq!(h["created_by"], "sh -c x");
        assert_eq!(h["comment"], "msg");
        assert_eq!(h["author"], "me");
        assert_eq!(c["author"], "me");
        // An empty diff adds no layer, only an empty-layer history entry.
        let c = child_image_config(
            &parent,
            &rec,
            json!({}),
            json!({}),
            &opts,
            EMPTY_LAYER_DIFF_ID,
        );
        assert_eq!(c["rootfs"]["diff_ids"], json!(["sha256:aa"]));
        assert_eq!(c["history"][1]["empty_layer"], true);
    }

    #[test]
    fn empty_layer_digest_is_an_empty_tar() {
        let w = TreeWriter::new(Vec::new()).finish().unwrap();
        assert_eq!(Digest::sha256_of(&w).to_string(), EMPTY_LAYER_DIFF_ID);
    }

    #[test]
    fn import_config_defaults_its_comment() {
        let c = import_image_config(None, "sha256:aa");
        assert_eq!(c["comment"], "Imported from -");
        assert_eq!(c["history"][0]["comment"], "Imported from -");
        assert_eq!(c["rootfs"]["diff_ids"], json!(["sha256:aa"]));
        let c = import_image_config(
            Some(&json!({"comment": "hi", "config": {"Cmd": ["sh"]}})),
            "sha256:aa",
        );
        assert_eq!(c["comment"], "hi");
        assert_eq!(c["config"]["Cmd"], json!(["sh"]));
    }

    #[test]
    fn tags_default_to_latest_and_refuse_digests() {
        assert_eq!(tag_for("", "").unwrap(), None);
        assert_eq!(tag_for("app", "").unwrap().as_deref(), Some("app:latest"));
        assert_eq!(tag_for("app", "v1").unwrap().as_deref(), Some("app:v1"));
        assert!(tag_for("Bad Name", "").is_err());
    }

    #[test]
    fn sniffs_layer_compression() {
        assert_eq!(
            sniff_media_type(&[0x1f, 0x8b, 8, 0]),
            media_type::OCI_LAYER_GZIP
        );
        assert_eq!(
            sniff_media_type(&[0x28, 0xb5, 0x2f, 0xfd]),
            media_type::OCI_LAYER_ZSTD
        );
        assert_eq!(sniff_media_type(b"etc/"), media_type::OCI_LAYER_TAR);
    }
}
