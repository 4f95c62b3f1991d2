//! The Linux boundary of Corral: mounts, processes, signals, network links, namespaces, nftables and cgroup v2 device programs behind narrow traits.
//!
//! This is the only crate allowed to contain `unsafe`; each module holds a trait, its Linux
//! implementation and (behind the `fake` feature) a recording fake for tests. It depends on
//! no other Corral crate, so no business logic creeps in here.

pub mod devices;
pub mod memory;
pub mod mount;
pub mod netlink;
pub mod netns;
pub mod netsock;
pub mod nftables;
pub mod process;
