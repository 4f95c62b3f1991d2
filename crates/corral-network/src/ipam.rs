//! IPv4 address management as plain data: subnets for networks and addresses within them.
//!
//! Nothing here touches the kernel. The engine persists [`AddressPool`]s (they are `serde`
//! types) so an address is never handed out twice, also across daemon restarts.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// An IPv4 subnet `addr/prefix`, stored with its host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    prefix: u8,
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl Ipv4Net {
    /// The subnet containing `addr` with `prefix` bits (host bits are cleared).
    ///
    /// # Errors
    /// `InvalidCidr` when `prefix` is above 32.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Self> {
        if prefix > 32 {
            return Err(Error::InvalidCidr(format!("{addr}/{prefix}")));
        }
        Ok(Self {
            addr: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        })
    }

    /// The network address.
    pub fn network(&self) -> Ipv4Addr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !mask(self.prefix))
    }

    /// Whether `ip` lies in this subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.addr)
    }

    /// Whether the two subnets share an address.
    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        self.contains(other.addr) || other.contains(self.addr)
    }

    /// Whether `ip` is a host address (neither the network nor the broadcast address).
    pub fn is_host(&self, ip: Ipv4Addr) -> bool {
        self.contains(ip) && ip != self.addr && ip != self.broadcast()
    }

    /// The first host address, Docker's default gateway.
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr).saturating_add(1))
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv4Net {
    type Err = Error;

    /// Parses `a.b.c.d/len`; host bits must be zero and len between 8 and 30, as a network
    /// needs a gateway and at least one more host.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::InvalidCidr(s.to_owned());
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if !(8..=30).contains(&prefix) {
            return Err(bad());
        }
        let net = Self::new(addr, prefix)?;
        if net.addr != addr {
            return Err(bad());
        }
        Ok(net)
    }
}

/// Where network subnets come from: `/prefix` blocks carved out of `base` in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubnetPool {
    /// The range subnets are taken from.
    pub base: Ipv4Net,
    /// The size of each subnet.
    pub prefix: u8,
}

impl Default for SubnetPool {
    /// Docker's default local pool: `172.17.0.0/16` … `172.31.0.0/16` in `/16` blocks.
    fn default() -> Self {
        Self {
            base: Ipv4Net {
                addr: Ipv4Addr::new(172, 16, 0, 0),
                prefix: 12,
            },
            prefix: 16,
        }
    }
}

/// A subnet already taken, with who takes it (for error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedSubnet {
    /// The subnet.
    pub subnet: Ipv4Net,
    /// A network name, or "a host route".
    pub owner: String,
}

impl SubnetPool {
    /// The first block of the pool overlapping none of `used` (172.16.0.0/16 is skipped as
    /// Docker does, leaving it to the host).
    ///
    /// # Errors
    /// `PoolExhausted` when every block is taken.
    pub fn allocate(&self, used: &[UsedSubnet]) -> Result<Ipv4Net> {
        let step = 1u64 << (32 - u32::from(self.prefix));
        let start = u64::from(u32::from(self.base.addr));
        let end = u64::from(u32::from(self.base.broadcast()));
        let mut at = start;
        while at <= end {
            let candidate = Ipv4Net::new(Ipv4Addr::from(truncate(at)), self.prefix)?;
            let skip_first = self.base == SubnetPool::default().base && at == start;
            if !skip_first && !used.iter().any(|u| u.subnet.overlaps(&candidate)) {
                return Ok(candidate);
            }
            at += step;
        }
        Err(Error::PoolExhausted)
    }
}

fn truncate(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// Checks a user-chosen subnet against the subnets in use.
///
/// # Errors
/// `SubnetOverlap` naming the first overlapping subnet and its owner.
pub fn check_free(subnet: Ipv4Net, used: &[UsedSubnet]) -> Result<()> {
    match used.iter().find(|u| u.subnet.overlaps(&subnet)) {
        Some(u) => Err(Error::SubnetOverlap {
            subnet: subnet.to_string(),
            other: u.subnet.to_string(),
            owner: u.owner.clone(),
        }),
        None => Ok(()),
    }
}

/// The addresses of one network: its subnet, gateway, optional `--ip-range` and the leases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressPool {
    /// The network's subnet.
    pub subnet: Ipv4Net,
    /// The gateway (the bridge's own address), never leased.
    pub gateway: Ipv4Addr,
    /// Dynamic addresses come from this range (`--ip-range`); the whole subnet when `None`.
    pub range: Option<Ipv4Net>,
    /// Addresses handed out.
    pub leased: BTreeSet<Ipv4Addr>,
    /// The last dynamic address handed out: allocation continues after it, so a released
    /// address is not reused at once (as Docker's IPAM does).
    pub last: Option<Ipv4Addr>,
}

impl AddressPool {
    /// A pool for `subnet` with `gateway` (default: the first host) and optional range.
    ///
    /// # Errors
    /// `AddressOutOfRange` when the gateway is not a host of the subnet or the range is not
    /// inside it.
    pub fn new(subnet: Ipv4Net, gateway: Option<Ipv4Addr>, range: Option<Ipv4Net>) -> Result<Self> {
        let gateway = gateway.unwrap_or_else(|| subnet.first_host());
        if !subnet.is_host(gateway) {
            return Err(Error::AddressOutOfRange {
                addr: gateway,
                subnet: subnet.to_string(),
            });
        }
        if let Some(r) = range {
            if !subnet.contains(r.network()) || !subnet.contains(r.broadcast()) {
                return Err(Error::AddressOutOfRange {
                    addr: r.network(),
                    subnet: subnet.to_string(),
                });
            }
        }
        Ok(Self {
            subnet,
            gateway,
            range,
            leased: BTreeSet::new(),
            last: None,
        })
    }

    /// Leases `wanted` (a `--ip` static address) or the next free dynamic address.
    ///
    /// # Errors
    /// `AddressInUse`, `AddressOutOfRange` for a bad static address; `SubnetFull`.
    pub fn lease(&mut self, wanted: Option<Ipv4Addr>) -> Result<Ipv4Addr> {
        if let Some(ip) = wanted {
            if !self.subnet.is_host(ip) {
                return Err(Error::AddressOutOfRange {
                    addr: ip,
                    subnet: self.subnet.to_string(),
                });
            }
            if ip == self.gateway || self.leased.contains(&ip) {
                return Err(Error::AddressInUse(ip));
            }
            self.leased.insert(ip);
            return Ok(ip);
        }
        let range = self.range.unwrap_or(self.subnet);
        let lo = u32::from(range.network());
        let hi = u32::from(range.broadcast());
        let count = u64::from(hi - lo) + 1;
        let start = self
            .last
            .filter(|l| range.contains(*l))
            .map_or(lo, |l| u32::from(l).wrapping_add(1));
        for i in 0..count {
            let off = (u64::from(start - lo) + i) % count;
            let ip = Ipv4Addr::from(lo + truncate(off));
            if self.subnet.is_host(ip) && ip != self.gateway && !self.leased.contains(&ip) {
                self.leased.insert(ip);
                self.last = Some(ip);
                return Ok(ip);
            }
        }
        Err(Error::SubnetFull(self.subnet.to_string()))
    }

    /// Returns `ip` to the pool; unknown addresses are ignored.
    pub fn release(&mut self, ip: Ipv4Addr) {
        self.leased.remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_rejects_cidrs() {
        assert_eq!(net("172.18.0.0/16").to_string(), "172.18.0.0/16");
        for bad in [
            "172.18.0.1/16",
            "172.18.0.0",
            "300.1.1.0/24",
            "10.0.0.0/31",
            "10.0.0.0/x",
            "10.0.0.0/4",
        ] {
            let e = bad.parse::<Ipv4Net>().unwrap_err();
            assert!(matches!(e, Error::InvalidCidr(_)), "{bad}: {e}");
            assert!(e.to_string().contains(bad));
        }
    }

    #[test]
    fn containment_and_overlap() {
        let a = net("10.1.0.0/16");
        assert!(a.contains(Ipv4Addr::new(10, 1, 255, 255)));
        assert!(!a.contains(Ipv4Addr::new(10, 2, 0, 0)));
        assert!(a.overlaps(&net("10.1.5.0/24")));
        assert!(net("10.1.5.0/24").overlaps(&a));
        assert!(!a.overlaps(&net("10.2.0.0/16")));
        assert_eq!(a.broadcast(), Ipv4Addr::new(10, 1, 255, 255));
        assert!(!a.is_host(a.network()) && !a.is_host(a.broadcast()));
    }

    #[test]
    fn pool_skips_used_subnets_and_host_routes() {
        let pool = SubnetPool::default();
        assert_eq!(pool.allocate(&[]).unwrap(), net("172.17.0.0/16"));
        let used = vec![
            UsedSubnet {
                subnet: net("172.17.0.0/16"),
                owner: "bridge".into(),
            },
            UsedSubnet {
                subnet: net("172.18.3.0/24"),
                owner: "a host route".into(),
            },
        ];
        assert_eq!(pool.allocate(&used).unwrap(), net("172.19.0.0/16"));
        let all: Vec<_> = (16..32)
            .map(|b| UsedSubnet {
                subnet: net(&format!("172.{b}.0.0/16")),
                owner: "x".into(),
            })
            .collect();
        assert!(matches!(pool.allocate(&all), Err(Error::PoolExhausted)));
    }

    #[test]
    fn overlapping_user_subnet_is_a_clear_error() {
        let used = vec![UsedSubnet {
            subnet: net("10.5.0.0/16"),
            owner: "net1".into(),
        }];
        let e = check_free(net("10.5.7.0/24"), &used).unwrap_err();
        assert_eq!(
            e.to_string(),
            "subnet 10.5.7.0/24 overlaps 10.5.0.0/16 used by net1"
        );
        assert_eq!(
            corral_core::error::Classify::kind(&e),
            corral_core::ErrorKind::Conflict
        );
        check_free(net("10.6.0.0/16"), &used).unwrap();
    }

    #[test]
    fn leases_never_repeat_and_static_addresses_are_checked() {
        let mut p = AddressPool::new(net("10.9.0.0/29"), None, None).unwrap();
        assert_eq!(p.gateway, Ipv4Addr::new(10, 9, 0, 1));
        let s = p.lease(Some(Ipv4Addr::new(10, 9, 0, 3))).unwrap();
        assert!(matches!(p.lease(Some(s)), Err(Error::AddressInUse(_))));
        assert!(matches!(
            p.lease(Some(p.gateway)),
            Err(Error::AddressInUse(_))
        ));
        assert!(matches!(
            p.lease(Some(Ipv4Addr::new(10, 9, 0, 7))),
            Err(Error::AddressOutOfRange { .. })
        ));
        let mut got = vec![s];
        for _ in 0..4 {
            got.push(p.lease(None).unwrap());
        }
        got.sort();
        got.dedup();
        assert_eq!(got.len(), 5, "{got:?}");
        assert!(matches!(p.lease(None), Err(Error::SubnetFull(_))));
        // A released address is not reused before the others.
        p.release(Ipv4Addr::new(10, 9, 0, 2));
        p.release(Ipv4Addr::new(10, 9, 0, 5));
        assert_eq!(p.lease(None).unwrap(), Ipv4Addr::new(10, 9, 0, 2));
        // The pool survives a serde round trip (the engine persists it).
        let json = serde_json_roundtrip(&p);
        assert_eq!(json, p);
    }

    #[test]
    fn ip_range_limits_dynamic_addresses() {
        let mut p = AddressPool::new(net("10.9.0.0/24"), None, Some(net("10.9.0.128/30"))).unwrap();
        assert_eq!(p.lease(None).unwrap(), Ipv4Addr::new(10, 9, 0, 128));
        assert!(
            AddressPool::new(net("10.9.0.0/24"), Some(Ipv4Addr::new(10, 8, 0, 1)), None).is_err()
        );
    }

    fn serde_json_roundtrip(p: &AddressPool) -> AddressPool {
        serde_json::from_str(&serde_json::to_string(p).unwrap()).unwrap()
    }
}
