//! The per-container shim.
//!
//! The daemon never forks to run containers. It re-executes its own binary as
//! `corral shim <args>` ([`ShimArgs`]); that process ([`shim_main`]) detaches, becomes a
//! child subreaper, creates the container through an [`OciRuntime`] ([`Libcontainer`] by
//! default, or a runc-compatible binary) while still single-threaded, then serves the
//! daemon on `<state-dir>/shim.sock` ([`protocol`]), copies the container's output to the
//! json-file log and to attached clients, reaps every child, and records the exit status in
//! `<state-dir>/exit.json`. It outlives daemon restarts; [`ShimClient`] is the daemon's
//! async handle on it.

mod args;
mod cgroup;
mod client;
mod devices;
mod error;
mod exec;
mod exec_session;
mod io;
mod libcontainer;
pub mod protocol;
mod reaper;
mod runc;
mod runtime;
mod seccomp_program;
mod server;
mod zygote;

pub use args::{RuntimeKind, ShimArgs};
pub use client::{
    start_zygote, AttachOptions, AttachStream, ExecStream, ShimClient, LAUNCH_TIMEOUT,
};
pub use error::{create_failure_exit_code, Result, ShimError};
pub use libcontainer::Libcontainer;
pub use protocol::{ContainerStatus, ExitStatus, ShimState};
pub use runc::Runc;
pub use runtime::{
    docker_create_message, docker_exec_message, ContainerStdio, OciRuntime, RuntimeError,
};
pub use seccomp_program::{write_seccomp_program, SECCOMP_PROGRAM_FILE};
pub use server::shim_main;
pub use zygote::{zygote_main, ShimZygote, ZygoteError, ZYGOTE_SUBCOMMAND};
