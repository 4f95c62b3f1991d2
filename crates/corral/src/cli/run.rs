//! `run`, `create`, `start` and `exec`: the commands that create or attach to processes.

use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder};
use clap::{ArgAction, Args};
use serde_json::Value;

use super::client::{api_status, from_bollard, Ctx, Exit, StatusError};
use super::create::{CreateFlags, Env};
use super::http::ApiError;
use super::image::{normalize_ref, pull_image, PullOutput};
use super::opts::{self, PullPolicy};
use super::stream::{self, RawMode};

/// `corral run` arguments.
#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    /// Run container in background and print container ID.
    #[arg(short = 'd', long)]
    pub(crate) detach: bool,
    /// Proxy received signals to the process.
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    pub(crate) sig_proxy: bool,
    /// Container flags.
    #[command(flatten)]
    pub(crate) flags: CreateFlags,
}

/// `corral start` arguments.
#[derive(Args, Debug)]
pub(crate) struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals.
    #[arg(short = 'a', long)]
    pub(crate) attach: bool,
    /// Attach container's STDIN.
    #[arg(short = 'i', long)]
    pub(crate) interactive: bool,
    /// Containers to start.
    #[arg(required = true)]
    pub(crate) containers: Vec<String>,
}

/// `corral exec` arguments.
#[derive(Args, Debug)]
pub(crate) struct ExecArgs {
    /// Detached mode: run command in the background.
    #[arg(short = 'd', long)]
    pub(crate) detach: bool,
    /// Keep STDIN open even if not attached.
    #[arg(short = 'i', long)]
    pub(crate) interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long)]
    pub(crate) tty: bool,
    /// Set environment variables.
    #[arg(short = 'e', long = "env")]
    pub(crate) env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long = "env-file")]
    pub(crate) env_file: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long)]
    pub(crate) workdir: Option<String>,
    /// Username or UID (format: "<name|uid>[:<group|gid>]").
    #[arg(short = 'u', long)]
    pub(crate) user: Option<String>,
    /// Give extended privileges to the command.
    #[arg(long)]
    pub(crate) privileged: bool,
    /// The container.
    pub(crate) container: String,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub(crate) command: Vec<String>,
}

fn local_env() -> (
    impl Fn(&str) -> Option<String>,
    impl Fn(&str) -> std::io::Result<String>,
) {
    (
        |k: &str| std::env::var(k).ok(),
        |p: &str| std::fs::read_to_string(p),
    )
}

/// Maps a failure before the container runs to docker's `run` exit statuses.
fn run_failure(e: &anyhow::Error, cmd: &str) -> StatusError {
    let msg = format!("{e:#}");
    let code = if e.downcast_ref::<ApiError>().is_some() {
        if msg.contains("executable file not found") || msg.contains("no such file or directory") {
            127
        } else if msg.contains("permission denied") {
            126
        } else {
            125
        }
    } else {
        125
    };
    let _ = cmd;
    StatusError {
        code,
        message: format!("corral: {msg}"),
    }
}

async fn create_container(ctx: &Ctx, flags: &CreateFlags, detach: bool) -> anyhow::Result<String> {
    let (var, read) = local_env();
    let plan = flags.plan(
        detach,
        &Env {
            var: &var,
            read: &read,
        },
    )?;
    let image = plan.body.image.clone().unwrap_or_default();
    if plan.pull == PullPolicy::Always {
        pull_image(ctx, &image, PullOutput::Stderr).await?;
    }
    let mut ob = CreateContainerOptionsBuilder::new();
    if let Some(n) = &flags.name {
        ob = ob.name(n);
    }
    if let Some(p) = &flags.platform {
        ob = ob.platform(p);
    }
    let options = ob.build();
    let resp = match ctx
        .docker
        .create_container(Some(options.clone()), plan.body.clone())
        .await
        .map_err(from_bollard)
    {
        Err(e)
            if api_status(&e) == Some(404)
                && plan.pull == PullPolicy::Missing
                && format!("{e}").contains("No such image") =>
        {
            eprintln!("Unable to find image '{}' locally", normalize_ref(&image));
            pull_image(ctx, &image, PullOutput::Stderr).await?;
            ctx.docker
                .create_container(Some(options), plan.body)
                .await
                .map_err(from_bollard)?
        }
        other => other?,
    };
    for w in &resp.warnings {
        eprintln!("WARNING: {w}");
    }
    if let Some(path) = &flags.cidfile {
        std::fs::write(path, &resp.id)
            .map_err(|e| anyhow::anyhow!("failed to write the container ID to the file: {e}"))?;
    }
    Ok(resp.id)
}

/// `corral create`: prints the new container's ID.
pub(crate) async fn create(host: &str, flags: CreateFlags) -> anyhow::Result<()> {
    let (var, read) = local_env();
    flags
        .plan(
            false,
            &Env {
                var: &var,
                read: &read,
            },
        )
        .map_err(|e| StatusError {
            code: 125,
            message: e.to_string(),
        })?;
    let ctx = Ctx::connect(host)
        .await
        .map_err(|e| run_failure(&e, "create"))?;
    let id = create_container(&ctx, &flags, false)
        .await
        .map_err(|e| run_failure(&e, "create"))?;
    println!("{id}");
    Ok(())
}

/// Starts a request for the container's exit and returns once the daemon has most
/// likely registered it (its headers arrived, or a short grace period passed).
async fn spawn_wait(
    ctx: &Ctx,
    id: &str,
    condition: &str,
) -> tokio::task::JoinHandle<anyhow::Result<i64>> {
    let raw = ctx.raw.clone();
    let path = format!("/containers/{id}/wait?condition={condition}");
    let (tx, rx) = tokio::sync::oneshot::channel();
    let handle = tokio::spawn(async move {
        let r = raw
            .request_notify("POST", &path, &[], None, Some(tx))
            .await?;
        if r.status >= 400 {
            return Err(super::http::api_error(r.status, &r.body).into());
        }
        let v: Value = serde_json::from_slice(&r.body)?;
        if let Some(msg) = v.pointer("/Error/Message").and_then(Value::as_str) {
            if !msg.is_empty() {
                anyhow::bail!("{msg}");
            }
        }
        Ok(v.get("StatusCode").and_then(Value::as_i64).unwrap_or(0))
    });
    let _ = tokio::time::timeout(std::time::Duration::from_millis(300), rx).await;
    handle
}

async fn resize(ctx: &Ctx, path_prefix: &str) {
    if let Some((rows, cols)) = stream::terminal_size() {
        let _ = ctx
            .raw
            .call(
                "POST",
                &format!("{path_prefix}/resize?h={rows}&w={cols}"),
                &[],
                None,
            )
            .await;
    }
}

/// Keeps the remote TTY's size in step with ours until aborted.
fn spawn_resizer(ctx: &Ctx, path_prefix: String) -> Option<tokio::task::JoinHandle<()>> {
    let mut sig =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok()?;
    let ctx = ctx.clone();
    Some(tokio::spawn(async move {
        while sig.recv().await.is_some() {
            resize(&ctx, &path_prefix).await;
        }
    }))
}

/// Forwards SIGINT/SIGTERM to the container (docker's `--sig-proxy`).
fn spawn_sig_proxy(ctx: &Ctx, id: &str) -> Option<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt()).ok()?;
    let mut term = signal(SignalKind::terminate()).ok()?;
    let ctx = ctx.clone();
    let id = id.to_string();
    Some(tokio::spawn(async move {
        loop {
            let sig = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
            let _ = ctx
                .raw
                .call(
                    "POST",
                    &format!("/containers/{id}/kill?signal={sig}"),
                    &[],
                    None,
                )
                .await;
        }
    }))
}

/// Attaches to `id`, runs `start`, pumps the streams and returns the exit code.
pub(crate) async fn attach_and_wait(
    ctx: &Ctx,
    id: &str,
    tty: bool,
    stdin: bool,
    wait_condition: &str,
    sig_proxy: bool,
    start: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<i64> {
    let path = format!(
        "/containers/{id}/attach?stream=1&stdin={}&stdout=1&stderr=1",
        u8::from(stdin)
    );
    let hijacked = ctx.raw.hijack("POST", &path, None).await?;
    let waiter = spawn_wait(ctx, id, wait_condition).await;
    start.await?;
    let raw_mode = if tty && stdin {
        RawMode::enable()
    } else {
        None
    };
    let prefix = format!("/containers/{id}");
    let resizer = if tty {
        resize(ctx, &prefix).await;
        spawn_resizer(ctx, prefix)
    } else {
        None
    };
    let proxy = if sig_proxy && !tty {
        spawn_sig_proxy(ctx, id)
    } else {
        None
    };
    let pumped = stream::pump(hijacked, tty, stdin).await;
    drop(raw_mode);
    for t in [resizer, proxy].into_iter().flatten() {
        t.abort();
    }
    pumped?;
    waiter.await?
}

pub(crate) fn exit_code(code: i64) -> u8 {
    u8::try_from(code.rem_euclid(256)).unwrap_or(1)
}

/// `corral run`.
pub(crate) async fn run(host: &str, a: RunArgs) -> anyhow::Result<()> {
    let (var, read) = local_env();
    a.flags
        .plan(
            a.detach,
            &Env {
                var: &var,
                read: &read,
            },
        )
        .map_err(|e| StatusError {
            code: 125,
            message: format!("corral: {e}"),
        })?;
    let ctx = Ctx::connect(host)
        .await
        .map_err(|e| run_failure(&e, "run"))?;
    let id = create_container(&ctx, &a.flags, a.detach)
        .await
        .map_err(|e| run_failure(&e, "run"))?;
    let start = async {
        ctx.docker
            .start_container(&id, None)
            .await
            .map_err(from_bollard)
    };
    if a.detach {
        start.await.map_err(|e| run_failure(&e, "run"))?;
        println!("{id}");
        return Ok(());
    }
    let condition = if a.flags.rm { "removed" } else { "next-exit" };
    let mut start_failed = None;
    let result = attach_and_wait(
        &ctx,
        &id,
        a.flags.tty,
        a.flags.interactive,
        condition,
        a.sig_proxy,
        async {
            start.await.map_err(|e| {
                let s = run_failure(&e, "run");
                start_failed = Some(s.code);
                anyhow::Error::new(s)
            })
        },
    )
    .await;
    match result {
        Ok(code) => Err(Exit(exit_code(code)).into()),
        Err(e) => {
            if start_failed.is_some() && a.flags.rm {
                let opts = RemoveContainerOptionsBuilder::new().force(true).build();
                let _ = ctx.docker.remove_container(&id, Some(opts)).await;
            }
            if e.downcast_ref::<StatusError>().is_some() {
                return Err(e);
            }
            Err(StatusError {
                code: 125,
                message: format!("corral: {e:#}"),
            }
            .into())
        }
    }
}

async fn container_tty(ctx: &Ctx, id: &str) -> anyhow::Result<bool> {
    let c = ctx
        .docker
        .inspect_container(id, None)
        .await
        .map_err(from_bollard)?;
    Ok(c.config.and_then(|c| c.tty).unwrap_or(false))
}

/// `corral start`.
pub(crate) async fn start(ctx: &Ctx, a: StartArgs) -> anyhow::Result<()> {
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            anyhow::bail!("you cannot start and attach multiple containers at once");
        }
        let id = &a.containers[0];
        let tty = container_tty(ctx, id).await?;
        let code = attach_and_wait(ctx, id, tty, a.interactive, "next-exit", true, async {
            ctx.docker
                .start_container(id, None)
                .await
                .map_err(from_bollard)
        })
        .await?;
        return Err(Exit(exit_code(code)).into());
    }
    let mut failed = Vec::new();
    for c in &a.containers {
        match ctx.docker.start_container(c, None).await {
            Ok(()) => println!("{c}"),
            Err(e) => failed.push(format!("{:#}", from_bollard(e))),
        }
    }
    if !failed.is_empty() {
        anyhow::bail!("{}", failed.join("\n"));
    }
    Ok(())
}

/// `corral exec`: exits with the command's exit code.
pub(crate) async fn exec(ctx: &Ctx, a: ExecArgs) -> anyhow::Result<()> {
    let (var, read) = local_env();
    let mut env = Vec::new();
    for f in &a.env_file {
        let content = read(f).map_err(|e| anyhow::anyhow!("open {f}: {e}"))?;
        env.extend(opts::env_file("--env-file", f, &content, Some(&var))?);
    }
    env.extend(a.env.iter().map(|e| opts::env_value(e, &var)));
    let attach = !a.detach;
    let config = bollard::exec::CreateExecOptions::<String> {
        attach_stdin: Some(attach && a.interactive),
        attach_stdout: Some(attach),
        attach_stderr: Some(attach),
        tty: Some(a.tty),
        env: (!env.is_empty()).then_some(env),
        cmd: Some(a.command.clone()),
        privileged: Some(a.privileged),
        user: a.user.clone(),
        working_dir: a.workdir.clone(),
        ..Default::default()
    };
    let created = ctx
        .docker
        .create_exec(&a.container, config)
        .await
        .map_err(from_bollard)?;
    let id = created.id;
    let body = serde_json::json!({"Detach": a.detach, "Tty": a.tty}).to_string();
    if a.detach {
        ctx.raw
            .call(
                "POST",
                &format!("/exec/{id}/start"),
                &[],
                Some(body.as_bytes()),
            )
            .await?;
        return Ok(());
    }
    let hijacked = ctx
        .raw
        .hijack("POST", &format!("/exec/{id}/start"), Some(body.as_bytes()))
        .await?;
    let raw_mode = if a.tty && a.interactive {
        RawMode::enable()
    } else {
        None
    };
    let prefix = format!("/exec/{id}");
    let resizer = if a.tty {
        resize(ctx, &prefix).await;
        spawn_resizer(ctx, prefix)
    } else {
        None
    };
    let pumped = stream::pump(hijacked, a.tty, a.interactive).await;
    drop(raw_mode);
    if let Some(r) = resizer {
        r.abort();
    }
    pumped?;
    let inspect = ctx.docker.inspect_exec(&id).await.map_err(from_bollard)?;
    let code = inspect.exit_code.unwrap_or(0);
    if code != 0 {
        return Err(Exit(exit_code(code)).into());
    }
    Ok(())
}
