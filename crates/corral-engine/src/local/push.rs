//! `docker push` and `docker login`: the engine side of [`corral_image::Pusher`] and
//! [`corral_image::check_login`]. The daemon keeps no credentials.

use std::time::Duration;

use corral_core::error::Classify;
use corral_core::ErrorKind;
use corral_image::{
    check_login, is_insecure_registry, login_registry, PullerConfig, PushProgress, Pusher,
};
use corral_oci::{Digest, Reference};
use tokio::sync::mpsc;

use super::images::registry_auth;
use super::LocalEngine;
use crate::api::{Credentials, Progress, Pushed};
use crate::error::{Error, Result};

/// How long a login check may take.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Docker's progress line for one pusher event; layers are shown by short diff_id.
fn progress_of(p: &PushProgress) -> Option<Progress> {
    let line = |d: &Digest, status: &str, current| Progress {
        id: d.hex().chars().take(12).collect(),
        status: status.to_owned(),
        current,
    };
    Some(match p {
        PushProgress::Preparing { diff_id } => line(diff_id, "Preparing", None),
        PushProgress::LayerAlreadyExists { diff_id } => line(diff_id, "Layer already exists", None),
        PushProgress::Pushing {
            diff_id,
            current,
            total,
        } => line(diff_id, "Pushing", Some((*current, *total))),
        PushProgress::Pushed { diff_id } => line(diff_id, "Pushed", None),
        #[allow(unreachable_patterns)]
        _ => return None,
    })
}

impl LocalEngine {
    /// Pushes a local image to the registry its reference names; returns the manifest
    /// digest and records it in the image's `RepoDigests`.
    pub(crate) async fn push(
        &self,
        reference: &str,
        creds: Credentials,
        progress: mpsc::Sender<Progress>,
    ) -> Result<Pushed> {
        let r = Reference::parse(reference).map_err(|e| Error::InvalidInput(e.to_string()))?;
        if r.digest().is_some() {
            return Err(Error::InvalidInput(format!(
                "cannot push a digest reference: {reference}"
            )));
        }
        let img = self
            .lookup_image(&r.familiar())
            .map_err(|_| Error::NoSuchImage(r.familiar()))?;
        let config_digest = Digest::parse(&img.id)
            .map_err(|e| Error::Internal(format!("image id {}: {e}", img.id)))?;
        let _ = progress
            .send(Progress {
                id: String::new(),
                status: format!("The push refers to repository [{}]", r.name()),
                current: None,
            })
            .await;
        let pusher = Pusher::new(
            self.inner.image_store.clone(),
            PullerConfig {
                insecure_registries: self.inner.cfg.insecure_registries.clone(),
                ..PullerConfig::default()
            },
        );
        let (tx, mut rx) = mpsc::channel::<PushProgress>(64);
        let fwd = progress.clone();
        let forward = tokio::spawn(async move {
            while let Some(p) = rx.recv().await {
                if let Some(line) = progress_of(&p) {
                    let _ = fwd.send(line).await;
                }
            }
        });
        let pushed = pusher
            .push(&r, &config_digest, &img.layers, &registry_auth(&creds), tx)
            .await;
        let _ = forward.await;
        let pushed = pushed.map_err(|e| {
            if e.kind() != ErrorKind::Unauthorized {
                return Error::from(e);
            }
            // As for pulls: dockerd words an anonymous refusal this way, and reports it
            // as a plain failure so the CLI does not prompt for a login.
            if creds.username.is_empty() && creds.identity_token.is_empty() {
                Error::Internal(format!("{}: no basic auth credentials", r.registry()))
            } else {
                Error::Internal(e.to_string())
            }
        })?;
        let digest_ref = format!("{}@{}", r.familiar_name(), pushed.manifest_digest);
        let mut rec = self.lookup_image(&img.id)?;
        if !rec.repo_digests.contains(&digest_ref) {
            rec.repo_digests.push(digest_ref);
            self.put_image(rec.clone()).await?;
        }
        self.image_event(&rec, "push", &r.familiar());
        Ok(Pushed {
            tag: r.tag().unwrap_or("latest").to_owned(),
            digest: pushed.manifest_digest.to_string(),
            size: pushed.manifest_size,
        })
    }

    /// Checks credentials against their registry (`/v2/`); the daemon stores nothing.
    pub(crate) async fn login_check(&self, creds: Credentials) -> Result<String> {
        let registry = login_registry(&creds.server_address);
        let insecure = is_insecure_registry(&registry, &self.inner.cfg.insecure_registries);
        check_login(&registry, &registry_auth(&creds), insecure, LOGIN_TIMEOUT).await?;
        tracing::info!(registry, user = %creds.username, "login checked");
        Ok("Login Succeeded".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_progress_uses_docker_wording_and_short_diff_ids() {
        let d = Digest::sha256_of(b"layer");
        let short: String = d.hex().chars().take(12).collect();
        let cases = [
            (
                PushProgress::Preparing { diff_id: d.clone() },
                "Preparing",
                None,
            ),
            (
                PushProgress::LayerAlreadyExists { diff_id: d.clone() },
                "Layer already exists",
                None,
            ),
            (
                PushProgress::Pushing {
                    diff_id: d.clone(),
                    current: 5,
                    total: 10,
                },
                "Pushing",
                Some((5, 10)),
            ),
            (PushProgress::Pushed { diff_id: d.clone() }, "Pushed", None),
        ];
        for (p, status, current) in cases {
            let line = progress_of(&p).unwrap();
            assert_eq!(line.id, short);
            assert_eq!(line.status, status);
            assert_eq!(line.current, current);
        }
    }
}
