//! The other `compose` commands: down, ps, start/stop/restart, pull, top, events,
//! scale. Each finds the project's containers by compose's labels.

use std::collections::{BTreeMap, BTreeSet};

use clap::Args;
use corral_compose::{labels, Project};
use futures::StreamExt;
use serde_json::Value;

use super::up::{is_status, remove};
use super::{list_containers, progress, selected, Existing, Loaded};
use crate::cli::client::Ctx;
use crate::cli::container::enc;
use crate::cli::format;
use crate::cli::image::{pull_image, PullOutput};

/// Service names.
#[derive(Args, Debug)]
pub(crate) struct Services {
    /// Services (default: all).
    pub(crate) services: Vec<String>,
}

/// `stop`/`restart` flags.
#[derive(Args, Debug)]
pub(crate) struct StopArgs {
    /// Shutdown timeout in seconds.
    #[arg(short = 't', long = "timeout")]
    timeout: Option<u32>,
    /// Services (default: all).
    pub(crate) services: Vec<String>,
}

/// `down` flags.
#[derive(Args, Debug, Default)]
pub(crate) struct DownArgs {
    /// Remove named volumes declared in the volumes section and anonymous volumes.
    #[arg(short = 'v', long = "volumes")]
    volumes: bool,
    /// Remove containers of services not defined in the compose file.
    #[arg(long = "remove-orphans")]
    remove_orphans: bool,
    /// Shutdown timeout in seconds.
    #[arg(short = 't', long = "timeout")]
    timeout: Option<u32>,
}

/// `ps` flags.
#[derive(Args, Debug)]
pub(crate) struct PsArgs {
    /// Only display IDs.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Show all stopped containers too.
    #[arg(short = 'a', long)]
    all: bool,
    /// Display services.
    #[arg(long)]
    services: bool,
    /// Format the output: `table` (default), `json` (one object per line), or a Go
    /// template such as `{{.Name}} {{.State}}`.
    #[arg(long, default_value = "table")]
    format: String,
    /// Filter by state (repeatable): paused, restarting, removing, running, dead,
    /// created, exited. Implies `-a`.
    #[arg(long)]
    status: Vec<String>,
    /// Filter by a property (`status=<state>`).
    #[arg(long)]
    filter: Vec<String>,
    /// Don't truncate output.
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Services to list (default: all).
    names: Vec<String>,
}

/// The states `compose ps --status` accepts.
const PS_STATES: &[&str] = &[
    "paused",
    "restarting",
    "removing",
    "running",
    "dead",
    "created",
    "exited",
];

/// Columns of `compose ps --format table`.
const COMPOSE_PS_TABLE: &str =
    "table {{.Name}}\t{{.Image}}\t{{.Command}}\t{{.Service}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}";

/// Headers of the `compose ps` fields.
const COMPOSE_PS_HEADERS: &[(&str, &str)] = &[
    ("Name", "NAME"),
    ("Names", "NAMES"),
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("Service", "SERVICE"),
    ("Project", "PROJECT"),
    ("RunningFor", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Status", "STATUS"),
    ("State", "STATE"),
    ("Health", "HEALTH"),
    ("ExitCode", "EXIT CODE"),
    ("Ports", "PORTS"),
    ("Publishers", "PUBLISHERS"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
    ("Size", "SIZE"),
];

impl PsArgs {
    /// The states to keep (`--status` and `--filter status=`), checked.
    fn states(&self) -> anyhow::Result<Vec<String>> {
        let mut states = self.status.clone();
        for f in &self.filter {
            match f.split_once('=') {
                Some(("status", v)) => states.push(v.to_string()),
                Some((k, _)) => anyhow::bail!("unsupported filter key: {k:?} (supported: status)"),
                None => anyhow::bail!("bad format of filter (expected name=value): {f:?}"),
            }
        }
        for st in &states {
            if !PS_STATES.contains(&st.as_str()) {
                anyhow::bail!("invalid status {st:?}: one of {}", PS_STATES.join(", "));
            }
        }
        Ok(states)
    }
}

/// One `compose ps` row: docker's `ps` fields of the container plus compose's
/// (`Name`, `Service`, `Project`, `Health`, `ExitCode`, `Publishers`).
fn compose_ps_row(c: &Existing, project: &str, trunc: bool) -> Value {
    let mut row = crate::cli::container::ps_row(&c.raw, trunc);
    let status = c.raw["Status"].as_str().unwrap_or_default();
    let health = if status.contains("(healthy)") {
        "healthy"
    } else if status.contains("(unhealthy)") {
        "unhealthy"
    } else if status.contains("(health: starting)") {
        "starting"
    } else {
        ""
    };
    // `Exited (3) 2 seconds ago`: the list carries the code only in the status.
    let exit_code = status
        .strip_prefix("Exited (")
        .and_then(|r| r.split_once(')'))
        .and_then(|(n, _)| n.parse::<i64>().ok())
        .unwrap_or(0);
    let publishers: Vec<Value> = c.raw["Ports"]
        .as_array()
        .map(|ports| {
            ports
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "URL": p["IP"].as_str().unwrap_or_default(),
                        "TargetPort": p["PrivatePort"].as_u64().unwrap_or(0),
                        "PublishedPort": p["PublicPort"].as_u64().unwrap_or(0),
                        "Protocol": p["Type"].as_str().unwrap_or_default(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    if let Some(m) = row.as_object_mut() {
        m.insert("Name".into(), Value::String(c.name.clone()));
        m.insert("Service".into(), Value::String(c.service.clone()));
        m.insert("Project".into(), Value::String(project.to_string()));
        m.insert("Health".into(), Value::String(health.into()));
        m.insert("ExitCode".into(), Value::from(exit_code));
        m.insert("Publishers".into(), Value::Array(publishers));
    }
    row
}

/// `events` flags.
#[derive(Args, Debug)]
pub(crate) struct EventsArgs {
    /// Output events as a stream of JSON objects.
    #[arg(long)]
    json: bool,
    /// Services (default: all).
    pub(crate) services: Vec<String>,
}

/// `scale` arguments.
#[derive(Args, Debug)]
pub(crate) struct ScaleArgs {
    /// Do not start linked services.
    #[arg(long = "no-deps")]
    pub(crate) no_deps: bool,
    /// `SERVICE=REPLICAS` pairs.
    #[arg(required = true)]
    pub(crate) scale: Vec<String>,
}

/// Parses `svc=N` pairs.
pub(crate) fn parse_scale(pairs: &[String]) -> anyhow::Result<BTreeMap<String, u32>> {
    pairs
        .iter()
        .map(|p| {
            let (s, n) = p
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("invalid scale {p:?}: expected SERVICE=NUM"))?;
            let n: u32 = n
                .parse()
                .map_err(|_| anyhow::anyhow!("invalid scale {p:?}: {n:?} is not a number"))?;
            Ok((s.to_string(), n))
        })
        .collect()
}

/// `compose down`.
pub(crate) async fn down(ctx: &Ctx, l: Result<Loaded, String>, a: &DownArgs) -> anyhow::Result<()> {
    let name = match &l {
        Ok(l) => l.project.name.clone(),
        Err(n) => n.clone(),
    };
    let project = l.ok().map(|l| l.project);
    let known: Option<BTreeSet<String>> = project.as_ref().map(|p| {
        p.services
            .keys()
            .chain(p.disabled_services.keys())
            .cloned()
            .collect()
    });
    let mut list = list_containers(ctx, &name, true).await?;
    // Reverse dependency order: dependents stop first.
    if let Some(p) = &project {
        let order = corral_compose::dependency_order(p);
        let rank = |s: &str| order.iter().position(|o| o == s).unwrap_or(usize::MAX);
        list.sort_by_key(|c| std::cmp::Reverse((rank(&c.service), c.number)));
    }
    let mut orphans = Vec::new();
    let mut anonymous: BTreeSet<String> = BTreeSet::new();
    for c in &list {
        let orphan = known.as_ref().is_some_and(|k| !k.contains(&c.service));
        if orphan && !a.remove_orphans {
            orphans.push(c.name.clone());
            continue;
        }
        if a.volumes {
            anonymous.extend(anonymous_volumes(ctx, &c.id).await?);
        }
        progress("Container", &c.name, "Stopping");
        remove(ctx, &c.id, a.timeout, a.volumes).await?;
        progress("Container", &c.name, "Removed");
    }
    // A recreated container mounts its predecessor's anonymous volumes by name, so
    // `rm -v` does not see them as anonymous any more: remove them here.
    for v in anonymous {
        match ctx
            .raw
            .call("DELETE", &format!("/volumes/{}", enc(&v)), &[], None)
            .await
        {
            Ok(_) => progress("Volume", &v, "Removed"),
            Err(e) if is_status(&e, 404) || is_status(&e, 409) => {}
            Err(e) => return Err(e),
        }
    }
    if !orphans.is_empty() {
        eprintln!(
            "WARN[0000] Found orphan containers ({}) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
            orphans.join(", ")
        );
    }
    // Networks and volumes: the ones labelled for this project (external ones never are).
    let filters = serde_json::json!({"label": [format!("{}={name}", labels::PROJECT)]}).to_string();
    let body = ctx
        .raw
        .call(
            "GET",
            &format!("/networks?filters={}", enc(&filters)),
            &[],
            None,
        )
        .await?;
    let nets: Vec<Value> = serde_json::from_slice(&body)?;
    // Checked here too: an engine that ignores the filter must not lose its networks.
    let ours = |v: &Value| v["Labels"][labels::PROJECT].as_str() == Some(name.as_str());
    for n in nets.iter().filter(|n| ours(n)) {
        let nname = n["Name"].as_str().unwrap_or_default().to_string();
        progress("Network", &nname, "Removing");
        match ctx
            .raw
            .call("DELETE", &format!("/networks/{}", enc(&nname)), &[], None)
            .await
        {
            Ok(_) => progress("Network", &nname, "Removed"),
            Err(e) if is_status(&e, 404) => {}
            Err(e) => return Err(e),
        }
    }
    if a.volumes {
        let body = ctx
            .raw
            .call(
                "GET",
                &format!("/volumes?filters={}", enc(&filters)),
                &[],
                None,
            )
            .await?;
        let v: Value = serde_json::from_slice(&body)?;
        for vol in v["Volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| ours(v))
        {
            let vname = vol["Name"].as_str().unwrap_or_default().to_string();
            match ctx
                .raw
                .call("DELETE", &format!("/volumes/{}", enc(&vname)), &[], None)
                .await
            {
                Ok(_) => progress("Volume", &vname, "Removed"),
                Err(e) if is_status(&e, 404) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Names of the volumes with anonymous (64 hex) names mounted by container `id`.
async fn anonymous_volumes(ctx: &Ctx, id: &str) -> anyhow::Result<Vec<String>> {
    let body = match ctx
        .raw
        .call("GET", &format!("/containers/{id}/json"), &[], None)
        .await
    {
        Ok(b) => b,
        Err(e) if is_status(&e, 404) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let v: Value = serde_json::from_slice(&body)?;
    Ok(v["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["Type"] == "volume")
        .filter_map(|m| m["Name"].as_str())
        .filter(|n| n.len() == 64 && n.chars().all(|c| c.is_ascii_hexdigit()))
        .map(str::to_string)
        .collect())
}

/// `compose ps`.
pub(crate) async fn ps(ctx: &Ctx, project: &str, a: &PsArgs) -> anyhow::Result<()> {
    let states = a.states()?;
    let format = match a.format.as_str() {
        "table" => COMPOSE_PS_TABLE,
        f => f,
    };
    let formatter =
        format::Formatter::new(format, COMPOSE_PS_HEADERS).map_err(|e| anyhow::anyhow!("{e}"))?;
    let list: Vec<Existing> = list_containers(ctx, project, a.all || !states.is_empty())
        .await?
        .into_iter()
        .filter(|c| a.names.is_empty() || a.names.contains(&c.service))
        .filter(|c| states.is_empty() || states.contains(&c.state))
        .collect();
    if a.quiet {
        for c in &list {
            println!("{}", c.id);
        }
        return Ok(());
    }
    if a.services {
        let s: BTreeSet<&str> = list.iter().map(|c| c.service.as_str()).collect();
        for s in s {
            println!("{s}");
        }
        return Ok(());
    }
    let rows: Vec<Value> = list
        .iter()
        .map(|c| compose_ps_row(c, project, !a.no_trunc))
        .collect();
    print!(
        "{}",
        formatter
            .render(&rows)
            .map_err(|e| anyhow::anyhow!("{e}"))?
    );
    Ok(())
}

fn containers_of<'a>(list: &'a [Existing], services: &[String]) -> Vec<&'a Existing> {
    list.iter()
        .filter(|c| !c.oneoff && services.contains(&c.service))
        .collect()
}

/// `compose start`.
pub(crate) async fn start(ctx: &Ctx, p: &Project, a: &Services) -> anyhow::Result<()> {
    let services = selected(p, &a.services)?;
    let list = list_containers(ctx, &p.name, true).await?;
    let mine = containers_of(&list, &services);
    if mine.is_empty() {
        anyhow::bail!(
            "service(s) {} have no container to start",
            services.join(", ")
        );
    }
    for name in &services {
        for c in mine.iter().filter(|c| &c.service == name) {
            if c.state != "running" {
                ctx.raw
                    .call("POST", &format!("/containers/{}/start", c.id), &[], None)
                    .await?;
            }
            progress("Container", &c.name, "Started");
        }
    }
    Ok(())
}

/// `compose stop` and `compose restart`.
pub(crate) async fn stop(
    ctx: &Ctx,
    p: &Project,
    a: &StopArgs,
    restart: bool,
) -> anyhow::Result<()> {
    let mut services = selected(p, &a.services)?;
    let list = list_containers(ctx, &p.name, true).await?;
    let t = a.timeout.map(|t| format!("?t={t}")).unwrap_or_default();
    if !restart {
        services.reverse();
    }
    for name in &services {
        for c in containers_of(&list, std::slice::from_ref(name)) {
            let action = if restart { "restart" } else { "stop" };
            ctx.raw
                .call(
                    "POST",
                    &format!("/containers/{}/{action}{t}", c.id),
                    &[],
                    None,
                )
                .await?;
            progress(
                "Container",
                &c.name,
                if restart { "Started" } else { "Stopped" },
            );
        }
    }
    Ok(())
}

/// `compose pull`.
pub(crate) async fn pull(ctx: &Ctx, p: &Project, a: &Services) -> anyhow::Result<()> {
    let services = selected(p, &a.services)?;
    let mut done = BTreeSet::new();
    for s in services {
        let Some(image) = p.services[&s].image.clone() else {
            continue;
        };
        if done.insert(image.clone()) {
            progress("Image", &image, "Pulling");
            pull_image(ctx, &image, PullOutput::Quiet).await?;
            progress("Image", &image, "Pulled");
        }
    }
    Ok(())
}

/// `compose top`.
pub(crate) async fn top(ctx: &Ctx, p: &Project, a: &Services) -> anyhow::Result<()> {
    let services = selected(p, &a.services)?;
    let list = list_containers(ctx, &p.name, false).await?;
    let mut first = true;
    for c in list.iter().filter(|c| services.contains(&c.service)) {
        let body = ctx
            .raw
            .call("GET", &format!("/containers/{}/top", c.id), &[], None)
            .await?;
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
        if !first {
            println!();
        }
        first = false;
        println!("{}", c.name);
        let mut lines = vec![row(&v["Titles"])];
        lines.extend(v["Processes"].as_array().into_iter().flatten().map(row));
        print!("{}", format::tabwrite(&lines));
    }
    Ok(())
}

/// `compose events`: the project's container events until interrupted.
pub(crate) async fn events(ctx: &Ctx, p: &Project, a: &EventsArgs) -> anyhow::Result<()> {
    let services = selected(p, &a.services)?;
    let mut filters: BTreeMap<String, Vec<String>> = BTreeMap::new();
    filters.insert(
        "label".into(),
        vec![format!("{}={}", labels::PROJECT, p.name)],
    );
    filters.insert("type".into(), vec!["container".into()]);
    let opts = bollard::query_parameters::EventsOptionsBuilder::new()
        .filters(&filters.into_iter().collect())
        .build();
    let mut st = ctx.docker_slow.events(Some(opts));
    while let Some(ev) = st.next().await {
        let ev = ev.map_err(crate::cli::client::from_bollard)?;
        let v = serde_json::to_value(&ev)?;
        let attrs = &v["Actor"]["Attributes"];
        let service = attrs[labels::SERVICE].as_str().unwrap_or_default();
        if !services.iter().any(|s| s == service) {
            continue;
        }
        if a.json {
            let out = serde_json::json!({
                "time": v["time"],
                "type": v["Type"],
                "action": v["Action"],
                "id": v["Actor"]["ID"],
                "service": service,
                "attributes": attrs,
            });
            println!("{out}");
        } else {
            let time = v["time"].as_i64().unwrap_or(0);
            let attr_text: Vec<String> = attrs
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| !k.starts_with("com.docker.compose."))
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect();
            println!(
                "{} container {} {} ({})",
                crate::cli::container::go_time(time),
                v["Action"].as_str().unwrap_or_default(),
                v["Actor"]["ID"].as_str().unwrap_or_default(),
                attr_text.join(", ")
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scale_pairs() {
        let m = parse_scale(&["web=3".into(), "worker=0".into()]).unwrap();
        assert_eq!(m["web"], 3);
        assert_eq!(m["worker"], 0);
        assert!(parse_scale(&["web".into()]).is_err());
        assert!(parse_scale(&["web=x".into()]).is_err());
    }
}
