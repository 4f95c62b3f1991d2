//! The shim's side of the container's stdio: copy output to the log and to attached
//! clients, feed attached clients' input to stdin.

use std::fs::File;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::protocol::{encode_frame, FrameStream};
use crate::logs::{LogStream, LogWriter};

/// Output fan-out and stdin of one container.
#[derive(Debug)]
pub(crate) struct IoHub {
    tty: bool,
    log: Mutex<LogWriter>,
    /// Attached clients; `None` once output is over.
    clients: Mutex<Option<Vec<Client>>>,
    stdin: Mutex<Option<File>>,
    /// Output copiers still running, and whether output is over.
    copiers: Mutex<usize>,
    copiers_done: Condvar,
}

#[derive(Debug)]
struct Client {
    stream: UnixStream,
    stdout: bool,
    stderr: bool,
}

impl IoHub {
    pub(crate) fn new(tty: bool, log: LogWriter, stdin: Option<File>) -> Arc<Self> {
        Arc::new(Self {
            tty,
            log: Mutex::new(log),
            clients: Mutex::new(Some(Vec::new())),
            stdin: Mutex::new(stdin),
            copiers: Mutex::new(0),
            copiers_done: Condvar::new(),
        })
    }

    /// Starts a thread copying `source` (a pipe or the pty master) as `stream`.
    pub(crate) fn spawn_copier(
        self: &Arc<Self>,
        mut source: File,
        stream: LogStream,
    ) -> std::io::Result<()> {
        *self.copiers.lock() += 1;
        let hub = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name(format!("copy-{}", stream.as_str()))
            .spawn(move || {
                let mut buffer = vec![0u8; 32 * 1024];
                loop {
                    match source.read(&mut buffer) {
                        Ok(0) => break,
                        Ok(read) => hub.publish(stream, &buffer[..read]),
                        Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                        // EIO: the pty slave side was closed by the last container process.
                        Err(_) => break,
                    }
                }
                if let Err(err) = hub.log.lock().flush_partial(stream) {
                    tracing::warn!(error = %err, "failed to write log");
                }
                let mut copiers = hub.copiers.lock();
                *copiers -= 1;
                hub.copiers_done.notify_all();
            });
        if let Err(err) = spawned {
            *self.copiers.lock() -= 1;
            return Err(err);
        }
        Ok(())
    }

    fn publish(&self, stream: LogStream, data: &[u8]) {
        if let Err(err) = self.log.lock().write(stream, data) {
            tracing::warn!(error = %err, "failed to write log");
        }
        let mut guard = self.clients.lock();
        let Some(clients) = guard.as_mut() else {
            return;
        };
        let frame = (!self.tty).then(|| encode_frame(FrameStream::from(stream), data));
        clients.retain_mut(|client| {
            let wanted = match stream {
                LogStream::Stdout => client.stdout,
                LogStream::Stderr => client.stderr,
            };
            if !wanted {
                return true;
            }
            let bytes = frame.as_deref().unwrap_or(data);
            client.stream.write_all(bytes).is_ok()
        });
    }

    /// Adds an attached client; when output is already over its stream is closed at once.
    pub(crate) fn add_client(&self, stream: UnixStream, stdout: bool, stderr: bool) {
        match self.clients.lock().as_mut() {
            Some(clients) => clients.push(Client {
                stream,
                stdout,
                stderr,
            }),
            None => {
                let _ = stream.shutdown(Shutdown::Write);
            }
        }
    }

    /// Copies an attached client's bytes to the container's stdin until the client
    /// half-closes, then closes stdin (Docker's `StdinOnce`).
    pub(crate) fn feed_stdin(&self, mut from: impl Read) {
        let mut buffer = vec![0u8; 32 * 1024];
        loop {
            let read = match from.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            let mut stdin = self.stdin.lock();
            let Some(pipe) = stdin.as_mut() else {
                return;
            };
            if pipe.write_all(&buffer[..read]).is_err() {
                break;
            }
        }
        if !self.tty {
            self.stdin.lock().take();
        }
    }

    /// Waits (up to `timeout`) for the output copiers to reach end of file.
    pub(crate) fn wait_output_done(&self, timeout: Duration) -> bool {
        let mut copiers = self.copiers.lock();
        let mut left = timeout;
        while *copiers > 0 {
            if left.is_zero() {
                return false;
            }
            let step = left.min(Duration::from_millis(100));
            self.copiers_done.wait_for(&mut copiers, step);
            left = left.saturating_sub(step);
        }
        true
    }

    /// Ends every attached stream (clients see end of file) and refuses new ones.
    pub(crate) fn close_clients(&self) {
        let clients = self.clients.lock().take().unwrap_or_default();
        for client in clients {
            let _ = client.stream.shutdown(Shutdown::Write);
        }
        self.stdin.lock().take();
    }
}
