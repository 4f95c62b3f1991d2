//! Pure translation of the compose model into Docker Engine API bodies: container
//! create requests (with compose's labels and names), network and volume creates.
//! No I/O here, so every mapping is unit-tested.

use std::collections::BTreeMap;

use corral_compose::{labels, parse_bytes, parse_duration, Project, Service};
use serde_json::{json, Map, Value};

/// What kind of container a create body is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Replica `n` of a service (`up`).
    Replica(u32),
    /// A one-off container (`run`) with replica number `n`.
    OneOff(u32),
}

/// Overrides `run` applies on top of the service.
#[derive(Debug, Default, Clone)]
pub(crate) struct RunOverrides {
    pub(crate) command: Option<Vec<String>>,
    pub(crate) entrypoint: Option<Vec<String>>,
    pub(crate) env: Vec<String>,
    pub(crate) tty: bool,
    pub(crate) interactive: bool,
    pub(crate) user: Option<String>,
    pub(crate) workdir: Option<String>,
    pub(crate) service_ports: bool,
}

/// The compose labels of a project's resources.
pub(crate) fn project_labels(p: &Project) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::PROJECT.to_string(), p.name.clone()),
        (
            labels::VERSION.to_string(),
            labels::COMPOSE_VERSION.to_string(),
        ),
    ])
}

/// The full engine name of network `key`.
pub(crate) fn network_name(p: &Project, key: &str) -> String {
    p.networks
        .get(key)
        .and_then(|n| n.name.clone())
        .unwrap_or_else(|| format!("{}_{key}", p.name))
}

/// The full engine name of volume `key`.
pub(crate) fn volume_name(p: &Project, key: &str) -> String {
    p.volumes
        .get(key)
        .and_then(|v| v.name.clone())
        .unwrap_or_else(|| format!("{}_{key}", p.name))
}

/// `POST /networks/create` body for network `key`.
pub(crate) fn network_create(p: &Project, key: &str) -> Value {
    let n = p.networks.get(key).cloned().unwrap_or_default();
    let mut lbl = project_labels(p);
    lbl.insert(labels::NETWORK.to_string(), key.to_string());
    lbl.extend(n.labels.clone());
    let mut body = json!({
        "Name": network_name(p, key),
        "Driver": n.driver.clone().unwrap_or_else(|| "bridge".to_string()),
        "Internal": n.internal,
        "Attachable": n.attachable,
        "Labels": lbl,
        "Options": n.driver_opts,
        "CheckDuplicate": true,
    });
    if let Some(v6) = n.enable_ipv6 {
        body["EnableIPv6"] = json!(v6);
    }
    if let Some(ipam) = &n.ipam {
        let config: Vec<Value> = ipam
            .config
            .iter()
            .map(|c| {
                let mut m = Map::new();
                if let Some(s) = &c.subnet {
                    m.insert("Subnet".into(), json!(s));
                }
                if let Some(s) = &c.ip_range {
                    m.insert("IPRange".into(), json!(s));
                }
                if let Some(s) = &c.gateway {
                    m.insert("Gateway".into(), json!(s));
                }
                if !c.aux_addresses.is_empty() {
                    m.insert("AuxiliaryAddresses".into(), json!(c.aux_addresses));
                }
                Value::Object(m)
            })
            .collect();
        body["IPAM"] = json!({
            "Driver": ipam.driver.clone().unwrap_or_else(|| "default".to_string()),
            "Config": config,
            "Options": ipam.options,
        });
    }
    body
}

/// `POST /volumes/create` body for volume `key`.
pub(crate) fn volume_create(p: &Project, key: &str) -> Value {
    let v = p.volumes.get(key).cloned().unwrap_or_default();
    let mut lbl = project_labels(p);
    lbl.insert(labels::VOLUME.to_string(), key.to_string());
    lbl.extend(v.labels.clone());
    json!({
        "Name": volume_name(p, key),
        "Driver": v.driver.clone().unwrap_or_else(|| "local".to_string()),
        "DriverOpts": v.driver_opts,
        "Labels": lbl,
    })
}

/// The name of a container: `container_name`, or `<project>-<service>-<n>`.
pub(crate) fn container_name(p: &Project, service: &str, svc: &Service, n: u32) -> String {
    match &svc.container_name {
        Some(name) => name.clone(),
        None => labels::container_name(&p.name, service, n),
    }
}

/// The labels of a container of `service`.
pub(crate) fn container_labels(
    p: &Project,
    service: &str,
    svc: &Service,
    kind: Kind,
) -> BTreeMap<String, String> {
    let mut l: BTreeMap<String, String> = svc.labels.clone();
    l.extend(project_labels(p));
    let (n, oneoff) = match kind {
        Kind::Replica(n) => (n, "False"),
        Kind::OneOff(n) => (n, "True"),
    };
    l.insert(labels::SERVICE.into(), service.to_string());
    l.insert(labels::CONTAINER_NUMBER.into(), n.to_string());
    l.insert(labels::ONEOFF.into(), oneoff.into());
    l.insert(labels::CONFIG_HASH.into(), corral_compose::config_hash(svc));
    l.insert(labels::WORKING_DIR.into(), p.working_dir.clone());
    l.insert(labels::CONFIG_FILES.into(), p.config_files.join(","));
    if !svc.depends_on.is_empty() {
        let deps: Vec<String> = svc
            .depends_on
            .iter()
            .map(|(d, dep)| {
                let cond = match dep.condition {
                    corral_compose::Condition::ServiceStarted => "service_started",
                    corral_compose::Condition::ServiceHealthy => "service_healthy",
                    corral_compose::Condition::ServiceCompletedSuccessfully => {
                        "service_completed_successfully"
                    }
                };
                format!("{d}:{cond}:{}", dep.restart)
            })
            .collect();
        l.insert(labels::DEPENDS_ON.into(), deps.join(","));
    }
    l
}

fn nanos(d: &Option<String>) -> Option<u64> {
    d.as_deref().and_then(|s| parse_duration(s).ok())
}

/// The networks a container joins, in attachment order, as (engine name, aliases,
/// ipv4). The service name is always an alias, as compose does.
pub(crate) fn endpoints(
    p: &Project,
    service: &str,
    svc: &Service,
) -> Vec<(String, Vec<String>, Option<String>)> {
    svc.network_order()
        .into_iter()
        .map(|(key, opts)| {
            let mut aliases = vec![service.to_string()];
            if let Some(o) = opts {
                aliases.extend(o.aliases.iter().cloned());
            }
            (
                network_name(p, key),
                aliases,
                opts.and_then(|o| o.ipv4_address.clone()),
            )
        })
        .collect()
}

fn endpoint_json(aliases: &[String], ipv4: &Option<String>) -> Value {
    let mut e = json!({ "Aliases": aliases });
    if let Some(ip) = ipv4 {
        e["IPAMConfig"] = json!({ "IPv4Address": ip });
    }
    e
}

/// `POST /containers/create` body for a container of `service`. The first network
/// (by priority) is joined at create time with its aliases; `endpoints()[1..]` are
/// connected afterwards.
pub(crate) fn container_create(
    p: &Project,
    service: &str,
    svc: &Service,
    kind: Kind,
    run: Option<&RunOverrides>,
) -> anyhow::Result<Value> {
    let mut env: Vec<String> = svc
        .environment
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
        .collect();
    let mut body = json!({
        "Image": svc.image.clone().unwrap_or_default(),
        "Labels": container_labels(p, service, svc, kind),
    });
    let set = |body: &mut Value, k: &str, v: Value| {
        body[k] = v;
    };
    let command = run
        .and_then(|r| r.command.clone())
        .or_else(|| svc.command.clone());
    if let Some(c) = command {
        set(&mut body, "Cmd", json!(c));
    }
    let entrypoint = run
        .and_then(|r| r.entrypoint.clone())
        .or_else(|| svc.entrypoint.clone());
    if let Some(e) = entrypoint {
        set(&mut body, "Entrypoint", json!(e));
    }
    if let Some(r) = run {
        env.extend(r.env.iter().cloned());
    }
    if !env.is_empty() {
        set(&mut body, "Env", json!(env));
    }
    let user = run
        .and_then(|r| r.user.clone())
        .or_else(|| svc.user.clone());
    if let Some(u) = user {
        set(&mut body, "User", json!(u));
    }
    let wd = run
        .and_then(|r| r.workdir.clone())
        .or_else(|| svc.working_dir.clone());
    if let Some(w) = wd {
        set(&mut body, "WorkingDir", json!(w));
    }
    if let Some(h) = &svc.hostname {
        set(&mut body, "Hostname", json!(h));
    }
    if let Some(d) = &svc.domainname {
        set(&mut body, "Domainname", json!(d));
    }
    let (tty, stdin) = match run {
        Some(r) => (r.tty, r.interactive),
        None => (svc.tty.unwrap_or(false), svc.stdin_open.unwrap_or(false)),
    };
    set(&mut body, "Tty", json!(tty));
    set(&mut body, "OpenStdin", json!(stdin));
    set(&mut body, "AttachStdin", json!(stdin));
    set(&mut body, "StdinOnce", json!(stdin && run.is_some()));
    if let Some(s) = &svc.stop_signal {
        set(&mut body, "StopSignal", json!(s));
    }
    if let Some(ns) = nanos(&svc.stop_grace_period) {
        set(&mut body, "StopTimeout", json!(ns / 1_000_000_000));
    }
    if let Some(h) = &svc.healthcheck {
        let mut hc = Map::new();
        if h.disable {
            hc.insert("Test".into(), json!(["NONE"]));
        } else if let Some(t) = &h.test {
            hc.insert("Test".into(), json!(t));
        }
        for (k, v) in [
            ("Interval", &h.interval),
            ("Timeout", &h.timeout),
            ("StartPeriod", &h.start_period),
            ("StartInterval", &h.start_interval),
        ] {
            if let Some(ns) = nanos(v) {
                hc.insert(k.into(), json!(ns));
            }
        }
        if let Some(r) = h.retries {
            hc.insert("Retries".into(), json!(r));
        }
        set(&mut body, "Healthcheck", Value::Object(hc));
    }

    let publish = run.is_none_or(|r| r.service_ports);
    let mut exposed = Map::new();
    let mut bindings: Map<String, Value> = Map::new();
    for e in &svc.expose {
        let (port, proto) = e.split_once('/').unwrap_or((e, "tcp"));
        exposed.insert(format!("{port}/{proto}"), json!({}));
    }
    for port in &svc.ports {
        let key = format!("{}/{}", port.target, port.protocol);
        exposed.insert(key.clone(), json!({}));
        if !publish {
            continue;
        }
        let b = json!({
            "HostIp": port.host_ip.clone().unwrap_or_default(),
            "HostPort": port.published.clone().unwrap_or_default(),
        });
        match bindings.get_mut(&key) {
            Some(Value::Array(a)) => a.push(b),
            _ => {
                bindings.insert(key, json!([b]));
            }
        }
    }
    if !exposed.is_empty() {
        set(&mut body, "ExposedPorts", Value::Object(exposed));
    }

    let mut host = host_config(p, svc, kind)?;
    if !bindings.is_empty() {
        host["PortBindings"] = Value::Object(bindings);
    }
    // Anonymous volumes are declared in the config, as `docker run -v /path` does.
    let anon: Map<String, Value> = svc
        .volumes
        .iter()
        .filter(|v| v.kind == "volume" && v.source.is_none())
        .map(|v| (v.target.clone(), json!({})))
        .collect();
    if !anon.is_empty() {
        set(&mut body, "Volumes", Value::Object(anon));
    }

    let eps = endpoints(p, service, svc);
    if let Some(mode) = &svc.network_mode {
        // `service:NAME` shares the namespace of that service's first container.
        let mode = match mode.strip_prefix("service:") {
            Some(other) => match p.services.get(other) {
                Some(o) => format!("container:{}", container_name(p, other, o, 1)),
                None => anyhow::bail!("network_mode of {service}: no such service {other:?}"),
            },
            None => mode.clone(),
        };
        host["NetworkMode"] = json!(mode);
    } else if let Some((first, aliases, ip)) = eps.first() {
        host["NetworkMode"] = json!(first);
        let mut ec = Map::new();
        ec.insert(first.clone(), endpoint_json(aliases, ip));
        body["NetworkingConfig"] = json!({ "EndpointsConfig": ec });
    }
    body["HostConfig"] = host;
    Ok(body)
}

/// Makes a recreated container reuse the anonymous volumes of the container it
/// replaces (compose keeps e.g. a database's image `VOLUME` data across recreates):
/// each anonymous volume of `old` (an inspect document) mounted at a path the new
/// container would get a fresh anonymous volume for, or an image volume path, is
/// bound by name instead.
pub(crate) fn keep_anonymous_volumes(body: &mut Value, old: &Value) {
    let explicit: Vec<String> = body["HostConfig"]["Binds"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b.as_str())
        .filter_map(|b| b.split(':').nth(1).map(str::to_string))
        .collect();
    let mut keep = Vec::new();
    for m in old["Mounts"].as_array().into_iter().flatten() {
        let (Some(name), Some(dest)) = (m["Name"].as_str(), m["Destination"].as_str()) else {
            continue;
        };
        let anonymous = m["Type"] == "volume"
            && name.len() == 64
            && name.chars().all(|c| c.is_ascii_hexdigit());
        if anonymous && !explicit.iter().any(|e| e == dest) {
            keep.push(format!("{name}:{dest}"));
            if let Some(v) = body["Volumes"].as_object_mut() {
                v.remove(dest);
            }
        }
    }
    if keep.is_empty() {
        return;
    }
    match body["HostConfig"]["Binds"].as_array_mut() {
        Some(b) => b.extend(keep.into_iter().map(Value::String)),
        None => body["HostConfig"]["Binds"] = json!(keep),
    }
}

/// `POST /networks/{id}/connect` body for an extra network.
pub(crate) fn connect_body(container: &str, aliases: &[String], ipv4: &Option<String>) -> Value {
    json!({ "Container": container, "EndpointConfig": endpoint_json(aliases, ipv4) })
}

fn host_config(p: &Project, svc: &Service, kind: Kind) -> anyhow::Result<Value> {
    let mut h = Map::new();
    let mut binds: Vec<String> = Vec::new();
    let mut tmpfs: Map<String, Value> = Map::new();
    for v in &svc.volumes {
        let ro = if v.read_only { ":ro" } else { "" };
        match (v.kind.as_str(), &v.source) {
            ("bind", Some(src)) => {
                let mut opts: Vec<&str> = Vec::new();
                if v.read_only {
                    opts.push("ro");
                }
                if let Some(b) = &v.bind {
                    if let Some(s) = &b.selinux {
                        opts.push(s);
                    }
                    if let Some(pr) = &b.propagation {
                        opts.push(pr);
                    }
                }
                if opts.is_empty() {
                    binds.push(format!("{src}:{}", v.target));
                } else {
                    binds.push(format!("{src}:{}:{}", v.target, opts.join(",")));
                }
            }
            ("volume", Some(src)) => {
                let nocopy = v.volume.as_ref().and_then(|o| o.nocopy).unwrap_or(false);
                let mut s = format!("{}:{}{ro}", volume_name(p, src), v.target);
                if nocopy {
                    s.push_str(if ro.is_empty() { ":nocopy" } else { ",nocopy" });
                }
                binds.push(s);
            }
            ("tmpfs", _) => {
                let mut opts = Vec::new();
                if let Some(t) = &v.tmpfs {
                    if let Some(size) = &t.size {
                        opts.push(format!(
                            "size={}",
                            parse_bytes(size).map_err(anyhow::Error::msg)?
                        ));
                    }
                    if let Some(mode) = t.mode {
                        opts.push(format!("mode={mode:o}"));
                    }
                }
                tmpfs.insert(v.target.clone(), json!(opts.join(",")));
            }
            _ => {}
        }
    }
    for t in &svc.tmpfs {
        let (path, opts) = t.split_once(':').unwrap_or((t, ""));
        tmpfs.insert(path.to_string(), json!(opts));
    }
    // File-based secrets and configs are bind-mounted read-only, as compose does.
    for (refs, defs, dir) in [
        (&svc.secrets, &p.secrets, "/run/secrets/"),
        (&svc.configs, &p.configs, "/"),
    ] {
        for r in refs {
            let Some(file) = defs.get(&r.source).and_then(|d| d.file.clone()) else {
                anyhow::bail!(
                    "{} {:?}: only file-based secrets and configs are supported",
                    if dir == "/" { "config" } else { "secret" },
                    r.source
                );
            };
            let target = match &r.target {
                Some(t) if t.starts_with('/') => t.clone(),
                Some(t) => format!("{dir}{t}"),
                None => format!("{dir}{}", r.source),
            };
            binds.push(format!("{file}:{target}:ro"));
        }
    }
    if !binds.is_empty() {
        h.insert("Binds".into(), json!(binds));
    }
    if !tmpfs.is_empty() {
        h.insert("Tmpfs".into(), Value::Object(tmpfs));
    }
    let restart = match kind {
        Kind::OneOff(_) => None,
        Kind::Replica(_) => svc.restart.clone().or_else(|| {
            svc.deploy
                .as_ref()
                .and_then(|d| d.restart_policy.as_ref())
                .and_then(|r| r.condition.as_deref())
                .map(|c| match c {
                    "none" => "no".to_string(),
                    "any" => "always".to_string(),
                    other => other.to_string(),
                })
        }),
    };
    if let Some(r) = restart {
        let (name, max) = match r.split_once(':') {
            Some((n, m)) => (n.to_string(), m.parse::<i64>().unwrap_or(0)),
            None => {
                let max = svc
                    .deploy
                    .as_ref()
                    .and_then(|d| d.restart_policy.as_ref())
                    .and_then(|r| r.max_attempts)
                    .unwrap_or(0);
                (r.clone(), i64::try_from(max).unwrap_or(0))
            }
        };
        h.insert(
            "RestartPolicy".into(),
            json!({"Name": name, "MaximumRetryCount": max}),
        );
    }
    let mut bool_field = |k: &str, v: Option<bool>| {
        if let Some(v) = v {
            h.insert(k.into(), json!(v));
        }
    };
    bool_field("ReadonlyRootfs", svc.read_only);
    bool_field("Privileged", svc.privileged);
    bool_field("Init", svc.init);
    for (k, v) in [
        ("CapAdd", &svc.cap_add),
        ("CapDrop", &svc.cap_drop),
        ("ExtraHosts", &svc.extra_hosts),
        ("Dns", &svc.dns),
        ("DnsSearch", &svc.dns_search),
        ("DnsOptions", &svc.dns_opt),
        ("SecurityOpt", &svc.security_opt),
        ("GroupAdd", &svc.group_add),
    ] {
        if !v.is_empty() {
            h.insert(k.into(), json!(v));
        }
    }
    // `links: [db, "db:database"]` name containers as `<container>:<alias>`.
    if !svc.links.is_empty() {
        let links: Vec<String> = svc
            .links
            .iter()
            .map(|l| {
                let (target, alias) = l.split_once(':').unwrap_or((l, l));
                let cname = p
                    .services
                    .get(target)
                    .map(|t| container_name(p, target, t, 1))
                    .unwrap_or_else(|| target.to_string());
                format!("{cname}:{alias}")
            })
            .collect();
        h.insert("Links".into(), json!(links));
    }
    if !svc.ulimits.is_empty() {
        let u: Vec<Value> = svc
            .ulimits
            .iter()
            .map(|(n, l)| json!({"Name": n, "Soft": l.soft, "Hard": l.hard}))
            .collect();
        h.insert("Ulimits".into(), json!(u));
    }
    if !svc.sysctls.is_empty() {
        h.insert("Sysctls".into(), json!(svc.sysctls));
    }
    let limits = svc
        .deploy
        .as_ref()
        .and_then(|d| d.resources.as_ref())
        .and_then(|r| r.limits.as_ref());
    let reservations = svc
        .deploy
        .as_ref()
        .and_then(|d| d.resources.as_ref())
        .and_then(|r| r.reservations.as_ref());
    let bytes = |s: &Option<String>| -> anyhow::Result<Option<i64>> {
        s.as_deref()
            .map(|s| parse_bytes(s).map_err(anyhow::Error::msg))
            .transpose()
    };
    let memory = bytes(&svc.mem_limit)?.or(bytes(&limits.and_then(|l| l.memory.clone()))?);
    if let Some(m) = memory {
        h.insert("Memory".into(), json!(m));
    }
    let reservation =
        bytes(&svc.mem_reservation)?.or(bytes(&reservations.and_then(|l| l.memory.clone()))?);
    if let Some(m) = reservation {
        h.insert("MemoryReservation".into(), json!(m));
    }
    if let Some(m) = bytes(&svc.memswap_limit)? {
        h.insert("MemorySwap".into(), json!(m));
    }
    if let Some(m) = bytes(&svc.shm_size)? {
        h.insert("ShmSize".into(), json!(m));
    }
    if let Some(c) = svc.cpus.or(limits.and_then(|l| l.cpus)) {
        #[allow(clippy::cast_possible_truncation)] // cpus * 1e9 fits in i64
        h.insert("NanoCpus".into(), json!((c * 1e9) as i64));
    }
    if let Some(n) = svc.pids_limit.or(limits.and_then(|l| l.pids)) {
        h.insert("PidsLimit".into(), json!(n));
    }
    for (k, v) in [
        ("CpuShares", svc.cpu_shares),
        ("OomScoreAdj", svc.oom_score_adj),
    ] {
        if let Some(v) = v {
            h.insert(k.into(), json!(v));
        }
    }
    for (k, v) in [
        ("CpusetCpus", &svc.cpuset),
        ("IpcMode", &svc.ipc),
        ("PidMode", &svc.pid),
        ("Runtime", &svc.runtime),
        ("UsernsMode", &svc.userns_mode),
        ("CgroupParent", &svc.cgroup_parent),
    ] {
        if let Some(v) = v {
            h.insert(k.into(), json!(v));
        }
    }
    if let Some(l) = &svc.logging {
        h.insert(
            "LogConfig".into(),
            json!({"Type": l.driver.clone().unwrap_or_else(|| "json-file".into()), "Config": l.options}),
        );
    }
    if !svc.devices.is_empty() {
        let d: Vec<Value> = svc
            .devices
            .iter()
            .map(|d| {
                let parts: Vec<&str> = d.split(':').collect();
                let host = parts.first().copied().unwrap_or_default();
                let cont = parts.get(1).copied().unwrap_or(host);
                let perms = parts.get(2).copied().unwrap_or("rwm");
                json!({"PathOnHost": host, "PathInContainer": cont, "CgroupPermissions": perms})
            })
            .collect();
        h.insert("Devices".into(), json!(d));
    }
    Ok(Value::Object(h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_compose::{load, LoadOptions, MemSource};
    use std::path::PathBuf;

    fn project(text: &str) -> Project {
        let src = MemSource::new()
            .with_file("/srv/app/compose.yaml", text)
            .with_file("/srv/app/token.txt", "t0ken");
        let opts = LoadOptions {
            working_dir: PathBuf::from("/srv/app"),
            ..LoadOptions::default()
        };
        load(&opts, &src).unwrap().project
    }

    const APP: &str = r#"
services:
  web:
    image: busybox
    command: ["httpd", "-f"]
    environment: {A: "1"}
    ports: ["8080:80", "127.0.0.1::81/udp"]
    volumes: ["data:/data:ro", "./conf:/conf", "/anon"]
    tmpfs: /run
    networks:
      front: {aliases: [www], priority: 10}
      back:
    depends_on:
      db: {condition: service_healthy}
    restart: on-failure:5
    healthcheck: {test: "true", interval: 2s, retries: 3}
    secrets: [token]
    deploy: {resources: {limits: {memory: 64m, cpus: "0.5"}}}
  db:
    image: busybox
    container_name: the-db
networks: {front: {}, back: {internal: true, labels: {x: y}}}
volumes: {data: {}}
secrets: {token: {file: ./token.txt}}
"#;

    #[test]
    fn container_body_carries_compose_labels_and_first_network() {
        let p = project(APP);
        let web = &p.services["web"];
        let b = container_create(&p, "web", web, Kind::Replica(2), None).unwrap();
        let l = &b["Labels"];
        assert_eq!(l["com.docker.compose.project"], "app");
        assert_eq!(l["com.docker.compose.service"], "web");
        assert_eq!(l["com.docker.compose.container-number"], "2");
        assert_eq!(l["com.docker.compose.oneoff"], "False");
        assert_eq!(l["com.docker.compose.project.working_dir"], "/srv/app");
        assert_eq!(
            l["com.docker.compose.project.config_files"],
            "/srv/app/compose.yaml"
        );
        assert_eq!(
            l["com.docker.compose.depends_on"],
            "db:service_healthy:false"
        );
        assert_eq!(
            l["com.docker.compose.config-hash"],
            corral_compose::config_hash(web)
        );
        assert_eq!(b["Cmd"], json!(["httpd", "-f"]));
        assert_eq!(b["Env"], json!(["A=1"]));
        assert_eq!(b["HostConfig"]["NetworkMode"], "app_front");
        assert_eq!(
            b["NetworkingConfig"]["EndpointsConfig"]["app_front"]["Aliases"],
            json!(["web", "www"])
        );
        let eps = endpoints(&p, "web", web);
        assert_eq!(eps[1].0, "app_back");
        assert_eq!(eps[1].1, vec!["web".to_string()]);
    }

    #[test]
    fn host_config_maps_mounts_ports_limits_and_restart() {
        let p = project(APP);
        let b = container_create(&p, "web", &p.services["web"], Kind::Replica(1), None).unwrap();
        let h = &b["HostConfig"];
        assert_eq!(
            h["Binds"],
            json!([
                "app_data:/data:ro",
                "/srv/app/conf:/conf",
                "/srv/app/token.txt:/run/secrets/token:ro"
            ])
        );
        assert_eq!(b["Volumes"], json!({"/anon": {}}));
        assert_eq!(h["Tmpfs"], json!({"/run": ""}));
        assert_eq!(
            h["PortBindings"]["80/tcp"],
            json!([{"HostIp": "", "HostPort": "8080"}])
        );
        assert_eq!(
            h["PortBindings"]["81/udp"],
            json!([{"HostIp": "127.0.0.1", "HostPort": ""}])
        );
        assert_eq!(
            h["RestartPolicy"],
            json!({"Name": "on-failure", "MaximumRetryCount": 5})
        );
        assert_eq!(h["Memory"], json!(64 << 20));
        assert_eq!(h["NanoCpus"], json!(500_000_000));
        assert_eq!(
            b["Healthcheck"],
            json!({"Test": ["CMD-SHELL", "true"], "Interval": 2_000_000_000u64, "Retries": 3})
        );
    }

    #[test]
    fn one_off_has_no_restart_no_published_ports_and_overrides() {
        let p = project(APP);
        let run = RunOverrides {
            command: Some(vec!["echo".into(), "hi".into()]),
            env: vec!["B=2".into()],
            ..RunOverrides::default()
        };
        let b =
            container_create(&p, "web", &p.services["web"], Kind::OneOff(1), Some(&run)).unwrap();
        assert_eq!(b["Labels"]["com.docker.compose.oneoff"], "True");
        assert_eq!(b["Cmd"], json!(["echo", "hi"]));
        assert_eq!(b["Env"], json!(["A=1", "B=2"]));
        assert!(b["HostConfig"].get("RestartPolicy").is_none());
        assert!(b["HostConfig"].get("PortBindings").is_none());
    }

    #[test]
    fn names_and_resource_bodies() {
        let p = project(APP);
        assert_eq!(
            container_name(&p, "web", &p.services["web"], 3),
            "app-web-3"
        );
        assert_eq!(container_name(&p, "db", &p.services["db"], 1), "the-db");
        let n = network_create(&p, "back");
        assert_eq!(n["Name"], "app_back");
        assert_eq!(n["Internal"], true);
        assert_eq!(n["Labels"]["com.docker.compose.network"], "back");
        assert_eq!(n["Labels"]["com.docker.compose.project"], "app");
        assert_eq!(n["Labels"]["x"], "y");
        let v = volume_create(&p, "data");
        assert_eq!(v["Name"], "app_data");
        assert_eq!(v["Labels"]["com.docker.compose.volume"], "data");
        assert_eq!(network_name(&p, "default"), "app_default");
    }

    #[test]
    fn recreate_keeps_anonymous_volumes_only() {
        let p = project(APP);
        let mut b =
            container_create(&p, "web", &p.services["web"], Kind::Replica(1), None).unwrap();
        let anon = "a".repeat(64);
        let old = json!({"Mounts": [
            {"Type": "volume", "Name": anon, "Destination": "/anon"},
            {"Type": "volume", "Name": "app_data", "Destination": "/data"},
            {"Type": "bind", "Source": "/srv/app/conf", "Destination": "/conf"},
            {"Type": "volume", "Name": "b".repeat(64), "Destination": "/data"},
        ]});
        keep_anonymous_volumes(&mut b, &old);
        let binds = b["HostConfig"]["Binds"].as_array().unwrap();
        assert!(binds.contains(&json!(format!("{anon}:/anon"))));
        assert_eq!(binds.len(), 4, "{binds:?}");
        assert!(b["Volumes"].get("/anon").is_none());
    }

    #[test]
    fn network_mode_service_and_links_name_containers() {
        let p = project(
            "services:\n  a:\n    image: x\n  b:\n    image: x\n    network_mode: service:a\n  c:\n    image: x\n    links: [a, 'b:bee']\n",
        );
        let b = container_create(&p, "b", &p.services["b"], Kind::Replica(1), None).unwrap();
        assert_eq!(b["HostConfig"]["NetworkMode"], "container:app-a-1");
        assert!(b.get("NetworkingConfig").is_none());
        let c = container_create(&p, "c", &p.services["c"], Kind::Replica(1), None).unwrap();
        assert_eq!(
            c["HostConfig"]["Links"],
            json!(["app-a-1:a", "app-b-1:bee"])
        );
    }
}
