//! Root tests of the bridge driver and the firewall against the real kernel and nft.
#![allow(missing_docs, clippy::unwrap_used)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use corral_network::{
    bridge_name, veth_name, BridgeDriver, Endpoint, Firewall, NetworkDriver, NetworkSpec,
    PortMapping, Proto,
};
use corral_sys::netlink::{LinuxNetlink, Netlink};
use corral_sys::netns::{LinuxNetns, Netns};
use corral_sys::nftables::{NftCommand, Nftables};

fn require_root() {
    assert!(nix::unistd::geteuid().is_root(), "this test needs root");
}

/// Removes every kernel object of the test on drop, even after a panic.
#[derive(Default)]
struct Cleanup {
    children: Vec<Child>,
    links: Vec<String>,
    netns: Vec<PathBuf>,
    table: Option<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for l in &self.links {
            let _ = LinuxNetlink.delete_link(None, l);
        }
        for n in &self.netns {
            let _ = LinuxNetns.delete(n);
        }
        if let Some(t) = &self.table {
            let _ = NftCommand::new().delete_table("ip", t);
        }
    }
}

/// An HTTP GET of `/` on `ip:port` with busybox `nc`, from namespace `ns` or the host;
/// `Some(body)` when it answered.
fn http_get(ns: Option<&Path>, ip: &str, port: u16) -> Option<String> {
    use std::io::Write;
    let mut cmd = Command::new("timeout");
    cmd.args(["-s", "KILL", "8"]);
    if let Some(ns) = ns {
        cmd.arg("nsenter").arg(format!("--net={}", ns.display()));
    }
    let mut child = cmd
        .args(["/bin/busybox", "nc", "-w", "3", ip, &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child
        .stdin
        .take()
        .unwrap()
        .write_all(b"GET / HTTP/1.0\r\n\r\n");
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !text.contains("200 OK") {
        eprintln!("GET {ip}:{port}: {out:?}");
        return None;
    }
    text.split("\r\n\r\n").nth(1).map(str::to_owned)
}

#[test]
#[ignore = "needs root: creates bridges, veths, namespaces and an nftables table"]
fn bridge_networks_isolation_and_published_ports() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let tag = format!("{:05}", std::process::id() % 100_000);
    let instance = format!("nettest{tag}");
    let nl: Arc<dyn Netlink> = Arc::new(LinuxNetlink::new());
    let driver = BridgeDriver::new(nl.clone());
    let fw = Firewall::new(Arc::new(NftCommand::new()), &instance);
    let mut guard = Cleanup::default();
    guard.table = Some(format!("corral-{instance}"));
    let net_a = NetworkSpec {
        bridge: bridge_name(&instance, "aaaaaa"),
        subnet: "10.231.1.0/24".parse().unwrap(),
        gateway: Ipv4Addr::new(10, 231, 1, 1),
        internal: false,
    };
    let net_b = NetworkSpec {
        bridge: bridge_name(&instance, "bbbbbb"),
        subnet: "10.231.2.0/24".parse().unwrap(),
        gateway: Ipv4Addr::new(10, 231, 2, 1),
        internal: false,
    };
    guard.links.push(net_a.bridge.clone());
    guard.links.push(net_b.bridge.clone());
    driver.create(&net_a).unwrap();
    driver.create(&net_b).unwrap();

    let mut endpoint = |name: &str, net: &NetworkSpec, ip: Ipv4Addr| {
        let ns = dir.path().join("netns").join(name);
        LinuxNetns.create(&ns).unwrap();
        guard.netns.push(ns.clone());
        let o = ip.octets();
        let ep = Endpoint {
            netns: ns,
            host_veth: veth_name(&format!("{name}{tag}"), 0),
            ifname: "eth0".into(),
            ip,
            default_route: true,
            mac: Some([0x02, 0x42, o[0], o[1], o[2], o[3]]),
        };
        guard.links.push(ep.host_veth.clone());
        let mac = driver.attach(net, &ep).unwrap();
        // A chosen MAC is set on the container's interface.
        assert_eq!(Some(mac), ep.mac);
        ep
    };
    let a1 = endpoint("a1", &net_a, Ipv4Addr::new(10, 231, 1, 2));
    let a2 = endpoint("a2", &net_a, Ipv4Addr::new(10, 231, 1, 3));
    let b1 = endpoint("b1", &net_b, Ipv4Addr::new(10, 231, 2, 2));

    // An httpd in a1 serving a marker file.
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "hello-from-a1\n").unwrap();
    let child = Command::new("nsenter")
        .arg(format!("--net={}", a1.netns.display()))
        .args(["/bin/busybox", "httpd", "-f", "-p", "80", "-h"])
        .arg(&www)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    guard.children.push(child);

    // Publish it on all host addresses (port picked by the kernel).
    let published = fw
        .reserve(&PortMapping {
            proto: Proto::Tcp,
            host_ip: None,
            host_port: 0,
            container_ip: a1.ip,
            container_port: 80,
        })
        .unwrap();
    fw.sync(&[net_a.clone(), net_b.clone()]).unwrap();
    let tables = NftCommand::new().list_tables().unwrap();
    assert!(tables.contains(&("ip".into(), format!("corral-{instance}"))));
    std::thread::sleep(Duration::from_millis(300));

    // Same network: reachable by IP.
    let got = http_get(Some(&a2.netns), "10.231.1.2", 80);
    assert_eq!(got.as_deref(), Some("hello-from-a1\n"));
    // Different network: isolated by the forward chain.
    assert_eq!(http_get(Some(&b1.netns), "10.231.1.2", 80), None);
    // Published port from the host, via 127.0.0.1 and the gateway address.
    let port = published.host_port;
    for host in ["127.0.0.1", "10.231.2.1"] {
        let got = http_get(None, host, port);
        assert_eq!(got.as_deref(), Some("hello-from-a1\n"), "via {host}");
    }
    // From "another machine": a namespace with its own veth to the host.
    let ext = dir.path().join("netns/ext");
    LinuxNetns.create(&ext).unwrap();
    guard.netns.push(ext.clone());
    let (xh, xp) = (format!("cxh{tag}"), format!("cxp{tag}"));
    guard.links.push(xh.clone());
    nl.create_veth(&xh, &xp).unwrap();
    nl.add_address(None, &xh, "10.231.9.1".parse().unwrap(), 24)
        .unwrap();
    nl.set_up(None, &xh).unwrap();
    nl.move_to_netns(&xp, &ext).unwrap();
    nl.add_address(Some(&ext), &xp, "10.231.9.2".parse().unwrap(), 24)
        .unwrap();
    nl.set_up(Some(&ext), &xp).unwrap();
    nl.add_default_route(Some(&ext), Ipv4Addr::new(10, 231, 9, 1))
        .unwrap();
    let got = http_get(Some(&ext), "10.231.9.1", port);
    assert_eq!(
        got.as_deref(),
        Some("hello-from-a1\n"),
        "from another namespace"
    );

    // Teardown leaves nothing behind.
    driver.detach(&a1).unwrap();
    fw.release(a1.ip);
    fw.teardown().unwrap();
    for ep in [&a2, &b1] {
        driver.detach(ep).unwrap();
    }
    driver.remove(&net_a).unwrap();
    driver.remove(&net_b).unwrap();
    let links = nl.link_names(None).unwrap();
    for l in [
        &net_a.bridge,
        &net_b.bridge,
        &a1.host_veth,
        &a2.host_veth,
        &b1.host_veth,
    ] {
        assert!(!links.contains(l), "{l} left behind");
    }
    assert!(!NftCommand::new()
        .list_tables()
        .unwrap()
        .contains(&("ip".into(), format!("corral-{instance}"))));
}
