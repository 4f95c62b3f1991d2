//! `docker update`: limits and restart policy of running and stopped containers, checked
//! from the container's own cgroup files, and dockerd's validation messages.

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
fn update_cpu_quota_period_cpusets_and_memory_reservation() {
    let env = Env::new();
    let name = env.sleeper("updq", &[]);
    let out = env.docker(&[
        "update",
        "--cpu-period",
        "50000",
        "--cpu-quota",
        "20000",
        "--cpuset-cpus",
        "0",
        "--cpuset-mems",
        "0",
        "--memory-reservation",
        "16m",
        &name,
    ]);
    assert_eq!(out.ok().out(), name);
    assert_eq!(
        env.inspect(
            "{{.HostConfig.CpuPeriod}} {{.HostConfig.CpuQuota}} {{.HostConfig.CpusetCpus}} {{.HostConfig.CpusetMems}} {{.HostConfig.MemoryReservation}}",
            &name
        ),
        "50000 20000 0 0 16777216"
    );
    for (file, want) in [
        ("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "50000"),
        ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "20000"),
        ("/sys/fs/cgroup/cpuset/cpuset.cpus", "0"),
        ("/sys/fs/cgroup/cpuset/cpuset.mems", "0"),
        (
            "/sys/fs/cgroup/memory/memory.soft_limit_in_bytes",
            "16777216",
        ),
    ] {
        assert_eq!(cgroup_file(&env, &name, file), want, "{file}");
    }
    // `--cpus` and a CFS quota do not mix.
    let out = env.docker(&["update", "--cpus", "0.5", &name]);
    assert_contains(
        &out.failed().stderr,
        "Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set",
    );
    // A cpuset outside the host's is refused with what the host offers.
    let out = env.docker(&["update", "--cpuset-cpus", "64", &name]);
    assert_contains(
        &out.failed().stderr,
        "Requested CPUs are not available - requested 64, available: ",
    );
    assert_eq!(env.inspect("{{.HostConfig.CpusetCpus}}", &name), "0");
    assert_eq!(env.inspect("{{.State.Running}}", &name), "true");
}

#[test]
#[ignore = "needs root: starts a registry and the engine under test"]
fn update_blkio_weight_applies_or_warns_when_the_host_cannot() {
    let env = Env::new();
    let name = env.sleeper("updblk", &[]);
    let out = env.docker(&["update", "--blkio-weight", "5", &name]);
    let supported = std::path::Path::new("/sys/fs/cgroup/blkio/blkio.weight").exists();
    if supported {
        assert_contains(
            &out.failed().stderr,
            "Range of blkio weight is from 10 to 1000",
        );
    }
    let out = env.docker(&["update", "--blkio-weight", "300", &name]);
    assert_eq!(out.ok().out().lines().next(), Some(name.as_str()), "{out}");
    if supported {
        assert_eq!(env.inspect("{{.HostConfig.BlkioWeight}}", &name), "300");
        assert_eq!(
            cgroup_file(&env, &name, "/sys/fs/cgroup/blkio/blkio.weight"),
            "300"
        );
    } else {
        // dockerd drops the weight with a warning on a host without the knob (CLI 28 prints
        // it after the name).
        assert_contains(
            &format!("{}{}", out.stdout, out.stderr),
            "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.",
        );
        assert_eq!(env.inspect("{{.HostConfig.BlkioWeight}}", &name), "0");
    }
}
