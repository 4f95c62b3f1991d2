//! Images on one host: registry pulls, a content-addressed blob store, safe layer
//! unpacking into overlayfs-ready directories, and container rootfs snapshots.
//!
//! On-disk layout under a data root:
//! `blobs/sha256/<hex>` (verified blobs), `layers/sha256/<diff_id hex>/` (unpacked layers),
//! `containers/<id>/{upper,work,rootfs}` (snapshots). Mounts go through
//! [`corral_sys::mount::Mounts`]; this crate never calls the kernel directly and keeps no
//! image metadata (names, tags): that is the engine's job.
#![forbid(unsafe_code)]

pub mod archive;
pub mod content;
pub mod error;
pub mod layer;
mod lock;
pub mod login;
pub mod pull;
pub mod push;
pub mod snapshot;
pub mod store;
pub mod trash;
mod unpack;

pub use archive::{load_archive, write_archive, ArchiveImage, LoadedImage};
pub use content::ContentStore;
pub use error::{Error, Result};
pub use layer::{LayerStore, UnpackedLayer};
pub use login::{check_login, login_registry};
pub use pull::{
    is_insecure_registry, PullProgress, PulledImage, Puller, PullerConfig, RegistryAuth,
};
pub use push::{image_manifest, PushProgress, PushedImage, Pusher};
pub use snapshot::{RootfsPlan, Snapshotter};
pub use store::ImageStore;

#[cfg(test)]
mod testutil;
#[cfg(test)]
mod unpack_tests;
