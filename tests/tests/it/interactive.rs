//! `docker run -it … sh` in a real terminal: tmux runs the docker CLI, send-keys types and
//! capture-pane reads the screen. Covers the prompt, the TTY, the window size and its
//! changes (SIGWINCH → resize), the exit code and detaching with ctrl-p ctrl-q.

use std::process::Command;
use std::time::Duration;

use corral_testkit::{poll_until, run_with_timeout, DOCKER20_CLI, DOCKER_CLI};

use crate::common::Env;

/// A tmux server on a private socket, killed on drop.
pub(crate) struct Tmux {
    socket: String,
}

impl Tmux {
    pub(crate) fn new() -> Tmux {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        Tmux {
            socket: format!(
                "corral-e2e-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ),
        }
    }

    pub(crate) fn run(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &self.socket]).args(args);
        let out = run_with_timeout(cmd, None, Duration::from_secs(20)).expect("run tmux");
        assert!(out.success(), "tmux failed: {out}");
        out.stdout
    }

    pub(crate) fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "t"])
    }

    pub(crate) fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// Waits until the screen contains `needle`; returns the screen.
    pub(crate) fn wait_for(&self, needle: &str) -> String {
        let mut screen = String::new();
        let found = poll_until(Duration::from_secs(30), || {
            screen = self.screen();
            screen.contains(needle)
        });
        assert!(found, "{needle:?} never appeared on screen:\n{screen}");
        screen
    }

    fn pane_size(&self) -> (u32, u32) {
        let s = self.run(&[
            "display-message",
            "-p",
            "-t",
            "t",
            "#{pane_height} #{pane_width}",
        ]);
        let mut it = s
            .split_whitespace()
            .map(|v| v.parse::<u32>().expect("size"));
        (it.next().expect("height"), it.next().expect("width"))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

/// Starts `docker run -it --rm --name NAME IMAGE sh` in a 100x30 tmux window; the shell
/// around it prints `EXIT=<code>` when the CLI exits.
fn start_interactive(env: &Env, name: &str, cli: &str) -> Tmux {
    let tmux = Tmux::new();
    let script = format!(
        "DOCKER_HOST={host} DOCKER_CONFIG={cfg} {cli} run -it --rm --network none --name {name} {image} sh; echo EXIT=$?; sleep 600",
        host = env.subject.docker_host(),
        cfg = env.subject.docker_config_dir().display(),
        image = env.image,
    );
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "100",
        "-y",
        "30",
        "sh",
        "-c",
        &script,
    ]);
    tmux.run(&["set-option", "-t", "t", "status", "off"]);
    tmux.wait_for("/ #");
    tmux
}

#[test]
#[ignore = "needs root: starts a registry and the engine under test"]
fn run_it_sh_in_a_terminal() {
    let env = Env::new();
    let name = env.name("tty");
    let tmux = start_interactive(&env, &name, DOCKER_CLI);

    tmux.send(&["tty; echo answer=$((6*7))", "Enter"]);
    let screen = tmux.wait_for("answer=42");
    assert!(screen.contains("/dev/pts/0"), "{screen}");

    let (h, w) = tmux.pane_size();
    tmux.send(&["clear; stty size", "Enter"]);
    tmux.wait_for(&format!("{h} {w}"));

    // A window size change reaches the container's terminal.
    tmux.run(&["resize-window", "-t", "t", "-x", "80", "-y", "20"]);
    let (h2, w2) = tmux.pane_size();
    assert_eq!((h2, w2), (20, 80));
    let mut screen = String::new();
    let resized = poll_until(Duration::from_secs(20), || {
        tmux.send(&["clear; stty size", "Enter"]);
        std::thread::sleep(Duration::from_millis(300));
        screen = tmux.screen();
        screen.contains("20 80")
    });
    assert!(resized, "stty never showed 20 80:\n{screen}");

    // ^C reaches the shell as a signal, not the CLI.
    tmux.send(&["sleep 100", "Enter"]);
    std::thread::sleep(Duration::from_millis(500));
    tmux.send(&["C-c"]);
    tmux.send(&["echo still-$((1+1))", "Enter"]);
    tmux.wait_for("still-2");

    tmux.send(&["exit 5", "Enter"]);
    tmux.wait_for("EXIT=5");
}

/// ctrl-p ctrl-q leaves the container running and ends the CLI with 0, with both CLIs.
fn detach_with(cli: &str) {
    let env = Env::new();
    let name = env.name("detach");
    let tmux = start_interactive(&env, &name, cli);
    tmux.send(&["C-p", "C-q"]);
    tmux.wait_for("EXIT=0");
    assert_eq!(env.inspect("{{.State.Running}}", &name), "true");
    // The container still answers a new attach-less exec.
    let out = env.docker(&["exec", &name, "echo", "alive"]);
    assert_eq!(out.ok().out(), "alive");
}

#[test]
#[ignore = "needs root: starts a registry and the engine under test"]
fn run_it_detaches_with_ctrl_p_ctrl_q() {
    detach_with(DOCKER_CLI);
}

#[test]
#[ignore = "needs root: starts a registry and the engine under test"]
fn run_it_detaches_with_ctrl_p_ctrl_q_docker_20_cli() {
    detach_with(DOCKER20_CLI);
}
