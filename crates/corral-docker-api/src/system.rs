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
        "MemoryLimit": true, "SwapLimit": true, "CpuCfsPeriod": true, "CpuCfsQuota": true,
        "CPUShares": true, "CPUSet": true, "PidsLimit": true, "IPv4Forwarding": true,
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
        "RegistryConfig": {"InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {}, "Mirrors": [],
                            "AllowNondistributableArtifactsCIDRs": null, "AllowNondistributableArtifactsHostnames": null},
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
    let layers: u64 = images.iter().map(|i| i.size).sum();
    Ok(Json(json!({
        "LayersSize": layers,
        "Images": images.iter().map(crate::images::inspect_json).collect::<Vec<_>>(),
        "Containers": containers.iter().map(|c| json!({"Id": c.id.as_str(), "Names": [format!("/{}", c.name)], "Image": c.spec.image, "State": c.state.status.as_str(), "SizeRw": 0, "SizeRootFs": 0})).collect::<Vec<_>>(),
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

pub(crate) async fn no_build() -> ApiError {
    ApiError::from(corral_engine::Error::Unsupported("docker build"))
}
