//! The body of `GET /containers/json` (`docker ps`), rendered straight from the records.
//!
//! `docker ps -a` with hundreds of containers is a hot path: building a `serde_json::Value`
//! per container, reading the item filters back out of it, serializing it and dropping it
//! cost about half of the request (measured with callgrind at 500 containers). A [`Row`]
//! borrows from its record, answers the item-level filters (`volume`, `network`, `publish`,
//! `expose`) from typed fields, and serializes its fields in the byte order of the `Value`
//! object it replaces (a `serde_json::Map` is a `BTreeMap`: keys sorted), so the body is
//! unchanged.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use corral_core::{ContainerRecord, MountType};
use corral_engine::ContainerNetwork;
use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};

use crate::filters::Filters;

/// One listed container: the record, its networks and its mounts, ready to filter and
/// serialize.
pub(crate) struct Row<'a> {
    rec: &'a ContainerRecord,
    nets: Vec<ContainerNetwork>,
    mounts: Vec<MountItem<'a>>,
    now: DateTime<Utc>,
    size: Option<corral_engine::ContainerSize>,
}

impl<'a> Row<'a> {
    /// `nets` is what the engine reports for the container; `mountpoint` gives a named
    /// volume's host path. `size` adds `SizeRw`/`SizeRootFs` (0 until [`Row::set_size`]).
    pub(crate) fn new(
        rec: &'a ContainerRecord,
        nets: Vec<ContainerNetwork>,
        mountpoint: &dyn Fn(&str) -> String,
        now: DateTime<Utc>,
        size: bool,
    ) -> Self {
        Self {
            rec,
            nets,
            mounts: mount_items(rec, mountpoint),
            now,
            size: size.then(corral_engine::ContainerSize::default),
        }
    }

    /// The disk use `SizeRw`/`SizeRootFs` show (with `size`).
    pub(crate) fn set_size(&mut self, size: corral_engine::ContainerSize) {
        self.size = Some(size);
    }

    /// `HostConfig.NetworkMode` as the list shows it.
    fn network_mode(&self) -> &'a str {
        self.rec
            .spec
            .host
            .network_mode
            .as_deref()
            .unwrap_or("default")
    }

    /// `NetworkSettings.Networks`: by name, the last attachment of a name winning, as
    /// inserting into a JSON object does.
    fn networks(&self) -> BTreeMap<&str, &ContainerNetwork> {
        self.nets.iter().map(|n| (n.network.as_str(), n)).collect()
    }

    fn ports(&self) -> impl Iterator<Item = &corral_engine::PublishedPort> {
        self.nets.iter().flat_map(|n| n.ports.iter())
    }

    /// The list filters that read an item rather than the record alone: `volume` (volume
    /// name or mount destination), `network` (network name or id, or the network mode),
    /// `publish` and `expose` (`PORT[/PROTO]`, a published host port or a container port).
    pub(crate) fn matches(&self, f: &Filters) -> bool {
        let port_matches = |want: &str, public: bool| {
            let (port, proto) = want.split_once('/').unwrap_or((want, "tcp"));
            self.ports().any(|p| {
                let n = if public {
                    p.host_port
                } else {
                    p.container_port
                };
                n.to_string() == port && p.proto == proto
            })
        };
        f.any("volume", |v| {
            self.mounts
                .iter()
                .any(|m| m.name == Some(v) || m.destination == v)
        }) && f.any("network", |v| {
            self.network_mode() == v
                || self
                    .networks()
                    .iter()
                    .any(|(name, n)| *name == v || n.network_id == v)
        }) && f.any("publish", |v| port_matches(v, true))
            && f.any("expose", |v| port_matches(v, false))
    }
}

/// Renders `rows` (already filtered and ordered) as dockerd's list body.
///
/// # Errors
/// Only if serialization fails, which plain strings and numbers never do.
pub(crate) fn render(rows: &[Row<'_>]) -> serde_json::Result<Vec<u8>> {
    // About 370 bytes per container with no labels, mounts or network.
    let mut body = Vec::with_capacity(64 + rows.len() * 400);
    serde_json::to_writer(&mut body, rows)?;
    Ok(body)
}

impl Serialize for Row<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.rec;
        let mut item = s.serialize_struct("Container", 15)?;
        item.serialize_field("Command", &Collected(crate::containers::CommandText(c)))?;
        item.serialize_field("Created", &c.created.timestamp())?;
        item.serialize_field(
            "HostConfig",
            &HostConfigItem {
                network_mode: self.network_mode(),
            },
        )?;
        item.serialize_field("Id", c.id.as_str())?;
        item.serialize_field("Image", &c.spec.image)?;
        item.serialize_field("ImageID", &c.image_id)?;
        item.serialize_field("Labels", &c.spec.labels)?;
        item.serialize_field("Mounts", &self.mounts)?;
        item.serialize_field("Names", &[Collected(SlashName(c.name.as_str()))])?;
        item.serialize_field("NetworkSettings", &NetworkSettings(self))?;
        item.serialize_field("Ports", &Ports(self))?;
        if let Some(size) = self.size {
            item.serialize_field("SizeRootFs", &size.root_fs)?;
            item.serialize_field("SizeRw", &size.rw)?;
        }
        item.serialize_field("State", c.state.status.as_str())?;
        item.serialize_field("Status", &crate::containers::status_text(c, self.now))?;
        item.end()
    }
}

/// Serializes a `Display` value as a JSON string, escaped as it is written (no
/// intermediate `String`).
struct Collected<T>(T);

impl<T: std::fmt::Display> Serialize for Collected<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// A container name as `Names` lists it: `/NAME`.
struct SlashName<'a>(&'a str);

impl std::fmt::Display for SlashName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("/")?;
        f.write_str(self.0)
    }
}

#[derive(Serialize)]
struct HostConfigItem<'a> {
    #[serde(rename = "NetworkMode")]
    network_mode: &'a str,
}

/// `{"Networks": {NAME: {...}}}`.
struct NetworkSettings<'r, 'a>(&'r Row<'a>);

impl Serialize for NetworkSettings<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Networks<'n>(BTreeMap<&'n str, &'n ContainerNetwork>);
        impl Serialize for Networks<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(self.0.len()))?;
                for (name, n) in &self.0 {
                    m.serialize_entry(name, &NetworkItem(n))?;
                }
                m.end()
            }
        }
        let mut st = s.serialize_struct("NetworkSettings", 1)?;
        st.serialize_field("Networks", &Networks(self.0.networks()))?;
        st.end()
    }
}

/// One network of `NetworkSettings.Networks`, keys sorted: every field of dockerd 20.10's
/// `EndpointSettings` (the IPv6 ones empty, `Links` and `DriverOpts` null; `IPAMConfig`
/// holds an address asked for with `--ip`).
struct NetworkItem<'n>(&'n ContainerNetwork);

impl Serialize for NetworkItem<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Ipam<'i> {
            #[serde(rename = "IPv4Address")]
            ipv4: &'i str,
        }
        let n = self.0;
        let mut st = s.serialize_struct("Network", 13)?;
        st.serialize_field("Aliases", &n.aliases)?;
        st.serialize_field("DriverOpts", &())?;
        st.serialize_field("EndpointID", &n.endpoint_id)?;
        st.serialize_field("Gateway", &n.gateway)?;
        st.serialize_field("GlobalIPv6Address", "")?;
        st.serialize_field("GlobalIPv6PrefixLen", &0)?;
        st.serialize_field(
            "IPAMConfig",
            &n.static_ip.as_deref().map(|ip| Ipam { ipv4: ip }),
        )?;
        st.serialize_field("IPAddress", &n.ip)?;
        st.serialize_field("IPPrefixLen", &n.prefix_len)?;
        st.serialize_field("IPv6Gateway", "")?;
        st.serialize_field("Links", &())?;
        st.serialize_field("MacAddress", &n.mac)?;
        st.serialize_field("NetworkID", &n.network_id)?;
        st.end()
    }
}

/// `Ports`: the published ports of every network, in network order.
struct Ports<'r, 'a>(&'r Row<'a>);

impl Serialize for Ports<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct PortItem<'p> {
            #[serde(rename = "IP")]
            ip: &'p str,
            #[serde(rename = "PrivatePort")]
            private_port: u16,
            #[serde(rename = "PublicPort")]
            public_port: u16,
            #[serde(rename = "Type")]
            proto: &'p str,
        }
        s.collect_seq(self.0.ports().map(|p| PortItem {
            ip: &p.host_ip,
            private_port: p.container_port,
            public_port: p.host_port,
            proto: &p.proto,
        }))
    }
}

/// One entry of `Mounts`, keys sorted; `Driver` and `Name` only for volumes.
#[derive(Debug, PartialEq, Serialize)]
pub(crate) struct MountItem<'a> {
    #[serde(rename = "Destination")]
    destination: &'a str,
    #[serde(rename = "Driver", skip_serializing_if = "Option::is_none")]
    driver: Option<&'static str>,
    #[serde(rename = "Mode")]
    mode: &'a str,
    #[serde(rename = "Name", skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(rename = "Propagation")]
    propagation: &'static str,
    #[serde(rename = "RW")]
    rw: bool,
    #[serde(rename = "Source")]
    source: Cow<'a, str>,
    #[serde(rename = "Type")]
    kind: &'static str,
}

/// The container's mounts as `docker ps` and `docker inspect` show them: `-v` binds of
/// host paths, `--mount` binds and tmpfs, then volumes (`mountpoint` gives a named
/// volume's host path).
pub(crate) fn mount_items<'a>(
    c: &'a ContainerRecord,
    mountpoint: &dyn Fn(&str) -> String,
) -> Vec<MountItem<'a>> {
    let mut out = Vec::new();
    for b in &c.spec.host.binds {
        let mut parts = b.split(':');
        let (Some(source), Some(destination)) = (parts.next(), parts.next()) else {
            continue;
        };
        if !source.starts_with('/') {
            continue;
        }
        let mode = parts.next();
        out.push(MountItem {
            destination,
            driver: None,
            mode: mode.unwrap_or(""),
            name: None,
            propagation: "rprivate",
            rw: !mode.is_some_and(|o| o.split(',').any(|x| x == "ro")),
            source: Cow::Borrowed(source),
            kind: "bind",
        });
    }
    for m in c
        .spec
        .host
        .mounts
        .iter()
        .filter(|m| m.kind != MountType::Volume)
    {
        out.push(MountItem {
            destination: &m.target,
            driver: None,
            mode: "",
            name: None,
            propagation: "",
            rw: !m.read_only,
            source: Cow::Borrowed(&m.source),
            kind: match m.kind {
                MountType::Bind => "bind",
                MountType::Volume => "volume",
                MountType::Tmpfs => "tmpfs",
            },
        });
    }
    for v in &c.volume_mounts {
        out.push(MountItem {
            destination: &v.destination,
            driver: Some("local"),
            mode: &v.mode,
            name: Some(&v.name),
            propagation: "",
            rw: !v.read_only,
            source: Cow::Owned(mountpoint(&v.name)),
            kind: "volume",
        });
    }
    out
}

#[cfg(test)]
mod tests;
