//! Name resolution as dockerd does it: full id, then name, then unique id prefix.

use std::sync::Arc;

use corral_core::ImageRecord;
use corral_oci::Reference;

use super::{Entry, LocalEngine};
use crate::error::{Error, Result};

impl LocalEngine {
    /// Finds a container by full id, name (with or without `/`) or unique id prefix.
    pub(crate) fn lookup(&self, name: &str) -> Result<Arc<Entry>> {
        let all = self.inner.containers.read();
        let n = name.strip_prefix('/').unwrap_or(name);
        if n.is_empty() {
            return Err(Error::NoSuchContainer(name.to_owned()));
        }
        if let Some(e) = all.get(n) {
            return Ok(e.clone());
        }
        if let Some(e) = all.values().find(|e| e.record.lock().name.as_str() == n) {
            return Ok(e.clone());
        }
        let matches: Vec<_> = all
            .iter()
            .filter(|(id, _)| id.as_str().starts_with(n))
            .collect();
        match matches.as_slice() {
            [(_, e)] => Ok((*e).clone()),
            [] => Err(Error::NoSuchContainer(name.to_owned())),
            _ => Err(Error::InvalidInput(format!(
                "Multiple IDs found with provided prefix: {name}"
            ))),
        }
    }

    /// Finds an image by id (full, `sha256:`-prefixed or unique prefix), `name[:tag]` or
    /// `name@digest`.
    pub(crate) fn lookup_image(&self, name: &str) -> Result<ImageRecord> {
        let images = self.inner.images.read();
        let not_found = || Error::NoSuchImage(name.to_owned());
        if name.is_empty() {
            return Err(not_found());
        }
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        if let Some(i) = images.get(&format!("sha256:{hex}")) {
            return Ok(i.clone());
        }
        if let Ok(r) = Reference::parse(name) {
            if let Some(d) = r.digest() {
                let want = format!("{}@{}", r.familiar_name(), d);
                if let Some(i) = images.values().find(|i| i.repo_digests.contains(&want)) {
                    return Ok(i.clone());
                }
            } else {
                let want = r.familiar();
                if let Some(i) = images.values().find(|i| i.repo_tags.contains(&want)) {
                    return Ok(i.clone());
                }
            }
        }
        // A short id: at least some hex digits and nothing else.
        if !hex.is_empty() && hex.len() < 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let m: Vec<_> = images
                .values()
                .filter(|i| i.id.trim_start_matches("sha256:").starts_with(hex))
                .collect();
            if let [one] = m.as_slice() {
                return Ok((*one).clone());
            }
        }
        Err(not_found())
    }
}
