//! What the daemon and the shim say to each other, and the files the shim leaves behind.
//!
//! Requests and replies are one JSON object per line on `<state-dir>/shim.sock`, one
//! request per connection. After an `attach` reply the connection carries raw streams:
//! shim → daemon frames `[stream, 0, 0, 0, len u32 BE] + payload` (Docker's stdcopy format;
//! raw bytes with a TTY), daemon → shim stdin bytes, and the daemon half-closing its write
//! side closes the container's stdin.
//!
//! An `exec` request starts a process in the running container; once it runs the reply is
//! `exec_started` and the connection carries that process's stdio exactly like an attach
//! stream. It ends once the process has exited and its output drained; `exec_wait` then
//! answers its exit code.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::logs::LogStream;

/// Socket file in the state directory.
pub const SOCKET_FILE: &str = "shim.sock";
/// Launch report ([`LaunchReport`]), written once the container is created or failed.
pub const LAUNCH_FILE: &str = "launch.json";
/// Exit status ([`ExitStatus`]), written when the container exited.
pub const EXIT_FILE: &str = "exit.json";
/// The shim's pid, written as soon as it detached.
pub const SHIM_PID_FILE: &str = "shim.pid";
/// The container init's pid (host pid namespace).
pub const INIT_PID_FILE: &str = "init.pid";
/// The shim's own diagnostics (its stderr).
pub const SHIM_LOG_FILE: &str = "shim.log";
/// Size of a frame header.
pub const FRAME_HEADER_LEN: usize = 8;

/// A request to the shim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Start the created container.
    Start,
    /// Send a signal (number) to the init process, or to all processes with `all`.
    Kill {
        /// Signal number.
        signal: i32,
        /// Signal every process of the container.
        #[serde(default)]
        all: bool,
    },
    /// Freeze the container.
    Pause,
    /// Thaw the container.
    Resume,
    /// Set the terminal size.
    Resize {
        /// Rows.
        height: u16,
        /// Columns.
        width: u16,
    },
    /// Report the container's state.
    State,
    /// Reply once the container exited.
    Wait,
    /// Turn the connection into a stream of the chosen stdio.
    Attach {
        /// Forward the daemon's bytes to the container's stdin.
        stdin: bool,
        /// Send stdout.
        stdout: bool,
        /// Send stderr.
        stderr: bool,
    },
    /// Start a process in the running container and turn the connection into its stdio
    /// stream (frames, or raw bytes with `tty`).
    Exec {
        /// The daemon's id for this exec session (letters, digits, `-`, `_`; at most 128).
        exec_id: String,
        /// The OCI runtime spec `process` object to run.
        process: serde_json::Value,
        /// Give the process a terminal (`process.terminal` must be true too).
        tty: bool,
        /// Forward the daemon's bytes to the process's stdin; otherwise stdin is `/dev/null`.
        stdin: bool,
    },
    /// Reply with the exit code of an exec'd process once it has exited.
    ExecWait {
        /// The exec session.
        exec_id: String,
    },
    /// Set the terminal size of an exec'd process.
    ExecResize {
        /// The exec session.
        exec_id: String,
        /// Rows.
        height: u16,
        /// Columns.
        width: u16,
    },
}

/// A reply from the shim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    /// Done.
    Ok,
    /// The state.
    State(ShimState),
    /// The container exited.
    Exit(ExitStatus),
    /// The exec'd process runs; its stdio stream follows on this connection.
    ExecStarted {
        /// Its host pid.
        pid: i32,
    },
    /// The exec'd process exited.
    ExecExit {
        /// Exit code; 128 + signal number when a signal killed it.
        code: i32,
    },
    /// The request failed.
    Error {
        /// What failed.
        message: String,
        /// Its class.
        kind: WireErrorKind,
    },
}

/// Error classes that cross the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireErrorKind {
    /// The container is not running.
    NotRunning,
    /// The request is invalid for this container.
    InvalidRequest,
    /// The runtime or the shim failed.
    Internal,
    /// The runtime could not start an exec'd process (the message is Docker's text).
    ExecFailed,
}

/// Lifecycle status as the shim sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerStatus {
    /// Created, not started.
    Created,
    /// Running.
    Running,
    /// Frozen.
    Paused,
    /// Exited.
    Stopped,
}

/// The container's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShimState {
    /// Container id.
    pub id: String,
    /// Status.
    pub status: ContainerStatus,
    /// Host pid of the container's init.
    pub init_pid: i32,
    /// Pid of the shim.
    pub shim_pid: i32,
    /// Host pids of the container's processes (from its cgroup; empty once stopped).
    pub pids: Vec<i32>,
    /// Whether the container has a terminal.
    pub tty: bool,
    /// The exit status once stopped.
    pub exit: Option<ExitStatus>,
}

/// How the container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// Exit code; 128 + signal number when a signal killed it (Docker's convention).
    pub code: i32,
    /// Whether the kernel OOM killer killed a process of the container.
    pub oom_killed: bool,
    /// When the shim saw the exit.
    pub finished_at: DateTime<Utc>,
}

/// The shim's launch outcome, in [`LAUNCH_FILE`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum LaunchReport {
    /// The container exists and the socket is listening.
    Created {
        /// The shim's pid.
        shim_pid: i32,
        /// The container init's host pid.
        init_pid: i32,
    },
    /// Creation failed; the shim exited.
    Failed {
        /// The runtime's error text.
        message: String,
        /// Docker's exit code for the failure.
        exit_code: i32,
    },
}

/// What the exec helper (`corral shim --exec`) reports once the process runs or failed to
/// start, in the report file the shim named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ExecReport {
    /// The process runs.
    Started {
        /// Its host pid.
        pid: i32,
    },
    /// The runtime could not start it.
    Failed {
        /// The runtime's error text.
        message: String,
    },
}

/// Output streams of the attach framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameStream {
    /// Stream type 0 (not sent by the shim; Docker reserves it).
    Stdin,
    /// Stream type 1.
    Stdout,
    /// Stream type 2.
    Stderr,
}

// === impl FrameStream ===

impl FrameStream {
    /// The header byte.
    pub fn byte(self) -> u8 {
        match self {
            Self::Stdin => 0,
            Self::Stdout => 1,
            Self::Stderr => 2,
        }
    }

    /// Parses a header byte.
    pub fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(Self::Stdin),
            1 => Some(Self::Stdout),
            2 => Some(Self::Stderr),
            _ => None,
        }
    }
}

impl From<LogStream> for FrameStream {
    fn from(stream: LogStream) -> Self {
        match stream {
            LogStream::Stdout => Self::Stdout,
            LogStream::Stderr => Self::Stderr,
        }
    }
}

/// Encodes one frame. Payloads above 4 GiB are not representable and are truncated (the
/// shim reads at most 32 KiB at a time).
pub fn encode_frame(stream: FrameStream, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut frame = Vec::with_capacity(FRAME_HEADER_LEN + payload.len());
    frame.extend_from_slice(&[stream.byte(), 0, 0, 0]);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&payload[..len as usize]);
    frame
}

/// Decodes a frame header: the stream and the payload length.
pub fn decode_frame_header(
    header: [u8; FRAME_HEADER_LEN],
) -> std::io::Result<(FrameStream, usize)> {
    let stream = FrameStream::from_byte(header[0]).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("invalid stream type {} in frame", header[0]),
        )
    })?;
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    Ok((stream, len as usize))
}

/// Reads one frame; `None` at a clean end of stream.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
) -> std::io::Result<Option<(FrameStream, Vec<u8>)>> {
    let mut header = [0u8; FRAME_HEADER_LEN];
    let mut filled = 0;
    while filled < FRAME_HEADER_LEN {
        let read = reader.read(&mut header[filled..]).await?;
        if read == 0 {
            if filled == 0 {
                return Ok(None);
            }
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        filled += read;
    }
    let (stream, len) = decode_frame_header(header)?;
    let mut payload = vec![0u8; len];
    reader.read_exact(&mut payload).await?;
    Ok(Some((stream, payload)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_use_docker_stdcopy_layout() {
        let frame = encode_frame(FrameStream::Stderr, b"hello");
        assert_eq!(
            frame,
            [2, 0, 0, 0, 0, 0, 0, 5, b'h', b'e', b'l', b'l', b'o']
        );
        let header: [u8; 8] = frame[..8].try_into().unwrap();
        assert_eq!(
            decode_frame_header(header).unwrap(),
            (FrameStream::Stderr, 5)
        );
        assert!(decode_frame_header([7, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }

    #[tokio::test]
    async fn reads_frames_back_until_end_of_stream() {
        let mut bytes = encode_frame(FrameStream::Stdout, b"out");
        bytes.extend(encode_frame(FrameStream::Stderr, b""));
        bytes.extend(encode_frame(FrameStream::Stderr, &[0u8; 70_000]));
        let mut reader = bytes.as_slice();
        assert_eq!(
            read_frame(&mut reader).await.unwrap(),
            Some((FrameStream::Stdout, b"out".to_vec()))
        );
        assert_eq!(
            read_frame(&mut reader).await.unwrap(),
            Some((FrameStream::Stderr, Vec::new()))
        );
        let (stream, big) = read_frame(&mut reader).await.unwrap().unwrap();
        assert_eq!((stream, big.len()), (FrameStream::Stderr, 70_000));
        assert_eq!(read_frame(&mut reader).await.unwrap(), None);
        let mut truncated: &[u8] = &[1, 0, 0];
        assert!(read_frame(&mut truncated).await.is_err());
    }

    #[test]
    fn requests_and_replies_are_tagged_json() {
        let request = Request::Kill {
            signal: 9,
            all: false,
        };
        let text = serde_json::to_string(&request).unwrap();
        assert_eq!(text, r#"{"op":"kill","signal":9,"all":false}"#);
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), request);
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"op":"kill","signal":15}"#).unwrap(),
            Request::Kill {
                signal: 15,
                all: false
            }
        );
        assert!(serde_json::from_str::<Request>(r#"{"op":"kill","signal":1,"x":1}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"op":"explode"}"#).is_err());
        let exit = Response::Exit(ExitStatus {
            code: 137,
            oom_killed: false,
            finished_at: DateTime::from_timestamp(0, 5).unwrap(),
        });
        let text = serde_json::to_string(&exit).unwrap();
        assert_eq!(serde_json::from_str::<Response>(&text).unwrap(), exit);
        let report = LaunchReport::Failed {
            message: "x".into(),
            exit_code: 127,
        };
        let text = serde_json::to_string(&report).unwrap();
        assert_eq!(serde_json::from_str::<LaunchReport>(&text).unwrap(), report);
    }

    #[test]
    fn exec_requests_round_trip() {
        let request = Request::Exec {
            exec_id: "e1".into(),
            process: serde_json::json!({"args": ["ls"], "cwd": "/"}),
            tty: false,
            stdin: true,
        };
        let text = serde_json::to_string(&request).unwrap();
        assert!(text.starts_with(r#"{"op":"exec","exec_id":"e1""#), "{text}");
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), request);
        let resize: Request =
            serde_json::from_str(r#"{"op":"exec_resize","exec_id":"e1","height":3,"width":4}"#)
                .unwrap();
        assert_eq!(
            resize,
            Request::ExecResize {
                exec_id: "e1".into(),
                height: 3,
                width: 4
            }
        );
        let reply = Response::ExecExit { code: 137 };
        let text = serde_json::to_string(&reply).unwrap();
        assert_eq!(text, r#"{"result":"exec_exit","code":137}"#);
        let failed = Response::Error {
            message: "no".into(),
            kind: WireErrorKind::ExecFailed,
        };
        let text = serde_json::to_string(&failed).unwrap();
        assert_eq!(serde_json::from_str::<Response>(&text).unwrap(), failed);
        let report = ExecReport::Started { pid: 42 };
        let text = serde_json::to_string(&report).unwrap();
        assert_eq!(serde_json::from_str::<ExecReport>(&text).unwrap(), report);
    }
}
