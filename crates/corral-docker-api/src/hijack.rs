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

/// Answers `req` by hijacking its connection and pumping `io` both ways. Without an
/// `Upgrade` header the output is sent as a plain streaming body (no stdin).
pub(crate) fn respond(req: Request, io: AttachIo, version: ApiVersion) -> Response {
    let tty = io.tty;
    respond_deferred(req, tty, version, async move { Ok(io) })
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
            Ok(io) => pump(upgraded, io).await,
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
/// until the output ends; then closes the connection.
async fn pump<S>(conn: S, io: AttachIo)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(conn);
    let AttachIo {
        mut output,
        input,
        tty,
    } = io;
    let stdin_task = tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        match input {
            Some(mut w) => {
                loop {
                    match rd.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if w.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                            let _ = w.flush().await;
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
    while let Some(chunk) = output.next().await {
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
