//! `/info`: the values it reports come from the host and the daemon's configuration.

use serde_json::{json, Value};

use crate::common::Env;

#[test]
#[ignore = "needs root: starts an engine"]
fn info_reports_swap_accounting_forwarding_and_insecure_registries() {
    let env = Env::unpulled();
    let info: Value =
        serde_json::from_str(env.docker(&["info", "--format", "{{json .}}"]).ok().out())
            .expect("info JSON");
    let forwarding = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
        .expect("read ip_forward")
        .trim()
        == "1";
    assert_eq!(info["IPv4Forwarding"], json!(forwarding), "{info:#}");
    let swap = [
        "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes",
        "/sys/fs/cgroup/memory.swap.max",
    ]
    .iter()
    .any(|p| std::path::Path::new(p).exists());
    assert_eq!(info["SwapLimit"], json!(swap), "{info:#}");
    let reg = &info["RegistryConfig"];
    // The engine was started with `--insecure-registry <the test registry>`.
    let host = env.registry.host();
    assert_eq!(
        reg["IndexConfigs"][&host],
        json!({"Name": host, "Mirrors": [], "Secure": false, "Official": false}),
        "{reg:#}"
    );
    assert_eq!(
        reg["IndexConfigs"]["docker.io"]["Official"],
        json!(true),
        "{reg:#}"
    );
    assert_eq!(
        reg["InsecureRegistryCIDRs"],
        json!(["127.0.0.0/8"]),
        "{reg:#}"
    );
    // The CLI prints the list users read.
    let text = env.docker(&["info"]).ok().out().to_owned();
    let listed = text
        .split_once("Insecure Registries:")
        .map(|(_, rest)| rest.to_owned())
        .unwrap_or_default();
    assert!(
        listed.contains(&host) && listed.contains("127.0.0.0/8"),
        "{text}"
    );
}

/// Disk use, as dockerd counts it: `inspect -s` and `ps -s` give the bytes a container
/// wrote (a hard-linked file once) and that plus its image; `system df` counts images,
/// containers and their sizes.
#[test]
#[ignore = "needs root: starts an engine"]
fn disk_use_counts_what_containers_wrote_and_the_image_layers() {
    let env = Env::new();
    let name = env.name("du");
    env.docker(&[
        "run",
        "--name",
        &name,
        "--network",
        "none",
        &env.image,
        "sh",
        "-c",
        "dd if=/dev/zero of=/big bs=1024 count=100 2>/dev/null && ln /big /big2",
    ])
    .ok();
    let num = |s: String| -> u64 { s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}")) };
    let rw = num(env
        .docker(&["inspect", "-s", "-f", "{{.SizeRw}}", &name])
        .ok()
        .out()
        .to_owned());
    assert!((102_400..102_400 + 16_384).contains(&rw), "SizeRw {rw}");
    let root_fs = num(env
        .docker(&["inspect", "-s", "-f", "{{.SizeRootFs}}", &name])
        .ok()
        .out()
        .to_owned());
    let image = num(env.inspect("{{.Size}}", &env.image));
    assert!(image > 0);
    assert_eq!(root_fs, rw + image);
    // Without -s there are no sizes.
    assert_eq!(
        env.docker(&["inspect", "-f", "{{json .SizeRw}}", &name])
            .ok()
            .out(),
        "null"
    );
    let ps = env
        .docker(&[
            "ps",
            "-a",
            "-s",
            "--format",
            "{{.Size}}",
            "--filter",
            &format!("name={name}"),
        ])
        .ok()
        .out()
        .to_owned();
    assert!(ps.starts_with("102kB (virtual "), "{ps}");

    let df = env
        .docker(&[
            "system",
            "df",
            "--format",
            "{{.Type}} {{.TotalCount}} {{.Active}} {{.Size}}",
        ])
        .ok()
        .out()
        .to_owned();
    let lines: Vec<&str> = df.lines().collect();
    assert!(lines[0].starts_with("Images 1 1 "), "{df}");
    assert!(!lines[0].ends_with(" 0B"), "{df}");
    assert_eq!(lines[1], "Containers 1 0 102.4kB", "{df}");
}
