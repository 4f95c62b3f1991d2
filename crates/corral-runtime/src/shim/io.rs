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

/// How long one write to an attached client may block before that client is dropped. A
/// client that stops reading (a suspended `docker attach`, a hung SDK) must not stall the
/// container's output, its log or the other clients for longer than this.
const CLIENT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Output fan-out and stdin of one container.
#[derive(Debug)]
pub(crate) struct IoHub {
    tty: bool,
    client_write_timeout: Duration,
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
        Self::with_client_write_timeout(tty, log, stdin, CLIENT_WRITE_TIMEOUT)
    }

    /// Like [`IoHub::new`] with another bound on a blocked client write.
    fn with_client_write_timeout(
        tty: bool,
        log: LogWriter,
        stdin: Option<File>,
        client_write_timeout: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            tty,
            client_write_timeout,
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
            let written = client.stream.write_all(bytes);
            if let Err(err) = &written {
                // A timed-out write may have sent part of a frame: the client cannot resync,
                // so it is dropped (its stream closes) rather than fed more.
                tracing::warn!(error = %err, "dropping an attached client that stopped reading");
            }
            written.is_ok()
        });
    }

    /// Adds an attached client; when output is already over its stream is closed at once.
    pub(crate) fn add_client(&self, stream: UnixStream, stdout: bool, stderr: bool) {
        if let Err(err) = stream.set_write_timeout(Some(self.client_write_timeout)) {
            tracing::warn!(error = %err, "failed to bound writes to an attached client");
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::{read_logs, LogConfig, LogReadOptions};

    #[test]
    fn a_client_that_stops_reading_is_dropped_and_output_still_logged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let log = LogWriter::open(
            &path,
            LogConfig {
                max_size: None,
                max_files: 1,
            },
        )
        .unwrap();
        let hub = IoHub::with_client_write_timeout(true, log, None, Duration::from_millis(200));
        let (stalled, _kept_unread) = UnixStream::pair().unwrap();
        let (reading, mut reader) = UnixStream::pair().unwrap();
        hub.add_client(stalled, true, true);
        hub.add_client(reading, true, true);
        let drain = std::thread::spawn(move || {
            let mut total = 0usize;
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                total += n;
            }
            total
        });
        // Far more than a unix socket buffers: the stalled client's writes must time out.
        let line = vec![b'x'; 1023];
        let mut chunk = line.clone();
        chunk.push(b'\n');
        for _ in 0..4096 {
            hub.publish(LogStream::Stdout, &chunk);
        }
        assert_eq!(hub.clients.lock().as_ref().map(Vec::len), Some(1));
        hub.close_clients();
        assert_eq!(drain.join().unwrap(), 4096 * 1024);
        let entries = read_logs(&path, &LogReadOptions::default()).unwrap();
        assert_eq!(entries.len(), 4096);
    }
}
