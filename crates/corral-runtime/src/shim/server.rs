//! The shim process: create the container while single-threaded, then serve the daemon.

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use corral_sys::process::{self as sys, ExitKind, Pid};
use parking_lot::{Condvar, Mutex};

use super::args::{RuntimeKind, ShimArgs};
use super::cgroup::CgroupProbe;
use super::error::{create_failure_exit_code, Result, ShimError};
use super::exec::{exec_helper_main, EXEC_FLAG};
use super::exec_session::{ExecRequest, ExecTable};
use super::io::IoHub;
use super::libcontainer::Libcontainer;
use super::protocol::{
    ContainerStatus, ExitStatus, LaunchReport, Request, Response, ShimState, WireErrorKind,
    EXIT_FILE, INIT_PID_FILE, LAUNCH_FILE, SHIM_PID_FILE, SOCKET_FILE,
};
use super::reaper::Reaper;
use super::runc::Runc;
use super::runtime::{docker_create_message, ContainerStdio, OciRuntime};
use crate::logs::{LogStream, LogWriter};

/// Longest request line accepted.
const MAX_REQUEST: u64 = 64 * 1024;
/// Concurrent connections served; more are refused.
const MAX_CONNECTIONS: usize = 256;
/// How long output may keep flowing after the init exited (leaked pipe ends).
const OUTPUT_DRAIN: Duration = Duration::from_secs(5);
/// How long the shim stays after the exit when nobody collected it.
const EXIT_GRACE: Duration = Duration::from_secs(10);
/// How long it stays after the first `wait` reply, for other waiters.
const AFTER_WAIT_GRACE: Duration = Duration::from_millis(300);
/// How long a started container runs before the shim drops the code it no longer needs.
const TRIM_DELAY: Duration = Duration::from_secs(1);

/// Entry point of `corral shim`: call it from `main` with the arguments after `shim`,
/// before any thread or async runtime exists. Returns the process exit code.
///
/// `corral shim --exec …` is the shim's own exec helper (one per `exec` request, started by
/// the shim; see the `exec` module): it returns the exec'd process's exit code.
///
/// The shim detaches (the calling process exits 0 at once), creates the container, writes
/// [`LAUNCH_FILE`] and serves [`SOCKET_FILE`] until the container has exited and its
/// status was collected.
pub fn shim_main<I, S>(args: I) -> i32
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    shim_main_with(args.into_iter().map(Into::into).collect(), true)
}

/// [`shim_main`] for a process that is already detached: a fork of the shim zygote, in a
/// session of its own, whose parent does not wait for it (see `zygote`).
pub(crate) fn shim_main_forked(args: Vec<OsString>) -> i32 {
    shim_main_with(args, false)
}

fn shim_main_with(args: Vec<OsString>, detach: bool) -> i32 {
    // Containers and exec'd processes must not inherit ignored signals (SIGPIPE above all).
    if let Err(err) = corral_sys::process::reset_signal_dispositions() {
        eprintln!("corral shim: {err}");
        return 1;
    }
    // A few mostly idle threads share one malloc arena (see `limit_malloc_arenas`).
    corral_sys::memory::limit_malloc_arenas(1);
    if args.first().is_some_and(|first| first == EXEC_FLAG) {
        return exec_helper_main(args.into_iter().skip(1));
    }
    let args = match ShimArgs::from_args(args) {
        Ok(args) => args,
        Err(err) => {
            eprintln!("corral shim: {err}");
            return 2;
        }
    };
    if let Err(err) = std::fs::create_dir_all(&args.state_dir) {
        eprintln!(
            "corral shim: failed to create {}: {err}",
            args.state_dir.display()
        );
        return 1;
    }
    if detach {
        if let Err(err) = sys::detach_from_parent() {
            eprintln!("corral shim: {err}");
            return 1;
        }
    }
    match run(&args) {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("corral shim {}: {}", args.id, error_chain(&err));
            1
        }
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The shim's end of the container's stdio, before output copying starts.
enum ShimStdio {
    Pipes {
        stdin: Option<File>,
        stdout: File,
        stderr: File,
    },
    Console {
        listener: UnixListener,
        path: PathBuf,
    },
}

/// State shared by the connection threads.
struct Shim {
    args: ShimArgs,
    shim_pid: i32,
    init_pid: Pid,
    runtime: Arc<Mutex<Box<dyn OciRuntime>>>,
    status: Mutex<ContainerStatus>,
    exit: Mutex<Option<ExitStatus>>,
    exited: Condvar,
    delivered: Mutex<usize>,
    delivered_changed: Condvar,
    hub: Arc<IoHub>,
    console: Option<File>,
    cgroup: CgroupProbe,
    connections: AtomicUsize,
    reaper: Arc<Reaper>,
    execs: ExecTable,
}

fn run(args: &ShimArgs) -> Result<()> {
    sys::become_subreaper()?;
    let shim_pid = i32::try_from(std::process::id())
        .map_err(|_| ShimError::Protocol("pid out of range".into()))?;
    write_atomic(
        &args.state_dir.join(SHIM_PID_FILE),
        shim_pid.to_string().as_bytes(),
    )?;
    for stale in [LAUNCH_FILE, EXIT_FILE, SOCKET_FILE, INIT_PID_FILE] {
        let _ = std::fs::remove_file(args.state_dir.join(stale));
    }

    let reaper = Reaper::new();
    let runtime: Box<dyn OciRuntime> = match args.runtime {
        RuntimeKind::Libcontainer => Box::new(Libcontainer::new(&args.runtime_root)),
        RuntimeKind::Runc => Box::new(Runc::new(
            args.runtime_path.clone(),
            args.runtime_root.clone(),
            &args.state_dir,
            Arc::clone(&reaper),
        )),
    };
    let log = match args
        .log_config()
        .and_then(|config| LogWriter::open(&args.log_path, config).map_err(ShimError::from))
    {
        Ok(log) => log,
        Err(err) => return Err(report_failure(args, err.to_string())),
    };
    // Bound before the container exists, so a bad socket path fails the launch cleanly.
    let socket = args.state_dir.join(SOCKET_FILE);
    let listener = match UnixListener::bind(&socket) {
        Ok(listener) => listener,
        Err(err) => {
            return Err(report_failure(
                args,
                format!("failed to listen on {}: {err}", socket.display()),
            ))
        }
    };
    let socket_inode = std::fs::metadata(&socket)
        .ok()
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m));
    let (container_stdio, shim_stdio) = match prepare_stdio(args) {
        Ok(pair) => pair,
        Err(err) => return Err(report_failure(args, error_chain(&err))),
    };

    // Single-threaded up to here: libcontainer clones this process. With `--start` the
    // init goes on at once (its output waits in the pipes for the copiers, its exit in the
    // kernel for the reaper); a start failure is reported as the launch's.
    let created = if args.start {
        runtime.create_and_start(&args.id, &args.bundle, container_stdio)
    } else {
        runtime.create(&args.id, &args.bundle, container_stdio)
    };
    let init_pid = match created {
        Ok(pid) => pid,
        Err(err) => {
            // `force` kills what may already run.
            let _ = runtime.delete(&args.id, true);
            return Err(report_failure(args, docker_create_message(&err.message)));
        }
    };
    reaper.watch(init_pid);
    let runtime = Arc::new(Mutex::new(runtime));
    let created = Created {
        shim_pid,
        init_pid,
        runtime: Arc::clone(&runtime),
        log,
        stdio: shim_stdio,
        listener,
    };
    let shim = match serve_created(args, created, &reaper) {
        Ok(shim) => shim,
        Err(err) => {
            // Never leave a container nobody serves.
            let runtime = runtime.lock();
            let _ = runtime.kill(&args.id, nix::sys::signal::Signal::SIGKILL, true);
            let _ = runtime.delete(&args.id, true);
            return Err(report_failure(args, error_chain(&err)));
        }
    };
    if args.start {
        // No `start` request comes whose connection would trim the shim's code once the
        // container has settled: a short-lived thread does.
        let settling = Arc::clone(&shim);
        let trim = std::thread::Builder::new()
            .name("trim".into())
            .spawn(move || settling.trim_once_settled());
        if let Err(err) = trim {
            tracing::debug!(error = %err, "no thread to trim the shim's code");
        }
    }

    let kind = reaper.wait_for(init_pid, None);
    shim.finish(kind.unwrap_or(ExitKind::Exited(255)));
    shim.linger();
    // A restarted container's next shim may already serve a new socket at this path while
    // this one lingers: remove the socket only if it is still the one this shim bound.
    let still_ours = std::fs::metadata(&socket)
        .map(|m| Some(std::os::unix::fs::MetadataExt::ino(&m)) == socket_inode)
        .unwrap_or(false);
    if still_ours {
        let _ = std::fs::remove_file(&socket);
    }
    Ok(())
}

/// A created container and the shim's resources for it.
struct Created {
    shim_pid: i32,
    init_pid: Pid,
    runtime: Arc<Mutex<Box<dyn OciRuntime>>>,
    log: LogWriter,
    stdio: ShimStdio,
    listener: UnixListener,
}

/// Reports the container created, then starts output copying and serving.
fn serve_created(args: &ShimArgs, created: Created, reaper: &Arc<Reaper>) -> Result<Arc<Shim>> {
    let Created {
        shim_pid,
        init_pid,
        runtime,
        log,
        stdio,
        listener,
    } = created;
    let (outputs, stdin, console) = match stdio {
        ShimStdio::Pipes {
            stdin,
            stdout,
            stderr,
        } => (
            vec![(stdout, LogStream::Stdout), (stderr, LogStream::Stderr)],
            stdin,
            None,
        ),
        ShimStdio::Console { listener, path } => {
            let master = receive_console(&listener)?;
            let _ = std::fs::remove_file(path);
            let clone = |file: &File| file.try_clone().map_err(ShimError::io("dup pty master"));
            let output = clone(&master)?;
            let stdin = if args.stdin {
                Some(clone(&master)?)
            } else {
                None
            };
            (vec![(output, LogStream::Stdout)], stdin, Some(master))
        }
    };
    // Reported before the threads start, so the daemon's bookkeeping overlaps with them: a
    // connection that comes first waits in the listener's backlog. Should a thread fail to
    // start, the caller kills and deletes the container and reports the failure; the daemon
    // then finds the shim gone.
    write_atomic(
        &args.state_dir.join(INIT_PID_FILE),
        init_pid.as_raw().to_string().as_bytes(),
    )?;
    write_report(
        args,
        &LaunchReport::Created {
            shim_pid,
            init_pid: init_pid.as_raw(),
        },
    )?;
    reaper
        .start()
        .map_err(ShimError::io("start the reaper thread"))?;
    let hub = IoHub::new(args.tty, log, stdin);
    for (source, stream) in outputs {
        hub.spawn_copier(source, stream)
            .map_err(ShimError::io("start an output copier"))?;
    }
    let shim = Arc::new(Shim {
        args: args.clone(),
        shim_pid,
        init_pid,
        runtime,
        status: Mutex::new(if args.start {
            ContainerStatus::Running
        } else {
            ContainerStatus::Created
        }),
        exit: Mutex::new(None),
        exited: Condvar::new(),
        delivered: Mutex::new(0),
        delivered_changed: Condvar::new(),
        hub,
        console,
        cgroup: CgroupProbe::new(
            Path::new("/sys/fs/cgroup"),
            CgroupProbe::cgroups_path_of(&args.bundle).as_deref(),
        ),
        connections: AtomicUsize::new(0),
        reaper: Arc::clone(reaper),
        execs: ExecTable::default(),
    });
    {
        let shim = Arc::clone(&shim);
        std::thread::Builder::new()
            .name("accept".into())
            .spawn(move || accept_loop(&shim, &listener))
            .map_err(ShimError::io("start the accept thread"))?;
    }
    Ok(shim)
}

/// Writes a failed launch report and returns the matching error.
fn report_failure(args: &ShimArgs, message: String) -> ShimError {
    let _ = std::fs::remove_file(args.state_dir.join(SOCKET_FILE));
    let exit_code = create_failure_exit_code(&message);
    if let Err(err) = write_report(
        args,
        &LaunchReport::Failed {
            message: message.clone(),
            exit_code,
        },
    ) {
        eprintln!("corral shim {}: {}", args.id, error_chain(&err));
    }
    ShimError::Create {
        id: args.id.clone(),
        message,
        exit_code,
    }
}

/// Writes the launch report, then closes stdout: the launcher's pipe, whose end of file
/// wakes the daemon waiting for the report (see `ShimClient::launch`).
fn write_report(args: &ShimArgs, report: &LaunchReport) -> Result<()> {
    let body = serde_json::to_vec(report).map_err(|err| ShimError::Protocol(err.to_string()))?;
    let written = write_atomic(&args.state_dir.join(LAUNCH_FILE), &body);
    if let Err(err) = sys::release_stdout() {
        // The daemon then finds the report by polling.
        eprintln!("corral shim {}: {}", args.id, error_chain(&err));
    }
    written
}

/// Writes `path` through a temporary file and a rename, so readers never see half of it.
///
/// Not fsynced: the state directory lives under the run directory, volatile runtime state
/// (tmpfs at `/run/corral` by default) that only has to survive the daemon, not the host;
/// after a power loss every container and shim is gone anyway, and the daemon treats an
/// unreadable state file as absent. An fsync here sat on the path of every `run` and exit.
pub(crate) fn write_atomic(path: &Path, body: &[u8]) -> Result<()> {
    let mut temp = path.as_os_str().to_owned();
    temp.push(".tmp");
    let temp = PathBuf::from(temp);
    let context = format!("write {}", path.display());
    let mut file = File::create(&temp).map_err(ShimError::io(context.clone()))?;
    file.write_all(body)
        .map_err(ShimError::io(context.clone()))?;
    std::fs::rename(&temp, path).map_err(ShimError::io(context))
}

/// Pipes (or a console socket) for the container, and the shim's ends.
fn prepare_stdio(args: &ShimArgs) -> Result<(ContainerStdio, ShimStdio)> {
    if args.tty {
        let path = args.state_dir.join("console.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)
            .map_err(ShimError::io(format!("listen on {}", path.display())))?;
        return Ok((
            ContainerStdio::Console {
                socket: path.clone(),
            },
            ShimStdio::Console { listener, path },
        ));
    }
    let pipe = |what: &str| std::io::pipe().map_err(ShimError::io(format!("create {what} pipe")));
    let (stdin_read, stdin_write): (OwnedFd, Option<File>) = if args.stdin {
        let (read, write) = pipe("stdin")?;
        (read.into(), Some(File::from(OwnedFd::from(write))))
    } else {
        let null = File::open("/dev/null").map_err(ShimError::io("open /dev/null"))?;
        (null.into(), None)
    };
    let (stdout_read, stdout_write) = pipe("stdout")?;
    let (stderr_read, stderr_write) = pipe("stderr")?;
    Ok((
        ContainerStdio::Pipes {
            stdin: stdin_read,
            stdout: stdout_write.into(),
            stderr: stderr_write.into(),
        },
        ShimStdio::Pipes {
            stdin: stdin_write,
            stdout: File::from(OwnedFd::from(stdout_read)),
            stderr: File::from(OwnedFd::from(stderr_read)),
        },
    ))
}

/// Accepts the runtime's console connection and receives the pty master.
pub(crate) fn receive_console(listener: &UnixListener) -> Result<File> {
    listener
        .set_nonblocking(true)
        .map_err(ShimError::io("poll the console socket"))?;
    let mut waited = Duration::ZERO;
    let stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                if waited >= Duration::from_secs(10) {
                    return Err(ShimError::Protocol(
                        "the runtime never connected to the console socket".into(),
                    ));
                }
                std::thread::sleep(Duration::from_millis(10));
                waited += Duration::from_millis(10);
            }
            Err(err) => return Err(ShimError::io("accept the console connection")(err)),
        }
    };
    stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(Some(Duration::from_secs(10))))
        .map_err(ShimError::io("configure the console connection"))?;
    let master = sys::recv_fd(stream.as_fd())?;
    Ok(File::from(master))
}

fn accept_loop(shim: &Arc<Shim>, listener: &UnixListener) {
    for connection in listener.incoming() {
        let Ok(stream) = connection else {
            continue;
        };
        if shim.connections.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            shim.connections.fetch_sub(1, Ordering::SeqCst);
            let mut stream = stream;
            let _ = write_response(
                &mut stream,
                &Response::Error {
                    message: "too many connections".into(),
                    kind: WireErrorKind::Internal,
                },
            );
            continue;
        }
        let shim_for_thread = Arc::clone(shim);
        let spawned = std::thread::Builder::new()
            .name("conn".into())
            .spawn(move || {
                shim_for_thread.serve(stream);
                shim_for_thread.connections.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            shim.connections.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Once the container runs, the code that created and started it (runtime, spec parsing,
/// seccomp) does not run again: its pages need not stay resident in every shim. Called
/// after the start reply is written, once the container has run a while, off the daemon's
/// path.
fn trim_resident_code() {
    match corral_sys::memory::trim_executable_pages() {
        Ok(bytes) => tracing::debug!(bytes, "trimmed the shim's resident code"),
        Err(err) => tracing::debug!(error = %err, "could not trim the shim's resident code"),
    }
}

fn write_response(stream: &mut UnixStream, response: &Response) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(response).map_err(std::io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line)
}

fn wire_error(err: &ShimError) -> Response {
    let kind = match err {
        ShimError::NotRunning(_) => WireErrorKind::NotRunning,
        ShimError::InvalidRequest(_) => WireErrorKind::InvalidRequest,
        ShimError::ExecFailed(_) => WireErrorKind::ExecFailed,
        _ => WireErrorKind::Internal,
    };
    let message = match err {
        ShimError::Runtime { message, .. } | ShimError::ExecFailed(message) => message.clone(),
        other => error_chain(other),
    };
    Response::Error { message, kind }
}

// === impl Shim ===

impl Shim {
    fn serve(&self, stream: UnixStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
        let Ok(mut writer) = stream.try_clone() else {
            return;
        };
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        if (&mut reader)
            .take(MAX_REQUEST)
            .read_line(&mut line)
            .is_err()
        {
            return;
        }
        let request: Request = match serde_json::from_str(line.trim_end()) {
            Ok(request) => request,
            Err(err) => {
                let _ = write_response(
                    &mut writer,
                    &Response::Error {
                        message: format!("invalid request: {err}"),
                        kind: WireErrorKind::InvalidRequest,
                    },
                );
                return;
            }
        };
        match request {
            Request::Wait => {
                let exit = self.wait_exit();
                if write_response(&mut writer, &Response::Exit(exit)).is_ok() {
                    *self.delivered.lock() += 1;
                    self.delivered_changed.notify_all();
                }
            }
            Request::Attach {
                stdin,
                stdout,
                stderr,
            } => {
                if write_response(&mut writer, &Response::Ok).is_err() {
                    return;
                }
                self.hub.add_client(writer, stdout, stderr);
                if stdin {
                    let _ = reader.get_ref().set_read_timeout(None);
                    self.hub.feed_stdin(reader);
                }
            }
            Request::Exec {
                exec_id,
                process,
                tty,
                stdin,
            } => {
                let request = ExecRequest {
                    exec_id,
                    process,
                    tty,
                    stdin,
                };
                self.exec(request, writer, reader);
            }
            Request::ExecWait { exec_id } => {
                let response = match self.execs.get(&exec_id) {
                    // No read timeout matters here: the reply is written, not read.
                    Ok(session) => Response::ExecExit {
                        code: session.wait(),
                    },
                    Err(err) => wire_error(&err),
                };
                let _ = write_response(&mut writer, &response);
            }
            other => {
                let started = matches!(other, Request::Start);
                let response = match self.handle(other) {
                    Ok(response) => response,
                    Err(err) => wire_error(&err),
                };
                let _ = write_response(&mut writer, &response);
                if started && matches!(response, Response::Ok) {
                    drop((writer, reader));
                    self.trim_once_settled();
                }
            }
        }
    }

    /// Trims the shim's resident code ([`trim_resident_code`]) once the container has run for
    /// [`TRIM_DELAY`]; a container that exits sooner is never trimmed. Dropping the pages
    /// right after the start made the exit path of a short-lived container fault its code
    /// back in (and read `/proc/self/smaps` beside it): trimming only pays for a shim that
    /// stays.
    fn trim_once_settled(&self) {
        let mut exit = self.exit.lock();
        if exit.is_none() {
            self.exited.wait_for(&mut exit, TRIM_DELAY);
        }
        let running = exit.is_none();
        drop(exit);
        // `exit` is published at the end of `finish`; `Stopped` is set as it begins (the
        // output drain and the runtime's delete come between).
        if running && *self.status.lock() != ContainerStatus::Stopped {
            trim_resident_code();
        }
    }

    fn handle(&self, request: Request) -> Result<Response> {
        let id = &self.args.id;
        let runtime_err = |op: &'static str| {
            move |err: super::runtime::RuntimeError| ShimError::Runtime {
                op,
                id: id.clone(),
                message: err.message,
            }
        };
        match request {
            Request::Start => {
                let mut status = self.status.lock();
                if *status != ContainerStatus::Created {
                    return Err(ShimError::InvalidRequest(format!(
                        "container {id} cannot start from status {:?}",
                        *status
                    )));
                }
                self.runtime
                    .lock()
                    .start(id)
                    .map_err(runtime_err("start"))?;
                *status = ContainerStatus::Running;
                Ok(Response::Ok)
            }
            Request::Kill { signal, all } => {
                let signal = sys::signal_from_number(signal)?;
                self.ensure_alive()?;
                self.runtime
                    .lock()
                    .kill(id, signal, all)
                    .map_err(runtime_err("kill"))?;
                Ok(Response::Ok)
            }
            Request::Pause => {
                self.ensure_alive()?;
                self.runtime
                    .lock()
                    .pause(id)
                    .map_err(runtime_err("pause"))?;
                self.set_status_unless_stopped(ContainerStatus::Paused);
                Ok(Response::Ok)
            }
            Request::Resume => {
                self.ensure_alive()?;
                self.runtime
                    .lock()
                    .resume(id)
                    .map_err(runtime_err("resume"))?;
                self.set_status_unless_stopped(ContainerStatus::Running);
                Ok(Response::Ok)
            }
            Request::Resize { height, width } => {
                let console = self.console.as_ref().ok_or_else(|| {
                    ShimError::InvalidRequest(format!("container {id} has no terminal"))
                })?;
                sys::set_window_size(console.as_fd(), height, width)?;
                Ok(Response::Ok)
            }
            Request::ExecResize {
                exec_id,
                height,
                width,
            } => {
                self.execs.get(&exec_id)?.resize(height, width)?;
                Ok(Response::Ok)
            }
            Request::State => Ok(Response::State(self.state())),
            // Served in `serve`, which owns the connection.
            Request::Wait
            | Request::Attach { .. }
            | Request::Exec { .. }
            | Request::ExecWait { .. } => {
                Err(ShimError::Protocol("request handled elsewhere".into()))
            }
        }
    }

    /// Starts an exec'd process and serves its stdio on this connection.
    fn exec(&self, request: ExecRequest, mut writer: UnixStream, reader: BufReader<UnixStream>) {
        let stdin = request.stdin;
        let started = self
            .ensure_running()
            .and_then(|()| self.execs.start(&self.args, &self.reaper, request));
        let started = match started {
            Ok(started) => started,
            Err(err) => {
                let _ = write_response(&mut writer, &wire_error(&err));
                return;
            }
        };
        let reply = Response::ExecStarted {
            pid: started.pid().as_raw(),
        };
        // A client that is gone gets nothing; the process still runs and is waited for.
        let _ = write_response(&mut writer, &reply);
        let _ = reader.get_ref().set_read_timeout(None);
        let stdin_from = stdin.then_some(reader);
        started.serve(Arc::clone(&self.reaper), writer, stdin_from);
    }

    /// Exec needs a running, unfrozen container.
    fn ensure_running(&self) -> Result<()> {
        self.ensure_alive()?;
        match *self.status.lock() {
            ContainerStatus::Running => Ok(()),
            ContainerStatus::Paused => Err(ShimError::InvalidRequest(format!(
                "container {} is paused",
                self.args.id
            ))),
            _ => Err(ShimError::NotRunning(self.args.id.clone())),
        }
    }

    /// Records a pause or resume, unless the init exited meanwhile: `finish` sets
    /// `Stopped` under the same lock, and nothing may turn that back into a live status.
    fn set_status_unless_stopped(&self, new: ContainerStatus) {
        let mut status = self.status.lock();
        *status = after_pause_or_resume(*status, new);
    }

    fn ensure_alive(&self) -> Result<()> {
        if self.exit.lock().is_some() || *self.status.lock() == ContainerStatus::Stopped {
            return Err(ShimError::NotRunning(self.args.id.clone()));
        }
        Ok(())
    }

    fn state(&self) -> ShimState {
        let exit = *self.exit.lock();
        let status = *self.status.lock();
        ShimState {
            id: self.args.id.clone(),
            status,
            init_pid: self.init_pid.as_raw(),
            shim_pid: self.shim_pid,
            pids: if status == ContainerStatus::Stopped {
                Vec::new()
            } else {
                self.cgroup.pids()
            },
            tty: self.args.tty,
            exit,
        }
    }

    fn wait_exit(&self) -> ExitStatus {
        let mut exit = self.exit.lock();
        loop {
            if let Some(status) = *exit {
                return status;
            }
            self.exited.wait(&mut exit);
        }
    }

    /// After the init exited: drain output, collect OOM, delete the container, publish the
    /// exit status.
    fn finish(&self, kind: ExitKind) {
        *self.status.lock() = ContainerStatus::Stopped;
        if !self.hub.wait_output_done(OUTPUT_DRAIN) {
            tracing::warn!(id = %self.args.id, "container output still open after exit");
        }
        let oom_killed = self.cgroup.oom_killed();
        if let Err(err) = self.runtime.lock().delete(&self.args.id, true) {
            tracing::warn!(id = %self.args.id, error = %err, "failed to delete container");
            eprintln!("corral shim {}: delete failed: {err}", self.args.id);
        }
        let status = ExitStatus {
            code: kind.code(),
            oom_killed,
            finished_at: Utc::now(),
        };
        match serde_json::to_vec(&status) {
            Ok(body) => {
                if let Err(err) = write_atomic(&self.args.state_dir.join(EXIT_FILE), &body) {
                    eprintln!("corral shim {}: {}", self.args.id, error_chain(&err));
                }
            }
            Err(err) => eprintln!("corral shim {}: {err}", self.args.id),
        }
        self.hub.close_clients();
        *self.exit.lock() = Some(status);
        self.exited.notify_all();
    }

    /// Stays until a `wait` was answered (plus a little, for other waiters), or the grace
    /// period ends; a daemon that is down reads [`EXIT_FILE`] later.
    fn linger(&self) {
        let mut delivered = self.delivered.lock();
        let mut left = EXIT_GRACE;
        while *delivered == 0 && !left.is_zero() {
            let step = left.min(Duration::from_millis(100));
            self.delivered_changed.wait_for(&mut delivered, step);
            left = left.saturating_sub(step);
        }
        if *delivered > 0 {
            self.delivered_changed
                .wait_for(&mut delivered, AFTER_WAIT_GRACE);
        }
    }
}

/// The status after a pause or resume that succeeded in the runtime: `Stopped` is final.
fn after_pause_or_resume(current: ContainerStatus, new: ContainerStatus) -> ContainerStatus {
    if current == ContainerStatus::Stopped {
        current
    } else {
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_and_resume_never_revive_a_stopped_container() {
        use ContainerStatus::{Paused, Running, Stopped};
        assert_eq!(after_pause_or_resume(Running, Paused), Paused);
        assert_eq!(after_pause_or_resume(Paused, Running), Running);
        assert_eq!(after_pause_or_resume(Stopped, Paused), Stopped);
        assert_eq!(after_pause_or_resume(Stopped, Running), Stopped);
    }
}
