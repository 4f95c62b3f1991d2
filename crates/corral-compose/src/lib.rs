//! Compose specification support for Corral: reads compose files (YAML through
//! `serde-saphyr`, with anchors, merge keys and an alias budget), interpolates
//! variables, merges several files and `extends`, and validates the result into
//! Corral's typed application model ([`Project`]). Also the naming and labelling
//! rules compose uses for the resources of a project.
//!
//! This crate is pure: it reads only the files it is handed through a [`Source`]
//! and never talks to an engine. The reconcile against an engine lives in the
//! binary's `corral compose`.
#![forbid(unsafe_code)]

mod de;
mod dotenv;
mod error;
mod interpolate;
mod load;
mod merge;
mod model;
mod mounts;
mod node;
mod paths;
mod ports;
mod shape;
mod source;
mod validate;

pub mod labels;

pub use dotenv::{parse as parse_env_file, EnvFileError};
pub use error::{suggest, Diagnostic, Error, Result};
pub use interpolate::{interpolate, InterpolationError};
pub use load::{
    is_valid_project_name, lexical_clean, load, normalize_project_name, LoadOptions, Loaded,
    DEFAULT_FILES,
};
pub use model::{
    Condition, Dependency, Deploy, EnvFile, FileObject, FileRef, Healthcheck, Ipam, IpamPool,
    Logging, Network, Placement, Project, Resource, Resources, RestartPolicy, Service,
    ServiceNetwork, Ulimit, UpdateConfig, Volume,
};
pub use mounts::{BindOptions, ServiceVolume, TmpfsOptions, VolumeOptions};
pub use ports::PortConfig;
pub use shape::{parse_bytes, parse_duration, split_shell};
pub use source::{FsSource, MemSource, Source};
pub use validate::{dependency_levels, dependency_order, find_cycle, with_dependencies};

use sha2::{Digest, Sha256};

/// The `com.docker.compose.config-hash` of a service: SHA-256 of its resolved
/// configuration, leaving out what does not need a new container (replica count).
pub fn config_hash(service: &Service) -> String {
    let mut s = service.clone();
    s.scale = None;
    if let Some(d) = s.deploy.as_mut() {
        d.replicas = None;
    }
    // Serializing plain data into a JSON value cannot fail; fall back to Debug anyway.
    let text = serde_json::to_string(&s).unwrap_or_else(|_| format!("{s:?}"));
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The resolved project as YAML, as `compose config` prints it.
pub fn to_yaml(project: &Project) -> std::result::Result<String, String> {
    serde_saphyr::to_string(project).map_err(|e| e.to_string())
}
