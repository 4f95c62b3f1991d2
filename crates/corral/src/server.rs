//! `corral server`: configuration, logging, the engine and the Docker API socket.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Args;
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
pub(crate) fn run(args: ServerArgs) -> ExitCode {
    init_tracing();
    let result = config(&args).and_then(|cfg| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("corral-worker")
            .build()
            .context("building the async runtime")?;
        rt.block_on(serve(cfg, args.socket, args.socket_mode))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("corral server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(cfg: EngineConfig, socket: Option<PathBuf>, mode: u32) -> anyhow::Result<()> {
    let socket = socket.unwrap_or_else(|| cfg.run_dir.join("docker.sock"));
    std::fs::create_dir_all(&cfg.run_dir)
        .with_context(|| format!("creating {}", cfg.run_dir.display()))?;
    let engine = LocalEngine::open(cfg)
        .await
        .context("starting the engine")?;
    let engine = Arc::new(engine);
    let listener = corral_docker_api::bind(&socket, mode)
        .with_context(|| format!("binding {}", socket.display()))?;
    tracing::info!(socket = %socket.display(), "serving the Docker Engine API");
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
    corral_docker_api::serve(listener, engine.clone(), shutdown)
        .await
        .context("serving the API")?;
    engine.shutdown().await;
    let _ = std::fs::remove_file(&socket);
    Ok(())
}
