//! The nftables ruleset of one Corral instance, computed as text from plain data.
//!
//! Corral owns exactly one table, `ip corral-<instance>`, and always replaces it whole (the
//! script declares, deletes and re-creates it in one atomic `nft -f` transaction), so a
//! re-applied plan is idempotent and nothing else in the host ruleset is touched.
//!
//! What the table does:
//! - `nat` `postrouting`: masquerade traffic from a non-internal network's subnet that
//!   leaves through another interface; masquerade connections from `127.0.0.0/8` that were
//!   DNAT-ed to a container (so the reply comes back to the host).
//! - `nat` `prerouting` / `output`: for traffic addressed to a local address of the host,
//!   DNAT published ports to `container-ip:port`. The output hook covers connections made
//!   from the host itself, including to 127.0.0.1 (the bridge gets `route_localnet`).
//! - `filter` `forward` (policy accept): drops traffic between two different Corral bridges
//!   and any traffic entering or leaving an internal network's bridge to another interface.
//!   An accept here cannot override a drop by another table (the host firewall), see
//!   docs/architecture.md.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::ipam::Ipv4Net;

/// The nftables family of Corral's table.
pub const TABLE_FAMILY: &str = "ip";

/// The name of the table owned by `instance`.
pub fn table_name(instance: &str) -> String {
    format!("corral-{instance}")
}

/// What the ruleset needs to know about one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRules {
    /// The bridge interface.
    pub bridge: String,
    /// The subnet.
    pub subnet: Ipv4Net,
    /// No route out: no masquerade and no forwarding off the bridge.
    pub internal: bool,
}

/// A transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// `tcp` or `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

/// One published port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    /// Protocol.
    pub proto: Proto,
    /// The host address it listens on; `None` (or 0.0.0.0) for every local address.
    pub host_ip: Option<Ipv4Addr>,
    /// The host port.
    pub host_port: u16,
    /// The container's address.
    pub container_ip: Ipv4Addr,
    /// The container's port.
    pub container_port: u16,
}

/// The whole nft script for the instance's table.
pub fn render(instance: &str, networks: &[NetworkRules], ports: &[PortMapping]) -> String {
    let t = table_name(instance);
    let mut s = String::new();
    // Declare, delete, re-create: one transaction that works whether or not it exists.
    let _ = writeln!(s, "table {TABLE_FAMILY} {t} {{}}");
    let _ = writeln!(s, "delete table {TABLE_FAMILY} {t}");
    let _ = writeln!(s, "table {TABLE_FAMILY} {t} {{");

    let _ = writeln!(s, "  chain ports {{");
    for p in ports {
        let daddr = match p.host_ip {
            Some(ip) if !ip.is_unspecified() => format!("ip daddr {ip} "),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "    {daddr}{proto} dport {hp} dnat to {cip}:{cp}",
            proto = p.proto.as_str(),
            hp = p.host_port,
            cip = p.container_ip,
            cp = p.container_port
        );
    }
    let _ = writeln!(s, "  }}");

    let _ = writeln!(s, "  chain c_prerouting {{");
    let _ = writeln!(
        s,
        "    type nat hook prerouting priority dstnat; policy accept;"
    );
    let _ = writeln!(s, "    fib daddr type local jump ports");
    let _ = writeln!(s, "  }}");
    let _ = writeln!(s, "  chain c_output {{");
    let _ = writeln!(s, "    type nat hook output priority -100; policy accept;");
    let _ = writeln!(s, "    fib daddr type local jump ports");
    let _ = writeln!(s, "  }}");

    let _ = writeln!(s, "  chain c_postrouting {{");
    let _ = writeln!(
        s,
        "    type nat hook postrouting priority srcnat; policy accept;"
    );
    for n in networks {
        let _ = writeln!(
            s,
            "    ip saddr 127.0.0.0/8 oifname \"{}\" masquerade",
            n.bridge
        );
        if !n.internal {
            let _ = writeln!(
                s,
                "    ip saddr {} oifname != \"{}\" masquerade",
                n.subnet, n.bridge
            );
        }
    }
    let _ = writeln!(s, "  }}");

    let _ = writeln!(s, "  chain c_forward {{");
    let _ = writeln!(
        s,
        "    type filter hook forward priority filter; policy accept;"
    );
    for a in networks {
        if a.internal {
            let _ = writeln!(
                s,
                "    iifname \"{b}\" oifname != \"{b}\" drop",
                b = a.bridge
            );
            let _ = writeln!(
                s,
                "    oifname \"{b}\" iifname != \"{b}\" drop",
                b = a.bridge
            );
        }
        for b in networks {
            if a.bridge != b.bridge {
                let _ = writeln!(
                    s,
                    "    iifname \"{}\" oifname \"{}\" drop",
                    a.bridge, b.bridge
                );
            }
        }
    }
    let _ = writeln!(s, "  }}");
    let _ = writeln!(s, "}}");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets() -> Vec<NetworkRules> {
        vec![
            NetworkRules {
                bridge: "crl-a".into(),
                subnet: "172.18.0.0/16".parse().unwrap(),
                internal: false,
            },
            NetworkRules {
                bridge: "crl-b".into(),
                subnet: "172.19.0.0/16".parse().unwrap(),
                internal: true,
            },
        ]
    }

    #[test]
    fn replaces_only_its_own_table() {
        let r = render("t1", &[], &[]);
        let lines: Vec<_> = r.lines().collect();
        assert_eq!(lines[0], "table ip corral-t1 {}");
        assert_eq!(lines[1], "delete table ip corral-t1");
        assert_eq!(lines[2], "table ip corral-t1 {");
        assert!(!r.contains("flush ruleset"));
        assert_eq!(
            r.matches("\ntable ").count(),
            1,
            "one table definition: {r}"
        );
    }

    #[test]
    fn masquerades_external_networks_only_and_isolates_bridges() {
        let r = render("t1", &nets(), &[]);
        assert!(r.contains("ip saddr 172.18.0.0/16 oifname != \"crl-a\" masquerade"));
        assert!(
            !r.contains("ip saddr 172.19.0.0/16"),
            "internal network masqueraded: {r}"
        );
        assert!(r.contains("iifname \"crl-a\" oifname \"crl-b\" drop"));
        assert!(r.contains("iifname \"crl-b\" oifname \"crl-a\" drop"));
        assert!(r.contains("iifname \"crl-b\" oifname != \"crl-b\" drop"));
        assert!(!r.contains("iifname \"crl-a\" oifname != \"crl-a\" drop"));
        assert!(r.contains("policy accept"));
        assert!(!r.contains("policy drop"));
    }

    #[test]
    fn publishes_ports_with_dnat_from_prerouting_and_output() {
        let ports = vec![
            PortMapping {
                proto: Proto::Tcp,
                host_ip: None,
                host_port: 8080,
                container_ip: Ipv4Addr::new(172, 18, 0, 2),
                container_port: 80,
            },
            PortMapping {
                proto: Proto::Udp,
                host_ip: Some(Ipv4Addr::new(127, 0, 0, 1)),
                host_port: 5353,
                container_ip: Ipv4Addr::new(172, 18, 0, 3),
                container_port: 53,
            },
        ];
        let r = render("t1", &nets(), &ports);
        assert!(r.contains("    tcp dport 8080 dnat to 172.18.0.2:80\n"));
        assert!(r.contains("ip daddr 127.0.0.1 udp dport 5353 dnat to 172.18.0.3:53"));
        assert!(r.contains("type nat hook prerouting priority dstnat"));
        assert!(r.contains("type nat hook output priority -100"));
        assert_eq!(r.matches("fib daddr type local jump ports").count(), 2);
        assert!(r.contains("ip saddr 127.0.0.0/8 oifname \"crl-a\" masquerade"));
    }
}
