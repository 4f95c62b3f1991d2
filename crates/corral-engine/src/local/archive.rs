//! `docker save` and `docker load`: choosing images and tags, image records and events,
//! and the bridges between the async API and the blocking tarball code of
//! [`corral_image::archive`].

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use bytes::{Bytes, BytesMut};
use corral_core::{ImageRecord, LayerRecord};
use corral_image::{ArchiveImage, LoadedImage};
use corral_oci::{Digest, Reference};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use super::LocalEngine;
use crate::api::BoxRead;
use crate::error::{Error, Result};

/// Chunks buffered between the tarball thread and the HTTP body.
const PIPE_DEPTH: usize = 16;
/// Bytes per chunk.
const CHUNK: usize = 64 * 1024;

/// A blocking writer feeding an async reader through a bounded channel.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: BytesMut,
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = self.buf.split().freeze();
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "reader went away"))
    }
}

/// A blocking reader drained from a bounded channel an async task fills.
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur.split_to(n));
        Ok(n)
    }
}

impl LocalEngine {
    /// Streams the named images as one tarball. Names are resolved (and blobs checked)
    /// before the first byte, so a bad name is an error, not a truncated stream.
    pub(crate) async fn save_archive(&self, names: &[String]) -> Result<BoxRead> {
        let images = self.archive_selection(names)?;
        let content = self.inner.image_store.content();
        for img in &images {
            let blobs = std::iter::once(img.config_digest.clone()).chain(
                img.layers
                    .iter()
                    .filter_map(|l| Digest::parse(&l.digest).ok()),
            );
            for b in blobs {
                if !content.contains(&b) {
                    return Err(corral_image::Error::BlobNotFound(b.to_string()).into());
                }
            }
        }
        // dockerd logs `save` per image, named by its id.
        for img in &images {
            let id = img.config_digest.to_string();
            let attrs = [("name".to_owned(), id.clone())].into();
            self.inner.events.publish("image", "save", &id, attrs);
        }
        let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(PIPE_DEPTH);
        let store = self.inner.image_store.clone();
        // Ends when the tarball is written or the reader is dropped (a send fails).
        tokio::task::spawn_blocking(move || {
            let w = ChannelWriter {
                tx: tx.clone(),
                buf: BytesMut::with_capacity(CHUNK),
            };
            let result = corral_image::write_archive(&store, &images, w).and_then(|mut w| {
                w.flush()
                    .map_err(|e| corral_image::Error::Task(e.to_string()))
            });
            if let Err(e) = result {
                tracing::warn!(error = %e, "writing image archive");
                let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
            }
        });
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Ok(Box::pin(tokio_util::io::StreamReader::new(stream)))
    }

    /// What `docker save NAMES` writes: each image once, with the tags the names select
    /// (dockerd's rules: `repo` selects all its tags, `repo:tag` that tag, an id none).
    fn archive_selection(&self, names: &[String]) -> Result<Vec<ArchiveImage>> {
        let mut out: Vec<(ImageRecord, Vec<String>)> = Vec::new();
        let mut add = |img: ImageRecord, tag: Option<String>| {
            let slot = match out.iter_mut().position(|(i, _)| i.id == img.id) {
                Some(p) => &mut out[p],
                None => {
                    out.push((img, Vec::new()));
                    let last = out.len() - 1;
                    &mut out[last]
                }
            };
            if let Some(t) = tag {
                if !slot.1.contains(&t) {
                    slot.1.push(t);
                }
            }
        };
        for name in names {
            match Reference::parse_named(name) {
                Ok(r) if r.tag().is_none() && r.digest().is_none() => {
                    let repo = r.familiar_name();
                    let hits: Vec<(ImageRecord, String)> = self
                        .inner
                        .images
                        .read()
                        .values()
                        .flat_map(|i| {
                            i.repo_tags
                                .iter()
                                .filter(|t| {
                                    Reference::parse(t).is_ok_and(|t| t.familiar_name() == repo)
                                })
                                .map(|t| (i.clone(), t.clone()))
                                .collect::<Vec<_>>()
                        })
                        .collect();
                    if hits.is_empty() {
                        add(self.lookup_image(name)?, None);
                    }
                    for (img, t) in hits {
                        add(img, Some(t));
                    }
                }
                Ok(r) if r.tag().is_some() && r.digest().is_none() => {
                    add(self.lookup_image(name)?, Some(r.familiar()));
                }
                _ => add(self.lookup_image(name)?, None),
            }
        }
        out.into_iter()
            .map(|(img, repo_tags)| {
                Ok(ArchiveImage {
                    config_digest: Digest::parse(&img.id)
                        .map_err(|e| Error::Internal(format!("image id {}: {e}", img.id)))?,
                    layers: img.layers,
                    repo_tags,
                })
            })
            .collect()
    }

    /// Loads a tarball; returns `name:tag` for each tag it carried, or the image id for
    /// an image without tags.
    pub(crate) async fn load_archive(&self, tar: BoxRead) -> Result<Vec<String>> {
        let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(PIPE_DEPTH);
        let pump = tokio::spawn(async move {
            let mut tar = tar;
            loop {
                let mut buf = BytesMut::with_capacity(CHUNK);
                match tar.read_buf(&mut buf).await {
                    Ok(0) => break,
                    Ok(_) => {
                        if tx.send(Ok(buf.freeze())).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        break;
                    }
                }
            }
        });
        let known = self.known_layers();
        let store = self.inner.image_store.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            let r = ChannelReader {
                rx,
                cur: Bytes::new(),
            };
            corral_image::load_archive(&store, r, &known)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()));
        pump.abort();
        let loaded = loaded??;
        let mut refs = Vec::new();
        for img in loaded {
            refs.extend(self.record_loaded(img).await?);
        }
        Ok(refs)
    }

    /// Layers of stored images by diff_id, so a load reuses their blobs.
    fn known_layers(&self) -> BTreeMap<String, LayerRecord> {
        self.inner
            .images
            .read()
            .values()
            .flat_map(|i| i.layers.iter().cloned())
            .map(|l| (l.diff_id.clone(), l))
            .collect()
    }

    /// Creates or updates the image record of a loaded image, moving its tags to it, and
    /// publishes dockerd's events (`tag` per tag, then `load`).
    async fn record_loaded(&self, img: LoadedImage) -> Result<Vec<String>> {
        let id = img.config_digest.to_string();
        let existing = self.inner.images.read().get(&id).cloned();
        let mut rec = existing.unwrap_or_else(|| ImageRecord {
            id: id.clone(),
            repo_tags: Vec::new(),
            repo_digests: Vec::new(),
            created: img.created,
            size: img.size,
            config: img.config.clone(),
            layers: img.layers.clone(),
        });
        for t in &img.repo_tags {
            if !rec.repo_tags.contains(t) {
                rec.repo_tags.push(t.clone());
            }
        }
        self.put_image(rec.clone()).await?;
        for t in &img.repo_tags {
            self.image_event(&rec, "tag", t);
        }
        self.image_event(&rec, "load", &rec.id);
        Ok(if img.repo_tags.is_empty() {
            vec![id]
        } else {
            img.repo_tags
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn channel_writer_and_reader_carry_bytes_and_errors() {
        let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(2);
        let writer = tokio::task::spawn_blocking(move || {
            let mut w = ChannelWriter {
                tx: tx.clone(),
                buf: BytesMut::new(),
            };
            let data = vec![7u8; CHUNK * 3 + 5];
            w.write_all(&data).unwrap();
            w.flush().unwrap();
            tx.blocking_send(Err(io::Error::other("boom"))).unwrap();
        });
        let reader = tokio::task::spawn_blocking(move || {
            let mut r = ChannelReader {
                rx,
                cur: Bytes::new(),
            };
            let mut got = Vec::new();
            let err = r.read_to_end(&mut got).unwrap_err();
            (got.len(), err.to_string())
        });
        writer.await.unwrap();
        let (n, err) = reader.await.unwrap();
        assert_eq!(n, CHUNK * 3 + 5);
        assert_eq!(err, "boom");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn channel_writer_fails_once_the_reader_is_gone() {
        let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(1);
        drop(rx);
        let res = tokio::task::spawn_blocking(move || {
            let mut w = ChannelWriter {
                tx,
                buf: BytesMut::new(),
            };
            w.write_all(&[1u8; CHUNK]).and_then(|()| w.flush())
        })
        .await
        .unwrap();
        assert_eq!(res.unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    }
}
