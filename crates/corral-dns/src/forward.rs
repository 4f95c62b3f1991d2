//! Forwarding of non-local names to upstream resolvers, from the daemon's own namespace
//! (so a resolver on the host's loopback, e.g. systemd-resolved's 127.0.0.53, works too).
//!
//! The query is relayed as it came (same id, flags and EDNS); the first upstream that
//! answers wins. A truncated UDP answer is retried over TCP, as a stub resolver would.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// How long one upstream gets to answer.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);

/// The `nameserver` lines of a resolv.conf, on port 53; the embedded resolver's own address
/// is skipped so a container's resolv.conf never makes it forward to itself.
pub fn nameservers(resolv_conf: &str) -> Vec<SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver")).then(|| w.next()).flatten()
        })
        .filter_map(|ip| ip.split('%').next()?.parse::<IpAddr>().ok())
        .filter(|ip| *ip != IpAddr::V4(crate::RESOLVER_IP))
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

fn same_id(query: &[u8], resp: &[u8]) -> bool {
    query.len() >= 2 && resp.len() >= 12 && query[..2] == resp[..2]
}

fn truncated(resp: &[u8]) -> bool {
    resp.get(2).is_some_and(|b| b & 0x02 != 0)
}

async fn over_udp(upstream: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let local: SocketAddr = match upstream {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = UdpSocket::bind(local).await?;
    sock.connect(upstream).await?;
    sock.send(query).await?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = sock.recv(&mut buf).await?;
        // Ignore stray datagrams (a late answer to an earlier id cannot arrive on this
        // fresh socket, but be strict anyway).
        if let Some(resp) = buf.get(..n) {
            if same_id(query, resp) {
                return Ok(resp.to_vec());
            }
        }
    }
}

async fn over_tcp(upstream: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(upstream).await?;
    let len = u16::try_from(query.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "query too long"))?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    s.write_all(&framed).await?;
    let n = s.read_u16().await?;
    let mut resp = vec![0u8; usize::from(n)];
    s.read_exact(&mut resp).await?;
    Ok(resp)
}

/// Relays `query` to `upstreams` in order and returns the first answer with the query's
/// id; over TCP when `tcp` is set or a UDP answer came back truncated. `None` when no
/// upstream answered within [`UPSTREAM_TIMEOUT`] each.
pub async fn forward(upstreams: &[SocketAddr], query: &[u8], tcp: bool) -> Option<Vec<u8>> {
    for up in upstreams {
        let attempt = async {
            if !tcp {
                let resp = over_udp(*up, query).await?;
                if !truncated(&resp) {
                    return Ok(resp);
                }
            }
            over_tcp(*up, query).await
        };
        match tokio::time::timeout(UPSTREAM_TIMEOUT, attempt).await {
            Ok(Ok(resp)) if same_id(query, &resp) => return Some(resp),
            Ok(Ok(_)) => tracing::debug!(upstream = %up, "upstream answered another id"),
            Ok(Err(e)) => tracing::debug!(upstream = %up, error = %e, "upstream failed"),
            Err(_) => tracing::debug!(upstream = %up, "upstream timed out"),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nameservers_and_skips_the_embedded_resolver() {
        let conf = "# comment\nnameserver 10.0.0.2\nnameserver 127.0.0.11\nsearch example.org\nnameserver fe80::1%eth0\noptions ndots:2\n";
        assert_eq!(
            nameservers(conf),
            vec![
                "10.0.0.2:53".parse::<SocketAddr>().unwrap(),
                "[fe80::1]:53".parse::<SocketAddr>().unwrap()
            ]
        );
    }

    #[tokio::test]
    async fn relays_to_the_first_upstream_that_answers() {
        let up = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let up_addr = up.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let (n, from) = up.recv_from(&mut buf).await.unwrap();
            let mut resp = buf[..n].to_vec();
            resp[2] |= 0x80; // QR: a response
            resp.extend_from_slice(b"tail");
            up.send_to(&resp, from).await.unwrap();
        });
        let mut query = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        query.extend_from_slice(b"\x01x\x00\x00\x01\x00\x01");
        let got = forward(&[up_addr], &query, false).await.unwrap();
        assert_eq!(&got[..2], &[0x12, 0x34]);
        assert!(got.ends_with(b"tail"));
        server.await.unwrap();
    }
}
