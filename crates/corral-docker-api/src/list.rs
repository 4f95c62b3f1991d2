//! The body of `GET /containers/json` (`docker ps`), rendered straight from the records.
//!
//! `docker ps -a` with hundreds of containers is a hot path: building a `serde_json::Value`
//! per container, serializing it and dropping it cost about half of the request (measured
//! with callgrind at 500 containers). The items here borrow from the records and serialize
//! once; their fields are declared in the byte order of the `Value` object they replace, so
//! the body is unchanged.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use corral_core::ContainerRecord;
use corral_engine::ContainerNetwork;
use serde::Serialize;
use serde_json::Value;

/// Lookups a list item needs beyond the record.
pub struct ListLookups<'a> {
    /// A named volume's host path.
    pub volume_mountpoint: &'a dyn Fn(&str) -> String,
    /// A container's network attachment, by full id.
    pub network: &'a dyn Fn(&str) -> Option<ContainerNetwork>,
}

/// Renders `records` (already filtered and ordered) as dockerd's list body. `size` adds
/// `SizeRw`/`SizeRootFs` (reported as 0).
///
/// # Errors
/// Only if serialization fails, which plain strings and numbers never do.
pub fn render_container_list(
    records: &[&ContainerRecord],
    now: DateTime<Utc>,
    size: bool,
    lookups: &ListLookups<'_>,
) -> serde_json::Result<Vec<u8>> {
    let items: Vec<Item<'_>> = records
        .iter()
        .map(|c| Item::new(c, now, size, lookups))
        .collect();
    // About 370 bytes per container with no labels, mounts or network.
    let mut body = Vec::with_capacity(64 + items.len() * 400);
    serde_json::to_writer(&mut body, &items)?;
    Ok(body)
}

/// One container, keys in the order a `serde_json::Map` (a `BTreeMap`) prints them.
#[derive(Serialize)]
struct Item<'a> {
    #[serde(rename = "Command")]
    command: String,
    #[serde(rename = "Created")]
    created: i64,
    #[serde(rename = "HostConfig")]
    host_config: HostConfigItem<'a>,
    #[serde(rename = "Id")]
    id: &'a str,
    #[serde(rename = "Image")]
    image: &'a str,
    #[serde(rename = "ImageID")]
    image_id: &'a str,
    #[serde(rename = "Labels")]
    labels: &'a BTreeMap<String, String>,
    #[serde(rename = "Mounts")]
    mounts: Value,
    #[serde(rename = "Names")]
    names: [String; 1],
    #[serde(rename = "NetworkSettings")]
    network_settings: NetworkSettings,
    #[serde(rename = "Ports")]
    ports: Value,
    #[serde(rename = "SizeRootFs", skip_serializing_if = "Option::is_none")]
    size_root_fs: Option<i64>,
    #[serde(rename = "SizeRw", skip_serializing_if = "Option::is_none")]
    size_rw: Option<i64>,
    #[serde(rename = "State")]
    state: &'static str,
    #[serde(rename = "Status")]
    status: String,
}

#[derive(Serialize)]
struct HostConfigItem<'a> {
    #[serde(rename = "NetworkMode")]
    network_mode: &'a str,
}

/// `{"Networks": {}}` without allocating, or what `networks::fill_list_item` wrote.
#[derive(Serialize)]
#[serde(untagged)]
enum NetworkSettings {
    None {
        #[serde(rename = "Networks")]
        networks: BTreeMap<String, Value>,
    },
    Some(Value),
}

// === impl Item ===

impl<'a> Item<'a> {
    fn new(
        c: &'a ContainerRecord,
        now: DateTime<Utc>,
        size: bool,
        lookups: &ListLookups<'_>,
    ) -> Self {
        let mut ports = Value::Array(Vec::new());
        let mut network_settings = NetworkSettings::None {
            networks: BTreeMap::new(),
        };
        if let Some(n) = (lookups.network)(c.id.as_str()) {
            let mut filled = Value::Object(serde_json::Map::new());
            crate::networks::fill_list_item(&mut filled, &n);
            ports = filled["Ports"].take();
            network_settings = NetworkSettings::Some(filled["NetworkSettings"].take());
        }
        Item {
            command: crate::containers::command_text(c),
            created: c.created.timestamp(),
            host_config: HostConfigItem {
                network_mode: c.spec.host.network_mode.as_deref().unwrap_or("default"),
            },
            id: c.id.as_str(),
            image: &c.spec.image,
            image_id: &c.image_id,
            labels: &c.spec.labels,
            mounts: crate::containers::mounts_json(c, lookups.volume_mountpoint),
            names: [format!("/{}", c.name)],
            network_settings,
            ports,
            size_root_fs: size.then_some(0),
            size_rw: size.then_some(0),
            state: c.state.status.as_str(),
            status: crate::containers::status_text(c, now),
        }
    }
}
