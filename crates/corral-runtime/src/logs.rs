//! json-file container logs, in Docker's format.
//!
//! Each line of a log file is one JSON object:
//! `{"log":"text\n","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"}`. A line longer
//! than [`MAX_LINE`] bytes is split into several entries whose `log` lacks the trailing newline,
//! as Docker's log copier does. Files rotate at a maximum size: `log` is the current file,
//! `log.1` the previous one, up to `max_files` files in all.
//!
//! [`LogWriter`] is synchronous (the shim writes); [`read_logs`] and [`stream_logs`] are for
//! the daemon, the latter following the file until the container exits.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use corral_core::error::{Classify, ErrorKind};
use futures::Stream;
use serde::{Deserialize, Serialize};

/// Docker's default maximum size of one log file when rotation is on (10 MiB).
pub const DEFAULT_MAX_SIZE: u64 = 10 * 1024 * 1024;
/// Docker's default number of log files kept when rotation is on.
pub const DEFAULT_MAX_FILES: u32 = 3;
/// Longest entry written for one line; longer lines are split (Docker's 16 KiB buffer).
pub const MAX_LINE: usize = 16 * 1024;
/// How often a follower looks for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// Failures reading or writing logs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// Opening a log file failed.
    #[error("failed to open log file {path}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Writing a log file failed.
    #[error("failed to write log file {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Rotating log files failed.
    #[error("failed to rotate log file {path}")]
    Rotate {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Reading a log file failed.
    #[error("failed to read log file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The log configuration is invalid.
    #[error("invalid log option: {0}")]
    InvalidConfig(String),
}

/// Result alias for log operations.
pub type Result<T, E = LogError> = std::result::Result<T, E>;

/// Which output stream of the container a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    /// Standard output (also the whole output of a TTY container).
    Stdout,
    /// Standard error.
    Stderr,
}

/// One log entry: a line (with its newline) or a piece of a long or unterminated line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// The stream it came from.
    pub stream: LogStream,
    /// When the shim read it.
    pub time: DateTime<Utc>,
    /// The bytes; ends with `\n` unless the line was split or unterminated.
    pub line: Vec<u8>,
}

/// Rotation settings of a json-file log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    /// Rotate when the current file would grow past this many bytes; `None`: never rotate.
    pub max_size: Option<u64>,
    /// Number of files kept, the current one included (at least 1).
    pub max_files: u32,
}

/// Appends container output to a json-file log, rotating it by size.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    config: LogConfig,
    /// Unterminated bytes per stream (index: [`LogStream::index`]).
    pending: [Vec<u8>; 2],
}

/// What to read from a log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogReadOptions {
    /// Only entries at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only entries at or before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only the last N entries (applied before `since`, as Docker does).
    pub tail: Option<usize>,
    /// Keep streaming new entries until the container exits ([`stream_logs`] only).
    pub follow: bool,
}

/// The on-disk form of an entry.
#[derive(Serialize, Deserialize)]
struct JsonLine<'a> {
    log: Cow<'a, str>,
    stream: LogStream,
    time: Cow<'a, str>,
}

/// Reads new complete lines from the current log file, across rotations.
#[derive(Debug)]
struct Follower {
    path: PathBuf,
    reader: Option<BufReader<File>>,
    inode: u64,
    partial: Vec<u8>,
}

// === impl LogError ===

impl Classify for LogError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidConfig(_) => ErrorKind::InvalidInput,
            Self::Open { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            _ => ErrorKind::Internal,
        }
    }
}

// === impl LogStream ===

impl LogStream {
    fn index(self) -> usize {
        match self {
            Self::Stdout => 0,
            Self::Stderr => 1,
        }
    }

    /// The stream's name in the log file (`stdout` or `stderr`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

// === impl LogEntry ===

impl LogEntry {
    /// Encodes the entry as one json-file line, newline included.
    pub fn to_json_line(&self) -> Vec<u8> {
        let line = JsonLine {
            log: String::from_utf8_lossy(&self.line),
            stream: self.stream,
            time: Cow::Owned(self.time.to_rfc3339_opts(SecondsFormat::Nanos, true)),
        };
        // Serialising a struct of strings into a Vec cannot fail.
        let mut out = serde_json::to_vec(&line).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Decodes one json-file line; `None` when it is not a valid entry.
    pub fn from_json_line(line: &[u8]) -> Option<Self> {
        let parsed: JsonLine<'_> = serde_json::from_slice(line).ok()?;
        let time = DateTime::parse_from_rfc3339(&parsed.time)
            .ok()?
            .with_timezone(&Utc);
        Some(Self {
            stream: parsed.stream,
            time,
            line: parsed.log.into_owned().into_bytes(),
        })
    }
}

// === impl LogConfig ===

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            max_size: Some(DEFAULT_MAX_SIZE),
            max_files: DEFAULT_MAX_FILES,
        }
    }
}

impl LogConfig {
    /// Builds a config from Docker's `max-size` (bytes, 0: unlimited) and `max-file`.
    pub fn new(max_size: u64, max_files: u32) -> Result<Self> {
        if max_files == 0 {
            return Err(LogError::InvalidConfig(
                "max-file must be at least 1".into(),
            ));
        }
        Ok(Self {
            max_size: (max_size > 0).then_some(max_size),
            max_files,
        })
    }
}

// === impl LogWriter ===

impl LogWriter {
    /// Opens (appending) or creates the log at `path`.
    pub fn open(path: impl Into<PathBuf>, config: LogConfig) -> Result<Self> {
        let path = path.into();
        if config.max_files == 0 {
            return Err(LogError::InvalidConfig(
                "max-file must be at least 1".into(),
            ));
        }
        let file = open_append(&path)?;
        let size = file
            .metadata()
            .map_err(|source| LogError::Open {
                path: path.clone(),
                source,
            })?
            .len();
        Ok(Self {
            path,
            file,
            size,
            config,
            pending: [Vec::new(), Vec::new()],
        })
    }

    /// The current log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Logs output read now from `stream`; complete lines are written at once.
    pub fn write(&mut self, stream: LogStream, data: &[u8]) -> Result<()> {
        self.write_at(stream, data, Utc::now())
    }

    /// Logs output read at `time`: complete lines are written, an unterminated rest waits
    /// for more data, and a rest reaching [`MAX_LINE`] bytes is written as a partial entry.
    pub fn write_at(&mut self, stream: LogStream, data: &[u8], time: DateTime<Utc>) -> Result<()> {
        let index = stream.index();
        self.pending[index].extend_from_slice(data);
        let mut start = 0;
        loop {
            let rest = &self.pending[index][start..];
            let end = match rest.iter().position(|&b| b == b'\n') {
                Some(newline) if newline < MAX_LINE => newline + 1,
                _ if rest.len() >= MAX_LINE => MAX_LINE,
                _ => break,
            };
            let entry = LogEntry {
                stream,
                time,
                line: rest[..end].to_vec(),
            };
            self.append(&entry)?;
            start += end;
        }
        self.pending[index].drain(..start);
        Ok(())
    }

    /// Writes the unterminated rest of `stream` (at EOF) as a partial entry.
    pub fn flush_partial(&mut self, stream: LogStream) -> Result<()> {
        let rest = std::mem::take(&mut self.pending[stream.index()]);
        if rest.is_empty() {
            return Ok(());
        }
        self.append(&LogEntry {
            stream,
            time: Utc::now(),
            line: rest,
        })
    }

    /// Appends one encoded entry, rotating first when it would overflow the file.
    fn append(&mut self, entry: &LogEntry) -> Result<()> {
        let encoded = entry.to_json_line();
        let len = encoded.len() as u64;
        if let Some(max) = self.config.max_size {
            if self.size > 0 && self.size + len > max {
                self.rotate()?;
            }
        }
        self.file
            .write_all(&encoded)
            .map_err(|source| LogError::Write {
                path: self.path.clone(),
                source,
            })?;
        self.size += len;
        Ok(())
    }

    /// `log.(n-2)` → `log.(n-1)`, …, `log` → `log.1`, then a fresh `log`.
    fn rotate(&mut self) -> Result<()> {
        let rotate_err = |source| LogError::Rotate {
            path: self.path.clone(),
            source,
        };
        if self.config.max_files <= 1 {
            self.file.set_len(0).map_err(rotate_err)?;
            self.size = 0;
            return Ok(());
        }
        for index in (1..self.config.max_files).rev() {
            let from = if index == 1 {
                self.path.clone()
            } else {
                rotated_path(&self.path, index - 1)
            };
            match std::fs::rename(&from, rotated_path(&self.path, index)) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(rotate_err(err)),
            }
        }
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| LogError::Open {
            path: path.to_owned(),
            source,
        })
}

/// `log.N`.
fn rotated_path(path: &Path, index: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{index}"));
    PathBuf::from(name)
}

/// The existing files of the log at `path`, oldest first (`log.N` … `log.1`, `log`).
pub fn log_files(path: &Path) -> Vec<PathBuf> {
    let mut rotated = Vec::new();
    let mut index = 1;
    loop {
        let candidate = rotated_path(path, index);
        if !candidate.exists() {
            break;
        }
        rotated.push(candidate);
        index += 1;
    }
    rotated.reverse();
    if path.exists() {
        rotated.push(path.to_owned());
    }
    rotated
}

/// Reads the log at `path` across its rotated files, in order, applying `tail`, `since` and
/// `until` (`follow` is ignored: see [`stream_logs`]). A missing log reads as empty.
///
/// Blocking: call it from `spawn_blocking` in async code.
pub fn read_logs(path: &Path, options: &LogReadOptions) -> Result<Vec<LogEntry>> {
    Ok(snapshot(path, options)?.0)
}

/// Reads all files and returns the filtered entries plus a follower positioned after them.
fn snapshot(path: &Path, options: &LogReadOptions) -> Result<(Vec<LogEntry>, Follower)> {
    let mut entries = Vec::new();
    let mut follower = Follower::new(path.to_owned());
    for file in log_files(path) {
        let is_current = file == path;
        let handle = match File::open(&file) {
            Ok(handle) => handle,
            // Rotated away between listing and opening: its lines moved to an older name.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(LogError::Open { path: file, source }),
        };
        if is_current {
            follower.adopt(handle)?;
            entries.extend(follower.read_new()?);
        } else {
            let mut reader = BufReader::new(handle);
            let mut data = Vec::new();
            reader
                .read_to_end(&mut data)
                .map_err(|source| LogError::Read {
                    path: file.clone(),
                    source,
                })?;
            entries.extend(
                data.split(|&b| b == b'\n')
                    .filter(|line| !line.is_empty())
                    .filter_map(LogEntry::from_json_line),
            );
        }
    }
    if let Some(tail) = options.tail {
        let skip = entries.len().saturating_sub(tail);
        entries.drain(..skip);
    }
    entries.retain(|entry| wanted(entry, options));
    Ok((entries, follower))
}

fn wanted(entry: &LogEntry, options: &LogReadOptions) -> bool {
    options.since.is_none_or(|since| entry.time >= since)
        && options.until.is_none_or(|until| entry.time <= until)
}

/// Streams the log at `path`: the entries [`read_logs`] would return, then, with
/// `options.follow`, new entries as they are written (across rotations) until `exited`
/// becomes `true` (or its sender is dropped) and the file has been read to its end, or an
/// entry passes `until`.
pub fn stream_logs(
    path: PathBuf,
    options: LogReadOptions,
    exited: tokio::sync::watch::Receiver<bool>,
) -> impl Stream<Item = Result<LogEntry>> + Send + 'static {
    struct State {
        path: PathBuf,
        options: LogReadOptions,
        exited: tokio::sync::watch::Receiver<bool>,
        queue: VecDeque<LogEntry>,
        follower: Option<Follower>,
        started: bool,
        finishing: bool,
        done: bool,
    }
    let state = State {
        path,
        options,
        exited,
        queue: VecDeque::new(),
        follower: None,
        started: false,
        finishing: false,
        done: false,
    };
    futures::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(entry) = state.queue.pop_front() {
                if state.options.until.is_some_and(|until| entry.time > until) {
                    return None;
                }
                return Some((Ok(entry), state));
            }
            if state.done {
                return None;
            }
            if !state.started {
                state.started = true;
                let path = state.path.clone();
                let options = state.options.clone();
                match blocking(move || snapshot(&path, &options))
                    .await
                    .and_then(|inner| inner)
                {
                    Ok((entries, follower)) => {
                        state.queue.extend(entries);
                        state.follower = Some(follower);
                    }
                    Err(err) => {
                        state.done = true;
                        return Some((Err(err), state));
                    }
                }
                if !state.options.follow {
                    state.done = true;
                }
                continue;
            }
            let mut follower = state.follower.take()?;
            let polled = blocking(move || {
                let new = follower.read_new();
                (follower, new)
            })
            .await;
            let (follower, new) = match polled {
                Ok(pair) => pair,
                Err(err) => return Some((Err(err), state)),
            };
            state.follower = Some(follower);
            match new {
                Ok(entries) if !entries.is_empty() => {
                    let since = state.options.since;
                    state.queue.extend(
                        entries
                            .into_iter()
                            .filter(|entry| since.is_none_or(|since| entry.time >= since)),
                    );
                }
                Ok(_) if state.finishing => state.done = true,
                Ok(_) => {
                    if *state.exited.borrow() {
                        // One more read after the exit was seen: the shim flushes the log
                        // before it reports the exit.
                        state.finishing = true;
                        continue;
                    }
                    tokio::select! {
                        changed = state.exited.changed() => {
                            if changed.is_err() {
                                state.finishing = true;
                            }
                        }
                        () = tokio::time::sleep(FOLLOW_POLL) => {}
                    }
                }
                Err(err) => {
                    state.done = true;
                    return Some((Err(err), state));
                }
            }
        }
    })
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| LogError::Read {
            path: PathBuf::new(),
            source: std::io::Error::other(err),
        })
}

// === impl Follower ===

impl Follower {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            reader: None,
            inode: 0,
            partial: Vec::new(),
        }
    }

    fn adopt(&mut self, file: File) -> Result<()> {
        let inode = file
            .metadata()
            .map_err(|source| LogError::Read {
                path: self.path.clone(),
                source,
            })?
            .ino();
        self.reader = Some(BufReader::new(file));
        self.inode = inode;
        self.partial.clear();
        Ok(())
    }

    /// Reads the complete lines written since the last call. When the file was rotated away,
    /// it is drained first, then each newer file in turn (found by inode in the rotation
    /// chain), so no line is skipped unless its file was already deleted.
    fn read_new(&mut self) -> Result<Vec<LogEntry>> {
        let mut entries = Vec::new();
        loop {
            self.drain_reader(&mut entries)?;
            let chain: Vec<(PathBuf, u64)> = log_files(&self.path)
                .into_iter()
                .filter_map(|file| {
                    let inode = std::fs::metadata(&file).ok()?.ino();
                    Some((file, inode))
                })
                .collect();
            let position = self
                .reader
                .as_ref()
                .and_then(|_| chain.iter().position(|(_, inode)| *inode == self.inode));
            let next = match position {
                Some(index) => chain.get(index + 1),
                None => chain.first(),
            };
            match next {
                Some((file, _)) => match File::open(file) {
                    Ok(handle) => self.adopt(handle)?,
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => break,
                    Err(source) => {
                        return Err(LogError::Open {
                            path: file.clone(),
                            source,
                        })
                    }
                },
                None => {
                    if self.truncated()? {
                        continue;
                    }
                    break;
                }
            }
        }
        Ok(entries)
    }

    /// Whether the current file shrank below our position (rotation with one file truncates
    /// in place); if so, rewinds to its start.
    fn truncated(&mut self) -> Result<bool> {
        let Some(reader) = self.reader.as_mut() else {
            return Ok(false);
        };
        let read_err = |source| LogError::Read {
            path: self.path.clone(),
            source,
        };
        let len = reader.get_ref().metadata().map_err(read_err)?.len();
        let position = reader.stream_position().map_err(read_err)?;
        if len >= position {
            return Ok(false);
        }
        reader.seek(SeekFrom::Start(0)).map_err(read_err)?;
        self.partial.clear();
        Ok(true)
    }

    fn drain_reader(&mut self, entries: &mut Vec<LogEntry>) -> Result<()> {
        let Some(reader) = self.reader.as_mut() else {
            return Ok(());
        };
        loop {
            let read = reader
                .read_until(b'\n', &mut self.partial)
                .map_err(|source| LogError::Read {
                    path: self.path.clone(),
                    source,
                })?;
            if read == 0 || self.partial.last() != Some(&b'\n') {
                // EOF; an unterminated rest stays buffered until the writer finishes it.
                return Ok(());
            }
            if let Some(entry) = LogEntry::from_json_line(&self.partial) {
                entries.push(entry);
            } else {
                tracing::debug!(path = %self.path.display(), "skipping malformed log line");
            }
            self.partial.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 123).unwrap()
    }

    fn lines(entries: &[LogEntry]) -> Vec<String> {
        entries
            .iter()
            .map(|entry| String::from_utf8_lossy(&entry.line).into_owned())
            .collect()
    }

    #[test]
    fn writes_docker_json_file_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut writer = LogWriter::open(&path, LogConfig::default()).unwrap();
        writer
            .write_at(LogStream::Stdout, b"hello\nwor", at(0))
            .unwrap();
        writer
            .write_at(LogStream::Stderr, b"oops\n", at(1))
            .unwrap();
        writer.write_at(LogStream::Stdout, b"ld\n", at(2)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let expected = concat!(
            r#"{"log":"hello\n","stream":"stdout","time":"2023-11-14T22:13:20.000000123Z"}"#,
            "\n",
            r#"{"log":"oops\n","stream":"stderr","time":"2023-11-14T22:13:21.000000123Z"}"#,
            "\n",
            r#"{"log":"world\n","stream":"stdout","time":"2023-11-14T22:13:22.000000123Z"}"#,
            "\n"
        );
        assert_eq!(text, expected);
        let entries = read_logs(&path, &LogReadOptions::default()).unwrap();
        assert_eq!(lines(&entries), ["hello\n", "oops\n", "world\n"]);
        assert_eq!(entries[1].stream, LogStream::Stderr);
        assert_eq!(entries[1].time, at(1));
    }

    #[test]
    fn splits_lines_longer_than_16k_like_docker() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut writer = LogWriter::open(&path, LogConfig::default()).unwrap();
        let mut data = vec![b'a'; MAX_LINE + 10];
        data.push(b'\n');
        writer.write(LogStream::Stdout, &data).unwrap();
        writer.write(LogStream::Stdout, b"tail-no-newline").unwrap();
        writer.flush_partial(LogStream::Stdout).unwrap();
        let entries = read_logs(&path, &LogReadOptions::default()).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].line.len(), MAX_LINE);
        assert!(!entries[0].line.ends_with(b"\n"));
        assert_eq!(entries[1].line, [vec![b'a'; 10], vec![b'\n']].concat());
        assert_eq!(entries[2].line, b"tail-no-newline");
    }

    #[test]
    fn rotates_by_size_and_reads_across_files_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let config = LogConfig::new(200, 3).unwrap();
        let mut writer = LogWriter::open(&path, config).unwrap();
        for index in 0..20 {
            writer
                .write_at(
                    LogStream::Stdout,
                    format!("line {index}\n").as_bytes(),
                    at(index),
                )
                .unwrap();
        }
        assert!(path.exists());
        assert!(rotated_path(&path, 1).exists());
        assert!(rotated_path(&path, 2).exists());
        assert!(!rotated_path(&path, 3).exists());
        for file in log_files(&path) {
            assert!(std::fs::metadata(&file).unwrap().len() <= 200);
        }
        let entries = read_logs(&path, &LogReadOptions::default()).unwrap();
        let got = lines(&entries);
        // The oldest lines were dropped with the third rotation; the rest are in order.
        assert!(got.len() < 20 && got.len() >= 6, "{got:?}");
        let first: usize = got[0].trim()["line ".len()..].parse().unwrap();
        let expected: Vec<String> = (first..20).map(|i| format!("line {i}\n")).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn single_file_rotation_truncates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut writer = LogWriter::open(&path, LogConfig::new(100, 1).unwrap()).unwrap();
        for index in 0..10 {
            writer
                .write_at(
                    LogStream::Stdout,
                    format!("l{index}\n").as_bytes(),
                    at(index),
                )
                .unwrap();
        }
        assert_eq!(log_files(&path), vec![path.clone()]);
        let got = lines(&read_logs(&path, &LogReadOptions::default()).unwrap());
        assert_eq!(got.last().map(String::as_str), Some("l9\n"));
        assert!(got.len() < 10);
    }

    #[test]
    fn tail_applies_before_since_and_until_filters() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut writer = LogWriter::open(&path, LogConfig::new(0, 1).unwrap()).unwrap();
        for index in 0..10 {
            writer
                .write_at(
                    LogStream::Stdout,
                    format!("{index}\n").as_bytes(),
                    at(index),
                )
                .unwrap();
        }
        let read = |options: LogReadOptions| lines(&read_logs(&path, &options).unwrap());
        assert_eq!(
            read(LogReadOptions {
                tail: Some(3),
                ..Default::default()
            }),
            ["7\n", "8\n", "9\n"]
        );
        assert_eq!(
            read(LogReadOptions {
                tail: Some(0),
                ..Default::default()
            }),
            Vec::<String>::new()
        );
        assert_eq!(
            read(LogReadOptions {
                since: Some(at(8)),
                ..Default::default()
            }),
            ["8\n", "9\n"]
        );
        assert_eq!(
            read(LogReadOptions {
                tail: Some(5),
                since: Some(at(3)),
                until: Some(at(6)),
                ..Default::default()
            }),
            ["5\n", "6\n"]
        );
    }

    #[test]
    fn missing_log_reads_empty_and_invalid_config_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let entries = read_logs(&dir.path().join("nope"), &LogReadOptions::default()).unwrap();
        assert!(entries.is_empty());
        let err = LogConfig::new(1, 0).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn skips_malformed_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(
            &path,
            "garbage\n{\"log\":\"ok\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-01T00:00:00Z\"}\n",
        )
        .unwrap();
        let entries = read_logs(&path, &LogReadOptions::default()).unwrap();
        assert_eq!(lines(&entries), ["ok\n"]);
    }

    async fn next<S: Stream<Item = Result<LogEntry>> + Unpin>(
        stream: &mut S,
    ) -> Option<Result<LogEntry>> {
        tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("log stream stalled")
    }

    #[tokio::test]
    async fn follow_sees_new_lines_across_rotation_and_ends_on_exit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut writer = LogWriter::open(&path, LogConfig::new(400, 3).unwrap()).unwrap();
        writer.write(LogStream::Stdout, b"before\n").unwrap();
        let (exited_tx, exited_rx) = tokio::sync::watch::channel(false);
        let options = LogReadOptions {
            follow: true,
            ..Default::default()
        };
        let mut stream = Box::pin(stream_logs(path.clone(), options, exited_rx));
        let first: LogEntry = next(&mut stream).await.unwrap().unwrap();
        assert_eq!(first.line, b"before\n");
        // Enough lines (about 80 bytes each) to rotate twice while the follower is open.
        for index in 0..10 {
            writer
                .write(LogStream::Stderr, format!("after {index}\n").as_bytes())
                .unwrap();
        }
        assert!(rotated_path(&path, 2).exists());
        let mut got = Vec::new();
        for _ in 0..10 {
            let entry: LogEntry = next(&mut stream).await.unwrap().unwrap();
            got.push(String::from_utf8(entry.line).unwrap());
        }
        let expected: Vec<String> = (0..10).map(|i| format!("after {i}\n")).collect();
        assert_eq!(got, expected);
        writer.write(LogStream::Stdout, b"last\n").unwrap();
        exited_tx.send(true).unwrap();
        let last: LogEntry = next(&mut stream).await.unwrap().unwrap();
        assert_eq!(last.line, b"last\n");
        assert!(next(&mut stream).await.is_none());
    }

    #[tokio::test]
    async fn stream_without_follow_ends_after_existing_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut writer = LogWriter::open(&path, LogConfig::default()).unwrap();
        writer.write(LogStream::Stdout, b"a\nb\n").unwrap();
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let entries: Vec<_> = stream_logs(path, LogReadOptions::default(), rx)
            .collect()
            .await;
        assert_eq!(entries.len(), 2);
    }
}
