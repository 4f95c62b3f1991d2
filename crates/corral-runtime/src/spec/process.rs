//! The container process: entrypoint/cmd, environment, working directory and user spec, merged
//! from the image config and the container spec with Docker's rules.

use std::collections::BTreeMap;

use corral_core::ContainerSpec;
use serde_json::Value;

use super::error::{Result, SpecError};
use super::rootfs::clean_abs;

/// `PATH` when neither the image nor the container sets one (Docker's `DefaultPathEnv`).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The parts of an OCI/Docker image config (`config` object) that shape a container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// `Entrypoint`; `None` when absent or null.
    pub entrypoint: Option<Vec<String>>,
    /// `Cmd`; `None` when absent or null.
    pub cmd: Option<Vec<String>>,
    /// `Env` entries, `KEY=value`.
    pub env: Vec<String>,
    /// `WorkingDir`, when non-empty.
    pub working_dir: Option<String>,
    /// `User`, when non-empty.
    pub user: Option<String>,
    /// `StopSignal`, when non-empty.
    pub stop_signal: Option<String>,
    /// Keys of `Volumes`: mount points for anonymous volumes.
    pub volumes: Vec<String>,
    /// `Labels`.
    pub labels: BTreeMap<String, String>,
    /// Keys of `ExposedPorts` (`80/tcp`).
    pub exposed_ports: Vec<String>,
}

/// The process part of a container, resolved but not yet tied to a uid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessArgs {
    /// argv: entrypoint followed by cmd.
    pub args: Vec<String>,
    /// The process environment: defaults (`PATH`, `HOSTNAME` when the spec names one, `TERM`
    /// with a tty) overridden by the merged container + image env. `HOME` is added later,
    /// from the resolved user, by [`super::build_spec`].
    pub env: Vec<String>,
    /// Absolute, cleaned working directory.
    pub cwd: String,
    /// `user`, `uid`, `user:group` or `uid:gid`; empty for root.
    pub user_spec: String,
}

// === impl ImageConfig ===

impl ImageConfig {
    /// Reads the config from an image config document. Accepts the whole OCI image config
    /// (with a `config` object), Docker's inspect form (`Config`), or the inner object itself.
    /// `null` gives an empty config.
    ///
    /// # Errors
    /// [`SpecError::InvalidImageConfig`] when a field has the wrong JSON type.
    pub fn from_json(doc: &Value) -> Result<Self> {
        let cfg = match doc {
            Value::Null => return Ok(Self::default()),
            Value::Object(map) => match map.get("config").or_else(|| map.get("Config")) {
                Some(Value::Null) => return Ok(Self::default()),
                Some(inner) => inner,
                None => doc,
            },
            _ => return Err(invalid("image config is not a JSON object")),
        };
        let Value::Object(cfg) = cfg else {
            return Err(invalid("config is not a JSON object"));
        };
        let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());
        Ok(Self {
            entrypoint: str_list(cfg.get("Entrypoint"), "Entrypoint")?,
            cmd: str_list(cfg.get("Cmd"), "Cmd")?,
            env: str_list(cfg.get("Env"), "Env")?.unwrap_or_default(),
            working_dir: nonempty(string(cfg.get("WorkingDir"), "WorkingDir")?),
            user: nonempty(string(cfg.get("User"), "User")?),
            stop_signal: nonempty(string(cfg.get("StopSignal"), "StopSignal")?),
            volumes: keys(cfg.get("Volumes"), "Volumes")?,
            labels: match cfg.get("Labels") {
                None | Some(Value::Null) => BTreeMap::new(),
                Some(Value::Object(m)) => m
                    .iter()
                    .map(|(k, v)| match v {
                        Value::String(s) => Ok((k.clone(), s.clone())),
                        _ => Err(invalid(&format!("label {k} is not a string"))),
                    })
                    .collect::<Result<_>>()?,
                Some(_) => return Err(invalid("Labels is not an object")),
            },
            exposed_ports: keys(cfg.get("ExposedPorts"), "ExposedPorts")?,
        })
    }
}

/// Resolves the process of a container from its spec and its image config with Docker's
/// rules (moby `daemon.merge` and `getEntrypointAndArgs`):
///
/// - an entrypoint in the spec replaces the image's; `Some(vec![])` (or `[""]`) clears it;
/// - when the spec's entrypoint is empty or unset and its cmd is empty or unset, the image's
///   cmd is used; a non-empty spec entrypoint without a cmd runs with no cmd at all;
/// - a cmd in the spec replaces the image's;
/// - env: container entries override image entries with the same key; `PATH` defaults to
///   [`DEFAULT_PATH`]; `HOSTNAME` is set when the spec names a hostname; `TERM=xterm` with a
///   tty; an entry without `=` unsets the key;
/// - the working directory is the spec's, else the image's, else `/`, and must be absolute.
///
/// # Errors
/// [`SpecError::NoCommand`] when there is nothing to run, [`SpecError::RelativeWorkdir`],
/// [`SpecError::InvalidImageConfig`].
pub fn resolve_process(spec: &ContainerSpec, image_config: &Value) -> Result<ProcessArgs> {
    let image = ImageConfig::from_json(image_config)?;
    let (entrypoint, cmd) = entrypoint_and_cmd(spec, &image);
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.first().is_none_or(|a| a.is_empty()) {
        return Err(SpecError::NoCommand);
    }

    let mut defaults = vec![format!("PATH={DEFAULT_PATH}")];
    if let Some(h) = spec.hostname.as_deref().filter(|h| !h.is_empty()) {
        defaults.push(format!("HOSTNAME={h}"));
    }
    if spec.tty {
        defaults.push("TERM=xterm".to_owned());
    }
    let env = replace_or_append_env(defaults, &merge_env(&image.env, &spec.env));

    let cwd = match spec
        .working_dir
        .as_deref()
        .filter(|w| !w.is_empty())
        .or(image.working_dir.as_deref())
    {
        None => "/".to_owned(),
        Some(w) if w.starts_with('/') => clean_abs(w),
        Some(w) => {
            return Err(SpecError::RelativeWorkdir { path: w.to_owned() });
        }
    };
    let user_spec = spec
        .user
        .clone()
        .filter(|u| !u.is_empty())
        .or(image.user)
        .unwrap_or_default();
    Ok(ProcessArgs {
        args,
        env,
        cwd,
        user_spec,
    })
}

/// Docker's `Config.Env` of a container: the container's entries, then the image's entries
/// whose key the container does not set.
pub fn merge_env(image_env: &[String], container_env: &[String]) -> Vec<String> {
    if container_env.is_empty() {
        return image_env.to_vec();
    }
    let mut out = container_env.to_vec();
    for e in image_env {
        if !container_env.iter().any(|c| env_key(c) == env_key(e)) {
            out.push(e.clone());
        }
    }
    out
}

/// Sets `KEY=value` in `env`, replacing an existing entry for `KEY`.
pub(crate) fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    match env.iter_mut().find(|e| env_key(e) == key) {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

pub(crate) fn env_key(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(k, _)| k)
}

/// moby `ReplaceOrAppendEnvValues`: overrides replace defaults by key, new keys are appended,
/// and a bare `KEY` removes it.
fn replace_or_append_env(mut defaults: Vec<String>, overrides: &[String]) -> Vec<String> {
    let mut removed: Vec<&str> = Vec::new();
    for o in overrides {
        if o.contains('=') {
            set_env(
                &mut defaults,
                env_key(o),
                o.split_once('=').map_or("", |(_, v)| v),
            );
            removed.retain(|k| *k != env_key(o));
        } else {
            removed.push(o);
        }
    }
    defaults.retain(|e| !removed.contains(&env_key(e)));
    defaults
}

fn entrypoint_and_cmd(spec: &ContainerSpec, image: &ImageConfig) -> (Vec<String>, Vec<String>) {
    // `--entrypoint ""` reaches the API as `[""]`; it means "no entrypoint".
    let user_ep: Option<Vec<String>> = spec.entrypoint.as_ref().map(|ep| {
        if ep.len() == 1 && ep[0].is_empty() {
            Vec::new()
        } else {
            ep.clone()
        }
    });
    let user_cmd = spec.cmd.clone().unwrap_or_default();
    match user_ep {
        Some(ep) if !ep.is_empty() => (ep, user_cmd),
        ep => {
            let cmd = if user_cmd.is_empty() {
                image.cmd.clone().unwrap_or_default()
            } else {
                user_cmd
            };
            let ep = match ep {
                Some(cleared) => cleared,
                None => image.entrypoint.clone().unwrap_or_default(),
            };
            (ep, cmd)
        }
    }
}

fn invalid(reason: &str) -> SpecError {
    SpecError::InvalidImageConfig {
        reason: reason.to_owned(),
    }
}

fn string(v: Option<&Value>, field: &str) -> Result<Option<String>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(&format!("{field} is not a string"))),
    }
}

fn str_list(v: Option<&Value>, field: &str) -> Result<Option<Vec<String>>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        // Docker's StrSlice also accepts a single string.
        Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                _ => Err(invalid(&format!("{field} has a non-string item"))),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some),
        Some(_) => Err(invalid(&format!("{field} is not a list of strings"))),
    }
}

fn keys(v: Option<&Value>, field: &str) -> Result<Vec<String>> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(m)) => Ok(m.keys().cloned().collect()),
        Some(_) => Err(invalid(&format!("{field} is not an object"))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sv(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn spec(ep: Option<&[&str]>, cmd: Option<&[&str]>) -> ContainerSpec {
        ContainerSpec {
            entrypoint: ep.map(sv),
            cmd: cmd.map(sv),
            ..Default::default()
        }
    }

    fn image(ep: Option<&[&str]>, cmd: Option<&[&str]>) -> Value {
        json!({"config": {"Entrypoint": ep, "Cmd": cmd, "Env": ["PATH=/img/bin", "A=1"]}})
    }

    fn args(s: &ContainerSpec, img: &Value) -> Result<Vec<String>> {
        resolve_process(s, img).map(|p| p.args)
    }

    #[test]
    fn entrypoint_cmd_matrix_follows_docker() {
        let img = image(Some(&["/ep", "-x"]), Some(&["img-cmd"]));
        // Nothing given: image entrypoint + image cmd.
        assert_eq!(
            args(&spec(None, None), &img).unwrap(),
            sv(&["/ep", "-x", "img-cmd"])
        );
        // Cmd only: image entrypoint + new cmd.
        assert_eq!(
            args(&spec(None, Some(&["new"])), &img).unwrap(),
            sv(&["/ep", "-x", "new"])
        );
        // Entrypoint only: the image cmd is NOT used.
        assert_eq!(
            args(&spec(Some(&["/new-ep"]), None), &img).unwrap(),
            sv(&["/new-ep"])
        );
        // Entrypoint and cmd: both replace.
        assert_eq!(
            args(&spec(Some(&["/new-ep"]), Some(&["a", "b"])), &img).unwrap(),
            sv(&["/new-ep", "a", "b"])
        );
        // Cleared entrypoint: the image cmd alone (docker run --entrypoint "" img).
        assert_eq!(
            args(&spec(Some(&[]), None), &img).unwrap(),
            sv(&["img-cmd"])
        );
        assert_eq!(
            args(&spec(Some(&[""]), None), &img).unwrap(),
            sv(&["img-cmd"])
        );
        // Cleared entrypoint with a cmd: the cmd alone.
        assert_eq!(
            args(&spec(Some(&[]), Some(&["sh", "-c", "x"])), &img).unwrap(),
            sv(&["sh", "-c", "x"])
        );
        // Empty cmd counts as unset.
        assert_eq!(
            args(&spec(None, Some(&[])), &img).unwrap(),
            sv(&["/ep", "-x", "img-cmd"])
        );
    }

    #[test]
    fn image_without_entrypoint_runs_cmd() {
        let img = image(None, Some(&["sh"]));
        assert_eq!(args(&spec(None, None), &img).unwrap(), sv(&["sh"]));
        assert_eq!(
            args(&spec(None, Some(&["ls", "/"])), &img).unwrap(),
            sv(&["ls", "/"])
        );
    }

    #[test]
    fn nothing_to_run_is_no_command_specified() {
        let img = image(None, None);
        let err = resolve_process(&spec(None, None), &img).unwrap_err();
        assert_eq!(err.to_string(), "no command specified");
        assert_eq!(err.kind(), corral_core::ErrorKind::InvalidInput);
        let img = image(Some(&["/ep"]), Some(&["x"]));
        assert!(matches!(
            resolve_process(&spec(Some(&[]), None), &image(Some(&["/ep"]), None)),
            Err(SpecError::NoCommand)
        ));
        assert!(resolve_process(&spec(Some(&[""]), Some(&[])), &img).is_ok());
    }

    #[test]
    fn env_container_overrides_image_and_path_defaults() {
        let img = json!({"config": {"Cmd": ["x"], "Env": ["PATH=/img/bin", "A=1", "B=2"]}});
        let mut s = spec(None, None);
        s.env = sv(&["A=override", "C=3"]);
        s.hostname = Some("box".into());
        let p = resolve_process(&s, &img).unwrap();
        assert_eq!(
            p.env,
            sv(&["PATH=/img/bin", "HOSTNAME=box", "A=override", "C=3", "B=2"])
        );
        assert_eq!(
            merge_env(&sv(&["PATH=/img/bin", "A=1", "B=2"]), &s.env),
            sv(&["A=override", "C=3", "PATH=/img/bin", "B=2"])
        );

        let bare = json!({"config": {"Cmd": ["x"]}});
        let mut s = spec(None, None);
        s.tty = true;
        let p = resolve_process(&s, &bare).unwrap();
        assert_eq!(p.env, sv(&[&format!("PATH={DEFAULT_PATH}"), "TERM=xterm"]));
    }

    #[test]
    fn env_entry_without_value_unsets() {
        let img = json!({"config": {"Cmd": ["x"], "Env": ["FOO=1"]}});
        let mut s = spec(None, None);
        s.env = sv(&["FOO", "PATH"]);
        let p = resolve_process(&s, &img).unwrap();
        assert_eq!(p.env, Vec::<String>::new());
    }

    #[test]
    fn workdir_and_user_fall_back_to_image() {
        let img = json!({"config": {"Cmd": ["x"], "WorkingDir": "/srv//app/", "User": "app"}});
        let p = resolve_process(&spec(None, None), &img).unwrap();
        assert_eq!((p.cwd.as_str(), p.user_spec.as_str()), ("/srv/app", "app"));
        let mut s = spec(None, None);
        s.working_dir = Some("/w".into());
        s.user = Some("0:0".into());
        let p = resolve_process(&s, &img).unwrap();
        assert_eq!((p.cwd.as_str(), p.user_spec.as_str()), ("/w", "0:0"));
        let p = resolve_process(&s, &json!({"config": {"Cmd": ["x"]}})).unwrap();
        assert_eq!(p.cwd, "/w");
        let p = resolve_process(&spec(None, None), &json!({"config": {"Cmd": ["x"]}})).unwrap();
        assert_eq!((p.cwd.as_str(), p.user_spec.as_str()), ("/", ""));
    }

    #[test]
    fn relative_workdir_is_rejected() {
        let mut s = spec(None, Some(&["x"]));
        s.working_dir = Some("rel".into());
        let err = resolve_process(&s, &Value::Null).unwrap_err();
        assert!(matches!(err, SpecError::RelativeWorkdir { .. }));
    }

    #[test]
    fn image_config_accepts_all_document_shapes() {
        let full = json!({"architecture": "amd64", "config": {
            "Entrypoint": "/single", "Cmd": null, "StopSignal": "SIGQUIT",
            "Volumes": {"/data": {}}, "Labels": {"a": "b"}, "ExposedPorts": {"80/tcp": {}}}});
        let c = ImageConfig::from_json(&full).unwrap();
        assert_eq!(c.entrypoint, Some(sv(&["/single"])));
        assert_eq!(c.cmd, None);
        assert_eq!(c.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(c.volumes, sv(&["/data"]));
        assert_eq!(c.labels.get("a").map(String::as_str), Some("b"));
        assert_eq!(c.exposed_ports, sv(&["80/tcp"]));
        let inspect = json!({"Config": {"Cmd": ["a"]}});
        assert_eq!(
            ImageConfig::from_json(&inspect).unwrap().cmd,
            Some(sv(&["a"]))
        );
        let inner = json!({"Cmd": ["b"]});
        assert_eq!(
            ImageConfig::from_json(&inner).unwrap().cmd,
            Some(sv(&["b"]))
        );
        assert_eq!(
            ImageConfig::from_json(&Value::Null).unwrap(),
            ImageConfig::default()
        );
        assert!(ImageConfig::from_json(&json!({"config": {"Cmd": 3}})).is_err());
        assert!(ImageConfig::from_json(&json!([1])).is_err());
    }
}
