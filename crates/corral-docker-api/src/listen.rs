//! Where the API listens: unix sockets and TCP, plain or with TLS, given as dockerd's `-H`
//! addresses (`unix:///run/corral/docker.sock`, `tcp://127.0.0.1:2376`).
//!
//! Parsing and validation ([`ListenAddr::parse`], [`ListenPlan::validate`]) are pure, so the
//! daemon refuses a bad combination (plain TCP on a non-loopback address, TLS flags without
//! files) before it binds anything. TLS uses rustls with the aws-lc-rs provider only.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream, UnixListener};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// How long a TLS client may take to finish its handshake before it is dropped, so a slow
/// or idle client never holds a connection slot for ever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshaken TLS connections waiting for the HTTP server to pick them up.
const TLS_ACCEPT_BACKLOG: usize = 64;

/// Why a listener could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListenError {
    /// The `-H` value is not `unix://PATH` or `tcp://HOST:PORT`.
    #[error("invalid listen address {addr:?}: {reason}")]
    InvalidAddr {
        /// The address as given.
        addr: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Plain TCP on an address other than loopback.
    #[error("refusing to listen on {addr} without TLS: anyone who reaches it is root on this host; use --tlsverify with --tlscacert, --tlscert and --tlskey (or listen on 127.0.0.1)")]
    PlainTcpNotLoopback {
        /// The address as given.
        addr: String,
    },
    /// A TLS option is missing or contradicts another.
    #[error("invalid TLS options: {0}")]
    TlsOptions(String),
    /// A PEM file could not be read or holds nothing usable.
    #[error("reading {what} {path}: {reason}")]
    Pem {
        /// Which file (`CA certificate`, `certificate`, `key`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// rustls refused the configuration (for example a key that does not match the cert).
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built from the CA file.
    #[error("client certificate verifier: {0}")]
    Verifier(String),
    /// Binding or preparing the socket failed.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// One `-H` address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// `unix://PATH`.
    Unix(PathBuf),
    /// `tcp://HOST:PORT`.
    Tcp(SocketAddr),
}

impl ListenAddr {
    /// Parses `unix:///path` or `tcp://IP:PORT` (also `tcp://localhost:PORT` and
    /// `tcp://[::1]:PORT`). A host name other than `localhost` is refused: the daemon binds
    /// addresses, not names.
    ///
    /// # Errors
    /// [`ListenError::InvalidAddr`] naming the problem.
    pub fn parse(s: &str) -> Result<Self, ListenError> {
        let bad = |reason: &str| ListenError::InvalidAddr {
            addr: s.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(path) = s.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(bad("a unix socket path must be absolute (unix:///path)"));
            }
            return Ok(ListenAddr::Unix(PathBuf::from(path)));
        }
        if let Some(rest) = s.strip_prefix("tcp://") {
            let rest = rest.trim_end_matches('/');
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| bad("expected tcp://HOST:PORT"))?;
            let port: u16 = port
                .parse()
                .map_err(|_| bad("the port must be a number from 0 to 65535"))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let ip: IpAddr = match host {
                "localhost" => IpAddr::from([127, 0, 0, 1]),
                "" => IpAddr::from([0, 0, 0, 0]),
                h => h
                    .parse()
                    .map_err(|_| bad("the host must be an IP address or localhost"))?,
            };
            return Ok(ListenAddr::Tcp(SocketAddr::new(ip, port)));
        }
        Err(bad("expected unix://PATH or tcp://HOST:PORT"))
    }
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddr::Unix(p) => write!(f, "unix://{}", p.display()),
            ListenAddr::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

/// dockerd's TLS flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// `--tls`: serve TCP over TLS without asking clients for a certificate.
    pub tls: bool,
    /// `--tlsverify`: serve TLS and require a client certificate signed by `ca`.
    pub verify: bool,
    /// `--tlscacert`: the CA that signs client certificates.
    pub ca: Option<PathBuf>,
    /// `--tlscert`: the server certificate chain.
    pub cert: Option<PathBuf>,
    /// `--tlskey`: the server private key.
    pub key: Option<PathBuf>,
}

impl TlsOptions {
    /// True when TCP listeners serve TLS.
    pub fn enabled(&self) -> bool {
        self.tls || self.verify
    }
}

/// The validated set of listeners: addresses, unix socket permissions and TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenPlan {
    /// The addresses, in order.
    pub addrs: Vec<ListenAddr>,
    /// Permission bits of unix sockets.
    pub socket_mode: u32,
    /// Group owning unix sockets; `None` leaves them to root's group.
    pub socket_gid: Option<u32>,
    /// TLS for TCP listeners.
    pub tls: TlsOptions,
}

impl ListenPlan {
    /// Checks the combination before anything is bound: TLS flags need their files, and
    /// plain TCP is allowed only on loopback. Returns the TCP addresses that are served
    /// without TLS (the caller warns about them).
    ///
    /// # Errors
    /// [`ListenError::TlsOptions`] or [`ListenError::PlainTcpNotLoopback`].
    pub fn validate(&self) -> Result<Vec<SocketAddr>, ListenError> {
        let tls = &self.tls;
        if tls.enabled() {
            if tls.cert.is_none() || tls.key.is_none() {
                return Err(ListenError::TlsOptions(
                    "--tls and --tlsverify need --tlscert and --tlskey".into(),
                ));
            }
            if tls.verify && tls.ca.is_none() {
                return Err(ListenError::TlsOptions(
                    "--tlsverify needs --tlscacert, the CA that signs client certificates".into(),
                ));
            }
        } else if tls.ca.is_some() || tls.cert.is_some() || tls.key.is_some() {
            return Err(ListenError::TlsOptions(
                "--tlscacert, --tlscert and --tlskey need --tls or --tlsverify".into(),
            ));
        }
        let mut plain = Vec::new();
        for a in &self.addrs {
            if let ListenAddr::Tcp(sa) = a {
                if !tls.enabled() {
                    if !sa.ip().is_loopback() {
                        return Err(ListenError::PlainTcpNotLoopback {
                            addr: a.to_string(),
                        });
                    }
                    plain.push(*sa);
                }
            }
        }
        Ok(plain)
    }
}

fn read_certs(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, ListenError> {
    let pem_err = |reason: String| ListenError::Pem {
        what,
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(e.to_string()))?;
    if certs.is_empty() {
        return Err(pem_err("no PEM certificate in the file".into()));
    }
    Ok(certs)
}

/// Builds the rustls server configuration from `opts` (which [`ListenPlan::validate`] has
/// checked): the server chain and key, and with `verify` a client-certificate verifier
/// rooted at the CA file.
///
/// # Errors
/// When a file is unreadable or holds no usable PEM item, or rustls refuses the pair.
pub fn server_config(opts: &TlsOptions) -> Result<rustls::ServerConfig, ListenError> {
    let missing = |flag: &str| ListenError::TlsOptions(format!("{flag} is required"));
    let cert_path = opts.cert.as_deref().ok_or_else(|| missing("--tlscert"))?;
    let key_path = opts.key.as_deref().ok_or_else(|| missing("--tlskey"))?;
    let chain = read_certs("certificate", cert_path)?;
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| ListenError::Pem {
        what: "key",
        path: key_path.to_owned(),
        reason: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = if opts.verify {
        let ca_path = opts.ca.as_deref().ok_or_else(|| missing("--tlscacert"))?;
        let mut roots = rustls::RootCertStore::empty();
        for c in read_certs("CA certificate", ca_path)? {
            roots.add(c).map_err(|e| ListenError::Pem {
                what: "CA certificate",
                path: ca_path.to_owned(),
                reason: e.to_string(),
            })?;
        }
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| ListenError::Verifier(e.to_string()))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder.with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A bound listener, ready for [`crate::serve`].
#[derive(Debug)]
pub enum BoundListener {
    /// A unix socket; the path is removed when the server stops.
    Unix(UnixListener, PathBuf),
    /// Plain TCP (loopback only).
    Tcp(TcpListener),
    /// TCP with TLS.
    Tls(TlsListener),
}

impl BoundListener {
    /// What it listens on, for logs (`unix:///…`, `tcp://…`, `tcp+tls://…`).
    pub fn describe(&self) -> String {
        match self {
            BoundListener::Unix(_, p) => format!("unix://{}", p.display()),
            BoundListener::Tcp(l) => match l.local_addr() {
                Ok(a) => format!("tcp://{a}"),
                Err(_) => "tcp://?".into(),
            },
            BoundListener::Tls(l) => format!("tcp+tls://{}", l.local_addr),
        }
    }
}

/// Binds every address of `plan` (validated first). Unix sockets get the plan's mode and
/// group; TCP listeners get TLS when the plan asks for it. Nothing stays bound on error.
///
/// # Errors
/// Any [`ListenError`].
pub async fn bind_all(plan: &ListenPlan) -> Result<Vec<BoundListener>, ListenError> {
    plan.validate()?;
    let acceptor = if plan.tls.enabled() {
        Some(TlsAcceptor::from(Arc::new(server_config(&plan.tls)?)))
    } else {
        None
    };
    let mut out = Vec::new();
    let mut created: Vec<PathBuf> = Vec::new();
    let result = async {
        for addr in &plan.addrs {
            let bind_err = |source| ListenError::Bind {
                addr: addr.to_string(),
                source,
            };
            match addr {
                ListenAddr::Unix(path) => {
                    let l = bind_unix(path, plan.socket_mode, plan.socket_gid).map_err(bind_err)?;
                    created.push(path.clone());
                    out.push(BoundListener::Unix(l, path.clone()));
                }
                ListenAddr::Tcp(sa) => {
                    let l = TcpListener::bind(sa).await.map_err(bind_err)?;
                    match &acceptor {
                        Some(a) => out.push(BoundListener::Tls(TlsListener::spawn(l, a.clone())?)),
                        None => out.push(BoundListener::Tcp(l)),
                    }
                }
            }
        }
        Ok::<(), ListenError>(())
    }
    .await;
    match result {
        Ok(()) => Ok(out),
        Err(e) => {
            drop(out);
            for p in created {
                let _ = std::fs::remove_file(p);
            }
            Err(e)
        }
    }
}

/// Binds the unix socket at `path`, replacing a stale socket file, with `mode` and, when
/// given, group `gid` (owner stays root).
///
/// # Errors
/// When another daemon answers on `path`, or binding, chmod or chown fails.
pub fn bind_unix(path: &Path, mode: u32, gid: Option<u32>) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    if path.exists() {
        // A live daemon would still answer on it; probing avoids stealing another's socket.
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("{} is in use by another daemon", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    let prepared =
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).and_then(|()| {
            match gid {
                Some(g) => std::os::unix::fs::chown(path, None, Some(g)),
                None => Ok(()),
            }
        });
    if let Err(e) = prepared {
        drop(listener);
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(listener)
}

/// A TLS listener for axum: a task accepts TCP connections and runs each handshake in its
/// own task under [`HANDSHAKE_TIMEOUT`], so a slow client never delays others; finished
/// handshakes are handed over through a bounded channel. Dropping it stops the tasks.
#[derive(Debug)]
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
    accept_task: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    fn spawn(listener: TcpListener, acceptor: TlsAcceptor) -> Result<Self, ListenError> {
        let local_addr = listener.local_addr().map_err(|source| ListenError::Bind {
            addr: "tcp listener".into(),
            source,
        })?;
        let (tx, rx) = mpsc::channel(TLS_ACCEPT_BACKLOG);
        let accept_task = tokio::spawn(accept_tls(listener, acceptor, tx));
        Ok(TlsListener {
            rx,
            local_addr,
            accept_task,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

async fn accept_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let mut handshakes = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let acceptor = acceptor.clone();
                    let tx = tx.clone();
                    handshakes.spawn(async move {
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                            Ok(Ok(tls)) => {
                                let _ = tx.send((tls, peer)).await;
                            }
                            Ok(Err(e)) => {
                                tracing::info!(%peer, error = %e, "TLS handshake refused");
                            }
                            Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
                        }
                    });
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning, as axum does.
                    tracing::warn!(error = %e, "accepting a TCP connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = handshakes.join_next(), if !handshakes.is_empty() => {}
            () = tx.closed() => return,
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // The accept task only ends when this receiver is dropped; never resolve.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(addrs: &[&str], tls: TlsOptions) -> ListenPlan {
        ListenPlan {
            addrs: addrs
                .iter()
                .map(|a| ListenAddr::parse(a).unwrap())
                .collect(),
            socket_mode: 0o660,
            socket_gid: None,
            tls,
        }
    }

    #[test]
    fn parses_unix_and_tcp_addresses() {
        assert_eq!(
            ListenAddr::parse("unix:///run/corral/docker.sock").unwrap(),
            ListenAddr::Unix("/run/corral/docker.sock".into())
        );
        assert_eq!(
            ListenAddr::parse("tcp://127.0.0.1:2376").unwrap(),
            ListenAddr::Tcp("127.0.0.1:2376".parse().unwrap())
        );
        assert_eq!(
            ListenAddr::parse("tcp://localhost:2375").unwrap(),
            ListenAddr::Tcp("127.0.0.1:2375".parse().unwrap())
        );
        assert_eq!(
            ListenAddr::parse("tcp://[::1]:2375").unwrap(),
            ListenAddr::Tcp("[::1]:2375".parse().unwrap())
        );
        assert_eq!(
            ListenAddr::parse("tcp://0.0.0.0:2376").unwrap().to_string(),
            "tcp://0.0.0.0:2376"
        );
    }

    #[test]
    fn rejects_malformed_addresses_naming_the_problem() {
        for (addr, needle) in [
            ("fd://", "expected unix://PATH or tcp://HOST:PORT"),
            ("unix://relative.sock", "must be absolute"),
            ("tcp://127.0.0.1", "expected tcp://HOST:PORT"),
            ("tcp://127.0.0.1:http", "port must be a number"),
            ("tcp://example.com:2376", "IP address or localhost"),
        ] {
            let e = ListenAddr::parse(addr).unwrap_err().to_string();
            assert!(e.contains(addr) && e.contains(needle), "{addr}: {e}");
        }
    }

    #[test]
    fn plain_tcp_is_loopback_only() {
        let p = plan(
            &["tcp://127.0.0.1:2375", "tcp://[::1]:2375"],
            TlsOptions::default(),
        );
        assert_eq!(p.validate().unwrap().len(), 2);
        let e = plan(&["tcp://0.0.0.0:2375"], TlsOptions::default())
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("refusing to listen on tcp://0.0.0.0:2375 without TLS"),
            "{e}"
        );
    }

    #[test]
    fn tls_flags_need_their_files() {
        let verify = TlsOptions {
            verify: true,
            cert: Some("c.pem".into()),
            key: Some("k.pem".into()),
            ..TlsOptions::default()
        };
        let e = plan(&["tcp://0.0.0.0:2376"], verify.clone())
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("--tlsverify needs --tlscacert"), "{e}");
        let ok = TlsOptions {
            ca: Some("ca.pem".into()),
            ..verify
        };
        assert!(plan(&["tcp://0.0.0.0:2376"], ok)
            .validate()
            .unwrap()
            .is_empty());
        let e = plan(
            &["tcp://127.0.0.1:2376"],
            TlsOptions {
                tls: true,
                ..TlsOptions::default()
            },
        )
        .validate()
        .unwrap_err()
        .to_string();
        assert!(e.contains("need --tlscert and --tlskey"), "{e}");
        let e = plan(
            &["unix:///x.sock"],
            TlsOptions {
                cert: Some("c.pem".into()),
                ..TlsOptions::default()
            },
        )
        .validate()
        .unwrap_err()
        .to_string();
        assert!(e.contains("need --tls or --tlsverify"), "{e}");
    }

    #[test]
    fn unreadable_pem_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        std::fs::write(&cert, "not a certificate").unwrap();
        let e = server_config(&TlsOptions {
            tls: true,
            cert: Some(cert.clone()),
            key: Some(dir.path().join("missing.pem")),
            ..TlsOptions::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("reading certificate") && e.contains("cert.pem"),
            "{e}"
        );
    }
}
