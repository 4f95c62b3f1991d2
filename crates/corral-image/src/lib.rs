//! Images on one host: registry pulls, a content-addressed blob store, safe layer
//! unpacking into overlayfs-ready directories, and container rootfs snapshots.
//!
//! On-disk layout under a data root:
//! `blobs/sha256/<hex>` (verified blobs), `layers/sha256/<diff_id hex>/` (unpacked layers),
//! `containers/<id>/{upper,work,rootfs}` (snapshots). Mounts go through
//! [`corral_sys::mount::Mounts`]; this crate never calls the kernel directly and keeps no
//! image metadata (names, tags): that is the engine's job. Pushing is not implemented yet.
#![forbid(unsafe_code)]

pub mod content;
pub mod error;
pub mod layer;
mod lock;
pub mod pull;
pub mod snapshot;
pub mod store;
mod unpack;

pub use content::ContentStore;
pub use error::{Error, Result};
pub use layer::{LayerStore, UnpackedLayer};
pub use pull::{PullProgress, PulledImage, Puller, PullerConfig, RegistryAuth};
pub use snapshot::{RootfsPlan, Snapshotter};
pub use store::ImageStore;

#[cfg(test)]
mod testutil;
#[cfg(test)]
mod unpack_tests;
