//! Health monitors: one task per running container with a health check. It sleeps the
//! interval, runs the probe as an exec session in the container (the same path as
//! `docker exec`, so probes emit `exec_create`/`exec_start`/`exec_die` as in dockerd), bounds
//! it by the timeout, and feeds the result to the state machine in
//! [`corral_core::health`]. Status changes are persisted and published as
//! `health_status: healthy|unhealthy` events; other results stay in memory until the
//! record is next saved.
//!
//! A monitor stops when its container exits or pauses, starts afresh (status `starting`)
//! when the container starts or is re-adopted after a daemon restart (as dockerd's
//! `restore`), and resumes with its status kept after unpause.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use corral_core::health::{LimitedOutput, ProbeCommand};
use corral_core::{
    ContainerId, ContainerRecord, ContainerSpec, ContainerStatus, Health, HealthConfig,
    HealthResult,
};
use futures::StreamExt;
use serde_json::Value;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::{Entry, LocalEngine};
use crate::api::ExecSpec;
use crate::error::{Error, Result};

/// The shell `CMD-SHELL` probes run with when the image sets no `Shell` (dockerd's
/// `getShell` default).
const SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// Distinguishes a container's successive monitors, so a stale one cannot record.
static TOKENS: AtomicU64 = AtomicU64::new(1);

/// A running monitor, owned by the engine's health map.
pub(crate) struct Monitor {
    token: u64,
    task: AbortHandle,
}

impl Monitor {
    /// Stops the monitor (a probe in flight is dropped, which kills its process).
    pub(crate) fn stop(self) {
        self.task.abort();
    }
}

/// What a probe produced: the exit code and its (capped) output, or why it could not run.
pub(crate) type ProbeOutcome = std::result::Result<(i64, String), String>;

/// Runs one probe.
pub(crate) trait Prober: Send + Sync + 'static {
    /// Runs `cmd` to completion. Dropping the future must end the probe.
    fn probe(&self, cmd: &ProbeCommand) -> impl Future<Output = ProbeOutcome> + Send;
}

/// Receives results.
pub(crate) trait HealthSink: Send + Sync + 'static {
    /// Applies one result; `false` means the monitor is no longer wanted.
    fn record(
        &self,
        result: HealthResult,
        in_start_period: bool,
    ) -> impl Future<Output = bool> + Send;
}

/// The monitor loop (dockerd's `monitor`): the first probe runs one interval after the
/// start. `started_ago` is how long the container has been running when the loop begins
/// (non-zero when resuming after a daemon restart), for the start period.
pub(crate) async fn run_monitor(
    cfg: HealthConfig,
    started_ago: Duration,
    prober: impl Prober,
    sink: impl HealthSink,
) {
    let Some(cmd) = cfg.probe() else {
        return;
    };
    let (interval, timeout, start_period) = (cfg.interval(), cfg.timeout(), cfg.start_period());
    let t0 = Instant::now();
    loop {
        tokio::time::sleep(interval).await;
        let start = Utc::now();
        let in_start_period = started_ago + t0.elapsed() < start_period;
        let (exit_code, output) = match tokio::time::timeout(timeout, prober.probe(&cmd)).await {
            Ok(Ok(done)) => done,
            Ok(Err(message)) => (-1, message),
            Err(_) => (
                -1,
                format!("Health check exceeded timeout ({})", go_duration(timeout)),
            ),
        };
        let result = HealthResult {
            start,
            end: Utc::now(),
            exit_code,
            output,
        };
        if !sink.record(result, in_start_period).await {
            return;
        }
    }
}

/// Go's `time.Duration.String()` for the durations a timeout can have.
pub(crate) fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    let frac = |value: u128, unit: u128, suffix: &str| {
        let whole = value / unit;
        let rest = value % unit;
        if rest == 0 {
            format!("{whole}{suffix}")
        } else {
            let digits = unit.to_string().len() - 1;
            let s = format!("{rest:0digits$}");
            format!("{whole}.{}{suffix}", s.trim_end_matches('0'))
        }
    };
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return frac(ns, 1_000, "µs");
    }
    if ns < 1_000_000_000 {
        return frac(ns, 1_000_000, "ms");
    }
    let secs_ns = ns % 60_000_000_000;
    let mins = ns / 60_000_000_000;
    let s = frac(secs_ns, 1_000_000_000, "s");
    match (mins / 60, mins % 60) {
        (0, 0) => s,
        (0, m) => format!("{m}m{s}"),
        (h, m) => format!("{h}h{m}m{s}"),
    }
}

/// Reads Docker's `Healthcheck` object (image config or API body) into a [`HealthConfig`].
pub(crate) fn health_config_from_json(v: &Value) -> Option<HealthConfig> {
    let obj = v.as_object()?;
    let int = |k: &str| obj.get(k).and_then(Value::as_i64).unwrap_or(0);
    Some(HealthConfig {
        test: obj
            .get("Test")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        interval_ns: int("Interval"),
        timeout_ns: int("Timeout"),
        start_period_ns: int("StartPeriod"),
        retries: int("Retries"),
    })
}

/// Merges the image's `Healthcheck` under the container's (dockerd's `merge`) and checks
/// the result as dockerd does at create.
pub(crate) fn merge_image_healthcheck(
    spec: &mut ContainerSpec,
    image_config: &Value,
) -> Result<()> {
    let image = image_config
        .get("config")
        .and_then(|c| c.get("Healthcheck"))
        .and_then(health_config_from_json);
    spec.healthcheck = HealthConfig::merged(spec.healthcheck.take(), image);
    if let Some(h) = &spec.healthcheck {
        h.validate()
            .map_err(|e| Error::InvalidInput(e.to_string()))?;
    }
    Ok(())
}

/// The image's `Shell` (Dockerfile `SHELL`), if it sets one.
fn image_shell(image_config: &Value) -> Option<Vec<String>> {
    let shell: Vec<String> = image_config
        .pointer("/config/Shell")?
        .as_array()?
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    (!shell.is_empty()).then_some(shell)
}

/// Sets `State.Health` for a container that is starting (dockerd's `initHealthMonitor`):
/// `starting` with no failures counted, when the container has a health check.
/// A disabled check (`NONE`, or no test) gets no health state, as in dockerd.
pub(crate) fn reset_on_start(rec: &mut ContainerRecord) {
    if rec
        .spec
        .healthcheck
        .as_ref()
        .and_then(HealthConfig::probe)
        .is_some()
    {
        rec.state
            .health
            .get_or_insert_with(Health::default)
            .restart();
    }
}

/// Runs probes as exec sessions in a container.
struct ExecProber {
    engine: LocalEngine,
    container: ContainerId,
    /// The shell for `CMD-SHELL`: the image's `Shell` or [`SHELL`].
    shell: Vec<String>,
}

impl Prober for ExecProber {
    fn probe(&self, cmd: &ProbeCommand) -> impl Future<Output = ProbeOutcome> + Send {
        let engine = self.engine.clone();
        let container = self.container.clone();
        let mut args: Vec<String> = Vec::new();
        if cmd.shell {
            args.extend(self.shell.iter().cloned());
        }
        args.extend(cmd.args.iter().cloned());
        async move {
            let spec = ExecSpec {
                cmd: args,
                attach_stdout: true,
                attach_stderr: true,
                ..ExecSpec::default()
            };
            let id = engine
                .exec_create(container.as_str(), spec)
                .await
                .map_err(|e| e.to_string())?;
            let io = engine
                .exec_start(&id, false)
                .await
                .map_err(|e| e.to_string())?;
            // Dropped before the exit is recorded (a timeout): the probe process is killed.
            let _guard = KillOnDrop {
                engine: engine.clone(),
                exec_id: id.clone(),
            };
            let mut output = LimitedOutput::default();
            if let Some(io) = io {
                let mut chunks = io.output;
                while let Some(chunk) = chunks.next().await {
                    output.push(&chunk.data);
                }
            }
            let state = engine.exec_inspect(&id).map_err(|e| e.to_string())?;
            match state.exit_code {
                Some(code) => Ok((code, output.into_string())),
                None => Err(format!(
                    "healthcheck for container {container} has no exit code"
                )),
            }
        }
    }
}

/// Kills a probe's process if it is still running when the probe is abandoned.
struct KillOnDrop {
    engine: LocalEngine,
    exec_id: String,
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let Ok(state) = self.engine.exec_inspect(&self.exec_id) else {
            return;
        };
        if !state.running {
            return;
        }
        let Some(pid) = i32::try_from(state.pid)
            .ok()
            .and_then(corral_sys::process::Pid::new)
        else {
            return;
        };
        use corral_sys::process::Processes;
        let kill = corral_sys::process::parse_signal("KILL");
        if let Ok(sig) = kill {
            if let Err(e) = corral_sys::process::LinuxProcesses.signal(pid, sig) {
                tracing::debug!(exec = %self.exec_id, error = %e, "killing a timed-out health probe");
            }
        }
    }
}

/// Records results on the container's record.
struct EntrySink {
    engine: LocalEngine,
    entry: Arc<Entry>,
    token: u64,
}

impl HealthSink for EntrySink {
    fn record(
        &self,
        result: HealthResult,
        in_start_period: bool,
    ) -> impl Future<Output = bool> + Send {
        let engine = self.engine.clone();
        let entry = self.entry.clone();
        let token = self.token;
        async move {
            let changed = {
                let mut guard = entry.record.lock();
                let current = engine
                    .inner
                    .health
                    .lock()
                    .get(&guard.id)
                    .is_some_and(|m| m.token == token);
                if !current || guard.state.status != ContainerStatus::Running {
                    return false;
                }
                let rec = Arc::make_mut(&mut guard);
                let retries = rec
                    .spec
                    .healthcheck
                    .as_ref()
                    .map_or(0, HealthConfig::retries);
                rec.state.health.get_or_insert_with(Health::default).record(
                    result,
                    retries,
                    in_start_period,
                )
            };
            // Every result updates the record in memory (what `inspect` shows); only a
            // status change is written through at once, so probes do not cost an fsync
            // each. Later saves (stop, exit) carry the latest log along.
            if changed.is_some() {
                if let Err(e) = engine.save(&entry).await {
                    tracing::warn!(error = %e, "persisting health state");
                }
            }
            if let Some(status) = changed {
                let rec = entry.snapshot();
                tracing::info!(container = %rec.id, status = status.as_str(), "health status changed");
                engine.container_event(&rec, &format!("health_status: {}", status.as_str()), &[]);
            }
            true
        }
    }
}

// === impl LocalEngine ===

impl LocalEngine {
    /// Starts monitoring a running container that has a probe, replacing any monitor it
    /// had. The health status is whatever the record holds ([`reset_on_start`] on start).
    pub(crate) fn health_start(&self, entry: &Arc<Entry>) {
        let rec = entry.snapshot();
        self.health_stop(&rec.id);
        let Some(cfg) = rec.spec.healthcheck.clone() else {
            return;
        };
        if rec.state.status != ContainerStatus::Running || cfg.probe().is_none() {
            return;
        }
        let started_ago = rec
            .state
            .started_at
            .and_then(|t| (Utc::now() - t).to_std().ok())
            .unwrap_or_default();
        let token = TOKENS.fetch_add(1, Ordering::Relaxed);
        let shell = self
            .inner
            .images
            .read()
            .get(&rec.image_id)
            .and_then(|img| image_shell(&img.config))
            .unwrap_or_else(|| SHELL.iter().map(|s| (*s).to_owned()).collect());
        let prober = ExecProber {
            engine: self.clone(),
            container: rec.id.clone(),
            shell,
        };
        let sink = EntrySink {
            engine: self.clone(),
            entry: entry.clone(),
            token,
        };
        // Registered under the lock that spawns, so the first result finds its token.
        let mut monitors = self.inner.health.lock();
        let task = self
            .inner
            .tasks
            .lock()
            .spawn(run_monitor(cfg, started_ago, prober, sink));
        monitors.insert(rec.id, Monitor { token, task });
    }

    /// Re-adoption after a daemon restart: as dockerd's `restore`, a running container's
    /// health starts over at `starting` (its start period still counts from its original
    /// start) and its monitor starts; a paused one waits for `unpause`.
    pub(crate) async fn health_restore(&self, entry: &Arc<Entry>) {
        let reset = {
            let mut guard = entry.record.lock();
            let running = guard.state.status == ContainerStatus::Running;
            if running && guard.state.health.is_some() {
                reset_on_start(Arc::make_mut(&mut guard));
            }
            running
        };
        if reset {
            if let Err(e) = self.save(entry).await {
                tracing::warn!(error = %e, "persisting health state");
            }
            self.health_start(entry);
        }
    }

    /// Stops a container's monitor, if it has one.
    pub(crate) fn health_stop(&self, id: &ContainerId) {
        if let Some(m) = self.inner.health.lock().remove(id) {
            m.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;
    use std::collections::VecDeque;

    /// Answers probes from a script; each takes `delay`.
    #[derive(Clone)]
    struct ScriptProber {
        answers: Arc<Mutex<VecDeque<ProbeOutcome>>>,
        delay: Duration,
        started: Arc<Mutex<Vec<Instant>>>,
    }

    impl Prober for ScriptProber {
        fn probe(&self, _cmd: &ProbeCommand) -> impl Future<Output = ProbeOutcome> + Send {
            let next = self
                .answers
                .lock()
                .pop_front()
                .unwrap_or(Ok((0, String::new())));
            self.started.lock().push(Instant::now());
            let delay = self.delay;
            async move {
                tokio::time::sleep(delay).await;
                next
            }
        }
    }

    /// Applies results to a [`Health`] and records the transitions; stops after `limit`.
    #[derive(Clone, Default)]
    struct VecSink {
        health: Arc<Mutex<Health>>,
        retries: i64,
        results: Arc<Mutex<Vec<(HealthResult, bool)>>>,
        changes: Arc<Mutex<Vec<&'static str>>>,
        limit: usize,
    }

    impl HealthSink for VecSink {
        fn record(
            &self,
            result: HealthResult,
            in_start_period: bool,
        ) -> impl Future<Output = bool> + Send {
            let changed = self
                .health
                .lock()
                .record(result.clone(), self.retries, in_start_period);
            if let Some(s) = changed {
                self.changes.lock().push(s.as_str());
            }
            let mut results = self.results.lock();
            results.push((result, in_start_period));
            let more = results.len() < self.limit;
            async move { more }
        }
    }

    fn cfg(interval: u64, timeout: u64, start_period: u64, retries: i64) -> HealthConfig {
        HealthConfig {
            test: vec!["CMD-SHELL".into(), "true".into()],
            interval_ns: i64::try_from(Duration::from_secs(interval).as_nanos()).unwrap(),
            timeout_ns: i64::try_from(Duration::from_secs(timeout).as_nanos()).unwrap(),
            start_period_ns: i64::try_from(Duration::from_secs(start_period).as_nanos()).unwrap(),
            retries,
        }
    }

    fn prober(answers: Vec<ProbeOutcome>, delay: Duration) -> ScriptProber {
        ScriptProber {
            answers: Arc::new(Mutex::new(answers.into())),
            delay,
            started: Arc::default(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn probes_every_interval_turning_healthy_then_unhealthy() {
        let p = prober(
            vec![
                Ok((0, "ok".into())),
                Ok((1, "no".into())),
                Ok((1, "no".into())),
            ],
            Duration::from_millis(100),
        );
        let sink = VecSink {
            retries: 2,
            limit: 3,
            ..VecSink::default()
        };
        let t0 = Instant::now();
        run_monitor(cfg(5, 1, 0, 2), Duration::ZERO, p.clone(), sink.clone()).await;
        let offsets: Vec<Duration> = p.started.lock().iter().map(|t| *t - t0).collect();
        // First probe one interval after the start; then an interval after each ends.
        assert_eq!(
            offsets,
            vec![
                Duration::from_secs(5),
                Duration::from_millis(10_100),
                Duration::from_millis(15_200)
            ]
        );
        assert_eq!(*sink.changes.lock(), vec!["healthy", "unhealthy"]);
        let h = sink.health.lock();
        assert_eq!(h.failing_streak, 2);
        assert_eq!(h.log.last().unwrap().output, "no");
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_probe_fails_with_dockers_timeout_message() {
        let p = prober(vec![Ok((0, String::new()))], Duration::from_secs(60));
        let sink = VecSink {
            retries: 1,
            limit: 1,
            ..VecSink::default()
        };
        run_monitor(cfg(1, 2, 0, 1), Duration::ZERO, p, sink.clone()).await;
        let results = sink.results.lock();
        assert_eq!(results[0].0.exit_code, -1);
        assert_eq!(results[0].0.output, "Health check exceeded timeout (2s)");
        assert_eq!(*sink.changes.lock(), vec!["unhealthy"]);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_in_the_start_period_are_not_counted() {
        let fail = || Ok((1, String::new()));
        let p = prober(vec![fail(), fail(), fail(), fail()], Duration::ZERO);
        let sink = VecSink {
            retries: 1,
            limit: 4,
            ..VecSink::default()
        };
        // Probes at 2, 4, 6, 8 s; the start period covers the first two (< 5 s).
        run_monitor(cfg(2, 1, 5, 1), Duration::ZERO, p, sink.clone()).await;
        let flags: Vec<bool> = sink.results.lock().iter().map(|(_, s)| *s).collect();
        assert_eq!(flags, vec![true, true, false, false]);
        assert_eq!(*sink.changes.lock(), vec!["unhealthy"]);
        assert_eq!(sink.health.lock().failing_streak, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_resumed_monitor_counts_the_time_already_running() {
        let p = prober(vec![Ok((1, String::new()))], Duration::ZERO);
        let sink = VecSink {
            retries: 1,
            limit: 1,
            ..VecSink::default()
        };
        // Running for 10 s already; a 5 s start period is over.
        run_monitor(cfg(2, 1, 5, 1), Duration::from_secs(10), p, sink.clone()).await;
        assert!(!sink.results.lock()[0].1);
    }

    #[tokio::test(start_paused = true)]
    async fn probe_errors_are_failures_with_the_message() {
        let p = prober(vec![Err("container is not running".into())], Duration::ZERO);
        let sink = VecSink {
            retries: 3,
            limit: 1,
            ..VecSink::default()
        };
        run_monitor(cfg(1, 1, 0, 3), Duration::ZERO, p, sink.clone()).await;
        let r = &sink.results.lock()[0].0;
        assert_eq!(
            (r.exit_code, r.output.as_str()),
            (-1, "container is not running")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_probe_means_no_monitor() {
        let p = prober(vec![], Duration::ZERO);
        let sink = VecSink::default();
        let mut c = cfg(1, 1, 0, 1);
        c.test = vec!["NONE".into()];
        run_monitor(c, Duration::ZERO, p.clone(), sink.clone()).await;
        assert!(p.started.lock().is_empty());
    }

    #[test]
    fn image_healthcheck_merges_under_the_containers() {
        let image = serde_json::json!({"config": {"Healthcheck": {
            "Test": ["CMD-SHELL", "test -f /ok"], "Interval": 1_000_000_000i64,
            "Timeout": 2_000_000_000i64, "Retries": 4
        }}});
        let mut spec = ContainerSpec {
            healthcheck: Some(HealthConfig {
                retries: 1,
                ..HealthConfig::default()
            }),
            ..ContainerSpec::default()
        };
        merge_image_healthcheck(&mut spec, &image).unwrap();
        let h = spec.healthcheck.unwrap();
        assert_eq!(h.test, vec!["CMD-SHELL", "test -f /ok"]);
        assert_eq!(
            (h.interval_ns, h.timeout_ns, h.retries),
            (1_000_000_000, 2_000_000_000, 1)
        );
        let mut spec = ContainerSpec::default();
        merge_image_healthcheck(&mut spec, &serde_json::json!({"config": {}})).unwrap();
        assert!(spec.healthcheck.is_none());
        let mut spec = ContainerSpec {
            healthcheck: Some(HealthConfig {
                retries: -2,
                ..HealthConfig::default()
            }),
            ..ContainerSpec::default()
        };
        let err = merge_image_healthcheck(&mut spec, &image).unwrap_err();
        assert_eq!(err.to_string(), "Retries in Healthcheck cannot be negative");
    }

    #[test]
    fn shell_probes_use_the_images_shell() {
        let cfg = serde_json::json!({"config": {"Shell": ["/bin/ash", "-eo", "pipefail", "-c"]}});
        assert_eq!(
            image_shell(&cfg).unwrap(),
            vec!["/bin/ash", "-eo", "pipefail", "-c"]
        );
        assert_eq!(image_shell(&serde_json::json!({"config": {}})), None);
        assert_eq!(
            image_shell(&serde_json::json!({"config": {"Shell": []}})),
            None
        );
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::from_secs(60)), "1m0s");
    }
}
