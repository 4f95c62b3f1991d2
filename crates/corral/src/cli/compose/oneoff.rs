//! `compose exec` and `compose run`: commands in a service's running container, and
//! one-off containers (`com.docker.compose.oneoff=True`) of a service.

use std::io::IsTerminal;

use clap::Args;
use corral_compose::{labels, Project};

use super::plan::{self, Kind, RunOverrides};
use super::up;
use super::{list_containers, selected, Existing};
use crate::cli::client::{Ctx, Exit};
use crate::cli::run as cli_run;

/// `exec` flags.
#[derive(Args, Debug)]
pub(crate) struct ExecArgs {
    /// Disable pseudo-TTY allocation.
    #[arg(short = 'T', long = "no-TTY")]
    no_tty: bool,
    /// Index of the container if the service has several replicas.
    #[arg(long, default_value_t = 1)]
    index: u32,
    /// Detached mode.
    #[arg(short = 'd', long)]
    detach: bool,
    /// Set environment variables.
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Run as this user.
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Working directory.
    #[arg(short = 'w', long)]
    workdir: Option<String>,
    /// Extended privileges.
    #[arg(long)]
    privileged: bool,
    /// The service.
    pub(crate) service: String,
    /// The command.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// `run` flags.
#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    /// Remove the container when it exits.
    #[arg(long)]
    rm: bool,
    /// Disable pseudo-TTY allocation.
    #[arg(short = 'T', long = "no-TTY")]
    no_tty: bool,
    /// Run in the background and print the container name.
    #[arg(short = 'd', long)]
    detach: bool,
    /// Set environment variables.
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Container name.
    #[arg(long)]
    name: Option<String>,
    /// Override the entrypoint.
    #[arg(long)]
    entrypoint: Option<String>,
    /// Run as this user.
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Working directory.
    #[arg(short = 'w', long)]
    workdir: Option<String>,
    /// Do not start linked services.
    #[arg(long = "no-deps")]
    no_deps: bool,
    /// Publish the service's ports.
    #[arg(long = "service-ports")]
    service_ports: bool,
    /// The service.
    pub(crate) service: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

async fn find(ctx: &Ctx, p: &Project, service: &str, index: u32) -> anyhow::Result<Existing> {
    selected(p, &[service.to_string()])?;
    list_containers(ctx, &p.name, false)
        .await?
        .into_iter()
        .find(|c| c.service == service && !c.oneoff && c.number == index)
        .ok_or_else(|| anyhow::anyhow!("service \"{service}\" is not running container #{index}"))
}

/// `compose exec`.
pub(crate) async fn exec(ctx: &Ctx, p: &Project, a: &ExecArgs) -> anyhow::Result<()> {
    let c = find(ctx, p, &a.service, a.index).await?;
    let tty = !a.no_tty && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    cli_run::exec(
        ctx,
        cli_run::ExecArgs {
            detach: a.detach,
            interactive: !a.detach,
            tty,
            env: a.env.clone(),
            env_file: Vec::new(),
            workdir: a.workdir.clone(),
            user: a.user.clone(),
            privileged: a.privileged,
            container: c.id,
            command: a.command.clone(),
        },
    )
    .await
}

/// `compose run`: a one-off container of a service, its dependencies started first.
pub(crate) async fn run(ctx: &Ctx, p: &Project, a: &RunArgs) -> anyhow::Result<()> {
    let svc = p
        .services
        .get(&a.service)
        .ok_or_else(|| anyhow::anyhow!("no such service: {}", a.service))?;
    up::check_images(p, std::slice::from_ref(&a.service))?;
    if !a.no_deps && !svc.depends_on.is_empty() {
        let deps: Vec<String> = svc
            .depends_on
            .keys()
            .filter(|d| p.services.contains_key(*d))
            .cloned()
            .collect();
        let upargs = up::UpArgs {
            detach: true,
            services: deps,
            ..up::UpArgs::default()
        };
        up::up(ctx, p, &upargs).await?;
        for (d, dep) in &svc.depends_on {
            if p.services.contains_key(d) {
                up::wait_condition(ctx, p, d, dep.condition, dep.required).await?;
            }
        }
    } else {
        up::ensure_networks(ctx, p, std::slice::from_ref(&a.service)).await?;
    }
    up::ensure_volumes(ctx, p, std::slice::from_ref(&a.service)).await?;
    up::ensure_images(ctx, p, std::slice::from_ref(&a.service)).await?;

    let interactive = !a.detach;
    let tty =
        !a.no_tty && !a.detach && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let overrides = RunOverrides {
        command: (!a.command.is_empty()).then(|| a.command.clone()),
        entrypoint: a
            .entrypoint
            .as_deref()
            .map(corral_compose::split_shell)
            .transpose()
            .map_err(anyhow::Error::msg)?,
        env: a.env.iter().map(|e| env_value(e)).collect(),
        tty,
        interactive,
        user: a.user.clone(),
        workdir: a.workdir.clone(),
        service_ports: a.service_ports,
    };
    let existing = list_containers(ctx, &p.name, true).await?;
    let number = existing
        .iter()
        .filter(|c| c.oneoff && c.service == a.service)
        .map(|c| c.number)
        .max()
        .unwrap_or(0)
        + 1;
    let name = a.name.clone().unwrap_or_else(|| {
        let suffix: String = format!("{:016x}", rand_suffix()).chars().take(12).collect();
        labels::oneoff_name(&p.name, &a.service, &suffix)
    });
    let body = plan::container_create(p, &a.service, svc, Kind::OneOff(number), Some(&overrides))?;
    let id = up::create_container(ctx, &name, &body).await?;
    up::connect_extra_networks(ctx, p, &a.service, &id).await?;
    if a.detach {
        ctx.raw
            .call("POST", &format!("/containers/{id}/start"), &[], None)
            .await?;
        println!("{name}");
        return Ok(());
    }
    let result = cli_run::attach_and_wait(ctx, &id, tty, interactive, "next-exit", true, async {
        ctx.raw
            .call("POST", &format!("/containers/{id}/start"), &[], None)
            .await
            .map(|_| ())
    })
    .await;
    if a.rm {
        let _ = ctx
            .raw
            .call(
                "DELETE",
                &format!("/containers/{id}?force=1&v=1"),
                &[],
                None,
            )
            .await;
    }
    let code = result?;
    if code != 0 {
        return Err(Exit(cli_run::exit_code(code)).into());
    }
    Ok(())
}

/// `-e KEY` takes the value from the environment, as docker does.
fn env_value(e: &str) -> String {
    if e.contains('=') {
        return e.to_string();
    }
    match std::env::var(e) {
        Ok(v) => format!("{e}={v}"),
        Err(_) => e.to_string(),
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}
