//! Sockets bound inside another network namespace, behind the [`NetnsSockets`] trait.
//!
//! A socket keeps the namespace it was created in: a thread `setns(2)`s into the target
//! namespace, brings `lo` up, binds, and hands the sockets back before it exits. The daemon
//! then serves them from its own runtime (the embedded DNS server listens on 127.0.0.11:53
//! inside each container this way, as dockerd does). No tokio worker ever changes namespace.

use std::fs::File;
use std::io;
use std::net::{SocketAddrV4, TcpListener, UdpSocket};
use std::path::Path;
#[cfg(any(test, feature = "fake"))]
use std::path::PathBuf;

use crate::netlink::{LinuxNetlink, Netlink};

/// Binds sockets inside a network namespace.
pub trait NetnsSockets: Send + Sync {
    /// Brings `lo` up in the namespace file `netns` and binds a UDP socket and a TCP
    /// listener on `addr` there; both are non-blocking.
    ///
    /// # Errors
    /// The namespace file cannot be opened or joined, or a bind fails (e.g. the address is
    /// in use inside the namespace).
    fn bind_udp_tcp(
        &self,
        netns: &Path,
        addr: SocketAddrV4,
    ) -> io::Result<(UdpSocket, TcpListener)>;
}

/// The Linux implementation of [`NetnsSockets`].
#[derive(Debug, Clone, Copy, Default)]
pub struct LinuxNetnsSockets;

impl LinuxNetnsSockets {
    /// A new handle.
    pub fn new() -> Self {
        Self
    }
}

impl NetnsSockets for LinuxNetnsSockets {
    fn bind_udp_tcp(
        &self,
        netns: &Path,
        addr: SocketAddrV4,
    ) -> io::Result<(UdpSocket, TcpListener)> {
        // 127.0.0.11 is only reachable once the namespace's loopback is up.
        LinuxNetlink::new().set_up(Some(netns), "lo")?;
        let ns_file = File::open(netns).map_err(|e| {
            io::Error::new(e.kind(), format!("opening netns {}: {e}", netns.display()))
        })?;
        let worker = std::thread::Builder::new()
            .name("corral-netsock".into())
            .spawn(move || -> io::Result<(UdpSocket, TcpListener)> {
                // setns(2) on this thread only: it exits right after binding.
                nix::sched::setns(&ns_file, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(io::Error::from)?;
                let udp = UdpSocket::bind(addr)?;
                let tcp = TcpListener::bind(addr)?;
                udp.set_nonblocking(true)?;
                tcp.set_nonblocking(true)?;
                Ok((udp, tcp))
            })?;
        worker
            .join()
            .map_err(|_| io::Error::other("netns socket thread panicked"))?
    }
}

/// A [`NetnsSockets`] that binds on 127.0.0.1 with a kernel-chosen port in the caller's own
/// namespace and records the namespaces asked for; one chosen namespace can be made to fail.
#[cfg(any(test, feature = "fake"))]
#[derive(Debug, Default)]
pub struct FakeNetnsSockets {
    calls: std::sync::RwLock<Vec<PathBuf>>,
    fail: std::sync::RwLock<Option<PathBuf>>,
}

#[cfg(any(test, feature = "fake"))]
impl FakeNetnsSockets {
    /// An empty fake.
    pub fn new() -> Self {
        Self::default()
    }

    /// The namespaces bound in so far, in order.
    pub fn calls(&self) -> Vec<PathBuf> {
        self.calls.read().map(|c| c.clone()).unwrap_or_default()
    }

    /// Makes binding in `netns` fail with `AddrInUse`.
    pub fn fail_in(&self, netns: &Path) {
        if let Ok(mut f) = self.fail.write() {
            *f = Some(netns.to_path_buf());
        }
    }
}

#[cfg(any(test, feature = "fake"))]
impl NetnsSockets for FakeNetnsSockets {
    fn bind_udp_tcp(
        &self,
        netns: &Path,
        _addr: SocketAddrV4,
    ) -> io::Result<(UdpSocket, TcpListener)> {
        if let Ok(mut c) = self.calls.write() {
            c.push(netns.to_path_buf());
        }
        if self.fail.read().ok().and_then(|f| f.clone()).as_deref() == Some(netns) {
            return Err(io::ErrorKind::AddrInUse.into());
        }
        let udp = UdpSocket::bind("127.0.0.1:0")?;
        let tcp = TcpListener::bind("127.0.0.1:0")?;
        Ok((udp, tcp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_records_and_fails_on_demand() {
        let f = FakeNetnsSockets::new();
        let addr = SocketAddrV4::new(std::net::Ipv4Addr::new(127, 0, 0, 11), 53);
        let (u, t) = f.bind_udp_tcp(Path::new("/run/x/netns/a"), addr).unwrap();
        assert!(u.local_addr().unwrap().port() != 0 && t.local_addr().is_ok());
        f.fail_in(Path::new("/run/x/netns/b"));
        let e = f
            .bind_udp_tcp(Path::new("/run/x/netns/b"), addr)
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        assert_eq!(f.calls().len(), 2);
    }

    #[test]
    #[ignore = "needs root: creates a netns"]
    fn binds_inside_a_fresh_namespace() {
        use crate::netns::{LinuxNetns, Netns};
        assert!(nix::unistd::geteuid().is_root(), "needs root");
        let dir = tempfile::tempdir().unwrap();
        let ns = dir.path().join("ns");
        LinuxNetns::new().create(&ns).unwrap();
        let addr = SocketAddrV4::new(std::net::Ipv4Addr::new(127, 0, 0, 11), 53);
        let res = LinuxNetnsSockets::new().bind_udp_tcp(&ns, addr);
        // 127.0.0.11:53 is not bound in this test's own namespace by this call.
        let (u, _t) = res.unwrap();
        assert_eq!(u.local_addr().unwrap(), std::net::SocketAddr::V4(addr));
        drop(u);
        LinuxNetns::new().delete(&ns).unwrap();
    }
}
