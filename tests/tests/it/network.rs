//! Bridge networking: containers on the default bridge reach each other, published ports
//! answer from the host, a taken host port is a clear error, and removal leaves no link or
//! namespace behind.
//!
//! Corral only: the reference dockerd of the testkit runs with `--bridge=none
//! --iptables=false`, so these tests are skipped with `CORRAL_TEST_SUBJECT=docker`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use corral_testkit::{assert_eventually, SubjectKind};

use crate::common::{assert_contains, Env};

fn skip_for_docker() -> bool {
    if SubjectKind::from_env().ok() == Some(SubjectKind::Docker) {
        eprintln!("skipped: the reference dockerd runs with --bridge=none --iptables=false");
        return true;
    }
    false
}

/// `GET /` over TCP from the host; the response text, or the error.
fn http_get(addr: &str) -> String {
    let run = || -> std::io::Result<String> {
        let mut s = TcpStream::connect_timeout(
            &addr.parse().map_err(std::io::Error::other)?,
            Duration::from_secs(3),
        )?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    };
    run().unwrap_or_else(|e| format!("error: {e}"))
}

fn host_links() -> String {
    let out = Command::new("ip")
        .args(["-o", "link"])
        .output()
        .expect("ip link");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The host's own address on its default route's interface, if any.
fn host_address() -> Option<String> {
    let out = Command::new("ip")
        .args(["-4", "route", "get", "192.0.2.123"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut words = text.split_whitespace();
    while let Some(w) = words.next() {
        if w == "src" {
            return words.next().map(str::to_owned);
        }
    }
    None
}

#[test]
#[ignore = "needs root: starts an engine"]
fn bridge_containers_talk_and_published_ports_answer() {
    if skip_for_docker() {
        return;
    }
    let env = Env::new();
    let srv = env.name("httpd");
    env.docker(&[
        "run",
        "-d",
        "--name",
        &srv,
        "-p",
        "80",
        &env.image,
        "sh",
        "-c",
        "mkdir /www && echo hello-corral > /www/index.html && exec busybox httpd -f -p 80 -h /www",
    ])
    .ok();
    let ip = env.inspect("{{.NetworkSettings.IPAddress}}", &srv);
    assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "IPAddress {ip:?}");
    assert_eq!(
        env.inspect("{{.NetworkSettings.Networks.bridge.IPAddress}}", &srv),
        ip
    );
    let gateway = env.inspect("{{.NetworkSettings.Gateway}}", &srv);
    assert!(gateway.ends_with(".1"), "gateway {gateway}");
    assert_eq!(
        env.inspect("{{len .NetworkSettings.MacAddress}}", &srv),
        "17"
    );
    let port = env.inspect(
        r#"{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}"#,
        &srv,
    );
    let port: u16 = port.parse().expect("published host port");
    assert_ne!(port, 0);
    // `docker port` and `ps` show the mapping.
    assert_contains(
        env.docker(&["port", &srv, "80/tcp"]).ok().out(),
        &format!(":{port}"),
    );
    assert_contains(
        env.docker(&[
            "ps",
            "--filter",
            &format!("name={srv}"),
            "--format",
            "{{.Ports}}",
        ])
        .ok()
        .out(),
        &format!(":{port}->80/tcp"),
    );
    // /etc/hosts has the container's own line.
    let hosts = env
        .docker(&["exec", &srv, "cat", "/etc/hosts"])
        .ok()
        .out()
        .to_owned();
    assert_contains(&hosts, &ip);

    // Another container on the bridge reaches it by IP.
    let cmd = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 {ip} 80");
    let client = env.name("client");
    let out = env
        .docker(&[
            "run", "--rm", "--name", &client, &env.image, "sh", "-c", &cmd,
        ])
        .ok()
        .out()
        .to_owned();
    assert_contains(&out, "hello-corral");

    // The published port answers from the host on 127.0.0.1 and on its own address.
    assert_eventually!(http_get(&format!("127.0.0.1:{port}")).contains("hello-corral"));
    if let Some(addr) = host_address() {
        let got = http_get(&format!("{addr}:{port}"));
        assert_contains(&got, "hello-corral");
    }

    // A taken host port is a clear error, and the failed container leaves no endpoint.
    let dup = env.name("dup");
    let err = env
        .docker(&[
            "run",
            "-d",
            "--name",
            &dup,
            "-p",
            &format!("{port}:80"),
            &env.image,
            "sleep",
            "100",
        ])
        .failed()
        .err()
        .to_owned();
    assert_contains(&err, "already in use");
    let dup_id = env.inspect("{{.Id}}", &dup);
    assert!(!host_links().contains(&format!("cv{}", &dup_id[..11])));

    // Removal leaves no veth nor namespace behind.
    let id = env.inspect("{{.Id}}", &srv);
    let sandbox = env.inspect("{{.NetworkSettings.SandboxKey}}", &srv);
    assert!(std::path::Path::new(&sandbox).exists(), "{sandbox}");
    assert!(host_links().contains(&format!("cv{}", &id[..11])));
    env.docker(&["rm", "-f", &srv]).ok();
    assert!(
        !host_links().contains(&format!("cv{}", &id[..11])),
        "{}",
        host_links()
    );
    assert!(
        !std::path::Path::new(&sandbox).exists(),
        "{sandbox} left behind"
    );
    assert!(http_get(&format!("127.0.0.1:{port}")).starts_with("error"));
}

#[test]
#[ignore = "needs root: starts an engine"]
fn network_ls_and_inspect_show_the_builtin_networks() {
    if skip_for_docker() {
        return;
    }
    let env = Env::new();
    let names = env
        .docker(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"])
        .ok()
        .out()
        .to_owned();
    for n in ["bridge bridge", "host host", "none null"] {
        assert_contains(&names, n);
    }
    let subnet = env.inspect("{{(index .IPAM.Config 0).Subnet}}", "bridge");
    assert!(subnet.ends_with("/16"), "{subnet}");
    let c = env.name("netls");
    env.docker(&[
        "run",
        "-d",
        "--name",
        &c,
        "--network",
        "bridge",
        &env.image,
        "sleep",
        "1000",
    ])
    .ok();
    let id = env.inspect("{{.Id}}", &c);
    let ip = env.inspect("{{.NetworkSettings.IPAddress}}", &c);
    let attached = env
        .docker(&["network", "inspect", "bridge"])
        .ok()
        .out()
        .to_owned();
    assert_contains(&attached, &id);
    assert_contains(&attached, &ip);
    assert_contains(
        env.docker(&["network", "inspect", "no-such-net"])
            .failed()
            .err(),
        "not found",
    );
}

#[test]
#[ignore = "needs root: starts an engine"]
fn published_port_survives_a_daemon_crash() {
    if skip_for_docker() {
        return;
    }
    let mut env = Env::new();
    let srv = env.name("survivor");
    env.docker(&[
        "run",
        "-d",
        "--name",
        &srv,
        "-p",
        "127.0.0.1::80",
        &env.image,
        "sh",
        "-c",
        "mkdir /www && echo still-here > /www/index.html && exec busybox httpd -f -p 80 -h /www",
    ])
    .ok();
    let port = env.inspect(
        r#"{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}"#,
        &srv,
    );
    let before = (
        env.inspect("{{.State.Pid}}", &srv),
        env.inspect("{{.NetworkSettings.IPAddress}}", &srv),
    );
    let url = format!("127.0.0.1:{port}");
    assert_eventually!(http_get(&url).contains("still-here"));
    // A connection established before the crash keeps working after it.
    let mut held = TcpStream::connect(&url).expect("connect before the crash");
    let instance = env
        .subject
        .corral()
        .expect("corral daemon")
        .instance()
        .to_owned();
    // Corral's nftables table, as `nft` prints it (its rules carry no counters).
    let table = || {
        let out = Command::new("nft")
            .args(["list", "table", "ip", &format!("corral-{instance}")])
            .output()
            .expect("nft");
        assert!(out.status.success(), "nft list table: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let table_before = table();
    env.subject
        .corral()
        .expect("corral daemon")
        .kill9_and_restart()
        .expect("restart the daemon");
    held.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    held.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut got = String::new();
    held.read_to_string(&mut got).unwrap();
    assert_contains(&got, "still-here");
    let after = (
        env.inspect("{{.State.Pid}}", &srv),
        env.inspect("{{.NetworkSettings.IPAddress}}", &srv),
    );
    assert_eq!(before, after, "pid and address after the restart");
    assert_eq!(table_before, table(), "nftables table after the restart");
    assert_eq!(env.inspect("{{.State.Status}}", &srv), "running");
    assert_contains(&http_get(&url), "still-here");
    // Removal after the restart still tears everything down.
    env.docker(&["rm", "-f", &srv]).ok();
    assert!(http_get(&url).starts_with("error"));
    // Daemon stop with no container connected removes the nftables table.
    drop(env);
    let tables = Command::new("nft")
        .args(["list", "tables"])
        .output()
        .expect("nft");
    let tables = String::from_utf8_lossy(&tables.stdout).into_owned();
    assert!(
        !tables.contains(&format!("corral-{instance}")),
        "table left behind: {tables}"
    );
}

#[test]
#[ignore = "needs root: starts an engine"]
fn user_networks_are_isolated_and_validated() {
    if skip_for_docker() {
        return;
    }
    let env = Env::new();
    let (net_a, net_b, net_i) = (env.name("neta"), env.name("netb"), env.name("neti"));
    env.docker(&[
        "network",
        "create",
        "--subnet",
        "10.213.0.0/24",
        "--label",
        "team=a",
        &net_a,
    ])
    .ok();
    env.docker(&["network", "create", &net_b]).ok();
    env.docker(&["network", "create", "--internal", &net_i])
        .ok();
    // Bad input: an overlapping subnet, a bad CIDR, a duplicate name.
    let overlap = env.name("overlap");
    assert_contains(
        env.docker(&["network", "create", "--subnet", "10.213.0.128/25", &overlap])
            .failed()
            .err(),
        &format!("overlaps 10.213.0.0/24 used by {net_a}"),
    );
    assert_contains(
        env.docker(&["network", "create", "--subnet", "10.213.0.1/99", &overlap])
            .failed()
            .err(),
        "invalid CIDR",
    );
    env.docker(&["network", "create", &net_a]).failed();
    assert_eq!(
        env.inspect("{{(index .IPAM.Config 0).Subnet}}", &net_a),
        "10.213.0.0/24"
    );
    assert_eq!(env.inspect("{{.Labels.team}}", &net_a), "a");
    assert_eq!(env.inspect("{{.Internal}}", &net_i), "true");

    let srv = env.name("srv");
    env.docker(&[
        "run",
        "-d",
        "--name",
        &srv,
        "--network",
        &net_a,
        &env.image,
        "sh",
        "-c",
        "mkdir /www && echo on-net-a > /www/index.html && exec busybox httpd -f -p 80 -h /www",
    ])
    .ok();
    let ip = env.inspect(
        &format!("{{{{(index .NetworkSettings.Networks \"{net_a}\").IPAddress}}}}"),
        &srv,
    );
    assert!(ip.starts_with("10.213.0."), "{ip}");
    let get = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 2 {ip} 80");
    let same = env
        .docker(&[
            "run",
            "--rm",
            "--network",
            &net_a,
            &env.image,
            "sh",
            "-c",
            &get,
        ])
        .ok()
        .out()
        .to_owned();
    assert_contains(&same, "on-net-a");
    let other = env.docker(&[
        "run",
        "--rm",
        "--network",
        &net_b,
        &env.image,
        "sh",
        "-c",
        &get,
    ]);
    assert!(
        !other.out().contains("on-net-a"),
        "isolation broken: {other}"
    );
    // An internal network has no default route.
    let routes = env
        .docker(&[
            "run",
            "--rm",
            "--network",
            &net_i,
            &env.image,
            "cat",
            "/proc/net/route",
        ])
        .ok()
        .out()
        .to_owned();
    assert!(
        !routes.contains("eth0\t00000000\t"),
        "default route on an internal network: {routes}"
    );

    // In use: refused; after removal of the container: removed with its bridge.
    assert_contains(
        env.docker(&["network", "rm", &net_a]).failed().err(),
        "active endpoints",
    );
    env.docker(&["rm", "-f", &srv]).ok();
    let bridge = env.inspect(
        r#"{{index .Options "com.docker.network.bridge.name"}}"#,
        &net_a,
    );
    for n in [&net_a, &net_b, &net_i] {
        env.docker(&["network", "rm", n]).ok();
    }
    assert!(
        !host_links().contains(&format!(" {bridge}:")),
        "{bridge} left behind"
    );
    env.docker(&["network", "inspect", &net_a]).failed();
    assert_contains(
        env.docker(&["run", "--rm", "--network", &net_a, &env.image, "true"])
            .failed()
            .err(),
        "not found",
    );
}
