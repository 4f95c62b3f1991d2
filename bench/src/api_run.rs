//! One Rust API client (bollard over the unix socket), the same for every daemon:
//! `run --rm true` (create with AutoRemove, wait for `removed`, start), and the list and
//! inspect requests of `docker ps -a` and `docker inspect`. No CLI start-up, no CLI round trips (version
//! negotiation, image inspect, attach) and no table rendering: what is measured is the
//! daemon's request plus a small, fixed client cost. These are the figures to hold against
//! the kernel floor sum (run) and against dockerd (list).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::ListContainersOptionsBuilder;
use bollard::{Docker, API_DEFAULT_VERSION};
use tokio::time::Instant;

use crate::engines::ms;

/// A client for one engine's socket with its own single-threaded runtime.
pub(crate) struct ApiClient {
    rt: tokio::runtime::Runtime,
    docker: Docker,
    name: &'static str,
    socket: PathBuf,
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
        Ok(ApiClient {
            rt,
            docker,
            name,
            socket: socket.to_path_buf(),
        })
    }

    /// `docker run --rm --network none IMAGE true` as the docker CLI sends it, minus the
    /// attach: `POST create` with `AutoRemove`, a `POST wait?condition=removed` whose
    /// response headers have come back (the engine answers them at once) before `POST
    /// start`, then the wait's answer, which comes once the engine has removed the
    /// container. The wall time in milliseconds; fails unless `true` exited 0.
    pub(crate) fn run_rm_true(&self, image: &str) -> Result<f64> {
        self.rt.block_on(async {
            let body = ContainerCreateBody {
                image: Some(image.to_owned()),
                cmd: Some(vec!["true".into()]),
                host_config: Some(HostConfig {
                    network_mode: Some("none".into()),
                    auto_remove: Some(true),
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
            let wait = RemovedWait::register(&self.socket, &id)
                .with_context(|| format!("{}: POST /containers/{id}/wait", self.name))?;
            self.docker
                .start_container(&id, None)
                .await
                .with_context(|| format!("{}: POST /containers/{id}/start", self.name))?;
            let code = wait
                .status_code()
                .with_context(|| format!("{}: wait {id}", self.name))?;
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

/// A `POST /containers/{id}/wait?condition=removed` on its own connection, sent and its
/// response headers read (plain HTTP/1.1 over the socket: bollard gives no way to know the
/// request has been taken before the body comes).
struct RemovedWait {
    conn: UnixStream,
    /// What was read past the headers.
    rest: Vec<u8>,
}

impl RemovedWait {
    fn register(socket: &Path, id: &str) -> Result<Self> {
        let mut conn = UnixStream::connect(socket)?;
        conn.set_read_timeout(Some(Duration::from_secs(120)))?;
        write!(
            conn,
            "POST /v1.41/containers/{id}/wait?condition=removed HTTP/1.1\r\nHost: bench\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        )?;
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        let end = loop {
            if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = conn.read(&mut buf)?;
            if n == 0 {
                bail!("connection closed before the response headers");
            }
            got.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&got[..end]).into_owned();
        if !head.starts_with("HTTP/1.1 200") {
            bail!("answered {}", head.lines().next().unwrap_or_default());
        }
        Ok(Self {
            conn,
            rest: got[end..].to_vec(),
        })
    }

    /// Reads the answer to the end (the request asked for `Connection: close`) and returns
    /// its `StatusCode`.
    fn status_code(mut self) -> Result<i64> {
        self.conn.read_to_end(&mut self.rest)?;
        let body = String::from_utf8_lossy(&self.rest);
        let at = body
            .find("\"StatusCode\":")
            .with_context(|| format!("no StatusCode in {body:?}"))?;
        let digits: String = body[at + 13..]
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '-')
            .collect();
        digits
            .parse()
            .with_context(|| format!("bad StatusCode in {body:?}"))
    }
}
