//! The engine side of networking: container start/exit hooks, the `network` API calls
//! (connect, disconnect, prune, list), network events, and the embedded DNS server's zone
//! and listeners (`127.0.0.11:53` inside each container on a user-defined network).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;

use corral_core::{ContainerId, ContainerRecord, ContainerStatus, EndpointSpec, HostSpec};
use corral_dns::{ContainerView, Zone, ZoneEntry};

use super::network::{endpoint_id, is_default, NetState, DEFAULT_NETWORK};
use crate::error::{Error, Result};

/// The host's resolver configuration: containers on the default network copy it, the
/// embedded DNS forwards to its nameservers.
const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";

/// Whether the container's `/etc/resolv.conf` points at the embedded DNS server: its
/// primary network is user-defined (dockerd: the default `bridge` has no name resolution
/// and copies the host's resolv.conf; `host` and `none` too).
pub(crate) fn uses_embedded_dns(rec: &ContainerRecord) -> bool {
    let mode = rec.spec.host.network_mode.as_deref().unwrap_or("");
    !(is_default(mode) || matches!(mode, "host" | "none") || mode.starts_with("container:"))
}

/// The resolv.conf of a container served by the embedded DNS: `nameserver 127.0.0.11`,
/// the host's (or `--dns-search`) search domains and the host's (or `--dns-opt`) options
/// plus `ndots:0`, as dockerd writes it.
pub(crate) fn embedded_resolv_conf(host_resolv: &str, h: &HostSpec) -> String {
    let mut out = format!("nameserver {}\n", corral_dns::RESOLVER_IP);
    if h.dns_search.is_empty() {
        for line in host_resolv.lines().map(str::trim) {
            if line.starts_with("search ") || line.starts_with("domain ") {
                out.push_str(&line.replacen("domain ", "search ", 1));
                out.push('\n');
            }
        }
    } else {
        out.push_str(&format!("search {}\n", h.dns_search.join(" ")));
    }
    let mut opts: Vec<String> = if h.dns_options.is_empty() {
        host_resolv
            .lines()
            .filter_map(|l| l.trim().strip_prefix("options "))
            .flat_map(|o| o.split_whitespace().map(str::to_owned))
            .collect()
    } else {
        h.dns_options.clone()
    };
    if !opts.iter().any(|o| o.starts_with("ndots:")) {
        opts.push("ndots:0".into());
    }
    out.push_str(&format!("options {}\n", opts.join(" ")));
    out
}

/// Where the embedded DNS forwards a container's other names: its `--dns` servers, else
/// the host's nameservers.
pub(crate) fn upstreams_for(rec: &ContainerRecord) -> Vec<SocketAddr> {
    if rec.spec.host.dns.is_empty() {
        let host = std::fs::read_to_string(HOST_RESOLV_CONF).unwrap_or_default();
        corral_dns::forward::nameservers(&host)
    } else {
        let conf: String = rec
            .spec
            .host
            .dns
            .iter()
            .map(|d| format!("nameserver {d}\n"))
            .collect();
        corral_dns::forward::nameservers(&conf)
    }
}

/// The zone for `st`: every endpoint on a user-defined network under the container's name,
/// its aliases and its short id; each container with endpoints sees its own networks and
/// forwards other names only if one of them is not `--internal`.
pub(crate) fn build_zone(st: &NetState, names: &BTreeMap<String, String>) -> Zone {
    let mut entries = Vec::new();
    let mut views = BTreeMap::new();
    for (cid, eps) in &st.endpoints {
        let mut networks = Vec::new();
        for ep in eps.iter().filter(|e| !is_default(&e.network)) {
            let Some(net) = st.networks.get(&ep.network) else {
                continue;
            };
            let mut n = Vec::new();
            if let Some(name) = names.get(cid) {
                n.push(name.clone());
            }
            n.extend(ep.aliases.iter().cloned());
            n.push(cid.chars().take(12).collect());
            entries.push(ZoneEntry {
                network: net.id.clone(),
                network_name: net.name.clone(),
                names: n,
                ip: ep.ip,
            });
            networks.push(net.id.clone());
        }
        // A container with no way out (only `--internal` networks) gets no forwarding,
        // as dockerd's resolver does: its queries must not leak names to the outside.
        let external = eps
            .iter()
            .any(|e| st.networks.get(&e.network).is_some_and(|n| !n.internal));
        let upstreams = if external {
            st.dns_upstreams.get(cid).cloned().unwrap_or_default()
        } else {
            Vec::new()
        };
        views.insert(
            cid.clone(),
            ContainerView {
                networks,
                upstreams,
            },
        );
    }
    Zone::new(&entries, views)
}

impl super::LocalEngine {
    /// Publishes the network events the networking state queued.
    pub(crate) fn flush_net_events(&self) {
        for (action, net_id, net_name, container) in self.inner.network.take_events() {
            let mut attrs = BTreeMap::new();
            attrs.insert("name".to_owned(), net_name);
            attrs.insert("type".to_owned(), "bridge".to_owned());
            if !container.is_empty() {
                attrs.insert("container".to_owned(), container);
            }
            self.inner.events.publish("network", action, &net_id, attrs);
        }
    }

    /// Rebuilds the DNS zone from the networking state and the container names.
    pub(crate) fn refresh_dns(&self) {
        let names: BTreeMap<String, String> = self
            .inner
            .containers
            .read()
            .iter()
            .map(|(id, e)| (id.to_string(), e.record.lock().name.to_string()))
            .collect();
        let zone = self.inner.network.with_state(|st| build_zone(st, &names));
        self.inner.network.dns.set_zone(zone);
    }

    /// Binds `127.0.0.11:53` (UDP and TCP) in the container's namespace and serves it.
    /// Must run inside the runtime (a blocking task is fine).
    fn start_dns(&self, id: &str, netns: &std::path::Path) -> Result<()> {
        let addr = SocketAddrV4::new(corral_dns::RESOLVER_IP, 53);
        let (udp, tcp) = self
            .inner
            .network
            .sockets
            .bind_udp_tcp(netns, addr)
            .map_err(crate::error::io(format!(
                "binding the DNS resolver in {}",
                netns.display()
            )))?;
        self.inner.network.dns.serve(id, udp, tcp).map_err(|e| {
            Error::Internal(format!(
                "{e}: {}",
                std::error::Error::source(&e)
                    .map(ToString::to_string)
                    .unwrap_or_default()
            ))
        })
    }

    /// After a daemon restart: serves DNS again for every re-adopted container on a
    /// user-defined network (the old listener's sockets died with the old daemon).
    pub(crate) fn restore_dns(&self) {
        self.refresh_dns();
        let st = self.inner.network.snapshot();
        for (id, eps) in &st.endpoints {
            if !eps.iter().any(|e| !is_default(&e.network)) {
                continue;
            }
            if let Some(ep) = eps.first() {
                if let Err(e) = self.start_dns(id, &ep.netns) {
                    tracing::warn!(container = %id, error = %e, "re-creating the DNS listener");
                }
            }
        }
    }

    /// Connects a container at start: every configured network, plus the DNS listener
    /// when one of them is user-defined. `None` for `host` and `none`. Blocking.
    pub(crate) fn connect_network(
        &self,
        rec: &ContainerRecord,
    ) -> Result<Option<(PathBuf, Option<Ipv4Addr>)>> {
        let mode = rec.spec.host.network_mode.as_deref().unwrap_or("");
        if matches!(mode, "host" | "none") {
            return Ok(None);
        }
        let res = self.inner.network.connect(rec, upstreams_for(rec));
        self.flush_net_events();
        let (ns, ip) = res?;
        let user_net = self.inner.network.has_user_endpoint(&rec.id);
        // Containers on the default bridge only take no part in DNS: no zone rebuild.
        if user_net || uses_embedded_dns(rec) {
            self.refresh_dns();
            if let Err(e) = self.start_dns(rec.id.as_str(), &ns) {
                let _ = self.inner.network.disconnect(&rec.id);
                self.flush_net_events();
                self.refresh_dns();
                return Err(e);
            }
        }
        Ok(Some((ns, ip)))
    }

    /// Tears a container's endpoints and DNS listener down from async code (exit, failed
    /// start, removal); a removed container's configured networks are forgotten too.
    /// Failures are logged.
    pub(crate) async fn disconnect_network(&self, id: &ContainerId) {
        let served =
            self.inner.network.dns.stop(id.as_str()) || self.inner.network.has_user_endpoint(id);
        let removed = !self.inner.containers.read().contains_key(id);
        if !self.inner.network.has_endpoint(id) && !removed {
            return;
        }
        let this = self.clone();
        let id2 = id.clone();
        let res = tokio::task::spawn_blocking(move || {
            this.inner.network.disconnect(&id2)?;
            if removed {
                this.inner.network.forget(&id2)?;
            }
            Ok::<_, Error>(())
        })
        .await;
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(container = %id, error = %e, "disconnecting network"),
            Err(e) => tracing::warn!(container = %id, error = %e, "disconnecting network"),
        }
        self.flush_net_events();
        if served {
            self.refresh_dns();
        }
    }

    /// `POST /networks/{id}/connect`.
    pub(crate) async fn network_connect(
        &self,
        network: &str,
        container: &str,
        ep: EndpointSpec,
    ) -> Result<()> {
        let entry = self.lookup(container)?;
        let rec = entry.snapshot();
        let this = self.clone();
        let network = network.to_owned();
        let res = tokio::task::spawn_blocking(move || {
            let running = this.inner.network.has_endpoint(&rec.id);
            this.inner.network.connect_one(&rec, running, &network, &ep)?;
            if running && !this.inner.network.dns.is_serving(rec.id.as_str()) {
                let st = this.inner.network.snapshot();
                let ns = st
                    .endpoints
                    .get(rec.id.as_str())
                    .and_then(|eps| eps.first().map(|e| e.netns.clone()));
                let user_net = st
                    .endpoints
                    .get(rec.id.as_str())
                    .is_some_and(|eps| eps.iter().any(|e| !is_default(&e.network)));
                if let (Some(ns), true) = (ns, user_net) {
                    if let Err(e) = this.start_dns(rec.id.as_str(), &ns) {
                        tracing::warn!(container = %rec.id, error = %e, "starting the DNS listener");
                    } else {
                        // dockerd starts the sandbox's resolver once, when the first
                        // endpoint needing it joins, and rewrites resolv.conf to it.
                        // The endpoint is in place: a failure here is reported, not undone.
                        if let Err(e) = this.point_resolv_conf_at_embedded_dns(&rec) {
                            tracing::warn!(container = %rec.id, error = %e, "rewriting resolv.conf");
                        }
                    }
                }
            }
            Ok::<_, Error>(())
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
        self.flush_net_events();
        self.refresh_dns();
        res
    }

    /// Rewrites a running container's `resolv.conf` to the embedded DNS server (the host's
    /// or `--dns` servers become its upstreams), in place: the file is bind-mounted into
    /// the container, so a new inode would not be seen. Blocking.
    fn point_resolv_conf_at_embedded_dns(&self, rec: &ContainerRecord) -> Result<()> {
        let path = self.container_dir(&rec.id).join("resolv.conf");
        let host = std::fs::read_to_string(HOST_RESOLV_CONF).unwrap_or_default();
        let content = embedded_resolv_conf(&host, &rec.spec.host);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(crate::error::io(format!("opening {}", path.display())))?;
        std::io::Write::write_all(&mut f, content.as_bytes())
            .map_err(crate::error::io(format!("writing {}", path.display())))
    }

    /// `POST /networks/{id}/disconnect`.
    pub(crate) async fn network_disconnect(
        &self,
        network: &str,
        container: &str,
        force: bool,
    ) -> Result<()> {
        let entry = match self.lookup(container) {
            Ok(e) => e,
            // dockerd then force-deletes a stale endpoint of that name on the network.
            Err(Error::NoSuchContainer(_)) if force => {
                let this = self.clone();
                let (network, container) = (network.to_owned(), container.to_owned());
                let res = tokio::task::spawn_blocking(move || {
                    this.inner
                        .network
                        .force_remove_endpoint(&network, &container)
                })
                .await
                .map_err(|e| Error::Internal(e.to_string()))?;
                self.flush_net_events();
                self.refresh_dns();
                return res;
            }
            Err(e) => return Err(e),
        };
        let rec = entry.snapshot();
        let this = self.clone();
        let network = network.to_owned();
        let res = tokio::task::spawn_blocking(move || {
            let running = this.inner.network.has_endpoint(&rec.id);
            this.inner
                .network
                .disconnect_one(&rec, running, &network, force)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
        self.flush_net_events();
        self.refresh_dns();
        res
    }

    /// `POST /networks/prune`: removes the user-defined networks without endpoints that
    /// `keep` does not keep; returns their names.
    pub(crate) async fn network_prune(&self, keep: crate::api::NetworkKeep) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for n in self.network_list().await? {
            if ["bridge", "host", "none"].contains(&n.name.as_str())
                || !n.containers.is_empty()
                || keep(&n)
            {
                continue;
            }
            let this = self.clone();
            let name = n.name.clone();
            let res = tokio::task::spawn_blocking(move || this.inner.network.remove_network(&name))
                .await
                .map_err(|e| Error::Internal(e.to_string()))?;
            self.flush_net_events();
            match res {
                Ok(()) => removed.push(n.name),
                Err(e) => tracing::debug!(network = %n.name, error = %e, "prune skipped"),
            }
        }
        Ok(removed)
    }

    /// The container's networks in the API's shape: live endpoints for a running
    /// container, the configured networks (no address) otherwise.
    ///
    /// Called once per container by `docker ps`: it reads the network state under its lock
    /// (no copy of every network and endpoint) and takes the record from the caller.
    pub(crate) fn networks_of(&self, rec: &ContainerRecord) -> Vec<crate::api::ContainerNetwork> {
        let id = rec.id.as_str();
        self.inner.network.with_state(|st| {
            if let Some(eps) = st.endpoints.get(id) {
                return eps
                    .iter()
                    .filter_map(|ep| {
                        let net = st.networks.get(&ep.network)?;
                        let user = !is_default(&net.name);
                        let mut aliases = ep.aliases.clone();
                        if user {
                            aliases.push(id.chars().take(12).collect());
                        }
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
                            aliases: (user && !aliases.is_empty()).then_some(aliases),
                            static_ip: ep.static_ip.then(|| ep.ip.to_string()),
                        })
                    })
                    .collect();
            }
            if let Some(mode @ ("host" | "none")) = rec.spec.host.network_mode.as_deref() {
                // dockerd lists the pseudo network the container uses: its id once the
                // container was started (kept after it exits), and an endpoint id while
                // it runs; both empty for a container never started.
                let started = rec.state.started_at.is_some();
                let network_id = if started {
                    self.inner.network.builtin_id(mode).to_owned()
                } else {
                    String::new()
                };
                let running = matches!(
                    rec.state.status,
                    ContainerStatus::Running | ContainerStatus::Paused
                );
                let endpoint_id = if started && running {
                    endpoint_id(id, &network_id)
                } else {
                    String::new()
                };
                return vec![crate::api::ContainerNetwork {
                    network: mode.to_owned(),
                    network_id,
                    endpoint_id,
                    ip: String::new(),
                    prefix_len: 0,
                    gateway: String::new(),
                    mac: String::new(),
                    sandbox_key: String::new(),
                    ports: Vec::new(),
                    aliases: None,
                    static_ip: None,
                }];
            }
            self.inner
                .network
                .attachments(st, rec)
                .into_iter()
                .map(|a| crate::api::ContainerNetwork {
                    network: if is_default(&a.network) {
                        DEFAULT_NETWORK.to_owned()
                    } else {
                        a.network.clone()
                    },
                    network_id: String::new(),
                    endpoint_id: String::new(),
                    ip: String::new(),
                    prefix_len: 0,
                    gateway: String::new(),
                    mac: a.mac.clone().unwrap_or_default(),
                    sandbox_key: String::new(),
                    ports: Vec::new(),
                    aliases: (!a.aliases.is_empty()).then(|| a.aliases.clone()),
                    static_ip: a.ip.map(|ip| ip.to_string()),
                })
                .collect()
        })
    }

    /// `bridge` (its subnet allocated on first listing), user-defined networks, `host` and
    /// `none`.
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
                .flat_map(|(id, eps)| eps.iter().map(move |e| (id, e)))
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
            out.push(crate::api::NetworkInfo {
                id: self.inner.network.builtin_id(name).to_owned(),
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::network::{EndpointRecord, NetRecord};
    use corral_dns::zone::{Answer, QueryKind};

    fn net(name: &str, subnet: &str) -> NetRecord {
        NetRecord {
            id: format!("{name}-id"),
            name: name.into(),
            bridge: format!("br-{name}"),
            internal: false,
            created: String::new(),
            pool: corral_network::AddressPool::new(subnet.parse().unwrap(), None, None).unwrap(),
            labels: BTreeMap::new(),
        }
    }

    fn ep(network: &str, ip: [u8; 4], aliases: &[&str]) -> EndpointRecord {
        EndpointRecord {
            network: network.into(),
            ip: Ipv4Addr::from(ip),
            mac: String::new(),
            host_veth: String::new(),
            netns: PathBuf::new(),
            ports: vec![],
            aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
            ifname: "eth0".into(),
            static_ip: false,
        }
    }

    #[test]
    fn the_zone_holds_user_networks_only_with_names_aliases_and_short_ids() {
        let mut st = NetState::default();
        for n in [net("bridge", "172.17.0.0/16"), net("front", "10.1.0.0/24")] {
            st.networks.insert(n.name.clone(), n);
        }
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        st.endpoints
            .insert(a.clone(), vec![ep("front", [10, 1, 0, 2], &["web"])]);
        st.endpoints.insert(
            b.clone(),
            vec![
                ep("bridge", [172, 17, 0, 2], &[]),
                ep("front", [10, 1, 0, 3], &["web"]),
            ],
        );
        let names = BTreeMap::from([(a.clone(), "one".to_owned()), (b.clone(), "two".to_owned())]);
        let z = build_zone(&st, &names);
        assert_eq!(
            z.answer(&b, "one", QueryKind::A),
            Answer::A(vec![Ipv4Addr::new(10, 1, 0, 2)])
        );
        assert_eq!(
            z.answer(&a, "web", QueryKind::A),
            Answer::A(vec![Ipv4Addr::new(10, 1, 0, 2), Ipv4Addr::new(10, 1, 0, 3)])
        );
        assert_eq!(
            z.answer(&a, "bbbbbbbbbbbb", QueryKind::A),
            Answer::A(vec![Ipv4Addr::new(10, 1, 0, 3)])
        );
        // The default bridge publishes no names.
        assert_eq!(z.view(&b).unwrap().networks, vec!["front-id".to_owned()]);
        // Only internal networks: nothing is forwarded.
        let up: Vec<SocketAddr> = vec!["10.9.9.9:53".parse().unwrap()];
        st.dns_upstreams.insert(a.clone(), up.clone());
        st.dns_upstreams.insert(b.clone(), up.clone());
        if let Some(n) = st.networks.get_mut("front") {
            n.internal = true;
        }
        let z = build_zone(&st, &names);
        assert!(z.view(&a).unwrap().upstreams.is_empty());
        assert_eq!(z.view(&b).unwrap().upstreams, up);
    }

    #[test]
    fn embedded_resolv_conf_keeps_search_and_options_like_dockerd() {
        let host = "nameserver 10.0.0.2\nsearch corp.example\noptions edns0\n";
        let h = HostSpec::default();
        assert_eq!(
            embedded_resolv_conf(host, &h),
            "nameserver 127.0.0.11\nsearch corp.example\noptions edns0 ndots:0\n"
        );
        let h = HostSpec {
            dns_search: vec!["a.example".into()],
            dns_options: vec!["ndots:2".into()],
            ..HostSpec::default()
        };
        assert_eq!(
            embedded_resolv_conf(host, &h),
            "nameserver 127.0.0.11\nsearch a.example\noptions ndots:2\n"
        );
    }
}
