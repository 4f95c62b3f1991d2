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
