//! Service `ports`: the short syntax `[HOST_IP:][HOST_PORTS:]CONTAINER_PORTS[/PROTOCOL]`
//! with ranges, and the long syntax, both read into [`PortConfig`]s.

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// One published or exposed container port (the spec's long syntax).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    /// A human name for the port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `host` or `ingress` (ignored on one host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Host address to bind; empty means all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    /// Container port.
    pub target: u16,
    /// Host port or range (`8080`, `8000-8010`); absent for a random port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    /// `tcp`, `udp` or `sctp`.
    #[serde(default = "tcp")]
    pub protocol: String,
    /// Application protocol hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
}

fn tcp() -> String {
    "tcp".to_string()
}

/// Parses one short-syntax entry into one port per container port of its range.
pub(crate) fn parse_short(spec: &str) -> Result<Vec<PortConfig>, String> {
    let bad = |why: &str| format!("invalid port {spec:?}: {why}");
    let (rest, protocol) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.to_string()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
        return Err(bad("protocol must be tcp, udp or sctp"));
    }
    // An IPv6 host address is written in brackets.
    let (host_ip, rest) = if let Some(r) = rest.strip_prefix('[') {
        let (ip, r) = r.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        let r = r
            .strip_prefix(':')
            .ok_or_else(|| bad("expected ':' after ']'"))?;
        (Some(ip.to_string()), r)
    } else {
        (None, rest)
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (host_ip, published, target) = match (host_ip, parts.as_slice()) {
        (ip, [t]) => (ip, None, *t),
        (None, [p, t]) => (None, Some(*p), *t),
        (None, [ip, p, t]) => (Some(ip.to_string()), Some(*p), *t),
        (Some(ip), [p, t]) => (Some(ip), Some(*p), *t),
        _ => return Err(bad("too many ':'")),
    };
    if let Some(ip) = &host_ip {
        if ip.parse::<std::net::IpAddr>().is_err() {
            return Err(bad(&format!("{ip:?} is not an IP address")));
        }
    }
    let published = published.filter(|p| !p.is_empty());
    let (t0, t1) = range(target).map_err(|e| bad(&e))?;
    if t0 == 0 {
        return Err(bad("container port must be 1-65535"));
    }
    let host = published.map(range).transpose().map_err(|e| bad(&e))?;
    let count = t1 - t0 + 1;
    let mut out = Vec::new();
    for i in 0..count {
        let published = match host {
            None => None,
            Some((h0, h1)) if h1 - h0 + 1 == count => Some((h0 + i).to_string()),
            Some((h0, h1)) if count == 1 => Some(format!("{h0}-{h1}")),
            Some(_) => return Err(bad("host and container port ranges differ in length")),
        };
        out.push(PortConfig {
            name: None,
            mode: None,
            host_ip: host_ip.clone(),
            target: t0 + i,
            published,
            protocol: protocol.clone(),
            app_protocol: None,
        });
    }
    Ok(out)
}

fn range(s: &str) -> Result<(u16, u16), String> {
    let port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("{p:?} is not a port number (0-65535)"))
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (port(a)?, port(b)?);
            if b < a {
                return Err(format!("range {s:?} ends before it starts"));
            }
            Ok((a, b))
        }
        None => {
            let p = port(s)?;
            Ok((p, p))
        }
    }
}

/// Deserializes a `ports` sequence of short and long entries, expanding ranges.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PortConfig>, D::Error> {
    let groups: Vec<PortEntry> = Vec::deserialize(d)?;
    Ok(groups.into_iter().flat_map(|g| g.0).collect())
}

struct PortEntry(Vec<PortConfig>);

impl<'de> Deserialize<'de> for PortEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(PortVisitor)
    }
}

struct PortVisitor;

impl<'de> Visitor<'de> for PortVisitor {
    type Value = PortEntry;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a port (\"8080:80\") or a mapping with target")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortEntry, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortEntry, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<PortEntry, E> {
        parse_short(v).map(PortEntry).map_err(E::custom)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<PortEntry, A::Error> {
        let mut p = PortConfig::deserialize(de::value::MapAccessDeserializer::new(map))?;
        if p.target == 0 {
            return Err(de::Error::custom("target port must be 1-65535"));
        }
        if !matches!(p.protocol.as_str(), "tcp" | "udp" | "sctp") {
            return Err(de::Error::custom("protocol must be tcp, udp or sctp"));
        }
        if let Some(pub_) = &p.published {
            if pub_.is_empty() {
                p.published = None;
            } else {
                range(pub_).map_err(de::Error::custom)?;
            }
        }
        Ok(PortEntry(vec![p]))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<PortEntry, A::Error> {
        Err(de::Error::custom("a port entry cannot be a sequence"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> PortConfig {
        let mut v = parse_short(s).unwrap();
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    #[test]
    fn short_forms() {
        let p = one("3000");
        assert_eq!((p.target, p.published.as_deref()), (3000, None));
        let p = one("8000:80");
        assert_eq!((p.target, p.published.as_deref()), (80, Some("8000")));
        let p = one("127.0.0.1:8001:8001/udp");
        assert_eq!(p.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(p.protocol, "udp");
        let p = one("127.0.0.1::5000");
        assert_eq!((p.target, p.published), (5000, None));
        let p = one("[::1]:6001:6001");
        assert_eq!(p.host_ip.as_deref(), Some("::1"));
        let p = one("8000-8010:80");
        assert_eq!(p.published.as_deref(), Some("8000-8010"));
    }

    #[test]
    fn ranges_expand() {
        let v = parse_short("9090-9091:8080-8081").unwrap();
        let got: Vec<_> = v
            .iter()
            .map(|p| (p.target, p.published.clone().unwrap()))
            .collect();
        assert_eq!(got, vec![(8080, "9090".into()), (8081, "9091".into())]);
        assert_eq!(parse_short("3000-3002").unwrap().len(), 3);
    }

    #[test]
    fn rejects_bad_specs() {
        for s in [
            "70000",
            "abc",
            "80/xyz",
            "1-2:3-5",
            "a:b:c:d",
            "0",
            "10-5",
            "300.1.1.1:80:80",
        ] {
            assert!(parse_short(s).is_err(), "{s}");
        }
    }
}
