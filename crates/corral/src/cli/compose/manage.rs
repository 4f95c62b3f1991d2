//! `compose rm`, `kill`, `pause`/`unpause`, `port`, `images`, `ls`, `wait` and `cp`: commands on
//! the project's existing containers, found by compose's labels as the others are.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use clap::Args;
use corral_compose::{labels, Project};
use futures::StreamExt;
use serde_json::Value;

use super::up::is_status;
use super::{list_containers, progress, selected, Existing};
use crate::cli::client::Ctx;
use crate::cli::container::enc;
use crate::cli::cp::{self, split_arg, Endpoint};
use crate::cli::format;
use crate::cli::image::split_ref;
use crate::cli::units;

/// `rm` flags.
#[derive(Args, Debug)]
pub(crate) struct RmArgs {
    /// Don't ask to confirm removal.
    #[arg(short = 'f', long)]
    force: bool,
    /// Stop the containers, if required, before removing.
    #[arg(short = 's', long)]
    stop: bool,
    /// Remove any anonymous volumes attached to containers.
    #[arg(short = 'v', long)]
    volumes: bool,
    /// Services (default: all).
    pub(crate) services: Vec<String>,
}

/// `kill` flags.
#[derive(Args, Debug)]
pub(crate) struct KillArgs {
    /// SIGNAL to send to the container.
    #[arg(short = 's', long, default_value = "SIGKILL")]
    signal: String,
    /// Services (default: all).
    pub(crate) services: Vec<String>,
}

/// `port` arguments.
#[derive(Args, Debug)]
pub(crate) struct PortArgs {
    /// Index of the container if the service has several replicas.
    #[arg(long, default_value_t = 1)]
    index: u32,
    /// tcp or udp.
    #[arg(long, default_value = "tcp")]
    protocol: String,
    /// The service.
    pub(crate) service: String,
    /// The private port.
    private_port: u16,
}

/// `images` flags.
#[derive(Args, Debug)]
pub(crate) struct ImagesArgs {
    /// Only display IDs.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Services (default: all).
    pub(crate) services: Vec<String>,
}

/// `ls` flags.
#[derive(Args, Debug)]
pub(crate) struct LsArgs {
    /// Show all stopped Compose projects.
    #[arg(short = 'a', long)]
    all: bool,
    /// Only display project names.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Format the output: table or json.
    #[arg(long, default_value = "table")]
    format: String,
}

/// `wait` arguments.
#[derive(Args, Debug)]
pub(crate) struct WaitArgs {
    /// Drops the project when the first container stops.
    #[arg(long = "down-project")]
    pub(crate) down_project: bool,
    /// Services.
    #[arg(required = true)]
    pub(crate) services: Vec<String>,
}

/// `cp` arguments.
#[derive(Args, Debug)]
pub(crate) struct CpArgs {
    /// Index of the container if the service has several replicas.
    #[arg(long)]
    index: Option<u32>,
    /// Copy to all the containers of the service.
    #[arg(long)]
    all: bool,
    /// Archive mode (copy all uid/gid information).
    #[arg(short = 'a', long)]
    archive: bool,
    /// Always follow symbol link in SRC_PATH.
    #[arg(short = 'L', long = "follow-link")]
    follow_link: bool,
    /// SERVICE:SRC_PATH or a local path.
    src: String,
    /// SERVICE:DEST_PATH or a local path.
    dst: String,
}

impl CpArgs {
    /// The service named by the container side of the copy.
    pub(crate) fn service(&self) -> anyhow::Result<String> {
        match (split_arg(&self.src), split_arg(&self.dst)) {
            (Endpoint::Container(s, _), Endpoint::Local(_))
            | (Endpoint::Local(_), Endpoint::Container(s, _)) => Ok(s),
            (Endpoint::Container(..), Endpoint::Container(..)) => {
                anyhow::bail!("copying between services is not supported")
            }
            (Endpoint::Local(_), Endpoint::Local(_)) => {
                anyhow::bail!("must specify at least one service: SERVICE:PATH")
            }
        }
    }
}

/// The project's service containers (not one-offs) of `services`, in their order.
fn service_containers<'a>(list: &'a [Existing], services: &[String]) -> Vec<&'a Existing> {
    services
        .iter()
        .flat_map(|s| list.iter().filter(move |c| !c.oneoff && &c.service == s))
        .collect()
}

/// `compose rm`: removes the stopped service containers (all of them with `-s`).
pub(crate) async fn rm(ctx: &Ctx, p: &Project, a: &RmArgs) -> anyhow::Result<()> {
    let services = selected(p, &a.services)?;
    let list = list_containers(ctx, &p.name, true).await?;
    let mine = service_containers(&list, &services);
    if a.stop {
        for c in mine
            .iter()
            .filter(|c| c.state == "running" || c.state == "paused")
        {
            progress("Container", &c.name, "Stopping");
            ctx.raw
                .call("POST", &format!("/containers/{}/stop", c.id), &[], None)
                .await?;
            progress("Container", &c.name, "Stopped");
        }
    }
    let doomed: Vec<&Existing> = if a.stop {
        mine
    } else {
        mine.into_iter()
            .filter(|c| c.state != "running" && c.state != "paused" && c.state != "restarting")
            .collect()
    };
    if doomed.is_empty() {
        eprintln!("No stopped containers");
        return Ok(());
    }
    if !a.force {
        let names: Vec<&str> = doomed.iter().map(|c| c.name.as_str()).collect();
        eprint!(
            "Going to remove {}\n? Are you sure? [y/N] ",
            names.join(", ")
        );
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "Yes") {
            return Ok(());
        }
    }
    for c in doomed {
        progress("Container", &c.name, "Removing");
        match ctx
            .raw
            .call(
                "DELETE",
                &format!("/containers/{}?force=1&v={}", c.id, u8::from(a.volumes)),
                &[],
                None,
            )
            .await
        {
            Ok(_) => {}
            Err(e) if is_status(&e, 404) => {}
            Err(e) => return Err(e),
        }
        progress("Container", &c.name, "Removed");
    }
    Ok(())
}

/// `compose kill`: signals the running service containers.
pub(crate) async fn kill(ctx: &Ctx, p: &Project, a: &KillArgs) -> anyhow::Result<()> {
    let services = selected(p, &a.services)?;
    let list = list_containers(ctx, &p.name, false).await?;
    let mine = service_containers(&list, &services);
    if mine.is_empty() {
        anyhow::bail!("no container found for project \"{}\"", p.name);
    }
    for c in mine {
        progress("Container", &c.name, "Killing");
        ctx.raw
            .call(
                "POST",
                &format!("/containers/{}/kill?signal={}", c.id, enc(&a.signal)),
                &[],
                None,
            )
            .await
            .map_err(|e| anyhow::anyhow!("killing {}: {e:#}", c.name))?;
        progress("Container", &c.name, "Killed");
    }
    Ok(())
}

/// `compose pause` (and `unpause` with `resume`).
pub(crate) async fn pause(
    ctx: &Ctx,
    p: &Project,
    services: &[String],
    resume: bool,
) -> anyhow::Result<()> {
    let services = selected(p, services)?;
    let list = list_containers(ctx, &p.name, false).await?;
    let (action, done, want) = if resume {
        ("unpause", "Unpaused", "paused")
    } else {
        ("pause", "Paused", "running")
    };
    for c in service_containers(&list, &services)
        .into_iter()
        .filter(|c| c.state == want)
    {
        ctx.raw
            .call("POST", &format!("/containers/{}/{action}", c.id), &[], None)
            .await
            .map_err(|e| anyhow::anyhow!("{action} {}: {e:#}", c.name))?;
        progress("Container", &c.name, done);
    }
    Ok(())
}

/// `compose port`: the public address of a service container's private port.
pub(crate) async fn port(ctx: &Ctx, p: &Project, a: &PortArgs) -> anyhow::Result<()> {
    selected(p, std::slice::from_ref(&a.service))?;
    let list = list_containers(ctx, &p.name, false).await?;
    let Some(c) = list
        .iter()
        .find(|c| !c.oneoff && c.service == a.service && c.number == a.index)
    else {
        anyhow::bail!(
            "service \"{}\" is not running container #{}",
            a.service,
            a.index
        );
    };
    let body = ctx
        .raw
        .call("GET", &format!("/containers/{}/json", c.id), &[], None)
        .await?;
    let v: Value = serde_json::from_slice(&body)?;
    let key = format!("{}/{}", a.private_port, a.protocol);
    let binding = v["NetworkSettings"]["Ports"][&key]
        .as_array()
        .and_then(|b| b.first())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no port {key} for container {}: no public port is published",
                c.name
            )
        })?;
    let ip = binding["HostIp"].as_str().unwrap_or_default();
    let port = binding["HostPort"].as_str().unwrap_or_default();
    println!("{}:{port}", if ip.is_empty() { "0.0.0.0" } else { ip });
    Ok(())
}

/// `compose images`: the images the project's containers use.
pub(crate) async fn images(ctx: &Ctx, p: &Project, a: &ImagesArgs) -> anyhow::Result<()> {
    let services = selected(p, &a.services)?;
    let list = list_containers(ctx, &p.name, true).await?;
    let mut lines = vec!["CONTAINER\tREPOSITORY\tTAG\tIMAGE ID\tSIZE".to_string()];
    for c in service_containers(&list, &services) {
        let image_id = c.raw["ImageID"].as_str().unwrap_or_default();
        let img: Value = match ctx
            .raw
            .call("GET", &format!("/images/{}/json", enc(image_id)), &[], None)
            .await
        {
            Ok(b) => serde_json::from_slice(&b)?,
            Err(e) if is_status(&e, 404) => Value::Null,
            Err(e) => return Err(e),
        };
        let short = format::trunc_id(image_id.trim_start_matches("sha256:"));
        if a.quiet {
            println!("{}", image_id.trim_start_matches("sha256:"));
            continue;
        }
        // The tag the container was created from, else the image's first tag.
        let reference = c.raw["Image"].as_str().unwrap_or_default();
        let tags: Vec<&str> = img["RepoTags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let tag = if tags.contains(&reference) || !reference.starts_with("sha256:") {
            reference
        } else {
            tags.first().copied().unwrap_or("<none>:<none>")
        };
        let (repo, tag) = split_ref(tag);
        let size = img["Size"].as_f64().unwrap_or(0.0);
        lines.push(format!(
            "{}\t{repo}\t{tag}\t{short}\t{}",
            c.name,
            units::human_size_prec(size, 3)
        ));
    }
    if !a.quiet {
        print!("{}", format::tabwrite(&lines));
    }
    Ok(())
}

/// A project as `compose ls` shows it.
#[derive(Debug, Default, PartialEq)]
struct ProjectRow {
    states: BTreeMap<String, usize>,
    config_files: String,
}

impl ProjectRow {
    /// `running(2)` or `exited(1), running(1)`, as compose v2 prints it.
    fn status(&self) -> String {
        self.states
            .iter()
            .map(|(s, n)| format!("{s}({n})"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Groups containers (Docker API list entries) into projects by their labels.
fn projects_of(list: &[Value]) -> BTreeMap<String, ProjectRow> {
    let mut out: BTreeMap<String, ProjectRow> = BTreeMap::new();
    for c in list {
        let Some(name) = c["Labels"][labels::PROJECT].as_str() else {
            continue;
        };
        let row = out.entry(name.to_string()).or_default();
        let state = c["State"].as_str().unwrap_or("unknown").to_string();
        *row.states.entry(state).or_default() += 1;
        if row.config_files.is_empty() {
            if let Some(f) = c["Labels"][labels::CONFIG_FILES].as_str() {
                row.config_files = f.to_string();
            }
        }
    }
    out
}

/// `compose ls`: the projects that have containers on the engine.
pub(crate) async fn ls(ctx: &Ctx, a: &LsArgs) -> anyhow::Result<()> {
    let filters = serde_json::json!({"label": [labels::PROJECT]});
    let path = format!(
        "/containers/json?all={}&filters={}",
        u8::from(a.all),
        enc(&filters.to_string())
    );
    let body = ctx.raw.call("GET", &path, &[], None).await?;
    let list: Vec<Value> = serde_json::from_slice(&body)?;
    let projects = projects_of(&list);
    if a.quiet {
        for name in projects.keys() {
            println!("{name}");
        }
        return Ok(());
    }
    match a.format.as_str() {
        "json" => {
            let v: Vec<Value> = projects
                .iter()
                .map(|(name, r)| {
                    serde_json::json!({
                        "Name": name,
                        "Status": r.status(),
                        "ConfigFiles": r.config_files,
                    })
                })
                .collect();
            println!("{}", serde_json::to_string(&v)?);
        }
        "table" => {
            let mut lines = vec!["NAME\tSTATUS\tCONFIG FILES".to_string()];
            for (name, r) in &projects {
                lines.push(format!("{name}\t{}\t{}", r.status(), r.config_files));
            }
            print!("{}", format::tabwrite(&lines));
        }
        other => anyhow::bail!("format value {other:?} could not be parsed: use table or json"),
    }
    Ok(())
}

/// `compose wait`: blocks until the services' containers stop and prints the exit
/// code of the first to stop; `--down-project` takes the project down then.
pub(crate) async fn wait(ctx: &Ctx, p: &Project, a: &WaitArgs) -> anyhow::Result<()> {
    let services = selected(p, &a.services)?;
    let list = list_containers(ctx, &p.name, true).await?;
    let mine = service_containers(&list, &services);
    if mine.is_empty() {
        anyhow::bail!("no containers for project \"{}\"", p.name);
    }
    let mut waits: futures::stream::FuturesUnordered<_> = mine
        .iter()
        .map(|c| async move {
            let body = ctx
                .raw
                .call("POST", &format!("/containers/{}/wait", c.id), &[], None)
                .await?;
            let v: Value = serde_json::from_slice(&body)?;
            anyhow::Ok(v["StatusCode"].as_i64().unwrap_or(-1))
        })
        .collect();
    let first = waits.next().await.transpose()?.unwrap_or(0);
    if !a.down_project {
        while let Some(r) = waits.next().await {
            r?;
        }
    }
    drop(waits);
    println!("{first}");
    Ok(())
}

/// `compose cp`: `docker cp` with a service (and replica) in place of a container.
pub(crate) async fn cp(ctx: &Ctx, p: &Project, a: &CpArgs) -> anyhow::Result<()> {
    let service = a.service()?;
    selected(p, std::slice::from_ref(&service))?;
    let list = list_containers(ctx, &p.name, true).await?;
    let to_container = matches!(split_arg(&a.dst), Endpoint::Container(..));
    let targets: Vec<&Existing> = list
        .iter()
        .filter(|c| !c.oneoff && c.service == service)
        .filter(|c| match a.index {
            Some(i) => c.number == i,
            None => (a.all && to_container) || c.number == 1,
        })
        .collect();
    if targets.is_empty() {
        anyhow::bail!(
            "service \"{service}\" has no container{}",
            a.index.map(|i| format!(" #{i}")).unwrap_or_default()
        );
    }
    let swap = |arg: &str, id: &str| match split_arg(arg) {
        Endpoint::Container(_, path) => format!("{id}:{path}"),
        Endpoint::Local(l) => l,
    };
    for c in targets {
        let args = cp::CpArgs {
            archive: a.archive,
            follow_link: a.follow_link,
            quiet: true,
            src: swap(&a.src, &c.id),
            dst: swap(&a.dst, &c.id),
        };
        cp::cp(ctx, args).await?;
        progress("Container", &c.name, "Copied");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ls_groups_containers_by_project_and_counts_states() {
        let c = |p: &str, state: &str| {
            serde_json::json!({
                "State": state,
                "Labels": {labels::PROJECT: p, labels::CONFIG_FILES: format!("/{p}/compose.yaml")},
            })
        };
        let list = vec![
            c("a", "running"),
            c("a", "exited"),
            c("a", "running"),
            c("b", "exited"),
            serde_json::json!({"State": "running", "Labels": {}}),
        ];
        let m = projects_of(&list);
        assert_eq!(m.len(), 2);
        assert_eq!(m["a"].status(), "exited(1), running(2)");
        assert_eq!(m["a"].config_files, "/a/compose.yaml");
        assert_eq!(m["b"].status(), "exited(1)");
    }
}
