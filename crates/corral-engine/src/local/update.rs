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
    // dockerd refuses to mix `--cpus` with a CFS period or quota across updates.
    if u.nano_cpus > 0 && host.cpu_period > 0 {
        return Err(conflict(
            "Nano CPUs cannot be updated as CPU Period has already been set",
        ));
    }
    if u.nano_cpus > 0 && host.cpu_quota > 0 {
        return Err(conflict(
            "Nano CPUs cannot be updated as CPU Quota has already been set",
        ));
    }
    if u.cpu_period > 0 && host.nano_cpus > 0 {
        return Err(conflict(
            "CPU Period cannot be updated as NanoCPUs has already been set",
        ));
    }
    if u.cpu_quota > 0 && host.nano_cpus > 0 {
        return Err(conflict(
            "CPU Quota cannot be updated as NanoCPUs has already been set",
        ));
    }
    if u.nano_cpus != 0 {
        next.nano_cpus = u.nano_cpus;
    }
    if u.cpu_shares != 0 {
        next.cpu_shares = u.cpu_shares;
    }
    if u.cpu_period != 0 {
        next.cpu_period = u.cpu_period;
    }
    if u.cpu_quota != 0 {
        next.cpu_quota = u.cpu_quota;
    }
    if !u.cpuset_cpus.is_empty() {
        next.cpuset_cpus.clone_from(&u.cpuset_cpus);
    }
    if !u.cpuset_mems.is_empty() {
        next.cpuset_mems.clone_from(&u.cpuset_mems);
    }
    if u.memory_reservation != 0 {
        next.memory_reservation = u.memory_reservation;
    }
    if u.blkio_weight != 0 {
        next.blkio_weight = u.blkio_weight;
    }
    if let Some(p) = u.pids_limit.filter(|p| *p != 0) {
        next.pids_limit = Some(p);
    }
    Ok(next)
}

fn conflict(what: &str) -> Error {
    Error::InvalidInput(format!("Conflicting options: {what}"))
}

/// Whether any limit written to the cgroup differs between `a` and `b`.
fn limits_differ(a: &HostSpec, b: &HostSpec) -> bool {
    a.memory != b.memory
        || a.memory_swap != b.memory_swap
        || a.memory_reservation != b.memory_reservation
        || a.nano_cpus != b.nano_cpus
        || a.cpu_shares != b.cpu_shares
        || a.cpu_period != b.cpu_period
        || a.cpu_quota != b.cpu_quota
        || a.cpuset_cpus != b.cpuset_cpus
        || a.cpuset_mems != b.cpuset_mems
        || a.blkio_weight != b.blkio_weight
        || a.pids_limit != b.pids_limit
}

impl LocalEngine {
    /// Applies `u` to container `name`: validates, writes the running container's cgroup,
    /// then persists the record; a refused value leaves both unchanged. Returns dockerd's
    /// warnings (a block I/O weight the host cannot apply is dropped with one).
    pub(crate) async fn update_limits(
        &self,
        name: &str,
        u: ContainerUpdate,
    ) -> Result<Vec<String>> {
        let mut u = u;
        let mut warnings = Vec::new();
        if u.blkio_weight != 0 && !super::containers::blkio_weight_supported() {
            u.blkio_weight = 0;
            warnings.push(super::containers::BLKIO_WEIGHT_WARNING.to_owned());
        }
        let entry = self.lookup(name)?;
        let before = entry.snapshot();
        let mut host = merge_update(&before.spec.host, &u)?;
        // Create already dropped what the host cannot apply: what is left is the update's.
        warnings.extend(super::limits::discard_unsupported(
            &mut host,
            super::limits::CgroupSupport::host(),
        )?);
        super::containers::check_cpusets(&host)?;
        let features = super::containers::host_features();
        let resources =
            spec::update_resources(&host, features).map_err(corral_runtime::Error::from)?;
        let limits_changed = limits_differ(&host, &before.spec.host);
        if limits_changed && before.state.status.is_alive() {
            let path = self.cgroups_path(&before.id);
            let id = before.id.to_string();
            tokio::task::spawn_blocking(move || {
                corral_runtime::cgroup::update_resources(&path, &id, &resources)
            })
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
            .map_err(corral_runtime::Error::from)?;
        }
        entry.edit(|rec| rec.spec.host = host);
        if let Err(e) = self.save(&entry).await {
            entry.edit(|rec| rec.spec.host = before.spec.host);
            return Err(e);
        }
        self.container_event(&entry.snapshot(), "update", &[]);
        Ok(warnings)
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

    #[test]
    fn cfs_cpuset_reservation_and_blkio_fields_update_and_keep() {
        let host = HostSpec {
            cpu_period: 100_000,
            cpuset_mems: "0".into(),
            ..HostSpec::default()
        };
        let next = merge_update(
            &host,
            &ContainerUpdate {
                cpu_quota: 20_000,
                cpuset_cpus: "0".into(),
                memory_reservation: 8 << 20,
                blkio_weight: 200,
                ..ContainerUpdate::default()
            },
        )
        .unwrap();
        assert_eq!(
            (
                next.cpu_period,
                next.cpu_quota,
                next.cpuset_cpus.as_str(),
                next.cpuset_mems.as_str(),
                next.memory_reservation,
                next.blkio_weight
            ),
            (100_000, 20_000, "0", "0", 8 << 20, 200)
        );
        assert!(limits_differ(&host, &next));
        assert!(!limits_differ(&next, &next.clone()));
    }

    #[test]
    fn nano_cpus_and_cfs_limits_do_not_mix_across_updates() {
        let nano = HostSpec {
            nano_cpus: 500_000_000,
            ..HostSpec::default()
        };
        let e = merge_update(
            &nano,
            &ContainerUpdate {
                cpu_quota: 20_000,
                ..ContainerUpdate::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("CPU Quota cannot be updated as NanoCPUs has already been set"),
            "{e}"
        );
        let cfs = HostSpec {
            cpu_period: 100_000,
            ..HostSpec::default()
        };
        let e = merge_update(
            &cfs,
            &ContainerUpdate {
                nano_cpus: 500_000_000,
                ..ContainerUpdate::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("Nano CPUs cannot be updated as CPU Period has already been set"),
            "{e}"
        );
    }
}
