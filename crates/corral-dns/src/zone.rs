//! The record table: which names each container can resolve, as plain data.
//!
//! Docker's rules: on a user-defined network a container is known by its name, its network
//! aliases and its short id (12 hex characters), also as `<name>.<network>`. A name shared by
//! several containers (an alias) answers all their addresses. A container sees only the
//! records of the networks it is attached to, so containers on different networks cannot
//! resolve each other. Everything else is forwarded upstream.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};

/// A container's address on one network and the names it has there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneEntry {
    /// The network id.
    pub network: String,
    /// The network name (for `<name>.<network>`).
    pub network_name: String,
    /// The names: container name first (the PTR answer), then aliases and the short id.
    pub names: Vec<String>,
    /// The container's address on this network.
    pub ip: Ipv4Addr,
}

/// What one container's resolver serves: the networks whose records it sees and where
/// other names go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerView {
    /// Ids of the (user-defined) networks the container is attached to.
    pub networks: Vec<String>,
    /// Upstream resolvers for other names (`--dns`, or the host's resolv.conf).
    pub upstreams: Vec<SocketAddr>,
}

/// The kind of a question, as far as the answer logic cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueryKind {
    /// IPv4 addresses.
    A,
    /// Reverse lookup of an `in-addr.arpa` name.
    Ptr,
    /// Anything else (AAAA, MX, TXT, …).
    Other,
}

/// The answer to one question from one container.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Answer {
    /// The name is local: these addresses (in table order; the server rotates them).
    A(Vec<Ipv4Addr>),
    /// The address is local: this name.
    Ptr(String),
    /// The name is local but has no record of the asked type (e.g. AAAA): NOERROR, empty.
    NoData,
    /// Not a local name: ask the container's upstreams.
    Forward,
    /// The asking container is unknown (its listener outlived its endpoints).
    Refused,
}

/// The records of every network and the view of every container; rebuilt by the engine on
/// each change and swapped in whole.
#[derive(Debug, Clone, Default)]
pub struct Zone {
    names: HashMap<(String, String), Vec<Ipv4Addr>>,
    ptrs: HashMap<(String, Ipv4Addr), String>,
    views: BTreeMap<String, ContainerView>,
}

/// Lowercase without the trailing dot.
fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The address of `d.c.b.a.in-addr.arpa`.
fn arpa_ip(name: &str) -> Option<Ipv4Addr> {
    let rest = name.strip_suffix(".in-addr.arpa")?;
    let mut octets = [0u8; 4];
    let parts: Vec<&str> = rest.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    for (i, p) in parts.iter().rev().enumerate() {
        octets[i] = p.parse().ok()?;
    }
    Some(Ipv4Addr::from(octets))
}

// === impl Zone ===

impl Zone {
    /// A zone with `entries` and the containers' `views` (container id → view).
    pub fn new(entries: &[ZoneEntry], views: BTreeMap<String, ContainerView>) -> Self {
        let mut names: HashMap<(String, String), Vec<Ipv4Addr>> = HashMap::new();
        let mut ptrs = HashMap::new();
        for e in entries {
            let net_suffix = normalize(&e.network_name);
            for n in &e.names {
                let n = normalize(n);
                if n.is_empty() {
                    continue;
                }
                for key in [n.clone(), format!("{n}.{net_suffix}")] {
                    let ips = names.entry((e.network.clone(), key)).or_default();
                    if !ips.contains(&e.ip) {
                        ips.push(e.ip);
                    }
                }
            }
            if let Some(first) = e.names.first() {
                ptrs.entry((e.network.clone(), e.ip))
                    .or_insert_with(|| format!("{}.{}", first, e.network_name));
            }
        }
        Self { names, ptrs, views }
    }

    /// The view of container `id`.
    pub fn view(&self, id: &str) -> Option<&ContainerView> {
        self.views.get(id)
    }

    /// Whether any container is served.
    pub fn is_empty(&self) -> bool {
        self.views.is_empty()
    }

    /// Answers question `qname`/`kind` asked by container `container`.
    pub fn answer(&self, container: &str, qname: &str, kind: QueryKind) -> Answer {
        let Some(view) = self.views.get(container) else {
            return Answer::Refused;
        };
        let q = normalize(qname);
        if kind == QueryKind::Ptr {
            if let Some(ip) = arpa_ip(&q) {
                for net in &view.networks {
                    if let Some(n) = self.ptrs.get(&(net.clone(), ip)) {
                        return Answer::Ptr(n.clone());
                    }
                }
            }
            return Answer::Forward;
        }
        let mut ips = Vec::new();
        let mut known = false;
        for net in &view.networks {
            if let Some(found) = self.names.get(&(net.clone(), q.clone())) {
                known = true;
                for ip in found {
                    if !ips.contains(ip) {
                        ips.push(*ip);
                    }
                }
            }
        }
        match (known, kind) {
            (false, _) => Answer::Forward,
            (true, QueryKind::A) => Answer::A(ips),
            (true, _) => Answer::NoData,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(net: &str, names: &[&str], ip: [u8; 4]) -> ZoneEntry {
        ZoneEntry {
            network: format!("id-{net}"),
            network_name: net.into(),
            names: names.iter().map(|s| (*s).to_owned()).collect(),
            ip: Ipv4Addr::from(ip),
        }
    }

    fn view(nets: &[&str]) -> ContainerView {
        ContainerView {
            networks: nets.iter().map(|n| format!("id-{n}")).collect(),
            upstreams: vec![],
        }
    }

    fn zone() -> Zone {
        let entries = vec![
            entry("front", &["web1", "web", "aaaaaaaaaaaa"], [10, 1, 0, 2]),
            entry("front", &["web2", "web", "bbbbbbbbbbbb"], [10, 1, 0, 3]),
            entry("back", &["db", "cccccccccccc"], [10, 2, 0, 2]),
            entry("back", &["web1", "aaaaaaaaaaaa"], [10, 2, 0, 3]),
        ];
        let mut views = BTreeMap::new();
        views.insert("c-front".to_owned(), view(&["front"]));
        views.insert("c-back".to_owned(), view(&["back"]));
        views.insert("c-both".to_owned(), view(&["front", "back"]));
        Zone::new(&entries, views)
    }

    #[test]
    fn resolves_names_aliases_and_short_ids_case_insensitively() {
        let z = zone();
        assert_eq!(
            z.answer("c-front", "web2.", QueryKind::A),
            Answer::A(vec![Ipv4Addr::new(10, 1, 0, 3)])
        );
        assert_eq!(
            z.answer("c-front", "BBBBBBBBBBBB", QueryKind::A),
            Answer::A(vec![Ipv4Addr::new(10, 1, 0, 3)])
        );
        assert_eq!(
            z.answer("c-front", "web2.front.", QueryKind::A),
            Answer::A(vec![Ipv4Addr::new(10, 1, 0, 3)])
        );
    }

    #[test]
    fn a_shared_alias_answers_every_address() {
        assert_eq!(
            zone().answer("c-front", "web", QueryKind::A),
            Answer::A(vec![Ipv4Addr::new(10, 1, 0, 2), Ipv4Addr::new(10, 1, 0, 3)])
        );
    }

    #[test]
    fn other_networks_are_invisible_and_forwarded() {
        let z = zone();
        assert_eq!(z.answer("c-front", "db", QueryKind::A), Answer::Forward);
        assert_eq!(z.answer("c-back", "web2", QueryKind::A), Answer::Forward);
        assert_eq!(
            z.answer("c-back", "web1", QueryKind::A),
            Answer::A(vec![Ipv4Addr::new(10, 2, 0, 3)])
        );
        assert_eq!(
            z.answer("c-front", "example.org", QueryKind::A),
            Answer::Forward
        );
    }

    #[test]
    fn a_container_on_two_networks_resolves_both() {
        let z = zone();
        assert_eq!(
            z.answer("c-both", "db", QueryKind::A),
            Answer::A(vec![Ipv4Addr::new(10, 2, 0, 2)])
        );
        assert_eq!(
            z.answer("c-both", "web1", QueryKind::A),
            Answer::A(vec![Ipv4Addr::new(10, 1, 0, 2), Ipv4Addr::new(10, 2, 0, 3)])
        );
    }

    #[test]
    fn local_names_without_the_type_get_no_data_and_ptr_works() {
        let z = zone();
        assert_eq!(
            z.answer("c-front", "web1", QueryKind::Other),
            Answer::NoData
        );
        assert_eq!(
            z.answer("c-front", "2.0.1.10.in-addr.arpa.", QueryKind::Ptr),
            Answer::Ptr("web1.front".into())
        );
        assert_eq!(
            z.answer("c-back", "2.0.1.10.in-addr.arpa.", QueryKind::Ptr),
            Answer::Forward
        );
        assert_eq!(z.answer("nobody", "web1", QueryKind::A), Answer::Refused);
    }
}
