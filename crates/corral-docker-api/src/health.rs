//! Health checks on Docker's wire: `Config.Healthcheck` in, `State.Health` and the `ps`
//! status suffix out, and the `health` list filter.

use corral_core::{ContainerRecord, ContainerStatus, Health, HealthConfig};
use serde_json::{json, Map, Value};

use crate::containers::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::filters::Filters;

/// `Config.Healthcheck` of a create body as Corral's config (before the image's is merged).
pub(crate) fn from_body(h: Option<bollard::models::HealthConfig>) -> Option<HealthConfig> {
    h.map(|h| HealthConfig {
        test: h.test.unwrap_or_default(),
        interval_ns: h.interval.unwrap_or(0),
        timeout_ns: h.timeout.unwrap_or(0),
        start_period_ns: h.start_period.unwrap_or(0),
        retries: h.retries.unwrap_or(0),
    })
}

/// `Config.Healthcheck` as dockerd prints it (zero fields omitted).
pub(crate) fn config_json(h: &HealthConfig) -> Value {
    let mut m = Map::new();
    if !h.test.is_empty() {
        m.insert("Test".into(), json!(h.test));
    }
    for (k, v) in [
        ("Interval", h.interval_ns),
        ("Timeout", h.timeout_ns),
        ("StartPeriod", h.start_period_ns),
        ("Retries", h.retries),
    ] {
        if v != 0 {
            m.insert(k.into(), json!(v));
        }
    }
    Value::Object(m)
}

/// `State.Health`.
pub(crate) fn state_json(h: &Health) -> Value {
    json!({
        "Status": h.status.as_str(),
        "FailingStreak": h.failing_streak,
        "Log": h.log.iter().map(|r| json!({
            "Start": rfc3339(Some(r.start)),
            "End": rfc3339(Some(r.end)),
            "ExitCode": r.exit_code,
            "Output": r.output,
        })).collect::<Vec<_>>(),
    })
}

/// The `ps` status suffix of a running container: ` (healthy)`, ` (health: starting)`.
pub(crate) fn status_suffix(c: &ContainerRecord) -> String {
    match &c.state.health {
        Some(h) if c.state.status == ContainerStatus::Running => match h.status.as_str() {
            "starting" => " (health: starting)".into(),
            other => format!(" ({other})"),
        },
        _ => String::new(),
    }
}

/// The container's health for the `health` filter: `none` without a health state.
fn health_of(c: &ContainerRecord) -> &'static str {
    c.state
        .health
        .as_ref()
        .map_or("none", |h| h.status.as_str())
}

/// Refuses unknown `health` filter values with dockerd's message.
pub(crate) fn validate_filter(f: &Filters) -> ApiResult<()> {
    for v in f.get("health").unwrap_or(&[]) {
        if !["starting", "healthy", "unhealthy", "none"].contains(&v.as_str()) {
            return Err(ApiError::bad_request(format!(
                "Unrecognised filter value for health: {v}"
            )));
        }
    }
    Ok(())
}

/// Whether the container passes the `health` filter.
pub(crate) fn matches(c: &ContainerRecord, f: &Filters) -> bool {
    f.any("health", |v| v == health_of(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_core::{HealthResult, HealthStatus};

    #[test]
    fn config_omits_zero_fields_like_dockerd() {
        let h = HealthConfig {
            test: vec!["CMD-SHELL".into(), "true".into()],
            interval_ns: 1_000_000_000,
            ..HealthConfig::default()
        };
        assert_eq!(
            config_json(&h),
            json!({"Test": ["CMD-SHELL", "true"], "Interval": 1_000_000_000i64})
        );
    }

    #[test]
    fn body_healthcheck_maps_fields() {
        let b = bollard::models::HealthConfig {
            test: Some(vec!["NONE".into()]),
            retries: Some(2),
            ..Default::default()
        };
        let h = from_body(Some(b)).unwrap();
        assert_eq!(h.test, vec!["NONE"]);
        assert_eq!(h.retries, 2);
        assert!(from_body(None).is_none());
    }

    #[test]
    fn state_lists_the_log() {
        let t = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let h = Health {
            status: HealthStatus::Unhealthy,
            failing_streak: 3,
            log: vec![HealthResult {
                start: t,
                end: t,
                exit_code: 1,
                output: "no".into(),
            }],
        };
        let v = state_json(&h);
        assert_eq!(v["Status"], "unhealthy");
        assert_eq!(v["FailingStreak"], 3);
        assert_eq!(v["Log"][0]["ExitCode"], 1);
        assert_eq!(v["Log"][0]["Output"], "no");
    }

    #[test]
    fn health_filter_values_are_checked() {
        let f = Filters::parse(Some(r#"{"health":["sick"]}"#)).unwrap();
        assert_eq!(
            validate_filter(&f).unwrap_err().message(),
            "Unrecognised filter value for health: sick"
        );
        let f = Filters::parse(Some(r#"{"health":{"healthy":true}}"#)).unwrap();
        assert!(validate_filter(&f).is_ok());
    }
}
