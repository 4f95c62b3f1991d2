//! Parsers for docker's container flag values (`-p`, `-v`, `--mount`, `--ulimit`,
//! `--restart`, `--cpus`, env files, ...). Pure functions: every bad value becomes a
//! [`FlagError`] that names the flag and the value, before anything is sent.

use std::collections::HashMap;

use bollard::models::{
    Mount, MountBindOptions, MountBindOptionsPropagationEnum, MountTmpfsOptions, MountType,
    MountVolumeOptions, PortBinding, ResourcesUlimits, RestartPolicy, RestartPolicyNameEnum,
};

use super::units;

/// A flag value that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FlagError {
    /// The flag as docker names it in errors, e.g. `-m, --memory`.
    pub(crate) flag: String,
    /// The rejected value.
    pub(crate) value: String,
    /// Why it was rejected.
    pub(crate) reason: String,
}

impl FlagError {
    pub(crate) fn new(flag: &str, value: &str, reason: impl Into<String>) -> Self {
        FlagError {
            flag: flag.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for FlagError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "invalid argument {:?} for \"{}\" flag: {}",
            self.value, self.flag, self.reason
        )
    }
}

impl std::error::Error for FlagError {}

/// Parses a memory size flag (`32m`, `1g`) into bytes.
pub(crate) fn mem_bytes(flag: &str, v: &str) -> Result<i64, FlagError> {
    units::ram_in_bytes(v).map_err(|_| FlagError::new(flag, v, format!("invalid size: '{v}'")))
}

/// Parses `--memory-swap`: a size or `-1` for unlimited.
pub(crate) fn mem_swap_bytes(flag: &str, v: &str) -> Result<i64, FlagError> {
    if v == "-1" {
        return Ok(-1);
    }
    mem_bytes(flag, v)
}

/// Parses `--cpus 1.5` into NanoCpus (1.5e9).
pub(crate) fn nano_cpus(flag: &str, v: &str) -> Result<i64, FlagError> {
    let bad = || FlagError::new(flag, v, format!("failed to parse {v} as a rational number"));
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    if frac.len() > 9 {
        return Err(FlagError::new(flag, v, "value is too precise"));
    }
    let int_part: i64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    let frac_part: i64 = if frac.is_empty() {
        0
    } else {
        let padded = format!("{frac:0<9}");
        padded.parse().map_err(|_| bad())?
    };
    int_part
        .checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(frac_part))
        .ok_or_else(bad)
}

/// Parses an integer flag.
pub(crate) fn int(flag: &str, v: &str) -> Result<i64, FlagError> {
    v.trim().parse().map_err(|_| {
        FlagError::new(
            flag,
            v,
            format!("strconv.ParseInt: parsing {v:?}: invalid syntax"),
        )
    })
}

fn parse_port_range(s: &str) -> Option<(u16, u16)> {
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (a.parse().ok()?, b.parse().ok()?);
            (a <= b).then_some((a, b))
        }
        None => {
            let p = s.parse().ok()?;
            Some((p, p))
        }
    }
}

/// Splits `proto` off a port spec (`80/tcp` → (`80`, `tcp`)), validating it.
fn split_proto<'a>(flag: &str, full: &str, s: &'a str) -> Result<(&'a str, &'a str), FlagError> {
    match s.rsplit_once('/') {
        Some((p, proto)) => match proto.to_ascii_lowercase().as_str() {
            "tcp" | "udp" | "sctp" => Ok((p, proto)),
            _ => Err(FlagError::new(
                flag,
                full,
                format!("invalid proto: {proto}"),
            )),
        },
        None => Ok((s, "tcp")),
    }
}

/// A parsed `-p`: container port keys (`80/tcp`) and their bindings.
pub(crate) type PortSpecs = Vec<(String, PortBinding)>;

/// Parses `-p [ip:][hostPort:]containerPort[/proto]`, including ranges.
pub(crate) fn publish(flag: &str, v: &str) -> Result<PortSpecs, FlagError> {
    let (spec, proto) = split_proto(flag, v, v)?;
    // The IP may be a bracketed IPv6 address containing ':'.
    let (ip, rest) = if let Some(stripped) = spec.strip_prefix('[') {
        let (ip, rest) = stripped
            .split_once("]:")
            .ok_or_else(|| FlagError::new(flag, v, format!("invalid ip address: {spec}")))?;
        (ip.to_string(), rest)
    } else {
        let colons = spec.matches(':').count();
        if colons == 2 {
            let (ip, rest) = spec.split_once(':').unwrap_or(("", spec));
            (ip.to_string(), rest)
        } else if colons > 2 {
            return Err(FlagError::new(
                flag,
                v,
                format!("invalid port format: {spec}"),
            ));
        } else {
            (String::new(), spec)
        }
    };
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(FlagError::new(flag, v, format!("invalid ip address: {ip}")));
    }
    let (host, container) = match rest.split_once(':') {
        Some((h, c)) => (h, c),
        None => ("", rest),
    };
    let (c_lo, c_hi) = parse_port_range(container)
        .filter(|(lo, _)| *lo > 0)
        .ok_or_else(|| FlagError::new(flag, v, format!("invalid containerPort: {container}")))?;
    let host_range = if host.is_empty() {
        None
    } else {
        Some(
            parse_port_range(host)
                .ok_or_else(|| FlagError::new(flag, v, format!("invalid hostPort: {host}")))?,
        )
    };
    let count = c_hi - c_lo;
    if let Some((h_lo, h_hi)) = host_range {
        if h_hi - h_lo != count && h_lo != h_hi {
            return Err(FlagError::new(
                flag,
                v,
                format!(
                    "invalid ranges specified for container and host Ports: {container} and {host}"
                ),
            ));
        }
    }
    let mut out = Vec::new();
    for i in 0..=count {
        let host_port = match host_range {
            // A single host port for a container range: each maps to the same host port range start.
            Some((h_lo, h_hi)) if h_lo == h_hi && count > 0 => format!("{h_lo}"),
            Some((h_lo, _)) => format!("{}", h_lo + i),
            None => String::new(),
        };
        out.push((
            format!("{}/{}", c_lo + i, proto.to_ascii_lowercase()),
            PortBinding {
                host_ip: Some(ip.clone()),
                host_port: Some(host_port),
            },
        ));
    }
    Ok(out)
}

/// Parses `--expose 80[/tcp]` or a range `8000-8010`.
pub(crate) fn expose(flag: &str, v: &str) -> Result<Vec<String>, FlagError> {
    let (port, proto) = split_proto(flag, v, v)?;
    let (lo, hi) = parse_port_range(port).ok_or_else(|| {
        FlagError::new(flag, v, format!("invalid range format for --expose: {v}"))
    })?;
    Ok((lo..=hi)
        .map(|p| format!("{p}/{}", proto.to_ascii_lowercase()))
        .collect())
}

/// A `-v` value: either a bind/named volume (`HostConfig.Binds`) or an anonymous volume.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum VolumeSpec {
    /// `src:dst[:opts]`, sent verbatim in `Binds`.
    Bind(String),
    /// `dst` alone: an anonymous volume in `Config.Volumes`.
    Anonymous(String),
}

/// Parses `-v src:dst[:opts]` or `-v dst`.
pub(crate) fn volume(flag: &str, v: &str) -> Result<VolumeSpec, FlagError> {
    let parts: Vec<&str> = v.split(':').collect();
    let bad = || FlagError::new(flag, v, format!("invalid volume specification: '{v}'"));
    if v.is_empty() || parts.iter().any(|p| p.is_empty()) {
        return Err(bad());
    }
    match parts.len() {
        1 => Ok(VolumeSpec::Anonymous(v.to_string())),
        2 | 3 => {
            if !parts[1].starts_with('/') {
                return Err(FlagError::new(
                    flag,
                    v,
                    format!("invalid volume specification: '{v}': invalid mount config for type \"bind\": invalid mount path: '{}' mount path must be absolute", parts[1]),
                ));
            }
            if let Some(opts) = parts.get(2) {
                for o in opts.split(',') {
                    let ok = matches!(
                        o,
                        "ro" | "rw"
                            | "z"
                            | "Z"
                            | "nocopy"
                            | "shared"
                            | "rshared"
                            | "slave"
                            | "rslave"
                            | "private"
                            | "rprivate"
                            | "consistent"
                            | "cached"
                            | "delegated"
                    );
                    if !ok {
                        return Err(bad());
                    }
                }
            }
            Ok(VolumeSpec::Bind(v.to_string()))
        }
        _ => Err(bad()),
    }
}

fn parse_bool(flag: &str, full: &str, key: &str, v: &str) -> Result<bool, FlagError> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "t" => Ok(true),
        "0" | "false" | "f" => Ok(false),
        _ => Err(FlagError::new(
            flag,
            full,
            format!("invalid value for {key}: {v}"),
        )),
    }
}

/// Parses `--mount type=bind,source=/a,target=/b[,readonly][,...]`.
pub(crate) fn mount(flag: &str, v: &str) -> Result<Mount, FlagError> {
    let mut m = Mount::default();
    let mut typ = MountType::VOLUME;
    let mut bind = MountBindOptions::default();
    let mut vol = MountVolumeOptions::default();
    let mut tmpfs = MountTmpfsOptions::default();
    let (mut has_bind, mut has_vol, mut has_tmpfs) = (false, false, false);
    for field in v.split(',') {
        let (key, val) = match field.split_once('=') {
            Some((k, val)) => (k.trim().to_ascii_lowercase(), Some(val)),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let need = || {
            val.ok_or_else(|| {
                FlagError::new(
                    flag,
                    v,
                    format!("invalid field '{field}' must be a key=value pair"),
                )
            })
        };
        match key.as_str() {
            "readonly" | "ro" => {
                m.read_only = Some(match val {
                    Some(b) => parse_bool(flag, v, &key, b)?,
                    None => true,
                })
            }
            "volume-nocopy" => {
                has_vol = true;
                vol.no_copy = Some(match val {
                    Some(b) => parse_bool(flag, v, &key, b)?,
                    None => true,
                });
            }
            "type" => {
                typ = match need()? {
                    "bind" => MountType::BIND,
                    "volume" => MountType::VOLUME,
                    "tmpfs" => MountType::TMPFS,
                    "npipe" => MountType::NPIPE,
                    other => {
                        return Err(FlagError::new(
                            flag,
                            v,
                            format!("invalid mount type: {other:?}"),
                        ))
                    }
                }
            }
            "source" | "src" => m.source = Some(need()?.to_string()),
            "target" | "dst" | "destination" => m.target = Some(need()?.to_string()),
            "consistency" => m.consistency = Some(need()?.to_string()),
            "bind-propagation" => {
                has_bind = true;
                let p = need()?;
                bind.propagation = Some(match p {
                    "private" => MountBindOptionsPropagationEnum::PRIVATE,
                    "rprivate" => MountBindOptionsPropagationEnum::RPRIVATE,
                    "shared" => MountBindOptionsPropagationEnum::SHARED,
                    "rshared" => MountBindOptionsPropagationEnum::RSHARED,
                    "slave" => MountBindOptionsPropagationEnum::SLAVE,
                    "rslave" => MountBindOptionsPropagationEnum::RSLAVE,
                    other => {
                        return Err(FlagError::new(
                            flag,
                            v,
                            format!("invalid propagation mode: {other}"),
                        ))
                    }
                });
            }
            "bind-nonrecursive" => {
                has_bind = true;
                bind.non_recursive = Some(parse_bool(flag, v, &key, need()?)?);
            }
            "volume-label" => {
                has_vol = true;
                let (k, lv) = need()?.split_once('=').unwrap_or((need()?, ""));
                vol.labels
                    .get_or_insert_with(HashMap::new)
                    .insert(k.to_string(), lv.to_string());
            }
            "volume-subpath" => {
                has_vol = true;
                vol.subpath = Some(need()?.to_string());
            }
            "tmpfs-size" => {
                has_tmpfs = true;
                tmpfs.size_bytes = Some(mem_bytes(flag, need()?).map_err(|_| {
                    FlagError::new(
                        flag,
                        v,
                        format!("invalid value for {key}: {}", val.unwrap_or("")),
                    )
                })?);
            }
            "tmpfs-mode" => {
                has_tmpfs = true;
                let mode = i64::from_str_radix(need()?, 8).map_err(|_| {
                    FlagError::new(
                        flag,
                        v,
                        format!("invalid value for {key}: {}", val.unwrap_or("")),
                    )
                })?;
                tmpfs.mode = Some(mode);
            }
            _ => {
                return Err(FlagError::new(
                    flag,
                    v,
                    format!("unexpected key '{key}' in '{field}'"),
                ))
            }
        }
    }
    if m.target.as_deref().unwrap_or("").is_empty() {
        return Err(FlagError::new(flag, v, "target is required"));
    }
    if has_bind && typ != MountType::BIND {
        return Err(FlagError::new(
            flag,
            v,
            format!("cannot mix 'bind-*' options with mount type '{typ}'"),
        ));
    }
    if has_vol && typ != MountType::VOLUME {
        return Err(FlagError::new(
            flag,
            v,
            format!("cannot mix 'volume-*' options with mount type '{typ}'"),
        ));
    }
    if has_tmpfs && typ != MountType::TMPFS {
        return Err(FlagError::new(
            flag,
            v,
            format!("cannot mix 'tmpfs-*' options with mount type '{typ}'"),
        ));
    }
    if has_bind {
        m.bind_options = Some(bind);
    }
    if has_vol {
        m.volume_options = Some(vol);
    }
    if has_tmpfs {
        m.tmpfs_options = Some(tmpfs);
    }
    m.typ = Some(typ);
    Ok(m)
}

/// Parses `--tmpfs /run[:opts]` into (path, options).
pub(crate) fn tmpfs(flag: &str, v: &str) -> Result<(String, String), FlagError> {
    let (path, opts) = v.split_once(':').unwrap_or((v, ""));
    if !path.starts_with('/') {
        return Err(FlagError::new(
            flag,
            v,
            format!("invalid mount path: '{path}' mount path must be absolute"),
        ));
    }
    Ok((path.to_string(), opts.to_string()))
}

const ULIMITS: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// Parses `--ulimit nofile=1024[:2048]`.
pub(crate) fn ulimit(flag: &str, v: &str) -> Result<ResourcesUlimits, FlagError> {
    let (name, limits) = v
        .split_once('=')
        .ok_or_else(|| FlagError::new(flag, v, format!("invalid ulimit argument: {v}")))?;
    if !ULIMITS.contains(&name) {
        return Err(FlagError::new(
            flag,
            v,
            format!("invalid ulimit type: {name}"),
        ));
    }
    let num = |s: &str| {
        s.parse::<i64>()
            .map_err(|_| FlagError::new(flag, v, format!("invalid ulimit argument: {v}")))
    };
    let (soft, hard) = match limits.split_once(':') {
        Some((s, h)) => (num(s)?, num(h)?),
        None => {
            let n = num(limits)?;
            (n, n)
        }
    };
    if soft > hard {
        return Err(FlagError::new(
            flag,
            v,
            format!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"),
        ));
    }
    Ok(ResourcesUlimits {
        name: Some(name.to_string()),
        soft: Some(soft),
        hard: Some(hard),
    })
}

/// Parses `--restart no|always|unless-stopped|on-failure[:N]`.
pub(crate) fn restart(flag: &str, v: &str) -> Result<RestartPolicy, FlagError> {
    let (name, count) = match v.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (v, None),
    };
    let name_enum = match name {
        "" | "no" => RestartPolicyNameEnum::NO,
        "always" => RestartPolicyNameEnum::ALWAYS,
        "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
        "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
        other => {
            return Err(FlagError::new(
                flag,
                v,
                format!("invalid restart policy '{other}'"),
            ))
        }
    };
    let maximum_retry_count = match count {
        Some(c) => {
            if name != "on-failure" {
                return Err(FlagError::new(flag, v, format!("invalid restart policy format: maximum retry count cannot be used with restart policy '{name}'")));
            }
            Some(c.parse::<i64>().map_err(|_| {
                FlagError::new(
                    flag,
                    v,
                    "invalid restart policy format: maximum retry count must be an integer",
                )
            })?)
        }
        None => None,
    };
    Ok(RestartPolicy {
        name: Some(name_enum),
        maximum_retry_count,
    })
}

/// Resolves a `-e` value: `K=V` verbatim; `K` takes the local value when set.
pub(crate) fn env_value(v: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    if v.contains('=') {
        return v.to_string();
    }
    match lookup(v) {
        Some(val) => format!("{v}={val}"),
        None => v.to_string(),
    }
}

/// Looks up a local environment variable.
pub(crate) type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Parses an env file: `K=V` lines, `#` comments, bare `K` taken from `lookup` or dropped.
pub(crate) fn env_file(
    flag: &str,
    path: &str,
    content: &str,
    lookup: Option<Lookup<'_>>,
) -> Result<Vec<String>, FlagError> {
    let mut out = Vec::new();
    let content = content.strip_prefix('\u{feff}').unwrap_or(content);
    for raw in content.lines() {
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = match line.split_once('=') {
            Some((n, val)) => (n, Some(val)),
            None => (line, None),
        };
        let name = name.trim_start();
        if name.is_empty() {
            return Err(FlagError::new(
                flag,
                path,
                format!("no variable name on line '{line}'"),
            ));
        }
        if name.contains(char::is_whitespace) {
            return Err(FlagError::new(
                flag,
                path,
                format!("variable '{name}' contains whitespaces"),
            ));
        }
        match (value, lookup) {
            (Some(val), _) => out.push(format!("{name}={val}")),
            (None, Some(look)) => {
                if let Some(val) = look(name) {
                    out.push(format!("{name}={val}"));
                }
            }
            (None, None) => out.push(name.to_string()),
        }
    }
    Ok(out)
}

/// Parses `k=v` (or bare `k` → empty) into a pair.
pub(crate) fn key_value(v: &str) -> (String, String) {
    match v.split_once('=') {
        Some((k, val)) => (k.to_string(), val.to_string()),
        None => (v.to_string(), String::new()),
    }
}

/// Parses `k=v` strictly (`--sysctl`, `--log-opt`).
pub(crate) fn key_value_strict(flag: &str, v: &str) -> Result<(String, String), FlagError> {
    match v.split_once('=') {
        Some((k, val)) if !k.is_empty() => Ok((k.to_string(), val.to_string())),
        _ => Err(FlagError::new(
            flag,
            v,
            format!("invalid key value pair format: {v}"),
        )),
    }
}

/// Parses `--add-host host:ip` (or `host=ip`) into the API's `host:ip` form.
pub(crate) fn add_host(flag: &str, v: &str) -> Result<String, FlagError> {
    let bad = || FlagError::new(flag, v, format!("bad format for add-host: {v:?}"));
    let (host, ip) = v
        .split_once('=')
        .or_else(|| v.split_once(':'))
        .ok_or_else(bad)?;
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(bad());
    }
    let ip_plain = ip.trim_start_matches('[').trim_end_matches(']');
    if ip_plain != "host-gateway" && ip_plain.parse::<std::net::IpAddr>().is_err() {
        return Err(FlagError::new(
            flag,
            v,
            format!("invalid IP address in add-host: {ip:?}"),
        ));
    }
    Ok(format!("{host}:{ip_plain}"))
}

/// `--pull` policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PullPolicy {
    /// Pull when the image is missing (default).
    Missing,
    /// Always pull before creating.
    Always,
    /// Never pull.
    Never,
}

/// Parses `--pull missing|always|never`.
pub(crate) fn pull_policy(v: &str) -> Result<PullPolicy, FlagError> {
    match v {
        "missing" | "" => Ok(PullPolicy::Missing),
        "always" => Ok(PullPolicy::Always),
        "never" => Ok(PullPolicy::Never),
        _ => Err(FlagError::new(
            "--pull",
            v,
            r#"must be one of "always", "missing" or "never""#,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_parses_docker_forms() {
        let p = publish("-p", "8080:80/tcp").unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0, "80/tcp");
        assert_eq!(p[0].1.host_port.as_deref(), Some("8080"));
        assert_eq!(p[0].1.host_ip.as_deref(), Some(""));
        let p = publish("-p", "127.0.0.1:9000:90/udp").unwrap();
        assert_eq!(p[0].0, "90/udp");
        assert_eq!(p[0].1.host_ip.as_deref(), Some("127.0.0.1"));
        let p = publish("-p", "80").unwrap();
        assert_eq!(
            (p[0].0.as_str(), p[0].1.host_port.as_deref()),
            ("80/tcp", Some(""))
        );
        let p = publish("-p", "127.0.0.1::80").unwrap();
        assert_eq!(p[0].1.host_port.as_deref(), Some(""));
        let p = publish("-p", "8000-8001:80-81").unwrap();
        assert_eq!(
            p.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(),
            ["80/tcp", "81/tcp"]
        );
        assert_eq!(p[1].1.host_port.as_deref(), Some("8001"));
        let p = publish("-p", "[::1]:8080:80").unwrap();
        assert_eq!(p[0].1.host_ip.as_deref(), Some("::1"));
    }

    #[test]
    fn publish_rejects_bad_values_naming_them() {
        let e = publish("-p, --publish", "abc").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"invalid argument "abc" for "-p, --publish" flag: invalid containerPort: abc"#
        );
        assert!(publish("-p", "80/xyz")
            .unwrap_err()
            .reason
            .contains("invalid proto"));
        assert!(publish("-p", "x:80")
            .unwrap_err()
            .reason
            .contains("invalid hostPort"));
        assert!(publish("-p", "1.2.3:8080:80")
            .unwrap_err()
            .reason
            .contains("invalid ip"));
        assert!(publish("-p", "8000-8002:80-81").is_err());
    }

    #[test]
    fn expose_accepts_ranges() {
        assert_eq!(expose("--expose", "80").unwrap(), ["80/tcp"]);
        assert_eq!(expose("--expose", "53/udp").unwrap(), ["53/udp"]);
        assert_eq!(
            expose("--expose", "1-3").unwrap(),
            ["1/tcp", "2/tcp", "3/tcp"]
        );
        assert!(expose("--expose", "x").is_err());
    }

    #[test]
    fn volume_classifies_binds_and_anonymous() {
        assert_eq!(
            volume("-v", "/data").unwrap(),
            VolumeSpec::Anonymous("/data".into())
        );
        assert_eq!(
            volume("-v", "/a:/b:ro").unwrap(),
            VolumeSpec::Bind("/a:/b:ro".into())
        );
        assert_eq!(
            volume("-v", "vol:/b").unwrap(),
            VolumeSpec::Bind("vol:/b".into())
        );
        assert!(volume("-v", "/a:/b:bogus").is_err());
        assert!(volume("-v", "/a:rel").is_err());
        assert!(volume("-v", "a:b:c:d").is_err());
        assert!(volume("-v", "").is_err());
    }

    #[test]
    fn mount_parses_bind_volume_tmpfs() {
        let m = mount(
            "--mount",
            "type=bind,source=/a,target=/b,readonly,bind-propagation=rslave",
        )
        .unwrap();
        assert_eq!(m.typ, Some(MountType::BIND));
        assert_eq!(m.source.as_deref(), Some("/a"));
        assert_eq!(m.target.as_deref(), Some("/b"));
        assert_eq!(m.read_only, Some(true));
        assert_eq!(
            m.bind_options.unwrap().propagation,
            Some(MountBindOptionsPropagationEnum::RSLAVE)
        );
        let m = mount("--mount", "src=v1,dst=/d,volume-nocopy").unwrap();
        assert_eq!(m.typ, Some(MountType::VOLUME));
        assert_eq!(m.volume_options.unwrap().no_copy, Some(true));
        let m = mount(
            "--mount",
            "type=tmpfs,destination=/t,tmpfs-size=64m,tmpfs-mode=1770",
        )
        .unwrap();
        let t = m.tmpfs_options.unwrap();
        assert_eq!(t.size_bytes, Some(64 << 20));
        assert_eq!(t.mode, Some(0o1770));
    }

    #[test]
    fn mount_rejects_bad_specs() {
        assert!(mount("--mount", "type=bind,source=/a")
            .unwrap_err()
            .reason
            .contains("target is required"));
        assert!(mount("--mount", "type=foo,target=/a").is_err());
        assert!(mount("--mount", "type=tmpfs,target=/a,bind-propagation=shared").is_err());
        assert!(mount("--mount", "target=/a,bogus=1").is_err());
    }

    #[test]
    fn cpus_become_nano_cpus() {
        assert_eq!(nano_cpus("--cpus", "1.5"), Ok(1_500_000_000));
        assert_eq!(nano_cpus("--cpus", "2"), Ok(2_000_000_000));
        assert_eq!(nano_cpus("--cpus", ".25"), Ok(250_000_000));
        assert!(nano_cpus("--cpus", "abc").is_err());
        assert!(nano_cpus("--cpus", "-1").is_err());
    }

    #[test]
    fn memory_sizes_parse_and_name_flag_on_error() {
        assert_eq!(mem_bytes("-m, --memory", "32m"), Ok(32 << 20));
        assert_eq!(mem_swap_bytes("--memory-swap", "-1"), Ok(-1));
        let e = mem_bytes("-m, --memory", "abc").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"invalid argument "abc" for "-m, --memory" flag: invalid size: 'abc'"#
        );
    }

    #[test]
    fn ulimit_parses_soft_hard() {
        let u = ulimit("--ulimit", "nofile=1024:2048").unwrap();
        assert_eq!(
            (u.name.as_deref(), u.soft, u.hard),
            (Some("nofile"), Some(1024), Some(2048))
        );
        let u = ulimit("--ulimit", "nproc=10").unwrap();
        assert_eq!((u.soft, u.hard), (Some(10), Some(10)));
        assert!(ulimit("--ulimit", "bogus=1")
            .unwrap_err()
            .reason
            .contains("invalid ulimit type"));
        assert!(ulimit("--ulimit", "nofile=2:1").is_err());
        assert!(ulimit("--ulimit", "nofile").is_err());
    }

    #[test]
    fn restart_policies_parse() {
        let r = restart("--restart", "on-failure:3").unwrap();
        assert_eq!(
            (r.name, r.maximum_retry_count),
            (Some(RestartPolicyNameEnum::ON_FAILURE), Some(3))
        );
        assert_eq!(
            restart("--restart", "always").unwrap().name,
            Some(RestartPolicyNameEnum::ALWAYS)
        );
        assert_eq!(
            restart("--restart", "unless-stopped").unwrap().name,
            Some(RestartPolicyNameEnum::UNLESS_STOPPED)
        );
        assert!(restart("--restart", "on-failure:x").is_err());
        assert!(restart("--restart", "sometimes").is_err());
        assert!(restart("--restart", "always:2").is_err());
    }

    #[test]
    fn env_file_handles_comments_and_lookup() {
        let look = |k: &str| (k == "HOME").then(|| "/root".to_string());
        let content = "\u{feff}# comment\n\nA=1\n  B=two words\nHOME\nUNSET\nC=\n";
        let env = env_file("--env-file", "f", content, Some(&look)).unwrap();
        assert_eq!(env, ["A=1", "B=two words", "HOME=/root", "C="]);
        let e = env_file("--env-file", "f", "BAD NAME=1", Some(&look)).unwrap_err();
        assert!(e.reason.contains("contains whitespaces"));
        let labels = env_file("--label-file", "f", "a=b\nc\n", None).unwrap();
        assert_eq!(labels, ["a=b", "c"]);
    }

    #[test]
    fn env_value_reads_local_environment_for_bare_names() {
        let look = |k: &str| (k == "X").then(|| "1".to_string());
        assert_eq!(env_value("X", &look), "X=1");
        assert_eq!(env_value("Y", &look), "Y");
        assert_eq!(env_value("Z=3", &look), "Z=3");
    }

    #[test]
    fn add_host_and_key_values() {
        assert_eq!(
            add_host("--add-host", "db:10.0.0.2").unwrap(),
            "db:10.0.0.2"
        );
        assert_eq!(add_host("--add-host", "db=::1").unwrap(), "db:::1");
        assert_eq!(
            add_host("--add-host", "gw:host-gateway").unwrap(),
            "gw:host-gateway"
        );
        assert!(add_host("--add-host", "nohost").is_err());
        assert!(add_host("--add-host", "db:notanip").is_err());
        assert_eq!(key_value("a=b=c"), ("a".into(), "b=c".into()));
        assert_eq!(key_value("flag"), ("flag".into(), String::new()));
        assert!(key_value_strict("--sysctl", "novalue").is_err());
        assert_eq!(
            tmpfs("--tmpfs", "/run:rw,size=64m").unwrap(),
            ("/run".into(), "rw,size=64m".into())
        );
        assert!(tmpfs("--tmpfs", "run").is_err());
    }

    #[test]
    fn pull_policy_values() {
        assert_eq!(pull_policy("never"), Ok(PullPolicy::Never));
        assert!(pull_policy("sometimes").is_err());
    }
}
