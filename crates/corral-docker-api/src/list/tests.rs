//! The typed list rendering against the `serde_json::Value` rendering it replaced (kept
//! here, verbatim in behaviour, as the reference): same bytes, same filter answers.

use chrono::Duration;
use corral_core::{
    ContainerId, ContainerName, ContainerSpec, ContainerState, ContainerStatus, MountSpec,
    VolumeMount,
};
use corral_engine::PublishedPort;
use serde_json::{json, Map, Value};

use super::*;
use crate::containers::status_text;

// === the reference: the Value rendering of `GET /containers/json` before the typed rows ===

fn legacy_mounts_json(c: &ContainerRecord, mountpoint: &dyn Fn(&str) -> String) -> Value {
    let mut out = Vec::new();
    for b in &c.spec.host.binds {
        let parts: Vec<&str> = b.split(':').collect();
        if parts.len() >= 2 && parts[0].starts_with('/') {
            let rw = !parts
                .get(2)
                .is_some_and(|o| o.split(',').any(|x| x == "ro"));
            let is_path = parts[0].starts_with('/');
            out.push(json!({
                "Type": if is_path { "bind" } else { "volume" },
                "Source": parts[0], "Destination": parts[1],
                "Mode": parts.get(2).copied().unwrap_or(""), "RW": rw, "Propagation": if is_path {"rprivate"} else {""},
            }));
        }
    }
    for m in c
        .spec
        .host
        .mounts
        .iter()
        .filter(|m| m.kind != MountType::Volume)
    {
        out.push(json!({
            "Type": match m.kind { MountType::Bind => "bind", MountType::Volume => "volume", MountType::Tmpfs => "tmpfs" },
            "Source": m.source, "Destination": m.target, "Mode": "", "RW": !m.read_only, "Propagation": "",
        }));
    }
    for v in &c.volume_mounts {
        out.push(json!({
            "Type": "volume", "Name": v.name, "Source": mountpoint(&v.name),
            "Destination": v.destination, "Driver": "local", "Mode": v.mode,
            "RW": !v.read_only, "Propagation": "",
        }));
    }
    Value::Array(out)
}

fn legacy_fill_list_item(item: &mut Value, nets: &[ContainerNetwork]) {
    let ports: Vec<Value> = nets
        .iter()
        .flat_map(|n| n.ports.iter())
        .map(|p| {
            json!({"IP": p.host_ip, "PrivatePort": p.container_port, "PublicPort": p.host_port, "Type": p.proto})
        })
        .collect();
    item["Ports"] = Value::Array(ports);
    let mut networks = Map::new();
    for n in nets {
        networks.insert(
            n.network.clone(),
            // The fields dockerd 20.10 lists beyond the first seven were added after the
            // typed rows replaced this rendering (IPAMConfig, Links, the IPv6 ones,
            // DriverOpts); the reference carries them as dockerd sends them.
            json!({
                "NetworkID": n.network_id, "EndpointID": n.endpoint_id, "Gateway": n.gateway,
                "IPAddress": n.ip, "IPPrefixLen": n.prefix_len, "MacAddress": n.mac,
                "Aliases": n.aliases,
                "IPAMConfig": n.static_ip.as_ref().map_or(Value::Null, |ip| json!({"IPv4Address": ip})),
                "Links": null, "IPv6Gateway": "", "GlobalIPv6Address": "",
                "GlobalIPv6PrefixLen": 0, "DriverOpts": null,
            }),
        );
    }
    item["NetworkSettings"] = json!({ "Networks": networks });
}

fn command_text(c: &ContainerRecord) -> String {
    let mut parts = vec![c.path.clone()];
    parts.extend(c.args.iter().cloned());
    parts.join(" ")
}

fn legacy_item(
    c: &ContainerRecord,
    nets: &[ContainerNetwork],
    now: DateTime<Utc>,
    size: bool,
    mountpoint: &dyn Fn(&str) -> String,
) -> Value {
    let mut item = json!({
        "Id": c.id.as_str(),
        "Names": [format!("/{}", c.name)],
        "Image": c.spec.image,
        "ImageID": c.image_id,
        "Command": command_text(c),
        "Created": c.created.timestamp(),
        "Ports": [],
        "Labels": c.spec.labels,
        "State": c.state.status.as_str(),
        "Status": status_text(c, now),
        "HostConfig": {"NetworkMode": c.spec.host.network_mode.clone().unwrap_or_else(|| "default".into())},
        "NetworkSettings": {"Networks": {}},
        "Mounts": legacy_mounts_json(c, mountpoint),
    });
    if !nets.is_empty() {
        legacy_fill_list_item(&mut item, nets);
    }
    if size {
        item["SizeRw"] = json!(0);
        item["SizeRootFs"] = json!(0);
    }
    item
}

fn legacy_matches(item: &Value, f: &Filters) -> bool {
    let arr = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let mounts = arr(&item["Mounts"]);
    let ports = arr(&item["Ports"]);
    let port_matches = |want: &str, key: &str| {
        let (port, proto) = want.split_once('/').unwrap_or((want, "tcp"));
        ports.iter().any(|p| {
            p[key].as_u64().is_some_and(|n| n.to_string() == port)
                && p["Type"].as_str().unwrap_or("tcp") == proto
        })
    };
    f.any("volume", |v| {
        mounts
            .iter()
            .any(|m| m["Name"].as_str() == Some(v) || m["Destination"].as_str() == Some(v))
    }) && f.any("network", |v| {
        item["HostConfig"]["NetworkMode"].as_str() == Some(v)
            || item["NetworkSettings"]["Networks"]
                .as_object()
                .is_some_and(|nets| {
                    nets.iter().any(|(name, n)| {
                        name == v || n["NetworkID"].as_str().is_some_and(|id| id == v)
                    })
                })
    }) && f.any("publish", |v| port_matches(v, "PublicPort"))
        && f.any("expose", |v| port_matches(v, "PrivatePort"))
}

// === fixtures ===

fn mountpoint(name: &str) -> String {
    format!("/var/lib/corral/volumes/{name}/_data")
}

fn record(i: usize, now: DateTime<Utc>) -> ContainerRecord {
    let statuses = [
        ContainerStatus::Created,
        ContainerStatus::Running,
        ContainerStatus::Paused,
        ContainerStatus::Restarting,
        ContainerStatus::Removing,
        ContainerStatus::Exited,
        ContainerStatus::Dead,
    ];
    let mut spec = ContainerSpec {
        image: if i.is_multiple_of(2) {
            "busybox".into()
        } else {
            "registry.example/ünï\"code\\img:1".into()
        },
        ..Default::default()
    };
    if i % 3 == 1 {
        spec.labels = [
            ("com.example.a".to_owned(), "x".to_owned()),
            ("b<>&".to_owned(), "quote \" and \\ and \n".to_owned()),
            ("empty".to_owned(), String::new()),
        ]
        .into();
    }
    spec.host.network_mode = match i % 5 {
        0 => None,
        1 => Some("host".into()),
        2 => Some("none".into()),
        3 => Some("web".into()),
        _ => Some("bridge".into()),
    };
    if i % 4 == 2 {
        spec.host.binds = vec![
            "/srv:/srv".into(),
            "/ro:/ro:ro".into(),
            "/z:/z:rw,z".into(),
            "/both:/both:ro,z".into(),
            "named:/named".into(),
            "nocolon".into(),
            "/a:/b:c:d".into(),
        ];
        spec.host.mounts = vec![
            MountSpec {
                kind: MountType::Bind,
                source: "/host".into(),
                target: "/in".into(),
                read_only: true,
                options: BTreeMap::new(),
            },
            MountSpec {
                kind: MountType::Tmpfs,
                source: String::new(),
                target: "/tmp".into(),
                read_only: false,
                options: BTreeMap::new(),
            },
            MountSpec {
                kind: MountType::Volume,
                source: "data".into(),
                target: "/data".into(),
                read_only: false,
                options: BTreeMap::new(),
            },
        ];
    }
    let volume_mounts = if i % 4 == 2 || i % 7 == 3 {
        vec![
            VolumeMount {
                name: "data".into(),
                destination: "/data".into(),
                read_only: i.is_multiple_of(2),
                anonymous: false,
                no_copy: false,
                mode: "rw,z".into(),
            },
            VolumeMount {
                name: "a".repeat(64),
                destination: "/anon".into(),
                read_only: false,
                anonymous: true,
                no_copy: true,
                mode: String::new(),
            },
        ]
    } else {
        Vec::new()
    };
    ContainerRecord {
        id: ContainerId::random(),
        name: ContainerName::parse(&format!("c{i}")).unwrap(),
        created: now - Duration::seconds(i as i64 * 97),
        spec,
        image_id: format!("sha256:{:064x}", i),
        path: if i.is_multiple_of(6) {
            "sh".into()
        } else {
            String::new()
        },
        args: (0..i % 4).map(|k| format!("arg {k} \"q\"")).collect(),
        env: vec![],
        runtime: "runc".into(),
        state: ContainerState {
            status: statuses[i % statuses.len()],
            exit_code: i as i64 % 3 - 1,
            started_at: (!i.is_multiple_of(3)).then(|| now - Duration::seconds(i as i64 * 61)),
            finished_at: i
                .is_multiple_of(2)
                .then(|| now - Duration::seconds(i as i64 * 3700)),
            ..Default::default()
        },
        volume_mounts,
    }
}

fn network(name: &str, id: &str, ports: &[(u16, u16, &str)], aliases: bool) -> ContainerNetwork {
    ContainerNetwork {
        network: name.into(),
        network_id: id.into(),
        endpoint_id: format!("ep-{id}"),
        ip: "172.17.0.2".into(),
        prefix_len: 16,
        gateway: "172.17.0.1".into(),
        mac: "02:42:ac:11:00:02".into(),
        sandbox_key: "/run/corral/netns/x".into(),
        ports: ports
            .iter()
            .map(|(host, container, proto)| PublishedPort {
                proto: (*proto).into(),
                host_ip: "0.0.0.0".into(),
                host_port: *host,
                container_port: *container,
            })
            .collect(),
        aliases: aliases.then(|| vec!["web".to_owned(), "abcdef012345".to_owned()]),
        static_ip: (name == "db").then(|| "10.1.0.5".to_owned()),
    }
}

fn networks(i: usize) -> Vec<ContainerNetwork> {
    match i % 6 {
        0 => vec![],
        1 => vec![network("host", "hostid", &[], false)],
        2 => vec![network(
            "bridge",
            "n1",
            &[(8080, 80, "tcp"), (53, 53, "udp")],
            false,
        )],
        3 => vec![
            network("web", "n2", &[(443, 8443, "tcp")], true),
            network("db", "n3", &[], true),
        ],
        4 => vec![
            // The same name twice: the later one wins in `NetworkSettings.Networks`.
            network("dup", "first", &[(1, 2, "tcp")], false),
            network("dup", "second", &[(3, 4, "udp")], true),
        ],
        _ => vec![network("bridge", "", &[], false)],
    }
}

fn filters(raw: &str) -> Filters {
    Filters::parse(Some(raw)).unwrap()
}

// === tests ===

#[test]
fn typed_body_is_byte_identical_to_the_value_rendering() {
    let now = Utc::now();
    let recs: Vec<ContainerRecord> = (0..84).map(|i| record(i, now)).collect();
    for size in [false, true] {
        let rows: Vec<Row<'_>> = recs
            .iter()
            .enumerate()
            .map(|(i, c)| Row::new(c, networks(i), &mountpoint, now, size))
            .collect();
        let legacy: Vec<Value> = recs
            .iter()
            .enumerate()
            .map(|(i, c)| legacy_item(c, &networks(i), now, size, &mountpoint))
            .collect();
        let old = serde_json::to_vec(&Value::Array(legacy)).unwrap();
        let new = render(&rows).unwrap();
        assert_eq!(
            String::from_utf8(new).unwrap(),
            String::from_utf8(old).unwrap(),
            "size={size}"
        );
    }
    assert_eq!(render(&[]).unwrap(), b"[]");
}

#[test]
fn typed_mounts_equal_the_value_mounts_of_inspect() {
    let now = Utc::now();
    for i in 0..28 {
        let c = record(i, now);
        assert_eq!(
            serde_json::to_value(mount_items(&c, &mountpoint)).unwrap(),
            legacy_mounts_json(&c, &mountpoint)
        );
    }
}

#[test]
fn item_filters_answer_as_the_value_filters_did() {
    let now = Utc::now();
    let raws = [
        r#"{"volume":["data"]}"#,
        r#"{"volume":["/data"]}"#,
        r#"{"volume":["/srv"]}"#,
        r#"{"volume":["/tmp"]}"#,
        r#"{"volume":["/in"]}"#,
        r#"{"volume":["named"]}"#,
        r#"{"volume":["/named"]}"#,
        r#"{"volume":["nothing"]}"#,
        r#"{"network":["bridge"]}"#,
        r#"{"network":["default"]}"#,
        r#"{"network":["host"]}"#,
        r#"{"network":["hostid"]}"#,
        r#"{"network":["none"]}"#,
        r#"{"network":["web"]}"#,
        r#"{"network":["n2"]}"#,
        r#"{"network":["n3"]}"#,
        r#"{"network":["dup"]}"#,
        r#"{"network":["first"]}"#,
        r#"{"network":["second"]}"#,
        r#"{"network":[""]}"#,
        r#"{"network":["db","bridge"]}"#,
        r#"{"publish":["8080"]}"#,
        r#"{"publish":["8080/tcp"]}"#,
        r#"{"publish":["8080/udp"]}"#,
        r#"{"publish":["53/udp"]}"#,
        r#"{"publish":["80"]}"#,
        r#"{"publish":["08080"]}"#,
        r#"{"publish":["3/udp"]}"#,
        r#"{"expose":["80"]}"#,
        r#"{"expose":["80/tcp"]}"#,
        r#"{"expose":["8443"]}"#,
        r#"{"expose":["4/udp"]}"#,
        r#"{"expose":["8080"]}"#,
        r#"{"expose":["80/sctp"]}"#,
        r#"{"network":["bridge"],"publish":["8080"]}"#,
        r#"{"volume":["/data"],"network":["web"]}"#,
    ];
    let mut matched = 0;
    for i in 0..84 {
        let c = record(i, now);
        let nets = networks(i);
        let row = Row::new(&c, nets.clone(), &mountpoint, now, false);
        let item = legacy_item(&c, &nets, now, false, &mountpoint);
        for raw in raws {
            let f = filters(raw);
            let want = legacy_matches(&item, &f);
            assert_eq!(row.matches(&f), want, "record {i}, filter {raw}");
            matched += usize::from(want);
        }
        assert!(row.matches(&filters("{}")));
    }
    // The fixtures exercise both answers.
    assert!(matched > 0 && matched < 84 * raws.len());
}

#[test]
fn list_filters_read_mounts_networks_and_ports() {
    let now = Utc::now();
    let mut c = record(0, now);
    c.spec.host.network_mode = Some("web".into());
    c.volume_mounts = record(2, now).volume_mounts;
    let nets = vec![network("web", "abc123", &[(8080, 80, "tcp")], true)];
    let row = Row::new(&c, nets, &mountpoint, now, false);
    let yes = |raw: &str| row.matches(&filters(raw));
    assert!(yes(r#"{"volume":["data"]}"#));
    assert!(yes(r#"{"volume":["/data"]}"#));
    assert!(!yes(r#"{"volume":["other"]}"#));
    assert!(yes(r#"{"network":["web"]}"#) && yes(r#"{"network":["abc123"]}"#));
    assert!(!yes(r#"{"network":["db"]}"#));
    assert!(yes(r#"{"publish":["8080"]}"#) && yes(r#"{"publish":["8080/tcp"]}"#));
    assert!(!yes(r#"{"publish":["8080/udp"]}"#) && !yes(r#"{"publish":["80"]}"#));
    assert!(yes(r#"{"expose":["80"]}"#) && !yes(r#"{"expose":["8080"]}"#));
}
