//! The content-addressed blob store: `<root>/blobs/<algorithm>/<hex>`.
//!
//! Blobs are written to a temp file under `<root>/blobs/tmp`, hashed while written,
//! fsynced and renamed into place, so a blob path that exists always holds verified bytes.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use corral_oci::digest::Algorithm;
use corral_oci::Digest;
use futures::{Stream, StreamExt};
use sha2::Digest as _;
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};

/// The `op` of the [`Error::Io`] raised when the input stream itself yields an error.
pub(crate) const STREAM_READ_OP: &str = "download blob into";

/// A running hash for one of the supported digest algorithms.
#[derive(Clone)]
pub(crate) enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub(crate) fn new(algo: Algorithm) -> Self {
        match algo {
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
            _ => Hasher::Sha256(sha2::Sha256::new()),
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub(crate) fn finish(self) -> String {
        match self {
            Hasher::Sha256(h) => format!("sha256:{}", hex::encode(h.finalize())),
            Hasher::Sha512(h) => format!("sha512:{}", hex::encode(h.finalize())),
        }
    }
}

/// Blobs by digest under `<root>/blobs`.
#[derive(Debug, Clone)]
pub struct ContentStore {
    blobs: PathBuf,
    tmp: PathBuf,
}

// === impl ContentStore ===

impl ContentStore {
    /// Opens (creating directories as needed) the store under `root`, removing temp files
    /// left by a crash.
    ///
    /// # Errors
    /// [`Error::Io`] when the directories cannot be created.
    pub fn open(root: &Path) -> Result<Self> {
        let blobs = root.join("blobs");
        let tmp = blobs.join("tmp");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(Error::io("clean temp dir", &tmp))?;
        }
        for dir in [blobs.join("sha256"), blobs.join("sha512"), tmp.clone()] {
            std::fs::create_dir_all(&dir).map_err(Error::io("create dir", &dir))?;
        }
        Ok(ContentStore { blobs, tmp })
    }

    /// Where the blob with `digest` lives (whether or not it exists).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.blobs
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }

    /// Whether the blob is present.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// The blob's size in bytes.
    ///
    /// # Errors
    /// [`Error::BlobNotFound`] when absent.
    pub fn size(&self, digest: &Digest) -> Result<u64> {
        std::fs::metadata(self.path(digest))
            .map(|m| m.len())
            .map_err(|_| Error::BlobNotFound(digest.to_string()))
    }

    /// The blob's bytes (for manifests and configs; layers are read from [`Self::path`]).
    ///
    /// # Errors
    /// [`Error::BlobNotFound`] when absent, [`Error::Io`] on read failure.
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.path(digest);
        std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::BlobNotFound(digest.to_string()),
            _ => Error::Io {
                op: "read blob",
                path,
                source: e,
            },
        })
    }

    /// Stores `data`, verifying it hashes to `expected`. Blocking; for small blobs.
    ///
    /// # Errors
    /// [`Error::DigestMismatch`] (nothing is stored), [`Error::Io`].
    pub fn write_bytes(&self, expected: &Digest, data: &[u8]) -> Result<PathBuf> {
        let mut hasher = Hasher::new(expected.algorithm());
        hasher.update(data);
        let actual = hasher.finish();
        if actual != expected.as_str() {
            return Err(Error::DigestMismatch {
                what: "blob",
                expected: expected.to_string(),
                actual,
            });
        }
        let mut tmp = self.temp_file(expected)?;
        tmp.write_all(data)
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(Error::io("write blob", tmp.path()))?;
        self.persist(tmp, expected)
    }

    /// Stores `data` under its SHA-256 digest and returns that digest.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn put(&self, data: &[u8]) -> Result<Digest> {
        let digest = Digest::sha256_of(data);
        self.write_bytes(&digest, data)?;
        Ok(digest)
    }

    /// Streams a blob into the store, verifying size (when given) and digest as it is
    /// written. `progress` is called with the running byte count after each chunk.
    ///
    /// On any failure the temp file is removed and nothing is left in the store.
    ///
    /// # Errors
    /// [`Error::SizeMismatch`], [`Error::DigestMismatch`], [`Error::Io`] (including
    /// errors the stream yields).
    pub async fn write_stream<S>(
        &self,
        expected: &Digest,
        expected_size: Option<u64>,
        mut stream: S,
        mut progress: impl FnMut(u64) + Send,
    ) -> Result<PathBuf>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Unpin + Send,
    {
        let tmp = self.temp_file(expected)?;
        let tmp_path = tmp.path().to_path_buf();
        let std_file = tmp
            .as_file()
            .try_clone()
            .map_err(Error::io("open blob temp file", &tmp_path))?;
        let mut file = tokio::fs::File::from_std(std_file);
        let mut hasher = Hasher::new(expected.algorithm());
        let mut written: u64 = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(Error::io(STREAM_READ_OP, &tmp_path))?;
            written += chunk.len() as u64;
            if let Some(size) = expected_size {
                if written > size {
                    return Err(Error::SizeMismatch {
                        digest: expected.to_string(),
                        expected: size,
                        actual: written,
                    });
                }
            }
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(Error::io("write blob", &tmp_path))?;
            progress(written);
        }
        if let Some(size) = expected_size {
            if written != size {
                return Err(Error::SizeMismatch {
                    digest: expected.to_string(),
                    expected: size,
                    actual: written,
                });
            }
        }
        let actual = hasher.finish();
        if actual != expected.as_str() {
            return Err(Error::DigestMismatch {
                what: "blob",
                expected: expected.to_string(),
                actual,
            });
        }
        file.flush()
            .await
            .map_err(Error::io("flush blob", &tmp_path))?;
        file.sync_all()
            .await
            .map_err(Error::io("fsync blob", &tmp_path))?;
        drop(file);
        let store = self.clone();
        let digest = expected.clone();
        tokio::task::spawn_blocking(move || store.persist(tmp, &digest))
            .await
            .map_err(|e| Error::Task(e.to_string()))?
    }

    /// Deletes a blob; absent blobs are not an error.
    ///
    /// # Errors
    /// [`Error::Io`] when removal fails.
    pub fn remove(&self, digest: &Digest) -> Result<()> {
        let path = self.path(digest);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Io {
                op: "remove blob",
                path,
                source: e,
            }),
        }
    }

    fn temp_file(&self, digest: &Digest) -> Result<tempfile::NamedTempFile> {
        tempfile::Builder::new()
            .prefix(&format!("{}-", digest.short()))
            .tempfile_in(&self.tmp)
            .map_err(Error::io("create temp file in", &self.tmp))
    }

    fn persist(&self, tmp: tempfile::NamedTempFile, digest: &Digest) -> Result<PathBuf> {
        let dst = self.path(digest);
        tmp.persist(&dst).map_err(|e| Error::Io {
            op: "rename blob into",
            path: dst.clone(),
            source: e.error,
        })?;
        // Make the rename durable too.
        if let Some(dir) = dst.parent() {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(
        parts: &[&'static [u8]],
    ) -> impl Stream<Item = std::io::Result<Bytes>> + Unpin + Send {
        futures::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    fn leftovers(store: &ContentStore) -> usize {
        std::fs::read_dir(&store.tmp).unwrap().count()
            + std::fs::read_dir(store.blobs.join("sha256"))
                .unwrap()
                .count()
    }

    #[tokio::test]
    async fn streams_blob_and_verifies_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let digest = Digest::sha256_of(b"hello world");
        let mut seen = Vec::new();
        let path = store
            .write_stream(&digest, Some(11), chunks(&[b"hello ", b"world"]), |n| {
                seen.push(n)
            })
            .await
            .unwrap();
        assert_eq!(path, dir.path().join("blobs/sha256").join(digest.hex()));
        assert_eq!(seen, vec![6, 11]);
        assert!(store.contains(&digest));
        assert_eq!(store.read(&digest).unwrap(), b"hello world");
        assert_eq!(store.size(&digest).unwrap(), 11);
        store.remove(&digest).unwrap();
        assert!(!store.contains(&digest));
        store.remove(&digest).unwrap();
    }

    #[tokio::test]
    async fn digest_mismatch_names_both_digests_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let expected = Digest::sha256_of(b"expected");
        let err = store
            .write_stream(&expected, None, chunks(&[b"tampered"]), |_| {})
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(expected.as_str()), "{msg}");
        assert!(
            msg.contains(Digest::sha256_of(b"tampered").as_str()),
            "{msg}"
        );
        assert!(matches!(err, Error::DigestMismatch { .. }));
        assert_eq!(leftovers(&store), 0);
        assert!(!store.contains(&expected));
    }

    #[tokio::test]
    async fn size_mismatch_is_detected_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let digest = Digest::sha256_of(b"abcdef");
        let err = store
            .write_stream(&digest, Some(3), chunks(&[b"abc", b"def"]), |_| {})
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::SizeMismatch {
                    expected: 3,
                    actual: 6,
                    ..
                }
            ),
            "{err}"
        );
        let err = store
            .write_stream(&digest, Some(10), chunks(&[b"abcdef"]), |_| {})
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::SizeMismatch {
                    expected: 10,
                    actual: 6,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(leftovers(&store), 0);
    }

    #[tokio::test]
    async fn stream_error_removes_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let digest = Digest::sha256_of(b"x");
        let s = futures::stream::iter(vec![
            Ok(Bytes::from_static(b"partial")),
            Err(std::io::Error::other("connection reset")),
        ]);
        let err = store
            .write_stream(&digest, None, s, |_| {})
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Io { .. }));
        assert_eq!(leftovers(&store), 0);
    }

    #[test]
    fn write_bytes_and_put_verify_content() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let d = store.put(b"{}").unwrap();
        assert_eq!(d, Digest::sha256_of(b"{}"));
        assert_eq!(store.read(&d).unwrap(), b"{}");
        let err = store
            .write_bytes(&Digest::sha256_of(b"a"), b"b")
            .unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }));
        let missing = Digest::sha256_of(b"missing");
        assert!(matches!(store.read(&missing), Err(Error::BlobNotFound(_))));
    }
}
