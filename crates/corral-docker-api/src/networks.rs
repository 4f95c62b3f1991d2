//! `/networks` and the network parts of container documents (inspect `NetworkSettings`,
//! `ps` `Ports`), in dockerd's JSON shapes.

use axum::extract::{Path, Query, State};
use axum::Json;
use corral_core::EndpointSpec;
use corral_engine::{ContainerNetwork, NetworkInfo};
use serde_json::{json, Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::filters::Filters;
use crate::AppState;

fn network_json(n: &NetworkInfo, containers: &Map<String, Value>) -> Value {
    let config = if n.subnet.is_empty() {
        json!([])
    } else {
        json!([{"Subnet": n.subnet, "Gateway": n.gateway}])
    };
    let mut options = Map::new();
    if !n.bridge.is_empty() {
        options.insert(
            "com.docker.network.bridge.name".into(),
            Value::String(n.bridge.clone()),
        );
    }
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": if n.created.is_empty() { "0001-01-01T00:00:00Z" } else { n.created.as_str() },
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": null, "Config": config},
        "Internal": n.internal,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": options,
        "Labels": n.labels,
    })
}

async fn containers_of(st: &AppState, n: &NetworkInfo) -> Map<String, Value> {
    let mut out = Map::new();
    for (id, (endpoint, mac, ip)) in &n.containers {
        let name = match st.engine.container(id).await {
            Ok(c) => c.name.to_string(),
            Err(_) => String::new(),
        };
        out.insert(
            id.clone(),
            json!({"Name": name, "EndpointID": endpoint, "MacAddress": mac, "IPv4Address": ip, "IPv6Address": ""}),
        );
    }
    out
}

/// Query of `GET /networks`.
#[derive(serde::Deserialize)]
pub(crate) struct ListQuery {
    filters: Option<String>,
}

/// `GET /networks?filters=`: `name` (substring), `id` (prefix), `label`, `label!`,
/// `driver` and `type` (`builtin`/`custom`), as dockerd filters them. Compose finds a
/// project's networks with a `label` filter.
pub(crate) async fn list(
    State(st): State<AppState>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let f = Filters::parse(q.filters.as_deref())?;
    f.validate(&["name", "id", "label", "label!", "driver", "type", "scope"])?;
    let mut out = Vec::new();
    for n in st.engine.networks().await? {
        let builtin = matches!(n.name.as_str(), "bridge" | "host" | "none");
        let keep = f.any("name", |v| n.name.contains(v))
            && f.any("id", |v| n.id.starts_with(v))
            && f.any("driver", |v| n.driver == v)
            && f.any("scope", |v| v == "local")
            && f.any("type", |v| (v == "builtin") == builtin)
            && f.labels_match(&n.labels);
        if !keep {
            continue;
        }
        let c = containers_of(&st, &n).await;
        out.push(network_json(&n, &c));
    }
    Ok(Json(Value::Array(out)))
}

/// `GET /networks/{id}`: by full name, full id or id prefix.
pub(crate) async fn inspect(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let nets = st.engine.networks().await?;
    let found = nets
        .iter()
        .find(|n| n.name == id || n.id == id)
        .or_else(|| {
            nets.iter()
                .find(|n| !id.is_empty() && n.id.starts_with(&id))
        });
    match found {
        Some(n) => {
            let c = containers_of(&st, n).await;
            Ok(Json(network_json(n, &c)))
        }
        None => Err(ApiError::not_found(format!("network {id} not found"))),
    }
}

/// `NetworkSettings.Ports` of inspect.
fn ports_map(n: &ContainerNetwork) -> Value {
    let mut out = Map::new();
    for p in &n.ports {
        let key = format!("{}/{}", p.container_port, p.proto);
        let entry = out.entry(key).or_insert_with(|| json!([]));
        if let Some(list) = entry.as_array_mut() {
            list.push(json!({"HostIp": p.host_ip, "HostPort": p.host_port.to_string()}));
        }
    }
    Value::Object(out)
}

fn endpoint_json(n: &ContainerNetwork) -> Value {
    let ipam = n
        .static_ip
        .as_ref()
        .map_or(Value::Null, |ip| json!({"IPv4Address": ip}));
    let mut dns_names: Vec<String> = Vec::new();
    if let Some(a) = &n.aliases {
        dns_names.extend(a.iter().cloned());
    }
    json!({
        "IPAMConfig": ipam, "Links": null, "Aliases": n.aliases,
        "MacAddress": n.mac, "DriverOpts": null,
        "NetworkID": n.network_id, "EndpointID": n.endpoint_id,
        "Gateway": n.gateway, "IPAddress": n.ip, "IPPrefixLen": n.prefix_len,
        "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        "DNSNames": if n.aliases.is_some() { json!(dns_names) } else { Value::Null },
    })
}

/// Fills inspect's `NetworkSettings` from the container's networks. The top-level
/// address fields describe the default `bridge` network only, as in dockerd.
pub(crate) fn fill_settings(doc: &mut Value, nets: &[ContainerNetwork], name: &str) {
    let s = &mut doc["NetworkSettings"];
    let mut networks = Map::new();
    for n in nets {
        let mut ep = endpoint_json(n);
        if let (Some(names), Some(_)) = (ep["DNSNames"].as_array_mut(), &n.aliases) {
            names.insert(0, json!(name));
        }
        networks.insert(n.network.clone(), ep);
    }
    if let Some(first) = nets.first() {
        if !first.sandbox_key.is_empty() {
            s["SandboxKey"] = json!(first.sandbox_key);
        }
        let mut ports = Map::new();
        for n in nets {
            if let Value::Object(m) = ports_map(n) {
                ports.extend(m);
            }
        }
        s["Ports"] = Value::Object(ports);
    }
    if let Some(n) = nets
        .iter()
        .find(|n| n.network == "bridge" && !n.ip.is_empty())
    {
        s["EndpointID"] = json!(n.endpoint_id);
        s["Gateway"] = json!(n.gateway);
        s["IPAddress"] = json!(n.ip);
        s["IPPrefixLen"] = json!(n.prefix_len);
        s["MacAddress"] = json!(n.mac);
    }
    s["Networks"] = Value::Object(networks);
}

/// The endpoint settings of a create body (`NetworkingConfig.EndpointsConfig`).
pub(crate) fn endpoint_specs(
    cfg: Option<bollard::models::NetworkingConfig>,
) -> std::collections::BTreeMap<String, EndpointSpec> {
    cfg.and_then(|c| c.endpoints_config)
        .unwrap_or_default()
        .into_iter()
        .map(|(name, ep)| (name, endpoint_spec(ep)))
        .collect()
}

fn endpoint_spec(ep: bollard::models::EndpointSettings) -> EndpointSpec {
    EndpointSpec {
        aliases: ep.aliases.unwrap_or_default(),
        ipv4_address: ep
            .ipam_config
            .and_then(|c| c.ipv4_address)
            .filter(|s| !s.is_empty()),
        mac_address: ep.mac_address.filter(|s| !s.is_empty()),
    }
}

/// `Config.MacAddress` of API versions before 1.44 (docker CLI 20.10 sends it there): it
/// applies to the container's primary network.
pub(crate) fn apply_legacy_mac(raw: &[u8], spec: &mut corral_core::ContainerSpec) {
    let Ok(v) = serde_json::from_slice::<Value>(raw) else {
        return;
    };
    let Some(mac) = v["MacAddress"].as_str().filter(|m| !m.is_empty()) else {
        return;
    };
    let primary = match spec.host.network_mode.as_deref() {
        None | Some("" | "default") => "bridge".to_owned(),
        Some(m) => m.to_owned(),
    };
    let ep = spec.networks.entry(primary).or_default();
    if ep.mac_address.is_none() {
        ep.mac_address = Some(mac.to_owned());
    }
}

/// The body of `POST /networks/{id}/connect`.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ConnectBody {
    container: String,
    #[serde(default)]
    endpoint_config: Option<bollard::models::EndpointSettings>,
}

/// The body of `POST /networks/{id}/disconnect`.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DisconnectBody {
    container: String,
    #[serde(default)]
    force: bool,
}

/// `POST /networks/{id}/connect`.
pub(crate) async fn connect(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<ConnectBody>,
) -> ApiResult<axum::http::StatusCode> {
    let ep = body.endpoint_config.map(endpoint_spec).unwrap_or_default();
    st.engine.connect_network(&id, &body.container, ep).await?;
    Ok(axum::http::StatusCode::OK)
}

/// `POST /networks/{id}/disconnect`.
pub(crate) async fn disconnect(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<DisconnectBody>,
) -> ApiResult<axum::http::StatusCode> {
    st.engine
        .disconnect_network(&id, &body.container, body.force)
        .await?;
    Ok(axum::http::StatusCode::OK)
}

/// The query of `POST /networks/prune`.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct PruneQuery {
    filters: Option<String>,
}

/// A Go duration (`24h`, `1h30m`, `90s`) in whole seconds.
fn go_duration(s: &str) -> Option<i64> {
    corral_core::duration::parse_go_duration(s).map(|ns| ns / 1_000_000_000)
}

/// `until`: a Unix timestamp, an RFC 3339 time or a duration before now.
fn until_time(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    if let Ok(secs) = s.split('.').next().unwrap_or(s).parse::<i64>() {
        return chrono::DateTime::from_timestamp(secs, 0);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&chrono::Utc));
    }
    go_duration(s).map(|d| chrono::Utc::now() - chrono::Duration::seconds(d))
}

/// `POST /networks/prune?filters=`: `until`, `label`, `label!`.
pub(crate) async fn prune(
    State(st): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<PruneQuery>,
) -> ApiResult<Json<Value>> {
    let f = crate::filters::Filters::parse(q.filters.as_deref())?;
    f.validate(&["until", "label", "label!"])?;
    let until = match f.get("until") {
        Some([v]) => Some(
            until_time(v)
                .ok_or_else(|| ApiError::bad_request(format!("invalid until filter: {v}")))?,
        ),
        Some([]) | None => None,
        Some(_) => {
            return Err(ApiError::bad_request(
                "more than one until filter specified",
            ))
        }
    };
    let keep: corral_engine::NetworkKeep = Box::new(move |n: &NetworkInfo| {
        let old_enough = until
            .is_none_or(|u| chrono::DateTime::parse_from_rfc3339(&n.created).is_ok_and(|c| c < u));
        !(old_enough && f.labels_match(&n.labels))
    });
    let removed = st.engine.prune_networks(keep).await?;
    let deleted = if removed.is_empty() {
        Value::Null
    } else {
        json!(removed)
    };
    Ok(Json(json!({ "NetworksDeleted": deleted })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_engine::PublishedPort;

    fn net() -> ContainerNetwork {
        ContainerNetwork {
            network: "bridge".into(),
            network_id: "n1".into(),
            endpoint_id: "e1".into(),
            ip: "172.17.0.2".into(),
            prefix_len: 16,
            gateway: "172.17.0.1".into(),
            mac: "02:42:ac:11:00:02".into(),
            sandbox_key: "/run/corral/netns/x".into(),
            ports: vec![PublishedPort {
                proto: "tcp".into(),
                host_ip: "0.0.0.0".into(),
                host_port: 8080,
                container_port: 80,
            }],
            aliases: None,
            static_ip: None,
        }
    }

    #[test]
    fn inspect_settings_match_dockerd_shape() {
        let mut doc = json!({"NetworkSettings": {"Ports": {}, "Networks": {}}});
        fill_settings(&mut doc, &[net()], "c1");
        let s = &doc["NetworkSettings"];
        assert_eq!(s["IPAddress"], "172.17.0.2");
        assert_eq!(s["Ports"]["80/tcp"][0]["HostPort"], "8080");
        assert_eq!(s["Networks"]["bridge"]["Gateway"], "172.17.0.1");
    }
}

/// The body of `POST /networks/create` (the fields Corral honours).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CreateBody {
    name: String,
    #[serde(default)]
    driver: Option<String>,
    #[serde(default)]
    internal: bool,
    #[serde(default, rename = "IPAM")]
    ipam: Option<IpamBody>,
    #[serde(default)]
    labels: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default, rename = "EnableIPv6")]
    enable_ipv6: Option<bool>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct IpamBody {
    #[serde(default)]
    config: Option<Vec<IpamConfigBody>>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct IpamConfigBody {
    #[serde(default)]
    subnet: Option<String>,
    #[serde(default)]
    gateway: Option<String>,
    #[serde(default, rename = "IPRange")]
    ip_range: Option<String>,
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|v| !v.is_empty())
}

/// `POST /networks/create`.
pub(crate) async fn create(
    State(st): State<AppState>,
    Json(body): Json<CreateBody>,
) -> ApiResult<(axum::http::StatusCode, Json<Value>)> {
    match body.driver.as_deref() {
        None | Some("" | "bridge") => {}
        Some(_) => {
            return Err(
                corral_engine::Error::Unsupported("network drivers other than bridge").into(),
            )
        }
    }
    if body.enable_ipv6 == Some(true) {
        return Err(corral_engine::Error::Unsupported("IPv6 networks").into());
    }
    let mut configs = body.ipam.and_then(|i| i.config).unwrap_or_default();
    if configs.len() > 1 {
        return Err(corral_engine::Error::Unsupported("more than one IPAM config").into());
    }
    let cfg = configs.pop().unwrap_or_default();
    let req = corral_engine::NetworkCreate {
        name: body.name,
        subnet: non_empty(cfg.subnet),
        gateway: non_empty(cfg.gateway),
        ip_range: non_empty(cfg.ip_range),
        internal: body.internal,
        labels: body.labels.unwrap_or_default(),
    };
    let id = st.engine.create_network(req).await?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(json!({"Id": id, "Warning": ""})),
    ))
}

/// `DELETE /networks/{id}`.
pub(crate) async fn remove(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::http::StatusCode> {
    st.engine.remove_network(&id).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
