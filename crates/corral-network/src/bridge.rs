//! The `bridge` driver: one Linux bridge per network, one veth pair per endpoint.

use std::io;
use std::net::{IpAddr, Ipv4Addr, TcpListener, UdpSocket};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;

use corral_sys::netlink::Netlink;
use corral_sys::nftables::Nftables;
use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::ipam::Ipv4Net;
use crate::rules::{self, NetworkRules, PortMapping, Proto};

/// Linux interface names are at most 15 bytes (`IFNAMSIZ` - 1).
pub const IFNAME_MAX: usize = 15;

/// A network as the driver sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSpec {
    /// The network's bridge interface name (see [`bridge_name`]).
    pub bridge: String,
    /// The subnet.
    pub subnet: Ipv4Net,
    /// The gateway, the bridge's own address.
    pub gateway: Ipv4Addr,
    /// No route out of the network.
    pub internal: bool,
}

/// A container's attachment to a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The container's network namespace file.
    pub netns: PathBuf,
    /// The host end of the veth pair (see [`veth_name`]).
    pub host_veth: String,
    /// The interface name inside the container (`eth0`, `eth1`, …).
    pub ifname: String,
    /// The container's address.
    pub ip: Ipv4Addr,
    /// Whether this network provides the container's default route.
    pub default_route: bool,
    /// A chosen MAC address (`--mac-address`); the kernel's random one when `None`.
    pub mac: Option<[u8; 6]>,
}

/// The seam between the engine and a network technology (`bridge` now, `overlay` next).
pub trait NetworkDriver: Send + Sync {
    /// The driver's name as the Docker API shows it.
    fn name(&self) -> &'static str;

    /// Creates (or, after a daemon restart, adopts) the network's kernel objects.
    ///
    /// # Errors
    /// A kernel operation failed; nothing created by this call is left behind.
    fn create(&self, net: &NetworkSpec) -> Result<()>;

    /// Removes the network's kernel objects; absent objects are not an error.
    ///
    /// # Errors
    /// A kernel operation failed.
    fn remove(&self, net: &NetworkSpec) -> Result<()>;

    /// Plugs a container's namespace into the network; returns the interface's MAC.
    ///
    /// # Errors
    /// A kernel operation failed; the veth pair is removed again.
    fn attach(&self, net: &NetworkSpec, ep: &Endpoint) -> Result<[u8; 6]>;

    /// Unplugs an endpoint; an absent veth is not an error.
    ///
    /// # Errors
    /// A kernel operation failed.
    fn detach(&self, ep: &Endpoint) -> Result<()>;
}

/// FNV-1a, stable across builds (interface names must survive daemon upgrades).
fn fnv(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The first letters of every Corral bridge's name (`cr+` in iptables terms).
pub const BRIDGE_PREFIX: &str = "cr";

/// The bridge name of network `network_id` of `instance`: `cr` + 6 hex of the instance +
/// `-` + 6 chars of the id, 15 bytes, so several daemons never share a bridge.
pub fn bridge_name(instance: &str, network_id: &str) -> String {
    let id: String = network_id.chars().take(6).collect();
    format!("{BRIDGE_PREFIX}{:06x}-{id}", fnv(instance) & 0x00ff_ffff)
}

/// The host end of the veth of container `container_id` on its `index`-th network
/// (`index` below 100: the name must fit in 15 bytes and must not repeat another's).
pub fn veth_name(container_id: &str, index: usize) -> String {
    debug_assert!(index < 100, "at most 100 networks per container");
    let id: String = container_id.chars().take(11).collect();
    format!("cv{id}{index}")
}

fn check_ifname(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > IFNAME_MAX || name.contains(['/', ' ', '\0']) {
        return Err(Error::InvalidName(name.to_owned()));
    }
    Ok(())
}

fn ignore(kind: io::ErrorKind) -> impl Fn(io::Error) -> io::Result<()> {
    move |e| if e.kind() == kind { Ok(()) } else { Err(e) }
}

/// The `bridge` [`NetworkDriver`].
#[derive(Clone)]
pub struct BridgeDriver {
    netlink: Arc<dyn Netlink>,
}

impl std::fmt::Debug for BridgeDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BridgeDriver").finish_non_exhaustive()
    }
}

impl BridgeDriver {
    /// A driver acting through `netlink`.
    pub fn new(netlink: Arc<dyn Netlink>) -> Self {
        Self { netlink }
    }

    fn create_inner(&self, net: &NetworkSpec) -> Result<()> {
        let nl = &self.netlink;
        let br = net.bridge.as_str();
        nl.add_address(None, br, IpAddr::V4(net.gateway), net.subnet.prefix())
            .or_else(ignore(io::ErrorKind::AlreadyExists))
            .map_err(Error::sys(format!("adding {} to {br}", net.gateway)))?;
        nl.set_up(None, br)
            .map_err(Error::sys(format!("setting {br} up")))?;
        // Connections to 127.0.0.1 DNAT-ed to a container leave through the bridge.
        nl.set_sysctl(&format!("net.ipv4.conf.{br}.route_localnet"), "1")
            .map_err(Error::sys("enabling route_localnet"))?;
        if !net.internal {
            nl.set_sysctl("net.ipv4.ip_forward", "1")
                .map_err(Error::sys("enabling IPv4 forwarding"))?;
        }
        Ok(())
    }
}

impl NetworkDriver for BridgeDriver {
    fn name(&self) -> &'static str {
        "bridge"
    }

    fn create(&self, net: &NetworkSpec) -> Result<()> {
        check_ifname(&net.bridge)?;
        let created = match self.netlink.create_bridge(&net.bridge) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(Error::sys(format!("creating bridge {}", net.bridge))(e)),
        };
        let res = self.create_inner(net);
        if res.is_err() && created {
            let _ = self.netlink.delete_link(None, &net.bridge);
        }
        res
    }

    fn remove(&self, net: &NetworkSpec) -> Result<()> {
        self.netlink
            .delete_link(None, &net.bridge)
            .or_else(ignore(io::ErrorKind::NotFound))
            .map_err(Error::sys(format!("deleting bridge {}", net.bridge)))
    }

    fn attach(&self, net: &NetworkSpec, ep: &Endpoint) -> Result<[u8; 6]> {
        check_ifname(&ep.host_veth)?;
        check_ifname(&ep.ifname)?;
        let nl = &self.netlink;
        // Host ends are named by `veth_name` (`cv…`); the container end swaps the prefix.
        let peer = ep
            .host_veth
            .strip_prefix("cv")
            .map(|rest| format!("cp{rest}"))
            .ok_or_else(|| Error::InvalidName(ep.host_veth.clone()))?;
        let host = ep.host_veth.as_str();
        if let Err(e) = nl.create_veth(host, &peer) {
            if e.kind() != io::ErrorKind::AlreadyExists {
                return Err(Error::sys(format!("creating veth {host}"))(e));
            }
            // A leftover of a crashed attach: replace it.
            let _ = nl.delete_link(None, host);
            let _ = nl.delete_link(None, &peer);
            nl.create_veth(host, &peer)
                .map_err(Error::sys(format!("creating veth {host}")))?;
        }
        let ns = Some(ep.netns.as_path());
        let steps = || -> Result<[u8; 6]> {
            nl.set_master(host, &net.bridge)
                .map_err(Error::sys(format!("adding {host} to {}", net.bridge)))?;
            nl.move_to_netns(&peer, &ep.netns)
                .map_err(Error::sys(format!(
                    "moving {peer} into {}",
                    ep.netns.display()
                )))?;
            nl.rename_link(ns, &peer, &ep.ifname)
                .map_err(Error::sys(format!("renaming {peer} to {}", ep.ifname)))?;
            if let Some(mac) = ep.mac {
                nl.set_mac(ns, &ep.ifname, mac)
                    .map_err(Error::sys(format!("setting the MAC of {}", ep.ifname)))?;
            }
            nl.add_address(ns, &ep.ifname, IpAddr::V4(ep.ip), net.subnet.prefix())
                .map_err(Error::sys(format!("adding {} to {}", ep.ip, ep.ifname)))?;
            nl.set_up(ns, &ep.ifname)
                .map_err(Error::sys(format!("setting {} up", ep.ifname)))?;
            nl.set_up(ns, "lo").map_err(Error::sys("setting lo up"))?;
            if ep.default_route && !net.internal {
                nl.add_default_route(ns, net.gateway)
                    .or_else(ignore(io::ErrorKind::AlreadyExists))
                    .map_err(Error::sys("adding the default route"))?;
            }
            nl.link_mac(ns, &ep.ifname)
                .map_err(Error::sys("reading the MAC address"))?
                .ok_or_else(|| {
                    Error::sys("reading the MAC address")(io::ErrorKind::NotFound.into())
                })
        };
        let res = steps();
        if res.is_err() {
            // Deleting the host end deletes the peer too, wherever it is.
            let _ = nl.delete_link(None, host);
        }
        res
    }

    fn detach(&self, ep: &Endpoint) -> Result<()> {
        self.netlink
            .delete_link(None, &ep.host_veth)
            .or_else(ignore(io::ErrorKind::NotFound))
            .map_err(Error::sys(format!("deleting veth {}", ep.host_veth)))
    }
}

/// The instance's nftables table plus the host ports it publishes.
pub struct Firewall {
    nft: Arc<dyn Nftables>,
    instance: String,
    /// Published mappings with the host socket held open so no other process takes the port.
    held: Mutex<Vec<(PortMapping, OwnedFd)>>,
}

impl std::fmt::Debug for Firewall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Firewall")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl Firewall {
    /// The firewall of `instance`, acting through `nft`.
    pub fn new(nft: Arc<dyn Nftables>, instance: impl Into<String>) -> Self {
        Self {
            nft,
            instance: instance.into(),
            held: Mutex::new(Vec::new()),
        }
    }

    /// Binds the host side of `m` (port 0 picks a free port) and keeps it bound until
    /// [`Firewall::release`]; returns the mapping with the actual host port.
    ///
    /// # Errors
    /// `PortInUse` when another process or mapping holds the port.
    pub fn reserve(&self, m: &PortMapping) -> Result<PortMapping> {
        let ip = m.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        let in_use = |reason: String| Error::PortInUse {
            addr: ip,
            port: m.host_port,
            proto: m.proto.as_str(),
            reason,
        };
        let (held, port) = match m.proto {
            Proto::Tcp => {
                let l = TcpListener::bind((ip, m.host_port)).map_err(|e| in_use(e.to_string()))?;
                let port = l.local_addr().map_err(|e| in_use(e.to_string()))?.port();
                (OwnedFd::from(l), port)
            }
            Proto::Udp => {
                let s = UdpSocket::bind((ip, m.host_port)).map_err(|e| in_use(e.to_string()))?;
                let port = s.local_addr().map_err(|e| in_use(e.to_string()))?.port();
                (OwnedFd::from(s), port)
            }
        };
        let mut actual = m.clone();
        actual.host_port = port;
        self.held.lock().push((actual.clone(), held));
        Ok(actual)
    }

    /// Closes the host sockets of the mappings to `container_ip`.
    pub fn release(&self, container_ip: Ipv4Addr) {
        self.held
            .lock()
            .retain(|(m, _)| m.container_ip != container_ip);
    }

    /// The mappings currently reserved.
    pub fn mappings(&self) -> Vec<PortMapping> {
        self.held.lock().iter().map(|(m, _)| m.clone()).collect()
    }

    /// Replaces the instance's table with the plan for `networks` and every reserved port.
    ///
    /// # Errors
    /// `nft` refused the ruleset; the previous table stays in force.
    pub fn sync(&self, networks: &[NetworkSpec]) -> Result<()> {
        let nets: Vec<NetworkRules> = networks
            .iter()
            .map(|n| NetworkRules {
                bridge: n.bridge.clone(),
                subnet: n.subnet,
                internal: n.internal,
            })
            .collect();
        let script = rules::render(&self.instance, &nets, &self.mappings());
        self.nft
            .apply(&script)
            .map_err(Error::sys("applying the nftables ruleset"))
    }

    /// Deletes the instance's table and closes every held port.
    ///
    /// # Errors
    /// `nft` failed.
    pub fn teardown(&self) -> Result<()> {
        self.held.lock().clear();
        self.nft
            .delete_table(rules::TABLE_FAMILY, &rules::table_name(&self.instance))
            .map_err(Error::sys("deleting the nftables table"))
    }

    /// A warning when another table's forward chain drops by default without allowing
    /// Corral's bridges ([`crate::host_firewall`]); `None` when forwarding is open or the
    /// ruleset cannot be read (the check is advice, never an error).
    pub fn host_forward_warning(&self) -> Option<String> {
        let json = match self.nft.ruleset_json() {
            Ok(json) => json,
            Err(err) => {
                tracing::debug!(error = %err, "cannot read the host's nftables ruleset");
                return None;
            }
        };
        let own = rules::table_name(&self.instance);
        crate::host_firewall::warning(&crate::host_firewall::forward_blockers(&json, &own))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_sys::netlink::{FakeNetlink, NetlinkCall};
    use corral_sys::nftables::FakeNftables;

    fn spec() -> NetworkSpec {
        NetworkSpec {
            bridge: bridge_name("inst", "abcdef123456"),
            subnet: "172.18.0.0/16".parse().unwrap(),
            gateway: Ipv4Addr::new(172, 18, 0, 1),
            internal: false,
        }
    }

    #[test]
    fn names_fit_ifnamsiz_and_differ_per_instance() {
        let a = bridge_name("inst", "abcdef123456");
        assert_eq!(a.len(), 15);
        assert!(a.ends_with("-abcdef"));
        assert_ne!(a, bridge_name("other", "abcdef123456"));
        assert_eq!(a, bridge_name("inst", "abcdef999"));
        assert_eq!(veth_name("0123456789abcdef", 1), "cv0123456789a1");
        assert!(veth_name("0123456789abcdef", 42).len() <= IFNAME_MAX);
    }

    #[test]
    fn attach_plans_veth_into_netns_with_route() {
        let nl = Arc::new(FakeNetlink::new());
        let d = BridgeDriver::new(nl.clone());
        let net = spec();
        d.create(&net).unwrap();
        d.create(&net).unwrap(); // adoption after a restart
        let ep = Endpoint {
            netns: PathBuf::from("/run/x/netns/c1"),
            host_veth: veth_name("c1c1c1c1c1c1", 0),
            ifname: "eth0".into(),
            ip: Ipv4Addr::new(172, 18, 0, 2),
            default_route: true,
            mac: None,
        };
        d.attach(&net, &ep).unwrap();
        let calls = nl.calls();
        let ns = Some(ep.netns.clone());
        assert!(calls.contains(&NetlinkCall::CreateBridge(net.bridge.clone())));
        assert!(calls.contains(&NetlinkCall::Sysctl(
            format!("net.ipv4.conf.{}.route_localnet", net.bridge),
            "1".into()
        )));
        let tail: Vec<_> = calls
            .iter()
            .skip_while(|c| !matches!(c, NetlinkCall::CreateVeth(..)))
            .cloned()
            .collect();
        assert_eq!(
            tail,
            vec![
                NetlinkCall::CreateVeth(ep.host_veth.clone(), "cpc1c1c1c1c1c0".into()),
                NetlinkCall::SetMaster(ep.host_veth.clone(), net.bridge.clone()),
                NetlinkCall::MoveToNetns("cpc1c1c1c1c1c0".into(), ep.netns.clone()),
                NetlinkCall::Rename(ns.clone(), "cpc1c1c1c1c1c0".into(), "eth0".into()),
                NetlinkCall::AddAddress(ns.clone(), "eth0".into(), IpAddr::V4(ep.ip), 16),
                NetlinkCall::SetUp(ns.clone(), "eth0".into()),
                NetlinkCall::SetUp(ns.clone(), "lo".into()),
                NetlinkCall::DefaultRoute(ns, net.gateway),
            ]
        );
        d.detach(&ep).unwrap();
        d.detach(&ep).unwrap();
        d.remove(&net).unwrap();
        d.remove(&net).unwrap();
    }

    #[test]
    fn internal_network_gets_no_default_route_nor_forwarding() {
        let nl = Arc::new(FakeNetlink::new());
        let d = BridgeDriver::new(nl.clone());
        let mut net = spec();
        net.internal = true;
        d.create(&net).unwrap();
        let ep = Endpoint {
            netns: PathBuf::from("/x"),
            host_veth: "cvabc0".into(),
            ifname: "eth0".into(),
            ip: Ipv4Addr::new(172, 18, 0, 2),
            default_route: true,
            mac: None,
        };
        d.attach(&net, &ep).unwrap();
        let calls = nl.calls();
        assert!(!calls
            .iter()
            .any(|c| matches!(c, NetlinkCall::DefaultRoute(..))));
        assert!(!calls
            .iter()
            .any(|c| matches!(c, NetlinkCall::Sysctl(k, _) if k == "net.ipv4.ip_forward")));
    }

    #[test]
    fn long_names_are_refused() {
        let d = BridgeDriver::new(Arc::new(FakeNetlink::new()));
        let mut net = spec();
        net.bridge = "a-much-too-long-bridge".into();
        assert!(matches!(d.create(&net), Err(Error::InvalidName(_))));
    }

    #[test]
    fn taken_host_port_is_a_clear_error_and_sync_renders_reserved_ports() {
        let nft = Arc::new(FakeNftables::new());
        let fw = Firewall::new(nft.clone(), "inst");
        let m = PortMapping {
            proto: Proto::Tcp,
            host_ip: Some(Ipv4Addr::LOCALHOST),
            host_port: 0,
            container_ip: Ipv4Addr::new(172, 18, 0, 2),
            container_port: 80,
        };
        let got = fw.reserve(&m).unwrap();
        assert_ne!(got.host_port, 0);
        let again = PortMapping {
            host_port: got.host_port,
            ..m.clone()
        };
        let e = fw.reserve(&again).unwrap_err();
        assert!(matches!(e, Error::PortInUse { .. }));
        assert!(e.to_string().contains(&format!(
            "127.0.0.1:{}/tcp is already in use",
            got.host_port
        )));
        fw.sync(&[spec()]).unwrap();
        let applied = nft.applied();
        assert!(applied[0].contains(&format!(
            "tcp dport {} dnat to 172.18.0.2:80",
            got.host_port
        )));
        fw.release(m.container_ip);
        assert!(fw.mappings().is_empty());
        fw.reserve(&again).unwrap();
        fw.teardown().unwrap();
    }
}
