//! Unit tests of the engine's record bookkeeping: the order in which saves of one
//! container reach the store, and renames racing with state updates.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use corral_core::{ContainerId, ContainerName, ContainerRecord};

use super::{Entry, LocalEngine};

fn config(root: &Path) -> crate::EngineConfig {
    crate::EngineConfig {
        data_dir: root.join("d"),
        run_dir: root.join("r"),
        instance: "rectest".into(),
        shim_exe: PathBuf::from("/bin/false"),
        default_runtime: "runc".into(),
        runtimes: BTreeMap::new(),
        insecure_registries: Vec::new(),
        log_max_size: 0,
        log_max_files: 1,
    }
}

/// Inserts a created container named `name` into the store and the engine's table.
fn add(engine: &LocalEngine, name: &str) -> Arc<Entry> {
    let rec = ContainerRecord {
        id: ContainerId::random(),
        name: ContainerName::parse(name).unwrap(),
        created: Utc::now(),
        path: "sh".into(),
        args: vec![],
        env: vec![],
        image_id: "sha256:x".into(),
        runtime: "runc".into(),
        spec: corral_core::ContainerSpec {
            image: "busybox".into(),
            ..Default::default()
        },
        state: Default::default(),
        volume_mounts: vec![],
    };
    engine.inner.store.insert_container(&rec).unwrap();
    let entry = Entry::new(rec.clone());
    engine
        .inner
        .containers
        .write()
        .insert(rec.id, entry.clone());
    entry
}

fn stored(engine: &LocalEngine, id: &ContainerId) -> ContainerRecord {
    engine
        .inner
        .store
        .containers()
        .unwrap()
        .into_iter()
        .find(|r| &r.id == id)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_saves_and_renames_leave_the_store_equal_to_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let engine = LocalEngine::open(config(tmp.path())).await.unwrap();
    let entry = add(&engine, "racer");
    let id = entry.snapshot().id;
    for round in 0..60 {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..8 {
            let (engine, entry) = (engine.clone(), entry.clone());
            tasks.spawn(async move {
                if i == 0 {
                    let now = entry.snapshot().name.to_string();
                    let next = format!("racer-{round}");
                    engine.rename(&now, &next).await.unwrap();
                } else {
                    engine
                        .update(&entry, |r| r.state.restart_count += 1)
                        .await
                        .unwrap();
                }
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
        assert_eq!(
            stored(&engine, &id),
            entry.snapshot(),
            "round {round}: the store holds an older record than memory"
        );
    }
    assert_eq!(entry.snapshot().state.restart_count, 60 * 7);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn renames_to_one_name_let_exactly_one_win_and_keep_state_updates() {
    let tmp = tempfile::tempdir().unwrap();
    let engine = LocalEngine::open(config(tmp.path())).await.unwrap();
    for round in 0..20 {
        let a = add(&engine, &format!("a-{round}"));
        let b = add(&engine, &format!("b-{round}"));
        let target = format!("x-{round}");
        let mut tasks = tokio::task::JoinSet::new();
        for (from, entry) in [
            (format!("a-{round}"), a.clone()),
            (format!("b-{round}"), b.clone()),
        ] {
            let (engine, target) = (engine.clone(), target.clone());
            tasks.spawn(async move {
                let res = engine.rename(&from, &target).await;
                engine
                    .update(&entry, |r| r.state.restart_count += 1)
                    .await
                    .unwrap();
                res.is_ok()
            });
        }
        let mut wins = 0;
        while let Some(r) = tasks.join_next().await {
            wins += usize::from(r.unwrap());
        }
        assert_eq!(wins, 1, "round {round}");
        let names: Vec<String> = [&a, &b]
            .iter()
            .map(|e| e.snapshot().name.to_string())
            .collect();
        assert_eq!(
            names.iter().filter(|n| **n == target).count(),
            1,
            "{names:?}"
        );
        for e in [&a, &b] {
            let rec = e.snapshot();
            assert_eq!(rec.state.restart_count, 1);
            assert_eq!(stored(&engine, &rec.id), rec);
        }
    }
    engine.shutdown().await;
}
