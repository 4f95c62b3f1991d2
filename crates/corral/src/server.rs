//! `corral server`: configuration, logging, the engine and the Docker API socket.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Args;
use corral_docker_api::{ListenAddr, ListenPlan, TlsOptions};
use corral_engine::{EngineConfig, LocalEngine, RuntimeConfig};

/// Flags of `corral server`. Every path hangs off `--data-dir` and `--run-dir`, so several
/// daemons (tests, simulated hosts) run side by side without touching each other.
#[derive(Args, Debug)]
pub(crate) struct ServerArgs {
    /// Persistent state: database, images, container layers and logs.
    #[arg(long, env = "CORRAL_DATA_DIR", default_value = "/var/lib/corral")]
    data_dir: PathBuf,
    /// Runtime state: the API socket, shim sockets, OCI bundles.
    #[arg(long, env = "CORRAL_RUN_DIR", default_value = "/run/corral")]
    run_dir: PathBuf,
    /// Instance name; the cgroup parent is `corral-<instance>`.
    #[arg(long, env = "CORRAL_INSTANCE", default_value = "default")]
    instance: String,
    /// API socket path (default: `<run-dir>/docker.sock`).
    #[arg(long, env = "CORRAL_SOCKET")]
    socket: Option<PathBuf>,
    /// Permission bits of the API socket (octal).
    #[arg(long, default_value = "660", value_parser = parse_mode)]
    socket_mode: u32,
    /// Group (name or gid) that owns the unix API sockets, so its members reach the API
    /// without root; by default only root does.
    #[arg(long, short = 'G', env = "CORRAL_GROUP")]
    group: Option<String>,
    /// Serve TCP listeners over TLS without asking clients for certificates.
    #[arg(long)]
    tls: bool,
    /// Serve TCP listeners over TLS and require client certificates signed by `--tlscacert`.
    #[arg(long)]
    tlsverify: bool,
    /// The CA certificate (PEM) that signs client certificates.
    #[arg(long)]
    tlscacert: Option<PathBuf>,
    /// The server certificate chain (PEM).
    #[arg(long)]
    tlscert: Option<PathBuf>,
    /// The server private key (PEM).
    #[arg(long)]
    tlskey: Option<PathBuf>,
    /// The runtime used when a container names none: `libcontainer` (built in) or a name
    /// given with `--add-runtime` (`runc` is registered when found on PATH).
    #[arg(long, env = "CORRAL_DEFAULT_RUNTIME", default_value = "libcontainer")]
    default_runtime: String,
    /// Registers an external OCI runtime binary: `NAME=PATH`.
    #[arg(long = "add-runtime", value_parser = parse_runtime)]
    add_runtime: Vec<(String, PathBuf)>,
    /// A registry reached over plain HTTP (localhost and 127.0.0.0/8 always are).
    #[arg(long = "insecure-registry")]
    insecure_registries: Vec<String>,
    /// Default maximum size of one container log file, in bytes.
    #[arg(long, default_value_t = 10 * 1024 * 1024)]
    log_max_size: u64,
    /// Default number of container log files kept.
    #[arg(long, default_value_t = 3)]
    log_max_files: u32,
}

fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8)
        .map_err(|_| format!("invalid socket mode {s:?}: expected octal like 660"))
}

fn parse_runtime(s: &str) -> Result<(String, PathBuf), String> {
    let (name, path) = s
        .split_once('=')
        .ok_or_else(|| format!("invalid runtime {s:?}: expected NAME=PATH"))?;
    if name.is_empty() || path.is_empty() {
        return Err(format!("invalid runtime {s:?}: expected NAME=PATH"));
    }
    Ok((name.to_owned(), PathBuf::from(path)))
}

fn find_on_path(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(bin))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .chain([
            PathBuf::from("/usr/sbin").join(bin),
            PathBuf::from("/usr/bin").join(bin),
        ])
        .find(|p| p.is_file())
}

/// Resolves `--group`: a group name from the group database or a numeric gid.
fn resolve_group(group: &str) -> anyhow::Result<u32> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(group) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => bail!("--group {group}: no such group"),
        Err(e) => bail!("--group {group}: looking up the group: {e}"),
    }
}

/// Validates `-H`, the socket options and the TLS flags into a listen plan, before anything
/// is bound. Without `-H` the daemon listens on `--socket` (default `<run-dir>/docker.sock`).
fn listen_plan(args: &ServerArgs, hosts: &[String]) -> anyhow::Result<ListenPlan> {
    let addrs = if hosts.is_empty() {
        let socket = args
            .socket
            .clone()
            .unwrap_or_else(|| args.run_dir.join("docker.sock"));
        vec![ListenAddr::Unix(socket)]
    } else {
        if args.socket.is_some() {
            bail!("--socket and -H are exclusive: give the socket as -H unix://PATH");
        }
        hosts
            .iter()
            .map(|h| ListenAddr::parse(h))
            .collect::<Result<Vec<_>, _>>()?
    };
    let plan = ListenPlan {
        addrs,
        socket_mode: args.socket_mode,
        socket_gid: args.group.as_deref().map(resolve_group).transpose()?,
        tls: TlsOptions {
            tls: args.tls,
            verify: args.tlsverify,
            ca: args.tlscacert.clone(),
            cert: args.tlscert.clone(),
            key: args.tlskey.clone(),
        },
    };
    for plain in plan.validate()? {
        tracing::warn!(
            addr = %plain,
            "serving the API on plain TCP without TLS: any local user who connects is root on this host"
        );
    }
    // Fail on unreadable certificates before the engine starts.
    if plan.tls.enabled() {
        corral_docker_api::server_config(&plan.tls)?;
    }
    Ok(plan)
}

/// Validates flags into the engine's configuration before anything touches the host.
fn config(args: &ServerArgs) -> anyhow::Result<EngineConfig> {
    if !args
        .instance
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        || args.instance.is_empty()
    {
        bail!(
            "invalid instance name {:?}: use letters, digits, '-' and '_'",
            args.instance
        );
    }
    let run_dir_len = args.run_dir.as_os_str().len();
    if run_dir_len > corral_engine::MAX_RUN_DIR_LEN {
        bail!(
            "--run-dir {} is too long ({run_dir_len} bytes, at most {}): shim socket paths under it would not fit in a unix socket address",
            args.run_dir.display(),
            corral_engine::MAX_RUN_DIR_LEN
        );
    }
    let mut runtimes = BTreeMap::new();
    runtimes.insert("libcontainer".to_owned(), RuntimeConfig::Libcontainer);
    if let Some(runc) = find_on_path("runc") {
        runtimes.insert("runc".to_owned(), RuntimeConfig::External { path: runc });
    }
    for (name, path) in &args.add_runtime {
        if !path.is_file() {
            bail!("runtime {name}: {} does not exist", path.display());
        }
        runtimes.insert(name.clone(), RuntimeConfig::External { path: path.clone() });
    }
    if !runtimes.contains_key(&args.default_runtime) {
        bail!(
            "default runtime {:?} is not registered (known: {})",
            args.default_runtime,
            runtimes.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    let shim_exe = std::env::current_exe().context("locating the corral binary for shims")?;
    Ok(EngineConfig {
        data_dir: args.data_dir.clone(),
        run_dir: args.run_dir.clone(),
        instance: args.instance.clone(),
        shim_exe,
        default_runtime: args.default_runtime.clone(),
        runtimes,
        insecure_registries: args.insecure_registries.clone(),
        log_max_size: args.log_max_size,
        log_max_files: args.log_max_files,
    })
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("CORRAL_LOG")
        .unwrap_or_else(|_| EnvFilter::new("warn,corral=info"));
    let json = std::env::var("CORRAL_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Runs the daemon until SIGINT or SIGTERM. Containers keep running after it exits.
pub(crate) fn run(args: ServerArgs, hosts: &[String]) -> ExitCode {
    init_tracing();
    let result = config(&args).and_then(|cfg| {
        let plan = listen_plan(&args, hosts)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("corral-worker")
            .build()
            .context("building the async runtime")?;
        rt.block_on(serve(cfg, plan))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("corral server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(cfg: EngineConfig, plan: ListenPlan) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cfg.run_dir)
        .with_context(|| format!("creating {}", cfg.run_dir.display()))?;
    // Shims are forked from a pre-started launcher instead of executing this binary per
    // container (falls back to executing it when the zygote is unavailable).
    if std::env::var_os("CORRAL_SHIM_ZYGOTE").is_none_or(|v| v != "0") {
        corral_runtime::shim::start_zygote(&cfg.shim_exe, &cfg.run_dir);
    }
    let engine = LocalEngine::open(cfg)
        .await
        .context("starting the engine")?;
    let engine = Arc::new(engine);
    let listeners = match corral_docker_api::bind_all(&plan).await {
        Ok(l) => l,
        Err(e) => {
            engine.shutdown().await;
            return Err(e.into());
        }
    };
    for l in &listeners {
        tracing::info!(listener = %l.describe(), "serving the Docker Engine API");
    }
    let shutdown = async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down; containers keep running");
    };
    let served = corral_docker_api::serve(listeners, engine.clone(), shutdown)
        .await
        .context("serving the API");
    engine.shutdown().await;
    served
}
