//! Unit tests of the engine's network state: spec parsing, dockerd's checks, state
//! compatibility.

use super::*;

fn record(mode: Option<&str>, networks: &[(&str, EndpointSpec)]) -> ContainerRecord {
    ContainerRecord {
        id: ContainerId::random(),
        name: corral_core::ContainerName::parse("web-1").unwrap(),
        created: Utc::now(),
        path: "sh".into(),
        args: vec![],
        env: vec![],
        image_id: "sha256:x".into(),
        runtime: "libcontainer".into(),
        spec: corral_core::ContainerSpec {
            image: "busybox".into(),
            host: corral_core::HostSpec {
                network_mode: mode.map(str::to_owned),
                ..Default::default()
            },
            networks: networks
                .iter()
                .map(|(n, e)| ((*n).to_owned(), e.clone()))
                .collect(),
            ..Default::default()
        },
        state: Default::default(),
        volume_mounts: vec![],
    }
}

#[test]
fn fnv_ids_are_stable_hex() {
    assert_eq!(fnv64(""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(mac_string([2, 0x42, 0xac, 0x11, 0, 2]), "02:42:ac:11:00:02");
}

#[test]
fn ports_parse_like_docker() {
    assert_eq!(proto_of("udp").unwrap(), Proto::Udp);
    assert!(proto_of("sctp").is_err());
    assert!(parse_port("70000", "host").is_err());
    assert_eq!(parse_port("8080", "host").unwrap(), 8080);
    assert_eq!(parse_host_ports("").unwrap(), (0, 0));
    assert_eq!(parse_host_ports("8000-8010").unwrap(), (8000, 8010));
    assert!(parse_host_ports("8010-8000").is_err());
    assert!(parse_host_ports("8000-70000").is_err());
}

#[test]
fn macs_parse_and_bad_ones_are_named() {
    assert_eq!(
        parse_mac("02:42:0a:d6:00:32").unwrap(),
        [2, 0x42, 0x0a, 0xd6, 0, 0x32]
    );
    let e = parse_mac("02:42:zz:d6:00:32").unwrap_err();
    assert!(e.to_string().contains("02:42:zz:d6:00:32"), "{e}");
    assert!(parse_mac("02:42").is_err());
}

#[test]
fn attachments_follow_the_network_mode_then_endpoints_config() {
    let alias = |a: &str| EndpointSpec {
        aliases: vec![a.into()],
        ..Default::default()
    };
    // docker-compose v1: the service name as an alias on the primary network.
    let rec = record(Some("proj_front"), &[("proj_front", alias("web"))]);
    let a = attachments_from_spec(&rec);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].network, "proj_front");
    assert_eq!(a[0].aliases, vec!["web".to_string()]);
    // Compose v2 (API >= 1.44): every network in EndpointsConfig, primary first.
    let rec = record(
        Some("b"),
        &[("a", alias("x")), ("b", alias("y")), ("c", alias("z"))],
    );
    let names: Vec<_> = attachments_from_spec(&rec)
        .into_iter()
        .map(|a| a.network)
        .collect();
    assert_eq!(names, vec!["b", "a", "c"]);
    // The default network under any spelling; host and none have no attachment.
    let ip = EndpointSpec {
        ipv4_address: Some("172.17.0.9".into()),
        ..Default::default()
    };
    let a = attachments_from_spec(&record(None, &[("bridge", ip)]));
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].network, DEFAULT_NETWORK);
    assert_eq!(a[0].ip, Some(Ipv4Addr::new(172, 17, 0, 9)));
    assert!(attachments_from_spec(&record(Some("host"), &[])).is_empty());
    assert!(attachments_from_spec(&record(Some("none"), &[])).is_empty());
}

#[test]
fn endpoint_requests_are_checked_like_dockerd() {
    let with_alias = EndpointSpec {
        aliases: vec!["a".into()],
        ..Default::default()
    };
    assert!(check_endpoint("bridge", &with_alias)
        .unwrap_err()
        .to_string()
        .contains("network-scoped alias is supported only"));
    check_endpoint("mynet", &with_alias).unwrap();
    let with_ip = EndpointSpec {
        ipv4_address: Some("10.0.0.2".into()),
        ..Default::default()
    };
    assert!(check_endpoint("default", &with_ip)
        .unwrap_err()
        .to_string()
        .contains("user specified IP address is supported on user defined networks only"));
    let bad_ip = EndpointSpec {
        ipv4_address: Some("10.0.0.300".into()),
        ..Default::default()
    };
    assert!(matches!(
        check_endpoint("mynet", &bad_ip),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        lease_error(corral_network::Error::AddressInUse(Ipv4Addr::LOCALHOST)),
        Error::Forbidden(m) if m == "Address already in use"
    ));
}

#[test]
fn state_from_before_several_networks_per_container_still_loads() {
    let legacy = r#"{"networks":{},"endpoints":{"abc":{"network":"bridge","ip":"172.17.0.2","mac":"02:42:ac:11:00:02","host_veth":"cvabc0","netns":"/run/corral/netns/abc","ports":[]}}}"#;
    let st: NetState = serde_json::from_str(legacy).unwrap();
    let eps = &st.endpoints["abc"];
    assert_eq!(eps.len(), 1);
    assert_eq!(eps[0].ifname, "eth0");
    assert!(eps[0].aliases.is_empty() && !eps[0].static_ip);
    // And the current form round-trips.
    let again: NetState = serde_json::from_str(&serde_json::to_string(&st).unwrap()).unwrap();
    assert_eq!(again.endpoints["abc"].len(), 1);
}
