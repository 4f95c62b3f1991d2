//! Connection hijacking for attach and exec: `101 UPGRADED` then a raw bidirectional stream,
//! with Docker's 8-byte multiplexing header per frame unless the session has a TTY.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use corral_engine::{AttachIo, OutputChunk, StreamKind};
use futures::StreamExt;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::version::ApiVersion;

/// Encodes one chunk: raw with a TTY, else `[stream, 0, 0, 0, len_be32] + payload`.
pub(crate) fn frame(chunk: &OutputChunk, tty: bool) -> Bytes {
    if tty {
        return chunk.data.clone();
    }
    let stream = match chunk.stream {
        StreamKind::Stdin => 0u8,
        StreamKind::Stdout => 1,
        StreamKind::Stderr => 2,
    };
    let mut b = BytesMut::with_capacity(8 + chunk.data.len());
    b.put_u8(stream);
    b.put_bytes(0, 3);
    // A chunk never exceeds u32::MAX bytes: shims and log readers deliver at most 64 KiB.
    b.put_u32(u32::try_from(chunk.data.len()).unwrap_or(u32::MAX));
    b.extend_from_slice(&chunk.data);
    b.freeze()
}

fn content_type(tty: bool) -> HeaderValue {
    if tty {
        HeaderValue::from_static("application/vnd.docker.raw-stream")
    } else {
        HeaderValue::from_static("application/vnd.docker.multiplexed-stream")
    }
}

/// True when the client asked to upgrade the connection.
pub(crate) fn wants_upgrade(req: &Request) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .is_some_and(|v| !v.is_empty())
}

/// dockerd's default detach sequence, ctrl-p ctrl-q.
pub(crate) const DEFAULT_DETACH_KEYS: &[u8] = &[0x10, 0x11];

/// Parses a `detachKeys` value as dockerd's `term.ToBytes`: comma-separated single
/// characters, `ctrl-@`, `ctrl-a` … `ctrl-z`, `ctrl-[`, `ctrl-\`, `ctrl-]`, `ctrl-^`,
/// `ctrl-_` and `DEL`. Empty means the default sequence.
pub(crate) fn parse_detach_keys(keys: &str) -> Result<Vec<u8>, crate::ApiError> {
    if keys.is_empty() {
        return Ok(DEFAULT_DETACH_KEYS.to_vec());
    }
    const CTRL: &str = "@abcdefghijklmnopqrstuvwxyz[\\]^_";
    let mut out = Vec::new();
    for key in keys.split(',') {
        let code = if key.len() == 1 {
            key.as_bytes()[0]
        } else if key == "DEL" {
            127
        } else if let Some(c) = key
            .strip_prefix("ctrl-")
            .filter(|c| c.len() == 1)
            .and_then(|c| CTRL.find(c))
        {
            // `find` is an index below 32: CTRL has 32 single-byte characters.
            u8::try_from(c).unwrap_or(0)
        } else {
            return Err(crate::ApiError::bad_request(format!(
                "Invalid detach keys ({keys}) provided"
            )));
        };
        out.push(code);
    }
    Ok(out)
}

/// Watches client input for the detach sequence, as dockerd's escape proxy: bytes that
/// could start the sequence are held back until it either completes (detach) or breaks
/// (they are forwarded).
#[derive(Debug, Clone)]
pub(crate) struct DetachFilter {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachFilter {
    /// A filter for `keys` (never empty: [`parse_detach_keys`] gives the default).
    pub(crate) fn new(keys: Vec<u8>) -> Self {
        Self { keys, matched: 0 }
    }

    /// Feeds client bytes: returns those to forward to the process and whether the
    /// sequence completed (later bytes of `input` are dropped then).
    pub(crate) fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if self.keys.get(self.matched) == Some(&b) {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return (out, true);
                }
                continue;
            }
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if self.keys.first() == Some(&b) {
                self.matched = 1;
                if self.keys.len() == 1 {
                    return (out, true);
                }
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

/// Answers `req` by hijacking its connection and pumping `io` both ways. Without an
/// `Upgrade` header the output is sent as a plain streaming body (no stdin). With a TTY,
/// `detach_keys` in the client's input end the session and leave the process running.
pub(crate) fn respond(
    req: Request,
    io: AttachIo,
    version: ApiVersion,
    detach_keys: Option<Vec<u8>>,
) -> Response {
    let tty = io.tty;
    respond_deferred(req, tty, version, detach_keys, async move { Ok(io) })
}

/// Like [`respond`], but the session is opened by `start` only once the connection has been
/// upgraded. Clients such as docker-py read the `101` response through a buffered reader
/// and then switch to the raw socket, losing any bytes that arrived with the headers; a
/// process started after the upgrade cannot write before the headers are out. A failure of
/// `start` is written to the stream, as dockerd does once a connection is hijacked.
pub(crate) fn respond_deferred<F>(
    mut req: Request,
    tty: bool,
    version: ApiVersion,
    detach_keys: Option<Vec<u8>>,
    start: F,
) -> Response
where
    F: std::future::Future<Output = Result<AttachIo, corral_engine::Error>> + Send + 'static,
{
    if !wants_upgrade(&req) {
        let body = futures::stream::once(start).flat_map(move |r| match r {
            Ok(io) => io
                .output
                .map(move |c| Ok::<_, std::io::Error>(frame(&c, tty)))
                .boxed(),
            Err(e) => futures::stream::iter([Ok(Bytes::from(format!("{e}\r\n")))]).boxed(),
        });
        let mut resp = Body::from_stream(body).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, content_type(tty));
        return resp;
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => TokioIo::new(u),
            Err(e) => {
                tracing::debug!(error = %e, "attach upgrade failed");
                return;
            }
        };
        match start.await {
            Ok(io) => {
                // dockerd watches for the detach sequence only on TTY sessions.
                let detach = detach_keys.filter(|_| io.tty).map(DetachFilter::new);
                pump(upgraded, io, detach).await;
            }
            Err(e) => {
                let mut conn = upgraded;
                let _ = conn.write_all(format!("{e}\r\n").as_bytes()).await;
                let _ = conn.shutdown().await;
            }
        }
    });
    let mut resp = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    if version.at_least(1, 42) {
        h.insert(header::CONTENT_TYPE, content_type(tty));
    } else {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/vnd.docker.raw-stream"),
        );
    }
    resp
}

/// Copies client bytes to stdin (closing it at the client's EOF) and output to the client
/// until the output ends, or until the client types the detach sequence; then closes the
/// connection.
async fn pump<S>(conn: S, io: AttachIo, mut detach: Option<DetachFilter>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(conn);
    let AttachIo {
        mut output,
        input,
        tty,
    } = io;
    let (detached_tx, detached_rx) = tokio::sync::oneshot::channel::<()>();
    let stdin_task = tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        match input {
            Some(mut w) => {
                loop {
                    match rd.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let (data, detached) = match detach.as_mut() {
                                Some(f) => f.feed(&buf[..n]),
                                None => (buf[..n].to_vec(), false),
                            };
                            if w.write_all(&data).await.is_err() {
                                break;
                            }
                            let _ = w.flush().await;
                            if detached {
                                // The process keeps its stdin and goes on running.
                                let _ = detached_tx.send(());
                                return;
                            }
                        }
                    }
                }
                // The client half-closed: the container sees EOF on stdin.
                let _ = w.shutdown().await;
            }
            None => {
                // Drain and ignore client bytes so its writes never block.
                while let Ok(n) = rd.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            }
        }
    });
    let mut detached = std::pin::pin!(async move {
        if detached_rx.await.is_err() {
            // Input ended without detaching: only the output's end closes the session.
            std::future::pending::<()>().await;
        }
    });
    loop {
        let chunk = tokio::select! {
            c = output.next() => c,
            () = &mut detached => None,
        };
        let Some(chunk) = chunk else { break };
        if wr.write_all(&frame(&chunk, tty)).await.is_err() {
            break;
        }
        if wr.flush().await.is_err() {
            break;
        }
    }
    let _ = wr.shutdown().await;
    stdin_task.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_detach_keys_like_dockerd() {
        assert_eq!(parse_detach_keys("").unwrap(), vec![0x10, 0x11]);
        assert_eq!(
            parse_detach_keys("ctrl-p,ctrl-q").unwrap(),
            vec![0x10, 0x11]
        );
        assert_eq!(parse_detach_keys("ctrl-a").unwrap(), vec![1]);
        assert_eq!(parse_detach_keys("ctrl-@,ctrl-_").unwrap(), vec![0, 31]);
        assert_eq!(parse_detach_keys("ctrl-\\").unwrap(), vec![28]);
        assert_eq!(parse_detach_keys("a,DEL").unwrap(), vec![b'a', 127]);
        let e = parse_detach_keys("ctrl-1").unwrap_err();
        assert_eq!(e.message(), "Invalid detach keys (ctrl-1) provided");
    }

    #[test]
    fn detach_filter_holds_back_a_partial_sequence() {
        let mut f = DetachFilter::new(vec![0x10, 0x11]);
        assert_eq!(f.feed(b"ab\x10"), (b"ab".to_vec(), false));
        // The sequence breaks: the held byte is forwarded with the rest.
        assert_eq!(f.feed(b"c"), (b"\x10c".to_vec(), false));
        assert_eq!(f.feed(b"x\x10"), (b"x".to_vec(), false));
        assert_eq!(f.feed(b"\x11ignored"), (Vec::new(), true));
        // A repeated first key restarts the match.
        let mut f = DetachFilter::new(vec![0x10, 0x11]);
        assert_eq!(f.feed(b"\x10\x10\x11"), (b"\x10".to_vec(), true));
        let mut one = DetachFilter::new(vec![1]);
        assert_eq!(one.feed(b"hi\x01"), (b"hi".to_vec(), true));
    }

    #[test]
    fn frames_like_dockerd() {
        let c = OutputChunk {
            stream: StreamKind::Stderr,
            data: Bytes::from_static(b"hi\n"),
        };
        assert_eq!(
            &frame(&c, false)[..],
            &[2, 0, 0, 0, 0, 0, 0, 3, b'h', b'i', b'\n']
        );
        assert_eq!(&frame(&c, true)[..], b"hi\n");
    }
}
