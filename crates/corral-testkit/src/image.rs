//! A deterministic OCI image layout builder around the host's static busybox.
//!
//! The base layer holds `/bin/busybox`, one symlink per applet in [`DEFAULT_APPLETS`], the
//! usual top-level directories and an `/etc/passwd` with `root`, `app` (uid 1000) and
//! `nobody`. Extra layers are described with [`LayerBuilder`]. Every tar header has a fixed
//! mtime, uid/gid and ordering, and gzip headers carry no timestamp, so building the same
//! image twice yields the same digests (OCI image-layout spec,
//! <https://github.com/opencontainers/image-spec/blob/main/image-layout.md>).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::json;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

mod config;
mod layer;
#[cfg(test)]
mod tests;

pub use config::{Healthcheck, ImageConfig};
pub use layer::LayerBuilder;

/// Where Debian's `busybox-static` installs the static busybox binary.
pub const HOST_BUSYBOX: &str = "/bin/busybox";

/// The mtime (seconds since the epoch) written into every tar header: 2024-01-01T00:00:00Z.
pub const FIXED_MTIME: u64 = 1_704_067_200;

/// The `created` timestamp written into the image config and its history.
pub const FIXED_CREATED: &str = "2024-01-01T00:00:00Z";

/// The `PATH` Docker puts into images by default.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Applets symlinked to `/bin/busybox` in the base layer.
pub const DEFAULT_APPLETS: &[&str] = &[
    "[",
    "awk",
    "basename",
    "cat",
    "chmod",
    "chown",
    "cp",
    "cut",
    "date",
    "dd",
    "df",
    "dirname",
    "du",
    "echo",
    "env",
    "expr",
    "false",
    "find",
    "free",
    "grep",
    "head",
    "hostname",
    "id",
    "kill",
    "ln",
    "ls",
    "md5sum",
    "mkdir",
    "mkfifo",
    "mknod",
    "mount",
    "mv",
    "nproc",
    "nsenter",
    "printf",
    "ps",
    "pwd",
    "readlink",
    "realpath",
    "rm",
    "rmdir",
    "sed",
    "seq",
    "setsid",
    "sh",
    "sha256sum",
    "sleep",
    "sort",
    "stat",
    "sync",
    "tail",
    "tar",
    "tee",
    "test",
    "timeout",
    "top",
    "touch",
    "tr",
    "true",
    "umount",
    "uname",
    "uniq",
    "unshare",
    "usleep",
    "wc",
    "which",
    "whoami",
    "xargs",
    "yes",
];

const ETC_PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
app:x:1000:1000:app:/home/app:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";

const ETC_GROUP: &str = "root:x:0:\napp:x:1000:\nnogroup:x:65534:\n";

/// OCI media type of an image manifest.
pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI media type of an image index.
pub const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI media type of an image config.
pub const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// How layer blobs are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compression {
    /// `application/vnd.oci.image.layer.v1.tar+gzip` (what every registry client accepts).
    #[default]
    Gzip,
    /// `application/vnd.oci.image.layer.v1.tar+zstd`.
    Zstd,
    /// `application/vnd.oci.image.layer.v1.tar`, uncompressed.
    None,
}

impl Compression {
    /// The OCI layer media type for this compression.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
        }
    }

    fn compress(self, tar: &[u8]) -> Result<Vec<u8>> {
        match self {
            Compression::Gzip => {
                // GzBuilder writes mtime 0 and no file name: deterministic output.
                let mut enc =
                    flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::default());
                enc.write_all(tar).context("gzip layer")?;
                enc.finish().context("gzip layer")
            }
            Compression::Zstd => zstd::encode_all(tar, 3).context("zstd layer"),
            Compression::None => Ok(tar.to_vec()),
        }
    }
}

/// One layer as written to the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// `sha256:<hex>` of the compressed blob.
    pub digest: String,
    /// `sha256:<hex>` of the uncompressed tar (what `RootFS.Layers` lists).
    pub diff_id: String,
    /// Size of the compressed blob in bytes.
    pub size: u64,
    /// Media type of the blob.
    pub media_type: String,
}

/// A written OCI image layout. Owns its temporary directory when built with
/// [`BusyboxImage::build_temp`].
#[derive(Debug)]
pub struct OciLayout {
    dir: PathBuf,
    _temp: Option<TempDir>,
    /// `sha256:<hex>` of the manifest (the image's repo digest once pushed).
    pub manifest_digest: String,
    /// Size of the manifest in bytes.
    pub manifest_size: u64,
    /// `sha256:<hex>` of the config (the image ID Docker shows).
    pub config_digest: String,
    /// The layers, base first.
    pub layers: Vec<LayerInfo>,
}

impl OciLayout {
    /// The layout directory (contains `oci-layout`, `index.json`, `blobs/`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the blob with `digest` (`sha256:<hex>`).
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        blob_path(&self.dir, digest)
    }
}

/// Builds a busybox-based OCI image layout.
///
/// ```no_run
/// use corral_testkit::BusyboxImage;
/// let layout = BusyboxImage::new()
///     .cmd(&["echo", "hi"])
///     .with_layer(|l| l.file("/etc/motd", "hello\n", 0o644).whiteout("/bin/yes"))
///     .build_temp()?;
/// println!("{}", layout.manifest_digest);
/// # Ok::<(), anyhow::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct BusyboxImage {
    busybox: PathBuf,
    applets: Vec<String>,
    extra_layers: Vec<LayerBuilder>,
    config: ImageConfig,
    compression: Compression,
    ref_name: Option<String>,
}

impl Default for BusyboxImage {
    fn default() -> Self {
        Self::new()
    }
}

impl BusyboxImage {
    /// A busybox image with the default applets, `Cmd ["sh"]` and a Docker-like `PATH`.
    pub fn new() -> Self {
        BusyboxImage {
            busybox: PathBuf::from(HOST_BUSYBOX),
            applets: DEFAULT_APPLETS.iter().map(|s| (*s).to_owned()).collect(),
            extra_layers: Vec::new(),
            config: ImageConfig::default(),
            compression: Compression::Gzip,
            ref_name: None,
        }
    }

    /// Use another busybox binary (it must be static: nothing else goes into the image).
    pub fn busybox_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.busybox = path.into();
        self
    }

    /// Adds an applet symlink in `/bin` to the base layer.
    pub fn applet(mut self, name: &str) -> Self {
        if !self.applets.iter().any(|a| a == name) {
            self.applets.push(name.to_owned());
        }
        self
    }

    /// Adds a layer on top of the base layer (and earlier extra layers).
    pub fn with_layer(mut self, f: impl FnOnce(LayerBuilder) -> LayerBuilder) -> Self {
        self.extra_layers.push(f(LayerBuilder::new()));
        self
    }

    /// Sets the layer compression.
    pub fn compression(mut self, c: Compression) -> Self {
        self.compression = c;
        self
    }

    /// Annotates the index entry with `org.opencontainers.image.ref.name` (for `oci:DIR:name`).
    pub fn ref_name(mut self, name: &str) -> Self {
        self.ref_name = Some(name.to_owned());
        self
    }

    /// Replaces the whole runtime config.
    pub fn config(mut self, config: ImageConfig) -> Self {
        self.config = config;
        self
    }

    /// Sets `Entrypoint`.
    pub fn entrypoint(mut self, argv: &[&str]) -> Self {
        self.config.entrypoint = Some(argv.iter().map(|s| (*s).to_owned()).collect());
        self
    }

    /// Sets `Cmd`.
    pub fn cmd(mut self, argv: &[&str]) -> Self {
        self.config.cmd = Some(argv.iter().map(|s| (*s).to_owned()).collect());
        self
    }

    /// Removes `Cmd`.
    pub fn no_cmd(mut self) -> Self {
        self.config.cmd = None;
        self
    }

    /// Adds (or replaces) an `Env` entry.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        let prefix = format!("{key}=");
        self.config.env.retain(|e| !e.starts_with(&prefix));
        self.config.env.push(format!("{key}={value}"));
        self
    }

    /// Sets `WorkingDir`.
    pub fn workdir(mut self, dir: &str) -> Self {
        self.config.working_dir = Some(dir.to_owned());
        self
    }

    /// Sets `User`.
    pub fn user(mut self, user: &str) -> Self {
        self.config.user = Some(user.to_owned());
        self
    }

    /// Adds a label.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.config.labels.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Sets `StopSignal`, e.g. `SIGUSR1`.
    pub fn stop_signal(mut self, signal: &str) -> Self {
        self.config.stop_signal = Some(signal.to_owned());
        self
    }

    /// Declares a volume.
    pub fn volume(mut self, path: &str) -> Self {
        self.config.volumes.push(path.to_owned());
        self
    }

    /// Declares an exposed port such as `80/tcp`.
    pub fn expose(mut self, port: &str) -> Self {
        self.config.exposed_ports.push(port.to_owned());
        self
    }

    /// Sets `Healthcheck`.
    pub fn healthcheck(mut self, hc: Healthcheck) -> Self {
        self.config.healthcheck = Some(hc);
        self
    }

    /// The base layer: busybox, applet symlinks, `/etc/passwd`, `/etc/group` and directories.
    ///
    /// # Errors
    /// When the busybox binary cannot be read.
    pub fn base_layer(&self) -> Result<LayerBuilder> {
        let busybox = std::fs::read(&self.busybox)
            .with_context(|| format!("read busybox from {}", self.busybox.display()))?;
        let mut l = LayerBuilder::new()
            .created_by("corral-testkit: busybox base")
            .dir("bin", 0o755)
            .file("bin/busybox", busybox, 0o755);
        for applet in &self.applets {
            l = l.symlink(&format!("bin/{applet}"), "busybox");
        }
        l = l
            .dir("dev", 0o755)
            .dir("etc", 0o755)
            .file("etc/passwd", ETC_PASSWD, 0o644)
            .file("etc/group", ETC_GROUP, 0o644)
            .dir("home", 0o755)
            .dir_owned("home/app", 0o755, 1000, 1000)
            .dir("proc", 0o755)
            .dir("root", 0o700)
            .dir("sys", 0o755)
            .dir("tmp", 0o1777)
            .dir("usr", 0o755)
            .dir("usr/bin", 0o755)
            .symlink("usr/bin/env", "/bin/busybox")
            .dir("var", 0o755);
        Ok(l)
    }

    /// Writes the layout into `dir` (created if missing; must not hold another layout).
    ///
    /// # Errors
    /// On I/O failure or when busybox cannot be read.
    pub fn build(&self, dir: &Path) -> Result<OciLayout> {
        self.build_inner(dir, None)
    }

    /// Writes the layout into a new temporary directory owned by the result.
    ///
    /// # Errors
    /// On I/O failure or when busybox cannot be read.
    pub fn build_temp(&self) -> Result<OciLayout> {
        let tmp = tempfile::Builder::new()
            .prefix("corral-oci-")
            .tempdir()
            .context("create layout tempdir")?;
        let dir = tmp.path().to_path_buf();
        self.build_inner(&dir, Some(tmp))
    }

    fn build_inner(&self, dir: &Path, temp: Option<TempDir>) -> Result<OciLayout> {
        std::fs::create_dir_all(dir.join("blobs/sha256"))
            .with_context(|| format!("create {}", dir.display()))?;
        let mut all = vec![self.base_layer()?];
        all.extend(self.extra_layers.iter().cloned());

        let mut layers = Vec::new();
        let mut history = Vec::new();
        for (i, l) in all.iter().enumerate() {
            let tar = l.to_tar()?;
            let diff_id = sha256_digest(&tar);
            let blob = self.compression.compress(&tar)?;
            let digest = write_blob(dir, &blob)?;
            layers.push(LayerInfo {
                digest,
                diff_id,
                size: blob.len() as u64,
                media_type: self.compression.media_type().to_owned(),
            });
            let created_by = l
                .created_by
                .clone()
                .unwrap_or_else(|| format!("corral-testkit: layer {i}"));
            history.push(json!({"created": FIXED_CREATED, "created_by": created_by}));
        }

        let config = json!({
            "created": FIXED_CREATED,
            "architecture": "amd64",
            "os": "linux",
            "config": self.config.to_json(),
            "rootfs": {
                "type": "layers",
                "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>(),
            },
            "history": history,
        });
        let config_bytes = serde_json::to_vec(&config).context("encode config")?;
        let config_digest = write_blob(dir, &config_bytes)?;

        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_MANIFEST,
            "config": {
                "mediaType": MEDIA_TYPE_CONFIG,
                "digest": config_digest,
                "size": config_bytes.len(),
            },
            "layers": layers.iter().map(|l| json!({
                "mediaType": l.media_type,
                "digest": l.digest,
                "size": l.size,
            })).collect::<Vec<_>>(),
        });
        let manifest_bytes = serde_json::to_vec(&manifest).context("encode manifest")?;
        let manifest_digest = write_blob(dir, &manifest_bytes)?;

        let mut desc = json!({
            "mediaType": MEDIA_TYPE_MANIFEST,
            "digest": manifest_digest,
            "size": manifest_bytes.len(),
            "platform": {"architecture": "amd64", "os": "linux"},
        });
        if let (Some(name), Some(obj)) = (&self.ref_name, desc.as_object_mut()) {
            obj.insert(
                "annotations".into(),
                json!({"org.opencontainers.image.ref.name": name}),
            );
        }
        let index = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_INDEX,
            "manifests": [desc],
        });
        write_file(
            &dir.join("index.json"),
            &serde_json::to_vec(&index).context("encode index")?,
        )?;
        write_file(
            &dir.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;

        Ok(OciLayout {
            dir: dir.to_path_buf(),
            _temp: temp,
            manifest_digest,
            manifest_size: manifest_bytes.len() as u64,
            config_digest,
            layers,
        })
    }
}

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    dir.join("blobs/sha256").join(hex)
}

fn write_blob(dir: &Path, data: &[u8]) -> Result<String> {
    let digest = sha256_digest(data);
    write_file(&blob_path(dir, &digest), data)?;
    Ok(digest)
}

fn write_file(path: &Path, data: &[u8]) -> Result<()> {
    if path.exists() && !path.is_file() {
        bail!("{} exists and is not a file", path.display());
    }
    std::fs::write(path, data).with_context(|| format!("write {}", path.display()))
}
