//! `corral compose`: the compose specification natively, as a client of the Docker
//! Engine API. The file is loaded and validated by `corral-compose` before any call
//! is made; `up` reconciles the model against the containers, networks and volumes
//! found by compose's labels, so `docker-compose` and `corral compose` see the same
//! project.

mod logs;
mod manage;
mod oneoff;
mod ops;
mod plan;
mod up;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use corral_compose::{labels, load, FsSource, LoadOptions, Project, Source};
use serde_json::Value;

use super::client::Ctx;
use super::container::enc;

/// `corral compose` global flags.
#[derive(Args, Debug)]
pub(crate) struct ComposeArgs {
    /// Compose configuration files (repeatable; merged in order; `-` reads standard input).
    #[arg(short = 'f', long = "file")]
    file: Vec<PathBuf>,
    /// Project name.
    #[arg(short = 'p', long = "project-name")]
    project_name: Option<String>,
    /// Alternate working directory (default: the directory of the first file).
    #[arg(long = "project-directory")]
    project_directory: Option<PathBuf>,
    /// Alternate environment file(s) (default: .env in the project directory).
    #[arg(long = "env-file")]
    env_file: Vec<PathBuf>,
    /// Enable a profile (repeatable).
    #[arg(long = "profile")]
    profile: Vec<String>,
    #[command(subcommand)]
    command: ComposeCommand,
}

/// `corral compose` subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum ComposeCommand {
    /// Print the resolved configuration as YAML.
    Config(ConfigArgs),
    /// Create and start containers (a reconcile of the project).
    Up(up::UpArgs),
    /// Stop and remove containers and networks (and volumes with -v).
    Down(ops::DownArgs),
    /// List the project's containers.
    Ps(ops::PsArgs),
    /// Show the output of the project's containers.
    Logs(logs::LogsArgs),
    /// Start existing containers.
    Start(ops::Services),
    /// Stop running containers.
    Stop(ops::StopArgs),
    /// Restart containers.
    Restart(ops::StopArgs),
    /// Pull the services' images.
    Pull(ops::Services),
    /// Run a command in a running service container.
    Exec(oneoff::ExecArgs),
    /// Run a one-off command in a new container of a service.
    Run(oneoff::RunArgs),
    /// Display the running processes of the project's containers.
    Top(ops::Services),
    /// Stream the project's container events.
    Events(ops::EventsArgs),
    /// Set the number of containers of services (`svc=N`).
    Scale(ops::ScaleArgs),
    /// Create the services' containers without starting them.
    Create(CreateArgs),
    /// Remove stopped service containers.
    Rm(manage::RmArgs),
    /// Force stop service containers (send a signal).
    Kill(manage::KillArgs),
    /// Pause services.
    Pause(ops::Services),
    /// Unpause services.
    Unpause(ops::Services),
    /// Print the public port for a port binding.
    Port(manage::PortArgs),
    /// List the images used by the created containers.
    Images(manage::ImagesArgs),
    /// List the projects that have containers.
    Ls(manage::LsArgs),
    /// Block until the services' containers stop.
    Wait(manage::WaitArgs),
    /// Copy files between a service container and the local filesystem.
    Cp(manage::CpArgs),
}

/// `create` flags.
#[derive(Args, Debug)]
pub(crate) struct CreateArgs {
    /// Recreate containers even if their configuration has not changed.
    #[arg(long = "force-recreate", conflicts_with = "no_recreate")]
    force_recreate: bool,
    /// Never recreate existing containers.
    #[arg(long = "no-recreate")]
    no_recreate: bool,
    /// Remove containers of services not defined in the project.
    #[arg(long = "remove-orphans")]
    remove_orphans: bool,
    /// Scale SERVICE to NUM instances (`svc=N`, repeatable).
    #[arg(long = "scale")]
    scale: Vec<String>,
    /// Services to create (default: all).
    services: Vec<String>,
}

/// The files of the filesystem, and `-` read once from standard input.
struct StdinSource {
    path: PathBuf,
    text: String,
}

impl Source for StdinSource {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        if path == self.path {
            return Ok(self.text.clone());
        }
        FsSource.read(path)
    }

    fn exists(&self, path: &Path) -> bool {
        path == self.path || FsSource.exists(path)
    }
}

/// `config` flags.
#[derive(Args, Debug)]
pub(crate) struct ConfigArgs {
    /// Only validate, print nothing.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Print the service names, one per line.
    #[arg(long)]
    services: bool,
    /// Print the volume names, one per line.
    #[arg(long)]
    volumes: bool,
}

/// A loaded project and the flags it came from.
pub(crate) struct Loaded {
    pub(crate) project: Project,
}

impl ComposeArgs {
    /// Loads the project; `services` are enabled whatever their profiles.
    fn load(&self, services: &[String]) -> anyhow::Result<Loaded> {
        let working_dir = std::env::current_dir()?;
        let opts = LoadOptions {
            working_dir,
            project_directory: self.project_directory.clone(),
            files: self.file.clone(),
            project_name: self.project_name.clone(),
            env_files: self.env_file.clone(),
            profiles: self.profile.clone(),
            environment: std::env::vars().collect(),
            enabled_services: services.to_vec(),
        };
        let loaded = if self.file.iter().any(|f| f.as_os_str() == "-") {
            // `-f -`: the file comes from standard input; the project directory is
            // the current one (or --project-directory), as compose v2 has it.
            // Bounded: one byte more than the loader accepts, so it reports the size.
            const STDIN_LIMIT: u64 = (8 << 20) + 1;
            let mut text = String::new();
            std::io::stdin()
                .take(STDIN_LIMIT)
                .read_to_string(&mut text)
                .map_err(|e| {
                    anyhow::anyhow!("reading the compose file from standard input: {e}")
                })?;
            let src = StdinSource {
                path: opts.working_dir.join("-"),
                text,
            };
            load(&opts, &src)?
        } else {
            load(&opts, &FsSource)?
        };
        for w in &loaded.warnings {
            eprintln!("WARN[0000] {w}");
        }
        Ok(Loaded {
            project: loaded.project,
        })
    }

    /// The project name for commands that can work from labels alone (`down`, `ps`):
    /// the file's when one loads, else `-p` / `COMPOSE_PROJECT_NAME`.
    fn load_or_name(&self) -> anyhow::Result<Result<Loaded, String>> {
        match self.load(&[]) {
            Ok(l) => Ok(Ok(l)),
            Err(e) => {
                let no_file = e
                    .downcast_ref::<corral_compose::Error>()
                    .is_some_and(|e| matches!(e, corral_compose::Error::NoFile(_)));
                let name = self
                    .project_name
                    .clone()
                    .or_else(|| std::env::var("COMPOSE_PROJECT_NAME").ok());
                match (no_file, name) {
                    (true, Some(n)) => Ok(Err(n)),
                    _ => Err(e),
                }
            }
        }
    }
}

/// Runs `corral compose ...`.
pub(crate) async fn compose(host: &str, a: ComposeArgs) -> anyhow::Result<()> {
    // Load and validate before connecting: a broken file creates nothing.
    match &a.command {
        ComposeCommand::Config(c) => {
            let l = a.load(&[])?;
            if c.quiet {
                return Ok(());
            }
            if c.services {
                for s in corral_compose::dependency_order(&l.project) {
                    println!("{s}");
                }
                return Ok(());
            }
            if c.volumes {
                for v in l.project.volumes.keys() {
                    println!("{v}");
                }
                return Ok(());
            }
            let yaml = corral_compose::to_yaml(&l.project).map_err(anyhow::Error::msg)?;
            print!("{yaml}");
            Ok(())
        }
        ComposeCommand::Up(u) => {
            let l = a.load(&u.services)?;
            let ctx = Ctx::connect(host).await?;
            up::up(&ctx, &l.project, u).await
        }
        ComposeCommand::Down(d) => {
            let l = a.load_or_name()?;
            let ctx = Ctx::connect(host).await?;
            ops::down(&ctx, l, d).await
        }
        ComposeCommand::Ps(p) => {
            let l = a.load_or_name()?;
            let name = match &l {
                Ok(l) => l.project.name.clone(),
                Err(n) => n.clone(),
            };
            let ctx = Ctx::connect(host).await?;
            ops::ps(&ctx, &name, p).await
        }
        ComposeCommand::Logs(lg) => {
            let l = a.load(&lg.services)?;
            let ctx = Ctx::connect(host).await?;
            logs::logs(&ctx, &l.project, lg).await
        }
        ComposeCommand::Start(s) => {
            let l = a.load(&s.services)?;
            let ctx = Ctx::connect(host).await?;
            ops::start(&ctx, &l.project, s).await
        }
        ComposeCommand::Stop(s) => {
            let l = a.load(&s.services)?;
            let ctx = Ctx::connect(host).await?;
            ops::stop(&ctx, &l.project, s, false).await
        }
        ComposeCommand::Restart(s) => {
            let l = a.load(&s.services)?;
            let ctx = Ctx::connect(host).await?;
            ops::stop(&ctx, &l.project, s, true).await
        }
        ComposeCommand::Pull(s) => {
            let l = a.load(&s.services)?;
            let ctx = Ctx::connect(host).await?;
            ops::pull(&ctx, &l.project, s).await
        }
        ComposeCommand::Exec(e) => {
            let l = a.load(std::slice::from_ref(&e.service))?;
            let ctx = Ctx::connect(host).await?;
            oneoff::exec(&ctx, &l.project, e).await
        }
        ComposeCommand::Run(r) => {
            let l = a.load(std::slice::from_ref(&r.service))?;
            let ctx = Ctx::connect(host).await?;
            oneoff::run(&ctx, &l.project, r).await
        }
        ComposeCommand::Top(s) => {
            let l = a.load(&s.services)?;
            let ctx = Ctx::connect(host).await?;
            ops::top(&ctx, &l.project, s).await
        }
        ComposeCommand::Events(e) => {
            let l = a.load(&e.services)?;
            let ctx = Ctx::connect(host).await?;
            ops::events(&ctx, &l.project, e).await
        }
        ComposeCommand::Scale(s) => {
            let scales = ops::parse_scale(&s.scale)?;
            let names: Vec<String> = scales.keys().cloned().collect();
            let l = a.load(&names)?;
            let ctx = Ctx::connect(host).await?;
            let u = up::UpArgs::for_scale(scales, s.no_deps);
            up::up(&ctx, &l.project, &u).await
        }
        ComposeCommand::Create(c) => {
            let l = a.load(&c.services)?;
            let ctx = Ctx::connect(host).await?;
            let u = up::UpArgs {
                detach: true,
                no_start: true,
                force_recreate: c.force_recreate,
                no_recreate: c.no_recreate,
                remove_orphans: c.remove_orphans,
                scale: c.scale.clone(),
                services: c.services.clone(),
                ..up::UpArgs::default()
            };
            up::up(&ctx, &l.project, &u).await
        }
        ComposeCommand::Rm(r) => {
            let l = a.load(&r.services)?;
            let ctx = Ctx::connect(host).await?;
            manage::rm(&ctx, &l.project, r).await
        }
        ComposeCommand::Kill(k) => {
            let l = a.load(&k.services)?;
            let ctx = Ctx::connect(host).await?;
            manage::kill(&ctx, &l.project, k).await
        }
        ComposeCommand::Pause(s) | ComposeCommand::Unpause(s) => {
            let resume = matches!(a.command, ComposeCommand::Unpause(_));
            let l = a.load(&s.services)?;
            let ctx = Ctx::connect(host).await?;
            manage::pause(&ctx, &l.project, &s.services, resume).await
        }
        ComposeCommand::Port(pa) => {
            let l = a.load(std::slice::from_ref(&pa.service))?;
            let ctx = Ctx::connect(host).await?;
            manage::port(&ctx, &l.project, pa).await
        }
        ComposeCommand::Images(i) => {
            let l = a.load(&i.services)?;
            let ctx = Ctx::connect(host).await?;
            manage::images(&ctx, &l.project, i).await
        }
        ComposeCommand::Wait(w) => {
            let l = a.load(&w.services)?;
            let ctx = Ctx::connect(host).await?;
            manage::wait(&ctx, &l.project, w).await?;
            if w.down_project {
                ops::down(&ctx, Ok(l), &ops::DownArgs::default()).await?;
            }
            Ok(())
        }
        ComposeCommand::Cp(c) => {
            let service = c.service()?;
            let l = a.load(std::slice::from_ref(&service))?;
            let ctx = Ctx::connect(host).await?;
            manage::cp(&ctx, &l.project, c).await
        }
        ComposeCommand::Ls(ls) => {
            let ctx = Ctx::connect(host).await?;
            manage::ls(&ctx, ls).await
        }
    }
}

/// A container of the project as the engine lists it.
#[derive(Debug, Clone)]
pub(crate) struct Existing {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) service: String,
    pub(crate) number: u32,
    pub(crate) oneoff: bool,
    pub(crate) hash: String,
    pub(crate) state: String,
    pub(crate) raw: Value,
}

/// Lists the project's containers by label (`all` includes stopped ones).
pub(crate) async fn list_containers(
    ctx: &Ctx,
    project: &str,
    all: bool,
) -> anyhow::Result<Vec<Existing>> {
    let filters = serde_json::json!({"label": [format!("{}={project}", labels::PROJECT)]});
    let path = format!(
        "/containers/json?all={}&filters={}",
        u8::from(all),
        enc(&filters.to_string())
    );
    let body = ctx.raw.call("GET", &path, &[], None).await?;
    let list: Vec<Value> = serde_json::from_slice(&body)?;
    let mut out: Vec<Existing> = list
        .into_iter()
        .map(|c| {
            let l = |k: &str| c["Labels"][k].as_str().unwrap_or_default().to_string();
            let name = c["Names"][0]
                .as_str()
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string();
            Existing {
                id: c["Id"].as_str().unwrap_or_default().to_string(),
                name,
                service: l(labels::SERVICE),
                number: l(labels::CONTAINER_NUMBER).parse().unwrap_or(0),
                oneoff: l(labels::ONEOFF) == "True",
                hash: l(labels::CONFIG_HASH),
                state: c["State"].as_str().unwrap_or_default().to_string(),
                raw: c,
            }
        })
        .collect();
    out.sort_by(|a, b| (&a.service, a.oneoff, a.number).cmp(&(&b.service, b.oneoff, b.number)));
    Ok(out)
}

/// Services to act on: the ones named, or all of the project in dependency order.
pub(crate) fn selected(project: &Project, names: &[String]) -> anyhow::Result<Vec<String>> {
    for n in names {
        if !project.services.contains_key(n) {
            let hint = corral_compose::suggest(n, project.services.keys().map(String::as_str))
                .map(|s| format!(" (did you mean \"{s}\"?)"))
                .unwrap_or_default();
            anyhow::bail!("no such service: {n}{hint}");
        }
    }
    Ok(corral_compose::dependency_order(project)
        .into_iter()
        .filter(|s| names.is_empty() || names.contains(s))
        .collect())
}

/// Groups containers by service.
pub(crate) fn by_service(list: &[Existing]) -> BTreeMap<String, Vec<Existing>> {
    let mut m: BTreeMap<String, Vec<Existing>> = BTreeMap::new();
    for c in list {
        m.entry(c.service.clone()).or_default().push(c.clone());
    }
    m
}

/// Prints a progress line on stderr, as compose does (`Container x  Started`).
pub(crate) fn progress(kind: &str, name: &str, state: &str) {
    eprintln!(" {kind} {name}  {state}");
}
