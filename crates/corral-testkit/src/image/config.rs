//! The runtime part of the image config (`config` in the OCI image config).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::DEFAULT_PATH;

/// A Docker-style health check stored in the image config (`config.Healthcheck`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Healthcheck {
    /// `Test`, e.g. `["CMD-SHELL", "true"]`.
    pub test: Vec<String>,
    /// `Interval` in nanoseconds (0 = inherit).
    pub interval_ns: u64,
    /// `Timeout` in nanoseconds (0 = inherit).
    pub timeout_ns: u64,
    /// `StartPeriod` in nanoseconds (0 = inherit).
    pub start_period_ns: u64,
    /// `Retries` (0 = inherit).
    pub retries: u32,
}

/// The runtime part of an image config (`config` in the OCI image config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageConfig {
    /// `User`.
    pub user: Option<String>,
    /// `ExposedPorts` keys such as `80/tcp`.
    pub exposed_ports: Vec<String>,
    /// `Env` as `KEY=VALUE`.
    pub env: Vec<String>,
    /// `Entrypoint`.
    pub entrypoint: Option<Vec<String>>,
    /// `Cmd`.
    pub cmd: Option<Vec<String>>,
    /// `Volumes` keys (container paths).
    pub volumes: Vec<String>,
    /// `WorkingDir`.
    pub working_dir: Option<String>,
    /// `Labels`.
    pub labels: BTreeMap<String, String>,
    /// `StopSignal`.
    pub stop_signal: Option<String>,
    /// `Healthcheck` (a Docker extension of the OCI config).
    pub healthcheck: Option<Healthcheck>,
}

impl Default for ImageConfig {
    fn default() -> Self {
        ImageConfig {
            user: None,
            exposed_ports: Vec::new(),
            env: vec![format!("PATH={DEFAULT_PATH}")],
            entrypoint: None,
            cmd: Some(vec!["sh".to_owned()]),
            volumes: Vec::new(),
            working_dir: None,
            labels: BTreeMap::new(),
            stop_signal: None,
            healthcheck: None,
        }
    }
}

impl ImageConfig {
    pub(super) fn to_json(&self) -> Value {
        let mut c = serde_json::Map::new();
        if let Some(u) = &self.user {
            c.insert("User".into(), json!(u));
        }
        if !self.exposed_ports.is_empty() {
            let ports: serde_json::Map<String, Value> = self
                .exposed_ports
                .iter()
                .map(|p| (p.clone(), json!({})))
                .collect();
            c.insert("ExposedPorts".into(), Value::Object(ports));
        }
        c.insert("Env".into(), json!(self.env));
        if let Some(e) = &self.entrypoint {
            c.insert("Entrypoint".into(), json!(e));
        }
        if let Some(cmd) = &self.cmd {
            c.insert("Cmd".into(), json!(cmd));
        }
        if !self.volumes.is_empty() {
            let vols: serde_json::Map<String, Value> = self
                .volumes
                .iter()
                .map(|v| (v.clone(), json!({})))
                .collect();
            c.insert("Volumes".into(), Value::Object(vols));
        }
        if let Some(w) = &self.working_dir {
            c.insert("WorkingDir".into(), json!(w));
        }
        if !self.labels.is_empty() {
            c.insert("Labels".into(), json!(self.labels));
        }
        if let Some(s) = &self.stop_signal {
            c.insert("StopSignal".into(), json!(s));
        }
        if let Some(h) = &self.healthcheck {
            let mut hc = serde_json::Map::new();
            hc.insert("Test".into(), json!(h.test));
            if h.interval_ns > 0 {
                hc.insert("Interval".into(), json!(h.interval_ns));
            }
            if h.timeout_ns > 0 {
                hc.insert("Timeout".into(), json!(h.timeout_ns));
            }
            if h.start_period_ns > 0 {
                hc.insert("StartPeriod".into(), json!(h.start_period_ns));
            }
            if h.retries > 0 {
                hc.insert("Retries".into(), json!(h.retries));
            }
            c.insert("Healthcheck".into(), Value::Object(hc));
        }
        Value::Object(c)
    }
}
