//! Container commands that do not create processes: lifecycle (`stop`, `kill`, `rm`,
//! ...), listing (`ps`), `inspect`, `logs`, `top`, `diff`, `export`; `cp` and `stats`
//! live in their own modules and are re-exported here.

use std::collections::HashMap;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use bollard::container::LogOutput;
use bollard::query_parameters::{
    KillContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    RenameContainerOptionsBuilder, RestartContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use clap::Args;
use futures::StreamExt;
use serde_json::{json, Value};

use super::client::{from_bollard, Ctx, Exit};
use super::format::{self, Formatter, PortEntry};
use super::template::Template;
use super::units;

pub(crate) use super::cp::{cp, CpArgs};
pub(crate) use super::stats::{stats, StatsArgs};

/// One or more containers.
#[derive(Args, Debug)]
pub(crate) struct Names {
    /// Containers (name or ID).
    #[arg(required = true)]
    pub(crate) containers: Vec<String>,
}

/// Exactly one container.
#[derive(Args, Debug)]
pub(crate) struct NameArg {
    /// Container (name or ID).
    pub(crate) container: String,
}

/// `stop`/`restart` arguments.
#[derive(Args, Debug)]
pub(crate) struct StopArgs {
    /// Signal to send to the container.
    #[arg(short = 's', long)]
    pub(crate) signal: Option<String>,
    /// Seconds to wait before killing the container.
    #[arg(
        short = 't',
        long = "time",
        visible_alias = "timeout",
        allow_hyphen_values = true
    )]
    pub(crate) time: Option<i32>,
    /// Containers.
    #[arg(required = true)]
    pub(crate) containers: Vec<String>,
}

/// `kill` arguments.
#[derive(Args, Debug)]
pub(crate) struct KillArgs {
    /// Signal to send to the container.
    #[arg(short = 's', long)]
    pub(crate) signal: Option<String>,
    /// Containers.
    #[arg(required = true)]
    pub(crate) containers: Vec<String>,
}

/// `rm` arguments.
#[derive(Args, Debug)]
pub(crate) struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL).
    #[arg(short = 'f', long)]
    pub(crate) force: bool,
    /// Remove anonymous volumes associated with the container.
    #[arg(short = 'v', long)]
    pub(crate) volumes: bool,
    /// Containers.
    #[arg(required = true)]
    pub(crate) containers: Vec<String>,
}

/// `rename` arguments.
#[derive(Args, Debug)]
pub(crate) struct RenameArgs {
    /// Current name.
    pub(crate) container: String,
    /// New name.
    pub(crate) new_name: String,
}

/// `ps` arguments.
#[derive(Args, Debug)]
pub(crate) struct PsArgs {
    /// Show all containers (default shows just running).
    #[arg(short = 'a', long)]
    pub(crate) all: bool,
    /// Only display container IDs.
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
    /// Don't truncate output.
    #[arg(long)]
    pub(crate) no_trunc: bool,
    /// Show n last created containers (includes all states).
    #[arg(short = 'n', long = "last")]
    pub(crate) last: Option<i32>,
    /// Show the latest created container (includes all states).
    #[arg(short = 'l', long)]
    pub(crate) latest: bool,
    /// Filter output based on conditions provided.
    #[arg(short = 'f', long)]
    pub(crate) filter: Vec<String>,
    /// Format output using a custom template.
    #[arg(long)]
    pub(crate) format: Option<String>,
    /// Display total file sizes.
    #[arg(short = 's', long)]
    pub(crate) size: bool,
}

/// `inspect` arguments.
#[derive(Args, Debug)]
pub(crate) struct InspectArgs {
    /// Format output using a custom template.
    #[arg(short = 'f', long)]
    pub(crate) format: Option<String>,
    /// Only inspect objects of the given type (container, image).
    #[arg(long = "type")]
    pub(crate) typ: Option<String>,
    /// Display total file sizes if the type is container.
    #[arg(short = 's', long)]
    pub(crate) size: bool,
    /// Objects to inspect.
    #[arg(required = true)]
    pub(crate) names: Vec<String>,
}

/// `logs` arguments.
#[derive(Args, Debug)]
pub(crate) struct LogsArgs {
    /// Follow log output.
    #[arg(short = 'f', long)]
    pub(crate) follow: bool,
    /// Show logs since timestamp or relative (e.g. 42m).
    #[arg(long)]
    pub(crate) since: Option<String>,
    /// Show logs before a timestamp or relative (e.g. 42m).
    #[arg(long)]
    pub(crate) until: Option<String>,
    /// Number of lines to show from the end of the logs.
    #[arg(short = 'n', long, default_value = "all")]
    pub(crate) tail: String,
    /// Show timestamps.
    #[arg(short = 't', long)]
    pub(crate) timestamps: bool,
    /// Container.
    pub(crate) container: String,
}

/// `top` arguments.
#[derive(Args, Debug)]
pub(crate) struct TopArgs {
    /// Container.
    pub(crate) container: String,
    /// `ps` options.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub(crate) ps_args: Vec<String>,
}

/// `export` arguments.
#[derive(Args, Debug)]
pub(crate) struct ExportArgs {
    /// Write to a file, instead of STDOUT.
    #[arg(short = 'o', long)]
    pub(crate) output: Option<String>,
    /// Container.
    pub(crate) container: String,
}

/// Runs `op` for every name, printing each name on success and each error on stderr;
/// fails with status 1 when any failed (docker's behaviour for multi-target commands).
async fn for_each<F, Fut>(names: &[String], print: bool, mut op: F) -> anyhow::Result<()>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut failed = false;
    for n in names {
        match op(n.clone()).await {
            Ok(()) => {
                if print {
                    println!("{n}");
                }
            }
            Err(e) => {
                eprintln!("{e:#}");
                failed = true;
            }
        }
    }
    if failed {
        return Err(Exit(1).into());
    }
    Ok(())
}

/// `stop` (or `restart` when `restart`).
pub(crate) async fn stop(ctx: &Ctx, a: StopArgs, restart: bool) -> anyhow::Result<()> {
    for_each(&a.containers, true, |c| {
        let (signal, time) = (a.signal.clone(), a.time);
        async move {
            if restart {
                let mut b = RestartContainerOptionsBuilder::new();
                if let Some(s) = &signal {
                    b = b.signal(s);
                }
                if let Some(t) = time {
                    b = b.t(t);
                }
                ctx.docker_slow
                    .restart_container(&c, Some(b.build()))
                    .await
                    .map_err(from_bollard)
            } else {
                let mut b = StopContainerOptionsBuilder::new();
                if let Some(s) = &signal {
                    b = b.signal(s);
                }
                if let Some(t) = time {
                    b = b.t(t);
                }
                ctx.docker_slow
                    .stop_container(&c, Some(b.build()))
                    .await
                    .map_err(from_bollard)
            }
        }
    })
    .await
}

/// `kill`.
pub(crate) async fn kill(ctx: &Ctx, a: KillArgs) -> anyhow::Result<()> {
    for_each(&a.containers, true, |c| {
        let signal = a.signal.clone();
        async move {
            let mut b = KillContainerOptionsBuilder::new();
            if let Some(s) = &signal {
                b = b.signal(s);
            }
            ctx.docker
                .kill_container(&c, Some(b.build()))
                .await
                .map_err(from_bollard)
        }
    })
    .await
}

/// `wait`: prints each container's exit code.
pub(crate) async fn wait(ctx: &Ctx, a: Names) -> anyhow::Result<()> {
    for_each(&a.containers, false, |c| async move {
        let r = ctx
            .raw
            .request_notify("POST", &format!("/containers/{c}/wait"), &[], None, None)
            .await?;
        if r.status >= 400 {
            return Err(super::http::api_error(r.status, &r.body).into());
        }
        let v: Value = serde_json::from_slice(&r.body)?;
        println!(
            "{}",
            v.get("StatusCode").and_then(Value::as_i64).unwrap_or(0)
        );
        Ok(())
    })
    .await
}

/// `rm`.
pub(crate) async fn rm(ctx: &Ctx, a: RmArgs) -> anyhow::Result<()> {
    for_each(&a.containers, true, |c| async move {
        let o = RemoveContainerOptionsBuilder::new()
            .force(a.force)
            .v(a.volumes)
            .build();
        ctx.docker
            .remove_container(&c, Some(o))
            .await
            .map_err(from_bollard)
    })
    .await
}

/// `pause` / `unpause`.
pub(crate) async fn pause(ctx: &Ctx, a: Names, pause: bool) -> anyhow::Result<()> {
    for_each(&a.containers, true, |c| async move {
        if pause {
            ctx.docker.pause_container(&c).await.map_err(from_bollard)
        } else {
            ctx.docker.unpause_container(&c).await.map_err(from_bollard)
        }
    })
    .await
}

/// `rename`.
pub(crate) async fn rename(ctx: &Ctx, a: RenameArgs) -> anyhow::Result<()> {
    let o = RenameContainerOptionsBuilder::new()
        .name(&a.new_name)
        .build();
    ctx.docker
        .rename_container(&a.container, o)
        .await
        .map_err(from_bollard)
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

/// Go's `time.Time.String()` for a unix time, in UTC.
pub(crate) fn go_time(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string())
        .unwrap_or_default()
}

/// `HumanDuration(now - t) + " ago"`.
pub(crate) fn ago(unix: i64) -> String {
    let secs = u64::try_from((now_unix() - unix).max(0)).unwrap_or(0);
    format!(
        "{} ago",
        units::human_duration(std::time::Duration::from_secs(secs))
    )
}

fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// Builds docker's `ps` row fields from one `/containers/json` entry.
pub(crate) fn ps_row(c: &Value, trunc: bool) -> Value {
    let id = str_of(c, "Id");
    let names: Vec<String> = c
        .get("Names")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|n| n.trim_start_matches('/').to_string())
                .filter(|n| !trunc || !n.contains('/'))
                .collect()
        })
        .unwrap_or_default();
    let mut image = str_of(c, "Image").to_string();
    if trunc {
        if image.starts_with("sha256:") {
            image = format::trunc_id(&image);
        } else if let Some((name, _)) = image.split_once('@') {
            image = name.to_string();
        }
    }
    let command = str_of(c, "Command");
    let command = if trunc {
        format::ellipsis(command, 20)
    } else {
        command.to_string()
    };
    let ports: Vec<PortEntry> = c
        .get("Ports")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|p| PortEntry {
                    ip: str_of(p, "IP").to_string(),
                    private: p
                        .get("PrivatePort")
                        .and_then(Value::as_u64)
                        .and_then(|x| u16::try_from(x).ok())
                        .unwrap_or(0),
                    public: p
                        .get("PublicPort")
                        .and_then(Value::as_u64)
                        .and_then(|x| u16::try_from(x).ok())
                        .unwrap_or(0),
                    proto: str_of(p, "Type").to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    let mut labels: Vec<String> = c
        .get("Labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    labels.sort();
    let networks: Vec<String> = c
        .pointer("/NetworkSettings/Networks")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let mounts: Vec<String> = c
        .get("Mounts")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|m| {
                    let name = str_of(m, "Name");
                    let name = if name.is_empty() {
                        str_of(m, "Source")
                    } else {
                        name
                    };
                    if trunc {
                        format::ellipsis(name, 15)
                    } else {
                        name.to_string()
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let created = c.get("Created").and_then(Value::as_i64).unwrap_or(0);
    // docker's `Size()`: writable size, plus the virtual size when it differs.
    let srw = units::human_size_prec(c.get("SizeRw").and_then(Value::as_f64).unwrap_or(0.0), 3);
    let root = c.get("SizeRootFs").and_then(Value::as_f64).unwrap_or(0.0);
    let sf = if root > 0.0 {
        units::human_size_prec(root, 3)
    } else {
        srw.clone()
    };
    let size = if sf == srw {
        srw
    } else {
        format!("{srw} (virtual {sf})")
    };
    json!({
        "ID": if trunc { format::trunc_id(id) } else { id.to_string() },
        "Image": image,
        "Command": format!("{command:?}"),
        "CreatedAt": go_time(created),
        "RunningFor": ago(created),
        "Ports": format::display_ports(&ports),
        "State": str_of(c, "State"),
        "Status": str_of(c, "Status"),
        "Size": size,
        "Names": names.join(","),
        "Labels": labels.join(","),
        "Mounts": mounts.join(","),
        "Networks": networks.join(","),
        "LocalVolumes": c.get("Mounts").and_then(Value::as_array).map_or(0, |a| a.iter().filter(|m| str_of(m, "Type") == "volume").count()).to_string(),
    })
}

/// Turns `--filter k=v` flags into the API's JSON filter map.
pub(crate) fn filters_json(filters: &[String]) -> anyhow::Result<Option<String>> {
    if filters.is_empty() {
        return Ok(None);
    }
    let mut m: HashMap<String, HashMap<String, bool>> = HashMap::new();
    for f in filters {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("invalid argument {f:?} for \"-f, --filter\" flag: bad format of filter (expected name=value)"))?;
        m.entry(k.trim().to_lowercase())
            .or_default()
            .insert(v.to_string(), true);
    }
    Ok(Some(serde_json::to_string(&m)?))
}

/// Percent-encodes a query value.
pub(crate) fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `ps`.
pub(crate) async fn ps(ctx: &Ctx, a: PsArgs) -> anyhow::Result<()> {
    let mut q = vec![format!(
        "all={}",
        u8::from(a.all || a.latest || a.last.is_some())
    )];
    if a.latest {
        q.push("limit=1".into());
    } else if let Some(n) = a.last {
        q.push(format!("limit={n}"));
    }
    // Like docker, ask for sizes when the output will show them.
    let wants_size = a.size
        || a.format
            .as_deref()
            .is_some_and(|f| f.contains(".Size") || f == "json" || f.contains("json ."));
    if wants_size && !a.quiet {
        q.push("size=1".into());
    }
    if let Some(f) = filters_json(&a.filter)? {
        q.push(format!("filters={}", enc(&f)));
    }
    let body = ctx
        .raw
        .call(
            "GET",
            &format!("/containers/json?{}", q.join("&")),
            &[],
            None,
        )
        .await?;
    let list: Vec<Value> = serde_json::from_slice(&body)?;
    let trunc = !a.no_trunc;
    let rows: Vec<Value> = list.iter().map(|c| ps_row(c, trunc)).collect();
    let fmt = match (&a.format, a.quiet) {
        (_, true) => "{{.ID}}".to_string(),
        (Some(f), false) => f.clone(),
        (None, false) if a.size => format!("{}\t{{{{.Size}}}}", format::PS_TABLE),
        (None, false) => format::PS_TABLE.to_string(),
    };
    let f = Formatter::new(&fmt, format::PS_HEADERS)?;
    print!("{}", f.render(&rows)?);
    Ok(())
}

/// `inspect`: containers first, then images; raw JSON or a template per object.
pub(crate) async fn inspect(ctx: &Ctx, a: InspectArgs) -> anyhow::Result<()> {
    let template = a.format.as_deref().map(Template::parse).transpose()?;
    let kinds: Vec<&str> = match a.typ.as_deref() {
        None => vec!["container", "image"],
        Some(t @ ("container" | "image")) => vec![t],
        Some(other) => anyhow::bail!("\"{other}\" is not a valid value for --type"),
    };
    let mut objects: Vec<String> = Vec::new();
    let mut failed = false;
    for name in &a.names {
        let mut found = None;
        let mut last_err = None;
        for kind in &kinds {
            let path = match *kind {
                "container" => format!(
                    "/containers/{}/json{}",
                    enc(name),
                    if a.size { "?size=1" } else { "" }
                ),
                _ => format!("/images/{}/json", enc(name)),
            };
            let r = ctx.raw.request("GET", &path, &[], None).await?;
            if r.status == 404 {
                continue;
            }
            if r.status >= 400 {
                last_err = Some(super::http::api_error(r.status, &r.body));
                break;
            }
            found = Some(String::from_utf8_lossy(&r.body).trim().to_string());
            break;
        }
        match (found, last_err) {
            (Some(raw), _) => objects.push(raw),
            (None, Some(e)) => {
                eprintln!("{e}");
                failed = true;
            }
            (None, None) => {
                eprintln!("Error: No such object: {name}");
                failed = true;
            }
        }
    }
    let mut out = std::io::stdout().lock();
    match template {
        Some(t) => {
            for raw in &objects {
                let v: Value = serde_json::from_str(raw)?;
                writeln!(out, "{}", t.render(&v)?)?;
            }
        }
        None => {
            let joined = format!("[{}]", objects.join(","));
            writeln!(out, "{}", format::indent_json(&joined, "    "))?;
        }
    }
    if failed {
        return Err(Exit(1).into());
    }
    Ok(())
}

/// `top`.
pub(crate) async fn top(ctx: &Ctx, a: TopArgs) -> anyhow::Result<()> {
    let mut path = format!("/containers/{}/top", enc(&a.container));
    if !a.ps_args.is_empty() {
        path.push_str(&format!("?ps_args={}", enc(&a.ps_args.join(" "))));
    }
    let body = ctx.raw.call("GET", &path, &[], None).await?;
    let v: Value = serde_json::from_slice(&body)?;
    let row = |a: &Value| -> String {
        a.as_array()
            .map(|x| {
                x.iter()
                    .map(|c| c.as_str().unwrap_or("").to_string())
                    .collect::<Vec<_>>()
                    .join("\t")
            })
            .unwrap_or_default()
    };
    let mut lines = vec![row(&v["Titles"])];
    if let Some(ps) = v["Processes"].as_array() {
        lines.extend(ps.iter().map(row));
    }
    print!("{}", format::tabwrite_min(&lines, 20));
    Ok(())
}

/// `logs`.
pub(crate) async fn logs(ctx: &Ctx, a: LogsArgs) -> anyhow::Result<()> {
    let now = now_unix();
    let ts = |flag: &str, v: &str| -> anyhow::Result<i32> {
        let t = units::parse_timestamp(v, now)
            .ok_or_else(|| anyhow::anyhow!("invalid value for \"{flag}\": {v:?}"))?;
        Ok(i32::try_from(t)?)
    };
    let mut b = LogsOptionsBuilder::new()
        .stdout(true)
        .stderr(true)
        .follow(a.follow)
        .timestamps(a.timestamps)
        .tail(&a.tail);
    if let Some(s) = &a.since {
        b = b.since(ts("--since", s)?);
    }
    if let Some(u) = &a.until {
        b = b.until(ts("--until", u)?);
    }
    let docker = if a.follow {
        &ctx.docker_slow
    } else {
        &ctx.docker
    };
    let mut s = docker.logs(&a.container, Some(b.build()));
    while let Some(item) = s.next().await {
        match item.map_err(from_bollard)? {
            LogOutput::StdErr { message } => {
                let mut e = std::io::stderr().lock();
                e.write_all(&message)?;
                e.flush()?;
            }
            LogOutput::StdOut { message }
            | LogOutput::Console { message }
            | LogOutput::StdIn { message } => {
                let mut o = std::io::stdout().lock();
                o.write_all(&message)?;
                o.flush()?;
            }
        }
    }
    Ok(())
}

/// `diff`.
pub(crate) async fn diff(ctx: &Ctx, a: NameArg) -> anyhow::Result<()> {
    let body = ctx
        .raw
        .call(
            "GET",
            &format!("/containers/{}/changes", enc(&a.container)),
            &[],
            None,
        )
        .await?;
    let v: Value = serde_json::from_slice(&body)?;
    for ch in v.as_array().into_iter().flatten() {
        let kind = match ch.get("Kind").and_then(Value::as_i64) {
            Some(0) => "C",
            Some(1) => "A",
            Some(2) => "D",
            _ => "?",
        };
        println!("{kind} {}", str_of(ch, "Path"));
    }
    Ok(())
}

/// Writes a byte stream to `-o FILE` or stdout, refusing a terminal like docker.
pub(crate) async fn write_stream<S>(output: Option<&str>, mut s: S) -> anyhow::Result<()>
where
    S: futures::Stream<Item = Result<bytes::Bytes, bollard::errors::Error>> + Unpin,
{
    use std::io::IsTerminal;
    let mut sink: Box<dyn Write> = match output {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .map_err(|e| anyhow::anyhow!("failed to save: {path}: {e}"))?,
        ),
        None => {
            if std::io::stdout().is_terminal() {
                anyhow::bail!(
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect"
                );
            }
            Box::new(std::io::stdout())
        }
    };
    while let Some(chunk) = s.next().await {
        sink.write_all(&chunk.map_err(from_bollard)?)?;
    }
    sink.flush()?;
    Ok(())
}

/// `export`.
pub(crate) async fn export(ctx: &Ctx, a: ExportArgs) -> anyhow::Result<()> {
    let s = ctx.docker_slow.export_container(&a.container);
    write_stream(a.output.as_deref(), Box::pin(s)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_row_formats_docker_columns() {
        let c = json!({
            "Id": "4b6e0a3e4f5d8f1c2b3a4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192",
            "Names": ["/web", "/other/link"],
            "Image": "busybox@sha256:abc",
            "Command": "sh -c 'sleep 1000; echo done'",
            "Created": 0,
            "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}],
            "State": "running",
            "Status": "Up 2 seconds",
            "Labels": {"b": "2", "a": "1"},
        });
        let r = ps_row(&c, true);
        assert_eq!(r["ID"], "4b6e0a3e4f5d");
        assert_eq!(r["Names"], "web");
        assert_eq!(r["Image"], "busybox");
        assert_eq!(r["Command"], "\"sh -c 'sleep 1000; …\"");
        assert_eq!(r["Ports"], "0.0.0.0:8080->80/tcp");
        assert_eq!(r["Labels"], "a=1,b=2");
        assert_eq!(r["CreatedAt"], "1970-01-01 00:00:00 +0000 UTC");
        let r = ps_row(&c, false);
        assert_eq!(r["Names"], "web,other/link");
        assert_eq!(r["Image"], "busybox@sha256:abc");
    }

    #[test]
    fn filters_become_api_json() {
        let j = filters_json(&["status=exited".into(), "label=a=b".into()])
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["status"]["exited"], true);
        assert_eq!(v["label"]["a=b"], true);
        assert!(filters_json(&["nokey".into()]).is_err());
        assert_eq!(filters_json(&[]).unwrap(), None);
    }

    #[test]
    fn enc_percent_encodes() {
        assert_eq!(enc("a b/c{\"}"), "a%20b%2Fc%7B%22%7D");
    }
}
