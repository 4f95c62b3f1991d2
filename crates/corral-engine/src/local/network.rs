//! Container networking of the local engine: the default `bridge` network, one network
//! namespace and veth endpoint per bridged container, published ports and the instance's
//! nftables table. The state (networks with their IPAM pools, endpoints with their ports) is
//! plain data kept in the state store under [`STATE_KEY`], so leases and ports survive daemon
//! restarts; the kernel objects (bridge, netns bind mounts, veths) survive them too and are
//! adopted, and the nftables table is re-created with the same content.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::Utc;
use corral_core::{ContainerId, ContainerRecord};
use corral_network::{
    bridge_name, veth_name, AddressPool, BridgeDriver, Endpoint, Firewall, NetworkDriver,
    NetworkSpec, PortMapping, Proto, SubnetPool, UsedSubnet,
};
use corral_store::StateStore;
use corral_sys::netlink::{LinuxNetlink, Netlink};
use corral_sys::netns::{LinuxNetns, Netns};
use corral_sys::nftables::NftCommand;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The state store key of [`NetState`].
pub(crate) const STATE_KEY: &str = "network_state";

/// The name of the default network.
pub(crate) const DEFAULT_NETWORK: &str = "bridge";

/// A network as persisted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct NetRecord {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) bridge: String,
    pub(crate) internal: bool,
    pub(crate) created: String,
    pub(crate) pool: AddressPool,
    #[serde(default)]
    pub(crate) labels: BTreeMap<String, String>,
}

/// A published port as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PortRecord {
    pub(crate) proto: String,
    pub(crate) host_ip: String,
    pub(crate) host_port: u16,
    pub(crate) container_port: u16,
}

/// A container's endpoint as persisted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EndpointRecord {
    pub(crate) network: String,
    pub(crate) ip: Ipv4Addr,
    pub(crate) mac: String,
    pub(crate) host_veth: String,
    pub(crate) netns: PathBuf,
    pub(crate) ports: Vec<PortRecord>,
}

/// Everything the engine persists about networking.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct NetState {
    pub(crate) networks: BTreeMap<String, NetRecord>,
    pub(crate) endpoints: BTreeMap<String, EndpointRecord>,
}

/// The engine's networking: driver, firewall and persisted state.
pub(crate) struct Networking {
    netlink: Arc<dyn Netlink>,
    netns: Arc<dyn Netns>,
    driver: BridgeDriver,
    firewall: Firewall,
    store: Arc<dyn StateStore>,
    netns_dir: PathBuf,
    instance: String,
    state: Mutex<NetState>,
}

fn mac_string(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn proto_of(s: &str) -> Result<Proto> {
    match s {
        "tcp" | "" => Ok(Proto::Tcp),
        "udp" => Ok(Proto::Udp),
        other => Err(Error::InvalidInput(format!(
            "invalid proto {other:?}: only tcp and udp can be published"
        ))),
    }
}

fn parse_port(s: &str, what: &str) -> Result<u16> {
    s.parse::<u16>()
        .map_err(|_| Error::InvalidInput(format!("invalid {what} port {s:?}")))
}

/// A port to publish: protocol, host address, host port (0: ephemeral), container port.
pub(crate) type RequestedPort = (Proto, Option<Ipv4Addr>, u16, u16);

/// The ports `rec` asks to publish: `HostConfig.PortBindings`, plus every exposed port on
/// an ephemeral host port with `-P`.
pub(crate) fn requested_ports(rec: &ContainerRecord) -> Result<Vec<RequestedPort>> {
    let h = &rec.spec.host;
    let mut out = Vec::new();
    for (key, bindings) in &h.port_bindings {
        let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
        let proto = proto_of(proto)?;
        let cport = parse_port(port, "container")?;
        for (hip, hport) in bindings {
            let ip = match hip.as_str() {
                "" | "0.0.0.0" => None,
                s => Some(s.parse::<Ipv4Addr>().map_err(|_| {
                    Error::InvalidInput(format!("invalid host IP {s:?} (IPv4 only)"))
                })?),
            };
            let hp = if hport.is_empty() {
                0
            } else {
                parse_port(hport, "host")?
            };
            out.push((proto, ip, hp, cport));
        }
    }
    if h.publish_all_ports {
        for key in &rec.spec.exposed_ports {
            if h.port_bindings.contains_key(key) {
                continue;
            }
            let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
            out.push((proto_of(proto)?, None, 0, parse_port(port, "container")?));
        }
    }
    Ok(out)
}

impl Networking {
    /// Loads the persisted state and re-creates the kernel side it describes (bridges are
    /// adopted, published ports re-reserved, the nftables table re-applied).
    pub(crate) fn open(
        store: Arc<dyn StateStore>,
        run_dir: &std::path::Path,
        instance: &str,
    ) -> Result<Self> {
        let state: NetState = match store.get_meta(STATE_KEY)? {
            Some(s) => serde_json::from_str(&s)
                .map_err(|e| Error::Internal(format!("corrupt network state: {e}")))?,
            None => NetState::default(),
        };
        let netlink: Arc<dyn Netlink> = Arc::new(LinuxNetlink::new());
        let this = Self {
            driver: BridgeDriver::new(netlink.clone()),
            netlink,
            netns: Arc::new(LinuxNetns::new()),
            firewall: Firewall::new(Arc::new(NftCommand::new()), instance),
            store,
            netns_dir: run_dir.join("netns"),
            instance: instance.to_owned(),
            state: Mutex::new(state),
        };
        let st = this.state.lock().clone();
        if !st.endpoints.is_empty() {
            for net in st.networks.values() {
                this.driver.create(&Self::spec(net))?;
            }
            for ep in st.endpoints.values() {
                for p in &ep.ports {
                    if let Err(e) = this.reserve(ep.ip, p) {
                        tracing::warn!(error = %e, "re-publishing a port after restart");
                    }
                }
            }
            this.sync(&st)?;
        }
        if let Some(advice) = this.host_firewall_warning() {
            tracing::warn!(%advice, "the host firewall blocks forwarded container traffic");
        }
        Ok(this)
    }

    /// Advice when the host's own forward chain drops Corral's traffic (blocking: runs
    /// `nft`); see `corral_network::host_firewall`.
    pub(crate) fn host_firewall_warning(&self) -> Option<String> {
        self.firewall.host_forward_warning()
    }

    fn spec(net: &NetRecord) -> NetworkSpec {
        NetworkSpec {
            bridge: net.bridge.clone(),
            subnet: net.pool.subnet,
            gateway: net.pool.gateway,
            internal: net.internal,
        }
    }

    fn reserve(&self, ip: Ipv4Addr, p: &PortRecord) -> Result<PortMapping> {
        let host_ip = match p.host_ip.as_str() {
            "" | "0.0.0.0" => None,
            s => s.parse().ok(),
        };
        Ok(self.firewall.reserve(&PortMapping {
            proto: proto_of(&p.proto)?,
            host_ip,
            host_port: p.host_port,
            container_ip: ip,
            container_port: p.container_port,
        })?)
    }

    fn sync(&self, st: &NetState) -> Result<()> {
        let active: Vec<NetworkSpec> = st
            .networks
            .values()
            .filter(|n| st.endpoints.values().any(|e| e.network == n.name))
            .map(Self::spec)
            .collect();
        Ok(self.firewall.sync(&active)?)
    }

    fn persist(&self, st: &NetState) -> Result<()> {
        let json = serde_json::to_string(st).map_err(|e| Error::Internal(e.to_string()))?;
        Ok(self.store.put_meta(STATE_KEY, &json)?)
    }

    /// The default network, created (subnet allocated and persisted) on first use.
    fn default_network(&self, st: &mut NetState) -> Result<NetRecord> {
        if let Some(n) = st.networks.get(DEFAULT_NETWORK) {
            return Ok(n.clone());
        }
        let used = self.used_subnets(st)?;
        let subnet = SubnetPool::default().allocate(&used)?;
        let id: String = (0..4)
            .map(|i| format!("{:016x}", fnv64(&format!("{}-bridge-{i}", self.instance))))
            .collect();
        let rec = NetRecord {
            bridge: bridge_name(&self.instance, &id),
            id,
            name: DEFAULT_NETWORK.into(),
            internal: false,
            created: Utc::now().to_rfc3339(),
            pool: AddressPool::new(subnet, None, None)?,
            labels: BTreeMap::new(),
        };
        st.networks.insert(DEFAULT_NETWORK.into(), rec.clone());
        Ok(rec)
    }

    /// A network by name, full id or unique id prefix.
    pub(crate) fn find(&self, st: &NetState, key: &str) -> Option<NetRecord> {
        if let Some(n) = st.networks.get(key) {
            return Some(n.clone());
        }
        let mut hits = st
            .networks
            .values()
            .filter(|n| !key.is_empty() && n.id.starts_with(key));
        match (hits.next(), hits.next()) {
            (Some(n), None) => Some(n.clone()),
            _ => None,
        }
    }

    /// Whether `key` names a user-defined network (or the default one once allocated).
    pub(crate) fn exists(&self, key: &str) -> bool {
        let st = self.state.lock();
        self.find(&st, key).is_some()
    }

    /// Creates a user-defined network (state only: its bridge appears with the first
    /// container). Blocking.
    pub(crate) fn create_network(&self, req: &crate::api::NetworkCreate) -> Result<String> {
        if req.name.is_empty()
            || ["host", "none", "default", DEFAULT_NETWORK].contains(&req.name.as_str())
        {
            return Err(Error::Conflict(format!(
                "network name {:?} is reserved or empty",
                req.name
            )));
        }
        let mut st = self.state.lock();
        if st.networks.contains_key(&req.name) {
            return Err(Error::Conflict(format!(
                "network with name {} already exists",
                req.name
            )));
        }
        let used = self.used_subnets(&st)?;
        let subnet = match &req.subnet {
            Some(s) => {
                let net: corral_network::Ipv4Net = s.parse()?;
                corral_network::ipam::check_free(net, &used)?;
                net
            }
            None => SubnetPool::default().allocate(&used)?,
        };
        let gateway = match &req.gateway {
            Some(g) => Some(
                g.parse::<Ipv4Addr>()
                    .map_err(|_| Error::InvalidInput(format!("invalid gateway {g:?}")))?,
            ),
            None => None,
        };
        let range = match &req.ip_range {
            Some(r) => Some(r.parse::<corral_network::Ipv4Net>()?),
            None => None,
        };
        let id: String = (0..4)
            .map(|i| {
                format!(
                    "{:016x}",
                    fnv64(&format!(
                        "{}-{}-{}-{i}",
                        self.instance,
                        req.name,
                        Utc::now().timestamp_nanos_opt().unwrap_or_default()
                    ))
                )
            })
            .collect();
        let rec = NetRecord {
            bridge: bridge_name(&self.instance, &id),
            id: id.clone(),
            name: req.name.clone(),
            internal: req.internal,
            created: Utc::now().to_rfc3339(),
            pool: AddressPool::new(subnet, gateway, range)?,
            labels: req.labels.clone(),
        };
        st.networks.insert(req.name.clone(), rec);
        if let Err(e) = self.persist(&st) {
            st.networks.remove(&req.name);
            return Err(e);
        }
        Ok(id)
    }

    /// Removes a user-defined network; refused while a container is connected. Blocking.
    pub(crate) fn remove_network(&self, key: &str) -> Result<()> {
        if ["host", "none", DEFAULT_NETWORK].contains(&key) {
            return Err(Error::Conflict(format!(
                "{key} is a pre-defined network and cannot be removed"
            )));
        }
        let mut st = self.state.lock();
        let net = self
            .find(&st, key)
            .ok_or_else(|| Error::NoSuchNetwork(key.to_owned()))?;
        if net.name == DEFAULT_NETWORK {
            return Err(Error::Conflict(format!(
                "{DEFAULT_NETWORK} is a pre-defined network and cannot be removed"
            )));
        }
        if st.endpoints.values().any(|e| e.network == net.name) {
            return Err(Error::Conflict(format!(
                "error while removing network: network {} id {} has active endpoints",
                net.name, net.id
            )));
        }
        self.driver.remove(&Self::spec(&net))?;
        st.networks.remove(&net.name);
        self.sync(&st)?;
        self.persist(&st)
    }

    /// Subnets taken by networks and host routes (Corral's own bridges excluded, as their
    /// networks are listed already).
    fn used_subnets(&self, st: &NetState) -> Result<Vec<UsedSubnet>> {
        let mut used: Vec<UsedSubnet> = st
            .networks
            .values()
            .map(|n| UsedSubnet {
                subnet: n.pool.subnet,
                owner: n.name.clone(),
            })
            .collect();
        for (addr, prefix) in self
            .netlink
            .ipv4_routes()
            .map_err(|e| Error::Internal(format!("reading host routes: {e}")))?
        {
            if let Ok(subnet) = corral_network::Ipv4Net::new(addr, prefix) {
                used.push(UsedSubnet {
                    subnet,
                    owner: "a host route".into(),
                });
            }
        }
        Ok(used)
    }

    /// Connects a bridged container before its shim starts: creates its namespace, leases an
    /// address, plugs a veth and publishes its ports. Returns the namespace path and the
    /// address. Blocking: call from a blocking context. Leaves nothing behind on error.
    pub(crate) fn connect(&self, rec: &ContainerRecord) -> Result<(PathBuf, Ipv4Addr)> {
        let id = rec.id.as_str().to_owned();
        // A previous run's endpoint (e.g. the daemon died before recording the exit).
        self.disconnect(&rec.id)?;
        let requested = requested_ports(rec)?;
        let mut st = self.state.lock();
        let net = match rec.spec.host.network_mode.as_deref() {
            None | Some("" | "default" | DEFAULT_NETWORK) => self.default_network(&mut st)?,
            Some(name) => self
                .find(&st, name)
                .ok_or_else(|| Error::NoSuchNetwork(name.to_owned()))?,
        };
        self.driver.create(&Self::spec(&net))?;
        let ip = st
            .networks
            .get_mut(&net.name)
            .ok_or_else(|| Error::NoSuchNetwork(net.name.clone()))?
            .pool
            .lease(None)?;
        let ns_path = self.netns_dir.join(&id);
        let ep = Endpoint {
            netns: ns_path.clone(),
            host_veth: veth_name(&id, 0),
            ifname: "eth0".into(),
            ip,
            default_route: true,
        };
        let mut ports = Vec::new();
        let attempt = (|| -> Result<String> {
            let _ = self.netns.delete(&ns_path);
            self.netns.create(&ns_path).map_err(|e| {
                Error::Internal(format!("creating netns {}: {e}", ns_path.display()))
            })?;
            let mac = self.driver.attach(&Self::spec(&net), &ep)?;
            for (proto, host_ip, host_port, container_port) in &requested {
                let m = self.firewall.reserve(&PortMapping {
                    proto: *proto,
                    host_ip: *host_ip,
                    host_port: *host_port,
                    container_ip: ip,
                    container_port: *container_port,
                })?;
                ports.push(PortRecord {
                    proto: m.proto.as_str().into(),
                    host_ip: m
                        .host_ip
                        .map(|i| i.to_string())
                        .unwrap_or_else(|| "0.0.0.0".into()),
                    host_port: m.host_port,
                    container_port: m.container_port,
                });
            }
            Ok(mac_string(mac))
        })();
        let mac = match attempt {
            Ok(mac) => mac,
            Err(e) => {
                self.firewall.release(ip);
                let _ = self.driver.detach(&ep);
                let _ = self.netns.delete(&ns_path);
                if let Some(n) = st.networks.get_mut(&net.name) {
                    n.pool.release(ip);
                }
                return Err(e);
            }
        };
        st.endpoints.insert(
            id,
            EndpointRecord {
                network: net.name.clone(),
                ip,
                mac,
                host_veth: ep.host_veth.clone(),
                netns: ns_path.clone(),
                ports,
            },
        );
        let res = self.sync(&st).and_then(|()| self.persist(&st));
        drop(st);
        if let Err(e) = res {
            let _ = self.disconnect(&rec.id);
            return Err(e);
        }
        Ok((ns_path, ip))
    }

    /// Tears a container's endpoint down (ports, veth, namespace, lease); nothing to do when
    /// it has none. Blocking.
    pub(crate) fn disconnect(&self, id: &ContainerId) -> Result<()> {
        let mut st = self.state.lock();
        let Some(ep) = st.endpoints.remove(id.as_str()) else {
            return Ok(());
        };
        self.firewall.release(ep.ip);
        let endpoint = Endpoint {
            netns: ep.netns.clone(),
            host_veth: ep.host_veth.clone(),
            ifname: "eth0".into(),
            ip: ep.ip,
            default_route: true,
        };
        if let Err(e) = self.driver.detach(&endpoint) {
            tracing::warn!(container = %id, error = %e, "removing veth");
        }
        if let Err(e) = self.netns.delete(&ep.netns) {
            tracing::warn!(container = %id, error = %e, "removing netns");
        }
        if let Some(n) = st.networks.get_mut(&ep.network) {
            n.pool.release(ep.ip);
        }
        self.sync(&st)?;
        self.persist(&st)
    }

    /// Allocates (and persists) the default network's subnet if that has not happened yet;
    /// returns the state.
    pub(crate) fn ensure_default(&self) -> Result<NetState> {
        let mut st = self.state.lock();
        if !st.networks.contains_key(DEFAULT_NETWORK) {
            self.default_network(&mut st)?;
            self.persist(&st)?;
        }
        Ok(st.clone())
    }

    /// Whether container `id` has an endpoint (cheap, never blocks on the kernel).
    pub(crate) fn has_endpoint(&self, id: &ContainerId) -> bool {
        self.state.lock().endpoints.contains_key(id.as_str())
    }

    /// A copy of the whole state.
    pub(crate) fn snapshot(&self) -> NetState {
        self.state.lock().clone()
    }

    /// On daemon shutdown: when no container is connected, removes the bridges and the
    /// nftables table (they are re-created on demand); otherwise leaves everything in place
    /// for live restore.
    pub(crate) fn shutdown(&self) {
        let st = self.state.lock();
        if !st.endpoints.is_empty() {
            return;
        }
        for net in st.networks.values() {
            if let Err(e) = self.driver.remove(&Self::spec(net)) {
                tracing::warn!(network = %net.name, error = %e, "removing bridge");
            }
        }
        if let Err(e) = self.firewall.teardown() {
            tracing::warn!(error = %e, "removing the nftables table");
        }
    }
}

fn endpoint_id(container: &str, network: &str) -> String {
    (0..4)
        .map(|i| format!("{:016x}", fnv64(&format!("{container}-{network}-{i}"))))
        .collect()
}

fn fnv64(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl super::LocalEngine {
    /// Connects a container whose network mode is the default bridge; `None` for `host`
    /// and `none`. Blocking.
    pub(crate) fn connect_network(
        &self,
        rec: &ContainerRecord,
    ) -> Result<Option<(PathBuf, Ipv4Addr)>> {
        match rec.spec.host.network_mode.as_deref() {
            Some("host" | "none") => Ok(None),
            _ => self.inner.network.connect(rec).map(Some),
        }
    }

    /// The endpoint of container `id` (full id) in the API's shape.
    pub(crate) fn network_of(&self, id: &str) -> Option<crate::api::ContainerNetwork> {
        let st = self.inner.network.snapshot();
        let ep = st.endpoints.get(id)?;
        let net = st.networks.get(&ep.network)?;
        Some(crate::api::ContainerNetwork {
            network: net.name.clone(),
            network_id: net.id.clone(),
            endpoint_id: endpoint_id(id, &net.id),
            ip: ep.ip.to_string(),
            prefix_len: net.pool.subnet.prefix(),
            gateway: net.pool.gateway.to_string(),
            mac: ep.mac.clone(),
            sandbox_key: ep.netns.display().to_string(),
            ports: ep
                .ports
                .iter()
                .map(|p| crate::api::PublishedPort {
                    proto: p.proto.clone(),
                    host_ip: p.host_ip.clone(),
                    host_port: p.host_port,
                    container_port: p.container_port,
                })
                .collect(),
        })
    }

    /// `bridge` (its subnet allocated on first listing), `host` and `none`.
    pub(crate) async fn network_list(&self) -> Result<Vec<crate::api::NetworkInfo>> {
        let this = self.clone();
        let st = tokio::task::spawn_blocking(move || this.inner.network.ensure_default())
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        let mut out = Vec::new();
        for net in st.networks.values() {
            let containers = st
                .endpoints
                .iter()
                .filter(|(_, e)| e.network == net.name)
                .map(|(id, e)| {
                    (
                        id.clone(),
                        (
                            endpoint_id(id, &net.id),
                            e.mac.clone(),
                            format!("{}/{}", e.ip, net.pool.subnet.prefix()),
                        ),
                    )
                })
                .collect();
            out.push(crate::api::NetworkInfo {
                id: net.id.clone(),
                name: net.name.clone(),
                driver: "bridge".into(),
                created: net.created.clone(),
                subnet: net.pool.subnet.to_string(),
                gateway: net.pool.gateway.to_string(),
                internal: net.internal,
                bridge: net.bridge.clone(),
                containers,
                labels: net.labels.clone(),
            });
        }
        for (name, driver) in [("host", "host"), ("none", "null")] {
            let id: String = (0..4)
                .map(|i| {
                    format!(
                        "{:016x}",
                        fnv64(&format!("{}-{name}-{i}", self.inner.cfg.instance))
                    )
                })
                .collect();
            out.push(crate::api::NetworkInfo {
                id,
                name: name.into(),
                driver: driver.into(),
                created: String::new(),
                subnet: String::new(),
                gateway: String::new(),
                internal: false,
                bridge: String::new(),
                containers: BTreeMap::new(),
                labels: BTreeMap::new(),
            });
        }
        Ok(out)
    }

    /// Tears a container's endpoint down from async code; failures are logged.
    pub(crate) async fn disconnect_network(&self, id: &ContainerId) {
        if !self.inner.network.has_endpoint(id) {
            return;
        }
        let this = self.clone();
        let id2 = id.clone();
        let res = tokio::task::spawn_blocking(move || this.inner.network.disconnect(&id2)).await;
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(container = %id, error = %e, "disconnecting network"),
            Err(e) => tracing::warn!(container = %id, error = %e, "disconnecting network"),
        }
    }
}

/// Appends the container's own address line to its `/etc/hosts`, as dockerd does.
pub(crate) fn append_hosts_line(
    hosts: &std::path::Path,
    ip: Ipv4Addr,
    hostname: &str,
) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(hosts)
        .map_err(crate::error::io(format!("opening {}", hosts.display())))?;
    writeln!(f, "{ip}\t{hostname}")
        .map_err(crate::error::io(format!("writing {}", hosts.display())))
}

/// Checks `-p`/`-P` at create time, as dockerd refuses a bad port spec before creating.
pub(crate) fn validate_ports(spec: &corral_core::ContainerSpec) -> Result<()> {
    for (key, bindings) in &spec.host.port_bindings {
        let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
        proto_of(proto)?;
        parse_port(port, "container")?;
        for (hip, hport) in bindings {
            if !hip.is_empty() {
                hip.parse::<Ipv4Addr>().map_err(|_| {
                    Error::InvalidInput(format!("invalid host IP {hip:?} (IPv4 only)"))
                })?;
            }
            if !hport.is_empty() {
                parse_port(hport, "host")?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_ids_are_stable_hex() {
        assert_eq!(fnv64(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(mac_string([2, 0x42, 0xac, 0x11, 0, 2]), "02:42:ac:11:00:02");
    }

    #[test]
    fn ports_parse_like_docker() {
        assert_eq!(proto_of("udp").unwrap(), Proto::Udp);
        assert!(proto_of("sctp").is_err());
        assert!(parse_port("70000", "host").is_err());
        assert_eq!(parse_port("8080", "host").unwrap(), 8080);
    }
}
