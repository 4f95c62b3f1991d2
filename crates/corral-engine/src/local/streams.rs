//! Output streams: logs, attach, resize, top.

use std::sync::Arc;

use bytes::Bytes;
use chrono::SecondsFormat;
use corral_core::ContainerRecord;
use corral_runtime::logs::{self, LogReadOptions, LogStream};
use corral_runtime::shim::{protocol, ShimClient};
use futures::StreamExt;
use tokio::sync::watch;

use super::{Entry, LocalEngine};
use crate::api::{
    AttachIo, AttachOptions, BoxStream, LogOptions, OutputChunk, ProcessList, StreamKind,
};
use crate::error::{Error, Result};

fn chunk(stream: LogStream, data: Vec<u8>) -> OutputChunk {
    OutputChunk {
        stream: match stream {
            LogStream::Stdout => StreamKind::Stdout,
            LogStream::Stderr => StreamKind::Stderr,
        },
        data: Bytes::from(data),
    }
}

impl LocalEngine {
    /// A receiver that turns `true` once the container's current run has ended.
    fn exited_signal(&self, entry: &Arc<Entry>) -> watch::Receiver<bool> {
        let mut rx = entry.run.subscribe();
        let (tx, out) = watch::channel(!rx.borrow().running);
        tokio::spawn(async move {
            let _ = rx.wait_for(|s| !s.running).await;
            let _ = tx.send(true);
        });
        out
    }

    pub(crate) async fn logs(
        &self,
        name: &str,
        opts: LogOptions,
    ) -> Result<BoxStream<OutputChunk>> {
        let entry = self.lookup(name)?;
        let rec = entry.snapshot();
        if rec.spec.host.log_config.driver == "none" {
            return Err(Error::InvalidInput(
                "configured logging driver does not support reading".into(),
            ));
        }
        let path = self.log_path(&rec.id);
        let read = LogReadOptions {
            since: opts.since,
            until: opts.until,
            tail: opts.tail,
            follow: opts.follow,
        };
        let exited = self.exited_signal(&entry);
        let (want_out, want_err, ts) = (opts.stdout, opts.stderr, opts.timestamps);
        let s = logs::stream_logs(path, read, exited).filter_map(move |r| {
            let out = match r {
                Ok(e) => {
                    let wanted = match e.stream {
                        LogStream::Stdout => want_out,
                        LogStream::Stderr => want_err,
                    };
                    wanted.then(|| {
                        let mut data = Vec::with_capacity(e.line.len() + 32);
                        if ts {
                            data.extend_from_slice(
                                e.time
                                    .to_rfc3339_opts(SecondsFormat::Nanos, true)
                                    .as_bytes(),
                            );
                            data.push(b' ');
                        }
                        data.extend_from_slice(&e.line);
                        chunk(e.stream, data)
                    })
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading logs");
                    None
                }
            };
            async move { out }
        });
        Ok(Box::pin(s))
    }

    /// Connects an attach session to a live shim.
    pub(crate) async fn attach_shim(
        &self,
        shim: &ShimClient,
        rec: &ContainerRecord,
        opts: AttachOptions,
    ) -> Result<AttachIo> {
        let stdin = opts.stdin && rec.spec.open_stdin;
        let stream = shim
            .attach(corral_runtime::shim::AttachOptions {
                stdin,
                stdout: opts.stdout,
                stderr: opts.stderr,
            })
            .await?;
        let (read, write) = stream.into_split();
        let tty = rec.spec.tty;
        let output = futures::stream::unfold(read, move |mut r| async move {
            if tty {
                use tokio::io::AsyncReadExt;
                let mut buf = vec![0u8; 32 * 1024];
                match r.read(&mut buf).await {
                    Ok(0) | Err(_) => None,
                    Ok(n) => {
                        buf.truncate(n);
                        Some((
                            OutputChunk {
                                stream: StreamKind::Stdout,
                                data: Bytes::from(buf),
                            },
                            r,
                        ))
                    }
                }
            } else {
                match protocol::read_frame(&mut r).await {
                    Ok(Some((stream, data))) => {
                        let stream = match stream {
                            protocol::FrameStream::Stderr => StreamKind::Stderr,
                            protocol::FrameStream::Stdin => StreamKind::Stdin,
                            _ => StreamKind::Stdout,
                        };
                        Some((
                            OutputChunk {
                                stream,
                                data: Bytes::from(data),
                            },
                            r,
                        ))
                    }
                    _ => None,
                }
            }
        });
        Ok(AttachIo {
            output: Box::pin(output),
            input: stdin.then(|| Box::pin(write) as crate::api::BoxWrite),
            tty,
        })
    }

    pub(crate) async fn attach(&self, name: &str, opts: AttachOptions) -> Result<AttachIo> {
        let entry = self.lookup(name)?;
        let rec = entry.snapshot();
        let mut replay: Vec<OutputChunk> = Vec::new();
        if opts.logs {
            let path = self.log_path(&rec.id);
            let entries = tokio::task::spawn_blocking(move || {
                logs::read_logs(&path, &LogReadOptions::default())
            })
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
            .unwrap_or_default();
            replay = entries
                .into_iter()
                .filter(|e| match e.stream {
                    LogStream::Stdout => opts.stdout,
                    LogStream::Stderr => opts.stderr,
                })
                .map(|e| chunk(e.stream, e.line))
                .collect();
        }
        let head = futures::stream::iter(replay);
        if !opts.stream {
            return Ok(AttachIo {
                output: Box::pin(head),
                input: None,
                tty: rec.spec.tty,
            });
        }
        let live = entry.shim.lock().clone();
        if let Some(shim) = live.filter(|_| rec.state.status.is_alive()) {
            let io = self.attach_shim(&shim, &rec, opts).await?;
            return Ok(AttachIo {
                output: Box::pin(head.chain(io.output)),
                input: io.input,
                tty: io.tty,
            });
        }
        // Not running yet: answer at once (clients wait for the hijack before they start
        // the container) and connect to the shim when the container starts.
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<AttachIo>>();
        entry.pending_attach.lock().push((opts, tx));
        let (client_side, engine_side) = tokio::io::duplex(64 * 1024);
        let (in_tx, in_rx) = tokio::sync::oneshot::channel::<Option<crate::api::BoxWrite>>();
        let output = futures::stream::once(async move {
            match rx.await {
                Ok(Ok(io)) => {
                    let _ = in_tx.send(io.input);
                    io.output
                }
                _ => Box::pin(futures::stream::empty()) as BoxStream<OutputChunk>,
            }
        })
        .flatten();
        let want_stdin = opts.stdin && rec.spec.open_stdin;
        if want_stdin {
            tokio::spawn(async move {
                let mut from_client = engine_side;
                if let Ok(Some(mut to_shim)) = in_rx.await {
                    let _ = tokio::io::copy(&mut from_client, &mut to_shim).await;
                    use tokio::io::AsyncWriteExt;
                    let _ = to_shim.shutdown().await;
                }
            });
        }
        let input = want_stdin.then(|| Box::pin(client_side) as crate::api::BoxWrite);
        Ok(AttachIo {
            output: Box::pin(head.chain(output)),
            input,
            tty: rec.spec.tty,
        })
    }

    pub(crate) async fn resize(&self, name: &str, h: u16, w: u16) -> Result<()> {
        let entry = self.lookup(name)?;
        let shim = entry.shim.lock().clone();
        match shim {
            Some(s) => Ok(s.resize(h, w).await?),
            None => Err(Error::Conflict(format!(
                "Container {} is not running",
                entry.record.lock().id
            ))),
        }
    }

    pub(crate) async fn top(&self, name: &str, _ps_args: Option<&str>) -> Result<ProcessList> {
        let entry = self.lookup(name)?;
        let rec = entry.snapshot();
        let shim = entry.shim.lock().clone();
        let Some(shim) = shim.filter(|_| rec.state.status.is_alive()) else {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        };
        let pids = shim.state().await?.pids;
        let titles = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"];
        let mut rows = Vec::new();
        for pid in pids {
            if let Some(row) = ps_row(pid) {
                rows.push(row);
            }
        }
        Ok(ProcessList {
            titles: titles.iter().map(|s| s.to_string()).collect(),
            processes: rows,
        })
    }
}

/// One `ps -ef` style row from `/proc/<pid>`.
fn ps_row(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    // Fields after the parenthesised comm (which may contain spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ppid = f.get(1)?.to_string();
    let ticks = 100u64;
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    let secs = (utime + stime) / ticks;
    let uid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("0")
        .to_owned();
    let mut cmd: String = cmdline
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    if cmd.is_empty() {
        let comm = &stat[stat.find('(')? + 1..stat.rfind(')')?];
        cmd = format!("[{comm}]");
    }
    Some(vec![
        uid,
        pid.to_string(),
        ppid,
        "0".into(),
        "-".into(),
        "?".into(),
        format!(
            "{:02}:{:02}:{:02}",
            secs / 3600,
            (secs / 60) % 60,
            secs % 60
        ),
        cmd,
    ])
}
