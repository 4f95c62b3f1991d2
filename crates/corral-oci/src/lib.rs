//! Image references, digests, platforms and media types: the vocabulary of OCI images.
//!
//! This crate is pure: it parses and formats values and never touches files, sockets or
//! clocks. Registry traffic and on-disk stores live in `corral-image`.
#![forbid(unsafe_code)]

pub mod digest;
pub mod error;
pub mod media_type;
pub mod platform;
pub mod reference;

pub use digest::Digest;
pub use error::{Error, Result};
pub use platform::{host_platform, select_manifest, Platform};
pub use reference::Reference;
