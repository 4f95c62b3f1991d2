//! `docker update`: new resource limits and restart policy for a container, written to its
//! cgroup at once when it runs and kept in its record for later starts.

use corral_core::container::HostSpec;
use corral_runtime::spec;

use super::LocalEngine;
use crate::api::ContainerUpdate;
use crate::error::{Error, Result};

/// Merges `u` into `host` as dockerd's `docker update` does: zero (or absent) fields keep
/// their value; the result is validated as at create. Pure, so it is tested without root.
pub(crate) fn merge_update(host: &HostSpec, u: &ContainerUpdate) -> Result<HostSpec> {
    let mut next = host.clone();
    if let Some(p) = &u.restart_policy {
        if host.auto_remove && !matches!(p.name.as_str(), "" | "no") {
            return Err(Error::InvalidInput(
                "Restart policy cannot be updated because AutoRemove is enabled for the container"
                    .into(),
            ));
        }
        match p.name.as_str() {
            "" | "no" | "always" | "unless-stopped" if p.maximum_retry_count != 0 => {
                return Err(Error::InvalidInput(format!(
                    "maximum retry count cannot be used with restart policy '{}'",
                    p.name
                )));
            }
            "" | "no" | "always" | "unless-stopped" | "on-failure" => {}
            other => {
                return Err(Error::InvalidInput(format!(
                    "invalid restart policy '{other}'"
                )))
            }
        }
        if p.maximum_retry_count < 0 {
            return Err(Error::InvalidInput(
                "maximum retry count cannot be negative".into(),
            ));
        }
        next.restart_policy = p.clone();
    }
    if u.memory != 0 {
        // dockerd: a new memory limit above an explicit swap limit needs a new swap limit.
        if u.memory_swap == 0 && host.memory_swap > 0 && u.memory > host.memory_swap {
            return Err(Error::InvalidInput(
                "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time".into(),
            ));
        }
        next.memory = u.memory;
    }
    if u.memory_swap != 0 {
        next.memory_swap = u.memory_swap;
    }
    if u.nano_cpus != 0 {
        next.nano_cpus = u.nano_cpus;
    }
    if u.cpu_shares != 0 {
        next.cpu_shares = u.cpu_shares;
    }
    if let Some(p) = u.pids_limit.filter(|p| *p != 0) {
        next.pids_limit = Some(p);
    }
    Ok(next)
}

impl LocalEngine {
    /// Applies `u` to container `name`: validates, writes the running container's cgroup,
    /// then persists the record; a refused value leaves both unchanged. Returns dockerd's
    /// warnings (none so far).
    pub(crate) async fn update_limits(
        &self,
        name: &str,
        u: ContainerUpdate,
    ) -> Result<Vec<String>> {
        let entry = self.lookup(name)?;
        let before = entry.snapshot();
        let host = merge_update(&before.spec.host, &u)?;
        let features = super::containers::host_features();
        let resources =
            spec::update_resources(&host, features).map_err(corral_runtime::Error::from)?;
        let limits_changed = host.memory != before.spec.host.memory
            || host.memory_swap != before.spec.host.memory_swap
            || host.nano_cpus != before.spec.host.nano_cpus
            || host.cpu_shares != before.spec.host.cpu_shares
            || host.pids_limit != before.spec.host.pids_limit;
        if limits_changed && before.state.status.is_alive() {
            let path = format!("/corral-{}/{}", self.inner.cfg.instance, before.id);
            let id = before.id.to_string();
            tokio::task::spawn_blocking(move || {
                corral_runtime::cgroup::update_resources(&path, &id, &resources)
            })
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
            .map_err(corral_runtime::Error::from)?;
        }
        entry.record.lock().spec.host = host;
        if let Err(e) = self.save(&entry).await {
            *entry.record.lock() = before;
            return Err(e);
        }
        self.container_event(&entry.snapshot(), "update", &[]);
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_core::RestartPolicy;

    fn policy(name: &str, max: i64) -> Option<RestartPolicy> {
        Some(RestartPolicy {
            name: name.into(),
            maximum_retry_count: max,
        })
    }

    #[test]
    fn zero_fields_keep_their_values() {
        let host = HostSpec {
            memory: 64 << 20,
            cpu_shares: 512,
            ..HostSpec::default()
        };
        let next = merge_update(
            &host,
            &ContainerUpdate {
                nano_cpus: 500_000_000,
                ..ContainerUpdate::default()
            },
        )
        .unwrap();
        assert_eq!(
            (next.memory, next.cpu_shares, next.nano_cpus),
            (64 << 20, 512, 500_000_000)
        );
    }

    #[test]
    fn restart_policies_are_validated_like_dockerd() {
        let host = HostSpec::default();
        let ok = |name, max| {
            merge_update(
                &host,
                &ContainerUpdate {
                    restart_policy: policy(name, max),
                    ..ContainerUpdate::default()
                },
            )
        };
        assert_eq!(
            ok("on-failure", 3).unwrap().restart_policy,
            policy("on-failure", 3).unwrap()
        );
        assert!(ok("always", 0).is_ok());
        let e = ok("always", 2).unwrap_err().to_string();
        assert!(
            e.contains("maximum retry count cannot be used with restart policy 'always'"),
            "{e}"
        );
        let e = ok("sometimes", 0).unwrap_err().to_string();
        assert!(e.contains("invalid restart policy 'sometimes'"), "{e}");
        let auto = HostSpec {
            auto_remove: true,
            ..HostSpec::default()
        };
        let e = merge_update(
            &auto,
            &ContainerUpdate {
                restart_policy: policy("always", 0),
                ..ContainerUpdate::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("AutoRemove is enabled"), "{e}");
    }

    #[test]
    fn memory_above_an_explicit_swap_limit_needs_a_new_swap_limit() {
        let host = HostSpec {
            memory: 32 << 20,
            memory_swap: 64 << 20,
            ..HostSpec::default()
        };
        let raise = |memory, memory_swap| {
            merge_update(
                &host,
                &ContainerUpdate {
                    memory,
                    memory_swap,
                    ..ContainerUpdate::default()
                },
            )
        };
        let e = raise(128 << 20, 0).unwrap_err().to_string();
        assert!(e.contains("update the memoryswap at the same time"), "{e}");
        let next = raise(128 << 20, 256 << 20).unwrap();
        assert_eq!((next.memory, next.memory_swap), (128 << 20, 256 << 20));
    }
}
