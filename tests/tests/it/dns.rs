//! User-defined networks beyond isolation: the embedded DNS server (names, aliases, short
//! ids, forwarding, live restore), several networks per container with `network connect`
//! and `disconnect`, static addresses and MACs, `network prune`, host port ranges, and
//! dockerd's answers to bad input, with no partial state left behind.
//!
//! The first two tests and the disconnect test also run against the reference dockerd 20.10
//! (`CORRAL_TEST_SUBJECT=docker`; user-defined networks work there). It runs with
//! `--bridge=none --iptables=false`, so the parts that need the default bridge, bridge
//! isolation or Corral's interface names are Corral-only, each saying why; the other
//! tests are Corral-only.

use std::net::{Ipv4Addr, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use corral_testkit::{docker20, SubjectKind};

use crate::common::{assert_contains, Env};

fn is_docker() -> bool {
    SubjectKind::from_env().ok() == Some(SubjectKind::Docker)
}

fn skip_for_docker() -> bool {
    if is_docker() {
        eprintln!("skipped: the reference dockerd runs with --bridge=none --iptables=false");
        return true;
    }
    false
}

fn host_links() -> String {
    let out = Command::new("ip")
        .args(["-o", "link"])
        .output()
        .expect("ip link");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The host ends of a container's veths are `cv` + 11 chars of its id + an index.
fn veths_of(id: &str) -> Vec<String> {
    let prefix = format!("cv{}", &id[..11]);
    host_links()
        .lines()
        .filter_map(|l| l.split(':').nth(1).map(str::trim).map(str::to_owned))
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

/// `POST path` with a JSON body on the engine's socket: (status, body).
fn post(env: &Env, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(env.subject.socket()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let req = format!(
        "POST {path} HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

/// Asserts how many veths container `id` has on the host (Corral's names only; dockerd
/// names its veths differently, so this checks nothing against the reference).
#[track_caller]
fn assert_veths(id: &str, n: usize) {
    if !is_docker() {
        assert_eq!(veths_of(id).len(), n, "veths of {id}: {}", host_links());
    }
}

fn mounts() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default()
}

/// Starts a detached busybox httpd serving `body` with extra `run` flags.
fn web(env: &Env, name: &str, flags: &[&str], body: &str) {
    let script = format!(
        "mkdir /www && echo {body} > /www/index.html && exec busybox httpd -f -p 80 -h /www"
    );
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[env.image.as_str(), "sh", "-c", &script]);
    env.docker(&args).ok();
}

/// `GET /` from a fresh container on `network` to `host`, with `nc`.
fn fetch(env: &Env, network: &str, host: &str) -> String {
    let get = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 {host} 80");
    let out = env.docker(&[
        "run",
        "--rm",
        "--network",
        network,
        &env.image,
        "sh",
        "-c",
        &get,
    ]);
    format!("{}{}", out.out(), out.err())
}

/// A one-shot UDP DNS responder on `addr:53` answering every A question with 192.0.2.55,
/// standing in for the host's upstream resolver. Stops when the flag is cleared.
struct Upstream {
    addr: Ipv4Addr,
    run: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Upstream {
    fn start() -> Upstream {
        // A loopback address of its own, unlikely to be used by anything else on the host.
        let third = u8::try_from(std::process::id() % 250).unwrap_or(0) + 1;
        let addr = Ipv4Addr::new(127, 53, third, 53);
        let sock = UdpSocket::bind((addr, 53)).expect("bind the test upstream resolver");
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("set a read timeout");
        let run = Arc::new(AtomicBool::new(true));
        let r2 = run.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while r2.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                if n < 12 {
                    continue;
                }
                // The question ends after the name's zero label plus type and class.
                let Some(end) = buf[12..n].iter().position(|b| *b == 0).map(|p| 12 + p + 5) else {
                    continue;
                };
                let qtype = u16::from_be_bytes([buf[end - 4], buf[end - 3]]);
                let mut resp = buf[..end].to_vec();
                resp[2] = 0x81; // QR, RD
                resp[3] = 0x80; // RA, NOERROR
                resp[4..12].copy_from_slice(&[0, 1, 0, u8::from(qtype == 1), 0, 0, 0, 0]);
                if qtype == 1 {
                    resp.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4]);
                    resp.extend_from_slice(&[192, 0, 2, 55]);
                }
                let _ = sock.send_to(&resp, from);
            }
        });
        Upstream {
            addr,
            run,
            thread: Some(thread),
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.run.store(false, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
#[ignore = "needs root: starts an engine"]
fn containers_resolve_names_aliases_and_short_ids_per_network() {
    let env = Env::new();
    let (front, back) = (env.name("front"), env.name("back"));
    env.docker(&["network", "create", &front]).ok();
    env.docker(&["network", "create", &back]).ok();
    let (w1, w2) = (env.name("w1"), env.name("w2"));
    web(
        &env,
        &w1,
        &["--network", &front, "--network-alias", "web"],
        "one",
    );
    web(
        &env,
        &w2,
        &["--network", &front, "--network-alias", "web"],
        "two",
    );
    let ip = |c: &str, n: &str| {
        env.inspect(
            &format!("{{{{(index .NetworkSettings.Networks \"{n}\").IPAddress}}}}"),
            c,
        )
    };
    let (ip1, ip2) = (ip(&w1, &front), ip(&w2, &front));

    // TCP by name, by alias, by short id.
    assert_contains(&fetch(&env, &front, &w1), "one");
    assert_contains(&fetch(&env, &front, &w2), "two");
    let by_alias = fetch(&env, &front, "web");
    assert!(
        by_alias.contains("one") || by_alias.contains("two"),
        "{by_alias}"
    );
    let short = env.inspect("{{.Id}}", &w2)[..12].to_owned();
    assert_contains(&fetch(&env, &front, &short), "two");

    // A shared alias answers every address.
    let look = env
        .docker(&[
            "run",
            "--rm",
            "--network",
            &front,
            &env.image,
            "busybox",
            "nslookup",
            "web",
        ])
        .ok()
        .out()
        .to_owned();
    assert_contains(&look, &ip1);
    assert_contains(&look, &ip2);
    let resolv = env
        .docker(&[
            "run",
            "--rm",
            "--network",
            &front,
            &env.image,
            "cat",
            "/etc/resolv.conf",
        ])
        .ok()
        .out()
        .to_owned();
    assert_contains(&resolv, "nameserver 127.0.0.11");

    // A renamed container answers to its new name.
    let w2b = env.name("w2b");
    env.docker(&["rename", &w2, &w2b]).ok();
    let renamed = env
        .docker(&[
            "run",
            "--rm",
            "--network",
            &front,
            &env.image,
            "busybox",
            "nslookup",
            &w2b,
        ])
        .ok()
        .out()
        .to_owned();
    assert_contains(&renamed, &ip2);
    let w2 = w2b;

    // Another network neither resolves nor reaches them.
    let other = env.docker(&[
        "run",
        "--rm",
        "--network",
        &back,
        &env.image,
        "busybox",
        "nslookup",
        &w1,
    ]);
    assert!(
        !other.out().contains(&ip1),
        "resolved across networks: {other}"
    );
    assert!(!fetch(&env, &back, &w1).contains("one"));
    if !is_docker() {
        // The reference dockerd runs with --iptables=false: nothing isolates its bridges.
        assert!(!fetch(&env, &back, &ip1).contains("one"));
    }

    // A container on two networks resolves names on both.
    let both = env.name("both");
    env.docker(&[
        "run",
        "-d",
        "--name",
        &both,
        "--network",
        &back,
        &env.image,
        "sleep",
        "1000",
    ])
    .ok();
    env.docker(&["network", "connect", &front, &both]).ok();
    let bridged = env.name("lonely");
    web(&env, &bridged, &["--network", &back], "back");
    let on_front = env
        .docker(&["exec", &both, "busybox", "nslookup", &w1])
        .ok()
        .out()
        .to_owned();
    assert_contains(&on_front, &ip1);
    let on_back = env
        .docker(&["exec", &both, "busybox", "nslookup", &bridged])
        .ok()
        .out()
        .to_owned();
    assert_contains(&on_back, &ip(&bridged, &back));

    // The default bridge has no name resolution and copies the host's resolv.conf.
    let plain = env
        .docker(&["run", "--rm", &env.image, "cat", "/etc/resolv.conf"])
        .ok()
        .out()
        .to_owned();
    assert!(!plain.contains("127.0.0.11"), "{plain}");

    if is_docker() {
        // dockerd 20.10 forwards from the container's namespace, where a loopback `--dns`
        // server is unreachable; dockerd 26+ and Corral forward loopback servers from the
        // host's namespace.
        for c in [&w1, &w2, &both, &bridged] {
            env.docker(&["rm", "-f", c]).ok();
        }
        return;
    }
    // Other names go to the container's upstream resolvers (`--dns`), from the host.
    let up = Upstream::start();
    let fwd = env
        .docker(&[
            "run",
            "--rm",
            "--network",
            &front,
            "--dns",
            &up.addr.to_string(),
            &env.image,
            "busybox",
            "nslookup",
            "somewhere.example",
        ])
        .ok()
        .out()
        .to_owned();
    assert_contains(&fwd, "192.0.2.55");
    // On an internal network peers still resolve, but nothing is forwarded out.
    let inner = env.name("inner");
    env.docker(&["network", "create", "--internal", &inner])
        .ok();
    env.docker(&["network", "connect", &inner, &w1]).ok();
    let internal = env.docker(&[
        "run",
        "--rm",
        "--network",
        &inner,
        "--dns",
        &up.addr.to_string(),
        &env.image,
        "sh",
        "-c",
        &format!("busybox nslookup {w1}; busybox nslookup somewhere.example"),
    ]);
    assert_contains(internal.out(), &ip(&w1, &inner));
    assert!(!internal.out().contains("192.0.2.55"), "{internal}");
    drop(up);

    for c in [&w1, &w2, &both, &bridged] {
        env.docker(&["rm", "-f", c]).ok();
    }
    for n in [&front, &back, &inner] {
        env.docker(&["network", "rm", n]).ok();
    }
}

#[test]
#[ignore = "needs root: starts an engine"]
fn network_connect_disconnect_static_addresses_and_bad_input() {
    let env = Env::new();
    let (n1, n2) = (env.name("cn1"), env.name("cn2"));
    env.docker(&["network", "create", "--subnet", "10.214.0.0/24", &n1])
        .ok();
    env.docker(&["network", "create", "--subnet", "10.215.0.0/24", &n2])
        .ok();
    let c = env.name("c");
    env.docker(&[
        "run",
        "-d",
        "--name",
        &c,
        "--network",
        &n1,
        "--ip",
        "10.214.0.50",
        &env.image,
        "sleep",
        "1000",
    ])
    .ok();
    let id = env.inspect("{{.Id}}", &c);
    let net = |n: &str, field: &str| {
        env.inspect(
            &format!("{{{{(index .NetworkSettings.Networks \"{n}\").{field}}}}}"),
            &c,
        )
    };
    assert_eq!(net(&n1, "IPAddress"), "10.214.0.50");
    assert_eq!(net(&n1, "IPAMConfig.IPv4Address"), "10.214.0.50");
    assert_eq!(net(&n1, "Gateway"), "10.214.0.1");

    // `--mac-address`: CLI 20.10 sends `Config.MacAddress` (API 1.41), CLI 28 the
    // endpoint's `MacAddress` (API 1.44, which the reference dockerd 20.10 lacks).
    let macs = [("02:42:0a:d6:00:33", true), ("02:42:0a:d6:00:34", false)];
    for (mac, old_cli) in macs {
        if !old_cli && is_docker() {
            continue;
        }
        let m = env.name("mac");
        let args = [
            "run",
            "--rm",
            "--name",
            &m,
            "--network",
            &n1,
            "--mac-address",
            mac,
            &env.image,
            "cat",
            "/sys/class/net/eth0/address",
        ];
        let out = if old_cli {
            match docker20(&env.subject, &args) {
                Some(o) => o,
                None => continue,
            }
        } else {
            env.docker(&args)
        };
        assert_eq!(out.ok().out(), mac);
    }

    // A taken static address: dockerd's 403 text, and the failed start leaves no veth.
    let thief = env.name("thief");
    env.docker(&[
        "create",
        "--name",
        &thief,
        "--network",
        &n1,
        "--ip",
        "10.214.0.50",
        &env.image,
        "true",
    ])
    .ok();
    assert_contains(
        env.docker(&["start", &thief]).failed().err(),
        "Address already in use",
    );
    assert_veths(&env.inspect("{{.Id}}", &thief), 0);
    env.docker(&["rm", &thief]).ok();

    // Connect a running container: a second interface, the alias in inspect.
    env.docker(&[
        "network",
        "connect",
        "--alias",
        "second",
        "--ip",
        "10.215.0.7",
        &n2,
        &c,
    ])
    .ok();
    let addrs = env
        .docker(&["exec", &c, "busybox", "ip", "-o", "-4", "addr"])
        .ok()
        .out()
        .to_owned();
    assert_contains(&addrs, "eth1");
    assert_contains(&addrs, "10.215.0.7/24");
    assert_contains(&net(&n2, "Aliases"), "second");
    assert_eq!(net(&n2, "IPAddress"), "10.215.0.7");
    assert_veths(&id, 2);
    let events = env
        .docker(&[
            "events",
            "--since",
            "1",
            "--until",
            &format!(
                "{}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs()
                    + 1
            ),
            "--filter",
            "type=network",
            "--format",
            "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.container}}",
        ])
        .ok()
        .out()
        .to_owned();
    assert_contains(&events, &format!("create {n2}"));
    assert_contains(&events, &format!("connect {n2} {id}"));

    // Bad input, each leaving the container as it was.
    assert_contains(
        env.docker(&["network", "connect", &n2, &c]).failed().err(),
        &format!("endpoint with name {c} already exists in network {n2}"),
    );
    let nonet = env.name("nonet");
    assert_contains(
        env.docker(&["network", "connect", &nonet, &c])
            .failed()
            .err(),
        &format!("network {nonet} not found"),
    );
    let n3 = env.name("cn3");
    env.docker(&["network", "create", "--subnet", "10.216.0.0/24", &n3])
        .ok();
    assert_contains(
        env.docker(&["network", "connect", "--ip", "10.99.0.1", &n3, &c])
            .failed()
            .err(),
        "Invalid address 10.99.0.1: It does not belong to any of this network's subnets",
    );
    if !is_docker() {
        // The reference dockerd has no `bridge` network (--bridge=none).
        assert_contains(
            env.docker(&["network", "connect", "--alias", "x", "bridge", &c])
                .failed()
                .err(),
            "network-scoped alias is supported only for containers in user defined networks",
        );
    }
    // dockerd's statuses for the same requests.
    let connect = format!("/v1.41/networks/{n2}/connect");
    let (code, _) = post(&env, &connect, &format!(r#"{{"Container":"{c}"}}"#));
    assert_eq!(code, 403);
    let (code, body) = post(
        &env,
        &format!("/v1.41/networks/{n3}/connect"),
        &format!(
            r#"{{"Container":"{c}","EndpointConfig":{{"IPAMConfig":{{"IPv4Address":"10.99.0.1"}}}}}}"#
        ),
    );
    assert_eq!(code, 500, "{body}");
    let (code, _) = post(
        &env,
        &format!("/v1.41/networks/{nonet}/connect"),
        &format!(r#"{{"Container":"{c}"}}"#),
    );
    assert_eq!(code, 404);
    assert_veths(&id, 2);

    // Disconnect: the interface and its veth go, a second disconnect is refused.
    env.docker(&["network", "disconnect", &n2, &c]).ok();
    let addrs = env
        .docker(&["exec", &c, "busybox", "ip", "-o", "-4", "addr"])
        .ok()
        .out()
        .to_owned();
    assert!(!addrs.contains("10.215.0.7"), "{addrs}");
    assert_veths(&id, 1);
    if !is_docker() {
        // dockerd 20.10 keeps the failed `--ip 10.99.0.1` connect above as a network entry
        // without an endpoint (partial state); Corral leaves nothing behind.
        assert_eq!(
            env.inspect("{{len .NetworkSettings.Networks}}", &c),
            "1",
            "{}",
            env.inspect("{{json .NetworkSettings.Networks}}", &c)
        );
    }
    assert_contains(
        env.docker(&["network", "disconnect", &n2, &c])
            .failed()
            .err(),
        "is not connected to network",
    );
    let (code, _) = post(
        &env,
        &format!("/v1.41/networks/{n2}/disconnect"),
        &format!(r#"{{"Container":"{c}"}}"#),
    );
    assert_eq!(code, 500);
    // The released address is free again (the IPAM lease went with the endpoint).
    let reuse = env.name("reuse");
    env.docker(&[
        "run",
        "--rm",
        "--name",
        &reuse,
        "--network",
        &n2,
        "--ip",
        "10.215.0.7",
        &env.image,
        "true",
    ])
    .ok();

    // A created container: connect and disconnect change its configuration, start uses it.
    let d = env.name("d");
    env.docker(&[
        "create",
        "--name",
        &d,
        "--network",
        &n1,
        &env.image,
        "sleep",
        "1000",
    ])
    .ok();
    env.docker(&["network", "connect", "--alias", "dee", &n2, &d])
        .ok();
    env.docker(&["network", "connect", &n3, &d]).ok();
    env.docker(&["network", "disconnect", &n3, &d]).ok();
    assert_contains(
        env.docker(&["network", "disconnect", &n3, &d])
            .failed()
            .err(),
        "is not connected to the network",
    );
    assert_eq!(env.inspect("{{len .NetworkSettings.Networks}}", &d), "2");
    env.docker(&["start", &d]).ok();
    let addrs = env
        .docker(&["exec", &d, "busybox", "ip", "-o", "-4", "addr"])
        .ok()
        .out()
        .to_owned();
    assert_contains(&addrs, "eth0");
    assert_contains(&addrs, "eth1");
    assert_contains(&addrs, "10.215.0.");
    let seen = env
        .docker(&["exec", &c, "busybox", "nslookup", "dee"])
        .out()
        .to_owned();
    assert!(
        !seen.contains("10.215.0."),
        "c left n2 but resolves dee: {seen}"
    );

    // In-use networks stay; prune removes unused ones matching the filter.
    let p1 = env.name("p1");
    env.docker(&["network", "create", "--label", "keep=no", &p1])
        .ok();
    let pruned = env
        .docker(&["network", "prune", "-f", "--filter", "label=keep=no"])
        .ok()
        .out()
        .to_owned();
    assert_contains(&pruned, &p1);
    assert!(!pruned.contains(&n1) && !pruned.contains(&n3), "{pruned}");
    env.docker(&["network", "inspect", &n3]).ok();

    // Removal takes every veth and the namespace mount with it.
    let did = env.inspect("{{.Id}}", &d);
    for x in [&c, &d] {
        env.docker(&["rm", "-f", x]).ok();
    }
    assert_veths(&id, 0);
    assert_veths(&did, 0);
    let m = mounts();
    assert!(!m.contains(&format!("netns/{id}")) && !m.contains(&format!("netns/{did}")));
    for n in [&n1, &n2, &n3] {
        env.docker(&["network", "rm", n]).ok();
    }
}

#[test]
#[ignore = "needs root: starts an engine"]
fn host_settings_port_ranges_and_network_modes() {
    if skip_for_docker() {
        return;
    }
    let env = Env::new();
    let out = env
        .docker(&[
            "run",
            "--rm",
            "--hostname",
            "h1.example",
            "--add-host",
            "db.example:10.1.2.3",
            "--dns",
            "10.9.9.9",
            "--dns-search",
            "corp.example",
            &env.image,
            "sh",
            "-c",
            "hostname; cat /etc/hosts /etc/resolv.conf",
        ])
        .ok()
        .out()
        .to_owned();
    assert_contains(&out, "h1.example");
    assert_contains(&out, "10.1.2.3\tdb.example");
    assert_contains(&out, "nameserver 10.9.9.9");
    assert_contains(&out, "search corp.example");

    // `--network none`: only lo; `--network host`: the host's interfaces.
    let none = env
        .docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            &env.image,
            "cat",
            "/proc/net/dev",
        ])
        .ok()
        .out()
        .to_owned();
    assert!(!none.contains("eth0"), "{none}");
    let host = env
        .docker(&[
            "run",
            "--rm",
            "--network",
            "host",
            &env.image,
            "cat",
            "/proc/net/dev",
        ])
        .ok()
        .out()
        .to_owned();
    let host_ifs = std::fs::read_to_string("/proc/net/dev").unwrap();
    let first_if = host_ifs
        .lines()
        .nth(2)
        .and_then(|l| l.split(':').next())
        .unwrap()
        .trim()
        .to_owned();
    assert_contains(&host, &first_if);

    // A host port range: the daemon takes a free port in it.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = probe.local_addr().unwrap().port();
    drop(probe);
    let (lo, hi) = (base, base.saturating_add(20));
    let srv = env.name("ranged");
    web(
        &env,
        &srv,
        &["-p", &format!("127.0.0.1:{lo}-{hi}:80")],
        "ranged",
    );
    let port: u16 = env
        .inspect(
            r#"{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}"#,
            &srv,
        )
        .parse()
        .unwrap();
    assert!((lo..=hi).contains(&port), "{port} outside {lo}-{hi}");
    // Two container ports on a two-port range, as the CLI expands `-p a-b:c-d`.
    let pair = env.name("pair");
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let p = probe.local_addr().unwrap().port();
    drop(probe);
    env.docker(&[
        "run",
        "-d",
        "--name",
        &pair,
        "-p",
        &format!("127.0.0.1:{}-{}:80-81", p, p + 1),
        &env.image,
        "sleep",
        "1000",
    ])
    .ok();
    let ports = env.docker(&["port", &pair]).ok().out().to_owned();
    assert_contains(&ports, &format!("80/tcp -> 127.0.0.1:{p}"));
    assert_contains(&ports, &format!("81/tcp -> 127.0.0.1:{}", p + 1));
    assert_contains(
        env.docker(&["run", "--rm", "-p", "70000:80", &env.image, "true"])
            .failed()
            .err(),
        "70000",
    );
    for c in [&srv, &pair] {
        env.docker(&["rm", "-f", c]).ok();
    }
}

#[test]
#[ignore = "needs root: starts an engine"]
fn dns_answers_again_after_a_daemon_kill() {
    if skip_for_docker() {
        return;
    }
    let mut env = Env::new();
    let net = env.name("lr");
    env.docker(&["network", "create", &net]).ok();
    let srv = env.name("srv");
    web(
        &env,
        &srv,
        &["--network", &net, "--network-alias", "svc"],
        "alive",
    );
    let client = env.name("client");
    env.docker(&[
        "run",
        "-d",
        "--name",
        &client,
        "--network",
        &net,
        &env.image,
        "sleep",
        "1000",
    ])
    .ok();
    let ip = env.inspect(
        &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
        &srv,
    );
    let ask = |env: &Env| {
        env.docker(&["exec", &client, "busybox", "nslookup", "svc"])
            .out()
            .to_owned()
    };
    assert_contains(&ask(&env), &ip);
    let pid = env.inspect("{{.State.Pid}}", &client);
    env.subject
        .corral()
        .expect("corral daemon")
        .kill9_and_restart()
        .expect("restart the daemon");
    assert_eq!(env.inspect("{{.State.Pid}}", &client), pid);
    assert_contains(&ask(&env), &ip);
    let get = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 svc 80";
    assert_contains(
        env.docker(&["exec", &client, "sh", "-c", get]).ok().out(),
        "alive",
    );
    let ids = [
        env.inspect("{{.Id}}", &srv),
        env.inspect("{{.Id}}", &client),
    ];
    for c in [&srv, &client] {
        env.docker(&["rm", "-f", c]).ok();
    }
    env.docker(&["network", "rm", &net]).ok();
    let m = mounts();
    for id in &ids {
        assert!(veths_of(id).is_empty(), "veth of {id} left behind");
        assert!(
            !m.contains(&format!("netns/{id}")),
            "netns of {id} left behind"
        );
    }
}

/// dockerd starts a container's resolver when the first endpoint needing it joins: a
/// container on the default bridge connected later to a user-defined network gets
/// `nameserver 127.0.0.11` (rewritten in its bind-mounted resolv.conf) and resolves that
/// network's names; the resolver stays after a disconnect and is there again at the next
/// start while the user network is configured. Checked against dockerd 20.10 with a
/// default bridge. Corral-only here (the suite's dockerd has no default bridge).
#[test]
#[ignore = "needs root: starts a registry and an engine"]
fn a_later_connect_to_a_user_network_points_resolv_conf_at_the_embedded_dns() {
    if skip_for_docker() {
        return;
    }
    let env = Env::new();
    let net = env.name("later");
    env.docker(&["network", "create", &net]).ok();
    let (peer, late) = (env.name("peer"), env.name("late"));
    for (name, flags) in [(&peer, vec!["--network", net.as_str()]), (&late, vec![])] {
        let mut args = vec!["run", "-d", "--name", name.as_str()];
        args.extend(flags);
        args.extend([env.image.as_str(), "sleep", "1000"]);
        env.docker(&args).ok();
    }
    let resolv = |c: &str| {
        env.docker(&["exec", c, "cat", "/etc/resolv.conf"])
            .ok()
            .out()
            .to_owned()
    };
    assert!(!resolv(&late).contains("127.0.0.11"), "{}", resolv(&late));

    env.docker(&["network", "connect", &net, &late]).ok();
    let conf = resolv(&late);
    assert_contains(&conf, "nameserver 127.0.0.11");
    assert_contains(&conf, "ndots:0");
    let peer_ip = env.inspect(
        &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
        &peer,
    );
    assert_contains(
        env.docker(&["exec", &late, "busybox", "nslookup", &peer])
            .ok()
            .out(),
        &peer_ip,
    );

    // As dockerd: the resolver stays for the container's life.
    env.docker(&["network", "disconnect", &net, &late]).ok();
    assert_contains(&resolv(&late), "nameserver 127.0.0.11");
    // Configured while stopped, joined at start: served from the first moment.
    env.docker(&["stop", "-t", "0", &late]).ok();
    env.docker(&["network", "connect", &net, &late]).ok();
    env.docker(&["start", &late]).ok();
    assert_contains(&resolv(&late), "nameserver 127.0.0.11");
    assert_contains(
        env.docker(&["exec", &late, "busybox", "nslookup", &peer])
            .ok()
            .out(),
        &peer_ip,
    );
    for c in [&late, &peer] {
        env.docker(&["rm", "-f", c]).ok();
    }
    env.docker(&["network", "rm", &net]).ok();
}

/// `network disconnect` of a network removed while the container was stopped drops it from
/// the container's networks (with or without `--force`); `--force` also lets a running
/// container drop a network that no longer exists, and for an unknown container looks for
/// a stale endpoint of that name. Statuses and messages as dockerd 20.10's.
#[test]
#[ignore = "needs root: starts a registry and an engine"]
fn disconnect_drops_networks_that_no_longer_exist_and_force_reaches_stale_ones() {
    let env = Env::new();
    let (gone, kept) = (env.name("gone"), env.name("kept"));
    env.docker(&["network", "create", &gone]).ok();
    env.docker(&["network", "create", &kept]).ok();
    let c = env.name("stale");
    env.docker(&[
        "create",
        "--name",
        &c,
        "--network",
        &gone,
        &env.image,
        "sleep",
        "1000",
    ])
    .ok();
    // Only active endpoints keep a network: a created container does not.
    env.docker(&["network", "rm", &gone]).ok();
    assert_contains(
        env.docker(&["start", &c]).failed().err(),
        &format!("network {gone} not found"),
    );
    env.docker(&["network", "disconnect", &gone, &c]).ok();
    assert_eq!(env.inspect("{{len .NetworkSettings.Networks}}", &c), "0");
    let (code, body) = post(
        &env,
        &format!("/networks/{gone}/disconnect"),
        &format!(r#"{{"Container":"{c}","Force":true}}"#),
    );
    assert_eq!(code, 500, "{body}");
    assert_contains(&body, &format!("is not connected to the network {gone}"));

    // An unknown container: dockerd's ForceEndpointDelete finds no endpoint of that name.
    let (code, body) = post(
        &env,
        &format!("/networks/{kept}/disconnect"),
        r#"{"Container":"e2e-no-such-container","Force":true}"#,
    );
    assert_eq!(code, 404, "{body}");
    assert_contains(&body, "endpoint e2e-no-such-container not found");
    let (code, body) = post(
        &env,
        &format!("/networks/{kept}/disconnect"),
        r#"{"Container":"e2e-no-such-container"}"#,
    );
    assert_eq!(code, 404, "{body}");
    assert_contains(&body, "No such container: e2e-no-such-container");

    // A running container and a network that does not exist: 404 unless forced.
    let r = env.name("running");
    env.docker(&[
        "run",
        "-d",
        "--name",
        &r,
        "--network",
        &kept,
        &env.image,
        "sleep",
        "1000",
    ])
    .ok();
    let missing = env.name("missing");
    let (code, body) = post(
        &env,
        &format!("/networks/{missing}/disconnect"),
        &format!(r#"{{"Container":"{r}"}}"#),
    );
    assert_eq!(code, 404, "{body}");
    assert_contains(&body, &format!("network {missing} not found"));
    let (code, body) = post(
        &env,
        &format!("/networks/{missing}/disconnect"),
        &format!(r#"{{"Container":"{r}","Force":true}}"#),
    );
    assert_eq!(code, 500, "{body}");
    assert_contains(&body, &format!("is not connected to the network {missing}"));
    // Forced on a live endpoint: an ordinary disconnect.
    env.docker(&["network", "disconnect", "--force", &kept, &r])
        .ok();
    assert_eq!(env.inspect("{{len .NetworkSettings.Networks}}", &r), "0");
    for x in [&c, &r] {
        env.docker(&["rm", "-f", x]).ok();
    }
    env.docker(&["network", "rm", &kept]).ok();
}
