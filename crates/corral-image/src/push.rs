//! Pushing a stored image to a registry with `oci-client`: each layer blob (as stored,
//! compressed) unless the registry has it, the config blob, then a manifest built from
//! the layer records (Docker schema 2 when every layer has a Docker media type, OCI
//! otherwise).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use corral_core::LayerRecord;
use corral_oci::media_type;
use corral_oci::{Digest, Reference};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use serde::Serialize;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc::Sender;

use crate::error::{Error, Result};
use crate::pull::{is_insecure_registry, map_oci_error, to_oci_ref, PullerConfig, RegistryAuth};
use crate::store::ImageStore;

/// Bytes read from a blob file per upload chunk.
const CHUNK: usize = 256 * 1024;

/// Progress of a push; the engine turns these into Docker's JSON progress lines. Layers
/// are named by diff_id, as dockerd's push output does.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushProgress {
    /// The layer is queued (`Preparing`).
    Preparing {
        /// The layer's diff_id.
        diff_id: Digest,
    },
    /// The registry already has the blob (`Layer already exists`).
    LayerAlreadyExists {
        /// The layer's diff_id.
        diff_id: Digest,
    },
    /// Bytes of the blob sent so far (`Pushing`).
    Pushing {
        /// The layer's diff_id.
        diff_id: Digest,
        /// Bytes so far.
        current: u64,
        /// Blob size.
        total: u64,
    },
    /// The blob is uploaded (`Pushed`).
    Pushed {
        /// The layer's diff_id.
        diff_id: Digest,
    },
}

/// The result of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedImage {
    /// Digest of the manifest as pushed.
    pub manifest_digest: Digest,
    /// Size of the manifest in bytes.
    pub manifest_size: u64,
    /// The manifest's media type.
    pub media_type: &'static str,
}

/// Pushes images from an [`ImageStore`]. Uses the same settings as pulls (insecure
/// registries, timeouts).
#[derive(Debug)]
pub struct Pusher {
    store: Arc<ImageStore>,
    config: PullerConfig,
}

// === impl Pusher ===

impl Pusher {
    /// A pusher reading blobs from `store`.
    pub fn new(store: Arc<ImageStore>, config: PullerConfig) -> Self {
        Pusher { store, config }
    }

    /// Pushes the image with config blob `config_digest` and `layers` (lowest first) as
    /// `reference`, which must carry a tag. Blobs the registry already has are skipped.
    ///
    /// # Errors
    /// [`Error::BlobNotFound`] when a blob is missing locally (checked before anything is
    /// sent); [`Error::Unauthorized`], [`Error::Unavailable`], [`Error::Registry`] as
    /// the registry answers; [`Error::UnsupportedMediaType`] for a layer type that has no
    /// manifest form.
    pub async fn push(
        &self,
        reference: &Reference,
        config_digest: &Digest,
        layers: &[LayerRecord],
        auth: &RegistryAuth,
        progress: Sender<PushProgress>,
    ) -> Result<PushedImage> {
        let content = self.store.content();
        let config_size = content.size(config_digest)?;
        let mut plan = Vec::with_capacity(layers.len());
        for l in layers {
            let digest = Digest::parse(&l.digest)?;
            let diff_id = Digest::parse(&l.diff_id)?;
            let size = content.size(&digest)?;
            plan.push((digest, diff_id, size));
        }
        let (manifest, mt) = image_manifest(config_digest, config_size, layers)?;

        let client = self.client(reference)?;
        let oci_ref = to_oci_ref(reference);
        client
            .store_auth_if_needed(oci_ref.resolve_registry(), &auth.to_oci())
            .await;
        for (_, diff_id, _) in &plan {
            let _ = progress
                .send(PushProgress::Preparing {
                    diff_id: diff_id.clone(),
                })
                .await;
        }
        for (digest, diff_id, size) in &plan {
            if self.exists(&client, &oci_ref, reference, digest).await? {
                let _ = progress
                    .send(PushProgress::LayerAlreadyExists {
                        diff_id: diff_id.clone(),
                    })
                    .await;
                continue;
            }
            self.upload_file(
                &client, &oci_ref, reference, digest, diff_id, *size, &progress,
            )
            .await?;
            let _ = progress
                .send(PushProgress::Pushed {
                    diff_id: diff_id.clone(),
                })
                .await;
        }
        if !self
            .exists(&client, &oci_ref, reference, config_digest)
            .await?
        {
            let data = content.read(config_digest)?;
            client
                .push_blob(&oci_ref, data, config_digest.as_str())
                .await
                .map_err(|e| push_error(e, reference, "config blob"))?;
        }
        let manifest_digest = Digest::sha256_of(&manifest);
        let manifest_size = manifest.len() as u64;
        let content_type = reqwest::header::HeaderValue::from_static(mt);
        let fut = client.push_manifest_raw(&oci_ref, manifest, content_type);
        self.timed(reference, "pushing manifest", fut)
            .await?
            .map_err(|e| push_error(e, reference, "manifest"))?;
        tracing::info!(reference = %reference.familiar(), digest = %manifest_digest, "image pushed");
        Ok(PushedImage {
            manifest_digest,
            manifest_size,
            media_type: mt,
        })
    }

    fn client(&self, reference: &Reference) -> Result<oci_client::Client> {
        let protocol =
            if is_insecure_registry(reference.registry(), &self.config.insecure_registries) {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            };
        let config = ClientConfig {
            protocol,
            connect_timeout: Some(self.config.connect_timeout),
            read_timeout: Some(self.config.read_timeout),
            platform_resolver: None,
            // One PUT per blob, streamed from the file: no per-chunk round trips.
            use_monolithic_push: true,
            ..ClientConfig::default()
        };
        oci_client::Client::try_from(config).map_err(|e| Error::Registry {
            registry: reference.registry().to_owned(),
            message: format!("building HTTP client: {e}"),
        })
    }

    async fn exists(
        &self,
        client: &oci_client::Client,
        oci_ref: &oci_client::Reference,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<bool> {
        let fut = client.blob_exists(oci_ref, digest.as_str());
        self.timed(reference, "checking blob", fut)
            .await?
            .map_err(|e| push_error(e, reference, "blob"))
    }

    #[allow(clippy::too_many_arguments)]
    async fn upload_file(
        &self,
        client: &oci_client::Client,
        oci_ref: &oci_client::Reference,
        reference: &Reference,
        digest: &Digest,
        diff_id: &Digest,
        size: u64,
        progress: &Sender<PushProgress>,
    ) -> Result<()> {
        let path = self.store.content().path(digest);
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(Error::io("open blob", &path))?;
        let tx = progress.clone();
        let diff = diff_id.clone();
        let step = (size / 50).max(512 * 1024);
        let stream = futures::stream::unfold((file, 0u64, 0u64), move |(mut file, sent, last)| {
            let tx = tx.clone();
            let diff = diff.clone();
            async move {
                let mut buf = vec![0u8; CHUNK];
                match file.read(&mut buf).await {
                    Ok(0) => None,
                    Ok(n) => {
                        buf.truncate(n);
                        let sent = sent + n as u64;
                        let mut last = last;
                        if sent - last >= step || sent == size {
                            last = sent;
                            // Advisory: never block the upload on a slow reader.
                            let _ = tx.try_send(PushProgress::Pushing {
                                diff_id: diff,
                                current: sent,
                                total: size,
                            });
                        }
                        Some((Ok(Bytes::from(buf)), (file, sent, last)))
                    }
                    Err(e) => Some((Err(OciDistributionError::IoError(e)), (file, sent, last))),
                }
            }
        });
        client
            .push_blob_stream(oci_ref, stream, digest.as_str(), Some(size))
            .await
            .map_err(|e| push_error(e, reference, "blob"))?;
        Ok(())
    }

    async fn timed<F: std::future::Future>(
        &self,
        reference: &Reference,
        what: &str,
        fut: F,
    ) -> Result<F::Output> {
        let limit: Duration = self.config.request_timeout;
        tokio::time::timeout(limit, fut)
            .await
            .map_err(|_| Error::Unavailable {
                registry: reference.registry().to_owned(),
                message: format!("timed out after {}s {what}", limit.as_secs()),
            })
    }
}

/// Classifies a push failure; "not found" answers from the registry are refusals here,
/// not missing manifests.
fn push_error(e: OciDistributionError, reference: &Reference, what: &'static str) -> Error {
    // `blob_exists` reports a refused HEAD as a bare HTTP status error.
    if let OciDistributionError::RequestError(r) = &e {
        if let Some(s) = r.status().filter(|s| matches!(s.as_u16(), 401 | 403)) {
            return Error::Unauthorized {
                reference: reference.familiar(),
                message: format!("{s} checking {what}"),
            };
        }
    }
    match map_oci_error(e, reference, what) {
        Error::ManifestNotFound { .. } => Error::Registry {
            registry: reference.registry().to_owned(),
            message: format!("pushing {what} to {}: not found", reference.familiar()),
        },
        other => other,
    }
}

/// A descriptor in Docker's field order (`mediaType`, `size`, `digest`).
#[derive(Serialize)]
struct Descriptor<'a> {
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    size: u64,
    digest: &'a str,
}

/// An image manifest in Docker's field order.
#[derive(Serialize)]
struct Manifest<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    config: Descriptor<'a>,
    layers: Vec<Descriptor<'a>>,
}

/// Builds the manifest for a stored image: Docker schema 2 when every layer has a Docker
/// media type (or there are none), OCI otherwise (Docker layer types mapped to their OCI
/// equivalents). Returns the JSON bytes and the manifest media type.
///
/// Docker manifests are indented with three spaces, as dockerd's distribution code
/// writes them, so an image dockerd pushed keeps its manifest digest when pushed again.
///
/// # Errors
/// [`Error::UnsupportedMediaType`] for a layer type with no equivalent,
/// [`Error::Oci`] for a malformed digest.
pub fn image_manifest(
    config_digest: &Digest,
    config_size: u64,
    layers: &[LayerRecord],
) -> Result<(Vec<u8>, &'static str)> {
    let docker = layers
        .iter()
        .all(|l| l.media_type.starts_with("application/vnd.docker."));
    let (mt, config_mt) = if docker {
        (media_type::DOCKER_MANIFEST, media_type::DOCKER_CONFIG)
    } else {
        (media_type::OCI_MANIFEST, media_type::OCI_CONFIG)
    };
    let mut descs = Vec::with_capacity(layers.len());
    for l in layers {
        Digest::parse(&l.digest)?;
        let layer_mt = if docker {
            l.media_type.as_str()
        } else {
            oci_layer_type(&l.media_type)?
        };
        descs.push(Descriptor {
            media_type: layer_mt,
            size: l.size,
            digest: &l.digest,
        });
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: mt,
        config: Descriptor {
            media_type: config_mt,
            size: config_size,
            digest: config_digest.as_str(),
        },
        layers: descs,
    };
    let mut bytes = Vec::new();
    let written = if docker {
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"   ");
        let mut ser = serde_json::Serializer::with_formatter(&mut bytes, fmt);
        manifest.serialize(&mut ser)
    } else {
        manifest.serialize(&mut serde_json::Serializer::new(&mut bytes))
    };
    written.map_err(|e| Error::InvalidConfig {
        reference: config_digest.to_string(),
        reason: format!("serialising manifest: {e}"),
    })?;
    Ok((bytes, mt))
}

fn oci_layer_type(mt: &str) -> Result<&'static str> {
    use corral_oci::media_type::Compression;
    if mt.starts_with("application/vnd.oci.") {
        return match media_type::layer_compression(mt) {
            Some(_) => Ok(match mt {
                media_type::OCI_LAYER_NONDIST_TAR => media_type::OCI_LAYER_NONDIST_TAR,
                media_type::OCI_LAYER_NONDIST_GZIP => media_type::OCI_LAYER_NONDIST_GZIP,
                media_type::OCI_LAYER_NONDIST_ZSTD => media_type::OCI_LAYER_NONDIST_ZSTD,
                media_type::OCI_LAYER_GZIP => media_type::OCI_LAYER_GZIP,
                media_type::OCI_LAYER_ZSTD => media_type::OCI_LAYER_ZSTD,
                _ => media_type::OCI_LAYER_TAR,
            }),
            None => Err(Error::UnsupportedMediaType(mt.to_owned())),
        };
    }
    match media_type::layer_compression(mt) {
        Some(Compression::Gzip) => Ok(media_type::OCI_LAYER_GZIP),
        Some(Compression::Zstd) => Ok(media_type::OCI_LAYER_ZSTD),
        Some(_) => Ok(media_type::OCI_LAYER_TAR),
        None => Err(Error::UnsupportedMediaType(mt.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(data: &[u8], mt: &str) -> LayerRecord {
        LayerRecord {
            digest: Digest::sha256_of(data).to_string(),
            diff_id: Digest::sha256_of(b"diff").to_string(),
            size: data.len() as u64,
            media_type: mt.to_owned(),
        }
    }

    #[test]
    fn docker_layers_make_a_schema2_manifest() {
        let cfg = Digest::sha256_of(b"{}");
        let l = layer(b"gz", media_type::DOCKER_LAYER_GZIP);
        let (bytes, mt) = image_manifest(&cfg, 2, std::slice::from_ref(&l)).unwrap();
        assert_eq!(mt, media_type::DOCKER_MANIFEST);
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["schemaVersion"], 2);
        assert_eq!(v["mediaType"], media_type::DOCKER_MANIFEST);
        assert_eq!(v["config"]["mediaType"], media_type::DOCKER_CONFIG);
        assert_eq!(v["config"]["digest"], cfg.as_str());
        assert_eq!(v["config"]["size"], 2);
        assert_eq!(v["layers"][0]["digest"], l.digest.as_str());
        assert_eq!(v["layers"][0]["size"], 2);
        assert_eq!(v["layers"][0]["mediaType"], media_type::DOCKER_LAYER_GZIP);
    }

    #[test]
    fn docker_manifest_matches_what_dockerd_pushed_byte_for_byte() {
        // A manifest dockerd 20.10 pushed (fetched back from the registry).
        let cfg = Digest::parse(
            "sha256:2939172c842b97157ba9fddadb2aeb41b969e5885fa952b6a7c7601b4f320d42",
        )
        .unwrap();
        let l = LayerRecord {
            digest: "sha256:19bf2e593d7a34942faeee7ac1c4c3d523cd843c5aa3575053fc93f95cbcf0bd"
                .into(),
            diff_id: Digest::sha256_of(b"unused").to_string(),
            size: 1_064_477,
            media_type: media_type::DOCKER_LAYER_GZIP.into(),
        };
        let (bytes, _) = image_manifest(&cfg, 897, &[l]).unwrap();
        assert_eq!(
            Digest::sha256_of(&bytes).as_str(),
            "sha256:1765d8374c0593fe2b40b6c0d39f7ab5c7690e4df2f1590f6e1cc71828629120",
            "{}",
            String::from_utf8_lossy(&bytes)
        );
    }

    #[test]
    fn oci_or_mixed_layers_make_an_oci_manifest() {
        let cfg = Digest::sha256_of(b"{}");
        let layers = [
            layer(b"a", media_type::OCI_LAYER_GZIP),
            layer(b"b", media_type::DOCKER_LAYER_GZIP),
            layer(b"c", media_type::OCI_LAYER_ZSTD),
        ];
        let (bytes, mt) = image_manifest(&cfg, 2, &layers).unwrap();
        assert_eq!(mt, media_type::OCI_MANIFEST);
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["config"]["mediaType"], media_type::OCI_CONFIG);
        let types: Vec<&str> = v["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["mediaType"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                media_type::OCI_LAYER_GZIP,
                media_type::OCI_LAYER_GZIP,
                media_type::OCI_LAYER_ZSTD
            ]
        );
    }

    #[test]
    fn unknown_layer_type_is_rejected() {
        let cfg = Digest::sha256_of(b"{}");
        let err = image_manifest(&cfg, 2, &[layer(b"x", "application/x-weird")]).unwrap_err();
        assert!(matches!(err, Error::UnsupportedMediaType(_)), "{err}");
    }

    #[tokio::test]
    async fn missing_blob_fails_before_contacting_the_registry() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(ImageStore::open(dir.path()).unwrap());
        let cfg = store.content().put(b"{}").unwrap();
        let p = Pusher::new(store, PullerConfig::default());
        // Port 1 on loopback: nothing listens, but we must not even get that far.
        let r = Reference::parse("127.0.0.1:1/x:y").unwrap();
        let (tx, _rx) = tokio::sync::mpsc::channel(8);
        let err = p
            .push(
                &r,
                &cfg,
                &[layer(b"absent", media_type::DOCKER_LAYER_GZIP)],
                &RegistryAuth::Anonymous,
                tx,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::BlobNotFound(_)), "{err}");
    }
}
