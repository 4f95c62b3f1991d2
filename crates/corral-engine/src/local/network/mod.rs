//! Container networking of the local engine: networks with their IPAM pools, each
//! container's attachments (the networks it is configured for, with aliases and static
//! addresses) and, while it runs, one namespace with one veth endpoint per attached network,
//! published ports and the instance's nftables table. The state is plain data kept in the
//! state store under [`STATE_KEY`], so leases and ports survive daemon restarts; the kernel
//! objects (bridges, netns bind mounts, veths) survive them too and are adopted, and the
//! nftables table is re-created with the same content.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::Utc;
use corral_core::{ContainerId, ContainerRecord, EndpointSpec};
use corral_network::{
    bridge_name, AddressPool, BridgeDriver, Firewall, NetworkDriver, NetworkSpec, PortMapping,
    Proto, SubnetPool, UsedSubnet,
};
use corral_store::StateStore;
use corral_sys::netlink::{LinuxNetlink, Netlink};
use corral_sys::netns::{LinuxNetns, Netns};
use corral_sys::nftables::NftCommand;
use parking_lot::Mutex;
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{Error, Result};

mod endpoints;
mod registry;

/// The state store key of [`NetState`].
pub(crate) const STATE_KEY: &str = "network_state";

/// The name of the default network.
pub(crate) const DEFAULT_NETWORK: &str = "bridge";

/// At most this many networks per container (veth names carry a two-digit index).
const MAX_ENDPOINTS: usize = 100;

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

fn eth0() -> String {
    "eth0".into()
}

/// A running container's endpoint on one network, as persisted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EndpointRecord {
    pub(crate) network: String,
    pub(crate) ip: Ipv4Addr,
    pub(crate) mac: String,
    pub(crate) host_veth: String,
    pub(crate) netns: PathBuf,
    pub(crate) ports: Vec<PortRecord>,
    #[serde(default)]
    pub(crate) aliases: Vec<String>,
    #[serde(default = "eth0")]
    pub(crate) ifname: String,
    /// The address was asked for (`--ip`), shown as `IPAMConfig`.
    #[serde(default)]
    pub(crate) static_ip: bool,
}

/// A network a container is configured for (running or not), as `connect` and create's
/// `EndpointsConfig` asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Attachment {
    pub(crate) network: String,
    #[serde(default)]
    pub(crate) aliases: Vec<String>,
    #[serde(default)]
    pub(crate) ip: Option<Ipv4Addr>,
    #[serde(default)]
    pub(crate) mac: Option<String>,
}

/// Everything the engine persists about networking.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct NetState {
    pub(crate) networks: BTreeMap<String, NetRecord>,
    /// Live endpoints per running container, primary (eth0) first.
    #[serde(default, deserialize_with = "endpoints_compat")]
    pub(crate) endpoints: BTreeMap<String, Vec<EndpointRecord>>,
    /// Configured networks per container once `connect`/`disconnect` changed them; until
    /// then they derive from the container's spec ([`attachments_from_spec`]).
    #[serde(default)]
    pub(crate) attachments: BTreeMap<String, Vec<Attachment>>,
    /// Upstream resolvers of each container served by the embedded DNS.
    #[serde(default)]
    pub(crate) dns_upstreams: BTreeMap<String, Vec<std::net::SocketAddr>>,
}

/// Reads `endpoints` written before several networks per container (one record per
/// container) as well as the current list form, so live restore survives the upgrade.
fn endpoints_compat<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<BTreeMap<String, Vec<EndpointRecord>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<EndpointRecord>),
        One(EndpointRecord),
    }
    let raw: BTreeMap<String, OneOrMany> = BTreeMap::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|(k, v)| match v {
            OneOrMany::Many(list) => (k, list),
            OneOrMany::One(one) => (k, vec![one]),
        })
        .collect())
}

/// A network event for the engine to publish: (action, network id, network name,
/// container id).
pub(crate) type NetEvent = (&'static str, String, String, String);

/// The engine's networking: driver, firewall, DNS and persisted state.
pub(crate) struct Networking {
    netlink: Arc<dyn Netlink>,
    netns: Arc<dyn Netns>,
    driver: BridgeDriver,
    firewall: Firewall,
    store: Arc<dyn StateStore>,
    netns_dir: PathBuf,
    instance: String,
    /// The ids of the `host` and `none` pseudo networks, derived from the instance once:
    /// `docker ps` shows one per listed container.
    builtin_ids: [String; 2],
    state: Mutex<NetState>,
    events: Mutex<Vec<NetEvent>>,
    pub(crate) dns: corral_dns::DnsServer,
    pub(crate) sockets: Arc<dyn corral_sys::netsock::NetnsSockets>,
}

fn mac_string(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let bad = || Error::InvalidInput(format!("{s} is not a valid mac address"));
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 {
            return Err(bad());
        }
        mac[i] = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    Ok(mac)
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

/// A host port spec: one port, or a range `a-b` the daemon picks a free port from (as
/// dockerd does for `-p 8000-8010:80`); `(0, 0)` for an ephemeral port.
fn parse_host_ports(s: &str) -> Result<(u16, u16)> {
    if s.is_empty() {
        return Ok((0, 0));
    }
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (parse_port(a, "host")?, parse_port(b, "host")?);
            if a > b || a == 0 {
                return Err(Error::InvalidInput(format!(
                    "invalid host port range {s:?}"
                )));
            }
            Ok((a, b))
        }
        None => {
            let p = parse_port(s, "host")?;
            Ok((p, p))
        }
    }
}

/// A port to publish: protocol, host address, host port range (0..0: ephemeral),
/// container port.
pub(crate) type RequestedPort = (Proto, Option<Ipv4Addr>, (u16, u16), u16);

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
            out.push((proto, ip, parse_host_ports(hport)?, cport));
        }
    }
    if h.publish_all_ports {
        for key in &rec.spec.exposed_ports {
            if h.port_bindings.contains_key(key) {
                continue;
            }
            let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
            out.push((
                proto_of(proto)?,
                None,
                (0, 0),
                parse_port(port, "container")?,
            ));
        }
    }
    Ok(out)
}

/// Whether `name` is the default network (or one of its spellings in a network mode).
pub(crate) fn is_default(name: &str) -> bool {
    matches!(name, "" | "default" | DEFAULT_NETWORK)
}

/// The networks a container's spec asks for: its network mode first (the primary network,
/// `eth0`), then the other `EndpointsConfig` entries by name. `host`, `none` and
/// `container:` modes have none.
pub(crate) fn attachments_from_spec(rec: &ContainerRecord) -> Vec<Attachment> {
    let mode = rec.spec.host.network_mode.as_deref().unwrap_or("");
    if matches!(mode, "host" | "none") || mode.starts_with("container:") {
        return Vec::new();
    }
    let primary = if is_default(mode) {
        DEFAULT_NETWORK
    } else {
        mode
    };
    let from = |name: &str, ep: Option<&EndpointSpec>| Attachment {
        network: name.to_owned(),
        aliases: ep.map(|e| e.aliases.clone()).unwrap_or_default(),
        ip: ep
            .and_then(|e| e.ipv4_address.as_deref())
            .and_then(|s| s.parse().ok()),
        mac: ep
            .and_then(|e| e.mac_address.clone())
            .filter(|m| !m.is_empty()),
    };
    let primary_ep = rec.spec.networks.get(primary).or_else(|| {
        is_default(mode)
            .then(|| rec.spec.networks.get("default"))
            .flatten()
    });
    let mut out = vec![from(primary, primary_ep)];
    for (name, ep) in &rec.spec.networks {
        if name == primary || (is_default(mode) && is_default(name)) {
            continue;
        }
        out.push(from(name, Some(ep)));
    }
    out
}

fn lease_error(e: corral_network::Error) -> Error {
    match e {
        // dockerd's texts and statuses (libnetwork's IPAM errors).
        corral_network::Error::AddressInUse(_) => Error::Forbidden("Address already in use".into()),
        corral_network::Error::AddressOutOfRange { addr, .. } => Error::Refused(format!(
            "Invalid address {addr}: It does not belong to any of this network's subnets"
        )),
        other => other.into(),
    }
}

fn ifindex(ifname: &str) -> Option<usize> {
    ifname.strip_prefix("eth")?.parse().ok()
}

// === impl Networking ===

impl Networking {
    /// The id of the `host` or `none` pseudo network (`name` is one of them).
    pub(crate) fn builtin_id(&self, name: &str) -> &str {
        if name == "host" {
            &self.builtin_ids[0]
        } else {
            &self.builtin_ids[1]
        }
    }

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
            builtin_ids: ["host", "none"].map(|name| builtin_id(instance, name)),
            state: Mutex::new(state),
            events: Mutex::new(Vec::new()),
            dns: corral_dns::DnsServer::new(),
            sockets: Arc::new(corral_sys::netsock::LinuxNetnsSockets::new()),
        };
        let st = this.state.lock().clone();
        if !st.endpoints.is_empty() {
            for net in st.networks.values() {
                this.driver.create(&Self::spec(net))?;
            }
            for ep in st.endpoints.values().flatten() {
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

    /// Reserves one requested port; a host port range takes its first free port.
    fn reserve_requested(&self, ip: Ipv4Addr, req: &RequestedPort) -> Result<PortRecord> {
        let (proto, host_ip, (lo, hi), container_port) = *req;
        let mut last = None;
        for host_port in lo..=hi {
            let m = PortMapping {
                proto,
                host_ip,
                host_port,
                container_ip: ip,
                container_port,
            };
            match self.firewall.reserve(&m) {
                Ok(m) => {
                    return Ok(PortRecord {
                        proto: m.proto.as_str().into(),
                        host_ip: m
                            .host_ip
                            .map(|i| i.to_string())
                            .unwrap_or_else(|| "0.0.0.0".into()),
                        host_port: m.host_port,
                        container_port: m.container_port,
                    })
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.map_or_else(
            || Error::InvalidInput("empty host port range".into()),
            Error::from,
        ))
    }

    fn sync(&self, st: &NetState) -> Result<()> {
        let active: Vec<NetworkSpec> = st
            .networks
            .values()
            .filter(|n| st.endpoints.values().flatten().any(|e| e.network == n.name))
            .map(Self::spec)
            .collect();
        Ok(self.firewall.sync(&active)?)
    }

    fn persist(&self, st: &NetState) -> Result<()> {
        let json = serde_json::to_string(st).map_err(|e| Error::Internal(e.to_string()))?;
        Ok(self.store.put_meta(STATE_KEY, &json)?)
    }

    /// The network events since the last call, for the engine to publish.
    pub(crate) fn take_events(&self) -> Vec<NetEvent> {
        std::mem::take(&mut *self.events.lock())
    }

    fn event(&self, action: &'static str, net: &NetRecord, container: &str) {
        self.events.lock().push((
            action,
            net.id.clone(),
            net.name.clone(),
            container.to_owned(),
        ));
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
        if let Some(n) = st.networks.values().find(|n| n.id == key) {
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

    /// Resolves `key` to a network, allocating the default one on first use.
    fn resolve(&self, st: &mut NetState, key: &str) -> Result<NetRecord> {
        if is_default(key) {
            return self.default_network(st);
        }
        self.find(st, key)
            .ok_or_else(|| Error::NoSuchNetwork(key.to_owned()))
    }

    /// Whether `key` names a user-defined network (or the default one once allocated).
    pub(crate) fn exists(&self, key: &str) -> bool {
        let st = self.state.lock();
        self.find(&st, key).is_some()
    }

    /// Checks the network parts of a create request as dockerd does: every named network
    /// exists, aliases and static addresses only on user-defined networks, addresses and
    /// MACs well-formed.
    pub(crate) fn validate_spec(&self, spec: &corral_core::ContainerSpec) -> Result<()> {
        let mode = spec.host.network_mode.as_deref().unwrap_or("");
        match mode {
            "" | "default" | "bridge" | "none" | "host" => {}
            m if m.starts_with("container:") => {}
            other if self.exists(other) => {}
            other => return Err(Error::NoSuchNetwork(other.to_owned())),
        }
        for (name, ep) in &spec.networks {
            if !is_default(name) && !["host", "none"].contains(&name.as_str()) && !self.exists(name)
            {
                return Err(Error::NoSuchNetwork(name.clone()));
            }
            check_endpoint(name, ep)?;
        }
        Ok(())
    }

    /// The networks container `rec` is configured for.
    pub(crate) fn attachments(&self, st: &NetState, rec: &ContainerRecord) -> Vec<Attachment> {
        st.attachments
            .get(rec.id.as_str())
            .cloned()
            .unwrap_or_else(|| attachments_from_spec(rec))
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

    /// Whether container `id` has endpoints (cheap, never blocks on the kernel).
    pub(crate) fn has_endpoint(&self, id: &ContainerId) -> bool {
        self.state.lock().endpoints.contains_key(id.as_str())
    }

    /// Whether container `id` has an endpoint on a user-defined network (cheap).
    pub(crate) fn has_user_endpoint(&self, id: &ContainerId) -> bool {
        self.state
            .lock()
            .endpoints
            .get(id.as_str())
            .is_some_and(|eps| eps.iter().any(|e| !is_default(&e.network)))
    }

    /// Runs `f` on the state under its lock, without copying it. `f` must not call back
    /// into the networking (the lock is not re-entrant).
    pub(crate) fn with_state<R>(&self, f: impl FnOnce(&NetState) -> R) -> R {
        f(&self.state.lock())
    }

    /// A copy of the whole state.
    pub(crate) fn snapshot(&self) -> NetState {
        self.state.lock().clone()
    }

    /// On daemon shutdown: stops the DNS listeners; when no container is connected,
    /// removes the bridges and the nftables table (they are re-created on demand);
    /// otherwise leaves everything in place for live restore.
    pub(crate) fn shutdown(&self) {
        self.dns.shutdown();
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

/// dockerd's checks of one endpoint request.
fn check_endpoint(network: &str, ep: &EndpointSpec) -> Result<()> {
    if is_default(network) {
        if !ep.aliases.is_empty() {
            return Err(Error::InvalidInput(
                "network-scoped alias is supported only for containers in user defined networks"
                    .into(),
            ));
        }
        if ep.ipv4_address.as_deref().is_some_and(|s| !s.is_empty()) {
            return Err(Error::InvalidInput(
                "user specified IP address is supported on user defined networks only".into(),
            ));
        }
    }
    if let Some(ip) = ep.ipv4_address.as_deref().filter(|s| !s.is_empty()) {
        ip.parse::<Ipv4Addr>()
            .map_err(|_| Error::InvalidInput(format!("invalid IPv4 address: {ip}")))?;
    }
    if let Some(mac) = ep.mac_address.as_deref().filter(|s| !s.is_empty()) {
        parse_mac(mac)?;
    }
    Ok(())
}

pub(crate) fn endpoint_id(container: &str, network: &str) -> String {
    (0..4)
        .map(|i| format!("{:016x}", fnv64(&format!("{container}-{network}-{i}"))))
        .collect()
}

/// The stable id of the `host` or `none` pseudo network of `instance`.
fn builtin_id(instance: &str, name: &str) -> String {
    (0..4)
        .map(|i| format!("{:016x}", fnv64(&format!("{instance}-{name}-{i}"))))
        .collect()
}

pub(crate) fn fnv64(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
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
            parse_host_ports(hport)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
