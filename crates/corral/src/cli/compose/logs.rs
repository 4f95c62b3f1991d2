//! `compose logs` and the attached mode of `compose up`: the output of several
//! containers, each line prefixed with the container's name (coloured per service
//! when stdout is a terminal).

use std::io::{IsTerminal, Write};

use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptionsBuilder;
use clap::Args;
use corral_compose::Project;
use futures::stream::{self, StreamExt};

use super::{list_containers, selected, Existing};
use crate::cli::client::{from_bollard, Ctx};

/// `compose logs` flags.
#[derive(Args, Debug)]
pub(crate) struct LogsArgs {
    /// Follow log output.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Number of lines to show from the end of the logs of each container.
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Show timestamps.
    #[arg(short = 't', long)]
    timestamps: bool,
    /// Produce monochrome output.
    #[arg(long = "no-color")]
    no_color: bool,
    /// Don't print the prefix.
    #[arg(long = "no-log-prefix")]
    no_log_prefix: bool,
    /// Services (default: all).
    pub(crate) services: Vec<String>,
}

const COLORS: &[&str] = &["36", "33", "32", "35", "34", "96", "93", "92", "95", "94"];

/// How each container's lines are prefixed.
pub(crate) struct Prefixer {
    width: usize,
    color: bool,
    prefix: bool,
}

impl Prefixer {
    fn new(names: &[&Existing], color: bool, prefix: bool) -> Prefixer {
        Prefixer {
            width: names.iter().map(|c| c.name.len()).max().unwrap_or(0),
            color,
            prefix,
        }
    }

    /// The prefix of `name` for service number `idx`.
    pub(crate) fn render(&self, name: &str, idx: usize) -> String {
        if !self.prefix {
            return String::new();
        }
        let padded = format!("{name:<w$} | ", w = self.width);
        if self.color {
            format!("\x1b[{}m{padded}\x1b[0m", COLORS[idx % COLORS.len()])
        } else {
            padded
        }
    }
}

/// Splits a chunk stream into whole lines, keeping a partial tail for the next chunk.
#[derive(Default)]
pub(crate) struct LineBuffer {
    partial: Vec<u8>,
}

impl LineBuffer {
    /// Adds a chunk and returns the complete lines it finished (without `\n`).
    pub(crate) fn push(&mut self, data: &[u8]) -> Vec<String> {
        self.partial.extend_from_slice(data);
        let mut out = Vec::new();
        while let Some(i) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=i).collect();
            out.push(String::from_utf8_lossy(&line[..line.len() - 1]).into_owned());
        }
        out
    }

    /// The unterminated rest, if any.
    pub(crate) fn finish(&mut self) -> Option<String> {
        (!self.partial.is_empty())
            .then(|| String::from_utf8_lossy(&std::mem::take(&mut self.partial)).into_owned())
    }
}

/// `compose logs`.
pub(crate) async fn logs(ctx: &Ctx, p: &Project, a: &LogsArgs) -> anyhow::Result<()> {
    let services = selected(p, &a.services)?;
    let list = list_containers(ctx, &p.name, true).await?;
    let mine: Vec<&Existing> = list
        .iter()
        .filter(|c| !c.oneoff && services.contains(&c.service))
        .collect();
    let color = !a.no_color && std::io::stdout().is_terminal();
    let prefixer = Prefixer::new(&mine, color, !a.no_log_prefix);
    let opts = StreamOptions {
        follow: a.follow,
        tail: a.tail.clone(),
        timestamps: a.timestamps,
    };
    stream_logs(ctx, p, &mine, &prefixer, &opts).await
}

/// Which part of the logs to stream.
struct StreamOptions {
    follow: bool,
    tail: String,
    timestamps: bool,
}

async fn stream_logs(
    ctx: &Ctx,
    p: &Project,
    containers: &[&Existing],
    prefixer: &Prefixer,
    o: &StreamOptions,
) -> anyhow::Result<()> {
    let follow = o.follow;
    let service_index = |s: &str| p.services.keys().position(|k| k == s).unwrap_or(0);
    let docker = if follow {
        &ctx.docker_slow
    } else {
        &ctx.docker
    };
    let streams = containers.iter().map(|c| {
        let opts = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .follow(follow)
            .timestamps(o.timestamps)
            .tail(&o.tail)
            .build();
        let prefix = prefixer.render(&c.name, service_index(&c.service));
        let s = docker
            .logs(&c.id, Some(opts))
            .map(Some)
            .chain(stream::iter([None]));
        s.map(move |item| (prefix.clone(), item))
    });
    let mut all = stream::select_all(streams.map(Box::pin));
    let mut buffers: std::collections::HashMap<String, LineBuffer> = Default::default();
    while let Some((prefix, item)) = all.next().await {
        let buf = buffers.entry(prefix.clone()).or_default();
        let lines = match item {
            None => buf.finish().into_iter().collect(),
            Some(Err(e)) => return Err(from_bollard(e)),
            Some(Ok(
                LogOutput::StdOut { message }
                | LogOutput::StdErr { message }
                | LogOutput::Console { message }
                | LogOutput::StdIn { message },
            )) => buf.push(&message),
        };
        if lines.is_empty() {
            continue;
        }
        let mut out = std::io::stdout().lock();
        for l in lines {
            writeln!(out, "{prefix}{l}")?;
        }
        out.flush()?;
    }
    Ok(())
}

/// How the attached mode of `up` ends when a container exits.
#[derive(Debug, Default, Clone)]
pub(crate) struct Cascade {
    /// Stop every container when the first one exits (`--abort-on-container-exit`).
    pub(crate) abort_on_exit: bool,
    /// The service whose container's exit code `up` returns (`--exit-code-from`).
    pub(crate) exit_code_from: Option<String>,
}

/// What the merged streams of the attached mode yield.
enum Item {
    /// A chunk (or error) of container `idx`'s output.
    Output(usize, Result<LogOutput, bollard::errors::Error>),
    /// Container `idx`'s output ended: it stopped.
    End(usize),
}

/// The attached mode of `up`: follows the logs of the services' containers until
/// they all exit, printing `<name> exited with code N` as each one does; Ctrl-C
/// stops them. With `cascade.abort_on_exit` the first exit stops the others, and
/// `up` ends with that container's exit code (or the one of `exit_code_from`'s
/// container), as compose does.
pub(crate) async fn attach_until_exit(
    ctx: &Ctx,
    p: &Project,
    services: &[String],
    timeout: Option<u32>,
    since: i64,
    cascade: &Cascade,
) -> anyhow::Result<()> {
    let list = list_containers(ctx, &p.name, true).await?;
    let mine: Vec<&Existing> = list
        .iter()
        .filter(|c| !c.oneoff && services.contains(&c.service))
        .collect();
    let prefixer = Prefixer::new(&mine, std::io::stdout().is_terminal(), true);
    eprintln!(
        "Attaching to {}",
        mine.iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let t = timeout.map(|t| format!("?t={t}")).unwrap_or_default();
    let follow = follow_until_exit(ctx, p, &mine, &prefixer, since, cascade, &t);
    tokio::select! {
        code = follow => {
            match code? {
                0 => Ok(()),
                code => Err(crate::cli::client::Exit(crate::cli::run::exit_code(code)).into()),
            }
        }
        _ = tokio::signal::ctrl_c() => {
            eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
            let graceful = async {
                for c in mine.iter().rev() {
                    let _ = ctx.raw.call("POST", &format!("/containers/{}/stop{t}", c.id), &[], None).await;
                    super::progress("Container", &c.name, "Stopped");
                }
            };
            tokio::select! {
                () = graceful => {}
                // A second Ctrl-C kills what is still running, as compose does.
                _ = tokio::signal::ctrl_c() => {
                    for c in &mine {
                        let _ = ctx.raw.call("POST", &format!("/containers/{}/kill", c.id), &[], None).await;
                        super::progress("Container", &c.name, "Killed");
                    }
                }
            }
            Ok(())
        }
    }
}

/// Streams the containers' output until every stream has ended, and returns the exit
/// code `up` ends with: 0 without a cascade, else the code of the container that
/// started it (or of `exit_code_from`'s container).
async fn follow_until_exit(
    ctx: &Ctx,
    p: &Project,
    mine: &[&Existing],
    prefixer: &Prefixer,
    since: i64,
    cascade: &Cascade,
    stop_query: &str,
) -> anyhow::Result<i64> {
    let service_index = |s: &str| p.services.keys().position(|k| k == s).unwrap_or(0);
    let streams = mine.iter().enumerate().map(|(idx, c)| {
        let mut opts = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .follow(true)
            .tail("all");
        if let Ok(t) = i32::try_from(since) {
            opts = opts.since(t);
        }
        ctx.docker_slow
            .logs(&c.id, Some(opts.build()))
            .map(move |r| Item::Output(idx, r))
            .chain(stream::iter([Item::End(idx)]))
    });
    let prefixes: Vec<String> = mine
        .iter()
        .map(|c| prefixer.render(&c.name, service_index(&c.service)))
        .collect();
    let mut buffers: Vec<LineBuffer> = mine.iter().map(|_| LineBuffer::default()).collect();
    let mut all = stream::select_all(streams.map(Box::pin));
    let mut aborting = false;
    let mut code = 0;
    while let Some(item) = all.next().await {
        let (idx, lines) = match item {
            Item::Output(_, Err(e)) => return Err(from_bollard(e)),
            Item::Output(
                idx,
                Ok(
                    LogOutput::StdOut { message }
                    | LogOutput::StdErr { message }
                    | LogOutput::Console { message }
                    | LogOutput::StdIn { message },
                ),
            ) => (idx, buffers[idx].push(&message)),
            Item::End(idx) => {
                let rest = buffers[idx].finish();
                if !aborting {
                    print_lines(&prefixes[idx], rest.into_iter().collect())?;
                }
                let c = mine[idx];
                let exit = match exit_code(ctx, &c.id).await {
                    Ok(exit) => exit,
                    // A container the cascade could not stop (removed meanwhile) has no
                    // exit code left to read; the code `up` returns is already chosen
                    // unless it was this one's.
                    Err(_) if aborting => continue,
                    Err(e) => return Err(e),
                };
                if !aborting {
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "{} exited with code {exit}", c.name)?;
                    out.flush()?;
                }
                if cascade.abort_on_exit {
                    match &cascade.exit_code_from {
                        Some(s) if *s == c.service => code = exit,
                        Some(_) => {}
                        None if !aborting => code = exit,
                        None => {}
                    }
                    if !aborting {
                        aborting = true;
                        eprintln!("Aborting on container exit...");
                        cascade_stop(mine, |o| async move {
                            ctx.raw
                                .call(
                                    "POST",
                                    &format!("/containers/{}/stop{stop_query}", o.id),
                                    &[],
                                    None,
                                )
                                .await
                                .map(drop)
                        })
                        .await;
                    }
                }
                continue;
            }
        };
        if !aborting {
            print_lines(&prefixes[idx], lines)?;
        }
    }
    Ok(code)
}

/// Stops `containers` for a cascade, the last one first. As compose does, a container that
/// cannot be stopped (one removed meanwhile, say) gets a warning and the others are still
/// stopped; `up` then ends with the exit code it chose. Returns the names of the
/// containers that could not be stopped.
async fn cascade_stop<'a, F, Fut>(containers: &[&'a Existing], mut stop: F) -> Vec<String>
where
    F: FnMut(&'a Existing) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut failed = Vec::new();
    for &o in containers.iter().rev() {
        super::progress("Container", &o.name, "Stopping");
        match stop(o).await {
            Ok(()) => super::progress("Container", &o.name, "Stopped"),
            Err(e) => {
                super::progress("Container", &o.name, "Error while Stopping");
                eprintln!("WARN[0000] could not stop container {}: {e:#}", o.name);
                failed.push(o.name.clone());
            }
        }
    }
    failed
}

/// Writes `lines` to stdout, each after `prefix`.
fn print_lines(prefix: &str, lines: Vec<String>) -> anyhow::Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    for l in lines {
        writeln!(out, "{prefix}{l}")?;
    }
    out.flush()?;
    Ok(())
}

/// The exit code of a stopped container (`State.ExitCode`).
async fn exit_code(ctx: &Ctx, id: &str) -> anyhow::Result<i64> {
    let body = ctx
        .raw
        .call("GET", &format!("/containers/{id}/json"), &[], None)
        .await?;
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(v["State"]["ExitCode"].as_i64().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_buffer_keeps_partial_lines() {
        let mut b = LineBuffer::default();
        assert_eq!(b.push(b"a\nb"), vec!["a"]);
        assert_eq!(b.push(b"c\n\nd"), vec!["bc", ""]);
        assert_eq!(b.finish().as_deref(), Some("d"));
        assert_eq!(b.finish(), None);
    }

    fn existing(name: &str) -> Existing {
        Existing {
            id: format!("id-{name}"),
            name: name.to_owned(),
            service: name.to_owned(),
            number: 1,
            oneoff: false,
            hash: String::new(),
            state: "running".to_owned(),
            raw: serde_json::Value::Null,
        }
    }

    #[tokio::test]
    async fn cascade_stop_warns_and_goes_on_when_one_container_fails() {
        let list = [existing("a"), existing("gone"), existing("c")];
        let mine: Vec<&Existing> = list.iter().collect();
        let tried = std::cell::RefCell::new(Vec::new());
        let failed = cascade_stop(&mine, |o| {
            tried.borrow_mut().push(o.id.clone());
            let gone = o.name == "gone";
            async move {
                if gone {
                    anyhow::bail!("No such container: id-gone")
                }
                Ok(())
            }
        })
        .await;
        // Every container is tried, the last first, and only the failure is reported.
        assert_eq!(*tried.borrow(), ["id-c", "id-gone", "id-a"]);
        assert_eq!(failed, ["gone"]);
    }

    #[test]
    fn prefixes_pad_and_colour() {
        let p = Prefixer {
            width: 6,
            color: false,
            prefix: true,
        };
        assert_eq!(p.render("web-1", 0), "web-1  | ");
        let p = Prefixer {
            width: 5,
            color: true,
            prefix: true,
        };
        assert_eq!(p.render("web-1", 1), "\x1b[33mweb-1 | \x1b[0m");
    }
}
