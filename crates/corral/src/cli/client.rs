//! Connection to the daemon, error wording, and registry credentials
//! (`$HOME/.corral/config.json`, docker's `auths` format).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use bollard::auth::DockerCredentials;
use bollard::Docker;
use serde_json::Value;

use super::http::{ApiError, RawClient};

/// Everything a command needs to talk to the daemon.
#[derive(Clone)]
pub(crate) struct Ctx {
    /// Typed client.
    pub(crate) docker: Docker,
    /// Same client without a response deadline, for calls that block by design (wait).
    pub(crate) docker_slow: Docker,
    /// Raw client for verbatim JSON and hijacked streams.
    pub(crate) raw: RawClient,
}

/// Exit status a command asks for without an error message (e.g. a container's code).
#[derive(Debug)]
pub(crate) struct Exit(pub(crate) u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for Exit {}

/// A failure that already chose its exit status (e.g. `run` → 125).
#[derive(Debug)]
pub(crate) struct StatusError {
    /// Exit status.
    pub(crate) code: u8,
    /// The message printed on stderr.
    pub(crate) message: String,
}

impl std::fmt::Display for StatusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StatusError {}

/// Turns `unix:///path` (or a bare absolute path) into the socket path.
pub(crate) fn socket_path(host: &str) -> anyhow::Result<PathBuf> {
    if let Some(p) = host.strip_prefix("unix://") {
        if p.is_empty() {
            anyhow::bail!("invalid host {host:?}: empty socket path");
        }
        return Ok(PathBuf::from(p));
    }
    if host.starts_with('/') {
        return Ok(PathBuf::from(host));
    }
    anyhow::bail!("unsupported host {host:?}: only unix:// sockets are supported")
}

impl Ctx {
    /// Connects to `host` and negotiates the API version.
    pub(crate) async fn connect(host: &str) -> anyhow::Result<Ctx> {
        let path = socket_path(host)?;
        let path_str = path.to_string_lossy().to_string();
        let cannot = || {
            anyhow::anyhow!("Cannot connect to the Corral daemon at {host}. Is the daemon running?")
        };
        let docker = Docker::connect_with_unix(&path_str, 600, bollard::API_DEFAULT_VERSION)
            .map_err(|_| cannot())?;
        let docker = docker.negotiate_version().await.map_err(|e| match e {
            bollard::errors::Error::DockerResponseServerError {
                status_code,
                message,
            } => anyhow::Error::new(ApiError {
                status: status_code,
                message,
            }),
            _ => cannot(),
        })?;
        let v = docker.client_version();
        let raw = RawClient::new(path, &format!("{}.{}", v.major_version, v.minor_version));
        let docker_slow = docker
            .clone()
            .with_timeout(Duration::from_secs(60 * 60 * 24 * 365));
        Ok(Ctx {
            docker,
            docker_slow,
            raw,
        })
    }
}

/// Converts a bollard error into the docker CLI's wording.
pub(crate) fn from_bollard(e: bollard::errors::Error) -> anyhow::Error {
    match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => anyhow::Error::new(ApiError {
            status: status_code,
            message,
        }),
        other => anyhow::Error::new(other),
    }
}

/// The HTTP status of an API error, if `e` is one.
pub(crate) fn api_status(e: &anyhow::Error) -> Option<u16> {
    e.downcast_ref::<ApiError>().map(|a| a.status)
}

/// The file credentials are stored in.
pub(crate) fn config_path(home: &Path) -> PathBuf {
    home.join(".corral").join("config.json")
}

fn home() -> anyhow::Result<PathBuf> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .ok_or_else(|| anyhow::anyhow!("$HOME is not set"))
}

/// Docker Hub's key in `auths`.
pub(crate) const DOCKER_HUB: &str = "https://index.docker.io/v1/";

/// The registry a reference points at, as keyed in `auths` (docker's `ParseNormalizedNamed`).
pub(crate) fn registry_of(reference: &str) -> String {
    match reference.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            if first == "docker.io" || first == "index.docker.io" || first == "registry-1.docker.io"
            {
                DOCKER_HUB.to_string()
            } else {
                first.to_string()
            }
        }
        _ => DOCKER_HUB.to_string(),
    }
}

/// Normalises a `login` server argument to its `auths` key.
pub(crate) fn server_key(server: &str) -> String {
    let s = server
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    match s {
        "" | "docker.io" | "index.docker.io" | "registry-1.docker.io" | "index.docker.io/v1" => {
            DOCKER_HUB.to_string()
        }
        other => other.to_string(),
    }
}

/// Reads stored credentials for `registry` from a config document.
pub(crate) fn lookup_auth(config: &Value, registry: &str) -> Option<DockerCredentials> {
    let auths = config.get("auths")?.as_object()?;
    let entry = auths.get(registry).or_else(|| {
        auths
            .iter()
            .find(|(k, _)| server_key(k) == registry)
            .map(|(_, v)| v)
    })?;
    let encoded = entry.get("auth")?.as_str()?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some(DockerCredentials {
        username: Some(user.to_string()),
        password: Some(pass.to_string()),
        serveraddress: Some(registry.to_string()),
        ..Default::default()
    })
}

/// Adds or replaces `registry`'s entry, keeping other keys of the document.
pub(crate) fn store_auth(config: &mut Value, registry: &str, user: &str, password: &str) {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    if !config.is_object() {
        *config = Value::Object(serde_json::Map::new());
    }
    let Some(root) = config.as_object_mut() else {
        return;
    };
    let auths = root
        .entry("auths")
        .or_insert_with(|| Value::Object(serde_json::Map::new()));
    if !auths.is_object() {
        *auths = Value::Object(serde_json::Map::new());
    }
    if let Some(map) = auths.as_object_mut() {
        let mut entry = BTreeMap::new();
        entry.insert("auth", auth);
        map.insert(
            registry.to_string(),
            serde_json::to_value(entry).unwrap_or(Value::Null),
        );
    }
}

/// Loads the config document (empty when missing).
pub(crate) fn load_config() -> anyhow::Result<Value> {
    let path = config_path(&home()?);
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok(serde_json::from_str(&s)
            .map_err(|e| anyhow::anyhow!("loading config file {}: {e}", path.display()))?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok(Value::Object(serde_json::Map::new()))
        }
        Err(e) => Err(anyhow::anyhow!(
            "loading config file {}: {e}",
            path.display()
        )),
    }
}

/// Writes the config document atomically with mode 0600.
pub(crate) fn save_config(config: &Value) -> anyhow::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = config_path(&home()?);
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(".config.json.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(serde_json::to_string_pretty(config)?.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Credentials for pulling or pushing `reference`, if stored.
pub(crate) fn credentials_for(reference: &str) -> Option<DockerCredentials> {
    let config = load_config().ok()?;
    lookup_auth(&config, &registry_of(reference))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_path_accepts_unix_only() {
        assert_eq!(
            socket_path("unix:///run/corral/docker.sock").unwrap(),
            PathBuf::from("/run/corral/docker.sock")
        );
        assert_eq!(
            socket_path("/tmp/x.sock").unwrap(),
            PathBuf::from("/tmp/x.sock")
        );
        assert!(socket_path("tcp://1.2.3.4:2375")
            .unwrap_err()
            .to_string()
            .contains("only unix://"));
        assert!(socket_path("unix://").is_err());
    }

    #[test]
    fn registry_of_follows_docker_normalisation() {
        assert_eq!(registry_of("busybox"), DOCKER_HUB);
        assert_eq!(registry_of("library/busybox:1"), DOCKER_HUB);
        assert_eq!(registry_of("localhost:5000/x"), "localhost:5000");
        assert_eq!(registry_of("ghcr.io/a/b"), "ghcr.io");
        assert_eq!(registry_of("docker.io/library/x"), DOCKER_HUB);
        assert_eq!(server_key("https://localhost:5000/"), "localhost:5000");
        assert_eq!(server_key("docker.io"), DOCKER_HUB);
    }

    #[test]
    fn auth_round_trips_through_config_document() {
        let mut cfg = serde_json::json!({"credsStore": "x", "auths": {"other": {"auth": "eDp5"}}});
        store_auth(&mut cfg, "localhost:5000", "user", "p:ss");
        assert_eq!(cfg["auths"]["localhost:5000"]["auth"], "dXNlcjpwOnNz");
        assert_eq!(cfg["credsStore"], "x");
        let c = lookup_auth(&cfg, "localhost:5000").unwrap();
        assert_eq!(
            (c.username.as_deref(), c.password.as_deref()),
            (Some("user"), Some("p:ss"))
        );
        assert_eq!(
            lookup_auth(&cfg, "other").unwrap().username.as_deref(),
            Some("x")
        );
        assert!(lookup_auth(&cfg, "nowhere").is_none());
    }
}
