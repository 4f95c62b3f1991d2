//! A local registry process and an OCI image layout builder.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use corral_oci::{host_platform, Digest};
use serde_json::json;

/// How long to wait for the registry to answer, overridable for slow machines.
fn patience() -> Duration {
    let secs = std::env::var("CORRAL_TEST_PATIENCE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    Duration::from_secs(secs)
}

/// `docker-registry serve` on 127.0.0.1:<free port>, killed on drop.
pub(crate) struct Registry {
    child: Child,
    pub(crate) addr: String,
    storage: PathBuf,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub(crate) fn start() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let storage = dir.path().join("storage");
        std::fs::create_dir(&storage).unwrap();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
                storage.display()
            ),
        )
        .unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let reg = Registry {
            child,
            addr,
            storage,
            _dir: dir,
        };
        reg.wait_ready();
        reg
    }

    fn wait_ready(&self) {
        let deadline = std::time::SystemTime::now() + patience();
        loop {
            if let Ok(mut s) = TcpStream::connect(&self.addr) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let req = format!("GET /v2/ HTTP/1.0\r\nHost: {}\r\n\r\n", self.addr);
                if s.write_all(req.as_bytes()).is_ok() {
                    let mut buf = String::new();
                    let _ = s.read_to_string(&mut buf);
                    if buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200") {
                        return;
                    }
                }
            }
            assert!(
                std::time::SystemTime::now() < deadline,
                "registry on {} did not become ready",
                self.addr
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Overwrites the stored bytes of a blob (same length), as a compromised registry or a
    /// corrupting proxy would.
    pub(crate) fn tamper_blob(&self, digest: &Digest) {
        let hex = digest.hex();
        let path = self
            .storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data");
        let mut data = std::fs::read(&path).unwrap();
        let last = data.len() - 1;
        data[last] ^= 0xff;
        std::fs::write(&path, data).unwrap();
    }

    /// `skopeo copy oci:<layout>:<tag> docker://<addr>/<repo>:<tag>` with extra flags.
    pub(crate) fn push(&self, layout: &Path, tag: &str, repo: &str, extra: &[&str]) {
        let out = Command::new("skopeo")
            .args([
                "--insecure-policy",
                "copy",
                "--dest-tls-verify=false",
                "--quiet",
            ])
            .args(extra)
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/{repo}:{tag}", self.addr))
            .output()
            .expect("run skopeo");
        assert!(
            out.status.success(),
            "skopeo copy failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A layer as built by the test: its tar, the blob and both digests.
#[derive(Clone)]
pub(crate) struct TestLayer {
    pub(crate) diff_id: Digest,
    pub(crate) blob: Vec<u8>,
    pub(crate) digest: Digest,
    pub(crate) media_type: &'static str,
    pub(crate) tar_len: u64,
}

pub(crate) fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_path(path).unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

pub(crate) fn gzip_layer(files: &[(&str, &[u8])]) -> TestLayer {
    let tar = tar_of(files);
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&tar).unwrap();
    let blob = e.finish().unwrap();
    TestLayer {
        diff_id: Digest::sha256_of(&tar),
        digest: Digest::sha256_of(&blob),
        blob,
        media_type: corral_oci::media_type::OCI_LAYER_GZIP,
        tar_len: tar.len() as u64,
    }
}

pub(crate) fn zstd_layer(files: &[(&str, &[u8])]) -> TestLayer {
    let tar = tar_of(files);
    let blob = zstd::encode_all(tar.as_slice(), 3).unwrap();
    TestLayer {
        diff_id: Digest::sha256_of(&tar),
        digest: Digest::sha256_of(&blob),
        blob,
        media_type: corral_oci::media_type::OCI_LAYER_ZSTD,
        tar_len: tar.len() as u64,
    }
}

/// An OCI image layout being written in a temp dir.
pub(crate) struct Layout {
    pub(crate) dir: tempfile::TempDir,
    entries: Vec<serde_json::Value>,
}

/// An image written into a [`Layout`].
pub(crate) struct BuiltImage {
    pub(crate) manifest_digest: Digest,
    pub(crate) config_digest: Digest,
}

impl Layout {
    pub(crate) fn new() -> Layout {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("blobs/sha256")).unwrap();
        std::fs::write(
            dir.path().join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        Layout {
            dir,
            entries: Vec::new(),
        }
    }

    pub(crate) fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    fn blob(&self, data: &[u8]) -> Digest {
        let d = Digest::sha256_of(data);
        std::fs::write(self.dir.path().join("blobs/sha256").join(d.hex()), data).unwrap();
        d
    }

    /// Writes config + manifest for `layers` (lowest first); not yet tagged.
    pub(crate) fn image(
        &self,
        layers: &[TestLayer],
        arch: &str,
        cmd: &str,
    ) -> (BuiltImage, serde_json::Value) {
        let config = json!({
            "architecture": arch,
            "os": "linux",
            "created": "2024-01-02T03:04:05Z",
            "config": {"Cmd": [cmd]},
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>()},
        });
        let config_bytes = serde_json::to_vec(&config).unwrap();
        let config_digest = self.blob(&config_bytes);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": corral_oci::media_type::OCI_MANIFEST,
            "config": {"mediaType": corral_oci::media_type::OCI_CONFIG, "digest": config_digest.to_string(), "size": config_bytes.len()},
            "layers": layers.iter().map(|l| {
                self.blob(&l.blob);
                json!({"mediaType": l.media_type, "digest": l.digest.to_string(), "size": l.blob.len()})
            }).collect::<Vec<_>>(),
        });
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let manifest_digest = self.blob(&bytes);
        let desc = json!({
            "mediaType": corral_oci::media_type::OCI_MANIFEST,
            "digest": manifest_digest.to_string(),
            "size": bytes.len(),
            "platform": {"os": "linux", "architecture": arch},
        });
        (
            BuiltImage {
                manifest_digest,
                config_digest,
            },
            desc,
        )
    }

    /// Tags a manifest (or index) descriptor in index.json.
    pub(crate) fn tag(&mut self, mut desc: serde_json::Value, tag: &str) {
        desc["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        self.entries.push(desc);
        let index = json!({"schemaVersion": 2, "manifests": self.entries});
        std::fs::write(
            self.dir.path().join("index.json"),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
    }

    /// Writes an image index over `descs` and returns its descriptor.
    pub(crate) fn index(&self, descs: &[serde_json::Value]) -> (Digest, serde_json::Value) {
        let index = json!({
            "schemaVersion": 2,
            "mediaType": corral_oci::media_type::OCI_INDEX,
            "manifests": descs,
        });
        let bytes = serde_json::to_vec(&index).unwrap();
        let d = self.blob(&bytes);
        (
            d.clone(),
            json!({"mediaType": corral_oci::media_type::OCI_INDEX, "digest": d.to_string(), "size": bytes.len()}),
        )
    }
}

/// The GOARCH of this machine and one that is not.
pub(crate) fn arches() -> (String, &'static str) {
    let host = host_platform().architecture;
    let other = if host == "s390x" { "amd64" } else { "s390x" };
    (host, other)
}
