//! The `corral` command-line client: docker-compatible commands that talk to the
//! Docker Engine API served by `corral server`. Every operation lives in the daemon;
//! this module parses flags, calls the API and prints results the way the docker CLI
//! does (same columns, same error texts, same exit codes).

mod client;
mod compose;
mod container;
mod cp;
mod create;
mod format;
mod health;
mod http;
mod image;
mod opts;
mod run;
mod stats;
mod stream;
mod system;
mod template;
mod units;

use std::process::ExitCode;

use clap::Subcommand;

use client::{Ctx, Exit, StatusError};
use container::{InspectArgs, LogsArgs, PsArgs};
use create::CreateFlags;
use image::ImagesArgs;

/// Client subcommands (flattened into the top-level `corral` command).
#[derive(Subcommand, Debug)]
pub(crate) enum ClientCommand {
    /// Create and run a new container from an image.
    #[command(disable_help_flag = true)]
    Run(Box<run::RunArgs>),
    /// Create a new container.
    #[command(disable_help_flag = true)]
    Create(Box<CreateFlags>),
    /// Start one or more stopped containers.
    Start(run::StartArgs),
    /// Execute a command in a running container.
    Exec(run::ExecArgs),
    /// Stop one or more running containers.
    Stop(container::StopArgs),
    /// Restart one or more containers.
    Restart(container::StopArgs),
    /// Kill one or more running containers.
    Kill(container::KillArgs),
    /// Block until one or more containers stop, then print their exit codes.
    Wait(container::Names),
    /// Remove one or more containers.
    Rm(container::RmArgs),
    /// Pause all processes within one or more containers.
    Pause(container::Names),
    /// Unpause all processes within one or more containers.
    Unpause(container::Names),
    /// Rename a container.
    Rename(container::RenameArgs),
    /// List containers.
    Ps(PsArgs),
    /// Return low-level information on Docker objects.
    Inspect(InspectArgs),
    /// Display the running processes of a container.
    Top(container::TopArgs),
    /// Fetch the logs of a container.
    Logs(LogsArgs),
    /// Copy files/folders between a container and the local filesystem.
    Cp(container::CpArgs),
    /// Display a live stream of container(s) resource usage statistics.
    Stats(container::StatsArgs),
    /// Inspect changes to files or directories on a container's filesystem.
    Diff(container::NameArg),
    /// Export a container's filesystem as a tar archive.
    Export(container::ExportArgs),
    /// Create a new image from a container's changes.
    Commit(image::CommitArgs),
    /// Download an image from a registry.
    Pull(image::PullArgs),
    /// Upload an image to a registry.
    Push(image::PushArgs),
    /// Log in to a registry.
    Login(image::LoginArgs),
    /// List images.
    Images(ImagesArgs),
    /// Manage images.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag(image::TagArgs),
    /// Remove one or more images.
    Rmi(image::RmiArgs),
    /// Show the history of an image.
    History(image::HistoryArgs),
    /// Save one or more images to a tar archive.
    Save(image::SaveArgs),
    /// Load an image from a tar archive.
    Load(image::LoadArgs),
    /// Import the contents from a tarball to create a filesystem image.
    Import(image::ImportArgs),
    /// Show the version information.
    Version(system::VersionArgs),
    /// Display system-wide information.
    Info(system::InfoArgs),
    /// Manage the daemon.
    #[command(subcommand)]
    System(system::SystemCommand),
    /// Get real time events from the server.
    Events(system::EventsArgs),
    /// Define and run multi-container applications (the compose specification).
    Compose(compose::ComposeArgs),
}

/// Runs one client command against the daemon at `host` and returns the exit code
/// the docker CLI would: 0 on success, 1 on a daemon or local error, 125 when
/// `run`/`create` fail before the container runs, the container's code for `run`.
pub(crate) fn run(host: &str, cmd: ClientCommand) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("failed to start runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let host = host.to_string();
    let result = rt.block_on(dispatch(&host, cmd));
    // Threads blocked reading stdin must not keep us alive.
    rt.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(Exit(code)) = e.downcast_ref::<Exit>() {
                return ExitCode::from(*code);
            }
            if let Some(s) = e.downcast_ref::<StatusError>() {
                if !s.message.is_empty() {
                    eprintln!("{}", s.message);
                }
                return ExitCode::from(s.code);
            }
            eprintln!("{e:#}");
            ExitCode::from(1)
        }
    }
}

async fn dispatch(host: &str, cmd: ClientCommand) -> anyhow::Result<()> {
    // Validate flags before touching the daemon where the command has any.
    let ctx = || Ctx::connect(host);
    match cmd {
        ClientCommand::Run(a) => run::run(host, *a).await,
        ClientCommand::Create(a) => run::create(host, *a).await,
        ClientCommand::Start(a) => run::start(&ctx().await?, a).await,
        ClientCommand::Exec(a) => run::exec(&ctx().await?, a).await,
        ClientCommand::Stop(a) => container::stop(&ctx().await?, a, false).await,
        ClientCommand::Restart(a) => container::stop(&ctx().await?, a, true).await,
        ClientCommand::Kill(a) => container::kill(&ctx().await?, a).await,
        ClientCommand::Wait(a) => container::wait(&ctx().await?, a).await,
        ClientCommand::Rm(a) => container::rm(&ctx().await?, a).await,
        ClientCommand::Pause(a) => container::pause(&ctx().await?, a, true).await,
        ClientCommand::Unpause(a) => container::pause(&ctx().await?, a, false).await,
        ClientCommand::Rename(a) => container::rename(&ctx().await?, a).await,
        ClientCommand::Ps(a) => container::ps(&ctx().await?, a).await,
        ClientCommand::Inspect(a) => container::inspect(&ctx().await?, a).await,
        ClientCommand::Top(a) => container::top(&ctx().await?, a).await,
        ClientCommand::Logs(a) => container::logs(&ctx().await?, a).await,
        ClientCommand::Cp(a) => container::cp(&ctx().await?, a).await,
        ClientCommand::Stats(a) => container::stats(&ctx().await?, a).await,
        ClientCommand::Diff(a) => container::diff(&ctx().await?, a).await,
        ClientCommand::Export(a) => container::export(&ctx().await?, a).await,
        ClientCommand::Commit(a) => image::commit(&ctx().await?, a).await,
        ClientCommand::Pull(a) => image::pull(&ctx().await?, a).await,
        ClientCommand::Push(a) => image::push(&ctx().await?, a).await,
        ClientCommand::Login(a) => image::login(&ctx().await?, a).await,
        ClientCommand::Images(a) => image::images(&ctx().await?, a).await,
        ClientCommand::Image(c) => image::image_command(&ctx().await?, c).await,
        ClientCommand::Tag(a) => image::tag(&ctx().await?, a).await,
        ClientCommand::Rmi(a) => image::rmi(&ctx().await?, a).await,
        ClientCommand::History(a) => image::history(&ctx().await?, a).await,
        ClientCommand::Save(a) => image::save(&ctx().await?, a).await,
        ClientCommand::Load(a) => image::load(&ctx().await?, a).await,
        ClientCommand::Import(a) => image::import(&ctx().await?, a).await,
        ClientCommand::Version(a) => system::version(host, a).await,
        ClientCommand::Info(a) => system::info(&ctx().await?, a).await,
        ClientCommand::System(c) => system::system_command(&ctx().await?, c).await,
        ClientCommand::Events(a) => system::events(&ctx().await?, a).await,
        ClientCommand::Compose(a) => compose::compose(host, a).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    /// Mirrors the top-level command in `main.rs` (global `-H`).
    #[derive(Parser)]
    struct Top {
        #[arg(
            short = 'H',
            long,
            global = true,
            default_value = "unix:///run/corral/docker.sock"
        )]
        host: String,
        #[command(subcommand)]
        cmd: ClientCommand,
    }

    #[test]
    fn command_definitions_are_consistent() {
        Top::command().debug_assert();
    }

    #[test]
    fn run_parses_docker_style_arguments() {
        let t = Top::try_parse_from([
            "corral",
            "-H",
            "unix:///x",
            "run",
            "--rm",
            "-it",
            "-h",
            "box",
            "busybox",
            "ls",
            "-l",
        ])
        .unwrap();
        let ClientCommand::Run(r) = t.cmd else {
            panic!("not run")
        };
        assert!(r.flags.rm && r.flags.interactive && r.flags.tty);
        assert_eq!(r.flags.hostname.as_deref(), Some("box"));
        assert_eq!(r.flags.image, "busybox");
        assert_eq!(r.flags.command, ["ls", "-l"]);
        assert_eq!(t.host, "unix:///x");
        let t =
            Top::try_parse_from(["corral", "exec", "-it", "c1", "sh", "-c", "echo -n x"]).unwrap();
        let ClientCommand::Exec(e) = t.cmd else {
            panic!("not exec")
        };
        assert_eq!((e.container.as_str(), e.command.len()), ("c1", 3));
        assert!(Top::try_parse_from(["corral", "run", "--help"]).is_err());
    }
}
