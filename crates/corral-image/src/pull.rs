//! Pulling images from a registry with `oci-client`: resolve the reference (index →
//! platform manifest), fetch and verify the config, download and unpack each layer once.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use corral_core::LayerRecord;
use corral_oci::media_type::{self, layer_compression};
use corral_oci::{host_platform, select_manifest, Digest, Platform, Reference};
use futures::{StreamExt, TryStreamExt};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use tokio::sync::mpsc::Sender;

use crate::content::{self, Hasher};
use crate::error::{Error, Result};
use crate::lock::AsyncKeyedLocks;
use crate::store::ImageStore;

/// Credentials for a registry, as the engine decodes them from `X-Registry-Auth`.
#[derive(Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RegistryAuth {
    /// No credentials (token auth still runs anonymously when the registry asks).
    #[default]
    Anonymous,
    /// Username and password: basic auth, or exchanged for a bearer token.
    Basic {
        /// User name.
        username: String,
        /// Password or access token.
        password: String,
    },
    /// A registry bearer token used as is (`registrytoken` in `X-Registry-Auth`).
    RegistryToken(String),
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistryAuth::Anonymous => f.write_str("Anonymous"),
            RegistryAuth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            RegistryAuth::RegistryToken(_) => f.write_str("RegistryToken(<redacted>)"),
        }
    }
}

impl RegistryAuth {
    pub(crate) fn to_oci(&self) -> oci_client::secrets::RegistryAuth {
        use oci_client::secrets::RegistryAuth as A;
        match self {
            RegistryAuth::Anonymous => A::Anonymous,
            RegistryAuth::Basic { username, password } => {
                A::Basic(username.clone(), password.clone())
            }
            RegistryAuth::RegistryToken(t) => A::Bearer(t.clone()),
        }
    }
}

/// Progress of a pull; the engine turns these into Docker's JSON progress lines.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PullProgress {
    /// Resolving the reference to a manifest.
    Resolving,
    /// A layer will be fetched (Docker's `Pulling fs layer`).
    PullingFsLayer {
        /// Blob digest of the layer.
        digest: Digest,
    },
    /// The layer is already unpacked locally (`Already exists`).
    LayerAlreadyExists {
        /// Blob digest of the layer.
        digest: Digest,
    },
    /// Bytes of a layer downloaded so far (`Downloading`).
    Downloading {
        /// Blob digest of the layer.
        digest: Digest,
        /// Bytes so far.
        current: u64,
        /// Total bytes.
        total: u64,
    },
    /// The blob is downloaded and verified (`Download complete`).
    DownloadComplete {
        /// Blob digest of the layer.
        digest: Digest,
    },
    /// The layer is being unpacked (`Extracting`).
    Extracting {
        /// Blob digest of the layer.
        digest: Digest,
    },
    /// The layer is unpacked (`Pull complete`).
    PullComplete {
        /// Blob digest of the layer.
        digest: Digest,
    },
    /// All done (`Digest: …`).
    Done {
        /// Digest of the manifest (or index) the reference resolved to.
        manifest_digest: Digest,
    },
}

/// The result of a pull.
#[derive(Debug, Clone, PartialEq)]
pub struct PulledImage {
    /// Digest of the config blob: the image id.
    pub config_digest: Digest,
    /// The raw config JSON.
    pub config: serde_json::Value,
    /// Digest of what the reference resolved to (index or manifest), for `RepoDigests`.
    pub manifest_digest: Digest,
    /// Layers, lowest first.
    pub layers: Vec<LayerRecord>,
    /// `created` from the config (the Unix epoch when absent).
    pub created: DateTime<Utc>,
    /// Sum of uncompressed layer sizes.
    pub size: u64,
}

/// Settings of a [`Puller`].
#[derive(Debug, Clone)]
pub struct PullerConfig {
    /// Registries (`host` or `host:port`) reached over plain HTTP besides loopback ones.
    pub insecure_registries: Vec<String>,
    /// Timeout for establishing a connection.
    pub connect_timeout: Duration,
    /// Longest pause between two reads of a response body.
    pub read_timeout: Duration,
    /// Timeout for each request until its headers (manifest and config bodies included).
    pub request_timeout: Duration,
    /// Layers downloaded at once per pull.
    pub max_concurrent_downloads: usize,
    /// Platform to pick from indexes.
    pub platform: Platform,
}

impl Default for PullerConfig {
    fn default() -> Self {
        PullerConfig {
            insecure_registries: Vec::new(),
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(60),
            max_concurrent_downloads: 3,
            platform: host_platform(),
        }
    }
}

/// Pulls images into an [`ImageStore`]. Cheap to share: clone the `Arc`.
#[derive(Debug)]
pub struct Puller {
    store: Arc<ImageStore>,
    config: PullerConfig,
    blob_locks: AsyncKeyedLocks,
}

/// Per-pull state.
struct Ctx<'a> {
    client: oci_client::Client,
    oci_ref: oci_client::Reference,
    reference: &'a Reference,
    progress: &'a Sender<PullProgress>,
}

impl Ctx<'_> {
    async fn send(&self, p: PullProgress) {
        // A gone receiver (client disconnected) does not stop the pull.
        let _ = self.progress.send(p).await;
    }
}

// === impl Puller ===

impl Puller {
    /// A puller storing into `store`.
    pub fn new(store: Arc<ImageStore>, config: PullerConfig) -> Self {
        Puller {
            store,
            config,
            blob_locks: AsyncKeyedLocks::default(),
        }
    }

    /// Whether `registry` is reached over plain HTTP: loopback hosts and the configured
    /// insecure registries.
    pub fn is_insecure(&self, registry: &str) -> bool {
        is_insecure_registry(registry, &self.config.insecure_registries)
    }

    /// Pulls `reference`: resolves it for the configured platform, verifies every blob's
    /// size and digest (and the manifest's digest when pulling by digest), downloads each
    /// missing layer once even across concurrent pulls, and unpacks it.
    ///
    /// # Errors
    /// [`Error::ManifestNotFound`], [`Error::Unauthorized`], [`Error::Unavailable`],
    /// [`Error::DigestMismatch`], [`Error::SizeMismatch`], [`Error::NoMatchingPlatform`],
    /// [`Error::UnsupportedManifest`], [`Error::InvalidConfig`], [`Error::Io`].
    pub async fn pull(
        &self,
        reference: &Reference,
        auth: &RegistryAuth,
        progress: Sender<PullProgress>,
    ) -> Result<PulledImage> {
        let ctx = Ctx {
            client: self.client(reference)?,
            oci_ref: to_oci_ref(reference),
            reference,
            progress: &progress,
        };
        let oci_auth = auth.to_oci();
        ctx.send(PullProgress::Resolving).await;
        // Authenticate once (anonymous token dance included); later calls reuse it.
        ctx.client
            .store_auth_if_needed(ctx.oci_ref.resolve_registry(), &oci_auth)
            .await;
        let (manifest, manifest_digest) = self.resolve(&ctx, &oci_auth).await?;

        let config_desc = manifest.config();
        let config_digest = descriptor_digest(config_desc)?;
        let config_bytes = self
            .fetch_config(&ctx, &config_digest, config_desc.size())
            .await?;
        let config: serde_json::Value = serde_json::from_slice(&config_bytes)
            .map_err(|e| self.bad_config(&ctx, e.to_string()))?;
        let diff_ids = diff_ids(&config).map_err(|r| self.bad_config(&ctx, r))?;
        if diff_ids.len() != manifest.layers().len() {
            return Err(self.bad_config(
                &ctx,
                format!(
                    "{} diff_ids for {} layers",
                    diff_ids.len(),
                    manifest.layers().len()
                ),
            ));
        }
        for l in manifest.layers() {
            let mt = l.media_type().to_string();
            if layer_compression(&mt).is_none() {
                return Err(Error::UnsupportedMediaType(mt));
            }
        }
        for (l, d) in manifest.layers().iter().zip(&diff_ids) {
            if !self.store.layers().contains(d) {
                ctx.send(PullProgress::PullingFsLayer {
                    digest: descriptor_digest(l)?,
                })
                .await;
            }
        }
        // Futures built in a loop, not in a closure over borrowed items: the closure makes
        // the pull future fail `Send` with a higher-ranked lifetime error (rust#64552).
        let mut jobs = Vec::with_capacity(diff_ids.len());
        for (desc, diff_id) in manifest.layers().iter().zip(diff_ids.iter()) {
            jobs.push(self.pull_layer(&ctx, desc, diff_id));
        }
        let results: Vec<(LayerRecord, u64)> = futures::stream::iter(jobs)
            .buffered(self.config.max_concurrent_downloads.max(1))
            .try_collect()
            .await?;

        ctx.send(PullProgress::Done {
            manifest_digest: manifest_digest.clone(),
        })
        .await;
        let created = config
            .get("created")
            .and_then(serde_json::Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default();
        Ok(PulledImage {
            config_digest,
            config,
            manifest_digest,
            size: results.iter().map(|(_, s)| s).sum(),
            layers: results.into_iter().map(|(l, _)| l).collect(),
            created,
        })
    }

    fn client(&self, reference: &Reference) -> Result<oci_client::Client> {
        let protocol = if self.is_insecure(reference.registry()) {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        };
        let config = ClientConfig {
            protocol,
            connect_timeout: Some(self.config.connect_timeout),
            read_timeout: Some(self.config.read_timeout),
            platform_resolver: None,
            max_concurrent_download: self.config.max_concurrent_downloads.max(1),
            ..ClientConfig::default()
        };
        oci_client::Client::try_from(config).map_err(|e| Error::Registry {
            registry: reference.registry().to_owned(),
            message: format!("building HTTP client: {e}"),
        })
    }

    fn bad_config(&self, ctx: &Ctx<'_>, reason: String) -> Error {
        Error::InvalidConfig {
            reference: ctx.reference.familiar(),
            reason,
        }
    }

    /// Fetches the manifest the reference names, following an index to the platform's
    /// manifest. Returns it with the digest of what the reference resolved to.
    async fn resolve(
        &self,
        ctx: &Ctx<'_>,
        auth: &oci_client::secrets::RegistryAuth,
    ) -> Result<(ImageManifest, Digest)> {
        let bytes = self.fetch_manifest(ctx, &ctx.oci_ref, auth).await?;
        let top_digest = match ctx.reference.digest() {
            Some(want) => {
                verify_digest("manifest", want, &bytes)?;
                want.clone()
            }
            None => Digest::sha256_of(&bytes),
        };
        let unsupported = |reason: String| Error::UnsupportedManifest {
            reference: ctx.reference.familiar(),
            reason,
        };
        let mt = sniff_media_type(&bytes).map_err(unsupported)?;
        let manifest_bytes = if media_type::is_index(&mt) {
            let index: ImageIndex =
                serde_json::from_slice(&bytes).map_err(|e| unsupported(e.to_string()))?;
            let desc = select_manifest(&index, &self.config.platform).ok_or_else(|| {
                Error::NoMatchingPlatform {
                    platform: self.config.platform.to_string(),
                }
            })?;
            let digest = descriptor_digest(desc)?;
            let child = ctx.oci_ref.clone_with_digest(digest.to_string());
            let child_bytes = self.fetch_manifest(ctx, &child, auth).await?;
            if child_bytes.len() as u64 != desc.size() {
                return Err(Error::SizeMismatch {
                    digest: digest.to_string(),
                    expected: desc.size(),
                    actual: child_bytes.len() as u64,
                });
            }
            verify_digest("manifest", &digest, &child_bytes)?;
            let child_mt = sniff_media_type(&child_bytes).map_err(unsupported)?;
            if !media_type::is_manifest(&child_mt) {
                return Err(unsupported(format!(
                    "index entry has media type {child_mt}"
                )));
            }
            child_bytes
        } else if media_type::is_manifest(&mt) {
            bytes
        } else {
            return Err(unsupported(format!("media type {mt} is not supported")));
        };
        let manifest: ImageManifest =
            serde_json::from_slice(&manifest_bytes).map_err(|e| unsupported(e.to_string()))?;
        Ok((manifest, top_digest))
    }

    async fn fetch_manifest(
        &self,
        ctx: &Ctx<'_>,
        oci_ref: &oci_client::Reference,
        auth: &oci_client::secrets::RegistryAuth,
    ) -> Result<bytes::Bytes> {
        let fut = ctx
            .client
            .pull_manifest_raw(oci_ref, auth, media_type::MANIFEST_ACCEPT);
        let (bytes, _) = self
            .timed(ctx, "fetching manifest", fut)
            .await?
            .map_err(|e| map_oci_error(e, ctx.reference, "manifest"))?;
        Ok(bytes)
    }

    async fn fetch_config(&self, ctx: &Ctx<'_>, digest: &Digest, size: u64) -> Result<Vec<u8>> {
        let _g = self.blob_locks.lock(digest.as_str()).await;
        let content = self.store.content();
        if !content.contains(digest) {
            self.download(ctx, digest, size, |_| {}).await?;
        }
        content.read(digest)
    }

    async fn download(
        &self,
        ctx: &Ctx<'_>,
        digest: &Digest,
        size: u64,
        progress: impl FnMut(u64) + Send,
    ) -> Result<()> {
        let fut = ctx.client.pull_blob_stream(&ctx.oci_ref, digest.as_str());
        let stream = self
            .timed(ctx, "requesting blob", fut)
            .await?
            .map_err(|e| map_oci_error(e, ctx.reference, "blob"))?;
        self.store
            .content()
            .write_stream(digest, Some(size), stream, progress)
            .await
            .map_err(|e| stream_error(e, ctx.reference))?;
        Ok(())
    }

    async fn pull_layer(
        &self,
        ctx: &Ctx<'_>,
        desc: &Descriptor,
        diff_id: &Digest,
    ) -> Result<(LayerRecord, u64)> {
        let digest = descriptor_digest(desc)?;
        let media = desc.media_type().to_string();
        let record = LayerRecord {
            digest: digest.to_string(),
            diff_id: diff_id.to_string(),
            size: desc.size(),
            media_type: media.clone(),
        };
        let layers = self.store.layers();
        if layers.contains(diff_id) {
            ctx.send(PullProgress::LayerAlreadyExists { digest }).await;
            return Ok((record, layers.size(diff_id).unwrap_or(0)));
        }
        let _g = self.blob_locks.lock(digest.as_str()).await;
        if layers.contains(diff_id) {
            // Another pull finished it while we waited.
            ctx.send(PullProgress::LayerAlreadyExists { digest }).await;
            return Ok((record, layers.size(diff_id).unwrap_or(0)));
        }
        if !self.store.content().contains(&digest) {
            let total = desc.size();
            ctx.send(PullProgress::Downloading {
                digest: digest.clone(),
                current: 0,
                total,
            })
            .await;
            let step = (total / 50).max(256 * 1024);
            let mut last = 0;
            let tx = ctx.progress.clone();
            let d = digest.clone();
            self.download(ctx, &digest, total, move |n| {
                if n - last >= step || n == total {
                    last = n;
                    // Progress lines are advisory: drop one rather than block the download.
                    let _ = tx.try_send(PullProgress::Downloading {
                        digest: d.clone(),
                        current: n,
                        total,
                    });
                }
            })
            .await?;
        }
        ctx.send(PullProgress::DownloadComplete {
            digest: digest.clone(),
        })
        .await;
        ctx.send(PullProgress::Extracting {
            digest: digest.clone(),
        })
        .await;
        let store = self.store.clone();
        let blob = store.content().path(&digest);
        let diff = diff_id.clone();
        let unpacked =
            tokio::task::spawn_blocking(move || store.layers().unpack(&blob, &media, &diff))
                .await
                .map_err(|e| Error::Task(e.to_string()))??;
        ctx.send(PullProgress::PullComplete { digest }).await;
        Ok((record, unpacked.size))
    }

    async fn timed<F: std::future::Future>(
        &self,
        ctx: &Ctx<'_>,
        what: &str,
        fut: F,
    ) -> Result<F::Output> {
        tokio::time::timeout(self.config.request_timeout, fut)
            .await
            .map_err(|_| Error::Unavailable {
                registry: ctx.reference.registry().to_owned(),
                message: format!(
                    "timed out after {}s {what}",
                    self.config.request_timeout.as_secs()
                ),
            })
    }
}

/// Classifies a failure of the blob stream itself: `oci-client` reports its own digest
/// check and network errors as `io::Error`s inside the stream.
fn stream_error(e: Error, reference: &Reference) -> Error {
    match e {
        Error::Io {
            op: content::STREAM_READ_OP,
            source,
            ..
        } => {
            if let Some(oci_client::errors::DigestError::VerificationError { expected, actual }) =
                source
                    .get_ref()
                    .and_then(|i| i.downcast_ref::<oci_client::errors::DigestError>())
            {
                return Error::DigestMismatch {
                    what: "blob",
                    expected: expected.clone(),
                    actual: actual.clone(),
                };
            }
            Error::Unavailable {
                registry: reference.registry().to_owned(),
                message: format!("reading blob: {}", error_chain(&source)),
            }
        }
        other => other,
    }
}

/// Whether `registry` is reached over plain HTTP: loopback hosts and those in `insecure`
/// (matched as `host:port` or bare `host`), as dockerd treats them.
pub fn is_insecure_registry(registry: &str, insecure: &[String]) -> bool {
    let host = registry_host(registry);
    host == "localhost"
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        || insecure.iter().any(|r| r == registry || r == host)
}

/// `host` of `host[:port]` or `[v6]:port`.
pub(crate) fn registry_host(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.rsplit_once(':').map_or(registry, |(h, _)| h)
}

pub(crate) fn to_oci_ref(r: &Reference) -> oci_client::Reference {
    let (reg, repo) = (r.registry().to_owned(), r.repository().to_owned());
    match (r.tag(), r.digest()) {
        (Some(t), Some(d)) => {
            oci_client::Reference::with_tag_and_digest(reg, repo, t.to_owned(), d.to_string())
        }
        (None, Some(d)) => oci_client::Reference::with_digest(reg, repo, d.to_string()),
        (Some(t), None) => oci_client::Reference::with_tag(reg, repo, t.to_owned()),
        (None, None) => oci_client::Reference::with_tag(reg, repo, "latest".to_owned()),
    }
}

fn descriptor_digest(d: &Descriptor) -> Result<Digest> {
    Ok(Digest::parse(d.digest().as_ref())?)
}

fn verify_digest(what: &'static str, want: &Digest, bytes: &[u8]) -> Result<()> {
    let mut h = Hasher::new(want.algorithm());
    h.update(bytes);
    let actual = h.finish();
    if actual != want.as_str() {
        return Err(Error::DigestMismatch {
            what,
            expected: want.to_string(),
            actual,
        });
    }
    Ok(())
}

/// The manifest's `mediaType`, or a guess from its shape when the field is absent (it is
/// optional in OCI manifests).
fn sniff_media_type(bytes: &[u8]) -> std::result::Result<String, String> {
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if v.get("schemaVersion").and_then(serde_json::Value::as_i64) == Some(1) {
        return Err("schema 1 manifests are not supported".into());
    }
    if let Some(mt) = v.get("mediaType").and_then(serde_json::Value::as_str) {
        return Ok(mt.to_owned());
    }
    if v.get("manifests").is_some() {
        Ok(media_type::OCI_INDEX.to_owned())
    } else if v.get("layers").is_some() {
        Ok(media_type::OCI_MANIFEST.to_owned())
    } else {
        Err("document is neither a manifest nor an index".into())
    }
}

/// `rootfs.diff_ids` of an image config.
fn diff_ids(config: &serde_json::Value) -> std::result::Result<Vec<Digest>, String> {
    let ids = config
        .pointer("/rootfs/diff_ids")
        .and_then(serde_json::Value::as_array)
        .ok_or("missing rootfs.diff_ids")?;
    ids.iter()
        .map(|v| {
            let s = v.as_str().ok_or("diff_id is not a string")?;
            Digest::parse(s).map_err(|e| e.to_string())
        })
        .collect()
}

/// Classifies an `oci-client` failure the way Docker reports it.
pub(crate) fn map_oci_error(
    e: OciDistributionError,
    reference: &Reference,
    what: &'static str,
) -> Error {
    let registry = reference.registry().to_owned();
    let not_found = || Error::ManifestNotFound {
        reference: reference.familiar(),
    };
    let unauthorized = |message: String| Error::Unauthorized {
        reference: reference.familiar(),
        message,
    };
    match e {
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            let message = envelope
                .errors
                .iter()
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join("; ");
            if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::NotFound
                )
            }) && what == "manifest"
            {
                not_found()
            } else if codes.iter().any(|c| matches!(c, OciErrorCode::BlobUnknown)) {
                Error::Registry {
                    registry,
                    message: format!("{what} unknown to registry: {message}"),
                }
            } else if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                unauthorized(message)
            } else {
                Error::Registry { registry, message }
            }
        }
        OciDistributionError::ImageManifestNotFoundError(_) => not_found(),
        OciDistributionError::ServerError { code: 404, .. } if what == "manifest" => not_found(),
        OciDistributionError::ServerError {
            code: 401 | 403,
            message,
            ..
        } => unauthorized(message),
        OciDistributionError::UnauthorizedError { url } => {
            unauthorized(format!("authentication required for {url}"))
        }
        OciDistributionError::AuthenticationFailure(m) => unauthorized(m),
        OciDistributionError::DigestError(oci_client::errors::DigestError::VerificationError {
            expected,
            actual,
        }) => Error::DigestMismatch {
            what,
            expected,
            actual,
        },
        e @ OciDistributionError::RequestError(_) => Error::Unavailable {
            registry,
            message: error_chain(&e),
        },
        other => Error::Registry {
            registry,
            message: error_chain(&other),
        },
    }
}

/// `e: cause: cause`, so a connect error shows the refused address or DNS failure.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_core::error::Classify;
    use corral_core::ErrorKind;

    fn puller(insecure: &[&str]) -> (tempfile::TempDir, Puller) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(ImageStore::open(dir.path()).unwrap());
        let config = PullerConfig {
            insecure_registries: insecure.iter().map(|s| s.to_string()).collect(),
            ..PullerConfig::default()
        };
        (dir, Puller::new(store, config))
    }

    #[test]
    fn loopback_and_configured_registries_are_insecure() {
        let (_d, p) = puller(&["registry.internal:5000", "plain.example"]);
        for r in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
        ] {
            assert!(p.is_insecure(r), "{r}");
        }
        assert!(p.is_insecure("registry.internal:5000"));
        assert!(p.is_insecure("plain.example:443"));
        for r in [
            "docker.io",
            "registry.internal:5001",
            "10.0.0.1:5000",
            "localhost.example",
        ] {
            assert!(!p.is_insecure(r), "{r}");
        }
    }

    #[test]
    fn sniffs_media_types_and_rejects_schema1() {
        assert_eq!(
            sniff_media_type(br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}"#).unwrap(),
            media_type::DOCKER_MANIFEST
        );
        assert_eq!(
            sniff_media_type(br#"{"schemaVersion":2,"manifests":[]}"#).unwrap(),
            media_type::OCI_INDEX
        );
        assert_eq!(
            sniff_media_type(br#"{"schemaVersion":2,"layers":[]}"#).unwrap(),
            media_type::OCI_MANIFEST
        );
        assert!(sniff_media_type(br#"{"schemaVersion":1,"fsLayers":[]}"#)
            .unwrap_err()
            .contains("schema 1"));
        assert!(sniff_media_type(b"not json").is_err());
    }

    #[test]
    fn reads_diff_ids_from_config() {
        let d = Digest::sha256_of(b"x");
        let cfg = serde_json::json!({"rootfs": {"type": "layers", "diff_ids": [d.to_string()]}});
        assert_eq!(diff_ids(&cfg).unwrap(), vec![d]);
        assert!(diff_ids(&serde_json::json!({})).is_err());
        assert!(diff_ids(&serde_json::json!({"rootfs": {"diff_ids": ["sha256:bad"]}})).is_err());
    }

    #[test]
    fn maps_registry_errors_to_kinds() {
        let r = Reference::parse("busybox:nope").unwrap();
        let env = |code: &str| OciDistributionError::RegistryError {
            envelope: serde_json::from_value(
                serde_json::json!({"errors": [{"code": code, "message": "m"}]}),
            )
            .unwrap(),
            url: "u".into(),
        };
        let e = map_oci_error(env("MANIFEST_UNKNOWN"), &r, "manifest");
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(
            e.to_string(),
            "manifest for busybox:nope not found: manifest unknown"
        );
        assert_eq!(
            map_oci_error(env("NAME_UNKNOWN"), &r, "manifest").kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            map_oci_error(env("UNAUTHORIZED"), &r, "manifest").kind(),
            ErrorKind::Unauthorized
        );
        assert_eq!(
            map_oci_error(env("DENIED"), &r, "blob").kind(),
            ErrorKind::Unauthorized
        );
        assert_eq!(
            map_oci_error(
                OciDistributionError::UnauthorizedError { url: "u".into() },
                &r,
                "manifest"
            )
            .kind(),
            ErrorKind::Unauthorized
        );
        let e = map_oci_error(
            OciDistributionError::DigestError(oci_client::errors::DigestError::VerificationError {
                expected: "sha256:a".into(),
                actual: "sha256:b".into(),
            }),
            &r,
            "blob",
        );
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(
            map_oci_error(
                OciDistributionError::ServerError {
                    code: 404,
                    url: "u".into(),
                    message: String::new()
                },
                &r,
                "manifest"
            )
            .kind(),
            ErrorKind::NotFound
        );
    }

    #[tokio::test]
    async fn connection_refused_is_unavailable() {
        // Bind then drop a listener to get a port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (_d, p) = puller(&[]);
        let r = Reference::parse(&format!("127.0.0.1:{port}/x:y")).unwrap();
        let (tx, _rx) = tokio::sync::mpsc::channel(16);
        let err = p.pull(&r, &RegistryAuth::Anonymous, tx).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    }

    /// Engines call `pull` from `Send` futures (async-trait, `tokio::spawn`).
    #[test]
    fn pull_future_is_send() {
        fn is_send<T: Send>(_: T) {}
        let (_d, p) = puller(&[]);
        let r = Reference::parse("localhost:1/x").unwrap();
        let (tx, _rx) = tokio::sync::mpsc::channel(1);
        is_send(p.pull(&r, &RegistryAuth::Anonymous, tx));
    }

    #[test]
    fn auth_debug_redacts_secrets() {
        let a = RegistryAuth::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{a:?}").contains("hunter2"));
        assert!(!format!("{:?}", RegistryAuth::RegistryToken("tok".into())).contains("tok"));
    }

    #[test]
    fn builds_oci_references() {
        let r = to_oci_ref(&Reference::parse("busybox").unwrap());
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("docker.io", "library/busybox", Some("latest"))
        );
        assert_eq!(r.resolve_registry(), "index.docker.io");
        let d = Digest::sha256_of(b"m");
        let r = to_oci_ref(&Reference::parse(&format!("localhost:5000/a@{d}")).unwrap());
        assert_eq!(r.digest(), Some(d.as_str()));
        assert_eq!(registry_host("[::1]:5000"), "::1");
        assert_eq!(registry_host("h:1"), "h");
    }
}
