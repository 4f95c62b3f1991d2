//! Restart policies (`no`, `always`, `unless-stopped`, `on-failure[:max]`) with dockerd's
//! backoff: 100 ms doubling up to one minute, reset after a run of ten seconds or more.

use std::sync::Arc;
use std::time::Duration;

use corral_core::{ContainerRecord, ContainerStatus, RestartPolicy};

use super::{Entry, LocalEngine};

/// The first delay before a policy restart.
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// The longest delay between policy restarts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A run at least this long resets the backoff.
const STABLE_RUN: Duration = Duration::from_secs(10);

/// Whether the policy restarts a container that just exited with `code`.
pub(crate) fn should_restart(
    policy: &RestartPolicy,
    code: i64,
    stopped_by_user: bool,
    restarts: i64,
) -> bool {
    if stopped_by_user {
        return false;
    }
    match policy.name.as_str() {
        "always" | "unless-stopped" => true,
        "on-failure" => {
            code != 0 && (policy.maximum_retry_count == 0 || restarts < policy.maximum_retry_count)
        }
        _ => false,
    }
}

/// Whether a daemon start brings the container back (dockerd's restore: `always`, and
/// `unless-stopped` unless a user stopped it, and `on-failure` after a failure).
pub(crate) fn restart_on_daemon_start(rec: &ContainerRecord) -> bool {
    rec.state.started_at.is_some()
        && should_restart(
            &rec.spec.host.restart_policy,
            rec.state.exit_code,
            rec.state.stopped_by_user,
            rec.state.restart_count,
        )
}

/// The next delay given the previous one and how long the last run lasted.
pub(crate) fn next_backoff(previous: Duration, ran_for: Duration) -> Duration {
    if ran_for >= STABLE_RUN || previous.is_zero() {
        INITIAL_BACKOFF
    } else {
        (previous * 2).min(MAX_BACKOFF)
    }
}

impl LocalEngine {
    /// Applies the restart policy after an exit: marks the container `restarting` and
    /// starts it again after the backoff, unless a stop, start or removal comes first.
    pub(crate) async fn maybe_restart(&self, entry: &Arc<Entry>) {
        let rec = entry.snapshot();
        if rec.spec.host.auto_remove
            || !should_restart(
                &rec.spec.host.restart_policy,
                rec.state.exit_code,
                rec.state.stopped_by_user,
                rec.state.restart_count,
            )
        {
            *entry.backoff.lock() = Duration::ZERO;
            return;
        }
        let ran_for = match (rec.state.started_at, rec.state.finished_at) {
            (Some(s), Some(f)) => (f - s).to_std().unwrap_or_default(),
            _ => Duration::ZERO,
        };
        let delay = {
            let mut b = entry.backoff.lock();
            *b = next_backoff(*b, ran_for);
            *b
        };
        if let Err(e) = self
            .update(entry, |r| r.state.status = ContainerStatus::Restarting)
            .await
        {
            tracing::warn!(container = %rec.id, error = %e, "marking restarting");
            return;
        }
        let this = self.clone();
        let e2 = entry.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            this.restart_by_policy(&e2).await;
        });
        if let Some(old) = entry.pending_restart.lock().replace(task.abort_handle()) {
            old.abort();
        }
    }

    async fn restart_by_policy(&self, entry: &Arc<Entry>) {
        entry.pending_restart.lock().take();
        let rec = entry.snapshot();
        if rec.state.status != ContainerStatus::Restarting {
            return;
        }
        // The status stays `restarting` until the new run is up, so nobody observes an
        // `exited` state between two runs.
        let res = self.update(entry, |r| r.state.restart_count += 1).await;
        if let Err(e) = res {
            tracing::warn!(container = %rec.id, error = %e, "restart bookkeeping");
            return;
        }
        if let Err(e) = self.start_entry_as(entry, true).await {
            tracing::warn!(container = %rec.id, error = %e, "policy restart failed");
        }
    }

    /// Cancels a scheduled policy restart; returns true if one was pending.
    pub(crate) async fn cancel_restart(&self, entry: &Arc<Entry>) -> bool {
        let pending = entry.pending_restart.lock().take();
        let Some(handle) = pending else {
            return false;
        };
        handle.abort();
        let res = self
            .update(entry, |r| {
                if r.state.status == ContainerStatus::Restarting {
                    r.state.status = ContainerStatus::Exited;
                }
            })
            .await;
        if let Err(e) = res {
            tracing::warn!(error = %e, "cancelling restart");
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(name: &str, max: i64) -> RestartPolicy {
        RestartPolicy {
            name: name.into(),
            maximum_retry_count: max,
        }
    }

    #[test]
    fn policies_decide_like_dockerd() {
        assert!(!should_restart(&policy("no", 0), 1, false, 0));
        assert!(!should_restart(&policy("", 0), 1, false, 0));
        assert!(should_restart(&policy("always", 0), 0, false, 7));
        assert!(!should_restart(&policy("always", 0), 0, true, 0));
        assert!(should_restart(&policy("unless-stopped", 0), 0, false, 0));
        assert!(!should_restart(&policy("on-failure", 0), 0, false, 0));
        assert!(should_restart(&policy("on-failure", 0), 2, false, 100));
        assert!(should_restart(&policy("on-failure", 3), 2, false, 2));
        assert!(!should_restart(&policy("on-failure", 3), 2, false, 3));
    }

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let short = Duration::from_secs(1);
        let mut b = Duration::ZERO;
        let mut seen = Vec::new();
        for _ in 0..12 {
            b = next_backoff(b, short);
            seen.push(b);
        }
        assert_eq!(seen[0], Duration::from_millis(100));
        assert_eq!(seen[1], Duration::from_millis(200));
        assert_eq!(seen[3], Duration::from_millis(800));
        assert_eq!(*seen.last().unwrap(), MAX_BACKOFF);
        assert_eq!(
            next_backoff(MAX_BACKOFF, Duration::from_secs(10)),
            INITIAL_BACKOFF
        );
    }
}
