//! Coexistence with a host firewall whose forward policy drops, as dockerd leaves it.
//!
//! Corral never edits other tables, and in nftables an accept in its own table cannot
//! override another table's drop. So on such a host Corral says what blocks its traffic (the
//! daemon log and `docker info` warnings) and the documented rules open it. The host here is
//! a network namespace running its own `corral server`, with iptables set as dockerd sets it
//! and a second namespace as another machine: nothing touches the real host's firewall.
//!
//! Corral only: the reference dockerd is what sets the policy in the first place.

use std::process::Command;
use std::time::Duration;

use corral_testkit::{
    assert_eventually, require_root, run_with_timeout, BusyboxImage, DaemonOptions, Output,
    SubjectKind, TestDaemon, DOCKER_CLI,
};

use crate::common::assert_contains;

/// A named network namespace, deleted (with its links and firewall) on drop.
struct Netns(String);

impl Netns {
    fn new(name: String) -> Netns {
        run(&["ip", "netns", "add", &name]).ok();
        let ns = Netns(name);
        ns.exec(&["ip", "link", "set", "lo", "up"]).ok();
        ns
    }

    fn exec(&self, argv: &[&str]) -> Output {
        let mut full = vec!["ip", "netns", "exec", &self.0];
        full.extend_from_slice(argv);
        run(&full)
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.0)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn run(argv: &[&str]) -> Output {
    let mut cmd = Command::new(argv[0]);
    cmd.args(&argv[1..]);
    run_with_timeout(cmd, None, Duration::from_secs(60)).expect("spawn")
}

/// The daemon inside the host namespace; containers are removed before it stops, and it
/// stops before the namespaces go (fields drop in order).
struct World {
    daemon: TestDaemon,
    _client: Netns,
    _host: Netns,
}

impl World {
    fn docker(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(DOCKER_CLI);
        cmd.arg("-H").arg(self.daemon.docker_host()).args(args);
        run_with_timeout(cmd, None, Duration::from_secs(120)).expect("spawn docker")
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let ids = self.docker(&["ps", "-aq"]);
        for id in ids.out().split_whitespace() {
            self.docker(&["rm", "-f", id]);
        }
    }
}

#[test]
#[ignore = "needs root: creates network namespaces and an engine inside one"]
fn forward_drop_on_the_host_is_reported_and_the_documented_rules_open_it() {
    if SubjectKind::from_env().ok() == Some(SubjectKind::Docker) {
        eprintln!("skipped: dockerd is what sets the FORWARD DROP policy");
        return;
    }
    require_root();
    let tag = format!("{:x}", std::process::id() & 0xffff);
    let host = Netns::new(format!("crfw-h-{tag}"));
    let client = Netns::new(format!("crfw-c-{tag}"));
    // A link between "this host" and "another machine".
    let (h_if, c_if) = (format!("fwh{tag}"), format!("fwc{tag}"));
    run(&[
        "ip", "link", "add", &h_if, "netns", &host.0, "type", "veth", "peer", "name", &c_if,
        "netns", &client.0,
    ])
    .ok();
    host.exec(&["ip", "addr", "add", "10.214.0.1/30", "dev", &h_if])
        .ok();
    host.exec(&["ip", "link", "set", &h_if, "up"]).ok();
    client
        .exec(&["ip", "addr", "add", "10.214.0.2/30", "dev", &c_if])
        .ok();
    client.exec(&["ip", "link", "set", &c_if, "up"]).ok();
    // What dockerd's iptables set-up leaves in the filter table.
    host.exec(&["iptables", "-P", "FORWARD", "DROP"]).ok();
    host.exec(&["iptables", "-N", "DOCKER-USER"]).ok();
    host.exec(&["iptables", "-A", "FORWARD", "-j", "DOCKER-USER"])
        .ok();

    let daemon = TestDaemon::start(DaemonOptions {
        netns: Some(host.path().into()),
        ..DaemonOptions::default()
    })
    .expect("start corral in the host namespace");
    let w = World {
        daemon,
        _client: client,
        _host: host,
    };
    let (host, client) = (&w._host, &w._client);
    assert_contains(
        &w.daemon.log_tail(),
        "the host firewall blocks forwarded container traffic",
    );

    // The host namespace reaches no registry: load the image from an OCI layout tarball.
    let layout = BusyboxImage::new()
        .ref_name("fwtest/busybox:latest")
        .applet("ping")
        .build_temp()
        .expect("busybox layout");
    let tar = tempfile::NamedTempFile::new().unwrap();
    let tar_path = tar.path().to_str().unwrap();
    run(&[
        "tar",
        "-C",
        layout.dir().to_str().unwrap(),
        "-cf",
        tar_path,
        ".",
    ])
    .ok();
    w.docker(&["load", "-i", tar_path]).ok();
    let id = w
        .docker(&[
            "run",
            "-d",
            "-p",
            "8080:80",
            "fwtest/busybox:latest",
            "sh",
            "-c",
            "echo hello-from-corral > /tmp/index.html && exec httpd -f -p 80 -h /tmp",
        ])
        .ok()
        .out()
        .trim()
        .to_owned();

    let warnings = w.docker(&["info", "--format", "{{json .Warnings}}"]);
    assert_contains(warnings.out(), "chain ip filter FORWARD");
    assert_contains(
        warnings.out(),
        "iptables -I DOCKER-USER -i cr+ -j ACCEPT && iptables -I DOCKER-USER -o cr+ -j ACCEPT",
    );
    // Blocked both ways: another machine cannot reach the published port, and the container
    // cannot reach another machine.
    // curl (scripts/install-deps) with a bound: a DROP leaves the connect hanging.
    let fetch = || client.exec(&["curl", "-s", "--max-time", "3", "http://10.214.0.1:8080/"]);
    assert!(
        !fetch().success(),
        "published port answered through a DROP policy"
    );
    let ping = || w.docker(&["exec", &id, "ping", "-c", "1", "-W", "2", "10.214.0.2"]);
    assert!(!ping().success(), "container egress passed a DROP policy");
    // From the host itself the port answers: local traffic is not forwarded.
    assert_contains(
        host.exec(&["curl", "-s", "--max-time", "5", "http://127.0.0.1:8080/"])
            .ok()
            .out(),
        "hello-from-corral",
    );

    // The rules the warning names open both directions and clear the warning.
    host.exec(&["iptables", "-I", "DOCKER-USER", "-i", "cr+", "-j", "ACCEPT"])
        .ok();
    host.exec(&["iptables", "-I", "DOCKER-USER", "-o", "cr+", "-j", "ACCEPT"])
        .ok();
    assert_eventually!(fetch().out().contains("hello-from-corral"));
    ping().ok();
    let warnings = w.docker(&["info", "--format", "{{json .Warnings}}"]);
    assert!(
        !warnings.out().contains("DOCKER-USER"),
        "warning left after the rules were added: {}",
        warnings.out()
    );
}
