//! One Rust API client (bollard over the unix socket), the same for every daemon:
//! `run --rm true` (create, start, wait, delete), and the list and inspect requests of
//! `docker ps -a` and `docker inspect`. No CLI start-up, no CLI round trips (version
//! negotiation, image inspect, attach) and no table rendering: what is measured is the
//! daemon's request plus a small, fixed client cost. These are the figures to hold against
//! the kernel floor sum (run) and against dockerd (list).

use std::path::Path;

use anyhow::{bail, Context, Result};
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use bollard::{Docker, API_DEFAULT_VERSION};
use tokio::time::Instant;
use tokio_stream::StreamExt;

use crate::engines::ms;

/// A client for one engine's socket with its own single-threaded runtime.
pub(crate) struct ApiClient {
    rt: tokio::runtime::Runtime,
    docker: Docker,
    name: &'static str,
}

impl ApiClient {
    /// Connects to `socket` (nothing is sent yet).
    pub(crate) fn new(name: &'static str, socket: &Path) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let path = socket.to_string_lossy().into_owned();
        let docker = rt.block_on(async {
            Docker::connect_with_unix(&path, 120, API_DEFAULT_VERSION)
                .context("connect to the engine socket")
        })?;
        Ok(ApiClient { rt, docker, name })
    }

    /// One `POST create` (network none), `POST start`, `POST wait`, `DELETE`; the wall time
    /// in milliseconds. Fails unless the container exited 0.
    pub(crate) fn run_true(&self, image: &str) -> Result<f64> {
        self.rt.block_on(async {
            let body = ContainerCreateBody {
                image: Some(image.to_owned()),
                cmd: Some(vec!["true".into()]),
                host_config: Some(HostConfig {
                    network_mode: Some("none".into()),
                    ..HostConfig::default()
                }),
                ..ContainerCreateBody::default()
            };
            let t = Instant::now();
            let id = self
                .docker
                .create_container(None, body)
                .await
                .with_context(|| format!("{}: POST /containers/create", self.name))?
                .id;
            self.docker
                .start_container(&id, None)
                .await
                .with_context(|| format!("{}: POST /containers/{id}/start", self.name))?;
            let opts = WaitContainerOptionsBuilder::new()
                .condition("not-running")
                .build();
            let mut wait = self.docker.wait_container(&id, Some(opts));
            let code = match wait.next().await {
                Some(Ok(r)) => r.status_code,
                Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
                Some(Err(e)) => {
                    return Err(e).with_context(|| format!("{}: wait {id}", self.name));
                }
                None => bail!("{}: wait {id}: no reply", self.name),
            };
            drop(wait);
            self.docker
                .remove_container(&id, Some(RemoveContainerOptionsBuilder::new().build()))
                .await
                .with_context(|| format!("{}: DELETE /containers/{id}", self.name))?;
            let elapsed = ms(t.elapsed());
            if code != 0 {
                bail!("{}: `true` exited {code}", self.name);
            }
            Ok(elapsed)
        })
    }

    /// One `GET /containers/json?all=1` (what `docker ps -a` asks), decoded by the client;
    /// the wall time in milliseconds. Fails when fewer than `at_least` containers are listed.
    pub(crate) fn list_all(&self, at_least: usize) -> Result<f64> {
        self.rt.block_on(async {
            let opts = ListContainersOptionsBuilder::new().all(true).build();
            let t = Instant::now();
            let list = self
                .docker
                .list_containers(Some(opts))
                .await
                .with_context(|| format!("{}: GET /containers/json?all=1", self.name))?;
            let elapsed = ms(t.elapsed());
            if list.len() < at_least {
                bail!(
                    "{}: GET /containers/json?all=1 listed {}, expected at least {at_least}",
                    self.name,
                    list.len()
                );
            }
            Ok(elapsed)
        })
    }

    /// One `GET /containers/{name}/json` (what `docker inspect` asks), decoded by the client;
    /// the wall time in milliseconds.
    pub(crate) fn inspect(&self, name: &str) -> Result<f64> {
        self.rt.block_on(async {
            let t = Instant::now();
            let c = self
                .docker
                .inspect_container(name, None)
                .await
                .with_context(|| format!("{}: GET /containers/{name}/json", self.name))?;
            let elapsed = ms(t.elapsed());
            if c.name.as_deref() != Some(&format!("/{name}")) {
                bail!("{}: inspect {name} answered {:?}", self.name, c.name);
            }
            Ok(elapsed)
        })
    }
}
