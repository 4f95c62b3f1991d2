//! Image commands: `pull`, `push`, `login`, `images`, `image ...`, `tag`, `rmi`,
//! `history`, `save`, `load`, `import`, `commit`.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};

use bollard::query_parameters::{
    CommitContainerOptionsBuilder, CreateImageOptionsBuilder, ImportImageOptionsBuilder,
    PushImageOptionsBuilder, RemoveImageOptionsBuilder, TagImageOptionsBuilder,
};
use clap::{Args, Subcommand};
use futures::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use super::client::{self, from_bollard, Ctx, Exit};
use super::container::{ago, enc, filters_json, go_time, write_stream, InspectArgs};
use super::format::{self, Formatter};
use super::units;

/// `pull` arguments.
#[derive(Args, Debug, Clone)]
pub(crate) struct PullArgs {
    /// Suppress verbose output.
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
    /// Set platform if server is multi-platform capable.
    #[arg(long)]
    pub(crate) platform: Option<String>,
    /// Image reference.
    pub(crate) reference: String,
}

/// `push` arguments.
#[derive(Args, Debug, Clone)]
pub(crate) struct PushArgs {
    /// Suppress verbose output.
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
    /// Image reference.
    pub(crate) reference: String,
}

/// `login` arguments.
#[derive(Args, Debug)]
pub(crate) struct LoginArgs {
    /// Username.
    #[arg(short = 'u', long)]
    pub(crate) username: Option<String>,
    /// Password.
    #[arg(short = 'p', long)]
    pub(crate) password: Option<String>,
    /// Take the password from stdin.
    #[arg(long)]
    pub(crate) password_stdin: bool,
    /// Registry server (default: Docker Hub).
    pub(crate) server: Option<String>,
}

/// `images` arguments.
#[derive(Args, Debug, Clone)]
pub(crate) struct ImagesArgs {
    /// Show all images (default hides intermediate images).
    #[arg(short = 'a', long)]
    pub(crate) all: bool,
    /// Only show image IDs.
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
    /// Show digests.
    #[arg(long)]
    pub(crate) digests: bool,
    /// Don't truncate output.
    #[arg(long)]
    pub(crate) no_trunc: bool,
    /// Filter output based on conditions provided.
    #[arg(short = 'f', long)]
    pub(crate) filter: Vec<String>,
    /// Format output using a custom template.
    #[arg(long)]
    pub(crate) format: Option<String>,
    /// Only list images of this repository.
    pub(crate) repository: Option<String>,
}

/// `tag` arguments.
#[derive(Args, Debug, Clone)]
pub(crate) struct TagArgs {
    /// Source image.
    pub(crate) source: String,
    /// Target reference.
    pub(crate) target: String,
}

/// `rmi` arguments.
#[derive(Args, Debug, Clone)]
pub(crate) struct RmiArgs {
    /// Force removal of the image.
    #[arg(short = 'f', long)]
    pub(crate) force: bool,
    /// Do not delete untagged parents.
    #[arg(long)]
    pub(crate) no_prune: bool,
    /// Images.
    #[arg(required = true)]
    pub(crate) images: Vec<String>,
}

/// `image prune` arguments.
#[derive(Args, Debug, Clone)]
pub(crate) struct PruneArgs {
    /// Remove all unused images, not just dangling ones.
    #[arg(short = 'a', long)]
    pub(crate) all: bool,
    /// Do not prompt for confirmation.
    #[arg(short = 'f', long)]
    pub(crate) force: bool,
    /// Provide filter values (e.g. "until=<timestamp>").
    #[arg(long)]
    pub(crate) filter: Vec<String>,
}

/// `history` arguments.
#[derive(Args, Debug, Clone)]
pub(crate) struct HistoryArgs {
    /// Print sizes and dates in human readable format.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub(crate) human: bool,
    /// Don't truncate output.
    #[arg(long)]
    pub(crate) no_trunc: bool,
    /// Only show image IDs.
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
    /// Format output using a custom template.
    #[arg(long)]
    pub(crate) format: Option<String>,
    /// Image.
    pub(crate) image: String,
}

/// `save` arguments.
#[derive(Args, Debug, Clone)]
pub(crate) struct SaveArgs {
    /// Write to a file, instead of STDOUT.
    #[arg(short = 'o', long)]
    pub(crate) output: Option<String>,
    /// Images.
    #[arg(required = true)]
    pub(crate) images: Vec<String>,
}

/// `load` arguments.
#[derive(Args, Debug, Clone)]
pub(crate) struct LoadArgs {
    /// Read from tar archive file, instead of STDIN.
    #[arg(short = 'i', long)]
    pub(crate) input: Option<String>,
    /// Suppress the load output.
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
}

/// `import` arguments.
#[derive(Args, Debug, Clone)]
pub(crate) struct ImportArgs {
    /// Apply Dockerfile instruction to the created image.
    #[arg(short = 'c', long)]
    pub(crate) change: Vec<String>,
    /// Set commit message for imported image.
    #[arg(short = 'm', long)]
    pub(crate) message: Option<String>,
    /// Tarball file or `-` for stdin.
    pub(crate) file: String,
    /// Repository[:tag] for the new image.
    pub(crate) reference: Option<String>,
}

/// `commit` arguments.
#[derive(Args, Debug, Clone)]
pub(crate) struct CommitArgs {
    /// Author.
    #[arg(short = 'a', long)]
    pub(crate) author: Option<String>,
    /// Apply Dockerfile instruction to the created image.
    #[arg(short = 'c', long)]
    pub(crate) change: Vec<String>,
    /// Commit message.
    #[arg(short = 'm', long)]
    pub(crate) message: Option<String>,
    /// Pause container during commit.
    #[arg(short = 'p', long, default_value_t = true, action = clap::ArgAction::Set)]
    pub(crate) pause: bool,
    /// Container.
    pub(crate) container: String,
    /// Repository[:tag].
    pub(crate) reference: Option<String>,
}

/// `image` subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum ImageCommand {
    /// Display detailed information on one or more images.
    Inspect(ImageInspectArgs),
    /// List images.
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    /// Remove unused images.
    Prune(PruneArgs),
    /// Remove one or more images.
    Rm(RmiArgs),
    /// Download an image from a registry.
    Pull(PullArgs),
    /// Upload an image to a registry.
    Push(PushArgs),
    /// Create a tag that refers to a source image.
    Tag(TagArgs),
    /// Show the history of an image.
    History(HistoryArgs),
    /// Save one or more images to a tar archive.
    Save(SaveArgs),
    /// Load an image from a tar archive or STDIN.
    Load(LoadArgs),
    /// Import the contents from a tarball to create a filesystem image.
    Import(ImportArgs),
}

/// `image inspect` arguments.
#[derive(Args, Debug)]
pub(crate) struct ImageInspectArgs {
    /// Format output using a custom template.
    #[arg(short = 'f', long)]
    pub(crate) format: Option<String>,
    /// Images.
    #[arg(required = true)]
    pub(crate) images: Vec<String>,
}

/// Splits `name[:tag][@digest]` into (name, tag-or-digest); tag defaults to `latest`.
pub(crate) fn split_ref(r: &str) -> (String, String) {
    if let Some((name, digest)) = r.split_once('@') {
        return (name.to_string(), digest.to_string());
    }
    let slash = r.rfind('/').map_or(0, |i| i + 1);
    match r[slash..].rfind(':') {
        Some(i) => (r[..slash + i].to_string(), r[slash + i + 1..].to_string()),
        None => (r.to_string(), "latest".to_string()),
    }
}

/// The familiar form docker prints in "Unable to find image 'busybox:latest' locally".
pub(crate) fn normalize_ref(r: &str) -> String {
    if r.contains('@') {
        return r.to_string();
    }
    let (name, tag) = split_ref(r);
    format!("{name}:{tag}")
}

/// The fully qualified reference `docker pull` prints last (`docker.io/library/x:tag`).
pub(crate) fn canonical_ref(r: &str) -> String {
    let (name, tag) = split_ref(r);
    let sep = if r.contains('@') { "@" } else { ":" };
    let full = if client::registry_of(&name) == client::DOCKER_HUB {
        let path = name
            .trim_start_matches("docker.io/")
            .trim_start_matches("index.docker.io/");
        if path.contains('/') {
            format!("docker.io/{path}")
        } else {
            format!("docker.io/library/{path}")
        }
    } else {
        name
    };
    format!("{full}{sep}{tag}")
}

/// Where pull progress goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PullOutput {
    /// `pull`: progress on stdout.
    Stdout,
    /// `run`/`create`: progress on stderr.
    Stderr,
    /// `pull -q`: nothing.
    Quiet,
}

struct Progress {
    term: bool,
    to_stderr: bool,
    multi: Option<MultiProgress>,
    bars: HashMap<String, ProgressBar>,
}

impl Progress {
    fn new(out: PullOutput) -> Self {
        let to_stderr = out == PullOutput::Stderr;
        let term = match out {
            PullOutput::Stdout => std::io::stdout().is_terminal(),
            PullOutput::Stderr => std::io::stderr().is_terminal(),
            PullOutput::Quiet => false,
        };
        let multi = term.then(|| {
            let target = if to_stderr {
                indicatif::ProgressDrawTarget::stderr()
            } else {
                indicatif::ProgressDrawTarget::stdout()
            };
            MultiProgress::with_draw_target(target)
        });
        Progress {
            term,
            to_stderr,
            multi,
            bars: HashMap::new(),
        }
    }

    fn line(&self, s: &str) {
        if let Some(m) = &self.multi {
            let _ = m.println(s);
        } else if self.to_stderr {
            eprintln!("{s}");
        } else {
            println!("{s}");
        }
    }

    /// Shows one JSON progress message (`status`, `id`, `progressDetail`).
    fn message(
        &mut self,
        id: Option<&str>,
        status: &str,
        current: Option<i64>,
        total: Option<i64>,
    ) {
        let has_progress = current.is_some() && total.is_some_and(|t| t > 0);
        let Some(id) = id.filter(|i| !i.is_empty()) else {
            self.line(status);
            return;
        };
        if !self.term {
            // Plain output: like docker, skip the byte-level progress updates.
            if !has_progress {
                self.line(&format!("{id}: {status}"));
            }
            return;
        }
        let Some(multi) = &self.multi else { return };
        let bar = self.bars.entry(id.to_string()).or_insert_with(|| {
            let b = multi.add(ProgressBar::new(0));
            let style = ProgressStyle::with_template(
                "{prefix}: {msg:<18} {bar:30} {bytes:>10}/{total_bytes:10}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            b.set_style(style);
            b.set_prefix(id.to_string());
            b
        });
        bar.set_message(status.to_string());
        if let (Some(c), Some(t)) = (current, total) {
            if t > 0 {
                bar.set_length(u64::try_from(t).unwrap_or(0));
                bar.set_position(u64::try_from(c).unwrap_or(0));
            }
        }
        if status.contains("complete") || status.starts_with("Already exists") || status == "Pushed"
        {
            bar.finish();
        }
    }
}

/// Pulls `reference`, showing progress on `out`; stored credentials are sent.
pub(crate) async fn pull_image(ctx: &Ctx, reference: &str, out: PullOutput) -> anyhow::Result<()> {
    let (name, tag) = split_ref(reference);
    let mut b = CreateImageOptionsBuilder::new().from_image(&name);
    b = if reference.contains('@') {
        b.from_image(reference)
    } else {
        b.tag(&tag)
    };
    let creds = client::credentials_for(&name);
    let mut stream = ctx.docker_slow.create_image(Some(b.build()), None, creds);
    let mut progress = Progress::new(out);
    while let Some(item) = stream.next().await {
        let info = match item {
            Ok(i) => i,
            Err(bollard::errors::Error::DockerStreamError { error }) => anyhow::bail!("{error}"),
            Err(e) => return Err(from_bollard(e)),
        };
        if out == PullOutput::Quiet {
            continue;
        }
        let detail = info.progress_detail.as_ref();
        progress.message(
            info.id.as_deref(),
            info.status.as_deref().unwrap_or(""),
            detail.and_then(|d| d.current),
            detail.and_then(|d| d.total),
        );
    }
    Ok(())
}

/// `pull`.
pub(crate) async fn pull(ctx: &Ctx, a: PullArgs) -> anyhow::Result<()> {
    let out = if a.quiet {
        PullOutput::Quiet
    } else {
        PullOutput::Stdout
    };
    pull_image(ctx, &a.reference, out).await?;
    println!("{}", canonical_ref(&a.reference));
    Ok(())
}

/// `push`.
pub(crate) async fn push(ctx: &Ctx, a: PushArgs) -> anyhow::Result<()> {
    let (name, tag) = split_ref(&a.reference);
    let creds = client::credentials_for(&name);
    let opts = PushImageOptionsBuilder::new().tag(&tag).build();
    let mut s = ctx.docker_slow.push_image(&name, Some(opts), creds);
    let mut progress = Progress::new(if a.quiet {
        PullOutput::Quiet
    } else {
        PullOutput::Stdout
    });
    while let Some(item) = s.next().await {
        let info = match item {
            Ok(i) => i,
            Err(bollard::errors::Error::DockerStreamError { error }) => anyhow::bail!("{error}"),
            Err(e) => return Err(from_bollard(e)),
        };
        if a.quiet {
            continue;
        }
        let status = info.status.unwrap_or_default();
        let detail = info.progress_detail.as_ref();
        if detail.and_then(|d| d.total).is_none()
            && !matches!(status.as_str(), "Preparing" | "Waiting" | "Pushing")
        {
            progress.message(None, &status, None, None);
        }
    }
    if a.quiet {
        println!("{}", canonical_ref(&a.reference));
    }
    Ok(())
}

fn prompt(label: &str, echo: bool) -> anyhow::Result<String> {
    use std::os::fd::AsFd;
    eprint!("{label}");
    std::io::stderr().flush()?;
    let stdin = std::io::stdin();
    let saved = if !echo && stdin.is_terminal() {
        let saved = nix::sys::termios::tcgetattr(stdin.as_fd())?;
        let mut t = saved.clone();
        t.local_flags.remove(nix::sys::termios::LocalFlags::ECHO);
        nix::sys::termios::tcsetattr(stdin.as_fd(), nix::sys::termios::SetArg::TCSANOW, &t)?;
        Some(saved)
    } else {
        None
    };
    let mut line = String::new();
    let r = stdin.lock().read_line(&mut line);
    if let Some(s) = saved {
        nix::sys::termios::tcsetattr(stdin.as_fd(), nix::sys::termios::SetArg::TCSANOW, &s)?;
        eprintln!();
    }
    r?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// `login`: verifies credentials with the daemon (`POST /auth`) and stores them.
pub(crate) async fn login(ctx: &Ctx, a: LoginArgs) -> anyhow::Result<()> {
    let server = client::server_key(a.server.as_deref().unwrap_or(""));
    if a.password.is_some() && a.password_stdin {
        anyhow::bail!("--password and --password-stdin are mutually exclusive");
    }
    let username = match a.username {
        Some(u) => u,
        None => {
            if a.password_stdin || !std::io::stdin().is_terminal() {
                anyhow::bail!("Error: Cannot perform an interactive login from a non TTY device");
            }
            prompt("Username: ", true)?
        }
    };
    let password = if a.password_stdin {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        s.trim_end_matches(['\r', '\n']).to_string()
    } else if let Some(p) = a.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p
    } else {
        if !std::io::stdin().is_terminal() {
            anyhow::bail!("Error: Cannot perform an interactive login from a non TTY device");
        }
        prompt("Password: ", false)?
    };
    if username.is_empty() || password.is_empty() {
        anyhow::bail!("Error: Non-null Username and Password Required");
    }
    let body =
        json!({"username": username, "password": password, "serveraddress": server}).to_string();
    let resp = ctx
        .raw
        .call("POST", "/auth", &[], Some(body.as_bytes()))
        .await?;
    let v: Value = serde_json::from_slice(&resp).unwrap_or(Value::Null);
    let mut cfg = client::load_config()?;
    client::store_auth(&mut cfg, &server, &username, &password);
    let path = client::save_config(&cfg)?;
    eprintln!(
        "WARNING! Your credentials are stored unencrypted in '{}'.",
        path.display()
    );
    println!(
        "{}",
        v.get("Status")
            .and_then(Value::as_str)
            .unwrap_or("Login Succeeded")
    );
    Ok(())
}

/// Builds docker's `images` rows (one per tag) from `/images/json` entries.
pub(crate) fn image_rows(list: &[Value], trunc: bool) -> Vec<Value> {
    let mut rows = Vec::new();
    for img in list {
        let id = img.get("Id").and_then(Value::as_str).unwrap_or("");
        let created = img.get("Created").and_then(Value::as_i64).unwrap_or(0);
        let size = img.get("Size").and_then(Value::as_i64).unwrap_or(0);
        let strs = |k: &str| -> Vec<String> {
            img.get(k)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let digests = strs("RepoDigests");
        let mut tags: Vec<(String, String)> = strs("RepoTags")
            .iter()
            .filter(|t| t.as_str() != "<none>:<none>")
            .map(|t| split_ref(t))
            .collect();
        if tags.is_empty() {
            match digests.first().and_then(|d| d.split_once('@')) {
                Some((repo, _)) => tags.push((repo.to_string(), "<none>".into())),
                None => tags.push(("<none>".into(), "<none>".into())),
            }
        }
        for (repo, tag) in tags {
            let digest = digests
                .iter()
                .find_map(|d| {
                    d.split_once('@')
                        .filter(|(r, _)| *r == repo)
                        .map(|(_, dg)| dg.to_string())
                })
                .unwrap_or_else(|| "<none>".into());
            rows.push(json!({
                "ID": if trunc { format::trunc_id(id) } else { id.to_string() },
                "Repository": repo,
                "Tag": tag,
                "Digest": digest,
                "CreatedSince": ago(created),
                "CreatedAt": go_time(created),
                "Size": units::human_size_prec(size as f64, 3),
                "VirtualSize": units::human_size_prec(size as f64, 3),
                "Containers": img.get("Containers").and_then(Value::as_i64).filter(|c| *c >= 0).map_or("N/A".to_string(), |c| c.to_string()),
                "SharedSize": "N/A",
                "UniqueSize": "N/A",
            }));
        }
    }
    rows
}

/// `images`.
pub(crate) async fn images(ctx: &Ctx, a: ImagesArgs) -> anyhow::Result<()> {
    let mut filters = a.filter.clone();
    if let Some(r) = &a.repository {
        filters.push(format!("reference={r}"));
    }
    let mut path = format!("/images/json?all={}&digests=1", u8::from(a.all));
    if let Some(f) = filters_json(&filters)? {
        path.push_str(&format!("&filters={}", enc(&f)));
    }
    let list: Vec<Value> = serde_json::from_slice(&ctx.raw.call("GET", &path, &[], None).await?)?;
    let rows = image_rows(&list, !a.no_trunc);
    if a.quiet {
        let mut seen = Vec::new();
        for r in &rows {
            let id = r["ID"].as_str().unwrap_or("").to_string();
            if !seen.contains(&id) {
                println!("{id}");
                seen.push(id);
            }
        }
        return Ok(());
    }
    let fmt = a.format.clone().unwrap_or_else(|| {
        if a.digests {
            "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
                .into()
        } else {
            "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}".into()
        }
    });
    print!(
        "{}",
        Formatter::new(&fmt, format::IMAGE_HEADERS)?.render(&rows)?
    );
    Ok(())
}

/// `tag`.
pub(crate) async fn tag(ctx: &Ctx, a: TagArgs) -> anyhow::Result<()> {
    let (repo, tag) = split_ref(&a.target);
    let o = TagImageOptionsBuilder::new().repo(&repo).tag(&tag).build();
    ctx.docker
        .tag_image(&a.source, Some(o))
        .await
        .map_err(from_bollard)
}

/// `rmi`.
pub(crate) async fn rmi(ctx: &Ctx, a: RmiArgs) -> anyhow::Result<()> {
    let mut failed = false;
    for img in &a.images {
        let o = RemoveImageOptionsBuilder::new()
            .force(a.force)
            .noprune(a.no_prune)
            .build();
        match ctx.docker.remove_image(img, Some(o), None).await {
            Ok(items) => {
                for i in items {
                    if let Some(u) = i.untagged {
                        println!("Untagged: {u}");
                    }
                    if let Some(d) = i.deleted {
                        println!("Deleted: {d}");
                    }
                }
            }
            Err(e) => {
                eprintln!("{:#}", from_bollard(e));
                failed = true;
            }
        }
    }
    if failed {
        return Err(Exit(1).into());
    }
    Ok(())
}

fn confirm(question: &str) -> anyhow::Result<bool> {
    print!("{question}\nAre you sure you want to continue? [y/N] ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// `image prune`.
pub(crate) async fn prune(ctx: &Ctx, a: PruneArgs) -> anyhow::Result<()> {
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !a.force && !confirm(warning)? {
        return Ok(());
    }
    let mut filters = a.filter.clone();
    if a.all {
        filters.push("dangling=false".into());
    }
    let mut path = "/images/prune".to_string();
    if let Some(f) = filters_json(&filters)? {
        path.push_str(&format!("?filters={}", enc(&f)));
    }
    let v: Value = serde_json::from_slice(&ctx.raw.call("POST", &path, &[], None).await?)?;
    let deleted = v
        .get("ImagesDeleted")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Images:");
        for d in &deleted {
            if let Some(u) = d.get("Untagged").and_then(Value::as_str) {
                println!("untagged: {u}");
            }
            if let Some(x) = d.get("Deleted").and_then(Value::as_str) {
                println!("deleted: {x}");
            }
        }
        println!();
    }
    let space = v
        .get("SpaceReclaimed")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    println!("Total reclaimed space: {}", units::human_size(space));
    Ok(())
}

/// `history`.
pub(crate) async fn history(ctx: &Ctx, a: HistoryArgs) -> anyhow::Result<()> {
    let list: Vec<Value> = serde_json::from_slice(
        &ctx.raw
            .call(
                "GET",
                &format!("/images/{}/history", enc(&a.image)),
                &[],
                None,
            )
            .await?,
    )?;
    let trunc = !a.no_trunc;
    let rows: Vec<Value> = list
        .iter()
        .map(|h| {
            let id = h.get("Id").and_then(Value::as_str).unwrap_or("");
            let created = h.get("Created").and_then(Value::as_i64).unwrap_or(0);
            let size = h.get("Size").and_then(Value::as_i64).unwrap_or(0);
            let by = h.get("CreatedBy").and_then(Value::as_str).unwrap_or("").replace('\t', " ");
            json!({
                "ID": if id == "<missing>" { id.to_string() } else if trunc { format::trunc_id(id) } else { id.to_string() },
                "CreatedSince": if a.human { ago(created) } else { go_time(created) },
                "CreatedAt": go_time(created),
                "CreatedBy": if trunc { format::ellipsis(&by, 45) } else { by },
                "Size": if a.human { units::human_size_prec(size as f64, 3) } else { size.to_string() },
                "Comment": h.get("Comment").and_then(Value::as_str).unwrap_or(""),
            })
        })
        .collect();
    let headers = [
        ("ID", "IMAGE"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("CreatedBy", "CREATED BY"),
        ("Size", "SIZE"),
        ("Comment", "COMMENT"),
    ];
    let fmt = if a.quiet {
        "{{.ID}}".to_string()
    } else {
        a.format.clone().unwrap_or_else(|| {
            "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}".into()
        })
    };
    print!("{}", Formatter::new(&fmt, &headers)?.render(&rows)?);
    Ok(())
}

/// `save`.
pub(crate) async fn save(ctx: &Ctx, a: SaveArgs) -> anyhow::Result<()> {
    let names: Vec<&str> = a.images.iter().map(String::as_str).collect();
    let s = ctx.docker_slow.export_images(&names);
    write_stream(a.output.as_deref(), Box::pin(s)).await
}

async fn read_input(path: Option<&str>) -> anyhow::Result<Vec<u8>> {
    match path {
        Some("-") | None => {
            if std::io::stdin().is_terminal() {
                anyhow::bail!("requested load from stdin, but stdin is empty");
            }
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
            Ok(buf)
        }
        Some(p) => Ok(tokio::fs::read(p)
            .await
            .map_err(|e| anyhow::anyhow!("open {p}: {e}"))?),
    }
}

/// `load`.
pub(crate) async fn load(ctx: &Ctx, a: LoadArgs) -> anyhow::Result<()> {
    let data = read_input(a.input.as_deref()).await?;
    // Like docker: progress only for a terminal.
    let quiet = a.quiet || !std::io::stdout().is_terminal();
    let o = ImportImageOptionsBuilder::new().quiet(quiet).build();
    let mut progress = Progress::new(if quiet {
        PullOutput::Quiet
    } else {
        PullOutput::Stdout
    });
    let mut s = ctx
        .docker_slow
        .import_image(o, bollard::body_full(data.into()), None);
    while let Some(item) = s.next().await {
        let info = match item {
            Ok(i) => i,
            Err(bollard::errors::Error::DockerStreamError { error }) => anyhow::bail!("{error}"),
            Err(e) => return Err(from_bollard(e)),
        };
        if let Some(text) = info.stream {
            print!("{text}");
        } else if let Some(st) = info.status {
            if !quiet {
                let detail = info.progress_detail.as_ref();
                progress.message(
                    info.id.as_deref(),
                    &st,
                    detail.and_then(|d| d.current),
                    detail.and_then(|d| d.total),
                );
            }
        }
    }
    Ok(())
}

/// `import`: prints the new image's ID.
pub(crate) async fn import(ctx: &Ctx, a: ImportArgs) -> anyhow::Result<()> {
    let data = read_input(Some(a.file.as_str())).await?;
    let mut b = CreateImageOptionsBuilder::new().from_src("-");
    if let Some(r) = &a.reference {
        let (repo, tag) = split_ref(r);
        b = b.repo(&repo).tag(&tag);
    }
    if let Some(m) = &a.message {
        b = b.message(m);
    }
    if !a.change.is_empty() {
        b = b.changes(a.change.clone());
    }
    let mut s =
        ctx.docker_slow
            .create_image(Some(b.build()), Some(bollard::body_full(data.into())), None);
    while let Some(item) = s.next().await {
        let info = match item {
            Ok(i) => i,
            Err(bollard::errors::Error::DockerStreamError { error }) => anyhow::bail!("{error}"),
            Err(e) => return Err(from_bollard(e)),
        };
        if let Some(st) = info.status {
            println!("{st}");
        }
    }
    Ok(())
}

/// `commit`: prints the new image's ID.
pub(crate) async fn commit(ctx: &Ctx, a: CommitArgs) -> anyhow::Result<()> {
    let mut b = CommitContainerOptionsBuilder::new()
        .container(&a.container)
        .pause(a.pause);
    if let Some(r) = &a.reference {
        let (repo, tag) = split_ref(r);
        b = b.repo(&repo).tag(&tag);
    }
    if let Some(m) = &a.message {
        b = b.comment(m);
    }
    if let Some(au) = &a.author {
        b = b.author(au);
    }
    let changes = a.change.join("\n");
    if !changes.is_empty() {
        b = b.changes(&changes);
    }
    let r = ctx
        .docker_slow
        .commit_container(b.build(), bollard::models::ContainerConfig::default())
        .await
        .map_err(from_bollard)?;
    println!("{}", r.id);
    Ok(())
}

/// `image ...` subcommands.
pub(crate) async fn image_command(ctx: &Ctx, c: ImageCommand) -> anyhow::Result<()> {
    match c {
        ImageCommand::Inspect(a) => {
            let args = InspectArgs {
                format: a.format,
                typ: Some("image".into()),
                size: false,
                names: a.images,
            };
            super::container::inspect(ctx, args).await
        }
        ImageCommand::Ls(a) => images(ctx, a).await,
        ImageCommand::Prune(a) => prune(ctx, a).await,
        ImageCommand::Rm(a) => rmi(ctx, a).await,
        ImageCommand::Pull(a) => pull(ctx, a).await,
        ImageCommand::Push(a) => push(ctx, a).await,
        ImageCommand::Tag(a) => tag(ctx, a).await,
        ImageCommand::History(a) => history(ctx, a).await,
        ImageCommand::Save(a) => save(ctx, a).await,
        ImageCommand::Load(a) => load(ctx, a).await,
        ImageCommand::Import(a) => import(ctx, a).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_split_and_normalize() {
        assert_eq!(split_ref("busybox"), ("busybox".into(), "latest".into()));
        assert_eq!(
            split_ref("localhost:5000/a/b:1.2"),
            ("localhost:5000/a/b".into(), "1.2".into())
        );
        assert_eq!(
            split_ref("localhost:5000/a"),
            ("localhost:5000/a".into(), "latest".into())
        );
        assert_eq!(split_ref("x@sha256:ab"), ("x".into(), "sha256:ab".into()));
        assert_eq!(normalize_ref("busybox"), "busybox:latest");
        assert_eq!(canonical_ref("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(canonical_ref("me/app:1"), "docker.io/me/app:1");
        assert_eq!(canonical_ref("localhost:5000/x"), "localhost:5000/x:latest");
    }

    #[test]
    fn image_rows_expand_tags_and_dangling() {
        let list = vec![
            json!({"Id": "sha256:a60fddd249493331bc4b", "Created": 0, "Size": 1_983_000, "RepoTags": ["busybox:latest", "bb:1"], "RepoDigests": ["busybox@sha256:dd"]}),
            json!({"Id": "sha256:ffff11112222333344", "Created": 0, "Size": 0, "RepoTags": null}),
        ];
        let rows = image_rows(&list, true);
        assert_eq!(rows.len(), 3);
        assert_eq!(
            (rows[0]["Repository"].as_str(), rows[0]["Tag"].as_str()),
            (Some("busybox"), Some("latest"))
        );
        assert_eq!(rows[0]["Digest"], "sha256:dd");
        assert_eq!(rows[0]["ID"], "a60fddd24949");
        assert_eq!(rows[0]["Size"], "1.98MB");
        assert_eq!(rows[1]["Digest"], "<none>");
        assert_eq!(
            (rows[2]["Repository"].as_str(), rows[2]["Tag"].as_str()),
            (Some("<none>"), Some("<none>"))
        );
    }
}
