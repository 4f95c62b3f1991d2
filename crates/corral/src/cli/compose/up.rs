//! `compose up`: a reconcile of the project against the engine. It computes the
//! desired containers (service × replica), compares them with the ones found by
//! label (by config hash), creates what is missing, recreates what changed, removes
//! surplus replicas, and starts services in dependency order, waiting for each
//! `depends_on` condition.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use clap::Args;
use corral_compose::{Condition, Project};
use futures::StreamExt;
use serde_json::Value;

use super::plan::{self, Kind};
use super::{by_service, list_containers, progress, selected, Existing};
use crate::cli::client::Ctx;
use crate::cli::container::enc;
use crate::cli::http::ApiError;
use crate::cli::image::{pull_image, PullOutput};

/// `compose up` flags.
#[derive(Args, Debug, Default)]
pub(crate) struct UpArgs {
    /// Detached mode: run containers in the background.
    #[arg(short = 'd', long)]
    pub(crate) detach: bool,
    /// Scale SERVICE to NUM instances (`svc=N`, repeatable).
    #[arg(long = "scale")]
    pub(crate) scale: Vec<String>,
    /// Recreate containers even if their configuration has not changed.
    #[arg(long = "force-recreate", conflicts_with = "no_recreate")]
    pub(crate) force_recreate: bool,
    /// Never recreate existing containers.
    #[arg(long = "no-recreate")]
    pub(crate) no_recreate: bool,
    /// Do not start linked services.
    #[arg(long = "no-deps")]
    pub(crate) no_deps: bool,
    /// Remove containers of services not defined in the project.
    #[arg(long = "remove-orphans")]
    pub(crate) remove_orphans: bool,
    /// Shutdown timeout in seconds when recreating or scaling down.
    #[arg(short = 't', long = "timeout")]
    pub(crate) timeout: Option<u32>,
    /// Wait for services to be running (and healthy) before returning (with -d).
    #[arg(long)]
    pub(crate) wait: bool,
    /// Don't start the services after creating them.
    #[arg(long = "no-start")]
    pub(crate) no_start: bool,
    /// Stop all containers if any container was stopped (attached mode only).
    #[arg(long = "abort-on-container-exit", conflicts_with = "detach")]
    pub(crate) abort_on_container_exit: bool,
    /// Return the exit code of the selected service's container; implies
    /// `--abort-on-container-exit`.
    #[arg(
        long = "exit-code-from",
        value_name = "SERVICE",
        conflicts_with = "detach"
    )]
    pub(crate) exit_code_from: Option<String>,
    /// Services to bring up (default: all).
    pub(crate) services: Vec<String>,
    #[arg(skip)]
    pub(crate) scale_map: BTreeMap<String, u32>,
}

impl UpArgs {
    /// The `up` that `compose scale` performs.
    pub(crate) fn for_scale(scales: BTreeMap<String, u32>, no_deps: bool) -> UpArgs {
        UpArgs {
            detach: true,
            no_recreate: true,
            no_deps,
            services: scales.keys().cloned().collect(),
            scale_map: scales,
            ..UpArgs::default()
        }
    }
}

/// How long a dependency may take to become healthy or complete.
const DEPENDENCY_PATIENCE: Duration = Duration::from_secs(300);

/// `compose up`.
pub(crate) async fn up(ctx: &Ctx, p: &Project, a: &UpArgs) -> anyhow::Result<()> {
    // Attached mode shows what the containers print from now on.
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    let mut scales = a.scale_map.clone();
    scales.extend(super::ops::parse_scale(&a.scale)?);
    for s in scales.keys() {
        if !p.services.contains_key(s) {
            anyhow::bail!("no such service: {s}");
        }
    }
    if let Some(s) = &a.exit_code_from {
        if !p.services.contains_key(s) {
            anyhow::bail!("no such service: {s}");
        }
    }
    let targets: Vec<String> = if a.no_deps || a.services.is_empty() {
        selected(p, &a.services)?
    } else {
        selected(p, &a.services)?;
        let with = corral_compose::with_dependencies(p, &a.services);
        corral_compose::dependency_order(p)
            .into_iter()
            .filter(|s| with.contains(s))
            .collect()
    };

    check_images(p, &targets)?;

    let existing = list_containers(ctx, &p.name, true).await?;
    let orphans: Vec<&Existing> = existing
        .iter()
        .filter(|c| !c.oneoff && !p.services.contains_key(&c.service))
        .collect();
    if !orphans.is_empty() {
        if a.remove_orphans {
            for o in &orphans {
                remove(ctx, &o.id, a.timeout, true).await?;
                progress("Container", &o.name, "Removed");
            }
        } else {
            eprintln!(
                "WARN[0000] Found orphan containers ({}) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
                orphans.iter().map(|o| o.name.as_str()).collect::<Vec<_>>().join(", ")
            );
        }
    }

    ensure_networks(ctx, p, &targets).await?;
    ensure_volumes(ctx, p, &targets).await?;
    ensure_images(ctx, p, &targets).await?;

    let mut current = by_service(
        &existing
            .into_iter()
            .filter(|c| !c.oneoff)
            .collect::<Vec<_>>(),
    );
    // One dependency level at a time: its services' dependencies are all up (and
    // meet their conditions) before any of its containers is created, and the
    // containers of one level are created and started together, a few at a time, as
    // compose v2 does.
    for level in corral_compose::dependency_levels(p, &targets) {
        let mut jobs: Vec<Job> = Vec::new();
        for name in &level {
            if !a.no_start {
                wait_dependencies(ctx, p, name, &targets).await?;
            }
            let svc = &p.services[name];
            let want = scales.get(name).copied().unwrap_or_else(|| svc.replicas());
            let hash = corral_compose::config_hash(svc);
            let mine = current.remove(name).unwrap_or_default();
            // Scale down: the highest numbers go first, as compose does.
            let mut keep: BTreeMap<u32, Existing> = BTreeMap::new();
            for c in mine {
                if c.number == 0 || c.number > want || keep.contains_key(&c.number) {
                    remove(ctx, &c.id, a.timeout, false).await?;
                    progress("Container", &c.name, "Removed");
                } else {
                    keep.insert(c.number, c);
                }
            }
            for n in 1..=want {
                let cname = plan::container_name(p, name, svc, n);
                let action = match keep.remove(&n) {
                    Some(c) if a.no_recreate || (c.hash == hash && !a.force_recreate) => {
                        Action::Keep(c)
                    }
                    Some(c) => Action::Recreate(c),
                    None => Action::Create,
                };
                jobs.push(Job {
                    service: name.clone(),
                    n,
                    cname,
                    action,
                });
            }
        }
        let results: Vec<anyhow::Result<()>> = futures::stream::iter(jobs)
            .map(|j| run_job(ctx, p, j, a))
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        // Every started job is finished before the first error is reported, so
        // nothing is left half-made by a cancelled request.
        for r in results {
            r?;
        }
    }

    if a.no_start {
        return Ok(());
    }
    if a.detach {
        if a.wait {
            for name in &targets {
                wait_condition(ctx, p, name, Condition::ServiceStarted, true).await?;
            }
        }
        return Ok(());
    }
    let cascade = super::logs::Cascade {
        abort_on_exit: a.abort_on_container_exit || a.exit_code_from.is_some(),
        exit_code_from: a.exit_code_from.clone(),
    };
    super::logs::attach_until_exit(ctx, p, &targets, a.timeout, since, &cascade).await
}

/// Replaces `old` as compose does: the new container is created under a temporary
/// name first (so a failed create leaves the old one untouched), keeps the old one's
/// anonymous volumes, then the old one is removed and the new one takes its name.
async fn recreate(
    ctx: &Ctx,
    p: &Project,
    service: &str,
    n: u32,
    cname: &str,
    old: &Existing,
    timeout: Option<u32>,
) -> anyhow::Result<String> {
    let body = ctx
        .raw
        .call("GET", &format!("/containers/{}/json", old.id), &[], None)
        .await?;
    let inspect: Value = serde_json::from_slice(&body)?;
    let svc = &p.services[service];
    let mut create_body = plan::container_create(p, service, svc, Kind::Replica(n), None)?;
    plan::keep_anonymous_volumes(&mut create_body, &inspect);
    let short: String = old.id.chars().take(12).collect();
    let temp = format!("{short}_{cname}");
    let id = create_container(ctx, &temp, &create_body).await?;
    if let Err(e) = connect_extra_networks(ctx, p, service, &id).await {
        let _ = remove(ctx, &id, Some(0), false).await;
        return Err(e);
    }
    remove(ctx, &old.id, timeout, false).await?;
    ctx.raw
        .call(
            "POST",
            &format!("/containers/{id}/rename?name={}", enc(cname)),
            &[],
            None,
        )
        .await
        .map_err(|e| anyhow::anyhow!("renaming {temp} to {cname}: {e:#}"))?;
    Ok(id)
}

/// How many containers of one dependency level are created or started at once.
const PARALLEL: usize = 4;

/// What `up` does with one replica.
enum Action {
    /// Up to date: started when it is not running.
    Keep(Existing),
    /// Its configuration changed: replaced.
    Recreate(Existing),
    /// Missing: created.
    Create,
}

/// One replica of a service to bring up.
struct Job {
    service: String,
    n: u32,
    cname: String,
    action: Action,
}

/// Creates, recreates or keeps one replica, then starts it unless `--no-start`.
async fn run_job(ctx: &Ctx, p: &Project, j: Job, a: &UpArgs) -> anyhow::Result<()> {
    let Job {
        service,
        n,
        cname,
        action,
    } = j;
    let id = match action {
        Action::Keep(c) => {
            if c.state == "running" {
                progress("Container", &c.name, "Running");
                return Ok(());
            }
            if a.no_start {
                progress("Container", &c.name, "Created");
                return Ok(());
            }
            c.id
        }
        Action::Recreate(c) => {
            progress("Container", &c.name, "Recreate");
            let id = recreate(ctx, p, &service, n, &cname, &c, a.timeout).await?;
            progress("Container", &cname, "Recreated");
            id
        }
        Action::Create => {
            progress("Container", &cname, "Creating");
            let id = create(ctx, p, &service, n, &cname).await?;
            progress("Container", &cname, "Created");
            id
        }
    };
    if a.no_start {
        return Ok(());
    }
    progress("Container", &cname, "Starting");
    ctx.raw
        .call("POST", &format!("/containers/{id}/start"), &[], None)
        .await
        .map_err(|e| anyhow::anyhow!("starting {cname}: {e:#}"))?;
    progress("Container", &cname, "Started");
    Ok(())
}

async fn create(
    ctx: &Ctx,
    p: &Project,
    service: &str,
    n: u32,
    cname: &str,
) -> anyhow::Result<String> {
    let svc = &p.services[service];
    let body = plan::container_create(p, service, svc, Kind::Replica(n), None)?;
    let id = create_container(ctx, cname, &body).await?;
    if let Err(e) = connect_extra_networks(ctx, p, service, &id).await {
        // No half-made container: one that cannot join its networks is removed.
        let _ = remove(ctx, &id, Some(0), false).await;
        return Err(e);
    }
    Ok(id)
}

/// Creates a container from a planned body; returns its id.
pub(crate) async fn create_container(
    ctx: &Ctx,
    name: &str,
    body: &Value,
) -> anyhow::Result<String> {
    let resp = ctx
        .raw
        .call(
            "POST",
            &format!("/containers/create?name={}", enc(name)),
            &[],
            Some(body.to_string().as_bytes()),
        )
        .await
        .map_err(|e| anyhow::anyhow!("creating container {name}: {e:#}"))?;
    let v: Value = serde_json::from_slice(&resp)?;
    for w in v["Warnings"].as_array().into_iter().flatten() {
        if let Some(w) = w.as_str() {
            eprintln!("WARNING: {w}");
        }
    }
    Ok(v["Id"].as_str().unwrap_or_default().to_string())
}

/// Connects a new container to its networks after the first (`/networks/{id}/connect`).
pub(crate) async fn connect_extra_networks(
    ctx: &Ctx,
    p: &Project,
    service: &str,
    id: &str,
) -> anyhow::Result<()> {
    let svc = &p.services[service];
    if svc.network_mode.is_some() {
        return Ok(());
    }
    for (net, aliases, ip) in plan::endpoints(p, service, svc).into_iter().skip(1) {
        let body = plan::connect_body(id, &aliases, &ip);
        ctx.raw
            .call(
                "POST",
                &format!("/networks/{}/connect", enc(&net)),
                &[],
                Some(body.to_string().as_bytes()),
            )
            .await
            .map_err(|e| anyhow::anyhow!("connecting {service} to network {net}: {e:#}"))?;
    }
    Ok(())
}

/// Stops (with `timeout`) and removes a container, with its anonymous volumes when asked.
pub(crate) async fn remove(
    ctx: &Ctx,
    id: &str,
    timeout: Option<u32>,
    volumes: bool,
) -> anyhow::Result<()> {
    let t = timeout.map(|t| format!("?t={t}")).unwrap_or_default();
    match ctx
        .raw
        .call("POST", &format!("/containers/{id}/stop{t}"), &[], None)
        .await
    {
        Ok(_) => {}
        Err(e) if is_status(&e, 404) => return Ok(()),
        Err(e) => return Err(e),
    }
    match ctx
        .raw
        .call(
            "DELETE",
            &format!("/containers/{id}?force=1&v={}", u8::from(volumes)),
            &[],
            None,
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_status(&e, 404) => Ok(()),
        Err(e) => Err(e),
    }
}

pub(crate) fn is_status(e: &anyhow::Error, status: u16) -> bool {
    e.downcast_ref::<ApiError>()
        .is_some_and(|a| a.status == status)
}

/// Networks used by `services`, created when missing; external ones must exist.
pub(crate) async fn ensure_networks(
    ctx: &Ctx,
    p: &Project,
    services: &[String],
) -> anyhow::Result<()> {
    let used: BTreeSet<&str> = services
        .iter()
        .filter_map(|s| p.services.get(s))
        .flat_map(|s| s.networks.keys().map(String::as_str))
        .collect();
    for key in used {
        let Some(n) = p.networks.get(key) else {
            continue;
        };
        let name = plan::network_name(p, key);
        let found = ensure_object(ctx, Object::Network, &name, n.external, || {
            plan::network_create(p, key)
        })
        .await?;
        if let Some(v) = found {
            let owner = v["Labels"][corral_compose::labels::PROJECT].as_str();
            if !n.external && owner.is_some_and(|o| o != p.name) {
                eprintln!("WARN[0000] a network with name {name} exists but was not created for project \"{}\"", p.name);
            }
        }
    }
    Ok(())
}

/// Named volumes used by `services`, created when missing; external ones must exist.
pub(crate) async fn ensure_volumes(
    ctx: &Ctx,
    p: &Project,
    services: &[String],
) -> anyhow::Result<()> {
    let used: BTreeSet<&str> = services
        .iter()
        .filter_map(|s| p.services.get(s))
        .flat_map(|s| s.volumes.iter())
        .filter(|v| v.kind == "volume")
        .filter_map(|v| v.source.as_deref())
        .collect();
    for key in used {
        let Some(v) = p.volumes.get(key) else {
            continue;
        };
        let name = plan::volume_name(p, key);
        ensure_object(ctx, Object::Volume, &name, v.external, || {
            plan::volume_create(p, key)
        })
        .await?;
    }
    Ok(())
}

/// The kinds of project objects `up` makes before the containers.
#[derive(Clone, Copy)]
enum Object {
    Network,
    Volume,
}

impl Object {
    /// The progress title, the noun in messages, and the API collection.
    fn names(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Object::Network => ("Network", "network", "networks"),
            Object::Volume => ("Volume", "volume", "volumes"),
        }
    }
}

/// Looks up the network or volume `name`: returns its inspect JSON when it exists;
/// otherwise creates it from `body` (an external one must exist) and returns `None`.
async fn ensure_object(
    ctx: &Ctx,
    kind: Object,
    name: &str,
    external: bool,
    body: impl FnOnce() -> Value,
) -> anyhow::Result<Option<Value>> {
    let (title, noun, collection) = kind.names();
    match ctx
        .raw
        .call("GET", &format!("/{collection}/{}", enc(name)), &[], None)
        .await
    {
        Ok(found) => Ok(Some(serde_json::from_slice(&found)?)),
        Err(e) if is_status(&e, 404) => {
            if external {
                anyhow::bail!("{noun} {name} declared as external, but could not be found");
            }
            progress(title, name, "Creating");
            ctx.raw
                .call(
                    "POST",
                    &format!("/{collection}/create"),
                    &[],
                    Some(body().to_string().as_bytes()),
                )
                .await
                .map_err(|e| anyhow::anyhow!("creating {noun} {name}: {e:#}"))?;
            progress(title, name, "Created");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Corral has no `docker build`: a service to bring up with a `build:` section and
/// no `image:` is an error before anything is created; with an `image:` too, that
/// image is pulled and used, with a warning.
pub(crate) fn check_images(p: &Project, services: &[String]) -> anyhow::Result<()> {
    for s in services {
        let svc = &p.services[s];
        match (&svc.image, &svc.build) {
            (None, _) => anyhow::bail!(
                "service \"{s}\" has a build section and no image: `corral compose` does not build images yet (build it with `docker build -t NAME` against Corral); set `image:` to that image or one in a registry"
            ),
            (Some(image), Some(_)) => eprintln!(
                "WARN[0000] service \"{s}\" has a build section, but `corral compose` does not build images yet: using image {image}"
            ),
            (Some(_), None) => {}
        }
    }
    Ok(())
}

/// Pulls the images of `services` that are missing (or all with `pull_policy: always`).
pub(crate) async fn ensure_images(
    ctx: &Ctx,
    p: &Project,
    services: &[String],
) -> anyhow::Result<()> {
    let mut done = BTreeSet::new();
    for s in services {
        let svc = &p.services[s];
        let Some(image) = &svc.image else {
            anyhow::bail!("service \"{s}\" has no image; building images is not supported yet");
        };
        if !done.insert(image.clone()) {
            continue;
        }
        let policy = svc.pull_policy.as_deref().unwrap_or("missing");
        let present = match ctx
            .raw
            .call("GET", &format!("/images/{}/json", enc(image)), &[], None)
            .await
        {
            Ok(_) => true,
            Err(e) if is_status(&e, 404) => false,
            Err(e) => return Err(e),
        };
        let pull = match policy {
            "always" => true,
            "never" if !present => anyhow::bail!(
                "image {image} of service \"{s}\" is not present and pull_policy is never"
            ),
            "never" | "build" => false,
            _ => !present,
        };
        if pull {
            progress("Image", image, "Pulling");
            pull_image(ctx, image, PullOutput::Quiet).await?;
            progress("Image", image, "Pulled");
        }
    }
    Ok(())
}

/// Waits until every dependency of `service` brought up in this run (`targets`)
/// reaches its `depends_on` condition; `--no-deps` leaves the others alone.
async fn wait_dependencies(
    ctx: &Ctx,
    p: &Project,
    service: &str,
    targets: &[String],
) -> anyhow::Result<()> {
    let svc = &p.services[service];
    for (dep, d) in &svc.depends_on {
        if !p.services.contains_key(dep) || !targets.contains(dep) {
            continue;
        }
        wait_condition(ctx, p, dep, d.condition, d.required).await?;
    }
    Ok(())
}

/// Waits until the containers of `service` meet `cond` (polling inspect).
pub(crate) async fn wait_condition(
    ctx: &Ctx,
    p: &Project,
    service: &str,
    cond: Condition,
    required: bool,
) -> anyhow::Result<()> {
    if cond == Condition::ServiceStarted {
        return Ok(());
    }
    let deadline = tokio::time::Instant::now() + DEPENDENCY_PATIENCE;
    let mut announced = false;
    loop {
        let list = list_containers(ctx, &p.name, true).await?;
        let mine: Vec<&Existing> = list
            .iter()
            .filter(|c| c.service == service && !c.oneoff)
            .collect();
        let mut all_ok = !mine.is_empty();
        for c in &mine {
            let body = ctx
                .raw
                .call("GET", &format!("/containers/{}/json", c.id), &[], None)
                .await?;
            let v: Value = serde_json::from_slice(&body)?;
            let state = &v["State"];
            match cond {
                Condition::ServiceHealthy => match state["Health"]["Status"].as_str() {
                    Some("healthy") => {}
                    Some("unhealthy") => {
                        anyhow::bail!("dependency failed to start: container {} is unhealthy", c.name)
                    }
                    None if state["Status"] == "running" => anyhow::bail!(
                        "dependency failed to start: container {} reports no health status (no healthcheck, or the engine does not run health checks)",
                        c.name
                    ),
                    _ => all_ok = false,
                },
                Condition::ServiceCompletedSuccessfully => match state["Status"].as_str() {
                    Some("exited") | Some("dead") => {
                        let code = state["ExitCode"].as_i64().unwrap_or(-1);
                        if code != 0 {
                            anyhow::bail!(
                                "service \"{service}\" didn't complete successfully: exit {code}"
                            );
                        }
                    }
                    _ => all_ok = false,
                },
                Condition::ServiceStarted => {}
            }
        }
        if all_ok {
            for c in &mine {
                let what = if cond == Condition::ServiceHealthy {
                    "Healthy"
                } else {
                    "Exited"
                };
                progress("Container", &c.name, what);
            }
            return Ok(());
        }
        if mine.is_empty() {
            if required {
                anyhow::bail!("dependency failed to start: service \"{service}\" has no container");
            }
            return Ok(());
        }
        if !announced {
            for c in &mine {
                progress("Container", &c.name, "Waiting");
            }
            announced = true;
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("timed out waiting for service \"{service}\" to become {cond:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
