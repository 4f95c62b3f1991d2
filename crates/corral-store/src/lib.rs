//! Corral's state store: the [`StateStore`] seam and its embedded SQLite implementation.
//!
//! Every write is one SQLite transaction, so a crash at any moment leaves either the old or
//! the new state, never a mix. The store holds records only; it never touches containers,
//! images on disk or the network.
#![forbid(unsafe_code)]

mod error;
mod sqlite;

pub use error::{Error, Result};
pub use sqlite::SqliteStore;

use chrono::{DateTime, Utc};
use corral_core::{ContainerId, ContainerRecord, Event, ImageRecord, VolumeRecord};

/// Persistent records of one host's containers and images.
///
/// Implementations are blocking; async callers run them on a blocking thread.
pub trait StateStore: Send + Sync {
    /// All containers.
    fn containers(&self) -> Result<Vec<ContainerRecord>>;
    /// Inserts a new container; fails with a conflict if the id or name is taken.
    fn insert_container(&self, record: &ContainerRecord) -> Result<()>;
    /// Replaces an existing container's record (state changes, renames).
    fn update_container(&self, record: &ContainerRecord) -> Result<()>;
    /// Deletes a container record; deleting a missing one is not an error.
    fn delete_container(&self, id: &ContainerId) -> Result<()>;
    /// All images.
    fn images(&self) -> Result<Vec<ImageRecord>>;
    /// Inserts or replaces an image and moves each of its `repo_tags` onto it, removing
    /// those tags from any other image, in one transaction. Returns the images whose tags
    /// changed as a result (with their new tag lists), so caches can follow.
    fn put_image(&self, record: &ImageRecord) -> Result<Vec<ImageRecord>>;
    /// Deletes an image record.
    fn delete_image(&self, id: &str) -> Result<()>;
    /// Stores a small value under a key (daemon settings, auth, counters).
    fn put_meta(&self, key: &str, value: &str) -> Result<()>;
    /// Reads a value stored with [`StateStore::put_meta`].
    fn get_meta(&self, key: &str) -> Result<Option<String>>;
    /// All volumes.
    fn volumes(&self) -> Result<Vec<VolumeRecord>>;
    /// Inserts a new volume; fails with a conflict if the name is taken.
    fn insert_volume(&self, record: &VolumeRecord) -> Result<()>;
    /// Deletes a volume record; deleting a missing one is not an error.
    fn delete_volume(&self, name: &str) -> Result<()>;
    /// Appends events under their sequence numbers in one transaction, then keeps only the
    /// newest `keep` (the table is bounded).
    fn append_events(&self, events: &[(u64, Event)], keep: usize) -> Result<()>;
    /// Stored events with a sequence number below `before_seq` and a time at or after
    /// `since`, oldest first, at most `limit` (the newest of them).
    fn events(
        &self,
        since: Option<DateTime<Utc>>,
        before_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Event)>>;
}
