#![recursion_limit = "256"]
//! The Docker Engine API, served on a unix socket, in front of an [`Engine`].
//!
//! This crate is thin by design: each route parses a typed request, calls the engine and
//! renders the typed result or error as dockerd would. It keeps no state of its own beyond
//! the engine handle; it never touches images, containers or the host directly.
#![forbid(unsafe_code)]

mod build;
mod containers;
mod error;
mod events;
mod exec;
mod filters;
mod health;
mod hijack;
mod images;
mod list;
mod listen;
mod networks;
mod system;
mod version;
mod volumes;

use std::sync::Arc;

use axum::extract::Request;
use axum::routing::{get, post};
use axum::{Router, ServiceExt};
use corral_engine::Engine;
use tower::Layer;

pub use error::ApiError;
pub use listen::{
    bind_all, bind_unix, server_config, BoundListener, ListenAddr, ListenError, ListenPlan,
    TlsListener, TlsOptions,
};
pub use version::{API_VERSION, MIN_API_VERSION};

/// Shared state of all handlers.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) engine: Arc<dyn Engine>,
}

/// Builds the router for the Docker Engine API over `engine`.
pub fn router(engine: Arc<dyn Engine>) -> Router {
    let state = AppState { engine };
    Router::new()
        .route("/_ping", get(version::ping).head(version::ping))
        .route("/version", get(version::version))
        .route("/info", get(system::info))
        .route("/events", get(events::events))
        .route("/auth", post(system::auth))
        .route("/system/df", get(system::df))
        // containers
        .route("/containers/json", get(containers::list))
        .route("/containers/create", post(containers::create))
        .route("/containers/prune", post(containers::prune))
        .route("/containers/{id}/json", get(containers::inspect))
        .route("/containers/{id}/start", post(containers::start))
        .route("/containers/{id}/stop", post(containers::stop))
        .route("/containers/{id}/kill", post(containers::kill))
        .route("/containers/{id}/restart", post(containers::restart))
        .route("/containers/{id}/pause", post(containers::pause))
        .route("/containers/{id}/unpause", post(containers::unpause))
        .route("/containers/{id}/rename", post(containers::rename))
        .route("/containers/{id}/update", post(containers::update))
        .route("/containers/{id}/wait", post(containers::wait))
        .route("/containers/{id}/attach", post(containers::attach))
        .route("/containers/{id}/resize", post(containers::resize))
        .route("/containers/{id}/logs", get(containers::logs))
        .route("/containers/{id}/top", get(containers::top))
        .route("/containers/{id}/changes", get(containers::changes))
        .route("/containers/{id}/export", get(containers::export))
        .route("/containers/{id}/stats", get(containers::stats))
        .route(
            "/containers/{id}/archive",
            get(containers::archive_get)
                .head(containers::archive_head)
                .put(containers::archive_put),
        )
        .route(
            "/containers/{id}",
            axum::routing::delete(containers::remove),
        )
        .route("/containers/{id}/exec", post(exec::create))
        .route("/exec/{id}/start", post(exec::start))
        .route("/exec/{id}/resize", post(exec::resize))
        .route("/exec/{id}/json", get(exec::inspect))
        .route("/commit", post(containers::commit))
        // images
        .route("/images/json", get(images::list))
        .route("/images/create", post(images::create))
        .route("/images/load", post(images::load))
        .route("/images/get", get(images::save_many))
        .route("/images/prune", post(images::prune))
        .route(
            "/images/{*rest}",
            get(images::get_dispatch)
                .post(images::post_dispatch)
                .delete(images::remove),
        )
        .route("/distribution/{*rest}", get(images::distribution))
        .route("/plugins/{*rest}", get(system::no_plugin))
        .route("/networks", get(networks::list))
        .route("/networks/create", post(networks::create))
        .route("/networks/prune", post(networks::prune))
        .route("/networks/{id}/connect", post(networks::connect))
        .route("/networks/{id}/disconnect", post(networks::disconnect))
        .route(
            "/networks/{id}",
            get(networks::inspect).delete(networks::remove),
        )
        .route("/volumes", get(volumes::list))
        .route("/volumes/create", post(volumes::create))
        .route("/volumes/prune", post(volumes::prune))
        .route(
            "/volumes/{name}",
            get(volumes::inspect).delete(volumes::remove),
        )
        .route("/session", post(system::no_session))
        .route("/grpc", post(system::no_session))
        .route("/build", post(build::build))
        .fallback(error::not_found)
        .with_state(state)
}

/// Serves the API on every listener until `shutdown` resolves, then removes the unix
/// socket files. Each listener has its own accept loop; one that fails ends the others.
///
/// # Errors
/// When a listener's server fails.
pub async fn serve(
    listeners: Vec<BoundListener>,
    engine: Arc<dyn Engine>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(engine);
    // Strip `/v1.NN` before routing so one table serves versioned and unversioned paths.
    let app = axum::middleware::from_fn(version::negotiate).layer(app);
    let stop = tokio_util::sync::CancellationToken::new();
    let mut servers = tokio::task::JoinSet::new();
    let mut sockets = Vec::new();
    for l in listeners {
        let app = app.clone();
        let stop = stop.clone();
        let done = async move { stop.cancelled().await };
        match l {
            BoundListener::Unix(l, path) => {
                sockets.push(path);
                servers.spawn(async move {
                    axum::serve(l, ServiceExt::<Request>::into_make_service(app))
                        .with_graceful_shutdown(done)
                        .await
                });
            }
            BoundListener::Tcp(l) => {
                servers.spawn(async move {
                    axum::serve(l, ServiceExt::<Request>::into_make_service(app))
                        .with_graceful_shutdown(done)
                        .await
                });
            }
            BoundListener::Tls(l) => {
                servers.spawn(async move {
                    axum::serve(l, ServiceExt::<Request>::into_make_service(app))
                        .with_graceful_shutdown(done)
                        .await
                });
            }
        }
    }
    let mut shutdown = std::pin::pin!(shutdown);
    let mut result = Ok(());
    tokio::select! {
        () = &mut shutdown => {}
        Some(ended) = servers.join_next() => {
            result = flatten(ended);
        }
    }
    stop.cancel();
    while let Some(ended) = servers.join_next().await {
        if result.is_ok() {
            result = flatten(ended);
        }
    }
    for p in sockets {
        let _ = std::fs::remove_file(p);
    }
    result
}

fn flatten(ended: Result<std::io::Result<()>, tokio::task::JoinError>) -> std::io::Result<()> {
    ended.map_err(std::io::Error::other)?
}
