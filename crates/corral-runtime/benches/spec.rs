//! OCI spec generation: `build_spec` for a default `docker run` and the `config.json`
//! it is written as (both on the path of every container start).
#![allow(missing_docs, clippy::unwrap_used)]

use corral_core::ContainerSpec;
use corral_runtime::spec::{build_spec, SpecInput};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;

fn spec(c: &mut Criterion) {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    std::fs::write(
        root.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(root.path().join("etc/group"), "root:x:0:\napp:x:1000:\n").unwrap();
    let image = json!({"config": {"Cmd": ["sh"], "Env": ["PATH=/usr/bin:/bin"]}});
    let container = ContainerSpec {
        image: "busybox".into(),
        cmd: Some(vec!["sleep".into(), "3600".into()]),
        env: vec!["A=1".into(), "B=2".into()],
        ..ContainerSpec::default()
    };
    let id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let input = SpecInput::new(id, &container, &image, root.path());

    c.bench_function("build_spec_default", |b| {
        b.iter(|| build_spec(std::hint::black_box(&input)).unwrap());
    });
    let built = build_spec(&input).unwrap();
    // The engine writes config.json pretty-printed, as runc's `spec` does.
    c.bench_function("spec_to_config_json", |b| {
        b.iter(|| serde_json::to_vec_pretty(std::hint::black_box(&built)).unwrap());
    });
}

criterion_group!(benches, spec);
criterion_main!(benches);
