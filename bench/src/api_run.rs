//! `run --rm true` through one Rust API client (bollard over the unix socket), the same for
//! every daemon: create, start, wait, delete. No CLI start-up and no CLI round trips
//! (version negotiation, image inspect, attach), so it is the figure to hold against the
//! kernel floor sum.

use std::path::Path;

use anyhow::{bail, Context, Result};
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{RemoveContainerOptionsBuilder, WaitContainerOptionsBuilder};
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
}
