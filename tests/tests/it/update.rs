//! `docker update`: limits and restart policy of running and stopped containers, checked
//! from the container's own cgroup files, and dockerd's validation messages.

use corral_testkit::known_gap;

use crate::common::{assert_contains, Env};

fn cgroup_file(env: &Env, name: &str, path: &str) -> String {
    env.docker(&["exec", name, "cat", path])
        .ok()
        .out()
        .to_owned()
}

#[test]
#[ignore = "needs root: starts a registry and the engine under test"]
fn update_changes_limits_of_a_running_container() {
    let env = Env::new();
    let name = env.sleeper("upd", &["-m", "32m"]);
    let out = env.docker(&[
        "update",
        "-m",
        "64m",
        "--memory-swap",
        "128m",
        "--cpus",
        "0.5",
        "--cpu-shares",
        "512",
        "--pids-limit",
        "50",
        "--restart",
        "on-failure:2",
        &name,
    ]);
    assert_eq!(out.ok().out(), name);
    assert_eq!(
        env.inspect(
            "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}} {{.HostConfig.CpuShares}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}",
            &name
        ),
        "67108864 134217728 500000000 512 50 on-failure:2"
    );
    assert_eq!(
        cgroup_file(&env, &name, "/sys/fs/cgroup/memory/memory.limit_in_bytes"),
        "67108864"
    );
    assert_eq!(
        cgroup_file(&env, &name, "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
        "50000"
    );
    assert_eq!(
        cgroup_file(&env, &name, "/sys/fs/cgroup/cpu/cpu.shares"),
        "512"
    );
    assert_eq!(
        cgroup_file(&env, &name, "/sys/fs/cgroup/pids/pids.max"),
        "50"
    );
    // The container kept running through it.
    assert_eq!(env.inspect("{{.State.Running}}", &name), "true");
}

#[test]
#[ignore = "needs root: starts a registry and the engine under test"]
fn update_of_a_created_container_applies_at_start() {
    let env = Env::new();
    let name = env.name("updc");
    env.docker(&[
        "create",
        "--network",
        "none",
        "--name",
        &name,
        &env.image,
        "sleep",
        "1000",
    ])
    .ok();
    // dockerd wants the swap limit with a first memory limit on a created container.
    env.docker(&["update", "-m", "48m", "--memory-swap", "-1", &name])
        .ok();
    env.docker(&["start", &name]).ok();
    assert_eq!(
        cgroup_file(&env, &name, "/sys/fs/cgroup/memory/memory.limit_in_bytes"),
        (48u64 << 20).to_string()
    );
}

#[test]
#[ignore = "needs root: starts a registry and the engine under test"]
fn update_refuses_bad_values_and_unknown_containers() {
    let env = Env::new();
    let name = env.sleeper("updbad", &[]);
    let out = env.docker(&["update", "-m", "1k", &name]);
    assert_contains(
        &out.failed().stderr.to_lowercase(),
        "minimum memory limit allowed is 6mb",
    );
    let out = env.docker(&["update", "--restart", "always:3", &name]);
    out.failed();
    let out = env.docker(&["update", "-m", "64m", "e2e-no-such-container"]);
    assert_contains(&out.failed().stderr, "No such container");
    // Nothing changed.
    assert_eq!(env.inspect("{{.HostConfig.Memory}}", &name), "0");
}

#[test]
#[ignore = "needs root: starts a registry and the engine under test"]
fn update_cpu_quota_and_cpuset() {
    let env = Env::new();
    let name = env.sleeper("updq", &[]);
    known_gap(
        "docker update --cpu-quota/--cpu-period/--cpuset-cpus: Corral models CPUs as NanoCpus only",
        || {
            env.docker(&[
                "update",
                "--cpu-quota",
                "20000",
                "--cpuset-cpus",
                "0",
                &name,
            ])
            .ok();
            assert_eq!(
                cgroup_file(&env, &name, "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
                "20000"
            );
        },
    );
}
