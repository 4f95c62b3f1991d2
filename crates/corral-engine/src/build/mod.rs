//! `docker build` with dockerd's classic builder semantics, on top of [`Engine`] primitives:
//! each `RUN` is a container created from the current image, started, waited for and
//! committed; each config-only instruction commits an unchanged container with the new
//! config (an `empty_layer` history entry); `COPY`/`ADD` put a tar into a container and
//! commit it. The decisions (parsing, expansion, what each instruction does) live in the
//! pure [`dockerfile`], [`plan`] and [`ignore`] modules; this module only acts.
//! [`changes`] applies the same instructions to a config for `docker commit --change`
//! and `docker import --change`.

pub mod changes;
pub mod dockerfile;
pub mod ignore;
pub mod plan;

mod context;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use corral_core::ContainerSpec;
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::api::{AttachOptions, BoxRead, CommitOptions, Credentials, Engine, WaitCondition};
pub use context::unpack_context;
use dockerfile::Instruction;
pub use plan::BuildError;
use plan::{Action, Stage};

/// The `POST /build` parameters the builder honours.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// `name[:tag]` references to tag the result with.
    pub tags: Vec<String>,
    /// Dockerfile path in the context (`Dockerfile` when empty).
    pub dockerfile: String,
    /// `--build-arg` values (`None`: take the value from the environment, none here).
    pub build_args: BTreeMap<String, Option<String>>,
    /// `--label` values added to the final image.
    pub labels: BTreeMap<String, String>,
    /// Remove intermediate containers after a successful step.
    pub remove: bool,
    /// Always remove intermediate containers, even after a failure.
    pub force_remove: bool,
    /// Only print the image id.
    pub quiet: bool,
    /// Stop after this stage.
    pub target: Option<String>,
    /// Always pull the `FROM` images.
    pub pull: bool,
    /// Network mode of `RUN` containers (`bridge` when unset).
    pub network_mode: Option<String>,
    /// Registry credentials for pulls.
    pub creds: Credentials,
}

/// One message of the build's output stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildMessage {
    /// Text for the terminal (`{"stream": …}`).
    Stream(String),
    /// Pull progress (`{"status": …, "id": …}`).
    Status {
        /// Layer or tag the status is about.
        id: String,
        /// The status text.
        status: String,
    },
    /// The built image id (`{"aux": {"ID": …}}`).
    Aux(String),
}

fn short(id: &str) -> &str {
    let h = id.strip_prefix("sha256:").unwrap_or(id);
    &h[..h.len().min(12)]
}

/// Output, buffered in quiet mode.
struct Out {
    tx: mpsc::Sender<BuildMessage>,
    quiet: bool,
    buf: String,
}

impl Out {
    async fn stream(&mut self, s: impl Into<String>) {
        let s = s.into();
        if self.quiet {
            self.buf.push_str(&s);
        } else {
            let _ = self.tx.send(BuildMessage::Stream(s)).await;
        }
    }

    async fn status(&mut self, id: String, status: String) {
        if !self.quiet {
            let _ = self.tx.send(BuildMessage::Status { id, status }).await;
        }
    }
}

struct Stanza {
    name: Option<String>,
    from: Instruction,
    commands: Vec<Instruction>,
}

/// A `name[:tag]` split as `tag_image` takes it (`latest` by default).
fn split_tag(t: &str) -> (String, String) {
    let slash = t.rfind('/').map_or(0, |i| i + 1);
    match t[slash..].rfind(':') {
        Some(i) => (t[..slash + i].to_owned(), t[slash + i + 1..].to_owned()),
        None => (t.to_owned(), "latest".to_owned()),
    }
}

/// Builds the image described by the Dockerfile in the unpacked context `ctx`; returns
/// its id. Messages go to `tx` as dockerd's classic builder prints them.
///
/// # Errors
/// A bad Dockerfile ([`BuildError::invalid`]), a failed pull, `RUN` or `COPY`.
pub async fn build(
    engine: Arc<dyn Engine>,
    ctx: &Path,
    opts: BuildOptions,
    tx: mpsc::Sender<BuildMessage>,
) -> Result<String, BuildError> {
    let mut out = Out {
        tx: tx.clone(),
        quiet: opts.quiet,
        buf: String::new(),
    };
    let res = Builder {
        engine,
        ctx: context::Context::open(ctx)?,
        opts,
    }
    .run(&mut out)
    .await;
    if res.is_err() && out.quiet && !out.buf.is_empty() {
        let _ = tx
            .send(BuildMessage::Stream(std::mem::take(&mut out.buf)))
            .await;
    }
    res
}

struct Builder {
    engine: Arc<dyn Engine>,
    ctx: context::Context,
    opts: BuildOptions,
}

impl Builder {
    async fn run(&self, out: &mut Out) -> Result<String, BuildError> {
        let name = if self.opts.dockerfile.is_empty() {
            "Dockerfile"
        } else {
            self.opts.dockerfile.as_str()
        };
        for t in &self.opts.tags {
            let (repo, tag) = split_tag(t);
            corral_oci::Reference::parse(&format!("{repo}:{tag}"))
                .map_err(|_| BuildError::invalid(format!("invalid reference format: {t}")))?;
        }
        let text = self.ctx.dockerfile(name)?;
        let df = dockerfile::parse(&text).map_err(|e| BuildError::invalid(e.to_string()))?;
        let escape = df.escape;
        let mut instrs = df.instructions;
        if !self.opts.labels.is_empty() {
            let rest: Vec<String> = self
                .opts
                .labels
                .iter()
                .map(|(k, v)| format!("{k:?}='{v}'"))
                .collect();
            let rest = rest.join(" ");
            instrs.push(Instruction {
                line: 0,
                keyword: "LABEL".into(),
                flags: Vec::new(),
                original: format!("LABEL {rest}"),
                rest,
            });
        }
        // ARGs before the first FROM, then stages.
        let mut meta = Vec::new();
        let mut stages: Vec<Stanza> = Vec::new();
        for ins in instrs {
            if ins.keyword == "FROM" {
                let words: Vec<&str> = ins.rest.split_whitespace().collect();
                let name = match words.as_slice() {
                    [_] => None,
                    [_, as_, n] if as_.eq_ignore_ascii_case("as") => Some(n.to_ascii_lowercase()),
                    _ => {
                        return Err(BuildError::invalid(format!(
                            "dockerfile parse error line {}: FROM requires either one or three arguments",
                            ins.line
                        )))
                    }
                };
                if ins.flag("platform").is_some_and(|p| !platform_ok(p)) {
                    return Err(BuildError::invalid(format!(
                        "FROM --platform={}: corral builds for linux/amd64 only",
                        ins.flag("platform").unwrap_or("")
                    )));
                }
                stages.push(Stanza {
                    name,
                    from: ins,
                    commands: Vec::new(),
                });
            } else if let Some(s) = stages.last_mut() {
                s.commands.push(ins);
            } else if ins.keyword == "ARG" {
                meta.push(ins);
            } else {
                return Err(BuildError::invalid(
                    "Please provide a source image with `from` prior to commit",
                ));
            }
        }
        if stages.is_empty() {
            return Err(BuildError::invalid(
                "Please provide a source image with `from` prior to commit",
            ));
        }
        if let Some(t) = self.opts.target.as_deref().filter(|t| !t.is_empty()) {
            let t = t.to_ascii_lowercase();
            let ix = stages
                .iter()
                .position(|s| s.name.as_deref() == Some(t.as_str()))
                .ok_or_else(|| {
                    BuildError::invalid(format!("failed to reach build target {t} in Dockerfile"))
                })?;
            stages.truncate(ix + 1);
        }
        let total = meta.len() + stages.iter().map(|s| s.commands.len() + 1).sum::<usize>();
        let mut step = 0;
        let mut used: Vec<String> = Vec::new();
        // Global ARGs.
        let mut global: BTreeMap<String, Option<String>> = BTreeMap::new();
        for ins in &meta {
            step += 1;
            out.stream(format!("Step {step}/{total} : {}\n", ins.original))
                .await;
            let mut st = Stage {
                escape,
                args: global.clone(),
                ..Stage::default()
            };
            st.apply(ins, &self.opts.build_args, &BTreeMap::new(), &mut used)?;
            global = st.args;
        }
        let mut built: Vec<(Option<String>, String)> = Vec::new();
        let mut image_id = String::new();
        for stanza in &stages {
            step += 1;
            out.stream(format!("Step {step}/{total} : {}\n", stanza.from.original))
                .await;
            let vars: BTreeMap<String, String> = global
                .iter()
                .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
                .collect();
            let base = stanza.from.rest.split_whitespace().next().unwrap_or("");
            let base = dockerfile::expand(base, &vars, escape)
                .map_err(|e| BuildError::invalid(e.to_string()))?;
            let (id, config) = self.base_image(&base, &built, out).await?;
            image_id = id;
            out.stream(format!(" ---> {}\n", short(&image_id))).await;
            let mut st = Stage {
                config,
                escape,
                ..Stage::default()
            };
            if st
                .config
                .get("OnBuild")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty())
            {
                return Err(BuildError::failed(format!(
                    "the base image {base} has ONBUILD triggers, which corral's builder does not run yet"
                )));
            }
            for ins in &stanza.commands {
                step += 1;
                out.stream(format!("Step {step}/{total} : {}\n", ins.original))
                    .await;
                let action = st.apply(ins, &self.opts.build_args, &global, &mut used)?;
                image_id = self.act(&image_id, &st, action, &built, out).await?;
                out.stream(format!(" ---> {}\n", short(&image_id))).await;
            }
            built.push((stanza.name.clone(), image_id.clone()));
        }
        let unused: Vec<&String> = self
            .opts
            .build_args
            .keys()
            .filter(|k| !used.contains(k) && !global.contains_key(*k) && !is_predefined(k))
            .collect();
        if !unused.is_empty() {
            let names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
            out.stream(format!(
                "[Warning] One or more build-args [{}] were not consumed\n",
                names.join(" ")
            ))
            .await;
        }
        let _ = out.tx.send(BuildMessage::Aux(image_id.clone())).await;
        out.stream(format!("Successfully built {}\n", short(&image_id)))
            .await;
        for t in &self.opts.tags {
            let (repo, tag) = split_tag(t);
            self.engine
                .tag_image(&image_id, &repo, &tag)
                .await
                .map_err(|e| BuildError::failed(e.to_string()))?;
            out.stream(format!("Successfully tagged {repo}:{tag}\n"))
                .await;
        }
        if out.quiet {
            let _ = out
                .tx
                .send(BuildMessage::Stream(format!("{image_id}\n")))
                .await;
        }
        Ok(image_id)
    }

    /// The `FROM` image: a previous stage, a local image, or pulled.
    async fn base_image(
        &self,
        base: &str,
        built: &[(Option<String>, String)],
        out: &mut Out,
    ) -> Result<(String, serde_json::Map<String, Value>), BuildError> {
        let lower = base.to_ascii_lowercase();
        if lower == "scratch" {
            return Err(BuildError::failed(
                "FROM scratch is not supported by corral's builder yet",
            ));
        }
        let stage = built
            .iter()
            .rev()
            .find(|(n, _)| n.as_deref() == Some(lower.as_str()));
        let image = match stage {
            Some((_, id)) => self.engine.image(id).await.ok(),
            None if self.opts.pull => None,
            None => self.engine.image(base).await.ok(),
        };
        let image = match image {
            Some(i) => i,
            None => self.pull(base, out).await?,
        };
        let config = image
            .config
            .get("config")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        Ok((image.id, config))
    }

    async fn pull(
        &self,
        reference: &str,
        out: &mut Out,
    ) -> Result<corral_core::ImageRecord, BuildError> {
        let (ptx, mut prx) = mpsc::channel(64);
        let engine = self.engine.clone();
        let (r, creds) = (reference.to_owned(), self.opts.creds.clone());
        let task = tokio::spawn(async move { engine.pull_image(&r, creds, ptx).await });
        while let Some(p) = prx.recv().await {
            if p.current.is_none() {
                out.status(p.id, p.status).await;
            }
        }
        task.await
            .map_err(|e| BuildError::failed(e.to_string()))?
            .map_err(|e| BuildError::failed(e.to_string()))
    }

    fn spec(&self, image: &str, st: &Stage, cmd: Vec<String>, env: Vec<String>) -> ContainerSpec {
        let mut full_env = st.env();
        full_env.extend(env);
        let mut spec = ContainerSpec {
            image: image.to_owned(),
            cmd: Some(cmd),
            entrypoint: Some(Vec::new()),
            env: full_env,
            working_dir: Some(st.workdir()),
            user: st.user(),
            ..ContainerSpec::default()
        };
        spec.host.network_mode = self
            .opts
            .network_mode
            .clone()
            .filter(|m| !m.is_empty() && m != "default");
        spec
    }

    async fn create(&self, spec: ContainerSpec) -> Result<String, BuildError> {
        self.engine
            .create_container(None, spec)
            .await
            .map(|c| c.id)
            .map_err(|e| BuildError::failed(e.to_string()))
    }

    async fn remove(&self, id: &str) {
        if let Err(e) = self.engine.remove_container(id, true, true).await {
            tracing::warn!(container = id, error = %e, "removing an intermediate container");
        }
    }

    async fn commit(
        &self,
        cid: &str,
        st: &Stage,
        created_by: String,
    ) -> Result<String, BuildError> {
        self.engine
            .commit_container(
                cid,
                CommitOptions {
                    config: Some(Value::Object(st.config.clone())),
                    replace_config: true,
                    created_by: Some(created_by),
                    ..CommitOptions::default()
                },
            )
            .await
            .map_err(|e| BuildError::failed(e.to_string()))
    }

    /// Commits, then removes the container when asked (printing it as dockerd does).
    async fn commit_step(
        &self,
        cid: &str,
        st: &Stage,
        created_by: String,
        out: &mut Out,
    ) -> Result<String, BuildError> {
        let res = self.commit(cid, st, created_by).await;
        // dockerd: `--rm` removes after a successful step, `--force-rm` always.
        if (res.is_ok() && self.opts.remove) || self.opts.force_remove {
            out.stream(format!("Removing intermediate container {}\n", short(cid)))
                .await;
            self.remove(cid).await;
        }
        res
    }

    async fn act(
        &self,
        image: &str,
        st: &Stage,
        action: Action,
        built: &[(Option<String>, String)],
        out: &mut Out,
    ) -> Result<String, BuildError> {
        match action {
            Action::Config { comment } | Action::Workdir { dir: comment } => {
                let workdir = st
                    .config
                    .get("WorkingDir")
                    .and_then(Value::as_str)
                    .filter(|d| *d == comment)
                    .map(str::to_owned);
                let comment = match &workdir {
                    Some(d) => format!("WORKDIR {d}"),
                    None => comment,
                };
                let mut cmd = plan::shell(st);
                cmd.push(format!("#(nop) {comment}"));
                // dockerd writes two spaces after `#(nop)`, one for WORKDIR.
                let gap = if workdir.is_some() { " " } else { "  " };
                let created_by = format!("{} #(nop){gap}{comment}", cmd[..cmd.len() - 1].join(" "));
                let mut spec = self.spec(image, st, cmd, Vec::new());
                spec.working_dir = None;
                let cid = self.create(spec).await?;
                out.stream(format!(" ---> Running in {}\n", short(&cid)))
                    .await;
                if let Some(d) = workdir {
                    if let Err(e) = self.make_dirs(&cid, &d, (0, 0)).await {
                        self.remove(&cid).await;
                        return Err(e);
                    }
                }
                self.commit_step(&cid, st, created_by, out).await
            }
            Action::Run { cmd, save_cmd, env } => {
                let spec = self.spec(image, st, cmd.clone(), env);
                let cid = self.create(spec).await?;
                out.stream(format!(" ---> Running in {}\n", short(&cid)))
                    .await;
                let code = match self.run_container(&cid, out).await {
                    Ok(c) => c,
                    Err(e) => {
                        if self.opts.force_remove {
                            self.remove(&cid).await;
                        }
                        return Err(e);
                    }
                };
                if code != 0 {
                    if self.opts.force_remove {
                        out.stream(format!("Removing intermediate container {}\n", short(&cid)))
                            .await;
                        self.remove(&cid).await;
                    }
                    return Err(BuildError {
                        message: format!(
                            "The command '{}' returned a non-zero code: {code}",
                            cmd.join(" ")
                        ),
                        code: Some(code),
                        invalid: false,
                    });
                }
                self.commit_step(&cid, st, save_cmd.join(" "), out).await
            }
            Action::Copy {
                add,
                sources,
                dest,
                from,
                chown,
                written,
            } => {
                let mut cmd = plan::shell(st);
                let kw = if add { "ADD" } else { "COPY" };
                cmd.push(format!("#(nop) {kw}"));
                let spec = self.spec(image, st, cmd, Vec::new());
                let cid = self.create(spec).await?;
                let res = self
                    .copy(
                        &cid,
                        add,
                        &sources,
                        &dest,
                        from.as_deref(),
                        chown.as_deref(),
                        built,
                    )
                    .await;
                let res = match res {
                    Ok((digest, what)) => {
                        let created_by = format!(
                            "{} #(nop) {kw} {what}:{digest} in {written} ",
                            plan::shell(st).join(" ")
                        );
                        self.commit(&cid, st, created_by).await
                    }
                    Err(e) => Err(e),
                };
                self.remove(&cid).await;
                res
            }
        }
    }

    /// Starts the container, streams its output, waits; returns the exit code.
    async fn run_container(&self, cid: &str, out: &mut Out) -> Result<i64, BuildError> {
        let fail = |e: crate::Error| BuildError::failed(e.to_string());
        let io = self
            .engine
            .attach(
                cid,
                AttachOptions {
                    stdin: false,
                    stdout: true,
                    stderr: true,
                    logs: false,
                    stream: true,
                },
            )
            .await
            .map_err(fail)?;
        let wait = self
            .engine
            .wait_container(cid, WaitCondition::NextExit)
            .await
            .map_err(fail)?;
        self.engine.start_container(cid).await.map_err(fail)?;
        let mut output = io.output;
        let mut pending = String::new();
        while let Some(chunk) = output.next().await {
            pending.push_str(&String::from_utf8_lossy(&chunk.data));
            // Whole lines, as dockerd's stream writer sends them.
            if let Some(nl) = pending.rfind('\n') {
                let rest = pending.split_off(nl + 1);
                out.stream(std::mem::replace(&mut pending, rest)).await;
            }
        }
        if !pending.is_empty() {
            out.stream(pending).await;
        }
        Ok(wait.await.code)
    }

    /// Puts directories `dir` (and missing parents) into the container.
    async fn make_dirs(&self, cid: &str, dir: &str, owner: (u64, u64)) -> Result<(), BuildError> {
        let missing = self.missing_dirs(cid, dir).await;
        if missing.is_empty() {
            return Ok(());
        }
        let tar =
            context::dirs_tar(&missing, owner).map_err(|e| BuildError::failed(e.to_string()))?;
        let reader: BoxRead = Box::pin(std::io::Cursor::new(tar));
        self.engine
            .archive_put(cid, "/", reader)
            .await
            .map_err(|e| BuildError::failed(e.to_string()))
    }

    /// The components of `dir` that do not exist in the container, outermost first.
    async fn missing_dirs(&self, cid: &str, dir: &str) -> Vec<String> {
        let clean = ignore::clean(dir);
        let mut missing = Vec::new();
        let mut cur = String::new();
        for part in clean.split('/').filter(|p| !p.is_empty()) {
            cur.push('/');
            cur.push_str(part);
            if !missing.is_empty() || self.stat(cid, &cur).await.is_none() {
                missing.push(cur.clone());
            }
        }
        missing
    }

    async fn stat(&self, cid: &str, path: &str) -> Option<Value> {
        self.engine.archive_stat(cid, path).await.ok()
    }

    async fn is_dir(&self, cid: &str, path: &str) -> bool {
        // Docker's stat mode carries Go's ModeDir bit (1 << 31).
        self.stat(cid, path)
            .await
            .and_then(|s| s.get("mode").and_then(Value::as_u64))
            .is_some_and(|m| m & (1 << 31) != 0)
    }

    /// Copies the sources into the container; returns a digest of what was copied.
    #[allow(clippy::too_many_arguments)]
    async fn copy(
        &self,
        cid: &str,
        add: bool,
        sources: &[String],
        dest: &str,
        from: Option<&str>,
        chown: Option<&str>,
        built: &[(Option<String>, String)],
    ) -> Result<(String, &'static str), BuildError> {
        let kw = if add { "ADD" } else { "COPY" };
        if add {
            if let Some(u) = sources
                .iter()
                .find(|s| s.starts_with("http://") || s.starts_with("https://"))
            {
                return Err(BuildError::failed(format!(
                    "ADD from a URL ({u}) is not supported by corral: builds have no internet access here; download the file into the build context and COPY it"
                )));
            }
        }
        let owner = match chown {
            Some(c) => Some(self.owner(cid, c).await?),
            None => None,
        };
        let files = match from {
            Some(f) => {
                let lower = f.to_ascii_lowercase();
                let image = match built
                    .iter()
                    .rev()
                    .find(|(n, _)| n.as_deref() == Some(lower.as_str()))
                {
                    Some((_, id)) => id.clone(),
                    None => match f.parse::<usize>().ok().and_then(|i| built.get(i)) {
                        Some((_, id)) => id.clone(),
                        None => f.to_owned(),
                    },
                };
                self.sources_in_image(&image, sources).await?
            }
            None => self.ctx.sources(kw, sources)?,
        };
        let into_dir = dest.ends_with('/')
            || files.len() > 1
            || sources.iter().any(|s| ignore::has_glob(s))
            || self.is_dir(cid, dest).await;
        if (files.len() > 1 || sources.len() > 1)
            && !dest.ends_with('/')
            && !self.is_dir(cid, dest).await
        {
            return Err(BuildError::failed(format!(
                "When using {kw} with more than one source file, the destination must be a directory and end with a /"
            )));
        }
        // Parents of the destination that do not exist yet.
        let parent = if into_dir {
            dest.trim_end_matches('/').to_owned()
        } else {
            dest.rsplit_once('/')
                .map_or(String::new(), |(p, _)| p.to_owned())
        };
        let parents = self.missing_dirs(cid, &parent).await;
        let what = match files.as_slice() {
            [context::Source::Path(p, _)] if p.is_dir() => "dir",
            [context::Source::Tar(_)] if !into_dir => "file",
            [_] => "file",
            _ => "multi",
        };
        let dest = dest.to_owned();
        let (tar, digest) = tokio::task::spawn_blocking(move || {
            context::copy_tar(&files, &dest, into_dir, owner, add, &parents)
        })
        .await
        .map_err(|e| BuildError::failed(e.to_string()))?
        .map_err(|e| BuildError::failed(format!("{kw} failed: {e}")))?;
        let file = tokio::fs::File::from_std(tar);
        let reader: BoxRead = Box::pin(file);
        self.engine
            .archive_put(cid, "/", reader)
            .await
            .map_err(|e| BuildError::failed(format!("{kw} failed: {e}")))?;
        Ok((digest, what))
    }

    /// `--chown=user[:group]`: numeric, or names looked up in the image's
    /// `/etc/passwd` and `/etc/group`.
    async fn owner(&self, cid: &str, spec: &str) -> Result<(u64, u64), BuildError> {
        let (user, group) = spec.split_once(':').unwrap_or((spec, ""));
        let lookup = |file: &'static str, name: String| async move {
            if let Ok(n) = name.parse::<u64>() {
                return Ok(n);
            }
            let text = self.read_file(cid, file).await.unwrap_or_default();
            text.lines()
                .filter_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() > 2 && f[0] == name).then(|| f[2].parse::<u64>().ok())?
                })
                .next()
                .ok_or_else(|| {
                    BuildError::failed(format!(
                        "unable to convert uid/gid chown string to host mapping: can't find uid for user {name}: no such user: {name}"
                    ))
                })
        };
        let uid = lookup("/etc/passwd", user.to_owned()).await?;
        let gid = if group.is_empty() {
            if user.parse::<u64>().is_ok() {
                uid
            } else {
                // The user's primary group from /etc/passwd.
                let text = self.read_file(cid, "/etc/passwd").await.unwrap_or_default();
                text.lines()
                    .filter_map(|l| {
                        let f: Vec<&str> = l.split(':').collect();
                        (f.len() > 3 && f[0] == user).then(|| f[3].parse::<u64>().ok())?
                    })
                    .next()
                    .unwrap_or(uid)
            }
        } else {
            lookup("/etc/group", group.to_owned()).await?
        };
        Ok((uid, gid))
    }

    async fn read_file(&self, cid: &str, path: &str) -> Option<String> {
        let (_, mut r) = self.engine.archive_get(cid, path).await.ok()?;
        let mut buf = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut r, &mut buf)
            .await
            .ok()?;
        let mut ar = tar::Archive::new(std::io::Cursor::new(buf));
        let mut e = ar.entries().ok()?.next()?.ok()?;
        let mut s = String::new();
        std::io::Read::read_to_string(&mut e, &mut s).ok()?;
        Some(s)
    }

    /// `COPY --from`: the sources read out of a container of `image`.
    async fn sources_in_image(
        &self,
        image: &str,
        sources: &[String],
    ) -> Result<Vec<context::Source>, BuildError> {
        if self.engine.image(image).await.is_err() {
            let mut sink = Out {
                tx: mpsc::channel(1).0,
                quiet: true,
                buf: String::new(),
            };
            self.pull(image, &mut sink).await?;
        }
        let cid = self
            .create(ContainerSpec {
                image: image.to_owned(),
                cmd: Some(vec!["/bin/sh".into()]),
                entrypoint: Some(Vec::new()),
                ..ContainerSpec::default()
            })
            .await?;
        let mut files = Vec::new();
        let mut res = Ok(());
        for s in sources {
            if ignore::has_glob(s) {
                res = Err(BuildError::failed(format!(
                    "COPY --from with a wildcard source ({s}) is not supported by corral's builder yet"
                )));
                break;
            }
            match self.engine.archive_get(&cid, s).await {
                Ok((_, mut r)) => {
                    let mut buf = Vec::new();
                    if let Err(e) = tokio::io::AsyncReadExt::read_to_end(&mut r, &mut buf).await {
                        res = Err(BuildError::failed(e.to_string()));
                        break;
                    }
                    files.push(context::Source::Tar(buf));
                }
                Err(_) => {
                    res = Err(BuildError::failed(format!(
                        "COPY failed: stat {s}: file does not exist"
                    )));
                    break;
                }
            }
        }
        self.remove(&cid).await;
        res.map(|()| files)
    }
}

fn platform_ok(p: &str) -> bool {
    matches!(p, "" | "linux" | "linux/amd64" | "amd64")
}

/// Whether a build `platform` parameter is one corral builds for.
///
/// # Errors
/// Any platform but linux/amd64.
pub fn check_platform(p: &str) -> Result<(), BuildError> {
    if platform_ok(p) {
        Ok(())
    } else {
        Err(BuildError::invalid(format!(
            "platform {p:?} is not supported: corral builds for linux/amd64 only"
        )))
    }
}

/// Build args dockerd allows without an `ARG` (proxy settings).
fn is_predefined(k: &str) -> bool {
    matches!(
        k.to_ascii_lowercase().as_str(),
        "http_proxy" | "https_proxy" | "ftp_proxy" | "no_proxy" | "all_proxy"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_split_into_repo_and_tag() {
        assert_eq!(split_tag("a"), ("a".into(), "latest".into()));
        assert_eq!(split_tag("a:v1"), ("a".into(), "v1".into()));
        assert_eq!(
            split_tag("localhost:5000/a"),
            ("localhost:5000/a".into(), "latest".into())
        );
        assert_eq!(short("sha256:0123456789abcdef"), "0123456789ab");
    }
}
