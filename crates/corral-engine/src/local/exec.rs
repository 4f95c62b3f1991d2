//! Exec sessions (`docker exec`): a process started in a running container through the
//! container's shim, with Docker's process config, states, messages and events.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use corral_core::{ContainerId, ContainerRecord, ContainerStatus};
use corral_runtime::shim::{ShimClient, ShimError};
use corral_runtime::spec::{self, ResolvedUser};
use futures::StreamExt;
use parking_lot::Mutex;
use serde_json::Value;
use tokio::net::unix::OwnedReadHalf;
use tokio::sync::watch;

use super::LocalEngine;
use crate::api::{AttachIo, BoxStream, ExecSpec, ExecState, OutputChunk, StreamKind};
use crate::error::{Error, Result};

/// Docker's exit code for an exec whose process could not be started.
const START_FAILED: i64 = 126;
/// Exit code recorded when the shim went away before reporting the exit.
const EXIT_UNKNOWN: i64 = 255;
/// How long the end of an exec's output stream waits for the exit code to be recorded.
const EXIT_RECORD_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle sessions (finished, or created and never started) kept before the oldest are
/// dropped.
const MAX_IDLE: usize = 256;

/// One exec session.
pub(crate) struct ExecEntry {
    id: String,
    container: ContainerId,
    spec: ExecSpec,
    /// Creation order, for pruning.
    serial: u64,
    run: Mutex<ExecRun>,
    /// `Some(code)` once the exit code is recorded.
    exit: watch::Sender<Option<i64>>,
}

#[derive(Debug, Default, Clone, Copy)]
struct ExecRun {
    started: bool,
    running: bool,
    exit_code: Option<i64>,
    pid: i64,
}

// === impl ExecEntry ===

impl ExecEntry {
    fn state(&self) -> ExecState {
        let run = *self.run.lock();
        ExecState {
            id: self.id.clone(),
            container_id: self.container.as_str().to_owned(),
            running: run.running,
            exit_code: run.exit_code,
            pid: run.pid,
            cmd: self.spec.cmd.clone(),
            tty: self.spec.tty,
            open_stdin: self.spec.attach_stdin,
            detach_keys: self.spec.detach_keys.clone(),
        }
    }

    /// Started and not yet finished (a start in progress counts).
    fn is_running(&self) -> bool {
        let run = self.run.lock();
        run.started && run.exit_code.is_none()
    }

    /// Records the exit code and wakes the end of the output stream.
    fn finish(&self, code: i64) {
        {
            let mut run = self.run.lock();
            run.running = false;
            run.exit_code = Some(code);
        }
        self.exit.send_replace(Some(code));
    }

    /// Docker's event action suffix: the entrypoint, a space, the arguments.
    fn command_line(&self) -> String {
        let (first, rest) = self
            .spec
            .cmd
            .split_first()
            .map_or(("", &[][..]), |(f, r)| (f.as_str(), r));
        format!("{first} {}", rest.join(" "))
    }
}

// === impl LocalEngine ===

impl LocalEngine {
    /// `POST /containers/{id}/exec`: registers a session for a running container.
    pub(crate) async fn exec_create(&self, name: &str, spec: ExecSpec) -> Result<String> {
        let entry = self.lookup(name)?;
        let rec = entry.snapshot();
        exec_allowed(name, &rec)?;
        if spec.cmd.is_empty() {
            return Err(Error::InvalidInput("No exec command specified".into()));
        }
        let id = ContainerId::random().as_str().to_owned();
        let exec = {
            let mut execs = self.inner.execs.lock();
            prune(&mut execs, |container| {
                self.inner.containers.read().contains_key(container)
            });
            let serial = execs.values().map(|e| e.serial + 1).max().unwrap_or(0);
            let (exit, _) = watch::channel(None);
            let exec = Arc::new(ExecEntry {
                id: id.clone(),
                container: rec.id.clone(),
                spec,
                serial,
                run: Mutex::new(ExecRun::default()),
                exit,
            });
            execs.insert(id.clone(), Arc::clone(&exec));
            exec
        };
        let action = format!("exec_create: {}", exec.command_line());
        self.container_event(&rec, &action, &[("execID", id.clone())]);
        Ok(id)
    }

    /// Forgets the unfinished exec sessions (never started, or still running) of a
    /// container whose process ended, as dockerd does when it cleans up after an exit;
    /// finished ones stay inspectable until pruned.
    pub(crate) fn drop_execs_of(&self, container: &ContainerId) {
        self.inner
            .execs
            .lock()
            .retain(|_, e| &e.container != container || e.run.lock().exit_code.is_some());
    }

    /// `POST /exec/{id}/start`: runs the process. Without `detach` the returned streams
    /// carry its stdio and end once it exited and its exit code is recorded.
    pub(crate) async fn exec_start(&self, exec_id: &str, detach: bool) -> Result<Option<AttachIo>> {
        let exec = self.exec_entry(exec_id)?;
        {
            let mut run = exec.run.lock();
            if run.exit_code.is_some() {
                return Err(Error::Conflict(format!(
                    "Error: Exec command {exec_id} has already run"
                )));
            }
            if run.started {
                return Err(Error::Conflict(format!(
                    "Error: Exec command {exec_id} is already running"
                )));
            }
            run.started = true;
        }
        let prepared = self.prepare_exec(&exec).await;
        let (shim, rec, process) = match prepared {
            Ok(Ok(ready)) => ready,
            // Docker's checks before anything ran: the session may be started again.
            Ok(Err(err)) => {
                exec.run.lock().started = false;
                return Err(err);
            }
            Err((rec, message)) => {
                self.container_event(
                    &rec,
                    &format!("exec_start: {}", exec.command_line()),
                    &[("execID", exec.id.clone())],
                );
                return start_failed(&exec, message, detach);
            }
        };
        self.container_event(
            &rec,
            &format!("exec_start: {}", exec.command_line()),
            &[("execID", exec.id.clone())],
        );
        let stdin = exec.spec.attach_stdin && !detach;
        let stream = match shim.exec(&exec.id, &process, exec.spec.tty, stdin).await {
            Ok(stream) => stream,
            Err(ShimError::ExecFailed(message)) => return start_failed(&exec, message, detach),
            Err(ShimError::NotRunning(_)) => {
                exec.run.lock().started = false;
                return Err(Error::Conflict(format!(
                    "Container {} is not running",
                    rec.id
                )));
            }
            Err(err) => {
                exec.finish(START_FAILED);
                return Err(Error::Runtime(err.into()));
            }
        };
        {
            let mut run = exec.run.lock();
            run.running = true;
            run.pid = i64::from(stream.pid().as_raw());
        }
        self.spawn_exec_waiter(&exec, shim, rec);
        let (read, write) = stream.into_split();
        if detach {
            // Output of a detached exec is drained and dropped by the shim.
            drop(read);
            return Ok(None);
        }
        let output = exec_output(read, &exec);
        Ok(Some(AttachIo {
            output,
            input: stdin.then(|| Box::pin(write) as crate::api::BoxWrite),
            tty: exec.spec.tty,
        }))
    }

    /// `POST /exec/{id}/resize`.
    pub(crate) async fn exec_resize(&self, exec_id: &str, height: u16, width: u16) -> Result<()> {
        let exec = self.exec_entry(exec_id)?;
        let run = *exec.run.lock();
        if !run.started {
            return Err(Error::Conflict(format!("Exec {exec_id} is not running")));
        }
        if !run.running {
            // Too late to matter (a short process): nothing to resize.
            return Ok(());
        }
        let shim = self
            .lookup(exec.container.as_str())?
            .shim
            .lock()
            .clone()
            .ok_or_else(|| {
                Error::Conflict(format!("Container {} is not running", exec.container))
            })?;
        match shim.exec_resize(exec_id, height, width).await {
            Ok(()) => Ok(()),
            Err(ShimError::InvalidRequest(message)) => Err(Error::Conflict(message)),
            Err(err) => Err(Error::Runtime(err.into())),
        }
    }

    /// `GET /exec/{id}/json`.
    pub(crate) fn exec_inspect(&self, exec_id: &str) -> Result<ExecState> {
        Ok(self.exec_entry(exec_id)?.state())
    }

    fn exec_entry(&self, exec_id: &str) -> Result<Arc<ExecEntry>> {
        self.inner
            .execs
            .lock()
            .get(exec_id)
            .cloned()
            .ok_or_else(|| Error::NoSuchExec(exec_id.to_owned()))
    }

    /// The live shim, the record and the process config. The outer error is a start
    /// failure Docker reports in the stream (exit code 126); the inner one a refusal.
    async fn prepare_exec(
        &self,
        exec: &Arc<ExecEntry>,
    ) -> std::result::Result<Result<(ShimClient, ContainerRecord, Value)>, (ContainerRecord, String)>
    {
        let entry = match self.lookup(exec.container.as_str()) {
            Ok(entry) => entry,
            Err(err) => return Ok(Err(err)),
        };
        let rec = entry.snapshot();
        if let Err(err) = exec_allowed(rec.id.as_str(), &rec) {
            return Ok(Err(err));
        }
        let Some(shim) = entry.shim.lock().clone() else {
            return Ok(Err(Error::Conflict(format!(
                "Container {} is not running",
                rec.id
            ))));
        };
        let config = self.state_dir(&rec.id).join("config.json");
        let spec = exec.spec.clone();
        let rec2 = rec.clone();
        let built =
            tokio::task::spawn_blocking(move || build_from_bundle(&config, &rec2, &spec)).await;
        match built {
            Ok(Ok(process)) => Ok(Ok((shim, rec, process))),
            Ok(Err(BuildError::Start(message))) => Err((rec, message)),
            Ok(Err(BuildError::Engine(err))) => Ok(Err(err)),
            Err(err) => Ok(Err(Error::Internal(err.to_string()))),
        }
    }

    /// Waits (in an owned task) for the exit code, records it and emits `exec_die`.
    fn spawn_exec_waiter(&self, exec: &Arc<ExecEntry>, shim: ShimClient, rec: ContainerRecord) {
        let this = self.clone();
        let exec = Arc::clone(exec);
        self.inner.spawn_task(async move {
            let code = match shim.exec_wait(&exec.id).await {
                Ok(code) => i64::from(code),
                Err(err) => {
                    tracing::warn!(exec = %exec.id, container = %rec.id, error = %err, "lost the exit code of an exec");
                    EXIT_UNKNOWN
                }
            };
            exec.finish(code);
            let rec = this.lookup(rec.id.as_str()).map(|e| e.snapshot()).unwrap_or(rec);
            this.container_event(&rec, "exec_die", &[("execID", exec.id.clone()), ("exitCode", code.to_string())]);
        });
    }
}

/// Docker refuses exec unless the container runs unfrozen (moby `getActiveContainer`).
fn exec_allowed(name: &str, rec: &ContainerRecord) -> Result<()> {
    match rec.state.status {
        ContainerStatus::Running => Ok(()),
        ContainerStatus::Paused => Err(Error::Conflict(format!(
            "Container {name} is paused, unpause the container before exec"
        ))),
        ContainerStatus::Restarting => Err(Error::Conflict(format!(
            "Container {} is restarting, wait until the container is running",
            rec.id
        ))),
        _ => Err(Error::Conflict(format!(
            "Container {} is not running",
            rec.id
        ))),
    }
}

/// A start failure: recorded as exit code 126; detached callers get the error, attached
/// ones read Docker's message on the stream (moby writes it to the hijacked connection).
fn start_failed(exec: &ExecEntry, message: String, detach: bool) -> Result<Option<AttachIo>> {
    exec.finish(START_FAILED);
    if detach {
        return Err(Error::StartFailed(message));
    }
    let chunk = OutputChunk {
        stream: StreamKind::Stdout,
        data: Bytes::from(format!("{message}\r\n")),
    };
    Ok(Some(AttachIo {
        output: Box::pin(futures::stream::iter([chunk])),
        input: None,
        tty: exec.spec.tty,
    }))
}

/// Drops idle sessions (finished, or never started) of removed containers, and the
/// oldest idle ones past [`MAX_IDLE`]. A running session stays until it ends.
fn prune(
    execs: &mut std::collections::BTreeMap<String, Arc<ExecEntry>>,
    container_exists: impl Fn(&ContainerId) -> bool,
) {
    execs.retain(|_, e| e.is_running() || container_exists(&e.container));
    let mut idle: Vec<(u64, String)> = execs
        .values()
        .filter(|e| !e.is_running())
        .map(|e| (e.serial, e.id.clone()))
        .collect();
    if idle.len() > MAX_IDLE {
        idle.sort();
        for (_, id) in &idle[..idle.len() - MAX_IDLE] {
            execs.remove(id);
        }
    }
}

/// The exec's output as chunks (frames, or raw bytes with a TTY), filtered to the streams
/// asked for; it ends once the process exited and its code is recorded, so a client that
/// inspects the session right after sees the code.
fn exec_output(read: OwnedReadHalf, exec: &Arc<ExecEntry>) -> BoxStream<OutputChunk> {
    let tty = exec.spec.tty;
    let (want_out, want_err) = (exec.spec.attach_stdout, exec.spec.attach_stderr);
    let chunks = super::streams::shim_output(read, tty).filter(move |chunk| {
        let wanted = match chunk.stream {
            StreamKind::Stderr => want_err,
            _ => want_out,
        };
        async move { wanted }
    });
    let mut exit = exec.exit.subscribe();
    let recorded = futures::stream::once(async move {
        let _ = tokio::time::timeout(EXIT_RECORD_TIMEOUT, exit.wait_for(Option::is_some)).await;
    })
    .filter_map(|()| async { None::<OutputChunk> });
    Box::pin(chunks.chain(recorded))
}

/// Why a process config could not be built.
enum BuildError {
    /// Docker reports it as a failed start (exit code 126), e.g. an unknown user.
    Start(String),
    /// The engine failed.
    Engine(Error),
}

/// Reads the container's bundle config and builds the exec's process from it.
fn build_from_bundle(
    config: &Path,
    rec: &ContainerRecord,
    spec: &ExecSpec,
) -> std::result::Result<Value, BuildError> {
    let text = std::fs::read(config).map_err(|e| {
        BuildError::Engine(Error::Internal(format!(
            "reading {}: {e}",
            config.display()
        )))
    })?;
    let bundle: Value = serde_json::from_slice(&text).map_err(|e| {
        BuildError::Engine(Error::Internal(format!(
            "parsing {}: {e}",
            config.display()
        )))
    })?;
    let user = match spec.user.as_deref().filter(|u| !u.is_empty()) {
        Some(user) => {
            let root = bundle
                .pointer("/root/path")
                .and_then(Value::as_str)
                .map(|p| config.parent().unwrap_or(Path::new("/")).join(p))
                .ok_or_else(|| {
                    BuildError::Engine(Error::Internal("container config has no root path".into()))
                })?;
            let resolved = spec::resolve_user(&root, user, &rec.spec.host.group_add)
                .map_err(|e| BuildError::Start(e.to_string()))?;
            Some(resolved)
        }
        None => None,
    };
    let env_sets_home = rec.env.iter().any(|e| env_key(e) == "HOME");
    let caps = spec.privileged.then(privileged_capabilities);
    exec_process(&bundle, spec, user.as_ref(), env_sets_home, caps.as_deref())
        .map_err(BuildError::Engine)
}

/// Every capability the host's bounding set allows (what `--privileged` grants).
fn privileged_capabilities() -> Vec<&'static str> {
    let all = spec::capability_set(&[], &[], true).unwrap_or_else(|_| spec::all_capabilities());
    let bound = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| spec::bounding_set_from_status(&status, "CapBnd"));
    match bound {
        Some(bound) => all
            .into_iter()
            .filter(|c| spec::capability_mask(&[c]) & bound != 0)
            .collect(),
        None => all,
    }
}

fn env_key(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(k, _)| k)
}

/// The exec's OCI process: the container's process (capabilities, rlimits,
/// noNewPrivileges, AppArmor, user, env, cwd) with the exec's command, terminal, env (the
/// exec's entries win; a bare `KEY` removes it, as moby's `ReplaceOrAppendEnvValues`), working
/// directory and user applied; `TERM=xterm` with a TTY, `HOME` of the exec's user unless the
/// container's env sets it; `caps` (privileged) replace the bounding, effective and
/// permitted sets, and AppArmor becomes `unconfined` (moby `execSetPlatformOpt`).
pub(crate) fn exec_process(
    bundle: &Value,
    spec: &ExecSpec,
    user: Option<&ResolvedUser>,
    env_sets_home: bool,
    caps: Option<&[&str]>,
) -> Result<Value> {
    let mut process = bundle
        .get("process")
        .filter(|p| p.is_object())
        .cloned()
        .ok_or_else(|| Error::Internal("container config has no process".into()))?;
    let Some(object) = process.as_object_mut() else {
        return Err(Error::Internal("container config has no process".into()));
    };
    object.remove("consoleSize");
    object.insert("terminal".into(), Value::Bool(spec.tty));
    object.insert("args".into(), serde_json::json!(spec.cmd));
    let mut env: Vec<String> = object
        .get("env")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if spec.tty && !env.iter().any(|e| env_key(e) == "TERM") {
        env.push("TERM=xterm".into());
    }
    if let (Some(user), false) = (user, env_sets_home) {
        set_env(&mut env, &format!("HOME={}", user.home));
    }
    for entry in &spec.env {
        if entry.contains('=') {
            set_env(&mut env, entry);
        } else {
            env.retain(|e| env_key(e) != entry);
        }
    }
    object.insert("env".into(), serde_json::json!(env));
    if let Some(dir) = spec.working_dir.as_deref().filter(|d| !d.is_empty()) {
        object.insert("cwd".into(), Value::String(dir.to_owned()));
    }
    if let Some(user) = user {
        let mut value = object
            .get("user")
            .cloned()
            .unwrap_or_else(|| serde_json::json!({}));
        value["uid"] = user.uid.into();
        value["gid"] = user.gid.into();
        if user.additional_gids.is_empty() {
            if let Some(map) = value.as_object_mut() {
                map.remove("additionalGids");
            }
        } else {
            value["additionalGids"] = serde_json::json!(user.additional_gids);
        }
        object.insert("user".into(), value);
    }
    if let Some(caps) = caps {
        let mut value = object
            .get("capabilities")
            .cloned()
            .unwrap_or_else(|| serde_json::json!({}));
        for set in ["bounding", "effective", "permitted"] {
            value[set] = serde_json::json!(caps);
        }
        object.insert("capabilities".into(), value);
        if object.contains_key("apparmorProfile") {
            object.insert("apparmorProfile".into(), Value::String("unconfined".into()));
        }
    }
    Ok(process)
}

/// Sets `KEY=value`, replacing an entry with the same key.
fn set_env(env: &mut Vec<String>, entry: &str) {
    let key = env_key(entry);
    match env.iter_mut().find(|e| env_key(e) == key) {
        Some(existing) => *existing = entry.to_owned(),
        None => env.push(entry.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bundle() -> Value {
        json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": false,
                "consoleSize": {"height": 1, "width": 1},
                "user": {"uid": 0, "gid": 0, "additionalGids": [10], "umask": 18},
                "args": ["sleep", "100"],
                "env": ["PATH=/usr/bin:/bin", "HOSTNAME=abc", "A=1", "HOME=/root"],
                "cwd": "/srv",
                "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]},
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                "noNewPrivileges": true,
                "apparmorProfile": "docker-default",
            },
            "root": {"path": "/rootfs"},
        })
    }

    fn exec(cmd: &[&str]) -> ExecSpec {
        ExecSpec {
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            attach_stdout: true,
            attach_stderr: true,
            ..ExecSpec::default()
        }
    }

    #[test]
    fn takes_the_containers_process_and_applies_the_command() {
        let p = exec_process(&bundle(), &exec(&["ls", "-l"]), None, false, None).unwrap();
        assert_eq!(p["args"], json!(["ls", "-l"]));
        assert_eq!(p["terminal"], json!(false));
        assert!(p.get("consoleSize").is_none());
        assert_eq!(p["cwd"], json!("/srv"));
        assert_eq!(
            p["user"],
            json!({"uid": 0, "gid": 0, "additionalGids": [10], "umask": 18})
        );
        assert_eq!(
            p["env"],
            json!(["PATH=/usr/bin:/bin", "HOSTNAME=abc", "A=1", "HOME=/root"])
        );
        assert_eq!(p["rlimits"], bundle()["process"]["rlimits"]);
        assert_eq!(p["noNewPrivileges"], json!(true));
        assert_eq!(p["capabilities"]["effective"], json!(["CAP_KILL"]));
        assert_eq!(p["apparmorProfile"], json!("docker-default"));
    }

    #[test]
    fn exec_env_wins_and_bare_keys_unset() {
        let mut spec = exec(&["env"]);
        spec.env = vec!["A=2".into(), "B=3".into(), "HOSTNAME".into()];
        spec.tty = true;
        spec.working_dir = Some("/tmp".into());
        let p = exec_process(&bundle(), &spec, None, false, None).unwrap();
        assert_eq!(
            p["env"],
            json!([
                "PATH=/usr/bin:/bin",
                "A=2",
                "HOME=/root",
                "TERM=xterm",
                "B=3"
            ])
        );
        assert_eq!(p["terminal"], json!(true));
        assert_eq!(p["cwd"], json!("/tmp"));
    }

    #[test]
    fn user_replaces_ids_groups_and_home() {
        let user = ResolvedUser {
            uid: 65534,
            gid: 65534,
            additional_gids: vec![65534],
            home: "/nonexistent".into(),
        };
        let p = exec_process(&bundle(), &exec(&["id"]), Some(&user), false, None).unwrap();
        assert_eq!(
            p["user"],
            json!({"uid": 65534, "gid": 65534, "additionalGids": [65534], "umask": 18})
        );
        assert!(p["env"]
            .as_array()
            .unwrap()
            .contains(&json!("HOME=/nonexistent")));
        // A HOME the container set explicitly stays.
        let p = exec_process(&bundle(), &exec(&["id"]), Some(&user), true, None).unwrap();
        assert!(p["env"].as_array().unwrap().contains(&json!("HOME=/root")));
        let bare = ResolvedUser {
            uid: 5,
            gid: 5,
            additional_gids: vec![],
            home: "/".into(),
        };
        let p = exec_process(&bundle(), &exec(&["id"]), Some(&bare), false, None).unwrap();
        assert!(p["user"].get("additionalGids").is_none());
    }

    #[test]
    fn privileged_grants_the_given_capabilities_and_unconfines() {
        let caps = ["CAP_KILL", "CAP_SYS_ADMIN"];
        let p = exec_process(&bundle(), &exec(&["id"]), None, false, Some(&caps)).unwrap();
        for set in ["bounding", "effective", "permitted"] {
            assert_eq!(p["capabilities"][set], json!(caps), "{set}");
        }
        assert_eq!(p["apparmorProfile"], json!("unconfined"));
        let all = privileged_capabilities();
        assert!(all.contains(&"CAP_KILL"), "{all:?}");
    }

    #[test]
    fn a_config_without_process_is_an_error() {
        assert!(exec_process(&json!({"root": {}}), &exec(&["ls"]), None, false, None).is_err());
    }

    #[test]
    fn event_command_line_matches_docker() {
        let (exit, _) = watch::channel(None);
        let entry = ExecEntry {
            id: "e".into(),
            container: ContainerId::random(),
            spec: exec(&["pwd"]),
            serial: 0,
            run: Mutex::new(ExecRun::default()),
            exit,
        };
        // moby: "exec_create: " + entrypoint + " " + strings.Join(args, " ").
        assert_eq!(entry.command_line(), "pwd ");
        let mut spec = exec(&["sh", "-c", "exit 3"]);
        spec.tty = true;
        let entry = ExecEntry { spec, ..entry };
        assert_eq!(entry.command_line(), "sh -c exit 3");
        entry.finish(3);
        let state = entry.state();
        assert_eq!(
            (state.running, state.exit_code, state.tty),
            (false, Some(3), true)
        );
        assert_eq!(*entry.exit.borrow(), Some(3));
    }

    #[test]
    fn pruning_keeps_running_and_recent_sessions() {
        let mut execs = std::collections::BTreeMap::new();
        let gone = ContainerId::random();
        let live = ContainerId::random();
        // `code`: `None` running, `Some(None)` created and never started, `Some(Some(c))`
        // finished with `c`.
        let add = |execs: &mut std::collections::BTreeMap<String, Arc<ExecEntry>>,
                   id: String,
                   container: &ContainerId,
                   serial: u64,
                   code: Option<Option<i64>>| {
            let exit_code = code.flatten();
            let (exit, _) = watch::channel(exit_code);
            let run = ExecRun {
                started: code != Some(None),
                running: code.is_none(),
                exit_code,
                pid: 1,
            };
            execs.insert(
                id.clone(),
                Arc::new(ExecEntry {
                    id,
                    container: container.clone(),
                    spec: exec(&["x"]),
                    serial,
                    run: Mutex::new(run),
                    exit,
                }),
            );
        };
        add(&mut execs, "running-gone".into(), &gone, 0, None);
        add(&mut execs, "done-gone".into(), &gone, 1, Some(Some(0)));
        add(&mut execs, "unstarted-gone".into(), &gone, 2, Some(None));
        add(&mut execs, "unstarted-0".into(), &live, 3, Some(None));
        for n in 0..(MAX_IDLE as u64 + 5) {
            add(&mut execs, format!("done-{n}"), &live, n + 4, Some(Some(0)));
        }
        add(
            &mut execs,
            "unstarted-new".into(),
            &live,
            MAX_IDLE as u64 + 10,
            Some(None),
        );
        prune(&mut execs, |c| *c == live);
        assert!(execs.contains_key("running-gone"));
        assert!(!execs.contains_key("done-gone"));
        assert!(!execs.contains_key("unstarted-gone"));
        // Idle sessions are capped together, oldest first, whether they ran or not.
        assert!(!execs.contains_key("unstarted-0"));
        assert!(!execs.contains_key("done-0"));
        assert!(execs.contains_key(&format!("done-{}", MAX_IDLE as u64 + 4)));
        assert!(execs.contains_key("unstarted-new"));
        assert_eq!(execs.len(), MAX_IDLE + 1);
    }
}
