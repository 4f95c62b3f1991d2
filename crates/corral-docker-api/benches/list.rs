//! `docker ps -a` rendering: the `GET /containers/json` body for 500 containers.
#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::BTreeMap;

use chrono::Utc;
use corral_core::{
    ContainerId, ContainerName, ContainerRecord, ContainerSpec, ContainerState, ContainerStatus,
};
use corral_docker_api::list::{render_container_list, ListLookups};
use criterion::{criterion_group, criterion_main, Criterion};

fn record(i: usize) -> ContainerRecord {
    let id = format!("{i:064x}");
    let mut labels = BTreeMap::new();
    if i.is_multiple_of(2) {
        labels.insert("com.example.tier".to_owned(), "web".to_owned());
    }
    ContainerRecord {
        id: ContainerId::try_from(id).unwrap(),
        name: ContainerName::parse(&format!("bench-api-{i}")).unwrap(),
        created: Utc::now(),
        path: "sleep".into(),
        args: vec!["3600".into()],
        image_id: format!("sha256:{:064x}", 7),
        env: vec!["PATH=/usr/bin:/bin".into()],
        runtime: "libcontainer".into(),
        volume_mounts: Vec::new(),
        spec: ContainerSpec {
            image: "busybox".into(),
            cmd: Some(vec!["sleep".into(), "3600".into()]),
            labels,
            ..ContainerSpec::default()
        },
        state: ContainerState {
            status: if i.is_multiple_of(3) {
                ContainerStatus::Running
            } else {
                ContainerStatus::Created
            },
            started_at: Some(Utc::now()),
            ..ContainerState::default()
        },
    }
}

fn list(c: &mut Criterion) {
    let records: Vec<ContainerRecord> = (0..500).map(record).collect();
    let shown: Vec<&ContainerRecord> = records.iter().collect();
    let lookups = ListLookups {
        volume_mountpoint: &|n| format!("/var/lib/corral/volumes/{n}/_data"),
        network: &|_| None,
    };
    c.bench_function("container_list_500", |b| {
        b.iter(|| render_container_list(&shown, Utc::now(), false, &lookups).unwrap());
    });
}

criterion_group!(benches, list);
criterion_main!(benches);
