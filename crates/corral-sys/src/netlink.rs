//! Links, addresses and routes through rtnetlink, behind the [`Netlink`] trait.
//!
//! Every operation names the network namespace it acts in: `None` is the daemon's own
//! namespace, `Some(path)` a namespace file (a bind mount made by [`crate::netns`] or
//! `/proc/<pid>/ns/net`). An operation runs on a short-lived OS thread that `setns(2)`s into
//! the target namespace (a per-thread change), opens its netlink socket there and drives it
//! with a current-thread tokio runtime; the thread then exits, so no tokio worker of the
//! daemon ever changes namespace. The calls block: call them from `spawn_blocking`.

use std::fs::File;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::Path;
#[cfg(any(test, feature = "fake"))]
use std::path::PathBuf;

use futures::TryStreamExt;
use rtnetlink::packet_route::link::{LinkAttribute, LinkMessage};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};

/// Link, address and route operations a bridge network needs.
pub trait Netlink: Send + Sync {
    /// Creates a bridge `name` in the daemon's namespace and sets it up.
    ///
    /// # Errors
    /// `AlreadyExists` when a link of that name exists; otherwise the netlink error.
    fn create_bridge(&self, name: &str) -> io::Result<()>;

    /// Creates a veth pair `name` ⇄ `peer` in the daemon's namespace.
    ///
    /// # Errors
    /// `AlreadyExists` when a link of either name exists; otherwise the netlink error.
    fn create_veth(&self, name: &str, peer: &str) -> io::Result<()>;

    /// Enslaves `link` to the bridge `master` and sets it up (daemon namespace).
    ///
    /// # Errors
    /// `NotFound` when either link is missing; otherwise the netlink error.
    fn set_master(&self, link: &str, master: &str) -> io::Result<()>;

    /// Moves `link` from the daemon's namespace into the namespace file `netns`.
    ///
    /// # Errors
    /// `NotFound` when the link or the namespace file is missing.
    fn move_to_netns(&self, link: &str, netns: &Path) -> io::Result<()>;

    /// Renames `link` to `new_name` in namespace `ns` (the link must be down).
    ///
    /// # Errors
    /// The netlink error.
    fn rename_link(&self, ns: Option<&Path>, link: &str, new_name: &str) -> io::Result<()>;

    /// Adds `addr/prefix` to `link` in namespace `ns`.
    ///
    /// # Errors
    /// `AlreadyExists` when the address is already there; otherwise the netlink error.
    fn add_address(
        &self,
        ns: Option<&Path>,
        link: &str,
        addr: IpAddr,
        prefix: u8,
    ) -> io::Result<()>;

    /// Sets the hardware address of `link` (down) in namespace `ns`.
    ///
    /// # Errors
    /// `NotFound` when the link is missing; otherwise the netlink error.
    fn set_mac(&self, ns: Option<&Path>, link: &str, mac: [u8; 6]) -> io::Result<()>;

    /// Sets `link` up in namespace `ns`.
    ///
    /// # Errors
    /// `NotFound` when the link is missing; otherwise the netlink error.
    fn set_up(&self, ns: Option<&Path>, link: &str) -> io::Result<()>;

    /// Adds a default IPv4 route via `gateway` in namespace `ns`.
    ///
    /// # Errors
    /// The netlink error (`AlreadyExists` when a default route exists).
    fn add_default_route(&self, ns: Option<&Path>, gateway: Ipv4Addr) -> io::Result<()>;

    /// Deletes `link` in namespace `ns` (deleting one end of a veth deletes both).
    ///
    /// # Errors
    /// `NotFound` when there is no such link; otherwise the netlink error.
    fn delete_link(&self, ns: Option<&Path>, link: &str) -> io::Result<()>;

    /// The hardware address of `link` in namespace `ns`, `None` when there is no such link.
    ///
    /// # Errors
    /// The netlink error.
    fn link_mac(&self, ns: Option<&Path>, link: &str) -> io::Result<Option<[u8; 6]>>;

    /// The names of all links in namespace `ns`.
    ///
    /// # Errors
    /// The netlink error.
    fn link_names(&self, ns: Option<&Path>) -> io::Result<Vec<String>>;

    /// The destinations (`addr/prefix`) of the IPv4 routes of the main table of the daemon's
    /// namespace, default route excluded; IPAM skips subnets that overlap them.
    ///
    /// # Errors
    /// The netlink error.
    fn ipv4_routes(&self) -> io::Result<Vec<(Ipv4Addr, u8)>>;

    /// Writes `value` to the sysctl `key` (dotted, e.g. `net.ipv4.ip_forward`) of the
    /// daemon's namespace.
    ///
    /// # Errors
    /// `InvalidInput` for a key with `/` or `..`; otherwise the write error.
    fn set_sysctl(&self, key: &str, value: &str) -> io::Result<()>;
}

/// The rtnetlink implementation of [`Netlink`].
#[derive(Debug, Clone, Copy, Default)]
pub struct LinuxNetlink;

impl LinuxNetlink {
    /// A new handle; sockets are opened per call.
    pub fn new() -> Self {
        Self
    }
}

fn nl_err(e: rtnetlink::Error) -> io::Error {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.to_io(),
        other => io::Error::other(other.to_string()),
    }
}

/// Runs `op` with a netlink handle whose socket lives in namespace `ns`, on its own thread.
fn run_in<T, F, Fut>(ns: Option<&Path>, op: F) -> io::Result<T>
where
    T: Send + 'static,
    F: FnOnce(Handle) -> Fut + Send + 'static,
    Fut: Future<Output = io::Result<T>>,
{
    let ns_file = match ns {
        Some(p) => Some(File::open(p).map_err(|e| {
            io::Error::new(e.kind(), format!("opening netns {}: {e}", p.display()))
        })?),
        None => None,
    };
    let worker = std::thread::Builder::new()
        .name("corral-netlink".into())
        .spawn(move || -> io::Result<T> {
            if let Some(f) = &ns_file {
                // setns(2) on this thread only: it exits when `op` is done.
                nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(io::Error::from)?;
            }
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()?;
            rt.block_on(async move {
                let (conn, handle, _) = rtnetlink::new_connection()?;
                let task = tokio::spawn(conn);
                let out = op(handle).await;
                task.abort();
                out
            })
        })?;
    worker
        .join()
        .map_err(|_| io::Error::other("netlink worker thread panicked"))?
}

async fn index_of(handle: &Handle, name: &str) -> io::Result<u32> {
    let mut links = handle.link().get().match_name(name.to_owned()).execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(link.header.index),
        Ok(None) => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no link named {name}"),
        )),
        Err(e) => {
            let e = nl_err(e);
            if e.raw_os_error() == Some(libc::ENODEV) {
                Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no link named {name}"),
                ))
            } else {
                Err(e)
            }
        }
    }
}

fn mac_of(link: &LinkMessage) -> Option<[u8; 6]> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Address(b) if b.len() == 6 => {
            let mut mac = [0u8; 6];
            mac.copy_from_slice(b);
            Some(mac)
        }
        _ => None,
    })
}

impl Netlink for LinuxNetlink {
    fn set_sysctl(&self, key: &str, value: &str) -> io::Result<()> {
        if key.contains('/') || key.contains("..") || key.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad sysctl key {key:?}"),
            ));
        }
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        std::fs::write(&path, value)
            .map_err(|e| io::Error::new(e.kind(), format!("writing {path}: {e}")))
    }

    fn create_bridge(&self, name: &str) -> io::Result<()> {
        let name = name.to_owned();
        run_in(None, move |h| async move {
            h.link()
                .add(LinkBridge::new(&name).up().build())
                .execute()
                .await
                .map_err(nl_err)
        })
    }

    fn create_veth(&self, name: &str, peer: &str) -> io::Result<()> {
        let (name, peer) = (name.to_owned(), peer.to_owned());
        run_in(None, move |h| async move {
            h.link()
                .add(LinkVeth::new(&name, &peer).build())
                .execute()
                .await
                .map_err(nl_err)
        })
    }

    fn set_master(&self, link: &str, master: &str) -> io::Result<()> {
        let (link, master) = (link.to_owned(), master.to_owned());
        run_in(None, move |h| async move {
            let idx = index_of(&h, &link).await?;
            let midx = index_of(&h, &master).await?;
            h.link()
                .set(
                    LinkUnspec::new_with_index(idx)
                        .controller(midx)
                        .up()
                        .build(),
                )
                .execute()
                .await
                .map_err(nl_err)
        })
    }

    fn move_to_netns(&self, link: &str, netns: &Path) -> io::Result<()> {
        let link = link.to_owned();
        let ns = File::open(netns).map_err(|e| {
            io::Error::new(e.kind(), format!("opening netns {}: {e}", netns.display()))
        })?;
        run_in(None, move |h| async move {
            let idx = index_of(&h, &link).await?;
            h.link()
                .set(
                    LinkUnspec::new_with_index(idx)
                        .setns_by_fd(ns.as_raw_fd())
                        .build(),
                )
                .execute()
                .await
                .map_err(nl_err)
        })
    }

    fn rename_link(&self, ns: Option<&Path>, link: &str, new_name: &str) -> io::Result<()> {
        let (link, new_name) = (link.to_owned(), new_name.to_owned());
        run_in(ns, move |h| async move {
            let idx = index_of(&h, &link).await?;
            h.link()
                .set(LinkUnspec::new_with_index(idx).name(new_name).build())
                .execute()
                .await
                .map_err(nl_err)
        })
    }

    fn add_address(
        &self,
        ns: Option<&Path>,
        link: &str,
        addr: IpAddr,
        prefix: u8,
    ) -> io::Result<()> {
        let link = link.to_owned();
        run_in(ns, move |h| async move {
            let idx = index_of(&h, &link).await?;
            h.address()
                .add(idx, addr, prefix)
                .execute()
                .await
                .map_err(nl_err)
        })
    }

    fn set_mac(&self, ns: Option<&Path>, link: &str, mac: [u8; 6]) -> io::Result<()> {
        let link = link.to_owned();
        run_in(ns, move |h| async move {
            let idx = index_of(&h, &link).await?;
            h.link()
                .set(
                    LinkUnspec::new_with_index(idx)
                        .address(mac.to_vec())
                        .build(),
                )
                .execute()
                .await
                .map_err(nl_err)
        })
    }

    fn set_up(&self, ns: Option<&Path>, link: &str) -> io::Result<()> {
        let link = link.to_owned();
        run_in(ns, move |h| async move {
            let idx = index_of(&h, &link).await?;
            h.link()
                .set(LinkUnspec::new_with_index(idx).up().build())
                .execute()
                .await
                .map_err(nl_err)
        })
    }

    fn add_default_route(&self, ns: Option<&Path>, gateway: Ipv4Addr) -> io::Result<()> {
        run_in(ns, move |h| async move {
            let route = RouteMessageBuilder::<Ipv4Addr>::new()
                .gateway(gateway)
                .build();
            h.route().add(route).execute().await.map_err(nl_err)
        })
    }

    fn delete_link(&self, ns: Option<&Path>, link: &str) -> io::Result<()> {
        let link = link.to_owned();
        run_in(ns, move |h| async move {
            let idx = index_of(&h, &link).await?;
            h.link().del(idx).execute().await.map_err(nl_err)
        })
    }

    fn link_mac(&self, ns: Option<&Path>, link: &str) -> io::Result<Option<[u8; 6]>> {
        let link = link.to_owned();
        run_in(ns, move |h| async move {
            let mut links = h.link().get().match_name(link).execute();
            match links.try_next().await {
                Ok(Some(l)) => Ok(mac_of(&l)),
                Ok(None) => Ok(None),
                Err(e) => {
                    let e = nl_err(e);
                    if e.raw_os_error() == Some(libc::ENODEV) {
                        Ok(None)
                    } else {
                        Err(e)
                    }
                }
            }
        })
    }

    fn link_names(&self, ns: Option<&Path>) -> io::Result<Vec<String>> {
        run_in(ns, move |h| async move {
            let links: Vec<LinkMessage> = h
                .link()
                .get()
                .execute()
                .try_collect()
                .await
                .map_err(nl_err)?;
            Ok(links
                .iter()
                .filter_map(|l| {
                    l.attributes.iter().find_map(|a| match a {
                        LinkAttribute::IfName(n) => Some(n.clone()),
                        _ => None,
                    })
                })
                .collect())
        })
    }

    fn ipv4_routes(&self) -> io::Result<Vec<(Ipv4Addr, u8)>> {
        run_in(None, move |h| async move {
            let msg = RouteMessageBuilder::<Ipv4Addr>::new().build();
            let routes: Vec<_> = h
                .route()
                .get(msg)
                .execute()
                .try_collect()
                .await
                .map_err(nl_err)?;
            Ok(routes
                .iter()
                .filter(|r| r.header.destination_prefix_length > 0)
                .filter_map(|r| {
                    r.attributes.iter().find_map(|a| match a {
                        RouteAttribute::Destination(RouteAddress::Inet(d)) => {
                            Some((*d, r.header.destination_prefix_length))
                        }
                        _ => None,
                    })
                })
                .collect())
        })
    }
}

/// One call recorded by [`FakeNetlink`].
#[cfg(any(test, feature = "fake"))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetlinkCall {
    /// [`Netlink::create_bridge`].
    CreateBridge(String),
    /// [`Netlink::create_veth`].
    CreateVeth(String, String),
    /// [`Netlink::set_master`].
    SetMaster(String, String),
    /// [`Netlink::move_to_netns`].
    MoveToNetns(String, PathBuf),
    /// [`Netlink::rename_link`].
    Rename(Option<PathBuf>, String, String),
    /// [`Netlink::add_address`].
    AddAddress(Option<PathBuf>, String, IpAddr, u8),
    /// [`Netlink::set_mac`].
    SetMac(Option<PathBuf>, String, [u8; 6]),
    /// [`Netlink::set_up`].
    SetUp(Option<PathBuf>, String),
    /// [`Netlink::add_default_route`].
    DefaultRoute(Option<PathBuf>, Ipv4Addr),
    /// [`Netlink::delete_link`].
    DeleteLink(Option<PathBuf>, String),
    /// [`Netlink::set_sysctl`].
    Sysctl(String, String),
}

/// A [`Netlink`] that records calls and tracks link names of the daemon's namespace.
#[cfg(any(test, feature = "fake"))]
#[derive(Debug, Default)]
pub struct FakeNetlink {
    state: std::sync::RwLock<FakeState>,
}

#[cfg(any(test, feature = "fake"))]
#[derive(Debug, Default)]
struct FakeState {
    calls: Vec<NetlinkCall>,
    links: Vec<String>,
    routes: Vec<(Ipv4Addr, u8)>,
}

#[cfg(any(test, feature = "fake"))]
impl FakeNetlink {
    /// An empty fake.
    pub fn new() -> Self {
        Self::default()
    }

    /// The calls so far, in order.
    pub fn calls(&self) -> Vec<NetlinkCall> {
        self.state
            .read()
            .map(|s| s.calls.clone())
            .unwrap_or_default()
    }

    /// Host routes [`Netlink::ipv4_routes`] reports.
    pub fn set_routes(&self, routes: Vec<(Ipv4Addr, u8)>) {
        if let Ok(mut s) = self.state.write() {
            s.routes = routes;
        }
    }

    fn record(&self, call: NetlinkCall) -> io::Result<()> {
        let mut s = self
            .state
            .write()
            .map_err(|_| io::Error::other("fake poisoned"))?;
        let exists = |s: &FakeState, n: &str| s.links.iter().any(|l| l == n);
        match &call {
            NetlinkCall::CreateBridge(n) => {
                if exists(&s, n) {
                    return Err(io::ErrorKind::AlreadyExists.into());
                }
                s.links.push(n.clone());
            }
            NetlinkCall::CreateVeth(a, b) => {
                if exists(&s, a) || exists(&s, b) {
                    return Err(io::ErrorKind::AlreadyExists.into());
                }
                s.links.push(a.clone());
                s.links.push(b.clone());
            }
            NetlinkCall::MoveToNetns(n, _) => s.links.retain(|l| l != n),
            NetlinkCall::DeleteLink(None, n) => {
                if !exists(&s, n) {
                    return Err(io::ErrorKind::NotFound.into());
                }
                s.links.retain(|l| l != n);
            }
            _ => {}
        }
        s.calls.push(call);
        Ok(())
    }
}

#[cfg(any(test, feature = "fake"))]
fn owned(ns: Option<&Path>) -> Option<PathBuf> {
    ns.map(Path::to_path_buf)
}

#[cfg(any(test, feature = "fake"))]
impl Netlink for FakeNetlink {
    fn set_sysctl(&self, key: &str, value: &str) -> io::Result<()> {
        self.record(NetlinkCall::Sysctl(key.into(), value.into()))
    }
    fn create_bridge(&self, name: &str) -> io::Result<()> {
        self.record(NetlinkCall::CreateBridge(name.into()))
    }
    fn create_veth(&self, name: &str, peer: &str) -> io::Result<()> {
        self.record(NetlinkCall::CreateVeth(name.into(), peer.into()))
    }
    fn set_master(&self, link: &str, master: &str) -> io::Result<()> {
        self.record(NetlinkCall::SetMaster(link.into(), master.into()))
    }
    fn move_to_netns(&self, link: &str, netns: &Path) -> io::Result<()> {
        self.record(NetlinkCall::MoveToNetns(link.into(), netns.into()))
    }
    fn rename_link(&self, ns: Option<&Path>, link: &str, new_name: &str) -> io::Result<()> {
        self.record(NetlinkCall::Rename(owned(ns), link.into(), new_name.into()))
    }
    fn add_address(
        &self,
        ns: Option<&Path>,
        link: &str,
        addr: IpAddr,
        prefix: u8,
    ) -> io::Result<()> {
        self.record(NetlinkCall::AddAddress(
            owned(ns),
            link.into(),
            addr,
            prefix,
        ))
    }
    fn set_mac(&self, ns: Option<&Path>, link: &str, mac: [u8; 6]) -> io::Result<()> {
        self.record(NetlinkCall::SetMac(owned(ns), link.into(), mac))
    }
    fn set_up(&self, ns: Option<&Path>, link: &str) -> io::Result<()> {
        self.record(NetlinkCall::SetUp(owned(ns), link.into()))
    }
    fn add_default_route(&self, ns: Option<&Path>, gateway: Ipv4Addr) -> io::Result<()> {
        self.record(NetlinkCall::DefaultRoute(owned(ns), gateway))
    }
    fn delete_link(&self, ns: Option<&Path>, link: &str) -> io::Result<()> {
        self.record(NetlinkCall::DeleteLink(owned(ns), link.into()))
    }
    fn link_mac(&self, _ns: Option<&Path>, _link: &str) -> io::Result<Option<[u8; 6]>> {
        Ok(Some([0x02, 0x42, 0xac, 0x11, 0x00, 0x02]))
    }
    fn link_names(&self, _ns: Option<&Path>) -> io::Result<Vec<String>> {
        Ok(self
            .state
            .read()
            .map(|s| s.links.clone())
            .unwrap_or_default())
    }
    fn ipv4_routes(&self) -> io::Result<Vec<(Ipv4Addr, u8)>> {
        Ok(self
            .state
            .read()
            .map(|s| s.routes.clone())
            .unwrap_or_default())
    }
}
