//! `/info`, `/auth`, `/system/df` and the object kinds Corral does not have yet.

use axum::extract::{Path, State};
use axum::Json;
use chrono::Utc;
use corral_engine::Credentials;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// Go's name for this machine's architecture, as Docker reports it.
pub(crate) fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        other => other,
    }
}

fn meminfo_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map(|k| k * 1024)
        .unwrap_or(0)
}

/// dockerd's `RegistryConfig`: each `--insecure-registry` that is a CIDR joins
/// `InsecureRegistryCIDRs` (which always ends with loopback), any other becomes an insecure
/// index beside the official `docker.io` one.
fn registry_config(insecure: &[String]) -> Value {
    let mut cidrs: Vec<String> = Vec::new();
    let mut indexes = serde_json::Map::new();
    indexes.insert(
        "docker.io".into(),
        json!({"Name": "docker.io", "Mirrors": [], "Secure": true, "Official": true}),
    );
    let loopback = "127.0.0.0/8".to_owned();
    for r in insecure.iter().chain(std::iter::once(&loopback)) {
        let r = r
            .strip_prefix("http://")
            .or_else(|| r.strip_prefix("https://"))
            .unwrap_or(r)
            .trim_end_matches('/');
        if let Some(net) = cidr_network(r) {
            if !cidrs.contains(&net) {
                cidrs.push(net);
            }
        } else {
            indexes.insert(
                r.to_owned(),
                json!({"Name": r, "Mirrors": [], "Secure": false, "Official": false}),
            );
        }
    }
    json!({
        "AllowNondistributableArtifactsCIDRs": null,
        "AllowNondistributableArtifactsHostnames": null,
        "InsecureRegistryCIDRs": cidrs,
        "IndexConfigs": indexes,
        "Mirrors": [],
    })
}

/// `a.b.c.d/n` (or IPv6) as its network address and prefix, like Go's `net.ParseCIDR`.
fn cidr_network(s: &str) -> Option<String> {
    let (addr, len) = s.split_once('/')?;
    let len: u32 = len.parse().ok()?;
    match addr.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(a) if len <= 32 => {
            let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
            Some(format!(
                "{}/{len}",
                std::net::Ipv4Addr::from(u32::from(a) & mask)
            ))
        }
        std::net::IpAddr::V6(a) if len <= 128 => {
            let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
            Some(format!(
                "{}/{len}",
                std::net::Ipv6Addr::from(u128::from(a) & mask)
            ))
        }
        _ => None,
    }
}

pub(crate) async fn info(State(st): State<AppState>) -> ApiResult<Json<Value>> {
    let i = st.engine.info().await?;
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let runtimes: serde_json::Map<String, Value> = i
        .runtimes
        .iter()
        .map(|r| (r.clone(), json!({"path": r})))
        .collect();
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    Ok(Json(json!({
        "ID": format!("corral-{}", i.name),
        "Containers": i.containers.0,
        "ContainersRunning": i.containers.1,
        "ContainersPaused": i.containers.2,
        "ContainersStopped": i.containers.3,
        "Images": i.images,
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", "extfs"]],
        "Plugins": {"Volume": ["local"], "Network": ["host", "none"], "Log": ["json-file"]},
        "MemoryLimit": true, "SwapLimit": i.swap_limit, "CpuCfsPeriod": true, "CpuCfsQuota": true,
        "CPUShares": true, "CPUSet": true, "PidsLimit": true, "IPv4Forwarding": i.ipv4_forwarding,
        "Debug": false, "NFd": 0, "OomKillDisable": true, "NGoroutines": 0,
        "SystemTime": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": i.cgroup_version,
        "NEventsListener": 0,
        "KernelVersion": kernel,
        "OperatingSystem": "Corral",
        "OSVersion": "",
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": registry_config(&i.insecure_registries),
        "NCPU": ncpu,
        "MemTotal": meminfo_total(),
        "DockerRootDir": i.data_dir,
        "Name": hostname,
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": crate::version::API_VERSION_ENGINE,
        "Runtimes": runtimes,
        "DefaultRuntime": i.default_runtime,
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false,
                  "Error": "", "RemoteManagers": null},
        "LiveRestoreEnabled": true,
        "Isolation": "",
        "InitBinary": "",
        "SecurityOptions": ["name=seccomp,profile=builtin"],
        "Warnings": i.warnings,
    })))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct AuthBody {
    username: String,
    password: String,
    serveraddress: String,
    identitytoken: String,
}

pub(crate) async fn auth(
    State(st): State<AppState>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let b: AuthBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
    let status = st
        .engine
        .login(Credentials {
            username: b.username,
            password: b.password,
            identity_token: b.identitytoken,
            server_address: b.serveraddress,
        })
        .await?;
    Ok(Json(json!({"Status": status, "IdentityToken": ""})))
}

pub(crate) async fn df(State(st): State<AppState>) -> ApiResult<Json<Value>> {
    let images = st.engine.images().await?;
    let containers = st.engine.containers().await?;
    let volumes = st.engine.volumes(true).await?;
    let usage = st.engine.images_disk_usage().await?;
    let mut listed = Vec::with_capacity(containers.len());
    for c in &containers {
        let size = st.engine.container_size(c).await?;
        listed.push(json!({
            "Id": c.id.as_str(),
            "Names": [format!("/{}", c.name)],
            "Image": c.spec.image,
            "ImageID": c.image_id,
            "Command": crate::containers::CommandText(c).to_string(),
            "Created": c.created.timestamp(),
            "State": c.state.status.as_str(),
            "Status": crate::containers::status_text(c, chrono::Utc::now()),
            "Labels": c.spec.labels,
            "SizeRw": size.rw,
            "SizeRootFs": size.root_fs,
        }));
    }
    // Each image with the number of containers made from it (`docker system df` counts
    // an image with containers as active) and the size of the layers it shares.
    let images: Vec<Value> = images
        .iter()
        .map(|i| {
            let n = containers.iter().filter(|c| c.image_id == i.id).count();
            let shared = usage.shared.get(i.id.as_str()).copied().unwrap_or(0);
            crate::images::summary_json(
                i,
                i64::try_from(shared).unwrap_or(i64::MAX),
                i64::try_from(n).unwrap_or(i64::MAX),
            )
        })
        .collect();
    let layers = usage.layers_size;
    Ok(Json(json!({
        "LayersSize": layers,
        "Images": images,
        "Containers": listed,
        "Volumes": volumes.iter().map(|v| crate::volumes::volume_json(v, true)).collect::<Vec<_>>(),
        "BuildCache": [],
    })))
}

/// `docker inspect NAME` probes plugins; a clean 404 lets it move on.
pub(crate) async fn no_plugin(Path(rest): Path<String>) -> ApiError {
    let name = rest.trim_end_matches("/json");
    ApiError::not_found(format!("plugin \"{name}\" not found"))
}

pub(crate) async fn no_session() -> ApiError {
    ApiError::from(corral_engine::Error::Unsupported(
        "BuildKit (/session, /grpc)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_config_splits_cidrs_from_insecure_indexes_like_dockerd() {
        let got = registry_config(&[
            "10.1.2.3/8".into(),
            "http://reg.local:5000/".into(),
            "127.0.0.1:5001".into(),
        ]);
        assert_eq!(
            got["InsecureRegistryCIDRs"],
            json!(["10.0.0.0/8", "127.0.0.0/8"])
        );
        let idx = got["IndexConfigs"].as_object().unwrap();
        assert_eq!(
            idx.keys()
                .map(String::as_str)
                .collect::<std::collections::BTreeSet<_>>(),
            ["127.0.0.1:5001", "docker.io", "reg.local:5000"].into()
        );
        assert_eq!(
            idx["127.0.0.1:5001"],
            json!({"Name": "127.0.0.1:5001", "Mirrors": [], "Secure": false, "Official": false})
        );
        assert_eq!(idx["docker.io"]["Secure"], json!(true));
        assert_eq!(
            registry_config(&[])["InsecureRegistryCIDRs"],
            json!(["127.0.0.0/8"])
        );
    }

    #[test]
    fn cidrs_are_truncated_to_their_network() {
        assert_eq!(
            cidr_network("192.168.7.9/16").as_deref(),
            Some("192.168.0.0/16")
        );
        assert_eq!(cidr_network("fd00::1/64").as_deref(), Some("fd00::/64"));
        assert_eq!(cidr_network("0.0.0.0/0").as_deref(), Some("0.0.0.0/0"));
        assert_eq!(cidr_network("reg:5000"), None);
        assert_eq!(cidr_network("1.2.3.4/33"), None);
    }
}
