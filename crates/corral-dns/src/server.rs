//! The per-container listeners: one hickory [`Server`] per container over the UDP socket
//! and TCP listener bound inside that container's namespace, all answering from one shared
//! [`Zone`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, Metadata, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use hickory_server::Server;
use parking_lot::{Mutex, RwLock};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::forward;
use crate::zone::{Answer, QueryKind, Zone};

/// TTL of local answers: short, as containers come and go (dockerd uses 600 s; a shorter
/// one costs nothing on a local socket and follows restarts sooner).
const LOCAL_TTL: u32 = 60;

/// How long a TCP client may stay idle.
const TCP_TIMEOUT: Duration = Duration::from_secs(10);

/// Answers the queries of one container.
struct Handler {
    container: String,
    zone: Arc<RwLock<Arc<Zone>>>,
    turn: AtomicUsize,
}

fn kind_of(t: RecordType) -> QueryKind {
    match t {
        RecordType::A => QueryKind::A,
        RecordType::PTR => QueryKind::Ptr,
        _ => QueryKind::Other,
    }
}

async fn send_error<R: ResponseHandler>(
    request: &Request,
    mut response: R,
    code: ResponseCode,
) -> ResponseInfo {
    let builder = MessageResponseBuilder::from_message_request(request);
    let msg = builder.error_msg(&request.metadata, code);
    match response.send_response(msg).await {
        Ok(info) => info,
        Err(e) => {
            tracing::debug!(error = %e, "sending a DNS error");
            let mut m = Metadata::response_from_request(&request.metadata);
            m.response_code = code;
            hickory_proto::op::Header {
                metadata: m,
                counts: Default::default(),
            }
            .into()
        }
    }
}

// === impl Handler ===

impl Handler {
    async fn send_records<R: ResponseHandler>(
        &self,
        request: &Request,
        mut response: R,
        answers: &[Record],
    ) -> ResponseInfo {
        let mut meta = Metadata::response_from_request(&request.metadata);
        meta.authoritative = true;
        meta.recursion_available = true;
        let builder = MessageResponseBuilder::from_message_request(request);
        let msg = builder.build(meta, answers.iter(), [], [], []);
        match response.send_response(msg).await {
            Ok(info) => info,
            Err(e) => {
                tracing::debug!(container = %self.container, error = %e, "sending a DNS answer");
                hickory_proto::op::Header {
                    metadata: meta,
                    counts: Default::default(),
                }
                .into()
            }
        }
    }

    async fn relay<R: ResponseHandler>(
        &self,
        request: &Request,
        mut response: R,
        upstreams: &[std::net::SocketAddr],
    ) -> ResponseInfo {
        let tcp = request.protocol() == Protocol::Tcp;
        let Some(bytes) = forward::forward(upstreams, request.as_slice(), tcp).await else {
            return send_error(request, response, ResponseCode::ServFail).await;
        };
        let Ok(m) = Message::from_vec(&bytes) else {
            return send_error(request, response, ResponseCode::ServFail).await;
        };
        let mut meta = Metadata::response_from_request(&request.metadata);
        meta.response_code = m.metadata.response_code;
        meta.recursion_available = m.metadata.recursion_available;
        meta.authentic_data = m.metadata.authentic_data;
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(e) = &m.edns {
            builder.edns(e);
        }
        let msg = builder.build(
            meta,
            m.answers.iter(),
            m.authorities.iter(),
            [],
            m.additionals.iter(),
        );
        match response.send_response(msg).await {
            Ok(info) => info,
            Err(e) => {
                tracing::debug!(container = %self.container, error = %e, "relaying a DNS answer");
                hickory_proto::op::Header {
                    metadata: meta,
                    counts: Default::default(),
                }
                .into()
            }
        }
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response: R,
    ) -> ResponseInfo {
        let (qname, qtype) = match request.request_info() {
            Ok(info) => (
                Name::from(info.query.name().clone()),
                info.query.query_type(),
            ),
            Err(_) => return send_error(request, response, ResponseCode::FormErr).await,
        };
        let zone = self.zone.read().clone();
        match zone.answer(&self.container, &qname.to_ascii(), kind_of(qtype)) {
            Answer::A(mut ips) => {
                // Round robin over a shared alias, as dockerd shuffles them.
                if !ips.is_empty() {
                    let n = self.turn.fetch_add(1, Ordering::Relaxed) % ips.len();
                    ips.rotate_left(n);
                }
                let records: Vec<Record> = ips
                    .into_iter()
                    .map(|ip| Record::from_rdata(qname.clone(), LOCAL_TTL, RData::A(A(ip))))
                    .collect();
                self.send_records(request, response, &records).await
            }
            Answer::Ptr(target) => match Name::from_ascii(format!("{target}.")) {
                Ok(t) => {
                    let r = Record::from_rdata(qname, LOCAL_TTL, RData::PTR(PTR(t)));
                    self.send_records(request, response, &[r]).await
                }
                Err(_) => send_error(request, response, ResponseCode::ServFail).await,
            },
            Answer::NoData => self.send_records(request, response, &[]).await,
            Answer::Forward => {
                let upstreams = zone
                    .view(&self.container)
                    .map(|v| v.upstreams.clone())
                    .unwrap_or_default();
                drop(zone);
                self.relay(request, response, &upstreams).await
            }
            Answer::Refused => send_error(request, response, ResponseCode::Refused).await,
        }
    }
}

/// The embedded DNS server: the shared zone plus one listener task per container.
#[derive(Default)]
pub struct DnsServer {
    zone: Arc<RwLock<Arc<Zone>>>,
    listeners: Mutex<BTreeMap<String, JoinHandle<()>>>,
}

impl std::fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsServer")
            .field("listeners", &self.listeners.lock().len())
            .finish_non_exhaustive()
    }
}

// === impl DnsServer ===

impl DnsServer {
    /// A server with an empty zone and no listeners.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the zone every listener answers from.
    pub fn set_zone(&self, zone: Zone) {
        *self.zone.write() = Arc::new(zone);
    }

    /// Serves container `container` on `udp` and `tcp` (bound already, in its namespace),
    /// replacing a previous listener of that container. Must be called from within a
    /// tokio runtime.
    ///
    /// # Errors
    /// A socket could not be registered with the runtime; nothing is left running.
    pub fn serve(
        &self,
        container: &str,
        udp: std::net::UdpSocket,
        tcp: std::net::TcpListener,
    ) -> Result<()> {
        let err = |source| Error::Socket {
            container: container.to_owned(),
            source,
        };
        udp.set_nonblocking(true).map_err(err)?;
        tcp.set_nonblocking(true).map_err(err)?;
        let udp = tokio::net::UdpSocket::from_std(udp).map_err(err)?;
        let tcp = tokio::net::TcpListener::from_std(tcp).map_err(err)?;
        let mut server = Server::new(Handler {
            container: container.to_owned(),
            zone: self.zone.clone(),
            turn: AtomicUsize::new(0),
        });
        server.register_socket(udp);
        server.register_listener(tcp, TCP_TIMEOUT, 65535);
        let id = container.to_owned();
        // Aborting this task drops the server, whose join set aborts the socket tasks and
        // closes the sockets.
        let task = tokio::spawn(async move {
            if let Err(e) = server.block_until_done().await {
                tracing::warn!(container = %id, error = %e, "DNS listener ended");
            }
        });
        if let Some(old) = self.listeners.lock().insert(container.to_owned(), task) {
            old.abort();
        }
        Ok(())
    }

    /// Stops container `container`'s listener (closing its sockets); returns whether it
    /// had one.
    pub fn stop(&self, container: &str) -> bool {
        match self.listeners.lock().remove(container) {
            Some(task) => {
                task.abort();
                true
            }
            None => false,
        }
    }

    /// Whether container `container` has a listener.
    pub fn is_serving(&self, container: &str) -> bool {
        self.listeners
            .lock()
            .get(container)
            .is_some_and(|t| !t.is_finished())
    }

    /// Stops every listener.
    pub fn shutdown(&self) {
        for (_, task) in std::mem::take(&mut *self.listeners.lock()) {
            task.abort();
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::{ContainerView, ZoneEntry};
    use hickory_proto::op::{MessageType, OpCode, Query};
    use std::net::{Ipv4Addr, SocketAddr};

    fn query(name: &str, t: RecordType) -> Vec<u8> {
        let mut m = Message::new(0x4242, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        m.to_vec().unwrap()
    }

    async fn ask_udp(server: SocketAddr, name: &str, t: RecordType) -> Message {
        let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        s.send_to(&query(name, t), server).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), s.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        Message::from_vec(&buf[..n]).unwrap()
    }

    async fn ask_tcp(server: SocketAddr, name: &str) -> Message {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(server).await.unwrap();
        let q = query(name, RecordType::A);
        let mut framed = u16::try_from(q.len()).unwrap().to_be_bytes().to_vec();
        framed.extend_from_slice(&q);
        s.write_all(&framed).await.unwrap();
        let n = s.read_u16().await.unwrap();
        let mut buf = vec![0u8; usize::from(n)];
        s.read_exact(&mut buf).await.unwrap();
        Message::from_vec(&buf).unwrap()
    }

    fn ips(m: &Message) -> Vec<Ipv4Addr> {
        let mut v: Vec<Ipv4Addr> = m
            .answers
            .iter()
            .filter_map(|r| match r.data {
                RData::A(A(ip)) => Some(ip),
                _ => None,
            })
            .collect();
        v.sort();
        v
    }

    /// A fake upstream answering every A question with 192.0.2.7.
    async fn upstream() -> SocketAddr {
        let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = s.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let (n, from) = s.recv_from(&mut buf).await.unwrap();
                let q = Message::from_vec(&buf[..n]).unwrap();
                let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
                r.metadata.recursion_available = true;
                r.add_query(q.queries[0].clone());
                r.add_answer(Record::from_rdata(
                    q.queries[0].name().clone(),
                    30,
                    RData::A(A(Ipv4Addr::new(192, 0, 2, 7))),
                ));
                s.send_to(&r.to_vec().unwrap(), from).await.unwrap();
            }
        });
        addr
    }

    #[tokio::test]
    async fn answers_local_names_over_udp_and_tcp_and_forwards_others() {
        let up = upstream().await;
        let dns = DnsServer::new();
        let entries = vec![
            ZoneEntry {
                network: "n1".into(),
                network_name: "front".into(),
                names: vec!["web1".into(), "web".into()],
                ip: Ipv4Addr::new(10, 1, 0, 2),
            },
            ZoneEntry {
                network: "n1".into(),
                network_name: "front".into(),
                names: vec!["web2".into(), "web".into()],
                ip: Ipv4Addr::new(10, 1, 0, 3),
            },
        ];
        let mut views = BTreeMap::new();
        views.insert(
            "c1".to_owned(),
            ContainerView {
                networks: vec!["n1".into()],
                upstreams: vec![up],
            },
        );
        dns.set_zone(Zone::new(&entries, views));
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (ua, ta) = (udp.local_addr().unwrap(), tcp.local_addr().unwrap());
        dns.serve("c1", udp, tcp).unwrap();
        assert!(dns.is_serving("c1"));

        let m = ask_udp(ua, "web.", RecordType::A).await;
        assert_eq!(m.metadata.id, 0x4242);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(
            ips(&m),
            vec![Ipv4Addr::new(10, 1, 0, 2), Ipv4Addr::new(10, 1, 0, 3)]
        );
        let m = ask_tcp(ta, "web1.").await;
        assert_eq!(ips(&m), vec![Ipv4Addr::new(10, 1, 0, 2)]);
        let m = ask_udp(ua, "web1.", RecordType::AAAA).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty());
        let m = ask_udp(ua, "example.org.", RecordType::A).await;
        assert_eq!(ips(&m), vec![Ipv4Addr::new(192, 0, 2, 7)]);

        assert!(dns.stop("c1"));
        assert!(!dns.is_serving("c1"));
        assert!(!dns.stop("c1"));
    }

    #[tokio::test]
    async fn unknown_upstreams_give_servfail() {
        let dns = DnsServer::new();
        let mut views = BTreeMap::new();
        views.insert("c1".to_owned(), ContainerView::default());
        dns.set_zone(Zone::new(&[], views));
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let ua = udp.local_addr().unwrap();
        dns.serve("c1", udp, tcp).unwrap();
        let m = ask_udp(ua, "example.org.", RecordType::A).await;
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    }
}
