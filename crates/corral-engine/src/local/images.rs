//! Image operations: pull, tag, remove, prune, history.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use corral_core::ImageRecord;
use corral_image::{PullProgress, RegistryAuth};
use corral_oci::{Digest, Reference};
use tokio::sync::mpsc;

use super::LocalEngine;
use crate::api::{Credentials, HistoryEntry, ImageDeleted, Progress};
use crate::error::{Error, Result};

fn short(d: &Digest) -> String {
    d.hex().chars().take(12).collect()
}

/// Docker's progress line for one puller event.
fn progress_of(p: &PullProgress, tag: &str, repo: &str) -> Option<Progress> {
    let line = |id: String, status: &str, current| Progress {
        id,
        status: status.to_owned(),
        current,
    };
    Some(match p {
        PullProgress::Resolving => return None,
        PullProgress::PullingFsLayer { digest } => line(short(digest), "Pulling fs layer", None),
        PullProgress::LayerAlreadyExists { digest } => line(short(digest), "Already exists", None),
        PullProgress::Downloading {
            digest,
            current,
            total,
        } => line(short(digest), "Downloading", Some((*current, *total))),
        PullProgress::DownloadComplete { digest } => line(short(digest), "Download complete", None),
        PullProgress::Extracting { digest } => line(short(digest), "Extracting", None),
        PullProgress::PullComplete { digest } => line(short(digest), "Pull complete", None),
        PullProgress::Done { manifest_digest } => {
            line(String::new(), &format!("Digest: {manifest_digest}"), None)
        }
        #[allow(unreachable_patterns)]
        _ => {
            let _ = (tag, repo);
            return None;
        }
    })
}

pub(crate) fn registry_auth(c: &Credentials) -> RegistryAuth {
    if !c.identity_token.is_empty() {
        RegistryAuth::RegistryToken(c.identity_token.clone())
    } else if !c.username.is_empty() {
        RegistryAuth::Basic {
            username: c.username.clone(),
            password: c.password.clone(),
        }
    } else {
        RegistryAuth::Anonymous
    }
}

impl LocalEngine {
    pub(crate) async fn pull(
        &self,
        reference: &str,
        creds: Credentials,
        progress: mpsc::Sender<Progress>,
    ) -> Result<ImageRecord> {
        let r = Reference::parse(reference).map_err(|e| Error::InvalidInput(e.to_string()))?;
        let r = if r.tag().is_none() && r.digest().is_none() {
            r.with_tag("latest")
                .map_err(|e| Error::InvalidInput(e.to_string()))?
        } else {
            r
        };
        let (tx, mut rx) = mpsc::channel::<PullProgress>(64);
        let tag_label = r
            .tag()
            .map(str::to_owned)
            .or_else(|| r.digest().map(|d| d.to_string()))
            .unwrap_or_default();
        let repo = r.familiar_name();
        let fwd_progress = progress.clone();
        let (tag2, repo2) = (tag_label.clone(), repo.clone());
        let forward = tokio::spawn(async move {
            let mut announced = false;
            while let Some(p) = rx.recv().await {
                // dockerd says "Pulling from" once the manifest resolved.
                if !announced && !matches!(p, PullProgress::Resolving) {
                    announced = true;
                    let _ = fwd_progress
                        .send(Progress {
                            id: tag2.clone(),
                            status: format!("Pulling from {}", repo2_path(&repo2)),
                            current: None,
                        })
                        .await;
                }
                if let Some(line) = progress_of(&p, &tag2, &repo2) {
                    let _ = fwd_progress.send(line).await;
                }
            }
        });
        let pulled = self.inner.puller.pull(&r, &registry_auth(&creds), tx).await;
        let _ = forward.await;
        let pulled = pulled.map_err(|e| {
            use corral_core::error::Classify;
            if e.kind() != corral_core::ErrorKind::Unauthorized {
                return Error::from(e);
            }
            // dockerd reports a registry's refusal during pull as a plain failure (500),
            // not 401: the docker CLI would otherwise prompt for a login interactively.
            if registry_auth(&creds) == RegistryAuth::Anonymous {
                Error::Internal(format!("{}: no basic auth credentials", r.registry()))
            } else {
                Error::Internal(e.to_string())
            }
        })?;
        let id = pulled.config_digest.to_string();
        let existed = self.inner.images.read().get(&id).cloned();
        let mut rec = existed.clone().unwrap_or_else(|| ImageRecord {
            id: id.clone(),
            repo_tags: Vec::new(),
            repo_digests: Vec::new(),
            created: pulled.created,
            size: pulled.size,
            config: pulled.config.clone(),
            layers: pulled.layers.clone(),
        });
        let digest_ref = format!("{}@{}", r.familiar_name(), pulled.manifest_digest);
        let mut changed = existed.is_none();
        if !rec.repo_digests.contains(&digest_ref) {
            rec.repo_digests.push(digest_ref);
            changed = true;
        }
        if r.tag().is_some() {
            let t = r.familiar();
            if !rec.repo_tags.contains(&t) {
                rec.repo_tags.push(t);
                changed = true;
            }
        }
        let newer = changed;
        if changed {
            self.put_image(rec.clone()).await?;
        }
        let what = if r.digest().is_some() {
            r.familiar_name() + "@" + &tag_label
        } else {
            r.familiar()
        };
        let status = if newer {
            format!("Status: Downloaded newer image for {what}")
        } else {
            format!("Status: Image is up to date for {what}")
        };
        let _ = progress
            .send(Progress {
                id: String::new(),
                status,
                current: None,
            })
            .await;
        self.image_event(&rec, "pull", &r.familiar());
        Ok(rec)
    }

    /// Stores an image record (moving its tags off other images) and refreshes the cache.
    pub(crate) async fn put_image(&self, rec: ImageRecord) -> Result<()> {
        let store = self.inner.store.clone();
        let rec2 = rec.clone();
        let changed = tokio::task::spawn_blocking(move || store.put_image(&rec2))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        let mut images = self.inner.images.write();
        for c in changed {
            images.insert(c.id.clone(), c);
        }
        images.insert(rec.id.clone(), rec);
        Ok(())
    }

    pub(crate) fn image_event(&self, img: &ImageRecord, action: &str, name: &str) {
        let mut attrs = std::collections::BTreeMap::new();
        attrs.insert("name".to_owned(), name.to_owned());
        let actor = if action == "pull" || action == "push" {
            name
        } else {
            img.id.as_str()
        };
        self.inner.events.publish("image", action, actor, attrs);
    }

    pub(crate) async fn tag(&self, name: &str, repo: &str, tag: &str) -> Result<()> {
        let mut img = self.lookup_image(name)?;
        let r = Reference::parse(&format!("{repo}:{tag}"))
            .map_err(|e| Error::InvalidInput(e.to_string()))?;
        let t = r.familiar();
        if !img.repo_tags.contains(&t) {
            img.repo_tags.push(t.clone());
        }
        self.put_image(img.clone()).await?;
        self.image_event(&img, "tag", &t);
        Ok(())
    }

    /// A container using image `id`, running ones first: (short id, running).
    fn image_user(&self, id: &str) -> Option<(String, bool)> {
        let all = self.inner.containers.read();
        let mut users: Vec<(String, bool)> = all
            .values()
            .filter_map(|e| {
                let r = e.record.lock();
                (r.image_id == id).then(|| (r.id.short().to_owned(), r.state.status.is_alive()))
            })
            .collect();
        users.sort_by_key(|(_, running)| !running);
        users.into_iter().next()
    }

    /// `docker rmi`, following dockerd's `ImageDelete`: removing by reference untags and
    /// deletes the image only with its last reference; removing by id deletes it. A running
    /// user blocks deletion even with force; a stopped one unless forced.
    pub(crate) async fn remove_image(&self, name: &str, force: bool) -> Result<Vec<ImageDeleted>> {
        let img = self.lookup_image(name)?;
        let short = img.id.trim_start_matches("sha256:")[..12].to_owned();
        let mut out = Vec::new();
        let by_id = {
            let hex = name.trim_start_matches("sha256:");
            !hex.is_empty()
                && hex.bytes().all(|b| b.is_ascii_hexdigit())
                && img.id.trim_start_matches("sha256:").starts_with(hex)
        };
        let mut rec = img.clone();
        if !by_id {
            let r = Reference::parse(name).map_err(|e| Error::InvalidInput(e.to_string()))?;
            // dockerd refuses only when this is the image's single reference (its
            // `isSingleReference`): another tag keeps the image named.
            if !force && single_reference(&img) {
                if let Some((cid, _)) = self.image_user(&img.id) {
                    return Err(Error::Conflict(format!(
                        "conflict: unable to remove repository reference \"{name}\" (must force) - container {cid} is using its referenced image {short}"
                    )));
                }
            }
            let removed = match r.digest() {
                Some(d) => format!("{}@{}", r.familiar_name(), d),
                None => r.familiar(),
            };
            rec.repo_tags.retain(|t| *t != removed);
            rec.repo_digests.retain(|t| *t != removed);
            out.push(ImageDeleted::Untagged(removed.clone()));
            // dockerd names the image id, not the reference, in `untag` events.
            self.image_event(&rec, "untag", &rec.id);
            // Digest references of a repository go with its last tag, as in dockerd.
            let repo = r.familiar_name();
            if !rec
                .repo_tags
                .iter()
                .any(|t| t.rsplit_once(':').is_some_and(|(n, _)| n == repo))
            {
                let gone: Vec<String> = rec
                    .repo_digests
                    .iter()
                    .filter(|d| d.starts_with(&format!("{repo}@")))
                    .cloned()
                    .collect();
                rec.repo_digests.retain(|d| !gone.contains(d));
                out.extend(gone.into_iter().map(ImageDeleted::Untagged));
            }
            if !rec.repo_tags.is_empty()
                || !rec.repo_digests.is_empty()
                || self.image_user(&img.id).is_some()
            {
                self.put_image(rec).await?;
                return Ok(out);
            }
        } else {
            if rec.repo_tags.len() > 1 && !force {
                return Err(Error::Conflict(format!(
                    "conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"
                )));
            }
            match self.image_user(&img.id) {
                Some((cid, true)) => {
                    return Err(Error::Conflict(format!(
                        "conflict: unable to delete {short} (cannot be forced) - image is being used by running container {cid}"
                    )))
                }
                Some((cid, false)) if !force => {
                    return Err(Error::Conflict(format!(
                        "conflict: unable to delete {short} (must be forced) - image is being used by stopped container {cid}"
                    )))
                }
                Some((_, false)) => {
                    // Forced: the references go; the image stays for its stopped container.
                    for t in std::mem::take(&mut rec.repo_tags).into_iter().chain(std::mem::take(&mut rec.repo_digests)) {
                        out.push(ImageDeleted::Untagged(t));
                        self.image_event(&rec, "untag", &rec.id);
                    }
                    self.put_image(rec).await?;
                    return Ok(out);
                }
                None => {}
            }
            for t in rec.repo_tags.iter().chain(rec.repo_digests.iter()) {
                out.push(ImageDeleted::Untagged(t.clone()));
                self.image_event(&rec, "untag", &rec.id);
            }
        }
        self.delete_image_record(&img).await?;
        out.push(ImageDeleted::Deleted(img.id.clone()));
        self.image_event(&img, "delete", &img.id);
        Ok(out)
    }

    /// Deletes an image record, then its layers and blobs that no other image uses.
    async fn delete_image_record(&self, img: &ImageRecord) -> Result<()> {
        let store = self.inner.store.clone();
        let id = img.id.clone();
        tokio::task::spawn_blocking(move || store.delete_image(&id))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        let (keep_layers, keep_blobs): (BTreeSet<String>, BTreeSet<String>) = {
            let mut images = self.inner.images.write();
            images.remove(&img.id);
            let l = images
                .values()
                .flat_map(|i| i.layers.iter().map(|l| l.diff_id.clone()))
                .collect();
            let b = images
                .values()
                .flat_map(|i| {
                    i.layers
                        .iter()
                        .map(|l| l.digest.clone())
                        .chain([i.id.clone()])
                })
                .collect();
            (l, b)
        };
        let store = self.inner.image_store.clone();
        let img = img.clone();
        tokio::task::spawn_blocking(move || {
            for l in &img.layers {
                if !keep_layers.contains(&l.diff_id) {
                    if let Ok(d) = Digest::parse(&l.diff_id) {
                        if let Err(e) = store.remove_layer(&d) {
                            tracing::warn!(error = %e, layer = %l.diff_id, "removing layer");
                        }
                    }
                }
                if !keep_blobs.contains(&l.digest) {
                    if let Ok(d) = Digest::parse(&l.digest) {
                        let _ = store.remove_blob(&d);
                    }
                }
            }
            if let Ok(d) = Digest::parse(&img.id) {
                let _ = store.remove_blob(&d);
            }
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
        Ok(())
    }

    pub(crate) async fn prune_unused(&self, all: bool) -> Result<(Vec<ImageDeleted>, u64)> {
        let candidates: Vec<ImageRecord> = self
            .inner
            .images
            .read()
            .values()
            .filter(|i| all || i.repo_tags.is_empty())
            .cloned()
            .collect();
        let mut out = Vec::new();
        let mut freed = 0;
        for img in candidates {
            if self.image_user(&img.id).is_some() {
                continue;
            }
            for t in &img.repo_tags {
                out.push(ImageDeleted::Untagged(t.clone()));
            }
            self.delete_image_record(&img).await?;
            out.push(ImageDeleted::Deleted(img.id.clone()));
            freed += img.size;
        }
        Ok((out, freed))
    }

    /// Every unpacked layer's size once, and per image the size of its layers that other
    /// images use too.
    pub(crate) fn images_disk_usage(&self) -> crate::ImagesDiskUsage {
        let images: Vec<ImageRecord> = self.inner.images.read().values().cloned().collect();
        let layer_store = self.inner.image_store.layers();
        let mut users: BTreeMap<&str, usize> = BTreeMap::new();
        for img in &images {
            let mine: BTreeSet<&str> = img.layers.iter().map(|l| l.diff_id.as_str()).collect();
            for d in mine {
                *users.entry(d).or_default() += 1;
            }
        }
        let size = |diff_id: &str| {
            Digest::parse(diff_id)
                .ok()
                .and_then(|d| layer_store.size(&d).ok())
                .unwrap_or(0)
        };
        let sizes: BTreeMap<&str, u64> = users.keys().map(|d| (*d, size(d))).collect();
        let shared = images
            .iter()
            .map(|img| {
                let mine: BTreeSet<&str> = img.layers.iter().map(|l| l.diff_id.as_str()).collect();
                let bytes = mine
                    .into_iter()
                    .filter(|d| users[d] > 1)
                    .map(|d| sizes[d])
                    .sum();
                (img.id.to_string(), bytes)
            })
            .collect();
        crate::ImagesDiskUsage {
            layers_size: sizes.values().sum(),
            shared,
        }
    }

    pub(crate) fn history(&self, name: &str) -> Result<Vec<HistoryEntry>> {
        let img = self.lookup_image(name)?;
        let hist = img
            .config
            .get("history")
            .and_then(|h| h.as_array())
            .cloned()
            .unwrap_or_default();
        let layer_store = self.inner.image_store.layers();
        let diff_size = |diff_id: &str| {
            Digest::parse(diff_id)
                .ok()
                .and_then(|d| layer_store.size(&d).ok())
                .unwrap_or(0)
        };
        let mut layer_sizes = img.layers.iter().map(|l| diff_size(&l.diff_id));
        let mut out: Vec<HistoryEntry> = hist
            .iter()
            .map(|h| {
                let empty = h
                    .get("empty_layer")
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false);
                let created = h
                    .get("created")
                    .and_then(|v| v.as_str())
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                    .map(|t| t.with_timezone(&Utc).timestamp())
                    .unwrap_or(0);
                HistoryEntry {
                    id: "<missing>".into(),
                    created,
                    created_by: h
                        .get("created_by")
                        .and_then(|v| v.as_str())
                        .unwrap_or("")
                        .into(),
                    size: if empty {
                        0
                    } else {
                        layer_sizes.next().unwrap_or(0)
                    },
                    comment: h
                        .get("comment")
                        .and_then(|v| v.as_str())
                        .unwrap_or("")
                        .into(),
                    tags: Vec::new(),
                }
            })
            .collect();
        if out.is_empty() {
            out = img
                .layers
                .iter()
                .map(|l| HistoryEntry {
                    id: "<missing>".into(),
                    created: img.created.timestamp(),
                    created_by: String::new(),
                    size: diff_size(&l.diff_id),
                    comment: String::new(),
                    tags: Vec::new(),
                })
                .collect();
        }
        out.reverse();
        if let Some(top) = out.first_mut() {
            top.id = img.id.clone();
            top.tags = img.repo_tags.clone();
        }
        Ok(out)
    }
}

/// `library/busybox` → `library/busybox`, as the status line prints the repository path.
fn repo2_path(familiar_name: &str) -> String {
    if familiar_name.contains('/') {
        familiar_name.to_owned()
    } else {
        format!("library/{familiar_name}")
    }
}

/// Whether the image has one reference only: one tag (digests of the same repository
/// count with it), or no tag and digests of one repository.
fn single_reference(img: &corral_core::ImageRecord) -> bool {
    let repo_of = |r: &str| -> String {
        match r.split_once('@') {
            Some((name, _)) => name.to_owned(),
            None => r
                .rsplit_once(':')
                .filter(|(_, t)| !t.contains('/'))
                .map_or(r, |(n, _)| n)
                .to_owned(),
        }
    };
    if img.repo_tags.len() > 1 {
        return false;
    }
    let mut repos: Vec<String> = img
        .repo_tags
        .iter()
        .chain(img.repo_digests.iter())
        .map(|r| repo_of(r))
        .collect();
    repos.sort();
    repos.dedup();
    repos.len() == 1
}
