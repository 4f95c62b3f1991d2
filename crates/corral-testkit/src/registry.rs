//! A throw-away `docker-registry` (distribution 2.x) on 127.0.0.1, and pushes into it with
//! skopeo.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tempfile::TempDir;

use crate::process::{http_get_tcp, run_with_timeout, terminate, wait_ready};

/// Debian's registry binary (package `docker-registry`).
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
/// skopeo, used to push OCI layouts.
pub const SKOPEO_BIN: &str = "/usr/bin/skopeo";

/// Manifest format a layout is pushed as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ManifestFormat {
    /// Keep the OCI manifest (`application/vnd.oci.image.manifest.v1+json`).
    #[default]
    Oci,
    /// Convert to Docker image manifest v2 schema 2
    /// (`application/vnd.docker.distribution.manifest.v2+json`).
    DockerV2S2,
}

/// A running registry. Killed and its storage deleted on drop.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    port: u16,
    credentials: Option<(String, String)>,
    dir: TempDir,
}

impl Registry {
    /// Starts an anonymous registry.
    ///
    /// # Errors
    /// When the binary is missing or it does not answer `GET /v2/` within 20 s.
    pub fn start() -> Result<Self> {
        Self::start_inner(None)
    }

    /// Starts a registry that requires HTTP basic auth with `user`/`password` (htpasswd
    /// file with a bcrypt hash, generated in process).
    ///
    /// # Errors
    /// As [`Registry::start`].
    pub fn start_with_basic_auth(user: &str, password: &str) -> Result<Self> {
        Self::start_inner(Some((user.to_owned(), password.to_owned())))
    }

    fn start_inner(credentials: Option<(String, String)>) -> Result<Self> {
        if !Path::new(REGISTRY_BIN).exists() {
            bail!("{REGISTRY_BIN} not found: install Debian package docker-registry");
        }
        let mut last_err = None;
        // The free-port probe can race with another process: retry a few times.
        for _ in 0..3 {
            match Self::try_start(credentials.clone()) {
                Ok(r) => return Ok(r),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("registry did not start")))
    }

    fn try_start(credentials: Option<(String, String)>) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("corral-reg-")
            .tempdir()
            .context("registry tempdir")?;
        let port = free_port()?;
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage)?;
        let mut config = format!(
            "version: 0.1\n\
             log:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: corral-testkit\n",
            storage.display()
        );
        if let Some((user, password)) = &credentials {
            let hash = bcrypt::hash(password, 4).context("bcrypt password")?;
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{user}:{hash}\n"))?;
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: corral-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config)?;
        let log_path = dir.path().join("registry.log");
        let log = File::create(&log_path)?;
        let mut child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("spawn docker-registry")?;
        let addr = format!("127.0.0.1:{port}");
        let ready = wait_ready(
            &mut child,
            "docker-registry",
            &log_path,
            Duration::from_secs(20),
            || matches!(http_get_tcp(&addr, "/v2/"), Ok((200 | 401, _))),
        );
        if let Err(e) = ready {
            terminate(&mut child, Duration::from_secs(1));
            return Err(e);
        }
        tracing::debug!(port, "registry started");
        Ok(Registry {
            child,
            port,
            credentials,
            dir,
        })
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`, the registry host for image references and `--insecure-registry`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:<port>/<name_tag>`.
    pub fn image_ref(&self, name_tag: &str) -> String {
        format!("{}/{name_tag}", self.host())
    }

    /// The basic-auth credentials, if the registry requires them.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// Registry storage root (blobs and repositories live under `docker/registry/v2`).
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Pushes the OCI layout in `layout` (its only, or only untagged, manifest) as
    /// `name_tag` and returns the full reference `127.0.0.1:<port>/<name_tag>`.
    ///
    /// # Errors
    /// When skopeo fails (its stderr is in the message).
    pub fn push_oci_layout(
        &self,
        layout: &Path,
        name_tag: &str,
        format: ManifestFormat,
    ) -> Result<String> {
        let dest = self.image_ref(name_tag);
        let mut cmd = Command::new(SKOPEO_BIN);
        cmd.args(["--insecure-policy", "copy", "--dest-tls-verify=false"]);
        if format == ManifestFormat::DockerV2S2 {
            cmd.args(["--format", "v2s2"]);
        }
        if let Some((user, password)) = &self.credentials {
            cmd.arg(format!("--dest-creds={user}:{password}"));
        }
        cmd.arg(format!("oci:{}", layout.display()))
            .arg(format!("docker://{dest}"));
        let out = run_with_timeout(cmd, None, Duration::from_secs(120))?;
        if !out.success() {
            bail!("skopeo push failed: {out}");
        }
        Ok(dest)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(2));
        tracing::debug!(dir = %self.dir.path().display(), "registry stopped");
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// # Errors
/// When binding fails.
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("bind probe socket")?;
    Ok(l.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BusyboxImage;

    fn inspect(reg: &Registry, name_tag: &str, creds: Option<&str>) -> crate::Output {
        let mut cmd = Command::new(SKOPEO_BIN);
        cmd.args([
            "--insecure-policy",
            "inspect",
            "--raw",
            "--tls-verify=false",
        ]);
        if let Some(c) = creds {
            cmd.arg(format!("--creds={c}"));
        }
        cmd.arg(format!("docker://{}", reg.image_ref(name_tag)));
        run_with_timeout(cmd, None, Duration::from_secs(60)).unwrap()
    }

    #[test]
    fn pushes_oci_and_docker_schema2_manifests() {
        let layout = BusyboxImage::new().build_temp().unwrap();
        let reg = Registry::start().unwrap();
        let r = reg
            .push_oci_layout(layout.dir(), "bb/oci:v1", ManifestFormat::Oci)
            .unwrap();
        assert_eq!(r, format!("127.0.0.1:{}/bb/oci:v1", reg.port()));
        reg.push_oci_layout(layout.dir(), "bb/docker:v1", ManifestFormat::DockerV2S2)
            .unwrap();

        let oci = inspect(&reg, "bb/oci:v1", None);
        let oci: serde_json::Value = serde_json::from_str(oci.ok().out()).unwrap();
        assert_eq!(oci["mediaType"], crate::MEDIA_TYPE_MANIFEST);
        // Pushed unchanged: the registry serves the very manifest the layout holds.
        assert_eq!(
            oci["config"]["digest"],
            layout.config_digest.as_str(),
            "{oci}"
        );
        let v2 = inspect(&reg, "bb/docker:v1", None);
        let v2: serde_json::Value = serde_json::from_str(v2.ok().out()).unwrap();
        assert_eq!(
            v2["mediaType"],
            "application/vnd.docker.distribution.manifest.v2+json"
        );
        assert_eq!(
            v2["layers"][0]["mediaType"],
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        );
    }

    #[test]
    fn basic_auth_registry_rejects_anonymous_pulls() {
        let layout = BusyboxImage::new().build_temp().unwrap();
        let reg = Registry::start_with_basic_auth("tester", "s3cret").unwrap();
        assert_eq!(http_get_tcp(&reg.host(), "/v2/").unwrap().0, 401);
        reg.push_oci_layout(layout.dir(), "private:v1", ManifestFormat::Oci)
            .unwrap();
        inspect(&reg, "private:v1", None).failed();
        inspect(&reg, "private:v1", Some("tester:wrong")).failed();
        inspect(&reg, "private:v1", Some("tester:s3cret")).ok();
    }

    #[test]
    fn drop_stops_the_registry() {
        let reg = Registry::start().unwrap();
        let host = reg.host();
        let storage = reg.storage_dir();
        assert!(storage.is_dir());
        drop(reg);
        assert!(http_get_tcp(&host, "/v2/").is_err());
        assert!(!storage.exists());
    }
}
