//! The dependency graph is the architecture: a crate may depend only on Corral crates of a
//! lower layer (docs/architecture.md, shared/STYLE.md). This test reads `cargo metadata`
//! and fails on a forbidden edge.

use std::collections::BTreeMap;
use std::process::Command;

fn layer(name: &str) -> Option<u32> {
    Some(match name {
        "corral-core" => 0,
        "corral-sys" | "corral-oci" | "corral-compose" | "corral-scheduler"
        | "corral-telemetry" => 1,
        "corral-image" | "corral-runtime" | "corral-network" | "corral-volume" | "corral-dns"
        | "corral-lb" | "corral-store" | "corral-client" | "corral-provision" => 2,
        "corral-engine" | "corral-control" => 3,
        "corral-agent" | "corral-docker-api" | "corral-api" => 4,
        "corral" => 5,
        _ => return None,
    })
}

#[test]
fn crates_depend_only_on_lower_layers() {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let mut edges: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for pkg in meta["packages"].as_array().expect("packages") {
        let name = pkg["name"].as_str().unwrap_or_default().to_owned();
        for dep in pkg["dependencies"].as_array().into_iter().flatten() {
            let dep_name = dep["name"].as_str().unwrap_or_default().to_owned();
            let kind = dep["kind"].as_str().unwrap_or("normal").to_owned();
            edges
                .entry(name.clone())
                .or_default()
                .push((dep_name, kind));
        }
    }
    let mut bad = Vec::new();
    for (from, deps) in &edges {
        for (to, kind) in deps {
            if to == "corral-testkit" && kind != "dev" && from != "corral-bench" {
                bad.push(format!("{from} -> corral-testkit outside dev-dependencies"));
            }
            let (Some(lf), Some(lt)) = (layer(from), layer(to)) else {
                continue;
            };
            if kind == "dev" {
                continue;
            }
            // Layer 1's corral-sys depends on nothing of Corral's; others only go down.
            let ok = if from == "corral-sys" { false } else { lt < lf };
            if !ok {
                bad.push(format!("{from} (layer {lf}) -> {to} (layer {lt})"));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "forbidden dependency edges:\n{}",
        bad.join("\n")
    );
    assert!(
        edges.contains_key("corral-engine"),
        "metadata lists the workspace"
    );
}
