//! A minimal HTTP/1.1 client over the daemon's unix socket for the calls bollard does
//! not expose in the shape the CLI needs: the raw JSON of `inspect` (printed verbatim),
//! `POST /auth`, and hijacked attach/exec streams whose write half we must half-close.
//! Also the demultiplexer for Docker's 8-byte framed stdout/stderr stream.

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// An error status from the daemon, printed the docker way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    /// HTTP status code.
    pub(crate) status: u16,
    /// The daemon's `message`.
    pub(crate) message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Error response from daemon: {}", self.message)
    }
}

impl std::error::Error for ApiError {}

/// A complete HTTP response.
#[derive(Debug)]
pub(crate) struct Response {
    /// Status code.
    pub(crate) status: u16,
    /// Decoded body (chunked transfer encoding removed).
    pub(crate) body: Vec<u8>,
}

/// A hijacked connection: the socket plus bytes already read past the headers.
pub(crate) struct Hijacked {
    /// The raw stream after the HTTP upgrade.
    pub(crate) stream: UnixStream,
    /// Stream bytes that arrived together with the response headers.
    pub(crate) leftover: Vec<u8>,
}

/// Raw client bound to one socket and API version.
#[derive(Clone, Debug)]
pub(crate) struct RawClient {
    path: PathBuf,
    prefix: String,
    timeout: Duration,
}

const MAX_HEADER: usize = 64 * 1024;

impl RawClient {
    /// A client for the socket at `path` speaking API `version` (e.g. `1.41`).
    pub(crate) fn new(path: PathBuf, version: &str) -> Self {
        RawClient {
            path,
            prefix: format!("/v{version}"),
            timeout: Duration::from_secs(600),
        }
    }

    fn request_head(
        &self,
        method: &str,
        path: &str,
        extra: &[(&str, String)],
        body_len: Option<usize>,
    ) -> String {
        let mut head = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: corral-cli\r\n",
            self.prefix
        );
        for (k, v) in extra {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(n) = body_len {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {n}\r\n"
            ));
        }
        head.push_str("\r\n");
        head
    }

    async fn connect(&self) -> anyhow::Result<UnixStream> {
        Ok(tokio::time::timeout(self.timeout, UnixStream::connect(&self.path)).await??)
    }

    /// Sends one request and reads the whole response.
    pub(crate) async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Option<&[u8]>,
    ) -> anyhow::Result<Response> {
        tokio::time::timeout(
            self.timeout,
            self.request_notify(method, path, headers, body, None),
        )
        .await?
    }

    /// Like [`request`](Self::request) with no deadline, signalling `head_read` as soon
    /// as the response headers arrive (used by `wait`, which blocks by design).
    pub(crate) async fn request_notify(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Option<&[u8]>,
        head_read: Option<tokio::sync::oneshot::Sender<()>>,
    ) -> anyhow::Result<Response> {
        {
            let mut s = self.connect().await?;
            let mut hdrs = headers.to_vec();
            hdrs.push(("Connection", "close".to_string()));
            let head = self.request_head(method, path, &hdrs, body.map(<[u8]>::len));
            s.write_all(head.as_bytes()).await?;
            if let Some(b) = body {
                s.write_all(b).await?;
            }
            let (status, resp_headers, mut rest) = read_head(&mut s).await?;
            if let Some(tx) = head_read {
                let _ = tx.send(());
            }
            let chunked = header(&resp_headers, "transfer-encoding")
                .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
            let length = header(&resp_headers, "content-length")
                .and_then(|v| v.trim().parse::<usize>().ok());
            match (chunked, length) {
                (false, Some(n)) => {
                    while rest.len() < n {
                        let mut buf = vec![0u8; (n - rest.len()).min(65536)];
                        let got = s.read(&mut buf).await?;
                        if got == 0 {
                            anyhow::bail!("unexpected EOF from daemon");
                        }
                        rest.extend_from_slice(&buf[..got]);
                    }
                    rest.truncate(n);
                }
                _ => {
                    s.read_to_end(&mut rest).await?;
                }
            }
            let body = if chunked {
                decode_chunked(&rest)?
            } else {
                rest
            };
            Ok::<_, anyhow::Error>(Response { status, body })
        }
    }

    /// Like [`request`](Self::request) but turns an error status into [`ApiError`].
    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Option<&[u8]>,
    ) -> anyhow::Result<Vec<u8>> {
        let r = self.request(method, path, headers, body).await?;
        if r.status >= 400 {
            return Err(api_error(r.status, &r.body).into());
        }
        Ok(r.body)
    }

    /// Sends a request asking to upgrade to a raw stream (attach, exec start).
    pub(crate) async fn hijack(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> anyhow::Result<Hijacked> {
        let fut = async {
            let mut s = self.connect().await?;
            let hdrs = [
                ("Connection", "Upgrade".to_string()),
                ("Upgrade", "tcp".to_string()),
            ];
            let head = self.request_head(method, path, &hdrs, Some(body.map_or(0, <[u8]>::len)));
            s.write_all(head.as_bytes()).await?;
            if let Some(b) = body {
                s.write_all(b).await?;
            }
            let (status, resp_headers, mut rest) = read_head(&mut s).await?;
            if status >= 400 {
                let n = header(&resp_headers, "content-length")
                    .and_then(|v| v.trim().parse::<usize>().ok());
                if let Some(n) = n {
                    while rest.len() < n {
                        let mut buf = vec![0u8; n - rest.len()];
                        let got = s.read(&mut buf).await?;
                        if got == 0 {
                            break;
                        }
                        rest.extend_from_slice(&buf[..got]);
                    }
                } else {
                    s.read_to_end(&mut rest).await?;
                }
                let chunked = header(&resp_headers, "transfer-encoding").is_some();
                let body = if chunked {
                    decode_chunked(&rest).unwrap_or(rest)
                } else {
                    rest
                };
                return Err(api_error(status, &body).into());
            }
            Ok::<_, anyhow::Error>(Hijacked {
                stream: s,
                leftover: rest,
            })
        };
        tokio::time::timeout(self.timeout, fut).await?
    }
}

/// Builds an [`ApiError`] from an error body (`{"message": ...}` or plain text).
pub(crate) fn api_error(status: u16, body: &[u8]) -> ApiError {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    ApiError { status, message }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

type Head = (u16, Vec<(String, String)>, Vec<u8>);

async fn read_head(s: &mut UnixStream) -> anyhow::Result<Head> {
    let mut buf = Vec::new();
    loop {
        if let Some(pos) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..pos]).to_string();
            let rest = buf[pos + 4..].to_vec();
            let (status, headers) = parse_head(&head)?;
            return Ok((status, headers, rest));
        }
        if buf.len() > MAX_HEADER {
            anyhow::bail!("response headers from daemon too large");
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            anyhow::bail!("daemon closed the connection before responding");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses a status line and headers.
fn parse_head(head: &str) -> anyhow::Result<(u16, Vec<(String, String)>)> {
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| {
            anyhow::anyhow!("malformed HTTP status line from daemon: {status_line:?}")
        })?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok((status, headers))
}

/// Decodes an HTTP/1.1 chunked body.
fn decode_chunked(mut data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end =
            find(data, b"\r\n").ok_or_else(|| anyhow::anyhow!("malformed chunked body"))?;
        let size_str = String::from_utf8_lossy(&data[..line_end]);
        let size_hex = size_str.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| anyhow::anyhow!("malformed chunk size {size_hex:?}"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size {
            anyhow::bail!("truncated chunked body");
        }
        out.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).unwrap_or(&[]);
    }
}

/// Which output stream a demultiplexed frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamKind {
    /// Container stdin echo (rare).
    Stdin,
    /// Container stdout.
    Stdout,
    /// Container stderr.
    Stderr,
}

/// Splits Docker's multiplexed stream (8-byte header: kind, 0, 0, 0, big-endian length).
#[derive(Debug, Default)]
pub(crate) struct Demux {
    buf: Vec<u8>,
}

impl Demux {
    /// Feeds bytes and returns every complete frame.
    pub(crate) fn push(&mut self, data: &[u8]) -> anyhow::Result<Vec<(StreamKind, Vec<u8>)>> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        loop {
            if self.buf.len() < 8 {
                return Ok(out);
            }
            let kind = match self.buf[0] {
                0 => StreamKind::Stdin,
                1 => StreamKind::Stdout,
                2 => StreamKind::Stderr,
                other => anyhow::bail!("unrecognized stream type {other} in multiplexed stream"),
            };
            let len = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]);
            let len = usize::try_from(len)?;
            if self.buf.len() < 8 + len {
                return Ok(out);
            }
            let payload = self.buf[8..8 + len].to_vec();
            self.buf.drain(..8 + len);
            out.push((kind, payload));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demux_splits_frames_across_pushes() {
        let mut d = Demux::default();
        let mut data = vec![1, 0, 0, 0, 0, 0, 0, 3];
        data.extend_from_slice(b"out");
        data.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 2]);
        data.extend_from_slice(b"er");
        let (a, b) = data.split_at(5);
        assert!(d.push(a).unwrap().is_empty());
        let frames = d.push(b).unwrap();
        assert_eq!(
            frames,
            vec![
                (StreamKind::Stdout, b"out".to_vec()),
                (StreamKind::Stderr, b"er".to_vec())
            ]
        );
        assert!(d.push(&[9, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn decodes_chunked_bodies() {
        let body = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\n\r\n";
        assert_eq!(decode_chunked(body).unwrap(), b"Wikipedia");
        assert!(decode_chunked(b"zz\r\n").is_err());
    }

    #[test]
    fn parses_status_and_headers() {
        let (s, h) = parse_head("HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nUpgrade: tcp").unwrap();
        assert_eq!(s, 101);
        assert_eq!(header(&h, "upgrade"), Some("tcp"));
        assert!(parse_head("garbage").is_err());
    }

    #[test]
    fn api_error_reads_message_or_text() {
        let e = api_error(404, br#"{"message":"No such container: x"}"#);
        assert_eq!(
            e.to_string(),
            "Error response from daemon: No such container: x"
        );
        assert_eq!(api_error(500, b"plain\n").message, "plain");
    }

    #[tokio::test]
    async fn request_round_trips_over_a_unix_socket() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("d.sock");
        let listener = tokio::net::UnixListener::bind(&sock).unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = s.read(&mut buf).await.unwrap();
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1b\r\n{\"message\":\"No such thing\"}\r\n0\r\n\r\n").await.unwrap();
            req
        });
        let c = RawClient::new(sock, "1.41");
        let err = c
            .call("GET", "/containers/x/json", &[], None)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "Error response from daemon: No such thing");
        let req = server.await.unwrap();
        assert!(
            req.starts_with("GET /v1.41/containers/x/json HTTP/1.1\r\n"),
            "{req}"
        );
    }
}
