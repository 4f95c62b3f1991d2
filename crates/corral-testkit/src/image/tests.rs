use std::io::Read;
use std::process::Command;

use serde_json::Value;

use super::*;

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn decompress(layout: &OciLayout, l: &LayerInfo) -> Vec<u8> {
    let blob = std::fs::read(layout.blob_path(&l.digest)).unwrap();
    match l.media_type.as_str() {
        m if m.ends_with("+gzip") => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&blob[..])
                .read_to_end(&mut out)
                .unwrap();
            out
        }
        m if m.ends_with("+zstd") => zstd::decode_all(&blob[..]).unwrap(),
        _ => blob,
    }
}

/// (path, entry type, mode, uid, link target) of every entry in a tar.
fn tar_entries(tar: &[u8]) -> Vec<(String, tar::EntryType, u32, u64, Option<String>)> {
    let mut a = tar::Archive::new(tar);
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            (
                e.path().unwrap().to_string_lossy().into_owned(),
                h.entry_type(),
                h.mode().unwrap(),
                h.uid().unwrap(),
                e.link_name()
                    .unwrap()
                    .map(|l| l.to_string_lossy().into_owned()),
            )
        })
        .collect()
}

#[test]
fn every_blob_matches_its_digest_size_and_diff_id() {
    let layout = BusyboxImage::new()
        .with_layer(|l| l.file("/hello.txt", "hi\n", 0o644))
        .build_temp()
        .unwrap();
    let dir = layout.dir();
    assert_eq!(
        read_json(&dir.join("oci-layout"))["imageLayoutVersion"],
        "1.0.0"
    );
    let index = read_json(&dir.join("index.json"));
    assert_eq!(index["schemaVersion"], 2);
    let desc = &index["manifests"][0];
    assert_eq!(desc["mediaType"], MEDIA_TYPE_MANIFEST);
    assert_eq!(desc["digest"], layout.manifest_digest.as_str());

    let manifest_bytes = std::fs::read(layout.blob_path(&layout.manifest_digest)).unwrap();
    assert_eq!(sha256_digest(&manifest_bytes), layout.manifest_digest);
    assert_eq!(desc["size"], manifest_bytes.len());
    let manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();
    assert_eq!(manifest["config"]["mediaType"], MEDIA_TYPE_CONFIG);

    let config_bytes = std::fs::read(layout.blob_path(&layout.config_digest)).unwrap();
    assert_eq!(sha256_digest(&config_bytes), layout.config_digest);
    assert_eq!(manifest["config"]["size"], config_bytes.len());
    let config: Value = serde_json::from_slice(&config_bytes).unwrap();

    let mlayers = manifest["layers"].as_array().unwrap();
    assert_eq!(mlayers.len(), 2);
    assert_eq!(layout.layers.len(), 2);
    for (i, l) in layout.layers.iter().enumerate() {
        let blob = std::fs::read(layout.blob_path(&l.digest)).unwrap();
        assert_eq!(sha256_digest(&blob), l.digest);
        assert_eq!(mlayers[i]["digest"], l.digest.as_str());
        assert_eq!(mlayers[i]["size"], blob.len());
        assert_eq!(
            mlayers[i]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        let tar = decompress(&layout, l);
        assert_eq!(sha256_digest(&tar), l.diff_id);
        assert_eq!(config["rootfs"]["diff_ids"][i], l.diff_id.as_str());
    }
    assert_eq!(config["history"].as_array().unwrap().len(), 2);
    // Nothing but two layers, the config and the manifest is stored.
    assert_eq!(
        std::fs::read_dir(dir.join("blobs/sha256")).unwrap().count(),
        4
    );
}

#[test]
fn building_twice_gives_identical_digests() {
    let img = BusyboxImage::new()
        .label("a", "b")
        .with_layer(|l| l.dir("/data", 0o755).file("/data/x", "x", 0o600));
    let a = img.build_temp().unwrap();
    let b = img.build_temp().unwrap();
    assert_eq!(a.manifest_digest, b.manifest_digest);
    assert_eq!(a.config_digest, b.config_digest);
    assert_eq!(a.layers, b.layers);
}

#[test]
fn base_layer_holds_busybox_applets_users_and_dirs() {
    let layout = BusyboxImage::new().build_temp().unwrap();
    let tar = decompress(&layout, &layout.layers[0]);
    let entries = tar_entries(&tar);
    let find = |p: &str| {
        entries
            .iter()
            .find(|e| e.0 == p)
            .unwrap_or_else(|| panic!("{p} missing"))
    };
    let bb = find("bin/busybox");
    assert_eq!(bb.1, tar::EntryType::Regular);
    assert_eq!(bb.2, 0o755);
    for applet in [
        "sh", "echo", "id", "mknod", "unshare", "yes", "dd", "top", "whoami",
    ] {
        let e = find(&format!("bin/{applet}"));
        assert_eq!(e.1, tar::EntryType::Symlink, "{applet}");
        assert_eq!(e.4.as_deref(), Some("busybox"));
    }
    assert_eq!(find("tmp/").2, 0o1777);
    assert_eq!(find("root/").2, 0o700);
    assert_eq!(find("home/app/").3, 1000);
    let mut a = tar::Archive::new(&tar[..]);
    let passwd = a
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.path().unwrap().to_string_lossy() == "etc/passwd")
        .map(|mut e| {
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
            s
        })
        .unwrap();
    assert!(passwd.contains("app:x:1000:1000:"), "{passwd}");
    assert!(passwd.starts_with("root:x:0:0:"));
    // Fixed mtimes everywhere.
    let mut a = tar::Archive::new(&tar[..]);
    for e in a.entries().unwrap() {
        assert_eq!(e.unwrap().header().mtime().unwrap(), FIXED_MTIME);
    }
}

#[test]
fn layer_builder_writes_whiteouts_opaque_markers_and_links() {
    let l = LayerBuilder::new()
        .whiteout("/bin/yes")
        .whiteout("/toplevel")
        .opaque("/etc/")
        .symlink("/link", "/etc/passwd")
        .file_owned("/home/app/f", "x", 0o640, 1000, 1000)
        .hardlink("/home/app/g", "/home/app/f");
    let entries = tar_entries(&l.to_tar().unwrap());
    let paths: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        paths,
        [
            "bin/.wh.yes",
            ".wh.toplevel",
            "etc/.wh..wh..opq",
            "link",
            "home/app/f",
            "home/app/g"
        ]
    );
    assert_eq!(entries[3].4.as_deref(), Some("/etc/passwd"));
    assert_eq!(entries[4].3, 1000);
    assert_eq!(entries[5].1, tar::EntryType::Link);
}

#[test]
fn config_carries_runtime_settings() {
    let layout = BusyboxImage::new()
        .entrypoint(&["/bin/sh", "-c"])
        .cmd(&["echo hi"])
        .env("FOO", "bar")
        .workdir("/tmp")
        .user("app")
        .label("org.example", "yes")
        .stop_signal("SIGUSR1")
        .volume("/data")
        .expose("8080/tcp")
        .healthcheck(Healthcheck {
            test: vec!["CMD-SHELL".into(), "true".into()],
            interval_ns: 1_000_000_000,
            retries: 3,
            ..Healthcheck::default()
        })
        .build_temp()
        .unwrap();
    let config = read_json(&layout.blob_path(&layout.config_digest));
    let c = &config["config"];
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(c["Cmd"], serde_json::json!(["echo hi"]));
    assert_eq!(
        c["Env"],
        serde_json::json!([format!("PATH={DEFAULT_PATH}"), "FOO=bar"])
    );
    assert_eq!(c["WorkingDir"], "/tmp");
    assert_eq!(c["User"], "app");
    assert_eq!(c["Labels"]["org.example"], "yes");
    assert_eq!(c["StopSignal"], "SIGUSR1");
    assert_eq!(c["Volumes"]["/data"], serde_json::json!({}));
    assert_eq!(c["ExposedPorts"]["8080/tcp"], serde_json::json!({}));
    assert_eq!(c["Healthcheck"]["Test"][1], "true");
    assert_eq!(c["Healthcheck"]["Interval"], 1_000_000_000u64);
    assert_eq!(c["Healthcheck"]["Retries"], 3);
    assert_eq!(config["os"], "linux");
    assert_eq!(config["architecture"], "amd64");
}

#[test]
fn default_config_has_sh_cmd_and_path() {
    let layout = BusyboxImage::new().build_temp().unwrap();
    let c = &read_json(&layout.blob_path(&layout.config_digest))["config"];
    assert_eq!(c["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(c["Env"][0], format!("PATH={DEFAULT_PATH}"));
    assert!(c.get("Entrypoint").is_none());
}

#[test]
fn zstd_and_uncompressed_layers_use_matching_media_types() {
    for (c, suffix) in [(Compression::Zstd, "+zstd"), (Compression::None, ".tar")] {
        let layout = BusyboxImage::new().compression(c).build_temp().unwrap();
        let l = &layout.layers[0];
        assert!(l.media_type.ends_with(suffix), "{}", l.media_type);
        assert_eq!(sha256_digest(&decompress(&layout, l)), l.diff_id);
    }
}

#[test]
fn skopeo_reads_the_layout() {
    let layout = BusyboxImage::new()
        .with_layer(|l| l.file("/a", "a", 0o644))
        .build_temp()
        .unwrap();
    let out = Command::new(crate::SKOPEO_BIN)
        .args(["--insecure-policy", "inspect"])
        .arg(format!("oci:{}", layout.dir().display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Digest"], layout.manifest_digest.as_str());
    assert_eq!(v["Layers"].as_array().unwrap().len(), 2);
    assert_eq!(v["Os"], "linux");
}

#[test]
fn umoci_unpack_applies_whiteouts_and_opaque_dirs() {
    let layout = BusyboxImage::new()
        .ref_name("latest")
        .with_layer(|l| {
            l.dir("/data", 0o755)
                .file("/data/keep", "k", 0o644)
                .file("/data/old", "o", 0o644)
                .dir("/opq", 0o755)
                .file("/opq/lower", "l", 0o644)
        })
        .with_layer(|l| {
            l.whiteout("/data/old")
                .whiteout("/bin/yes")
                .opaque("/opq")
                .file("/opq/upper", "u", 0o644)
        })
        .build_temp()
        .unwrap();
    let bundle = tempfile::tempdir().unwrap();
    let out = Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:latest", layout.dir().display()))
        .arg(bundle.path().join("b"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rootfs = bundle.path().join("b/rootfs");
    assert!(rootfs.join("bin/busybox").is_file());
    assert!(rootfs.join("data/keep").is_file());
    assert!(!rootfs.join("data/old").exists());
    assert!(rootfs.join("bin/sh").symlink_metadata().is_ok());
    assert!(rootfs.join("bin/yes").symlink_metadata().is_err());
    assert!(!rootfs.join("opq/lower").exists());
    assert!(rootfs.join("opq/upper").is_file());
    // Rootless unpacking leaves files owned by the caller; make sure cleanup can remove them.
    drop(bundle);
}
