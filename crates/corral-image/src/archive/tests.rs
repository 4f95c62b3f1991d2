//! Save/load round trips and malformed tarballs.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use corral_core::error::Classify;
use corral_core::ErrorKind;
use corral_oci::media_type;
use serde_json::{json, Value};

use super::*;
use crate::error::Error;
use crate::store::ImageStore;

/// A layer tar holding `name` with `content`.
fn layer_tar(name: &str, content: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, name, content).unwrap();
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn config_for(layers: &[&[u8]]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| Digest::sha256_of(l).to_string())
        .collect();
    serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-02T03:04:05Z",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap()
}

/// Appends a regular file to a tar builder.
fn add(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, path, data).unwrap();
}

/// An old-style (dockerd 20) docker-archive: `<id>/layer.tar`, `<config>.json`.
fn docker20_archive(config: &[u8], layers: &[&[u8]], tags: Value) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let cfg_name = format!("{}.json", Digest::sha256_of(config).hex());
    add(&mut b, &cfg_name, config);
    let mut names = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let n = format!("l{i}/layer.tar");
        add(&mut b, &n, l);
        names.push(n);
    }
    let manifest = json!([{"Config": cfg_name, "RepoTags": tags, "Layers": names}]);
    add(&mut b, "manifest.json", manifest.to_string().as_bytes());
    b.into_inner().unwrap()
}

fn store() -> (tempfile::TempDir, ImageStore) {
    let d = tempfile::tempdir().unwrap();
    let s = ImageStore::open(d.path()).unwrap();
    (d, s)
}

fn count(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map(|r| r.count()).unwrap_or(0)
}

/// Nothing was stored: no blobs, no layers, no leftover temp dirs.
fn assert_empty(dir: &tempfile::TempDir) {
    let root = dir.path();
    assert_eq!(count(&root.join("blobs/sha256")), 0, "blobs stored");
    assert_eq!(count(&root.join("layers/sha256")), 0, "layers stored");
    assert_eq!(count(&root.join("blobs/tmp")), 0, "temp files left");
}

fn entries(tar_bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut a = tar::Archive::new(tar_bytes);
    let mut out = BTreeMap::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().to_string_lossy().into_owned();
        let mut v = Vec::new();
        e.read_to_end(&mut v).unwrap();
        out.insert(p, v);
    }
    out
}

#[test]
fn loads_a_docker20_archive_and_stores_layers_and_gzip_blobs() {
    let (dir, s) = store();
    let l0 = layer_tar("hello.txt", b"hello");
    let cfg = config_for(&[&l0]);
    let ar = docker20_archive(&cfg, &[&l0], json!(["busybox:latest"]));
    let loaded = load_archive(&s, ar.as_slice(), &BTreeMap::new()).unwrap();
    assert_eq!(loaded.len(), 1);
    let img = &loaded[0];
    assert_eq!(img.config_digest, Digest::sha256_of(&cfg));
    assert_eq!(img.repo_tags, ["busybox:latest"]);
    // Sizes count file content, as for pulled layers.
    assert_eq!(img.size, 5);
    assert_eq!(img.created.to_rfc3339(), "2024-01-02T03:04:05+00:00");
    let l = &img.layers[0];
    assert_eq!(l.diff_id, Digest::sha256_of(&l0).to_string());
    assert_eq!(l.media_type, media_type::DOCKER_LAYER_GZIP);
    let blob = s
        .content()
        .read(&Digest::parse(&l.digest).unwrap())
        .unwrap();
    assert_eq!(blob.len() as u64, l.size);
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(blob.as_slice())
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(plain, l0);
    let diff = Digest::parse(&l.diff_id).unwrap();
    assert_eq!(
        std::fs::read(s.layers().path(&diff).join("hello.txt")).unwrap(),
        b"hello"
    );
    assert!(s.content().contains(&img.config_digest));
    assert_eq!(count(&dir.path().join("blobs/tmp")), 0);
}

#[test]
fn save_then_load_into_a_fresh_store_gives_identical_images() {
    let (_d1, a) = store();
    let l0 = layer_tar("a.txt", b"aaa");
    let l1 = layer_tar("b.txt", b"bbbb");
    let cfg = config_for(&[&l0, &l1]);
    let ar = docker20_archive(&cfg, &[&l0, &l1], json!(["127.0.0.1:5000/x/y:v1"]));
    let first = load_archive(&a, ar.as_slice(), &BTreeMap::new()).unwrap();
    let img = &first[0];
    let saved = write_archive(
        &a,
        &[ArchiveImage {
            config_digest: img.config_digest.clone(),
            layers: img.layers.clone(),
            repo_tags: img.repo_tags.clone(),
        }],
        Vec::new(),
    )
    .unwrap();

    // The tarball is both a docker-archive and an OCI layout.
    let files = entries(&saved);
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let cfg_path = format!("blobs/sha256/{}", img.config_digest.hex());
    assert_eq!(manifest[0]["Config"], cfg_path.as_str());
    assert_eq!(manifest[0]["RepoTags"], json!(["127.0.0.1:5000/x/y:v1"]));
    let layer_paths: Vec<&str> = manifest[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(layer_paths.len(), 2);
    assert_eq!(files[layer_paths[0]], l0);
    assert_eq!(files[layer_paths[1]], l1);
    assert_eq!(files[&cfg_path], cfg);
    assert_eq!(files["oci-layout"], br#"{"imageLayoutVersion":"1.0.0"}"#);
    let index: Value = serde_json::from_slice(&files["index.json"]).unwrap();
    let m = &index["manifests"][0];
    assert_eq!(
        m["annotations"]["io.containerd.image.name"],
        "127.0.0.1:5000/x/y:v1"
    );
    assert_eq!(m["annotations"]["org.opencontainers.image.ref.name"], "v1");
    let mpath = format!(
        "blobs/sha256/{}",
        m["digest"].as_str().unwrap().trim_start_matches("sha256:")
    );
    assert_eq!(
        Digest::sha256_of(&files[&mpath]).as_str(),
        m["digest"].as_str().unwrap()
    );
    let repos: Value = serde_json::from_slice(&files["repositories"]).unwrap();
    assert_eq!(
        repos["127.0.0.1:5000/x/y"]["v1"],
        Digest::sha256_of(&l1).hex()
    );

    // Into a fresh store: same id, same diff_ids, same tags.
    let (_d2, b) = store();
    let second = load_archive(&b, saved.as_slice(), &BTreeMap::new()).unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].config_digest, img.config_digest);
    assert_eq!(second[0].repo_tags, img.repo_tags);
    assert_eq!(second[0].config, img.config);
    let diffs = |i: &LoadedImage| {
        i.layers
            .iter()
            .map(|l| l.diff_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(diffs(&second[0]), diffs(img));
    assert_eq!(second[0].size, img.size);
}

#[test]
fn loading_an_image_again_reuses_known_blobs() {
    let (_d, s) = store();
    let l0 = layer_tar("a.txt", b"aaa");
    let cfg = config_for(&[&l0]);
    let ar = docker20_archive(&cfg, &[&l0], json!(null));
    let first = load_archive(&s, ar.as_slice(), &BTreeMap::new()).unwrap();
    assert!(first[0].repo_tags.is_empty());
    let known: BTreeMap<String, LayerRecord> = first[0]
        .layers
        .iter()
        .map(|l| (l.diff_id.clone(), l.clone()))
        .collect();
    let again = load_archive(&s, ar.as_slice(), &known).unwrap();
    assert_eq!(again[0].layers, first[0].layers);
}

/// An OCI layout tarball (as skopeo or dockerd 25 write it) with a gzip layer.
fn oci_archive(layer_gz: &[u8], config: &[u8], annotations: Value) -> Vec<u8> {
    let ld = Digest::sha256_of(layer_gz);
    let cd = Digest::sha256_of(config);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": media_type::OCI_MANIFEST,
        "config": {"mediaType": media_type::OCI_CONFIG, "digest": cd.as_str(), "size": config.len()},
        "layers": [{"mediaType": media_type::OCI_LAYER_GZIP, "digest": ld.as_str(), "size": layer_gz.len()}],
    })
    .to_string();
    let md = Digest::sha256_of(manifest.as_bytes());
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": media_type::OCI_MANIFEST, "digest": md.as_str(), "size": manifest.len(), "annotations": annotations}],
    });
    let mut b = tar::Builder::new(Vec::new());
    add(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    add(&mut b, &format!("blobs/sha256/{}", ld.hex()), layer_gz);
    add(&mut b, &format!("blobs/sha256/{}", cd.hex()), config);
    add(
        &mut b,
        &format!("blobs/sha256/{}", md.hex()),
        manifest.as_bytes(),
    );
    add(&mut b, "index.json", index.to_string().as_bytes());
    b.into_inner().unwrap()
}

#[test]
fn loads_an_oci_layout_keeping_compressed_blobs() {
    let (_d, s) = store();
    let l0 = layer_tar("x", b"oci");
    let gz = gzip(&l0);
    let cfg = config_for(&[&l0]);
    let ar = oci_archive(
        &gz,
        &cfg,
        json!({"io.containerd.image.name": "docker.io/library/busybox:1.36", "org.opencontainers.image.ref.name": "1.36"}),
    );
    let loaded = load_archive(&s, ar.as_slice(), &BTreeMap::new()).unwrap();
    assert_eq!(loaded[0].repo_tags, ["busybox:1.36"]);
    let l = &loaded[0].layers[0];
    assert_eq!(l.digest, Digest::sha256_of(&gz).to_string());
    assert_eq!(l.media_type, media_type::OCI_LAYER_GZIP);
    assert_eq!(l.size, gz.len() as u64);
    assert_eq!(
        s.content()
            .read(&Digest::parse(&l.digest).unwrap())
            .unwrap(),
        gz
    );

    // A bare tag in ref.name names no repository: the image loads untagged.
    let (_d2, s2) = store();
    let ar = oci_archive(
        &gz,
        &cfg,
        json!({"org.opencontainers.image.ref.name": "latest"}),
    );
    let loaded = load_archive(&s2, ar.as_slice(), &BTreeMap::new()).unwrap();
    assert!(loaded[0].repo_tags.is_empty());
}

fn assert_invalid(dir: &tempfile::TempDir, err: Error, needle: &str) {
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains(needle), "{err}");
    assert_empty(dir);
}

#[test]
fn rejects_a_layer_whose_content_does_not_match_its_diff_id() {
    let (dir, s) = store();
    let l0 = layer_tar("a", b"a");
    let other = layer_tar("a", b"tampered");
    let cfg = config_for(&[&l0]);
    let ar = docker20_archive(&cfg, &[&other], json!(["x:y"]));
    let err = load_archive(&s, ar.as_slice(), &BTreeMap::new()).unwrap_err();
    assert_invalid(&dir, err, "the config says");
}

#[test]
fn rejects_garbage_and_tarballs_without_an_image() {
    let (dir, s) = store();
    let err = load_archive(&s, &b"this is not a tarball at all"[..], &BTreeMap::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert_empty(&dir);

    let mut b = tar::Builder::new(Vec::new());
    add(&mut b, "hello.txt", b"hi");
    let ar = b.into_inner().unwrap();
    let err = load_archive(&s, ar.as_slice(), &BTreeMap::new()).unwrap_err();
    assert_invalid(&dir, err, "no manifest.json or index.json");

    let err = load_archive(&s, &[][..], &BTreeMap::new()).unwrap_err();
    assert_invalid(&dir, err, "no manifest.json");
}

#[test]
fn rejects_missing_layers_bad_json_and_count_mismatch() {
    let (dir, s) = store();
    let l0 = layer_tar("a", b"a");
    let cfg = config_for(&[&l0]);
    let cfg_name = format!("{}.json", Digest::sha256_of(&cfg).hex());

    let mut b = tar::Builder::new(Vec::new());
    add(&mut b, &cfg_name, &cfg);
    let m = json!([{"Config": cfg_name, "RepoTags": ["x:y"], "Layers": ["nope/layer.tar"]}]);
    add(&mut b, "manifest.json", m.to_string().as_bytes());
    let err = load_archive(&s, b.into_inner().unwrap().as_slice(), &BTreeMap::new()).unwrap_err();
    assert_invalid(&dir, err, "nope/layer.tar is missing");

    let mut b = tar::Builder::new(Vec::new());
    add(&mut b, "manifest.json", b"{not json");
    let err = load_archive(&s, b.into_inner().unwrap().as_slice(), &BTreeMap::new()).unwrap_err();
    assert_invalid(&dir, err, "manifest.json");

    let ar = docker20_archive(&cfg, &[&l0, &l0], json!(["x:y"]));
    let err = load_archive(&s, ar.as_slice(), &BTreeMap::new()).unwrap_err();
    assert_invalid(&dir, err, "1 diff_ids for 2 layers");

    let ar = docker20_archive(&cfg, &[&l0], json!(["Bad:Tag:x"]));
    let err = load_archive(&s, ar.as_slice(), &BTreeMap::new()).unwrap_err();
    assert_invalid(&dir, err, "tag");
}

#[test]
fn rejects_entries_that_escape_the_archive() {
    let (dir, s) = store();
    let mut h = tar::Header::new_old();
    let name = b"../evil";
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_size(2);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &b"hi"[..]).unwrap();
    let err = load_archive(&s, b.into_inner().unwrap().as_slice(), &BTreeMap::new()).unwrap_err();
    assert_invalid(&dir, err, "escapes the archive");
    assert!(!dir.path().join("blobs/evil").exists());
}

#[test]
fn follows_layer_symlinks_inside_the_archive() {
    // dockerd 20 writes a repeated layer as a symlink to the first copy.
    let (_d, s) = store();
    let l0 = layer_tar("a", b"a");
    let cfg = config_for(&[&l0, &l0]);
    let cfg_name = format!("{}.json", Digest::sha256_of(&cfg).hex());
    let mut b = tar::Builder::new(Vec::new());
    add(&mut b, &cfg_name, &cfg);
    add(&mut b, "one/layer.tar", &l0);
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    b.append_link(&mut h, "two/layer.tar", "../one/layer.tar")
        .unwrap();
    let m = json!([{"Config": cfg_name, "RepoTags": ["x:y"], "Layers": ["one/layer.tar", "two/layer.tar"]}]);
    add(&mut b, "manifest.json", m.to_string().as_bytes());
    let loaded = load_archive(&s, b.into_inner().unwrap().as_slice(), &BTreeMap::new()).unwrap();
    assert_eq!(loaded[0].layers.len(), 2);
    assert_eq!(loaded[0].layers[0], loaded[0].layers[1]);
}

#[test]
fn saving_a_missing_blob_fails_before_writing() {
    let (_d, s) = store();
    let err = write_archive(
        &s,
        &[ArchiveImage {
            config_digest: Digest::sha256_of(b"absent"),
            layers: Vec::new(),
            repo_tags: Vec::new(),
        }],
        Vec::new(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::BlobNotFound(_)), "{err}");
}

#[test]
fn saving_a_corrupt_blob_reports_a_digest_mismatch() {
    let (_d, s) = store();
    let l0 = layer_tar("a", b"a");
    let cfg = config_for(&[&l0]);
    let cd = s.content().put(&cfg).unwrap();
    // A blob that decompresses to something other than the recorded diff_id.
    let wrong = gzip(&layer_tar("a", b"b"));
    let bd = s.content().put(&wrong).unwrap();
    let rec = LayerRecord {
        digest: bd.to_string(),
        diff_id: Digest::sha256_of(&l0).to_string(),
        size: wrong.len() as u64,
        media_type: media_type::DOCKER_LAYER_GZIP.into(),
    };
    let err = write_archive(
        &s,
        &[ArchiveImage {
            config_digest: cd,
            layers: vec![rec],
            repo_tags: vec!["x:y".into()],
        }],
        Vec::new(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
}
