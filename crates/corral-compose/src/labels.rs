//! The labels and names docker-compose gives the resources of a project; Compose
//! keeps no state of its own, so these labels are how a project is found again
//! (<https://github.com/docker/compose/blob/main/pkg/api/labels.go>).

/// Project name.
pub const PROJECT: &str = "com.docker.compose.project";
/// Service name.
pub const SERVICE: &str = "com.docker.compose.service";
/// Replica number, from 1.
pub const CONTAINER_NUMBER: &str = "com.docker.compose.container-number";
/// `True` for `run` containers, `False` otherwise.
pub const ONEOFF: &str = "com.docker.compose.oneoff";
/// Hash of the service configuration the container was created from.
pub const CONFIG_HASH: &str = "com.docker.compose.config-hash";
/// Absolute project directory.
pub const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
/// Comma-separated absolute compose files.
pub const CONFIG_FILES: &str = "com.docker.compose.project.config_files";
/// Version of the tool that created the resource.
pub const VERSION: &str = "com.docker.compose.version";
/// Network key in the compose file (on networks).
pub const NETWORK: &str = "com.docker.compose.network";
/// Volume key in the compose file (on volumes).
pub const VOLUME: &str = "com.docker.compose.volume";
/// Comma-separated `service:condition:restart` dependencies (on containers).
pub const DEPENDS_ON: &str = "com.docker.compose.depends_on";
/// Image digest the container was created from.
pub const IMAGE: &str = "com.docker.compose.image";
/// Compose version written into the `VERSION` label.
pub const COMPOSE_VERSION: &str = "2.29.0";

/// Name of replica `n` of `service`: `<project>-<service>-<n>` (Compose v2).
pub fn container_name(project: &str, service: &str, n: u32) -> String {
    format!("{project}-{service}-{n}")
}

/// Name of a one-off (`run`) container: `<project>-<service>-run-<suffix>`.
pub fn oneoff_name(project: &str, service: &str, suffix: &str) -> String {
    format!("{project}-{service}-run-{suffix}")
}
