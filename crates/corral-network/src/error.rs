//! Errors of the network layer.

use std::net::Ipv4Addr;

use corral_core::error::Classify;
use corral_core::ErrorKind;

/// A network-layer failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A subnet or address string could not be parsed.
    #[error("invalid CIDR {0:?}: expected a.b.c.d/len with len between 8 and 30")]
    InvalidCidr(String),
    /// A requested subnet overlaps one in use.
    #[error("subnet {subnet} overlaps {other} used by {owner}")]
    SubnetOverlap {
        /// The requested subnet.
        subnet: String,
        /// The subnet in the way.
        other: String,
        /// Who uses it (a network name or "a host route").
        owner: String,
    },
    /// No free subnet is left in the pool.
    #[error("no free subnet left in the address pool")]
    PoolExhausted,
    /// Every address of a subnet is handed out.
    #[error("no free address left in {0}")]
    SubnetFull(String),
    /// A static address is taken.
    #[error("address {0} is already in use")]
    AddressInUse(Ipv4Addr),
    /// A static or gateway address is not usable in the subnet.
    #[error("address {addr} is not a usable host address of {subnet}")]
    AddressOutOfRange {
        /// The address.
        addr: Ipv4Addr,
        /// The subnet.
        subnet: String,
    },
    /// A host port is taken by another process or mapping.
    #[error("host port {addr}:{port}/{proto} is already in use: {reason}")]
    PortInUse {
        /// The host address ("0.0.0.0" for all).
        addr: Ipv4Addr,
        /// The port.
        port: u16,
        /// `tcp` or `udp`.
        proto: &'static str,
        /// What the kernel said.
        reason: String,
    },
    /// A name is unusable (interface names are at most 15 bytes).
    #[error("invalid name {0:?}")]
    InvalidName(String),
    /// A kernel operation failed.
    #[error("{op}: {source}")]
    Sys {
        /// What was being done.
        op: String,
        /// The error from corral-sys.
        #[source]
        source: std::io::Error,
    },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error from the kernel boundary with what was being done.
    pub fn sys(op: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let op = op.into();
        move |source| Self::Sys { op, source }
    }
}

impl Classify for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidCidr(_) | Self::AddressOutOfRange { .. } | Self::InvalidName(_) => {
                ErrorKind::InvalidInput
            }
            Self::SubnetOverlap { .. } | Self::AddressInUse(_) | Self::PortInUse { .. } => {
                ErrorKind::Conflict
            }
            Self::PoolExhausted | Self::SubnetFull(_) => ErrorKind::Unavailable,
            Self::Sys { .. } => ErrorKind::Internal,
        }
    }
}
