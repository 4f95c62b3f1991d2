//! User-defined networks in the state: `network create` and `rm`.

use std::net::Ipv4Addr;

use chrono::Utc;
use corral_network::{bridge_name, AddressPool, NetworkDriver, SubnetPool};

use super::{fnv64, NetRecord, Networking, DEFAULT_NETWORK};
use crate::error::{Error, Result};

// === impl Networking ===

impl Networking {
    /// Creates a user-defined network (state only: its bridge appears with the first
    /// container). Blocking.
    pub(crate) fn create_network(&self, req: &crate::api::NetworkCreate) -> Result<String> {
        if req.name.is_empty()
            || ["host", "none", "default", DEFAULT_NETWORK].contains(&req.name.as_str())
        {
            return Err(Error::Conflict(format!(
                "network name {:?} is reserved or empty",
                req.name
            )));
        }
        let mut st = self.state.lock();
        if st.networks.contains_key(&req.name) {
            return Err(Error::Conflict(format!(
                "network with name {} already exists",
                req.name
            )));
        }
        let used = self.used_subnets(&st)?;
        let subnet = match &req.subnet {
            Some(s) => {
                let net: corral_network::Ipv4Net = s.parse()?;
                corral_network::ipam::check_free(net, &used)?;
                net
            }
            None => SubnetPool::default().allocate(&used)?,
        };
        let gateway = match &req.gateway {
            Some(g) => Some(
                g.parse::<Ipv4Addr>()
                    .map_err(|_| Error::InvalidInput(format!("invalid gateway {g:?}")))?,
            ),
            None => None,
        };
        let range = match &req.ip_range {
            Some(r) => Some(r.parse::<corral_network::Ipv4Net>()?),
            None => None,
        };
        let id: String = (0..4)
            .map(|i| {
                format!(
                    "{:016x}",
                    fnv64(&format!(
                        "{}-{}-{}-{i}",
                        self.instance,
                        req.name,
                        Utc::now().timestamp_nanos_opt().unwrap_or_default()
                    ))
                )
            })
            .collect();
        let rec = NetRecord {
            bridge: bridge_name(&self.instance, &id),
            id: id.clone(),
            name: req.name.clone(),
            internal: req.internal,
            created: Utc::now().to_rfc3339(),
            pool: AddressPool::new(subnet, gateway, range)?,
            labels: req.labels.clone(),
        };
        st.networks.insert(req.name.clone(), rec.clone());
        if let Err(e) = self.persist(&st) {
            st.networks.remove(&req.name);
            return Err(e);
        }
        self.event("create", &rec, "");
        Ok(id)
    }

    /// Removes a user-defined network; refused while a container is connected. Blocking.
    pub(crate) fn remove_network(&self, key: &str) -> Result<()> {
        if ["host", "none", DEFAULT_NETWORK].contains(&key) {
            return Err(Error::Forbidden(format!(
                "{key} is a pre-defined network and cannot be removed"
            )));
        }
        let mut st = self.state.lock();
        let net = self
            .find(&st, key)
            .ok_or_else(|| Error::NoSuchNetwork(key.to_owned()))?;
        if net.name == DEFAULT_NETWORK {
            return Err(Error::Forbidden(format!(
                "{DEFAULT_NETWORK} is a pre-defined network and cannot be removed"
            )));
        }
        if st
            .endpoints
            .values()
            .flatten()
            .any(|e| e.network == net.name)
        {
            return Err(Error::Forbidden(format!(
                "error while removing network: network {} id {} has active endpoints",
                net.name, net.id
            )));
        }
        self.driver.remove(&Self::spec(&net))?;
        st.networks.remove(&net.name);
        self.sync(&st)?;
        self.persist(&st)?;
        self.event("destroy", &net, "");
        Ok(())
    }
}
