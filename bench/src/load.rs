//! An in-process load generator over the engine's unix socket (wrk speaks TCP only):
//! 8 keep-alive clients, bounded by time.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use anyhow::{Context, Result};
use bollard::query_parameters::ListContainersOptionsBuilder;
use bollard::{Docker, API_DEFAULT_VERSION};

const CONNECTIONS: usize = 8;

/// Requests per second of `GET /_ping` and of `GET /containers/json?all=1`, each for `secs`.
pub(crate) fn rates(socket: &Path, secs: f64) -> Result<(f64, f64)> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let ping = rate(socket, secs, false).await?;
        let list = rate(socket, secs, true).await?;
        Ok((ping, list))
    })
}

async fn rate(socket: &Path, secs: f64, list: bool) -> Result<f64> {
    let path = socket.to_string_lossy().into_owned();
    let deadline = Duration::from_secs_f64(secs);
    let done = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let docker = Docker::connect_with_unix(&path, 30, API_DEFAULT_VERSION)
            .context("connect to the engine socket")?;
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            while t.elapsed() < deadline && !crate::stopped() {
                if list {
                    let opts = ListContainersOptionsBuilder::new().all(true).build();
                    docker.list_containers(Some(opts)).await?;
                } else {
                    docker.ping().await?;
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, bollard::errors::Error>(())
        }));
    }
    for task in tasks {
        task.await.context("load task")?.context("request failed")?;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64())
}
