//! The kernel side of a container's attachments: plugging and unplugging one endpoint
//! (lease, veth, ports), all of a container's endpoints at start and exit, and `network
//! connect`/`disconnect` on created and running containers.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use corral_core::{ContainerId, ContainerRecord, EndpointSpec};
use corral_network::{veth_name, Endpoint, NetworkDriver};

use super::{
    check_endpoint, ifindex, is_default, lease_error, mac_string, parse_mac, requested_ports,
    Attachment, EndpointRecord, NetRecord, NetState, Networking, RequestedPort, DEFAULT_NETWORK,
    MAX_ENDPOINTS,
};
use crate::error::{Error, Result};

// === impl Networking ===

impl Networking {
    /// Leases an address on `net`, plugs a veth `eth<index>` into `ns` and publishes
    /// `requested`; undoes its own steps on error.
    #[allow(clippy::too_many_arguments)]
    fn plug(
        &self,
        st: &mut NetState,
        id: &str,
        ns: &std::path::Path,
        net: &NetRecord,
        att: &Attachment,
        index: usize,
        requested: &[RequestedPort],
    ) -> Result<EndpointRecord> {
        let mac = att.mac.as_deref().map(parse_mac).transpose()?;
        self.driver.create(&Self::spec(net))?;
        let ip = st
            .networks
            .get_mut(&net.name)
            .ok_or_else(|| Error::NoSuchNetwork(net.name.clone()))?
            .pool
            .lease(att.ip)
            .map_err(lease_error)?;
        let ep = Endpoint {
            netns: ns.to_path_buf(),
            host_veth: veth_name(id, index),
            ifname: format!("eth{index}"),
            ip,
            default_route: index == 0,
            mac,
        };
        let mut ports = Vec::new();
        let attempt = (|| -> Result<String> {
            let mac = self.driver.attach(&Self::spec(net), &ep)?;
            for req in requested {
                ports.push(self.reserve_requested(ip, req)?);
            }
            Ok(mac_string(mac))
        })();
        match attempt {
            Ok(mac) => Ok(EndpointRecord {
                network: net.name.clone(),
                ip,
                mac,
                host_veth: ep.host_veth,
                netns: ep.netns,
                ports,
                aliases: att.aliases.clone(),
                ifname: ep.ifname,
                static_ip: att.ip.is_some(),
            }),
            Err(e) => {
                self.firewall.release(ip);
                let _ = self.driver.detach(&ep);
                if let Some(n) = st.networks.get_mut(&net.name) {
                    n.pool.release(ip);
                }
                Err(e)
            }
        }
    }

    /// Releases an endpoint's ports, veth and lease; failures are logged.
    fn unplug(&self, st: &mut NetState, id: &str, ep: &EndpointRecord) {
        self.firewall.release(ep.ip);
        let endpoint = Endpoint {
            netns: ep.netns.clone(),
            host_veth: ep.host_veth.clone(),
            ifname: ep.ifname.clone(),
            ip: ep.ip,
            default_route: false,
            mac: None,
        };
        if let Err(e) = self.driver.detach(&endpoint) {
            tracing::warn!(container = %id, error = %e, "removing veth");
        }
        if let Some(n) = st.networks.get_mut(&ep.network) {
            n.pool.release(ep.ip);
            let net = n.clone();
            self.event("disconnect", &net, id);
        }
    }

    /// Connects a container before its shim starts: creates its namespace and plugs one
    /// endpoint per configured network (the first one `eth0` with the default route and
    /// the published ports). Returns the namespace path and the primary address (`None`
    /// when every network was disconnected: the namespace has only `lo`). Blocking.
    /// Leaves nothing behind on error.
    pub(crate) fn connect(
        &self,
        rec: &ContainerRecord,
        upstreams: Vec<std::net::SocketAddr>,
    ) -> Result<(PathBuf, Option<Ipv4Addr>)> {
        let id = rec.id.as_str().to_owned();
        // A previous run's endpoints (e.g. the daemon died before recording the exit).
        self.disconnect(&rec.id)?;
        let requested = requested_ports(rec)?;
        let mut st = self.state.lock();
        let atts = self.attachments(&st, rec);
        let mut nets = Vec::new();
        for a in &atts {
            nets.push(self.resolve(&mut st, &a.network)?);
        }
        let ns_path = self.netns_dir.join(&id);
        let _ = self.netns.delete(&ns_path);
        self.netns
            .create(&ns_path)
            .map_err(|e| Error::Internal(format!("creating netns {}: {e}", ns_path.display())))?;
        let mut eps: Vec<EndpointRecord> = Vec::new();
        for (i, (att, net)) in atts.iter().zip(&nets).enumerate() {
            let ports: &[RequestedPort] = if i == 0 { &requested } else { &[] };
            match self.plug(&mut st, &id, &ns_path, net, att, i, ports) {
                Ok(ep) => eps.push(ep),
                Err(e) => {
                    for ep in &eps {
                        self.unplug(&mut st, &id, ep);
                    }
                    self.events.lock().retain(|ev| ev.3 != id);
                    let _ = self.netns.delete(&ns_path);
                    return Err(e);
                }
            }
        }
        if eps.is_empty() {
            // Only `lo`, which the driver brings up with the first endpoint otherwise.
            let _ = self.netlink.set_up(Some(&ns_path), "lo");
        }
        for net in &nets {
            self.event("connect", net, &id);
        }
        let primary = eps.first().map(|e| e.ip);
        st.endpoints.insert(id.clone(), eps);
        st.dns_upstreams.insert(id, upstreams);
        let res = self.sync(&st).and_then(|()| self.persist(&st));
        drop(st);
        if let Err(e) = res {
            let _ = self.disconnect(&rec.id);
            return Err(e);
        }
        Ok((ns_path, primary))
    }

    /// Tears a container's endpoints down (ports, veths, namespace, leases); nothing to do
    /// when it has none. Blocking.
    pub(crate) fn disconnect(&self, id: &ContainerId) -> Result<()> {
        let mut st = self.state.lock();
        let Some(eps) = st.endpoints.remove(id.as_str()) else {
            return Ok(());
        };
        st.dns_upstreams.remove(id.as_str());
        for ep in &eps {
            self.unplug(&mut st, id.as_str(), ep);
        }
        let ns = eps
            .first()
            .map_or_else(|| self.netns_dir.join(id.as_str()), |e| e.netns.clone());
        if let Err(e) = self.netns.delete(&ns) {
            tracing::warn!(container = %id, error = %e, "removing netns");
        }
        self.sync(&st)?;
        self.persist(&st)
    }

    /// Forgets a removed container's configured networks. Blocking.
    pub(crate) fn forget(&self, id: &ContainerId) -> Result<()> {
        let mut st = self.state.lock();
        if st.attachments.remove(id.as_str()).is_some() {
            self.persist(&st)?;
        }
        Ok(())
    }

    /// `network connect`: adds `key` to the container's networks; a running container gets
    /// the endpoint at once (`eth<n>`). Blocking. Leaves nothing behind on error.
    pub(crate) fn connect_one(
        &self,
        rec: &ContainerRecord,
        running: bool,
        key: &str,
        ep: &EndpointSpec,
    ) -> Result<()> {
        let id = rec.id.as_str();
        let mode = rec.spec.host.network_mode.as_deref().unwrap_or("");
        if key == "host" || mode == "host" || mode.starts_with("container:") {
            return Err(Error::InvalidInput(if key == "host" {
                "container cannot be disconnected from host network or connected to host network"
                    .into()
            } else {
                "container sharing network namespace with another container or host cannot be connected to any other network".into()
            }));
        }
        if key == "none" || mode == "none" {
            return Err(Error::InvalidInput(
                "container cannot be connected to multiple networks with one of the networks in private (none) mode".into(),
            ));
        }
        let mut st = self.state.lock();
        let net = self.resolve(&mut st, key)?;
        check_endpoint(&net.name, ep)?;
        let att = Attachment {
            network: net.name.clone(),
            aliases: ep.aliases.clone(),
            ip: ep.ipv4_address.as_deref().and_then(|s| s.parse().ok()),
            mac: ep.mac_address.clone().filter(|m| !m.is_empty()),
        };
        if let Some(ip) = att.ip {
            if !net.pool.subnet.is_host(ip) {
                return Err(lease_error(corral_network::Error::AddressOutOfRange {
                    addr: ip,
                    subnet: net.pool.subnet.to_string(),
                }));
            }
        }
        let before = st.clone();
        let mut atts = self.attachments(&st, rec);
        let live = running.then(|| st.endpoints.get(id).cloned()).flatten();
        if let Some(eps) = live {
            if eps.iter().any(|e| e.network == net.name) {
                return Err(Error::Forbidden(format!(
                    "endpoint with name {} already exists in network {}",
                    rec.name, net.name
                )));
            }
            let ns = eps
                .first()
                .map_or_else(|| self.netns_dir.join(id), |e| e.netns.clone());
            let used: Vec<usize> = eps.iter().filter_map(|e| ifindex(&e.ifname)).collect();
            let index = (0..MAX_ENDPOINTS)
                .find(|i| !used.contains(i))
                .ok_or_else(|| Error::Forbidden("too many networks".into()))?;
            let new = self.plug(&mut st, id, &ns, &net, &att, index, &[])?;
            st.endpoints
                .entry(id.to_owned())
                .or_default()
                .push(new.clone());
            self.event("connect", &net, id);
            atts.retain(|a| a.network != net.name);
            atts.push(att);
            st.attachments.insert(id.to_owned(), atts);
            if let Err(e) = self.sync(&st).and_then(|()| self.persist(&st)) {
                self.unplug(&mut st, id, &new);
                *st = before;
                let _ = self.sync(&st);
                self.events.lock().retain(|ev| ev.3 != id);
                return Err(e);
            }
            return Ok(());
        }
        // Not running: dockerd replaces the configuration of an already attached network.
        match atts.iter_mut().find(|a| a.network == net.name) {
            Some(a) => *a = att,
            None => atts.push(att),
        }
        st.attachments.insert(id.to_owned(), atts);
        if let Err(e) = self.persist(&st) {
            *st = before;
            return Err(e);
        }
        Ok(())
    }

    /// `network disconnect`: removes `key` from the container's networks; a running
    /// container loses the endpoint at once. As dockerd, a network that no longer exists
    /// (removed while the container was stopped) is dropped from a stopped container's
    /// networks, and from a running one's with `force`. Blocking.
    pub(crate) fn disconnect_one(
        &self,
        rec: &ContainerRecord,
        running: bool,
        key: &str,
        force: bool,
    ) -> Result<()> {
        let id = rec.id.as_str();
        let mode = rec.spec.host.network_mode.as_deref().unwrap_or("");
        if key == "host" || mode == "host" {
            return Err(Error::InvalidInput(
                "container cannot be disconnected from host network or connected to host network"
                    .into(),
            ));
        }
        let mut st = self.state.lock();
        let net = if is_default(key) && !st.networks.contains_key(DEFAULT_NETWORK) {
            self.default_network(&mut st)?
        } else {
            match self.find(&st, key) {
                Some(n) => n,
                None if !running || force => return self.drop_stale_attachment(&mut st, rec, key),
                None => return Err(Error::NoSuchNetwork(key.to_owned())),
            }
        };
        let mut atts = self.attachments(&st, rec);
        let configured = atts.iter().any(|a| a.network == net.name);
        let live = running
            .then(|| {
                st.endpoints
                    .get(id)
                    .and_then(|eps| eps.iter().position(|e| e.network == net.name))
            })
            .flatten();
        if running && live.is_none() {
            return Err(Error::Refused(format!(
                "container {id} is not connected to network {}",
                net.name
            )));
        }
        if !running && !configured {
            return Err(Error::Refused(format!(
                "container {id} is not connected to the network {}",
                net.name
            )));
        }
        if let Some(pos) = live {
            let ep = st.endpoints.get_mut(id).map(|eps| eps.remove(pos));
            if let Some(ep) = ep {
                self.unplug(&mut st, id, &ep);
            }
        }
        atts.retain(|a| a.network != net.name);
        st.attachments.insert(id.to_owned(), atts);
        if running {
            self.sync(&st)?;
        }
        self.persist(&st)
    }

    /// Forgets the container's attachment to `key`, a network that no longer exists
    /// (dockerd deletes it from the container's settings by name); dockerd's 500 when the
    /// container has none.
    fn drop_stale_attachment(
        &self,
        st: &mut NetState,
        rec: &ContainerRecord,
        key: &str,
    ) -> Result<()> {
        let mut atts = self.attachments(st, rec);
        let before = atts.len();
        atts.retain(|a| a.network != key);
        if atts.len() == before {
            return Err(Error::Refused(format!(
                "container {} is not connected to the network {key}",
                rec.id
            )));
        }
        st.attachments.insert(rec.id.to_string(), atts);
        self.persist(st)
    }

    /// `network disconnect --force` of a container the engine does not know: removes the
    /// endpoints on network `key` still recorded under that container id (left by a crash
    /// between a removal and its network cleanup), as dockerd's `ForceEndpointDelete`;
    /// dockerd's 404 `endpoint NAME not found` when there is none. Blocking.
    pub(crate) fn force_remove_endpoint(&self, key: &str, container: &str) -> Result<()> {
        let mut st = self.state.lock();
        let net = self
            .find(&st, key)
            .ok_or_else(|| Error::NoSuchNetwork(key.to_owned()))?;
        let stale: Vec<EndpointRecord> = st
            .endpoints
            .get(container)
            .map(|eps| {
                eps.iter()
                    .filter(|e| e.network == net.name)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if stale.is_empty() {
            return Err(Error::NotFound(format!("endpoint {container} not found")));
        }
        for ep in &stale {
            self.unplug(&mut st, container, ep);
        }
        if let Some(eps) = st.endpoints.get_mut(container) {
            eps.retain(|e| e.network != net.name);
            if eps.is_empty() {
                st.endpoints.remove(container);
            }
        }
        self.sync(&st)?;
        self.persist(&st)
    }
}
