//! Container networking for Corral: the [`NetworkDriver`] seam with the `bridge` driver,
//! IPv4 address management ([`ipam`]) and the nftables plan of an instance ([`rules`]).
//!
//! Kernel work goes through `corral-sys` traits (`Netlink`, `Netns`, `Nftables`), so the
//! planning code is tested with fakes and the Linux paths with root tests.
#![forbid(unsafe_code)]

pub mod bridge;
pub mod error;
pub mod host_firewall;
pub mod ipam;
pub mod rules;

pub use bridge::{
    bridge_name, veth_name, BridgeDriver, Endpoint, Firewall, NetworkDriver, NetworkSpec,
};
pub use error::{Error, Result};
pub use ipam::{AddressPool, Ipv4Net, SubnetPool, UsedSubnet};
pub use rules::{PortMapping, Proto};
