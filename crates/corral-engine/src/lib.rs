//! The single-host engine: what acts on one machine.
//!
//! [`Engine`] is the narrow interface between what decides (the Docker API, compose, later
//! the cluster control plane) and what acts on a host (images, runtime, storage). The
//! default implementation, [`LocalEngine`], composes `corral-image`, `corral-runtime` and
//! `corral-store`. Callers see records and streams, never shims, mounts or SQL.
#![forbid(unsafe_code)]

mod api;
pub mod build;
mod error;
mod events;
mod local;

pub use api::*;
pub use error::{Error, Result};
pub use events::{Event, EventBus};
pub use local::{EngineConfig, LocalEngine, RuntimeConfig, MAX_RUN_DIR_LEN};
