//! Plumbing for attached containers and execs: copy the hijacked stream to our
//! stdout/stderr (demultiplexed unless it is a TTY), forward stdin and half-close on
//! EOF, put the local terminal in raw mode, and forward window resizes.

use std::io::{Read, Write};

use nix::sys::termios::{self, SetArg, Termios};
use std::io::IsTerminal;
use std::os::fd::AsFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::http::{Demux, Hijacked, StreamKind};

/// Restores the terminal's previous mode when dropped.
pub(crate) struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Puts stdin's terminal in raw mode; `None` when stdin is not a terminal.
    pub(crate) fn enable() -> Option<RawMode> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return None;
        }
        let saved = termios::tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

/// The local terminal's size as (rows, cols), when stdout is a terminal.
pub(crate) fn terminal_size() -> Option<(u16, u16)> {
    console::Term::stdout().size_checked()
}

/// Reads our stdin on a plain thread (blocking reads cannot be cancelled; the thread
/// dies with the process) and hands chunks to the async side. `None` marks EOF.
fn spawn_stdin_reader() -> mpsc::Receiver<Option<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = tx.blocking_send(None);
                    return;
                }
                Ok(n) => {
                    if tx.blocking_send(Some(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

fn write_out(kind: StreamKind, data: &[u8]) -> std::io::Result<()> {
    if kind == StreamKind::Stderr {
        let mut e = std::io::stderr().lock();
        e.write_all(data)?;
        e.flush()
    } else {
        let mut o = std::io::stdout().lock();
        o.write_all(data)?;
        o.flush()
    }
}

/// Copies the container's output to ours (and our stdin to it when `stdin`) until the
/// daemon closes the output side.
pub(crate) async fn pump(h: Hijacked, tty: bool, stdin: bool) -> anyhow::Result<()> {
    let (mut rd, mut wr) = h.stream.into_split();
    let input = if stdin {
        let mut rx = spawn_stdin_reader();
        Some(tokio::spawn(async move {
            while let Some(Some(chunk)) = rx.recv().await {
                if wr.write_all(&chunk).await.is_err() {
                    return;
                }
            }
            // EOF on our stdin: half-close so the container sees EOF too.
            let _ = wr.shutdown().await;
        }))
    } else {
        None
    };
    let mut demux = Demux::default();
    let mut handle = |data: &[u8]| -> anyhow::Result<()> {
        if tty {
            write_out(StreamKind::Stdout, data)?;
        } else {
            for (kind, payload) in demux.push(data)? {
                write_out(kind, &payload)?;
            }
        }
        Ok(())
    };
    if !h.leftover.is_empty() {
        handle(&h.leftover)?;
    }
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = rd.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        handle(&buf[..n])?;
    }
    if let Some(t) = input {
        t.abort();
    }
    Ok(())
}
