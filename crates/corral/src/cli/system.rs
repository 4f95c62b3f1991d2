//! `version`, `info`, `system df`/`info`/`events` and `events`.

use std::time::{SystemTime, UNIX_EPOCH};

use bollard::query_parameters::EventsOptionsBuilder;
use clap::{Args, Subcommand};
use futures::StreamExt;
use serde_json::{json, Value};

use super::client::{from_bollard, Ctx};
use super::container::filters_json;
use super::format;
use super::template::Template;
use super::units;

/// `version` arguments.
#[derive(Args, Debug)]
pub(crate) struct VersionArgs {
    /// Format output using a custom template.
    #[arg(short = 'f', long)]
    pub(crate) format: Option<String>,
}

/// `info` arguments.
#[derive(Args, Debug)]
pub(crate) struct InfoArgs {
    /// Format output using a custom template.
    #[arg(short = 'f', long)]
    pub(crate) format: Option<String>,
}

/// `system df` arguments.
#[derive(Args, Debug)]
pub(crate) struct DfArgs {
    /// Show detailed information on space usage.
    #[arg(short = 'v', long)]
    pub(crate) verbose: bool,
    /// Format output using a custom template.
    #[arg(long)]
    pub(crate) format: Option<String>,
}

/// `events` arguments.
#[derive(Args, Debug)]
pub(crate) struct EventsArgs {
    /// Show all events created since timestamp.
    #[arg(long)]
    pub(crate) since: Option<String>,
    /// Stream events until this timestamp.
    #[arg(long)]
    pub(crate) until: Option<String>,
    /// Filter output based on conditions provided.
    #[arg(short = 'f', long)]
    pub(crate) filter: Vec<String>,
    /// Format output using a custom template.
    #[arg(long)]
    pub(crate) format: Option<String>,
}

/// `system` subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum SystemCommand {
    /// Show docker disk usage.
    Df(DfArgs),
    /// Display system-wide information.
    Info(InfoArgs),
    /// Get real time events from the server.
    Events(EventsArgs),
}

fn s<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

/// `version`: client part always, server part when reachable.
pub(crate) async fn version(host: &str, a: VersionArgs) -> anyhow::Result<()> {
    let client = json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": bollard::API_DEFAULT_VERSION.to_string(),
        "Os": std::env::consts::OS,
        "Arch": go_arch(),
    });
    let server = match Ctx::connect(host).await {
        Ok(ctx) => {
            let body = ctx.raw.call("GET", "/version", &[], None).await?;
            Ok(serde_json::from_slice::<Value>(&body)?)
        }
        Err(e) => Err(e),
    };
    if let Some(f) = &a.format {
        let doc = json!({"Client": client, "Server": server.as_ref().ok()});
        println!("{}", Template::parse(f)?.render(&doc)?);
        return server.map(|_| ());
    }
    println!("Client:");
    println!(
        " Version:           {}",
        client["Version"].as_str().unwrap_or("")
    );
    println!(
        " API version:       {}",
        client["ApiVersion"].as_str().unwrap_or("")
    );
    println!(
        " OS/Arch:           {}/{}",
        client["Os"].as_str().unwrap_or(""),
        client["Arch"].as_str().unwrap_or("")
    );
    let sv = server?;
    println!();
    let platform = s(&sv, "/Platform/Name");
    println!(
        "Server:{}",
        if platform.is_empty() {
            String::new()
        } else {
            format!(" {platform}")
        }
    );
    println!(" Engine:");
    println!("  Version:          {}", s(&sv, "/Version"));
    println!(
        "  API version:      {} (minimum version {})",
        s(&sv, "/ApiVersion"),
        s(&sv, "/MinAPIVersion")
    );
    println!("  Go version:       {}", s(&sv, "/GoVersion"));
    println!("  Git commit:       {}", s(&sv, "/GitCommit"));
    println!("  Built:            {}", s(&sv, "/BuildTime"));
    println!("  OS/Arch:          {}/{}", s(&sv, "/Os"), s(&sv, "/Arch"));
    println!(
        "  Experimental:     {}",
        sv.get("Experimental")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    );
    for c in sv
        .get("Components")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = s(c, "/Name");
        if name == "Engine" {
            continue;
        }
        println!(" {name}:");
        println!("  Version:          {}", s(c, "/Version"));
        if let Some(commit) = c.pointer("/Details/GitCommit").and_then(Value::as_str) {
            println!("  GitCommit:        {commit}");
        }
    }
    Ok(())
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// `info`.
pub(crate) async fn info(ctx: &Ctx, a: InfoArgs) -> anyhow::Result<()> {
    let v: Value = serde_json::from_slice(&ctx.raw.call("GET", "/info", &[], None).await?)?;
    if let Some(f) = &a.format {
        println!("{}", Template::parse(f)?.render(&v)?);
        return Ok(());
    }
    let n = |p: &str| {
        v.pointer(p)
            .map_or_else(|| "0".to_string(), template_display)
    };
    let mut out = String::new();
    out.push_str("Client:\n");
    out.push_str(&format!(" Version:    {}\n", env!("CARGO_PKG_VERSION")));
    out.push_str(" Context:    default\n Debug Mode: false\n\nServer:\n");
    out.push_str(&format!(" Containers: {}\n", n("/Containers")));
    out.push_str(&format!(
        "  Running: {}\n  Paused: {}\n  Stopped: {}\n",
        n("/ContainersRunning"),
        n("/ContainersPaused"),
        n("/ContainersStopped")
    ));
    out.push_str(&format!(" Images: {}\n", n("/Images")));
    out.push_str(&format!(" Server Version: {}\n", s(&v, "/ServerVersion")));
    out.push_str(&format!(" Storage Driver: {}\n", s(&v, "/Driver")));
    out.push_str(&format!(" Logging Driver: {}\n", s(&v, "/LoggingDriver")));
    out.push_str(&format!(" Cgroup Driver: {}\n", s(&v, "/CgroupDriver")));
    out.push_str(&format!(" Cgroup Version: {}\n", s(&v, "/CgroupVersion")));
    let mut runtimes: Vec<String> = v
        .get("Runtimes")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    runtimes.sort();
    out.push_str(&format!(" Runtimes: {}\n", runtimes.join(" ")));
    out.push_str(&format!(" Default Runtime: {}\n", s(&v, "/DefaultRuntime")));
    out.push_str(&format!(" Kernel Version: {}\n", s(&v, "/KernelVersion")));
    out.push_str(&format!(
        " Operating System: {}\n",
        s(&v, "/OperatingSystem")
    ));
    out.push_str(&format!(" OSType: {}\n", s(&v, "/OSType")));
    out.push_str(&format!(" Architecture: {}\n", s(&v, "/Architecture")));
    out.push_str(&format!(" CPUs: {}\n", n("/NCPU")));
    out.push_str(&format!(
        " Total Memory: {}\n",
        units::bytes_size(v.get("MemTotal").and_then(Value::as_f64).unwrap_or(0.0))
    ));
    out.push_str(&format!(" Name: {}\n", s(&v, "/Name")));
    out.push_str(&format!(" ID: {}\n", s(&v, "/ID")));
    out.push_str(&format!(" Docker Root Dir: {}\n", s(&v, "/DockerRootDir")));
    out.push_str(&format!(
        " Debug Mode: {}\n",
        v.get("Debug").and_then(Value::as_bool).unwrap_or(false)
    ));
    out.push_str(&format!(
        " Experimental: {}\n",
        v.get("ExperimentalBuild")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    ));
    out.push_str(&format!(
        " Live Restore Enabled: {}\n",
        v.get("LiveRestoreEnabled")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    ));
    print!("{out}");
    for w in v
        .get("Warnings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(w) = w.as_str() {
            eprintln!("{w}");
        }
    }
    Ok(())
}

fn template_display(v: &Value) -> String {
    super::template::display(v)
}

/// `(size, reclaimable)` → docker's `RECLAIMABLE` cell.
fn reclaimable(total: f64, reclaim: f64) -> String {
    if total > 0.0 {
        let pct = (reclaim * 100.0 / total).floor();
        format!("{} ({pct}%)", units::human_size(reclaim))
    } else {
        units::human_size(reclaim)
    }
}

/// Builds the `system df` summary lines (tab-separated) from `/system/df`.
pub(crate) fn df_lines(v: &Value) -> Vec<String> {
    let arr = |k: &str| {
        v.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let num = |x: &Value, k: &str| x.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    let images = arr("Images");
    let active_images = images.iter().filter(|i| num(i, "Containers") > 0.0).count();
    let img_size = v
        .get("LayersSize")
        .and_then(Value::as_f64)
        .unwrap_or_else(|| images.iter().map(|i| num(i, "Size")).sum());
    let used: f64 = images
        .iter()
        .filter(|i| num(i, "Containers") > 0.0)
        .map(|i| num(i, "Size") - num(i, "SharedSize").max(0.0))
        .sum();
    let img_reclaim = (img_size - used).max(0.0);
    let containers = arr("Containers");
    let running = containers
        .iter()
        .filter(|c| c.get("State").and_then(Value::as_str) == Some("running"))
        .count();
    let c_size: f64 = containers.iter().map(|c| num(c, "SizeRw")).sum();
    let c_reclaim: f64 = containers
        .iter()
        .filter(|c| c.get("State").and_then(Value::as_str) != Some("running"))
        .map(|c| num(c, "SizeRw"))
        .sum();
    let vols = arr("Volumes");
    let vol_size: f64 = vols
        .iter()
        .map(|x| {
            x.pointer("/UsageData/Size")
                .and_then(Value::as_f64)
                .unwrap_or(0.0)
                .max(0.0)
        })
        .sum();
    let active_vols = vols
        .iter()
        .filter(|x| {
            x.pointer("/UsageData/RefCount")
                .and_then(Value::as_f64)
                .unwrap_or(0.0)
                > 0.0
        })
        .count();
    let vol_reclaim: f64 = vols
        .iter()
        .filter(|x| {
            x.pointer("/UsageData/RefCount")
                .and_then(Value::as_f64)
                .unwrap_or(0.0)
                == 0.0
        })
        .map(|x| {
            x.pointer("/UsageData/Size")
                .and_then(Value::as_f64)
                .unwrap_or(0.0)
                .max(0.0)
        })
        .sum();
    let cache = arr("BuildCache");
    let cache_size: f64 = cache.iter().map(|c| num(c, "Size")).sum();
    let cache_active = cache
        .iter()
        .filter(|c| c.get("InUse").and_then(Value::as_bool) == Some(true))
        .count();
    let cache_reclaim: f64 = cache
        .iter()
        .filter(|c| c.get("Shared").and_then(Value::as_bool) != Some(true))
        .map(|c| num(c, "Size"))
        .sum();
    vec![
        "TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE".to_string(),
        format!(
            "Images\t{}\t{}\t{}\t{}",
            images.len(),
            active_images,
            units::human_size(img_size),
            reclaimable(img_size, img_reclaim)
        ),
        format!(
            "Containers\t{}\t{}\t{}\t{}",
            containers.len(),
            running,
            units::human_size(c_size),
            reclaimable(c_size, c_reclaim)
        ),
        format!(
            "Local Volumes\t{}\t{}\t{}\t{}",
            vols.len(),
            active_vols,
            units::human_size(vol_size),
            reclaimable(vol_size, vol_reclaim)
        ),
        format!(
            "Build Cache\t{}\t{}\t{}\t{}",
            cache.len(),
            cache_active,
            units::human_size(cache_size),
            units::human_size(cache_reclaim)
        ),
    ]
}

/// `system ...` subcommands.
pub(crate) async fn system_command(ctx: &Ctx, c: SystemCommand) -> anyhow::Result<()> {
    match c {
        SystemCommand::Df(a) => {
            let v: Value =
                serde_json::from_slice(&ctx.raw.call("GET", "/system/df", &[], None).await?)?;
            if let Some(f) = &a.format {
                println!("{}", Template::parse(f)?.render(&v)?);
                return Ok(());
            }
            print!("{}", format::tabwrite(&df_lines(&v)));
            Ok(())
        }
        SystemCommand::Info(a) => info(ctx, a).await,
        SystemCommand::Events(a) => events(ctx, a).await,
    }
}

/// Go's `RFC3339Nano` in UTC (trailing zeros of the fraction trimmed).
pub(crate) fn rfc3339_nano(nanos: i64) -> String {
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000);
    let base = chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
        .unwrap_or_default();
    if frac == 0 {
        format!("{base}Z")
    } else {
        let f = format!("{frac:09}");
        format!("{base}.{}Z", f.trim_end_matches('0'))
    }
}

/// docker's default one-line event rendering.
pub(crate) fn event_line(e: &Value) -> String {
    let nanos = e
        .get("timeNano")
        .and_then(Value::as_i64)
        .unwrap_or_else(|| e.get("time").and_then(Value::as_i64).unwrap_or(0) * 1_000_000_000);
    let mut attrs: Vec<String> = e
        .pointer("/Actor/Attributes")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    attrs.sort();
    let mut line = format!(
        "{} {} {} {}",
        rfc3339_nano(nanos),
        s(e, "/Type"),
        s(e, "/Action"),
        s(e, "/Actor/ID")
    );
    if !attrs.is_empty() {
        line.push_str(&format!(" ({})", attrs.join(", ")));
    }
    line
}

/// `events`.
pub(crate) async fn events(ctx: &Ctx, a: EventsArgs) -> anyhow::Result<()> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    let mut b = EventsOptionsBuilder::new();
    let ts = |v: &str| {
        // Unix seconds go as given, fraction included (as the docker CLI sends them).
        if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Ok(v.to_owned());
        }
        units::parse_timestamp(v, now)
            .map(|t| t.to_string())
            .ok_or_else(|| anyhow::anyhow!("invalid timestamp {v:?}"))
    };
    if let Some(since) = &a.since {
        b = b.since(&ts(since)?);
    }
    if let Some(until) = &a.until {
        b = b.until(&ts(until)?);
    }
    if let Some(f) = filters_json(&a.filter)? {
        let m: std::collections::HashMap<String, std::collections::HashMap<String, bool>> =
            serde_json::from_str(&f)?;
        let lists: std::collections::HashMap<String, Vec<String>> = m
            .into_iter()
            .map(|(k, v)| (k, v.into_keys().collect()))
            .collect();
        b = b.filters(&lists);
    }
    let template = match a.format.as_deref() {
        Some("json") => Some(Template::parse("{{json .}}")?),
        Some(f) => Some(Template::parse(f)?),
        None => None,
    };
    let mut st = ctx.docker_slow.events(Some(b.build()));
    while let Some(ev) = st.next().await {
        let ev = ev.map_err(from_bollard)?;
        let v = serde_json::to_value(&ev)?;
        match &template {
            Some(t) => println!("{}", t.render(&v)?),
            None => println!("{}", event_line(&v)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn df_summarises_usage() {
        let v = json!({
            "LayersSize": 2000,
            "Images": [{"Size": 2000, "SharedSize": 0, "Containers": 1}],
            "Containers": [{"State": "exited", "SizeRw": 100}, {"State": "running", "SizeRw": 0}],
            "Volumes": [],
            "BuildCache": []
        });
        let lines = df_lines(&v);
        assert_eq!(lines[1], "Images\t1\t1\t2kB\t0B (0%)");
        assert_eq!(lines[2], "Containers\t2\t1\t100B\t100B (100%)");
        assert_eq!(lines[3], "Local Volumes\t0\t0\t0B\t0B");
    }

    #[test]
    fn events_render_like_docker() {
        let e = json!({"Type": "container", "Action": "start", "Actor": {"ID": "abc", "Attributes": {"name": "x", "image": "busybox"}}, "time": 1, "timeNano": 1_500_000_000i64});
        assert_eq!(
            event_line(&e),
            "1970-01-01T00:00:01.5Z container start abc (image=busybox, name=x)"
        );
        assert_eq!(rfc3339_nano(0), "1970-01-01T00:00:00Z");
    }
}
