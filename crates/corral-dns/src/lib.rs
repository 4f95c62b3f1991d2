//! Corral's embedded DNS server, as dockerd's: each container on a user-defined network asks
//! `127.0.0.11:53` inside its own network namespace; the daemon serves those sockets with
//! [hickory-server](https://docs.rs/hickory-server). Containers resolve each other by name,
//! network alias and short id on the networks they share ([`Zone`]); any other name is
//! forwarded to upstream resolvers from the daemon's namespace ([`forward`]).
//!
//! The crate never touches namespaces itself: the caller binds the sockets inside the
//! container's namespace (through `corral-sys`) and hands them over. The record table and
//! the answer logic are plain data, tested without root.
#![forbid(unsafe_code)]

pub mod error;
pub mod forward;
pub mod server;
pub mod zone;

pub use error::{Error, Result};
pub use server::DnsServer;
pub use zone::{Answer, ContainerView, Zone, ZoneEntry};

/// The address containers send their queries to, inside their own namespace (dockerd's).
pub const RESOLVER_IP: std::net::Ipv4Addr = std::net::Ipv4Addr::new(127, 0, 0, 11);
