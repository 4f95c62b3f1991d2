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
            // Ends with the run, or as soon as the log reader is gone.
            tokio::select! {
                _ = rx.wait_for(|s| !s.running) => {
                    let _ = tx.send(true);
                }
                _ = tx.closed() => {}
            }
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
        let output = shim_output(read, tty);
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
        // dockerd logs `attach` once the logs are replayed, streaming or not.
        self.container_event(&rec, "attach", &[]);
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

    /// `docker top`: runs the host's `ps` with the client's arguments (default `-ef`) and
    /// keeps the rows of the container's processes, as dockerd does.
    pub(crate) async fn top(&self, name: &str, ps_args: Option<&str>) -> Result<ProcessList> {
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
        let args: Vec<&str> = ps_args.unwrap_or("-ef").split_whitespace().collect();
        let out = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            tokio::process::Command::new("ps").args(&args).output(),
        )
        .await
        .map_err(|_| Error::Internal("ps timed out".into()))?
        .map_err(|e| Error::Internal(format!("running ps: {e}")))?;
        if !out.status.success() {
            return Err(Error::Internal(format!(
                "ps: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
    }
}

/// Output read from a shim connection: frames as chunks, or raw bytes with a TTY. Ends at
/// the connection's end (or a broken frame).
pub(crate) fn shim_output(
    read: tokio::net::unix::OwnedReadHalf,
    tty: bool,
) -> impl futures::Stream<Item = OutputChunk> + Send + 'static {
    futures::stream::unfold(read, move |mut r| async move {
        let chunk = if tty {
            use tokio::io::AsyncReadExt;
            let mut buf = vec![0u8; 32 * 1024];
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => {
                    buf.truncate(n);
                    OutputChunk {
                        stream: StreamKind::Stdout,
                        data: Bytes::from(buf),
                    }
                }
            }
        } else {
            let (stream, data) = protocol::read_frame(&mut r).await.ok()??;
            OutputChunk {
                stream: match stream {
                    protocol::FrameStream::Stderr => StreamKind::Stderr,
                    protocol::FrameStream::Stdin => StreamKind::Stdin,
                    protocol::FrameStream::Stdout => StreamKind::Stdout,
                },
                data: Bytes::from(data),
            }
        };
        Some((chunk, r))
    })
}

/// Keeps the rows of `ps` output whose PID column is one of `pids`; the last column takes
/// the rest of the line (commands contain spaces).
pub(crate) fn parse_ps(output: &str, pids: &[i32]) -> Result<ProcessList> {
    let mut lines = output.lines();
    let header = lines.next().unwrap_or_default();
    let titles: Vec<String> = header.split_whitespace().map(str::to_owned).collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| Error::InvalidInput("Couldn't find PID field in ps output".into()))?;
    let mut processes = Vec::new();
    for line in lines {
        let mut fields: Vec<String> = Vec::with_capacity(titles.len());
        let mut rest = line.trim_start();
        while fields.len() + 1 < titles.len() {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            fields.push(rest[..end].to_owned());
            rest = rest[end..].trim_start();
        }
        fields.push(rest.to_owned());
        let pid: Option<i32> = fields.get(pid_col).and_then(|p| p.parse().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            processes.push(fields);
        }
    }
    Ok(ProcessList { titles, processes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_rows_are_filtered_by_pid_and_keep_spaces_in_commands() {
        let out = "UID          PID    PPID  C STIME TTY          TIME CMD\n\
root           1       0  0 10:00 ?        00:00:01 /sbin/init splash\n\
root        4242    4240  0 10:01 ?        00:00:00 sleep 1000 now\n";
        let p = parse_ps(out, &[4242]).unwrap();
        assert_eq!(p.titles.len(), 8);
        assert_eq!(p.processes.len(), 1);
        assert_eq!(p.processes[0][1], "4242");
        assert_eq!(p.processes[0][7], "sleep 1000 now");
        assert!(parse_ps("A B\n1 2\n", &[1]).is_err());
    }
}
