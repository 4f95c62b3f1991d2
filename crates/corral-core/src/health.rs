//! Health checks: the configuration (Docker's `Healthcheck`), the observed state
//! (`State.Health`) and the state machine that turns probe results into a status, following
//! dockerd's `daemon/health.go`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Probe interval when none is set (Docker's `defaultProbeInterval`).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// Probe timeout when none is set (Docker's `defaultProbeTimeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Consecutive failures before `unhealthy` when none is set (Docker's `defaultProbeRetries`).
pub const DEFAULT_RETRIES: i64 = 3;
/// Results kept in `State.Health.Log` (Docker's `maxLogEntries`).
pub const MAX_LOG_ENTRIES: usize = 5;
/// Bytes of probe output kept per result (Docker's `maxOutputLen`).
pub const MAX_OUTPUT_LEN: usize = 4096;
/// The shortest non-zero duration Docker accepts (`containertypes.MinimumDuration`).
const MINIMUM_DURATION_NS: i64 = 1_000_000;

/// A container's or image's `Healthcheck`. Durations are nanoseconds as on Docker's wire;
/// zero means "inherit" (from the image) or "default".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthConfig {
    /// `[]` inherit, `["NONE"]` disabled, `["CMD", args…]` or `["CMD-SHELL", command]`.
    pub test: Vec<String>,
    /// Time between probes.
    pub interval_ns: i64,
    /// Time a probe may take.
    pub timeout_ns: i64,
    /// Time after start during which failures do not count.
    pub start_period_ns: i64,
    /// Consecutive failures needed to report `unhealthy`.
    pub retries: i64,
}

/// What a probe runs: the command line and whether it goes through the container's shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeCommand {
    /// Arguments (`CMD`) or the one shell command string (`CMD-SHELL`).
    pub args: Vec<String>,
    /// `CMD-SHELL`: run with `/bin/sh -c`.
    pub shell: bool,
}

/// Why a health check configuration was refused (dockerd's texts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HealthConfigError {
    /// A duration below 1ms.
    #[error("{field} in Healthcheck cannot be less than 1ms")]
    TooShort {
        /// `Interval`, `Timeout` or `StartPeriod`.
        field: &'static str,
    },
    /// Negative retries.
    #[error("Retries in Healthcheck cannot be negative")]
    NegativeRetries,
}

// === impl HealthConfig ===

impl HealthConfig {
    /// Checks the limits dockerd checks at create (`validateHealthCheck`).
    pub fn validate(&self) -> Result<(), HealthConfigError> {
        for (field, ns) in [
            ("Interval", self.interval_ns),
            ("Timeout", self.timeout_ns),
            ("StartPeriod", self.start_period_ns),
        ] {
            if ns != 0 && ns < MINIMUM_DURATION_NS {
                return Err(HealthConfigError::TooShort { field });
            }
        }
        if self.retries < 0 {
            return Err(HealthConfigError::NegativeRetries);
        }
        Ok(())
    }

    /// Merges the image's health check under the container's, field by field, as dockerd's
    /// `merge` in `daemon/commit.go`: unset container fields take the image's values.
    pub fn merged(container: Option<Self>, image: Option<Self>) -> Option<Self> {
        match (container, image) {
            (None, image) => image,
            (Some(c), None) => Some(c),
            (Some(mut c), Some(i)) => {
                if c.test.is_empty() {
                    c.test = i.test;
                }
                if c.interval_ns == 0 {
                    c.interval_ns = i.interval_ns;
                }
                if c.timeout_ns == 0 {
                    c.timeout_ns = i.timeout_ns;
                }
                if c.start_period_ns == 0 {
                    c.start_period_ns = i.start_period_ns;
                }
                if c.retries == 0 {
                    c.retries = i.retries;
                }
                Some(c)
            }
        }
    }

    /// The command to probe with; `None` when checks are disabled (`NONE`), empty or of an
    /// unknown kind (dockerd's `getProbe`).
    pub fn probe(&self) -> Option<ProbeCommand> {
        let (kind, rest) = self.test.split_first()?;
        match kind.as_str() {
            "CMD" => Some(ProbeCommand {
                args: rest.to_vec(),
                shell: false,
            })
            .filter(|p| !p.args.is_empty()),
            "CMD-SHELL" => Some(ProbeCommand {
                args: rest.to_vec(),
                shell: true,
            }),
            _ => None,
        }
    }

    /// The probe interval with Docker's default.
    pub fn interval(&self) -> Duration {
        duration_or(self.interval_ns, DEFAULT_INTERVAL)
    }

    /// The probe timeout with Docker's default.
    pub fn timeout(&self) -> Duration {
        duration_or(self.timeout_ns, DEFAULT_TIMEOUT)
    }

    /// The start period (zero by default).
    pub fn start_period(&self) -> Duration {
        duration_or(self.start_period_ns, Duration::ZERO)
    }

    /// The retries with Docker's default.
    pub fn retries(&self) -> i64 {
        if self.retries <= 0 {
            DEFAULT_RETRIES
        } else {
            self.retries
        }
    }
}

fn duration_or(ns: i64, default: Duration) -> Duration {
    u64::try_from(ns)
        .ok()
        .filter(|&n| n > 0)
        .map_or(default, Duration::from_nanos)
}

/// `State.Health.Status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// No probe has succeeded yet, or the container just (re)started.
    #[default]
    Starting,
    /// The last probe succeeded.
    Healthy,
    /// `retries` probes in a row failed.
    Unhealthy,
}

impl HealthStatus {
    /// Docker's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
        }
    }
}

/// One probe's result: `State.Health.Log[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthResult {
    /// When the probe started.
    pub start: DateTime<Utc>,
    /// When it ended.
    pub end: DateTime<Utc>,
    /// 0 healthy; anything else (-1 for a timeout or a failed start) a failure.
    pub exit_code: i64,
    /// Combined stdout and stderr, at most [`MAX_OUTPUT_LEN`] bytes (then `...`).
    pub output: String,
}

/// `State.Health`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Health {
    /// Current status.
    pub status: HealthStatus,
    /// Consecutive failures counted.
    pub failing_streak: i64,
    /// The last [`MAX_LOG_ENTRIES`] results, oldest first.
    pub log: Vec<HealthResult>,
}

// === impl Health ===

impl Health {
    /// Back to `starting` with no failures counted, keeping the log (a (re)start, as
    /// dockerd's `initHealthMonitor`).
    pub fn restart(&mut self) {
        self.status = HealthStatus::Starting;
        self.failing_streak = 0;
    }

    /// Applies one result (dockerd's `handleProbeResult`); returns the new status when it
    /// changed. `in_start_period` is whether the probe started within the start period
    /// after the container started: then a failure while `starting` is not counted.
    pub fn record(
        &mut self,
        result: HealthResult,
        retries: i64,
        in_start_period: bool,
    ) -> Option<HealthStatus> {
        let old = self.status;
        let success = result.exit_code == 0;
        if self.log.len() >= MAX_LOG_ENTRIES {
            let drop = self.log.len() + 1 - MAX_LOG_ENTRIES;
            self.log.drain(..drop);
        }
        self.log.push(result);
        if success {
            self.failing_streak = 0;
            self.status = HealthStatus::Healthy;
        } else if !(self.status == HealthStatus::Starting && in_start_period) {
            self.failing_streak += 1;
            if self.failing_streak >= retries {
                self.status = HealthStatus::Unhealthy;
            }
        }
        (self.status != old).then_some(self.status)
    }
}

/// Keeps at most [`MAX_OUTPUT_LEN`] bytes of probe output, as dockerd's `limitedBuffer`
/// (which marks a cut with `...`).
#[derive(Debug, Default)]
pub struct LimitedOutput {
    buf: Vec<u8>,
    truncated: bool,
}

impl LimitedOutput {
    /// Appends what still fits.
    pub fn push(&mut self, data: &[u8]) {
        let keep = MAX_OUTPUT_LEN
            .saturating_sub(self.buf.len())
            .min(data.len());
        self.buf.extend_from_slice(&data[..keep]);
        if keep < data.len() {
            self.truncated = true;
        }
    }

    /// The text (invalid UTF-8 replaced), with `...` when output was cut.
    pub fn into_string(self) -> String {
        let mut s = String::from_utf8_lossy(&self.buf).into_owned();
        if self.truncated {
            s.push_str("...");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(code: i64) -> HealthResult {
        let t = DateTime::<Utc>::UNIX_EPOCH;
        HealthResult {
            start: t,
            end: t,
            exit_code: code,
            output: String::new(),
        }
    }

    #[test]
    fn success_makes_healthy_and_resets_the_streak() {
        let mut h = Health::default();
        assert_eq!(h.record(result(1), 3, false), None);
        assert_eq!(h.failing_streak, 1);
        assert_eq!(h.record(result(0), 3, false), Some(HealthStatus::Healthy));
        assert_eq!(h.failing_streak, 0);
        assert_eq!(h.record(result(0), 3, false), None);
    }

    #[test]
    fn retries_failures_in_a_row_make_unhealthy_and_a_success_recovers() {
        let mut h = Health::default();
        h.record(result(0), 2, false);
        assert_eq!(h.record(result(1), 2, false), None);
        assert_eq!(h.status, HealthStatus::Healthy);
        assert_eq!(
            h.record(result(-1), 2, false),
            Some(HealthStatus::Unhealthy)
        );
        assert_eq!(h.failing_streak, 2);
        assert_eq!(h.record(result(1), 2, false), None);
        assert_eq!(h.failing_streak, 3);
        assert_eq!(h.record(result(0), 2, false), Some(HealthStatus::Healthy));
    }

    #[test]
    fn failures_in_the_start_period_do_not_count_while_starting() {
        let mut h = Health::default();
        for _ in 0..5 {
            assert_eq!(h.record(result(1), 1, true), None);
        }
        assert_eq!(h.failing_streak, 0);
        assert_eq!(h.status, HealthStatus::Starting);
        // Once healthy, the start period no longer protects.
        h.record(result(0), 1, true);
        assert_eq!(h.record(result(1), 1, true), Some(HealthStatus::Unhealthy));
    }

    #[test]
    fn log_keeps_the_last_five() {
        let mut h = Health::default();
        for code in 0..8 {
            h.record(result(code), 100, false);
        }
        let codes: Vec<i64> = h.log.iter().map(|r| r.exit_code).collect();
        assert_eq!(codes, vec![3, 4, 5, 6, 7]);
    }

    #[test]
    fn restart_goes_back_to_starting_and_keeps_the_log() {
        let mut h = Health::default();
        h.record(result(1), 1, false);
        assert_eq!(h.status, HealthStatus::Unhealthy);
        h.restart();
        assert_eq!(h.status, HealthStatus::Starting);
        assert_eq!(h.failing_streak, 0);
        assert_eq!(h.log.len(), 1);
    }

    #[test]
    fn container_fields_override_image_fields_one_by_one() {
        let image = HealthConfig {
            test: vec!["CMD-SHELL".into(), "true".into()],
            interval_ns: 5,
            timeout_ns: 6,
            start_period_ns: 7,
            retries: 8,
        };
        let container = HealthConfig {
            interval_ns: 1_000_000_000,
            retries: 2,
            ..HealthConfig::default()
        };
        let m = HealthConfig::merged(Some(container), Some(image.clone())).unwrap();
        assert_eq!(m.test, image.test);
        assert_eq!(
            (m.interval_ns, m.timeout_ns, m.start_period_ns, m.retries),
            (1_000_000_000, 6, 7, 2)
        );
        assert_eq!(HealthConfig::merged(None, Some(image.clone())), Some(image));
        assert_eq!(HealthConfig::merged(None, None), None);
        let none = HealthConfig {
            test: vec!["NONE".into()],
            ..HealthConfig::default()
        };
        let m = HealthConfig::merged(Some(none), Some(HealthConfig::default())).unwrap();
        assert_eq!(m.probe(), None);
    }

    #[test]
    fn probe_kinds_and_defaults() {
        let cfg = |t: &[&str]| HealthConfig {
            test: t.iter().map(|s| (*s).to_owned()).collect(),
            ..HealthConfig::default()
        };
        assert_eq!(
            cfg(&["CMD-SHELL", "test -f /x"]).probe(),
            Some(ProbeCommand {
                args: vec!["test -f /x".into()],
                shell: true
            })
        );
        assert_eq!(
            cfg(&["CMD", "true", "a"]).probe(),
            Some(ProbeCommand {
                args: vec!["true".into(), "a".into()],
                shell: false
            })
        );
        assert_eq!(cfg(&["NONE"]).probe(), None);
        assert_eq!(cfg(&[]).probe(), None);
        assert_eq!(cfg(&["BOGUS", "x"]).probe(), None);
        let d = HealthConfig::default();
        assert_eq!(d.interval(), Duration::from_secs(30));
        assert_eq!(d.timeout(), Duration::from_secs(30));
        assert_eq!(d.start_period(), Duration::ZERO);
        assert_eq!(d.retries(), 3);
    }

    #[test]
    fn validation_uses_dockerds_messages() {
        let bad = HealthConfig {
            interval_ns: 10,
            ..HealthConfig::default()
        };
        assert_eq!(
            bad.validate().unwrap_err().to_string(),
            "Interval in Healthcheck cannot be less than 1ms"
        );
        let bad = HealthConfig {
            retries: -1,
            ..HealthConfig::default()
        };
        assert_eq!(
            bad.validate().unwrap_err().to_string(),
            "Retries in Healthcheck cannot be negative"
        );
        assert!(HealthConfig::default().validate().is_ok());
    }

    #[test]
    fn output_is_capped_with_an_ellipsis() {
        let mut o = LimitedOutput::default();
        o.push(&[b'a'; 4000]);
        o.push(&[b'b'; 200]);
        let s = o.into_string();
        assert_eq!(s.len(), MAX_OUTPUT_LEN + 3);
        assert!(s.ends_with("bbb..."));
        let mut o = LimitedOutput::default();
        o.push(b"ok\n");
        assert_eq!(o.into_string(), "ok\n");
    }
}
