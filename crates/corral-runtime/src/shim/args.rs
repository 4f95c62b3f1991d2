//! The shim's command line: `corral shim --id ID --bundle DIR …`.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use super::error::{Result, ShimError};
use crate::logs::{LogConfig, DEFAULT_MAX_FILES, DEFAULT_MAX_SIZE};

/// Which OCI runtime back end the shim drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RuntimeKind {
    /// youki's libcontainer, in process (the default).
    #[default]
    Libcontainer,
    /// An external binary with runc's command line (`--runtime-path`).
    Runc,
}

/// Everything a shim needs to create and serve one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimArgs {
    /// Container id (the runtime's container name).
    pub id: String,
    /// OCI bundle directory (holds `config.json`).
    pub bundle: PathBuf,
    /// Directory for the shim's socket, pid files, launch report and exit status.
    pub state_dir: PathBuf,
    /// Runtime back end.
    pub runtime: RuntimeKind,
    /// Runtime binary for [`RuntimeKind::Runc`]; ignored by libcontainer.
    pub runtime_path: PathBuf,
    /// Runtime state root (`runc --root`, libcontainer's root path).
    pub runtime_root: PathBuf,
    /// json-file log path.
    pub log_path: PathBuf,
    /// Rotate the log past this many bytes (0: never).
    pub log_max_size: u64,
    /// Log files kept (at least 1).
    pub log_max_files: u32,
    /// Give the container a terminal (the bundle must set `process.terminal`).
    pub tty: bool,
    /// Keep the container's stdin open for attach clients (`docker run -i`).
    pub stdin: bool,
    /// Start the container as soon as it is created, before the launch report (as `runc
    /// run` does), when nothing has to be wired between the two; otherwise the daemon
    /// sends `start` once it has connected its attach clients.
    pub start: bool,
}

// === impl RuntimeKind ===

impl RuntimeKind {
    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Libcontainer => "libcontainer",
            Self::Runc => "runc",
        }
    }
}

impl std::str::FromStr for RuntimeKind {
    type Err = ShimError;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "libcontainer" | "youki" => Ok(Self::Libcontainer),
            "runc" => Ok(Self::Runc),
            other => Err(ShimError::Args(format!("unknown runtime {other:?}"))),
        }
    }
}

// === impl ShimArgs ===

impl ShimArgs {
    /// Arguments with Docker's default log rotation and no TTY or stdin.
    pub fn new(
        id: impl Into<String>,
        bundle: impl Into<PathBuf>,
        state_dir: impl Into<PathBuf>,
        log_path: impl Into<PathBuf>,
    ) -> Self {
        Self {
            id: id.into(),
            bundle: bundle.into(),
            state_dir: state_dir.into(),
            runtime: RuntimeKind::Libcontainer,
            runtime_path: PathBuf::from("runc"),
            runtime_root: PathBuf::from("/run/corral/runtime"),
            log_path: log_path.into(),
            log_max_size: DEFAULT_MAX_SIZE,
            log_max_files: DEFAULT_MAX_FILES,
            tty: false,
            stdin: false,
            start: false,
        }
    }

    /// The log rotation settings.
    pub fn log_config(&self) -> Result<LogConfig> {
        LogConfig::new(self.log_max_size, self.log_max_files)
            .map_err(|err| ShimError::Args(err.to_string()))
    }

    /// The arguments after `corral shim`.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        let mut push = |flag: &str, value: &OsStr| {
            args.push(flag.into());
            args.push(value.to_owned());
        };
        push("--id", self.id.as_ref());
        push("--bundle", self.bundle.as_os_str());
        push("--state-dir", self.state_dir.as_os_str());
        push("--runtime", self.runtime.as_str().as_ref());
        push("--runtime-path", self.runtime_path.as_os_str());
        push("--runtime-root", self.runtime_root.as_os_str());
        push("--log-path", self.log_path.as_os_str());
        push("--log-max-size", self.log_max_size.to_string().as_ref());
        push("--log-max-files", self.log_max_files.to_string().as_ref());
        if self.tty {
            args.push("--tty".into());
        }
        if self.stdin {
            args.push("--stdin".into());
        }
        if self.start {
            args.push("--start".into());
        }
        args
    }

    /// Parses the arguments after `corral shim`; every valued flag is required.
    pub fn from_args<I, S>(args: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let mut id = None;
        let mut bundle = None;
        let mut state_dir = None;
        let mut runtime = None;
        let mut runtime_path = None;
        let mut runtime_root = None;
        let mut log_path = None;
        let mut log_max_size = None;
        let mut log_max_files = None;
        let mut tty = false;
        let mut stdin = false;
        let mut start = false;
        let mut iter = args.into_iter().map(Into::into);
        while let Some(flag) = iter.next() {
            let flag = flag
                .into_string()
                .map_err(|flag| ShimError::Args(format!("invalid flag {flag:?}")))?;
            match flag.as_str() {
                "--tty" => tty = true,
                "--stdin" => stdin = true,
                "--start" => start = true,
                _ => {
                    let value = iter
                        .next()
                        .ok_or_else(|| ShimError::Args(format!("{flag} needs a value")))?;
                    let text = || {
                        value
                            .to_str()
                            .map(str::to_owned)
                            .ok_or_else(|| ShimError::Args(format!("{flag} must be UTF-8")))
                    };
                    match flag.as_str() {
                        "--id" => id = Some(text()?),
                        "--bundle" => bundle = Some(PathBuf::from(&value)),
                        "--state-dir" => state_dir = Some(PathBuf::from(&value)),
                        "--runtime" => runtime = Some(text()?.parse()?),
                        "--runtime-path" => runtime_path = Some(PathBuf::from(&value)),
                        "--runtime-root" => runtime_root = Some(PathBuf::from(&value)),
                        "--log-path" => log_path = Some(PathBuf::from(&value)),
                        "--log-max-size" => log_max_size = Some(parse_number(&flag, &text()?)?),
                        "--log-max-files" => log_max_files = Some(parse_number(&flag, &text()?)?),
                        other => return Err(ShimError::Args(format!("unknown flag {other}"))),
                    }
                }
            }
        }
        let required = |name: &str| ShimError::Args(format!("--{name} is required"));
        let args = Self {
            id: id.ok_or_else(|| required("id"))?,
            bundle: bundle.ok_or_else(|| required("bundle"))?,
            state_dir: state_dir.ok_or_else(|| required("state-dir"))?,
            runtime: runtime.ok_or_else(|| required("runtime"))?,
            runtime_path: runtime_path.ok_or_else(|| required("runtime-path"))?,
            runtime_root: runtime_root.ok_or_else(|| required("runtime-root"))?,
            log_path: log_path.ok_or_else(|| required("log-path"))?,
            log_max_size: log_max_size.ok_or_else(|| required("log-max-size"))?,
            log_max_files: log_max_files.ok_or_else(|| required("log-max-files"))?,
            tty,
            stdin,
            start,
        };
        args.validate()?;
        Ok(args)
    }

    /// Checks values the shim cannot work with.
    pub fn validate(&self) -> Result<()> {
        if self.id.is_empty()
            || !self
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(ShimError::Args(format!(
                "invalid container id {:?}",
                self.id
            )));
        }
        for (name, path) in [
            ("bundle", &self.bundle),
            ("state-dir", &self.state_dir),
            ("runtime-root", &self.runtime_root),
            ("log-path", &self.log_path),
        ] {
            if !path.is_absolute() {
                return Err(ShimError::Args(format!(
                    "--{name} must be an absolute path"
                )));
            }
        }
        self.log_config()?;
        Ok(())
    }
}

fn parse_number<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T> {
    text.parse()
        .map_err(|_| ShimError::Args(format!("{flag}: invalid number {text:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ShimArgs {
        let mut args = ShimArgs::new("abc-1", "/b", "/s", "/s/log");
        args.runtime = RuntimeKind::Runc;
        args.runtime_path = PathBuf::from("/usr/sbin/runc");
        args.runtime_root = PathBuf::from("/run/x");
        args.log_max_size = 1234;
        args.log_max_files = 5;
        args.tty = true;
        args.stdin = true;
        args.start = true;
        args
    }

    #[test]
    fn round_trips_through_the_command_line() {
        let args = sample();
        assert_eq!(ShimArgs::from_args(args.to_args()).unwrap(), args);
        let plain = ShimArgs::new("x", "/b", "/s", "/l");
        assert_eq!(ShimArgs::from_args(plain.to_args()).unwrap(), plain);
    }

    #[test]
    fn rejects_missing_unknown_and_bad_values() {
        let mut args = sample().to_args();
        args.truncate(2);
        let err = ShimArgs::from_args(args).unwrap_err().to_string();
        assert!(err.contains("--bundle is required"), "{err}");

        let mut args = sample().to_args();
        args.push("--bogus".into());
        args.push("1".into());
        assert!(ShimArgs::from_args(args)
            .unwrap_err()
            .to_string()
            .contains("unknown flag --bogus"));

        let mut bad = sample();
        bad.id = "../etc".into();
        assert!(ShimArgs::from_args(bad.to_args()).is_err());
        let mut bad = sample();
        bad.bundle = PathBuf::from("relative");
        assert!(ShimArgs::from_args(bad.to_args()).is_err());
        let mut bad = sample();
        bad.log_max_files = 0;
        assert!(ShimArgs::from_args(bad.to_args()).is_err());
    }
}
