//! Root tests of the netlink, netns and nftables boundaries against the real kernel.
#![allow(missing_docs)]

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use corral_sys::netlink::{LinuxNetlink, Netlink};
use corral_sys::netns::{LinuxNetns, Netns};
use corral_sys::nftables::{NftCommand, Nftables};

fn require_root() {
    assert!(nix::unistd::geteuid().is_root(), "this test needs root");
}

/// Deletes the links, namespace and table it names on drop, even after a panic.
struct Cleanup {
    links: Vec<String>,
    netns: Option<PathBuf>,
    table: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for l in &self.links {
            let _ = LinuxNetlink.delete_link(None, l);
        }
        if let Some(ns) = &self.netns {
            let _ = LinuxNetns.delete(ns);
        }
        if let Some((f, n)) = &self.table {
            let _ = NftCommand::new().delete_table(f, n);
        }
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", std::process::id() % 100_000)
}

#[test]
#[ignore = "needs root: creates a bridge, a veth pair and a network namespace"]
fn bridge_veth_netns_roundtrip() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let ns = dir.path().join("netns/t1");
    let br = unique("cstb");
    let host = unique("cstv");
    let peer = unique("cstp");
    let _guard = Cleanup {
        links: vec![br.clone(), host.clone()],
        netns: Some(ns.clone()),
        table: None,
        _dir: None,
    };
    let nl = LinuxNetlink::new();
    LinuxNetns.create(&ns).unwrap();
    assert_eq!(
        LinuxNetns.create(&ns).unwrap_err().kind(),
        std::io::ErrorKind::AlreadyExists
    );
    nl.create_bridge(&br).unwrap();
    assert_eq!(
        nl.create_bridge(&br).unwrap_err().kind(),
        std::io::ErrorKind::AlreadyExists
    );
    nl.add_address(None, &br, IpAddr::V4(Ipv4Addr::new(10, 251, 7, 1)), 24)
        .unwrap();
    nl.create_veth(&host, &peer).unwrap();
    nl.set_master(&host, &br).unwrap();
    nl.move_to_netns(&peer, &ns).unwrap();
    assert!(!nl.link_names(None).unwrap().contains(&peer));
    nl.rename_link(Some(&ns), &peer, "eth0").unwrap();
    nl.add_address(
        Some(&ns),
        "eth0",
        IpAddr::V4(Ipv4Addr::new(10, 251, 7, 2)),
        24,
    )
    .unwrap();
    nl.set_up(Some(&ns), "eth0").unwrap();
    nl.set_up(Some(&ns), "lo").unwrap();
    nl.add_default_route(Some(&ns), Ipv4Addr::new(10, 251, 7, 1))
        .unwrap();
    let inside = nl.link_names(Some(&ns)).unwrap();
    assert!(inside.contains(&"eth0".to_owned()), "{inside:?}");
    assert!(nl.link_mac(Some(&ns), "eth0").unwrap().is_some());
    assert!(nl.link_mac(None, "corral-nope0").unwrap().is_none());
    let routes = nl.ipv4_routes().unwrap();
    assert!(
        routes.contains(&(Ipv4Addr::new(10, 251, 7, 0), 24)),
        "{routes:?}"
    );
    // The namespace is reachable from the host through the bridge.
    let ping = std::process::Command::new("timeout")
        .args([
            "-s",
            "KILL",
            "10",
            "/bin/busybox",
            "ping",
            "-c1",
            "-W2",
            "10.251.7.2",
        ])
        .status();
    if let Ok(st) = ping {
        assert!(st.success(), "ping into the namespace failed");
    }
    // Deleting the host end removes the pair; deleting the netns file drops the namespace.
    nl.delete_link(None, &host).unwrap();
    assert_eq!(
        nl.delete_link(None, &host).unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );
    LinuxNetns.delete(&ns).unwrap();
    assert!(!ns.exists());
    LinuxNetns.delete(&ns).unwrap();
    nl.delete_link(None, &br).unwrap();
    assert!(!nl.link_names(None).unwrap().contains(&br));
}

#[test]
#[ignore = "needs root: applies and deletes an nftables table"]
fn nft_apply_list_delete_own_table() {
    require_root();
    let name = unique("corral-systest-");
    let _guard = Cleanup {
        links: vec![],
        netns: None,
        table: Some(("inet".into(), name.clone())),
        _dir: None,
    };
    let nft = NftCommand::new();
    let before = nft.list_tables().unwrap();
    nft.apply(&format!(
        "table inet {name} {{}}\ndelete table inet {name}\ntable inet {name} {{\n chain c_forward {{ type filter hook forward priority 0; policy accept; }}\n}}\n"
    ))
    .unwrap();
    let tables = nft.list_tables().unwrap();
    assert!(tables.contains(&("inet".into(), name.clone())));
    assert!(nft.apply("table inet x { chain c { bogus } }").is_err());
    nft.delete_table("inet", &name).unwrap();
    nft.delete_table("inet", &name).unwrap();
    assert_eq!(nft.list_tables().unwrap(), before);
}
