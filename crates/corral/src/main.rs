//! `corral`: one binary for the daemon (`corral server`), the per-container shim
//! (`corral shim`, internal) and the command-line client (every other subcommand, a
//! client of the Docker Engine API on the daemon's socket).
#![forbid(unsafe_code)]

mod cli;
mod server;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Corral: a portable container platform.
#[derive(Parser)]
#[command(name = "corral", version, about, propagate_version = true)]
struct Args {
    /// Client commands: the daemon socket to connect to (default
    /// `unix:///run/corral/docker.sock`). `corral server`: an address to listen on,
    /// `unix://PATH` or `tcp://HOST:PORT`, repeatable (default `unix://<run-dir>/docker.sock`).
    #[arg(short = 'H', long, global = true, env = "CORRAL_HOST")]
    host: Vec<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the Corral daemon on this host in the foreground.
    Server(server::ServerArgs),
    /// Internal: the per-container shim (started by the daemon).
    #[command(hide = true)]
    Shim {
        /// Shim arguments, forwarded verbatim.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    #[command(flatten)]
    Client(cli::ClientCommand),
}

fn main() -> ExitCode {
    // The shim must start before any thread exists: libcontainer clones this process.
    let raw: Vec<String> = std::env::args().collect();
    if raw.get(1).map(String::as_str) == Some("shim") {
        let code = corral_runtime::shim::shim_main(raw[2..].iter().cloned());
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    // The daemon's pre-started shim launcher: single-threaded too, it forks shims.
    if raw.get(1).map(String::as_str) == Some(corral_runtime::shim::ZYGOTE_SUBCOMMAND) {
        let code = corral_runtime::shim::zygote_main();
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            use clap::error::ErrorKind;
            let _ = e.print();
            // docker exits 125 for bad flags; help and version are not errors.
            return match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => ExitCode::SUCCESS,
                _ => ExitCode::from(125),
            };
        }
    };
    match args.command {
        Command::Server(s) => server::run(s, &args.host),
        Command::Shim { .. } => ExitCode::FAILURE,
        Command::Client(c) => cli::run(
            args.host
                .last()
                .map_or("unix:///run/corral/docker.sock", String::as_str),
            c,
        ),
    }
}
