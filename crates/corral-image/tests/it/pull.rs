//! Pulls through [`Puller`] from a local registry.

use std::collections::HashMap;
use std::sync::Arc;

use corral_core::error::Classify;
use corral_core::ErrorKind;
use corral_image::{
    Error, ImageStore, PullProgress, PulledImage, Puller, PullerConfig, RegistryAuth,
};
use corral_oci::{Digest, Reference};
use tokio::sync::mpsc;

use crate::harness::{arches, gzip_layer, zstd_layer, BuiltImage, Layout, Registry, TestLayer};

struct Fixture {
    registry: Registry,
    base: TestLayer,
    top: TestLayer,
    zst: TestLayer,
    gz: BuiltImage,
    zstd: BuiltImage,
    multi_index: Digest,
    multi_host: BuiltImage,
    _layout: Layout,
}

/// One registry with: `test/img:gz` (OCI, two gzip layers), `test/docker:gz` (the same as
/// Docker schema2), `test/zstd:zst` (gzip base + zstd top), `test/multi:multi` (an index with
/// the host platform and another one).
fn fixture() -> Fixture {
    let registry = Registry::start();
    let mut layout = Layout::new();
    let (host, other) = arches();
    let base = gzip_layer(&[
        ("etc/os-release", b"NAME=corral-test\n"),
        ("bin/tool", b"#!/bin/sh\n"),
    ]);
    // No whiteouts here: they need root (mknod) and are covered by the unit tests, so
    // these tests run unprivileged.
    let top = gzip_layer(&[("app/hello.txt", b"hello\n"), ("bin/tool", b"v2\n")]);
    let zst = zstd_layer(&[("app/zstd.txt", b"compressed with zstd\n")]);
    let other_layer = gzip_layer(&[("other", b"not for this host\n")]);

    let (gz, desc) = layout.image(&[base.clone(), top.clone()], &host, "/gz");
    layout.tag(desc, "gz");
    let (zstd, desc) = layout.image(&[base.clone(), zst.clone()], &host, "/zstd");
    layout.tag(desc, "zst");
    let (multi_host, host_desc) = layout.image(std::slice::from_ref(&base), &host, "/host");
    let (_other, other_desc) = layout.image(&[other_layer], other, "/other");
    let (multi_index, index_desc) = layout.index(&[other_desc, host_desc]);
    layout.tag(index_desc, "multi");

    registry.push(&layout.path(), "gz", "test/img", &[]);
    registry.push(&layout.path(), "gz", "test/docker", &["--format", "v2s2"]);
    registry.push(&layout.path(), "zst", "test/zstd", &[]);
    registry.push(&layout.path(), "multi", "test/multi", &["--all"]);
    Fixture {
        registry,
        base,
        top,
        zst,
        gz,
        zstd,
        multi_index,
        multi_host,
        _layout: layout,
    }
}

fn puller() -> (tempfile::TempDir, Arc<ImageStore>, Puller) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ImageStore::open(dir.path()).unwrap());
    let p = Puller::new(store.clone(), PullerConfig::default());
    (dir, store, p)
}

async fn pull(p: &Puller, reference: &str) -> (Result<PulledImage, Error>, Vec<PullProgress>) {
    let r = Reference::parse(reference).unwrap();
    let (tx, mut rx) = mpsc::channel(1024);
    let res = p.pull(&r, &RegistryAuth::Anonymous, tx).await;
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    (res, events)
}

fn count(events: &[PullProgress], f: impl Fn(&PullProgress) -> bool) -> usize {
    events.iter().filter(|e| f(e)).count()
}

#[tokio::test]
async fn pulls_oci_and_docker_schema2_images_and_reuses_layers() {
    let fx = fixture();
    let (_dir, store, p) = puller();

    let (res, events) = pull(&p, &format!("{}/test/img:gz", fx.registry.addr)).await;
    let img = res.unwrap();
    assert_eq!(img.config_digest, fx.gz.config_digest);
    assert_eq!(img.manifest_digest, fx.gz.manifest_digest);
    assert_eq!(img.config["config"]["Cmd"][0], "/gz");
    assert_eq!(img.created.to_rfc3339(), "2024-01-02T03:04:05+00:00");
    // Size counts file content (moby's diff size), less than the tars' length.
    assert!(
        img.size > 0 && img.size < fx.base.tar_len + fx.top.tar_len,
        "{}",
        img.size
    );
    let digests: Vec<&str> = img.layers.iter().map(|l| l.digest.as_str()).collect();
    assert_eq!(
        digests,
        vec![fx.base.digest.as_str(), fx.top.digest.as_str()]
    );
    assert_eq!(img.layers[1].diff_id, fx.top.diff_id.to_string());
    assert_eq!(img.layers[1].size, fx.top.blob.len() as u64);

    // Layers are unpacked.
    let base_dir = store.layers().path(&fx.base.diff_id);
    let top_dir = store.layers().path(&fx.top.diff_id);
    assert_eq!(
        std::fs::read_to_string(base_dir.join("etc/os-release")).unwrap(),
        "NAME=corral-test\n"
    );
    assert_eq!(
        std::fs::read_to_string(top_dir.join("app/hello.txt")).unwrap(),
        "hello\n"
    );
    assert_eq!(
        std::fs::read_to_string(top_dir.join("bin/tool")).unwrap(),
        "v2\n"
    );
    assert!(
        store.content().contains(&fx.base.digest) && store.content().contains(&fx.gz.config_digest)
    );

    assert_eq!(events.first(), Some(&PullProgress::Resolving));
    assert_eq!(
        events.last(),
        Some(&PullProgress::Done {
            manifest_digest: fx.gz.manifest_digest.clone()
        })
    );
    for l in [&fx.base, &fx.top] {
        let d = l.digest.clone();
        assert_eq!(
            count(&events, |e| *e
                == PullProgress::PullingFsLayer { digest: d.clone() }),
            1
        );
        assert_eq!(
            count(&events, |e| *e
                == PullProgress::DownloadComplete { digest: d.clone() }),
            1
        );
        assert_eq!(
            count(&events, |e| *e
                == PullProgress::Extracting { digest: d.clone() }),
            1
        );
        assert_eq!(
            count(&events, |e| *e
                == PullProgress::PullComplete { digest: d.clone() }),
            1
        );
        assert!(events.contains(&PullProgress::Downloading {
            digest: d.clone(),
            current: l.blob.len() as u64,
            total: l.blob.len() as u64
        }));
    }

    // The same image as Docker schema2: a different manifest, the same layers.
    let (res, events) = pull(&p, &format!("{}/test/docker:gz", fx.registry.addr)).await;
    let docker = res.unwrap();
    assert_ne!(docker.manifest_digest, img.manifest_digest);
    assert_eq!(docker.config_digest, img.config_digest);
    assert_eq!(
        docker.layers[0].media_type,
        corral_oci::media_type::DOCKER_LAYER_GZIP
    );
    assert_eq!(docker.size, img.size);
    assert_eq!(
        count(&events, |e| matches!(
            e,
            PullProgress::LayerAlreadyExists { .. }
        )),
        2
    );
    assert_eq!(
        count(&events, |e| matches!(e, PullProgress::Downloading { .. })),
        0
    );
}

#[tokio::test]
async fn pulls_zstd_layers_by_digest_and_resolves_indexes() {
    let fx = fixture();
    let (_dir, store, p) = puller();

    let by_digest = format!("{}/test/zstd@{}", fx.registry.addr, fx.zstd.manifest_digest);
    let (res, _) = pull(&p, &by_digest).await;
    let img = res.unwrap();
    assert_eq!(img.manifest_digest, fx.zstd.manifest_digest);
    let zdir = store.layers().path(&fx.zst.diff_id);
    assert_eq!(
        std::fs::read_to_string(zdir.join("app/zstd.txt")).unwrap(),
        "compressed with zstd\n"
    );

    let (res, events) = pull(&p, &format!("{}/test/multi:multi", fx.registry.addr)).await;
    let img = res.unwrap();
    assert_eq!(
        img.manifest_digest, fx.multi_index,
        "RepoDigest is the index digest"
    );
    assert_eq!(img.config_digest, fx.multi_host.config_digest);
    assert_eq!(img.config["config"]["Cmd"][0], "/host");
    assert_eq!(img.layers.len(), 1);
    assert!(events.contains(&PullProgress::LayerAlreadyExists {
        digest: fx.base.digest.clone()
    }));
}

#[tokio::test]
async fn reports_missing_images_and_wrong_digests() {
    let fx = fixture();
    let (_dir, store, p) = puller();

    let (res, _) = pull(&p, &format!("{}/test/img:nope", fx.registry.addr)).await;
    let err = res.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "manifest for {}/test/img:nope not found: manifest unknown",
            fx.registry.addr
        )
    );
    let (res, _) = pull(&p, &format!("{}/no/such/repo:1", fx.registry.addr)).await;
    assert_eq!(res.unwrap_err().kind(), ErrorKind::NotFound);

    let unknown = Digest::sha256_of(b"no such manifest");
    let (res, _) = pull(&p, &format!("{}/test/img@{unknown}", fx.registry.addr)).await;
    assert_eq!(res.unwrap_err().kind(), ErrorKind::NotFound);

    // Nothing half-written is left by failed pulls.
    assert_eq!(
        std::fs::read_dir(store.root().join("layers/sha256"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(store.root().join("blobs/tmp"))
            .unwrap()
            .count(),
        0
    );
}

#[tokio::test]
async fn concurrent_pulls_download_a_shared_layer_once() {
    let fx = fixture();
    let (_dir, _store, p) = puller();
    let a = format!("{}/test/img:gz", fx.registry.addr);
    let b = format!("{}/test/zstd:zst", fx.registry.addr);
    let ((ra, ea), (rb, eb)) = tokio::join!(pull(&p, &a), pull(&p, &b));
    ra.unwrap();
    rb.unwrap();
    let all: Vec<PullProgress> = ea.into_iter().chain(eb).collect();
    let mut completes: HashMap<Digest, usize> = HashMap::new();
    for e in &all {
        if let PullProgress::DownloadComplete { digest } = e {
            *completes.entry(digest.clone()).or_default() += 1;
        }
    }
    assert_eq!(completes.get(&fx.base.digest), Some(&1), "{all:#?}");
    assert_eq!(
        count(&all, |e| *e
            == PullProgress::LayerAlreadyExists {
                digest: fx.base.digest.clone()
            }),
        1
    );
}

#[tokio::test]
async fn tampered_layer_blob_is_rejected_and_leaves_nothing() {
    let fx = fixture();
    fx.registry.tamper_blob(&fx.top.digest);
    let (_dir, store, p) = puller();
    let (res, _) = pull(&p, &format!("{}/test/img:gz", fx.registry.addr)).await;
    let err = res.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains(fx.top.digest.as_str()), "{err}");
    assert!(!store.content().contains(&fx.top.digest));
    assert!(!store.layers().contains(&fx.top.diff_id));
    assert_eq!(
        std::fs::read_dir(store.root().join("blobs/tmp"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(store.root().join("layers/tmp"))
            .unwrap()
            .count(),
        0
    );
}
