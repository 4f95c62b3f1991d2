//! Container lifecycle on one host: OCI runtime configs built from images and run options
//! ([`spec`]), the per-container shim that keeps a container and its stdio alive
//! independently of the daemon ([`shim`]), and json-file logs ([`logs`]).
//!
//! This crate acts; it does not decide. It never forks from the daemon's tokio process:
//! every clone happens in the single-threaded shim, a re-execution of the `corral` binary.
#![forbid(unsafe_code)]

pub mod cgroup;
mod error;
pub mod logs;
pub mod shim;
pub mod spec;

pub use error::{Error, Result};
