//! `create`/`run` flags (docker's names) and their translation into the Docker API's
//! `ContainerCreateBody`. Pure: files are read through a caller-supplied function.

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig, PortMap};
use clap::{ArgAction, Args};

use super::opts::{self, FlagError, PullPolicy, VolumeSpec};

/// Flags shared by `corral create` and `corral run`.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct CreateFlags {
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
    /// Assign a name to the container.
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Keep STDIN open even if not attached.
    #[arg(short = 'i', long)]
    pub(crate) interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long)]
    pub(crate) tty: bool,
    /// Automatically remove the container when it exits.
    #[arg(long)]
    pub(crate) rm: bool,
    /// Set environment variables.
    #[arg(short = 'e', long = "env")]
    pub(crate) env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long = "env-file")]
    pub(crate) env_file: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long)]
    pub(crate) workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short = 'u', long)]
    pub(crate) user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image.
    #[arg(long)]
    pub(crate) entrypoint: Option<String>,
    /// Container host name.
    #[arg(short = 'h', long)]
    pub(crate) hostname: Option<String>,
    /// Set meta data on a container.
    #[arg(short = 'l', long = "label")]
    pub(crate) label: Vec<String>,
    /// Read in a line delimited file of labels.
    #[arg(long = "label-file")]
    pub(crate) label_file: Vec<String>,
    /// Bind mount a volume.
    #[arg(short = 'v', long = "volume")]
    pub(crate) volume: Vec<String>,
    /// Attach a filesystem mount to the container.
    #[arg(long)]
    pub(crate) mount: Vec<String>,
    /// Mount a tmpfs directory.
    #[arg(long)]
    pub(crate) tmpfs: Vec<String>,
    /// Mount the container's root filesystem as read only.
    #[arg(long)]
    pub(crate) read_only: bool,
    /// Memory limit.
    #[arg(short = 'm', long)]
    pub(crate) memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap.
    #[arg(long, allow_hyphen_values = true)]
    pub(crate) memory_swap: Option<String>,
    /// Memory soft limit.
    #[arg(long)]
    pub(crate) memory_reservation: Option<String>,
    /// Number of CPUs.
    #[arg(long)]
    pub(crate) cpus: Option<String>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long)]
    pub(crate) cpu_shares: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long)]
    pub(crate) cpuset_cpus: Option<String>,
    /// Tune container pids limit (set -1 for unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub(crate) pids_limit: Option<String>,
    /// Add Linux capabilities.
    #[arg(long)]
    pub(crate) cap_add: Vec<String>,
    /// Drop Linux capabilities.
    #[arg(long)]
    pub(crate) cap_drop: Vec<String>,
    /// Security Options.
    #[arg(long)]
    pub(crate) security_opt: Vec<String>,
    /// Give extended privileges to this container.
    #[arg(long)]
    pub(crate) privileged: bool,
    /// Run an init inside the container that forwards signals and reaps processes.
    #[arg(long)]
    pub(crate) init: bool,
    /// Runtime to use for this container.
    #[arg(long)]
    pub(crate) runtime: Option<String>,
    /// Connect a container to a network.
    #[arg(long, visible_alias = "net")]
    pub(crate) network: Option<String>,
    /// Add a custom host-to-IP mapping (host:ip).
    #[arg(long)]
    pub(crate) add_host: Vec<String>,
    /// Set custom DNS servers.
    #[arg(long)]
    pub(crate) dns: Vec<String>,
    /// Set custom DNS search domains.
    #[arg(long)]
    pub(crate) dns_search: Vec<String>,
    /// Set DNS options.
    #[arg(long = "dns-option")]
    pub(crate) dns_option: Vec<String>,
    /// Restart policy to apply when a container exits.
    #[arg(long)]
    pub(crate) restart: Option<String>,
    /// Signal to stop the container.
    #[arg(long)]
    pub(crate) stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container.
    #[arg(long, allow_hyphen_values = true)]
    pub(crate) stop_timeout: Option<String>,
    /// Logging driver for the container.
    #[arg(long)]
    pub(crate) log_driver: Option<String>,
    /// Log driver options.
    #[arg(long)]
    pub(crate) log_opt: Vec<String>,
    /// Ulimit options.
    #[arg(long)]
    pub(crate) ulimit: Vec<String>,
    /// Sysctl options.
    #[arg(long)]
    pub(crate) sysctl: Vec<String>,
    /// Size of /dev/shm.
    #[arg(long)]
    pub(crate) shm_size: Option<String>,
    /// Add additional groups to join.
    #[arg(long)]
    pub(crate) group_add: Vec<String>,
    /// Publish a container's port(s) to the host.
    #[arg(short = 'p', long)]
    pub(crate) publish: Vec<String>,
    /// Publish all exposed ports to random ports.
    #[arg(short = 'P', long)]
    pub(crate) publish_all: bool,
    /// Expose a port or a range of ports.
    #[arg(long)]
    pub(crate) expose: Vec<String>,
    /// Pull image before creating ("always", "missing", "never").
    #[arg(long, default_value = "missing")]
    pub(crate) pull: String,
    /// Set platform if server is multi-platform capable.
    #[arg(long)]
    pub(crate) platform: Option<String>,
    /// Write the container ID to the file.
    #[arg(long)]
    pub(crate) cidfile: Option<String>,
    /// Health check flags.
    #[command(flatten)]
    pub(crate) health: super::health::HealthFlags,
    /// The image to create the container from.
    pub(crate) image: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub(crate) command: Vec<String>,
}

/// Outside inputs the translation needs: the local environment and file contents.
pub(crate) struct Env<'a> {
    /// Looks up a local environment variable.
    pub(crate) var: &'a dyn Fn(&str) -> Option<String>,
    /// Reads a local file (env files, label files, seccomp profiles).
    pub(crate) read: &'a dyn Fn(&str) -> std::io::Result<String>,
}

/// Everything `create`/`run` send, plus client-side options.
#[derive(Debug)]
pub(crate) struct CreatePlan {
    /// The request body.
    pub(crate) body: ContainerCreateBody,
    /// The `--pull` policy.
    pub(crate) pull: PullPolicy,
}

fn some_vec<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

fn some_map<K, V>(m: HashMap<K, V>) -> Option<HashMap<K, V>> {
    (!m.is_empty()).then_some(m)
}

fn read_file(env: &Env<'_>, flag: &str, path: &str) -> Result<String, FlagError> {
    (env.read)(path).map_err(|e| FlagError::new(flag, path, format!("open {path}: {e}")))
}

impl CreateFlags {
    /// Validates every flag and builds the create request; `detach` is `run -d`.
    pub(crate) fn plan(&self, detach: bool, env: &Env<'_>) -> Result<CreatePlan, FlagError> {
        let pull = opts::pull_policy(&self.pull)?;
        if self.rm
            && self
                .restart
                .as_deref()
                .is_some_and(|r| r != "no" && !r.is_empty())
        {
            return Err(FlagError::new(
                "--restart",
                self.restart.as_deref().unwrap_or(""),
                "Conflicting options: --restart and --rm",
            ));
        }

        let mut env_vars = Vec::new();
        for f in &self.env_file {
            let content = read_file(env, "--env-file", f)?;
            env_vars.extend(opts::env_file("--env-file", f, &content, Some(env.var))?);
        }
        env_vars.extend(self.env.iter().map(|e| opts::env_value(e, env.var)));

        let mut labels = HashMap::new();
        for f in &self.label_file {
            let content = read_file(env, "--label-file", f)?;
            for l in opts::env_file("--label-file", f, &content, None)? {
                let (k, v) = opts::key_value(&l);
                labels.insert(k, v);
            }
        }
        for l in &self.label {
            let (k, v) = opts::key_value(l);
            labels.insert(k, v);
        }

        let mut binds = Vec::new();
        let mut volumes = Vec::new();
        for v in &self.volume {
            match opts::volume("-v, --volume", v)? {
                VolumeSpec::Bind(b) => binds.push(b),
                VolumeSpec::Anonymous(a) => volumes.push(a),
            }
        }
        let mounts = self
            .mount
            .iter()
            .map(|m| opts::mount("--mount", m))
            .collect::<Result<Vec<_>, _>>()?;
        let mut tmpfs = HashMap::new();
        for t in &self.tmpfs {
            let (p, o) = opts::tmpfs("--tmpfs", t)?;
            tmpfs.insert(p, o);
        }

        let mut exposed: Vec<String> = Vec::new();
        for e in &self.expose {
            exposed.extend(opts::expose("--expose", e)?);
        }
        let mut port_map: PortMap = HashMap::new();
        for p in &self.publish {
            for (port, binding) in opts::publish("-p, --publish", p)? {
                if !exposed.contains(&port) {
                    exposed.push(port.clone());
                }
                port_map
                    .entry(port)
                    .or_insert_with(|| Some(Vec::new()))
                    .get_or_insert_with(Vec::new)
                    .push(binding);
            }
        }

        let mut security_opt = Vec::new();
        for s in &self.security_opt {
            security_opt.push(security_opt_value(s, env)?);
        }

        let mut sysctls = HashMap::new();
        for s in &self.sysctl {
            let (k, v) = opts::key_value_strict("--sysctl", s)?;
            sysctls.insert(k, v);
        }
        let mut log_opts = HashMap::new();
        for s in &self.log_opt {
            let (k, v) = opts::key_value_strict("--log-opt", s)?;
            log_opts.insert(k, v);
        }
        let log_config =
            (self.log_driver.is_some() || !log_opts.is_empty()).then(|| HostConfigLogConfig {
                typ: self.log_driver.clone(),
                config: some_map(log_opts),
            });

        let entrypoint = self.entrypoint.as_ref().map(|e| vec![e.clone()]);
        let memory = self
            .memory
            .as_deref()
            .map(|m| opts::mem_bytes("-m, --memory", m))
            .transpose()?;
        let memory_swap = self
            .memory_swap
            .as_deref()
            .map(|m| opts::mem_swap_bytes("--memory-swap", m))
            .transpose()?;
        let memory_reservation = self
            .memory_reservation
            .as_deref()
            .map(|m| opts::mem_bytes("--memory-reservation", m))
            .transpose()?;
        let nano_cpus = self
            .cpus
            .as_deref()
            .map(|c| opts::nano_cpus("--cpus", c))
            .transpose()?;
        let cpu_shares = self
            .cpu_shares
            .as_deref()
            .map(|c| opts::int("-c, --cpu-shares", c))
            .transpose()?;
        let pids_limit = self
            .pids_limit
            .as_deref()
            .map(|c| opts::int("--pids-limit", c))
            .transpose()?;
        let stop_timeout = self
            .stop_timeout
            .as_deref()
            .map(|c| opts::int("--stop-timeout", c))
            .transpose()?;
        let shm_size = self
            .shm_size
            .as_deref()
            .map(|c| opts::mem_bytes("--shm-size", c))
            .transpose()?;
        let restart_policy = self
            .restart
            .as_deref()
            .map(|r| opts::restart("--restart", r))
            .transpose()?;
        let ulimits = self
            .ulimit
            .iter()
            .map(|u| opts::ulimit("--ulimit", u))
            .collect::<Result<Vec<_>, _>>()?;
        let extra_hosts = self
            .add_host
            .iter()
            .map(|h| opts::add_host("--add-host", h))
            .collect::<Result<Vec<_>, _>>()?;

        let attach = !detach;
        let host_config = HostConfig {
            binds: some_vec(binds),
            mounts: some_vec(mounts),
            tmpfs: some_map(tmpfs),
            readonly_rootfs: self.read_only.then_some(true),
            memory,
            memory_swap,
            memory_reservation,
            nano_cpus,
            cpu_shares,
            cpuset_cpus: self.cpuset_cpus.clone(),
            pids_limit,
            cap_add: some_vec(self.cap_add.clone()),
            cap_drop: some_vec(self.cap_drop.clone()),
            security_opt: some_vec(security_opt),
            privileged: self.privileged.then_some(true),
            init: self.init.then_some(true),
            runtime: self.runtime.clone(),
            network_mode: Some(
                self.network
                    .clone()
                    .unwrap_or_else(|| "default".to_string()),
            ),
            extra_hosts: some_vec(extra_hosts),
            dns: some_vec(self.dns.clone()),
            dns_search: some_vec(self.dns_search.clone()),
            dns_options: some_vec(self.dns_option.clone()),
            restart_policy,
            auto_remove: self.rm.then_some(true),
            log_config,
            ulimits: some_vec(ulimits),
            sysctls: some_map(sysctls),
            shm_size,
            group_add: some_vec(self.group_add.clone()),
            port_bindings: some_map(port_map),
            publish_all_ports: self.publish_all.then_some(true),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            hostname: self.hostname.clone(),
            user: self.user.clone(),
            attach_stdin: Some(attach && self.interactive),
            attach_stdout: Some(attach),
            attach_stderr: Some(attach),
            exposed_ports: some_vec(exposed),
            tty: Some(self.tty),
            open_stdin: Some(self.interactive),
            stdin_once: Some(attach && self.interactive),
            env: some_vec(env_vars),
            cmd: some_vec(self.command.clone()),
            image: Some(self.image.clone()),
            volumes: some_vec(volumes),
            working_dir: self.workdir.clone(),
            entrypoint,
            labels: Some(labels),
            stop_signal: self.stop_signal.clone(),
            stop_timeout,
            healthcheck: self.health.config()?,
            host_config: Some(host_config),
            ..Default::default()
        };
        Ok(CreatePlan { body, pull })
    }
}

/// `--security-opt seccomp=PATH` sends the profile's contents, like the docker CLI.
fn security_opt_value(s: &str, env: &Env<'_>) -> Result<String, FlagError> {
    let (k, v) = match s.split_once('=').or_else(|| s.split_once(':')) {
        Some(kv) => kv,
        None => {
            return match s {
                "no-new-privileges" => Ok(s.to_string()),
                _ => Err(FlagError::new(
                    "--security-opt",
                    s,
                    format!("Invalid --security-opt: {s:?}"),
                )),
            }
        }
    };
    if k == "seccomp" && v != "unconfined" && v != "builtin" {
        let content = read_file(env, "--security-opt", v)?;
        let parsed: serde_json::Value = serde_json::from_str(&content).map_err(|e| {
            FlagError::new(
                "--security-opt",
                s,
                format!("parsing seccomp profile failed: {e}"),
            )
        })?;
        return Ok(format!("seccomp={parsed}"));
    }
    Ok(format!("{k}={v}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    #[command(disable_help_flag = true)]
    struct T {
        #[command(flatten)]
        f: CreateFlags,
    }

    fn plan(args: &[&str]) -> Result<CreatePlan, FlagError> {
        let mut full = vec!["t"];
        full.extend_from_slice(args);
        let t = T::try_parse_from(full).unwrap();
        let var = |k: &str| (k == "LOCAL").then(|| "yes".to_string());
        let read = |p: &str| match p {
            "envs" => Ok("A=1\n# c\nLOCAL\n".to_string()),
            "labels" => Ok("team=x\n".to_string()),
            _ => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such file or directory",
            )),
        };
        t.f.plan(
            false,
            &Env {
                var: &var,
                read: &read,
            },
        )
    }

    #[test]
    fn builds_body_from_common_flags() {
        let p = plan(&[
            "--name",
            "web",
            "-it",
            "-e",
            "X=1",
            "--env-file",
            "envs",
            "-w",
            "/srv",
            "-u",
            "1000:1000",
            "-h",
            "box",
            "-l",
            "a=b",
            "--label-file",
            "labels",
            "-v",
            "/h:/c:ro",
            "-v",
            "/anon",
            "--tmpfs",
            "/run:size=1m",
            "--read-only",
            "-m",
            "32m",
            "--cpus",
            "1.5",
            "--pids-limit",
            "100",
            "--cap-add",
            "NET_ADMIN",
            "--network",
            "none",
            "--restart",
            "on-failure:3",
            "--ulimit",
            "nofile=10:20",
            "-p",
            "8080:80",
            "--expose",
            "9000",
            "--stop-signal",
            "SIGINT",
            "--stop-timeout",
            "5",
            "--init",
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "--shm-size",
            "64m",
            "busybox",
            "sh",
            "-c",
            "echo hi",
        ])
        .unwrap();
        let b = p.body;
        assert_eq!(b.image.as_deref(), Some("busybox"));
        assert_eq!(b.cmd.unwrap(), ["sh", "-c", "echo hi"]);
        assert_eq!(b.env.unwrap(), ["A=1", "LOCAL=yes", "X=1"]);
        assert_eq!(
            (b.tty, b.open_stdin, b.attach_stdin),
            (Some(true), Some(true), Some(true))
        );
        assert_eq!(b.working_dir.as_deref(), Some("/srv"));
        assert_eq!(b.hostname.as_deref(), Some("box"));
        let labels = b.labels.unwrap();
        assert_eq!((labels["a"].as_str(), labels["team"].as_str()), ("b", "x"));
        assert_eq!(b.volumes.unwrap(), ["/anon"]);
        let mut exposed = b.exposed_ports.unwrap();
        exposed.sort();
        assert_eq!(exposed, ["80/tcp", "9000/tcp"]);
        assert_eq!(b.stop_timeout, Some(5));
        let h = b.host_config.unwrap();
        assert_eq!(h.binds.unwrap(), ["/h:/c:ro"]);
        assert_eq!(h.memory, Some(32 << 20));
        assert_eq!(h.nano_cpus, Some(1_500_000_000));
        assert_eq!(h.pids_limit, Some(100));
        assert_eq!(h.network_mode.as_deref(), Some("none"));
        assert_eq!(h.restart_policy.unwrap().maximum_retry_count, Some(3));
        assert_eq!(
            h.port_bindings.unwrap()["80/tcp"].as_ref().unwrap()[0]
                .host_port
                .as_deref(),
            Some("8080")
        );
        assert_eq!(h.tmpfs.unwrap()["/run"], "size=1m");
        assert_eq!((h.readonly_rootfs, h.init), (Some(true), Some(true)));
        assert_eq!(h.shm_size, Some(64 << 20));
    }

    #[test]
    fn entrypoint_is_not_split_and_empty_resets() {
        let b = plan(&["--entrypoint", "/bin/sh -x", "img"]).unwrap().body;
        assert_eq!(b.entrypoint.unwrap(), ["/bin/sh -x"]);
        let b = plan(&["--entrypoint", "", "img"]).unwrap().body;
        assert_eq!(b.entrypoint.unwrap(), [""]);
        assert!(plan(&["img"]).unwrap().body.cmd.is_none());
    }

    #[test]
    fn bad_values_name_flag_and_value() {
        let e = plan(&["-m", "lots", "img"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"invalid argument "lots" for "-m, --memory" flag: invalid size: 'lots'"#
        );
        assert!(plan(&["--cpus", "x", "img"])
            .unwrap_err()
            .to_string()
            .contains("--cpus"));
        assert!(plan(&["--env-file", "missing", "img"])
            .unwrap_err()
            .to_string()
            .contains("missing"));
        assert!(plan(&["--pull", "sometimes", "img"]).is_err());
        assert!(plan(&["--rm", "--restart", "always", "img"]).is_err());
        assert!(plan(&["-p", "x:y", "img"]).is_err());
    }

    #[test]
    fn detached_run_does_not_attach() {
        let t = T::try_parse_from(["t", "-i", "img"]).unwrap();
        let var = |_: &str| None;
        let read = |_: &str| Ok(String::new());
        let b =
            t.f.plan(
                true,
                &Env {
                    var: &var,
                    read: &read,
                },
            )
            .unwrap()
            .body;
        assert_eq!(
            (b.attach_stdin, b.attach_stdout, b.open_stdin),
            (Some(false), Some(false), Some(true))
        );
    }
}
