//! `/containers/*` and `/commit`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::Engine as _;
use bollard::models::{ContainerCreateBody, HostConfig, MountType as WireMountType};
use chrono::{DateTime, Utc};
use corral_core::{
    ContainerRecord, ContainerSpec, DeviceMapping, HostSpec, LogConfig, MountSpec, MountType,
    RestartPolicy,
};
use corral_engine::{AttachOptions, ChangeKind, CommitOptions, LogOptions, WaitCondition};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::filters::Filters;
use crate::hijack;
use crate::version::ApiVersion;
use crate::AppState;

/// Docker's zero time, printed for times that never happened.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn flag(v: &Option<String>) -> bool {
    crate::filters::query_bool(v.as_deref(), false)
}

pub(crate) fn rfc3339(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
        .unwrap_or_else(|| ZERO_TIME.to_owned())
}

/// Docker's `units.HumanDuration`.
pub(crate) fn human_duration(d: chrono::Duration) -> String {
    let s = d.num_seconds();
    if s < 1 {
        return "Less than a second".into();
    }
    if s == 1 {
        return "1 second".into();
    }
    if s < 60 {
        return format!("{s} seconds");
    }
    let m = d.num_minutes();
    if m == 1 {
        return "About a minute".into();
    }
    if m < 60 {
        return format!("{m} minutes");
    }
    // Rounded hours, as go-units does with float division.
    let h = (d.num_minutes() + 30) / 60;
    if h == 1 {
        return "About an hour".into();
    }
    if h < 48 {
        return format!("{h} hours");
    }
    if h < 24 * 7 * 2 {
        return format!("{} days", h / 24);
    }
    if h < 24 * 30 * 2 {
        return format!("{} weeks", h / 24 / 7);
    }
    if h < 24 * 365 * 2 {
        return format!("{} months", h / 24 / 30);
    }
    format!("{} years", h / 24 / 365)
}

/// The `Status` column of `docker ps` (no allocation for the fixed texts).
pub(crate) fn status_text(c: &ContainerRecord, now: DateTime<Utc>) -> Cow<'static, str> {
    use corral_core::ContainerStatus::*;
    let st = &c.state;
    match st.status {
        Created => Cow::Borrowed("Created"),
        Running | Paused => {
            let up = human_duration(now - st.started_at.unwrap_or(now));
            Cow::Owned(if st.status == Paused {
                format!("Up {up} (Paused)")
            } else {
                format!("Up {up}{}", crate::health::status_suffix(c))
            })
        }
        Restarting => Cow::Owned(format!(
            "Restarting ({}) {} ago",
            st.exit_code,
            human_duration(now - st.finished_at.unwrap_or(now))
        )),
        Removing => Cow::Borrowed("Removal In Progress"),
        Exited => Cow::Owned(format!(
            "Exited ({}) {} ago",
            st.exit_code,
            human_duration(now - st.finished_at.unwrap_or(now))
        )),
        Dead => Cow::Borrowed("Dead"),
    }
}

/// The `Command` column of `docker ps`: the path and the arguments joined by spaces,
/// written straight into the output (no joined copy).
pub(crate) struct CommandText<'a>(pub(crate) &'a ContainerRecord);

impl std::fmt::Display for CommandText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.path)?;
        for a in &self.0.args {
            f.write_str(" ")?;
            f.write_str(a)?;
        }
        Ok(())
    }
}

// === list ===

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    all: Option<String>,
    limit: Option<i64>,
    size: Option<String>,
    filters: Option<String>,
}

const LIST_FILTERS: &[&str] = &[
    "id",
    "name",
    "label",
    "label!",
    "status",
    "exited",
    "ancestor",
    "before",
    "since",
    "health",
    "isolation",
    "network",
    "volume",
    "publish",
    "expose",
    "is-task",
];

fn matches_filters(c: &ContainerRecord, f: &Filters, image_ids: &BTreeMap<String, String>) -> bool {
    f.any("id", |v| c.id.as_str().starts_with(v))
        && f.any("name", |v| name_matches(v, c.name.as_str()))
        && f.any("status", |v| v == c.state.status.as_str())
        && f.any("exited", |v| {
            c.state.status == corral_core::ContainerStatus::Exited
                && v.parse::<i64>().is_ok_and(|code| code == c.state.exit_code)
        })
        && f.any("ancestor", |v| {
            c.spec.image == v
                || image_ids.get(v).is_some_and(|id| *id == c.image_id)
                || c.image_id
                    .trim_start_matches("sha256:")
                    .starts_with(v.trim_start_matches("sha256:"))
        })
        && f.labels_match(&c.spec.labels)
        && crate::health::matches(c, f)
        && f.any("is-task", |v| v == "false")
}

/// dockerd's `name` filter (`filters.Args.Match`): the value equals the name, or is a
/// regular expression found in the name with or without its leading `/`. A value that is
/// not a valid expression matches nothing (dockerd ignores it too).
fn name_matches(pattern: &str, name: &str) -> bool {
    let slashed = format!("/{name}");
    if pattern == name || pattern == slashed {
        return true;
    }
    regex::Regex::new(pattern).is_ok_and(|re| re.is_match(&slashed) || re.is_match(name))
}

pub(crate) async fn list(
    State(st): State<AppState>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Response> {
    let f = Filters::parse(q.filters.as_deref())?;
    f.validate(LIST_FILTERS)?;
    crate::health::validate_filter(&f)?;
    for s in f.get("status").unwrap_or(&[]) {
        if ![
            "created",
            "restarting",
            "running",
            "removing",
            "paused",
            "exited",
            "dead",
        ]
        .contains(&s.as_str())
        {
            return Err(ApiError::bad_request(format!(
                "invalid filter 'status={s}'"
            )));
        }
    }
    let mut all = st.engine.containers().await?;
    all.sort_by_key(|c| std::cmp::Reverse(c.created));
    // ancestor=name:tag resolves through the image store.
    let mut image_ids = BTreeMap::new();
    for a in f.get("ancestor").unwrap_or(&[]) {
        if let Ok(img) = st.engine.image(a).await {
            image_ids.insert(a.clone(), img.id);
        }
    }
    let show_all = flag(&q.all)
        || q.limit.is_some_and(|l| l > 0)
        || f.get("status").is_some()
        || f.get("exited").is_some();
    let now = Utc::now();
    let size = flag(&q.size);
    let mountpoint = |n: &str| st.engine.volume_mountpoint(n);
    let mut rows = Vec::new();
    for c in &all {
        if !show_all && !c.state.status.is_alive() {
            continue;
        }
        if !matches_filters(c, &f, &image_ids) {
            continue;
        }
        let mut row =
            crate::list::Row::new(c, st.engine.container_networks(c), &mountpoint, now, size);
        if !row.matches(&f) {
            continue;
        }
        if size {
            row.set_size(st.engine.container_size(c).await?);
        }
        rows.push(row);
        if q.limit.is_some_and(|l| l > 0 && rows.len() as i64 >= l) {
            break;
        }
    }
    let body = crate::list::render(&rows)
        .map_err(|e| ApiError::from(corral_engine::Error::Internal(e.to_string())))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

// === create ===

#[derive(Deserialize)]
pub(crate) struct CreateQuery {
    name: Option<String>,
}

fn opt_vec(v: Option<Vec<String>>) -> Vec<String> {
    v.unwrap_or_default()
}

/// Translates Docker's create body into Corral's spec, validating what dockerd validates.
pub(crate) fn spec_from_body(body: ContainerCreateBody) -> ApiResult<ContainerSpec> {
    let image = body.image.clone().unwrap_or_default();
    if image.is_empty() {
        return Err(ApiError::bad_request(
            "config cannot be empty in order to create a container",
        ));
    }
    let hc = body.host_config.unwrap_or_default();
    let networks = crate::networks::endpoint_specs(body.networking_config);
    Ok(ContainerSpec {
        image,
        entrypoint: body.entrypoint,
        cmd: body.cmd,
        env: opt_vec(body.env),
        working_dir: body.working_dir.filter(|s| !s.is_empty()),
        user: body.user.filter(|s| !s.is_empty()),
        hostname: body.hostname.filter(|s| !s.is_empty()),
        domainname: body.domainname.filter(|s| !s.is_empty()),
        labels: body.labels.unwrap_or_default().into_iter().collect(),
        tty: body.tty.unwrap_or(false),
        open_stdin: body.open_stdin.unwrap_or(false),
        stdin_once: body.stdin_once.unwrap_or(false),
        attach_stdin: body.attach_stdin.unwrap_or(false),
        attach_stdout: body.attach_stdout.unwrap_or(false),
        attach_stderr: body.attach_stderr.unwrap_or(false),
        stop_signal: body.stop_signal.filter(|s| !s.is_empty()),
        stop_timeout: body.stop_timeout,
        exposed_ports: opt_vec(body.exposed_ports),
        volumes: opt_vec(body.volumes),
        healthcheck: crate::health::from_body(body.healthcheck),
        host: host_spec(hc)?,
        networks,
    })
}

fn host_spec(hc: HostConfig) -> ApiResult<HostSpec> {
    let mut mounts = Vec::new();
    for m in hc.mounts.unwrap_or_default() {
        let kind = match m.typ {
            Some(WireMountType::BIND) => MountType::Bind,
            Some(WireMountType::VOLUME) => MountType::Volume,
            Some(WireMountType::TMPFS) => MountType::Tmpfs,
            other => {
                return Err(ApiError::bad_request(format!(
                    "mount type {:?} is not supported",
                    other.map(|t| t.to_string()).unwrap_or_default()
                )))
            }
        };
        let target = m.target.unwrap_or_default();
        if target.is_empty() {
            return Err(ApiError::bad_request(
                "invalid mount config: Target must not be empty",
            ));
        }
        let mut options = BTreeMap::new();
        if let Some(t) = m.tmpfs_options {
            if let Some(sz) = t.size_bytes {
                options.insert("size".to_owned(), sz.to_string());
            }
            if let Some(mode) = t.mode {
                options.insert("mode".to_owned(), format!("{mode:o}"));
            }
        }
        if m.volume_options
            .as_ref()
            .and_then(|v| v.no_copy)
            .unwrap_or(false)
        {
            options.insert("nocopy".to_owned(), "true".to_owned());
        }
        mounts.push(MountSpec {
            kind,
            source: m.source.unwrap_or_default(),
            target,
            read_only: m.read_only.unwrap_or(false),
            options,
        });
    }
    let restart_policy = hc
        .restart_policy
        .map(|r| RestartPolicy {
            name: r.name.map(|n| n.to_string()).unwrap_or_default(),
            maximum_retry_count: r.maximum_retry_count.unwrap_or(0),
        })
        .unwrap_or_default();
    if hc.auto_remove.unwrap_or(false) && !matches!(restart_policy.name.as_str(), "" | "no") {
        return Err(ApiError::bad_request(
            "conflicting options: cannot specify both --restart and --rm",
        ));
    }
    let log_config = hc
        .log_config
        .map(|l| LogConfig {
            driver: l.typ.unwrap_or_default(),
            options: l.config.unwrap_or_default().into_iter().collect(),
        })
        .unwrap_or_default();
    if !matches!(
        log_config.driver.as_str(),
        "" | "json-file" | "none" | "local"
    ) {
        return Err(ApiError::bad_request(format!(
            "logging driver {:?} is not supported",
            log_config.driver
        )));
    }
    let port_bindings = hc
        .port_bindings
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let list = v
                .unwrap_or_default()
                .into_iter()
                .map(|b| {
                    (
                        b.host_ip.unwrap_or_default(),
                        b.host_port.unwrap_or_default(),
                    )
                })
                .collect();
            (k, list)
        })
        .collect();
    Ok(HostSpec {
        binds: opt_vec(hc.binds),
        mounts,
        tmpfs: hc.tmpfs.unwrap_or_default().into_iter().collect(),
        read_only_rootfs: hc.readonly_rootfs.unwrap_or(false),
        memory: hc.memory.unwrap_or(0),
        memory_swap: hc.memory_swap.unwrap_or(0),
        nano_cpus: hc.nano_cpus.unwrap_or(0),
        cpu_shares: hc.cpu_shares.unwrap_or(0),
        cpu_period: hc.cpu_period.unwrap_or(0),
        cpu_quota: hc.cpu_quota.unwrap_or(0),
        cpuset_cpus: hc.cpuset_cpus.unwrap_or_default(),
        cpuset_mems: hc.cpuset_mems.unwrap_or_default(),
        memory_reservation: hc.memory_reservation.unwrap_or(0),
        blkio_weight: hc.blkio_weight.unwrap_or(0),
        pids_limit: hc.pids_limit,
        cap_add: opt_vec(hc.cap_add),
        cap_drop: opt_vec(hc.cap_drop),
        security_opt: opt_vec(hc.security_opt),
        privileged: hc.privileged.unwrap_or(false),
        init: hc.init.unwrap_or(false),
        runtime: hc.runtime.filter(|s| !s.is_empty()),
        network_mode: hc.network_mode.filter(|s| !s.is_empty()),
        extra_hosts: opt_vec(hc.extra_hosts),
        dns: opt_vec(hc.dns),
        dns_search: opt_vec(hc.dns_search),
        dns_options: opt_vec(hc.dns_options),
        restart_policy,
        auto_remove: hc.auto_remove.unwrap_or(false),
        log_config,
        sysctls: hc.sysctls.unwrap_or_default().into_iter().collect(),
        port_bindings,
        publish_all_ports: hc.publish_all_ports.unwrap_or(false),
        pid_mode: hc.pid_mode.filter(|s| !s.is_empty()),
        ipc_mode: hc.ipc_mode.filter(|s| !s.is_empty()),
        shm_size: hc.shm_size.unwrap_or(0),
        group_add: opt_vec(hc.group_add),
        ulimits: hc
            .ulimits
            .unwrap_or_default()
            .into_iter()
            .map(|u| {
                (
                    u.name.unwrap_or_default(),
                    u.soft.unwrap_or(0),
                    u.hard.unwrap_or(0),
                )
            })
            .collect(),
        oom_kill_disable: hc.oom_kill_disable.unwrap_or(false),
        oom_score_adj: hc.oom_score_adj.unwrap_or(0),
        devices: hc
            .devices
            .unwrap_or_default()
            .into_iter()
            .map(|d| DeviceMapping {
                path_on_host: d.path_on_host.unwrap_or_default(),
                path_in_container: d.path_in_container.unwrap_or_default(),
                cgroup_permissions: d.cgroup_permissions.unwrap_or_default(),
            })
            .collect(),
        device_cgroup_rules: opt_vec(hc.device_cgroup_rules),
    })
}

pub(crate) async fn create(
    State(st): State<AppState>,
    Query(q): Query<CreateQuery>,
    raw: axum::body::Bytes,
) -> ApiResult<Response> {
    let body: ContainerCreateBody = serde_json::from_slice(&raw)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
    let mut spec = spec_from_body(body)?;
    crate::networks::apply_legacy_mac(&raw, &mut spec);
    let created = st
        .engine
        .create_container(q.name.as_deref().filter(|n| !n.is_empty()), spec)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"Id": created.id, "Warnings": created.warnings})),
    )
        .into_response())
}

// === inspect ===

fn mounts_json(c: &ContainerRecord, mountpoint: &dyn Fn(&str) -> String) -> Value {
    // Strings and booleans always serialize; `Null` is never produced.
    serde_json::to_value(crate::list::mount_items(c, mountpoint)).unwrap_or(Value::Null)
}

fn host_config_json(h: &HostSpec) -> Value {
    let port_bindings: BTreeMap<_, _> = h
        .port_bindings
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.iter()
                    .map(|(ip, port)| json!({"HostIp": ip, "HostPort": port}))
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    json!({
        "Binds": if h.binds.is_empty() { Value::Null } else { json!(h.binds) },
        "ContainerIDFile": "",
        "LogConfig": {"Type": if h.log_config.driver.is_empty() { "json-file" } else { &h.log_config.driver }, "Config": h.log_config.options},
        "NetworkMode": h.network_mode.clone().unwrap_or_else(|| "bridge".into()),
        "PortBindings": port_bindings,
        "RestartPolicy": {"Name": if h.restart_policy.name.is_empty() { "no" } else { &h.restart_policy.name }, "MaximumRetryCount": h.restart_policy.maximum_retry_count},
        "AutoRemove": h.auto_remove,
        "VolumeDriver": "",
        "VolumesFrom": null,
        "CapAdd": if h.cap_add.is_empty() { Value::Null } else { json!(h.cap_add) },
        "CapDrop": if h.cap_drop.is_empty() { Value::Null } else { json!(h.cap_drop) },
        "CgroupnsMode": "host",
        "Dns": h.dns, "DnsOptions": h.dns_options, "DnsSearch": h.dns_search,
        "ExtraHosts": if h.extra_hosts.is_empty() { Value::Null } else { json!(h.extra_hosts) },
        "GroupAdd": if h.group_add.is_empty() { Value::Null } else { json!(h.group_add) },
        "IpcMode": h.ipc_mode.clone().unwrap_or_else(|| "private".into()),
        "Cgroup": "", "Links": null, "OomScoreAdj": h.oom_score_adj,
        "PidMode": h.pid_mode.clone().unwrap_or_default(),
        "Privileged": h.privileged, "PublishAllPorts": h.publish_all_ports,
        "ReadonlyRootfs": h.read_only_rootfs,
        "SecurityOpt": if h.security_opt.is_empty() { Value::Null } else { json!(h.security_opt) },
        "Tmpfs": h.tmpfs,
        "UTSMode": "", "UsernsMode": "", "ShmSize": if h.shm_size > 0 { h.shm_size } else { 67108864 },
        "Sysctls": h.sysctls,
        "Runtime": h.runtime.clone().unwrap_or_default(),
        "Isolation": "",
        "CpuShares": h.cpu_shares, "Memory": h.memory, "NanoCpus": h.nano_cpus,
        "CgroupParent": "", "BlkioWeight": h.blkio_weight, "CpuPeriod": h.cpu_period,
        "CpuQuota": h.cpu_quota, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0,
        "CpusetCpus": h.cpuset_cpus, "CpusetMems": h.cpuset_mems,
        "Devices": h.devices.iter().map(|d| json!({"PathOnHost": d.path_on_host, "PathInContainer": d.path_in_container, "CgroupPermissions": d.cgroup_permissions})).collect::<Vec<_>>(),
        "DeviceCgroupRules": if h.device_cgroup_rules.is_empty() { Value::Null } else { json!(h.device_cgroup_rules) },
        "DeviceRequests": null,
        "MemoryReservation": h.memory_reservation, "MemorySwap": h.memory_swap, "MemorySwappiness": null,
        "OomKillDisable": h.oom_kill_disable, "PidsLimit": h.pids_limit,
        "Ulimits": h.ulimits.iter().map(|(n, s, hd)| json!({"Name": n, "Soft": s, "Hard": hd})).collect::<Vec<_>>(),
        "Mounts": h.mounts.iter().map(|m| json!({"Type": match m.kind { MountType::Bind => "bind", MountType::Volume => "volume", MountType::Tmpfs => "tmpfs" }, "Source": m.source, "Target": m.target, "ReadOnly": m.read_only})).collect::<Vec<_>>(),
        "Init": h.init,
        "MaskedPaths": [], "ReadonlyPaths": [],
    })
}

fn config_json(c: &ContainerRecord) -> Value {
    let s = &c.spec;
    let set = |v: &Vec<String>| -> Value {
        if v.is_empty() {
            Value::Null
        } else {
            Value::Object(v.iter().map(|k| (k.clone(), json!({}))).collect())
        }
    };
    let mut v = json!({
        "Hostname": s.hostname.clone().unwrap_or_else(|| c.id.short().to_owned()),
        "Domainname": s.domainname.clone().unwrap_or_default(),
        "User": s.user.clone().unwrap_or_default(),
        "AttachStdin": s.attach_stdin, "AttachStdout": s.attach_stdout, "AttachStderr": s.attach_stderr,
        "ExposedPorts": set(&s.exposed_ports),
        "Tty": s.tty, "OpenStdin": s.open_stdin, "StdinOnce": s.stdin_once,
        "Env": c.env,
        "Cmd": s.cmd,
        "Image": s.image,
        "Volumes": set(&s.volumes),
        "WorkingDir": s.working_dir.clone().unwrap_or_default(),
        "Entrypoint": s.entrypoint,
        "OnBuild": null,
        "Labels": s.labels,
        "StopSignal": s.stop_signal,
        "StopTimeout": s.stop_timeout,
    });
    if let Some(h) = &s.healthcheck {
        v["Healthcheck"] = crate::health::config_json(h);
    }
    v
}

/// The full `docker inspect` document of a container.
pub(crate) fn inspect_json(
    c: &ContainerRecord,
    paths: &BTreeMap<&str, String>,
    mountpoint: &dyn Fn(&str) -> String,
) -> Value {
    use corral_core::ContainerStatus::*;
    let st = &c.state;
    let p = |k: &str| paths.get(k).cloned().unwrap_or_default();
    let mut v = json!({
        "Id": c.id.as_str(),
        "Created": rfc3339(Some(c.created)),
        "Path": c.path,
        "Args": c.args,
        "State": {
            "Status": st.status.as_str(),
            "Running": matches!(st.status, Running | Paused | Restarting),
            "Paused": st.status == Paused,
            "Restarting": st.status == Restarting,
            "OOMKilled": st.oom_killed,
            "Dead": st.status == Dead,
            "Pid": st.pid,
            "ExitCode": st.exit_code,
            "Error": st.error,
            "StartedAt": rfc3339(st.started_at),
            "FinishedAt": rfc3339(st.finished_at),
        },
        "Image": c.image_id,
        "ResolvConfPath": p("resolv"),
        "HostnamePath": p("hostname"),
        "HostsPath": p("hosts"),
        "LogPath": p("log"),
        "Name": format!("/{}", c.name),
        "RestartCount": st.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": null,
        "HostConfig": host_config_json(&c.spec.host),
        "GraphDriver": {"Name": "overlay2", "Data": {"MergedDir": p("rootfs"), "UpperDir": p("upper"), "WorkDir": p("work")}},
        "Mounts": mounts_json(c, mountpoint),
        "Config": config_json(c),
        "NetworkSettings": {
            "Bridge": "", "SandboxID": "", "SandboxKey": "", "Ports": {},
            "HairpinMode": false, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": null, "SecondaryIPv6Addresses": null,
            "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "",
            "Networks": {},
        },
    });
    if let Some(h) = &st.health {
        v["State"]["Health"] = crate::health::state_json(h);
    }
    v
}

/// `GET /containers/{id}/json` query: `size` adds `SizeRw` and `SizeRootFs`.
#[derive(Deserialize)]
pub(crate) struct InspectQuery {
    size: Option<String>,
}

pub(crate) async fn inspect(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<InspectQuery>,
) -> ApiResult<Json<Value>> {
    let c = st.engine.container(&id).await?;
    let paths = st.engine.container_paths(&c);
    let mut doc = inspect_json(&c, &paths, &|n| st.engine.volume_mountpoint(n));
    let nets = st.engine.container_networks(&c);
    crate::networks::fill_settings(&mut doc, &nets, c.name.as_str());
    if flag(&q.size) {
        let size = st.engine.container_size(&c).await?;
        doc["SizeRw"] = json!(size.rw);
        doc["SizeRootFs"] = json!(size.root_fs);
    }
    Ok(Json(doc))
}

// === lifecycle ===

#[derive(Deserialize)]
pub(crate) struct StopQuery {
    t: Option<i64>,
    signal: Option<String>,
}

pub(crate) async fn start(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    st.engine.start_container(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn stop(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<StopQuery>,
) -> ApiResult<StatusCode> {
    st.engine
        .stop_container(&id, q.t, q.signal.as_deref().filter(|s| !s.is_empty()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub(crate) struct KillQuery {
    signal: Option<String>,
}

pub(crate) async fn kill(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<KillQuery>,
) -> ApiResult<StatusCode> {
    st.engine
        .kill_container(&id, q.signal.as_deref().filter(|s| !s.is_empty()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn restart(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<StopQuery>,
) -> ApiResult<StatusCode> {
    st.engine.restart_container(&id, q.t).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn pause(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    st.engine.pause_container(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn unpause(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    st.engine.unpause_container(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub(crate) struct RenameQuery {
    name: Option<String>,
}

pub(crate) async fn rename(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<RenameQuery>,
) -> ApiResult<StatusCode> {
    let name = q.name.unwrap_or_default();
    if name.is_empty() {
        return Err(ApiError::bad_request(
            "Neither old nor new names may be empty",
        ));
    }
    st.engine.rename_container(&id, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /containers/{id}/update` (`docker update`): memory, swap, CPUs, CPU shares, pids
/// and the restart policy. Other limits are refused by name rather than ignored.
pub(crate) async fn update(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let b: bollard::models::ContainerUpdateBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
    let nonzero = |v: Option<i64>| v.is_some_and(|v| v != 0);
    let unsupported = [
        ("CpuRealtimePeriod", nonzero(b.cpu_realtime_period)),
        ("CpuRealtimeRuntime", nonzero(b.cpu_realtime_runtime)),
        ("KernelMemory", body_has_nonzero(&body, "KernelMemory")),
    ];
    if let Some((field, _)) = unsupported.iter().find(|(_, set)| *set) {
        return Err(ApiError::bad_request(format!(
            "updating {field} is not supported"
        )));
    }
    let update = corral_engine::ContainerUpdate {
        memory: b.memory.unwrap_or(0),
        memory_swap: b.memory_swap.unwrap_or(0),
        nano_cpus: b.nano_cpus.unwrap_or(0),
        cpu_shares: b.cpu_shares.unwrap_or(0),
        cpu_period: b.cpu_period.unwrap_or(0),
        cpu_quota: b.cpu_quota.unwrap_or(0),
        cpuset_cpus: b.cpuset_cpus.unwrap_or_default(),
        cpuset_mems: b.cpuset_mems.unwrap_or_default(),
        memory_reservation: b.memory_reservation.unwrap_or(0),
        blkio_weight: b.blkio_weight.unwrap_or(0),
        pids_limit: b.pids_limit,
        restart_policy: b.restart_policy.map(|r| RestartPolicy {
            name: r.name.map(|n| n.to_string()).unwrap_or_default(),
            maximum_retry_count: r.maximum_retry_count.unwrap_or(0),
        }),
    };
    let warnings = st.engine.update_container(&id, update).await?;
    Ok(Json(json!({ "Warnings": warnings })))
}

/// True when the raw JSON body sets `key` to a non-zero number (fields bollard's model
/// does not carry).
fn body_has_nonzero(body: &[u8], key: &str) -> bool {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get(key).and_then(Value::as_i64))
        .is_some_and(|n| n != 0)
}

#[derive(Deserialize)]
pub(crate) struct WaitQuery {
    condition: Option<String>,
}

/// `POST /containers/{id}/wait`: headers go out at once (clients block on them before
/// starting the container); the body follows when the condition fires.
pub(crate) async fn wait(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<WaitQuery>,
) -> ApiResult<Response> {
    let condition = match q.condition.as_deref() {
        None | Some("") | Some("not-running") => WaitCondition::NotRunning,
        Some("next-exit") => WaitCondition::NextExit,
        Some("removed") => WaitCondition::Removed,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "invalid condition: {other:?}"
            )))
        }
    };
    // The wait is registered before the headers go out (an unknown container is a plain
    // 404); a client that hangs up drops the body and with it the wait.
    let waiting = st.engine.wait_container(&id, condition).await?;
    let stream = futures::stream::once(async move {
        let s = waiting.await;
        let v = json!({"StatusCode": s.code, "Error": null});
        Ok::<_, std::io::Error>(format!("{v}\n"))
    });
    let mut resp = Body::from_stream(stream).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

#[derive(Deserialize)]
pub(crate) struct RemoveQuery {
    v: Option<String>,
    force: Option<String>,
    link: Option<String>,
}

pub(crate) async fn remove(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<RemoveQuery>,
) -> ApiResult<StatusCode> {
    if flag(&q.link) {
        return Err(ApiError::bad_request("links are not supported"));
    }
    st.engine
        .remove_container(&id, flag(&q.force), flag(&q.v))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub(crate) struct PruneQuery {
    filters: Option<String>,
}

/// `POST /containers/prune?filters=`: stopped containers matching `label`, `label!` and
/// `until` (created before that time: a timestamp, RFC 3339, or a duration before now such
/// as `24h`) are removed.
pub(crate) async fn prune(
    State(st): State<AppState>,
    Query(q): Query<PruneQuery>,
) -> ApiResult<Json<Value>> {
    let f = Filters::parse(q.filters.as_deref())?;
    f.validate(&["label", "label!", "until"])?;
    let until = match f.get("until") {
        Some([t]) => crate::events::parse_event_time(t, Utc::now())?,
        Some([]) | None => None,
        Some(_) => {
            return Err(ApiError::bad_request(
                "more than one until filter specified",
            ))
        }
    };
    let mut deleted = Vec::new();
    for c in st.engine.containers().await? {
        if c.state.status.is_alive()
            || !f.labels_match(&c.spec.labels)
            || until.is_some_and(|u| c.created >= u)
        {
            continue;
        }
        // A container that started or vanished meanwhile is skipped, as dockerd does.
        if st
            .engine
            .remove_container(c.id.as_str(), false, false)
            .await
            .is_ok()
        {
            deleted.push(c.id.to_string());
        }
    }
    Ok(Json(
        json!({"ContainersDeleted": deleted, "SpaceReclaimed": 0}),
    ))
}

// === streams ===

#[derive(Deserialize)]
pub(crate) struct AttachQuery {
    stream: Option<String>,
    stdin: Option<String>,
    stdout: Option<String>,
    stderr: Option<String>,
    logs: Option<String>,
    #[serde(rename = "detachKeys")]
    detach_keys: Option<String>,
}

pub(crate) async fn attach(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<AttachQuery>,
    Extension(version): Extension<ApiVersion>,
    req: Request,
) -> ApiResult<Response> {
    let opts = AttachOptions {
        stdin: flag(&q.stdin),
        stdout: flag(&q.stdout),
        stderr: flag(&q.stderr),
        logs: flag(&q.logs),
        stream: flag(&q.stream),
    };
    let keys = hijack::parse_detach_keys(q.detach_keys.as_deref().unwrap_or(""))?;
    let io = st.engine.attach(&id, opts).await?;
    Ok(hijack::respond(req, io, version, Some(keys)))
}

/// `?h=&w=` of the resize endpoints (containers and exec sessions).
#[derive(Deserialize)]
pub(crate) struct ResizeQuery {
    pub(crate) h: Option<u16>,
    pub(crate) w: Option<u16>,
}

pub(crate) async fn resize(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ResizeQuery>,
) -> ApiResult<StatusCode> {
    st.engine
        .resize_container(&id, q.h.unwrap_or(0), q.w.unwrap_or(0))
        .await?;
    Ok(StatusCode::OK)
}

#[derive(Deserialize)]
pub(crate) struct LogsQuery {
    follow: Option<String>,
    stdout: Option<String>,
    stderr: Option<String>,
    since: Option<String>,
    until: Option<String>,
    timestamps: Option<String>,
    tail: Option<String>,
}

/// Parses Docker's time arguments: unix seconds with optional fraction, or RFC 3339.
pub(crate) fn parse_time(s: &str) -> ApiResult<Option<DateTime<Utc>>> {
    if s.is_empty() || s == "0" {
        return Ok(None);
    }
    // Unix seconds with an optional fraction: `1700000000` or `1700000000.5`.
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if let Ok(secs) = whole.parse::<i64>() {
        if frac.len() <= 9 && frac.bytes().all(|b| b.is_ascii_digit()) {
            let nanos: u32 = format!("{frac:0<9}").parse().unwrap_or(0);
            return Ok(DateTime::from_timestamp(secs, nanos));
        }
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|_| ApiError::bad_request(format!("invalid time value {s:?}")))
}

pub(crate) async fn logs(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LogsQuery>,
) -> ApiResult<Response> {
    let (stdout, stderr) = (flag(&q.stdout), flag(&q.stderr));
    if !stdout && !stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let tail = match q.tail.as_deref() {
        None | Some("") | Some("all") => None,
        Some(t) => Some(
            t.parse::<usize>()
                .map_err(|_| ApiError::bad_request(format!("invalid tail value {t:?}")))?,
        ),
    };
    let c = st.engine.container(&id).await?;
    let opts = LogOptions {
        stdout,
        stderr,
        follow: flag(&q.follow),
        since: parse_time(q.since.as_deref().unwrap_or(""))?,
        until: parse_time(q.until.as_deref().unwrap_or(""))?,
        tail,
        timestamps: flag(&q.timestamps),
    };
    let tty = c.spec.tty;
    let stream = st.engine.logs(&id, opts).await?;
    let body = stream.map(move |chunk| Ok::<_, std::io::Error>(hijack::frame(&chunk, tty)));
    let mut resp = Body::from_stream(body).into_response();
    let ct = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    Ok(resp)
}

#[derive(Deserialize)]
pub(crate) struct TopQuery {
    ps_args: Option<String>,
}

pub(crate) async fn top(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<TopQuery>,
) -> ApiResult<Json<Value>> {
    let p = st
        .engine
        .top(&id, q.ps_args.as_deref().filter(|s| !s.is_empty()))
        .await?;
    Ok(Json(json!({"Titles": p.titles, "Processes": p.processes})))
}

pub(crate) async fn changes(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let ch = st.engine.changes(&id).await?;
    let out: Vec<Value> = ch
        .into_iter()
        .map(|(path, k)| {
            let kind = match k {
                ChangeKind::Modified => 0,
                ChangeKind::Added => 1,
                ChangeKind::Deleted => 2,
            };
            json!({"Path": path, "Kind": kind})
        })
        .collect();
    Ok(Json(Value::Array(out)))
}

fn tar_response(r: corral_engine::BoxRead) -> Response {
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(r));
    let mut resp = body.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    resp
}

pub(crate) async fn export(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    Ok(tar_response(st.engine.export_container(&id).await?))
}

#[derive(Deserialize)]
pub(crate) struct StatsQuery {
    stream: Option<String>,
    #[serde(rename = "one-shot")]
    one_shot: Option<String>,
}

pub(crate) async fn stats(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<StatsQuery>,
) -> ApiResult<Response> {
    let streaming = crate::filters::query_bool(q.stream.as_deref(), true);
    let mut first = st.engine.stats(&id).await?;
    // dockerd's first sample carries an empty previous sample.
    first["precpu_stats"] = json!({
        "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    });
    if flag(&q.one_shot) {
        return Ok(Json(first).into_response());
    }
    if !streaming {
        // dockerd answers `stream=false` with a second sample a second later, so clients
        // can compute CPU usage from `cpu_stats` minus `precpu_stats`.
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let mut second = st.engine.stats(&id).await?;
        second["precpu_stats"] = first["cpu_stats"].clone();
        return Ok(Json(second).into_response());
    }
    let engine = st.engine.clone();
    let s = futures::stream::unfold(
        (Some(first), Value::Null, engine, id),
        |(next, prev, engine, id)| async move {
            let mut cur = match next {
                Some(v) => v,
                None => {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    engine.stats(&id).await.ok()?
                }
            };
            if !prev.is_null() {
                cur["precpu_stats"] = prev["cpu_stats"].clone();
            }
            let line = format!("{cur}\n");
            Some((Ok::<_, std::io::Error>(line), (None, cur, engine, id)))
        },
    );
    Ok(Body::from_stream(s).into_response())
}

#[derive(Deserialize)]
pub(crate) struct ArchiveQuery {
    path: Option<String>,
}

fn stat_header(stat: &Value) -> HeaderValue {
    let enc = base64::engine::general_purpose::STANDARD.encode(stat.to_string());
    HeaderValue::from_str(&enc).unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub(crate) async fn archive_head(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ArchiveQuery>,
) -> ApiResult<Response> {
    let path = q.path.unwrap_or_default();
    let stat = st.engine.archive_stat(&id, &path).await?;
    let mut resp = StatusCode::OK.into_response();
    resp.headers_mut()
        .insert("X-Docker-Container-Path-Stat", stat_header(&stat));
    Ok(resp)
}

pub(crate) async fn archive_get(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ArchiveQuery>,
) -> ApiResult<Response> {
    let path = q.path.unwrap_or_default();
    let (stat, tar) = st.engine.archive_get(&id, &path).await?;
    let mut resp = tar_response(tar);
    resp.headers_mut()
        .insert("X-Docker-Container-Path-Stat", stat_header(&stat));
    Ok(resp)
}

pub(crate) async fn archive_put(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ArchiveQuery>,
    req: Request,
) -> ApiResult<StatusCode> {
    let path = q.path.unwrap_or_default();
    let body = req
        .into_body()
        .into_data_stream()
        .map(|r| r.map_err(std::io::Error::other));
    let reader = tokio_util::io::StreamReader::new(body);
    st.engine.archive_put(&id, &path, Box::pin(reader)).await?;
    Ok(StatusCode::OK)
}

#[derive(Deserialize)]
pub(crate) struct CommitQuery {
    container: Option<String>,
    repo: Option<String>,
    tag: Option<String>,
    comment: Option<String>,
    author: Option<String>,
    pause: Option<String>,
}

pub(crate) async fn commit(
    State(st): State<AppState>,
    Query(q): Query<CommitQuery>,
    uri: axum::http::Uri,
    _headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let container = q.container.unwrap_or_default();
    let config: Option<Value> = if body.is_empty() {
        None
    } else {
        Some(
            serde_json::from_slice(&body)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?,
        )
    };
    // The engine applies `--change` instructions to the given config, or to the
    // container's, then merges the container's config underneath (dockerd's
    // `BuildFromConfig` and `merge`).
    let changes = crate::filters::changes_in(&uri);
    let id = st
        .engine
        .commit_container(
            &container,
            CommitOptions {
                repo: q.repo.unwrap_or_default(),
                tag: q.tag.unwrap_or_default(),
                comment: q.comment.unwrap_or_default(),
                author: q.author.unwrap_or_default(),
                pause: crate::filters::query_bool(q.pause.as_deref(), true),
                config,
                changes,
                ..CommitOptions::default()
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(json!({"Id": id}))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_filter_is_a_regular_expression_like_dockerd() {
        assert!(name_matches("web", "my-web-1"));
        assert!(name_matches("^web", "web-1"));
        assert!(!name_matches("^web", "my-web-1"));
        assert!(name_matches("^/web-1$", "web-1"));
        assert!(name_matches("/web-1", "web-1"));
        assert!(name_matches("web-[0-9]+$", "web-12"));
        assert!(!name_matches("web-[0-9]+$", "web-12x"));
        // `.` is any character, not a literal dot.
        assert!(name_matches("a.c", "abc"));
        // An invalid expression matches only the exact name.
        assert!(!name_matches("web(", "web(x"));
    }

    #[test]
    fn human_durations_match_docker_units() {
        let d = chrono::Duration::seconds;
        assert_eq!(human_duration(d(0)), "Less than a second");
        assert_eq!(human_duration(d(1)), "1 second");
        assert_eq!(human_duration(d(59)), "59 seconds");
        assert_eq!(human_duration(d(60)), "About a minute");
        assert_eq!(human_duration(d(300)), "5 minutes");
        assert_eq!(human_duration(d(3600)), "About an hour");
        assert_eq!(human_duration(d(3 * 3600)), "3 hours");
        assert_eq!(human_duration(d(3 * 86400)), "3 days");
    }

    #[test]
    fn parses_docker_time_arguments() {
        assert_eq!(parse_time("").unwrap(), None);
        let t = parse_time("1700000000.5").unwrap().unwrap();
        assert_eq!(t.timestamp(), 1_700_000_000);
        assert_eq!(t.timestamp_subsec_millis(), 500);
        assert!(parse_time("2024-01-02T03:04:05Z").unwrap().is_some());
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn create_body_maps_to_spec_and_rejects_rm_with_restart() {
        let body: ContainerCreateBody = serde_json::from_value(json!({
            "Image": "busybox", "Cmd": ["echo", "hi"], "Env": ["A=1"], "Tty": true,
            "HostConfig": {"Memory": 1048576, "CapAdd": ["NET_ADMIN"], "AutoRemove": true,
                            "Mounts": [{"Type": "tmpfs", "Target": "/t"}]}
        }))
        .unwrap();
        let spec = spec_from_body(body).unwrap();
        assert_eq!(
            spec.cmd.as_deref(),
            Some(&["echo".to_string(), "hi".to_string()][..])
        );
        assert!(spec.tty && spec.host.auto_remove);
        assert_eq!(spec.host.memory, 1048576);
        assert_eq!(spec.host.mounts[0].kind, MountType::Tmpfs);

        let bad: ContainerCreateBody = serde_json::from_value(json!({
            "Image": "busybox", "HostConfig": {"AutoRemove": true, "RestartPolicy": {"Name": "always"}}
        }))
        .unwrap();
        let err = spec_from_body(bad).unwrap_err();
        assert!(err.message().contains("--restart and --rm"));
        let empty: ContainerCreateBody = serde_json::from_value(json!({})).unwrap();
        assert_eq!(
            spec_from_body(empty).unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
    }
}
