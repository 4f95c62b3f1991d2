//! `--health-*` and `--no-healthcheck` of `create`/`run`: the `Config.Healthcheck` the
//! docker CLI sends (`opts.go` `parse`).

use bollard::models::HealthConfig;
use clap::Args;

use super::opts::FlagError;

/// Health check flags.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct HealthFlags {
    /// Command to run to check health.
    #[arg(long)]
    pub(crate) health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h).
    #[arg(long, allow_hyphen_values = true)]
    pub(crate) health_interval: Option<String>,
    /// Consecutive failures needed to report unhealthy.
    #[arg(long, allow_hyphen_values = true)]
    pub(crate) health_retries: Option<String>,
    /// Start period for the container to initialize before counting retries (ms|s|m|h).
    #[arg(long, allow_hyphen_values = true)]
    pub(crate) health_start_period: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h).
    #[arg(long, allow_hyphen_values = true)]
    pub(crate) health_timeout: Option<String>,
    /// Disable any container-specified HEALTHCHECK.
    #[arg(long)]
    pub(crate) no_healthcheck: bool,
}

impl HealthFlags {
    /// The `Healthcheck` to send, `None` when no flag was given.
    pub(crate) fn config(&self) -> Result<Option<HealthConfig>, FlagError> {
        let dur = |flag: &str, v: &Option<String>| -> Result<i64, FlagError> {
            v.as_deref().map_or(Ok(0), |s| go_duration_ns(flag, s))
        };
        let interval = dur("--health-interval", &self.health_interval)?;
        let timeout = dur("--health-timeout", &self.health_timeout)?;
        let start_period = dur("--health-start-period", &self.health_start_period)?;
        let retries = self
            .health_retries
            .as_deref()
            .map_or(Ok(0), |r| super::opts::int("--health-retries", r))?;
        let cmd = self.health_cmd.clone().unwrap_or_default();
        let have =
            !cmd.is_empty() || interval != 0 || timeout != 0 || start_period != 0 || retries != 0;
        if self.no_healthcheck {
            if have {
                return Err(FlagError::new(
                    "--no-healthcheck",
                    "true",
                    "--no-healthcheck conflicts with --health-* options",
                ));
            }
            return Ok(Some(HealthConfig {
                test: Some(vec!["NONE".into()]),
                ..HealthConfig::default()
            }));
        }
        if !have {
            return Ok(None);
        }
        for (flag, v) in [
            ("--health-interval", interval),
            ("--health-timeout", timeout),
            ("--health-retries", retries),
            ("--health-start-period", start_period),
        ] {
            if v < 0 {
                return Err(FlagError::new(
                    flag,
                    &v.to_string(),
                    format!("{flag} cannot be negative"),
                ));
            }
        }
        Ok(Some(HealthConfig {
            test: (!cmd.is_empty()).then(|| vec!["CMD-SHELL".into(), cmd]),
            interval: Some(interval),
            timeout: Some(timeout),
            start_period: Some(start_period),
            retries: Some(retries),
            ..HealthConfig::default()
        }))
    }
}

/// Go's `time.ParseDuration` (`1m30s`, `500ms`, `-1s`, `0`) in nanoseconds.
pub(crate) fn go_duration_ns(flag: &str, v: &str) -> Result<i64, FlagError> {
    corral_core::duration::parse_go_duration(v)
        .ok_or_else(|| FlagError::new(flag, v, format!("time: invalid duration {v:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_go_does() {
        assert_eq!(go_duration_ns("f", "1s").unwrap(), 1_000_000_000);
        assert_eq!(go_duration_ns("f", "1m30s").unwrap(), 90_000_000_000);
        assert_eq!(go_duration_ns("f", "500ms").unwrap(), 500_000_000);
        assert_eq!(go_duration_ns("f", "0").unwrap(), 0);
        assert_eq!(go_duration_ns("f", "-2s").unwrap(), -2_000_000_000);
        assert!(go_duration_ns("f", "10").is_err());
        assert!(go_duration_ns("f", "1x").is_err());
    }

    #[test]
    fn flags_build_dockers_healthcheck() {
        let f = HealthFlags {
            health_cmd: Some("test -f /ok".into()),
            health_interval: Some("1s".into()),
            health_retries: Some("2".into()),
            ..HealthFlags::default()
        };
        let h = f.config().unwrap().unwrap();
        assert_eq!(h.test.unwrap(), ["CMD-SHELL", "test -f /ok"]);
        assert_eq!(
            (h.interval, h.retries, h.timeout),
            (Some(1_000_000_000), Some(2), Some(0))
        );
        assert!(HealthFlags::default().config().unwrap().is_none());
        let none = HealthFlags {
            no_healthcheck: true,
            ..HealthFlags::default()
        };
        assert_eq!(none.config().unwrap().unwrap().test.unwrap(), ["NONE"]);
        let both = HealthFlags {
            no_healthcheck: true,
            health_cmd: Some("true".into()),
            ..HealthFlags::default()
        };
        assert!(both.config().unwrap_err().to_string().contains("conflicts"));
        let neg = HealthFlags {
            health_interval: Some("-1s".into()),
            ..HealthFlags::default()
        };
        assert!(neg
            .config()
            .unwrap_err()
            .to_string()
            .contains("--health-interval cannot be negative"));
    }
}
